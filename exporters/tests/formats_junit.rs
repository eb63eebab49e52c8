//! JUnit XML read by a real consumer: Python's `junitparser` (Debian package
//! `python3-junitparser`, on the strict stdlib XML parser), the library CI
//! plugins use to merge and inspect JUnit reports. It must parse the file,
//! agree with our count attributes when it recomputes them from the test
//! cases, and give back each host's result and the hostile strings.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

use fleetsweep_exporters::formats::{render, Format};
use serde_json::Value;
use support::*;

/// Debian's interpreter, where `python3-junitparser` installs (a pyenv or
/// venv `python3` earlier on PATH would not see it).
const PYTHON: &str = "/usr/bin/python3";

const READER: &str = r#"
import json, sys
from junitparser import JUnitXml
xml = JUnitXml.fromfile(sys.argv[1])
keys = ("tests", "failures", "errors", "skipped")
out = {"root": {k: getattr(xml, k) for k in keys}, "suites": []}
for suite in xml:
    written = {k: getattr(suite, k) for k in keys}
    cases = []
    for case in suite:
        cases.append({
            "name": case.name,
            "classname": case.classname,
            "time": case.time,
            "result": [{"tag": type(r).__name__, "message": r.message, "type": r.type, "text": r.text}
                       for r in case.result],
            "system_out": case.system_out,
        })
    suite.update_statistics()
    out["suites"].append({
        "name": suite.name,
        "timestamp": suite.timestamp,
        "written": written,
        "recomputed": {k: getattr(suite, k) for k in keys},
        "properties": [[p.name, p.value] for p in suite.properties()],
        "cases": cases,
    })
print(json.dumps(out))
"#;

fn consume(xml: &str, name: &str) -> Value {
    let ok = Command::new(PYTHON)
        .args(["-c", "import junitparser"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "{PYTHON} with junitparser is needed: run scripts/setup, or apt-get install -y python3-junitparser"
    );
    let dir = workdir(name);
    let path = dir.join("junit.xml");
    std::fs::write(&path, xml).unwrap();
    let out = Command::new(PYTHON)
        .args(["-c", READER])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "junitparser rejected the file: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn case<'a>(suite: &'a Value, host: &str) -> &'a Value {
    suite["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == host)
        .unwrap_or_else(|| panic!("no test case for {host}"))
}

fn results(case: &Value) -> Vec<String> {
    case["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tag"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn junit_counts_failures_and_errors_per_host_as_a_real_consumer_reads_them() {
    let r = fleet();
    let xml = render(Format::Junit, &r, &[]).unwrap();
    let got = consume(&xml, "junit-counts");

    let suites = got["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 1, "one testsuite per sweep");
    let suite = &suites[0];
    assert_eq!(suite["name"], "fleetsweep sweep sweep-0003");
    assert_eq!(suite["timestamp"], "2026-11-22T06:00:00");
    // Scanned hosts with an open ban finding: web-01 (new), db-02 (overdue),
    // old-05 (reinstalled), mail-07 (open), the hostile host (new).
    let expected = serde_json::json!({"tests": 15, "failures": 5, "errors": 6, "skipped": 0});
    assert_eq!(suite["written"], expected);
    assert_eq!(
        suite["recomputed"], expected,
        "attributes disagree with the test cases"
    );
    assert_eq!(got["root"], expected);

    let props: Vec<(String, String)> = suite["properties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().unwrap().into()))
        .collect();
    assert!(props.contains(&("sweep_id".into(), "sweep-0003".into())));
    assert!(props.contains(&("catalog".into(), "kaspersky 2026.11 (31 rules)".into())));

    for c in suite["cases"].as_array().unwrap() {
        assert_eq!(c["classname"], "fleetsweep");
    }
    let names: Vec<&str> = suite["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "test cases in host order");
    assert_eq!(names.len(), 15);

    for h in ["web-01", "db-02", "old-05", "mail-07", EVIL_HOST] {
        assert_eq!(results(case(suite, h)), ["Failure"], "{h}");
    }
    for h in ["lab-03", "app-04", "clean-06", "home-08"] {
        assert!(results(case(suite, h)).is_empty(), "{h} should pass");
    }
    for (h, outcome) in [
        ("down-10", "unreachable"),
        ("auth-11", "auth_failed"),
        ("key-12", "host_key_rejected"),
        ("slow-13", "timed_out"),
        ("probe-14", "probe_failed"),
        ("stop-15", "interrupted"),
    ] {
        let c = case(suite, h);
        assert_eq!(results(c), ["Error"], "{h}");
        assert_eq!(c["result"][0]["type"], outcome);
        assert!(c["result"][0]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("not scanned: {outcome}")));
    }

    // Failure: message lists the rules, body has the evidence.
    let db = case(suite, "db-02");
    assert_eq!(
        db["result"][0]["message"],
        "banned software: kaspersky/klnagent"
    );
    let body = db["result"][0]["text"].as_str().unwrap();
    assert!(body.contains("kaspersky/klnagent [overdue] Kaspersky Security Center Network Agent (remnants), policy ban"), "{body}");
    assert!(body.contains("path: /opt/kaspersky/klnagent64"));
    assert!(body.contains("due 2026-12-01"));
    // The watched product goes to system-out, not into the failure.
    assert!(!body.contains("UltraAV"));
    let out = db["system_out"].as_str().unwrap();
    assert!(
        out.contains("ultraav/ultraav [open] UltraAV (installed), policy watch"),
        "{out}"
    );
    assert!(out.contains("process (ps): /opt/ultraav/bin/uav"));

    let lab = case(suite, "lab-03")["system_out"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        lab.contains("[excepted]") && lab.contains("excepted until 2027-03-31 by ciso@example.com")
    );
    let app = case(suite, "app-04")["system_out"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(app.contains("[remediated]") && app.contains("remediated 2026-11-22T06:00:00Z"));
    assert!(case(suite, "clean-06")["system_out"].is_null());
    let down = case(suite, "down-10");
    assert!(down["system_out"]
        .as_str()
        .unwrap()
        .contains("[unverified]"));
    assert_eq!(case(suite, "web-01")["time"], 0.84);
}

#[test]
fn junit_escapes_hostile_host_strings_and_drops_what_xml_cannot_hold() {
    let r = fleet();
    let xml = render(Format::Junit, &r, &[]).unwrap();
    assert!(!xml.contains("<script"));
    assert!(!xml.contains('\u{0}') && !xml.contains('\u{1b}'));
    assert!(
        !xml.contains("]]>"),
        "host text must not end a CDATA section"
    );
    let got = consume(&xml, "junit-hostile");
    let suite = &got["suites"][0];
    let evil = case(suite, EVIL_HOST);
    assert_eq!(
        evil["name"], EVIL_HOST,
        "markup and quotes in the host name survive"
    );
    let body = evil["result"][0]["text"].as_str().unwrap();
    // Everything XML 1.0 can carry comes back; NUL and ESC become U+FFFD.
    let expected_version = MIXED.replace(['\u{0}', '\u{1b}'], "\u{fffd}");
    assert!(
        body.contains(&format!("version {expected_version}")),
        "{body:?}"
    );
    assert!(body.contains(&format!("Kaspersky {SCRIPT}")));
    assert!(body.contains(&format!("process (ps): {FORMULA}")));
    let out = evil["system_out"].as_str().unwrap();
    assert!(
        out.contains(&format!("warning: rpm failed: {SCRIPT}")),
        "{out}"
    );

    let probe = case(suite, "probe-14");
    let message = probe["result"][0]["message"].as_str().unwrap();
    assert_eq!(
        message,
        format!("not scanned: probe_failed: probe exited 2: {expected_version}"),
        "newlines and quotes in attributes survive as character references"
    );

    // A second strict parser agrees the document is well-formed.
    require("xmllint", "libxml2-utils");
    let dir = workdir("junit-xmllint");
    let path = dir.join("junit.xml");
    std::fs::write(&path, &xml).unwrap();
    let lint = Command::new("xmllint")
        .arg("--noout")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );
}

#[test]
fn junit_of_an_interrupted_sweep_reports_unfinished_hosts_as_errors() {
    let mut r = fleet();
    r.sweep.complete = false;
    r.sweep.interrupted_by = Some("SIGTERM".into());
    r.hosts
        .to_mut()
        .retain(|h| ["clean-06", "stop-15"].contains(&h.name.as_ref()));
    r.normalize();
    let got = consume(
        &render(Format::Junit, &r, &[]).unwrap(),
        "junit-interrupted",
    );
    let suite = &got["suites"][0];
    assert_eq!(suite["recomputed"]["errors"], 1);
    assert_eq!(suite["recomputed"]["failures"], 0);
    assert_eq!(results(case(suite, "stop-15")), ["Error"]);
    let props = suite["properties"].to_string();
    assert!(
        props.contains(r#"["complete","false"]"#)
            && props.contains(r#"["interrupted_by","SIGTERM"]"#),
        "{props}"
    );
}
