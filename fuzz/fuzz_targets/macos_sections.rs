//! The macOS section parsers and single-command outputs of offline bundles
//! (sw_vers, pkgutil, apps, launchctl, systemextensionsctl, kexts, browser
//! extensions, codesign), chosen by the first byte.
#![no_main]
use fleetsweep::probes::macos;
use fleetsweep_fuzz::{selector, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = selector(data) else {
        return;
    };
    let body = text(rest);
    let body = body.as_str();
    match which % 8 {
        0 => drop(macos::parse_sw_vers(body)),
        1 => drop(macos::parse_pkgutil(body)),
        2 => drop(macos::parse_apps(body)),
        3 => drop(macos::parse_launchctl_list(body)),
        4 => drop(macos::parse_systemextensionsctl(body)),
        5 => drop(macos::parse_kexts(body)),
        6 => drop(macos::parse_browser_extensions(body)),
        _ => drop(macos::parse_codesign(body)),
    }
});
