//! `fleetsweep report`: renders a sweep from the state store without scanning.
//!
//! The store keeps the full report of every sweep, so an old sweep renders
//! exactly as it was written. `--diff` compares two stored sweeps; `--list`
//! shows what is there. The renderers are pure functions of
//! `fleetsweep_exporters::formats`.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};

use fleetsweep::cli::{ReportArgs, ReportFormat};
use fleetsweep::diag;
use fleetsweep::state::{Store, SweepRow};
use fleetsweep_exporters::formats::{self, DiffFormat, Format};
use fleetsweep_exporters::{HistoryPoint, Report, REPORT_VERSION};

use super::EXIT_CLEAN;
use fleetsweep::pipeline::state_path;

/// The largest saved report `--from` reads: about 2 KiB a host, so room for
/// far more than 100,000 hosts, while `/dev/zero` is refused.
const REPORT_FILE_LIMIT: u64 = 1024 * 1024 * 1024;

pub fn report(args: &ReportArgs) -> Result<u8> {
    let text = match &args.from {
        Some(file) => from_file(args, file)?,
        None => from_store(args)?,
    };
    match args.output.as_deref() {
        Some(out) if out != Path::new("-") => {
            fleetsweep_exporters::file::write_atomic(out, text.as_bytes())
                .with_context(|| format!("cannot write {}", out.display()))?
        }
        _ => print!("{text}"),
    }
    Ok(EXIT_CLEAN)
}

/// `--from REPORT [--diff OLD_REPORT]`: saved report files, no state store.
fn from_file(args: &ReportArgs, file: &Path) -> Result<String> {
    let current = read_report(file)?;
    match &args.diff {
        Some(prev) => render_diff(args.format, &read_report(Path::new(prev))?, &current),
        // One report has no history: the HTML burn-down shows this sweep alone.
        None => render(args.format, &current, &[history_point(&current)]),
    }
}

/// A sweep, the fleet view or the list, from the state store. Blocking
/// (SQLite file reads, PostgreSQL queries): off the async threads.
fn from_store(args: &ReportArgs) -> Result<String> {
    tokio::task::block_in_place(|| from_store_blocking(args))
}

fn from_store_blocking(args: &ReportArgs) -> Result<String> {
    let Some(location) = state_path(&args.state)? else {
        bail!("`fleetsweep report` renders from the state store: drop --no-state (or pass --state DB), or render a saved report with --from REPORT.yaml");
    };
    let store = Store::open_existing(&location)?;
    if args.list {
        let rows = store.sweeps()?;
        return match args.format.unwrap_or(ReportFormat::Table) {
            ReportFormat::Json => Ok(serde_json::to_string_pretty(&rows)? + "\n"),
            ReportFormat::Table => Ok(list_table(&rows)),
            other => bail!("--list prints a table or json, not `{}`", other.as_str()),
        };
    }
    // A database shared by many scanners shows the fleet unless one sweep is asked for.
    if args.fleet || (args.sweep.is_none() && location.is_shared()) {
        let current = store.fleet(None)?;
        return match &args.diff {
            Some(prev) => {
                let previous = store.fleet(Some(&store.resolve(prev)?))?;
                render_diff(args.format, &previous, &current)
            }
            None => render(args.format, &current, &store.history()?),
        };
    }
    let id = match &args.sweep {
        Some(s) => store.resolve(s)?,
        None => store.latest_id()?.with_context(|| {
            format!("the state store {location} holds no sweep yet: run `fleetsweep scan` first")
        })?,
    };
    let current = store.report(&id)?;
    match &args.diff {
        Some(prev) => {
            let previous = store.report(&store.resolve(prev)?)?;
            render_diff(args.format, &previous, &current)
        }
        None => render(args.format, &current, &store.history()?),
    }
}

/// A report file as `scan --report` wrote it (YAML, or the same model as
/// JSON); errors name the file, line and column.
fn read_report(file: &Path) -> Result<Report> {
    let bytes = diag::read_bounded(file, REPORT_FILE_LIMIT)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        anyhow::anyhow!(
            "{}: not a report: the file is not text (UTF-8)",
            file.display()
        )
    })?;
    if diag::is_blank_yaml(&text) {
        bail!(
            "{}: the file is empty; expected a report written by `fleetsweep scan --report FILE`",
            file.display()
        );
    }
    let mut report: Report = diag::parse_yaml(file, &text).map_err(|d| {
        anyhow::anyhow!("{d} (expected a report written by `fleetsweep scan --report FILE`)")
    })?;
    if report.report_version > REPORT_VERSION {
        bail!(
            "{}: report_version {} was written by a newer fleetsweep; this one reads up to {REPORT_VERSION}",
            file.display(),
            report.report_version
        );
    }
    report.normalize();
    Ok(report)
}

/// The one point of the burn-down a lone report gives.
fn history_point(report: &Report) -> HistoryPoint {
    HistoryPoint {
        sweep_id: report.sweep.id.clone(),
        finished: report.sweep.finished,
        complete: report.sweep.complete,
        hosts: report.summary.hosts.clone(),
        findings: report.summary.findings.clone(),
    }
}

/// One report in one format. `history` (every sweep, oldest first) feeds the
/// burn-down of the html format.
fn render(
    format: Option<ReportFormat>,
    report: &Report,
    history: &[HistoryPoint],
) -> Result<String> {
    let format = match format.unwrap_or(ReportFormat::Yaml) {
        ReportFormat::Yaml => Format::Yaml,
        ReportFormat::Json => Format::Json,
        ReportFormat::Csv => Format::Csv,
        ReportFormat::Junit => Format::Junit,
        ReportFormat::Sarif => Format::Sarif,
        ReportFormat::Html => Format::Html,
        ReportFormat::Plan => Format::Plan,
        ReportFormat::Ansible => Format::Ansible,
        ReportFormat::AnsibleInventory => Format::AnsibleInventory,
        other @ (ReportFormat::Text | ReportFormat::Table) => {
            bail!(
            "`{}` is for {}; a report renders as yaml, json, csv, junit, sarif, html, plan, ansible or ansible-inventory",
            other.as_str(),
            if other == ReportFormat::Text { "--diff" } else { "--list" }
        )
        }
    };
    Ok(formats::render(format, report, history)?)
}

fn list_table(rows: &[SweepRow]) -> String {
    let mut s = String::new();
    let w = fleetsweep::sweep::summary::column_width("ID", rows.iter().map(|r| r.id.as_str()));
    let sw = fleetsweep::sweep::summary::column_width(
        "SCANNER",
        rows.iter().map(|r| r.scanner.as_deref().unwrap_or("-")),
    );
    let _ = writeln!(
        s,
        "{:w$}  {:30}  {:8}  {:>6}  {:>6}  {:8}  {:sw$}  REPORT",
        "ID", "FINISHED", "COMPLETE", "HOSTS", "OPEN", "SHARD", "SCANNER"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:w$}  {:30}  {:8}  {:>6}  {:>6}  {:8}  {:sw$}  {}",
            r.id,
            r.finished.to_string(),
            if r.complete { "yes" } else { "no" },
            r.hosts,
            r.open_findings,
            r.shard.as_deref().unwrap_or("-"),
            r.scanner.as_deref().unwrap_or("-"),
            match &r.pruned {
                Some(t) => format!("pruned {t}"),
                None => "kept".to_string(),
            }
        );
    }
    s
}

/// What changed between two sweeps: `--format yaml|json|text` (text is the
/// one to read in a terminal).
fn render_diff(
    format: Option<ReportFormat>,
    previous: &Report,
    current: &Report,
) -> Result<String> {
    let format = match format.unwrap_or(ReportFormat::Yaml) {
        ReportFormat::Yaml => DiffFormat::Yaml,
        ReportFormat::Json => DiffFormat::Json,
        ReportFormat::Text => DiffFormat::Text,
        other => bail!(
            "--diff renders as yaml, json or text, not `{}`",
            other.as_str()
        ),
    };
    Ok(formats::render_diff(previous, current).render(format)?)
}
