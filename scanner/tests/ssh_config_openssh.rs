#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

//! `transport::ssh_config` against the real `ssh -G -F FILE HOST` on the same
//! files: for every host, the values fleetsweep takes from the config must be
//! what OpenSSH resolves. `ssh -G` prints the configuration and exits; it makes
//! no connection. Always with `-F`, so the operator's own `~/.ssh/config` and
//! `/etc/ssh/ssh_config` are never read; `HOME` of the child is a temp dir, so
//! relative and `~` Includes land in the test's files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fleetsweep::transport::ssh_config::{self, ConfigKind, SshConfigHost};

/// Files of a case: path under the temp root, text.
type Files = &'static [(&'static str, &'static str)];

/// One table row: files under a temp root (`{root}` in a text stands for it;
/// `home/` is `$HOME`), the config given with `-F`, and the aliases to look up.
struct Case {
    name: &'static str,
    files: Files,
    main: &'static str,
    hosts: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "include glob relative to ~/.ssh, sorted, hidden and non-matching skipped",
        files: &[
            ("home/.ssh/config", "Include conf.d/*.conf\nHost *\n  User last\n"),
            ("home/.ssh/conf.d/20-web.conf", "Host web*\n  Port 2020\n  User web20\n"),
            ("home/.ssh/conf.d/10-web.conf", "Host web1\n  HostName 10.0.0.1\n  User web10\n  IdentityFile ~/.ssh/web10\n"),
            ("home/.ssh/conf.d/.hidden.conf", "Port 7\n"),
            ("home/.ssh/conf.d/notes.txt", "Port 8\n"),
        ],
        main: "home/.ssh/config",
        hosts: &["web1", "web2", "db"],
    },
    Case {
        name: "several Include arguments: absolute glob over directories (`**` is `*`), ~, missing, glob matching nothing",
        files: &[
            ("main", "Include {root}/e**/a.c*nf ~/b.conf {root}/missing.conf {root}/none/*.conf\nPort 1000\n"),
            ("etc/a.conf", "Host a*\n  User from-a\n  ProxyJump jump@gw.example:2222,inner\n"),
            ("home/b.conf", "Host *\n  User from-b\n  Port 2000\n  ProxyJump none\n"),
        ],
        main: "main",
        hosts: &["alpha", "beta"],
    },
    Case {
        name: "nested includes with relative paths, first value wins across files",
        files: &[
            ("main", "Host deep\n  Include one.conf\nHost *\n  Port 22\n"),
            ("home/.ssh/one.conf", "IdentityFile /keys/one\nInclude sub/two.conf\nUser one\n"),
            ("home/.ssh/sub/two.conf", "User two\nIdentityFile /keys/two\nIdentityFile /keys/one\nInclude {root}/three.conf\n"),
            ("three.conf", "Port 3333\nHostName Deep.Example.NET\n"),
        ],
        main: "main",
        hosts: &["deep", "shallow"],
    },
    Case {
        name: "Include inside Host applies conditionally; Host in the included file does not leak",
        files: &[
            ("main", "Host web\n  Include {root}/inc/*.conf\n  HostName web.example\nHost db\n  Port 5432\n"),
            ("inc/a.conf", "User inc-a\nHost other\n  Port 9\n"),
            ("inc/b.conf", "Port 2022\nMatch all\n  IdentityFile /keys/inc\n"),
        ],
        main: "main",
        hosts: &["web", "other", "db"],
    },
    Case {
        name: "Match host sees the HostName target, originalhost what was typed",
        files: &[(
            "main",
            "Host web1\n  HostName 10.1.1.1\n\
             Match host 10.1.*,!10.1.1.9\n  Port 1001\n\
             Match originalhost WEB*\n  User typed\n\
             Match host web1\n  IdentityFile /keys/never-for-web1\n\
             Match host %h\n  ProxyJump never\n\
             Host 10.1.1.9\n  Port 1009\n",
        )],
        main: "main",
        hosts: &["web1", "web2", "10.1.1.9"],
    },
    Case {
        name: "Match user, localuser, all, negation, comma lists, criteria ANDed",
        files: &[(
            "main",
            "Match user {localuser}\n  IdentityFile /keys/local-default\n\
             Host a\n  User alice\n\
             Match user alice originalhost a\n  Port 1111\n\
             Match user alice,!bob !originalhost b*\n  IdentityFile /keys/alice\n\
             Match localuser {localuser} host a,b\n  ProxyJump gw\n\
             Match !localuser {localuser}\n  Port 9999\n\
             Match !all\n  User never\n\
             Match all\n  User everyone\n",
        )],
        main: "main",
        hosts: &["a", "b", "c"],
    },
    Case {
        name: "Match final runs a final pass on the rewritten, lower-cased target; canonical matches only there",
        files: &[(
            "main",
            "Host alias\n  HostName Target.Example\n\
             Host target.example\n  Port 2222\n  User t\n\
             Match canonical host target.example\n  IdentityFile /keys/canonical\n\
             Match !canonical\n  IdentityFile /keys/first\n\
             Match final\n  ProxyJump last@gw\n",
        )],
        main: "main",
        hosts: &["alias", "Target.Example", "other"],
    },
    Case {
        name: "no final pass without Match final; Host patterns are case-sensitive",
        files: &[(
            "main",
            "Host WEB\n  Port 1\nHost web\n  Port 2\nHost alias\n  HostName target\nHost target\n  User t\nMatch canonical\n  User c\n",
        )],
        main: "main",
        hosts: &["WEB", "web", "alias"],
    },
    Case {
        name: "CanonicalizeHostname turns the final pass on (no CanonicalDomains, so no DNS)",
        files: &[(
            "main",
            "CanonicalizeHostname yes\nMatch canonical\n  Port 7\nHost %h\n  User x\n",
        )],
        main: "main",
        hosts: &["10.0.0.1"],
    },
];

fn local_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes a case's files with the mode OpenSSH accepts for included files.
fn lay_out(root: &Path, files: &[(&str, &str)], user: &str) {
    use std::os::unix::fs::PermissionsExt;
    for (name, text) in files {
        let path = root.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = text
            .replace("{root}", &root.display().to_string())
            .replace("{localuser}", user);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// `ssh -G -F config host`: keyword → values, in order.
fn ssh_g(config: &Path, home: &Path, host: &str) -> Result<HashMap<String, Vec<String>>, String> {
    let out = Command::new("ssh")
        .arg("-G")
        .arg("-F")
        .arg(config)
        .arg("--")
        .arg(host)
        .env("HOME", home)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssh-client must be installed: ssh -G is the reference");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let mut values: HashMap<String, Vec<String>> = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((key, value)) = line.split_once(' ') {
            values
                .entry(key.to_string())
                .or_default()
                .push(value.to_string());
        }
    }
    Ok(values)
}

/// What ssh would use, from fleetsweep's view (its defaults where the config is silent).
fn effective(ours: &SshConfigHost, alias: &str, user: &str) -> Vec<(&'static str, Vec<String>)> {
    vec![
        (
            "hostname",
            vec![ours
                .hostname
                .clone()
                .unwrap_or_else(|| alias.to_lowercase())],
        ),
        ("user", vec![ours.user.clone().unwrap_or(user.to_string())]),
        ("port", vec![ours.port.unwrap_or(22).to_string()]),
        (
            "proxyjump",
            ours.proxy_jump
                .iter()
                .filter(|j| !j.eq_ignore_ascii_case("none"))
                .cloned()
                .collect(),
        ),
    ]
}

/// ssh prints IdentityFile unexpanded; expand `~` the way fleetsweep does.
fn ssh_identities(ssh: &HashMap<String, Vec<String>>, home: &Path) -> Vec<PathBuf> {
    ssh.get("identityfile")
        .into_iter()
        .flatten()
        .map(|raw| match raw.strip_prefix("~/") {
            Some(rest) => home.join(rest),
            None => PathBuf::from(raw),
        })
        .collect()
}

#[test]
fn lookups_equal_ssh_g_on_the_same_files() {
    let user = local_user();
    let mut checked = 0;
    for case in CASES {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".ssh")).unwrap();
        lay_out(dir.path(), case.files, &user);
        let main = dir.path().join(case.main);
        let config = ssh_config::load_with(&main, Some(home.clone()), ConfigKind::User)
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        for &alias in case.hosts {
            let ssh = ssh_g(&main, &home, alias)
                .unwrap_or_else(|e| panic!("{} / {alias}: ssh -G failed: {e}", case.name));
            let ours = config.lookup(alias);
            for (key, want) in effective(&ours, alias, &user) {
                let got = ssh.get(key).cloned().unwrap_or_default();
                assert_eq!(want, got, "{} / {alias}: {key}", case.name);
            }
            let theirs = ssh_identities(&ssh, &home);
            if ours.identity_files.is_empty() {
                // ssh's defaults (~/.ssh/id_rsa, ...) when the config names none.
                assert_eq!(
                    theirs.first(),
                    Some(&home.join(".ssh/id_rsa")),
                    "{} / {alias}: identityfile",
                    case.name
                );
            } else {
                assert_eq!(
                    ours.identity_files, theirs,
                    "{} / {alias}: identityfile",
                    case.name
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} lookups compared");
}

/// Configs that ssh refuses are refused here too, with file:line and a fix.
#[test]
fn configs_ssh_refuses_are_refused_with_file_and_line() {
    let user = local_user();
    let cases: &[(Files, &str)] = &[
        (
            &[("main", "Host a\n  Match foo x\n")],
            "main:2:9: unknown Match criterion \"foo\"",
        ),
        (
            &[("main", "Match host\n")],
            "main:1:7: Match host needs a pattern list",
        ),
        (
            &[("main", "Port 1\nMatch\n")],
            "main:2: Match needs criteria",
        ),
        (
            &[("main", "Match host a user b all\n")],
            "main:1:21: Match all cannot be combined",
        ),
        (
            &[
                ("main", "Include {root}/self\n"),
                ("self", "\nInclude {root}/self\n"),
            ],
            "self:2: Include nested more than 16 levels deep",
        ),
        (
            &[
                ("main", "Host x\n  Include {root}/bad.conf\n"),
                ("bad.conf", "Port 0\n"),
            ],
            "bad.conf:1:6: bad Port",
        ),
    ];
    for (files, needle) in cases {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        lay_out(dir.path(), files, &user);
        let main = dir.path().join("main");
        assert!(
            ssh_g(&main, &home, "a").is_err(),
            "ssh -G accepted {files:?}"
        );
        match ssh_config::load_with(&main, Some(home), ConfigKind::User) {
            Err(e) => assert!(e.to_string().contains(needle), "{files:?}: {e}"),
            Ok(c) => panic!("{files:?}: accepted: {c:?}"),
        }
    }
}

/// `Match exec` is never run: a clear error instead (ssh itself would run it).
#[test]
fn match_exec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("ran");
    let main = dir.path().join("config");
    std::fs::write(
        &main,
        format!(
            "Host a\n  Port 1\nMatch exec \"touch {}\"\n  Port 2\n",
            flag.display()
        ),
    )
    .unwrap();
    let err = ssh_config::load(&main).unwrap_err().to_string();
    assert!(
        err.contains("config:3:7: Match exec is refused") && err.contains("--no-ssh-config"),
        "{err}"
    );
    assert!(!flag.exists());
}
