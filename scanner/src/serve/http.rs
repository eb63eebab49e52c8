//! The HTTP side of `serve` (axum over axum-server, plain or rustls).
//!
//! - [`connections`]: the bound on open connections and the deadlines on
//!   slow clients (request headers, idle keep-alive, unread answers).

mod connections;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use tokio::sync::watch;

use super::page::Page;
use super::probe::Boarding;
use super::{ServeError, Shared};
use crate::sweep::Silent;

/// Content type of the classic text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Taken off Prometheus's scrape timeout, so the answer (not just the sweep)
/// arrives in time.
const PROBE_MARGIN: Duration = Duration::from_millis(500);
/// A probe gets at least this long, however short the scrape timeout.
const PROBE_MIN: Duration = Duration::from_millis(250);
/// How long open connections may take to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(5);

/// What the server allows each client (see [`connections`]).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (the TLS handshake
    /// too), and that an idle keep-alive connection stays open.
    pub header_timeout: Duration,
}

pub(super) async fn serve(
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: Limits,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<Option<String>>,
) -> Result<(), ServeError> {
    let app = connections::Bounded::new(router(shared), limits.max_connections);
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        wait_for(shutdown).await;
        h.graceful_shutdown(Some(GRACE));
    });
    let first_bytes = limits.header_timeout;
    let served = match tls {
        Some(cfg) => {
            let cfg = axum_server::tls_rustls::RustlsConfig::from_config(cfg);
            let mut server = axum_server::tls_rustls::from_tcp_rustls(listener, cfg)
                .map(|tls| {
                    connections::Watching::new(tls.handshake_timeout(first_bytes), first_bytes)
                })
                .handle(handle);
            http1_limits(server.http_builder(), limits);
            server.serve(app).await
        }
        None => {
            let mut server = axum_server::from_tcp(listener)
                .map(|plain| connections::Watching::new(plain, first_bytes))
                .handle(handle);
            http1_limits(server.http_builder(), limits);
            server.serve(app).await
        }
    };
    served.map_err(ServeError::Serve)
}

/// hyper's deadline on request headers, which also closes idle keep-alive
/// connections (it runs whenever hyper waits for the next request).
fn http1_limits(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: Limits,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
}

/// Resolves once the shutdown channel holds a value (never if nobody can send).
pub(super) async fn wait_for(mut rx: watch::Receiver<Option<String>>) {
    while rx.borrow_and_update().is_none() {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/report", get(report))
        .route("/probe", get(probe))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .layer(middleware::from_fn_with_state(shared.clone(), count))
        .with_state(shared)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// Counts every answer, 401s and 404s included (`fleetsweep_scrape_requests_total`).
async fn count(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    // Fixed names only, so odd URLs cannot create series.
    let handler: &'static str = match req.uri().path() {
        "/metrics" => "/metrics",
        "/healthz" => "/healthz",
        "/report" => "/report",
        "/probe" => "/probe",
        _ => "other",
    };
    let resp = next.run(req).await;
    s.daemon
        .scrape_requests
        .with_label_values(&[handler, resp.status().as_str()])
        .inc();
    resp
}

/// Basic auth (when configured) and the configured response headers.
async fn guard(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let allowed = if s.auth.is_some() {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let s2 = s.clone();
        // bcrypt is slow on purpose: off the async threads.
        tokio::task::spawn_blocking(move || {
            s2.auth.as_ref().is_some_and(|a| a.check(given.as_deref()))
        })
        .await
        .unwrap_or(false)
    } else {
        true
    };
    let mut resp = if allowed {
        next.run(req).await
    } else {
        let mut r = text(StatusCode::UNAUTHORIZED, "Unauthorized\n");
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"fleetsweep\""),
        );
        r
    };
    for (name, value) in &s.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp
}

/// The last published sweep's page plus the daemon's own metrics. Before
/// the first sweep ends only the daemon's part is there: the sweep series
/// (`fleetsweep_last_sweep_success` and the rest) are absent rather than a
/// made-up 0, which would read as "the last sweep was interrupted".
async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    // The sweep's page is shared, not copied (at 100,000 hosts it is most
    // of a megabyte a scrape): the response is it, then the daemon's part.
    let sweep = s
        .published
        .read()
        .ok()
        .and_then(|p| p.as_ref().map(|p| p.metrics.clone()))
        .unwrap_or_default();
    match s.daemon.render() {
        Ok(daemon) => {
            let daemon = Bytes::from(daemon);
            let len = sweep.len() + daemon.len();
            let parts =
                futures::stream::iter([Ok::<_, std::convert::Infallible>(sweep), Ok(daemon)]);
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT)),
                    (header::CONTENT_LENGTH, HeaderValue::from(len)),
                ],
                Body::from_stream(parts),
            )
                .into_response()
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

/// The last published report, read from its file as the client takes it:
/// a request holds one chunk, not a copy of the report.
async fn report(State(s): State<Arc<Shared>>) -> Response {
    let page = s
        .published
        .read()
        .ok()
        .and_then(|p| p.as_ref().map(|p| p.report.clone()));
    match page {
        Some(page) => (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/yaml; charset=utf-8"),
                ),
                (header::CONTENT_LENGTH, HeaderValue::from(page.len())),
            ],
            Body::from_stream(Page::chunks(page)),
        )
            .into_response(),
        None => text(
            StatusCode::NOT_FOUND,
            "no sweep has finished yet: the first one is running; /metrics shows fleetsweep_sweep_in_progress\n",
        ),
    }
}

async fn not_found() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "not found: fleetsweep serves /metrics, /healthz, /report and /probe?target=HOST\n",
    )
}

/// The probe deadline: Prometheus's scrape timeout minus a margin, else the
/// default; never above `cap` (the host timeout), whatever the client asks.
fn probe_deadline(headers: &HeaderMap, default: Duration, cap: Duration) -> Duration {
    headers
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| {
            Duration::from_secs_f64(t.min(cap.as_secs_f64()))
                .saturating_sub(PROBE_MARGIN)
                .max(PROBE_MIN)
        })
        .unwrap_or(default)
        .min(cap)
}

/// `fleetsweep_probes_in_flight` counts a flight until it ends or is dropped.
struct InFlight(prometheus::IntGauge);

impl InFlight {
    fn enter(gauge: &prometheus::IntGauge) -> InFlight {
        gauge.inc();
        InFlight(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Blackbox-style: sweeps one host now and answers with its page.
///
/// Only names from the inventory are accepted, never an address or a name
/// the inventory does not list: otherwise anyone who can reach this port
/// could make the scanner open SSH connections (with its keys and agent) to
/// any host they like, a server-side request forgery.
async fn probe(
    State(s): State<Arc<Shared>>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(target) = params.get("target").filter(|t| !t.is_empty()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "give a target: /probe?target=HOST, HOST being a host name from the inventory\n",
        );
    };
    let pipeline = s.pipeline();
    let Some(host) = pipeline.hosts().find(target) else {
        let shown: String = target.chars().take(200).collect();
        return text(
            StatusCode::BAD_REQUEST,
            format!("target {shown:?} is not a host of the inventory; /probe only sweeps inventory hosts, by name\n"),
        );
    };
    let start = Instant::now();
    let cap = pipeline.host_timeout(&host);
    let deadline = probe_deadline(&headers, s.default_probe_timeout, cap);
    // A sweep of this target already running is shared (it has its own
    // deadline, as its first caller asked); otherwise one starts here. It is
    // polled by this handler: a scraper that hangs up stops waiting, and once
    // every caller has, the probe is dropped and its slot is free.
    let boarding = s.probes.board(target, |slot| {
        let s = s.clone();
        let pipeline = pipeline.clone();
        let mut host = host.clone();
        host.host_timeout = Some(deadline);
        let connect = pipeline.connect_timeout(&host).min(deadline);
        if let Some(c) = host.target.connect_timeout_mut() {
            *c = Some(connect);
        }
        Box::pin(async move {
            let _slot = slot;
            let _in_flight = InFlight::enter(&s.daemon.probes_in_flight);
            let report = pipeline
                .sweep(vec![host], Arc::new(Silent), s.shutdown.clone())
                .await;
            Arc::new(report)
        })
    });
    let (report, joined) = match boarding {
        Boarding::Started(flight) => (flight.await, false),
        Boarding::Joined(flight) => (flight.await, true),
        Boarding::Full => {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many probes in flight; try again later\n",
            )
        }
    };
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(target = %target, seconds = secs, joined, "probe answered");
    match fleetsweep_exporters::metrics::render_probe(&report, secs, pipeline.metrics_options()) {
        Ok(page) => (StatusCode::OK, [(header::CONTENT_TYPE, TEXT_FORMAT)], page).into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_from_scrape_timeout() {
        let d = Duration::from_secs(10);
        let cap = Duration::from_secs(120);
        let mut h = HeaderMap::new();
        assert_eq!(probe_deadline(&h, d, cap), d);
        let with = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(
                "X-Prometheus-Scrape-Timeout-Seconds",
                HeaderValue::from_static(v),
            );
            probe_deadline(&h, d, cap)
        };
        assert_eq!(with("2"), Duration::from_millis(1500));
        assert_eq!(with("0.3"), PROBE_MIN);
        for bad in ["nan", "-5", "inf", "", "soon", "0"] {
            assert_eq!(with(bad), d, "{bad:?}");
        }
        // Never above the host timeout, however long the scraper would wait.
        assert_eq!(with("90"), Duration::from_millis(89_500));
        assert_eq!(with("86400"), cap - PROBE_MARGIN);
        assert_eq!(with("1e300"), cap - PROBE_MARGIN);
        // A host timeout below the default bounds the default too.
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            HeaderValue::from_static("30"),
        );
        let short = Duration::from_secs(3);
        assert_eq!(probe_deadline(&h, d, short), short - PROBE_MARGIN);
        assert_eq!(probe_deadline(&HeaderMap::new(), d, short), short);
    }
}
