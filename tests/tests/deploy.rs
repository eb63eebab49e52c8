//! Installing fleetsweep as an SRE would (docs/deploy.md): the hardened
//! systemd units rated by the real `systemd-analyze`, the scan unit's own
//! command line sweeping real sshd test hosts (subnet 127.0.248.x) with its
//! credentials and state directories, the Debian package built by
//! `scripts/package` and installed by the real `dpkg` into an empty root,
//! the completions sourced by the real `bash`, the man pages rendered by the
//! real `groff`/`man`, and the git revision in `--version` and the metrics.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use fleetsweep_e2e::{e2e_dir, Fleet, FleetSpec, Scenario};

/// The `fleetsweep` binary cargo built from this source for these tests.
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");
const SUBNET: u8 = 248;
const SERVICES: [&str; 2] = ["fleetsweep-scan.service", "fleetsweep-serve.service"];
const UNITS: [&str; 3] = [
    "fleetsweep-scan.service",
    "fleetsweep-scan.timer",
    "fleetsweep-serve.service",
];

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn repo() -> PathBuf {
    e2e_dir().parent().unwrap().to_path_buf()
}

fn unit_path(unit: &str) -> PathBuf {
    repo().join("deploy/systemd").join(unit)
}

/// Runs a tool; a missing tool fails the test with how to install it.
fn tool(program: &str, package: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): run scripts/setup, or apt-get install -y {package}")
        })
}

fn fleetsweep(args: &[&str]) -> Output {
    let out = Command::new(FLEETSWEEP).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "fleetsweep {args:?}: {}",
        text(&out.stderr)
    );
    out
}

/// The exposure score `systemd-analyze security --offline=yes` gives a unit file.
fn exposure(unit: &Path, root: Option<&Path>) -> f64 {
    let mut args = vec!["security".to_string(), "--offline=yes".to_string()];
    if let Some(root) = root {
        args.push(format!("--root={}", root.display()));
    }
    args.push(unit.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = tool("systemd-analyze", "systemd", &args);
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| {
            panic!(
                "no exposure level from systemd-analyze for {}: {stdout}{}",
                unit.display(),
                text(&out.stderr)
            )
        });
    let score = line
        .split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("cannot read the score in {line:?}"));
    eprintln!("{}: exposure {score}", unit.display());
    score
}

/// Each service is rated 3.0 or better (it was 8.6 EXPOSED), both by the
/// score and by `--threshold=30`, which makes systemd-analyze exit non-zero above it.
#[test]
fn units_are_rated_3_or_better_by_systemd_analyze_security() {
    for unit in SERVICES {
        let path = unit_path(unit);
        let score = exposure(&path, None);
        assert!(score <= 3.0, "{unit} is rated {score}, above 3.0");
        let path = path.display().to_string();
        let out = tool(
            "systemd-analyze",
            "systemd",
            &["security", "--offline=yes", "--threshold=30", &path],
        );
        assert!(
            out.status.success(),
            "{unit} fails --threshold=30: {}",
            text(&out.stderr)
        );
    }
}

/// The key settings the hardening rests on are there, for the reader who
/// changes a unit later: the state store where the units say, no $HOME.
#[test]
fn units_name_their_state_config_and_credentials() {
    for unit in SERVICES {
        let body = std::fs::read_to_string(unit_path(unit)).unwrap();
        let exec = exec_start(&body);
        for want in [
            "--state %S/fleetsweep/state.db",
            "--inventory %E/fleetsweep/inventory.yaml",
            "--no-ssh-config",
        ] {
            assert!(
                exec.contains(want),
                "{unit}: ExecStart lacks {want}: {exec}"
            );
        }
        for want in [
            "DynamicUser=yes",
            "StateDirectory=fleetsweep",
            "ConfigurationDirectory=fleetsweep",
            "LoadCredential=fleetsweep:/etc/fleetsweep/credentials",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "CapabilityBoundingSet=\n",
            "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n",
            "MemoryDenyWriteExecute=yes",
        ] {
            assert!(body.contains(want), "{unit} lacks {want:?}");
        }
    }
    let timer = std::fs::read_to_string(unit_path("fleetsweep-scan.timer")).unwrap();
    assert!(timer.contains("\nPersistent=true"), "{timer}");
    assert!(timer.contains("\nRandomizedDelaySec="), "{timer}");
    assert!(
        !timer
            .lines()
            .any(|l| l.starts_with("OnUnitActiveSec=") || l.starts_with("OnBootSec=")),
        "Persistent= only applies to OnCalendar=: {timer}"
    );
    let calendar = timer
        .lines()
        .find_map(|l| l.strip_prefix("OnCalendar="))
        .expect("the timer has an OnCalendar=");
    let out = tool(
        "systemd-analyze",
        "systemd",
        &["calendar", "--iterations=4", calendar],
    );
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{calendar}: {}", text(&out.stderr));
    // Four elapses, six hours apart: 00:00, 06:00, 12:00, 18:00.
    for hour in ["00:00:00", "06:00:00", "12:00:00", "18:00:00"] {
        assert!(shown.contains(hour), "{calendar} never at {hour}: {shown}");
    }
}

/// ExecStart= of a unit file, continuation lines joined.
fn exec_start(unit: &str) -> String {
    let joined = unit.replace("\\\n", " ");
    let line = joined
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart=");
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The scan unit's ExecStart, run as systemd would run it: `%E` (config
/// root), `%S` (state root) and `%d`/`$CREDENTIALS_DIRECTORY` (the
/// credentials) replaced by temp directories, HOME pointing nowhere. The
/// inventory takes the SSH key from the credentials directory. The sweep
/// finds KESL (exit 1, a success for the unit) and leaves the state store,
/// report and metrics where the unit says.
#[test]
fn scan_unit_command_line_sweeps_real_hosts_with_its_credentials_and_state() {
    let fleet = Fleet::start(FleetSpec {
        subnet: SUBNET,
        hosts: vec![
            ("web-01".into(), Scenario::Clean),
            ("app-01".into(), Scenario::Kesl),
        ],
    })
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let etc = tmp.path().join("etc");
    let state = tmp.path().join("var/lib");
    let creds = tmp.path().join("credentials");
    for d in [
        etc.join("fleetsweep"),
        state.join("fleetsweep"),
        creds.clone(),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    // As LoadCredential=fleetsweep:/etc/fleetsweep/credentials hands over
    // /etc/fleetsweep/credentials/id_ed25519.
    std::fs::copy(fleet.client_key_path(), creds.join("fleetsweep_id_ed25519")).unwrap();
    let inventory = std::fs::read_to_string(fleet.inventory_path()).unwrap();
    let key_line = format!("  identity_file: {}\n", fleet.client_key_path().display());
    assert!(inventory.contains(&key_line), "{inventory}");
    std::fs::write(
        etc.join("fleetsweep/inventory.yaml"),
        inventory.replace(
            &key_line,
            "  identity_file: ${CREDENTIALS_DIRECTORY}/fleetsweep_id_ed25519\n",
        ),
    )
    .unwrap();
    std::fs::copy(
        repo().join("deploy/debian/exceptions.yaml"),
        etc.join("fleetsweep/exceptions.yaml"),
    )
    .unwrap();

    let unit = std::fs::read_to_string(unit_path("fleetsweep-scan.service")).unwrap();
    let argv = unit_argv(&unit, &etc, &state, &creds);
    let out = Command::new(FLEETSWEEP)
        .args(&argv[1..])
        .envs(unit_env(&etc, &state, &creds, tmp.path()))
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    let code = out.status.code();
    let success = unit
        .lines()
        .find_map(|l| l.strip_prefix("SuccessExitStatus="))
        .unwrap_or("");
    assert_eq!(code, Some(1), "KESL on app-01 is exit 1: {stderr}");
    assert!(
        success.split_whitespace().any(|c| c == "1"),
        "exit 1 must count as success for the unit: SuccessExitStatus={success}"
    );
    assert!(
        !tmp.path().join("no-home").exists(),
        "nothing goes under $HOME"
    );
    assert!(state.join("fleetsweep/state.db").is_file(), "{stderr}");
    let (_, report) =
        fleetsweep_e2e::report::Report::read(&state.join("fleetsweep/last-sweep.yaml")).unwrap();
    assert_eq!(report.host("web-01").outcome, "scanned", "{stderr}");
    assert_eq!(report.host("app-01").outcome, "scanned", "{stderr}");
    assert!(
        report
            .host("app-01")
            .findings
            .iter()
            .any(|f| f.rule == "kaspersky/kesl"),
        "{:?}",
        report.host("app-01").findings
    );
    let metrics = std::fs::read_to_string(state.join("fleetsweep/fleetsweep.prom")).unwrap();
    let revision = git_revision();
    assert!(
        metrics.contains(&format!("revision=\"{revision}\"")),
        "fleetsweep_build_info carries the checkout's revision {revision}: {}",
        metrics
            .lines()
            .filter(|l| l.contains("build_info"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // JSON logs for the journal, one object per line.
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(line.starts_with('{'), "not a JSON log line: {line}");
    }

    // The serve unit's command line on the same directories (only its
    // --listen moved to a free port): it sweeps at once into the same store.
    let serve = std::fs::read_to_string(unit_path("fleetsweep-serve.service")).unwrap();
    let mut argv = unit_argv(&serve, &etc, &state, &creds);
    let listen = argv.iter().position(|a| a == "--listen").unwrap() + 1;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    argv[listen] = format!("127.0.0.1:{port}");
    let log = tmp.path().join("serve.log");
    let mut daemon = Command::new(FLEETSWEEP)
        .args(&argv[1..])
        .envs(unit_env(&etc, &state, &creds, tmp.path()))
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("XDG_DATA_HOME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let page = loop {
        let page = ureq::get(&format!("http://127.0.0.1:{port}/metrics"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default();
        if page.lines().any(|l| l == "fleetsweep_last_sweep_success 1") {
            break page;
        }
        if std::time::Instant::now() > deadline || daemon.try_wait().unwrap().is_some() {
            let _ = daemon.kill();
            let _ = daemon.wait();
            panic!(
                "the serve unit's daemon did not finish a sweep: {page}\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    daemon.kill().unwrap();
    daemon.wait().unwrap();
    assert!(page.contains(&format!("revision=\"{revision}\"")), "{page}");
    assert!(
        !tmp.path().join("no-home").exists(),
        "nothing goes under $HOME"
    );
    let db = state.join("fleetsweep/state.db").display().to_string();
    let list = text(&fleetsweep(&["report", "--state", &db, "--list"]).stdout);
    assert_eq!(
        list.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .count(),
        2,
        "the timer's sweep and the daemon's, in one store: {list}"
    );
    drop(fleet);
}

/// A unit's ExecStart as argv, with systemd's specifiers for the
/// configuration root (`%E`), the state root (`%S`) and the credentials
/// directory (`%d`) replaced by test directories.
fn unit_argv(unit: &str, etc: &Path, state: &Path, creds: &Path) -> Vec<String> {
    let exec = exec_start(unit);
    assert!(
        !exec.contains('"') && !exec.contains('\'') && !exec.contains('$'),
        "quoting and variables in ExecStart are not handled here: {exec}"
    );
    let argv: Vec<String> = exec
        .split(' ')
        .map(|w| {
            w.replace("%E", &etc.display().to_string())
                .replace("%S", &state.display().to_string())
                .replace("%d", &creds.display().to_string())
        })
        .collect();
    assert_eq!(argv[0], "/usr/bin/fleetsweep", "{exec}");
    argv
}

/// The environment systemd gives the unit's process; HOME points nowhere.
fn unit_env(etc: &Path, state: &Path, creds: &Path, tmp: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("CREDENTIALS_DIRECTORY", creds.to_path_buf()),
        ("STATE_DIRECTORY", state.join("fleetsweep")),
        ("CONFIGURATION_DIRECTORY", etc.join("fleetsweep")),
        ("HOME", tmp.join("no-home")),
    ]
}

/// The revision these tests and the binary were built with (build.rs sets
/// `FLEETSWEEP_REVISION` for every target of the package at once), checked to
/// be a commit of this checkout: `git rev-parse --short=12` of the HEAD at
/// build time. Comparing with the live HEAD instead would fail whenever a
/// commit lands while the tests run.
fn git_revision() -> String {
    let revision = env!("FLEETSWEEP_REVISION").to_string();
    assert!(
        revision.len() == 12 && revision.bytes().all(|b| b.is_ascii_hexdigit()),
        "built with revision {revision:?}, not a git revision"
    );
    let dir = repo().display().to_string();
    let out = tool(
        "git",
        "git",
        &[
            "-C",
            &dir,
            "cat-file",
            "-e",
            &format!("{revision}^{{commit}}"),
        ],
    );
    assert!(
        out.status.success(),
        "{revision} is not a commit of this checkout: {}",
        text(&out.stderr)
    );
    revision
}

#[test]
fn version_prints_the_revision_of_the_checkout() {
    let out = fleetsweep(&["--version"]);
    let version = text(&out.stdout);
    assert_eq!(
        version.trim(),
        format!(
            "fleetsweep {} (revision {})",
            env!("CARGO_PKG_VERSION"),
            git_revision()
        )
    );
}

/// Sources a completion script in a non-interactive bash and asks it for
/// the candidates of a command line, as <TAB> would.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let cmd = format!(
        "source '{}' || exit 9\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE=\"${{COMP_WORDS[*]}}\"\nCOMP_POINT=${{#COMP_LINE}}\n_fleetsweep fleetsweep \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.iter().map(|w| format!("'{w}'")).collect::<Vec<_>>().join(" "),
        words.len() - 1
    );
    let out = tool("bash", "bash", &["--norc", "--noprofile", "-c", &cmd]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "bash completion for {words:?}: exit {:?}, stderr: {}",
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout).lines().map(str::to_string).collect()
}

fn assert_completes(script: &Path) {
    assert_eq!(bash_complete(script, &["fleetsweep", "sc"]), ["scan"]);
    assert_eq!(
        bash_complete(script, &["fleetsweep", "c"]),
        ["catalog", "completions"]
    );
    assert_eq!(
        bash_complete(script, &["fleetsweep", "scan", "--no-p"]),
        ["--no-progress"]
    );
    assert_eq!(
        bash_complete(script, &["fleetsweep", "completions", "f"]),
        ["fish"]
    );
}

#[test]
fn completions_complete_subcommands_and_flags_in_bash() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("fleetsweep.bash");
    std::fs::write(&script, fleetsweep(&["completions", "bash"]).stdout).unwrap();
    assert_completes(&script);
    // zsh and fish are not on the test machine: their scripts name the
    // subcommands and flags the parser knows.
    for (shell, head) in [
        ("zsh", "#compdef fleetsweep\n"),
        ("fish", "\ncomplete -c fleetsweep "),
    ] {
        let script = text(&fleetsweep(&["completions", shell]).stdout);
        assert!(script.contains(head), "{shell}: {script:.300}");
        for word in ["scan", "serve", "no-progress", "state"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = Command::new(FLEETSWEEP)
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("possible values: bash"),
        "{}",
        text(&out.stderr)
    );
}

/// groff's warnings (-ww) on a page, with its output thrown away (-z).
fn groff_warnings(page: &Path) -> String {
    let out = tool(
        "groff",
        "groff",
        &["-man", "-Tutf8", "-ww", "-z", &page.display().to_string()],
    );
    assert!(out.status.success(), "groff {}", page.display());
    text(&out.stderr)
}

/// `man -l` renders a page (plain text: MANPAGER=cat, no terminal).
fn man_render(page: &Path) -> String {
    let out = Command::new("man")
        .args(["-l", &page.display().to_string()])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap_or_else(|e| panic!("cannot run man ({e}): apt-get install -y man-db"));
    assert!(
        out.status.success(),
        "man -l {}: {}",
        page.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

#[test]
fn man_pages_render_without_warnings() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("fleetsweep.1");
    std::fs::write(&page, fleetsweep(&["man"]).stdout).unwrap();
    assert_eq!(groff_warnings(&page), "");
    let shown = man_render(&page);
    for want in ["NAME", "SYNOPSIS", "fleetsweep", "scan", "Kaspersky", "—"] {
        assert!(shown.contains(want), "man fleetsweep lacks {want}: {shown}");
    }
    let dir = tmp.path().join("man1");
    fleetsweep(&["man", "--output-dir", &dir.display().to_string()]);
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pages.sort();
    for want in [
        "fleetsweep.1",
        "fleetsweep-scan.1",
        "fleetsweep-serve.1",
        "fleetsweep-catalog-check.1",
    ] {
        assert!(pages.iter().any(|p| p == want), "{want} not in {pages:?}");
    }
    for p in &pages {
        assert_eq!(groff_warnings(&dir.join(p)), "", "{p}");
    }
    let scan = man_render(&dir.join("fleetsweep-scan.1"));
    for want in ["fleetsweep-scan", "--state", "Exit codes:"] {
        assert!(
            scan.contains(want),
            "man fleetsweep-scan lacks {want}: {scan}"
        );
    }
}

fn run_ok(program: &str, package: &str, args: &[&str]) -> String {
    let out = tool(program, package, args);
    assert!(
        out.status.success(),
        "{program} {args:?}: exit {:?}\n{}{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `scripts/package` builds the .deb from the binary under test; apt accepts
/// it on this machine (a simulated `apt-get install ./fleetsweep_*.deb`); the
/// real dpkg installs it into an empty root, where the installed binary,
/// man pages, completions, units, tmpfiles entry and default config work as
/// installed; a purge leaves nothing behind.
#[test]
fn package_installs_into_an_empty_root_and_works_there() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(repo().join("scripts/package"))
        .args(["--binary", FLEETSWEEP, "--fast", "--output-dir"])
        .arg(tmp.path().join("out"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/package: {}",
        text(&out.stderr)
    );
    let deb = text(&out.stdout).trim().to_string();
    assert!(
        deb.ends_with(".deb") && Path::new(&deb).is_file(),
        "scripts/package printed {deb:?}"
    );
    eprintln!(
        "{deb}: {} KiB",
        std::fs::metadata(&deb).unwrap().len() / 1024
    );

    let contents = run_ok("dpkg-deb", "dpkg", &["--contents", &deb]);
    for (mode, path) in [
        ("-rwxr-xr-x", "./usr/bin/fleetsweep"),
        (
            "-rw-r--r--",
            "./usr/lib/systemd/system/fleetsweep-scan.service",
        ),
        (
            "-rw-r--r--",
            "./usr/lib/systemd/system/fleetsweep-scan.timer",
        ),
        (
            "-rw-r--r--",
            "./usr/lib/systemd/system/fleetsweep-serve.service",
        ),
        ("-rw-r--r--", "./usr/lib/tmpfiles.d/fleetsweep.conf"),
        ("-rw-r--r--", "./etc/fleetsweep/inventory.yaml"),
        ("-rw-r--r--", "./etc/fleetsweep/exceptions.yaml"),
        ("-rw-r--r--", "./etc/fleetsweep/known_hosts"),
        ("drwx------", "./etc/fleetsweep/credentials/"),
        (
            "-rw-r--r--",
            "./usr/share/bash-completion/completions/fleetsweep",
        ),
        (
            "-rw-r--r--",
            "./usr/share/zsh/vendor-completions/_fleetsweep",
        ),
        (
            "-rw-r--r--",
            "./usr/share/fish/vendor_completions.d/fleetsweep.fish",
        ),
        ("-rw-r--r--", "./usr/share/man/man1/fleetsweep.1.gz"),
        ("-rw-r--r--", "./usr/share/man/man1/fleetsweep-scan.1.gz"),
        ("-rw-r--r--", "./usr/share/doc/fleetsweep/copyright"),
    ] {
        assert!(
            contents.lines().any(|l| l.starts_with(mode)
                && l.contains(" root/root ")
                && l.ends_with(&format!(" {path}"))),
            "{mode} root/root {path} not in the package:\n{contents}"
        );
    }
    let depends = run_ok("dpkg-deb", "dpkg", &["--field", &deb, "Depends"]);
    assert!(depends.contains("libc6 (>="), "Depends: {depends}");
    let conffiles = run_ok("dpkg-deb", "dpkg", &["--info", &deb, "conffiles"]);
    assert_eq!(
        conffiles,
        "/etc/fleetsweep/inventory.yaml\n/etc/fleetsweep/exceptions.yaml\n/etc/fleetsweep/known_hosts\n"
    );
    let simulated = run_ok("apt-get", "apt", &["--simulate", "install", &deb]);
    assert!(
        simulated.contains("Inst fleetsweep") && simulated.contains("Conf fleetsweep"),
        "apt would not install it: {simulated}"
    );

    // The empty root: a dpkg database and nothing else.
    let root = tmp.path().join("root");
    for d in ["var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let r = root.display().to_string();
    let dpkg_root = format!("--root={r}");
    // No libc6 in the empty root (--force-depends); the maintainer scripts run
    // on this machine with DPKG_ROOT set, as for any --root install.
    run_ok(
        "dpkg",
        "dpkg",
        &[
            "--force-depends",
            "--force-script-chrootless",
            &dpkg_root,
            "-i",
            &deb,
        ],
    );
    let status = run_ok("dpkg", "dpkg", &[&dpkg_root, "--status", "fleetsweep"]);
    assert!(status.contains("Status: install ok installed"), "{status}");

    let bin = root.join("usr/bin/fleetsweep").display().to_string();
    let version = run_ok(&bin, "fleetsweep", &["--version"]);
    assert_eq!(
        version.trim(),
        format!(
            "fleetsweep {} (revision {})",
            env!("CARGO_PKG_VERSION"),
            git_revision()
        )
    );
    // The catalog is compiled in: the installed binary lists it with no file around.
    let catalog = run_ok(&bin, "fleetsweep", &["catalog", "check"]);
    assert!(catalog.contains("ok: catalog"), "{catalog}");

    for page in [
        "fleetsweep.1.gz",
        "fleetsweep-scan.1.gz",
        "fleetsweep-serve.1.gz",
    ] {
        let path = root.join("usr/share/man/man1").join(page);
        let out = Command::new("man")
            .args(["--warnings", "-l", &path.display().to_string()])
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap_or_else(|e| panic!("cannot run man ({e}): apt-get install -y man-db"));
        assert!(out.status.success(), "man -l {page}");
        assert_eq!(text(&out.stderr), "", "man -l {page} warns");
        assert!(text(&out.stdout).contains("SYNOPSIS"), "{page}");
    }
    assert_completes(&root.join("usr/share/bash-completion/completions/fleetsweep"));

    // The installed units: verified by systemd against the installed binary
    // (the base units they refer to, sysinit.target & co, from this machine),
    // and rated as in the repository.
    let units = root.join("usr/lib/systemd/system");
    run_ok(
        "cp",
        "coreutils",
        &[
            "-rn",
            "/usr/lib/systemd/system/.",
            &units.display().to_string(),
        ],
    );
    let mut verify = vec!["verify".to_string(), "--man=no".into(), dpkg_root.clone()];
    verify.extend(UNITS.iter().map(|u| units.join(u).display().to_string()));
    let verify: Vec<&str> = verify.iter().map(String::as_str).collect();
    let out = tool("systemd-analyze", "systemd", &verify);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: exit {:?}\n{}",
        out.status.code(),
        text(&out.stderr)
    );
    for unit in SERVICES {
        let score = exposure(&units.join(unit), Some(&root));
        assert!(score <= 3.0, "installed {unit}: {score}");
    }

    // tmpfiles.d recreates the credentials directory, root-only.
    let creds = root.join("etc/fleetsweep/credentials");
    std::fs::remove_dir(&creds).unwrap();
    run_ok(
        "systemd-tmpfiles",
        "systemd",
        &[&dpkg_root, "--create", "fleetsweep.conf"],
    );
    {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&creds).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o700);
        assert_eq!(meta.uid(), 0);
    }

    // The default config is valid: it only lacks hosts, and says so.
    let etc = root.join("etc/fleetsweep");
    let out = Command::new(&bin)
        .args(["scan", "--no-state", "--no-progress", "--inventory"])
        .arg(etc.join("inventory.yaml"))
        .arg("--exceptions")
        .arg(etc.join("exceptions.yaml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no hosts to sweep"),
        "{}",
        text(&out.stderr)
    );

    run_ok(
        "dpkg",
        "dpkg",
        &[
            "--force-script-chrootless",
            &dpkg_root,
            "--purge",
            "fleetsweep",
        ],
    );
    for gone in [
        "usr/bin/fleetsweep",
        "etc/fleetsweep",
        "usr/share/man/man1/fleetsweep.1.gz",
    ] {
        assert!(!root.join(gone).exists(), "{gone} left after purge");
    }
}

/// Paths an inventory names under `${CREDENTIALS_DIRECTORY}/` (here the SSH
/// key and the WinRM password, as `fleetsweep hosts` shows them) resolve into
/// the directory systemd's LoadCredential= filled; without it they stay as
/// written, so the error names them.
#[test]
fn inventory_paths_resolve_into_the_credentials_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let inventory = tmp.path().join("inventory.yaml");
    std::fs::write(
        &inventory,
        "defaults:\n  identity_file: ${CREDENTIALS_DIRECTORY}/fleetsweep_id_ed25519\n  passphrase_file: $CREDENTIALS_DIRECTORY/fleetsweep_passphrase\nhosts:\n  - name: web-01\n    address: 127.0.248.99\n  - name: win-01\n    address: 127.0.248.98\n    user: svc\n    transport: winrm\n    winrm: {scheme: https, auth: ntlm, password_file: \"${CREDENTIALS_DIRECTORY}/fleetsweep_winrm_password\"}\n",
    )
    .unwrap();
    let hosts = |creds: Option<&Path>| {
        let mut cmd = Command::new(FLEETSWEEP);
        cmd.args(["hosts", "--no-ssh-config", "--format", "yaml", "-i"])
            .arg(&inventory);
        match creds {
            Some(dir) => cmd.env("CREDENTIALS_DIRECTORY", dir),
            None => cmd.env_remove("CREDENTIALS_DIRECTORY"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let creds = tmp.path().join("run/credentials/fleetsweep-scan.service");
    let shown = hosts(Some(&creds));
    for file in ["fleetsweep_id_ed25519", "fleetsweep_winrm_password"] {
        let want = creds.join(file).display().to_string();
        assert!(shown.contains(&want), "{want} not in:\n{shown}");
    }
    assert!(!shown.contains("CREDENTIALS_DIRECTORY"), "{shown}");
    let unset = hosts(None);
    assert!(
        unset.contains("${CREDENTIALS_DIRECTORY}/fleetsweep_id_ed25519")
            && unset.contains("${CREDENTIALS_DIRECTORY}/fleetsweep_winrm_password"),
        "{unset}"
    );
}
