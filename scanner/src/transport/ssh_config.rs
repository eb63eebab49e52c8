//! A small reader for `~/.ssh/config`: the five settings a sweep needs.
//!
//! Operators already describe their fleet there (aliases, users, keys,
//! bastions), so the inventory can say `host: web1` and mean what `ssh web1`
//! means. Only `Host` blocks are understood, with OpenSSH's rule that the first
//! value obtained for a setting wins; `Match` blocks and `Include` are skipped
//! (with a debug log), as are settings we do not use.

use std::path::{Path, PathBuf};

/// A config file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshConfigError {
    #[error("cannot read ssh config {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{}:{line}: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// What `~/.ssh/config` says about one host alias (unset where it says nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfigHost {
    pub hostname: Option<String>,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// Every `IdentityFile` that applies, in file order, `~` and `%` tokens expanded.
    pub identity_files: Vec<PathBuf>,
    /// The raw `ProxyJump` value (may be `none`); parse with [`parse_jump_spec`].
    pub proxy_jump: Option<String>,
}

/// One `ProxyJump` hop: `[user@]host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// A setting we keep, with its already-validated value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Setting {
    HostName(String),
    User(String),
    Port(u16),
    IdentityFile(String),
    ProxyJump(String),
}

/// Which hosts a block applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selector {
    /// Settings before the first `Host`/`Match` line apply to every host.
    All,
    /// `Host a b !c`, patterns lower-cased.
    Host(Vec<String>),
    /// A `Match` block: not evaluated, never applies.
    Match,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    selector: Selector,
    settings: Vec<Setting>,
}

/// A parsed ssh config file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfig {
    blocks: Vec<Block>,
    /// Home directory for `~` and `%d` (taken once, at load).
    home: Option<PathBuf>,
}

/// Reads an ssh config file. A missing file is an empty config: most machines
/// have no `~/.ssh/config`.
pub fn load(path: &Path) -> Result<SshConfig, SshConfigError> {
    match std::fs::read(path) {
        Ok(bytes) => parse(&String::from_utf8_lossy(&bytes), path, dirs::home_dir()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SshConfig {
            blocks: Vec::new(),
            home: dirs::home_dir(),
        }),
        Err(e) => Err(SshConfigError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// Parses config text; `path` is only used in error messages, `home` expands `~`.
pub fn parse(text: &str, path: &Path, home: Option<PathBuf>) -> Result<SshConfig, SshConfigError> {
    let mut blocks = vec![Block {
        selector: Selector::All,
        settings: Vec::new(),
    }];
    for (number, raw) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
        let syntax = |message: String| SshConfigError::Syntax {
            path: path.to_path_buf(),
            line: number,
            message,
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (keyword, rest) = split_keyword(line);
        let args = split_args(rest).map_err(syntax)?;
        let keyword = keyword.to_ascii_lowercase();
        let first = || {
            args.first()
                .cloned()
                .ok_or_else(|| syntax(format!("{keyword} needs a value")))
        };
        let setting = match keyword.as_str() {
            "host" => {
                if args.is_empty() {
                    return Err(syntax("Host needs at least one pattern".into()));
                }
                let patterns = args.iter().map(|a| a.to_ascii_lowercase()).collect();
                blocks.push(Block {
                    selector: Selector::Host(patterns),
                    settings: Vec::new(),
                });
                continue;
            }
            "match" => {
                tracing::debug!(file = %path.display(), line = number, "ssh config: Match blocks are not evaluated; ignored");
                blocks.push(Block {
                    selector: Selector::Match,
                    settings: Vec::new(),
                });
                continue;
            }
            "include" => {
                tracing::debug!(file = %path.display(), line = number, "ssh config: Include is not supported; ignored");
                continue;
            }
            "hostname" => Setting::HostName(first()?),
            "user" => Setting::User(first()?),
            "port" => {
                let value = first()?;
                match value.parse::<u16>() {
                    Ok(port) if port > 0 => Setting::Port(port),
                    _ => return Err(syntax(format!("bad Port {value:?}: expected 1-65535"))),
                }
            }
            "identityfile" => Setting::IdentityFile(first()?),
            "proxyjump" => {
                let value = first()?;
                parse_jump_spec(&value).map_err(|e| syntax(format!("bad ProxyJump: {e}")))?;
                Setting::ProxyJump(value)
            }
            _ => continue,
        };
        if let Some(block) = blocks.last_mut() {
            block.settings.push(setting);
        }
    }
    Ok(SshConfig { blocks, home })
}

impl SshConfig {
    /// What applies to `host_alias` (as written in the inventory), first value wins.
    pub fn lookup(&self, host_alias: &str) -> SshConfigHost {
        let alias = host_alias.to_ascii_lowercase();
        let mut found = SshConfigHost::default();
        let mut identities: Vec<String> = Vec::new();
        for block in &self.blocks {
            let applies = match &block.selector {
                Selector::All => true,
                Selector::Host(patterns) => host_matches(&alias, patterns),
                Selector::Match => false,
            };
            if !applies {
                continue;
            }
            for setting in &block.settings {
                match setting {
                    Setting::HostName(v) => {
                        found
                            .hostname
                            .get_or_insert_with(|| expand_hostname(v, host_alias));
                    }
                    Setting::User(v) => {
                        found.user.get_or_insert_with(|| v.clone());
                    }
                    Setting::Port(p) => {
                        found.port.get_or_insert(*p);
                    }
                    Setting::IdentityFile(v) => identities.push(v.clone()),
                    Setting::ProxyJump(v) => {
                        found.proxy_jump.get_or_insert_with(|| v.clone());
                    }
                }
            }
        }
        let hostname = found
            .hostname
            .clone()
            .unwrap_or_else(|| host_alias.to_string());
        found.identity_files = identities
            .iter()
            .map(|raw| self.expand_identity(raw, &hostname, &found))
            .collect();
        found
    }

    /// `~`, `%d` (home), `%h` (host name), `%p` (port), `%r` (remote user),
    /// `%u` (local user), `%%`.
    fn expand_identity(&self, raw: &str, hostname: &str, found: &SshConfigHost) -> PathBuf {
        let home = self.home.as_ref().map(|h| h.display().to_string());
        let mut out = String::new();
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('h') => out.push_str(hostname),
                Some('p') => out.push_str(&found.port.unwrap_or(22).to_string()),
                Some('r') => out.push_str(found.user.as_deref().unwrap_or(&local_user())),
                Some('u') => out.push_str(&local_user()),
                Some('d') => match &home {
                    Some(home) => out.push_str(home),
                    None => out.push_str("%d"),
                },
                Some(other) => {
                    tracing::debug!(token = %format!("%{other}"), "ssh config: unsupported IdentityFile token kept as is");
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        match (&self.home, out.strip_prefix("~/")) {
            (Some(home), Some(rest)) => home.join(rest),
            (Some(home), None) if out == "~" => home.clone(),
            _ => PathBuf::from(out),
        }
    }
}

/// Parses a `ProxyJump` value: `none`, or a comma list of `[user@]host[:port]`
/// (also `ssh://[user@]host[:port]`, and `[v6addr]:port`).
pub fn parse_jump_spec(s: &str) -> Result<Vec<JumpSpec>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    if s.is_empty() {
        return Err("empty ProxyJump".into());
    }
    s.split(',').map(parse_one_jump).collect()
}

fn parse_one_jump(hop: &str) -> Result<JumpSpec, String> {
    let hop = hop.trim();
    let body = hop.strip_prefix("ssh://").unwrap_or(hop);
    let body = body.strip_suffix('/').unwrap_or(body);
    if body.is_empty() {
        return Err(format!("empty hop in {hop:?}"));
    }
    let (user, host_port) = match body.rsplit_once('@') {
        Some((user, rest)) if !user.is_empty() => (Some(user.to_string()), rest),
        Some(_) => return Err(format!("empty user name in {hop:?}")),
        None => (None, body),
    };
    let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("unclosed '[' in {hop:?}"))?;
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(format!("unexpected {after:?} after ']' in {hop:?}")),
            },
        }
    } else if host_port.matches(':').count() > 1 {
        // A bare IPv6 address without a port.
        (host_port, None)
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() {
        return Err(format!("no host in {hop:?}"));
    }
    if host.chars().any(|c| c.is_whitespace() || c == '/') {
        return Err(format!("bad host name {host:?}"));
    }
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(port) if port > 0 => Some(port),
            _ => return Err(format!("bad port {p:?} in {hop:?}")),
        },
    };
    Ok(JumpSpec {
        user,
        host: host.to_string(),
        port,
    })
}

/// OpenSSH `Host` matching: some pattern matches and no negated one does.
fn host_matches(alias: &str, patterns: &[String]) -> bool {
    let mut positive = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if super::known_hosts::glob_match(negated, alias) => return false,
            Some(_) => {}
            None if super::known_hosts::glob_match(pattern, alias) => positive = true,
            None => {}
        }
    }
    positive
}

/// `HostName` may use `%h` (the alias) and `%%`.
fn expand_hostname(value: &str, alias: &str) -> String {
    value
        .replace("%%", "\u{0}")
        .replace("%h", alias)
        .replace('\u{0}', "%")
}

fn local_user() -> String {
    std::env::var("USER").unwrap_or_default()
}

/// `Keyword value`, `Keyword=value` and `Keyword = value` are all valid.
fn split_keyword(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (keyword, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest);
    (keyword, rest.trim())
}

/// Splits arguments on blanks, honouring double quotes; a `#` outside quotes
/// starts a comment.
fn split_args(rest: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut has_token = false;
    for c in rest.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                has_token = true;
            }
            '#' if !in_quotes && !has_token => break,
            c if c.is_whitespace() && !in_quotes => {
                if has_token {
                    args.push(std::mem::take(&mut current));
                    has_token = false;
                }
            }
            c => {
                current.push(c);
                has_token = true;
            }
        }
    }
    if in_quotes {
        return Err("unterminated quote".into());
    }
    if has_token {
        args.push(current);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> SshConfig {
        match parse(text, Path::new("cfg"), Some(PathBuf::from("/home/op"))) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    const SAMPLE: &str = r#"
# global defaults come first in most files, but apply only where unset
User ops

Host web? !web9
    HostName %h.corp.example
    Port 2201
    IdentityFile ~/.ssh/web_%h

Host web*
    Port 2202
    User webadmin
    IdentityFile "/keys/with space/id"

Host db1 db2
    hostname=10.0.0.7
    ProxyJump jump@bastion:2222,inner

Match host db1
    User ignored

Host *
    IdentityFile %d/.ssh/id_ed25519
    Port 22
    ProxyJump none
"#;

    #[test]
    fn first_value_wins_and_identity_files_accumulate() {
        let c = config(SAMPLE);
        let web1 = c.lookup("web1");
        assert_eq!(web1.hostname.as_deref(), Some("web1.corp.example"));
        assert_eq!(web1.user.as_deref(), Some("ops"));
        assert_eq!(web1.port, Some(2201));
        assert_eq!(
            web1.identity_files,
            vec![
                PathBuf::from("/home/op/.ssh/web_web1.corp.example"),
                PathBuf::from("/keys/with space/id"),
                PathBuf::from("/home/op/.ssh/id_ed25519"),
            ]
        );
        assert_eq!(web1.proxy_jump.as_deref(), Some("none"));
    }

    #[test]
    fn negated_patterns_exclude() {
        let web9 = config(SAMPLE).lookup("web9");
        assert_eq!(web9.hostname, None);
        assert_eq!(web9.port, Some(2202));
        // `web12` does not match `web?`.
        assert_eq!(config(SAMPLE).lookup("web12").port, Some(2202));
    }

    #[test]
    fn match_blocks_are_ignored_and_equals_syntax_works() {
        let db1 = config(SAMPLE).lookup("DB1");
        assert_eq!(db1.hostname.as_deref(), Some("10.0.0.7"));
        assert_eq!(db1.user.as_deref(), Some("ops"));
        assert_eq!(db1.proxy_jump.as_deref(), Some("jump@bastion:2222,inner"));
        assert_eq!(db1.port, Some(22));
    }

    #[test]
    fn unmatched_alias_gets_only_global_and_star() {
        let other = config(SAMPLE).lookup("zzz");
        assert_eq!(
            other,
            SshConfigHost {
                hostname: None,
                user: Some("ops".into()),
                port: Some(22),
                identity_files: vec![PathBuf::from("/home/op/.ssh/id_ed25519")],
                proxy_jump: Some("none".into()),
            }
        );
        assert_eq!(SshConfig::default().lookup("x"), SshConfigHost::default());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let cases = [
            ("Host a\n  Port nope\n", 2, "bad Port"),
            ("Host\n", 1, "Host needs at least one pattern"),
            ("User\n", 1, "user needs a value"),
            ("ProxyJump a:0\n", 1, "bad ProxyJump"),
            ("IdentityFile \"open\n", 1, "unterminated quote"),
        ];
        for (text, line, needle) in cases {
            match parse(text, Path::new("cfg"), None) {
                Err(SshConfigError::Syntax {
                    line: l, message, ..
                }) => {
                    assert_eq!(l, line, "{text:?}");
                    assert!(message.contains(needle), "{text:?}: {message}");
                }
                other => panic!("{text:?}: expected a syntax error, got {other:?}"),
            }
        }
    }

    #[test]
    fn missing_file_is_empty() {
        let c = load(Path::new("/nonexistent/ssh_config"));
        assert!(matches!(c, Ok(ref c) if c.blocks.is_empty()), "{c:?}");
    }

    #[test]
    fn jump_specs() {
        let spec = |user: Option<&str>, host: &str, port: Option<u16>| JumpSpec {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        };
        let ok = [
            ("none", vec![]),
            ("NONE", vec![]),
            ("bastion", vec![spec(None, "bastion", None)]),
            (
                "user@bastion:2222,other",
                vec![
                    spec(Some("user"), "bastion", Some(2222)),
                    spec(None, "other", None),
                ],
            ),
            ("ssh://u@h:2200", vec![spec(Some("u"), "h", Some(2200))]),
            ("[::1]:2222", vec![spec(None, "::1", Some(2222))]),
            ("a@b@host", vec![spec(Some("a@b"), "host", None)]),
            ("fe80::1", vec![spec(None, "fe80::1", None)]),
        ];
        for (input, want) in ok {
            assert_eq!(parse_jump_spec(input), Ok(want), "{input}");
        }
        for bad in [
            "",
            "host:",
            "host:99999",
            "@host",
            "user@",
            "a,,b",
            "[::1",
            "[::1]x",
            "h:0",
        ] {
            assert!(parse_jump_spec(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn args_and_comments() {
        assert_eq!(
            split_args("a \"b c\" d"),
            Ok(vec!["a".into(), "b c".into(), "d".into()])
        );
        assert_eq!(split_args("a # comment"), Ok(vec!["a".into()]));
        assert_eq!(split_keyword("Port=22"), ("Port", "22"));
        assert_eq!(split_keyword("Port = 22"), ("Port", "22"));
        assert_eq!(split_keyword("Port 22"), ("Port", "22"));
    }
}
