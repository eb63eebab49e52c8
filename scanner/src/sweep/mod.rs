//! The sweep engine: every host of the inventory, concurrently, each ending as
//! exactly one outcome.
//!
//! Shape (after mini-redis): a bounded number of hosts are in flight at once
//! (`buffer_unordered(concurrency)`); each host gets one connection, one exec
//! of the probe script, and a hard deadline. A host that fails is data in the
//! report, never an error of the sweep. An interrupt (SIGINT/SIGTERM, delivered
//! through the `cancel` watch channel) stops new work, drops in-flight
//! connections, and the report lists unfinished hosts as `interrupted`.

mod spill;
pub mod summary;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;

use fleetsweep_exporters::{
    HostList, HostReport, OsInfo, Outcome, Report, SweepInfo, REPORT_VERSION,
};

use crate::catalog::{matcher, Catalog};
use crate::inventory::{Host, HostTable, Target};
use crate::os::OsFamily;
use crate::probes::registry::{self, probe, FirstRun};
use crate::probes::{completeness, offline, Observations};
use crate::transport::known_hosts::HostKeyPolicy;
use crate::transport::local::LocalSession;
use crate::transport::{capture, ssh, winrm, Session, SshSettings, TransportError};

/// Settings of one sweep, validated by the CLI.
#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// Hosts in flight at once.
    pub concurrency: usize,
    /// SSH connections in start-up at once, across the sweep.
    pub max_handshakes: usize,
    /// Per-hop connect + handshake + auth deadline (hosts may override).
    pub connect_timeout: Duration,
    /// Whole-host deadline: connect, probe, parse (hosts may override).
    pub host_timeout: Duration,
    /// Cap on probe output per host; more is cut and reported as a warning.
    pub output_limit: usize,
    pub ssh: SshSettings,
    /// Run probes through `sudo -n` on every host (hosts may ask for it individually).
    pub sudo: bool,
    /// `I/N` when this sweep is one shard of the fleet.
    pub shard: Option<String>,
}

/// Progress callbacks, so the engine knows nothing about terminals.
pub trait Progress: Send + Sync {
    fn host_done(&self, _report: &HostReport) {}
}

/// No progress output.
pub struct Silent;
impl Progress for Silent {}

/// Shared, read-only context of one sweep.
struct Ctx {
    catalog: Arc<Catalog>,
    settings: SweepSettings,
    /// Built once, shared by every connection (parsed known_hosts, TOFU file lock).
    host_keys: Arc<HostKeyPolicy>,
    /// Directories each family's probe lists, from the catalog's path
    /// signatures: computed once per sweep, not once per host.
    path_roots: BTreeMap<OsFamily, Vec<String>>,
    /// WinRM TLS configs, built once per CA file for all hosts of the sweep.
    winrm_tls: Arc<winrm::TlsConfigs>,
    /// Bastion connections shared by the hosts behind them, and the caps on
    /// connections in start-up per destination: one per sweep, closed at its end.
    ssh_pool: Arc<ssh::SshPool>,
    /// The catalog's signatures by family and kind, built once per sweep.
    match_index: matcher::MatchIndex,
    /// The systems hosts reported, one shared copy each (see [`OsNames`]).
    os_names: OsNames,
}

/// Distinct [`OsInfo`]s seen in a sweep, so that the many hosts running the
/// same system share one copy in their reports. Bounded: past
/// [`OsNames::MAX`] distinct systems (hosts' own text, so a hostile fleet
/// could send a new one per host), each host keeps its own.
#[derive(Default)]
struct OsNames(std::sync::Mutex<std::collections::HashSet<Arc<OsInfo>>>);

impl OsNames {
    const MAX: usize = 4096;

    fn shared(&self, os: OsInfo) -> Arc<OsInfo> {
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(known) = seen.get(&os) {
            return known.clone();
        }
        let os = Arc::new(os);
        if seen.len() < Self::MAX {
            seen.insert(os.clone());
        }
        os
    }
}

/// Runs one sweep over `hosts` (shared, not copied: a pipeline sweeps its
/// whole inventory many times). Each host is built whole from the table
/// while it is in flight, and again when its report is assembled.
pub async fn run(
    hosts: Arc<HostTable>,
    catalog: Arc<Catalog>,
    settings: SweepSettings,
    host_keys: Arc<HostKeyPolicy>,
    progress: Arc<dyn Progress>,
    mut cancel: watch::Receiver<Option<String>>,
) -> Report {
    let started = jiff::Timestamp::now();
    let path_roots = OsFamily::ALL
        .into_iter()
        .map(|f| (f, catalog.path_roots(f)))
        .collect();
    let catalogs = catalog.catalogs.clone();
    let settings_handshakes = settings.max_handshakes;
    let ctx = Arc::new(Ctx {
        settings,
        host_keys,
        path_roots,
        winrm_tls: Arc::default(),
        ssh_pool: Arc::new(ssh::SshPool::new(settings_handshakes)),
        match_index: matcher::MatchIndex::new(&catalog),
        os_names: OsNames::default(),
        catalog,
    });
    // One small slot per host, filled as hosts finish: most hosts' results
    // are their inventory entry plus an outcome, an OS and a duration (24
    // bytes here, against a full report's 168, until the end of the sweep).
    let mut results: Vec<Slot> = std::iter::repeat_with(|| Slot::Pending)
        .take(hosts.len())
        .collect();
    // Results with more than an outcome wait in a temporary file, not here.
    let mut spill = spill::Spill::default();
    let concurrency = ctx.settings.concurrency.max(1);
    let mut interrupted_by = cancel.borrow().clone();
    if interrupted_by.is_none() {
        // Each future owns a handle on the hosts (an Arc, not a borrow), so
        // the sweep's future is `Send` and runs on any runtime thread
        // (serve's HTTP handlers need that); no host is copied.
        let mut stream = futures::stream::iter(0..hosts.len())
            .map(|i| {
                let (ctx, hosts) = (ctx.clone(), hosts.clone());
                async move {
                    let h = hosts.get(i);
                    let report = scan_host(&h, &ctx).await;
                    (i, h, report)
                }
            })
            .buffer_unordered(concurrency);
        loop {
            tokio::select! {
                next = stream.next() => match next {
                    Some((i, h, report)) => {
                        progress.host_done(&report);
                        results[i] = Slot::of(&h, report, &mut spill);
                    }
                    None => break,
                },
                changed = cancel.changed() => {
                    let why = cancel.borrow().clone();
                    if changed.is_err() || why.is_some() {
                        interrupted_by = why.or(Some("cancelled".into()));
                        break;
                    }
                }
            }
        }
    }
    // Every host is done (or dropped): the bastions can go.
    ctx.ssh_pool.close().await;
    let complete = interrupted_by.is_none();
    let shard = ctx.settings.shard.clone();
    // What only the sweep needed (its connections, the parsed known_hosts
    // when the sweep held the last reference, the match index) goes, and its
    // pages go back to the OS.
    drop(ctx);
    give_back_free_pages();
    // The report's hosts stay where the sweep left them (a slot each, the
    // spill file, the host table) and are built one at a time as the state
    // step and the writers reach them: no list of every host's report.
    let swept = Swept::new(hosts, results, spill, interrupted_by.clone());
    let mut report = Report {
        report_version: REPORT_VERSION,
        sweep: SweepInfo {
            id: uuid::Uuid::new_v4().to_string(),
            started,
            finished: jiff::Timestamp::now(),
            scanner_version: env!("CARGO_PKG_VERSION").to_string(),
            catalogs,
            shard,
            complete,
            interrupted_by,
        },
        summary: Default::default(),
        exceptions: None,
        hosts: HostList::from_source(Arc::new(swept)),
    };
    report.normalize();
    report
}

/// A finished sweep's host reports, in name order, each built when it is
/// reached: from its host (the table) and its slot, and from the spill
/// file for a result with more than an outcome. Memory: the slots (24 bytes
/// a host).
struct Swept {
    /// The hosts in name order (the sweep's table, or a copy of it sorted).
    hosts: Arc<HostTable>,
    /// Each host's slot, in the same order.
    slots: std::sync::Mutex<(Vec<Slot>, spill::Spill)>,
    interrupted_by: Option<String>,
}

impl Swept {
    /// `slots` are in the order of `hosts`, the inventory's.
    fn new(
        hosts: Arc<HostTable>,
        slots: Vec<Slot>,
        spill: spill::Spill,
        interrupted_by: Option<String>,
    ) -> Swept {
        let (hosts, slots) = match hosts.sorted_by_name() {
            None => (hosts, slots),
            Some((sorted, order)) => {
                let mut slots = slots;
                let by_name = order
                    .into_iter()
                    .map(|at| std::mem::replace(&mut slots[at], Slot::Pending))
                    .collect();
                (Arc::new(sorted), by_name)
            }
        };
        Swept {
            hosts,
            slots: std::sync::Mutex::new((slots, spill)),
            interrupted_by,
        }
    }
}

impl fleetsweep_exporters::HostSource for Swept {
    fn len(&self) -> usize {
        self.hosts.len()
    }

    fn get(&self, i: usize) -> HostReport {
        let h = self.hosts.get(i);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let (slots, spill) = &mut *slots;
        slots[i].report(&h, self.interrupted_by.as_deref(), spill)
    }

    fn set(&self, i: usize, report: HostReport) {
        let h = self.hosts.get(i);
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let (slots, spill) = &mut *slots;
        slots[i] = Slot::of(&h, report, spill);
    }
}

/// A host's result while the sweep runs.
enum Slot {
    /// Not finished (an interrupted sweep reports it so).
    Pending,
    /// A result that is [`host_report`] of its host but for these three
    /// fields: the common case, a host scanned with nothing to report.
    Done {
        outcome: Outcome,
        os: Option<Arc<OsInfo>>,
        duration_seconds: f64,
    },
    /// Anything more (findings, warnings, an error, ...), in the sweep's
    /// spill file; the host's OS stays here, shared.
    Spilled {
        at: spill::Spilled,
        os: Option<Arc<OsInfo>>,
    },
    /// Anything more, as it came, when it could not be spilled.
    Full(Box<HostReport>),
}

// A slot per host for the whole sweep: kept at 24 bytes.
const _: () = assert!(std::mem::size_of::<Slot>() <= 24);

impl Slot {
    /// The slot of `r`, host `h`'s result; a result with more than an
    /// outcome is normalized ([`HostReport::normalize`]) on its way in.
    fn of(h: &Host, mut r: HostReport, spill: &mut spill::Spill) -> Slot {
        let plain = r.error.is_none()
            && r.warnings.is_empty()
            && r.incomplete.is_empty()
            && r.findings.is_empty()
            && r.scanned_by.is_none()
            && *r.name == *h.name
            && *r.address == **h.shared_address()
            && r.labels.same_as(&h.labels);
        if plain {
            Slot::Done {
                outcome: r.outcome,
                os: r.os,
                duration_seconds: r.duration_seconds,
            }
        } else {
            r.normalize();
            let os = r.os.take();
            match spill.put(&r) {
                Some(at) => Slot::Spilled { at, os },
                None => {
                    r.os = os;
                    Slot::Full(Box::new(r))
                }
            }
        }
    }

    /// The host's report; `interrupted_by` says why a pending host was not
    /// finished. A result that cannot be read back from the spill file is
    /// the host failed, with why, from then on (said in the log once, not
    /// on each pass over the report).
    fn report(
        &mut self,
        h: &Host,
        interrupted_by: Option<&str>,
        spill: &mut spill::Spill,
    ) -> HostReport {
        match self {
            Slot::Spilled { at, os } => match spill.take(*at, os.clone()) {
                Ok(mut r) => {
                    // The host's own labels again, one copy for host and report.
                    if r.labels == h.labels {
                        r.labels = h.labels.clone();
                    }
                    r
                }
                Err(why) => {
                    tracing::error!(host = %h.name, "{why}");
                    let mut r = host_report(h, Outcome::ProbeFailed, 0.0);
                    r.error = Some(format!("this host's result was lost after its scan: {why}"));
                    *self = Slot::Full(Box::new(r.clone()));
                    r
                }
            },
            Slot::Done {
                outcome,
                os,
                duration_seconds,
            } => HostReport {
                os: os.clone(),
                duration_seconds: *duration_seconds,
                ..host_report(h, *outcome, 0.0)
            },
            Slot::Full(r) => (**r).clone(),
            Slot::Pending => {
                let mut r = host_report(h, Outcome::Interrupted, 0.0);
                r.error = Some(format!(
                    "sweep interrupted ({}) before this host finished",
                    interrupted_by.unwrap_or("cancelled")
                ));
                r
            }
        }
    }
}

/// Hands the heap's free pages back to the OS (glibc keeps freed small
/// blocks resident until asked).
pub(crate) fn give_back_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it has
    // no preconditions and touches no live block.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn host_report(h: &Host, outcome: Outcome, secs: f64) -> HostReport {
    HostReport {
        name: (*h.name).into(),
        address: (**h.shared_address()).into(),
        labels: h.labels.clone(),
        outcome,
        error: None,
        os: None,
        duration_seconds: (secs * 1000.0).round() / 1000.0,
        warnings: Vec::new(),
        incomplete: Vec::new(),
        findings: Vec::new(),
        scanned_by: None,
    }
}

/// Scans one host; never fails, always returns its outcome.
async fn scan_host(h: &Host, ctx: &Ctx) -> HostReport {
    let start = Instant::now();
    let deadline = h.host_timeout.unwrap_or(ctx.settings.host_timeout);
    let result = tokio::time::timeout(
        deadline,
        guarded(&h.name, probe_host(h, ctx, start + deadline)),
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    let report = match result {
        Ok(Ok(mut r)) => {
            r.duration_seconds = (secs * 1000.0).round() / 1000.0;
            r
        }
        Ok(Err(e)) => {
            let mut r = host_report(h, e.outcome(), secs);
            r.error = Some(e.to_string());
            r
        }
        Err(_) => {
            let mut r = host_report(h, Outcome::TimedOut, secs);
            r.error = Some(format!(
                "host did not finish within the host timeout of {}s (connect, probe and parse); raise --host-timeout or `host_timeout:` if the host is just slow",
                deadline.as_secs_f64()
            ));
            r
        }
    };
    // Names and errors may carry what a host sent: control characters are
    // logged as visible escapes, so a text log or terminal cannot be driven.
    let visible = fleetsweep_exporters::formats::visible;
    match report.outcome {
        Outcome::Scanned if report.is_incomplete() => tracing::warn!(
            host = %visible(&report.name), findings = report.findings.len(),
            incomplete = %visible(&report.incomplete.join("; ")), "host scanned incompletely: not counted clean"
        ),
        Outcome::Scanned => tracing::info!(
            host = %visible(&report.name), outcome = %report.outcome, findings = report.findings.len(),
            seconds = report.duration_seconds, "host scanned"
        ),
        _ => tracing::info!(
            host = %visible(&report.name), outcome = %report.outcome,
            error = %visible(report.error.as_deref().unwrap_or("")), "host not scanned"
        ),
    }
    report
}

/// Runs one host's connect, probe, parse and match, turning a panic in any
/// of them (a bug, perhaps reached through a hostile host's output) into
/// that host's `probe_failed`: the sweep, its report and `serve` go on.
async fn guarded<F>(host: &str, work: F) -> Result<HostReport, TransportError>
where
    F: std::future::Future<Output = Result<HostReport, TransportError>>,
{
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(work).catch_unwind().await {
        Ok(result) => result,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            // The message may quote host data: bounded and escaped.
            let what: String = fleetsweep_exporters::formats::visible(&what)
                .chars()
                .take(300)
                .collect();
            tracing::error!(host = %host, panic = %what, "internal error while scanning a host");
            Err(TransportError::Failed(format!(
                "internal error while scanning this host ({what}); the other hosts were \
                 scanned; please report this with the host's probe output"
            )))
        }
    }
}

/// The OS family a host is probed as: the inventory's hint, else Linux.
fn family_of(h: &Host) -> OsFamily {
    h.os.unwrap_or(OsFamily::Linux)
}

/// An offline host's report, from its bundle directory.
async fn read_offline(h: &Host, ctx: &Ctx, dir: &Path) -> Result<HostReport, TransportError> {
    let family = family_of(h);
    let dir = dir.to_path_buf();
    let timeout = h.host_timeout.unwrap_or(ctx.settings.host_timeout);
    let limit = offline::ReadLimit::until(Instant::now() + timeout);
    // A blocking thread cannot be cancelled: when this future is dropped (the
    // host timed out, the sweep was interrupted), the read is told to stop,
    // so it never outlives its host nor holds up the process's exit.
    let _stop_on_drop = AbandonOnDrop(limit.clone());
    // std::fs, up to 64 MiB a file: off the runtime's worker threads.
    let obs = tokio::task::spawn_blocking(move || offline::read_bundle(&dir, family, &limit))
        .await
        .map_err(|e| TransportError::Failed(format!("reading the offline bundle failed: {e}")))?
        .map_err(|e| match e {
            offline::OfflineError::Stopped { .. } => TransportError::TimedOut(format!(
                "{e}: the bundle was not read within the host timeout of {}s; raise --host-timeout or `host_timeout:` if it is just large",
                timeout.as_secs_f64()
            )),
            e => TransportError::Failed(e.to_string()),
        })?;
    let mut r = report_from(h, ctx, &obs, family);
    r.warnings.sort();
    Ok(r)
}

/// Abandons an offline read when dropped.
struct AbandonOnDrop(offline::ReadLimit);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// `until`: the host's deadline, so connection retries stop in time.
async fn probe_host(h: &Host, ctx: &Ctx, until: Instant) -> Result<HostReport, TransportError> {
    // The session, and whether the host asks for sudo (the Windows probe
    // never uses it).
    let (mut session, host_sudo) = match &h.target {
        Target::Offline(o) => return Box::pin(read_offline(h, ctx, &o.dir)).await,
        Target::Local(l) => (Session::Local(LocalSession), l.sudo),
        Target::Ssh(s) => {
            let mut settings = ctx.settings.ssh.clone();
            if let Some(t) = s.connect_timeout {
                settings.connect_timeout = t;
            }
            if s.options.passphrase != crate::transport::Passphrase::None {
                settings.passphrase = s.options.passphrase.clone();
            }
            let session = Box::pin(ssh::connect_pooled(
                &s.ssh,
                &settings,
                &ctx.host_keys,
                &ctx.ssh_pool,
                &s.options.limits,
                Some(until),
            ))
            .await?;
            (Session::Ssh(session), s.options.sudo)
        }
        Target::Winrm(w) => {
            let settings = winrm::WinrmSettings {
                connect_timeout: w.connect_timeout.unwrap_or(ctx.settings.connect_timeout),
                tls: ctx.winrm_tls.clone(),
                ..Default::default()
            };
            let session = Box::pin(winrm::connect(&w.winrm, &settings)).await?;
            (Session::Winrm(Box::new(session)), false)
        }
    };
    let sudo = host_sudo || ctx.settings.sudo;
    // WinRM reaches Windows only: the PowerShell probe, whatever `os:` says.
    let over_winrm = matches!(h.target, Target::Winrm(_));
    let mut family = if over_winrm {
        OsFamily::Windows
    } else {
        family_of(h)
    };
    let mut run = Box::pin(run_probe(&mut session, ctx, family, sudo)).await;
    // No `os:` hint: the Linux probe tells the other families apart. A
    // Windows default shell (cmd.exe or PowerShell) cannot find /bin/sh; a
    // Mac runs it but reports Darwin. Either way the right probe runs next,
    // on the same connection.
    if h.os.is_none() && !over_winrm {
        let next = run.as_ref().ok().and_then(|p| {
            registry::recognise(&FirstRun {
                answered: p.answered,
                stderr: &p.stderr,
                obs: &p.obs,
            })
        });
        if let Some(next) = next {
            family = next;
            run = Box::pin(run_probe(&mut session, ctx, family, sudo)).await;
        }
    }
    Box::pin(session.close()).await;
    let ProbeRun {
        obs,
        answered,
        stderr,
        stdout_head,
        exit_status,
        truncated,
    } = run?;
    if !answered {
        // A PowerShell error may come on standard output (WinRM, SSH to cmd.exe).
        let why = if stderr.trim().is_empty() && !stdout_head.trim().is_empty() {
            first_line(&stdout_head)
        } else {
            first_line(&stderr)
        };
        let msg = if truncated {
            format!(
                "the probe's output was cut off before its answer (--max-output {} bytes, or a host that kept streaming past it)",
                ctx.settings.output_limit
            )
        } else if stderr.contains("sudo") && sudo && probe(family).sudo {
            format!("sudo -n refused to run the probe ({why}); allow the scan user passwordless sudo for /bin/sh, or drop `sudo: true`")
        } else if stderr.trim().is_empty() && !stdout_head.trim().is_empty() {
            format!(
                "the probe printed something other than its output (exit status {}): {why}",
                exit_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "none".into())
            )
        } else {
            format!(
                "the probe script produced no output (exit status {}): {why}",
                exit_status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "none".into())
            )
        };
        return Err(TransportError::Failed(msg));
    }
    let mut r = report_from(h, ctx, &obs, family);
    if truncated {
        r.warnings.push(format!(
            "probe output was cut at {} bytes; findings may be incomplete",
            ctx.settings.output_limit
        ));
        r.incomplete.push(format!(
            "output: cut at {} bytes (--max-output)",
            ctx.settings.output_limit
        ));
    }
    Ok(r)
}

/// One exec of a probe and what came of it.
struct ProbeRun {
    obs: Observations,
    /// The probe's framing (markers, the JSON document) was in the output.
    answered: bool,
    stderr: String,
    /// The start of standard output, for the error of a probe that did not answer.
    stdout_head: String,
    exit_status: Option<u32>,
    truncated: bool,
}

async fn run_probe(
    session: &mut Session,
    ctx: &Ctx,
    family: OsFamily,
    sudo: bool,
) -> Result<ProbeRun, TransportError> {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let roots = ctx.path_roots.get(&family).map(Vec::as_slice);
    let probe = probe(family);
    let (command, stdin) = probe.invocation(sudo, &nonce, roots.unwrap_or_default());
    let out = session
        .exec(&command, &stdin, ctx.settings.output_limit)
        .await?;
    // The output moves into the text (no copy when it is UTF-8) and is freed
    // when this function returns: a report keeps only what was parsed from it.
    let text = capture::into_text(out.stdout);
    let answered = (probe.answered)(&text, &nonce);
    Ok(ProbeRun {
        obs: (probe.parse)(&text, &nonce),
        answered,
        stderr: capture::into_text(out.stderr),
        // Only a probe that did not answer is explained from its stdout.
        stdout_head: if answered {
            String::new()
        } else {
            text.chars().take(1000).collect()
        },
        exit_status: out.exit_status,
        truncated: out.truncated,
    })
}

/// A probed host's report from its observations, judged on the sections it
/// answered ([`completeness::verdict`]): a required section without a usable
/// answer makes it `probe_failed` (keeping what the other sections showed:
/// evidence is evidence), any other section not fully read makes it
/// incomplete. Neither is ever counted clean.
fn report_from(h: &Host, ctx: &Ctx, obs: &Observations, family: OsFamily) -> HostReport {
    let findings = matcher::match_host_with(
        &ctx.catalog,
        &ctx.match_index,
        obs,
        family,
        jiff::Timestamp::now(),
    );
    let verdict = completeness::verdict(&obs.sections, probe(family).required_sections);
    let mut r = host_report(h, Outcome::Scanned, 0.0);
    if !verdict.missing.is_empty() {
        r.outcome = Outcome::ProbeFailed;
        let offline = matches!(h.target, Target::Offline(_));
        let todo = if offline {
            "collect the bundle's files again (docs/offline-bundles.md gives the command for each)"
        } else {
            "run the probe by hand on the host to see why, and check the scan user's rights (`sudo: true`)"
        };
        r.error = Some(format!(
            "required evidence not read, so the host is not known to be clean: {}; {todo}",
            verdict.missing.join("; ")
        ));
    }
    r.incomplete = verdict.incomplete;
    r.os = Some(ctx.os_names.shared(obs.os.clone().unwrap_or(OsInfo {
        family: family.as_str().to_string(),
        name: None,
        version: None,
    })));
    r.warnings = obs
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.section, w.message))
        .collect();
    // Kept until the sweep ends: exactly their room, not what pushing one
    // at a time grew (up to twice; 4 MB of 5,000 affected hosts' 11 MB).
    r.findings = findings;
    r.findings.shrink_to_fit();
    r
}

/// The host's error output, condensed to one bounded line for the report.
fn first_line(s: &str) -> String {
    let lines: Vec<&str> = s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    if lines.is_empty() {
        return "no error output".into();
    }
    lines.join(" / ").chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[tokio::test]
    async fn a_panic_in_one_host_is_that_hosts_probe_failed() {
        let work = async {
            let key: &str = "HKLM\u{e9}";
            // A bug of the kind hostile output reached: slicing inside a character.
            let _ = &key[..5];
            Ok(host_report(
                &crate::inventory::Inventory::local().hosts[0],
                Outcome::Scanned,
                0.0,
            ))
        };
        let err = guarded("win-01", work).await.unwrap_err();
        assert_eq!(err.outcome(), Outcome::ProbeFailed);
        let msg = err.to_string();
        assert!(
            msg.contains(
                "internal error while scanning this host (end byte index 5 is not a char boundary"
            ),
            "{msg}"
        );
        assert!(msg.contains("please report this"), "{msg}");
    }
    use crate::probes::{linux, macos, windows};

    /// The command and standard input that run the probe for `family`.
    fn probe_command(
        family: OsFamily,
        sudo: bool,
        nonce: &str,
        roots: &[String],
    ) -> (String, Vec<u8>) {
        probe(family).invocation(sudo, nonce, roots)
    }

    #[test]
    fn windows_hosts_get_the_encoded_powershell_line() {
        let (cmd, stdin) = probe_command(OsFamily::Windows, true, "n0nce", &["/opt/x".into()]);
        // No sh, no sudo, no stdin: one line any Windows default shell runs.
        assert_eq!(cmd, windows::encoded_command());
        assert!(cmd.starts_with("powershell.exe -NoProfile -NonInteractive "));
        assert!(!cmd.contains("sudo") && !cmd.contains("/bin/sh"));
        assert!(cmd.len() <= windows::CMD_EXE_LIMIT);
        assert!(stdin.is_empty());
    }

    #[test]
    fn macos_and_linux_hosts_get_their_sh_scripts() {
        let roots = vec!["/Library/Application Support/Kaspersky Lab".to_string()];
        let (cmd, stdin) = probe_command(OsFamily::Macos, false, "n0nce", &roots);
        assert_eq!(cmd, macos::command());
        assert!(cmd.contains("pkgutil") && cmd.contains("systemextensionsctl"));
        assert_eq!(stdin, linux::stdin_for("n0nce", &roots));
        let (cmd, _) = probe_command(OsFamily::Macos, true, "n0nce", &roots);
        assert!(cmd.starts_with("sudo -n /bin/sh -c "));
        let (cmd, _) = probe_command(OsFamily::Linux, false, "n0nce", &[]);
        assert!(cmd.starts_with("/bin/sh -c ") && cmd.contains("dpkg-query"));
    }

    /// An inventory of one host, `web-01` at 192.0.2.1 with one label, as
    /// loaded from its file.
    fn web_01() -> crate::inventory::Inventory {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.yaml");
        std::fs::write(
            &path,
            "hosts:\n  - {name: web-01, address: 192.0.2.1, labels: {site: fra1}}\n",
        )
        .unwrap();
        crate::inventory::Inventory::load(&path, &Default::default()).unwrap()
    }

    /// An inventory of the named hosts (in that order), each at 192.0.2.x.
    fn fleet(names: &[&str]) -> Vec<Host> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.yaml");
        let mut text = String::from("hosts:\n");
        for (i, n) in names.iter().enumerate() {
            text += &format!("  - {{name: {n}, address: 192.0.2.{}}}\n", i + 1);
        }
        std::fs::write(&path, text).unwrap();
        crate::inventory::Inventory::load(&path, &Default::default())
            .unwrap()
            .hosts
    }

    /// A sweep's report keeps no list of its hosts' reports: each is built
    /// from its slot, the spill file and the host table when reached, in
    /// name order whatever the inventory's, and a change (the state step's
    /// statuses) goes back to where the host's result is kept.
    #[test]
    fn a_sweeps_hosts_are_built_in_name_order_from_where_the_sweep_left_them() {
        let hosts = fleet(&["web-03", "db-01", "web-01", "app-02"]);
        let failed = |h: &Host| HostReport {
            error: Some("SSH handshake failed: Connection reset by peer".into()),
            ..host_report(h, Outcome::Unreachable, 0.0)
        };
        let mut with_findings = host_report(&hosts[2], Outcome::Scanned, 0.5);
        with_findings.warnings = vec!["rpm: cut".into(), "dpkg: cut".into()];
        let mut spill = spill::Spill::default();
        let slots = vec![
            Slot::of(
                &hosts[0],
                host_report(&hosts[0], Outcome::Scanned, 0.25),
                &mut spill,
            ),
            Slot::Pending,
            Slot::of(&hosts[2], with_findings, &mut spill),
            Slot::of(&hosts[3], failed(&hosts[3]), &mut spill::Spill::disabled()),
        ];
        assert!(matches!(slots[0], Slot::Done { .. }));
        assert!(matches!(slots[2], Slot::Spilled { .. }));
        assert!(matches!(slots[3], Slot::Full(_)));
        let table = Arc::new(HostTable::from(hosts));
        let swept = Arc::new(Swept::new(table, slots, spill, Some("SIGTERM".into())));
        let mut report = Report {
            report_version: REPORT_VERSION,
            sweep: SweepInfo {
                id: "s".into(),
                started: jiff::Timestamp::UNIX_EPOCH,
                finished: jiff::Timestamp::UNIX_EPOCH,
                scanner_version: "0".into(),
                catalogs: vec![],
                shard: None,
                complete: false,
                interrupted_by: Some("SIGTERM".into()),
            },
            summary: Default::default(),
            exceptions: None,
            hosts: HostList::from_source(swept.clone()),
        };
        report.normalize();
        let seen: Vec<(String, Outcome, Option<String>)> = report
            .hosts
            .iter()
            .map(|h| (h.name.to_string(), h.outcome, h.error.clone()))
            .collect();
        let reset = Some("SSH handshake failed: Connection reset by peer".to_string());
        let stopped = Some("sweep interrupted (SIGTERM) before this host finished".to_string());
        assert_eq!(
            seen,
            [
                ("app-02".into(), Outcome::Unreachable, reset),
                ("db-01".into(), Outcome::Interrupted, stopped),
                ("web-01".into(), Outcome::Scanned, None),
                ("web-03".into(), Outcome::Scanned, None),
            ]
        );
        let web_01 = report.hosts.get(2).unwrap();
        assert_eq!(web_01.warnings, ["dpkg: cut", "rpm: cut"], "normalized");
        assert_eq!(web_01.duration_seconds, 0.5);
        assert_eq!(report.hosts.get(3).unwrap().duration_seconds, 0.25);
        assert_eq!(report.summary.hosts.total, 4);
        assert_eq!(report.summary.hosts.interrupted, 1);
        assert!(!report.hosts.is_in_memory());

        // The same report, whole in memory, is equal and serializes the same.
        let whole = HostList::from(report.hosts.clone().into_vec());
        assert_eq!(report.hosts, whole);
        assert_eq!(
            serde_json::to_string(&report.hosts).unwrap(),
            serde_json::to_string(&whole).unwrap()
        );

        // A change goes back to the slot (a clean host given a finding is
        // spilled), once the report alone holds the source.
        drop(whole);
        let copy = report.clone();
        report
            .hosts
            .update(3, |h| h.warnings.push("changed".into()));
        assert!(
            report.hosts.is_in_memory(),
            "shared with `copy`: made its own"
        );
        assert!(copy.hosts.get(3).unwrap().warnings.is_empty());
        drop(copy);
        let mut report = Report {
            hosts: HostList::from_source(swept),
            ..report
        };
        report.hosts.update(3, |h| h.error = Some("changed".into()));
        assert!(!report.hosts.is_in_memory());
        assert_eq!(
            report.hosts.get(3).unwrap().error.as_deref(),
            Some("changed")
        );
    }

    /// A host's report holds a short name and address inline (no block of
    /// their own: 6.4 MB at 100,000 hosts) and shares the inventory entry's
    /// labels (100,000 hosts hold them once, not once more in the report).
    #[test]
    fn a_hosts_report_keeps_its_name_inline_and_shares_its_labels() {
        let inv = web_01();
        let h = &inv.hosts[0];
        let r = host_report(h, Outcome::Unreachable, 0.0);
        assert_eq!((&*r.name, &*r.address), ("web-01", "192.0.2.1"));
        assert!(!r.name.is_heap_allocated() && !r.address.is_heap_allocated());
        assert!(std::ptr::eq(&*r.labels, &*h.labels));
    }

    /// A finished host's result is kept small while the sweep runs when it
    /// is its inventory entry plus an outcome, an OS and a time; whatever
    /// it holds, the report gets it back as it came.
    #[test]
    fn a_hosts_result_comes_back_whole_from_its_slot() {
        let inv = web_01();
        let h = &inv.hosts[0];
        let os = OsNames::default().shared(OsInfo {
            family: "linux".into(),
            name: Some("Debian GNU/Linux".into()),
            version: Some("12".into()),
        });
        let clean = HostReport {
            os: Some(os.clone()),
            duration_seconds: 1.234,
            ..host_report(h, Outcome::Scanned, 0.0)
        };
        let finding: fleetsweep_exporters::Finding = serde_json::from_value(serde_json::json!({
            "rule": "kaspersky/kesl", "vendor": "Kaspersky",
            "product": "Kaspersky Endpoint Security for Linux", "policy": "ban",
            "state": "installed", "status": "new", "version": "12.1.0-1297",
            "first_seen": "2026-12-01T00:00:00Z", "effective": null, "deadline": null,
            "evidence": [{"kind": "package", "source": "dpkg", "value": "kesl 12.1.0-1297"}],
        }))
        .unwrap();
        let mut relabelled = clean.clone();
        relabelled.labels.insert("site".into(), "ams1".into());
        // A name or address the report does not share with its host (the
        // slot would otherwise give back the host's).
        let mut renamed = clean.clone();
        renamed.name = "web-01.fra1.example.org".into();
        let mut readdressed = clean.clone();
        readdressed.address = "192.0.2.99".into();
        let variants = [
            HostReport {
                findings: vec![finding],
                ..clean.clone()
            },
            HostReport {
                warnings: vec!["rpm: database locked".into()],
                ..clean.clone()
            },
            HostReport {
                incomplete: vec!["output: cut at 100 bytes (--max-output)".into()],
                ..clean.clone()
            },
            HostReport {
                outcome: Outcome::Unreachable,
                error: Some("connection refused".into()),
                os: None,
                ..clean.clone()
            },
            HostReport {
                scanned_by: Some(Box::new(fleetsweep_exporters::report::ScannedBy {
                    sweep: "s-1".into(),
                    scanner: Some("eu".into()),
                    shard: None,
                    finished: "2026-12-01T00:00:00Z".parse().unwrap(),
                })),
                ..clean.clone()
            },
            relabelled,
            renamed,
            readdressed,
        ];
        for r in variants {
            // In the spill file, and back as it was, sharing the host's
            // labels where they are the host's.
            let mut spill = spill::Spill::default();
            let mut slot = Slot::of(h, r.clone(), &mut spill);
            assert!(matches!(slot, Slot::Spilled { .. }), "{r:?}");
            let back = slot.report(h, None, &mut spill);
            assert_eq!(back, r);
            assert_eq!(back.labels.same_as(&h.labels), r.labels == h.labels);
            if let Some(os) = &r.os {
                assert!(
                    Arc::ptr_eq(back.os.as_ref().unwrap(), os),
                    "the OS stays shared"
                );
            }
            // Without a spill file, in memory.
            let mut off = spill::Spill::disabled();
            let mut slot = Slot::of(h, r.clone(), &mut off);
            assert!(matches!(slot, Slot::Full(_)), "{r:?}");
            assert_eq!(slot.report(h, None, &mut off), r);
        }
        for r in [
            clean,
            HostReport {
                outcome: Outcome::TimedOut,
                os: None,
                ..host_report(h, Outcome::Scanned, 2.5)
            },
        ] {
            let mut spill = spill::Spill::default();
            let mut slot = Slot::of(h, r.clone(), &mut spill);
            assert!(matches!(slot, Slot::Done { .. }), "{r:?}");
            let back = slot.report(h, None, &mut spill);
            assert!(back.labels.same_as(&h.labels));
            assert_eq!(back, r);
        }
        // A result that cannot be read back is never clean: the host is
        // `probe_failed`, its error says what was lost and why.
        let mut spill = spill::Spill::default();
        let affected = HostReport {
            findings: vec![serde_json::from_value(serde_json::json!({
                "rule": "kaspersky/kesl", "vendor": "Kaspersky", "product": "KESL",
                "policy": "ban", "state": "installed", "status": "new", "version": null,
                "first_seen": "2026-12-01T00:00:00Z", "effective": null, "deadline": null,
                "evidence": [],
            }))
            .unwrap()],
            ..host_report(h, Outcome::Scanned, 1.0)
        };
        let mut slot = Slot::of(h, affected, &mut spill);
        spill.damage();
        let lost = slot.report(h, None, &mut spill);
        assert_eq!(lost.outcome, Outcome::ProbeFailed);
        assert!(matches!(slot, Slot::Full(_)), "lost once, not read again");
        assert_eq!(slot.report(h, None, &mut spill), lost);
        let why = lost.error.unwrap();
        assert!(
            why.starts_with("this host's result was lost after its scan: cannot read the temporary file of host results"),
            "{why}"
        );
        let pending = Slot::Pending.report(h, Some("SIGTERM"), &mut spill::Spill::default());
        assert_eq!(pending.outcome, Outcome::Interrupted);
        assert_eq!(
            pending.error.as_deref(),
            Some("sweep interrupted (SIGTERM) before this host finished")
        );
    }

    #[test]
    fn hosts_are_probed_as_their_hint_else_linux() {
        let mut h = crate::inventory::Inventory::local().hosts.remove(0);
        for (os, want) in [
            (None, OsFamily::Linux),
            (Some(OsFamily::Macos), OsFamily::Macos),
            (Some(OsFamily::Windows), OsFamily::Windows),
            (Some(OsFamily::Linux), OsFamily::Linux),
        ] {
            h.os = os;
            assert_eq!(family_of(&h), want, "{os:?}");
        }
    }

    #[test]
    fn the_linux_probe_points_to_the_other_families() {
        let obs = Observations::default();
        let run = |answered, stderr| FirstRun {
            answered,
            stderr,
            obs: &obs,
        };
        let cmd_exe = "'/bin/sh' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n";
        assert_eq!(
            registry::recognise(&run(false, cmd_exe)),
            Some(OsFamily::Windows)
        );
        // An answering probe is not a Windows shell, whatever its stderr says.
        assert_eq!(registry::recognise(&run(true, cmd_exe)), None);
        assert_eq!(
            registry::recognise(&run(false, "sh: 1: dpkg-query: not found")),
            None
        );
        let darwin = Observations {
            os: Some(fleetsweep_exporters::OsInfo {
                family: "linux".into(),
                name: Some("Darwin".into()),
                version: None,
            }),
            ..Observations::default()
        };
        let mac = FirstRun {
            answered: true,
            stderr: "",
            obs: &darwin,
        };
        assert_eq!(registry::recognise(&mac), Some(OsFamily::Macos));
    }

    /// Hosts running the same system share one copy of it in their reports;
    /// past the bound each host keeps its own (a hostile fleet sending a new
    /// system name per host grows nothing but its own reports).
    #[test]
    fn hosts_running_the_same_system_share_it_and_the_table_is_bounded() {
        let names = OsNames::default();
        let os = |n: usize| OsInfo {
            family: "linux".into(),
            name: Some(format!("Debian {n}")),
            version: Some("12".into()),
        };
        let a = names.shared(os(1));
        let b = names.shared(os(1));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a, os(1));
        for n in 2..OsNames::MAX + 10 {
            assert_eq!(*names.shared(os(n)), os(n));
        }
        let len = names.0.lock().map(|s| s.len()).unwrap_or_default();
        assert_eq!(len, OsNames::MAX);
        assert!(Arc::ptr_eq(&names.shared(os(1)), &a));
    }
}
