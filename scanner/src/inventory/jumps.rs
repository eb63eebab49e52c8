//! Jump hosts (bastions), resolved once every host is settled: a hop may name
//! another inventory host, and then uses that host's address, port and user.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde_saphyr::Spanned;

use super::resolve::{lookup, Settled};
use super::{Host, Target};
use crate::diag::Diagnostic;
use crate::transport::ssh_config::{self, SshConfig};
use crate::transport::SshEndpoint;

/// Resolves every host's jumps (a bad jump is an error whatever the host's
/// transport); only SSH targets connect through them.
pub(super) fn with_jumps(
    file: &Path,
    mut settled: Vec<Settled>,
    ssh_config: Option<&SshConfig>,
) -> Result<Vec<Host>, Diagnostic> {
    if settled.iter().any(|s| s.jump.is_some()) {
        // The hosts a hop can name: only those some jump does name (a fleet
        // behind bastions names a handful), copied out so the hosts can take
        // their hops in place. A map of every host's name was 3 MB at
        // 100,000 hosts, and the list of hops beside the hosts 2.4 MB more.
        let named = named_hops(&settled);
        let by_name: HashMap<Box<str>, SshEndpoint> = settled
            .iter()
            .filter(|s| named.contains(&*s.host.name))
            .map(|s| (Box::from(&*s.host.name), s.endpoint().clone()))
            .collect();
        // Hosts behind the same bastions share one list of them.
        let mut chains: HashSet<Arc<[SshEndpoint]>> = HashSet::new();
        for s in &mut settled {
            let Some(jump) = s.jump.take() else { continue };
            let hops = hops(file, &jump, s, &by_name, ssh_config)?;
            let hops = match chains.get(hops.as_slice()) {
                Some(known) => known.clone(),
                None => {
                    let hops: Arc<[SshEndpoint]> = hops.into();
                    chains.insert(hops.clone());
                    hops
                }
            };
            if let Target::Ssh(t) = &mut s.host.target {
                t.ssh.jumps = hops;
            }
        }
    }
    // Collected in place: the hosts take over the settled hosts' memory
    // instead of a second vector beside it, then give back the room a
    // settled host has beyond a host (176 bytes against 160, kept for the
    // whole sweep otherwise). A list that large is its own mapping, which
    // shrinks where it is, without a copy.
    let mut hosts: Vec<Host> = settled.into_iter().map(|s| s.host).collect();
    hosts.shrink_to_fit();
    Ok(hosts)
}

/// The host names the hops of every jump name, once each (a spec that does
/// not parse names none here; [`hops`] reports it where it is written).
fn named_hops(settled: &[Settled]) -> HashSet<String> {
    let specs: HashSet<&str> = settled
        .iter()
        .filter_map(|s| s.jump.as_deref())
        .map(|j| j.value.as_str())
        .collect();
    specs
        .into_iter()
        .filter_map(|spec| ssh_config::parse_jump_spec(spec).ok())
        .flatten()
        .map(|hop| hop.host)
        .collect()
}

/// The bastions of one jump spec, in order. A hop naming an inventory host
/// uses that host's address, port and user; anything else is
/// `user@host:port`, completed from `~/.ssh/config` and then from the host.
fn hops(
    file: &Path,
    jump: &Spanned<String>,
    s: &Settled,
    by_name: &HashMap<Box<str>, SshEndpoint>,
    ssh_config: Option<&SshConfig>,
) -> Result<Vec<SshEndpoint>, Diagnostic> {
    let specs = ssh_config::parse_jump_spec(&jump.value).map_err(|m| {
        Diagnostic::at(
            file,
            jump.referenced,
            format!("invalid jump `{}`: {m}", jump.value),
        )
    })?;
    let mut hops = Vec::with_capacity(specs.len());
    for spec in specs {
        let hop = if let Some(ep) = by_name.get(spec.host.as_str()) {
            if *spec.host == *s.host.name {
                return Err(Diagnostic::at(
                    file,
                    jump.referenced,
                    format!("host `{}` names itself as its jump host", s.host.name),
                ));
            }
            SshEndpoint {
                user: spec.user.map_or_else(|| ep.user.clone(), Into::into),
                port: spec.port.unwrap_or(ep.port),
                ..ep.clone()
            }
        } else {
            let sc = lookup(ssh_config, &spec.host);
            SshEndpoint {
                address: sc.hostname.unwrap_or_else(|| spec.host.clone()).into(),
                port: spec.port.or(sc.port).unwrap_or(22),
                user: spec
                    .user
                    .or(sc.user)
                    .map_or_else(|| s.endpoint().user.clone(), Into::into),
                identity_files: if sc.identity_files.is_empty() {
                    s.endpoint().identity_files.clone()
                } else {
                    sc.identity_files.into()
                },
            }
        };
        hops.push(hop);
    }
    Ok(hops)
}
