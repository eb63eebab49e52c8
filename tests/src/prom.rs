//! Real Prometheus servers for the tests: `prometheus`, `prometheus-node-exporter`
//! and `prometheus-pushgateway` (the Debian binaries), each on a free loopback
//! port in its own temp dir, killed when dropped.
//!
//! The tests check what users deploy (the scrape configs, alert rules and the
//! Grafana dashboard in `deploy/`) against the real servers, not against a
//! model of them: a query that Prometheus rejects, or that finds no series,
//! fails the test. A missing binary fails with the `apt-get install` line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

/// One series of a query result: its labels (with `__name__` when kept) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// What the query API answered: the result type and the samples; a matrix
/// contributes the last point of each series.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub result_type: String,
    pub samples: Vec<Sample>,
}

/// One scrape target as `/api/v1/targets` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Target {
    #[serde(rename = "scrapePool")]
    pub scrape_pool: String,
    #[serde(rename = "scrapeUrl")]
    pub scrape_url: String,
    pub health: String,
    #[serde(rename = "lastError", default)]
    pub last_error: String,
    pub labels: BTreeMap<String, String>,
    #[serde(rename = "discoveredLabels", default)]
    pub discovered_labels: BTreeMap<String, String>,
}

/// One pending or firing alert as `/api/v1/alerts` shows it.
#[derive(Debug, Clone, Deserialize)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub state: String,
    pub value: String,
}

impl Alert {
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// Finds `name` on `PATH` (or the usual sbin folders), or says which package installs it.
pub fn require_binary(name: &str, package: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from));
    for d in dirs {
        let p = d.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("`{name}` is not installed: run scripts/setup, or apt-get install -y {package}")
}

/// A free TCP port on 127.0.0.1: bind port 0, read it, let it go. The server
/// we start binds it right after; another process taking it in between is
/// possible but makes the start fail loudly, not wrongly.
fn free_addr() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a free loopback port")?;
    Ok(l.local_addr()?)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        // Prometheus explains a bad query in the body of a 400: keep it.
        .http_status_as_error(false)
        .build()
        .into()
}

/// A server process, its temp dir and its address; Drop kills it.
struct Server {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts `bin args...` (stdout/stderr to `server.log`) and waits until `ready_path` answers 200.
    fn start(
        name: &'static str,
        bin: &Path,
        args: &[String],
        addr: SocketAddr,
        dir: tempfile::TempDir,
        ready_path: &str,
    ) -> Result<Server> {
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let child = Command::new(bin)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut s = Server { child, addr, dir };
        let http = agent();
        let url = format!("http://{addr}{ready_path}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = s.child.try_wait() {
                bail!("{name} exited during start-up ({st}):\n{}", s.log());
            }
            if let Ok(r) = http.get(&url).call() {
                if r.status() == 200 {
                    return Ok(s);
                }
            }
            if Instant::now() > deadline {
                bail!("{name} did not answer on {url} within 20s:\n{}", s.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Prometheus (2.42 on Debian 12) scraping every second.
pub struct Prometheus {
    server: Server,
    http: ureq::Agent,
}

impl Prometheus {
    /// Starts Prometheus with `scrape_configs` (a YAML block sequence of scrape
    /// configs, written under `scrape_configs:` as it is) and `rule_files`.
    /// Scrapes and rule evaluations run every second so tests are quick.
    pub fn start(scrape_configs: &str, rule_files: &[PathBuf]) -> Result<Prometheus> {
        let bin = require_binary("prometheus", "prometheus")?;
        let dir = tempfile::Builder::new()
            .prefix("fleetsweep-prometheus.")
            .tempdir()?;
        let mut config = String::from(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
        );
        if !rule_files.is_empty() {
            config.push_str("rule_files:\n");
            for f in rule_files {
                let abs = std::fs::canonicalize(f)
                    .with_context(|| format!("rule file {}", f.display()))?;
                // JSON strings are YAML flow scalars: any path quotes safely.
                let _ = writeln!(config, "  - {}", Value::from(abs.display().to_string()));
            }
        }
        config.push_str("scrape_configs:\n");
        config.push_str(scrape_configs);
        config.push('\n');
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, &config)?;
        let addr = free_addr()?;
        let args = vec![
            format!("--config.file={}", config_path.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address={addr}"),
            "--web.enable-lifecycle".to_string(),
            "--log.level=warn".to_string(),
        ];
        let server = Server::start("prometheus", &bin, &args, addr, dir, "/-/ready")?;
        Ok(Prometheus {
            server,
            http: agent(),
        })
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        self.server.log()
    }

    /// GET `path` with `params` from the HTTP API; returns `data` of a
    /// `status: success` answer, or the error Prometheus gave.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        let mut req = self.http.get(format!("{}{path}", self.url()));
        for (k, v) in params {
            req = req.query(*k, *v);
        }
        let mut resp = req.call().with_context(|| format!("GET {path}"))?;
        let code = resp.status();
        let body = resp.body_mut().read_to_string()?;
        let v: Value = serde_json::from_str(&body)
            .with_context(|| format!("GET {path}: HTTP {code}, not JSON: {body}"))?;
        if v.get("status").and_then(Value::as_str) != Some("success") {
            bail!(
                "GET {path} {params:?}: HTTP {code}: {}: {}",
                v.get("errorType").and_then(Value::as_str).unwrap_or("?"),
                v.get("error").and_then(Value::as_str).unwrap_or(&body)
            );
        }
        Ok(v.get("data").cloned().unwrap_or(Value::Null))
    }

    /// Runs an instant query now.
    pub fn query_result(&self, promql: &str) -> Result<QueryResult> {
        let data = self.api("/api/v1/query", &[("query", promql)])?;
        parse_result(&data).with_context(|| format!("query `{promql}`"))
    }

    /// Runs an instant query now and returns its samples.
    pub fn query(&self, promql: &str) -> Result<Vec<Sample>> {
        Ok(self.query_result(promql)?.samples)
    }

    /// Polls `promql` until `ok` holds for its samples or `timeout` passes.
    pub fn wait_for(
        &self,
        promql: &str,
        ok: impl Fn(&[Sample]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Sample>> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.query(promql);
            if let Ok(s) = &last {
                if ok(s) {
                    return Ok(s.clone());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "`{promql}` did not reach the expected result within {timeout:?}; last: {last:?}\ntargets: {:?}",
                    self.targets()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The active scrape targets.
    pub fn targets(&self) -> Result<Vec<Target>> {
        let data = self.api("/api/v1/targets", &[("state", "active")])?;
        let active = data.get("activeTargets").cloned().unwrap_or(Value::Null);
        Ok(serde_json::from_value(active)?)
    }

    /// Pending and firing alerts.
    pub fn alerts(&self) -> Result<Vec<Alert>> {
        let data = self.api("/api/v1/alerts", &[])?;
        let alerts = data.get("alerts").cloned().unwrap_or(Value::Null);
        Ok(serde_json::from_value(alerts)?)
    }

    /// Values of label `name` on series matching `selector` (what Grafana's
    /// `label_values(selector, name)` lists).
    pub fn label_values(&self, name: &str, selector: &str) -> Result<Vec<String>> {
        let data = self.api(
            &format!("/api/v1/label/{name}/values"),
            &[("match[]", selector)],
        )?;
        Ok(serde_json::from_value(data)?)
    }
}

fn parse_value(pair: &Value) -> Result<f64> {
    let s = pair
        .get(1)
        .and_then(Value::as_str)
        .context("sample without a value")?;
    // Prometheus writes NaN and infinities as "NaN", "+Inf", "-Inf".
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse::<f64>().with_context(|| format!("bad value {s:?}")),
    }
}

fn parse_result(data: &Value) -> Result<QueryResult> {
    let result_type = data
        .get("resultType")
        .and_then(Value::as_str)
        .context("no resultType")?
        .to_string();
    let result = data.get("result").context("no result")?;
    let mut samples = Vec::new();
    match result_type.as_str() {
        "scalar" => samples.push(Sample {
            labels: BTreeMap::new(),
            value: parse_value(result)?,
        }),
        "vector" | "matrix" => {
            for s in result.as_array().context("result is not a list")? {
                let labels: BTreeMap<String, String> =
                    serde_json::from_value(s.get("metric").cloned().unwrap_or(Value::Null))?;
                let point = match s.get("value") {
                    Some(v) => v.clone(),
                    None => s
                        .get("values")
                        .and_then(Value::as_array)
                        .and_then(|v| v.last().cloned())
                        .context("series without points")?,
                };
                samples.push(Sample {
                    labels,
                    value: parse_value(&point)?,
                });
            }
        }
        other => bail!("unexpected result type {other}"),
    }
    Ok(QueryResult {
        result_type,
        samples,
    })
}

/// A real node_exporter serving only its textfile collector (every other
/// collector is off: the tests look at fleetsweep's series, not the machine's).
pub struct NodeExporter {
    server: Server,
    http: ureq::Agent,
}

impl NodeExporter {
    pub fn start(textfile_dir: &Path) -> Result<NodeExporter> {
        let bin = require_binary("prometheus-node-exporter", "prometheus-node-exporter")?;
        let dir = tempfile::Builder::new()
            .prefix("fleetsweep-node-exporter.")
            .tempdir()?;
        let addr = free_addr()?;
        let args = vec![
            "--collector.disable-defaults".to_string(),
            "--collector.textfile".to_string(),
            format!("--collector.textfile.directory={}", textfile_dir.display()),
            format!("--web.listen-address={addr}"),
            "--log.level=warn".to_string(),
        ];
        let server = Server::start("node_exporter", &bin, &args, addr, dir, "/metrics")?;
        Ok(NodeExporter {
            server,
            http: agent(),
        })
    }

    /// `127.0.0.1:PORT`, for a scrape config's targets.
    pub fn address(&self) -> String {
        self.server.addr.to_string()
    }

    /// What `/metrics` serves now.
    pub fn metrics_text(&self) -> Result<String> {
        get_text(&self.http, &format!("{}/metrics", self.server.url()))
    }
}

/// A real Pushgateway, as cron-run sweeps push to it.
pub struct Pushgateway {
    server: Server,
    http: ureq::Agent,
}

impl Pushgateway {
    pub fn start() -> Result<Pushgateway> {
        let bin = require_binary("prometheus-pushgateway", "prometheus-pushgateway")?;
        let dir = tempfile::Builder::new()
            .prefix("fleetsweep-pushgateway.")
            .tempdir()?;
        let addr = free_addr()?;
        let args = vec![
            format!("--web.listen-address={addr}"),
            "--log.level=warn".to_string(),
            // Tests wipe every group between cases (PUT /api/v1/admin/wipe).
            "--web.enable-admin-api".to_string(),
        ];
        let server = Server::start("pushgateway", &bin, &args, addr, dir, "/-/ready")?;
        Ok(Pushgateway {
            server,
            http: agent(),
        })
    }

    pub fn address(&self) -> String {
        self.server.addr.to_string()
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Replaces the group `job/<job>[/instance/<instance>]` with `body` (text
    /// format), as `curl -X PUT --data-binary @file` does.
    pub fn put(&self, job: &str, instance: Option<&str>, body: &str) -> Result<()> {
        let mut url = format!("{}/metrics/job/{job}", self.url());
        if let Some(i) = instance {
            let _ = write!(url, "/instance/{i}");
        }
        let mut resp = self
            .http
            .put(&url)
            .header("Content-Type", "text/plain; version=0.0.4")
            .send(body)
            .with_context(|| format!("PUT {url}"))?;
        let code = resp.status();
        if !code.is_success() {
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            bail!("PUT {url}: HTTP {code}: {text}");
        }
        Ok(())
    }

    /// What `/metrics` serves now (the pushed groups plus its own metrics).
    pub fn metrics_text(&self) -> Result<String> {
        get_text(&self.http, &format!("{}/metrics", self.url()))
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        self.server.log()
    }
}

fn get_text(http: &ureq::Agent, url: &str) -> Result<String> {
    let mut resp = http.get(url).call().with_context(|| format!("GET {url}"))?;
    let code = resp.status();
    let body = resp.body_mut().read_to_string()?;
    if !code.is_success() {
        bail!("GET {url}: HTTP {code}: {body}");
    }
    Ok(body)
}

/// Runs `promtool ARGS...` and returns (success, stdout + stderr).
pub fn promtool(args: &[&str], cwd: &Path) -> Result<(bool, String)> {
    let bin = require_binary("promtool", "prometheus")?;
    let out = Command::new(bin)
        .args(args)
        .current_dir(cwd)
        .output()
        .context("running promtool")?;
    Ok((
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

/// `promtool check metrics` on an exposition page; the error carries
/// promtool's complaint and the page.
pub fn promtool_check_metrics(page: &str) -> Result<()> {
    use std::io::Write as _;
    let bin = require_binary("promtool", "prometheus")?;
    let mut child = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("running promtool")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(page.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "promtool check metrics failed:\n{}{}\n{page}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
