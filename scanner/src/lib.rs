//! fleetsweep: an agentless fleet scanner for banned security software.
//!
//! # Layout
//! Data flows one way, and each module owns one step (docs/architecture.md
//! has the map and how to add a family, a transport, a format or a rule):
//!
//! - [`inventory`]: the fleet file (YAML or Ansible, docs/inventory.md) plus
//!   `~/.ssh/config`, resolved into [`inventory::Host`]s with every default
//!   applied and a typed [`inventory::Target`] (SSH, WinRM, local, offline).
//! - [`os`]: the OS families, one closed set for every layer.
//! - [`transport`]: how a host is reached (SSH via russh, WinRM, or `local`),
//!   one session per host, one exec per sweep.
//! - [`probes`]: one registered probe per OS family ([`probes::registry`]):
//!   the read-only script, its pure parser into [`probes::Observations`], its
//!   install roots and offline bundle files.
//! - [`catalog`]: the banned-software catalog (YAML) and the matcher that turns
//!   observations into findings with evidence; [`glob`]: bounded globs.
//! - [`sweep`]: the engine: bounded concurrency, per-host deadlines, outcomes,
//!   interruption; it produces the report of `fleetsweep_exporters`.
//! - [`exceptions`]: the exceptions file (approved, expiring acceptances).
//! - [`state`]: the state store (SQLite): history across sweeps, remediation
//!   statuses, exceptions applied, one transaction per sweep.
//! - [`pipeline`]: sweep → state → outputs, shared by `scan` and `serve`.
//! - [`serve`]: the daemon (`fleetsweep serve`): scheduled sweeps, `/metrics`,
//!   `/probe`, TLS and basic auth from an exporter-toolkit web.yml.
//! - [`cli`]: the command line, turned once into validated settings;
//!   [`diag`]: errors in user files with file, line and column.
//!
//! A host that fails is data (an [`fleetsweep_exporters::Outcome`]), never an
//! error that stops a sweep.

pub(crate) mod blocks;
pub mod catalog;
pub mod cli;
pub mod diag;
pub mod exceptions;
pub mod glob;
pub mod hashing;
pub mod inventory;
pub mod os;
pub mod pipeline;
pub mod probes;
pub mod serve;
pub mod state;
pub mod sweep;
pub mod transport;
