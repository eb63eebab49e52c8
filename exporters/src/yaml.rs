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

/// Writes the YAML of [`to_yaml`], byte for byte, to `out` as it is
/// serialized: a 100,000-host report (some 30 MB) is never one string.
/// Give it a buffered writer. An error of `out` comes back as it was (so a
/// full disk is still said as one); a serializer error as
/// [`std::io::ErrorKind::Other`] carrying a [`YamlError`].
pub fn write_yaml(report: &Report, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut w = Keep { out, error: None };
    match serde_saphyr::to_io_writer(&mut w, report) {
        Ok(()) => Ok(()),
        Err(e) => Err(w
            .error
            .take()
            .unwrap_or_else(|| std::io::Error::other(YamlError::Serialize(e.to_string())))),
    }
}

/// A writer that keeps the first error of the one it wraps (the serializer
/// turns it into text).
struct Keep<'a> {
    out: &'a mut dyn std::io::Write,
    error: Option<std::io::Error>,
}

impl std::io::Write for Keep<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf).map_err(|e| self.keep(e))
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.write_all(buf).map_err(|e| self.keep(e))
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush().map_err(|e| self.keep(e))
    }
}

impl Keep<'_> {
    fn keep(&mut self, e: std::io::Error) -> std::io::Error {
        let kind = e.kind();
        self.error.get_or_insert(e);
        std::io::Error::from(kind)
    }
}

/// Reads a report back (used by tests and by later `report`/diff commands).
pub fn from_yaml(text: &str) -> Result<Report, YamlError> {
    serde_saphyr::from_str(text).map_err(|e| YamlError::Parse(e.to_string()))
}
