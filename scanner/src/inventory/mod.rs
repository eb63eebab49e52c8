//! The fleet inventory: which hosts to sweep and how to reach each one.
//!
//! The file format is SPEC §3: `defaults:`, `groups:` (name → hosts, vars,
//! labels) and `hosts:`. Loading resolves every host completely, so the sweep
//! engine never looks at defaults again. Precedence, most specific first:
//! host entry → its groups (in file order) → `~/.ssh/config` for that host →
//! `defaults:` → built-in defaults (port 22, the current user, the usual key files).
//!
//! Secrets never sit in the inventory: keys come from files or the agent, and
//! key passphrases from `passphrase_env:` / `passphrase_file:`.
//!
//! WinRM hosts (`transport: winrm`) take their settings from a `winrm:` map
//! (`port`, `scheme`, `auth`, `ca_file`, `password_env`, `password_file`), merged
//! key by key with the same precedence. The SSH `port:` does not apply to them:
//! `defaults: {port: 22}` must not send WinRM to port 22.

pub mod ansible;
pub mod limit;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::diag::{self, Diagnostic};
use crate::transport::ssh_config::{self, SshConfig};
use crate::transport::winrm::{PasswordSource, Scheme, WinrmAuth, WinrmTarget};
use crate::transport::{Passphrase, SshEndpoint, SshTarget};

/// How a host is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    Ssh,
    Winrm,
    Local,
}

impl TransportKind {
    /// The inventory's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Ssh => "ssh",
            TransportKind::Winrm => "winrm",
            TransportKind::Local => "local",
        }
    }
}

/// A host with every setting resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// Inventory name: the stable identity in reports and state.
    pub name: String,
    pub transport: TransportKind,
    /// Operating-system hint (`linux`, `windows`, `macos`); detected when absent.
    pub os: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub groups: Vec<String>,
    /// For SSH: the target and bastions. For `local`: address `localhost`.
    pub ssh: SshTarget,
    /// known_hosts file named for this host (inventory `known_hosts:`), if any.
    pub known_hosts: Option<PathBuf>,
    pub passphrase: Passphrase,
    pub connect_timeout: Option<Duration>,
    pub host_timeout: Option<Duration>,
    /// Run the probe script through `sudo -n` (never prompts; fails cleanly
    /// when sudo would ask for a password).
    pub sudo: bool,
    /// For `transport: winrm`: endpoint, authentication and password source.
    pub winrm: Option<WinrmTarget>,
}

impl Host {
    /// `address` as shown in reports.
    pub fn address(&self) -> &str {
        &self.ssh.endpoint.address
    }
}

/// The loaded inventory.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub hosts: Vec<Host>,
    /// known_hosts files named anywhere in the inventory (defaults or hosts).
    pub known_hosts_files: Vec<PathBuf>,
}

/// Settings that may appear in `defaults:`, in a group's `vars:` and on a host.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVars {
    user: Option<String>,
    port: Option<u16>,
    /// One key file or a list of them.
    identity_file: Option<OneOrMany>,
    known_hosts: Option<String>,
    /// ProxyJump spec: `user@bastion:port[,next...]`, or an inventory host name.
    jump: Option<Spanned<String>>,
    transport: Option<TransportKind>,
    os: Option<OsHint>,
    connect_timeout: Option<Spanned<DurationText>>,
    host_timeout: Option<Spanned<DurationText>>,
    sudo: Option<bool>,
    passphrase_env: Option<String>,
    passphrase_file: Option<String>,
    winrm: Option<Spanned<RawWinrm>>,
}

/// The `winrm:` map. There is deliberately no `insecure_skip_verify`: a scanner
/// that sends domain credentials must know whom it sends them to; a private CA
/// goes in `ca_file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWinrm {
    /// Default: 5985 for http, 5986 for https.
    port: Option<u16>,
    /// Default: `http` (messages sealed by NTLM/Kerberos).
    scheme: Option<Scheme>,
    /// Default: `negotiate`.
    auth: Option<WinrmAuth>,
    ca_file: Option<String>,
    password_env: Option<String>,
    password_file: Option<String>,
    /// A keytab with the account's Kerberos key instead of a password (implies
    /// `auth: kerberos`).
    keytab: Option<String>,
    /// Kerberos service principal; `{name}` and `{address}` are replaced by the
    /// host's. Default: `HTTP/{address}`.
    spn: Option<String>,
    /// Kerberos KDC for the user's realm: `host`, `host:port` or `tcp://host:port`.
    kdc: Option<String>,
}

impl RawWinrm {
    fn or(mut self, other: &RawWinrm) -> RawWinrm {
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = other.$f.clone(); } )* };
        }
        fill!(port, scheme, auth, ca_file, spn, kdc);
        // The credential source is one setting: a host's `password_file` (or
        // `keytab`) replaces a default `password_env` rather than conflicting.
        if self.password_env.is_none() && self.password_file.is_none() && self.keytab.is_none() {
            self.password_env = other.password_env.clone();
            self.password_file = other.password_file.clone();
            self.keytab = other.keytab.clone();
        }
        self
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OsHint {
    Linux,
    Windows,
    Macos,
}

/// `5s`, `2m`, `1h 30m`, or a bare number of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DurationText {
    Seconds(u64),
    Text(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    #[serde(default)]
    defaults: RawVars,
    #[serde(default)]
    groups: BTreeMap<String, RawGroup>,
    #[serde(default)]
    hosts: Vec<RawHost>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    /// Host names; a name not defined under `hosts:` becomes a host of its own.
    #[serde(default)]
    hosts: Vec<Spanned<String>>,
    #[serde(default)]
    vars: RawVars,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// A host entry: `name`, `address`, `labels` plus every key of [`RawVars`]. The
/// fields are repeated rather than `#[serde(flatten)]`ed because serde cannot
/// combine `flatten` with `deny_unknown_fields`, and unknown keys must be errors.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    address: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<OneOrMany>,
    known_hosts: Option<String>,
    jump: Option<Spanned<String>>,
    transport: Option<TransportKind>,
    os: Option<OsHint>,
    connect_timeout: Option<Spanned<DurationText>>,
    host_timeout: Option<Spanned<DurationText>>,
    sudo: Option<bool>,
    passphrase_env: Option<String>,
    passphrase_file: Option<String>,
    winrm: Option<Spanned<RawWinrm>>,
}

impl RawHost {
    fn vars(&self) -> RawVars {
        RawVars {
            user: self.user.clone(),
            port: self.port,
            identity_file: self.identity_file.clone(),
            known_hosts: self.known_hosts.clone(),
            jump: self.jump.clone(),
            transport: self.transport,
            os: self.os,
            connect_timeout: self.connect_timeout.clone(),
            host_timeout: self.host_timeout.clone(),
            sudo: self.sudo,
            passphrase_env: self.passphrase_env.clone(),
            passphrase_file: self.passphrase_file.clone(),
            winrm: self.winrm.clone(),
        }
    }
}

impl RawVars {
    /// Fills every unset field of `self` from `other` (self wins).
    fn or(mut self, other: &RawVars) -> RawVars {
        macro_rules! fill {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = other.$f.clone(); } )* };
        }
        fill!(
            user,
            port,
            identity_file,
            known_hosts,
            jump,
            transport,
            os,
            connect_timeout,
            host_timeout,
            sudo,
            passphrase_env,
            passphrase_file
        );
        // `winrm:` merges key by key; the most specific map's position is kept
        // for error messages.
        self.winrm = match (self.winrm.take(), &other.winrm) {
            (Some(mine), Some(theirs)) => Some(Spanned {
                value: mine.value.or(&theirs.value),
                referenced: mine.referenced,
                defined: mine.defined,
            }),
            (mine, theirs) => mine.or_else(|| theirs.clone()),
        };
        self
    }
}

/// Options that come from the command line rather than the file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `~/.ssh/config` (or `--ssh-config FILE`); None disables it.
    pub ssh_config: Option<PathBuf>,
}

/// Parses a duration like `5s`, `1m30s`, `2h`, `500ms`, `7d` (days of 24
/// hours), or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let invalid =
        || format!("invalid duration `{t}`: write it like `30s`, `5m`, `1h30m` or `500ms`");
    // SignedDuration has no days (they are not always 24 hours); a Span
    // taken with 24-hour days does.
    let d: jiff::SignedDuration = match t.parse() {
        Ok(d) => d,
        Err(_) => t
            .parse::<jiff::Span>()
            .and_then(|s| s.to_duration(jiff::SpanRelativeTo::days_are_24_hours()))
            .map_err(|_| invalid())?,
    };
    if d.is_negative() {
        return Err(format!("invalid duration `{t}`: must not be negative"));
    }
    Duration::try_from(d).map_err(|e| format!("invalid duration `{t}`: {e}"))
}

fn duration_of(
    file: &Path,
    v: &Option<Spanned<DurationText>>,
) -> Result<Option<Duration>, Diagnostic> {
    match v {
        None => Ok(None),
        Some(s) => match &s.value {
            DurationText::Seconds(n) => Ok(Some(Duration::from_secs(*n))),
            DurationText::Text(t) => parse_duration(t)
                .map(Some)
                .map_err(|m| Diagnostic::at(file, s.referenced, m)),
        },
    }
}

/// Expands a leading `~/` to the home directory.
pub fn expand_home(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = dirs::home_dir() {
            return home.join(rest);
        }
    }
    PathBuf::from(p)
}

/// Default key files, as OpenSSH tries them.
fn default_identity_files() -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .filter_map(|n| dirs::home_dir().map(|h| h.join(".ssh").join(n)))
        .filter(|p| p.exists())
        .collect()
}

fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_string())
}

impl Inventory {
    /// Loads and resolves an inventory file. Every error names file, line and column.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Inventory, Diagnostic> {
        let text = diag::read_file(path)?;
        let raw: RawInventory = if text.trim().is_empty() {
            return Err(Diagnostic::whole_file(
                path,
                "the inventory is empty: list hosts under `hosts:` (see `fleetsweep scan --help`)",
            ));
        } else {
            match ansible::detect(&text) {
                ansible::Dialect::Native => {
                    serde_saphyr::from_str(&text).map_err(|e| Diagnostic::from_yaml(path, &e))?
                }
                ansible::Dialect::AnsibleYaml => {
                    from_ansible(path, ansible::parse_yaml(path, &text)?)?
                }
                ansible::Dialect::AnsibleIni => {
                    from_ansible(path, ansible::parse_ini(path, &text)?)?
                }
            }
        };
        let ssh_config =
            match &opts.ssh_config {
                Some(p) if p.exists() => Some(ssh_config::load(p).map_err(|e| {
                    Diagnostic::whole_file(p, format!("cannot read ssh config: {e}"))
                })?),
                _ => None,
            };
        resolve(path, raw, ssh_config.as_ref())
    }

    /// An inventory of one host: this machine, without SSH (`scan --local`).
    pub fn local() -> Inventory {
        let name = hostname().unwrap_or_else(|| "localhost".to_string());
        Inventory {
            hosts: vec![Host {
                name,
                transport: TransportKind::Local,
                os: None,
                labels: BTreeMap::new(),
                groups: Vec::new(),
                ssh: SshTarget {
                    endpoint: SshEndpoint {
                        address: "localhost".into(),
                        port: 0,
                        user: current_user(),
                        identity_files: Vec::new(),
                    },
                    jumps: Vec::new(),
                },
                known_hosts: None,
                passphrase: Passphrase::None,
                connect_timeout: None,
                host_timeout: None,
                sudo: false,
                winrm: None,
            }],
            known_hosts_files: Vec::new(),
        }
    }
}

/// Turns flattened Ansible hosts into the native raw form, so both dialects
/// resolve through the same code.
fn from_ansible(file: &Path, hosts: Vec<ansible::AnsibleHost>) -> Result<RawInventory, Diagnostic> {
    let unknown = serde_saphyr::Location::UNKNOWN;
    let spanned = |v: String| Spanned::new(v, unknown, unknown);
    let mut raw_hosts = Vec::new();
    let mut groups: BTreeMap<String, RawGroup> = BTreeMap::new();
    for h in hosts {
        let get = |k: &str| h.vars.get(k).cloned();
        let port = match get("ansible_port").or_else(|| get("ansible_ssh_port")) {
            Some(p) => Some(p.parse::<u16>().map_err(|_| {
                Diagnostic::whole_file(
                    file,
                    format!("host `{}`: ansible_port `{p}` is not a port number", h.name),
                )
            })?),
            None => None,
        };
        let jump = get("ansible_ssh_common_args")
            .and_then(|a| ansible::jump_from_args(&a))
            .or_else(|| get("ansible_ssh_extra_args").and_then(|a| ansible::jump_from_args(&a)));
        let labels = h
            .vars
            .iter()
            .filter(|(k, _)| !k.starts_with("ansible_") && !k.starts_with("fleetsweep_"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let connection = get("ansible_connection");
        let (transport, winrm, port) = match connection.as_deref() {
            Some("local") => (Some(TransportKind::Local), None, port),
            Some("winrm" | "psrp") => (
                Some(TransportKind::Winrm),
                Some(spanned_winrm(ansible_winrm(file, &h, port)?)),
                None,
            ),
            _ => (None, None, port),
        };
        // Windows over OpenSSH: Ansible says so with the shell type.
        let os = matches!(
            get("ansible_shell_type").as_deref(),
            Some("powershell" | "cmd")
        )
        .then_some(OsHint::Windows);
        for g in &h.groups {
            groups
                .entry(g.clone())
                .or_default()
                .hosts
                .push(spanned(h.name.clone()));
        }
        raw_hosts.push(RawHost {
            name: spanned(h.name.clone()),
            address: get("ansible_host").or_else(|| get("ansible_ssh_host")),
            labels,
            user: get("ansible_user").or_else(|| get("ansible_ssh_user")),
            port,
            identity_file: get("ansible_ssh_private_key_file").map(OneOrMany::One),
            known_hosts: None,
            jump: jump.map(spanned),
            transport,
            os,
            connect_timeout: None,
            host_timeout: None,
            sudo: None,
            passphrase_env: None,
            passphrase_file: None,
            winrm,
        });
    }
    Ok(RawInventory {
        defaults: RawVars::default(),
        groups,
        hosts: raw_hosts,
    })
}

fn spanned_winrm(w: RawWinrm) -> Spanned<RawWinrm> {
    let unknown = serde_saphyr::Location::UNKNOWN;
    Spanned::new(w, unknown, unknown)
}

/// An Ansible WinRM host's variables as a `winrm:` map, the way Ansible reads
/// them: `ansible_port`, `ansible_winrm_scheme` (default https unless the port
/// is 5985), `ansible_winrm_transport`, `ansible_winrm_ca_trust_path`,
/// `ansible_winrm_kerberos_hostname_override`. Passwords are never read from
/// the inventory: `fleetsweep_winrm_password_env` / `_file` name where it is.
fn ansible_winrm(
    file: &Path,
    h: &ansible::AnsibleHost,
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

fn hostname() -> Option<String> {
    let s = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// Turns the raw file into resolved hosts.
fn resolve(
    file: &Path,
    raw: RawInventory,
    ssh_config: Option<&SshConfig>,
) -> Result<Inventory, Diagnostic> {
    // Host entries by name, in file order; group-only names are appended.
    let mut order: Vec<String> = Vec::new();
    let mut entries: HashMap<String, RawHost> = HashMap::new();
    for h in raw.hosts {
        let name = h.name.value.trim().to_string();
        if name.is_empty() {
            return Err(Diagnostic::at(
                file,
                h.name.referenced,
                "host name is empty",
            ));
        }
        if entries.contains_key(&name) {
            return Err(Diagnostic::at(
                file,
                h.name.referenced,
                format!("host `{name}` is listed twice: host names must be unique"),
            ));
        }
        order.push(name.clone());
        entries.insert(name, h);
    }
    // Group membership, in group-name order (BTreeMap), deterministic.
    let mut member_of: HashMap<String, Vec<String>> = HashMap::new();
    for (gname, g) in &raw.groups {
        for h in &g.hosts {
            let name = h.value.trim().to_string();
            if name.is_empty() {
                return Err(Diagnostic::at(
                    file,
                    h.referenced,
                    format!("empty host name in group `{gname}`"),
                ));
            }
            if !entries.contains_key(&name) {
                order.push(name.clone());
                entries.insert(
                    name.clone(),
                    RawHost {
                        name: h.clone(),
                        address: None,
                        labels: BTreeMap::new(),
                        user: None,
                        port: None,
                        identity_file: None,
                        known_hosts: None,
                        jump: None,
                        transport: None,
                        os: None,
                        connect_timeout: None,
                        host_timeout: None,
                        sudo: None,
                        passphrase_env: None,
                        passphrase_file: None,
                        winrm: None,
                    },
                );
            }
            let groups = member_of.entry(name).or_default();
            if !groups.contains(gname) {
                groups.push(gname.clone());
            }
        }
    }

    let mut known_hosts_files = Vec::new();
    if let Some(k) = &raw.defaults.known_hosts {
        known_hosts_files.push(expand_home(k));
    }

    // First pass: everything but jumps (a jump may name another inventory host).
    struct Partial {
        host: Host,
        jump: Option<Spanned<String>>,
        identity_files: Vec<PathBuf>,
    }
    let mut partial: Vec<Partial> = Vec::new();
    for name in &order {
        let Some(entry) = entries.get(name) else {
            continue;
        };
        let groups = member_of.get(name).cloned().unwrap_or_default();
        let mut vars = entry.vars();
        let mut labels = BTreeMap::new();
        for g in &groups {
            if let Some(group) = raw.groups.get(g) {
                vars = vars.or(&group.vars);
                for (k, v) in &group.labels {
                    labels.insert(k.clone(), v.clone());
                }
            }
        }
        // Host labels win over group labels.
        for (k, v) in &entry.labels {
            labels.insert(k.clone(), v.clone());
        }
        let sc = ssh_config.map(|c| c.lookup(name)).unwrap_or_default();
        let sc_vars = RawVars {
            user: sc.user.clone(),
            port: sc.port,
            identity_file: (!sc.identity_files.is_empty()).then(|| {
                OneOrMany::Many(
                    sc.identity_files
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect(),
                )
            }),
            ..RawVars::default()
        };
        vars = vars.or(&sc_vars).or(&raw.defaults);
        let jump = vars.jump.clone().or_else(|| {
            sc.proxy_jump.clone().map(|j| Spanned {
                value: j,
                referenced: entry.name.referenced,
                defined: entry.name.defined,
            })
        });
        let address = entry
            .address
            .clone()
            .or_else(|| sc.hostname.clone())
            .unwrap_or_else(|| name.clone());
        let identity_files: Vec<PathBuf> = match &vars.identity_file {
            Some(v) => v.to_vec().iter().map(|s| expand_home(s)).collect(),
            None => default_identity_files(),
        };
        let known_hosts = vars.known_hosts.as_deref().map(expand_home);
        if let Some(k) = &known_hosts {
            if !known_hosts_files.contains(k) {
                known_hosts_files.push(k.clone());
            }
        }
        let passphrase = match (&vars.passphrase_env, &vars.passphrase_file) {
            (Some(e), _) => Passphrase::Env(e.clone()),
            (None, Some(f)) => Passphrase::File(expand_home(f)),
            (None, None) => Passphrase::None,
        };
        let transport = vars.transport.unwrap_or(TransportKind::Ssh);
        let user = vars.user.clone().unwrap_or_else(current_user);
        let winrm = match transport {
            TransportKind::Winrm => Some(winrm_target(
                file,
                name,
                &address,
                &user,
                vars.winrm.as_ref(),
                entry.name.referenced,
            )?),
            _ => None,
        };
        let host = Host {
            name: name.clone(),
            transport,
            os: vars.os.map(|o| match o {
                OsHint::Linux => "linux".to_string(),
                OsHint::Windows => "windows".to_string(),
                OsHint::Macos => "macos".to_string(),
            }),
            labels,
            groups,
            ssh: SshTarget {
                endpoint: SshEndpoint {
                    address,
                    port: vars.port.unwrap_or(22),
                    user,
                    identity_files: identity_files.clone(),
                },
                jumps: Vec::new(),
            },
            known_hosts,
            passphrase,
            connect_timeout: duration_of(file, &vars.connect_timeout)?,
            host_timeout: duration_of(file, &vars.host_timeout)?,
            sudo: vars.sudo.unwrap_or(false),
            winrm,
        };
        partial.push(Partial {
            host,
            jump,
            identity_files,
        });
    }

    // Second pass: resolve jumps. A hop naming an inventory host uses that
    // host's address, port and user; anything else is `user@host:port`.
    let by_name: HashMap<String, SshEndpoint> = partial
        .iter()
        .map(|p| (p.host.name.clone(), p.host.ssh.endpoint.clone()))
        .collect();
    let mut hosts = Vec::with_capacity(partial.len());
    for mut p in partial {
        if let Some(j) = &p.jump {
            let specs = ssh_config::parse_jump_spec(&j.value).map_err(|m| {
                Diagnostic::at(
                    file,
                    j.referenced,
                    format!("invalid jump `{}`: {m}", j.value),
                )
            })?;
            for spec in specs {
                let hop = if let Some(ep) = by_name.get(&spec.host) {
                    if spec.host == p.host.name {
                        return Err(Diagnostic::at(
                            file,
                            j.referenced,
                            format!("host `{}` names itself as its jump host", p.host.name),
                        ));
                    }
                    let mut ep = ep.clone();
                    if let Some(u) = spec.user {
                        ep.user = u;
                    }
                    if let Some(port) = spec.port {
                        ep.port = port;
                    }
                    ep
                } else {
                    let sc = ssh_config.map(|c| c.lookup(&spec.host)).unwrap_or_default();
                    SshEndpoint {
                        address: sc.hostname.clone().unwrap_or_else(|| spec.host.clone()),
                        port: spec.port.or(sc.port).unwrap_or(22),
                        user: spec
                            .user
                            .or(sc.user.clone())
                            .unwrap_or_else(|| p.host.ssh.endpoint.user.clone()),
                        identity_files: if sc.identity_files.is_empty() {
                            p.identity_files.clone()
                        } else {
                            sc.identity_files.clone()
                        },
                    }
                };
                p.host.ssh.jumps.push(hop);
            }
        }
        hosts.push(p.host);
    }
    Ok(Inventory {
        hosts,
        known_hosts_files,
    })
}

/// Resolves and checks the WinRM settings of one host. Errors point at the
/// host's `winrm:` map, or at the host name when it has none.
fn winrm_target(
    file: &Path,
    name: &str,
    address: &str,
    user: &str,
    raw: Option<&Spanned<RawWinrm>>,
    host_location: serde_saphyr::Location,
) -> Result<WinrmTarget, Diagnostic> {
    let location = raw.map(|r| r.referenced).unwrap_or(host_location);
    let raw = raw.map(|r| r.value.clone()).unwrap_or_default();
    let scheme = raw.scheme.unwrap_or(Scheme::Http);
    let auth = match (raw.auth, &raw.keytab) {
        (None, Some(_)) => WinrmAuth::Kerberos,
        (Some(a), Some(_)) if a != WinrmAuth::Kerberos => {
            return Err(Diagnostic::at(
                file,
                location,
                format!(
                    "host `{name}`: winrm.keytab holds a Kerberos key, which only auth `kerberos` \
                     uses (not `{}`): set auth: kerberos, or give a password instead",
                    a.as_str()
                ),
            ))
        }
        (a, _) => a.unwrap_or(WinrmAuth::Negotiate),
    };
    if auth == WinrmAuth::Basic && scheme == Scheme::Http {
        return Err(Diagnostic::at(
            file,
            location,
            format!(
                "host `{name}`: winrm auth `basic` over scheme `http` would send the password in \
                 clear: use `scheme: https`, or `auth: negotiate`, `ntlm` or `kerberos`"
            ),
        ));
    }
    let password = match (&raw.password_env, &raw.password_file, &raw.keytab) {
        (Some(e), None, None) => PasswordSource::Env(e.clone()),
        (None, Some(f), None) => PasswordSource::File(expand_home(f)),
        (None, None, Some(k)) => PasswordSource::Keytab(expand_home(k)),
        (None, None, None) => {
            return Err(Diagnostic::at(
                file,
                location,
                format!(
                    "host `{name}`: transport winrm needs winrm.password_env, \
                     winrm.password_file or winrm.keytab (passwords never go in the inventory)"
                ),
            ))
        }
        _ => {
            return Err(Diagnostic::at(
                file,
                location,
                format!(
                    "host `{name}`: give one of winrm.password_env, winrm.password_file and \
                     winrm.keytab, not several"
                ),
            ))
        }
    };
    let spn = match &raw.spn {
        None => None,
        Some(template) => Some(expand_spn(template, name, address).map_err(|m| {
            Diagnostic::at(file, location, format!("host `{name}`: winrm.spn: {m}"))
        })?),
    };
    let kdc = match &raw.kdc {
        None => None,
        Some(k) => Some(kdc_url(k).map_err(|m| {
            Diagnostic::at(file, location, format!("host `{name}`: winrm.kdc: {m}"))
        })?),
    };
    Ok(WinrmTarget {
        address: address.to_string(),
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

/// `HTTP/{name}.corp.example` for host `win-01` is `HTTP/win-01.corp.example`.
fn expand_spn(template: &str, name: &str, address: &str) -> Result<String, String> {
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
fn kdc_url(kdc: &str) -> Result<String, String> {
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

#[cfg(test)]
mod tests;
