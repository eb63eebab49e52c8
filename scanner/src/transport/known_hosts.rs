//! Host-key policy: OpenSSH `known_hosts` semantics, decided once per key.
//!
//! russh only hands us the key (or certificate) the server presented; whether
//! to trust it is ours to decide. Neither russh's helper nor `ssh-key` matches
//! wildcards, negations, `@revoked` or `@cert-authority`, so the matching lives
//! here, on top of `ssh-key`'s line parser.
//!
//! The files are read once per sweep into a [`HostKeyPolicy`] shared by every
//! connection (an `Arc`): thousands of hosts must not re-read and re-parse the
//! same files. Trust-on-first-use (`--accept-new-host-keys FILE`) appends to one
//! file under a mutex, so hosts connecting at the same time never interleave
//! lines, and keys learned earlier in the run are trusted later in the same run.
//!
//! Lookups do not walk the whole file: an index maps literal names to
//! their lines at load, so plain entries cost one hash lookup, and only lines
//! with wildcards are tried one by one. A hashed line (`|1|salt|hash`, what
//! OpenSSH writes with `HashKnownHosts yes`, Debian's default) has its own
//! random salt, so no index by name can exist: finding a name's hashed lines
//! costs one HMAC per hashed line, 100,000 of them per host with a
//! 100,000-host file. So hashed lines are indexed by their *key* instead: a
//! host is trusted when a line with the key it presented names it, which
//! is one lookup and one HMAC per line holding that key. Only a host that
//! fails that check (unknown, changed key, a key type the file does not
//! hold) pays for the full pass, which its message needs; its result is
//! remembered. The key preferences sent before the key is known skip hashed
//! lines: when a hashed line records another key type for the host, the
//! check fails, the preferences then include it, and the transport connects
//! once more with them ([`HostKeyPolicy::preferences`]). `@revoked` keys are
//! a map keyed by the key.
//!
//! Deliberate differences from OpenSSH, all in the strict direction:
//! - a `@revoked` key is refused for every host, whatever the line's pattern;
//! - a host certificate must name the host in its principals (no empty list)
//!   and carry no critical options.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher as _;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::blocks::{damaged, put_bytes, put_uint, Blocks, Decoder};
use russh::keys::ssh_encoding::{Decode, Encode};
use russh::keys::ssh_key::known_hosts::{Entry, HostPatterns, Marker};
use russh::keys::ssh_key::public::{Ed25519PublicKey, KeyData};
use russh::keys::ssh_key::{Algorithm, Certificate, Fingerprint, HashAlg, PublicKey};

/// A known_hosts file (or the accept-new file) could not be used at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnownHostsError {
    #[error("cannot read known_hosts file {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{}:{line}: not a known_hosts file (no line could be parsed): {reason}", path.display())]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("cannot open {} to record new host keys: {reason}", path.display())]
    AcceptNewFile { path: PathBuf, reason: String },
}

/// Why a presented host key or certificate is not trusted. The message is the
/// whole story for the report: what was seen, what was expected, the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostKeyError {
    /// No entry for this host at all (and accept-new is off).
    #[error("{0}")]
    Unknown(String),
    /// The host is known with a different key.
    #[error("{0}")]
    Mismatch(String),
    /// The key (or the CA that signed the certificate) is `@revoked`.
    #[error("{0}")]
    Revoked(String),
    /// A host certificate that fails validation.
    #[error("{0}")]
    Certificate(String),
    /// Accept-new could not write the learned key.
    #[error("{0}")]
    Record(String),
}

/// What a connection should advertise so the server presents a key we can check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostKeyPreferences {
    /// Algorithms of keys already recorded for this host, in file order. Listing
    /// them first avoids a false "changed key" when the host has several keys.
    pub known_algorithms: Vec<Algorithm>,
    /// A `@cert-authority` line matches this host, so ask for host certificates.
    pub certificate_authority: bool,
}

/// How the names of one known_hosts line are written.
#[derive(Debug, PartialEq)]
enum Names {
    /// One pattern, lower-cased: most lines (`host`, `[host]:port`) name
    /// one. Up to 24 bytes in the line itself (most names), not a heap block.
    One(compact_str::CompactString),
    /// Comma list of patterns, lower-cased (`*`, `?`, `!neg`, `[host]:port`).
    Patterns(Box<[Box<str>]>),
    /// `|1|salt|hash`: HMAC-SHA1 of the host name keyed by the salt. Boxed,
    /// and the salt kept rather than a prepared HMAC key (some 200 bytes
    /// more a line): a hashed line is checked once per host at most. The
    /// 20-byte salt OpenSSH writes is kept in the same block as the hash
    /// (one 40-byte block a line; a salt of its own was a second block, 3
    /// MB at 100,000 hashed lines).
    Hashed(Box<HashedName<[u8; 20]>>),
    /// A hashed name with a salt of another length (not written by OpenSSH,
    /// but a valid line).
    HashedOther(Box<HashedName<Box<[u8]>>>),
}

#[derive(Debug, PartialEq)]
struct HashedName<S> {
    salt: S,
    hash: [u8; 20],
}

impl<S: AsRef<[u8]>> HashedName<S> {
    fn matches(&self, name: &str) -> bool {
        let key = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            self.salt.as_ref(),
        );
        ring::hmac::verify(&key, name.as_bytes(), &self.hash).is_ok()
    }
}

// Every line holds one: the hashed forms are boxed so that a line stays small.
const _: () = assert!(std::mem::size_of::<Names>() == 24);

impl Names {
    fn matches(&self, name: &str) -> bool {
        match self {
            Names::One(pattern) => match_pattern_list(name, std::slice::from_ref(pattern)),
            Names::Patterns(patterns) => match_pattern_list(name, patterns),
            Names::Hashed(h) => h.matches(name),
            Names::HashedOther(h) => h.matches(name),
        }
    }

    fn patterns(&self) -> Option<smallvec::SmallVec<[&str; 1]>> {
        match self {
            Names::One(pattern) => Some(smallvec::smallvec![&**pattern]),
            Names::Patterns(patterns) => Some(patterns.iter().map(|p| &**p).collect()),
            Names::Hashed(_) | Names::HashedOther(_) => None,
        }
    }
}

/// One parsed line, remembering where it came from for messages. Kept
/// encoded on file ([`Lines`]) for the sweep, decoded while a host is looked
/// up.
#[derive(Debug, PartialEq)]
struct Line {
    /// Index in [`HostKeyPolicy::files`].
    file: u32,
    /// 1-based line number.
    line: u32,
    marker: Option<Marker>,
    names: Names,
    key: StoredKey,
}

/// A public key as two keys are compared: an Ed25519 key (most host keys)
/// as its 32 bytes, in the line itself; any other in its SSH wire encoding.
/// `ssh-key`'s parsed form takes 136 bytes inline whatever the algorithm,
/// and a boxed encoding is a 64-byte heap block more per line (6 MB at
/// 100,000 lines). Decoded again only for messages and preferences.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum StoredKey {
    Ed25519([u8; 32]),
    Encoded(Box<[u8]>),
}

impl StoredKey {
    /// `None` for a key `ssh-key` cannot encode (it parsed it, so never in practice).
    fn of(key: &KeyData) -> Option<StoredKey> {
        if let KeyData::Ed25519(k) = key {
            return Some(StoredKey::Ed25519(k.0));
        }
        key.encode_vec()
            .ok()
            .map(|v| StoredKey::Encoded(v.into_boxed_slice()))
    }

    fn data(&self) -> Option<KeyData> {
        match self {
            StoredKey::Ed25519(k) => Some(KeyData::Ed25519(Ed25519PublicKey(*k))),
            StoredKey::Encoded(e) => KeyData::decode(&mut &e[..]).ok(),
        }
    }

    /// The algorithm, read from the encoding's first field.
    fn algorithm(&self) -> Option<Algorithm> {
        match self {
            StoredKey::Ed25519(_) => Some(Algorithm::Ed25519),
            StoredKey::Encoded(e) => {
                let name = String::decode(&mut &e[..]).ok()?;
                Algorithm::new(&name).ok()
            }
        }
    }

    /// `ssh-ed25519 SHA256:...`, as [`describe`].
    fn describe(&self) -> String {
        match self.data() {
            Some(key) => describe(&key),
            None => "(unreadable key)".into(),
        }
    }

    fn fingerprint(&self) -> Option<Fingerprint> {
        self.data().map(|k| k.fingerprint(HashAlg::Sha256))
    }
}

impl Line {
    /// File and line number (LEB128), marker (a byte), names (a tag, then
    /// a pattern, a count and patterns, or salt and hash), key (a tag, then
    /// 32 bytes or the encoding's length and bytes).
    fn encode(&self, out: &mut Vec<u8>) {
        put_uint(out, u64::from(self.file));
        put_uint(out, u64::from(self.line));
        out.push(match self.marker {
            None => 0,
            Some(Marker::CertAuthority) => 1,
            Some(Marker::Revoked) => 2,
        });
        match &self.names {
            Names::One(p) => {
                out.push(0);
                put_bytes(out, p.as_bytes());
            }
            Names::Patterns(ps) => {
                out.push(1);
                put_uint(out, ps.len() as u64);
                for p in ps.iter() {
                    put_bytes(out, p.as_bytes());
                }
            }
            Names::Hashed(h) => {
                out.push(2);
                out.extend_from_slice(&h.salt);
                out.extend_from_slice(&h.hash);
            }
            Names::HashedOther(h) => {
                out.push(3);
                put_bytes(out, &h.salt);
                out.extend_from_slice(&h.hash);
            }
        }
        match &self.key {
            StoredKey::Ed25519(k) => {
                out.push(0);
                out.extend_from_slice(k);
            }
            StoredKey::Encoded(e) => {
                out.push(1);
                put_bytes(out, e);
            }
        }
    }

    /// A line read back; every error is an error, never a panic.
    fn decode(record: &[u8]) -> std::io::Result<Line> {
        let mut d = Decoder::new(record);
        let file = d.small()?;
        let line = d.small()?;
        let marker = match d.byte()? {
            0 => None,
            1 => Some(Marker::CertAuthority),
            2 => Some(Marker::Revoked),
            _ => return Err(damaged("an unknown marker")),
        };
        let hash = |d: &mut Decoder<'_>| -> std::io::Result<[u8; 20]> {
            <[u8; 20]>::try_from(d.bytes(20)?).map_err(|_| damaged("cut short"))
        };
        let names = match d.byte()? {
            0 => Names::One(d.str()?.into()),
            1 => {
                let n: usize = d.small()?;
                // Each pattern takes a byte at least: a count past what is
                // left is damage, not a reason to reserve room for it.
                if n > record.len() {
                    return Err(damaged("a count out of range"));
                }
                let mut ps = Vec::with_capacity(n);
                for _ in 0..n {
                    ps.push(Box::<str>::from(d.str()?));
                }
                Names::Patterns(ps.into_boxed_slice())
            }
            2 => {
                let salt = hash(&mut d)?;
                let hash = hash(&mut d)?;
                Names::Hashed(Box::new(HashedName { salt, hash }))
            }
            3 => {
                let salt = d.counted()?.into();
                let hash = hash(&mut d)?;
                Names::HashedOther(Box::new(HashedName { salt, hash }))
            }
            _ => return Err(damaged("an unknown kind of names")),
        };
        let key = match d.byte()? {
            0 => StoredKey::Ed25519(
                <[u8; 32]>::try_from(d.bytes(32)?).map_err(|_| damaged("cut short"))?,
            ),
            1 => StoredKey::Encoded(d.counted()?.into()),
            _ => return Err(damaged("an unknown kind of key")),
        };
        Ok(Line {
            file,
            line,
            marker,
            names,
            key,
        })
    }
}

/// Lines per block of [`Lines`]: a lookup reads one block (some 5 KB) per
/// candidate line.
const LINES_PER_BLOCK: usize = 64;

/// Every usable line of a policy's files, in file order, kept out of
/// memory ([`crate::blocks`]): 100,000 parsed lines were some 8 MB for the
/// whole sweep (and for `serve`'s life), and a host needs one or two of
/// them. A line that cannot be read back (the temporary file damaged under
/// the process) is logged and taken as absent: a host it would have
/// trusted is refused, never the reverse (revoked keys are in memory).
#[derive(Default)]
struct Lines {
    blocks: Blocks,
    /// A read failed and was logged: later ones are not (every host would
    /// log the same error).
    failed: std::sync::atomic::AtomicBool,
}

impl Lines {
    fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Calls `f` with lines `ats` (ascending, each once), in order, while
    /// it returns true; each block is read once.
    fn visit(&self, ats: &[usize], mut f: impl FnMut(usize, Line) -> bool) {
        let per = self.blocks.per_block();
        let mut rest = ats;
        while let Some(&first) = rest.first() {
            let b = first / per;
            let in_block = rest.iter().take_while(|&&at| at / per == b).count();
            let (here, later) = rest.split_at(in_block);
            rest = later;
            let block = match self.blocks.block(b) {
                Ok(block) => block,
                Err(e) => return self.unreadable(&e),
            };
            let mut records = block.records().enumerate();
            for &at in here {
                let record = records.find(|(k, _)| *k == at % per).map(|(_, r)| r);
                let line = match record {
                    Some(r) => r.and_then(Line::decode),
                    None => Err(damaged("cut short")),
                };
                match line {
                    Ok(line) => {
                        if !f(at, line) {
                            return;
                        }
                    }
                    Err(e) => return self.unreadable(&e),
                }
            }
        }
    }

    /// Logs a failed read, the first time.
    fn unreadable(&self, e: &std::io::Error) {
        if !self.failed.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::error!(
                "cannot read known_hosts lines back from their temporary file (in $TMPDIR, \
                 else /tmp): {e}; hosts they would trust are refused"
            );
        }
    }

    /// Lines `ats` (ascending, each once), in order.
    fn get_all(&self, ats: &[usize]) -> Vec<Line> {
        let mut found = Vec::with_capacity(ats.len());
        self.visit(ats, |_, line| {
            found.push(line);
            true
        });
        found
    }
}

/// Trust-on-first-use state: the file and the keys learned during this run.
struct AcceptNew {
    path: PathBuf,
    /// Name → the keys learned for it this run. The mutex also serialises
    /// appends to the file, so two hosts never interleave lines, and a host
    /// seen twice at the same time is recorded once. A map, not a list: a
    /// first sweep of 100,000 new hosts would otherwise compare every host
    /// with every host learned before it, under this lock.
    learned: Mutex<HashMap<String, smallvec::SmallVec<[StoredKey; 1]>>>,
}

/// Which lines a name can match, built once at load.
///
/// Sorted lists of (hash, line) rather than hash maps: 16 bytes an entry
/// against a map's 33 and its empty buckets (some 4 MB at 100,000 lines),
/// for a binary search per lookup (17 steps at 100,000: nothing beside a
/// handshake).
#[derive(Default)]
struct NameIndex {
    /// Literal names (no `*`/`?`, not negated): (hash of the name, line
    /// listing it), sorted, so a name's lines are together and in file
    /// order. Candidates only: a line is checked against the name itself (a
    /// negated pattern of the line may still refuse it, and two names may
    /// share a hash), so the names need not be stored twice.
    exact: Vec<(u64, u32)>,
    hasher: std::hash::RandomState,
    /// Lines with a wildcard among their names, and hashed lines with a
    /// marker (`@cert-authority`, `@revoked`; few): tried one by one.
    scanned: Vec<u32>,
    /// Hashed lines without a marker: (hash of their key, line), sorted:
    /// the lines that can trust a presented key.
    hashed_by_key: Vec<(u64, u32)>,
    /// The same lines in file order: what a full pass tries.
    hashed: Vec<u32>,
}

/// The lines filed under `key` in a sorted (hash, line) list, in file order.
fn filed_under(sorted: &[(u64, u32)], key: u64) -> impl Iterator<Item = usize> + '_ {
    let from = sorted.partition_point(|&(k, _)| k < key);
    sorted[from..]
        .iter()
        .take_while(move |&&(k, _)| k == key)
        .map(|&(_, at)| at as usize)
}

/// Places in ascending order, each once (what [`Lines::visit`] takes).
fn in_order(places: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut v: Vec<usize> = places.collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// How much of the file a lookup by name tries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// Literal and wildcard lines, and hashed lines with a marker: no HMAC
    /// per hashed host key line.
    Cheap,
    /// Every line: one HMAC per hashed line.
    Full,
}

impl NameIndex {
    fn key_of(&self, name: &str) -> u64 {
        self.hasher.hash_one(name)
    }

    fn key_hash(&self, key: &StoredKey) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Files line `at`.
    fn add(&mut self, at: u32, line: &Line) {
        let Some(patterns) = line.names.patterns() else {
            if line.marker.is_some() {
                self.scanned.push(at);
            } else {
                let key = self.key_hash(&line.key);
                self.hashed_by_key.push((key, at));
                self.hashed.push(at);
            }
            return;
        };
        let positive: Vec<&str> = patterns
            .iter()
            .copied()
            .filter(|p| !p.starts_with('!'))
            .collect();
        if positive.iter().any(|p| p.contains(['*', '?'])) {
            self.scanned.push(at);
            return;
        }
        // Only negations: the line matches no name at all.
        for name in positive {
            let key = self.key_of(name);
            self.exact.push((key, at));
        }
    }

    /// Every line filed: sorted for lookups.
    fn finish(&mut self) {
        // By hash, then line: a name's lines together, in file order, each
        // once (a line may list a name twice).
        self.exact.sort_unstable();
        self.exact.dedup();
        self.hashed_by_key.sort_unstable();
        self.exact.shrink_to_fit();
        self.scanned.shrink_to_fit();
        self.hashed_by_key.shrink_to_fit();
        self.hashed.shrink_to_fit();
    }

    /// The literal-name candidates and the lines tried one by one.
    fn cheap_candidates<'a>(&'a self, name: &str) -> impl Iterator<Item = usize> + 'a {
        filed_under(&self.exact, self.key_of(name))
            .chain(self.scanned.iter().map(|&at| at as usize))
    }

    /// The lines whose names match `name`, in file order, with their places.
    fn lookup(&self, lines: &Lines, name: &str, pass: Pass) -> (Vec<usize>, Vec<Line>) {
        let hashed = match pass {
            Pass::Cheap => &[][..],
            Pass::Full => &self.hashed[..],
        };
        let candidates = in_order(
            self.cheap_candidates(name)
                .chain(hashed.iter().map(|&at| at as usize)),
        );
        let (mut places, mut found) = (Vec::new(), Vec::new());
        lines.visit(&candidates, |at, line| {
            if line.names.matches(name) {
                places.push(at);
                found.push(line);
            }
            true
        });
        (places, found)
    }

    /// Whether a line without a marker names `name` with exactly `key`:
    /// the literal and wildcard lines for the name, then the hashed lines
    /// holding that key (one HMAC each), never every hashed line.
    fn records(&self, lines: &Lines, name: &str, key: &StoredKey) -> bool {
        let holding = filed_under(&self.hashed_by_key, self.key_hash(key));
        let candidates = in_order(self.cheap_candidates(name).chain(holding));
        let mut found = false;
        lines.visit(&candidates, |_, l| {
            found = l.marker.is_none() && l.key == *key && l.names.matches(name);
            !found
        });
        found
    }
}

/// Names whose matching lines are remembered, at most (one per host of a
/// sweep in practice); past it lookups are computed each time.
const REMEMBERED_NAMES: usize = 1 << 20;

/// The known_hosts policy of one sweep: parsed files plus trust-on-first-use.
pub struct HostKeyPolicy {
    /// Every file consulted, in order (the accept-new file last if not listed).
    files: Vec<PathBuf>,
    /// All usable lines of all files, in file order, on file.
    lines: Lines,
    /// Which lines a name can match, so a lookup does not walk `lines`.
    index: NameIndex,
    /// `@revoked` keys → their first line (file and line number), in
    /// memory: checked for every host, whatever can be read back.
    revoked: HashMap<StoredKey, (u32, u32)>,
    /// Name → the lines it matches, once computed: a host is looked up for
    /// its preferences and again for its key, and each hashed line costs an HMAC.
    /// A name goes once its key is trusted.
    matched: Mutex<HashMap<String, Arc<[usize]>>>,
    accept_new: Option<AcceptNew>,
}

impl std::fmt::Debug for HostKeyPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKeyPolicy")
            .field("files", &self.files)
            .field("lines", &self.lines.len())
            .field("accept_new", &self.accept_new.as_ref().map(|a| &a.path))
            .finish()
    }
}

impl HostKeyPolicy {
    /// Reads `files` (missing ones count as empty) and, with `accept_new`, makes
    /// sure that file can be appended to (creating it) and consults it as well.
    ///
    /// A bad line is skipped with a warning; a file is an error only when it
    /// cannot be read or none of its lines parse.
    pub fn load(
        files: &[PathBuf],
        accept_new: Option<PathBuf>,
    ) -> Result<HostKeyPolicy, KnownHostsError> {
        let mut sources: Vec<PathBuf> = files.to_vec();
        if let Some(path) = &accept_new {
            if !sources.contains(path) {
                sources.push(path.clone());
            }
        }
        let mut blocks = Blocks::on_file("known_hosts lines", LINES_PER_BLOCK);
        let mut index = NameIndex::default();
        let mut revoked = HashMap::new();
        let mut record = Vec::new();
        for (file, path) in sources.iter().enumerate() {
            let Some(text) = read_optional(path)? else {
                tracing::debug!(path = %path.display(), "known_hosts file does not exist; treated as empty");
                continue;
            };
            parse_file(file as u32, path, &text, &mut |line| {
                let at = u32::try_from(blocks.len()).unwrap_or(u32::MAX);
                index.add(at, &line);
                if line.marker == Some(Marker::Revoked) {
                    revoked
                        .entry(line.key.clone())
                        .or_insert((line.file, line.line));
                }
                line.encode(&mut record);
                blocks.push(&record);
                record.clear();
            })?;
        }
        blocks.finish();
        index.finish();
        let accept_new = match accept_new {
            Some(path) => {
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| KnownHostsError::AcceptNewFile {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                Some(AcceptNew {
                    path,
                    learned: Mutex::new(HashMap::new()),
                })
            }
            None => None,
        };
        Ok(HostKeyPolicy {
            files: sources,
            lines: Lines {
                blocks,
                failed: Default::default(),
            },
            index,
            revoked,
            matched: Mutex::new(HashMap::new()),
            accept_new,
        })
    }

    /// A policy that knows no key and learns none: what a pipeline keeps
    /// once its one sweep is done ([`crate::pipeline::Pipeline::sweep_all_once`]).
    pub fn none() -> HostKeyPolicy {
        HostKeyPolicy {
            files: Vec::new(),
            lines: Lines::default(),
            index: NameIndex::default(),
            revoked: HashMap::new(),
            matched: Mutex::new(HashMap::new()),
            accept_new: None,
        }
    }

    /// The files consulted, in order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The lines whose names match `name` (as from [`host_port`]), in file
    /// order. A full pass (every line, hashed ones included) is remembered
    /// for the name: a host that needs one failed the quick check, and its
    /// messages and its next preferences need them. A cheap pass takes a
    /// remembered full one when there is one.
    fn matching(&self, name: &str, pass: Pass) -> Vec<Line> {
        let remembered = lock(&self.matched).get(name).cloned();
        match (remembered, pass) {
            (Some(places), _) => self.lines.get_all(&places),
            (None, Pass::Cheap) => self.index.lookup(&self.lines, name, Pass::Cheap).1,
            (None, Pass::Full) => {
                let (places, found) = self.index.lookup(&self.lines, name, Pass::Full);
                let mut matched = lock(&self.matched);
                if matched.len() < REMEMBERED_NAMES {
                    matched.insert(name.to_string(), places.into());
                }
                found
            }
        }
    }

    /// What to advertise when connecting to `host:port`: the key types the
    /// files record for it, first. Hashed lines count only once a key check
    /// of the host has failed (their pass is what a failed check pays for):
    /// a host whose hashed lines hold only another key type is refused once,
    /// and connected to again with these preferences, which then list it.
    pub fn preferences(&self, host: &str, port: u16) -> HostKeyPreferences {
        let name = host_port(host, port);
        let mut prefs = HostKeyPreferences::default();
        for line in self.matching(&name, Pass::Cheap) {
            match line.marker {
                None => {
                    if let Some(algorithm) = line.key.algorithm() {
                        push_unique(&mut prefs.known_algorithms, algorithm);
                    }
                }
                Some(Marker::CertAuthority) => prefs.certificate_authority = true,
                Some(Marker::Revoked) => {}
            }
        }
        if let Some(accept) = &self.accept_new {
            let learned = lock(&accept.learned);
            for key in learned.get(&name).into_iter().flatten() {
                if let Some(algorithm) = key.algorithm() {
                    push_unique(&mut prefs.known_algorithms, algorithm);
                }
            }
        }
        prefs
    }

    /// Decides whether `key`, presented by `host:port`, is trusted. With
    /// accept-new, an unknown host's key is recorded and accepted.
    pub fn check_key(&self, host: &str, port: u16, key: &PublicKey) -> Result<(), HostKeyError> {
        let checked = self.check_key_of(host, port, key);
        self.forget_trusted(host, port, &checked);
        checked
    }

    /// A host whose key was trusted is done with its lookups: its remembered
    /// lines go, so what is remembered is bounded by the connections in
    /// start-up, not by the size of the fleet. A refused host keeps them for
    /// the messages that follow (bounded by [`REMEMBERED_NAMES`]).
    fn forget_trusted(&self, host: &str, port: u16, checked: &Result<(), HostKeyError>) {
        if checked.is_ok() {
            lock(&self.matched).remove(&host_port(host, port));
        }
    }

    fn check_key_of(&self, host: &str, port: u16, key: &PublicKey) -> Result<(), HostKeyError> {
        let name = host_port(host, port);
        let key = key.key_data();
        if let Some((file, line)) = self.revoked(key) {
            return Err(HostKeyError::Revoked(format!(
                "host key {} of {name} is marked @revoked in {}: refusing to connect",
                describe(key),
                self.at_place(file, line)
            )));
        }
        // Every line that could trust this key is among those `records`
        // tries; the full pass below is for the refusal's message.
        if StoredKey::of(key).is_some_and(|k| self.index.records(&self.lines, &name, &k)) {
            return Ok(());
        }
        let recorded: Vec<Line> = self
            .matching(&name, Pass::Full)
            .into_iter()
            .filter(|l| l.marker.is_none())
            .collect();
        let Some(accept) = &self.accept_new else {
            if recorded.is_empty() {
                return Err(HostKeyError::Unknown(self.unknown_message(host, port, key)));
            }
            return Err(HostKeyError::Mismatch(self.mismatch_message(
                &name,
                key,
                &recorded,
                &[],
            )));
        };
        let mut learned = lock(&accept.learned);
        let learned_here: Vec<KeyData> = learned
            .get(&name)
            .into_iter()
            .flatten()
            .filter_map(StoredKey::data)
            .collect();
        if learned_here.contains(key) {
            return Ok(());
        }
        if !recorded.is_empty() || !learned_here.is_empty() {
            return Err(HostKeyError::Mismatch(self.mismatch_message(
                &name,
                key,
                &recorded,
                &learned_here,
            )));
        }
        append_entry(&accept.path, &name, key).map_err(|e| {
            HostKeyError::Record(format!(
                "cannot record the new host key of {name} in {}: {e}",
                accept.path.display()
            ))
        })?;
        tracing::info!(
            host = %name,
            key = %describe(key),
            file = %accept.path.display(),
            "accepted and recorded a new host key"
        );
        if let Some(stored) = StoredKey::of(key) {
            learned.entry(name).or_default().push(stored);
        }
        Ok(())
    }

    /// Decides whether a host certificate presented by `host:port` is trusted.
    ///
    /// When no `@cert-authority` line matches the host, the certified key is
    /// checked as a plain key instead (what OpenSSH does).
    pub fn check_certificate(
        &self,
        host: &str,
        port: u16,
        cert: &Certificate,
    ) -> Result<(), HostKeyError> {
        let checked = self.check_certificate_of(host, port, cert);
        self.forget_trusted(host, port, &checked);
        checked
    }

    fn check_certificate_of(
        &self,
        host: &str,
        port: u16,
        cert: &Certificate,
    ) -> Result<(), HostKeyError> {
        let name = host_port(host, port);
        for (what, key) in [
            ("host key", cert.public_key()),
            ("certificate authority", cert.signature_key()),
        ] {
            if let Some((file, line)) = self.revoked(key) {
                return Err(HostKeyError::Revoked(format!(
                    "{what} {} of {name}'s certificate is marked @revoked in {}: refusing to connect",
                    describe(key),
                    self.at_place(file, line)
                )));
            }
        }
        // Every @cert-authority line is among the cheap ones (hashed or not).
        let authorities: Vec<Line> = self
            .matching(&name, Pass::Cheap)
            .into_iter()
            .filter(|l| l.marker == Some(Marker::CertAuthority))
            .collect();
        if authorities.is_empty() {
            return self.check_key(host, port, &PublicKey::new(cert.public_key().clone(), ""));
        }
        let reject = |why: String| {
            Err(HostKeyError::Certificate(format!(
                "host certificate of {name} (key id {:?}) rejected: {why}",
                cert.key_id()
            )))
        };
        if !cert.cert_type().is_host() {
            return reject("it is a user certificate, not a host certificate".into());
        }
        let fingerprints: Vec<Fingerprint> = authorities
            .iter()
            .filter_map(|l| l.key.fingerprint())
            .collect();
        let signer = cert.signature_key().fingerprint(HashAlg::Sha256);
        if !fingerprints.contains(&signer) {
            let trusted: Vec<String> = authorities.iter().map(|l| self.at(l)).collect();
            return reject(format!(
                "signed by {signer}, which is not a @cert-authority for this host ({})",
                trusted.join(", ")
            ));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if now < cert.valid_after() || now >= cert.valid_before() {
            return reject(format!(
                "not valid now (valid from {} to {}, unix time)",
                cert.valid_after(),
                cert.valid_before()
            ));
        }
        if let Err(e) = cert.validate_at(now, &fingerprints) {
            return reject(format!("invalid signature: {e}"));
        }
        if !cert.critical_options().is_empty() {
            let names: Vec<&str> = cert.critical_options().keys().map(String::as_str).collect();
            return reject(format!(
                "it carries critical options ({})",
                names.join(", ")
            ));
        }
        let principals = cert.valid_principals();
        if principals.is_empty() {
            return reject("it names no principals".into());
        }
        if !principals.iter().any(|p| p.eq_ignore_ascii_case(host)) {
            return reject(format!("it is valid for {principals:?}, not for {host:?}"));
        }
        Ok(())
    }

    /// Where `key` is marked `@revoked` first (file, line number).
    fn revoked(&self, key: &KeyData) -> Option<(u32, u32)> {
        if self.revoked.is_empty() {
            return None;
        }
        let key = StoredKey::of(key)?;
        self.revoked.get(&key).copied()
    }

    fn at(&self, line: &Line) -> String {
        self.at_place(line.file, line.line)
    }

    fn at_place(&self, file: u32, line: u32) -> String {
        let path = self
            .files
            .get(file as usize)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        format!("{path}:{line}")
    }

    fn unknown_message(&self, host: &str, port: u16, key: &KeyData) -> String {
        let name = host_port(host, port);
        let listed = if self.files.is_empty() {
            "no known_hosts file is configured".to_string()
        } else {
            self.files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let target = self
            .files
            .first()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.ssh/known_hosts".to_string());
        let scan = if port == 22 {
            format!("ssh-keyscan {host}")
        } else {
            format!("ssh-keyscan -p {port} {host}")
        };
        format!(
            "host key for {name} is not in known_hosts ({listed}); the server offered {}: \
             add it with `{scan} >> {target}` (after checking the fingerprint) \
             or run with --accept-new-host-keys FILE",
            describe(key)
        )
    }

    fn mismatch_message(
        &self,
        name: &str,
        key: &KeyData,
        recorded: &[Line],
        learned: &[KeyData],
    ) -> String {
        let mut expected: Vec<String> = recorded
            .iter()
            .map(|l| format!("{} ({})", l.key.describe(), self.at(l)))
            .collect();
        expected.extend(
            learned
                .iter()
                .map(|k| format!("{} (accepted earlier in this run)", describe(k))),
        );
        let mut msg = format!(
            "host key MISMATCH for {name}: the server offered {} but known_hosts has {}: \
             possible man-in-the-middle attack (or the host was reinstalled)",
            describe(key),
            expected.join(", ")
        );
        if let Some(line) = recorded.first() {
            if let Some(path) = self.files.get(line.file as usize) {
                let _ = write!(
                    msg,
                    "; if the change is expected, remove the old entry with `ssh-keygen -R '{name}' -f {}`",
                    path.display()
                );
            }
        }
        msg
    }
}

/// The name known_hosts lines are matched against: `host`, or `[host]:port`
/// when the port is not 22. Lower-cased, as OpenSSH does.
pub fn host_port(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// OpenSSH `match_hostname`: true if some pattern matches and no negated one does.
fn match_pattern_list(name: &str, patterns: &[impl AsRef<str>]) -> bool {
    let mut positive = false;
    for pattern in patterns {
        let pattern = pattern.as_ref();
        let (negated, pattern) = match pattern.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pattern),
        };
        if glob_match(pattern, name) {
            if negated {
                return false;
            }
            positive = true;
        }
    }
    positive
}

/// `*` matches any run of characters, `?` exactly one; everything else literally.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    // A literal name (most patterns): equal or not, without the walk's copies.
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position of the last `*` and the text position it was tried at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

fn push_unique(list: &mut Vec<Algorithm>, algorithm: Algorithm) {
    if !list.contains(&algorithm) {
        list.push(algorithm);
    }
}

/// `ssh-ed25519 SHA256:...`, how keys are named in messages.
fn describe(key: &KeyData) -> String {
    format!("{} {}", key.algorithm(), key.fingerprint(HashAlg::Sha256))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves only a Vec behind; keep using it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read_optional(path: &Path) -> Result<Option<String>, KnownHostsError> {
    if let Err(e) = std::fs::metadata(path) {
        if e.kind() == std::io::ErrorKind::NotFound {
            return Ok(None);
        }
    }
    // Bounded like every file a user names (a 100,000-host known_hosts is
    // about 20 MiB).
    match crate::diag::read_bounded(path, crate::diag::CONFIG_FILE_LIMIT) {
        Ok(bytes) => Ok(Some(crate::diag::text_lossy(bytes))),
        Err(reason) => Err(KnownHostsError::Unreadable {
            path: path.to_path_buf(),
            reason,
        }),
    }
}

/// Hands each usable line of `text` (the file `path`) to `sink`, in order.
fn parse_file(
    file: u32,
    path: &Path,
    text: &str,
    sink: &mut dyn FnMut(Line),
) -> Result<(), KnownHostsError> {
    let mut usable = 0usize;
    let mut first_error: Option<(usize, String)> = None;
    for (number, raw) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match parse_line(trimmed) {
            Ok((marker, names, key)) => {
                usable += 1;
                sink(Line {
                    file,
                    line: u32::try_from(number).unwrap_or(u32::MAX),
                    marker,
                    names,
                    key,
                });
            }
            Err(reason) => {
                tracing::warn!(file = %path.display(), line = number, %reason, "ignoring unusable known_hosts line");
                first_error.get_or_insert((number, reason));
            }
        }
    }
    match first_error {
        Some((line, reason)) if usable == 0 => Err(KnownHostsError::Malformed {
            path: path.to_path_buf(),
            line,
            reason,
        }),
        _ => Ok(()),
    }
}

fn parse_line(line: &str) -> Result<(Option<Marker>, Names, StoredKey), String> {
    // ssh-key splits on single spaces; OpenSSH accepts any run of blanks.
    let normalized = line.split_whitespace().collect::<Vec<_>>().join(" ");
    let entry: Entry = normalized
        .parse()
        .map_err(|e| format!("cannot parse line: {e}"))?;
    let names = match entry.host_patterns() {
        HostPatterns::Patterns(patterns) => match patterns.as_slice() {
            [one] => Names::One(one.to_ascii_lowercase().into()),
            _ => Names::Patterns(
                patterns
                    .iter()
                    .map(|p| p.to_ascii_lowercase().into())
                    .collect(),
            ),
        },
        HostPatterns::HashedName { salt, hash } => match <[u8; 20]>::try_from(salt.as_slice()) {
            Ok(salt) => Names::Hashed(Box::new(HashedName { salt, hash: *hash })),
            Err(_) => Names::HashedOther(Box::new(HashedName {
                salt: salt.as_slice().into(),
                hash: *hash,
            })),
        },
    };
    let key = StoredKey::of(entry.public_key().key_data())
        .ok_or_else(|| "cannot encode the line's key".to_string())?;
    Ok((entry.marker().copied(), names, key))
}

/// Appends `name key` on its own line, adding a newline first if the file
/// does not end with one.
fn append_entry(path: &Path, name: &str, key: &KeyData) -> std::io::Result<()> {
    let encoded = PublicKey::new(key.clone(), "")
        .to_openssh()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let mut text = String::new();
    if needs_newline(&mut file)? {
        text.push('\n');
    }
    let _ = writeln!(text, "{name} {}", encoded.trim_end());
    // One write on an O_APPEND file: lines from other processes do not interleave.
    file.write_all(text.as_bytes())?;
    file.flush()
}

fn needs_newline(file: &mut File) -> std::io::Result<bool> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(len - 1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDfu9peGCQP5cobAbKOcSUFD1q4N2X0x3powvYuRXxAq";
    const KEY_B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIF/t+cyd3KhyWCYGau8Ui0sP4LpIyv5ICn52OowOZNdD";
    const CA: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPTXtsiWCRFQF7pOvs0xntlSTXzg6DH/SToE9pVl6r8T";
    /// `ssh-keygen -s ca -h -I hostcert -n host.example,10.0.0.1 a.pub` (KEY_A, forever).
    const HOST_CERT_A: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAII5LjSUSf5xWY3TI7l9hekn4ercCvkUyEiNGD4VSFaldAAAAIDfu9peGCQP5cobAbKOcSUFD1q4N2X0x3powvYuRXxAqAAAAAAAAAAAAAAACAAAACGhvc3RjZXJ0AAAAHAAAAAxob3N0LmV4YW1wbGUAAAAIMTAuMC4wLjEAAAAAAAAAAP//////////AAAAAAAAAAAAAAAAAAAAMwAAAAtzc2gtZWQyNTUxOQAAACD017bIlgkRUBe6Tr7NMZ7ZUk184Ogx/0k6BPaVZeq/EwAAAFMAAAALc3NoLWVkMjU1MTkAAABAQLHjseIJC0CGevln8oP7kBSEv+V+gej16SoFdmEeBRgvIBxBPiuONrvxk3+WBsPS5JT7NfsTUL6b7AzMtN+qAw==";
    /// `ssh-keygen -s ca -I usercert -n root b.pub`: a user certificate.
    const USER_CERT_B: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIERpUORIZ0C+HUDXo3bDvXQ+ozUR3c01FjYZsB/Hw075AAAAIF/t+cyd3KhyWCYGau8Ui0sP4LpIyv5ICn52OowOZNdDAAAAAAAAAAAAAAABAAAACHVzZXJjZXJ0AAAACAAAAARyb290AAAAAAAAAAD//////////wAAAAAAAACCAAAAFXBlcm1pdC1YMTEtZm9yd2FyZGluZwAAAAAAAAAXcGVybWl0LWFnZW50LWZvcndhcmRpbmcAAAAAAAAAFnBlcm1pdC1wb3J0LWZvcndhcmRpbmcAAAAAAAAACnBlcm1pdC1wdHkAAAAAAAAADnBlcm1pdC11c2VyLXJjAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIPTXtsiWCRFQF7pOvs0xntlSTXzg6DH/SToE9pVl6r8TAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEAllyaBRwm3QxvGjUEcC4Nee4dU/tq78ozr2l31f3A/aF9ZAQ2Z8HN6DpX1K6yAkaRg4aFTl4d+ii29NdQa6woC";
    /// Host certificate for KEY_B valid only in January 2020.
    const EXPIRED_CERT_B: &str = "ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29tAAAAIJYSoX+6gwhxgSLQoVZefCFH/EqvAULa0NHZq/uzIktAAAAAIF/t+cyd3KhyWCYGau8Ui0sP4LpIyv5ICn52OowOZNdDAAAAAAAAAAAAAAACAAAAB2V4cGlyZWQAAAAQAAAADGhvc3QuZXhhbXBsZQAAAABeC+EAAAAAAF40v4AAAAAAAAAAAAAAAAAAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIPTXtsiWCRFQF7pOvs0xntlSTXzg6DH/SToE9pVl6r8TAAAAUwAAAAtzc2gtZWQyNTUxOQAAAEBtGDV8rYAkIC0qWGihtcIpdGWiDR7V6i8sC4Ts1h+PaSlxBGS1zqRW7ThABwkWJLO0PpMEOVk8c6XPcGTqNlUO";
    /// `ssh-keygen -H` of `host.example KEY_A` and `[host.example]:2222 KEY_A`.
    const HASHED_22: &str = "|1|1nLAE7DFQEnVj0XxIovXkkrPTl0=|BMHvqcEXuA6Ez5NEh3OJzNs9K9o=";
    const HASHED_2222: &str = "|1|jialEjQe4x47G0nX0TtjkHXqQM0=|JW4gOSIUfWhveYuSVWfJPKJjR8E=";

    fn key(s: &str) -> PublicKey {
        match PublicKey::from_openssh(s) {
            Ok(k) => k,
            Err(e) => panic!("test key {s}: {e}"),
        }
    }

    fn cert(s: &str) -> Certificate {
        match Certificate::from_openssh(s) {
            Ok(c) => c,
            Err(e) => panic!("test cert: {e}"),
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        path: PathBuf,
        policy: HostKeyPolicy,
    }

    fn policy(text: &str) -> Fixture {
        policy_with(text, false)
    }

    fn policy_with(text: &str, accept_new: bool) -> Fixture {
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        let path = dir.path().join("known_hosts");
        if let Err(e) = std::fs::write(&path, text) {
            panic!("write: {e}");
        }
        let accept = accept_new.then(|| dir.path().join("learned"));
        match HostKeyPolicy::load(std::slice::from_ref(&path), accept) {
            Ok(policy) => Fixture {
                _dir: dir,
                path,
                policy,
            },
            Err(e) => panic!("load: {e}"),
        }
    }

    #[test]
    fn glob_matching() {
        let cases = [
            ("*", "anything", true),
            ("*", "", true),
            ("127.0.0.?", "127.0.0.5", true),
            ("127.0.0.?", "127.0.0.55", false),
            ("[127.0.77.*]:2222", "[127.0.77.12]:2222", true),
            ("[127.0.77.*]:2222", "[127.0.77.12]:22", false),
            ("*.example.com", "a.b.example.com", true),
            ("*.example.com", "example.com", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(glob_match(pattern, text), want, "{pattern} vs {text}");
        }
    }

    #[test]
    fn pattern_lists_with_negation() {
        let list: Vec<Box<str>> = ["*.corp", "!bad.corp"].iter().map(|&s| s.into()).collect();
        assert!(match_pattern_list("good.corp", &list));
        assert!(!match_pattern_list("bad.corp", &list));
        assert!(!match_pattern_list("other.net", &list));
        // A negation alone never matches.
        let only_neg: Vec<Box<str>> = vec!["!x".into()];
        assert!(!match_pattern_list("y", &only_neg));
    }

    #[test]
    fn plain_entries_comma_lists_and_ports() {
        let f = policy(&format!(
            "# comment\n\nalpha,host.example {KEY_A}\n[host.example]:2222 {KEY_B}\n"
        ));
        assert_eq!(f.policy.check_key("host.example", 22, &key(KEY_A)), Ok(()));
        assert_eq!(f.policy.check_key("HOST.example", 22, &key(KEY_A)), Ok(()));
        assert_eq!(f.policy.check_key("alpha", 22, &key(KEY_A)), Ok(()));
        assert_eq!(
            f.policy.check_key("host.example", 2222, &key(KEY_B)),
            Ok(())
        );
        // The port-22 entry does not vouch for port 2222, and vice versa.
        assert!(matches!(
            f.policy.check_key("host.example", 2222, &key(KEY_A)),
            Err(HostKeyError::Mismatch(_))
        ));
        assert!(matches!(
            f.policy.check_key("alpha", 2222, &key(KEY_A)),
            Err(HostKeyError::Unknown(_))
        ));
    }

    /// A line naming one host keeps a short name in the line and a long one
    /// on the heap: both match whatever their case, a 24-byte name and a
    /// 25-byte one (either side of the inline limit), and a name on several
    /// lines is trusted with the key of any of them.
    #[test]
    fn one_name_lines_short_and_long() {
        let long = "a-very-long-host-name.datacenter-one.corp.example.com";
        let exactly = "abcdefghijklmnopqrstuvwx"; // 24 bytes
        let over = "abcdefghijklmnopqrstuvwxy"; // 25 bytes
        assert_eq!((exactly.len(), over.len()), (24, 25));
        let f = policy(&format!(
            "{} {KEY_A}\n{exactly} {KEY_A}\n{over} {KEY_B}\nshort {KEY_A}\nshort {KEY_B}\n",
            long.to_ascii_uppercase()
        ));
        assert_eq!(f.policy.check_key(long, 22, &key(KEY_A)), Ok(()));
        assert_eq!(f.policy.check_key(exactly, 22, &key(KEY_A)), Ok(()));
        assert_eq!(f.policy.check_key(over, 22, &key(KEY_B)), Ok(()));
        assert_eq!(f.policy.check_key("SHORT", 22, &key(KEY_A)), Ok(()));
        assert_eq!(f.policy.check_key("short", 22, &key(KEY_B)), Ok(()));
        // One byte more or less is another name.
        assert!(matches!(
            f.policy.check_key(&exactly[..23], 22, &key(KEY_A)),
            Err(HostKeyError::Unknown(_))
        ));
        assert!(matches!(
            f.policy.check_key(over, 22, &key(KEY_A)),
            Err(HostKeyError::Mismatch(_))
        ));
        assert!(matches!(
            f.policy.check_key(&long[1..], 22, &key(KEY_A)),
            Err(HostKeyError::Unknown(_))
        ));
    }

    #[test]
    fn hashed_entries() {
        let f = policy(&format!("{HASHED_22} {KEY_A}\n{HASHED_2222} {KEY_A}\n"));
        assert_eq!(f.policy.check_key("host.example", 22, &key(KEY_A)), Ok(()));
        assert_eq!(
            f.policy.check_key("host.example", 2222, &key(KEY_A)),
            Ok(())
        );
        assert!(matches!(
            f.policy.check_key("host.example", 22, &key(KEY_B)),
            Err(HostKeyError::Mismatch(_))
        ));
        assert!(matches!(
            f.policy.check_key("other.example", 22, &key(KEY_A)),
            Err(HostKeyError::Unknown(_))
        ));
    }

    /// A hashed name is checked whatever its salt's length: OpenSSH's 20
    /// bytes (kept inline) or any other (kept apart), an empty one included.
    #[test]
    fn hashed_names_with_salts_of_any_length() {
        for salt_len in [20, 0, 1, 16, 19, 21, 64] {
            let salt: Vec<u8> = (0..salt_len).map(|i| i as u8 ^ 0x5a).collect();
            let f = policy(&format!(
                "{} {KEY_A}\n{} {KEY_B}\n",
                hashed_with("one.example", &salt),
                hashed_with("two.example", &salt),
            ));
            let what = format!("salt of {salt_len} bytes");
            assert_eq!(
                f.policy.check_key("one.example", 22, &key(KEY_A)),
                Ok(()),
                "{what}"
            );
            assert_eq!(
                f.policy.check_key("two.example", 22, &key(KEY_B)),
                Ok(()),
                "{what}"
            );
            assert!(
                matches!(
                    f.policy.check_key("one.example", 22, &key(KEY_B)),
                    Err(HostKeyError::Mismatch(_))
                ),
                "{what}"
            );
            assert!(
                matches!(
                    f.policy.check_key("three.example", 22, &key(KEY_A)),
                    Err(HostKeyError::Unknown(_))
                ),
                "{what}"
            );
        }
    }

    #[test]
    fn wildcards_and_negation_in_files() {
        let f = policy(&format!("[127.0.77.*]:2222,![127.0.77.9]:2222 {KEY_A}\n"));
        assert_eq!(f.policy.check_key("127.0.77.3", 2222, &key(KEY_A)), Ok(()));
        assert!(matches!(
            f.policy.check_key("127.0.77.9", 2222, &key(KEY_A)),
            Err(HostKeyError::Unknown(_))
        ));
    }

    #[test]
    fn unknown_message_tells_how_to_fix() {
        let f = policy("");
        let Err(HostKeyError::Unknown(msg)) = f.policy.check_key("127.0.0.5", 2222, &key(KEY_A))
        else {
            panic!("expected Unknown");
        };
        let path = f.path.display().to_string();
        assert!(
            msg.starts_with("host key for [127.0.0.5]:2222 is not in known_hosts ("),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("`ssh-keyscan -p 2222 127.0.0.5 >> {path}`")),
            "{msg}"
        );
        assert!(msg.contains("--accept-new-host-keys FILE"), "{msg}");
        assert!(msg.contains("ssh-ed25519 SHA256:"), "{msg}");
    }

    #[test]
    fn mismatch_message_names_the_line() {
        let f = policy(&format!("host.example {KEY_A}\n"));
        let Err(HostKeyError::Mismatch(msg)) = f.policy.check_key("host.example", 22, &key(KEY_B))
        else {
            panic!("expected Mismatch");
        };
        assert!(msg.contains("host key MISMATCH for host.example"), "{msg}");
        assert!(msg.contains("possible man-in-the-middle"), "{msg}");
        assert!(msg.contains(&format!("{}:1", f.path.display())), "{msg}");
    }

    #[test]
    fn revoked_wins_over_a_listing() {
        let f = policy(&format!("host.example {KEY_A}\n@revoked * {KEY_A}\n"));
        assert!(matches!(
            f.policy.check_key("host.example", 22, &key(KEY_A)),
            Err(HostKeyError::Revoked(_))
        ));
    }

    #[test]
    fn bad_lines_are_skipped_but_a_garbage_file_is_an_error() {
        let f = policy(&format!("this is not a key\nhost.example {KEY_A}\n"));
        assert_eq!(f.policy.check_key("host.example", 22, &key(KEY_A)), Ok(()));

        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("kh");
        std::fs::write(&path, "# header\nnot a known_hosts file\n")
            .unwrap_or_else(|e| panic!("{e}"));
        let err = HostKeyPolicy::load(std::slice::from_ref(&path), None).err();
        let Some(KnownHostsError::Malformed { line, .. }) = err else {
            panic!("expected Malformed, got {err:?}");
        };
        assert_eq!(line, 2);
    }

    #[test]
    fn missing_file_is_empty_and_a_directory_is_unreadable() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let missing = dir.path().join("nope");
        assert!(HostKeyPolicy::load(&[missing], None).is_ok());
        let err = HostKeyPolicy::load(&[dir.path().to_path_buf()], None).err();
        assert!(
            matches!(err, Some(KnownHostsError::Unreadable { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn accept_new_records_once_and_still_rejects_changes() {
        let f = policy_with(&format!("known.example {KEY_A}\n"), true);
        let learned = f.path.with_file_name("learned");
        assert_eq!(f.policy.check_key("127.0.0.5", 2222, &key(KEY_A)), Ok(()));
        assert_eq!(f.policy.check_key("127.0.0.5", 2222, &key(KEY_A)), Ok(()));
        // Learned this run: in the host's preferences, and another key is a
        // mismatch that says where the first came from.
        assert_eq!(
            f.policy.preferences("127.0.0.5", 2222).known_algorithms,
            vec![Algorithm::Ed25519]
        );
        let Err(HostKeyError::Mismatch(msg)) = f.policy.check_key("127.0.0.5", 2222, &key(KEY_B))
        else {
            panic!("expected a mismatch");
        };
        assert!(msg.contains("(accepted earlier in this run)"), "{msg}");
        // Other names learned meanwhile are theirs alone.
        assert_eq!(f.policy.check_key("127.0.0.6", 2222, &key(KEY_B)), Ok(()));
        assert_eq!(
            f.policy.preferences("127.0.0.7", 2222),
            HostKeyPreferences::default()
        );
        assert!(matches!(
            f.policy.check_key("known.example", 22, &key(KEY_B)),
            Err(HostKeyError::Mismatch(_))
        ));
        let text = std::fs::read_to_string(&learned).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            text,
            format!("[127.0.0.5]:2222 {KEY_A}\n[127.0.0.6]:2222 {KEY_B}\n")
        );
        // A fresh policy (the next run) reads it strictly.
        let next = HostKeyPolicy::load(&[learned], None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(next.check_key("127.0.0.5", 2222, &key(KEY_A)), Ok(()));
        assert_eq!(
            next.preferences("127.0.0.5", 2222).known_algorithms,
            vec![Algorithm::Ed25519]
        );
    }

    #[test]
    fn accept_new_adds_a_missing_final_newline() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("learned");
        std::fs::write(&path, format!("a.example {KEY_B}")).unwrap_or_else(|e| panic!("{e}"));
        let p = HostKeyPolicy::load(&[], Some(path.clone())).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.check_key("a.example", 22, &key(KEY_B)), Ok(()));
        assert_eq!(p.check_key("b.example", 22, &key(KEY_A)), Ok(()));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(text, format!("a.example {KEY_B}\nb.example {KEY_A}\n"));
    }

    #[test]
    fn certificates() {
        let f = policy(&format!("@cert-authority *.example,10.0.0.* {CA}\n"));
        assert!(
            f.policy
                .preferences("host.example", 22)
                .certificate_authority
        );
        assert!(!f.policy.preferences("host.other", 22).certificate_authority);
        assert_eq!(
            f.policy
                .check_certificate("host.example", 22, &cert(HOST_CERT_A)),
            Ok(())
        );
        assert_eq!(
            f.policy
                .check_certificate("10.0.0.1", 22, &cert(HOST_CERT_A)),
            Ok(())
        );
        let wrong_principal = f
            .policy
            .check_certificate("other.example", 22, &cert(HOST_CERT_A));
        assert!(
            matches!(&wrong_principal, Err(HostKeyError::Certificate(m)) if m.contains("not for \"other.example\"")),
            "{wrong_principal:?}"
        );
        assert!(matches!(
            f.policy.check_certificate("host.example", 22, &cert(USER_CERT_B)),
            Err(HostKeyError::Certificate(m)) if m.contains("user certificate")
        ));
        assert!(matches!(
            f.policy.check_certificate("host.example", 22, &cert(EXPIRED_CERT_B)),
            Err(HostKeyError::Certificate(m)) if m.contains("not valid now")
        ));
        // The CA line's pattern does not cover this host: fall back to the plain key.
        assert!(matches!(
            f.policy
                .check_certificate("10.0.1.1", 22, &cert(HOST_CERT_A)),
            Err(HostKeyError::Unknown(_))
        ));
    }

    #[test]
    fn certificate_from_an_untrusted_ca_or_revoked_ca() {
        let f = policy(&format!("@cert-authority * {KEY_B}\n"));
        assert!(matches!(
            f.policy.check_certificate("host.example", 22, &cert(HOST_CERT_A)),
            Err(HostKeyError::Certificate(m)) if m.contains("not a @cert-authority")
        ));
        let f = policy(&format!("@cert-authority * {CA}\n@revoked nowhere {CA}\n"));
        assert!(matches!(
            f.policy
                .check_certificate("host.example", 22, &cert(HOST_CERT_A)),
            Err(HostKeyError::Revoked(_))
        ));
    }

    /// `ssh-keygen -t ecdsa -b 384`: a third key type.
    const KEY_EC384: &str = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBBqJy3rUaEkBbEOq9YLC8vXlLOK5CJ9eYokE4/C211xcfYoYbbM74LgnNny6LOK8q8TRYMJbzU+3FAXKHV5zI11ejJMoO1Y/d1LGlqIR1AcLanhCDRD7YtC8KsZvIJUW+g==";
    const KEY_EC: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAndU9ngidgSsq1B27nI9pbvvKS6MjjEag+Rqnrw3oUpjv4d6kxYaWdRrcOnNZak0TQCSQocktbJXmbWr29l4vE=";

    /// `|1|salt|hash` of `name` as `ssh-keygen -H` writes it.
    fn hashed_with(name: &str, salt: &[u8]) -> String {
        use base64::Engine;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, salt);
        let tag = ring::hmac::sign(&key, name.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD;
        format!("|1|{}|{}", b64.encode(salt), b64.encode(tag.as_ref()))
    }

    /// [`hashed_with`] a salt of its own for each `seed`.
    fn hashed(name: &str, seed: u32) -> String {
        let mut salt = [0u8; 20];
        salt[..4].copy_from_slice(&seed.to_le_bytes());
        hashed_with(name, &salt)
    }

    #[test]
    fn hashed_helper_agrees_with_ssh_keygen() {
        use base64::Engine;
        let salt = HASHED_22
            .split('|')
            .nth(2)
            .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
            .unwrap_or_default();
        assert_eq!(hashed_with("host.example", &salt), HASHED_22);
    }

    #[test]
    fn index_keeps_file_order_across_plain_wildcard_and_hashed_lines() {
        // The host is listed by a wildcard, a hashed line and a literal name,
        // in that order: the preferences follow the file, not the index.
        let f = policy(&format!(
            "[*.example]:2222 {KEY_EC384}\n{} {KEY_EC}\n[host.example]:2222 {KEY_B}\n",
            hashed("[host.example]:2222", 1)
        ));
        let p384 = key(KEY_EC384).algorithm();
        let prefs = f.policy.preferences("host.example", 2222);
        assert_eq!(
            prefs.known_algorithms,
            vec![p384.clone(), Algorithm::Ed25519]
        );
        // A key no line holds: the check reads every line, and the
        // preferences then count the hashed one too, in its place.
        assert!(matches!(
            f.policy.check_key("host.example", 2222, &key(KEY_A)),
            Err(HostKeyError::Mismatch(_))
        ));
        let prefs = f.policy.preferences("host.example", 2222);
        assert_eq!(
            prefs.known_algorithms,
            vec![p384, key(KEY_EC).algorithm(), Algorithm::Ed25519]
        );
        for k in [KEY_EC, KEY_EC384, KEY_B] {
            assert_eq!(f.policy.check_key("host.example", 2222, &key(k)), Ok(()));
        }
        // Port 22 is another name: only the literal port-2222 lines were for it.
        assert!(matches!(
            f.policy.check_key("host.example", 22, &key(KEY_B)),
            Err(HostKeyError::Unknown(_))
        ));
        assert_eq!(
            f.policy.preferences("host.example", 22),
            HostKeyPreferences::default()
        );
    }

    /// Lines are kept on file for the sweep, not in memory: every kind of
    /// line comes back as it was parsed, and a decoded line stays small.
    #[test]
    fn lines_are_kept_on_file_and_come_back_whole() {
        let text = format!(
            "host.example {KEY_A}\n\
             a-name-longer-than-twenty-four-bytes.example.org {KEY_EC}\n\
             web-*.corp,!web-9.corp,[db.corp]:2222 {KEY_B}\n\
             {} {KEY_EC384}\n\
             |1|c2FsdA==|BMHvqcEXuA6Ez5NEh3OJzNs9K9o= {KEY_A}\n\
             @cert-authority *.example {CA}\n\
             @revoked * {KEY_B}\n",
            hashed("[host.example]:2222", 7)
        );
        let mut parsed = Vec::new();
        parse_file(0, Path::new("k"), &text, &mut |l| parsed.push(l)).unwrap();
        assert_eq!(parsed.len(), 7);
        assert!(
            matches!(parsed[4].names, Names::HashedOther(_)),
            "a 4-byte salt"
        );
        let mut record = Vec::new();
        for line in &parsed {
            record.clear();
            line.encode(&mut record);
            assert_eq!(&Line::decode(&record).unwrap(), line);
            // Cut anywhere: an error. Any byte changed: a line or an error.
            for cut in 0..record.len() {
                assert!(
                    Line::decode(&record[..cut]).is_err(),
                    "{line:?} cut at {cut}"
                );
            }
            for at in 0..record.len() {
                for byte in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                    let mut bad = record.clone();
                    bad[at] = byte;
                    let _ = Line::decode(&bad);
                }
            }
        }
        let f = policy(&text);
        assert_eq!(f.policy.lines.len(), 7);
        assert!(f.policy.lines.blocks.file.is_some());
        assert!(f.policy.lines.blocks.memory.is_empty());
        assert_eq!(f.policy.lines.get_all(&[0, 1, 2, 3, 4, 5, 6]), parsed);
        assert_eq!(f.policy.check_key("host.example", 22, &key(KEY_A)), Ok(()));
        // A name up to 24 bytes is in the line: the names take no more room
        // than a boxed string's pointer and length and a tag.
        assert!(
            size_of::<Names>() <= 24,
            "Names is {} bytes",
            size_of::<Names>()
        );
        assert!(
            size_of::<Line>() <= 80,
            "Line is {} bytes",
            size_of::<Line>()
        );
        let ed = key(KEY_A);
        let stored = StoredKey::of(ed.key_data());
        assert!(matches!(stored, Some(StoredKey::Ed25519(_))));
        assert_eq!(stored.and_then(|k| k.data()).as_ref(), Some(ed.key_data()));
        let ec = key(KEY_EC);
        let stored = StoredKey::of(ec.key_data());
        assert!(matches!(stored, Some(StoredKey::Encoded(_))));
        assert_eq!(
            stored.as_ref().and_then(|k| k.algorithm()),
            Some(ec.algorithm())
        );
        assert_eq!(stored.and_then(|k| k.data()).as_ref(), Some(ec.key_data()));
    }

    /// The lines' temporary file cut short under the sweep: hosts its lines
    /// would trust are refused (never the reverse), and revoked keys stay
    /// revoked (they are in memory).
    #[test]
    fn lines_that_cannot_be_read_back_trust_nothing() {
        let mut text = String::new();
        for i in 0..300 {
            let _ = writeln!(text, "host-{i}.example {KEY_A}");
        }
        let _ = writeln!(text, "@revoked * {KEY_B}");
        let f = policy(&text);
        assert_eq!(
            f.policy.check_key("host-299.example", 22, &key(KEY_A)),
            Ok(())
        );
        f.policy
            .lines
            .blocks
            .file
            .as_ref()
            .unwrap()
            .set_len(0)
            .unwrap();
        assert!(!f
            .policy
            .lines
            .failed
            .load(std::sync::atomic::Ordering::Relaxed));
        for host in ["host-0.example", "host-299.example"] {
            assert!(
                matches!(
                    f.policy.check_key(host, 22, &key(KEY_A)),
                    Err(HostKeyError::Unknown(_))
                ),
                "{host}"
            );
        }
        assert!(matches!(
            f.policy.check_key("host-1.example", 22, &key(KEY_B)),
            Err(HostKeyError::Revoked(m)) if m.contains(":301")
        ));
        assert!(
            f.policy
                .lines
                .failed
                .load(std::sync::atomic::Ordering::Relaxed),
            "logged"
        );
    }

    /// Hashed lines are found by the key a host presents, not by a pass
    /// over all of them; a host whose check fails gets the full pass, its
    /// message names the hashed lines, and its next preferences ask for the
    /// key types they hold (what the transport connects again with). Once a
    /// key is trusted, the preferences are the quick ones again.
    #[test]
    fn hashed_lines_are_found_by_key_and_read_whole_only_when_a_check_fails() {
        let f = policy(&format!(
            "{} {KEY_EC}\n{} {KEY_A}\n{} {KEY_A}\n",
            hashed("[host.example]:2222", 1),
            hashed("other.example", 2),
            hashed("twin.example", 3),
        ));
        let ec = key(KEY_EC).algorithm();
        assert_eq!(
            f.policy.preferences("host.example", 2222),
            HostKeyPreferences::default()
        );
        // KEY_A is in the file, for two other hosts.
        let Err(HostKeyError::Mismatch(msg)) =
            f.policy.check_key("host.example", 2222, &key(KEY_A))
        else {
            panic!("expected a mismatch");
        };
        assert!(msg.contains("known_hosts:1"), "{msg}");
        assert_eq!(
            f.policy.preferences("host.example", 2222).known_algorithms,
            vec![ec.clone()]
        );
        assert_eq!(
            f.policy.check_key("host.example", 2222, &key(KEY_EC)),
            Ok(())
        );
        assert_eq!(
            f.policy.preferences("host.example", 2222),
            HostKeyPreferences::default()
        );
        // Two lines hold KEY_A: each host is trusted by its own.
        assert_eq!(f.policy.check_key("other.example", 22, &key(KEY_A)), Ok(()));
        assert_eq!(f.policy.check_key("twin.example", 22, &key(KEY_A)), Ok(()));
        assert!(matches!(
            f.policy.check_key("other.example", 22, &key(KEY_EC)),
            Err(HostKeyError::Mismatch(_))
        ));
        assert!(matches!(
            f.policy.check_key("new.example", 22, &key(KEY_A)),
            Err(HostKeyError::Unknown(_))
        ));
        // The same name on another port is another name.
        assert!(matches!(
            f.policy.check_key("host.example", 22, &key(KEY_EC)),
            Err(HostKeyError::Unknown(_))
        ));
    }

    #[test]
    fn index_respects_negations_next_to_literal_names() {
        let f = policy(&format!(
            "a.corp,b.corp,!b.corp {KEY_A}\nhost.corp,!*.corp {KEY_A}\n!lonely {KEY_A}\nc.corp,c.corp {KEY_B}\n"
        ));
        assert_eq!(f.policy.check_key("a.corp", 22, &key(KEY_A)), Ok(()));
        // Listed literally, and refused by a negation on the same line.
        for host in ["b.corp", "host.corp", "lonely"] {
            assert!(
                matches!(
                    f.policy.check_key(host, 22, &key(KEY_A)),
                    Err(HostKeyError::Unknown(_))
                ),
                "{host}"
            );
        }
        // A name listed twice on one line is one entry.
        let Err(HostKeyError::Mismatch(msg)) = f.policy.check_key("c.corp", 22, &key(KEY_A)) else {
            panic!("expected Mismatch");
        };
        assert_eq!(
            msg.matches(&format!("{}:4", f.path.display())).count(),
            1,
            "{msg}"
        );
    }

    #[test]
    fn revoked_applies_whatever_the_pattern_and_cert_authority_by_literal_name() {
        let f = policy(&format!(
            "host.example {KEY_A}\n@revoked nowhere.example {KEY_A}\n@cert-authority host.example {CA}\n"
        ));
        let revoked = f.policy.check_key("host.example", 22, &key(KEY_A));
        assert!(
            matches!(&revoked, Err(HostKeyError::Revoked(m)) if m.contains(&format!("{}:2", f.path.display()))),
            "{revoked:?}"
        );
        assert!(
            f.policy
                .preferences("host.example", 22)
                .certificate_authority
        );
        assert!(
            !f.policy
                .preferences("other.example", 22)
                .certificate_authority
        );
        // HOST_CERT_A certifies KEY_A, which is revoked.
        assert!(matches!(
            f.policy
                .check_certificate("host.example", 22, &cert(HOST_CERT_A)),
            Err(HostKeyError::Revoked(_))
        ));
        let f = policy(&format!("@cert-authority host.example {CA}\n"));
        assert_eq!(
            f.policy
                .check_certificate("host.example", 22, &cert(HOST_CERT_A)),
            Ok(())
        );
    }

    #[test]
    fn a_hundred_thousand_hashed_lines() {
        let mut text = String::with_capacity(100_000 * 150);
        for i in 0..100_000u32 {
            let _ = writeln!(
                text,
                "{} {KEY_B}",
                hashed(&format!("[10.1.{}.{}]:2222", i / 250, i % 250), i)
            );
        }
        let _ = writeln!(text, "{} {KEY_A}", hashed("[target.example]:2222", 100_000));
        let f = policy(&text);
        assert_eq!(f.policy.lines.len(), 100_001);
        // The last line, the first, one in the middle, each found by its own salt.
        assert_eq!(
            f.policy.check_key("target.example", 2222, &key(KEY_A)),
            Ok(())
        );
        assert_eq!(f.policy.check_key("10.1.0.0", 2222, &key(KEY_B)), Ok(()));
        assert_eq!(f.policy.check_key("10.1.200.7", 2222, &key(KEY_B)), Ok(()));
        let Err(HostKeyError::Mismatch(msg)) =
            f.policy.check_key("target.example", 2222, &key(KEY_B))
        else {
            panic!("expected Mismatch");
        };
        assert!(
            msg.contains(&format!("{}:100001", f.path.display())),
            "{msg}"
        );
        assert!(matches!(
            f.policy.check_key("10.1.0.0", 22, &key(KEY_B)),
            Err(HostKeyError::Unknown(_))
        ));
        // Preferences then the key check: the second lookup is remembered.
        let prefs = f.policy.preferences("target.example", 2222);
        assert_eq!(prefs.known_algorithms, vec![Algorithm::Ed25519]);
        assert_eq!(
            lock(&f.policy.matched)
                .get("[target.example]:2222")
                .map(|l| l.to_vec()),
            Some(vec![100_000])
        );
        // Trusted: the host is done with its lookups, and what is remembered
        // stays bounded by the hosts in start-up, not the fleet.
        assert_eq!(
            f.policy.check_key("target.example", 2222, &key(KEY_A)),
            Ok(())
        );
        // Only the refused host is still remembered.
        assert_eq!(
            lock(&f.policy.matched).keys().collect::<Vec<_>>(),
            vec!["10.1.0.0"]
        );
    }

    #[test]
    fn preferences_list_known_algorithms() {
        let f = policy(&format!("h {KEY_A}\n@cert-authority h {CA}\n"));
        let prefs = f.policy.preferences("h", 22);
        assert_eq!(prefs.known_algorithms, vec![Algorithm::Ed25519]);
        assert!(prefs.certificate_authority);
        assert_eq!(f.policy.preferences("x", 22), HostKeyPreferences::default());
    }

    /// A name written twice on one line counts that line once; the messages
    /// describe each stored key as it was written (algorithm and fingerprint).
    #[test]
    fn a_name_twice_on_a_line_is_one_line_and_messages_keep_the_keys() {
        let f = policy(&format!(
            "host.example,HOST.example,other {KEY_A}\nhost.example {KEY_EC}\n"
        ));
        let prefs = f.policy.preferences("host.example", 22);
        assert_eq!(
            prefs.known_algorithms,
            vec![
                Algorithm::Ed25519,
                Algorithm::Ecdsa {
                    curve: russh::keys::EcdsaCurve::NistP256
                }
            ]
        );
        assert_eq!(f.policy.check_key("host.example", 22, &key(KEY_A)), Ok(()));
        let Err(HostKeyError::Mismatch(msg)) = f.policy.check_key("other", 22, &key(KEY_B)) else {
            panic!("expected Mismatch");
        };
        let want_a = describe(key(KEY_A).key_data());
        assert_eq!(msg.matches(&want_a).count(), 1, "{msg}");
        assert!(msg.contains(&format!("{}:1", f.path.display())), "{msg}");
        assert!(!msg.contains(":2"), "{msg}");
    }
}
