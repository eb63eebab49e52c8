//! `~/.ssh/config` (`transport::ssh_config::parse`): Host blocks with glob
//! patterns, then the lookup of the alias after the first NUL, and every
//! ProxyJump value. Properties: the lookup is deterministic and a port found
//! is never 0.
#![no_main]
use std::path::{Path, PathBuf};

use fleetsweep::transport::ssh_config;
use fleetsweep_fuzz::{split_nul, text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let (config, alias) = split_nul(&text, "web-01.example.com");
    let Ok(cfg) = ssh_config::parse(
        config,
        Path::new("ssh_config"),
        Some(PathBuf::from("/home/fuzz")),
    ) else {
        return;
    };
    let host = cfg.lookup(alias);
    assert_eq!(host, cfg.lookup(alias), "lookup is not deterministic");
    assert_ne!(host.port, Some(0), "port 0 accepted");
    if let Some(jump) = &host.proxy_jump {
        drop(ssh_config::parse_jump_spec(jump));
    }
});
