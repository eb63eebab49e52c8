//! What `deploy/` ships for Prometheus and Grafana, checked against the real
//! servers: the rules with `promtool`, the scrape configs and the dashboard's
//! every query against a real Prometheus that scrapes a real `fleetsweep serve`
//! (its /metrics and, blackbox-style, its /probe), a real node_exporter and a
//! real Pushgateway, all serving sweeps of real sshd test hosts with a real
//! remediation history in the state store.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use fleetsweep_e2e::prom::{promtool, Alert, NodeExporter, Prometheus, Pushgateway, Sample};
use fleetsweep_e2e::{demo_hosts, e2e_dir, Fleet, FleetSpec};
use fleetsweep_e2e::{OutputWithin, RUN_LIMIT};
use serde::Deserialize;
use serde_json::Value;

/// The `fleetsweep` binary cargo built from this source for these tests (with the test hooks).
const FLEETSWEEP: &str = env!("CARGO_BIN_EXE_fleetsweep");

/// The deploy files' folder.
fn deploy() -> PathBuf {
    e2e_dir().join("../deploy")
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Names of the alerts in the rule file.
fn alert_names(rules: &Value) -> BTreeSet<String> {
    list(rules, "groups")
        .iter()
        .flat_map(|g| list(g, "rules"))
        .filter_map(|r| r.get("alert").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

#[test]
fn rules_pass_promtool_and_every_alert_is_tested_firing_and_not() {
    let dir = deploy().join("prometheus");
    let (ok, out) = promtool(&["check", "config", "prometheus.yml"], &dir).unwrap();
    assert!(ok, "promtool check config failed:\n{out}");
    let (ok, out) = promtool(&["check", "rules", "rules/fleetsweep.rules.yml"], &dir).unwrap();
    assert!(ok, "promtool check rules failed:\n{out}");
    let (ok, out) = promtool(
        &["test", "rules", "fleetsweep.rules.test.yml"],
        &dir.join("rules"),
    )
    .unwrap();
    assert!(ok, "promtool test rules failed:\n{out}");
    assert!(out.contains("SUCCESS"), "{out}");

    let alerts = alert_names(&yaml(&dir.join("rules/fleetsweep.rules.yml")));
    for a in [
        "BannedSoftwareFound",
        "FindingOverdue",
        "FindingReinstalled",
        "SweepStale",
        "CoverageDropped",
        "SweepIncomplete",
        "HostsScannedIncompletely",
    ] {
        assert!(alerts.contains(a), "rule file lacks alert {a}: {alerts:?}");
    }
    let tests = yaml(&dir.join("rules/fleetsweep.rules.test.yml"));
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for case in list(&tests, "tests")
        .iter()
        .flat_map(|t| list(t, "alert_rule_test"))
    {
        let name = case["alertname"].as_str().unwrap().to_string();
        assert!(alerts.contains(&name), "test of unknown alert {name}");
        if list(case, "exp_alerts").is_empty() {
            quiet.insert(name);
        } else {
            firing.insert(name);
        }
    }
    let untested_firing: Vec<_> = alerts.difference(&firing).collect();
    let untested_quiet: Vec<_> = alerts.difference(&quiet).collect();
    assert!(
        untested_firing.is_empty() && untested_quiet.is_empty(),
        "alerts without a firing case: {untested_firing:?}; without a not-firing case: {untested_quiet:?}"
    );
}

/// The alert rules' `runbook_url`s: in the file, `docs/alerts/NAME.md` (a
/// path in this repository), made absolute at install time by the `sed` of
/// docs/prometheus-grafana.md.
const RUNBOOK_SED: &str = "s|runbook_url: docs/alerts/|runbook_url: https://git.example.internal/fleetsweep/blob/main/docs/alerts/|";

#[test]
fn every_alert_links_a_runbook_that_says_what_to_do() {
    let dir = deploy().join("prometheus");
    let rules = yaml(&dir.join("rules/fleetsweep.rules.yml"));
    let repo = e2e_dir().join("..");
    let mut n = 0;
    for rule in list(&rules, "groups").iter().flat_map(|g| list(g, "rules")) {
        let Some(name) = rule.get("alert").and_then(Value::as_str) else {
            continue;
        };
        n += 1;
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no runbook_url"));
        assert_eq!(url, format!("docs/alerts/{name}.md"), "{name}");
        let page = std::fs::read_to_string(repo.join(url))
            .unwrap_or_else(|e| panic!("{name}: runbook {url}: {e}"));
        assert!(page.starts_with(&format!("# {name}\n")), "{url}");
        for section in [
            "## What it means",
            "## How to check",
            "## How to fix",
            "## How to silence properly",
        ] {
            assert!(page.contains(section), "{url} lacks `{section}`");
        }
        assert_links_resolve(&repo.join("docs/alerts"), url, &page);
    }
    assert!(n >= 7, "{n} alerts");
    let index = "docs/alerts/README.md";
    let text = std::fs::read_to_string(repo.join(index)).unwrap();
    assert_links_resolve(&repo.join("docs/alerts"), index, &text);

    // The documented install step gives absolute links and valid rules.
    let docs = std::fs::read_to_string(repo.join("docs/prometheus-grafana.md")).unwrap();
    assert!(
        docs.contains(RUNBOOK_SED),
        "docs/prometheus-grafana.md lacks `{RUNBOOK_SED}`"
    );
    let tmp = tempfile::tempdir().unwrap();
    let installed = tmp.path().join("fleetsweep.rules.yml");
    let out = Command::new("sed")
        .arg(RUNBOOK_SED)
        .arg(dir.join("rules/fleetsweep.rules.yml"))
        .output()
        .expect("running sed");
    assert!(out.status.success());
    std::fs::write(&installed, &out.stdout).unwrap();
    let (ok, out) = promtool(&["check", "rules", "fleetsweep.rules.yml"], tmp.path()).unwrap();
    assert!(ok, "promtool check rules after the sed:\n{out}");
    let urls: Vec<String> = list(&yaml(&installed), "groups")
        .iter()
        .flat_map(|g| list(g, "rules"))
        .filter_map(|r| r["annotations"]["runbook_url"].as_str().map(str::to_string))
        .collect();
    assert_eq!(urls.len(), n);
    for u in urls {
        assert!(
            u.starts_with("https://git.example.internal/fleetsweep/blob/main/docs/alerts/"),
            "{u}"
        );
    }
}

/// The Alertmanager example routes every alert as docs/prometheus-grafana.md
/// says: checked and exercised with the real `amtool`.
#[test]
fn alertmanager_example_routes_alerts_by_owner_site_and_policy() {
    let file = deploy().join("prometheus/alertmanager.yml");
    let body = std::fs::read_to_string(&file).unwrap();
    let docs = std::fs::read_to_string(e2e_dir().join("../docs/prometheus-grafana.md")).unwrap();
    assert!(
        docs.contains(&format!("```yaml\n{body}```")),
        "docs/prometheus-grafana.md must show deploy/prometheus/alertmanager.yml as it is"
    );
    let amtool = fleetsweep_e2e::prom::require_binary("amtool", "prometheus-alertmanager").unwrap();
    let out = Command::new(&amtool)
        .arg("check-config")
        .arg(&file)
        .output()
        .expect("running amtool");
    assert!(
        out.status.success(),
        "amtool check-config:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let overdue = "alertname=FindingOverdue";
    for (labels, receivers) in [
        (
            &[
                overdue,
                "policy=ban",
                "owner=payments",
                "site=fra1",
                "host=pay-01",
            ][..],
            "payments-oncall,owners-by-label,fra1-ops,security-team",
        ),
        (
            &[
                "alertname=FindingReinstalled",
                "policy=ban",
                "owner=web",
                "site=ams1",
            ],
            "owners-by-label,security-team",
        ),
        (&[overdue, "policy=ban", "site=ams1"], "security-team"),
        (
            &[
                "alertname=BannedSoftwareFound",
                "policy=ban",
                "product=KESL",
            ],
            "security-team",
        ),
        (&["alertname=SweepStale", "job=fleetsweep"], "security-team"),
        (
            &[overdue, "policy=ban", "site=fra1"],
            "fra1-ops,security-team",
        ),
    ] {
        let out = Command::new(&amtool)
            .args(["config", "routes", "test", "--config.file"])
            .arg(&file)
            .args(labels)
            .output()
            .expect("running amtool");
        let got = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{labels:?}: {got}");
        assert_eq!(got.trim(), receivers, "{labels:?}");
    }
}

/// Every relative Markdown link `](path)` of `page` (in `dir`) names a file
/// that exists.
fn assert_links_resolve(dir: &Path, name: &str, page: &str) {
    for (i, _) in page.match_indices("](") {
        let rest = &page[i + 2..];
        let Some(end) = rest.find(')') else { continue };
        let target = &rest[..end];
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let file = target.split('#').next().unwrap();
        assert!(
            dir.join(file).exists(),
            "{name}: link `{target}` points at nothing"
        );
    }
}

/// Every `targets[].expr` of the dashboard with the title of its panel.
fn dashboard_queries(dash: &Value) -> Vec<(String, String)> {
    fn walk(panels: &[Value], out: &mut Vec<(String, String)>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or("").to_string();
            for t in list(p, "targets") {
                if let Some(e) = t.get("expr").and_then(Value::as_str) {
                    out.push((title.clone(), e.to_string()));
                }
            }
            walk(list(p, "panels"), out);
        }
    }
    let mut out = Vec::new();
    walk(list(dash, "panels"), &mut out);
    out
}

fn dashboard() -> Value {
    let path = deploy().join("grafana/fleetsweep.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Grafana's template variables as a dashboard in this Prometheus would
/// resolve them.
fn substitute(expr: &str, vars: &[(&str, &str)]) -> String {
    let mut e = expr.to_string();
    for (k, v) in vars {
        e = e
            .replace(&format!("${{{k}}}"), v)
            .replace(&format!("[[{k}]]"), v);
    }
    // Longest names first, so `$__interval_ms` is not read as `$__interval`.
    let mut names: Vec<&(&str, &str)> = vars.iter().collect();
    names.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in names {
        e = e.replace(&format!("${k}"), v);
    }
    e
}

#[test]
fn dashboard_is_well_formed() {
    let d = dashboard();
    assert_eq!(d["uid"], "fleetsweep");
    assert!(d["schemaVersion"].as_u64().unwrap() >= 36);
    let vars: BTreeMap<&str, &Value> = list(&d["templating"], "list")
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v))
        .collect();
    assert_eq!(vars["DS_PROMETHEUS"]["type"], "datasource");
    assert_eq!(vars["DS_PROMETHEUS"]["query"], "prometheus");
    assert!(
        vars.contains_key("job") && vars.contains_key("site") && vars.contains_key("scanner"),
        "{vars:?}"
    );
    assert_eq!(vars["scanner"]["includeAll"], true);
    assert_eq!(vars["scanner"]["allValue"], ".*");
    fn walk(panels: &[Value], ids: &mut BTreeSet<u64>) {
        for p in panels {
            let title = p["title"].as_str().unwrap();
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "duplicate id at {title}"
            );
            let g = &p["gridPos"];
            assert!(
                g["x"].as_u64().unwrap() + g["w"].as_u64().unwrap() <= 24,
                "{title} is wider than the grid"
            );
            if p["type"] != "row" {
                assert_eq!(p["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
                assert!(!list(p, "targets").is_empty(), "{title} has no query");
                for t in list(p, "targets") {
                    assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{title}");
                }
            }
            walk(list(p, "panels"), ids);
        }
    }
    walk(list(&d, "panels"), &mut BTreeSet::new());

    // Filters: every query that selects findings follows Site and Product,
    // every query on host series follows Site, the remediation counter (no
    // inventory labels) follows Product; the overdue and reinstalled panels
    // leave watched products out.
    assert_eq!(vars["product"]["includeAll"], true);
    assert_eq!(vars["product"]["allValue"], ".*");
    assert_eq!(vars["site"]["allValue"], ".*");
    let queries = dashboard_queries(&d);
    let mut filtered = 0;
    for (title, expr) in &queries {
        let selects = |metric: &str| expr.contains(&format!("{metric}{{"));
        let findings = selects("fleetsweep_findings")
            || selects("fleetsweep_host_finding")
            || selects("fleetsweep:host_finding:max")
            || selects("fleetsweep:findings_unremediated:count");
        if findings {
            filtered += 1;
            assert!(
                expr.contains("site=~\"$site\"") && expr.contains("product=~\"$product\""),
                "{title}: `{expr}` must select site=~\"$site\" and product=~\"$product\""
            );
        }
        for host_series in [
            "fleetsweep_hosts",
            "fleetsweep_host_scan_failure",
            "fleetsweep:host_scan_failure:max",
            "fleetsweep_host_scan_incomplete",
        ] {
            if selects(host_series) {
                assert!(expr.contains("site=~\"$site\""), "{title}: `{expr}`");
            }
        }
        // Many scanners: findings and host tables come from the recording
        // rules that count each host once; the per-scanner series follow
        // the Scanner variable.
        assert!(
            !selects("fleetsweep_findings") && !selects("fleetsweep_host_finding"),
            "{title}: `{expr}` would count a host reported by two scanners twice"
        );
        for per_scanner in [
            "fleetsweep_hosts",
            "fleetsweep_last_sweep_timestamp_seconds",
            "fleetsweep_last_sweep_success",
            "fleetsweep_build_info",
        ] {
            if selects(per_scanner) {
                assert!(expr.contains("instance=~\"$scanner\""), "{title}: `{expr}`");
            }
        }
        if selects("fleetsweep_remediations_total") {
            assert!(expr.contains("product=~\"$product\""), "{title}: `{expr}`");
        }
        if findings
            && (expr.contains("status=\"overdue\"") || expr.contains("status=\"reinstalled\""))
        {
            assert!(expr.contains("policy!=\"watch\""), "{title}: `{expr}`");
        }
    }
    assert!(filtered >= 10, "{filtered} findings queries");
    for title in [
        "Hosts with findings",
        "Overdue findings",
        "Hosts not scanned",
    ] {
        assert!(
            queries
                .iter()
                .any(|(t, e)| t == title && e.contains("site=~\"$site\"")),
            "host table {title} ignores $site"
        );
    }

    // Links to the reports, through variables the user sets.
    let urls: Vec<&str> = list(&d, "links")
        .iter()
        .map(|l| l["url"].as_str().unwrap())
        .collect();
    assert!(urls.contains(&"${serve_url}/report"), "{urls:?}");
    assert!(urls.contains(&"${html_report_url}"), "{urls:?}");
    for v in ["serve_url", "html_report_url"] {
        assert_eq!(vars[v]["type"], "textbox", "{v}");
        assert!(
            vars[v]["query"].as_str().unwrap().starts_with("http"),
            "{v}"
        );
    }

    // Sweeps are annotations, at the time each sweep finished.
    let sweeps = annotation_queries(&d);
    assert_eq!(sweeps.len(), 1, "{sweeps:?}");
    assert!(
        sweeps[0].1.contains(
            "fleetsweep_last_sweep_timestamp_seconds{job=~\"$job\", instance=~\"$scanner\"}"
        ) && sweeps[0].1.ends_with("* 1000"),
        "{sweeps:?}"
    );
    let sweep_annotation = list(&d["annotations"], "list")
        .iter()
        .find(|a| a["name"] == "Sweeps")
        .unwrap();
    assert_eq!(sweep_annotation["useValueForTime"], true);
    assert_eq!(sweep_annotation["datasource"]["uid"], "${DS_PROMETHEUS}");
}

/// Every Prometheus annotation query of the dashboard, with its name.
fn annotation_queries(dash: &Value) -> Vec<(String, String)> {
    list(&dash["annotations"], "list")
        .iter()
        .filter_map(|a| {
            let expr = a.get("expr")?.as_str()?;
            Some((a["name"].as_str()?.to_string(), expr.to_string()))
        })
        .collect()
}

/// The fields of the report this test compares with the metrics.
#[derive(Debug, Deserialize)]
struct Report {
    summary: Summary,
    hosts: Vec<HostReport>,
}
#[derive(Debug, Deserialize)]
struct Summary {
    hosts: BTreeMap<String, usize>,
}
#[derive(Debug, Deserialize)]
struct HostReport {
    name: String,
    outcome: String,
    labels: BTreeMap<String, String>,
    findings: Vec<Finding>,
}
#[derive(Debug, Deserialize)]
struct Finding {
    rule: String,
    vendor: String,
    product: String,
    policy: String,
    status: String,
}

impl Finding {
    /// What BannedSoftwareFound counts: a banned product still there.
    fn unremediated_ban(&self) -> bool {
        self.policy == "ban"
            && ["new", "open", "overdue", "reinstalled"].contains(&self.status.as_str())
    }
}

/// A scrape job of deploy/prometheus/prometheus.yml, pointed at `targets`
/// (or with the `__address__` replacement of a probe job pointed at
/// `replacement`), on the test Prometheus's 1s interval.
fn deploy_job(
    config: &Value,
    name: &str,
    targets: Option<&str>,
    replacement: Option<&str>,
) -> String {
    deploy_job_every(config, name, targets, replacement, None)
}

/// [`deploy_job`] with its own `(scrape_interval, scrape_timeout)`.
fn deploy_job_every(
    config: &Value,
    name: &str,
    targets: Option<&str>,
    replacement: Option<&str>,
    every: Option<(&str, &str)>,
) -> String {
    let mut job = list(config, "scrape_configs")
        .iter()
        .find(|j| j["job_name"] == name)
        .unwrap_or_else(|| panic!("deploy/prometheus/prometheus.yml has no job {name}"))
        .clone();
    let obj = job.as_object_mut().unwrap();
    obj.remove("scrape_interval");
    obj.remove("scrape_timeout");
    if let Some((interval, timeout)) = every {
        obj.insert("scrape_interval".into(), Value::from(interval));
        obj.insert("scrape_timeout".into(), Value::from(timeout));
    }
    if let Some(t) = targets {
        for sc in obj["static_configs"].as_array_mut().unwrap() {
            sc["targets"] = serde_json::json!([t]);
        }
    }
    if let Some(r) = replacement {
        let mut replaced = false;
        for rc in obj["relabel_configs"].as_array_mut().unwrap() {
            if rc["target_label"] == "__address__" {
                rc["replacement"] = Value::from(r);
                replaced = true;
            }
        }
        assert!(replaced, "job {name} does not relabel __address__");
    }
    // JSON is YAML flow syntax: one list item per job.
    format!("- {}\n", serde_json::to_string(&job).unwrap())
}

/// The rule file with every `for:` shortened to 0s, so alerts fire on the
/// first evaluation that sees the data.
fn rules_without_for(dir: &Path) -> PathBuf {
    let text =
        std::fs::read_to_string(deploy().join("prometheus/rules/fleetsweep.rules.yml")).unwrap();
    let mut n = 0;
    let out: Vec<String> = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if t.starts_with("for: ") {
                n += 1;
                format!("{}for: 0s", &l[..l.len() - t.len()])
            } else {
                l.to_string()
            }
        })
        .collect();
    assert!(n >= 6, "expected a `for:` on every alert, found {n}");
    let path = dir.join("fleetsweep.rules.yml");
    std::fs::write(&path, out.join("\n") + "\n").unwrap();
    path
}

fn one(prom: &Prometheus, q: &str) -> f64 {
    let s = prom.query(q).unwrap();
    assert_eq!(s.len(), 1, "`{q}` should give one series: {s:?}");
    s[0].value
}

fn by(samples: &[Sample], label: &str) -> BTreeMap<String, f64> {
    samples
        .iter()
        .map(|s| (s.labels.get(label).cloned().unwrap_or_default(), s.value))
        .collect()
}

/// True when `a` is alert `name` of `job` and firing.
fn firing(name: &str, job: &str, a: &Alert) -> bool {
    a.name() == name && a.state == "firing" && a.labels.get("job").map(String::as_str) == Some(job)
}

const SERVE_JOB: &str = "fleetsweep";
const PROBE_JOB: &str = "fleetsweep-probe";
const TEXTFILE_JOB: &str = "fleetsweep-textfile";
const PUSHED_JOB: &str = "fleetsweep-cron";

#[test]
fn a_real_sweep_feeds_every_dashboard_query_and_fires_the_alerts() {
    let fleet = Fleet::start(FleetSpec {
        subnet: 240,
        hosts: demo_hosts(),
    })
    .expect("starting the test fleet");
    let textfiles = fleet.dir().join("textfile");
    std::fs::create_dir_all(&textfiles).unwrap();
    let prom_file = textfiles.join("fleetsweep.prom");
    let report_path = fleet.dir().join("report.yaml");

    // History, so that every status panel has data: 45 days ago (past the
    // 30-day grace) the fleet was swept into two stores (one for the textfile
    // sweep, one for the daemon); since then KESL was removed from app-01.
    let textfile_state = fleet.dir().join("textfile-state.db");
    let serve_state = fleet.dir().join("serve-state.db");
    let then = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(45 * 24))
        .unwrap();
    for state in [&textfile_state, &serve_state] {
        let out = Command::new(FLEETSWEEP)
            .args(["scan", "-q", "-i"])
            .arg(fleet.inventory_path())
            .arg("--state")
            .arg(state)
            .args(["--connect-timeout", "3s", "--host-timeout", "6s"])
            .env("FLEETSWEEP_NOW", then.to_string())
            .env_remove("SSH_AUTH_SOCK")
            .output_within(RUN_LIMIT);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    fleetsweep_e2e::mutate::purge_kesl(fleet.host("app-01")).unwrap();

    let out = Command::new(FLEETSWEEP)
        .args(["scan", "-i"])
        .arg(fleet.inventory_path())
        .arg("--state")
        .arg(&textfile_state)
        .arg("--metrics-file")
        .arg(&prom_file)
        .arg("--report")
        .arg(&report_path)
        .args([
            // Both allow-list spellings: a comma list here, in serve too.
            "--metric-label",
            "site,scenario",
            "--connect-timeout",
            "3s",
            "--host-timeout",
            "6s",
            "-q",
        ])
        .env_remove("SSH_AUTH_SOCK")
        .output_within(RUN_LIMIT);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Report =
        serde_saphyr::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let metrics_text = std::fs::read_to_string(&prom_file).unwrap();

    // The textfile through node_exporter; the same text pushed as a cron sweep would.
    let node = NodeExporter::start(&textfiles).unwrap();
    let served = node.metrics_text().unwrap();
    assert!(
        served.lines().any(|l| l == "node_textfile_scrape_error 0"),
        "node_exporter could not read the textfile:\n{served}"
    );
    let pushgw = Pushgateway::start().unwrap();
    pushgw.put(PUSHED_JOB, None, &metrics_text).unwrap();
    let pushed = pushgw.metrics_text().unwrap();
    assert!(
        pushed
            .lines()
            .any(|l| l.starts_with("fleetsweep_last_sweep_success{")
                && l.contains(&format!("job=\"{PUSHED_JOB}\""))),
        "Pushgateway does not serve the pushed sweep:\n{pushed}\n{}",
        pushgw.log()
    );

    // The daemon: one sweep at start (the next one is an hour away), through
    // its own state store, which saw the fleet 45 days ago.
    let serve = Daemon::start(&fleet, &serve_state);
    let serve_report: Report = serde_saphyr::from_str(&serve.wait_report()).unwrap();

    // Prometheus with the deploy jobs, pointed at the servers above.
    let config = yaml(&deploy().join("prometheus/prometheus.yml"));
    let rules_dir = tempfile::tempdir().unwrap();
    let rules = rules_without_for(rules_dir.path());
    let scrape = [
        deploy_job(&config, SERVE_JOB, Some(&serve.address), None),
        // Each probe scrape is a real scan of web-01 by the daemon.
        deploy_job_every(
            &config,
            PROBE_JOB,
            Some("web-01"),
            Some(&serve.address),
            Some(("5s", "5s")),
        ),
        deploy_job(&config, TEXTFILE_JOB, Some(&node.address()), None),
        deploy_job(&config, "pushgateway", Some(&pushgw.address()), None),
    ]
    .concat();
    let prom = Prometheus::start(&scrape, &[rules]).unwrap();
    for job in [SERVE_JOB, TEXTFILE_JOB, PUSHED_JOB] {
        prom.wait_for(
            &format!("fleetsweep_last_sweep_success{{job=\"{job}\"}}"),
            |s| !s.is_empty(),
            Duration::from_secs(20),
        )
        .unwrap_or_else(|e| panic!("{e}\nprometheus log:\n{}", prom.log()));
    }

    // Blackbox-style relabeling: one target per host, scraped at the daemon.
    let targets = prom.targets().unwrap();
    let probes: Vec<_> = targets
        .iter()
        .filter(|t| t.scrape_pool == PROBE_JOB)
        .map(|t| {
            (
                t.labels["instance"].clone(),
                t.scrape_url.clone(),
                t.labels.get("site").cloned(),
            )
        })
        .collect();
    assert_eq!(
        probes,
        [(
            "web-01".to_string(),
            format!("http://{}/probe?target=web-01", serve.address),
            Some("fra1".to_string())
        )]
    );
    let probe_success =
        format!("fleetsweep_probe_success{{job=\"{PROBE_JOB}\",instance=\"web-01\"}}");
    prom.wait_for(&probe_success, |s| !s.is_empty(), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\nserve log:\n{}", serve.log()));
    assert_eq!(
        one(&prom, &probe_success),
        1.0,
        "web-01 probed through the relabeling"
    );
    for t in prom.targets().unwrap() {
        assert_eq!(t.health, "up", "{t:?}");
    }

    // The daemon's sweep as Prometheus reads it, against its /report: KESL on
    // app-01 was remediated since the sweep 45 days ago, and what is still
    // there is past its due date.
    let serve_outcomes = outcome_counts(&serve_report);
    let got = by(
        &prom
            .query(&format!(
                "sum by (outcome) (fleetsweep_hosts{{job=\"{SERVE_JOB}\"}}) > 0"
            ))
            .unwrap(),
        "outcome",
    );
    assert_eq!(got, serve_outcomes, "hosts by outcome via serve");
    let kesl = "Kaspersky Endpoint Security for Linux";
    assert_eq!(
        one(
            &prom,
            &format!("fleetsweep_remediations_total{{job=\"{SERVE_JOB}\",product=\"{kesl}\"}}")
        ),
        1.0
    );
    assert_eq!(
        one(
            &prom,
            &format!("fleetsweep_host_finding{{job=\"{SERVE_JOB}\",host=\"app-01\",rule=\"kaspersky/kesl\"}}")
        ),
        1.0
    );
    assert_eq!(
        prom.query(&format!(
            "fleetsweep_host_finding{{job=\"{SERVE_JOB}\",host=\"app-01\",status=\"remediated\"}}"
        ))
        .unwrap()
        .len(),
        1
    );
    let overdue_hosts: BTreeSet<String> = serve_report
        .hosts
        .iter()
        .filter(|h| h.findings.iter().any(|f| f.status == "overdue"))
        .map(|h| h.name.clone())
        .collect();
    assert!(overdue_hosts.contains("nagent-01"), "{overdue_hosts:?}");
    let got: BTreeSet<String> = prom
        .query(&format!(
            "fleetsweep_host_finding{{job=\"{SERVE_JOB}\",status=\"overdue\"}}"
        ))
        .unwrap()
        .into_iter()
        .map(|s| s.labels["host"].clone())
        .collect();
    assert_eq!(got, overdue_hosts);

    // The metrics agree with the report the same sweep wrote, through both paths.
    let outcomes = outcome_counts(&report);
    let scanned = report.summary.hosts["scanned"] as f64;
    let total = report.summary.hosts["total"] as f64;
    assert_eq!(outcomes["scanned"], scanned);
    assert_eq!(total, report.hosts.len() as f64);
    for job in [TEXTFILE_JOB, PUSHED_JOB] {
        let got = by(
            &prom
                .query(&format!(
                    "sum by (outcome) (fleetsweep_hosts{{job=\"{job}\"}}) > 0"
                ))
                .unwrap(),
            "outcome",
        );
        assert_eq!(got, outcomes, "hosts by outcome via {job}");
        assert_eq!(
            one(
                &prom,
                &format!("fleetsweep_host_scan_duration_seconds_count{{job=\"{job}\"}}")
            ),
            scanned
        );
    }
    let mut per_product: BTreeMap<String, f64> = BTreeMap::new();
    let mut banned_per_product: BTreeMap<String, f64> = BTreeMap::new();
    let mut host_rules = BTreeSet::new();
    for h in &report.hosts {
        for f in &h.findings {
            *per_product.entry(f.product.clone()).or_default() += 1.0;
            if f.unremediated_ban() {
                *banned_per_product.entry(f.product.clone()).or_default() += 1.0;
            }
            host_rules.insert([
                h.name.clone(),
                f.rule.clone(),
                f.status.clone(),
                f.vendor.clone(),
                f.product.clone(),
                f.policy.clone(),
                h.labels["site"].clone(),
                h.labels["scenario"].clone(),
            ]);
        }
    }
    assert!(!per_product.is_empty(), "the demo fleet has findings");
    let got = by(
        &prom
            .query(&format!(
                "sum by (product) (fleetsweep_findings{{job=\"{TEXTFILE_JOB}\"}})"
            ))
            .unwrap(),
        "product",
    );
    assert_eq!(got, per_product);
    let got: BTreeSet<_> = prom
        .query(&format!(
            "fleetsweep_host_finding{{job=\"{TEXTFILE_JOB}\"}}"
        ))
        .unwrap()
        .into_iter()
        .map(|s| {
            [
                "host", "rule", "status", "vendor", "product", "policy", "site", "scenario",
            ]
            .map(|l| s.labels.get(l).cloned().unwrap_or_default())
        })
        .collect();
    assert_eq!(
        got, host_rules,
        "per-host series carry the finding's identity, policy and the allow-listed labels"
    );
    // Fleet and per-host series name findings alike, so they join: counted
    // per (vendor, product, rule, policy, status) they agree.
    let identity = "vendor, product, rule, policy, status";
    let fleet_series = prom
        .query(&format!(
            "sum by ({identity}) (fleetsweep_findings{{job=\"{TEXTFILE_JOB}\"}})"
        ))
        .unwrap();
    let host_series = prom
        .query(&format!(
            "sum by ({identity}) (fleetsweep_host_finding{{job=\"{TEXTFILE_JOB}\"}})"
        ))
        .unwrap();
    let keyed = |v: Vec<Sample>| -> BTreeMap<String, f64> {
        v.into_iter()
            .map(|s| (format!("{:?}", s.labels), s.value))
            .collect()
    };
    assert_eq!(keyed(fleet_series), keyed(host_series));
    let joined = prom
        .query(&format!(
            "fleetsweep_host_finding{{job=\"{TEXTFILE_JOB}\"}} * on (rule) group_left () max by (rule) (fleetsweep_findings{{job=\"{TEXTFILE_JOB}\"}})"
        ))
        .unwrap();
    assert_eq!(
        joined.len(),
        host_rules.len(),
        "every host series joins on rule"
    );
    let failed: BTreeSet<_> = report
        .hosts
        .iter()
        .filter(|h| h.outcome != "scanned")
        .map(|h| (h.name.clone(), h.outcome.clone()))
        .collect();
    let got: BTreeSet<_> = prom
        .query(&format!(
            "fleetsweep_host_scan_failure{{job=\"{TEXTFILE_JOB}\"}}"
        ))
        .unwrap()
        .into_iter()
        .map(|s| (s.labels["host"].clone(), s.labels["outcome"].clone()))
        .collect();
    assert_eq!(got, failed);

    // Every dashboard query, as Grafana would send it, returns data. Rates and
    // increases need two samples of the daemon in their window first.
    prom.wait_for(
        &format!("count_over_time(fleetsweep_remediations_total{{job=\"{SERVE_JOB}\"}}[1m]) >= 3"),
        |s| !s.is_empty(),
        Duration::from_secs(20),
    )
    .unwrap();
    let dash = dashboard();
    let vars = [
        ("job", SERVE_JOB),
        ("scanner", ".*"),
        ("site", "lab"),
        ("product", ".*"),
        ("__range", "1h"),
        ("__rate_interval", "1m"),
        ("__interval", "1m"),
        ("__interval_ms", "60000"),
    ];
    let mut problems = Vec::new();
    let queries = dashboard_queries(&dash);
    assert!(queries.len() >= 20, "only {} queries", queries.len());
    for (title, expr) in queries.iter().chain(&annotation_queries(&dash)) {
        let q = substitute(expr, &vars);
        assert!(!q.contains('$'), "unknown variable in `{expr}` ({title})");
        match prom.query_result(&q) {
            Err(e) => problems.push(format!("{title}: {e:#}")),
            Ok(r) => {
                if r.samples.is_empty() {
                    problems.push(format!("{title}: `{q}` returned no data"));
                }
                if let Some(s) = r.samples.iter().find(|s| !s.value.is_finite()) {
                    problems.push(format!("{title}: `{q}` gave {s:?}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "dashboard queries:\n{}",
        problems.join("\n")
    );
    let coverage = queries.iter().find(|(t, _)| t == "Coverage").unwrap();
    let c = one(&prom, &substitute(&coverage.1, &vars));
    let serve_scanned = serve_report.summary.hosts["scanned"] as f64;
    let serve_total = serve_report.summary.hosts["total"] as f64;
    assert!(
        (c - serve_scanned / serve_total).abs() < 1e-9,
        "Coverage panel {c}, serve's report {serve_scanned}/{serve_total}"
    );
    // One product selected: the host table lists that product's findings only.
    let table = queries
        .iter()
        .find(|(t, _)| t == "Hosts with findings")
        .unwrap();
    let one_product = vars.map(|(k, v)| if k == "product" { (k, kesl) } else { (k, v) });
    let rows = prom.query(&substitute(&table.1, &one_product)).unwrap();
    let kesl_findings = serve_report
        .hosts
        .iter()
        .flat_map(|h| &h.findings)
        .filter(|f| f.product == kesl)
        .count();
    assert!(kesl_findings > 0);
    assert_eq!(rows.len(), kesl_findings, "{rows:?}");
    assert!(rows.iter().all(|r| r.labels["product"] == kesl), "{rows:?}");
    // The sweep annotation sits at the time the daemon's sweep finished.
    let (_, sweeps) = &annotation_queries(&dash)[0];
    let at = one(&prom, &substitute(sweeps, &vars)) / 1000.0;
    let age = jiff::Timestamp::now().as_second() as f64 - at;
    assert!(
        (0.0..600.0).contains(&age),
        "sweep annotation at {at}, {age}s ago"
    );

    // The variables' label_values() lists.
    for v in list(&dash["templating"], "list") {
        let Some(def) = v.get("definition").and_then(Value::as_str) else {
            continue;
        };
        let inner = def
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unexpected variable query {def}"));
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let values = prom
            .label_values(label.trim(), &substitute(selector.trim(), &vars))
            .unwrap();
        let want: &[&str] = match v["name"].as_str().unwrap() {
            "job" => &[SERVE_JOB, TEXTFILE_JOB, PUSHED_JOB],
            "site" => &["lab"],
            "product" => &[kesl],
            // The daemon's scrape target.
            "scanner" => &[],
            other => panic!("no expectation for variable {other}"),
        };
        assert!(!values.is_empty(), "{def} lists nothing");
        for w in want {
            assert!(
                values.iter().any(|x| x == w),
                "{def} lists {values:?}, not {w}"
            );
        }
    }

    // The alerts, in this Prometheus, on this sweep.
    // Rules run on their own 1s schedule, a little after the first scrape.
    prom.wait_for(
        &format!("job:fleetsweep_coverage:ratio{{job=\"{TEXTFILE_JOB}\"}}"),
        |s| s.len() == 1 && (s[0].value - scanned / total).abs() < 1e-9,
        Duration::from_secs(10),
    )
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let alerts = loop {
        let alerts = prom.alerts().unwrap();
        let banned = alerts.iter().any(|a| {
            firing("BannedSoftwareFound", TEXTFILE_JOB, a)
                && a.labels.get("product").map(String::as_str) == Some(kesl)
        });
        if banned
            && alerts
                .iter()
                .any(|a| firing("CoverageDropped", TEXTFILE_JOB, a))
        {
            break alerts;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "BannedSoftwareFound / CoverageDropped not firing: {alerts:#?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    let banned: Vec<_> = alerts
        .iter()
        .filter(|a| firing("BannedSoftwareFound", TEXTFILE_JOB, a))
        .collect();
    let banned_products: BTreeMap<String, f64> = banned
        .iter()
        .map(|a| (a.labels["product"].clone(), a.value.parse::<f64>().unwrap()))
        .collect();
    assert_eq!(
        banned_products, banned_per_product,
        "one alert per product, valued by its unremediated findings"
    );
    let k = banned.iter().find(|a| a.labels["product"] == kesl).unwrap();
    assert_eq!(k.labels["severity"], "warning");
    assert!(
        k.annotations["summary"].contains(kesl)
            && k.annotations["summary"]
                .starts_with(&format!("{} install", banned_per_product[kesl])),
        "{k:?}"
    );
    // Past the grace period, the daemon's overdue findings alert, host by host.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let alerts = prom.alerts().unwrap();
        let overdue: BTreeSet<String> = alerts
            .iter()
            .filter(|a| firing("FindingOverdue", SERVE_JOB, a))
            .filter_map(|a| a.labels.get("host").cloned())
            .collect();
        if overdue == overdue_hosts {
            // Routed by the inventory labels, the policy and the product.
            for a in alerts
                .iter()
                .filter(|a| firing("FindingOverdue", SERVE_JOB, a))
            {
                let host = serve_report
                    .hosts
                    .iter()
                    .find(|h| Some(&h.name) == a.labels.get("host"))
                    .unwrap();
                let f = host
                    .findings
                    .iter()
                    .find(|f| Some(&f.rule) == a.labels.get("rule"))
                    .unwrap();
                for (label, want) in [
                    ("site", host.labels["site"].as_str()),
                    ("scenario", host.labels["scenario"].as_str()),
                    ("policy", "ban"),
                    ("product", f.product.as_str()),
                    ("vendor", f.vendor.as_str()),
                ] {
                    assert_eq!(
                        a.labels.get(label).map(String::as_str),
                        Some(want),
                        "{label} of {a:?}"
                    );
                }
                assert!(!a.labels.contains_key("instance"), "{a:?}");
                assert_eq!(
                    a.annotations["runbook_url"],
                    "docs/alerts/FindingOverdue.md"
                );
            }
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "FindingOverdue fires for {overdue:?}, not {overdue_hosts:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    for quiet in ["SweepIncomplete", "SweepStale", "FindingReinstalled"] {
        assert!(
            !alerts.iter().any(|a| a.name() == quiet),
            "{quiet} should not fire on a fresh complete sweep: {alerts:#?}"
        );
    }

    // The next cron sweep replaces the group (PUT, as the docs say): hosts
    // whose findings are gone lose their series in Prometheus too.
    let next = fleet.dir().join("next.prom");
    let out = Command::new(FLEETSWEEP)
        .args(["scan", "-i"])
        .arg(fleet.inventory_path())
        .args(["--limit", "web-01", "-q", "--metrics-file"])
        .arg(&next)
        .env_remove("SSH_AUTH_SOCK")
        .output_within(RUN_LIMIT);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    pushgw
        .put(PUSHED_JOB, None, &std::fs::read_to_string(&next).unwrap())
        .unwrap();
    assert!(!pushgw
        .metrics_text()
        .unwrap()
        .contains("fleetsweep_host_finding{"));
    prom.wait_for(
        &format!("fleetsweep_hosts{{job=\"{PUSHED_JOB}\"}} == 1"),
        |s| s.len() == 1 && s[0].labels.get("outcome").map(String::as_str) == Some("scanned"),
        Duration::from_secs(10),
    )
    .unwrap();
    assert!(prom
        .query(&format!("fleetsweep_host_finding{{job=\"{PUSHED_JOB}\"}}"))
        .unwrap()
        .is_empty());
}

fn outcome_counts(report: &Report) -> BTreeMap<String, f64> {
    report.hosts.iter().fold(BTreeMap::new(), |mut m, h| {
        *m.entry(h.outcome.clone()).or_default() += 1.0;
        m
    })
}

/// A real `fleetsweep serve` on a free loopback port; killed on drop.
struct Daemon {
    child: std::process::Child,
    address: String,
    log: PathBuf,
}

impl Daemon {
    fn start(fleet: &Fleet, state: &Path) -> Daemon {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let log = fleet.dir().join("serve.log");
        let child = Command::new(FLEETSWEEP)
            .args(["serve", "-i"])
            .arg(fleet.inventory_path())
            .arg("--state")
            .arg(state)
            .args(["--interval", "1h", "--jitter", "0", "--listen", &address])
            .args([
                "--metric-label",
                "site,scenario",
                "--connect-timeout",
                "3s",
                "--host-timeout",
                "6s",
            ])
            .env_remove("SSH_AUTH_SOCK")
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting fleetsweep serve");
        Daemon {
            child,
            address,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The first sweep's report from /report.
    fn wait_report(&self) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut r) = ureq::get(&format!("http://{}/report", self.address)).call() {
                if r.status() == 200 {
                    return r.body_mut().read_to_string().unwrap();
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no report from serve after 60s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
