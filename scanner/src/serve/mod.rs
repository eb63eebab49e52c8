//! `fleetsweep serve`: the daemon that sweeps on a schedule and serves the
//! results to Prometheus.
//!
//! # Layout
//! - [`scheduler`]: one sweep at start, then one every interval plus jitter;
//!   sweeps run one after the other, never two at once.
//! - `http` (axum): `/metrics`, `/healthz`, `/report`, `/probe?target=HOST`,
//!   behind optional basic auth and TLS, with a bound on open connections and
//!   deadlines on slow clients. The only module naming axum.
//! - `probe`: `/probe` sweeps, one per target at a time, shared by its
//!   concurrent callers and cancelled when they have all gone.
//! - [`web_config`]: exporter-toolkit's `web.yml` (TLS, basic auth, headers).
//! - `auth`: bcrypt basic auth with a cache of verified credentials.
//!
//! The daemon drives a [`Pipeline`] (validated once by the binary) and
//! publishes what it returns: each scheduled sweep goes through the state
//! store (statuses new/open/..., `fleetsweep_remediations_total`) before it
//! is published, and its files are written and pushed after. A `/probe` is a
//! look at one host, not a sweep of the fleet: it skips both.
//!
//! # Reload
//! The binary sends a freshly validated [`Pipeline`] (inventory, catalog,
//! exceptions, known_hosts re-read on SIGHUP) or the reason it was refused
//! on the `reloads` channel. A new pipeline serves the next sweep and every
//! `/probe` from then on; the running sweep finishes with the one it
//! started with. A refused one changes nothing but
//! `fleetsweep_config_last_reload_successful` and a log line.
//!
//! # Shutdown
//! A value on the shutdown channel (SIGTERM/SIGINT in the binary) stops the
//! server accepting, cancels the running sweep and any probe, and [`run`]
//! returns `Ok`. The interrupted sweep's partial report is published (and its
//! outputs written) only when no complete sweep has been: partial results are
//! better than none, but never replace complete ones.

mod auth;
mod http;
mod page;
mod probe;
pub mod scheduler;
#[cfg(test)]
mod tests;
pub mod web_config;

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use fleetsweep_exporters::metrics::{DaemonMetrics, MetricsError, MetricsOptions};
use fleetsweep_exporters::Report;

use crate::pipeline::Pipeline;
pub use http::Limits;
pub use web_config::WebConfig;

/// Everything the daemon needs, validated by the binary.
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub web: WebConfig,
    pub schedule: scheduler::Schedule,
    /// Targets probed at once (`/probe` calls for a target being probed
    /// share its sweep); more get 503, so a scrape storm cannot open
    /// unbounded SSH connections.
    pub max_probes: usize,
    /// Probe deadline when Prometheus sends no X-Prometheus-Scrape-Timeout-Seconds.
    /// Like the header's, never above the host's timeout.
    pub default_probe_timeout: Duration,
    /// Open connections and slow clients.
    pub limits: Limits,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// What the last published sweep looks like on the wire, rendered once and
/// shared by every request (a response holds what it started with, however
/// many sweeps are published meanwhile).
struct Published {
    /// `/report`: the YAML, in a temporary file ([`page`]).
    report: Arc<page::Page>,
    /// The sweep's part of `/metrics` (the daemon's own series follow it).
    metrics: bytes::Bytes,
    complete: bool,
}

/// State shared by the scheduler and the HTTP handlers.
struct Shared {
    /// Sweeps on schedule and for `/probe`; its hosts are the only `/probe`
    /// targets. Replaced whole on reload (see [`Shared::pipeline`]).
    pipeline: RwLock<Arc<Pipeline>>,
    /// Lives as long as the process: counters survive from sweep to sweep.
    daemon: DaemonMetrics,
    /// The last published sweep; `None` until the first one ends.
    published: RwLock<Option<Arc<Published>>>,
    /// The running `/probe` sweeps: one per target, a bounded number.
    probes: Arc<probe::Flights>,
    /// Cancels sweeps and probes on shutdown.
    shutdown: watch::Receiver<Option<String>>,
    auth: Option<auth::BasicAuth>,
    headers: Vec<(String, String)>,
    default_probe_timeout: Duration,
}

impl Shared {
    /// The current pipeline: a sweep or probe keeps the one it started with
    /// even when a reload replaces it meanwhile.
    fn pipeline(&self) -> Arc<Pipeline> {
        match self.pipeline.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Applies one reload: a new pipeline, or why the new configuration was refused.
    fn reload(&self, outcome: Result<Arc<Pipeline>, String>) {
        let d = &self.daemon;
        match outcome {
            Ok(new) => {
                let hosts = new.hosts().len();
                match self.pipeline.write() {
                    Ok(mut p) => *p = new,
                    Err(poisoned) => *poisoned.into_inner() = new,
                }
                d.config_reload_successful.set(1);
                d.config_reload_timestamp
                    .set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
                tracing::warn!(hosts, "configuration reloaded; the next sweep uses it");
            }
            Err(why) => {
                d.config_reload_successful.set(0);
                tracing::error!(
                    "configuration reload refused, the previous configuration stays in use: {why}"
                );
            }
        }
    }

    /// Publishes `report` unless it is partial and a complete one exists.
    /// Returns whether it was published.
    fn publish(&self, report: &Report, opts: &MetricsOptions) -> bool {
        let complete = report.sweep.complete;
        let keep_old = self
            .published
            .read()
            .map(|p| p.as_ref().is_some_and(|p| p.complete && !complete))
            .unwrap_or(false);
        if keep_old {
            tracing::warn!(
                sweep = %report.sweep.id,
                "sweep was interrupted; keeping the last complete sweep's results"
            );
            return false;
        }
        let page = match page::Page::render(report) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("cannot render the report: {e}");
                return false;
            }
        };
        let metrics = match fleetsweep_exporters::metrics::render(report, opts) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!("cannot render metrics: {e}");
                return false;
            }
        };
        if let Ok(mut p) = self.published.write() {
            *p = Some(Arc::new(Published {
                report: Arc::new(page),
                metrics: metrics.into(),
                complete,
            }));
        }
        true
    }
}

impl Shared {
    fn new(
        config: &ServeConfig,
        pipeline: Arc<Pipeline>,
        shutdown: watch::Receiver<Option<String>>,
    ) -> Result<Arc<Shared>, ServeError> {
        let daemon = DaemonMetrics::new()?;
        daemon.siem_outputs(&pipeline.siem_outputs());
        Ok(Arc::new(Shared {
            pipeline: RwLock::new(pipeline),
            daemon,
            published: RwLock::new(None),
            probes: probe::Flights::new(config.max_probes),
            shutdown,
            auth: auth::BasicAuth::new(&config.web.basic_auth_users),
            headers: config.web.headers.clone(),
            default_probe_timeout: config.default_probe_timeout,
        }))
    }
}

/// Runs the daemon until `shutdown` receives a value. `reloads` brings a new
/// pipeline, or the reason one was refused, whenever the binary re-reads its
/// configuration.
pub async fn run(
    config: ServeConfig,
    pipeline: Arc<Pipeline>,
    mut reloads: mpsc::Receiver<Result<Arc<Pipeline>, String>>,
    shutdown: watch::Receiver<Option<String>>,
) -> Result<(), ServeError> {
    let shared = Shared::new(&config, pipeline, shutdown.clone())?;
    {
        let shared = shared.clone();
        tokio::spawn(async move {
            while let Some(outcome) = reloads.recv().await {
                shared.reload(outcome);
            }
        });
    }
    let listener = std::net::TcpListener::bind(config.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| ServeError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    tracing::warn!(
        %addr,
        tls = config.web.tls.is_some(),
        basic_auth = shared.auth.is_some(),
        "serving /metrics, /healthz, /report, /probe"
    );
    let server = tokio::spawn(http::serve(
        listener,
        config.web.tls.clone(),
        config.limits,
        shared.clone(),
        shutdown.clone(),
    ));
    scheduler::run(shared.clone(), config.schedule, shutdown).await;
    match server.await {
        Ok(r) => r,
        Err(e) => Err(ServeError::Serve(std::io::Error::other(e))),
    }
}
