//! NTLM, Negotiate (SPNEGO) and Kerberos through Devolutions' `sspi`, and the
//! MS-WSMV message sealing that rides on the negotiated context.
//!
//! This is the only file that names `sspi`. The HTTP side (`http.rs`) sees opaque
//! tokens going out in `Authorization: Negotiate …` and coming back in
//! `WWW-Authenticate: Negotiate …`, and `seal` / `unseal` for message bodies.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use sspi::network_client::NetworkClient;
use sspi::ntlm::NtlmConfig;
use sspi::{
    AuthIdentity, AuthIdentityBuffers, BufferType, ClientRequestFlags, CredentialUse,
    CredentialsBuffers, DataRepresentation, EncryptionFlags, KerberosConfig, Negotiate,
    NegotiateConfig, Ntlm, SecurityBuffer, SecurityBufferRef, SecurityStatus, Sspi, SspiImpl,
    Username,
};

use super::WinrmAuth;

/// What the scan account proves itself with.
pub(super) enum Credential {
    Password(String),
    /// A long-term Kerberos key from a keytab (`keytab.rs`).
    Key {
        enctype: u16,
        key: Vec<u8>,
    },
}

/// A security context being negotiated or established with one host.
pub(super) enum SecurityContext {
    Ntlm {
        ctx: Box<Ntlm>,
        cred: Option<AuthIdentityBuffers>,
    },
    Negotiate {
        ctx: Box<Negotiate>,
        cred: Option<CredentialsBuffers>,
    },
}

impl std::fmt::Debug for SecurityContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecurityContext::Ntlm { .. } => "SecurityContext::Ntlm",
            SecurityContext::Negotiate { .. } => "SecurityContext::Negotiate",
        })
    }
}

/// One step of the handshake.
pub(super) struct Step {
    /// Token to send (may be empty on the last step of some mechanisms).
    pub token: Vec<u8>,
    /// The mechanism expects another token from the server.
    pub continue_needed: bool,
}

/// Why the context could not be built or used. The caller decides the outcome.
#[derive(Debug)]
pub(super) enum AuthError {
    /// The user name cannot be used (for example an empty name).
    BadUser(String),
    /// The server's token was rejected or our credentials were (wrong password).
    Rejected(String),
    /// Sealing or unsealing failed: the peer's message is corrupt or forged.
    Crypto(String),
}

const REQUEST_FLAGS: ClientRequestFlags = ClientRequestFlags::CONFIDENTIALITY
    .union(ClientRequestFlags::INTEGRITY)
    .union(ClientRequestFlags::REPLAY_DETECT)
    .union(ClientRequestFlags::SEQUENCE_DETECT)
    .union(ClientRequestFlags::MUTUAL_AUTH)
    .union(ClientRequestFlags::ALLOCATE_MEMORY);

/// KDC replies are a few KiB; anything near this is not Kerberos.
const MAX_KDC_REPLY: usize = 1 << 20;
const KDC_TIMEOUT: Duration = Duration::from_secs(5);

/// Talks to a KDC over TCP (RFC 4120 §7.2.2 framing, which `sspi` already adds
/// to the request). Blocking, with timeouts: it only runs during a Kerberos
/// handshake. UDP and KDC proxies are not offered.
struct KdcOverTcp;

impl NetworkClient for KdcOverTcp {
    fn send(&self, request: &sspi::generator::NetworkRequest) -> sspi::Result<Vec<u8>> {
        let fail = |m: String| sspi::Error::new(sspi::ErrorKind::NoAuthenticatingAuthority, m);
        if request.protocol != sspi::network_client::NetworkProtocol::Tcp {
            return Err(fail(format!(
                "KDC {} is not reachable over TCP; only tcp:// KDC addresses are supported",
                request.url
            )));
        }
        let host = request.url.host_str().unwrap_or_default();
        let port = request.url.port().unwrap_or(88);
        let addr = (host, port)
            .to_socket_addrs()
            .map_err(|e| fail(format!("KDC {host}:{port}: {e}")))?
            .next()
            .ok_or_else(|| fail(format!("KDC {host}:{port}: no address")))?;
        let mut stream = TcpStream::connect_timeout(&addr, KDC_TIMEOUT)
            .map_err(|e| fail(format!("KDC {addr}: {e}")))?;
        let _ = stream.set_read_timeout(Some(KDC_TIMEOUT));
        let _ = stream.set_write_timeout(Some(KDC_TIMEOUT));
        stream
            .write_all(&request.data)
            .map_err(|e| fail(format!("KDC {addr}: {e}")))?;
        let mut len = [0u8; 4];
        stream
            .read_exact(&mut len)
            .map_err(|e| fail(format!("KDC {addr}: {e}")))?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_KDC_REPLY {
            return Err(fail(format!("KDC {addr}: reply of {n} bytes is too large")));
        }
        let mut reply = vec![0u8; n + 4];
        reply[..4].copy_from_slice(&len);
        stream
            .read_exact(&mut reply[4..])
            .map_err(|e| fail(format!("KDC {addr}: {e}")))?;
        Ok(reply)
    }
}

/// Runs one InitializeSecurityContext call for either package; `$cb` is the
/// TLS channel binding (`SEC_CHANNEL_BINDINGS`) over https.
macro_rules! init_step {
    ($ctx:expr, $cred:expr, $spn:expr, $input:expr, $cb:expr) => {{
        let ctx = &mut **$ctx;
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let mut input = vec![SecurityBuffer::new($input.to_vec(), BufferType::Token)];
        if let Some(cb) = $cb {
            input.push(SecurityBuffer::new(
                cb.to_vec(),
                BufferType::ChannelBindings,
            ));
        }
        let status = {
            // Always an input buffer, empty on the first call: sspi's Kerberos
            // client requires one (NTLM does not care).
            let mut builder = ctx
                .initialize_security_context()
                .with_credentials_handle($cred)
                .with_context_requirements(REQUEST_FLAGS)
                .with_target_data_representation(DataRepresentation::Native)
                .with_target_name($spn)
                .with_output(&mut output)
                .with_input(&mut input);
            let mut generator = ctx
                .initialize_security_context_impl(&mut builder)
                .map_err(|e| AuthError::Rejected(e.to_string()))?;
            generator
                .resolve_with_client(&KdcOverTcp)
                .map_err(|e| AuthError::Rejected(e.to_string()))?
                .status
        };
        if matches!(
            status,
            SecurityStatus::CompleteAndContinue | SecurityStatus::CompleteNeeded
        ) {
            ctx.complete_auth_token(&mut output)
                .map_err(|e| AuthError::Rejected(e.to_string()))?;
        }
        let token = output
            .into_iter()
            .next()
            .map(|b| b.buffer)
            .unwrap_or_default();
        Ok(Step {
            token,
            continue_needed: matches!(
                status,
                SecurityStatus::ContinueNeeded | SecurityStatus::CompleteAndContinue
            ),
        })
    }};
}

impl SecurityContext {
    /// Builds a client context for `user` (`DOMAIN\user`, `user@REALM` or `user`).
    /// `kdc` pins the KDC for Kerberos; without it `sspi` finds one for the
    /// user's realm, and Negotiate falls back to NTLM when none is found.
    pub fn new(
        auth: WinrmAuth,
        user: &str,
        credential: Credential,
        kdc: Option<&str>,
    ) -> Result<Self, AuthError> {
        let username = Username::parse(user).map_err(|e| AuthError::BadUser(e.to_string()))?;
        let (identity, credentials): (Option<AuthIdentity>, sspi::Credentials) = match credential {
            Credential::Password(password) => {
                let identity = AuthIdentity {
                    username,
                    password: password.into(),
                };
                (Some(identity.clone()), identity.into())
            }
            Credential::Key { enctype, key } => {
                let key_enctype = picky_krb::crypto::CipherSuite::try_from(usize::from(enctype))
                    .map_err(|e| AuthError::BadUser(format!("keytab key type {enctype}: {e}")))?;
                let keytab = sspi::KeytabIdentity {
                    principal: username,
                    key: sspi::Secret::new(key),
                    key_enctype,
                };
                (None, sspi::Credentials::Keytab(keytab))
            }
        };
        let workstation = workstation_name();
        match auth {
            WinrmAuth::Ntlm => {
                let identity = identity.ok_or_else(|| {
                    AuthError::BadUser(
                        "NTLM needs the password; a keytab works with auth: kerberos".to_string(),
                    )
                })?;
                let mut ctx = Box::new(Ntlm::with_config(NtlmConfig::new(workstation)));
                let cred = ctx
                    .acquire_credentials_handle()
                    .with_credential_use(CredentialUse::Outbound)
                    .with_auth_data(&identity)
                    .execute(&mut *ctx)
                    .map_err(|e| AuthError::BadUser(e.to_string()))?
                    .credentials_handle;
                Ok(SecurityContext::Ntlm { ctx, cred })
            }
            WinrmAuth::Negotiate | WinrmAuth::Kerberos => {
                // Negotiate prefers Kerberos and falls back to NTLM; `kerberos`
                // forbids the fallback, so a missing KDC or SPN is an error rather
                // than a silent downgrade.
                let packages = match auth {
                    WinrmAuth::Kerberos => Some("kerberos,!ntlm".to_string()),
                    _ => None,
                };
                let protocol: Box<dyn sspi::negotiate::ProtocolConfig> = match kdc {
                    Some(kdc) => {
                        Box::new(KerberosConfig::new_with_kdc_url(kdc, workstation.clone()))
                    }
                    None => Box::new(NtlmConfig::new(workstation.clone())),
                };
                let config = NegotiateConfig::new(protocol, packages, workstation);
                let mut ctx = Box::new(
                    Negotiate::new_client(config).map_err(|e| AuthError::BadUser(e.to_string()))?,
                );
                let cred = ctx
                    .acquire_credentials_handle()
                    .with_credential_use(CredentialUse::Outbound)
                    .with_auth_data(&credentials)
                    .execute(&mut *ctx)
                    .map_err(|e| AuthError::BadUser(e.to_string()))?
                    .credentials_handle;
                Ok(SecurityContext::Negotiate { ctx, cred })
            }
            WinrmAuth::Basic => Err(AuthError::BadUser(
                "Basic authentication has no security context".to_string(),
            )),
        }
    }

    /// Produces the next token, given the server's last one (empty at first).
    /// `spn` is `HTTP/<host>`, which Kerberos needs and NTLM ignores;
    /// `channel_bindings` binds the logon to the TLS certificate (https).
    pub fn step(
        &mut self,
        input: &[u8],
        spn: &str,
        channel_bindings: Option<&[u8]>,
    ) -> Result<Step, AuthError> {
        match self {
            SecurityContext::Ntlm { ctx, cred } => {
                init_step!(ctx, cred, spn, input, channel_bindings)
            }
            SecurityContext::Negotiate { ctx, cred } => {
                // Only once SPNEGO has settled on NTLM: sspi 0.23's Kerberos
                // client, given bindings, adds KERB_AP_OPTIONS_CBT to the
                // authenticator as 2 bytes where MIT (and MS-KILE) take a
                // 4-byte value, and MIT refuses the AP-REQ (tested). Kerberos
                // over https therefore goes without a binding.
                let cb = channel_bindings
                    .filter(|_| !input.is_empty() && ctx.negotiated_protocol().is_ntlm());
                init_step!(ctx, cred, spn, input, cb)
            }
        }
    }

    /// Seals `plain` in place; returns the signature (NTLM) or wrap header (Kerberos).
    pub fn seal(&mut self, plain: &mut [u8]) -> Result<Vec<u8>, AuthError> {
        macro_rules! seal {
            ($ctx:expr) => {{
                let sizes = $ctx
                    .query_context_sizes()
                    .map_err(|e| AuthError::Crypto(e.to_string()))?;
                let mut token = vec![0u8; sizes.security_trailer as usize];
                let mut buffers = [
                    SecurityBufferRef::token_buf(&mut token),
                    SecurityBufferRef::data_buf(plain),
                ];
                $ctx.encrypt_message(EncryptionFlags::empty(), &mut buffers)
                    .map_err(|e| AuthError::Crypto(e.to_string()))?;
                let len = buffers[0].data().len();
                token.truncate(len);
                Ok(token)
            }};
        }
        match self {
            SecurityContext::Ntlm { ctx, .. } => seal!(ctx),
            SecurityContext::Negotiate { ctx, .. } => seal!(ctx),
        }
    }

    /// Verifies and decrypts `sealed` with its `signature`.
    pub fn unseal(&mut self, signature: &[u8], sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mut token = signature.to_vec();
        let mut data = sealed.to_vec();
        macro_rules! unseal {
            ($ctx:expr) => {{
                let mut buffers = [
                    SecurityBufferRef::token_buf(&mut token),
                    SecurityBufferRef::data_buf(&mut data),
                ];
                $ctx.decrypt_message(&mut buffers)
                    .map_err(|e| AuthError::Crypto(e.to_string()))?;
                Ok(buffers[1].data().to_vec())
            }};
        }
        match self {
            SecurityContext::Ntlm { ctx, .. } => unseal!(ctx),
            SecurityContext::Negotiate { ctx, .. } => unseal!(ctx),
        }
    }
}

/// The NTLM workstation name: this machine's host name (what Windows logs as the
/// source of the logon), or `FLEETSWEEP`.
fn workstation_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "FLEETSWEEP".to_string())
}
