#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! WinRM with Kerberos, against real MIT Kerberos on 127.0.0.1: a KDC of the
//! test's own realm (`krb5kdc`, users with pre-authentication required, as in
//! Active Directory) issues the tickets, and MIT krb5's GSS-API acceptor plays
//! the Windows host: it accepts the SPNEGO/Kerberos token, answers with the
//! AP-REP for mutual authentication, and seals and unseals every WinRM message
//! (MS-WSMV `multipart/encrypted`). The SOAP exchanges are pypsrp's recordings
//! of a real Windows host, checked request by request (see `winrm_server/`).

mod winrm_server;

use std::time::Duration;

use fleetsweep::transport::winrm::{
    self, PasswordSource, Scheme, WinrmAuth, WinrmSettings, WinrmTarget,
};
use fleetsweep::transport::TransportError;
use tempfile::TempDir;
use winrm_server::kdc::{Kdc, REALM};
use winrm_server::{recording, settings_for, Replay, ServerAuth, Twists};

const USER: &str = "alice";
const PASSWORD: &str = "Kerb-Test-Pa55";
/// The host's account name in the realm; the replay server itself listens on
/// 127.0.0.1, so the SPN is given explicitly, as it must be for a host reached
/// by IP address.
const SPN: &str = "HTTP/win-ws-01.fleetsweep.test";
/// The SPNEGO inner mechanism MIT reports for Kerberos 5.
const KRB5_OID: &str = "1.2.840.113554.1.2.2";

/// What a test changes about its [`Case`].
#[derive(Default)]
struct Opts {
    /// The pypsrp recording the host replays (default `test_winrs_standard.yml`).
    recording: Option<&'static str>,
    twists: Twists,
    /// Serve https with a test CA the target trusts.
    tls: bool,
    /// The host's side (default: MIT's acceptor with the realm's keys).
    host: Option<ServerAuth>,
    /// The password the target sends (default the user's).
    password: Option<&'static str>,
}

/// One test's world: a realm of its own, a host replaying a recording behind
/// MIT's acceptor, and a client target for it (`REALM\alice`, the SPN, the KDC).
struct Case {
    kdc: Kdc,
    /// Holds the password file and CA for as long as the case lives.
    _dir: TempDir,
    replay: Replay,
    settings: WinrmSettings,
    target: WinrmTarget,
}

async fn case(auth: WinrmAuth, opts: Opts) -> Case {
    let kdc = Kdc::start(&[(USER, PASSWORD)], &[SPN]);
    let dir = tempfile::tempdir().unwrap();
    let script = recording(opts.recording.unwrap_or("test_winrs_standard.yml"));
    let settings = settings_for(&script);
    let tls = opts.tls.then(winrm_server::tls);
    let host = opts.host.unwrap_or_else(|| kdc.host());
    let replay = Replay::start(script, host, tls.as_ref(), opts.twists).await;
    let password = dir.path().join("password");
    std::fs::write(
        &password,
        format!("{}\n", opts.password.unwrap_or(PASSWORD)),
    )
    .unwrap();
    let ca_file = tls.as_ref().map(|t| {
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &t.ca_pem).unwrap();
        ca
    });
    let target = WinrmTarget {
        address: "127.0.0.1".into(),
        port: replay.addr.port(),
        scheme: if opts.tls {
            Scheme::Https
        } else {
            Scheme::Http
        },
        auth,
        user: format!("{REALM}\\{USER}"),
        password: PasswordSource::File(password),
        ca_file,
        spn: Some(SPN.into()),
        kdc: Some(kdc.url()),
    };
    Case {
        kdc,
        _dir: dir,
        replay,
        settings,
        target,
    }
}

impl Case {
    async fn connect(&self) -> Result<winrm::WinrmSession, TransportError> {
        winrm::connect(&self.target, &self.settings).await
    }

    /// Connects, runs `command`, closes.
    async fn run(&self, command: &str) -> fleetsweep::transport::ExecOutput {
        let mut session = self.connect().await.unwrap();
        let out = session.run(command, 1024).await.unwrap();
        session.close().await;
        out
    }

    async fn auth_failed(&self) -> String {
        auth_failed(self.connect().await)
    }
}

fn auth_failed(result: Result<winrm::WinrmSession, TransportError>) -> String {
    match result {
        Err(TransportError::AuthFailed(m)) => m,
        Err(other) => panic!("expected AuthFailed, got {other:?}"),
        Ok(_) => panic!("expected AuthFailed, but the session was established"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kerberos_over_http_gets_tickets_from_a_real_kdc_and_seals_every_message() {
    let c = case(WinrmAuth::Kerberos, Opts::default()).await;
    let out = c.run("cmd.exe /c echo hi").await;
    assert_eq!(out.stdout, b"hi\r\n");
    assert_eq!(out.exit_status, Some(0));
    c.replay.assert_complete();
    c.replay.log(|l| {
        assert_eq!(
            l.initiators,
            [format!("{USER}@{REALM}")],
            "MIT accepted alice's ticket"
        );
        assert_eq!(l.mechs, [KRB5_OID], "Kerberos under SPNEGO, not NTLM");
        assert_eq!(
            l.token_heads.first().map(|h| h[0]),
            Some(0x60),
            "a GSS-API InitialContextToken: {:?}",
            l.token_heads
        );
        assert_eq!(
            l.auth_rounds, 1,
            "one AP-REQ; the AP-REP comes back with the 200"
        );
        assert_eq!(
            l.sealed, 5,
            "all five WinRS requests sealed with the Kerberos session key"
        );
        assert_eq!(l.plain, 0);
        assert!(l.auth_errors.is_empty(), "{:?}", l.auth_errors);
    });
    let log = c.kdc.log();
    assert!(
        log.contains("AS_REQ")
            && log.contains(&format!("{USER}@{REALM} for krbtgt/{REALM}@{REALM}")),
        "the client got its TGT from the KDC:\n{log}"
    );
    assert!(
        log.contains("TGS_REQ") && log.contains(&format!("for {SPN}@{REALM}")),
        "and a service ticket for the host's SPN:\n{log}"
    );
    assert!(
        log.contains("NEEDED_PREAUTH"),
        "pre-authentication was required and done, as AD requires:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiate_uses_kerberos_when_the_realm_has_a_kdc() {
    let opts = Opts {
        recording: Some("test_winrs_stderr_rc.yml"),
        ..Opts::default()
    };
    let c = case(WinrmAuth::Negotiate, opts).await;
    let out = c.run("cmd.exe /c echo out && echo err>&2 && exit 1").await;
    assert_eq!(out.stderr, b"err \r\n");
    assert_eq!(out.exit_status, Some(1));
    c.replay.assert_complete();
    c.replay.log(|l| {
        assert_eq!(l.mechs, [KRB5_OID]);
        assert_eq!(l.sealed, 5);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_kerberos_password_is_auth_failed_before_the_host_is_asked() {
    let opts = Opts {
        password: Some("not-the-password"),
        ..Opts::default()
    };
    let c = case(WinrmAuth::Kerberos, opts).await;
    let message = c.auth_failed().await;
    assert!(
        message.contains(&format!(
            "the KDC refused the password of `{REALM}\\{USER}`"
        )),
        "{message}"
    );
    assert!(
        !message.contains("OctetString"),
        "no raw KDC e-data: {message}"
    );
    c.replay.log(|l| {
        assert!(
            l.actions.is_empty(),
            "no SOAP request was sent: {:?}",
            l.actions
        );
        assert!(l.initiators.is_empty());
    });
    let log = c.kdc.log();
    assert!(log.contains("PREAUTH_FAILED"), "the KDC refused it:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_spn_the_realm_does_not_know_is_auth_failed_and_names_the_spn() {
    let mut c = case(WinrmAuth::Kerberos, Opts::default()).await;
    c.target.spn = Some("HTTP/no-such-host.fleetsweep.test".into());
    let message = c.auth_failed().await;
    assert!(
        message.contains(
            "the realm has no service principal HTTP/no-such-host.fleetsweep.test: set winrm.spn"
        ),
        "names the SPN and how to fix it: {message}"
    );
    assert!(c.kdc.log().contains("LOOKING_UP_SERVER"), "{}", c.kdc.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kdc_that_is_down_is_auth_failed_and_names_the_kdc() {
    let mut c = case(WinrmAuth::Kerberos, Opts::default()).await;
    c.kdc.stop();
    let started = std::time::Instant::now();
    let message = c.auth_failed().await;
    assert!(
        message.contains(&format!("127.0.0.1:{}", c.kdc.port)),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the KDC timeout: {:?}",
        started.elapsed()
    );
    c.replay.log(|l| assert!(l.actions.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_upn_the_mit_realm_cannot_resolve_is_auth_failed_with_the_remedy() {
    // `user@REALM` goes out as an NT-ENTERPRISE name, which Active Directory
    // resolves and an MIT KDC (without aliases) does not.
    let mut c = case(WinrmAuth::Kerberos, Opts::default()).await;
    c.target.user = format!("{USER}@{REALM}");
    let message = c.auth_failed().await;
    assert!(
        message.contains("the realm has no user `alice@FLEETSWEEP.TEST`")
            && message.contains("write `REALM\\user` there"),
        "{message}"
    );
    assert!(c.kdc.log().contains("CLIENT_NOT_FOUND"), "{}", c.kdc.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_final_token_does_not_verify_fails_mutual_authentication() {
    // The host answers 200 but its AP-REP is corrupted: a host that cannot
    // prove it holds the service key must not be trusted with the sweep.
    let opts = Opts {
        twists: Twists {
            corrupt_final_token: true,
            ..Twists::default()
        },
        ..Opts::default()
    };
    let c = case(WinrmAuth::Kerberos, opts).await;
    let message = c.auth_failed().await;
    assert!(
        message.contains("failed mutual authentication"),
        "{message}"
    );
    c.replay
        .log(|l| assert!(l.actions.is_empty(), "nothing was sent: {:?}", l.actions));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_skips_its_final_token_fails_mutual_authentication() {
    let opts = Opts {
        twists: Twists {
            drop_final_token: true,
            ..Twists::default()
        },
        ..Opts::default()
    };
    let c = case(WinrmAuth::Kerberos, opts).await;
    let message = c.auth_failed().await;
    assert!(message.contains("did not prove its identity"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kerberos_over_https_sends_clear_soap_inside_tls() {
    let opts = Opts {
        tls: true,
        ..Opts::default()
    };
    let c = case(WinrmAuth::Kerberos, opts).await;
    assert_eq!(c.run("cmd.exe /c echo hi").await.stdout, b"hi\r\n");
    c.replay.assert_complete();
    c.replay.log(|l| {
        assert_eq!(l.mechs, [KRB5_OID]);
        assert_eq!(
            (l.sealed, l.plain),
            (0, 5),
            "TLS protects the SOAP; no double sealing"
        );
    });
}

/// `negotiate` with a KDC that does not answer falls back to NTLM, as a
/// Windows client does (sspi's Negotiate does it, before anything reaches the host);
/// `kerberos` does not (see `a_kdc_that_is_down_is_auth_failed_and_names_the_kdc`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiate_falls_back_to_ntlm_when_the_kdc_is_down() {
    let opts = Opts {
        host: Some(ServerAuth::Negotiate {
            user: format!("{REALM}\\{USER}"),
            password: PASSWORD.into(),
        }),
        ..Opts::default()
    };
    let mut c = case(WinrmAuth::Negotiate, opts).await;
    c.kdc.stop();
    assert_eq!(c.run("cmd.exe /c echo hi").await.stdout, b"hi\r\n");
    c.replay.assert_complete();
    // The host accepts only NTLM (sspi's SPNEGO server) and the KDC is down:
    // sspi's Negotiate fell back to NTLM inside SPNEGO before the first POST.
    c.replay.log(|l| {
        assert_eq!(
            l.token_heads.first().map(|h| h[0]),
            Some(0x60),
            "SPNEGO: {:?}",
            l.token_heads
        );
        assert_eq!(l.sealed, 5);
        assert_eq!(
            l.connections, 1,
            "one connection: nothing was sent before the fallback"
        );
    });
}

/// A scan account's keytab instead of its password: MIT's `ktadd -norandkey`
/// exports alice's AES keys; the client parses the keytab and does the AS
/// exchange with the key. After a password change the old keytab is refused
/// with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keytab_replaces_the_password() {
    let mut c = case(WinrmAuth::Kerberos, Opts::default()).await;
    c.target.password = PasswordSource::Keytab(c.kdc.user_keytab(USER));
    assert_eq!(c.run("cmd.exe /c echo hi").await.stdout, b"hi\r\n");
    c.replay.assert_complete();
    c.replay
        .log(|l| assert_eq!(l.initiators, [format!("{USER}@{REALM}")]));

    // Someone else's keytab names what it holds.
    let mut other = c.target.clone();
    other.user = format!("{REALM}\\bob");
    let message = auth_failed(winrm::connect(&other, &c.settings).await);
    assert!(
        message.contains("holds no key of `FLEETSWEEP.TEST\\bob` (it has: alice@FLEETSWEEP.TEST)"),
        "{message}"
    );

    // The password changed: the exported key is stale.
    c.kdc.change_password(USER, "Kerb-Test-Pa55-new");
    let message = c.auth_failed().await;
    assert!(
        message.contains("the KDC refused the key of `FLEETSWEEP.TEST\\alice`")
            && message.contains("export it again"),
        "{message}"
    );
}
