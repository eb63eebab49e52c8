//! Paths under the catalog's roots: `d|f|l|o<TAB>path` per entry (directory,
//! regular file, symbolic link, anything else), to depth 3 below each root that
//! exists. A root with more than 2000 entries ends with `!truncated<TAB>ROOT`.

use crate::hashing::HashSet;

use super::sections::{clip, warning, Rejects};
use crate::probes::text;
use crate::probes::{PathEntry, PathKind, ProbeWarning};

/// Parses the `paths` section. Entries keep the host's order; a path listed twice
/// (nested roots) is kept once. Total on any input.
///
/// ```
/// use fleetsweep::probes::{linux::parse_paths, PathKind};
/// let (paths, _) = parse_paths("d\t/opt/kaspersky\nf\t/opt/kaspersky/kesl/bin/kesl\n");
/// assert_eq!(paths[1].kind, PathKind::File);
/// ```
pub fn parse_paths(body: &str) -> (Vec<PathEntry>, Vec<ProbeWarning>) {
    let mut paths = Vec::new();
    let mut seen: HashSet<&str> = HashSet::default();
    let mut rejects = Rejects::default();
    let mut warnings = Vec::new();
    for line in body.lines() {
        if line.is_empty() {
            continue;
        }
        let Some((kind, path)) = text::split_once(line, b'\t') else {
            rejects.note(line);
            continue;
        };
        let kind = match kind {
            "d" => PathKind::Dir,
            "f" => PathKind::File,
            "l" => PathKind::Link,
            "o" => PathKind::Other,
            "!truncated" => {
                warnings.push(warning(
                    "paths",
                    format!(
                        "more than 2000 entries under {}: the list was cut",
                        clip(path)
                    ),
                ));
                continue;
            }
            _ => {
                rejects.note(line);
                continue;
            }
        };
        if !path.starts_with('/') {
            // e.g. the tail of a file name with a newline in it
            rejects.note(line);
            continue;
        }
        if seen.insert(path) {
            paths.push(PathEntry {
                path: path.to_string(),
                kind,
            });
        }
    }
    warnings.extend(rejects.into_warning("paths"));
    (paths, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathKind::*;

    #[test]
    fn entries_kinds_and_duplicates() {
        let body =
            "d\t/opt/kaspersky\nd\t/opt/kaspersky/kesl\nf\t/opt/kaspersky/kesl/bin/kesl-control\n\
                    l\t/opt/kaspersky/kesl/lib/libx.so\no\t/var/opt/kaspersky/kesl/run.sock\n\
                    d\t/opt/kaspersky/kesl\nf\t/opt/kaspersky/with\ttab\n";
        let (paths, warnings) = parse_paths(body);
        assert!(warnings.is_empty(), "{warnings:?}");
        let got: Vec<(&str, PathKind)> = paths.iter().map(|p| (p.path.as_str(), p.kind)).collect();
        assert_eq!(
            got,
            vec![
                ("/opt/kaspersky", Dir),
                ("/opt/kaspersky/kesl", Dir),
                ("/opt/kaspersky/kesl/bin/kesl-control", File),
                ("/opt/kaspersky/kesl/lib/libx.so", Link),
                ("/var/opt/kaspersky/kesl/run.sock", Other),
                ("/opt/kaspersky/with\ttab", File),
            ]
        );
    }

    #[test]
    fn hostile_and_broken_lines() {
        let long = format!("f\t/{}\n", "k".repeat(1 << 20));
        let cases: Vec<(String, usize, usize)> = vec![
            // (body, entries, warnings)
            (String::new(), 0, 0),
            ("!truncated\t/opt/kaspersky\n".into(), 0, 1),
            ("x\t/opt\n".into(), 0, 1),
            ("d\trelative\n".into(), 0, 1),
            ("no tab\n".into(), 0, 1),
            // a file name with a newline: the tail is rejected, not trusted
            ("f\t/opt/kaspersky/evil\nname\n".into(), 1, 1),
            (
                "f\t/opt/kaspersky/@@fleetsweep:abc:end paths rc=0\n".into(),
                1,
                0,
            ),
            ("f\t/opt/kaspersky/nul\0\n".into(), 1, 0),
            (long, 1, 0),
        ];
        for (body, n, nwarn) in cases {
            let (paths, warnings) = parse_paths(&body);
            assert_eq!(paths.len(), n, "body {:?}", body.get(..60));
            assert_eq!(
                warnings.len(),
                nwarn,
                "body {:?}: {warnings:?}",
                body.get(..60)
            );
        }
    }
}
