//! Exceptions files (`exceptions::Exceptions::parse`): approved, expiring
//! acceptances with host and rule globs. A file that loads is matched as a
//! sweep does. Properties: an error's file:line points inside the file; an
//! entry is either active or expired on a day, never both.
#![no_main]
use std::path::Path;

use fleetsweep::exceptions::Exceptions;
use fleetsweep_fuzz::{check_diagnostic, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let path = Path::new("fuzz-exceptions.yaml");
    let ex = match Exceptions::parse(path, &text) {
        Ok(ex) => ex,
        Err(d) => return check_diagnostic(&d, path, &text),
    };
    let labels = [("site".to_string(), "fra1".to_string())].into_iter().collect();
    let today = jiff::civil::date(2026, 6, 1);
    for (host, rule) in [
        ("web-01", "kaspersky-endpoint-security"),
        ("db-02.example.com", "x"),
    ] {
        let active = ex.active_match(host, &labels, rule, today);
        let expired = ex.expired_matches(host, &labels, rule, today);
        if let Some(i) = active {
            assert!(!expired.contains(&i), "entry {i} both active and expired");
        }
    }
    for e in &ex.entries {
        drop(e.usage(1));
        drop(e.reference());
    }
});
