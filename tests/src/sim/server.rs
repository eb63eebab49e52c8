//! The simulator's SSH server (russh's server side).
//!
//! Cheap per connection, so that it does not dominate the machine the sweep is
//! measured on: one wildcard listener (the accepted socket's local address
//! names the host), one task per connection, a host key derived from the
//! fleet's seed when the connection arrives, and a probe answered from a
//! compiled-in recording with the run's nonce spliced in. No process, no shell,
//! no file is touched per host.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use russh::keys::PublicKey;
use russh::server::{Auth, Msg, PublicKeyOffer, Session, VerifiedPublicKey};
use russh::{Channel, ChannelId, ChannelMsg, MethodKind, MethodSet};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::fixtures::{input_complete, nonce_of, Fixture};
use super::keys::{client_key, host_key};
use super::netns::Netns;
use super::{index_of, Behaviour, Profile, SimHost, SimSpec};

/// A probe's standard input is a nonce, a few roots and `.`: more is not kept.
const MAX_STDIN: usize = 64 * 1024;

/// What the server has seen so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections to an address of a simulated host.
    pub accepted: u64,
    /// Connections reset on purpose (hosts with [`Behaviour::Reset`]).
    pub reset: u64,
    /// Connections closed before the banner: over `max_startups`.
    pub refused: u64,
    /// Sessions that authenticated with the client key.
    pub authenticated: u64,
    /// Probe runs answered.
    pub probes: u64,
    /// Connections to an address that is no host of the fleet (closed).
    pub unknown: u64,
    /// Of `authenticated`, the sessions run inside a bastion's `direct-tcpip`
    /// channel ([`SimSpec::bastion`]); the others came over TCP.
    pub tunnelled: u64,
    /// `direct-tcpip` channels the bastion accepted.
    pub tunnels: u64,
    /// Of `tunnels`, those the client closed before the bastion did. A client
    /// done with a channel should send EOF and let the bastion close it (as
    /// `ssh -J` does); russh forgets a channel it closed first only when its
    /// connection ends.
    pub tunnels_closed_by_client: u64,
}

/// The live counters behind [`Stats`].
#[derive(Default)]
pub struct Counters {
    accepted: AtomicU64,
    reset: AtomicU64,
    refused: AtomicU64,
    authenticated: AtomicU64,
    probes: AtomicU64,
    unknown: AtomicU64,
    tunnelled: AtomicU64,
    tunnels: AtomicU64,
    tunnels_closed_by_client: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            accepted: get(&self.accepted),
            reset: get(&self.reset),
            refused: get(&self.refused),
            authenticated: get(&self.authenticated),
            probes: get(&self.probes),
            unknown: get(&self.unknown),
            tunnelled: get(&self.tunnelled),
            tunnels: get(&self.tunnels),
            tunnels_closed_by_client: get(&self.tunnels_closed_by_client),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A server running on a thread of its own inside a [`Netns`]; dropping it
/// stops it.
pub struct Server {
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<Result<()>>>>,
}

impl Server {
    /// Starts serving `spec` inside `netns` with `workers` runtime threads;
    /// returns once the listener is bound.
    pub fn start_in(netns: &Netns, spec: SimSpec, workers: usize) -> Result<Server> {
        let counters = Arc::new(Counters::default());
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let c = counters.clone();
        let thread = netns.spawn(move || run(spec, workers, c, stop_rx, ready_tx))?;
        let mut server = Server {
            counters,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        match ready_rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => Ok(server),
            Ok(Err(e)) => Err(e),
            Err(_) => {
                // The thread ended before it was ready: its error says why.
                let ended = server.thread.take().map(|t| t.join());
                Err(match ended {
                    Some(Ok(Err(e))) | Some(Ok(Ok(Err(e)))) => e,
                    _ => anyhow!("the simulator did not start within 60s"),
                })
            }
        }
    }

    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves `spec` on `0.0.0.0:PORT` of the calling thread's network namespace
/// until `stop` fires (or its sender is dropped). Sends the bind's result on
/// `ready` first. The caller makes sure the namespace is the simulator's own.
pub fn run(
    spec: SimSpec,
    workers: usize,
    counters: Arc<Counters>,
    stop: oneshot::Receiver<()>,
    ready: std::sync::mpsc::Sender<Result<()>>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers.max(1))
        .thread_name("fleetsim-worker")
        .enable_all()
        .build()
        .context("starting the simulator's runtime")?;
    runtime.block_on(async move {
        let listener = match listen(spec.port) {
            Ok(l) => {
                let _ = ready.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = ready.send(Err(anyhow!("{e:#}")));
                return Err(e);
            }
        };
        let shared = Arc::new(Shared {
            client: client_key(spec.seed).public_key().clone(),
            startups: Mutex::new(HashMap::new()),
            spec,
            counters,
        });
        let mut stop = stop;
        loop {
            tokio::select! {
                _ = &mut stop => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => accept(&shared, stream),
                    // Out of file descriptors and the like: a pause, not the end.
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                },
            }
        }
    })
}

fn listen(port: u16) -> Result<tokio::net::TcpListener> {
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("binding {addr} in the simulator's namespace"))?;
    // A sweep dials hundreds of hosts at once; sshd's default backlog is 128 each.
    Ok(socket.listen(8192)?)
}

/// What every connection shares.
struct Shared {
    spec: SimSpec,
    /// The scanner's key: the one key publickey auth accepts.
    client: PublicKey,
    /// Unauthenticated connections per host index, for `max_startups`.
    startups: Mutex<HashMap<usize, usize>>,
    counters: Arc<Counters>,
}

/// One unauthenticated connection of a host, counted until auth succeeds or
/// the connection ends.
struct Startup {
    shared: Arc<Shared>,
    index: usize,
}

impl Startup {
    fn enter(shared: &Arc<Shared>, index: usize) -> Option<Startup> {
        let max = shared.spec.max_startups;
        if max == 0 {
            return None;
        }
        let mut map = shared
            .startups
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(index).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Startup {
            shared: shared.clone(),
            index,
        })
    }
}

impl Drop for Startup {
    fn drop(&mut self) {
        let mut map = self
            .shared
            .startups
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.index) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.index);
            }
        }
    }
}

fn accept(shared: &Arc<Shared>, stream: TcpStream) {
    let index = match stream.local_addr() {
        Ok(SocketAddr::V4(local)) => index_of(*local.ip()).filter(|i| *i < shared.spec.hosts),
        _ => None,
    };
    let Some(index) = index else {
        bump(&shared.counters.unknown);
        return;
    };
    bump(&shared.counters.accepted);
    let host = shared.spec.host(index);
    if host.behaviour == Behaviour::Reset {
        bump(&shared.counters.reset);
        tokio::spawn(async move {
            // Once the client's banner is in (so its connect(2) has surely
            // completed), SO_LINGER 0 makes close(2) send RST instead of FIN:
            // OpenSSH prints "kex_exchange_identification: read: Connection
            // reset by peer", as behind a TCP wrapper that refuses the client.
            let mut stream = stream;
            let mut first = [0u8; 1];
            let read = tokio::io::AsyncReadExt::read(&mut stream, &mut first);
            let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
            let _ = stream.set_zero_linger();
        });
        return;
    }
    let startup = if shared.spec.max_startups > 0 {
        match Startup::enter(shared, index) {
            Some(s) => Some(s),
            None => {
                // sshd over MaxStartups closes the connection before its banner.
                bump(&shared.counters.refused);
                return;
            }
        }
    } else {
        None
    };
    let _ = stream.set_nodelay(true);
    let shared = shared.clone();
    tokio::spawn(async move {
        let stream = SimStream::new(stream, Duration::from_millis(shared.spec.latency_ms));
        serve(shared, index, host, startup, false, stream).await;
    });
}

/// Host `index`'s SSH server side over `stream`: a TCP connection, or a
/// bastion's `direct-tcpip` channel (`tunnelled`).
async fn serve<S>(
    shared: Arc<Shared>,
    index: usize,
    host: SimHost,
    startup: Option<Startup>,
    tunnelled: bool,
    stream: S,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = russh::server::Config {
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key(shared.spec.seed, index)],
        inactivity_timeout: Some(Duration::from_secs(300)),
        ..Default::default()
    };
    let handler = SimHandler {
        index,
        host,
        startup,
        shared,
        tunnelled,
        tunnels: std::collections::HashSet::new(),
    };
    if let Ok(session) = russh::server::run_stream(Arc::new(config), stream, handler).await {
        let _ = session.await;
    }
}

/// One connection's side of the protocol.
struct SimHandler {
    index: usize,
    host: SimHost,
    startup: Option<Startup>,
    shared: Arc<Shared>,
    /// This session runs inside a bastion's channel.
    tunnelled: bool,
    /// The `direct-tcpip` channels open on this (bastion) connection.
    tunnels: std::collections::HashSet<ChannelId>,
}

impl SimHandler {
    fn is_client(&self, key: &PublicKey) -> bool {
        key.key_data() == self.shared.client.key_data()
    }
}

impl russh::server::Handler for SimHandler {
    type Error = russh::Error;

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        Ok(if self.is_client(offer.public_key) {
            Auth::Accept
        } else {
            Auth::reject()
        })
    }

    async fn auth_publickey(
        &mut self,
        _user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        if !self.is_client(key.public_key) {
            return Ok(Auth::reject());
        }
        bump(&self.shared.counters.authenticated);
        if self.tunnelled {
            bump(&self.shared.counters.tunnelled);
        }
        self.startup = None;
        Ok(Auth::Accept)
    }

    /// The bastion ([`SimSpec::bastion`], first host, over TCP): a channel to
    /// a simulated host's address and port carries that host's SSH. Any other
    /// destination, or no bastion, is refused (the handle dropped).
    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        let spec = &self.shared.spec;
        if !spec.bastion || self.index != 0 || self.tunnelled {
            return Ok(());
        }
        let index = host_to_connect
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .and_then(index_of)
            .filter(|i| *i < spec.hosts && u32::from(spec.port) == port_to_connect);
        let Some(index) = index else {
            bump(&self.shared.counters.unknown);
            return Ok(());
        };
        reply.accept().await;
        bump(&self.shared.counters.tunnels);
        self.tunnels.insert(channel.id());
        let host = spec.host(index);
        let shared = self.shared.clone();
        tokio::spawn(async move {
            if host.behaviour == Behaviour::Reset {
                // The host behind refuses: the channel closes at once.
                bump(&shared.counters.reset);
                let _ = channel.close().await;
                return;
            }
            serve(shared, index, host, None, true, channel.into_stream()).await;
        });
        Ok(())
    }

    /// The client closed a channel. russh calls this only for a channel the
    /// server has not closed yet (the client's answer to our close is not
    /// passed on), so on the bastion it counts the channels the client
    /// closed first.
    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.tunnels.remove(&channel) {
            bump(&self.shared.counters.tunnels_closed_by_client);
        }
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: russh::server::ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        reply.accept().await;
        let slow = (self.host.behaviour == Behaviour::Slow)
            .then(|| Duration::from_millis(self.shared.spec.slow_ms));
        let profile = self.host.profile;
        let shared = self.shared.clone();
        tokio::spawn(run_command(channel, profile, slow, shared));
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The command itself reaches the channel's task (ChannelMsg::Exec).
        session.channel_success(channel)?;
        Ok(())
    }
}

fn fixture(profile: Profile) -> &'static Fixture {
    static ALL: OnceLock<[Fixture; 3]> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        [
            Fixture::of(Profile::Clean),
            Fixture::of(Profile::Kesl),
            Fixture::of(Profile::Large),
        ]
    });
    match profile {
        Profile::Clean => &all[0],
        Profile::Kesl => &all[1],
        Profile::Large => &all[2],
    }
}

/// The fleetsweep Linux probe: `/bin/sh -c` of a script framed by `@@fleetsweep` markers.
fn is_probe(command: &[u8]) -> bool {
    let sh = [
        &b"exec /bin/sh -c "[..],
        b"/bin/sh -c ",
        b"sudo -n /bin/sh -c ",
    ];
    sh.iter().any(|p| command.starts_with(p)) && command.windows(12).any(|w| w == b"@@fleetsweep")
}

/// Standard output, standard error and exit status of one command.
fn respond(command: &[u8], stdin: &[u8], profile: Profile) -> (Vec<u8>, Vec<u8>, u32) {
    if !is_probe(command) {
        return (
            Vec::new(),
            b"fleetsim: only the fleetsweep Linux probe is simulated\n".to_vec(),
            127,
        );
    }
    match nonce_of(stdin) {
        Some(nonce) => (fixture(profile).render(nonce), Vec::new(), 0),
        // The real script prints nothing for a nonce it does not accept.
        None => (Vec::new(), Vec::new(), 2),
    }
}

/// Runs one session channel: collects the command and its input, answers.
async fn run_command(
    mut channel: Channel<Msg>,
    profile: Profile,
    slow: Option<Duration>,
    shared: Arc<Shared>,
) {
    let mut command: Option<Vec<u8>> = None;
    let mut stdin = Vec::new();
    loop {
        match channel.wait().await {
            None | Some(ChannelMsg::Close) => return,
            Some(ChannelMsg::Exec { command: c, .. }) => command = Some(c),
            Some(ChannelMsg::Data { data }) => {
                if stdin.len() + data.len() <= MAX_STDIN {
                    stdin.extend_from_slice(&data);
                }
            }
            Some(ChannelMsg::Eof) => break,
            Some(_) => {}
        }
        if command.is_some() && input_complete(&stdin) {
            break;
        }
    }
    let Some(command) = command else {
        let _ = channel.close().await;
        return;
    };
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    let (out, err, code) = respond(&command, &stdin, profile);
    if code == 0 {
        bump(&shared.counters.probes);
    }
    if !out.is_empty() && channel.data_bytes(out).await.is_err() {
        return;
    }
    if !err.is_empty() {
        let _ = channel.extended_data_bytes(1, err).await;
    }
    let _ = channel.exit_status(code).await;
    let _ = channel.eof().await;
    let _ = channel.close().await;
}

/// The accepted socket, with every server-to-client write held back by the
/// fleet's round-trip time when it has one (requests go through at once, so
/// each request-response exchange takes one RTT more, as over a WAN).
enum SimStream {
    Plain(TcpStream),
    Delayed {
        read: OwnedReadHalf,
        /// To the task that writes each buffer once its time has come; None after shutdown.
        write: Option<mpsc::UnboundedSender<(Instant, Vec<u8>)>>,
        rtt: Duration,
    },
}

impl SimStream {
    fn new(stream: TcpStream, rtt: Duration) -> SimStream {
        if rtt.is_zero() {
            return SimStream::Plain(stream);
        }
        let (read, mut write_half) = stream.into_split();
        let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
        tokio::spawn(async move {
            while let Some((due, buf)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                if write_half.write_all(&buf).await.is_err() {
                    return;
                }
            }
            let _ = write_half.shutdown().await;
        });
        SimStream::Delayed {
            read,
            write: Some(tx),
            rtt,
        }
    }
}

impl AsyncRead for SimStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SimStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            SimStream::Delayed { read, .. } => Pin::new(read).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for SimStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            SimStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            SimStream::Delayed { write, rtt, .. } => {
                let sent = write
                    .as_ref()
                    .is_some_and(|w| w.send((Instant::now() + *rtt, buf.to_vec())).is_ok());
                Poll::Ready(if sent {
                    Ok(buf.len())
                } else {
                    Err(std::io::ErrorKind::BrokenPipe.into())
                })
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SimStream::Plain(s) => Pin::new(s).poll_flush(cx),
            SimStream::Delayed { .. } => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            SimStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            SimStream::Delayed { write, .. } => {
                // The writer task sends what is queued, then FIN.
                *write = None;
                Poll::Ready(Ok(()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_probe_is_answered() {
        let probe = b"exec /bin/sh -c 'LC_ALL=C; printf \"@@fleetsweep:%s:begin\"'";
        let (out, err, code) = respond(probe, b"abc\n.\n", Profile::Kesl);
        assert_eq!(code, 0);
        assert!(err.is_empty());
        assert!(String::from_utf8_lossy(&out).contains("@@fleetsweep:abc:done"));
        let sudo = b"sudo -n /bin/sh -c '@@fleetsweep'";
        assert_eq!(respond(sudo, b"abc\n.\n", Profile::Clean).2, 0);
        let (out, _, code) = respond(b"uname -a", b"", Profile::Clean);
        assert!(out.is_empty() && code == 127);
        let (out, _, code) = respond(probe, b"not a nonce\n.\n", Profile::Clean);
        assert!(out.is_empty() && code == 2);
    }
}
