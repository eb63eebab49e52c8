//! One self-contained HTML page: summary, remediation burn-down, hosts and
//! exceptions. It must open from a mail attachment or an air-gapped share, so
//! it loads nothing: inline CSS, an inline SVG chart generated here, no
//! script at all, and a Content-Security-Policy that forbids everything else
//! (`default-src 'none'`), so even an escaping bug could not run a script.
//!
//! All host text goes through [`esc`]: HTML-escaped, with control characters
//! shown as `\u{..}`.

use std::fmt::Write as _;

use super::text::visible;
use super::{outcome_count, state_str, status_count, status_str, STATUSES};
use crate::report::{
    ExceptionUse, Finding, HistoryPoint, HostReport, Outcome, Policy, Report, Status,
};

/// The page's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:";

const STYLE: &str = r#"
:root{--fg:#1d2433;--muted:#5b6576;--line:#d9dee7;--bg:#f6f7f9;--card:#fff;--red:#c62828;--amber:#b26a00;--green:#2e7d32;--blue:#1f5fbf;--grey:#6b7280}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",sans-serif;color:var(--fg);background:var(--bg)}
header{background:#1d2433;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:20px}
header p{margin:0;color:#c9d1e0}
main{padding:20px 28px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:16px 20px;margin:0 0 18px;overflow-x:auto}
h2{font-size:16px;margin:0 0 12px}
h3{font-size:14px;margin:14px 0 6px}
.banner{background:#fff4e5;border:1px solid #f0c36d;border-radius:6px;padding:8px 12px;margin:0 0 12px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 12px;min-width:110px}
.card b{display:block;font-size:22px}
.card span{color:var(--muted);font-size:12px}
.card.bad b{color:var(--red)}.card.warn b{color:var(--amber)}.card.good b{color:var(--green)}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:5px 6px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600;background:#fafbfc}
td.host{font-weight:600;overflow-wrap:anywhere;min-width:110px;max-width:200px}
td.rule{white-space:nowrap}
td.ev{min-width:160px;max-width:300px;font-size:11px}
td.out{max-width:170px}
td.st{max-width:170px}
td.addr{white-space:nowrap}
td.prod{max-width:190px}
.muted{color:var(--muted)}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;overflow-wrap:anywhere}
.tag{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;background:#eef1f5;color:var(--fg);white-space:nowrap}
.s-new,.s-open,.s-reinstalled{background:#fde8e8;color:var(--red)}
.s-overdue{background:var(--red);color:#fff}
.s-remediated{background:#e6f4ea;color:var(--green)}
.s-excepted{background:#e8effb;color:var(--blue)}
.s-unverified{background:#eee;color:var(--grey)}
.o-scanned{background:#e6f4ea;color:var(--green)}
.o-fail{background:#fff4e5;color:var(--amber)}
.watch{color:var(--muted);font-size:12px}
svg text{font:11px system-ui,sans-serif;fill:#5b6576}
"#;

/// Escapes text for HTML element content and double-quoted attributes.
pub fn esc(s: &str) -> String {
    let v = visible(s);
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Renders the page. `history` is every sweep, oldest first (may be empty).
pub fn render(report: &Report, history: &[HistoryPoint]) -> String {
    let mut s = String::new();
    let sweep = &report.sweep;
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>fleetsweep report: sweep {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&sweep.id)
    );
    let _ = write!(
        s,
        "<header><h1>fleetsweep report</h1><p>Sweep <span class=\"mono\">{}</span> &middot; {} &rarr; {} &middot; fleetsweep {}{}</p></header>\n<main>\n",
        esc(&sweep.id),
        sweep.started,
        sweep.finished,
        esc(&sweep.scanner_version),
        sweep
            .shard
            .as_deref()
            .map(|sh| format!(" &middot; shard {}", esc(sh)))
            .unwrap_or_default()
    );
    summary(&mut s, report);
    burndown(&mut s, history);
    hosts(&mut s, report);
    exceptions(&mut s, report);
    s.push_str("</main>\n</body>\n</html>\n");
    s
}

fn summary(s: &mut String, report: &Report) {
    s.push_str("<section id=\"summary\"><h2>Summary</h2>\n");
    if !report.sweep.complete {
        let by = report
            .sweep
            .interrupted_by
            .as_deref()
            .map(|b| format!(" by {}", esc(b)))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<p class=\"banner\">Incomplete sweep: interrupted{by}. Hosts it did not finish are listed as <b>interrupted</b>, never as clean.</p>"
        );
    }
    let h = &report.summary.hosts;
    s.push_str("<h3>Hosts</h3><div class=\"cards\">");
    card(s, "total", h.total, "");
    card(s, "clean", h.clean, "good");
    card(
        s,
        "affected",
        h.affected,
        if h.affected > 0 { "bad" } else { "" },
    );
    card(
        s,
        "incomplete",
        h.incomplete,
        if h.incomplete > 0 { "warn" } else { "" },
    );
    for o in Outcome::ALL {
        let n = outcome_count(h, o);
        let class = if o != Outcome::Scanned && n > 0 {
            "warn"
        } else {
            ""
        };
        card(s, o.as_str(), n, class);
    }
    s.push_str("</div>\n<h3>Findings</h3><div class=\"cards\">");
    for st in STATUSES {
        let n = status_count(&report.summary.findings, st);
        let class = match st {
            Status::New | Status::Open | Status::Overdue | Status::Reinstalled if n > 0 => "bad",
            Status::Remediated if n > 0 => "good",
            _ => "",
        };
        card(s, status_str(st), n, class);
    }
    s.push_str("</div>\n");
    if !report.sweep.catalogs.is_empty() {
        let cats: Vec<String> = report
            .sweep
            .catalogs
            .iter()
            .map(|c| format!("{} {} ({} rules)", esc(&c.name), esc(&c.version), c.rules))
            .collect();
        let _ = writeln!(s, "<p class=\"muted\">Catalogs: {}</p>", cats.join(", "));
    }
    s.push_str("</section>\n");
}

fn card(s: &mut String, label: &str, n: usize, class: &str) {
    let _ = write!(
        s,
        "<div class=\"card {class}\" id=\"count-{label}\"><b>{n}</b><span>{label}</span></div>"
    );
}

/// Outstanding = new + open + overdue + reinstalled (what still has to go).
fn outstanding(p: &HistoryPoint) -> usize {
    p.findings.new + p.findings.open + p.findings.overdue + p.findings.reinstalled
}

fn burndown(s: &mut String, history: &[HistoryPoint]) {
    s.push_str("<section id=\"burndown\"><h2>Remediation burn-down</h2>\n");
    if history.is_empty() {
        s.push_str("<p class=\"muted\">No sweep history (the report was rendered without a state store).</p></section>\n");
        return;
    }
    let (w, h) = (760.0_f64, 260.0_f64);
    let (left, right, top, bottom) = (48.0, 16.0, 16.0, 40.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    // A remediated finding is reported in the sweep that saw it gone, then
    // dropped: the burn-down shows the running total, which only grows.
    let remediated: Vec<usize> = history
        .iter()
        .scan(0usize, |sum, p| {
            *sum += p.findings.remediated;
            Some(*sum)
        })
        .collect();
    let outstanding_v: Vec<usize> = history.iter().map(outstanding).collect();
    let max_v = outstanding_v
        .iter()
        .chain(remediated.iter())
        .copied()
        .max()
        .unwrap_or(0);
    let y_max = nice_ceiling(max_v);
    let t0 = history.first().map(|p| p.finished.as_second()).unwrap_or(0);
    let t1 = history.last().map(|p| p.finished.as_second()).unwrap_or(0);
    let span = (t1 - t0) as f64;
    let n = history.len();
    // Time on the x axis when the sweeps span time; evenly spaced otherwise.
    let x_of = |i: usize, p: &HistoryPoint| -> f64 {
        if span > 0.0 {
            left + pw * ((p.finished.as_second() - t0) as f64 / span)
        } else if n > 1 {
            left + pw * (i as f64 / (n - 1) as f64)
        } else {
            left + pw / 2.0
        }
    };
    let y_of = |v: usize| top + ph - ph * (v as f64 / y_max as f64);

    let _ = writeln!(
        s,
        "<svg role=\"img\" aria-label=\"Outstanding and remediated findings per sweep\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for k in 0..=4 {
        let v = y_max * k / 4;
        let y = y_of(v);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e3e7ee\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>",
            left + pw,
            left - 6.0,
            y + 4.0
        );
    }
    let ticks: Vec<usize> = match n {
        1 => vec![0],
        2 => vec![0, 1],
        _ => vec![0, n / 2, n - 1],
    };
    for i in ticks {
        if let Some(p) = history.get(i) {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                x_of(i, p),
                h - bottom + 16.0,
                p.finished.strftime("%Y-%m-%d %H:%M")
            );
        }
    }
    let series: [(&str, &str, &[usize]); 2] = [
        ("outstanding", "#c62828", &outstanding_v),
        ("remediated", "#2e7d32", &remediated),
    ];
    for (name, color, values) in series {
        let value = |i: usize| values.get(i).copied().unwrap_or(0);
        let pts: Vec<String> = history
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{:.1},{:.1}", x_of(i, p), y_of(value(i))))
            .collect();
        let _ = writeln!(
            s,
            "<polyline class=\"series-{name}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
        for (i, p) in history.iter().enumerate() {
            // Hollow markers for incomplete sweeps: their counts are a lower bound.
            let fill = if p.complete { color } else { "#fff" };
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{fill}\" stroke=\"{color}\" stroke-width=\"1.5\"><title>{} {}: {} {}{}</title></circle>",
                x_of(i, p),
                y_of(value(i)),
                esc(&p.sweep_id),
                p.finished,
                value(i),
                name,
                if p.complete { "" } else { " (incomplete sweep)" }
            );
        }
    }
    let ly = h - 8.0;
    let _ = writeln!(
        s,
        "<rect x=\"{left}\" y=\"{:.1}\" width=\"12\" height=\"3\" fill=\"#c62828\"/><text x=\"{:.1}\" y=\"{ly:.1}\">outstanding (new + open + overdue + reinstalled)</text>\
         <rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"3\" fill=\"#2e7d32\"/><text x=\"{:.1}\" y=\"{ly:.1}\">remediated (running total)</text>",
        ly - 4.0,
        left + 16.0,
        left + 330.0,
        ly - 4.0,
        left + 346.0
    );
    s.push_str("</svg>\n");
    let last = history.last();
    if let Some(p) = last {
        let _ = writeln!(
            s,
            "<p class=\"muted\">{} sweep(s); latest: {} outstanding, {} remediated in it, {} over all sweeps.</p>",
            n,
            outstanding(p),
            p.findings.remediated,
            remediated.last().copied().unwrap_or(0)
        );
    }
    s.push_str("</section>\n");
}

/// An axis maximum of four whole steps of 1, 2 or 5 × 10^k covering `v`.
fn nice_ceiling(v: usize) -> usize {
    let target = v.div_ceil(4).max(1);
    let mut base = 1usize;
    loop {
        for m in [1usize, 2, 5] {
            let step = m.saturating_mul(base);
            if step >= target {
                return step.saturating_mul(4);
            }
        }
        base = base.saturating_mul(10);
    }
}

fn outcome_tag(o: Outcome) -> String {
    let class = if o == Outcome::Scanned {
        "o-scanned"
    } else {
        "o-fail"
    };
    format!("<span class=\"tag {class}\">{o}</span>")
}

fn hosts(s: &mut String, report: &Report) {
    s.push_str("<section id=\"hosts\"><h2>Hosts</h2>\n<table>\n<thead><tr><th>Host</th><th>Address</th><th>Outcome</th><th>Rule</th><th>Product</th><th>Status</th><th>State</th><th>Version</th><th>Due</th><th>Evidence</th></tr></thead>\n<tbody>\n");
    for h in &report.hosts {
        host_rows(s, &h);
    }
    s.push_str("</tbody></table></section>\n");
}

fn host_rows(s: &mut String, h: &HostReport) {
    let rows = h.findings.len().max(1);
    let mut head = format!("<td class=\"host\" rowspan=\"{rows}\">{}", esc(&h.name));
    if !h.labels.is_empty() {
        let labels: Vec<String> = h
            .labels
            .iter()
            .map(|(k, v)| format!("{}={}", esc(k), esc(v)))
            .collect();
        let _ = write!(head, "<div class=\"muted mono\">{}</div>", labels.join(" "));
    }
    let _ = write!(
        head,
        "</td><td class=\"mono addr\" rowspan=\"{rows}\">{}</td><td class=\"out\" rowspan=\"{rows}\">{}",
        esc(&h.address),
        outcome_tag(h.outcome)
    );
    if let Some(e) = &h.error {
        let _ = write!(head, "<div class=\"muted\">{}</div>", esc(e));
    }
    if h.is_incomplete() {
        head.push_str("<div><span class=\"tag o-fail\">incomplete</span></div>");
    }
    for i in &h.incomplete {
        let _ = write!(
            head,
            "<div class=\"muted\">not fully read: {}</div>",
            esc(i)
        );
    }
    for w in &h.warnings {
        let _ = write!(head, "<div class=\"muted\">warning: {}</div>", esc(w));
    }
    head.push_str("</td>");
    if h.findings.is_empty() {
        let what = if h.is_incomplete() {
            "incomplete: nothing found in what was read, not known to be clean"
        } else if h.outcome == Outcome::Scanned {
            "clean: nothing found"
        } else {
            "not scanned: unknown"
        };
        let _ = writeln!(
            s,
            "<tr>{head}<td colspan=\"7\" class=\"muted\">{what}</td></tr>"
        );
        return;
    }
    for (i, f) in h.findings.iter().enumerate() {
        let lead = if i == 0 { head.as_str() } else { "" };
        let _ = writeln!(s, "<tr>{lead}{}</tr>", finding_cells(f));
    }
}

fn finding_cells(f: &Finding) -> String {
    let watch = if f.policy == Policy::Watch {
        " <span class=\"watch\">(watch)</span>"
    } else {
        ""
    };
    let mut status = format!("<span class=\"tag s-{0}\">{0}</span>", status_str(f.status));
    if let Some(e) = &f.exception {
        let _ = write!(
            status,
            "<div class=\"muted\">until {} by {}: {}</div>",
            e.expires,
            esc(&e.approver),
            esc(&e.reason)
        );
    }
    if let Some(t) = f.remediated_at {
        let _ = write!(status, "<div class=\"muted\">{t}</div>");
    }
    if let Some(t) = f.last_verified {
        let _ = write!(status, "<div class=\"muted\">last verified {t}</div>");
    }
    let evidence: Vec<String> = f
        .evidence
        .iter()
        .map(|e| esc(&super::evidence_line(e)))
        .collect();
    format!(
        "<td class=\"mono rule\">{}</td><td class=\"prod\">{}{watch}</td><td class=\"st\">{status}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"rule\">{}</td><td class=\"mono ev\">{}</td>",
        esc(&f.rule),
        esc(&f.product),
        state_str(f.state),
        f.version.as_deref().map(esc).unwrap_or_default(),
        f.due.map(|d| d.to_string()).unwrap_or_default(),
        evidence.join("<br>")
    )
}

fn exceptions(s: &mut String, report: &Report) {
    let Some(x) = &report.exceptions else {
        return;
    };
    s.push_str("<section id=\"exceptions\"><h2>Exceptions</h2>\n");
    for (title, list) in [
        ("Applied", &x.applied),
        ("Expired (no longer applied)", &x.expired),
        ("Unused (matched no finding)", &x.unused),
    ] {
        let _ = writeln!(s, "<h3>{title} ({})</h3>", list.len());
        if list.is_empty() {
            continue;
        }
        s.push_str("<table><thead><tr><th>Hosts</th><th>Rule</th><th>Reason</th><th>Approver</th><th>Expires</th><th>Findings</th><th>Source</th></tr></thead><tbody>\n");
        for e in list.iter() {
            exception_row(s, e);
        }
        s.push_str("</tbody></table>\n");
    }
    s.push_str("</section>\n");
}

fn exception_row(s: &mut String, e: &ExceptionUse) {
    let _ = writeln!(
        s,
        "<tr><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
        esc(&e.hosts),
        esc(&e.rule),
        esc(&e.reason),
        esc(&e.approver),
        e.expires,
        e.findings,
        esc(&e.source)
    );
}
