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
    let shown = || -> String {
        let head: String = pattern.chars().take(60).collect();
        if head.len() < pattern.len() {
            format!("{head}...")
        } else {
            head
        }
    };
    if pattern.len() > MAX_LEN {
        return Err(format!(
            "invalid glob `{}`: longer than {MAX_LEN} bytes",
            shown()
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
            shown()
        ));
    }
    let glob = GlobBuilder::new(pattern)
        .case_insensitive(opts.case_insensitive)
        .literal_separator(opts.path)
        .backslash_escape(true)
        .build()
        .map_err(|e| {
            // globset repeats the whole pattern before its reason.
            let why = e.to_string();
            let why = why.rsplit(": ").next().unwrap_or(&why).to_string();
            format!("invalid glob `{}`: {why}", shown())
        })?;
    std::panic::catch_unwind(|| glob.compile_matcher())
        .map_err(|_| format!("invalid glob `{}`: too complex to compile", shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
