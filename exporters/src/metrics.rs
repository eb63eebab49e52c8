//! Prometheus metrics of a sweep (docs/metrics.md), in the classic text format 0.0.4
//! that node_exporter's textfile collector and the Pushgateway read.
//!
//! Cardinality is bounded on purpose: per-host series exist only for hosts
//! with a finding or a failed scan, and inventory labels become metric labels
//! only when allow-listed (`--metric-label site`).
//!
//! Three pages are built here: [`render`] (one sweep: the textfile, the
//! Pushgateway push and the sweep part of `serve`'s `/metrics`),
//! [`render_probe`] (one `/probe` answer, from a fresh registry each time, as
//! blackbox_exporter does) and [`DaemonMetrics`] (the `serve` process itself:
//! scrapes, sweeps, process CPU and memory). Their metric names never overlap,
//! so `serve` can concatenate the sweep page and the daemon page.

use std::collections::BTreeMap;

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::report::{Outcome, Report, Status};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("`{0}` cannot be a metric label: use letters, digits and `_`, not starting with a digit or `__`")]
    BadLabel(String),
    #[error("`{0}` is used by fleetsweep's own metrics and cannot be an inventory label too")]
    ReservedLabel(String),
    #[error("building metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
}

/// Which inventory labels may become metric labels.
#[derive(Debug, Clone, Default)]
pub struct MetricsOptions {
    pub label_allowlist: Vec<String>,
    /// Build revision for `fleetsweep_build_info`.
    pub revision: String,
    /// Remediations recorded by the state store over all sweeps, per
    /// (vendor, product): `fleetsweep_remediations_total`. Without a state
    /// store there is no history, and the counter is not exported.
    pub remediations: BTreeMap<(String, String), u64>,
}

const RESERVED: &[&str] = &[
    "outcome", "vendor", "product", "policy", "status", "host", "rule", "catalog", "version",
    "revision", "le", "job", "instance",
];

fn valid_label(l: &str) -> bool {
    let mut chars = l.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !l.starts_with("__")
}

fn status_str(s: Status) -> &'static str {
    s.as_str()
}

/// Checks that allow-listed inventory labels can be metric labels.
pub fn check_labels(labels: &[String]) -> Result<(), MetricsError> {
    for l in labels {
        if !valid_label(l) {
            return Err(MetricsError::BadLabel(l.clone()));
        }
        if RESERVED.contains(&l.as_str()) {
            return Err(MetricsError::ReservedLabel(l.clone()));
        }
    }
    Ok(())
}

/// Renders the metrics of one sweep report.
pub fn render(report: &Report, opts: &MetricsOptions) -> Result<String, MetricsError> {
    encode(&sweep_registry(report, opts)?)
}

/// Writes the page of [`render`], byte for byte, to `out` as it is encoded
/// (a buffered file writer: the metrics textfile). An error of `out` comes
/// back as it was (so a full disk is still said as one).
pub fn write(
    report: &Report,
    opts: &MetricsOptions,
    mut out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let reg = sweep_registry(report, opts).map_err(std::io::Error::other)?;
    TextEncoder::new()
        .encode(&reg.gather(), &mut out)
        .map_err(|e| match e {
            prometheus::Error::Io(io) => io,
            other => std::io::Error::other(MetricsError::Prometheus(other)),
        })
}

/// The registry holding one sweep's series.
fn sweep_registry(report: &Report, opts: &MetricsOptions) -> Result<Registry, MetricsError> {
    check_labels(&opts.label_allowlist)?;
    let extra: Vec<&str> = opts.label_allowlist.iter().map(String::as_str).collect();
    let reg = Registry::new();
    let with = |base: &[&'static str]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let labels_of = |h: &crate::report::HostReport| -> Vec<String> {
        extra
            .iter()
            .map(|k| h.labels.get(*k).cloned().unwrap_or_default())
            .collect()
    };

    let hosts_names = with(&["outcome"]);
    let hosts = GaugeVec::new(
        Opts::new("fleetsweep_hosts", "Hosts of the last sweep by outcome (scanned, unreachable, auth_failed, host_key_rejected, timed_out, probe_failed, interrupted)."),
        &hosts_names.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let findings_names = with(&["vendor", "product", "policy", "status"]);
    let findings = GaugeVec::new(
        Opts::new(
            "fleetsweep_findings",
            "Findings of the last sweep by vendor, product, policy (ban fails a sweep, watch only reports) and remediation status.",
        ),
        &findings_names
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )?;
    let host_finding = GaugeVec::new(
        Opts::new(
            "fleetsweep_host_finding",
            "1 for each finding on a host (only hosts with findings have series).",
        ),
        &["host", "rule", "status"],
    )?;
    let host_failure = GaugeVec::new(
        Opts::new(
            "fleetsweep_host_scan_failure",
            "1 for each host that could not be scanned, by outcome.",
        ),
        &["host", "outcome"],
    )?;
    let incomplete_names = with(&[]);
    let incomplete = GaugeVec::new(
        Opts::new(
            "fleetsweep_hosts_incomplete",
            "Hosts of the last sweep that were scanned but not every probe section was read (counted apart from clean: scanned = clean + affected + incomplete).",
        ),
        &incomplete_names.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let host_incomplete = GaugeVec::new(
        Opts::new(
            "fleetsweep_host_scan_incomplete",
            "1 for each probe section a scanned host did not fully read (only such hosts have series).",
        ),
        &["host", "section"],
    )?;
    let duration = HistogramVec::new(
        HistogramOpts::new(
            "fleetsweep_host_scan_duration_seconds",
            "Time to scan one host: connect, probe and parse.",
        )
        .buckets(vec![0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]),
        &[],
    )?;
    let last_ts = GaugeVec::new(
        Opts::new(
            "fleetsweep_last_sweep_timestamp_seconds",
            "Unix time the last sweep finished.",
        ),
        &[],
    )?;
    let last_dur = GaugeVec::new(
        Opts::new(
            "fleetsweep_last_sweep_duration_seconds",
            "Wall-clock duration of the last sweep.",
        ),
        &[],
    )?;
    let last_ok = GaugeVec::new(
        Opts::new("fleetsweep_last_sweep_success", "1 if the last sweep ran to the end (hosts may still have failed: see fleetsweep_hosts), 0 if it was interrupted."),
        &[],
    )?;
    let rules = GaugeVec::new(
        Opts::new(
            "fleetsweep_catalog_rules",
            "Rules loaded from each catalog.",
        ),
        &["catalog"],
    )?;
    let build = GaugeVec::new(
        Opts::new(
            "fleetsweep_build_info",
            "Always 1; labels carry the fleetsweep version and revision.",
        ),
        &["version", "revision"],
    )?;
    for c in [
        &hosts,
        &findings,
        &host_finding,
        &host_failure,
        &incomplete,
        &host_incomplete,
        &last_ts,
        &last_dur,
        &last_ok,
        &rules,
        &build,
    ] {
        reg.register(Box::new(c.clone()))?;
    }
    reg.register(Box::new(duration.clone()))?;
    if !opts.remediations.is_empty() {
        let remediations = IntCounterVec::new(
            Opts::new(
                "fleetsweep_remediations_total",
                "Findings that went from present to absent in a successful scan, over every sweep in the state store, by vendor and product.",
            ),
            &["vendor", "product"],
        )?;
        for ((vendor, product), n) in &opts.remediations {
            remediations
                .with_label_values(&[vendor.as_str(), product.as_str()])
                .inc_by(*n);
        }
        reg.register(Box::new(remediations))?;
    }

    // Every outcome appears (0 when none), so alerts on "scan failures" see a series.
    if extra.is_empty() {
        for o in Outcome::ALL {
            hosts.with_label_values(&[o.as_str()]).set(0.0);
        }
        incomplete.with_label_values::<&str>(&[]).set(0.0);
    }
    let mut finding_counts: BTreeMap<Vec<String>, f64> = BTreeMap::new();
    for h in &report.hosts {
        let mut hl = vec![h.outcome.as_str().to_string()];
        hl.extend(labels_of(h));
        hosts
            .with_label_values(&hl.iter().map(String::as_str).collect::<Vec<_>>())
            .inc();
        if h.is_incomplete() && !h.is_affected() {
            incomplete
                .with_label_values(&labels_of(h).iter().map(String::as_str).collect::<Vec<_>>())
                .inc();
        }
        if h.is_incomplete() {
            for section in sections_of(h) {
                host_incomplete
                    .with_label_values(&[h.name.as_str(), section])
                    .set(1.0);
            }
        }
        if h.outcome != Outcome::Scanned {
            host_failure
                .with_label_values(&[h.name.as_str(), h.outcome.as_str()])
                .set(1.0);
        } else {
            duration
                .with_label_values::<&str>(&[])
                .observe(h.duration_seconds);
        }
        for f in &h.findings {
            host_finding
                .with_label_values(&[h.name.as_str(), f.rule.as_str(), status_str(f.status)])
                .set(1.0);
            let mut k = vec![
                f.vendor.clone(),
                f.product.clone(),
                match f.policy {
                    crate::report::Policy::Ban => "ban",
                    crate::report::Policy::Watch => "watch",
                }
                .to_string(),
                status_str(f.status).to_string(),
            ];
            k.extend(labels_of(h));
            *finding_counts.entry(k).or_default() += 1.0;
        }
    }
    for (k, n) in finding_counts {
        findings
            .with_label_values(&k.iter().map(String::as_str).collect::<Vec<_>>())
            .set(n);
    }
    let finished = report.sweep.finished.as_millisecond() as f64 / 1000.0;
    last_ts.with_label_values::<&str>(&[]).set(finished);
    last_dur.with_label_values::<&str>(&[]).set(
        report
            .sweep
            .finished
            .duration_since(report.sweep.started)
            .as_secs_f64(),
    );
    last_ok
        .with_label_values::<&str>(&[])
        .set(if report.sweep.complete { 1.0 } else { 0.0 });
    for c in &report.sweep.catalogs {
        rules
            .with_label_values(&[c.name.as_str()])
            .set(c.rules as f64);
    }
    build
        .with_label_values(&[
            report.sweep.scanner_version.as_str(),
            opts.revision.as_str(),
        ])
        .set(1.0);

    Ok(reg)
}

/// The section names of a host's `incomplete` entries (`dpkg: why` → `dpkg`).
fn sections_of(h: &crate::report::HostReport) -> impl Iterator<Item = &str> {
    h.incomplete
        .iter()
        .map(|i| i.split_once(": ").map_or(i.as_str(), |(name, _)| name))
}

fn encode(reg: &Registry) -> Result<String, MetricsError> {
    let mut buf = Vec::new();
    TextEncoder::new().encode(&reg.gather(), &mut buf)?;
    // The encoder writes UTF-8: no second copy of the page.
    Ok(String::from_utf8(buf)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Renders the answer to one `/probe?target=HOST`: a report of that one
/// host, in a registry of its own, so series of earlier probes never leak in.
///
/// `fleetsweep_probe_success` is 1 when the host could be scanned, findings or
/// not (as blackbox's probe_success says the check ran); findings show in
/// `fleetsweep_probe_findings` and `fleetsweep_host_finding`.
pub fn render_probe(report: &Report, duration_seconds: f64) -> Result<String, MetricsError> {
    let reg = Registry::new();
    let success = Gauge::with_opts(Opts::new(
        "fleetsweep_probe_success",
        "1 if the probed host was scanned completely (findings or not), 0 if it could not be or a probe section was not fully read.",
    ))?;
    let duration = Gauge::with_opts(Opts::new(
        "fleetsweep_probe_duration_seconds",
        "Time the probe took: connect, probe script and matching.",
    ))?;
    let count = Gauge::with_opts(Opts::new(
        "fleetsweep_probe_findings",
        "Findings on the probed host (every policy and status).",
    ))?;
    let host_finding = GaugeVec::new(
        Opts::new(
            "fleetsweep_host_finding",
            "1 for each finding on the probed host.",
        ),
        &["host", "rule", "status"],
    )?;
    let host_failure = GaugeVec::new(
        Opts::new(
            "fleetsweep_host_scan_failure",
            "1 if the probed host could not be scanned, by outcome.",
        ),
        &["host", "outcome"],
    )?;
    reg.register(Box::new(success.clone()))?;
    reg.register(Box::new(duration.clone()))?;
    reg.register(Box::new(count.clone()))?;
    reg.register(Box::new(host_finding.clone()))?;
    let host_incomplete = GaugeVec::new(
        Opts::new(
            "fleetsweep_host_scan_incomplete",
            "1 for each probe section the probed host did not fully read.",
        ),
        &["host", "section"],
    )?;
    reg.register(Box::new(host_failure.clone()))?;
    reg.register(Box::new(host_incomplete.clone()))?;
    // An incomplete scan is not a successful check: the host is not known clean.
    let scanned = !report.hosts.is_empty()
        && report
            .hosts
            .iter()
            .all(|h| h.outcome == Outcome::Scanned && !h.is_incomplete());
    success.set(if scanned { 1.0 } else { 0.0 });
    duration.set(duration_seconds);
    let mut n = 0usize;
    for h in &report.hosts {
        if h.outcome != Outcome::Scanned {
            host_failure
                .with_label_values(&[h.name.as_str(), h.outcome.as_str()])
                .set(1.0);
        }
        if h.is_incomplete() {
            for section in sections_of(h) {
                host_incomplete
                    .with_label_values(&[h.name.as_str(), section])
                    .set(1.0);
            }
        }
        for f in &h.findings {
            n += 1;
            host_finding
                .with_label_values(&[h.name.as_str(), f.rule.as_str(), status_str(f.status)])
                .set(1.0);
        }
    }
    count.set(n as f64);
    encode(&reg)
}

/// Metrics of the `serve` daemon itself, alive for the whole process.
///
/// Kept apart from the sweep page (which is rebuilt after every sweep) so
/// counters such as `fleetsweep_sweeps_total` survive from sweep to sweep.
pub struct DaemonMetrics {
    registry: Registry,
    /// Requests answered, by route (`/metrics`, `/probe`, ...) and HTTP status.
    pub scrape_requests: IntCounterVec,
    /// Scheduled sweeps finished, by result (`complete`, `interrupted`).
    pub sweeps: IntCounterVec,
    /// 1 while a scheduled sweep runs (never more: sweeps do not overlap).
    pub sweep_in_progress: IntGauge,
    /// `/probe` requests being answered right now.
    pub probes_in_flight: IntGauge,
    /// When the next scheduled sweep starts (Unix time), once it is planned.
    pub next_sweep: Gauge,
}

impl DaemonMetrics {
    pub fn new() -> Result<DaemonMetrics, MetricsError> {
        let registry = Registry::new();
        let scrape_requests = IntCounterVec::new(
            Opts::new(
                "fleetsweep_scrape_requests_total",
                "HTTP requests answered by fleetsweep serve, by handler and status code.",
            ),
            &["handler", "code"],
        )?;
        let sweeps = IntCounterVec::new(
            Opts::new(
                "fleetsweep_sweeps_total",
                "Scheduled sweeps finished by fleetsweep serve, by result (complete, interrupted).",
            ),
            &["result"],
        )?;
        let sweep_in_progress = IntGauge::with_opts(Opts::new(
            "fleetsweep_sweep_in_progress",
            "1 while a scheduled sweep runs.",
        ))?;
        let probes_in_flight = IntGauge::with_opts(Opts::new(
            "fleetsweep_probes_in_flight",
            "/probe requests being answered now.",
        ))?;
        let next_sweep = Gauge::with_opts(Opts::new(
            "fleetsweep_next_sweep_timestamp_seconds",
            "Unix time the next scheduled sweep starts (0 while one runs or before the first).",
        ))?;
        registry.register(Box::new(scrape_requests.clone()))?;
        registry.register(Box::new(sweeps.clone()))?;
        registry.register(Box::new(sweep_in_progress.clone()))?;
        registry.register(Box::new(probes_in_flight.clone()))?;
        registry.register(Box::new(next_sweep.clone()))?;
        // process_cpu_seconds_total, process_resident_memory_bytes, open fds, ...
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        // Both results exist from the start, so rate() and alerts see a series.
        for r in ["complete", "interrupted"] {
            sweeps.with_label_values(&[r]);
        }
        Ok(DaemonMetrics {
            registry,
            scrape_requests,
            sweeps,
            sweep_in_progress,
            probes_in_flight,
            next_sweep,
        })
    }

    /// The daemon's page (text format 0.0.4).
    pub fn render(&self) -> Result<String, MetricsError> {
        encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::report::*;

    fn report(outcome: Outcome) -> Report {
        Report {
            report_version: REPORT_VERSION,
            sweep: SweepInfo {
                id: "s".into(),
                started: "2026-11-22T06:00:00Z".parse().unwrap(),
                finished: "2026-11-22T06:00:01Z".parse().unwrap(),
                scanner_version: "0.1.0".into(),
                catalogs: vec![],
                shard: None,
                complete: true,
                interrupted_by: None,
            },
            summary: Summary::default(),
            exceptions: None,
            hosts: vec![HostReport {
                name: "h\"1".into(),
                address: "a".into(),
                labels: BTreeMap::new(),
                outcome,
                error: None,
                os: None,
                duration_seconds: 0.5,
                warnings: vec![],
                incomplete: vec![],
                findings: vec![],
            }],
        }
    }

    #[test]
    fn probe_pages() {
        let ok = render_probe(&report(Outcome::Scanned), 0.25).unwrap();
        assert!(ok.contains("\nfleetsweep_probe_success 1\n"), "{ok}");
        assert!(
            ok.contains("\nfleetsweep_probe_duration_seconds 0.25\n"),
            "{ok}"
        );
        assert!(ok.contains("\nfleetsweep_probe_findings 0\n"), "{ok}");
        assert!(!ok.contains("fleetsweep_host_scan_failure{"), "{ok}");
        let failed = render_probe(&report(Outcome::TimedOut), 1.5).unwrap();
        assert!(
            failed.contains("\nfleetsweep_probe_success 0\n"),
            "{failed}"
        );
        assert!(
            failed
                .contains("fleetsweep_host_scan_failure{host=\"h\\\"1\",outcome=\"timed_out\"} 1"),
            "host names are escaped: {failed}"
        );
        let mut empty = report(Outcome::Scanned);
        empty.hosts.clear();
        assert!(render_probe(&empty, 0.0)
            .unwrap()
            .contains("\nfleetsweep_probe_success 0\n"));
    }

    #[test]
    fn incomplete_hosts_are_counted_apart_and_named_per_section() {
        let mut r = report(Outcome::Scanned);
        r.hosts[0].incomplete = vec!["os-release: garbage".into(), "paths: cut".into()];
        r.normalize();
        assert_eq!(r.summary.hosts.incomplete, 1);
        assert_eq!(r.summary.hosts.clean, 0);
        let page = render(&r, &MetricsOptions::default()).unwrap();
        assert!(page.contains("\nfleetsweep_hosts_incomplete 1\n"), "{page}");
        assert!(
            page.contains(
                "fleetsweep_host_scan_incomplete{host=\"h\\\"1\",section=\"os-release\"} 1"
            ),
            "{page}"
        );
        assert!(page.contains("section=\"paths\"} 1"), "{page}");
        let probe = render_probe(&r, 0.1).unwrap();
        assert!(probe.contains("\nfleetsweep_probe_success 0\n"), "{probe}");
        assert!(
            probe.contains("fleetsweep_host_scan_incomplete{"),
            "{probe}"
        );
        // A complete host: the gauge is 0 and there is no per-host series.
        let ok = render(&report(Outcome::Scanned), &MetricsOptions::default()).unwrap();
        assert!(ok.contains("\nfleetsweep_hosts_incomplete 0\n"), "{ok}");
        assert!(!ok.contains("fleetsweep_host_scan_incomplete{"), "{ok}");
    }

    #[test]
    fn daemon_page_does_not_collide_with_the_sweep_page() {
        let d = DaemonMetrics::new().unwrap();
        d.scrape_requests
            .with_label_values(&["/metrics", "200"])
            .inc();
        let daemon = d.render().unwrap();
        assert!(daemon.contains("fleetsweep_sweeps_total{result=\"interrupted\"} 0"));
        assert!(daemon.contains("process_resident_memory_bytes"), "{daemon}");
        let sweep = render(&report(Outcome::Scanned), &MetricsOptions::default()).unwrap();
        let names = |page: &str| -> Vec<String> {
            page.lines()
                .filter_map(|l| l.strip_prefix("# TYPE "))
                .map(|l| l.split(' ').next().unwrap().to_string())
                .collect()
        };
        let sweep_names = names(&sweep);
        for n in names(&daemon) {
            assert!(!sweep_names.contains(&n), "{n} is on both pages");
        }
    }
}
