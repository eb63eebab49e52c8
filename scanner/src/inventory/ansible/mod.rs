//! Ansible inventories (INI, YAML, and the JSON of `ansible-inventory --list`
//! or an inventory script), accepted as they are so teams can point
//! fleetsweep at the inventory they already keep.
//!
//! Mapping: `ansible_host` → address, `ansible_port` → port, `ansible_user` →
//! user, `ansible_ssh_private_key_file` → identity file, `ansible_connection:
//! local` → transport local, `ansible_ssh_common_args`/`ansible_ssh_extra_args`
//! with `-J x` or `-o ProxyJump=x` → jump; `ansible_connection: winrm|psrp` →
//! transport winrm (see [`winrm`]), and `ansible_shell_type: powershell|cmd` →
//! os windows. Other variables that are plain values become labels (e.g.
//! `site=fra1`); `ansible_*` variables that mean nothing here are ignored.
//! Group membership is kept, so `--limit GROUP` works.
//!
//! The hosts become the native raw form ([`RawInventory`]), so both dialects
//! resolve through the same code.

mod parse;
mod winrm;

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::Spanned;

use super::raw::{OneOrMany, RawGroup, RawHost, RawInventory, RawVars, TransportKind};
use crate::diag::Diagnostic;
use crate::os::OsFamily;
use parse::{detect, parse_ini, parse_yaml, AnsibleHost, Dialect};

/// Reads `text` as native raw hosts when it is an Ansible inventory (YAML or
/// INI); None when it is fleetsweep's own format.
pub(super) fn read(file: &Path, text: &str) -> Result<Option<RawInventory>, Diagnostic> {
    let hosts = match detect(text) {
        Dialect::Native => return Ok(None),
        Dialect::AnsibleYaml => parse_yaml(file, text)?,
        Dialect::AnsibleIni => parse_ini(file, text)?,
    };
    if hosts.is_empty() {
        return Err(Diagnostic::whole_file(
            file,
            "this Ansible inventory lists no hosts (groups need `hosts:`; `ansible-inventory --list` output needs its `_meta` and group `hosts` lists)",
        ));
    }
    let mut raw_hosts = Vec::new();
    let mut groups: BTreeMap<String, RawGroup> = BTreeMap::new();
    for h in hosts {
        for g in &h.groups {
            groups
                .entry(g.clone())
                .or_default()
                .hosts
                .push(unlocated(h.name.clone()).into());
        }
        raw_hosts.push(raw_host(file, &h)?);
    }
    Ok(Some(RawInventory {
        defaults: RawVars::default(),
        groups,
        hosts: raw_hosts,
    }))
}

/// A value from an Ansible file: variables carry no position of their own.
fn unlocated<T>(v: T) -> Spanned<T> {
    let unknown = serde_saphyr::Location::UNKNOWN;
    Spanned::new(v, unknown, unknown)
}

/// One flattened Ansible host as a native host entry.
fn raw_host(file: &Path, h: &AnsibleHost) -> Result<RawHost, Diagnostic> {
    let get = |k: &str| h.vars.get(k).cloned();
    let port = match get("ansible_port").or_else(|| get("ansible_ssh_port")) {
        Some(p) => Some(p.parse::<u16>().map_err(|_| {
            Diagnostic::whole_file(
                file,
                format!(
                    "host `{}`: ansible_port `{p}` is not a port number: write a whole number from 0 to 65535",
                    h.name
                ),
            )
        })?),
        None => None,
    };
    let jump = get("ansible_ssh_common_args")
        .and_then(|a| jump_from_args(&a))
        .or_else(|| get("ansible_ssh_extra_args").and_then(|a| jump_from_args(&a)));
    let labels = h
        .vars
        .iter()
        .filter(|(k, _)| !k.starts_with("ansible_") && !k.starts_with("fleetsweep_"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (transport, winrm, port) = match get("ansible_connection").as_deref() {
        Some("local") => (Some(TransportKind::Local), None, port),
        Some("winrm" | "psrp") => (
            Some(TransportKind::Winrm),
            Some(Box::new(unlocated(winrm::raw_winrm(file, h, port)?))),
            None,
        ),
        _ => (None, None, port),
    };
    // Windows over OpenSSH: Ansible says so with the shell type.
    let os = matches!(
        get("ansible_shell_type").as_deref(),
        Some("powershell" | "cmd")
    )
    .then_some(OsFamily::Windows);
    Ok(RawHost::with_vars(
        unlocated(h.name.clone()).into(),
        get("ansible_host")
            .or_else(|| get("ansible_ssh_host"))
            .map(Into::into),
        labels,
        RawVars {
            user: get("ansible_user").or_else(|| get("ansible_ssh_user")),
            port,
            identity_file: get("ansible_ssh_private_key_file").map(OneOrMany::One),
            jump: jump.map(unlocated),
            transport,
            os,
            winrm,
            ..RawVars::default()
        },
    ))
}

/// The ProxyJump named in `ansible_ssh_common_args` / `ansible_ssh_extra_args`.
fn jump_from_args(args: &str) -> Option<String> {
    let words: Vec<&str> = args.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim_matches(|c| c == '"' || c == '\'');
        if w == "-J" {
            return words
                .get(i + 1)
                .map(|s| s.trim_matches(|c| c == '"' || c == '\'').to_string());
        }
        if let Some(v) = w.strip_prefix("-J") {
            return Some(v.to_string());
        }
        if let Some(v) = w
            .strip_prefix("ProxyJump=")
            .or_else(|| w.strip_prefix("-oProxyJump="))
        {
            return Some(v.to_string());
        }
    }
    None
}
