//! The test-host harness: real OpenSSH `sshd` test hosts on this machine, each
//! with its own view of the system.
//!
//! Each host is one sshd on its own loopback address (`127.0.X.Y:2222`),
//! started as PID 1 of its own mount + UTS + PID namespaces
//! (`unshare --kill-child`). Before sshd starts, the host's boot script
//! bind-mounts that host's files over the real paths: a dpkg database folder,
//! an rpm database (with a macros file pointing rpm at it), `/opt`, `/etc/opt`,
//! `/var/opt`, `/var/log`, `/etc/systemd/system`, `os-release`, `/etc/hosts`;
//! and starts fake daemons (a symlink named after the daemon, pointing at
//! `sleep`, so `comm` and the command line look like the real thing). The real
//! `dpkg-query`, `rpm` and `/proc` then report that host's packages (including
//! `rc` states) and processes (docs/architecture.md, "crates").
//!
//! Needs root (namespaces, bind mounts, one sshd per host). Tests that use it
//! fail with a clear message when a tool is missing; they never skip.

pub mod mutate;
pub mod mutate_ultraav;
pub mod postgres;
pub mod prom;
pub mod report;
pub mod scenario;
pub mod sim;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use nix::sys::signal::Signal;
pub use scenario::Scenario;

/// The unprivileged login user on every test host.
pub const USER: &str = "fsscan";
pub const PORT: u16 = 2222;
/// Name of the host behind the bastion; only the bastion can resolve it.
pub const INTERNAL_NAME: &str = "internal-db.fleet.test";

/// Which hosts to start, on `127.0.<subnet>.0/24` and, past 245 hosts, the
/// next subnets (see [`address_of`]).
pub struct FleetSpec {
    pub subnet: u8,
    pub hosts: Vec<(String, Scenario)>,
}

/// One host of a running fleet.
pub struct HostInfo {
    pub name: String,
    pub scenario: Scenario,
    address: String,
    dir: PathBuf,
    /// The `unshare` process; killing it takes the whole PID namespace along.
    child: Option<Child>,
    /// Global PID of the host's sshd (PID 1 of its namespace), when running.
    sshd_pid: Option<u32>,
}

impl HostInfo {
    pub fn address(&self) -> &str {
        &self.address
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn sshd_log(&self) -> PathBuf {
        self.dir.join("sshd.log")
    }
    pub fn unshare_pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
    /// The lines of the host's sshd log that contain `needle`.
    pub fn sshd_log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(self.sshd_log())
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    }
}

/// A running fleet; dropping it stops every host.
pub struct Fleet {
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    hosts: Vec<HostInfo>,
}

/// One host of each scenario, with the names the demo, the end-to-end tests
/// and the golden report use.
pub fn demo_hosts() -> Vec<(String, Scenario)> {
    [
        ("web-01", Scenario::Clean),
        ("app-01", Scenario::Kesl),
        ("nagent-01", Scenario::RpmNetworkAgent),
        ("old-01", Scenario::Remnants),
        ("lab-01", Scenario::UnknownKaspersky),
        ("bastion-01", Scenario::Bastion),
        ("db-internal", Scenario::BehindBastion("bastion-01".into())),
        ("wrongkey-01", Scenario::WrongHostKey),
        ("noauth-01", Scenario::AuthRefused),
        ("down-01", Scenario::NothingListening),
        ("hang-01", Scenario::Hangs),
        ("hung-01", Scenario::HungProbe),
    ]
    .into_iter()
    .map(|(n, s)| (n.to_string(), s))
    .collect()
}

/// The e2e directory (`tests/`): fixtures, golden reports. The end-to-end
/// tests are targets of the `fleetsweep` package, whose manifest dir is `scanner/`.
pub fn e2e_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `cmd` to the end and collects its output, as `Command::output` does,
/// but never for longer than `limit`: a command still running then has the
/// stack of every thread printed (with gdb, which scripts/setup installs), is
/// killed, and the test fails naming it. A hang costs one test its limit and
/// says where it hung, instead of stalling the whole suite.
pub fn output_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let collect = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the command") {
            break status;
        }
        if started.elapsed() > limit {
            let stacks = Command::new("timeout")
                .args(["120", "gdb", "-p", &child.id().to_string(), "-batch"])
                .args(["-ex", "thread apply all bt"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_else(|e| format!("(no stacks: gdb could not run: {e})"));
            let _ = child.kill();
            let _ = child.wait();
            let stderr = String::from_utf8_lossy(&stderr.join().unwrap_or_default()).into_owned();
            panic!(
                "{cmd:?} was still running after {limit:?}: killed.\nstderr:\n{stderr}\nthreads:\n{stacks}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// How long an end-to-end test gives one fleetsweep run before
/// [`output_within`] kills it: far past any run here (the longest sweep in
/// the suite takes about 30 s), short of stalling CI.
pub const RUN_LIMIT: Duration = Duration::from_secs(600);

/// [`output_within`] as a method, for a command built in one expression.
pub trait OutputWithin {
    fn output_within(&mut self, limit: Duration) -> std::process::Output;
}

impl OutputWithin for Command {
    fn output_within(&mut self, limit: Duration) -> std::process::Output {
        output_within(self, limit)
    }
}

/// Sends `sig` to process `pid` (kill(2)).
pub fn signal(pid: u32, sig: Signal) -> Result<()> {
    let raw = i32::try_from(pid).with_context(|| format!("PID {pid} out of range"))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), sig)
        .with_context(|| format!("sending {sig} to PID {pid}"))
}

/// Checks the tools the harness needs; says how to install what is missing.
pub fn require_tools() -> Result<()> {
    let tools = [
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
        ("/usr/bin/rpm", "rpm"),
        ("/usr/bin/rpmbuild", "rpm"),
        ("/usr/bin/unshare", "util-linux"),
        ("/usr/bin/dpkg-query", "dpkg"),
    ];
    let mut missing: Vec<&str> = tools
        .iter()
        .filter(|(p, _)| !Path::new(p).exists())
        .map(|(_, pkg)| *pkg)
        .collect();
    // rpm and rpmbuild come from one package: name it once.
    missing.dedup();
    if !missing.is_empty() {
        bail!(
            "the test hosts need {}: run scripts/setup, or apt-get install -y {}",
            missing.join(", "),
            missing.join(" ")
        );
    }
    if !nix::unistd::geteuid().is_root() {
        bail!("the test hosts need root (mount/PID namespaces and one sshd per host): run the tests as root");
    }
    Ok(())
}

fn sh(cmd: &str) -> Result<String> {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "`{cmd}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn keygen(path: &Path) -> Result<String> {
    sh(&format!(
        "ssh-keygen -q -t ed25519 -N '' -C fleetsweep-test -f '{}' </dev/null",
        path.display()
    ))?;
    let pubkey = std::fs::read_to_string(path.with_extension("pub"))?;
    Ok(pubkey
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" "))
}

/// Creates the login user once per machine.
fn ensure_user() -> Result<()> {
    if sh(&format!("getent passwd {USER}")).is_ok() {
        return Ok(());
    }
    sh(&format!(
        "useradd -r -M -d /nonexistent -s /bin/sh {USER} && usermod -p '*' {USER}"
    ))?;
    Ok(())
}

impl Fleet {
    /// Starts every host and waits until each listening one answers with an SSH banner.
    pub fn start(spec: FleetSpec) -> Result<Fleet> {
        let tmp = tempfile::Builder::new()
            .prefix("fleetsweep-fleet.")
            .tempdir()?;
        let dir = tmp.path().to_path_buf();
        let mut fleet = Fleet::start_in(&dir, spec)?;
        fleet._tmp = Some(tmp);
        Ok(fleet)
    }

    /// Like [`Fleet::start`], in a directory the caller keeps.
    pub fn start_in(dir: &Path, spec: FleetSpec) -> Result<Fleet> {
        require_tools()?;
        ensure_user()?;
        std::fs::create_dir_all(dir)?;
        clear_stopped_fleet(dir)?;
        // sshd reads authorized_keys as the login user: the fleet directory
        // (often from mktemp, mode 0700) must be traversable.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
        std::fs::create_dir_all("/run/sshd")?;
        let client_pub = keygen(&dir.join("client_key"))?;
        let stranger_pub = keygen(&dir.join("stranger_key"))?;
        let rpms = scenario::build_rpms(&dir.join("rpms"))?;

        let mut fleet = Fleet {
            dir: dir.to_path_buf(),
            _tmp: None,
            hosts: Vec::new(),
        };
        let address_of = |i: usize| address_of(spec.subnet, i);
        let names = Names::new(&spec);
        let mut known_hosts = String::new();
        let mut inventory = format!(
            "# Test fleet written by the fleetsweep test harness.\ndefaults:\n  user: {USER}\n  port: {PORT}\n  identity_file: {}\n  known_hosts: {}\n  connect_timeout: 5s\n  host_timeout: 30s\nhosts:\n",
            dir.join("client_key").display(),
            dir.join("known_hosts").display()
        );
        for (i, (name, scen)) in spec.hosts.iter().enumerate() {
            let address = address_of(i);
            let hd = dir.join("hosts").join(name);
            std::fs::create_dir_all(&hd)?;
            let host_pub = keygen(&hd.join("host_key"))?;
            let listed_key = if matches!(scen, Scenario::WrongHostKey) {
                keygen(&hd.join("other_host_key"))?
            } else {
                host_pub.clone()
            };
            let inv_address = names.inventory_address(i);
            let jump = match scen.bastion() {
                Some(bastion) => Some(names.jump_to(bastion)?),
                None => None,
            };
            if !matches!(scen, Scenario::NothingListening) {
                let _ = writeln!(known_hosts, "[{inv_address}]:{PORT} {listed_key}");
            }
            let _ = write!(
                inventory,
                "  - name: {name}\n    address: {inv_address}\n    labels: {{site: lab, scenario: {}}}\n",
                scen.label()
            );
            if let Some(j) = jump {
                let _ = writeln!(inventory, "    jump: {j}");
            }
            let authorized = if matches!(scen, Scenario::AuthRefused) {
                &stranger_pub
            } else {
                &client_pub
            };
            let mut info = HostInfo {
                name: name.clone(),
                scenario: scen.clone(),
                address: address.clone(),
                dir: hd.clone(),
                child: None,
                sshd_pid: None,
            };
            if !matches!(scen, Scenario::NothingListening) {
                scenario::prepare(&hd, name, scen, &rpms, &names.resolved_by(name))?;
                std::fs::write(hd.join("authorized_keys"), format!("{authorized}\n"))?;
                std::fs::write(hd.join("sshd_config"), sshd_config(&hd, &address, scen))?;
                let child = Command::new("unshare")
                    .args([
                        "--mount",
                        "--uts",
                        "--pid",
                        "--fork",
                        "--mount-proc",
                        "--propagation",
                        "private",
                        "--kill-child",
                    ])
                    .arg("/bin/sh")
                    .arg(hd.join("boot.sh"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(std::fs::File::create(hd.join("boot.log"))?)
                    .spawn()
                    .context("starting unshare")?;
                info.child = Some(child);
            }
            fleet.hosts.push(info);
        }
        std::fs::write(dir.join("known_hosts"), known_hosts)?;
        std::fs::write(dir.join("inventory.yaml"), inventory)?;
        fleet.wait_ready()?;
        fleet.write_state()?;
        Ok(fleet)
    }

    fn wait_ready(&mut self) -> Result<()> {
        // Hosts boot in parallel on few cores: a large fleet gets longer.
        let limit = Duration::from_secs(30) + Duration::from_millis(100) * self.hosts.len() as u32;
        let deadline = Instant::now() + limit;
        for h in &mut self.hosts {
            let Some(child) = &mut h.child else { continue };
            let addr: SocketAddr = format!("{}:{PORT}", h.address).parse()?;
            loop {
                if let Ok(Some(st)) = child.try_wait() {
                    let log = std::fs::read_to_string(h.dir.join("boot.log")).unwrap_or_default();
                    bail!("test host {} exited during start-up ({st}):\n{log}", h.name);
                }
                let ready = if matches!(h.scenario, Scenario::Hangs) {
                    h.dir.join("stopped").exists()
                } else {
                    banner(&addr)
                };
                if ready {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "test host {} did not answer on {addr} within {}s",
                        h.name,
                        limit.as_secs()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            h.sshd_pid = first_child(child.id());
        }
        Ok(())
    }

    /// Writes `fleet.json` with the PIDs, for `testfleet down`.
    fn write_state(&self) -> Result<()> {
        let hosts: Vec<serde_json::Value> = self
            .hosts
            .iter()
            .map(|h| {
                serde_json::json!({
                    "name": h.name, "address": h.address,
                    "unshare_pid": h.unshare_pid(), "sshd_pid": h.sshd_pid,
                })
            })
            .collect();
        std::fs::write(
            self.dir.join("fleet.json"),
            serde_json::to_string_pretty(&hosts)?,
        )?;
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn inventory_path(&self) -> PathBuf {
        self.dir.join("inventory.yaml")
    }
    pub fn known_hosts_path(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.join("client_key")
    }
    pub fn hosts(&self) -> &[HostInfo] {
        &self.hosts
    }
    pub fn host(&self, name: &str) -> &HostInfo {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no test host {name}"))
    }

    /// Leaves the hosts running after this process exits (`testfleet up --detach`).
    pub fn detach(mut self) -> PathBuf {
        for h in &mut self.hosts {
            if let Some(c) = h.child.take() {
                std::mem::forget(c);
            }
        }
        if let Some(t) = self._tmp.take() {
            let _ = t.keep();
        }
        self.dir.clone()
    }

    /// Stops one host at once, the way a machine goes away: its whole PID
    /// namespace (sshd and every connection's process) is killed.
    pub fn kill_host(&mut self, name: &str) -> Result<()> {
        let h = self
            .hosts
            .iter_mut()
            .find(|h| h.name == name)
            .with_context(|| format!("no test host {name}"))?;
        if let Some(mut c) = h.child.take() {
            c.kill()
                .with_context(|| format!("killing test host {name}"))?;
            c.wait()?;
        }
        h.sshd_pid = None;
        Ok(())
    }

    pub fn stop(self) {}
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for h in &mut self.hosts {
            if let Some(mut c) = h.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Stops a detached fleet by the PIDs in `fleet.json`, checking each PID is
/// still an `unshare` started for a host in `dir`.
pub fn stop_detached(dir: &Path) -> Result<usize> {
    let text = std::fs::read_to_string(dir.join("fleet.json")).context("reading fleet.json")?;
    let hosts: Vec<serde_json::Value> = serde_json::from_str(&text)?;
    for h in &hosts {
        if let Some(pid) = pid_in(h, "sshd_pid") {
            // Best effort, as before: the process may be gone already.
            let _ = signal(pid, Signal::SIGCONT);
        }
    }
    let live = live_hosts(dir, &hosts);
    for &pid in &live {
        let _ = signal(pid, Signal::SIGKILL);
    }
    Ok(live.len())
}

fn pid_in(h: &serde_json::Value, key: &str) -> Option<u32> {
    h.get(key)
        .and_then(|p| p.as_u64())
        .and_then(|p| u32::try_from(p).ok())
}

/// The `unshare` PIDs of `fleet.json`'s hosts that still run a host of `dir`.
fn live_hosts(dir: &Path, hosts: &[serde_json::Value]) -> Vec<u32> {
    hosts
        .iter()
        .filter_map(|h| pid_in(h, "unshare_pid"))
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline);
            cmdline.starts_with("unshare") && cmdline.contains(&dir.display().to_string())
        })
        .collect()
}

/// A directory that held a fleet before (`testfleet up`, then `down`) is
/// reused: what the old fleet generated goes, so `ssh-keygen` does not stop
/// to ask about overwriting a key and no old host's files linger. A fleet
/// still running there is an error that says how to stop it.
fn clear_stopped_fleet(dir: &Path) -> Result<()> {
    if let Ok(text) = std::fs::read_to_string(dir.join("fleet.json")) {
        let hosts: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap_or_default();
        let live = live_hosts(dir, &hosts);
        if !live.is_empty() {
            bail!(
                "{} holds a running test fleet ({} host(s) up): stop it with `testfleet down --dir {}` first, or use another directory",
                dir.display(),
                live.len(),
                dir.display()
            );
        }
    }
    // Gone already is as good as removed.
    let removed = |result: std::io::Result<()>, path: &Path| match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing the old fleet's {}", path.display()))
        }
        _ => Ok(()),
    };
    for d in ["hosts", "rpms"] {
        removed(std::fs::remove_dir_all(dir.join(d)), &dir.join(d))?;
    }
    for f in [
        "fleet.json",
        "inventory.yaml",
        "known_hosts",
        "client_key",
        "client_key.pub",
        "stranger_key",
        "stranger_key.pub",
    ] {
        removed(std::fs::remove_file(dir.join(f)), &dir.join(f))?;
    }
    Ok(())
}

/// The first process whose parent is `pid` (scanning /proc: not every kernel
/// has `/proc/PID/task/PID/children`).
fn first_child(pid: u32) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
        if ppid == Some(pid) {
            return Some(child);
        }
    }
    None
}

/// True when something on `addr` sends an SSH banner.
fn banner(addr: &SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 8];
    matches!(s.read(&mut buf), Ok(n) if n >= 4 && &buf[..4] == b"SSH-") && s.write_all(b"").is_ok()
}

fn sshd_config(hd: &Path, address: &str, scen: &Scenario) -> String {
    let d = hd.display();
    // Test hosts take a whole sweep's connections at once; bastions keep
    // OpenSSH's defaults, as real ones do, and MaxStartups hosts their own.
    let startups = match scen {
        Scenario::MaxStartups(m) => format!("MaxStartups {m}\nMaxSessions 100\n"),
        s if s.is_bastion() => String::new(),
        _ => "MaxStartups 2000\nMaxSessions 100\n".to_string(),
    };
    format!(
        "ListenAddress {address}:{PORT}\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
         StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
         PermitRootLogin no\nAllowTcpForwarding yes\n{startups}UseDNS no\n\
         PrintMotd no\nPrintLastLog no\nLogLevel VERBOSE\nSubsystem sftp internal-sftp\n"
    )
}

/// The address of the `i`-th host of a fleet on `subnet`: `127.0.SUBNET.(i+10)`
/// for the first 245 hosts; a larger fleet goes on in the next subnet(s).
pub fn address_of(subnet: u8, i: usize) -> String {
    let per_subnet = 245;
    let spill = u8::try_from(i / per_subnet).unwrap_or(u8::MAX);
    format!(
        "127.0.{}.{}",
        subnet.saturating_add(spill),
        i % per_subnet + 10
    )
}

/// The names hosts are known by: their address, or, behind a bastion, an
/// internal name only that bastion resolves.
struct Names<'a> {
    spec: &'a FleetSpec,
    internal: Vec<Option<String>>,
}

impl<'a> Names<'a> {
    fn new(spec: &'a FleetSpec) -> Names<'a> {
        let first_behind = spec
            .hosts
            .iter()
            .position(|(_, s)| matches!(s, Scenario::BehindBastion(_)));
        let internal = spec
            .hosts
            .iter()
            .enumerate()
            .map(|(i, (name, s))| {
                s.bastion().map(|_| {
                    if Some(i) == first_behind {
                        INTERNAL_NAME.to_string()
                    } else {
                        format!("{name}.internal.fleet.test")
                    }
                })
            })
            .collect();
        Names { spec, internal }
    }

    fn index(&self, name: &str) -> Result<usize> {
        self.spec
            .hosts
            .iter()
            .position(|(n, _)| n == name)
            .with_context(|| format!("bastion {name} is not in the fleet"))
    }

    /// What the inventory (and known_hosts) calls host `i`.
    fn inventory_address(&self, i: usize) -> String {
        self.internal[i]
            .clone()
            .unwrap_or_else(|| address_of(self.spec.subnet, i))
    }

    /// The `jump:` spec reaching the hosts behind `bastion`: through its own
    /// bastion first when it is an inner one.
    fn jump_to(&self, bastion: &str) -> Result<String> {
        let mut hops = Vec::new();
        let mut at = bastion.to_string();
        for _ in 0..self.spec.hosts.len() {
            let i = self.index(&at)?;
            hops.push(format!("{USER}@{}:{PORT}", self.inventory_address(i)));
            match &self.spec.hosts[i].1 {
                Scenario::InnerBastion(outer) => at = outer.clone(),
                _ => {
                    hops.reverse();
                    return Ok(hops.join(","));
                }
            }
        }
        bail!("the bastions of {bastion} form a cycle")
    }

    /// (address, internal name) of every host directly behind `bastion`.
    fn resolved_by(&self, bastion: &str) -> Vec<(String, String)> {
        self.spec
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, (_, s))| s.bastion() == Some(bastion))
            .map(|(i, _)| (address_of(self.spec.subnet, i), self.inventory_address(i)))
            .collect()
    }
}
