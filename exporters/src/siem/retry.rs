//! Retries of a SIEM delivery: exponential backoff with jitter, all within
//! one deadline.
//!
//! A scheduled sweep must end: a receiver that is down for an hour cannot
//! hold the job (or the next sweep of `serve`) for an hour. So a delivery
//! has a deadline, every wait is cut to what is left of it, and when it has
//! passed the delivery fails and says so. Jitter spreads many scanners (or
//! shards) that lost the same receiver at once.

use std::time::{Duration, Instant};

use rand::Rng;

/// How a delivery retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The whole delivery (every attempt and wait) ends by then.
    pub deadline: Duration,
    /// Wait before the second attempt; doubled after each failure.
    pub initial: Duration,
    /// The longest wait between two attempts (a `Retry-After` may ask for
    /// more, within the deadline).
    pub max: Duration,
    /// One attempt: connect, TLS, send, answer.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(120),
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(15),
        }
    }
}

/// The attempts of one delivery.
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    started: Instant,
    /// Attempts made so far.
    pub attempts: u32,
}

impl Backoff {
    pub fn new(policy: RetryPolicy) -> Backoff {
        Backoff {
            policy,
            started: Instant::now(),
            attempts: 0,
        }
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.policy.deadline.saturating_sub(self.started.elapsed())
    }

    /// The timeout of the next attempt: the policy's, or what is left.
    pub fn attempt_timeout(&self) -> Duration {
        self.policy
            .attempt_timeout
            .min(self.remaining())
            .max(Duration::from_millis(100))
    }

    /// Counts an attempt about to be made.
    pub fn attempt(&mut self) {
        self.attempts += 1;
    }

    /// The wait after the `attempts`-th failure: `initial × 2^(n-1)`, at
    /// most `max`, of which the second half is random ("equal jitter": never
    /// less than half the nominal wait, so a receiver still gets its rest).
    pub fn delay(&self) -> Duration {
        let exp = self.attempts.saturating_sub(1).min(20);
        let nominal = self
            .policy
            .initial
            .saturating_mul(1u32 << exp)
            .min(self.policy.max);
        let half = nominal / 2;
        let jitter = if half.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..=half)
        };
        half + jitter
    }

    /// Sleeps before the next attempt: `retry_after` when the receiver
    /// asked for it, else [`Backoff::delay`]. `Err` (with why) when that
    /// wait would end past the deadline: give up now rather than sleep for
    /// nothing.
    pub fn wait(&self, retry_after: Option<Duration>) -> Result<(), String> {
        let wait = retry_after.unwrap_or_else(|| self.delay());
        let left = self.remaining();
        if wait >= left {
            return Err(match retry_after {
                Some(r) => format!(
                    "the receiver asked to retry after {}s, past the delivery deadline of {}s",
                    r.as_secs(),
                    self.policy.deadline.as_secs()
                ),
                None => format!(
                    "the delivery deadline of {}s has passed",
                    self.policy.deadline.as_secs()
                ),
            });
        }
        std::thread::sleep(wait);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_and_are_capped() {
        let policy = RetryPolicy {
            deadline: Duration::from_secs(100),
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            attempt_timeout: Duration::from_secs(1),
        };
        let mut b = Backoff::new(policy);
        for (n, nominal) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 8), (40, 8)] {
            b.attempts = n;
            for _ in 0..50 {
                let d = b.delay();
                let nominal = Duration::from_secs(nominal);
                assert!(d >= nominal / 2 && d <= nominal, "{n}: {d:?}");
            }
        }
    }

    #[test]
    fn a_wait_past_the_deadline_gives_up_at_once() {
        let b = Backoff::new(RetryPolicy {
            deadline: Duration::from_secs(5),
            ..RetryPolicy::default()
        });
        let started = Instant::now();
        let e = b.wait(Some(Duration::from_secs(60))).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(e.contains("retry after 60s"), "{e}");
        assert!(b.wait(Some(Duration::from_millis(10))).is_ok());
    }
}
