//! The probe registry: one [`Probe`] per [`OsFamily`], holding everything the
//! sweep, the offline reader and the catalog need to know about that family.
//!
//! Why a registry: the family used to be a string that the sweep, the offline
//! reader and the matcher each branched on, so a family's command, parser,
//! bundle files and roots lived in four files. Now each family's module
//! ([`linux`], [`windows`], [`macos`]) declares one `PROBE`, and [`probe`] is
//! the only place that maps a family to it (after blackbox_exporter's prober
//! map and Vuls' one file per OS family). Adding a family is its variant in
//! [`OsFamily`], its module, and one arm in [`probe`] (which does not compile
//! until the arm exists).
//!
//! ```
//! use fleetsweep::os::OsFamily;
//! use fleetsweep::probes::registry::probe;
//! let (command, stdin) = probe(OsFamily::Windows).invocation(true, "n0nce", &[]);
//! assert!(command.starts_with("powershell.exe ") && stdin.is_empty());
//! ```

use super::{linux, macos, windows, Observations};
use crate::os::OsFamily;

/// Everything fleetsweep knows about probing one OS family. A static struct of
/// data and plain functions: no state, nothing to build.
#[derive(Debug)]
pub struct Probe {
    pub family: OsFamily,
    /// The command line that runs the probe, before any `sudo` (see [`Probe::invocation`]).
    pub command: fn() -> String,
    /// The probe script itself, as a user runs it by hand for an offline
    /// bundle (see [`Probe::standalone`]).
    pub script: fn() -> String,
    /// The probe's standard input for one run: the nonce and the path roots.
    pub stdin: fn(nonce: &str, roots: &[String]) -> Vec<u8>,
    /// `sudo -n` may wrap the command (`sudo: true` in the inventory). False
    /// where sudo does not exist (Windows).
    pub sudo: bool,
    /// Parses one run's standard output (`nonce` is the run's marker nonce,
    /// unused by probes that frame their output otherwise). Total.
    pub parse: fn(stdout: &str, nonce: &str) -> Observations,
    /// The probe's framing (nonce markers, the JSON document) is in the
    /// output: the probe ran, even if some sections failed.
    pub answered: fn(stdout: &str, nonce: &str) -> bool,
    /// Hosts without an `os:` hint are probed as Linux first; a family whose
    /// `recognises` says yes to that run is probed next, on the same connection.
    pub recognises: fn(run: &FirstRun<'_>) -> bool,
    /// How catalog `path` signatures of this family become the directories the
    /// probe lists ([`crate::catalog::Catalog::path_roots`]); None when the
    /// probe takes no roots (it lists [`Probe::fixed_roots`] only).
    pub root_depth: Option<RootDepth>,
    /// Install roots the probe script lists on its own, whatever the catalog says.
    pub fixed_roots: &'static [&'static str],
    /// Files of an offline bundle this family reads, in reading order.
    pub bundle_files: &'static [BundleFile],
    /// Sections a verdict on a host of this family requires: without them a
    /// host with no findings is not known to be clean, and the sweep makes it
    /// `probe_failed` ([`super::completeness::verdict`]).
    pub required_sections: &'static [RequiredSection],
}

impl Probe {
    /// The command line and standard input of one run, with `sudo -n` in front
    /// when asked for and the family allows it.
    pub fn invocation(&self, sudo: bool, nonce: &str, roots: &[String]) -> (String, Vec<u8>) {
        let command = (self.command)();
        let command = if sudo && self.sudo {
            format!("sudo -n {command}")
        } else {
            command
        };
        (command, (self.stdin)(nonce, roots))
    }
}

impl Probe {
    /// A script a user runs on a host by hand to make an offline bundle
    /// (`fleetsweep probe-script OS`): the probe script with its standard
    /// input (a fresh nonce, the catalog's path roots) built in as a here
    /// document, so `sh probe.sh > linux.txt` is all it takes. A probe that
    /// takes no input (Windows) is its script as it is.
    pub fn standalone(&self, roots: &[String]) -> String {
        let nonce = crate::probes::linux::new_nonce();
        let stdin = (self.stdin)(&nonce, roots);
        let script = (self.script)();
        if stdin.is_empty() {
            return script;
        }
        // stdin_for keeps only absolute roots without control characters, so
        // no line of it can end the here document early.
        let stdin = String::from_utf8_lossy(&stdin);
        format!(
            "#!/bin/sh\n\
             # fleetsweep {version}: the {family} probe, read-only. Run it as root and save what it\n\
             # prints in the host's bundle directory (docs/offline-bundles.md):\n\
             #   sh probe-{family}.sh > {family}.txt\n\
             {command} <<'FLEETSWEEP_PROBE_INPUT'\n{stdin}FLEETSWEEP_PROBE_INPUT\n",
            version = env!("CARGO_PKG_VERSION"),
            family = self.family.as_str(),
            command = crate::probes::linux::sh_command(&script),
        )
    }
}

/// The registered probe of `family`. Exhaustive: every family has exactly one.
pub fn probe(family: OsFamily) -> &'static Probe {
    match family {
        OsFamily::Linux => &linux::PROBE,
        OsFamily::Windows => &windows::PROBE,
        OsFamily::Macos => &macos::PROBE,
    }
}

/// What the Linux probe's run on a host without an `os:` hint looked like.
#[derive(Debug, Clone, Copy)]
pub struct FirstRun<'a> {
    pub answered: bool,
    pub stderr: &'a str,
    pub obs: &'a Observations,
}

/// The family the Linux probe's first run points to, if not Linux: the first
/// registered probe that recognises it.
pub fn recognise(run: &FirstRun<'_>) -> Option<OsFamily> {
    OsFamily::ALL
        .into_iter()
        .find(|f| (probe(*f).recognises)(run))
}

/// How deep (in `/`-separated components) the fixed part of a catalog path
/// must be before the probe lists it as a root. A glob lists its parent
/// directory, so a shallow one would list a shared folder (`/var/log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootDepth {
    /// For globs (`/opt/kaspersky/*` lists `/opt/kaspersky`, depth 2).
    pub glob: usize,
    /// For exact paths (listed themselves).
    pub exact: usize,
}

/// One file (or directory) of an offline bundle.
#[derive(Debug)]
pub struct BundleFile {
    /// File name inside the bundle directory.
    pub name: &'static str,
    /// The command (or the copy) that produces it; `docs/offline-bundles.md`
    /// gives the exact commands.
    pub made_by: &'static str,
    pub read: BundleRead,
}

impl BundleFile {
    /// A text file (UTF-8, or UTF-16 with BOM), parsed whole.
    pub const fn text(
        name: &'static str,
        made_by: &'static str,
        parse: fn(text: &str, obs: &mut Observations),
    ) -> Self {
        BundleFile {
            name,
            made_by,
            read: BundleRead::Text(parse),
        }
    }

    /// A directory of plist files, each parsed with its file name.
    pub const fn plist_dir(
        name: &'static str,
        made_by: &'static str,
        parse: fn(bytes: &[u8], name: &str, obs: &mut Observations),
    ) -> Self {
        BundleFile {
            name,
            made_by,
            read: BundleRead::PlistDir(parse),
        }
    }
}

/// How a bundle file is read into the observations.
#[derive(Debug, Clone, Copy)]
pub enum BundleRead {
    /// A text file (UTF-8, or UTF-16 with BOM), parsed whole.
    Text(fn(text: &str, obs: &mut Observations)),
    /// A directory of plist files, each parsed with its file name.
    PlistDir(fn(bytes: &[u8], name: &str, obs: &mut Observations)),
}

/// A section a verdict requires: at least one of `any_of` must have been read.
/// Names are the live probe's section names (`sh` script markers, or keys of
/// the Windows JSON document). Offline bundle files answer for the same names
/// (`dpkg-query.txt` for `dpkg`, `uninstall.xml` for `uninstall`, an
/// `Info.plist` directory for `apps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequiredSection {
    /// What is missing, as a report would say it.
    pub what: &'static str,
    pub any_of: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_family_is_registered_once() {
        let mut seen = HashSet::new();
        for f in OsFamily::ALL {
            assert_eq!(probe(f).family, f);
            assert!(
                seen.insert(std::ptr::from_ref(probe(f))),
                "{f} shares a probe"
            );
        }
    }

    #[test]
    fn bundle_file_tables() {
        for f in OsFamily::ALL {
            let files = probe(f).bundle_files;
            let names: HashSet<&str> = files.iter().map(|b| b.name).collect();
            assert_eq!(names.len(), files.len(), "{f} lists a file twice");
            assert!(files.iter().all(|b| !b.made_by.is_empty()));
            // The saved probe output comes first: single command outputs refine it.
            let first = files.first().map(|b| b.name);
            let want = if f == OsFamily::Windows {
                "windows.json".to_string()
            } else {
                format!("{f}.txt")
            };
            assert_eq!(first, Some(want.as_str()));
        }
        let plist_dirs: Vec<&str> = probe(OsFamily::Macos)
            .bundle_files
            .iter()
            .filter(|b| matches!(b.read, BundleRead::PlistDir(_)))
            .map(|b| b.name)
            .collect();
        assert_eq!(plist_dirs, ["Info.plist", "LaunchDaemons"]);
    }

    #[test]
    fn required_sections_are_sections_the_probe_prints() {
        for f in OsFamily::ALL {
            let p = probe(f);
            assert!(!p.required_sections.is_empty(), "{f}");
            for r in p.required_sections {
                for name in r.any_of {
                    let printed = match f {
                        OsFamily::Windows => windows::script().contains(&format!(";{name}=")),
                        OsFamily::Linux => linux::SCRIPT.contains(&format!("sec {name} ")),
                        OsFamily::Macos => macos::SCRIPT.contains(&format!("sec {name} ")),
                    };
                    assert!(printed, "{f} never prints required section {name}");
                }
            }
        }
    }

    #[test]
    fn fixed_roots_are_listed_by_the_script() {
        assert!(probe(OsFamily::Linux).fixed_roots.is_empty());
        for r in probe(OsFamily::Macos).fixed_roots {
            assert!(macos::SCRIPT.contains(r), "{r}");
        }
        let ps1 = windows::script();
        for r in probe(OsFamily::Windows).fixed_roots {
            let (base, folder) = r.split_once('\\').unwrap();
            let var = base.trim_matches('%');
            assert!(ps1.contains(&format!("env:{var}")), "{r}");
            assert!(ps1.contains(&format!("'{folder}'")), "{r}");
        }
    }

    #[test]
    fn sudo_wraps_sh_probes_only() {
        for f in OsFamily::ALL {
            let p = probe(f);
            let (plain, _) = p.invocation(false, "n0nce", &[]);
            let (wrapped, _) = p.invocation(true, "n0nce", &[]);
            assert_eq!(plain, (p.command)());
            if f == OsFamily::Windows {
                assert_eq!(wrapped, plain);
            } else {
                assert_eq!(wrapped, format!("sudo -n {plain}"));
            }
        }
    }
}
