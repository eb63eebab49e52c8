//! HTTP/1.1 to the WinRM listener over one keep-alive connection (hyper), with TLS
//! (rustls) for `https`. The connection is kept because NTLM authenticates the
//! connection, not the request.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
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

/// The CA store: the system's roots plus, when named, the PEM bundle in `ca_file`.
fn roots(ca_file: Option<&Path>, label: &str) -> Result<rustls::RootCertStore, TransportError> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates only mean fewer roots.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
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
    }
    Ok(roots)
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
    ) -> Result<Connection, TransportError> {
        let label = format!("{}:{}", host_for_url(&target.address), target.port);
        let work = async {
            let tcp = TcpStream::connect((target.address.as_str(), target.port))
                .await
                .map_err(|e| {
                    TransportError::Unreachable(format!("{label}: cannot connect: {e}"))
                })?;
            let _ = tcp.set_nodelay(true);
            let mut channel_bindings = None;
            let io: Box<dyn Io> = match target.scheme {
                Scheme::Http => Box::new(tcp),
                Scheme::Https => {
                    let provider = Arc::new(rustls::crypto::ring::default_provider());
                    let config = rustls::ClientConfig::builder_with_provider(provider)
                        .with_safe_default_protocol_versions()
                        .map_err(|e| TransportError::Failed(format!("{label}: TLS setup: {e}")))?
                        .with_root_certificates(roots(target.ca_file.as_deref(), &label)?)
                        .with_no_client_auth();
                    let name = ServerName::try_from(target.address.clone()).map_err(|e| {
                        TransportError::Failed(format!("{label}: not a TLS server name: {e}"))
                    })?;
                    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
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
