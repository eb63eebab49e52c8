//! Offline bundles: one directory per host holding the raw outputs of the
//! documented probe commands, for hosts on air-gapped networks that users reach
//! with their own tooling. The files are analysed with the same parsers as a
//! live sweep; `docs/offline-bundles.md` says which command makes which file.
//!
//! ```text
//! DIR/<any>/host.yaml      name, os (windows|macos|linux), address, labels
//! DIR/<any>/windows.json   the Windows probe's JSON (UTF-8 or UTF-16 with BOM)
//! DIR/<any>/macos.txt      the macOS probe's output;  linux.txt: the Linux one
//! ...                      or single command outputs (each family's
//!                          `bundle_files` in the probe registry)
//! ```
//!
//! Every file is untrusted: only regular files inside the bundle are opened
//! ([`super::bundle_dir`]: no link out of it, no FIFO, socket or device), read
//! up to a size limit and within the host's deadline ([`ReadLimit`]), parsed
//! without panics; what cannot be read becomes a warning naming the file. A
//! bundle without any known file is an error (the host was not scanned),
//! never a clean host.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;

use super::bundle_dir::{BundleDir, Entry, Refused, Want};
use super::completeness::{judge_lines, SectionState};
use super::linux::sections::{clip, warning};
use super::registry::{probe, BundleRead};
use super::{Observations, PathEntry, PathKind};
use crate::os::OsFamily;

/// The per-bundle description file.
pub const HOST_FILE: &str = "host.yaml";

/// Largest file read from a bundle; bigger files are cut and reported.
pub const MAX_FILE: u64 = 64 * 1024 * 1024;

/// Largest host.yaml read (a few lines in practice).
const MAX_HOST_FILE: u64 = 1024 * 1024;

/// Files are read in chunks of this size, the read limit checked between them.
const CHUNK: usize = 1024 * 1024;

/// Most plist files read from a plist directory, and most names looked at.
const MAX_PLISTS: usize = 2000;
const MAX_DIR_NAMES: usize = 100_000;

/// When the reading of one bundle must stop: the host's deadline passed, or
/// the sweep stopped waiting for it (an interrupt, or the deadline seen
/// first by the sweep).
///
/// Why: the sweep reads bundles on a blocking thread, which cannot be
/// cancelled from outside; a read that outlived its host kept the process
/// from exiting (the runtime waits for blocking threads). So the read checks
/// this between files, plist files and chunks of a file, and every open is
/// non-blocking (see [`super::bundle_dir`]).
#[derive(Debug, Clone, Default)]
pub struct ReadLimit {
    deadline: Option<Instant>,
    abandoned: Arc<AtomicBool>,
}

/// Why a read stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    #[error("the host timeout passed")]
    Deadline,
    #[error("the sweep stopped waiting for it")]
    Abandoned,
}

impl ReadLimit {
    /// A read that stops at `deadline` (or when abandoned).
    pub fn until(deadline: Instant) -> ReadLimit {
        ReadLimit {
            deadline: Some(deadline),
            abandoned: Arc::default(),
        }
    }

    /// Tells the read (on whichever thread) to stop at its next check.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }

    fn check(&self) -> Result<(), Stopped> {
        if self.abandoned.load(Ordering::Relaxed) {
            Err(Stopped::Abandoned)
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Err(Stopped::Deadline)
        } else {
            Ok(())
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error("cannot read offline bundle directory {}: {source}", path.display())]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    HostFile { path: PathBuf, message: String },
    #[error("no offline bundles in {} (each host is a directory with a host.yaml)", .0.display())]
    Empty(PathBuf),
    #[error("two bundles name the host `{name}`: {} and {}", first.display(), second.display())]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("bundle {} holds none of the files fleetsweep reads for {os} hosts ({files}); see docs/offline-bundles.md", dir.display())]
    NoFiles {
        dir: PathBuf,
        os: OsFamily,
        files: String,
    },
    #[error("bundle {}: no file could be read ({refused})", dir.display())]
    Refused { dir: PathBuf, refused: String },
    #[error("reading bundle {} stopped: {why}", dir.display())]
    Stopped { dir: PathBuf, why: Stopped },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Option<String>,
    os: String,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// One host's bundle, as described by its `host.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub dir: PathBuf,
    /// `name:` of host.yaml, else the directory name.
    pub name: String,
    /// `os:` of host.yaml (`windows`, `macos` or `linux`).
    pub os: OsFamily,
    pub address: Option<String>,
    pub labels: fleetsweep_exporters::Labels,
}

/// Finds the bundles in `dir` (each subdirectory with a host.yaml; `dir`
/// itself when it is one bundle), sorted by host name.
pub fn load_bundles(dir: &Path) -> Result<Vec<Bundle>, OfflineError> {
    let dir_err = |source| OfflineError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    // A host.yaml of any kind marks a bundle: one that cannot be read (a
    // FIFO, a link out of the bundle) is an error, not a directory skipped.
    let has_host_file = |d: &Path| d.join(HOST_FILE).symlink_metadata().is_ok();
    let mut dirs = Vec::new();
    if has_host_file(dir) {
        dirs.push(dir.to_path_buf());
    } else {
        for e in std::fs::read_dir(dir).map_err(dir_err)? {
            let p = e.map_err(dir_err)?.path();
            if p.is_dir() && has_host_file(&p) {
                dirs.push(p);
            }
        }
    }
    if dirs.is_empty() {
        return Err(OfflineError::Empty(dir.to_path_buf()));
    }
    let mut out: Vec<Bundle> = Vec::new();
    for d in dirs {
        let b = read_host_file(&d)?;
        if let Some(prev) = out.iter().find(|p| p.name == b.name) {
            return Err(OfflineError::Duplicate {
                name: b.name,
                first: prev.dir.clone(),
                second: d,
            });
        }
        out.push(b);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn read_host_file(dir: &Path) -> Result<Bundle, OfflineError> {
    let path = dir.join(HOST_FILE);
    let err = |message: String| OfflineError::HostFile {
        path: path.clone(),
        message,
    };
    let bundle = BundleDir::open(dir).map_err(|e| err(e.to_string()))?;
    let entry = match bundle.entry(HOST_FILE, Want::File) {
        Ok(Some(e)) => e,
        Ok(None) => return Err(err("missing".to_string())),
        Err(why) => return Err(err(format!("not read: {why}"))),
    };
    let (bytes, cut) = read_capped(&entry, MAX_HOST_FILE, &ReadLimit::default())
        .map_err(|e| err(format!("cannot read: {e}")))?;
    if cut {
        return Err(err(format!("larger than {MAX_HOST_FILE} bytes")));
    }
    let text = decode_text(&bytes);
    let raw: RawHost = crate::diag::parse_yaml(&path, &text).map_err(|d| {
        err(match d.line {
            0 => d.message,
            l => format!("line {l}, column {}: {}", d.column, d.message),
        })
    })?;
    let Ok(family) = raw.os.trim().to_ascii_lowercase().parse::<OsFamily>() else {
        return Err(err(format!(
            "os `{}` is not one of windows, macos, linux",
            raw.os
        )));
    };
    let name = match raw.name {
        Some(n) if !n.trim().is_empty() => n.trim().to_string(),
        _ => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "offline".to_string()),
    };
    Ok(Bundle {
        dir: dir.to_path_buf(),
        name,
        os: family,
        address: raw.address,
        labels: fleetsweep_exporters::labels_of(raw.labels),
    })
}

/// What reading one bundle file gave.
enum Read_ {
    Bytes(Vec<u8>),
    Absent,
    /// Not read: a warning says why.
    Refused,
}

/// Reads the bundle file `label` (an entry opened from the bundle): up to
/// [`MAX_FILE`], with a warning when cut or unreadable.
fn read_entry(
    entry: Result<Option<Entry>, Refused>,
    label: &str,
    obs: &mut Observations,
    limit: &ReadLimit,
) -> Result<Read_, Stopped> {
    let entry = match entry {
        Ok(Some(e)) => e,
        Ok(None) => return Ok(Read_::Absent),
        Err(why) => {
            obs.warnings
                .push(warning(label, format!("not read: {why}")));
            return Ok(Read_::Refused);
        }
    };
    match read_capped(&entry, MAX_FILE, limit) {
        Ok((bytes, cut)) => {
            if cut {
                obs.warnings.push(warning(
                    label,
                    format!("file cut at {MAX_FILE} bytes; findings may be incomplete"),
                ));
            }
            Ok(Read_::Bytes(bytes))
        }
        Err(ReadError::Stopped(why)) => Err(why),
        Err(ReadError::Io(e)) => {
            obs.warnings
                .push(warning(label, format!("cannot read: {e}")));
            Ok(Read_::Refused)
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("{0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Stopped(Stopped),
}

/// Up to `max` bytes of an opened file, in chunks with `limit` checked
/// between them; true when there was more.
fn read_capped(entry: &Entry, max: u64, limit: &ReadLimit) -> Result<(Vec<u8>, bool), ReadError> {
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    let mut file = (&entry.file).take(max + 1);
    loop {
        limit.check().map_err(ReadError::Stopped)?;
        match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    let cut = bytes.len() as u64 > max;
    bytes.truncate(usize::try_from(max).unwrap_or(usize::MAX));
    Ok((bytes, cut))
}

/// Text from bytes: UTF-16LE/BE with BOM, else UTF-8 (lossy, BOM stripped).
pub fn decode_text(bytes: &[u8]) -> String {
    let utf16 = |le: bool| {
        let units: Vec<u16> = bytes[2..]
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16_lossy(&units)
    };
    match bytes {
        [0xFF, 0xFE, ..] => utf16(true),
        [0xFE, 0xFF, ..] => utf16(false),
        _ => String::from_utf8_lossy(bytes)
            .trim_start_matches('\u{feff}')
            .to_string(),
    }
}

/// The nonce of a saved probe run: from its first marker line.
pub fn nonce_of(output: &str) -> Option<&str> {
    let i = output.find("@@fleetsweep:")?;
    let rest = &output[i + "@@fleetsweep:".len()..];
    let end = rest.find(':')?;
    let n = &rest[..end];
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(n)
}

/// Reads every file of the bundle in `dir` that `family`'s probe knows
/// ([`crate::probes::registry::Probe::bundle_files`]) into one set of
/// observations. Only regular files inside the bundle are read (see
/// [`super::bundle_dir`]); anything else is a warning naming the file. Stops
/// when `limit` says so. Blocking: async callers run it on a blocking thread.
pub fn read_bundle(
    dir: &Path,
    family: OsFamily,
    limit: &ReadLimit,
) -> Result<Observations, OfflineError> {
    let stopped = |why| OfflineError::Stopped {
        dir: dir.to_path_buf(),
        why,
    };
    let bundle = BundleDir::open(dir).map_err(|source| OfflineError::Dir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut obs = Observations::default();
    let mut found = false;
    let mut refused = Vec::new();
    let files = probe(family).bundle_files;
    for file in files {
        limit.check().map_err(stopped)?;
        let read = match file.read {
            BundleRead::Text(parse) => {
                let entry = bundle.entry(file.name, Want::File);
                match read_entry(entry, file.name, &mut obs, limit).map_err(stopped)? {
                    Read_::Bytes(b) => {
                        parse(&decode_text(&b), &mut obs);
                        Read_::Bytes(Vec::new())
                    }
                    other => other,
                }
            }
            BundleRead::PlistDir(parse) => {
                read_plist_dir(&bundle, file.name, &mut obs, parse, limit).map_err(stopped)?
            }
        };
        match read {
            Read_::Bytes(_) => found = true,
            Read_::Refused => refused.push(file.name),
            Read_::Absent => {}
        }
    }
    if !found && !refused.is_empty() {
        let why: Vec<String> = obs
            .warnings
            .iter()
            .map(|w| format!("{}: {}", w.section, w.message))
            .collect();
        return Err(OfflineError::Refused {
            dir: dir.to_path_buf(),
            refused: why.join("; "),
        });
    }
    if !found {
        let files: Vec<&str> = files.iter().map(|f| f.name).collect();
        return Err(OfflineError::NoFiles {
            dir: dir.to_path_buf(),
            os: family,
            files: files.join(", "),
        });
    }
    if obs.os.is_none() {
        obs.os = Some(fleetsweep_exporters::OsInfo {
            family: family.as_str().to_string(),
            name: None,
            version: None,
        });
    }
    Ok(obs)
}

/// A saved run of an `sh` probe script (`linux.txt`, `macos.txt`), parsed with
/// the nonce of its own markers.
pub(super) fn saved_run(
    text: &str,
    obs: &mut Observations,
    file: &str,
    script: &str,
    parse: fn(&str, &str) -> Observations,
) {
    match nonce_of(text) {
        Some(n) => obs.merge(parse(text, n)),
        None => {
            let why = format!("no probe markers: not an output of the {script} probe script");
            obs.section(file, (SectionState::Failed, Some(why.clone())));
            obs.warnings.push(warning(file, why));
        }
    }
}

/// `paths.txt`: one path a line (`find` output), or the probe's `d<TAB>path` form.
/// A path already observed (by an earlier file or line) is kept once.
pub(super) fn paths_list(text: &str, obs: &mut Observations) {
    let mut lines = 0usize;
    let mut read = 0usize;
    // A set, not a scan of the list per line: 100,000 lines took ~50 s.
    let mut seen: HashSet<&str> = obs.paths.iter().map(|p| p.path.as_str()).collect();
    let mut found = Vec::new();
    for line in text.lines().take(100_000) {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        lines += 1;
        let (kind, path) = match line.split_once('\t') {
            Some(("d", p)) => (PathKind::Dir, p),
            Some(("f", p)) => (PathKind::File, p),
            Some(("l", p)) => (PathKind::Link, p),
            Some((_, p)) => (PathKind::Other, p),
            None => (PathKind::Other, line),
        };
        if path.starts_with('/') {
            read += 1;
        }
        if path.starts_with('/') && seen.insert(path) {
            found.push(PathEntry {
                path: path.to_string(),
                kind,
            });
        }
    }
    obs.paths.extend(found);
    // `find` prints absolute paths only; an empty file is a host without them.
    obs.section(
        "paths",
        judge_lines(lines, read, lines.saturating_sub(read), true),
    );
}

/// Each file of the plist directory `name` (by name, at most [`MAX_PLISTS`]).
fn read_plist_dir(
    bundle: &BundleDir,
    name: &str,
    obs: &mut Observations,
    each: fn(&[u8], &str, &mut Observations),
    limit: &ReadLimit,
) -> Result<Read_, Stopped> {
    let dir = match bundle.entry(name, Want::Dir) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok(Read_::Absent),
        Err(why) => {
            obs.warnings.push(warning(name, format!("not read: {why}")));
            return Ok(Read_::Refused);
        }
    };
    let (mut names, more) = match bundle.names(&dir, MAX_DIR_NAMES) {
        Ok(n) => n,
        Err(e) => {
            obs.warnings
                .push(warning(name, format!("cannot list: {e}")));
            return Ok(Read_::Refused);
        }
    };
    names.sort();
    if more || names.len() > MAX_PLISTS {
        obs.warnings.push(warning(
            name,
            format!("more than {MAX_PLISTS} files: only the first {MAX_PLISTS} by name were read"),
        ));
    }
    for f in names.iter().take(MAX_PLISTS) {
        limit.check()?;
        let file_name = f.to_string_lossy();
        let label = format!("{name}/{}", clip(&file_name));
        let entry = bundle.entry_of(&dir, f, Want::File);
        if let Read_::Bytes(b) = read_entry(entry, &label, obs, limit)? {
            each(&b, &file_name, obs);
        }
    }
    Ok(Read_::Bytes(Vec::new()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn text_encodings() {
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("{\"a\":1}".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode_text(&le), "{\"a\":1}");
        assert_eq!(decode_text(b"\xEF\xBB\xBFabc"), "abc");
        assert_eq!(decode_text(&[0xFF, 0xFE, 0x41]), "");
        assert_eq!(decode_text(b""), "");
    }

    #[test]
    fn a_bundle_without_known_files_names_its_family_s_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        let want = [
            (OsFamily::Linux, "linux.txt, os-release, dpkg-query.txt, rpm-qa.txt, kesl-control-app-info.txt, paths.txt"),
            (OsFamily::Windows, "windows.json, Get-Service.xml, Win32_OperatingSystem.xml, uninstall.xml"),
            (OsFamily::Macos, "macos.txt, sw_vers.txt, pkgutil-pkgs.txt, launchctl-list.txt, systemextensionsctl-list.txt, kextstat.txt, codesign.txt, Info.plist, LaunchDaemons, paths.txt"),
        ];
        for (family, files) in want {
            let err = read_bundle(dir.path(), family, &ReadLimit::default())
                .unwrap_err()
                .to_string();
            assert!(
                err.ends_with(&format!(
                    "holds none of the files fleetsweep reads for {family} hosts ({files}); see docs/offline-bundles.md"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn a_bundle_reads_its_files_in_table_order() {
        let dir = tempfile::tempdir().unwrap();
        // sw_vers.txt (read after macos.txt) sets the OS; paths.txt adds paths.
        std::fs::write(
            dir.path().join("sw_vers.txt"),
            "ProductName:\tmacOS\nProductVersion:\t14.5\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("macos.txt"), "no markers").unwrap();
        std::fs::write(dir.path().join("paths.txt"), "/opt/x\nrelative\n").unwrap();
        let obs = read_bundle(dir.path(), OsFamily::Macos, &ReadLimit::default()).unwrap();
        assert_eq!(obs.os.unwrap().name.as_deref(), Some("macOS"));
        assert_eq!(obs.paths.len(), 1);
        assert_eq!(
            obs.warnings[0].message,
            "no probe markers: not an output of the macOS probe script"
        );
    }

    #[test]
    fn paths_list_keeps_each_path_once_across_files() {
        let mut obs = Observations::default();
        paths_list("d\t/opt/x\n", &mut obs);
        paths_list("/opt/x\n/opt/y\nf\t/opt/y\n/opt/x/z\n", &mut obs);
        let got: Vec<(&str, PathKind)> = obs
            .paths
            .iter()
            .map(|p| (p.path.as_str(), p.kind))
            .collect();
        assert_eq!(
            got,
            [
                ("/opt/x", PathKind::Dir),
                ("/opt/y", PathKind::Other),
                ("/opt/x/z", PathKind::Other)
            ]
        );
    }

    #[test]
    fn a_read_stops_at_its_deadline_or_when_abandoned() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("os-release"), "NAME=x\n").unwrap();
        let past = ReadLimit::until(Instant::now());
        let err = read_bundle(dir.path(), OsFamily::Linux, &past).unwrap_err();
        assert!(
            matches!(
                err,
                OfflineError::Stopped {
                    why: Stopped::Deadline,
                    ..
                }
            ),
            "{err}"
        );
        let limit = ReadLimit::until(Instant::now() + std::time::Duration::from_secs(600));
        assert!(read_bundle(dir.path(), OsFamily::Linux, &limit).is_ok());
        limit.clone().abandon();
        let err = read_bundle(dir.path(), OsFamily::Linux, &limit).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "reading bundle {} stopped: the sweep stopped waiting for it",
                dir.path().display()
            )
        );
    }

    #[test]
    fn nonce_from_saved_output() {
        assert_eq!(nonce_of("\n@@fleetsweep:abc123:begin x\n"), Some("abc123"));
        assert_eq!(nonce_of("@@fleetsweep:a b:begin"), None);
        assert_eq!(nonce_of("nothing"), None);
    }

    /// Each broken file the outside tester found: the section it answers for
    /// is not read, so the host cannot be clean.
    #[test]
    fn broken_bundle_files_fail_their_sections() {
        use crate::probes::completeness::{verdict, SectionState::*};
        let random: Vec<u8> = (0u32..4096)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let cases: &[(
            OsFamily,
            &str,
            &[u8],
            &str,
            crate::probes::completeness::SectionState,
        )] = &[
            (OsFamily::Linux, "dpkg-query.txt", b"", "dpkg", Empty),
            (OsFamily::Linux, "dpkg-query.txt", &random, "dpkg", Failed),
            (OsFamily::Linux, "rpm-qa.txt", &random, "rpm", Failed),
            (OsFamily::Linux, "os-release", &random, "os-release", Failed),
            (OsFamily::Linux, "paths.txt", &random, "paths", Failed),
            (
                OsFamily::Linux,
                "linux.txt",
                b"@@fleetsweep:abc:done\n",
                "probe",
                Read,
            ),
            (OsFamily::Macos, "sw_vers.txt", &random, "sw-vers", Failed),
            (OsFamily::Macos, "codesign.txt", &random, "codesign", Failed),
            (OsFamily::Macos, "kextstat.txt", &random, "kexts", Failed),
            (
                OsFamily::Macos,
                "pkgutil-pkgs.txt",
                &random,
                "pkgutil",
                Failed,
            ),
            (
                OsFamily::Windows,
                "windows.json",
                br#"{"fleetsweep":1,"uninstall":5,"services":[]}"#,
                "uninstall",
                Failed,
            ),
        ];
        for (family, file, bytes, section, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join(file), bytes).unwrap();
            let obs = read_bundle(dir.path(), *family, &ReadLimit::default()).unwrap();
            let got = obs.sections.get(*section).map(|s| s.state);
            assert_eq!(got, Some(*want), "{file}: {:?}", obs.sections);
            let v = verdict(&obs.sections, probe(*family).required_sections);
            assert!(
                !v.missing.is_empty() || !v.incomplete.is_empty(),
                "{file}: {v:?}"
            );
        }
        // /dev/null as dpkg-query.txt: a link out of the bundle, never read
        // (so never an empty, clean package database).
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/null", dir.path().join("dpkg-query.txt")).unwrap();
        let err = read_bundle(dir.path(), OsFamily::Linux, &ReadLimit::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("dpkg-query.txt: not read: a symbolic link to a path outside the bundle"),
            "{err}"
        );
    }
}
