//! Figures, not a test: what a host's known_hosts lookup costs in a large file.
//!
//! Writes a known_hosts file of N plain and N hashed lines (`ssh-keygen -H`
//! form, each with its own salt), loads it, then for HOSTS names does what a
//! connection does: `preferences` then `check_key`. Prints the time per host.
//!
//! cargo run --release -p fleetsweep --example known_hosts_lookup [N] [HOSTS]

use std::fmt::Write as _;
use std::time::Instant;

use base64::Engine;
use fleetsweep::transport::known_hosts::HostKeyPolicy;
use russh::keys::PublicKey;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDfu9peGCQP5cobAbKOcSUFD1q4N2X0x3powvYuRXxAq";

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
    let key = PublicKey::from_openssh(KEY)?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().join("known_hosts");
    let mut text = String::with_capacity(n * 2 * 140);
    for i in 0..n {
        let _ = writeln!(text, "[plain-{i}.example]:2222 {KEY}");
        let _ = writeln!(
            text,
            "{} {KEY}",
            hashed(&format!("[hashed-{i}.example]:2222"), i)
        );
    }
    std::fs::write(&path, text)?;

    let t = Instant::now();
    let policy = HostKeyPolicy::load(std::slice::from_ref(&path), None)?;
    println!("load: {n} plain + {n} hashed lines in {:.2?}", t.elapsed());

    for kind in ["plain", "hashed"] {
        let t = Instant::now();
        for h in 0..hosts {
            let host = format!("{kind}-{}.example", (h * 7919) % n);
            let _ = policy.preferences(&host, 2222);
            policy
                .check_key(&host, 2222, &key)
                .map_err(|e| anyhow::anyhow!("{host}: {e}"))?;
        }
        let per = t.elapsed() / u32::try_from(hosts)?;
        println!("{kind} host (preferences + check_key): {per:.2?} per host, {hosts} hosts");
    }
    Ok(())
}
