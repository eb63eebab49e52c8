//! `--web.config.file`: TLS and basic auth in the format of Prometheus's
//! exporter-toolkit (`web.yml`), so the file an operator already writes for
//! node_exporter works here as it is.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # relative paths are relative to web.yml
//!   key_file: server.key
//!   client_auth_type: RequireAndVerifyClientCert   # optional mTLS
//!   client_ca_file: clients-ca.crt
//!   min_version: TLS12
//! http_server_config:
//!   headers: {Strict-Transport-Security: max-age=31536000}
//! basic_auth_users:
//!   prometheus: $2y$10$...          # bcrypt hash (htpasswd -nBC 10 prometheus)
//! ```
//!
//! Every error names file:line:column. What rustls cannot do (TLS 1.0/1.1,
//! Go cipher-suite names, accepting unverified client certificates) is an
//! error, never silently ignored: a security setting that does not apply
//! must not look as if it did.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{self, Diagnostic};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    tls_server_config: Option<TlsFile>,
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert_file: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    client_auth_type: Option<Spanned<String>>,
    client_ca_file: Option<Spanned<String>>,
    min_version: Option<Spanned<String>>,
    max_version: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// Accepted for compatibility with exporter-toolkit files; fleetsweep
    /// serves HTTP/1.1 only (Prometheus scrapes with it).
    http2: Option<bool>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
}

/// A validated web configuration: what `serve` needs to listen.
#[derive(Clone, Default)]
pub struct WebConfig {
    /// Present when `tls_server_config` is given.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// user → bcrypt hash; empty means no authentication.
    pub basic_auth_users: BTreeMap<String, String>,
    /// Extra response headers (`http_server_config.headers`).
    pub headers: Vec<(String, String)>,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("tls", &self.tls.is_some())
            .field("basic_auth_users", &self.basic_auth_users.keys())
            .field("headers", &self.headers)
            .finish()
    }
}

/// Headers the server sets itself; configuring them would break responses.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "content-length",
    "content-type",
    "content-encoding",
    "connection",
    "transfer-encoding",
    "www-authenticate",
    "date",
];

impl WebConfig {
    /// Reads and checks `path`, loading the certificates it names.
    pub fn load(path: &Path) -> Result<WebConfig, Diagnostic> {
        let text = diag::read_file(path)?;
        let file: File = if diag::is_blank_yaml(&text) {
            File {
                tls_server_config: None,
                http_server_config: None,
                basic_auth_users: BTreeMap::new(),
            }
        } else {
            diag::parse_yaml(path, &text)?
        };
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let mut cfg = WebConfig::default();
        for (user, hash) in &file.basic_auth_users {
            // Fails at start-up, not on the first scrape, when a hash is garbage.
            if hash.value.parse::<bcrypt::HashParts>().is_err() {
                return Err(Diagnostic::at(
                    path,
                    hash.referenced,
                    format!("the password of `{user}` must be a bcrypt hash ($2a$, $2b$ or $2y$; make one with `htpasswd -nBC 10 {user}`)"),
                ));
            }
            cfg.basic_auth_users
                .insert(user.clone(), hash.value.clone());
        }
        if let Some(http) = &file.http_server_config {
            if http.http2 == Some(true) {
                tracing::warn!("{}: http2: fleetsweep serves HTTP/1.1 only", path.display());
            }
            for (name, value) in &http.headers {
                let lower = name.to_ascii_lowercase();
                let valid_name = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
                if !valid_name || RESERVED_HEADERS.contains(&lower.as_str()) {
                    return Err(Diagnostic::at(
                        path,
                        value.referenced,
                        format!("`{name}` cannot be set in http_server_config.headers"),
                    ));
                }
                if value
                    .value
                    .bytes()
                    .any(|b| b.is_ascii_control() && b != b'\t')
                {
                    return Err(Diagnostic::at(
                        path,
                        value.referenced,
                        format!("the value of header `{name}` holds control characters"),
                    ));
                }
                cfg.headers.push((name.clone(), value.value.clone()));
            }
        }
        if let Some(tls) = &file.tls_server_config {
            cfg.tls = Some(Arc::new(tls_config(path, &base, tls)?));
        }
        Ok(cfg)
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = crate::inventory::expand_home(p);
    if p.is_absolute() {
        p
    } else {
        base.join(p)
    }
}

fn version(
    path: &Path,
    v: &Spanned<String>,
) -> Result<&'static rustls::SupportedProtocolVersion, Diagnostic> {
    match v.value.as_str() {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(Diagnostic::at(
            path,
            v.referenced,
            format!("{} is not supported (TLS 1.2 and 1.3 only)", v.value),
        )),
        other => Err(Diagnostic::at(
            path,
            v.referenced,
            format!("unknown TLS version `{other}`, expected TLS12 or TLS13"),
        )),
    }
}

/// A certificate or key file, bounded: `cert_file: /dev/zero` is an error,
/// not an abort.
fn pem_file(path: &Path) -> Result<Vec<u8>, String> {
    diag::read_bounded(path, diag::CONFIG_FILE_LIMIT)
}

fn tls_config(path: &Path, base: &Path, tls: &TlsFile) -> Result<rustls::ServerConfig, Diagnostic> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let (Some(cert_file), Some(key_file)) = (&tls.cert_file, &tls.key_file) else {
        return Err(Diagnostic::whole_file(
            path,
            "tls_server_config needs both cert_file and key_file",
        ));
    };
    let cert_path = resolve(base, &cert_file.value);
    let certs: Vec<CertificateDer<'static>> = pem_file(&cert_path)
        .and_then(|pem| {
            CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())
        })
        .map_err(|e| {
            Diagnostic::at(
                path,
                cert_file.referenced,
                format!("cannot read certificates from {}: {e}", cert_path.display()),
            )
        })?;
    if certs.is_empty() {
        return Err(Diagnostic::at(
            path,
            cert_file.referenced,
            format!("no PEM certificate in {}", cert_path.display()),
        ));
    }
    let key_path = resolve(base, &key_file.value);
    let key = pem_file(&key_path)
        .and_then(|pem| PrivateKeyDer::from_pem_slice(&pem).map_err(|e| e.to_string()))
        .map_err(|e| {
            Diagnostic::at(
                path,
                key_file.referenced,
                format!("cannot read a private key from {}: {e}", key_path.display()),
            )
        })?;

    let mut versions: Vec<&'static rustls::SupportedProtocolVersion> =
        vec![&rustls::version::TLS12, &rustls::version::TLS13];
    if let Some(v) = &tls.min_version {
        if std::ptr::eq(version(path, v)?, &rustls::version::TLS13) {
            versions.retain(|x| std::ptr::eq(*x, &rustls::version::TLS13));
        }
    }
    if let Some(v) = &tls.max_version {
        if std::ptr::eq(version(path, v)?, &rustls::version::TLS12) {
            versions.retain(|x| std::ptr::eq(*x, &rustls::version::TLS12));
        }
    }
    if versions.is_empty() {
        return Err(Diagnostic::whole_file(
            path,
            "tls_server_config: min_version is above max_version",
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| Diagnostic::whole_file(path, format!("TLS settings: {e}")))?;

    let auth_type = tls
        .client_auth_type
        .as_ref()
        .map(|s| s.value.as_str())
        .unwrap_or("NoClientCert");
    // Errors about client auth point at client_auth_type, or at the whole file when it is absent.
    let auth_err = |msg: String| match &tls.client_auth_type {
        Some(s) => Diagnostic::at(path, s.referenced, msg),
        None => Diagnostic::whole_file(path, format!("tls_server_config: {msg}")),
    };
    let verify = match auth_type {
        "NoClientCert" => None,
        "VerifyClientCertIfGiven" => Some(true),
        "RequireAndVerifyClientCert" => Some(false),
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(auth_err(format!("client_auth_type {auth_type} accepts certificates nobody verified; use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file")))
        }
        other => {
            return Err(auth_err(format!("unknown client_auth_type `{other}`, expected NoClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert")))
        }
    };
    let builder = match verify {
        None => {
            if tls.client_ca_file.is_some() {
                return Err(auth_err(
                    "client_ca_file is given but client_auth_type is NoClientCert: set client_auth_type: RequireAndVerifyClientCert".into(),
                ));
            }
            builder.with_no_client_auth()
        }
        Some(optional) => {
            let Some(ca_file) = &tls.client_ca_file else {
                return Err(auth_err(format!(
                    "client_auth_type {auth_type} needs client_ca_file"
                )));
            };
            let ca_path = resolve(base, &ca_file.value);
            let mut roots = rustls::RootCertStore::empty();
            let cas = pem_file(&ca_path)
                .and_then(|pem| {
                    CertificateDer::pem_slice_iter(&pem)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| e.to_string())
                })
                .map_err(|e| {
                    Diagnostic::at(
                        path,
                        ca_file.referenced,
                        format!(
                            "cannot read CA certificates from {}: {e}",
                            ca_path.display()
                        ),
                    )
                })?;
            let (added, _) = roots.add_parsable_certificates(cas);
            if added == 0 {
                return Err(Diagnostic::at(
                    path,
                    ca_file.referenced,
                    format!("no usable CA certificate in {}", ca_path.display()),
                ));
            }
            let mut v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            );
            if optional {
                v = v.allow_unauthenticated();
            }
            let v = v
                .build()
                .map_err(|e| Diagnostic::at(path, ca_file.referenced, format!("{e}")))?;
            builder.with_client_cert_verifier(v)
        }
    };
    let mut cfg = builder.with_single_cert(certs, key).map_err(|e| {
        Diagnostic::at(
            path,
            key_file.referenced,
            format!("certificate and key do not fit: {e}"),
        )
    })?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn load(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, text).unwrap();
        WebConfig::load(&p)
            .unwrap_err()
            .to_string()
            .replace(&p.display().to_string(), "web.yml")
    }

    #[test]
    fn errors_name_line_and_column() {
        let bad_hash = load("basic_auth_users:\n  a: $2y$10$x\n");
        assert!(
            bad_hash.starts_with("web.yml:2:6: the password of `a` must be a bcrypt hash"),
            "{bad_hash}"
        );
        assert!(load("tls_server_confg: {}\n")
            .starts_with("web.yml:1:1: unknown field `tls_server_confg`"));
        assert!(
            load("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_verison: TLS12\n")
                .starts_with("web.yml:4:3: unknown field `min_verison`")
        );
        assert!(
            load("http_server_config:\n  headers:\n    Content-Type: x\n")
                .starts_with("web.yml:3:19: `Content-Type` cannot be set")
        );
        assert!(
            load("tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n")
                .starts_with("web.yml:2:14: cannot read certificates from")
        );
        // An endless device is refused at the limit instead of growing
        // until the process aborts.
        let zero = load("tls_server_config:\n  cert_file: /dev/zero\n  key_file: /dev/zero\n");
        assert!(
            zero.starts_with(
                "web.yml:2:14: cannot read certificates from /dev/zero: file is larger than 64 MiB"
            ),
            "{zero}"
        );
    }

    /// The YAML-level mistakes, each with its exact message.
    #[test]
    #[rustfmt::skip]
    fn bad_yaml_gives_exact_messages() {
        let cases = [
            ("basic_auth_users: {}\nbasic_auth_users: {}\n", "web.yml:2:1: key `basic_auth_users` appears twice in the same mapping: keep one (YAML does not merge repeated keys)"),
            ("basic_auth_users: {}\n---\nbasic_auth_users: {}\n", "web.yml:3:1: the file holds several YAML documents (separated by `---`); a configuration file is one document: remove the extra `---` or split the file"),
            ("tls_server_config:\n\tcert_file: a\n", "web.yml:2:2: a tab character here: YAML indents with spaces only; replace the tab with spaces"),
            ("basic_auth_users: [a]\n", "web.yml:1:19: expected a mapping here: `key: value` lines, or `{key: value}`"),
            ("basic_auth_users: {a: \x00}\n", "web.yml:1:23: a NUL byte here: configuration files are text; is this the right file?"),
        ];
        for (text, want) in cases {
            assert_eq!(load(text), want);
        }
    }

    #[test]
    fn empty_file_means_plain_http() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("web.yml");
        std::fs::write(&p, "").unwrap();
        let c = WebConfig::load(&p).unwrap();
        assert!(c.tls.is_none() && c.basic_auth_users.is_empty());
    }
}
