//! The SQLite backend of the state store (the embedded default). The only
//! module that names rusqlite; [`super::store`] is the interface over it and
//! the PostgreSQL backend.
//!
//! Why SQLite: one file, no server, and transactions that survive `kill -9`
//! and power loss. Every sweep is committed in ONE transaction (sweep row,
//! host results, finding history, remediation events, the per-(host, rule)
//! tracks and the full report), so a store holds each sweep completely or not
//! at all. WAL lets `fleetsweep report` read while a scan writes; the busy
//! timeout lets two scanners (shards) share a file.
//!
//! The schema is versioned with `PRAGMA user_version` and migrated in code
//! ([`MIGRATIONS`]); a file from a newer fleetsweep is refused, never
//! downgraded. `PRAGMA application_id` marks the file as ours, so another
//! program's SQLite database is not mistaken for an empty store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};

use fleetsweep_exporters::{HistoryPoint, Report};

use super::status::Track;
use super::store;
use super::store::{
    commit_pause, enum_text, erased, LatestResult, Pruned, Remediation, SweepCommit, SweepRow,
};
use super::StateError;

const NOT_SQLITE: &str = "it is not an SQLite database";
const DAMAGED: &str = "the database is damaged (corrupt)";

/// `PRAGMA application_id` of a fleetsweep state store ("FSWP").
const APPLICATION_ID: i64 = 0x4653_5750;

/// Schema migrations; entry `i` takes `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE sweeps (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        -- the time statuses were derived at (FLEETSWEEP_NOW in tests)
        derived_at TEXT NOT NULL,
        complete INTEGER NOT NULL,
        shard TEXT,
        catalogs TEXT NOT NULL,
        hosts INTEGER NOT NULL,
        open_findings INTEGER NOT NULL,
        summary TEXT NOT NULL,
        report TEXT NOT NULL
    );
    CREATE TABLE host_results (
        sweep INTEGER NOT NULL REFERENCES sweeps(seq),
        host TEXT NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT,
        PRIMARY KEY (sweep, host)
    );
    CREATE TABLE finding_history (
        sweep INTEGER NOT NULL REFERENCES sweeps(seq),
        host TEXT NOT NULL,
        rule TEXT NOT NULL,
        status TEXT NOT NULL,
        state TEXT NOT NULL,
        version TEXT,
        evidence TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        last_seen TEXT,
        remediated_at TEXT,
        PRIMARY KEY (sweep, host, rule)
    );
    CREATE INDEX finding_history_by_host ON finding_history (host, rule);
    CREATE TABLE tracks (
        host TEXT NOT NULL,
        rule TEXT NOT NULL,
        status TEXT NOT NULL,
        track TEXT NOT NULL,
        sweep INTEGER NOT NULL REFERENCES sweeps(seq),
        PRIMARY KEY (host, rule)
    );
    CREATE TABLE verified (
        host TEXT PRIMARY KEY,
        last_verified TEXT NOT NULL,
        sweep INTEGER NOT NULL REFERENCES sweeps(seq)
    );
    CREATE TABLE remediations (
        sweep INTEGER NOT NULL REFERENCES sweeps(seq),
        host TEXT NOT NULL,
        rule TEXT NOT NULL,
        vendor TEXT NOT NULL,
        product TEXT NOT NULL,
        since TEXT NOT NULL,
        remediated_at TEXT NOT NULL,
        seconds INTEGER NOT NULL,
        PRIMARY KEY (sweep, host, rule)
    );",
    // 2: retention. A pruned sweep keeps its row and summary (the burn-down
    // history) but not its report, host results or finding history; `pruned`
    // is when that happened.
    "ALTER TABLE sweeps ADD COLUMN pruned TEXT;",
    // 3: many scanners, one store: which scanner committed each sweep
    // (`--scanner`, default the host name), and the fleet view's lookup of
    // each host's latest result.
    "ALTER TABLE sweeps ADD COLUMN scanner TEXT;
    CREATE INDEX host_results_by_host ON host_results (host, sweep);",
    // 4: each sweep's report in a table of its own, as the row's last (only)
    // column. SQLite keeps a zeroblob unexpanded only at the end of a row;
    // in `sweeps` the columns added since follow `report`, so SQLite built
    // the whole zeroed cell in memory, twice (54 MB at 100,000 hosts) before
    // the report was streamed in. Older sweeps keep theirs in `sweeps.report`.
    "CREATE TABLE sweep_reports (
        sweep INTEGER PRIMARY KEY REFERENCES sweeps(seq),
        report BLOB NOT NULL
    );",
];

/// Schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// An open SQLite state store.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

/// A write transaction over the store (`BEGIN IMMEDIATE`: the reads that the
/// derivation depends on and the writes are one atomic step, even with two
/// scanners on one file).
pub(crate) struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    path: &'a Path,
}

fn sql_err(path: &Path, e: rusqlite::Error) -> StateError {
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        let detail = match f.code {
            ErrorCode::NotADatabase => Some(NOT_SQLITE),
            ErrorCode::DatabaseCorrupt => Some(DAMAGED),
            ErrorCode::DiskFull => {
                return StateError::Sql {
                    store: path.display().to_string(),
                    detail: "the disk is full: nothing of this sweep was committed; free space \
                             on that file system, or point --state elsewhere"
                        .into(),
                }
            }
            ErrorCode::SystemIoFailure => {
                return StateError::Sql {
                    store: path.display().to_string(),
                    detail: format!(
                        "disk I/O error ({e}); check that the disk is not full and the file \
                         system is writable"
                    ),
                }
            }
            _ => None,
        };
        if let Some(detail) = detail {
            tracing::debug!("state store {}: {e}", path.display());
            return StateError::NotAStore {
                store: path.display().to_string(),
                detail: detail.into(),
            };
        }
    }
    StateError::Sql {
        store: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// An existing path that cannot hold a store is refused before SQLite sees
/// it: SQLite would take a 0-byte file for a new database and silently start
/// an empty history over the one that was lost, and would block on a FIFO.
fn refuse_non_store_file(path: &Path) -> Result<(), StateError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // missing: created (open) or reported (open_existing)
    };
    let refuse = |detail: &str| {
        Err(StateError::NotAStore {
            store: path.display().to_string(),
            detail: detail.into(),
        })
    };
    if meta.is_dir() {
        return refuse("it is a directory; name a file inside it, e.g. --state DIR/state.db");
    }
    if !meta.is_file() {
        return refuse("it is not a regular file (a device, FIFO or socket)");
    }
    if meta.len() == 0 {
        return refuse(
            "it is empty (0 bytes), so the history it held is gone; restore it from a backup, \
             or delete it to start a new history on purpose",
        );
    }
    Ok(())
}

fn data_err(path: &Path, what: &str, e: impl std::fmt::Display) -> StateError {
    store::data_err(&path.display().to_string(), what, e)
}

fn ts(path: &Path, s: &str) -> Result<Timestamp, StateError> {
    store::parse_ts(&path.display().to_string(), s)
}

impl SqliteStore {
    /// Opens the store at `path`, creating it (and its directory) when missing.
    pub fn open(path: &Path) -> Result<SqliteStore, StateError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StateError::Sql {
                store: path.display().to_string(),
                detail: format!("cannot create directory {}: {e}", dir.display()),
            })?;
        }
        refuse_non_store_file(path)?;
        let conn = Connection::open(path).map_err(|e| sql_err(path, e))?;
        SqliteStore::init(conn, path)
    }

    /// Opens an existing store (for `fleetsweep report`); a missing file is an error.
    pub fn open_existing(path: &Path) -> Result<SqliteStore, StateError> {
        if std::fs::symlink_metadata(path).is_err() {
            return Err(StateError::Missing {
                store: path.display().to_string(),
            });
        }
        refuse_non_store_file(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| sql_err(path, e))?;
        SqliteStore::init(conn, path)
    }

    fn init(conn: Connection, path: &Path) -> Result<SqliteStore, StateError> {
        let e = |err| sql_err(path, err);
        conn.busy_timeout(Duration::from_secs(30)).map_err(e)?;
        // The first read of the header: a file that is not SQLite fails here.
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(e)?;
        let app_id: i64 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(e)?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(e)?;
        if app_id != APPLICATION_ID && (tables > 0 || version > 0) {
            return Err(StateError::NotAStore {
                store: path.display().to_string(),
                detail: "it is an SQLite database of another program".into(),
            });
        }
        if version > SCHEMA_VERSION {
            return Err(StateError::Newer {
                store: path.display().to_string(),
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        // Reads every page: damage anywhere is found now, not halfway through a commit.
        let check: String = conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(e)?;
        if check != "ok" {
            tracing::debug!(
                "state store {}: PRAGMA quick_check: {check}",
                path.display()
            );
            return Err(StateError::NotAStore {
                store: path.display().to_string(),
                detail: DAMAGED.into(),
            });
        }
        // The check filled the page cache (up to 2 MB) with pages the sweep
        // does not need: the store is opened before the sweep, so that cache
        // would sit under every connection of it. A commit reads what it needs.
        conn.execute_batch("PRAGMA shrink_memory").map_err(e)?;
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(e)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(e)?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate(version)?;
        Ok(store)
    }

    fn migrate(&mut self, from: i64) -> Result<(), StateError> {
        if from >= SCHEMA_VERSION {
            return Ok(());
        }
        let path = self.path.clone();
        let e = |err| sql_err(&path, err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        // Another process may have migrated while we waited for the lock.
        let now: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(e)?;
        let start = usize::try_from(now.max(0)).unwrap_or(usize::MAX);
        for sql in MIGRATIONS.iter().skip(start) {
            tx.execute_batch(sql).map_err(e)?;
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(e)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(e)?;
        tx.commit().map_err(e)
    }

    #[cfg(test)]
    pub(crate) fn conn_for_tests(&self) -> &Connection {
        &self.conn
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A write transaction (`BEGIN IMMEDIATE`: it holds the whole file, so
    /// the hosts it will touch need no lock of their own).
    pub(crate) fn transaction(&mut self) -> Result<Tx<'_>, StateError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sql_err(&self.path, e))?;
        Ok(Tx {
            tx,
            path: &self.path,
        })
    }

    /// Sweeps, oldest first.
    pub fn sweeps(&self) -> Result<Vec<SweepRow>, StateError> {
        let e = |err| sql_err(&self.path, err);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, started, finished, complete, shard, hosts, open_findings, pruned,
                        scanner
                 FROM sweeps ORDER BY seq",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ))
            })
            .map_err(e)?;
        let mut out = Vec::new();
        for row in rows {
            let (id, started, finished, complete, shard, hosts, open, pruned, scanner) =
                row.map_err(e)?;
            out.push(SweepRow {
                id,
                started: ts(&self.path, &started)?,
                finished: ts(&self.path, &finished)?,
                complete,
                shard,
                scanner,
                hosts: usize::try_from(hosts).unwrap_or(0),
                open_findings: usize::try_from(open).unwrap_or(0),
                pruned: pruned.map(|p| ts(&self.path, &p)).transpose()?,
            });
        }
        Ok(out)
    }

    /// The full id of the sweep `id_or_prefix` names (an id or a unique prefix).
    pub fn resolve(&self, id_or_prefix: &str) -> Result<String, StateError> {
        let e = |err| sql_err(&self.path, err);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id FROM sweeps WHERE substr(id, 1, length(?1)) = ?1 ORDER BY seq LIMIT 6",
            )
            .map_err(e)?;
        let ids: Vec<String> = stmt
            .query_map([id_or_prefix], |r| r.get(0))
            .map_err(e)?
            .collect::<Result<_, _>>()
            .map_err(e)?;
        match ids.as_slice() {
            [] => Err(StateError::UnknownSweep {
                store: self.path.display().to_string(),
                id: id_or_prefix.to_string(),
            }),
            [one] => Ok(one.clone()),
            many => Err(StateError::AmbiguousSweep {
                id: id_or_prefix.to_string(),
                candidates: many.join(", "),
            }),
        }
    }

    /// The id of the last committed sweep, if any.
    pub fn latest_id(&self) -> Result<Option<String>, StateError> {
        self.conn
            .query_row("SELECT id FROM sweeps ORDER BY seq DESC LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| sql_err(&self.path, e))
    }

    /// The report of sweep `id` exactly as it was written, read from its
    /// cell as a stream (TEXT in older stores, a BLOB since reports are
    /// streamed in: see [`write_report`]).
    pub fn report(&self, id: &str) -> Result<Report, StateError> {
        // Since schema 4 a report has a row in `sweep_reports`; before, it is
        // in the sweep's own row.
        let (seq, pruned, own_table): (i64, Option<String>, bool) = self
            .conn
            .query_row(
                "SELECT s.seq, s.pruned, r.sweep IS NOT NULL
                 FROM sweeps s LEFT JOIN sweep_reports r ON r.sweep = s.seq
                 WHERE s.id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| sql_err(&self.path, e))?
            .ok_or_else(|| StateError::UnknownSweep {
                store: self.path.display().to_string(),
                id: id.to_string(),
            })?;
        if let Some(when) = pruned {
            return Err(StateError::Pruned {
                id: id.to_string(),
                when,
            });
        }
        let table = if own_table { "sweep_reports" } else { "sweeps" };
        let blob = self
            .conn
            .blob_open(rusqlite::MAIN_DB, table, "report", seq, true)
            .map_err(|e| sql_err(&self.path, e))?;
        serde_json::from_reader(std::io::BufReader::with_capacity(64 * 1024, blob))
            .map_err(|e| data_err(&self.path, "stored report", e))
    }

    /// Retention: drops the report, host results and finding history of every
    /// sweep recorded before `before` (its `derived_at`, the time its statuses
    /// were derived at: its finish, or `FLEETSWEEP_NOW`), except the newest sweep, in one
    /// transaction. Kept: each sweep's row and summary (the burn-down), every
    /// remediation event (the all-time counter and remediation times), and the
    /// per-(host, rule) tracks statuses are derived from, so pruning changes no
    /// status. Freed pages are reused by later sweeps, so the file stops
    /// growing (`sqlite3 DB VACUUM` gives them back to the file system).
    pub fn prune(&mut self, before: Timestamp, now: Timestamp) -> Result<Pruned, StateError> {
        let path = self.path.clone();
        let e = |err| sql_err(&path, err);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(e)?;
        // Times are compared parsed, not as text (fractional seconds make
        // text order differ from time order).
        let candidates: Vec<(i64, String)> = {
            let mut stmt = tx
                .prepare(
                    "SELECT seq, derived_at FROM sweeps
                     WHERE pruned IS NULL
                       AND seq NOT IN (SELECT max(seq) FROM sweeps GROUP BY scanner)",
                )
                .map_err(e)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(e)?;
            rows.collect::<Result<_, _>>().map_err(e)?
        };
        let mut out = Pruned::default();
        let stamp = now.to_string();
        for (seq, recorded) in candidates {
            if ts(&path, &recorded)? >= before {
                continue;
            }
            out.rows += tx
                .execute("DELETE FROM host_results WHERE sweep = ?1", [seq])
                .map_err(e)?;
            out.rows += tx
                .execute("DELETE FROM finding_history WHERE sweep = ?1", [seq])
                .map_err(e)?;
            tx.execute("DELETE FROM sweep_reports WHERE sweep = ?1", [seq])
                .map_err(e)?;
            tx.execute(
                "UPDATE sweeps SET report = '', pruned = ?2 WHERE seq = ?1",
                params![seq, stamp],
            )
            .map_err(e)?;
            out.sweeps += 1;
        }
        tx.commit().map_err(e)?;
        Ok(out)
    }

    /// The sweep holding each host's latest result ([`LatestResult`]), among
    /// the sweeps up to and including `upto` (a full id; `None`: all).
    /// Pruned sweeps hold no host results, so they name no host.
    pub fn latest_results(&self, upto: Option<&str>) -> Result<Vec<LatestResult>, StateError> {
        let e = |err| sql_err(&self.path, err);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.id, h.host FROM host_results h JOIN sweeps s ON s.seq = h.sweep
                 WHERE h.sweep = (SELECT max(x.sweep) FROM host_results x
                                  WHERE x.host = h.host
                                    AND (?1 IS NULL OR x.sweep <= (SELECT seq FROM sweeps WHERE id = ?1)))
                 ORDER BY s.seq, h.host",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([upto], |r| {
                Ok(LatestResult {
                    sweep: r.get(0)?,
                    host: r.get(1)?,
                })
            })
            .map_err(e)?;
        rows.collect::<Result<_, _>>().map_err(e)
    }

    /// Every sweep as a burn-down point, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryPoint>, StateError> {
        let e = |err| sql_err(&self.path, err);
        let mut stmt = self
            .conn
            .prepare("SELECT id, finished, complete, summary FROM sweeps ORDER BY seq")
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })
            .map_err(e)?;
        let mut out = Vec::new();
        let name = self.path.display().to_string();
        for row in rows {
            let (sweep_id, finished, complete, summary) = row.map_err(e)?;
            out.push(store::history_point(
                &name, sweep_id, &finished, complete, &summary,
            )?);
        }
        Ok(out)
    }

    /// All-time count of remediation events per (vendor, product), for
    /// `fleetsweep_remediations_total`.
    pub fn remediation_totals(&self) -> Result<BTreeMap<(String, String), u64>, StateError> {
        let e = |err| sql_err(&self.path, err);
        let mut stmt = self
            .conn
            .prepare("SELECT vendor, product, count(*) FROM remediations GROUP BY vendor, product")
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(e)?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (v, p, n) = row.map_err(e)?;
            out.insert((v, p), u64::try_from(n).unwrap_or(0));
        }
        Ok(out)
    }

    /// Remediation events, oldest first (with their remediation time).
    pub fn remediations(&self) -> Result<Vec<Remediation>, StateError> {
        let e = |err| sql_err(&self.path, err);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT host, rule, vendor, product, since, remediated_at FROM remediations
                 ORDER BY sweep, host, rule",
            )
            .map_err(e)?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })
            .map_err(e)?;
        let mut out = Vec::new();
        for row in rows {
            let (host, rule, vendor, product, since, at) = row.map_err(e)?;
            out.push(Remediation {
                host,
                rule,
                vendor,
                product,
                since: ts(&self.path, &since)?,
                remediated_at: ts(&self.path, &at)?,
            });
        }
        Ok(out)
    }
}

impl Tx<'_> {
    /// What the store remembers of `host`, by rule.
    pub(crate) fn tracks(&self, host: &str) -> Result<BTreeMap<String, Track>, StateError> {
        let e = |err| sql_err(self.path, err);
        let mut stmt = self
            .tx
            .prepare_cached("SELECT rule, track FROM tracks WHERE host = ?1")
            .map_err(e)?;
        let rows = stmt
            .query_map([host], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(e)?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (rule, json) = row.map_err(e)?;
            let track = store::decode_track(&self.path.display().to_string(), host, &rule, &json)?;
            out.insert(rule, track);
        }
        Ok(out)
    }

    /// When `host` was last scanned completely.
    pub(crate) fn last_verified(&self, host: &str) -> Result<Option<Timestamp>, StateError> {
        let s: Option<String> = self
            .tx
            .prepare_cached("SELECT last_verified FROM verified WHERE host = ?1")
            .and_then(|mut stmt| stmt.query_row([host], |r| r.get(0)).optional())
            .map_err(|e| sql_err(self.path, e))?;
        s.map(|s| ts(self.path, &s)).transpose()
    }

    /// Writes the sweep and everything it changed, then commits: all or nothing.
    ///
    /// Nothing here grows with the fleet but SQLite's own pages (bounded by
    /// its cache; a large transaction spills to the WAL file): the report's
    /// JSON is streamed into its row ([`write_report`]), and each host's rows
    /// are written from the report as they are reached.
    pub(crate) fn commit(
        self,
        report: &Report,
        c: &SweepCommit,
        scanner: Option<&str>,
    ) -> Result<(), StateError> {
        let path = self.path;
        let e = |err| sql_err(path, err);
        let json =
            |what: &str, v: &dyn erased::Json| v.json().map_err(|err| data_err(path, what, err));
        let pause = commit_pause();
        let now = c.now.unwrap_or(report.sweep.finished);
        let now_text = now.to_string();
        let open = report
            .hosts
            .iter()
            .map(|h| h.findings.iter().filter(|f| f.status.is_open()).count())
            .sum::<usize>();
        let report_len = json_len(report).map_err(|err| data_err(path, "report", err))?;
        let tx = self.tx;
        tx.execute(
            "INSERT INTO sweeps (id, started, finished, derived_at, complete, shard, catalogs,
                                 hosts, open_findings, summary, report, scanner)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, '', ?11)",
            params![
                report.sweep.id,
                report.sweep.started.to_string(),
                report.sweep.finished.to_string(),
                now_text,
                report.sweep.complete,
                report.sweep.shard,
                json("catalogs", &report.sweep.catalogs)?,
                i64::try_from(report.hosts.len()).unwrap_or(i64::MAX),
                i64::try_from(open).unwrap_or(i64::MAX),
                json("summary", &report.summary)?,
                scanner,
            ],
        )
        .map_err(e)?;
        let seq = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO sweep_reports (sweep, report) VALUES (?1, zeroblob(?2))",
            params![seq, i64::try_from(report_len).unwrap_or(i64::MAX)],
        )
        .map_err(e)?;
        write_report(&tx, seq, report, report_len, path)?;
        {
            let mut host_stmt = tx
                .prepare_cached(
                    "INSERT INTO host_results (sweep, host, outcome, error) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(e)?;
            let mut finding_stmt = tx
                .prepare_cached(
                    "INSERT INTO finding_history (sweep, host, rule, status, state, version,
                        evidence, first_seen, last_seen, remediated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(e)?;
            let mut verified_stmt = tx
                .prepare_cached(
                    "INSERT INTO verified (host, last_verified, sweep) VALUES (?1, ?2, ?3)
                     ON CONFLICT (host) DO UPDATE SET
                        last_verified = excluded.last_verified, sweep = excluded.sweep",
                )
                .map_err(e)?;
            for h in &report.hosts {
                if let Some(p) = pause {
                    std::thread::sleep(p);
                }
                host_stmt
                    .execute(params![seq, h.name.as_str(), h.outcome.as_str(), h.error])
                    .map_err(e)?;
                for f in &h.findings {
                    finding_stmt
                        .execute(params![
                            seq,
                            h.name.as_str(),
                            f.rule,
                            enum_text(&f.status),
                            enum_text(&f.state),
                            f.version,
                            json("evidence", &f.evidence)?,
                            f.first_seen.to_string(),
                            f.last_seen.map(|t| t.to_string()),
                            f.remediated_at.map(|t| t.to_string()),
                        ])
                        .map_err(e)?;
                }
                if super::verified(&h) {
                    verified_stmt
                        .execute(params![h.name.as_str(), now_text, seq])
                        .map_err(e)?;
                }
            }
            let mut track_stmt = tx
                .prepare_cached(
                    "INSERT INTO tracks (host, rule, status, track, sweep) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (host, rule) DO UPDATE SET
                        status = excluded.status, track = excluded.track, sweep = excluded.sweep",
                )
                .map_err(e)?;
            let mut tracks = c.tracks(report);
            while let Some(written) = tracks.next_with(|w, t| {
                track_stmt
                    .execute(params![
                        w.host,
                        w.rule,
                        enum_text(&w.status),
                        json("track", &t)?,
                        seq
                    ])
                    .map_err(e)
            }) {
                written?;
            }
            let mut rem_stmt = tx
                .prepare_cached(
                    "INSERT INTO remediations (sweep, host, rule, vendor, product, since,
                        remediated_at, seconds)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(e)?;
            for r in &c.remediations {
                let seconds = r.remediated_at.as_second() - r.since.as_second();
                rem_stmt
                    .execute(params![
                        seq,
                        r.host,
                        r.rule,
                        r.vendor,
                        r.product,
                        r.since.to_string(),
                        r.remediated_at.to_string(),
                        seconds
                    ])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }
}

/// Bytes of `report`'s JSON, counted without holding it.
fn json_len(report: &Report) -> Result<usize, serde_json::Error> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    serde_json::to_writer(&mut n, report)?;
    Ok(n.0)
}

/// Streams `report`'s JSON (`len` bytes, [`json_len`]) into the zeroed
/// `sweep_reports` cell of sweep `seq`: a 100,000-host report is some 45 MB of
/// JSON, which is never held as one string. The cell is a BLOB of UTF-8
/// JSON (stores written before hold TEXT; [`SqliteStore::report`] reads both, and
/// `CAST(report AS TEXT)` shows either in the sqlite3 shell).
fn write_report(
    tx: &rusqlite::Transaction<'_>,
    seq: i64,
    report: &Report,
    len: usize,
    path: &Path,
) -> Result<(), StateError> {
    let blob = tx
        .blob_open(rusqlite::MAIN_DB, "sweep_reports", "report", seq, false)
        .map_err(|e| sql_err(path, e))?;
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, blob);
    serde_json::to_writer(&mut out, report).map_err(|e| data_err(path, "report", e))?;
    let mut blob = out
        .into_inner()
        .map_err(|e| data_err(path, "report", e.into_error()))?;
    // The second serialization must fill exactly what the first counted
    // (more would not fit: the write above fails).
    let written =
        std::io::Seek::stream_position(&mut blob).map_err(|e| data_err(path, "report", e))?;
    if usize::try_from(written).ok() != Some(len) {
        return Err(data_err(
            path,
            "report",
            format!("{len} bytes counted, {written} written"),
        ));
    }
    blob.close().map_err(|e| sql_err(path, e))
}
