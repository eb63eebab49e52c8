//! The sweep report as the end-to-end tests read it: the fields users rely
//! on, from the YAML file `scan --report` wrote, independent of the exporters'
//! model (a test checks what a user would read, not the code's own types).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Report {
    pub sweep: Sweep,
    pub summary: Summary,
    pub hosts: Vec<HostReport>,
}

#[derive(Debug, Deserialize)]
pub struct Sweep {
    pub complete: bool,
    pub interrupted_by: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Summary {
    /// `total`, `scanned`, `clean`, `affected`, `incomplete`, and the outcomes.
    pub hosts: BTreeMap<String, usize>,
}

#[derive(Debug, Deserialize)]
pub struct HostReport {
    pub name: String,
    pub address: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub outcome: String,
    pub error: Option<String>,
    /// `family`, `name`, `version`.
    pub os: Option<BTreeMap<String, Option<String>>>,
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Sections not fully read (`section: why`).
    #[serde(default)]
    pub incomplete: Vec<String>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Deserialize)]
pub struct Finding {
    pub rule: String,
    pub state: String,
    pub policy: String,
    pub version: Option<String>,
    pub signatures: Option<Signatures>,
    #[serde(default)]
    pub evidence: Vec<BTreeMap<String, String>>,
}

/// A product's anti-virus bases, where the host reported them.
#[derive(Debug, Deserialize)]
pub struct Signatures {
    pub last_update: String,
    pub age_days: i64,
    pub frozen: bool,
}

impl Report {
    /// Parses a report's YAML text.
    pub fn parse(yaml: &str) -> Result<Report> {
        serde_saphyr::from_str(yaml).context("the report does not parse")
    }

    /// Reads the report at `path`: its text and the parsed report.
    pub fn read(path: &Path) -> Result<(String, Report)> {
        let yaml = std::fs::read_to_string(path)
            .with_context(|| format!("no report at {}", path.display()))?;
        let report = Report::parse(&yaml)?;
        Ok((yaml, report))
    }

    /// The host named `name`; panics (a failed test) when it is missing.
    pub fn host(&self, name: &str) -> &HostReport {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("host {name} missing from the report"))
    }
}
