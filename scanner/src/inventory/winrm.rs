//! A WinRM host's settings: the credential source, the Kerberos service
//! principal (SPN template) and KDC, checked once at load so a sweep never
//! meets a half-configured Windows host.
//!
//! They come from a `winrm:` map (`port`, `scheme`, `auth`, `ca_file`,
//! `password_env`, `password_file`, `keytab`, `spn`, `kdc`), merged key by key
//! with the usual precedence. The SSH `port:` does not apply: `defaults: {port:
//! 22}` must not send WinRM to port 22.

use std::path::Path;

use serde_saphyr::Spanned;

use super::expand_home;
use super::raw::RawWinrm;
use crate::diag::Diagnostic;
use crate::transport::winrm::{PasswordSource, Scheme, WinrmAuth, WinrmTarget};

/// Resolves and checks the WinRM settings of one host. Errors point at the
/// host's `winrm:` map, or at the host name when it has none.
/// Resolves and checks the WinRM settings of one host. Errors point at the
/// host's `winrm:` map, or at the host name when it has none.
pub(super) fn winrm_target(
    file: &Path,
    name: &str,
    address: &str,
    user: &str,
    raw: Option<&Spanned<RawWinrm>>,
    host_location: serde_saphyr::Location,
) -> Result<WinrmTarget, Diagnostic> {
    let location = raw.map(|r| r.referenced).unwrap_or(host_location);
    let fail = |m: String| Diagnostic::at(file, location, format!("host `{name}`: {m}"));
    let raw = raw.map(|r| r.value.clone()).unwrap_or_default();
    let scheme = raw.scheme.unwrap_or(Scheme::Http);
    let auth = auth_of(&raw, scheme).map_err(fail)?;
    let password = credential_source(&raw).map_err(fail)?;
    let spn = match &raw.spn {
        None => None,
        Some(template) => {
            Some(expand_spn(template, name, address).map_err(|m| fail(format!("winrm.spn: {m}")))?)
        }
    };
    let kdc = match &raw.kdc {
        None => None,
        Some(k) => Some(kdc_url(k).map_err(|m| fail(format!("winrm.kdc: {m}")))?),
    };
    Ok(WinrmTarget {
        address: address.into(),
        port: raw.port.unwrap_or_else(|| scheme.default_port()),
        scheme,
        auth,
        user: user.to_string(),
        password,
        ca_file: raw.ca_file.as_deref().map(expand_home),
        spn,
        kdc,
    })
}

/// The authentication: a keytab implies Kerberos; Basic only over HTTPS.
fn auth_of(raw: &RawWinrm, scheme: Scheme) -> Result<WinrmAuth, String> {
    let auth = match (raw.auth, &raw.keytab) {
        (None, Some(_)) => WinrmAuth::Kerberos,
        (Some(a), Some(_)) if a != WinrmAuth::Kerberos => {
            return Err(format!(
                "winrm.keytab holds a Kerberos key, which only auth `kerberos` uses (not `{}`): \
                 set auth: kerberos, or give a password instead",
                a.as_str()
            ))
        }
        (a, _) => a.unwrap_or(WinrmAuth::Negotiate),
    };
    if auth == WinrmAuth::Basic && scheme == Scheme::Http {
        return Err(
            "winrm auth `basic` over scheme `http` would send the password in clear: \
                    use `scheme: https`, or `auth: negotiate`, `ntlm` or `kerberos`"
                .into(),
        );
    }
    Ok(auth)
}

/// Where the secret is: exactly one of an environment variable, a file and a
/// keytab (passwords never go in the inventory).
fn credential_source(raw: &RawWinrm) -> Result<PasswordSource, String> {
    match (&raw.password_env, &raw.password_file, &raw.keytab) {
        (Some(e), None, None) => Ok(PasswordSource::Env(e.clone())),
        (None, Some(f), None) => Ok(PasswordSource::File(expand_home(f))),
        (None, None, Some(k)) => Ok(PasswordSource::Keytab(expand_home(k))),
        (None, None, None) => Err("transport winrm needs winrm.password_env, \
                                   winrm.password_file or winrm.keytab (passwords never go in the \
                                   inventory)"
            .into()),
        _ => Err(
            "give one of winrm.password_env, winrm.password_file and winrm.keytab, \
                  not several"
                .into(),
        ),
    }
}

/// `HTTP/{name}.corp.example` for host `win-01` is `HTTP/win-01.corp.example`.
pub(super) fn expand_spn(template: &str, name: &str, address: &str) -> Result<String, String> {
    let spn = template
        .replace("{name}", name)
        .replace("{address}", address);
    if let Some(open) = spn.find('{') {
        let rest = &spn[open..];
        let end = rest.find('}').map(|i| i + 1).unwrap_or(rest.len());
        return Err(format!(
            "unknown placeholder `{}` in `{template}` (known: {{name}}, {{address}})",
            &rest[..end]
        ));
    }
    let valid = match spn.split_once('/') {
        Some((service, host)) => {
            !service.is_empty()
                && !host.is_empty()
                && !spn.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !valid {
        return Err(format!(
            "`{spn}` is not a service principal name; write it as SERVICE/HOST, e.g. \
             `HTTP/win-01.corp.example.com`"
        ));
    }
    Ok(spn)
}

/// The KDC as `tcp://host:port` (port 88 when not given). Only TCP is spoken:
/// Active Directory's tickets with a PAC rarely fit a UDP datagram anyway.
pub(super) fn kdc_url(kdc: &str) -> Result<String, String> {
    let rest = match kdc.split_once("://") {
        Some(("tcp", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "`{kdc}`: only tcp:// KDCs are supported, not {scheme}:// (write `tcp://HOST:88`)"
            ))
        }
        None => kdc,
    };
    let rest = rest.trim_end_matches('/');
    // `[v6]:port`, `[v6]`, `host:port` or `host`.
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, "")) => (format!("[{h}]"), None),
            Some((h, p)) if p.starts_with(':') => (format!("[{h}]"), Some(&p[1..])),
            _ => return Err(format!("`{kdc}`: unbalanced [ ] around an IPv6 address")),
        }
    } else {
        match rest.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err(format!(
                    "`{kdc}`: put an IPv6 address in brackets, e.g. `[fd00::5]:88`"
                ))
            }
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (rest.to_string(), None),
        }
    };
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '@' | '?' | '#'))
    {
        return Err(format!("`{kdc}` is not a host name or address"));
    }
    let port = match port {
        None => 88,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(format!("`{kdc}`: `{p}` is not a port number")),
        },
    };
    Ok(format!("tcp://{host}:{port}"))
}
