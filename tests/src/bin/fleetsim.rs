//! `fleetsim`: a simulated fleet of up to 4M SSH hosts in one process, for
//! scale benchmarks (tests/bench/scale.sh). See `fleetsweep_e2e::sim`.
//!
//! ```text
//! fleetsim gen --hosts 10000 --dir D            # sim.json, inventory.yaml, known_hosts, client_key
//! ip netns add fsim && ip -n fsim link set lo up
//! ip netns exec fsim fleetsim serve --dir D &   # prints "ready" once listening
//! ip netns exec fsim fleetsweep scan -i D/inventory.yaml ...
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};
use fleetsweep_e2e::sim::{self, SimSpec};
use fleetsweep_e2e::Signal;
use nix::sys::signal::SigSet;

#[derive(Parser)]
#[command(about = "Simulated SSH hosts on 127.64.0.0/10, inside a network namespace")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Write DIR/sim.json, DIR/inventory.yaml, DIR/known_hosts and DIR/client_key.
    Gen {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long)]
        hosts: usize,
        #[arg(long, default_value_t = 22)]
        port: u16,
        /// Every N-th host has KESL installed (0: none).
        #[arg(long, default_value_t = 20)]
        affected_every: usize,
        /// Every N-th host prints the large (~124 KB) output.
        #[arg(long, default_value_t = 7)]
        large_every: usize,
        /// Every N-th host answers the probe after --slow-ms.
        #[arg(long, default_value_t = 0)]
        slow_every: usize,
        #[arg(long, default_value_t = 2000)]
        slow_ms: u64,
        /// Every N-th host resets its connections.
        #[arg(long, default_value_t = 0)]
        reset_every: usize,
        /// Round-trip time added to every server write, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Unauthenticated connections allowed per address (0: no limit).
        #[arg(long, default_value_t = 0)]
        max_startups: usize,
        /// Reach every host but the first through the first, a bastion that
        /// forwards `direct-tcpip` channels (`jump:` in the inventory).
        #[arg(long)]
        bastion: bool,
        /// Seed of the host keys (default: random).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Serve DIR/sim.json on 0.0.0.0:PORT until SIGINT/SIGTERM. Refuses to run
    /// outside a namespace whose only interface is `lo`.
    Serve {
        #[arg(long)]
        dir: PathBuf,
        /// Runtime worker threads.
        #[arg(long, default_value_t = 1)]
        workers: usize,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Gen {
            dir,
            hosts,
            port,
            affected_every,
            large_every,
            slow_every,
            slow_ms,
            reset_every,
            latency_ms,
            max_startups,
            bastion,
            seed,
        } => {
            let spec = SimSpec {
                hosts,
                port,
                seed: seed.unwrap_or_else(random_seed),
                affected_every,
                large_every,
                slow_every,
                slow_ms,
                reset_every,
                latency_ms,
                max_startups,
                bastion,
            };
            sim::generate(&dir, &spec)?;
            println!("{}", dir.join("inventory.yaml").display());
        }
        Cmd::Serve { dir, workers } => {
            let spec = SimSpec::load(&dir)?;
            if !sim::netns::is_isolated()? {
                bail!(
                    "fleetsim serve listens on 0.0.0.0: run it inside a network namespace with only `lo` \
                     (ip netns add NS; ip -n NS link set lo up; ip netns exec NS fleetsim serve ...)"
                );
            }
            let counters = Arc::new(sim::server::Counters::default());
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let set = SigSet::from_iter([Signal::SIGINT, Signal::SIGTERM]);
            set.thread_block()?;
            std::thread::spawn(move || {
                let _ = set.wait();
                let _ = stop_tx.send(());
            });
            std::thread::spawn(move || {
                if let Ok(Ok(())) = ready_rx.recv() {
                    println!("ready");
                }
            });
            let c = counters.clone();
            sim::server::run(spec, workers, c, stop_rx, ready_tx)?;
            let s = counters.snapshot();
            eprintln!(
                "fleetsim: accepted {} connections, reset {}, refused {}, authenticated {} ({} through the bastion), probes answered {}, unknown address {}, bastion channels {} ({} closed by the client first)",
                s.accepted, s.reset, s.refused, s.authenticated, s.tunnelled, s.probes, s.unknown, s.tunnels, s.tunnels_closed_by_client
            );
        }
    }
    Ok(())
}

fn random_seed() -> u64 {
    use std::io::Read;
    let mut b = [0u8; 8];
    match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)) {
        Ok(()) => u64::from_le_bytes(b),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}
