//! Renderers behind `fleetsweep report --format ...`, and the diff of two reports.
//!
//! Everything here is pure: a [`Report`] (and, for the HTML burn-down, the
//! state store's [`HistoryPoint`]s) goes in, a `String` comes out; the caller
//! decides where it is written. Every string that came from a host is
//! untrusted and is escaped by the renderer for its own syntax (CSV formula
//! guard, XML character rules, HTML, Markdown), so a hostile package name can
//! neither break the document nor run in a viewer.
//!
//! Output is deterministic for a normalized report ([`Report::normalize`]):
//! renderers keep the report's order and sort whatever they aggregate.
//!
//! ```
//! use fleetsweep_exporters::formats::Format;
//! let f: Format = "sarif".parse().unwrap();
//! assert_eq!(f.as_str(), "sarif");
//! ```

use std::str::FromStr;

use crate::report::{HistoryPoint, Report, Status};

pub mod ansible;
pub mod csv;
pub mod diff;
pub mod html;
pub mod json;
pub mod junit;
pub mod plan;
pub mod sarif;
pub(crate) mod text;

pub use diff::{render_diff, Diff, DiffFormat};
pub use text::visible;

/// An output format of `fleetsweep report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// The report as written by `scan --report` (`report_version: 1`).
    Yaml,
    /// The same model as JSON (pretty-printed).
    Json,
    /// One row per finding, plus one per host without findings.
    Csv,
    /// JUnit XML: one test case per host, for CI dashboards.
    Junit,
    /// SARIF 2.1.0, for code-scanning and security dashboards.
    Sarif,
    /// One self-contained HTML page with a remediation burn-down.
    Html,
    /// A per-host remediation plan in Markdown.
    Plan,
    /// An Ansible playbook removing the open findings of banned products.
    Ansible,
    /// An Ansible inventory of the hosts that playbook targets.
    AnsibleInventory,
}

impl Format {
    pub const ALL: [Format; 9] = [
        Format::Yaml,
        Format::Json,
        Format::Csv,
        Format::Junit,
        Format::Sarif,
        Format::Html,
        Format::Plan,
        Format::Ansible,
        Format::AnsibleInventory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Junit => "junit",
            Format::Sarif => "sarif",
            Format::Html => "html",
            Format::Plan => "plan",
            Format::Ansible => "ansible",
            Format::AnsibleInventory => "ansible-inventory",
        }
    }

    /// The usual file extension, for callers that name output files.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Yaml => "yaml",
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Junit => "xml",
            Format::Sarif => "sarif",
            Format::Html => "html",
            Format::Plan => "md",
            Format::Ansible | Format::AnsibleInventory => "yml",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| FormatError::Unknown(s.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("unknown format `{0}`: use one of yaml, json, csv, junit, sarif, html, plan, ansible, ansible-inventory")]
    Unknown(String),
    #[error("unknown diff format `{0}`: use one of yaml, json, text")]
    UnknownDiff(String),
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
    #[error("could not serialize as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("could not write CSV: {0}")]
    Csv(String),
}

/// Renders `report` in `format`. `history` (all sweeps, oldest first) is used
/// by the HTML burn-down only; pass `&[]` when there is no state store.
pub fn render(
    format: Format,
    report: &Report,
    history: &[HistoryPoint],
) -> Result<String, FormatError> {
    match format {
        Format::Yaml => Ok(crate::yaml::to_yaml(report)?),
        Format::Json => json::render(report),
        Format::Csv => csv::render(report),
        Format::Junit => Ok(junit::render(report)),
        Format::Sarif => sarif::render(report),
        Format::Html => Ok(html::render(report, history)),
        Format::Plan => Ok(plan::render(report)),
        Format::Ansible => Ok(ansible::render(report)),
        Format::AnsibleInventory => Ok(ansible::render_inventory(report)),
    }
}

/// Status names as the report spells them.
pub(crate) fn status_str(s: Status) -> &'static str {
    s.as_str()
}

pub(crate) fn policy_str(p: crate::report::Policy) -> &'static str {
    match p {
        crate::report::Policy::Ban => "ban",
        crate::report::Policy::Watch => "watch",
    }
}

pub(crate) fn state_str(s: crate::report::FindingState) -> &'static str {
    match s {
        crate::report::FindingState::Installed => "installed",
        crate::report::FindingState::Remnants => "remnants",
        crate::report::FindingState::Replaced => "replaced",
    }
}

/// One evidence item as a line: `package (dpkg): kesl 12.1.0-1297`.
pub(crate) fn evidence_line(e: &crate::report::Evidence) -> String {
    match &e.source {
        Some(src) => format!("{} ({}): {}", e.kind, src, e.value),
        None => format!("{}: {}", e.kind, e.value),
    }
}

/// All statuses in report order, for summaries.
pub(crate) const STATUSES: [Status; 7] = [
    Status::New,
    Status::Open,
    Status::Overdue,
    Status::Remediated,
    Status::Reinstalled,
    Status::Excepted,
    Status::Unverified,
];

pub(crate) fn status_count(c: &crate::report::FindingCounts, s: Status) -> usize {
    match s {
        Status::New => c.new,
        Status::Open => c.open,
        Status::Overdue => c.overdue,
        Status::Remediated => c.remediated,
        Status::Reinstalled => c.reinstalled,
        Status::Excepted => c.excepted,
        Status::Unverified => c.unverified,
    }
}

pub(crate) fn outcome_count(c: &crate::report::HostCounts, o: crate::report::Outcome) -> usize {
    use crate::report::Outcome;
    match o {
        Outcome::Scanned => c.scanned,
        Outcome::Unreachable => c.unreachable,
        Outcome::AuthFailed => c.auth_failed,
        Outcome::HostKeyRejected => c.host_key_rejected,
        Outcome::TimedOut => c.timed_out,
        Outcome::ProbeFailed => c.probe_failed,
        Outcome::Interrupted => c.interrupted,
    }
}
