//! A reader for OpenSSH client config (`~/.ssh/config`): the settings a sweep needs.
//!
//! Operators already describe their fleet there (aliases, users, keys,
//! bastions), so the inventory can say `host: web1` and mean what `ssh web1`
//! means. We follow `ssh -G` (OpenSSH 9) for what we read, and the tests compare
//! against it:
//!
//! - `HostName`, `User`, `Port`, `IdentityFile`, `ProxyJump`; the first value
//!   obtained wins, `IdentityFile`s accumulate (duplicates dropped). Other
//!   keywords are skipped.
//! - `Host` patterns match what was typed (case-sensitively, as OpenSSH does).
//! - `Include` (several arguments, glob patterns, `~`, paths relative to
//!   `~/.ssh` for a user file or `/etc/ssh` for a system file, files in sorted
//!   order, hidden files only when named, missing files ignored, nesting at most
//!   16 deep). Inside a `Host`/`Match` block an Include applies only when the
//!   block does, and a `Host`/`Match` inside the included file does not leak
//!   out of it. Included files writable by others are refused, as OpenSSH does.
//! - `Match` with `all`, `host`, `originalhost`, `user`, `localuser`,
//!   `canonical`, `final`, `!` negation and comma pattern lists, criteria ANDed.
//!   `Match host` sees the target as rewritten so far by `HostName` (`%h`
//!   expanded); `originalhost` sees what was typed; `user` sees the `User`
//!   obtained so far (else the local user).
//! - `Match canonical`/`final`: as OpenSSH, a second ("final") pass over the
//!   files runs when a `Match final` was seen or `CanonicalizeHostname` is on;
//!   in it `Host` lines see the rewritten, lower-cased target and values still
//!   unset can be filled. We never resolve names, so the target is what
//!   `HostName` gave, not what `CanonicalDomains` + DNS would give.
//! - `Match exec` is refused (we never run commands from a config file), as are
//!   criteria we do not evaluate (`localnetwork`, `tagged`, ...) and unknown ones.
//!
//! Config files are untrusted input: every file is read up to a size bound, the
//! number of files one config may pull in is bounded, and errors name the file,
//! line and column.

use std::path::{Path, PathBuf};

/// How deep `Include`s may nest: OpenSSH's `READCONF_MAX_DEPTH`.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Files one config may read in all, Includes counted: bounds fan-out × depth.
const MAX_FILES: usize = 256;
/// Bytes read from one file: a few kilobytes by hand, some 6 MB when a tool
/// writes a `Host` block for each of 100,000 hosts.
const MAX_FILE_BYTES: u64 = 16 << 20;
/// Path components of one Include pattern that may hold a wildcard.
const MAX_WILDCARD_COMPONENTS: usize = 2;
/// Bytes read from all files of one config, Includes counted.
const MAX_TOTAL_BYTES: usize = 32 << 20;
/// OpenSSH's `SSH_MAX_IDENTITY_FILES`.
const MAX_IDENTITY_FILES: usize = 100;

/// A config file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SshConfigError {
    #[error("cannot read ssh config {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("{}:{}: {message}", path.display(), position(*line, *column))]
    Syntax {
        path: PathBuf,
        line: usize,
        /// 1-based, in characters, where one argument is at fault.
        column: Option<usize>,
        message: String,
    },
}

fn position(line: usize, column: Option<usize>) -> String {
    match column {
        Some(c) => format!("{line}:{c}"),
        None => line.to_string(),
    }
}

/// Whose config a file is: decides where a relative `Include` points and
/// whether `~` may be used in it (OpenSSH refuses `~` in a system file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConfigKind {
    /// `~/.ssh/config` or a file given with `-F`: relative Includes are under `~/.ssh`.
    #[default]
    User,
    /// `/etc/ssh/ssh_config`: relative Includes are under `/etc/ssh`.
    System,
}

/// What the ssh config says about one host alias (unset where it says nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfigHost {
    /// The target after `HostName` (`%h` expanded, lower-cased as ssh does).
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
    /// Only whether it is on: it makes OpenSSH run the final pass.
    CanonicalizeHostname(bool),
}

/// One `Match` criterion, possibly negated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Criterion {
    negated: bool,
    test: Test,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Test {
    All,
    Canonical,
    Final,
    /// Comma pattern lists, as written.
    Host(String),
    OriginalHost(String),
    User(String),
    LocalUser(String),
}

/// One line that matters, in file order; an Include holds its files' lines.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// `Host a b !c`: starts a block applying when the target matches.
    Host(Vec<String>),
    /// `Match ...`: starts a block applying when every criterion holds.
    Match(Vec<Criterion>),
    Setting(Setting),
    /// The files one `Include` line expanded to, in order, each parsed.
    Include(Vec<Vec<Item>>),
}

/// A parsed ssh config file with everything it includes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SshConfig {
    items: Vec<Item>,
    /// Which top-level blocks a name can be in, so a lookup does not walk
    /// every block of a config with one `Host` block per host.
    blocks: BlockIndex,
    /// Home directory for `~` and `%d` (taken once, at load).
    home: Option<PathBuf>,
    /// The local account's name, for `%u`, `Match localuser` and the default user.
    local_user: String,
}

/// Reads an ssh config file as a user config (what `ssh -F FILE` does). A
/// missing file is an empty config: most machines have no `~/.ssh/config`.
pub fn load(path: &Path) -> Result<SshConfig, SshConfigError> {
    load_with(path, dirs::home_dir(), ConfigKind::User)
}

/// [`load`] with the home directory (for `~`, `%d`, relative user Includes) and
/// the kind of file given.
pub fn load_with(
    path: &Path,
    home: Option<PathBuf>,
    kind: ConfigKind,
) -> Result<SshConfig, SshConfigError> {
    let text = match read_bounded(path) {
        Ok(Some(text)) => text,
        Ok(None) => String::new(),
        Err(reason) => {
            return Err(SshConfigError::Unreadable {
                path: path.to_path_buf(),
                reason,
            })
        }
    };
    parse_as(&text, path, home, kind)
}

/// Parses config text as a user config; `path` names it in errors, `home`
/// expands `~`. Includes are read from disk.
pub fn parse(text: &str, path: &Path, home: Option<PathBuf>) -> Result<SshConfig, SshConfigError> {
    parse_as(text, path, home, ConfigKind::User)
}

fn parse_as(
    text: &str,
    path: &Path,
    home: Option<PathBuf>,
    kind: ConfigKind,
) -> Result<SshConfig, SshConfigError> {
    let mut reader = Reader {
        home: home.as_deref(),
        kind,
        files_read: 1,
        bytes_read: text.len(),
    };
    let items = reader.parse_file(text, path, 0)?;
    Ok(SshConfig {
        blocks: BlockIndex::build(&items),
        items,
        home,
        local_user: local_user(),
    })
}

/// `Ok(None)` when the file does not exist; directories read as empty, as in ssh.
fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Ok(Some(String::new()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "larger than {MAX_FILE_BYTES} bytes (16 MiB), far more than one `Host` block for each of 100,000 hosts"
        ));
    }
    Ok(Some(crate::diag::text_lossy(bytes)))
}

/// Parse state shared by a file and everything it includes.
struct Reader<'a> {
    home: Option<&'a Path>,
    kind: ConfigKind,
    /// Files read so far, the top one included (bounded by [`MAX_FILES`]).
    files_read: usize,
    /// Bytes read so far, the top file included (bounded by [`MAX_TOTAL_BYTES`]).
    bytes_read: usize,
}

/// Where in a file a line is, for errors.
struct At<'a> {
    path: &'a Path,
    line: usize,
    raw: &'a str,
}

impl At<'_> {
    fn error(&self, column: Option<usize>, message: impl Into<String>) -> SshConfigError {
        SshConfigError::Syntax {
            path: self.path.to_path_buf(),
            line: self.line,
            column,
            message: message.into(),
        }
    }

    /// The 1-based character column of byte `offset` in the line.
    fn column(&self, offset: usize) -> Option<usize> {
        self.raw
            .get(..offset)
            .map(|before| before.chars().count() + 1)
    }
}

impl Reader<'_> {
    fn parse_file(
        &mut self,
        text: &str,
        path: &Path,
        depth: usize,
    ) -> Result<Vec<Item>, SshConfigError> {
        let mut items = Vec::new();
        for (number, raw) in text.lines().enumerate().map(|(i, l)| (i + 1, l)) {
            let at = At {
                path,
                line: number,
                raw,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_keyword(line);
            // `rest` is a suffix of the trimmed line, so this is its offset in `raw`.
            let rest_offset = (raw.len() - raw.trim_start().len()) + (line.len() - rest.len());
            let args = split_args(rest)
                .map_err(|m| at.error(None, m))?
                .into_iter()
                .map(|(offset, arg)| (rest_offset + offset, arg))
                .collect::<Vec<_>>();
            let keyword = keyword.to_ascii_lowercase();
            let first = || {
                args.first()
                    .map(|(_, a)| a.clone())
                    .ok_or_else(|| at.error(None, format!("{keyword} needs a value")))
            };
            let item = match keyword.as_str() {
                "host" => {
                    if args.is_empty() {
                        return Err(at.error(None, "Host needs at least one pattern"));
                    }
                    Item::Host(args.into_iter().map(|(_, a)| a).collect())
                }
                "match" => Item::Match(parse_match(&at, &args)?),
                "include" => {
                    if args.is_empty() {
                        return Err(at.error(
                            None,
                            "Include needs at least one file or glob pattern, e.g. `Include config.d/*.conf`",
                        ));
                    }
                    Item::Include(self.include(&at, &args, depth)?)
                }
                "hostname" => Item::Setting(Setting::HostName(first()?)),
                "user" => Item::Setting(Setting::User(first()?)),
                "port" => {
                    let value = first()?;
                    match value.parse::<u16>() {
                        Ok(port) if port > 0 => Item::Setting(Setting::Port(port)),
                        _ => {
                            return Err(at.error(
                                args.first().and_then(|(o, _)| at.column(*o)),
                                format!("bad Port {value:?}: expected 1-65535"),
                            ))
                        }
                    }
                }
                "identityfile" => Item::Setting(Setting::IdentityFile(first()?)),
                "proxyjump" => {
                    let value = first()?;
                    parse_jump_spec(&value).map_err(|e| {
                        at.error(
                            args.first().and_then(|(o, _)| at.column(*o)),
                            format!("bad ProxyJump: {e}"),
                        )
                    })?;
                    Item::Setting(Setting::ProxyJump(value))
                }
                "canonicalizehostname" => {
                    let value = first()?;
                    let on = match value.to_ascii_lowercase().as_str() {
                        "yes" | "true" | "always" => true,
                        "no" | "false" | "none" => false,
                        _ => {
                            return Err(at.error(
                                args.first().and_then(|(o, _)| at.column(*o)),
                                format!(
                                "bad CanonicalizeHostname {value:?}: expected yes, no or always"
                            ),
                            ))
                        }
                    };
                    Item::Setting(Setting::CanonicalizeHostname(on))
                }
                _ => continue,
            };
            items.push(item);
        }
        Ok(items)
    }

    /// Expands and parses the files of one `Include` line.
    fn include(
        &mut self,
        at: &At<'_>,
        args: &[(usize, String)],
        depth: usize,
    ) -> Result<Vec<Vec<Item>>, SshConfigError> {
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(at.error(
                None,
                format!(
                    "Include nested more than {MAX_INCLUDE_DEPTH} levels deep (OpenSSH's limit): \
                     does an included file include itself? Break the cycle"
                ),
            ));
        }
        let mut files = Vec::new();
        for (offset, arg) in args {
            let column = at.column(*offset);
            let pattern = self.include_pattern(arg).map_err(|m| at.error(column, m))?;
            for path in expand_glob(&pattern).map_err(|m| at.error(column, m))? {
                self.files_read += 1;
                if self.files_read > MAX_FILES {
                    return Err(at.error(
                        column,
                        format!("Includes pull in more than {MAX_FILES} files; include fewer"),
                    ));
                }
                let shown = path.display();
                let text = match read_bounded(&path) {
                    Ok(Some(text)) => text,
                    // Removed since the glob listed it: ssh ignores it too.
                    Ok(None) => continue,
                    Err(reason) => {
                        return Err(
                            at.error(column, format!("cannot read included {shown}: {reason}"))
                        )
                    }
                };
                check_permissions(&path).map_err(|m| at.error(column, m))?;
                self.bytes_read += text.len();
                if self.bytes_read > MAX_TOTAL_BYTES {
                    return Err(at.error(
                        column,
                        format!(
                            "Includes pull in more than {MAX_TOTAL_BYTES} bytes; include fewer"
                        ),
                    ));
                }
                files.push(self.parse_file(&text, &path, depth + 1)?);
            }
        }
        Ok(files)
    }

    /// The glob pattern an Include argument stands for (OpenSSH's anchoring rules).
    fn include_pattern(&self, arg: &str) -> Result<String, String> {
        let home = || {
            self.home
                .map(|h| h.display().to_string())
                .ok_or_else(|| format!("cannot expand {arg:?}: no home directory"))
        };
        if let Some(rest) = arg.strip_prefix('~') {
            if self.kind == ConfigKind::System {
                return Err(format!(
                    "bad Include path {arg:?}: a system config may not use `~`; give an absolute path"
                ));
            }
            return match rest {
                "" => home(),
                _ if rest.starts_with('/') => Ok(format!("{}{rest}", home()?)),
                _ => Err(format!(
                    "Include {arg:?}: `~user` is not supported; write the absolute path"
                )),
            };
        }
        if Path::new(arg).is_absolute() {
            return Ok(arg.to_string());
        }
        match self.kind {
            ConfigKind::User => Ok(format!("{}/.ssh/{arg}", home()?)),
            ConfigKind::System => Ok(format!("/etc/ssh/{arg}")),
        }
    }
}

/// The existing paths a glob(3)-style pattern names, sorted bytewise as glob(3)
/// does; `*` does not match a leading dot. Unreadable directories are skipped.
fn expand_glob(pattern: &str) -> Result<Vec<PathBuf>, String> {
    // In glob(3) `**` is `*`; the glob crate would walk every subdirectory.
    let mut pattern = pattern.to_string();
    while pattern.contains("**") {
        pattern = pattern.replace("**", "*");
    }
    // Each wildcard component multiplies the directories read: `/*/*/*/x`
    // reads every directory three levels down (a hang, found by fuzzing),
    // whatever it then matches. Real Includes have one (`config.d/*`).
    let wild = Path::new(&pattern)
        .components()
        .filter(|c| {
            c.as_os_str()
                .as_encoded_bytes()
                .iter()
                .any(|b| matches!(b, b'*' | b'?' | b'['))
        })
        .count();
    if wild > MAX_WILDCARD_COMPONENTS {
        return Err(format!(
            "Include pattern {pattern:?} has wildcards in {wild} path components, over the \
             limit of {MAX_WILDCARD_COMPONENTS} (each one means reading every directory at that \
             level): name the directories and keep the wildcards to the file names"
        ));
    }
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let paths = glob::glob_with(&pattern, options)
        .map_err(|e| format!("bad Include pattern {pattern:?}: {}", e.msg))?;
    let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).take(MAX_FILES + 1).collect();
    found.sort_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(found)
}

/// OpenSSH refuses an included file that another user owns or others can write.
#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(());
    };
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    if (meta.uid() != 0 && meta.uid() != uid) || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "bad owner or permissions on included {} (OpenSSH refuses it too): \
             it must be yours or root's and not writable by group or others (chmod go-w)",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_: &Path) -> Result<(), String> {
    Ok(())
}

/// Parses the criteria of a `Match` line as OpenSSH 9 does.
fn parse_match(at: &At<'_>, args: &[(usize, String)]) -> Result<Vec<Criterion>, SshConfigError> {
    const SUPPORTED: &str = "all, canonical, final, host, originalhost, user, localuser";
    if args.is_empty() {
        return Err(at.error(
            None,
            format!("Match needs criteria, e.g. `Match host web*` or `Match all` (supported: {SUPPORTED})"),
        ));
    }
    let mut criteria = Vec::new();
    let mut rest = args.iter();
    while let Some((offset, word)) = rest.next() {
        let column = at.column(*offset);
        let (negated, name) = match word.strip_prefix('!') {
            Some(name) => (true, name),
            None => (false, word.as_str()),
        };
        let name = name.to_ascii_lowercase();
        let test = match name.as_str() {
            "all" => {
                // OpenSSH: `all` comes last, after at most one other criterion.
                if criteria.len() > 1 || rest.len() > 0 {
                    return Err(at.error(
                        column,
                        "Match all cannot be combined with other criteria: write `Match all` alone",
                    ));
                }
                Test::All
            }
            "canonical" => Test::Canonical,
            "final" => Test::Final,
            "exec" => {
                return Err(at.error(
                    column,
                    "Match exec is refused: fleetsweep never runs commands from an ssh config. \
                     Point --ssh-config at a config without it, or use --no-ssh-config",
                ))
            }
            "host" | "originalhost" | "user" | "localuser" => {
                let Some((_, list)) = rest.next() else {
                    return Err(at.error(
                        column,
                        format!("Match {name} needs a pattern list, e.g. `Match {name} a*,!b`"),
                    ));
                };
                match name.as_str() {
                    "host" => Test::Host(list.clone()),
                    "originalhost" => Test::OriginalHost(list.clone()),
                    "user" => Test::User(list.clone()),
                    _ => Test::LocalUser(list.clone()),
                }
            }
            "localnetwork" | "tagged" | "version" | "sessiontype" | "command" => {
                return Err(at.error(
                    column,
                    format!("Match {name} is not supported by fleetsweep (supported: {SUPPORTED})"),
                ))
            }
            _ => {
                return Err(at.error(
                    column,
                    format!("unknown Match criterion {word:?} (supported: {SUPPORTED})"),
                ))
            }
        };
        criteria.push(Criterion { negated, test });
    }
    Ok(criteria)
}

/// Values obtained so far in a lookup: OpenSSH's `Options` for what we read.
#[derive(Debug, Default)]
struct Obtained {
    /// Raw `HostName` (tokens unexpanded) until the final pass sets the target.
    hostname: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identities: Vec<String>,
    proxy_jump: Option<String>,
    canonicalize: Option<bool>,
    /// A `Match final` was seen: run the final pass.
    want_final: bool,
}

impl Obtained {
    fn apply(&mut self, setting: &Setting) {
        match setting {
            Setting::HostName(v) => {
                self.hostname.get_or_insert_with(|| v.clone());
            }
            Setting::User(v) => {
                self.user.get_or_insert_with(|| v.clone());
            }
            Setting::Port(p) => {
                self.port.get_or_insert(*p);
            }
            Setting::IdentityFile(v) => {
                if !self.identities.contains(v) && self.identities.len() < MAX_IDENTITY_FILES {
                    self.identities.push(v.clone());
                }
            }
            Setting::ProxyJump(v) => {
                self.proxy_jump.get_or_insert_with(|| v.clone());
            }
            Setting::CanonicalizeHostname(on) => {
                self.canonicalize.get_or_insert(*on);
            }
        }
    }
}

/// One reading of the files: what `Host` lines match against and which pass it is.
struct Pass<'a> {
    /// The typed alias in the first pass; the rewritten, lower-cased target in the final one.
    host: &'a str,
    /// What was typed.
    original: &'a str,
    final_pass: bool,
}

impl SshConfig {
    /// What applies to `host_alias` (as written in the inventory), as
    /// `ssh -G host_alias` would resolve it.
    pub fn lookup(&self, host_alias: &str) -> SshConfigHost {
        let mut got = Obtained::default();
        let first = Pass {
            host: host_alias,
            original: host_alias,
            final_pass: false,
        };
        self.run_top(&first, &mut got);
        let target = expand_hostname(got.hostname.as_deref().unwrap_or(host_alias), host_alias)
            .to_lowercase();
        let had_hostname = got.hostname.is_some();
        if got.want_final || got.canonicalize == Some(true) {
            got.hostname = Some(target.clone());
            let last = Pass {
                host: &target,
                original: host_alias,
                final_pass: true,
            };
            self.run_top(&last, &mut got);
        }
        let mut found = SshConfigHost {
            hostname: had_hostname.then(|| target.clone()),
            user: got.user,
            port: got.port,
            identity_files: Vec::new(),
            proxy_jump: got.proxy_jump,
        };
        found.identity_files = got
            .identities
            .iter()
            .map(|raw| self.expand_identity(raw, &target, &found))
            .collect();
        found
    }

    /// The whole file for `pass`, as [`SshConfig::run`] on every item, but
    /// without the `Host` blocks that cannot apply: a block whose patterns
    /// are all literal names and which holds settings only does nothing for
    /// a host it does not name (the next item is a `Host` or `Match` line
    /// that sets the block state anew, or the end).
    fn run_top(&self, pass: &Pass<'_>, got: &mut Obtained) {
        let mut active = true;
        let named = self
            .blocks
            .by_name
            .get(pass.host)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (mut always, mut named) = (
            self.blocks.always.iter().peekable(),
            named.iter().peekable(),
        );
        loop {
            let next = match (always.peek(), named.peek()) {
                (Some(a), Some(n)) if a.start < n.start => always.next(),
                (Some(_), Some(_)) | (None, Some(_)) => named.next(),
                (Some(_), None) => always.next(),
                (None, None) => break,
            };
            if let Some(range) = next {
                self.run(&self.items[range.clone()], pass, got, &mut active, false);
            }
        }
    }

    /// Reads `items` in order, as OpenSSH's `read_config_file_depth` does:
    /// `active` is whether the current block applies; `never` is set inside a
    /// file included from a block that does not apply (parsed, never matching).
    fn run(
        &self,
        items: &[Item],
        pass: &Pass<'_>,
        got: &mut Obtained,
        active: &mut bool,
        never: bool,
    ) {
        for item in items {
            match item {
                Item::Host(patterns) => *active = !never && host_matches(pass.host, patterns),
                Item::Match(criteria) => {
                    let holds = self.match_holds(criteria, pass, got);
                    *active = !never && holds;
                }
                Item::Setting(setting) if *active => got.apply(setting),
                Item::Setting(_) => {}
                Item::Include(files) => {
                    let outer = *active;
                    for file in files {
                        self.run(file, pass, got, active, never || !outer);
                        // A Host/Match in the included file does not leak out.
                        *active = outer;
                    }
                }
            }
        }
    }

    /// OpenSSH's `match_cfg_line`: every criterion must hold.
    fn match_holds(&self, criteria: &[Criterion], pass: &Pass<'_>, got: &mut Obtained) -> bool {
        let host = match (&got.hostname, pass.final_pass) {
            (Some(h), true) => h.clone(),
            (Some(h), false) => expand_hostname(h, pass.host),
            (None, _) => pass.host.to_string(),
        };
        let user = got.user.as_deref().unwrap_or(&self.local_user);
        let mut result = true;
        for c in criteria {
            let holds = match &c.test {
                Test::All => {
                    if c.negated {
                        result = false;
                    }
                    continue;
                }
                Test::Canonical => pass.final_pass,
                Test::Final => {
                    got.want_final |= !c.negated && !pass.final_pass;
                    pass.final_pass
                }
                Test::Host(list) => {
                    pattern_list_matches(&host.to_lowercase(), &list.to_lowercase())
                }
                Test::OriginalHost(list) => {
                    pattern_list_matches(&pass.original.to_lowercase(), &list.to_lowercase())
                }
                Test::User(list) => pattern_list_matches(user, list),
                Test::LocalUser(list) => pattern_list_matches(&self.local_user, list),
            };
            if holds == c.negated {
                result = false;
            }
        }
        result
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
                Some('r') => out.push_str(found.user.as_deref().unwrap_or(&self.local_user)),
                Some('u') => out.push_str(&self.local_user),
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
/// Case-sensitive, as in ssh (the final pass sees a lower-cased target).
fn host_matches(host: &str, patterns: &[String]) -> bool {
    let mut positive = false;
    for pattern in patterns {
        match pattern.strip_prefix('!') {
            Some(negated) if super::known_hosts::glob_match(negated, host) => return false,
            Some(_) => {}
            None if super::known_hosts::glob_match(pattern, host) => positive = true,
            None => {}
        }
    }
    positive
}

/// OpenSSH's `match_pattern_list`: a comma list like `a*,!b`.
fn pattern_list_matches(text: &str, list: &str) -> bool {
    let patterns: Vec<String> = list.split(',').map(str::to_string).collect();
    host_matches(text, &patterns)
}

/// The top-level items in runs a lookup reads whatever the host, and the
/// `Host` blocks of literal names with settings only, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct BlockIndex {
    /// Item ranges read for every host, in order.
    always: Vec<std::ops::Range<usize>>,
    /// A literal name → the blocks listing it, in order.
    by_name: std::collections::HashMap<String, Vec<std::ops::Range<usize>>>,
}

impl BlockIndex {
    fn build(items: &[Item]) -> BlockIndex {
        let mut index = BlockIndex::default();
        let mut at = 0;
        let mut always_from = 0;
        while at < items.len() {
            let end = items[at + 1..]
                .iter()
                .position(|i| matches!(i, Item::Host(_) | Item::Match(_)))
                .map_or(items.len(), |p| at + 1 + p);
            let literal = |p: &String| !p.starts_with('!') && !p.contains(['*', '?']);
            let settings_only = || {
                items[at + 1..end]
                    .iter()
                    .all(|i| matches!(i, Item::Setting(_)))
            };
            let skippable = match &items[at] {
                Item::Host(patterns) if patterns.iter().all(literal) && settings_only() => {
                    Some(patterns)
                }
                _ => None,
            };
            if let Some(patterns) = skippable {
                if always_from < at {
                    index.always.push(always_from..at);
                }
                let mut names: Vec<&String> = patterns.iter().collect();
                names.sort();
                names.dedup();
                for name in names {
                    index.by_name.entry(name.clone()).or_default().push(at..end);
                }
                always_from = end;
            }
            at = end;
        }
        if always_from < items.len() {
            index.always.push(always_from..items.len());
        }
        index
    }
}

/// `HostName` may use `%h` (the alias) and `%%`.
fn expand_hostname(value: &str, alias: &str) -> String {
    value
        .replace("%%", "\u{0}")
        .replace("%h", alias)
        .replace('\u{0}', "%")
}

/// The local account's name as ssh takes it (the password database, not
/// `$USER`), falling back to `$USER`/`$LOGNAME`.
fn local_user() -> String {
    passwd_name()
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_default()
}

#[cfg(unix)]
fn passwd_name() -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: zeroed `passwd` is a valid out-parameter; `buf` outlives the
    // call and its length is passed; `pw_name` is read only when getpwuid_r
    // succeeded and set `result`, and then points into `buf`.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_string_lossy()
            .into_owned();
        (!name.is_empty()).then_some(name)
    }
}

#[cfg(not(unix))]
fn passwd_name() -> Option<String> {
    None
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
/// starts a comment. Each argument comes with its byte offset in `rest`.
fn split_args(rest: &str) -> Result<Vec<(usize, String)>, String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut start = None;
    let mut in_quotes = false;
    for (i, c) in rest.char_indices() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                start.get_or_insert(i);
            }
            '#' if !in_quotes && start.is_none() => break,
            c if c.is_whitespace() && !in_quotes => {
                if let Some(s) = start.take() {
                    args.push((s, std::mem::take(&mut current)));
                }
            }
            c => {
                current.push(c);
                start.get_or_insert(i);
            }
        }
    }
    if in_quotes {
        return Err("unterminated quote".into());
    }
    if let Some(s) = start {
        args.push((s, current));
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

Match originalhost db2
    User matched

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

    /// A lookup reads only the literal `Host` blocks that name the host
    /// (and everything else): what it finds is what reading every block
    /// finds, for names in literal blocks (once, twice, in one block twice),
    /// behind wildcards and negations, `Match` blocks, `HostName` aliases
    /// (the final pass looks the target up again) and in no block at all.
    #[test]
    fn literal_blocks_found_by_name_give_what_reading_every_block_gives() {
        let text = format!(
            "User global\n{SAMPLE}\n             Host db1\n  Port 2301\n  IdentityFile /keys/db1\n             Host a1 a2 a1\n  User a\n  IdentityFile /keys/a\n             Host lone\n  HostName a2\n             Host a2 !nothing\n  Port 2400\n             Match final host a2\n  IdentityFile /keys/final-a2\n             Host a2\n  IdentityFile /keys/a2-again\n             Host canon\n  CanonicalizeHostname yes\n  HostName a1\n"
        );
        let indexed = config(&text);
        assert!(
            indexed.blocks.by_name.contains_key("a2"),
            "{:?}",
            indexed.blocks
        );
        let mut walking = indexed.clone();
        walking.blocks = BlockIndex {
            always: std::iter::once(0..walking.items.len()).collect(),
            by_name: Default::default(),
        };
        for name in [
            "web1", "web9", "web12", "db1", "db2", "a1", "a2", "lone", "canon", "nowhere", "A1",
        ] {
            assert_eq!(indexed.lookup(name), walking.lookup(name), "{name}");
        }
        let a1 = indexed.lookup("a1");
        // The global `User` came first, and the first value wins.
        assert_eq!(a1.user.as_deref(), Some("global"));
        assert_eq!(
            a1.identity_files
                .iter()
                .filter(|p| p.ends_with("a"))
                .count(),
            1,
            "a block listing a name twice is read once: {:?}",
            a1.identity_files
        );
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
    fn equals_syntax_works_and_host_is_case_sensitive() {
        let db1 = config(SAMPLE).lookup("db1");
        assert_eq!(db1.hostname.as_deref(), Some("10.0.0.7"));
        assert_eq!(db1.user.as_deref(), Some("ops"));
        assert_eq!(db1.proxy_jump.as_deref(), Some("jump@bastion:2222,inner"));
        assert_eq!(db1.port, Some(22));
        // As in ssh, `Host db1` does not match `DB1`.
        assert_eq!(config(SAMPLE).lookup("DB1").hostname, None);
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
            ("Host a\n  Port nope\n", 2, "bad Port"),
            ("Match\n", 1, "Match needs criteria"),
            (
                "Host x\n\tMatch host\n",
                2,
                "Match host needs a pattern list",
            ),
            ("Match exec \"true\"\n", 1, "Match exec is refused"),
            ("Match host a !exec x\n", 1, "Match exec is refused"),
            ("Match foo x\n", 1, "unknown Match criterion \"foo\""),
            (
                "Match localnetwork 10.0.0.0/8\n",
                1,
                "not supported by fleetsweep",
            ),
            (
                "Match host a user b all\n",
                1,
                "Match all cannot be combined",
            ),
            ("Match all host a\n", 1, "Match all cannot be combined"),
            ("Include\n", 1, "Include needs at least one file"),
            (
                "CanonicalizeHostname perhaps\n",
                1,
                "bad CanonicalizeHostname",
            ),
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
    fn errors_name_file_line_and_column() {
        let shown = |text: &str| match parse(text, Path::new("/etc/cfg"), None) {
            Err(e) => e.to_string(),
            Ok(c) => panic!("{text:?} parsed: {c:?}"),
        };
        assert_eq!(
            shown("Host a\n  Match host a exec \"true\"\n"),
            "/etc/cfg:2:16: Match exec is refused: fleetsweep never runs commands from an ssh \
             config. Point --ssh-config at a config without it, or use --no-ssh-config"
        );
        assert!(shown("Port=0\n").starts_with("/etc/cfg:1:6: bad Port"));
        assert!(shown("Match Host=x\n").starts_with("/etc/cfg:1:7: unknown Match criterion"));
    }

    fn lookup_with_user(text: &str, local_user: &str, alias: &str) -> SshConfigHost {
        let mut c = config(text);
        c.local_user = local_user.to_string();
        c.lookup(alias)
    }

    #[test]
    fn match_criteria() {
        let text = r#"
Host web1
    HostName 10.1.1.1
Match host 10.1.*,!10.1.1.9 originalhost web*
    Port 1001
Match originalhost WEB1 user alice
    User never
Match localuser op,!root
    ProxyJump gw
Match !host 10.*
    Port 1002
Match user op
    IdentityFile /k/op
Match canonical
    User canonical
Match !canonical all
    User first-pass
"#;
        let web1 = lookup_with_user(text, "op", "web1");
        assert_eq!(web1.hostname.as_deref(), Some("10.1.1.1"));
        assert_eq!(web1.port, Some(1001), "host sees the HostName target");
        assert_eq!(web1.proxy_jump.as_deref(), Some("gw"));
        assert_eq!(web1.user.as_deref(), Some("first-pass"));
        // `user` was unset when `Match user op` was read: the local user.
        assert_eq!(web1.identity_files, vec![PathBuf::from("/k/op")]);
        let other = lookup_with_user(text, "root", "db");
        assert_eq!(other.port, Some(1002));
        assert_eq!(other.proxy_jump, None);
        assert!(other.identity_files.is_empty());
        assert_eq!(
            lookup_with_user("Match !all\n Port 3\n", "op", "x").port,
            None
        );
        assert_eq!(
            lookup_with_user("Match all\n Port 3\n", "op", "x").port,
            Some(3)
        );
    }

    #[test]
    fn final_pass_matches_the_rewritten_target() {
        let text = "Host alias\n  HostName Target.Example\nHost target.example\n  Port 2222\n  User t\nMatch canonical host target.example\n  IdentityFile /k/final\n";
        let plain = config(text).lookup("alias");
        assert_eq!(plain.hostname.as_deref(), Some("target.example"));
        assert_eq!(plain.port, None, "no final pass without Match final");
        let text = format!("{text}Match final\n  User last\n");
        let twice = config(&text).lookup("alias");
        assert_eq!(twice.port, Some(2222));
        assert_eq!(twice.user.as_deref(), Some("t"));
        assert_eq!(twice.identity_files, vec![PathBuf::from("/k/final")]);
        let canon = config("CanonicalizeHostname yes\nMatch canonical\n  Port 7\n").lookup("a");
        assert_eq!(canon.port, Some(7));
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    /// An Include whose pattern would read every directory several levels
    /// down is refused, with the line and what to change; two wildcard
    /// components still expand.
    #[test]
    fn includes_with_wildcards_at_many_levels_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        write(&home, ".ssh/d1/x/a.conf", "Port 2020\n");
        let main = write(dir.path(), "config", "Host web\n  Include d*/*/a.conf\n");
        let c = load_with(&main, Some(home.clone()), ConfigKind::User).unwrap();
        assert_eq!(c.lookup("web").port, Some(2020));
        let main = write(dir.path(), "config", "Include /*/*/./*/nonexistent\n");
        let err = load_with(&main, Some(home), ConfigKind::User)
            .unwrap_err()
            .to_string();
        assert!(err.contains(":1:"), "{err}");
        assert!(
            err.contains("wildcards in 3 path components, over the limit of 2"),
            "{err}"
        );
    }

    #[test]
    fn includes_nest_apply_conditionally_and_stop_at_depth() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        write(&home, ".ssh/conf.d/20-b.conf", "Port 2020\n");
        write(
            &home,
            ".ssh/conf.d/10-a.conf",
            "User a\nHost other\n  Port 9\n",
        );
        write(&home, ".ssh/conf.d/.hidden.conf", "Port 7\n");
        write(&home, ".ssh/conf.d/notes.txt", "Port 8\n");
        let main = write(
            dir.path(),
            "config",
            "Host web\n  Include conf.d/*.conf /nonexistent/*.conf missing\n  HostName w\n",
        );
        let c = load_with(&main, Some(home.clone()), ConfigKind::User).unwrap();
        let web = c.lookup("web");
        assert_eq!(web.user.as_deref(), Some("a"));
        assert_eq!(web.port, Some(2020));
        assert_eq!(
            web.hostname.as_deref(),
            Some("w"),
            "Host in an include does not leak"
        );
        assert_eq!(
            c.lookup("other").port,
            None,
            "include under an inactive Host"
        );

        let looping = write(dir.path(), "loop", "Include ~/loop\n");
        write(&home, "loop", &format!("Include {}\n", looping.display()));
        let err = load_with(&looping, Some(home.clone()), ConfigKind::User).unwrap_err();
        assert!(
            err.to_string()
                .contains("Include nested more than 16 levels deep"),
            "{err}"
        );

        let system = write(dir.path(), "sys", "Include ~/x\n");
        let err = load_with(&system, Some(home), ConfigKind::System).unwrap_err();
        assert!(
            err.to_string().contains("a system config may not use `~`"),
            "{err}"
        );
    }

    #[test]
    fn include_paths_are_anchored_as_openssh_does() {
        let home = Path::new("/home/op");
        let reader = |kind| Reader {
            home: Some(home),
            kind,
            files_read: 0,
            bytes_read: 0,
        };
        let user = reader(ConfigKind::User);
        let system = reader(ConfigKind::System);
        assert_eq!(
            user.include_pattern("c.d/*").unwrap(),
            "/home/op/.ssh/c.d/*"
        );
        assert_eq!(user.include_pattern("~/x").unwrap(), "/home/op/x");
        assert_eq!(user.include_pattern("/abs").unwrap(), "/abs");
        assert!(user.include_pattern("~bob/x").is_err());
        assert_eq!(
            system.include_pattern("ssh_config.d/*.conf").unwrap(),
            "/etc/ssh/ssh_config.d/*.conf"
        );
        assert!(system.include_pattern("~/x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn writable_includes_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let inc = write(dir.path(), "inc", "Port 1\n");
        std::fs::set_permissions(&inc, std::fs::Permissions::from_mode(0o666)).unwrap();
        let text = format!("Include {}\n", inc.display());
        let err = parse(&text, Path::new("cfg"), None).unwrap_err();
        assert!(
            err.to_string().contains("bad owner or permissions"),
            "{err}"
        );
    }

    #[test]
    fn missing_file_is_empty() {
        let c = load(Path::new("/nonexistent/ssh_config"));
        assert!(matches!(c, Ok(ref c) if c.items.is_empty()), "{c:?}");
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
            Ok(vec![(0, "a".into()), (2, "b c".into()), (8, "d".into())])
        );
        assert_eq!(split_args("a # comment"), Ok(vec![(0, "a".into())]));
        assert_eq!(split_keyword("Port=22"), ("Port", "22"));
        assert_eq!(split_keyword("Port = 22"), ("Port", "22"));
        assert_eq!(split_keyword("Port 22"), ("Port", "22"));
    }
}
