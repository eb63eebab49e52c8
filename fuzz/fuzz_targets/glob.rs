//! Globs from user files and the command line (`glob::compile`, which the
//! catalog, exceptions and `--limit` use), plus the other command-line
//! values: `--limit`, `--shard`, durations. The first byte picks the parser
//! and the glob options; a glob that compiles is matched against the text
//! after the first NUL. Property: bounds hold (over-long or over-nested
//! patterns are refused).
#![no_main]
use fleetsweep::glob::{self, Options};
use fleetsweep::inventory::{self, limit};
use fleetsweep_fuzz::{selector, split_nul, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = selector(data) else {
        return;
    };
    let text = text(rest);
    let (pattern, subject) = split_nul(&text, "Kaspersky Endpoint Security for Windows");
    match which % 8 {
        0..=3 => {
            let opts = Options {
                case_insensitive: which & 1 != 0,
                path: which & 2 != 0,
            };
            if let Ok(m) = glob::compile(pattern, opts) {
                assert!(pattern.len() <= glob::MAX_LEN, "over-long pattern compiled");
                let _ = m.is_match(subject);
            }
        }
        4 | 5 => drop(limit::Limit::parse(pattern)),
        6 => {
            if let Ok(shard) = limit::Shard::parse(pattern) {
                assert!(1 <= shard.index && shard.index <= shard.count);
                let _ = shard.contains(subject);
            }
        }
        _ => drop(inventory::parse_duration(pattern)),
    }
});
