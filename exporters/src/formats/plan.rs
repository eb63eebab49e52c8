//! The remediation plan: a Markdown checklist an operator can work through,
//! host by host. Nothing is executed; the guidance is the catalog's per-OS
//! text already on each finding (`Finding.remediation`).
//!
//! Order: hosts with open findings of banned products first, then hosts with
//! only open watched findings, then hosts that were not scanned ("verify
//! first": their last known findings are listed, but nobody knows what is on
//! them now), then findings under an exception, for the record.
//!
//! Host text is escaped for Markdown ([`md`]) so a package name cannot turn
//! into a link, a heading or raw HTML when the plan is rendered; evidence
//! goes in fenced blocks whose fence is longer than any backtick run inside.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::text::visible;
use super::{evidence_line, policy_str, state_str, status_str};
use crate::report::{Finding, HostReport, Outcome, Policy, Report, Status};

/// Renders the plan as Markdown.
pub fn render(report: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Remediation plan: sweep {}", md(&report.sweep.id));
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Sweep finished {}{}. Nothing in this plan has been executed; each step is for an operator to carry out and the next sweep verifies it.",
        report.sweep.finished,
        if report.sweep.complete { "" } else { " (incomplete: the sweep was interrupted)" }
    );
    let _ = writeln!(s);

    let hosts: Vec<Cow<'_, HostReport>> = report.hosts.iter().collect();
    let scanned: Vec<&HostReport> = hosts
        .iter()
        .map(|h| &**h)
        .filter(|h| h.outcome == Outcome::Scanned)
        .collect();
    let ban: Vec<&HostReport> = scanned
        .iter()
        .copied()
        .filter(|h| open(h).any(|f| f.policy == Policy::Ban))
        .collect();
    let watch: Vec<&HostReport> = scanned
        .iter()
        .copied()
        .filter(|h| !open(h).any(|f| f.policy == Policy::Ban) && open(h).next().is_some())
        .collect();
    let unscanned: Vec<&HostReport> = hosts
        .iter()
        .map(|h| &**h)
        .filter(|h| h.outcome != Outcome::Scanned)
        .collect();
    let excepted: Vec<(&HostReport, &Finding)> = hosts
        .iter()
        .map(|h| &**h)
        .flat_map(|h| h.findings.iter().map(move |f| (h, f)))
        .filter(|(_, f)| f.status == Status::Excepted)
        .collect();

    let _ = writeln!(
        s,
        "- {} host(s) to remediate (banned software)\n- {} host(s) with watched software only\n- {} host(s) to verify first (not scanned)\n- {} excepted finding(s)",
        ban.len(),
        watch.len(),
        unscanned.len(),
        excepted.len()
    );
    let _ = writeln!(s);

    if ban.is_empty() && watch.is_empty() && unscanned.is_empty() {
        let _ = writeln!(
            s,
            "Nothing to do: every host was scanned and no open finding remains."
        );
        let _ = writeln!(s);
    }
    if !ban.is_empty() {
        let _ = writeln!(s, "## Remove banned software\n");
        for h in &ban {
            host_section(&mut s, h);
        }
    }
    if !watch.is_empty() {
        let _ = writeln!(s, "## Review watched software\n");
        let _ = writeln!(
            s,
            "Watched products are reported, never a failure; remove them where policy requires.\n"
        );
        for h in &watch {
            host_section(&mut s, h);
        }
    }
    if !unscanned.is_empty() {
        let _ = writeln!(s, "## Verify first (not scanned)\n");
        let _ = writeln!(
            s,
            "These hosts could not be scanned, so nothing is known about them now. Fix access and sweep again before planning removal.\n"
        );
        for h in &unscanned {
            let _ = write!(
                s,
                "- [ ] **{}** ({}): {}",
                md(&h.name),
                md(&h.address),
                h.outcome
            );
            if let Some(e) = &h.error {
                let _ = write!(s, ": {}", md(e));
            }
            let _ = writeln!(s);
            for f in &h.findings {
                let _ = write!(
                    s,
                    "  - last known: `{}` {} ({}, status {})",
                    f.rule,
                    md(&f.product),
                    state_str(f.state),
                    status_str(f.status)
                );
                if let Some(t) = f.last_verified {
                    let _ = write!(s, ", last verified {t}");
                }
                let _ = writeln!(s);
            }
        }
        let _ = writeln!(s);
    }
    if !excepted.is_empty() {
        let _ = writeln!(s, "## Excepted (no action until the exception expires)\n");
        for (h, f) in excepted {
            let _ = write!(s, "- **{}**: `{}` {}", md(&h.name), f.rule, md(&f.product));
            if let Some(e) = &f.exception {
                let _ = write!(
                    s,
                    ", until {} (approved by {}: {})",
                    e.expires,
                    md(&e.approver),
                    md(&e.reason)
                );
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s);
    }
    s
}

fn open(h: &HostReport) -> impl Iterator<Item = &Finding> {
    h.findings
        .iter()
        .filter(|f| f.status.is_open() && f.exception.is_none())
}

fn host_section(s: &mut String, h: &HostReport) {
    let _ = writeln!(s, "### {} ({})\n", md(&h.name), md(&h.address));
    if let Some(os) = &h.os {
        let mut line = md(&os.family);
        for part in [&os.name, &os.version].into_iter().flatten() {
            line.push(' ');
            line.push_str(&md(part));
        }
        let _ = writeln!(s, "OS: {line}\n");
    }
    if !h.labels.is_empty() {
        let labels: Vec<String> = h
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", md(k), md(v)))
            .collect();
        let _ = writeln!(s, "Labels: {}\n", labels.join(", "));
    }
    for w in &h.warnings {
        let _ = writeln!(s, "> Warning: {} (findings may be incomplete)\n", md(w));
    }
    // Banned first, then watched; the report order (by rule) within each.
    let mut findings: Vec<&Finding> = open(h).collect();
    findings.sort_by_key(|f| f.policy);
    for f in findings {
        let status = if f.status == Status::Overdue {
            "**overdue**"
        } else {
            status_str(f.status)
        };
        let _ = write!(
            s,
            "- [ ] `{}` {}: {} ({status}",
            f.rule,
            md(&f.product),
            state_str(f.state),
        );
        if let Some(d) = f.due {
            let _ = write!(s, ", due {d}");
        }
        let _ = writeln!(s, ", policy {})", policy_str(f.policy));
        if let Some(v) = &f.version {
            let _ = writeln!(s, "  - Version: {}", md(v));
        }
        let _ = writeln!(s, "  - First seen: {}", f.first_seen);
        if !f.evidence.is_empty() {
            let lines: Vec<String> = f
                .evidence
                .iter()
                .map(|e| visible(&evidence_line(e)))
                .collect();
            let body = lines.join("\n");
            let fence = "`".repeat(longest_backtick_run(&body).max(2) + 1);
            let _ = writeln!(s, "  - Evidence:\n\n    {fence}text");
            for l in &lines {
                let _ = writeln!(s, "    {l}");
            }
            let _ = writeln!(s, "    {fence}\n");
        }
        match &f.remediation {
            Some(r) => {
                // Multi-line guidance stays inside the list item.
                let lines: Vec<String> = r.lines().map(md).collect();
                let _ = writeln!(s, "  - Steps: {}", lines.join("\n    "));
            }
            None => {
                let _ = writeln!(s, "  - Steps: no guidance in the catalog for this OS; remove the product with the vendor's uninstaller and delete the paths in the evidence.");
            }
        }
        let _ = writeln!(
            s,
            "  - Then: sweep this host again; the finding turns `remediated`."
        );
    }
    let _ = writeln!(s);
}

fn longest_backtick_run(s: &str) -> usize {
    let (mut best, mut cur) = (0, 0);
    for c in s.chars() {
        if c == '`' {
            cur += 1;
            best = best.max(cur);
        } else {
            cur = 0;
        }
    }
    best
}

/// Escapes text for inline Markdown: control characters become visible
/// `\u{..}` escapes (one line stays one line), and the characters that start
/// emphasis, links, code, tables, HTML or entities are backslash-escaped
/// (`(` and `!` are harmless once `[` is escaped; values never start a line).
pub fn md(s: &str) -> String {
    const SPECIAL: &[char] = &['\\', '`', '*', '_', '[', ']', '<', '>', '#', '|', '~', '&'];
    let v = visible(s);
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        if SPECIAL.contains(&c) {
            o.push('\\');
        }
        o.push(c);
    }
    o
}
