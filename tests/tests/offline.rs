//! End-to-end: the real `fleetsweep` binary on offline bundles
//! (`scan --offline DIR`), built from real recorded outputs (CSS-Exchange
//! CLIXML, osquery/osv-scalibr plists, InSpec's launchctl list) plus the
//! Kaspersky values of the research (see tests/fixtures/SOURCES.md for which
//! values are synthetic). This is how the Windows and macOS paths are tested
//! end to end without a Windows or macOS host.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fleetsweep_e2e::e2e_dir;
use fleetsweep_e2e::report::{Finding, HostReport, Report};
use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

/// Days from `date` (YYYY-MM-DD) to today (UTC), as the scanner counts them.
fn days_since(date: &str) -> i64 {
    let d: jiff::civil::Date = date.parse().unwrap();
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date();
    i64::from(d.until((jiff::Unit::Day, today)).unwrap().get_days())
}

fn bundles() -> PathBuf {
    e2e_dir().join("fixtures/offline")
}

fn scan(dir: &Path, extra: &[&str]) -> (Output, Report) {
    let out_dir = tempfile::tempdir().unwrap();
    let report = out_dir.path().join("report.yaml");
    let mut args = vec![
        "scan",
        "--offline",
        dir.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--no-state",
    ];
    args.extend_from_slice(extra);
    let out = Command::new(FLEETSWEEP)
        .args(&args)
        .env_remove("SSH_AUTH_SOCK")
        .output_within(RUN_LIMIT);
    let yaml = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let r = Report::parse(&yaml).expect("report parses");
    (out, r)
}

/// `rule state` per finding, sorted as the report sorts them.
fn outcomes(h: &HostReport) -> Vec<String> {
    h.findings
        .iter()
        .map(|f| format!("{} {}", f.rule, f.state))
        .collect()
}

fn evidence_kinds(f: &Finding) -> Vec<&str> {
    f.evidence
        .iter()
        .map(|e| e.get("kind").unwrap().as_str())
        .collect()
}

fn finding<'a>(h: &'a HostReport, rule: &str) -> &'a Finding {
    h.findings
        .iter()
        .find(|f| f.rule == rule)
        .unwrap_or_else(|| panic!("{}: no {rule} finding: {:?}", h.name, outcomes(h)))
}

#[test]
fn offline_bundles_of_every_os_give_the_expected_findings() {
    let (out, r) = scan(&bundles(), &[]);
    assert_eq!(out.status.code(), Some(1), "banned software found");
    assert_eq!(r.summary.hosts["total"], 8);
    assert_eq!(r.summary.hosts["scanned"], 8);
    assert_eq!(r.summary.hosts["clean"], 2);
    assert!(r
        .hosts
        .iter()
        .all(|h| h.outcome == "scanned" && h.error.is_none()));

    // Windows workstation (the probe's JSON): KES, Network Agent, Security
    // Center, root certificate, drivers, the Chrome extension, frozen bases.
    let ws = r.host("win-ws-01");
    assert_eq!(ws.address, "10.20.0.11");
    assert_eq!(ws.labels["role"], "workstation");
    assert_eq!(
        ws.os.as_ref().unwrap()["name"].as_deref(),
        Some("Microsoft Windows 10 Enterprise")
    );
    assert_eq!(
        outcomes(ws),
        vec![
            "kaspersky/browser-extensions installed",
            "kaspersky/kaspersky-windows installed",
            "kaspersky/kes-windows installed",
            "kaspersky/klnagent installed",
        ]
    );
    let kes = finding(ws, "kaspersky/kes-windows");
    assert_eq!(kes.policy, "ban");
    assert_eq!(kes.version.as_deref(), Some("12.5.0.539"));
    for kind in [
        "uninstall_entry",
        "av_product",
        "service",
        "process",
        "driver",
        "registry_key",
        "certificate",
        "path",
        "signature_update",
    ] {
        assert!(
            evidence_kinds(kes).contains(&kind),
            "kes-windows lacks {kind}: {:?}",
            kes.evidence
        );
    }
    let sig = kes
        .evidence
        .iter()
        .find(|e| e["kind"] == "signature_update")
        .unwrap();
    assert!(
        sig["value"].starts_with("2024-09-28 (last update ")
            && sig["value"].ends_with(" days ago; stopped around the 2024-09-29 update ban)"),
        "{sig:?}"
    );
    assert!(sig["source"].ends_with("\\Statistics\\AVState\\Protection_BasesDate"));
    // The typed form of the same date: frozen since the ban.
    let age = kes.signatures.as_ref().expect("kes-windows signatures");
    assert_eq!(age.last_update, "2024-09-28");
    assert!(age.frozen, "{age:?}");
    let days = days_since("2024-09-28");
    assert!(
        (days - 1..=days).contains(&age.age_days),
        "{age:?} vs {days}"
    );
    assert!(
        sig["value"].starts_with(&format!("2024-09-28 (last update {} days", age.age_days)),
        "evidence and field agree: {sig:?}"
    );
    let nagent = finding(ws, "kaspersky/klnagent");
    assert!(evidence_kinds(nagent).contains(&"uninstall_entry"));
    assert!(evidence_kinds(nagent).contains(&"registry_key"));
    // The look-alike uninstall entry on the same host is no evidence anywhere.
    assert!(ws
        .findings
        .iter()
        .flat_map(|f| &f.evidence)
        .all(|e| !e["value"].contains("Kasperskyish")));

    // Windows Server (real Get-Service and Win32_OperatingSystem CLIXML, no
    // Security Center): Kaspersky Security for Windows Server from the Uninstall CLIXML.
    let srv = r.host("win-srv-01");
    assert_eq!(
        srv.os.as_ref().unwrap()["name"].as_deref(),
        Some("Microsoft Windows Server 2019 Datacenter")
    );
    assert_eq!(outcomes(srv), vec!["kaspersky/ksws installed"]);
    assert_eq!(
        finding(srv, "kaspersky/ksws").version.as_deref(),
        Some("11.0.1.897")
    );

    // Look-alikes (names, publisher, service, driver, certificate) stay clean.
    let look = r.host("win-lookalike-01");
    assert!(look.findings.is_empty(), "{:?}", outcomes(look));
    assert_eq!(
        look.os.as_ref().unwrap()["name"].as_deref(),
        Some("Microsoft Windows Server 2016 Standard")
    );
    assert!(look.warnings.iter().any(|w| w.starts_with("av_products:")));

    // UltraAV where Kaspersky remnants remain: replaced, and UltraAV is watched.
    let ultra = r.host("win-ultraav-01");
    assert_eq!(
        outcomes(ultra),
        vec!["kaspersky/unknown replaced", "pango/ultraav installed"]
    );
    assert_eq!(finding(ultra, "pango/ultraav").policy, "watch");
    assert_eq!(
        evidence_kinds(finding(ultra, "kaspersky/unknown")),
        vec!["certificate", "path", "registry_key"]
    );

    // Mac with Kaspersky (raw command outputs and plists).
    let mac = r.host("mac-kes-01");
    assert_eq!(outcomes(mac), vec!["kaspersky/kaspersky-mac installed"]);
    let kav = finding(mac, "kaspersky/kaspersky-mac");
    assert_eq!(kav.version.as_deref(), Some("11.3.0"));
    for kind in [
        "app_bundle",
        "launchd_job",
        "pkg_receipt",
        "system_extension",
    ] {
        assert!(
            evidence_kinds(kav).contains(&kind),
            "kaspersky-mac lacks {kind}"
        );
    }
    assert!(kav
        .evidence
        .iter()
        .any(|e| e["value"].contains("Team ID 2Y8XE5CQ94")));

    // Mac with remnants (the probe's own output): files and an unloaded job.
    let rem = r.host("mac-remnants-01");
    assert_eq!(outcomes(rem), vec!["kaspersky/kaspersky-mac remnants"]);
    assert_eq!(
        rem.os.as_ref().unwrap()["version"].as_deref(),
        Some("13.6.7 (22G720)")
    );

    // Clean Mac (real plists, XML and binary; a look-alike receipt and folder).
    assert!(r.host("mac-clean-01").findings.is_empty());

    // Linux bundle: KESL with its frozen bases from `kesl-control --app-info`.
    let lin = r.host("linux-kesl-01");
    assert_eq!(outcomes(lin), vec!["kaspersky/kesl installed"]);
    assert_eq!(
        lin.os.as_ref().unwrap()["name"].as_deref(),
        Some("Debian GNU/Linux")
    );
    let kesl = finding(lin, "kaspersky/kesl");
    let sig = kesl
        .evidence
        .iter()
        .find(|e| e["kind"] == "signature_update")
        .expect("kesl signature_update");
    assert!(
        sig["value"].starts_with("2024-09-27 (last update ")
            && sig["value"].contains("stopped around the 2024-09-29 update ban"),
        "{sig:?}"
    );
    let age = kesl.signatures.as_ref().expect("kesl signatures");
    assert_eq!(age.last_update, "2024-09-27");
    assert!(age.frozen && age.age_days > 30, "{age:?}");
}

#[test]
fn clean_bundles_exit_zero_and_limit_applies() {
    let (out, r) = scan(&bundles(), &["--limit", "win-lookalike-01,mac-clean-01"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names: Vec<&str> = r.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, vec!["mac-clean-01", "win-lookalike-01"]);
    // Watched only (UltraAV next to remnants that it replaced) still fails:
    // the replaced Kaspersky remnants are banned.
    let (out, _) = scan(&bundles(), &["--limit", "win-ultraav-01"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn unreadable_bundles_are_not_scanned_never_clean() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-01");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("host.yaml"), "os: windows\n").unwrap();
    let cut = dir.path().join("cut-01");
    std::fs::create_dir(&cut).unwrap();
    std::fs::write(cut.join("host.yaml"), "name: cut-01\nos: windows\n").unwrap();
    std::fs::write(
        cut.join("windows.json"),
        "{\"fleetsweep\":1,\"uninstall\":[{\"Disp",
    )
    .unwrap();
    let (out, r) = scan(dir.path(), &[]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "nothing banned, hosts not scanned"
    );
    let e = r.host("empty-01");
    assert_eq!(e.outcome, "probe_failed");
    assert!(
        e.error.as_deref().unwrap().contains("windows.json"),
        "{:?}",
        e.error
    );
    // A cut document keeps what arrived, but the lists after the cut
    // (services) are missing: not known to be clean (tests/tests/completeness.rs).
    let c = r.host("cut-01");
    assert_eq!(c.outcome, "probe_failed");
    assert!(
        c.error.as_deref().unwrap().contains("services"),
        "{:?}",
        c.error
    );
    assert!(
        c.warnings.iter().any(|w| w.contains("not valid JSON")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn bad_bundle_directories_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |d: &Path| {
        Command::new(FLEETSWEEP)
            .args(["scan", "--offline", d.to_str().unwrap(), "--no-state", "-q"])
            .output_within(RUN_LIMIT)
    };
    // No bundle at all.
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no offline bundles"));
    // An unknown key or OS in host.yaml.
    let b = dir.path().join("x");
    std::fs::create_dir(&b).unwrap();
    std::fs::write(b.join("host.yaml"), "os: solaris\n").unwrap();
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("solaris"));
    std::fs::write(b.join("host.yaml"), "os: linux\nhostname: x\n").unwrap();
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("hostname"));
    // --offline and -i together are a usage error.
    let out = Command::new(FLEETSWEEP)
        .args(["scan", "--offline", "x", "-i", "y"])
        .output_within(RUN_LIMIT);
    assert_eq!(out.status.code(), Some(2));
}

/// The sweep's Windows dispatch end to end without Windows: a `local` host
/// with `os: windows` whose PATH holds a stand-in `powershell.exe` (a small sh
/// script) that checks the flags, decodes the `-EncodedCommand` loader
/// (UTF-16LE base64), inflates the gzip body it carries, checks that it is the
/// probe, and replays the recorded workstation JSON.
#[test]
fn windows_dispatch_through_a_replaying_powershell() {
    for tool in ["base64", "iconv", "gzip"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .status
                .success(),
            "{tool} is needed by this test (coreutils, libc-bin, gzip)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let json = e2e_dir().join("fixtures/windows/probe/workstation-kes.json");
    let log = dir.path().join("decoded.ps1");
    let script = format!(
        r#"#!/bin/sh
[ "$1 $2 $3" = "-NoProfile -NonInteractive -EncodedCommand" ] || {{ echo "bad flags: $*" >&2; exit 9; }}
loader=$(printf '%s' "$4" | base64 -d | iconv -f UTF-16LE -t UTF-8) || exit 8
case $loader in *'[ScriptBlock]::Create'*) ;; *) echo 'not the loader' >&2; exit 7;; esac
body=${{loader#*FromBase64String(\'}}; body=${{body%%\'*}}
printf '%s' "$body" | base64 -d | gzip -dc > '{log}' || exit 6
grep -q 'Win32_OperatingSystem' '{log}' || exit 5
cat '{json}'
"#,
        log = log.display(),
        json = json.display()
    );
    let ps = bin.join("powershell.exe");
    std::fs::write(&ps, script).unwrap();
    std::fs::set_permissions(&ps, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(
        &inv,
        "hosts:\n  - name: winbox\n    transport: local\n    os: windows\n",
    )
    .unwrap();
    let report = dir.path().join("r.yaml");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let out = Command::new(FLEETSWEEP)
        .args([
            "scan",
            "-i",
            inv.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--no-state",
            "-q",
        ])
        .env("PATH", path)
        .output_within(RUN_LIMIT);
    let r = Report::parse(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let h = r.host("winbox");
    assert_eq!(h.outcome, "scanned", "{:?}", h.error);
    assert_eq!(out.status.code(), Some(1));
    assert!(outcomes(h).contains(&"kaspersky/kes-windows installed".to_string()));
    // What the stand-in decoded is exactly the probe script.
    let decoded = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        decoded,
        include_str!("../../scanner/src/probes/windows/probe.ps1")
    );
}

/// `fleetsweep` with `FLEETSWEEP_NOW`, for the retention test.
fn at(now: &str, args: &[&str]) -> Output {
    Command::new(FLEETSWEEP)
        .args(args)
        .env("FLEETSWEEP_NOW", now)
        .env_remove("SSH_AUTH_SOCK")
        .output_within(RUN_LIMIT)
}

#[test]
fn retention_drops_old_reports_and_keeps_the_history() {
    // Three sweeps of the bundles 20 days apart with --state-keep 30d: the
    // first loses its report at the third, its summary stays in the history.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let bundles = bundles();
    let sweep = |now: &str| {
        let out = at(
            now,
            &[
                "scan",
                "--offline",
                bundles.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
                "--state-keep",
                "30d",
                "-q",
            ],
        );
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for now in [
        "2027-01-01T06:00:00Z",
        "2027-01-21T06:00:00Z",
        "2027-02-10T06:00:00Z",
    ] {
        sweep(now);
    }
    let list = at(
        "2027-02-10T07:00:00Z",
        &[
            "report",
            "--state",
            state.to_str().unwrap(),
            "--list",
            "--format",
            "json",
        ],
    );
    assert_eq!(list.status.code(), Some(0));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(rows.len(), 3, "every sweep is still listed");
    assert_eq!(rows[0]["pruned"], "2027-02-10T06:00:00Z", "{rows:?}");
    assert!(
        rows[1].get("pruned").is_none() && rows[2].get("pruned").is_none(),
        "{rows:?}"
    );
    let text = at(
        "2027-02-10T07:00:00Z",
        &["report", "--state", state.to_str().unwrap(), "--list"],
    );
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("pruned"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    let first = rows[0]["id"].as_str().unwrap();
    let old = at(
        "2027-02-10T07:00:00Z",
        &[
            "report",
            "--state",
            state.to_str().unwrap(),
            "--sweep",
            first,
        ],
    );
    assert_eq!(old.status.code(), Some(2));
    let err = String::from_utf8_lossy(&old.stderr);
    assert!(
        err.contains(&format!(
            "sweep `{first}` was pruned at 2027-02-10T06:00:00Z"
        )),
        "{err}"
    );
    // The newest report still renders.
    let latest = at(
        "2027-02-10T07:00:00Z",
        &[
            "report",
            "--state",
            state.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(
        latest.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&latest.stderr)
    );

    let bad = at(
        "2027-02-10T07:00:00Z",
        &[
            "scan",
            "--offline",
            bundles.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--state-keep",
            "soon",
        ],
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr)
            .contains("--state-keep: `soon` is neither `all` nor a duration such as 400d"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// `fleetsweep probe-script` prints what docs/offline-bundles.md asks users to
/// run: the Linux script, run by hand on this (real) machine, gives a
/// `linux.txt` that `scan --offline` reads as a fully scanned host; the macOS
/// one is valid sh carrying the catalog's roots; the Windows one is the
/// PowerShell probe as it is.
#[test]
fn probe_script_output_run_by_hand_makes_a_bundle_that_scans() {
    let tmp = tempfile::tempdir().unwrap();
    let print = |os: &str| {
        let out = Command::new(FLEETSWEEP)
            .args(["probe-script", os])
            .output_within(RUN_LIMIT);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let linux = print("linux");
    assert!(linux.starts_with("#!/bin/sh\n"), "{linux}");
    assert!(
        linux.contains("\n/opt/kaspersky\n"),
        "the catalog's roots are built in"
    );
    let script = tmp.path().join("probe-linux.sh");
    std::fs::write(&script, &linux).unwrap();
    let host = tmp.path().join("bundles/this-machine");
    std::fs::create_dir_all(&host).unwrap();
    let out = Command::new("sh").arg(&script).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(host.join("linux.txt"), &out.stdout).unwrap();
    std::fs::write(host.join("host.yaml"), "os: linux\n").unwrap();
    let (out, r) = scan(&tmp.path().join("bundles"), &[]);
    let h = r.host("this-machine");
    assert_eq!(
        h.outcome,
        "scanned",
        "{:?}; stderr: {}",
        h.error,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !h.incomplete.iter().any(|s| s.contains("dpkg")),
        "the package database was read: {:?}",
        h.incomplete
    );
    // Each run has its own nonce.
    assert_ne!(linux, print("linux"));

    let macos = print("macos");
    assert!(
        macos.contains("/Library/Application Support/Kaspersky Lab"),
        "{macos}"
    );
    let mac_script = tmp.path().join("probe-macos.sh");
    std::fs::write(&mac_script, &macos).unwrap();
    let syntax = Command::new("sh")
        .arg("-n")
        .arg(&mac_script)
        .output()
        .unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );

    let windows = print("windows");
    let ps1 =
        std::fs::read_to_string(e2e_dir().join("../scanner/src/probes/windows/probe.ps1")).unwrap();
    assert_eq!(windows, ps1);

    let out = Command::new(FLEETSWEEP)
        .args(["probe-script", "solaris"])
        .output_within(RUN_LIMIT);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values: linux, macos, windows"));
}
