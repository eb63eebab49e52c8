use super::*;
use crate::cli::{Cli, Command};
use clap::Parser;
use std::path::Path;

fn scan_args(extra: &[&str]) -> ScanArgs {
    let argv = ["fleetsweep", "scan", "--local"].iter().chain(extra);
    match Cli::try_parse_from(argv).map(|c| c.command) {
        Ok(Command::Scan(args)) => *args,
        other => panic!("not a scan command line: {other:?}"),
    }
}

fn local() -> Selection {
    Selection {
        inventory: Inventory::local(),
        shard: None,
    }
}

fn message(e: &PipelineError) -> String {
    Chain(e).to_string()
}

#[test]
fn state_keep_takes_all_or_a_duration() {
    assert!(matches!(retention("all"), Ok(None)));
    assert!(matches!(retention(" ALL "), Ok(None)));
    assert_eq!(
        retention("90d").ok().flatten(),
        Some(jiff::SignedDuration::from_hours(90 * 24))
    );
    let zero = retention("0s").err().map(|e| message(&e));
    assert_eq!(zero.as_deref(), Some("--state-keep: 0 would drop the report of every sweep but the newest; give a duration such as 90d, or `all`"));
    let bad = retention("soon").err().map(|e| message(&e));
    assert_eq!(
        bad.as_deref(),
        Some("--state-keep: `soon` is neither `all` nor a duration such as 400d, 90d or 12h")
    );
}

#[test]
fn an_output_in_a_missing_directory_stops_the_scan_before_it_starts() {
    let err = Pipeline::prepare(
        local(),
        &scan_args(&["--no-state", "--report", "/nonexistent/dir/r.yaml"]),
    )
    .err()
    .map(|e| message(&e));
    assert_eq!(
        err.as_deref(),
        Some("cannot write /nonexistent/dir/r.yaml: directory /nonexistent/dir does not exist")
    );
}

#[test]
fn errors_read_with_their_causes() {
    let e = PipelineError::WriteMetrics {
        path: "/m.prom".into(),
        source: std::io::Error::other("disk full"),
    };
    assert_eq!(message(&e), "cannot write metrics to /m.prom: disk full");
    let e = PipelineError::Push {
        report: Some("/r.yaml".into()),
        source: PushError::BadUrl("x".into()),
    };
    assert!(message(&e).starts_with("push failed (the report was written to /r.yaml): --push `x`"));
}

/// The whole way: a (cancelled, so instant) sweep is committed to the store
/// and its files are written, and the result says so.
#[tokio::test]
async fn a_sweep_goes_through_the_store_to_its_files() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = |name: &str| dir.path().join(name).display().to_string();
    let (db, yaml, prom) = (path("state.db"), path("r.yaml"), path("m.prom"));
    let args = scan_args(&["--state", &db, "--report", &yaml, "--metrics-file", &prom]);
    let pipeline = Pipeline::prepare(local(), &args).unwrap_or_else(|e| panic!("{}", Chain(&e)));
    assert_eq!(
        pipeline.state_path().and_then(Location::file),
        Some(Path::new(&db))
    );
    let (_tx, cancel) = watch::channel(Some("test".to_string()));
    let report = pipeline
        .sweep(pipeline.hosts().to_vec(), Arc::new(sweep::Silent), cancel)
        .await;
    let finished = pipeline.finish(report).await;
    assert!(finished.recorded.is_ok());
    assert_eq!(
        finished.written.ok(),
        Some(Written {
            report: Some(yaml.clone().into()),
            metrics_file: Some(prom.clone().into()),
            pushed: None,
        })
    );
    assert!(!finished.report.sweep.complete);
    let store = Store::open_existing_file(Path::new(&db)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(store.sweeps().map(|s| s.len()).ok(), Some(1));
    // The files and the store are written as they are serialized: each holds
    // exactly what the in-memory renderings give.
    let stored = store.report(&finished.report.sweep.id).ok();
    assert_eq!(stored.as_ref(), Some(&finished.report));
    assert_eq!(
        std::fs::read_to_string(&yaml).ok(),
        fleetsweep_exporters::yaml::to_yaml(&finished.report).ok()
    );
    for file in [yaml, prom] {
        assert!(
            std::fs::metadata(&file).is_ok_and(|m| m.len() > 0),
            "{file}"
        );
    }
}

/// The state-store step waits for the store (SQLite may wait out its busy
/// timeout) on the blocking pool: the runtime thread goes on meanwhile.
#[tokio::test] // current_thread: one runtime thread, which `record` must not block
async fn a_busy_store_does_not_block_the_runtime() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let db = dir.path().join("state.db").display().to_string();
    let pipeline = Pipeline::prepare(local(), &scan_args(&["--state", &db]))
        .unwrap_or_else(|e| panic!("{}", Chain(&e)));
    let (_tx, cancel) = watch::channel(Some("test".to_string()));
    let report = pipeline
        .sweep(pipeline.hosts().to_vec(), Arc::new(sweep::Silent), cancel)
        .await;
    // Another thread holds the store for a while, as a long commit would.
    let history = pipeline.history.clone();
    let (locked, is_locked) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let _store = history.store.lock();
        let _ = locked.send(());
        std::thread::sleep(Duration::from_millis(300));
    });
    let _ = is_locked.recv();
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(10)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let recorded = pipeline.record(report).await;
    ticker.abort();
    let _ = holder.join();
    assert!(recorded.error.is_none());
    let ticks = ticks.load(Ordering::Relaxed);
    assert!(
        ticks >= 5,
        "the runtime thread ticked {ticks} times while the store was busy"
    );
}

/// `--scanner` names a scanner in the store; the host name by default.
#[test]
fn scanner_names_are_short_printable_text() {
    assert_eq!(scanner_name(Some("fra1-a")).ok().as_deref(), Some("fra1-a"));
    assert!(scanner_name(None).is_ok_and(|n| !n.is_empty()));
    for bad in ["", "a\nb", &"x".repeat(129)] {
        let e = scanner_name(Some(bad)).err().map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.starts_with("--scanner: ") && e.contains("printable")),
            "{bad:?}: {e:?}"
        );
    }
}
