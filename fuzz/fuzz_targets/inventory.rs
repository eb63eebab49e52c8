//! Inventory files (`inventory::Inventory::load`): fleetsweep's YAML and
//! Ansible inventories (INI and YAML), dialect detected from the text. The
//! loader only takes a path, so the input is written to scratch files (a
//! `.yaml` name and an extensionless Ansible-style `hosts`).
//! Properties: an error's file:line points inside the file; host names
//! are unique.
#![no_main]
use fleetsweep::inventory::{Inventory, LoadOptions};
use fleetsweep_fuzz::{check_diagnostic, scratch_file, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    for name in ["inventory.yaml", "hosts"] {
        let path = scratch_file(name, text.as_bytes());
        match Inventory::load(&path, &LoadOptions { ssh_config: None }) {
            Ok(inv) => {
                let mut names: Vec<&str> = inv.hosts.iter().map(|h| &*h.name).collect();
                names.sort_unstable();
                let all = names.len();
                names.dedup();
                assert_eq!(all, names.len(), "two hosts with one name");
            }
            Err(d) => check_diagnostic(&d, &path, &text),
        }
    }
});
