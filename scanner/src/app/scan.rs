//! `fleetsweep scan`: one sweep, its outputs and its exit code.
//!
//! [`ScanPlan`] is everything a sweep needs, validated once (inventory, catalog,
//! host keys, settings). `scan` runs it once; `serve` keeps one and runs it on
//! a schedule or for one host on demand.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio::sync::watch;

use fleetsweep::catalog::Catalog;
use fleetsweep::cli::{Cli, ScanArgs, StateArgs};
use fleetsweep::exceptions::Exceptions;
use fleetsweep::inventory::{self, Host};
use fleetsweep::state::{self, Store};
use fleetsweep::sweep::{self, summary, Progress, SweepSettings};
use fleetsweep::transport::known_hosts::HostKeyPolicy;
use fleetsweep::transport::{Passphrase, SshSettings};
use fleetsweep_exporters::Report;

use super::{load_hosts, EXIT_CLEAN, EXIT_FINDINGS, EXIT_PARTIAL};

const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const DEFAULT_HOST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// A validated sweep, ready to run any number of times.
pub struct ScanPlan {
    /// The inventory after --limit/--shard, with command-line timeouts applied.
    pub hosts: Vec<Host>,
    /// Shared by every sweep of this plan (serve runs many).
    pub catalog: Arc<Catalog>,
    pub settings: SweepSettings,
    /// Parsed known_hosts and the TOFU file, shared by every connection.
    pub host_keys: Arc<HostKeyPolicy>,
    /// The state store file; `None` with `--no-state` (every finding `new`).
    pub state_path: Option<PathBuf>,
    /// The store, opened (and checked end to end) once by `prepare` and kept
    /// for every sweep of the plan, so a scan does not read the whole file
    /// twice. A Mutex because serve shares the plan; its sweeps never overlap.
    store: std::sync::Mutex<Option<Store>>,
    /// The exceptions file, validated before anything is scanned.
    pub exceptions: Option<Arc<Exceptions>>,
    /// `--state-keep`: how long sweeps keep their full report (None: forever).
    keep: Option<jiff::SignedDuration>,
}

/// The state store `--state`/`--no-state` name: the flag, else the default
/// under the user's data directory.
pub fn state_path(args: &StateArgs) -> Result<Option<PathBuf>> {
    if args.disabled {
        return Ok(None);
    }
    match &args.path {
        Some(p) => Ok(Some(p.clone())),
        None => match Store::default_path() {
            Some(p) => Ok(Some(p)),
            None => bail!("cannot find the user's data directory for the state store: pass --state DB (or --no-state)"),
        },
    }
}

fn duration(flag: &str, text: &str) -> Result<std::time::Duration> {
    inventory::parse_duration(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// `--state-keep`: `all` (None), `Nd` days, or any duration `parse_duration` takes.
pub fn retention(text: &str) -> Result<Option<jiff::SignedDuration>> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let d = inventory::parse_duration(t).map_err(|_| {
        anyhow::anyhow!(
            "--state-keep: `{t}` is neither `all` nor a duration such as 400d, 90d or 12h"
        )
    })?;
    if d.is_zero() {
        bail!("--state-keep: 0 would drop the report of every sweep but the newest; give a duration such as 90d, or `all`");
    }
    Ok(Some(jiff::SignedDuration::try_from(d).map_err(|e| {
        anyhow::anyhow!("--state-keep: `{t}`: {e}")
    })?))
}

impl ScanPlan {
    /// Loads and checks everything a sweep needs; any error here is a
    /// configuration error (exit code 2) and nothing is scanned.
    pub fn prepare(args: &ScanArgs) -> Result<ScanPlan> {
        let (mut inv, shard) = match &args.inventory.offline {
            Some(dir) => offline_hosts(dir, &args.inventory)?,
            None => load_hosts(&args.inventory)?,
        };
        let connect_timeout = match &args.connect_timeout {
            Some(t) => Some(duration("connect-timeout", t)?),
            None => None,
        };
        let host_timeout = match &args.host_timeout {
            Some(t) => Some(duration("host-timeout", t)?),
            None => None,
        };
        // Flags given on the command line beat the inventory.
        for h in &mut inv.hosts {
            if let (Some(t), Some(c)) = (connect_timeout, h.target.connect_timeout_mut()) {
                *c = Some(t);
            }
            h.host_timeout = host_timeout.or(h.host_timeout);
        }
        let catalog = Catalog::load(&args.catalog)?;
        if inv.hosts.is_empty() {
            bail!("no hosts to sweep (the inventory is empty, or --limit/--shard matched nothing)");
        }
        let known_hosts: Vec<PathBuf> = if !args.known_hosts.is_empty() {
            args.known_hosts.clone()
        } else if !inv.known_hosts_files.is_empty() {
            inv.known_hosts_files.clone()
        } else {
            vec![inventory::expand_home("~/.ssh/known_hosts")]
        };
        let host_keys = HostKeyPolicy::load(&known_hosts, args.accept_new_host_keys.clone())
            .context("cannot load known_hosts")?;
        let settings = SweepSettings {
            concurrency: args.concurrency.max(1),
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
        for path in args.report.iter().chain(args.metrics_file.iter()) {
            check_writable(path)?;
        }
        fleetsweep_exporters::metrics::check_labels(&args.metric_label)?;
        let exceptions = match &args.exceptions {
            Some(p) => Some(Arc::new(Exceptions::load(p)?)),
            None => None,
        };
        state::now()?;
        let keep = retention(&args.state_keep)?;
        let state_path = state_path(&args.state)?;
        // A corrupt or newer store is a configuration error: found now, not after the sweep.
        let store = match &state_path {
            Some(p) => Some(Store::open(p)?),
            None => None,
        };
        Ok(ScanPlan {
            hosts: inv.hosts,
            catalog: Arc::new(catalog),
            settings,
            host_keys: Arc::new(host_keys),
            state_path,
            store: std::sync::Mutex::new(store),
            exceptions,
            keep,
        })
    }

    /// The step between [`ScanPlan::sweep`] and the outputs: remediation
    /// statuses from the state store, exceptions, and the sweep committed (one
    /// transaction). Returns the all-time remediation counts per (vendor,
    /// product) for `fleetsweep_remediations_total` (empty without a store).
    pub fn record(&self, report: &mut Report) -> Result<BTreeMap<(String, String), u64>> {
        let now = state::now()?;
        // A panic elsewhere cannot leave a half-used connection behind: a
        // poisoned lock still holds a whole Store (commits are transactions).
        let mut store = self
            .store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state::apply_state(
            report,
            store.as_mut(),
            &self.catalog,
            self.exceptions.as_deref(),
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
        Ok(match &*store {
            Some(s) => {
                // Every product the fleet has findings of gets its series at 0
                // before its first remediation, so increase()/rate() see the
                // first one (a counter that appears at 1 shows no increase).
                let mut totals = s.remediation_totals()?;
                for f in report.hosts.iter().flat_map(|h| &h.findings) {
                    totals
                        .entry((f.vendor.clone(), f.product.clone()))
                        .or_insert(0);
                }
                totals
            }
            None => BTreeMap::new(),
        })
    }

    /// Sweeps `hosts` (all of the plan's, or a subset such as one `/probe` target).
    pub async fn sweep(
        &self,
        hosts: Vec<Host>,
        progress: Arc<dyn Progress>,
        cancel: watch::Receiver<Option<String>>,
    ) -> Report {
        sweep::run(
            hosts,
            self.catalog.clone(),
            self.settings.clone(),
            self.host_keys.clone(),
            progress,
            cancel,
        )
        .await
    }
}

/// `scan --offline DIR`: one host per bundle (name, os and labels from its
/// host.yaml, read from the bundle's directory), after --limit/--shard.
pub(super) fn offline_hosts(
    dir: &Path,
    args: &fleetsweep::cli::InventoryArgs,
) -> Result<(
    inventory::Inventory,
    Option<fleetsweep::inventory::limit::Shard>,
)> {
    let mut inv = inventory::Inventory::default();
    for b in fleetsweep::probes::offline::load_bundles(dir)? {
        inv.hosts.push(Host {
            os: Some(b.os.parse()?),
            labels: b.labels,
            groups: Vec::new(),
            host_timeout: None,
            target: inventory::Target::Offline(inventory::OfflineHost {
                dir: b.dir,
                address: b.address.unwrap_or_else(|| "offline".into()),
            }),
            name: b.name,
        });
    }
    let shard = super::limit_and_shard(&mut inv, args)?;
    Ok((inv, shard))
}

/// Metrics options of a scan from its flags.
pub fn metrics_options(args: &ScanArgs) -> fleetsweep_exporters::metrics::MetricsOptions {
    fleetsweep_exporters::metrics::MetricsOptions {
        label_allowlist: args.metric_label.clone(),
        revision: option_env!("FLEETSWEEP_REVISION")
            .unwrap_or("unknown")
            .to_string(),
        ..Default::default()
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

/// Writes the files the flags ask for (`--report`, `--metrics-file`), then
/// pushes (`--push`). A gateway that is down or refuses is an error (exit 2)
/// only after the files are written, so the sweep is not lost.
pub fn write_outputs(
    report: &Report,
    args: &ScanArgs,
    opts: &fleetsweep_exporters::metrics::MetricsOptions,
) -> Result<()> {
    if let Some(path) = &args.report {
        let yaml = fleetsweep_exporters::yaml::to_yaml(report)?;
        fleetsweep_exporters::file::write_atomic(path, yaml.as_bytes())
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    if let Some(path) = &args.metrics_file {
        let text = fleetsweep_exporters::metrics::render(report, opts)?;
        fleetsweep_exporters::file::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write metrics to {}", path.display()))?;
    }
    if let Some(url) = &args.push {
        use fleetsweep_exporters::push;
        let text = fleetsweep_exporters::metrics::render(report, opts)?;
        let instance = push::instance_of(report.sweep.shard.as_deref());
        push::PushTarget::new(url, &args.push_job, &instance)
            .and_then(|t| t.push(&text))
            .context(match &args.report {
                Some(p) => format!("push failed (the report was written to {})", p.display()),
                None => "push failed".to_string(),
            })?;
    }
    Ok(())
}

/// SPEC §2 exit codes from a finished sweep.
pub fn exit_code(report: &Report) -> u8 {
    if state::has_failing_finding(report) {
        EXIT_FINDINGS
    } else if report.has_unscanned() || !report.sweep.complete {
        EXIT_PARTIAL
    } else {
        EXIT_CLEAN
    }
}

pub async fn scan(cli: &Cli, args: &ScanArgs) -> Result<u8> {
    let plan = ScanPlan::prepare(args)?;
    let show_bar =
        !cli.quiet && !args.no_progress && (args.progress || std::io::stderr().is_terminal());
    let bar = show_bar.then(|| Arc::new(summary::Bar::new(plan.hosts.len())));
    let progress: Arc<dyn Progress> = match &bar {
        Some(b) => b.clone(),
        None => Arc::new(sweep::Silent),
    };
    let (tx, rx) = watch::channel(None);
    tokio::spawn(forward_signals(tx));
    let mut report = plan.sweep(plan.hosts.clone(), progress, rx).await;
    if let Some(b) = &bar {
        b.finish();
    }
    // A store that cannot record the sweep, or a push that fails, must not
    // lose the sweep: the files and the summary come first, the error after.
    let recorded = plan.record(&mut report);
    let opts = fleetsweep_exporters::metrics::MetricsOptions {
        remediations: recorded.as_ref().cloned().unwrap_or_default(),
        ..metrics_options(args)
    };
    let written = write_outputs(&report, args, &opts);
    if !cli.quiet {
        print!("{}", summary::render(&report));
        print!("{}", state_summary(plan.state_path.as_deref()));
        if let (Some(path), Ok(())) = (&args.report, &written) {
            println!("\nReport written to {}", path.display());
        }
    }
    recorded.context("the sweep could not be recorded in the state store (the report and metrics files were still written)")?;
    written?;
    Ok(exit_code(&report))
}

/// Where the remediation history of this scan is kept (or that none is).
fn state_summary(state: Option<&Path>) -> String {
    match state {
        Some(p) => format!("History: {}\n", p.display()),
        None => "History: none (--no-state: every finding is new)\n".to_string(),
    }
}

/// Fails before the sweep, not after an hour of scanning, when an output
/// file cannot be written.
pub fn check_writable(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!(
            "cannot write {}: directory {} does not exist",
            path.display(),
            dir.display()
        );
    }
    tempfile::NamedTempFile::new_in(&dir).with_context(|| {
        format!(
            "cannot write {}: directory {} is not writable",
            path.display(),
            dir.display()
        )
    })?;
    Ok(())
}

/// SIGINT/SIGTERM → the sweep stops and writes what it has, marked incomplete.
async fn forward_signals(tx: watch::Sender<Option<String>>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!(
            "cannot install signal handlers; an interrupt will not write a partial report"
        );
        return;
    };
    let name = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    tracing::warn!("{name} received: stopping the sweep and writing what it has");
    let _ = tx.send(Some(name.to_string()));
    // A second signal means "now".
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    std::process::exit(i32::from(EXIT_PARTIAL));
}
