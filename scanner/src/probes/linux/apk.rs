//! Alpine packages: the `P:` (name), `V:` (version), `A:` (arch) and `m:`
//! (maintainer) lines of `/lib/apk/db/installed`, one blank-line-separated record
//! per package. Reading the database needs no root and, unlike `apk info`, gives
//! the maintainer. When the database is unreadable the script falls back to
//! `apk info -v` (`name-version-rN` per line); `apk list --installed` lines
//! (`name-version-rN arch {origin} (license) [installed]`) are read too.

use super::sections::Rejects;
use crate::probes::{Package, PackageManager, PackageState, ProbeWarning};

/// Parses the `apk` section. Total: unknown lines are summed up in one warning.
///
/// ```
/// use fleetsweep::probes::linux::parse_apk;
/// let (pkgs, _) = parse_apk("P:musl\nV:1.2.4-r2\nA:x86_64\nm:Natanael Copa <ncopa@alpinelinux.org>\n\n");
/// assert_eq!(pkgs[0].name, "musl");
/// assert_eq!(pkgs[0].version.as_deref(), Some("1.2.4-r2"));
/// ```
pub fn parse_apk(body: &str) -> (Vec<Package>, Vec<ProbeWarning>) {
    let mut packages = Vec::new();
    let mut rejects = Rejects::default();
    let mut record = Record::default();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            record.flush(&mut packages, &mut rejects);
            continue;
        }
        match line.as_bytes() {
            [key, b':', ..] if key.is_ascii_alphabetic() => {
                let value = line.get(2..).unwrap_or_default();
                record.set(*key, value);
            }
            _ => match parse_name_version(line) {
                Some(p) => packages.push(p),
                None => rejects.note(line),
            },
        }
    }
    record.flush(&mut packages, &mut rejects);
    (packages, rejects.into_warning("apk").into_iter().collect())
}

#[derive(Default)]
struct Record {
    name: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    maintainer: Option<String>,
    seen: bool,
}

impl Record {
    fn set(&mut self, key: u8, value: &str) {
        self.seen = true;
        let value = value.trim();
        let slot = match key {
            b'P' => &mut self.name,
            b'V' => &mut self.version,
            b'A' => &mut self.arch,
            b'm' => &mut self.maintainer,
            _ => return,
        };
        if slot.is_none() && !value.is_empty() {
            *slot = Some(value.to_string());
        }
    }

    fn flush(&mut self, packages: &mut Vec<Package>, rejects: &mut Rejects) {
        let record = std::mem::take(self);
        if !record.seen {
            return;
        }
        match record.name {
            Some(name) => packages.push(Package {
                manager: PackageManager::Apk,
                name,
                version: record.version,
                arch: record.arch,
                state: PackageState::Installed,
                vendor: None,
                maintainer: record.maintainer,
            }),
            None => rejects.note("record without P: (package name)"),
        }
    }
}

/// `name-version-rN [arch ...]` as printed by `apk info -v` / `apk list`.
fn parse_name_version(line: &str) -> Option<Package> {
    let mut words = line.split_whitespace();
    let (name, version) = split_name_version(words.next()?)?;
    let arch = words
        .next()
        .filter(|a| !a.starts_with('{'))
        .map(str::to_string);
    Some(Package {
        manager: PackageManager::Apk,
        name: name.to_string(),
        version: Some(version.to_string()),
        arch,
        state: PackageState::Installed,
        vendor: None,
        maintainer: None,
    })
}

/// apk versions start after the last `-` that is followed by a digit, not
/// counting the `-rN` release suffix: `py3-foo-2-1.0-r3` → (`py3-foo-2`, `1.0-r3`).
fn split_name_version(word: &str) -> Option<(&str, &str)> {
    let base = match word.rfind("-r") {
        Some(i) if word[i + 2..].bytes().all(|b| b.is_ascii_digit()) && i + 2 < word.len() => {
            &word[..i]
        }
        _ => word,
    };
    let cut = base
        .char_indices()
        .filter(|&(i, c)| c == '-' && base[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
        .map(|(i, _)| i)
        .next_back()?;
    let (name, version) = (&word[..cut], &word[cut + 1..]);
    (!name.is_empty() && !version.is_empty()).then_some((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const APK_LIST: &str = include_str!("../../../../tests/fixtures/linux/inspec-mocks/apk-info");

    /// Shape of `/lib/apk/db/installed` after the script's `sed` (P/V/A/m lines
    /// and the blank separators), as on Alpine 3.19.
    const DB: &str = "P:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nm:Natanael Copa <ncopa@alpinelinux.org>\n\n\
                      P:busybox\nV:1.36.1-r15\nA:x86_64\nm:Sören Tempel <soeren+alpine@soeren-tempel.net>\n\n\
                      P:kesl\nV:12.1.0.1234-r0\nA:x86_64\n";

    #[test]
    fn inspec_apk_list_recording() {
        let (pkgs, warnings) = parse_apk(APK_LIST);
        assert!(warnings.is_empty(), "{warnings:?}");
        let got: Vec<(&str, Option<&str>, Option<&str>)> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_deref(), p.arch.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("libxmu", Some("1.1.2-r1"), Some("x86_64")),
                (
                    "virtualbox-guest-modules-virt",
                    Some("4.14.167-r0"),
                    Some("x86_64")
                ),
                ("pkgconf", Some("1.5.3-r0"), Some("x86_64")),
                ("nginx", Some("1.14.2-r2"), Some("x86_64")),
                ("dmidecode", Some("3.1-r0"), Some("x86_64")),
                ("syslinux", Some("6.04_pre1-r1"), Some("x86_64")),
            ]
        );
    }

    #[test]
    fn installed_db_records() {
        let (pkgs, warnings) = parse_apk(DB);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(pkgs.len(), 3);
        assert_eq!(
            pkgs[1],
            Package {
                manager: PackageManager::Apk,
                name: "busybox".into(),
                version: Some("1.36.1-r15".into()),
                arch: Some("x86_64".into()),
                state: PackageState::Installed,
                vendor: None,
                maintainer: Some("Sören Tempel <soeren+alpine@soeren-tempel.net>".into()),
            }
        );
        assert_eq!(pkgs[2].name, "kesl");
        assert_eq!(pkgs[2].maintainer, None);
    }

    #[test]
    fn name_version_split() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("musl-1.2.4-r2", Some(("musl", "1.2.4-r2"))),
            ("py3-foo-2-1.0-r3", Some(("py3-foo-2", "1.0-r3"))),
            ("libxmu-1.1.2-r1", Some(("libxmu", "1.1.2-r1"))),
            ("kesl-12.1", Some(("kesl", "12.1"))),
            ("abc-r1", None),
            ("no_version", None),
            ("-1.0-r0", None),
            ("x-", None),
            ("x-r", None),
            ("é-1-r0", Some(("é", "1-r0"))),
        ];
        for (word, want) in cases {
            assert_eq!(split_name_version(word), *want, "{word:?}");
        }
    }

    #[test]
    fn hostile_and_broken_input() {
        let long = "P:".to_string() + &"k".repeat(1 << 20);
        let cases: Vec<(String, usize, usize)> = vec![
            // (body, packages, warnings)
            (String::new(), 0, 0),
            ("\n\n\n".into(), 0, 0),
            ("V:1.0\nA:x86_64\n\n".into(), 0, 1),
            ("P:kesl\nP:other\n".into(), 1, 0),
            ("P:\n\n".into(), 0, 1),
            ("Z:ignored\nP:x\n".into(), 1, 0),
            ("garbage line\n".into(), 0, 1),
            ("@@fleetsweep:x:end apk rc=0\n".into(), 0, 1),
            ("P:kesl\0\nV:1\n".into(), 1, 0),
            (long, 1, 0),
            ("::\n:\nP\n".into(), 0, 1),
        ];
        for (body, npkgs, nwarn) in cases {
            let (pkgs, warnings) = parse_apk(&body);
            assert_eq!(pkgs.len(), npkgs, "body {:?}", body.get(..40));
            assert_eq!(
                warnings.len(),
                nwarn,
                "body {:?}: {warnings:?}",
                body.get(..40)
            );
        }
    }
}
