//! An Ansible WinRM host's variables as a native `winrm:` map.

use std::path::Path;

use super::AnsibleHost;
use crate::diag::Diagnostic;
use crate::inventory::raw::RawWinrm;
use crate::transport::winrm::{Scheme, WinrmAuth};

/// An Ansible WinRM host's variables as a `winrm:` map, the way Ansible reads
/// them: `ansible_port`, `ansible_winrm_scheme` (default https unless the port
/// is 5985), `ansible_winrm_transport`, `ansible_winrm_ca_trust_path`,
/// `ansible_winrm_kerberos_hostname_override`. Passwords are never read from
/// the inventory: `fleetsweep_winrm_password_env` / `_file` name where it is.
pub(super) fn raw_winrm(
    file: &Path,
    h: &AnsibleHost,
    port: Option<u16>,
) -> Result<RawWinrm, Diagnostic> {
    let get = |k: &str| h.vars.get(k).cloned();
    let fail = |m: String| Diagnostic::whole_file(file, format!("host `{}`: {m}", h.name));
    if get("ansible_winrm_server_cert_validation").as_deref() == Some("ignore") {
        tracing::warn!(
            host = %h.name,
            "{}: ansible_winrm_server_cert_validation=ignore is not honoured: fleetsweep always \
             verifies WinRM certificates (it sends credentials); give the issuing CA with \
             ansible_winrm_ca_trust_path, or use ansible_winrm_scheme=http (sealed by NTLM/Kerberos)",
            file.display()
        );
    }
    let scheme = match get("ansible_winrm_scheme").as_deref() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        Some(other) => {
            return Err(fail(format!(
                "ansible_winrm_scheme `{other}` is neither http nor https"
            )))
        }
        None if port == Some(5985) => Scheme::Http,
        None => Scheme::Https,
    };
    let auth = match get("ansible_winrm_transport") {
        None => None,
        Some(list) => {
            let names: Vec<String> = list
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|t| {
                    t.trim()
                        .trim_matches(|c| c == '\'' || c == '"')
                        .to_ascii_lowercase()
                })
                .filter(|t| !t.is_empty())
                .collect();
            let has = |n: &str| names.iter().any(|t| t == n);
            Some(if has("kerberos") && has("ntlm") {
                WinrmAuth::Negotiate
            } else if has("kerberos") {
                WinrmAuth::Kerberos
            } else if has("ntlm") {
                WinrmAuth::Ntlm
            } else if has("basic") || has("plaintext") {
                WinrmAuth::Basic
            } else {
                return Err(fail(format!(
                    "ansible_winrm_transport `{list}`: fleetsweep speaks basic (https only), ntlm \
                     and kerberos, not credssp or certificate; set it to ntlm or kerberos for \
                     this host"
                )));
            })
        }
    };
    let (password_env, password_file, keytab) = (
        get("fleetsweep_winrm_password_env"),
        get("fleetsweep_winrm_password_file"),
        get("fleetsweep_winrm_keytab"),
    );
    if password_env.is_none() && password_file.is_none() && keytab.is_none() {
        let held = ["ansible_password", "ansible_winrm_password", "ansible_pass"]
            .into_iter()
            .find(|k| h.vars.contains_key(*k));
        return Err(fail(match held {
            Some(k) => format!(
                "{k} is not used: fleetsweep never reads passwords from an inventory. Put the \
                 password in an environment variable or a file and name it with \
                 fleetsweep_winrm_password_env=VAR or fleetsweep_winrm_password_file=PATH"
            ),
            None => "ansible_connection winrm needs fleetsweep_winrm_password_env=VAR or \
                     fleetsweep_winrm_password_file=PATH (the variable or file holding the password)"
                .to_string(),
        }));
    }
    Ok(RawWinrm {
        port,
        scheme: Some(scheme),
        auth,
        ca_file: get("ansible_winrm_ca_trust_path"),
        password_env,
        password_file,
        keytab,
        spn: get("ansible_winrm_kerberos_hostname_override").map(|h| format!("HTTP/{h}")),
        kdc: get("fleetsweep_winrm_kdc"),
    })
}
