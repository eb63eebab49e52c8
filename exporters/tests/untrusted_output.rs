//! Host output is untrusted: whatever a host puts in a package name, version,
//! command line or label must come back out of the YAML report and the metrics
//! unchanged, without adding keys, documents, series or lines of its own.
#![allow(clippy::unwrap_used)]

use fleetsweep_exporters::yaml::{from_yaml, to_yaml};
use fleetsweep_exporters::*;

fn report_with(value: &str) -> Report {
    let mut r = Report {
        report_version: REPORT_VERSION,
        sweep: SweepInfo {
            id: "s".into(),
            started: "2026-11-22T06:00:00Z".parse().unwrap(),
            finished: "2026-11-22T06:00:01Z".parse().unwrap(),
            scanner_version: "0.1.0".into(),
            catalogs: vec![],
            shard: None,
            complete: true,
            interrupted_by: None,
        },
        summary: Summary::default(),
        exceptions: None,
        hosts: vec![HostReport {
            name: "h".into(),
            address: value.into(),
            labels: fleetsweep_exporters::Labels::from_iter([(
                "site".to_string(),
                value.to_string(),
            )]),
            outcome: Outcome::Scanned,
            error: Some(value.into()),
            os: None,
            duration_seconds: 0.5,
            warnings: vec![value.into()],
            incomplete: vec![value.into()],
            findings: vec![Finding {
                rule: "kaspersky/kesl".into(),
                vendor: "Kaspersky".into(),
                product: "Kaspersky Endpoint Security for Linux".into(),
                policy: Policy::Ban,
                state: FindingState::Installed,
                status: Status::New,
                version: Some(value.into()),
                first_seen: "2026-11-22T06:00:00Z".parse().unwrap(),
                last_seen: None,
                due: None,
                remediated_at: None,
                last_verified: None,
                exception: None,
                signatures: None,
                effective: None,
                deadline: None,
                evidence: vec![Evidence {
                    kind: "process".into(),
                    source: None,
                    value: value.into(),
                }],
                containers: Vec::new(),
                remediation: None,
            }],
            scanned_by: None,
        }]
        .into(),
    };
    r.normalize();
    r
}

#[test]
fn hostile_strings_round_trip_unchanged() {
    let hostile = [
        "kesl\nhosts: []\n---\nreport_version: 2",
        "a: b # not a comment",
        "\u{1b}[2J\u{7}bell and escape",
        "'single' \"double\" `back` \\ backslash",
        "- leading dash",
        "&anchor *alias !tag %directive @at",
        "null",
        "2024-09-29",
        "0x1F",
        "  spaces  ",
        "",
        "Kaspersky Endpoint Security для Windows",
        "\u{0}nul and \u{feff}bom",
    ];
    for value in hostile {
        let r = report_with(value);
        let yaml = to_yaml(&r).unwrap();
        let back = from_yaml(&yaml).unwrap_or_else(|e| panic!("{value:?}: {e}\n{yaml}"));
        assert_eq!(back, r, "{value:?} did not round-trip:\n{yaml}");
        // Equality above proves no key or document was injected: a multi-line
        // value stays one scalar (quoted or a block scalar).
        let top_level = yaml
            .lines()
            .filter(|l| l.starts_with("report_version:") || l.starts_with("---"))
            .count();
        assert_eq!(
            top_level, 1,
            "{value:?} added a top-level key or document:\n{yaml}"
        );
        assert!(
            !yaml.contains('\u{1b}'),
            "raw escape character in the report"
        );
    }
}

#[test]
fn summary_counts_outcomes_and_statuses() {
    let mut r = report_with("x");
    let mut failed = r.hosts.to_mut()[0].clone();
    failed.name = "down".into();
    failed.outcome = Outcome::Unreachable;
    failed.findings.clear();
    r.hosts.to_mut().push(failed);
    r.normalize();
    assert_eq!(r.summary.hosts.total, 2);
    assert_eq!(r.summary.hosts.affected, 1);
    assert_eq!(r.summary.hosts.unreachable, 1);
    assert_eq!(r.summary.findings.new, 1);
    assert!(r.has_open_ban());
    assert!(r.has_unscanned());
    assert_eq!(&*r.hosts.to_mut()[0].name, "down", "hosts sorted by name");
}

#[test]
fn metrics_have_bounded_labels_and_zero_outcomes() {
    use fleetsweep_exporters::metrics::{render, MetricsOptions};
    let mut r = report_with("x");
    let mut clean = r.hosts.to_mut()[0].clone();
    clean.name = "clean-01".into();
    clean.findings.clear();
    clean.incomplete.clear();
    r.hosts.to_mut().push(clean);
    r.normalize();
    let text = render(&r, &MetricsOptions::default()).unwrap();
    assert!(
        text.contains("fleetsweep_hosts{outcome=\"scanned\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("fleetsweep_hosts{outcome=\"unreachable\"} 0"),
        "every outcome has a series: {text}"
    );
    assert!(
        text.contains(
            "fleetsweep_host_finding{host=\"h\",policy=\"ban\",product=\"Kaspersky Endpoint Security for Linux\",rule=\"kaspersky/kesl\",status=\"new\",vendor=\"Kaspersky\"} 1"
        ),
        "{text}"
    );
    assert!(
        !text.contains("clean-01"),
        "no per-host series for clean hosts"
    );
    assert!(text.contains("# TYPE fleetsweep_host_scan_duration_seconds histogram"));
    for bad in [
        "9site",
        "bad-label",
        "__x",
        "host",
        "status",
        "section",
        "severity",
    ] {
        let opts = MetricsOptions {
            label_allowlist: vec![bad.into()],
            ..Default::default()
        };
        assert!(render(&r, &opts).is_err(), "{bad} accepted");
    }
    // Hostile label values are escaped by the encoder, not injected.
    let opts = MetricsOptions {
        label_allowlist: vec!["site".into()],
        ..Default::default()
    };
    let text = render(&report_with("a\"b\nc"), &opts).unwrap();
    assert!(text.contains(r#"site="a\"b\nc""#), "{text}");
    // ... on the per-host series too, and on the probe page.
    let host_line = text
        .lines()
        .find(|l| l.starts_with("fleetsweep_host_finding{"))
        .unwrap();
    assert!(host_line.contains(r#"site="a\"b\nc""#), "{text}");
    let probe =
        fleetsweep_exporters::metrics::render_probe(&report_with("a\"b\nc"), 0.1, &opts).unwrap();
    assert!(probe.contains(r#"site="a\"b\nc""#), "{probe}");
    assert!(
        !probe.lines().any(|l| l.starts_with("c\"")),
        "a newline in a label value starts no line: {probe}"
    );
}

/// Cardinality stays bounded: 1,000 hosts with 5 % affected and 2 % failed make
/// per-host series only for those 70 hosts.
#[test]
fn metrics_page_for_1000_hosts_stays_small() {
    use fleetsweep_exporters::metrics::{render, MetricsOptions};
    let base = report_with("12.1.0-1297");
    let template = base.hosts.get(0).unwrap().into_owned();
    let mut r = base;
    r.hosts = (0..1000)
        .map(|i| {
            let mut h = template.clone();
            h.name = format!("host-{i:04}").into();
            h.labels = fleetsweep_exporters::Labels::from_iter([(
                "site".to_string(),
                format!("site-{}", i % 5),
            )]);
            h.error = None;
            h.warnings.clear();
            h.incomplete.clear();
            if i % 20 != 0 {
                h.findings.clear();
            }
            if i % 50 == 1 {
                h.outcome = Outcome::Unreachable;
                h.findings.clear();
            }
            h
        })
        .collect();
    r.normalize();
    let opts = MetricsOptions {
        label_allowlist: vec!["site".into()],
        ..Default::default()
    };
    let text = render(&r, &opts).unwrap();
    let per_host = text.lines().filter(|l| l.contains("host=\"")).count();
    assert_eq!(
        per_host,
        50 + 20,
        "per-host series only for affected and failed hosts"
    );
    let samples = text.lines().filter(|l| !l.starts_with('#')).count();
    println!(
        "1000 hosts, 5% affected, 2% failed: {} bytes, {samples} samples",
        text.len()
    );
    assert!(text.len() < 16 * 1024, "{} bytes", text.len());
}
