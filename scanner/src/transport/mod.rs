//! Transports: how fleetsweep reaches a host and runs one read-only command there.
//!
//! A [`Session`] is one connection to one host. The sweep engine connects once per
//! host, runs the probe script once, and drops the session; only bastion
//! connections are shared, by the hosts behind them ([`bastion`], held in an
//! [`ssh::SshPool`] per sweep). Each protocol crate is named in exactly one
//! module: russh only in [`ssh`], so the rest of the code sees these types and a
//! russh upgrade is a one-module change.

pub mod bastion;
pub mod capture;
pub mod known_hosts;
pub mod local;
pub mod ssh;
pub mod ssh_config;
pub mod startup;
pub mod winrm;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use fleetsweep_exporters::Outcome;

/// Output of one remote command, collected by a [`capture::Capture`]: stdout is
/// capped at the byte limit given to `exec`, stderr at the smaller
/// [`capture::STDERR_KEEP`] (it only explains failures).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// None when the channel closed without an exit status (killed, signal).
    pub exit_status: Option<u32>,
    /// Stdout was cut at the limit, or reading stopped before the command ended
    /// (a host that kept streaming): findings may be incomplete. Stderr past
    /// its cap is dropped without setting this.
    pub truncated: bool,
}

/// Why a host could not be reached or asked. Each variant maps to one outcome;
/// the message is what the report's `error:` says, so it names the cause and,
/// where there is one, the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// TCP connect refused, no route, DNS failure, bastion could not forward.
    #[error("{0}")]
    Unreachable(String),
    /// No offered credential was accepted.
    #[error("{0}")]
    AuthFailed(String),
    /// The host key is unknown, changed, revoked, or its certificate invalid.
    #[error("{0}")]
    HostKeyRejected(String),
    /// Connect, handshake or command exceeded its deadline.
    #[error("{0}")]
    TimedOut(String),
    /// Connected, but the protocol or command failed (channel refused, exec denied).
    #[error("{0}")]
    Failed(String),
}

impl TransportError {
    pub fn outcome(&self) -> Outcome {
        match self {
            TransportError::Unreachable(_) => Outcome::Unreachable,
            TransportError::AuthFailed(_) => Outcome::AuthFailed,
            TransportError::HostKeyRejected(_) => Outcome::HostKeyRejected,
            TransportError::TimedOut(_) => Outcome::TimedOut,
            TransportError::Failed(_) => Outcome::ProbeFailed,
        }
    }
}

/// One hop of an SSH path: a bastion or the target itself, fully resolved
/// (inventory + `~/.ssh/config` + defaults already applied).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshEndpoint {
    /// Name or address to connect to (what known_hosts is checked against).
    pub address: Arc<str>,
    pub port: u16,
    pub user: Arc<str>,
    /// Private key files to try, in order (after the agent, if any). One list
    /// is shared by every host that names the same files (a fleet's hosts
    /// mostly take them from `defaults:`): not a copy per host.
    pub identity_files: Arc<[PathBuf]>,
}

/// Everything needed to open an SSH session to one host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SshTarget {
    pub endpoint: SshEndpoint,
    /// Bastions in order: connect to `jumps[0]`, from it to `jumps[1]`, ..., then the target.
    /// One list is shared by every host behind the same bastions (thousands
    /// of hosts behind one bastion hold one copy of it, not one each).
    pub jumps: Arc<[SshEndpoint]>,
}

/// Caps on connections in start-up, as the inventory sets them for a host
/// (`max_startups:`, `bastion_max_handshakes:`); None is the default. The
/// first host to reach a destination or a bastion sets its cap for the sweep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct StartupLimits {
    /// Connections to one `address:port` between TCP connect and the end of
    /// authentication, at once ([`startup::DEFAULT_MAX_STARTUPS`]).
    pub max_startups: Option<usize>,
    /// Channel opens + handshakes through one bastion, at once
    /// ([`bastion::DEFAULT_BASTION_MAX_HANDSHAKES`]).
    pub bastion_max_handshakes: Option<usize>,
}

/// Where the passphrase of encrypted private keys comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum Passphrase {
    #[default]
    None,
    /// Name of an environment variable holding it.
    Env(String),
    /// A file whose first line is the passphrase.
    File(PathBuf),
}

/// Settings shared by every SSH connection of a sweep.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// known_hosts files consulted for every host (first match decides).
    pub known_hosts: Vec<PathBuf>,
    /// Trust-on-first-use: accept unknown host keys and append them here.
    /// A changed or revoked key is still rejected.
    pub accept_new_host_keys: Option<PathBuf>,
    /// Offer keys from `$SSH_AUTH_SOCK` when it is set.
    pub use_agent: bool,
    pub passphrase: Passphrase,
    /// TCP connect + SSH handshake + auth deadline, per hop.
    pub connect_timeout: Duration,
}

/// An open session to one host.
pub enum Session {
    Ssh(ssh::SshSession),
    Local(local::LocalSession),
    /// WinRM takes the whole script in the command line (PowerShell
    /// `-EncodedCommand`); WinRS has stdin, but the probe does not need it.
    /// Boxed: it carries its settings and target, and sessions are moved around.
    Winrm(Box<winrm::WinrmSession>),
}

impl Session {
    /// Runs `command` through the host's shell, feeding `stdin` to it, and collects
    /// at most `limit` bytes of stdout (see [`capture`] for stderr and for hosts
    /// that keep streaming).
    pub async fn exec(
        &mut self,
        command: &str,
        stdin: &[u8],
        limit: usize,
    ) -> Result<ExecOutput, TransportError> {
        match self {
            Session::Ssh(s) => s.exec(command, stdin, limit).await,
            Session::Local(s) => s.exec(command, stdin, limit).await,
            Session::Winrm(_) if !stdin.is_empty() => Err(TransportError::Failed(
                "WinRM sessions take the script in the command line, not on stdin".to_string(),
            )),
            Session::Winrm(s) => s.run(command, limit).await,
        }
    }

    /// Closes the session politely (best effort).
    pub async fn close(self) {
        match self {
            Session::Ssh(s) => s.close().await,
            Session::Local(_) => {}
            Session::Winrm(s) => (*s).close().await,
        }
    }
}
