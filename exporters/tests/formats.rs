//! The text formats of `fleetsweep report`: JSON, CSV, the remediation plan
//! and the diff, checked by reading them back the way users' tools do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;

use fleetsweep_exporters::formats::{self, csv::HEADER, render, render_diff, DiffFormat, Format};
use fleetsweep_exporters::*;
use support::*;

#[test]
fn format_names_parse_back_and_unknown_ones_are_refused() {
    for f in Format::ALL {
        assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
        assert_eq!(f.to_string(), f.as_str());
    }
    let err = "xlsx".parse::<Format>().unwrap_err().to_string();
    assert!(
        err.contains("unknown format `xlsx`") && err.contains("sarif"),
        "{err}"
    );
    assert!("yaml ".parse::<Format>().is_err());
    assert!("text".parse::<DiffFormat>().is_ok());
    assert!("csv".parse::<DiffFormat>().is_err());
}

#[test]
fn every_format_is_deterministic() {
    let (a, b) = (fleet(), fleet());
    for f in Format::ALL {
        let x = render(f, &a, &history()).unwrap();
        let y = render(f, &b, &history()).unwrap();
        assert_eq!(x, y, "{f} differs between two renders");
        assert!(!x.is_empty());
    }
}

#[test]
fn yaml_and_json_read_back_to_the_same_report() {
    let r = fleet();
    let yaml = render(Format::Yaml, &r, &[]).unwrap();
    assert_eq!(yaml::from_yaml(&yaml).unwrap(), r);
    let json = render(Format::Json, &r, &[]).unwrap();
    let back: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    // Same field names as the YAML report.
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["report_version"], 1);
    assert_eq!(v["summary"]["hosts"]["total"], 15);
    assert_eq!(v["hosts"][0]["findings"][0]["status"], "remediated");
}

fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rd = ::csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let header = rd.headers().unwrap().iter().map(String::from).collect();
    let rows = rd
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn csv_has_a_row_per_finding_and_per_host_without_findings() {
    let r = fleet();
    let text = render(Format::Csv, &r, &[]).unwrap();
    let (header, rows) = csv_rows(&text);
    assert_eq!(header, HEADER);
    let findings: usize = r.hosts.iter().map(|h| h.findings.len()).sum();
    let bare = r.hosts.iter().filter(|h| h.findings.is_empty()).count();
    assert_eq!(rows.len(), findings + bare);
    assert_eq!(rows.len(), 16);
    let col = |name: &str| HEADER.iter().position(|h| *h == name).unwrap();
    // Every host appears; not-scanned hosts keep their outcome and error.
    let hosts: BTreeSet<&str> = rows.iter().map(|r| r[col("host")].as_str()).collect();
    assert_eq!(hosts.len(), 15);
    let auth = rows.iter().find(|r| r[col("host")] == "auth-11").unwrap();
    assert_eq!(auth[col("outcome")], "auth_failed");
    assert_eq!(auth[col("error")], "auth_failed: connection failed");
    assert_eq!(auth[col("rule")], "");
    let clean = rows.iter().find(|r| r[col("host")] == "clean-06").unwrap();
    assert_eq!(clean[col("outcome")], "scanned");
    assert_eq!(clean[col("status")], "");
    let db: Vec<&Vec<String>> = rows.iter().filter(|r| r[col("host")] == "db-02").collect();
    assert_eq!(db.len(), 2);
    assert_eq!(db[0][col("rule")], "kaspersky/klnagent");
    assert_eq!(db[0][col("status")], "overdue");
    assert_eq!(db[0][col("due")], "2026-12-01");
    assert_eq!(db[0][col("state")], "remnants");
    assert_eq!(db[1][col("policy")], "watch");
    let lab = rows.iter().find(|r| r[col("host")] == "lab-03").unwrap();
    assert_eq!(lab[col("exception_approver")], "ciso@example.com");
    assert_eq!(lab[col("exception_expires")], "2027-03-31");
    let app = rows.iter().find(|r| r[col("host")] == "app-04").unwrap();
    assert_eq!(app[col("remediated_at")], "2026-11-22T06:00:00Z");
    assert_eq!(
        app[col("evidence")],
        "package (dpkg): kesl 12.1.0-1297; path: /opt/kaspersky/kesl"
    );
    assert_eq!(rows[0][col("sweep_id")], "sweep-0003");
}

#[test]
fn csv_gives_hostile_strings_back_with_the_formula_guard() {
    let text = render(Format::Csv, &fleet(), &[]).unwrap();
    // RFC 4180: CRLF records, quotes doubled inside quoted fields.
    assert!(text.starts_with("sweep_id,host,address,labels,"));
    assert!(text.contains("\r\n"));
    let (_, rows) = csv_rows(&text);
    let col = |name: &str| HEADER.iter().position(|h| *h == name).unwrap();
    let evil = rows.iter().find(|r| r[col("host")] == EVIL_HOST).unwrap();
    // Quotes and text survive; control characters and bidi overrides come
    // back as visible escapes, so `cat report.csv` cannot drive a terminal.
    assert_eq!(
        evil[col("version")],
        "a\"b'c\\u{a}d\\u{1b}[31me\\u{0}f]]>g & для Windows \\u{202e}txt"
    );
    assert_eq!(evil[col("product")], format!("Kaspersky {SCRIPT}"));
    assert_eq!(evil[col("address")], "'+1-555", "leading + is guarded");
    assert_eq!(
        evil[col("labels")],
        "note=a\"b'c\\u{a}d\\u{1b}[31me\\u{0}f]]>g & для Windows \\u{202e}txt;owner=\\=cmd|' /C calc'!A0;site=a\\;b\\=c\\\\d",
        "labels are k=v;k=v with ; = \\ escaped"
    );
    let evidence = &evil[col("evidence")];
    assert!(
        evidence.contains(&format!("process (ps): {FORMULA}")),
        "{evidence}"
    );
    // No cell anywhere starts with a formula trigger.
    for row in &rows {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "unguarded cell {cell:?}"
            );
            assert!(
                !cell.chars().any(char::is_control),
                "raw control character in {cell:?}"
            );
        }
    }
    assert_eq!(formats::csv::guard("=1+1"), "'=1+1");
    assert_eq!(formats::csv::guard("@SUM(A1)"), "'@SUM(A1)");
    assert_eq!(formats::csv::guard("\tx"), "\\u{9}x");
    assert_eq!(formats::csv::guard("\u{1b}]0;x\u{7}"), "\\u{1b}]0;x\\u{7}");
    assert_eq!(formats::csv::guard("kesl"), "kesl");
    assert_eq!(formats::csv::guard(""), "");
}

#[test]
fn plan_lists_open_findings_per_host_with_steps_and_unscanned_hosts_first_to_verify() {
    let plan = render(Format::Plan, &fleet(), &[]).unwrap();
    let section = |title: &str| {
        let start = plan
            .find(title)
            .unwrap_or_else(|| panic!("no {title} in\n{plan}"));
        let rest = &plan[start + title.len()..];
        let end = rest.find("\n## ").map_or(rest.len(), |e| e);
        rest[..end].to_string()
    };
    assert!(plan.starts_with("# Remediation plan: sweep sweep-0003\n"));
    assert!(
        plan.contains("- 5 host(s) to remediate (banned software)"),
        "{plan}"
    );
    assert!(plan.contains("- 1 host(s) with watched software only"));
    assert!(plan.contains("- 6 host(s) to verify first (not scanned)"));
    assert!(plan.contains("- 1 excepted finding(s)"));

    let ban = section("## Remove banned software");
    for h in ["web-01", "db-02", "old-05", "mail-07"] {
        assert!(
            ban.contains(&format!("### {h} (127.0.99.")),
            "{h} missing:\n{ban}"
        );
    }
    for h in ["lab-03", "app-04", "clean-06", "home-08", "down-10"] {
        assert!(!ban.contains(h), "{h} must not be in the removal list");
    }
    // Per finding: rule, product, state, status, evidence, the catalog's steps.
    assert!(ban.contains(
        "- [ ] `kaspersky/klnagent` Kaspersky Security Center Network Agent: remnants (**overdue**, due 2026-12-01, policy ban)"
    ), "{ban}");
    assert!(ban.contains("    path: /opt/kaspersky/klnagent64\n"));
    assert!(ban.contains(
        "  - Steps: apt-get purge klnagent64 klnagent; then remove /opt/kaspersky/klnagent64."
    ));
    assert!(ban.contains("reinstalled"));
    // The watched product on db-02 is listed after the banned one.
    let db = &ban[ban.find("### db-02").unwrap()..];
    let db = &db[..db[4..].find("### ").map_or(db.len(), |e| e + 4)];
    assert!(db.find("kaspersky/klnagent").unwrap() < db.find("ultraav/ultraav").unwrap());

    let watch = section("## Review watched software");
    assert!(watch.contains("### home-08"));
    let verify = section("## Verify first (not scanned)");
    for h in [
        "down-10", "auth-11", "key-12", "slow-13", "probe-14", "stop-15",
    ] {
        assert!(verify.contains(&format!("- [ ] **{h}**")), "{h}:\n{verify}");
    }
    assert!(verify.contains("unreachable: unreachable: connection failed"));
    assert!(verify.contains(
        "  - last known: `kaspersky/kesl` Kaspersky Endpoint Security for Linux (installed, status unverified), last verified 2026-11-15T06:00:00Z"
    ));
    let exc = section("## Excepted");
    assert!(
        exc.contains("**lab-03**")
            && exc.contains("until 2027-03-31 (approved by ciso@example.com")
    );
}

#[test]
fn plan_escapes_host_text_for_markdown() {
    let plan = render(Format::Plan, &fleet(), &[]).unwrap();
    assert!(!plan.contains("<script>"), "raw HTML in the plan");
    assert!(!plan.contains("<b>"));
    assert!(
        plan.contains("### evil-09\\<b\\>\"quoted\"\\</b\\> (+1-555)"),
        "{plan}"
    );
    assert!(plan.contains("Kaspersky \\<script\\>document.title='pwned'\\</script\\>"));
    // Control characters are made visible, so every value stays on its line.
    assert!(!plan.contains('\u{1b}') && !plan.contains('\u{0}') && !plan.contains('\u{202e}'));
    assert!(plan.contains("\\\\u{1b}\\[31m"), "{plan}");
    // Evidence with backtick runs sits in a longer fence.
    assert!(plan.contains("    ````text\n"), "{plan}");
    assert!(plan.contains("    path: /opt/kaspersky/`bin`/```x```\n"));
}

#[test]
fn plan_keeps_multi_line_guidance_inside_the_list_item() {
    let mut r = fleet();
    for h in r.hosts.to_mut() {
        if &*h.name == "web-01" {
            h.findings[0].remediation = Some("Stop the units.\nPurge the packages *now*.".into());
        }
    }
    let plan = render(Format::Plan, &r, &[]).unwrap();
    assert!(
        plan.contains("  - Steps: Stop the units.\n    Purge the packages \\*now\\*.\n"),
        "{plan}"
    );
}

#[test]
fn plan_of_a_clean_fleet_says_there_is_nothing_to_do() {
    let mut r = fleet();
    r.hosts
        .to_mut()
        .retain(|h| h.outcome == Outcome::Scanned && h.findings.is_empty());
    r.normalize();
    let plan = render(Format::Plan, &r, &[]).unwrap();
    assert!(plan.contains("Nothing to do: every host was scanned and no open finding remains."));
    assert!(!plan.contains("## "));
}

#[test]
fn diff_lists_appeared_disappeared_changed_findings_and_host_outcomes() {
    let previous = fleet();
    let mut current = fleet();
    current.sweep.id = "sweep-0004".into();
    for h in current.hosts.to_mut() {
        match &*h.name {
            // web-01 cleaned up: gone from a stateless report.
            "web-01" => h.findings.clear(),
            // mail-07: still there, now overdue and partly removed.
            "mail-07" => {
                h.findings[0].status = Status::Overdue;
                h.findings[0].state = FindingState::Remnants;
                h.findings[0].version = None;
            }
            // clean-06 got KESL installed.
            "clean-06" => h.findings.push(kesl(Status::New)),
            // auth-11 can be scanned again.
            "auth-11" => {
                h.outcome = Outcome::Scanned;
                h.error = None;
            }
            // web-01 above, key-12 stays failed.
            _ => {}
        }
    }
    current.hosts.to_mut().retain(|h| &*h.name != "stop-15");
    current
        .hosts
        .to_mut()
        .push(host("new-16", Outcome::Scanned, vec![]));
    current.normalize();

    let d = render_diff(&previous, &current);
    assert_eq!(d.previous_sweep, "sweep-0003");
    assert_eq!(d.current_sweep, "sweep-0004");
    let hosts: Vec<(&str, Option<Outcome>, Option<Outcome>)> = d
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), h.from, h.to))
        .collect();
    assert_eq!(
        hosts,
        vec![
            ("auth-11", Some(Outcome::AuthFailed), Some(Outcome::Scanned)),
            ("new-16", None, Some(Outcome::Scanned)),
            ("stop-15", Some(Outcome::Interrupted), None),
        ]
    );
    assert_eq!(d.appeared.len(), 1);
    assert_eq!(
        (d.appeared[0].host.as_str(), d.appeared[0].rule.as_str()),
        ("clean-06", "kaspersky/kesl")
    );
    assert_eq!(d.disappeared.len(), 1);
    assert_eq!(d.disappeared[0].host, "web-01");
    assert_eq!(d.disappeared[0].status, Status::New);
    assert_eq!(d.changed.len(), 1);
    let c = &d.changed[0];
    assert_eq!(c.host, "mail-07");
    assert_eq!(
        c.status.as_ref().map(|s| (s.from, s.to)),
        Some((Status::Open, Status::Overdue))
    );
    assert_eq!(
        c.state.as_ref().map(|s| (s.from, s.to)),
        Some((FindingState::Installed, FindingState::Remnants))
    );
    assert_eq!(
        c.version.as_ref().map(|v| (v.from.clone(), v.to.clone())),
        Some((Some("12.1.0.1297".into()), None))
    );

    let text = d.render(DiffFormat::Text).unwrap();
    assert_eq!(
        text,
        "diff of sweep sweep-0003 -> sweep-0004\n\
         host auth-11: auth_failed -> scanned\n\
         host new-16: (absent) -> scanned\n\
         host stop-15: interrupted -> (absent)\n\
         + clean-06 kaspersky/kesl Kaspersky Endpoint Security for Linux (installed, new, version 12.1.0.1297)\n\
         - web-01 kaspersky/kesl Kaspersky Endpoint Security for Linux (installed, new, version 12.1.0.1297)\n\
         ~ mail-07 kaspersky/kesl: status open -> overdue, state installed -> remnants, version 12.1.0.1297 -> (none)\n"
    );
    let json: serde_json::Value =
        serde_json::from_str(&d.render(DiffFormat::Json).unwrap()).unwrap();
    assert_eq!(json["changed"][0]["status"]["to"], "overdue");
    assert_eq!(json["hosts"][1]["from"], serde_json::Value::Null);
    let yaml = d.render(DiffFormat::Yaml).unwrap();
    let back: formats::Diff = serde_saphyr::from_str(&yaml).unwrap();
    assert_eq!(back, d);

    let same = render_diff(&previous, &previous);
    assert!(same.is_empty());
    assert_eq!(
        same.render(DiffFormat::Text).unwrap(),
        "diff of sweep sweep-0003 -> sweep-0003\nno changes\n"
    );
}

#[test]
fn diff_text_keeps_hostile_values_on_one_line() {
    let previous = fleet();
    let mut current = fleet();
    for h in current.hosts.to_mut() {
        if &*h.name == EVIL_HOST {
            h.findings[0].version = Some("1\n+ forged line".into());
        }
    }
    let text = render_diff(&previous, &current)
        .render(DiffFormat::Text)
        .unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("-> 1\\u{a}+ forged line"), "{text}");
}
