//! Real OpenSSH `sshd` processes on loopback for the transport tests.
//!
//! Each [`Sshd`] listens on its own `127.0.77.N:2222` (all of 127/8 is local on
//! Linux; other test suites use other ranges), has its own ed25519 host key in
//! a temp dir, and is killed by PID when dropped. Tests run as root and log in
//! as root with keys only.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use fleetsweep_e2e::{signal, Signal};
use tempfile::TempDir;

pub const SSHD: &str = "/usr/sbin/sshd";
pub const PORT: u16 = 2222;
/// Environment variable holding the passphrase of encrypted test keys.
pub const PASSPHRASE_VAR: &str = "FLEETSWEEP_TEST_KEY_PASSPHRASE";
pub const PASSPHRASE: &str = "correct horse battery staple";

/// Process-wide setup, run by every test before anything else. Environment
/// variables are set here once, while no test thread is past this point.
pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for tool in [
            SSHD,
            "/usr/bin/ssh-keygen",
            "/usr/bin/ssh-agent",
            "/usr/bin/ssh-add",
        ] {
            assert!(
                Path::new(tool).exists(),
                "{tool} not found: install openssh-server (apt-get install -y openssh-server)"
            );
        }
        std::env::set_var(PASSPHRASE_VAR, PASSPHRASE);
        std::env::set_var("SSH_AUTH_SOCK", agent_socket_path());
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd (tests must run as root)");
    });
}

/// Where the agent test's ssh-agent listens ($SSH_AUTH_SOCK for this process).
pub fn agent_socket_path() -> PathBuf {
    std::env::temp_dir().join(format!(
        "fleetsweep-ssh-transport-{}.agent",
        std::process::id()
    ))
}

/// Next free `127.0.77.N` (N from 10 up) whose port 2222 nobody holds.
pub fn next_address() -> String {
    static NEXT: AtomicU8 = AtomicU8::new(10);
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(n < 250, "ran out of 127.0.77.x test addresses");
        let addr = format!("127.0.77.{n}");
        if TcpListener::bind((addr.as_str(), PORT)).is_ok() {
            return addr;
        }
    }
}

/// Runs a command that must succeed.
pub fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `ssh-keygen` a key pair at `path` (`path.pub` too); returns `path`.
pub fn keygen(path: &Path, kind: &str, passphrase: &str) -> PathBuf {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", kind, "-N", passphrase, "-C", "", "-f"])
        .arg(path);
    if kind == "rsa" {
        cmd.args(["-b", "2048"]);
    }
    if !passphrase.is_empty() {
        // Few KDF rounds: the tests decrypt in a debug build.
        cmd.args(["-a", "2"]);
    }
    run(&mut cmd);
    path.to_path_buf()
}

pub fn pub_path(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// The public key line (`ssh-ed25519 AAAA...`) of a key pair.
pub fn public_line(key: &Path) -> String {
    let text = std::fs::read_to_string(pub_path(key)).expect("read .pub");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ssh-keygen -s ca [-h] -I id -n principals key.pub` → `key-cert.pub`.
pub fn certify(ca: &Path, key: &Path, host: bool, principals: &str) -> PathBuf {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-s"])
        .arg(ca)
        .args(["-I", "fleetsweep-test", "-n", principals]);
    if host {
        cmd.arg("-h");
    }
    cmd.arg(pub_path(key));
    run(&mut cmd);
    let mut name = key.as_os_str().to_owned();
    name.push("-cert.pub");
    PathBuf::from(name)
}

/// How to configure one sshd.
#[derive(Debug, Clone)]
pub struct SshdConfig {
    /// Public key files allowed to log in as root.
    pub authorized: Vec<PathBuf>,
    /// Sign the host key with this CA for this principal (`HostCertificate`).
    pub host_certificate: Option<(PathBuf, Principal)>,
    /// `TrustedUserCAKeys` (a CA public key file).
    pub trusted_user_ca: Option<PathBuf>,
    pub allow_tcp_forwarding: bool,
}

impl SshdConfig {
    pub fn authorized(keys: &[&Path]) -> SshdConfig {
        SshdConfig {
            authorized: keys.iter().map(|k| pub_path(k)).collect(),
            host_certificate: None,
            trusted_user_ca: None,
            allow_tcp_forwarding: true,
        }
    }
}

/// Who a host certificate is issued to.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The sshd's own `127.0.77.N` (known only once the address is allocated).
    OwnAddress,
    Name(String),
}

/// A running sshd on `address:2222`.
pub struct Sshd {
    pub address: String,
    pub port: u16,
    pub dir: TempDir,
    pub host_key: PathBuf,
    pub log: PathBuf,
    child: Child,
    stopped: bool,
}

impl Sshd {
    pub fn start(config: &SshdConfig) -> Sshd {
        Sshd::start_with(config, "")
    }

    /// Like [`Sshd::start`], with `extra` lines appended to sshd_config
    /// (`ForceCommand ...`, say).
    pub fn start_with(config: &SshdConfig, extra: &str) -> Sshd {
        init();
        let address = next_address();
        let dir = tempfile::Builder::new()
            .prefix("fleetsweep-sshd-")
            .tempdir()
            .expect("tempdir");
        let host_key = keygen(&dir.path().join("host_ed25519"), "ed25519", "");
        let mut authorized = String::new();
        for key in &config.authorized {
            authorized.push_str(&std::fs::read_to_string(key).expect("read authorized key"));
            authorized.push('\n');
        }
        let authorized_keys = dir.path().join("authorized_keys");
        std::fs::write(&authorized_keys, authorized).expect("write authorized_keys");
        let log = dir.path().join("sshd.log");
        let mut cfg = format!(
            "ListenAddress {address}:{PORT}\n\
             HostKey {host_key}\n\
             PidFile {pid}\n\
             AuthorizedKeysFile {authorized_keys}\n\
             UsePAM no\n\
             StrictModes no\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             PubkeyAuthentication yes\n\
             PermitRootLogin prohibit-password\n\
             AllowTcpForwarding {forwarding}\n\
             MaxStartups 100\n\
             MaxSessions 100\n\
             UseDNS no\n\
             PrintMotd no\n\
             LogLevel DEBUG1\n",
            host_key = host_key.display(),
            pid = dir.path().join("sshd.pid").display(),
            authorized_keys = authorized_keys.display(),
            forwarding = if config.allow_tcp_forwarding {
                "yes"
            } else {
                "no"
            },
        );
        if let Some((ca, principal)) = &config.host_certificate {
            let principal = match principal {
                Principal::OwnAddress => address.as_str(),
                Principal::Name(name) => name.as_str(),
            };
            let cert = certify(ca, &host_key, true, principal);
            cfg.push_str(&format!("HostCertificate {}\n", cert.display()));
        }
        if let Some(ca) = &config.trusted_user_ca {
            cfg.push_str(&format!("TrustedUserCAKeys {}\n", ca.display()));
        }
        cfg.push_str(extra);
        let cfg_path = dir.path().join("sshd_config");
        std::fs::write(&cfg_path, cfg).expect("write sshd_config");
        run(Command::new(SSHD).arg("-t").arg("-f").arg(&cfg_path));
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(&cfg_path)
            .arg("-E")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start sshd");
        let sshd = Sshd {
            address,
            port: PORT,
            dir,
            host_key,
            log,
            child,
            stopped: false,
        };
        sshd.wait_for_banner();
        sshd
    }

    fn wait_for_banner(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut stream) = TcpStream::connect((self.address.as_str(), self.port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut banner = [0u8; 4];
                if stream.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "sshd on {}:{} did not come up; log:\n{}",
                self.address,
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `[127.0.77.N]:2222 ssh-ed25519 AAAA...`
    pub fn known_hosts_line(&self) -> String {
        format!(
            "[{}]:{} {}",
            self.address,
            self.port,
            public_line(&self.host_key)
        )
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGSTOP the listener: the kernel still accepts TCP, but no banner comes.
    pub fn stop(&mut self) {
        signal(self.child.id(), Signal::SIGSTOP).expect("stopping sshd");
        self.stopped = true;
    }

    pub fn resume(&mut self) {
        signal(self.child.id(), Signal::SIGCONT).expect("resuming sshd");
        self.stopped = false;
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        if self.stopped {
            self.resume();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ssh-agent on [`agent_socket_path`], killed when dropped.
pub struct Agent {
    child: Child,
    pub socket: PathBuf,
}

impl Agent {
    pub fn start() -> Agent {
        init();
        let socket = agent_socket_path();
        let _ = std::fs::remove_file(&socket);
        let child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ssh-agent");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "ssh-agent did not create {}",
                socket.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Agent { child, socket }
    }

    pub fn add(&self, key: &Path) {
        run(Command::new("ssh-add")
            .arg("-q")
            .arg(key)
            .env("SSH_AUTH_SOCK", &self.socket));
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}
