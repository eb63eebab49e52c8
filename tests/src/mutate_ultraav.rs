//! Installing UltraAV on a running test host, as Kaspersky's September 2024
//! update did on US machines: after `mutate::purge_kesl`, the next sweep sees
//! the successor where Kaspersky was before. UltraAV has no Linux package; the
//! dpkg entry here matches the test-only catalog
//! `tests/fixtures/catalog/ultraav-linux.yaml`.

use anyhow::{Context, Result};

use crate::HostInfo;

/// Adds an installed dpkg package `ultraav` to the host's package database
/// (replaced by rename, as dpkg does, so the probe never reads half a file).
pub fn install_ultraav(host: &HostInfo) -> Result<()> {
    let status_path = host.dir().join("root/dpkg/status");
    let mut status = std::fs::read_to_string(&status_path).context("reading dpkg status")?;
    if !status.ends_with('\n') {
        status.push('\n');
    }
    status.push_str(
        "\nPackage: ultraav\nStatus: install ok installed\nPriority: optional\nSection: misc\n\
         Maintainer: Pango Group <support@ultraav.test>\nArchitecture: amd64\n\
         Version: 1.0.4\nDescription: ultraav (test host package)\n",
    );
    let tmp = status_path.with_extension("fleetsweep-new");
    std::fs::write(&tmp, status).context("writing dpkg status")?;
    std::fs::rename(&tmp, &status_path).context("replacing dpkg status")?;
    Ok(())
}
