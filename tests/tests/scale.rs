//! End-to-end at scale: the real `fleetsweep` binary sweeps a simulated fleet
//! (`fleetsweep_e2e::sim`: one russh server answering as every host on
//! 127.64.0.0/10, inside a network namespace the test creates; the scanner
//! runs in that namespace). The simulated hosts print real recorded outputs
//! of the Linux probe. Every user-visible count is checked against what the
//! simulator was told each host is.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use fleetsweep_e2e::output_within;
use fleetsweep_e2e::report::Report;
use fleetsweep_e2e::sim::{self, Behaviour, Profile, SimFleet, SimSpec, KESL_VERSION};
use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};

/// The `fleetsweep` binary cargo built from this source for these tests.
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

/// `fleetsweep scan` inside the fleet's namespace, with a report, a metrics
/// file and (unless `--no-state` is in `args`) a state store in `out`.
fn scan(fleet: &SimFleet, out: &Path, args: &[&str]) -> Output {
    let mut command = fleet.command(FLEETSWEEP);
    command.arg("scan").arg("-i").arg(fleet.inventory_path());
    if !args.contains(&"--no-state") {
        command.arg("--state").arg(out.join("state.db"));
    }
    command
        .arg("--report")
        .arg(out.join("report.yaml"))
        .arg("--metrics-file")
        .arg(out.join("metrics.prom"))
        .args(["--no-progress", "-q"])
        .args(args);
    let output = output_within(&mut command, Duration::from_secs(900));
    let code = output.status.code();
    assert!(
        matches!(code, Some(0 | 1 | 3)),
        "fleetsweep scan exited {code:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Reads a report of a large fleet: 10,000 hosts are more YAML nodes than
/// serde-saphyr's default budget (250,000) allows.
fn read_large(path: &Path) -> Report {
    let yaml = std::fs::read_to_string(path).unwrap();
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = 20_000_000;
    budget.max_events = 40_000_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    serde_saphyr::from_str_with_options(&yaml, options)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Sweeps a large fleet with some affected hosts at `--concurrency 200` and
/// generous deadlines (these tests check outcomes, not speed, and a loaded CI
/// machine must not turn healthy hosts into `timed_out`): the sweep exits 1
/// (a banned finding) and is complete. Returns its report and wall time.
fn sweep_affected_fleet(fleet: &SimFleet, out: &Path, extra: &[&str]) -> (Report, Duration) {
    let started = Instant::now();
    let mut args = vec![
        "--concurrency",
        "200",
        "--connect-timeout",
        "2m",
        "--host-timeout",
        "10m",
    ];
    args.extend_from_slice(extra);
    let output = scan(fleet, out, &args);
    let took = started.elapsed();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = read_large(&out.join("report.yaml"));
    assert!(report.sweep.complete);
    (report, took)
}

fn metric(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// What the report says about every host matches what the simulator made it:
/// returns (scanned, affected, reset) as counted in the report.
fn check_hosts(spec: &SimSpec, report: &Report, slow_outcome: &str) -> (usize, usize, usize) {
    assert_eq!(report.hosts.len(), spec.hosts, "every host has an entry");
    let (mut scanned, mut affected, mut reset) = (0, 0, 0);
    for i in 0..spec.hosts {
        let name = sim::name(i);
        let h = report.host(&name);
        let host = spec.host(i);
        assert_eq!(h.address, sim::address(i).to_string(), "{name}");
        let expected = match host.behaviour {
            // Reset during the banner exchange, on every attempt: fleetsweep
            // retries with backoff, then calls the host unreachable (a busy
            // sshd's MaxStartups looks like this).
            Behaviour::Reset => "unreachable",
            Behaviour::Slow => slow_outcome,
            Behaviour::Normal => "scanned",
        };
        assert_eq!(h.outcome, expected, "{name} ({host:?}): {:?}", h.error);
        match h.outcome.as_str() {
            "scanned" => scanned += 1,
            "unreachable" => {
                reset += 1;
                let error = h.error.as_deref().unwrap_or_default();
                assert!(
                    error.contains(
                        "closed or reset the connection before authentication on 5 attempts"
                    ) && error.contains("Connection reset by peer")
                        && error.contains("MaxStartups"),
                    "{name}: {error}"
                );
            }
            _ => {}
        }
        if h.outcome != "scanned" {
            assert!(h.findings.is_empty(), "{name}: not scanned, no findings");
            continue;
        }
        assert!(h.incomplete.is_empty(), "{name}: {:?}", h.incomplete);
        if host.profile == Profile::Kesl {
            affected += 1;
            let kesl = h
                .findings
                .iter()
                .find(|f| f.rule == "kaspersky/kesl")
                .unwrap_or_else(|| panic!("{name}: no KESL finding: {:?}", h.findings));
            assert_eq!(kesl.version.as_deref(), Some(KESL_VERSION), "{name}");
            assert_eq!(kesl.state, "installed", "{name}");
            assert_eq!(kesl.policy, "ban", "{name}");
        } else {
            assert!(h.findings.is_empty(), "{name} is clean: {:?}", h.findings);
        }
    }
    (scanned, affected, reset)
}

/// 10,000 hosts, 5% affected, 1% resetting: every host has its outcome, the
/// affected ones their KESL finding, the summary, the state store and the
/// metrics agree. Fits CI's time with the debug build on 2 cores.
#[test]
fn ten_thousand_simulated_hosts() {
    let spec = SimSpec {
        hosts: 10_000,
        seed: 10_000,
        affected_every: 20,
        large_every: 7,
        reset_every: 100,
        ..SimSpec::default()
    };
    let fleet = SimFleet::start(spec.clone(), 2).unwrap();
    let out = tempfile::tempdir().unwrap();
    let (report, took) = sweep_affected_fleet(&fleet, out.path(), &[]);
    let (scanned, affected, reset) = check_hosts(&spec, &report, "scanned");
    assert_eq!((scanned, affected, reset), (9_900, 500, 100));

    let s = &report.summary.hosts;
    assert_eq!(s["total"], 10_000);
    assert_eq!(s["scanned"], scanned);
    assert_eq!(s["affected"], affected);
    assert_eq!(s["clean"], scanned - affected);
    assert_eq!(s["incomplete"], 0);
    assert_eq!(s["unreachable"], reset);
    assert_eq!(s["probe_failed"], 0);
    let outcomes: usize = [
        "scanned",
        "unreachable",
        "auth_failed",
        "host_key_rejected",
        "timed_out",
        "probe_failed",
        "interrupted",
    ]
    .iter()
    .map(|o| s[*o])
    .sum();
    assert_eq!(outcomes, s["total"], "outcomes add up: {s:?}");

    let stats = fleet.stats();
    // Each resetting host was tried 5 times (the first attempt and 4 retries).
    assert_eq!(stats.reset, 500);
    assert_eq!(stats.probes, 9_900, "{stats:?}");

    // The state store holds the sweep with every host: rendered back from it.
    let from_state = out.path().join("from-state.yaml");
    let st = std::process::Command::new(FLEETSWEEP)
        .arg("report")
        .arg("--state")
        .arg(out.path().join("state.db"))
        .arg("-o")
        .arg(&from_state)
        .output_within(RUN_LIMIT);
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let stored = read_large(&from_state);
    assert_eq!(stored.hosts.len(), 10_000);
    assert_eq!(stored.summary.hosts, report.summary.hosts);
    assert_eq!(
        stored
            .hosts
            .iter()
            .filter(|h| !h.findings.is_empty())
            .count(),
        500
    );

    let metrics = std::fs::read_to_string(out.path().join("metrics.prom")).unwrap();
    assert_eq!(
        metric(&metrics, "fleetsweep_hosts{outcome=\"scanned\"}"),
        Some(9_900.0)
    );
    assert_eq!(
        metric(&metrics, "fleetsweep_hosts{outcome=\"unreachable\"}"),
        Some(100.0)
    );
    assert_eq!(
        metric(&metrics, "fleetsweep_hosts{outcome=\"timed_out\"}"),
        Some(0.0)
    );
    assert_eq!(metric(&metrics, "fleetsweep_hosts_incomplete"), Some(0.0));
    // A series for each affected host's finding and each unreachable host,
    // each once, sorted by host.
    let series =
        |prefix: &str| -> Vec<&str> { metrics.lines().filter(|l| l.starts_with(prefix)).collect() };
    let kesl = series("fleetsweep_host_finding{host=\"");
    let kesl: Vec<&str> = kesl
        .into_iter()
        .filter(|l| l.contains("rule=\"kaspersky/kesl\"") && l.ends_with("} 1"))
        .collect();
    assert_eq!(kesl.len(), 500, "{kesl:?}");
    let failed = series("fleetsweep_host_scan_failure{host=\"");
    assert_eq!(failed.len(), 100, "{failed:?}");
    assert!(failed.iter().all(|l| l.contains("outcome=\"unreachable\"")));
    let mut sorted = failed.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted, failed, "sorted, each once");
    eprintln!("10,000 simulated hosts swept in {took:.1?}; simulator: {stats:?}");
}

/// A temporary directory that cannot be written (missing, full, read-only)
/// costs memory, never a host: the inventory's hosts, the known_hosts lines
/// and the host results that would wait in temporary files stay in memory,
/// each with one warning that says how to fix it, and the sweep's outcomes
/// are those of a sweep with a temporary directory.
#[test]
fn a_temporary_directory_that_cannot_be_written_loses_no_host() {
    let spec = SimSpec {
        hosts: 1_000,
        seed: 1_000,
        affected_every: 20,
        large_every: 7,
        ..SimSpec::default()
    };
    let fleet = SimFleet::start(spec.clone(), 2).unwrap();
    let out = tempfile::tempdir().unwrap();
    let mut command = fleet.command(FLEETSWEEP);
    command
        .env("TMPDIR", out.path().join("no-such-directory"))
        .env("FLEETSWEEP_LOG", "warn")
        .arg("scan")
        .arg("-i")
        .arg(fleet.inventory_path())
        .arg("--state")
        .arg(out.path().join("state.db"))
        .arg("--report")
        .arg(out.path().join("report.yaml"))
        .args(["--no-progress", "-q", "--concurrency", "200"])
        .args(["--connect-timeout", "2m", "--host-timeout", "10m"]);
    let output = output_within(&mut command, Duration::from_secs(900));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for what in [
        "cannot write the inventory's hosts to a temporary file",
        "cannot write known_hosts lines to a temporary file",
        "cannot write host results to a temporary file",
    ] {
        assert_eq!(stderr.matches(what).count(), 1, "{what}: {stderr}");
    }
    assert!(
        stderr.contains("set TMPDIR to a writable directory"),
        "{stderr}"
    );
    let report = read_large(&out.path().join("report.yaml"));
    assert!(report.sweep.complete);
    assert_eq!(check_hosts(&spec, &report, "scanned"), (1_000, 50, 0));
}

/// 2,000 simulated hosts, all but one behind the first (a bastion forwarding
/// `direct-tcpip` channels, as with `ssh -J`) at `--concurrency 200`: every
/// host is scanned through its channel with its own host key and login, and
/// the bastion sees a handful of logins, not one per host.
#[test]
fn two_thousand_hosts_behind_one_simulated_bastion() {
    let spec = SimSpec {
        hosts: 2_000,
        seed: 2_000,
        affected_every: 20,
        large_every: 7,
        bastion: true,
        ..SimSpec::default()
    };
    let fleet = SimFleet::start(spec.clone(), 2).unwrap();
    let inventory = std::fs::read_to_string(fleet.inventory_path()).unwrap();
    assert_eq!(inventory.matches("    jump: sim-000000\n").count(), 1_999);
    let out = tempfile::tempdir().unwrap();
    let (report, took) = sweep_affected_fleet(&fleet, out.path(), &["--no-state"]);
    assert_eq!(check_hosts(&spec, &report, "scanned"), (2_000, 100, 0));

    let stats = fleet.stats();
    assert_eq!(stats.probes, 2_000, "{stats:?}");
    assert_eq!(
        stats.tunnelled, 1_999,
        "each host behind logs in once: {stats:?}"
    );
    assert_eq!(
        stats.tunnels, 1_999,
        "one channel per host behind: {stats:?}"
    );
    // A host's channel is ended with EOF once its session is done and the
    // bastion closes it: closed from our end first, russh kept each channel's
    // record until the sweep's end (2.2 KiB a host, 220 MiB at 100,000). A
    // peer slower than 5 s to close is closed from our end: allow a few.
    assert!(
        stats.tunnels_closed_by_client <= 20,
        "channels the scanner closed before the bastion did: {stats:?}"
    );
    // Over TCP: the bastion's own probe, and its shared connections (at most
    // 64 channels each, so 200 hosts at once need 4).
    let tcp_logins = stats.authenticated - stats.tunnelled;
    assert!(
        (2..=8).contains(&tcp_logins),
        "{tcp_logins} logins over TCP for 2,000 hosts: {stats:?}"
    );
    assert!(stats.accepted <= 8, "TCP connections: {stats:?}");
    eprintln!("2,000 simulated hosts behind one bastion swept in {took:.1?}; simulator: {stats:?}");
}

/// 200 hosts with every knob: 50 ms RTT, slow hosts, resetting hosts, and one
/// host whose MaxStartups is used up by connections that never authenticate.
#[test]
fn knobs_latency_slow_hosts_resets_and_refusals() {
    let spec = SimSpec {
        hosts: 200,
        seed: 200,
        affected_every: 10,
        large_every: 7,
        slow_every: 10,
        slow_ms: 3_000,
        reset_every: 25,
        latency_ms: 50,
        max_startups: 2,
        ..SimSpec::default()
    };
    let fleet = SimFleet::start(spec.clone(), 1).unwrap();
    let out = tempfile::tempdir().unwrap();

    // Latency: one host takes at least the round trips of an SSH session
    // (banner, key exchange, new keys, auth service, auth, channel, exec, output).
    let started = Instant::now();
    scan(&fleet, out.path(), &["--limit", "sim-000000", "--no-state"]);
    let one = started.elapsed();
    assert!(
        one >= Duration::from_millis(6 * 50),
        "one host with 50 ms RTT answered in {one:?}"
    );

    // Refusal: host 0 has its 2 unauthenticated connections taken (each got
    // its banner); a third is closed before the banner, as by sshd's MaxStartups.
    let target = std::net::SocketAddr::from((sim::address(0), spec.port));
    let held = fleet
        .netns()
        .run_in(move || {
            let mut held = Vec::new();
            for _ in 0..2 {
                use std::io::Read;
                let mut s = std::net::TcpStream::connect(target)?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                let mut banner = [0u8; 4];
                s.read_exact(&mut banner)?;
                anyhow::ensure!(&banner == b"SSH-", "no SSH banner from {target}");
                held.push(s);
            }
            Ok(held)
        })
        .unwrap();

    // Slow hosts (3 s) answer within the default host timeout.
    let started = Instant::now();
    scan(&fleet, out.path(), &["--concurrency", "100"]);
    let took = started.elapsed();
    let (_, report) = Report::read(&out.path().join("report.yaml")).unwrap();
    // A connection closed before the banner (a real sshd over MaxStartups)
    // is retried with backoff; when every attempt is refused the host is
    // unreachable, with the likely cause and what to change.
    let refused = report.host("sim-000000");
    assert_eq!(refused.outcome, "unreachable", "{:?}", refused.error);
    let error = refused.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("127.64.0.1:22 closed or reset the connection before authentication")
            && error.contains("MaxStartups")
            && error.contains("Lower --concurrency"),
        "{error}"
    );
    assert!(refused.findings.is_empty());
    assert!(fleet.stats().refused >= 1, "{:?}", fleet.stats());
    drop(held);
    let mut reset = 0;
    for h in report.hosts.iter().filter(|h| h.name != "sim-000000") {
        let i: usize = h.name.trim_start_matches("sim-").parse().unwrap();
        let host = spec.host(i);
        let want = if host.answers() {
            "scanned"
        } else {
            "unreachable"
        };
        assert_eq!(h.outcome, want, "{} ({host:?}): {:?}", h.name, h.error);
        reset += usize::from(h.outcome == "unreachable");
        let kesl = h.findings.iter().any(|f| f.rule == "kaspersky/kesl");
        assert_eq!(
            kesl,
            host.answers() && host.profile == Profile::Kesl,
            "{}",
            h.name
        );
    }
    // Hosts 4, 29, ..., 179 reset; host 0 was refused.
    assert_eq!(reset, 8);
    assert_eq!(report.summary.hosts["unreachable"], 9);
    assert_eq!(report.summary.hosts["probe_failed"], 0);
    assert!(
        took >= Duration::from_millis(3_000),
        "slow hosts took {took:?}"
    );

    // With a host timeout shorter than a slow host's answer, the slow hosts
    // are timed out, never clean.
    // Slow hosts are those whose index ends in 3 (every 10th from 3).
    scan(
        &fleet,
        out.path(),
        &["--host-timeout", "2s", "--no-state", "--limit", "sim-*3"],
    );
    let (_, report) = Report::read(&out.path().join("report.yaml")).unwrap();
    let slow = (0..spec.hosts).filter(|i| spec.host(*i).behaviour == Behaviour::Slow);
    let mut n = 0;
    for i in slow {
        let h = report.host(&sim::name(i));
        assert_eq!(h.outcome, "timed_out", "{}: {:?}", h.name, h.error);
        n += 1;
    }
    assert_eq!(n, 20);
    assert_eq!(report.summary.hosts["total"], 20);
    assert_eq!(report.summary.hosts["timed_out"], 20);
}
