//! End-to-end: hosts behind bastions, and servers that refuse connections in
//! start-up (fleetsweep issue 12).
//!
//! - Hundreds of hosts behind one bastion whose sshd keeps OpenSSH's default
//!   `MaxStartups` (10:30:100), at `--concurrency 200`: every host is scanned,
//!   and the bastion sees a handful of logins (the pool), not one per host.
//! - A two-hop chain (bastion → inner bastion → hosts): all scanned, the
//!   inner hop shared too.
//! - A bastion that goes away mid-sweep: the hosts behind it are
//!   `unreachable`, naming it; the hosts reached directly are scanned.
//! - A server with a tiny `MaxStartups` reached by many inventory entries at
//!   once: all scanned (the per-destination cap and retries); a server that
//!   drops every connection: `unreachable` with the MaxStartups hint, after a
//!   bounded number of attempts counted in its own log.
//!
//! Subnets 127.0.241-245 (the big fleet spills from 241 into 242).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use fleetsweep_e2e::report::Report;
use fleetsweep_e2e::{e2e_dir, output_within, Fleet, FleetSpec, Scenario, PORT, USER};

const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

/// What the bastion's sshd (LogLevel VERBOSE) logs for each login.
const LOGIN: &str = "Accepted publickey for";
/// What sshd logs for each connection it drops for `MaxStartups`.
const DROPPED: &str = "past MaxStartups";

fn scan(inventory: &Path, report: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(FLEETSWEEP);
    cmd.args(["scan", "-i"])
        .arg(inventory)
        .arg("--report")
        .arg(report)
        .args(["--no-state", "--no-progress"])
        .args(extra)
        .env_remove("SSH_AUTH_SOCK")
        .current_dir(e2e_dir());
    // Two waves of the longest host timeout used here (3 minutes), and margin.
    output_within(&mut cmd, Duration::from_secs(600))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The report, after checking fleetsweep exited as a finished sweep does
/// (0 clean, 1 findings, 3 hosts not fully read; never 2, an error).
fn finished(out: &Output, report: &Path) -> Report {
    assert!(
        matches!(out.status.code(), Some(0 | 1 | 3)),
        "fleetsweep failed: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    Report::read(report).expect("reading the report").1
}

/// Names of hosts whose outcome is not `scanned`, with their errors.
fn not_scanned(r: &Report) -> Vec<String> {
    r.hosts
        .iter()
        .filter(|h| h.outcome != "scanned")
        .map(|h| format!("{}: {} {:?}", h.name, h.outcome, h.error))
        .collect()
}

fn fleet(subnet: u8, hosts: Vec<(String, Scenario)>) -> Fleet {
    Fleet::start(FleetSpec { subnet, hosts }).expect("starting the test fleet")
}

#[test]
fn hundreds_of_hosts_behind_a_default_bastion_are_all_scanned_with_a_few_logins() {
    const BEHIND: usize = 250;
    let mut hosts = vec![("bastion".to_string(), Scenario::Bastion)];
    hosts.extend((0..BEHIND).map(|i| {
        (
            format!("db-{i:03}"),
            Scenario::BehindBastion("bastion".into()),
        )
    }));
    let fleet = fleet(241, hosts);
    let bastion = fleet.host("bastion");
    let config = std::fs::read_to_string(bastion.dir().join("sshd_config")).unwrap();
    assert!(
        !config.contains("MaxStartups") && !config.contains("MaxSessions"),
        "the bastion must keep OpenSSH's defaults:\n{config}"
    );
    let logins_before = bastion.sshd_log_count(LOGIN);

    let report = fleet.dir().join("report.yaml");
    let started = Instant::now();
    let out = scan(
        &fleet.inventory_path(),
        &report,
        &[
            "--concurrency",
            "200",
            "--connect-timeout",
            "20s",
            "--host-timeout",
            "3m",
        ],
    );
    let took = started.elapsed();
    let r = finished(&out, &report);
    assert_eq!(r.hosts.len(), BEHIND + 1);
    assert_eq!(
        not_scanned(&r),
        Vec::<String>::new(),
        "every host is scanned"
    );

    // The bastion is scanned itself (one login) and carries everyone else on
    // pooled connections of at most 64 channels: 200 in flight need 4.
    let logins = bastion.sshd_log_count(LOGIN) - logins_before;
    assert!(
        (2..=5).contains(&logins),
        "{logins} logins on the bastion for {BEHIND} hosts behind it"
    );
    assert_eq!(
        bastion.sshd_log_count(DROPPED),
        0,
        "the bastion dropped connections past MaxStartups"
    );
    eprintln!(
        "{} hosts behind one default bastion at --concurrency 200: all scanned in {:.1}s, {logins} logins on the bastion",
        BEHIND,
        took.as_secs_f64()
    );
}

#[test]
fn a_two_hop_chain_is_scanned_sharing_both_hops() {
    const BEHIND: usize = 24;
    let mut hosts = vec![
        ("outer".to_string(), Scenario::Bastion),
        ("inner".to_string(), Scenario::InnerBastion("outer".into())),
    ];
    hosts.extend((0..BEHIND).map(|i| {
        (
            format!("deep-{i:02}"),
            Scenario::BehindBastion("inner".into()),
        )
    }));
    let fleet = fleet(243, hosts);
    let inv = std::fs::read_to_string(fleet.inventory_path()).unwrap();
    let outer = fleet.host("outer").address().to_string();
    assert!(
        inv.contains(&format!(
            "jump: {USER}@{outer}:{PORT},{USER}@inner.internal.fleet.test:{PORT}"
        )),
        "{inv}"
    );
    let before = |name: &str| fleet.host(name).sshd_log_count(LOGIN);
    let (outer_before, inner_before) = (before("outer"), before("inner"));

    let report = fleet.dir().join("report.yaml");
    let out = scan(
        &fleet.inventory_path(),
        &report,
        &["--concurrency", "30", "--host-timeout", "2m"],
    );
    let r = finished(&out, &report);
    assert_eq!(r.hosts.len(), BEHIND + 2);
    assert_eq!(
        not_scanned(&r),
        Vec::<String>::new(),
        "every host is scanned"
    );
    // Each bastion: its own scan, plus one pooled connection for the hosts
    // behind it (the inner hop is shared, not opened per host).
    let outer_logins = fleet.host("outer").sshd_log_count(LOGIN) - outer_before;
    let inner_logins = fleet.host("inner").sshd_log_count(LOGIN) - inner_before;
    assert_eq!(outer_logins, 2, "logins on the outer bastion");
    assert_eq!(inner_logins, 2, "logins on the inner bastion");
}

#[test]
fn a_bastion_that_goes_away_fails_only_the_hosts_behind_it() {
    let mut hosts = vec![("gone-bastion".to_string(), Scenario::Bastion)];
    // In flight when the bastion goes away: their probes hang.
    hosts.extend((0..3).map(|i| {
        (
            format!("busy-{i}"),
            Scenario::BehindBastionHung("gone-bastion".into()),
        )
    }));
    hosts.extend((0..3).map(|i| (format!("direct-{i}"), Scenario::Clean)));
    // Reached for after the bastion went away.
    hosts.extend((0..3).map(|i| {
        (
            format!("later-{i}"),
            Scenario::BehindBastion("gone-bastion".into()),
        )
    }));
    let mut fleet = fleet(244, hosts);
    let bastion_address = fleet.host("gone-bastion").address().to_string();
    let report = fleet.dir().join("report.yaml");
    let started = Instant::now();
    // Three at a time: the bastion, then the three hung hosts behind it hold
    // every slot until the bastion goes; the others come after.
    let child = Command::new(FLEETSWEEP)
        .args(["scan", "-i"])
        .arg(fleet.inventory_path())
        .arg("--report")
        .arg(&report)
        .args(["--no-state", "--no-progress", "--concurrency", "3"])
        .args(["--host-timeout", "60s"])
        .env_remove("SSH_AUTH_SOCK")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running fleetsweep");
    let deadline = Instant::now() + Duration::from_secs(45);
    while !(0..3).all(|i| fleet.host(&format!("busy-{i}")).sshd_log_count(LOGIN) > 0) {
        assert!(
            Instant::now() < deadline,
            "the hung hosts behind the bastion never logged in"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Their probes are running; the bastion goes away.
    std::thread::sleep(Duration::from_millis(500));
    fleet.kill_host("gone-bastion").unwrap();
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let r = finished(&out, &report);

    assert_eq!(r.host("gone-bastion").outcome, "scanned");
    for i in 0..3 {
        let h = r.host(&format!("direct-{i}"));
        assert_eq!(h.outcome, "scanned", "{:?}", h.error);
    }
    for name in (0..3).flat_map(|i| [format!("busy-{i}"), format!("later-{i}")]) {
        let h = r.host(&name);
        let error = h.error.clone().unwrap_or_default();
        assert_eq!(h.outcome, "unreachable", "{name}: {error}");
        assert!(
            error.contains(&format!("bastion {USER}@{bastion_address}:{PORT}")),
            "{name}: the error names the bastion: {error}"
        );
    }
    let busy = r.host("busy-0").error.clone().unwrap_or_default();
    assert!(busy.contains("was lost"), "{busy}");
    let later = r.host("later-0").error.clone().unwrap_or_default();
    assert!(later.contains("could not be opened again"), "{later}");
    // Not held up until the host timeout: the loss is noticed at once.
    assert!(took < Duration::from_secs(50), "took {took:?}");
}

#[test]
fn servers_that_refuse_startups_are_scanned_when_they_can_be_and_explained_when_not() {
    let fleet = fleet(
        245,
        vec![
            ("tiny".to_string(), Scenario::MaxStartups("2:50:4".into())),
            ("full".to_string(), Scenario::MaxStartups("1".into())),
        ],
    );
    let tiny = fleet.host("tiny");
    let full = fleet.host("full");

    // Forty inventory entries for the one tiny server, all at once: at most
    // two of ours in start-up at a time, and what it still drops is retried.
    let mut inv = format!(
        "defaults:\n  user: {USER}\n  port: {PORT}\n  identity_file: {}\n  known_hosts: {}\n  max_startups: 2\nhosts:\n",
        fleet.client_key_path().display(),
        fleet.known_hosts_path().display()
    );
    for i in 0..40 {
        inv.push_str(&format!(
            "  - {{name: tiny-{i:02}, address: {}}}\n",
            tiny.address()
        ));
    }
    let inventory = fleet.dir().join("tiny.yaml");
    std::fs::write(&inventory, inv).unwrap();
    let report = fleet.dir().join("tiny-report.yaml");
    let out = scan(&inventory, &report, &["--concurrency", "40"]);
    let r = finished(&out, &report);
    assert_eq!(r.hosts.len(), 40);
    assert_eq!(
        not_scanned(&r),
        Vec::<String>::new(),
        "every entry is scanned"
    );

    // `full` takes one connection in start-up, and one is held open here
    // (sshd gives it LoginGraceTime, 2 minutes): every other is dropped.
    let mut held = TcpStream::connect((full.address(), PORT)).unwrap();
    held.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut banner = [0u8; 4];
    held.read_exact(&mut banner).unwrap();
    assert_eq!(&banner, b"SSH-");
    let dropped_before = full.sshd_log_count(DROPPED);
    let report = fleet.dir().join("full-report.yaml");
    let started = Instant::now();
    let out = scan(
        &fleet.inventory_path(),
        &report,
        &["--limit", "full", "--host-timeout", "60s"],
    );
    let took = started.elapsed();
    let r = finished(&out, &report);
    let h = r.host("full");
    let error = h.error.clone().unwrap_or_default();
    assert_eq!(h.outcome, "unreachable", "{error}");
    for part in [
        "before authentication on 5 attempts",
        "MaxStartups",
        "PerSourcePenalties",
        "--concurrency",
        "max_startups:",
        "bastion",
    ] {
        assert!(error.contains(part), "missing {part:?}: {error}");
    }
    // Bounded and spaced: five connections, with pauses between them.
    let dropped = full.sshd_log_count(DROPPED) - dropped_before;
    assert_eq!(dropped, 5, "connections sshd dropped");
    assert!(
        took >= Duration::from_millis(1800),
        "retried too fast: {took:?}"
    );
    assert!(took < Duration::from_secs(30), "took {took:?}");
    drop(held);
}
