//! Info.plist and launchd job plists (XML or binary) from offline bundles:
//! `parse_info_plist` and `parse_launchd_plist`. Property: deterministic.
#![no_main]
use fleetsweep::probes::macos;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let app = macos::parse_info_plist(data);
    assert_eq!(app, macos::parse_info_plist(data), "not deterministic");
    let job = macos::parse_launchd_plist(data);
    if let Ok(job) = &job {
        assert!(
            !job.loaded && job.pid.is_none(),
            "a plist on disk is not a loaded job"
        );
    }
});
