//! The short human summary printed at the end of a sweep, and the progress bar.
//!
//! Everything shown here may come from a host, so it goes through [`term_safe`]:
//! control characters (escape sequences that could rewrite the terminal) are
//! shown escaped.

use std::fmt::Write;

use fleetsweep_exporters::{FindingState, HostReport, Outcome, Report};

/// Escapes control characters so host output cannot drive the terminal.
pub fn term_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The widest a padded column grows. A longer cell overflows its column
/// rather than widening every row (and `format!` panics on a width over
/// 65,535, which a 70,000-character host name would otherwise ask for).
pub const MAX_COLUMN: usize = 64;

/// The width of a padded column: its widest cell (in characters) or its
/// title, at most [`MAX_COLUMN`].
pub fn column_width<S: AsRef<str>>(title: &str, cells: impl IntoIterator<Item = S>) -> usize {
    cells
        .into_iter()
        .map(|c| c.as_ref().chars().count())
        .chain([title.chars().count()])
        .max()
        .unwrap_or(0)
        .min(MAX_COLUMN)
}

/// The width of the name column of the hosts `listed` picks, as shown
/// (escaped); none when it picks none.
fn name_width(report: &Report, listed: impl Fn(&HostReport) -> bool) -> Option<usize> {
    let mut names = report
        .hosts
        .iter()
        .filter(|h| listed(h))
        .map(|h| term_safe(&h.name))
        .peekable();
    names.peek()?;
    Some(column_width("", names))
}

/// `s` cut to `max` characters (with `…`), for one-line status text.
pub fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn state(s: FindingState) -> &'static str {
    match s {
        FindingState::Installed => "installed",
        FindingState::Remnants => "remnants",
        FindingState::Replaced => "replaced",
    }
}

/// Renders the end-of-sweep summary.
pub fn render(report: &Report) -> String {
    let s = &report.summary.hosts;
    let secs = report
        .sweep
        .finished
        .duration_since(report.sweep.started)
        .as_secs_f64();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Swept {} host{} in {:.1}s: {} scanned ({} clean, {} affected, {} incomplete), {} not scanned",
        s.total,
        if s.total == 1 { "" } else { "s" },
        secs,
        s.scanned,
        s.clean,
        s.affected,
        s.incomplete,
        s.total - s.scanned
    );
    let f = &report.summary.findings;
    let by_status: Vec<String> = [
        ("new", f.new),
        ("open", f.open),
        ("overdue", f.overdue),
        ("reinstalled", f.reinstalled),
        ("remediated", f.remediated),
        ("excepted", f.excepted),
        ("unverified", f.unverified),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(name, n)| format!("{n} {name}"))
    .collect();
    if !by_status.is_empty() {
        let _ = writeln!(out, "Findings by status: {}", by_status.join(", "));
    }
    if let Some(ex) = &report.exceptions {
        let _ = writeln!(
            out,
            "Exceptions: {} applied, {} expired, {} matched nothing",
            ex.applied.len(),
            ex.expired.len(),
            ex.unused.len()
        );
    }
    if !report.sweep.complete {
        let _ = writeln!(
            out,
            "INCOMPLETE: interrupted by {}; unfinished hosts are listed as interrupted",
            report.sweep.interrupted_by.as_deref().unwrap_or("a signal")
        );
    }
    // Each list is two passes over the hosts (a sweep's are built one at a
    // time): the column's width, then the lines; no host is held.
    let with_findings = |h: &HostReport| !h.findings.is_empty();
    if let Some(w) = name_width(report, with_findings) {
        let _ = writeln!(out, "\nFindings:");
        for h in report.hosts.iter().filter(|h| with_findings(h)) {
            for f in &h.findings {
                let version = f
                    .version
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                // The worst kind of install: running, looking like protection,
                // with bases frozen by the update ban.
                let frozen = match &f.signatures {
                    Some(s) if s.frozen => {
                        format!(" (protection frozen: bases of {})", s.last_update)
                    }
                    _ => String::new(),
                };
                let _ = writeln!(
                    out,
                    "  {:w$}  {:9}  {:11}  {:5}  {}{}{frozen}",
                    term_safe(&h.name),
                    state(f.state),
                    format!("{:?}", f.status).to_lowercase(),
                    match f.policy {
                        fleetsweep_exporters::Policy::Ban => "ban",
                        fleetsweep_exporters::Policy::Watch => "watch",
                    },
                    term_safe(&f.product),
                    term_safe(&version),
                    w = w
                );
            }
        }
    }
    let failed = |h: &HostReport| h.outcome != Outcome::Scanned;
    if let Some(w) = name_width(report, failed) {
        let _ = writeln!(out, "\nNot scanned (never counted as clean):");
        for h in report.hosts.iter().filter(|h| failed(h)) {
            let _ = writeln!(
                out,
                "  {:w$}  {:17}  {}",
                term_safe(&h.name),
                h.outcome.as_str(),
                term_safe(h.error.as_deref().unwrap_or("")),
                w = w
            );
        }
    }
    let mut incomplete = report.hosts.iter().filter(|h| h.is_incomplete()).peekable();
    if incomplete.peek().is_some() {
        let _ = writeln!(
            out,
            "\nIncomplete (scanned, but not every probe section was read; never counted as clean):"
        );
        for h in incomplete {
            let _ = writeln!(
                out,
                "  {}  {}",
                term_safe(&h.name),
                term_safe(&h.incomplete.join("; "))
            );
        }
    }
    let mut warned = report
        .hosts
        .iter()
        .filter(|h| !h.warnings.is_empty())
        .peekable();
    if warned.peek().is_some() {
        let _ = writeln!(out, "\nWarnings (scanned, but some evidence is missing):");
        for h in warned {
            for w in &h.warnings {
                let _ = writeln!(out, "  {}  {}", term_safe(&h.name), term_safe(w));
            }
        }
    }
    out
}

/// A progress bar on stderr (only when it is a terminal).
pub struct Bar(indicatif::ProgressBar);

impl Bar {
    pub fn new(total: usize) -> Bar {
        let bar = indicatif::ProgressBar::new(total as u64);
        let style = indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} hosts  {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Bar(bar)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl crate::sweep::Progress for Bar {
    fn host_done(&self, r: &HostReport) {
        self.0.inc(1);
        if r.outcome != Outcome::Scanned {
            self.0.set_message(format!(
                "last failure: {} {}",
                clip(&term_safe(&r.name), MAX_COLUMN),
                r.outcome
            ));
        } else if r.is_incomplete() {
            self.0
                .set_message(format!("last incomplete: {}", term_safe(&r.name)));
        } else if !r.findings.is_empty() {
            self.0.set_message(format!(
                "last finding: {}",
                clip(&term_safe(&r.name), MAX_COLUMN)
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_names_overflow_their_column_instead_of_panicking() {
        // `format!` panics on a width over 65,535: the width is capped.
        let long = "h".repeat(70_000);
        assert_eq!(column_width("NAME", [long.as_str(), "a"]), MAX_COLUMN);
        assert_eq!(column_width("NAME", ["a"]), 4);
        let now = jiff::Timestamp::now();
        let report = Report {
            report_version: fleetsweep_exporters::REPORT_VERSION,
            sweep: fleetsweep_exporters::SweepInfo {
                id: "s".into(),
                started: now,
                finished: now,
                scanner_version: "test".into(),
                catalogs: vec![],
                shard: None,
                complete: true,
                interrupted_by: None,
            },
            summary: fleetsweep_exporters::Summary::default(),
            exceptions: None,
            hosts: vec![HostReport {
                name: long.as_str().into(),
                address: "127.0.0.1".into(),
                labels: Default::default(),
                outcome: Outcome::Unreachable,
                error: Some("refused".into()),
                os: None,
                duration_seconds: 0.5,
                warnings: vec![],
                incomplete: vec![],
                findings: vec![],
                scanned_by: None,
            }]
            .into(),
        };
        let text = render(&report);
        assert!(
            text.contains(&format!("  {long}  unreachable")),
            "the full name is printed"
        );
        assert_eq!(clip(&long, 10).chars().count(), 10);
    }

    #[test]
    fn terminal_escapes_are_neutralised() {
        assert_eq!(term_safe("ok\x1b[2Jx\n"), "ok\\u{1b}[2Jx\\n");
        assert_eq!(term_safe("Kaspersky для Windows"), "Kaspersky для Windows");
    }
}
