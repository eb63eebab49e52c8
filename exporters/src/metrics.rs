//! Prometheus metrics of a sweep (docs/metrics.md), in the classic text format 0.0.4
//! that node_exporter's textfile collector and the Pushgateway read.
//!
//! Cardinality is bounded on purpose: per-host series exist only for hosts
//! with a finding or a failed scan, and inventory labels become metric labels
//! only when allow-listed (`--metric-label site,owner`).
//!
//! Labels are chosen so that alerts route and series join: every per-host
//! series carries the allow-listed inventory labels (Alertmanager routes on
//! `owner`, `site`), and findings carry the same identity on the fleet and
//! the per-host series (`vendor`, `product`, `rule`, `policy`), so
//! `policy!="watch"` and a join on `rule` work on both.
//!
//! Three pages are built here: [`render`] (one sweep: the textfile, the
//! Pushgateway push and the sweep part of `serve`'s `/metrics`),
//! [`render_probe`] (one `/probe` answer, from a fresh registry each time, as
//! blackbox_exporter does) and [`DaemonMetrics`] (the `serve` process itself:
//! scrapes, sweeps, SIEM deliveries, process CPU and memory). Their metric names never overlap,
//! so `serve` can concatenate the sweep page and the daemon page.

use std::collections::BTreeMap;

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::hosts::HostList;
use crate::report::{HostReport, Outcome, Policy, Report, Status};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("`{0}` cannot be a metric label: use letters, digits and `_`, not starting with a digit or `__`")]
    BadLabel(String),
    #[error(
        "`{0}` is used by fleetsweep's own metrics or alerts and cannot be an inventory label too"
    )]
    ReservedLabel(String),
    #[error("`{0}` is allow-listed twice: give each inventory label once to --metric-label")]
    DuplicateLabel(String),
    #[error("building metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
}

/// Which inventory labels may become metric labels.
#[derive(Debug, Clone, Default)]
pub struct MetricsOptions {
    /// Inventory labels copied onto the fleet series (`fleetsweep_hosts`,
    /// `fleetsweep_findings`, `fleetsweep_hosts_incomplete`) and every
    /// per-host series; a host without one gets an empty value (no label).
    pub label_allowlist: Vec<String>,
    /// Build revision for `fleetsweep_build_info`.
    pub revision: String,
    /// Remediations recorded by the state store over all sweeps, per
    /// (vendor, product): `fleetsweep_remediations_total`. Without a state
    /// store there is no history, and the counter is not exported.
    pub remediations: BTreeMap<(String, String), u64>,
}

/// Label names of fleetsweep's own series, of Prometheus's target labels and
/// of the alert rules (`severity`, `alertname`): an inventory label of the
/// same name would clash with them.
const RESERVED: &[&str] = &[
    "outcome",
    "vendor",
    "product",
    "policy",
    "status",
    "host",
    "rule",
    "section",
    "catalog",
    "version",
    "revision",
    "le",
    "job",
    "instance",
    "severity",
    "alertname",
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

fn policy_str(p: Policy) -> &'static str {
    match p {
        Policy::Ban => "ban",
        Policy::Watch => "watch",
    }
}

/// Checks that allow-listed inventory labels can be metric labels.
pub fn check_labels(labels: &[String]) -> Result<(), MetricsError> {
    for (i, l) in labels.iter().enumerate() {
        if !valid_label(l) {
            return Err(MetricsError::BadLabel(l.clone()));
        }
        if RESERVED.contains(&l.as_str()) {
            return Err(MetricsError::ReservedLabel(l.clone()));
        }
        if labels[..i].contains(l) {
            return Err(MetricsError::DuplicateLabel(l.clone()));
        }
    }
    Ok(())
}

/// Label names of a series: its own, then the allow-listed inventory labels.
fn names<'a>(own: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    own.iter().chain(extra).copied().collect()
}

/// The allow-listed inventory label values of a host, in allow-list order
/// (empty for a label the host does not have).
fn host_labels<'h>(h: &'h HostReport, extra: &[&str]) -> Vec<&'h str> {
    extra
        .iter()
        .map(|k| h.labels.get(*k).map_or("", String::as_str))
        .collect()
}

/// The per-host series that the sweep page and the probe page share, with
/// the same label sets on both: `fleetsweep_host_finding`,
/// `fleetsweep_host_scan_failure` and `fleetsweep_host_scan_incomplete`.
///
/// Written straight from the report, not through the registry: gathering a
/// registry copies every series into protobuf messages of their own (a
/// label pair is two strings and a message), some 10 MB for the 5,000
/// affected hosts of a 100,000-host sweep and ten times the page's size in
/// general, all alive at once at the end of the sweep. This writes each
/// series as it goes, byte for byte what the registry's text encoder writes
/// for the same gauges (labels by name, series by their labels' values in
/// that order, each label set once, a family with no series left out), and
/// holds two numbers a series while it sorts them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum HostFamily {
    Finding,
    Failure,
    Incomplete,
}

impl HostFamily {
    /// In the order of their names, as the page lists families.
    const ALL: [HostFamily; 3] = [
        HostFamily::Finding,
        HostFamily::Failure,
        HostFamily::Incomplete,
    ];

    fn name(self) -> &'static str {
        match self {
            HostFamily::Finding => "fleetsweep_host_finding",
            HostFamily::Failure => "fleetsweep_host_scan_failure",
            HostFamily::Incomplete => "fleetsweep_host_scan_incomplete",
        }
    }

    fn help(self, probe: bool) -> &'static str {
        match (self, probe) {
            (HostFamily::Finding, true) => "1 for each finding on the probed host.",
            (HostFamily::Failure, true) => "1 if the probed host could not be scanned, by outcome.",
            (HostFamily::Incomplete, true) => {
                "1 for each probe section the probed host did not fully read."
            }
            (HostFamily::Finding, false) => {
                "1 for each finding on a host (only hosts with findings have series)."
            }
            (HostFamily::Failure, false) => {
                "1 for each host that could not be scanned, by outcome."
            }
            (HostFamily::Incomplete, false) => {
                "1 for each probe section a scanned host did not fully read (only such hosts have series)."
            }
        }
    }

    /// The family's own label names; the allow-listed ones follow.
    fn own_labels(self) -> &'static [&'static str] {
        match self {
            HostFamily::Finding => &["host", "vendor", "product", "rule", "policy", "status"],
            HostFamily::Failure => &["host", "outcome"],
            HostFamily::Incomplete => &["host", "section"],
        }
    }

    /// The series of host `h`'s: (host, item) for each of its findings, its
    /// failure, or each of its incomplete sections.
    fn items(self, h: &HostReport) -> usize {
        match self {
            HostFamily::Finding => h.findings.len(),
            HostFamily::Failure => usize::from(h.outcome != Outcome::Scanned),
            HostFamily::Incomplete if h.is_incomplete() => sections_of(h).count(),
            HostFamily::Incomplete => 0,
        }
    }

    /// The label values of item `item` of `h`, in the order of
    /// [`HostFamily::own_labels`] then `extra`.
    fn values<'h>(self, h: &'h HostReport, item: usize, extra: &[&str]) -> Values<'h> {
        let mut v = Values::new();
        v.push(&h.name);
        match self {
            HostFamily::Finding => {
                let f = &h.findings[item];
                v.extend([
                    f.vendor.as_str(),
                    f.product.as_str(),
                    f.rule.as_str(),
                    policy_str(f.policy),
                    status_str(f.status),
                ]);
            }
            HostFamily::Failure => v.push(h.outcome.as_str()),
            HostFamily::Incomplete => v.push(sections_of(h).nth(item).unwrap_or_default()),
        }
        v.extend(host_labels(h, extra));
        v
    }

    /// The family's label names sorted, as the encoder writes them, and
    /// for each the place of its value among [`HostFamily::values`].
    fn label_order<'a>(self, extra: &[&'a str]) -> (Vec<&'a str>, Vec<usize>) {
        let names = names(self.own_labels(), extra);
        let mut by_name: Vec<usize> = (0..names.len()).collect();
        by_name.sort_by_key(|&k| names[k]);
        (by_name.iter().map(|&k| names[k]).collect(), by_name)
    }

    /// Writes the family's `series`: nothing when it has none.
    fn write(
        self,
        mut series: Vec<Series>,
        extra: &[&str],
        probe: bool,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<()> {
        if series.is_empty() {
            return Ok(());
        }
        let (names, _) = self.label_order(extra);
        series.sort_by(|a, b| a.values().cmp(b.values()));
        // Equal label sets are one series (a gauge set twice).
        series.dedup_by(|a, b| a.values().eq(b.values()));
        let name = self.name();
        writeln!(out, "# HELP {name} {}", self.help(probe))?;
        writeln!(out, "# TYPE {name} gauge")?;
        for s in series {
            out.write_all(name.as_bytes())?;
            for (k, (n, value)) in names.iter().zip(s.values()).enumerate() {
                out.write_all(if k == 0 { b"{" } else { b"," })?;
                out.write_all(n.as_bytes())?;
                out.write_all(b"=\"")?;
                write_label_value(value, out)?;
                out.write_all(b"\"")?;
            }
            out.write_all(b"} 1\n")?;
        }
        Ok(())
    }
}

/// The series of the per-host families ([`HostFamily::ALL`]'s order), in
/// one pass over `hosts` (a sweep's are built one at a time): each series'
/// label values, in label-name order, as its own text (some 100 bytes, what
/// its line will say), not its host's whole report.
fn host_series(hosts: &HostList, extra: &[&str]) -> std::io::Result<[Vec<Series>; 3]> {
    let orders = HostFamily::ALL.map(|f| f.label_order(extra).1);
    let mut series: [Vec<Series>; 3] = Default::default();
    for h in hosts.iter() {
        for ((f, order), series) in HostFamily::ALL.iter().zip(&orders).zip(&mut series) {
            for item in 0..f.items(&h) {
                let v = f.values(&h, item, extra);
                series.push(Series::of(order.iter().map(|&k| v[k]))?);
            }
        }
    }
    Ok(series)
}

/// One series' label values, owned: one text and where each value ends.
struct Series {
    text: String,
    ends: smallvec::SmallVec<[u32; 12]>,
}

impl Series {
    fn of<'v>(values: impl Iterator<Item = &'v str>) -> std::io::Result<Series> {
        let mut s = Series {
            text: String::new(),
            ends: smallvec::SmallVec::new(),
        };
        for v in values {
            s.text.push_str(v);
            s.ends
                .push(u32::try_from(s.text.len()).map_err(std::io::Error::other)?);
        }
        s.text.shrink_to_fit();
        Ok(s)
    }

    fn values(&self) -> impl Iterator<Item = &str> + '_ {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(&self.ends)
            .map(|(from, &to)| &self.text[from as usize..to as usize])
    }
}

/// A series' label values: on the stack (a sort compares many).
type Values<'h> = smallvec::SmallVec<[&'h str; 12]>;

/// A label value as the text format escapes it: `\\`, `\"` and `\n`.
fn write_label_value(value: &str, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut rest = value;
    while let Some(at) = rest.find(['\\', '"', '\n']) {
        out.write_all(&rest.as_bytes()[..at])?;
        out.write_all(match rest.as_bytes()[at] {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            _ => b"\\n",
        })?;
        rest = &rest[at + 1..];
    }
    out.write_all(rest.as_bytes())
}

/// Writes the page: the registry's families and the per-host ones of
/// `hosts`, all in the order of their names.
fn write_page(
    reg: &Registry,
    hosts: &HostList,
    extra: &[&str],
    probe: bool,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let encoder = TextEncoder::new();
    let encode = |mf: &prometheus::proto::MetricFamily, mut out: &mut dyn std::io::Write| {
        encoder
            .encode(std::slice::from_ref(mf), &mut out)
            .map_err(|e| match e {
                prometheus::Error::Io(io) => io,
                other => std::io::Error::other(MetricsError::Prometheus(other)),
            })
    };
    let mut families = HostFamily::ALL
        .into_iter()
        .zip(host_series(hosts, extra)?)
        .peekable();
    for mf in reg.gather() {
        while let Some((f, series)) = families.next_if(|(f, _)| f.name() < mf.name()) {
            f.write(series, extra, probe, out)?;
        }
        encode(&mf, out)?;
    }
    for (f, series) in families {
        f.write(series, extra, probe, out)?;
    }
    Ok(())
}

/// [`write_page`] into a string.
fn page_string(
    reg: &Registry,
    hosts: &HostList,
    extra: &[&str],
    probe: bool,
) -> Result<String, MetricsError> {
    let mut buf = Vec::new();
    write_page(reg, hosts, extra, probe, &mut buf)
        .map_err(|e| MetricsError::Prometheus(prometheus::Error::Io(e)))?;
    // Written as UTF-8: no second copy of the page.
    Ok(String::from_utf8(buf)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// Renders the metrics of one sweep report (the sweep page).
pub fn render(report: &Report, opts: &MetricsOptions) -> Result<String, MetricsError> {
    let reg = sweep_registry(report, opts)?;
    page_string(&reg, &report.hosts, &extra_labels(opts), false)
}

/// The allow-listed inventory labels, as label names.
fn extra_labels(opts: &MetricsOptions) -> Vec<&str> {
    opts.label_allowlist.iter().map(String::as_str).collect()
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
    write_page(&reg, &report.hosts, &extra_labels(opts), false, &mut out)
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
    let labels_of = |h: &HostReport| -> Vec<String> {
        host_labels(h, &extra)
            .into_iter()
            .map(str::to_string)
            .collect()
    };

    let hosts_names = with(&["outcome"]);
    let hosts = GaugeVec::new(
        Opts::new("fleetsweep_hosts", "Hosts of the last sweep by outcome (scanned, unreachable, auth_failed, host_key_rejected, timed_out, probe_failed, interrupted)."),
        &hosts_names.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let findings_names = with(&["vendor", "product", "rule", "policy", "status"]);
    let findings = GaugeVec::new(
        Opts::new(
            "fleetsweep_findings",
            "Findings of the last sweep by vendor, product, catalog rule, policy (ban fails a sweep, watch only reports) and remediation status.",
        ),
        &findings_names
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    )?;
    let incomplete_names = with(&[]);
    let incomplete = GaugeVec::new(
        Opts::new(
            "fleetsweep_hosts_incomplete",
            "Hosts of the last sweep that were scanned but not every probe section was read (counted apart from clean: scanned = clean + affected + incomplete).",
        ),
        &incomplete_names.iter().map(String::as_str).collect::<Vec<_>>(),
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
        &incomplete,
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
        hl.extend(labels_of(&h));
        hosts
            .with_label_values(&hl.iter().map(String::as_str).collect::<Vec<_>>())
            .inc();
        if h.is_incomplete() && !h.is_affected() {
            incomplete
                .with_label_values(&labels_of(&h).iter().map(String::as_str).collect::<Vec<_>>())
                .inc();
        }
        if h.outcome == Outcome::Scanned {
            duration
                .with_label_values::<&str>(&[])
                .observe(h.duration_seconds);
        }
        for f in &h.findings {
            let mut k = vec![
                f.vendor.clone(),
                f.product.clone(),
                f.rule.clone(),
                policy_str(f.policy).to_string(),
                status_str(f.status).to_string(),
            ];
            k.extend(labels_of(&h));
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

/// A registry's page alone.
fn encode(reg: &Registry) -> Result<String, MetricsError> {
    page_string(reg, &HostList::new(), &[], false)
}

/// Renders the answer to one `/probe?target=HOST`: a report of that one
/// host, in a registry of its own, so series of earlier probes never leak in.
///
/// `fleetsweep_probe_success` is 1 when the host could be scanned, findings or
/// not (as blackbox's probe_success says the check ran); findings show in
/// `fleetsweep_probe_findings` and `fleetsweep_host_finding`, with the same
/// labels (allow-listed inventory labels included) as on the sweep page.
pub fn render_probe(
    report: &Report,
    duration_seconds: f64,
    opts: &MetricsOptions,
) -> Result<String, MetricsError> {
    check_labels(&opts.label_allowlist)?;
    let extra: Vec<&str> = opts.label_allowlist.iter().map(String::as_str).collect();
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
    reg.register(Box::new(success.clone()))?;
    reg.register(Box::new(duration.clone()))?;
    reg.register(Box::new(count.clone()))?;
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
        n += h.findings.len();
    }
    count.set(n as f64);
    page_string(&reg, &report.hosts, &extra, true)
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
    /// 1 unless the last reload (SIGHUP) was refused, as Prometheus's own
    /// `prometheus_config_last_reload_successful`.
    pub config_reload_successful: IntGauge,
    /// When the configuration was last loaded successfully (start or reload), Unix time.
    pub config_reload_timestamp: Gauge,
    /// SIEM events delivered, by output (`syslog`, `webhook`).
    pub siem_events: IntCounterVec,
    /// SIEM deliveries that failed after every retry, by output.
    pub siem_failures: IntCounterVec,
    /// When a sweep's events were last delivered whole, by output (Unix time).
    pub siem_last_success: GaugeVec,
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
        let config_reload_successful = IntGauge::with_opts(Opts::new(
            "fleetsweep_config_last_reload_successful",
            "1 unless the last configuration reload (SIGHUP) was refused; the previous configuration then stays in use.",
        ))?;
        let config_reload_timestamp = Gauge::with_opts(Opts::new(
            "fleetsweep_config_last_reload_success_timestamp_seconds",
            "Unix time the configuration (inventory, catalog, exceptions) was last loaded successfully.",
        ))?;
        config_reload_successful.set(1);
        config_reload_timestamp.set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
        registry.register(Box::new(next_sweep.clone()))?;
        registry.register(Box::new(config_reload_successful.clone()))?;
        registry.register(Box::new(config_reload_timestamp.clone()))?;
        // process_cpu_seconds_total, process_resident_memory_bytes, open fds, ...
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        // Both results exist from the start, so rate() and alerts see a series.
        for r in ["complete", "interrupted"] {
            sweeps.with_label_values(&[r]);
        }
        let siem_events = IntCounterVec::new(
            Opts::new(
                "fleetsweep_siem_events_sent_total",
                "SIEM events delivered by fleetsweep serve, by output (syslog, webhook).",
            ),
            &["output"],
        )?;
        let siem_failures = IntCounterVec::new(
            Opts::new(
                "fleetsweep_siem_delivery_failures_total",
                "Sweeps whose events could not be delivered to a SIEM output within --siem-deadline, by output.",
            ),
            &["output"],
        )?;
        let siem_last_success = GaugeVec::new(
            Opts::new(
                "fleetsweep_siem_last_success_timestamp_seconds",
                "Unix time a sweep's events were last delivered whole to a SIEM output, by output (0 before the first).",
            ),
            &["output"],
        )?;
        registry.register(Box::new(siem_events.clone()))?;
        registry.register(Box::new(siem_failures.clone()))?;
        registry.register(Box::new(siem_last_success.clone()))?;
        Ok(DaemonMetrics {
            registry,
            scrape_requests,
            sweeps,
            sweep_in_progress,
            probes_in_flight,
            next_sweep,
            config_reload_successful,
            config_reload_timestamp,
            siem_events,
            siem_failures,
            siem_last_success,
        })
    }

    /// Gives each configured SIEM output its series at 0, so rate() and
    /// alerts see them before the first delivery.
    pub fn siem_outputs(&self, outputs: &[&str]) {
        for o in outputs {
            self.siem_events.with_label_values(&[o]);
            self.siem_failures.with_label_values(&[o]);
            self.siem_last_success.with_label_values(&[o]);
        }
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
                labels: Default::default(),
                outcome,
                error: None,
                os: None,
                duration_seconds: 0.5,
                warnings: vec![],
                incomplete: vec![],
                findings: vec![],
                scanned_by: None,
            }]
            .into(),
        }
    }

    #[test]
    fn probe_pages() {
        let ok = render_probe(&report(Outcome::Scanned), 0.25, &MetricsOptions::default()).unwrap();
        assert!(ok.contains("\nfleetsweep_probe_success 1\n"), "{ok}");
        assert!(
            ok.contains("\nfleetsweep_probe_duration_seconds 0.25\n"),
            "{ok}"
        );
        assert!(ok.contains("\nfleetsweep_probe_findings 0\n"), "{ok}");
        assert!(!ok.contains("fleetsweep_host_scan_failure{"), "{ok}");
        let failed =
            render_probe(&report(Outcome::TimedOut), 1.5, &MetricsOptions::default()).unwrap();
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
        empty.hosts.to_mut().clear();
        assert!(render_probe(&empty, 0.0, &MetricsOptions::default())
            .unwrap()
            .contains("\nfleetsweep_probe_success 0\n"));
    }

    #[test]
    fn incomplete_hosts_are_counted_apart_and_named_per_section() {
        let mut r = report(Outcome::Scanned);
        r.hosts.to_mut()[0].incomplete = vec!["os-release: garbage".into(), "paths: cut".into()];
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
        let probe = render_probe(&r, 0.1, &MetricsOptions::default()).unwrap();
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

    fn finding(rule: &str, product: &str, policy: Policy, status: Status) -> Finding {
        Finding {
            rule: rule.into(),
            vendor: "Vendor".into(),
            product: product.into(),
            policy,
            state: FindingState::Installed,
            status,
            version: None,
            first_seen: "2026-11-01T06:00:00Z".parse().unwrap(),
            last_seen: None,
            due: None,
            remediated_at: None,
            last_verified: None,
            exception: None,
            signatures: None,
            effective: None,
            deadline: None,
            evidence: vec![],
            containers: Vec::new(),
            remediation: None,
        }
    }

    /// Two hosts of two teams: web-1 (site fra1, owner web) with a banned and
    /// a watched product, db-1 (site ams1, no owner) unreachable, and a third
    /// without labels that was read incompletely.
    fn routed() -> Report {
        let mut r = report(Outcome::Scanned);
        let mut web = r.hosts.to_mut()[0].clone();
        web.name = "web-1".into();
        web.labels = crate::Labels::from_iter([
            ("site".into(), "fra1".into()),
            ("owner".into(), "web".into()),
            ("scenario".into(), "not allow-listed".into()),
        ]);
        web.findings = vec![
            finding("kaspersky/kesl", "KESL", Policy::Ban, Status::Overdue),
            finding("pango/ultraav", "UltraAV", Policy::Watch, Status::Open),
        ];
        let mut db = r.hosts.to_mut()[0].clone();
        db.name = "db-1".into();
        db.outcome = Outcome::Unreachable;
        db.labels = crate::Labels::from_iter([("site".into(), "ams1".into())]);
        let mut odd = r.hosts.to_mut()[0].clone();
        odd.name = "odd-1".into();
        odd.incomplete = vec!["dpkg: garbage".into()];
        r.hosts = vec![web, db, odd].into();
        r.normalize();
        r
    }

    fn lines_of<'a>(page: &'a str, metric: &str) -> Vec<&'a str> {
        let prefix = format!("{metric}{{");
        page.lines().filter(|l| l.starts_with(&prefix)).collect()
    }

    fn allow(labels: &[&str]) -> MetricsOptions {
        MetricsOptions {
            label_allowlist: labels.iter().map(|l| l.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn per_host_series_carry_policy_identity_and_the_allow_listed_labels() {
        let page = render(&routed(), &allow(&["site", "owner"])).unwrap();
        assert_eq!(
            lines_of(&page, "fleetsweep_host_finding"),
            [
                "fleetsweep_host_finding{host=\"web-1\",owner=\"web\",policy=\"ban\",product=\"KESL\",rule=\"kaspersky/kesl\",site=\"fra1\",status=\"overdue\",vendor=\"Vendor\"} 1",
                "fleetsweep_host_finding{host=\"web-1\",owner=\"web\",policy=\"watch\",product=\"UltraAV\",rule=\"pango/ultraav\",site=\"fra1\",status=\"open\",vendor=\"Vendor\"} 1",
            ],
            "{page}"
        );
        // A host without `owner` has none (an empty value is no label).
        assert_eq!(
            lines_of(&page, "fleetsweep_host_scan_failure"),
            ["fleetsweep_host_scan_failure{host=\"db-1\",outcome=\"unreachable\",owner=\"\",site=\"ams1\"} 1"],
            "{page}"
        );
        assert_eq!(
            lines_of(&page, "fleetsweep_host_scan_incomplete"),
            ["fleetsweep_host_scan_incomplete{host=\"odd-1\",owner=\"\",section=\"dpkg\",site=\"\"} 1"],
            "{page}"
        );
        // The fleet series name the same rule and product, so they join.
        assert_eq!(
            lines_of(&page, "fleetsweep_findings"),
            [
                "fleetsweep_findings{owner=\"web\",policy=\"ban\",product=\"KESL\",rule=\"kaspersky/kesl\",site=\"fra1\",status=\"overdue\",vendor=\"Vendor\"} 1",
                "fleetsweep_findings{owner=\"web\",policy=\"watch\",product=\"UltraAV\",rule=\"pango/ultraav\",site=\"fra1\",status=\"open\",vendor=\"Vendor\"} 1",
            ],
            "{page}"
        );
        assert!(!page.contains("scenario"), "not allow-listed: {page}");

        // Without an allow-list: the same series, no inventory label.
        let bare = render(&routed(), &MetricsOptions::default()).unwrap();
        assert!(
            bare.contains("fleetsweep_host_finding{host=\"web-1\",policy=\"watch\",product=\"UltraAV\",rule=\"pango/ultraav\",status=\"open\",vendor=\"Vendor\"} 1\n"),
            "{bare}"
        );
        assert!(
            bare.contains(
                "fleetsweep_host_scan_failure{host=\"db-1\",outcome=\"unreachable\"} 1\n"
            ),
            "{bare}"
        );
        assert!(!bare.contains("site="), "{bare}");
    }

    #[test]
    fn the_probe_page_labels_per_host_series_as_the_sweep_page_does() {
        let opts = allow(&["site", "owner"]);
        let sweep = render(&routed(), &opts).unwrap();
        let probe = render_probe(&routed(), 0.1, &opts).unwrap();
        for metric in [
            "fleetsweep_host_finding",
            "fleetsweep_host_scan_failure",
            "fleetsweep_host_scan_incomplete",
        ] {
            let want = lines_of(&sweep, metric);
            assert!(!want.is_empty(), "{metric}: {sweep}");
            assert_eq!(lines_of(&probe, metric), want, "{metric}");
        }
        assert!(probe.contains("\nfleetsweep_probe_findings 2\n"), "{probe}");
    }

    #[test]
    fn allow_lists_are_checked_before_any_page_is_built() {
        for (labels, why) in [
            (&["site", "site"][..], "allow-listed twice"),
            (&["owner", "section"][..], "used by fleetsweep"),
            (&["severity"][..], "used by fleetsweep"),
            (&["site-code"][..], "cannot be a metric label"),
        ] {
            let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
            let e = check_labels(&labels).unwrap_err().to_string();
            assert!(e.contains(why), "{labels:?}: {e}");
            let opts = MetricsOptions {
                label_allowlist: labels.clone(),
                ..Default::default()
            };
            assert!(render(&routed(), &opts).is_err(), "{labels:?}");
            assert!(render_probe(&routed(), 0.0, &opts).is_err(), "{labels:?}");
        }
        check_labels(&["site".into(), "owner".into(), "business_unit".into()]).unwrap();
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

    /// The per-host series as they were built before they were written
    /// straight from the report: gauges in the registry, gathered and
    /// encoded. The page must not change by a byte.
    fn through_the_registry(report: &Report, opts: &MetricsOptions, probe: bool) -> String {
        let extra: Vec<&str> = opts.label_allowlist.iter().map(String::as_str).collect();
        let reg = if probe {
            Registry::new()
        } else {
            sweep_registry(report, opts).unwrap()
        };
        let gauge = |f: HostFamily| {
            let g = GaugeVec::new(
                Opts::new(f.name(), f.help(probe)),
                &names(f.own_labels(), &extra),
            )
            .unwrap();
            reg.register(Box::new(g.clone())).unwrap();
            g
        };
        let (finding, failure, incomplete) = (
            gauge(HostFamily::Finding),
            gauge(HostFamily::Failure),
            gauge(HostFamily::Incomplete),
        );
        for h in &report.hosts {
            let inv = host_labels(&h, &extra);
            let set = |g: &GaugeVec, own: &[&str]| {
                let v: Vec<&str> = own.iter().chain(&inv).copied().collect();
                g.with_label_values(&v).set(1.0);
            };
            if h.outcome != Outcome::Scanned {
                set(&failure, &[&h.name, h.outcome.as_str()]);
            }
            if h.is_incomplete() {
                for section in sections_of(&h) {
                    set(&incomplete, &[&h.name, section]);
                }
            }
            for f in &h.findings {
                set(
                    &finding,
                    &[
                        &h.name,
                        &f.vendor,
                        &f.product,
                        &f.rule,
                        policy_str(f.policy),
                        status_str(f.status),
                    ],
                );
            }
        }
        encode(&reg).unwrap()
    }

    /// Hosts of every kind the per-host series cover, in no order: findings
    /// (some twice over, some of hosts that also failed a section), every
    /// failed outcome, incomplete sections (one twice), labels present,
    /// empty and missing, and text that needs escaping.
    fn mixed(n: usize) -> Report {
        let mut r = report(Outcome::Scanned);
        let base = r.hosts.to_mut()[0].clone();
        r.hosts.to_mut().clear();
        let hostile = ["quote\"d", "back\\slash", "new\nline", "ünï", "", "a,b=c}"];
        for i in 0..n {
            let mut h = base.clone();
            // Not in name order, and names that sort differently by byte.
            h.name = format!("{}-{}", ["web", "Db", "edge", "web"][i % 4], (i * 7919) % n).into();
            if i % 11 == 0 {
                h.name = format!("{}{i}", hostile[i % hostile.len()]).into();
            }
            let mut labels = vec![("site".to_string(), ["fra1", "ams1", ""][i % 3].to_string())];
            if i % 5 != 0 {
                labels.push(("owner".into(), hostile[i % hostile.len()].into()));
            }
            labels.push(("team".into(), format!("t{}", i % 4)));
            h.labels = crate::Labels::from_iter(labels);
            h.outcome = match i % 9 {
                1 => Outcome::Unreachable,
                2 => Outcome::TimedOut,
                3 => Outcome::AuthFailed,
                _ => Outcome::Scanned,
            };
            if i % 3 == 0 {
                h.findings = vec![
                    finding("kaspersky/kesl", "KESL", Policy::Ban, Status::Overdue),
                    finding("pango/ultraav", "UltraAV", Policy::Watch, Status::Open),
                ];
                if i % 6 == 0 {
                    // The same finding twice: one series.
                    h.findings.push(finding(
                        "kaspersky/kesl",
                        "KESL",
                        Policy::Ban,
                        Status::Overdue,
                    ));
                }
            }
            if i % 4 == 0 {
                h.incomplete = vec![
                    "dpkg: garbage".into(),
                    "rpm: cut at 64 MiB".into(),
                    "dpkg: again".into(),
                    hostile[i % hostile.len()].into(),
                ];
            }
            r.hosts.to_mut().push(h);
        }
        r
    }

    /// A series holds its label values as one text: values that run
    /// together alike ("web" + "1x" and "web1" + "x", with text a host or an
    /// inventory chose, multibyte and escapes included) are still two series,
    /// in the registry's order. (The `prometheus` registry itself merges
    /// these two: it tells series apart by an FNV hash of their values run
    /// together, so it is no oracle here.)
    #[test]
    fn label_values_that_run_together_alike_stay_two_series() {
        let mut r = report(Outcome::Scanned);
        let base = r.hosts.to_mut()[0].clone();
        let host = |name: &str, section: &str, site: &str| {
            let mut h = base.clone();
            h.name = name.into();
            h.findings.clear();
            h.incomplete = vec![format!("{section}: cut")];
            h.labels = crate::Labels::from_iter([("site".to_string(), site.to_string())]);
            h
        };
        *r.hosts.to_mut() = vec![
            host("web1", "x", "ü\"\n"),
            host("web", "1x", "ü\"\n"),
            host("web", "1x", "ü\""),
            host("we", "b1x", "\n"),
        ];
        r.normalize();
        let opts = allow(&["site"]);
        let page = render(&r, &opts).unwrap();
        let incomplete: Vec<&str> = page
            .lines()
            .filter(|l| l.starts_with("fleetsweep_host_scan_incomplete{"))
            .collect();
        assert_eq!(
            incomplete,
            [
                r#"fleetsweep_host_scan_incomplete{host="we",section="b1x",site="\n"} 1"#,
                r#"fleetsweep_host_scan_incomplete{host="web",section="1x",site="ü\""} 1"#,
                r#"fleetsweep_host_scan_incomplete{host="web",section="1x",site="ü\"\n"} 1"#,
                r#"fleetsweep_host_scan_incomplete{host="web1",section="x",site="ü\"\n"} 1"#,
            ],
            "{page}"
        );
    }

    #[test]
    fn per_host_series_are_written_as_the_registry_wrote_them() {
        for n in [0, 1, 3, 40, 500] {
            let r = mixed(n);
            for labels in [&[][..], &["site"][..], &["team", "owner", "site"][..]] {
                let opts = allow(labels);
                let want = through_the_registry(&r, &opts, false);
                let page = render(&r, &opts).unwrap();
                assert_eq!(page, want, "{n} hosts, labels {labels:?}");
                let mut file = Vec::new();
                write(&r, &opts, &mut file).unwrap();
                assert_eq!(String::from_utf8(file).unwrap(), want);
                // The probe page: the same per-host families, after its own.
                let probe = render_probe(&r, 0.5, &opts).unwrap();
                let want_probe = through_the_registry(&r, &opts, true);
                assert!(probe.contains("\nfleetsweep_probe_success "), "{probe}");
                // The probe families' values differ with the report; the
                // rest of the page is the registry's.
                let strip = |page: &str| -> String {
                    page.lines()
                        .filter(|l| !l.contains("fleetsweep_probe_"))
                        .map(|l| format!("{l}\n"))
                        .collect()
                };
                assert_eq!(
                    strip(&probe),
                    strip(&want_probe),
                    "probe, {n} hosts, labels {labels:?}"
                );
            }
        }
        // Something to compare: every family has series at 500 hosts.
        let page = render(&mixed(500), &allow(&["site"])).unwrap();
        for f in HostFamily::ALL {
            assert!(page.contains(&format!("\n{}{{", f.name())), "{}", f.name());
        }
        assert!(page.contains(r#"host="quote\"d0""#), "escaped quote");
        assert!(page.contains(r#"section="new\nline""#), "escaped newline");
    }

    #[test]
    fn a_failing_writer_is_an_error_not_a_short_page() {
        struct Full(usize);
        impl std::io::Write for Full {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if self.0 < buf.len() {
                    return Err(std::io::Error::new(std::io::ErrorKind::StorageFull, "full"));
                }
                self.0 -= buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let r = mixed(200);
        let whole = render(&r, &MetricsOptions::default()).unwrap().len();
        for room in [0, 10, whole / 2, whole - 1] {
            let e = write(&r, &MetricsOptions::default(), &mut Full(room)).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "room {room}");
        }
        write(&r, &MetricsOptions::default(), &mut Full(whole)).unwrap();
    }
}
