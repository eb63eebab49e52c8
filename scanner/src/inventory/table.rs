//! The hosts a sweep goes through, kept out of memory: a row per host with
//! only what differs from host to host in a fleet (name, address, port, OS
//! hint, labels), in an unnamed temporary file ([`crate::blocks`]), and the
//! rest (groups, deadlines, user, keys, bastions, SSH options) in a profile
//! that every host with the same settings shares, in memory.
//!
//! A full [`Host`] is built from its row and profile while the host is in
//! flight ([`HostTable::get`]), and dropped with its connection. What the
//! table keeps in memory does not grow with the fleet: the profiles (one per
//! distinct set of settings), the distinct label sets (hosts with equal
//! labels share one, as resolving the inventory made them), the place of
//! every block of [`BLOCK`] rows in the file (8 bytes a block) and the
//! block read last, decoded (hosts are taken in order, so each block is read
//! once a sweep). At 100,000 hosts the rows were 6.4 MB of memory for the
//! whole life of the pipeline; on file they are some 3.5 MB of page cache.
//! Without a writable temporary directory the encoded rows stay in memory
//! (some 35 bytes a host): that costs memory, never a host.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use compact_str::CompactString;
use fleetsweep_exporters::Labels;

use super::{Host, Target};
use crate::blocks::{damaged, put_bytes, put_uint, Blocks, Decoder, NewFile};
use crate::os::OsFamily;

/// Rows per block: the unit the table reads (some 2 KB) and keeps the place of.
const BLOCK: usize = 64;

/// Hosts in inventory order, each rebuilt whole on demand.
#[derive(Debug, Default)]
pub struct HostTable {
    /// The encoded rows, on file.
    rows: Blocks,
    /// Whole hosts with the per-host fields emptied (see [`Row`]); shared
    /// with the table's copy in name order ([`HostTable::sorted_by_name`]).
    profiles: Arc<Vec<Host>>,
    /// Distinct label sets, by the id a row holds.
    labels: Arc<Vec<Labels>>,
    /// The block read last, decoded: hosts are taken in order.
    last: Mutex<Option<(usize, Vec<Row>)>>,
}

/// What is a host's own. Its profile holds everything else.
#[derive(Debug)]
struct Row {
    /// Inline up to 24 bytes (most names and addresses): no heap block.
    name: CompactString,
    /// An SSH host's address goes back into its target; other targets keep
    /// theirs in their profile (one each), and this is a copy of it.
    address: CompactString,
    /// In the row, not the profile: labels are what hosts most often have
    /// of their own (an asset tag, an owner), and a host's own labels would
    /// otherwise make a profile of their own.
    labels: u32,
    profile: u32,
    port: u16,
    os: Option<OsFamily>,
}

impl Row {
    /// Name and address (each a length and its bytes), label set, profile
    /// and port (LEB128), OS (one byte: 0 for none, else 1 + its place in
    /// `OsFamily::ALL`).
    fn encode(&self, out: &mut Vec<u8>) {
        put_bytes(out, self.name.as_bytes());
        put_bytes(out, self.address.as_bytes());
        put_uint(out, u64::from(self.labels));
        put_uint(out, u64::from(self.profile));
        put_uint(out, u64::from(self.port));
        let os = self
            .os
            .and_then(|os| OsFamily::ALL.iter().position(|f| *f == os))
            .map_or(0, |i| i as u8 + 1);
        out.push(os);
    }

    /// A row read back; every error is [`damaged`], never a panic.
    fn decode(record: &[u8]) -> std::io::Result<Row> {
        let mut d = Decoder::new(record);
        let name = CompactString::from(d.str()?);
        let address = CompactString::from(d.str()?);
        let labels = d.small()?;
        let profile = d.small()?;
        let port = d.small()?;
        let os = match d.byte()? {
            0 => None,
            n => Some(
                *OsFamily::ALL
                    .get(usize::from(n) - 1)
                    .ok_or_else(|| damaged("an unknown OS"))?,
            ),
        };
        Ok(Row {
            name,
            address,
            labels,
            profile,
            port,
            os,
        })
    }
}

impl HostTable {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Host `i`, whole: equal to the host the table was built from. Its
    /// labels and settings are shared (a reference count each); its name
    /// and address are new shared strings, which its report shares.
    ///
    /// # Panics
    /// When `i` is out of range, like indexing a slice; and when the
    /// table's temporary file cannot be read back (a disk error, or the
    /// file cut short under the process: nothing a host or an inventory can
    /// cause), with the error.
    pub fn get(&self, i: usize) -> Host {
        assert!(i < self.len(), "host {i} of a table of {}", self.len());
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let block = i / BLOCK;
        let rows = match &mut *last {
            Some((b, rows)) if *b == block => rows,
            slot => &mut slot.insert((block, self.block_or_panic(block))).1,
        };
        self.host(&rows[i % BLOCK])
    }

    fn block_or_panic(&self, b: usize) -> Vec<Row> {
        self.block(b).unwrap_or_else(|e| {
            panic!(
                "cannot read the inventory's hosts back from their temporary file (in \
                 $TMPDIR, else /tmp): {e}"
            )
        })
    }

    /// Block `b`'s rows, decoded, and checked against the table.
    fn block(&self, b: usize) -> std::io::Result<Vec<Row>> {
        let block = self.rows.block(b)?;
        let mut rows = Vec::with_capacity(BLOCK);
        for record in block.records() {
            let row = Row::decode(record?)?;
            if row.profile as usize >= self.profiles.len()
                || row.labels as usize >= self.labels.len()
            {
                return Err(damaged("a row out of range"));
            }
            rows.push(row);
        }
        Ok(rows)
    }

    fn host(&self, row: &Row) -> Host {
        let mut h = self.profiles[row.profile as usize].clone();
        h.name = Arc::from(row.name.as_str());
        h.os = row.os;
        h.labels = self.labels[row.labels as usize].clone();
        if let Target::Ssh(s) = &mut h.target {
            s.ssh.endpoint.address = Arc::from(row.address.as_str());
            s.ssh.endpoint.port = row.port;
        }
        h
    }

    /// Every host in order, each built as it is reached.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Host> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// The host named `name`, if there is one (a pass over the rows).
    pub fn find(&self, name: &str) -> Option<Host> {
        (0..self.len().div_ceil(BLOCK)).find_map(|b| {
            let rows = self.block_or_panic(b);
            rows.iter().find(|r| r.name == name).map(|r| self.host(r))
        })
    }

    /// Every host, whole (a copy of the table's hosts).
    pub fn to_vec(&self) -> Vec<Host> {
        self.iter().collect()
    }

    /// The number of distinct profiles (a fleet configured alike has few).
    pub fn profiles(&self) -> usize {
        self.profiles.len()
    }

    /// Builds the table, its rows in the file `new_file` makes (none: in
    /// memory).
    fn build(hosts: Vec<Host>, new_file: Option<NewFile>) -> HostTable {
        let mut rows = Blocks::new("the inventory's hosts", BLOCK, new_file);
        let mut record = Vec::new();
        let mut profiles: Vec<Host> = Vec::new();
        let mut labels: Vec<Labels> = Vec::new();
        // Profiles by the hash of their settings; equal hashes are compared whole.
        let mut index: HashMap<u64, Vec<u32>> = HashMap::new();
        // Label sets by value: hosts with equal labels share one copy,
        // however the inventory wrote them.
        let mut label_ids: HashMap<Labels, u32> = HashMap::new();
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
            let own_labels = std::mem::take(&mut profile.labels);
            let labels_id = match label_ids.get(&own_labels) {
                Some(&id) => id,
                None => {
                    let id = push_id(&mut labels, own_labels.clone());
                    label_ids.insert(own_labels, id);
                    id
                }
            };
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
                        let id = push_id(&mut profiles, profile);
                        same.push(id);
                        id
                    }
                }
            } else {
                push_id(&mut profiles, profile)
            };
            Row {
                name,
                address,
                labels: labels_id,
                profile: id,
                port,
                os,
            }
            .encode(&mut record);
            rows.push(&record);
            record.clear();
        }
        rows.finish();
        profiles.shrink_to_fit();
        labels.shrink_to_fit();
        HostTable {
            rows,
            profiles: Arc::new(profiles),
            labels: Arc::new(labels),
            last: Mutex::new(None),
        }
    }

    /// The same hosts in name order (stably: hosts of one name keep their
    /// order), in a table of their own with the same profiles and label
    /// sets (shared), and for each of its positions the host's position in
    /// this table; none when this table is in name order already (one pass
    /// over the rows). A sweep's report lists its hosts by name and reads
    /// them in that order: from a table in inventory order each would cost
    /// a block's decoding.
    ///
    /// # Panics
    /// As [`HostTable::get`], when the table's file cannot be read back.
    pub fn sorted_by_name(&self) -> Option<(HostTable, Vec<usize>)> {
        let blocks = self.len().div_ceil(BLOCK);
        let mut last: Option<CompactString> = None;
        let sorted = (0..blocks).all(|b| {
            self.block_or_panic(b).into_iter().all(|r| {
                let in_order = last.as_ref().is_none_or(|l| *l <= r.name);
                last = Some(r.name);
                in_order
            })
        });
        if sorted {
            return None;
        }
        let mut rows: Vec<(Row, usize)> = Vec::with_capacity(self.len());
        for b in 0..blocks {
            let first = b * BLOCK;
            rows.extend(self.block_or_panic(b).into_iter().zip(first..));
        }
        rows.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        let mut sorted = self.rows.empty_like();
        let mut order = Vec::with_capacity(rows.len());
        let mut record = Vec::new();
        for (row, at) in rows {
            row.encode(&mut record);
            sorted.push(&record);
            record.clear();
            order.push(at);
        }
        sorted.finish();
        let table = HostTable {
            rows: sorted,
            profiles: self.profiles.clone(),
            labels: self.labels.clone(),
            last: Mutex::new(None),
        };
        Some((table, order))
    }
}

impl From<Vec<Host>> for HostTable {
    /// Splits each host into its row and a shared profile. The list is
    /// consumed as it is read: a host's own strings go as its row comes,
    /// the list's one block when the last host is read.
    fn from(hosts: Vec<Host>) -> HostTable {
        HostTable::build(hosts, Some(tempfile::tempfile as NewFile))
    }
}

/// Appends `item` and says where, as a row holds it.
fn push_id<T>(list: &mut Vec<T>, item: T) -> u32 {
    // 4 billion profiles or label sets would need more hosts than the file
    // holds rows for.
    let id = u32::try_from(list.len()).expect("fewer than 2^32 profiles and label sets");
    list.push(item);
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
    use std::os::unix::fs::FileExt;

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
        // The rows are on file, none in memory.
        assert!(table.rows.file.is_some());
        assert!(table.rows.memory.is_empty());
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

    /// Hosts of every shape the rows encode: names and addresses short, at
    /// the inline limit and past it, non-ASCII, every OS hint and none,
    /// ports from 0 to 65535, labels shared and not; enough of them for
    /// many blocks and more than one write.
    fn many_hosts(n: usize) -> Vec<Host> {
        let mut yaml = String::from("defaults: {user: scan}\nhosts:\n");
        for i in 0..n {
            let name = match i % 4 {
                0 => format!("h{i}"),
                1 => format!("host-{i:0>19}"),
                2 => format!("a-rather-long-host-name-{i}.dc-frankfurt.example.org"),
                _ => format!("hôte-{i}-ünïcode"),
            };
            let os = ["", ", os: linux", ", os: windows", ", os: macos"][i % 4];
            let port = [22, 0, 65535, 2222][(i / 4) % 4];
            let labels = match i % 3 {
                0 => String::new(),
                1 => ", labels: {role: web}".into(),
                _ => format!(", labels: {{asset: A-{i}, role: web}}"),
            };
            yaml.push_str(&format!(
                "  - {{name: \"{name}\", address: \"10.{}.{}.{}\", port: {port}{os}{labels}}}\n",
                i / 65536,
                (i / 256) % 256,
                i % 256
            ));
        }
        load(&yaml).hosts
    }

    #[test]
    fn hosts_come_back_equal_from_file_and_from_memory_in_any_order() {
        let hosts = many_hosts(5_000);
        let on_file = HostTable::from(hosts.clone());
        let in_memory = HostTable::build(hosts.clone(), None);
        assert!(on_file.rows.file.is_some());
        assert!(on_file.rows.in_file > 64 * 1024, "written more than once");
        assert!(on_file.rows.memory.is_empty());
        assert!(in_memory.rows.file.is_none());
        assert_eq!(in_memory.len(), hosts.len());
        assert_eq!(on_file.to_vec(), hosts);
        assert_eq!(in_memory.to_vec(), hosts);
        // Out of order, and back and forth between blocks.
        for i in [4_999, 0, 63, 64, 65, 4_031, 1, 4_998, 2_500] {
            assert_eq!(on_file.get(i), hosts[i], "host {i}");
            assert_eq!(in_memory.get(i), hosts[i], "host {i}");
        }
        assert_eq!(on_file.find(&hosts[4_321].name), Some(hosts[4_321].clone()));
        assert_eq!(on_file.find("h4321"), None);
        // One copy of each distinct label set: none, {role: web}, and one
        // per host with an asset tag.
        assert_eq!(on_file.labels.len(), 2 + 5_000 / 3);
        assert!(on_file.get(1).labels.same_as(&on_file.get(4).labels));
    }

    /// The copy in name order holds the same hosts, equal whole, sorted
    /// stably (two hosts of one name keep their order), with the position
    /// each had; on file or in memory as the table was; a table in name
    /// order already gives none.
    #[test]
    fn a_table_sorted_by_name_holds_the_same_hosts_whole() {
        let mut hosts = many_hosts(1_000);
        // A second host of host 10's name, elsewhere.
        let mut twin = hosts[10].clone();
        twin.labels = Labels::default();
        assert_ne!(twin, hosts[10]);
        hosts.push(twin.clone());
        for on_file in [true, false] {
            let table = match on_file {
                true => HostTable::from(hosts.clone()),
                false => HostTable::build(hosts.clone(), None),
            };
            let (sorted, order) = table.sorted_by_name().expect("not in name order");
            assert_eq!(sorted.rows.file.is_some(), on_file);
            assert_eq!(sorted.len(), hosts.len());
            let mut expected: Vec<(usize, &Host)> = hosts.iter().enumerate().collect();
            expected.sort_by(|a, b| a.1.name.cmp(&b.1.name));
            assert_eq!(order, expected.iter().map(|(i, _)| *i).collect::<Vec<_>>());
            let whole = sorted.to_vec();
            assert_eq!(
                whole,
                expected
                    .iter()
                    .map(|(_, h)| (*h).clone())
                    .collect::<Vec<_>>()
            );
            let at = order.iter().position(|&i| i == 10).unwrap();
            assert_eq!(whole[at + 1], twin, "same name: inventory order");
            assert!(Arc::ptr_eq(&sorted.profiles, &table.profiles));
            assert!(sorted.sorted_by_name().is_none(), "in name order already");
        }
    }

    #[test]
    fn a_full_disk_keeps_the_rows_in_memory() {
        // Every write to /dev/full fails with ENOSPC, as on a full disk.
        fn full() -> std::io::Result<std::fs::File> {
            std::fs::OpenOptions::new().write(true).open("/dev/full")
        }
        let hosts = many_hosts(3_000);
        let table = HostTable::build(hosts.clone(), Some(full));
        assert!(table.rows.no_file);
        assert_eq!(table.rows.in_file, 0);
        assert!(!table.rows.memory.is_empty());
        assert_eq!(table.to_vec(), hosts);
    }

    #[test]
    fn rows_partly_on_file_and_partly_in_memory_are_read_from_each() {
        let hosts = many_hosts(200);
        let mut table = HostTable::build(hosts.clone(), None);
        // As if the first write succeeded and the next failed: the first
        // two blocks on file, the rest in memory.
        let split = table.rows.starts[2];
        let file = tempfile::tempfile().unwrap();
        let on_file: Vec<u8> = table.rows.memory.drain(..split as usize).collect();
        file.write_all_at(&on_file, 0).unwrap();
        table.rows.file = Some(file);
        table.rows.in_file = split;
        *table.last.get_mut().unwrap() = None;
        assert_eq!(table.to_vec(), hosts);
    }

    #[test]
    #[should_panic(expected = "cannot read the inventory's hosts back from their temporary file")]
    fn a_file_cut_short_under_the_table_is_an_error_that_says_so() {
        let table = HostTable::from(many_hosts(300));
        table.rows.file.as_ref().unwrap().set_len(100).unwrap();
        table.get(299);
    }

    #[test]
    fn damaged_rows_are_an_error_never_a_panic() {
        let table = HostTable::build(many_hosts(100), None);
        let block = table.rows.block(0).unwrap();
        for record in block.records().take(8) {
            let good = record.unwrap();
            assert!(Row::decode(good).is_ok());
            // Every cut is an error.
            for cut in 0..good.len() {
                assert!(Row::decode(&good[..cut]).is_err(), "cut at {cut}");
            }
            // Any byte changed: a row or an error, never a panic.
            for at in 0..good.len() {
                for byte in [0x00, 0x7f, 0x80, 0xff, b'a'] {
                    let mut bad = good.to_vec();
                    bad[at] = byte;
                    let _ = Row::decode(&bad);
                }
            }
        }
        // A row that names a profile or label set the table does not have
        // is refused when its block is read.
        let mut t = HostTable::build(many_hosts(3), None);
        t.profiles = Arc::default();
        assert!(t.block(0).is_err());
    }
}
