//! Hash maps and sets for the per-host parsers and the matcher: std's
//! containers with foldhash instead of SipHash. Hashing unit-file paths, pids
//! and matched items with SipHash was 4% of a sweep's instructions (callgrind,
//! 1,000 simulated hosts); foldhash takes a fraction of that. Its seed is
//! random per process, so a hostile host cannot choose keys that collide
//! (and what it sends is capped in size before it is parsed).
//!
//! Build them with `default()` / `with_capacity_and_hasher(n, Default::default())`
//! or `collect()`; `new()` and `with_capacity()` exist only for std's hasher.

/// [`std::collections::HashMap`] with foldhash.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// [`std::collections::HashSet`] with foldhash.
pub type HashSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
