//! Helpers shared by the fuzz targets in `fuzz_targets/` (docs/fuzzing.md).
//!
//! Every target feeds the fuzzer's bytes to one public parser of fleetsweep, the
//! way a sweep would: host output is decoded lossily (as the transports do), and
//! loaders that only take a path read a file rewritten for every input. Each
//! target also checks a cheap property: the parse is deterministic, and text
//! without the probe's nonce framing yields no record a finding could come from.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use fleetsweep::probes::Observations;

/// Host output as the transports hand it to the parsers: lossy UTF-8.
pub fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

/// Splits off the first byte, which targets use to choose among parsers.
pub fn selector(data: &[u8]) -> Option<(u8, &[u8])> {
    data.split_first().map(|(first, rest)| (*first, rest))
}

/// Splits at the first NUL: a second input for the same case (a host name to
/// look up, a rule id to match). Without a NUL the second part is `default`.
pub fn split_nul<'a>(text: &'a str, default: &'a str) -> (&'a str, &'a str) {
    text.split_once('\0').unwrap_or((text, default))
}

/// Records a finding could come from (everything but the OS and the warnings).
pub fn records(obs: &Observations) -> usize {
    obs.packages.len()
        + obs.services.len()
        + obs.processes.len()
        + obs.kernel_modules.len()
        + obs.paths.len()
        + obs.uninstall.len()
        + obs.windows_services.len()
        + obs.drivers.len()
        + obs.registry_keys.len()
        + obs.certificates.len()
        + obs.av_products.len()
        + obs.pkg_receipts.len()
        + obs.bundles.len()
        + obs.launchd.len()
        + obs.system_extensions.len()
        + obs.kexts.len()
        + obs.browser_extensions.len()
        + obs.signature_updates.len()
}

/// The nonce a probe run is parsed with: the one its markers carry (as the
/// offline reader finds it), else a fixed one.
pub fn nonce_for(text: &str) -> String {
    fleetsweep::probes::offline::nonce_of(text)
        .unwrap_or("fuzz")
        .to_string()
}

/// A nonce that does not occur in `text`: parsing with it must find nothing.
pub fn absent_nonce(text: &str) -> String {
    let mut nonce = String::from("Absent0");
    while text.contains(&format!("@@fleetsweep:{nonce}:")) {
        nonce.push('0');
    }
    nonce
}

/// A scratch directory for this fuzzing process, removed by nobody: the OS's
/// temp dir is cleaned with the machine, and libFuzzer exits with `_exit`.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fleetsweep-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("scratch dir {}: {e}", dir.display()));
        dir
    })
}

/// Writes `data` to `name` in the scratch directory and returns its path.
pub fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, data).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// Checks the file:line:column of an error about the file at `path`: inside
/// the file (line 0 means the whole file; one past the last line is where a
/// truncated document ends). CR and LF both count as line breaks, so CRLF
/// files get a generous bound.
pub fn check_diagnostic(d: &fleetsweep::diag::Diagnostic, path: &Path, text: &str) {
    if d.file != path {
        return;
    }
    let lines = text.split(['\n', '\r']).count() as u64;
    assert!(
        d.line <= lines + 1,
        "diagnostic line {} past the end of a {lines}-line file: {}",
        d.line,
        d.message
    );
    assert!(!d.message.is_empty(), "diagnostic without a message");
}
