//! A network namespace of the simulator's own (`ip netns add`), holding only
//! an up `lo`. The simulator's wildcard listener lives here, so no other
//! machine and no other namespace can reach it; the scanner is run inside it
//! with [`Netns::command`].

use std::ffi::OsStr;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A named namespace; dropping it deletes it (`ip netns del`).
pub struct Netns {
    name: String,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        anyhow::anyhow!(
            "running `ip {}`: {e} (the simulator needs iproute2: apt-get install -y iproute2)",
            args.join(" ")
        )
    })?;
    if !out.status.success() {
        bail!(
            "`ip {}` failed: {} (the simulator needs root to create network namespaces)",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Netns {
    /// Creates `fleetsim-PID-N` with `lo` up.
    pub fn create() -> Result<Netns> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "fleetsim-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Netns::create_named(&name)
    }

    /// Creates the namespace `name` (replacing a leftover of that name) with `lo` up.
    pub fn create_named(name: &str) -> Result<Netns> {
        let _ = ip(&["netns", "del", name]);
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `program` run inside the namespace (`ip netns exec NAME program`).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Runs `f` on a thread that joined the namespace: sockets it creates
    /// (a listener, a client connection) belong to the namespace wherever
    /// they are used afterwards. Threads `f` spawns are in it too.
    pub fn run_in<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::spawn(move || {
            enter(&path)?;
            f()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("a thread in the simulator's namespace panicked"))?
    }

    /// Spawns a long-lived thread inside the namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<std::thread::JoinHandle<Result<T>>> {
        let path = format!("/run/netns/{}", self.name);
        std::thread::Builder::new()
            .name("fleetsim".into())
            .spawn(move || {
                enter(&path)?;
                Ok(f())
            })
            .context("starting the simulator thread")
    }
}

/// Moves the calling thread into the namespace at `path`.
fn enter(path: &str) -> Result<()> {
    let f = std::fs::File::open(path).with_context(|| format!("opening {path}"))?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("joining the network namespace {path}"))
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// True when this process's namespace has no interface but `lo`: a wildcard
/// listener here is reachable from this namespace only.
pub fn is_isolated() -> Result<bool> {
    let mut names = Vec::new();
    for e in std::fs::read_dir("/sys/class/net").context("listing /sys/class/net")? {
        names.push(e?.file_name().to_string_lossy().into_owned());
    }
    Ok(names == ["lo"])
}
