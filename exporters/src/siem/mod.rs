//! SIEM outputs: a finished sweep as a stream of events, sent to syslog
//! (RFC 5424 over TCP or TLS) and to a signed JSON webhook.
//!
//! A SIEM wants facts it can alert and correlate on, not a report to parse:
//! one event per finding still on a host, one per status change (a new
//! finding, a remediation, a finding that became overdue, ...) and one
//! summary per sweep. Every event is the same JSON object whichever output
//! carries it ([`Event`], `schema_version` 1, docs/siem.md), so a pipeline
//! that reads the webhook reads syslog too.
//!
//! # Layout
//! - this module: the event model, built from a report (pure, no I/O).
//! - [`syslog`]: RFC 5424 messages, octet-counted (RFC 6587) over TCP or
//!   TLS (RFC 5425); the only module naming rustls here.
//! - [`webhook`]: batches POSTed as JSON, HMAC-SHA256 signed.
//! - [`retry`]: the backoff both share, within one delivery deadline.
//!
//! Everything in an event that a host said is bounded here (evidence
//! summary, string lengths) and escaped by the writer that emits it.

pub mod retry;
pub mod syslog;
pub mod webhook;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::{FindingState, HostReport, Policy, Report, Status, Summary};

/// Bumped when a field changes meaning or disappears; adding one does not bump it.
pub const SCHEMA_VERSION: u32 = 1;
/// Evidence lines kept per finding event (the report has them all).
pub const MAX_EVIDENCE: usize = 5;
/// Characters kept of any one string a host controls (names, labels, evidence, versions).
pub const MAX_FIELD_CHARS: usize = 256;
/// Labels kept per host in an event.
pub const MAX_LABELS: usize = 16;

/// One fact about a sweep, as every SIEM output carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Stable across retries and re-sends of the same sweep, so a receiver
    /// can drop duplicates: `<sweep id>/<type>[/<host>/<rule>]`.
    pub id: String,
    /// When the sweep finished: the time the fact was established.
    pub time: jiff::Timestamp,
    pub sweep_id: String,
    /// `I/N` when the sweep covered one shard of the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    #[serde(flatten)]
    pub body: EventBody,
}

/// What an event says; `type` in the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventBody {
    /// A finding still on a host after this sweep (status `new`, `open`,
    /// `overdue`, `reinstalled`, `excepted` or `unverified`).
    Finding(FindingEvent),
    /// A finding whose status changed in this sweep.
    StatusChange(StatusChangeEvent),
    /// The sweep's counts, once per sweep.
    SweepSummary(SweepSummaryEvent),
}

/// The host an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRef {
    pub name: String,
    pub address: String,
    /// Inventory labels (at most [`MAX_LABELS`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One finding on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingEvent {
    pub host: HostRef,
    /// `vendor/product` rule id of the catalog.
    pub rule: String,
    pub vendor: String,
    pub product: String,
    pub policy: Policy,
    pub state: FindingState,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// First sighting on this host (`first_seen` in the report).
    pub since: jiff::Timestamp,
    /// Past this day (UTC) a banned product still present is `overdue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<jiff::civil::Date>,
    /// When a successful scan found it gone (status `remediated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediated_at: Option<jiff::Timestamp>,
    /// The exception covering it: `file:line`, reason, approver, expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionSummary>,
    /// True when this finding fails the sweep (exit code 1).
    pub fails: bool,
    /// The first [`MAX_EVIDENCE`] evidence lines (`kind (source): value`).
    pub evidence: Vec<String>,
    /// How many evidence lines the report has in all.
    pub evidence_total: usize,
}

/// The exception that covers a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionSummary {
    pub source: String,
    pub reason: String,
    pub approver: String,
    pub expires: jiff::civil::Date,
}

/// A finding whose status changed; `finding` is the finding as it is now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChangeEvent {
    /// The status before this sweep; absent for a first sighting.
    #[serde(default)]
    pub from: Option<Status>,
    pub to: Status,
    pub finding: FindingEvent,
}

/// A sweep's counts (the report's `summary`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSummaryEvent {
    pub started: jiff::Timestamp,
    pub finished: jiff::Timestamp,
    pub complete: bool,
    pub scanner_version: String,
    pub summary: Summary,
    /// Findings that fail the sweep (exit code 1 when above 0).
    pub failing_findings: usize,
}

/// A status change of one (host, rule) in a sweep: what the state store
/// held before and what the sweep derived. The state step produces these;
/// [`events`] keeps the ones worth an event ([`StatusChange::is_notable`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub host: String,
    pub rule: String,
    /// The status the store remembered (the last sweep that scanned the
    /// host); `None` for a first sighting.
    pub from: Option<Status>,
    pub to: Status,
}

impl StatusChange {
    /// True for the changes a SIEM is told about: every change but the
    /// routine second sighting (`new` → `open`), and not `unverified` (the
    /// host was not scanned: its outcome is in the sweep summary, and the
    /// finding stays as it was).
    pub fn is_notable(&self) -> bool {
        self.from != Some(self.to)
            && self.to != Status::Unverified
            && !(self.from == Some(Status::New) && self.to == Status::Open)
    }
}

impl Event {
    /// The event's type as MSGID and `type` spell it.
    pub fn kind(&self) -> &'static str {
        match self.body {
            EventBody::Finding(_) => "finding",
            EventBody::StatusChange(_) => "status_change",
            EventBody::SweepSummary(_) => "sweep_summary",
        }
    }

    /// The finding an event is about (the changed one for a status change).
    pub fn finding(&self) -> Option<&FindingEvent> {
        match &self.body {
            EventBody::Finding(f) => Some(f),
            EventBody::StatusChange(c) => Some(&c.finding),
            EventBody::SweepSummary(_) => None,
        }
    }

    /// The event as one line of JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// The events of one finished sweep, in a stable order: status changes
/// first (what a SIEM alerts on), then every finding still on a host, then
/// the summary. `changes` come from the state step (empty without a store:
/// then every finding is `new` and is reported as such).
///
/// `remediated` findings appear only as status changes: they are gone.
pub fn events(report: &Report, changes: &[StatusChange]) -> Vec<Event> {
    let sweep = &report.sweep;
    let base = |id: String, body: EventBody| Event {
        schema_version: SCHEMA_VERSION,
        id,
        time: sweep.finished,
        sweep_id: sweep.id.clone(),
        shard: sweep.shard.clone(),
        body,
    };
    // Hosts without findings make no event: only these are held.
    let with_findings: Vec<Cow<'_, HostReport>> = report
        .hosts
        .iter()
        .filter(|h| !h.findings.is_empty())
        .collect();
    let hosts: BTreeMap<&str, &HostReport> =
        with_findings.iter().map(|h| (&*h.name, &**h)).collect();
    let mut out = Vec::new();
    let mut notable: Vec<&StatusChange> = changes.iter().filter(|c| c.is_notable()).collect();
    notable.sort_by(|a, b| (&a.host, &a.rule).cmp(&(&b.host, &b.rule)));
    for c in notable {
        let Some(host) = hosts.get(c.host.as_str()) else {
            continue;
        };
        let Some(f) = host.findings.iter().find(|f| f.rule == c.rule) else {
            continue;
        };
        out.push(base(
            format!("{}/status_change/{}/{}", sweep.id, host.name, f.rule),
            EventBody::StatusChange(StatusChangeEvent {
                from: c.from,
                to: c.to,
                finding: finding_event(host, f),
            }),
        ));
    }
    for host in &with_findings {
        for f in host
            .findings
            .iter()
            .filter(|f| f.status != Status::Remediated)
        {
            out.push(base(
                format!("{}/finding/{}/{}", sweep.id, host.name, f.rule),
                EventBody::Finding(finding_event(host, f)),
            ));
        }
    }
    let failing = with_findings
        .iter()
        .flat_map(|h| &h.findings)
        .filter(|f| f.fails())
        .count();
    out.push(base(
        format!("{}/sweep_summary", sweep.id),
        EventBody::SweepSummary(SweepSummaryEvent {
            started: sweep.started,
            finished: sweep.finished,
            complete: sweep.complete,
            scanner_version: bounded(&sweep.scanner_version),
            summary: report.summary.clone(),
            failing_findings: failing,
        }),
    ));
    out
}

fn finding_event(host: &HostReport, f: &crate::report::Finding) -> FindingEvent {
    FindingEvent {
        host: HostRef {
            name: bounded(&host.name),
            address: bounded(&host.address),
            labels: host
                .labels
                .iter()
                .take(MAX_LABELS)
                .map(|(k, v)| (bounded(k), bounded(v)))
                .collect(),
        },
        rule: bounded(&f.rule),
        vendor: bounded(&f.vendor),
        product: bounded(&f.product),
        policy: f.policy,
        state: f.state,
        status: f.status,
        version: f.version.as_deref().map(bounded),
        since: f.first_seen,
        due: f.due,
        remediated_at: f.remediated_at,
        exception: f.exception.as_ref().map(|e| ExceptionSummary {
            source: bounded(&e.source),
            reason: bounded(&e.reason),
            approver: bounded(&e.approver),
            expires: e.expires,
        }),
        fails: f.fails(),
        evidence: f
            .evidence
            .iter()
            .take(MAX_EVIDENCE)
            .map(|e| bounded(&crate::formats::evidence_line(e)))
            .collect(),
        evidence_total: f.evidence.len(),
    }
}

/// `s` cut to [`MAX_FIELD_CHARS`] characters (an ellipsis marks the cut).
pub fn bounded(s: &str) -> String {
    truncate_chars(s, MAX_FIELD_CHARS)
}

/// `s` cut to `max` characters, the last one `…` when something was cut.
pub(crate) fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some(_) => {
            let keep: String = s.chars().take(max.saturating_sub(1)).collect();
            format!("{keep}…")
        }
    }
}

/// What one SIEM output delivered, or why not.
#[derive(Debug)]
pub struct Delivery {
    /// `syslog` or `webhook`.
    pub output: &'static str,
    /// The target as configured (never a secret).
    pub target: String,
    /// Events sent, or the error after the last attempt.
    pub result: Result<usize, SiemError>,
    /// Attempts made (connections for syslog, requests for the webhook).
    pub attempts: u32,
    /// Why each attempt that was retried failed, oldest first (for the log).
    pub retried: Vec<String>,
}

/// Errors of the SIEM outputs: their configuration (found before a sweep)
/// and their delivery.
#[derive(Debug, thiserror::Error)]
pub enum SiemError {
    /// A configuration value: the flag and how to fix it.
    #[error("--{flag}: {detail}")]
    Config { flag: &'static str, detail: String },
    /// A file named by a flag cannot be read or holds nothing usable.
    #[error("--{flag} {path}: {detail}")]
    File {
        flag: &'static str,
        path: String,
        detail: String,
    },
    /// Gave up: the deadline passed, or an error retrying cannot fix.
    #[error("{target}: {detail} (after {attempts} attempt(s))")]
    Delivery {
        target: String,
        detail: String,
        attempts: u32,
    },
    #[error("cannot serialize an event: {0}")]
    Json(#[from] serde_json::Error),
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::report::*;

    pub(crate) fn finding(rule: &str, status: Status) -> Finding {
        Finding {
            rule: rule.into(),
            vendor: "Kaspersky".into(),
            product: "Kaspersky Endpoint Security for Linux".into(),
            policy: Policy::Ban,
            state: FindingState::Installed,
            status,
            version: Some("12.1.0-1297".into()),
            first_seen: "2026-12-01T00:00:00Z".parse().unwrap(),
            last_seen: None,
            due: Some("2026-12-31".parse().unwrap()),
            remediated_at: None,
            last_verified: None,
            exception: None,
            effective: None,
            deadline: None,
            signatures: None,
            evidence: (0..8)
                .map(|i| Evidence {
                    kind: "path".into(),
                    source: None,
                    value: format!("/opt/kaspersky/{i}"),
                })
                .collect(),
            containers: vec![],
            remediation: None,
        }
    }

    pub(crate) fn report(findings: Vec<Finding>) -> Report {
        let mut r = Report {
            report_version: REPORT_VERSION,
            sweep: SweepInfo {
                id: "s1".into(),
                started: "2026-12-03T10:00:00Z".parse().unwrap(),
                finished: "2026-12-03T10:01:00.123456789Z".parse().unwrap(),
                scanner_version: "0.1.0".into(),
                catalogs: vec![],
                shard: None,
                complete: true,
                interrupted_by: None,
            },
            summary: Summary::default(),
            exceptions: None,
            hosts: vec![HostReport {
                name: "web-01".into(),
                address: "10.0.0.5".into(),
                labels: [("site".to_string(), "fra1".to_string())]
                    .into_iter()
                    .collect(),
                outcome: Outcome::Scanned,
                error: None,
                os: None,
                duration_seconds: 0.1,
                warnings: vec![],
                incomplete: vec![],
                findings,
                scanned_by: None,
            }]
            .into(),
        };
        r.normalize();
        r
    }

    #[test]
    fn a_sweep_becomes_changes_findings_and_a_summary() {
        let r = report(vec![
            finding("kaspersky/kesl", Status::Overdue),
            finding("kaspersky/klnagent", Status::Remediated),
            finding("kaspersky/kes", Status::Open),
        ]);
        let changes = vec![
            StatusChange {
                host: "web-01".into(),
                rule: "kaspersky/kesl".into(),
                from: Some(Status::Open),
                to: Status::Overdue,
            },
            StatusChange {
                host: "web-01".into(),
                rule: "kaspersky/klnagent".into(),
                from: Some(Status::Open),
                to: Status::Remediated,
            },
            // Routine: no event.
            StatusChange {
                host: "web-01".into(),
                rule: "kaspersky/kes".into(),
                from: Some(Status::New),
                to: Status::Open,
            },
        ];
        let ev = events(&r, &changes);
        let kinds: Vec<String> = ev
            .iter()
            .map(|e| format!("{} {}", e.kind(), e.finding().map_or("-", |f| &f.rule)))
            .collect();
        assert_eq!(
            kinds,
            [
                "status_change kaspersky/kesl",
                "status_change kaspersky/klnagent",
                "finding kaspersky/kes",
                "finding kaspersky/kesl",
                "sweep_summary -",
            ]
        );
        let f = ev[0].finding().unwrap();
        assert_eq!(f.evidence.len(), MAX_EVIDENCE);
        assert_eq!(f.evidence_total, 8);
        assert_eq!(f.evidence[0], "path: /opt/kaspersky/0");
        assert!(f.fails);
        assert_eq!(ev[0].id, "s1/status_change/web-01/kaspersky/kesl");
        let json: serde_json::Value = serde_json::from_str(&ev[1].to_json().unwrap()).unwrap();
        assert_eq!(json["schema_version"], 1);
        assert_eq!(json["type"], "status_change");
        assert_eq!(json["from"], "open");
        assert_eq!(json["to"], "remediated");
        assert_eq!(json["finding"]["host"]["labels"]["site"], "fra1");
        match &ev[4].body {
            EventBody::SweepSummary(s) => {
                assert_eq!(s.failing_findings, 2);
                assert_eq!(s.summary.findings.remediated, 1);
            }
            other => panic!("{other:?}"),
        }
        // The JSON reads back as the same event.
        let back: Event = serde_json::from_str(&ev[1].to_json().unwrap()).unwrap();
        assert_eq!(back, ev[1]);
    }

    #[test]
    fn host_strings_are_bounded() {
        let mut f = finding("kaspersky/kesl", Status::New);
        f.version = Some("x".repeat(10_000));
        let r = report(vec![f]);
        let ev = events(&r, &[]);
        let v = ev[0].finding().unwrap().version.clone().unwrap();
        assert_eq!(v.chars().count(), MAX_FIELD_CHARS);
        assert!(v.ends_with('…'));
        assert_eq!(truncate_chars("héllo", 3), "hé…");
        assert_eq!(truncate_chars("abc", 3), "abc");
    }

    #[test]
    fn notable_changes() {
        let c = |from, to| StatusChange {
            host: "h".into(),
            rule: "r".into(),
            from,
            to,
        };
        assert!(c(None, Status::New).is_notable());
        assert!(c(Some(Status::Open), Status::Overdue).is_notable());
        assert!(c(Some(Status::Open), Status::Excepted).is_notable());
        assert!(c(Some(Status::Remediated), Status::Reinstalled).is_notable());
        assert!(!c(Some(Status::New), Status::Open).is_notable());
        assert!(!c(Some(Status::Open), Status::Open).is_notable());
        assert!(!c(Some(Status::Open), Status::Unverified).is_notable());
    }
}
