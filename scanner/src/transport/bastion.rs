//! Bastion connections shared by the hosts of one sweep.
//!
//! Without sharing, N hosts behind a bastion cost it N TCP connections, N key
//! exchanges and N logins, and a bastion with OpenSSH's default `MaxStartups`
//! drops what is past its limit. Here one authenticated connection per bastion
//! chain carries every target behind it as a `direct-tcpip` channel, for the
//! duration of a sweep: logins on the bastion are the pool's size, not the
//! number of hosts.
//!
//! - A chain is keyed by its hops, each with what makes two connections to it
//!   differ (address, port, user, keys, passphrase source, agent use): hosts
//!   that reach a bastion differently never share a login.
//! - A two-hop chain shares its second hop too: the pool of `[b1, b2]` holds
//!   connections to `b2`, each inside a channel of a `[b1]` connection.
//! - A connection carries at most [`CHANNELS_PER_CONNECTION`] channels; past
//!   that, or when the bastion refuses a channel for lack of resources,
//!   another connection is opened beside it.
//! - Each bastion has a cap on channel opens + handshakes through it in
//!   flight (`bastion_max_handshakes:`), so a sweep's start does not land on
//!   it all at once.
//! - A connection that dies is dropped; the next host opens one replacement.
//!   When opening fails, the chain remembers the error and every later host
//!   behind it gets it at once: a bastion that went away is not hammered.
//!
//! The pool is generic over the connection type so that the protocol crate
//! stays named in `ssh` alone, and the choices here are tested without a
//! server.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Passphrase, SshEndpoint, SshSettings, TransportError};

/// Channels one bastion connection carries at once. OpenSSH's sshd has no
/// per-connection cap on `direct-tcpip` channels (`MaxSessions`, default 10,
/// counts shell/exec/subsystem sessions only; its channel table stops at
/// 16384), but one connection is one sshd process and one TCP stream: a
/// modest number of targets per connection keeps that process and stream
/// from being every host's bottleneck, and a lost connection from failing
/// more hosts than it must.
pub const CHANNELS_PER_CONNECTION: usize = 64;

/// Channel opens + handshakes in flight through one bastion, unless the
/// inventory says otherwise (`bastion_max_handshakes:`).
pub const DEFAULT_BASTION_MAX_HANDSHAKES: usize = 16;

/// What the pool needs to know of a connection.
pub trait Connection: Send + Sync + 'static {
    /// The connection is gone (the bastion hung up, the network broke).
    fn is_closed(&self) -> bool;
}

/// One hop, as far as sharing a connection to it goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HopKey {
    address: String,
    port: u16,
    user: String,
    identity_files: Arc<[PathBuf]>,
    passphrase: PassphraseKey,
    use_agent: bool,
}

/// [`Passphrase`] as part of a key (where it comes from, never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PassphraseKey {
    None,
    Env(String),
    File(PathBuf),
}

impl HopKey {
    pub fn new(hop: &SshEndpoint, settings: &SshSettings) -> HopKey {
        HopKey {
            address: hop.address.to_string(),
            port: hop.port,
            user: hop.user.to_string(),
            identity_files: hop.identity_files.clone(),
            passphrase: match &settings.passphrase {
                Passphrase::None => PassphraseKey::None,
                Passphrase::Env(v) => PassphraseKey::Env(v.clone()),
                Passphrase::File(f) => PassphraseKey::File(f.clone()),
            },
            use_agent: settings.use_agent,
        }
    }
}

/// A chain of bastions, first hop first. Its parent is the chain one hop shorter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChainKey(Vec<HopKey>);

impl ChainKey {
    pub fn new(jumps: &[SshEndpoint], settings: &SshSettings) -> ChainKey {
        ChainKey(jumps.iter().map(|h| HopKey::new(h, settings)).collect())
    }

    /// The chain without its last hop; None for a single bastion.
    pub fn parent(&self) -> Option<ChainKey> {
        match self.0.len() {
            0 | 1 => None,
            n => Some(ChainKey(self.0[..n - 1].to_vec())),
        }
    }

    pub fn hops(&self) -> usize {
        self.0.len()
    }
}

/// Where a connection in start-up goes: the chain it goes through (None:
/// directly) and the address and port as that chain's last hop sees them.
pub type Destination = (Option<ChainKey>, String, u16);

/// The bastion connections of one sweep.
pub struct Pool<C> {
    chains: Mutex<HashMap<ChainKey, Arc<Chain<C>>>>,
    channels_per_connection: usize,
}

impl<C: Connection> Default for Pool<C> {
    fn default() -> Self {
        Pool::new(CHANNELS_PER_CONNECTION)
    }
}

impl<C: Connection> Pool<C> {
    pub fn new(channels_per_connection: usize) -> Pool<C> {
        Pool {
            chains: Mutex::new(HashMap::new()),
            channels_per_connection: channels_per_connection.max(1),
        }
    }

    /// The chain for `key`, created on first use with `max_handshakes` (the
    /// first host behind a bastion sets its cap).
    pub fn chain(&self, key: &ChainKey, label: &str, max_handshakes: usize) -> Arc<Chain<C>> {
        let mut chains = self
            .chains
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(chains.entry(key.clone()).or_insert_with(|| {
            Arc::new(Chain {
                label: label.to_string(),
                state: tokio::sync::Mutex::new(ChainState::default()),
                handshakes: Arc::new(Semaphore::new(max_handshakes.max(1))),
                cap: self.channels_per_connection,
            })
        }))
    }

    /// Every connection of the sweep, innermost chains first (a second hop
    /// lives inside a channel of the first), and forgets them.
    pub fn drain(&self) -> Vec<Arc<Pooled<C>>> {
        let mut chains: Vec<(ChainKey, Arc<Chain<C>>)> = self
            .chains
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .collect();
        chains.sort_by_key(|(k, _)| std::cmp::Reverse(k.hops()));
        let mut all = Vec::new();
        for (_, chain) in chains {
            if let Ok(mut state) = chain.state.try_lock() {
                all.append(&mut state.conns);
            }
        }
        all
    }
}

/// The connections to one bastion chain.
pub struct Chain<C> {
    /// `user@host:port` of the chain's last hop, for messages.
    label: String,
    /// Held while picking or opening a connection, so hosts arriving together
    /// wait for one login instead of each starting its own.
    state: tokio::sync::Mutex<ChainState<C>>,
    /// Channel opens + handshakes through this bastion in flight.
    handshakes: Arc<Semaphore>,
    cap: usize,
}

struct ChainState<C> {
    conns: Vec<Arc<Pooled<C>>>,
    /// Why the last connection could not be opened: given to every later host.
    failed: Option<TransportError>,
    /// Connections that died during the sweep.
    lost: usize,
}

impl<C> Default for ChainState<C> {
    fn default() -> Self {
        ChainState {
            conns: Vec::new(),
            failed: None,
            lost: 0,
        }
    }
}

/// A connection and how many hosts use it.
pub struct Pooled<C> {
    conn: C,
    /// Channels leased (targets, or second hops inside it).
    active: AtomicUsize,
    /// The bastion refused a channel for lack of resources: no new leases.
    full: AtomicBool,
    /// `user@host:port` of the bastion, for messages.
    label: String,
    /// The lease on the outer connection this one runs inside (two hops).
    parent: Option<Lease<C>>,
}

impl<C> Pooled<C> {
    pub fn conn(&self) -> &C {
        &self.conn
    }
}

/// The right of one host (or one inner connection) to a channel on a pooled
/// connection. Dropping it frees the slot.
pub struct Lease<C> {
    pooled: Arc<Pooled<C>>,
    handshakes: Arc<Semaphore>,
}

impl<C> Drop for Lease<C> {
    fn drop(&mut self) {
        self.pooled.active.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<C: Connection> Lease<C> {
    pub fn conn(&self) -> &C {
        &self.pooled.conn
    }

    /// The bastion refused a channel for lack of resources: later hosts get
    /// another connection.
    pub fn mark_full(&self) {
        self.pooled.full.store(true, Ordering::Release);
    }

    /// Waits for a handshake slot on this bastion.
    pub async fn handshake_slot(&self) -> Option<OwnedSemaphorePermit> {
        Arc::clone(&self.handshakes).acquire_owned().await.ok()
    }

    /// The first bastion of this lease's chain (outermost first) whose
    /// connection is gone, by its label.
    pub fn lost_bastion(&self) -> Option<String> {
        let mut lost = None;
        let mut at = Some(self);
        while let Some(lease) = at {
            if lease.pooled.conn.is_closed() {
                lost = Some(lease.pooled.label.clone());
            }
            at = lease.pooled.parent.as_ref();
        }
        lost
    }
}

/// What to do for a host that wants a channel on a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Use the connection at this index.
    Use(usize),
    /// Every connection is at its cap (or full): open another.
    Open,
}

/// Chooses the connection with the most room, so the load spreads and a
/// newly opened connection takes the next hosts. `(active, full)` per live
/// connection.
pub fn pick(conns: &[(usize, bool)], cap: usize) -> Pick {
    conns
        .iter()
        .enumerate()
        .filter(|(_, (active, full))| !full && *active < cap)
        .min_by_key(|(_, (active, _))| *active)
        .map_or(Pick::Open, |(i, _)| Pick::Use(i))
}

/// The chain locked for one host: take a lease, or open a connection.
pub struct ChainGuard<'a, C> {
    chain: &'a Chain<C>,
    state: tokio::sync::MutexGuard<'a, ChainState<C>>,
}

impl<C: Connection> Chain<C> {
    pub fn label(&self) -> &str {
        &self.label
    }

    pub async fn lock(&self) -> ChainGuard<'_, C> {
        ChainGuard {
            chain: self,
            state: self.state.lock().await,
        }
    }
}

impl<C: Connection> ChainGuard<'_, C> {
    /// A lease on a live connection with room, None when one must be opened,
    /// or the error that made the last opening fail.
    pub fn lease(&mut self) -> Result<Option<Lease<C>>, TransportError> {
        let before = self.state.conns.len();
        self.state.conns.retain(|c| !c.conn.is_closed());
        let lost = before - self.state.conns.len();
        if lost > 0 {
            self.state.lost += lost;
            tracing::warn!(bastion = %self.chain.label, lost, "bastion connection lost; the next host opens a replacement");
        }
        if let Some(e) = &self.state.failed {
            return Err(e.clone());
        }
        let load: Vec<(usize, bool)> = self
            .state
            .conns
            .iter()
            .map(|c| {
                (
                    c.active.load(Ordering::Acquire),
                    c.full.load(Ordering::Acquire),
                )
            })
            .collect();
        Ok(match pick(&load, self.chain.cap) {
            Pick::Use(i) => Some(self.lease_on(Arc::clone(&self.state.conns[i]))),
            Pick::Open => None,
        })
    }

    /// Connections of this chain that died during the sweep.
    pub fn lost(&self) -> usize {
        self.state.lost
    }

    /// Adds a newly opened connection and leases it.
    pub fn add(&mut self, conn: C, parent: Option<Lease<C>>) -> Lease<C> {
        let pooled = Arc::new(Pooled {
            conn,
            active: AtomicUsize::new(0),
            full: AtomicBool::new(false),
            label: self.chain.label.clone(),
            parent,
        });
        self.state.conns.push(Arc::clone(&pooled));
        tracing::debug!(bastion = %self.chain.label, connections = self.state.conns.len(), "bastion connection opened");
        self.lease_on(pooled)
    }

    /// Opening failed: every later host behind this chain gets `error`.
    pub fn fail(&mut self, error: TransportError) {
        self.state.failed = Some(error);
    }

    fn lease_on(&self, pooled: Arc<Pooled<C>>) -> Lease<C> {
        pooled.active.fetch_add(1, Ordering::AcqRel);
        Lease {
            pooled,
            handshakes: Arc::clone(&self.chain.handshakes),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::Duration;

    struct Fake(Arc<AtomicBool>);
    impl Connection for Fake {
        fn is_closed(&self) -> bool {
            self.0.load(Ordering::Acquire)
        }
    }

    fn fake() -> (Fake, Arc<AtomicBool>) {
        let closed = Arc::new(AtomicBool::new(false));
        (Fake(Arc::clone(&closed)), closed)
    }

    fn hop(address: &str, user: &str, key: &str) -> SshEndpoint {
        SshEndpoint {
            address: address.into(),
            port: 22,
            user: user.into(),
            identity_files: vec![PathBuf::from(key)].into(),
        }
    }

    fn settings() -> SshSettings {
        SshSettings {
            known_hosts: vec![],
            accept_new_host_keys: None,
            use_agent: false,
            passphrase: Passphrase::None,
            connect_timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn hops_that_log_in_differently_never_share_a_connection() {
        let s = settings();
        let base = ChainKey::new(&[hop("b1", "scan", "/k1")], &s);
        assert_eq!(base, ChainKey::new(&[hop("b1", "scan", "/k1")], &s));
        for other in [
            hop("b2", "scan", "/k1"),
            hop("b1", "root", "/k1"),
            hop("b1", "scan", "/k2"),
        ] {
            assert_ne!(base, ChainKey::new(&[other], &s));
        }
        let mut port = hop("b1", "scan", "/k1");
        port.port = 2222;
        assert_ne!(base, ChainKey::new(&[port], &s));
        let agent = SshSettings {
            use_agent: true,
            ..settings()
        };
        assert_ne!(base, ChainKey::new(&[hop("b1", "scan", "/k1")], &agent));
        let pass = SshSettings {
            passphrase: Passphrase::Env("KEY_PASS".into()),
            ..settings()
        };
        assert_ne!(base, ChainKey::new(&[hop("b1", "scan", "/k1")], &pass));
    }

    #[test]
    fn a_two_hop_chain_has_the_first_hop_as_parent() {
        let s = settings();
        let two = ChainKey::new(&[hop("b1", "u", "/k"), hop("b2", "u", "/k")], &s);
        assert_eq!(two.hops(), 2);
        assert_eq!(
            two.parent(),
            Some(ChainKey::new(&[hop("b1", "u", "/k")], &s))
        );
        assert_eq!(two.parent().and_then(|p| p.parent()), None);
        // The same inner bastion behind another first hop is another chain.
        let other = ChainKey::new(&[hop("b9", "u", "/k"), hop("b2", "u", "/k")], &s);
        assert_ne!(two, other);
    }

    #[test]
    fn picks_the_least_loaded_connection_with_room() {
        assert_eq!(pick(&[], 64), Pick::Open);
        assert_eq!(pick(&[(3, false), (1, false)], 64), Pick::Use(1));
        assert_eq!(pick(&[(64, false), (63, false)], 64), Pick::Use(1));
        assert_eq!(pick(&[(64, false), (64, false)], 64), Pick::Open);
        // A connection the bastion said is full takes no more, however idle.
        assert_eq!(pick(&[(0, true), (10, false)], 64), Pick::Use(1));
        assert_eq!(pick(&[(0, true)], 64), Pick::Open);
    }

    #[tokio::test]
    async fn leases_count_channels_and_open_a_second_connection_at_the_cap() {
        let pool: Pool<Fake> = Pool::new(2);
        let key = ChainKey::new(&[hop("b1", "u", "/k")], &settings());
        let chain = pool.chain(&key, "u@b1:22", 4);
        let mut g = chain.lock().await;
        assert!(g.lease().unwrap().is_none(), "empty pool: open one");
        let first = g.add(fake().0, None);
        let second = g.lease().unwrap().expect("room for a second channel");
        assert!(
            g.lease().unwrap().is_none(),
            "cap of 2 reached: open another"
        );
        let third = g.add(fake().0, None);
        drop(second);
        // The first connection has room again and is the least loaded (1 vs 1:
        // the first in order).
        let again = g.lease().unwrap().expect("a slot was freed");
        assert!(Arc::ptr_eq(&again.pooled, &first.pooled));
        drop((first, third, again));
        drop(g);
        assert_eq!(pool.drain().len(), 2);
    }

    #[tokio::test]
    async fn a_lost_connection_is_replaced_and_a_failed_opening_is_remembered() {
        let pool: Pool<Fake> = Pool::default();
        let key = ChainKey::new(&[hop("b1", "u", "/k")], &settings());
        let chain = pool.chain(&key, "u@b1:22", 4);
        let (conn, closed) = fake();
        let lease = chain.lock().await.add(conn, None);
        assert_eq!(lease.lost_bastion(), None);
        closed.store(true, Ordering::Release);
        assert_eq!(lease.lost_bastion().as_deref(), Some("u@b1:22"));
        let mut g = chain.lock().await;
        assert!(
            g.lease().unwrap().is_none(),
            "the dead connection is not reused"
        );
        assert_eq!(g.lost(), 1);
        g.fail(TransportError::Unreachable("bastion gone".into()));
        assert_eq!(
            g.lease().err(),
            Some(TransportError::Unreachable("bastion gone".into()))
        );
    }

    #[tokio::test]
    async fn an_inner_connection_names_the_outer_bastion_when_that_one_dies() {
        let pool: Pool<Fake> = Pool::default();
        let s = settings();
        let outer_key = ChainKey::new(&[hop("b1", "u", "/k")], &s);
        let inner_key = ChainKey::new(&[hop("b1", "u", "/k"), hop("b2", "u", "/k")], &s);
        let (outer_conn, outer_closed) = fake();
        let outer = pool
            .chain(&outer_key, "u@b1:22", 4)
            .lock()
            .await
            .add(outer_conn, None);
        let inner = pool
            .chain(&inner_key, "u@b2:22", 4)
            .lock()
            .await
            .add(fake().0, Some(outer));
        outer_closed.store(true, Ordering::Release);
        assert_eq!(inner.lost_bastion().as_deref(), Some("u@b1:22"));
        // Inner chains are closed first.
        drop(inner);
        let drained = pool.drain();
        assert_eq!(drained.len(), 2);
        assert_eq!(drained[0].label, "u@b2:22");
    }

    #[tokio::test]
    async fn the_handshake_cap_is_per_bastion() {
        let pool: Pool<Fake> = Pool::default();
        let key = ChainKey::new(&[hop("b1", "u", "/k")], &settings());
        let chain = pool.chain(&key, "u@b1:22", 1);
        let lease = chain.lock().await.add(fake().0, None);
        let slot = lease.handshake_slot().await;
        assert!(slot.is_some());
        let second = tokio::time::timeout(Duration::from_millis(50), lease.handshake_slot()).await;
        assert!(
            second.is_err(),
            "a second handshake through the bastion waits"
        );
    }
}
