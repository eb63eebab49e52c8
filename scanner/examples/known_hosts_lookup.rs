//! Figures, not a test: what a host's known_hosts lookup costs in a large file.
//!
//! Writes a known_hosts file of N plain and N hashed lines (`ssh-keygen -H`
//! form, each with its own salt), each line with its own Ed25519 key, as a
//! real fleet's file has, loads it, then for HOSTS names does what a
//! connection does: `preferences` then `check_key` with the host's key.
//! Prints the time per host; then the same for hosts presenting a key the
//! file does not hold for them (the full pass a refused host pays for).
//!
//! cargo run --release -p fleetsweep --example known_hosts_lookup [N] [HOSTS]

use std::fmt::Write as _;
use std::time::Instant;

use base64::Engine;
use fleetsweep::transport::known_hosts::HostKeyPolicy;
use russh::keys::PublicKey;

/// The `i`-th host's key: `ssh-ed25519` and 32 bytes of its own.
fn key(i: usize) -> String {
    let point = ring::digest::digest(&ring::digest::SHA256, &i.to_le_bytes());
    let mut wire = Vec::with_capacity(51);
    for field in [&b"ssh-ed25519"[..], point.as_ref()] {
        wire.extend_from_slice(&u32::try_from(field.len()).unwrap_or(0).to_be_bytes());
        wire.extend_from_slice(field);
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("ssh-ed25519 {}", b64.encode(wire))
}

fn hashed(name: &str, seed: usize) -> String {
    let mut salt = [0u8; 20];
    salt[..8].copy_from_slice(&(seed as u64).to_le_bytes());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &salt);
    let tag = ring::hmac::sign(&key, name.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD;
    format!("|1|{}|{}", b64.encode(salt), b64.encode(tag.as_ref()))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100_000);
    let hosts: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("known_hosts");
    let mut text = String::with_capacity(n * 2 * 140);
    for i in 0..n {
        let _ = writeln!(text, "[plain-{i}.example]:2222 {}", key(2 * i));
        let _ = writeln!(
            text,
            "{} {}",
            hashed(&format!("[hashed-{i}.example]:2222"), i),
            key(2 * i + 1)
        );
    }
    std::fs::write(&path, text)?;

    let t = Instant::now();
    let policy = HostKeyPolicy::load(std::slice::from_ref(&path), None)?;
    println!("load: {n} plain + {n} hashed lines in {:.2?}", t.elapsed());

    for (kind, odd) in [("plain", 0), ("hashed", 1)] {
        for trusted in [true, false] {
            let t = Instant::now();
            for h in 0..hosts {
                let i = (h * 7919) % n;
                let host = format!("{kind}-{i}.example");
                // Its own key, or its neighbour's.
                let presented =
                    PublicKey::from_openssh(&key(2 * i + odd + usize::from(!trusted) * 2))?;
                let _ = policy.preferences(&host, 2222);
                let checked = policy.check_key(&host, 2222, &presented);
                if checked.is_ok() != trusted {
                    anyhow::bail!("{host}: {checked:?}");
                }
            }
            let per = t.elapsed() / u32::try_from(hosts)?;
            let what = if trusted {
                "its own key"
            } else {
                "another key (refused)"
            };
            println!("{kind} host presenting {what} (preferences + check_key): {per:.2?} per host, {hosts} hosts");
        }
    }
    Ok(())
}
