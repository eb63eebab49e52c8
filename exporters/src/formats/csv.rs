//! CSV for auditors and spreadsheets: one row per finding, plus one row for
//! every host without findings (clean, incomplete or not scanned), so every host of the
//! sweep appears at least once and a missing host is never read as clean. The
//! last column, `incomplete`, lists the probe sections a host did not fully read.
//!
//! Quoting is RFC 4180 (the `csv` crate). Spreadsheets execute cells that
//! start with `=`, `+`, `-`, `@`, tab or CR as formulas (CSV injection), so
//! such a cell gets a leading `'`, which spreadsheets show as text. The guard
//! is applied to every cell: a value from a host can land in any of them.
//! Control characters a host sent (ESC, BEL, newlines) are written as visible
//! `\u{..}` escapes, so `cat report.csv` cannot drive the terminal.

use super::text::visible;
use super::{evidence_line, policy_str, state_str, status_str, FormatError};
use crate::report::{Finding, HostReport, Report};

/// Column names, in order.
pub const HEADER: [&str; 23] = [
    "sweep_id",
    "host",
    "address",
    "labels",
    "outcome",
    "error",
    "rule",
    "vendor",
    "product",
    "policy",
    "state",
    "status",
    "version",
    "first_seen",
    "last_seen",
    "due",
    "remediated_at",
    "last_verified",
    "exception_approver",
    "exception_expires",
    "exception_reason",
    "evidence",
    // Last, so positional readers of older exports keep their columns.
    "incomplete",
];

/// Renders the report as CSV with a header row.
pub fn render(report: &Report) -> Result<String, FormatError> {
    let mut w = ::csv::WriterBuilder::new()
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    w.write_record(HEADER).map_err(csv_err)?;
    for host in &report.hosts {
        if host.findings.is_empty() {
            w.write_record(row(report, &host, None).iter().map(|c| guard(c)))
                .map_err(csv_err)?;
        }
        for f in &host.findings {
            w.write_record(row(report, &host, Some(f)).iter().map(|c| guard(c)))
                .map_err(csv_err)?;
        }
    }
    let bytes = w
        .into_inner()
        .map_err(|e| FormatError::Csv(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| FormatError::Csv(e.to_string()))
}

fn csv_err(e: ::csv::Error) -> FormatError {
    FormatError::Csv(e.to_string())
}

fn row(report: &Report, host: &HostReport, f: Option<&Finding>) -> Vec<String> {
    let opt = |o: Option<String>| o.unwrap_or_default();
    let mut cells = vec![
        report.sweep.id.clone(),
        host.name.to_string(),
        host.address.to_string(),
        labels(host),
        host.outcome.as_str().to_string(),
        host.error.clone().unwrap_or_default(),
    ];
    match f {
        None => cells.extend(std::iter::repeat_n(String::new(), HEADER.len() - 7)),
        Some(f) => cells.extend([
            f.rule.clone(),
            f.vendor.clone(),
            f.product.clone(),
            policy_str(f.policy).to_string(),
            state_str(f.state).to_string(),
            status_str(f.status).to_string(),
            opt(f.version.clone()),
            f.first_seen.to_string(),
            opt(f.last_seen.map(|t| t.to_string())),
            opt(f.due.map(|d| d.to_string())),
            opt(f.remediated_at.map(|t| t.to_string())),
            opt(f.last_verified.map(|t| t.to_string())),
            opt(f.exception.as_ref().map(|e| e.approver.clone())),
            opt(f.exception.as_ref().map(|e| e.expires.to_string())),
            opt(f.exception.as_ref().map(|e| e.reason.clone())),
            f.evidence
                .iter()
                .map(evidence_line)
                .collect::<Vec<_>>()
                .join("; "),
        ]),
    }
    // Probe sections not fully read: a scanned host listing any is not clean.
    cells.push(host.incomplete.join("; "));
    cells
}

/// `k=v;k=v`, with `\`, `;` and `=` inside keys and values backslash-escaped
/// so the list splits back unambiguously.
fn labels(host: &HostReport) -> String {
    let esc = |s: &str| {
        let mut o = String::with_capacity(s.len());
        for c in s.chars() {
            if matches!(c, '\\' | ';' | '=') {
                o.push('\\');
            }
            o.push(c);
        }
        o
    };
    host.labels
        .iter()
        .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
        .collect::<Vec<_>>()
        .join(";")
}

/// One cell as written: control characters (ESC, BEL, CR, LF, ...) shown as
/// visible escapes, since a host chose them and a terminal or spreadsheet
/// would act on them, then the spreadsheet formula guard (OWASP "CSV
/// injection").
pub fn guard(cell: &str) -> String {
    let cell = visible(cell);
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@') => format!("'{cell}"),
        _ => cell,
    }
}
