//! What changed between two reports of the same fleet: findings that
//! appeared or disappeared, findings whose status, state or version changed,
//! and hosts whose outcome changed (or that joined or left the inventory).
//!
//! A finding is identified by (host name, rule). With a state store a removed
//! product usually stays in the report as `remediated`, which shows here as a
//! status change; `disappeared` is what a stateless pair of reports shows.
//! Every list is sorted by host, then rule, so the diff itself diffs cleanly.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::text::visible;
use super::{state_str, status_str, FormatError};
use crate::report::{Finding, FindingState, HostReport, Outcome, Policy, Report, Status};

/// The differences between two reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Diff {
    pub previous_sweep: String,
    pub current_sweep: String,
    /// Hosts whose outcome differs; `None` on a side where the host was absent.
    pub hosts: Vec<HostChange>,
    pub appeared: Vec<FindingRef>,
    pub disappeared: Vec<FindingRef>,
    pub changed: Vec<FindingChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostChange {
    pub host: String,
    pub from: Option<Outcome>,
    pub to: Option<Outcome>,
}

/// A finding as listed in a diff.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRef {
    pub host: String,
    pub rule: String,
    pub product: String,
    pub policy: Policy,
    pub state: FindingState,
    pub status: Status,
    pub version: Option<String>,
}

/// A finding present in both reports with something different.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingChange {
    pub host: String,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Change<Status>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Change<FindingState>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Change<Option<String>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change<T> {
    pub from: T,
    pub to: T,
}

impl Diff {
    /// True when the two reports show the same fleet state.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
            && self.appeared.is_empty()
            && self.disappeared.is_empty()
            && self.changed.is_empty()
    }

    /// Renders the diff as YAML, JSON or plain text.
    pub fn render(&self, format: DiffFormat) -> Result<String, FormatError> {
        match format {
            DiffFormat::Yaml => serde_saphyr::to_string(self)
                .map_err(|e| crate::yaml::YamlError::Serialize(e.to_string()).into()),
            DiffFormat::Json => {
                let mut s = serde_json::to_string_pretty(self)?;
                s.push('\n');
                Ok(s)
            }
            DiffFormat::Text => Ok(self.text()),
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "diff of sweep {} -> {}",
            visible(&self.previous_sweep),
            visible(&self.current_sweep)
        );
        if self.is_empty() {
            s.push_str("no changes\n");
            return s;
        }
        let out = |o: &Option<Outcome>| o.map_or("(absent)", |o| o.as_str());
        for h in &self.hosts {
            let _ = writeln!(
                s,
                "host {}: {} -> {}",
                visible(&h.host),
                out(&h.from),
                out(&h.to)
            );
        }
        for (sign, list) in [("+", &self.appeared), ("-", &self.disappeared)] {
            for f in list {
                let _ = writeln!(
                    s,
                    "{sign} {} {} {} ({}, {}{})",
                    visible(&f.host),
                    f.rule,
                    visible(&f.product),
                    state_str(f.state),
                    status_str(f.status),
                    f.version
                        .as_deref()
                        .map(|v| format!(", version {}", visible(v)))
                        .unwrap_or_default()
                );
            }
        }
        for c in &self.changed {
            let mut parts = Vec::new();
            if let Some(ch) = &c.status {
                parts.push(format!(
                    "status {} -> {}",
                    status_str(ch.from),
                    status_str(ch.to)
                ));
            }
            if let Some(ch) = &c.state {
                parts.push(format!(
                    "state {} -> {}",
                    state_str(ch.from),
                    state_str(ch.to)
                ));
            }
            if let Some(ch) = &c.version {
                let v = |o: &Option<String>| o.as_deref().map_or("(none)".to_string(), visible);
                parts.push(format!("version {} -> {}", v(&ch.from), v(&ch.to)));
            }
            let _ = writeln!(
                s,
                "~ {} {}: {}",
                visible(&c.host),
                visible(&c.rule),
                parts.join(", ")
            );
        }
        s
    }
}

/// Output formats of a [`Diff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffFormat {
    Yaml,
    Json,
    Text,
}

impl FromStr for DiffFormat {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "yaml" => Ok(DiffFormat::Yaml),
            "json" => Ok(DiffFormat::Json),
            "text" => Ok(DiffFormat::Text),
            _ => Err(FormatError::UnknownDiff(s.to_string())),
        }
    }
}

fn finding_ref(host: &str, f: &Finding) -> FindingRef {
    FindingRef {
        host: host.to_string(),
        rule: f.rule.clone(),
        product: f.product.clone(),
        policy: f.policy,
        state: f.state,
        status: f.status,
        version: f.version.clone(),
    }
}

fn by_key<'a>(hosts: &'a [Cow<'_, HostReport>]) -> BTreeMap<(&'a str, &'a str), &'a Finding> {
    hosts
        .iter()
        .flat_map(|h| {
            h.findings
                .iter()
                .map(move |f| ((&*h.name, f.rule.as_str()), f))
        })
        .collect()
}

/// Compares two reports of the same fleet (`previous` older than `current`).
pub fn render_diff(previous: &Report, current: &Report) -> Diff {
    let (previous_hosts, current_hosts): (Vec<_>, Vec<_>) = (
        previous.hosts.iter().collect(),
        current.hosts.iter().collect(),
    );
    let prev_hosts: BTreeMap<&str, &HostReport> =
        previous_hosts.iter().map(|h| (&*h.name, &**h)).collect();
    let cur_hosts: BTreeMap<&str, &HostReport> =
        current_hosts.iter().map(|h| (&*h.name, &**h)).collect();
    let mut names: Vec<&str> = prev_hosts.keys().chain(cur_hosts.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let hosts = names
        .into_iter()
        .filter_map(|n| {
            let from = prev_hosts.get(n).map(|h| h.outcome);
            let to = cur_hosts.get(n).map(|h| h.outcome);
            (from != to).then(|| HostChange {
                host: n.to_string(),
                from,
                to,
            })
        })
        .collect();

    let prev = by_key(&previous_hosts);
    let cur = by_key(&current_hosts);
    let mut d = Diff {
        previous_sweep: previous.sweep.id.clone(),
        current_sweep: current.sweep.id.clone(),
        hosts,
        ..Diff::default()
    };
    for (&(host, rule), f) in &cur {
        match prev.get(&(host, rule)) {
            None => d.appeared.push(finding_ref(host, f)),
            Some(p) => {
                let status = (p.status != f.status).then_some(Change {
                    from: p.status,
                    to: f.status,
                });
                let state = (p.state != f.state).then_some(Change {
                    from: p.state,
                    to: f.state,
                });
                let version = (p.version != f.version).then(|| Change {
                    from: p.version.clone(),
                    to: f.version.clone(),
                });
                if status.is_some() || state.is_some() || version.is_some() {
                    d.changed.push(FindingChange {
                        host: host.to_string(),
                        rule: rule.to_string(),
                        status,
                        state,
                        version,
                    });
                }
            }
        }
    }
    for (&(host, rule), f) in &prev {
        if !cur.contains_key(&(host, rule)) {
            d.disappeared.push(finding_ref(host, f));
        }
    }
    d
}
