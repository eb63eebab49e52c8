//! fleetsweep's exporters: the report model every output is built from, and its writers.
//!
//! # Layout
//! - [`report`]: the versioned report (`report_version: 1`), the contract users consume.
//! - [`yaml`]: the YAML writer/reader for that report.
//! - [`formats`]: `fleetsweep report --format ...` renderers (pure: strings in, strings out)
//!   and the diff between two reports.
//! - [`file`]: atomic file output shared by every file-writing exporter.
//! - [`metrics`]: Prometheus metrics of a sweep (text format 0.0.4).
//! - [`push`]: pushing those metrics to a Pushgateway.
//! - [`siem`]: events of a sweep for a SIEM: RFC 5424 syslog over TCP/TLS, a signed JSON webhook.

pub mod file;
pub mod formats;
pub mod hosts;
pub mod metrics;
pub mod push;
pub mod report;
pub mod siem;
pub mod yaml;

pub use report::*;
