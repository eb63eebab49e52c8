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
//! Every file is untrusted: read up to a size limit, parsed without panics;
//! what cannot be read becomes a warning. A bundle without any known file is an
//! error (the host was not scanned), never a clean host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::linux::sections::warning;
use super::registry::{probe, BundleRead};
use super::{Observations, PathEntry, PathKind};
use crate::os::OsFamily;

/// The per-bundle description file.
pub const HOST_FILE: &str = "host.yaml";

/// Largest file read from a bundle; bigger files are cut and reported.
pub const MAX_FILE: u64 = 64 * 1024 * 1024;

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
    pub labels: BTreeMap<String, String>,
}

/// Finds the bundles in `dir` (each subdirectory with a host.yaml; `dir`
/// itself when it is one bundle), sorted by host name.
pub fn load_bundles(dir: &Path) -> Result<Vec<Bundle>, OfflineError> {
    let dir_err = |source| OfflineError::Dir {
        path: dir.to_path_buf(),
        source,
    };
    let mut dirs = Vec::new();
    if dir.join(HOST_FILE).is_file() {
        dirs.push(dir.to_path_buf());
    } else {
        for e in std::fs::read_dir(dir).map_err(dir_err)? {
            let p = e.map_err(dir_err)?.path();
            if p.join(HOST_FILE).is_file() {
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
    let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
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
        labels: raw.labels,
    })
}

/// Reads a file of a bundle as text: UTF-8 (BOM stripped) or UTF-16 with BOM
/// (what PowerShell 5.1's `>` writes); None when absent. Cut at [`MAX_FILE`].
fn read_text(path: &Path, obs: &mut Observations) -> Option<String> {
    let bytes = read_bytes(path, obs)?;
    Some(decode_text(&bytes))
}

fn read_bytes(path: &Path, obs: &mut Observations) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut bytes = Vec::new();
    if let Err(e) = f.take(MAX_FILE + 1).read_to_end(&mut bytes) {
        obs.warnings
            .push(warning(&file_label(path), format!("cannot read: {e}")));
        return None;
    }
    if bytes.len() as u64 > MAX_FILE {
        bytes.truncate(MAX_FILE as usize);
        obs.warnings.push(warning(
            &file_label(path),
            format!("file cut at {MAX_FILE} bytes; findings may be incomplete"),
        ));
    }
    Some(bytes)
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

fn file_label(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
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
/// observations. Blocking (std::fs): async callers run it on a blocking thread.
pub fn read_bundle(dir: &Path, family: OsFamily) -> Result<Observations, OfflineError> {
    let mut obs = Observations::default();
    let mut found = false;
    let files = probe(family).bundle_files;
    for file in files {
        let path = dir.join(file.name);
        found |= match file.read {
            BundleRead::Text(parse) => match read_text(&path, &mut obs) {
                Some(t) => {
                    parse(&t, &mut obs);
                    true
                }
                None => false,
            },
            BundleRead::PlistDir(parse) => read_plist_dir(&path, &mut obs, parse),
        };
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
        None => obs.warnings.push(warning(
            file,
            format!("no probe markers: not an output of the {script} probe script"),
        )),
    }
}

/// `paths.txt`: one path a line (`find` output), or the probe's `d<TAB>path` form.
pub(super) fn paths_list(text: &str, obs: &mut Observations) {
    for line in text.lines().take(100_000) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (kind, path) = match line.split_once('\t') {
            Some(("d", p)) => (PathKind::Dir, p),
            Some(("f", p)) => (PathKind::File, p),
            Some(("l", p)) => (PathKind::Link, p),
            Some((_, p)) => (PathKind::Other, p),
            None => (PathKind::Other, line),
        };
        if path.starts_with('/') && !obs.paths.iter().any(|p| p.path == path) {
            obs.paths.push(PathEntry {
                path: path.to_string(),
                kind,
            });
        }
    }
}

/// Each `*.plist` of `dir` (sorted), at most 2000.
fn read_plist_dir(
    dir: &Path,
    obs: &mut Observations,
    each: fn(&[u8], &str, &mut Observations),
) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in files.iter().take(2000) {
        if let Some(b) = read_bytes(f, obs) {
            each(&b, &file_label(f), obs);
        }
    }
    true
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
            let err = read_bundle(dir.path(), family).unwrap_err().to_string();
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
        let obs = read_bundle(dir.path(), OsFamily::Macos).unwrap();
        assert_eq!(obs.os.unwrap().name.as_deref(), Some("macOS"));
        assert_eq!(obs.paths.len(), 1);
        assert_eq!(
            obs.warnings[0].message,
            "no probe markers: not an output of the macOS probe script"
        );
    }

    #[test]
    fn nonce_from_saved_output() {
        assert_eq!(nonce_of("\n@@fleetsweep:abc123:begin x\n"), Some("abc123"));
        assert_eq!(nonce_of("@@fleetsweep:a b:begin"), None);
        assert_eq!(nonce_of("nothing"), None);
    }
}
