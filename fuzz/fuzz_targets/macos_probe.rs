//! The macOS probe's whole output (`probes::macos::parse`). Properties as for
//! the Linux probe: deterministic, nothing from text without nonce framing.
#![no_main]
use fleetsweep::probes::macos;
use fleetsweep_fuzz::{absent_nonce, nonce_for, records, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let nonce = nonce_for(&text);
    let obs = macos::parse(&text, &nonce);
    assert_eq!(
        obs,
        macos::parse(&text, &nonce),
        "parse is not deterministic"
    );

    let unframed = macos::parse(&text, &absent_nonce(&text));
    assert_eq!(
        records(&unframed),
        0,
        "records from text without nonce framing: {unframed:?}"
    );
});
