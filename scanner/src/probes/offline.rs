//! Offline bundles: one directory per host holding the raw outputs of the
//! documented probe commands, for hosts on air-gapped networks that users reach
//! with their own tooling. The files are analysed with the same parsers as a
//! live sweep; `docs/offline-bundles.md` says which command makes which file.
//!
//! ```text
//! DIR/<any>/host.yaml      name, os (windows|macos|linux), address, labels
//! DIR/<any>/windows.json   the Windows probe's JSON (UTF-8 or UTF-16 with BOM)
//! DIR/<any>/macos.txt      the macOS probe's output;  linux.txt: the Linux one
//! ...                      or single command outputs (see FILES)
//! ```
//!
//! Every file is untrusted: read up to a size limit, parsed without panics;
//! what cannot be read becomes a warning. A bundle without any known file is an
//! error (the host was not scanned), never a clean host.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::linux::sections::warning;
use super::{linux, macos, windows, Observations, PathEntry, PathKind};

/// The per-bundle description file.
pub const HOST_FILE: &str = "host.yaml";

/// Known files per OS family: (file name, what produces it). The docs list the
/// exact commands; this table is what the reader accepts.
pub const FILES: &[(&str, &str, &str)] = &[
    ("windows", "windows.json", "the Windows probe script's output"),
    ("windows", "Get-Service.xml", "Get-Service | Export-Clixml"),
    ("windows", "Win32_OperatingSystem.xml", "Get-CimInstance Win32_OperatingSystem | Export-Clixml"),
    ("windows", "uninstall.xml", "Get-ItemProperty over the Uninstall keys | Export-Clixml"),
    ("macos", "macos.txt", "the macOS probe script's output"),
    ("macos", "sw_vers.txt", "sw_vers"),
    ("macos", "pkgutil-pkgs.txt", "pkgutil --pkgs"),
    ("macos", "launchctl-list.txt", "launchctl list"),
    ("macos", "systemextensionsctl-list.txt", "systemextensionsctl list"),
    ("macos", "kextstat.txt", "kextstat -l (or kmutil showloaded --list-only)"),
    ("macos", "codesign.txt", "codesign -dv /Applications/*.app 2>&1"),
    ("macos", "Info.plist", "directory of copied application Info.plist files"),
    ("macos", "LaunchDaemons", "directory of copied launchd job plists"),
    ("macos", "paths.txt", "find '/Library/Application Support/Kaspersky Lab' -maxdepth 3"),
    ("linux", "linux.txt", "the Linux probe script's output"),
    ("linux", "os-release", "cat /etc/os-release"),
    ("linux", "dpkg-query.txt", "dpkg-query -W -f='${Status}\\t${Package}\\t${Version}\\t${Architecture}\\t${Maintainer}\\n'"),
    ("linux", "rpm-qa.txt", "rpm -qa --qf '%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{VENDOR}\\t%{PACKAGER}\\n'"),
    ("linux", "kesl-control-app-info.txt", "kesl-control --app-info"),
    ("linux", "paths.txt", "find /opt/kaspersky /var/opt/kaspersky /etc/opt/kaspersky -maxdepth 3"),
];

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
        os: String,
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
    /// `windows`, `macos` or `linux`.
    pub os: String,
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
    let raw: RawHost = serde_saphyr::from_str(&text).map_err(|e| err(e.to_string()))?;
    let os = raw.os.trim().to_ascii_lowercase();
    if !matches!(os.as_str(), "windows" | "macos" | "linux") {
        return Err(err(format!(
            "os `{}` is not one of windows, macos, linux",
            raw.os
        )));
    }
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
        os,
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

/// Reads every known file of `bundle` into one set of observations.
pub fn read_bundle(bundle: &Bundle) -> Result<Observations, OfflineError> {
    let mut obs = Observations::default();
    let mut found = false;
    let dir = &bundle.dir;
    match bundle.os.as_str() {
        "windows" => {
            if let Some(t) = read_text(&dir.join("windows.json"), &mut obs) {
                found = true;
                merge(&mut obs, windows::parse(&t));
            }
            if let Some(t) = read_text(&dir.join("Get-Service.xml"), &mut obs) {
                found = true;
                let (s, w) = windows::clixml::services(&t);
                obs.windows_services.extend(s);
                obs.warnings.extend(w);
            }
            if let Some(t) = read_text(&dir.join("Win32_OperatingSystem.xml"), &mut obs) {
                found = true;
                let (os, w) = windows::clixml::operating_system(&t);
                obs.os = obs.os.take().or(os);
                obs.warnings.extend(w);
            }
            if let Some(t) = read_text(&dir.join("uninstall.xml"), &mut obs) {
                found = true;
                let (u, w) = windows::clixml::uninstall(&t);
                obs.uninstall.extend(u);
                obs.warnings.extend(w);
            }
        }
        "macos" => {
            if let Some(t) = read_text(&dir.join("macos.txt"), &mut obs) {
                found = true;
                match nonce_of(&t) {
                    Some(n) => {
                        let n = n.to_string();
                        merge(&mut obs, macos::parse(&t, &n));
                    }
                    None => obs.warnings.push(warning(
                        "macos.txt",
                        "no probe markers: not an output of the macOS probe script".to_string(),
                    )),
                }
            }
            if let Some(t) = read_text(&dir.join("sw_vers.txt"), &mut obs) {
                found = true;
                obs.os = Some(macos::parse_sw_vers(&t));
            }
            if let Some(t) = read_text(&dir.join("pkgutil-pkgs.txt"), &mut obs) {
                found = true;
                let (r, w) = macos::parse_pkgutil(&t);
                obs.pkg_receipts.extend(r);
                obs.warnings.extend(w);
            }
            if let Some(t) = read_text(&dir.join("launchctl-list.txt"), &mut obs) {
                found = true;
                let (j, w) = macos::parse_launchctl_list(&t);
                obs.launchd.extend(j);
                obs.warnings.extend(w);
            }
            if let Some(t) = read_text(&dir.join("systemextensionsctl-list.txt"), &mut obs) {
                found = true;
                obs.system_extensions
                    .extend(macos::parse_systemextensionsctl(&t));
            }
            if let Some(t) = read_text(&dir.join("kextstat.txt"), &mut obs) {
                found = true;
                obs.kexts.extend(macos::parse_kexts(&t));
            }
            if let Some(t) = read_text(&dir.join("codesign.txt"), &mut obs) {
                found = true;
                merge_codesign(&mut obs, macos::parse_codesign(&t));
            }
            found |= read_plist_dir(&dir.join("Info.plist"), &mut obs, |b, obs, name| {
                match macos::parse_info_plist(b) {
                    Ok(mut app) => {
                        if app.path.is_none() {
                            app.path = Some(format!("{name} (Info.plist)"));
                        }
                        merge_app(obs, app);
                    }
                    Err(e) => obs
                        .warnings
                        .push(warning("Info.plist", format!("{name}: {e}"))),
                }
            });
            found |= read_plist_dir(&dir.join("LaunchDaemons"), &mut obs, |b, obs, name| {
                match macos::parse_launchd_plist(b) {
                    Ok(mut job) => {
                        job.plist = Some(name.to_string());
                        if !obs.launchd.iter().any(|j| j.label == job.label) {
                            obs.launchd.push(job);
                        }
                    }
                    Err(e) => obs
                        .warnings
                        .push(warning("LaunchDaemons", format!("{name}: {e}"))),
                }
            });
            found |= read_paths(dir, &mut obs);
        }
        _ => {
            if let Some(t) = read_text(&dir.join("linux.txt"), &mut obs) {
                found = true;
                match nonce_of(&t) {
                    Some(n) => {
                        let n = n.to_string();
                        merge(&mut obs, linux::parse(&t, &n));
                    }
                    None => obs.warnings.push(warning(
                        "linux.txt",
                        "no probe markers: not an output of the Linux probe script".to_string(),
                    )),
                }
            }
            if let Some(t) = read_text(&dir.join("os-release"), &mut obs) {
                found = true;
                obs.os = Some(linux::parse_os_release(&t));
            }
            if let Some(t) = read_text(&dir.join("dpkg-query.txt"), &mut obs) {
                found = true;
                let (p, w) = linux::parse_dpkg(&t);
                obs.packages.extend(p);
                obs.warnings.extend(w);
            }
            if let Some(t) = read_text(&dir.join("rpm-qa.txt"), &mut obs) {
                found = true;
                let (p, w) = linux::parse_rpm(&t);
                obs.packages.extend(p);
                obs.warnings.extend(w);
            }
            if let Some(t) = read_text(&dir.join("kesl-control-app-info.txt"), &mut obs) {
                found = true;
                match linux::parse_kesl_app_info(&t) {
                    Some(u) => obs.signature_updates.push(u),
                    None => obs.warnings.push(warning(
                        "kesl-control-app-info.txt",
                        "no `Last release date of databases:` line".to_string(),
                    )),
                }
            }
            found |= read_paths(dir, &mut obs);
        }
    }
    if !found {
        let files: Vec<&str> = FILES
            .iter()
            .filter(|(os, _, _)| *os == bundle.os)
            .map(|(_, f, _)| *f)
            .collect();
        return Err(OfflineError::NoFiles {
            dir: dir.clone(),
            os: bundle.os.clone(),
            files: files.join(", "),
        });
    }
    if obs.os.is_none() {
        obs.os = Some(fleetsweep_exporters::OsInfo {
            family: bundle.os.clone(),
            name: None,
            version: None,
        });
    }
    Ok(obs)
}

/// `paths.txt`: one path a line (`find` output), or the probe's `d<TAB>path` form.
fn read_paths(dir: &Path, obs: &mut Observations) -> bool {
    let Some(t) = read_text(&dir.join("paths.txt"), obs) else {
        return false;
    };
    for line in t.lines().take(100_000) {
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
    true
}

/// Each `*.plist` of `dir` (sorted), at most 2000.
fn read_plist_dir(
    dir: &Path,
    obs: &mut Observations,
    mut each: impl FnMut(&[u8], &mut Observations, &str),
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
            each(&b, obs, &file_label(f));
        }
    }
    true
}

fn merge_app(obs: &mut Observations, app: super::AppBundle) {
    let same = obs
        .bundles
        .iter_mut()
        .find(|b| b.bundle_id.is_some() && b.bundle_id == app.bundle_id);
    match same {
        Some(b) => {
            b.version = b.version.take().or(app.version);
            b.name = b.name.take().or(app.name);
            b.team_id = b.team_id.take().or(app.team_id);
            if b.path
                .as_deref()
                .is_none_or(|p| p.ends_with("(Info.plist)"))
            {
                b.path = app.path.or(b.path.take());
            }
        }
        None => obs.bundles.push(app),
    }
}

fn merge_codesign(obs: &mut Observations, apps: Vec<super::AppBundle>) {
    for app in apps {
        merge_app(obs, app);
    }
}

fn merge(into: &mut Observations, from: Observations) {
    let Observations {
        os,
        packages,
        services,
        processes,
        kernel_modules,
        paths,
        uninstall,
        windows_services,
        drivers,
        registry_keys,
        certificates,
        av_products,
        pkg_receipts,
        bundles,
        launchd,
        system_extensions,
        kexts,
        browser_extensions,
        signature_updates,
        warnings,
    } = from;
    into.os = into.os.take().or(os);
    into.packages.extend(packages);
    into.services.extend(services);
    into.processes.extend(processes);
    into.kernel_modules.extend(kernel_modules);
    into.paths.extend(paths);
    into.uninstall.extend(uninstall);
    into.windows_services.extend(windows_services);
    into.drivers.extend(drivers);
    into.registry_keys.extend(registry_keys);
    into.certificates.extend(certificates);
    into.av_products.extend(av_products);
    into.pkg_receipts.extend(pkg_receipts);
    for b in bundles {
        merge_app(into, b);
    }
    into.launchd.extend(launchd);
    into.system_extensions.extend(system_extensions);
    into.kexts.extend(kexts);
    into.browser_extensions.extend(browser_extensions);
    into.signature_updates.extend(signature_updates);
    into.warnings.extend(warnings);
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
    fn nonce_from_saved_output() {
        assert_eq!(nonce_of("\n@@fleetsweep:abc123:begin x\n"), Some("abc123"));
        assert_eq!(nonce_of("@@fleetsweep:a b:begin"), None);
        assert_eq!(nonce_of("nothing"), None);
    }
}
