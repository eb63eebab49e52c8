use std::path::{Path, PathBuf};

use super::*;
use crate::transport::SshEndpoint;

fn ssh_host(h: &Host) -> &SshHost {
    match &h.target {
        Target::Ssh(s) => s,
        other => panic!("{}: not an SSH host: {other:?}", h.name),
    }
}

/// An SSH host's target (bastions included).
fn ssh(h: &Host) -> &SshTarget {
    &ssh_host(h).ssh
}

fn endpoint(h: &Host) -> &SshEndpoint {
    &ssh(h).endpoint
}

fn winrm(h: &Host) -> Option<WinrmTarget> {
    match &h.target {
        Target::Winrm(w) => Some((*w.winrm).clone()),
        _ => None,
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/inventory")
        .join(name)
}

fn load(name: &str) -> Result<Inventory, String> {
    Inventory::load(&fixture(name), &LoadOptions::default()).map_err(|e| {
        // Report paths relative to the fixture dir so the table stays readable.
        let s = e.to_string();
        s.replace(&fixture("").display().to_string(), "")
    })
}

#[test]
fn resolves_defaults_groups_and_hosts() {
    let inv = load("valid-full.yaml").unwrap();
    let names: Vec<_> = inv.hosts.iter().map(|h| &*h.name).collect();
    assert_eq!(
        names,
        ["web-01", "db-01", "bastion-01", "legacy-01", "db-02"]
    );

    let web = &inv.hosts[0];
    assert_eq!(web.address(), "10.0.0.5");
    assert_eq!(&*endpoint(web).user, "scanner");
    assert_eq!(endpoint(web).port, 22);
    assert_eq!(
        *endpoint(web).identity_files,
        [PathBuf::from("/keys/id_ed25519")]
    );
    assert_eq!(web.labels.get("env").map(String::as_str), Some("prod"));
    assert_eq!(ssh_host(web).connect_timeout, Some(Duration::from_secs(5)));
    assert_eq!(web.host_timeout, Some(Duration::from_secs(120)));

    let db = &inv.hosts[1];
    assert_eq!(db.address(), "db-01", "address defaults to the name");
    assert_eq!(endpoint(db).port, 2200);
    assert_eq!(&*endpoint(db).user, "dbscan", "group vars beat defaults");
    assert_eq!(
        db.labels.get("tier").map(String::as_str),
        Some("primary"),
        "host labels beat group labels"
    );
    assert_eq!(*db.groups, ["dbs", "prod"]);
    assert_eq!(ssh(db).jumps.len(), 1);
    assert_eq!(
        &*ssh(db).jumps[0].address,
        "192.0.2.10",
        "a jump naming an inventory host uses its address"
    );
    assert_eq!(&*ssh(db).jumps[0].user, "jump");

    let legacy = &inv.hosts[3];
    assert!(ssh_host(legacy).options.sudo);
    assert_eq!(
        ssh_host(legacy).options.passphrase,
        Passphrase::Env("FLEETSWEEP_KEY_PASSPHRASE".into())
    );
    let hops: Vec<_> = ssh(legacy)
        .jumps
        .iter()
        .map(|j| format!("{}@{}:{}", j.user, j.address, j.port))
        .collect();
    assert_eq!(hops, ["ops@gw.example.net:2022", "jump@192.0.2.10:22"]);

    let db2 = &inv.hosts[4];
    assert_eq!(*db2.groups, ["dbs"], "a group-only name becomes a host");
    assert_eq!(
        inv.known_hosts_files,
        [PathBuf::from("/etc/fleetsweep/known_hosts")]
    );
}

/// Bad inventories an outside tester sent, each paired with the exact message
/// it must produce: the user's terms, file:line:column when there is a
/// position, and how to fix it (blackbox_exporter's `invalid-*.yml` style).
#[test]
#[rustfmt::skip]
fn bad_inventories_give_exact_messages() {
    let cases = [
        ("invalid-address-too-long.yaml", "invalid-address-too-long.yaml:2:11: host `web-01`: address `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…` is 300 bytes long, over the limit of 253 (the longest DNS name): check `address:`"),
        ("invalid-ansible-port.ini", "invalid-ansible-port.ini: host `web-01`: ansible_port `99999` is not a port number: write a whole number from 0 to 65535"),
        ("invalid-ansible-port.yaml", "invalid-ansible-port.yaml: host `web-01`: ansible_port `ssh` is not a port number: write a whole number from 0 to 65535"),
        ("invalid-ansible-yaml-tab.yaml", "invalid-ansible-yaml-tab.yaml:3:2: a tab character here: YAML indents with spaces only; replace the tab with spaces"),
        ("invalid-bad-indent.yaml", "invalid-bad-indent.yaml:3:4: while parsing a block collection, did not find expected '-' indicator: check the YAML syntax here (indentation with spaces, quotes and brackets closed)"),
        ("invalid-duplicate-host-key.yaml", "invalid-duplicate-host-key.yaml:4:5: key `port` appears twice in the same mapping: keep one (YAML does not merge repeated keys)"),
        ("invalid-duplicate-key.yaml", "invalid-duplicate-key.yaml:3:1: key `defaults` appears twice in the same mapping: keep one (YAML does not merge repeated keys)"),
        ("invalid-duration-huge.yaml", "invalid-duration-huge.yaml:2:17: invalid duration `99999999999999999999s`: write it like `30s`, `5m`, `1h30m` or `500ms`"),
        ("invalid-empty-name.yaml", "invalid-empty-name.yaml:2:11: host name is empty"),
        ("invalid-empty.yaml", "invalid-empty.yaml: the inventory is empty: list hosts under `hosts:` (see `fleetsweep scan --help`)"),
        ("invalid-group-hosts-map.yaml", "invalid-group-hosts-map.yaml:3:12: expected a list here: `- item` lines, or `[a, b]`"),
        ("invalid-hosts-not-list.yaml", "invalid-hosts-not-list.yaml:2:3: expected a list here: `- item` lines, or `[a, b]`"),
        ("invalid-hosts-scalar.yaml", "invalid-hosts-scalar.yaml:1:8: expected a list here: `- item` lines, or `[a, b]`"),
        ("invalid-identity-number.yaml", "invalid-identity-number.yaml:3:20: expected a value or a list of values here"),
        ("invalid-jump-unknown.yaml", "invalid-jump-unknown.yaml:3:11: invalid jump `bastion:99999`: bad port \"99999\" in \"bastion:99999\""),
        ("invalid-labels-list.yaml", "invalid-labels-list.yaml:3:13: expected a mapping here: `key: value` lines, or `{key: value}`"),
        ("invalid-merge-scalar.yaml", "invalid-merge-scalar.yaml:3:9: a merge key (`<<:`) takes a mapping or a list of mappings, e.g. `<<: *defaults`"),
        ("invalid-name-null.yaml", "invalid-name-null.yaml:2:9: expected a value here, found nothing (null)"),
        ("invalid-name-too-long.yaml", "invalid-name-too-long.yaml:2:11: host name `aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa…` is 300 bytes long, over the limit of 255: use a shorter name (put details in `labels:`)"),
        ("invalid-not-utf8.yaml", "invalid-not-utf8.yaml:2:14: file is not valid UTF-8"),
        ("invalid-nul-byte.yaml", "invalid-nul-byte.yaml:2:14: a NUL byte here: configuration files are text; is this the right file?"),
        ("invalid-only-comments.yaml", "invalid-only-comments.yaml: the inventory is empty: list hosts under `hosts:` (see `fleetsweep scan --help`)"),
        ("invalid-os.yaml", "invalid-os.yaml:3:9: unknown variant `solaris`, expected one of linux, windows, macos"),
        ("invalid-port-float.yaml", "invalid-port-float.yaml:3:11: expected a whole number from 0 to 65535"),
        ("invalid-port-huge.yaml", "invalid-port-huge.yaml:3:11: expected a whole number from 0 to 65535"),
        ("invalid-port-negative.yaml", "invalid-port-negative.yaml:3:11: expected a whole number from 0 to 65535"),
        ("invalid-port-text.yaml", "invalid-port-text.yaml:3:11: expected a whole number from 0 to 65535"),
        ("invalid-sudo.yaml", "invalid-sudo.yaml:3:11: expected true or false"),
        ("invalid-tab-in-mapping.yaml", "invalid-tab-in-mapping.yaml:2:11: a tab character here: YAML indents with spaces only; replace the tab with spaces"),
        ("invalid-tab-indent.yaml", "invalid-tab-indent.yaml:2:2: a tab character here: YAML indents with spaces only; replace the tab with spaces"),
        ("invalid-top-list.yaml", "invalid-top-list.yaml:1:1: expected a mapping here: `key: value` lines, or `{key: value}`"),
        ("invalid-two-documents.yaml", "invalid-two-documents.yaml:4:1: the file holds several YAML documents (separated by `---`); a configuration file is one document: remove the extra `---` or split the file"),
        ("invalid-unclosed-flow.yaml", "invalid-unclosed-flow.yaml:1:8: unclosed bracket '[': check the YAML syntax here (indentation with spaces, quotes and brackets closed)"),
        ("invalid-unclosed-quote.yaml", "invalid-unclosed-quote.yaml:3:1: invalid indentation in multiline quoted scalar: check the YAML syntax here (indentation with spaces, quotes and brackets closed)"),
        ("invalid-unknown-alias.yaml", "invalid-unknown-alias.yaml:3:13: this alias (`*name`) refers to no anchor (`&name`) defined above it"),
        ("invalid-unknown-top-key.yaml", "invalid-unknown-top-key.yaml:1:1: unknown field `host`, expected one of defaults, groups, hosts"),
    ];
    let mut failures = Vec::new();
    for (file, want) in cases {
        match load(file) {
            Ok(_) => failures.push(format!("{file}: loaded, expected error `{want}`")),
            Err(got) if got == want => {}
            Err(got) => failures.push(format!("{file}:\n  want: {want}\n  got:  {got}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Inline text as an inventory file named `f.yaml`; the error as printed.
fn load_text(text: impl AsRef<[u8]>) -> Result<Inventory, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.yaml");
    std::fs::write(&path, text).unwrap();
    Inventory::load(&path, &LoadOptions::default())
        .map_err(|e| e.to_string().replace(&dir.path().display().to_string(), ""))
}

#[test]
fn pathological_inventories_are_errors_not_crashes() {
    // 100,000 nested brackets: an error at the 65th, not a stack overflow.
    let deep = format!("hosts: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let err = load_text(&deep).unwrap_err();
    assert!(
        err.starts_with("/f.yaml:1:")
            && err.ends_with(
                "lists and mappings nest more than 64 levels deep here, deeper than any \
                 configuration file needs: is a bracket left open?"
            ),
        "{err}"
    );
    // Ansible YAML is read untyped first, so nothing stops it before the depth limit.
    let deep_maps = format!(
        "all:\n  hosts:\n    x: {}1{}\n",
        "{a: ".repeat(100_000),
        "}".repeat(100_000)
    );
    assert!(load_text(&deep_maps)
        .unwrap_err()
        .contains("nest more than 64 levels"));

    // Billion laughs: nine levels of ten aliases each.
    let mut bomb = String::from(
        "all:\n  vars:\n    a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("    a{i}: &a{i} [{refs}]\n"));
    }
    bomb.push_str("  hosts:\n    web-01:\n");
    let err = load_text(&bomb).unwrap_err();
    assert!(
        err.ends_with(
            "aliases (`*name`) here expand to more than 4000000 values: the file refers to \
             its anchors too many times (an alias bomb?)"
        ),
        "{err}"
    );

    // A byte-order mark is not part of the first key.
    let inv = load_text("\u{feff}hosts:\n  - name: web-01\n").unwrap();
    assert_eq!(&*inv.hosts[0].name, "web-01");
}

/// Hosts behind the same bastions share one list of them (a fleet of
/// 100,000 behind one bastion holds one copy, not 100,000).
#[test]
fn hosts_behind_the_same_bastions_share_one_list() {
    let inv = load_text(
        "hosts:\n  - {name: gw, address: 192.0.2.1}\n  - {name: a, jump: gw}\n  - {name: b, jump: gw}\n  - {name: c, jump: ops@gw}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let jumps = |i: usize| ssh(&inv.hosts[i]).jumps.clone();
    assert_eq!(&*jumps(1)[0].address, "192.0.2.1");
    assert!(std::sync::Arc::ptr_eq(&jumps(1), &jumps(2)));
    assert_eq!(&*jumps(3)[0].user, "ops");
    assert!(!std::sync::Arc::ptr_eq(&jumps(1), &jumps(3)));
    assert!(jumps(0).is_empty());
}

/// A hop names an inventory host wherever it is listed (before or after the
/// hosts behind it, whatever its transport) and takes its address, port and
/// user; other hops are taken as written; a host cannot be its own bastion.
#[test]
fn hops_name_inventory_hosts_listed_anywhere() {
    let inv = load_text(
        "defaults: {user: scan}\n\
         hosts:\n\
         \x20 - {name: a, address: 10.0.0.1, jump: \"outer.example:2200,gw2\"}\n\
         \x20 - {name: w, address: 10.0.0.9, transport: local, user: admin}\n\
         \x20 - {name: b, address: 10.0.0.2, jump: w}\n\
         \x20 - {name: gw2, address: 192.0.2.2, port: 2022, user: ops}\n\
         \x20 - {name: c, jump: bastion-with-a-long-name.dmz.example.org}\n\
         \x20 - {name: bastion-with-a-long-name.dmz.example.org, address: bastion-address-longer-than-24.example.org}\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let hops = |n: &str| {
        let h = inv.hosts.iter().find(|h| &*h.name == n).unwrap();
        ssh(h)
            .jumps
            .iter()
            .map(|e| format!("{}@{}:{}", e.user, e.address, e.port))
            .collect::<Vec<_>>()
    };
    assert_eq!(hops("a"), ["scan@outer.example:2200", "ops@192.0.2.2:2022"]);
    assert_eq!(hops("b"), ["admin@10.0.0.9:22"]);
    assert!(hops("gw2").is_empty());
    // Names, addresses and jumps past 24 bytes (not kept inline) too.
    assert_eq!(
        hops("c"),
        ["scan@bastion-address-longer-than-24.example.org:22"]
    );

    let e = load_text("hosts:\n  - {name: gw, address: 10.0.0.1}\n  - {name: a, jump: \"gw,a\"}\n")
        .unwrap_err();
    assert_eq!(e, "/f.yaml:3:21: host `a` names itself as its jump host");
}

#[test]
fn large_inventories_load() {
    // Flow style, 50,000 hosts: 250,001 YAML nodes, which the YAML
    // library's default budget refused ("budget breached: Nodes").
    let hosts: Vec<String> = (0..50_000)
        .map(|i| {
            format!(
                "{{name: h{i}, address: 10.0.{}.{}}}",
                i / 250 % 250,
                i % 250
            )
        })
        .collect();
    let inv = load_text(format!("hosts: [{}]\n", hosts.join(", "))).unwrap();
    assert_eq!(inv.hosts.len(), 50_000);
}

#[test]
fn ansible_merge_keys_on_every_host_load() {
    // One anchor merged into 300 hosts: many aliases of one anchor is the
    // normal shape (the library's alias/anchor ratio check called it a bomb,
    // and the file was then misread as fleetsweep YAML: "unknown field `all`").
    let mut text = String::from("all:\n  vars: &defaults\n    ansible_user: deploy\n  hosts:\n");
    for i in 0..300 {
        text.push_str(&format!(
            "    web-{i}:\n      <<: *defaults\n      ansible_host: 10.0.1.{}\n",
            i % 250
        ));
    }
    let inv = load_text(&text).unwrap();
    assert_eq!(inv.hosts.len(), 300);
    assert_eq!(&*endpoint(&inv.hosts[0]).user, "deploy");
    // A list of merged mappings, as Ansible's YAML reads it.
    let inv = load_text(
        ".base: &base {ansible_user: deploy}\n.port: &port {ansible_port: 2222}\n\
         all:\n  hosts:\n    web-01:\n      <<: [*base, *port]\n      ansible_host: 10.0.0.1\n",
    )
    .unwrap();
    let web = inv.hosts.iter().find(|h| &*h.name == "web-01").unwrap();
    assert_eq!((&*endpoint(web).user, endpoint(web).port), ("deploy", 2222));
}

#[test]
fn ansible_group_cycles_end() {
    // Every group a child of every other: walking each path would never end.
    let names: Vec<String> = (0..8).map(|i| format!("g{i}")).collect();
    let mut text = String::from("all:\n  children:\n");
    for n in &names {
        text.push_str(&format!(
            "    {n}:\n      hosts: {{h-{n}: }}\n      children:\n"
        ));
        for m in names.iter().filter(|m| *m != n) {
            text.push_str(&format!("        {m}: {{}}\n"));
        }
    }
    assert_eq!(load_text(&text).unwrap().hosts.len(), 8);
}

#[test]
fn invalid_inventories_name_file_line_and_column() {
    let cases = [
        ("invalid-unknown-key.yaml", "invalid-unknown-key.yaml:3:5: unknown field `adress`"),
        ("invalid-duplicate-host.yaml", "invalid-duplicate-host.yaml:3:11: host `web-01` is listed twice: host names must be unique"),
        ("invalid-duration.yaml", "invalid-duration.yaml:2:20: invalid duration `soon`: write it like `30s`, `5m`, `1h30m` or `500ms`"),
        ("invalid-port.yaml", "invalid-port.yaml:3:11: expected a whole number from 0 to 65535"),
        ("invalid-transport.yaml", "invalid-transport.yaml:3:16: unknown variant `telnet`"),
        ("invalid-jump.yaml", "invalid-jump.yaml:3:11: invalid jump `user@:22`"),
        ("invalid-indent.yaml", "invalid-indent.yaml:3:3: "),
        ("invalid-winrm-basic-http.yaml", "invalid-winrm-basic-http.yaml:5:7: host `w`: winrm auth `basic` over scheme `http` would send the password in clear"),
        ("invalid-winrm-no-password.yaml", "invalid-winrm-no-password.yaml:2:11: host `w`: transport winrm needs winrm.password_env, winrm.password_file or winrm.keytab"),
        ("invalid-winrm-keytab-ntlm.yaml", "invalid-winrm-keytab-ntlm.yaml:5:7: host `w`: winrm.keytab holds a Kerberos key, which only auth `kerberos` uses (not `ntlm`)"),
        ("invalid-winrm-unknown-key.yaml", "invalid-winrm-unknown-key.yaml:5:7: unknown field `insecure_skip_verify`"),
        ("invalid-winrm-auth.yaml", "invalid-winrm-auth.yaml:4:19: unknown variant `credssp`"),
        ("invalid-winrm-kdc.yaml", "invalid-winrm-kdc.yaml:5:7: host `w`: winrm.kdc: `udp://dc01.corp.example.com:88`: only tcp:// KDCs are supported, not udp://"),
        ("invalid-winrm-spn.yaml", "invalid-winrm-spn.yaml:5:7: host `w`: winrm.spn: unknown placeholder `{fqdn}` in `HTTP/{fqdn}` (known: {name}, {address})"),
        ("no-such-file.yaml", "no-such-file.yaml: cannot read file: No such file or directory"),
    ];
    let mut failures = Vec::new();
    for (file, want) in cases {
        match load(file) {
            Ok(_) => failures.push(format!("{file}: loaded, expected error `{want}`")),
            Err(got) if got.starts_with(want) => {}
            Err(got) => failures.push(format!(
                "{file}:\n  want prefix: {want}\n  got:         {got}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn winrm_settings_merge_key_by_key() {
    use crate::transport::winrm::{PasswordSource, Scheme, WinrmAuth};
    let inv = load("valid-winrm.yaml").unwrap();
    let w = |i: usize| winrm(&inv.hosts[i]).unwrap();
    let win1 = w(0);
    assert_eq!(inv.hosts[0].target.kind(), "winrm");
    assert_eq!(
        (&*win1.address, win1.port),
        ("10.0.1.5", 5985),
        "SSH port 22 does not apply"
    );
    assert_eq!((win1.scheme, win1.auth), (Scheme::Http, WinrmAuth::Ntlm));
    assert_eq!(win1.user, "CORP\\svc-scan");
    assert_eq!(
        (win1.spn.as_deref(), win1.kdc.as_deref()),
        (
            Some("HTTP/win-01.corp.example.com"),
            Some("tcp://dc01.corp.example.com:88")
        ),
        "the group's SPN template takes the host name; the default KDC gets port 88"
    );
    assert_eq!(w(1).service_principal(), "HTTP/win-02.corp.example.com");
    assert_eq!(
        win1.password,
        PasswordSource::Env("FLEETSWEEP_WINRM_PASSWORD".into())
    );
    let win2 = w(1);
    assert_eq!(
        (win2.scheme, win2.auth, win2.port),
        (Scheme::Https, WinrmAuth::Basic, 5986)
    );
    assert_eq!(
        win2.ca_file,
        Some(PathBuf::from("/etc/fleetsweep/corp-ca.pem"))
    );
    assert_eq!(
        win2.password,
        PasswordSource::File("/run/secrets/winrm".into()),
        "a host's password_file replaces the default password_env"
    );
    let win3 = w(2);
    assert_eq!(win3.spn, None);
    assert_eq!(
        win3.service_principal(),
        "HTTP/win-03",
        "default SPN: HTTP/<address>"
    );
    assert_eq!(
        (win3.port, win3.auth, win3.user.as_str()),
        (15985, WinrmAuth::Kerberos, "scanner")
    );
    assert!(
        winrm(&inv.hosts[3]).is_none(),
        "SSH hosts have no WinRM target"
    );
}

#[test]
fn limit_and_shard_select_hosts() {
    let inv = load("valid-full.yaml").unwrap();
    let pick = |expr: &str| -> Vec<String> {
        let l = limit::Limit::parse(expr).unwrap();
        inv.hosts
            .iter()
            .filter(|h| l.matches(h))
            .map(|h| h.name.to_string())
            .collect()
    };
    assert_eq!(pick("web-*"), ["web-01"]);
    assert_eq!(pick("dbs"), ["db-01", "db-02"]);
    assert_eq!(pick("site=fra1"), ["web-01", "db-01"]);
    assert_eq!(pick("prod,!db-01"), ["web-01"]);
    assert!(limit::Limit::parse(" , ").is_err());

    let shards: Vec<_> = (1..=3)
        .map(|i| limit::Shard::parse(&format!("{i}/3")).unwrap())
        .collect();
    for h in &inv.hosts {
        assert_eq!(
            shards.iter().filter(|s| s.contains(&h.name)).count(),
            1,
            "{} in exactly one shard",
            h.name
        );
    }
    assert!(limit::Shard::parse("0/3").is_err());
    assert!(limit::Shard::parse("4/3").is_err());
}

/// A Kubernetes Indexed Job's JOB_COMPLETION_INDEX counts from 0: index I of
/// N is `--shard I+1/N`, and every index in 0..N is valid, N is not.
#[test]
fn shard_from_index_counts_from_zero() {
    for i in 0..4u32 {
        assert_eq!(
            limit::Shard::from_index(&i.to_string(), "4").unwrap(),
            limit::Shard::parse(&format!("{}/4", i + 1)).unwrap()
        );
    }
    let err = limit::Shard::from_index("4", "4").unwrap_err();
    assert!(err.contains("0 <= INDEX < N"), "{err}");
    assert!(limit::Shard::from_index("$(JOB_COMPLETION_INDEX)", "4").is_err());
    assert!(limit::Shard::from_index("0", "0").is_err());
    assert!(limit::Shard::from_index("-1", "4").is_err());
}

#[test]
fn durations() {
    assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("6h").unwrap(), Duration::from_secs(6 * 3600));
    assert_eq!(
        parse_duration("400d").unwrap(),
        Duration::from_secs(400 * 86_400)
    );
    assert_eq!(
        parse_duration("1d12h").unwrap(),
        Duration::from_secs(36 * 3600)
    );
    assert!(parse_duration("-5s").is_err());
    assert!(parse_duration("soon").is_err());
}

#[test]
fn shipped_example_inventory_loads() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/inventory.example.yaml");
    let inv = Inventory::load(&p, &LoadOptions::default()).unwrap();
    let names: Vec<_> = inv.hosts.iter().map(|h| &*h.name).collect();
    assert_eq!(names, ["web-01", "web-02", "db-01", "build-runner"]);
    assert_eq!(&*ssh(&inv.hosts[0]).jumps[0].address, "bastion.example.net");
    assert!(ssh_host(&inv.hosts[2]).options.sudo);
    assert_eq!(inv.hosts[3].target.kind(), "local");
}

#[test]
fn ssh_config_fills_what_the_inventory_leaves_open() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config");
    std::fs::write(
        &cfg,
        "Host web-*\n  User webops\n  Port 2200\n  ProxyJump jump@gw.example.net:2022\nHost db-01\n  HostName 10.9.9.9\n",
    )
    .unwrap();
    let inv_path = dir.path().join("inv.yaml");
    std::fs::write(
        &inv_path,
        "defaults: {user: scanner}\nhosts:\n  - name: web-01\n  - name: db-01\n    user: dba\n",
    )
    .unwrap();
    let inv = Inventory::load(
        &inv_path,
        &LoadOptions {
            ssh_config: Some(cfg),
        },
    )
    .unwrap();
    let web = &inv.hosts[0];
    assert_eq!(
        &*endpoint(web).user,
        "webops",
        "ssh_config beats inventory defaults"
    );
    assert_eq!(endpoint(web).port, 2200);
    assert_eq!(&*ssh(web).jumps[0].address, "gw.example.net");
    assert_eq!(ssh(web).jumps[0].port, 2022);
    let db = &inv.hosts[1];
    assert_eq!(db.address(), "10.9.9.9", "HostName from ssh_config");
    assert_eq!(
        &*endpoint(db).user,
        "dba",
        "the host entry beats ssh_config"
    );
}

#[test]
fn ansible_ini_inventory() {
    let inv = load("ansible.ini").unwrap();
    let get = |n: &str| {
        inv.hosts
            .iter()
            .find(|h| &*h.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let web = get("web-01");
    assert_eq!(web.address(), "10.0.0.5");
    assert_eq!(
        &*endpoint(web).user,
        "webscan",
        "the child group's vars beat the parent's"
    );
    assert_eq!(
        *endpoint(web).identity_files,
        [PathBuf::from("/keys/prod_ed25519")]
    );
    assert_eq!(web.labels.get("site").map(String::as_str), Some("fra1"));
    assert_eq!(web.labels.get("env").map(String::as_str), Some("prod"));
    assert!(
        web.groups.contains(&"web".to_string()) && web.groups.contains(&"prod".to_string()),
        "{:?}",
        web.groups
    );
    assert_eq!(endpoint(get("web-02")).port, 2222);
    let db = get("db-01");
    assert_eq!(&*endpoint(db).user, "scanner");
    assert_eq!(ssh(db).jumps.len(), 1);
    assert_eq!(
        format!("{}@{}", ssh(db).jumps[0].user, ssh(db).jumps[0].address),
        "jump@192.0.2.10"
    );
    assert_eq!(&*endpoint(get("bastion")).user, "jump");
    assert_eq!(get("runner").target.kind(), "local");
    let l = limit::Limit::parse("prod").unwrap();
    let mut prod: Vec<_> = inv
        .hosts
        .iter()
        .filter(|h| l.matches(h))
        .map(|h| &*h.name)
        .collect();
    prod.sort();
    assert_eq!(prod, ["db-01", "web-01", "web-02"]);
}

/// `ansible-inventory -i ansible.ini --list` (and `--list --export`), as
/// ansible-core 2.19 printed them (recorded into the fixtures): the same hosts,
/// users, keys, ports, jumps, labels and groups as the INI file itself.
#[test]
fn ansible_inventory_list_json_resolves_like_its_source() {
    let ini = load("ansible.ini").unwrap();
    let summary = |inv: &Inventory| {
        let mut v: Vec<String> = inv
            .hosts
            .iter()
            .map(|h| {
                let mut groups = h.groups.to_vec();
                groups.sort();
                let target = match &h.target {
                    Target::Ssh(_) => {
                        let (e, s) = (endpoint(h), ssh(h));
                        format!(
                            "{}@{}:{} keys={:?} jumps={:?}",
                            e.user,
                            e.address,
                            e.port,
                            e.identity_files,
                            s.jumps
                                .iter()
                                .map(|j| format!("{}@{}:{}", j.user, j.address, j.port))
                                .collect::<Vec<_>>()
                        )
                    }
                    other => other.kind().to_string(),
                };
                format!(
                    "{} {target} labels={:?} groups={groups:?}",
                    h.name, h.labels
                )
            })
            .collect();
        v.sort();
        v
    };
    let want = summary(&ini);
    assert_eq!(want.len(), 5, "{want:#?}");
    for file in ["ansible-list.json", "ansible-list-export.json"] {
        let inv = load(file).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(summary(&inv), want, "{file}");
    }
    // A --list whose groups lost their hosts resolves to nothing: refused,
    // never a sweep of 0 hosts that exits clean.
    let err = load_text(
        r#"{"_meta": {"hostvars": {}}, "all": {"children": ["ungrouped"]}, "ungrouped": {}}"#,
    )
    .unwrap_err();
    assert!(
        err.contains("this Ansible inventory lists no hosts"),
        "{err}"
    );
}

#[test]
fn ansible_windows_hosts_map_to_winrm() {
    use crate::transport::winrm::{PasswordSource, Scheme, WinrmAuth};
    let inv = load("ansible-windows.ini").unwrap();
    let get = |n: &str| {
        inv.hosts
            .iter()
            .find(|h| &*h.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    let w1 = get("win-01");
    assert_eq!(w1.target.kind(), "winrm");
    let t1 = winrm(w1).unwrap();
    assert_eq!(
        (&*t1.address, t1.port, t1.scheme, t1.auth),
        ("10.0.1.5", 5986, Scheme::Https, WinrmAuth::Negotiate),
        "Ansible's default scheme is https; `ntlm,kerberos` is SPNEGO"
    );
    assert_eq!(t1.user, "svc-scan@CORP.EXAMPLE.COM");
    assert_eq!(t1.ca_file, Some(PathBuf::from("/etc/pki/corp-ca.pem")));
    assert_eq!(
        t1.password,
        PasswordSource::Env("FLEETSWEEP_WINRM_PASSWORD".into())
    );
    assert_eq!(t1.kdc.as_deref(), Some("tcp://dc01.corp.example.com:88"));
    assert!(
        w1.labels.keys().all(|k| !k.starts_with("fleetsweep_")),
        "{:?}",
        w1.labels
    );
    let t2 = winrm(get("win-02")).unwrap();
    assert_eq!(
        (t2.port, t2.scheme, t2.auth),
        (5985, Scheme::Http, WinrmAuth::Ntlm),
        "port 5985 means http, as in Ansible"
    );
    let t3 = winrm(get("win-03")).unwrap();
    assert_eq!(t3.auth, WinrmAuth::Kerberos);
    assert_eq!(
        t3.service_principal(),
        "HTTP/win-03.corp.example.com",
        "kerberos_hostname_override names the SPN"
    );
    let w4 = get("win-04");
    assert_eq!(w4.target.kind(), "ssh", "Windows over OpenSSH");
    assert!(winrm(w4).is_none());
    assert_eq!(w4.os, Some(OsFamily::Windows));
}

#[test]
fn ansible_windows_errors_say_what_to_change() {
    let e = load("invalid-ansible-password.ini").unwrap_err();
    assert!(
        e.contains("host `win-01`: ansible_password is not used: fleetsweep never reads passwords")
            && e.contains("fleetsweep_winrm_password_env=VAR"),
        "{e}"
    );
    assert!(!e.contains("hunter2"), "the password is not echoed: {e}");
    let e = load("invalid-ansible-credssp.ini").unwrap_err();
    assert!(
        e.contains("ansible_winrm_transport `credssp`") && e.contains("set it to ntlm or kerberos"),
        "{e}"
    );
}

#[test]
fn ansible_yaml_inventory() {
    let inv = load("ansible.yaml").unwrap();
    let get = |n: &str| {
        inv.hosts
            .iter()
            .find(|h| &*h.name == n)
            .unwrap_or_else(|| panic!("{n}"))
    };
    assert_eq!(
        get("web-01").labels.get("site").map(String::as_str),
        Some("fra1"),
        "host vars beat group vars"
    );
    assert_eq!(
        get("web-02").labels.get("site").map(String::as_str),
        Some("ams1")
    );
    assert_eq!(endpoint(get("web-02")).port, 2222);
    assert_eq!(
        &*endpoint(get("web-02")).user,
        "scanner",
        "`all` vars apply"
    );
    assert_eq!(&*ssh(get("db-01")).jumps[0].address, "192.0.2.10");
    assert_eq!(get("bastion").address(), "192.0.2.10");
    assert_eq!(inv.hosts.len(), 4);
}

#[test]
fn invalid_ansible_inventories_name_the_line() {
    assert_eq!(
        load("invalid-ansible-section.ini").unwrap_err(),
        "invalid-ansible-section.ini:1:1: section header `[web` lacks its closing `]`"
    );
    assert_eq!(
        load("invalid-ansible-var.ini").unwrap_err(),
        "invalid-ansible-var.ini:2:8: expected `name=value` after the host name, found `ansible_host`"
    );
}

#[test]
fn kdc_and_spn_forms() {
    use super::winrm::{expand_spn, kdc_url};
    for (given, want) in [
        ("dc01", "tcp://dc01:88"),
        (
            "dc01.corp.example.com:8888",
            "tcp://dc01.corp.example.com:8888",
        ),
        ("tcp://10.0.0.5:88/", "tcp://10.0.0.5:88"),
        ("[fd00::5]", "tcp://[fd00::5]:88"),
        ("tcp://[fd00::5]:750", "tcp://[fd00::5]:750"),
    ] {
        assert_eq!(kdc_url(given).as_deref(), Ok(want), "{given}");
    }
    for (given, err) in [
        (
            "https://kdcproxy.corp/KdcProxy",
            "only tcp:// KDCs are supported, not https://",
        ),
        ("fd00::5", "put an IPv6 address in brackets"),
        ("dc01:0", "`0` is not a port number"),
        ("dc01:kerberos", "`kerberos` is not a port number"),
        ("", "is not a host name or address"),
        ("user@dc01", "is not a host name or address"),
        ("[fd00::5", "unbalanced [ ]"),
    ] {
        let got = kdc_url(given).unwrap_err();
        assert!(got.contains(err), "{given}: {got}");
    }
    assert_eq!(
        expand_spn("HTTP/{name}.corp", "win-01", "10.0.0.1").as_deref(),
        Ok("HTTP/win-01.corp")
    );
    assert_eq!(
        expand_spn("WSMAN/{address}", "win-01", "10.0.0.1").as_deref(),
        Ok("WSMAN/10.0.0.1")
    );
    for bad in ["HTTP", "/host", "HTTP/", "HTTP/a b"] {
        let got = expand_spn(bad, "w", "a").unwrap_err();
        assert!(
            got.contains("is not a service principal name"),
            "{bad}: {got}"
        );
    }
}

#[test]
fn each_target_carries_its_own_settings() {
    let mut inv = load("valid-winrm.yaml").unwrap();
    let kinds: Vec<_> = inv.hosts.iter().map(|h| h.target.kind()).collect();
    assert_eq!(kinds, ["winrm", "winrm", "winrm", "ssh"]);
    assert_eq!(inv.hosts[0].address(), "10.0.1.5");
    // --connect-timeout reaches the targets that connect, and only those.
    for h in &mut inv.hosts {
        let c = h.target.connect_timeout_mut().unwrap();
        *c = Some(Duration::from_secs(3));
    }
    assert!(matches!(
        &inv.hosts[0].target,
        Target::Winrm(w) if w.connect_timeout == Some(Duration::from_secs(3))
    ));
    let mut local = Inventory::local();
    assert_eq!(local.hosts[0].address(), "localhost");
    assert!(local.hosts[0].target.connect_timeout_mut().is_none());

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/inventory.example.yaml");
    let inv = Inventory::load(&example, &LoadOptions::default()).unwrap();
    assert_eq!(
        inv.hosts[3].target,
        Target::Local(LocalHost {
            address: "build-runner".into(),
            sudo: false
        }),
        "a local inventory host keeps its name as the address reports show"
    );
}

#[test]
fn start_up_caps_follow_precedence_and_refuse_zero() {
    let inv = load_text(
        "defaults:\n  max_startups: 6\n  bastion_max_handshakes: 12\n\
         groups:\n  dmz:\n    hosts: [b]\n    vars: {bastion_max_handshakes: 4}\n\
         hosts:\n  - name: a\n  - name: b\n  - name: c\n    max_startups: 2\n",
    )
    .unwrap();
    let limits: Vec<_> = inv
        .hosts
        .iter()
        .map(|h| ssh_host(h).options.limits)
        .collect();
    let want = |m, b| crate::transport::StartupLimits {
        max_startups: Some(m),
        bastion_max_handshakes: Some(b),
    };
    assert_eq!(limits, [want(6, 12), want(6, 4), want(2, 12)]);
    // Unset: the built-in defaults apply at connection time.
    let inv = load_text("hosts:\n  - name: a\n").unwrap();
    assert_eq!(ssh_host(&inv.hosts[0]).options.limits, Default::default());

    assert_eq!(
        load_text("hosts:\n  - name: a\n    max_startups: 0\n").unwrap_err(),
        "/f.yaml:3:19: `max_startups: 0` would let no connection start: use 1 or more"
    );
    assert_eq!(
        load_text("defaults:\n  bastion_max_handshakes: -1\nhosts:\n  - name: a\n").unwrap_err(),
        "/f.yaml:2:27: expected a whole number from 0 to 18446744073709551615"
    );
}

/// Hosts that name the same key files share one list (a fleet of 100,000 hosts
/// under one `defaults:` holds it once), in the order given; a host with keys
/// of its own gets its own list, and a jump keeps its target's keys.
#[test]
fn hosts_naming_the_same_keys_share_one_list() {
    let inv = load_text(
        "defaults:\n  identity_file: [/keys/a, /keys/b]\n\
         hosts:\n\
         \x20 - {name: h1, address: 10.0.0.1}\n\
         \x20 - {name: h2, address: 10.0.0.2, jump: h1}\n\
         \x20 - {name: h3, address: 10.0.0.3, identity_file: /keys/c}\n\
         \x20 - {name: h4, address: 10.0.0.4, identity_file: [/keys/a, /keys/b]}\n",
    )
    .unwrap();
    let keys: Vec<&std::sync::Arc<[PathBuf]>> = inv
        .hosts
        .iter()
        .map(|h| &endpoint(h).identity_files)
        .collect();
    assert_eq!(
        **keys[0],
        [PathBuf::from("/keys/a"), PathBuf::from("/keys/b")]
    );
    assert_eq!(**keys[2], [PathBuf::from("/keys/c")]);
    assert!(std::sync::Arc::ptr_eq(keys[0], keys[1]));
    assert!(
        std::sync::Arc::ptr_eq(keys[0], keys[3]),
        "same files, same list"
    );
    assert!(!std::sync::Arc::ptr_eq(keys[0], keys[2]));
    let jump = &ssh(&inv.hosts[1]).jumps[0];
    assert_eq!(&*jump.address, "10.0.0.1");
    assert!(std::sync::Arc::ptr_eq(&jump.identity_files, keys[0]));
}

/// The resolved hosts hold exactly their room, with or without jumps (they
/// are collected in place from larger settled entries and kept for the whole
/// sweep).
#[test]
fn resolved_hosts_hold_exactly_their_room() {
    for text in [
        "hosts:\n  - {name: a}\n  - {name: b}\n  - {name: c}\n",
        "hosts:\n  - {name: gw}\n  - {name: a, jump: gw}\n  - {name: b, jump: gw}\n",
    ] {
        let inv = load_text(text).unwrap();
        assert_eq!(inv.hosts.len(), 3);
        assert_eq!(inv.hosts.capacity(), 3, "{text}");
    }
}

/// Hosts that log in under the same name share one string of it, whether
/// the name comes from `defaults:`, a group or the host entry.
#[test]
fn hosts_logging_in_as_the_same_user_share_one_name() {
    let inv = load_text(
        "defaults: {user: scan}\n\
         groups:\n  g: {hosts: [c], vars: {user: scan}}\n\
         hosts:\n  - {name: a}\n  - {name: b, user: scan}\n  - {name: d, user: other}\n",
    )
    .unwrap();
    let user = |n: &str| &endpoint(inv.hosts.iter().find(|h| &*h.name == n).unwrap()).user;
    assert_eq!(&**user("a"), "scan");
    assert!(std::sync::Arc::ptr_eq(user("a"), user("b")));
    assert!(std::sync::Arc::ptr_eq(user("a"), user("c")));
    assert_eq!(&**user("d"), "other");
}

/// Hosts in exactly the same groups share one list of them; a host in other
/// groups, or in none, has its own list, and each list names its groups in order.
#[test]
fn hosts_in_the_same_groups_share_one_list() {
    let inv = load_text(
        "groups:\n\
         \x20 web: {hosts: [a, b, c]}\n\
         \x20 prod: {hosts: [b, a, d]}\n\
         hosts:\n  - {name: a}\n  - {name: b}\n  - {name: c}\n  - {name: d}\n  - {name: e}\n",
    )
    .unwrap();
    let groups = |n: &str| &inv.hosts.iter().find(|h| &*h.name == n).unwrap().groups;
    assert_eq!(**groups("a"), ["prod", "web"]);
    assert!(std::sync::Arc::ptr_eq(groups("a"), groups("b")));
    assert_eq!(**groups("c"), ["web"]);
    assert_eq!(**groups("d"), ["prod"]);
    assert!(groups("e").is_empty());
    assert!(!std::sync::Arc::ptr_eq(groups("a"), groups("c")));
}

/// Hosts whose labels come out the same (from their groups, their own
/// entries or both) share one copy of them; other labels stay their own, and
/// a label set changed later (`Labels::insert`) does not change the others.
#[test]
fn hosts_with_the_same_labels_share_one_copy() {
    let inv = load_text(
        "groups:\n  web: {hosts: [a, b], labels: {env: prod, role: web}}\n\
         hosts:\n\
         \x20 - {name: c, labels: {env: prod, role: web}}\n\
         \x20 - {name: d, labels: {env: prod, role: db}}\n\
         \x20 - {name: e, labels: {role: web, env: prod}}\n",
    )
    .unwrap();
    let by_name = |n: &str| inv.hosts.iter().find(|h| &*h.name == n).unwrap();
    let shared = |x: &str, y: &str| std::ptr::eq(&*by_name(x).labels, &*by_name(y).labels);
    assert_eq!(
        by_name("a").labels.get("role").map(String::as_str),
        Some("web")
    );
    assert!(shared("a", "b") && shared("a", "c") && shared("a", "e"));
    assert!(!shared("a", "d"));
    assert_eq!(
        by_name("d").labels.get("role").map(String::as_str),
        Some("db")
    );
    let mut changed = by_name("a").labels.clone();
    changed.insert("role".into(), "cache".into());
    assert_eq!(
        by_name("b").labels.get("role").map(String::as_str),
        Some("web")
    );
}

/// A group's member list as parsed keeps each name and where it is written:
/// an empty name is refused at its own line and column, a name listed twice
/// in one group makes one membership, and a name only groups list becomes a
/// host that errors about it point at.
#[test]
fn group_members_keep_their_place_in_the_file() {
    let err =
        load_text("groups:\n  web:\n    hosts: [a, '  ']\nhosts:\n  - {name: a}\n").unwrap_err();
    assert_eq!(err, "/f.yaml:3:16: empty host name in group `web`");
    let long = "x".repeat(resolve::MAX_NAME_BYTES + 1);
    let err = load_text(format!("groups:\n  web:\n    hosts:\n      - {long}\n")).unwrap_err();
    assert!(err.starts_with("/f.yaml:4:9: host name `"), "{err}");

    let inv = load_text(
        "groups:\n  web: {hosts: [a, a, b]}\n  db: {hosts: [b, ' c ']}\nhosts:\n  - {name: a}\n",
    )
    .unwrap();
    let names: Vec<_> = inv.hosts.iter().map(|h| &*h.name).collect();
    assert_eq!(names, ["a", "b", "c"], "file order, then group-only names");
    let groups = |n: &str| {
        inv.hosts
            .iter()
            .find(|h| &*h.name == n)
            .unwrap()
            .groups
            .to_vec()
    };
    assert_eq!(groups("a"), ["web"]);
    assert_eq!(groups("b"), ["db", "web"]);
    assert_eq!(groups("c"), ["db"]);
    // A group-only host's own errors point at its name in the group.
    let err = load_text("groups:\n  win:\n    hosts: [a, b]\n    vars: {transport: winrm}\n")
        .unwrap_err();
    assert!(
        err.starts_with("/f.yaml:3:13: host `a`: transport winrm needs"),
        "{err}"
    );
}

/// SSH hosts with the same passphrase source, sudo and start-up caps share
/// one copy of them; a host with other settings has its own.
#[test]
fn ssh_hosts_with_the_same_options_share_one_copy() {
    let inv = load_text(
        "defaults: {passphrase_env: KEY_PASS}\n\
         groups:\n  admin: {hosts: [c], vars: {sudo: true, max_startups: 4}}\n\
         hosts:\n  - {name: a}\n  - {name: b, port: 2222}\n  - {name: c}\n  - {name: d, sudo: true, max_startups: 4}\n",
    )
    .unwrap();
    let options = |i: usize| &ssh_host(&inv.hosts[i]).options;
    assert!(std::sync::Arc::ptr_eq(options(0), options(1)));
    assert_eq!(options(0).passphrase, Passphrase::Env("KEY_PASS".into()));
    assert!(!options(0).sudo);
    assert!(std::sync::Arc::ptr_eq(options(2), options(3)));
    assert!(options(2).sudo);
    assert_eq!(options(2).limits.max_startups, Some(4));
    assert!(!std::sync::Arc::ptr_eq(options(0), options(2)));
}

/// An inventory entry's own size is held once per host for the whole sweep
/// (100,000 hosts: 100,000 of them): what most hosts share is behind a
/// pointer, and the WinRM settings are boxed, so an SSH host does not carry
/// room for them.
#[test]
fn a_host_stays_small() {
    assert!(
        size_of::<Host>() <= 160,
        "Host is {} bytes",
        size_of::<Host>()
    );
    assert!(
        size_of::<Target>() <= 96,
        "Target is {} bytes",
        size_of::<Target>()
    );
}

/// A host reached by its name keeps one string for its name and address
/// (its report shares it too); a host with an address of its own has two.
#[test]
fn a_host_without_an_address_keeps_one_string_for_both() {
    let inv =
        load_text("hosts:\n  - {name: web-01.corp}\n  - {name: db, address: 10.0.0.7}\n").unwrap();
    let (web, db) = (&inv.hosts[0], &inv.hosts[1]);
    assert_eq!(web.address(), "web-01.corp");
    assert!(std::sync::Arc::ptr_eq(&web.name, web.shared_address()));
    assert_eq!((&*db.name, db.address()), ("db", "10.0.0.7"));
    assert!(!std::sync::Arc::ptr_eq(&db.name, db.shared_address()));
}
