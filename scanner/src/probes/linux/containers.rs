//! Which processes run inside a container, from three batches of the Linux
//! probe: the PID namespace links (`ls -lq -- self/ns/pid [0-9]*/ns/pid` in
//! `/proc`: each process's PID namespace, and the probe's own; in `proc-ls`
//! today, `proc-pidns` before), `proc-status` (the `PPid:` and `NSpid:` lines of
//! `self/status` and every `PID/status`) and the first cgroup line (`head -v -n
//! 1` of every `PID/cgroup`; in `proc-head` today, `proc-cgroup` before).
//!
//! The namespace links of another user's processes are unreadable without
//! root, so a probe without sudo sees no `proc-pidns` line for a root daemon.
//! `NSpid:` is readable by anyone: it lists a process's pid in each PID
//! namespace from `/proc`'s down to its own, so a process with more entries
//! than the probe's own lives in a nested PID namespace. Such a container is
//! named by its first process (the init of that namespace, found through
//! `PPid:`) as the probe sees it: `PID namespace of pid 4242`.
//!
//! A process in another PID namespace than the probe's is in a container
//! (Docker, Podman, Kubernetes, LXC and systemd-nspawn all give their
//! containers one; systemd services never get one, though many get their
//! own mount namespace, which is why the mount namespace is not used). The
//! cgroup path names the runtime and the container id where the runtime puts
//! them there (`docker-<id>.scope`, `/docker/<id>`, `libpod-<id>`,
//! `cri-containerd-<id>`, `crio-<id>`, `/kubepods/...`, `lxc.payload.<name>`,
//! `systemd-nspawn@<name>`); a `--pid=host` container is still recognised by
//! its cgroup. Both sections come from the kernel, not from the processes, so
//! a process cannot claim to be elsewhere than it is. Parsing is total.

use std::collections::HashMap;

use super::super::Process;
use super::processes::{first_lines, without_repeated_pids};

/// The probe's own PID namespace (from `self/ns/pid`) and each process's.
pub fn parse_pid_namespaces(body: &str) -> (Option<String>, HashMap<u32, String>) {
    let mut own = None;
    let mut entries: Vec<(u32, String)> = Vec::new();
    for line in body.lines() {
        let Some((left, target)) = line.split_once(" -> ") else {
            continue;
        };
        let Some(name) = left.split_whitespace().last() else {
            continue;
        };
        let target = target.trim_end();
        if !target.starts_with("pid:[") {
            continue;
        }
        if name == "self/ns/pid" {
            own = Some(target.to_string());
        } else if let Some(pid) = name
            .strip_suffix("/ns/pid")
            .and_then(|p| p.parse::<u32>().ok())
        {
            entries.push((pid, target.to_string()));
        }
    }
    (own, without_repeated_pids(entries).into_iter().collect())
}

/// What `proc-status` says of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NsStatus {
    /// `PPid:`.
    pub ppid: Option<u32>,
    /// Entries of `NSpid:`: 1 in `/proc`'s own PID namespace, more nested.
    pub depth: Option<usize>,
}

/// The probe's own [`NsStatus`] (from `self/status`) and each process's, from
/// `grep -H` lines such as `42/status:NSpid:\t42\t1`. A pid seen twice is
/// dropped (see `without_repeated_pids`); anything else is skipped.
pub fn parse_status(body: &str) -> (NsStatus, HashMap<u32, NsStatus>) {
    let mut own = NsStatus::default();
    let mut seen: HashMap<(u32, &str), usize> = HashMap::new();
    let mut entries: HashMap<u32, NsStatus> = HashMap::new();
    for line in body.lines() {
        let Some((file, rest)) = line.split_once("/status:") else {
            continue;
        };
        let Some((key, value)) = rest.split_once(':') else {
            continue;
        };
        let fields: Vec<&str> = value.split_whitespace().collect();
        let apply = |st: &mut NsStatus| match key {
            "PPid" => st.ppid = fields.first().and_then(|v| v.parse().ok()),
            "NSpid" => {
                st.depth = (!fields.is_empty() && fields.iter().all(|v| v.parse::<u32>().is_ok()))
                    .then_some(fields.len())
            }
            _ => {}
        };
        if !matches!(key, "PPid" | "NSpid") {
            continue;
        }
        if file == "self" {
            apply(&mut own);
        } else if let Ok(pid) = file.parse::<u32>() {
            *seen.entry((pid, key)).or_default() += 1;
            apply(entries.entry(pid).or_default());
        }
    }
    // A pid whose line came twice (a forged line cannot start one, but a
    // mangled output could): nothing of it is trusted.
    for ((pid, _), n) in seen {
        if n > 1 {
            entries.remove(&pid);
        }
    }
    (own, entries)
}

/// The init of the nested PID namespace `pid` runs in: up its parents while
/// they are as deep as it is. Bounded by the number of processes, so a
/// parent loop in a mangled output ends.
fn namespace_init(pid: u32, depth: usize, status: &HashMap<u32, NsStatus>) -> u32 {
    let mut cur = pid;
    for _ in 0..status.len() {
        match status.get(&cur).and_then(|s| s.ppid) {
            Some(parent)
                if parent != cur
                    && status
                        .get(&parent)
                        .and_then(|s| s.depth)
                        .is_some_and(|d| d >= depth) =>
            {
                cur = parent
            }
            _ => break,
        }
    }
    cur
}

/// Each process's first cgroup line (`0::/system.slice/docker-<id>.scope`).
/// Cut at 512 bytes: a cgroup path names its runtime and id well before that.
pub fn parse_cgroups(body: &str) -> HashMap<u32, String> {
    first_lines(body, "/cgroup")
        .into_iter()
        .map(|(pid, mut line)| {
            line.truncate(line.floor_char_boundary(512));
            (pid, line)
        })
        .collect()
}

fn is_hex_id(s: &str) -> bool {
    (12..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The 12 characters `docker ps` shows of a 64-character id.
fn short(id: &str) -> &str {
    if is_hex_id(id) {
        id.get(..12).unwrap_or(id)
    } else {
        id
    }
}

/// `runtime id` for a cgroup line that a container runtime made, e.g.
/// `0::/system.slice/docker-3f2a….scope` → `docker 3f2a1b2c3d4e`.
pub fn container_of_cgroup(line: &str) -> Option<String> {
    // `hierarchy-id:controllers:path`; the path may itself hold colons.
    let path = line.splitn(3, ':').nth(2)?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for part in parts.iter().rev() {
        let unit = part.strip_suffix(".scope").unwrap_or(part);
        for (prefix, runtime) in [
            ("docker-", "docker"),
            ("libpod-conmon-", "podman"),
            ("libpod-", "podman"),
            ("cri-containerd-", "containerd"),
            ("crio-conmon-", "cri-o"),
            ("crio-", "cri-o"),
        ] {
            if let Some(id) = unit.strip_prefix(prefix) {
                if is_hex_id(id) {
                    return Some(format!("{runtime} {}", short(id)));
                }
            }
        }
        if let Some(name) = part.strip_prefix("lxc.payload.") {
            return Some(format!("lxc {name}"));
        }
        if let Some(name) = part
            .strip_prefix("systemd-nspawn@")
            .and_then(|p| p.strip_suffix(".service"))
        {
            return Some(format!("nspawn {name}"));
        }
    }
    // cgroupfs layouts: `/docker/<id>`, `/kubepods/<qos>/pod<uid>/<id>`, `/lxc/<name>`.
    match parts.as_slice() {
        ["docker", id, ..] if is_hex_id(id) => Some(format!("docker {}", short(id))),
        ["lxc", name, ..] => Some(format!("lxc {name}")),
        [first, .., last] if first.starts_with("kubepods") && is_hex_id(last) => {
            Some(format!("kubernetes {}", short(last)))
        }
        _ => None,
    }
}

/// Marks each process that runs in a container with `runtime id` (or, where
/// the cgroup does not name one, its PID namespace: by its link where the
/// probe could read it, else by the namespace's first process).
pub fn mark(
    procs: &mut [Process],
    pidns: Option<&str>,
    status: Option<&str>,
    cgroups: Option<&str>,
) {
    let (own, ns) = pidns.map(parse_pid_namespaces).unwrap_or_default();
    let (own_status, st) = status.map(parse_status).unwrap_or_default();
    let cg = cgroups.map(parse_cgroups).unwrap_or_default();
    for p in procs.iter_mut() {
        let by_cgroup = cg.get(&p.pid).and_then(|l| container_of_cgroup(l));
        let by_link = match (&own, ns.get(&p.pid)) {
            (Some(own), Some(theirs)) => Some((own != theirs).then(|| theirs.clone())),
            _ => None,
        };
        let by_depth = || {
            let (own, theirs) = (own_status.depth?, st.get(&p.pid)?.depth?);
            (theirs > own).then(|| {
                format!(
                    "PID namespace of pid {}",
                    namespace_init(p.pid, theirs, &st)
                )
            })
        };
        p.container = by_cgroup.or_else(|| match by_link {
            // The link is the namespace itself: it decides when readable.
            Some(other) => other.map(|n| format!("PID namespace {n}")),
            None => by_depth(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    #[test]
    fn runtimes_and_ids_from_real_cgroup_layouts() {
        let cases = [
            (format!("0::/system.slice/docker-{ID}.scope"), Some("docker 3f2a1b2c3d4e")),
            (format!("12:pids:/docker/{ID}"), Some("docker 3f2a1b2c3d4e")),
            (format!("0::/machine.slice/libpod-{ID}.scope/container"), Some("podman 3f2a1b2c3d4e")),
            (format!("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"), Some("podman 3f2a1b2c3d4e")),
            (format!("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1a2b.slice/cri-containerd-{ID}.scope"), Some("containerd 3f2a1b2c3d4e")),
            (format!("0::/kubepods.slice/kubepods-burstable.slice/crio-{ID}.scope"), Some("cri-o 3f2a1b2c3d4e")),
            (format!("11:memory:/kubepods/besteffort/pod4f5e/{ID}"), Some("kubernetes 3f2a1b2c3d4e")),
            ("0::/lxc.payload.web01/system.slice/kesl.service".to_string(), Some("lxc web01")),
            ("4:cpu:/lxc/web01".to_string(), Some("lxc web01")),
            ("0::/machine.slice/systemd-nspawn@build.service/payload".to_string(), Some("nspawn build")),
            // Host processes, services with their own namespaces, look-alikes.
            ("0::/init.scope".to_string(), None),
            ("0::/system.slice/kesl.service".to_string(), None),
            ("0::/system.slice/docker.service".to_string(), None),
            ("0::/user.slice/user-1000.slice/session-3.scope".to_string(), None),
            ("0::/system.slice/docker-notanid.scope".to_string(), None),
            ("garbage".to_string(), None),
            (String::new(), None),
        ];
        for (line, want) in cases {
            assert_eq!(container_of_cgroup(&line).as_deref(), want, "{line}");
        }
    }

    fn procs(pids: &[u32]) -> Vec<Process> {
        pids.iter()
            .map(|&pid| Process {
                pid,
                name: format!("p{pid}"),
                cmdline: String::new(),
                exe: None,
                owner_uid: Some(0),
                container: None,
            })
            .collect()
    }

    #[test]
    fn processes_in_another_pid_namespace_or_a_runtime_cgroup_are_in_a_container() {
        let pidns = "lrwxrwxrwx 1 root root 0 Dec  3 10:00 self/ns/pid -> pid:[4026531836]\n\
                     lrwxrwxrwx 1 root root 0 Dec  3 10:00 1/ns/pid -> pid:[4026531836]\n\
                     lrwxrwxrwx 1 root root 0 Dec  3 10:00 812/ns/pid -> pid:[4026532500]\n\
                     lrwxrwxrwx 1 root root 0 Dec  3 10:00 900/ns/pid -> pid:[4026532600]\n\
                     lrwxrwxrwx 1 root root 0 Dec  3 10:00 950/ns/pid -> pid:[4026531836]\n\
                     ls: cannot read symbolic link '77/ns/pid': Permission denied\n";
        let cgroups = format!(
            "==> 1/cgroup <==\n0::/init.scope\n\n==> 812/cgroup <==\n0::/system.slice/docker-{ID}.scope\n\n\
             ==> 900/cgroup <==\n0::/some/custom/path\n\n==> 950/cgroup <==\n0::/system.slice/kesl.service\n"
        );
        let mut ps = procs(&[1, 812, 900, 950, 77]);
        mark(&mut ps, Some(pidns), None, Some(&cgroups));
        let got: Vec<(u32, Option<&str>)> =
            ps.iter().map(|p| (p.pid, p.container.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (1, None),
                (812, Some("docker 3f2a1b2c3d4e")),
                (900, Some("PID namespace pid:[4026532600]")),
                (950, None),
                (77, None),
            ]
        );
        // Without the sections (an older probe's bundle, ps): nothing is marked.
        let mut ps = procs(&[812]);
        mark(&mut ps, None, None, None);
        assert_eq!(ps[0].container, None);
    }

    /// A probe without sudo: root's namespace links are unreadable, `NSpid:`
    /// is not. The container's init (shell, pid 700, NSpid 700 1), its two
    /// daemons (701, 702) and a process in a container nested in that one
    /// (710) are marked; host processes (1, 650 unshare) are not.
    #[test]
    fn nested_pid_namespaces_from_nspid_when_the_links_are_unreadable() {
        let pidns = "lrwxrwxrwx 1 fsscan fsscan 0 Dec  3 10:00 self/ns/pid -> pid:[4026531836]\n\
                     ls: cannot read symbolic link '700/ns/pid': Permission denied\n";
        let status = "self/status:PPid:\t660\nself/status:NSpid:\t661\n\
                      1/status:PPid:\t0\n1/status:NSpid:\t1\n\
                      650/status:PPid:\t1\n650/status:NSpid:\t650\n\
                      700/status:PPid:\t650\n700/status:NSpid:\t700\t1\n\
                      701/status:PPid:\t700\n701/status:NSpid:\t701\t2\n\
                      702/status:PPid:\t1\n702/status:NSpid:\t702\t3\n\
                      709/status:PPid:\t701\n709/status:NSpid:\t709\t4\t1\n\
                      710/status:PPid:\t709\n710/status:NSpid:\t710\t5\t2\n";
        let mut ps = procs(&[1, 650, 700, 701, 702, 710]);
        mark(&mut ps, Some(pidns), Some(status), None);
        let got: Vec<(u32, Option<&str>)> =
            ps.iter().map(|p| (p.pid, p.container.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (1, None),
                (650, None),
                (700, Some("PID namespace of pid 700")),
                (701, Some("PID namespace of pid 700")),
                // Reparented to the host's init (its container's init died,
                // or it was started from outside with setns): its own pid
                // names the namespace then; still a container.
                (702, Some("PID namespace of pid 702")),
                (710, Some("PID namespace of pid 709")),
            ]
        );
        // A readable link decides: same namespace as the probe, not marked,
        // whatever a mangled NSpid says.
        let pidns = "x self/ns/pid -> pid:[1]\nx 701/ns/pid -> pid:[1]\n";
        let mut ps = procs(&[701]);
        mark(&mut ps, Some(pidns), Some(status), None);
        assert_eq!(ps[0].container, None);
    }

    #[test]
    fn status_lines_that_repeat_loop_or_are_garbage_are_not_used() {
        let (own, st) = parse_status(
            "self/status:NSpid:\t5\n9/status:NSpid:\t9\t1\n9/status:NSpid:\t9\n\
             8/status:NSpid:\tx\t1\n7/status:Name:\tNSpid:\t7\t1\nz/status:NSpid:\t1\t2\n\
             NSpid:\t3\t4\n6/status:PPid:\t6\n6/status:NSpid:\t6\t1\n",
        );
        assert_eq!(own.depth, Some(1));
        assert!(!st.contains_key(&9), "a pid seen twice is dropped");
        assert_eq!(st.get(&8).and_then(|s| s.depth), None, "not a number");
        assert_eq!(
            st.get(&7).and_then(|s| s.depth),
            None,
            "only the line's own key counts"
        );
        // A process that is its own parent: the walk ends.
        assert_eq!(namespace_init(6, 2, &st), 6);
        let mut ps = procs(&[6]);
        mark(
            &mut ps,
            None,
            Some("self/status:NSpid:\t5\n6/status:PPid:\t6\n6/status:NSpid:\t6\t1\n"),
            None,
        );
        assert_eq!(ps[0].container.as_deref(), Some("PID namespace of pid 6"));
    }

    #[test]
    fn repeated_pids_and_garbage_are_not_used() {
        let pidns = "x self/ns/pid -> pid:[1]\nx 5/ns/pid -> pid:[2]\nx 5/ns/pid -> pid:[1]\nx 6/ns/pid -> mnt:[9]\n";
        let (own, ns) = parse_pid_namespaces(pidns);
        assert_eq!(own.as_deref(), Some("pid:[1]"));
        assert!(ns.is_empty(), "{ns:?}");
        let cg = parse_cgroups(
            "==> 5/cgroup <==\n0::/a\n==> 5/cgroup <==\n0::/b\n==> x/cgroup <==\n0::/c\n",
        );
        assert!(cg.is_empty(), "{cg:?}");
    }
}
