//! SARIF 2.1.0 output validated against the official OASIS JSON schema
//! (vendored from a PyPI package, see `tests/schemas/README.md`), with format
//! checks on, plus what a dashboard shows: one result per finding, levels,
//! suppressions for excepted findings, hosts as logical and physical
//! (`hosts/<name>`) locations, and what GitHub code scanning requires.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use fleetsweep_exporters::formats::{render, Format};
use serde_json::{json, Value};
use support::*;

fn validator() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/schemas/sarif-schema-2.1.0.json"
    ))
    .unwrap();
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn errors(v: &jsonschema::Validator, log: &Value) -> Vec<String> {
    v.iter_errors(log)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn sarif() -> Value {
    serde_json::from_str(&render(Format::Sarif, &fleet(), &[]).unwrap()).unwrap()
}

#[test]
fn sarif_is_valid_against_the_official_schema() {
    let v = validator();
    let log = sarif();
    let errs = errors(&v, &log);
    assert!(errs.is_empty(), "schema violations:\n{}", errs.join("\n"));

    // The validator does reject what the schema forbids, so the pass above means something.
    let mut bad = log.clone();
    bad["runs"][0]["results"][0]["level"] = json!("fatal");
    bad["runs"][0]["results"][1]["locations"][0]["physicalLocation"] =
        json!({"artifactLocation": {"uri": 5}});
    bad["runs"][0]["invocations"][0]["startTimeUtc"] = json!("yesterday");
    let errs = errors(&v, &bad);
    assert!(errs.len() >= 3, "{errs:?}");

    // Valid with an empty fleet and for a partial, interrupted sweep too.
    let mut empty = fleet();
    empty.hosts.to_mut().clear();
    empty.normalize();
    let log: Value = serde_json::from_str(&render(Format::Sarif, &empty, &[]).unwrap()).unwrap();
    assert!(errors(&v, &log).is_empty());
    assert_eq!(log["runs"][0]["results"], json!([]));
    let mut cut = fleet();
    cut.sweep.complete = false;
    cut.sweep.interrupted_by = Some("SIGINT".into());
    let log: Value = serde_json::from_str(&render(Format::Sarif, &cut, &[]).unwrap()).unwrap();
    assert!(errors(&v, &log).is_empty(), "{:?}", errors(&v, &log));
    assert_eq!(log["runs"][0]["invocations"][0]["exitSignalName"], "SIGINT");
}

#[test]
fn sarif_has_one_result_per_finding_with_level_suppression_and_host_location() {
    let log = sarif();
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"]
        .as_str()
        .unwrap()
        .ends_with("sarif-schema-2.1.0.json"));
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "fleetsweep");
    assert_eq!(driver["version"], "0.1.0");

    let rules: Vec<&str> = driver["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["kaspersky/kesl", "kaspersky/klnagent", "ultraav/ultraav"]
    );
    let kesl = &driver["rules"][0];
    assert_eq!(kesl["name"], "KasperskyKesl");
    assert_eq!(
        kesl["shortDescription"]["text"],
        "Banned software: Kaspersky Endpoint Security for Linux (Kaspersky)"
    );
    assert_eq!(kesl["defaultConfiguration"]["level"], "error");
    assert_eq!(
        driver["rules"][2]["defaultConfiguration"]["level"],
        "warning"
    );
    assert!(!log.to_string().contains("helpUri"), "no invented links");

    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 10, "one result per finding");
    let of = |host: &str, rule: &str| -> &Value {
        results
            .iter()
            .find(|r| {
                r["locations"][0]["logicalLocations"][0]["name"] == host && r["ruleId"] == rule
            })
            .unwrap_or_else(|| panic!("no result for {host} {rule}"))
    };
    let expect = [
        ("web-01", "kaspersky/kesl", "fail", "error", "new"),
        ("db-02", "kaspersky/klnagent", "fail", "error", "overdue"),
        ("db-02", "ultraav/ultraav", "fail", "warning", "open"),
        ("lab-03", "kaspersky/kesl", "fail", "note", "excepted"),
        ("app-04", "kaspersky/kesl", "pass", "none", "remediated"),
        ("old-05", "kaspersky/kesl", "fail", "error", "reinstalled"),
        ("mail-07", "kaspersky/kesl", "fail", "error", "open"),
        ("home-08", "ultraav/ultraav", "fail", "warning", "new"),
        ("down-10", "kaspersky/kesl", "review", "none", "unverified"),
    ];
    for (host, rule, kind, level, status) in expect {
        let r = of(host, rule);
        assert_eq!(r["kind"], kind, "{host} {rule}");
        assert_eq!(r["level"], level, "{host} {rule}");
        assert_eq!(r["properties"]["status"], status, "{host} {rule}");
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx], rule);
        let loc = &r["locations"][0];
        assert_eq!(
            loc["physicalLocation"]["artifactLocation"]["uri"],
            format!("hosts/{host}")
        );
        assert_eq!(loc["logicalLocations"][0]["kind"], "resource");
    }
    let web = of("web-01", "kaspersky/kesl");
    assert_eq!(
        web["message"]["text"],
        "Kaspersky Endpoint Security for Linux 12.1.0.1297 is installed on host web-01 (status new)."
    );
    assert_eq!(web["properties"]["state"], "installed");
    assert_eq!(web["properties"]["due"], "2026-12-01");
    assert_eq!(
        web["properties"]["evidence"][0],
        json!({"kind": "package", "source": "dpkg", "value": "kesl 12.1.0-1297"})
    );
    assert_eq!(web["baselineState"], "new");
    assert_eq!(
        web["partialFingerprints"]["fleetsweepFinding/v1"],
        "web-01 kaspersky/kesl"
    );

    let lab = of("lab-03", "kaspersky/kesl");
    assert_eq!(
        lab["suppressions"],
        json!([{
            "kind": "external",
            "status": "accepted",
            "justification": "malware analysis lab, isolated VLAN",
            "location": {"logicalLocations": [{"name": "exceptions.yaml:3", "kind": "resource"}]},
            "properties": {"approver": "ciso@example.com", "expires": "2027-03-31", "source": "exceptions.yaml:3"},
        }])
    );
    assert!(results
        .iter()
        .filter(|r| r["properties"]["status"] != "excepted")
        .all(|r| r.get("suppressions").is_none()));

    // Hosts not scanned: notifications, and the run is not called successful.
    let inv = &run["invocations"][0];
    assert_eq!(inv["executionSuccessful"], false);
    let notes = inv["toolExecutionNotifications"].as_array().unwrap();
    let errors: Vec<&str> = notes
        .iter()
        .filter(|n| n["level"] == "error")
        .map(|n| {
            n["locations"][0]["logicalLocations"][0]["name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        errors,
        ["auth-11", "down-10", "key-12", "probe-14", "slow-13", "stop-15"]
    );
    assert_eq!(
        notes[0]["message"]["text"],
        "Host auth-11 was not scanned (auth_failed): auth_failed: connection failed"
    );
    assert_eq!(run["automationDetails"]["id"], "fleetsweep/sweep-0003");
    assert_eq!(run["properties"]["summary"]["findings"]["new"], 3);
}

#[test]
fn sarif_carries_hostile_strings_as_data() {
    let log = sarif();
    let results = log["runs"][0]["results"].as_array().unwrap();
    let evil = results
        .iter()
        .find(|r| r["properties"]["host"] == EVIL_HOST)
        .unwrap();
    assert_eq!(
        evil["locations"][0]["logicalLocations"][0]["name"],
        EVIL_HOST
    );
    assert_eq!(evil["properties"]["version"], MIXED);
    assert_eq!(
        evil["properties"]["evidence"][2],
        json!({"kind": "process", "source": "ps", "value": FORMULA})
    );
    assert_eq!(evil["properties"]["address"], "+1-555");
}

/// What GitHub code scanning requires of an uploaded result beyond the
/// schema: a physical location whose `artifactLocation.uri` is a non-empty
/// relative URI (no scheme, no absolute path), a region with `startLine` >= 1,
/// stable fingerprints, and `security-severity` as a number from 0 to 10 on
/// each rule.
#[test]
fn sarif_locations_and_severities_meet_github_code_scanning_requirements() {
    let log = sarif();
    let run = &log["runs"][0];
    for r in run["results"].as_array().unwrap() {
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(
            uri.starts_with("hosts/") && uri.len() > "hosts/".len(),
            "{uri}"
        );
        assert!(
            !uri.contains(':') && !uri.contains("..") && !uri.contains('?'),
            "{uri}"
        );
        assert!(
            uri["hosts/".len()..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
            "one encoded path segment: {uri}"
        );
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        // The logical location names the same host.
        let host = r["properties"]["host"].as_str().unwrap();
        assert_eq!(uri, fleetsweep_exporters::formats::sarif::host_uri(host));
        assert_eq!(r["locations"][0]["logicalLocations"][0]["name"], host);
        assert!(!r["partialFingerprints"]["fleetsweepFinding/v1"]
            .as_str()
            .unwrap()
            .is_empty());
    }
    for rule in run["tool"]["driver"]["rules"].as_array().unwrap() {
        let sev: f64 = rule["properties"]["security-severity"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((0.0..=10.0).contains(&sev));
    }
    assert_eq!(
        run["tool"]["driver"]["rules"][0]["properties"]["security-severity"], "8.0",
        "banned software ranks high"
    );
    assert_eq!(
        run["tool"]["driver"]["rules"][2]["properties"]["security-severity"], "4.0",
        "watched software ranks medium"
    );
    // A hostile host name stays inside `hosts/`: one segment, percent-encoded.
    use fleetsweep_exporters::formats::sarif::host_uri;
    assert_eq!(host_uri("web-01.example.com"), "hosts/web-01.example.com");
    assert_eq!(host_uri("../../etc/passwd"), "hosts/..%2F..%2Fetc%2Fpasswd");
    assert_eq!(host_uri(".."), "hosts/%2E%2E");
    assert_eq!(host_uri("a b?c#d"), "hosts/a%20b%3Fc%23d");
    assert_eq!(host_uri("hôte"), "hosts/h%C3%B4te");
    let evil = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["properties"]["host"] == EVIL_HOST)
        .unwrap();
    assert_eq!(
        evil["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        host_uri(EVIL_HOST)
    );
}
