//! End-to-end: the real `fleetsweep` binary on offline bundles made by a
//! hostile host (an outside tester's report): links out of the bundle must
//! not put the scanning machine's files into the report, FIFOs, sockets,
//! devices and directories where a file is expected must not hang or crash
//! the scan, SIGTERM must end a scan of slow bundles, and large bundles must
//! be read in linear time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fleetsweep_e2e::report::{HostReport, Report};
use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

/// What the outside tester put in the scanning machine's secret file.
const SECRET: &str = "fleetsweep-test-secret-7f3a9c";

/// A bundle directory `name` under `root` with its host.yaml.
fn bundle(root: &Path, name: &str, os: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("host.yaml"), format!("name: {name}\nos: {os}\n")).unwrap();
    dir
}

fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that mkfifo only reads.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// A file outside every bundle holding a secret marker, as /etc/shadow would.
fn secret_file(dir: &Path) -> PathBuf {
    let p = dir.join("shadow");
    std::fs::write(
        &p,
        format!(
            "root:{SECRET}:19000:0:99999:7:::\ninstall ok installed\tkesl\t{SECRET}\tamd64\tx\n"
        ),
    )
    .unwrap();
    p
}

/// The finished run of a scan: exit code, stdout, stderr, the report text.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    yaml: String,
    report: Report,
    took: Duration,
}

fn spawn(dir: &Path, report: &Path, extra: &[&str]) -> Child {
    Command::new(FLEETSWEEP)
        .args(["scan", "--offline"])
        .arg(dir)
        .arg("--report")
        .arg(report)
        .args(["--no-state", "--no-progress"])
        .args(extra)
        .env_remove("SSH_AUTH_SOCK")
        .env_remove("FLEETSWEEP_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running fleetsweep")
}

/// Waits for `child` at most `limit`: a scan that does not end is killed and
/// fails the test (it hung on a bundle).
fn finish(mut child: Child, report: &Path, limit: Duration, start: Instant) -> Run {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).ok();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).ok();
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "fleetsweep still running after {limit:?}: it hung on a bundle; stderr: {}",
                err_t.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = start.elapsed();
    let stdout = out_t.join().unwrap();
    let stderr = err_t.join().unwrap();
    let yaml = std::fs::read_to_string(report)
        .unwrap_or_else(|e| panic!("no report ({e}); stderr: {stderr}"));
    let report = Report::parse(&yaml).expect("report parses");
    Run {
        code: status.code(),
        stdout,
        stderr,
        yaml,
        report,
        took,
    }
}

fn scan(dir: &Path, extra: &[&str], limit: Duration) -> Run {
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("report.yaml");
    let start = Instant::now();
    let child = spawn(dir, &report, extra);
    finish(child, &report, limit, start)
}

fn assert_warned(h: &HostReport, want: &str) {
    assert!(
        h.warnings.iter().any(|w| w == want),
        "{}: no warning `{want}` in {:#?}",
        h.name,
        h.warnings
    );
}

#[test]
fn links_out_of_the_bundle_are_refused_and_their_targets_never_read() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret_file(tmp.path());
    let root = tmp.path().join("bundles");

    // Linux: absolute and relative links out, a link inside (allowed), a
    // link to a directory inside whose file is then read.
    let lin = bundle(&root, "lin", "linux");
    symlink(&secret, lin.join("dpkg-query.txt")).unwrap();
    symlink("../../shadow", lin.join("rpm-qa.txt")).unwrap();
    std::fs::create_dir(lin.join("raw")).unwrap();
    std::fs::write(lin.join("raw/find.txt"), "/opt/kaspersky/kesl\n").unwrap();
    symlink("raw/find.txt", lin.join("paths.txt")).unwrap();
    std::fs::write(
        lin.join("raw/os"),
        "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\n",
    )
    .unwrap();
    symlink(lin.join("raw/os"), lin.join("os-release")).unwrap();
    // A link that leaves and comes back in is still inside.
    symlink(
        "../lin/raw/../raw/find.txt",
        lin.join("kesl-control-app-info.txt"),
    )
    .unwrap();

    // macOS: a plist directory that is a link out, plist files that are
    // links out, and a link to a directory inside.
    let mac = bundle(&root, "mac", "macos");
    std::fs::write(mac.join("pkgutil-pkgs.txt"), "com.apple.pkg.Core\n").unwrap();
    symlink(tmp.path(), mac.join("LaunchDaemons")).unwrap();
    std::fs::create_dir(mac.join("plists")).unwrap();
    symlink(&secret, mac.join("plists/evil.plist")).unwrap();
    symlink("plists", mac.join("Info.plist")).unwrap();

    let run = scan(&root, &["--host-timeout", "30"], Duration::from_secs(120));
    for (what, text) in [
        ("report", &run.yaml),
        ("stdout", &run.stdout),
        ("stderr", &run.stderr),
    ] {
        assert!(
            !text.contains(SECRET),
            "the secret reached the {what}:\n{text}"
        );
    }
    // Both package lists were links out: no package database was read, so
    // the host is not known to be clean (the refusals say why).
    let lin = run.report.host("lin");
    assert_eq!(lin.outcome, "probe_failed", "{:?}", lin.error);
    assert!(
        lin.error
            .as_deref()
            .unwrap_or_default()
            .contains("a package database (dpkg, rpm or apk)"),
        "{:?}",
        lin.error
    );
    assert_warned(
        lin,
        "dpkg-query.txt: not read: a symbolic link to a path outside the bundle",
    );
    assert_warned(
        lin,
        "rpm-qa.txt: not read: a symbolic link to a path outside the bundle",
    );
    // The links inside were read: the OS and the KESL install root.
    assert!(
        lin.findings.iter().any(|f| f.rule == "kaspersky/kesl"
            && f.evidence
                .iter()
                .any(|e| e["value"] == "/opt/kaspersky/kesl")),
        "{:#?}",
        lin.findings
    );
    assert!(
        run.yaml.contains("Ubuntu"),
        "os-release through a link inside was read"
    );

    // Its only application plist was a link out: no application was read.
    let mac = run.report.host("mac");
    assert_eq!(mac.outcome, "probe_failed", "{:?}", mac.error);
    assert_warned(
        mac,
        "LaunchDaemons: not read: a symbolic link to a path outside the bundle",
    );
    assert_warned(
        mac,
        "Info.plist/evil.plist: not read: a symbolic link to a path outside the bundle",
    );
}

#[test]
fn fifos_sockets_devices_and_directories_are_refused_without_blocking() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("bundles");
    let lin = bundle(&root, "lin", "linux");
    std::fs::write(
        lin.join("dpkg-query.txt"),
        "install ok installed\tkesl\t12.1.0-1297\tamd64\tAO Kaspersky Lab\n",
    )
    .unwrap();
    // Before the fix, opening this FIFO blocked the sweep for ever.
    mkfifo(&lin.join("rpm-qa.txt"));
    symlink("/dev/zero", lin.join("kesl-control-app-info.txt")).unwrap();
    std::fs::create_dir(lin.join("os-release")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(lin.join("paths.txt")).unwrap();
    let mac = bundle(&root, "mac", "macos");
    std::fs::write(mac.join("pkgutil-pkgs.txt"), "com.kaspersky.kav\n").unwrap();
    mkfifo(&mac.join("launchctl-list.txt"));
    std::fs::create_dir(mac.join("sw_vers.txt")).unwrap();
    // A FIFO where a plist directory is expected, and one inside the other.
    mkfifo(&mac.join("LaunchDaemons"));
    std::fs::create_dir(mac.join("Info.plist")).unwrap();
    mkfifo(&mac.join("Info.plist/app.plist"));
    std::fs::create_dir(mac.join("Info.plist/nested")).unwrap();

    let run = scan(&root, &["--host-timeout", "20"], Duration::from_secs(90));
    println!("scan of FIFOs, sockets and devices took {:?}", run.took);
    let lin = run.report.host("lin");
    assert_eq!(lin.outcome, "scanned", "{:?}", lin.error);
    assert_warned(
        lin,
        "rpm-qa.txt: not read: a FIFO (named pipe), not a regular file",
    );
    assert_warned(
        lin,
        "kesl-control-app-info.txt: not read: a symbolic link to a path outside the bundle",
    );
    assert_warned(lin, "os-release: not read: a directory, not a regular file");
    assert_warned(lin, "paths.txt: not read: a socket, not a regular file");
    assert_eq!(lin.findings[0].rule, "kaspersky/kesl");
    assert_eq!(lin.findings[0].state, "installed");

    let mac = run.report.host("mac");
    // Its Info.plist directory held only a FIFO and a directory: no
    // application was read, so the host is not known to be clean.
    assert_eq!(mac.outcome, "probe_failed", "{:?}", mac.error);
    assert_warned(
        mac,
        "launchctl-list.txt: not read: a FIFO (named pipe), not a regular file",
    );
    assert_warned(
        mac,
        "sw_vers.txt: not read: a directory, not a regular file",
    );
    assert_warned(
        mac,
        "LaunchDaemons: not read: a FIFO (named pipe), not a directory",
    );
    assert_warned(
        mac,
        "Info.plist/app.plist: not read: a FIFO (named pipe), not a regular file",
    );
    assert_warned(
        mac,
        "Info.plist/nested: not read: a directory, not a regular file",
    );
}

#[test]
fn a_bundle_whose_files_are_all_refused_fails_with_the_reasons() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("bundles");
    let lin = bundle(&root, "lin", "linux");
    mkfifo(&lin.join("dpkg-query.txt"));
    symlink("/etc/passwd", lin.join("os-release")).unwrap();
    let run = scan(&root, &["--host-timeout", "20"], Duration::from_secs(90));
    assert_eq!(run.code, Some(3), "a host not scanned: partial");
    let h = run.report.host("lin");
    assert_eq!(h.outcome, "probe_failed");
    let err = h.error.as_deref().unwrap();
    assert!(
        err.contains("no file could be read")
            && err.contains("dpkg-query.txt: not read: a FIFO (named pipe), not a regular file")
            && err.contains("os-release: not read: a symbolic link to a path outside the bundle"),
        "{err}"
    );
    assert!(!run.yaml.contains("root:x:0:0"), "passwd was read");
}

#[test]
fn a_host_yaml_out_of_the_bundle_or_a_fifo_is_an_error_not_a_read_or_a_hang() {
    let tmp = tempfile::tempdir().unwrap();
    let secret = secret_file(tmp.path());
    for (name, make) in [
        (
            "link",
            Box::new(|p: &Path| symlink(&secret, p).unwrap()) as Box<dyn Fn(&Path)>,
        ),
        ("fifo", Box::new(|p: &Path| mkfifo(p))),
    ] {
        let root = tmp.path().join(name);
        let dir = bundle(&root, "b", "linux");
        std::fs::remove_file(dir.join("host.yaml")).unwrap();
        make(&dir.join("host.yaml"));
        let out = Command::new(FLEETSWEEP)
            .args(["scan", "--offline"])
            .arg(&root)
            .args(["--no-state", "--no-progress"])
            .output_within(RUN_LIMIT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(
            stderr.contains("host.yaml: not read: a "),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains(SECRET), "{name}: {stderr}");
    }
}

/// A sweep stuck on slow bundles (a FIFO that used to block for ever, then
/// many large ones) ends promptly on SIGTERM, with a report marked
/// interrupted and the partial exit code.
#[test]
fn sigterm_ends_a_scan_of_slow_bundles_with_an_interrupted_report() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("bundles");
    let first = bundle(&root, "a-fifo", "linux");
    std::fs::write(first.join("os-release"), "NAME=\"Debian GNU/Linux\"\n").unwrap();
    mkfifo(&first.join("dpkg-query.txt"));
    // 100,000 paths that match nothing, shared (hard links) by 40 hosts.
    let big = tmp.path().join("paths.txt");
    let mut text = String::new();
    for i in 0..100_000 {
        text.push_str(&format!("/srv/data/d{}/f{i}\n", i / 100));
    }
    std::fs::write(&big, text).unwrap();
    for n in 0..40 {
        let dir = bundle(&root, &format!("slow-{n:02}"), "linux");
        std::fs::hard_link(&big, dir.join("paths.txt")).unwrap();
    }
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("report.yaml");
    let start = Instant::now();
    let mut child = spawn(
        &root,
        &report,
        &["-v", "--concurrency", "1", "--host-timeout", "600"],
    );
    // Wait until a host has finished: the sweep runs and signals are handled.
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("host scanned") || line.contains("host not scanned") {
                tx.send(()).ok();
            }
            lines.push(line);
        }
        lines.join("\n")
    });
    if rx.recv_timeout(Duration::from_secs(120)).is_err() {
        child.kill().ok();
        panic!("no host finished within 120 s (a FIFO blocked the sweep?)");
    }
    let signalled = Instant::now();
    fleetsweep_e2e::signal(child.id(), fleetsweep_e2e::Signal::SIGTERM).expect("SIGTERM");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if signalled.elapsed() > Duration::from_secs(30) {
            child.kill().ok();
            child.wait().ok();
            panic!("still running 30 s after SIGTERM: a bundle read held up the exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!(
        "SIGTERM after {:?}; exited {:?} later",
        signalled - start,
        signalled.elapsed()
    );
    let stderr = reader.join().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "interrupted, no findings: partial; {stderr}"
    );
    let yaml = std::fs::read_to_string(&report).unwrap();
    let r = Report::parse(&yaml).unwrap();
    assert!(!r.sweep.complete);
    assert_eq!(r.sweep.interrupted_by.as_deref(), Some("SIGTERM"));
    let fifo = r.host("a-fifo");
    assert_eq!(fifo.outcome, "probe_failed", "its package list was a FIFO");
    assert_warned(
        fifo,
        "dpkg-query.txt: not read: a FIFO (named pipe), not a regular file",
    );
    assert!(
        r.hosts.iter().any(|h| h.outcome == "interrupted"),
        "{:?}",
        r.hosts
            .iter()
            .map(|h| (&h.name, &h.outcome))
            .collect::<Vec<_>>()
    );
}

/// 100,000 lines of paths (as paths.txt and as the Linux probe's `paths`
/// section) and 300,000 launchd jobs: each took from 50 s to minutes before
/// (quadratic parsers and matcher). Not a timing assertion: the time is printed.
#[test]
fn large_paths_and_launchctl_bundles_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("bundles");
    let lin = bundle(&root, "lin-paths", "linux");
    std::fs::write(
        lin.join("dpkg-query.txt"),
        "install ok installed\tkesl\t12.1.0-1297\tamd64\tAO Kaspersky Lab\n",
    )
    .unwrap();
    // paths.txt is read up to 100,000 lines: the install root first.
    let mut paths = String::from("/opt/kaspersky/kesl\n");
    let mut section = String::from("@@fleetsweep:n0nce:begin paths\n");
    for i in 0..99_999 {
        paths.push_str(&format!("/opt/kaspersky/kesl/d{}/f{i}\n", i / 100));
        section.push_str(&format!("f\t/var/opt/kaspersky/kesl/d{}/f{i}\n", i / 100));
    }
    std::fs::write(lin.join("paths.txt"), paths).unwrap();
    section.push_str(
        "d\t/var/opt/kaspersky/kesl\n@@fleetsweep:n0nce:end paths rc=0\n\
         @@fleetsweep:n0nce:begin dpkg\ninstall ok installed\tbash\t5.2.15-2\tamd64\tDebian\n\
         @@fleetsweep:n0nce:end dpkg rc=0\n@@fleetsweep:n0nce:done\n",
    );
    let live = bundle(&root, "lin-probe", "linux");
    std::fs::write(live.join("linux.txt"), section).unwrap();

    let mac = bundle(&root, "mac-launchd", "macos");
    let mut jobs = String::from("PID\tStatus\tLabel\n");
    for i in 0..300_000 {
        jobs.push_str(&format!("-\t0\tcom.example.job{i}\n"));
    }
    jobs.push_str("412\t0\tcom.kaspersky.kav\n");
    std::fs::write(mac.join("launchctl-list.txt"), jobs).unwrap();
    // What a macOS verdict requires besides: receipts and applications.
    std::fs::write(mac.join("pkgutil-pkgs.txt"), "com.apple.pkg.Core\n").unwrap();
    std::fs::create_dir(mac.join("Info.plist")).unwrap();
    std::fs::write(
        mac.join("Info.plist/Safari.plist"),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>\
         <key>CFBundleIdentifier</key><string>com.apple.Safari</string>\
         <key>CFBundleShortVersionString</key><string>17.0</string></dict></plist>\n",
    )
    .unwrap();

    let run = scan(&root, &["--host-timeout", "600"], Duration::from_secs(900));
    println!("large bundles scanned in {:?}", run.took);
    for name in ["lin-paths", "lin-probe", "mac-launchd"] {
        let h = run.report.host(name);
        assert_eq!(h.outcome, "scanned", "{name}: {:?}", h.error);
    }
    let kesl = &run.report.host("lin-paths").findings;
    assert_eq!(kesl.len(), 1, "{kesl:#?}");
    assert_eq!(
        (kesl[0].rule.as_str(), kesl[0].state.as_str()),
        ("kaspersky/kesl", "installed")
    );
    assert!(kesl[0]
        .evidence
        .iter()
        .any(|e| e["value"] == "/opt/kaspersky/kesl"));
    let probe = &run.report.host("lin-probe").findings;
    assert!(
        probe.iter().any(|f| f
            .evidence
            .iter()
            .any(|e| e["value"] == "/var/opt/kaspersky/kesl")),
        "{probe:#?}"
    );
    let mac = &run.report.host("mac-launchd").findings;
    assert_eq!(mac.len(), 1, "{mac:#?}");
    assert_eq!(
        (mac[0].rule.as_str(), mac[0].state.as_str()),
        ("kaspersky/kaspersky-mac", "installed")
    );
    assert!(mac[0]
        .evidence
        .iter()
        .any(|e| e["value"] == "com.kaspersky.kav (loaded, running as pid 412)"));
}

/// A bundle that takes longer to read than the host timeout is `timed_out`,
/// like a live host, and its reading does not hold up the end of the scan.
#[test]
fn a_bundle_read_past_the_host_timeout_is_timed_out() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("bundles");
    let slow = bundle(&root, "slow", "linux");
    let mut text = String::new();
    for i in 0..400_000 {
        text.push_str(&format!(
            "install ok installed\tpkg{i}\t1.{i}-1\tamd64\tDebian <debian@example.org>\n"
        ));
    }
    std::fs::write(slow.join("dpkg-query.txt"), text).unwrap();
    for f in ["rpm-qa.txt", "kesl-control-app-info.txt", "paths.txt"] {
        std::fs::hard_link(slow.join("dpkg-query.txt"), slow.join(f)).unwrap();
    }
    let run = scan(&root, &["--host-timeout", "1"], Duration::from_secs(120));
    println!("scan with a 1 s host timeout took {:?}", run.took);
    let h = run.report.host("slow");
    assert_eq!(h.outcome, "timed_out", "{:?}", h.error);
    assert!(
        h.error.as_deref().unwrap().contains("host timeout of 1s"),
        "{:?}",
        h.error
    );
    assert_eq!(run.code, Some(3));
}
