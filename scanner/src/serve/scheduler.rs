//! When scheduled sweeps run.
//!
//! One loop, one sweep at a time: a sweep starts at once, the next one
//! `interval + random(0..jitter × interval)` after the previous one
//! *started*. A sweep that takes longer than that is followed by the next one
//! as soon as it ends, so sweeps never overlap and a slow fleet is swept
//! back to back rather than piling up. The jitter spreads many scanners (or
//! shards) that were started together.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::watch;

use crate::pipeline::{blocking, Chain, PipelineError, Recorded};
use crate::sweep;

use super::Shared;

/// The sweep schedule.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub interval: Duration,
    /// 0 to 1: fraction of `interval` added at random.
    pub jitter: f64,
}

impl Schedule {
    /// Time from one sweep's start to the next one's.
    pub fn next_delay(&self) -> Duration {
        let j = self.jitter.clamp(0.0, 1.0);
        let extra = if j > 0.0 {
            rand::rng().random_range(0.0..=j)
        } else {
            0.0
        };
        self.interval.mul_f64(1.0 + extra)
    }
}

pub(super) async fn run(
    shared: Arc<Shared>,
    schedule: Schedule,
    mut shutdown: watch::Receiver<Option<String>>,
) {
    let d = &shared.daemon;
    loop {
        if shutdown.borrow().is_some() {
            break;
        }
        let started = Instant::now();
        // Taken once: a reload during this sweep applies to the next one.
        let pipeline = shared.pipeline();
        d.next_sweep.set(0.0);
        d.sweep_in_progress.inc();
        tracing::info!(hosts = pipeline.hosts().len(), "sweep started");
        let report = pipeline
            .sweep_all(Arc::new(sweep::Silent), shutdown.clone())
            .await;
        d.sweep_in_progress.dec();
        // Each sweep goes through the state store like a `scan`: statuses,
        // exceptions, one committed transaction, remediation totals.
        let Recorded {
            report,
            metrics: opts,
            error,
            changes,
        } = pipeline.record(report).await;
        if let Some(e) = error {
            tracing::error!(sweep = %report.sweep.id, "post-processing the sweep failed: {}", Chain(&e));
        }
        let result = if report.sweep.complete {
            "complete"
        } else {
            "interrupted"
        };
        d.sweeps.with_label_values(&[result]).inc();
        let s = &report.summary.hosts;
        tracing::info!(
            sweep = %report.sweep.id,
            started = %report.sweep.started,
            finished = %report.sweep.finished,
            result,
            hosts = s.total,
            scanned = s.scanned,
            affected = s.affected,
            "sweep finished"
        );
        let id = report.sweep.id.clone();
        let report = Arc::new(report);
        // Rendering a large fleet's report and metrics is CPU work: off the
        // async threads, like the writes after it.
        let published = {
            let (shared, report, opts) = (shared.clone(), report.clone(), opts.clone());
            blocking(move || shared.publish(&report, &opts)).await
        };
        if published {
            match pipeline.write(report.clone(), opts).await {
                Ok(_) => {}
                Err(e @ PipelineError::Task(_)) => tracing::error!("{e}"),
                Err(e) => tracing::error!(sweep = %id, "{}", Chain(&e)),
            }
            // Last: a SIEM that is down (retried up to --siem-deadline) must
            // not delay the files and the metrics page.
            for delivery in pipeline.deliver(report, changes).await {
                let output = [delivery.output];
                match delivery.result {
                    Ok(n) => {
                        d.siem_events.with_label_values(&output).inc_by(n as u64);
                        d.siem_last_success
                            .with_label_values(&output)
                            .set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
                    }
                    Err(_) => d.siem_failures.with_label_values(&output).inc(),
                }
            }
        }
        if shutdown.borrow().is_some() {
            break;
        }
        let next = started + schedule.next_delay();
        let now = jiff::Timestamp::now();
        let wall_next = now
            .checked_add(next.saturating_duration_since(Instant::now()))
            .unwrap_or(now);
        d.next_sweep.set(wall_next.as_millisecond() as f64 / 1000.0);
        tracing::info!(next = %wall_next, "next sweep planned");
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            changed = shutdown.changed() => {
                // Nobody can signal any more: keep to the schedule.
                if changed.is_err() {
                    tokio::time::sleep_until(next.into()).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_bounds() {
        let s = Schedule {
            interval: Duration::from_secs(100),
            jitter: 0.1,
        };
        for _ in 0..200 {
            let d = s.next_delay();
            assert!(
                d >= Duration::from_secs(100) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        let none = Schedule {
            interval: Duration::from_secs(5),
            jitter: 0.0,
        };
        assert_eq!(none.next_delay(), Duration::from_secs(5));
    }
}
