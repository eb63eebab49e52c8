//! A realistic fleet report shared by the format tests: every outcome, every
//! status, watch and ban products, an exception, and hosts whose strings are
//! hostile (markup, CSV formulas, control characters, `]]>`, unicode).
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::PathBuf;
use std::process::Command;

use fleetsweep_exporters::*;

/// A script that would retitle the page if it ever ran.
pub const SCRIPT: &str = "<script>document.title='pwned'</script>";
/// A spreadsheet formula (the classic DDE payload).
pub const FORMULA: &str = "=cmd|' /C calc'!A0";
/// Control characters, quotes, a newline, CDATA end, unicode.
pub const MIXED: &str = "a\"b'c\nd\u{1b}[31me\u{0}f]]>g & для Windows \u{202e}txt";
/// The hostile host's name.
pub const EVIL_HOST: &str = "evil-09<b>\"quoted\"</b>";

pub fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

pub fn date(s: &str) -> jiff::civil::Date {
    s.parse().unwrap()
}

pub fn ev(kind: &'static str, source: Option<&'static str>, value: &str) -> Evidence {
    Evidence {
        kind: kind.into(),
        source: source.map(Into::into),
        value: value.into(),
    }
}

pub fn kesl(status: Status) -> Finding {
    Finding {
        rule: "kaspersky/kesl".into(),
        vendor: "Kaspersky".into(),
        product: "Kaspersky Endpoint Security for Linux".into(),
        policy: Policy::Ban,
        state: FindingState::Installed,
        status,
        version: Some("12.1.0.1297".into()),
        first_seen: ts("2026-11-01T06:00:00Z"),
        last_seen: Some(ts("2026-11-22T06:00:00Z")),
        due: Some(date("2026-12-01")),
        remediated_at: None,
        last_verified: None,
        exception: None,
        signatures: None,
        effective: Some(date("2024-07-20")),
        deadline: Some(date("2024-09-29")),
        evidence: vec![
            ev("package", Some("dpkg"), "kesl 12.1.0-1297"),
            ev("path", None, "/opt/kaspersky/kesl"),
        ],
        containers: Vec::new(),
        remediation: Some(
            "apt-get purge kesl kesl-gui (or dnf/yum remove kesl kesl-gui); then remove /opt/kaspersky/kesl."
                .into(),
        ),
    }
}

pub fn klnagent(status: Status) -> Finding {
    Finding {
        rule: "kaspersky/klnagent".into(),
        product: "Kaspersky Security Center Network Agent".into(),
        state: FindingState::Remnants,
        version: None,
        evidence: vec![ev("path", None, "/opt/kaspersky/klnagent64")],
        containers: Vec::new(),
        remediation: Some(
            "apt-get purge klnagent64 klnagent; then remove /opt/kaspersky/klnagent64.".into(),
        ),
        ..kesl(status)
    }
}

pub fn ultraav(status: Status) -> Finding {
    Finding {
        rule: "ultraav/ultraav".into(),
        vendor: "UltraAV".into(),
        product: "UltraAV".into(),
        policy: Policy::Watch,
        state: FindingState::Installed,
        version: Some("1.0.4".into()),
        due: None,
        effective: None,
        deadline: None,
        evidence: vec![ev("process", Some("ps"), "/opt/ultraav/bin/uav")],
        containers: Vec::new(),
        remediation: Some("UltraAV is not banned. If policy requires, uninstall it.".into()),
        ..kesl(status)
    }
}

pub fn host(name: &str, outcome: Outcome, findings: Vec<Finding>) -> HostReport {
    HostReport {
        name: name.into(),
        address: format!("127.0.99.{}", name.len()).into(),
        labels: fleetsweep_exporters::Labels::from_iter([("site".to_string(), "fra1".to_string())]),
        outcome,
        error: (outcome != Outcome::Scanned).then(|| format!("{outcome}: connection failed")),
        os: (outcome == Outcome::Scanned).then(|| {
            OsInfo {
                family: "linux".into(),
                name: Some("Ubuntu".into()),
                version: Some("22.04".into()),
            }
            .into()
        }),
        duration_seconds: 0.84,
        warnings: vec![],
        incomplete: vec![],
        findings,
        scanned_by: None,
    }
}

/// The fleet: 15 hosts, every outcome and every status.
pub fn fleet() -> Report {
    let mut excepted = kesl(Status::Excepted);
    excepted.exception = Some(ExceptionRef {
        source: "exceptions.yaml:3".into(),
        reason: "malware analysis lab, isolated VLAN".into(),
        approver: "ciso@example.com".into(),
        expires: date("2027-03-31"),
    });
    let mut remediated = kesl(Status::Remediated);
    remediated.remediated_at = Some(ts("2026-11-22T06:00:00Z"));
    remediated.last_seen = Some(ts("2026-11-15T06:00:00Z"));
    let mut unverified = kesl(Status::Unverified);
    unverified.last_verified = Some(ts("2026-11-15T06:00:00Z"));

    let mut evil_finding = kesl(Status::New);
    evil_finding.product = format!("Kaspersky {SCRIPT}");
    evil_finding.version = Some(MIXED.into());
    evil_finding.evidence = vec![
        ev("process", Some("ps"), FORMULA),
        ev("package", Some("dpkg"), &format!("kesl {MIXED}")),
        ev("path", None, "/opt/kaspersky/`bin`/```x```"),
    ];
    let mut evil = host(EVIL_HOST, Outcome::Scanned, vec![evil_finding]);
    evil.address = "+1-555".into();
    evil.labels = fleetsweep_exporters::Labels::from_iter([
        ("owner".to_string(), FORMULA.to_string()),
        ("site".to_string(), "a;b=c\\d".to_string()),
        ("note".to_string(), MIXED.to_string()),
    ]);
    evil.warnings = vec![format!("rpm failed: {SCRIPT}")];

    let mut probe_failed = host("probe-14", Outcome::ProbeFailed, vec![]);
    probe_failed.error = Some(format!("probe exited 2: {MIXED}"));

    let mut r = Report {
        report_version: REPORT_VERSION,
        sweep: SweepInfo {
            id: "sweep-0003".into(),
            started: ts("2026-11-22T06:00:00Z"),
            finished: ts("2026-11-22T06:00:42Z"),
            scanner_version: "0.1.0".into(),
            catalogs: vec![CatalogInfo {
                name: "kaspersky".into(),
                version: "2026.11".into(),
                rules: 31,
            }],
            shard: None,
            complete: true,
            interrupted_by: None,
        },
        summary: Summary::default(),
        exceptions: Some(ExceptionsReport {
            applied: vec![ExceptionUse {
                source: "exceptions.yaml:3".into(),
                hosts: "lab-*".into(),
                rule: "kaspersky/kesl".into(),
                reason: "malware analysis lab, isolated VLAN".into(),
                approver: "ciso@example.com".into(),
                expires: date("2027-03-31"),
                findings: 1,
            }],
            expired: vec![ExceptionUse {
                source: "exceptions.yaml:9".into(),
                hosts: "old-*".into(),
                rule: "kaspersky/*".into(),
                reason: format!("migration {SCRIPT}"),
                approver: "it@example.com".into(),
                expires: date("2026-10-01"),
                findings: 1,
            }],
            unused: vec![],
        }),
        hosts: vec![
            host("web-01", Outcome::Scanned, vec![kesl(Status::New)]),
            host(
                "db-02",
                Outcome::Scanned,
                vec![klnagent(Status::Overdue), ultraav(Status::Open)],
            ),
            host("lab-03", Outcome::Scanned, vec![excepted]),
            host("app-04", Outcome::Scanned, vec![remediated]),
            host("old-05", Outcome::Scanned, vec![kesl(Status::Reinstalled)]),
            host("clean-06", Outcome::Scanned, vec![]),
            host("mail-07", Outcome::Scanned, vec![kesl(Status::Open)]),
            host("home-08", Outcome::Scanned, vec![ultraav(Status::New)]),
            evil,
            host("down-10", Outcome::Unreachable, vec![unverified]),
            host("auth-11", Outcome::AuthFailed, vec![]),
            host("key-12", Outcome::HostKeyRejected, vec![]),
            host("slow-13", Outcome::TimedOut, vec![]),
            probe_failed,
            host("stop-15", Outcome::Interrupted, vec![]),
        ]
        .into(),
    };
    r.normalize();
    r
}

/// Five sweeps of the same fleet, oldest first; the last is `fleet()`.
pub fn history() -> Vec<HistoryPoint> {
    let counts = |new, open, overdue, remediated, reinstalled| FindingCounts {
        new,
        open,
        overdue,
        remediated,
        reinstalled,
        excepted: 1,
        unverified: 0,
    };
    let hosts = HostCounts {
        total: 15,
        scanned: 9,
        ..HostCounts::default()
    };
    [
        (
            "sweep-0000",
            "2026-11-01T06:00:00Z",
            true,
            counts(12, 0, 0, 0, 0),
        ),
        (
            "sweep-0001",
            "2026-11-08T06:00:00Z",
            true,
            counts(1, 10, 0, 2, 0),
        ),
        (
            "sweep-0002",
            "2026-11-15T06:00:00Z",
            false,
            counts(0, 6, 0, 6, 0),
        ),
        (
            "sweep-0003x",
            "2026-11-18T06:00:00Z",
            true,
            counts(0, 3, 2, 8, 1),
        ),
        (
            "sweep-0003",
            "2026-11-22T06:00:00Z",
            true,
            fleet().summary.findings,
        ),
    ]
    .into_iter()
    .map(|(id, t, complete, findings)| HistoryPoint {
        sweep_id: id.into(),
        finished: ts(t),
        complete,
        hosts: hosts.clone(),
        findings,
    })
    .collect()
}

/// A fresh directory for files a test hands to an external tool.
pub fn workdir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fails with an install hint when `program` cannot run.
pub fn require(program: &str, package: &str) {
    let ok = Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "`{program}` is needed for this test: run scripts/setup, or apt-get install -y {package}"
    );
}
