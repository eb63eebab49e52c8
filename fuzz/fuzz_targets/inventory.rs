//! Inventory files (`inventory::Inventory::load`): fleetsweep's YAML and
//! Ansible inventories (INI and YAML), dialect detected from the text. The
//! loader only takes a path, so the input is written to a scratch file; the
//! Ansible parsers also get it directly, whatever the detected dialect.
//! Properties: an error's file:line points inside the file; host names
//! are unique.
#![no_main]
use fleetsweep::inventory::{ansible, Inventory, LoadOptions};
use fleetsweep_fuzz::{check_diagnostic, scratch_file, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let path = scratch_file("inventory.yaml", text.as_bytes());
    match Inventory::load(&path, &LoadOptions { ssh_config: None }) {
        Ok(inv) => {
            let mut names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
            names.sort_unstable();
            let all = names.len();
            names.dedup();
            assert_eq!(all, names.len(), "two hosts with one name");
        }
        Err(d) => check_diagnostic(&d, &path, &text),
    }
    let _ = ansible::detect(&text);
    if let Err(d) = ansible::parse_yaml(&path, &text) {
        check_diagnostic(&d, &path, &text);
    }
    if let Err(d) = ansible::parse_ini(&path, &text) {
        check_diagnostic(&d, &path, &text);
    }
});
