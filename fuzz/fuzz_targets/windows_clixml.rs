//! CLIXML (`Export-Clixml`) files of offline Windows bundles:
//! `clixml::{services, uninstall, operating_system}` on the same document.
//! Property: deterministic.
#![no_main]
use fleetsweep::probes::windows::clixml;
use fleetsweep_fuzz::text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let xml = text(data);
    let services = clixml::services(&xml);
    assert_eq!(services, clixml::services(&xml), "not deterministic");
    drop(clixml::uninstall(&xml));
    drop(clixml::operating_system(&xml));
});
