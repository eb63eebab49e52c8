//! `fleetsweep report`: renders a sweep from the state store without scanning.
//!
//! The store keeps the full report of every sweep, so an old sweep renders
//! exactly as it was written. `--diff` compares two stored sweeps; `--list`
//! shows what is there. Formats other than yaml and json come with the report
//! formats module; [`render`] is where they plug in (one match arm).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use serde::Serialize;

use fleetsweep::cli::ReportArgs;
use fleetsweep::state::{Store, SweepRow};
use fleetsweep_exporters::{HistoryPoint, Outcome, Report, Status};

use super::scan::state_path;
use super::EXIT_CLEAN;

/// Formats `fleetsweep report` will render; only yaml and json are built so far.
const COMING: &[&str] = &["csv", "junit", "sarif", "html", "plan"];

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
                render_diff(&args.format, &diff(&previous, &current))?
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
fn render(format: &str, report: &Report, _history: &[HistoryPoint]) -> Result<String> {
    match format {
        "yaml" => Ok(fleetsweep_exporters::yaml::to_yaml(report)?),
        "json" => Ok(serde_json::to_string_pretty(report)? + "\n"),
        f => bail!(unsupported(f)),
    }
}

fn unsupported(format: &str) -> String {
    if COMING.contains(&format) {
        format!(
            "--format {format} is not in this build yet (csv, junit, sarif, html and plan are coming with the report formats); use yaml or json"
        )
    } else {
        format!("unknown --format `{format}`: one of yaml, json, csv, junit, sarif, html, plan")
    }
}

fn list_table(rows: &[SweepRow]) -> String {
    let mut s = String::new();
    let w = rows.iter().map(|r| r.id.len()).max().unwrap_or(2).max(2);
    let _ = writeln!(
        s,
        "{:w$}  {:30}  {:8}  {:>6}  {:>6}  SHARD",
        "ID", "FINISHED", "COMPLETE", "HOSTS", "OPEN"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:w$}  {:30}  {:8}  {:>6}  {:>6}  {}",
            r.id,
            r.finished.to_string(),
            if r.complete { "yes" } else { "no" },
            r.hosts,
            r.open_findings,
            r.shard.as_deref().unwrap_or("-")
        );
    }
    s
}

/// What changed between two sweeps, sorted by host then rule.
#[derive(Debug, Serialize)]
struct Diff {
    from: String,
    to: String,
    /// Findings in `to` that `from` did not have.
    appeared: Vec<Change>,
    /// Findings of `from` that `to` no longer lists.
    disappeared: Vec<Change>,
    /// Findings in both whose status changed.
    changed: Vec<Change>,
    /// Hosts whose outcome changed (or that are only in one of the two).
    hosts: Vec<HostChange>,
}

#[derive(Debug, Serialize)]
struct Change {
    host: String,
    rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    before: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after: Option<Status>,
}

#[derive(Debug, Serialize)]
struct HostChange {
    host: String,
    before: Option<Outcome>,
    after: Option<Outcome>,
}

fn diff(prev: &Report, cur: &Report) -> Diff {
    let statuses = |r: &Report| -> BTreeMap<(String, String), Status> {
        r.hosts
            .iter()
            .flat_map(|h| {
                h.findings
                    .iter()
                    .map(|f| ((h.name.clone(), f.rule.clone()), f.status))
            })
            .collect()
    };
    let outcomes = |r: &Report| -> BTreeMap<String, Outcome> {
        r.hosts
            .iter()
            .map(|h| (h.name.clone(), h.outcome))
            .collect()
    };
    let (a, b) = (statuses(prev), statuses(cur));
    let mut d = Diff {
        from: prev.sweep.id.clone(),
        to: cur.sweep.id.clone(),
        appeared: Vec::new(),
        disappeared: Vec::new(),
        changed: Vec::new(),
        hosts: Vec::new(),
    };
    let keys: std::collections::BTreeSet<&(String, String)> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let change = |before, after| Change {
            host: k.0.clone(),
            rule: k.1.clone(),
            before,
            after,
        };
        match (a.get(k), b.get(k)) {
            (None, Some(s)) => d.appeared.push(change(None, Some(*s))),
            (Some(s), None) => d.disappeared.push(change(Some(*s), None)),
            (Some(x), Some(y)) if x != y => d.changed.push(change(Some(*x), Some(*y))),
            _ => {}
        }
    }
    let (oa, ob) = (outcomes(prev), outcomes(cur));
    let hosts: std::collections::BTreeSet<&String> = oa.keys().chain(ob.keys()).collect();
    for h in hosts {
        let (x, y) = (oa.get(h).copied(), ob.get(h).copied());
        if x != y {
            d.hosts.push(HostChange {
                host: h.clone(),
                before: x,
                after: y,
            });
        }
    }
    d
}

fn render_diff(format: &str, d: &Diff) -> Result<String> {
    match format {
        "yaml" => Ok(serde_saphyr::to_string(d)?),
        "json" => Ok(serde_json::to_string_pretty(d)? + "\n"),
        f => bail!(unsupported(f)),
    }
}
