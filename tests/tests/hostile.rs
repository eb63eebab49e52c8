//! A hostile user on a scanned host cannot plant a finding.
//!
//! A real sshd test host (Debian 12, clean) where `nobody` runs a process whose
//! argv[0] is KESL's daemon path, one whose argv[0] carries a newline and a
//! forged `==> 1/cmdline <==` header, and one whose executable's path carries a
//! newline and a forged `ls -l` line naming pid 1 (`Scenario::Hostile`). A
//! clean look-alike host (`Scenario::Clean`) is swept with it; both must stay
//! clean, and the sweep exits 0.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::process::Command;
use std::time::Duration;

use fleetsweep_e2e::{output_within, Fleet, FleetSpec, Scenario};

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

#[test]
fn an_unprivileged_user_cannot_forge_a_finding() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 213,
        hosts: vec![
            ("hostile-01".to_string(), Scenario::Hostile),
            ("clean-01".to_string(), Scenario::Clean),
        ],
    })
    .expect("starting the test fleet");
    let report = fleet.dir().join("report.yaml");
    let out = output_within(
        Command::new(FLEETSWEEP)
            .args(["scan", "-i"])
            .arg(fleet.inventory_path())
            .arg("--report")
            .arg(&report)
            .args(["--no-state", "--no-progress", "--host-timeout", "30s"])
            .env_remove("FLEETSWEEP_LOG"),
        Duration::from_secs(300),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let yaml = std::fs::read_to_string(&report).expect("report written");
    assert_eq!(
        out.status.code(),
        Some(0),
        "a clean fleet exits 0\nstdout:\n{stdout}\nstderr:\n{stderr}\nreport:\n{yaml}"
    );
    let report: serde_json::Value = serde_saphyr::from_str(&yaml).expect("report parses");
    let hosts = report["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 2);
    for h in hosts {
        assert_eq!(h["outcome"], "scanned", "{h:#}");
        assert!(
            h["findings"].as_array().is_none_or(|f| f.is_empty()),
            "forged finding: {h:#}"
        );
    }
    // The forgeries really ran on the host (the scan saw nobody's processes):
    // the test would prove nothing if they had not started.
    let ps = Command::new("sh")
        .arg("-c")
        .arg("ps -u nobody -o args= 2>/dev/null")
        .output()
        .expect("ps");
    let ps = String::from_utf8_lossy(&ps.stdout);
    assert!(
        ps.contains("/opt/kaspersky/kesl/libexec/wdserver"),
        "the hostile processes are not running:\n{ps}"
    );
}
