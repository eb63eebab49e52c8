//! End-to-end: a host that was not truly checked is never reported clean.
//!
//! Each case is one an outside tester found reported `scanned`, without a
//! finding and often without a warning, exit 0, on a host that has KESL:
//! probe outputs holding only the end marker, empty or garbage bundle files,
//! Windows JSON of the wrong types, a PowerShell error instead of JSON, and a
//! Windows document cut short (whose complete entries were thrown away). The
//! real binary runs on offline bundles built here, and, for the live path,
//! on `transport: local` hosts whose PATH holds a stand-in command (the real
//! probe script runs, only `dpkg-query`/`powershell.exe` answer with garbage).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use fleetsweep_e2e::{e2e_dir, output_within, Fleet, FleetSpec, Scenario};
use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};

use fleetsweep_e2e::report::{HostReport, Report};

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

fn fixtures() -> PathBuf {
    e2e_dir().join("fixtures")
}

/// Bytes no probe command prints: deterministic noise with NULs, control
/// characters, invalid UTF-8, tabs and newlines.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A bundle `name` of `os` in `root` with `files` (name, content).
fn bundle(root: &Path, name: &str, os: &str, files: &[(&str, Vec<u8>)]) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("host.yaml"), format!("name: {name}\nos: {os}\n")).unwrap();
    for (file, bytes) in files {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
}

/// Copies a fixture bundle (files and plist directories) to `root/name`.
fn copy_bundle(from: &Path, root: &Path, name: &str) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let to = dir.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            for f in std::fs::read_dir(&p).unwrap() {
                let f = f.unwrap().path();
                std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
            }
        } else {
            std::fs::copy(&p, &to).unwrap();
        }
    }
    std::fs::write(dir.join("host.yaml"), format!("name: {name}\nos: macos\n")).unwrap();
}

struct Run {
    out: Output,
    report: Report,
    metrics: String,
}

fn run(args: &[&str], path_env: Option<String>) -> Run {
    let out_dir = tempfile::tempdir().unwrap();
    let report = out_dir.path().join("report.yaml");
    let metrics = out_dir.path().join("metrics.prom");
    let mut cmd = Command::new(FLEETSWEEP);
    cmd.args(args)
        .args(["--report", report.to_str().unwrap()])
        .args(["--metrics-file", metrics.to_str().unwrap()])
        .args(["--no-state", "--no-progress"])
        .env_remove("SSH_AUTH_SOCK");
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    let out = output_within(&mut cmd, Duration::from_secs(600));
    let yaml = std::fs::read_to_string(&report).unwrap_or_else(|e| {
        panic!(
            "no report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    Run {
        report: Report::parse(&yaml).expect("report parses"),
        metrics: std::fs::read_to_string(&metrics).unwrap(),
        out,
    }
}

fn scan_offline(dir: &Path) -> Run {
    run(&["scan", "--offline", dir.to_str().unwrap()], None)
}

fn rules(h: &HostReport) -> Vec<&str> {
    h.findings.iter().map(|f| f.rule.as_str()).collect()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The value of one exact series line of a metrics page.
fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn workstation_json() -> String {
    std::fs::read_to_string(fixtures().join("windows/probe/workstation-kes.json")).unwrap()
}

/// Bundles whose required section is missing or garbage: `probe_failed`,
/// with an error naming the section and what to do; never clean.
#[test]
fn missing_or_garbage_required_sections_fail_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let ps_error = "Get-CimInstance : Access denied \r\nAt line:1 char:1\r\n+ & ([ScriptBlock]::Create($s)) {\r\n    + CategoryInfo : PermissionDenied\r\n";
    let nonce = "0123abcd";
    bundle(
        root,
        "end-marker-only",
        "linux",
        &[(
            "linux.txt",
            format!("@@fleetsweep:{nonce}:done\n").into_bytes(),
        )],
    );
    bundle(
        root,
        "mac-end-marker-only",
        "macos",
        &[(
            "macos.txt",
            format!("@@fleetsweep:{nonce}:done\n").into_bytes(),
        )],
    );
    bundle(
        root,
        "dpkg-empty",
        "linux",
        &[("dpkg-query.txt", Vec::new())],
    );
    bundle(
        root,
        "rpm-random",
        "linux",
        &[("rpm-qa.txt", random_bytes(7, 8192))],
    );
    bundle(
        root,
        "dpkg-random",
        "linux",
        &[("dpkg-query.txt", random_bytes(11, 8192))],
    );
    bundle(root, "win-uninstall-number", "windows", &[(
        "windows.json",
        br#"{"fleetsweep":1,"os":{"Caption":"Microsoft Windows 11 Pro"},"uninstall":5,"services":[{"Name":"Spooler","State":"Running"}],"processes":[],"errors":[]}"#.to_vec(),
    )]);
    bundle(
        root,
        "win-ps-error",
        "windows",
        &[("windows.json", ps_error.as_bytes().to_vec())],
    );
    // /dev/null as the package list: read as empty (or, once bundle files are
    // opened without following links, not read at all): never clean.
    let devnull = root.join("dpkg-devnull");
    bundle(root, "dpkg-devnull", "linux", &[]);
    std::os::unix::fs::symlink("/dev/null", devnull.join("dpkg-query.txt")).unwrap();

    let Run {
        out,
        report,
        metrics,
    } = scan_offline(root);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "nothing banned found, hosts not scanned: {stderr}"
    );
    assert_eq!(report.summary.hosts["total"], 8);
    assert_eq!(
        report.summary.hosts["probe_failed"], 8,
        "{:#?}",
        report.hosts
    );
    assert_eq!(report.summary.hosts["clean"], 0);
    assert_eq!(report.summary.hosts["scanned"], 0);
    assert_eq!(
        metric(&metrics, "fleetsweep_hosts{outcome=\"probe_failed\"}"),
        Some(8.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "fleetsweep_hosts{outcome=\"scanned\"}"),
        Some(0.0)
    );
    for name in [
        "end-marker-only",
        "dpkg-empty",
        "rpm-random",
        "dpkg-random",
        "dpkg-devnull",
    ] {
        let h = report.host(name);
        assert_eq!(h.outcome, "probe_failed", "{name}");
        let e = h.error.as_deref().unwrap_or_default();
        assert!(
            e.contains("required evidence not read, so the host is not known to be clean: a package database (dpkg, rpm or apk)")
                || e.contains("holds none of the files")
                || e.contains("not read: a symbolic link to a path outside the bundle"),
            "{name}: {e}"
        );
        assert_eq!(
            metric(
                &metrics,
                &format!(
                    "fleetsweep_host_scan_failure{{host=\"{name}\",outcome=\"probe_failed\"}}"
                )
            ),
            Some(1.0)
        );
    }
    let e = |n: &str| report.host(n).error.clone().unwrap_or_default();
    assert!(
        e("end-marker-only").contains("dpkg: not in the output"),
        "{}",
        e("end-marker-only")
    );
    assert!(
        e("end-marker-only").contains("docs/offline-bundles.md"),
        "what to do: {}",
        e("end-marker-only")
    );
    assert!(
        e("dpkg-empty").contains("dpkg: empty"),
        "{}",
        e("dpkg-empty")
    );
    assert!(
        e("rpm-random").contains("rpm: nothing could be read")
            || e("rpm-random").contains("rpm: most of it is not understood"),
        "{}",
        e("rpm-random")
    );
    assert!(
        e("dpkg-random").contains("dpkg: nothing could be read"),
        "{}",
        e("dpkg-random")
    );
    assert!(
        e("mac-end-marker-only").contains("installer receipts (pkgutil)")
            && e("mac-end-marker-only").contains("application bundles"),
        "{}",
        e("mac-end-marker-only")
    );
    assert!(
        e("win-uninstall-number").contains("the Uninstall list (Apps & Features) (uninstall: has the wrong JSON type (number), not a list)"),
        "{}",
        e("win-uninstall-number")
    );
    // The PowerShell error: failed, with the first line of the error.
    let ps = e("win-ps-error");
    assert!(
        ps.contains("the Uninstall list") && ps.contains("services"),
        "{ps}"
    );
    assert!(
        report
            .host("win-ps-error")
            .incomplete
            .iter()
            .any(|i| i.contains("it begins: \"Get-CimInstance : Access denied\"")),
        "{:?}",
        report.host("win-ps-error")
    );
    // The text summary lists them as not scanned, never as clean.
    let text = stdout(&out);
    assert!(
        text.contains("0 scanned (0 clean, 0 affected, 0 incomplete), 8 not scanned"),
        "{text}"
    );
}

/// Bundles whose required sections were read but another section is garbage:
/// scanned, listed as incomplete, counted apart from clean, exit 3.
#[test]
fn garbage_optional_sections_make_the_host_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let clean_dpkg = std::fs::read(fixtures().join("linux/inspec-mocks/dpkg-query-W")).unwrap();
    bundle(
        root,
        "linux-complete",
        "linux",
        &[("dpkg-query.txt", clean_dpkg.clone())],
    );
    bundle(
        root,
        "linux-os-release-random",
        "linux",
        &[
            ("dpkg-query.txt", clean_dpkg.clone()),
            ("os-release", random_bytes(3, 4096)),
        ],
    );
    bundle(
        root,
        "linux-paths-random",
        "linux",
        &[
            ("dpkg-query.txt", clean_dpkg),
            ("paths.txt", random_bytes(5, 4096)),
        ],
    );
    let mac = fixtures().join("offline/mac-clean-01");
    copy_bundle(&mac, root, "mac-complete");
    for (name, file, seed) in [
        ("mac-sw-vers-random", "sw_vers.txt", 13),
        ("mac-codesign-random", "codesign.txt", 17),
        ("mac-kextstat-random", "kextstat.txt", 19),
    ] {
        copy_bundle(&mac, root, name);
        std::fs::write(root.join(name).join(file), random_bytes(seed, 4096)).unwrap();
    }

    let Run {
        out,
        report,
        metrics,
    } = scan_offline(root);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "incomplete hosts are not fully scanned: {stderr}"
    );
    let s = &report.summary.hosts;
    assert_eq!(
        (
            s["total"],
            s["scanned"],
            s["clean"],
            s["affected"],
            s["incomplete"]
        ),
        (7, 7, 2, 0, 5),
        "{:#?}",
        report.hosts
    );
    for name in ["linux-complete", "mac-complete"] {
        let h = report.host(name);
        assert!(h.incomplete.is_empty(), "{name}: {:?}", h.incomplete);
    }
    for (name, section) in [
        ("linux-os-release-random", "os-release"),
        ("linux-paths-random", "paths"),
        ("mac-sw-vers-random", "sw-vers"),
        ("mac-codesign-random", "codesign"),
        ("mac-kextstat-random", "kexts"),
    ] {
        let h = report.host(name);
        assert_eq!(h.outcome, "scanned", "{name}: {:?}", h.error);
        assert!(
            h.incomplete
                .iter()
                .any(|i| i.starts_with(&format!("{section}: "))),
            "{name}: {:?}",
            h.incomplete
        );
        assert_eq!(
            metric(
                &metrics,
                &format!(
                    "fleetsweep_host_scan_incomplete{{host=\"{name}\",section=\"{section}\"}}"
                )
            ),
            Some(1.0),
            "{metrics}"
        );
    }
    assert_eq!(
        metric(&metrics, "fleetsweep_hosts_incomplete"),
        Some(5.0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "fleetsweep_hosts{outcome=\"scanned\"}"),
        Some(7.0)
    );
    assert!(!metrics.contains("fleetsweep_host_scan_incomplete{host=\"linux-complete\""));
    let text = stdout(&out);
    assert!(
        text.contains("7 scanned (2 clean, 0 affected, 5 incomplete), 0 not scanned"),
        "{text}"
    );
    assert!(
        text.contains(
            "Incomplete (scanned, but not every probe section was read; never counted as clean):"
        ),
        "{text}"
    );
    assert!(
        text.contains("linux-os-release-random  os-release: "),
        "{text}"
    );

    // JUnit: an incomplete host is an error test case with the reason.
    let (junit, csv) = junit_and_csv_of(root);
    assert!(junit.contains("errors=\"5\""), "{junit}");
    assert!(junit.contains("type=\"incomplete\""), "{junit}");
    assert!(
        junit.contains("scanned incompletely, not known to be clean: os-release: "),
        "{junit}"
    );
    // CSV: the last column lists the sections not read.
    assert!(
        csv.lines().next().unwrap().ends_with(",incomplete"),
        "{csv}"
    );
    let row = csv
        .lines()
        .find(|l| l.contains(",linux-paths-random,"))
        .unwrap();
    assert!(
        row.contains(",paths: nothing could be read from its "),
        "{row}"
    );
    assert!(
        csv.lines()
            .find(|l| l.contains(",linux-complete,"))
            .unwrap()
            .ends_with(','),
        "{csv}"
    );
}

/// The JUnit and CSV renderings of a sweep of `root`, through the state store.
fn junit_and_csv_of(root: &Path) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let out = Command::new(FLEETSWEEP)
        .args([
            "scan",
            "--offline",
            root.to_str().unwrap(),
            "--state",
            db.to_str().unwrap(),
            "-q",
        ])
        .output_within(RUN_LIMIT);
    assert!(
        matches!(out.status.code(), Some(0..=3)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let render = |format: &str| {
        let out = Command::new(FLEETSWEEP)
            .args([
                "report",
                "--format",
                format,
                "--state",
                db.to_str().unwrap(),
            ])
            .output_within(RUN_LIMIT);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    (render("junit"), render("csv"))
}

/// A Windows document cut short keeps every complete entry before the cut:
/// cut inside the Uninstall list, KES (its first entry) is still found, and the
/// host is not clean (the lists after the cut are missing: `probe_failed`);
/// cut inside the process list, the required lists were read and the host is
/// scanned but incomplete.
#[test]
fn a_cut_windows_document_keeps_what_was_read() {
    let json = workstation_json();
    let json = json.trim();
    let first = json.find("\"DisplayName\"").unwrap();
    let in_second_entry = first + 1 + json[first + 1..].find("\"DisplayName\"").unwrap() + 5;
    let in_processes = json.find("\"processes\":[").unwrap() + 40;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    bundle(
        root,
        "win-cut-in-uninstall",
        "windows",
        &[("windows.json", json.as_bytes()[..in_second_entry].to_vec())],
    );
    bundle(
        root,
        "win-cut-in-processes",
        "windows",
        &[("windows.json", json.as_bytes()[..in_processes].to_vec())],
    );

    let Run {
        out,
        report,
        metrics,
    } = scan_offline(root);
    assert_eq!(
        out.status.code(),
        Some(1),
        "KES found before the cut fails the sweep"
    );
    let u = report.host("win-cut-in-uninstall");
    assert_eq!(u.outcome, "probe_failed");
    assert!(
        rules(u).contains(&"kaspersky/kes-windows"),
        "{:?}",
        rules(u)
    );
    let e = u.error.as_deref().unwrap();
    assert!(
        e.contains("services (services: not in the output: the document was cut before it)"),
        "{e}"
    );
    assert!(
        u.incomplete
            .iter()
            .any(|i| i.starts_with("uninstall: cut short")),
        "{:?}",
        u.incomplete
    );
    assert!(
        u.warnings
            .iter()
            .any(|w| w.contains("not valid JSON (cut short?)")),
        "{:?}",
        u.warnings
    );

    let p = report.host("win-cut-in-processes");
    assert_eq!(p.outcome, "scanned", "{:?}", p.error);
    assert!(
        p.incomplete.iter().any(|i| i.starts_with("processes: ")),
        "{:?}",
        p.incomplete
    );
    assert!(
        p.incomplete
            .iter()
            .any(|i| i.starts_with("certificates: not in the output")),
        "{:?}",
        p.incomplete
    );
    assert!(rules(p).contains(&"kaspersky/kes-windows"));
    // Affected (KES), so counted as affected, not as incomplete; the metric
    // still names its missing sections.
    assert_eq!(report.summary.hosts["affected"], 1);
    assert_eq!(report.summary.hosts["incomplete"], 0);
    assert_eq!(
        metric(
            &metrics,
            "fleetsweep_host_scan_incomplete{host=\"win-cut-in-processes\",section=\"processes\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}

/// A stand-in command in a directory put first in PATH.
fn stand_in(dir: &Path, name: &str, script: &str) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let p = bin.join(name);
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    )
}

/// Live path, Windows: the same PowerShell error the offline case reads, from a
/// `powershell.exe` that prints it (on standard output, as WinRM carries it):
/// `probe_failed` with its first line, as offline.
#[test]
fn a_powershell_error_fails_a_live_host_with_its_first_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = stand_in(
        dir.path(),
        "powershell.exe",
        "#!/bin/sh\nprintf 'Get-CimInstance : Access denied \\r\\nAt line:1 char:1\\r\\n'\nexit 1\n",
    );
    let inv = dir.path().join("inv.yaml");
    std::fs::write(
        &inv,
        "hosts:\n  - name: winbox\n    transport: local\n    os: windows\n",
    )
    .unwrap();
    let Run { out, report, .. } = run(&["scan", "-i", inv.to_str().unwrap()], Some(path));
    assert_eq!(out.status.code(), Some(3));
    let h = report.host("winbox");
    assert_eq!(h.outcome, "probe_failed");
    assert!(
        h.error
            .as_deref()
            .unwrap()
            .contains("Get-CimInstance : Access denied"),
        "{:?}",
        h.error
    );
    assert_eq!(report.summary.hosts["clean"], 0);
}

/// Live path, Linux: the real probe script on this machine, with a
/// `dpkg-query` (and `rpm`, `apk`) that print garbage: the package database is
/// not read, so the host is `probe_failed`, never clean.
#[test]
fn a_garbage_package_database_fails_a_live_linux_host() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = "#!/bin/sh\nprintf '\\001\\002 garbage \\377\\376\\nnot a package line\\n'\n";
    let mut path = stand_in(dir.path(), "dpkg-query", garbage);
    for tool in ["rpm", "apk"] {
        path = stand_in(dir.path(), tool, garbage);
    }
    let inv = dir.path().join("inv.yaml");
    std::fs::write(
        &inv,
        "hosts:\n  - name: box\n    transport: local\n    os: linux\n",
    )
    .unwrap();
    let Run {
        out,
        report,
        metrics,
    } = run(&["scan", "-i", inv.to_str().unwrap()], Some(path));
    let h = report.host("box");
    assert_eq!(h.outcome, "probe_failed", "{h:?}");
    let e = h.error.as_deref().unwrap();
    assert!(
        e.contains("a package database (dpkg, rpm or apk) (dpkg: nothing could be read"),
        "{e}"
    );
    assert!(e.contains("run the probe by hand"), "{e}");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        metric(
            &metrics,
            "fleetsweep_host_scan_failure{host=\"box\",outcome=\"probe_failed\"}"
        ),
        Some(1.0)
    );
}

/// Live path over SSH, on a real sshd test host: KESL is installed, but
/// `dpkg-query` prints garbage. The package database is not read, so the
/// host is `probe_failed` (never clean); KESL's processes and files still
/// show, and are reported (exit 1).
#[test]
fn a_garbage_package_database_on_a_real_ssh_host() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 246,
        hosts: vec![("garbage-01".into(), Scenario::GarbagePackageDb)],
    })
    .expect("starting the test fleet");
    let inv = fleet.inventory_path();
    let Run {
        out,
        report,
        metrics,
    } = run(
        &[
            "scan",
            "-i",
            inv.to_str().unwrap(),
            "--connect-timeout",
            "3s",
            "--host-timeout",
            "20s",
        ],
        None,
    );
    let h = report.host("garbage-01");
    assert_eq!(h.outcome, "probe_failed", "{h:?}");
    let e = h.error.as_deref().unwrap();
    assert!(
        e.contains(
            "a package database (dpkg, rpm or apk) (dpkg: nothing could be read from its 2 lines"
        ),
        "{e}"
    );
    assert!(rules(h).contains(&"kaspersky/kesl"), "{:?}", rules(h));
    assert_eq!(report.summary.hosts["clean"], 0);
    assert_eq!(report.summary.hosts["probe_failed"], 1);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        metric(
            &metrics,
            "fleetsweep_host_scan_failure{host=\"garbage-01\",outcome=\"probe_failed\"}"
        ),
        Some(1.0)
    );
}
