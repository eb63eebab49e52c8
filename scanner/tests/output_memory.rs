#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! The scanner's memory stays bounded by `--max-output`, whatever hosts send.
//!
//! Regression test for an outside tester's report: one host streaming 100 MB
//! drove the scanner to 485 MB RSS, four such hosts to 597 MB. Here the real
//! binary sweeps hosts that run the real probe and then flood stdout and stderr
//! (real `sshd` processes on 127.0.77.x with a `ForceCommand`; for the local
//! transport, a `dpkg-query` on PATH that floods), and its peak RSS is read from
//! `wait4`. One SSH host streams without end: it must be cut off, not left to
//! run into the host timeout.
//!
//! Must run as root (sshd, logging in as root), like `ssh_transport`.

mod support;

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fleetsweep_exporters::{Outcome, Report};
use support::{keygen, Sshd, SshdConfig};

/// `--max-output`, in MiB.
const MAX_OUTPUT_MIB: usize = 8;
/// Bytes each flooding host writes to stdout and again to stderr.
const FLOOD_BYTES: u64 = 200_000_000;
/// Peak RSS allowed for a sweep of four flooding hosts. A quiet sweep of the
/// same hosts peaks at about 43 MiB (debug build), the flooded one at 66-75
/// MiB; before the fix the flood took it to 117 MiB at `--max-output 8` (and
/// 336 MiB at the default 32).
const PEAK_LIMIT_KB: u64 = 100 * 1024;
/// Growth over the quiet sweep allowed: what the hosts may make us hold is
/// their stdout (8 MiB each, 4 at once), half as much again while a buffer
/// doubles into its last step (the old 4 MiB and the new 8 MiB), and the
/// allocator's slack; before the fix it was twice the outputs (stdout and
/// stderr each up to the limit, 100-message queues): +74 MiB. Alone here the
/// growth is 16-26 MiB; with the whole suite on 2 cores the four hosts finish
/// together and it reached 55 MiB.
const GROWTH_LIMIT_KB: u64 = 64 * 1024;

/// One run of the binary: its peak RSS, wall time and report.
struct Run {
    peak_kb: u64,
    elapsed: Duration,
    report: Report,
    log: String,
}

/// Runs `fleetsweep scan ...` and reads its peak RSS (`ru_maxrss`) from `wait4`.
fn scan(dir: &Path, args: &[&str], path_env: Option<OsString>) -> Run {
    let report_path = dir.join("report.yml");
    let _ = std::fs::remove_file(&report_path);
    let log_path = dir.join("scan.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetsweep"));
    cmd.arg("scan")
        .args(args)
        .args(["--no-state", "--no-progress", "--report"])
        .arg(&report_path)
        .env_remove("SSH_AUTH_SOCK")
        .env("FLEETSWEEP_LOG", "fleetsweep::transport=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"));
    if let Some(path) = path_env {
        cmd.env("PATH", path);
    }
    let started = Instant::now();
    let child = cmd.spawn().expect("start fleetsweep");
    let pid = i32::try_from(child.id()).expect("pid fits i32");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value to be overwritten.
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid out pointers. It reaps the
    // child, so `child` is only dropped afterwards (no second wait).
    // SAFETY: both pointers are to live locals wait4 writes; `pid` is our child.
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(reaped, pid, "wait4: {}", std::io::Error::last_os_error());
    drop(child);
    let elapsed = started.elapsed();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let yaml = std::fs::read_to_string(&report_path)
        .unwrap_or_else(|e| panic!("no report ({e}); exit {status:#x}; log:\n{log}"));
    let report: Report = serde_saphyr::from_str(&yaml).expect("report parses");
    Run {
        peak_kb: u64::try_from(usage.ru_maxrss).expect("ru_maxrss"),
        elapsed,
        report,
        log,
    }
}

/// A quiet host is scanned without the truncation warning. A flooded one is
/// never counted clean: what came after the cap was not read, so it is
/// `probe_failed` when a required section was lost (the local flood starts
/// before the package list) or scanned but incomplete, and the cut is said.
fn assert_scanned(run: &Run, flooded: bool) {
    let cut = format!(
        "probe output was cut at {} bytes; findings may be incomplete",
        MAX_OUTPUT_MIB * 1024 * 1024
    );
    for host in &run.report.hosts {
        let ctx = format!(
            "{}: {:?} {:?} {:?}\nlog:\n{}",
            host.name, host.outcome, host.error, host.incomplete, run.log
        );
        if !flooded {
            assert_eq!(host.outcome, Outcome::Scanned, "{ctx}");
            assert!(!host.warnings.contains(&cut), "{ctx}");
            continue;
        }
        match host.outcome {
            Outcome::Scanned => {
                assert!(host.warnings.contains(&cut), "{ctx}");
                assert!(!host.incomplete.is_empty(), "cut, so incomplete: {ctx}");
            }
            Outcome::ProbeFailed => assert!(
                host.error
                    .as_deref()
                    .is_some_and(|e| e.contains("required evidence not read")
                        || e.contains("cut off before its answer")),
                "{ctx}"
            ),
            _ => panic!("{ctx}"),
        }
    }
}

fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn print_figures(what: &str, quiet: &Run, flood: &Run) {
    println!(
        "{what}: peak RSS {:.1} MiB quiet, {:.1} MiB flooded (+{:.1} MiB; limits {} MiB, +{} MiB); \
         flooded sweep took {:.1}s",
        quiet.peak_kb as f64 / 1024.0,
        flood.peak_kb as f64 / 1024.0,
        flood.peak_kb.saturating_sub(quiet.peak_kb) as f64 / 1024.0,
        PEAK_LIMIT_KB / 1024,
        GROWTH_LIMIT_KB / 1024,
        flood.elapsed.as_secs_f64()
    );
}

#[test]
fn four_ssh_hosts_flooding_stdout_and_stderr_stay_within_the_output_cap() {
    support::init();
    let dir = tempfile::Builder::new()
        .prefix("fleetsweep-flood-")
        .tempdir()
        .expect("tempdir");
    let key = keygen(&dir.path().join("id_ed25519"), "ed25519", "");
    // The real probe runs first (so the host is scanned), then, when the file
    // `mode` says `flood`, 200 MB to stdout and to stderr at once, or endless
    // streams from the host started with `forever`.
    let mode = dir.path().join("mode");
    let flood = dir.path().join("flood.sh");
    write_script(
        &flood,
        &format!(
            "/bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n\
             [ \"$(cat {mode})\" = flood ] || exit 0\n\
             if [ \"$1\" = forever ]; then\n\
               cat /dev/zero & cat /dev/zero >&2\n\
             else\n\
               head -c {FLOOD_BYTES} /dev/zero & head -c {FLOOD_BYTES} /dev/zero >&2\n\
             fi\n\
             wait\n",
            mode = mode.display()
        ),
    );
    let mut hosts = Vec::new();
    for i in 0..4 {
        let arg = if i == 3 { "forever" } else { "bounded" };
        hosts.push(Sshd::start_with(
            &SshdConfig::authorized(&[&key]),
            &format!("ForceCommand {} {arg}\n", flood.display()),
        ));
    }
    let known_hosts = dir.path().join("known_hosts");
    let lines: Vec<String> = hosts.iter().map(Sshd::known_hosts_line).collect();
    std::fs::write(&known_hosts, lines.join("\n") + "\n").expect("known_hosts");
    let mut inventory = format!(
        "defaults: {{user: root, port: {}, identity_file: {}, known_hosts: {}}}\nhosts:\n",
        support::PORT,
        key.display(),
        known_hosts.display()
    );
    for (i, h) in hosts.iter().enumerate() {
        inventory.push_str(&format!(
            "  - {{name: flood-{i}, address: {}}}\n",
            h.address
        ));
    }
    let inventory_path = dir.path().join("inventory.yml");
    std::fs::write(&inventory_path, inventory).expect("inventory");
    let max_output = MAX_OUTPUT_MIB.to_string();
    let args = [
        "-i",
        inventory_path.to_str().expect("utf-8 path"),
        "--max-output",
        &max_output,
        "--concurrency",
        "4",
        // Long enough that only a cut-off (not the deadline) ends the endless host.
        "--host-timeout",
        "5m",
    ];

    std::fs::write(&mode, "quiet").expect("write mode");
    let quiet = scan(dir.path(), &args, None);
    assert_scanned(&quiet, false);

    std::fs::write(&mode, "flood").expect("write mode");
    let flooded = scan(dir.path(), &args, None);
    print_figures("4 SSH hosts, --max-output 8", &quiet, &flooded);
    assert_scanned(&flooded, true);
    assert!(
        flooded
            .log
            .contains("output past the cap kept coming; channel closed"),
        "the hosts were not cut off:\n{}",
        flooded.log
    );
    assert!(
        flooded.peak_kb < PEAK_LIMIT_KB,
        "peak RSS {} KB >= {PEAK_LIMIT_KB} KB",
        flooded.peak_kb
    );
    assert!(
        flooded.peak_kb < quiet.peak_kb + GROWTH_LIMIT_KB,
        "peak RSS grew from {} KB to {} KB",
        quiet.peak_kb,
        flooded.peak_kb
    );
}

#[test]
fn a_local_command_flooding_stdout_and_stderr_stays_within_the_output_cap() {
    let dir = tempfile::Builder::new()
        .prefix("fleetsweep-flood-local-")
        .tempdir()
        .expect("tempdir");
    // The probe keeps PATH first: this `dpkg-query` floods both streams.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    write_script(
        &bin.join("dpkg-query"),
        &format!("head -c {FLOOD_BYTES} /dev/zero & head -c {FLOOD_BYTES} /dev/zero >&2\nwait\n"),
    );
    let mut path = OsString::from(&bin);
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());
    let max_output = MAX_OUTPUT_MIB.to_string();
    let args = ["--local", "--max-output", &max_output];

    let quiet = scan(dir.path(), &args, None);
    assert_scanned(&quiet, false);
    let flooded = scan(dir.path(), &args, Some(path));
    print_figures("local host, --max-output 8", &quiet, &flooded);
    assert_scanned(&flooded, true);
    assert!(
        flooded
            .log
            .contains("local command kept writing past the output cap; killed"),
        "the command was not cut off:\n{}",
        flooded.log
    );
    assert!(flooded.peak_kb < PEAK_LIMIT_KB, "{} KB", flooded.peak_kb);
    assert!(
        flooded.peak_kb < quiet.peak_kb + GROWTH_LIMIT_KB / 2,
        "peak RSS grew from {} KB to {} KB",
        quiet.peak_kb,
        flooded.peak_kb
    );
}
