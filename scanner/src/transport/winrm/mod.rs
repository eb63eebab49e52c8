//! WinRM (WS-Management over HTTP 5985 / HTTPS 5986): run one command line in a
//! WinRS cmd shell and collect its output.
//!
//! One `run` is the WinRS lifecycle pywinrm and pypsrp use against real hosts:
//! Create shell → Command → Receive (long poll, `w:TimedOut` faults mean "poll
//! again") → Signal terminate → Delete shell. Signal and Delete are sent on every
//! path out, errors included, so a failed probe leaves no shell behind on the host
//! (a Windows host allows only a few shells per user).
//!
//! Authentication: `basic` only over HTTPS (the password would otherwise travel
//! in clear); `ntlm`, `negotiate` and `kerberos` through `sspi` on one keep-alive
//! connection, and over plain HTTP every message is then sealed with the session
//! key (MS-WSMV `multipart/encrypted`). TLS certificates are always verified:
//! against the system roots and `ca_file`, in a client config built once per
//! CA file for a whole sweep ([`TlsConfigs`]).
//!
//! This module is the only one naming hyper, rustls and sspi; the sweep sees
//! [`WinrmTarget`], [`WinrmSettings`], [`WinrmSession`] and [`TransportError`].

mod auth;
mod cbt;
mod http;
mod keytab;
mod mime;
mod soap;

pub use http::TlsConfigs;

/// The private parsers of WinRM responses and keytabs, for the fuzz targets in
/// `fuzz/` only: cargo-fuzz builds every crate with `--cfg fuzzing`, no other
/// build sees this (docs/fuzzing.md).
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    pub use super::keytab::{key_for, parse as parse_keytab};
    pub use super::mime::{decode as decode_mime, encode as encode_mime};
    pub use super::soap::{command_id, fault, parse as parse_soap, received, shell_id};
}

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use super::capture::Capture;
use super::{ExecOutput, TransportError};
use auth::{AuthError, Credential, SecurityContext};
use soap::{Element, Fault, Header};

/// `http` (5985, messages sealed by NTLM/Kerberos) or `https` (5986, TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 5985,
            Scheme::Https => 5986,
        }
    }
}

/// How to authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WinrmAuth {
    /// User and password in every request; HTTPS only.
    Basic,
    /// Raw NTLM in `Authorization: Negotiate` (what WinRM accepts for local accounts).
    Ntlm,
    /// SPNEGO: Kerberos when a KDC is found for the user's realm, else NTLM.
    Negotiate,
    /// SPNEGO restricted to Kerberos (no NTLM fallback).
    Kerberos,
}

impl WinrmAuth {
    /// The inventory's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            WinrmAuth::Basic => "basic",
            WinrmAuth::Ntlm => "ntlm",
            WinrmAuth::Negotiate => "negotiate",
            WinrmAuth::Kerberos => "kerberos",
        }
    }
}

/// Where the password comes from; never from the inventory itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// Name of an environment variable holding it.
    Env(String),
    /// A file whose first line is the password.
    File(PathBuf),
    /// A keytab holding the account's Kerberos key (no password; `auth: kerberos`).
    Keytab(PathBuf),
}

/// Everything needed to reach one Windows host over WinRM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WinrmTarget {
    pub address: std::sync::Arc<str>,
    pub port: u16,
    pub scheme: Scheme,
    pub auth: WinrmAuth,
    /// `user`, `DOMAIN\user` or `user@REALM`.
    pub user: String,
    pub password: PasswordSource,
    /// Extra CA certificates (PEM) trusted for this host's TLS certificate.
    pub ca_file: Option<PathBuf>,
    /// The service principal Kerberos asks a ticket for; `HTTP/<address>` when
    /// unset. Needed when `address` is an IP or a name that is not the host's
    /// account name in the directory (NTLM ignores it).
    pub spn: Option<String>,
    /// The KDC for the user's realm (`tcp://dc01.corp.example:88`); when unset,
    /// `sspi` looks it up: `SSPI_KDC_URL_<REALM>`, `SSPI_KDC_URL`, then the
    /// realm's `kdc =` in `KRB5_CONFIG` or /etc/krb5.conf. (No DNS SRV lookup:
    /// sspi's resolver feature is off, so a sweep makes no DNS queries of its own.)
    pub kdc: Option<String>,
}

/// `https://host:5986/wsman`: where a target is reached, for listings.
pub fn endpoint(target: &WinrmTarget) -> String {
    http::url(target)
}

impl WinrmTarget {
    /// The SPN used for this host (see [`WinrmTarget::spn`]).
    pub fn service_principal(&self) -> String {
        self.spn
            .clone()
            .unwrap_or_else(|| format!("HTTP/{}", self.address))
    }
}

/// Settings shared by every WinRM connection of a sweep.
#[derive(Debug, Clone)]
pub struct WinrmSettings {
    /// TCP + TLS + authentication deadline.
    pub connect_timeout: Duration,
    /// `wsman:OperationTimeout`: how long the server may hold a Receive. Each HTTP
    /// request may take this plus [`WinrmSettings::request_grace`].
    pub operation_timeout: Duration,
    pub request_grace: Duration,
    /// `wsman:MaxEnvelopeSize` asked of the server.
    pub max_envelope_size: u32,
    /// Largest HTTP response body read, before decryption or parsing.
    pub max_response_bytes: usize,
    /// TLS client configs, built once per CA choice and shared by the hosts
    /// given the same `Arc` (a sweep passes one to all of its hosts).
    pub tls: Arc<TlsConfigs>,
}

impl Default for WinrmSettings {
    fn default() -> Self {
        WinrmSettings {
            connect_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(20),
            request_grace: Duration::from_secs(10),
            max_envelope_size: 153_600,
            // Responses are at most MaxEnvelopeSize; sealing and MIME add little.
            max_response_bytes: 512 * 1024,
            tls: Arc::default(),
        }
    }
}

/// How requests are authenticated on the open connection.
enum Auth {
    /// Precomputed `Basic …` header value.
    Basic(String),
    /// Connection authenticated by the handshake; seal bodies when `seal`.
    Context {
        ctx: Box<SecurityContext>,
        seal: bool,
    },
}

/// An open, authenticated WinRM connection to one host.
pub struct WinrmSession {
    conn: http::Connection,
    auth: Auth,
    url: String,
    /// `wsmv:SessionId`, the same for every request of this session.
    session_id: String,
    settings: WinrmSettings,
    /// Kept to reconnect for cleanup (the password is read again from its source).
    target: WinrmTarget,
    /// Set while a request is on the wire, cleared once its response is read. Still
    /// set afterwards means the exchange was cut (timeout, cancellation), and the
    /// connection cannot carry another request: cleanup reconnects first.
    broken: bool,
    /// A shell (and command) not yet cleaned up: `close` deletes it if `run`
    /// was cancelled from outside (host timeout) before it could.
    pending: Option<(String, Option<String>)>,
}

impl std::fmt::Debug for WinrmSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WinrmSession")
            .field("url", &self.url)
            .finish()
    }
}

fn read_password(source: &PasswordSource, label: &str) -> Result<String, TransportError> {
    match source {
        PasswordSource::Env(name) => std::env::var(name).map_err(|_| {
            TransportError::AuthFailed(format!(
                "{label}: environment variable {name} (winrm.password_env) is not set"
            ))
        }),
        PasswordSource::File(path) => crate::diag::read_secret(path)
            .map(|s| s.lines().next().unwrap_or_default().to_string())
            .map_err(|e| {
                TransportError::AuthFailed(format!(
                    "{label}: cannot read winrm.password_file {}: {e}",
                    path.display()
                ))
            }),
        PasswordSource::Keytab(path) => Err(TransportError::AuthFailed(format!(
            "{label}: winrm.keytab {} holds a Kerberos key, not a password: use auth: kerberos",
            path.display()
        ))),
    }
}

/// A secret file that others can read is worth a warning (once per file, not
/// per host): on a shared scanner it gives away the scan account.
fn warn_if_readable_by_others(path: &std::path::Path, what: &str) {
    use std::os::unix::fs::PermissionsExt;
    static WARNED: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        let mut warned = WARNED
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if mode & 0o077 != 0 && !warned.iter().any(|p| p == path) {
            warned.push(path.to_path_buf());
            tracing::warn!(
                "{what} {} can be read by other users (mode {:04o}): chmod 600 it",
                path.display(),
                mode & 0o7777
            );
        }
    }
}

/// The password, or for a keytab the user's key from it.
fn read_credential(target: &WinrmTarget, label: &str) -> Result<Credential, TransportError> {
    match &target.password {
        PasswordSource::Keytab(p) => warn_if_readable_by_others(p, "winrm.keytab"),
        PasswordSource::File(p) => warn_if_readable_by_others(p, "winrm.password_file"),
        PasswordSource::Env(_) => {}
    }
    match (&target.password, target.auth) {
        (PasswordSource::Keytab(path), WinrmAuth::Kerberos) => {
            let entries = keytab::load(path)
                .map_err(|e| TransportError::AuthFailed(format!("{label}: winrm.keytab: {e}")))?;
            let entry = keytab::key_for(&entries, &target.user).map_err(|e| {
                TransportError::AuthFailed(format!("{label}: winrm.keytab {}: {e}", path.display()))
            })?;
            Ok(Credential::Key {
                enctype: entry.enctype,
                key: entry.key.clone(),
            })
        }
        (source, _) => read_password(source, label).map(Credential::Password),
    }
}

/// The token of a `WWW-Authenticate: Negotiate <base64>` header, if any.
fn negotiate_token(headers: &hyper::HeaderMap) -> Option<Vec<u8>> {
    headers
        .get_all(hyper::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("Negotiate")
                .then(|| {
                    base64::engine::general_purpose::STANDARD
                        .decode(rest.trim())
                        .ok()
                })
                .flatten()
        })
}

/// Connects and authenticates. Basic credentials are checked by the first request;
/// NTLM / Negotiate / Kerberos run their handshake here.
pub async fn connect(
    target: &WinrmTarget,
    settings: &WinrmSettings,
) -> Result<WinrmSession, TransportError> {
    let url = http::url(target);
    if target.auth == WinrmAuth::Basic && target.scheme == Scheme::Http {
        return Err(TransportError::AuthFailed(format!(
            "{url}: refusing Basic authentication over http: the password would travel in \
             clear; use scheme https, or auth ntlm/negotiate/kerberos"
        )));
    }
    let (conn, auth) = open(target, settings).await?;
    Ok(WinrmSession {
        conn,
        auth,
        url,
        session_id: new_id(),
        settings: settings.clone(),
        target: target.clone(),
        broken: false,
        pending: None,
    })
}

/// Opens and authenticates one connection.
async fn open(
    target: &WinrmTarget,
    settings: &WinrmSettings,
) -> Result<(http::Connection, Auth), TransportError> {
    let credential = read_credential(target, &http::url(target))?;
    let mut conn = http::Connection::open(
        target,
        settings.connect_timeout,
        settings.max_response_bytes,
        &settings.tls,
    )
    .await?;
    let auth = match (target.auth, credential) {
        (WinrmAuth::Basic, credential) => {
            let Credential::Password(password) = credential else {
                return Err(TransportError::AuthFailed(
                    "Basic authentication needs a password, not a keytab".to_string(),
                ));
            };
            let pair = format!("{}:{password}", target.user);
            Auth::Basic(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        }
        (mechanism, credential) => {
            let ctx = handshake(&mut conn, target, mechanism, credential, settings).await?;
            Auth::Context {
                ctx: Box::new(ctx),
                seal: target.scheme == Scheme::Http,
            }
        }
    };
    Ok((conn, auth))
}

/// The 401 dance: empty POSTs carrying our tokens until the server answers 200.
async fn handshake(
    conn: &mut http::Connection,
    target: &WinrmTarget,
    mechanism: WinrmAuth,
    credential: Credential,
    settings: &WinrmSettings,
) -> Result<SecurityContext, TransportError> {
    let label = conn.label.clone();
    let auth_failed = |m: String| TransportError::AuthFailed(format!("{label}: {m}"));
    let mut ctx = SecurityContext::new(mechanism, &target.user, credential, target.kdc.as_deref())
        .map_err(|e| match e {
            AuthError::BadUser(m) | AuthError::Rejected(m) | AuthError::Crypto(m) => {
                auth_failed(format!("cannot start {mechanism:?} authentication: {m}"))
            }
        })?;
    let spn = target.service_principal();
    let mut input: Vec<u8> = Vec::new();
    // NTLM takes two round trips, Kerberos one or two; more means a confused peer.
    for _ in 0..4 {
        let (back, result) = step_off_thread(
            ctx,
            std::mem::take(&mut input),
            spn.clone(),
            conn.channel_bindings.clone(),
        )
        .await
        .map_err(&auth_failed)?;
        ctx = back;
        let step = result.map_err(|e| match e {
            AuthError::BadUser(m) | AuthError::Rejected(m) | AuthError::Crypto(m) => {
                // sspi appends the KDC's raw e-data in hex; the text before says it all.
                let m = m.split(". Additional error data:").next().unwrap_or(&m);
                auth_failed(format!(
                    "{mechanism:?} authentication failed: {m}{}",
                    kerberos_hint(m, target)
                ))
            }
        })?;
        let header = format!(
            "Negotiate {}",
            base64::engine::general_purpose::STANDARD.encode(&step.token)
        );
        let response = conn
            .post(None, Some(&header), Vec::new(), settings.connect_timeout)
            .await?;
        match response.status {
            hyper::StatusCode::UNAUTHORIZED => match negotiate_token(&response.headers) {
                Some(token) if step.continue_needed => input = token,
                _ => {
                    return Err(auth_failed(format!(
                        "credentials for {} rejected ({mechanism:?})",
                        target.user
                    )))
                }
            },
            s if s.is_success() => {
                // The server's last token (Kerberos AP-REP, SPNEGO mechListMIC):
                // it proves the host holds the service key, so a context that
                // still expects it is not established without it.
                if step.continue_needed {
                    let Some(token) = negotiate_token(&response.headers) else {
                        return Err(auth_failed(format!(
                            "the host accepted the {mechanism:?} authentication without its final \
                             token, so it did not prove its identity (mutual authentication)"
                        )));
                    };
                    let (back, result) =
                        step_off_thread(ctx, token, spn.clone(), conn.channel_bindings.clone())
                            .await
                            .map_err(&auth_failed)?;
                    ctx = back;
                    if let Err(
                        AuthError::BadUser(m) | AuthError::Rejected(m) | AuthError::Crypto(m),
                    ) = result
                    {
                        return Err(auth_failed(format!(
                            "the host's final {mechanism:?} token failed mutual authentication \
                             (is this the host you meant? SPN {spn}): {m}"
                        )));
                    }
                }
                return Ok(ctx);
            }
            s => {
                return Err(TransportError::Failed(format!(
                    "{label}: unexpected HTTP {s} during {mechanism:?} authentication"
                )))
            }
        }
    }
    Err(auth_failed(format!(
        "{mechanism:?} authentication did not finish in 4 round trips"
    )))
}

/// What to do about a Kerberos error, for the messages a KDC or `sspi` gives.
fn kerberos_hint(message: &str, target: &WinrmTarget) -> String {
    let m = message.to_ascii_lowercase();
    let hint = if m.contains("no kdc server found") {
        "no KDC is known for the user's realm: set winrm.kdc (e.g. `tcp://dc01.corp.example.com:88`), \
         or give the realm a `kdc =` in /etc/krb5.conf (or the file KRB5_CONFIG names), or set \
         SSPI_KDC_URL_<REALM>"
            .to_string()
    } else if m.contains("server not found in kerberos database") {
        format!(
            "the realm has no service principal {}: set winrm.spn to one the host is registered \
             under (on a domain controller, `setspn -L <host>` lists them)",
            target.service_principal()
        )
    } else if m.contains("client not found in kerberos database") {
        format!(
            "the realm has no user `{}`: check winrm's user; `user@REALM` is sent as an \
             enterprise name (Active Directory resolves it, an MIT KDC does not: write \
             `REALM\\user` there)",
            target.user
        )
    } else if m.contains("pre-authentication information was invalid")
        || m.contains("preauth_failed")
    {
        match &target.password {
            PasswordSource::Keytab(path) => format!(
                "the KDC refused the key of `{}` in {}: the password changed since the keytab \
                 was exported? export it again",
                target.user,
                path.display()
            ),
            _ => format!("the KDC refused the password of `{}`", target.user),
        }
    } else if m.contains("clock skew") || m.contains("timeskew") || m.contains("time skew") {
        "this machine's clock and the KDC's differ by more than Kerberos allows (5 minutes): \
         synchronise the clock"
            .to_string()
    } else {
        return String::new();
    };
    format!(" ({hint})")
}

/// Runs one handshake step on the blocking pool: a Kerberos step may talk to
/// the KDC with blocking sockets (bounded by their own timeouts), which must not
/// stall the sweep's async workers.
async fn step_off_thread(
    mut ctx: SecurityContext,
    input: Vec<u8>,
    spn: String,
    channel_bindings: Option<Vec<u8>>,
) -> Result<(SecurityContext, Result<auth::Step, AuthError>), String> {
    tokio::task::spawn_blocking(move || {
        let result = ctx.step(&input, &spn, channel_bindings.as_deref());
        (ctx, result)
    })
    .await
    .map_err(|e| format!("the authentication task failed: {e}"))
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string().to_uppercase()
}

/// A request failed with a WS-Management fault, or at the transport.
enum RequestError {
    Fault(Fault),
    Transport(TransportError),
}

impl From<TransportError> for RequestError {
    fn from(e: TransportError) -> Self {
        RequestError::Transport(e)
    }
}

/// Host-supplied text in error messages: control characters dropped, bounded.
fn sanitize(text: &str) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    clean.trim().to_string()
}

impl WinrmSession {
    fn header<'a>(
        &'a self,
        action: &'a str,
        message_id: &'a str,
        options: &'a [(&'a str, &'a str)],
        shell_id: Option<&'a str>,
    ) -> Header<'a> {
        Header {
            action,
            to: &self.url,
            message_id,
            session_id: &self.session_id,
            operation_timeout_secs: self.settings.operation_timeout.as_secs(),
            max_envelope_size: self.settings.max_envelope_size,
            options,
            shell_id,
        }
    }

    /// Sends one envelope and returns the parsed response, or its fault.
    async fn request(&mut self, xml: String) -> Result<Vec<Element>, RequestError> {
        let timeout = self.settings.operation_timeout + self.settings.request_grace;
        self.request_within(xml, timeout).await
    }

    async fn request_within(
        &mut self,
        xml: String,
        timeout: Duration,
    ) -> Result<Vec<Element>, RequestError> {
        let label = self.url.clone();
        const SOAP: &str = "application/soap+xml;charset=UTF-8";
        self.broken = true;
        let response = match &mut self.auth {
            Auth::Basic(header) => {
                let header = header.clone();
                self.conn
                    .post(Some(SOAP), Some(&header), xml.into_bytes(), timeout)
                    .await?
            }
            Auth::Context { seal: false, .. } => {
                self.conn
                    .post(Some(SOAP), None, xml.into_bytes(), timeout)
                    .await?
            }
            Auth::Context { ctx, seal: true } => {
                let mut plain = xml.into_bytes();
                let plain_len = plain.len();
                let signature = ctx.seal(&mut plain).map_err(|e| {
                    TransportError::Failed(format!("{label}: cannot seal the message: {e:?}"))
                })?;
                let body = mime::encode(plain_len, &signature, &plain);
                self.conn
                    .post(Some(mime::CONTENT_TYPE), None, body, timeout)
                    .await?
            }
        };
        self.broken = false;
        if response.status == hyper::StatusCode::UNAUTHORIZED {
            return Err(TransportError::AuthFailed(format!(
                "{label}: credentials rejected (HTTP 401)"
            ))
            .into());
        }
        let is_sealed = response
            .headers
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/encrypted"));
        let body = match (&mut self.auth, is_sealed) {
            (Auth::Context { ctx, .. }, true) => {
                let parts = mime::decode(&response.body)
                    .map_err(|m| TransportError::Failed(format!("{label}: {m}")))?;
                let plain = ctx.unseal(parts.signature, parts.sealed).map_err(|e| {
                    TransportError::Failed(format!(
                        "{label}: encrypted response failed verification: {e:?}"
                    ))
                })?;
                if plain.len() != parts.plain_len {
                    return Err(TransportError::Failed(format!(
                        "{label}: encrypted response is {} bytes, its header says {}",
                        plain.len(),
                        parts.plain_len
                    ))
                    .into());
                }
                plain
            }
            (Auth::Context { seal: true, .. }, false) if !response.body.is_empty() => {
                return Err(TransportError::Failed(format!(
                    "{label}: HTTP {} with an unencrypted body on an encrypted session",
                    response.status
                ))
                .into());
            }
            _ => response.body,
        };
        let text = String::from_utf8_lossy(&body);
        let elements = match soap::parse(&text) {
            Ok(e) => e,
            Err(m) => {
                return Err(TransportError::Failed(format!(
                    "{label}: HTTP {}: unreadable response: {}",
                    response.status,
                    sanitize(&m)
                ))
                .into())
            }
        };
        if let Some(f) = soap::fault(&elements) {
            return Err(RequestError::Fault(f));
        }
        if !response.status.is_success() {
            return Err(TransportError::Failed(format!(
                "{label}: unexpected HTTP {}",
                response.status
            ))
            .into());
        }
        Ok(elements)
    }

    fn fault_error(&self, step: &str, f: &Fault) -> TransportError {
        let code = f.wsman_code.as_deref().unwrap_or("-");
        TransportError::Failed(format!(
            "{}: {step} failed: WS-Management fault {code}: {}",
            self.url,
            sanitize(&f.reason)
        ))
    }

    async fn request_or_fail(
        &mut self,
        step: &str,
        xml: String,
    ) -> Result<Vec<Element>, TransportError> {
        match self.request(xml).await {
            Ok(e) => Ok(e),
            Err(RequestError::Transport(t)) => Err(t),
            Err(RequestError::Fault(f)) => Err(self.fault_error(step, &f)),
        }
    }

    /// Runs `command_line` in a new cmd shell and collects at most `output_limit`
    /// bytes of stdout and of stderr. The shell is always deleted afterwards.
    pub async fn run(
        &mut self,
        command_line: &str,
        output_limit: usize,
    ) -> Result<ExecOutput, TransportError> {
        let id = new_id();
        let xml = soap::create_shell(&self.header(soap::ACTION_CREATE, &id, &[], None));
        let created = self.request_or_fail("Create shell", xml).await?;
        let shell_id = soap::shell_id(&created).ok_or_else(|| {
            TransportError::Failed(format!("{}: CreateResponse without a ShellId", self.url))
        })?;
        self.pending = Some((shell_id.clone(), None));
        let result = self
            .run_in_shell(&shell_id, command_line, output_limit)
            .await;
        self.cleanup().await;
        result
    }

    async fn run_in_shell(
        &mut self,
        shell_id: &str,
        command_line: &str,
        limit: usize,
    ) -> Result<ExecOutput, TransportError> {
        let id = new_id();
        let options = [("WINRS_SKIP_CMD_SHELL", "False")];
        let xml = soap::command(
            &self.header(soap::ACTION_COMMAND, &id, &options, Some(shell_id)),
            command_line,
        );
        let started = self.request_or_fail("Command", xml).await?;
        let command_id = soap::command_id(&started).ok_or_else(|| {
            TransportError::Failed(format!("{}: CommandResponse without a CommandId", self.url))
        })?;
        self.pending = Some((shell_id.to_string(), Some(command_id.clone())));

        // Each Receive response is at most `max_response_bytes` (the HTTP body
        // is capped before it is decrypted or parsed); across responses the
        // output is held within the limit, see `capture`.
        let mut capture = Capture::new(limit);
        loop {
            let id = new_id();
            let options = [("WSMAN_CMDSHELL_OPTION_KEEPALIVE", "True")];
            let xml = soap::receive(
                &self.header(soap::ACTION_RECEIVE, &id, &options, Some(shell_id)),
                &command_id,
            );
            let elements = match self.request(xml).await {
                Ok(e) => e,
                Err(RequestError::Fault(f)) if f.is_operation_timeout() => continue,
                Err(RequestError::Fault(f)) => return Err(self.fault_error("Receive", &f)),
                Err(RequestError::Transport(t)) => return Err(t),
            };
            let received = soap::received(elements);
            for (name, b64) in received.streams {
                if b64.is_empty() {
                    continue;
                }
                let is_stderr = name == "stderr";
                let room = if is_stderr {
                    capture.stderr_room()
                } else {
                    capture.stdout_room()
                };
                if room == 0 {
                    // Dropped anyway: counted, not decoded.
                    capture.discard(b64.len() / 4 * 3);
                    if !is_stderr {
                        capture.mark_truncated();
                    }
                    continue;
                }
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64.as_bytes())
                    .map_err(|e| {
                        TransportError::Failed(format!(
                            "{}: {name} stream is not base64: {e}",
                            self.url
                        ))
                    })?;
                if is_stderr {
                    capture.stderr(&bytes);
                } else {
                    capture.stdout(&bytes);
                }
            }
            if let Some(code) = received.done {
                return Ok(capture.finish(code.map(|c| c as u32), false));
            }
            // Cut off: `run` then signals terminate and deletes the shell.
            let expired = capture
                .drain_deadline()
                .is_some_and(|at| tokio::time::Instant::now() >= at);
            if capture.exhausted() || expired {
                tracing::debug!(url = %self.url, bytes = capture.seen(), "output past the cap kept coming; command terminated");
                return Ok(capture.finish(None, true));
            }
        }
    }

    /// Signal terminate (when a command was started) and Delete the shell. Best
    /// effort: failures are only logged, the probe's own result stands.
    async fn cleanup(&mut self) {
        let Some((shell_id, command_id)) = self.pending.take() else {
            return;
        };
        // Signal and Delete answer at once on a healthy host; a sick one must not
        // hold the sweep for two more operation timeouts.
        let grace = self.settings.request_grace;
        if self.broken {
            match open(&self.target, &self.settings).await {
                Ok((conn, auth)) => {
                    self.conn = conn;
                    self.auth = auth;
                    self.broken = false;
                }
                Err(e) => {
                    tracing::debug!(url = %self.url, error = %e, "WinRM reconnect for cleanup failed");
                    return;
                }
            }
        }
        if let Some(command_id) = command_id {
            let id = new_id();
            let xml = soap::signal(
                &self.header(soap::ACTION_SIGNAL, &id, &[], Some(&shell_id)),
                &command_id,
                soap::SIGNAL_TERMINATE,
            );
            if let Err(RequestError::Transport(e)) = self.request_within(xml, grace).await {
                tracing::debug!(url = %self.url, error = %e, "WinRM Signal failed");
            }
        }
        let id = new_id();
        let xml = soap::delete(&self.header(soap::ACTION_DELETE, &id, &[], Some(&shell_id)));
        if let Err(RequestError::Transport(e)) = self.request_within(xml, grace).await {
            tracing::debug!(url = %self.url, error = %e, "WinRM Delete failed");
        }
    }

    /// Deletes a shell left behind by a cancelled `run`, then drops the connection.
    pub async fn close(mut self) {
        self.cleanup().await;
    }
}
