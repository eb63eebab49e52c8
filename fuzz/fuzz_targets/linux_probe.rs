//! The Linux probe's whole output (`probes::linux::parse`): section framing,
//! then every section parser. Properties: deterministic; with a nonce that
//! occurs nowhere in the text, no record a finding could come from; never more
//! sections than marker lines.
#![no_main]
use fleetsweep::probes::linux;
use fleetsweep_fuzz::{absent_nonce, nonce_for, records, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let nonce = nonce_for(&text);

    let obs = linux::parse(&text, &nonce);
    assert_eq!(
        obs,
        linux::parse(&text, &nonce),
        "parse is not deterministic"
    );

    let prefix = format!("@@fleetsweep:{nonce}:");
    let markers = text.lines().filter(|l| l.starts_with(&prefix)).count();
    let split = linux::parse_sections(&text, &nonce);
    assert!(
        split.sections.len() <= markers,
        "more sections than marker lines"
    );

    let unframed = linux::parse(&text, &absent_nonce(&text));
    assert_eq!(
        records(&unframed),
        0,
        "records from text without nonce framing: {unframed:?}"
    );
});
