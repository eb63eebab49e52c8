//! `fleetsweep serve`: the pipeline, validated once, driven by the daemon
//! of [`fleetsweep::serve`] on a schedule and for `/probe`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use tokio::sync::{mpsc, watch};

use fleetsweep::cli::{ScanArgs, ServeArgs};
use fleetsweep::inventory;
use fleetsweep::pipeline::Pipeline;
use fleetsweep::serve::{self, scheduler::Schedule, Limits, ServeConfig, WebConfig};

use super::{EXIT_CLEAN, EXIT_PARTIAL};

/// Targets probed at once (each is one SSH connection).
const MAX_PROBES: usize = 16;
/// Probe deadline when the scraper sends no timeout header.
const DEFAULT_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `--listen`: `HOST:PORT` with an IP address, or `:PORT` for every address
/// (as exporters take it). Names are not resolved.
fn listen_addr(text: &str) -> Result<SocketAddr> {
    let full = match text.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => text.to_string(),
    };
    full.parse().with_context(|| {
        format!("--listen `{text}`: expected IP:PORT such as 127.0.0.1:9817 or [::]:9817, or :PORT")
    })
}

pub async fn serve(args: ServeArgs) -> Result<u8> {
    let interval = inventory::parse_duration(&args.interval)
        .map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
    if interval.is_zero() {
        bail!("--interval must be longer than 0s");
    }
    if !(0.0..=1.0).contains(&args.jitter) {
        bail!("--jitter must be a fraction from 0 to 1 (0.1 adds up to 10% of the interval)");
    }
    let listen = listen_addr(&args.listen)?;
    if args.max_connections == 0 {
        bail!("--web.max-connections must be at least 1");
    }
    let header_timeout = inventory::parse_duration(&args.header_timeout)
        .map_err(|e| anyhow::anyhow!("--web.header-timeout: {e}"))?;
    if header_timeout.is_zero() {
        bail!("--web.header-timeout must be longer than 0s");
    }
    let web = match &args.web_config_file {
        Some(p) => WebConfig::load(p)?,
        None => WebConfig::default(),
    };
    if let Some(url) = &args.scan.push {
        // A typo in the URL should stop the daemon now, not log an error every sweep.
        fleetsweep_exporters::push::PushTarget::new(url, &args.scan.push_job, "all")?;
    }
    let pipeline = Arc::new(super::scan::prepare(&args.scan)?);
    if !listen.ip().is_loopback() && args.web_config_file.is_none() {
        tracing::warn!(
            %listen,
            "serving /report (every host, address and finding) and /probe without TLS or authentication on a non-loopback address: give --web.config.file with basic_auth_users and tls_server_config, or listen on 127.0.0.1"
        );
    }
    let config = ServeConfig {
        listen,
        web,
        schedule: Schedule {
            interval,
            jitter: args.jitter,
        },
        max_probes: MAX_PROBES,
        default_probe_timeout: DEFAULT_PROBE_TIMEOUT,
        limits: Limits {
            max_connections: args.max_connections,
            header_timeout,
        },
    };
    let (tx, rx) = watch::channel(None);
    // Registered now, not inside the tasks: a signal before a busy runtime
    // polled them would otherwise take the default action (exit, for SIGHUP too).
    let stop = super::scan::install_signals();
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    tokio::spawn(forward_signals(stop, tx));
    let (reload_tx, reload_rx) = mpsc::channel(1);
    tokio::spawn(reload_on_sighup(hup, args.scan.clone(), reload_tx));
    serve::run(config, pipeline, reload_rx, rx).await?;
    tracing::warn!("fleetsweep serve stopped");
    Ok(EXIT_CLEAN)
}

/// SIGHUP → the inventory, catalog, exceptions and known_hosts are read
/// again and validated as at start; the daemon switches to them only when
/// all of that succeeds (the refusal names file, line and column otherwise).
async fn reload_on_sighup(
    hup: Option<tokio::signal::unix::Signal>,
    scan: ScanArgs,
    reloads: mpsc::Sender<Result<Arc<Pipeline>, String>>,
) {
    let Some(mut hup) = hup else {
        tracing::error!("cannot install the SIGHUP handler; reload by restarting serve");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::warn!("SIGHUP received: reloading the configuration");
        // `prepare` reads the files with block_in_place, as at start.
        let outcome = super::scan::prepare(&scan)
            .map(Arc::new)
            .map_err(|e| format!("{e:#}"));
        if reloads.send(outcome).await.is_err() {
            return;
        }
    }
}

/// SIGINT/SIGTERM → graceful stop (exit 0); a second one → exit at once.
async fn forward_signals(
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
    tx: watch::Sender<Option<String>>,
) {
    let Some((mut int, mut term)) = signals else {
        tracing::error!("cannot install signal handlers; SIGTERM will not stop serve gracefully");
        return;
    };
    let name = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    tracing::warn!("{name} received: stopping (the running sweep is cancelled)");
    let _ = tx.send(Some(name.to_string()));
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    std::process::exit(i32::from(EXIT_PARTIAL));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(
            listen_addr(":9817").ok(),
            "0.0.0.0:9817".parse::<SocketAddr>().ok()
        );
        assert!(listen_addr("[::1]:1").is_ok());
        assert!(listen_addr("localhost:9817").is_err());
    }
}
