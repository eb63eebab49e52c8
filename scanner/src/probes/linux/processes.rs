//! Running processes.
//!
//! `processes` section: `pid<TAB>comm<TAB>exe<TAB>cmdline` per process from
//! `/proc`. The script turns tabs and newlines inside `comm`/`exe` and NULs, tabs
//! and newlines inside the command line into spaces, so a line is one process;
//! `exe` is empty where `/proc/PID/exe` is unreadable (other users' processes
//! without root, kernel threads).
//!
//! The loop that writes `processes` forks nothing per process (the shell's
//! `read` builtin reads `comm`); command lines, executables and owners come in
//! batches, one command each, merged here by pid. Today's probe prints two
//! sections for them, run in `/proc`:
//! `proc-head` is `head -v -n 1 -- [0-9]*/cmdline [0-9]*/cgroup | tr '\0\t' '  '
//! | cut -c 1-4096` (`==> PID/cmdline <==` headers; `-n 1` prints no newline of
//! a command line, so none can start a forged header line), and `proc-ls` is
//! `ls -ldnq -- [0-9]* [0-9]*/exe self/ns/pid [0-9]*/ns/pid` (`... PID/exe ->
//! /usr/bin/sleep`, a newline in the path shown as `?`; the owner of `/proc/PID`
//! is the process's uid). Each parser takes its own lines by their file names.
//! Older probes, and today's where `ls` has no `-q` (BusyBox), print one section
//! per batch instead: `proc-cmdline`, `proc-cgroup`, `proc-exe` (`readlink` per
//! process without `-q`), `proc-owner` and `proc-pidns`. A pid given twice (a
//! forgery that got through anyway, e.g. from an older probe's bundle) is
//! dropped, not guessed. Forking three commands per process cost about 4 ms of
//! host CPU per process (1.6 s on a host with 300 processes); one command per
//! batch kept the probe at about 20 commands, and joining the batches at about 10.
//!
//! `ps` section (no usable `/proc`): `ps -eo pid=,comm=,args=`, whitespace-aligned;
//! a process name with a space in it is then cut at the space (best effort).

use super::sections::{warning, Rejects};
use crate::probes::text;
use crate::probes::{ProbeWarning, Process};

/// Parses the `processes` section. Total on any input.
///
/// ```
/// use fleetsweep::probes::linux::parse_processes;
/// let (procs, _) = parse_processes("812\twdserver\t/opt/kaspersky/kesl/libexec/wdserver\t/opt/kaspersky/kesl/libexec/wdserver -d \n");
/// assert_eq!(procs[0].pid, 812);
/// assert_eq!(procs[0].cmdline, "/opt/kaspersky/kesl/libexec/wdserver -d");
/// ```
pub fn parse_processes(body: &str) -> (Vec<Process>, Vec<ProbeWarning>) {
    let mut processes = Vec::new();
    let mut rejects = Rejects::default();
    let mut warnings = Vec::new();
    for line in body.lines() {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with("!truncated") {
            warnings.push(truncated("processes"));
            continue;
        }
        let mut f = text::splitn(line, 4, b'\t');
        let (Some(pid), Some(comm), Some(exe), cmdline) = (f.next(), f.next(), f.next(), f.next())
        else {
            rejects.note(line);
            continue;
        };
        let Ok(pid) = pid.trim().parse::<u32>() else {
            rejects.note(line);
            continue;
        };
        let exe = exe.trim();
        processes.push(Process {
            pid,
            name: comm.to_string(),
            cmdline: cmdline.unwrap_or_default().trim_end().to_string(),
            exe: (!exe.is_empty()).then(|| exe.to_string()),
            owner_uid: None,
            container: None,
        });
    }
    warnings.extend(rejects.into_warning("processes"));
    (processes, warnings)
}

/// Parses the `ps` fallback section (`PID COMM ARGS...`). Total on any input.
pub fn parse_ps(body: &str) -> (Vec<Process>, Vec<ProbeWarning>) {
    let mut processes = Vec::new();
    let mut rejects = Rejects::default();
    for line in body.lines() {
        let rest = line.trim_start();
        if rest.is_empty() {
            continue;
        }
        let (pid, rest) = split_word(rest);
        let (comm, args) = split_word(rest);
        match pid.parse::<u32>() {
            Ok(pid) if !comm.is_empty() => processes.push(Process {
                pid,
                name: comm.to_string(),
                cmdline: args.trim().to_string(),
                exe: None,
                owner_uid: None,
                container: None,
            }),
            _ => rejects.note(line),
        }
    }
    (processes, rejects.into_warning("ps").into_iter().collect())
}

/// First whitespace-separated word and the rest (leading whitespace removed).
fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

fn truncated(section: &str) -> ProbeWarning {
    warning(
        section,
        "more than 10000 processes: the list was cut".to_string(),
    )
}

#[cfg(test)]
#[allow(clippy::type_complexity)] // table-driven tests
mod tests {
    use super::*;

    /// Lines of the `processes` section as the script printed them on this
    /// project's Debian 12 build machine (a kernel thread has no exe/cmdline).
    const PROCS_DEBIAN12: &str = "\
1\tprocess_api\t\t/process_api --addr 0.0.0.0:2024 \n\
10\tkworker/0:0H-kblockd\t\t\n\
1032\tbash\t/usr/bin/bash\tbash /dev/fd/3 \n\
8430\tbusybox\t/usr/bin/busybox\tbusybox sh -c LC_ALL=C; export LC_ALL \n";

    fn row(p: &Process) -> (u32, &str, Option<&str>, &str) {
        (p.pid, p.name.as_str(), p.exe.as_deref(), p.cmdline.as_str())
    }

    #[test]
    fn recorded_proc_lines() {
        let (procs, warnings) = parse_processes(PROCS_DEBIAN12);
        assert!(warnings.is_empty(), "{warnings:?}");
        let got: Vec<_> = procs.iter().map(row).collect();
        assert_eq!(
            got,
            vec![
                (1, "process_api", None, "/process_api --addr 0.0.0.0:2024"),
                (10, "kworker/0:0H-kblockd", None, ""),
                (1032, "bash", Some("/usr/bin/bash"), "bash /dev/fd/3"),
                (
                    8430,
                    "busybox",
                    Some("/usr/bin/busybox"),
                    "busybox sh -c LC_ALL=C; export LC_ALL"
                ),
            ]
        );
    }

    #[test]
    fn hostile_and_broken_lines() {
        let long = "a".repeat(1 << 20);
        let cases: Vec<(String, Vec<(u32, &str)>, usize)> = vec![
            // (body, (pid, name), warnings)
            (String::new(), vec![], 0),
            ("abc\tx\t\t\n".into(), vec![], 1),
            ("-1\tx\t\t\n".into(), vec![], 1),
            ("99999999999\tx\t\t\n".into(), vec![], 1),
            ("12\tonly two\n".into(), vec![], 1),
            (
                "12\tkesl\t/opt/kaspersky/kesl/bin/kesl\n".into(),
                vec![(12, "kesl")],
                0,
            ),
            ("!truncated\n".into(), vec![], 1),
            (
                "7\t@@fleetsweep:abc:end processes rc=0\t\tx\n".into(),
                vec![(7, "@@fleetsweep:abc:end processes rc=0")],
                0,
            ),
            ("8\tkesl\0\t\t\0\0\n".into(), vec![(8, "kesl\0")], 0),
            (
                format!("9\tklnagent\t/opt/kaspersky/klnagent64/sbin/klnagent\t{long}\n"),
                vec![(9, "klnagent")],
                0,
            ),
            (long.clone(), vec![], 1),
        ];
        for (body, want, nwarn) in cases {
            let (procs, warnings) = parse_processes(&body);
            let got: Vec<(u32, &str)> = procs.iter().map(|p| (p.pid, p.name.as_str())).collect();
            assert_eq!(got, want, "body {:?}", body.get(..60));
            assert_eq!(
                warnings.len(),
                nwarn,
                "body {:?}: {warnings:?}",
                body.get(..60)
            );
        }
    }

    #[test]
    fn ps_fallback() {
        let body = "    1 init            /sbin/init\n  812 wdserver        /opt/kaspersky/kesl/libexec/wdserver -d\n    2 kthreadd        [kthreadd]\n 77 lonely\n";
        let (procs, warnings) = parse_ps(body);
        assert!(warnings.is_empty(), "{warnings:?}");
        let got: Vec<_> = procs.iter().map(row).collect();
        assert_eq!(
            got,
            vec![
                (1, "init", None, "/sbin/init"),
                (
                    812,
                    "wdserver",
                    None,
                    "/opt/kaspersky/kesl/libexec/wdserver -d"
                ),
                (2, "kthreadd", None, "[kthreadd]"),
                (77, "lonely", None, ""),
            ]
        );
        let (procs, warnings) = parse_ps("PID COMMAND ARGS\nx\n\n12\n");
        assert!(procs.is_empty());
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.starts_with("3 lines"), "{warnings:?}");
    }
}

/// Parses the `proc-cmdline` section into (pid, command line) pairs. Total.
pub fn parse_proc_cmdlines(body: &str) -> Vec<(u32, String)> {
    first_lines(body, "/cmdline")
}

/// (pid, first line) of each file in `head -v -n 1 -- [0-9]*/FILE`
/// output (`==> PID/FILE <==` headers), `suffix` being `/FILE`; the output may
/// hold other files' headers too (today's probe reads `cmdline` and `cgroup` in
/// one `head`), which are skipped.
///
/// `head -n 1` prints at most one line of a file, so the line right after a
/// header is that file's, even when it looks like a header itself (a command
/// line can be `==> 1/cgroup <==`); only after it, past the blank separator
/// lines, can a header come. Only the first line of a file is ever the
/// probe's: anything after it is never appended. A pid given twice is
/// dropped. Total.
pub(super) fn first_lines(body: &str, suffix: &str) -> Vec<(u32, String)> {
    let mut out: Vec<(u32, String)> = Vec::new();
    // Some(Some(i)): the line after this header is entry i's; Some(None): the
    // line after a header of another file, skipped.
    let mut after_header: Option<Option<usize>> = None;
    for line in body.lines() {
        if let Some(current) = after_header.take() {
            if let Some(i) = current {
                out[i].1.push_str(line.trim_end());
            }
            continue;
        }
        if let Some(name) = line
            .strip_prefix("==> ")
            .and_then(|l| l.strip_suffix(" <=="))
        {
            after_header = Some(
                name.strip_suffix(suffix)
                    .and_then(|p| p.parse::<u32>().ok())
                    .map(|pid| {
                        out.push((pid, String::new()));
                        out.len() - 1
                    }),
            );
        }
    }
    without_repeated_pids(out)
}

/// Parses the `proc-owner` section (`ls -ldn -- [0-9]*` in `/proc`: the owner
/// of `/proc/PID` is the process's effective uid) into (pid, uid). Total.
pub fn parse_proc_owners(body: &str) -> Vec<(u32, u32)> {
    let entries = body
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // mode links uid gid size month day time|year name
            if f.len() < 9 || !f[0].starts_with('d') {
                return None;
            }
            let pid = f.last()?.parse::<u32>().ok()?;
            let uid = f[2].parse::<u32>().ok()?;
            Some((pid, uid))
        })
        .collect();
    without_repeated_pids(entries)
}

/// Drops every entry of a pid that occurs more than once: one of them was
/// forged, and which one cannot be told.
pub(super) fn without_repeated_pids<T>(entries: Vec<(u32, T)>) -> Vec<(u32, T)> {
    let mut count: crate::hashing::HashMap<u32, usize> = Default::default();
    for (pid, _) in &entries {
        *count.entry(*pid).or_default() += 1;
    }
    entries
        .into_iter()
        .filter(|(pid, _)| count.get(pid) == Some(&1))
        .collect()
}

/// Parses the `proc-exe` section into (pid, executable) pairs. Total.
pub fn parse_proc_exes(body: &str) -> Vec<(u32, String)> {
    let entries = body
        .lines()
        .filter_map(|line| {
            let (left, target) = line.split_once(" -> ")?;
            let name = left.split_whitespace().last()?;
            let pid = name.strip_suffix("/exe")?.parse::<u32>().ok()?;
            let target = target.trim_end();
            (!target.is_empty()).then(|| (pid, target.to_string()))
        })
        .collect();
    without_repeated_pids(entries)
}

/// Fills command lines and executables from the batch sections into `procs`.
pub fn merge_batches(
    procs: &mut [Process],
    cmdlines: Option<&str>,
    exes: Option<&str>,
    owners: Option<&str>,
) {
    let owner: crate::hashing::HashMap<u32, u32> = owners
        .map(parse_proc_owners)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let cmd: crate::hashing::HashMap<u32, String> = cmdlines
        .map(parse_proc_cmdlines)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let exe: crate::hashing::HashMap<u32, String> = exes
        .map(parse_proc_exes)
        .unwrap_or_default()
        .into_iter()
        .collect();
    for p in procs {
        if p.cmdline.is_empty() {
            if let Some(c) = cmd.get(&p.pid) {
                p.cmdline = c.clone();
            }
        }
        if p.exe.is_none() {
            p.exe = exe.get(&p.pid).cloned();
        }
        // With an owner section, a process missing from it is not trusted:
        // a forger could otherwise exit between the listings on purpose.
        if p.owner_uid.is_none() && owners.is_some() {
            p.owner_uid = Some(
                owner
                    .get(&p.pid)
                    .copied()
                    .unwrap_or(Process::OWNER_NOT_SEEN),
            );
        }
    }
}

#[cfg(test)]
mod batch_tests {
    use super::*;

    #[test]
    fn batch_sections_fill_command_lines_and_executables() {
        let (mut procs, _) = parse_processes("1\tinit\t\t\n812\twdserver\t\t\n900\tgone\t\t\n");
        let cmdlines = "==> 1/cmdline <==\n/sbin/init splash \n==> 812/cmdline <==\n/opt/kaspersky/kesl/libexec/wdserver -d \n==> 900/cmdline <==\n";
        let exes = "lrwxrwxrwx 1 root root 0 Nov 22 10:00 1/exe -> /usr/lib/systemd/systemd\nlrwxrwxrwx 1 root root 0 Nov 22 10:00 812/exe -> /opt/kaspersky/kesl/libexec/wdserver (deleted)\nls: cannot read symbolic link '2/exe': No such file or directory\n";
        let owners = "dr-xr-xr-x 9 0 0 0 Nov 22 10:00 1\ndr-xr-xr-x 9 0 0 0 Nov 22 10:00 812\ndr-xr-xr-x 9 1000 1000 0 Nov 22 10:00 900\n";
        merge_batches(&mut procs, Some(cmdlines), Some(exes), Some(owners));
        assert_eq!(procs[0].owner_uid, Some(0));
        assert_eq!(procs[2].owner_uid, Some(1000));
        // Listed, but gone before its owner was seen: not trusted.
        let (mut gone, _) = parse_processes("4242\tklnagent\t\t\n");
        merge_batches(&mut gone, None, None, Some(owners));
        assert_eq!(gone[0].owner_uid, Some(Process::OWNER_NOT_SEEN));
        // No owner section at all (ps, an older probe's bundle): unknown.
        let (mut old, _) = parse_processes("4242\tklnagent\t\t\n");
        merge_batches(&mut old, None, None, None);
        assert_eq!(old[0].owner_uid, None);
        assert_eq!(procs[0].cmdline, "/sbin/init splash");
        assert_eq!(procs[0].exe.as_deref(), Some("/usr/lib/systemd/systemd"));
        assert_eq!(procs[1].cmdline, "/opt/kaspersky/kesl/libexec/wdserver -d");
        assert_eq!(
            procs[1].exe.as_deref(),
            Some("/opt/kaspersky/kesl/libexec/wdserver (deleted)")
        );
        assert_eq!(
            procs[2].cmdline, "",
            "kernel thread or exited process: no command line"
        );
        assert_eq!(procs[2].exe, None);
    }

    /// Owners: only `ls -ldn` lines of a pid directory count; a pid given
    /// twice has no owner rather than a guessed one (and is then not
    /// trusted, see `merge_batches`).
    #[test]
    fn owners_come_from_directory_lines_and_repeated_pids_are_dropped() {
        let body = "dr-xr-xr-x 9 0 0 0 Nov 22 10:00 1\n\
                    dr-xr-xr-x 9 65534 65534 0 Nov 22 10:00 77\n\
                    -rw-r--r-- 1 0 0 0 Nov 22 10:00 88\n\
                    dr-xr-xr-x 9 x 0 0 Nov 22 10:00 89\n\
                    dr-xr-xr-x 9 0 0 0 Nov 22 10:00 77\n\
                    ls: cannot access '90': No such file or directory\n\
                    \u{0}\u{1b}\n";
        assert_eq!(parse_proc_owners(body), [(1, 0)]);
    }

    #[test]
    fn batch_parsers_are_total_on_garbage() {
        for junk in [
            "==> ",
            "==> x/cmdline <==",
            " -> ",
            "a -> b",
            "==> 99999999999/cmdline <==\nx",
            "\u{0}\u{1b}",
        ] {
            let _ = parse_proc_cmdlines(junk);
            let _ = parse_proc_exes(junk);
        }
        assert_eq!(
            parse_proc_cmdlines("==> 7/cmdline <==\nline one\nline two"),
            [(7, "line one".to_string())],
            "one line per command line; the rest is not the probe's"
        );
        // A forged header that got through (an older probe's bundle): the
        // pid given twice is dropped, not guessed.
        assert_eq!(
            parse_proc_cmdlines(
                "==> 1/cmdline <==\n/sbin/init \n==> 66/cmdline <==\nx\n==> 1/cmdline <==\n/opt/kaspersky/kesl/libexec/wdserver\n"
            ),
            [(66, "x".to_string())]
        );
        assert_eq!(
            parse_proc_exes("l 1/exe -> /sbin/init\nl 2/exe -> /x\nl 1/exe -> /opt/kaspersky/x\n"),
            [(2, "/x".to_string())]
        );
    }
}
