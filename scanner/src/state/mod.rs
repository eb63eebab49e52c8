//! The state store: remembers every sweep, so each finding gets a remediation
//! status across sweeps (SPEC §4) and a fleet's removal can be tracked to the end.
//!
//! - [`status`]: the pure status rule (history + this sweep's observation →
//!   status), exhaustively unit-tested.
//! - [`store`]: the SQLite file (the only place rusqlite is named).
//! - [`apply_state`]: the step between the sweep and the outputs: derives every
//!   status, applies exceptions, and commits the sweep in one transaction.
//!
//! Only hosts in the sweep are touched: a `--limit`/`--shard` sweep leaves the
//! rest of the fleet's history as it was. A finding found gone is reported
//! once as `remediated` (in the sweep that found it gone) and dropped from
//! later reports; its track stays, so a return is `reinstalled`.
//!
//! `FLEETSWEEP_NOW` (RFC 3339) replaces "now" for the derivation: a testing
//! aid to move past due dates and expiry dates without waiting.

pub mod status;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use jiff::Timestamp;

use fleetsweep_exporters::{ExceptionsReport, Outcome, Policy, Report, Status};

use crate::catalog::Catalog;
use crate::exceptions::Exceptions;

pub use status::{derive, Observation, Track};
pub use store::{Remediation, Store, SweepRow, SCHEMA_VERSION};

/// Grace days for a rule that is no longer in the catalog.
pub const DEFAULT_GRACE_DAYS: u32 = 30;

/// Environment variable that overrides "now" for status derivation (testing aid).
pub const NOW_ENV: &str = "FLEETSWEEP_NOW";

/// Errors of the state store; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no state store at {}: run `fleetsweep scan` first (or pass --state)", path.display())]
    Missing { path: PathBuf },
    #[error("{} cannot be used as the state store: {detail}; move it away, or point --state elsewhere", path.display())]
    NotAStore { path: PathBuf, detail: String },
    #[error("{} was written by a newer fleetsweep (schema {found}, this build knows {known}): upgrade, or point --state elsewhere", path.display())]
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("state store {}: {detail}", path.display())]
    Sql { path: PathBuf, detail: String },
    #[error("state store {}: unreadable record: {detail}", path.display())]
    Data { path: PathBuf, detail: String },
    #[error("no sweep `{id}` in {}: `fleetsweep report --list` shows them", path.display())]
    UnknownSweep { path: PathBuf, id: String },
    #[error("sweep id prefix `{id}` is ambiguous ({candidates}): give more of it")]
    AmbiguousSweep { id: String, candidates: String },
    #[error("{NOW_ENV}: `{value}` is not an RFC 3339 time such as 2027-01-31T06:00:00Z: {detail}")]
    BadNow { value: String, detail: String },
}

/// "Now" for status derivation: `FLEETSWEEP_NOW` when set, else the clock.
pub fn now() -> Result<Timestamp, StateError> {
    match std::env::var(NOW_ENV) {
        Ok(value) => value.parse().map_err(|e: jiff::Error| StateError::BadNow {
            value: value.clone(),
            detail: e.to_string(),
        }),
        Err(_) => Ok(Timestamp::now()),
    }
}

/// Gives every finding of `report` its remediation status, applies
/// `exceptions` (filling `report.exceptions`), and, with a store, commits the
/// sweep (one transaction). Without a store every present finding is `new`.
///
/// `now` is the derivation time (see [`now`]). `serve` calls this once per sweep.
pub fn apply_state(
    report: &mut Report,
    store: Option<&mut Store>,
    catalog: &Catalog,
    exceptions: Option<&Exceptions>,
    now: Timestamp,
) -> Result<(), StateError> {
    let today = status::day(now);
    let mut tx = match store {
        Some(s) => Some(s.transaction()?),
        None => None,
    };
    let n = exceptions.map_or(0, |e| e.entries.len());
    let mut applied = vec![0usize; n];
    let mut expired = vec![0usize; n];
    let mut commit = store::SweepCommit {
        now: Some(now),
        ..Default::default()
    };
    for host in &mut report.hosts {
        let (tracks, last_verified) = match &tx {
            Some(t) => (t.tracks(&host.name)?, t.last_verified(&host.name)?),
            None => (BTreeMap::new(), None),
        };
        let scanned = host.outcome == Outcome::Scanned;
        // A scan with failed probe sections is a lower bound: absence proves nothing.
        let complete = scanned && host.warnings.is_empty();
        let present: BTreeMap<String, fleetsweep_exporters::Finding> =
            std::mem::take(&mut host.findings)
                .into_iter()
                .map(|f| (f.rule.clone(), f))
                .collect();
        let rules: BTreeSet<&String> = tracks.keys().chain(present.keys()).collect();
        let mut findings = Vec::with_capacity(rules.len());
        for rule in rules {
            let obs = match present.get(rule) {
                Some(f) => Observation::Present(f),
                None if complete => Observation::Absent,
                None => Observation::NotScanned { last_verified },
            };
            let exception = match (exceptions, obs) {
                (Some(ex), Observation::Present(_)) => {
                    for i in ex.expired_matches(&host.name, &host.labels, rule, today) {
                        expired[i] += 1;
                    }
                    ex.active_match(&host.name, &host.labels, rule, today)
                        .map(|i| {
                            applied[i] += 1;
                            ex.entries[i].reference()
                        })
                }
                _ => None,
            };
            let cx = status::Context {
                now,
                grace_days: catalog
                    .rule(rule)
                    .map_or(DEFAULT_GRACE_DAYS, |r| r.grace_days),
                exception: exception.as_ref(),
            };
            let prev = tracks.get(rule);
            let d = derive(prev, obs, &cx);
            if let Some(t) = d.track {
                if prev != Some(&t) {
                    commit.tracks.push((host.name.clone(), rule.clone(), t));
                }
            }
            if let (Some((since, at)), Some(f)) = (d.remediation, &d.finding) {
                commit.remediations.push(Remediation {
                    host: host.name.clone(),
                    rule: rule.clone(),
                    vendor: f.vendor.clone(),
                    product: f.product.clone(),
                    since,
                    remediated_at: at,
                });
            }
            findings.extend(d.finding);
        }
        host.findings = findings;
        if complete {
            commit.verified.push(host.name.clone());
        }
    }
    if let Some(ex) = exceptions {
        let mut r = ExceptionsReport::default();
        for (i, e) in ex.entries.iter().enumerate() {
            if !e.active_on(today) {
                r.expired.push(e.usage(expired[i]));
            } else if applied[i] > 0 {
                r.applied.push(e.usage(applied[i]));
            } else {
                r.unused.push(e.usage(0));
            }
        }
        report.exceptions = Some(r);
    }
    normalize(report);
    if let Some(tx) = tx.take() {
        tracing::info!(sweep = %report.sweep.id, "committing the sweep to the state store");
        tx.commit(report, &commit)?;
    }
    Ok(())
}

/// Sorts the report and recounts it. A host whose only findings are
/// `remediated` is clean now, so it counts as clean, not affected.
pub fn normalize(report: &mut Report) {
    report.normalize();
    let hosts = &mut report.summary.hosts;
    hosts.clean = 0;
    hosts.affected = 0;
    for h in &report.hosts {
        if h.outcome != Outcome::Scanned {
            continue;
        }
        if h.findings
            .iter()
            .any(|f| f.policy == Policy::Ban && f.status != Status::Remediated)
        {
            hosts.affected += 1;
        } else {
            hosts.clean += 1;
        }
    }
}

/// True when the sweep fails (SPEC §2 exit code 1): a finding of a banned
/// product with an open status, unless an active exception covers it (a `new`
/// finding keeps its status on first sight but carries the exception).
pub fn has_failing_finding(report: &Report) -> bool {
    report
        .hosts
        .iter()
        .flat_map(|h| &h.findings)
        .any(|f| f.policy == Policy::Ban && f.status.is_open() && f.exception.is_none())
}
