#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! The WinRM transport against a replay server on 127.0.0.1 that serves real
//! recorded WS-Management exchanges of a Windows host (pypsrp's recordings) and
//! checks that every request we send matches the recorded one. NTLM/SPNEGO and
//! message sealing run against `sspi`'s server side with real crypto; TLS against
//! a test CA. See `winrm_server/mod.rs` for what is recorded and what generated.

mod winrm_server;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fleetsweep::transport::winrm::{
    self, PasswordSource, Scheme, WinrmAuth, WinrmSettings, WinrmTarget,
};
use fleetsweep::transport::TransportError;
use fleetsweep_exporters::Outcome;
use tempfile::TempDir;
use winrm_server::{recording, settings_for, Replay, ServerAuth, Twists};

const USER: &str = "vagrant";
const PASSWORD: &str = "Winrm-Test-Pa55";

struct Setup {
    dir: TempDir,
}

impl Setup {
    fn new() -> Setup {
        Setup {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn password_file(&self, password: &str) -> PathBuf {
        let p = self.dir.path().join("password");
        std::fs::write(&p, format!("{password}\n")).unwrap();
        p
    }

    fn ca_file(&self, pem: &str) -> PathBuf {
        let p = self.dir.path().join("ca.pem");
        std::fs::write(&p, pem).unwrap();
        p
    }

    fn target(
        &self,
        replay: &Replay,
        scheme: Scheme,
        auth: WinrmAuth,
        password: &str,
    ) -> WinrmTarget {
        WinrmTarget {
            address: "127.0.0.1".into(),
            port: replay.addr.port(),
            scheme,
            auth,
            user: USER.into(),
            password: PasswordSource::File(self.password_file(password)),
            ca_file: None,
            spn: None,
            kdc: None,
        }
    }
}

fn basic() -> ServerAuth {
    ServerAuth::Basic {
        user: USER.into(),
        password: PASSWORD.into(),
    }
}

fn ntlm() -> ServerAuth {
    ServerAuth::Ntlm {
        user: USER.into(),
        password: PASSWORD.into(),
    }
}

async fn https_basic(name: &str, twists: Twists) -> (Setup, Replay, WinrmTarget, WinrmSettings) {
    let setup = Setup::new();
    let tls = winrm_server::tls();
    let script = recording(name);
    let settings = settings_for(&script);
    let replay = Replay::start(script, basic(), Some(&tls), twists).await;
    let mut target = setup.target(&replay, Scheme::Https, WinrmAuth::Basic, PASSWORD);
    target.ca_file = Some(setup.ca_file(&tls.ca_pem));
    (setup, replay, target, settings)
}

const LIFECYCLE: [&str; 5] = ["Create", "Command", "Receive", "Signal", "Delete"];

#[tokio::test]
async fn basic_over_https_replays_the_standard_recording() {
    let (_s, replay, target, settings) =
        https_basic("test_winrs_standard.yml", Twists::default()).await;
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let out = session.run("cmd.exe /c echo hi", 1024).await.unwrap();
    session.close().await;
    assert_eq!(out.stdout, b"hi\r\n");
    assert_eq!(out.stderr, b"");
    assert_eq!(out.exit_status, Some(0));
    assert!(!out.truncated);
    replay.assert_complete();
    replay.log(|l| {
        assert_eq!(l.actions, LIFECYCLE);
        assert_eq!(l.plain, 5);
        assert_eq!(l.connections, 1, "one keep-alive connection");
    });
}

#[tokio::test]
async fn a_host_that_keeps_streaming_is_terminated_after_the_drain_budget() {
    // The standard lifecycle, but the command never ends: every Receive brings
    // 192 KiB more stdout and CommandState Running. After the drain budget the
    // client stops polling, signals terminate and deletes the shell.
    let recorded = recording("test_winrs_standard.yml");
    let [create, command, receive, signal, delete] = <[_; 5]>::try_from(recorded).unwrap();
    use base64::Engine as _;
    let chunk = vec![b'x'; 3 << 16];
    let limit = 4096;
    let polls = fleetsweep::transport::capture::drain_budget(limit) / chunk.len() + 1;
    let command_id = "CF84C20A-0A35-43FA-AF78-0B4711DA5F30";
    let stream = format!(
        "<rsp:Stream Name=\"stdout\" CommandId=\"{command_id}\">{}</rsp:Stream>",
        base64::engine::general_purpose::STANDARD.encode(&chunk)
    );
    let mut streaming = receive.clone();
    streaming.response = receive
        .response
        .replace(
            &format!(
                "<rsp:Stream Name=\"stdout\" CommandId=\"{command_id}\">aGkNCg==</rsp:Stream>"
            ),
            &stream,
        )
        .replace(" End=\"true\"", "")
        .replace(
            "CommandState/Done\"><rsp:ExitCode>0</rsp:ExitCode></rsp:CommandState>",
            "CommandState/Running\"></rsp:CommandState>",
        );
    assert!(streaming.response.contains(&stream) && streaming.response.contains("Running"));
    let mut script = vec![create, command];
    script.extend(std::iter::repeat_n(streaming, polls));
    script.extend([signal, delete]);

    let setup = Setup::new();
    let tls = winrm_server::tls();
    let settings = settings_for(&script);
    let replay = Replay::start(script, basic(), Some(&tls), Twists::default()).await;
    let mut target = setup.target(&replay, Scheme::Https, WinrmAuth::Basic, PASSWORD);
    target.ca_file = Some(setup.ca_file(&tls.ca_pem));
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let out = session.run("cmd.exe /c echo hi", limit).await.unwrap();
    assert_eq!(out.stdout, vec![b'x'; limit]);
    assert!(out.truncated);
    assert_eq!(out.exit_status, None, "cut off, not ended");
    replay.assert_complete();
    replay.log(|l| {
        assert_eq!(l.actions.len(), polls + 4);
        assert_eq!(l.actions.last().map(String::as_str), Some("Delete"));
    });
}

#[tokio::test]
async fn stderr_and_a_non_zero_exit_code_are_returned() {
    let (_s, replay, target, settings) =
        https_basic("test_winrs_stderr_rc.yml", Twists::default()).await;
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let out = session
        .run("cmd.exe /c echo out && echo err>&2 && exit 1", 1024)
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out \r\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err \r\n");
    assert_eq!(out.exit_status, Some(1));
    replay.assert_complete();
}

#[tokio::test]
async fn output_beyond_the_limit_is_truncated() {
    let (_s, replay, target, settings) =
        https_basic("test_winrs_stderr_rc.yml", Twists::default()).await;
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let out = session
        .run("cmd.exe /c echo out && echo err>&2 && exit 1", 2)
        .await
        .unwrap();
    assert_eq!(out.stdout, b"ou");
    assert_eq!(out.stderr, b"er");
    assert!(out.truncated);
    assert_eq!(out.exit_status, Some(1));
    replay.assert_complete();
}

#[tokio::test]
async fn receive_timeouts_are_polled_again() {
    let script = recording("test_winrs_operation_timeout.yml");
    let receives = script
        .iter()
        .filter(|m| winrm_server::action_of(&m.request) == "Receive")
        .count();
    let timed_out = script
        .iter()
        .filter(|m| m.response.contains("w:TimedOut"))
        .count();
    assert!(
        timed_out >= 2,
        "the recording has {timed_out} TimedOut faults"
    );
    let (_s, replay, target, settings) =
        https_basic("test_winrs_operation_timeout.yml", Twists::default()).await;
    let command = {
        // The recorded command line, as WinRS joins it.
        let req = &script[1].request;
        let tree = winrm_server::canonical(req).unwrap();
        let line = tree.iter().find(|l| l.contains("}Command ")).unwrap();
        let text = line
            .rsplit(" \"")
            .next()
            .unwrap()
            .trim_end_matches('"')
            .to_string();
        text.replace("\\\"", "\"")
    };
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let out = session.run(&command, 4096).await.unwrap();
    assert_eq!(out.exit_status, Some(0));
    replay.assert_complete();
    replay.log(|l| {
        assert_eq!(
            l.actions.iter().filter(|a| *a == "Receive").count(),
            receives
        );
    });
}

#[tokio::test]
async fn signal_and_delete_are_sent_when_the_command_fails() {
    // The real "command identifier does not exist" fault from another recording,
    // with its HTTP 500, in place of the first Receive response.
    let fault = recording("test_winrs_bad_cmd_id.yml")
        .into_iter()
        .find(|m| m.transport_error.is_some())
        .unwrap();
    let twists = Twists {
        replace_at: Some((2, 500, fault.response)),
        ..Twists::default()
    };
    let (_s, replay, target, settings) = https_basic("test_winrs_standard.yml", twists).await;
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let err = session.run("cmd.exe /c echo hi", 1024).await.unwrap_err();
    assert_eq!(err.outcome(), Outcome::ProbeFailed, "{err}");
    assert!(
        err.to_string()
            .contains("command identifier that does not exist"),
        "{err}"
    );
    replay.assert_complete();
    replay.log(|l| assert_eq!(l.actions, LIFECYCLE));
}

#[tokio::test]
async fn a_run_cancelled_by_the_host_timeout_is_cleaned_up_on_close() {
    // The host holds the Receive; the sweep's host timeout drops `run`; `close`
    // reconnects (the old connection still waits for that response) and sends
    // Signal and Delete.
    let twists = Twists {
        delay_at: Some((2, Duration::from_secs(3))),
        ..Twists::default()
    };
    let (_s, replay, target, settings) = https_basic("test_winrs_standard.yml", twists).await;
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let cut = tokio::time::timeout(
        Duration::from_millis(500),
        session.run("cmd.exe /c echo hi", 64),
    )
    .await;
    assert!(cut.is_err(), "run should still be waiting: {cut:?}");
    let started = Instant::now();
    session.close().await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "cleanup did not wait for the held response"
    );
    replay.assert_complete();
    replay.log(|l| {
        assert_eq!(l.actions, LIFECYCLE);
        assert_eq!(l.connections, 2);
    });
}

#[tokio::test]
async fn a_request_that_differs_from_the_recording_is_caught() {
    let (_s, replay, target, settings) =
        https_basic("test_winrs_standard.yml", Twists::default()).await;
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let err = session.run("cmd.exe /c echo bye", 1024).await.unwrap_err();
    assert_eq!(err.outcome(), Outcome::ProbeFailed);
    replay.log(|l| {
        assert!(l.mismatches[0].contains("echo bye"), "{}", l.mismatches[0]);
        // The shell is still deleted after the failed Command (no Signal: no command ran).
        assert_eq!(l.actions, ["Create", "Command", "Delete"]);
    });
}

#[tokio::test]
async fn basic_with_a_wrong_password_is_auth_failed() {
    let (s, replay, mut target, settings) =
        https_basic("test_winrs_standard.yml", Twists::default()).await;
    target.password = PasswordSource::File(s.password_file("wrong"));
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let err = session.run("cmd.exe /c echo hi", 1024).await.unwrap_err();
    assert_eq!(err.outcome(), Outcome::AuthFailed, "{err}");
    replay.log(|l| assert!(l.actions.is_empty()));
}

#[tokio::test]
async fn basic_over_http_is_refused_before_anything_is_sent() {
    let setup = Setup::new();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, basic(), None, Twists::default()).await;
    let target = setup.target(&replay, Scheme::Http, WinrmAuth::Basic, PASSWORD);
    let err = winrm::connect(&target, &settings).await.unwrap_err();
    assert!(matches!(err, TransportError::AuthFailed(_)), "{err:?}");
    assert!(err.to_string().contains("clear"), "{err}");
    replay.log(|l| assert_eq!(l.connections, 0));
}

#[tokio::test]
async fn tls_with_an_unknown_ca_is_rejected_and_ca_file_makes_it_trusted() {
    let (_s, replay, mut target, settings) =
        https_basic("test_winrs_standard.yml", Twists::default()).await;
    let ca_file = target.ca_file.take();
    let err = winrm::connect(&target, &settings).await.unwrap_err();
    assert_eq!(err.outcome(), Outcome::HostKeyRejected, "{err}");
    assert!(err.to_string().contains("ca_file"), "{err}");
    // A certificate for another name is rejected even with the right CA.
    target.ca_file = ca_file;
    target.address = "localhost".into();
    let err = winrm::connect(&target, &settings).await.unwrap_err();
    assert_eq!(err.outcome(), Outcome::HostKeyRejected, "{err}");
    target.address = "127.0.0.1".into();
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    assert_eq!(
        session.run("cmd.exe /c echo hi", 64).await.unwrap().stdout,
        b"hi\r\n"
    );
    replay.assert_complete();
}

#[tokio::test]
async fn an_oversized_response_is_bounded() {
    let twists = Twists {
        oversized_at: Some((0, 64 << 20)),
        ..Twists::default()
    };
    let (_s, _replay, target, mut settings) = https_basic("test_winrs_standard.yml", twists).await;
    settings.max_response_bytes = 256 * 1024;
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let started = Instant::now();
    let err = session.run("cmd.exe /c echo hi", 1024).await.unwrap_err();
    assert_eq!(err.outcome(), Outcome::ProbeFailed, "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn hostile_xml_is_an_error_not_a_panic() {
    let deep = format!("<s:Envelope xmlns:s=\"x\">{}", "<a>".repeat(100_000));
    let many = format!("<e>{}</e>", "<a/>".repeat(100_000));
    let recorded = recording("test_winrs_standard.yml");
    for (i, body) in [deep, many, "not xml at all &&&".to_string(), String::new()]
        .into_iter()
        .enumerate()
    {
        let twists = Twists {
            replace_at: Some((0, 200, body)),
            ..Twists::default()
        };
        let (_s, replay, target, settings) = https_basic("test_winrs_standard.yml", twists).await;
        let mut session = winrm::connect(&target, &settings).await.unwrap();
        let err = session.run("cmd.exe /c echo hi", 1024).await.unwrap_err();
        assert_eq!(err.outcome(), Outcome::ProbeFailed, "case {i}: {err}");
        replay.log(|l| assert_eq!(l.actions, ["Create"], "case {i}"));
    }
    assert!(!recorded.is_empty());
}

#[tokio::test]
async fn ntlm_over_http_seals_every_message() {
    let setup = Setup::new();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, ntlm(), None, Twists::default()).await;
    let target = setup.target(&replay, Scheme::Http, WinrmAuth::Ntlm, PASSWORD);
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let out = session.run("cmd.exe /c echo hi", 1024).await.unwrap();
    session.close().await;
    assert_eq!(out.stdout, b"hi\r\n");
    assert_eq!(out.exit_status, Some(0));
    replay.assert_complete();
    replay.log(|l| {
        assert_eq!(l.auth_rounds, 2, "NEGOTIATE then AUTHENTICATE");
        for head in &l.token_heads {
            assert_eq!(&head[..], b"NTLMSSP\0", "raw NTLM tokens");
        }
        assert_eq!(l.sealed, 5);
        assert_eq!(l.plain, 0);
        assert_eq!(l.connections, 1);
    });
}

#[tokio::test]
async fn negotiate_over_http_falls_back_to_ntlm_and_seals() {
    let setup = Setup::new();
    let script = recording("test_winrs_stderr_rc.yml");
    let settings = settings_for(&script);
    let auth = ServerAuth::Negotiate {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let replay = Replay::start(script, auth, None, Twists::default()).await;
    let target = setup.target(&replay, Scheme::Http, WinrmAuth::Negotiate, PASSWORD);
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let out = session
        .run("cmd.exe /c echo out && echo err>&2 && exit 1", 1024)
        .await
        .unwrap();
    assert_eq!(out.stderr, b"err \r\n");
    assert_eq!(out.exit_status, Some(1));
    replay.assert_complete();
    replay.log(|l| {
        assert_eq!(l.sealed, 5);
        // SPNEGO: a GSS-API InitialContextToken (0x60) first, then NegTokenResp (0xa1).
        assert_eq!(
            l.token_heads.first().map(|h| h[0]),
            Some(0x60),
            "{:?}",
            l.token_heads
        );
        assert!(
            l.token_heads[1..].iter().all(|h| h[0] == 0xa1),
            "{:?}",
            l.token_heads
        );
    });
}

#[tokio::test]
async fn ntlm_with_a_wrong_password_is_auth_failed() {
    let setup = Setup::new();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, ntlm(), None, Twists::default()).await;
    let target = setup.target(&replay, Scheme::Http, WinrmAuth::Ntlm, "not-the-password");
    let err = winrm::connect(&target, &settings).await.unwrap_err();
    assert_eq!(err.outcome(), Outcome::AuthFailed, "{err}");
    replay.log(|l| {
        assert_eq!(l.auth_rounds, 2);
        assert!(l.actions.is_empty());
    });
}

#[tokio::test]
async fn ntlm_over_https_sends_clear_soap_inside_tls() {
    let setup = Setup::new();
    let tls = winrm_server::tls();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, ntlm(), Some(&tls), Twists::default()).await;
    let mut target = setup.target(&replay, Scheme::Https, WinrmAuth::Ntlm, PASSWORD);
    target.ca_file = Some(setup.ca_file(&tls.ca_pem));
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    assert_eq!(
        session.run("cmd.exe /c echo hi", 64).await.unwrap().stdout,
        b"hi\r\n"
    );
    replay.assert_complete();
    replay.log(|l| assert_eq!((l.sealed, l.plain), (0, 5)));
}

/// Over https the NTLM logon carries the channel binding of the certificate we
/// saw (EPA, `CbtHardeningLevel`): a host expecting another certificate's, as
/// behind a TLS-terminating man in the middle, refuses it.
#[tokio::test]
async fn ntlm_over_https_is_bound_to_the_tls_certificate() {
    let setup = Setup::new();
    let tls = winrm_server::tls();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let twists = Twists {
        wrong_channel_binding: true,
        ..Twists::default()
    };
    let replay = Replay::start(script, ntlm(), Some(&tls), twists).await;
    let mut target = setup.target(&replay, Scheme::Https, WinrmAuth::Ntlm, PASSWORD);
    target.ca_file = Some(setup.ca_file(&tls.ca_pem));
    match winrm::connect(&target, &settings).await {
        Err(TransportError::AuthFailed(m)) => assert!(m.contains("rejected"), "{m}"),
        Err(e) => panic!("expected AuthFailed, got {e:?}"),
        Ok(_) => panic!("a logon bound to another certificate was accepted"),
    }
    replay.log(|l| assert!(l.actions.is_empty(), "{:?}", l.actions));
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let setup = Setup::new();
    let target = WinrmTarget {
        address: "127.0.0.1".into(),
        port,
        scheme: Scheme::Http,
        auth: WinrmAuth::Ntlm,
        user: USER.into(),
        password: PasswordSource::File(setup.password_file(PASSWORD)),
        ca_file: None,
        spn: None,
        kdc: None,
    };
    let err = winrm::connect(&target, &WinrmSettings::default())
        .await
        .unwrap_err();
    assert_eq!(err.outcome(), Outcome::Unreachable, "{err}");
}

#[tokio::test]
async fn a_missing_password_source_is_auth_failed() {
    let target = WinrmTarget {
        address: "127.0.0.1".into(),
        port: 9,
        scheme: Scheme::Https,
        auth: WinrmAuth::Basic,
        user: USER.into(),
        password: PasswordSource::Env("FLEETSWEEP_TEST_WINRM_PASSWORD_NEVER_SET".into()),
        ca_file: None,
        spn: None,
        kdc: None,
    };
    let err = winrm::connect(&target, &WinrmSettings::default())
        .await
        .unwrap_err();
    assert_eq!(err.outcome(), Outcome::AuthFailed);
    assert!(
        err.to_string()
            .contains("FLEETSWEEP_TEST_WINRM_PASSWORD_NEVER_SET"),
        "{err}"
    );
}

/// The stdout a recorded ReceiveResponse carries, decoded independently of the client.
fn recorded_stdout(response: &str) -> Vec<u8> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for part in response.split("<rsp:Stream Name=\"stdout\"").skip(1) {
        let text = part.split_once('>').unwrap().1.split('<').next().unwrap();
        out.extend(
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap(),
        );
    }
    out
}

#[tokio::test]
async fn one_sealed_session_runs_two_commands_with_multi_chunk_output() {
    let setup = Setup::new();
    let script = recording("test_client_execute_cmd.yml");
    let receives: Vec<_> = script
        .iter()
        .filter(|m| m.response.contains("ReceiveResponse"))
        .map(|m| recorded_stdout(&m.response))
        .collect();
    let settings = settings_for(&script);
    let replay = Replay::start(script, ntlm(), None, Twists::default()).await;
    let target = setup.target(&replay, Scheme::Http, WinrmAuth::Ntlm, PASSWORD);
    let mut session = winrm::connect(&target, &settings).await.unwrap();
    let dir = session.run("dir", 1 << 20).await.unwrap();
    let echo = session.run("echo abc", 1 << 20).await.unwrap();
    session.close().await;
    assert_eq!(dir.stdout, receives[0]);
    assert!(String::from_utf8_lossy(&dir.stdout).contains("Directory of C:\\Users\\vagrant"));
    assert_eq!(echo.stdout, b"abc\r\n");
    assert_eq!((dir.exit_status, echo.exit_status), (Some(0), Some(0)));
    replay.assert_complete();
    replay.log(|l| {
        assert_eq!(l.sealed, 10);
        assert_eq!(l.auth_rounds, 2, "one handshake for the whole session");
        assert_eq!(l.connections, 1);
    });
}

/// SPNEGO falling back to NTLM over https binds the NTLM logon to the TLS
/// certificate too: right binding accepted, another certificate's refused.
#[tokio::test]
async fn negotiate_ntlm_over_https_is_bound_to_the_tls_certificate() {
    for wrong in [false, true] {
        let setup = Setup::new();
        let tls = winrm_server::tls();
        let script = recording("test_winrs_standard.yml");
        let settings = settings_for(&script);
        let auth = ServerAuth::Negotiate {
            user: USER.into(),
            password: PASSWORD.into(),
        };
        let twists = Twists {
            wrong_channel_binding: wrong,
            ..Twists::default()
        };
        let replay = Replay::start(script, auth, Some(&tls), twists).await;
        let mut target = setup.target(&replay, Scheme::Https, WinrmAuth::Negotiate, PASSWORD);
        target.ca_file = Some(setup.ca_file(&tls.ca_pem));
        match (wrong, winrm::connect(&target, &settings).await) {
            (false, Ok(mut session)) => {
                assert_eq!(
                    session.run("cmd.exe /c echo hi", 64).await.unwrap().stdout,
                    b"hi\r\n"
                );
                replay.assert_complete();
            }
            (true, Err(TransportError::AuthFailed(_))) => {
                replay.log(|l| assert!(l.actions.is_empty(), "{:?}", l.actions));
            }
            (wrong, other) => panic!("wrong binding {wrong}: {:?}", other.err()),
        }
    }
}
