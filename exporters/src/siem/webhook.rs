//! SIEM events POSTed as JSON to a webhook (`--webhook URL`), in batches,
//! each signed with HMAC-SHA256 and retried until the receiver takes it.
//!
//! What a receiver gets, per batch (docs/siem.md has a verifier in Python):
//! - body: `{"schema_version":1,"sweep_id":..,"batch":I,"batches":N,"events":[..]}`
//!   with at most `--webhook-batch` events;
//! - `X-Fleetsweep-Signature: t=<unix seconds>,v1=<hex>`: HMAC-SHA256 with
//!   the shared secret over `<t>.<body>`, as Stripe signs its webhooks. Each
//!   attempt is signed anew (a fresh `t`), so a receiver can refuse old
//!   signatures (replays) without refusing our retries;
//! - `Idempotency-Key: <sweep id>-<I>`: the same for every attempt of a
//!   batch, so a receiver that answered too slowly can drop the repeat.
//!
//! Retried (exponential backoff with jitter, within the deadline): connection
//! errors, timeouts, 408, 429 and 5xx; a `Retry-After` on 429 or 503 is
//! honoured (seconds or an HTTP date). Any other answer is final: a 400 or
//! 401 will not change by asking again. Batches go in order; the first one
//! that fails ends the delivery.
//!
//! The HTTP client (ureq) is named here and in [`crate::push`] only.

use std::path::Path;
use std::time::Duration;

use ring::hmac;
use serde::Serialize;

use super::retry::{Backoff, RetryPolicy};
use super::{Delivery, Event, SiemError, SCHEMA_VERSION};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Fleetsweep-Signature";
/// The per-batch idempotency key header.
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
/// Events per batch by default.
pub const DEFAULT_BATCH: usize = 100;
/// The most events per batch `--webhook-batch` allows (bodies stay in the
/// low megabytes: an event is bounded to a few KiB).
pub const MAX_BATCH: usize = 1000;
/// How much of a refusing receiver's answer goes into the error.
const BODY_LIMIT: u64 = 64 * 1024;

/// A webhook receiver, ready to send.
pub struct Webhook {
    url: String,
    /// The HMAC key; never printed (see the Debug impl).
    secret: hmac::Key,
    batch: usize,
    /// The roots an https:// receiver's certificate must chain to:
    /// `--webhook-ca`, else the system's.
    tls: ureq::tls::TlsConfig,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// One batch as sent.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The `Idempotency-Key`.
    pub key: String,
    pub body: Vec<u8>,
    pub events: usize,
}

#[derive(Serialize)]
struct Body<'a> {
    schema_version: u32,
    sweep_id: &'a str,
    /// 1-based.
    batch: usize,
    batches: usize,
    events: &'a [Event],
}

impl Webhook {
    /// `url` must be http:// or https:// without userinfo (the secret signs,
    /// nothing else authenticates); `secret` must not be empty. `ca`: a PEM
    /// bundle an https:// receiver's certificate must chain to (default:
    /// the system's roots).
    pub fn new(
        url: &str,
        secret: &[u8],
        batch: usize,
        ca: Option<&Path>,
    ) -> Result<Webhook, SiemError> {
        let bad = |detail: &str| SiemError::Config {
            flag: "webhook",
            detail: format!("`{url}`: {detail}"),
        };
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                bad("expected an http:// or https:// URL, e.g. https://siem.example.net/hooks/fleetsweep")
            })?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() {
            return Err(bad("the host is missing"));
        }
        if authority.contains('@') {
            return Err(bad(
                "credentials in the URL would show in logs; the signature authenticates the sender",
            ));
        }
        if secret.is_empty() {
            return Err(SiemError::Config {
                flag: "webhook-secret-file",
                detail: "the webhook secret is empty: put a random secret (e.g. `openssl rand -hex 32`) in the file or in FLEETSWEEP_WEBHOOK_SECRET".to_string(),
            });
        }
        if batch == 0 || batch > MAX_BATCH {
            return Err(SiemError::Config {
                flag: "webhook-batch",
                detail: format!("{batch}: give 1 to {MAX_BATCH} events per request"),
            });
        }
        Ok(Webhook {
            url: url.to_string(),
            secret: hmac::Key::new(hmac::HMAC_SHA256, secret),
            batch,
            tls: tls_config(ca)?,
        })
    }

    /// The target as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The batches `events` go out in.
    pub fn batches(&self, events: &[Event]) -> Result<Vec<Batch>, SiemError> {
        let sweep_id = events.first().map_or("", |e| e.sweep_id.as_str());
        let chunks: Vec<&[Event]> = events.chunks(self.batch).collect();
        let n = chunks.len();
        chunks
            .into_iter()
            .enumerate()
            .map(|(i, chunk)| {
                let body = serde_json::to_vec(&Body {
                    schema_version: SCHEMA_VERSION,
                    sweep_id,
                    batch: i + 1,
                    batches: n,
                    events: chunk,
                })?;
                Ok(Batch {
                    key: format!("{sweep_id}-{}", i + 1),
                    body,
                    events: chunk.len(),
                })
            })
            .collect()
    }

    /// POSTs every batch in order within `policy`'s deadline. Blocking.
    pub fn send(&self, events: &[Event], policy: RetryPolicy) -> Delivery {
        let mut backoff = Backoff::new(policy);
        let mut retried = Vec::new();
        let result = self.batches(events).and_then(|batches| {
            let mut sent = 0;
            for b in &batches {
                self.post(b, &mut backoff, &mut retried)
                    .map_err(|detail| SiemError::Delivery {
                        target: format!("webhook {}", self.url),
                        detail: format!(
                            "batch {} ({}): {detail}",
                            b.key.rsplit('-').next().unwrap_or("?"),
                            b.key
                        ),
                        attempts: backoff.attempts,
                    })?;
                sent += b.events;
            }
            Ok(sent)
        });
        Delivery {
            output: "webhook",
            target: self.url.clone(),
            result,
            attempts: backoff.attempts,
            retried,
        }
    }

    /// One batch, retried as the module says.
    fn post(
        &self,
        batch: &Batch,
        backoff: &mut Backoff,
        retried: &mut Vec<String>,
    ) -> Result<(), String> {
        loop {
            backoff.attempt();
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(backoff.attempt_timeout()))
                .user_agent(concat!("fleetsweep/", env!("CARGO_PKG_VERSION")))
                .tls_config(self.tls.clone())
                .build()
                .into();
            let t = jiff::Timestamp::now().as_second();
            let answer = agent
                .post(&self.url)
                .header("Content-Type", "application/json")
                .header(SIGNATURE_HEADER, &sign(&self.secret, t, &batch.body))
                .header(IDEMPOTENCY_HEADER, &batch.key)
                .send(&batch.body[..]);
            let (why, retry_after) = match answer {
                Err(e) if certificate_rejected(&e) => {
                    return Err(format!(
                        "the receiver's TLS certificate was rejected ({e}): is --webhook-ca the CA that signed it, and does it name the host of --webhook? (not retried)"
                    ))
                }
                Err(e) => (format!("request failed: {e}"), None),
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if (200..300).contains(&status) {
                        return Ok(());
                    }
                    let retry_after = match status {
                        429 | 503 => resp
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| retry_after(v, jiff::Timestamp::now())),
                        _ => None,
                    };
                    let body = resp
                        .body_mut()
                        .with_config()
                        .limit(BODY_LIMIT)
                        .read_to_string()
                        .unwrap_or_default();
                    let why = format!("HTTP {status}: {}", crate::push::excerpt(&body));
                    if !retryable(status) {
                        return Err(format!(
                            "{why} (not retried: the request itself was refused)"
                        ));
                    }
                    (why, retry_after)
                }
            };
            retried.push(why.clone());
            backoff
                .wait(retry_after)
                .map_err(|d| format!("{why}; {d}"))?;
        }
    }
}

/// The roots of https:// receivers: the PEM certificates of `ca`, else the
/// system's (as `--syslog` and the WinRM client use).
fn tls_config(ca: Option<&Path>) -> Result<ureq::tls::TlsConfig, SiemError> {
    let roots: Vec<ureq::tls::Certificate<'static>> = match ca {
        Some(path) => {
            let err = |detail: String| SiemError::File {
                flag: "webhook-ca",
                path: path.display().to_string(),
                detail,
            };
            let pem = std::fs::read(path).map_err(|e| err(format!("cannot read it: {e}")))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()
                .map_err(|e| err(format!("not PEM: {e}")))?;
            if certs.is_empty() {
                return Err(err(
                    "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string(),
                ));
            }
            certs
        }
        None => rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect(),
    };
    Ok(ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
        .build())
}

/// True when the request failed because the receiver's certificate did not
/// verify: asking again cannot fix that.
fn certificate_rejected(e: &ureq::Error) -> bool {
    let rustls_error = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    matches!(rustls_error, Some(rustls::Error::InvalidCertificate(_)))
}

/// Answers another attempt may change.
fn retryable(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// `Retry-After`: delay-seconds, or an HTTP date (then the time until it).
pub fn retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let d = now.duration_until(when);
    Some(Duration::try_from(d).unwrap_or(Duration::ZERO))
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &hmac::Key, t: i64, body: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(secret);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    let tag = ctx.sign();
    let mut hex = String::with_capacity(64);
    for b in tag.as_ref() {
        hex.push_str(&format!("{b:02x}"));
    }
    format!("t={t},v1={hex}")
}

/// Checks a signature header as a receiver should: the HMAC matches (in
/// constant time) and `t` is within `tolerance` of `now`. Used by the tests'
/// receiver; receivers in other languages follow docs/siem.md.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: jiff::Timestamp,
    tolerance: Duration,
) -> Result<(), String> {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1.push(v.to_string()),
            _ => {}
        }
    }
    let t = t.ok_or("no t= in the signature header")?;
    if (now.as_second() - t).unsigned_abs() > tolerance.as_secs() {
        return Err(format!("timestamp {t} is outside the tolerance"));
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut signed = t.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(body);
    for hex in v1 {
        if let Some(tag) = unhex(&hex) {
            if hmac::verify(&key, &signed, &tag).is_ok() {
                return Ok(());
            }
        }
    }
    Err("no v1 signature matches".to_string())
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::siem::events;
    use crate::siem::tests::{finding, report};
    use crate::Status;

    #[test]
    fn signatures_verify_with_the_secret_only() {
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"s3cret");
        let now: jiff::Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let h = sign(&key, now.as_second(), b"{}");
        assert!(h.starts_with(&format!("t={},v1=", now.as_second())), "{h}");
        let tol = Duration::from_secs(300);
        assert!(verify(b"s3cret", &h, b"{}", now, tol).is_ok());
        assert!(verify(b"wrong", &h, b"{}", now, tol).is_err());
        assert!(verify(b"s3cret", &h, b"{ }", now, tol).is_err());
        let later = now
            .checked_add(jiff::SignedDuration::from_secs(301))
            .unwrap();
        assert!(verify(b"s3cret", &h, b"{}", later, tol)
            .unwrap_err()
            .contains("tolerance"));
        // Known answer (RFC 4231 style check through a second implementation is
        // in the end-to-end test's Python verifier).
        assert_eq!(h.len(), format!("t={},v1=", now.as_second()).len() + 64);
    }

    #[test]
    fn batches_are_bounded_and_keyed() {
        let r = report(
            (0..5)
                .map(|i| finding(&format!("kaspersky/p{i}"), Status::Open))
                .collect(),
        );
        let ev = events(&r, &[]);
        assert_eq!(ev.len(), 6);
        let w = Webhook::new("http://127.0.0.1:9/hook", b"k", 4, None).unwrap();
        let b = w.batches(&ev).unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].key.as_str(), b[0].events), ("s1-1", 4));
        assert_eq!((b[1].key.as_str(), b[1].events), ("s1-2", 2));
        let body: serde_json::Value = serde_json::from_slice(&b[1].body).unwrap();
        assert_eq!(body["batch"], 2);
        assert_eq!(body["batches"], 2);
        assert_eq!(body["events"][1]["type"], "sweep_summary");
    }

    #[test]
    fn bad_configurations_say_how_to_fix_them() {
        for (url, secret, batch, want) in [
            (
                "ftp://x/",
                &b"k"[..],
                10,
                "expected an http:// or https:// URL",
            ),
            ("https://u:p@x/", b"k", 10, "credentials in the URL"),
            ("http:///x", b"k", 10, "the host is missing"),
            ("http://x/", b"", 10, "openssl rand -hex 32"),
            ("http://x/", b"k", 0, "give 1 to 1000"),
            ("http://x/", b"k", 1001, "give 1 to 1000"),
        ] {
            let e = Webhook::new(url, secret, batch, None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{url}: {e}");
        }
        let w = Webhook::new("http://x/", b"topsecret", 1, None).unwrap();
        assert!(!format!("{w:?}").contains("topsecret"));
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        let now: jiff::Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Thu, 03 Dec 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Thu, 03 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert!(retryable(503) && retryable(429) && retryable(408) && retryable(500));
        assert!(!retryable(400) && !retryable(401) && !retryable(404) && !retryable(301));
    }
}
