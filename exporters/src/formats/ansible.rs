//! The removal playbook: `fleetsweep report --format ansible` writes an
//! Ansible playbook that removes each open finding of a banned product with
//! Ansible's standard modules, one play per host; `--format ansible-inventory`
//! writes an inventory naming those hosts with the addresses of the report.
//!
//! What goes in: hosts the sweep scanned, and on them the findings that fail
//! the sweep ([`Finding::fails`]: policy `ban`, status new, open, overdue or
//! reinstalled, no exception). Watched products, excepted findings and hosts
//! that were not scanned are listed in the header comment and left alone: a
//! watched product is reported, never removed behind the operator's back.
//!
//! What the tasks do, from the finding's evidence:
//! - Linux services (`service` evidence): `ansible.builtin.service` stopped
//!   and disabled, only where `service_facts` lists the service (a purged
//!   package takes its service along; the second run then skips the task);
//! - packages: `ansible.builtin.apt` `state: absent, purge: true` for dpkg
//!   (config files go too, or the next sweep reports remnants), and
//!   `ansible.builtin.package` `state: absent` for rpm and apk;
//! - leftover folders (`path` evidence) under the vendor folders of
//!   `/opt`, `/var/opt`, `/etc/opt` and `/var/log`: `ansible.builtin.file`
//!   `state: absent`, after the packages, and never a folder that holds a
//!   product this playbook does not remove (an excepted or watched one);
//! - Windows MSI products (`msi_product_code` evidence):
//!   `ansible.windows.win_package` `product_id`, `state: absent`, with
//!   `arguments` from `fleetsweep_msi_arguments` when set (the
//!   `KLLOGIN=… KLPASSWD=…` of a password-protected Kaspersky uninstall);
//! - what needs a person (a Network Agent managed by Kaspersky Security
//!   Center, macOS, a product seen in containers, a name that is not safe to
//!   hand to a package manager): an `ansible.builtin.debug` note.
//!
//! Every task is idempotent and supports check mode, so `--check` changes
//! nothing and a second run reports `changed=0`.
//!
//! Host text is untrusted twice over here: as YAML and as Jinja, which
//! Ansible applies to every string of a play. Every string that came from a
//! host is a double-quoted scalar with every character outside YAML's plain
//! printable set escaped ([`dq`]), tagged `!unsafe` so Ansible never
//! templates it, and comments carry it only made visible ([`comment`]).
//! Names handed to a module (package, service, path, product code, host)
//! must also match a strict form, or the playbook says so instead of acting.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::text::visible;
use crate::report::{Evidence, Finding, HostReport, Outcome, Policy, Report, Status};

/// Renders the playbook.
pub fn render(report: &Report) -> String {
    let hosts: Vec<Cow<'_, HostReport>> = report.hosts.iter().collect();
    let plan = Plan::of(&hosts);
    let mut s = String::new();
    header(&mut s, report, &plan);
    if plan.plays.is_empty() {
        // A playbook must hold a play: this one says there is nothing to do.
        s.push_str(
            "- name: Nothing to remove\n  hosts: localhost\n  gather_facts: false\n  tasks:\n",
        );
        s.push_str("    - name: Nothing to remove\n      ansible.builtin.debug:\n");
        let _ = writeln!(
            s,
            "        msg: {}",
            unsafe_dq(&format!(
                "sweep {}: no open finding of a banned product on a scanned host",
                report.sweep.id
            ))
        );
        return s;
    }
    for play in &plan.plays {
        play.write(&mut s, &report.sweep.id);
    }
    s
}

/// Renders an inventory (YAML) of the hosts the playbook targets: group
/// `fleetsweep_remove`, each host with `ansible_host` set to its address in
/// the report. The SSH port, user and key are the operator's to add.
pub fn render_inventory(report: &Report) -> String {
    let hosts: Vec<Cow<'_, HostReport>> = report.hosts.iter().collect();
    let plan = Plan::of(&hosts);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Ansible inventory of the removal playbook of sweep {}\n\
         # (`fleetsweep report --format ansible-inventory`): the hosts with something\n\
         # to remove, with their addresses from the report. Add the SSH port, user and\n\
         # key as for any inventory (group_vars/fleetsweep_remove.yml, or -u/-e on the\n\
         # command line).",
        comment(&report.sweep.id)
    );
    s.push_str("fleetsweep_remove:\n");
    if plan.plays.is_empty() {
        s.push_str("  hosts: {}\n");
        return s;
    }
    s.push_str("  hosts:\n");
    for play in &plan.plays {
        let _ = writeln!(s, "    {}:", dq(&play.host.name));
        let _ = writeln!(s, "      ansible_host: {}", unsafe_dq(&play.host.address));
    }
    s
}

/// What the playbook does and leaves alone, before any YAML is written.
struct Plan<'a> {
    plays: Vec<Play<'a>>,
    /// Header lines: hosts and findings left out, and why.
    left_out: Vec<String>,
}

impl<'a> Plan<'a> {
    fn of(hosts: &'a [Cow<'_, HostReport>]) -> Plan<'a> {
        let mut plays = Vec::new();
        let mut left_out = Vec::new();
        for h in hosts.iter().map(|h| &**h) {
            if h.outcome != Outcome::Scanned {
                if !h.findings.is_empty() {
                    left_out.push(format!(
                        "host {}: not scanned in this sweep ({}); sweep it again first",
                        h.name, h.outcome
                    ));
                }
                continue;
            }
            for f in &h.findings {
                if f.fails() {
                    continue;
                }
                let why = if f.exception.is_some() || f.status == Status::Excepted {
                    "excepted".to_string()
                } else if f.policy == Policy::Watch && f.status.is_open() {
                    "watched, not banned (remove it by hand where policy requires)".to_string()
                } else {
                    continue;
                };
                left_out.push(format!(
                    "host {}: {} ({}): {why}",
                    h.name, f.rule, f.product
                ));
            }
            let findings: Vec<&Finding> = h.findings.iter().filter(|f| f.fails()).collect();
            if findings.is_empty() {
                continue;
            }
            if !is_host_name(&h.name) {
                left_out.push(format!(
                    "host {}: its name is not a plain Ansible host name (letters, digits, `.`, `_`, `-`), so no play targets it; remove {} by hand",
                    h.name,
                    findings.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>().join(", ")
                ));
                continue;
            }
            plays.push(Play::of(h, findings));
        }
        Plan { plays, left_out }
    }
}

fn header(s: &mut String, report: &Report, plan: &Plan) {
    let sw = &report.sweep;
    let _ = writeln!(
        s,
        "# Removal playbook of fleetsweep sweep {}",
        comment(&sw.id)
    );
    let _ = writeln!(
        s,
        "# Sweep finished {}{}; written by `fleetsweep report --format ansible`.",
        sw.finished,
        if sw.complete {
            ""
        } else {
            " (incomplete: interrupted)"
        }
    );
    s.push_str(
        "#\n\
         # It removes the open findings of banned products (policy ban; status new,\n\
         # open, overdue or reinstalled; no exception) on the hosts the sweep scanned,\n\
         # one play per host, with standard modules. Watched products, excepted\n\
         # findings and hosts not scanned are left alone (listed below).\n\
         #\n\
         # Every task is idempotent and check-mode safe:\n\
         #   ansible-playbook -i INVENTORY THIS.yml --check   # shows what would change\n\
         #   ansible-playbook -i INVENTORY THIS.yml           # removes\n\
         # Plays target the report's host names: use an inventory with the same names\n\
         # (`fleetsweep report --format ansible-inventory` writes one). Linux tasks need\n\
         # root (become: true). The next `fleetsweep scan` shows each removed finding as\n\
         # `remediated`.\n",
    );
    if !plan.left_out.is_empty() {
        s.push_str("#\n# Left alone:\n");
        for l in &plan.left_out {
            let _ = writeln!(s, "#   - {}", comment(l));
        }
    }
    s.push('\n');
}

/// One host's play.
struct Play<'a> {
    host: &'a HostReport,
    family: Family,
    findings: Vec<&'a Finding>,
    /// Folders of products this playbook leaves on the host: never deleted,
    /// nor any folder above them.
    kept_paths: Vec<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Linux,
    Windows,
    Macos,
    Unknown,
}

impl<'a> Play<'a> {
    fn of(host: &'a HostReport, findings: Vec<&'a Finding>) -> Play<'a> {
        let family = match host.os.as_ref().map(|o| o.family.as_str()) {
            Some("linux") => Family::Linux,
            Some("windows") => Family::Windows,
            Some("macos") => Family::Macos,
            _ => Family::Unknown,
        };
        let kept_paths = host
            .findings
            .iter()
            .filter(|f| !f.fails())
            .flat_map(|f| f.evidence.iter())
            .filter(|e| e.kind == "path")
            .map(|e| e.value.as_str())
            .collect();
        Play {
            host,
            family,
            findings,
            kept_paths,
        }
    }

    fn write(&self, s: &mut String, sweep_id: &str) {
        let h = self.host;
        let products: Vec<&str> = self.findings.iter().map(|f| f.product.as_str()).collect();
        let _ = writeln!(
            s,
            "- name: {}",
            unsafe_dq(&format!("{}: remove {}", h.name, products.join(", ")))
        );
        let _ = writeln!(s, "  hosts: {}", unsafe_dq(&h.name));
        s.push_str("  gather_facts: false\n");
        // Windows hosts are reached as an administrator (WinRM); elsewhere
        // removal needs root.
        if self.family != Family::Windows {
            s.push_str("  become: true\n");
        }
        let _ = writeln!(
            s,
            "  # fleetsweep sweep {}; address in the report: {}",
            comment(sweep_id),
            comment(&h.address)
        );
        s.push_str("  tasks:\n");
        let tasks: Vec<Task> = self
            .findings
            .iter()
            .flat_map(|f| self.tasks_of(f))
            .collect();
        // Services first (a running daemon holds its files), then packages,
        // then folders the packages left; notes where they belong.
        if tasks.iter().any(|t| matches!(t, Task::Service { .. })) {
            s.push_str("    - name: Read the service list (for the service tasks below)\n      ansible.builtin.service_facts:\n");
        }
        for rank in 0..4 {
            for t in tasks.iter().filter(|t| t.rank() == rank) {
                t.write(s);
            }
        }
        s.push('\n');
    }

    fn tasks_of(&self, f: &'a Finding) -> Vec<Task> {
        let mut tasks = Vec::new();
        let label = format!("{} ({})", f.product, f.rule);
        match self.family {
            Family::Linux => self.linux_tasks(f, &label, &mut tasks),
            Family::Windows => windows_tasks(f, &label, &mut tasks),
            Family::Macos | Family::Unknown => tasks.push(Task::Note {
                title: format!("{label}: remove by hand"),
                msg: format!(
                    "{}: this playbook removes software on Linux and Windows hosts only. {}",
                    label,
                    guidance(f)
                ),
            }),
        }
        if is_network_agent(f) {
            tasks.push(Task::Note {
                title: format!("{label}: check Kaspersky Security Center"),
                msg: "Kaspersky Security Center Network Agent: if a Kaspersky Security Center administration server manages this host, delete the device there (or remove the agent with the server's remote uninstall task), or the server may install it again; `klmover` moves an agent to another administration server. On Windows, an agent protected by an uninstall password needs it: set fleetsweep_msi_arguments (for example KLLOGIN=... KLPASSWD=...)."
                    .to_string(),
            });
        }
        if !f.containers.is_empty() {
            tasks.push(Task::Note {
                title: format!("{label}: also seen in containers"),
                msg: format!(
                    "{label} was seen running in container(s) {}: this playbook changes the host only. Rebuild those images without it, redeploy, then sweep again.",
                    f.containers.join(", ")
                ),
            });
        }
        if tasks.is_empty() {
            tasks.push(Task::Note {
                title: format!("{label}: remove by hand"),
                msg: format!(
                    "{label}: no package, service or folder in the evidence that this playbook can act on. {}",
                    guidance(f)
                ),
            });
        }
        tasks
    }

    fn linux_tasks(&self, f: &Finding, label: &str, tasks: &mut Vec<Task>) {
        let mut packages: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        let mut outside: Vec<&str> = Vec::new();
        for e in &f.evidence {
            match &*e.kind {
                "service" => {
                    let unit = first_word(&e.value);
                    let name = unit.strip_suffix(".service").unwrap_or(unit);
                    if is_service_name(name) {
                        tasks.push(Task::Service {
                            title: format!("{label}: stop and disable service {name}"),
                            name: name.to_string(),
                        });
                    } else {
                        tasks.push(unsafe_name_note(label, "service", &e.value));
                    }
                }
                "package" => {
                    let name = first_word(&e.value);
                    let module = match e.source.as_deref() {
                        Some("dpkg") => "apt",
                        Some("rpm") | Some("apk") => "package",
                        _ => {
                            tasks.push(Task::Note {
                                title: format!("{label}: remove package by hand"),
                                msg: format!(
                                    "{label}: package {} was seen by {}, which this playbook does not drive: remove it with that tool.",
                                    e.value,
                                    e.source.as_deref().unwrap_or("an unknown package manager")
                                ),
                            });
                            continue;
                        }
                    };
                    if is_package_name(name) {
                        let list = packages.entry(module).or_default();
                        if !list.iter().any(|p| p == name) {
                            list.push(name.to_string());
                        }
                    } else {
                        tasks.push(unsafe_name_note(label, "package", &e.value));
                    }
                }
                "path" => {
                    let p = e.value.as_str();
                    if !is_removable_folder(p) {
                        outside.push(p);
                        continue;
                    }
                    if self.kept_paths.iter().any(|k| within(k, p)) {
                        tasks.push(Task::Note {
                            title: format!("{label}: folder left in place"),
                            msg: format!(
                                "{p} is not deleted: it holds a product this playbook leaves on the host (excepted or watched). Delete what belongs to {label} by hand."
                            ),
                        });
                        continue;
                    }
                    tasks.push(Task::Folder {
                        title: format!("{label}: delete leftover folder {p}"),
                        path: p.to_string(),
                    });
                }
                _ => {}
            }
        }
        if !outside.is_empty() {
            tasks.push(Task::Note {
                title: format!("{label}: paths not deleted"),
                msg: format!(
                    "{label}: {} not deleted by this playbook: it deletes only plain vendor folders under /opt, /var/opt, /etc/opt and /var/log. Check whether the package removal took them along (the next sweep shows it), and delete what is left by hand.",
                    outside.join(", ")
                ),
            });
        }
        for (module, names) in packages {
            tasks.push(Task::Packages {
                title: format!(
                    "{label}: {} package {}",
                    if module == "apt" { "purge" } else { "remove" },
                    names.join(", ")
                ),
                module,
                names,
            });
        }
    }
}

fn windows_tasks(f: &Finding, label: &str, tasks: &mut Vec<Task>) {
    let codes: Vec<&Evidence> = f
        .evidence
        .iter()
        .filter(|e| e.kind == "msi_product_code")
        .collect();
    for e in &codes {
        if is_guid(&e.value) {
            tasks.push(Task::Msi {
                title: format!("{label}: uninstall MSI product {}", e.value),
                product_id: e.value.clone(),
            });
        } else {
            tasks.push(unsafe_name_note(label, "MSI product code", &e.value));
        }
    }
    let entries: Vec<&Evidence> = f
        .evidence
        .iter()
        .filter(|e| e.kind == "uninstall_entry")
        .collect();
    if codes.is_empty() && !entries.is_empty() {
        let list: Vec<&str> = entries.iter().map(|e| e.value.as_str()).collect();
        tasks.push(Task::Note {
            title: format!("{label}: not an MSI package"),
            msg: format!(
                "{label}: {} has no MSI product code: run its own uninstaller (the UninstallString of its uninstall entry), or ansible.windows.win_package with provider registry and its key name. {}",
                list.join("; "),
                guidance(f)
            ),
        });
    }
}

fn unsafe_name_note(label: &str, what: &str, value: &str) -> Task {
    Task::Note {
        title: format!("{label}: {what} name not used"),
        msg: format!(
            "{label}: the {what} `{value}` has characters this playbook does not hand to a module; remove it by hand."
        ),
    }
}

/// The catalog's remediation text, or a general one.
fn guidance(f: &Finding) -> String {
    match &f.remediation {
        Some(r) => format!("Catalog guidance: {}", r.trim()),
        None => "Remove it with the vendor's uninstaller, then delete the paths in the evidence."
            .to_string(),
    }
}

fn is_network_agent(f: &Finding) -> bool {
    f.product.contains("Network Agent")
}

/// One task of a play.
enum Task {
    Service {
        title: String,
        name: String,
    },
    Packages {
        title: String,
        module: &'static str,
        names: Vec<String>,
    },
    Folder {
        title: String,
        path: String,
    },
    Msi {
        title: String,
        product_id: String,
    },
    Note {
        title: String,
        msg: String,
    },
}

impl Task {
    fn rank(&self) -> u8 {
        match self {
            Task::Service { .. } => 0,
            Task::Packages { .. } | Task::Msi { .. } => 1,
            Task::Folder { .. } => 2,
            Task::Note { .. } => 3,
        }
    }

    fn write(&self, s: &mut String) {
        match self {
            Task::Service { title, name } => {
                let _ = writeln!(s, "    - name: {}", unsafe_dq(title));
                s.push_str("      ansible.builtin.service:\n");
                let _ = writeln!(s, "        name: {}", unsafe_dq(name));
                s.push_str("        state: stopped\n        enabled: false\n");
                let _ = writeln!(
                    s,
                    "      vars:\n        fleetsweep_service: {}",
                    unsafe_dq(name)
                );
                // systemd lists `NAME.service`, SysV init `NAME`; once the
                // package is purged neither does, and the task is skipped
                // (service_facts sets no list at all on a host without services).
                s.push_str("      when: >-\n        fleetsweep_service in (ansible_facts.services | default({})) or\n        (fleetsweep_service ~ '.service') in (ansible_facts.services | default({}))\n");
            }
            Task::Packages {
                title,
                module,
                names,
            } => {
                let _ = writeln!(s, "    - name: {}", unsafe_dq(title));
                let _ = writeln!(s, "      ansible.builtin.{module}:");
                s.push_str("        name:\n");
                for n in names {
                    let _ = writeln!(s, "          - {}", unsafe_dq(n));
                }
                s.push_str("        state: absent\n");
                if *module == "apt" {
                    s.push_str("        purge: true\n");
                }
            }
            Task::Folder { title, path } => {
                let _ = writeln!(s, "    - name: {}", unsafe_dq(title));
                s.push_str("      ansible.builtin.file:\n");
                let _ = writeln!(s, "        path: {}", unsafe_dq(path));
                s.push_str("        state: absent\n");
            }
            Task::Msi { title, product_id } => {
                let _ = writeln!(s, "    - name: {}", unsafe_dq(title));
                s.push_str("      ansible.windows.win_package:\n");
                let _ = writeln!(s, "        product_id: {}", unsafe_dq(product_id));
                s.push_str("        state: absent\n");
                s.push_str(
                    "        arguments: \"{{ fleetsweep_msi_arguments | default(omit) }}\"\n",
                );
            }
            Task::Note { title, msg } => {
                let _ = writeln!(s, "    - name: {}", unsafe_dq(title));
                s.push_str("      ansible.builtin.debug:\n");
                let _ = writeln!(s, "        msg: {}", unsafe_dq(msg));
            }
        }
    }
}

/// The first word of an evidence value (`kesl 12.1.0-1297` → `kesl`).
fn first_word(v: &str) -> &str {
    v.split(' ').next().unwrap_or_default()
}

fn bounded(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max
}

/// A host name Ansible takes as one host, not a pattern (`:`, `,`, `!`, `&`,
/// `*`, `~`, `[` all mean something in `hosts:`).
fn is_host_name(s: &str) -> bool {
    bounded(s, 253)
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// dpkg, rpm and apk package names (with dpkg's `:arch`); no space, quote or
/// leading `-`, so a module's command line keeps it one argument.
fn is_package_name(s: &str) -> bool {
    bounded(s, 200)
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-' | b'~' | b':')
        })
}

/// systemd unit and SysV script names.
fn is_service_name(s: &str) -> bool {
    bounded(s, 200)
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b':'))
}

/// `{8-4-4-4-12 hex}`.
fn is_guid(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
        return false;
    };
    let groups: Vec<&str> = inner.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Folders the playbook deletes: a vendor's folder (or one below it) under
/// `/opt`, `/var/opt`, `/etc/opt` or `/var/log` — where packages put
/// their own trees (FHS) — written plainly (no `.`/`..`, no doubled or
/// trailing `/`, no glob or space). Never one of those roots itself.
fn is_removable_folder(p: &str) -> bool {
    const ROOTS: [&str; 4] = ["/opt/", "/var/opt/", "/etc/opt/", "/var/log/"];
    if !bounded(p, 1024)
        || !p
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'+' | b'-'))
    {
        return false;
    }
    let Some(rest) = ROOTS.iter().find_map(|r| p.strip_prefix(r)) else {
        return false;
    };
    !rest.is_empty()
        && rest
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// True when deleting folder `p` would delete `kept` (the same folder, or
/// one above it).
fn within(kept: &str, p: &str) -> bool {
    kept == p || kept.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
}

/// `!unsafe "..."`: Ansible keeps the value as it is, never templating it.
fn unsafe_dq(s: &str) -> String {
    format!("!unsafe {}", dq(s))
}

/// A YAML double-quoted scalar holding exactly `s`: `"` and `\` escaped,
/// and every character outside YAML's printable set, every line break
/// (including YAML 1.1's NEL, LS and PS, which PyYAML honours) and the BOM
/// written as an escape, so the scalar is always one line.
pub fn dq(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            ' '..='~' => o.push(c),
            '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..='\u{10ffff}'
                if !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') =>
            {
                o.push(c)
            }
            c if (c as u32) <= 0xff => {
                let _ = write!(o, "\\x{:02X}", c as u32);
            }
            c => {
                let _ = write!(o, "\\u{:04X}", c as u32);
            }
        }
    }
    o.push('"');
    o
}

/// Text for a `#` comment: one line, control and invisible characters (and
/// YAML 1.1's LS/PS line breaks) made visible.
fn comment(s: &str) -> String {
    visible(s)
        .replace('\u{2028}', "\\u{2028}")
        .replace('\u{2029}', "\\u{2029}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Every hard character survives a YAML parser as exactly itself, on one line.
    #[test]
    fn double_quoted_scalars_round_trip_every_character() {
        let hard = [
            "plain",
            "{{ lookup('pipe', 'id') }}",
            "quote \" backslash \\ tab \t newline \n cr \r nul \0 esc \u{1b}",
            "nel \u{85} ls \u{2028} ps \u{2029} bom \u{feff} del \u{7f} c1 \u{9f}",
            "bidi \u{202e}txt, emoji 🦀, cyrillic для, private \u{e000}, nonchar \u{fffe}",
            "- hosts: all\n  tasks: []\n# comment",
            "key: value, [list], {map}, &anchor *alias !tag %directive @ `",
        ];
        for s in hard {
            let q = dq(s);
            assert!(!q.contains('\n') && !q.contains('\r'), "{q}");
            assert!(!q.contains('\u{2028}') && !q.contains('\u{85}'), "{q}");
            let back: String = serde_saphyr::from_str(&q).unwrap();
            assert_eq!(back, s, "{q}");
            let tagged: serde_json::Value =
                serde_saphyr::from_str(&format!("k: {}", unsafe_dq(s))).unwrap();
            assert_eq!(tagged["k"], s);
        }
    }

    #[test]
    fn names_handed_to_modules_have_a_strict_form() {
        for ok in ["app-01", "web01.example.com", "db_2"] {
            assert!(is_host_name(ok), "{ok}");
        }
        for bad in [
            "", "web*", "a:b", "a,b", "!a", "a&b", "~a", "a[0]", "-a", "a b", "é",
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
        for ok in [
            "kesl",
            "klnagent64",
            "libstdc++6",
            "kesl:amd64",
            "a.b-c~d_e",
        ] {
            assert!(is_package_name(ok), "{ok}");
        }
        for bad in [
            "", "-o", "a b", "a'b", "{{x}}", "a;b", "$(id)", "a\nb", "a/b",
        ] {
            assert!(!is_package_name(bad), "{bad}");
        }
        assert!(is_service_name("getty@tty1") && is_service_name("kesl"));
        assert!(!is_service_name("$(id)") && !is_service_name("a b"));
        assert!(is_guid("{9A017442-C1BC-4A6F-B2C7-8A1B2C3D4E5F}"));
        for bad in [
            "9A017442-C1BC-4A6F-B2C7-8A1B2C3D4E5F",
            "{9A017442-C1BC-4A6F-B2C7-8A1B2C3D4E5G}",
            "{9A017442-C1BC-4A6F-B2C78A1B2C3D4E5F}",
            "{}",
        ] {
            assert!(!is_guid(bad), "{bad}");
        }
    }

    #[test]
    fn only_plain_vendor_folders_are_deleted() {
        for ok in [
            "/opt/kaspersky",
            "/opt/kaspersky/kesl",
            "/var/opt/kaspersky/kesl",
            "/etc/opt/kaspersky",
            "/var/log/kaspersky/kesl",
        ] {
            assert!(is_removable_folder(ok), "{ok}");
        }
        for bad in [
            "/opt",
            "/opt/",
            "/var/log",
            "/",
            "/usr/lib/kesl",
            "/etc",
            "/opt/kaspersky/../../etc",
            "/opt/./x",
            "/opt//x",
            "/opt/x/",
            "/opt/*",
            "/opt/a b",
            "opt/kaspersky",
            "/home/u/kaspersky",
            "/opt/{{x}}",
        ] {
            assert!(!is_removable_folder(bad), "{bad}");
        }
        assert!(within("/opt/kaspersky/kesl", "/opt/kaspersky"));
        assert!(within("/opt/kaspersky", "/opt/kaspersky"));
        assert!(!within("/opt/kaspersky-other", "/opt/kaspersky"));
        assert!(!within("/opt", "/opt/kaspersky"));
    }

    #[test]
    fn comments_stay_one_line() {
        let c = comment("a\nb\rc\u{85}d\u{2028}e\u{2029}f");
        assert!(
            !c.contains(['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}']),
            "{c}"
        );
    }
}
