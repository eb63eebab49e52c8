//! The HTML page rendered by a real browser: headless Debian `chromium`,
//! from a file:// URL, with background networking off and every host name
//! resolving to nothing, so the test cannot leave the machine.
//!
//! A hostile `<script>` in a package name would set `document.title` to
//! `pwned`. The page's CSP alone would stop it, so the escaping is also
//! checked on a copy of the page *without* the CSP; two control pages show
//! that scripts do run in this browser and that the CSP does block them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use fleetsweep_exporters::formats::html::CSP;
use fleetsweep_exporters::formats::{render, Format};
use support::*;

fn chromium(dir: &Path, args: &[String]) -> String {
    require("chromium", "chromium");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn dump_dom(dir: &Path, name: &str, html: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, html).unwrap();
    chromium(
        dir,
        &["--dump-dom".into(), format!("file://{}", path.display())],
    )
}

fn title(dom: &str) -> &str {
    let start = dom.find("<title>").expect("no title") + "<title>".len();
    let end = dom[start..].find("</title>").unwrap() + start;
    &dom[start..end]
}

fn page() -> String {
    render(Format::Html, &fleet(), &history()).unwrap()
}

#[test]
fn html_shows_summary_burndown_hosts_and_exceptions_in_a_browser() {
    let dir = workdir("html-content");
    let dom = dump_dom(&dir, "report.html", &page());
    assert_eq!(title(&dom), "fleetsweep report: sweep sweep-0003");
    // Summary: hosts by outcome, findings by status (the browser's DOM).
    for (id, n) in [
        // app-04 has only a remediated finding: clean now.
        ("total", 15),
        ("clean", 3),
        ("affected", 6),
        ("scanned", 9),
        ("unreachable", 1),
        ("auth_failed", 1),
        ("host_key_rejected", 1),
        ("timed_out", 1),
        ("probe_failed", 1),
        ("interrupted", 1),
        ("new", 3),
        ("open", 2),
        ("overdue", 1),
        ("remediated", 1),
        ("reinstalled", 1),
        ("excepted", 1),
        ("unverified", 1),
    ] {
        assert!(
            dom.contains(&format!("id=\"count-{id}\"><b>{n}</b>")),
            "count {id} = {n} not shown"
        );
    }
    // Burn-down: one marker per sweep and series, the incomplete one hollow.
    assert_eq!(dom.matches("<circle").count(), 10);
    assert!(dom.contains("sweep-0002 2026-11-15T06:00:00Z: 6 outstanding (incomplete sweep)"));
    assert!(dom.contains("sweep-0003 2026-11-22T06:00:00Z: 7 outstanding"));
    // Remediated findings are reported once (the sweep that saw them gone):
    // the green line is their running total, 0 + 2 + 6 + 8 + 1.
    assert!(dom.contains("sweep-0003 2026-11-22T06:00:00Z: 17 remediated"));
    assert!(
        dom.contains("5 sweep(s); latest: 7 outstanding, 1 remediated in it, 17 over all sweeps.")
    );
    // Host table: every host, findings with status, state, version, due.
    for h in fleet().hosts.iter().filter(|h| &*h.name != EVIL_HOST) {
        let rows = h.findings.len().max(1);
        let cell = format!("<td class=\"host\" rowspan=\"{rows}\">{}<div", h.name);
        assert!(dom.contains(&cell), "no row for {}", h.name);
    }
    assert_eq!(dom.matches("<td class=\"host\"").count(), 15);
    assert!(dom.contains("<span class=\"tag s-overdue\">overdue</span>"));
    assert!(dom.contains("clean: nothing found"));
    assert!(dom.contains("not scanned: unknown"));
    assert!(dom.contains("auth_failed: connection failed"));
    assert!(dom.contains("<td class=\"rule\">2026-12-01</td>"));
    assert!(
        dom.contains("until 2027-03-31 by ciso@example.com: malware analysis lab, isolated VLAN")
    );
    // Exceptions section.
    assert!(dom.contains("<h3>Applied (1)</h3>"));
    assert!(dom.contains("<h3>Expired (no longer applied) (1)</h3>"));
    assert!(dom.contains("<h3>Unused (matched no finding) (0)</h3>"));
}

#[test]
fn html_hostile_script_renders_as_text_and_never_runs() {
    let dir = workdir("html-hostile");
    let html = page();
    // Self-contained: nothing to fetch, and the CSP forbids it anyway.
    assert!(html.contains(&format!(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
    )));
    for needle in [
        "src=", "href=", "url(", "@import", "<script", "<link", "<img",
    ] {
        assert!(!html.contains(needle), "page contains {needle}");
    }

    let dom = dump_dom(&dir, "report.html", &html);
    assert_eq!(title(&dom), "fleetsweep report: sweep sweep-0003");
    assert!(
        !dom.contains("<script"),
        "a script element made it into the DOM"
    );
    assert!(dom.contains("Kaspersky &lt;script&gt;document.title='pwned'&lt;/script&gt;"));
    assert!(dom.contains("evil-09&lt;b&gt;\"quoted\"&lt;/b&gt;"));
    assert!(dom.contains("warning: rpm failed: &lt;script&gt;"));
    assert!(dom.contains("migration &lt;script&gt;"));
    // Control characters are shown, not passed to the page.
    assert!(dom.contains("\\u{1b}[31m") && dom.contains("\\u{0}f") && dom.contains("\\u{202e}txt"));

    // Without the CSP the escaping alone must hold.
    let no_csp = html.replace(&format!("content=\"{CSP}\""), "content=\"\"");
    assert_ne!(no_csp, html);
    let dom = dump_dom(&dir, "no-csp.html", &no_csp);
    assert_eq!(title(&dom), "fleetsweep report: sweep sweep-0003");

    // Controls: scripts do run here without a CSP, and the CSP blocks them.
    let raw = |csp: &str| {
        format!("<!DOCTYPE html><html><head>{csp}<title>safe</title></head><body>{SCRIPT}</body></html>")
    };
    let dom = dump_dom(&dir, "control.html", &raw(""));
    assert_eq!(
        title(&dom),
        "pwned",
        "the browser did not run scripts at all"
    );
    let dom = dump_dom(
        &dir,
        "control-csp.html",
        &raw(&format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">"
        )),
    );
    assert_eq!(title(&dom), "safe");
}

#[test]
fn html_screenshot_is_a_png() {
    let dir = workdir("html-screenshot");
    let path = dir.join("report.html");
    std::fs::write(&path, page()).unwrap();
    let shot = dir.join("report.png");
    chromium(
        &dir,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000".into(),
            "--hide-scrollbars".into(),
            format!("file://{}", path.display()),
        ],
    );
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    // Width and height from the IHDR chunk.
    let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((w, h), (1280, 2000));
    assert!(
        png.len() > 50_000,
        "suspiciously small screenshot: {} bytes",
        png.len()
    );
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn html_without_history_says_so() {
    let html = render(Format::Html, &fleet(), &[]).unwrap();
    assert!(html.contains("No sweep history"));
    assert!(!html.contains("<svg"));
    let one = &history()[4..];
    let html = render(Format::Html, &fleet(), one).unwrap();
    assert_eq!(html.matches("<circle").count(), 2);
}

#[test]
fn html_of_an_interrupted_sweep_says_it_is_incomplete() {
    let mut r = fleet();
    r.sweep.complete = false;
    r.sweep.interrupted_by = Some("SIGTERM<x>".into());
    let html = render(Format::Html, &r, &history()).unwrap();
    assert!(html.contains(
        "Incomplete sweep: interrupted by SIGTERM&lt;x&gt;. Hosts it did not finish are listed as <b>interrupted</b>, never as clean."
    ));
    assert!(!render(Format::Html, &fleet(), &[])
        .unwrap()
        .contains("Incomplete sweep"));
}
