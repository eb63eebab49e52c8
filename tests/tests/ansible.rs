//! `fleetsweep report --format ansible` end to end with real ansible-core
//! (from PyPI, pinned, installed by scripts/setup into
//! /opt/fleetsweep-test/ansible): the real binary sweeps real sshd test
//! hosts, writes the removal playbook and its inventory, and
//! `ansible-playbook` checks, dry-runs and applies it over SSH with sudo.
//! The KESL host carries a real Debian package (Scenario::KeslDeb), so the
//! purge, the init script's stop and `update-rc.d` are the real tools'.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use fleetsweep_e2e::{e2e_dir, mutate, Fleet, FleetSpec, HostInfo, Scenario, PORT, USER};
use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};
use serde_json::Value;

const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");
const ANSIBLE: &str = "/opt/fleetsweep-test/ansible";
const KESL: &str = "kaspersky/kesl";
const KESL_DAEMON: &str = "/opt/kaspersky/kesl/libexec/";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn ansible_playbook() -> PathBuf {
    let p = Path::new(ANSIBLE).join("venv/bin/ansible-playbook");
    let ok = Command::new(&p)
        .arg("--version")
        .output()
        .map(|o| o.status.success() && text(&o.stdout).contains("core 2.19.14"))
        .unwrap_or(false);
    assert!(
        ok,
        "ansible-core 2.19.14 is needed at {}: run scripts/setup (it creates that venv with python3 -m venv and pip install ansible-core==2.19.14; needs python3-venv)",
        p.display()
    );
    p
}

fn fleetsweep(args: &[&str]) -> Output {
    Command::new(FLEETSWEEP)
        .args(args)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSWEEP_NOW")
        .output_within(RUN_LIMIT)
}

/// `fleetsweep scan` over `state`; returns (exit code, report).
fn scan(fleet: &Fleet, state: &Path, n: usize) -> (i32, Value) {
    let report = fleet.dir().join(format!("report-{n}.yaml"));
    let inv = fleet.inventory_path();
    let out = fleetsweep(&[
        "scan",
        "-i",
        inv.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--no-progress",
    ]);
    let yaml = std::fs::read_to_string(&report)
        .unwrap_or_else(|_| panic!("no report; stderr:\n{}", text(&out.stderr)));
    (
        out.status.code().unwrap_or(-1),
        serde_saphyr::from_str(&yaml).expect("report parses"),
    )
}

fn kesl_status(r: &Value, host: &str) -> Option<String> {
    r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == host)
        .unwrap()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == KESL)
        .map(|f| f["status"].as_str().unwrap().to_string())
}

/// Runs `ansible-playbook` with a private ANSIBLE_HOME and the test fleet's
/// SSH settings (port, user, key, known_hosts) as extra vars.
struct Ansible {
    bin: PathBuf,
    home: tempfile::TempDir,
    vars: PathBuf,
}

impl Ansible {
    fn new(fleet: &Fleet) -> Ansible {
        let bin = ansible_playbook();
        let home = tempfile::tempdir().unwrap();
        let vars = home.path().join("fleet-vars.json");
        let vars_json = serde_json::json!({
            "ansible_port": PORT,
            "ansible_user": USER,
            "ansible_ssh_private_key_file": fleet.client_key_path(),
            "ansible_ssh_common_args": format!(
                "-o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
                fleet.known_hosts_path().display()
            ),
            "ansible_python_interpreter": "/usr/bin/python3",
        });
        std::fs::write(&vars, vars_json.to_string()).unwrap();
        Ansible { bin, home, vars }
    }

    /// The hosts' temporary folder for Ansible (the login user's home is
    /// /nonexistent); every test host shares this machine's /tmp.
    fn remote_tmp() -> String {
        format!("/tmp/fleetsweep-ansible-{}", std::process::id())
    }

    fn run(&self, args: &[&str]) -> Output {
        let remote_tmp = Ansible::remote_tmp();
        Command::new(&self.bin)
            .args(args)
            .arg("-e")
            .arg(format!("@{}", self.vars.display()))
            .env("ANSIBLE_HOME", self.home.path())
            .env("ANSIBLE_LOCAL_TEMP", self.home.path().join("tmp"))
            .env("ANSIBLE_REMOTE_TMP", &remote_tmp)
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("ANSIBLE_STDOUT_CALLBACK", "default")
            .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
            .env_remove("SSH_AUTH_SOCK")
            .output()
            .expect("running ansible-playbook")
    }
}

impl Drop for Ansible {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(Ansible::remote_tmp());
    }
}

/// `ok=N changed=N ... failed=N` of `host` in the PLAY RECAP.
fn recap(stdout: &str, host: &str) -> (u32, u32, u32) {
    let line = stdout
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .find(|l| l.split_whitespace().next() == Some(host))
        .unwrap_or_else(|| panic!("no recap line for {host}:\n{stdout}"));
    let field = |k: &str| -> u32 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k}= in {line}"))
    };
    (field("ok"), field("changed"), field("failed"))
}

/// What `ansible-playbook` said of the task whose title contains `title`:
/// `ok`, `changed`, `skipping` or `fatal`.
fn task_result<'a>(stdout: &'a str, title: &str) -> &'a str {
    let mut lines = stdout
        .lines()
        .skip_while(|l| !(l.starts_with("TASK [") && l.contains(title)))
        .skip(1);
    lines
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no task {title} in:\n{stdout}"))
}

const STOP_TASK: &str = "stop and disable service kesl";
const PURGE_TASK: &str = "purge package kesl";

fn dpkg_status(host: &HostInfo) -> String {
    std::fs::read_to_string(host.dir().join("root/dpkg/status")).unwrap()
}

fn kesl_installed(host: &HostInfo) -> bool {
    dpkg_status(host)
        .split("\n\n")
        .any(|p| p.contains("Package: kesl\n") && p.contains("Status: install ok installed"))
}

#[test]
fn removal_playbook_purges_kesl_over_ssh_and_the_next_sweep_shows_it_remediated() {
    let t0 = Instant::now();
    let fleet = Fleet::start(FleetSpec {
        subnet: 251,
        hosts: vec![
            ("app-01".to_string(), Scenario::KeslDeb),
            ("web-01".to_string(), Scenario::Clean),
        ],
    })
    .expect("starting the test fleet");
    let app = fleet.host("app-01");
    assert!(
        kesl_installed(app),
        "the test host's dpkg did not install kesl:\n{}",
        std::fs::read_to_string(app.dir().join("dpkg-install.log")).unwrap_or_default()
    );
    assert_eq!(
        mutate::processes_in_host(app, KESL_DAEMON).unwrap().len(),
        2
    );

    let state = fleet.dir().join("state.db");
    let (code, first) = scan(&fleet, &state, 1);
    assert_eq!(code, 1, "an open ban fails the sweep");
    assert_eq!(kesl_status(&first, "app-01").as_deref(), Some("new"));

    let playbook = fleet.dir().join("remove.yml");
    let inventory = fleet.dir().join("inventory.yml");
    for (format, file) in [("ansible", &playbook), ("ansible-inventory", &inventory)] {
        let out = fleetsweep(&[
            "report",
            "--state",
            state.to_str().unwrap(),
            "--format",
            format,
            "-o",
            file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let yml = std::fs::read_to_string(&playbook).unwrap();
    assert!(yml.contains("hosts: !unsafe \"app-01\""), "{yml}");
    assert!(!yml.contains("web-01"), "a clean host gets no play:\n{yml}");
    for module in [
        "ansible.builtin.service_facts:",
        "ansible.builtin.service:",
        "ansible.builtin.apt:",
        "purge: true",
        "ansible.builtin.file:",
    ] {
        assert!(yml.contains(module), "{module} missing:\n{yml}");
    }
    let inv = std::fs::read_to_string(&inventory).unwrap();
    assert!(
        inv.contains(&format!("ansible_host: !unsafe \"{}\"", app.address())),
        "{inv}"
    );

    let ansible = Ansible::new(&fleet);
    let (pb, iv) = (playbook.to_str().unwrap(), inventory.to_str().unwrap());

    // 1. Syntax check.
    let out = ansible.run(&["-i", iv, pb, "--syntax-check"]);
    assert!(
        out.status.success(),
        "syntax check: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // 2. Check mode: reports changes, makes none.
    let status_before = dpkg_status(app);
    let out = ansible.run(&["-i", iv, pb, "--check"]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "check run:\n{stdout}{}",
        text(&out.stderr)
    );
    let (_, changed, failed) = recap(&stdout, "app-01");
    assert!(
        changed >= 3,
        "check mode shows the stop, purge and deletes:\n{stdout}"
    );
    assert_eq!(failed, 0);
    assert_eq!(task_result(&stdout, STOP_TASK), "changed", "{stdout}");
    assert_eq!(task_result(&stdout, PURGE_TASK), "changed", "{stdout}");
    assert_eq!(
        dpkg_status(app),
        status_before,
        "--check changed the dpkg database"
    );
    assert!(kesl_installed(app));
    assert_eq!(
        mutate::processes_in_host(app, KESL_DAEMON).unwrap().len(),
        2,
        "--check stopped the daemons"
    );
    assert!(app.dir().join("root/var_opt/kaspersky/kesl").exists());
    let (code, second) = scan(&fleet, &state, 2);
    assert_eq!(code, 1);
    assert_eq!(kesl_status(&second, "app-01").as_deref(), Some("open"));

    // 3. The real run: KESL stopped, disabled, purged, its folders gone.
    let out = ansible.run(&["-i", iv, pb]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "apply:\n{stdout}{}",
        text(&out.stderr)
    );
    let (_, changed, failed) = recap(&stdout, "app-01");
    assert!(changed >= 2, "{stdout}");
    assert_eq!(failed, 0);
    // The service task itself stopped the daemons (through the init
    // script), before the purge.
    assert_eq!(task_result(&stdout, STOP_TASK), "changed", "{stdout}");
    assert_eq!(task_result(&stdout, PURGE_TASK), "changed", "{stdout}");
    assert!(
        !dpkg_status(app).contains("Package: kesl\n"),
        "kesl still in the host's dpkg database:\n{}",
        dpkg_status(app)
    );
    assert_eq!(
        mutate::processes_in_host(app, KESL_DAEMON).unwrap(),
        Vec::<u32>::new(),
        "the KESL daemons still run"
    );
    let root = app.dir().join("root");
    for gone in [
        "opt/kaspersky",
        "var_opt/kaspersky",
        "etc_opt/kaspersky",
        "init.d/kesl",
        "rc2.d/S01kesl",
        "systemd/kesl.service",
    ] {
        assert!(!root.join(gone).exists(), "{gone} is still on the host");
    }

    // 4. Idempotent: a second run changes nothing.
    let out = ansible.run(&["-i", iv, pb]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "second apply:\n{stdout}{}",
        text(&out.stderr)
    );
    let (ok, changed, failed) = recap(&stdout, "app-01");
    assert_eq!((changed, failed), (0, 0), "{stdout}");
    assert!(ok >= 1);
    // The service is gone with its package: the task is skipped, not failed.
    assert_eq!(task_result(&stdout, STOP_TASK), "skipping", "{stdout}");
    assert_eq!(task_result(&stdout, PURGE_TASK), "ok", "{stdout}");

    // 5. The next sweep over the same store: remediated, and the sweep passes.
    let (code, third) = scan(&fleet, &state, 3);
    assert_eq!(
        kesl_status(&third, "app-01").as_deref(),
        Some("remediated"),
        "{}",
        serde_json::to_string_pretty(&third["hosts"]).unwrap()
    );
    assert_eq!(code, 0, "{third}");

    // And a playbook of the remediated sweep has nothing left to do.
    let out = fleetsweep(&[
        "report",
        "--state",
        state.to_str().unwrap(),
        "--format",
        "ansible",
    ]);
    let empty = text(&out.stdout);
    assert!(!empty.contains("hosts: !unsafe"), "{empty}");
    assert!(empty.contains("Nothing to remove"), "{empty}");

    hostile_names_stay_text(&fleet, &ansible, &third);
    eprintln!("ansible end to end: {:.1}s", t0.elapsed().as_secs_f64());
}

/// A report whose finding on `web-01` carries Jinja, YAML and shell in every
/// host-supplied field: the playbook still parses, runs in check mode on the
/// real host, and prints the text as it was — nothing templated, nothing run.
fn hostile_names_stay_text(fleet: &Fleet, ansible: &Ansible, report: &Value) {
    let marker = fleet.dir().join("templated-marker");
    let jinja = format!("{{{{ lookup('pipe', 'touch {}') }}}}", marker.display());
    let mut r = report.clone();
    let hosts = r["hosts"].as_array_mut().unwrap();
    let web = hosts.iter_mut().find(|h| h["name"] == "web-01").unwrap();
    web["findings"] = serde_json::json!([{
        "rule": "kaspersky/kesl",
        "vendor": "Kaspersky",
        "product": format!("KESL {jinja}"),
        "policy": "ban",
        "state": "installed",
        "status": "open",
        "version": "1",
        "first_seen": "2026-11-01T06:00:00Z",
        "effective": null,
        "deadline": null,
        "evidence": [
            {"kind": "package", "source": "dpkg", "value": format!("{jinja} 1.0")},
            {"kind": "package", "source": "dpkg", "value": "kesl\"\n- hosts: all\n  x: \u{2028}y 1"},
            {"kind": "service", "source": "systemd", "value": "$(touch /tmp/x);kesl.service (running)"},
            {"kind": "path", "value": "/opt/kaspersky/../../etc"},
            {"kind": "path", "value": format!("/opt/{jinja}")},
        ],
        "remediation": jinja,
    }]);
    let file = fleet.dir().join("hostile-report.yaml");
    std::fs::write(&file, serde_json::to_string(&r).unwrap()).unwrap();
    let playbook = fleet.dir().join("hostile.yml");
    let inventory = fleet.dir().join("hostile-inventory.yml");
    for (format, out_file) in [("ansible", &playbook), ("ansible-inventory", &inventory)] {
        let out = fleetsweep(&[
            "report",
            "--from",
            file.to_str().unwrap(),
            "--format",
            format,
            "-o",
            out_file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let yml = std::fs::read_to_string(&playbook).unwrap();
    // No module gets a hostile name: they all became notes.
    assert!(!yml.contains("ansible.builtin.apt:"), "{yml}");
    assert!(!yml.contains("ansible.builtin.service:"), "{yml}");
    assert!(!yml.contains("ansible.builtin.file:"), "{yml}");
    let (pb, iv) = (playbook.to_str().unwrap(), inventory.to_str().unwrap());
    let out = ansible.run(&["-i", iv, pb, "--limit", "web-01", "--check"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(!marker.exists(), "Ansible templated a host-supplied string");
    assert!(
        stdout.contains(&format!("package `{jinja} 1.0` has characters")),
        "the note shows the name as it was:\n{stdout}"
    );
    assert!(
        stdout.contains("PLAY [web-01: remove KESL {{ lookup("),
        "{stdout}"
    );
    assert!(
        stdout.contains("/opt/kaspersky/../../etc") && stdout.contains("not deleted"),
        "a folder outside the vendor folders is named, not deleted:\n{stdout}"
    );
    let (_, changed, failed) = recap(&stdout, "web-01");
    assert_eq!((changed, failed), (0, 0));
}

/// A Windows workstation (the recorded probe output of
/// tests/fixtures/windows, replayed by a stand-in powershell.exe through the
/// `local` transport) gives win_package tasks by MSI product code, and the
/// playbook passes ansible-playbook's syntax check with the ansible.windows
/// collection (installed by scripts/setup from the `ansible` package).
#[test]
fn windows_findings_become_win_package_tasks_by_product_code() {
    let bin = ansible_playbook();
    let collections = Path::new(ANSIBLE).join("collections");
    assert!(
        collections
            .join("ansible_collections/ansible/windows/MANIFEST.json")
            .exists(),
        "the ansible.windows collection is needed in {}: run scripts/setup",
        collections.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let ps = dir.path().join("bin/powershell.exe");
    std::fs::create_dir_all(ps.parent().unwrap()).unwrap();
    let json = e2e_dir().join("fixtures/windows/probe/workstation-kes.json");
    std::fs::write(&ps, format!("#!/bin/sh\ncat '{}'\n", json.display())).unwrap();
    std::fs::set_permissions(&ps, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let inv = dir.path().join("inv.yaml");
    std::fs::write(
        &inv,
        "hosts:\n  - name: winbox\n    transport: local\n    os: windows\n",
    )
    .unwrap();
    let report = dir.path().join("r.yaml");
    let path = format!(
        "{}:{}",
        ps.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
    );
    let out = Command::new(FLEETSWEEP)
        .args(["scan", "-i", inv.to_str().unwrap(), "--report"])
        .arg(&report)
        .args(["--no-state", "-q"])
        .env("PATH", path)
        .output_within(RUN_LIMIT);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let playbook = dir.path().join("remove.yml");
    let out = fleetsweep(&[
        "report",
        "--from",
        report.to_str().unwrap(),
        "--format",
        "ansible",
        "-o",
        playbook.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let yml = std::fs::read_to_string(&playbook).unwrap();
    for code in [
        "{9A017442-C1BC-4A6F-B2C7-8A1B2C3D4E5F}",
        "{2924BEDA-E0D7-4DAF-A224-50D2E0B12F5B}",
    ] {
        assert!(
            yml.contains(&format!("product_id: !unsafe \"{code}\"")),
            "no win_package task for {code}:\n{yml}"
        );
    }
    assert!(yml.contains("ansible.windows.win_package:"), "{yml}");
    assert!(
        !yml.contains("\n  become: true\n"),
        "Windows plays do not sudo:\n{yml}"
    );
    assert!(
        yml.contains("Kaspersky Security Center"),
        "Network Agent note:\n{yml}"
    );
    assert!(!yml.contains("7-Zip"), "{yml}");

    let home = tempfile::tempdir().unwrap();
    let out = Command::new(&bin)
        .args([
            "-i",
            "winbox,",
            playbook.to_str().unwrap(),
            "--syntax-check",
        ])
        .env("ANSIBLE_HOME", home.path())
        .env("ANSIBLE_COLLECTIONS_PATH", &collections)
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "syntax check: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Every Unicode scalar value a host could send, in a product name, reads
/// back exactly through Ansible's own YAML loader (YAML 1.1, libyaml): the
/// playbook's quoting holds for the parser that runs it, not just ours.
#[test]
fn every_character_reads_back_through_ansibles_yaml_loader() {
    use fleetsweep_exporters::formats::{render, Format};
    let python = Path::new(ANSIBLE).join("venv/bin/python");
    ansible_playbook();
    let all: String = (0..=0x10_FFFFu32).filter_map(char::from_u32).collect();
    let yaml_report = "report_version: 1\nsweep: {id: s, started: 2026-12-01T00:00:00Z, finished: 2026-12-01T00:00:01Z, scanner_version: x, catalogs: [], shard: null, complete: true}\n\
         summary: {hosts: {total: 1, scanned: 1, clean: 0, affected: 1, unreachable: 0, auth_failed: 0, host_key_rejected: 0, timed_out: 0, probe_failed: 0, interrupted: 0}, findings: {new: 1, open: 0, overdue: 0, remediated: 0, reinstalled: 0, excepted: 0, unverified: 0}}\n\
         hosts:\n- {name: app-01, address: a, labels: {}, outcome: scanned, error: null, os: {family: linux}, duration_seconds: 0.1, findings: [\
         {rule: kaspersky/kesl, vendor: Kaspersky, product: P, policy: ban, state: installed, status: new, version: null, first_seen: 2026-12-01T00:00:00Z, effective: null, deadline: null, evidence: [], remediation: null}]}\n";
    let mut report = fleetsweep_exporters::yaml::from_yaml(yaml_report).unwrap();
    report.hosts.to_mut()[0].findings[0].product = all.clone();
    let yml = render(Format::Ansible, &report, &[]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.yml");
    std::fs::write(&file, &yml).unwrap();
    let out = Command::new(&python)
        .arg("-c")
        .arg(
            "import sys, json\n\
             from ansible.parsing.yaml.loader import AnsibleLoader\n\
             with open(sys.argv[1], encoding='utf-8') as f:\n    plays = AnsibleLoader(f.read()).get_single_data()\n\
             print(json.dumps([len(plays), plays[0]['name'], plays[0]['hosts']]))",
        )
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0], 1);
    assert_eq!(v[2], "app-01");
    let name = v[1].as_str().unwrap();
    assert!(
        name == format!("app-01: remove {all}"),
        "a character changed on the way through Ansible's loader"
    );
}
