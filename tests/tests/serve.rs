//! `fleetsweep serve` end to end: the real binary against real sshd test
//! hosts, scraped by a real Prometheus (Debian's `prometheus`), checked by the
//! real `promtool`, reached over TLS by the real `curl`, with certificates
//! made by the real `openssl`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleetsweep_e2e::prom::Prometheus;
use fleetsweep_e2e::{demo_hosts, signal, Fleet, FleetSpec, Scenario, Signal};
use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// GET with optional headers: (status, body); status 0 when no answer.
fn get(url: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    match req.call() {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

fn promtool_check(what: &str, page: &str) {
    fleetsweep_e2e::prom::promtool_check_metrics(page).unwrap_or_else(|e| panic!("{what}: {e:#}"));
}

/// The value of the one sample of `metric` (exact label set) in `page`.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// A running `fleetsweep serve`; killed on drop.
struct Serve {
    child: Option<Child>,
    port: u16,
    log: PathBuf,
}

impl Serve {
    fn start(dir: &Path, name: &str, args: &[&str]) -> Serve {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(FLEETSWEEP)
            .arg("serve")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            // Each daemon keeps its own history (never the user's default store).
            .arg("--state")
            .arg(dir.join(format!("{name}.db")))
            .args(["-v", "--log-format", "json"])
            .env_remove("SSH_AUTH_SOCK")
            .env_remove("FLEETSWEEP_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting fleetsweep serve");
        Serve {
            child: Some(child),
            port,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("serve exited early ({st}):\n{}", self.log_text());
            }
            if get(&self.url("/healthz"), &[]).0 == 200 {
                return;
            }
            assert!(Instant::now() < deadline, "serve did not answer /healthz");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One sample of the daemon's /metrics page.
    fn metric(&self, series: &str) -> Option<f64> {
        sample(&get(&self.url("/metrics"), &[]).1, series)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The JSON log events (tracing's json format) with this message.
    fn events(&self, message: &str) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["fields"]["message"] == message)
            .collect()
    }

    fn signal(&self, sig: Signal) {
        signal(self.child.as_ref().unwrap().id(), sig).unwrap();
    }

    /// Waits for exit; returns the code and how long it took.
    fn wait_exit(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        let start = Instant::now();
        let child = self.child.as_mut().unwrap();
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return (st.code(), start.elapsed());
            }
            if start.elapsed() > limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("serve did not exit within {limit:?}:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until `q` has exactly one result in a real Prometheus (the
/// harness's), and returns its value.
fn value(prom: &Prometheus, q: &str, within: Duration) -> f64 {
    prom.wait_for(q, |r| r.len() == 1, within)
        .unwrap_or_else(|e| panic!("{e:#}"))[0]
        .value
}

/// The fields of the report these tests read.
#[derive(Debug, serde::Deserialize)]
struct Report {
    sweep: ReportSweep,
    summary: ReportSummary,
    hosts: Vec<serde_json::Value>,
}
#[derive(Debug, serde::Deserialize)]
struct ReportSweep {
    complete: bool,
}
#[derive(Debug, serde::Deserialize)]
struct ReportSummary {
    hosts: std::collections::BTreeMap<String, usize>,
}

/// (a) a real Prometheus scrapes /metrics and, blackbox-style, /probe for
/// two inventory hosts; (b) the endpoints one by one.
#[test]
fn serve_is_scraped_by_prometheus_and_answers_every_endpoint() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 236,
        hosts: demo_hosts(),
    })
    .expect("starting the test fleet");
    let inv = fleet.inventory_path();
    let report_file = fleet.dir().join("serve-report.yaml");
    let mut serve = Serve::start(
        fleet.dir(),
        "serve",
        &[
            "-i",
            inv.to_str().unwrap(),
            "--interval",
            "3s",
            "--jitter",
            "0",
            "--connect-timeout",
            "2s",
            "--host-timeout",
            "4s",
            "--report",
            report_file.to_str().unwrap(),
            "--metric-label",
            "site",
        ],
    );
    serve.wait_healthy();

    // Before the first sweep ends (hang-01 alone takes the 4 s host timeout):
    // /report says so, /metrics has the daemon's series but no sweep series.
    let (code, body) = get(&serve.url("/report"), &[]);
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("no sweep has finished yet"), "{body}");
    let (code, early) = get(&serve.url("/metrics"), &[]);
    assert_eq!(code, 200);
    assert_eq!(
        sample(&early, "fleetsweep_sweep_in_progress"),
        Some(1.0),
        "{early}"
    );
    assert_eq!(
        sample(&early, "fleetsweep_last_sweep_success"),
        None,
        "{early}"
    );
    assert!(sample(&early, "process_resident_memory_bytes").unwrap() > 0.0);
    promtool_check("/metrics before the first sweep", &early);

    let (code, body) = get(&serve.url("/healthz"), &[]);
    assert_eq!((code, body.trim()), (200, "ok"));

    // The first report, from /report and from --report.
    let deadline = Instant::now() + Duration::from_secs(60);
    let yaml = loop {
        let (code, body) = get(&serve.url("/report"), &[]);
        if code == 200 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no report after 60s:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let report: Report = serde_saphyr::from_str(&yaml).expect("/report is a YAML report");
    assert!(report.sweep.complete);
    assert_eq!(report.hosts.len(), 12);
    let scanned = report.summary.hosts["scanned"];
    assert_eq!(scanned, 7);
    assert!(report_file.exists(), "--report written after the sweep");

    // /probe: bad targets are refused with a reason, never swept.
    let (code, body) = get(&serve.url("/probe"), &[]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("give a target"), "{body}");
    let (code, body) = get(&serve.url("/probe?target=127.0.0.1"), &[]);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not a host of the inventory"), "{body}");
    let (code, _) = get(&serve.url("/nope"), &[]);
    assert_eq!(code, 404);

    // A probe of the KESL host: success, with its finding.
    let (code, page) = get(&serve.url("/probe?target=app-01"), &[]);
    assert_eq!(code, 200, "{page}");
    promtool_check("/probe?target=app-01", &page);
    assert_eq!(
        sample(&page, "fleetsweep_probe_success"),
        Some(1.0),
        "{page}"
    );
    // Labelled as on the sweep page: policy, product and the allow-listed `site`.
    assert_eq!(
        sample(
            &page,
            "fleetsweep_host_finding{host=\"app-01\",policy=\"ban\",product=\"Kaspersky Endpoint Security for Linux\",rule=\"kaspersky/kesl\",site=\"lab\",status=\"new\",vendor=\"Kaspersky\"}"
        ),
        Some(1.0),
        "{page}"
    );
    assert!(
        !page.contains("fleetsweep_hosts"),
        "a probe page holds that host only"
    );

    // The scrape timeout is honoured: a hanging host, header 2 → an answer
    // within about 2 s, probe_success 0 and the failure's outcome.
    let start = Instant::now();
    let (code, page) = get(
        &serve.url("/probe?target=hang-01"),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "2")],
    );
    let took = start.elapsed();
    eprintln!("probe of a hanging host with scrape timeout 2s answered in {took:?}");
    assert_eq!(code, 200, "{page}");
    assert!(
        took < Duration::from_millis(2500) && took >= Duration::from_millis(1000),
        "took {took:?}"
    );
    assert_eq!(
        sample(&page, "fleetsweep_probe_success"),
        Some(0.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "fleetsweep_host_scan_failure{host=\"hang-01\",outcome=\"timed_out\",site=\"lab\"}"
        ),
        Some(1.0),
        "{page}"
    );
    promtool_check("/probe?target=hang-01", &page);

    // 20 probes at once of the hanging host share one sweep (one SSH
    // connection, one of the 16 slots): every one is answered, none gets 503.
    // (The 503 beyond 16 hosts probed at once: scanner's serve::tests.)
    let url = serve.url("/probe?target=hang-01");
    let codes: Vec<u16> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..20)
            .map(|_| sc.spawn(|| get(&url, &[("X-Prometheus-Scrape-Timeout-Seconds", "3")]).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let busy = codes.iter().filter(|c| **c == 503).count();
    let answered = codes.iter().filter(|c| **c == 200).count();
    assert_eq!((busy, answered), (0, 20), "{codes:?}");
    let joined = serve
        .events("probe answered")
        .iter()
        .filter(|e| e["fields"]["joined"] == true)
        .count();
    assert_eq!(joined, 19, "one probe started, 19 joined it");

    let (_, page) = get(&serve.url("/metrics"), &[]);
    promtool_check("/metrics", &page);
    assert_eq!(
        sample(
            &page,
            "fleetsweep_scrape_requests_total{code=\"503\",handler=\"/probe\"}"
        ),
        None,
        "{page}"
    );
    assert_eq!(sample(&page, "fleetsweep_last_sweep_success"), Some(1.0));

    // (a) A real Prometheus: /metrics every second, /probe for two hosts
    // with blackbox-style relabeling.
    let target = format!("127.0.0.1:{}", serve.port);
    let prom = Prometheus::start(
        &format!(
            "- job_name: fleetsweep\n  static_configs:\n  - targets: ['{target}']\n\
             - job_name: fleetsweep_probe\n  scrape_interval: 5s\n  scrape_timeout: 5s\n  metrics_path: /probe\n\
             \x20 static_configs:\n  - targets: [app-01, web-01]\n  relabel_configs:\n\
             \x20 - source_labels: [__address__]\n    target_label: __param_target\n\
             \x20 - source_labels: [__param_target]\n    target_label: instance\n\
             \x20 - target_label: __address__\n    replacement: '{target}'\n"
        ),
        &[],
    )
    .unwrap();
    let within = Duration::from_secs(60);
    assert_eq!(value(&prom, "up{job=\"fleetsweep\"}", within), 1.0);
    assert_eq!(
        value(
            &prom,
            "fleetsweep_hosts{job=\"fleetsweep\",outcome=\"scanned\"}",
            within
        ),
        scanned as f64,
        "Prometheus sees as many scanned hosts as /report"
    );
    assert_eq!(
        value(
            &prom,
            "fleetsweep_probe_success{instance=\"app-01\"}",
            within
        ),
        1.0
    );
    assert_eq!(
        value(&prom,
            "fleetsweep_host_finding{job=\"fleetsweep_probe\",instance=\"app-01\",rule=\"kaspersky/kesl\"}",
            within
        ),
        1.0
    );
    assert_eq!(
        value(
            &prom,
            "fleetsweep_probe_success{instance=\"web-01\"}",
            within
        ),
        1.0
    );
    assert_eq!(
        value(
            &prom,
            "fleetsweep_probe_findings{instance=\"web-01\"}",
            within
        ),
        0.0,
        "look-alikes stay clean"
    );
    assert!(
        value(
            &prom,
            "process_resident_memory_bytes{job=\"fleetsweep\"}",
            within
        ) > 0.0
    );
    assert!(
        value(
            &prom,
            "fleetsweep_scrape_requests_total{job=\"fleetsweep\",handler=\"/probe\",code=\"200\"}",
            within
        ) >= 1.0
    );
    assert_eq!(
        value(
            &prom,
            "fleetsweep_host_scan_failure{job=\"fleetsweep\",host=\"wrongkey-01\"}",
            within
        ),
        1.0
    );

    // Every scheduled sweep goes through the state store: by a later sweep the
    // KESL finding of app-01 is `open` (seen before, still there), and
    // Prometheus reads that status from /metrics.
    assert_eq!(
        value(&prom,
            "fleetsweep_host_finding{job=\"fleetsweep\",host=\"app-01\",rule=\"kaspersky/kesl\",status=\"open\"}",
            within
        ),
        1.0,
        "{}",
        serve.log_text()
    );
    assert!(
        value(
            &prom,
            "sum(fleetsweep_findings{job=\"fleetsweep\",status=\"open\"})",
            within
        ) >= 1.0
    );

    serve.signal(Signal::SIGTERM);
    let (code, _) = serve.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", serve.log_text());
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (apt-get install -y openssl; scripts/setup does this)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        text(&out.stderr)
    );
}

/// A CA, a server certificate for 127.0.0.1 and a client certificate.
fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=fleetsweep test CA",
        "-days",
        "2",
    ]);
    openssl(dir, &ca);
    for (name, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, crt, e) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
            format!("{name}.ext"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        let subj = format!("/CN={name}");
        req.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", &crt, "-days", "2", "-extfile", &e,
            ],
        );
    }
}

/// curl: (exit code, HTTP status, headers, body).
fn curl(dir: &Path, args: &[&str]) -> (i32, u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "20", "-D", "-", "-o", "body.out"])
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("curl (apt-get install -y curl; scripts/setup does this)");
    let stdout = text(&out.stdout);
    let (headers, code) = stdout.rsplit_once('\n').unwrap_or(("", "0"));
    let body = std::fs::read_to_string(dir.join("body.out")).unwrap_or_default();
    let _ = std::fs::remove_file(dir.join("body.out"));
    (
        out.status.code().unwrap_or(-1),
        code.trim().parse().unwrap_or(0),
        headers.to_string(),
        body,
    )
}

/// (c) web.yml: TLS, basic auth with bcrypt, response headers, mTLS, and a
/// file with an unknown key.
#[test]
fn serve_with_tls_basic_auth_and_mtls() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 237,
        hosts: vec![("web-01".into(), Scenario::Clean)],
    })
    .expect("starting the test fleet");
    let dir = fleet.dir();
    make_certs(dir);
    let hash = bcrypt::hash("s3cret pw", 4).unwrap();
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  min_version: TLS12\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n\
             basic_auth_users:\n  prometheus: '{hash}'\n"
        ),
    )
    .unwrap();
    let inv = fleet.inventory_path();
    let inv = inv.to_str().unwrap();
    let mut serve = Serve::start(
        dir,
        "serve-tls",
        &[
            "-i",
            inv,
            "--interval",
            "1h",
            "--web.config.file",
            web.to_str().unwrap(),
        ],
    );
    let https = format!("https://127.0.0.1:{}", serve.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, code, _, _) = curl(dir, &["--cacert", "ca.crt", &format!("{https}/healthz")]);
        if code == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no TLS answer:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let ok = ["--cacert", "ca.crt", "-u", "prometheus:s3cret pw"];
    let (rc, code, headers, body) = curl(dir, &[&ok[..], &[&format!("{https}/metrics")]].concat());
    assert_eq!((rc, code), (0, 200), "{headers}{body}");
    assert!(body.contains("fleetsweep_sweeps_total"), "{body}");
    assert!(
        headers.to_lowercase().contains("x-frame-options: deny"),
        "{headers}"
    );
    // The cached check answers the same.
    let (_, code, _, _) = curl(dir, &[&ok[..], &[&format!("{https}/metrics")]].concat());
    assert_eq!(code, 200);
    let (_, code, _, _) = curl(
        dir,
        &[&ok[..], &[&format!("{https}/probe?target=web-01")]].concat(),
    );
    assert_eq!(code, 200);

    let (_, code, headers, _) = curl(
        dir,
        &[
            "--cacert",
            "ca.crt",
            "-u",
            "prometheus:wrong",
            &format!("{https}/metrics"),
        ],
    );
    assert_eq!(code, 401);
    assert!(headers.contains("www-authenticate: Basic"), "{headers}");
    let (_, code, _, _) = curl(
        dir,
        &[
            "--cacert",
            "ca.crt",
            "-u",
            "nobody:s3cret pw",
            &format!("{https}/metrics"),
        ],
    );
    assert_eq!(code, 401);
    let (_, code, _, _) = curl(dir, &["--cacert", "ca.crt", &format!("{https}/report")]);
    assert_eq!(code, 401, "no credentials");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let (rc, code, _, _) = curl(
        dir,
        &[
            "-u",
            "prometheus:s3cret pw",
            &format!("http://127.0.0.1:{}/metrics", serve.port),
        ],
    );
    assert!(
        rc != 0 && code != 200,
        "plain HTTP must fail (curl exit {rc}, code {code})"
    );
    // An untrusted certificate is refused by the client (no --cacert).
    let (rc, _, _, _) = curl(
        dir,
        &["-u", "prometheus:s3cret pw", &format!("{https}/metrics")],
    );
    assert_ne!(rc, 0);
    serve.signal(Signal::SIGTERM);
    assert_eq!(serve.wait_exit(Duration::from_secs(10)).0, Some(0));

    // mTLS: a client certificate from the CA is required.
    let mtls = dir.join("web-mtls.yml");
    std::fs::write(
        &mtls,
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    )
    .unwrap();
    let mut serve = Serve::start(
        dir,
        "serve-mtls",
        &[
            "-i",
            inv,
            "--interval",
            "1h",
            "--web.config.file",
            mtls.to_str().unwrap(),
        ],
    );
    let https = format!("https://127.0.0.1:{}", serve.port);
    let with_cert = [
        "--cacert",
        "ca.crt",
        "--cert",
        "client.crt",
        "--key",
        "client.key",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, code, _, _) = curl(
            dir,
            &[&with_cert[..], &[&format!("{https}/healthz")]].concat(),
        );
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no mTLS answer:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (rc, code, _, _) = curl(dir, &["--cacert", "ca.crt", &format!("{https}/healthz")]);
    assert!(
        rc != 0 && code != 200,
        "no client certificate must fail (curl exit {rc}, code {code})"
    );
    serve.signal(Signal::SIGTERM);
    assert_eq!(serve.wait_exit(Duration::from_secs(10)).0, Some(0));

    // A web.yml with an unknown key: exit 2, file:line:column.
    let bad = dir.join("bad-web.yml");
    std::fs::write(
        &bad,
        "tls_server_config:\n  cert_file: server.crt\n  key_fle: server.key\n",
    )
    .unwrap();
    let out = Command::new(FLEETSWEEP)
        .args([
            "serve",
            "--no-state",
            "-i",
            inv,
            "--web.config.file",
            bad.to_str().unwrap(),
        ])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .output_within(RUN_LIMIT);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}:3:3: unknown field `key_fle`", bad.display())),
        "{err}"
    );
}

/// (d) SIGTERM mid-sweep → exit 0 promptly; (e) with an interval shorter
/// than a sweep, sweeps run back to back and never overlap.
#[test]
fn serve_sweeps_never_overlap_and_sigterm_stops_promptly() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 238,
        hosts: vec![
            ("web-01".into(), Scenario::Clean),
            ("hang-01".into(), Scenario::Hangs),
        ],
    })
    .expect("starting the test fleet");
    let inv = fleet.inventory_path();
    let inv = inv.to_str().unwrap();

    // SIGTERM during the very first sweep: no complete sweep exists, so the
    // partial report is kept (written, marked incomplete).
    let partial = fleet.dir().join("partial.yaml");
    let mut serve = Serve::start(
        fleet.dir(),
        "serve-first",
        &[
            "-i",
            inv,
            "--interval",
            "1h",
            "--connect-timeout",
            "60s",
            "--host-timeout",
            "60s",
            "--report",
            partial.to_str().unwrap(),
        ],
    );
    serve.wait_healthy();
    std::thread::sleep(Duration::from_secs(2));
    serve.signal(Signal::SIGTERM);
    let (code, took) = serve.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", serve.log_text());
    eprintln!("SIGTERM during the first sweep: exit after {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    let r: Report = serde_saphyr::from_str(&std::fs::read_to_string(&partial).unwrap()).unwrap();
    assert!(!r.sweep.complete);
    assert_eq!(r.summary.hosts.get("interrupted"), Some(&1));

    // Interval 1 s, each sweep ~3 s (hang-01 times out): back to back.
    let report_file = fleet.dir().join("report.yaml");
    let mut serve = Serve::start(
        fleet.dir(),
        "serve-loop",
        &[
            "-i",
            inv,
            "--interval",
            "1s",
            "--jitter",
            "0.5",
            "--connect-timeout",
            "60s",
            "--host-timeout",
            "3s",
            "--report",
            report_file.to_str().unwrap(),
        ],
    );
    serve.wait_healthy();
    let deadline = Instant::now() + Duration::from_secs(60);
    while serve.events("sweep finished").len() < 3 {
        assert!(
            Instant::now() < deadline,
            "fewer than 3 sweeps in 60s:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // A sweep is running now (they follow each other at once); stop mid-sweep.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, page) = get(&serve.url("/metrics"), &[]);
        if sample(&page, "fleetsweep_sweep_in_progress") == Some(1.0) {
            assert!(sample(&page, "fleetsweep_sweeps_total{result=\"complete\"}").unwrap() >= 3.0);
            break;
        }
        assert!(Instant::now() < deadline, "no sweep in progress:\n{page}");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    serve.signal(Signal::SIGTERM);
    let (code, took) = serve.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{}", serve.log_text());
    eprintln!("SIGTERM mid-sweep: exit after {took:?}");
    assert!(
        took < Duration::from_secs(3),
        "SIGTERM took {took:?} to stop serve"
    );

    // The log: started, finished, started, finished, ... and each sweep
    // starts after the previous one finished.
    let log = serve.log_text();
    let seq: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["fields"]["message"] == "sweep started" || v["fields"]["message"] == "sweep finished"
        })
        .collect();
    assert!(seq.len() >= 8, "{log}");
    for (i, e) in seq.iter().enumerate() {
        let want = if i % 2 == 0 {
            "sweep started"
        } else {
            "sweep finished"
        };
        assert_eq!(e["fields"]["message"], want, "event {i} of:\n{log}");
    }
    let finished: Vec<&serde_json::Value> = seq.iter().skip(1).step_by(2).collect();
    for w in finished.windows(2) {
        let prev_end = w[0]["fields"]["finished"].as_str().unwrap();
        let next_start = w[1]["fields"]["started"].as_str().unwrap();
        let ts = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        assert!(
            ts(next_start) >= ts(prev_end),
            "overlap: {} started before {} finished",
            next_start,
            prev_end
        );
    }
    eprintln!("{} sweeps back to back, none overlapping", finished.len());
    let last = finished.last().unwrap();
    assert_eq!(last["fields"]["result"], "interrupted", "{log}");
    assert!(
        finished
            .iter()
            .filter(|e| e["fields"]["result"] == "complete")
            .count()
            >= 3
    );
    // A complete sweep exists, so the partial one did not replace it.
    let r: Report =
        serde_saphyr::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    assert!(r.sweep.complete, "--report keeps the last complete sweep");
}

/// SIGHUP re-reads the inventory (and catalog, exceptions, known_hosts): a
/// host added to the file becomes a `/probe` target without a restart; a
/// broken file is refused with its file:line:column, the previous
/// configuration stays in use, and `fleetsweep_config_last_reload_successful`
/// says so until a good one is loaded.
#[test]
fn serve_reloads_its_configuration_on_sighup_and_keeps_the_old_one_when_the_new_is_broken() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 239,
        hosts: vec![
            ("web-01".into(), Scenario::Clean),
            ("kesl-01".into(), Scenario::Kesl),
        ],
    })
    .expect("starting the test fleet");
    let full = std::fs::read_to_string(fleet.inventory_path()).unwrap();
    // The same inventory without kesl-01 (host entries start with `  - name: `).
    let (head, hosts) = full.split_once("hosts:\n").unwrap();
    let kept: Vec<&str> = hosts
        .split("  - name: ")
        .filter(|e| !e.is_empty() && !e.starts_with("kesl-01"))
        .collect();
    let first = format!("{head}hosts:\n  - name: {}", kept.join("  - name: "));
    assert!(
        first.contains("web-01") && !first.contains("kesl-01"),
        "{first}"
    );
    let inv = fleet.dir().join("reloaded.yaml");
    std::fs::write(&inv, &first).unwrap();

    let mut serve = Serve::start(
        fleet.dir(),
        "serve-reload",
        &["-i", inv.to_str().unwrap(), "--interval", "1h"],
    );
    serve.wait_healthy();
    let probe = |s: &Serve| get(&s.url("/probe?target=kesl-01"), &[]);
    let (code, body) = probe(&serve);
    assert_eq!(code, 400, "not in the inventory yet: {body}");
    let reloaded = |s: &Serve| s.metric("fleetsweep_config_last_reload_successful");
    assert_eq!(reloaded(&serve), Some(1.0));

    // A host added to the file: probed after SIGHUP, no restart.
    std::fs::write(&inv, &full).unwrap();
    serve.signal(Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while serve
        .events("configuration reloaded; the next sweep uses it")
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "no reload:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, body) = probe(&serve);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("fleetsweep_probe_success 1"),
        "kesl-01 probed after the reload:\n{body}"
    );
    assert_eq!(reloaded(&serve), Some(1.0));

    // A broken file: refused, named, the previous configuration kept.
    std::fs::write(&inv, full.replacen("hosts:\n", "hosts:\n  - name: [\n", 1)).unwrap();
    serve.signal(Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while reloaded(&serve) != Some(0.0) {
        assert!(
            Instant::now() < deadline,
            "reload not refused:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = serve.log_text();
    let refusal = log
        .lines()
        .find(|l| l.contains("configuration reload refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{log}"));
    assert!(
        refusal.contains(&format!("{}:", inv.display()))
            && refusal.contains("previous configuration stays in use"),
        "{refusal}"
    );
    let (code, body) = probe(&serve);
    assert_eq!(
        code, 200,
        "the old configuration still serves kesl-01: {body}"
    );
    assert!(
        serve.child.as_mut().unwrap().try_wait().unwrap().is_none(),
        "serve still runs"
    );

    // Fixed again: loaded, the metric back to 1.
    std::fs::write(&inv, &full).unwrap();
    serve.signal(Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(30);
    while reloaded(&serve) != Some(1.0) {
        assert!(
            Instant::now() < deadline,
            "good reload not applied:\n{}",
            serve.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
