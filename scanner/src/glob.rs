//! Glob patterns from user files (catalog signatures, exceptions, `--limit`),
//! compiled in one place with bounds.
//!
//! globset turns a glob into a regular expression and panics when that
//! expression is too large or too deeply nested (200 nested `{a,` groups, a
//! hundred thousand `*`). A pattern past the bounds below is an error that
//! says so; a panic that gets through anyway becomes an error too.

use globset::{GlobBuilder, GlobMatcher};

/// Longest pattern accepted, in bytes (real catalog globs are under 200).
pub const MAX_LEN: usize = 4096;
/// Deepest `{a,{b,...}}` nesting accepted.
pub const MAX_NESTING: usize = 32;

/// How a pattern matches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `kaspersky*` matches `Kaspersky Endpoint Security`.
    pub case_insensitive: bool,
    /// `*` does not cross `/` (path globs).
    pub path: bool,
}

/// Compiles `pattern`; the error is one sentence naming the pattern.
pub fn compile(pattern: &str, opts: Options) -> Result<GlobMatcher, String> {
    let glob = parse(pattern, opts)?;
    std::panic::catch_unwind(|| glob.compile_matcher())
        .map_err(|_| format!("invalid glob `{}`: too complex to compile", shown(pattern)))
}

/// The pattern, cut for messages.
fn shown(pattern: &str) -> String {
    let head: String = pattern.chars().take(60).collect();
    if head.len() < pattern.len() {
        format!("{head}...")
    } else {
        head
    }
}

/// Checks `pattern` against the bounds and parses it, without building its
/// matcher (the costly part: a DFA per pattern).
fn parse(pattern: &str, opts: Options) -> Result<globset::Glob, String> {
    if pattern.len() > MAX_LEN {
        return Err(format!(
            "invalid glob `{}`: longer than {MAX_LEN} bytes",
            shown(pattern)
        ));
    }
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut escaped = false;
    for c in pattern.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(format!(
            "invalid glob `{}`: `{{...}}` groups nested {deepest} deep, more than {MAX_NESTING}",
            shown(pattern)
        ));
    }
    GlobBuilder::new(pattern)
        .case_insensitive(opts.case_insensitive)
        .literal_separator(opts.path)
        .backslash_escape(true)
        .build()
        .map_err(|e| {
            // globset repeats the whole pattern before its reason.
            let why = e.to_string();
            let why = why.rsplit(": ").next().unwrap_or(&why).to_string();
            format!("invalid glob `{}`: {why}", shown(pattern))
        })
}

/// How much of a pattern is checked when its file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Compiled once and the matcher dropped: any error is found now. For
    /// files users give.
    Compile,
    /// Bounds and syntax only: for the built-in catalog, whose every pattern
    /// a test compiles.
    Parse,
}

/// A glob checked when its file is read and compiled the first time an item
/// needs it. A catalog's 235 matchers take some 2.5 MB and 150 million
/// instructions to build (a dense DFA each), and the literal prefilter of
/// the matcher runs only the few whose literal an item holds: a sweep of a
/// fleet without the vendor's software builds almost none of them.
#[derive(Debug, Clone)]
pub struct LazyGlob {
    pattern: Box<str>,
    opts: Options,
    /// `None` when the pattern fails to compile after it passed the load-time
    /// check (a [`Check::Parse`] of a built-in pattern no test compiled):
    /// logged, and it matches nothing.
    matcher: std::sync::OnceLock<Option<GlobMatcher>>,
}

impl LazyGlob {
    pub fn new(pattern: &str, opts: Options, check: Check) -> Result<LazyGlob, String> {
        match check {
            Check::Compile => drop(compile(pattern, opts)?),
            Check::Parse => drop(parse(pattern, opts)?),
        }
        Ok(LazyGlob {
            pattern: pattern.into(),
            opts,
            matcher: std::sync::OnceLock::new(),
        })
    }

    /// The compiled matcher (built now if it was not), or the reason it
    /// cannot be built.
    pub fn compiled(&self) -> Result<&GlobMatcher, String> {
        self.matcher
            .get_or_init(|| match compile(&self.pattern, self.opts) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::error!("{e}: this pattern matches nothing");
                    None
                }
            })
            .as_ref()
            .ok_or_else(|| format!("invalid glob `{}`", shown(&self.pattern)))
    }

    pub fn is_match(&self, s: &str) -> bool {
        self.compiled().is_ok_and(|m| m.is_match(s))
    }

    pub fn is_match_candidate(&self, c: &globset::Candidate<'_>) -> bool {
        self.compiled().is_ok_and(|m| m.is_match_candidate(c))
    }

    /// Whether the matcher has been built (for tests and benchmarks).
    pub fn is_compiled(&self) -> bool {
        self.matcher.get().is_some()
    }
}

/// Shortest literal worth a prefilter: a pattern whose longest literal run is
/// shorter is tried on every item.
pub const MIN_LITERAL: usize = 3;

/// The longest run of plain characters that every string `pattern` matches
/// must contain, as written (a case-insensitive pattern matches it in any
/// ASCII case), or None when there is none of at least [`MIN_LITERAL`] bytes.
/// The matcher uses it to skip the patterns whose literal an item lacks
/// before running any of them.
///
/// Conservative: a run ends at every character with a meaning (`*`, `?`, `\`
/// and the character it escapes, `[...]` classes, `{...}` alternatives with
/// their commas) and at `/`, which `**/` can make optional.
///
/// ```
/// use fleetsweep::glob::required_literal;
/// assert_eq!(required_literal("kaspersky*"), Some("kaspersky"));
/// assert_eq!(required_literal("[Kk]aspersky {Endpoint,Free}*"), Some("aspersky "));
/// assert_eq!(required_literal("/opt/kaspersky/**/bin/*"), Some("kaspersky"));
/// assert_eq!(required_literal("k?s*"), None);
/// ```
pub fn required_literal(pattern: &str) -> Option<&str> {
    let b = pattern.as_bytes();
    let mut best: Option<(usize, usize)> = None;
    let mut run_start = 0;
    let mut i = 0;
    // Ends the current run at `end` and keeps it when it is the longest.
    let mut close = |start: usize, end: usize| {
        if end > start && best.is_none_or(|(s, e)| end - start > e - s) {
            best = Some((start, end));
        }
    };
    while i < b.len() {
        match b[i] {
            b'*' | b'?' | b'/' | b',' | b'}' | b']' => {
                close(run_start, i);
                i += 1;
            }
            b'\\' => {
                close(run_start, i);
                i += 2;
            }
            b'[' => {
                close(run_start, i);
                // `[!]...]`, `[^]...]`, `[]...]`: a `]` first in the class is a member.
                let mut j = i + 1;
                if matches!(b.get(j), Some(b'!' | b'^')) {
                    j += 1;
                }
                if b.get(j) == Some(&b']') {
                    j += 1;
                }
                while j < b.len() && b[j] != b']' {
                    j += 1;
                }
                i = j + 1;
            }
            b'{' => {
                close(run_start, i);
                let mut depth = 0usize;
                let mut j = i;
                while j < b.len() {
                    match b[j] {
                        b'\\' => j += 1,
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                i = j + 1;
            }
            _ => {
                i += 1;
                continue;
            }
        }
        run_start = i;
    }
    close(run_start, b.len());
    let (start, end) = best?;
    // Runs start and end next to ASCII bytes or the pattern's ends: whole characters.
    (end - start >= MIN_LITERAL)
        .then(|| pattern.get(start..end))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every string a pattern matches contains its required literal, and the
    /// literal never spans a character with a meaning.
    #[test]
    fn required_literals_are_what_every_match_contains() {
        let cases: &[(&str, Option<&str>)] = &[
            ("kaspersky*", Some("kaspersky")),
            ("*kaspersky*", Some("kaspersky")),
            (
                "Kaspersky Endpoint Security*",
                Some("Kaspersky Endpoint Security"),
            ),
            ("kes?", Some("kes")),
            ("k?s*", None),
            ("*", None),
            ("", None),
            ("ab", None),
            ("abc", Some("abc")),
            ("[Kk]aspersky", Some("aspersky")),
            ("[!]x]klnagent", Some("klnagent")),
            ("[]]kav", Some("kav")),
            ("{kes,kav}light", Some("light")),
            ("{a,{b,c}}kesl{x,y}", Some("kesl")),
            ("\\*literal\\*", Some("literal")),
            ("ka\\spersky", Some("persky")),
            ("/opt/kaspersky/**", Some("kaspersky")),
            ("**/kesl", Some("kesl")),
            ("a/**/b", None),
            ("klnagent,x", Some("klnagent")),
            ("café*", Some("café")),
        ];
        for (pattern, want) in cases {
            assert_eq!(required_literal(pattern), *want, "{pattern}");
        }
        // Checked against the matcher itself: a match always holds the literal.
        for (pattern, subject) in [
            ("**/kesl", "kesl"),
            ("/opt/**/kesl", "/opt/kesl"),
            ("{kes,kav}light", "kavlight"),
            ("[Kk]aspersky*", "Kaspersky Free"),
        ] {
            let m = compile(
                pattern,
                Options {
                    case_insensitive: false,
                    path: true,
                },
            )
            .unwrap();
            assert!(m.is_match(subject), "{pattern} {subject}");
            let lit = required_literal(pattern).unwrap();
            assert!(subject.contains(lit), "{pattern} {subject}");
        }
    }

    #[test]
    fn hostile_patterns_are_errors_not_panics() {
        let nested = "{a,".repeat(200);
        let closed = format!("{}{}", "{a,".repeat(200), "}".repeat(200));
        let stars = "*".repeat(100_000);
        for p in [nested.as_str(), closed.as_str(), stars.as_str()] {
            for path in [false, true] {
                let opts = Options {
                    case_insensitive: true,
                    path,
                };
                assert!(compile(p, opts).is_err(), "{}", &p[..10]);
            }
        }
        assert_eq!(
            compile(&closed, Options::default()).unwrap_err(),
            format!(
                "invalid glob `{}...`: `{{...}}` groups nested 200 deep, more than 32",
                &closed[..60]
            )
        );
        assert_eq!(
            compile("[a", Options::default()).unwrap_err(),
            "invalid glob `[a`: unclosed character class; missing ']'"
        );
    }

    #[test]
    fn a_lazy_glob_matches_what_the_compiled_one_matches() {
        // Host text is hostile: long, garbled, look-alike, separators where
        // a path glob must not cross them.
        let long = "kaspersky".repeat(10_000);
        let values = [
            "/opt/kaspersky/kesl",
            "/OPT/Kaspersky/kesl",
            "/opt/kaspersky/kesl/bin",
            "/opt/kasperskyx",
            "kaspersky\u{0}\u{feff}/\n",
            "\u{fffd}\u{fffd}/opt/kaspersky/",
            long.as_str(),
            "",
        ];
        for pattern in ["/opt/kaspersky/*", "*kaspersky*", "k?s*", "{a,b}*/[k]*"] {
            for (case_insensitive, path) in [(false, false), (true, false), (true, true)] {
                let opts = Options {
                    case_insensitive,
                    path,
                };
                let eager = compile(pattern, opts).unwrap();
                for check in [Check::Compile, Check::Parse] {
                    let lazy = LazyGlob::new(pattern, opts, check).unwrap();
                    assert!(!lazy.is_compiled());
                    for v in values {
                        assert_eq!(lazy.is_match(v), eager.is_match(v), "{pattern} {v:?}");
                    }
                    assert!(lazy.is_compiled());
                }
            }
        }
        // What fails the check fails it either way, with the same message.
        for check in [Check::Compile, Check::Parse] {
            assert_eq!(
                LazyGlob::new("[a", Options::default(), check).unwrap_err(),
                "invalid glob `[a`: unclosed character class; missing ']'"
            );
        }
    }

    #[test]
    fn patterns_within_the_bounds_compile() {
        let deep = format!("{}x{}", "{a,".repeat(32), "}".repeat(32));
        assert!(compile(&deep, Options::default()).is_ok());
        assert!(compile(&"*".repeat(MAX_LEN), Options::default()).is_ok());
        let m = compile(
            "/opt/kaspersky/*",
            Options {
                case_insensitive: true,
                path: true,
            },
        )
        .unwrap();
        assert!(m.is_match("/OPT/Kaspersky/kesl"));
        assert!(!m.is_match("/opt/kaspersky/kesl/bin"));
    }
}
