//! Pushes a metrics page to a Prometheus Pushgateway (`--push URL`).
//!
//! PUT semantics on purpose: a PUT replaces every series of the grouping key
//! (`job` + `instance`), so a host that is clean now, or gone from the
//! inventory, loses its per-host series instead of keeping a stale `1` for
//! ever (POST would merge by metric name and leave them). The page is pushed
//! as rendered for `--metrics-file`: the gateway adds `push_time_seconds` of
//! its own, and `fleetsweep_last_sweep_timestamp_seconds` stays because it
//! says when the sweep finished, which is not when it was pushed.
//!
//! The HTTP client (ureq) is named here and in `siem::webhook` only.

use std::time::Duration;

use base64::Engine;

/// How long one push may take, connect included.
const PUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a refusing gateway's answer goes into the error.
const BODY_EXCERPT: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("--push `{0}`: expected an http:// or https:// URL of the Pushgateway, e.g. http://pushgateway:9091")]
    BadUrl(String),
    /// `reason` is the client's error as text: it already names its cause,
    /// and chaining it as a source would print that cause twice.
    #[error("cannot reach the Pushgateway at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the Pushgateway refused the push to {url}: HTTP {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
}

/// Where and as what a page is pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushTarget {
    /// `scheme://host:port[/prefix]`, without userinfo and trailing `/`.
    pub base: String,
    /// `user:password` from the URL's userinfo, sent as basic auth.
    pub basic_auth: Option<(String, String)>,
    /// Grouping key, in order: `job` first, then `instance`.
    pub grouping: Vec<(String, String)>,
}

impl PushTarget {
    /// Parses `--push URL` (userinfo becomes basic auth) with a grouping key
    /// of `job` and `instance`.
    pub fn new(url: &str, job: &str, instance: &str) -> Result<PushTarget, PushError> {
        let bad = || PushError::BadUrl(url.to_string());
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        if !matches!(scheme, "http" | "https") {
            return Err(bad());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (basic_auth, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let (u, p) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                (Some((percent_decode(u), percent_decode(p))), host)
            }
            None => (None, authority),
        };
        if host.is_empty() || path.contains(['?', '#']) {
            return Err(bad());
        }
        Ok(PushTarget {
            base: format!("{scheme}://{host}{}", path.trim_end_matches('/')),
            basic_auth,
            grouping: vec![
                ("job".to_string(), job.to_string()),
                ("instance".to_string(), instance.to_string()),
            ],
        })
    }

    /// `BASE/metrics/job/<job>/instance/<instance>`, each value encoded so
    /// the gateway reads it back exactly.
    pub fn url(&self) -> String {
        let mut url = format!("{}/metrics", self.base);
        for (name, value) in &self.grouping {
            url.push('/');
            url.push_str(&path_segment(name, value));
        }
        url
    }

    /// PUTs `page` (text format 0.0.4), replacing what this grouping key held.
    pub fn push(&self, page: &str) -> Result<(), PushError> {
        let url = self.url();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(PUSH_TIMEOUT))
            .build()
            .into();
        let mut req = agent
            .put(&url)
            .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        if let Some((user, pass)) = &self.basic_auth {
            let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            req = req.header("Authorization", &format!("Basic {token}"));
        }
        // The URL holds no password (userinfo went into the header), so errors may show it.
        let shown = url.clone();
        let mut resp = req
            .send(page.as_bytes())
            .map_err(|e| PushError::Unreachable {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_string()
            .unwrap_or_default();
        Err(PushError::Refused {
            url: shown,
            status,
            body: excerpt(&body),
        })
    }
}

/// One `name/value` pair of the grouping key: values with `/` (or empty
/// ones, which the gateway cannot take in a path) go as `name@base64/...`
/// (URL-safe alphabet), others percent-encoded.
fn path_segment(name: &str, value: &str) -> String {
    if value.is_empty() || value.contains('/') {
        let enc = base64::engine::general_purpose::URL_SAFE.encode(value.as_bytes());
        // The gateway reads `=` as the empty value.
        let enc = if enc.is_empty() { "=".to_string() } else { enc };
        format!("{name}@base64/{enc}")
    } else {
        format!("{name}/{}", percent_encode(value))
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first line(s) of a gateway's answer, bounded and on one line, so an
/// error message stays readable.
pub(crate) fn excerpt(body: &str) -> String {
    let one_line: String = body
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > BODY_EXCERPT {
        let cut: String = one_line.chars().take(BODY_EXCERPT).collect();
        format!("{cut}…")
    } else if one_line.is_empty() {
        "(empty answer)".to_string()
    } else {
        one_line
    }
}

/// The `instance` of a sweep's grouping key: `I_of_N` for a shard (so each
/// scanner of a sharded fleet owns its own group), `all` otherwise.
pub fn instance_of(shard: Option<&str>) -> String {
    match shard {
        Some(s) => s.replace('/', "_of_"),
        None => "all".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_key_paths() {
        let t = PushTarget::new("http://gw:9091/", "fleetsweep", "2_of_4").unwrap();
        assert_eq!(
            t.url(),
            "http://gw:9091/metrics/job/fleetsweep/instance/2_of_4"
        );
        assert_eq!(t.basic_auth, None);
        let t = PushTarget::new("https://u:p%40ss@gw:9091/prefix", "a/b", "").unwrap();
        assert_eq!(
            t.url(),
            "https://gw:9091/prefix/metrics/job@base64/YS9i/instance@base64/="
        );
        assert_eq!(t.basic_auth, Some(("u".into(), "p@ss".into())));
        assert_eq!(path_segment("job", "a b"), "job/a%20b");
    }

    #[test]
    fn bad_urls() {
        for u in ["gw:9091", "ftp://gw", "http://", "http://gw/x?y=1"] {
            assert!(PushTarget::new(u, "j", "all").is_err(), "{u}");
        }
    }

    #[test]
    fn instances_and_excerpts() {
        assert_eq!(instance_of(Some("1/3")), "1_of_3");
        assert_eq!(instance_of(None), "all");
        assert_eq!(excerpt("a\nb"), "a b");
        assert_eq!(excerpt(&"x".repeat(400)).chars().count(), BODY_EXCERPT + 1);
    }
}
