//! The removal playbook (`report --format ansible`) and its inventory, read
//! back as YAML: which hosts and findings get tasks, how they are grouped,
//! and that hostile host strings stay data. tests/tests/ansible.rs runs the
//! playbooks with real ansible-core against test hosts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use fleetsweep_exporters::formats::{render, Format};
use fleetsweep_exporters::*;
use serde_json::Value;
use support::*;

fn playbook(r: &Report) -> (String, Vec<Value>) {
    let text = render(Format::Ansible, r, &[]).unwrap();
    let plays: Vec<Value> = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    (text, plays)
}

fn play<'a>(plays: &'a [Value], host: &str) -> Option<&'a Value> {
    plays.iter().find(|p| p["hosts"] == host)
}

/// (module, its arguments) of every task of a play, in order.
fn tasks(play: &Value) -> Vec<(String, Value)> {
    play["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let m = t.as_object().unwrap();
            let (k, v) = m
                .iter()
                .find(|(k, _)| k.starts_with("ansible."))
                .expect("a task with a module");
            (k.clone(), v.clone())
        })
        .collect()
}

#[test]
fn plays_cover_the_open_banned_findings_of_scanned_hosts_only() {
    let (text, plays) = playbook(&fleet());
    let hosts: Vec<&str> = plays.iter().map(|p| p["hosts"].as_str().unwrap()).collect();
    // Banned and new/open/overdue/reinstalled on a scanned host, with a plain
    // name. Not: excepted (lab-03), remediated (app-04), watched only
    // (home-08), unreachable (down-10), the hostile name (evil-09...).
    assert_eq!(hosts, ["db-02", "mail-07", "old-05", "web-01"], "{text}");
    for p in &plays {
        assert_eq!(p["become"], true);
        assert_eq!(p["gather_facts"], false);
    }
    // The header says what was left alone, and why.
    let header: Vec<&str> = text
        .lines()
        .take_while(|l| l.starts_with('#') || l.is_empty())
        .collect();
    let header = header.join("\n");
    assert!(header.contains("sweep sweep-0003"), "{header}");
    assert!(
        header.contains("lab-03: kaspersky/kesl (Kaspersky Endpoint Security for Linux): excepted"),
        "{header}"
    );
    assert!(
        header.contains("home-08: ultraav/ultraav (UltraAV): watched, not banned"),
        "{header}"
    );
    assert!(
        header.contains("db-02: ultraav/ultraav (UltraAV): watched"),
        "{header}"
    );
    assert!(
        header.contains("down-10: not scanned in this sweep (unreachable)"),
        "{header}"
    );
    assert!(header.contains("not a plain Ansible host name"), "{header}");
    assert!(
        !header.contains("app-04"),
        "remediated findings need nothing:\n{header}"
    );
}

#[test]
fn each_finding_becomes_module_tasks_from_its_evidence() {
    let (text, plays) = playbook(&fleet());
    let web = tasks(play(&plays, "web-01").unwrap());
    let modules: Vec<&str> = web.iter().map(|(m, _)| m.as_str()).collect();
    // Package first, then its leftover folder.
    assert_eq!(
        modules,
        ["ansible.builtin.apt", "ansible.builtin.file"],
        "{text}"
    );
    assert_eq!(web[0].1["name"], serde_json::json!(["kesl"]));
    assert_eq!(web[0].1["state"], "absent");
    assert_eq!(web[0].1["purge"], true);
    assert_eq!(web[1].1["path"], "/opt/kaspersky/kesl");
    assert_eq!(web[1].1["state"], "absent");
    // The Network Agent (remnants: a folder) gets its folder deleted and the
    // Kaspersky Security Center note; the watched UltraAV nothing.
    let db = tasks(play(&plays, "db-02").unwrap());
    assert_eq!(db[0].0, "ansible.builtin.file");
    assert_eq!(db[0].1["path"], "/opt/kaspersky/klnagent64");
    assert_eq!(db[1].0, "ansible.builtin.debug");
    assert!(db[1].1["msg"]
        .as_str()
        .unwrap()
        .contains("Kaspersky Security Center administration server"));
    assert_eq!(db.len(), 2, "{text}");
    assert!(!text.contains("/opt/ultraav"), "{text}");
}

fn linux_host(findings: Vec<Finding>) -> Report {
    let mut r = fleet();
    r.hosts = vec![host("app-01", Outcome::Scanned, findings)].into();
    r.normalize();
    r
}

#[test]
fn services_stop_first_packages_group_per_manager_and_folders_go_last() {
    let mut f = kesl(Status::New);
    f.evidence = vec![
        ev("package", Some("dpkg"), "kesl 12.1.0-1297"),
        ev("package", Some("dpkg"), "kesl-gui 12.1.0-1297"),
        ev("package", Some("rpm"), "klnagent64 15.1.0-20748"),
        ev("service", Some("systemd"), "kesl.service (running)"),
        ev("path", None, "/var/opt/kaspersky/kesl"),
        ev("path", None, "/usr/lib/kesl"),
        ev("process", None, "kesl: /opt/kaspersky/kesl/libexec/kesl"),
    ];
    let (text, plays) = playbook(&linux_host(vec![f]));
    assert_eq!(plays.len(), 1);
    let t = tasks(&plays[0]);
    let modules: Vec<&str> = t.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        modules,
        [
            "ansible.builtin.service_facts",
            "ansible.builtin.service",
            "ansible.builtin.apt",
            "ansible.builtin.package",
            "ansible.builtin.file",
            "ansible.builtin.debug",
        ],
        "{text}"
    );
    assert_eq!(t[1].1["name"], "kesl");
    assert_eq!(t[1].1["state"], "stopped");
    assert_eq!(t[1].1["enabled"], false);
    let when = plays[0]["tasks"][1]["when"].as_str().unwrap();
    assert!(when.contains("fleetsweep_service in"), "{when}");
    assert_eq!(plays[0]["tasks"][1]["vars"]["fleetsweep_service"], "kesl");
    assert_eq!(t[2].1["name"], serde_json::json!(["kesl", "kesl-gui"]));
    assert_eq!(t[3].1["name"], serde_json::json!(["klnagent64"]));
    assert!(t[3].1.get("purge").is_none());
    assert_eq!(t[4].1["path"], "/var/opt/kaspersky/kesl");
    assert!(t[5].1["msg"]
        .as_str()
        .unwrap()
        .contains("/usr/lib/kesl not deleted"));
}

#[test]
fn a_folder_holding_a_product_left_alone_is_not_deleted() {
    let mut banned = kesl(Status::Open);
    banned.rule = "kaspersky/unknown".into();
    banned.evidence = vec![
        ev("path", None, "/opt/kaspersky"),
        ev("path", None, "/opt/kaspersky/kfoo"),
    ];
    let mut excepted = kesl(Status::Excepted);
    excepted.exception = Some(ExceptionRef {
        source: "exceptions.yaml:3".into(),
        reason: "lab".into(),
        approver: "ciso@example.com".into(),
        expires: date("2027-03-31"),
    });
    let (text, plays) = playbook(&linux_host(vec![banned, excepted]));
    let t = tasks(&plays[0]);
    let files: Vec<&Value> = t
        .iter()
        .filter(|(m, _)| m == "ansible.builtin.file")
        .map(|(_, a)| &a["path"])
        .collect();
    assert_eq!(files, ["/opt/kaspersky/kfoo"], "{text}");
    assert!(
        text.contains("/opt/kaspersky is not deleted: it holds a product this playbook leaves"),
        "{text}"
    );
}

#[test]
fn hostile_strings_stay_data_and_never_reach_a_module() {
    let jinja = "{{ lookup('pipe', 'id') }}";
    let mut f = kesl(Status::New);
    f.product = format!("KESL {jinja}\n- hosts: all");
    f.evidence = vec![
        ev("package", Some("dpkg"), &format!("{jinja} 1")),
        ev("package", Some("dpkg"), &format!("kesl {MIXED}")),
        ev("service", Some("systemd"), "$(reboot).service (running)"),
        ev("path", None, &format!("/opt/{jinja}")),
    ];
    f.containers = vec![format!("docker {MIXED}")];
    let mut r = linux_host(vec![f]);
    r.hosts.to_mut()[0].address = MIXED.into();
    r.sweep.id = format!("id\n- hosts: all {jinja}");
    let (text, plays) = playbook(&r);
    assert_eq!(plays.len(), 1, "{text}");
    // Every string that holds host text is tagged !unsafe.
    for line in text
        .lines()
        .filter(|l| l.contains(jinja) || l.contains("reboot"))
    {
        assert!(
            line.trim_start().starts_with('#') || line.contains("!unsafe \""),
            "untagged: {line}"
        );
    }
    // The only module task is the package whose name is plain; the rest are notes.
    let t = tasks(&plays[0]);
    let modules: Vec<&str> = t.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        modules
            .iter()
            .filter(|m| **m == "ansible.builtin.apt")
            .count(),
        1,
        "{text}"
    );
    assert!(
        !modules.contains(&"ansible.builtin.service") && !modules.contains(&"ansible.builtin.file"),
        "{text}"
    );
    let apt = &t
        .iter()
        .find(|(m, _)| m == "ansible.builtin.apt")
        .unwrap()
        .1;
    assert_eq!(apt["name"], serde_json::json!(["kesl"]));
    // The text reads back exactly.
    assert_eq!(
        plays[0]["name"],
        format!("app-01: remove KESL {jinja}\n- hosts: all")
    );
    let msgs: Vec<&str> = t.iter().filter_map(|(_, a)| a["msg"].as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains(&format!("package `{jinja} 1`"))),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.contains(&format!("container(s) docker {MIXED}"))),
        "{msgs:?}"
    );
    // Comments stay comments: the sweep id's newline is shown, not kept.
    assert!(
        text.contains("# Removal playbook of fleetsweep sweep id\\u{a}- hosts: all"),
        "{text}"
    );

    let inv = render(Format::AnsibleInventory, &r, &[]).unwrap();
    let v: Value = serde_saphyr::from_str(&inv).unwrap();
    assert_eq!(
        v["fleetsweep_remove"]["hosts"]["app-01"]["ansible_host"],
        MIXED
    );
    assert!(inv.contains("ansible_host: !unsafe \""), "{inv}");
}

#[test]
fn nothing_to_remove_is_still_a_playbook() {
    let mut r = fleet();
    r.hosts
        .to_mut()
        .retain(|h| &*h.name == "clean-06" || &*h.name == "app-04");
    let (text, plays) = playbook(&r);
    assert_eq!(plays.len(), 1, "{text}");
    assert_eq!(plays[0]["hosts"], "localhost");
    assert!(plays[0]["tasks"][0]["ansible.builtin.debug"]["msg"]
        .as_str()
        .unwrap()
        .contains("no open finding"));
    let inv = render(Format::AnsibleInventory, &r, &[]).unwrap();
    let v: Value = serde_saphyr::from_str(&inv).unwrap();
    assert_eq!(v["fleetsweep_remove"]["hosts"], serde_json::json!({}));
}

#[test]
fn windows_msi_products_are_removed_by_product_code_without_sudo() {
    let mut f = klnagent(Status::New);
    f.evidence = vec![
        ev(
            "uninstall_entry",
            Some("registry"),
            "Kaspersky Security Center Network Agent 14.0.0.10902 (publisher AO Kaspersky Lab)",
        ),
        ev(
            "msi_product_code",
            Some("registry"),
            "{2924BEDA-E0D7-4DAF-A224-50D2E0B12F5B}",
        ),
        ev("msi_product_code", Some("registry"), "{not-a-guid}"),
        ev(
            "path",
            None,
            "C:/Program Files (x86)/Kaspersky Lab/NetworkAgent",
        ),
    ];
    let mut other = kesl(Status::New);
    other.rule = "kaspersky/kaspersky-windows".into();
    other.evidence = vec![ev(
        "uninstall_entry",
        Some("registry"),
        "Kaspersky Free 21.3 (publisher AO Kaspersky Lab)",
    )];
    let mut r = linux_host(vec![f, other]);
    r.hosts.to_mut()[0].os = Some(
        OsInfo {
            family: "windows".into(),
            name: Some("Microsoft Windows 10 Enterprise".into()),
            version: Some("10.0.19045".into()),
        }
        .into(),
    );
    let (text, plays) = playbook(&r);
    assert!(plays[0].get("become").is_none(), "{text}");
    let t = tasks(&plays[0]);
    let msi: Vec<&Value> = t
        .iter()
        .filter(|(m, _)| m == "ansible.windows.win_package")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(msi.len(), 1, "{text}");
    assert_eq!(
        msi[0]["product_id"],
        "{2924BEDA-E0D7-4DAF-A224-50D2E0B12F5B}"
    );
    assert_eq!(msi[0]["state"], "absent");
    assert_eq!(
        msi[0]["arguments"],
        "{{ fleetsweep_msi_arguments | default(omit) }}"
    );
    assert!(
        !text.contains("ansible.builtin.file"),
        "no file deletes on Windows:\n{text}"
    );
    let msgs: Vec<&str> = t.iter().filter_map(|(_, a)| a["msg"].as_str()).collect();
    assert!(msgs.iter().any(|m| m.contains("{not-a-guid}")), "{msgs:?}");
    assert!(
        msgs.iter()
            .any(|m| m.contains("Kaspersky Free 21.3") && m.contains("no MSI product code")),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("KLLOGIN")), "{msgs:?}");
}

#[test]
fn macos_findings_are_notes_for_a_person() {
    let mut r = linux_host(vec![kesl(Status::New)]);
    r.hosts.to_mut()[0].os = Some(
        OsInfo {
            family: "macos".into(),
            name: None,
            version: None,
        }
        .into(),
    );
    let (text, plays) = playbook(&r);
    let t = tasks(&plays[0]);
    assert_eq!(t.len(), 1, "{text}");
    assert_eq!(t[0].0, "ansible.builtin.debug");
    assert!(t[0].1["msg"]
        .as_str()
        .unwrap()
        .contains("Linux and Windows hosts only"));
}
