//! The fleet inventory: which hosts to sweep and how to reach each one.
//!
//! The file format is docs/inventory.md: `defaults:`, `groups:` (name → hosts, vars,
//! labels) and `hosts:`; Ansible inventories are read too. Loading resolves
//! every host completely, so the sweep engine never looks at defaults again,
//! and each host's [`Target`] carries the settings of its transport only.
//!
//! Secrets never sit in the inventory: keys come from files or the agent, key
//! passphrases from `passphrase_env:` / `passphrase_file:`, WinRM passwords
//! from `winrm.password_env` / `password_file` / `keytab`.
//!
//! Layout: [`raw`] is the file as written; [`resolve`] applies precedence
//! (host → groups → `~/.ssh/config` → defaults) and [`jumps`] the bastions;
//! [`winrm`] checks a WinRM host's credential source, SPN and KDC; [`ansible`]
//! reads Ansible inventories into the raw form; [`limit`] selects hosts.

mod ansible;
mod jumps;
pub mod limit;
mod raw;
mod resolve;
mod table;
mod winrm;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::diag::{self, Diagnostic};
use crate::os::OsFamily;
use crate::transport::ssh_config;
use crate::transport::winrm::WinrmTarget;
use crate::transport::{Passphrase, SshTarget, StartupLimits};
pub use raw::parse_duration;
pub use table::HostTable;

/// A host with every setting resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// Inventory name: the stable identity in reports and state.
    pub name: std::sync::Arc<str>,
    /// Operating-system hint; detected when absent.
    pub os: Option<OsFamily>,
    pub labels: fleetsweep_exporters::Labels,
    /// In group-name order; hosts in the same groups share one list.
    pub groups: std::sync::Arc<[String]>,
    /// Whole-host deadline (connect, probe, parse), if the inventory sets one.
    pub host_timeout: Option<Duration>,
    /// How the host is reached, with the settings of that way only.
    pub target: Target,
}

/// How a host is reached.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Ssh(SshHost),
    Winrm(WinrmHost),
    /// This machine, without a connection (`transport: local`, `scan --local`).
    Local(LocalHost),
    /// Not reached at all: read from an offline bundle (`scan --offline`).
    Offline(OfflineHost),
}

/// An SSH host's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SshHost {
    /// The host and its bastions.
    pub ssh: SshTarget,
    pub connect_timeout: Option<Duration>,
    /// The settings a fleet's hosts mostly have alike, one copy shared by
    /// every host with the same ones (96 bytes a host fewer at 100,000).
    pub options: std::sync::Arc<SshOptions>,
}

/// An SSH host's settings that hosts share ([`SshHost::options`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SshOptions {
    pub passphrase: Passphrase,
    /// Run the probe script through `sudo -n` (never prompts; fails cleanly
    /// when sudo would ask for a password).
    pub sudo: bool,
    /// Caps on connections in start-up to this host and through its bastions.
    pub limits: StartupLimits,
}

/// A WinRM host's settings: endpoint, authentication and password source.
#[derive(Debug, Clone, PartialEq)]
pub struct WinrmHost {
    /// Boxed: an SSH fleet's hosts would otherwise each have room for it.
    pub winrm: Box<WinrmTarget>,
    pub connect_timeout: Option<Duration>,
}

/// This machine.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalHost {
    /// Shown in reports: `localhost`, or the inventory's address for the host.
    pub address: std::sync::Arc<str>,
    /// Run the probe script through `sudo -n`.
    pub sudo: bool,
}

/// A host read from its offline bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct OfflineHost {
    /// The bundle directory.
    pub dir: PathBuf,
    /// Shown in reports: the bundle's `address:`, else `offline`.
    pub address: std::sync::Arc<str>,
}

impl Host {
    /// `address` as shown in reports.
    pub fn address(&self) -> &str {
        self.shared_address()
    }

    /// The address's one string, which the host's report shares (a clone is
    /// a reference count, not a copy).
    pub fn shared_address(&self) -> &std::sync::Arc<str> {
        match &self.target {
            Target::Ssh(s) => &s.ssh.endpoint.address,
            Target::Winrm(w) => &w.winrm.address,
            Target::Local(l) => &l.address,
            Target::Offline(o) => &o.address,
        }
    }
}

impl Target {
    /// The transport's name in listings: the inventory's spelling, or `offline`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Ssh(_) => "ssh",
            Target::Winrm(_) => "winrm",
            Target::Local(_) => "local",
            Target::Offline(_) => "offline",
        }
    }

    /// The host's own connect timeout (SSH, WinRM), if it sets one.
    pub fn connect_timeout(&self) -> Option<Duration> {
        match self {
            Target::Ssh(s) => s.connect_timeout,
            Target::Winrm(w) => w.connect_timeout,
            Target::Local(_) | Target::Offline(_) => None,
        }
    }

    /// The connect timeout of a target that connects (SSH, WinRM), for the
    /// command line and `/probe` deadlines to override.
    pub fn connect_timeout_mut(&mut self) -> Option<&mut Option<Duration>> {
        match self {
            Target::Ssh(s) => Some(&mut s.connect_timeout),
            Target::Winrm(w) => Some(&mut w.connect_timeout),
            Target::Local(_) | Target::Offline(_) => None,
        }
    }
}

/// The loaded inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub hosts: Vec<Host>,
    /// known_hosts files named anywhere in the inventory (defaults or hosts).
    pub known_hosts_files: Vec<PathBuf>,
}

/// Options that come from the command line rather than the file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `~/.ssh/config` (or `--ssh-config FILE`); None disables it.
    pub ssh_config: Option<PathBuf>,
}

/// Expands a leading `~/` to the home directory, and a leading
/// `${CREDENTIALS_DIRECTORY}/` (or `$CREDENTIALS_DIRECTORY/`) to the directory
/// where systemd's `LoadCredential=` puts a unit's secrets, so an inventory can
/// name `identity_file: ${CREDENTIALS_DIRECTORY}/fleetsweep_id_ed25519` (docs/deploy.md).
/// Unset, the path stays as written and the error that it does not exist names it.
pub fn expand_home(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = dirs::home_dir() {
            return home.join(rest);
        }
    }
    let credentials = ["${CREDENTIALS_DIRECTORY}/", "$CREDENTIALS_DIRECTORY/"];
    if let Some(rest) = credentials.iter().find_map(|c| p.strip_prefix(c)) {
        if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY").filter(|d| !d.is_empty()) {
            return PathBuf::from(dir).join(rest);
        }
    }
    PathBuf::from(p)
}

impl Inventory {
    /// Loads and resolves an inventory file. Every error names file, line and column.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Inventory, Diagnostic> {
        let text = diag::read_file(path)?;
        if diag::is_blank_yaml(&text) {
            return Err(Diagnostic::whole_file(
                path,
                "the inventory is empty: list hosts under `hosts:` (see `fleetsweep scan --help`)",
            ));
        }
        let raw = match ansible::read(path, &text)? {
            Some(raw) => raw,
            None => {
                let _sharing = raw::SharingLabels::start();
                diag::parse_yaml(path, &text)?
            }
        };
        // The hosts are parsed: the file's text (7.7 MB for 100,000 hosts)
        // goes before they are resolved, not at the end of loading.
        drop(text);
        let ssh_config =
            match &opts.ssh_config {
                Some(p) if p.exists() => Some(ssh_config::load(p).map_err(|e| {
                    Diagnostic::whole_file(p, format!("cannot read ssh config: {e}"))
                })?),
                _ => None,
            };
        resolve::resolve(path, raw, ssh_config.as_ref())
    }

    /// An inventory of one host: this machine, without SSH (`scan --local`).
    pub fn local() -> Inventory {
        Inventory {
            hosts: vec![Host {
                name: hostname().unwrap_or_else(|| "localhost".to_string()).into(),
                os: None,
                labels: Default::default(),
                groups: Vec::new().into(),
                host_timeout: None,
                target: Target::Local(LocalHost {
                    address: "localhost".into(),
                    sudo: false,
                }),
            }],
            known_hosts_files: Vec::new(),
        }
    }
}

fn hostname() -> Option<String> {
    let s = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests;
