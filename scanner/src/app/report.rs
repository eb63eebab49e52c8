//! `fleetsweep report`: renders a sweep from the state store without scanning.
//!
//! The store keeps the full report of every sweep, so an old sweep renders
//! exactly as it was written. `--diff` compares two stored sweeps; `--list`
//! shows what is there. The renderers are pure functions of
//! `fleetsweep_exporters::formats`.

use std::fmt::Write as _;

use anyhow::{bail, Context, Result};

use fleetsweep::cli::ReportArgs;
use fleetsweep::state::{Store, SweepRow};
use fleetsweep_exporters::formats::{self, DiffFormat, Format};
use fleetsweep_exporters::{HistoryPoint, Report};

use super::EXIT_CLEAN;
use fleetsweep::pipeline::state_path;

pub fn report(args: &ReportArgs) -> Result<u8> {
    let Some(path) = state_path(&args.state)? else {
        bail!("`fleetsweep report` renders from the state store: drop --no-state (or pass --state DB)");
    };
    let store = Store::open_existing(&path)?;
    let text = if args.list {
        let rows = store.sweeps()?;
        match args.format.as_str() {
            "json" => serde_json::to_string_pretty(&rows)? + "\n",
            _ => list_table(&rows),
        }
    } else {
        let id = match &args.sweep {
            Some(s) => store.resolve(s)?,
            None => store.latest_id()?.with_context(|| {
                format!(
                    "the state store {} holds no sweep yet: run `fleetsweep scan` first",
                    path.display()
                )
            })?,
        };
        let current = store.report(&id)?;
        match &args.diff {
            Some(prev) => {
                let previous = store.report(&store.resolve(prev)?)?;
                render_diff(&args.format, &previous, &current)?
            }
            None => render(&args.format, &current, &store.history()?)?,
        }
    };
    match &args.output {
        Some(out) => fleetsweep_exporters::file::write_atomic(out, text.as_bytes())
            .with_context(|| format!("cannot write {}", out.display()))?,
        None => print!("{text}"),
    }
    Ok(EXIT_CLEAN)
}

/// One report in one format. `history` (every sweep, oldest first) feeds the
/// burn-down of the html format.
fn render(format: &str, report: &Report, history: &[HistoryPoint]) -> Result<String> {
    let format: Format = format.parse()?;
    Ok(formats::render(format, report, history)?)
}

fn list_table(rows: &[SweepRow]) -> String {
    let mut s = String::new();
    let w = fleetsweep::sweep::summary::column_width("ID", rows.iter().map(|r| r.id.as_str()));
    let _ = writeln!(
        s,
        "{:w$}  {:30}  {:8}  {:>6}  {:>6}  {:8}  REPORT",
        "ID", "FINISHED", "COMPLETE", "HOSTS", "OPEN", "SHARD"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:w$}  {:30}  {:8}  {:>6}  {:>6}  {:8}  {}",
            r.id,
            r.finished.to_string(),
            if r.complete { "yes" } else { "no" },
            r.hosts,
            r.open_findings,
            r.shard.as_deref().unwrap_or("-"),
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
fn render_diff(format: &str, previous: &Report, current: &Report) -> Result<String> {
    let format: DiffFormat = format
        .parse()
        .map_err(|_| anyhow::anyhow!("--diff renders as yaml, json or text, not `{format}`"))?;
    Ok(formats::render_diff(previous, current).render(format)?)
}
