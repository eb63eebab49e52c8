#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! Benchmark figures for the WinRM path: one `fleetsweep scan` (release or
//! debug, whichever this test binary was built as) of N WinRM hosts over http
//! with NTLM and every message sealed, each host a replay server of the
//! recorded WinRS lifecycle answering with the recorded Windows probe JSON
//! (`winrm_sweep.rs` checks one such host in detail). Prints hosts/s, client
//! CPU and peak RSS of the scanner process (`/usr/bin/time -v`); asserts only
//! that every host was scanned and found affected: a figure, not a timed test.
//!
//! `FLEETSWEEP_WINRM_BENCH_HOSTS` (default 100) and
//! `FLEETSWEEP_WINRM_BENCH_CONCURRENCY` (default 50) size it.

mod winrm_server;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use winrm_server::{windows_probe_script, Replay, ServerAuth, Twists};

const USER: &str = "vagrant";
const PASSWORD: &str = "Winrm-Test-Pa55";
const PASSWORD_ENV: &str = "FLEETSWEEP_TEST_WINRM_PASSWORD";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `Key: value` of `/usr/bin/time -v`.
fn time_field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(key))
        .map(|v| v.trim_start_matches(':').trim())
        .unwrap_or_else(|| panic!("no `{key}` in:\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn winrm_sweep_figures() {
    let hosts = env_usize("FLEETSWEEP_WINRM_BENCH_HOSTS", 100);
    let concurrency = env_usize("FLEETSWEEP_WINRM_BENCH_CONCURRENCY", 50);
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "/usr/bin/time not found: apt-get install -y time (scripts/setup does this)"
    );
    let mut replays = Vec::new();
    for _ in 0..hosts {
        let auth = ServerAuth::Ntlm {
            user: USER.into(),
            password: PASSWORD.into(),
        };
        replays.push(Replay::start(windows_probe_script(), auth, None, Twists::default()).await);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut inventory = String::from("hosts:\n");
    for (i, r) in replays.iter().enumerate() {
        inventory.push_str(&format!(
            "  - name: win-{i:04}\n    address: 127.0.0.1\n    transport: winrm\n    user: {USER}\n    \
             winrm: {{port: {}, auth: ntlm, password_env: {PASSWORD_ENV}}}\n",
            r.addr.port()
        ));
    }
    std::fs::write(dir.path().join("fleet.yaml"), inventory).unwrap();
    std::fs::write(dir.path().join("known_hosts"), "").unwrap();
    let report = dir.path().join("report.json");
    let timing = dir.path().join("time.txt");
    let args = vec![
        "-v".to_string(),
        "-o".to_string(),
        timing.display().to_string(),
        env!("CARGO_BIN_EXE_fleetsweep").to_string(),
        "scan".to_string(),
        "-i".to_string(),
        dir.path().join("fleet.yaml").display().to_string(),
        "--known-hosts".to_string(),
        dir.path().join("known_hosts").display().to_string(),
        "--report".to_string(),
        report.display().to_string(),
        "--no-state".to_string(),
        "--concurrency".to_string(),
        concurrency.to_string(),
        "-q".to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || {
        Command::new("/usr/bin/time")
            .args(&args)
            .env(PASSWORD_ENV, PASSWORD)
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "every host has KES: {stderr}");
    let r: Value = serde_saphyr::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["summary"]["hosts"]["scanned"], hosts, "{}", r["summary"]);
    assert_eq!(r["summary"]["hosts"]["affected"], hosts);
    for replay in &replays {
        replay.assert_complete();
        replay.log(|l| assert_eq!((l.sealed, l.plain), (5, 0)));
    }
    let t = std::fs::read_to_string(&timing).unwrap();
    let wall = time_field(&t, "Elapsed (wall clock) time (h:mm:ss or m:ss)");
    let wall: f64 = wall
        .split(':')
        .fold(0.0, |acc, part| acc * 60.0 + part.parse::<f64>().unwrap());
    let user: f64 = time_field(&t, "User time (seconds)").parse().unwrap();
    let sys: f64 = time_field(&t, "System time (seconds)").parse().unwrap();
    let rss_kib: f64 = time_field(&t, "Maximum resident set size (kbytes)")
        .parse()
        .unwrap();
    let build = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    eprintln!(
        "WinRM bench ({build} build): {hosts} hosts over http with NTLM, sealed, concurrency \
         {concurrency}: {wall:.2} s => {:.1} hosts/s; client CPU {:.2} s ({:.1} ms/host); \
         peak RSS {:.1} MiB (replay servers share the machine)",
        hosts as f64 / wall,
        user + sys,
        (user + sys) * 1000.0 / hosts as f64,
        rss_kib / 1024.0
    );
}
