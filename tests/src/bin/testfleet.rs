//! `testfleet`: start or stop a fleet of real sshd test hosts by hand
//! (for `scripts/demo`, the benchmark, and poking at scenarios).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use fleetsweep_e2e::{demo_hosts, stop_detached, Fleet, FleetSpec, Scenario, Signal};
use nix::sys::signal::SigSet;

#[derive(Parser)]
#[command(
    about = "Real sshd test hosts on 127.0.X.0/24, spilling into the next subnets past 245 hosts (run as root)"
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
        /// goes on in 127.0.(SUBNET+1).0/24 and so on.
        #[arg(long)]
        generated: Option<usize>,
        /// With --generated: every K-th host has KESL installed.
        #[arg(long, default_value_t = 10)]
        kaspersky_every: usize,
        /// With --generated: the N hosts sit behind one bastion (`bastion`,
        /// OpenSSH's default MaxStartups), each by an internal name only it
        /// resolves. More than 245 hosts spill into the next subnet.
        #[arg(long)]
        behind_bastion: bool,
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
            behind_bastion,
            detach,
        } => {
            let hosts = match (demo, generated) {
                (_, Some(n)) if behind_bastion => {
                    std::iter::once(("bastion".into(), Scenario::Bastion))
                        .chain((0..n).map(|i| {
                            (
                                format!("host-{i:04}"),
                                Scenario::BehindBastion("bastion".into()),
                            )
                        }))
                        .collect()
                }
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
