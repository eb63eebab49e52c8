//! The HTTP side of `serve` (axum over axum-server, plain or rustls).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

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

pub(super) async fn serve(
    listener: std::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<Option<String>>,
) -> Result<(), ServeError> {
    let app = router(shared);
    let handle = axum_server::Handle::new();
    let h = handle.clone();
    tokio::spawn(async move {
        wait_for(shutdown).await;
        h.graceful_shutdown(Some(GRACE));
    });
    let served = match tls {
        Some(cfg) => {
            let cfg = axum_server::tls_rustls::RustlsConfig::from_config(cfg);
            axum_server::tls_rustls::from_tcp_rustls(listener, cfg)
                .handle(handle)
                .serve(app.into_make_service())
                .await
        }
        None => {
            axum_server::from_tcp(listener)
                .handle(handle)
                .serve(app.into_make_service())
                .await
        }
    };
    served.map_err(ServeError::Serve)
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
    let sweep = s
        .published
        .read()
        .ok()
        .and_then(|p| p.as_ref().map(|p| p.metrics.clone()))
        .unwrap_or_default();
    match s.daemon.render() {
        Ok(daemon) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, TEXT_FORMAT)],
            sweep + &daemon,
        )
            .into_response(),
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n")
}

async fn report(State(s): State<Arc<Shared>>) -> Response {
    let yaml = s
        .published
        .read()
        .ok()
        .and_then(|p| p.as_ref().map(|p| p.yaml.clone()));
    match yaml {
        Some(y) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/yaml; charset=utf-8")],
            y,
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

/// The probe deadline: Prometheus's scrape timeout minus a margin, else the default.
fn probe_deadline(headers: &HeaderMap, default: Duration) -> Duration {
    headers
        .get("X-Prometheus-Scrape-Timeout-Seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t > 0.0)
        .map(|t| {
            Duration::from_secs_f64(t.min(86_400.0))
                .saturating_sub(PROBE_MARGIN)
                .max(PROBE_MIN)
        })
        .unwrap_or(default)
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
    let Some(host) = s.pipeline.hosts().iter().find(|h| &h.name == target) else {
        let shown: String = target.chars().take(200).collect();
        return text(
            StatusCode::BAD_REQUEST,
            format!("target {shown:?} is not a host of the inventory; /probe only sweeps inventory hosts, by name\n"),
        );
    };
    let Ok(permit) = s.probes.clone().try_acquire_owned() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many probes in flight; try again later\n",
        );
    };
    let deadline = probe_deadline(&headers, s.default_probe_timeout);
    let mut host = host.clone();
    host.host_timeout = Some(host.host_timeout.map_or(deadline, |t| t.min(deadline)));
    if let Some(c) = host.target.connect_timeout_mut() {
        *c = Some(c.map_or(deadline, |t| t.min(deadline)));
    }
    let start = Instant::now();
    // The probe runs as a task of its own that holds the permit: a scraper
    // that hangs up does not free the slot while the host is still being swept.
    let task = {
        let s = s.clone();
        tokio::spawn(async move {
            let _permit = permit;
            s.daemon.probes_in_flight.inc();
            let report = s
                .pipeline
                .sweep(vec![host], Arc::new(Silent), s.shutdown.clone())
                .await;
            s.daemon.probes_in_flight.dec();
            report
        })
    };
    let report = match task.await {
        Ok(r) => r,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the probe failed: {e}\n"),
            )
        }
    };
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(target = %target, seconds = secs, "probe answered");
    match fleetsweep_exporters::metrics::render_probe(&report, secs) {
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
        let mut h = HeaderMap::new();
        assert_eq!(probe_deadline(&h, d), d);
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            HeaderValue::from_static("2"),
        );
        assert_eq!(probe_deadline(&h, d), Duration::from_millis(1500));
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            HeaderValue::from_static("0.3"),
        );
        assert_eq!(probe_deadline(&h, d), PROBE_MIN);
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            HeaderValue::from_static("nan"),
        );
        assert_eq!(probe_deadline(&h, d), d);
    }
}
