//! `fleetsim gen`: the files a sweep of a simulated fleet needs.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use super::keys::{client_key, host_key, openssh_private, openssh_public};
use super::{address, name, Profile, SimSpec};

/// Writes into `dir`: `sim.json` (the spec the server reads), `inventory.yaml`
/// (every host, with a `profile` label; with [`SimSpec::bastion`], every host
/// but the first with `jump:` the first), `known_hosts` (each host's own key)
/// and `client_key` (the scanner's identity; mode 0600).
pub fn generate(dir: &Path, spec: &SimSpec) -> Result<()> {
    spec.validate()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_path = dir.join("client_key");
    let known_hosts_path = dir.join("known_hosts");
    write(
        &dir.join("sim.json"),
        serde_json::to_string_pretty(spec)?.as_bytes(),
    )?;
    let client = client_key(spec.seed);
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&key_path);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&key_path)
            .with_context(|| format!("creating {}", key_path.display()))?;
        f.write_all(openssh_private(&client)?.as_bytes())?;
    }
    write(
        &dir.join("client_key.pub"),
        format!("{}\n", openssh_public(client.public_key())?).as_bytes(),
    )?;

    let port = spec.port;
    let mut inventory = String::with_capacity(spec.hosts * 80 + 512);
    let _ = write!(
        inventory,
        "# Simulated fleet written by `fleetsim gen` ({} hosts on 127.64.0.0/10).\n\
         defaults:\n  user: fsscan\n  port: {port}\n  identity_file: {}\n  known_hosts: {}\n  \
         connect_timeout: 20s\n  host_timeout: 2m\nhosts:\n",
        spec.hosts,
        key_path.display(),
        known_hosts_path.display()
    );
    let mut known_hosts = String::with_capacity(spec.hosts * 100);
    for i in 0..spec.hosts {
        let addr = address(i);
        let profile = match spec.host(i).profile {
            Profile::Clean => "clean",
            Profile::Kesl => "kesl",
            Profile::Large => "large",
        };
        let _ = writeln!(
            inventory,
            "  - name: {}\n    address: {addr}\n    labels: {{profile: {profile}}}",
            name(i)
        );
        if spec.bastion && i > 0 {
            let _ = writeln!(inventory, "    jump: {}", name(0));
        }
        let key = openssh_public(host_key(spec.seed, i).public_key())?;
        // Port 22 is written bare, as OpenSSH does.
        if port == 22 {
            let _ = writeln!(known_hosts, "{addr} {key}");
        } else {
            let _ = writeln!(known_hosts, "[{addr}]:{port} {key}");
        }
    }
    write(&dir.join("inventory.yaml"), inventory.as_bytes())?;
    write(&known_hosts_path, known_hosts.as_bytes())?;
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn writes_one_inventory_entry_and_one_key_line_per_host() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = SimSpec {
            hosts: 30,
            port: 2200,
            affected_every: 10,
            ..SimSpec::default()
        };
        generate(tmp.path(), &spec).unwrap();
        assert_eq!(SimSpec::load(tmp.path()).unwrap(), spec);
        let inv = std::fs::read_to_string(tmp.path().join("inventory.yaml")).unwrap();
        assert_eq!(inv.matches("  - name: sim-").count(), 30);
        assert!(inv.contains(
            "  - name: sim-000001\n    address: 127.64.0.2\n    labels: {profile: kesl}\n"
        ));
        assert!(inv.contains("  port: 2200\n"));
        let kh = std::fs::read_to_string(tmp.path().join("known_hosts")).unwrap();
        let lines: Vec<&str> = kh.lines().collect();
        assert_eq!(lines.len(), 30);
        assert!(lines[0].starts_with("[127.64.0.1]:2200 ssh-ed25519 "));
        assert_ne!(lines[0].split(' ').nth(2), lines[1].split(' ').nth(2));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tmp.path().join("client_key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
