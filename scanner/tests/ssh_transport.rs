#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! The SSH transport against real OpenSSH `sshd` processes on 127.0.77.x.
//!
//! Must run as root (sshd, and logging in as root). Nothing here is skipped: a
//! machine without openssh-server fails with the command that installs it.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetsweep::transport::known_hosts::HostKeyPolicy;
use fleetsweep::transport::ssh::{self, SshSession};
use fleetsweep::transport::{Passphrase, SshEndpoint, SshSettings, SshTarget, TransportError};
use support::{
    certify, keygen, public_line, Agent, Principal, Sshd, SshdConfig, PASSPHRASE, PASSPHRASE_VAR,
};
use tempfile::TempDir;

/// A test's own directory: client keys, CAs and known_hosts files.
struct Lab {
    dir: TempDir,
}

impl Lab {
    fn new() -> Lab {
        support::init();
        Lab {
            dir: tempfile::Builder::new()
                .prefix("fleetsweep-lab-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn key(&self, name: &str) -> PathBuf {
        keygen(&self.path(name), "ed25519", "")
    }

    fn known_hosts(&self, name: &str, lines: &[String]) -> PathBuf {
        let path = self.path(name);
        let mut text = lines.join("\n");
        text.push('\n');
        std::fs::write(&path, text).expect("write known_hosts");
        path
    }
}

fn settings(known_hosts: &[PathBuf]) -> SshSettings {
    SshSettings {
        known_hosts: known_hosts.to_vec(),
        accept_new_host_keys: None,
        use_agent: false,
        passphrase: Passphrase::None,
        connect_timeout: Duration::from_secs(10),
    }
}

fn endpoint(sshd: &Sshd, identities: &[&Path]) -> SshEndpoint {
    SshEndpoint {
        address: sshd.address.as_str().into(),
        port: sshd.port,
        user: "root".into(),
        identity_files: identities.iter().map(|p| p.to_path_buf()).collect(),
    }
}

fn direct(endpoint: SshEndpoint) -> SshTarget {
    SshTarget {
        endpoint,
        jumps: Vec::new().into(),
    }
}

fn policy(settings: &SshSettings) -> Arc<HostKeyPolicy> {
    Arc::new(
        HostKeyPolicy::load(&settings.known_hosts, settings.accept_new_host_keys.clone())
            .expect("load known_hosts"),
    )
}

async fn connect(target: &SshTarget, settings: &SshSettings) -> Result<SshSession, TransportError> {
    ssh::connect(target, settings, &policy(settings)).await
}

async fn connect_ok(target: &SshTarget, settings: &SshSettings) -> SshSession {
    match connect(target, settings).await {
        Ok(session) => session,
        Err(e) => panic!("connect to {:?} failed: {e:?}", target.endpoint.address),
    }
}

async fn whoami(session: &mut SshSession) -> String {
    let out = session
        .exec("id -un", b"", 1024)
        .await
        .expect("exec id -un");
    assert_eq!(out.exit_status, Some(0), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One host, one key, known_hosts with its key: the common case.
struct Simple {
    lab: Lab,
    sshd: Sshd,
    key: PathBuf,
    known_hosts: PathBuf,
}

fn simple() -> Simple {
    let lab = Lab::new();
    let key = lab.key("id_ed25519");
    let sshd = Sshd::start(&SshdConfig::authorized(&[&key]));
    let known_hosts = lab.known_hosts("known_hosts", &[sshd.known_hosts_line()]);
    Simple {
        lab,
        sshd,
        key,
        known_hosts,
    }
}

// ---- exec ----------------------------------------------------------------

#[tokio::test]
async fn exec_returns_stdout_stderr_exit_status_and_stdin() {
    let s = simple();
    let settings = settings(std::slice::from_ref(&s.known_hosts));
    let mut session = connect_ok(&direct(endpoint(&s.sshd, &[&s.key])), &settings).await;

    let out = session
        .exec("echo out; echo err >&2; exit 3", b"", 1024)
        .await
        .expect("exec");
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.exit_status, Some(3));
    assert!(!out.truncated);

    // Several commands on one session; stdin is delivered, then EOF.
    let out = session
        .exec("cat; echo done", b"line 1\nline 2\n", 1024)
        .await
        .expect("exec cat");
    assert_eq!(out.stdout, b"line 1\nline 2\ndone\n");
    assert_eq!(out.exit_status, Some(0));

    // More stdin than one channel window (2 MiB) flows through.
    let big = vec![b'x'; 3 * 1024 * 1024 + 17];
    let out = session.exec("wc -c", &big, 1024).await.expect("exec wc");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        big.len().to_string()
    );

    // A command that ignores a large stdin still finishes.
    let out = session
        .exec("echo ignored", &big, 1024)
        .await
        .expect("exec ignore stdin");
    assert_eq!(out.stdout, b"ignored\n");
    assert_eq!(whoami(&mut session).await, "root");
    session.close().await;
}

#[tokio::test]
async fn exec_truncates_each_stream_at_the_limit_but_reads_to_the_end() {
    let s = simple();
    let settings = settings(std::slice::from_ref(&s.known_hosts));
    let mut session = connect_ok(&direct(endpoint(&s.sshd, &[&s.key])), &settings).await;
    let out = session
        .exec(
            "head -c 5000000 /dev/zero; head -c 300 /dev/zero | tr '\\0' e >&2; exit 7",
            b"",
            1000,
        )
        .await
        .expect("exec");
    assert_eq!(out.stdout.len(), 1000);
    assert_eq!(out.stderr, vec![b'e'; 300]);
    assert!(out.truncated);
    // The exit status arrives after all the dropped output was read.
    assert_eq!(out.exit_status, Some(7));

    let out = session
        .exec("printf 12345", b"", 5)
        .await
        .expect("exec exact");
    assert_eq!(out.stdout, b"12345");
    assert!(!out.truncated);
    session.close().await;
}

#[tokio::test]
async fn a_command_that_keeps_streaming_past_the_limit_is_cut_off() {
    let s = simple();
    let settings = settings(std::slice::from_ref(&s.known_hosts));
    let mut session = connect_ok(&direct(endpoint(&s.sshd, &[&s.key])), &settings).await;

    // Fast and endless on both streams: stopped by the byte budget (16 MiB).
    let started = Instant::now();
    let out = session
        .exec("cat /dev/zero & cat /dev/zero >&2; wait", b"", 1000)
        .await
        .expect("exec");
    assert_eq!(out.stdout.len(), 1000);
    assert_eq!(out.stderr.len(), 1000);
    assert!(out.truncated);
    assert_eq!(out.exit_status, None, "cut off, not ended");
    let fast = started.elapsed();

    // Slow and endless: stopped 10 s after stdout was cut.
    let started = Instant::now();
    let out = session
        .exec("while :; do echo tick; sleep 0.2; done", b"", 10)
        .await
        .expect("exec");
    let slow = started.elapsed();
    assert_eq!(out.stdout, b"tick\ntick\n");
    assert!(out.truncated);
    assert!(
        slow >= Duration::from_secs(9) && slow < Duration::from_secs(30),
        "{slow:?}"
    );
    println!("cut off after {fast:?} (fast stream), {slow:?} (slow stream)");

    // The connection is still good for the next command.
    assert_eq!(whoami(&mut session).await, "root");
    session.close().await;
}

// ---- authentication ------------------------------------------------------

#[tokio::test]
async fn encrypted_key_with_passphrase_from_env() {
    let lab = Lab::new();
    let key = keygen(&lab.path("id_enc"), "ed25519", PASSPHRASE);
    let sshd = Sshd::start(&SshdConfig::authorized(&[&key]));
    let mut settings = settings(&[lab.known_hosts("kh", &[sshd.known_hosts_line()])]);
    settings.passphrase = Passphrase::Env(PASSPHRASE_VAR.into());
    let mut session = connect_ok(&direct(endpoint(&sshd, &[&key])), &settings).await;
    assert_eq!(whoami(&mut session).await, "root");
}

#[tokio::test]
async fn encrypted_key_with_passphrase_from_file() {
    let lab = Lab::new();
    let key = keygen(&lab.path("id_enc"), "ed25519", PASSPHRASE);
    let sshd = Sshd::start(&SshdConfig::authorized(&[&key]));
    let pass_file = lab.path("passphrase");
    std::fs::write(
        &pass_file,
        format!("{PASSPHRASE}\nsecond line is ignored\n"),
    )
    .expect("write");
    let mut settings = settings(&[lab.known_hosts("kh", &[sshd.known_hosts_line()])]);
    settings.passphrase = Passphrase::File(pass_file);
    let mut session = connect_ok(&direct(endpoint(&sshd, &[&key])), &settings).await;
    assert_eq!(whoami(&mut session).await, "root");
}

#[tokio::test]
async fn encrypted_key_without_passphrase_is_auth_failed_with_the_fix() {
    let lab = Lab::new();
    let key = keygen(&lab.path("id_enc"), "ed25519", PASSPHRASE);
    let sshd = Sshd::start(&SshdConfig::authorized(&[&key]));
    let settings = settings(&[lab.known_hosts("kh", &[sshd.known_hosts_line()])]);
    let err = connect(&direct(endpoint(&sshd, &[&key])), &settings)
        .await
        .err();
    let Some(TransportError::AuthFailed(msg)) = err else {
        panic!("expected AuthFailed, got {err:?}");
    };
    assert!(msg.contains("is encrypted"), "{msg}");
    assert!(
        msg.contains("passphrase_env") && msg.contains("passphrase_file"),
        "{msg}"
    );

    // A wrong passphrase says so too.
    let mut wrong = settings.clone();
    let pass_file = lab.path("wrong");
    std::fs::write(&pass_file, "nope\n").expect("write");
    wrong.passphrase = Passphrase::File(pass_file);
    let err = connect(&direct(endpoint(&sshd, &[&key])), &wrong)
        .await
        .err();
    assert!(
        matches!(&err, Some(TransportError::AuthFailed(m)) if m.contains("cannot decrypt")),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_key_is_auth_failed_naming_user_and_keys() {
    let lab = Lab::new();
    let allowed = lab.key("id_allowed");
    let other = lab.key("id_other");
    let sshd = Sshd::start(&SshdConfig::authorized(&[&allowed]));
    let settings = settings(&[lab.known_hosts("kh", &[sshd.known_hosts_line()])]);
    let missing = lab.path("id_missing");
    let err = connect(&direct(endpoint(&sshd, &[&other, &missing])), &settings)
        .await
        .err();
    let Some(TransportError::AuthFailed(msg)) = err else {
        panic!("expected AuthFailed, got {err:?}");
    };
    assert!(
        msg.contains("refused public-key auth for user 'root'"),
        "{msg}"
    );
    assert!(msg.contains(&other.display().to_string()), "{msg}");
    assert!(
        msg.contains(&format!("{} does not exist", missing.display())),
        "{msg}"
    );
}

#[tokio::test]
async fn agent_keys_are_offered_first() {
    let lab = Lab::new();
    let key = lab.key("id_agent");
    let sshd = Sshd::start(&SshdConfig::authorized(&[&key]));
    let agent = Agent::start();
    agent.add(&key);
    // The key file itself is gone: only the agent can sign.
    std::fs::remove_file(&key).expect("remove key");
    let mut settings = settings(&[lab.known_hosts("kh", &[sshd.known_hosts_line()])]);
    settings.use_agent = true;
    let mut session = connect_ok(&direct(endpoint(&sshd, &[])), &settings).await;
    assert_eq!(whoami(&mut session).await, "root");
    session.close().await;

    // An agent holding only a refused key: the message names the agent.
    let other = lab.key("id_other");
    let agent_msg = {
        drop(agent);
        let agent = Agent::start();
        agent.add(&other);
        let err = connect(&direct(endpoint(&sshd, &[])), &settings)
            .await
            .err();
        match err {
            Some(TransportError::AuthFailed(msg)) => msg,
            other => panic!("expected AuthFailed, got {other:?}"),
        }
    };
    assert!(agent_msg.contains("tried agent (1 key)"), "{agent_msg}");
}

#[tokio::test]
async fn rsa_key_signs_with_sha2() {
    // OpenSSH 9 refuses SHA-1 `ssh-rsa` signatures, so success means rsa-sha2-*.
    let lab = Lab::new();
    let key = keygen(&lab.path("id_rsa"), "rsa", "");
    let sshd = Sshd::start(&SshdConfig::authorized(&[&key]));
    let settings = settings(&[lab.known_hosts("kh", &[sshd.known_hosts_line()])]);
    let mut session = connect_ok(&direct(endpoint(&sshd, &[&key])), &settings).await;
    assert_eq!(whoami(&mut session).await, "root");
    let log = sshd.log_text();
    assert!(
        log.contains("RSA SHA256:") || log.contains("rsa-sha2"),
        "{log}"
    );
}

#[tokio::test]
async fn user_certificate_next_to_the_key_is_used() {
    let lab = Lab::new();
    let user_ca = lab.key("user_ca");
    let key = lab.key("id_cert");
    certify(&user_ca, &key, false, "root");
    let config = SshdConfig {
        authorized: Vec::new(),
        host_certificate: None,
        trusted_user_ca: Some(support::pub_path(&user_ca)),
        allow_tcp_forwarding: true,
    };
    let sshd = Sshd::start(&config);
    let settings = settings(&[lab.known_hosts("kh", &[sshd.known_hosts_line()])]);
    let mut session = connect_ok(&direct(endpoint(&sshd, &[&key])), &settings).await;
    assert_eq!(whoami(&mut session).await, "root");
}

// ---- host keys -----------------------------------------------------------

#[tokio::test]
async fn unknown_host_is_rejected_with_the_fix() {
    let s = simple();
    let empty = s.lab.known_hosts("empty", &[]);
    let settings = settings(std::slice::from_ref(&empty));
    let err = connect(&direct(endpoint(&s.sshd, &[&s.key])), &settings)
        .await
        .err();
    let Some(TransportError::HostKeyRejected(msg)) = err else {
        panic!("expected HostKeyRejected, got {err:?}");
    };
    let name = format!("[{}]:2222", s.sshd.address);
    assert!(
        msg.contains(&format!("host key for {name} is not in known_hosts")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "ssh-keyscan -p 2222 {} >> {}",
            s.sshd.address,
            empty.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("--accept-new-host-keys FILE"), "{msg}");
}

#[tokio::test]
async fn changed_host_key_is_a_mismatch() {
    let s = simple();
    let impostor = s.lab.key("impostor_host_key");
    let kh = s.lab.known_hosts(
        "kh_changed",
        &[format!(
            "[{}]:2222 {}",
            s.sshd.address,
            public_line(&impostor)
        )],
    );
    let err = connect(&direct(endpoint(&s.sshd, &[&s.key])), &settings(&[kh]))
        .await
        .err();
    let Some(TransportError::HostKeyRejected(msg)) = err else {
        panic!("expected HostKeyRejected, got {err:?}");
    };
    assert!(msg.contains("host key MISMATCH"), "{msg}");
    assert!(msg.contains("possible man-in-the-middle"), "{msg}");
}

#[tokio::test]
async fn hashed_known_hosts_entry_is_accepted() {
    let s = simple();
    let kh = s.lab.known_hosts("kh_hashed", &[s.sshd.known_hosts_line()]);
    hash_known_hosts(&kh);
    let mut session = connect_ok(&direct(endpoint(&s.sshd, &[&s.key])), &settings(&[kh])).await;
    assert_eq!(whoami(&mut session).await, "root");
}

/// `ssh-keygen -H` on a known_hosts file.
fn hash_known_hosts(path: &Path) {
    support::run(
        std::process::Command::new("ssh-keygen")
            .arg("-H")
            .arg("-f")
            .arg(path),
    );
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.starts_with("|1|"), "{text}");
}

/// A host that offers Ed25519 first while its (hashed) known_hosts line
/// holds only its ECDSA key: hashed lines are found by the presented key,
/// so the first handshake finds none and is refused, the policy has then
/// read the host's lines, and the second handshake asks for ECDSA and is
/// trusted. A line with another ECDSA key is still a mismatch after the
/// second handshake, and there is no third.
#[tokio::test]
async fn hashed_line_with_another_key_type_is_asked_for_on_a_second_handshake() {
    let lab = Lab::new();
    let key = lab.key("id_ed25519");
    let ecdsa = support::keygen(&lab.path("host_ecdsa"), "ecdsa", "");
    let sshd = Sshd::start_with(
        &SshdConfig::authorized(&[&key]),
        &format!("HostKey {}\n", ecdsa.display()),
    );
    let line =
        |host_key: &Path| format!("[{}]:{} {}", sshd.address, sshd.port, public_line(host_key));
    let kh = lab.known_hosts("kh_ecdsa_only", &[line(&ecdsa)]);
    hash_known_hosts(&kh);
    // What the sshd saw: one line per TCP connection it accepted (the
    // harness's own banner check before the first).
    let connections = || sshd.log_text().matches("Connection from ").count();
    let before = connections();
    let mut session = connect_ok(&direct(endpoint(&sshd, &[&key])), &settings(&[kh])).await;
    assert_eq!(whoami(&mut session).await, "root");
    drop(session);
    assert_eq!(connections() - before, 2, "{}", sshd.log_text());

    let other = support::keygen(&lab.path("other_ecdsa"), "ecdsa", "");
    let kh = lab.known_hosts("kh_other_ecdsa", &[line(&other)]);
    hash_known_hosts(&kh);
    let err = connect(&direct(endpoint(&sshd, &[&key])), &settings(&[kh]))
        .await
        .err();
    let Some(TransportError::HostKeyRejected(msg)) = err else {
        panic!("expected HostKeyRejected, got {err:?}");
    };
    assert!(msg.contains("host key MISMATCH"), "{msg}");
    assert!(msg.contains("ecdsa-sha2-nistp256"), "{msg}");
    // A host that keeps presenting keys the file does not hold gets one
    // second handshake, never a third.
    assert_eq!(connections() - before, 4, "{}", sshd.log_text());
}

#[tokio::test]
async fn wildcard_entry_with_negation_and_several_files() {
    let s = simple();
    let host_key = public_line(&s.sshd.host_key);
    let unrelated = s
        .lab
        .known_hosts("kh_other", &[format!("unrelated.example {host_key}")]);
    let wildcard = s.lab.known_hosts(
        "kh_wild",
        &[format!("[127.0.77.*]:2222,![127.0.77.250]:2222 {host_key}")],
    );
    let mut session = connect_ok(
        &direct(endpoint(&s.sshd, &[&s.key])),
        &settings(&[unrelated, wildcard.clone()]),
    )
    .await;
    assert_eq!(whoami(&mut session).await, "root");

    let negated = s.lab.known_hosts(
        "kh_neg",
        &[format!(
            "[127.0.77.*]:2222,![{}]:2222 {host_key}",
            s.sshd.address
        )],
    );
    let err = connect(&direct(endpoint(&s.sshd, &[&s.key])), &settings(&[negated]))
        .await
        .err();
    assert!(
        matches!(err, Some(TransportError::HostKeyRejected(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn revoked_host_key_is_rejected_even_if_listed() {
    let s = simple();
    let kh = s.lab.known_hosts(
        "kh_revoked",
        &[
            s.sshd.known_hosts_line(),
            format!("@revoked * {}", public_line(&s.sshd.host_key)),
        ],
    );
    let err = connect(&direct(endpoint(&s.sshd, &[&s.key])), &settings(&[kh]))
        .await
        .err();
    assert!(
        matches!(&err, Some(TransportError::HostKeyRejected(m)) if m.contains("@revoked")),
        "{err:?}"
    );
}

#[tokio::test]
async fn cert_authority_accepts_a_host_certificate_for_this_address() {
    let lab = Lab::new();
    let key = lab.key("id_ed25519");
    let ca = lab.key("host_ca");
    let mut config = SshdConfig::authorized(&[&key]);
    config.host_certificate = Some((ca.clone(), Principal::OwnAddress));
    let sshd = Sshd::start(&config);
    let kh = lab.known_hosts(
        "kh_ca",
        &[format!(
            "@cert-authority [127.0.77.*]:2222 {}",
            public_line(&ca)
        )],
    );
    let mut session = connect_ok(&direct(endpoint(&sshd, &[&key])), &settings(&[kh])).await;
    assert_eq!(whoami(&mut session).await, "root");
}

#[tokio::test]
async fn host_certificate_for_another_principal_is_rejected() {
    let lab = Lab::new();
    let key = lab.key("id_ed25519");
    let ca = lab.key("host_ca");
    let mut config = SshdConfig::authorized(&[&key]);
    config.host_certificate = Some((ca.clone(), Principal::Name("somebody-else.example".into())));
    let sshd = Sshd::start(&config);
    let kh = lab.known_hosts(
        "kh_ca",
        &[format!(
            "@cert-authority [127.0.77.*]:2222 {}",
            public_line(&ca)
        )],
    );
    let err = connect(&direct(endpoint(&sshd, &[&key])), &settings(&[kh]))
        .await
        .err();
    let Some(TransportError::HostKeyRejected(msg)) = err else {
        panic!("expected HostKeyRejected, got {err:?}");
    };
    assert!(msg.contains("somebody-else.example"), "{msg}");
    assert!(msg.contains(&sshd.address), "{msg}");
}

#[tokio::test]
async fn accept_new_records_the_key_and_a_strict_rerun_accepts_it() {
    let s = simple();
    let learned = s.lab.path("learned_hosts");
    let empty = s.lab.known_hosts("empty", &[]);
    let mut tofu = settings(std::slice::from_ref(&empty));
    tofu.accept_new_host_keys = Some(learned.clone());
    let target = direct(endpoint(&s.sshd, &[&s.key]));

    // One policy for the "run": the second connection sees the learned key.
    let policy = policy(&tofu);
    let mut first = ssh::connect(&target, &tofu, &policy)
        .await
        .expect("first connection");
    assert_eq!(whoami(&mut first).await, "root");
    let second = ssh::connect(&target, &tofu, &policy)
        .await
        .expect("second connection");
    second.close().await;
    first.close().await;

    let text = std::fs::read_to_string(&learned).expect("read learned");
    assert_eq!(text, format!("{}\n", s.sshd.known_hosts_line()));

    // Next run, strict, with the learned file as known_hosts.
    let mut session = connect_ok(&target, &settings(std::slice::from_ref(&learned))).await;
    assert_eq!(whoami(&mut session).await, "root");

    // A changed key is still refused in accept-new mode.
    let impostor = s.lab.key("impostor");
    let changed = s.lab.known_hosts(
        "kh_changed",
        &[format!(
            "[{}]:2222 {}",
            s.sshd.address,
            public_line(&impostor)
        )],
    );
    let mut tofu_changed = settings(&[changed]);
    tofu_changed.accept_new_host_keys = Some(s.lab.path("learned_2"));
    let err = connect(&target, &tofu_changed).await.err();
    assert!(
        matches!(&err, Some(TransportError::HostKeyRejected(m)) if m.contains("MISMATCH")),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accept_new_is_safe_with_many_concurrent_connections() {
    let lab = Lab::new();
    let key = lab.key("id_ed25519");
    let hosts = [
        Sshd::start(&SshdConfig::authorized(&[&key])),
        Sshd::start(&SshdConfig::authorized(&[&key])),
    ];
    let learned = lab.path("learned");
    let mut tofu = settings(&[]);
    tofu.accept_new_host_keys = Some(learned.clone());
    let policy = policy(&tofu);
    let mut tasks = Vec::new();
    for i in 0..12 {
        let target = direct(endpoint(&hosts[i % 2], &[&key]));
        let (tofu, policy) = (tofu.clone(), Arc::clone(&policy));
        tasks.push(tokio::spawn(async move {
            let mut session = ssh::connect(&target, &tofu, &policy).await?;
            let out = session.exec("true", b"", 10).await?;
            session.close().await;
            Ok::<_, TransportError>(out.exit_status)
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("join").expect("connection"), Some(0));
    }
    let text = std::fs::read_to_string(&learned).expect("read learned");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    let mut want = vec![hosts[0].known_hosts_line(), hosts[1].known_hosts_line()];
    want.sort_unstable();
    assert_eq!(lines, want);
}

// ---- ProxyJump -----------------------------------------------------------

fn forwarded_to(bastion: &Sshd, to: &Sshd) -> bool {
    bastion
        .log_text()
        .contains(&format!("target {} port {}", to.address, to.port))
}

#[tokio::test]
async fn proxy_jump_through_one_bastion() {
    let lab = Lab::new();
    let key = lab.key("id_ed25519");
    let bastion = Sshd::start(&SshdConfig::authorized(&[&key]));
    let host = Sshd::start(&SshdConfig::authorized(&[&key]));
    let kh = lab.known_hosts("kh", &[bastion.known_hosts_line(), host.known_hosts_line()]);
    let target = SshTarget {
        endpoint: endpoint(&host, &[&key]),
        jumps: vec![endpoint(&bastion, &[&key])].into(),
    };
    let mut session = connect_ok(&target, &settings(&[kh])).await;
    let out = session
        .exec("cat", b"through the tunnel", 1024)
        .await
        .expect("exec");
    assert_eq!(out.stdout, b"through the tunnel");
    session.close().await;
    assert!(
        forwarded_to(&bastion, &host),
        "bastion log:\n{}",
        bastion.log_text()
    );
}

/// A TCP server on 127.0.0.1 that writes to its first client until the
/// client goes away; the thread returns how much it wrote.
fn flood_server() -> (u16, std::thread::JoinHandle<usize>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the flood server");
    let port = listener.local_addr().unwrap().port();
    let flood = std::thread::spawn(move || {
        let (mut client, _) = listener.accept().expect("accept");
        let chunk = vec![b'x'; 1 << 16];
        let mut sent = 0;
        while client.write_all(&chunk).is_ok() {
            sent += chunk.len();
        }
        sent
    });
    (port, flood)
}

/// A server that sends a little every 50 ms and never closes, until its
/// socket is closed; returns what it sent.
fn trickle_server() -> (u16, std::thread::JoinHandle<usize>) {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the trickle server");
    let port = listener.local_addr().unwrap().port();
    let trickle = std::thread::spawn(move || {
        let (mut client, _) = listener.accept().expect("accept");
        let mut sent = 0;
        while client.write_all(b"still here\n").is_ok() {
            sent += 11;
            std::thread::sleep(Duration::from_millis(50));
        }
        sent
    });
    (port, trickle)
}

/// Opens a new channel through `bastion` to `sshd` and reads its SSH banner
/// within 20 s; `held_up` is the failure when it does not come.
async fn banner_through(bastion: &mut SshSession, sshd: &Sshd, held_up: &str) {
    use tokio::io::AsyncReadExt;
    let banner = tokio::time::timeout(Duration::from_secs(20), async {
        let mut other = bastion
            .forward(&sshd.address, sshd.port)
            .await
            .expect("forwarding to sshd");
        let mut buf = [0u8; 64];
        let n = other.read(&mut buf).await.expect("reading the banner");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .expect(held_up);
    assert!(banner.starts_with("SSH-2.0-"), "{banner:?}");
}

/// A forwarded channel nobody reads (a target session busy elsewhere, or a
/// peer sending past SSH flow control) never holds up the connection it
/// shares: another channel through the same bastion opens and carries data,
/// the flooded one is cut off at the cap with an error that says why, and
/// the bastion connection goes on working and closes promptly.
#[tokio::test]
async fn a_channel_nobody_reads_never_holds_up_the_others_on_its_bastion() {
    use tokio::io::AsyncReadExt;
    let s = simple();
    let mut bastion = connect_ok(
        &direct(endpoint(&s.sshd, &[&s.key])),
        &settings(std::slice::from_ref(&s.known_hosts)),
    )
    .await;
    let (port, flood) = flood_server();
    let mut unread = bastion
        .forward("127.0.0.1", port)
        .await
        .expect("forwarding to the flood server");
    // russh's queue for a channel holds 8 messages; the flood fills it at once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    banner_through(
        &mut bastion,
        &s.sshd,
        "a second channel was held up by the unread one on the same connection",
    )
    .await;

    // The flood ends when the bastion closes the flooded channel's socket.
    let sent = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || flood.join().expect("flood thread")),
    )
    .await
    .expect("the flooded channel was never cut off")
    .unwrap();
    assert!(sent > ssh::MAX_AHEAD, "only {sent} bytes sent");
    let mut kept = 0;
    let mut buf = vec![0u8; 1 << 16];
    let err = loop {
        match unread.read(&mut buf).await {
            Ok(0) => panic!("the flooded channel ended without an error after {kept} bytes"),
            Ok(n) => kept += n,
            Err(e) => break e,
        }
    };
    assert!(
        kept <= ssh::MAX_AHEAD,
        "{kept} bytes kept for a reader that never read"
    );
    assert_eq!(
        err.to_string(),
        "127.0.0.1:".to_string()
            + &port.to_string()
            + " sent more than 8 MiB through the bastion ahead of what its SSH session had read (past SSH flow control): channel closed"
    );
    drop(unread);

    assert_eq!(
        whoami(&mut bastion).await,
        "root",
        "the bastion connection still works"
    );
    let closing = Instant::now();
    bastion.close().await;
    assert!(
        closing.elapsed() < Duration::from_secs(5),
        "closing took {:?}",
        closing.elapsed()
    );
}

/// A host behind a bastion that ignores the end of its channel (keeps
/// sending after our EOF, never closes) is cut off from our end after the
/// wait for its close, and holds nothing else up meanwhile: the bastion
/// connection opens other channels and carries on.
#[tokio::test]
async fn a_peer_that_never_closes_its_channel_is_cut_off_and_holds_nothing_up() {
    let s = simple();
    let mut bastion = connect_ok(
        &direct(endpoint(&s.sshd, &[&s.key])),
        &settings(std::slice::from_ref(&s.known_hosts)),
    )
    .await;
    let (port, trickle) = trickle_server();
    let dropped = bastion
        .forward("127.0.0.1", port)
        .await
        .expect("forwarding to the flood server");
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The session lets go of its channel; the peer goes on sending.
    drop(dropped);
    banner_through(
        &mut bastion,
        &s.sshd,
        "a channel was held up by the one being let go of",
    )
    .await;
    // Cut off from our end once the wait for its close is over (5 s): the
    // bastion then closes the peer's socket.
    let let_go = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || trickle.join().expect("trickle thread")),
    )
    .await
    .expect("a peer that never closes its channel was never cut off")
    .unwrap();
    assert!(
        let_go.elapsed() >= Duration::from_secs(3),
        "cut off after {:?}: before the peer had its chance to close",
        let_go.elapsed()
    );
    assert_eq!(
        whoami(&mut bastion).await,
        "root",
        "the bastion connection still works"
    );
    bastion.close().await;
}

#[tokio::test]
async fn proxy_jump_through_two_bastions() {
    let lab = Lab::new();
    let key = lab.key("id_ed25519");
    let first = Sshd::start(&SshdConfig::authorized(&[&key]));
    let second = Sshd::start(&SshdConfig::authorized(&[&key]));
    let host = Sshd::start(&SshdConfig::authorized(&[&key]));
    let kh = lab.known_hosts(
        "kh",
        &[
            first.known_hosts_line(),
            second.known_hosts_line(),
            host.known_hosts_line(),
        ],
    );
    let target = SshTarget {
        endpoint: endpoint(&host, &[&key]),
        jumps: vec![endpoint(&first, &[&key]), endpoint(&second, &[&key])].into(),
    };
    let mut session = connect_ok(&target, &settings(&[kh])).await;
    assert_eq!(whoami(&mut session).await, "root");
    session.close().await;
    assert!(
        forwarded_to(&first, &second),
        "first bastion log:\n{}",
        first.log_text()
    );
    assert!(
        forwarded_to(&second, &host),
        "second bastion log:\n{}",
        second.log_text()
    );
}

#[tokio::test]
async fn bastion_that_refuses_forwarding_makes_the_target_unreachable() {
    let lab = Lab::new();
    let key = lab.key("id_ed25519");
    let mut config = SshdConfig::authorized(&[&key]);
    config.allow_tcp_forwarding = false;
    let bastion = Sshd::start(&config);
    let host = Sshd::start(&SshdConfig::authorized(&[&key]));
    let kh = lab.known_hosts("kh", &[bastion.known_hosts_line(), host.known_hosts_line()]);
    let target = SshTarget {
        endpoint: endpoint(&host, &[&key]),
        jumps: vec![endpoint(&bastion, &[&key])].into(),
    };
    let err = connect(&target, &settings(&[kh])).await.err();
    let Some(TransportError::Unreachable(msg)) = err else {
        panic!("expected Unreachable, got {err:?}");
    };
    assert!(msg.contains(&format!("{}:2222", host.address)), "{msg}");
    assert!(
        msg.contains(&format!("via bastion root@{}:2222", bastion.address)),
        "{msg}"
    );
}

#[tokio::test]
async fn bastion_failures_name_the_bastion() {
    let lab = Lab::new();
    let key = lab.key("id_ed25519");
    let bastion = Sshd::start(&SshdConfig::authorized(&[&key]));
    let host = Sshd::start(&SshdConfig::authorized(&[&key]));
    // The bastion's own host key is unknown.
    let kh = lab.known_hosts("kh", &[host.known_hosts_line()]);
    let target = SshTarget {
        endpoint: endpoint(&host, &[&key]),
        jumps: vec![endpoint(&bastion, &[&key])].into(),
    };
    let err = connect(&target, &settings(&[kh])).await.err();
    let Some(TransportError::HostKeyRejected(msg)) = err else {
        panic!("expected HostKeyRejected, got {err:?}");
    };
    assert!(
        msg.starts_with(&format!(
            "via bastion root@{}:2222: host key for",
            bastion.address
        )),
        "{msg}"
    );

    // Nothing listens behind the bastion.
    let nowhere = support::next_address();
    let kh = lab.known_hosts("kh2", &[bastion.known_hosts_line()]);
    let target = SshTarget {
        endpoint: SshEndpoint {
            address: nowhere.as_str().into(),
            port: 2222,
            user: "root".into(),
            identity_files: vec![key.clone()].into(),
        },
        jumps: vec![endpoint(&bastion, &[&key])].into(),
    };
    let err = connect(&target, &settings(&[kh])).await.err();
    assert!(
        matches!(&err, Some(TransportError::Unreachable(m)) if m.contains(&nowhere) && m.contains("via bastion")),
        "{err:?}"
    );
}

// ---- reachability and timeouts --------------------------------------------

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let lab = Lab::new();
    let key = lab.key("id_ed25519");
    let address = support::next_address();
    let target = direct(SshEndpoint {
        address: address.as_str().into(),
        port: 2222,
        user: "root".into(),
        identity_files: vec![key].into(),
    });
    let err = connect(&target, &settings(&[])).await.err();
    let Some(TransportError::Unreachable(msg)) = err else {
        panic!("expected Unreachable, got {err:?}");
    };
    assert!(msg.contains(&format!("{address}:2222")), "{msg}");
    assert!(msg.contains("refused"), "{msg}");

    // No lookup of an unresolvable name here: a DNS query would leave the machine.
}

#[tokio::test]
async fn stopped_sshd_times_out_within_the_connect_timeout() {
    let mut s = simple();
    s.sshd.stop();
    let mut settings = settings(std::slice::from_ref(&s.known_hosts));
    settings.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = connect(&direct(endpoint(&s.sshd, &[&s.key])), &settings)
        .await
        .err();
    let elapsed = started.elapsed();
    s.sshd.resume();
    let Some(TransportError::TimedOut(msg)) = err else {
        panic!("expected TimedOut, got {err:?}");
    };
    assert!(
        msg.contains(&format!(
            "connecting to {}:2222: no SSH banner/handshake within 2s",
            s.sshd.address
        )),
        "{msg}"
    );
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
}
