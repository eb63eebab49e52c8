//! The hosts a sweep goes through, kept small: a row per host with only what
//! differs from host to host in a fleet (name, address, port, OS hint,
//! labels), and the rest (groups, deadlines, user, keys, bastions, SSH
//! options) in a profile that every host with the same settings shares.
//!
//! A full [`Host`] is built from its row and profile while the host is in
//! flight ([`HostTable::get`]), and dropped with its connection: a 100,000-host
//! sweep keeps 64 bytes a host for its inventory instead of 160 and two
//! 32-byte string blocks. Building one is a few reference counts and its
//! name and address as shared strings (which its report then shares).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use compact_str::CompactString;
use fleetsweep_exporters::Labels;

use super::{Host, Target};
use crate::os::OsFamily;

/// Hosts in inventory order, each rebuilt whole on demand.
#[derive(Debug, Clone, Default)]
pub struct HostTable {
    rows: Vec<Row>,
    /// Whole hosts with the per-host fields emptied (see [`Row`]).
    profiles: Vec<Host>,
}

/// What is a host's own. Its profile holds everything else.
#[derive(Debug, Clone)]
struct Row {
    /// Inline up to 24 bytes (most names and addresses): no heap block.
    name: CompactString,
    /// An SSH host's address goes back into its target; other targets keep
    /// theirs in their profile (one each), and this is a copy of it.
    address: CompactString,
    /// In the row, not the profile: labels are what hosts most often have
    /// of their own (an asset tag, an owner), and a host's own labels would
    /// otherwise make a profile of their own. Hosts with equal labels share
    /// one copy (a reference count), as resolving the inventory made them.
    labels: Labels,
    profile: u32,
    port: u16,
    os: Option<OsFamily>,
}

// The point of the table: keep it so.
const _: () = assert!(std::mem::size_of::<Row>() <= 64);

impl HostTable {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Host `i`, whole: equal to the host the table was built from. Its
    /// labels and settings are the profile's (a reference count each); its
    /// name and address are new shared strings, which its report shares.
    ///
    /// # Panics
    /// When `i` is out of range, like indexing a slice.
    pub fn get(&self, i: usize) -> Host {
        let row = &self.rows[i];
        let mut h = self.profiles[row.profile as usize].clone();
        h.name = Arc::from(row.name.as_str());
        h.os = row.os;
        h.labels = row.labels.clone();
        if let Target::Ssh(s) = &mut h.target {
            s.ssh.endpoint.address = Arc::from(row.address.as_str());
            s.ssh.endpoint.port = row.port;
        }
        h
    }

    /// Every host in order, each built as it is reached.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Host> + '_ {
        (0..self.rows.len()).map(|i| self.get(i))
    }

    /// The host named `name`, if there is one.
    pub fn find(&self, name: &str) -> Option<Host> {
        let i = self.rows.iter().position(|r| r.name == name)?;
        Some(self.get(i))
    }

    /// The hosts' names in order.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.rows.iter().map(|r| &*r.name)
    }

    /// Every host, whole (a copy of the table's hosts).
    pub fn to_vec(&self) -> Vec<Host> {
        self.iter().collect()
    }

    /// The number of distinct profiles (a fleet configured alike has few).
    pub fn profiles(&self) -> usize {
        self.profiles.len()
    }
}

impl From<Vec<Host>> for HostTable {
    /// Splits each host into its row and a shared profile. The list is
    /// consumed as it is read: a host's own strings go as its row comes,
    /// the list's one block when the last host is read.
    fn from(hosts: Vec<Host>) -> HostTable {
        let mut rows = Vec::with_capacity(hosts.len());
        let mut profiles: Vec<Host> = Vec::new();
        // Profiles by the hash of their settings; equal hashes are compared whole.
        let mut index: HashMap<u64, Vec<u32>> = HashMap::new();
        let hasher = std::collections::hash_map::RandomState::new();
        let empty: Arc<str> = Arc::from("");
        for h in hosts {
            let Host {
                name, os, target, ..
            } = &h;
            let (name, os) = (CompactString::from(&**name), *os);
            let address = CompactString::from(h.address());
            let (shareable, port) = match target {
                Target::Ssh(s) => (true, s.ssh.endpoint.port),
                // One each: their settings (a bundle's directory, a WinRM
                // endpoint) are the host's own anyway, and they are few.
                Target::Winrm(_) | Target::Local(_) | Target::Offline(_) => (false, 0),
            };
            let mut profile = h;
            profile.name = empty.clone();
            profile.os = None;
            let labels = std::mem::take(&mut profile.labels);
            if let Target::Ssh(s) = &mut profile.target {
                s.ssh.endpoint.address = empty.clone();
                s.ssh.endpoint.port = 0;
            }
            let id = if shareable {
                let key = {
                    let mut state = hasher.build_hasher();
                    hash_profile(&profile, &mut state);
                    state.finish()
                };
                let same = index.entry(key).or_default();
                match same.iter().find(|&&id| profiles[id as usize] == profile) {
                    Some(&id) => id,
                    None => {
                        let id = new_profile(&mut profiles, profile);
                        same.push(id);
                        id
                    }
                }
            } else {
                new_profile(&mut profiles, profile)
            };
            rows.push(Row {
                name,
                address,
                labels,
                profile: id,
                port,
                os,
            });
        }
        profiles.shrink_to_fit();
        HostTable { rows, profiles }
    }
}

fn new_profile(profiles: &mut Vec<Host>, profile: Host) -> u32 {
    // 4 billion profiles would need more hosts than memory holds rows for.
    let id = u32::try_from(profiles.len()).expect("fewer than 2^32 profiles");
    profiles.push(profile);
    id
}

/// Hashes what [`PartialEq`] compares of an SSH host's profile, so that
/// equal profiles hash alike (the per-host fields are emptied already).
fn hash_profile(h: &Host, state: &mut impl Hasher) {
    h.groups.hash(state);
    h.host_timeout.hash(state);
    if let Target::Ssh(s) = &h.target {
        s.ssh.hash(state);
        s.connect_timeout.hash(state);
        s.options.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Inventory, LoadOptions};

    fn load(yaml: &str) -> Inventory {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inventory.yaml");
        std::fs::write(&path, yaml).unwrap();
        Inventory::load(&path, &LoadOptions::default()).unwrap()
    }

    #[test]
    fn every_host_comes_back_as_it_went_in_and_alike_hosts_share_a_profile() {
        let inv = load(
            r#"
defaults:
  user: scan
  identity_file: /keys/id
groups:
  web:
    hosts: [web-1, web-2, web-3]
    labels: {role: web}
  dmz:
    hosts: [web-3, edge-1]
    vars: {jump: bastion.example}
hosts:
  - {name: web-1, address: 10.0.0.1}
  - {name: web-2, address: 10.0.0.2, port: 2222}
  - {name: web-3, address: 10.0.0.3, os: linux}
  - {name: edge-1, address: 10.0.1.1, host_timeout: 30s}
  - {name: db-1, address: 10.0.2.1, user: root, sudo: true, labels: {env: staging, asset: A-1}}
  - {name: db-2, address: 10.0.2.2, user: root, sudo: true, labels: {env: staging, asset: A-2}}
  - {name: win-1, address: 10.0.3.1, transport: winrm, winrm: {password_env: WINRM_PASSWORD}}
  - {name: win-2, address: 10.0.3.2, transport: winrm, winrm: {password_env: WINRM_PASSWORD}}
  - {name: here, transport: local}
  - {name: p-1, address: 10.0.4.1, labels: {profile: clean}}
  - {name: p-2, address: 10.0.4.2, labels: {profile: clean}}
  - {name: p-3, address: 10.0.4.3, labels: {profile: kesl}}
"#,
        );
        let table = HostTable::from(inv.hosts.clone());
        assert_eq!(table.len(), inv.hosts.len());
        for (i, h) in inv.hosts.iter().enumerate() {
            assert_eq!(table.get(i), *h, "host {i} ({})", h.name);
        }
        assert_eq!(table.to_vec(), inv.hosts);
        assert_eq!(
            table.names().collect::<Vec<_>>(),
            inv.hosts.iter().map(|h| &*h.name).collect::<Vec<_>>()
        );
        assert_eq!(table.find("db-2"), Some(inv.hosts[5].clone()));
        assert_eq!(table.find("db-3"), None);
        // web-1 and web-2 differ only in address and port; db-1 and db-2
        // only in address and labels; web-3 (two groups, a bastion) and edge-1 (a
        // bastion, a deadline, one group) each have their own settings; the
        // WinRM and local hosts a profile each; p-1 to p-3 (no group) share
        // one, whatever their labels.
        assert_eq!(table.profiles(), 1 + 1 + 1 + 1 + 3 + 1);
        // Equal labels are one copy, whichever way they were written
        // (web-1 and web-2 get theirs from a group; p-1 and p-2 each write
        // their own); unequal ones stay apart.
        let named = |n: &str| table.find(n).unwrap();
        assert!(named("web-1").labels.same_as(&named("web-2").labels));
        assert!(named("p-1").labels.same_as(&named("p-2").labels));
        assert_eq!(
            named("p-1").labels.get("profile").map(String::as_str),
            Some("clean")
        );
        assert!(!named("p-1").labels.same_as(&named("p-3").labels));
        assert_eq!(
            named("p-3").labels.get("profile").map(String::as_str),
            Some("kesl")
        );
        assert!(!named("db-1").labels.same_as(&named("db-2").labels));
        // Hosts built from one profile share its settings.
        let (a, b) = (table.get(4), table.get(5));
        assert_ne!(a.labels, b.labels);
        assert!(Arc::ptr_eq(&a.groups, &b.groups));
        match (&a.target, &b.target) {
            (Target::Ssh(a), Target::Ssh(b)) => {
                assert!(Arc::ptr_eq(&a.options, &b.options));
                assert!(Arc::ptr_eq(&a.ssh.endpoint.user, &b.ssh.endpoint.user));
            }
            other => panic!("SSH hosts expected: {other:?}"),
        }
    }

    #[test]
    fn hosts_alike_in_everything_but_a_setting_keep_it() {
        // Each host differs from the first in one setting the profile holds:
        // none may come back with another's.
        let inv = load(
            r#"
defaults: {user: scan}
hosts:
  - {name: a, address: 10.0.0.1}
  - {name: b, address: 10.0.0.1, user: other}
  - {name: c, address: 10.0.0.1, identity_file: /keys/c}
  - {name: d, address: 10.0.0.1, connect_timeout: 3s}
  - {name: e, address: 10.0.0.1, host_timeout: 9s}
  - {name: f, address: 10.0.0.1, labels: {x: y}}
  - {name: g, address: 10.0.0.1, sudo: true}
  - {name: h, address: 10.0.0.1, jump: bastion}
  - {name: i, address: 10.0.0.1, max_startups: 3}
  - {name: j, address: 10.0.0.1, passphrase_env: KEY_PASS}
  - {name: k, address: 10.0.0.1, os: macos}
  - {name: l, address: 10.0.0.1, port: 2200}
"#,
        );
        let table = HostTable::from(inv.hosts.clone());
        // f, k and l differ from a in their row (labels, OS hint, port),
        // not their profile.
        assert_eq!(table.profiles(), inv.hosts.len() - 3);
        assert_eq!(table.to_vec(), inv.hosts);
    }

    #[test]
    fn an_empty_list_is_an_empty_table() {
        let table = HostTable::from(Vec::new());
        assert!(table.is_empty());
        assert_eq!(table.iter().count(), 0);
        assert_eq!(table.find("x"), None);
    }
}
