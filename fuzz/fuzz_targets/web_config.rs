//! The exporter-toolkit `web.yml` of `fleetsweep serve`
//! (`serve::WebConfig::load`): TLS settings, headers and bcrypt users. The
//! loader only takes a path, so the input is written to a scratch file.
//! Property: an error's file:line points inside the file.
#![no_main]
use fleetsweep::serve::WebConfig;
use fleetsweep_fuzz::{check_diagnostic, scratch_file, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let path = scratch_file("web.yml", text.as_bytes());
    if let Err(d) = WebConfig::load(&path) {
        check_diagnostic(&d, &path, &text);
    }
});
