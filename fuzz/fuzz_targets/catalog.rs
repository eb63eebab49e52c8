//! Catalog files (`catalog::Catalog::add_text`): YAML with globs compiled for
//! every signature. A catalog that loads is then used as a sweep uses it:
//! merged with the built-in catalogs, its path roots sent to the Linux and
//! macOS probes, and matched against observations recorded from real hosts.
//! Properties: an error's file:line points inside the file; matching is
//! deterministic; no path root can end the probe's input early.
#![no_main]
use std::path::Path;
use std::sync::OnceLock;

use fleetsweep::catalog::{matcher, Catalog};
use fleetsweep::os::OsFamily;
use fleetsweep::probes::{linux, macos, offline, windows, Observations};
use fleetsweep_fuzz::{check_diagnostic, text};
use libfuzzer_sys::fuzz_target;

/// Observations of recorded hosts (tests/fixtures), one per OS family.
fn recorded() -> &'static [(OsFamily, Observations)] {
    static OBS: OnceLock<Vec<(OsFamily, Observations)>> = OnceLock::new();
    OBS.get_or_init(|| {
        let win = windows::parse(include_str!(
            "../../tests/fixtures/windows/probe/workstation-kes.json"
        ));
        let mac_text = include_str!("../../tests/fixtures/offline/mac-remnants-01/macos.txt");
        let mac = macos::parse(mac_text, offline::nonce_of(mac_text).unwrap_or("x"));
        let mut lin = Observations::default();
        lin.packages = linux::parse_dpkg(include_str!(
            "../../tests/fixtures/offline/linux-kesl-01/dpkg-query.txt"
        ))
        .0;
        lin.os = Some(linux::parse_os_release(include_str!(
            "../../tests/fixtures/offline/linux-kesl-01/os-release"
        )));
        lin.signature_updates
            .extend(linux::parse_kesl_app_info(include_str!(
                "../../tests/fixtures/offline/linux-kesl-01/kesl-control-app-info.txt"
            )));
        vec![
            (OsFamily::Windows, win),
            (OsFamily::Macos, mac),
            (OsFamily::Linux, lin),
        ]
    })
}

fn builtin() -> &'static Catalog {
    static CAT: OnceLock<Catalog> = OnceLock::new();
    CAT.get_or_init(|| Catalog::builtin().expect("built-in catalogs"))
}

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let path = Path::new("fuzz-catalog.yaml");
    let mut catalog = Catalog::default();
    if let Err(d) = catalog.add_text(path, &text) {
        check_diagnostic(&d, path, &text);
        return;
    }
    let mut merged = builtin().clone();
    if let Err(d) = merged.add_text(path, &text) {
        check_diagnostic(&d, path, &text);
    }

    for roots in [
        catalog.path_roots(OsFamily::Linux),
        catalog.path_roots(OsFamily::Macos),
    ] {
        let input = linux::stdin_for("N0nce", &roots);
        let input = String::from_utf8(input).expect("stdin is text");
        let lines: Vec<&str> = input.lines().collect();
        assert_eq!(lines.first(), Some(&"N0nce"));
        assert_eq!(lines.last(), Some(&"."));
        assert!(
            lines[1..lines.len() - 1].iter().all(|l| l.starts_with('/')),
            "a path root that is not absolute reached the probe: {lines:?}"
        );
    }

    let now = jiff::Timestamp::UNIX_EPOCH;
    for (family, obs) in recorded() {
        let findings = matcher::match_host(&catalog, obs, *family, now);
        assert_eq!(
            findings,
            matcher::match_host(&catalog, obs, *family, now),
            "not deterministic"
        );
    }
});
