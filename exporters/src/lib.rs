//! fleetsweep's exporters: the report model every output is built from, and its writers.
//!
//! # Layout
//! - [`report`]: the versioned report (`report_version: 1`), the contract users consume.
//! - [`yaml`]: the YAML writer/reader for that report.
//! - [`file`]: atomic file output shared by every file-writing exporter.

pub mod file;
pub mod report;
pub mod yaml;

pub use report::*;
