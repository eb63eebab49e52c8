//! The fleet simulator: one process answering SSH as thousands of hosts, for
//! sweeps of 1k-100k hosts that real `sshd` test hosts (one process each) cannot
//! reach on one machine.
//!
//! Layout:
//! - [`SimSpec`] (here): the simulated fleet, saved as `sim.json` next to the
//!   inventory it describes; which host is which ([`SimSpec::host`]) is a pure
//!   function of its index, so the tests know what each host must report.
//! - `gen`: writes `sim.json`, `inventory.yaml`, `known_hosts` and the client key.
//! - `keys`: per-host ed25519 host keys derived from the fleet's seed (nothing
//!   stored per host), and the client key.
//! - `fixtures`: real recorded outputs of the Linux probe (`tests/fixtures/sim/`),
//!   answered with each run's own nonce.
//! - `server`: the russh server: one wildcard listener whose accepted socket's
//!   local address names the host dialled; knobs for latency, slow hosts,
//!   resets and MaxStartups-like refusals.
//! - `netns`: the network namespace the simulator listens in (only `lo`), so
//!   the wildcard listener is reachable from nothing but that namespace.
//! - [`SimFleet`]: all of it for a test: a namespace, a generated fleet and a
//!   running server, removed on drop.
//!
//! Host `i` (0-based) is `sim-NNNNNN` on `127.64.0.0 + 1 + i`, inside
//! 127.64.0.0/10 (4M addresses, this simulator's alone).

mod fixtures;
mod gen;
mod keys;
pub mod netns;
pub mod server;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub use fixtures::{Fixture, KESL_VERSION};
pub use gen::generate;
pub use netns::Netns;
pub use server::{Server, Stats};

/// First address of the simulator's range, 127.64.0.0/10.
const BASE: u32 = u32::from_be_bytes([127, 64, 0, 0]);
/// Hosts that fit in 127.64.0.0/10 after its first and before its last address.
pub const MAX_HOSTS: usize = (1 << 22) - 2;

/// The address of host `index`: 127.64.0.1 for host 0, counting up through
/// 127.64.0.0/10.
///
/// ```
/// use fleetsweep_e2e::sim::address;
/// assert_eq!(address(0).to_string(), "127.64.0.1");
/// assert_eq!(address(255).to_string(), "127.64.1.0");
/// ```
pub fn address(index: usize) -> Ipv4Addr {
    // MAX_HOSTS < 2^22: the sum stays inside the /10 for every valid index.
    let offset = u32::try_from(index.min(MAX_HOSTS - 1)).unwrap_or(0);
    Ipv4Addr::from(BASE + 1 + offset)
}

/// The host index an address of the simulator's range stands for; None for
/// an address outside it (or its first and last address).
pub fn index_of(addr: Ipv4Addr) -> Option<usize> {
    let offset = u32::from(addr).checked_sub(BASE + 1)?;
    let index = usize::try_from(offset).ok()?;
    (index < MAX_HOSTS).then_some(index)
}

/// The inventory name of host `index`.
pub fn name(index: usize) -> String {
    format!("sim-{index:06}")
}

/// What a simulated host's probe prints: one of the recorded real outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// A clean Debian test host (~28 KB of output).
    Clean,
    /// A Debian test host with KESL installed: affected (~29 KB).
    Kesl,
    /// A full Debian install, ~936 packages (~124 KB), clean.
    Large,
}

/// How a simulated host behaves on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Answers at once (after the fleet's latency).
    Normal,
    /// Answers the probe after [`SimSpec::slow_ms`].
    Slow,
    /// Resets every connection once the client's banner arrived (RST, no
    /// banner of its own).
    Reset,
}

/// One simulated host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimHost {
    pub profile: Profile,
    pub behaviour: Behaviour,
}

impl SimHost {
    /// The host gets a verdict on its software: it answers the probe.
    pub fn answers(&self) -> bool {
        self.behaviour != Behaviour::Reset
    }
}

/// The simulated fleet and its knobs. Each `*_every: N` selects hosts `i`
/// with `i % N == K` (K a different small offset per knob, so that knobs
/// overlap as little as they can); 0 selects none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSpec {
    /// Number of hosts, at most [`MAX_HOSTS`].
    pub hosts: usize,
    /// TCP port every host listens on (inside the simulator's namespace).
    pub port: u16,
    /// Seed of the host keys and the client key (see `keys`).
    pub seed: u64,
    /// Every N-th host has KESL installed (offset 1).
    pub affected_every: usize,
    /// Every N-th host prints the large output (offset 2; KESL wins).
    pub large_every: usize,
    /// Every N-th host is slow (offset 3).
    pub slow_every: usize,
    /// How long a slow host takes to answer the probe, in milliseconds.
    pub slow_ms: u64,
    /// Every N-th host resets its connections (offset 4; wins over slow).
    pub reset_every: usize,
    /// Round-trip time added to every server-to-client write, in milliseconds.
    pub latency_ms: u64,
    /// Connections per address that may be unauthenticated at once; beyond
    /// it a new connection is closed before the banner, as sshd's
    /// `MaxStartups` does. 0: no limit.
    pub max_startups: usize,
    /// Every host but the first is reached through the first (`sim-000000`,
    /// `jump:` in the inventory), which forwards `direct-tcpip` channels to
    /// any simulated host and serves that host's SSH inside the channel, as a
    /// bastion's sshd does with `ssh -J`. Off: channels are refused, as by an
    /// sshd with `AllowTcpForwarding no`.
    #[serde(default)]
    pub bastion: bool,
}

impl Default for SimSpec {
    fn default() -> Self {
        SimSpec {
            hosts: 1000,
            port: 22,
            seed: 1,
            affected_every: 20,
            large_every: 7,
            slow_every: 0,
            slow_ms: 2000,
            reset_every: 0,
            latency_ms: 0,
            max_startups: 0,
            bastion: false,
        }
    }
}

fn every(n: usize, offset: usize, index: usize) -> bool {
    n > 0 && index % n == offset % n
}

impl SimSpec {
    /// Rejects a fleet that does not fit its address range.
    pub fn validate(&self) -> Result<()> {
        if self.hosts == 0 || self.hosts > MAX_HOSTS {
            bail!(
                "hosts must be 1..={MAX_HOSTS} (127.64.0.0/10), not {}",
                self.hosts
            );
        }
        if self.port == 0 {
            bail!("port must not be 0");
        }
        Ok(())
    }

    /// What host `index` is and does.
    pub fn host(&self, index: usize) -> SimHost {
        let profile = if every(self.affected_every, 1, index) {
            Profile::Kesl
        } else if every(self.large_every, 2, index) {
            Profile::Large
        } else {
            Profile::Clean
        };
        let behaviour = if every(self.reset_every, 4, index) {
            Behaviour::Reset
        } else if every(self.slow_every, 3, index) {
            Behaviour::Slow
        } else {
            Behaviour::Normal
        };
        SimHost { profile, behaviour }
    }

    /// Reads `DIR/sim.json`.
    pub fn load(dir: &Path) -> Result<SimSpec> {
        let path = dir.join("sim.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {} (written by `fleetsim gen`)", path.display()))?;
        let spec: SimSpec =
            serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
        spec.validate()?;
        Ok(spec)
    }
}

/// A simulated fleet for a test: its own network namespace, the generated
/// files in a temporary directory, the server listening inside the namespace.
/// Dropping it stops the server and deletes the namespace.
pub struct SimFleet {
    pub spec: SimSpec,
    // Field order is drop order: the server before the namespace it listens in.
    server: Server,
    netns: Netns,
    dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl SimFleet {
    /// Generates the fleet and starts the server (`workers` runtime threads).
    pub fn start(spec: SimSpec, workers: usize) -> Result<SimFleet> {
        spec.validate()?;
        let tmp = tempfile::Builder::new().prefix("fleetsim.").tempdir()?;
        let dir = tmp.path().to_path_buf();
        generate(&dir, &spec)?;
        let netns = Netns::create()?;
        let server = Server::start_in(&netns, spec.clone(), workers)?;
        Ok(SimFleet {
            spec,
            server,
            netns,
            dir,
            _tmp: tmp,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn inventory_path(&self) -> PathBuf {
        self.dir.join("inventory.yaml")
    }
    pub fn netns(&self) -> &Netns {
        &self.netns
    }
    /// `program` run inside the fleet's namespace (where the hosts are reachable).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.netns.command(program)
    }
    pub fn stats(&self) -> Stats {
        self.server.stats()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_count_up_through_the_range_and_back() {
        assert_eq!(address(0), Ipv4Addr::new(127, 64, 0, 1));
        assert_eq!(address(254), Ipv4Addr::new(127, 64, 0, 255));
        assert_eq!(address(255), Ipv4Addr::new(127, 64, 1, 0));
        assert_eq!(address(99_999), Ipv4Addr::new(127, 65, 134, 160));
        assert_eq!(address(MAX_HOSTS - 1), Ipv4Addr::new(127, 127, 255, 254));
        for i in [0, 1, 254, 255, 256, 65_535, 99_999, MAX_HOSTS - 1] {
            assert_eq!(index_of(address(i)), Some(i), "host {i}");
        }
    }

    #[test]
    fn addresses_outside_the_range_are_no_host() {
        for a in [
            Ipv4Addr::new(127, 0, 0, 1),
            Ipv4Addr::new(127, 64, 0, 0),
            Ipv4Addr::new(127, 127, 255, 255),
            Ipv4Addr::new(127, 128, 0, 1),
            Ipv4Addr::new(127, 63, 255, 255),
            Ipv4Addr::new(10, 64, 0, 1),
            Ipv4Addr::new(0, 0, 0, 0),
        ] {
            assert_eq!(index_of(a), None, "{a}");
        }
    }

    #[test]
    fn names_sort_like_indexes() {
        assert_eq!(name(7), "sim-000007");
        assert!(name(9) < name(10) && name(99_999) < name(100_000));
    }

    #[test]
    fn knobs_select_their_share_and_resets_win() {
        let spec = SimSpec {
            hosts: 1000,
            affected_every: 10,
            large_every: 5,
            slow_every: 4,
            reset_every: 50,
            ..SimSpec::default()
        };
        let hosts: Vec<SimHost> = (0..1000).map(|i| spec.host(i)).collect();
        let count = |f: &dyn Fn(&SimHost) -> bool| hosts.iter().filter(|h| f(h)).count();
        assert_eq!(count(&|h| h.profile == Profile::Kesl), 100);
        // Every 5th from offset 2, less those that are KESL (none: 2 mod 5 vs 1 mod 10).
        assert_eq!(count(&|h| h.profile == Profile::Large), 200);
        assert_eq!(count(&|h| h.behaviour == Behaviour::Reset), 20);
        // Every 4th from offset 3 is odd; resets (4 mod 50) are even: no overlap.
        assert_eq!(count(&|h| h.behaviour == Behaviour::Slow), 250);
        assert_eq!(spec.host(1).profile, Profile::Kesl);
        assert_eq!(spec.host(4).behaviour, Behaviour::Reset);
        assert!(!spec.host(4).answers());
        assert_eq!(
            spec.host(0),
            SimHost {
                profile: Profile::Clean,
                behaviour: Behaviour::Normal
            }
        );
    }

    #[test]
    fn a_knob_of_zero_or_one_selects_none_or_all() {
        let spec = SimSpec {
            affected_every: 0,
            large_every: 1,
            reset_every: 0,
            slow_every: 0,
            ..SimSpec::default()
        };
        assert!((0..100).all(|i| spec.host(i).profile == Profile::Large));
        assert!((0..100).all(|i| spec.host(i).behaviour == Behaviour::Normal));
    }

    #[test]
    fn specs_outside_the_range_are_refused() {
        for hosts in [0, MAX_HOSTS + 1] {
            let spec = SimSpec {
                hosts,
                ..SimSpec::default()
            };
            assert!(spec.validate().is_err(), "{hosts} hosts");
        }
        assert!(SimSpec {
            hosts: MAX_HOSTS,
            ..SimSpec::default()
        }
        .validate()
        .is_ok());
        assert!(SimSpec {
            port: 0,
            ..SimSpec::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn spec_round_trips_and_refuses_unknown_keys() {
        let spec = SimSpec {
            hosts: 42,
            latency_ms: 50,
            ..SimSpec::default()
        };
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<SimSpec>(&text).unwrap(), spec);
        let bad = text.replace("\"hosts\"", "\"hostz\"");
        assert!(serde_json::from_str::<SimSpec>(&bad).is_err());
    }
}
