//! rpm packages, from
//! `rpm -qa --queryformat '%{NAME}\t%{EPOCH}:%{VERSION}-%{RELEASE}\t%{ARCH}\t%{VENDOR}\t%{PACKAGER}\n'`.
//!
//! rpm keeps no removed-but-configured state: every listed package is installed.
//! rpm prints `(none)` for an unset tag (no epoch, no vendor, `gpg-pubkey` has no
//! arch); that becomes `None`, and an unset epoch is left out of the version as
//! `rpm -q` does. Lines without tabs (inspec's `NAME  VERSION-RELEASE  ARCH`
//! recording) are read too.

use super::sections::Rejects;
use crate::probes::text;
use crate::probes::{Package, PackageManager, PackageState, ProbeWarning};

/// Parses the `rpm` section. Total: unknown lines are summed up in one warning.
///
/// ```
/// use fleetsweep::probes::linux::parse_rpm;
/// let (pkgs, _) = parse_rpm("kesl\t(none):12.1.0-1234\tx86_64\tAO Kaspersky Lab\t(none)\n");
/// assert_eq!(pkgs[0].version.as_deref(), Some("12.1.0-1234"));
/// assert_eq!(pkgs[0].vendor.as_deref(), Some("AO Kaspersky Lab"));
/// assert_eq!(pkgs[0].maintainer, None);
/// ```
pub fn parse_rpm(body: &str) -> (Vec<Package>, Vec<ProbeWarning>) {
    let mut packages = Vec::new();
    let mut rejects = Rejects::default();
    for line in body.lines() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line) {
            Some(p) => packages.push(p),
            None => rejects.note(line),
        }
    }
    (packages, rejects.into_warning("rpm").into_iter().collect())
}

fn parse_line(line: &str) -> Option<Package> {
    let (name, evr, arch, vendor, packager) = if line.contains('\t') {
        let mut f = text::splitn(line, 5, b'\t');
        (f.next()?, f.next(), f.next(), f.next(), f.next())
    } else {
        let mut f = line.split_whitespace();
        (f.next()?, f.next(), f.next(), None, None)
    };
    let name = name.trim();
    // RPM package names are ASCII (letters, digits, `._+-~^`): anything else
    // is not a package line, so random bytes never pass for a package list.
    let plausible = |c: char| c.is_ascii_alphanumeric() || "._+-~^".contains(c);
    if name.is_empty() || !name.chars().all(plausible) || name == "(none)" {
        return None;
    }
    Some(Package {
        manager: PackageManager::Rpm,
        name: name.to_string(),
        version: evr.and_then(version),
        arch: tag(arch),
        state: PackageState::Installed,
        vendor: tag(vendor),
        maintainer: tag(packager),
    })
}

/// `EPOCH:VERSION-RELEASE` with `(none)` for an unset epoch → `VERSION-RELEASE`.
fn version(evr: &str) -> Option<String> {
    let evr = evr.trim();
    let evr = evr.strip_prefix("(none):").unwrap_or(evr);
    (!evr.is_empty() && evr != "(none)" && evr != "(none)-(none)").then(|| evr.to_string())
}

/// An rpm tag value; `(none)` and empty are unset.
fn tag(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty() && *s != "(none)")
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RPM_QA: &str =
        include_str!("../../../../tests/fixtures/linux/inspec-mocks/rpm-qa-queryformat");

    fn summary(pkgs: &[Package]) -> Vec<(&str, Option<&str>, Option<&str>)> {
        pkgs.iter()
            .map(|p| (p.name.as_str(), p.version.as_deref(), p.arch.as_deref()))
            .collect()
    }

    #[test]
    fn inspec_recording() {
        let (pkgs, warnings) = parse_rpm(RPM_QA);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            summary(&pkgs),
            vec![
                ("attr", Some("2.4.44-7.el6"), Some("x86_64")),
                ("perl-Pod-Escapes", Some("1.04-141.el6_7.1"), Some("x86_64")),
                ("perl-version", Some("0.77-141.el6_7.1"), Some("x86_64")),
                ("perl-Pod-Simple", Some("3.13-141.el6_7.1"), Some("x86_64")),
                ("vim-filesystem", Some("7.4.629-5.el6"), Some("x86_64")),
                ("gpm-libs", Some("1.20.6-12.el6"), Some("x86_64")),
                ("mlocate", Some("0.22.2-6.el6"), Some("x86_64")),
                ("ntpdate", Some("4.2.6p5-10.el6.centos.1"), Some("x86_64")),
                ("chef-compliance", Some("1.3.1-1.el6"), Some("x86_64")),
                ("compat-libstdc++-33", Some("3.2.3-72.el7"), Some("x86_64")),
                ("compat-libstdc++-33", Some("3.2.3-72.el7"), Some("i686")),
                ("nc", Some("1.84-24.el6"), Some("x86_64")),
            ]
        );
        assert!(pkgs
            .iter()
            .all(|p| p.state == PackageState::Installed && p.manager == PackageManager::Rpm));
    }

    #[test]
    fn script_format_lines() {
        // (line, name, version, arch, vendor, packager)
        type Row = (
            &'static str,
            &'static str,
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
            Option<&'static str>,
        );
        let cases: &[Row] = &[
            (
                "curl\t(none):7.29.0-19.el7\tx86_64\tCentOS\tCentOS BuildSystem <http://bugs.centos.org>",
                "curl",
                Some("7.29.0-19.el7"),
                Some("x86_64"),
                Some("CentOS"),
                Some("CentOS BuildSystem <http://bugs.centos.org>"),
            ),
            (
                "vim-enhanced\t2:8.2.2637-20.el9\tx86_64\tRed Hat, Inc.\tRed Hat, Inc. <http://bugzilla.redhat.com/bugzilla>",
                "vim-enhanced",
                Some("2:8.2.2637-20.el9"),
                Some("x86_64"),
                Some("Red Hat, Inc."),
                Some("Red Hat, Inc. <http://bugzilla.redhat.com/bugzilla>"),
            ),
            (
                "gpg-pubkey\t(none):fd431d51-4ae0493b\t(none)\t(none)\t(none)",
                "gpg-pubkey",
                Some("fd431d51-4ae0493b"),
                None,
                None,
                None,
            ),
            (
                "klnagent64\t0:14.2.0-1234\tx86_64\tAO Kaspersky Lab\t\t",
                "klnagent64",
                Some("0:14.2.0-1234"),
                Some("x86_64"),
                Some("AO Kaspersky Lab"),
                None,
            ),
            ("kesl", "kesl", None, None, None, None),
            ("kesl\t(none):(none)-(none)", "kesl", None, None, None, None),
            (
                "kesl\t1\tx86_64\tvendor\twith\ttabs",
                "kesl",
                Some("1"),
                Some("x86_64"),
                Some("vendor"),
                Some("with\ttabs"),
            ),
        ];
        for (line, name, version, arch, vendor, packager) in cases {
            let (pkgs, warnings) = parse_rpm(line);
            assert!(warnings.is_empty(), "{line:?}: {warnings:?}");
            let p = &pkgs[0];
            assert_eq!(p.name, *name, "{line:?}");
            assert_eq!(p.version.as_deref(), *version, "{line:?}");
            assert_eq!(p.arch.as_deref(), *arch, "{line:?}");
            assert_eq!(p.vendor.as_deref(), *vendor, "{line:?}");
            assert_eq!(p.maintainer.as_deref(), *packager, "{line:?}");
        }
    }

    #[test]
    fn hostile_and_broken_lines() {
        let long = "x".repeat(1 << 20);
        let cases: Vec<(String, usize, usize)> = vec![
            // (body, packages, warnings)
            (String::new(), 0, 0),
            ("\n \n".into(), 0, 0),
            ("\t1\tx86_64\n".into(), 0, 1),
            ("(none)\t1\n".into(), 0, 1),
            ("@@fleetsweep:abc:end rpm rc=0 x\t1\n".into(), 0, 1),
            // Not an RPM name (RPM names are ASCII letters, digits, `._+-~^`).
            ("kesl\0\t1\n".into(), 0, 1),
            (format!("{long}\t1\n"), 1, 0),
            (format!("a\t{long}\n"), 1, 0),
            (
                "kaspersky-lookalike\t1\tnoarch\t\t\nkesl-gui\t1\n".into(),
                2,
                0,
            ),
        ];
        for (body, npkgs, nwarn) in cases {
            let (pkgs, warnings) = parse_rpm(&body);
            assert_eq!(pkgs.len(), npkgs, "body {:?}", body.get(..60));
            assert_eq!(
                warnings.len(),
                nwarn,
                "body {:?}: {warnings:?}",
                body.get(..60)
            );
        }
    }
}
