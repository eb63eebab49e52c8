//! Line splitting for the probe parsers, with the newline search done by
//! `memchr` (vectorised) rather than `str`'s char searcher: splitting the
//! probe's output into lines was a tenth of a sweep's instructions
//! (callgrind, 1,000 simulated hosts). Same results as `str::lines` and
//! `str::split_inclusive('\n')`; the field splitters below give the same as
//! `str::splitn` and `str::split_once` on one ASCII byte, with the search
//! inlined (the char searcher's per-call setup was another 5% of the
//! instructions, on fields a few bytes long).

/// `s.split_inclusive('\n')`: each line with its `\n`, the last without one
/// when `s` does not end in a newline; nothing for an empty `s`.
pub fn split_inclusive_lines(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest.as_bytes()).map_or(rest.len(), |i| i + 1);
        // `\n` is one byte, so the split is on a character boundary.
        let (line, tail) = rest.split_at(end);
        rest = tail;
        Some(line)
    })
}

/// `s.lines()`: lines without their `\n` or `\r\n`.
pub fn lines(s: &str) -> impl Iterator<Item = &str> {
    split_inclusive_lines(s).map(|line| {
        let Some(line) = line.strip_suffix('\n') else {
            return line;
        };
        line.strip_suffix('\r').unwrap_or(line)
    })
}

/// `s.splitn(n, sep as char)` for an ASCII `sep`: at most `n` fields, the
/// last one holding the rest of `s`.
pub fn splitn(s: &str, n: usize, sep: u8) -> impl Iterator<Item = &str> {
    debug_assert!(sep.is_ascii());
    let mut rest = Some(s);
    let mut left = n;
    std::iter::from_fn(move || {
        let r = rest?;
        left = left.checked_sub(1)?;
        let at = if left == 0 {
            None
        } else {
            r.bytes().position(|b| b == sep)
        };
        match at {
            // An ASCII byte is a whole character: both sides are on boundaries.
            Some(i) => {
                rest = Some(&r[i + 1..]);
                Some(&r[..i])
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `s.split_once(sep as char)` for an ASCII `sep`.
pub fn split_once(s: &str, sep: u8) -> Option<(&str, &str)> {
    debug_assert!(sep.is_ascii());
    let i = s.bytes().position(|b| b == sep)?;
    Some((&s[..i], &s[i + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_fields_as_std() {
        let cases = [
            "",
            "\t",
            "\t\t",
            "a",
            "a\t",
            "\ta",
            "ii \tbash\t5.2\tamd64\tDebian <x@debian.org>",
            "ii \tbash\t5.2\tamd64\tmaint\twith\ttabs",
            "é\tü\t日本\t\t",
        ];
        for s in cases {
            for n in 0..7 {
                assert_eq!(
                    splitn(s, n, b'\t').collect::<Vec<_>>(),
                    s.splitn(n, '\t').collect::<Vec<_>>(),
                    "{s:?} {n}"
                );
            }
            assert_eq!(split_once(s, b'\t'), s.split_once('\t'), "{s:?}");
        }
    }

    #[test]
    fn the_same_lines_as_std() {
        let cases = [
            "",
            "\n",
            "\n\n",
            "a",
            "a\n",
            "a\nb",
            "a\r\nb\r\n",
            "a\rb\r",
            "\r",
            "\r\n",
            "\r\r\n",
            "x\n\r\ny\n\n",
            "é\nü\r\n日本\n",
            "no newline at all, but long enough to cross a vector's width of bytes",
        ];
        let long = "pkg\tinstalled\t1.0\n".repeat(1000) + "tail";
        for s in cases.iter().copied().chain([long.as_str()]) {
            assert_eq!(
                lines(s).collect::<Vec<_>>(),
                s.lines().collect::<Vec<_>>(),
                "{s:?}"
            );
            assert_eq!(
                split_inclusive_lines(s).collect::<Vec<_>>(),
                s.split_inclusive('\n').collect::<Vec<_>>(),
                "{s:?}"
            );
        }
    }
}
