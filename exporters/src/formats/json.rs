//! JSON: the report model as `scan --report` writes it in YAML, for tools that
//! prefer JSON (jq, SIEM ingestion). Same field names, same order.

use super::FormatError;
use crate::report::Report;

/// Pretty-printed JSON of the report, with a final newline.
pub fn render(report: &Report) -> Result<String, FormatError> {
    let mut s = serde_json::to_string_pretty(report)?;
    s.push('\n');
    Ok(s)
}
