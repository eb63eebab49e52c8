#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! The harness itself, checked with the real OpenSSH client: each test host
//! shows its own packages, processes and files, and the failure scenarios fail
//! the way they should for any SSH client, not just for fleetsweep.

use std::process::Command;

use fleetsweep_e2e::{Fleet, FleetSpec, Scenario, INTERNAL_NAME, PORT, USER};

fn ssh(fleet: &Fleet, extra: &[&str], target: &str, cmd: &str) -> (i32, String, String) {
    let out = Command::new("ssh")
        .args([
            "-n",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ConnectTimeout=3",
        ])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            fleet.known_hosts_path().display()
        ))
        .arg("-i")
        .arg(fleet.client_key_path())
        .args(["-p", &PORT.to_string()])
        .args(extra)
        .arg(format!("{USER}@{target}"))
        .arg(cmd)
        .output()
        .expect("ssh client (apt-get install -y openssh-client)");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn each_host_has_its_own_system_view() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 221,
        hosts: vec![
            ("clean".into(), Scenario::Clean),
            ("kesl".into(), Scenario::Kesl),
            ("rpm".into(), Scenario::RpmNetworkAgent),
            ("rc".into(), Scenario::Remnants),
        ],
    })
    .unwrap();
    let addr = |n: &str| fleet.host(n).address().to_string();

    let (code, out, err) = ssh(&fleet, &[], &addr("kesl"), "dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Version}\\n' kesl; ps -eo comm=; ls /opt/kaspersky; . /etc/os-release; echo $NAME; hostname");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ii  kesl 12.1.0-1297"), "{out}");
    assert!(
        out.lines().any(|l| l == "kesl") && out.lines().any(|l| l == "wdserver"),
        "{out}"
    );
    assert!(
        out.contains("Ubuntu") && out.lines().any(|l| l == "kesl"),
        "{out}"
    );

    let (code, out, err) = ssh(
        &fleet,
        &[],
        &addr("clean"),
        "dpkg-query -W -f='${Package}\\n'; ps -eo comm=; ls /opt",
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("kaspersky-removal-notes") && !out.contains("\nkesl\n"),
        "{out}"
    );
    assert!(
        out.contains("kesl-exporter"),
        "look-alike process runs: {out}"
    );
    assert!(
        !out.lines().any(|l| l == "kaspersky"),
        "no /opt/kaspersky on the clean host: {out}"
    );

    let (code, out, err) = ssh(
        &fleet,
        &[],
        &addr("rpm"),
        "rpm -qa --queryformat '%{NAME} %{VENDOR}\\n'; dpkg-query -W | wc -l; ps -eo comm=",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("klnagent64 AO Kaspersky Lab"), "{out}");
    assert!(
        out.lines().any(|l| l.trim() == "0"),
        "empty dpkg database on the RPM host: {out}"
    );
    assert!(out.lines().any(|l| l == "klnagent"), "{out}");

    let (code, out, err) = ssh(
        &fleet,
        &[],
        &addr("rc"),
        "dpkg-query -W -f='${db:Status-Abbrev} ${Package}\\n' kesl; ls /var/opt/kaspersky",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("rc  kesl"), "{out}");
}

#[test]
fn failure_scenarios_fail_for_the_openssh_client_too() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 222,
        hosts: vec![
            ("bastion".into(), Scenario::Bastion),
            ("inner".into(), Scenario::BehindBastion("bastion".into())),
            ("wrongkey".into(), Scenario::WrongHostKey),
            ("noauth".into(), Scenario::AuthRefused),
            ("hang".into(), Scenario::Hangs),
        ],
    })
    .unwrap();
    let addr = |n: &str| fleet.host(n).address().to_string();

    let (code, _, err) = ssh(&fleet, &[], &addr("wrongkey"), "true");
    assert_ne!(code, 0);
    assert!(
        err.contains("HOST IDENTIFICATION HAS CHANGED")
            || err.contains("Host key verification failed"),
        "{err}"
    );

    let (code, _, err) = ssh(&fleet, &[], &addr("noauth"), "true");
    assert_ne!(code, 0);
    assert!(err.contains("Permission denied"), "{err}");

    let (code, _, err) = ssh(&fleet, &[], &addr("hang"), "true");
    assert_ne!(code, 0);
    assert!(
        err.to_lowercase().contains("timed out") || err.contains("banner"),
        "{err}"
    );

    // The internal name resolves only inside the bastion.
    let jump = format!("{USER}@{}:{PORT}", addr("bastion"));
    let (code, out, err) = ssh(
        &fleet,
        &["-o", &format!("ProxyCommand=ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile={} -i {} -W %h:%p -p {PORT} {}", fleet.known_hosts_path().display(), fleet.client_key_path().display(), jump.split(':').next().unwrap())],
        INTERNAL_NAME,
        "hostname",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "inner");
}

/// A command a test gives up on is killed once its limit passes, and the
/// failure names it, with its stderr and the stacks of its threads; one that
/// finishes in time gives its output as `Command::output` would.
#[test]
fn a_command_past_its_limit_is_killed_and_named_with_its_stacks() {
    use fleetsweep_e2e::output_within;
    use std::time::{Duration, Instant};

    let out = output_within(
        Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");

    let started = Instant::now();
    let failed = std::panic::catch_unwind(|| {
        output_within(
            Command::new("sh").args(["-c", "echo stuck >&2; exec sleep 300"]),
            Duration::from_millis(500),
        )
    })
    .expect_err("a command past its limit fails the test");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{:?}",
        started.elapsed()
    );
    let message = failed
        .downcast_ref::<String>()
        .expect("a formatted panic message");
    assert!(
        message.contains("was still running after 500ms: killed."),
        "{message}"
    );
    assert!(
        message.contains("\"sh\" \"-c\" \"echo stuck >&2; exec sleep 300\""),
        "{message}"
    );
    assert!(message.contains("stderr:\nstuck\n"), "{message}");
    // gdb attached and walked the stack of the stuck process.
    assert!(
        message.contains("Thread 1") || message.contains("#0 "),
        "{message}"
    );
}
