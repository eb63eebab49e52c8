//! `fleetsweep scan`: one sweep, its outputs and its exit code.
//!
//! The sweep itself, the state store and the output files are the library's
//! [`Pipeline`]; what is the command line's lives here: which hosts
//! (`-i`/`--local`/`--offline`, `--limit`, `--shard`), the progress bar, the
//! summary on the terminal, signals and the exit code.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;

use fleetsweep::cli::{Cli, ScanArgs};
use fleetsweep::inventory::{self, Host};
use fleetsweep::pipeline::{Finished, Pipeline, Selection, Written};
use fleetsweep::state;
use fleetsweep::sweep::{self, summary, Progress};
use fleetsweep_exporters::Report;

use super::{load_hosts, EXIT_CLEAN, EXIT_FINDINGS, EXIT_PARTIAL, EXIT_SIEM};

/// Loads the hosts `args` select and validates everything else a sweep
/// needs; any error here is a configuration error (exit code 2) and nothing
/// is scanned. Reads files (inventory, catalog, the whole state store): off
/// the async threads.
pub(super) fn prepare(args: &ScanArgs) -> Result<Pipeline> {
    tokio::task::block_in_place(|| {
        let (inventory, shard) = match &args.inventory.offline {
            Some(dir) => offline_hosts(dir, &args.inventory)?,
            None => load_hosts(&args.inventory)?,
        };
        let selection = Selection { inventory, shard };
        Ok(Pipeline::prepare(selection, args)?)
    })
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
            os: Some(b.os),
            labels: b.labels,
            groups: Vec::new().into(),
            host_timeout: None,
            target: inventory::Target::Offline(inventory::OfflineHost {
                dir: b.dir,
                address: b.address.map_or_else(|| "offline".into(), Into::into),
            }),
            name: b.name.into(),
        });
    }
    let shard = super::limit_and_shard(&mut inv, args)?;
    Ok((inv, shard))
}

/// Exit codes (README, "Exit codes") from a finished sweep.
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
    let mut pipeline = prepare(args)?;
    let show_bar =
        !cli.quiet && !args.no_progress && (args.progress || std::io::stderr().is_terminal());
    let bar = show_bar.then(|| Arc::new(summary::Bar::new(pipeline.hosts().len())));
    let progress: Arc<dyn Progress> = match &bar {
        Some(b) => b.clone(),
        None => Arc::new(sweep::Silent),
    };
    let (tx, rx) = watch::channel(None);
    // The handlers are installed here, before the sweep starts: a task that
    // installed them itself might not run until a busy runtime got to it, and
    // a SIGTERM meanwhile would kill the scan without its partial report.
    tokio::spawn(forward_signals(install_signals(), tx));
    let report = pipeline.sweep_all_once(progress, rx).await;
    if let Some(b) = &bar {
        b.finish();
    }
    // A store that cannot record the sweep, or a push that fails, must not
    // lose the sweep: the files and the summary come first, the error after.
    let Finished {
        report,
        recorded,
        written,
        delivered,
    } = pipeline.finish(report).await;
    if !cli.quiet {
        print!("{}", summary::render(&report));
        print!("{}", state_summary(pipeline.state_path()));
        if let Ok(Written {
            report: Some(path), ..
        }) = &written
        {
            println!("\nReport written to {}", path.display());
        }
        for d in &delivered {
            if let Ok(n) = d.result {
                println!("{n} events sent to {} {}", d.output, d.target);
            }
        }
    }
    recorded.context("the sweep could not be recorded in the state store (the report and metrics files were still written)")?;
    written?;
    // The failure itself was logged (an error line, shown even with -q); a
    // scheduled job must fail visibly, so the exit code says it too. The
    // findings are in the report and the state store either way.
    if delivered.iter().any(|d| d.result.is_err()) {
        return Ok(EXIT_SIEM);
    }
    Ok(exit_code(&report))
}

/// Where the remediation history of this scan is kept (or that none is).
fn state_summary(state: Option<&fleetsweep::state::Location>) -> String {
    match state {
        Some(p) => format!("History: {p}\n"),
        None => "History: none (--no-state: every finding is new)\n".to_string(),
    }
}

/// SIGINT and SIGTERM, registered with the OS now (None if that failed).
pub(super) fn install_signals() -> Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>
{
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(int), Ok(term)) => Some((int, term)),
        _ => None,
    }
}

/// SIGINT/SIGTERM → the sweep stops and writes what it has, marked incomplete.
async fn forward_signals(
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
    tx: watch::Sender<Option<String>>,
) {
    let Some((mut int, mut term)) = signals else {
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
