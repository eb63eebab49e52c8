//! Changing a running test host between sweeps: remove or reinstall a product,
//! or take the host down, as happens on a real fleet during a remediation.
//!
//! A host's package database, `/opt`, `/etc/opt`, `/var/opt`, `/var/log` and
//! unit files are bind mounts of folders in its host directory, so editing
//! those folders from outside changes what the next probe sees. Its fake
//! daemons live in the host's PID namespace; they are found there (by the
//! namespace of the host's sshd, never by name alone, so hosts of other
//! tests running in parallel are not touched) and stopped.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{HostInfo, Signal};

const KESL_DIRS: &[&str] = &[
    "opt/kaspersky",
    "var_opt/kaspersky",
    "etc_opt/kaspersky",
    "var_log/kaspersky",
];

/// Removes and purges KESL: the dpkg entry, its files, its unit file, and
/// stops its daemons. The next successful scan finds nothing of it.
pub fn purge_kesl(host: &HostInfo) -> Result<()> {
    let root = host.dir().join("root");
    let status_path = root.join("dpkg/status");
    let status = std::fs::read_to_string(&status_path).context("reading dpkg status")?;
    let kept: Vec<&str> = status
        .split("\n\n")
        .filter(|para| para.trim_start().lines().next() != Some("Package: kesl"))
        .collect();
    let mut kept = kept.join("\n\n");
    if !kept.ends_with('\n') {
        kept.push('\n');
    }
    write_replacing(&status_path, &kept)?;
    for d in KESL_DIRS {
        let p = root.join(d);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    let unit = root.join("systemd/kesl.service");
    if unit.exists() {
        std::fs::remove_file(&unit)?;
    }
    kill_in_host(host, "/opt/kaspersky/")?;
    Ok(())
}

/// Installs the KESL package again (dpkg entry and install folder, no daemons).
pub fn reinstall_kesl_package(host: &HostInfo) -> Result<()> {
    let root = host.dir().join("root");
    let status_path = root.join("dpkg/status");
    let mut status = std::fs::read_to_string(&status_path).context("reading dpkg status")?;
    if !status.ends_with('\n') {
        status.push('\n');
    }
    status.push_str(
        "\nPackage: kesl\nStatus: install ok installed\nPriority: optional\nSection: misc\n\
         Maintainer: AO Kaspersky Lab <support@kaspersky.com>\nArchitecture: amd64\n\
         Version: 12.1.0-1297\nDescription: kesl (test host package)\n",
    );
    write_replacing(&status_path, &status)?;
    std::fs::create_dir_all(root.join("opt/kaspersky/kesl/bin"))?;
    Ok(())
}

/// Takes the host down: its whole PID namespace (sshd included) is killed,
/// and nothing listens on its address any more.
pub fn stop_host(host: &HostInfo) -> Result<()> {
    let Some(pid) = host.unshare_pid() else {
        bail!("test host {} is not running", host.name);
    };
    crate::signal(pid, Signal::SIGKILL)?;
    let addr: std::net::SocketAddr = format!("{}:{}", host.address(), crate::PORT).parse()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
        if Instant::now() > deadline {
            bail!("test host {} still listens after being stopped", host.name);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Freezes the host's sshd (SIGSTOP): connections are accepted by the kernel
/// but never answered, so a sweep waits on it until its deadline or an interrupt.
pub fn freeze_host(host: &HostInfo) -> Result<()> {
    signal_init(host, Signal::SIGSTOP)
}

/// Undoes [`freeze_host`].
pub fn thaw_host(host: &HostInfo) -> Result<()> {
    signal_init(host, Signal::SIGCONT)
}

fn signal_init(host: &HostInfo, sig: Signal) -> Result<()> {
    let Some(unshare) = host.unshare_pid() else {
        bail!("test host {} is not running", host.name);
    };
    let Some(init) = children_of(unshare).into_iter().next() else {
        bail!("test host {} has no init process", host.name);
    };
    crate::signal(init, sig)
}

/// dpkg replaces its status file by rename; so do we (the probe never sees half a file).
fn write_replacing(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("fleetsweep-new");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The live (not zombie) processes of the host's PID namespace whose command
/// line starts with `prefix`: what the host's own `ps` shows running.
pub fn processes_in_host(host: &HostInfo, prefix: &str) -> Result<Vec<u32>> {
    let Some(unshare) = host.unshare_pid() else {
        bail!("test host {} is not running", host.name);
    };
    let Some(init) = children_of(unshare).into_iter().next() else {
        bail!("test host {} has no init process", host.name);
    };
    let ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).context("reading pid namespace")?;
    Ok(all_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/pid"))
                .ok()
                .as_ref()
                == Some(&ns)
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .unwrap_or_default()
                    .starts_with(prefix.as_bytes())
                && alive(*pid)
        })
        .collect())
}

/// Kills the processes of the host's PID namespace whose command line starts with `prefix`.
fn kill_in_host(host: &HostInfo, prefix: &str) -> Result<()> {
    let Some(unshare) = host.unshare_pid() else {
        bail!("test host {} is not running", host.name);
    };
    let Some(init) = children_of(unshare).into_iter().next() else {
        bail!("test host {} has no init process", host.name);
    };
    let ns = std::fs::read_link(format!("/proc/{init}/ns/pid")).context("reading pid namespace")?;
    let mut killed = Vec::new();
    for pid in all_pids() {
        if std::fs::read_link(format!("/proc/{pid}/ns/pid"))
            .ok()
            .as_ref()
            != Some(&ns)
        {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.starts_with(prefix.as_bytes()) {
            // It may have exited since the scan of /proc; the wait below checks.
            let _ = crate::signal(pid, Signal::SIGKILL);
            killed.push(pid);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while killed.iter().any(|p| alive(*p)) {
        if Instant::now() > deadline {
            bail!(
                "processes {killed:?} of test host {} did not stop",
                host.name
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A killed child of the host's init stays a zombie until reaped; it no longer
/// shows in the probe's process list either way once it is gone or a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

fn all_pids() -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect()
}

fn children_of(parent: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let (_, rest) = stat.rsplit_once(')')?;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}
