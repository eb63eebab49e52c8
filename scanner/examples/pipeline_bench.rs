//! Benchmark of what happens after a sweep, at fleet scale: N synthetic but
//! realistic host results go through the real pipeline steps (the SQLite state
//! store, the YAML report file, the metrics textfile) and the report formats,
//! and each step prints its wall time, the peak RSS it reached and the size of
//! what it wrote. A figure, not a test.
//!
//! ```text
//! cargo run --example pipeline_bench -- 100000 [DIR]
//! ```
//!
//! The peak of each step is measured by resetting the kernel's high-water mark
//! (`echo 5 > /proc/self/clear_refs`) before it and reading `VmHWM` after it.
//! Two sweeps are recorded into the same store: the first starts the history,
//! the second derives statuses from it (the steady state of a daemon); the
//! figures printed are the second's.
//!
//! The fleet: 97% scanned (2% of those with a Kaspersky finding carrying the
//! evidence a real probe reports, 5% with a probe warning), the rest
//! unreachable, timed out or refused; four inventory labels per host; Linux,
//! Windows and macOS hosts.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use fleetsweep::cli::{Cli, Command, ScanArgs};
use fleetsweep::inventory::{Host, Inventory, OfflineHost, Target};
use fleetsweep::pipeline::{Pipeline, Recorded, Selection};
use fleetsweep::state::Store;
use fleetsweep::sweep::Silent;
use fleetsweep_exporters::formats::{self, Format};
use fleetsweep_exporters::{
    Evidence, Finding, FindingState, HostReport, OsInfo, Outcome, Policy, Report, SignatureAge,
    Status, Summary, SweepInfo, REPORT_VERSION,
};

/// The system allocator, counting live heap bytes and their peak: exact
/// figures per step, where RSS keeps what the allocator does not give back.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            grew(new_size);
        }
        p
    }
}

fn grew(n: usize) {
    let live = LIVE.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| {
            a.replace(['_', ','], "")
                .parse()
                .expect("N: a number of hosts")
        })
        .unwrap_or(10_000);
    let kept;
    let dir: PathBuf = match args.next() {
        Some(d) => PathBuf::from(d),
        None => {
            kept = tempfile::tempdir().expect("a temporary directory");
            kept.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).expect("the output directory");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(run(n, &dir));
}

async fn run(n: usize, dir: &Path) {
    let path = |name: &str| dir.join(name).display().to_string();
    let (db, yaml, prom) = (
        path("state.db"),
        path("report.yaml"),
        path("fleetsweep.prom"),
    );
    let _ = std::fs::remove_file(&db);
    let args = scan_args(&[
        "--state",
        &db,
        "--report",
        &yaml,
        "--metrics-file",
        &prom,
        "--metric-label",
        "site",
    ]);
    let pipeline = Pipeline::prepare(
        Selection {
            inventory: Inventory::local(),
            shard: None,
        },
        &args,
    )
    .unwrap_or_else(|e| panic!("{}", fleetsweep::pipeline::Chain(&e)));
    println!("pipeline_bench: {n} hosts, files in {}", dir.display());
    println!(
        "{:<28} {:>9} {:>11} {:>11} {:>10} {:>12}",
        "step", "seconds", "heap peak", "heap after", "RSS peak", "output"
    );
    let base = LIVE.load(Ordering::Relaxed) as u64;
    row("baseline (runtime, catalog)", 0.0, peak(), rss(), None);

    // The sweep's result collection: N inventory hosts, each an offline host
    // whose bundle is missing, so each fails at once (probe_failed) without
    // reaching anything, and goes through the same collection as any host.
    reset_peak();
    let t = Instant::now();
    let missing = dir.join("no-such-bundle");
    let inventory: Vec<Host> = (0..n)
        .map(|i| Host {
            name: format!("lnx-{i:06}.{}.corp.example.net", SITES[i % SITES.len()]).into(),
            os: Some(fleetsweep::os::OsFamily::Linux),
            labels: labels(i),
            groups: vec!["linux".into(), SITES[i % SITES.len()].into()].into(),
            host_timeout: None,
            target: Target::Offline(OfflineHost {
                dir: missing.clone(),
                address: format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256).into(),
            }),
        })
        .collect();
    let sweeper = Pipeline::prepare(
        Selection {
            inventory: Inventory {
                hosts: inventory,
                known_hosts_files: Vec::new(),
            },
            shard: None,
        },
        &scan_args(&["--no-state", "--concurrency", "64"]),
    )
    .unwrap_or_else(|e| panic!("{}", fleetsweep::pipeline::Chain(&e)));
    row(
        "inventory hosts",
        t.elapsed().as_secs_f64(),
        peak(),
        rss(),
        None,
    );
    reset_peak();
    let t = Instant::now();
    let (_keep, running) = tokio::sync::watch::channel(None);
    // As `scan` does.
    let swept = sweeper.sweep_all(Arc::new(Silent), running).await;
    assert_eq!(swept.summary.hosts.probe_failed, n);
    row(
        "sweep result collection",
        t.elapsed().as_secs_f64(),
        peak(),
        rss(),
        None,
    );
    drop(swept);
    drop(sweeper);

    // Sweep 1 starts the history; sweep 2 is measured.
    let first = fleet(n, 0);
    let Recorded { error, .. } = pipeline.record(first).await;
    assert!(error.is_none(), "{error:?}");

    reset_peak();
    let t = Instant::now();
    let report = fleet(n, 1);
    let built = (t.elapsed().as_secs_f64(), peak(), rss());
    row("host results in memory", built.0, built.1, built.2, None);
    let per_host = (LIVE.load(Ordering::Relaxed) as u64).saturating_sub(base) / n.max(1) as u64;

    reset_peak();
    let t = Instant::now();
    let Recorded {
        report,
        metrics,
        error,
        ..
    } = pipeline.record(report).await;
    assert!(error.is_none(), "{error:?}");
    row(
        "state store (record)",
        t.elapsed().as_secs_f64(),
        peak(),
        rss(),
        Some(file_size(&db) + file_size(&format!("{db}-wal"))),
    );

    let report = Arc::new(report);
    reset_peak();
    let t = Instant::now();
    pipeline.write(report.clone(), metrics).await.unwrap();
    row(
        "report + metrics files",
        t.elapsed().as_secs_f64(),
        peak(),
        rss(),
        Some(file_size(&yaml) + file_size(&prom)),
    );
    let history = Store::open_existing_file(Path::new(&db))
        .and_then(|s| s.history())
        .unwrap();
    for format in [
        Format::Json,
        Format::Csv,
        Format::Junit,
        Format::Sarif,
        Format::Html,
        Format::Plan,
    ] {
        reset_peak();
        let t = Instant::now();
        let text = formats::render(format, &report, &history).unwrap();
        let secs = t.elapsed().as_secs_f64();
        let (p, r) = (peak(), rss());
        row(
            &format!("format {}", format.as_str()),
            secs,
            p,
            r,
            Some(text.len() as u64),
        );
    }
    println!(
        "files: state {} (+wal {}), report.yaml {}, metrics {}; host results {} B/host on the heap",
        human(file_size(&db)),
        human(file_size(&format!("{db}-wal"))),
        human(file_size(&yaml)),
        human(file_size(&prom)),
        per_host
    );
    println!("heap: live bytes (counting allocator), peak since the step began; RSS peak: VmHWM since the step began");
}

fn scan_args(extra: &[&str]) -> ScanArgs {
    let argv = ["fleetsweep", "scan", "--local"].iter().chain(extra);
    match Cli::try_parse_from(argv).map(|c| c.command) {
        Ok(Command::Scan(args)) => *args,
        other => panic!("not a scan command line: {other:?}"),
    }
}

/// One step's figures: heap peak and heap after (MiB, exact), the RSS
/// peak (MiB, VmHWM), what it wrote.
fn row(step: &str, secs: f64, rss_peak: u64, _rss_after: u64, output: Option<u64>) {
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "{step:<28} {secs:>9.3} {:>11.1} {:>11.1} {:>10.1} {:>12}",
        mib(PEAK.load(Ordering::Relaxed) as u64),
        mib(LIVE.load(Ordering::Relaxed) as u64),
        mib(rss_peak),
        output.map(human).unwrap_or_default()
    );
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / 1048576.0),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn file_size(p: &str) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// A field of /proc/self/status, in bytes.
fn status_field(name: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn rss() -> u64 {
    status_field("VmRSS:")
}

fn peak() -> u64 {
    status_field("VmHWM:")
}

/// Resets VmHWM to the current RSS (Linux 4.0+) and the heap peak to the live heap.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// The swept fleet: `n` hosts, deterministic; `sweep` moves a few findings
/// (some removed, some new) so the second sweep has remediations.
fn fleet(n: usize, sweep: u64) -> Report {
    let now = jiff::Timestamp::now();
    let mut hosts: Vec<HostReport> = (0..n).map(|i| host(i, sweep, now)).collect();
    hosts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut r = Report {
        report_version: REPORT_VERSION,
        sweep: SweepInfo {
            id: uuid::Uuid::new_v4().to_string(),
            started: now,
            finished: now,
            scanner_version: env!("CARGO_PKG_VERSION").into(),
            catalogs: vec![fleetsweep_exporters::CatalogInfo {
                name: "kaspersky".into(),
                version: "2026.11.22".into(),
                rules: 26,
            }],
            shard: None,
            complete: true,
            interrupted_by: None,
        },
        summary: Summary::default(),
        exceptions: None,
        hosts: hosts.into(),
    };
    r.normalize();
    r
}

const SITES: [&str; 6] = ["fra1", "ams2", "lon1", "nyc3", "sgp1", "syd1"];
const TEAMS: [&str; 5] = ["payments", "search", "platform", "data", "web"];

fn host(i: usize, sweep: u64, now: jiff::Timestamp) -> HostReport {
    let site = SITES[i % SITES.len()];
    let family = match i % 10 {
        0..=6 => "linux",
        7 | 8 => "windows",
        _ => "macos",
    };
    let labels = labels(i);
    let outcome = match i % 100 {
        97 => Outcome::Unreachable,
        98 => Outcome::TimedOut,
        99 => Outcome::AuthFailed,
        _ => Outcome::Scanned,
    };
    let scanned = outcome == Outcome::Scanned;
    let os = scanned.then(|| match family {
        "linux" => OsInfo {
            family: family.into(),
            name: Some(
                if i.is_multiple_of(2) {
                    "Ubuntu"
                } else {
                    "Red Hat Enterprise Linux"
                }
                .into(),
            ),
            version: Some(if i.is_multiple_of(2) { "22.04" } else { "9.4" }.into()),
        },
        "windows" => OsInfo {
            family: family.into(),
            name: Some("Microsoft Windows Server 2022 Standard".into()),
            version: Some("10.0.20348".into()),
        },
        _ => OsInfo {
            family: family.into(),
            name: Some("macOS".into()),
            version: Some("14.6.1".into()),
        },
    });
    let os = os.map(std::sync::Arc::new);
    let error = match outcome {
        Outcome::Unreachable => Some(format!("connect to 10.{}.{}.{}:22: connection timed out after 10s; check the address and the firewall", i / 65536 % 256, i / 256 % 256, i % 256)),
        Outcome::TimedOut => Some("host did not finish within the host timeout of 120s (connect, probe and parse); raise --host-timeout or `host_timeout:` if the host is just slow".into()),
        Outcome::AuthFailed => Some("authentication failed for user scan (publickey): no key was accepted; check the key and authorized_keys".into()),
        _ => None,
    };
    let warnings = if scanned && i % 20 == 5 {
        vec!["processes: ps printed 3 lines that were not understood".to_string()]
    } else {
        Vec::new()
    };
    // 2% of hosts: Kaspersky, moving a little between sweeps.
    let affected = scanned && (i % 50 == 1 || (sweep == 1 && i % 1000 == 2));
    let gone = sweep == 1 && i % 500 == 1;
    let findings = if affected && !gone {
        vec![kaspersky(family, i, now)]
    } else {
        Vec::new()
    };
    HostReport {
        name: format!("{}-{:06}.{site}.corp.example.net", family_prefix(family), i).into(),
        address: format!("10.{}.{}.{}", i / 65536 % 256, i / 256 % 256, i % 256).into(),
        labels,
        outcome,
        error,
        os,
        duration_seconds: 0.4 + (i % 37) as f64 / 10.0,
        warnings,
        incomplete: Vec::new(),
        findings,
        scanned_by: None,
    }
}

/// Four inventory labels, as a real fleet has them.
fn labels(i: usize) -> fleetsweep_exporters::Labels {
    [
        ("site", SITES[i % SITES.len()].to_string()),
        (
            "env",
            if i.is_multiple_of(3) {
                "staging"
            } else {
                "production"
            }
            .into(),
        ),
        ("team", TEAMS[i % TEAMS.len()].into()),
        ("rack", format!("r{:03}", i % 400)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn family_prefix(family: &str) -> &'static str {
    match family {
        "linux" => "lnx",
        "windows" => "win",
        _ => "mac",
    }
}

fn kaspersky(family: &str, i: usize, now: jiff::Timestamp) -> Finding {
    let ev = |kind: &'static str, source: Option<&'static str>, value: String| Evidence {
        kind: kind.into(),
        source: source.map(Into::into),
        value,
    };
    let (rule, product, evidence, remediation) = match family {
        "windows" => (
            "kaspersky/kes-windows",
            "Kaspersky Endpoint Security for Windows",
            vec![
                ev("uninstall", Some("registry"), "Kaspersky Endpoint Security for Windows 12.5.0.539 (AO Kaspersky Lab)".into()),
                ev("service", Some("services"), "AVP.KES.12.5.0 (Kaspersky Endpoint Security Service): running".into()),
                ev("process", None, "avp.exe: C:\\Program Files (x86)\\Kaspersky Lab\\KES.12.5.0\\avp.exe".into()),
                ev("path", None, "C:\\Program Files (x86)\\Kaspersky Lab\\KES.12.5.0".into()),
            ],
            "Uninstall from Apps & Features or with kavremover; then remove C:\\ProgramData\\Kaspersky Lab.",
        ),
        _ => (
            "kaspersky/kesl",
            "Kaspersky Endpoint Security for Linux",
            vec![
                ev("package", Some("dpkg"), format!("kesl 12.1.0-{}", 1297 + i % 3)),
                ev("path", None, "/opt/kaspersky/kesl".into()),
                ev("path", None, "/var/opt/kaspersky/kesl".into()),
                ev("process", None, "kesl: /opt/kaspersky/kesl/libexec/kesl infinity".into()),
                ev("process", None, "wdserver: /opt/kaspersky/kesl/libexec/wdserver infinity".into()),
                ev("service", Some("systemd"), "kesl.service (active)".into()),
                ev("signature_update", Some("kesl-control --app-info"), "2024-09-27 (stopped around the 2024-09-29 update ban)".into()),
            ],
            "apt-get purge kesl kesl-gui (or dnf/yum remove kesl kesl-gui); then remove /opt/kaspersky/kesl, /var/opt/kaspersky/kesl, /etc/opt/kaspersky and /var/log/kaspersky/kesl.",
        ),
    };
    Finding {
        rule: rule.into(),
        vendor: "Kaspersky".into(),
        product: product.into(),
        policy: Policy::Ban,
        state: FindingState::Installed,
        status: Status::New,
        version: Some("12.1.0.1297".into()),
        first_seen: now,
        last_seen: None,
        due: None,
        remediated_at: None,
        last_verified: None,
        exception: None,
        effective: Some(jiff::civil::date(2024, 7, 20)),
        deadline: Some(jiff::civil::date(2024, 9, 29)),
        signatures: Some(SignatureAge {
            last_update: jiff::civil::date(2024, 9, 27),
            age_days: 800,
            frozen: true,
        }),
        evidence,
        containers: Vec::new(),
        remediation: Some(remediation.into()),
    }
}
