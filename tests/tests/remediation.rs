//! End-to-end remediation tracking: the real `fleetsweep` binary sweeps real
//! sshd test hosts several times over one state store, while the tests change
//! the hosts in between (remove KESL, install it again, take a host down).
//!
//! `FLEETSWEEP_NOW` moves "now" forward for the status derivation, so due
//! dates and exception expiry pass without waiting. The store is checked with
//! the real `sqlite3` client, independent of fleetsweep's own code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fleetsweep_e2e::{e2e_dir, mutate, output_within, signal, Fleet, FleetSpec, Scenario, Signal};
use serde_json::Value;

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

const KESL: &str = "kaspersky/kesl";
const KESL_PRODUCT: &str = "Kaspersky Endpoint Security for Linux";

fn fleet(subnet: u8, hosts: &[(&str, Scenario)]) -> Fleet {
    Fleet::start(FleetSpec {
        subnet,
        hosts: hosts
            .iter()
            .map(|(n, s)| (n.to_string(), s.clone()))
            .collect(),
    })
    .expect("starting the test fleet")
}

fn fleetsweep(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(FLEETSWEEP);
    cmd.args(args).env_remove("SSH_AUTH_SOCK");
    cmd.env_remove("FLEETSWEEP_NOW");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    output_within(&mut cmd, Duration::from_secs(600))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One sweep's result.
struct Sweep {
    code: i32,
    report: Value,
    yaml: String,
    stderr: String,
}

static SWEEPS: AtomicUsize = AtomicUsize::new(0);

/// `fleetsweep scan` of the fleet at `now`, over `state`, with extra flags.
fn scan(fleet: &Fleet, state: &Path, now: &str, extra: &[&str]) -> Sweep {
    let n = SWEEPS.fetch_add(1, Ordering::SeqCst);
    let report_path = fleet.dir().join(format!("report-{n}.yaml"));
    let inv = fleet.inventory_path();
    let mut args = vec![
        "scan",
        "-i",
        inv.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--report",
        report_path.to_str().unwrap(),
        "--connect-timeout",
        "3s",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    let out = fleetsweep(&args, &[("FLEETSWEEP_NOW", now)]);
    let stderr = text(&out.stderr);
    let yaml = std::fs::read_to_string(&report_path)
        .unwrap_or_else(|_| panic!("no report written; stderr:\n{stderr}"));
    let report: Value = serde_saphyr::from_str(&yaml).expect("report parses");
    Sweep {
        code: out.status.code().unwrap_or(-1),
        report,
        yaml,
        stderr,
    }
}

fn host<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("host {name} not in the report"))
}

fn finding<'a>(r: &'a Value, host_name: &str, rule: &str) -> Option<&'a Value> {
    host(r, host_name)["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == rule)
}

fn kesl<'a>(s: &'a Sweep, host_name: &str) -> &'a Value {
    finding(&s.report, host_name, KESL).unwrap_or_else(|| {
        panic!(
            "no {KESL} finding on {host_name}:\n{}\nstderr: {}",
            s.yaml, s.stderr
        )
    })
}

fn sqlite(db: &Path, sql: &str) -> String {
    let out =
        Command::new("sqlite3").arg(db).arg(sql).output().expect(
            "the sqlite3 client is needed: run scripts/setup, or apt-get install -y sqlite3",
        );
    assert!(out.status.success(), "sqlite3 {sql}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

fn report_cmd(state: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["report", "--state", state.to_str().unwrap()];
    args.extend_from_slice(extra);
    fleetsweep(&args, &[])
}

const T0: &str = "2027-01-04T06:00:00Z";

#[test]
fn new_open_overdue_remediated_reinstalled() {
    let fleet = fleet(
        245,
        &[("app-01", Scenario::Kesl), ("web-01", Scenario::Clean)],
    );
    let state = fleet.dir().join("state.db");

    let s1 = scan(&fleet, &state, T0, &[]);
    assert_eq!(s1.code, 1, "a new banned finding fails the sweep");
    let f = kesl(&s1, "app-01");
    assert_eq!(f["status"], "new");
    assert_eq!(f["first_seen"], T0);
    assert_eq!(f["due"], "2027-02-03", "first_seen + 30 days of grace");
    assert_eq!(
        f["deadline"], "2024-09-29",
        "the legal deadline is long past, yet a first sighting is new, not overdue"
    );
    assert_eq!(s1.report["summary"]["findings"]["new"], 1);

    let s2 = scan(&fleet, &state, "2027-01-05T06:00:00Z", &[]);
    assert_eq!(s2.code, 1);
    let f = kesl(&s2, "app-01");
    assert_eq!(f["status"], "open");
    assert_eq!(f["first_seen"], T0, "first_seen stays the first sighting");
    assert_eq!(f["last_seen"], "2027-01-05T06:00:00Z");

    let metrics = fleet.dir().join("fleetsweep.prom");
    let s3 = scan(
        &fleet,
        &state,
        "2027-02-04T06:00:00Z",
        &["--metrics-file", metrics.to_str().unwrap()],
    );
    assert_eq!(s3.code, 1);
    assert_eq!(kesl(&s3, "app-01")["status"], "overdue");
    assert_eq!(s3.report["summary"]["findings"]["overdue"], 1);
    assert_eq!(
        remediations_total(&metrics),
        Some(0),
        "the counter exists at 0 before the first remediation, so increase() sees it"
    );

    mutate::purge_kesl(fleet.host("app-01")).unwrap();
    let s4 = scan(
        &fleet,
        &state,
        "2027-02-10T06:00:00Z",
        &["--metrics-file", metrics.to_str().unwrap()],
    );
    assert_eq!(
        s4.code, 0,
        "every host scanned, the only finding remediated: {}",
        s4.stderr
    );
    let f = kesl(&s4, "app-01");
    assert_eq!(f["status"], "remediated", "{}", s4.yaml);
    assert_eq!(f["remediated_at"], "2027-02-10T06:00:00Z");
    assert_eq!(f["first_seen"], T0);
    assert_eq!(s4.report["summary"]["findings"]["remediated"], 1);
    assert_eq!(
        s4.report["summary"]["hosts"]["clean"], 2,
        "a remediated host is clean"
    );
    assert_eq!(remediations_total(&metrics), Some(1));
    // The remediation time is stored: 2027-01-04T06:00 → 2027-02-10T06:00 = 37 days.
    assert_eq!(
        sqlite(&state, "SELECT host, rule, seconds FROM remediations"),
        format!("app-01|{KESL}|{}", 37 * 86400)
    );

    let s5 = scan(
        &fleet,
        &state,
        "2027-02-11T06:00:00Z",
        &["--metrics-file", metrics.to_str().unwrap()],
    );
    assert_eq!(s5.code, 0);
    assert!(
        finding(&s5.report, "app-01", KESL).is_none(),
        "reported as remediated once, then dropped"
    );
    assert_eq!(
        remediations_total(&metrics),
        Some(1),
        "all-time count, not per sweep"
    );

    mutate::reinstall_kesl_package(fleet.host("app-01")).unwrap();
    let s6 = scan(&fleet, &state, "2027-02-12T06:00:00Z", &[]);
    assert_eq!(s6.code, 1, "a reinstalled banned product fails the sweep");
    let f = kesl(&s6, "app-01");
    assert_eq!(f["status"], "reinstalled");
    assert_eq!(f["first_seen"], T0);
    assert_eq!(
        f["due"], "2027-03-14",
        "a reinstall starts a new grace period"
    );
    assert!(f.get("remediated_at").is_none());

    // `fleetsweep report`: the store renders every old sweep exactly.
    let id = |s: &Sweep| s.report["sweep"]["id"].as_str().unwrap().to_string();
    let out = report_cmd(&state, &["--sweep", &id(&s1)[..8]]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        s1.yaml,
        "report --sweep renders the first sweep byte for byte"
    );
    let out = report_cmd(&state, &[]);
    assert_eq!(text(&out.stdout), s6.yaml, "default: the latest sweep");

    let out = report_cmd(&state, &["--list"]);
    let list = text(&out.stdout);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 7, "header + 6 sweeps:\n{list}");
    assert!(lines[0].starts_with("ID "));
    assert!(lines[1].starts_with(&id(&s1)) && lines[6].starts_with(&id(&s6)));
    let out = report_cmd(&state, &["--list", "--format", "json"]);
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let open: Vec<u64> = rows
        .iter()
        .map(|r| r["open_findings"].as_u64().unwrap())
        .collect();
    assert_eq!(open, [1, 1, 1, 0, 0, 1]);

    let out = report_cmd(&state, &["--sweep", &id(&s4), "--diff", &id(&s3)]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let diff: Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(diff["previous_sweep"], id(&s3).as_str());
    assert_eq!(diff["current_sweep"], id(&s4).as_str());
    assert_eq!(diff["changed"].as_array().unwrap().len(), 1, "{diff}");
    assert_eq!(diff["changed"][0]["host"], "app-01");
    assert_eq!(diff["changed"][0]["rule"], KESL);
    assert_eq!(
        diff["changed"][0]["status"],
        serde_json::json!({"from": "overdue", "to": "remediated"})
    );
    assert_eq!(diff["appeared"], serde_json::json!([]));
    let out = report_cmd(&state, &["--sweep", &id(&s5), "--diff", &id(&s4)]);
    let diff: Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(diff["disappeared"].as_array().unwrap().len(), 1, "{diff}");
    assert_eq!(diff["disappeared"][0]["host"], "app-01");
    assert_eq!(diff["disappeared"][0]["status"], "remediated");
    let out = report_cmd(
        &state,
        &["--sweep", &id(&s5), "--diff", &id(&s4), "--format", "text"],
    );
    assert!(
        text(&out.stdout).contains("app-01"),
        "{}",
        text(&out.stdout)
    );

    let json_out = fleet.dir().join("latest.json");
    let out = report_cmd(
        &state,
        &["--format", "json", "--output", json_out.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: Value = serde_json::from_slice(&std::fs::read(&json_out).unwrap()).unwrap();
    assert_eq!(j, s6.report, "json and yaml carry the same report");

    // Every format renders the latest sweep from the store (each format's own
    // validation against its schema, consumer or browser is in exporters/tests).
    let out = report_cmd(&state, &["--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = text(&out.stdout);
    assert!(csv.lines().count() >= 2 && csv.contains("app-01"), "{csv}");
    let out = report_cmd(&state, &["--format", "junit"]);
    let junit = text(&out.stdout);
    assert!(
        junit.contains("<testcase") && junit.contains("app-01"),
        "{junit}"
    );
    assert!(
        junit.contains("<failure"),
        "the reinstalled KESL fails: {junit}"
    );
    let out = report_cmd(&state, &["--format", "sarif"]);
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], KESL);
    let out = report_cmd(&state, &["--format", "html"]);
    let html = text(&out.stdout);
    assert!(
        html.contains("app-01") && html.contains("<svg"),
        "burn-down over the 6 sweeps"
    );
    let out = report_cmd(&state, &["--format", "plan"]);
    let plan = text(&out.stdout);
    assert!(plan.contains("app-01") && plan.contains(KESL), "{plan}");
    // --format is a closed set, listed when a wrong one is given.
    let out = report_cmd(&state, &["--format", "pdf"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("invalid value 'pdf' for '--format <FORMAT>'")
            && err.contains("yaml, json, csv, junit, sarif, html, plan"),
        "{err}"
    );
    let out = report_cmd(&state, &["--list", "--format", "sarif"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--list prints a table or json, not `sarif`"),
        "{}",
        text(&out.stderr)
    );

    // A saved report renders without any state store (an ephemeral CI job):
    // the same SARIF as from the store, JUnit to stdout with `-o -`, and a
    // diff of two saved reports.
    let dir = fleet.dir();
    let (old_yaml, new_yaml) = (dir.join("s5.yaml"), dir.join("s6.yaml"));
    std::fs::write(&old_yaml, &s5.yaml).unwrap();
    std::fs::write(&new_yaml, &s6.yaml).unwrap();
    let no_store = dir.join("never-created.db");
    let from = |extra: &[&str]| {
        let mut args = vec![
            "report",
            "--from",
            new_yaml.to_str().unwrap(),
            "--state",
            no_store.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        fleetsweep(&args, &[])
    };
    let out = from(&["--format", "sarif"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let from_file: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        from_file, sarif,
        "the saved report renders as the stored sweep does"
    );
    assert_eq!(
        from_file["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
            ["uri"],
        "hosts/app-01"
    );
    let out = from(&["--format", "junit", "-o", "-"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("<failure"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !Path::new("-").exists(),
        "`-o -` is stdout, not a file named -"
    );
    let out = from(&["--diff", old_yaml.to_str().unwrap(), "--format", "text"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("app-01"),
        "{}",
        text(&out.stdout)
    );
    let out = from(&["--format", "html"]);
    assert!(text(&out.stdout).contains("app-01"), "html from one report");
    assert!(!no_store.exists(), "--from never creates a state store");
    // A broken report names the file, line and column.
    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, s6.yaml.replacen("hosts:", "hosts: [", 1)).unwrap();
    let out = fleetsweep(
        &[
            "report",
            "--from",
            broken.to_str().unwrap(),
            "--format",
            "sarif",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("{}:", broken.display())) && err.contains("fleetsweep scan --report"),
        "{err}"
    );
    let out = fleetsweep(&["report", "--from", "/nonexistent/r.yaml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("/nonexistent/r.yaml"),
        "{}",
        text(&out.stderr)
    );
}

/// `fleetsweep_remediations_total{vendor="Kaspersky",product="…KESL…"}` from a textfile.
fn remediations_total(metrics: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(metrics).unwrap();
    text.lines()
        .filter(|l| l.starts_with("fleetsweep_remediations_total{"))
        .find(|l| {
            l.contains("vendor=\"Kaspersky\"") && l.contains(&format!("product=\"{KESL_PRODUCT}\""))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn exception_applies_then_expires() {
    let fleet = fleet(
        246,
        &[("lab-01", Scenario::Kesl), ("web-01", Scenario::Clean)],
    );
    let state = fleet.dir().join("state.db");
    let exceptions = fleet.dir().join("exceptions.yaml");
    std::fs::write(
        &exceptions,
        "exceptions:\n\
         \x20 - hosts: \"lab-*\"\n\
         \x20   rule: kaspersky/kesl\n\
         \x20   reason: malware analysis lab, isolated VLAN\n\
         \x20   approver: ciso@example.com\n\
         \x20   expires: 2027-03-31\n\
         \x20 - labels: {scenario: rpm-network-agent}\n\
         \x20   rule: \"kaspersky/*\"\n\
         \x20   reason: matches no host of this fleet\n\
         \x20   approver: ciso@example.com\n\
         \x20   expires: 2027-12-31\n",
    )
    .unwrap();
    let ex = ["--exceptions", exceptions.to_str().unwrap()];
    let source = format!("{}:2", exceptions.display());

    let s1 = scan(&fleet, &state, T0, &ex);
    let f = kesl(&s1, "lab-01");
    assert_eq!(f["status"], "new", "first sight is always new");
    assert_eq!(f["exception"]["source"], source.as_str());
    assert_eq!(f["exception"]["approver"], "ciso@example.com");
    assert_eq!(
        s1.code, 0,
        "the only banned finding is covered by an active exception"
    );
    let applied = &s1.report["exceptions"]["applied"];
    assert_eq!(applied.as_array().unwrap().len(), 1);
    assert_eq!(applied[0]["source"], source.as_str());
    assert_eq!(applied[0]["findings"], 1);
    let unused = &s1.report["exceptions"]["unused"];
    assert_eq!(unused[0]["hosts"], "labels scenario=rpm-network-agent");
    assert!(
        s1.stderr.contains("matched no finding"),
        "unused exceptions are warned about: {}",
        s1.stderr
    );

    // Past the due date, but excepted.
    let s2 = scan(&fleet, &state, "2027-02-15T06:00:00Z", &ex);
    assert_eq!(kesl(&s2, "lab-01")["status"], "excepted");
    assert_eq!(s2.code, 0);
    assert_eq!(s2.report["summary"]["findings"]["excepted"], 1);

    // The expiry day itself still applies; the day after, it stops on its own.
    let s3 = scan(&fleet, &state, "2027-03-31T23:00:00Z", &ex);
    assert_eq!(kesl(&s3, "lab-01")["status"], "excepted");
    let s4 = scan(&fleet, &state, "2027-04-01T06:00:00Z", &ex);
    let f = kesl(&s4, "lab-01");
    assert_eq!(f["status"], "overdue", "back to what it is: due 2027-02-03");
    assert!(f.get("exception").is_none());
    assert_eq!(s4.code, 1);
    let expired = &s4.report["exceptions"]["expired"];
    assert_eq!(expired.as_array().unwrap().len(), 1);
    assert_eq!(expired[0]["source"], source.as_str());
    assert_eq!(expired[0]["findings"], 1);
    assert!(
        s4.stderr.contains("expired on 2027-03-31"),
        "expired exceptions are warned about: {}",
        s4.stderr
    );

    // A broken exceptions file stops the scan before anything is scanned.
    let bad = e2e_dir().join("fixtures/exceptions/invalid-no-reason.yaml");
    let inv = fleet.inventory_path();
    let out = fleetsweep(
        &[
            "scan",
            "-i",
            inv.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--exceptions",
            bad.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!("fleetsweep: error: {}:2:5: exception without `reason`: every exception says why (`reason`), who approved it (`approver`) and when it ends (`expires`)\n", bad.display())
    );
    assert_eq!(
        sqlite(&state, "SELECT count(*) FROM sweeps"),
        "4",
        "nothing was scanned or recorded"
    );
}

#[test]
fn host_down_is_unverified_and_limit_touches_no_other_host() {
    let fleet = fleet(
        247,
        &[
            ("app-01", Scenario::Kesl),
            ("db-01", Scenario::Kesl),
            ("web-01", Scenario::Clean),
        ],
    );
    let state = fleet.dir().join("state.db");
    let s1 = scan(&fleet, &state, T0, &[]);
    assert_eq!(kesl(&s1, "db-01")["status"], "new");

    let s2 = scan(
        &fleet,
        &state,
        "2027-01-05T06:00:00Z",
        &["--limit", "app-01"],
    );
    assert_eq!(s2.report["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(kesl(&s2, "app-01")["status"], "open");

    mutate::stop_host(fleet.host("db-01")).unwrap();
    let s3 = scan(&fleet, &state, "2027-01-06T06:00:00Z", &[]);
    assert_eq!(host(&s3.report, "db-01")["outcome"], "unreachable");
    let f = kesl(&s3, "db-01");
    assert_eq!(
        f["status"], "unverified",
        "never reported clean or remediated"
    );
    assert_eq!(
        f["last_verified"], T0,
        "last successful scan of db-01: the --limit sweep did not touch it"
    );
    assert_eq!(f["first_seen"], T0);
    assert_eq!(
        f["evidence"],
        kesl(&s1, "db-01")["evidence"],
        "last known evidence"
    );
    assert_eq!(kesl(&s3, "app-01")["status"], "open");
    assert_eq!(s3.report["summary"]["findings"]["unverified"], 1);
    assert_eq!(s3.code, 1, "app-01 is still open");

    let s4 = scan(
        &fleet,
        &state,
        "2027-01-07T06:00:00Z",
        &["--limit", "db-01"],
    );
    assert_eq!(kesl(&s4, "db-01")["status"], "unverified");
    assert_eq!(
        s4.code, 3,
        "no open finding, but a host could not be scanned"
    );
    // Nothing of db-01 was remediated on the way.
    assert_eq!(sqlite(&state, "SELECT count(*) FROM remediations"), "0");

    // An interrupted sweep: finished hosts are committed, the host it was
    // still waiting for is `interrupted` and its finding `unverified`.
    mutate::freeze_host(fleet.host("app-01")).unwrap();
    let report_path = fleet.dir().join("interrupted.yaml");
    let inv = fleet.inventory_path();
    let mut child = Command::new(FLEETSWEEP)
        .args([
            "scan",
            "-i",
            inv.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--report",
            report_path.to_str().unwrap(),
            "--connect-timeout",
            "60s",
            "-v",
            "--log-format",
            "json",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .env("FLEETSWEEP_NOW", "2027-01-08T06:00:00Z")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once web-01 and db-01 are done (app-01 never answers).
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut done = std::collections::BTreeSet::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            for h in ["web-01", "db-01"] {
                if line.contains(&format!("\"host\":\"{h}\"")) {
                    done.insert(h);
                }
            }
            if done.len() == 2 {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("web-01 and db-01 finish");
    signal(child.id(), Signal::SIGINT).unwrap();
    let code = child.wait().unwrap().code();
    reader.join().unwrap();
    mutate::thaw_host(fleet.host("app-01")).unwrap();
    assert_eq!(
        code,
        Some(3),
        "nothing open was seen, hosts were not scanned"
    );
    let r: Value = serde_saphyr::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    assert_eq!(host(&r, "app-01")["outcome"], "interrupted");
    let f = finding(&r, "app-01", KESL).unwrap();
    assert_eq!(f["status"], "unverified");
    assert_eq!(f["last_verified"], "2027-01-06T06:00:00Z");
    assert_eq!(host(&r, "web-01")["outcome"], "scanned");
    assert_eq!(
        sqlite(
            &state,
            "SELECT s.complete, h.outcome FROM sweeps s JOIN host_results h ON h.sweep = s.seq \
             WHERE s.seq = (SELECT max(seq) FROM sweeps) ORDER BY h.host"
        ),
        "0|interrupted\n0|unreachable\n0|scanned",
        "the incomplete sweep is committed with what it has"
    );
    assert_eq!(
        sqlite(
            &state,
            "SELECT last_verified FROM verified WHERE host = 'web-01'"
        ),
        "2027-01-08T06:00:00Z"
    );
}

/// Checks that every sweep in the store is complete and the file is sound.
fn assert_store_consistent(db: &Path) {
    assert_eq!(sqlite(db, "PRAGMA integrity_check"), "ok");
    assert_eq!(
        sqlite(
            db,
            "SELECT count(*) FROM sweeps s WHERE s.hosts != \
             (SELECT count(*) FROM host_results h WHERE h.sweep = s.seq)"
        ),
        "0",
        "a sweep with missing host results"
    );
    assert_eq!(
        sqlite(
            db,
            "SELECT count(*) FROM sweeps s WHERE s.open_findings != \
             (SELECT count(*) FROM finding_history f WHERE f.sweep = s.seq \
              AND f.status IN ('new', 'open', 'overdue', 'reinstalled'))"
        ),
        "0",
        "a sweep with missing finding history"
    );
    assert_eq!(
        sqlite(
            db,
            "SELECT count(*) FROM tracks WHERE sweep NOT IN (SELECT seq FROM sweeps)"
        ),
        "0",
        "tracks written by a sweep that is not there"
    );
}

#[test]
fn kill_9_mid_commit_leaves_the_store_consistent() {
    let hosts: Vec<(String, Scenario)> = (0..24)
        .map(|i| {
            (
                format!("gen-{i:02}"),
                Scenario::Generated {
                    kaspersky: i % 2 == 0,
                },
            )
        })
        .collect();
    let refs: Vec<(&str, Scenario)> = hosts.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
    let fleet = fleet(248, &refs);
    let state = fleet.dir().join("state.db");
    let first = scan(&fleet, &state, T0, &[]);
    assert_eq!(first.code, 1);
    assert_store_consistent(&state);

    // 24 hosts × 40 ms: the commit takes about a second; kill at points across it.
    let inv = fleet.inventory_path();
    let mut kills = Vec::new();
    for k in 0..8u64 {
        let mut child = Command::new(FLEETSWEEP)
            .args([
                "scan",
                "-i",
                inv.to_str().unwrap(),
                "--state",
                state.to_str().unwrap(),
                "--no-progress",
                "-v",
            ])
            .env_remove("SSH_AUTH_SOCK")
            .env("FLEETSWEEP_NOW", "2027-01-05T06:00:00Z")
            .env("FLEETSWEEP_TEST_COMMIT_PAUSE_MS", "40")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut all = String::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("committing the sweep") {
                    let _ = tx.send(Instant::now());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        let started = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the sweep reaches its commit");
        let delay = Duration::from_millis(k * 85);
        std::thread::sleep(delay.saturating_sub(started.elapsed()));
        signal(child.id(), Signal::SIGKILL).unwrap();
        let status = child.wait().unwrap();
        let log = reader.join().unwrap();
        assert_eq!(
            status.code(),
            None,
            "killed by SIGKILL during the commit (delay {delay:?}):\n{log}"
        );
        kills.push(delay);
        assert_store_consistent(&state);
        assert_eq!(
            sqlite(&state, "SELECT count(*) FROM sweeps"),
            "1",
            "a sweep killed mid-commit is absent, not half there"
        );
    }
    // The store still works: the next sweep commits and sees the history.
    let next = scan(&fleet, &state, "2027-01-06T06:00:00Z", &[]);
    assert_eq!(next.code, 1);
    assert_eq!(kesl(&next, "gen-00")["status"], "open");
    assert_eq!(next.report["summary"]["findings"]["open"], 12);
    assert_store_consistent(&state);
    assert_eq!(sqlite(&state, "SELECT count(*) FROM sweeps"), "2");
    eprintln!("killed at {kills:?} into the commit; store consistent each time");
}

fn local_scan(state: &Path) -> Output {
    fleetsweep(
        &["scan", "--local", "--state", state.to_str().unwrap(), "-q"],
        &[],
    )
}

fn assert_refused(state: &Path, want: &str) {
    for out in [local_scan(state), report_cmd(state, &[])] {
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert_eq!(text(&out.stderr), format!("fleetsweep: error: {want}\n"));
    }
}

#[test]
fn unusable_state_files_are_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { dir.path().join(n) };

    let missing = p("missing.db");
    let out = report_cmd(&missing, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "fleetsweep: error: no state store at {}: run `fleetsweep scan` first (or pass --state)\n",
            missing.display()
        )
    );

    let newer = p("newer.db");
    let out = local_scan(&newer);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    let known = sqlite(&newer, "PRAGMA user_version");
    sqlite(&newer, "PRAGMA user_version = 99");
    assert_refused(
        &newer,
        &format!(
            "{} was written by a newer fleetsweep (schema 99, this build knows {known}): upgrade, or point --state elsewhere",
            newer.display()
        ),
    );

    let not_sqlite = p("notes.db");
    std::fs::write(
        &not_sqlite,
        "these are my notes, not a database\n".repeat(200),
    )
    .unwrap();
    assert_refused(
        &not_sqlite,
        &format!(
            "{} cannot be used as the state store: it is not an SQLite database; move it away, or point --state elsewhere",
            not_sqlite.display()
        ),
    );

    let other = p("other.db");
    sqlite(&other, "CREATE TABLE t (x); INSERT INTO t VALUES (1)");
    assert_refused(
        &other,
        &format!(
            "{} cannot be used as the state store: it is an SQLite database of another program; move it away, or point --state elsewhere",
            other.display()
        ),
    );

    // A store truncated to 0 bytes (a full disk, a bad copy): SQLite would
    // take it for a new database and start the history over.
    let empty = p("empty.db");
    std::fs::write(&empty, b"").unwrap();
    assert_refused(
        &empty,
        &format!(
            "{} cannot be used as the state store: it is empty (0 bytes), so the history it held is gone; restore it from a backup, or delete it to start a new history on purpose; move it away, or point --state elsewhere",
            empty.display()
        ),
    );
    assert_eq!(
        std::fs::metadata(&empty).unwrap().len(),
        0,
        "left untouched"
    );

    // A real store with damaged pages.
    let corrupt = p("corrupt.db");
    let out = local_scan(&corrupt);
    assert!(matches!(out.status.code(), Some(0 | 1)));
    let page: usize = sqlite(&corrupt, "PRAGMA page_size").parse().unwrap();
    let mut bytes = std::fs::read(&corrupt).unwrap();
    assert!(bytes.len() >= 4 * page, "the store has several pages");
    for b in &mut bytes[page + 100..3 * page] {
        *b = 0xA5;
    }
    std::fs::write(&corrupt, &bytes).unwrap();
    assert_refused(
        &corrupt,
        &format!(
            "{} cannot be used as the state store: the database is damaged (corrupt); move it away, or point --state elsewhere",
            corrupt.display()
        ),
    );
}

/// Issue 5: KESL seen in one sweep, then gone with UltraAV installed in its
/// place: the carried KESL finding is `remediated` with state `replaced`, and
/// the watched successor is `new` without failing the sweep.
#[test]
fn kesl_replaced_by_ultraav_between_sweeps() {
    let fleet = fleet(229, &[("desk-01", Scenario::Kesl)]);
    let state = fleet.dir().join("state.db");
    let root = e2e_dir();
    let kaspersky = root.join("../configs/catalog/kaspersky.yaml");
    let ultraav = root.join("fixtures/catalog/ultraav-linux.yaml");
    let catalogs = [
        "--catalog",
        kaspersky.to_str().unwrap(),
        "--catalog",
        ultraav.to_str().unwrap(),
    ];

    let s1 = scan(&fleet, &state, T0, &catalogs);
    assert_eq!(s1.code, 1, "KESL installed fails the sweep: {}", s1.stderr);
    let f = kesl(&s1, "desk-01");
    assert_eq!(
        (&f["status"], &f["state"]),
        (&"new".into(), &"installed".into())
    );
    assert!(finding(&s1.report, "desk-01", "pango/ultraav").is_none());

    mutate::purge_kesl(fleet.host("desk-01")).unwrap();
    fleetsweep_e2e::mutate_ultraav::install_ultraav(fleet.host("desk-01")).unwrap();
    let now = "2027-01-06T06:00:00Z";
    let s2 = scan(&fleet, &state, now, &catalogs);
    assert_eq!(
        s2.code, 0,
        "KESL gone, UltraAV only watched: {}\n{}",
        s2.stderr, s2.yaml
    );
    let f = kesl(&s2, "desk-01");
    assert_eq!(f["status"], "remediated", "{}", s2.yaml);
    assert_eq!(f["state"], "replaced", "{}", s2.yaml);
    assert_eq!(f["remediated_at"], now);
    assert_eq!(f["first_seen"], T0);
    let u = finding(&s2.report, "desk-01", "pango/ultraav")
        .unwrap_or_else(|| panic!("no UltraAV finding:\n{}", s2.yaml));
    assert_eq!(
        (&u["status"], &u["state"], &u["policy"]),
        (&"new".into(), &"installed".into(), &"watch".into())
    );
    assert!(u["evidence"].to_string().contains("ultraav 1.0.4"), "{u}");
    assert_eq!(s2.report["summary"]["findings"]["remediated"], 1);
    assert_eq!(s2.report["summary"]["hosts"]["clean"], 1);
    // The stored report says the same.
    let stored = report_cmd(&state, &["--format", "yaml"]);
    let stored = text(&stored.stdout);
    assert!(stored.contains("state: replaced"), "{stored}");

    // A year on, far past any grace period: the watched product is still
    // tracked, `open`, never `overdue`, and its metrics carry policy="watch"
    // (which the alert rules leave out), so nobody is paged for it.
    let metrics = fleet.dir().join("later.prom");
    let mut later_args = catalogs.to_vec();
    later_args.extend(["--metrics-file", metrics.to_str().unwrap()]);
    let s3 = scan(&fleet, &state, "2028-01-06T06:00:00Z", &later_args);
    assert_eq!(s3.code, 0, "watched only: {}\n{}", s3.stderr, s3.yaml);
    let u = finding(&s3.report, "desk-01", "pango/ultraav")
        .unwrap_or_else(|| panic!("no UltraAV finding:\n{}", s3.yaml));
    assert_eq!(u["status"], "open", "{u}");
    assert_eq!(u["first_seen"], now, "{u}");
    assert_eq!(s3.report["summary"]["findings"]["overdue"], 0);
    let page = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        page.lines().any(|l| l
            == "fleetsweep_host_finding{host=\"desk-01\",policy=\"watch\",product=\"UltraAV\",rule=\"pango/ultraav\",status=\"open\",vendor=\"Pango Group\"} 1"),
        "{page}"
    );
    assert!(!page.contains("status=\"overdue\""), "{page}");
}
