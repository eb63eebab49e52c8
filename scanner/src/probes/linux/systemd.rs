//! Services: systemd units and SysV init scripts.
//!
//! Three sources, merged by name:
//! - `systemd`: `systemctl list-unit-files --type=service` (`name.service STATE [PRESET]`),
//!   only when systemd runs;
//! - `systemd-running`: `systemctl list-units --type=service --state=running --plain`
//!   (`name.service LOAD ACTIVE SUB DESCRIPTION`); when present, every other unit
//!   is known not to run;
//! - `unit-files`: the unit files themselves, always, because containers and many
//!   test hosts run no systemd: `u<TAB>path` per unit file, `i<TAB>path` per init
//!   script, `x<TAB>path:line` per `ExecStart=`/`DAEMON=` line (from `grep -H`).
//!
//! The program of the first `ExecStart=` is kept: a vendor install root in it
//! (`/opt/kaspersky/...`) names the vendor even for a unit with an unknown name.

use crate::hashing::{HashMap, HashSet};
use std::borrow::Cow;

use super::sections::{warning, Rejects};
use crate::probes::text;
use crate::probes::{ProbeWarning, Service};

/// Builds the service list from whichever of the three sections arrived.
/// `running` must be None when systemd did not answer (its section is missing,
/// failed or was cut): then `active` is unknown (None) for every service.
///
/// Services come out sorted by name. Total on any input.
///
/// ```
/// use fleetsweep::probes::linux::parse_services;
/// let (services, _) = parse_services(
///     Some("kesl.service enabled enabled\n"),
///     Some("kesl.service loaded active running Kaspersky Endpoint Security\n"),
///     Some("u\t/lib/systemd/system/kesl.service\nx\t/lib/systemd/system/kesl.service:ExecStart=/opt/kaspersky/kesl/libexec/kesl_launcher.sh\n"),
/// );
/// assert_eq!(services[0].name, "kesl");
/// assert_eq!(services[0].unit_state.as_deref(), Some("enabled"));
/// assert_eq!(services[0].active, Some(true));
/// assert_eq!(services[0].exec.as_deref(), Some("/opt/kaspersky/kesl/libexec/kesl_launcher.sh"));
/// ```
pub fn parse_services(
    unit_list: Option<&str>,
    running: Option<&str>,
    unit_files: Option<&str>,
) -> (Vec<Service>, Vec<ProbeWarning>) {
    let mut warnings = Vec::new();
    // Services in the order first seen, and name → index; the names borrow
    // from the sections (a host lists hundreds of units, each once per source).
    // Room for every service at once (a host lists hundreds; bounded, as a
    // hostile host's output may be mostly line breaks).
    let listed = [unit_list, unit_files]
        .into_iter()
        .flatten()
        .map(line_count)
        .max()
        .unwrap_or(0);
    let mut services = Services::with_capacity(listed);

    if let Some(body) = unit_list {
        let mut rejects = Rejects::default();
        for line in crate::probes::text::lines(body) {
            match parse_list_line(line) {
                Listed::Unit(name, state) => {
                    services.entry(name).unit_state = Some(unit_state(state))
                }
                Listed::Skip => {}
                Listed::Bad => rejects.note(line),
            }
        }
        warnings.extend(rejects.into_warning("systemd"));
    }

    let running: Option<HashSet<&str>> = running.map(|body| {
        let mut rejects = Rejects::default();
        let mut names = HashSet::default();
        for line in crate::probes::text::lines(body) {
            match parse_running_line(line) {
                Listed::Unit(name, _) => {
                    services.entry(name);
                    names.insert(name);
                }
                Listed::Skip => {}
                Listed::Bad => rejects.note(line),
            }
        }
        warnings.extend(rejects.into_warning("systemd-running"));
        names
    });

    if let Some(body) = unit_files {
        let (files, file_warnings) = unit_files_of(body);
        warnings.extend(file_warnings);
        for f in files {
            let s = services.entry(f.name);
            if s.path.is_none() {
                s.path = Some(f.path.to_string());
                s.exec = f.exec;
            }
            if s.unit_state.is_none() {
                s.unit_state = Some(Cow::Borrowed("file"));
            }
        }
    }

    let mut list = services.list;
    for s in &mut list {
        s.active = running.as_ref().map(|r| r.contains(s.name.as_str()));
    }
    list.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    (list, warnings)
}

/// Services by name, in the order first seen.
struct Services<'a> {
    list: Vec<Service>,
    index: HashMap<&'a str, usize>,
}

/// About how many lines a section has, for sizing its tables once (at most
/// [`PRESIZE_MAX`]): a guess from its length, as counting them costs more
/// than growing the tables (callgrind). A unit-files line is 40 to 100 bytes.
fn line_count(body: &str) -> usize {
    (body.len() / 48).min(PRESIZE_MAX)
}

/// The most entries a table is sized for before it is filled: the probe lists
/// at most 5,000 unit files, and a larger answer grows as it is read.
const PRESIZE_MAX: usize = 5000;

/// A unit file state (`enabled`, `static`, ...): the states systemd defines
/// are not copied; anything else is kept as sent.
fn unit_state(state: &str) -> Cow<'static, str> {
    const KNOWN: [&str; 14] = [
        "enabled",
        "enabled-runtime",
        "linked",
        "linked-runtime",
        "alias",
        "masked",
        "masked-runtime",
        "static",
        "indirect",
        "disabled",
        "generated",
        "transient",
        "bad",
        "file",
    ];
    match KNOWN.iter().find(|k| **k == state) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(state.to_string()),
    }
}

impl<'a> Services<'a> {
    fn with_capacity(n: usize) -> Self {
        Services {
            list: Vec::with_capacity(n),
            index: HashMap::with_capacity_and_hasher(n, Default::default()),
        }
    }

    fn entry(&mut self, name: &'a str) -> &mut Service {
        let at = *self.index.entry(name).or_insert_with(|| {
            self.list.push(Service {
                name: name.to_string(),
                unit_state: None,
                active: None,
                path: None,
                exec: None,
            });
            self.list.len() - 1
        });
        &mut self.list[at]
    }
}

enum Listed<'a> {
    Unit(&'a str, &'a str),
    Skip,
    Bad,
}

/// `kesl.service enabled enabled` → (`kesl`, `enabled`).
fn parse_list_line(line: &str) -> Listed<'_> {
    let mut words = line.split_whitespace().skip_while(|w| is_bullet(w));
    let (Some(unit), state) = (words.next(), words.next()) else {
        return Listed::Skip;
    };
    if unit == "UNIT" || unit.chars().all(|c| c.is_ascii_digit()) {
        return Listed::Skip; // legend of an old systemctl: "UNIT FILE STATE", "N unit files listed."
    }
    match (unit_name(unit), state) {
        (Some(name), Some(state)) => Listed::Unit(name, state),
        _ => Listed::Bad,
    }
}

/// `kesl.service loaded active running Kaspersky ...` → `kesl` when it runs.
fn parse_running_line(line: &str) -> Listed<'_> {
    let mut words = line.split_whitespace().skip_while(|w| is_bullet(w));
    let Some(unit) = words.next() else {
        return Listed::Skip;
    };
    if unit == "UNIT" || unit.chars().all(|c| c.is_ascii_digit()) {
        return Listed::Skip;
    }
    let Some(name) = unit_name(unit) else {
        return Listed::Bad;
    };
    let (_load, active, sub) = (words.next(), words.next(), words.next());
    // The query asked for running units only; trust a listed unit unless the
    // columns say otherwise.
    if matches!(active, Some(a) if a != "active") || matches!(sub, Some(s) if s != "running") {
        return Listed::Skip;
    }
    Listed::Unit(name, "")
}

fn is_bullet(w: &str) -> bool {
    matches!(w, "●" | "*" | "×" | "○")
}

/// `name.service` → `name`; None for anything else.
fn unit_name(unit: &str) -> Option<&str> {
    unit.strip_suffix(".service").filter(|n| !n.is_empty())
}

/// A unit file or init script found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    pub name: String,
    pub path: String,
    /// Program of the first `ExecStart=` (unit) or `DAEMON=` (init script).
    pub exec: Option<String>,
}

/// Parses the `unit-files` section. The first file of a name wins, as the script
/// lists directories in systemd's precedence order (`/etc` before `/run` before
/// `/usr/local/lib` before `/lib` and `/usr/lib`), then `/etc/init.d`.
pub fn parse_unit_files(body: &str) -> (Vec<UnitFile>, Vec<ProbeWarning>) {
    let (files, warnings) = unit_files_of(body);
    let files = files
        .into_iter()
        .map(|f| UnitFile {
            name: f.name.to_string(),
            path: f.path.to_string(),
            exec: f.exec,
        })
        .collect();
    (files, warnings)
}

/// A [`UnitFile`] whose name and path borrow from the section.
struct UnitFileRef<'a> {
    name: &'a str,
    path: &'a str,
    exec: Option<String>,
}

/// [`parse_unit_files`] without copying names and paths.
fn unit_files_of(body: &str) -> (Vec<UnitFileRef<'_>>, Vec<ProbeWarning>) {
    let n = line_count(body);
    let mut files: Vec<UnitFileRef<'_>> = Vec::with_capacity(n);
    // path → index into files, for attaching exec lines.
    let mut by_path: HashMap<&str, (usize, Kind)> =
        HashMap::with_capacity_and_hasher(n, Default::default());
    let mut names: HashSet<&str> = HashSet::with_capacity_and_hasher(n, Default::default());
    let mut rejects = Rejects::default();
    let mut warnings = Vec::new();
    for line in crate::probes::text::lines(body) {
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with("!truncated") {
            warnings.push(warning(
                "unit-files",
                "more than 5000 unit files and init scripts: the list was cut".to_string(),
            ));
            continue;
        }
        // `grep -H` lines as today's probe prints them (`PATH:KEY=VALUE`, the
        // path absolute), or after `x<TAB>` as older probes did.
        // (Checked first: a grep line is not searched for a tab.)
        let (kind, rest) = if line.starts_with('/') {
            ("x", line)
        } else if let Some(split) = text::split_once(line, b'\t') {
            split
        } else {
            rejects.note(line);
            continue;
        };
        match kind {
            "u" | "i" => {
                let base = rest.rsplit('/').next().unwrap_or_default();
                let name = if kind == "u" {
                    unit_name(base)
                } else {
                    Some(base).filter(|b| !b.is_empty())
                };
                let Some(name) = name.filter(|_| rest.starts_with('/')) else {
                    rejects.note(line);
                    continue;
                };
                if names.insert(name) {
                    let k = if kind == "u" { Kind::Unit } else { Kind::Init };
                    by_path.insert(rest, (files.len(), k));
                    files.push(UnitFileRef {
                        name,
                        path: rest,
                        exec: None,
                    });
                }
            }
            "x" => {
                let Some((index, value)) = exec_line(rest, &by_path) else {
                    // Exec line of a shadowed duplicate, or unreadable: nothing to attach.
                    continue;
                };
                let file = &mut files[index];
                if file.exec.is_none() {
                    file.exec = exec_program(value);
                }
            }
            _ => rejects.note(line),
        }
    }
    warnings.extend(rejects.into_warning("unit-files"));
    (files, warnings)
}

/// What a listed file is, which says which key names its program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A systemd unit: `ExecStart=`.
    Unit,
    /// An init script: `DAEMON=`.
    Init,
}

/// `PATH:ExecStart=VALUE` (grep -H output) → (index of PATH, VALUE). The path is
/// found by trying each `:` against the listed paths, so a `:` in a file name is
/// fine. Only a unit's `ExecStart=` and an init script's `DAEMON=` count: the
/// probe greps every file for both.
fn exec_line<'a>(
    rest: &'a str,
    by_path: &HashMap<&str, (usize, Kind)>,
) -> Option<(usize, &'a str)> {
    rest.match_indices(':').find_map(|(i, _)| {
        let (index, kind) = *by_path.get(&rest[..i])?;
        let line = rest[i + 1..].trim_start();
        let (key, value) = line.split_once('=')?;
        let wanted = match kind {
            Kind::Unit => "ExecStart",
            Kind::Init => "DAEMON",
        };
        (key.trim() == wanted).then_some((index, value))
    })
}

/// The program of an `ExecStart=` (or `DAEMON=`) value: the first word, quotes
/// removed, after systemd's prefixes `@ - : + !` (`!!` too). None when empty.
///
/// ```
/// use fleetsweep::probes::linux::exec_program;
/// assert_eq!(exec_program("-/opt/kaspersky/klnagent64/sbin/klnagent -d").as_deref(),
///            Some("/opt/kaspersky/klnagent64/sbin/klnagent"));
/// assert_eq!(exec_program(""), None);
/// ```
pub fn exec_program(value: &str) -> Option<String> {
    let v = value
        .trim()
        .trim_start_matches(['@', '-', ':', '+', '!'])
        .trim_start();
    let program = match v.chars().next()? {
        q @ ('"' | '\'') => {
            let inner = &v[1..];
            inner.split(q).next().unwrap_or(inner)
        }
        _ => v.split_whitespace().next().unwrap_or_default(),
    };
    (!program.is_empty()).then(|| program.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `unit-files` section as the script printed it on this project's Debian 12
    /// build machine (no systemd running), cut to a few units, plus an init script.
    const UNIT_FILES_DEBIAN12: &str = "\
u\t/etc/systemd/system/dbus-org.freedesktop.timesync1.service
u\t/etc/systemd/system/sshd.service
x\t/etc/systemd/system/dbus-org.freedesktop.timesync1.service:ExecStart=!!/lib/systemd/systemd-timesyncd
x\t/etc/systemd/system/sshd.service:ExecStart=/usr/sbin/sshd -D $SSHD_OPTS
u\t/usr/lib/systemd/system/apt-daily.service
u\t/usr/lib/systemd/system/autovt@.service
u\t/usr/lib/systemd/system/ssh.service
u\t/usr/lib/systemd/system/sshd.service
x\t/usr/lib/systemd/system/apt-daily.service:ExecStart=/usr/lib/apt/apt.systemd.daily update
x\t/usr/lib/systemd/system/autovt@.service:ExecStart=-/sbin/agetty -o '-p -- \\\\u' --noclear - $TERM
x\t/usr/lib/systemd/system/ssh.service:ExecStartPre=/usr/sbin/sshd -t
x\t/usr/lib/systemd/system/ssh.service:ExecStart=/usr/sbin/sshd -D $SSHD_OPTS
x\t/usr/lib/systemd/system/sshd.service:ExecStart=/usr/sbin/other
i\t/etc/init.d/ssh
i\t/etc/init.d/procps
x\t/etc/init.d/ssh:DAEMON=/usr/sbin/sshd
";

    fn row(s: &Service) -> (&str, Option<&str>, Option<bool>, Option<&str>, Option<&str>) {
        (
            s.name.as_str(),
            s.unit_state.as_deref(),
            s.active,
            s.path.as_deref(),
            s.exec.as_deref(),
        )
    }

    /// The services of sections that parse without a warning.
    fn parsed_clean(
        list: Option<&str>,
        running: Option<&str>,
        files: Option<&str>,
    ) -> Vec<Service> {
        let (services, warnings) = parse_services(list, running, files);
        assert!(warnings.is_empty(), "{warnings:?}");
        services
    }

    #[test]
    fn unit_files_only_as_in_a_container() {
        let services = parsed_clean(None, None, Some(UNIT_FILES_DEBIAN12));
        let got: Vec<_> = services.iter().map(row).collect();
        assert_eq!(
            got,
            vec![
                (
                    "apt-daily",
                    Some("file"),
                    None,
                    Some("/usr/lib/systemd/system/apt-daily.service"),
                    Some("/usr/lib/apt/apt.systemd.daily")
                ),
                (
                    "autovt@",
                    Some("file"),
                    None,
                    Some("/usr/lib/systemd/system/autovt@.service"),
                    Some("/sbin/agetty")
                ),
                (
                    "dbus-org.freedesktop.timesync1",
                    Some("file"),
                    None,
                    Some("/etc/systemd/system/dbus-org.freedesktop.timesync1.service"),
                    Some("/lib/systemd/systemd-timesyncd")
                ),
                (
                    "procps",
                    Some("file"),
                    None,
                    Some("/etc/init.d/procps"),
                    None
                ),
                (
                    "ssh",
                    Some("file"),
                    None,
                    Some("/usr/lib/systemd/system/ssh.service"),
                    Some("/usr/sbin/sshd")
                ),
                (
                    // /etc wins over /usr/lib
                    "sshd",
                    Some("file"),
                    None,
                    Some("/etc/systemd/system/sshd.service"),
                    Some("/usr/sbin/sshd")
                ),
            ]
        );
    }

    #[test]
    fn systemd_lists_merge_with_files() {
        let list = "ssh.service enabled enabled\n\
                    kesl.service disabled enabled\n\
                    getty@.service enabled enabled\n\
                    masked.service masked enabled\n";
        let running = "ssh.service loaded active running OpenBSD Secure Shell server\n\
                       transient-x.service loaded active running Transient unit\n";
        let files = "u\t/lib/systemd/system/kesl.service\n\
                     x\t/lib/systemd/system/kesl.service:ExecStart=/opt/kaspersky/kesl/libexec/kesl_launcher.sh\n";
        let services = parsed_clean(Some(list), Some(running), Some(files));
        let got: Vec<_> = services.iter().map(row).collect();
        assert_eq!(
            got,
            vec![
                ("getty@", Some("enabled"), Some(false), None, None),
                (
                    "kesl",
                    Some("disabled"),
                    Some(false),
                    Some("/lib/systemd/system/kesl.service"),
                    Some("/opt/kaspersky/kesl/libexec/kesl_launcher.sh")
                ),
                ("masked", Some("masked"), Some(false), None, None),
                ("ssh", Some("enabled"), Some(true), None, None),
                ("transient-x", None, Some(true), None, None),
            ]
        );
    }

    /// A host that names one unit many times, in every source and out of
    /// order, still gets one service per name, sorted, with the first unit
    /// file's path and program (the later, shadowed file is not read), the
    /// list's last state for it, and no panic.
    #[test]
    fn a_unit_repeated_across_sections_is_one_service() {
        let list = "zz.service enabled enabled\n\
                    kesl.service disabled enabled\n\
                    kesl.service enabled enabled\n\
                    aa.service static -\n";
        let running = "kesl.service loaded active running x\n\
                       kesl.service loaded active running x\n";
        let files = "u\t/etc/systemd/system/kesl.service\n\
                     u\t/lib/systemd/system/kesl.service\n\
                     /lib/systemd/system/kesl.service:ExecStart=/tmp/decoy\n\
                     /etc/systemd/system/kesl.service:ExecStart=/opt/kaspersky/kesl/bin/kesl\n\
                     u\t/lib/systemd/system/zz.service\n";
        let services = parsed_clean(Some(list), Some(running), Some(files));
        let got: Vec<_> = services.iter().map(row).collect();
        assert_eq!(
            got,
            vec![
                ("aa", Some("static"), Some(false), None, None),
                (
                    "kesl",
                    Some("enabled"),
                    Some(true),
                    Some("/etc/systemd/system/kesl.service"),
                    Some("/opt/kaspersky/kesl/bin/kesl")
                ),
                (
                    "zz",
                    Some("enabled"),
                    Some(false),
                    Some("/lib/systemd/system/zz.service"),
                    None
                ),
            ]
        );
    }

    #[test]
    fn list_and_running_lines() {
        let list_cases: &[(&str, Option<(&str, &str)>)] = &[
            ("ssh.service enabled enabled", Some(("ssh", "enabled"))),
            ("ssh.service enabled", Some(("ssh", "enabled"))),
            ("  kesl.service   static  -", Some(("kesl", "static"))),
            ("UNIT FILE STATE VENDOR PRESET", None),
            ("12 unit files listed.", None),
            ("", None),
        ];
        for (line, want) in list_cases {
            let got = match parse_list_line(line) {
                Listed::Unit(n, s) => Some((n, s)),
                _ => None,
            };
            assert_eq!(got, *want, "{line:?}");
        }
        let running_cases: &[(&str, Option<&str>)] = &[
            (
                "ssh.service loaded active running OpenBSD Secure Shell server",
                Some("ssh"),
            ),
            (
                "● kesl.service loaded active running Kaspersky",
                Some("kesl"),
            ),
            ("kesl.service", Some("kesl")),
            ("kesl.service loaded failed failed x", None),
            ("kesl.service loaded active exited x", None),
            ("UNIT LOAD ACTIVE SUB DESCRIPTION", None),
            ("3 loaded units listed.", None),
        ];
        for (line, want) in running_cases {
            let got = match parse_running_line(line) {
                Listed::Unit(n, _) => Some(n),
                _ => None,
            };
            assert_eq!(got, *want, "{line:?}");
        }
    }

    /// The states systemd defines are shared, not copied; a state it does not
    /// define (a newer systemd, a hostile host) is kept as sent, escaped later
    /// like any host text.
    #[test]
    fn unit_states_known_and_unknown() {
        let list = "a.service enabled enabled\nb.service masked-runtime -\n\
                    c.service brand-new-state -\nd.service Enabled -\n";
        let services = parsed_clean(Some(list), None, Some("i\t/etc/init.d/e\n"));
        let states: Vec<_> = services
            .iter()
            .map(|s| (s.name.as_str(), s.unit_state.clone()))
            .collect();
        assert_eq!(
            states,
            vec![
                ("a", Some(Cow::Borrowed("enabled"))),
                ("b", Some(Cow::Borrowed("masked-runtime"))),
                ("c", Some(Cow::Owned("brand-new-state".to_string()))),
                ("d", Some(Cow::Owned("Enabled".to_string()))),
                ("e", Some(Cow::Borrowed("file"))),
            ]
        );
        assert!(matches!(services[0].unit_state, Some(Cow::Borrowed(_))));
        assert!(matches!(services[2].unit_state, Some(Cow::Owned(_))));
    }

    /// Tables are sized from a section's length, never beyond what the probe
    /// can list: a section of nothing but line breaks (1 MiB) parses to
    /// nothing, and a section past the cap still gives every unit.
    #[test]
    fn table_sizes_are_bounded() {
        let breaks = "\n".repeat(1 << 20);
        let (services, warnings) = parse_services(Some(&breaks), Some(&breaks), Some(&breaks));
        assert!(services.is_empty());
        assert!(warnings.is_empty(), "{warnings:?}");
        let many: String = (0..PRESIZE_MAX + 10)
            .map(|i| format!("u\t/etc/systemd/system/unit-{i}.service\n"))
            .collect();
        let services = parsed_clean(None, None, Some(&many));
        assert_eq!(services.len(), PRESIZE_MAX + 10);
        assert!(services
            .iter()
            .all(|s| s.unit_state.as_deref() == Some("file")));
    }

    #[test]
    fn exec_programs() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/usr/sbin/sshd -D $SSHD_OPTS", Some("/usr/sbin/sshd")),
            ("-/sbin/agetty -o x", Some("/sbin/agetty")),
            (
                "!!/lib/systemd/systemd-timesyncd",
                Some("/lib/systemd/systemd-timesyncd"),
            ),
            ("@/bin/true true", Some("/bin/true")),
            ("+-/bin/x", Some("/bin/x")),
            (":/bin/x", Some("/bin/x")),
            ("  /bin/x  ", Some("/bin/x")),
            ("\"/opt/with space/bin\" arg", Some("/opt/with space/bin")),
            ("'/opt/single q/bin' arg", Some("/opt/single q/bin")),
            ("\"unterminated", Some("unterminated")),
            ("\"\"", None),
            ("", None),
            ("-", None),
            ("   ", None),
            (
                "/opt/kaspersky/kesl/bin/kesl\u{0}x",
                Some("/opt/kaspersky/kesl/bin/kesl\u{0}x"),
            ),
        ];
        for (value, want) in cases {
            assert_eq!(exec_program(value).as_deref(), *want, "{value:?}");
        }
    }

    /// Today's probe greps every unit file and init script for both keys in
    /// one `grep -H` and prints its lines as they are; a unit's program comes
    /// from `ExecStart=` only and an init script's from `DAEMON=` only, as
    /// when each kind was grepped for its own key.
    #[test]
    fn raw_grep_lines_take_each_kind_s_own_key() {
        let body = "u\t/etc/systemd/system/a.service\n\
u\t/lib/systemd/system/kesl.service\n\
i\t/etc/init.d/klnagent64\n\
i\t/etc/init.d/odd\n\
/etc/systemd/system/a.service:DAEMON=/bin/not-this\n\
/etc/systemd/system/a.service:ExecStart=/bin/a\n\
/lib/systemd/system/kesl.service:  ExecStart = /opt/kaspersky/kesl/libexec/kesl_launcher.sh\n\
/etc/init.d/odd:ExecStart=/bin/not-this-either\n\
/etc/init.d/klnagent64:DAEMON=/opt/kaspersky/klnagent64/sbin/klnagent\n\
/unlisted.service:ExecStart=/bin/x\n";
        let (files, warnings) = parse_unit_files(body);
        assert!(warnings.is_empty(), "{warnings:?}");
        let got: Vec<(&str, Option<&str>)> = files
            .iter()
            .map(|f| (f.name.as_str(), f.exec.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", Some("/bin/a")),
                ("kesl", Some("/opt/kaspersky/kesl/libexec/kesl_launcher.sh")),
                (
                    "klnagent64",
                    Some("/opt/kaspersky/klnagent64/sbin/klnagent")
                ),
                ("odd", None),
            ]
        );
    }

    #[test]
    fn hostile_and_broken_unit_files() {
        let long = format!("u\t/etc/systemd/system/{}.service\n", "k".repeat(1 << 20));
        let cases: Vec<(String, usize, usize)> = vec![
            // (body, services, warnings)
            (String::new(), 0, 0),
            ("u\trelative.service\n".into(), 0, 1),
            ("u\t/etc/systemd/system/not-a-unit.timer\n".into(), 0, 1),
            ("u\t/etc/systemd/system/.service\n".into(), 0, 1),
            ("i\t/etc/init.d/\n".into(), 0, 1),
            ("q\t/x\n".into(), 0, 1),
            ("no tab\n".into(), 0, 1),
            ("!truncated\n".into(), 0, 1),
            ("x\t/unknown/path.service:ExecStart=/bin/x\n".into(), 0, 0),
            ("x\t\n".into(), 0, 0),
            (
                "u\t/etc/systemd/system/a:b.service\nx\t/etc/systemd/system/a:b.service:ExecStart=/bin/ab\n"
                    .into(),
                1,
                0,
            ),
            (
                "u\t/etc/systemd/system/@@fleetsweep:abc:end unit-files rc=0.service\n".into(),
                1,
                0,
            ),
            (long, 1, 0),
        ];
        for (body, nservices, nwarn) in cases {
            let (services, warnings) = parse_services(None, None, Some(&body));
            assert_eq!(services.len(), nservices, "body {:?}", body.get(..60));
            assert_eq!(
                warnings.len(),
                nwarn,
                "body {:?}: {warnings:?}",
                body.get(..60)
            );
        }
        let (services, _) = parse_services(
            None,
            None,
            Some("u\t/etc/systemd/system/a:b.service\nx\t/etc/systemd/system/a:b.service:ExecStart=/bin/ab\n"),
        );
        assert_eq!(services[0].exec.as_deref(), Some("/bin/ab"));
        let (services, warnings) = parse_services(Some("garbage\n"), Some("more garbage\n"), None);
        assert!(services.is_empty());
        assert_eq!(warnings.len(), 2, "{warnings:?}");
    }
}
