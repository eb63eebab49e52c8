//! JUnit XML, so a sweep can gate a CI pipeline and show up in its test
//! dashboard: one `<testsuite>` for the sweep, one `<testcase>` per host.
//!
//! - `<failure>`: the host has an open finding (`Status::is_open`) of a
//!   `policy: ban` product; the message lists the rules, the body the evidence.
//! - `<error>`: the host was not scanned (outcome and error text), or was
//!   scanned incompletely (`type="incomplete"`, the sections not fully read),
//!   so it is never shown as passed.
//! - `<system-out>`: everything else worth knowing (watch findings, excepted,
//!   remediated and unverified findings, probe warnings).
//!
//! The XML is written by hand rather than through an XML crate because the
//! hard part is not the tags but the text: host strings may hold characters
//! that XML 1.0 cannot carry at all (most C0 controls, U+FFFE/U+FFFF), which a
//! writer crate passes through and a parser then rejects. [`xml_text`] and
//! [`xml_attr`] replace those with U+FFFD and escape the rest; text is never
//! put in CDATA, so `]]>` from a host is harmless.

use std::fmt::Write as _;

use super::{evidence_line, policy_str, state_str, status_str};
use crate::report::{Finding, HostReport, Outcome, Report};

/// Renders the report as a JUnit XML document.
pub fn render(report: &Report) -> String {
    let tests = report.hosts.len();
    let failures = report.hosts.iter().filter(|h| is_failure(h)).count();
    let errors = report.hosts.iter().filter(|h| is_error(h)).count();
    let time = sweep_seconds(report);
    let suite_name = format!("fleetsweep sweep {}", report.sweep.id);

    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"fleetsweep\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time:.3}\">"
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time:.3}\" timestamp=\"{}\">",
        xml_attr(&suite_name),
        report.sweep.started.strftime("%Y-%m-%dT%H:%M:%S"),
    );
    x.push_str("    <properties>\n");
    let mut props: Vec<(String, String)> = vec![
        ("sweep_id".into(), report.sweep.id.clone()),
        (
            "scanner_version".into(),
            report.sweep.scanner_version.clone(),
        ),
        ("started".into(), report.sweep.started.to_string()),
        ("finished".into(), report.sweep.finished.to_string()),
        ("complete".into(), report.sweep.complete.to_string()),
    ];
    if let Some(shard) = &report.sweep.shard {
        props.push(("shard".into(), shard.clone()));
    }
    if let Some(by) = &report.sweep.interrupted_by {
        props.push(("interrupted_by".into(), by.clone()));
    }
    for c in &report.sweep.catalogs {
        props.push((
            "catalog".into(),
            format!("{} {} ({} rules)", c.name, c.version, c.rules),
        ));
    }
    for (k, v) in props {
        let _ = writeln!(
            x,
            "      <property name=\"{}\" value=\"{}\"/>",
            xml_attr(&k),
            xml_attr(&v)
        );
    }
    x.push_str("    </properties>\n");
    for host in &report.hosts {
        testcase(&mut x, &host);
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

fn is_failure(h: &HostReport) -> bool {
    h.outcome == Outcome::Scanned && h.has_open_ban()
}

/// Not scanned, or scanned incompletely without a failing finding (a failing
/// finding is the stronger news).
fn is_error(h: &HostReport) -> bool {
    h.outcome != Outcome::Scanned || (h.is_incomplete() && !is_failure(h))
}

fn sweep_seconds(report: &Report) -> f64 {
    let d = report.sweep.finished.duration_since(report.sweep.started);
    seconds(d.as_secs_f64())
}

/// A `time` attribute consumers can parse: never negative, NaN or infinite.
fn seconds(s: f64) -> f64 {
    if s.is_finite() {
        s.max(0.0)
    } else {
        0.0
    }
}

fn testcase(x: &mut String, host: &HostReport) {
    let _ = writeln!(
        x,
        "    <testcase classname=\"fleetsweep\" name=\"{}\" time=\"{:.3}\">",
        xml_attr(&host.name),
        seconds(host.duration_seconds)
    );
    let (failing, other): (Vec<&Finding>, Vec<&Finding>) =
        host.findings.iter().partition(|f| f.fails());
    if host.outcome != Outcome::Scanned {
        let message = match &host.error {
            Some(e) => format!("not scanned: {}: {}", host.outcome, e),
            None => format!("not scanned: {}", host.outcome),
        };
        let mut body = format!(
            "host {} ({}) was not scanned: {}",
            host.name, host.address, host.outcome
        );
        if let Some(e) = &host.error {
            let _ = write!(body, "\n{e}");
        }
        let _ = writeln!(
            x,
            "      <error message=\"{}\" type=\"{}\">{}</error>",
            xml_attr(&message),
            host.outcome,
            xml_text(&body)
        );
    } else if failing.is_empty() && host.is_incomplete() {
        let message = format!(
            "scanned incompletely, not known to be clean: {}",
            host.incomplete.join("; ")
        );
        let body = format!(
            "host {} ({}) was scanned, but these probe sections were not fully read:\n{}",
            host.name,
            host.address,
            host.incomplete.join("\n")
        );
        let _ = writeln!(
            x,
            "      <error message=\"{}\" type=\"incomplete\">{}</error>",
            xml_attr(&message),
            xml_text(&body)
        );
    } else if !failing.is_empty() {
        let rules: Vec<&str> = failing.iter().map(|f| f.rule.as_str()).collect();
        let message = format!("banned software: {}", rules.join(", "));
        let body: Vec<String> = failing.iter().map(|f| finding_block(f)).collect();
        let _ = writeln!(
            x,
            "      <failure message=\"{}\" type=\"banned_software\">{}</failure>",
            xml_attr(&message),
            xml_text(&body.join("\n\n"))
        );
    }
    // On a host that was not scanned every finding is carried from earlier
    // sweeps; they are listed as context, not as failures.
    let mut out: Vec<String> = Vec::new();
    let listed: Vec<&Finding> = if host.outcome == Outcome::Scanned {
        other
    } else {
        host.findings.iter().collect()
    };
    for f in listed {
        out.push(finding_block(f));
    }
    for w in &host.warnings {
        out.push(format!("warning: {w}"));
    }
    if !failing.is_empty() || host.outcome != Outcome::Scanned {
        for i in &host.incomplete {
            out.push(format!("not fully read: {i}"));
        }
    }
    if !out.is_empty() {
        let _ = writeln!(
            x,
            "      <system-out>{}</system-out>",
            xml_text(&out.join("\n\n"))
        );
    }
    x.push_str("    </testcase>\n");
}

/// A finding as readable text: headline, dates, evidence lines.
fn finding_block(f: &Finding) -> String {
    let mut s = format!(
        "{} [{}] {} ({}), policy {}",
        f.rule,
        status_str(f.status),
        f.product,
        state_str(f.state),
        policy_str(f.policy)
    );
    if let Some(v) = &f.version {
        let _ = write!(s, ", version {v}");
    }
    let _ = write!(s, "\nfirst seen {}", f.first_seen);
    if let Some(d) = f.due {
        let _ = write!(s, ", due {d}");
    }
    if let Some(t) = f.remediated_at {
        let _ = write!(s, ", remediated {t}");
    }
    if let Some(t) = f.last_verified {
        let _ = write!(s, ", last verified {t}");
    }
    if let Some(e) = &f.exception {
        let _ = write!(
            s,
            "\nexcepted until {} by {}: {} ({})",
            e.expires, e.approver, e.reason, e.source
        );
    }
    for e in &f.evidence {
        let _ = write!(s, "\n  {}", evidence_line(e));
    }
    s
}

/// Whether XML 1.0 can carry `c` at all (the `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
}

/// Escapes element text; characters XML 1.0 cannot hold become U+FFFD.
pub fn xml_text(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            // A bare CR would be normalised away by the parser.
            '\r' => o.push_str("&#13;"),
            c if xml_char(c) => o.push(c),
            _ => o.push('\u{fffd}'),
        }
    }
    o
}

/// Escapes an attribute value (double-quoted). Tab, newline and CR are
/// written as character references, which survive attribute normalisation.
pub fn xml_attr(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' => o.push_str("&#9;"),
            '\n' => o.push_str("&#10;"),
            '\r' => o.push_str("&#13;"),
            c if xml_char(c) => o.push(c),
            _ => o.push('\u{fffd}'),
        }
    }
    o
}
