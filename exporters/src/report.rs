//! The sweep report: the versioned contract every exporter writes from.
//!
//! This is the shape users diff between sweeps and feed to other tools, so it is
//! deliberately plain data: no behaviour beyond counting and sorting. Everything
//! a host said is kept as a string here and escaped by the writer that emits it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use crate::hosts::{HostList, HostSource};

/// Bumped when a field changes meaning or disappears; adding a field does not bump it.
pub const REPORT_VERSION: u32 = 1;

/// One sweep, as written to `--report FILE`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub report_version: u32,
    pub sweep: SweepInfo,
    pub summary: Summary,
    /// Exceptions that applied, expired or matched nothing (when an exceptions file was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<ExceptionsReport>,
    /// In memory, or built host by host from a sweep's results (see
    /// [`HostList`]); serialized as a plain sequence either way.
    pub hosts: HostList,
}

/// When, by what and over which catalogs the sweep ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepInfo {
    pub id: String,
    pub started: jiff::Timestamp,
    pub finished: jiff::Timestamp,
    pub scanner_version: String,
    pub catalogs: Vec<CatalogInfo>,
    /// `I/N` when the sweep covered one shard of the inventory.
    pub shard: Option<String>,
    /// False when the sweep was interrupted: hosts it did not finish are listed
    /// with outcome `interrupted`, never as clean.
    pub complete: bool,
    /// Why the sweep stopped early (`SIGINT`, `SIGTERM`), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<String>,
}

/// A catalog file that took part in the sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogInfo {
    pub name: String,
    pub version: String,
    pub rules: usize,
}

/// Counts over the whole sweep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub hosts: HostCounts,
    pub findings: FindingCounts,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostCounts {
    pub total: usize,
    pub scanned: usize,
    /// Scanned completely and without any finding of a banned product.
    pub clean: usize,
    /// Scanned and with at least one finding of a banned product that is not
    /// remediated (excepted and unverified ones count: they are still there,
    /// or not known to be gone).
    pub affected: usize,
    /// Scanned without a finding of a banned product, but some probe section
    /// was not fully read ([`HostReport::incomplete`]): not known to be clean.
    /// `clean + affected + incomplete = scanned`. Absent from reports written
    /// before it existed (read as 0).
    #[serde(default)]
    pub incomplete: usize,
    pub unreachable: usize,
    pub auth_failed: usize,
    pub host_key_rejected: usize,
    pub timed_out: usize,
    pub probe_failed: usize,
    /// Not finished because the sweep was interrupted.
    pub interrupted: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingCounts {
    pub new: usize,
    pub open: usize,
    pub overdue: usize,
    pub remediated: usize,
    pub reinstalled: usize,
    pub excepted: usize,
    pub unverified: usize,
}

/// How the attempt to scan one host ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Scanned,
    Unreachable,
    AuthFailed,
    HostKeyRejected,
    TimedOut,
    ProbeFailed,
    /// The sweep was interrupted before this host finished.
    Interrupted,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Scanned,
        Outcome::Unreachable,
        Outcome::AuthFailed,
        Outcome::HostKeyRejected,
        Outcome::TimedOut,
        Outcome::ProbeFailed,
        Outcome::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Scanned => "scanned",
            Outcome::Unreachable => "unreachable",
            Outcome::AuthFailed => "auth_failed",
            Outcome::HostKeyRejected => "host_key_rejected",
            Outcome::TimedOut => "timed_out",
            Outcome::ProbeFailed => "probe_failed",
            Outcome::Interrupted => "interrupted",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the operating system said it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OsInfo {
    /// `linux`, `windows` or `macos`.
    pub family: String,
    pub name: Option<String>,
    pub version: Option<String>,
}

/// A host's labels (`site: fra1`), sorted by name: a flat sorted vector,
/// a few dozen bytes for the usual one to five labels where a `BTreeMap`
/// takes a ~540-byte node. Serialized as a map, like a `BTreeMap`.
///
/// Shared, not copied: a host's report holds the same labels as its
/// inventory entry (a clone is a reference count), so a 100,000-host sweep
/// keeps one copy of each host's labels, not two. Changing them
/// ([`Labels::insert`]) copies them first when they are shared.
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Labels(std::sync::Arc<litemap::LiteMap<String, String>>);

impl Labels {
    pub fn new() -> Labels {
        Labels::default()
    }

    /// The same shared labels (a clone of `other`), not merely equal ones.
    pub fn same_as(&self, other: &Labels) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }

    /// Sets `key` (copies the labels first when they are shared).
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        std::sync::Arc::make_mut(&mut self.0).insert(key, value)
    }
}

impl std::ops::Deref for Labels {
    type Target = litemap::LiteMap<String, String>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl IntoIterator for Labels {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    /// The entries, sorted by name (copied when the labels are shared).
    fn into_iter(self) -> Self::IntoIter {
        std::sync::Arc::unwrap_or_clone(self.0)
            .into_tuple_vec()
            .into_iter()
    }
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter()).finish()
    }
}

impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Labels {
        let map: std::collections::BTreeMap<String, String> = iter.into_iter().collect();
        labels_of(map)
    }
}

impl Serialize for Labels {
    fn serialize<S: serde::Serializer>(&self, out: S) -> Result<S::Ok, S::Error> {
        labels_as_map(self, out)
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: serde::Deserializer<'de>>(input: D) -> Result<Labels, D::Error> {
        let map = std::collections::BTreeMap::<String, String>::deserialize(input)?;
        Ok(labels_of(map))
    }
}

/// Serializes [`Labels`] as a map, empty ones included (`labels: {}`, never
/// `labels: []`, which would change the report's shape).
pub fn labels_as_map<L, S>(labels: &L, out: S) -> Result<S::Ok, S::Error>
where
    L: std::borrow::Borrow<Labels>,
    S: serde::Serializer,
{
    out.collect_map(labels.borrow().iter())
}

/// `map` as [`Labels`] holding exactly its entries' room (collecting into a
/// `LiteMap` grows it by doubling: four slots for one label).
pub fn labels_of(map: std::collections::BTreeMap<String, String>) -> Labels {
    let entries: Vec<(String, String)> = map.into_iter().collect();
    // Sorted by key and without duplicates: a BTreeMap's order.
    Labels(std::sync::Arc::new(
        litemap::LiteMap::from_sorted_store_unchecked(entries),
    ))
}

/// One host of the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    pub name: compact_str::CompactString,
    pub address: compact_str::CompactString,
    #[serde(serialize_with = "labels_as_map")]
    pub labels: Labels,
    pub outcome: Outcome,
    pub error: Option<String>,
    /// Shared: the hosts of a sweep that run the same system hold one copy.
    pub os: Option<std::sync::Arc<OsInfo>>,
    pub duration_seconds: f64,
    /// Probe sections that failed on a host that was otherwise scanned; the
    /// findings are then a lower bound, and the text says which evidence is missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Probe sections that were not fully read (`section: why`): cut short,
    /// failed, or garbage. A host listing any is never counted clean (its
    /// findings are a lower bound); on a `probe_failed` host it names the
    /// required sections that failed too. Empty (and absent from the file)
    /// for a complete scan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incomplete: Vec<String>,
    pub findings: Vec<Finding>,
    /// In a fleet view (`fleetsweep report --fleet`, many scanners' sweeps
    /// combined): the sweep this host's result comes from. Absent in the
    /// report of one sweep. Boxed: 88 bytes inline in every host otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanned_by: Option<Box<ScannedBy>>,
}

/// Where a host's result in a fleet view comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannedBy {
    /// The sweep's id (`fleetsweep report --sweep ID` renders it whole).
    pub sweep: String,
    /// The scanner that committed the sweep (`scan --scanner`, default its
    /// host name); absent for sweeps recorded before scanners were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scanner: Option<String>,
    /// `I/N` when that sweep covered one shard of the inventory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// When that sweep finished.
    pub finished: jiff::Timestamp,
}

/// Policy of a catalog product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Banned: an open finding fails the sweep (exit code 1).
    Ban,
    /// Reported, never a failure.
    Watch,
}

/// How much of a product is on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    /// A package is installed, or a service or process of the product runs.
    Installed,
    /// Only leftovers: files, packages removed with config files kept, unit files.
    Remnants,
    /// A watched successor product (UltraAV) took the place of a banned one.
    Replaced,
}

/// Remediation status across sweeps (docs/statuses.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Open,
    Overdue,
    Remediated,
    Reinstalled,
    Excepted,
    Unverified,
}

impl Status {
    /// The name as reports, metrics and exports spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Open => "open",
            Status::Overdue => "overdue",
            Status::Remediated => "remediated",
            Status::Reinstalled => "reinstalled",
            Status::Excepted => "excepted",
            Status::Unverified => "unverified",
        }
    }

    /// Statuses that count as "still there and not accepted": these fail a sweep
    /// for products with `policy: ban`.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::New | Status::Open | Status::Overdue | Status::Reinstalled
        )
    }
}

/// One product found on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable id `vendor/product`.
    pub rule: String,
    pub vendor: String,
    pub product: String,
    pub policy: Policy,
    pub state: FindingState,
    pub status: Status,
    pub version: Option<String>,
    pub first_seen: jiff::Timestamp,
    /// Last successful scan that saw it (equals the sweep time while present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<jiff::Timestamp>,
    /// `first_seen + grace` (grace per policy in the catalog): past it, a
    /// finding still present is `overdue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<jiff::civil::Date>,
    /// When a successful scan first found it gone (status `remediated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediated_at: Option<jiff::Timestamp>,
    /// For `unverified`: when the host was last scanned successfully, so the
    /// carried status has an age.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_verified: Option<jiff::Timestamp>,
    /// The active exception that covers it (status `excepted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExceptionRef>,
    pub effective: Option<jiff::civil::Date>,
    pub deadline: Option<jiff::civil::Date>,
    /// The product's own last signature (anti-virus database) update, when the
    /// host said it: the typed form of the `signature_update` evidence, so
    /// tools can select frozen protection without parsing evidence text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signatures: Option<SignatureAge>,
    pub evidence: Vec<Evidence>,
    /// Containers the product was seen running in (`docker 3f2a1b2c3d4e`,
    /// `kubernetes …`, `lxc NAME`): when every trace of it is inside them, the
    /// remediation is the container's image, not the host's package manager.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<String>,
    /// Shared with the catalog's text: one copy for every finding of the
    /// rule, not one per finding (a few hundred bytes each).
    pub remediation: Option<std::sync::Arc<str>>,
}

/// How old a product's signature bases are at scan time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureAge {
    pub last_update: jiff::civil::Date,
    /// Whole days from `last_update` to the scan day (UTC); negative when the
    /// host's clock or bases are ahead of the scanner.
    pub age_days: i64,
    /// True when the bases stopped with the 2024-09-29 update ban (last update
    /// in September or October 2024) and have not moved for over 30 days: the
    /// product still runs but protects with a frozen database, which is worse
    /// than no product at all because it looks like protection.
    pub frozen: bool,
}

/// The exception that made a finding `excepted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionRef {
    /// `file:line` of the exception entry.
    pub source: String,
    pub reason: String,
    pub approver: String,
    pub expires: jiff::civil::Date,
}

/// What the exceptions file did in this sweep: entries that expired (and so
/// stopped applying on their own) and entries that matched nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionsReport {
    /// Active exceptions that covered at least one finding.
    pub applied: Vec<ExceptionUse>,
    pub expired: Vec<ExceptionUse>,
    /// Active exceptions that matched no finding.
    pub unused: Vec<ExceptionUse>,
}

/// One exception entry as reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionUse {
    pub source: String,
    pub hosts: String,
    pub rule: String,
    pub reason: String,
    pub approver: String,
    pub expires: jiff::civil::Date,
    /// Findings it covers (applied) or would have covered (expired).
    pub findings: usize,
}

/// One sweep as a point of the remediation burn-down (from the state store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub sweep_id: String,
    pub finished: jiff::Timestamp,
    pub complete: bool,
    pub hosts: HostCounts,
    pub findings: FindingCounts,
}

/// One observation that made a signature match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Evidence {
    /// `package`, `service`, `process`, `kernel_module`, `path`, ...: one of
    /// a few names, so the probes' own are static strings, not a copy per
    /// item (two allocations fewer per evidence item of every affected host).
    pub kind: Cow<'static, str>,
    /// Which probe saw it (`dpkg`, `rpm`, `apk`, `systemd`, `ps`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Cow<'static, str>>,
    pub value: String,
}

impl Report {
    /// Sorts hosts, findings and evidence and recomputes the summary, so two
    /// sweeps of the same fleet produce byte-identical reports.
    ///
    /// Hosts built from a [`HostSource`] are left as the source gives them
    /// (a sweep's source gives them normalized, in name order): sorting them
    /// here would take them all into memory.
    pub fn normalize(&mut self) {
        if self.hosts.is_in_memory() {
            let hosts = self.hosts.to_mut();
            for host in hosts.iter_mut() {
                host.normalize();
            }
            sort_by_name(hosts);
        }
        self.catalogs_sorted();
        self.summary = Summary::of(&self.hosts);
    }

    fn catalogs_sorted(&mut self) {
        self.sweep.catalogs.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// True when some host has an open finding of a banned product.
    pub fn has_open_ban(&self) -> bool {
        self.hosts.iter().any(|h| h.has_open_ban())
    }

    /// True when some host could not be scanned, or was scanned incompletely
    /// (both exit 3: "some hosts not fully scanned").
    pub fn has_unscanned(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| h.outcome != Outcome::Scanned || h.is_incomplete())
    }
}

/// Sorts hosts by name, stably, without the sort's scratch copy of the
/// hosts (half of them: 9 MB at 100,000 hosts, at the sweep's peak): a sweep
/// usually finishes already in order (the inventory's), which costs one
/// pass; otherwise their positions are sorted (8 bytes a host) and the
/// hosts moved into place along the permutation's cycles.
fn sort_by_name(hosts: &mut [HostReport]) {
    if hosts.is_sorted_by(|a, b| a.name <= b.name) {
        return;
    }
    let mut order: Vec<usize> = (0..hosts.len()).collect();
    order.sort_by(|&a, &b| hosts[a].name.cmp(&hosts[b].name));
    const DONE: usize = usize::MAX;
    for start in 0..order.len() {
        if order[start] == DONE {
            continue;
        }
        // Position k takes the host that belongs there; the host that was
        // at `start` travels along the cycle to the last position.
        let mut k = start;
        loop {
            let from = order[k];
            order[k] = DONE;
            if from == start {
                break;
            }
            hosts.swap(k, from);
            k = from;
        }
    }
}

impl HostReport {
    /// Sorts its findings (by rule), their evidence (without repeats) and
    /// its warnings: what [`Report::normalize`] does to every host.
    pub fn normalize(&mut self) {
        for finding in &mut self.findings {
            finding.evidence.sort();
            finding.evidence.dedup();
        }
        self.findings.sort_by(|a, b| a.rule.cmp(&b.rule));
        self.warnings.sort();
    }

    /// True when the host was scanned but some probe section was not fully
    /// read: never clean.
    pub fn is_incomplete(&self) -> bool {
        self.outcome == Outcome::Scanned && !self.incomplete.is_empty()
    }

    /// Scanned completely, with no finding of a banned product that is still
    /// there (remediated ones are gone).
    pub fn is_clean(&self) -> bool {
        self.outcome == Outcome::Scanned && !self.is_affected() && self.incomplete.is_empty()
    }

    /// Scanned, with a finding of a banned product that is not remediated.
    pub fn is_affected(&self) -> bool {
        self.outcome == Outcome::Scanned
            && self
                .findings
                .iter()
                .any(|f| f.policy == Policy::Ban && f.status != Status::Remediated)
    }

    /// True when a finding on this host fails the sweep ([`Finding::fails`]).
    pub fn has_open_ban(&self) -> bool {
        self.findings.iter().any(Finding::fails)
    }
}

impl Finding {
    /// True when this finding fails a sweep (exit code 1, docs/statuses.md): a banned
    /// product, still there (`new`, `open`, `overdue`, `reinstalled`), not
    /// covered by an active exception. A first sighting keeps `new` even when
    /// an exception covers it, but carries the exception and does not fail.
    pub fn fails(&self) -> bool {
        self.policy == Policy::Ban && self.status.is_open() && self.exception.is_none()
    }
}

impl Summary {
    pub fn of<'a>(hosts: impl IntoIterator<Item = Cow<'a, HostReport>>) -> Summary {
        let mut s = Summary::default();
        for h in hosts {
            s.hosts.total += 1;
            match h.outcome {
                Outcome::Scanned => {
                    s.hosts.scanned += 1;
                    // Remediated findings are gone: a host with only those is
                    // clean, if every section was read.
                    if h.is_affected() {
                        s.hosts.affected += 1;
                    } else if !h.incomplete.is_empty() {
                        s.hosts.incomplete += 1;
                    } else {
                        s.hosts.clean += 1;
                    }
                }
                Outcome::Unreachable => s.hosts.unreachable += 1,
                Outcome::AuthFailed => s.hosts.auth_failed += 1,
                Outcome::HostKeyRejected => s.hosts.host_key_rejected += 1,
                Outcome::TimedOut => s.hosts.timed_out += 1,
                Outcome::ProbeFailed => s.hosts.probe_failed += 1,
                Outcome::Interrupted => s.hosts.interrupted += 1,
            }
            for f in &h.findings {
                let c = &mut s.findings;
                *match f.status {
                    Status::New => &mut c.new,
                    Status::Open => &mut c.open,
                    Status::Overdue => &mut c.overdue,
                    Status::Remediated => &mut c.remediated,
                    Status::Reinstalled => &mut c.reinstalled,
                    Status::Excepted => &mut c.excepted,
                    Status::Unverified => &mut c.unverified,
                } += 1;
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reports_without_the_incomplete_fields_still_read() {
        let counts: HostCounts = serde_json::from_str(
            r#"{"total":1,"scanned":1,"clean":1,"affected":0,"unreachable":0,"auth_failed":0,"host_key_rejected":0,"timed_out":0,"probe_failed":0,"interrupted":0}"#,
        )
        .unwrap();
        assert_eq!(counts.incomplete, 0);
        let host: HostReport = serde_json::from_str(
            r#"{"name":"h","address":"a","labels":{},"outcome":"scanned","error":null,"os":null,"duration_seconds":0.1,"findings":[]}"#,
        )
        .unwrap();
        assert!(host.incomplete.is_empty() && host.is_clean());
        // And a complete host does not write the key.
        assert!(!serde_json::to_string(&host).unwrap().contains("incomplete"));
    }

    /// Labels are a map in every format, with none (`{}`, not `[]`) or some,
    /// and read back in key order.
    #[test]
    fn labels_are_written_as_a_map() {
        let mut host: HostReport = serde_json::from_str(
            r#"{"name":"h","address":"a","labels":{},"outcome":"scanned","error":null,"os":null,"duration_seconds":0.1,"findings":[]}"#,
        )
        .unwrap();
        let json = serde_json::to_string(&host).unwrap();
        assert!(json.contains(r#""labels":{}"#), "{json}");
        let yaml = serde_saphyr::to_string(&host).unwrap();
        assert!(yaml.contains("labels: {}"), "{yaml}");
        host.labels = labels_of(
            [("site", "fra1"), ("env", "prod")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into(),
        );
        let json = serde_json::to_string(&host).unwrap();
        assert!(
            json.contains(r#""labels":{"env":"prod","site":"fra1"}"#),
            "{json}"
        );
        let yaml = serde_saphyr::to_string(&host).unwrap();
        assert!(
            yaml.contains("labels:\n  env: prod\n  site: fra1\n"),
            "{yaml}"
        );
        let back: HostReport = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(back, host);
    }

    /// Hosts come out sorted by name as a stable sort leaves them (hosts of
    /// the same name, as a fleet view can hold, keep their order), whatever
    /// order they finished in.
    #[test]
    fn hosts_are_sorted_by_name_stably_in_place() {
        let host = |name: String, tag: usize| {
            let mut h: HostReport = serde_json::from_str(
                r#"{"name":"h","address":"a","labels":{},"outcome":"scanned","error":null,"os":null,"duration_seconds":0.1,"findings":[]}"#,
            )
            .unwrap();
            h.name = name.into();
            h.address = tag.to_string().into();
            h
        };
        let mut seed = 42u64;
        for len in [0usize, 1, 2, 3, 17, 100, 1000] {
            let mut hosts: Vec<HostReport> = (0..len)
                .map(|i| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    host(format!("h{:03}", (seed >> 33) % (len as u64 / 2 + 1)), i)
                })
                .collect();
            let mut want = hosts.clone();
            want.sort_by(|a, b| a.name.cmp(&b.name));
            sort_by_name(&mut hosts);
            assert_eq!(hosts, want, "{len} hosts");
            sort_by_name(&mut hosts);
            assert_eq!(hosts, want, "{len} hosts, sorted again");
        }
    }
}
