//! The Linux probe: one read-only `sh` script, one exec per host, and the pure
//! parsers that turn its output into [`Observations`].
//!
//! # Layout
//! - [`script`]: the script, its standard input ([`stdin_for`]) and the nonce.
//! - [`sections`]: splitting the output at the nonce markers.
//! - one parser per section: [`os_release`], [`dpkg`], [`rpm`], [`apk`],
//!   [`systemd`], [`processes`], [`modules`], [`paths`].
//!
//! # Use
//! ```
//! use fleetsweep::probes::linux;
//! let nonce = linux::new_nonce();
//! let stdin = linux::stdin_for(&nonce, &["/opt/kaspersky".to_string()]);
//! // transport: run `linux::command()` with `stdin`, collect stdout, then
//! let stdout = format!("@@fleetsweep:{nonce}:begin os-release\nID=debian\n\n@@fleetsweep:{nonce}:end os-release rc=0\n@@fleetsweep:{nonce}:done\n");
//! let observations = linux::parse(&stdout, &nonce);
//! assert_eq!(observations.os.and_then(|os| os.name).as_deref(), Some("debian"));
//! ```
//!
//! Why parsers never fail: output comes from a host we do not control, possibly
//! cut by the transport's byte limit. Every parser is total; what it cannot read
//! becomes a [`ProbeWarning`] (one per section, not one per line), and the host
//! is still scanned on the evidence that did arrive.

pub mod apk;
pub mod containers;
pub mod dpkg;
pub mod kesl;
pub mod modules;
pub mod os_release;
pub mod paths;
pub mod processes;
pub mod rpm;
pub mod script;
pub mod sections;
pub mod systemd;

pub use apk::parse_apk;
pub use dpkg::{dpkg_state, parse_dpkg};
pub use kesl::parse_kesl_app_info;
pub use modules::parse_modules;
pub use os_release::{parse_os_release, parse_uname};
pub use paths::parse_paths;
pub use processes::{parse_processes, parse_ps};
pub use rpm::parse_rpm;
pub use script::{command, new_nonce, script, sh_command, stdin_for, MAX_PATH_ROOTS, SCRIPT};
pub use sections::{framed, parse_sections, Section, Sections};
pub use systemd::{exec_program, parse_services, parse_unit_files, UnitFile};

use super::completeness::{judge_body, with_framing, SectionState};
use super::offline::{paths_list, saved_run};
use super::registry::{BundleFile, Probe, RequiredSection, RootDepth};
use super::{Observations, ProbeWarning};
use crate::os::OsFamily;
use sections::warning;

/// The Linux entry of the [probe registry](super::registry).
pub const PROBE: Probe = Probe {
    family: OsFamily::Linux,
    command: || sh_command(SCRIPT),
    script: script::script,
    stdin: stdin_for,
    sudo: true,
    parse,
    answered: framed,
    // The probe every host without an `os:` hint gets first.
    recognises: |_| false,
    // Any root but `/` itself: Linux vendors install below their own folders.
    root_depth: Some(RootDepth { glob: 1, exact: 1 }),
    fixed_roots: &[],
    bundle_files: BUNDLE_FILES,
    required_sections: &[RequiredSection {
        what: "a package database (dpkg, rpm or apk)",
        any_of: &["dpkg", "rpm", "apk"],
    }],
};

const BUNDLE_FILES: &[BundleFile] = &[
    BundleFile::text(
        "linux.txt",
        "the Linux probe script's output",
        |t, obs| saved_run(t, obs, "linux.txt", "Linux", parse),
    ),
    BundleFile::text(
        "os-release",
        "cat /etc/os-release",
        |t, obs| {
            let os = parse_os_release(t);
            obs.section("os-release", os_state(&os));
            obs.os = Some(os);
        },
    ),
    BundleFile::text(
        "dpkg-query.txt",
        "dpkg-query -W -f='${Status}\\t${Package}\\t${Version}\\t${Architecture}\\t${Maintainer}\\n'",
        |t, obs| package_file(t, obs, "dpkg", parse_dpkg),
    ),
    BundleFile::text(
        "rpm-qa.txt",
        "rpm -qa --qf '%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{VENDOR}\\t%{PACKAGER}\\n'",
        |t, obs| package_file(t, obs, "rpm", parse_rpm),
    ),
    BundleFile::text(
        "kesl-control-app-info.txt",
        "kesl-control --app-info",
        |t, obs| match parse_kesl_app_info(t) {
            Some(u) => {
                obs.section("kesl-app-info", (SectionState::Read, None));
                obs.signature_updates.push(u)
            }
            None => {
                let why = "no `Last release date of databases:` line";
                obs.section("kesl-app-info", (SectionState::Failed, Some(why.to_string())));
                obs.warnings
                    .push(warning("kesl-control-app-info.txt", why.to_string()))
            }
        },
    ),
    BundleFile::text(
        "paths.txt",
        "find /opt/kaspersky /var/opt/kaspersky /etc/opt/kaspersky -maxdepth 3",
        paths_list,
    ),
];

/// A package list file of a bundle (`dpkg-query.txt`, `rpm-qa.txt`): the
/// packages, and the state of the section it answers for.
fn package_file(
    text: &str,
    obs: &mut Observations,
    section: &str,
    parse: fn(&str) -> (Vec<super::Package>, Vec<ProbeWarning>),
) {
    let (found, warnings) = parse(text);
    obs.section(section, judge_body(text, found.len(), true, false));
    obs.add(|o| &mut o.packages, (found, warnings));
}

/// Parses one run of [`SCRIPT`] whose markers carry `nonce`. Total: any output,
/// even empty or hostile, gives `Observations`, with warnings saying what is
/// missing or was not understood.
pub fn parse(output: &str, nonce: &str) -> Observations {
    let split = parse_sections(output, nonce);
    let mut obs = Observations {
        warnings: split.warnings.clone(),
        ..Observations::default()
    };

    for s in &split.sections {
        if let Some(w) = status_warning(s) {
            obs.warnings.push(w);
        }
        let (found, warnings) = match s.name {
            "dpkg" => parse_dpkg(s.body),
            "rpm" => parse_rpm(s.body),
            "apk" => parse_apk(s.body),
            "os-release" | "uname" | "systemd" | "systemd-running" | "unit-files" | "processes"
            | "proc-cmdline" | "proc-exe" | "proc-owner" | "proc-pidns" | "proc-status"
            | "proc-cgroup" | "proc-head" | "proc-ls" | "ps" | "modules" | "paths"
            | "kesl-app-info" => continue,
            other => {
                obs.warnings
                    .push(warning(other, "unknown section ignored".to_string()));
                continue;
            }
        };
        // dpkg and rpm print one package a line; apk a record of several.
        let strict = s.name != "apk";
        let judged = judge_body(s.body, found.len(), strict, false);
        obs.section(s.name, framed_state(s, judged));
        obs.packages.extend(found);
        obs.warnings.extend(warnings);
    }
    probe_state(&split, &mut obs);

    obs.os = os_info(&split);
    for name in ["os-release", "uname"] {
        if let Some(s) = split.get(name) {
            let os = if name == "uname" {
                parse_uname(s.body)
            } else {
                parse_os_release(s.body)
            };
            obs.section(name, framed_state(s, os_state(&os)));
        }
    }
    // Read by parse_services as one: judged on their framing.
    for name in [
        "systemd",
        "systemd-running",
        "unit-files",
        "proc-cmdline",
        "proc-exe",
        "proc-pidns",
        "proc-status",
        "proc-cgroup",
        "proc-head",
        "proc-ls",
    ] {
        if let Some(s) = split.get(name) {
            obs.section(name, framed_state(s, (SectionState::Read, None)));
        }
    }

    let running = split
        .get("systemd-running")
        .filter(|s| s.complete && s.rc == Some(0))
        .map(|s| s.body);
    let (services, warnings) = parse_services(
        split.get("systemd").map(|s| s.body),
        running,
        split.get("unit-files").map(|s| s.body),
    );
    obs.services = services;
    obs.warnings.extend(warnings);

    let (processes, warnings) = match (split.get("processes"), split.get("ps")) {
        (Some(s), _) => {
            let (mut procs, w) = parse_processes(s.body);
            obs.section(
                s.name,
                framed_state(s, judge_body(s.body, procs.len(), false, false)),
            );
            // Today's probe prints the `head` batches (command lines and cgroups)
            // as one `proc-head` section and the `ls` batches (owners,
            // executables, PID namespaces) as one `proc-ls`, each parser taking
            // its own lines by their file names; older probes and BusyBox's
            // `ls` print one section per batch.
            let batch = |own: &str, joint: &str| {
                split.get(own).or_else(|| split.get(joint)).map(|s| s.body)
            };
            // No owner batch in an output that was cut before its end: the
            // owners were lost, not never listed (an older probe's bundle,
            // which has none, is complete). Every process is then of unseen
            // owner, so names and command lines count for nothing: a host
            // could otherwise flood the output until the owners fall past the
            // cap and have an unprivileged process trusted by its name.
            let owners = batch("proc-owner", "proc-ls").or((!split.done).then_some(""));
            processes::merge_batches(
                &mut procs,
                batch("proc-cmdline", "proc-head"),
                batch("proc-exe", "proc-ls"),
                owners,
            );
            containers::mark(
                &mut procs,
                batch("proc-pidns", "proc-ls"),
                split.get("proc-status").map(|s| s.body),
                batch("proc-cgroup", "proc-head"),
            );
            (procs, w)
        }
        (None, Some(s)) => {
            let (procs, w) = parse_ps(s.body);
            obs.section(
                s.name,
                framed_state(s, judge_body(s.body, procs.len(), false, false)),
            );
            (procs, w)
        }
        (None, None) => (Vec::new(), Vec::new()),
    };
    obs.processes = processes;
    obs.warnings.extend(warnings);

    if let Some(s) = split.get("modules") {
        let (modules, warnings) = parse_modules(s.body);
        obs.section(
            s.name,
            framed_state(s, judge_body(s.body, modules.len(), false, true)),
        );
        obs.kernel_modules = modules;
        obs.warnings.extend(warnings);
    }
    if let Some(s) = split.get("kesl-app-info") {
        match (
            kesl::parse_kesl_app_info(s.body),
            kesl::app_info_status(s.body),
        ) {
            (Some(update), _) => {
                obs.section(s.name, framed_state(s, (SectionState::Read, None)));
                obs.signature_updates.push(update)
            }
            (None, Some(rc)) if rc != 0 => obs.warnings.push(warning(
                "kesl-app-info",
                format!(
                    "kesl-control --app-info failed (exit status {rc}): the age of KESL's \
                     anti-virus databases is unknown; it answers root only, so give the host \
                     `sudo: true`"
                ),
            )),
            (None, _) => obs.warnings.push(warning(
                "kesl-app-info",
                "kesl-control --app-info printed no `Last release date of databases:`: the age \
                 of KESL's anti-virus databases is unknown"
                    .to_string(),
            )),
        }
    }
    if let Some(s) = split.get("kesl-app-info") {
        if !obs.sections.contains_key(s.name) {
            obs.section(
                s.name,
                (
                    SectionState::Failed,
                    Some("no database release date".to_string()),
                ),
            );
        }
    }
    if let Some(s) = split.get("paths") {
        let (paths, warnings) = parse_paths(s.body);
        obs.section(
            s.name,
            framed_state(s, judge_body(s.body, paths.len(), false, true)),
        );
        obs.paths = paths;
        obs.warnings.extend(warnings);
    }
    obs
}

/// A framed section's state: its content judged, capped by its framing.
pub(crate) fn framed_state(
    s: &Section<'_>,
    judged: (SectionState, Option<String>),
) -> (SectionState, Option<String>) {
    with_framing(judged, s.complete, s.rc)
}

/// The `probe` pseudo-section: the script's own framing. A run that never
/// printed its `done` marker is cut: sections after the cut are missing.
pub(crate) fn probe_state(split: &Sections<'_>, obs: &mut Observations) {
    let state = if split.done {
        (SectionState::Read, None)
    } else if split.sections.is_empty() {
        (
            SectionState::Failed,
            Some(
                "no probe output: the script did not run or printed nothing recognisable"
                    .to_string(),
            ),
        )
    } else {
        (
            SectionState::Partial,
            Some("output ended before the script finished: later sections are missing".to_string()),
        )
    };
    obs.section("probe", state);
}

/// os-release or uname that named the system.
fn os_state(os: &fleetsweep_exporters::OsInfo) -> (SectionState, Option<String>) {
    if os.name.is_some() || os.version.is_some() {
        (SectionState::Read, None)
    } else {
        (
            SectionState::Failed,
            Some("no operating system name or version in it".to_string()),
        )
    }
}

/// os-release when it said anything, else `uname`, else whatever os-release gave.
fn os_info(split: &Sections<'_>) -> Option<fleetsweep_exporters::OsInfo> {
    let from_release = split.get("os-release").map(|s| parse_os_release(s.body));
    let from_uname = split.get("uname").map(|s| parse_uname(s.body));
    match from_release {
        Some(os) if os.name.is_some() || os.version.is_some() => Some(os),
        other => from_uname.filter(|os| os.name.is_some()).or(other),
    }
}

/// A warning for a section whose command exited non-zero: its list may be partial.
fn status_warning(s: &Section<'_>) -> Option<ProbeWarning> {
    let rc = s.rc.filter(|rc| *rc != 0)?;
    let what = match s.name {
        "os-release" => "reading /etc/os-release and /usr/lib/os-release failed",
        "uname" => "uname failed",
        "dpkg" => "dpkg-query failed: the dpkg package list may be incomplete",
        "rpm" => "rpm -qa failed: the rpm package list may be incomplete",
        "apk" => "reading the apk database failed: the apk package list may be incomplete",
        "systemd" => "systemctl list-unit-files failed: services come from unit files only",
        "systemd-running" => "systemctl list-units failed: whether services are running is unknown",
        "processes" | "ps" => "listing processes failed: the process list may be incomplete",
        "modules" => "reading /proc/modules or running lsmod failed: kernel modules unknown",
        _ => "section failed: its evidence may be incomplete",
    };
    Some(warning(s.name, format!("{what} (exit status {rc})")))
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table-driven tests
mod tests {
    use super::*;
    use crate::probes::{PackageManager, PackageState, PathKind};

    const N: &str = "T3stNonce";

    fn section(name: &str, body: &str, rc: i32) -> String {
        format!("@@fleetsweep:{N}:begin {name}\n{body}\n@@fleetsweep:{N}:end {name} rc={rc}\n")
    }

    fn done() -> String {
        format!("@@fleetsweep:{N}:done\n")
    }

    /// A whole run assembled from the recorded fixtures, one section each.
    fn recorded_run() -> String {
        [
            section(
                "os-release",
                "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian",
                0,
            ),
            section("uname", "Linux 6.1.0-18-amd64", 0),
            section(
                "dpkg",
                include_str!("../../../../tests/fixtures/linux/inspec-mocks/dpkg-query-W"),
                0,
            ),
            section(
                "rpm",
                include_str!("../../../../tests/fixtures/linux/inspec-mocks/rpm-qa-queryformat"),
                0,
            ),
            section(
                "apk",
                include_str!("../../../../tests/fixtures/linux/inspec-mocks/apk-info"),
                0,
            ),
            section("systemd", "ssh.service enabled enabled\nkesl.service enabled enabled", 0),
            section("systemd-running", "ssh.service loaded active running OpenBSD Secure Shell server", 0),
            section(
                "unit-files",
                "u\t/lib/systemd/system/kesl.service\nx\t/lib/systemd/system/kesl.service:ExecStart=/opt/kaspersky/kesl/libexec/kesl_launcher.sh",
                0,
            ),
            section("processes", "1\tinit\t/sbin/init\t/sbin/init \n812\twdserver\t\t/opt/kaspersky/kesl/libexec/wdserver ", 0),
            section(
                "modules",
                include_str!("../../../../tests/fixtures/linux/inspec-mocks/lsmod"),
                0,
            ),
            section("paths", "d\t/opt/kaspersky\nf\t/opt/kaspersky/kesl/bin/kesl-control", 0),
            done(),
        ]
        .concat()
    }

    /// The `head` batches as one `proc-head` section and the `ls` batches as
    /// one `proc-ls` (today's probe) give the same processes as one section per
    /// batch (older probes, BusyBox), hostile lines included: a command line
    /// that looks like another file's header and an executable path that looks
    /// like a namespace link are never taken for them.
    #[test]
    fn joint_process_batches_read_as_separate_ones() {
        let procs = "1\tinit\t\t\n812\twdserver\t\t\n900\tsh\t\t\n";
        let cmdline = "==> 1/cmdline <==\n/sbin/init \n\n==> 812/cmdline <==\n/opt/kaspersky/kesl/libexec/wdserver -d \n\n==> 900/cmdline <==\n==> 812/cgroup <==\n";
        let cgroup = "==> 1/cgroup <==\n0::/init.scope\n\n==> 812/cgroup <==\n0::/system.slice/docker-3f2a1b2c3d4e5f60718293a4b5c6d7e8f90123456789abcdef0123456789abcd.scope\n";
        let exe = "lrwxrwxrwx 1 0 0 0 Dec  3 12:29 1/exe -> /sbin/init\nlrwxrwxrwx 1 0 0 0 Dec  3 12:29 812/exe -> /opt/kaspersky/kesl/libexec/wdserver\nlrwxrwxrwx 1 1000 1000 0 Dec  3 12:29 900/exe -> /tmp/x -> pid:[1]\n";
        let owner = "dr-xr-xr-x 9 0 0 0 Dec  2 00:43 1\ndr-xr-xr-x 9 0 0 0 Dec  2 00:43 812\ndr-xr-xr-x 9 1000 1000 0 Dec  2 00:43 900\n";
        let pidns = "lrwxrwxrwx 1 0 0 0 Dec  3 13:08 1/ns/pid -> pid:[4026531836]\nlrwxrwxrwx 1 0 0 0 Dec  3 13:08 812/ns/pid -> pid:[4026532999]\nlrwxrwxrwx 1 0 0 0 Dec  3 13:16 self/ns/pid -> pid:[4026531836]\n";
        let status = "self/status:NSpid:\t77\n1/status:NSpid:\t1\n812/status:NSpid:\t812\t1\n900/status:NSpid:\t900\n";
        let separate = [
            section("processes", procs, 0),
            section("proc-cmdline", cmdline, 0),
            section("proc-exe", exe, 0),
            section("proc-owner", owner, 0),
            section("proc-pidns", pidns, 0),
            section("proc-status", status, 0),
            section("proc-cgroup", cgroup, 0),
            done(),
        ]
        .concat();
        let joint = [
            section("processes", procs, 0),
            section("proc-head", &format!("{cmdline}\n{cgroup}"), 0),
            section("proc-ls", &format!("{owner}{exe}{pidns}"), 0),
            section("proc-status", status, 0),
            done(),
        ]
        .concat();
        let a = parse(&separate, N);
        let b = parse(&joint, N);
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
        assert_eq!(a.processes, b.processes);
        let row = |p: &crate::probes::Process| {
            (
                p.pid,
                p.cmdline.clone(),
                p.exe.clone(),
                p.owner_uid,
                p.container.clone(),
            )
        };
        let got: Vec<_> = b.processes.iter().map(row).collect();
        assert_eq!(
            got,
            vec![
                (
                    1,
                    "/sbin/init".into(),
                    Some("/sbin/init".into()),
                    Some(0),
                    None
                ),
                (
                    812,
                    "/opt/kaspersky/kesl/libexec/wdserver -d".into(),
                    Some("/opt/kaspersky/kesl/libexec/wdserver".into()),
                    Some(0),
                    Some("docker 3f2a1b2c3d4e".into())
                ),
                // Its command line looks like a cgroup header of 812: it is
                // read as the command line it is.
                (
                    900,
                    "==> 812/cgroup <==".into(),
                    Some("/tmp/x -> pid:[1]".into()),
                    Some(1000),
                    None
                ),
            ]
        );
    }

    /// Output cut after the command lines, before the owners (a host that
    /// floods past the cap): no process is trusted by its name. A complete
    /// output without owners (an older probe's bundle) keeps the old rule.
    #[test]
    fn owners_cut_off_trust_no_process_name() {
        let procs = "812\twdserver\t\t\n";
        let head = "==> 812/cmdline <==\n/opt/kaspersky/kesl/libexec/wdserver -d \n";
        let cut = [
            section("processes", procs, 0),
            section("proc-head", head, 0),
        ]
        .concat();
        let obs = parse(&cut, N);
        assert_eq!(obs.processes.len(), 1);
        assert_eq!(
            obs.processes[0].owner_uid,
            Some(crate::probes::Process::OWNER_NOT_SEEN)
        );
        let complete = cut + &done();
        let obs = parse(&complete, N);
        assert_eq!(obs.processes[0].owner_uid, None);
    }

    #[test]
    fn whole_run_from_recorded_outputs() {
        let obs = parse(&recorded_run(), N);
        assert!(obs.warnings.is_empty(), "{:?}", obs.warnings);
        let os = obs.os.expect("os");
        assert_eq!(
            (
                os.family.as_str(),
                os.name.as_deref(),
                os.version.as_deref()
            ),
            ("linux", Some("Debian GNU/Linux"), Some("12"))
        );
        let count = |m| obs.packages.iter().filter(|p| p.manager == m).count();
        assert_eq!(count(PackageManager::Dpkg), 14);
        assert_eq!(count(PackageManager::Rpm), 12);
        assert_eq!(count(PackageManager::Apk), 6);
        let services: Vec<(&str, Option<bool>)> = obs
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.active))
            .collect();
        assert_eq!(services, vec![("kesl", Some(false)), ("ssh", Some(true))]);
        assert_eq!(obs.processes.len(), 2);
        assert_eq!(obs.kernel_modules, vec!["bridge", "video"]);
        assert_eq!(obs.paths.len(), 2);
    }

    #[test]
    fn failures_become_warnings_not_errors() {
        let cases: Vec<(String, Vec<&str>)> = vec![
            // (output, warning sections in order)
            (String::new(), vec!["probe"]),
            (section("dpkg", "", 2) + &done(), vec!["dpkg"]),
            (section("os-release", "", 1) + &done(), vec!["os-release"]),
            (section("bogus", "", 0) + &done(), vec!["bogus"]),
            (section("modules", "", 0) + &done(), vec![]),
            (
                section("dpkg", "ii\tbash\t5", 0)
                    + &format!("@@fleetsweep:{N}:begin rpm\nbash\t(none):5-1\tx86_64\t\t"),
                vec!["rpm", "probe"],
            ),
            (
                section("systemd-running", "", 1) + &done(),
                vec!["systemd-running"],
            ),
        ];
        for (out, want) in cases {
            let obs = parse(&out, N);
            let got: Vec<&str> = obs.warnings.iter().map(|w| w.section.as_str()).collect();
            assert_eq!(got, want, "output {out:?}: {:?}", obs.warnings);
        }
        // What arrived before the cut is kept.
        let out = section("dpkg", "ii\tbash\t5", 0)
            + &format!("@@fleetsweep:{N}:begin rpm\nbash\t(none):5-1\tx86_64\t\t");
        let obs = parse(&out, N);
        assert_eq!(obs.packages.len(), 2);
    }

    #[test]
    fn running_state_unknown_when_systemctl_failed_or_was_cut() {
        let files = section("unit-files", "u\t/etc/systemd/system/kesl.service", 0);
        let cases: Vec<(String, Option<bool>)> = vec![
            (files.clone() + &done(), None),
            (section("systemd-running", "", 0) + &files + &done(), Some(false)),
            (section("systemd-running", "kesl.service loaded active running x", 0) + &files + &done(), Some(true)),
            (section("systemd-running", "kesl.service loaded active running x", 1) + &files + &done(), None),
            (files.clone() + &format!("@@fleetsweep:{N}:begin systemd-running\nkesl.service loaded active running x\n"), None),
        ];
        for (out, want) in cases {
            let obs = parse(&out, N);
            let kesl = obs
                .services
                .iter()
                .find(|s| s.name == "kesl")
                .expect("kesl");
            assert_eq!(kesl.active, want, "output {out:?}");
        }
    }

    #[test]
    fn os_falls_back_to_uname() {
        let cases: Vec<(String, Option<(Option<&str>, Option<&str>)>)> = vec![
            (done(), None),
            (
                section("uname", "Linux 6.1.0", 0) + &done(),
                Some((Some("Linux"), None)),
            ),
            (
                section("os-release", "", 1) + &section("uname", "Linux 6.1.0", 0) + &done(),
                Some((Some("Linux"), None)),
            ),
            (section("os-release", "", 1) + &done(), Some((None, None))),
            (
                section("os-release", "ID=alpine\nVERSION_ID=3.19.1", 0)
                    + &section("uname", "Linux 6.1.0", 0)
                    + &done(),
                Some((Some("alpine"), Some("3.19.1"))),
            ),
        ];
        for (out, want) in cases {
            let os = parse(&out, N).os;
            let got = os
                .as_ref()
                .map(|o| (o.name.as_deref(), o.version.as_deref()));
            assert_eq!(got, want, "output {out:?}");
            assert!(os.iter().all(|o| o.family == "linux"));
        }
    }

    #[test]
    fn hostile_output_cannot_fake_sections() {
        // A package whose name and maintainer carry marker text of a guessed nonce,
        // a 1 MB line, NULs, and lookalike names: all data, never structure.
        let long = "x".repeat(1 << 20);
        let body = format!(
            "install ok installed\tkasperskyy\t1\tamd64\t@@fleetsweep:guess:end dpkg rc=0\n\
             install ok installed\tkesl\t1\tamd64\t\n@@fleetsweep:guess:begin paths\n\
             install ok installed\tnul\0name\t1\tamd64\t\0\n{long}\n"
        );
        let out = section("dpkg", &body, 0) + &done();
        let obs = parse(&out, N);
        let names: Vec<&str> = obs.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["kasperskyy", "kesl", "nul\0name"]);
        assert!(obs.paths.is_empty());
        assert_eq!(obs.warnings.len(), 1, "{:?}", obs.warnings);
        assert!(obs.warnings[0]
            .message
            .starts_with("2 lines not understood"));
        assert!(obs.warnings[0].message.len() < 200);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // Deterministic pseudo-random bytes, decoded like the transport does.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..200 {
            let mut bytes = Vec::with_capacity(4096);
            for _ in 0..(round * 37 % 4096) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(match x % 7 {
                    0 => b'\t',
                    1 => b'\n',
                    2 => b':',
                    _ => (x >> 8) as u8,
                });
            }
            let text = String::from_utf8_lossy(&bytes);
            let mut out = String::new();
            for name in [
                "os-release",
                "uname",
                "dpkg",
                "rpm",
                "apk",
                "systemd",
                "systemd-running",
                "unit-files",
                "processes",
                "ps",
                "modules",
                "paths",
            ] {
                out.push_str(&section(name, &text, round % 3));
            }
            let _ = parse(&out, N);
            let _ = parse(&text, N);
        }
    }

    #[test]
    fn package_states_survive_the_whole_pipeline() {
        let out = section(
            "dpkg",
            "deinstall ok config-files\tkesl\t12.1\tamd64\tAO Kaspersky Lab\n\
             install ok half-installed\tklnagent64\t14\tamd64\t\n\
             purge ok not-installed\tkess\t\t\t",
            0,
        ) + &done();
        let states: Vec<PackageState> = parse(&out, N)
            .packages
            .into_iter()
            .map(|p| p.state)
            .collect();
        assert_eq!(
            states,
            vec![
                PackageState::ConfigFiles,
                PackageState::Partial,
                PackageState::NotInstalled
            ]
        );
    }

    #[test]
    fn paths_parse_through_parse() {
        let out = section("paths", "d\t/opt/kaspersky\nl\t/opt/kaspersky/x", 0) + &done();
        let kinds: Vec<PathKind> = parse(&out, N).paths.into_iter().map(|p| p.kind).collect();
        assert_eq!(kinds, vec![PathKind::Dir, PathKind::Link]);
    }

    #[test]
    fn sections_say_how_they_were_read() {
        use crate::probes::completeness::{verdict, SectionState::*};
        let state = |obs: &Observations, n: &str| obs.sections.get(n).map(|s| s.state);
        // Only the end marker: nothing was read, the package database is missing.
        let obs = parse(&done(), N);
        assert_eq!(state(&obs, "probe"), Some(Read));
        let v = verdict(&obs.sections, PROBE.required_sections);
        assert_eq!(
            v.missing,
            ["a package database (dpkg, rpm or apk) (dpkg: not in the output; rpm: not in the output; apk: not in the output)"]
        );
        // Garbage, empty, cut, failed.
        let garbage = "\u{1}\u{7f}zz\tq\nxx yy zz ww\n\u{fffd}\u{fffd}\n";
        let cases: Vec<(String, &str, crate::probes::completeness::SectionState)> = vec![
            (section("dpkg", garbage, 0) + &done(), "dpkg", Failed),
            (section("dpkg", "", 0) + &done(), "dpkg", Empty),
            (section("dpkg", "ii\tbash\t5", 0) + &done(), "dpkg", Read),
            (section("dpkg", "ii\tbash\t5", 1) + &done(), "dpkg", Partial),
            (section("dpkg", "", 1) + &done(), "dpkg", Failed),
            (
                format!("@@fleetsweep:{N}:begin dpkg\nii\tbash\t5\n"),
                "dpkg",
                Partial,
            ),
            (section("rpm", garbage, 0) + &done(), "rpm", Failed),
            (
                section("os-release", garbage, 0) + &done(),
                "os-release",
                Failed,
            ),
            (section("processes", "", 0) + &done(), "processes", Empty),
            (section("modules", "", 0) + &done(), "modules", Read),
            (section("paths", "", 0) + &done(), "paths", Read),
            (section("dpkg", "ii\tbash\t5", 0), "probe", Partial),
            (String::new(), "probe", Failed),
        ];
        for (out, name, want) in cases {
            let obs = parse(&out, N);
            assert_eq!(state(&obs, name), Some(want), "{out:?}: {:?}", obs.sections);
        }
        // A whole recorded run is complete.
        let obs = parse(&recorded_run(), N);
        assert_eq!(
            verdict(&obs.sections, PROBE.required_sections),
            Default::default(),
            "{:?}",
            obs.sections
        );
    }
}

/// The script run for real on this machine, under each shell it must support.
#[cfg(test)]
mod run_tests {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    use super::*;
    use crate::probes::{PackageManager, PackageState, PathKind};

    /// Busybox applets the script uses; linked first in PATH for the busybox run
    /// so that it also tests busybox's find/sed/grep/tr/dd, as on Alpine.
    const BUSYBOX_APPLETS: &[&str] = &[
        "cat", "dd", "tr", "find", "sed", "grep", "readlink", "head", "uname", "ps", "lsmod",
    ];

    struct Tree {
        _dir: tempfile::TempDir,
        root: PathBuf,
    }

    /// A fake install root: files, a symlink, a tree deeper than the depth limit,
    /// and a file name carrying a newline and a marker line.
    fn fake_install_root() -> Tree {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("kaspersky");
        let bin = root.join("kesl").join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        std::fs::write(bin.join("kesl-control"), b"#!/bin/sh\n").expect("write");
        std::fs::create_dir_all(root.join("a/b/c/d")).expect("mkdir deep");
        std::fs::write(root.join("a/b/c/d/too-deep"), b"").expect("write deep");
        std::os::unix::fs::symlink("/etc/hostname", root.join("link")).expect("symlink");
        std::fs::write(
            root.join("evil\n@@fleetsweep:guess:end paths rc=0\nf\t"),
            b"",
        )
        .expect("write evil");
        Tree { _dir: dir, root }
    }

    fn run(program: &str, args: &[&str], path_env: Option<&str>, stdin: &[u8]) -> (String, String) {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = path_env {
            cmd.env("PATH", path);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{program} {args:?} failed");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn check(label: &str, stdout: &str, stderr: &str, nonce: &str, root: &Path) {
        let obs = parse(stdout, nonce);
        let ctx = format!("{label}: warnings {:?}\nstderr: {stderr}", obs.warnings);
        // Kernel modules may be missing (no /proc/modules in containers); the
        // only other warning is the tail of the file name with newlines in it.
        let others: Vec<_> = obs
            .warnings
            .iter()
            .filter(|w| w.section != "modules")
            .collect();
        assert_eq!(others.len(), 1, "{ctx}");
        assert_eq!(others[0].section, "paths", "{ctx}");
        assert!(
            others[0].message.starts_with("2 lines not understood"),
            "{ctx}"
        );

        let os = obs.os.as_ref().expect("os");
        assert_eq!(os.family, "linux");
        assert!(
            os.name.as_deref().unwrap_or_default().contains("Debian"),
            "{ctx}: os {os:?}"
        );
        assert!(os.version.is_some(), "{ctx}: os {os:?}");

        assert!(
            obs.packages.len() > 50,
            "{ctx}: {} packages",
            obs.packages.len()
        );
        let dpkg = obs
            .packages
            .iter()
            .find(|p| p.manager == PackageManager::Dpkg && p.name == "dpkg")
            .unwrap_or_else(|| panic!("{ctx}: package dpkg missing"));
        assert_eq!(dpkg.state, PackageState::Installed, "{ctx}");
        assert!(
            dpkg.version.is_some() && dpkg.arch.is_some() && dpkg.maintainer.is_some(),
            "{ctx}: {dpkg:?}"
        );

        let me = std::process::id();
        let this = obs
            .processes
            .iter()
            .find(|p| p.pid == me)
            .unwrap_or_else(|| panic!("{ctx}: test process {me} not listed"));
        assert!(!this.name.is_empty(), "{ctx}: {this:?}");
        assert!(this.exe.is_some(), "{ctx}: own exe readable: {this:?}");
        // The batches of /proc (one section each, or joined) all reached it.
        let exe = std::env::current_exe().expect("current exe");
        let argv0 = std::env::args().next().expect("argv0");
        assert!(this.cmdline.starts_with(&argv0), "{ctx}: {this:?}");
        assert_eq!(this.exe.as_deref(), exe.to_str(), "{ctx}: {this:?}");
        assert_eq!(
            this.owner_uid,
            Some(nix::unistd::geteuid().as_raw()),
            "{ctx}: {this:?}"
        );
        assert_eq!(this.container, None, "{ctx}: {this:?}");

        assert!(
            obs.services
                .iter()
                .any(|s| s.path.as_deref().is_some_and(|p| p.ends_with(".service"))),
            "{ctx}: no unit files read"
        );
        assert!(
            obs.services.iter().any(|s| s.exec.is_some()),
            "{ctx}: no ExecStart= read from the unit files"
        );

        let root_s = root.to_string_lossy();
        let kind = |rel: &str| {
            let want = if rel.is_empty() {
                root_s.to_string()
            } else {
                format!("{root_s}/{rel}")
            };
            obs.paths.iter().find(|p| p.path == want).map(|p| p.kind)
        };
        assert_eq!(kind(""), Some(PathKind::Dir), "{ctx}: {:?}", obs.paths);
        assert_eq!(kind("kesl/bin"), Some(PathKind::Dir), "{ctx}");
        assert_eq!(kind("kesl/bin/kesl-control"), Some(PathKind::File), "{ctx}");
        assert_eq!(kind("link"), Some(PathKind::Link), "{ctx}");
        assert_eq!(kind("a/b/c"), Some(PathKind::Dir), "{ctx}");
        assert_eq!(kind("a/b/c/d"), None, "{ctx}: depth limit");
        // The file name with newlines: its first line names nothing that exists
        // (`o`), its marker-looking line is data and rejected, never a marker.
        assert_eq!(kind("evil"), Some(PathKind::Other), "{ctx}");
        assert!(
            obs.paths.iter().all(|p| p.path.starts_with(&*root_s)),
            "{ctx}"
        );
    }

    fn input(nonce: &str, root: &Path) -> Vec<u8> {
        stdin_for(
            nonce,
            &[
                root.to_string_lossy().into_owned(),
                "relative/ignored".to_string(),
                "/nonexistent/fleetsweep/root".to_string(),
            ],
        )
    }

    /// Debian's `rpm` (installed by scripts/setup) with no rpm database: the
    /// probe must neither warn nor create `~/.rpmdb` in the scan user's home.
    #[test]
    fn rpm_without_a_database_is_neither_a_warning_nor_a_write() {
        assert!(
            Command::new("rpm").arg("--version").output().is_ok(),
            "rpm is not installed: apt-get install -y rpm (scripts/setup does this)"
        );
        let home = tempfile::tempdir().expect("tempdir");
        let nonce = new_nonce();
        let mut child = Command::new("/bin/sh")
            .args(["-c", SCRIPT])
            .env("HOME", home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("sh");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(&stdin_for(&nonce, &[]))
            .expect("write stdin");
        let out = child.wait_with_output().expect("wait");
        let obs = parse(&String::from_utf8_lossy(&out.stdout), &nonce);
        assert!(
            obs.warnings.iter().all(|w| w.section != "rpm"),
            "{:?}",
            obs.warnings
        );
        assert!(
            !home.path().join(".rpmdb").exists(),
            "the probe created ~/.rpmdb"
        );
    }

    /// A `kesl-control` on PATH (KESL installed elsewhere than /opt) is asked
    /// for `--app-info`, under dash and under busybox ash with busybox's
    /// `timeout` and `head`; one that refuses (not root) becomes a warning.
    #[test]
    fn kesl_control_on_path_is_asked_for_its_app_info() {
        let busybox = ["/usr/bin/busybox", "/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox is not installed: apt-get install -y busybox");
        for (answer, want_date) in [
            (
                "[ \"$1\" = --app-info ] || exit 9\necho 'Name:   Kaspersky Endpoint Security 11.4 for Linux'\n\
                 echo 'Last release date of databases:   2024-09-28 03:10:00'\n",
                Some("2024-09-28"),
            ),
            ("echo 'Error: this command requires root privileges' >&2\nexit 1\n", None),
        ] {
            let bin = tempfile::tempdir().expect("tempdir");
            let tool = bin.path().join("kesl-control");
            std::fs::write(&tool, format!("#!/bin/sh\n{answer}")).expect("write");
            std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .expect("chmod");
            let applets = tempfile::tempdir().expect("tempdir");
            for a in ["timeout", "head", "cat", "sed", "grep", "find", "tr"] {
                std::os::unix::fs::symlink(busybox, applets.path().join(a)).expect("applet");
            }
            let system = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string());
            for (label, program, args, path) in [
                ("/bin/sh", "/bin/sh", vec!["-c", SCRIPT], format!("{}:{system}", bin.path().display())),
                (
                    "busybox sh",
                    busybox,
                    vec!["sh", "-c", SCRIPT],
                    format!("{}:{}:{system}", bin.path().display(), applets.path().display()),
                ),
            ] {
                let nonce = new_nonce();
                let (out, err) = run(program, &args, Some(&path), &stdin_for(&nonce, &[]));
                let obs = parse(&out, &nonce);
                let ctx = format!("{label}: {:?} {:?}\nstderr: {err}", obs.signature_updates, obs.warnings);
                match want_date {
                    Some(date) => {
                        assert_eq!(obs.signature_updates.len(), 1, "{ctx}");
                        let u = &obs.signature_updates[0];
                        assert_eq!(u.date.to_string(), date, "{ctx}");
                        assert_eq!(u.product, "Kaspersky Endpoint Security 11.4 for Linux", "{ctx}");
                        assert!(obs.warnings.iter().all(|w| w.section != "kesl-app-info"), "{ctx}");
                    }
                    None => {
                        assert!(obs.signature_updates.is_empty(), "{ctx}");
                        let w = obs
                            .warnings
                            .iter()
                            .find(|w| w.section == "kesl-app-info")
                            .unwrap_or_else(|| panic!("no warning: {ctx}"));
                        assert!(
                            w.message.contains("failed (exit status 1)") && w.message.contains("sudo: true"),
                            "{ctx}"
                        );
                    }
                }
            }
        }
    }

    /// An unprivileged process cannot forge a record of another process: not
    /// with a newline and a `==> 1/cmdline <==` header in its arguments, nor
    /// with an `ls -l` line in the path of its executable. Run for real under
    /// /bin/sh (GNU `ls -q`) and busybox (no `ls -q`: `readlink`).
    #[test]
    fn hostile_processes_cannot_forge_another_processes_record() {
        let forged = "/opt/kaspersky/kesl/libexec/wdserver";
        let dir = tempfile::tempdir().expect("tempdir");
        // /tmp/X/a<NL>lrwxrwxrwx 1 root root 0 Nov 22 10:00 1/exe -> /opt/kaspersky/...
        let exe_dir = dir
            .path()
            .join("a\nlrwxrwxrwx 1 root root 0 Nov 22 10:00 1/exe -> /opt/kaspersky/kesl/libexec");
        std::fs::create_dir_all(&exe_dir).expect("mkdir");
        let exe = exe_dir.join("wdserver");
        std::fs::copy("/bin/sleep", &exe).expect("copy sleep");
        let mut by_exe = Command::new(&exe)
            .arg("60")
            .spawn()
            .expect("start hostile exe");
        let mut by_argv = Command::new("bash")
            .args([
                "-c",
                &format!("exec -a \"$(printf 'x\\n==> 1/cmdline <==\\n{forged} -d')\" sleep 60"),
            ])
            .spawn()
            .expect("start hostile argv");
        // An unprivileged user's process claiming a Kaspersky daemon's path
        // as its argv[0] and a Network Agent name as its comm.
        let mut by_nobody = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "bash",
                "-c",
            ])
            .arg(format!("exec -a {forged} sleep 60"))
            .spawn()
            .expect("setpriv (util-linux) starts a process as nobody");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let busybox = ["/usr/bin/busybox", "/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("busybox is not installed: apt-get install -y busybox");
        let applets = tempfile::tempdir().expect("tempdir");
        for a in BUSYBOX_APPLETS.iter().chain(&["ls", "cut"]) {
            std::os::unix::fs::symlink(busybox, applets.path().join(a)).expect("applet");
        }
        let system = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string());
        let with_applets = format!("{}:{system}", applets.path().display());
        for (label, program, args, path) in [
            ("/bin/sh", "/bin/sh", vec!["-c", SCRIPT], None),
            (
                "busybox sh",
                busybox,
                vec!["sh", "-c", SCRIPT],
                Some(with_applets.as_str()),
            ),
        ] {
            let nonce = new_nonce();
            let (out, _) = run(program, &args, path, &stdin_for(&nonce, &[]));
            let obs = parse(&out, &nonce);
            let ctx = format!("{label}: {:?}", obs.processes);
            // Both forgeries name pid 1 (other test hosts on this machine may
            // run real look-alikes, so only pid 1 is checked).
            let init = obs.processes.iter().find(|p| p.pid == 1);
            assert!(
                init.is_none_or(|p| !p.cmdline.contains(forged)
                    && !p.exe.as_deref().unwrap_or_default().contains(forged)),
                "{label}: forged record {init:?}"
            );
            let hostile = obs
                .processes
                .iter()
                .find(|p| p.pid == by_exe.id())
                .unwrap_or_else(|| panic!("{ctx}: hostile exe not listed"));
            assert_eq!(
                hostile.exe.as_deref(),
                Some(
                    format!(
                        "{}?lrwxrwxrwx 1 root root 0 Nov 22 10:00 1/exe -> {forged}",
                        dir.path().join("a").display()
                    )
                    .as_str()
                ),
                "{label}: the newline shows as ?"
            );
            let hostile = obs
                .processes
                .iter()
                .find(|p| p.pid == by_argv.id())
                .unwrap_or_else(|| panic!("{ctx}: hostile argv not listed"));
            assert_eq!(hostile.cmdline, "x", "{label}: only the first line");
            let nobody = obs
                .processes
                .iter()
                .find(|p| p.pid == by_nobody.id())
                .unwrap_or_else(|| panic!("{ctx}: nobody's process not listed"));
            assert_eq!(nobody.owner_uid, Some(65534), "{label}: {nobody:?}");
            assert!(nobody.cmdline.starts_with(forged), "{label}: {nobody:?}");
            // That owner is what keeps its argv[0] from naming a product
            // (the catalog's rule; end to end in tests/tests/hostile.rs).
        }
        let _ = by_nobody.kill();
        let _ = by_nobody.wait();
        let _ = by_exe.kill();
        let _ = by_argv.kill();
        let _ = by_exe.wait();
        let _ = by_argv.wait();
    }

    #[test]
    fn script_runs_under_bin_sh() {
        let tree = fake_install_root();
        let nonce = new_nonce();
        let (out, err) = run("/bin/sh", &["-c", SCRIPT], None, &input(&nonce, &tree.root));
        check("/bin/sh", &out, &err, &nonce, &tree.root);
    }

    #[test]
    fn command_runs_under_bash_login_shell() {
        let tree = fake_install_root();
        let nonce = new_nonce();
        let (out, err) = run(
            "bash",
            &["-c", &command()],
            None,
            &input(&nonce, &tree.root),
        );
        check("bash -c command()", &out, &err, &nonce, &tree.root);
    }

    #[test]
    fn script_runs_under_busybox_with_busybox_tools() {
        let busybox = ["/usr/bin/busybox", "/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or_else(|| {
                panic!(
                    "busybox is not installed: run `apt-get install -y busybox`; \
                     the probe script must be tested under busybox ash (Alpine hosts)"
                )
            });
        let applets = tempfile::tempdir().expect("tempdir");
        for a in BUSYBOX_APPLETS {
            std::os::unix::fs::symlink(busybox, applets.path().join(a)).expect("symlink applet");
        }
        let path = format!(
            "{}:{}",
            applets.path().display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".to_string())
        );
        let tree = fake_install_root();
        let nonce = new_nonce();
        let (out, err) = run(
            busybox,
            &["sh", "-c", SCRIPT],
            Some(&path),
            &input(&nonce, &tree.root),
        );
        check("busybox sh", &out, &err, &nonce, &tree.root);
    }

    #[test]
    fn script_refuses_a_bad_nonce_and_prints_nothing() {
        for nonce in ["", "has space", "semi;colon", "dash-"] {
            let mut child = Command::new("/bin/sh")
                .args(["-c", SCRIPT])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(&stdin_for(nonce, &[]))
                .expect("write");
            let out = child.wait_with_output().expect("wait");
            assert_eq!(out.status.code(), Some(2), "nonce {nonce:?}");
            assert!(out.stdout.is_empty(), "nonce {nonce:?}");
        }
    }

    #[test]
    fn script_needs_no_eof_on_stdin() {
        // The `.` line ends the input: the script must finish while stdin stays open.
        let tree = fake_install_root();
        let nonce = new_nonce();
        let mut child = Command::new("/bin/sh")
            .args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(&input(&nonce, &tree.root)).expect("write");
        stdin.flush().expect("flush");
        let out = child.wait_with_output().expect("wait");
        drop(stdin);
        let obs = parse(&String::from_utf8_lossy(&out.stdout), &nonce);
        assert!(obs
            .paths
            .iter()
            .any(|p| p.path == tree.root.to_string_lossy()));
    }
}
