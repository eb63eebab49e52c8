//! SARIF 2.1.0, so findings land in security dashboards that read it
//! (code-scanning UIs, DefectDojo, SIEM importers).
//!
//! A fleet has no source files. Each result is located at its host twice:
//! a *logical* location (the host, kind `resource`) for SARIF readers that
//! understand it, and a *physical* location `hosts/<host name>` (a relative
//! URI, percent-encoded, line 1), because GitHub code scanning rejects a
//! result without `physicalLocation.artifactLocation.uri`. The URI depends on
//! the host name only, so GitHub tracks one alert per host and rule across
//! sweeps (with `partialFingerprints`).
//!
//! Choices, following SARIF §3.27 (`kind` and `level`):
//!
//! | finding | kind | level |
//! |---|---|---|
//! | ban, new/open/overdue/reinstalled | fail | error |
//! | watch, new/open/reinstalled | fail | warning |
//! | watch, overdue | fail | warning |
//! | excepted | fail | note, with an accepted external `suppression` |
//! | remediated | pass | none |
//! | unverified (host not scanned) | review | none |
//!
//! Hosts that were not scanned are tool execution notifications (level
//! error), and `executionSuccessful` is false when any host was missed or
//! the sweep was interrupted, so a consumer never reads a gap as clean.
//! `partialFingerprints` (host + rule) lets consumers track one finding
//! across sweeps.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{evidence_line, policy_str, state_str, status_str, FormatError};
use crate::report::{Finding, HostReport, Outcome, Policy, Report, Status};

/// The `$schema` URI of SARIF 2.1.0 (OASIS, errata 01).
pub const SCHEMA_URI: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Renders the report as a SARIF 2.1.0 log (pretty JSON, final newline).
pub fn render(report: &Report) -> Result<String, FormatError> {
    let mut s = serde_json::to_string_pretty(&log(report))?;
    s.push('\n');
    Ok(s)
}

/// The SARIF log as a JSON value.
pub fn log(report: &Report) -> Value {
    // One reportingDescriptor per rule seen; the first finding of a rule
    // (hosts are sorted) supplies its texts.
    let all: Vec<std::borrow::Cow<'_, HostReport>> = report.hosts.iter().collect();
    let hosts: Vec<&HostReport> = all.iter().map(|h| &**h).collect();
    let mut rules: BTreeMap<&str, &Finding> = BTreeMap::new();
    for h in hosts.iter().copied() {
        for f in &h.findings {
            rules.entry(f.rule.as_str()).or_insert(f);
        }
    }
    let index: BTreeMap<&str, usize> = rules.keys().enumerate().map(|(i, r)| (*r, i)).collect();
    let descriptors: Vec<Value> = rules.values().map(|f| descriptor(f)).collect();

    let mut results = Vec::new();
    for h in hosts.iter().copied() {
        for f in &h.findings {
            let idx = index.get(f.rule.as_str()).copied().unwrap_or_default();
            results.push(result(h, f, idx));
        }
    }

    let notifications: Vec<Value> = hosts
        .iter()
        .copied()
        .filter(|h| h.outcome != Outcome::Scanned)
        .map(|h| {
            let text = match &h.error {
                Some(e) => format!("Host {} was not scanned ({}): {}", h.name, h.outcome, e),
                None => format!("Host {} was not scanned ({})", h.name, h.outcome),
            };
            json!({
                "level": "error",
                "descriptor": {"id": format!("fleetsweep/{}", h.outcome)},
                "message": {"text": text},
                "locations": [host_location(h)],
                "properties": {"outcome": h.outcome.as_str(), "address": h.address},
            })
        })
        .collect();
    let warnings: Vec<Value> = hosts
        .iter()
        .copied()
        .flat_map(|h| h.warnings.iter().map(move |w| (h, w)))
        .map(|(h, w)| {
            json!({
                "level": "warning",
                "descriptor": {"id": "fleetsweep/probe_warning"},
                "message": {"text": format!("Host {}: {}", h.name, w)},
                "locations": [host_location(h)],
            })
        })
        .collect();
    // Scanned, but not every section was read: never a clean host.
    let incomplete: Vec<Value> = hosts
        .iter()
        .copied()
        .filter(|h| h.is_incomplete())
        .map(|h| {
            json!({
                "level": "error",
                "descriptor": {"id": "fleetsweep/incomplete"},
                "message": {"text": format!(
                    "Host {} was scanned incompletely, not known to be clean: {}",
                    h.name,
                    h.incomplete.join("; ")
                )},
                "locations": [host_location(h)],
                "properties": {"outcome": h.outcome.as_str(), "address": h.address},
            })
        })
        .collect();
    let mut all_notes = notifications;
    all_notes.extend(incomplete);
    all_notes.extend(warnings);

    let success = report.sweep.complete && !report.has_unscanned();
    let mut invocation = json!({
        "executionSuccessful": success,
        "startTimeUtc": report.sweep.started.to_string(),
        "endTimeUtc": report.sweep.finished.to_string(),
        "toolExecutionNotifications": all_notes,
    });
    if let Some(by) = &report.sweep.interrupted_by {
        invocation["exitSignalName"] = json!(by);
    }

    let catalogs: Vec<Value> = report
        .sweep
        .catalogs
        .iter()
        .map(|c| json!({"name": c.name, "version": c.version, "rules": c.rules}))
        .collect();

    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "fleetsweep",
                "version": report.sweep.scanner_version,
                "semanticVersion": report.sweep.scanner_version,
                "rules": descriptors,
            }},
            "automationDetails": {"id": format!("fleetsweep/{}", report.sweep.id)},
            "invocations": [invocation],
            "results": results,
            "properties": {
                "sweep_id": report.sweep.id,
                "complete": report.sweep.complete,
                "shard": report.sweep.shard,
                "catalogs": catalogs,
                "summary": report.summary,
            },
        }],
    })
}

/// `kaspersky/kesl` -> `KasperskyKesl` (SARIF wants an identifier-like name).
fn rule_name(rule: &str) -> String {
    rule.split(|c: char| !c.is_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut cs = p.chars();
            match cs.next() {
                Some(c) => c.to_uppercase().chain(cs).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

fn descriptor(f: &Finding) -> Value {
    let policy = policy_str(f.policy);
    let level = match f.policy {
        Policy::Ban => "error",
        Policy::Watch => "warning",
    };
    let short = match f.policy {
        Policy::Ban => format!("Banned software: {} ({})", f.product, f.vendor),
        Policy::Watch => format!("Watched software: {} ({})", f.product, f.vendor),
    };
    let mut full = short.clone();
    if let Some(e) = f.effective {
        full.push_str(&format!("; effective {e}"));
    }
    if let Some(d) = f.deadline {
        full.push_str(&format!("; deadline {d}"));
    }
    let mut props = Map::new();
    props.insert("vendor".into(), json!(f.vendor));
    props.insert("product".into(), json!(f.product));
    props.insert("policy".into(), json!(policy));
    if let Some(e) = f.effective {
        props.insert("effective".into(), json!(e.to_string()));
    }
    if let Some(d) = f.deadline {
        props.insert("deadline".into(), json!(d.to_string()));
    }
    props.insert(
        "tags".into(),
        json!(["security", format!("policy:{policy}")]),
    );
    // GitHub code scanning ranks alerts by this (9.0 and above: critical,
    // 7.0: high, 4.0: medium): banned software is high, watched medium.
    props.insert(
        "security-severity".into(),
        json!(match f.policy {
            Policy::Ban => "8.0",
            Policy::Watch => "4.0",
        }),
    );
    json!({
        "id": f.rule,
        "name": rule_name(&f.rule),
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "defaultConfiguration": {"level": level},
        "properties": props,
    })
}

/// Characters kept as they are in a URI path segment (RFC 3986 unreserved);
/// everything else, `/` included, is percent-encoded, so a hostile host name
/// cannot climb out of `hosts/` or add a query.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The relative URI a host's results are filed under: `hosts/<host name>`.
pub fn host_uri(name: &str) -> String {
    let encoded = percent_encoding::utf8_percent_encode(name, SEGMENT).to_string();
    // `.` and `..` are path steps, not names.
    match encoded.as_str() {
        "." => "hosts/%2E".to_string(),
        ".." => "hosts/%2E%2E".to_string(),
        _ => format!("hosts/{encoded}"),
    }
}

fn host_location(h: &HostReport) -> Value {
    json!({
        "physicalLocation": {
            "artifactLocation": {"uri": host_uri(&h.name)},
            "region": {"startLine": 1},
        },
        "logicalLocations": [{
            "name": h.name,
            "fullyQualifiedName": h.name,
            "kind": "resource",
        }],
    })
}

/// (kind, level) of a finding; see the module table.
fn kind_level(f: &Finding) -> (&'static str, &'static str) {
    match f.status {
        Status::Remediated => ("pass", "none"),
        Status::Unverified => ("review", "none"),
        Status::Excepted => ("fail", "note"),
        Status::New | Status::Open | Status::Overdue | Status::Reinstalled => match f.policy {
            Policy::Ban => ("fail", "error"),
            Policy::Watch => ("fail", "warning"),
        },
    }
}

fn baseline_state(s: Status) -> Option<&'static str> {
    match s {
        Status::New | Status::Reinstalled => Some("new"),
        Status::Open | Status::Overdue | Status::Excepted => Some("unchanged"),
        Status::Remediated => Some("absent"),
        Status::Unverified => None,
    }
}

fn result(h: &HostReport, f: &Finding, rule_index: usize) -> Value {
    let (kind, level) = kind_level(f);
    let version = f
        .version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let text = match f.status {
        Status::Remediated => format!("{}{} is gone from host {}.", f.product, version, h.name),
        Status::Unverified => format!(
            "{}{} was last seen on host {}; the host was not scanned this sweep.",
            f.product, version, h.name
        ),
        _ => format!(
            "{}{} is {} on host {} (status {}).",
            f.product,
            version,
            state_str(f.state),
            h.name,
            status_str(f.status)
        ),
    };
    let mut props = Map::new();
    props.insert("status".into(), json!(status_str(f.status)));
    props.insert("state".into(), json!(state_str(f.state)));
    props.insert("policy".into(), json!(policy_str(f.policy)));
    props.insert("host".into(), json!(h.name));
    props.insert("address".into(), json!(h.address));
    if !h.labels.is_empty() {
        props.insert("labels".into(), json!(h.labels));
    }
    if let Some(v) = &f.version {
        props.insert("version".into(), json!(v));
    }
    props.insert("first_seen".into(), json!(f.first_seen.to_string()));
    let opt_ts = [
        ("last_seen", f.last_seen),
        ("remediated_at", f.remediated_at),
        ("last_verified", f.last_verified),
    ];
    for (k, t) in opt_ts {
        if let Some(t) = t {
            props.insert(k.into(), json!(t.to_string()));
        }
    }
    if let Some(d) = f.due {
        props.insert("due".into(), json!(d.to_string()));
    }
    props.insert("evidence".into(), json!(f.evidence));
    props.insert(
        "evidence_summary".into(),
        json!(f.evidence.iter().map(evidence_line).collect::<Vec<_>>()),
    );
    if let Some(r) = &f.remediation {
        props.insert("remediation".into(), json!(r));
    }

    let mut r = json!({
        "ruleId": f.rule,
        "ruleIndex": rule_index,
        "kind": kind,
        "level": level,
        "message": {"text": text},
        "locations": [host_location(h)],
        "partialFingerprints": {"fleetsweepFinding/v1": format!("{} {}", h.name, f.rule)},
        "properties": props,
    });
    if let Some(b) = baseline_state(f.status) {
        r["baselineState"] = json!(b);
    }
    if let Some(e) = &f.exception {
        r["suppressions"] = json!([{
            "kind": "external",
            "status": "accepted",
            "justification": e.reason,
            "location": {"logicalLocations": [{"name": e.source, "kind": "resource"}]},
            "properties": {
                "approver": e.approver,
                "expires": e.expires.to_string(),
                "source": e.source,
            },
        }]);
    }
    r
}
