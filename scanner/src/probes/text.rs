//! Line splitting for the probe parsers, with the newline search done by
//! `memchr` (vectorised) rather than `str`'s char searcher: splitting the
//! probe's output into lines was a tenth of a sweep's instructions
//! (callgrind, 1,000 simulated hosts). Same results as `str::lines` and
//! `str::split_inclusive('\n')`.

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

#[cfg(test)]
mod tests {
    use super::*;

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
