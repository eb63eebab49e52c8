//! A banned product running inside a container on a scanned host is reported
//! as what it is: found in that container, with container guidance, never as
//! a host install with `apt-get purge` guidance.
//!
//! A real sshd test host (`Scenario::Containerised`): Debian 12 with nothing
//! Kaspersky on the host itself, and KESL's daemons running as root in their
//! own PID and mount namespaces, from a container filesystem mounted over
//! `/opt` in that mount namespace only. A host with KESL installed the usual
//! way (`Scenario::Kesl`) is swept with it, as the control that the same
//! daemons on the host itself still get the host's guidance.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::process::Command;

use fleetsweep_e2e::{Fleet, FleetSpec, Scenario};
use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

#[test]
fn kesl_inside_a_container_is_reported_with_its_container_and_container_guidance() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 249,
        hosts: vec![
            ("ctr-01".to_string(), Scenario::Containerised),
            ("kesl-01".to_string(), Scenario::Kesl),
        ],
    })
    .expect("starting the test fleet");
    let report = fleet.dir().join("report.yaml");
    let out = Command::new(FLEETSWEEP)
        .args(["scan", "-i"])
        .arg(fleet.inventory_path())
        .arg("--report")
        .arg(&report)
        .args(["--no-state", "--no-progress", "--host-timeout", "30s"])
        .env_remove("FLEETSWEEP_LOG")
        .output_within(RUN_LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let yaml = std::fs::read_to_string(&report).expect("report written");
    let context = format!("stdout:\n{stdout}\nstderr:\n{stderr}\nreport:\n{yaml}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "banned software found exits 1\n{context}"
    );
    let report: serde_json::Value = serde_saphyr::from_str(&yaml).expect("report parses");
    let host = |name: &str| {
        report["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .find(|h| h["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in the report\n{context}"))
            .clone()
    };

    let ctr = host("ctr-01");
    assert_eq!(ctr["outcome"], "scanned", "{ctr:#}");
    let findings = ctr["findings"].as_array().expect("findings");
    let kesl = findings
        .iter()
        .find(|f| f["rule"] == "kaspersky/kesl")
        .unwrap_or_else(|| panic!("KESL in the container not found: {ctr:#}"));
    assert_eq!(kesl["status"], "new", "{kesl:#}");
    assert_eq!(kesl["policy"], "ban", "{kesl:#}");
    // Which container: this one has no runtime in its cgroup, and the probe
    // runs without sudo, so root's namespace links are unreadable: the
    // namespace is named by its first process, the same one for both daemons.
    let containers: Vec<&str> = kesl["containers"]
        .as_array()
        .unwrap_or_else(|| panic!("no containers on the finding: {kesl:#}"))
        .iter()
        .map(|c| c.as_str().expect("container is a string"))
        .collect();
    assert_eq!(containers.len(), 1, "{kesl:#}");
    assert!(
        containers[0].starts_with("PID namespace of pid "),
        "the container is named by its PID namespace: {kesl:#}"
    );
    let evidence = kesl["evidence"].to_string();
    assert!(
        evidence.contains("(in container PID namespace of pid "),
        "each process's evidence says where it runs: {kesl:#}"
    );
    let remediation = kesl["remediation"].as_str().expect("remediation");
    assert!(
        remediation.contains("Seen only inside container(s) PID namespace of pid ")
            && remediation.contains("rebuild the image"),
        "container guidance: {remediation}"
    );
    assert!(
        !remediation.contains("apt-get purge"),
        "no host package guidance for a container: {remediation}"
    );
    // Nothing on the host itself: every finding (KESL, and wdserver, which
    // alone in the container names no product) is the container's, with the
    // same container and container guidance.
    for f in findings {
        assert_eq!(f["containers"].as_array().map(Vec::len), Some(1), "{f:#}");
        assert_eq!(f["containers"][0].as_str(), Some(containers[0]), "{f:#}");
        let r = f["remediation"].as_str().expect("remediation");
        assert!(
            r.contains("Seen only inside container(s)") && !r.contains("apt-get purge"),
            "{f:#}"
        );
    }

    // The control: the same daemons on the host itself are a host install.
    let host_kesl = host("kesl-01");
    let f = host_kesl["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "kaspersky/kesl")
        .unwrap_or_else(|| panic!("KESL on kesl-01 not found: {host_kesl:#}"))
        .clone();
    assert!(
        f["containers"].as_array().is_none_or(|c| c.is_empty()),
        "a host install names no container: {f:#}"
    );
    assert!(
        f["remediation"]
            .as_str()
            .expect("remediation")
            .contains("apt-get purge"),
        "a host install gets the host's guidance: {f:#}"
    );
}
