//! The container image and the containerised test hosts, as users and their CI
//! run them (docs/container.md): the real Docker Engine builds the base image
//! (`scripts/docker-base debian`, only when `debian:bookworm-slim` is missing),
//! the fleetsweep image from `deploy/container/Dockerfile` and the test-host
//! images from `deploy/container/testhost`; test hosts run as containers on a
//! docker network this test creates, and the fleetsweep image scans them.
//!
//! CI time: the image's build stage takes the binary cargo built for these tests
//! (`--build-arg PREBUILT=...`) instead of compiling it again inside docker (a
//! fat-LTO release build there takes about 10 minutes on 2 cores); everything
//! else in the Dockerfile runs as users build it. Containers, networks and the
//! staged binary are removed when each test ends, passed or failed (drop guards).
//! Traffic goes only to containers on the test's own network and to loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fleetsweep_e2e::e2e_dir;

/// The `fleetsweep` binary cargo built from this source for these tests.
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");
/// Image tags this test builds (rebuilt every run; docker's layer cache keeps it quick).
const IMAGE: &str = "fleetsweep:e2e";
const HOST_KESL: &str = "fleetsweep-testhost:e2e-kesl";
const HOST_CLEAN: &str = "fleetsweep-testhost:e2e-clean";
/// The image's non-root user (deploy/container/Dockerfile).
const UID: u32 = 10001;

fn repo() -> PathBuf {
    e2e_dir().parent().unwrap().to_path_buf()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `docker ARGS`; a missing docker fails with how to get it.
fn docker(args: &[&str]) -> Output {
    match Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run docker ({e}): these tests need Docker Engine with its daemon running \
             (Debian: apt-get install -y docker.io, then systemctl start docker or dockerd &)"
        ),
    }
}

/// `docker ARGS`, which must succeed; its stdout.
fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A unique name for this process's containers and networks.
fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "fleetsweep-e2e-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes its containers, then its networks, when dropped (a failed assert included).
#[derive(Default)]
struct Cleanup {
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", "-v", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
    }
}

impl Cleanup {
    fn network(&mut self) -> String {
        let name = unique("net");
        docker_ok(&["network", "create", &name]);
        self.networks.push(name.clone());
        name
    }

    /// `docker run -d` of `image` on `network` as `alias`, key lines in AUTHORIZED_KEYS.
    fn test_host(&mut self, network: &str, image: &str, alias: &str, pubkey: &str) -> String {
        let name = unique(alias);
        self.containers.push(name.clone());
        let env = format!("AUTHORIZED_KEYS={pubkey}");
        docker_ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "--network",
            network,
            "--network-alias",
            alias,
            "-e",
            &env,
            image,
        ]);
        name
    }
}

/// Builds the images once per test process; later callers wait for the first.
fn images() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(build_images);
}

fn build_images() {
    let repo = repo();
    let out = docker(&["info", "--format", "{{.ServerVersion}}"]);
    assert!(
        out.status.success(),
        "the docker daemon does not answer ({}): start it (systemctl start docker, or dockerd &)",
        text(&out.stderr).trim()
    );
    let t = Instant::now();
    let base = Command::new(repo.join("scripts/docker-base"))
        .arg("debian")
        .output()
        .expect("running scripts/docker-base");
    assert!(
        base.status.success(),
        "scripts/docker-base debian failed:\n{}{}",
        text(&base.stdout),
        text(&base.stderr)
    );
    eprintln!("base image ready in {:.1?}", t.elapsed());

    // The binary goes into the build context (the repository; .dockerignore keeps
    // target/ out), staged under a git-ignored directory removed afterwards.
    struct Staged(PathBuf);
    impl Drop for Staged {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let staged = Staged(repo.join(".container-prebuilt"));
    std::fs::create_dir_all(&staged.0).unwrap();
    std::fs::copy(FLEETSWEEP, staged.0.join("fleetsweep")).unwrap();
    let t = Instant::now();
    let ctx = repo.to_str().unwrap();
    let dockerfile = repo.join("deploy/container/Dockerfile");
    docker_ok(&[
        "build",
        "-q",
        "--force-rm",
        "-f",
        dockerfile.to_str().unwrap(),
        "--build-arg",
        "RUST_IMAGE=debian:bookworm-slim",
        "--build-arg",
        "PREBUILT=.container-prebuilt/fleetsweep",
        "--build-arg",
        "REVISION=e2e",
        "-t",
        IMAGE,
        ctx,
    ]);
    drop(staged);
    eprintln!("{IMAGE} built in {:.1?}", t.elapsed());

    let t = Instant::now();
    let testhost = repo.join("deploy/container/testhost");
    for (tag, kaspersky) in [(HOST_CLEAN, "none"), (HOST_KESL, "kesl")] {
        let arg = format!("KASPERSKY={kaspersky}");
        docker_ok(&[
            "build",
            "-q",
            "--force-rm",
            "--build-arg",
            &arg,
            "-t",
            tag,
            testhost.to_str().unwrap(),
        ]);
    }
    eprintln!("test-host images built in {:.1?}", t.elapsed());
    prune();
}

/// Removes earlier builds of this test's tags and the build stage's images (binary
/// and sources, about 750 MB a run), which builds leave untagged.
fn prune() {
    for label in [
        "label=org.opencontainers.image.title=fleetsweep",
        "label=org.opencontainers.image.title=fleetsweep-testhost",
        "label=org.opencontainers.image.title=fleetsweep-demo-postgres",
        "label=org.opencontainers.image.title=fleetsweep-demo-prometheus",
        "label=fleetsweep.stage=build",
    ] {
        let _ = docker(&["image", "prune", "-f", "--filter", label]);
    }
}

/// A directory mounted into the scanner container at /work: the key, the
/// inventory, known_hosts and the report, owned by the image's user.
struct Work {
    dir: tempfile::TempDir,
    pubkey: String,
}

impl Work {
    fn new() -> Work {
        let dir = tempfile::Builder::new()
            .prefix("fleetsweep-container-")
            .tempdir()
            .unwrap();
        let key = dir.path().join("id_ed25519");
        let out = Command::new("ssh-keygen")
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "fleetsweep-e2e",
                "-f",
            ])
            .arg(&key)
            .output()
            .unwrap_or_else(|e| {
                panic!("cannot run ssh-keygen ({e}): apt-get install -y openssh-client")
            });
        assert!(out.status.success(), "ssh-keygen: {}", text(&out.stderr));
        let pubkey = std::fs::read_to_string(key.with_extension("pub"))
            .unwrap()
            .trim()
            .to_owned();
        Work { dir, pubkey }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes the inventory (host name -> container address) and hands every
    /// file to the image's user.
    fn inventory(&self, hosts: &[(&str, &str)]) {
        let mut y = String::from(
            "defaults:\n  user: scanner\n  identity_file: /work/id_ed25519\n  connect_timeout: 10s\nhosts:\n",
        );
        for (name, address) in hosts {
            y.push_str(&format!("  - name: {name}\n    address: {address}\n"));
        }
        std::fs::write(self.path().join("inventory.yaml"), y).unwrap();
        let out = Command::new("chown")
            .arg("-R")
            .arg(format!("{UID}:{UID}"))
            .arg(self.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "chown: {}", text(&out.stderr));
    }

    fn mount(&self) -> String {
        format!("{}:/work", self.path().display())
    }
}

/// Waits until sshd in each container answers (its host keys are made at start).
fn wait_for_sshd(containers: &[&str]) {
    for c in containers {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = docker(&["exec", c, "sh", "-c", "test -s /run/sshd.pid"]);
            if out.status.success() {
                break;
            }
            if Instant::now() > deadline {
                let logs = docker(&["logs", c]);
                panic!(
                    "sshd in {c} did not start in 30 s:\n{}{}",
                    text(&logs.stdout),
                    text(&logs.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// `docker run --rm` of the fleetsweep image on `network` with /work mounted.
fn scan(network: &str, work: &Work, extra: &[&str]) -> Output {
    let name = unique("scan");
    let mount = work.mount();
    let mut args = vec![
        "run",
        "--rm",
        "--name",
        &name,
        "--network",
        network,
        "-v",
        &mount,
        IMAGE,
        "scan",
        "-i",
        "/work/inventory.yaml",
        "--accept-new-host-keys",
        "/work/known_hosts",
        "--no-progress",
    ];
    args.extend_from_slice(extra);
    docker(&args)
}

fn report(work: &Work) -> serde_json::Value {
    let path = work.path().join("report.yaml");
    let yaml = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("no report at {}: {e}", path.display()));
    serde_saphyr::from_str(&yaml).unwrap()
}

fn host<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == name)
        .unwrap_or_else(|| panic!("host {name} not in the report: {report:#}"))
}

fn rules(host: &serde_json::Value) -> Vec<String> {
    host["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_owned())
        .collect()
}

/// The image scans containerised hosts: exit 1 and the Kaspersky host in the
/// report when one has KESL, exit 0 when the fleet is clean; the report is
/// written by the image's non-root user into the mounted directory.
#[test]
fn image_scans_containerised_test_hosts() {
    images();
    let mut guard = Cleanup::default();
    let net = guard.network();
    let work = Work::new();
    let kesl = guard.test_host(&net, HOST_KESL, "kesl-01", &work.pubkey);
    let clean = guard.test_host(&net, HOST_CLEAN, "clean-01", &work.pubkey);
    wait_for_sshd(&[&kesl, &clean]);
    work.inventory(&[("kesl-01", "kesl-01"), ("clean-01", "clean-01")]);

    let t = Instant::now();
    let out = scan(
        &net,
        &work,
        &["--no-state", "--report", "/work/report.yaml"],
    );
    let stdout = text(&out.stdout);
    eprintln!("scan of 2 containers: {:.1?}\n{stdout}", t.elapsed());
    assert_eq!(
        out.status.code(),
        Some(1),
        "banned software found must exit 1:\n{stdout}{}",
        text(&out.stderr)
    );
    assert!(
        stdout.contains("kesl-01") && stdout.contains("Kaspersky Endpoint Security for Linux"),
        "the summary names the Kaspersky host and product:\n{stdout}"
    );
    let r = report(&work);
    assert_eq!(r["summary"]["hosts"]["scanned"], 2, "{r:#}");
    assert_eq!(r["summary"]["hosts"]["affected"], 1, "{r:#}");
    assert_eq!(r["summary"]["hosts"]["clean"], 1, "{r:#}");
    let k = host(&r, "kesl-01");
    assert_eq!(k["outcome"], "scanned");
    assert_eq!(k["os"]["name"], "Debian GNU/Linux");
    assert!(
        rules(k).contains(&"kaspersky/kesl".to_owned()),
        "kesl-01: {k:#}"
    );
    let c = host(&r, "clean-01");
    assert_eq!(c["outcome"], "scanned");
    assert!(rules(c).is_empty(), "clean-01 has findings: {c:#}");
    // Host keys were recorded on first use, as the CI recipe does.
    let known = std::fs::read_to_string(work.path().join("known_hosts")).unwrap();
    assert_eq!(known.lines().count(), 2, "known_hosts:\n{known}");

    // The clean host alone: exit 0, what fails or passes a CI job.
    let out = scan(&net, &work, &["--no-state", "--limit", "clean-01"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "a clean fleet exits 0:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    // A host whose sshd is gone is not reported clean: exit 3.
    docker_ok(&["stop", "-t", "1", &clean]);
    let out = scan(&net, &work, &["--no-state", "--limit", "clean-01"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "an unreachable host must not pass:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `serve` from the image: the HEALTHCHECK turns the container healthy, and
/// /metrics (published on loopback) shows the sweep of the containerised fleet.
#[test]
fn serve_turns_healthy_and_serves_metrics() {
    images();
    let mut guard = Cleanup::default();
    let net = guard.network();
    let work = Work::new();
    let kesl = guard.test_host(&net, HOST_KESL, "kesl-01", &work.pubkey);
    wait_for_sshd(&[&kesl]);
    work.inventory(&[("kesl-01", "kesl-01")]);

    let name = unique("serve");
    guard.containers.push(name.clone());
    let mount = work.mount();
    // The image's own check, polled faster than its 30 s so the test is quick.
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &name,
        "--network",
        &net,
        "-v",
        &mount,
        "-p",
        "127.0.0.1::9817",
        "--health-interval",
        "1s",
        IMAGE,
        "serve",
        "-i",
        "/work/inventory.yaml",
        "--accept-new-host-keys",
        "/work/known_hosts",
        "--interval",
        "1h",
        "--listen",
        "0.0.0.0:9817",
    ]);
    let t = Instant::now();
    let deadline = t + Duration::from_secs(60);
    loop {
        let status = docker_ok(&["inspect", "--format", "{{.State.Health.Status}}", &name]);
        if status.trim() == "healthy" {
            break;
        }
        if Instant::now() > deadline {
            let logs = docker(&["logs", &name]);
            let health = docker(&["inspect", "--format", "{{json .State.Health}}", &name]);
            panic!(
                "not healthy after 60 s (status {}):\n{}\nlogs:\n{}{}",
                status.trim(),
                text(&health.stdout),
                text(&logs.stdout),
                text(&logs.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("healthy after {:.1?}", t.elapsed());
    let health = docker_ok(&["inspect", "--format", "{{json .State.Health.Log}}", &name]);
    assert!(health.contains(" 200 OK"), "health log: {health}");

    let port = docker_ok(&["port", &name, "9817/tcp"]);
    let addr = port.lines().next().unwrap().trim().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "published on {addr}");
    let url = format!("http://{addr}/metrics");
    let series = r#"fleetsweep_host_finding{host="kesl-01",policy="ban",product="Kaspersky Endpoint Security for Linux",rule="kaspersky/kesl",status="new",vendor="Kaspersky"} 1"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut page = String::new();
    while Instant::now() < deadline {
        if let Ok(mut r) = ureq::get(&url).call() {
            page = r.body_mut().read_to_string().unwrap_or_default();
            if page.contains(series) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(page.contains(series), "{url} lacks {series}:\n{page}");
    assert!(
        page.contains("fleetsweep_hosts{outcome=\"scanned\"} 1"),
        "{page}"
    );
    // The daemon runs as the image's user, not root.
    let top = docker_ok(&["exec", &name, "id", "-u"]);
    assert_eq!(top.trim(), UID.to_string());
}

/// The image's metadata: non-root user, OCI labels, the health check, CA
/// certificates; and the health check fails when nothing serves.
#[test]
fn image_is_non_root_labelled_and_checks_health() {
    images();
    let user = docker_ok(&["inspect", "--format", "{{.Config.User}}", IMAGE]);
    assert_eq!(user.trim(), format!("{UID}:{UID}"));
    let labels = docker_ok(&["inspect", "--format", "{{json .Config.Labels}}", IMAGE]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["org.opencontainers.image.title"], "fleetsweep");
    assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
    assert_eq!(labels["org.opencontainers.image.revision"], "e2e");
    // The Dockerfile's default VERSION follows the package version.
    assert_eq!(
        labels["org.opencontainers.image.version"],
        env!("CARGO_PKG_VERSION")
    );
    let hc = docker_ok(&["inspect", "--format", "{{json .Config.Healthcheck}}", IMAGE]);
    assert!(
        hc.contains("/usr/local/bin/fleetsweep-healthcheck"),
        "HEALTHCHECK: {hc}"
    );
    let ep = docker_ok(&["inspect", "--format", "{{json .Config.Entrypoint}}", IMAGE]);
    assert_eq!(ep.trim(), r#"["/usr/local/bin/fleetsweep"]"#);

    // As users start it: `docker run IMAGE ...` is the fleetsweep command line.
    let version = docker_ok(&["run", "--rm", IMAGE, "--version"]);
    assert!(
        version.starts_with(&format!("fleetsweep {} ", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let out = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        IMAGE,
        "-c",
        "id -u; id -g; test -s /etc/ssl/certs/ca-certificates.crt && echo ca; test -w \"$HOME\" && echo home",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            UID.to_string().as_str(),
            UID.to_string().as_str(),
            "ca",
            "home"
        ]
    );

    // Nothing listens: the health check says so and fails.
    let out = docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "/usr/local/bin/fleetsweep-healthcheck",
        IMAGE,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert_eq!(
        text(&out.stdout).trim(),
        "nothing listens on 127.0.0.1:9817"
    );
}

/// `docker compose`, else Debian's `docker-compose` (v1), with `env` set.
fn compose(project: &str, env: &[(&str, String)], args: &[&str]) -> Output {
    let dir = repo().join("deploy/compose");
    let v2 = docker(&["compose", "version"]).status.success();
    let mut cmd = if v2 {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else {
        Command::new("docker-compose")
    };
    cmd.current_dir(&dir)
        .args(["-p", project])
        .args(args)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap_or_else(|e| {
        panic!(
            "cannot run docker compose or docker-compose ({e}): Debian: apt-get install -y docker-compose"
        )
    })
}

/// Takes the compose project down, volumes included, when dropped.
struct ComposeDown<'a> {
    project: String,
    env: &'a [(&'a str, String)],
}

impl Drop for ComposeDown<'_> {
    fn drop(&mut self) {
        let _ = compose(
            &self.project,
            self.env,
            &["down", "-v", "--remove-orphans", "-t", "2"],
        );
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `url` until `check` accepts the body or `secs` pass; the last body.
fn poll(url: &str, secs: u64, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut body = String::new();
    while Instant::now() < deadline {
        if let Ok(mut r) = ureq::get(url).call() {
            body = r.body_mut().read_to_string().unwrap_or_default();
            if check(&body) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    body
}

/// The compose demo as users bring it up (deploy/compose): three test hosts, two
/// with KESL; `serve` keeps its history in PostgreSQL; Prometheus scrapes it.
/// The scanner runs this test's image (FLEETSWEEP_IMAGE); the other images are
/// built by compose from the repository; ports are free loopback ports.
#[test]
fn compose_demo_fleet_serve_postgres_prometheus() {
    images();
    let project = unique("compose");
    let (port, prom_port) = (free_port(), free_port());
    let env = [
        ("FLEETSWEEP_IMAGE", IMAGE.to_owned()),
        ("FLEETSWEEP_PORT", port.to_string()),
        ("PROMETHEUS_PORT", prom_port.to_string()),
    ];
    let _down = ComposeDown {
        project: project.clone(),
        env: &env,
    };
    let t = Instant::now();
    // Everything but the scanner, whose image the test built from its own binary.
    let out = compose(
        &project,
        &env,
        &[
            "build",
            "--force-rm",
            "keygen",
            "web-01",
            "web-02",
            "db-01",
            "postgres",
            "prometheus",
        ],
    );
    assert!(
        out.status.success(),
        "compose build: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    eprintln!("compose images built in {:.1?}", t.elapsed());
    prune();
    let out = compose(&project, &env, &["up", "-d", "--no-build"]);
    assert!(
        out.status.success(),
        "compose up: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );

    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let page = poll(&metrics, 90, |p| {
        p.contains("fleetsweep_last_sweep_success 1")
    });
    let logs = || text(&compose(&project, &env, &["logs", "--no-color"]).stdout);
    assert!(
        page.contains("fleetsweep_last_sweep_success 1"),
        "no sweep finished in 90 s: {page}\n{}",
        logs()
    );
    for (host, role) in [("db-01", "db"), ("web-01", "web")] {
        let series = format!(
            r#"fleetsweep_host_finding{{host="{host}",policy="ban",product="Kaspersky Endpoint Security for Linux",role="{role}",rule="kaspersky/kesl",site="demo",status="new",vendor="Kaspersky"}} 1"#
        );
        assert!(page.contains(&series), "no {series} in\n{page}");
    }
    assert!(
        !page.contains(r#"host="web-02""#),
        "web-02 is clean:\n{page}"
    );
    assert!(
        page.contains(r#"fleetsweep_hosts{outcome="scanned",role="web",site="demo"} 2"#),
        "{page}"
    );

    // The history went to PostgreSQL: the report command reads it back there.
    let scanner = text(&compose(&project, &env, &["ps", "-q", "scanner"]).stdout);
    let list = docker_ok(&[
        "exec",
        scanner.trim(),
        "fleetsweep",
        "report",
        "--state",
        "postgresql://fleetsweep@postgres/fleetsweep?sslmode=disable",
        "--list",
    ]);
    let row = list.lines().nth(1).unwrap_or_default();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols.get(2..5), Some(&["yes", "3", "2"][..]), "{list}");

    // Prometheus scrapes the scanner and sees both affected hosts.
    let query = format!(
        "http://127.0.0.1:{prom_port}/api/v1/query?query=sum(fleetsweep_host_finding%7Bjob%3D%22fleetsweep%22%7D)"
    );
    let answer = poll(&query, 60, |b| b.contains(r#","2"]"#));
    assert!(
        answer.contains(r#","2"]"#),
        "Prometheus did not see 2 findings: {answer}\n{}",
        logs()
    );
    eprintln!("compose demo checked after {:.1?}", t.elapsed());
}
