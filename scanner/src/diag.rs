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

    /// Converts a YAML parse/shape error into a one-line diagnostic in the
    /// user's terms: what is wrong in their file and how to fix it, never the
    /// YAML library's API names.
    pub fn from_yaml(file: &Path, err: &serde_saphyr::Error) -> Self {
        let message = yaml_message(err).unwrap_or_else(|| library_message(err));
        match err.location() {
            Some(loc) if loc.line() > 0 => Diagnostic::at(file, loc, message),
            _ => Diagnostic::whole_file(file, message),
        }
    }
}

/// How many YAML nodes (scalars, lists, mappings) one configuration file may
/// hold. A host entry takes 5 to 40 nodes, so this admits inventories of
/// several hundred thousand hosts (the library default, 250,000, refused a
/// 50,000-host flow-style inventory) while bounding the memory a file of
/// one-character nodes could claim.
pub const YAML_MAX_NODES: usize = 8_000_000;

/// How many values aliases (`*name`) may copy in one file, all aliases
/// together. `<<: *defaults` on each of 100,000 hosts copies about a million;
/// an alias bomb ("billion laughs") copies billions and stops here.
pub const YAML_MAX_ALIAS_COPIES: usize = 4_000_000;

/// How deeply lists and mappings may nest. Configuration files nest a few
/// levels; `[[[[...]]]]` 100,000 deep is an error, never a stack overflow.
pub const YAML_MAX_DEPTH: usize = 64;

/// The YAML reading options every configuration file shares: merge keys
/// (`<<: *defaults`) expand as in Ansible, a duplicate key is an error, and
/// the budgets above bound pathological input.
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_nodes: YAML_MAX_NODES,
            max_events: 3 * YAML_MAX_NODES,
            max_aliases: YAML_MAX_NODES,
            max_anchors: YAML_MAX_NODES,
            max_merge_keys: YAML_MAX_NODES,
            max_depth: YAML_MAX_DEPTH,
            // Many aliases of one anchor (`<<: *defaults` on every host) is
            // the normal shape of an inventory; the copy limit bounds bombs.
            enforce_alias_anchor_ratio: false,
        },
        alias_limits: serde_saphyr::alias_limits! {
            max_total_replayed_events: YAML_MAX_ALIAS_COPIES,
        },
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::Error,
        merge_keys: serde_saphyr::options::MergeKeyPolicy::Merge,
    }
}

/// `bytes` as text, without a copy when they are UTF-8 (the usual case);
/// anything else with U+FFFD in place of what is not.
pub fn text_lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Reads one YAML configuration document with [`yaml_options`]; every error
/// is a [`Diagnostic`] in the user's terms.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, Diagnostic> {
    serde_saphyr::from_str_with_options(text, yaml_options())
        .map_err(|e| Diagnostic::from_yaml(file, &e))
}

/// The library's own one-line rendering, without its position suffix (we put
/// the position up front, compiler style).
fn library_message(err: &serde_saphyr::Error) -> String {
    let opts = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
    let mut message = err.without_snippet().render_with_options(opts);
    if let Some(i) = message.rfind(" at line ") {
        message.truncate(i);
    }
    message
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

const YAML_HINT: &str =
    "check the YAML syntax here (indentation with spaces, quotes and brackets closed)";

/// The errors whose library wording names its API or internals, said in the
/// user's terms; None for the ones whose own wording is already plain
/// (unknown field, missing field, wrong type, which we pass through).
fn yaml_message(err: &serde_saphyr::Error) -> Option<String> {
    use serde_saphyr::budget::BudgetBreach as B;
    use serde_saphyr::Error as E;
    let m = match err {
        E::WithSnippet { error, .. } => return yaml_message(error),
        E::AliasError { error, .. } => return yaml_message(error),
        E::DuplicateMappingKey { key, .. } => match key {
            Some(k) => format!(
                "key `{}` appears twice in the same mapping: keep one (YAML does not merge repeated keys)",
                shorten(k)
            ),
            None => "a key appears twice in the same mapping: keep one".into(),
        },
        E::MultipleDocuments { .. } => "the file holds several YAML documents (separated by `---`); \
             a configuration file is one document: remove the extra `---` or split the file"
            .into(),
        E::Eof { .. } => "the file ends in the middle of a value: is it cut short?".into(),
        E::InvalidUtf8Input => "file is not valid UTF-8".into(),
        E::InvalidScalar { ty, .. } => match *ty {
            "u8" => "expected a whole number from 0 to 255".into(),
            "u16" => "expected a whole number from 0 to 65535".into(),
            "u32" => "expected a whole number from 0 to 4294967295".into(),
            "u64" | "usize" => "expected a whole number from 0 to 18446744073709551615".into(),
            "bool" | "boolean" => "expected true or false".into(),
            "i8" | "i16" | "i32" | "i64" | "isize" => "expected a whole number".into(),
            "f32" | "f64" => "expected a number".into(),
            _ => return None,
        },
        E::Unexpected { expected, .. } => match *expected {
            "sequence start" => "expected a list here: `- item` lines, or `[a, b]`".into(),
            "mapping start" => {
                "expected a mapping here: `key: value` lines, or `{key: value}`".into()
            }
            "string scalar" => "expected a single value here, not a list or a mapping".into(),
            _ => return None,
        },
        // serde's wording for a value that may be one item or a list.
        E::Message { msg, .. } if msg.contains("did not match any variant of untagged enum OneOrMany") => {
            "expected a value or a list of values here".into()
        }
        E::Message { msg, .. }
            if msg.contains("did not match any variant of untagged enum DurationText") =>
        {
            "expected a duration here, like `30s`, `5m`, `1h30m` or `500ms`".into()
        }
        // Dates (`deadline:`, `expires:`) are read by jiff, which explains
        // its parser ("failed to parse two digit integer as month").
        E::Message { msg, .. } if is_date_error(msg) => {
            "invalid date: write it as YYYY-MM-DD with a real month and day, e.g. 2027-03-31"
                .into()
        }
        E::NullIntoString { .. } => "expected a value here, found nothing (null)".into(),
        E::UnknownAnchor { .. } => {
            "this alias (`*name`) refers to no anchor (`&name`) defined above it".into()
        }
        E::MergeValueNotMapOrSeqOfMaps { .. } => {
            "a merge key (`<<:`) takes a mapping or a list of mappings, e.g. `<<: *defaults`".into()
        }
        E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => format!(
            "aliases (`*name`) here expand to more than {YAML_MAX_ALIAS_COPIES} values: \
             the file refers to its anchors too many times (an alias bomb?)"
        ),
        E::AliasReplayStackDepthExceeded { .. } => {
            "aliases (`*name`) here nest too deeply (an alias bomb?)".into()
        }
        E::RecursiveReferencesRequireWeakTypes { .. } => {
            "this alias refers to the mapping or list that contains it".into()
        }
        E::Budget { breach, .. } => match breach {
            B::Nodes { .. } | B::Events { .. } => format!(
                "the file holds more than {YAML_MAX_NODES} YAML values, the limit for a \
                 configuration file; split it or check it is the right file"
            ),
            B::Depth { .. } => too_deep(),
            B::Aliases { .. } | B::Anchors { .. } | B::MergeKeys { .. } => format!(
                "the file uses more than {YAML_MAX_NODES} anchors, aliases or merge keys, \
                 the limit for a configuration file"
            ),
            B::AliasAnchorRatio { .. }
            | B::RecordedAnchorEvents { .. }
            | B::RecordedAnchorBytes { .. } => format!(
                "aliases (`*name`) here expand to more than {YAML_MAX_ALIAS_COPIES} values: \
                 the file refers to its anchors too many times (an alias bomb?)"
            ),
            B::Documents { .. } => "the file holds too many YAML documents (`---`); \
                 a configuration file is one document"
                .into(),
            B::ScalarBytes { .. } | B::InputBytes { .. } => format!(
                "file is larger than {} MiB, the limit for configuration files; is this the right file?",
                CONFIG_FILE_LIMIT / (1024 * 1024)
            ),
            _ => "the file is too large or too complex for a configuration file".into(),
        },
        // Syntax errors are terse ("did not find expected key"): say what to check.
        E::ExternalMessage { msg, .. } => scanner_message(msg)
            .unwrap_or_else(|| format!("{}: {YAML_HINT}", library_message(err))),
        _ => return None,
    };
    Some(m)
}

fn is_date_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    ["year", "month", "day", "date"]
        .iter()
        .any(|w| m.contains(w))
        && ["parse", "invalid", "not valid", "range"]
            .iter()
            .any(|w| m.contains(w))
}

fn too_deep() -> String {
    format!(
        "lists and mappings nest more than {YAML_MAX_DEPTH} levels deep here, \
         deeper than any configuration file needs: is a bracket left open?"
    )
}

/// The YAML scanner's messages (tabs, bad characters, nesting) in plain terms.
fn scanner_message(msg: &str) -> Option<String> {
    let lower = msg.to_ascii_lowercase();
    let m = if msg.contains("\\u{0}") {
        "a NUL byte here: configuration files are text; is this the right file?".into()
    } else if lower.starts_with("unexpected character") {
        format!("{msg}: a control character YAML does not allow in a file; remove it")
    } else if lower.contains("tab") {
        "a tab character here: YAML indents with spaces only; replace the tab with spaces".into()
    } else if lower.contains("recursion limit")
        || lower.contains("nesting limit")
        || lower.contains("nested")
    {
        too_deep()
    } else {
        return None;
    };
    Some(m)
}

/// True when `text` holds no YAML value: only blank lines, comments and
/// document markers (a file of comments is as empty as a file of nothing).
pub fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim_start_matches('\u{feff}').trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..."
    })
}

/// A user value quoted in a message, cut short when absurdly long.
pub fn shorten(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let head: String = s.chars().take(MAX).collect();
    format!("{head}…")
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
    // Room for the file as it is now (one more byte to see it grew past the
    // limit): read in place, not grown by doubling (a 9.5 MB known_hosts
    // would otherwise pass through blocks of 8 and 16 MB).
    let expected = if meta.is_file() { meta.len() } else { 0 };
    let mut bytes = Vec::with_capacity(usize::try_from(expected.saturating_add(1)).unwrap_or(0));
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
    fn budget_breaches_name_the_limit_not_the_library() {
        let mut opts = yaml_options();
        if let Some(b) = opts.budget.as_mut() {
            b.max_nodes = 10;
        }
        let err = serde_saphyr::from_str_with_options::<serde_json::Value>(
            "hosts: [a, b, c, d, e, f, g, h, i, j, k]\n",
            opts,
        )
        .unwrap_err();
        let d = Diagnostic::from_yaml(Path::new("f.yaml"), &err).to_string();
        assert!(
            d.ends_with(
                "the file holds more than 8000000 YAML values, the limit for a configuration \
                 file; split it or check it is the right file"
            ),
            "{d}"
        );
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
        assert_eq!(
            diag("name: [a\n"),
            "f.yaml:1:7: expected a single value here, not a list or a mapping"
        );
    }
}
