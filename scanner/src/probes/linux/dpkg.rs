//! dpkg packages, from `dpkg-query -W -f='${Status}\t${Package}\t${Version}\t${Architecture}\t${Maintainer}\n'`.
//!
//! The status tells a removed package whose configuration files remain (`rc`,
//! "deinstall ok config-files") from an installed one: a remnant is reported
//! differently from an install. Both status spellings are understood: the long
//! `${Status}` triple the script asks for, and the two- or three-letter
//! `${db:Status-Abbrev}` (`ii`, `rc`, `hi`, `iU`, `iHR`, ...) of `dpkg -l` and of
//! older recordings. Lines without tabs (whitespace-separated recordings such as
//! inspec's `dpkg-query-W` fixture) are read too.
//!
//! Every field is host-controlled. The free-text maintainer comes last so a tab
//! inside it cannot shift the other fields; a line that does not start with a
//! known status is not a package (it is counted in one warning).

use super::sections::Rejects;
use crate::probes::text;
use crate::probes::{Package, PackageManager, PackageState, ProbeWarning};

/// Parses the `dpkg` section. Total: unknown lines are skipped and summed up in
/// one warning.
///
/// ```
/// use fleetsweep::probes::{linux::parse_dpkg, PackageState};
/// let (pkgs, warnings) = parse_dpkg("deinstall ok config-files\tkesl\t12.1.0-1234\tamd64\tAO Kaspersky Lab\n");
/// assert_eq!(pkgs[0].name, "kesl");
/// assert_eq!(pkgs[0].state, PackageState::ConfigFiles);
/// assert!(warnings.is_empty());
/// ```
pub fn parse_dpkg(body: &str) -> (Vec<Package>, Vec<ProbeWarning>) {
    let mut packages = Vec::new();
    let mut rejects = Rejects::default();
    let mut unknown_status = Rejects::default();
    for line in crate::probes::text::lines(body) {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Ok(p) => packages.push(p),
            Err(LineError::UnknownStatus) => unknown_status.note(line),
            Err(LineError::Malformed) => rejects.note(line),
        }
    }
    let mut warnings: Vec<ProbeWarning> = rejects.into_warning("dpkg").into_iter().collect();
    if let Some(mut w) = unknown_status.into_warning("dpkg") {
        w.message = format!("unknown package status: {}", w.message);
        warnings.push(w);
    }
    (packages, warnings)
}

enum LineError {
    UnknownStatus,
    Malformed,
}

fn parse_line(line: &str) -> Result<Package, LineError> {
    let (state, name, version, arch, maintainer) = if line.contains('\t') {
        let mut f = text::splitn(line, 5, b'\t');
        let status = f.next().unwrap_or_default();
        let state = status_state(status).ok_or_else(|| status_error(status))?;
        (
            state,
            f.next().unwrap_or_default().trim(),
            f.next(),
            f.next(),
            f.next(),
        )
    } else {
        // Whitespace-separated recording: `ii  bash  4.3-14  amd64`, or the long
        // status as three words.
        let words: Vec<&str> = line.split_whitespace().collect();
        let (state, rest) = match words.first().and_then(|w| abbrev_state(w)) {
            Some(s) => (s, words.get(1..).unwrap_or_default()),
            None => {
                let status = words.get(..3).map(|w| w.join(" ")).unwrap_or_default();
                let state = long_state(&status).ok_or_else(|| status_error(&status))?;
                (state, words.get(3..).unwrap_or_default())
            }
        };
        (
            state,
            rest.first().copied().unwrap_or_default(),
            rest.get(1).copied(),
            rest.get(2).copied(),
            None,
        )
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(LineError::Malformed);
    }
    Ok(Package {
        manager: PackageManager::Dpkg,
        name: name.to_string(),
        version: non_empty(version),
        arch: non_empty(arch),
        state,
        vendor: None,
        maintainer: non_empty(maintainer),
    })
}

/// A status we could not map is "unknown" only when the field looks like a status
/// (short code, or three words); otherwise the line is simply not a package line.
fn status_error(status: &str) -> LineError {
    let s = status.trim();
    let looks_like_status =
        (2..=3).contains(&s.len()) && s.is_ascii() || s.split_whitespace().count() == 3;
    if looks_like_status {
        LineError::UnknownStatus
    } else {
        LineError::Malformed
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Maps either status spelling to a state; None for anything unknown.
///
/// ```
/// use fleetsweep::probes::{linux::dpkg_state, PackageState};
/// assert_eq!(dpkg_state("ii "), Some(PackageState::Installed));
/// assert_eq!(dpkg_state("hold ok installed"), Some(PackageState::Installed));
/// assert_eq!(dpkg_state("rc"), Some(PackageState::ConfigFiles));
/// assert_eq!(dpkg_state("zz"), None);
/// ```
pub fn dpkg_state(status: &str) -> Option<PackageState> {
    status_state(status)
}

fn status_state(status: &str) -> Option<PackageState> {
    let s = status.trim();
    if s.contains(' ') {
        long_state(s)
    } else {
        abbrev_state(s)
    }
}

/// `${db:Status-Abbrev}`: desired action, current status, optional error flag.
fn abbrev_state(s: &str) -> Option<PackageState> {
    let b = s.as_bytes();
    if !(2..=3).contains(&b.len()) {
        return None;
    }
    // desired: unknown, install, hold, deinstall (remove), purge
    if !matches!(b[0], b'u' | b'i' | b'h' | b'r' | b'p') {
        return None;
    }
    // error flag: none or reinstall-required
    if b.len() == 3 && !matches!(b[2], b' ' | b'R') {
        return None;
    }
    Some(match b[1] {
        b'i' => PackageState::Installed,
        b'c' => PackageState::ConfigFiles,
        b'U' | b'H' | b'F' | b'W' | b't' => PackageState::Partial,
        b'n' => PackageState::NotInstalled,
        _ => return None,
    })
}

/// `${Status}`: "want flag status", e.g. "install ok installed".
fn long_state(s: &str) -> Option<PackageState> {
    // Nearly every line of a host says this; the words need no splitting.
    if s == "install ok installed" {
        return Some(PackageState::Installed);
    }
    let mut words = s.split_whitespace();
    let want = words.next()?;
    let flag = words.next()?;
    let status = words.next()?;
    if words.next().is_some()
        || !matches!(want, "unknown" | "install" | "hold" | "deinstall" | "purge")
        || !matches!(flag, "ok" | "reinstreq" | "hold" | "hold-reinstreq")
    {
        return None;
    }
    Some(match status {
        "installed" => PackageState::Installed,
        "config-files" => PackageState::ConfigFiles,
        "unpacked" | "half-installed" | "half-configured" | "triggers-awaited"
        | "triggers-pending" => PackageState::Partial,
        "not-installed" => PackageState::NotInstalled,
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table-driven tests
mod tests {
    use super::*;
    use PackageState::*;

    const DPKG_QUERY_W: &str =
        include_str!("../../../../tests/fixtures/linux/inspec-mocks/dpkg-query-W");
    const HELD: &str =
        include_str!("../../../../tests/fixtures/linux/inspec-mocks/dpkg-s-held-package");
    const CURL: &str = include_str!("../../../../tests/fixtures/linux/inspec-mocks/dpkg-s-curl");
    const STATES: &str = include_str!(
        "../../../../tests/fixtures/linux/osv-scalibr-dpkg-status/status_statusfield_states_SYNTHETIC"
    );
    const DEBIAN12: &str = include_str!(
        "../../../../tests/fixtures/linux/osv-scalibr-dpkg-status/status_valid_debian12_excerpt"
    );
    const DUMMY: &str = include_str!(
        "../../../../tests/fixtures/linux/osv-scalibr-dpkg-status/status_transitional_dummy"
    );

    fn summary(pkgs: &[Package]) -> Vec<(&str, Option<&str>, Option<&str>, PackageState)> {
        pkgs.iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.version.as_deref(),
                    p.arch.as_deref(),
                    p.state.clone(),
                )
            })
            .collect()
    }

    /// What `dpkg-query -W -f='${Status}\t${Package}\t...'` prints for the records
    /// of a `/var/lib/dpkg/status` file (single-line fields only, which these are).
    fn as_dpkg_query(status_file: &str) -> String {
        let mut out = String::new();
        for record in status_file.split("\n\n") {
            let field = |name: &str| {
                record
                    .lines()
                    .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                    .unwrap_or_default()
            };
            if field("Package").is_empty() {
                continue;
            }
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                field("Status"),
                field("Package"),
                field("Version"),
                field("Architecture"),
                field("Maintainer")
            ));
        }
        out
    }

    #[test]
    fn inspec_recording_tells_installed_from_config_files() {
        let (pkgs, warnings) = parse_dpkg(DPKG_QUERY_W);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            summary(&pkgs),
            vec![
                ("bash", Some("4.3-14ubuntu1.1"), Some("amd64"), Installed),
                ("libc6", Some("2.19-0ubuntu6.14"), Some("amd64"), Installed),
                ("libc6", Some("2.19-0ubuntu6.14"), Some("i386"), Installed),
                (
                    "fakeroot",
                    Some("1.20.2-1ubuntu1"),
                    Some("amd64"),
                    ConfigFiles
                ),
                (
                    "libfakeroot",
                    Some("1.20.2-1ubuntu0"),
                    Some("amd64"),
                    ConfigFiles
                ),
                (
                    "overlayroot",
                    Some("0.27ubuntu1.2"),
                    Some("amd64"),
                    Installed
                ),
                (
                    "vim",
                    Some("2:7.4.1689-3ubuntu1.2"),
                    Some("amd64"),
                    Installed
                ),
                (
                    "vim-common",
                    Some("2:7.4.1689-3ubuntu1.2"),
                    Some("amd64"),
                    Installed
                ),
                ("xorg", Some("1:7.7+13ubuntu3"), Some("amd64"), Installed),
                (
                    "xorg-docs-core",
                    Some("1:1.7.1-1ubuntu1"),
                    Some("amd64"),
                    Installed
                ),
                (
                    "xserver-common",
                    Some("2:1.18.4-0ubuntu0.2"),
                    Some("amd64"),
                    Installed
                ),
                (
                    "xserver-xorg",
                    Some("1:7.7+13ubuntu3"),
                    Some("amd64"),
                    Installed
                ),
                (
                    "xserver-xorg-core",
                    Some("2:1.18.4-0ubuntu0.2"),
                    Some("amd64"),
                    Installed
                ),
                (
                    "xserver-xorg-input-all",
                    Some("1:7.7+13ubuntu3"),
                    Some("amd64"),
                    Installed
                ),
            ]
        );
        assert!(pkgs.iter().all(|p| p.manager == PackageManager::Dpkg));
        assert!(pkgs
            .iter()
            .all(|p| p.maintainer.is_none() && p.vendor.is_none()));
    }

    #[test]
    fn status_files_as_dpkg_query_output() {
        let cases: &[(
            &str,
            &str,
            Vec<(&str, Option<&str>, Option<&str>, PackageState)>,
        )] = &[
            (
                "held",
                HELD,
                vec![("held-package", Some("1.2.3-1"), Some("amd64"), Installed)],
            ),
            (
                "curl",
                CURL,
                vec![("curl", Some("7.35.0-1ubuntu2"), Some("amd64"), Installed)],
            ),
            (
                "dummy",
                DUMMY,
                vec![("git-core", Some("1:2.14.2-1"), Some("all"), Installed)],
            ),
            (
                "debian12",
                DEBIAN12,
                vec![
                    (
                        "accountsservice",
                        Some("22.08.8-6"),
                        Some("amd64"),
                        Installed,
                    ),
                    ("acl", Some("2.3.1-3"), Some("amd64"), Installed),
                    ("adduser", Some("3.131"), Some("all"), Installed),
                    (
                        "admin-session",
                        Some("2023.06.26.c543406313-00"),
                        Some("amd64"),
                        Installed,
                    ),
                    ("attr", Some("1:2.5.1-4"), Some("amd64"), Installed),
                    ("libacl1", Some("2.3.1-3"), Some("amd64"), Installed),
                    (
                        "util-linux-extra",
                        Some("2.38.1-5+b1"),
                        Some("amd64"),
                        Installed,
                    ),
                ],
            ),
        ];
        for (label, file, want) in cases {
            let (pkgs, warnings) = parse_dpkg(&as_dpkg_query(file));
            assert!(warnings.is_empty(), "{label}: {warnings:?}");
            assert_eq!(&summary(&pkgs), want, "{label}");
        }
        let (pkgs, _) = parse_dpkg(&as_dpkg_query(HELD));
        assert_eq!(
            pkgs[0].maintainer.as_deref(),
            Some("Fake User <fake@user.biz)")
        );
    }

    #[test]
    fn every_status_triple_of_the_scalibr_list() {
        // Upstream-written list of status triples; a record without Status has an
        // empty status field, which is not a package line.
        let (pkgs, warnings) = parse_dpkg(&as_dpkg_query(STATES));
        let got: Vec<(&str, PackageState)> = pkgs
            .iter()
            .map(|p| (p.name.as_str(), p.state.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("wantinstall_installed", Installed),
                ("wantdeinstall_installed", Installed),
                ("wantdeinstall_configfiles", ConfigFiles),
                ("wantinstall_unpacked", Partial),
                ("wantpurge_installed", Installed),
                ("wantinstall_halfinstalled", Partial),
            ]
        );
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].message.contains("wantnostatus"), "{warnings:?}");
    }

    #[test]
    fn status_codes() {
        let cases: &[(&str, Option<PackageState>)] = &[
            ("ii", Some(Installed)),
            ("ii ", Some(Installed)),
            ("hi", Some(Installed)),
            ("ri", Some(Installed)),
            ("pi", Some(Installed)),
            ("iiR", Some(Installed)),
            ("rc", Some(ConfigFiles)),
            ("pc", Some(ConfigFiles)),
            ("iU", Some(Partial)),
            ("iF", Some(Partial)),
            ("iH", Some(Partial)),
            ("iHR", Some(Partial)),
            ("iW", Some(Partial)),
            ("it", Some(Partial)),
            ("un", Some(NotInstalled)),
            ("pn", Some(NotInstalled)),
            ("install ok installed", Some(Installed)),
            ("hold ok installed", Some(Installed)),
            ("deinstall ok config-files", Some(ConfigFiles)),
            ("purge ok config-files", Some(ConfigFiles)),
            ("install reinstreq half-installed", Some(Partial)),
            ("install ok unpacked", Some(Partial)),
            ("install ok half-configured", Some(Partial)),
            ("install ok triggers-awaited", Some(Partial)),
            ("install ok triggers-pending", Some(Partial)),
            ("unknown ok not-installed", Some(NotInstalled)),
            ("purge ok not-installed", Some(NotInstalled)),
            ("install hold-reinstreq installed", Some(Installed)),
            // unknown
            ("", None),
            ("i", None),
            ("iz", None),
            ("xi", None),
            ("II", None),
            ("iix", None),
            ("iiii", None),
            ("install ok", None),
            ("install ok weird", None),
            ("want ok installed", None),
            ("install bad installed", None),
            ("install ok installed extra", None),
            ("ií", None),
        ];
        for (status, want) in cases {
            assert_eq!(&dpkg_state(status), want, "status {status:?}");
        }
    }

    #[test]
    fn hostile_and_broken_lines() {
        let marker = "@@fleetsweep:abc:end dpkg rc=0";
        let long = "k".repeat(1 << 20);
        let cases: Vec<(String, Vec<(&str, PackageState)>, usize)> = vec![
            // (body, packages, warnings)
            (String::new(), vec![], 0),
            ("\n\n  \n".into(), vec![], 0),
            (
                format!("install ok installed\t{marker}\t1\tamd64\tx\n"),
                vec![],
                1, // name with spaces is not a package name
            ),
            (
                "install ok installed\tkesl\x00\t1\tamd64\tAO Kaspersky Lab\n".into(),
                vec![("kesl\0", Installed)],
                0,
            ),
            (
                "install ok installed\tkesl\t12.1\tamd64\tA\tB\tC\n".into(),
                vec![("kesl", Installed)],
                0,
            ),
            (
                "install ok installed\tkasperskyy\t1\n".into(),
                vec![("kasperskyy", Installed)],
                0,
            ),
            ("install ok installed\n".into(), vec![], 1),
            ("install ok installed\t\t1\n".into(), vec![], 1),
            ("zz\tkesl\t1\tamd64\t\n".into(), vec![], 1),
            ("no tabs and nothing known here\n".into(), vec![], 1),
            (format!("ii\t{long}\t1\n"), vec![], 0),
            (long.clone(), vec![], 1),
            (
                // a newline inside the maintainer: the tail is not a package
                "ii \tklnagent64\t14\tamd64\tAO Kaspersky\n Lab\nii \tbash\t5\tamd64\tX\n".into(),
                vec![("klnagent64", Installed), ("bash", Installed)],
                1,
            ),
        ];
        for (body, want, nwarn) in cases {
            let (pkgs, warnings) = parse_dpkg(&body);
            let got: Vec<(&str, PackageState)> = pkgs
                .iter()
                .map(|p| (p.name.as_str(), p.state.clone()))
                .filter(|(n, _)| n.len() < 100)
                .collect();
            assert_eq!(got, want, "body {:?}", body.get(..100));
            assert_eq!(
                warnings.len(),
                nwarn,
                "body {:?}: {warnings:?}",
                body.get(..100)
            );
        }
        let (pkgs, _) = parse_dpkg(&format!("ii\t{long}\t1\n"));
        assert_eq!(pkgs.len(), 1);
        assert_eq!(pkgs[0].name.len(), 1 << 20);
    }

    #[test]
    fn fields_are_trimmed_and_empty_fields_are_none() {
        let (pkgs, _) = parse_dpkg("install ok installed\tkesl\t\t\t\n");
        assert_eq!(pkgs[0].version, None);
        assert_eq!(pkgs[0].arch, None);
        assert_eq!(pkgs[0].maintainer, None);
        let (pkgs, _) = parse_dpkg(
            "deinstall ok config-files\tklnagent64\t14.2.0-1234\tamd64\tAO Kaspersky Lab <support@kaspersky.com>\n",
        );
        assert_eq!(
            pkgs[0],
            Package {
                manager: PackageManager::Dpkg,
                name: "klnagent64".into(),
                version: Some("14.2.0-1234".into()),
                arch: Some("amd64".into()),
                state: ConfigFiles,
                vendor: None,
                maintainer: Some("AO Kaspersky Lab <support@kaspersky.com>".into()),
            }
        );
    }
}
