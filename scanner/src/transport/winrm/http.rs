//! HTTP/1.1 to the WinRM listener over one keep-alive connection (hyper), with TLS
//! (rustls) for `https`. The connection is kept because NTLM authenticates the
//! connection, not the request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::{Scheme, TransportError, WinrmTarget};

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One HTTP connection to one WinRM endpoint.
pub(super) struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// `Host:` header value.
    host: String,
    /// Cap on a response body, before any parsing.
    max_response: usize,
    /// `host:port`, for messages.
    pub label: String,
    /// Over https: the channel binding of the server's certificate, which
    /// NTLM and Kerberos put into the authentication (see `cbt.rs`).
    pub channel_bindings: Option<Vec<u8>>,
}

/// A response, body already read (and bounded).
pub(super) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

fn host_for_url(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => address.to_string(),
    }
}

/// The endpoint URL, as `wsa:To` names it.
pub(super) fn url(target: &WinrmTarget) -> String {
    let scheme = match target.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    };
    format!(
        "{scheme}://{}:{}/wsman",
        host_for_url(&target.address),
        target.port
    )
}

/// The TLS client configurations of one sweep: one per `ca_file` (`None`: the
/// system roots only), built by the first host that needs it and shared by the
/// others, instead of every host reading the OS store and its PEM bundle and
/// building a rustls config again.
///
/// Only successes are kept: a `ca_file` that cannot be used fails every host
/// naming it, each with its own error. One cache per sweep (not per process),
/// so `serve` picks up a rotated CA bundle at its next sweep.
#[derive(Default)]
pub struct TlsConfigs {
    built: Mutex<Built>,
}

#[derive(Default)]
struct Built {
    /// The OS store, read at most once.
    native: Option<rustls::RootCertStore>,
    configs: HashMap<Option<PathBuf>, Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for TlsConfigs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("TlsConfigs")
            .field("ca_files", &built.configs.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl TlsConfigs {
    /// The config for hosts trusting `ca_file` (plus the system roots). The lock
    /// is held while building, so concurrent first hosts build it once.
    pub(super) fn get(
        &self,
        ca_file: Option<&Path>,
        label: &str,
    ) -> Result<Arc<rustls::ClientConfig>, TransportError> {
        // A panic elsewhere while holding the lock leaves a consistent map.
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let key = ca_file.map(Path::to_path_buf);
        if let Some(config) = built.configs.get(&key) {
            return Ok(config.clone());
        }
        let mut roots = built.native.get_or_insert_with(native_roots).clone();
        if let Some(path) = ca_file {
            add_ca_file(&mut roots, path, label)?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::Failed(format!("{label}: TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let config = Arc::new(config);
        built.configs.insert(key, config.clone());
        Ok(config)
    }
}

/// The system's roots; unreadable system certificates only mean fewer roots.
fn native_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    roots
}

/// Adds the PEM bundle in `ca_file` to `roots`.
fn add_ca_file(
    roots: &mut rustls::RootCertStore,
    path: &Path,
    label: &str,
) -> Result<(), TransportError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            TransportError::Failed(format!(
                "{label}: cannot read winrm.ca_file {}: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(TransportError::Failed(format!(
            "{label}: winrm.ca_file {} holds no PEM certificate",
            path.display()
        )));
    }
    for cert in certs {
        roots.add(cert).map_err(|e| {
            TransportError::Failed(format!("{label}: winrm.ca_file {}: {e}", path.display()))
        })?;
    }
    Ok(())
}

/// Maps a TLS handshake error: certificate problems are rejections of the host's
/// identity, the rest are connection failures.
fn tls_error(label: &str, e: std::io::Error) -> TransportError {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(why)) => TransportError::HostKeyRejected(format!(
            "{label}: TLS certificate rejected ({why:?}); certificate validation is always on: \
             name the issuing CA with winrm.ca_file"
        )),
        Some(other) => {
            TransportError::Unreachable(format!("{label}: TLS handshake failed: {other}"))
        }
        None => TransportError::Unreachable(format!("{label}: TLS handshake failed: {e}")),
    }
}

impl Connection {
    /// Connects (TCP, then TLS for https) and starts HTTP/1.1, within `timeout`.
    pub async fn open(
        target: &WinrmTarget,
        timeout: Duration,
        max_response: usize,
        tls: &TlsConfigs,
    ) -> Result<Connection, TransportError> {
        let label = format!("{}:{}", host_for_url(&target.address), target.port);
        let work = async {
            let tcp = TcpStream::connect((&*target.address, target.port))
                .await
                .map_err(|e| {
                    TransportError::Unreachable(format!("{label}: cannot connect: {e}"))
                })?;
            let _ = tcp.set_nodelay(true);
            let mut channel_bindings = None;
            let io: Box<dyn Io> = match target.scheme {
                Scheme::Http => Box::new(tcp),
                Scheme::Https => {
                    let config = tls.get(target.ca_file.as_deref(), &label)?;
                    let name = ServerName::try_from(target.address.to_string()).map_err(|e| {
                        TransportError::Failed(format!("{label}: not a TLS server name: {e}"))
                    })?;
                    let tls = tokio_rustls::TlsConnector::from(config)
                        .connect(name, tcp)
                        .await
                        .map_err(|e| tls_error(&label, e))?;
                    channel_bindings = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|chain| chain.first())
                        .map(|leaf| super::cbt::sec_channel_bindings(leaf.as_ref()));
                    Box::new(tls)
                }
            };
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
                .await
                .map_err(|e| TransportError::Unreachable(format!("{label}: HTTP: {e}")))?;
            tokio::spawn(async move {
                // Ends when the session drops its sender or the peer closes.
                let _ = conn.await;
            });
            Ok::<_, TransportError>((sender, channel_bindings))
        };
        let (sender, channel_bindings) =
            tokio::time::timeout(timeout, work).await.map_err(|_| {
                TransportError::TimedOut(format!(
                    "{label}: no WinRM connection within {}s",
                    timeout.as_secs()
                ))
            })??;
        Ok(Connection {
            sender,
            host: label.clone(),
            max_response,
            label,
            channel_bindings,
        })
    }

    /// POSTs `body` to `/wsman` and reads the response, within `timeout`.
    pub async fn post(
        &mut self,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Response, TransportError> {
        let label = self.label.clone();
        let max = self.max_response;
        let mut builder = Request::post("/wsman")
            .header(HOST, &self.host)
            .header(
                USER_AGENT,
                concat!("fleetsweep/", env!("CARGO_PKG_VERSION")),
            )
            .header(CONTENT_LENGTH, body.len());
        if let Some(ct) = content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        if let Some(a) = authorization {
            builder = builder.header(AUTHORIZATION, a);
        }
        let request = builder
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| TransportError::Failed(format!("{label}: cannot build request: {e}")))?;
        let sender = &mut self.sender;
        let work = async move {
            sender.ready().await.map_err(|e| {
                TransportError::Failed(format!("{label}: WinRM connection closed: {e}"))
            })?;
            let response = sender.send_request(request).await.map_err(|e| {
                TransportError::Failed(format!("{label}: HTTP request failed: {e}"))
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max)
                .collect()
                .await
                .map_err(|e| {
                    TransportError::Failed(format!(
                        "{label}: response body rejected (limit {max} bytes): {e}"
                    ))
                })?
                .to_bytes()
                .to_vec();
            Ok::<_, TransportError>(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            TransportError::TimedOut(format!(
                "{}: no WinRM response within {}s",
                self.label,
                timeout.as_secs()
            ))
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["ca.test".to_string()]).unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn hosts_with_the_same_ca_share_one_config_and_a_bad_ca_file_fails_each_host() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, ca_pem()).unwrap();
        let other = dir.path().join("other.pem");
        std::fs::write(&other, ca_pem()).unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "not a certificate\n").unwrap();
        let tls = TlsConfigs::default();

        let a = tls.get(Some(&ca), "win-01:5986").unwrap();
        let b = tls.get(Some(&ca), "win-02:5986").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "same ca_file, one config");
        let c = tls.get(Some(&other), "win-03:5986").unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "another ca_file, another config");
        let native = tls.get(None, "win-04:5986").unwrap();
        assert!(Arc::ptr_eq(&native, &tls.get(None, "win-05:5986").unwrap()));
        assert!(!Arc::ptr_eq(&native, &a));

        for label in ["win-06:5986", "win-07:5986"] {
            match tls.get(Some(&bad), label) {
                Err(TransportError::Failed(m)) => assert_eq!(
                    m,
                    format!(
                        "{label}: winrm.ca_file {} holds no PEM certificate",
                        bad.display()
                    )
                ),
                other => panic!("{label}: {other:?}"),
            }
        }
        let missing = dir.path().join("missing.pem");
        match tls.get(Some(&missing), "win-08:5986") {
            Err(TransportError::Failed(m)) => assert!(
                m.starts_with(&format!(
                    "win-08:5986: cannot read winrm.ca_file {}",
                    missing.display()
                )),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        // Failures are not cached; the good configs still are.
        assert!(Arc::ptr_eq(&a, &tls.get(Some(&ca), "win-09:5986").unwrap()));
    }
}
