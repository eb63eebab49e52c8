//! YAML report writer.
//!
//! Host output (package names, versions, command lines) reaches this writer as
//! plain strings; the serializer quotes and escapes them, so a hostile value
//! cannot add keys or documents to the report.

use crate::report::Report;

#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    #[error("could not serialize the report as YAML: {0}")]
    Serialize(String),
    #[error("could not parse the report: {0}")]
    Parse(String),
}

/// Renders a report as YAML. Call [`Report::normalize`] first for stable output.
pub fn to_yaml(report: &Report) -> Result<String, YamlError> {
    serde_saphyr::to_string(report).map_err(|e| YamlError::Serialize(e.to_string()))
}

/// Reads a report back (used by tests and by later `report`/diff commands).
pub fn from_yaml(text: &str) -> Result<Report, YamlError> {
    serde_saphyr::from_str(text).map_err(|e| YamlError::Parse(e.to_string()))
}
