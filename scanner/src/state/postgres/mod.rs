//! The PostgreSQL backend of the state store: one database that many
//! scanners (shards, sites) commit their sweeps to, so a host's history is
//! its own whichever scanner saw it. The only module that names
//! tokio-postgres. Semantics are SQLite's ([`super::sqlite`]): the same
//! tables, the same one-transaction commit; docs/state.md explains the
//! guarantees.
//!
//! **Concurrency.** A sweep's derivation reads each host's tracks, then
//! writes new ones; two scanners doing that for the same host at once would
//! both see "never seen" and both report `new`. So a sweep's transaction
//! first takes a transaction-scoped advisory lock on every host it covers
//! (hashed into [`LOCK_BUCKETS`] buckets, so a 100,000-host sweep takes at
//! most that many locks and fits PostgreSQL's default lock table), in
//! ascending bucket order, which makes deadlocks between scanners
//! impossible; only then does it read. Sweeps of disjoint shards mostly
//! commit side by side; sweeps sharing hosts commit one after the other, the
//! second deriving from the first's result. READ COMMITTED is enough: every
//! read that matters happens after the locks are held. A scanner killed
//! mid-commit loses its connection, and the server rolls its transaction
//! back and releases its locks.
//!
//! **Migrations.** The schema version is a row of `fleetsweep_schema`;
//! migrating takes a transaction-scoped advisory lock first, so two
//! scanners starting at once migrate once. A database from a newer
//! fleetsweep is refused, never downgraded.
//!
//! **Blocking.** The store's methods are blocking, like SQLite's: they run
//! on tokio's blocking pool (or under `block_in_place`) and drive the async
//! client on the runtime that is already there; without a runtime (unit
//! tests, tools) the store brings its own.

mod target;
mod tls;

pub use target::{is_url, PgTarget};

use std::collections::BTreeMap;
use std::future::Future;

use jiff::Timestamp;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

use fleetsweep_exporters::{HistoryPoint, Report};

use super::status::Track;
use super::store::{
    commit_pause, data_err, decode_track, enum_text, erased, history_point, parse_ts as ts,
    LatestResult, Pruned, Remediation, SweepCommit, SweepRow,
};
use super::StateError;
use target::{chain, SslMode};

/// Advisory-lock class (first key) of the schema migration and retention
/// locks ("FSWP").
const LOCK_CLASS_SCHEMA: i32 = 0x4653_5750;
/// Advisory-lock class of the per-host locks ("FSWH").
const LOCK_CLASS_HOST: i32 = 0x4653_5748;
/// Second keys in [`LOCK_CLASS_SCHEMA`].
const LOCK_MIGRATE: i32 = 1;
const LOCK_PRUNE: i32 = 2;
/// Hosts hash into this many lock buckets (see the module docs).
const LOCK_BUCKETS: u32 = 1024;
/// Rows sent per INSERT when a sweep is committed.
const CHUNK: usize = 1000;

/// Schema migrations; entry `i` takes the version from `i` to `i + 1`.
/// The tables are SQLite's (times as RFC 3339 text, JSON as text, the
/// report as the bytes of its JSON).
const MIGRATIONS: &[&str] = &[
    // 1: the first schema, with everything SQLite's schema 3 has.
    "CREATE TABLE sweeps (
        seq BIGSERIAL PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        started TEXT NOT NULL,
        finished TEXT NOT NULL,
        derived_at TEXT NOT NULL,
        complete BOOLEAN NOT NULL,
        shard TEXT,
        scanner TEXT,
        catalogs TEXT NOT NULL,
        hosts BIGINT NOT NULL,
        open_findings BIGINT NOT NULL,
        summary TEXT NOT NULL,
        report BYTEA NOT NULL,
        pruned TEXT,
        committed_at TIMESTAMPTZ NOT NULL DEFAULT now()
    );
    CREATE TABLE host_results (
        sweep BIGINT NOT NULL REFERENCES sweeps(seq),
        host TEXT NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT,
        PRIMARY KEY (sweep, host)
    );
    CREATE INDEX host_results_by_host ON host_results (host, sweep);
    CREATE TABLE finding_history (
        sweep BIGINT NOT NULL REFERENCES sweeps(seq),
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
        sweep BIGINT NOT NULL REFERENCES sweeps(seq),
        PRIMARY KEY (host, rule)
    );
    CREATE TABLE verified (
        host TEXT PRIMARY KEY,
        last_verified TEXT NOT NULL,
        sweep BIGINT NOT NULL REFERENCES sweeps(seq)
    );
    CREATE TABLE remediations (
        sweep BIGINT NOT NULL REFERENCES sweeps(seq),
        host TEXT NOT NULL,
        rule TEXT NOT NULL,
        vendor TEXT NOT NULL,
        product TEXT NOT NULL,
        since TEXT NOT NULL,
        remediated_at TEXT NOT NULL,
        seconds BIGINT NOT NULL,
        PRIMARY KEY (sweep, host, rule)
    );",
];

/// Schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Runs the async client from blocking code (see the module docs).
enum Driver {
    /// The runtime this process already runs (scan, serve, report).
    Handle(tokio::runtime::Handle),
    /// No runtime around: one of our own, for this store only.
    Own(tokio::runtime::Runtime),
}

impl Driver {
    fn new() -> Result<Driver, std::io::Error> {
        match tokio::runtime::Handle::try_current() {
            Ok(h) => Ok(Driver::Handle(h)),
            Err(_) => Ok(Driver::Own(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
            )),
        }
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        match self {
            Driver::Handle(h) => h.block_on(f),
            Driver::Own(rt) => rt.block_on(f),
        }
    }

    fn spawn(&self, f: impl Future<Output = ()> + Send + 'static) {
        match self {
            Driver::Handle(h) => drop(h.spawn(f)),
            Driver::Own(rt) => drop(rt.spawn(f)),
        }
    }
}

/// An open PostgreSQL state store (one connection).
pub struct PgStore {
    client: Client,
    driver: Driver,
    /// The URL without its password, for messages.
    name: String,
    /// Kept to connect again when the connection is lost between sweeps
    /// (a server restart, a terminated session): a daemon's next sweep
    /// must not fail for ever because of one lost connection.
    target: PgTarget,
}

/// A sweep's transaction, holding the locks of its hosts and what the store
/// remembers of them (read once, after the locks).
pub(crate) struct Tx<'a> {
    tx: tokio_postgres::Transaction<'a>,
    driver: &'a Driver,
    name: &'a str,
    /// host → rule → track JSON.
    tracks: BTreeMap<String, BTreeMap<String, String>>,
    /// host → last_verified.
    verified: BTreeMap<String, String>,
}

fn sql_err(name: &str, e: &tokio_postgres::Error) -> StateError {
    StateError::Sql {
        store: name.to_string(),
        detail: describe(e),
    }
}

/// What went wrong, in the server's words where it has them.
fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{}: {}", db.severity(), db.message());
            if let Some(hint) = db.hint() {
                s.push_str(&format!(" ({hint})"));
            }
            s
        }
        None => chain(e),
    }
}

/// PostgreSQL text cannot hold NUL; host output may. It is replaced, as
/// elsewhere in reports, by U+FFFD.
fn text(s: &str) -> String {
    s.replace('\0', "\u{FFFD}")
}

fn opt_text(s: Option<&str>) -> Option<String> {
    s.map(text)
}

/// The lock bucket of `host` (FNV-1a: the same in every scanner, every build).
fn bucket(host: &str) -> i32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text(host).bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i32::try_from(h % u64::from(LOCK_BUCKETS)).unwrap_or(0)
}

/// Why a connection failed, with what to do about it.
fn connect_error(name: &str, e: &tokio_postgres::Error) -> StateError {
    let mut detail = describe(e);
    let hint = match e.code() {
        Some(c) if *c == SqlState::INVALID_PASSWORD => Some(
            "check the password (in the URL, PGPASSWORD, or PGPASSFILE/~/.pgpass) and the user",
        ),
        Some(c) if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
            Some("the server's pg_hba.conf does not let this user in from here")
        }
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => {
            Some("create the database first (createdb DB) and grant the user access to it")
        }
        _ if detail.contains("Connection refused") => Some(
            "is PostgreSQL running and listening on that host and port (listen_addresses, port)?",
        ),
        _ if detail.contains("not valid for name") => Some(
            "connect by a name the certificate holds, or check only its CA with sslmode=verify-ca",
        ),
        _ if detail.contains("certificate") || detail.contains("TLS") => Some(
            "check sslmode and that sslrootcert names the CA that signed the server's certificate",
        ),
        _ if detail.contains("timeout") || detail.contains("timed out") => {
            Some("the server did not answer in time (connect_timeout=SECONDS in the URL)")
        }
        _ => None,
    };
    if let Some(h) = hint {
        detail.push_str("; ");
        detail.push_str(h);
    }
    StateError::Connect {
        store: name.to_string(),
        detail,
    }
}

impl PgStore {
    /// Connects to `target`, creates or migrates fleetsweep's tables (under
    /// an advisory lock), and refuses a database from a newer fleetsweep or
    /// one holding another program's `sweeps` table.
    pub fn connect(target: &PgTarget) -> Result<PgStore, StateError> {
        let name = target.to_string();
        let driver = Driver::new().map_err(|e| StateError::Connect {
            store: name.clone(),
            detail: format!("cannot start the async runtime: {e}"),
        })?;
        let mut config = target.config.clone();
        if config.get_password().is_none() {
            if let Some(p) = target.password() {
                config.password(p);
            }
        }
        let client = match target.ssl {
            SslMode::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                let (client, conn) = driver
                    .block_on(config.connect(NoTls))
                    .map_err(|e| connect_error(&name, &e))?;
                driver.spawn(watch(conn, name.clone()));
                client
            }
            mode => {
                config.ssl_mode(if mode == SslMode::Prefer {
                    tokio_postgres::config::SslMode::Prefer
                } else {
                    tokio_postgres::config::SslMode::Require
                });
                let tls_config = tls::client_config(mode, &target.root_cert).map_err(|detail| {
                    StateError::Connect {
                        store: name.clone(),
                        detail,
                    }
                })?;
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(tls_config);
                let (client, conn) = driver
                    .block_on(config.connect(tls))
                    .map_err(|e| connect_error(&name, &e))?;
                driver.spawn(watch(conn, name.clone()));
                client
            }
        };
        let mut store = PgStore {
            client,
            driver,
            name,
            target: target.clone(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Connects again when the connection was lost since the last use.
    fn reconnect_if_lost(&mut self) -> Result<(), StateError> {
        if self.client.is_closed() {
            tracing::warn!(
                "state store {}: the connection was lost; connecting again",
                self.name
            );
            *self = PgStore::connect(&self.target)?;
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn migrate(&mut self) -> Result<(), StateError> {
        let PgStore {
            client,
            driver,
            name,
            ..
        } = self;
        let name: &str = name;
        let e = |err: tokio_postgres::Error| sql_err(name, &err);
        driver.block_on(async {
            // A lost session must not hold a transaction (and its host
            // locks) for ever; the derivation between reads and the commit
            // takes seconds even for 100,000 hosts.
            client
                .batch_execute("SET idle_in_transaction_session_timeout = '10min'")
                .await
                .map_err(e)?;
            let tx = client.transaction().await.map_err(e)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[&LOCK_CLASS_SCHEMA, &LOCK_MIGRATE],
            )
            .await
            .map_err(e)?;
            let ours: bool = tx
                .query_one("SELECT to_regclass('fleetsweep_schema') IS NOT NULL", &[])
                .await
                .map_err(e)?
                .get(0);
            let version: i64 = if ours {
                tx.query_opt("SELECT version FROM fleetsweep_schema", &[])
                    .await
                    .map_err(e)?
                    .map_or(0, |r| r.get::<_, i64>(0))
            } else {
                let foreign: bool = tx
                    .query_one("SELECT to_regclass('sweeps') IS NOT NULL", &[])
                    .await
                    .map_err(e)?
                    .get(0);
                if foreign {
                    return Err(StateError::NotAStore {
                        store: name.to_string(),
                        detail: "the database holds a `sweeps` table fleetsweep did not create; \
                                 give fleetsweep a database of its own"
                            .into(),
                    });
                }
                tx.batch_execute("CREATE TABLE fleetsweep_schema (version BIGINT NOT NULL)")
                    .await
                    .map_err(e)?;
                tx.execute("INSERT INTO fleetsweep_schema (version) VALUES (0)", &[])
                    .await
                    .map_err(e)?;
                0
            };
            if version > SCHEMA_VERSION {
                return Err(StateError::Newer {
                    store: name.to_string(),
                    found: version,
                    known: SCHEMA_VERSION,
                });
            }
            let start = usize::try_from(version.max(0)).unwrap_or(usize::MAX);
            for sql in MIGRATIONS.iter().skip(start) {
                tx.batch_execute(sql).await.map_err(e)?;
            }
            if start < MIGRATIONS.len() {
                tx.execute(
                    "UPDATE fleetsweep_schema SET version = $1",
                    &[&SCHEMA_VERSION],
                )
                .await
                .map_err(e)?;
            }
            tx.commit().await.map_err(e)
        })
    }

    /// Runs `query` with `params` and returns its rows.
    fn query(&self, query: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>, StateError> {
        self.driver
            .block_on(self.client.query(query, params))
            .map_err(|e| sql_err(&self.name, &e))
    }

    /// A sweep's transaction: locks `hosts` (see the module docs), then
    /// reads their tracks and last-verified times.
    pub(crate) fn transaction(&mut self, hosts: &[&str]) -> Result<Tx<'_>, StateError> {
        self.reconnect_if_lost()?;
        let PgStore {
            client,
            driver,
            name,
            ..
        } = self;
        let name: &str = name;
        let e = |err: tokio_postgres::Error| sql_err(name, &err);
        let mut buckets: Vec<i32> = hosts.iter().map(|h| bucket(h)).collect();
        buckets.sort_unstable();
        buckets.dedup();
        let names: Vec<String> = hosts.iter().map(|h| text(h)).collect();
        let (tx, tracks, verified) = driver.block_on(async {
            let tx = client.transaction().await.map_err(e)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, b)
                 FROM unnest($2::int4[]) WITH ORDINALITY AS u(b, i) ORDER BY i",
                &[&LOCK_CLASS_HOST, &buckets],
            )
            .await
            .map_err(e)?;
            let mut tracks: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
            for row in tx
                .query(
                    "SELECT host, rule, track FROM tracks WHERE host = ANY($1)",
                    &[&names],
                )
                .await
                .map_err(e)?
            {
                tracks
                    .entry(row.get(0))
                    .or_default()
                    .insert(row.get(1), row.get(2));
            }
            let verified: BTreeMap<String, String> = tx
                .query(
                    "SELECT host, last_verified FROM verified WHERE host = ANY($1)",
                    &[&names],
                )
                .await
                .map_err(e)?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            Ok::<_, StateError>((tx, tracks, verified))
        })?;
        Ok(Tx {
            tx,
            driver,
            name,
            tracks,
            verified,
        })
    }

    /// Sweeps, oldest first.
    pub fn sweeps(&self) -> Result<Vec<SweepRow>, StateError> {
        let rows = self.query(
            "SELECT id, started, finished, complete, shard, hosts, open_findings, pruned, scanner
             FROM sweeps ORDER BY seq",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                Ok(SweepRow {
                    id: r.get(0),
                    started: ts(&self.name, r.get(1))?,
                    finished: ts(&self.name, r.get(2))?,
                    complete: r.get(3),
                    shard: r.get(4),
                    hosts: usize::try_from(r.get::<_, i64>(5)).unwrap_or(0),
                    open_findings: usize::try_from(r.get::<_, i64>(6)).unwrap_or(0),
                    pruned: r
                        .get::<_, Option<&str>>(7)
                        .map(|p| ts(&self.name, p))
                        .transpose()?,
                    scanner: r.get(8),
                })
            })
            .collect()
    }

    /// The full id of the sweep `id_or_prefix` names (an id or a unique prefix).
    pub fn resolve(&self, id_or_prefix: &str) -> Result<String, StateError> {
        let ids: Vec<String> = self
            .query(
                "SELECT id FROM sweeps WHERE left(id, length($1)) = $1 ORDER BY seq LIMIT 6",
                &[&id_or_prefix],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        match ids.as_slice() {
            [] => Err(StateError::UnknownSweep {
                store: self.name.clone(),
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
        Ok(self
            .query("SELECT id FROM sweeps ORDER BY seq DESC LIMIT 1", &[])?
            .first()
            .map(|r| r.get(0)))
    }

    /// The report of sweep `id` exactly as it was written.
    pub fn report(&self, id: &str) -> Result<Report, StateError> {
        let rows = self.query("SELECT pruned, report FROM sweeps WHERE id = $1", &[&id])?;
        let row = rows.first().ok_or_else(|| StateError::UnknownSweep {
            store: self.name.clone(),
            id: id.to_string(),
        })?;
        if let Some(when) = row.get::<_, Option<String>>(0) {
            return Err(StateError::Pruned {
                id: id.to_string(),
                when,
            });
        }
        serde_json::from_slice(row.get::<_, &[u8]>(1))
            .map_err(|e| data_err(&self.name, "stored report", e))
    }

    /// Retention ([`super::store::Store::prune`]); one scanner prunes at a
    /// time (an advisory lock), each sweep once.
    pub fn prune(&mut self, before: Timestamp, now: Timestamp) -> Result<Pruned, StateError> {
        self.reconnect_if_lost()?;
        let PgStore {
            client,
            driver,
            name,
            ..
        } = self;
        let name: &str = name;
        let e = |err: tokio_postgres::Error| sql_err(name, &err);
        let stamp = now.to_string();
        driver.block_on(async {
            let tx = client.transaction().await.map_err(e)?;
            tx.execute(
                "SELECT pg_advisory_xact_lock($1, $2)",
                &[&LOCK_CLASS_SCHEMA, &LOCK_PRUNE],
            )
            .await
            .map_err(e)?;
            let candidates = tx
                .query(
                    "SELECT seq, derived_at FROM sweeps
                     WHERE pruned IS NULL
                       AND seq NOT IN (SELECT max(seq) FROM sweeps GROUP BY scanner)",
                    &[],
                )
                .await
                .map_err(e)?;
            let mut out = Pruned::default();
            for row in candidates {
                let seq: i64 = row.get(0);
                if ts(name, row.get(1))? >= before {
                    continue;
                }
                for table in ["host_results", "finding_history"] {
                    let n = tx
                        .execute(&format!("DELETE FROM {table} WHERE sweep = $1"), &[&seq])
                        .await
                        .map_err(e)?;
                    out.rows += usize::try_from(n).unwrap_or(0);
                }
                tx.execute(
                    "UPDATE sweeps SET report = ''::bytea, pruned = $2 WHERE seq = $1",
                    &[&seq, &stamp],
                )
                .await
                .map_err(e)?;
                out.sweeps += 1;
            }
            tx.commit().await.map_err(e)?;
            Ok(out)
        })
    }

    /// The sweep holding each host's latest result, up to `upto`.
    pub fn latest_results(&self, upto: Option<&str>) -> Result<Vec<LatestResult>, StateError> {
        let rows = self.query(
            "SELECT DISTINCT ON (h.host) s.id, h.host, h.sweep
             FROM host_results h JOIN sweeps s ON s.seq = h.sweep
             WHERE $1::text IS NULL OR h.sweep <= (SELECT seq FROM sweeps WHERE id = $1)
             ORDER BY h.host, h.sweep DESC",
            &[&upto],
        )?;
        let mut out: Vec<(i64, LatestResult)> = rows
            .iter()
            .map(|r| {
                (
                    r.get(2),
                    LatestResult {
                        sweep: r.get(0),
                        host: r.get(1),
                    },
                )
            })
            .collect();
        out.sort_by(|a, b| (a.0, &a.1.host).cmp(&(b.0, &b.1.host)));
        Ok(out.into_iter().map(|(_, r)| r).collect())
    }

    /// Every sweep as a burn-down point, oldest first.
    pub fn history(&self) -> Result<Vec<HistoryPoint>, StateError> {
        let rows = self.query(
            "SELECT id, finished, complete, summary FROM sweeps ORDER BY seq",
            &[],
        )?;
        rows.iter()
            .map(|r| history_point(&self.name, r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect()
    }

    /// All-time count of remediation events per (vendor, product).
    pub fn remediation_totals(&self) -> Result<BTreeMap<(String, String), u64>, StateError> {
        Ok(self
            .query(
                "SELECT vendor, product, count(*) FROM remediations GROUP BY vendor, product",
                &[],
            )?
            .iter()
            .map(|r| {
                (
                    (r.get(0), r.get(1)),
                    u64::try_from(r.get::<_, i64>(2)).unwrap_or(0),
                )
            })
            .collect())
    }

    /// Remediation events, oldest first.
    pub fn remediations(&self) -> Result<Vec<Remediation>, StateError> {
        self.query(
            "SELECT host, rule, vendor, product, since, remediated_at FROM remediations
             ORDER BY sweep, host, rule",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(Remediation {
                host: r.get(0),
                rule: r.get(1),
                vendor: r.get(2),
                product: r.get(3),
                since: ts(&self.name, r.get(4))?,
                remediated_at: ts(&self.name, r.get(5))?,
            })
        })
        .collect()
    }
}

/// Drives the connection; its end (the server went away) is logged, and
/// the next query reports it.
async fn watch<S, T>(conn: tokio_postgres::Connection<S, T>, name: String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    if let Err(e) = conn.await {
        tracing::debug!("state store {name}: connection ended: {}", chain(&e));
    }
}

/// Rows of one kind, gathered column by column for one `unnest` INSERT.
#[derive(Default)]
struct Columns {
    hosts: Vec<String>,
    outcomes: Vec<String>,
    errors: Vec<Option<String>>,
    verified: Vec<String>,
    f_host: Vec<String>,
    f_rule: Vec<String>,
    f_status: Vec<String>,
    f_state: Vec<String>,
    f_version: Vec<Option<String>>,
    f_evidence: Vec<String>,
    f_first: Vec<String>,
    f_last: Vec<Option<String>>,
    f_remediated: Vec<Option<String>>,
}

impl Tx<'_> {
    /// What the store remembers of `host`, by rule.
    pub(crate) fn tracks(&self, host: &str) -> Result<BTreeMap<String, Track>, StateError> {
        let mut out = BTreeMap::new();
        if let Some(rules) = self.tracks.get(&text(host)) {
            for (rule, json) in rules {
                out.insert(rule.clone(), decode_track(self.name, host, rule, json)?);
            }
        }
        Ok(out)
    }

    /// When `host` was last scanned completely.
    pub(crate) fn last_verified(&self, host: &str) -> Result<Option<Timestamp>, StateError> {
        self.verified
            .get(&text(host))
            .map(|s| ts(self.name, s))
            .transpose()
    }

    /// Writes the sweep and everything it changed, then commits: all or
    /// nothing. Rows go in `unnest` batches of [`CHUNK`].
    pub(crate) fn commit(
        self,
        report: &Report,
        c: &SweepCommit,
        scanner: Option<&str>,
    ) -> Result<(), StateError> {
        let Tx {
            tx, driver, name, ..
        } = self;
        let e = |err: tokio_postgres::Error| sql_err(name, &err);
        let json =
            |what: &str, v: &dyn erased::Json| v.json().map_err(|err| data_err(name, what, err));
        let pause = commit_pause();
        let now = c.now.unwrap_or(report.sweep.finished);
        let now_text = now.to_string();
        let open = report
            .hosts
            .iter()
            .map(|h| h.findings.iter().filter(|f| f.status.is_open()).count())
            .sum::<usize>();
        let body = serde_json::to_vec(report).map_err(|err| data_err(name, "report", err))?;
        let catalogs = json("catalogs", &report.sweep.catalogs)?;
        let summary = json("summary", &report.summary)?;
        let hosts = i64::try_from(report.hosts.len()).unwrap_or(i64::MAX);
        let open = i64::try_from(open).unwrap_or(i64::MAX);
        let mut cols = Columns::default();
        driver.block_on(async {
            let seq: i64 = tx
                .query_one(
                    "INSERT INTO sweeps (id, started, finished, derived_at, complete, shard,
                        scanner, catalogs, hosts, open_findings, summary, report)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                     RETURNING seq",
                    &[
                        &text(&report.sweep.id),
                        &report.sweep.started.to_string(),
                        &report.sweep.finished.to_string(),
                        &now_text,
                        &report.sweep.complete,
                        &opt_text(report.sweep.shard.as_deref()),
                        &opt_text(scanner),
                        &catalogs,
                        &hosts,
                        &open,
                        &summary,
                        &body,
                    ],
                )
                .await
                .map_err(e)?
                .get(0);
            for (i, h) in report.hosts.iter().enumerate() {
                if let Some(p) = pause {
                    tokio::time::sleep(p).await;
                }
                cols.hosts.push(text(&h.name));
                cols.outcomes.push(h.outcome.as_str().to_string());
                cols.errors.push(opt_text(h.error.as_deref()));
                for f in &h.findings {
                    cols.f_host.push(text(&h.name));
                    cols.f_rule.push(text(&f.rule));
                    cols.f_status.push(enum_text(&f.status));
                    cols.f_state.push(enum_text(&f.state));
                    cols.f_version.push(opt_text(f.version.as_deref()));
                    cols.f_evidence.push(json("evidence", &f.evidence)?);
                    cols.f_first.push(f.first_seen.to_string());
                    cols.f_last.push(f.last_seen.map(|t| t.to_string()));
                    cols.f_remediated
                        .push(f.remediated_at.map(|t| t.to_string()));
                }
                if super::verified(&h) {
                    cols.verified.push(text(&h.name));
                }
                if cols.hosts.len() >= CHUNK || i + 1 == report.hosts.len() {
                    flush(&tx, seq, &now_text, &mut cols).await.map_err(e)?;
                }
            }
            let mut tracks = c.tracks(report);
            loop {
                let mut host = Vec::new();
                let mut rule = Vec::new();
                let mut status = Vec::new();
                let mut track = Vec::new();
                while host.len() < CHUNK {
                    let Some(row) = tracks.next_with(|w, t| {
                        json("track", &t)
                            .map(|t| (text(&w.host), text(&w.rule), enum_text(&w.status), t))
                    }) else {
                        break;
                    };
                    let (h, r, s, t) = row?;
                    host.push(h);
                    rule.push(r);
                    status.push(s);
                    track.push(t);
                }
                if host.is_empty() {
                    break;
                }
                tx.execute(
                    "INSERT INTO tracks (host, rule, status, track, sweep)
                     SELECT h, r, s, t, $1
                     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[]) AS u(h, r, s, t)
                     ON CONFLICT (host, rule) DO UPDATE SET
                        status = excluded.status, track = excluded.track, sweep = excluded.sweep",
                    &[&seq, &host, &rule, &status, &track],
                )
                .await
                .map_err(e)?;
            }
            for chunk in c.remediations.chunks(CHUNK) {
                let host: Vec<String> = chunk.iter().map(|r| text(&r.host)).collect();
                let rule: Vec<String> = chunk.iter().map(|r| text(&r.rule)).collect();
                let vendor: Vec<String> = chunk.iter().map(|r| text(&r.vendor)).collect();
                let product: Vec<String> = chunk.iter().map(|r| text(&r.product)).collect();
                let since: Vec<String> = chunk.iter().map(|r| r.since.to_string()).collect();
                let at: Vec<String> = chunk.iter().map(|r| r.remediated_at.to_string()).collect();
                let seconds: Vec<i64> = chunk
                    .iter()
                    .map(|r| r.remediated_at.as_second() - r.since.as_second())
                    .collect();
                tx.execute(
                    "INSERT INTO remediations (sweep, host, rule, vendor, product, since,
                        remediated_at, seconds)
                     SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[],
                        $6::text[], $7::text[], $8::int8[])",
                    &[&seq, &host, &rule, &vendor, &product, &since, &at, &seconds],
                )
                .await
                .map_err(e)?;
            }
            tx.commit().await.map_err(e)
        })
    }
}

/// Sends the gathered host results, finding history and verified hosts.
async fn flush(
    tx: &tokio_postgres::Transaction<'_>,
    seq: i64,
    now: &str,
    c: &mut Columns,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO host_results (sweep, host, outcome, error)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])",
        &[&seq, &c.hosts, &c.outcomes, &c.errors],
    )
    .await?;
    if !c.f_host.is_empty() {
        tx.execute(
            "INSERT INTO finding_history (sweep, host, rule, status, state, version, evidence,
                first_seen, last_seen, remediated_at)
             SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[])",
            &[
                &seq,
                &c.f_host,
                &c.f_rule,
                &c.f_status,
                &c.f_state,
                &c.f_version,
                &c.f_evidence,
                &c.f_first,
                &c.f_last,
                &c.f_remediated,
            ],
        )
        .await?;
    }
    if !c.verified.is_empty() {
        tx.execute(
            "INSERT INTO verified (host, last_verified, sweep)
             SELECT h, $2, $1 FROM unnest($3::text[]) AS u(h)
             ON CONFLICT (host) DO UPDATE SET
                last_verified = excluded.last_verified, sweep = excluded.sweep",
            &[&seq, &now, &c.verified],
        )
        .await?;
    }
    *c = Columns::default();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scanner, of every build, must lock a host in the same bucket:
    /// the hash is pinned here.
    #[test]
    fn host_lock_buckets_are_stable_and_spread() {
        assert_eq!(
            [bucket(""), bucket("web-001.fra1"), bucket("h-00")],
            [805, 265, 734]
        );
        assert_eq!(bucket("h\0x"), bucket("h\u{FFFD}x"), "as stored");
        let used: std::collections::BTreeSet<i32> = (0..10_000)
            .map(|i| bucket(&format!("host-{i:05}")))
            .collect();
        assert!(used.iter().all(|b| (0..1024).contains(b)));
        assert!(used.len() > 1000, "10,000 hosts use {} buckets", used.len());
    }
}
