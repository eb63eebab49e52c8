//! known_hosts files (`transport::known_hosts`): patterns, negations,
//! `[host]:port`, hashed names, `@revoked` and `@cert-authority` lines. The
//! loader only takes paths, so the input is written to a scratch file; the
//! host looked up follows the first NUL. Property: a key the file does not
//! hold is never accepted.
#![no_main]
use std::sync::OnceLock;

use fleetsweep::transport::known_hosts::HostKeyPolicy;
use fleetsweep_fuzz::{scratch_file, split_nul, text};
use libfuzzer_sys::fuzz_target;
use russh::keys::PublicKey;

/// A key no seed holds (from the library's own tests).
fn stranger() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PublicKey::from_openssh(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPTXtsiWCRFQF7pOvs0xntlSTXzg6DH/SToE9pVl6r8T",
        )
        .expect("fixed key")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = text(data);
    let (file, host) = split_nul(&text, "server.example.com");
    let path = scratch_file("known_hosts", file.as_bytes());
    let Ok(policy) = HostKeyPolicy::load(&[path], None) else {
        return;
    };
    for port in [22, 2222] {
        drop(policy.preferences(host, port));
        let checked = policy.check_key(host, port, stranger());
        if !file.contains("AAAAC3NzaC1lZDI1NTE5AAAAIPTXtsiWCRFQF7pOvs0xntlSTXzg6DH") {
            assert!(
                checked.is_err(),
                "a key absent from known_hosts was accepted"
            );
        }
    }
});
