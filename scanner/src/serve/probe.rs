//! `/probe` flights: at most one sweep per target at a time, shared by every
//! caller that asks for it, and dropped when none of them waits any more.
//!
//! Why: a probe is an SSH connection and one of the `max_probes` slots. If
//! each request started its own, a handful of scrapers of one slow host
//! would take every slot; if a probe outlived its callers (as a spawned
//! task), clients that hang up at once with a long scrape timeout would keep
//! the slots busy and lock every other target out of `/probe` (503).
//!
//! So the first caller for a target starts a flight and later ones join it.
//! A flight is a [`Shared`] future polled by the handlers of its callers, not
//! a task of its own: when the last caller goes away (hyper drops a handler
//! whose client disconnected), the flight is dropped with it, its SSH
//! connection closed and its slot given back. The sweep inside is bounded by
//! the probe deadline, itself never above the host timeout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::future::{BoxFuture, FutureExt, Shared, WeakShared};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use fleetsweep_exporters::Report;

/// One sweep of one target, awaited by one caller or more.
pub(super) type Flight = Shared<BoxFuture<'static, Arc<Report>>>;

/// Target name → (flight id, the flight).
type Running = HashMap<String, (u64, WeakShared<BoxFuture<'static, Arc<Report>>>)>;

/// The probes running now, by target.
pub(super) struct Flights {
    /// Weak, so that the map does not
    /// keep alive a flight whose callers all left; the id tells a flight from
    /// the one that replaced it under the same name.
    running: Mutex<Running>,
    /// Flight ids.
    next_id: AtomicU64,
    /// One permit per running flight: bounds concurrent SSH connections
    /// opened for `/probe`.
    slots: Arc<Semaphore>,
}

/// How a caller got its flight.
pub(super) enum Boarding {
    /// A new sweep of the target.
    Started(Flight),
    /// The sweep another caller started and that is still running.
    Joined(Flight),
    /// Every slot is taken by flights of other targets.
    Full,
}

impl Flights {
    pub(super) fn new(max_probes: usize) -> Arc<Flights> {
        Arc::new(Flights {
            running: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            slots: Arc::new(Semaphore::new(max_probes.max(1))),
        })
    }

    fn running(&self) -> MutexGuard<'_, Running> {
        self.running.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The flight of `target`: the running one, or a new one made by `start`
    /// (given the slot it holds until it ends or is dropped).
    pub(super) fn board(
        self: &Arc<Self>,
        target: &str,
        start: impl FnOnce(OwnedSemaphorePermit) -> BoxFuture<'static, Arc<Report>>,
    ) -> Boarding {
        // The lock is never held where a flight can be dropped: dropping the
        // last one runs `Landing::drop`, which takes it.
        let mut running = self.running();
        if let Some(flight) = running.get(target).and_then(|(_, weak)| weak.upgrade()) {
            return Boarding::Joined(flight);
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return Boarding::Full;
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let landing = Landing {
            flights: self.clone(),
            target: target.to_string(),
            id,
            landed: false,
        };
        let sweep = start(permit);
        let flight: Flight = async move {
            let mut landing = landing;
            let report = sweep.await;
            landing.landed = true;
            report
        }
        .boxed()
        .shared();
        if let Some(weak) = flight.downgrade() {
            running.insert(target.to_string(), (id, weak));
        }
        Boarding::Started(flight)
    }

    /// Targets with a flight in the map (tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.running().len()
    }
}

/// Takes a flight off the map when it ends or is dropped, so the next
/// caller starts a fresh sweep.
struct Landing {
    flights: Arc<Flights>,
    target: String,
    id: u64,
    /// The sweep finished; otherwise every caller left before it did.
    landed: bool,
}

impl Drop for Landing {
    fn drop(&mut self) {
        if !self.landed {
            tracing::info!(target = %self.target, "probe cancelled: every caller went away");
        }
        let mut running = self.flights.running();
        if running
            .get(&self.target)
            .is_some_and(|(id, _)| *id == self.id)
        {
            running.remove(&self.target);
        }
    }
}
