//! `--state postgresql://...`: the URL, completed from the libpq environment
//! (`PGUSER`, `PGHOST`, `PGPORT`, `PGDATABASE`, `PGPASSWORD`, `PGPASSFILE`
//! or `~/.pgpass`, `PGSSLMODE`, `PGSSLROOTCERT`) the way `psql` completes it,
//! so the same settings work for both. The password is never part of what
//! is shown ([`PgTarget`]'s `Display`, every error).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_postgres::config::Host;

use crate::state::StateError;

/// What `sslmode` asks for (libpq's meanings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, else plain; the certificate is not checked.
    Prefer,
    /// TLS or no connection; the certificate is not checked.
    Require,
    /// TLS, and the server's certificate must chain to `sslrootcert`.
    VerifyCa,
    /// As verify-ca, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Option<SslMode> {
        Some(match text {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// Where the CA certificates of verify-ca/verify-full come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file (`sslrootcert=FILE`, `PGSSLROOTCERT`, `~/.postgresql/root.crt`).
    File(PathBuf),
    /// The operating system's CA store (`sslrootcert=system`).
    System,
}

/// A PostgreSQL state store: connection settings, TLS, and the URL as shown.
#[derive(Clone)]
pub struct PgTarget {
    /// Everything tokio-postgres connects with, except a password from
    /// the environment or a passfile (read at connect time).
    pub(super) config: tokio_postgres::Config,
    pub(super) ssl: SslMode,
    pub(super) root_cert: RootCert,
    /// `postgresql://USER@HOST:PORT/DB`: never the password.
    shown: String,
}

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgTarget({})", self.shown)
    }
}

/// True when `--state` names a PostgreSQL database rather than a file.
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgresql://") || text.starts_with("postgres://")
}

/// `url` without the password of its user-info part (`user:pw@` → `user@`)
/// or of a `password=` parameter: safe to show.
pub fn redact(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            format!("{user}@{hosts}")
        }
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .map(|p| {
                    if p.starts_with("password=") {
                        "password=REDACTED"
                    } else {
                        p
                    }
                })
                .collect();
            format!("{path}?{}", kept.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

impl PgTarget {
    /// Parses `url` and completes it from the environment; connects to nothing.
    pub fn parse(url: &str) -> Result<PgTarget, StateError> {
        PgTarget::parse_with(url, &|k| std::env::var(k).ok())
    }

    /// [`PgTarget::parse`] with `env` standing for the environment.
    pub(crate) fn parse_with(
        url: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<PgTarget, StateError> {
        let shown_raw = redact(url);
        let err = |detail: String| StateError::Url {
            url: shown_raw.clone(),
            detail,
        };
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut kept = Vec::new();
        let mut ssl = None;
        let mut root = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(err(format!(
                    "`{pair}` in the query needs a value (`{pair}=...`)"
                )));
            };
            let value = percent_encoding::percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| err(format!("`{key}` is not UTF-8 once decoded")))?
                .into_owned();
            match key {
                "sslmode" => {
                    ssl = Some(SslMode::parse(&value).ok_or_else(|| {
                        err(format!(
                            "sslmode `{value}` is not one of disable, prefer, require, verify-ca, verify-full"
                        ))
                    })?)
                }
                "sslrootcert" => root = Some(value),
                "sslcert" | "sslkey" | "sslpassword" => {
                    return Err(err(format!(
                        "`{key}`: client certificates are not supported; authenticate with a password \
                         (PGPASSWORD, PGPASSFILE or ~/.pgpass)"
                    )))
                }
                _ => kept.push(pair),
            }
        }
        let rebuilt = if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        };
        let mut config: tokio_postgres::Config = rebuilt.parse().map_err(|e| {
            err(format!(
                "not a PostgreSQL URL ({}); expected postgresql://USER@HOST:PORT/DATABASE?sslmode=MODE",
                chain(&e)
            ))
        })?;
        // libpq's defaults, from the environment first.
        if config.get_user().is_none() {
            let user = env("PGUSER").or_else(os_user).ok_or_else(|| {
                err("no user: give one in the URL (postgresql://USER@HOST/DB) or in PGUSER".into())
            })?;
            config.user(user);
        }
        if config.get_hosts().is_empty() {
            let host = env("PGHOST").unwrap_or_else(|| "localhost".into());
            if host.starts_with('/') {
                config.host_path(host);
            } else {
                config.host(host);
            }
        }
        if config.get_ports().is_empty() {
            let port = match env("PGPORT") {
                Some(p) => p
                    .parse::<u16>()
                    .map_err(|_| err(format!("PGPORT `{p}` is not a port number")))?,
                None => 5432,
            };
            config.port(port);
        }
        if config.get_dbname().is_none() {
            let db = env("PGDATABASE")
                .or_else(|| config.get_user().map(str::to_string))
                .unwrap_or_default();
            config.dbname(db);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("fleetsweep");
        let ssl = match ssl {
            Some(s) => s,
            None => match env("PGSSLMODE") {
                Some(v) => SslMode::parse(&v).ok_or_else(|| {
                    err(format!(
                        "PGSSLMODE `{v}` is not one of disable, prefer, require, verify-ca, verify-full"
                    ))
                })?,
                None => SslMode::Prefer,
            },
        };
        let root_cert = match root.or_else(|| env("PGSSLROOTCERT")) {
            Some(s) if s == "system" => RootCert::System,
            Some(s) => RootCert::File(PathBuf::from(s)),
            None => RootCert::File(
                env("HOME")
                    .map(PathBuf::from)
                    .or_else(dirs::home_dir)
                    .unwrap_or_default()
                    .join(".postgresql/root.crt"),
            ),
        };
        let shown = format!(
            "postgresql://{}@{}/{}",
            config.get_user().unwrap_or_default(),
            host_port(&config),
            config.get_dbname().unwrap_or_default()
        );
        Ok(PgTarget {
            config,
            ssl,
            root_cert,
            shown,
        })
    }

    /// The password: the URL's, else `PGPASSWORD`, else the first matching
    /// line of the passfile (`PGPASSFILE`, else `~/.pgpass`), else none.
    pub(super) fn password(&self) -> Option<Vec<u8>> {
        if let Some(p) = self.config.get_password() {
            return Some(p.to_vec());
        }
        if let Ok(p) = std::env::var("PGPASSWORD") {
            return Some(p.into_bytes());
        }
        let file = std::env::var_os("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| dirs::home_dir().map(|h| h.join(".pgpass")))?;
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            // libpq matches a Unix socket against `localhost`.
            _ => "localhost".to_string(),
        };
        let port = self
            .config
            .get_ports()
            .first()
            .copied()
            .unwrap_or(5432)
            .to_string();
        passfile_lookup(
            &file,
            [
                host.as_str(),
                &port,
                self.config.get_dbname().unwrap_or_default(),
                self.config.get_user().unwrap_or_default(),
            ],
        )
        .map(String::into_bytes)
    }
}

/// `HOST:PORT` (or the socket directory) of the first host.
fn host_port(config: &tokio_postgres::Config) -> String {
    let port = config.get_ports().first().copied().unwrap_or(5432);
    match config.get_hosts().first() {
        Some(Host::Tcp(h)) if h.contains(':') => format!("[{h}]:{port}"),
        Some(Host::Tcp(h)) => format!("{h}:{port}"),
        Some(Host::Unix(p)) => format!("{}:{port}", p.display()),
        None => format!("localhost:{port}"),
    }
}

/// The name of the user this process runs as.
fn os_user() -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The password of the first passfile line matching `want` (host, port,
/// database, user; `*` matches anything; `\:` and `\\` escape), as libpq
/// reads it. A file readable by group or others is ignored with a warning,
/// as libpq does.
pub(crate) fn passfile_lookup(file: &Path, want: [&str; 4]) -> Option<String> {
    let meta = std::fs::metadata(file).ok()?;
    if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
        tracing::warn!(
            "password file {} has group or world access; it is ignored (chmod 0600 it)",
            file.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_passfile_line(line);
        if fields.len() < 5 {
            continue;
        }
        if fields
            .iter()
            .zip(want)
            .all(|(f, w)| f == "*" || f.as_str() == w)
        {
            return fields.into_iter().nth(4);
        }
    }
    None
}

/// The `:`-separated fields of a passfile line, `\` escaping the next character.
fn split_passfile_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(n), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(n);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

/// An error and its sources on one line.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !s.ends_with(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redact("postgresql://scan:s3cret@db.example:5433/fleet?sslmode=require&password=x"),
            "postgresql://scan@db.example:5433/fleet?sslmode=require&password=REDACTED"
        );
        assert_eq!(redact("postgres://db/fleet"), "postgres://db/fleet");
        let t = PgTarget::parse_with(
            "postgresql://scan:s3cret@db.example:5433/fleet?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            &env(&[]),
        )
        .unwrap();
        assert_eq!(t.to_string(), "postgresql://scan@db.example:5433/fleet");
        assert_eq!(t.ssl, SslMode::VerifyFull);
        assert_eq!(t.root_cert, RootCert::File("/etc/ca.pem".into()));
        assert_eq!(t.password(), Some(b"s3cret".to_vec()));
        assert!(!format!("{t:?}").contains("s3cret"));
    }

    #[test]
    fn the_libpq_environment_fills_what_the_url_leaves_out() {
        let t = PgTarget::parse_with(
            "postgres://",
            &env(&[
                ("PGUSER", "u"),
                ("PGHOST", "h"),
                ("PGPORT", "6000"),
                ("PGDATABASE", "d"),
                ("PGSSLMODE", "require"),
                ("PGSSLROOTCERT", "system"),
            ]),
        )
        .unwrap();
        assert_eq!(t.to_string(), "postgresql://u@h:6000/d");
        assert_eq!((t.ssl, t.root_cert), (SslMode::Require, RootCert::System));
        let t = PgTarget::parse_with("postgresql://u@h/d", &env(&[("HOME", "/home/x")])).unwrap();
        assert_eq!(t.ssl, SslMode::Prefer);
        assert_eq!(
            t.root_cert,
            RootCert::File("/home/x/.postgresql/root.crt".into())
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong_without_the_password() {
        for (url, want) in [
            (
                "postgresql://u:pw@h/d?sslmode=verify",
                "--state postgresql://u@h/d?sslmode=verify: sslmode `verify` is not one of",
            ),
            (
                "postgresql://u:pw@h:notaport/d",
                "--state postgresql://u@h:notaport/d: not a PostgreSQL URL",
            ),
            (
                "postgresql://u:pw@h/d?sslcert=c.pem",
                "client certificates are not supported",
            ),
            ("postgresql://u:pw@h/d?bogus=1", "unknown option `bogus`"),
        ] {
            let e = PgTarget::parse_with(url, &env(&[]))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains("pw"), "{url}: {e}");
        }
    }

    #[test]
    fn passfile_lines_match_like_libpq() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pgpass");
        std::fs::write(
            &f,
            "# comment\nother:5432:*:*:no\nh:5432:d:u:pa\\:ss\\\\w\n*:*:*:*:fallback\n",
        )
        .unwrap();
        let mode = |m| {
            std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(m)).unwrap()
        };
        mode(0o600);
        assert_eq!(
            passfile_lookup(&f, ["h", "5432", "d", "u"]).as_deref(),
            Some("pa:ss\\w")
        );
        assert_eq!(
            passfile_lookup(&f, ["h", "5433", "d", "u"]).as_deref(),
            Some("fallback")
        );
        mode(0o644);
        assert_eq!(passfile_lookup(&f, ["h", "5432", "d", "u"]), None);
    }
}
