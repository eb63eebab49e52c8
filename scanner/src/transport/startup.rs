//! The start-up of an SSH connection (TCP, banner, key exchange, authentication)
//! against servers that protect themselves from too many of them.
//!
//! OpenSSH's sshd drops connections that have not authenticated yet once it has
//! `MaxStartups` of them (default `10:30:100`: from 10 in flight, 30% of new
//! ones are dropped, rising to all of them at 100), and from 9.8 on its
//! `PerSourcePenalties` refuses, for a while, a source address that caused
//! many failed connections. A sweep at `--concurrency 50` used to lose a third
//! of the hosts behind one bastion to this, as "connection reset by peer".
//!
//! So: at most `max_startups` connections to one destination are in start-up
//! at once ([`StartupGates`], below sshd's default start of 10), at most
//! `--max-handshakes` in the whole sweep ([`HandshakeGate`]), and a
//! connection closed or reset before authentication is retried a few times
//! with a growing, jittered pause ([`Backoff`]). A refused key or host key is
//! never retried: each retry would count against the source address.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections to one `address:port` in start-up at once, unless the
/// inventory says otherwise (`max_startups:`). Below sshd's default
/// `MaxStartups` start of 10, so a default sshd never drops one of ours.
pub const DEFAULT_MAX_STARTUPS: usize = 8;

/// Connections in start-up at once across a sweep, unless `--max-handshakes`
/// says otherwise. A start-up is the costly part of a host for both ends (key
/// exchange, signatures); on two cores a few dozen at once keep them busy, and
/// each connection open beyond that holds about 100 KB of the scanner's
/// memory (russh's session task and its channels) while it waits for CPU.
/// 64 also covers start-ups that wait on the network: at 50 ms round trips
/// (four per start-up) it still admits over 300 hosts a second.
pub const DEFAULT_MAX_HANDSHAKES: usize = 64;

/// Attempts at one connection when the server keeps closing it before
/// authentication: the first and up to 4 retries.
pub const MAX_ATTEMPTS: u32 = 5;

/// Pause before the first retry; each later one doubles it.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
/// No pause is longer than this (before jitter).
const LONGEST_PAUSE: Duration = Duration::from_secs(4);

/// The pauses between attempts at one connection: 250ms, 500ms, 1s, 2s, each
/// spread by ±50% so hosts refused together do not come back together.
#[derive(Debug, Clone)]
pub struct Backoff {
    retries_done: u32,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff { retries_done: 0 }
    }

    /// The pause before the next attempt, or None once [`MAX_ATTEMPTS`] are
    /// used up. `unit` in `[0, 1)` picks the point in the jitter range.
    pub fn next_pause(&mut self, unit: f64) -> Option<Duration> {
        if self.retries_done + 1 >= MAX_ATTEMPTS {
            return None;
        }
        let base = nominal_pause(self.retries_done);
        self.retries_done += 1;
        let unit = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.5
        };
        Some(base.mul_f64(0.5 + unit))
    }

    /// Attempts made so far, counting the one about to be retried.
    pub fn attempts(&self) -> u32 {
        self.retries_done + 1
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// The pause before retry `n` (0-based), before jitter.
fn nominal_pause(n: u32) -> Duration {
    FIRST_PAUSE
        .saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX))
        .min(LONGEST_PAUSE)
}

/// A random point in the jitter range.
pub fn jitter() -> f64 {
    rand::random::<f64>()
}

/// What the report says when the retries ran out: the likely cause, and
/// what to change.
pub fn busy_message(
    destination: &str,
    attempts: u32,
    elapsed: Duration,
    last: &str,
    max_startups: usize,
) -> String {
    format!(
        "{destination} closed or reset the connection before authentication on {attempts} \
         attempt{} over {:.1}s (last: {last}). The server is most likely refusing \
         unauthenticated connections: sshd's MaxStartups (default 10:30:100) drops them past \
         its limit, and OpenSSH 9.8 and later also refuses addresses that caused many failed \
         connections (PerSourcePenalties). Lower --concurrency, or `max_startups:` \
         (now {max_startups} at once to one address:port), raise MaxStartups in the \
         server's sshd_config, or reach the hosts through a bastion (`jump:`)",
        if attempts == 1 { "" } else { "s" },
        elapsed.as_secs_f64()
    )
}

/// Per-destination caps on connections in start-up, shared by one sweep.
/// Keyed by whatever names the destination as seen from where the connection
/// starts (the bastion chain, the address, the port): the caller builds it.
pub struct StartupGates<K> {
    gates: Mutex<HashMap<K, Arc<Semaphore>>>,
}

impl<K: std::hash::Hash + Eq + Clone> StartupGates<K> {
    pub fn new() -> Self {
        StartupGates {
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for a start-up slot at `key`. The first host to reach a
    /// destination sets its cap (a destination has one sshd, so one limit).
    pub async fn enter(&self, key: &K, cap: usize) -> StartupSlot<'_, K> {
        // Made first so it is dropped last: a host that gives up waiting
        // (its deadline) still removes a gate nobody else uses.
        let mut slot = StartupSlot {
            gates: self,
            key: key.clone(),
            permit: None,
        };
        let gate = {
            let mut gates = self.lock();
            Arc::clone(
                gates
                    .entry(key.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(cap.max(1)))),
            )
        };
        slot.permit = Some(acquire(&gate).await);
        slot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Arc<Semaphore>>> {
        self.gates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Destinations with a gate: those with a start-up in flight or waited for.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// A start-up slot at one destination, held until the connection is up (or
/// has failed). When the last slot of a destination goes and nobody waits
/// for one, its gate goes too: a sweep of 100,000 hosts keeps gates for the
/// destinations in start-up, not for every host it has seen.
pub struct StartupSlot<'a, K: std::hash::Hash + Eq + Clone> {
    gates: &'a StartupGates<K>,
    key: K,
    permit: Option<OwnedSemaphorePermit>,
}

impl<K: std::hash::Hash + Eq + Clone> Drop for StartupSlot<'_, K> {
    fn drop(&mut self) {
        // The permit holds a handle on the gate: release it first.
        drop(self.permit.take());
        let mut gates = self.gates.lock();
        // Under the lock nobody can take a new handle from the map; any other
        // handle is a slot held or a host waiting for one.
        if gates
            .get(&self.key)
            .is_some_and(|g| Arc::strong_count(g) == 1)
        {
            gates.remove(&self.key);
        }
    }
}

/// A slot of `gate`. The gates are never closed; should that change, waiting
/// again is still correct.
async fn acquire(gate: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    loop {
        if let Ok(permit) = Arc::clone(gate).acquire_owned().await {
            return permit;
        }
        tokio::task::yield_now().await;
    }
}

impl<K: std::hash::Hash + Eq + Clone> Default for StartupGates<K> {
    fn default() -> Self {
        StartupGates::new()
    }
}

/// The sweep-wide cap on connections in start-up ([`DEFAULT_MAX_HANDSHAKES`]).
/// Entered after the per-destination and per-bastion gates, so a slot is
/// never held by a connection still waiting for its destination.
pub struct HandshakeGate(Arc<Semaphore>);

impl HandshakeGate {
    pub fn new(cap: usize) -> Self {
        HandshakeGate(Arc::new(Semaphore::new(cap.max(1))))
    }

    /// Waits for a slot; dropping the permit frees it.
    pub async fn enter(&self) -> OwnedSemaphorePermit {
        acquire(&self.0).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn pauses_double_and_stop_after_the_last_attempt() {
        let mut b = Backoff::new();
        let mid: Vec<Duration> = std::iter::from_fn(|| b.next_pause(0.5)).collect();
        assert_eq!(
            mid,
            [250, 500, 1000, 2000].map(Duration::from_millis).to_vec()
        );
        assert_eq!(b.attempts(), MAX_ATTEMPTS);
        assert_eq!(b.next_pause(0.5), None, "no attempt past the last");
    }

    #[test]
    fn jitter_spreads_each_pause_by_half_and_never_shrinks_the_growth() {
        for n in 0..(MAX_ATTEMPTS - 1) {
            let mut low = Backoff { retries_done: n };
            let mut high = Backoff { retries_done: n };
            let base = nominal_pause(n);
            assert_eq!(low.next_pause(0.0), Some(base / 2));
            assert_eq!(high.next_pause(1.0), Some(base.mul_f64(1.5)));
            // Even the shortest next pause is no shorter than this one's shortest.
            if n + 1 < MAX_ATTEMPTS - 1 {
                assert!(nominal_pause(n + 1) / 2 >= base / 2);
            }
        }
        // Out-of-range jitter is clamped, a NaN taken as the middle.
        let mut b = Backoff::new();
        assert_eq!(b.next_pause(f64::NAN), Some(FIRST_PAUSE));
        let mut b = Backoff::new();
        assert_eq!(b.next_pause(7.0), Some(FIRST_PAUSE.mul_f64(1.5)));
    }

    #[test]
    fn the_whole_schedule_fits_a_host_timeout() {
        // Worst case, all pauses at +50%: well within the 2-minute default.
        let mut b = Backoff::new();
        let total: Duration = std::iter::from_fn(|| b.next_pause(1.0)).sum();
        assert_eq!(total, Duration::from_millis(5625));
        assert_eq!(nominal_pause(40), LONGEST_PAUSE, "no overflow");
    }

    #[test]
    fn the_message_names_the_cause_and_the_fixes() {
        let m = busy_message("10.0.0.5:22", 5, Duration::from_millis(4200), "reset", 8);
        for part in [
            "10.0.0.5:22",
            "5 attempts over 4.2s",
            "MaxStartups",
            "PerSourcePenalties",
            "--concurrency",
            "`max_startups:` (now 8",
            "bastion",
        ] {
            assert!(m.contains(part), "{part}: {m}");
        }
    }

    #[tokio::test]
    async fn the_sweep_wide_gate_bounds_start_ups_in_flight() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let gate = Arc::new(HandshakeGate::new(3));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let (gate, now, most) = (gate.clone(), now.clone(), most.clone());
                tokio::spawn(async move {
                    let _slot = gate.enter().await;
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            3,
            "never more than the cap, and the cap is used"
        );
        // A cap of 0 is taken as 1, never a gate nobody passes.
        let closed = HandshakeGate::new(0);
        let one = tokio::time::timeout(Duration::from_millis(50), closed.enter()).await;
        assert!(one.is_ok());
    }

    #[tokio::test]
    async fn a_gate_admits_its_cap_per_destination() {
        let gates: StartupGates<&str> = StartupGates::new();
        let a1 = gates.enter(&"a", 2).await;
        let _a2 = gates.enter(&"a", 2).await;
        // A third to "a" waits; "b" has its own gate.
        let _b = gates.enter(&"b", 2).await;
        let third = tokio::time::timeout(Duration::from_millis(50), gates.enter(&"a", 2)).await;
        assert!(
            third.is_err(),
            "a third start-up to the same destination must wait"
        );
        drop(a1);
        let third = tokio::time::timeout(Duration::from_millis(50), gates.enter(&"a", 2)).await;
        assert!(third.is_ok());
        assert_eq!(gates.len(), 2, "slots held at a and b");
        drop((third, _a2, _b));
        assert_eq!(gates.len(), 0, "no slot held, no gate kept");
    }

    #[tokio::test]
    async fn a_gate_stays_while_a_host_waits_for_it() {
        let gates: Arc<StartupGates<&str>> = Arc::new(StartupGates::new());
        let held = gates.enter(&"a", 1).await;
        let waiter = tokio::time::timeout(Duration::from_millis(50), gates.enter(&"a", 1)).await;
        assert!(waiter.is_err(), "the cap is 1");
        // A host that gave up waiting leaves nothing behind; the one holding
        // the slot keeps the gate, and its cap, until it is done.
        assert_eq!(gates.len(), 1);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let next = {
            let gates = Arc::clone(&gates);
            tokio::spawn(async move {
                let slot = gates.enter(&"a", 1).await;
                let _ = tx.send(());
                drop(slot);
                gates.len()
            })
        };
        tokio::task::yield_now().await;
        drop(held);
        rx.await.unwrap();
        assert_eq!(
            next.await.unwrap(),
            0,
            "the last slot took the gate with it"
        );
    }
}
