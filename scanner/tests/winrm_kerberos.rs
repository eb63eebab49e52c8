#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! WinRM with Kerberos, against real MIT Kerberos on 127.0.0.1: a KDC of the
//! test's own realm (`krb5kdc`, users with pre-authentication required, as in
//! Active Directory) issues the tickets, and MIT krb5's GSS-API acceptor plays
//! the Windows host: it accepts the SPNEGO/Kerberos token, answers with the
//! AP-REP for mutual authentication, and seals and unseals every WinRM message
//! (MS-WSMV `multipart/encrypted`). The SOAP exchanges are pypsrp's recordings
//! of a real Windows host, checked request by request (see `winrm_server/`).

mod winrm_server;

use std::path::PathBuf;
use std::time::Duration;

use fleetsweep::transport::winrm::{
    self, PasswordSource, Scheme, WinrmAuth, WinrmSettings, WinrmTarget,
};
use fleetsweep::transport::TransportError;
use tempfile::TempDir;
use winrm_server::kdc::{Kdc, REALM};
use winrm_server::{recording, Replay, ServerAuth, Twists};

const USER: &str = "alice";
const PASSWORD: &str = "Kerb-Test-Pa55";
/// The host's account name in the realm; the replay server itself listens on
/// 127.0.0.1, so the SPN is given explicitly, as it must be for a host reached
/// by IP address.
const SPN: &str = "HTTP/win-ws-01.fleetsweep.test";
/// The SPNEGO inner mechanism MIT reports for Kerberos 5.
const KRB5_OID: &str = "1.2.840.113554.1.2.2";

fn realm() -> Kdc {
    Kdc::start(&[(USER, PASSWORD)], &[SPN])
}

fn server(kdc: &Kdc) -> ServerAuth {
    ServerAuth::Kerberos {
        keytab: kdc.keytab.clone(),
        krb5_conf: kdc.krb5_conf.clone(),
    }
}

fn password_file(dir: &TempDir, password: &str) -> PathBuf {
    let p = dir.path().join("password");
    std::fs::write(&p, format!("{password}\n")).unwrap();
    p
}

fn target(
    replay: &Replay,
    dir: &TempDir,
    auth: WinrmAuth,
    kdc: &Kdc,
    password: &str,
) -> WinrmTarget {
    WinrmTarget {
        address: "127.0.0.1".into(),
        port: replay.addr.port(),
        scheme: Scheme::Http,
        auth,
        user: format!("{REALM}\\{USER}"),
        password: PasswordSource::File(password_file(dir, password)),
        ca_file: None,
        spn: Some(SPN.into()),
        kdc: Some(kdc.url()),
    }
}

fn settings_for(messages: &[winrm_server::Message]) -> WinrmSettings {
    let secs: u64 = messages[0]
        .request
        .split("OperationTimeout>PT")
        .nth(1)
        .and_then(|s| s.split('S').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    WinrmSettings {
        operation_timeout: Duration::from_secs(secs),
        connect_timeout: Duration::from_secs(5),
        request_grace: Duration::from_secs(5),
        ..WinrmSettings::default()
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
    let kdc = realm();
    let dir = tempfile::tempdir().unwrap();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, server(&kdc), None, Twists::default()).await;
    let t = target(&replay, &dir, WinrmAuth::Kerberos, &kdc, PASSWORD);
    let mut session = winrm::connect(&t, &settings).await.unwrap();
    let out = session.run("cmd.exe /c echo hi", 1024).await.unwrap();
    session.close().await;
    assert_eq!(out.stdout, b"hi\r\n");
    assert_eq!(out.exit_status, Some(0));
    replay.assert_complete();
    replay.log(|l| {
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
    let log = kdc.log();
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
    let kdc = realm();
    let dir = tempfile::tempdir().unwrap();
    let script = recording("test_winrs_stderr_rc.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, server(&kdc), None, Twists::default()).await;
    let t = target(&replay, &dir, WinrmAuth::Negotiate, &kdc, PASSWORD);
    let mut session = winrm::connect(&t, &settings).await.unwrap();
    let out = session
        .run("cmd.exe /c echo out && echo err>&2 && exit 1", 1024)
        .await
        .unwrap();
    session.close().await;
    assert_eq!(out.stderr, b"err \r\n");
    assert_eq!(out.exit_status, Some(1));
    replay.assert_complete();
    replay.log(|l| {
        assert_eq!(l.mechs, [KRB5_OID]);
        assert_eq!(l.sealed, 5);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_kerberos_password_is_auth_failed_before_the_host_is_asked() {
    let kdc = realm();
    let dir = tempfile::tempdir().unwrap();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, server(&kdc), None, Twists::default()).await;
    let t = target(&replay, &dir, WinrmAuth::Kerberos, &kdc, "not-the-password");
    let message = auth_failed(winrm::connect(&t, &settings).await);
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
    replay.log(|l| {
        assert!(
            l.actions.is_empty(),
            "no SOAP request was sent: {:?}",
            l.actions
        );
        assert!(l.initiators.is_empty());
    });
    let log = kdc.log();
    assert!(log.contains("PREAUTH_FAILED"), "the KDC refused it:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_spn_the_realm_does_not_know_is_auth_failed_and_names_the_spn() {
    let kdc = realm();
    let dir = tempfile::tempdir().unwrap();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, server(&kdc), None, Twists::default()).await;
    let mut t = target(&replay, &dir, WinrmAuth::Kerberos, &kdc, PASSWORD);
    t.spn = Some("HTTP/no-such-host.fleetsweep.test".into());
    let message = auth_failed(winrm::connect(&t, &settings).await);
    assert!(
        message.contains(
            "the realm has no service principal HTTP/no-such-host.fleetsweep.test: set winrm.spn"
        ),
        "names the SPN and how to fix it: {message}"
    );
    let log = kdc.log();
    assert!(log.contains("LOOKING_UP_SERVER"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kdc_that_is_down_is_auth_failed_and_names_the_kdc() {
    let mut kdc = realm();
    let dir = tempfile::tempdir().unwrap();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, server(&kdc), None, Twists::default()).await;
    let t = target(&replay, &dir, WinrmAuth::Kerberos, &kdc, PASSWORD);
    kdc.stop();
    let started = std::time::Instant::now();
    let message = auth_failed(winrm::connect(&t, &settings).await);
    assert!(
        message.contains(&format!("127.0.0.1:{}", kdc.port)),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the KDC timeout: {:?}",
        started.elapsed()
    );
    replay.log(|l| assert!(l.actions.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_upn_the_mit_realm_cannot_resolve_is_auth_failed_with_the_remedy() {
    // `user@REALM` goes out as an NT-ENTERPRISE name, which Active Directory
    // resolves and an MIT KDC (without aliases) does not.
    let kdc = realm();
    let dir = tempfile::tempdir().unwrap();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, server(&kdc), None, Twists::default()).await;
    let mut t = target(&replay, &dir, WinrmAuth::Kerberos, &kdc, PASSWORD);
    t.user = format!("{USER}@{REALM}");
    let message = auth_failed(winrm::connect(&t, &settings).await);
    assert!(
        message.contains("the realm has no user `alice@FLEETSWEEP.TEST`")
            && message.contains("write `REALM\\user` there"),
        "{message}"
    );
    assert!(kdc.log().contains("CLIENT_NOT_FOUND"), "{}", kdc.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_final_token_does_not_verify_fails_mutual_authentication() {
    // The host answers 200 but its AP-REP is corrupted: a host that cannot
    // prove it holds the service key must not be trusted with the sweep.
    let kdc = realm();
    let dir = tempfile::tempdir().unwrap();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let twists = Twists {
        corrupt_final_token: true,
        ..Twists::default()
    };
    let replay = Replay::start(script, server(&kdc), None, twists).await;
    let t = target(&replay, &dir, WinrmAuth::Kerberos, &kdc, PASSWORD);
    let message = auth_failed(winrm::connect(&t, &settings).await);
    assert!(
        message.contains("failed mutual authentication"),
        "{message}"
    );
    replay.log(|l| assert!(l.actions.is_empty(), "nothing was sent: {:?}", l.actions));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_skips_its_final_token_fails_mutual_authentication() {
    let kdc = realm();
    let dir = tempfile::tempdir().unwrap();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let twists = Twists {
        drop_final_token: true,
        ..Twists::default()
    };
    let replay = Replay::start(script, server(&kdc), None, twists).await;
    let t = target(&replay, &dir, WinrmAuth::Kerberos, &kdc, PASSWORD);
    let message = auth_failed(winrm::connect(&t, &settings).await);
    assert!(message.contains("did not prove its identity"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kerberos_over_https_sends_clear_soap_inside_tls() {
    let kdc = realm();
    let dir = tempfile::tempdir().unwrap();
    let tls = winrm_server::tls();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, server(&kdc), Some(&tls), Twists::default()).await;
    let mut t = target(&replay, &dir, WinrmAuth::Kerberos, &kdc, PASSWORD);
    t.scheme = Scheme::Https;
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();
    t.ca_file = Some(ca);
    let mut session = winrm::connect(&t, &settings).await.unwrap();
    let out = session.run("cmd.exe /c echo hi", 1024).await.unwrap();
    session.close().await;
    assert_eq!(out.stdout, b"hi\r\n");
    replay.assert_complete();
    replay.log(|l| {
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
    let mut kdc = realm();
    kdc.stop();
    let dir = tempfile::tempdir().unwrap();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let ntlm_host = ServerAuth::Negotiate {
        user: format!("{REALM}\\{USER}"),
        password: PASSWORD.into(),
    };
    let replay = Replay::start(script, ntlm_host, None, Twists::default()).await;
    let t = target(&replay, &dir, WinrmAuth::Negotiate, &kdc, PASSWORD);
    let mut session = winrm::connect(&t, &settings).await.unwrap();
    let out = session.run("cmd.exe /c echo hi", 1024).await.unwrap();
    session.close().await;
    assert_eq!(out.stdout, b"hi\r\n");
    replay.assert_complete();
    // The host accepts only NTLM (sspi's SPNEGO server) and the KDC is down:
    // sspi's Negotiate fell back to NTLM inside SPNEGO before the first POST.
    replay.log(|l| {
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
    let kdc = realm();
    let keytab = kdc.user_keytab(USER);
    let dir = tempfile::tempdir().unwrap();
    let script = recording("test_winrs_standard.yml");
    let settings = settings_for(&script);
    let replay = Replay::start(script, server(&kdc), None, Twists::default()).await;
    let mut t = target(&replay, &dir, WinrmAuth::Kerberos, &kdc, "unused");
    t.password = PasswordSource::Keytab(keytab.clone());
    let mut session = winrm::connect(&t, &settings).await.unwrap();
    let out = session.run("cmd.exe /c echo hi", 1024).await.unwrap();
    session.close().await;
    assert_eq!(out.stdout, b"hi\r\n");
    replay.assert_complete();
    replay.log(|l| assert_eq!(l.initiators, [format!("{USER}@{REALM}")]));

    // Someone else's keytab names what it holds.
    let mut other = t.clone();
    other.user = format!("{REALM}\\bob");
    let message = auth_failed(winrm::connect(&other, &settings).await);
    assert!(
        message.contains("holds no key of `FLEETSWEEP.TEST\\bob` (it has: alice@FLEETSWEEP.TEST)"),
        "{message}"
    );

    // The password changed: the exported key is stale.
    kdc.change_password(USER, "Kerb-Test-Pa55-new");
    let script = recording("test_winrs_standard.yml");
    let replay = Replay::start(script, server(&kdc), None, Twists::default()).await;
    t.port = replay.addr.port();
    let message = auth_failed(winrm::connect(&t, &settings).await);
    assert!(
        message.contains("the KDC refused the key of `FLEETSWEEP.TEST\\alice`")
            && message.contains("export it again"),
        "{message}"
    );
}
