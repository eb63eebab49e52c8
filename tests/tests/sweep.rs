//! End-to-end: the real `fleetsweep` binary against real sshd test hosts.
//!
//! Every scenario of the walking skeleton (clean host, KESL installed, RPM host
//! with Network Agent, remnants, unknown Kaspersky product, wrong host key,
//! refused auth, nothing listening, host behind a bastion, hanging sshd, hung
//! probe) in one fleet, one sweep; the report is compared with a golden file
//! (refresh with `UPDATE_GOLDEN=1`) and the user-visible facts are asserted
//! one by one as well.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use fleetsweep_e2e::{demo_hosts, e2e_dir, output_within, signal, Fleet, FleetSpec, Signal};
use serde::Deserialize;

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

/// The fields of the report the tests read (a subset of report_version 1).
#[derive(Debug, Deserialize)]
struct Report {
    report_version: u32,
    sweep: Sweep,
    summary: Summary,
    hosts: Vec<HostReport>,
}
#[derive(Debug, Deserialize)]
struct Sweep {
    complete: bool,
    interrupted_by: Option<String>,
    catalogs: Vec<serde_json::Value>,
}
#[derive(Debug, Deserialize)]
struct Summary {
    hosts: BTreeMap<String, usize>,
    findings: BTreeMap<String, usize>,
}
#[derive(Debug, Deserialize)]
struct HostReport {
    name: String,
    outcome: String,
    error: Option<String>,
    os: Option<BTreeMap<String, Option<String>>>,
    findings: Vec<Finding>,
}
#[derive(Debug, Deserialize)]
struct Finding {
    rule: String,
    state: String,
    status: String,
    policy: String,
    version: Option<String>,
    evidence: Vec<BTreeMap<String, String>>,
    signatures: Option<serde_json::Value>,
}

fn scenario_fleet(subnet: u8) -> Fleet {
    Fleet::start(FleetSpec {
        subnet,
        hosts: demo_hosts(),
    })
    .expect("starting the test fleet")
}

/// Runs fleetsweep; a `scan` without `--state` gets `--no-state`, so no test
/// writes to the state store in the user's data directory.
fn run(args: &[&str]) -> Output {
    let mut args = args.to_vec();
    if args.first() == Some(&"scan") && !args.iter().any(|a| a.starts_with("--state")) {
        args.push("--no-state");
    }
    let mut cmd = Command::new(FLEETSWEEP);
    cmd.args(args).env_remove("SSH_AUTH_SOCK");
    output_within(&mut cmd, Duration::from_secs(600))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn read_report(path: &Path) -> (String, Report) {
    let yaml = std::fs::read_to_string(path).expect("report written");
    let report: Report = serde_saphyr::from_str(&yaml).expect("report parses");
    (yaml, report)
}

/// Replaces what legitimately changes between runs (ids, times, durations,
/// temp paths) so the rest can be compared byte for byte.
fn normalize(yaml: &str, fleet_dir: &Path) -> String {
    let mut out = Vec::new();
    for line in yaml.lines() {
        let t = line.trim_start();
        let indent = &line[..line.len() - t.len()];
        let key = t.split(':').next().unwrap_or("");
        let masked = match key {
            "id" | "started" | "finished" | "first_seen" | "last_seen" | "due"
            | "remediated_at" | "last_verified" | "duration_seconds" | "scanner_version"
            | "age_days" => {
                format!("{indent}{key}: <{key}>")
            }
            _ => mask_age(&mask_fingerprints(
                &line.replace(&fleet_dir.display().to_string(), "<fleet>"),
            )),
        };
        out.push(masked);
    }
    out.join("\n") + "\n"
}

/// Signature ages grow by a day every day: `last update 795 days ago` →
/// `last update <n> days ago`.
fn mask_age(line: &str) -> String {
    match line.split_once("last update ") {
        Some((head, tail)) => match tail.split_once(" days ago") {
            Some((n, rest)) if n.chars().all(|c| c.is_ascii_digit()) => {
                format!("{head}last update <n> days ago{rest}")
            }
            _ => line.to_string(),
        },
        None => line.to_string(),
    }
}

/// Host keys are generated per run: `SHA256:<base64>` → `SHA256:<fingerprint>`.
fn mask_fingerprints(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(i) = rest.find("SHA256:") {
        out.push_str(&rest[..i + 7]);
        out.push_str("<fingerprint>");
        rest = rest[i + 7..]
            .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    }
    out.push_str(rest);
    out
}

fn golden(name: &str) -> PathBuf {
    e2e_dir().join("golden").join(name)
}

fn check_golden(name: &str, actual: &str) {
    let path = golden(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "golden file {} missing: run with UPDATE_GOLDEN=1 once",
            path.display()
        )
    });
    if want != actual {
        let diff: Vec<String> = want
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("line {}:\n  golden: {a}\n  actual: {b}", i + 1))
            .collect();
        panic!(
            "report differs from {} (UPDATE_GOLDEN=1 refreshes it after review):\n{}\n(golden {} lines, actual {} lines)",
            path.display(),
            diff.join("\n"),
            want.lines().count(),
            actual.lines().count()
        );
    }
}

fn host<'a>(r: &'a Report, name: &str) -> &'a HostReport {
    r.hosts
        .iter()
        .find(|h| h.name == name)
        .unwrap_or_else(|| panic!("host {name} missing from report"))
}

fn rules(h: &HostReport) -> Vec<String> {
    h.findings
        .iter()
        .map(|f| format!("{} {}", f.rule, f.state))
        .collect()
}

#[test]
fn sweep_of_every_scenario() {
    let fleet = scenario_fleet(211);
    let report_path = fleet.dir().join("report.yaml");
    let inv = fleet.inventory_path();
    // A fresh state store: the first sweep sees every finding for the first time.
    let state = fleet.dir().join("state.db");
    let out = run(&[
        "scan",
        "-i",
        inv.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--report",
        report_path.to_str().unwrap(),
        "--connect-timeout",
        "3s",
        "--host-timeout",
        "12s",
        "--no-progress",
    ]);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit 1 = banned software found\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );

    let (yaml, r) = read_report(&report_path);
    assert_eq!(r.report_version, 1);
    assert!(r.sweep.complete);
    assert_eq!(r.sweep.catalogs.len(), 2, "kaspersky + ultraav catalogs");

    // Outcomes: every host ends as exactly one, failures with a reason.
    let outcomes: BTreeMap<&str, &str> = r
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.outcome.as_str()))
        .collect();
    let want: BTreeMap<&str, &str> = [
        ("app-01", "scanned"),
        ("bastion-01", "scanned"),
        ("db-internal", "scanned"),
        ("down-01", "unreachable"),
        ("hang-01", "timed_out"),
        ("hung-01", "timed_out"),
        ("lab-01", "scanned"),
        ("nagent-01", "scanned"),
        ("noauth-01", "auth_failed"),
        ("old-01", "scanned"),
        ("web-01", "scanned"),
        ("wrongkey-01", "host_key_rejected"),
    ]
    .into_iter()
    .collect();
    assert_eq!(outcomes, want);
    for h in r.hosts.iter().filter(|h| h.outcome != "scanned") {
        assert!(
            h.error.as_deref().is_some_and(|e| !e.is_empty()),
            "{} has no error text",
            h.name
        );
        assert!(
            h.findings.is_empty(),
            "{} not scanned but has findings",
            h.name
        );
    }
    assert!(host(&r, "wrongkey-01")
        .error
        .as_deref()
        .unwrap()
        .to_lowercase()
        .contains("mismatch"));

    // Findings.
    assert_eq!(
        rules(host(&r, "web-01")),
        Vec::<String>::new(),
        "look-alikes must stay clean"
    );
    assert_eq!(rules(host(&r, "bastion-01")), Vec::<String>::new());
    assert_eq!(rules(host(&r, "app-01")), ["kaspersky/kesl installed"]);
    let kesl = &host(&r, "app-01").findings[0];
    assert_eq!(kesl.policy, "ban");
    assert_eq!(kesl.status, "new");
    assert_eq!(kesl.version.as_deref(), Some("12.1.0-1297"));
    let kinds: Vec<&str> = kesl
        .evidence
        .iter()
        .filter_map(|e| e.get("kind").map(String::as_str))
        .collect();
    for k in ["package", "path", "process", "service", "signature_update"] {
        assert!(kinds.contains(&k), "KESL evidence lacks {k}: {kinds:?}");
    }
    // Frozen protection, read live from `kesl-control --app-info` on the host.
    let sig = kesl
        .signatures
        .as_ref()
        .expect("KESL reports its database date");
    assert_eq!(sig["last_update"], "2024-09-27", "{sig}");
    assert_eq!(sig["frozen"], true, "{sig}");
    let update = kesl
        .evidence
        .iter()
        .find(|e| e.get("kind").map(String::as_str) == Some("signature_update"))
        .expect("signature_update evidence");
    assert!(
        update
            .values()
            .any(|v| v.contains("kesl-control --app-info")),
        "names where it was read: {update:?}"
    );
    assert_eq!(
        rules(host(&r, "nagent-01")),
        ["kaspersky/klnagent installed"]
    );
    let nag = &host(&r, "nagent-01");
    assert_eq!(
        nag.os
            .as_ref()
            .and_then(|o| o.get("name").cloned().flatten())
            .as_deref(),
        Some("Rocky Linux")
    );
    assert!(nag.findings[0]
        .evidence
        .iter()
        .any(|e| e.get("source").map(String::as_str) == Some("rpm")));
    assert_eq!(rules(host(&r, "old-01")), ["kaspersky/kesl remnants"]);
    assert_eq!(
        rules(host(&r, "lab-01")),
        ["kaspersky/unknown installed"],
        "unknown product found by vendor traits"
    );
    assert!(
        !rules(host(&r, "db-internal")).is_empty() || host(&r, "db-internal").outcome == "scanned"
    );

    assert_eq!(r.summary.hosts.get("total"), Some(&12));
    assert_eq!(r.summary.hosts.get("scanned"), Some(&7));
    assert_eq!(
        r.summary.hosts.get("affected").copied().unwrap_or(0)
            + r.summary.hosts.get("clean").copied().unwrap_or(0),
        7
    );
    assert_eq!(
        r.summary.findings.get("new").copied(),
        Some(host_findings(&r))
    );

    // The human summary names findings and failures.
    assert!(stdout.contains("Swept 12 hosts"), "{stdout}");
    assert!(
        stdout.contains("Kaspersky Endpoint Security for Linux"),
        "{stdout}"
    );
    let app = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("app-01 "))
        .unwrap_or_else(|| panic!("no app-01 line: {stdout}"));
    assert!(
        app.ends_with("12.1.0-1297 (protection frozen: bases of 2024-09-27)"),
        "{app}"
    );
    assert!(
        stdout.contains("down-01") && stdout.contains("unreachable"),
        "{stdout}"
    );

    // db-internal has a name only the bastion resolves, so its scan went through the jump.

    check_golden("sweep-scenarios.yaml", &normalize(&yaml, fleet.dir()));
}

fn host_findings(r: &Report) -> usize {
    r.hosts.iter().map(|h| h.findings.len()).sum()
}

#[test]
fn exit_codes_follow_the_spec() {
    let fleet = scenario_fleet(212);
    let inv = fleet.inventory_path();
    let inv = inv.to_str().unwrap();
    let code = |limit: &str| {
        run(&[
            "scan",
            "-i",
            inv,
            "--limit",
            limit,
            "-q",
            "--connect-timeout",
            "3s",
        ])
        .status
        .code()
    };
    assert_eq!(code("web-01"), Some(0), "clean host");
    assert_eq!(code("app-01"), Some(1), "banned software");
    assert_eq!(code("down-01"), Some(3), "not scanned, no finding");
    assert_eq!(
        code("web-01,down-01,app-01"),
        Some(1),
        "findings win over failures"
    );

    // Usage and configuration errors: 2, nothing scanned, a precise message.
    let bad = fleet.dir().join("bad.yaml");
    std::fs::write(&bad, "hosts:\n  - name: a\n    adress: x\n").unwrap();
    let out = run(&["scan", "-i", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{}:3:5: unknown field `adress`", bad.display())),
        "{err}"
    );

    let out = run(&["scan", "-i", inv, "--limit", "nosuchhost"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no hosts to sweep"));

    let out = run(&["scan", "-i", inv, "--shard", "3/2"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--shard"));
}

/// Starts fleetsweep with per-host log events on stderr and returns once each
/// of `hosts` has been logged as scanned: tests signal a sweep at a known
/// point, not after a fixed sleep that a loaded machine may not honour.
fn spawn_until_scanned(args: &[&str], hosts: &[&str]) -> std::process::Child {
    use std::io::BufRead;
    let mut child = Command::new(FLEETSWEEP)
        .args(args)
        .args(["-v", "--log-format", "json"])
        .env_remove("FLEETSWEEP_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn fleetsweep");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    // Keeps draining stderr after we stop listening, so fleetsweep never blocks on it.
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut pending: Vec<&str> = hosts.to_vec();
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let mut seen = Vec::new();
    while !pending.is_empty() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "{pending:?} not scanned within 90s; log:\n{}",
                seen.join("\n")
            )
        });
        if line.contains("\"host scanned\"") {
            pending.retain(|h| !line.contains(&format!("\"host\":\"{h}\"")));
        }
        seen.push(line);
    }
    child
}

#[test]
fn interrupted_sweep_writes_a_partial_report() {
    let fleet = scenario_fleet(213);
    let inv = fleet.inventory_path();
    let report_path = fleet.dir().join("partial.yaml");
    // Interrupt once the quick hosts are done; hang-01 and hung-01 never will.
    let mut child = spawn_until_scanned(
        &[
            "scan",
            "-i",
            inv.to_str().unwrap(),
            "--limit",
            "web-01,app-01,hang-01,hung-01",
            "--report",
            report_path.to_str().unwrap(),
            "--connect-timeout",
            "60s",
            "--host-timeout",
            "120s",
            "--no-state",
        ],
        &["web-01", "app-01"],
    );
    signal(child.id(), Signal::SIGINT).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "app-01's finding is still reported");
    let (_, r) = read_report(&report_path);
    assert!(!r.sweep.complete, "marked incomplete");
    assert_eq!(r.sweep.interrupted_by.as_deref(), Some("SIGINT"));
    assert_eq!(host(&r, "web-01").outcome, "scanned");
    assert_eq!(host(&r, "app-01").outcome, "scanned");
    assert_eq!(
        host(&r, "hang-01").outcome,
        "interrupted",
        "never reported clean"
    );
    assert_eq!(host(&r, "hung-01").outcome, "interrupted");
    assert_eq!(r.summary.hosts.get("interrupted"), Some(&2));
}

#[test]
fn sigterm_also_writes_a_partial_report() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 215,
        hosts: vec![
            ("web-01".into(), fleetsweep_e2e::Scenario::Clean),
            ("hang-01".into(), fleetsweep_e2e::Scenario::Hangs),
        ],
    })
    .unwrap();
    let report_path = fleet.dir().join("term.yaml");
    let inv = fleet.inventory_path();
    let mut child = spawn_until_scanned(
        &[
            "scan",
            "-i",
            inv.to_str().unwrap(),
            "--report",
            report_path.to_str().unwrap(),
            "--connect-timeout",
            "60s",
            "--no-state",
        ],
        &["web-01"],
    );
    signal(child.id(), Signal::SIGTERM).unwrap();
    assert_eq!(
        child.wait().unwrap().code(),
        Some(3),
        "no finding, one host not scanned"
    );
    let (_, r) = read_report(&report_path);
    assert!(!r.sweep.complete);
    assert_eq!(r.sweep.interrupted_by.as_deref(), Some("SIGTERM"));
    assert_eq!(host(&r, "web-01").outcome, "scanned");
    assert_eq!(host(&r, "hang-01").outcome, "interrupted");
}

/// The textfile that node_exporter reads: valid for the real `promtool`, and
/// counting what the sweep saw.
#[test]
fn metrics_file_passes_promtool_and_counts_the_fleet() {
    let fleet = scenario_fleet(216);
    let prom = fleet.dir().join("fleetsweep.prom");
    let inv = fleet.inventory_path();
    let out = run(&[
        "scan",
        "-i",
        inv.to_str().unwrap(),
        "--metrics-file",
        prom.to_str().unwrap(),
        "--metric-label",
        "site",
        "--connect-timeout",
        "3s",
        "--host-timeout",
        "8s",
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let body = std::fs::read_to_string(&prom).expect("metrics file written");
    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&prom).unwrap())
        .output()
        .expect("promtool (apt-get install -y prometheus; scripts/setup does this)");
    assert!(
        check.status.success(),
        "promtool check metrics failed:\n{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
    for line in [
        "fleetsweep_hosts{outcome=\"scanned\",site=\"lab\"} 7",
        "fleetsweep_hosts{outcome=\"timed_out\",site=\"lab\"} 2",
        "fleetsweep_host_scan_failure{host=\"wrongkey-01\",outcome=\"host_key_rejected\",site=\"lab\"} 1",
        "fleetsweep_host_finding{host=\"app-01\",policy=\"ban\",product=\"Kaspersky Endpoint Security for Linux\",rule=\"kaspersky/kesl\",site=\"lab\",status=\"new\",vendor=\"Kaspersky\"} 1",
        "fleetsweep_findings{policy=\"ban\",product=\"Kaspersky Endpoint Security for Linux\",rule=\"kaspersky/kesl\",site=\"lab\",status=\"new\",vendor=\"Kaspersky\"} 3",
        "fleetsweep_host_scan_duration_seconds_count 7",
        "fleetsweep_last_sweep_success 1",
        "fleetsweep_catalog_rules{catalog=\"kaspersky\"} 26",
    ] {
        assert!(body.lines().any(|l| l == line), "missing `{line}` in:\n{body}");
    }
    assert!(
        !body.contains("host=\"web-01\""),
        "clean hosts get no per-host series"
    );

    let out = run(&[
        "scan",
        "-i",
        inv.to_str().unwrap(),
        "--limit",
        "web-01",
        "--metric-label",
        "bad-label",
        "--metrics-file",
        prom.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`bad-label` cannot be a metric label"),
        "{}",
        text(&out.stderr)
    );
    // A comma list is split; a key given twice, or one the alerts use, is
    // refused before anything is scanned.
    for (labels, says) in [
        ("site,owner,site", "`site` is allow-listed twice"),
        (
            "site,severity",
            "`severity` is used by fleetsweep's own metrics or alerts",
        ),
    ] {
        let out = run(&[
            "scan",
            "-i",
            inv.to_str().unwrap(),
            "--limit",
            "web-01",
            "--metric-label",
            labels,
            "--metrics-file",
            prom.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{labels}");
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
}

#[test]
fn hosts_command_shows_resolved_hosts() {
    let fleet = scenario_fleet(214);
    let out = run(&[
        "hosts",
        "-i",
        fleet.inventory_path().to_str().unwrap(),
        "--format",
        "yaml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("name: db-internal"), "{s}");
    assert!(s.contains("internal-db.fleet.test"), "{s}");
    assert!(
        s.contains(&format!(
            "fsscan@{}:2222",
            fleet.host("bastion-01").address()
        )),
        "{s}"
    );

    // Offline bundles list as hosts too, each with its bundle folder.
    let bundles = e2e_dir().join("fixtures/offline");
    let out = run(&["hosts", "--offline", bundles.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("win-srv-01 "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(row.contains(" offline "), "{row}");
    assert!(row.contains("fixtures/offline/win-srv-01"), "{row}");
    assert!(row.contains("site=fra1"), "{row}");

    // WinRM hosts list their WinRM endpoint, authentication and where the
    // secret is (never the SSH port, never a secret).
    let winrm = e2e_dir().join("fixtures/inventory/valid-winrm.yaml");
    let out = run(&["hosts", "-i", winrm.to_str().unwrap(), "--format", "yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let y = text(&out.stdout);
    for want in [
        "url: http://10.0.1.5:5985/wsman",
        "credential: password from environment variable FLEETSWEEP_WINRM_PASSWORD",
        "url: https://win-02:5986/wsman",
        "credential: password from file /run/secrets/winrm",
        "spn: HTTP/win-03",
        "kdc: tcp://dc01.corp.example.com:88",
    ] {
        assert!(y.contains(want), "{want}:\n{y}");
    }
    let out = run(&["hosts", "-i", winrm.to_str().unwrap()]);
    let table = text(&out.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("win-01 "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("CORP\\svc-scan@http://10.0.1.5:5985/wsman (ntlm)"),
        "{row}"
    );

    // An Ansible inventory that turns certificate checks off is told they stay on.
    let ansible = e2e_dir().join("fixtures/inventory/ansible-windows.ini");
    let out = run(&["hosts", "-i", ansible.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("ansible_winrm_server_cert_validation=ignore is not honoured")
            && err.contains("host=win-01")
            && err.contains("ansible_winrm_ca_trust_path"),
        "{err}"
    );
    assert!(
        !err.contains('\x1b'),
        "no colour escapes when stderr is not a terminal: {err:?}"
    );
}

#[test]
fn local_scan_needs_no_setup() {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("local.yaml");
    let out = run(&[
        "scan",
        "--local",
        "--report",
        report_path.to_str().unwrap(),
        "-q",
    ]);
    let (_, r) = read_report(&report_path);
    // This machine runs no Kaspersky, but test hosts of tests running in
    // parallel are visible from here: their fake daemons (processes running
    // from /opt/kaspersky/...) are the only findings allowed.
    for f in r.hosts.iter().flat_map(|h| &h.findings) {
        assert!(
            f.evidence
                .iter()
                .all(|e| e.get("kind").map(String::as_str) == Some("process")),
            "unexpected local finding {f:?}"
        );
    }
    let want = if host_findings(&r) == 0 { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(want), "{}", text(&out.stderr));
    assert_eq!(r.hosts.len(), 1);
    assert_eq!(r.hosts[0].outcome, "scanned");
    let os = r.hosts[0].os.as_ref().expect("os detected");
    assert_eq!(
        os.get("family").cloned().flatten().as_deref(),
        Some("linux")
    );
}

#[test]
fn catalog_commands() {
    let out = run(&["catalog", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok: catalog kaspersky"));

    let out = run(&["catalog", "show", "kaspersky/kesl"]);
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    assert!(
        s.contains("Kaspersky Endpoint Security for Linux") && s.contains("2024-09-29"),
        "{s}"
    );

    let out = run(&["catalog", "list"]);
    assert!(text(&out.stdout).contains("kaspersky/unknown"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "catalog: {name: x, version: \"1\"}\nvendors:\n  - id: v\n    nme: V\n",
    )
    .unwrap();
    let out = run(&["catalog", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(&format!("{}:4:5: unknown field `nme`", bad.display())),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["catalog", "show", "kaspersky/nope"]);
    assert_eq!(out.status.code(), Some(2));
}
