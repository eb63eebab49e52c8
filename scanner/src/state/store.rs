//! The state store interface: one [`Store`] over two backends, SQLite (one
//! file, the embedded default: [`super::sqlite`]) and PostgreSQL (one database
//! shared by many scanners: [`super::postgres`]).
//!
//! The backends only store; everything derived (statuses, exceptions,
//! remediation events: [`super::apply_state`], [`super::status`]) and the
//! fleet view ([`Store::fleet`]) are written once, here and in `mod.rs`, and
//! read the store through the same few calls. A backend is picked by the
//! `--state` value ([`Location::parse`]): a `postgresql://` or `postgres://`
//! URL, else a file path.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use fleetsweep_exporters::{Finding, HistoryPoint, HostReport, Report, ScannedBy, Status};
use serde::Serialize;

use super::postgres::{self, PgStore, PgTarget};
use super::sqlite::{self, SqliteStore};
use super::status::Track;
use super::StateError;

/// Where the state store is: what `--state` names.
#[derive(Debug, Clone)]
pub enum Location {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database (the URL is kept; its password is never shown).
    Postgres(Box<PgTarget>),
}

impl Location {
    /// `postgresql://...` or `postgres://...` is a PostgreSQL database (the
    /// URL is checked here, nothing is connected); anything else is a file.
    pub fn parse(text: &std::ffi::OsStr) -> Result<Location, StateError> {
        match text.to_str() {
            Some(t) if postgres::is_url(t) => Ok(Location::Postgres(Box::new(PgTarget::parse(t)?))),
            _ => Ok(Location::Sqlite(PathBuf::from(text))),
        }
    }

    /// The SQLite file, when the store is one.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// True for a database shared by many scanners (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self, Location::Postgres(_))
    }
}

/// The file path, or the URL without its password.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(t) => write!(f, "{t}"),
        }
    }
}

/// An open state store.
pub struct Store {
    backend: Backend,
    /// Who commits this store's sweeps (`--scanner`, default the host
    /// name): recorded with each sweep, shown by `report --list` and in the
    /// fleet view.
    scanner: Option<String>,
}

enum Backend {
    Sqlite(SqliteStore),
    /// Boxed: it holds its connection settings (several hundred bytes).
    Postgres(Box<PgStore>),
}

/// Calls the same method on whichever backend the store has.
macro_rules! dispatch {
    ($self:expr, $s:ident => $call:expr) => {
        match $self {
            Backend::Sqlite($s) => $call,
            Backend::Postgres($s) => $call,
        }
    };
}

/// One sweep as listed by `fleetsweep report --list`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SweepRow {
    pub id: String,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub complete: bool,
    pub shard: Option<String>,
    /// The scanner that committed it (`--scanner`); none in stores written
    /// before scanners were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scanner: Option<String>,
    pub hosts: usize,
    /// Findings with an open status (new, open, overdue, reinstalled).
    pub open_findings: usize,
    /// When retention dropped this sweep's report (its summary stays).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pruned: Option<Timestamp>,
}

/// What [`Store::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Sweeps whose report was dropped.
    pub sweeps: usize,
    /// Host-result and finding-history rows deleted with them.
    pub rows: usize,
}

/// A remediation event: a successful scan found a finding gone.
#[derive(Debug, Clone, PartialEq)]
pub struct Remediation {
    pub host: String,
    pub rule: String,
    pub vendor: String,
    pub product: String,
    /// Start of the episode that ended (first sighting or reinstall).
    pub since: Timestamp,
    pub remediated_at: Timestamp,
}

/// The sweep that holds a host's latest result (see [`Store::fleet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatestResult {
    pub sweep: String,
    pub host: String,
}

/// A stored value of store `store` (its name as errors show it) that does not
/// decode: a damaged store, or one another program wrote. Both backends.
pub(crate) fn data_err(store: &str, what: &str, e: impl fmt::Display) -> StateError {
    StateError::Data {
        store: store.to_string(),
        detail: format!("{what}: {e}"),
    }
}

/// A stored timestamp (RFC 3339 text in both backends).
pub(crate) fn parse_ts(store: &str, s: &str) -> Result<Timestamp, StateError> {
    s.parse()
        .map_err(|e| data_err(store, &format!("timestamp `{s}`"), e))
}

/// A burn-down point from a sweep row: its stored summary is JSON.
pub(crate) fn history_point(
    store: &str,
    sweep_id: String,
    finished: &str,
    complete: bool,
    summary: &str,
) -> Result<HistoryPoint, StateError> {
    let summary: fleetsweep_exporters::Summary =
        serde_json::from_str(summary).map_err(|err| data_err(store, "stored summary", err))?;
    Ok(HistoryPoint {
        sweep_id,
        finished: parse_ts(store, finished)?,
        complete,
        hosts: summary.hosts,
        findings: summary.findings,
    })
}

/// A (host, rule) track as stored: JSON.
pub(crate) fn decode_track(
    store: &str,
    host: &str,
    rule: &str,
    json: &str,
) -> Result<Track, StateError> {
    serde_json::from_str(json).map_err(|err| data_err(store, &format!("track {host} {rule}"), err))
}

/// What one sweep changes beyond its report, written in the same
/// transaction (host results, finding history and verified hosts are
/// written from the report itself).
#[derive(Debug, Default)]
pub(crate) struct SweepCommit {
    pub now: Option<Timestamp>,
    /// The tracks that changed.
    pub tracks: Vec<TrackWrite>,
    pub remediations: Vec<Remediation>,
}

/// One (host, rule) track to write: a [`Track`] whose finding, when it is
/// the one the report holds for (host, rule), is not held here but taken
/// from the report at the commit ([`Tracks::next_with`]): a sweep's findings
/// are not held twice until the commit (at 100,000 hosts, every one
/// affected, some 60 MB).
#[derive(Debug)]
pub(crate) struct TrackWrite {
    /// The host's place in the report.
    index: usize,
    pub host: String,
    pub rule: String,
    pub status: Status,
    first_seen: Timestamp,
    since: Timestamp,
    last_seen: Timestamp,
    remediated_at: Option<Timestamp>,
    /// A finding only the store had (remediated, unverified); none for the
    /// report's.
    finding: Option<Box<Finding>>,
}

impl TrackWrite {
    /// `track` of (host, rule), the host `index`-th in the report;
    /// `in_report`: its finding is the report's.
    pub(crate) fn new(
        index: usize,
        host: String,
        rule: String,
        track: Track,
        in_report: bool,
    ) -> TrackWrite {
        let Track {
            first_seen,
            since,
            last_seen,
            status,
            remediated_at,
            finding,
        } = track;
        TrackWrite {
            index,
            host,
            rule,
            status,
            first_seen,
            since,
            last_seen,
            remediated_at,
            finding: (!in_report).then(|| Box::new(finding)),
        }
    }
}

/// A track as [`Track`] serializes it, with its finding borrowed.
#[derive(Serialize)]
pub(crate) struct TrackRef<'a> {
    first_seen: &'a Timestamp,
    since: &'a Timestamp,
    last_seen: &'a Timestamp,
    status: &'a Status,
    remediated_at: &'a Option<Timestamp>,
    finding: &'a Finding,
}

impl SweepCommit {
    /// The tracks to write, in order, each with its whole finding
    /// ([`Tracks::next_with`]).
    pub(crate) fn tracks<'a>(&'a self, report: &'a Report) -> Tracks<'a> {
        let with_findings = report
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| !h.findings.is_empty());
        Tracks {
            writes: self.tracks.iter(),
            hosts: (Box::new(with_findings) as Box<dyn Iterator<Item = _>>).peekable(),
            host: None,
        }
    }
}

/// The tracks of a commit, walked alongside the report they were derived
/// from: a track whose finding is the report's takes it from its host's
/// report, and the tracks come in the report's
/// order (the state step derived them host by host), so one pass over the
/// report's hosts with findings serves, holding one host at a time.
pub(crate) struct Tracks<'a> {
    writes: std::slice::Iter<'a, TrackWrite>,
    /// The report's hosts with findings, and their places.
    hosts: std::iter::Peekable<Box<dyn Iterator<Item = (usize, Cow<'a, HostReport>)> + 'a>>,
    /// The host the last track's finding came from, and its place.
    host: Option<(usize, Cow<'a, HostReport>)>,
}

impl Tracks<'_> {
    /// Calls `f` with the next track and its view; none after the last.
    /// A track whose finding the report no longer holds (its host's result
    /// lost from the spill file since the derivation: the host is failed in
    /// the report) is left as the store has it, and said in the log.
    pub(crate) fn next_with<R>(
        &mut self,
        f: impl FnOnce(&TrackWrite, TrackRef<'_>) -> R,
    ) -> Option<R> {
        loop {
            let w = self.writes.next()?;
            let finding = match &w.finding {
                Some(f) => &**f,
                None => {
                    // Tracks come in the order of their hosts' places:
                    // hosts before this one's are passed, none after it.
                    if self.host.as_ref().is_none_or(|(i, _)| *i != w.index) {
                        self.host = None;
                        while let Some((i, _)) = self.hosts.peek() {
                            if *i > w.index {
                                break;
                            }
                            let next = self.hosts.next();
                            if next.as_ref().is_some_and(|(i, _)| *i == w.index) {
                                self.host = next;
                                break;
                            }
                        }
                    }
                    // The last one of the rule, as the derivation kept it.
                    let found = self
                        .host
                        .as_ref()
                        .and_then(|(_, h)| h.findings.iter().rev().find(|f| f.rule == w.rule));
                    match found {
                        Some(f) => f,
                        None => {
                            tracing::error!(
                                host = %w.host,
                                rule = %w.rule,
                                "the sweep's report no longer holds this finding; its track is left as it was"
                            );
                            continue;
                        }
                    }
                }
            };
            let view = TrackRef {
                first_seen: &w.first_seen,
                since: &w.since,
                last_seen: &w.last_seen,
                status: &w.status,
                remediated_at: &w.remediated_at,
                finding,
            };
            return Some(f(w, view));
        }
    }
}

/// A write transaction: the reads the derivation depends on and the writes
/// of the sweep are one atomic step, whichever other scanners commit at the
/// same time (SQLite: the whole file is locked; PostgreSQL: the hosts of the
/// sweep are, see [`super::postgres`]).
pub(crate) struct Tx<'a> {
    inner: TxInner<'a>,
    scanner: Option<&'a str>,
}

enum TxInner<'a> {
    Sqlite(sqlite::Tx<'a>),
    Postgres(postgres::Tx<'a>),
}

impl Tx<'_> {
    /// What the store remembers of `host`, by rule.
    pub(crate) fn tracks(&self, host: &str) -> Result<BTreeMap<String, Track>, StateError> {
        match &self.inner {
            TxInner::Sqlite(t) => t.tracks(host),
            TxInner::Postgres(t) => t.tracks(host),
        }
    }

    /// When `host` was last scanned completely.
    pub(crate) fn last_verified(&self, host: &str) -> Result<Option<Timestamp>, StateError> {
        match &self.inner {
            TxInner::Sqlite(t) => t.last_verified(host),
            TxInner::Postgres(t) => t.last_verified(host),
        }
    }

    /// Writes the sweep and everything it changed, then commits: all or nothing.
    pub(crate) fn commit(self, report: &Report, c: &SweepCommit) -> Result<(), StateError> {
        match self.inner {
            TxInner::Sqlite(t) => t.commit(report, c, self.scanner),
            TxInner::Postgres(t) => t.commit(report, c, self.scanner),
        }
    }
}

impl Store {
    /// The default location: `fleetsweep/state.db` under the user's data directory.
    pub fn default_path() -> Option<PathBuf> {
        dirs::data_dir().map(|d| d.join("fleetsweep").join("state.db"))
    }

    /// Opens the store at `location`: an SQLite file is created (with its
    /// directory) when missing; a PostgreSQL database must exist, and gets
    /// fleetsweep's tables on first use. Either is migrated to this build's
    /// schema, and one from a newer fleetsweep is refused.
    pub fn open(location: &Location) -> Result<Store, StateError> {
        Ok(Store::from_backend(match location {
            Location::Sqlite(p) => Backend::Sqlite(SqliteStore::open(p)?),
            Location::Postgres(t) => Backend::Postgres(Box::new(PgStore::connect(t)?)),
        }))
    }

    /// Opens an existing store (for `fleetsweep report`): a missing SQLite
    /// file is an error, not a new empty history.
    pub fn open_existing(location: &Location) -> Result<Store, StateError> {
        Ok(Store::from_backend(match location {
            Location::Sqlite(p) => Backend::Sqlite(SqliteStore::open_existing(p)?),
            Location::Postgres(t) => Backend::Postgres(Box::new(PgStore::connect(t)?)),
        }))
    }

    /// The SQLite file at `path` (tests and tools that only know files).
    pub fn open_file(path: &Path) -> Result<Store, StateError> {
        Store::open(&Location::Sqlite(path.to_path_buf()))
    }

    /// An existing SQLite file at `path`.
    pub fn open_existing_file(path: &Path) -> Result<Store, StateError> {
        Store::open_existing(&Location::Sqlite(path.to_path_buf()))
    }

    fn from_backend(backend: Backend) -> Store {
        Store {
            backend,
            scanner: None,
        }
    }

    /// Names the scanner whose sweeps this store commits from now on.
    pub fn set_scanner(&mut self, name: &str) {
        self.scanner = Some(name.to_string());
    }

    #[cfg(test)]
    pub(crate) fn conn_for_tests(&self) -> &rusqlite::Connection {
        match &self.backend {
            Backend::Sqlite(s) => s.conn_for_tests(),
            Backend::Postgres(_) => unreachable!("SQLite-only test aid"),
        }
    }

    /// A write transaction covering `hosts` (the sweep's): see [`Tx`].
    /// True when [`Store::transaction`] needs the sweep's host names (a
    /// PostgreSQL store locks and reads their tracks up front; SQLite takes
    /// the whole file and reads tracks host by host).
    pub(crate) fn locks_hosts(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    pub(crate) fn transaction(&mut self, hosts: &[&str]) -> Result<Tx<'_>, StateError> {
        let inner = match &mut self.backend {
            Backend::Sqlite(s) => TxInner::Sqlite(s.transaction()?),
            Backend::Postgres(s) => TxInner::Postgres(s.transaction(hosts)?),
        };
        Ok(Tx {
            inner,
            scanner: self.scanner.as_deref(),
        })
    }

    /// Sweeps, oldest first (in commit order).
    pub fn sweeps(&self) -> Result<Vec<SweepRow>, StateError> {
        dispatch!(&self.backend, s => s.sweeps())
    }

    /// The full id of the sweep `id_or_prefix` names (an id or a unique prefix).
    pub fn resolve(&self, id_or_prefix: &str) -> Result<String, StateError> {
        dispatch!(&self.backend, s => s.resolve(id_or_prefix))
    }

    /// The id of the last committed sweep, if any.
    pub fn latest_id(&self) -> Result<Option<String>, StateError> {
        dispatch!(&self.backend, s => s.latest_id())
    }

    /// The report of sweep `id` exactly as it was written.
    pub fn report(&self, id: &str) -> Result<Report, StateError> {
        dispatch!(&self.backend, s => s.report(id))
    }

    /// Retention: drops the report, host results and finding history of every
    /// sweep whose statuses were derived before `before`, except the newest
    /// sweep of each scanner. Kept: each sweep's row and summary (the
    /// burn-down), every remediation event, and the tracks statuses are
    /// derived from, so pruning changes no status.
    pub fn prune(&mut self, before: Timestamp, now: Timestamp) -> Result<Pruned, StateError> {
        dispatch!(&mut self.backend, s => s.prune(before, now))
    }

    /// Every sweep as a burn-down point, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryPoint>, StateError> {
        dispatch!(&self.backend, s => s.history())
    }

    /// All-time count of remediation events per (vendor, product), for
    /// `fleetsweep_remediations_total`.
    pub fn remediation_totals(&self) -> Result<BTreeMap<(String, String), u64>, StateError> {
        dispatch!(&self.backend, s => s.remediation_totals())
    }

    /// Remediation events, oldest first (with their remediation time).
    pub fn remediations(&self) -> Result<Vec<Remediation>, StateError> {
        dispatch!(&self.backend, s => s.remediations())
    }

    /// The fleet view: the latest result of every host, across the sweeps of
    /// every scanner (shards, sites) that committed to this store, each host
    /// carrying the sweep, scanner and time it comes from (`scanned_by`).
    /// `upto` (a full sweep id) gives the fleet as it stood when that sweep
    /// was committed. A host's findings carry the statuses its sweep
    /// derived. Hosts whose every result was pruned (`--state-keep`) are not
    /// in it.
    ///
    /// One stored report is read at a time, and only the hosts it holds the
    /// latest result of are kept from it.
    pub fn fleet(&self, upto: Option<&str>) -> Result<Report, StateError> {
        let latest = dispatch!(&self.backend, s => s.latest_results(upto))?;
        let rows: BTreeMap<String, SweepRow> = self
            .sweeps()?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        // In commit order (the backends return it so), each sweep once.
        let mut by_sweep: Vec<(String, BTreeSet<String>)> = Vec::new();
        for LatestResult { sweep, host } in latest {
            match by_sweep.last_mut() {
                Some((s, hosts)) if *s == sweep => {
                    hosts.insert(host);
                }
                _ => by_sweep.push((sweep, BTreeSet::from([host]))),
            }
        }
        let mut out: Option<Report> = None;
        let mut complete = true;
        let mut started = None::<Timestamp>;
        for (id, hosts) in by_sweep {
            let mut r = self.report(&id)?;
            let row = rows.get(&id);
            let by = ScannedBy {
                sweep: id.clone(),
                scanner: row.and_then(|w| w.scanner.clone()),
                shard: r.sweep.shard.clone(),
                finished: r.sweep.finished,
            };
            complete &= r.sweep.complete;
            started = Some(started.map_or(r.sweep.started, |s| s.min(r.sweep.started)));
            let list = r.hosts.to_mut();
            list.retain(|h| hosts.contains(&*h.name));
            for h in list {
                h.scanned_by = Some(Box::new(by.clone()));
            }
            match &mut out {
                None => out = Some(r),
                Some(o) => {
                    // The newest sweep's catalogs and times describe the view.
                    o.hosts.to_mut().append(r.hosts.to_mut());
                    o.sweep.catalogs = r.sweep.catalogs;
                    o.sweep.finished = r.sweep.finished;
                    o.sweep.scanner_version = r.sweep.scanner_version;
                }
            }
        }
        let Some(mut report) = out else {
            return Err(StateError::Empty { store: self.name() });
        };
        report.sweep.id = match upto {
            Some(id) => format!("fleet@{id}"),
            None => "fleet".into(),
        };
        report.sweep.started = started.unwrap_or(report.sweep.started);
        report.sweep.complete = complete;
        report.sweep.shard = None;
        report.sweep.interrupted_by = None;
        // Exceptions are a property of one sweep's run, not of the fleet.
        report.exceptions = None;
        report.normalize();
        Ok(report)
    }

    /// The file path, or the URL without its password.
    pub fn name(&self) -> String {
        match &self.backend {
            Backend::Sqlite(s) => s.path().display().to_string(),
            Backend::Postgres(s) => s.name().to_string(),
        }
    }
}

/// Test aid: pause this many milliseconds per host while committing, so a
/// crash test can SIGKILL the process in the middle of a commit. Read only with
/// the `test-hooks` feature (the tests' builds), never in a normal or release build.
#[cfg(feature = "test-hooks")]
const COMMIT_PAUSE_ENV: &str = "FLEETSWEEP_TEST_COMMIT_PAUSE_MS";

/// The per-host pause of [`COMMIT_PAUSE_ENV`] while committing.
#[cfg(feature = "test-hooks")]
pub(super) fn commit_pause() -> Option<std::time::Duration> {
    std::env::var(COMMIT_PAUSE_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(std::time::Duration::from_millis)
}

/// No pause while committing: the crash-test hook is off in this build.
#[cfg(not(feature = "test-hooks"))]
pub(super) fn commit_pause() -> Option<std::time::Duration> {
    None
}

/// `snake_case` name of a serde unit enum (`Status::Overdue` → `overdue`).
pub(super) fn enum_text<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// JSON of any serializable value behind one trait object (keeps the commits readable).
pub(super) mod erased {
    pub trait Json {
        fn json(&self) -> Result<String, serde_json::Error>;
    }
    impl<T: serde::Serialize + ?Sized> Json for T {
        fn json(&self) -> Result<String, serde_json::Error> {
            serde_json::to_string(self)
        }
    }
}
