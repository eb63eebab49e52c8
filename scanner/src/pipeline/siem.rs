//! `--syslog` and `--webhook`: the SIEM outputs of a pipeline, validated
//! before the sweep (URLs, TLS files, the webhook secret) and delivered
//! after the report and the state store, so a receiver that is down never
//! costs the sweep its files or its history.
//!
//! Both outputs are sent at the same time, each within `--siem-deadline`;
//! what each delivered (or why not) goes back to the caller, which logs it
//! and sets the exit code (`scan`) or the delivery metrics (`serve`).

use std::path::Path;
use std::time::Duration;

use fleetsweep_exporters::siem::retry::RetryPolicy;
use fleetsweep_exporters::siem::syslog::{SyslogTarget, TlsFiles};
use fleetsweep_exporters::siem::webhook::Webhook;
use fleetsweep_exporters::siem::{self, Delivery, SiemError, StatusChange};
use fleetsweep_exporters::Report;

use super::PipelineError;
use crate::cli::SiemArgs;

/// The environment variable the webhook secret may come from.
pub const SECRET_ENV: &str = "FLEETSWEEP_WEBHOOK_SECRET";

/// The SIEM outputs a pipeline delivers to.
#[derive(Debug)]
pub struct SiemOutputs {
    syslog: Option<SyslogTarget>,
    webhook: Option<Webhook>,
    policy: RetryPolicy,
}

impl SiemOutputs {
    /// `None` when neither output is asked for.
    pub fn prepare(args: &SiemArgs) -> Result<Option<SiemOutputs>, PipelineError> {
        let deadline = crate::inventory::parse_duration(&args.siem_deadline).map_err(|detail| {
            PipelineError::Flag {
                flag: "siem-deadline",
                detail,
            }
        })?;
        if deadline < Duration::from_secs(1) {
            return Err(PipelineError::Flag {
                flag: "siem-deadline",
                detail: format!(
                    "`{}` leaves no time to deliver; give at least 1s, e.g. 2m",
                    args.siem_deadline
                ),
            });
        }
        if args.syslog.is_none() && args.webhook.is_none() {
            return Ok(None);
        }
        let syslog = match &args.syslog {
            Some(url) => Some(SyslogTarget::new(
                url,
                &TlsFiles {
                    ca: args.syslog_ca.clone(),
                    client: args.syslog_cert.clone().zip(args.syslog_key.clone()),
                },
                &local_hostname(),
            )?),
            None => None,
        };
        let webhook = match &args.webhook {
            Some(url) => {
                let secret = read_secret(args.webhook_secret_file.as_deref())?;
                Some(Webhook::new(
                    url,
                    &secret,
                    args.webhook_batch,
                    args.webhook_ca.as_deref(),
                )?)
            }
            None => None,
        };
        Ok(Some(SiemOutputs {
            syslog,
            webhook,
            policy: RetryPolicy {
                deadline,
                ..RetryPolicy::default()
            },
        }))
    }

    /// The names of the outputs configured (`syslog`, `webhook`), for metrics.
    pub fn names(&self) -> Vec<&'static str> {
        let mut n = Vec::new();
        if self.syslog.is_some() {
            n.push("syslog");
        }
        if self.webhook.is_some() {
            n.push("webhook");
        }
        n
    }

    /// Builds the sweep's events and sends them to every output at once.
    /// Blocking (network I/O with sleeps between retries).
    pub fn deliver(&self, report: &Report, changes: &[StatusChange]) -> Vec<Delivery> {
        let events = siem::events(report, changes);
        std::thread::scope(|s| {
            let syslog = self
                .syslog
                .as_ref()
                .map(|t| s.spawn(|| t.send(&events, self.policy)));
            let webhook = self
                .webhook
                .as_ref()
                .map(|w| s.spawn(|| w.send(&events, self.policy)));
            [("syslog", syslog), ("webhook", webhook)]
                .into_iter()
                .filter_map(|(output, handle)| {
                    handle.map(|h| {
                        h.join().unwrap_or_else(|_| Delivery {
                            output,
                            target: String::new(),
                            result: Err(SiemError::Delivery {
                                target: output.to_string(),
                                detail: "the sending thread panicked".to_string(),
                                attempts: 0,
                            }),
                            attempts: 0,
                            retried: Vec::new(),
                        })
                    })
                })
                .collect()
        })
    }
}

/// The webhook secret: the file's first line, else the environment variable.
fn read_secret(file: Option<&Path>) -> Result<Vec<u8>, PipelineError> {
    match file {
        Some(path) => {
            let text = std::fs::read(path).map_err(|e| SiemError::File {
                flag: "webhook-secret-file",
                path: path.display().to_string(),
                detail: format!("cannot read the webhook secret: {e}"),
            })?;
            let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            Ok(line.to_vec())
        }
        None => match std::env::var_os(SECRET_ENV) {
            Some(v) => Ok(v.into_encoded_bytes()),
            None => Err(SiemError::Config {
                flag: "webhook",
                detail: format!(
                    "the webhook needs a signing secret: --webhook-secret-file FILE or the environment variable {SECRET_ENV} (never on the command line)"
                ),
            }
            .into()),
        },
    }
}

/// This machine's host name (the HOSTNAME of syslog messages; empty
/// becomes `-`). gethostname(2), not /proc/sys/kernel/hostname, which the
/// hardened units hide (ProcSubset=pid).
fn local_hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default()
}
