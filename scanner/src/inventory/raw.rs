//! The inventory file as written (docs/inventory.md), before any default is applied.
//!
//! Every struct denies unknown keys, so a typo is an error with its line and
//! column rather than a setting silently ignored.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use compact_str::CompactString;
use serde::Deserialize;
use serde_saphyr::Spanned;

use fleetsweep_exporters::Labels;

use crate::diag::Diagnostic;
use crate::os::OsFamily;
use crate::transport::winrm::{Scheme, WinrmAuth};

/// How a host is reached, as the inventory spells it (`transport:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    Ssh,
    Winrm,
    Local,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInventory {
    #[serde(default)]
    pub(super) defaults: RawVars,
    #[serde(default)]
    pub(super) groups: BTreeMap<String, RawGroup>,
    #[serde(default)]
    pub(super) hosts: Vec<RawHost>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    /// Host names; a name not defined under `hosts:` becomes a host of its own.
    #[serde(default)]
    pub(super) hosts: Vec<Written>,
    #[serde(default)]
    pub(super) vars: RawVars,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
}

/// A name written once per host (its entry's name, each group membership)
/// or a value many hosts write alike (`jump:` to their bastion), with where:
/// the text inline up to 24 bytes (most names and jumps) and one location.
/// A `Spanned<String>` is 80 bytes and a heap block; 100,000 hosts each held
/// one for the name and, behind a bastion, one more for the jump in a block
/// of settings of its own (together some 26 MB while the file was parsed),
/// and an inventory that puts 100,000 hosts in four groups holds 400,000
/// memberships while it is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "Spanned<String>")]
pub(super) struct Written {
    pub(super) value: CompactString,
    pub(super) at: serde_saphyr::Location,
}

impl From<Spanned<String>> for Written {
    fn from(s: Spanned<String>) -> Written {
        Written {
            value: s.value.into(),
            at: s.referenced,
        }
    }
}

impl Written {
    fn spanned(self) -> Spanned<String> {
        Spanned::new(self.value.into(), self.at, self.at)
    }
}

/// A host entry: its identity plus the settings it gives itself.
#[derive(Debug, Deserialize)]
#[serde(from = "RawHostEntry")]
pub(super) struct RawHost {
    pub(super) name: Written,
    pub(super) address: Option<CompactString>,
    pub(super) labels: Labels,
    /// The settings the host gives itself, only those, but for `jump:`:
    /// empty (no allocation) when it gives none, the usual case in a large
    /// fleet where settings come from defaults and groups. Not a
    /// [`RawVars`]: that has room for every key (some 350 bytes), which
    /// 100,000 hosts each giving one key (`user:`, `port:`) would all hold
    /// until the inventory is resolved.
    pub(super) vars: Box<[RawSetting]>,
    /// `jump:`, apart from the other settings: in a fleet behind bastions
    /// every host gives one, and here it needs no block of its own.
    pub(super) jump: Option<Written>,
    /// The groups the host is in, as places in the (sorted) groups map,
    /// ascending, without repeats: indices, not copies of the names (400,000
    /// memberships would be 400,000 strings). Not read from the file: filled
    /// when the inventory is resolved, in the parsed list itself (a second
    /// list of every host beside it was 17.6 MB at 100,000 hosts).
    pub(super) groups: Vec<u32>,
}

impl RawHost {
    /// A host known by its name only (listed in a group, not under `hosts:`).
    pub(super) fn named(name: Written) -> RawHost {
        RawHost {
            name,
            address: None,
            labels: Labels::new(),
            vars: Box::default(),
            jump: None,
            groups: Vec::new(),
        }
    }

    /// A host entry giving `vars` (only the keys set are kept).
    pub(super) fn with_vars(
        name: Written,
        address: Option<CompactString>,
        labels: Labels,
        mut vars: RawVars,
    ) -> RawHost {
        let jump = vars.jump.take().map(Written::from);
        RawHost {
            vars: vars.sparse(),
            jump,
            address,
            labels,
            ..RawHost::named(name)
        }
    }

    /// The settings the host gives itself (all unset when it gives none).
    pub(super) fn take_vars(&mut self) -> RawVars {
        let mut vars = RawVars::from_sparse(std::mem::take(&mut self.vars));
        vars.jump = self.jump.take().map(Written::spanned);
        vars
    }
}

thread_local! {
    /// The label sets parsed so far while [`SharingLabels`] is alive.
    static LABEL_SETS: std::cell::RefCell<Option<std::collections::HashSet<Labels>>> =
        const { std::cell::RefCell::new(None) };
}

/// While alive, hosts parsed on this thread with equal labels share one
/// copy of them as they are parsed: an inventory that writes each host's
/// labels under it (as generated ones do) held a map per host until
/// resolving shared them, some 9 MB of loading's peak at 100,000 hosts.
/// What is remembered goes with the guard.
pub(super) struct SharingLabels(());

impl SharingLabels {
    pub(super) fn start() -> SharingLabels {
        LABEL_SETS.with(|s| *s.borrow_mut() = Some(Default::default()));
        SharingLabels(())
    }
}

impl Drop for SharingLabels {
    fn drop(&mut self) {
        LABEL_SETS.with(|s| *s.borrow_mut() = None);
    }
}

/// `labels`, or an equal set parsed before it (see [`SharingLabels`]).
fn shared_labels(labels: Labels) -> Labels {
    if labels.is_empty() {
        return labels;
    }
    LABEL_SETS.with(|s| match s.borrow_mut().as_mut() {
        Some(sets) => match sets.get(&labels) {
            Some(known) => known.clone(),
            None => {
                sets.insert(labels.clone());
                labels
            }
        },
        None => labels,
    })
}

/// Declares the settings keys once. They may appear in `defaults:`, in a
/// group's `vars:` ([`RawVars`]) and on a host entry ([`RawHostEntry`], which
/// repeats them beside `name`/`address`/`labels` because serde cannot combine
/// `flatten` with `deny_unknown_fields`, and unknown keys must be errors).
macro_rules! settings {
    ($( $(#[$doc:meta])* $field:ident: $ty:ty, )*) => {
        /// Settings that may appear in `defaults:`, in a group's `vars:` and on a host.
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(super) struct RawVars {
            $( $(#[$doc])* pub(super) $field: Option<$ty>, )*
        }

        /// A host entry as written: `name`, `address`, `labels` and every key of [`RawVars`].
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawHostEntry {
            name: Spanned<String>,
            address: Option<String>,
            /// A BTreeMap here, not [`Labels`]: it accepts a mapping only, so
            /// a list says "expected a mapping" (Labels would read a list of pairs).
            #[serde(default)]
            labels: BTreeMap<String, String>,
            $( $field: Option<$ty>, )*
        }

        impl From<RawHostEntry> for RawHost {
            fn from(e: RawHostEntry) -> RawHost {
                RawHost::with_vars(
                    e.name.into(),
                    e.address.map(CompactString::from),
                    shared_labels(fleetsweep_exporters::labels_of(e.labels)),
                    RawVars { $( $field: e.$field, )* },
                )
            }
        }

        /// One setting a host gives itself ([`RawHost::vars`]).
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone)]
        pub(super) enum RawSetting {
            $( $field($ty), )*
        }

        impl RawVars {
            /// The keys that are set, only those.
            pub(super) fn sparse(self) -> Box<[RawSetting]> {
                let mut set = Vec::with_capacity(0 $( + usize::from(self.$field.is_some()) )*);
                $( if let Some(v) = self.$field { set.push(RawSetting::$field(v)); } )*
                set.into_boxed_slice()
            }

            fn from_sparse(set: Box<[RawSetting]>) -> RawVars {
                let mut vars = RawVars::default();
                for s in set.into_vec() {
                    match s {
                        $( RawSetting::$field(v) => vars.$field = Some(v), )*
                    }
                }
                vars
            }

            /// Fills every unset key of `self` from `other`.
            fn fill_from(&mut self, other: &RawVars) {
                $( if self.$field.is_none() { self.$field = other.$field.clone(); } )*
            }
        }
    };
}

settings! {
    user: String,
    port: u16,
    /// One key file or a list of them.
    identity_file: OneOrMany,
    known_hosts: String,
    /// ProxyJump spec: `user@bastion:port[,next...]`, or an inventory host name.
    jump: Spanned<String>,
    transport: TransportKind,
    os: OsFamily,
    connect_timeout: Spanned<DurationText>,
    host_timeout: Spanned<DurationText>,
    sudo: bool,
    passphrase_env: String,
    passphrase_file: String,
    /// Connections to one address:port in start-up (TCP, handshake, auth) at once.
    max_startups: Spanned<usize>,
    /// Channel opens + handshakes through one bastion at once.
    bastion_max_handshakes: Spanned<usize>,
    /// Boxed: the map is most of a settings block's size, and few hosts set it.
    winrm: Box<Spanned<RawWinrm>>,
}

impl RawVars {
    /// `self` with every unset key taken from `other` (self wins). `winrm:`
    /// merges key by key; the most specific map's position is kept for errors.
    pub(super) fn or(mut self, other: &RawVars) -> RawVars {
        if let (Some(mine), Some(theirs)) = (&mut self.winrm, &other.winrm) {
            mine.value = std::mem::take(&mut mine.value).or(&theirs.value);
        }
        self.fill_from(other);
        self
    }
}

/// The `winrm:` map. There is deliberately no `insecure_skip_verify`: a scanner
/// that sends domain credentials must know whom it sends them to; a private CA
/// goes in `ca_file`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWinrm {
    /// Default: 5985 for http, 5986 for https.
    pub(super) port: Option<u16>,
    /// Default: `http` (messages sealed by NTLM/Kerberos).
    pub(super) scheme: Option<Scheme>,
    /// Default: `negotiate`.
    pub(super) auth: Option<WinrmAuth>,
    pub(super) ca_file: Option<String>,
    pub(super) password_env: Option<String>,
    pub(super) password_file: Option<String>,
    /// A keytab with the account's Kerberos key instead of a password (implies
    /// `auth: kerberos`).
    pub(super) keytab: Option<String>,
    /// Kerberos service principal; `{name}` and `{address}` are replaced by the
    /// host's. Default: `HTTP/{address}`.
    pub(super) spn: Option<String>,
    /// Kerberos KDC for the user's realm: `host`, `host:port` or `tcp://host:port`.
    pub(super) kdc: Option<String>,
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
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `5s`, `2m`, `1h 30m`, or a bare number of seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum DurationText {
    Seconds(u64),
    Text(String),
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

/// A duration key's value; a malformed one is an error at its position.
pub(super) fn duration_of(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_labels_are_one_copy_as_they_are_parsed() {
        let yaml = "hosts:\n  - {name: a, labels: {x: y, site: fra1}}\n  - {name: b, labels: {site: fra1, x: y}}\n  - {name: c, labels: {x: z}}\n  - {name: d}\n  - {name: e}\n";
        let parse = || -> RawInventory {
            crate::diag::parse_yaml(Path::new("inventory.yaml"), yaml).unwrap()
        };
        let shared = {
            let _sharing = SharingLabels::start();
            parse()
        };
        let h = &shared.hosts;
        assert!(
            h[0].labels.same_as(&h[1].labels),
            "written in another order"
        );
        assert_eq!(h[0].labels.get("site").map(String::as_str), Some("fra1"));
        assert!(!h[0].labels.same_as(&h[2].labels));
        assert_eq!(h[2].labels.get("x").map(String::as_str), Some("z"));
        assert!(h[3].labels.is_empty() && h[4].labels.is_empty());
        // The guard is gone: nothing is remembered, nothing shared.
        LABEL_SETS.with(|s| assert!(s.borrow().is_none()));
        let apart = parse();
        assert!(!apart.hosts[0].labels.same_as(&apart.hosts[1].labels));
        assert_eq!(apart.hosts[0].labels, apart.hosts[1].labels);
    }
}
