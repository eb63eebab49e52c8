#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test
//! A `transport: winrm` host end to end through the real `fleetsweep` binary:
//! inventory → sweep → `transport::winrm::connect` → the Windows PowerShell
//! probe line → `probes::windows::parse` → matcher → report. The host is the
//! replay server of `winrm_server/` in its probe mode: the recorded WinRS
//! lifecycle, expecting our exact probe command line, answering with the
//! recorded Windows probe JSON (`tests/fixtures/windows/probe/workstation-kes.json`)
//! as base64 streams (see [`winrm_server::probe_script`]).

mod winrm_server;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use winrm_server::kdc::{Kdc, REALM};
use winrm_server::{windows_probe_script, Replay, ServerAuth, Twists};

const USER: &str = "vagrant";
const PASSWORD: &str = "Winrm-Test-Pa55";
const PASSWORD_ENV: &str = "FLEETSWEEP_TEST_WINRM_PASSWORD";

/// Starts the probe-mode server over HTTPS with Basic auth (test CA).
async fn windows_host() -> (Replay, String) {
    let tls = winrm_server::tls();
    let script = windows_probe_script();
    let auth = ServerAuth::Basic {
        user: USER.into(),
        password: PASSWORD.into(),
    };
    let replay = Replay::start(script, auth, Some(&tls), Twists::default()).await;
    (replay, tls.ca_pem)
}

/// Runs `fleetsweep scan` over a one-host winrm inventory (HTTPS, Basic, the
/// test CA); returns the exit code, the parsed report and stderr.
async fn sweep(replay: &Replay, ca_pem: &str, password: &str) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let winrm = format!(
        "scheme: https\n      port: {port}\n      auth: basic\n      ca_file: {ca}\n",
        port = replay.addr.port(),
        ca = ca.display(),
    );
    run_sweep(&dir, USER, &winrm, password, &[]).await
}

/// `fleetsweep scan` of host `win-ws-01` at 127.0.0.1 with this `winrm:` map
/// (indented six spaces; `password_env` is added unless the map has a
/// `keytab`), and extra environment.
async fn run_sweep(
    dir: &tempfile::TempDir,
    user: &str,
    winrm: &str,
    password: &str,
    env: &[(&str, &Path)],
) -> (i32, Value, String) {
    let inventory = dir.path().join("fleet.yaml");
    let credential = if winrm.contains("keytab:") {
        String::new()
    } else {
        format!("      password_env: {PASSWORD_ENV}\n")
    };
    std::fs::write(
        &inventory,
        format!(
            "hosts:\n  - name: win-ws-01\n    address: 127.0.0.1\n    transport: winrm\n    \
             user: '{user}'\n    labels: {{site: lab}}\n    winrm:\n      {winrm}{credential}"
        ),
    )
    .unwrap();
    let report = dir.path().join("report.yaml");
    let known_hosts = dir.path().join("known_hosts");
    std::fs::write(&known_hosts, "").unwrap();
    let args: Vec<PathBuf> = vec![
        "scan".into(),
        "-i".into(),
        inventory,
        "--report".into(),
        report.clone(),
        "--known-hosts".into(),
        known_hosts,
        "--no-state".into(),
        "--no-progress".into(),
    ];
    let password = password.to_string();
    let env: Vec<(String, PathBuf)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_path_buf()))
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_fleetsweep"))
            .args(&args)
            .env(PASSWORD_ENV, password)
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("FLEETSWEEP_NOW")
            .env_remove("SSPI_KDC_URL")
            .envs(env)
            .output()
            .expect("running fleetsweep")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let yaml = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report ({e}); stderr:\n{stderr}"));
    let report: Value = serde_saphyr::from_str(&yaml).expect("report parses");
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// The KES finding of a sweep of `workstation-kes.json`, checked the same way
/// whatever the transport and authentication.
fn assert_kes_found(code: i32, r: &Value, stderr: &str) {
    assert_eq!(code, 1, "KES for Windows is banned: {stderr}");
    let host = &r["hosts"][0];
    assert_eq!(host["name"], "win-ws-01");
    assert_eq!(host["outcome"], "scanned", "{host}\n{stderr}");
    assert_eq!(host["os"]["family"], "windows");
    assert_eq!(host["os"]["name"], "Microsoft Windows 10 Enterprise");
    assert!(host["warnings"].is_null(), "{}", host["warnings"]);
    let findings = host["findings"].as_array().unwrap();
    let kes = findings
        .iter()
        .find(|f| f["rule"] == "kaspersky/kes-windows")
        .unwrap_or_else(|| panic!("no KES for Windows finding: {host}"));
    assert_eq!(kes["state"], "installed");
    assert_eq!(kes["policy"], "ban");
    assert_eq!(kes["version"], "12.5.0.539");
    let evidence = kes["evidence"].as_array().unwrap();
    let has = |kind: &str, needle: &str| {
        evidence
            .iter()
            .any(|e| e["kind"] == kind && e["value"].as_str().is_some_and(|v| v.contains(needle)))
    };
    assert!(
        has(
            "uninstall_entry",
            "Kaspersky Endpoint Security for Windows 12.5.0.539 (publisher AO Kaspersky Lab)"
        ),
        "{evidence:?}"
    );
    assert!(has("service", "AVP"), "{evidence:?}");
    assert!(has("signature_update", "2024-09-28"), "{evidence:?}");
    assert_eq!(kes["signatures"]["frozen"], true, "{kes}");
    assert_eq!(r["summary"]["hosts"]["affected"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_winrm_host_is_swept_with_the_powershell_probe() {
    let (replay, ca) = windows_host().await;
    let (code, r, stderr) = sweep(&replay, &ca, PASSWORD).await;
    replay.assert_complete();
    replay.log(|l| {
        assert_eq!(
            l.actions,
            ["Create", "Command", "Receive", "Signal", "Delete"]
        );
        assert_eq!(l.plain, 5, "SOAP in clear inside TLS");
    });
    assert_kes_found(code, &r, &stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_winrm_password_is_auth_failed_in_the_report() {
    let (replay, ca) = windows_host().await;
    let (code, r, stderr) = sweep(&replay, &ca, "not-the-password").await;
    let host = &r["hosts"][0];
    assert_eq!(host["outcome"], "auth_failed", "{host}\n{stderr}");
    assert!(host["findings"].as_array().unwrap().is_empty());
    assert!(
        host["error"].as_str().is_some_and(|e| !e.contains(PASSWORD)
            && !e.contains("not-the-password")
            && !e.is_empty()),
        "an error that names no password: {}",
        host["error"]
    );
    assert_eq!(r["summary"]["hosts"]["auth_failed"], 1);
    assert_eq!(
        code, 3,
        "no open finding, a host not scanned: exit code 3: {stderr}"
    );
    replay.log(|l| {
        assert!(
            l.actions.is_empty(),
            "no SOAP request got through: {:?}",
            l.actions
        )
    });
}

/// The probe-mode server behind Kerberos: tickets from a real MIT KDC, MIT's
/// acceptor on the host side, every message sealed over plain http.
async fn kerberos_windows_host(kdc: &Kdc) -> Replay {
    Replay::start(windows_probe_script(), kdc.host(), None, Twists::default()).await
}

const SPN_TEMPLATE: &str = "HTTP/{name}.fleetsweep.test";

/// A realm with the scan account and the host's `HTTP/` principal.
fn scan_realm() -> Kdc {
    Kdc::start(
        &[("svc-scan", PASSWORD)],
        &["HTTP/win-ws-01.fleetsweep.test"],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kerberos_winrm_host_is_swept_with_the_kdc_found_through_krb5_conf() {
    // As on a Linux scanner in a domain: no winrm.kdc, the realm's KDC comes
    // from krb5.conf (KRB5_CONFIG), the SPN from the host name template.
    let kdc = scan_realm();
    let replay = kerberos_windows_host(&kdc).await;
    let dir = tempfile::tempdir().unwrap();
    let winrm = format!(
        "port: {}\n      auth: kerberos\n      spn: '{SPN_TEMPLATE}'\n",
        replay.addr.port()
    );
    let user = format!("{REALM}\\svc-scan");
    let (code, r, stderr) = run_sweep(
        &dir,
        &user,
        &winrm,
        PASSWORD,
        &[("KRB5_CONFIG", kdc.krb5_conf.as_path())],
    )
    .await;
    replay.assert_complete();
    replay.log(|l| {
        assert_eq!(l.initiators, [format!("svc-scan@{REALM}")]);
        assert_eq!(l.mechs, ["1.2.840.113554.1.2.2"], "Kerberos 5");
        assert_eq!(l.sealed, 5, "sealed over http");
        assert_eq!(l.plain, 0);
    });
    assert_kes_found(code, &r, &stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kerberos_host_with_no_kdc_for_its_realm_is_auth_failed_with_the_remedy() {
    let kdc = scan_realm();
    let replay = kerberos_windows_host(&kdc).await;
    let dir = tempfile::tempdir().unwrap();
    let empty_conf = dir.path().join("krb5.conf");
    std::fs::write(&empty_conf, "[libdefaults]\n dns_lookup_kdc = false\n").unwrap();
    let winrm = format!(
        "port: {}\n      auth: kerberos\n      spn: '{SPN_TEMPLATE}'\n",
        replay.addr.port()
    );
    let user = format!("{REALM}\\svc-scan");
    let (code, r, stderr) = run_sweep(
        &dir,
        &user,
        &winrm,
        PASSWORD,
        &[("KRB5_CONFIG", empty_conf.as_path())],
    )
    .await;
    let host = &r["hosts"][0];
    assert_eq!(host["outcome"], "auth_failed", "{host}\n{stderr}");
    let error = host["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("no KDC is known for the user's realm: set winrm.kdc"),
        "{error}"
    );
    assert_eq!(code, 3, "{stderr}");
    replay.log(|l| assert!(l.actions.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kerberos_host_is_swept_with_a_keytab_and_a_loose_keytab_is_warned_about() {
    // `winrm.keytab` instead of a password; `auth` is implied. The keytab is
    // left readable by others: the sweep works and says to chmod it, once.
    let kdc = scan_realm();
    let keytab = kdc.user_keytab("svc-scan");
    std::fs::set_permissions(&keytab, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let replay = kerberos_windows_host(&kdc).await;
    let dir = tempfile::tempdir().unwrap();
    let winrm = format!(
        "port: {}\n      spn: '{SPN_TEMPLATE}'\n      kdc: '{}'\n      keytab: {}\n",
        replay.addr.port(),
        kdc.url(),
        keytab.display()
    );
    let user = format!("{REALM}\\svc-scan");
    let (code, r, stderr) = run_sweep(&dir, &user, &winrm, "no password at all", &[]).await;
    replay.assert_complete();
    replay.log(|l| assert_eq!(l.initiators, [format!("svc-scan@{REALM}")]));
    assert_kes_found(code, &r, &stderr);
    assert_eq!(
        stderr
            .matches("can be read by other users (mode 0644): chmod 600 it")
            .count(),
        1,
        "{stderr}"
    );
}
