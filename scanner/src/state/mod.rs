//! The state store: remembers every sweep, so each finding gets a remediation
//! status across sweeps (docs/statuses.md) and a fleet's removal can be tracked to the end.
//!
//! - [`status`]: the pure status rule (history + this sweep's observation →
//!   status), exhaustively unit-tested.
//! - [`store`]: the one store interface ([`Store`]) the rest of the code
//!   uses, and the fleet view (latest result of every host across scanners).
//! - [`sqlite`]: the SQLite backend (the only place rusqlite is named).
//! - [`postgres`]: the PostgreSQL backend, one database for many scanners
//!   (the only place tokio-postgres is named).
//! - [`apply_state`]: the step between the sweep and the outputs: derives every
//!   status, applies exceptions, marks products found gone next to their
//!   installed successor as `replaced`, and commits the sweep in one transaction.
//!
//! Only hosts in the sweep are touched: a `--limit`/`--shard` sweep leaves the
//! rest of the fleet's history as it was. A finding found gone is reported
//! once as `remediated` (in the sweep that found it gone) and dropped from
//! later reports; its track stays, so a return is `reinstalled`.
//!
//! `FLEETSWEEP_NOW` (RFC 3339) replaces "now" for the derivation: a testing
//! aid to move past due dates and expiry dates without waiting. It is read only
//! in builds with the `test-hooks` feature (the tests'), never in a normal or
//! release build, where it could shift verdicts.

pub mod postgres;
pub mod sqlite;
pub mod status;
pub mod store;

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;

use fleetsweep_exporters::siem::StatusChange;
use fleetsweep_exporters::{ExceptionsReport, Outcome, Report};

use crate::catalog::Catalog;
use crate::exceptions::Exceptions;

pub use sqlite::SCHEMA_VERSION;
pub use status::{derive, Observation, Track};
pub use store::{LatestResult, Location, Pruned, Remediation, Store, SweepRow};

/// Grace days for a rule that is no longer in the catalog.
pub const DEFAULT_GRACE_DAYS: u32 = 30;

/// Environment variable that overrides "now" for status derivation (testing
/// aid; only with the `test-hooks` feature, see the module docs).
#[cfg(feature = "test-hooks")]
pub const NOW_ENV: &str = "FLEETSWEEP_NOW";

/// Errors of the state store; each names the store (its file, or its URL
/// without the password).
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("no state store at {store}: run `fleetsweep scan` first (or pass --state)")]
    Missing { store: String },
    #[error("{store} cannot be used as the state store: {detail}; move it away, or point --state elsewhere")]
    NotAStore { store: String, detail: String },
    #[error("{store} was written by a newer fleetsweep (schema {found}, this build knows {known}): upgrade, or point --state elsewhere")]
    Newer {
        store: String,
        found: i64,
        known: i64,
    },
    #[error("state store {store}: {detail}")]
    Sql { store: String, detail: String },
    #[error("state store {store}: unreadable record: {detail}")]
    Data { store: String, detail: String },
    #[error("no sweep `{id}` in {store}: `fleetsweep report --list` shows them")]
    UnknownSweep { store: String, id: String },
    #[error("sweep `{id}` was pruned at {when} (retention, --state-keep): its summary is in the history, its report is not kept")]
    Pruned { id: String, when: String },
    #[error("sweep id prefix `{id}` is ambiguous ({candidates}): give more of it")]
    AmbiguousSweep { id: String, candidates: String },
    #[error("the state store {store} holds no host result yet: run `fleetsweep scan` first")]
    Empty { store: String },
    /// A `--state postgresql://` URL that cannot be used (shown without its password).
    #[error("--state {url}: {detail}")]
    Url { url: String, detail: String },
    /// The PostgreSQL server cannot be reached or refused us.
    #[error("cannot connect to the state store {store}: {detail}")]
    Connect { store: String, detail: String },
    #[cfg(feature = "test-hooks")]
    #[error("{NOW_ENV}: `{value}` is not an RFC 3339 time such as 2027-01-31T06:00:00Z: {detail}")]
    BadNow { value: String, detail: String },
}

/// "Now" for status derivation: `FLEETSWEEP_NOW` when set, else the clock.
#[cfg(feature = "test-hooks")]
pub fn now() -> Result<Timestamp, StateError> {
    match std::env::var(NOW_ENV) {
        Ok(value) => value.parse().map_err(|e: jiff::Error| StateError::BadNow {
            value: value.clone(),
            detail: e.to_string(),
        }),
        Err(_) => Ok(Timestamp::now()),
    }
}

/// "Now" for status derivation: the clock (`FLEETSWEEP_NOW` is a test hook).
#[cfg(not(feature = "test-hooks"))]
pub fn now() -> Result<Timestamp, StateError> {
    Ok(Timestamp::now())
}

/// Gives every finding of `report` its remediation status, applies
/// `exceptions` (filling `report.exceptions`), and, with a store, commits the
/// sweep (one transaction). Without a store every present finding is `new`.
///
/// `now` is the derivation time (see [`now`]). `serve` calls this once per sweep.
///
/// Returns every (host, rule) whose status differs from the one the store
/// held (all present findings, as first sightings, without a store): the
/// SIEM outputs turn them into status-change events. A stable fleet returns
/// none, so this costs nothing at scale.
///
/// On an error reading the store, `report` is left as it was; when only the
/// commit fails, `report` carries the derived statuses and the error says the
/// sweep was not recorded, so the caller can still write its outputs.
pub fn apply_state(
    out: &mut Report,
    store: Option<&mut Store>,
    catalog: &Catalog,
    exceptions: Option<&Exceptions>,
    now: Timestamp,
) -> Result<Vec<StatusChange>, StateError> {
    let today = status::day(now);
    let mut tx = match store {
        Some(s) => {
            // PostgreSQL locks the hosts' tracks up front; SQLite locks the file.
            let names: Vec<compact_str::CompactString> = match s.locks_hosts() {
                true => out.hosts.iter().map(|h| h.name.clone()).collect(),
                false => Vec::new(),
            };
            let hosts: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            Some(s.transaction(&hosts)?)
        }
        None => None,
    };
    let n = exceptions.map_or(0, |e| e.entries.len());
    let mut applied = vec![0usize; n];
    let mut expired = vec![0usize; n];
    let mut commit = store::SweepCommit {
        now: Some(now),
        ..Default::default()
    };
    // Every read of the store happens in this pass, which leaves `out` as it
    // was: a store that fails halfway changes nothing. Only hosts with a
    // finding or a history get an entry, so a large clean fleet costs
    // nothing here (the report is not copied). A finding the host reported
    // is derived without its evidence and containers (the bulk of it;
    // [`status::derive`] reads neither), which move over from the report's
    // copy at the end, and its track takes them from the report at the
    // commit: the findings are held once through this step, not three times
    // (report, derived, track). Entries: (host, findings, whether each is
    // one the host reported).
    let mut derived: Vec<(usize, Vec<fleetsweep_exporters::Finding>, Vec<bool>)> = Vec::new();
    let mut changes = Vec::new();
    for (index, host) in out.hosts.iter().enumerate() {
        let tracks = match &tx {
            Some(t) => t.tracks(&host.name)?,
            None => BTreeMap::new(),
        };
        if tracks.is_empty() && host.findings.is_empty() {
            continue;
        }
        let last_verified = match &tx {
            Some(t) => t.last_verified(&host.name)?,
            None => None,
        };
        let complete = verified(&host);
        let present: BTreeMap<&str, &fleetsweep_exporters::Finding> =
            host.findings.iter().map(|f| (f.rule.as_str(), f)).collect();
        let rules: BTreeSet<&str> = tracks
            .keys()
            .map(String::as_str)
            .chain(present.keys().copied())
            .collect();
        let mut findings = Vec::with_capacity(rules.len());
        let mut reported_here = Vec::with_capacity(rules.len());
        for rule in rules {
            let stub = present.get(rule).map(|f| without_evidence(f));
            let obs = match &stub {
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
                // A present finding's track always changes (`last_seen`).
                if stub.is_some() || prev != Some(&t) {
                    commit.tracks.push(store::TrackWrite::new(
                        index,
                        host.name.to_string(),
                        rule.to_string(),
                        t,
                        stub.is_some(),
                    ));
                }
            }
            if let (Some((since, at)), Some(f)) = (d.remediation, &d.finding) {
                commit.remediations.push(Remediation {
                    host: host.name.to_string(),
                    rule: rule.to_string(),
                    vendor: f.vendor.clone(),
                    product: f.product.clone(),
                    since,
                    remediated_at: at,
                });
            }
            if let Some(f) = &d.finding {
                let from = prev.map(|t| t.status);
                if from != Some(f.status) {
                    changes.push(StatusChange {
                        host: host.name.to_string(),
                        rule: rule.to_string(),
                        from,
                        to: f.status,
                    });
                }
            }
            if let Some(f) = d.finding {
                findings.push(f);
                reported_here.push(stub.is_some());
            }
        }
        // Reads state, status and rule only, the same without evidence; it
        // changes `remediated` findings only, never one the host reported.
        status::mark_replaced(&mut findings, |successor, rule| {
            catalog
                .rule(successor)
                .is_some_and(|s| s.replaces.iter().any(|g| g.is_match(rule)))
        });
        derived.push((index, findings, reported_here));
    }
    for (index, findings, reported_here) in derived {
        out.hosts.update(index, |host| {
            let mut reported = std::mem::take(&mut host.findings);
            host.findings = findings
                .into_iter()
                .zip(reported_here)
                .map(|(mut f, from_report)| {
                    // The last one of the rule, as `present` kept it.
                    let at = from_report
                        .then(|| reported.iter().rposition(|r| r.rule == f.rule))
                        .flatten();
                    if let Some(at) = at {
                        let r = reported.swap_remove(at);
                        f.evidence = r.evidence;
                        f.containers = r.containers;
                    }
                    f
                })
                .collect();
        });
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
        out.exceptions = Some(r);
    }
    normalize(out);
    if let Some(tx) = tx.take() {
        tracing::info!(sweep = %out.sweep.id, "committing the sweep to the state store");
        tx.commit(out, &commit)?;
    }
    Ok(changes)
}

/// `f` without its evidence and containers, for [`derive`] (which reads
/// neither); [`apply_state`] puts the report's back.
fn without_evidence(f: &fleetsweep_exporters::Finding) -> fleetsweep_exporters::Finding {
    fleetsweep_exporters::Finding {
        evidence: Vec::new(),
        containers: Vec::new(),
        ..f.clone()
    }
}

/// True when `host` was scanned completely this sweep: absence of a
/// finding then proves it gone, and the host's `last_verified` moves on. A
/// scan with failed probe sections is a lower bound: absence proves nothing.
pub(crate) fn verified(host: &fleetsweep_exporters::HostReport) -> bool {
    host.outcome == Outcome::Scanned && host.warnings.is_empty() && host.incomplete.is_empty()
}

/// Sorts the report and recounts it ([`Report::normalize`]).
pub fn normalize(report: &mut Report) {
    report.normalize();
}

/// True when the sweep fails (exit code 1): see
/// [`fleetsweep_exporters::Finding::fails`].
pub fn has_failing_finding(report: &Report) -> bool {
    report.has_open_ban()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use fleetsweep_exporters::{
        Evidence, Finding, FindingState, HostReport, Policy, Status, Summary, SweepInfo,
        REPORT_VERSION,
    };
    use std::path::Path;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn kesl() -> Finding {
        Finding {
            rule: "kaspersky/kesl".into(),
            vendor: "Kaspersky".into(),
            product: "Kaspersky Endpoint Security for Linux".into(),
            policy: Policy::Ban,
            state: FindingState::Installed,
            status: Status::New,
            version: Some("12.1.0-1297".into()),
            first_seen: Timestamp::UNIX_EPOCH,
            last_seen: None,
            due: None,
            remediated_at: None,
            last_verified: None,
            exception: None,
            signatures: None,
            effective: None,
            deadline: None,
            evidence: vec![Evidence {
                kind: "package".into(),
                source: Some("dpkg".into()),
                value: "kesl 12.1.0-1297".into(),
            }],
            containers: Vec::new(),
            remediation: None,
        }
    }

    /// At the commit a track takes its finding from the report, walking
    /// both in order; a track whose host no longer holds its finding (its
    /// result lost since the derivation: the host is failed in the report)
    /// is left as the store has it, and the walk goes on to the next.
    #[test]
    fn tracks_take_their_findings_from_the_report_and_skip_one_it_lost() {
        let mut r = report(&[
            ("h-a".into(), Outcome::Scanned, true),
            ("h-b".into(), Outcome::ProbeFailed, false),
            ("h-c".into(), Outcome::Scanned, true),
        ]);
        r.hosts.to_mut()[2].findings[0].version = Some("11".into());
        let track = |f: Finding| status::Track {
            first_seen: ts("2027-01-01T00:00:00Z"),
            since: ts("2027-01-01T00:00:00Z"),
            last_seen: ts("2027-01-02T00:00:00Z"),
            status: Status::Open,
            remediated_at: None,
            finding: f,
        };
        let remediated = Finding {
            rule: "kaspersky/klnagent".into(),
            status: Status::Remediated,
            ..kesl()
        };
        let commit = store::SweepCommit {
            tracks: vec![
                store::TrackWrite::new(
                    0,
                    "h-a".into(),
                    "kaspersky/kesl".into(),
                    track(kesl()),
                    true,
                ),
                store::TrackWrite::new(
                    1,
                    "h-b".into(),
                    "kaspersky/kesl".into(),
                    track(kesl()),
                    true,
                ),
                store::TrackWrite::new(
                    1,
                    "h-b".into(),
                    "kaspersky/klnagent".into(),
                    track(remediated.clone()),
                    false,
                ),
                store::TrackWrite::new(
                    2,
                    "h-c".into(),
                    "kaspersky/kesl".into(),
                    track(kesl()),
                    true,
                ),
            ],
            ..Default::default()
        };
        let mut tracks = commit.tracks(&r);
        let mut seen = Vec::new();
        while let Some(row) = tracks.next_with(|w, t| {
            let json = serde_json::to_value(&t).unwrap();
            (
                format!("{} {}", w.host, w.rule),
                json["finding"]["version"].clone(),
            )
        }) {
            seen.push(row);
        }
        assert_eq!(
            seen,
            [
                (
                    "h-a kaspersky/kesl".to_string(),
                    serde_json::json!("12.1.0-1297")
                ),
                (
                    "h-b kaspersky/klnagent".to_string(),
                    serde_json::json!("12.1.0-1297")
                ),
                ("h-c kaspersky/kesl".to_string(), serde_json::json!("11")),
            ]
        );
    }

    /// A report of `hosts` (name, outcome, has KESL).
    fn report(hosts: &[(String, Outcome, bool)]) -> Report {
        let now = Timestamp::now();
        Report {
            report_version: REPORT_VERSION,
            sweep: SweepInfo {
                id: uuid::Uuid::new_v4().to_string(),
                started: now,
                finished: now,
                scanner_version: "test".into(),
                catalogs: vec![],
                shard: None,
                complete: true,
                interrupted_by: None,
            },
            summary: Summary::default(),
            exceptions: None,
            hosts: hosts
                .iter()
                .map(|(name, outcome, found)| HostReport {
                    name: name.as_str().into(),
                    address: "127.0.0.1".into(),
                    labels: [("site".to_string(), "lab".to_string())]
                        .into_iter()
                        .collect(),
                    outcome: *outcome,
                    error: None,
                    os: None,
                    duration_seconds: 0.5,
                    warnings: vec![],
                    incomplete: vec![],
                    findings: if *found { vec![kesl()] } else { vec![] },
                    scanned_by: None,
                })
                .collect(),
        }
    }

    fn hosts(n: usize, found: impl Fn(usize) -> bool) -> Vec<(String, Outcome, bool)> {
        (0..n)
            .map(|i| (format!("h-{i:05}"), Outcome::Scanned, found(i)))
            .collect()
    }

    /// `host rule from -> to` of each change, as the SIEM outputs get them.
    fn changed(changes: &[StatusChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} -> {}",
                    c.host,
                    c.rule,
                    c.from.map_or("none", Status::as_str),
                    c.to.as_str()
                )
            })
            .collect()
    }

    #[test]
    fn status_changes_are_returned_for_the_siem() {
        let cat = Catalog::builtin().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&store::Location::Sqlite(dir.path().join("state.db"))).unwrap();
        let mut sweep = |hosts: &[(String, Outcome, bool)], at: &str| {
            let mut r = report(hosts);
            apply_state(&mut r, Some(&mut store), &cat, None, ts(at)).unwrap()
        };
        let c = sweep(&hosts(3, |i| i < 2), "2027-01-01T00:00:00Z");
        assert_eq!(
            changed(&c),
            [
                "h-00000 kaspersky/kesl none -> new",
                "h-00001 kaspersky/kesl none -> new"
            ]
        );
        // Seen again: new -> open (the SIEM drops this routine one); h-02 new.
        let c = sweep(&hosts(3, |_| true), "2027-01-02T00:00:00Z");
        assert_eq!(
            changed(&c),
            [
                "h-00000 kaspersky/kesl new -> open",
                "h-00001 kaspersky/kesl new -> open",
                "h-00002 kaspersky/kesl none -> new"
            ]
        );
        let c = sweep(&hosts(3, |_| true), "2027-01-02T01:00:00Z");
        assert_eq!(changed(&c), ["h-00002 kaspersky/kesl new -> open"]);
        // Nothing changed: nothing returned.
        let c = sweep(&hosts(3, |_| true), "2027-01-02T02:00:00Z");
        assert_eq!(changed(&c), Vec::<String>::new());
        // Past due (30 days of grace), gone, not scanned.
        let c = sweep(
            &[
                ("h-00000".into(), Outcome::Scanned, true),
                ("h-00001".into(), Outcome::Scanned, false),
                ("h-00002".into(), Outcome::Unreachable, false),
            ],
            "2027-02-15T00:00:00Z",
        );
        assert_eq!(
            changed(&c),
            [
                "h-00000 kaspersky/kesl open -> overdue",
                "h-00001 kaspersky/kesl open -> remediated",
                "h-00002 kaspersky/kesl open -> unverified"
            ]
        );
        let notable: Vec<bool> = c.iter().map(StatusChange::is_notable).collect();
        assert_eq!(notable, [true, true, false]);
        // Back on h-01: reinstalled.
        let c = sweep(&hosts(2, |_| true), "2027-02-16T00:00:00Z");
        assert_eq!(
            changed(&c),
            ["h-00001 kaspersky/kesl remediated -> reinstalled"]
        );
        // Without a store every finding is a first sighting, every time.
        let mut r = report(&hosts(2, |i| i == 1));
        let c = apply_state(&mut r, None, &cat, None, ts("2027-01-01T00:00:00Z")).unwrap();
        assert_eq!(changed(&c), ["h-00001 kaspersky/kesl none -> new"]);
    }

    #[test]
    fn a_store_tracks_findings_across_sweeps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.db");
        let cat = Catalog::builtin().unwrap();
        let mut store = Store::open_file(&path).unwrap();
        let mut r1 = report(&hosts(3, |i| i < 2));
        apply_state(
            &mut r1,
            Some(&mut store),
            &cat,
            None,
            ts("2027-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(r1.summary.findings.new, 2);
        // h-00 removed, h-01 not scanned, h-02 gets it
        let mut r2 = report(&[
            ("h-00000".into(), Outcome::Scanned, false),
            ("h-00001".into(), Outcome::TimedOut, false),
            ("h-00002".into(), Outcome::Scanned, true),
        ]);
        apply_state(
            &mut r2,
            Some(&mut store),
            &cat,
            None,
            ts("2027-01-02T00:00:00Z"),
        )
        .unwrap();
        let status =
            |r: &Report, h: usize| r.hosts.get(h).unwrap().findings.first().map(|f| f.status);
        assert_eq!(status(&r2, 0), Some(Status::Remediated));
        assert_eq!(status(&r2, 1), Some(Status::Unverified));
        assert_eq!(
            r2.hosts.to_mut()[1].findings[0].last_verified,
            Some(ts("2027-01-01T00:00:00Z"))
        );
        assert_eq!(status(&r2, 2), Some(Status::New));
        assert_eq!(r2.summary.hosts.clean, 1, "remediated h-00 is clean");
        assert_eq!(r2.summary.hosts.affected, 1);
        let totals = store.remediation_totals().unwrap();
        assert_eq!(
            totals.get(&(
                "Kaspersky".into(),
                "Kaspersky Endpoint Security for Linux".into()
            )),
            Some(&1)
        );
        let rem = store.remediations().unwrap();
        assert_eq!(rem.len(), 1);
        assert_eq!(
            rem[0].remediated_at.as_second() - rem[0].since.as_second(),
            86400
        );
        // history, listing, prefix lookup, exact report
        let h = store.history().unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].sweep_id, r1.sweep.id);
        assert_eq!(h[1].findings.remediated, 1);
        assert_eq!(store.sweeps().unwrap()[1].open_findings, 1);
        assert_eq!(store.resolve(&r2.sweep.id[..6]).unwrap(), r2.sweep.id);
        assert!(matches!(
            store.resolve(""),
            Err(StateError::AmbiguousSweep { .. })
        ));
        assert!(matches!(
            store.resolve("zz"),
            Err(StateError::UnknownSweep { .. })
        ));
        assert_eq!(store.report(&r2.sweep.id).unwrap(), r2);
        assert_eq!(store.latest_id().unwrap(), Some(r2.sweep.id.clone()));
        drop(store);
        // reopening is fine; a newer schema is refused
        let store = Store::open_file(&path).unwrap();
        store
            .conn_for_tests()
            .pragma_update(None, "user_version", 7)
            .unwrap();
        drop(store);
        let err = Store::open_file(&path).err().unwrap().to_string();
        assert_eq!(
            err,
            format!(
                "{} was written by a newer fleetsweep (schema 7, this build knows {SCHEMA_VERSION}): upgrade, or point --state elsewhere",
                path.display()
            )
        );
    }

    /// A finding's evidence and containers (which the state step does not
    /// copy: see [`apply_state`]) are in the report and in the stored track
    /// after each sweep, and come back from the track once the host no longer
    /// reports the finding (remediated, unverified). Two findings of one
    /// host, one of them reported twice: the last is the one kept.
    #[test]
    fn evidence_and_containers_survive_the_state_step_and_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::builtin().unwrap();
        let mut store = Store::open_file(&dir.path().join("state.db")).unwrap();
        let rich = |value: &str| Finding {
            evidence: vec![
                Evidence {
                    kind: "package".into(),
                    source: Some("dpkg".into()),
                    value: value.into(),
                },
                Evidence {
                    kind: "path".into(),
                    source: None,
                    value: "/opt/kaspersky/kesl".into(),
                },
            ],
            containers: vec!["docker 3f2a1b2c3d4e".into()],
            ..kesl()
        };
        let other = Finding {
            rule: "kaspersky/klnagent".into(),
            product: "Kaspersky Network Agent".into(),
            evidence: vec![Evidence {
                kind: "service".into(),
                source: Some("systemd".into()),
                value: "klnagent64.service".into(),
            }],
            ..kesl()
        };
        let sweep = |store: &mut Store, found: Vec<Finding>, outcomes: [Outcome; 2], day: &str| {
            let mut r = report(&[
                ("h-a".into(), outcomes[0], false),
                ("h-b".into(), outcomes[1], false),
            ]);
            r.hosts.to_mut()[0].findings = found.clone();
            r.hosts.to_mut()[1].findings = found;
            r.normalize();
            apply_state(&mut r, Some(store), &cat, None, ts(day)).unwrap();
            r
        };
        let stored = |store: &Store, host: &str, rule: &str| -> Track {
            let json: String = store
                .conn_for_tests()
                .query_row(
                    "SELECT track FROM tracks WHERE host = ?1 AND rule = ?2",
                    [host, rule],
                    |r| r.get(0),
                )
                .unwrap();
            serde_json::from_str(&json).unwrap()
        };
        let first = sweep(
            &mut store,
            vec![rich("kesl 11"), rich("kesl 12.1.0-1297"), other.clone()],
            [Outcome::Scanned; 2],
            "2027-01-01T00:00:00Z",
        );
        let want = [rich("kesl 12.1.0-1297"), other.clone()];
        for h in &first.hosts {
            assert_eq!(h.findings.len(), 2, "{}: one finding per rule", h.name);
            for (got, want) in h.findings.iter().zip(&want) {
                assert_eq!(got.status, Status::New);
                assert_eq!(
                    (&got.evidence, &got.containers),
                    (&want.evidence, &want.containers)
                );
                let t = stored(&store, &h.name, &want.rule);
                assert_eq!(&t.finding, got, "the track holds the finding as reported");
            }
        }
        let second = sweep(
            &mut store,
            vec![rich("kesl 12.1.0-1297"), other.clone()],
            [Outcome::Scanned; 2],
            "2027-01-02T00:00:00Z",
        );
        for h in &second.hosts {
            assert_eq!(h.findings[0].status, Status::Open);
            assert_eq!(h.findings[0].evidence, want[0].evidence);
            assert_eq!(h.findings[0].containers, want[0].containers);
            assert_eq!(
                stored(&store, &h.name, &want[0].rule).finding,
                h.findings[0]
            );
        }
        // Gone from h-a (scanned), h-b not scanned: both carried from the tracks.
        let third = sweep(
            &mut store,
            vec![],
            [Outcome::Scanned, Outcome::TimedOut],
            "2027-01-03T00:00:00Z",
        );
        for (h, status) in third
            .hosts
            .iter()
            .zip([Status::Remediated, Status::Unverified])
        {
            assert_eq!(h.findings.len(), 2, "{}", h.name);
            for (got, want) in h.findings.iter().zip(&want) {
                assert_eq!(got.status, status, "{} {}", h.name, got.rule);
                assert_eq!(
                    (&got.evidence, &got.containers),
                    (&want.evidence, &want.containers)
                );
            }
        }
    }

    /// A store written before retention existed (schema 1) is migrated in
    /// place and keeps its sweeps.
    #[test]
    fn a_schema_1_store_is_migrated_for_retention() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.db");
        let cat = Catalog::builtin().unwrap();
        let mut store = Store::open_file(&path).unwrap();
        let mut r = report(&hosts(2, |i| i == 0));
        apply_state(
            &mut r,
            Some(&mut store),
            &cat,
            None,
            ts("2027-01-01T00:00:00Z"),
        )
        .unwrap();
        let conn = store.conn_for_tests();
        conn.execute_batch(
            "UPDATE sweeps SET report =
                 (SELECT CAST(report AS TEXT) FROM sweep_reports WHERE sweep = seq);
             DROP TABLE sweep_reports;
             DROP INDEX host_results_by_host; ALTER TABLE sweeps DROP COLUMN scanner;
             ALTER TABLE sweeps DROP COLUMN pruned; PRAGMA user_version = 1;",
        )
        .unwrap();
        drop(store);
        let mut store = Store::open_file(&path).unwrap();
        let version: i64 = store
            .conn_for_tests()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        assert_eq!(
            store.report(&r.sweep.id).unwrap(),
            r,
            "the old sweep is intact"
        );
        let mut r2 = report(&hosts(2, |i| i == 0));
        apply_state(
            &mut r2,
            Some(&mut store),
            &cat,
            None,
            ts("2027-03-01T00:00:00Z"),
        )
        .unwrap();
        let pruned = store
            .prune(ts("2027-02-01T00:00:00Z"), ts("2027-03-01T00:00:00Z"))
            .unwrap();
        assert_eq!(pruned, Pruned { sweeps: 1, rows: 3 });
        assert_eq!(
            (r2.summary.findings.new, r2.summary.findings.overdue),
            (0, 1),
            "the migrated track carried on (two months on: overdue, not new)"
        );
    }

    #[test]
    fn exceptions_are_applied_counted_and_expire() {
        let dir = tempfile::tempdir().unwrap();
        let ex = Exceptions::parse(
            Path::new("ex.yaml"),
            "exceptions:\n  - hosts: \"h-0000[01]\"\n    rule: \"kaspersky/*\"\n    reason: r\n    approver: a\n    expires: 2027-01-31\n  - labels: {site: nowhere}\n    rule: x/y\n    reason: r\n    approver: a\n    expires: 2027-12-31\n",
        )
        .unwrap();
        let cat = Catalog::builtin().unwrap();
        let mut store = Store::open_file(&dir.path().join("s.db")).unwrap();
        let mut r = report(&hosts(3, |_| true));
        let t = ts("2027-01-10T00:00:00Z");
        apply_state(&mut r, Some(&mut store), &cat, Some(&ex), t).unwrap();
        let e = r.exceptions.clone().unwrap();
        assert_eq!(e.applied.len(), 1);
        assert_eq!(e.applied[0].findings, 2);
        assert_eq!(e.unused.len(), 1);
        assert!(e.expired.is_empty());
        assert!(has_failing_finding(&r), "h-00002 is not covered");
        let mut r = report(&hosts(2, |_| true));
        apply_state(&mut r, Some(&mut store), &cat, Some(&ex), t).unwrap();
        assert_eq!(r.summary.findings.excepted, 2);
        assert!(!has_failing_finding(&r));
        let mut r = report(&hosts(2, |_| true));
        apply_state(
            &mut r,
            Some(&mut store),
            &cat,
            Some(&ex),
            ts("2027-02-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(r.summary.findings.open, 2);
        let e = r.exceptions.unwrap();
        assert_eq!(e.expired[0].findings, 2);
        assert!(e.applied.is_empty());
    }

    #[test]
    fn without_a_store_everything_is_new() {
        let cat = Catalog::builtin().unwrap();
        for _ in 0..2 {
            let mut r = report(&hosts(2, |_| true));
            apply_state(&mut r, None, &cat, None, Timestamp::now()).unwrap();
            assert_eq!(r.summary.findings.new, 2);
        }
    }

    /// Retention drops old reports and their rows, keeps the summaries, the
    /// remediation events and the tracks, and changes no status; the file stops
    /// growing. Prints the figures.
    #[test]
    fn retention_prunes_old_reports_and_changes_no_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let cat = Catalog::builtin().unwrap();
        let mut store = Store::open_file(&path).unwrap();
        let keep = jiff::SignedDuration::from_hours(24 * 10);
        let day = |d: u32| ts(&format!("2027-01-{d:02}T06:00:00Z"));
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        let mut sizes = Vec::new();
        // Days 1..=30: 1,000 hosts, the first 50 with KESL; on day 20 host 0 is
        // remediated.
        for d in 1..=30u32 {
            let mut r = report(&hosts(1000, |i| i < 50 && !(d >= 20 && i == 0)));
            apply_state(&mut r, Some(&mut store), &cat, None, day(d)).unwrap();
            let pruned = store
                .prune(day(d).checked_sub(keep).unwrap(), day(d))
                .unwrap();
            if d <= 11 {
                assert_eq!(pruned.sweeps, 0, "day {d}: nothing older than 10 days yet");
            } else {
                assert_eq!(pruned.sweeps, 1, "day {d}: the sweep of day {}", d - 10);
                // Day 20 also holds the remediated finding (reported once, then dropped).
                assert_eq!(pruned.rows, 1000 + 50 - usize::from(d - 10 > 20), "day {d}");
            }
            if d == 29 {
                assert_eq!(
                    (r.summary.findings.open, r.summary.findings.remediated),
                    (49, 0),
                    "statuses still come from the tracks"
                );
            }
            sizes.push(size(&path));
        }
        let rows = store.sweeps().unwrap();
        assert_eq!(rows.len(), 30, "every sweep keeps its row");
        assert_eq!(rows.iter().filter(|r| r.pruned.is_some()).count(), 19);
        assert_eq!(
            store.history().unwrap().len(),
            30,
            "the burn-down keeps every point"
        );
        let first = rows[0].id.clone();
        let e = store.report(&first).unwrap_err().to_string();
        assert!(e.contains("was pruned at 2027-01-12T06:00:00Z"), "{e}");
        assert!(store.report(&rows[29].id).is_ok());
        assert!(
            store.report(&rows[19].id).is_ok(),
            "day 20 is within 10 days of day 30"
        );
        assert_eq!(
            store.remediation_totals().unwrap().values().sum::<u64>(),
            1,
            "the remediation of day 20 survives its sweep's pruning"
        );
        // With retention the file stops growing: days 21..30 add (almost) nothing.
        let growth_late = sizes[29] - sizes[19];
        eprintln!(
            "retention 10 d, 1000 hosts/sweep: file {} KiB after 11 sweeps, {} KiB after 20, {} KiB after 30",
            sizes[10] / 1024,
            sizes[19] / 1024,
            sizes[29] / 1024
        );
        assert!(
            growth_late * 10 < sizes[19],
            "grew {growth_late} bytes over the last 10 sweeps"
        );
        // Without retention the same 30 sweeps take several times the space.
        let mut all = Store::open_file(&dir.path().join("all.db")).unwrap();
        for d in 1..=30u32 {
            let mut r = report(&hosts(1000, |i| i < 50));
            apply_state(&mut r, Some(&mut all), &cat, None, day(d)).unwrap();
        }
        let unbounded = size(&dir.path().join("all.db"));
        eprintln!("without retention: {} KiB", unbounded / 1024);
        assert!(
            unbounded * 2 > sizes[29] * 3,
            "{unbounded} vs {}",
            sizes[29]
        );
    }

    /// A figure for the README/report: one commit of a 5,000-host sweep.
    #[test]
    fn a_large_sweep_commits_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::builtin().unwrap();
        let mut store = Store::open_file(&dir.path().join("s.db")).unwrap();
        for day in 1..=2 {
            let mut r = report(&hosts(5000, |i| i % 4 == 0));
            let t0 = std::time::Instant::now();
            let now = ts(&format!("2027-01-0{day}T00:00:00Z"));
            apply_state(&mut r, Some(&mut store), &cat, None, now).unwrap();
            eprintln!(
                "5000 hosts, 1250 findings: apply_state + commit in {:?}",
                t0.elapsed()
            );
            let want = if day == 1 { (1250, 0) } else { (0, 1250) };
            assert_eq!((r.summary.findings.new, r.summary.findings.open), want);
        }
    }

    /// 2,500 hosts in one sweep (one transaction, the report streamed into
    /// its row): the next sweep derives every status right, the stored report
    /// reads back exactly, and a report stored as TEXT (older stores) still
    /// reads.
    #[test]
    fn a_2500_host_sweep_is_recorded_whole_and_drives_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::builtin().unwrap();
        let mut store = Store::open_file(&dir.path().join("s.db")).unwrap();
        // Every 10th host has KESL.
        let mut r1 = report(&hosts(2500, |i| i % 10 == 0));
        apply_state(
            &mut r1,
            Some(&mut store),
            &cat,
            None,
            ts("2027-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(r1.summary.findings.new, 250);
        assert_eq!(store.report(&r1.sweep.id).unwrap(), r1);
        // Next sweep: hosts 0, 10, ... 990 removed it; 1000..=1990 were not
        // reachable; host 7 has it now.
        let second: Vec<(String, Outcome, bool)> = (0..2500)
            .map(|i| {
                let outcome = if (1000..2000).contains(&i) {
                    Outcome::Unreachable
                } else {
                    Outcome::Scanned
                };
                (
                    format!("h-{i:05}"),
                    outcome,
                    (i % 10 == 0 && i >= 2000) || i == 7,
                )
            })
            .collect();
        let mut r2 = report(&second);
        apply_state(
            &mut r2,
            Some(&mut store),
            &cat,
            None,
            ts("2027-01-02T00:00:00Z"),
        )
        .unwrap();
        let f = &r2.summary.findings;
        assert_eq!(
            (f.remediated, f.unverified, f.open, f.new),
            (100, 100, 50, 1),
            "{f:?}"
        );
        let status = |i: usize| r2.hosts.get(i).unwrap().findings.first().map(|f| f.status);
        assert_eq!(status(0), Some(Status::Remediated));
        assert_eq!(status(1000), Some(Status::Unverified));
        assert_eq!(status(2490), Some(Status::Open));
        assert_eq!(status(7), Some(Status::New));
        assert_eq!(status(1), None);
        assert_eq!(store.remediations().unwrap().len(), 100);
        assert_eq!(store.report(&r2.sweep.id).unwrap(), r2);
        // A store written before reports were streamed holds them as TEXT.
        let n = store
            .conn_for_tests()
            .execute("UPDATE sweeps SET report = CAST(report AS TEXT)", [])
            .unwrap();
        assert_eq!(n, 2);
        let kind: String = store
            .conn_for_tests()
            .query_row("SELECT DISTINCT typeof(report) FROM sweeps", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(kind, "text");
        assert_eq!(store.report(&r1.sweep.id).unwrap(), r1);
        assert_eq!(store.report(&r2.sweep.id).unwrap(), r2);
    }

    /// A store that cannot be read halfway through the derivation leaves the
    /// report exactly as the sweep made it (no status half-applied), and
    /// commits nothing.
    #[test]
    fn a_store_failing_mid_derivation_leaves_the_report_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::builtin().unwrap();
        let mut store = Store::open_file(&dir.path().join("s.db")).unwrap();
        let mut r1 = report(&hosts(30, |i| i % 3 == 0));
        apply_state(
            &mut r1,
            Some(&mut store),
            &cat,
            None,
            ts("2027-01-01T00:00:00Z"),
        )
        .unwrap();
        // The track of a host in the middle of the fleet is damaged.
        store
            .conn_for_tests()
            .execute(
                "UPDATE tracks SET track = 'not json' WHERE host = 'h-00015'",
                [],
            )
            .unwrap();
        let mut r2 = report(&hosts(30, |i| i % 3 == 0));
        let before = r2.clone();
        let err = apply_state(
            &mut r2,
            Some(&mut store),
            &cat,
            None,
            ts("2027-01-02T00:00:00Z"),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("unreadable record: track h-00015"),
            "{err}"
        );
        assert_eq!(r2, before);
        assert_eq!(store.sweeps().unwrap().len(), 1, "nothing committed");
    }

    /// The fleet view on SQLite (the same code as on PostgreSQL): two
    /// scanners' shards make one fleet, each host once with the sweep and
    /// scanner it comes from; `upto` gives the fleet as it stood then.
    #[test]
    fn the_fleet_view_combines_the_latest_result_of_every_host() {
        let dir = tempfile::tempdir().unwrap();
        let cat = Catalog::builtin().unwrap();
        let mut store = Store::open_file(&dir.path().join("s.db")).unwrap();
        let all = hosts(6, |i| i % 2 == 0);
        let mut sweep = |scanner: &str, shard: &str, which: &[usize], day: u32| {
            let mut r = report(&which.iter().map(|&i| all[i].clone()).collect::<Vec<_>>());
            r.sweep.shard = Some(shard.into());
            store.set_scanner(scanner);
            let t = ts(&format!("2027-01-0{day}T00:00:00Z"));
            apply_state(&mut r, Some(&mut store), &cat, None, t).unwrap();
            r.sweep.id
        };
        let a1 = sweep("a", "1/2", &[0, 1, 2], 1);
        let b1 = sweep("b", "2/2", &[3, 4, 5], 1);
        let a2 = sweep("a", "1/2", &[0, 1], 2);
        let fleet = store.fleet(None).unwrap();
        assert_eq!(fleet.sweep.id, "fleet");
        let hosts = fleet.hosts.clone().into_vec();
        let by: Vec<(&str, &str, Option<&str>)> = hosts
            .iter()
            .map(|h| {
                let s = h.scanned_by.as_ref().unwrap();
                (&*h.name, s.sweep.as_str(), s.scanner.as_deref())
            })
            .collect();
        assert_eq!(
            by,
            [
                ("h-00000", a2.as_str(), Some("a")),
                ("h-00001", a2.as_str(), Some("a")),
                ("h-00002", a1.as_str(), Some("a")),
                ("h-00003", b1.as_str(), Some("b")),
                ("h-00004", b1.as_str(), Some("b")),
                ("h-00005", b1.as_str(), Some("b")),
            ]
        );
        assert_eq!(fleet.summary.hosts.total, 6);
        assert_eq!(
            (fleet.summary.findings.new, fleet.summary.findings.open),
            (2, 1)
        );
        let then = store.fleet(Some(&b1)).unwrap();
        assert_eq!(then.sweep.id, format!("fleet@{b1}"));
        assert!(then
            .hosts
            .iter()
            .all(|h| h.scanned_by.as_ref().unwrap().sweep != a2));
        let rows = store.sweeps().unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| r.scanner.as_deref())
                .collect::<Vec<_>>(),
            [Some("a"), Some("b"), Some("a")]
        );
        // Retention keeps the newest sweep of each scanner: b's only one stays.
        let p = store
            .prune(ts("2027-01-05T00:00:00Z"), ts("2027-01-05T00:00:00Z"))
            .unwrap();
        assert_eq!(p.sweeps, 1, "a's first sweep only");
        let fleet = store.fleet(None).unwrap();
        assert_eq!(
            fleet
                .hosts
                .iter()
                .map(|h| h.name.to_string())
                .collect::<Vec<_>>(),
            ["h-00000", "h-00001", "h-00003", "h-00004", "h-00005"],
            "h-00002's only result was pruned"
        );
    }

    /// A truncated (0-byte) store, a directory or a FIFO named as the store
    /// is refused with what to do, never silently replaced by a new history.
    #[test]
    fn files_that_cannot_hold_a_store_are_refused_not_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        for open in [Store::open_file, Store::open_existing_file] {
            let err = open(&empty).err().unwrap().to_string();
            assert!(err.contains("empty (0 bytes)"), "{err}");
            assert!(err.contains("restore it from a backup"), "{err}");
            assert_eq!(
                std::fs::metadata(&empty).unwrap().len(),
                0,
                "left as it was"
            );
            let err = open(dir.path()).err().unwrap().to_string();
            assert!(err.contains("is a directory"), "{err}");
        }
        let fifo = dir.path().join("fifo.db");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo reads it only.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = Store::open_file(&fifo).err().unwrap().to_string();
        assert!(err.contains("not a regular file"), "{err}");
        let err = Store::open_existing_file(&dir.path().join("missing.db"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no state store at"), "{err}");
    }
}
