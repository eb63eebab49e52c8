//! The Windows probe's JSON document (`probes::windows::parse`), plus the
//! helpers that normalise what it reports (registry keys, paths, Kaspersky
//! dates). Properties: deterministic; no `{` means no records.
#![no_main]
use fleetsweep::probes::windows;
use fleetsweep_fuzz::{records, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let obs = windows::parse(&text);
    assert_eq!(obs, windows::parse(&text), "parse is not deterministic");
    if !text.contains('{') {
        assert_eq!(records(&obs), 0, "records without a JSON document");
    }
    // Host-controlled strings, each as a whole and line by line.
    for s in std::iter::once(text.as_str()).chain(text.lines().take(64)) {
        drop(windows::normalize_key(s));
        drop(windows::normalize_path(s));
        let _ = windows::parse_kaspersky_date(s);
    }
});
