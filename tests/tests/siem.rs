//! SIEM outputs against real receivers: Debian's rsyslog (imtcp, plain and
//! TLS with the openssl driver, RFC 5424 parsed by rsyslog itself and its
//! structured data by `mmpstrucdata`) and an HTTP webhook receiver (hyper)
//! that checks signatures and fails attempts on purpose (connection resets,
//! 503 with Retry-After, 500, 400, 429).
//!
//! The library is driven directly for the protocol details (escaping,
//! retries, idempotency keys); the real `fleetsweep scan` binary for the
//! whole path: an offline bundle swept twice with a state store, the second
//! time after the product was removed, sends a `remediated` status change to
//! both receivers; a receiver whose certificate is not from --syslog-ca makes
//! the scan exit 4 after writing its report.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::VecDeque;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};
use fleetsweep_exporters::report::*;
use fleetsweep_exporters::siem::retry::RetryPolicy;
use fleetsweep_exporters::siem::syslog::{SyslogTarget, TlsFiles};
use fleetsweep_exporters::siem::webhook::Webhook;
use fleetsweep_exporters::siem::{self, Event, StatusChange};

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");
const RSYSLOGD: &str = "/usr/sbin/rsyslogd";
/// Debian's python3, which runs the verifier of docs/siem.md.
const PYTHON: &str = "/usr/bin/python3";
const SECRET: &str = "test-secret-0123456789abcdef";
/// A loopback address of this test's range where nothing ever listens
/// (a port of 127.0.0.1 picked as free may be taken by a parallel test).
const NOBODY: &str = "127.0.253.1:9";

// ---------------------------------------------------------------- rsyslog

/// A test CA and a server certificate for `localhost` / 127.0.0.1 (openssl).
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("openssl not found: install it as root: apt-get install -y openssl (scripts/setup does)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        for ca in ["ca", "other-ca"] {
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.pem"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=fleetsweep test {ca}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        }
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ]);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        // A client certificate for receivers that authenticate senders.
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "client.key",
            "-out",
            "client.csr",
            "-subj",
            "/CN=fleetsweep",
        ]);
        std::fs::write(
            d.join("client.cnf"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.pem",
            "-days",
            "2",
            "-extfile",
            "client.cnf",
        ]);
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// One rsyslogd on a loopback port, writing every message it parsed to a
/// file as one JSON object per line: the RFC 5424 header fields rsyslog
/// parsed, the raw structured data, MSG, and `rfc5424-sd` as mmpstrucdata
/// parsed the structured data.
struct Rsyslog {
    child: Child,
    port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Rsyslog {
    fn start(tls: Option<&Pki>) -> Rsyslog {
        Rsyslog::start_with(tls, "anon")
    }

    /// `auth_mode`: rsyslog's `streamDriver.authMode` (`anon`, `x509/certvalid`).
    fn start_with(tls: Option<&Pki>, auth_mode: &str) -> Rsyslog {
        assert!(
            Path::new(RSYSLOGD).exists(),
            "{RSYSLOGD} not found: install rsyslog as root: apt-get install -y rsyslog rsyslog-openssl (scripts/setup does)"
        );
        if tls.is_some() {
            assert!(
                glob_exists("/usr/lib/*/rsyslog/lmnsd_ossl.so"),
                "rsyslog's openssl driver (lmnsd_ossl.so) not found: apt-get install -y rsyslog-openssl (scripts/setup does)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        let out = d.join("received.jsonl");
        let conf = rsyslog_conf(tls, port, &out)
            .replace(r#"authMode="anon""#, &format!(r#"authMode="{auth_mode}""#));
        let conf_path = d.join("rsyslog.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(RSYSLOGD)
            .args(["-n", "-f"])
            .arg(&conf_path)
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting rsyslogd");
        let r = Rsyslog {
            child,
            port,
            out,
            _dir: dir,
        };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "rsyslogd did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    /// The messages received so far, once there are at least `n` (waits up to 15s).
    fn received(&self, n: usize) -> Vec<serde_json::Value> {
        let started = Instant::now();
        loop {
            let text = std::fs::read_to_string(&self.out).unwrap_or_default();
            // Only whole lines: rsyslog may be writing the next one.
            let whole = text.rfind('\n').map_or("", |i| &text[..i]);
            let lines: Vec<serde_json::Value> = whole
                .lines()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
                .collect();
            if lines.len() >= n || started.elapsed() > Duration::from_secs(15) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rsyslog configuration of docs/siem.md ("rsyslog as the receiver"),
/// with this test's port, files and certificates: the documented receiver
/// is the one tested. Without `tls`, as the doc says for plain TCP: without
/// the `global(...)` TLS settings and the `streamDriver` parameters.
fn rsyslog_conf(tls: Option<&Pki>, port: u16, out: &Path) -> String {
    let doc = std::fs::read_to_string(fleetsweep_e2e::e2e_dir().join("../docs/siem.md")).unwrap();
    let start = doc
        .find("# /etc/rsyslog.d/fleetsweep.conf\n")
        .expect("docs/siem.md lost its rsyslog configuration");
    let len = doc[start..].find("\n```").unwrap();
    let mut conf = doc[start..start + len + 1].to_string();
    let mut replace = |from: &str, to: &str| {
        assert!(
            conf.contains(from),
            "docs/siem.md's rsyslog configuration has no `{from}`"
        );
        conf = conf.replace(from, to);
    };
    replace("/var/log/fleetsweep/events.jsonl", out.to_str().unwrap());
    replace(
        r#"port="6514""#,
        &format!(r#"port="{port}" address="127.0.0.1""#),
    );
    match tls {
        Some(p) => replace(
            "/etc/rsyslog.d/tls/",
            &format!("{}/", p.dir.path().display()),
        ),
        None => {
            replace(
                r#" streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon""#,
                "",
            );
            let g = conf.find("global(").unwrap();
            let end = g + conf[g..].find("\n)\n").unwrap() + 3;
            conf.replace_range(g..end, "");
        }
    }
    conf
}

fn glob_exists(pattern: &str) -> bool {
    glob::glob(pattern).is_ok_and(|mut it| it.next().is_some())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The event a received message carries in MSG (after the UTF-8 BOM).
fn msg_event(m: &serde_json::Value) -> Event {
    let msg = m["msg"].as_str().unwrap();
    let json = msg.trim_start_matches('\u{feff}');
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {msg}"))
}

/// mmpstrucdata's reading of our SD element.
fn sd(m: &serde_json::Value) -> &serde_json::Value {
    &m["rfc5424-sd"]["fleetsweep@32473"]
}

// ---------------------------------------------------------------- reports

fn hostile_report() -> Report {
    let finding = Finding {
        rule: "kaspersky/kesl".into(),
        vendor: "Kaspersky".into(),
        product: "Kaspersky Endpoint Security for Linux".into(),
        policy: Policy::Ban,
        state: FindingState::Installed,
        status: Status::New,
        version: Some("12.1\"] [evil@1 x=\"y\"]\\\nline2\u{fffd}".into()),
        first_seen: "2026-12-03T10:00:00Z".parse().unwrap(),
        last_seen: None,
        due: Some("2027-01-02".parse().unwrap()),
        remediated_at: None,
        last_verified: None,
        exception: None,
        effective: None,
        deadline: None,
        signatures: None,
        evidence: vec![Evidence {
            kind: "package".into(),
            source: Some("dpkg".into()),
            value: "kesl ]\"\\\r\n\u{1b}[31m".into(),
        }],
        containers: vec![],
        remediation: None,
    };
    let mut r = Report {
        report_version: REPORT_VERSION,
        sweep: SweepInfo {
            id: "sweep-hostile".into(),
            started: "2026-12-03T10:00:00Z".parse().unwrap(),
            finished: "2026-12-03T10:01:00Z".parse().unwrap(),
            scanner_version: "0.1.0".into(),
            catalogs: vec![],
            shard: None,
            complete: true,
            interrupted_by: None,
        },
        summary: Summary::default(),
        exceptions: None,
        hosts: vec![HostReport {
            name: "web-01 ]\"\\".into(),
            address: "10.0.0.5".into(),
            labels: [("site".to_string(), "fra1\n]".to_string())]
                .into_iter()
                .collect(),
            outcome: Outcome::Scanned,
            error: None,
            os: None,
            duration_seconds: 0.1,
            warnings: vec![],
            incomplete: vec![],
            findings: vec![finding],
            scanned_by: None,
        }]
        .into(),
    };
    r.normalize();
    r
}

fn quick_policy(deadline: Duration) -> RetryPolicy {
    RetryPolicy {
        deadline,
        initial: Duration::from_millis(100),
        max: Duration::from_millis(500),
        attempt_timeout: Duration::from_secs(5),
    }
}

// ---------------------------------------------------------------- syslog tests

#[test]
fn rsyslog_parses_every_event_and_hostile_strings_stay_escaped() {
    let rs = Rsyslog::start(None);
    let report = hostile_report();
    let changes = [StatusChange {
        host: report.hosts.get(0).unwrap().name.to_string(),
        rule: "kaspersky/kesl".into(),
        from: None,
        to: Status::New,
    }];
    let events = siem::events(&report, &changes);
    assert_eq!(events.len(), 3);
    let target = SyslogTarget::new(
        &format!("tcp://127.0.0.1:{}", rs.port),
        &TlsFiles::default(),
        "scanner-01",
    )
    .unwrap();
    let d = target.send(&events, quick_policy(Duration::from_secs(10)));
    assert_eq!(d.result.as_ref().ok(), Some(&3), "{:?}", d.result);
    assert_eq!(d.attempts, 1);
    let got = rs.received(3);
    assert_eq!(got.len(), 3, "{got:#?}");
    for (m, ev) in got.iter().zip(&events) {
        // rsyslog parsed it as RFC 5424 (a fallback to RFC 3164 reads version 0 and no MSGID).
        assert_eq!(m["protocol"], "1", "{m}");
        assert_eq!(m["app"], "fleetsweep");
        assert_eq!(m["hostname"], "scanner-01");
        assert_eq!(m["procid"], std::process::id().to_string());
        assert_eq!(m["msgid"], ev.kind());
        assert_eq!(msg_event(m), *ev, "MSG is the event's JSON");
        assert_eq!(sd(m)["v"], "1");
        assert_eq!(sd(m)["id"], ev.id.as_str());
        assert_eq!(sd(m)["sweep"], "sweep-hostile");
        // One SD element: the hostile `] [evil@1 ...` did not open a second one.
        assert_eq!(m["rfc5424-sd"].as_object().unwrap().len(), 1, "{}", m["sd"]);
    }
    let change = &got[0];
    assert_eq!(change["pri"], "132", "local0.warning: a new banned finding");
    assert_eq!(sd(change)["from"], "none");
    assert_eq!(sd(change)["to"], "new");
    assert_eq!(sd(change)["status"], "new");
    assert_eq!(sd(change)["rule"], "kaspersky/kesl");
    assert_eq!(sd(change)["fails"], "true");
    assert_eq!(sd(change)["due"], "2027-01-02");
    // Quotes, backslashes and brackets come back as sent; control characters
    // are made visible, so the element stays on one line.
    assert_eq!(sd(change)["host"], "web-01 ]\"\\");
    assert_eq!(
        sd(change)["version"],
        "12.1\"] [evil@1 x=\"y\"]\\\\u{a}line2\u{fffd}"
    );
    let raw_sd = change["sd"].as_str().unwrap();
    assert!(
        !raw_sd.contains('\n') && !raw_sd.contains('\u{1b}'),
        "{raw_sd}"
    );
    // MSG keeps the exact strings (JSON-escaped).
    let f = msg_event(change);
    assert_eq!(
        f.finding().unwrap().evidence,
        ["package (dpkg): kesl ]\"\\\r\n\u{1b}[31m"]
    );
    assert_eq!(f.finding().unwrap().host.labels["site"], "fra1\n]");
    let summary = &got[2];
    assert_eq!(summary["msgid"], "sweep_summary");
    assert_eq!(sd(summary)["hosts"], "1");
    assert_eq!(sd(summary)["affected"], "1");
    assert_eq!(sd(summary)["failing"], "1");
}

#[test]
fn rsyslog_over_tls_with_the_right_ca_and_a_clear_error_with_a_wrong_one() {
    let pki = Pki::new();
    let rs = Rsyslog::start(Some(&pki));
    let report = hostile_report();
    let events = siem::events(&report, &[]);
    let mut sent = Vec::new();
    for host in ["localhost", "127.0.0.1"] {
        let mut report = report.clone();
        report.sweep.id = host.to_string();
        let events = siem::events(&report, &[]);
        sent.extend(events.clone());
        let target = SyslogTarget::new(
            &format!("tls://{host}:{}", rs.port),
            &TlsFiles {
                ca: Some(pki.path("ca.pem")),
                client: None,
            },
            "scanner-01",
        )
        .unwrap();
        let d = target.send(&events, quick_policy(Duration::from_secs(10)));
        assert_eq!(d.result.as_ref().ok(), Some(&2), "{host}: {:?}", d.result);
    }
    let got = rs.received(4);
    assert_eq!(got.len(), 4, "{got:#?}");
    assert!(got
        .iter()
        .all(|m| m["protocol"] == "1" && m["app"] == "fleetsweep"));
    let got_events: Vec<Event> = got.iter().map(msg_event).collect();
    assert_eq!(got_events, sent);

    // A CA that did not sign the receiver's certificate: refused at once
    // (retrying cannot fix it), with what to check.
    let target = SyslogTarget::new(
        &format!("tls://127.0.0.1:{}", rs.port),
        &TlsFiles {
            ca: Some(pki.path("other-ca.pem")),
            client: None,
        },
        "scanner-01",
    )
    .unwrap();
    let started = Instant::now();
    let d = target.send(&events, quick_policy(Duration::from_secs(10)));
    let e = d.result.unwrap_err().to_string();
    assert!(e.contains("certificate was rejected"), "{e}");
    assert!(e.contains("UnknownIssuer"), "{e}");
    assert!(e.contains("--syslog-ca"), "{e}");
    assert_eq!(d.attempts, 1, "a rejected certificate is not retried");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Plain TCP to the TLS port is not mistaken for success either.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rs.received(0).len(),
        4,
        "nothing arrived through a rejected session"
    );
}

#[test]
fn a_syslog_receiver_that_is_down_is_retried_until_the_deadline() {
    let target = SyslogTarget::new(&format!("tcp://{NOBODY}"), &TlsFiles::default(), "h").unwrap();
    let events = siem::events(&hostile_report(), &[]);
    let started = Instant::now();
    let d = target.send(&events, quick_policy(Duration::from_secs(2)));
    let took = started.elapsed();
    let e = d.result.unwrap_err().to_string();
    assert!(e.contains(&format!("cannot connect to {NOBODY}")), "{e}");
    assert!(e.contains("deadline of 2s"), "{e}");
    assert!(d.attempts >= 3, "{} attempts", d.attempts);
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(4),
        "{took:?}"
    );
}

// ---------------------------------------------------------------- webhook receiver

/// What the receiver does with one connection.
#[derive(Debug, Clone, Copy)]
enum Act {
    /// Close it with a TCP reset before answering.
    Reset,
    /// Answer with this status and `Retry-After`.
    Status(u16, Option<&'static str>),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Seen {
    key: String,
    signature: String,
    body: Vec<u8>,
    at: Instant,
    /// The status it answered with.
    answered: u16,
}

/// A real HTTP/1.1 server (hyper) on a loopback port that answers each new
/// connection as `plan` says (then 200), and records what it got.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<Mutex<usize>>,
    _rt: tokio::runtime::Runtime,
}

impl Receiver {
    fn start(plan: Vec<Act>) -> Receiver {
        Receiver::start_with(plan, None)
    }

    /// With `tls`, the receiver serves https with the test PKI's server certificate.
    fn start_with(plan: Vec<Act>, tls: Option<&Pki>) -> Receiver {
        use http_body_util::{BodyExt, Full};
        use hyper::body::Bytes;

        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let (url, acceptor) = match tls {
            None => (format!("http://127.0.0.1:{port}/hooks/fleetsweep"), None),
            Some(pki) => (
                format!("https://localhost:{port}/hooks/fleetsweep"),
                Some(tls_acceptor(pki)),
            ),
        };
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let connections: Arc<Mutex<usize>> = Arc::default();
        let plan = Arc::new(Mutex::new(VecDeque::from(plan)));
        let (s, c) = (seen.clone(), connections.clone());
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                *c.lock().unwrap() += 1;
                let act = plan
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(Act::Status(200, None));
                let (code, retry_after) = match act {
                    Act::Reset => {
                        // Read the request, then reset instead of answering.
                        let mut buf = [0u8; 1024];
                        let _ =
                            tokio::time::timeout(Duration::from_secs(2), stream.readable()).await;
                        let _ = stream.try_read(&mut buf);
                        let _ = stream.set_zero_linger();
                        drop(stream);
                        continue;
                    }
                    Act::Status(code, ra) => (code, ra),
                };
                let s = s.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let s = s.clone();
                            async move {
                                let header = |name: &str| {
                                    req.headers()
                                        .get(name)
                                        .and_then(|v| v.to_str().ok())
                                        .unwrap_or("")
                                        .to_string()
                                };
                                let (key, signature) =
                                    (header("idempotency-key"), header("x-fleetsweep-signature"));
                                let body = req.into_body().collect().await?.to_bytes().to_vec();
                                s.lock().unwrap().push(Seen {
                                    key,
                                    signature,
                                    body,
                                    at: Instant::now(),
                                    answered: code,
                                });
                                let mut resp = hyper::Response::builder().status(code);
                                if let Some(ra) = retry_after {
                                    resp = resp.header("Retry-After", ra);
                                }
                                Ok::<_, hyper::Error>(
                                    resp.body(Full::new(Bytes::from(format!("answer {code}\n"))))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, svc).await;
                        }
                        Some(a) => {
                            // A client that refuses our certificate ends here.
                            if let Ok(tls) = a.accept(stream).await {
                                let io = hyper_util::rt::TokioIo::new(tls);
                                let _ = http.serve_connection(io, svc).await;
                            }
                        }
                    }
                });
            }
        });
        Receiver {
            url,
            seen,
            connections,
            _rt: rt,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A rustls acceptor (ring, as the product) with the PKI's server certificate.
fn tls_acceptor(pki: &Pki) -> tokio_rustls::TlsAcceptor {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<rustls_pki_types::CertificateDer<'static>> =
        rustls_pki_types::CertificateDer::pem_file_iter(pki.path("server.pem"))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// The receiver's check, written from the documented scheme (not with the
/// library's own verifier): HMAC-SHA256 over `<t>.<body>`, hex, in `v1=`.
fn signature_valid(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_string()),
            Some(("v1", v)) => v1 = Some(v.to_string()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &signed);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let fresh = t
        .parse::<i64>()
        .is_ok_and(|t| (jiff::Timestamp::now().as_second() - t).abs() < 300);
    hex == v1 && fresh
}

fn many_findings_report(n: usize) -> Report {
    let mut r = hostile_report();
    let f = r.hosts.to_mut()[0].findings[0].clone();
    r.hosts.to_mut()[0].findings = (0..n)
        .map(|i| Finding {
            rule: format!("kaspersky/p{i:02}"),
            ..f.clone()
        })
        .collect();
    r.normalize();
    r
}

// ---------------------------------------------------------------- webhook tests

#[test]
fn webhook_retries_resets_and_503s_with_a_stable_key_and_honours_retry_after() {
    let rx = Receiver::start(vec![
        Act::Reset,
        Act::Status(503, Some("1")),
        Act::Status(500, None),
        // batch 1 then succeeds; batch 2 once more:
        Act::Status(200, None),
        Act::Status(502, None),
    ]);
    // 4 findings + summary = 5 events, in batches of 3: keys -1 and -2.
    let report = many_findings_report(4);
    let events = siem::events(&report, &[]);
    assert_eq!(events.len(), 5);
    let hook = Webhook::new(&rx.url, SECRET.as_bytes(), 3, None).unwrap();
    let started = Instant::now();
    let d = hook.send(&events, quick_policy(Duration::from_secs(20)));
    assert_eq!(d.result.as_ref().ok(), Some(&5), "{:?}", d.result);
    assert_eq!(d.attempts, 6, "4 attempts for batch 1, 2 for batch 2");
    assert_eq!(d.retried.len(), 4, "{:?}", d.retried);
    assert!(d.retried[0].contains("request failed"), "{:?}", d.retried);
    assert!(
        d.retried[1].contains("HTTP 503: answer 503"),
        "{:?}",
        d.retried
    );
    assert_eq!(*rx.connections.lock().unwrap(), 6);
    let seen = rx.seen();
    let keys: Vec<(&str, u16)> = seen.iter().map(|s| (s.key.as_str(), s.answered)).collect();
    assert_eq!(
        keys,
        [
            ("sweep-hostile-1", 503),
            ("sweep-hostile-1", 500),
            ("sweep-hostile-1", 200),
            ("sweep-hostile-2", 502),
            ("sweep-hostile-2", 200),
        ],
        "the key of a batch stays the same across retries"
    );
    assert!(
        seen[1].at.duration_since(seen[0].at) >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured: {:?}",
        seen[1].at.duration_since(seen[0].at)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // Every attempt is signed with the secret; the same bytes do not verify
    // with another secret, nor does a changed body.
    for s in &seen {
        assert!(
            signature_valid(SECRET.as_bytes(), &s.signature, &s.body),
            "{}",
            s.signature
        );
        assert!(!signature_valid(b"not-the-secret", &s.signature, &s.body));
        let mut tampered = s.body.clone();
        tampered[0] = b' ';
        assert!(!signature_valid(SECRET.as_bytes(), &s.signature, &tampered));
    }
    // The bodies carry the events, in order, each batch once counted.
    let mut got: Vec<Event> = Vec::new();
    for s in seen.iter().filter(|s| s.answered == 200) {
        let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
        assert_eq!(body["schema_version"], 1);
        assert_eq!(body["sweep_id"], "sweep-hostile");
        assert_eq!(body["batches"], 2);
        got.extend(serde_json::from_value::<Vec<Event>>(body["events"].clone()).unwrap());
    }
    assert_eq!(got, events);
    // The Python verifier of docs/siem.md accepts every one of these requests
    // with the secret, and none with another one.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("verify.py");
    std::fs::write(&script, documented_python_verifier()).unwrap();
    for (s, secret, want) in [
        (&seen[0], SECRET, Some(0)),
        (&seen[4], SECRET, Some(0)),
        (&seen[4], "not-the-secret", Some(1)),
    ] {
        let mut child = Command::new(PYTHON)
            .arg(&script)
            .arg(&s.signature)
            .env("FLEETSWEEP_WEBHOOK_SECRET", secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{PYTHON}: {e}; install it as root: apt-get install -y python3")
            });
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &s.body).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            want,
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// The Python block of docs/siem.md ("Verifying a request").
fn documented_python_verifier() -> String {
    let doc = std::fs::read_to_string(fleetsweep_e2e::e2e_dir().join("../docs/siem.md")).unwrap();
    let section = doc
        .find("### Verifying a request (Python)")
        .expect("docs/siem.md lost its Python verifier");
    let start = section + doc[section..].find("```python\n").unwrap() + "```python\n".len();
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_string()
}

#[test]
fn webhook_does_not_retry_a_400_and_gives_up_on_a_retry_after_past_the_deadline() {
    let events = siem::events(&hostile_report(), &[]);
    for code in [400, 401, 404, 302] {
        let rx = Receiver::start(vec![Act::Status(code, None)]);
        let hook = Webhook::new(&rx.url, SECRET.as_bytes(), 100, None).unwrap();
        let d = hook.send(&events, quick_policy(Duration::from_secs(20)));
        let e = d.result.unwrap_err().to_string();
        assert!(e.contains(&format!("HTTP {code}: answer {code}")), "{e}");
        assert!(e.contains("not retried"), "{e}");
        assert_eq!(d.attempts, 1);
        assert_eq!(rx.seen().len(), 1);
    }

    let rx = Receiver::start(vec![Act::Status(429, Some("3600"))]);
    let hook = Webhook::new(&rx.url, SECRET.as_bytes(), 100, None).unwrap();
    let started = Instant::now();
    let d = hook.send(&events, quick_policy(Duration::from_secs(20)));
    let e = d.result.unwrap_err().to_string();
    assert!(e.contains("HTTP 429"), "{e}");
    assert!(
        e.contains("retry after 3600s, past the delivery deadline of 20s"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "it waited for nothing"
    );
}

#[test]
fn webhook_receiver_down_fails_after_the_deadline() {
    let url = format!("http://{NOBODY}/hook");
    let hook = Webhook::new(&url, SECRET.as_bytes(), 100, None).unwrap();
    let events = siem::events(&hostile_report(), &[]);
    let started = Instant::now();
    let d = hook.send(&events, quick_policy(Duration::from_secs(2)));
    let e = d.result.unwrap_err().to_string();
    assert!(e.contains("request failed"), "{e}");
    assert!(e.contains("deadline of 2s has passed"), "{e}");
    assert!(d.attempts >= 3, "{}", d.attempts);
    assert!(started.elapsed() < Duration::from_secs(4));
}

// ---------------------------------------------------------------- the binary

/// An offline bundle of one Debian host with kesl installed, its version
/// made hostile (quote, bracket, backslash, a byte that is not UTF-8).
fn bundle(root: &Path, with_kesl: bool) {
    let src = fleetsweep_e2e::e2e_dir().join("fixtures/offline/linux-kesl-01");
    let dst = root.join("linux-kesl-01");
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for f in ["host.yaml", "os-release"] {
        std::fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let mut dpkg = Vec::new();
    if with_kesl {
        dpkg.extend_from_slice(b"install ok installed\tkesl\t12.1.0-1297\"]\\\xff\tamd64\tAO Kaspersky Lab <support@kaspersky.com>\n");
        std::fs::copy(
            src.join("kesl-control-app-info.txt"),
            dst.join("kesl-control-app-info.txt"),
        )
        .unwrap();
    }
    dpkg.extend_from_slice(
        b"install ok installed\tbash\t5.2.15-2+b7\tamd64\tMatthias Klose <doko@debian.org>\n",
    );
    std::fs::write(dst.join("dpkg-query.txt"), dpkg).unwrap();
}

fn scan(bundles: &Path, state: &Path, report: &Path, siem: &[&str]) -> std::process::Output {
    Command::new(FLEETSWEEP)
        .args(["scan", "--offline"])
        .arg(bundles)
        .arg("--state")
        .arg(state)
        .arg("--report")
        .arg(report)
        .args(["--siem-deadline", "10s"])
        .args(siem)
        .env("FLEETSWEEP_WEBHOOK_SECRET", SECRET)
        .env_remove("SSH_AUTH_SOCK")
        .output_within(RUN_LIMIT)
}

fn out_text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Events of every 200-answered webhook request, in order.
fn webhook_events(rx: &Receiver) -> Vec<Event> {
    rx.seen()
        .iter()
        .filter(|s| s.answered == 200)
        .flat_map(|s| {
            assert!(signature_valid(SECRET.as_bytes(), &s.signature, &s.body));
            let body: serde_json::Value = serde_json::from_slice(&s.body).unwrap();
            serde_json::from_value::<Vec<Event>>(body["events"].clone()).unwrap()
        })
        .collect()
}

#[test]
fn scan_sends_a_new_finding_then_its_remediation_to_rsyslog_and_the_webhook() {
    let rs = Rsyslog::start(None);
    let rx = Receiver::start(vec![Act::Status(503, Some("0"))]);
    let dir = tempfile::tempdir().unwrap();
    let bundles = dir.path().join("bundles");
    let (state, report) = (dir.path().join("state.db"), dir.path().join("report.yaml"));
    let syslog = format!("tcp://127.0.0.1:{}", rs.port);
    let siem = ["--syslog", syslog.as_str(), "--webhook", rx.url.as_str()];

    bundle(&bundles, true);
    let first = scan(&bundles, &state, &report, &siem);
    assert_eq!(first.status.code(), Some(1), "{}", out_text(&first));
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains(&format!("3 events sent to syslog {syslog}")),
        "{}",
        out_text(&first)
    );
    assert!(
        stdout.contains(&format!("3 events sent to webhook {}", rx.url)),
        "{}",
        out_text(&first)
    );
    let got = rs.received(3);
    let kinds: Vec<(&str, &str)> = got
        .iter()
        .map(|m| {
            (
                m["msgid"].as_str().unwrap(),
                sd(m)["to"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("status_change", "new"),
            ("finding", "-"),
            ("sweep_summary", "-")
        ]
    );
    let version = "12.1.0-1297\"]\\\u{fffd}";
    assert_eq!(sd(&got[0])["host"], "linux-kesl-01");
    assert_eq!(sd(&got[0])["version"], version, "{}", got[0]["sd"]);
    assert_eq!(
        msg_event(&got[0]).finding().unwrap().version.as_deref(),
        Some(version)
    );
    let hooked = webhook_events(&rx);
    assert_eq!(hooked.len(), 3);
    assert_eq!(
        hooked[0],
        msg_event(&got[0]),
        "both outputs carry the same event"
    );
    let seen = rx.seen();
    assert_eq!(seen.len(), 2, "one 503 (Retry-After: 0), then 200");
    assert_eq!(seen[0].key, seen[1].key);

    // The product is removed: the next sweep reports it remediated.
    bundle(&bundles, false);
    let second = scan(&bundles, &state, &report, &siem);
    assert_eq!(second.status.code(), Some(0), "{}", out_text(&second));
    let got = rs.received(5);
    assert_eq!(got.len(), 5, "{got:#?}");
    assert_eq!(got[3]["msgid"], "status_change");
    assert_eq!(sd(&got[3])["from"], "new");
    assert_eq!(sd(&got[3])["to"], "remediated");
    assert_eq!(got[3]["pri"], "133", "local0.notice: good news");
    let ev = msg_event(&got[3]);
    let f = ev.finding().unwrap();
    assert_eq!(
        (f.rule.as_str(), f.status),
        ("kaspersky/kesl", Status::Remediated)
    );
    assert!(f.remediated_at.is_some());
    assert_eq!(got[4]["msgid"], "sweep_summary");
    assert_eq!(sd(&got[4])["failing"], "0");
    let hooked = webhook_events(&rx);
    assert_eq!(hooked.len(), 5);
    assert_eq!(hooked[3], ev);
    assert_ne!(hooked[3].sweep_id, hooked[0].sweep_id);
}

#[test]
fn scan_exits_4_with_the_report_written_when_the_syslog_ca_is_wrong() {
    let pki = Pki::new();
    let rs = Rsyslog::start(Some(&pki));
    let dir = tempfile::tempdir().unwrap();
    let bundles = dir.path().join("bundles");
    let (state, report) = (dir.path().join("state.db"), dir.path().join("report.yaml"));
    bundle(&bundles, true);
    let syslog = format!("tls://localhost:{}", rs.port);
    let other = pki.path("other-ca.pem");
    let out = scan(
        &bundles,
        &state,
        &report,
        &[
            "--syslog",
            &syslog,
            "--syslog-ca",
            other.to_str().unwrap(),
            "-q",
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", out_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SIEM delivery failed"), "{stderr}");
    assert!(
        stderr.contains("certificate was rejected (UnknownIssuer)"),
        "{stderr}"
    );
    assert!(
        report.exists(),
        "the report is written before the SIEM delivery"
    );
    // The sweep is in the state store: with the right CA the next scan delivers.
    let ca = pki.path("ca.pem");
    let out = scan(
        &bundles,
        &state,
        &report,
        &["--syslog", &syslog, "--syslog-ca", ca.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", out_text(&out));
    let got = rs.received(2);
    assert_eq!(
        got.len(),
        2,
        "the finding and the summary; no change since the recorded sweep"
    );
    assert_eq!(got[0]["msgid"], "finding");
    assert_eq!(sd(&got[0])["status"], "open");

    // Configuration errors are found before anything is scanned (exit 2).
    for (args, want) in [
        (vec!["--syslog", "udp://h:514"], "expected tcp:// or tls://"),
        (
            vec![
                "--syslog",
                "tcp://h:514",
                "--syslog-ca",
                ca.to_str().unwrap(),
            ],
            "use tls://h:514",
        ),
        (
            vec![
                "--webhook",
                "http://127.0.0.1:9/x",
                "--webhook-secret-file",
                "/nonexistent/secret",
            ],
            "--webhook-secret-file /nonexistent/secret: cannot read the webhook secret",
        ),
    ] {
        let out = scan(&bundles, &state, &report, &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out_text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(want),
            "{args:?}: {}",
            out_text(&out)
        );
    }
    let out = scan(
        &bundles,
        &state,
        &report,
        &["--webhook", "http://127.0.0.1:9/x", "--webhook-batch", "0"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", out_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--webhook-batch: 0: give 1 to 1000 events per request"),
        "{}",
        out_text(&out)
    );
    let out = Command::new(FLEETSWEEP)
        .args(["scan", "--offline"])
        .arg(&bundles)
        .args([
            "--no-state",
            "--syslog",
            "tcp://127.0.0.1:9",
            "--siem-deadline",
            "0s",
        ])
        .output_within(RUN_LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", out_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--siem-deadline: `0s` leaves no time to deliver; give at least 1s"),
        "{}",
        out_text(&out)
    );
    let out = Command::new(FLEETSWEEP)
        .args(["scan", "--offline"])
        .arg(&bundles)
        .args(["--no-state", "--webhook", "http://127.0.0.1:9/x"])
        .env_remove("FLEETSWEEP_WEBHOOK_SECRET")
        .output_within(RUN_LIMIT);
    assert_eq!(out.status.code(), Some(2), "{}", out_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("FLEETSWEEP_WEBHOOK_SECRET (never on the command line)"),
        "{}",
        out_text(&out)
    );
}

/// `fleetsweep serve`, killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The value of `series` (name with labels, as printed) on a metrics page.
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn serve_counts_each_outputs_deliveries_and_failures() {
    let rs = Rsyslog::start(None);
    let dir = tempfile::tempdir().unwrap();
    let bundles = dir.path().join("bundles");
    bundle(&bundles, true);
    let port = free_port();
    let syslog = format!("tcp://127.0.0.1:{}", rs.port);
    let log = dir.path().join("serve.log");
    let _daemon = Daemon(
        Command::new(FLEETSWEEP)
            .args(["serve", "--offline"])
            .arg(&bundles)
            .arg("--state")
            .arg(dir.path().join("state.db"))
            .args(["--interval", "1h", "--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--syslog",
                &syslog,
                "--webhook",
                &format!("http://{NOBODY}/hook"),
            ])
            .args(["--siem-deadline", "2s"])
            .env("FLEETSWEEP_WEBHOOK_SECRET", SECRET)
            .env_remove("SSH_AUTH_SOCK")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting fleetsweep serve"),
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let metrics = || {
        agent
            .get(&format!("http://127.0.0.1:{port}/metrics"))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
            .unwrap_or_default()
    };
    // Before the first delivery every configured output has its series at 0.
    let started = Instant::now();
    let mut page = metrics();
    while page.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not answer:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
        page = metrics();
    }
    for output in ["syslog", "webhook"] {
        let failures = format!("fleetsweep_siem_delivery_failures_total{{output=\"{output}\"}}");
        assert!(
            sample(&page, &failures).is_some(),
            "{failures} missing:\n{page}"
        );
    }
    // The webhook's receiver is down: it fails after its 2 s deadline.
    let webhook_failed = "fleetsweep_siem_delivery_failures_total{output=\"webhook\"}";
    while sample(&page, webhook_failed) != Some(1.0) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no webhook failure counted:\n{page}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
        page = metrics();
    }
    assert_eq!(
        sample(
            &page,
            "fleetsweep_siem_events_sent_total{output=\"syslog\"}"
        ),
        Some(3.0),
        "{page}"
    );
    assert_eq!(
        sample(
            &page,
            "fleetsweep_siem_delivery_failures_total{output=\"syslog\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &page,
            "fleetsweep_siem_events_sent_total{output=\"webhook\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        sample(
            &page,
            "fleetsweep_siem_last_success_timestamp_seconds{output=\"webhook\"}"
        ),
        Some(0.0)
    );
    let last = sample(
        &page,
        "fleetsweep_siem_last_success_timestamp_seconds{output=\"syslog\"}",
    )
    .unwrap();
    assert!(
        (jiff::Timestamp::now().as_second() as f64 - last).abs() < 120.0,
        "{last}"
    );
    assert_eq!(rs.received(3).len(), 3);
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("SIEM delivery failed"), "{log}");
    assert!(log.contains("deadline of 2s has passed"), "{log}");
}

#[test]
fn rsyslog_requiring_client_certificates_takes_ours_and_a_session_without_is_an_error() {
    let pki = Pki::new();
    let rs = Rsyslog::start_with(Some(&pki), "x509/certvalid");
    let events = siem::events(&hostile_report(), &[]);
    let url = format!("tls://localhost:{}", rs.port);
    let with_cert = SyslogTarget::new(
        &url,
        &TlsFiles {
            ca: Some(pki.path("ca.pem")),
            client: Some((pki.path("client.pem"), pki.path("client.key"))),
        },
        "scanner-01",
    )
    .unwrap();
    let d = with_cert.send(&events, quick_policy(Duration::from_secs(10)));
    assert_eq!(d.result.as_ref().ok(), Some(&2), "{:?}", d.result);
    assert_eq!(rs.received(2).len(), 2);

    // Without a client certificate the receiver drops the session: that is
    // a failed delivery, not a silent loss.
    let without = SyslogTarget::new(
        &url,
        &TlsFiles {
            ca: Some(pki.path("ca.pem")),
            client: None,
        },
        "scanner-01",
    )
    .unwrap();
    let d = without.send(&events, quick_policy(Duration::from_secs(10)));
    let e = d.result.unwrap_err().to_string();
    assert!(e.contains("refused the TLS session"), "{e}");
    assert!(e.contains("--syslog-cert"), "{e}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        rs.received(0).len(),
        2,
        "nothing of the refused session arrived"
    );

    // A key that does not go with the certificate is a configuration error.
    let e = SyslogTarget::new(
        &url,
        &TlsFiles {
            ca: Some(pki.path("ca.pem")),
            client: Some((pki.path("client.pem"), pki.path("server.key"))),
        },
        "h",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("does not go with --syslog-cert"), "{e}");
}

#[test]
fn webhook_over_https_trusts_webhook_ca_and_refuses_another_ca_without_retrying() {
    let pki = Pki::new();
    let rx = Receiver::start_with(vec![], Some(&pki));
    let events = siem::events(&hostile_report(), &[]);
    let hook = Webhook::new(&rx.url, SECRET.as_bytes(), 100, Some(&pki.path("ca.pem"))).unwrap();
    let d = hook.send(&events, quick_policy(Duration::from_secs(10)));
    assert_eq!(d.result.as_ref().ok(), Some(&2), "{:?}", d.result);
    assert_eq!(rx.seen().len(), 1);
    assert!(signature_valid(
        SECRET.as_bytes(),
        &rx.seen()[0].signature,
        &rx.seen()[0].body
    ));

    let hook = Webhook::new(
        &rx.url,
        SECRET.as_bytes(),
        100,
        Some(&pki.path("other-ca.pem")),
    )
    .unwrap();
    let started = Instant::now();
    let d = hook.send(&events, quick_policy(Duration::from_secs(10)));
    let e = d.result.unwrap_err().to_string();
    assert!(e.contains("TLS certificate was rejected"), "{e}");
    assert!(e.contains("--webhook-ca"), "{e}");
    assert_eq!(d.attempts, 1, "a rejected certificate is not retried");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(rx.seen().len(), 1, "nothing reached the receiver");

    // Without --webhook-ca the system's roots apply, which do not hold the test CA.
    let hook = Webhook::new(&rx.url, SECRET.as_bytes(), 100, None).unwrap();
    let e = hook
        .send(&events, quick_policy(Duration::from_secs(10)))
        .result
        .unwrap_err()
        .to_string();
    assert!(e.contains("UnknownIssuer"), "{e}");
    let e = Webhook::new(&rx.url, SECRET.as_bytes(), 100, Some(&pki.path("ext.cnf")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--webhook-ca") && e.contains("holds no PEM certificate"),
        "{e}"
    );
}
