//! SIEM events as RFC 5424 syslog messages over TCP (`tcp://HOST:PORT`) or
//! TLS (`tls://HOST:PORT`, RFC 5425), octet-counted (RFC 6587 §3.4.1:
//! `LEN SP MSG`), which is what rsyslog (`imtcp`), syslog-ng (`syslog()`
//! source) and most SIEM collectors take.
//!
//! One message per event:
//! `<PRI>1 TIMESTAMP HOSTNAME fleetsweep PROCID MSGID [fleetsweep@32473 ...] BOM{json}`.
//! The structured data carries the fields a collector filters on (host,
//! rule, status, ...), escaped as RFC 5424 §6.3.3 asks (`"`, `\` and `]`),
//! with control characters made visible so an element stays on one line;
//! MSG is the event's JSON (docs/siem.md), which holds everything. 32473 is
//! the private enterprise number RFC 5612 reserves for documentation:
//! [`SD_ID`] is where an operator's own number goes.
//!
//! TCP syslog has no acknowledgements: a write that succeeded only reached
//! the kernel. A connection that fails is opened again (with backoff, within
//! the deadline) and sending resumes at the message that failed, so a
//! receiver may see one message twice (each event has a stable `id`) and,
//! when it dies with messages unread, lose those. The webhook is the output
//! with delivery confirmed per batch.
//!
//! This is the only module naming rustls in the exporters.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::retry::{Backoff, RetryPolicy};
use super::{truncate_chars, Delivery, Event, EventBody, SiemError};
use crate::formats::text::visible;
use crate::report::Status;

/// The SD-ID of every message (RFC 5424 §7.2.2: `name@<private enterprise number>`).
pub const SD_ID: &str = "fleetsweep@32473";
/// APP-NAME of every message.
pub const APP_NAME: &str = "fleetsweep";
/// The largest message sent, framing excluded: 8 KiB is what RFC 5425
/// receivers SHOULD take and rsyslog's default `maxMessageSize`.
pub const MAX_MESSAGE: usize = 8192;
/// How long a TLS session stays open after its last message before the
/// close_notify. rsyslog's openssl driver (8.2302, Debian 12) drops the
/// messages it has not read yet when the close_notify arrives with them:
/// in the tests, about 1 session in 7 lost some or all of its messages
/// without this pause, none of 85 with it. One session per sweep: the
/// second is cheap.
const TLS_CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Facility `local0` (16): the usual choice for an application's own stream.
const FACILITY: u8 = 16;

/// TLS settings of `tls://` targets.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// PEM CA bundle the server's certificate must chain to (`--syslog-ca`);
    /// without it, the system's roots.
    pub ca: Option<PathBuf>,
    /// PEM client certificate chain and key (`--syslog-cert`, `--syslog-key`),
    /// for receivers that authenticate senders.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// A syslog receiver, parsed and with its TLS set up, ready to send.
#[derive(Debug, Clone)]
pub struct SyslogTarget {
    /// As given (`tls://siem.example.net:6514`).
    url: String,
    host: String,
    port: u16,
    tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// HOSTNAME of every message: the scanner's host name, or `-`.
    hostname: String,
    procid: String,
}

impl SyslogTarget {
    /// Parses `tcp://HOST:PORT` or `tls://HOST:PORT` (`[v6]:PORT` for IPv6
    /// addresses) and reads the TLS files now, so a wrong path fails before
    /// the sweep. `hostname` is the scanner's own name.
    pub fn new(url: &str, tls: &TlsFiles, hostname: &str) -> Result<SyslogTarget, SiemError> {
        let bad = |detail: &str| SiemError::Config {
            flag: "syslog",
            detail: format!(
                "`{url}`: {detail}; e.g. tcp://siem.example.net:514 or tls://siem.example.net:6514"
            ),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("expected tcp:// or tls://"))?;
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (h, p) = v6
                    .split_once("]:")
                    .ok_or_else(|| bad("expected [ADDRESS]:PORT"))?;
                (h, p)
            }
            None => rest
                .rsplit_once(':')
                .ok_or_else(|| bad("the port is missing"))?,
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("the port is not a number from 1 to 65535"))?;
        if host.is_empty() || host.contains(['/', '?', '#', '@']) {
            return Err(bad("expected HOST:PORT only, without a path"));
        }
        let tls = match scheme {
            "tcp" => {
                if tls.ca.is_some() || tls.client.is_some() {
                    return Err(SiemError::Config {
                        flag: "syslog-ca",
                        detail: format!(
                            "TLS files are given but `{url}` is plain TCP: use tls://{rest}"
                        ),
                    });
                }
                None
            }
            "tls" => {
                let name = ServerName::try_from(host.to_string())
                    .map_err(|_| bad("the host is not a valid DNS name or IP address"))?;
                Some((Arc::new(client_config(tls)?), name))
            }
            _ => return Err(bad("expected tcp:// or tls://")),
        };
        Ok(SyslogTarget {
            url: url.to_string(),
            host: host.to_string(),
            port,
            tls,
            hostname: header_field(hostname, 255),
            procid: std::process::id().to_string(),
        })
    }

    /// The target as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends every event, one message each, within `policy`'s deadline.
    /// Blocking.
    pub fn send(&self, events: &[Event], policy: RetryPolicy) -> Delivery {
        let messages: Result<Vec<Vec<u8>>, SiemError> = events
            .iter()
            .map(|e| message(e, &self.hostname, &self.procid).map(|m| frame(&m)))
            .collect();
        let mut backoff = Backoff::new(policy);
        let mut retried = Vec::new();
        let result = messages.and_then(|m| self.send_all(&m, &mut backoff, &mut retried));
        Delivery {
            output: "syslog",
            target: self.url.clone(),
            result,
            attempts: backoff.attempts,
            retried,
        }
    }

    fn send_all(
        &self,
        framed: &[Vec<u8>],
        backoff: &mut Backoff,
        retried: &mut Vec<String>,
    ) -> Result<usize, SiemError> {
        let mut next = 0;
        loop {
            backoff.attempt();
            let failed = match self.session(&framed[next..], backoff.attempt_timeout()) {
                Ok(()) => return Ok(framed.len()),
                Err(Failure { sent, why, retry }) => {
                    next += sent;
                    if !retry {
                        Err(why)
                    } else {
                        retried.push(why.clone());
                        backoff.wait(None).map_err(|d| format!("{why}; {d}"))
                    }
                }
            };
            if let Err(detail) = failed {
                return Err(SiemError::Delivery {
                    target: format!("syslog {}", self.url),
                    detail,
                    attempts: backoff.attempts,
                });
            }
        }
    }

    /// One connection: connect, TLS, write `framed`, close cleanly.
    fn session(&self, framed: &[Vec<u8>], timeout: Duration) -> Result<(), Failure> {
        let tcp = self.connect(timeout)?;
        let fail = |sent: usize| {
            move |e: std::io::Error| Failure {
                sent,
                retry: true,
                why: format!("sending failed: {e}"),
            }
        };
        match &self.tls {
            None => {
                let mut tcp = tcp;
                for (i, m) in framed.iter().enumerate() {
                    tcp.write_all(m).map_err(fail(i))?;
                }
                tcp.flush().map_err(fail(framed.len()))?;
                // Half-close, then wait for the receiver to close too: it
                // has read everything by then.
                let _ = tcp.shutdown(Shutdown::Write);
                wait_for_close(&mut tcp, timeout);
            }
            Some((config, name)) => {
                let conn =
                    rustls::ClientConnection::new(config.clone(), name.clone()).map_err(|e| {
                        Failure {
                            sent: 0,
                            retry: false,
                            why: format!("TLS setup: {e}"),
                        }
                    })?;
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                while tls.conn.is_handshaking() {
                    tls.conn
                        .complete_io(&mut tls.sock)
                        .map_err(|e| tls_failure(e, self.tls_hint()))?;
                }
                for (i, m) in framed.iter().enumerate() {
                    tls.write_all(m).map_err(fail(i))?;
                }
                tls.flush().map_err(fail(framed.len()))?;
                // close_notify (RFC 5425 §4.4) after a grace period (see
                // TLS_CLOSE_GRACE), then wait for the receiver to close
                // (see wait_for_close).
                std::thread::sleep(TLS_CLOSE_GRACE);
                tls.conn.send_close_notify();
                let _ = tls.conn.complete_io(&mut tls.sock);
                tls_wait_for_close(&mut tls, timeout).map_err(|e| Failure {
                    sent: 0,
                    retry: false,
                    why: format!(
                        "the receiver refused the TLS session ({e}): {}",
                        "if it requires a client certificate, give --syslog-cert and --syslog-key with one its CA signed"
                    ),
                })?;
            }
        }
        Ok(())
    }

    fn tls_hint(&self) -> &'static str {
        "is --syslog-ca the CA that signed the receiver's certificate, and does the certificate name the host of --syslog?"
    }

    fn connect(&self, timeout: Duration) -> Result<TcpStream, Failure> {
        let fail = |why: String| Failure {
            sent: 0,
            retry: true,
            why,
        };
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| fail(format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, timeout) {
                Ok(s) => {
                    let _ = s.set_write_timeout(Some(timeout));
                    let _ = s.set_read_timeout(Some(timeout));
                    let _ = s.set_nodelay(true);
                    return Ok(s);
                }
                Err(e) => last = Some(format!("cannot connect to {addr}: {e}")),
            }
        }
        Err(fail(last.unwrap_or_else(|| {
            format!("{} resolves to no address", self.host)
        })))
    }
}

/// Why a connection ended early.
struct Failure {
    /// Messages written before it failed (sending resumes after them).
    sent: usize,
    why: String,
    /// False for errors another attempt cannot fix (a rejected certificate).
    retry: bool,
}

/// Waits (`timeout` at most) for the receiver to close its side, reading
/// and dropping what it still sends (TLS session tickets, its
/// close_notify). Two reasons: the receiver closes only once it has read
/// everything, the closest TCP syslog comes to an acknowledgement; and a
/// socket closed with unread bytes in its receive buffer sends a reset,
/// which makes the receiver's kernel drop what the receiver has not read
/// yet (seen with rsyslog's TLS listener: a whole session's messages lost
/// now and then when the unread session tickets turned our close into a reset).
fn wait_for_close(tcp: &mut TcpStream, timeout: Duration) {
    let _ = tcp.set_read_timeout(Some(timeout));
    let mut buf = [0u8; 4096];
    // Bounded: a receiver that keeps sending cannot hold us beyond this.
    for _ in 0..256 {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// [`wait_for_close`] through TLS: what the receiver sends is decrypted, so
/// an alert it sent is seen. With TLS 1.3 the client's handshake ends
/// before the server has checked the client's certificate: a receiver that
/// refuses it (rsyslog `x509/certvalid` without `--syslog-cert`) says so
/// only with an alert after our messages, which it dropped.
fn tls_wait_for_close(
    tls: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    timeout: Duration,
) -> Result<(), rustls::Error> {
    let _ = tls.sock.set_read_timeout(Some(timeout));
    let mut plain = [0u8; 4096];
    for _ in 0..256 {
        match tls.conn.read_tls(&mut tls.sock) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let state = tls.conn.process_new_packets()?;
                if state.plaintext_bytes_to_read() > 0 {
                    let _ = tls.conn.reader().read(&mut plain);
                }
                if state.peer_has_closed() {
                    break;
                }
            }
        }
    }
    Ok(())
}

/// A TLS handshake error: a certificate problem is final, the rest is retried.
fn tls_failure(e: std::io::Error, hint: &str) -> Failure {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidCertificate(why)) => Failure {
            sent: 0,
            retry: false,
            why: format!("the receiver's TLS certificate was rejected ({why:?}): {hint}"),
        },
        Some(other) => Failure {
            sent: 0,
            retry: !matches!(other, rustls::Error::AlertReceived(_)),
            why: format!("TLS handshake failed: {other}"),
        },
        None => Failure {
            sent: 0,
            retry: true,
            why: format!("TLS handshake failed: {e}"),
        },
    }
}

/// The rustls client configuration of `files` (ring, as the rest of the tree).
fn client_config(files: &TlsFiles) -> Result<rustls::ClientConfig, SiemError> {
    let mut roots = rustls::RootCertStore::empty();
    match &files.ca {
        Some(path) => {
            for cert in read_certs("syslog-ca", path)? {
                roots.add(cert).map_err(|e| SiemError::File {
                    flag: "syslog-ca",
                    path: path.display().to_string(),
                    detail: format!("not a usable CA certificate: {e}"),
                })?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SiemError::Config {
            flag: "syslog",
            detail: format!("TLS setup: {e}"),
        })?
        .with_root_certificates(roots);
    match &files.client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = read_certs("syslog-cert", cert)?;
            let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| SiemError::File {
                flag: "syslog-key",
                path: key.display().to_string(),
                detail: format!("no PEM private key: {e}"),
            })?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| SiemError::File {
                    flag: "syslog-key",
                    path: key.display().to_string(),
                    detail: format!("does not go with --syslog-cert: {e}"),
                })
        }
    }
}

fn read_certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, SiemError> {
    let err = |detail: String| SiemError::File {
        flag,
        path: path.display().to_string(),
        detail,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| err(format!("cannot read PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(err(
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_string(),
        ));
    }
    Ok(certs)
}

/// `LEN SP MSG` (RFC 6587 §3.4.1; RFC 5425 §4.3 frames TLS the same way).
pub fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = format!("{} ", message.len()).into_bytes();
    out.extend_from_slice(message);
    out
}

/// One RFC 5424 message for `event`, at most [`MAX_MESSAGE`] bytes: when the
/// JSON would not fit, MSG is left out (the structured data still names the
/// host, rule and status), and structured-data values are cut shorter.
pub fn message(event: &Event, hostname: &str, procid: &str) -> Result<Vec<u8>, SiemError> {
    let head = format!(
        "<{}>1 {} {} {APP_NAME} {} {} ",
        u16::from(FACILITY) * 8 + u16::from(severity(event)),
        timestamp(event.time),
        header_field(hostname, 255),
        header_field(procid, 128),
        event.kind(),
    );
    let json = event.to_json()?;
    for cap in [256, 64, 16] {
        let sd = structured_data(event, cap);
        let mut msg = format!("{head}{sd}").into_bytes();
        if msg.len() + 3 + json.len() <= MAX_MESSAGE {
            msg.push(b' ');
            msg.extend_from_slice("\u{feff}".as_bytes());
            msg.extend_from_slice(json.as_bytes());
            return Ok(msg);
        }
        if msg.len() <= MAX_MESSAGE {
            return Ok(msg);
        }
    }
    // Unreachable with the bounded fields of an event; never send more than the limit.
    let sd = format!(
        "[{SD_ID} v=\"{}\" id=\"{}\"]",
        super::SCHEMA_VERSION,
        sd_value(&event.id, 64)
    );
    Ok(format!("{head}{sd}").into_bytes())
}

/// RFC 5424 TIMESTAMP: UTC, at most microseconds.
fn timestamp(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A header field: printable US-ASCII only, at most `max` characters, `-` when empty.
fn header_field(s: &str, max: usize) -> String {
    let f: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(max)
        .collect();
    if f.is_empty() {
        "-".to_string()
    } else {
        f
    }
}

/// Severity (RFC 5424 §6.2.1): what needs doing is a warning, a banned
/// product past its due date an error, good news a notice.
fn severity(event: &Event) -> u8 {
    const ERROR: u8 = 3;
    const WARNING: u8 = 4;
    const NOTICE: u8 = 5;
    const INFO: u8 = 6;
    match &event.body {
        EventBody::SweepSummary(s) if s.failing_findings > 0 || !s.complete => WARNING,
        EventBody::SweepSummary(_) => INFO,
        EventBody::Finding(f)
        | EventBody::StatusChange(super::StatusChangeEvent { finding: f, .. }) => {
            if f.fails && f.status == Status::Overdue {
                ERROR
            } else if f.fails {
                WARNING
            } else {
                NOTICE
            }
        }
    }
}

/// `[fleetsweep@32473 name="value" ...]` with every value cut to `cap` characters.
fn structured_data(event: &Event, cap: usize) -> String {
    let mut params: Vec<(&str, String)> = vec![
        ("v", super::SCHEMA_VERSION.to_string()),
        ("id", event.id.clone()),
        ("sweep", event.sweep_id.clone()),
    ];
    if let Some(s) = &event.shard {
        params.push(("shard", s.clone()));
    }
    match &event.body {
        EventBody::SweepSummary(s) => {
            let h = &s.summary.hosts;
            params.extend([
                ("complete", s.complete.to_string()),
                ("hosts", h.total.to_string()),
                ("scanned", h.scanned.to_string()),
                ("clean", h.clean.to_string()),
                ("affected", h.affected.to_string()),
                ("incomplete", h.incomplete.to_string()),
                (
                    "not_scanned",
                    (h.total.saturating_sub(h.scanned)).to_string(),
                ),
                ("failing", s.failing_findings.to_string()),
            ]);
        }
        EventBody::Finding(f)
        | EventBody::StatusChange(super::StatusChangeEvent { finding: f, .. }) => {
            if let EventBody::StatusChange(c) = &event.body {
                params.push(("from", c.from.map_or("none", Status::as_str).to_string()));
                params.push(("to", c.to.as_str().to_string()));
            }
            params.extend([
                ("host", f.host.name.clone()),
                ("address", f.host.address.clone()),
                ("rule", f.rule.clone()),
                ("vendor", f.vendor.clone()),
                ("product", f.product.clone()),
                ("policy", crate::formats::policy_str(f.policy).to_string()),
                ("state", crate::formats::state_str(f.state).to_string()),
                ("status", f.status.as_str().to_string()),
                ("fails", f.fails.to_string()),
                ("since", f.since.to_string()),
            ]);
            if let Some(v) = &f.version {
                params.push(("version", v.clone()));
            }
            if let Some(d) = f.due {
                params.push(("due", d.to_string()));
            }
        }
    }
    let mut sd = format!("[{SD_ID}");
    for (name, value) in params {
        sd.push(' ');
        sd.push_str(name);
        sd.push_str("=\"");
        sd.push_str(&sd_value(&value, cap));
        sd.push('"');
    }
    sd.push(']');
    sd
}

/// An SD-PARAM value: control and invisible characters shown as `\u{..}`
/// (one line, what the host sent stays readable), cut to `cap` characters,
/// then `"`, `\` and `]` escaped with a backslash (RFC 5424 §6.3.3).
pub fn sd_value(s: &str, cap: usize) -> String {
    let shown = truncate_chars(&visible(s), cap);
    let mut out = String::with_capacity(shown.len() + 8);
    for c in shown.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::siem::events;
    use crate::siem::tests::{finding, report};

    #[test]
    fn sd_values_escape_quote_backslash_and_bracket() {
        assert_eq!(sd_value(r#"a"b\c]d"#, 256), r#"a\"b\\c\]d"#);
        assert_eq!(sd_value("line1\nline2", 256), r"line1\\u{a}line2");
        assert_eq!(sd_value("x".repeat(300).as_str(), 10).chars().count(), 10);
    }

    #[test]
    fn a_finding_message_is_rfc5424() {
        let mut f = finding("kaspersky/kesl", Status::Overdue);
        f.version = Some("12\"]\\\n".into());
        let r = report(vec![f]);
        let ev = events(&r, &[]);
        let m = String::from_utf8(message(&ev[0], "scanner 01", "42").unwrap()).unwrap();
        assert!(
            m.starts_with(
                "<131>1 2026-12-03T10:01:00.123456Z scanner01 fleetsweep 42 finding [fleetsweep@32473 v=\"1\" id=\"s1/finding/web-01/kaspersky/kesl\" sweep=\"s1\" host=\"web-01\""
            ),
            "{m}"
        );
        assert!(m.contains(r#" version="12\"\]\\\\u{a}""#), "{m}");
        let (_, json) = m.split_once("] \u{feff}").unwrap();
        let back: Event = serde_json::from_str(json).unwrap();
        assert_eq!(back, ev[0]);
        // Summary: info when nothing fails.
        let clean = report(vec![]);
        let ev = events(&clean, &[]);
        let m = String::from_utf8(message(&ev[0], "", "1").unwrap()).unwrap();
        assert!(m.starts_with("<134>1 "), "{m}");
        assert!(
            m.contains(" - fleetsweep 1 sweep_summary [fleetsweep@32473 "),
            "{m}"
        );
    }

    /// The SD-PARAMs of the one SD element at the start of `sd`, read as RFC
    /// 5424 §6.3.3 says (a backslash escapes `"`, `\` and `]`), and what follows it.
    fn parse_sd(sd: &str) -> (Vec<(String, String)>, &str) {
        let rest = sd.strip_prefix(&format!("[{SD_ID}")).unwrap();
        let mut params = Vec::new();
        let mut chars = rest.char_indices().peekable();
        loop {
            match chars.next() {
                Some((i, ']')) => return (params, &rest[i + 1..]),
                Some((_, ' ')) => {}
                Some((start, _)) => {
                    let eq = rest[start..].find("=\"").unwrap() + start;
                    let name = rest[start..eq].to_string();
                    assert!(!name.contains([' ', ']', '"']), "{name}");
                    while chars.peek().is_some_and(|(i, _)| *i < eq + 2) {
                        chars.next();
                    }
                    let mut value = String::new();
                    loop {
                        match chars.next().unwrap() {
                            (_, '\\') => {
                                let (_, c) = chars.next().unwrap();
                                if !matches!(c, '"' | '\\' | ']') {
                                    value.push('\\');
                                }
                                value.push(c);
                            }
                            (_, '"') => break,
                            (_, ']') => panic!("unescaped ] in a value: {sd}"),
                            (_, c) => value.push(c),
                        }
                    }
                    params.push((name, value));
                }
                None => panic!("unterminated SD element: {sd}"),
            }
        }
    }

    #[test]
    fn hostile_strings_never_break_the_structured_data() {
        use rand::Rng;
        const ALPHABET: [char; 14] = [
            '"', '\\', ']', '[', '=', ' ', '\n', '\r', '\0', 'é', '\u{202e}', '\u{feff}', 'a',
            '\u{7f}',
        ];
        let mut rng = rand::rng();
        let mut hostile = |max: usize| -> String {
            let n = rng.random_range(0..max);
            (0..n)
                .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())])
                .collect()
        };
        for round in 0..300 {
            let max = if round % 10 == 0 { 2000 } else { 40 };
            let mut f = finding("kaspersky/kesl", Status::Open);
            f.version = Some(hostile(max));
            f.product = hostile(max);
            let mut r = report(vec![f]);
            r.hosts.to_mut()[0].name = hostile(max).into();
            let ev = events(&r, &[]);
            let m = message(&ev[0], &hostile(max), "1").unwrap();
            assert!(m.len() <= MAX_MESSAGE, "{}", m.len());
            let text = std::str::from_utf8(&m).unwrap();
            // HEADER: 6 space-separated printable fields before the SD.
            let mut head = text.splitn(7, ' ');
            for _ in 0..6 {
                let field = head.next().unwrap();
                assert!(
                    !field.is_empty() && field.chars().all(|c| c.is_ascii_graphic()),
                    "{text}"
                );
            }
            let (params, rest) = parse_sd(head.next().unwrap());
            let get = |k: &str| {
                params
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
                    .unwrap()
            };
            let f = ev[0].finding().unwrap();
            for (name, want) in [
                ("host", &f.host.name),
                ("product", &f.product),
                ("version", f.version.as_ref().unwrap()),
            ] {
                let got = get(name);
                assert!(!got.contains(['\n', '\r', '\0']), "{got:?}");
                // What was kept reads back as the visible form of what was sent.
                let shown = visible(want);
                let kept = got.trim_end_matches('…');
                assert!(shown.starts_with(kept), "{name}: {got:?} vs {shown:?}");
            }
            // MSG, when there, is the event's JSON.
            if let Some(json) = rest.strip_prefix(" \u{feff}") {
                let back: Event = serde_json::from_str(json).unwrap();
                assert_eq!(back, ev[0]);
            } else {
                assert_eq!(rest, "", "{text}");
            }
        }
    }

    #[test]
    fn messages_never_exceed_the_limit() {
        let mut f = finding("kaspersky/kesl", Status::New);
        f.evidence = (0..5)
            .map(|_| crate::report::Evidence {
                kind: "path".into(),
                source: None,
                value: "\u{1}]\"".repeat(1000),
            })
            .collect();
        f.product = "\u{7}".repeat(1000);
        f.version = Some("\\".repeat(1000));
        let r = report(vec![f]);
        let ev = events(&r, &[]);
        let m = message(&ev[0], "h", "1").unwrap();
        assert!(m.len() <= MAX_MESSAGE, "{}", m.len());
        assert!(std::str::from_utf8(&m).is_ok());
        assert_eq!(frame(b"abc"), b"3 abc");
    }

    #[test]
    fn targets_parse_or_say_what_is_wrong() {
        let t = SyslogTarget::new("tcp://127.0.0.1:514", &TlsFiles::default(), "h").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("127.0.0.1", 514));
        let t = SyslogTarget::new("tcp://[::1]:6514", &TlsFiles::default(), "h").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 6514));
        for (url, want) in [
            ("udp://h:514", "expected tcp:// or tls://"),
            ("h:514", "expected tcp:// or tls://"),
            ("tcp://h", "the port is missing"),
            ("tcp://h:0", "1 to 65535"),
            ("tcp://h:514/x", "not a number"),
        ] {
            let e = SyslogTarget::new(url, &TlsFiles::default(), "h")
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{url}: {e}");
        }
        let with_ca = TlsFiles {
            ca: Some("/nonexistent/ca.pem".into()),
            client: None,
        };
        let e = SyslogTarget::new("tcp://h:514", &with_ca, "h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("use tls://h:514"), "{e}");
        let e = SyslogTarget::new("tls://h:6514", &with_ca, "h")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--syslog-ca /nonexistent/ca.pem: cannot read PEM certificates"),
            "{e}"
        );
    }
}
