//! The sweep engine: every host of the inventory, concurrently, each ending as
//! exactly one outcome.
//!
//! Shape (after mini-redis): a bounded number of hosts are in flight at once
//! (`buffer_unordered(concurrency)`); each host gets one connection, one exec
//! of the probe script, and a hard deadline. A host that fails is data in the
//! report, never an error of the sweep. An interrupt (SIGINT/SIGTERM, delivered
//! through the `cancel` watch channel) stops new work, drops in-flight
//! connections, and the report lists unfinished hosts as `interrupted`.

pub mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;

use fleetsweep_exporters::{HostReport, OsInfo, Outcome, Report, SweepInfo, REPORT_VERSION};

use crate::catalog::{matcher, Catalog};
use crate::inventory::{Host, TransportKind};
use crate::probes::{linux, macos, offline, windows, Observations};
use crate::transport::known_hosts::HostKeyPolicy;
use crate::transport::local::LocalSession;
use crate::transport::{capture, ssh, winrm, Session, SshSettings, TransportError};

/// Settings of one sweep, validated by the CLI.
#[derive(Debug, Clone)]
pub struct SweepSettings {
    /// Hosts in flight at once.
    pub concurrency: usize,
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
    /// `scan --offline`: host name → its bundle directory. Hosts listed here
    /// are read from their bundle instead of being connected to.
    pub offline: BTreeMap<String, PathBuf>,
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
    /// Directories the Linux probe lists, from the catalog's path signatures.
    path_roots: Vec<String>,
    /// The same for the macOS probe.
    macos_roots: Vec<String>,
}

/// Runs one sweep over `hosts`.
pub async fn run(
    hosts: Vec<Host>,
    catalog: Arc<Catalog>,
    settings: SweepSettings,
    host_keys: Arc<HostKeyPolicy>,
    progress: Arc<dyn Progress>,
    mut cancel: watch::Receiver<Option<String>>,
) -> Report {
    let started = jiff::Timestamp::now();
    let path_roots = catalog.linux_path_roots();
    let macos_roots = macos::path_roots(&catalog);
    let catalogs = catalog.catalogs.clone();
    let ctx = Arc::new(Ctx {
        catalog,
        settings,
        host_keys,
        path_roots,
        macos_roots,
    });
    let total = hosts.len();
    let mut results: Vec<Option<HostReport>> = vec![None; total];
    let concurrency = ctx.settings.concurrency.max(1);
    let mut interrupted_by = cancel.borrow().clone();
    if interrupted_by.is_none() {
        // Each future owns its host (an Arc, not a borrow of `hosts`), so the
        // sweep's future is `Send` and runs on any runtime thread (serve's
        // HTTP handlers need that).
        let shared: Vec<Arc<Host>> = hosts.iter().cloned().map(Arc::new).collect();
        let mut stream = futures::stream::iter(shared.into_iter().enumerate())
            .map(|(i, h)| {
                let ctx = ctx.clone();
                async move { (i, scan_host(&h, &ctx).await) }
            })
            .buffer_unordered(concurrency);
        loop {
            tokio::select! {
                next = stream.next() => match next {
                    Some((i, report)) => {
                        progress.host_done(&report);
                        results[i] = Some(report);
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
    let complete = interrupted_by.is_none();
    let hosts = hosts
        .iter()
        .zip(results)
        .map(|(h, r)| {
            r.unwrap_or_else(|| {
                let mut r = host_report(h, Outcome::Interrupted, 0.0);
                r.error = Some(format!(
                    "sweep interrupted ({}) before this host finished",
                    interrupted_by.as_deref().unwrap_or("cancelled")
                ));
                r
            })
        })
        .collect();
    let mut report = Report {
        report_version: REPORT_VERSION,
        sweep: SweepInfo {
            id: uuid::Uuid::new_v4().to_string(),
            started,
            finished: jiff::Timestamp::now(),
            scanner_version: env!("CARGO_PKG_VERSION").to_string(),
            catalogs,
            shard: ctx.settings.shard.clone(),
            complete,
            interrupted_by,
        },
        summary: Default::default(),
        exceptions: None,
        hosts,
    };
    report.normalize();
    report
}

fn host_report(h: &Host, outcome: Outcome, secs: f64) -> HostReport {
    HostReport {
        name: h.name.clone(),
        address: h.address().to_string(),
        labels: h.labels.clone(),
        outcome,
        error: None,
        os: None,
        duration_seconds: (secs * 1000.0).round() / 1000.0,
        warnings: Vec::new(),
        findings: Vec::new(),
    }
}

/// Scans one host; never fails, always returns its outcome.
async fn scan_host(h: &Host, ctx: &Ctx) -> HostReport {
    let start = Instant::now();
    let deadline = h.host_timeout.unwrap_or(ctx.settings.host_timeout);
    let result = tokio::time::timeout(deadline, probe_host(h, ctx)).await;
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
    match report.outcome {
        Outcome::Scanned => tracing::info!(
            host = %report.name, outcome = %report.outcome, findings = report.findings.len(),
            seconds = report.duration_seconds, "host scanned"
        ),
        _ => tracing::info!(
            host = %report.name, outcome = %report.outcome,
            error = report.error.as_deref().unwrap_or(""), "host not scanned"
        ),
    }
    report
}

/// Quotes a string for a POSIX shell.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The OS family a host is probed as: the inventory's hint, else Linux.
fn family_of(h: &Host) -> String {
    h.os.clone().unwrap_or_else(|| "linux".into())
}

/// The command and standard input that run the probe for `family`.
/// Windows: PowerShell with `-EncodedCommand` (works under cmd.exe and
/// PowerShell as the SSH default shell; `sudo` does not apply). macOS and
/// Linux: their `sh` script, fed nonce and path roots on stdin.
pub fn probe_command(family: &str, sudo: bool, nonce: &str, roots: &[String]) -> (String, Vec<u8>) {
    let command = match family {
        "windows" => return (windows::encoded_command(), Vec::new()),
        "macos" => macos::command(),
        _ => format!("/bin/sh -c {}", sh_quote(linux::SCRIPT)),
    };
    let command = if sudo {
        format!("sudo -n {command}")
    } else {
        command
    };
    (command, linux::stdin_for(nonce, roots))
}

async fn probe_host(h: &Host, ctx: &Ctx) -> Result<HostReport, TransportError> {
    if let Some(dir) = ctx.settings.offline.get(&h.name) {
        let bundle = offline::Bundle {
            dir: dir.clone(),
            name: h.name.clone(),
            os: family_of(h),
            address: None,
            labels: h.labels.clone(),
        };
        let obs =
            offline::read_bundle(&bundle).map_err(|e| TransportError::Failed(e.to_string()))?;
        let mut r = report_from(h, ctx, &obs, &bundle.os);
        r.warnings.sort();
        return Ok(r);
    }
    let mut session = match h.transport {
        TransportKind::Local => Session::Local(LocalSession),
        TransportKind::Ssh => {
            let mut settings = ctx.settings.ssh.clone();
            if let Some(t) = h.connect_timeout {
                settings.connect_timeout = t;
            }
            if h.passphrase != crate::transport::Passphrase::None {
                settings.passphrase = h.passphrase.clone();
            }
            Session::Ssh(ssh::connect(&h.ssh, &settings, &ctx.host_keys).await?)
        }
        TransportKind::Winrm => {
            // The inventory builds the target for every winrm host; a host
            // without one is a bug, reported as such rather than a panic.
            let Some(target) = &h.winrm else {
                return Err(TransportError::Failed(
                    "transport winrm without winrm settings (endpoint, auth, password source)"
                        .into(),
                ));
            };
            let settings = winrm::WinrmSettings {
                connect_timeout: h.connect_timeout.unwrap_or(ctx.settings.connect_timeout),
                ..Default::default()
            };
            Session::Winrm(Box::new(winrm::connect(target, &settings).await?))
        }
    };
    let sudo = h.sudo || ctx.settings.sudo;
    // WinRM reaches Windows only: the PowerShell probe, whatever `os:` says.
    let mut family = if h.transport == TransportKind::Winrm {
        "windows".to_string()
    } else {
        family_of(h)
    };
    let mut run = run_probe(&mut session, ctx, &family, sudo).await;
    // No `os:` hint: the Linux probe tells the other families apart. A
    // Windows default shell (cmd.exe or PowerShell) cannot find /bin/sh; a
    // Mac runs it but reports Darwin. Either way the right probe runs next,
    // on the same connection.
    if h.os.is_none() && h.transport != TransportKind::Winrm {
        let next = match &run {
            Ok(p) if !p.answered && looks_like_windows_shell(&p.stderr) => Some("windows"),
            Ok(p)
                if p.obs
                    .os
                    .as_ref()
                    .and_then(|o| o.name.as_deref())
                    .is_some_and(|n| n == "Darwin") =>
            {
                Some("macos")
            }
            _ => None,
        };
        if let Some(next) = next {
            family = next.to_string();
            run = run_probe(&mut session, ctx, &family, sudo).await;
        }
    }
    session.close().await;
    let ProbeRun {
        obs,
        answered,
        stderr,
        exit_status,
        truncated,
    } = run?;
    if !answered {
        let why = first_line(&stderr);
        let msg = if truncated {
            format!(
                "the probe's output was cut off before its answer (--max-output {} bytes, or a host that kept streaming past it)",
                ctx.settings.output_limit
            )
        } else if stderr.contains("sudo") && sudo && family != "windows" {
            format!("sudo -n refused to run the probe ({why}); allow the scan user passwordless sudo for /bin/sh, or drop `sudo: true`")
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
    let mut r = report_from(h, ctx, &obs, &family);
    if truncated {
        r.warnings.push(format!(
            "probe output was cut at {} bytes; findings may be incomplete",
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
    exit_status: Option<u32>,
    truncated: bool,
}

async fn run_probe(
    session: &mut Session,
    ctx: &Ctx,
    family: &str,
    sudo: bool,
) -> Result<ProbeRun, TransportError> {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let roots = if family == "macos" {
        &ctx.macos_roots
    } else {
        &ctx.path_roots
    };
    let (command, stdin) = probe_command(family, sudo, &nonce, roots);
    let out = session
        .exec(&command, &stdin, ctx.settings.output_limit)
        .await?;
    // The output moves into the text (no copy when it is UTF-8) and is freed
    // when this function returns: a report keeps only what was parsed from it.
    let text = capture::into_text(out.stdout);
    let (obs, answered) = match family {
        "windows" => (windows::parse(&text), text.contains("\"fleetsweep\"")),
        "macos" => (
            macos::parse(&text, &nonce),
            text.contains(&format!("@@fleetsweep:{nonce}:")),
        ),
        _ => (
            linux::parse(&text, &nonce),
            text.contains(&format!("@@fleetsweep:{nonce}:")),
        ),
    };
    Ok(ProbeRun {
        obs,
        answered,
        stderr: capture::into_text(out.stderr),
        exit_status: out.exit_status,
        truncated: out.truncated,
    })
}

/// cmd.exe's and PowerShell's answers to a missing `/bin/sh`.
fn looks_like_windows_shell(stderr: &str) -> bool {
    stderr.contains("is not recognized as an internal or external command")
        || stderr.contains("is not recognized as the name of a cmdlet")
        || stderr.contains("The system cannot find the path specified")
}

/// A scanned host's report from its observations.
fn report_from(h: &Host, ctx: &Ctx, obs: &Observations, family: &str) -> HostReport {
    let findings = matcher::match_host(&ctx.catalog, obs, family, jiff::Timestamp::now());
    let mut r = host_report(h, Outcome::Scanned, 0.0);
    r.os = Some(obs.os.clone().unwrap_or(OsInfo {
        family: family.to_string(),
        name: None,
        version: None,
    }));
    r.warnings = obs
        .warnings
        .iter()
        .map(|w| format!("{}: {}", w.section, w.message))
        .collect();
    r.findings = findings;
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

    #[test]
    fn windows_hosts_get_the_encoded_powershell_line() {
        let (cmd, stdin) = probe_command("windows", true, "n0nce", &["/opt/x".into()]);
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
        let (cmd, stdin) = probe_command("macos", false, "n0nce", &roots);
        assert_eq!(cmd, macos::command());
        assert!(cmd.contains("pkgutil") && cmd.contains("systemextensionsctl"));
        assert_eq!(stdin, linux::stdin_for("n0nce", &roots));
        let (cmd, _) = probe_command("macos", true, "n0nce", &roots);
        assert!(cmd.starts_with("sudo -n /bin/sh -c "));
        let (cmd, _) = probe_command("linux", false, "n0nce", &[]);
        assert!(cmd.starts_with("/bin/sh -c ") && cmd.contains("dpkg-query"));
        let (other, _) = probe_command("something-else", false, "n0nce", &[]);
        assert_eq!(other, cmd, "unknown families get the Linux probe");
    }
}

#[cfg(test)]
mod detect_tests {
    use super::looks_like_windows_shell;

    #[test]
    fn windows_default_shells_are_recognised_by_their_answer() {
        // cmd.exe and PowerShell, asked to run `/bin/sh -c ...`.
        assert!(looks_like_windows_shell(
            "'/bin/sh' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
        ));
        assert!(looks_like_windows_shell(
            "/bin/sh : The term '/bin/sh' is not recognized as the name of a cmdlet, function, script file, or operable program."
        ));
        assert!(!looks_like_windows_shell("sh: 1: dpkg-query: not found"));
        assert!(!looks_like_windows_shell(""));
    }
}
