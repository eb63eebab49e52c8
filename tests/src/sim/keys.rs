//! Keys of a simulated fleet: every host its own ed25519 host key, derived from
//! the fleet's seed and the host's index, so neither `gen` nor the server
//! stores 100,000 keys; and one client key, the scanner's.

use anyhow::{Context, Result};
use russh::keys::ssh_key::private::Ed25519Keypair;
use russh::keys::ssh_key::LineEnding;
use russh::keys::{PrivateKey, PublicKey};

/// Distinguishes the client key's seed from every host key's.
const CLIENT: u64 = u64::MAX;

fn derive(seed: u64, index: u64) -> PrivateKey {
    // Test keys, not secrets: a fixed layout of the fleet seed and the index.
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(b"fleetsim");
    bytes[16..24].copy_from_slice(&index.to_le_bytes());
    PrivateKey::from(Ed25519Keypair::from_seed(&bytes))
}

/// The host key of host `index`.
pub fn host_key(seed: u64, index: usize) -> PrivateKey {
    derive(seed, index as u64)
}

/// The scanner's key (publickey auth).
pub fn client_key(seed: u64) -> PrivateKey {
    derive(seed, CLIENT)
}

/// `ssh-ed25519 AAAA...`, as known_hosts and authorized_keys hold it.
pub fn openssh_public(key: &PublicKey) -> Result<String> {
    let mut text = key.to_openssh().context("encoding a public key")?;
    // No comment: `to_openssh` adds none for a key without one; trim anyway.
    text.truncate(text.trim_end().len());
    Ok(text)
}

/// The private key file the scanner reads (`identity_file:`).
pub fn openssh_private(key: &PrivateKey) -> Result<String> {
    Ok(key
        .to_openssh(LineEnding::LF)
        .context("encoding the client key")?
        .to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_per_host_and_reproducible() {
        let a = host_key(7, 0);
        assert_eq!(a.public_key(), host_key(7, 0).public_key());
        assert_ne!(a.public_key(), host_key(7, 1).public_key());
        assert_ne!(a.public_key(), host_key(8, 0).public_key());
        assert_ne!(client_key(7).public_key(), a.public_key());
        let text = openssh_public(a.public_key()).unwrap();
        assert!(text.starts_with("ssh-ed25519 AAAA"), "{text}");
        assert_eq!(text.split(' ').count(), 2);
        let private = openssh_private(&client_key(7)).unwrap();
        let back = PrivateKey::from_openssh(&private).unwrap();
        assert_eq!(back.public_key(), client_key(7).public_key());
    }
}
