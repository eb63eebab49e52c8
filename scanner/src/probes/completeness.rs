//! Which probe sections were read, and what that allows the report to say.
//!
//! Why: fleetsweep's one promise is that a host that was not truly checked is
//! never reported clean. A parser that finds nothing in garbage returns an
//! empty list, and an empty package list looks exactly like a clean host. So
//! every parser also says how its section went ([`SectionState`]), and
//! [`judge`] turns that into the host's verdict against the family's
//! [required sections](super::registry::RequiredSection):
//!
//! - a required section (one of its `any_of`) not [`SectionState::Read`] and not
//!   [`SectionState::Partial`]: the host is `probe_failed`, the error names it;
//! - a required section only partly read, or any other section failed or cut:
//!   the host is scanned but *incomplete*, never counted clean.
//!
//! Offline bundles map their files to the same section names (`dpkg-query.txt`
//! answers for `dpkg`), so a live host and its bundle are judged alike.

use std::collections::BTreeMap;

use serde::Serialize;

use super::registry::RequiredSection;

/// How one section of the probe output went. Ordered from worst to best: when
/// two sources answer for the same section (a saved run and a single command
/// output of one bundle), the better one counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionState {
    /// Present but not usable: garbage, the wrong type, a failed command that
    /// printed nothing readable, or announced missing by the probe itself.
    Failed,
    /// Answered, but with nothing in it where something is always expected
    /// (an empty package database). Not evidence of absence.
    Empty,
    /// Read in part: cut short, or the command exited non-zero after printing
    /// some of its list. What was read is used; absence proves nothing.
    Partial,
    /// Read and parsed.
    Read,
}

/// A section's state and, unless it was read, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SectionResult {
    pub state: SectionState,
    /// Why it is not [`SectionState::Read`] (bounded text, no host control characters).
    pub reason: Option<String>,
}

/// Every section a host's probe (or bundle) answered, by section name.
pub type SectionMap = BTreeMap<String, SectionResult>;

/// Records `state` for `name`, keeping the better of two answers.
pub fn record(map: &mut SectionMap, name: &str, state: SectionState, reason: Option<String>) {
    let new = SectionResult { state, reason };
    match map.get(name) {
        Some(old) if old.state >= state => {}
        _ => {
            map.insert(name.to_string(), new);
        }
    }
}

/// The state of a line-oriented section from what its parser made of it.
///
/// - `lines`: non-blank lines in the body; `parsed`: items the parser kept;
///   `rejects`: lines it could not understand.
/// - `empty_ok`: an empty body is a real answer (no kernel modules in a
///   container); otherwise empty is [`SectionState::Empty`].
///
/// Nothing parsed out of some lines, or more rejected lines than parsed items,
/// is [`SectionState::Failed`]: the section is garbage, and a list read out of
/// garbage would only look like a clean host.
///
/// ```
/// use fleetsweep::probes::completeness::{judge_lines, SectionState};
/// assert_eq!(judge_lines(500, 500, 0, false).0, SectionState::Read);
/// assert_eq!(judge_lines(0, 0, 0, false).0, SectionState::Empty);
/// assert_eq!(judge_lines(7, 0, 7, false).0, SectionState::Failed);
/// assert_eq!(judge_lines(10, 3, 7, false).0, SectionState::Failed);
/// ```
pub fn judge_lines(
    lines: usize,
    parsed: usize,
    rejects: usize,
    empty_ok: bool,
) -> (SectionState, Option<String>) {
    if lines == 0 {
        return if empty_ok {
            (SectionState::Read, None)
        } else {
            (SectionState::Empty, Some("empty".to_string()))
        };
    }
    if parsed == 0 {
        return (
            SectionState::Failed,
            Some(format!(
                "nothing could be read from its {lines} line{}",
                if lines == 1 { "" } else { "s" }
            )),
        );
    }
    if rejects > parsed {
        return (
            SectionState::Failed,
            Some(format!(
                "most of it is not understood ({rejects} of {lines} lines)"
            )),
        );
    }
    (SectionState::Read, None)
}

/// [`judge_lines`] over a section body. A `strict` parser reads one item a
/// line, so every line it did not keep counts as a reject; others (records of
/// several lines, headers) are judged on "nothing read out of something" only.
pub fn judge_body(
    body: &str,
    parsed: usize,
    strict: bool,
    empty_ok: bool,
) -> (SectionState, Option<String>) {
    let lines = count_lines(body);
    let rejects = if strict {
        lines.saturating_sub(parsed)
    } else {
        0
    };
    judge_lines(lines, parsed, rejects, empty_ok)
}

/// Non-blank lines of a body.
pub fn count_lines(body: &str) -> usize {
    crate::probes::text::lines(body)
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// A framed section's state after its content was judged: a section cut short
/// or whose command exited non-zero is at best [`SectionState::Partial`].
pub fn with_framing(
    (state, reason): (SectionState, Option<String>),
    complete: bool,
    rc: Option<i32>,
) -> (SectionState, Option<String>) {
    let problem = if !complete {
        Some("cut short (no end marker)".to_string())
    } else {
        rc.filter(|rc| *rc != 0)
            .map(|rc| format!("its command exited with status {rc}"))
    };
    match (problem, state) {
        (None, _) => (state, reason),
        (Some(p), SectionState::Read) => (SectionState::Partial, Some(p)),
        (Some(p), _) => (
            SectionState::Failed,
            Some(match reason {
                Some(r) => format!("{r}; {p}"),
                None => p,
            }),
        ),
    }
}

/// What the sections allow the report to say about a host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Required sections without a usable answer, as `what (section: reason)`:
    /// the host is `probe_failed`.
    pub missing: Vec<String>,
    /// Sections not fully read (`name: reason`): the host is incomplete.
    pub incomplete: Vec<String>,
}

/// Judges `sections` against `required`.
pub fn verdict(sections: &SectionMap, required: &[RequiredSection]) -> Verdict {
    let mut v = Verdict::default();
    let describe = |name: &str, r: &SectionResult| {
        format!(
            "{name}: {}",
            r.reason.as_deref().unwrap_or(match r.state {
                SectionState::Read => "read",
                SectionState::Partial => "read in part",
                SectionState::Empty => "empty",
                SectionState::Failed => "failed",
            })
        )
    };
    // Members of a required group that another member answered for: an empty
    // rpm database on a dpkg host is normal, not a gap.
    let mut covered: Vec<&str> = Vec::new();
    for r in required {
        let best = r
            .any_of
            .iter()
            .filter_map(|n| sections.get(*n).map(|s| (*n, s)))
            .max_by_key(|(_, s)| s.state);
        match best {
            Some((_, s)) if s.state == SectionState::Read => {
                covered.extend(r.any_of.iter().filter(|n| {
                    sections
                        .get(**n)
                        .is_some_and(|s| s.state == SectionState::Empty)
                }));
            }
            Some((_, s)) if s.state == SectionState::Partial => {}
            _ => {
                let why: Vec<String> = r
                    .any_of
                    .iter()
                    .map(|n| match sections.get(*n) {
                        Some(s) => describe(n, s),
                        None => format!("{n}: not in the output"),
                    })
                    .collect();
                v.missing.push(format!("{} ({})", r.what, why.join("; ")));
                covered.extend(r.any_of.iter());
            }
        }
    }
    for (name, s) in sections {
        if s.state != SectionState::Read && !covered.contains(&name.as_str()) {
            v.incomplete.push(describe(name, s));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use SectionState::*;

    const LINUX: &[RequiredSection] = &[RequiredSection {
        what: "a package database",
        any_of: &["dpkg", "rpm", "apk"],
    }];

    fn map(entries: &[(&str, SectionState)]) -> SectionMap {
        let mut m = SectionMap::new();
        for (n, s) in entries {
            record(&mut m, n, *s, (*s != Read).then(|| format!("{s:?}")));
        }
        m
    }

    #[test]
    #[allow(clippy::type_complexity)] // table-driven test
    fn required_and_optional_sections() {
        let cases: &[(&[(&str, SectionState)], usize, &[&str])] = &[
            // (sections, missing, incomplete)
            (&[("dpkg", Read)], 0, &[]),
            (&[], 1, &[]),
            (&[("dpkg", Empty)], 1, &[]),
            (&[("dpkg", Failed), ("rpm", Failed)], 1, &[]),
            (&[("dpkg", Read), ("rpm", Empty)], 0, &[]),
            (&[("dpkg", Read), ("rpm", Failed)], 0, &["rpm: Failed"]),
            (&[("dpkg", Partial)], 0, &["dpkg: Partial"]),
            (
                &[("dpkg", Read), ("processes", Failed)],
                0,
                &["processes: Failed"],
            ),
            (
                &[("dpkg", Failed), ("processes", Partial)],
                1,
                &["processes: Partial"],
            ),
        ];
        for (sections, missing, incomplete) in cases {
            let v = verdict(&map(sections), LINUX);
            assert_eq!(v.missing.len(), *missing, "{sections:?}: {v:?}");
            assert_eq!(&v.incomplete, incomplete, "{sections:?}");
        }
        let v = verdict(&map(&[("dpkg", Empty)]), LINUX);
        assert_eq!(
            v.missing,
            ["a package database (dpkg: Empty; rpm: not in the output; apk: not in the output)"]
        );
    }

    #[test]
    fn the_better_answer_counts() {
        let mut m = SectionMap::new();
        record(&mut m, "dpkg", Failed, Some("garbage".into()));
        record(&mut m, "dpkg", Read, None);
        record(&mut m, "dpkg", Empty, Some("empty".into()));
        assert_eq!(m["dpkg"].state, Read);
    }

    #[test]
    fn framing_caps_the_state() {
        assert_eq!(with_framing((Read, None), true, Some(0)).0, Read);
        assert_eq!(with_framing((Read, None), false, None).0, Partial);
        assert_eq!(with_framing((Read, None), true, Some(2)).0, Partial);
        let (s, why) = with_framing((Empty, Some("empty".into())), true, Some(2));
        assert_eq!(s, Failed);
        assert_eq!(
            why.as_deref(),
            Some("empty; its command exited with status 2")
        );
    }
}
