//! From the raw file to resolved hosts, in named steps: collect the host
//! entries ([`entries`]), merge each one's settings by precedence ([`merge`]),
//! settle its target ([`settle`]), then resolve jumps ([`super::jumps`]),
//! which may name other hosts and so wait until every host is settled.
//!
//! Precedence, most specific first: host entry → its groups (in group-name
//! order) → `~/.ssh/config` for that host → `defaults:` → built-in defaults
//! (port 22, the current user, the usual key files).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fleetsweep_exporters::Labels;
use serde_saphyr::Spanned;

use super::jumps::with_jumps;
use super::raw::{duration_of, OneOrMany, RawGroup, RawHost, RawInventory, RawVars, TransportKind};
use super::winrm::winrm_target;
use super::{expand_home, Host, Inventory, LocalHost, SshHost, SshOptions, Target, WinrmHost};
use crate::diag::Diagnostic;
use crate::transport::ssh_config::{SshConfig, SshConfigHost};
use crate::transport::{Passphrase, SshEndpoint, SshTarget, StartupLimits};

/// Turns the raw file into resolved hosts. Every host is settled before any
/// jump is resolved, so a host's own errors come before jump errors.
pub(super) fn resolve(
    file: &Path,
    raw: RawInventory,
    ssh_config: Option<&SshConfig>,
) -> Result<Inventory, Diagnostic> {
    let RawInventory {
        defaults,
        groups,
        hosts,
    } = raw;
    let mut known_hosts_files: Vec<PathBuf> = defaults
        .known_hosts
        .as_deref()
        .map(expand_home)
        .into_iter()
        .collect();
    let entries = entries(file, hosts, &groups)?;
    let group_list: Vec<(&String, &RawGroup)> = groups.iter().collect();
    let mut identities = Identities::default();
    let mut label_sets = LabelSets::default();
    // Collected in place: a settled host is no larger than an entry, so the
    // settled hosts take over the entries' memory as each entry is used up,
    // instead of a second list beside it (30 MB more at 100,000 hosts).
    let settled: Vec<Settled> = entries
        .into_iter()
        .map(|entry| {
            let merged = merge(entry, &group_list, &defaults, ssh_config, &mut label_sets);
            if let Some(k) = merged.vars.known_hosts.as_deref().map(expand_home) {
                if !known_hosts_files.contains(&k) {
                    known_hosts_files.push(k);
                }
            }
            settle(file, merged, &group_list, &mut identities)
        })
        .collect::<Result<_, _>>()?;
    Ok(Inventory {
        hosts: with_jumps(file, settled, ssh_config)?,
        known_hosts_files,
    })
}

/// The host entries in file order, then the names only groups list, each
/// with the groups it is in ([`RawHost::groups`]): the parsed list itself,
/// checked and added to in place.
fn entries(
    file: &Path,
    mut entries: Vec<RawHost>,
    groups: &BTreeMap<String, RawGroup>,
) -> Result<Vec<RawHost>, Diagnostic> {
    let mut index: HashMap<String, usize> = HashMap::with_capacity(entries.len());
    for (i, raw) in entries.iter().enumerate() {
        let name = raw.name.value.trim();
        let at = raw.name.at;
        if name.is_empty() {
            return Err(Diagnostic::at(file, at, "host name is empty"));
        }
        check_name_length(file, name, at)?;
        if index.contains_key(name) {
            return Err(Diagnostic::at(
                file,
                at,
                format!("host `{name}` is listed twice: host names must be unique"),
            ));
        }
        index.insert(name.to_string(), i);
    }
    for (g_at, (gname, g)) in (0u32..).zip(groups) {
        for h in &g.hosts {
            let name = h.value.trim();
            if name.is_empty() {
                return Err(Diagnostic::at(
                    file,
                    h.at,
                    format!("empty host name in group `{gname}`"),
                ));
            }
            check_name_length(file, name, h.at)?;
            let i = match index.get(name) {
                Some(&i) => i,
                None => {
                    index.insert(name.to_string(), entries.len());
                    entries.push(RawHost::named(h.clone()));
                    entries.len() - 1
                }
            };
            let member_of = &mut entries[i].groups;
            // Groups are walked in order, so a repeat is the last one pushed.
            if member_of.last() != Some(&g_at) {
                member_of.push(g_at);
            }
        }
    }
    Ok(entries)
}

/// The longest host name, in bytes. A name is a label for reports, logs and
/// `--limit`, not necessarily a DNS name, but past 255 bytes (the longest
/// name a file system takes, and longer than any DNS name) it is a mistake;
/// refusing it here keeps every table, log line and message sane.
pub const MAX_NAME_BYTES: usize = 255;

/// The longest address, in bytes: a DNS name is at most 253 characters, and
/// IP addresses and `~/.ssh/config` aliases are shorter still.
pub const MAX_ADDRESS_BYTES: usize = 253;

fn check_name_length(
    file: &Path,
    name: &str,
    at: serde_saphyr::Location,
) -> Result<(), Diagnostic> {
    if name.len() <= MAX_NAME_BYTES {
        return Ok(());
    }
    Err(Diagnostic::at(
        file,
        at,
        format!(
            "host name `{}` is {} bytes long, over the limit of {MAX_NAME_BYTES}: \
             use a shorter name (put details in `labels:`)",
            crate::diag::shorten(name),
            name.len()
        ),
    ))
}

/// One host's settings after precedence.
struct Merged {
    name: String,
    /// Where the host entry is: errors about the host as a whole point here.
    at: serde_saphyr::Location,
    /// Places in the groups map, as [`RawHost::groups`].
    groups: Vec<u32>,
    labels: Labels,
    vars: RawVars,
    address: String,
    jump: Option<Spanned<String>>,
}

fn merge(
    mut raw: RawHost,
    groups: &[(&String, &RawGroup)],
    defaults: &RawVars,
    ssh_config: Option<&SshConfig>,
    label_sets: &mut LabelSets,
) -> Merged {
    let name = raw.name.value.trim().to_string();
    let member_of = std::mem::take(&mut raw.groups);
    let mut vars = raw.take_vars();
    let mut labels = BTreeMap::new();
    for (_, group) in member_of.iter().map(|&g| groups[g as usize]) {
        vars = vars.or(&group.vars);
        labels.extend(group.labels.clone());
    }
    // Host labels win over group labels.
    labels.extend(std::mem::take(&mut raw.labels));
    let labels = label_sets.of(labels);
    let sc = lookup(ssh_config, &name);
    vars = vars.or(&ssh_config_vars(&sc)).or(defaults);
    let jump = vars.jump.clone().or_else(|| {
        sc.proxy_jump.map(|j| Spanned {
            value: j,
            referenced: raw.name.at,
            defined: raw.name.at,
        })
    });
    let address = raw
        .address
        .map(String::from)
        .or(sc.hostname)
        .unwrap_or_else(|| name.clone());
    Merged {
        name,
        at: raw.name.at,
        groups: member_of,
        labels,
        vars,
        address,
        jump,
    }
}

/// What `~/.ssh/config` says about `alias` (nothing without a config).
pub(super) fn lookup(ssh_config: Option<&SshConfig>, alias: &str) -> SshConfigHost {
    ssh_config.map(|c| c.lookup(alias)).unwrap_or_default()
}

/// The keys `~/.ssh/config` can fill, as inventory settings.
fn ssh_config_vars(sc: &SshConfigHost) -> RawVars {
    RawVars {
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
    }
}

/// A host resolved but for its jumps. No larger than a [`RawHost`] (see
/// [`resolve`]): what only some hosts have is boxed.
pub(super) struct Settled {
    pub(super) host: Host,
    /// What a jump naming a host that is not an SSH host connects to (an SSH
    /// host's is its own target's endpoint).
    other_endpoint: Option<Box<SshEndpoint>>,
    pub(super) jump: Option<Box<Spanned<String>>>,
}

// The settled hosts are collected in the parsed list's memory only while a
// settled host fits in a parsed host's room: a field added to either that
// breaks this would bring back a second list of all hosts while loading.
const _: () = assert!(std::mem::size_of::<Settled>() <= std::mem::size_of::<RawHost>());

impl Settled {
    /// How the host is reached over SSH: its own target when it is an SSH
    /// host, and what a jump naming it connects to, whatever its transport.
    pub(super) fn endpoint(&self) -> &SshEndpoint {
        match (&self.host.target, &self.other_endpoint) {
            (Target::Ssh(t), _) => &t.ssh.endpoint,
            (_, Some(e)) => e,
            // Every host that is not an SSH host is settled with one.
            (_, None) => unreachable!("a settled host without an SSH endpoint"),
        }
    }
}

/// Label sets seen so far: hosts with the same labels (a fleet's hosts mostly
/// repeat a few `site`/`env`/`role` combinations) share one copy, not one
/// each (some 90 bytes a host at 100,000 hosts).
#[derive(Default)]
struct LabelSets(std::collections::HashSet<Labels>);

impl LabelSets {
    fn of(&mut self, labels: BTreeMap<String, String>) -> Labels {
        // Collected once, so a new set keeps exactly its labels' room.
        let labels = fleetsweep_exporters::labels_of(labels);
        match self.0.get(&labels) {
            Some(seen) => seen.clone(),
            None => {
                self.0.insert(labels.clone());
                labels
            }
        }
    }
}

/// The key file lists of an inventory's hosts, each built once and shared by
/// the hosts that name it (100,000 hosts, one list); the default keys are
/// looked for on disk once per inventory, not once per host.
#[derive(Default)]
struct Identities {
    named: HashMap<Vec<PathBuf>, Arc<[PathBuf]>>,
    default: Option<Arc<[PathBuf]>>,
    /// The login names, each kept once (a fleet logs in as one or a few).
    users: std::collections::HashSet<Arc<str>>,
    /// `$USER`, for hosts that name no user.
    current_user: Option<Arc<str>>,
    /// The hosts' group lists, each distinct list kept once (a fleet's hosts
    /// fall in a few combinations of groups; one copy of each group name per
    /// host was some 100 bytes a host).
    groups: HashMap<Vec<u32>, Arc<[String]>>,
    /// The SSH hosts' shared settings, each distinct set kept once.
    ssh_options: std::collections::HashSet<Arc<SshOptions>>,
}

impl Identities {
    /// `user`, or the current user's name (read once per inventory), shared
    /// with every host that logs in under the same name.
    fn user(&mut self, user: Option<&str>) -> Arc<str> {
        let Some(user) = user else {
            return self
                .current_user
                .get_or_insert_with(|| current_user().into())
                .clone();
        };
        intern(&mut self.users, user, || user.into())
    }

    /// The names of `groups` (places in `all`), shared with every host in
    /// exactly the same groups.
    fn ssh_options(&mut self, options: SshOptions) -> Arc<SshOptions> {
        intern(&mut self.ssh_options, &options, || {
            Arc::new(options.clone())
        })
    }

    fn groups(&mut self, groups: Vec<u32>, all: &[(&String, &RawGroup)]) -> Arc<[String]> {
        self.groups
            .entry(groups)
            .or_insert_with_key(|g| g.iter().map(|&i| all[i as usize].0.clone()).collect())
            .clone()
    }

    fn of(&mut self, files: Option<&OneOrMany>) -> Arc<[PathBuf]> {
        match files {
            Some(v) => {
                let files: Vec<PathBuf> = v.to_vec().iter().map(|s| expand_home(s)).collect();
                self.named
                    .entry(files)
                    .or_insert_with_key(|f| f.as_slice().into())
                    .clone()
            }
            None => self
                .default
                .get_or_insert_with(|| default_identity_files().into())
                .clone(),
        }
    }
}

/// The copy of `value` in `seen`, or a new one (`make`) kept there.
fn intern<T: ?Sized + std::hash::Hash + Eq>(
    seen: &mut std::collections::HashSet<Arc<T>>,
    value: &T,
    make: impl FnOnce() -> Arc<T>,
) -> Arc<T> {
    if let Some(known) = seen.get(value) {
        return known.clone();
    }
    let new = make();
    seen.insert(new.clone());
    new
}

fn settle(
    file: &Path,
    m: Merged,
    groups: &[(&String, &RawGroup)],
    identities: &mut Identities,
) -> Result<Settled, Diagnostic> {
    if m.address.len() > MAX_ADDRESS_BYTES {
        return Err(Diagnostic::at(
            file,
            m.at,
            format!(
                "host `{}`: address `{}` is {} bytes long, over the limit of \
                 {MAX_ADDRESS_BYTES} (the longest DNS name): check `address:`",
                m.name,
                crate::diag::shorten(&m.address),
                m.address.len()
            ),
        ));
    }
    let vars = &m.vars;
    let user = identities.user(vars.user.as_deref());
    let transport = vars.transport.unwrap_or(TransportKind::Ssh);
    // Checked in this order: a host's first error stays the same.
    let winrm = match transport {
        TransportKind::Winrm => Some(winrm_target(
            file,
            &m.name,
            &m.address,
            &user,
            vars.winrm.as_deref(),
            m.at,
        )?),
        _ => None,
    };
    let connect_timeout = duration_of(file, &vars.connect_timeout)?;
    let host_timeout = duration_of(file, &vars.host_timeout)?;
    let sudo = vars.sudo.unwrap_or(false);
    let limits = StartupLimits {
        max_startups: positive(file, "max_startups", &vars.max_startups)?,
        bastion_max_handshakes: positive(
            file,
            "bastion_max_handshakes",
            &vars.bastion_max_handshakes,
        )?,
    };
    // One string for the host's report, its target and a jump naming it.
    let address: Arc<str> = m.address.into();
    // A host listed without an address (reached by its name) keeps one
    // string for both: the usual case of an inventory of DNS names.
    let name: Arc<str> = if *address == *m.name {
        address.clone()
    } else {
        m.name.into()
    };
    let endpoint = SshEndpoint {
        address: address.clone(),
        port: vars.port.unwrap_or(22),
        user,
        identity_files: identities.of(vars.identity_file.as_ref()),
    };
    let mut other_endpoint = None;
    let target = match (transport, winrm) {
        (TransportKind::Local, _) => {
            other_endpoint = Some(Box::new(endpoint));
            Target::Local(LocalHost { address, sudo })
        }
        (_, Some(winrm)) => {
            other_endpoint = Some(Box::new(endpoint));
            Target::Winrm(WinrmHost {
                winrm: Box::new(winrm),
                connect_timeout,
            })
        }
        _ => Target::Ssh(SshHost {
            ssh: SshTarget {
                endpoint,
                jumps: Arc::from([]),
            },
            connect_timeout,
            options: identities.ssh_options(SshOptions {
                passphrase: match (&vars.passphrase_env, &vars.passphrase_file) {
                    (Some(e), _) => Passphrase::Env(e.clone()),
                    (None, Some(f)) => Passphrase::File(expand_home(f)),
                    (None, None) => Passphrase::None,
                },
                sudo,
                limits,
            }),
        }),
    };
    Ok(Settled {
        host: Host {
            name,
            os: vars.os,
            labels: m.labels,
            groups: identities.groups(m.groups, groups),
            host_timeout,
            target,
        },
        other_endpoint,
        jump: m.jump.map(Box::new),
    })
}

/// A cap that must be at least 1 (0 would let no connection start).
fn positive(
    file: &Path,
    key: &str,
    v: &Option<Spanned<usize>>,
) -> Result<Option<usize>, Diagnostic> {
    match v {
        Some(s) if s.value == 0 => Err(Diagnostic::at(
            file,
            s.referenced,
            format!("`{key}: 0` would let no connection start: use 1 or more"),
        )),
        Some(s) => Ok(Some(s.value)),
        None => Ok(None),
    }
}

/// Default key files, as OpenSSH tries them.
fn default_identity_files() -> Vec<PathBuf> {
    ["id_ed25519", "id_ecdsa", "id_rsa"]
        .iter()
        .filter_map(|n| dirs::home_dir().map(|h| h.join(".ssh").join(n)))
        .filter(|p| p.exists())
        .collect()
}

/// The account fleetsweep runs as: the SSH user when none is given.
fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".to_string())
}
