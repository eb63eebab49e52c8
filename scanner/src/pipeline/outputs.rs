//! What a finished sweep is written to: the YAML report file, the metrics
//! textfile (node_exporter's textfile collector), the Pushgateway.
//!
//! Every method here blocks (file writes, an HTTP PUT); the pipeline calls
//! them on tokio's blocking pool.

use std::path::{Path, PathBuf};

use fleetsweep_exporters::metrics::{self, MetricsOptions};
use fleetsweep_exporters::{file, push, yaml, Report};

use super::PipelineError;
use crate::cli::ScanArgs;

/// The outputs `--report`, `--metrics-file` and `--push` ask for.
pub struct Outputs {
    report: Option<PathBuf>,
    metrics_file: Option<PathBuf>,
    /// Pushgateway URL and `job` of the grouping key.
    push: Option<(String, String)>,
    /// The grouping key's `instance` when `--scanner` names this scanner;
    /// otherwise it comes from the shard. Two scanners pushing to one group
    /// would replace each other's series.
    push_instance: Option<String>,
    /// Labels and revision of every metrics page; each sweep adds its
    /// remediation totals.
    pub(super) metrics: MetricsOptions,
}

/// What [`Outputs::write`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// The YAML report file.
    pub report: Option<PathBuf>,
    /// The metrics textfile.
    pub metrics_file: Option<PathBuf>,
    /// The Pushgateway URL pushed to.
    pub pushed: Option<String>,
}

impl Outputs {
    /// Fails before the sweep, not after an hour of scanning, when an output
    /// file cannot be written or a metric label is not allowed.
    pub fn prepare(args: &ScanArgs) -> Result<Outputs, PipelineError> {
        for path in args.report.iter().chain(args.metrics_file.iter()) {
            check_writable(path)?;
        }
        metrics::check_labels(&args.metric_label)?;
        Ok(Outputs {
            report: args.report.clone(),
            metrics_file: args.metrics_file.clone(),
            push: args
                .push
                .as_ref()
                .map(|url| (url.clone(), args.push_job.clone())),
            push_instance: args.scanner.clone(),
            metrics: MetricsOptions {
                label_allowlist: args.metric_label.clone(),
                revision: option_env!("FLEETSWEEP_REVISION")
                    .unwrap_or("unknown")
                    .to_string(),
                ..Default::default()
            },
        })
    }

    /// Writes the files, then pushes. A gateway that is down or refuses is an
    /// error only after the files are written, so the sweep is not lost.
    /// Blocking.
    ///
    /// The report and the metrics page are written to their files as they
    /// are serialized, never held whole: at 100,000 hosts the report alone is
    /// some 30 MB of YAML.
    pub fn write(&self, report: &Report, opts: &MetricsOptions) -> Result<Written, PipelineError> {
        let mut written = Written::default();
        if let Some(path) = &self.report {
            file::write_atomic_with(path, |w| yaml::write_yaml(report, w)).map_err(|source| {
                PipelineError::WriteReport {
                    path: path.clone(),
                    source,
                }
            })?;
            written.report = Some(path.clone());
        }
        if let Some(path) = &self.metrics_file {
            file::write_atomic_with(path, |w| metrics::write(report, opts, w)).map_err(
                |source| PipelineError::WriteMetrics {
                    path: path.clone(),
                    source,
                },
            )?;
            written.metrics_file = Some(path.clone());
        }
        if let Some((url, job)) = &self.push {
            let text = metrics::render(report, opts)?;
            let instance = match &self.push_instance {
                Some(scanner) => scanner.clone(),
                None => push::instance_of(report.sweep.shard.as_deref()),
            };
            push::PushTarget::new(url, job, &instance)
                .and_then(|t| t.push(&text))
                .map_err(|source| PipelineError::Push {
                    report: self.report.clone(),
                    source,
                })?;
            written.pushed = Some(url.clone());
        }
        Ok(written)
    }
}

/// Fails when `path` cannot be created: its directory is missing or not writable.
fn check_writable(path: &Path) -> Result<(), PipelineError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(PipelineError::NoDirectory {
            path: path.to_path_buf(),
            dir,
        });
    }
    match tempfile::NamedTempFile::new_in(&dir) {
        Ok(_) => Ok(()),
        Err(source) => Err(PipelineError::NotWritable {
            path: path.to_path_buf(),
            dir,
            source,
        }),
    }
}
