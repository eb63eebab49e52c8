//! fleetsweep: an agentless fleet scanner for banned security software.
//!
//! # Layout
//! Data flows one way, and each module owns one step:
//!
//! - [`inventory`]: the fleet file (YAML, SPEC §3) plus `~/.ssh/config`, resolved
//!   into [`inventory::Host`]s with every default applied.
//! - [`transport`]: how a host is reached (SSH via russh, or `local`), one
//!   session per host, one exec per sweep.
//! - [`probes`]: the read-only probe script and the pure parsers turning its
//!   output into [`probes::Observations`].
//! - [`catalog`]: the banned-software catalog (YAML) and the matcher that turns
//!   observations into findings with evidence.
//! - [`sweep`]: the engine: bounded concurrency, per-host deadlines, outcomes,
//!   interruption; it produces the report of `fleetsweep_exporters`.
//! - [`exceptions`]: the exceptions file (approved, expiring acceptances).
//! - [`state`]: the state store (SQLite): history across sweeps, remediation
//!   statuses, exceptions applied, one transaction per sweep.
//! - [`pipeline`]: one sweep taken through the state store to its outputs
//!   (report file, metrics textfile, Pushgateway), validated once; what
//!   `scan` runs once and `serve` runs on a schedule.
//! - [`serve`]: the daemon (`fleetsweep serve`): scheduled sweeps, `/metrics`,
//!   `/probe`, TLS and basic auth from an exporter-toolkit web.yml.
//! - [`cli`]: the command line, turned once into validated settings.
//!
//! A host that fails is data (an [`fleetsweep_exporters::Outcome`]), never an
//! error that stops a sweep.

pub mod catalog;
pub mod cli;
pub mod diag;
pub mod exceptions;
pub mod glob;
pub mod inventory;
pub mod os;
pub mod pipeline;
pub mod probes;
pub mod serve;
pub mod state;
pub mod sweep;
pub mod transport;
