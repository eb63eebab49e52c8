//! The pipeline every sweep goes through: sweep → state store → outputs.
//!
//! `scan` prepares one [`Pipeline`] and runs it once; `serve` keeps one for its
//! whole life and runs it on a schedule and for `/probe`. Both get the same
//! validation (once, before anything is scanned), the same state-store step and
//! the same files, so a daemon's sweep and a one-off scan never disagree.
//!
//! The steps that block (the SQLite transaction, which may wait out the store's
//! busy timeout, and the file writes and the Pushgateway PUT) run on tokio's
//! blocking pool, never on a runtime thread: a slow disk or a locked store must
//! not stall `/metrics` or the sweep of other hosts.
//!
//! - [`outputs`]: `--report`, `--metrics-file`, `--push`.
//! - [`siem`]: `--syslog`, `--webhook`, delivered last.

pub mod outputs;
pub mod siem;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use fleetsweep_exporters::metrics::{MetricsError, MetricsOptions};
use fleetsweep_exporters::push::PushError;
use fleetsweep_exporters::siem::{Delivery, SiemError, StatusChange};
use fleetsweep_exporters::yaml::YamlError;
use fleetsweep_exporters::Report;

use crate::catalog::Catalog;
use crate::cli::{ScanArgs, StateArgs};
use crate::diag::Diagnostic;
use crate::exceptions::Exceptions;
use crate::inventory::{self, limit::Shard, Host, HostTable, Inventory};
use crate::state::{self, Location, StateError, Store};
use crate::sweep::{self, Progress, SweepSettings};
use crate::transport::known_hosts::{HostKeyPolicy, KnownHostsError};
use crate::transport::{Passphrase, SshSettings};

pub use outputs::{Outputs, Written};
pub use siem::SiemOutputs;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_HOST_TIMEOUT: Duration = Duration::from_secs(120);

/// All-time remediation counts per (vendor, product), for
/// `fleetsweep_remediations_total`.
pub type Remediations = BTreeMap<(String, String), u64>;

/// Errors of the pipeline: its configuration (found by [`Pipeline::prepare`],
/// before anything is scanned) and the steps after a sweep.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A command-line value that does not parse (`--host-timeout`, `--state-keep`, ...).
    #[error("--{flag}: {detail}")]
    Flag { flag: &'static str, detail: String },
    /// The catalog or the exceptions file.
    #[error(transparent)]
    File(#[from] Diagnostic),
    #[error("no hosts to sweep (the inventory is empty, or --limit/--shard matched nothing)")]
    NoHosts,
    #[error("cannot load known_hosts")]
    KnownHosts(#[source] KnownHostsError),
    #[error("cannot write {}: directory {} does not exist", path.display(), dir.display())]
    NoDirectory { path: PathBuf, dir: PathBuf },
    #[error("cannot write {}: directory {} is not writable", path.display(), dir.display())]
    NotWritable {
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find the user's data directory for the state store: pass --state DB (or --no-state)")]
    NoDataDirectory,
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Yaml(#[from] YamlError),
    #[error("cannot write the report to {}", path.display())]
    WriteReport {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write metrics to {}", path.display())]
    WriteMetrics {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `report` is the report file, which was written before the push failed.
    #[error("push failed{}", report.as_ref().map(|p| format!(" (the report was written to {})", p.display())).unwrap_or_default())]
    Push {
        report: Option<PathBuf>,
        #[source]
        source: PushError,
    },
    /// A SIEM output's configuration (`--syslog`, `--webhook`, their files).
    #[error(transparent)]
    Siem(#[from] SiemError),
    /// The blocking task writing the outputs panicked.
    #[error("writing the sweep's outputs failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// An error and its sources on one line (`outer: inner: innermost`), as the
/// binary prints errors; for log lines.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

/// The hosts a pipeline sweeps, as the inventory options selected them.
pub struct Selection {
    /// After --limit/--shard.
    pub inventory: Inventory,
    /// `--shard I/N`, named in the report.
    pub shard: Option<Shard>,
}

/// A validated sweep, ready to run any number of times.
pub struct Pipeline {
    /// The inventory after --limit/--shard, with command-line timeouts
    /// applied; shared with every sweep of all of it, never copied.
    hosts: Arc<HostTable>,
    /// Shared by every sweep of this pipeline (serve runs many).
    catalog: Arc<Catalog>,
    settings: SweepSettings,
    /// Parsed known_hosts and the TOFU file, shared by every connection.
    host_keys: Arc<HostKeyPolicy>,
    /// The state-store step; an Arc so it can run on the blocking pool.
    history: Arc<History>,
    /// The files and the push; an Arc so they can be written on the blocking pool.
    outputs: Arc<Outputs>,
    /// `--syslog`, `--webhook`; `None` when neither is asked for.
    siem: Option<Arc<SiemOutputs>>,
}

/// What [`Pipeline::record`] gives back.
pub struct Recorded {
    /// The report with remediation statuses and exceptions applied (as far
    /// as the state step got; see [`state::apply_state`]).
    pub report: Report,
    /// The pipeline's metrics options with this sweep's remediation totals
    /// (none when the state step failed or there is no store).
    pub metrics: MetricsOptions,
    /// Why the sweep is not in the state store; the outputs are still written.
    pub error: Option<PipelineError>,
    /// Findings whose status changed in this sweep (for the SIEM outputs).
    pub changes: Vec<StatusChange>,
}

/// A sweep taken through the state store and the outputs ([`Pipeline::finish`]).
pub struct Finished {
    pub report: Report,
    /// `Err` when the sweep could not be recorded in the state store.
    pub recorded: Result<(), PipelineError>,
    /// The outputs written, or why not all of them were.
    pub written: Result<Written, PipelineError>,
    /// What each SIEM output delivered (empty when none is configured).
    pub delivered: Vec<Delivery>,
}

/// The state-store step of a sweep: statuses, exceptions, one committed
/// transaction, retention.
struct History {
    catalog: Arc<Catalog>,
    /// The state store (a file or a PostgreSQL URL); `None` with
    /// `--no-state` (every finding `new`).
    path: Option<Location>,
    /// The store, opened (and checked end to end) once by `prepare` and kept
    /// for every sweep, so a scan does not read the whole file twice. A Mutex
    /// because serve shares the pipeline; it is only locked on the blocking
    /// pool, never across an `.await`.
    store: Mutex<Option<Store>>,
    /// The exceptions file, validated before anything is scanned.
    exceptions: Option<Exceptions>,
    /// `--state-keep`: how long sweeps keep their full report (None: forever).
    keep: Option<jiff::SignedDuration>,
}

impl Pipeline {
    /// Checks everything a sweep of `selection` needs; any error here is a
    /// configuration error and nothing is scanned.
    pub fn prepare(selection: Selection, args: &ScanArgs) -> Result<Pipeline, PipelineError> {
        let Selection {
            inventory: mut inv,
            shard,
        } = selection;
        let connect_timeout = flag_duration("connect-timeout", args.connect_timeout.as_deref())?;
        let host_timeout = flag_duration("host-timeout", args.host_timeout.as_deref())?;
        // Flags given on the command line beat the inventory.
        for h in &mut inv.hosts {
            if let (Some(t), Some(c)) = (connect_timeout, h.target.connect_timeout_mut()) {
                *c = Some(t);
            }
            h.host_timeout = host_timeout.or(h.host_timeout);
        }
        let catalog = Arc::new(Catalog::load(&args.catalog)?);
        if inv.hosts.is_empty() {
            return Err(PipelineError::NoHosts);
        }
        // A row of 64 bytes a host and shared profiles, built as the list
        // is consumed (at 100,000 hosts 6.4 MB, not the list's 16 and its
        // names' 6.4). Before the known_hosts are read, not beside them: the
        // list and a parsed known_hosts of as many lines were loading's
        // high-water mark (100,000 hosts: 68 MB RSS, now 58).
        let known_hosts_files = std::mem::take(&mut inv.known_hosts_files);
        let hosts = Arc::new(HostTable::from(inv.hosts));
        let known_hosts: Vec<PathBuf> = if !args.known_hosts.is_empty() {
            args.known_hosts.clone()
        } else if !known_hosts_files.is_empty() {
            known_hosts_files
        } else {
            vec![inventory::expand_home("~/.ssh/known_hosts")]
        };
        let host_keys = HostKeyPolicy::load(&known_hosts, args.accept_new_host_keys.clone())
            .map_err(PipelineError::KnownHosts)?;
        let settings = SweepSettings {
            concurrency: args.concurrency.max(1),
            max_handshakes: args.max_handshakes.max(1),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            host_timeout: DEFAULT_HOST_TIMEOUT,
            output_limit: args.max_output.max(1).saturating_mul(1024 * 1024),
            ssh: SshSettings {
                known_hosts,
                accept_new_host_keys: args.accept_new_host_keys.clone(),
                use_agent: !args.no_agent && std::env::var_os("SSH_AUTH_SOCK").is_some(),
                passphrase: match (&args.passphrase_env, &args.passphrase_file) {
                    (Some(v), _) => Passphrase::Env(v.clone()),
                    (None, Some(f)) => Passphrase::File(f.clone()),
                    (None, None) => Passphrase::None,
                },
                connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            },
            sudo: args.sudo,
            shard: shard.map(|s| s.to_string()),
        };
        let outputs = Outputs::prepare(args)?;
        let siem = SiemOutputs::prepare(&args.siem)?.map(Arc::new);
        let exceptions = match &args.exceptions {
            Some(p) => Some(Exceptions::load(p)?),
            None => None,
        };
        state::now()?;
        let keep = retention(&args.state_keep)?;
        let path = state_path(&args.state)?;
        // A corrupt or newer store is a configuration error: found now, not after the sweep.
        let scanner = scanner_name(args.scanner.as_deref())?;
        let store = match &path {
            Some(p) => {
                let mut s = Store::open(p)?;
                s.set_scanner(&scanner);
                Some(s)
            }
            None => None,
        };
        // Loading's high-water mark (the inventory as parsed and resolved,
        // the known_hosts text) is free now that the hosts wait in their
        // table: its pages go back once, before any sweep, rather than
        // staying resident through them (100,000 hosts: 70 -> 58-61 MB
        // during a sweep). Once here, not at each sweep: serve's `/probe`
        // sweeps one host at a time.
        sweep::give_back_free_pages();
        Ok(Pipeline {
            hosts,
            catalog: catalog.clone(),
            settings,
            host_keys: Arc::new(host_keys),
            history: Arc::new(History {
                catalog,
                path,
                store: Mutex::new(store),
                exceptions,
                keep,
            }),
            outputs: Arc::new(outputs),
            siem,
        })
    }

    /// Every host the pipeline sweeps (`/probe` accepts only these names).
    pub fn hosts(&self) -> &HostTable {
        &self.hosts
    }

    /// `h`'s whole-host deadline as a sweep applies it: the host's own
    /// (`--host-timeout` or the inventory's), else the default of 2m.
    pub fn host_timeout(&self, h: &Host) -> Duration {
        h.host_timeout.unwrap_or(self.settings.host_timeout)
    }

    /// `h`'s connect deadline as a sweep applies it (per hop).
    pub fn connect_timeout(&self, h: &Host) -> Duration {
        h.target
            .connect_timeout()
            .unwrap_or(self.settings.connect_timeout)
    }

    /// The metrics options of every page (`--metric-label`), so `/probe`
    /// labels its series as the sweep page does.
    pub fn metrics_options(&self) -> &MetricsOptions {
        &self.outputs.metrics
    }

    /// The SIEM outputs configured (`syslog`, `webhook`), for their metrics.
    pub fn siem_outputs(&self) -> Vec<&'static str> {
        self.siem.as_ref().map(|s| s.names()).unwrap_or_default()
    }

    /// The state store; `None` with `--no-state`.
    pub fn state_path(&self) -> Option<&Location> {
        self.history.path.as_ref()
    }

    /// Sweeps `hosts` (all of [`Pipeline::hosts`], or a subset such as one
    /// `/probe` target); a value on `cancel` interrupts it (the report is
    /// then marked incomplete).
    pub async fn sweep(
        &self,
        hosts: Vec<Host>,
        progress: Arc<dyn Progress>,
        cancel: watch::Receiver<Option<String>>,
    ) -> Report {
        let hosts = Arc::new(HostTable::from(hosts));
        self.sweep_shared(hosts, self.host_keys.clone(), progress, cancel)
            .await
    }

    /// Sweeps every host of the pipeline ([`Pipeline::hosts`]) without
    /// copying the inventory (at 100,000 hosts a copy is some 90 MB).
    pub async fn sweep_all(
        &self,
        progress: Arc<dyn Progress>,
        cancel: watch::Receiver<Option<String>>,
    ) -> Report {
        self.sweep_shared(self.hosts.clone(), self.host_keys.clone(), progress, cancel)
            .await
    }

    /// Sweeps every host once, and lets go of what only the sweep needs:
    /// the inventory and the parsed known_hosts. A one-off `scan` then
    /// records and writes its report in that room instead of on top of it
    /// (at 100,000 hosts some 45 MB of heap; peak RSS 148 → 128 MiB). The
    /// pipeline has no hosts afterwards ([`Pipeline::hosts`] is empty);
    /// `serve`, which sweeps again, uses [`Pipeline::sweep_all`].
    pub async fn sweep_all_once(
        &mut self,
        progress: Arc<dyn Progress>,
        cancel: watch::Receiver<Option<String>>,
    ) -> Report {
        let hosts = std::mem::take(&mut self.hosts);
        let host_keys = std::mem::replace(&mut self.host_keys, Arc::new(HostKeyPolicy::none()));
        // The sweep holds the only references: the known_hosts go when it
        // returns, the host table with its report (which reads its hosts).
        self.sweep_shared(hosts, host_keys, progress, cancel).await
    }

    async fn sweep_shared(
        &self,
        hosts: Arc<HostTable>,
        host_keys: Arc<HostKeyPolicy>,
        progress: Arc<dyn Progress>,
        cancel: watch::Receiver<Option<String>>,
    ) -> Report {
        sweep::run(
            hosts,
            self.catalog.clone(),
            self.settings.clone(),
            host_keys,
            progress,
            cancel,
        )
        .await
    }

    /// The step between [`Pipeline::sweep`] and the outputs: remediation
    /// statuses from the state store, exceptions, the sweep committed (one
    /// transaction) and old sweeps pruned. Runs on the blocking pool.
    pub async fn record(&self, report: Report) -> Recorded {
        let history = self.history.clone();
        // Timed for the scale benchmark (docs/performance.md): this step grows with the fleet.
        let started = std::time::Instant::now();
        let (report, totals) = blocking(move || {
            let mut report = report;
            let totals = history.record(&mut report);
            (report, totals)
        })
        .await;
        tracing::info!(
            hosts = report.hosts.len(),
            ms = started.elapsed().as_millis() as u64,
            "state step done (statuses derived, sweep committed, old sweeps pruned)"
        );
        let (remediations, changes, error) = match totals {
            Ok((t, c)) => (t, c, None),
            Err(e) => (Remediations::new(), Vec::new(), Some(e)),
        };
        Recorded {
            report,
            metrics: MetricsOptions {
                remediations,
                ..self.outputs.metrics.clone()
            },
            error,
            changes,
        }
    }

    /// Writes the files the options ask for (`--report`, `--metrics-file`),
    /// then pushes (`--push`), on the blocking pool.
    pub async fn write(
        &self,
        report: Arc<Report>,
        metrics: MetricsOptions,
    ) -> Result<Written, PipelineError> {
        let outputs = self.outputs.clone();
        let started = std::time::Instant::now();
        let written = tokio::task::spawn_blocking(move || outputs.write(&report, &metrics)).await?;
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "outputs written (report, metrics, push)"
        );
        written
    }

    /// Sends the sweep's events to the SIEM outputs (`--syslog`,
    /// `--webhook`), on the blocking pool; each delivery retries within
    /// `--siem-deadline`. Empty when none is configured.
    pub async fn deliver(&self, report: Arc<Report>, changes: Vec<StatusChange>) -> Vec<Delivery> {
        let Some(siem) = self.siem.clone() else {
            return Vec::new();
        };
        let started = std::time::Instant::now();
        let delivered = blocking(move || siem.deliver(&report, &changes)).await;
        for d in &delivered {
            for why in &d.retried {
                tracing::warn!(output = d.output, target = %d.target, "SIEM delivery attempt failed, retrying: {why}");
            }
            match &d.result {
                Ok(n) => tracing::info!(
                    output = d.output,
                    target = %d.target,
                    events = n,
                    attempts = d.attempts,
                    ms = started.elapsed().as_millis() as u64,
                    "SIEM events delivered"
                ),
                Err(e) => tracing::error!(
                    output = d.output,
                    target = %d.target,
                    attempts = d.attempts,
                    "SIEM delivery failed: {}",
                    Chain(e)
                ),
            }
        }
        delivered
    }

    /// Takes a swept report through the state store and the outputs. A
    /// store that cannot record the sweep does not stop the outputs: the
    /// sweep is not lost. The SIEM outputs come last, after the files.
    pub async fn finish(&self, report: Report) -> Finished {
        let Recorded {
            report,
            metrics,
            error,
            changes,
        } = self.record(report).await;
        let report = Arc::new(report);
        let written = self.write(report.clone(), metrics).await;
        let delivered = self.deliver(report.clone(), changes).await;
        Finished {
            // The write task has ended: this is the one reference left.
            report: Arc::unwrap_or_clone(report),
            recorded: error.map_or(Ok(()), Err),
            written,
            delivered,
        }
    }
}

impl History {
    /// Blocking (SQLite). Returns the remediation totals (empty without a
    /// store) and the status changes of the sweep.
    fn record(
        &self,
        report: &mut Report,
    ) -> Result<(Remediations, Vec<StatusChange>), PipelineError> {
        let now = state::now()?;
        // A panic elsewhere cannot leave a half-used connection behind: a
        // poisoned lock still holds a whole Store (commits are transactions).
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        let changes = state::apply_state(
            report,
            store.as_mut(),
            &self.catalog,
            self.exceptions.as_ref(),
            now,
        )?;
        warn_about_exceptions(report);
        if let (Some(s), Some(keep)) = (store.as_mut(), self.keep) {
            // Retention after the commit: the sweep is recorded either way, and a
            // failed prune is reported, not fatal (the next sweep retries it).
            let before = now.checked_sub(keep).unwrap_or(jiff::Timestamp::MIN);
            match s.prune(before, now) {
                Ok(p) if p.sweeps > 0 => tracing::info!(
                    sweeps = p.sweeps,
                    rows = p.rows,
                    "state store: dropped the reports of sweeps older than --state-keep"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!("state store retention failed: {e}"),
            }
        }
        let totals = match &*store {
            Some(s) => {
                // Every product the fleet has findings of gets its series at 0
                // before its first remediation, so increase()/rate() see the
                // first one (a counter that appears at 1 shows no increase).
                let mut totals = s.remediation_totals()?;
                for h in &report.hosts {
                    for f in &h.findings {
                        totals
                            .entry((f.vendor.clone(), f.product.clone()))
                            .or_insert(0);
                    }
                }
                totals
            }
            None => Remediations::new(),
        };
        Ok((totals, changes))
    }
}

/// Runs `f` on the blocking pool. A panic there is raised again here, as if
/// `f` had run inline.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Cancelled: only when the runtime shuts down, which drops this
            // future too; nothing is left to return to.
            Err(_) => std::future::pending().await,
        },
    }
}

/// Expired exceptions and exceptions that matched nothing: the file needs care.
fn warn_about_exceptions(report: &Report) {
    let Some(ex) = &report.exceptions else { return };
    for e in &ex.expired {
        tracing::warn!(
            "exception {} ({} / {}) expired on {}: it no longer applies ({} finding(s) it would cover)",
            e.source, e.hosts, e.rule, e.expires, e.findings
        );
    }
    for e in &ex.unused {
        tracing::warn!(
            "exception {} ({} / {}) matched no finding: remove it, or check its hosts and rule",
            e.source,
            e.hosts,
            e.rule
        );
    }
}

/// The state store `--state`/`--no-state` name: the flag (a file, or a
/// `postgresql://` URL), else the default file under the user's data directory.
/// The environment variable `--state` defaults to: a PostgreSQL URL with its
/// password can come from a secret (a Kubernetes Secret, a systemd
/// credential) instead of the command line, where `ps` shows it.
pub const STATE_ENV: &str = "FLEETSWEEP_STATE";

/// `--state`, else `$FLEETSWEEP_STATE`, else the default SQLite file; none with `--no-state`.
pub fn state_path(args: &StateArgs) -> Result<Option<Location>, PipelineError> {
    if args.disabled {
        return Ok(None);
    }
    // Read here rather than by clap, so that `--no-state` still wins over a
    // FLEETSWEEP_STATE set for the whole environment (a container's).
    let from_env = std::env::var_os(STATE_ENV).filter(|v| !v.is_empty());
    match args
        .path
        .as_ref()
        .map(|p| p.as_os_str())
        .or(from_env.as_deref())
    {
        Some(p) => Ok(Some(Location::parse(p)?)),
        None => Store::default_path()
            .map(|p| Some(Location::Sqlite(p)))
            .ok_or(PipelineError::NoDataDirectory),
    }
}

/// The longest `--scanner` name.
const SCANNER_NAME_MAX: usize = 128;

/// `--scanner`, else this machine's host name: recorded with every sweep.
pub fn scanner_name(flag: Option<&str>) -> Result<String, PipelineError> {
    let name = match flag {
        Some(n) => n.to_string(),
        None => nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into()),
    };
    if name.is_empty()
        || name.chars().count() > SCANNER_NAME_MAX
        || name.chars().any(char::is_control)
    {
        return Err(PipelineError::Flag {
            flag: "scanner",
            detail: format!(
                "`{}` is not a scanner name: give 1 to {SCANNER_NAME_MAX} printable characters, e.g. --scanner site-a",
                name.escape_debug()
            ),
        });
    }
    Ok(name)
}

/// A duration flag, when given.
fn flag_duration(
    flag: &'static str,
    text: Option<&str>,
) -> Result<Option<Duration>, PipelineError> {
    text.map(|t| {
        inventory::parse_duration(t).map_err(|detail| PipelineError::Flag { flag, detail })
    })
    .transpose()
}

/// `--state-keep`: `all` (None), `Nd` days, or any duration `parse_duration` takes.
pub fn retention(text: &str) -> Result<Option<jiff::SignedDuration>, PipelineError> {
    let flag = |detail: String| PipelineError::Flag {
        flag: "state-keep",
        detail,
    };
    let t = text.trim();
    if t.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let d = inventory::parse_duration(t).map_err(|_| {
        flag(format!(
            "`{t}` is neither `all` nor a duration such as 400d, 90d or 12h"
        ))
    })?;
    if d.is_zero() {
        return Err(flag("0 would drop the report of every sweep but the newest; give a duration such as 90d, or `all`".to_string()));
    }
    jiff::SignedDuration::try_from(d)
        .map(Some)
        .map_err(|e| flag(format!("`{t}`: {e}")))
}

#[cfg(test)]
mod tests;
