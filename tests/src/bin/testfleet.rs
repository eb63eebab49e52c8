//! `testfleet`: start or stop a fleet of real sshd test hosts by hand
//! (for `scripts/demo`, the benchmark, and poking at scenarios).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use fleetsweep_e2e::{demo_hosts, stop_detached, Fleet, FleetSpec, Scenario, Signal};
use nix::sys::signal::SigSet;

#[derive(Parser)]
#[command(
    about = "Real sshd test hosts on 127.0.X.0/24, or 127.2.0.0/16 past 245 hosts (run as root)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Start hosts and write DIR/inventory.yaml.
    Up {
        #[arg(long)]
        dir: PathBuf,
        /// X in 127.0.X.0/24.
        #[arg(long, default_value_t = 200)]
        subnet: u8,
        /// One host of each scenario.
        #[arg(long)]
        demo: bool,
        /// N cheap hosts. Up to 245 live in 127.0.SUBNET.0/24; a larger fleet
        /// (up to 64,000) in 127.2.0.0/16, whatever SUBNET says.
        #[arg(long)]
        generated: Option<usize>,
        /// With --generated: every K-th host has KESL installed.
        #[arg(long, default_value_t = 10)]
        kaspersky_every: usize,
        /// Leave the hosts running and exit (stop them with `testfleet down`).
        #[arg(long)]
        detach: bool,
    },
    /// Stop the hosts started with --detach in DIR.
    Down {
        #[arg(long)]
        dir: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Down { dir } => {
            let n = stop_detached(&dir)?;
            eprintln!("stopped {n} test hosts");
        }
        Cmd::Up {
            dir,
            subnet,
            demo,
            generated,
            kaspersky_every,
            detach,
        } => {
            let hosts = match (demo, generated) {
                (_, Some(n)) => (0..n)
                    .map(|i| {
                        let k = kaspersky_every > 0 && i % kaspersky_every == kaspersky_every - 1;
                        (format!("host-{i:04}"), Scenario::Generated { kaspersky: k })
                    })
                    .collect(),
                _ => demo_hosts(),
            };
            let fleet = Fleet::start_in(&dir, FleetSpec { subnet, hosts })?;
            println!("{}", fleet.inventory_path().display());
            if detach {
                fleet.detach();
            } else {
                eprintln!("{} test hosts up; Ctrl-C stops them", fleet.hosts().len());
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                ctrlc_wait(tx)?;
                let _ = rx.recv();
            }
        }
    }
    Ok(())
}

/// Blocks SIGINT/SIGTERM and waits for one of them on a thread.
fn ctrlc_wait(tx: std::sync::mpsc::Sender<()>) -> Result<()> {
    let set = SigSet::from_iter([Signal::SIGINT, Signal::SIGTERM]);
    // Blocked here and in the waiting thread (which inherits the mask), so the
    // signal stays pending for `wait` instead of ending the process.
    set.thread_block()?;
    std::thread::spawn(move || {
        let _ = set.wait();
        let _ = tx.send(());
    });
    Ok(())
}
