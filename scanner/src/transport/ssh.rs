//! SSH sessions over russh: connect (through bastions), authenticate, run one command.
//!
//! This is the only module that names russh's client API; the rest of fleetsweep
//! sees [`SshSession`] and [`TransportError`]. Upgrading russh is a change here
//! (and in `known_hosts`, which uses its re-exported `ssh-key` types).
//!
//! Choices that matter at fleet scale:
//! - `curve25519-sha256` is offered first: the post-quantum hybrid costs far more
//!   CPU per handshake, and a sweep does thousands of them.
//! - Host certificates are only requested when a `@cert-authority` line covers the
//!   host, and algorithms of keys already in known_hosts are offered first, so a
//!   host with several keys never looks like a changed key.
//! - One deadline bounds TCP connect + handshake + authentication of each hop; the
//!   error says which step was still running when it expired.
//! - Bastion connections are shared by the hosts behind them for a whole sweep
//!   ([`SshPool`], [`super::bastion`]): a bastion sees a few logins, not one per host.
//! - Connections in start-up are capped per destination, and one closed before
//!   authentication (a busy sshd's `MaxStartups`) is retried with backoff
//!   ([`super::startup`]); refused keys and host keys never are.
//! - Decrypted private keys are cached per process: bcrypt-pbkdf is deliberately
//!   slow, and one sweep uses the same key for every host.
//! - What a host sends is held within `--max-output`: few received messages are
//!   queued per channel (russh adjusts the window on receipt, so the queue, not
//!   the window, is what bounds data in flight), and output past the cap is
//!   dropped as it arrives, see [`super::capture`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::ssh_key::public::KeyData;
use russh::keys::{
    Algorithm, EcdsaCurve, HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate,
};
use russh::{kex, ChannelMsg, ChannelOpenFailure, Disconnect, MethodKind, Preferred};
use tokio::net::TcpStream;

mod forward;

pub use forward::{Forwarded, MAX_AHEAD};

use super::bastion::{self, ChainKey, Destination, Lease};
use super::capture::Capture;
use super::known_hosts::{HostKeyError, HostKeyPolicy, HostKeyPreferences};
use super::startup::{
    busy_message, jitter, Backoff, HandshakeGate, StartupGates, DEFAULT_MAX_HANDSHAKES,
    DEFAULT_MAX_STARTUPS,
};
use super::{
    ExecOutput, Passphrase, SshEndpoint, SshSettings, SshTarget, StartupLimits, TransportError,
};

/// Send a keepalive after this much silence from the server...
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
/// ...and give up after this many unanswered ones.
const KEEPALIVE_MAX: usize = 3;
/// Drop a connection on which nothing at all happened for this long.
const INACTIVITY_TIMEOUT: Duration = Duration::from_secs(600);
/// Received messages queued per channel before russh stops reading the socket.
const CHANNEL_BUFFER_MESSAGES: usize = 8;

/// The longest a goodbye (SSH disconnect) waits for the connection to take
/// it: the probe's results are in by then, and a connection that cannot take
/// a message within this is not worth a host's outcome or a sweep's end.
pub const GOODBYE_WAIT: Duration = Duration::from_secs(2);

/// Says goodbye on a connection, best effort, within [`GOODBYE_WAIT`].
async fn goodbye(handle: &Handle<Verifier>) {
    let bye = handle.disconnect(Disconnect::ByApplication, "", "en");
    if tokio::time::timeout(GOODBYE_WAIT, bye).await.is_err() {
        tracing::debug!("connection did not take the goodbye within {GOODBYE_WAIT:?}; dropped");
    }
}

/// An authenticated SSH connection to one host.
pub struct SshSession {
    handle: Handle<Verifier>,
    /// The pooled bastion connection the target's transport is a channel of
    /// (shared with the other hosts behind it). Held as long as `handle`.
    via: Option<Lease<BastionConn>>,
    /// A pool of this session's own (see [`connect`]), closed with it.
    own_pool: Option<Arc<SshPool>>,
    /// `user@host:port` of the target, for messages.
    label: String,
}

impl std::fmt::Debug for SshSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SshSession")
            .field("target", &self.label)
            .field("via_bastion", &self.via.is_some())
            .finish()
    }
}

/// A connection to a bastion, as the sweep's pool holds it.
pub struct BastionConn(Handle<Verifier>);

impl bastion::Connection for BastionConn {
    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// The connections of one sweep that hosts share: authenticated bastion
/// connections (see [`super::bastion`]), the per-destination caps on
/// connections in start-up and the sweep-wide one (see [`super::startup`]).
/// Create one per sweep and [`SshPool::close`] it at the end.
pub struct SshPool {
    bastions: bastion::Pool<BastionConn>,
    startups: StartupGates<Destination>,
    handshakes: HandshakeGate,
}

impl Default for SshPool {
    fn default() -> Self {
        SshPool::new(DEFAULT_MAX_HANDSHAKES)
    }
}

impl SshPool {
    /// A pool whose sweep has at most `max_handshakes` connections in
    /// start-up at once, whatever their destinations.
    pub fn new(max_handshakes: usize) -> SshPool {
        SshPool {
            bastions: bastion::Pool::default(),
            startups: StartupGates::new(),
            handshakes: HandshakeGate::new(max_handshakes),
        }
    }

    /// Says goodbye on every bastion connection, innermost first, waiting at
    /// most [`GOODBYE_WAIT`] for each: a connection whose peer stopped
    /// reading is left to the end of the process, never waited on.
    pub async fn close(&self) {
        for pooled in self.bastions.drain() {
            goodbye(&pooled.conn().0).await;
        }
    }
}

/// Connects to `target` (through its bastions, if any) and authenticates,
/// with a pool of its own: for one-off connections. A sweep uses
/// [`connect_pooled`] with one pool for all its hosts.
pub async fn connect(
    target: &SshTarget,
    settings: &SshSettings,
    policy: &Arc<HostKeyPolicy>,
) -> Result<SshSession, TransportError> {
    let pool = Arc::new(SshPool::default());
    let mut session = connect_pooled(
        target,
        settings,
        policy,
        &pool,
        &StartupLimits::default(),
        None,
    )
    .await?;
    session.own_pool = Some(pool);
    Ok(session)
}

/// Connects to `target` and authenticates, sharing bastion connections
/// through `pool`.
///
/// Every hop has its own host-key check, its own authentication, and its own
/// `connect_timeout` per attempt; a connection the server closes before
/// authentication is retried (see [`super::startup`]) until `deadline`.
/// Errors say which hop failed.
pub async fn connect_pooled(
    target: &SshTarget,
    settings: &SshSettings,
    policy: &Arc<HostKeyPolicy>,
    pool: &SshPool,
    limits: &StartupLimits,
    deadline: Option<Instant>,
) -> Result<SshSession, TransportError> {
    let ctx = HopContext {
        settings,
        policy,
        pool,
        limits,
        deadline,
    };
    let mut via = match &target.jumps[..] {
        [] => None,
        jumps => Some(lease_chain(&ctx, jumps).await?),
    };
    let dest: Destination = (
        (!target.jumps.is_empty()).then(|| ChainKey::new(&target.jumps, settings)),
        target.endpoint.address.to_string(),
        target.endpoint.port,
    );
    let mut refusals = 0;
    loop {
        match connect_hop(&ctx, &target.endpoint, via.as_ref(), &dest).await {
            Ok(handle) => {
                return Ok(SshSession {
                    handle,
                    via,
                    own_pool: None,
                    label: label(&target.endpoint),
                })
            }
            Err(HopFailure::Capacity(_)) if refusals < CAPACITY_REFUSALS => {
                // The bastion has no room for another channel on that
                // connection: the next lease opens another one beside it.
                if let Some(lease) = &via {
                    lease.mark_full();
                }
                refusals += 1;
                via = Some(lease_chain(&ctx, &target.jumps).await?);
            }
            Err(failure) => {
                let e = failure.into_error();
                if let Some(bastion) = via.as_ref().and_then(Lease::lost_bastion) {
                    return Err(bastion_lost(&bastion, &label(&target.endpoint), &e));
                }
                if target.jumps.is_empty() {
                    return Err(e);
                }
                let chain = describe_chain(&target.jumps);
                return Err(map_message(e, |m| format!("{m} ({chain})")));
            }
        }
    }
}

/// Channel opens refused for lack of resources before a host gives up.
const CAPACITY_REFUSALS: usize = 3;

/// What every hop of one host's connection shares.
struct HopContext<'a> {
    settings: &'a SshSettings,
    policy: &'a Arc<HostKeyPolicy>,
    pool: &'a SshPool,
    limits: &'a StartupLimits,
    deadline: Option<Instant>,
}

type LeaseFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Lease<BastionConn>, TransportError>> + Send + 'a>>;

/// A lease on a pooled connection to the last bastion of `jumps`, opening
/// one (through the chain one hop shorter) when none has room.
fn lease_chain<'a>(ctx: &'a HopContext<'a>, jumps: &'a [SshEndpoint]) -> LeaseFuture<'a> {
    Box::pin(async move {
        let (hop, before) = match jumps.split_last() {
            Some(split) => split,
            None => {
                return Err(TransportError::Failed(
                    "internal error: a bastion chain without bastions".into(),
                ))
            }
        };
        let key = ChainKey::new(jumps, ctx.settings);
        let max_handshakes = ctx
            .limits
            .bastion_max_handshakes
            .unwrap_or(bastion::DEFAULT_BASTION_MAX_HANDSHAKES);
        let chain = ctx.pool.bastions.chain(&key, &label(hop), max_handshakes);
        let mut guard = chain.lock().await;
        if let Some(lease) = guard.lease()? {
            return Ok(lease);
        }
        let lost = guard.lost();
        let prefix = if before.is_empty() {
            format!("via bastion {}", label(hop))
        } else {
            format!(
                "via bastion {} (reached {})",
                label(hop),
                describe_chain(before)
            )
        };
        let mut parent = match before {
            [] => None,
            _ => Some(lease_chain(ctx, before).await?),
        };
        let dest: Destination = (key.parent(), hop.address.to_string(), hop.port);
        let mut refusals = 0;
        loop {
            match connect_hop(ctx, hop, parent.as_ref(), &dest).await {
                Ok(handle) => return Ok(guard.add(BastionConn(handle), parent)),
                Err(HopFailure::Capacity(_)) if refusals < CAPACITY_REFUSALS => {
                    if let Some(lease) = &parent {
                        lease.mark_full();
                    }
                    refusals += 1;
                    parent = Some(lease_chain(ctx, before).await?);
                }
                Err(failure) => {
                    let e = failure.into_error();
                    let mut e = match parent.as_ref().and_then(Lease::lost_bastion) {
                        Some(outer) => bastion_lost(&outer, &label(hop), &e),
                        None => map_message(e, |m| format!("{prefix}: {m}")),
                    };
                    if lost > 0 {
                        e = map_message(e, |m| {
                            format!(
                                "{m} (the connection to bastion {} was lost during the sweep \
                                 and could not be opened again; the hosts behind it were not \
                                 scanned)",
                                label(hop)
                            )
                        });
                    }
                    // Every later host behind this bastion gets the same
                    // answer, without a connection of its own.
                    guard.fail(e.clone());
                    return Err(e);
                }
            }
        }
    })
}

/// A host could not be reached or scanned because a bastion it goes through
/// went away.
fn bastion_lost(bastion: &str, target: &str, e: &TransportError) -> TransportError {
    TransportError::Unreachable(format!(
        "{target}: the connection to bastion {bastion} was lost (the bastion went away or \
         hung up), so the host was not scanned; check that the bastion is up and scan again \
         ({e})"
    ))
}

impl SshSession {
    /// Opens a `direct-tcpip` channel from this host to `address:port` (what
    /// a bastion does for the hosts behind it), as a byte stream that is
    /// drained as data arrives: a reader that falls behind never holds up
    /// this connection's other channels (see [`Forwarded`]).
    pub async fn forward(&self, address: &str, port: u16) -> Result<Forwarded, TransportError> {
        let channel = self
            .handle
            .channel_open_direct_tcpip(address, u32::from(port), "127.0.0.1", 0)
            .await
            .map_err(|e| {
                TransportError::Unreachable(format!(
                    "{} could not forward to {}: {e}",
                    self.label,
                    host_port_label(address, port)
                ))
            })?;
        Ok(forward::forwarded(channel, &host_port_label(address, port)))
    }

    /// Runs `command` on a new session channel, sends `stdin` then EOF, and
    /// collects its output within `limit` (see [`super::capture`]: the rest is
    /// read and dropped, and a host that keeps streaming past the cap is cut
    /// off by closing the channel).
    pub async fn exec(
        &mut self,
        command: &str,
        stdin: &[u8],
        limit: usize,
    ) -> Result<ExecOutput, TransportError> {
        match self.exec_inner(command, stdin, limit).await {
            Ok(out) if out.exit_status.is_none() && !out.truncated => {
                // A channel that ended without an exit status because the
                // bastion under it went away is the bastion's failure.
                match self.via.as_ref().and_then(Lease::lost_bastion) {
                    Some(_) => Err(self.explain_loss(TransportError::Failed(
                        "connection lost while the command was running".into(),
                    ))),
                    None => Ok(out),
                }
            }
            Ok(out) => Ok(out),
            Err(e) => Err(self.explain_loss(e)),
        }
    }

    async fn exec_inner(
        &mut self,
        command: &str,
        stdin: &[u8],
        limit: usize,
    ) -> Result<ExecOutput, TransportError> {
        let channel = self.handle.channel_open_session().await.map_err(|e| {
            TransportError::Failed(format!(
                "{}: cannot open a session channel: {e}",
                self.label
            ))
        })?;
        channel.exec(true, command).await.map_err(|e| {
            TransportError::Failed(format!("{}: cannot send the command: {e}", self.label))
        })?;
        let (mut reader, writer) = channel.split();

        // Feed stdin while reading, so neither side's window fills up and stalls
        // the other. Stop feeding once the command is done: a command that
        // ignores its stdin must not leave us waiting for window space.
        let feed = async {
            if !stdin.is_empty() {
                if let Err(e) = writer.data(stdin).await {
                    tracing::debug!(target = %self.label, error = %e, "stdin not fully delivered");
                }
            }
            let _ = writer.eof().await;
        };
        let collect = async {
            let mut capture = Capture::new(limit);
            let mut exit_status = None;
            let mut closed = false;
            let mut cut_off = false;
            loop {
                if capture.exhausted() {
                    cut_off = true;
                    break;
                }
                let message = match capture.drain_deadline() {
                    None => reader.wait().await,
                    Some(deadline) => {
                        match tokio::time::timeout_at(deadline, reader.wait()).await {
                            Ok(message) => message,
                            Err(_) => {
                                cut_off = true;
                                break;
                            }
                        }
                    }
                };
                let Some(message) = message else { break };
                match message {
                    ChannelMsg::Data { data } => capture.stdout(&data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => capture.stderr(&data),
                    ChannelMsg::ExtendedData { data, .. } => capture.discard(data.len()),
                    ChannelMsg::ExitStatus { exit_status: code } => exit_status = Some(code),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        tracing::debug!(target = %self.label, signal = ?signal_name, "command killed by a signal");
                    }
                    ChannelMsg::Failure => {
                        return Err(TransportError::Failed(format!(
                            "{}: the server refused to run the command",
                            self.label
                        )));
                    }
                    ChannelMsg::Close => {
                        closed = true;
                        break;
                    }
                    _ => {}
                }
            }
            if cut_off {
                // Nothing more is read from this channel: closing it makes
                // sshd hang up on the command, and what is still in flight is
                // dropped by russh once our half of the channel is gone.
                tracing::debug!(
                    target = %self.label, bytes = capture.seen(),
                    "output past the cap kept coming; channel closed"
                );
                let _ = writer.close().await;
            } else if !closed && exit_status.is_none() && self.handle.is_closed() {
                return Err(TransportError::Failed(format!(
                    "{}: connection lost while the command was running",
                    self.label
                )));
            }
            Ok(capture.finish(exit_status, cut_off))
        };
        tokio::pin!(feed);
        tokio::pin!(collect);
        let mut feeding = true;
        loop {
            tokio::select! {
                () = &mut feed, if feeding => feeding = false,
                out = &mut collect => break out,
            }
        }
    }

    /// Says goodbye to the target (best effort). Pooled bastion connections
    /// stay open for the other hosts; the pool closes them.
    pub async fn close(self) {
        goodbye(&self.handle).await;
        drop(self.via);
        if let Some(pool) = self.own_pool {
            pool.close().await;
        }
    }

    /// When a bastion of this session went away, the error that says so
    /// (the host was not scanned because of the bastion, not because of itself).
    fn explain_loss(&self, e: TransportError) -> TransportError {
        match self.via.as_ref().and_then(Lease::lost_bastion) {
            Some(bastion) => bastion_lost(&bastion, &self.label, &e),
            None => e,
        }
    }
}

/// The russh handler: all it decides is whether the server's key is trusted.
struct Verifier {
    host: String,
    port: u16,
    policy: Arc<HostKeyPolicy>,
}

#[derive(Debug)]
enum HandlerError {
    Ssh(russh::Error),
    HostKey(HostKeyError),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

impl client::Handler for Verifier {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match key {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                self.policy.check_key(&self.host, self.port, key)
            }
            PublicKeyOrCertificate::Certificate(cert) => {
                self.policy.check_certificate(&self.host, self.port, cert)
            }
        };
        verdict.map(|()| true).map_err(HandlerError::HostKey)
    }
}

/// Which step of a hop was running, to explain a timeout.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Tcp,
    Forward,
    Handshake,
    Auth,
}

/// How opening one hop failed, for the caller's next step.
enum HopFailure {
    /// The bastion refused the channel for lack of resources: try another
    /// connection to it.
    Capacity(TransportError),
    Other(TransportError),
}

impl HopFailure {
    fn into_error(self) -> TransportError {
        match self {
            HopFailure::Capacity(e) | HopFailure::Other(e) => e,
        }
    }
}

/// How one attempt at a hop ended.
enum AttemptError {
    /// Closed or reset before authentication: what a busy sshd does. Retried.
    Busy(String),
    Capacity(TransportError),
    Final(TransportError),
}

impl From<TransportError> for AttemptError {
    fn from(e: TransportError) -> Self {
        AttemptError::Final(e)
    }
}

/// Opens one hop, directly or through `via`: each attempt waits for a
/// start-up slot at the destination (and a handshake slot on the bastion)
/// and has `connect_timeout`; a refused start-up is retried with backoff
/// within the host's deadline.
async fn connect_hop(
    ctx: &HopContext<'_>,
    hop: &SshEndpoint,
    via: Option<&Lease<BastionConn>>,
    dest: &Destination,
) -> Result<Handle<Verifier>, HopFailure> {
    let started = Instant::now();
    let mut backoff = Backoff::new();
    let cap = ctx.limits.max_startups.unwrap_or(DEFAULT_MAX_STARTUPS);
    loop {
        let attempt = {
            // Destination first, then bastion: one order everywhere, so two
            // hosts never hold one each while waiting for the other.
            let _startup = ctx.pool.startups.enter(dest, cap).await;
            let _handshake = match via {
                Some(lease) => lease.handshake_slot().await,
                None => None,
            };
            // Last, the sweep-wide cap: a slot is held only by a connection
            // that can start now. The attempt's future (several KB) is
            // allocated only then, not by every host waiting for a slot.
            let _global = ctx.pool.handshakes.enter().await;
            Box::pin(attempt_hop(hop, via.map(|l| &l.conn().0), ctx)).await
        };
        let what = match attempt {
            Ok(handle) => return Ok(handle),
            Err(AttemptError::Capacity(e)) => return Err(HopFailure::Capacity(e)),
            Err(AttemptError::Final(e)) => return Err(HopFailure::Other(e)),
            Err(AttemptError::Busy(what)) => what,
        };
        let refused = |attempts: u32| {
            TransportError::Unreachable(busy_message(
                &host_port_label(&hop.address, hop.port),
                attempts,
                started.elapsed(),
                &what,
                cap,
            ))
        };
        if via.and_then(Lease::lost_bastion).is_some() {
            // The bastion itself is gone: nothing to retry through.
            return Err(HopFailure::Other(refused(backoff.attempts())));
        }
        let attempts = backoff.attempts();
        let pause = match backoff.next_pause(jitter()) {
            Some(pause) if fits(pause, ctx.deadline) => pause,
            _ => return Err(HopFailure::Other(refused(attempts))),
        };
        tracing::debug!(
            destination = %host_port_label(&hop.address, hop.port), attempt = backoff.attempts() - 1,
            pause_ms = pause.as_millis() as u64, reason = %what,
            "connection closed before authentication; retrying"
        );
        tokio::time::sleep(pause).await;
    }
}

/// Whether a retry after `pause` still leaves the host time to connect.
fn fits(pause: Duration, deadline: Option<Instant>) -> bool {
    deadline.is_none_or(|d| Instant::now() + pause + RETRY_MARGIN < d)
}

/// Time a retry needs left after its pause to be worth starting.
const RETRY_MARGIN: Duration = Duration::from_secs(1);

/// One attempt at a hop, within `connect_timeout`; a timeout says which
/// step was still running.
async fn attempt_hop(
    hop: &SshEndpoint,
    via: Option<&Handle<Verifier>>,
    ctx: &HopContext<'_>,
) -> Result<Handle<Verifier>, AttemptError> {
    let mut stage = Stage::Tcp;
    let limit = ctx.settings.connect_timeout;
    let opened = tokio::time::timeout(
        limit,
        open_hop(hop, via, ctx.settings, ctx.policy, &mut stage),
    )
    .await;
    match opened {
        Ok(result) => result,
        Err(_) => {
            let addr = host_port_label(&hop.address, hop.port);
            let secs = seconds(limit);
            Err(AttemptError::Final(TransportError::TimedOut(match stage {
                Stage::Tcp => format!("connecting to {addr}: no TCP connection within {secs}"),
                Stage::Forward => format!(
                    "connecting to {addr}: the bastion did not open a channel within {secs}"
                ),
                Stage::Handshake => {
                    format!("connecting to {addr}: no SSH banner/handshake within {secs}")
                }
                Stage::Auth => {
                    format!("connecting to {addr}: authentication did not finish within {secs}")
                }
            })))
        }
    }
}

async fn open_hop(
    hop: &SshEndpoint,
    via: Option<&Handle<Verifier>>,
    settings: &SshSettings,
    policy: &Arc<HostKeyPolicy>,
    stage: &mut Stage,
) -> Result<Handle<Verifier>, AttemptError> {
    let mut prefs = policy.preferences(&hop.address, hop.port);
    let mut asked_again = false;
    let mut handle = loop {
        let handshake = handshake(hop, via, shared_config(prefs.clone()), policy, stage).await?;
        match handshake {
            Err(HandlerError::HostKey(e)) => {
                // A refused key may have made the policy read lines that the
                // preferences skipped (hashed known_hosts lines holding
                // another key type for the host): once, connect again asking
                // for the key types they record.
                let now = policy.preferences(&hop.address, hop.port);
                if asked_again || now == prefs {
                    return Err(AttemptError::Final(TransportError::HostKeyRejected(
                        e.to_string(),
                    )));
                }
                tracing::debug!(host = %hop.address, port = hop.port, "connecting again asking for the host key types known_hosts records");
                prefs = now;
                asked_again = true;
            }
            Err(HandlerError::Ssh(e)) if is_busy_refusal(&e) => {
                return Err(AttemptError::Busy(busy_reason(&e)))
            }
            Err(HandlerError::Ssh(e)) => {
                return Err(AttemptError::Final(TransportError::Failed(format!(
                    "SSH handshake with {} failed: {e}",
                    host_port_label(&hop.address, hop.port)
                ))))
            }
            Ok(handle) => break handle,
        }
    };
    *stage = Stage::Auth;
    // Never retried: a refused key would count against us on every attempt
    // (and OpenSSH 9.8+ penalises the source address for it).
    authenticate(&mut handle, hop, settings).await?;
    Ok(handle)
}

/// TCP (or a channel through `via`), then the SSH handshake with `hop` up
/// to its host key check; the outer error is a failure before the handshake.
async fn handshake(
    hop: &SshEndpoint,
    via: Option<&Handle<Verifier>>,
    config: Arc<client::Config>,
    policy: &Arc<HostKeyPolicy>,
    stage: &mut Stage,
) -> Result<Result<Handle<Verifier>, HandlerError>, AttemptError> {
    let verifier = Verifier {
        host: hop.address.to_string(),
        port: hop.port,
        policy: Arc::clone(policy),
    };
    match via {
        None => {
            *stage = Stage::Tcp;
            let tcp = tcp_connect(&hop.address, hop.port).await?;
            *stage = Stage::Handshake;
            Ok(client::connect_stream(config, tcp, verifier).await)
        }
        Some(bastion) => {
            *stage = Stage::Forward;
            let channel = bastion
                .channel_open_direct_tcpip(
                    hop.address.to_string(),
                    u32::from(hop.port),
                    "127.0.0.1",
                    0,
                )
                .await
                .map_err(|e| {
                    let capacity = is_capacity_refusal(&e);
                    let e = forward_error(hop, e);
                    if capacity {
                        AttemptError::Capacity(e)
                    } else {
                        AttemptError::Final(e)
                    }
                })?;
            *stage = Stage::Handshake;
            let destination = host_port_label(&hop.address, hop.port);
            Ok(
                client::connect_stream(config, forward::forwarded(channel, &destination), verifier)
                    .await,
            )
        }
    }
}

/// The server closed or reset the connection before the banner or during
/// the key exchange: what sshd does to connections past `MaxStartups` (and,
/// on OpenSSH 9.8+, to a penalised source address). Worth a retry later.
fn is_busy_refusal(e: &russh::Error) -> bool {
    use std::io::ErrorKind;
    match e {
        russh::Error::Disconnect | russh::Error::HUP => true,
        russh::Error::IO(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
                | ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

/// A bastion said it has no room for another channel (rather than that it
/// may not, or cannot reach the target).
fn is_capacity_refusal(e: &russh::Error) -> bool {
    matches!(
        e,
        russh::Error::ChannelOpenFailure(ChannelOpenFailure::ResourceShortage)
    )
}

/// A busy refusal in words, for the report.
fn busy_reason(e: &russh::Error) -> String {
    match e {
        russh::Error::Disconnect | russh::Error::HUP => {
            "connection closed by the server before authentication".into()
        }
        other => format!("{other}"),
    }
}

/// The client configuration for `prefs`, built once per distinct set of
/// preferences and shared: a fleet's hosts have a few sets between them
/// (one per mix of host key types), and each built configuration is about a
/// kilobyte of algorithm lists that every open connection would hold a copy of.
fn shared_config(prefs: HostKeyPreferences) -> Arc<client::Config> {
    /// Distinct sets kept; past it (a known_hosts file listing many key
    /// types in many orders) a host gets a configuration of its own.
    const KEPT: usize = 32;
    static BUILT: std::sync::Mutex<Vec<(HostKeyPreferences, Arc<client::Config>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, config)) = built.iter().find(|(p, _)| *p == prefs) {
        return Arc::clone(config);
    }
    let config = Arc::new(client_config(&prefs));
    if built.len() < KEPT {
        built.push((prefs, Arc::clone(&config)));
    }
    config
}

fn client_config(prefs: &HostKeyPreferences) -> client::Config {
    // Cheap key exchange first; the rest of russh's safe list after it.
    let mut kex_order = vec![kex::CURVE25519, kex::CURVE25519_PRE_RFC_8731];
    kex_order.extend(
        Preferred::DEFAULT
            .kex
            .iter()
            .filter(|k| !kex_order.contains(k))
            .copied()
            .collect::<Vec<_>>(),
    );

    let mut keys: Vec<Algorithm> = Vec::new();
    for algorithm in &prefs.known_algorithms {
        if matches!(algorithm, Algorithm::Rsa { .. }) {
            keys.push(Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            });
            keys.push(Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            });
        }
        keys.push(algorithm.clone());
    }
    for algorithm in Preferred::DEFAULT.key.iter() {
        if !keys.contains(algorithm) {
            keys.push(algorithm.clone());
        }
    }
    let certificates: Vec<Algorithm> = if prefs.certificate_authority {
        vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ]
    } else {
        Vec::new()
    };
    // AES-GCM first: with AES-NI (any x86 server of the last decade) ring's
    // AES-256-GCM costs less per byte than ChaCha20-Poly1305, russh's first.
    let mut ciphers = vec![russh::cipher::AES_256_GCM];
    ciphers.extend(
        Preferred::DEFAULT
            .cipher
            .iter()
            .filter(|c| !ciphers.contains(c))
            .copied()
            .collect::<Vec<_>>(),
    );
    let preferred = Preferred {
        kex: Cow::Owned(kex_order),
        cipher: Cow::Owned(ciphers),
        key: Cow::Owned(keys),
        host_key_certificates: Cow::Owned(certificates),
        ..Preferred::default()
    };
    client::Config {
        // What a server can make us hold per channel: russh queues this many
        // received messages before it stops reading the socket (backpressure),
        // and it accepts packets of up to 256 KiB whatever maximum we announce.
        // Its default (100) lets one host park 25 MiB here; 8 is 2 MiB at worst
        // (256 KiB in practice, 32 KiB packets), and the exec loop keeps it empty.
        channel_buffer_size: CHANNEL_BUFFER_MESSAGES,
        nodelay: true,
        inactivity_timeout: Some(INACTIVITY_TIMEOUT),
        keepalive_interval: Some(KEEPALIVE_INTERVAL),
        keepalive_max: KEEPALIVE_MAX,
        preferred,
        ..client::Config::default()
    }
}

/// Resolves and connects, trying each address; errors name the address.
async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, TransportError> {
    let target = host_port_label(host, port);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| TransportError::Unreachable(format!("cannot resolve {host:?}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(TransportError::Unreachable(format!(
            "cannot resolve {host:?}: no addresses"
        )));
    }
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(%addr, error = %e, "set_nodelay failed");
                }
                return Ok(stream);
            }
            Err(e) => last_error = Some((addr, e)),
        }
    }
    let reason = match last_error {
        Some((addr, e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("connection refused by {addr} (is sshd running on port {port}?)")
        }
        Some((addr, e)) => format!("{addr}: {e}"),
        None => "no address to try".to_string(),
    };
    Err(TransportError::Unreachable(format!(
        "connecting to {target}: {reason}"
    )))
}

/// A bastion that cannot (or will not) forward makes the target unreachable.
fn forward_error(hop: &SshEndpoint, e: russh::Error) -> TransportError {
    let to = host_port_label(&hop.address, hop.port);
    let reason = match &e {
        russh::Error::ChannelOpenFailure(ChannelOpenFailure::AdministrativelyProhibited) => {
            "forwarding refused (administratively prohibited: is AllowTcpForwarding off on the bastion?)".to_string()
        }
        russh::Error::ChannelOpenFailure(ChannelOpenFailure::ConnectFailed) => {
            "its connection attempt failed (nothing listening, or no route from the bastion)".to_string()
        }
        russh::Error::ChannelOpenFailure(ChannelOpenFailure::Other { reason, code }) => {
            format!("refused to forward: {reason} (code {code})")
        }
        other => format!("cannot forward: {other}"),
    };
    TransportError::Unreachable(format!("the bastion could not connect to {to}: {reason}"))
}

/// What one authentication run offered and what went wrong on the way.
#[derive(Default)]
struct Attempts {
    /// Credentials actually offered to the server.
    tried: Vec<String>,
    /// Credentials we could not even offer, and why.
    problems: Vec<String>,
    /// Keys already offered (agent first), so files do not repeat them.
    offered: Vec<KeyData>,
    /// The server no longer accepts public keys (or hung up).
    exhausted: bool,
    /// The server wants another factor after a key was accepted.
    partial: bool,
}

impl Attempts {
    fn record(&mut self, result: AuthResult) -> bool {
        match result {
            AuthResult::Success => true,
            AuthResult::Failure {
                remaining_methods,
                partial_success,
            } => {
                self.partial |= partial_success;
                if !remaining_methods.contains(&MethodKind::PublicKey) {
                    self.exhausted = true;
                }
                false
            }
        }
    }
}

/// Public-key authentication: agent keys, then each identity file (its
/// `-cert.pub` certificate first, when there is one).
async fn authenticate(
    handle: &mut Handle<Verifier>,
    hop: &SshEndpoint,
    settings: &SshSettings,
) -> Result<(), TransportError> {
    let mut attempts = Attempts::default();
    let mut rsa_hash: Option<Option<HashAlg>> = None;
    let user: &str = &hop.user;

    if settings.use_agent && try_agent(handle, user, &mut attempts, &mut rsa_hash).await? {
        return Ok(());
    }
    for path in hop.identity_files.iter() {
        if attempts.exhausted {
            break;
        }
        if try_identity_file(
            handle,
            user,
            path,
            &settings.passphrase,
            &mut attempts,
            &mut rsa_hash,
        )
        .await?
        {
            return Ok(());
        }
    }

    let at = host_port_label(&hop.address, hop.port);
    let mut message = if attempts.tried.is_empty() {
        format!("no credentials to offer for user '{user}' at {at}")
    } else if attempts.partial {
        format!(
            "server {at} accepted a key for user '{user}' but requires another authentication method \
             (tried {})",
            attempts.tried.join(", ")
        )
    } else {
        format!(
            "server {at} refused public-key auth for user '{user}' (tried {})",
            attempts.tried.join(", ")
        )
    };
    if !attempts.problems.is_empty() {
        message.push_str("; ");
        message.push_str(&attempts.problems.join("; "));
    }
    Err(TransportError::AuthFailed(message))
}

/// Offers every agent key. Ok(true) once one is accepted.
async fn try_agent(
    handle: &mut Handle<Verifier>,
    user: &str,
    attempts: &mut Attempts,
    rsa_hash: &mut Option<Option<HashAlg>>,
) -> Result<bool, TransportError> {
    let Some(socket) = std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty()) else {
        attempts
            .problems
            .push("no ssh-agent (SSH_AUTH_SOCK is not set)".into());
        return Ok(false);
    };
    let shown = Path::new(&socket).display().to_string();
    let mut agent = match AgentClient::connect_uds(&socket).await {
        Ok(agent) => agent,
        Err(e) => {
            attempts
                .problems
                .push(format!("ssh-agent at {shown} is unusable: {e}"));
            return Ok(false);
        }
    };
    let identities = match agent.request_identities().await {
        Ok(ids) => ids,
        Err(e) => {
            attempts
                .problems
                .push(format!("ssh-agent at {shown} did not list its keys: {e}"));
            return Ok(false);
        }
    };
    if identities.is_empty() {
        attempts
            .problems
            .push(format!("the ssh-agent at {shown} holds no keys"));
        return Ok(false);
    }
    attempts.tried.push(format!(
        "agent ({} key{})",
        identities.len(),
        plural(identities.len())
    ));
    for identity in identities {
        if attempts.exhausted {
            break;
        }
        let public = identity.public_key().into_owned();
        attempts.offered.push(public.key_data().clone());
        let hash = if public.algorithm().is_rsa() {
            rsa_hash_for(handle, rsa_hash).await
        } else {
            None
        };
        let result = match identity {
            AgentIdentity::PublicKey { key, .. } => {
                handle
                    .authenticate_publickey_with(user, key, hash, &mut agent)
                    .await
            }
            AgentIdentity::Certificate { certificate, .. } => {
                handle
                    .authenticate_certificate_with(user, certificate, hash, &mut agent)
                    .await
            }
        };
        match result {
            Ok(result) => {
                if attempts.record(result) {
                    return Ok(true);
                }
            }
            Err(e) => {
                if handle.is_closed() {
                    return Err(TransportError::AuthFailed(format!(
                        "server closed the connection during authentication of user '{user}': {e}"
                    )));
                }
                attempts
                    .problems
                    .push(format!("the agent could not sign with a key: {e}"));
            }
        }
    }
    Ok(false)
}

/// Offers one identity file (and its certificate). Ok(true) once accepted.
async fn try_identity_file(
    handle: &mut Handle<Verifier>,
    user: &str,
    path: &Path,
    passphrase: &Passphrase,
    attempts: &mut Attempts,
    rsa_hash: &mut Option<Option<HashAlg>>,
) -> Result<bool, TransportError> {
    if !path.exists() {
        attempts
            .problems
            .push(format!("{} does not exist", path.display()));
        return Ok(false);
    }
    let key = match load_private_key(path, passphrase).await {
        Ok(key) => key,
        Err(problem) => {
            attempts.problems.push(problem);
            return Ok(false);
        }
    };
    let mut cert_name = path.as_os_str().to_owned();
    cert_name.push("-cert.pub");
    let cert_path = PathBuf::from(cert_name);
    if cert_path.exists() {
        match russh::keys::load_openssh_certificate(&cert_path) {
            Ok(cert) => {
                attempts.tried.push(cert_path.display().to_string());
                let result = handle
                    .authenticate_openssh_cert(user, Arc::clone(&key), cert)
                    .await
                    .map_err(|e| auth_transport_error(user, e))?;
                if attempts.record(result) {
                    return Ok(true);
                }
            }
            Err(e) => attempts.problems.push(format!(
                "cannot read certificate {}: {e}",
                cert_path.display()
            )),
        }
    }
    if attempts.exhausted {
        return Ok(false);
    }
    if attempts.offered.contains(key.public_key().key_data()) {
        // The agent already offered this very key.
        return Ok(false);
    }
    attempts.offered.push(key.public_key().key_data().clone());
    attempts.tried.push(path.display().to_string());
    let hash = if key.algorithm().is_rsa() {
        rsa_hash_for(handle, rsa_hash).await
    } else {
        None
    };
    let result = handle
        .authenticate_publickey(user, PrivateKeyWithHashAlg::new(key, hash))
        .await
        .map_err(|e| auth_transport_error(user, e))?;
    Ok(attempts.record(result))
}

fn auth_transport_error(user: &str, e: russh::Error) -> TransportError {
    match e {
        russh::Error::Disconnect
        | russh::Error::HUP
        | russh::Error::SendError
        | russh::Error::RecvError => TransportError::AuthFailed(format!(
            "server closed the connection during authentication of user '{user}' \
                 (too many keys offered? see MaxAuthTries)"
        )),
        other => TransportError::Failed(format!("authentication of user '{user}' failed: {other}")),
    }
}

/// RSA signatures use rsa-sha2-512/256, never SHA-1 `ssh-rsa`; asked once per connection.
async fn rsa_hash_for(
    handle: &Handle<Verifier>,
    cache: &mut Option<Option<HashAlg>>,
) -> Option<HashAlg> {
    if let Some(hash) = cache {
        return *hash;
    }
    let hash = match handle.best_supported_rsa_hash().await {
        Ok(Some(Some(hash))) => Some(hash),
        // Server did not say (or only listed ssh-rsa): SHA-256 is the safe choice.
        _ => Some(HashAlg::Sha256),
    };
    *cache = Some(hash);
    hash
}

/// Decrypted keys of this process, by path, with the file's modification time.
type KeyCache = tokio::sync::Mutex<HashMap<PathBuf, (Option<SystemTime>, Arc<PrivateKey>)>>;

fn key_cache() -> &'static KeyCache {
    static CACHE: OnceLock<KeyCache> = OnceLock::new();
    CACHE.get_or_init(|| tokio::sync::Mutex::new(HashMap::new()))
}

/// Loads (and decrypts) a private key once per process. Err is a message for
/// the report, naming the file and, for encrypted keys, the fix.
async fn load_private_key(path: &Path, passphrase: &Passphrase) -> Result<Arc<PrivateKey>, String> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    // Held while loading, so hosts connecting together decrypt a key only once.
    let mut cache = key_cache().lock().await;
    if let Some((when, key)) = cache.get(path) {
        if *when == modified {
            return Ok(Arc::clone(key));
        }
    }
    let owned_path = path.to_path_buf();
    let passphrase = passphrase.clone();
    let loaded = tokio::task::spawn_blocking(move || decode_private_key(&owned_path, &passphrase))
        .await
        .map_err(|e| format!("loading {} failed: {e}", path.display()))??;
    let key = Arc::new(loaded);
    cache.insert(path.to_path_buf(), (modified, Arc::clone(&key)));
    Ok(key)
}

fn decode_private_key(path: &Path, passphrase: &Passphrase) -> Result<PrivateKey, String> {
    let shown = path.display();
    // Read bounded (an identity file pointing at /dev/zero must not exhaust
    // memory), then decoded by russh.
    let text = crate::diag::read_secret(path)
        .map_err(|e| format!("cannot load private key {shown}: {e}"))?;
    match russh::keys::decode_secret_key(&text, None) {
        Ok(key) => Ok(key),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            let (secret, source) = match passphrase {
                Passphrase::None => {
                    return Err(format!(
                        "{shown} is encrypted: set passphrase_env or passphrase_file so fleetsweep can decrypt it"
                    ));
                }
                Passphrase::Env(var) => match std::env::var(var) {
                    Ok(value) => (value, format!("${var}")),
                    Err(_) => {
                        return Err(format!(
                            "{shown} is encrypted but the passphrase_env variable ${var} is not set"
                        ));
                    }
                },
                Passphrase::File(file) => match crate::diag::read_secret(file) {
                    Ok(text) => (
                        text.lines().next().unwrap_or_default().to_string(),
                        file.display().to_string(),
                    ),
                    Err(e) => {
                        return Err(format!(
                            "{shown} is encrypted but the passphrase_file {} cannot be read: {e}",
                            file.display()
                        ));
                    }
                },
            };
            russh::keys::decode_secret_key(&text, Some(&secret)).map_err(|e| {
                format!("cannot decrypt {shown} with the passphrase from {source}: {e}")
            })
        }
        Err(e) => Err(format!("cannot load private key {shown}: {e}")),
    }
}

/// `user@host:port`, the way hops are named in messages.
fn label(hop: &SshEndpoint) -> String {
    format!("{}@{}", hop.user, host_port_label(&hop.address, hop.port))
}

fn host_port_label(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn describe_chain(jumps: &[SshEndpoint]) -> String {
    match jumps {
        [] => String::new(),
        [one] => format!("via bastion {}", label(one)),
        many => format!(
            "via bastions {}",
            many.iter().map(label).collect::<Vec<_>>().join(" -> ")
        ),
    }
}

fn map_message(e: TransportError, f: impl FnOnce(&str) -> String) -> TransportError {
    match e {
        TransportError::Unreachable(m) => TransportError::Unreachable(f(&m)),
        TransportError::AuthFailed(m) => TransportError::AuthFailed(f(&m)),
        TransportError::HostKeyRejected(m) => TransportError::HostKeyRejected(f(&m)),
        TransportError::TimedOut(m) => TransportError::TimedOut(f(&m)),
        TransportError::Failed(m) => TransportError::Failed(f(&m)),
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kex_prefers_curve25519_and_keeps_the_rest() {
        let config = client_config(&HostKeyPreferences::default());
        assert_eq!(config.preferred.kex.first(), Some(&kex::CURVE25519));
        assert!(config.preferred.kex.contains(&kex::MLKEM768X25519_SHA256));
        assert!(config.preferred.host_key_certificates.is_empty());
        assert!(config.nodelay);
        assert_eq!(config.channel_buffer_size, CHANNEL_BUFFER_MESSAGES);
    }

    #[test]
    fn hosts_with_the_same_preferences_share_one_configuration() {
        let rsa = HostKeyPreferences {
            known_algorithms: vec![Algorithm::Rsa { hash: None }],
            certificate_authority: false,
        };
        let a = shared_config(rsa.clone());
        let b = shared_config(rsa.clone());
        assert!(Arc::ptr_eq(&a, &b));
        let other = shared_config(HostKeyPreferences {
            certificate_authority: true,
            ..rsa
        });
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(
            other.preferred.host_key_certificates.first(),
            Some(&Algorithm::Ed25519)
        );
        assert!(a.preferred.host_key_certificates.is_empty());
    }

    #[test]
    fn known_host_key_algorithms_come_first() {
        let prefs = HostKeyPreferences {
            known_algorithms: vec![Algorithm::Rsa { hash: None }],
            certificate_authority: true,
        };
        let config = client_config(&prefs);
        assert_eq!(
            config.preferred.key.first(),
            Some(&Algorithm::Rsa {
                hash: Some(HashAlg::Sha512)
            })
        );
        assert_eq!(
            config.preferred.host_key_certificates.first(),
            Some(&Algorithm::Ed25519)
        );
    }

    #[test]
    fn only_a_close_or_reset_in_start_up_is_retried() {
        use std::io::{Error as IoError, ErrorKind};
        for busy in [
            russh::Error::Disconnect,
            russh::Error::HUP,
            russh::Error::IO(IoError::from(ErrorKind::ConnectionReset)),
            russh::Error::IO(IoError::from(ErrorKind::UnexpectedEof)),
            russh::Error::IO(IoError::from(ErrorKind::BrokenPipe)),
            russh::Error::IO(IoError::from(ErrorKind::ConnectionAborted)),
        ] {
            assert!(is_busy_refusal(&busy), "{busy:?} is what a busy sshd does");
        }
        for fatal in [
            // Not an SSH server, or a protocol we cannot speak: retrying changes nothing.
            russh::Error::Version,
            russh::Error::NoCommonAlgo {
                kind: russh::AlgorithmKind::Kex,
                ours: vec![],
                theirs: vec![],
            },
            russh::Error::IO(IoError::from(ErrorKind::PermissionDenied)),
            russh::Error::ChannelOpenFailure(ChannelOpenFailure::ConnectFailed),
        ] {
            assert!(!is_busy_refusal(&fatal), "{fatal:?} is not retried");
        }
        assert_eq!(
            busy_reason(&russh::Error::Disconnect),
            "connection closed by the server before authentication"
        );
    }

    #[test]
    fn only_a_resource_shortage_asks_for_another_bastion_connection() {
        assert!(is_capacity_refusal(&russh::Error::ChannelOpenFailure(
            ChannelOpenFailure::ResourceShortage
        )));
        for other in [
            ChannelOpenFailure::AdministrativelyProhibited,
            ChannelOpenFailure::ConnectFailed,
            ChannelOpenFailure::UnknownChannelType,
        ] {
            assert!(!is_capacity_refusal(&russh::Error::ChannelOpenFailure(
                other
            )));
        }
    }

    #[test]
    fn retries_stop_short_of_the_host_deadline() {
        let pause = Duration::from_millis(500);
        assert!(fits(pause, None));
        assert!(fits(pause, Some(Instant::now() + Duration::from_secs(10))));
        assert!(!fits(
            pause,
            Some(Instant::now() + Duration::from_millis(1200))
        ));
    }

    #[test]
    fn labels() {
        let hop = SshEndpoint {
            address: "::1".into(),
            port: 2222,
            user: "root".into(),
            identity_files: Arc::from([]),
        };
        assert_eq!(label(&hop), "root@[::1]:2222");
        assert_eq!(seconds(Duration::from_secs(5)), "5s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5s");
    }
}
