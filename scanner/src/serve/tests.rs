//! `serve` under abuse: the real server (axum over axum-server, the real
//! pipeline) on 127.0.0.1, driven by raw TCP clients that hang up early,
//! trickle bytes or hold connections open. Inventory hosts are loopback
//! ports: one that accepts and never speaks SSH (a hanging host) and one
//! that refuses (answered at once, as `unreachable`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::*;
use crate::cli::{Cli, Command};
use crate::inventory::{Host, Inventory, SshHost, Target};
use crate::pipeline::Selection;
use crate::transport::{SshEndpoint, SshTarget};

/// A host that accepts TCP connections and never says a word; counts them.
struct Hanging {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

async fn hanging() -> Hanging {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    Hanging { port, accepted }
}

/// A port nothing listens on: connections are refused at once.
fn refusing() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: watch::Sender<Option<String>>,
    _known_hosts: tempfile::NamedTempFile,
}

/// The HTTP server of `serve` (no scheduled sweeps) for `hosts` (name, port).
fn start(hosts: &[(&str, u16)], max_probes: usize, limits: Limits) -> Server {
    let known_hosts = tempfile::NamedTempFile::new().unwrap();
    let kh = known_hosts.path().to_str().unwrap().to_string();
    let argv = [
        "fleetsweep",
        "scan",
        "--local",
        "--no-state",
        "--no-agent",
        "--known-hosts",
        &kh,
    ];
    let args = match Cli::try_parse_from(argv).map(|c| c.command) {
        Ok(Command::Scan(args)) => *args,
        other => panic!("not a scan command line: {other:?}"),
    };
    let mut inventory = Inventory::default();
    for (name, port) in hosts {
        inventory.hosts.push(Host {
            name: (*name).into(),
            os: None,
            labels: Default::default(),
            groups: Vec::new().into(),
            host_timeout: None,
            target: Target::Ssh(SshHost {
                ssh: SshTarget {
                    endpoint: SshEndpoint {
                        address: "127.0.0.1".into(),
                        port: *port,
                        user: "nobody".into(),
                        identity_files: Arc::from([]),
                    },
                    jumps: Vec::new().into(),
                },
                connect_timeout: None,
                options: Default::default(),
            }),
        });
    }
    let selection = Selection {
        inventory,
        shard: None,
    };
    let pipeline = Arc::new(crate::pipeline::Pipeline::prepare(selection, &args).unwrap());
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        web: WebConfig::default(),
        schedule: scheduler::Schedule {
            interval: Duration::from_secs(3600),
            jitter: 0.0,
        },
        max_probes,
        default_probe_timeout: Duration::from_secs(10),
        limits,
    };
    let (stop, shutdown) = watch::channel(None);
    let shared = Shared::new(&config, pipeline, shutdown.clone()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(http::serve(
        listener,
        None,
        limits,
        shared.clone(),
        shutdown,
    ));
    Server {
        addr,
        shared,
        _stop: stop,
        _known_hosts: known_hosts,
    }
}

const LIMITS: Limits = Limits {
    max_connections: 64,
    header_timeout: Duration::from_secs(10),
};

fn request(path: &str, headers: &[(&str, &str)]) -> String {
    let mut r = format!("GET {path} HTTP/1.1\r\nHost: fleetsweep\r\nConnection: close\r\n");
    for (k, v) in headers {
        r.push_str(&format!("{k}: {v}\r\n"));
    }
    r + "\r\n"
}

/// Reads until the server closes; (status, whole answer). Status 0: closed
/// without an answer.
async fn answer(mut sock: TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let _ = sock.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(request(path, headers).as_bytes())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), answer(sock))
        .await
        .unwrap_or((0, "no answer within 20s".into()))
}

/// The outside tester's lockout: clients ask to probe hanging hosts with a
/// scrape timeout of 90 s and hang up; their probes used to keep running and
/// hold every slot, so /probe answered 503 to everyone for the whole time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_whose_clients_hung_up_do_not_lock_out_other_targets() {
    let (a, b) = (hanging().await, hanging().await);
    let server = start(
        &[("hang-a", a.port), ("hang-b", b.port), ("ok", refusing())],
        2,
        LIMITS,
    );
    let mut clients = Vec::new();
    for target in ["hang-a", "hang-b"].iter().cycle().take(8) {
        let mut sock = TcpStream::connect(server.addr).await.unwrap();
        let req = request(
            &format!("/probe?target={target}"),
            &[("X-Prometheus-Scrape-Timeout-Seconds", "90")],
        );
        sock.write_all(req.as_bytes()).await.unwrap();
        clients.push(sock);
    }
    // Eight requests, two targets: two probes, sharing the two slots.
    let deadline = Instant::now() + Duration::from_secs(5);
    while a.accepted.load(Ordering::SeqCst) + b.accepted.load(Ordering::SeqCst) < 2 {
        assert!(
            Instant::now() < deadline,
            "the hanging hosts were never contacted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.shared.daemon.probes_in_flight.get(), 2);
    let (status, _) = get(server.addr, "/probe?target=ok", &[]).await;
    assert_eq!(status, 503, "every slot is taken while the clients wait");

    drop(clients);
    let start = Instant::now();
    let (status, body) = loop {
        let (status, body) = get(server.addr, "/probe?target=ok", &[]).await;
        if status != 503 || start.elapsed() > Duration::from_secs(3) {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("fleetsweep_probe_success 0"),
        "the refusing host is probed and found unreachable:\n{body}"
    );
    assert!(start.elapsed() < Duration::from_secs(3));
    // The "ok" probe needed one freed slot; the other abandoned probe is
    // dropped when the server sees its last client's hang-up, which may come
    // a moment later.
    let settle = Instant::now() + Duration::from_secs(3);
    while server.shared.daemon.probes_in_flight.get() != 0 || server.shared.probes.len() != 0 {
        assert!(
            Instant::now() < settle,
            "abandoned probes still in flight: {} (flights {})",
            server.shared.daemon.probes_in_flight.get(),
            server.shared.probes.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The abandoned probes were not restarted behind anyone's back.
    assert_eq!(a.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(b.accepted.load(Ordering::SeqCst), 1);
}

/// Two scrapers of one host at once: one sweep (one SSH connection), the
/// same answer for both; the next scrape after it is a sweep of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_probes_of_one_target_share_one_sweep() {
    let host = hanging().await;
    let server = start(&[("slow", host.port)], 4, LIMITS);
    // 1 s scrape timeout: the probe ends (timed out) after 0.5 s.
    let header = [("X-Prometheus-Scrape-Timeout-Seconds", "1")];
    let started = Instant::now();
    let (one, two) = tokio::join!(
        get(server.addr, "/probe?target=slow", &header),
        get(server.addr, "/probe?target=slow", &header),
    );
    assert_eq!((one.0, two.0), (200, 200), "{one:?}\n{two:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(host.accepted.load(Ordering::SeqCst), 1, "one sweep");
    for (_, page) in [&one, &two] {
        assert!(page.contains("fleetsweep_probe_success 0"), "{page}");
    }
    let (status, _) = get(server.addr, "/probe?target=slow", &header).await;
    assert_eq!(status, 200);
    assert_eq!(host.accepted.load(Ordering::SeqCst), 2, "a fresh sweep");
}

/// How long until the server closes `sock`, reading (and discarding) what it sends.
async fn closed_after(mut sock: tokio::net::tcp::OwnedReadHalf, start: Instant) -> Duration {
    let mut buf = [0u8; 1024];
    loop {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return start.elapsed(),
            Ok(_) => {}
        }
    }
}

/// Slowloris: request headers trickled a byte at a time, a connection that
/// sends nothing, and an idle keep-alive connection are all closed after
/// the header timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_disconnected_after_the_header_timeout() {
    let limits = Limits {
        max_connections: 64,
        header_timeout: Duration::from_secs(1),
    };
    let server = start(&[("ok", refusing())], 4, limits);
    let start_all = Instant::now();

    let trickle = TcpStream::connect(server.addr).await.unwrap();
    let (r, mut w) = trickle.into_split();
    let trickled = tokio::spawn(closed_after(r, start_all));
    tokio::spawn(async move {
        // A byte every 50 ms, for as long as the server listens.
        let head = b"GET /healthz HTTP/1.1\r\nX-Slow: ".iter();
        for b in head.chain(std::iter::repeat(&b'a')) {
            if w.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });

    let (silent_r, _silent_w) = TcpStream::connect(server.addr).await.unwrap().into_split();
    let silent = tokio::spawn(closed_after(silent_r, start_all));

    let idle = TcpStream::connect(server.addr).await.unwrap();
    let (mut idle_r, mut idle_w) = idle.into_split();
    idle_w
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: fleetsweep\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle_r.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let idled = tokio::spawn(closed_after(idle_r, start_all));

    for (what, task) in [("trickling", trickled), ("silent", silent), ("idle", idled)] {
        let after = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap_or_else(|_| panic!("the {what} connection is still open after 5 s"))
            .unwrap();
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_millis(2500),
            "{what} connection closed after {after:?}"
        );
    }
    let (status, _) = get(server.addr, "/healthz", &[]).await;
    assert_eq!(status, 200);
}

/// Connections beyond the bound are not served until others close; then
/// they are, and fresh clients are too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_bound_wait_until_others_close() {
    let limits = Limits {
        max_connections: 3,
        header_timeout: Duration::from_secs(10),
    };
    let server = start(&[("ok", refusing())], 4, limits);
    let mut holders = Vec::new();
    for _ in 0..3 {
        let mut sock = TcpStream::connect(server.addr).await.unwrap();
        sock.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        holders.push(sock);
    }
    // Let the server take all three before the fourth comes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut fourth = TcpStream::connect(server.addr).await.unwrap();
    fourth
        .write_all(request("/healthz", &[]).as_bytes())
        .await
        .unwrap();
    let waiting = tokio::spawn(answer(fourth));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a fourth connection was served");

    drop(holders);
    let (status, _) = tokio::time::timeout(Duration::from_secs(2), waiting)
        .await
        .expect("the waiting connection is served once the others close")
        .unwrap();
    assert_eq!(status, 200);
    let (status, _) = get(server.addr, "/healthz", &[]).await;
    assert_eq!(status, 200);
}

/// A swept report of `n` hosts (the one host of `server`, under `n` names),
/// each with a warning of `warning` bytes.
async fn report_of(server: &Server, n: usize, warning: usize) -> Report {
    let (_stop, cancel) = watch::channel(None);
    let mut report = server
        .shared
        .pipeline()
        .sweep_all(Arc::new(crate::sweep::Silent), cancel)
        .await;
    let one = report.hosts.to_mut()[0].clone();
    report.hosts = (0..n)
        .map(|i| {
            let mut h = one.clone();
            h.name = format!("host-{i:06}").into();
            h.warnings = vec!["w".repeat(warning)];
            h
        })
        .collect();
    report
}

/// The body of a whole HTTP/1.1 answer, checked against its Content-Length.
fn body_of(answer: &str) -> &str {
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no Content-Length: {head}"));
    assert_eq!(body.len(), length, "body cut short or too long: {head}");
    body
}

/// `/report` is the published report byte for byte, with its length, read
/// from its file in chunks: a client part-way through keeps the report it
/// started with when the next sweep is published, and clients at once each
/// get the whole page (none is given a copy of the report, nor a mix).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_page_is_served_whole_while_the_next_is_published() {
    let server = start(&[("ok", refusing())], 4, LIMITS);
    let opts = server.shared.pipeline().metrics_options().clone();
    // More than the server's socket can hold (4 MiB at most): the slow
    // client below is still being served when the next sweep is published.
    let first = report_of(&server, 5000, 2000).await;
    let first_yaml = fleetsweep_exporters::yaml::to_yaml(&first).unwrap();
    assert!(first_yaml.len() > 8 << 20, "{} bytes", first_yaml.len());
    assert!(server.shared.publish(&first, &opts));
    let first_page = {
        let published = server.shared.published.read().unwrap();
        let page = &published.as_ref().unwrap().report;
        assert!(
            matches!(**page, page::Page::File { .. }),
            "the page is not in a file"
        );
        assert_eq!(page.len(), first_yaml.len() as u64);
        Arc::downgrade(page)
    };

    // A client that reads the start of the page, then waits (a small
    // receive buffer: the kernel does not take the page for it).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8192).unwrap();
    let mut slow = socket.connect(server.addr).await.unwrap();
    slow.write_all(request("/report", &[]).as_bytes())
        .await
        .unwrap();
    let mut start = vec![0u8; 64 * 1024];
    slow.read_exact(&mut start).await.unwrap();

    let second = report_of(&server, 3, 10).await;
    let second_yaml = fleetsweep_exporters::yaml::to_yaml(&second).unwrap();
    assert!(server.shared.publish(&second, &opts));
    assert!(
        first_page.upgrade().is_some(),
        "the slow client's answer let go of its page"
    );

    let (status, rest) = answer(slow).await;
    assert_eq!(
        status, 0,
        "the rest of the answer has no status line of its own"
    );
    let whole = String::from_utf8_lossy(&start).into_owned() + &rest;
    assert!(whole.starts_with("HTTP/1.1 200"), "{}", &whole[..200]);
    assert!(
        body_of(&whole) == first_yaml,
        "the slow client's page is not the first report whole"
    );

    let answers = futures::future::join_all((0..8).map(|_| get(server.addr, "/report", &[]))).await;
    for (status, text) in answers {
        assert_eq!(status, 200, "{text}");
        assert!(body_of(&text) == second_yaml, "not the second report whole");
    }
    // The first page (its file) is gone with the last answer that read it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while first_page.upgrade().is_some() {
        assert!(
            Instant::now() < deadline,
            "the first page outlived its answers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // /metrics: the sweep's page, then the daemon's series, with its length.
    let (status, text) = get(server.addr, "/metrics", &[]).await;
    assert_eq!(status, 200);
    let page = body_of(&text);
    let sweep_part = fleetsweep_exporters::metrics::render(&second, &opts).unwrap();
    assert!(page.starts_with(&sweep_part), "{page}");
    assert!(page.contains("fleetsweep_sweep_in_progress"), "{page}");
}
