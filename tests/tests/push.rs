//! `fleetsweep scan --push URL` against a real Prometheus Pushgateway
//! (Debian's `prometheus-pushgateway`) on a loopback port: PUT semantics
//! (a second push replaces the first), the grouping key, and a refused or
//! unreachable gateway (exit 2, the report still written).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::process::{Command, Output};
use std::time::Duration;

use fleetsweep_e2e::{Fleet, FleetSpec, Scenario};
use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn run(args: &[&str]) -> Output {
    Command::new(FLEETSWEEP)
        .args(args)
        .arg("--no-state")
        .env_remove("SSH_AUTH_SOCK")
        .output_within(RUN_LIMIT)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Lines of `page` for `metric` carrying every one of `labels` (`k="v"`).
fn series<'a>(page: &'a str, metric: &str, labels: &[&str]) -> Vec<&'a str> {
    page.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) || l.starts_with(&format!("{metric} ")))
        .filter(|l| labels.iter().all(|kv| l.contains(kv)))
        .collect()
}

fn value(line: &str) -> f64 {
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

fn promtool_check(page: &str) {
    fleetsweep_e2e::prom::promtool_check_metrics(page).unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn push_replaces_the_group_and_failures_exit_2_after_the_report() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 235,
        hosts: vec![
            ("web-01".into(), Scenario::Clean),
            ("app-01".into(), Scenario::Kesl),
            ("old-01".into(), Scenario::Remnants),
            ("down-01".into(), Scenario::NothingListening),
        ],
    })
    .expect("starting the test fleet");
    let gw = fleetsweep_e2e::prom::Pushgateway::start().unwrap();
    let inv = fleet.inventory_path();
    let inv = inv.to_str().unwrap();
    let report = fleet.dir().join("report.yaml");
    let prom = fleet.dir().join("fleetsweep.prom");

    // First push: the whole fleet.
    let out = run(&[
        "scan",
        "-i",
        inv,
        "-q",
        "--connect-timeout",
        "3s",
        "--push",
        &gw.url(),
        "--report",
        report.to_str().unwrap(),
        "--metrics-file",
        prom.to_str().unwrap(),
        "--metric-label",
        "site",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    promtool_check(&std::fs::read_to_string(&prom).unwrap());
    let page = gw.metrics_text().unwrap();
    promtool_check(&page);
    let group = ["job=\"fleetsweep\"", "instance=\"all\""];
    let kesl = series(
        &page,
        "fleetsweep_host_finding",
        &[
            group[0],
            group[1],
            "host=\"app-01\"",
            "rule=\"kaspersky/kesl\"",
            // Routing labels survive the gateway.
            "policy=\"ban\"",
            "site=\"lab\"",
        ],
    );
    assert_eq!(kesl.len(), 1, "{page}");
    assert_eq!(value(kesl[0]), 1.0);
    let scanned = series(
        &page,
        "fleetsweep_hosts",
        &[group[0], "outcome=\"scanned\""],
    );
    assert_eq!(scanned.len(), 1, "{page}");
    assert_eq!(value(scanned[0]), 3.0);
    assert_eq!(
        series(&page, "fleetsweep_host_scan_failure", &["host=\"down-01\""]).len(),
        1
    );
    assert_eq!(
        series(&page, "push_time_seconds", &group).len(),
        1,
        "the gateway's own push time: {page}"
    );
    assert_eq!(
        series(&page, "push_failure_time_seconds", &group)
            .iter()
            .map(|l| value(l))
            .collect::<Vec<_>>(),
        vec![0.0]
    );

    // Second push, a different subset: PUT replaces the group, so app-01's
    // and down-01's series are gone, not stale.
    let out = run(&[
        "scan",
        "-i",
        inv,
        "-q",
        "--limit",
        "web-01,old-01",
        "--push",
        &gw.url(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let page = gw.metrics_text().unwrap();
    assert!(
        series(&page, "fleetsweep_host_finding", &["host=\"app-01\""]).is_empty(),
        "app-01 must be gone after the second push:\n{page}"
    );
    assert!(series(&page, "fleetsweep_host_scan_failure", &["host=\"down-01\""]).is_empty());
    assert_eq!(
        series(&page, "fleetsweep_host_finding", &["host=\"old-01\""]).len(),
        1,
        "{page}"
    );
    let scanned = series(
        &page,
        "fleetsweep_hosts",
        &[group[0], "outcome=\"scanned\""],
    );
    assert_eq!(value(scanned[0]), 2.0, "{page}");

    // A shard pushes into a group of its own (instance I_of_N); a job name
    // with `/` travels base64-encoded and comes back intact.
    let out = run(&[
        "scan",
        "-i",
        inv,
        "-q",
        "--shard",
        "1/2",
        "--push",
        &gw.url(),
        "--push-job",
        "fleet/a",
    ]);
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "{}",
        text(&out.stderr)
    );
    let page = gw.metrics_text().unwrap();
    assert_eq!(
        series(
            &page,
            "push_time_seconds",
            &["job=\"fleet/a\"", "instance=\"1_of_2\""]
        )
        .len(),
        1,
        "{page}"
    );
    assert_eq!(
        series(
            &page,
            "fleetsweep_hosts",
            &[group[0], "outcome=\"scanned\""]
        )
        .len(),
        1,
        "the unsharded group is untouched"
    );

    // A push the gateway refuses: another job already has fleetsweep_hosts as
    // a counter, so ours (a gauge) is inconsistent and gets HTTP 400. (The
    // gateway checks every push against all groups, so ours go first.)
    let resp = agent()
        .put(&format!("{}/api/v1/admin/wipe", gw.url()))
        .send_empty()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let resp = agent()
        .put(&format!("{}/metrics/job/other", gw.url()))
        .send("# TYPE fleetsweep_hosts counter\nfleetsweep_hosts 1\n")
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    std::fs::remove_file(&report).unwrap();
    let out = run(&[
        "scan",
        "-i",
        inv,
        "-q",
        "--limit",
        "web-01",
        "--push",
        &gw.url(),
        "--report",
        report.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the Pushgateway refused the push to")
            && err.contains("HTTP 400")
            && err.contains("/metrics/job/fleetsweep/instance/all"),
        "{err}"
    );
    assert!(err.contains("the report was written to"), "{err}");
    assert!(report.exists(), "the sweep is not lost");
    assert!(std::fs::read_to_string(&report)
        .unwrap()
        .contains("name: web-01"));

    // A gateway that is down: exit 2, clear message, report written.
    let url = gw.url();
    drop(gw);
    std::fs::remove_file(&report).unwrap();
    let out = run(&[
        "scan",
        "-i",
        inv,
        "-q",
        "--limit",
        "web-01",
        "--push",
        &url,
        "--report",
        report.to_str().unwrap(),
    ]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot reach the Pushgateway at"), "{err}");
    assert!(report.exists(), "the sweep is not lost");

    // A URL that is no URL is a usage error.
    let out = run(&[
        "scan", "-i", inv, "-q", "--limit", "web-01", "--push", "gw:9091",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected an http:// or https:// URL"));
}
