//! Diagnostics for user files: every error names file, line and column.
//!
//! Inventory, catalog and exception files are written by people; a precise
//! position plus a sentence on how to fix it saves them a guessing game.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error at a position in a user file (`file:line:column: message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based; 0 when the error concerns the whole file (unreadable, empty).
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl std::error::Error for Diagnostic {}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl Diagnostic {
    /// An error at `loc`; a value without a known position (built from
    /// another format) is reported against the whole file.
    pub fn at(file: &Path, loc: serde_saphyr::Location, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: loc.line(),
            column: loc.column(),
            message: message.into(),
        }
    }

    pub fn whole_file(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: 0,
            column: 0,
            message: message.into(),
        }
    }

    /// Converts a YAML parse/shape error into a one-line diagnostic.
    pub fn from_yaml(file: &Path, err: &serde_saphyr::Error) -> Self {
        let opts = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
        let mut message = err.without_snippet().render_with_options(opts);
        // The plain rendering ends with " at line L column C"; we print the
        // position up front instead, compiler style.
        if let Some(i) = message.rfind(" at line ") {
            message.truncate(i);
        }
        let mut message = message
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        // serde-saphyr says just "invalid u16" for out-of-range numbers.
        for (ty, max) in [("u16", "65535"), ("u32", "4294967295"), ("u8", "255")] {
            if message == format!("invalid {ty}") {
                message = format!("expected a whole number from 0 to {max}");
            }
        }
        match err.location() {
            Some(loc) if loc.line() > 0 => Diagnostic::at(file, loc, message),
            _ => Diagnostic::whole_file(file, message),
        }
    }
}

/// The largest configuration file fleetsweep reads (inventory, catalog,
/// exceptions, web.yml and the files they name). A 100,000-host inventory is
/// about 20 MiB; anything past this is a mistake (`/dev/zero`, a log file),
/// refused before it can exhaust memory.
pub const CONFIG_FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// Reads at most `limit` bytes of `path`; a longer file (or an endless device
/// such as `/dev/zero`) is an error that names the limit. Pipes (`-i
/// <(ansible-inventory --list)`) work: only the size is bounded.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read file: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read file: {e}"))?;
    if meta.is_dir() {
        return Err("is a directory, not a file".into());
    }
    let too_big = || {
        format!(
            "file is larger than {} MiB, the limit for configuration files; is this the right file?",
            limit / (1024 * 1024)
        )
    };
    if meta.is_file() && meta.len() > limit {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read file: {e}"))?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

/// The largest secret file read (a private key, a password or passphrase
/// file): real ones are a few KiB.
pub const SECRET_FILE_LIMIT: u64 = 1024 * 1024;

/// A small secret file as text (bounded; not UTF-8 is an error).
pub fn read_secret(path: &Path) -> Result<String, String> {
    let bytes = read_bounded(path, SECRET_FILE_LIMIT).map_err(|e| {
        e.strip_prefix("cannot read file: ")
            .map(str::to_string)
            .unwrap_or(e)
    })?;
    String::from_utf8(bytes).map_err(|_| "the file is not text (UTF-8)".to_string())
}

/// Reads a user file, with a diagnostic naming it when that fails.
pub fn read_file(path: &Path) -> Result<String, Diagnostic> {
    let bytes =
        read_bounded(path, CONFIG_FILE_LIMIT).map_err(|e| Diagnostic::whole_file(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let column = upto.iter().rev().take_while(|b| **b != b'\n').count() as u64 + 1;
        Diagnostic {
            file: path.to_path_buf(),
            line,
            column,
            message: "file is not valid UTF-8".into(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        port: Option<u16>,
    }

    fn diag(yaml: &str) -> String {
        let err = serde_saphyr::from_str::<Doc>(yaml).unwrap_err();
        Diagnostic::from_yaml(Path::new("f.yaml"), &err).to_string()
    }

    #[test]
    fn endless_and_oversized_files_are_refused_with_the_limit() {
        let err = read_bounded(Path::new("/dev/zero"), 1024 * 1024).unwrap_err();
        assert_eq!(
            err,
            "file is larger than 1 MiB, the limit for configuration files; is this the right file?"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024 + 1]).unwrap();
        assert!(read_bounded(&big, 2 * 1024 * 1024).is_err());
        assert_eq!(
            read_bounded(&big, 3 * 1024 * 1024).unwrap().len(),
            2 * 1024 * 1024 + 1
        );
        let e = read_file(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with(": is a directory, not a file"), "{e}");
        let e = read_file(&dir.path().join("none.yaml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("none.yaml: cannot read file: No such file"),
            "{e}"
        );
    }

    #[test]
    fn secret_files_are_bounded_text() {
        assert_eq!(
            read_secret(Path::new("/dev/zero")).unwrap_err(),
            "file is larger than 1 MiB, the limit for configuration files; is this the right file?"
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, b"s3cret\n").unwrap();
        assert_eq!(read_secret(&p).unwrap(), "s3cret\n");
        std::fs::write(&p, b"\xff\xfe").unwrap();
        assert_eq!(read_secret(&p).unwrap_err(), "the file is not text (UTF-8)");
        let e = read_secret(&dir.path().join("none")).unwrap_err();
        assert!(e.starts_with("No such file or directory"), "{e}");
    }

    #[test]
    fn yaml_errors_are_one_line_with_position() {
        assert_eq!(
            diag("name: a\nprot: 22\n"),
            "f.yaml:2:1: unknown field `prot`, expected one of name, port"
        );
        assert_eq!(
            diag("name: a\nport: 99999\n"),
            "f.yaml:2:7: expected a whole number from 0 to 65535"
        );
        assert_eq!(diag("name: [a\n"), "f.yaml:1:7: expected string scalar");
    }
}
