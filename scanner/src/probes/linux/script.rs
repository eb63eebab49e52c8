//! The Linux probe script: one POSIX `sh` program, run once per host.
//!
//! One exec instead of one per tool keeps a sweep at one SSH round trip per host
//! (connection cost dominates; docs/architecture.md). The script
//! only reads: it writes no file, needs no root (it sees more with it), and runs
//! under dash, bash and busybox ash.
//!
//! Its standard input is [`stdin_for`]: a per-run nonce, the catalog's path roots,
//! and a `.` line. Every section of output is framed by marker lines carrying the
//! nonce, so nothing a host stores (a package description, a file name, a process
//! title) can open or close a section:
//!
//! ```text
//! @@fleetsweep:NONCE:begin dpkg
//! install ok installed<TAB>dpkg<TAB>1.21.22<TAB>amd64<TAB>Dpkg Developers <...>
//!
//! @@fleetsweep:NONCE:end dpkg rc=0
//! ...
//! @@fleetsweep:NONCE:done
//! ```
//!
//! The end marker is printed after a newline of its own (so a body without a
//! final newline cannot hide it); the parser removes that one newline. A section
//! whose tool is missing is not printed at all; `done` tells "absent" from "cut".

/// Upper bound on path roots sent to the script; a catalog has a handful.
pub const MAX_PATH_ROOTS: usize = 64;

/// The probe script. See the module docs for its input and output.
///
/// Sections, in order (each only when its source exists):
/// - `os-release`: `/etc/os-release`, else `/usr/lib/os-release` (at most 200
///   lines, read by the shell).
/// - `uname`: the kernel's name and release from `/proc/sys/kernel/ostype` and
///   `osrelease` (what `uname -sr` prints), else `uname -sr`.
/// - `dpkg`: `dpkg-query -W` with `${Status}` (the long form works with every
///   dpkg, `${db:Status-Abbrev}` only since 1.16.2), then name, version, arch and
///   maintainer, tab-separated; the free-text maintainer is last.
/// - `rpm`: only where rpm's database exists: `/var/lib/rpm` or
///   `/usr/lib/sysimage/rpm` is a non-empty directory or, on a host without
///   dpkg, `%{_dbpath}` is (rpm's own answer, for a database moved elsewhere).
///   Debian's rpm tool otherwise creates `~/.rpmdb` in the scan user's home, a
///   write the probe must not make, and fails where the home is not writable,
///   which is not a probe failure. (On a dpkg host rpm is a foreign tool whose
///   database, if any, is in a standard place; asking rpm would cost every
///   such host a start of rpm.) Then `rpm --dbpath DIR -qa`, so that rpm reads
///   the database found and no other: name, `EPOCH:VERSION-RELEASE`, arch,
///   vendor, packager.
/// - `apk`: the `P:`/`V:`/`A:`/`m:` lines of `/lib/apk/db/installed`, else `apk info -v`.
/// - `systemd`, `systemd-running`: `systemctl list-unit-files` / `list-units
///   --state=running`, only when systemd is PID 1 (`/run/systemd/system`).
/// - `unit-files`: always: `u<TAB>path` per `*.service` file in the unit
///   directories, `i<TAB>path` per `/etc/init.d` script (at most 5000 of
///   both), then one `grep -H` of all of them for `ExecStart=` and `DAEMON=`
///   lines (`path:line`; the parser takes a unit's `ExecStart=` and an init
///   script's `DAEMON=`).
/// - `processes`: `pid<TAB>comm` from `/proc` (at most 10000; `comm` up to its
///   first newline), then, in `/proc`, `proc-head` (`head -v -n 1` of every
///   `PID/cmdline` and `PID/cgroup`: only a file's first line is ever printed,
///   so a process cannot forge a `==> PID/cmdline <==` header with a newline in
///   its arguments; NUL and tab turned into spaces, cut at 4096 bytes),
///   `proc-ls` (`ls -ldnq` of every `PID` directory, whose owner is the
///   process's uid, every `PID/exe` and the `ns/pid` links of `self` and every
///   `PID`, root's only readable by root; newlines in an executable's path
///   print as `?`) and `proc-status` (the `PPid:` and `NSpid:` lines of
///   `self/status` and every `PID/status`, readable by anyone), which tell the
///   processes running in containers ([`super::containers`]). Where `ls` has
///   no `-q` (BusyBox), `proc-ls` is three sections instead: `proc-exe`
///   (`readlink` per process, newlines turned into `?`), `proc-owner` (`ls
///   -ldn`) and `proc-pidns` (`ls -l`). Without a usable `/proc`, section `ps`
///   with `ps -eo pid=,comm=,args=` instead.
/// - `modules`: `/proc/modules`, else `lsmod`. A kernel built without loadable
///   module support has no `/proc/modules` at all: then there are no modules,
///   which is an answer, not a failure.
/// - `paths`: `d|f|l|o<TAB>path` for each root from stdin and everything below it
///   to depth 3, at most 2000 entries per root.
/// - `kesl-app-info`: only where KESL's `kesl-control` exists
///   (`/opt/kaspersky/kesl/bin/kesl-control`, or on PATH): `kesl-control
///   --app-info` (read-only: prints the product's state), under `timeout 20`
///   when there is one, its stdout cut at 64 KiB, then `!rc=N`, its exit status.
///
/// A bounded list that hit its bound ends with a `!truncated` line.
pub const SCRIPT: &str = concat!(
    r#"LC_ALL=C; export LC_ALL
PATH="${PATH:+$PATH:}/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"; export PATH
"#,
    include_str!("../framing.sh"),
    r#"lines() {
  m=0
  while IFS= read -r l || [ -n "$l" ]; do
    m=$((m+1)); [ "$m" -le 200 ] || break
    printf '%s\n' "$l"
  done <"$1"
}
osrel() {
  for f in /etc/os-release /usr/lib/os-release; do
    [ -f "$f" ] && [ -r "$f" ] && { lines "$f"; return 0; }
  done
  return 1
}
kern() {
  ko=; kr=
  { IFS= read -r ko </proc/sys/kernel/ostype && IFS= read -r kr </proc/sys/kernel/osrelease; } 2>/dev/null
  if [ -n "$ko" ] && [ -n "$kr" ]; then printf '%s %s\n' "$ko" "$kr"; else uname -sr; fi
}
apkdb() {
  if [ -r /lib/apk/db/installed ]; then sed -n '/^[PVAm]:/p;/^$/p' /lib/apk/db/installed
  else apk info -v; fi
}
units() {
  n=0; g=
  for d in /etc/systemd/system /run/systemd/system /usr/local/lib/systemd/system /lib/systemd/system /usr/lib/systemd/system; do
    [ -d "$d" ] || continue
    case $d in /lib/*) [ -L /lib ] && continue;; esac
    g="$g$d "
    for f in "$d"/*.service; do
      [ -e "$f" ] || [ -L "$f" ] || continue
      n=$((n+1)); [ "$n" -le 5000 ] || { echo '!truncated'; break 2; }
      printf 'u\t%s\n' "$f"
    done
  done
  if [ "$n" -le 5000 ]; then
    for f in /etc/init.d/*; do
      [ -f "$f" ] || continue
      n=$((n+1)); [ "$n" -le 5000 ] || { echo '!truncated'; break; }
      printf 'i\t%s\n' "$f"
    done
  fi
  set -f; set -- $g; set +f
  for d in "$@"; do shift; set -- "$@" "$d"/*.service; done
  grep -H -e '^[[:space:]]*ExecStart[[:space:]]*=' -e '^[[:space:]]*DAEMON=' -- "$@" /etc/init.d/* 2>/dev/null
  return 0
}
procs() {
  n=0
  for d in /proc/[0-9]*; do
    [ -r "$d/cmdline" ] || continue
    n=$((n+1)); [ "$n" -le 10000 ] || { echo '!truncated'; return 0; }
    c=; IFS= read -r c 2>/dev/null <"$d/comm"
    case $c in *"$T"*) c=$(printf '%s' "$c" | tr '\t' ' ');; esac
    printf '%s\t%s\t\t\n' "${d#/proc/}" "$c"
  done
  return 0
}
phead() { head -v -n 1 -- [0-9]*/cmdline [0-9]*/cgroup 2>/dev/null | tr '\000\t' '  ' | cut -c 1-4096; return 0; }
pls() { ls -ldnq -- [0-9]* [0-9]*/exe self/ns/pid [0-9]*/ns/pid 2>/dev/null; return 0; }
pexe() {
  nl=$(printf '\n_'); nl=${nl%_}
  for f in [0-9]*/exe; do
    t=$(readlink "$f" 2>/dev/null) || continue
    case $t in *"$nl"*|*"$R"*) t=$(printf '%s' "$t" | tr '\n\r' '??');; esac
    printf 'l %s -> %s\n' "$f" "$t"
  done
  return 0
}
mods() { if [ -r /proc/modules ]; then cat /proc/modules; elif [ ! -e /proc/modules ] && [ -d /proc/sys/kernel ]; then :; else lsmod; fi; }
kapp() {
  if has timeout; then t="timeout 20"; else t=; fi
  { $t "$1" --app-info 2>/dev/null; echo "!rc=$?"; } | head -c 65536
  return 0
}
echo
sec os-release osrel
sec uname kern
if has dpkg-query; then
  sec dpkg dpkg-query -W -f='${Status}\t${Package}\t${Version}\t${Architecture}\t${Maintainer}\n'
fi
full() { for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do [ -e "$e" ] || [ -L "$e" ] && return 0; done; return 1; }
if has rpm; then
  d=
  for c in /var/lib/rpm /usr/lib/sysimage/rpm; do [ -d "$c" ] && full "$c" && { d=$c; break; }; done
  if [ -z "$d" ] && ! has dpkg-query; then d=$(rpm --eval '%{_dbpath}' 2>/dev/null); fi
  if [ -n "$d" ] && [ -d "$d" ] && full "$d"; then
    sec rpm rpm --dbpath "$d" -qa --queryformat '%{NAME}\t%{EPOCH}:%{VERSION}-%{RELEASE}\t%{ARCH}\t%{VENDOR}\t%{PACKAGER}\n'
  fi
fi
if [ -r /lib/apk/db/installed ] || has apk; then sec apk apkdb; fi
if [ -d /run/systemd/system ] && has systemctl; then
  sec systemd systemctl list-unit-files --type=service --no-legend --no-pager
  sec systemd-running systemctl list-units --type=service --state=running --no-legend --no-pager --plain
fi
sec unit-files units
powner() { ls -ldn -- [0-9]* 2>/dev/null; return 0; }
pns() { ls -l -- self/ns/pid [0-9]*/ns/pid 2>/dev/null; return 0; }
pst() { grep -H -e '^PPid:' -e '^NSpid:' -- self/status [0-9]*/status 2>/dev/null; return 0; }
if [ -r /proc/self/cmdline ] && cd /proc; then
  sec processes procs; sec proc-head phead
  if ls -dq / >/dev/null 2>&1; then sec proc-ls pls
  else sec proc-exe pexe; sec proc-owner powner; sec proc-pidns pns; fi
  sec proc-status pst
  cd /
else
  sec ps ps -eo pid=,comm=,args=
fi
sec modules mods
sec paths paths "$@"
k=/opt/kaspersky/kesl/bin/kesl-control
[ -x "$k" ] || k=$(command -v kesl-control 2>/dev/null) || k=
if [ -n "$k" ] && [ -x "$k" ]; then sec kesl-app-info kapp "$k"; fi
printf '@@fleetsweep:%s:done\n' "$N"
exit 0
"#
);

/// The probe script, to be run by `sh -c` with [`stdin_for`] as its input.
/// Over SSH, prefer [`command`]: it does not depend on the login shell.
pub fn script() -> String {
    SCRIPT.to_owned()
}

/// A command line that runs [`SCRIPT`] under `/bin/sh` whatever POSIX-like login
/// shell (bash, zsh, ksh, dash) the account has; zsh, for one, aborts on a glob
/// that matches nothing, which the script relies on. csh and fish are not
/// supported (csh rejects newlines inside quotes).
pub fn command() -> String {
    format!("exec /bin/sh -c {}", sh_quote(SCRIPT))
}

/// The command line the sweep runs `script` with: `/bin/sh -c SCRIPT`, without
/// [`command`]'s `exec`, so that `sudo -n` can wrap it. Shared by every `sh` probe.
pub fn sh_command(script: &str) -> String {
    format!("/bin/sh -c {}", sh_quote(script))
}

/// Quotes `s` as one POSIX shell word.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// A fresh nonce for one run: 24 ASCII letters and digits, which is what the
/// script accepts.
pub fn new_nonce() -> String {
    use rand::Rng;
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

/// The script's standard input: the nonce, then each usable path root on its own
/// line, then a `.` line that ends the input (so the script never waits for EOF).
///
/// Roots that are not absolute, or that hold control characters (newline, CR,
/// tab, NUL), are left out rather than passed on, as are roots beyond
/// [`MAX_PATH_ROOTS`]. The nonce must be ASCII letters and digits (see
/// [`new_nonce`]); the script refuses any other and prints nothing.
///
/// ```
/// use fleetsweep::probes::linux::stdin_for;
/// let input = stdin_for("abc123", &["/opt/kaspersky".to_string(), "relative".to_string()]);
/// assert_eq!(input, b"abc123\n/opt/kaspersky\n.\n");
/// ```
pub fn stdin_for(nonce: &str, path_roots: &[String]) -> Vec<u8> {
    let mut out = String::with_capacity(64);
    out.push_str(nonce);
    out.push('\n');
    for root in path_roots
        .iter()
        .filter(|r| is_usable_root(r))
        .take(MAX_PATH_ROOTS)
    {
        out.push_str(root);
        out.push('\n');
    }
    out.push_str(".\n");
    out.into_bytes()
}

fn is_usable_root(root: &str) -> bool {
    root.starts_with('/') && !root.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_keeps_only_absolute_single_line_roots() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "N\n.\n"),
            (&["/opt/kaspersky"], "N\n/opt/kaspersky\n.\n"),
            (
                &["/opt/kaspersky", "/var/opt/kaspersky"],
                "N\n/opt/kaspersky\n/var/opt/kaspersky\n.\n",
            ),
            (&["opt/kaspersky"], "N\n.\n"),
            (&[""], "N\n.\n"),
            (&["/opt/x\n/etc"], "N\n.\n"),
            (&["/opt/x\r"], "N\n.\n"),
            (&["/opt/x\ty"], "N\n.\n"),
            (&["/opt/\0x"], "N\n.\n"),
            (&["."], "N\n.\n"),
            (&["/opt/with space"], "N\n/opt/with space\n.\n"),
            (&["/opt/k*"], "N\n/opt/k*\n.\n"),
        ];
        for (roots, want) in cases {
            let roots: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
            let got = String::from_utf8_lossy(&stdin_for("N", &roots)).into_owned();
            assert_eq!(&got, want, "roots {roots:?}");
        }
    }

    #[test]
    fn stdin_caps_the_number_of_roots() {
        let roots: Vec<String> = (0..200).map(|i| format!("/r{i}")).collect();
        let input = String::from_utf8_lossy(&stdin_for("N", &roots)).into_owned();
        // nonce + roots + terminator
        assert_eq!(input.lines().count(), 1 + MAX_PATH_ROOTS + 1);
    }

    #[test]
    fn nonces_are_fresh_and_alphanumeric() {
        let a = new_nonce();
        let b = new_nonce();
        assert_eq!(a.len(), 24);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn command_quotes_the_script_as_one_word() {
        assert_eq!(sh_quote("a'b"), r"'a'\''b'");
        let cmd = command();
        assert!(cmd.starts_with("exec /bin/sh -c '"));
        assert!(cmd.ends_with('\''));
    }

    #[test]
    fn script_avoids_common_bashisms() {
        // The script must run under dash and busybox ash; these constructs do not.
        for bashism in [
            "[[ ",
            "function ",
            "local ",
            "$'",
            "<<<",
            "${!",
            "source ",
            "pipefail",
        ] {
            assert!(!SCRIPT.contains(bashism), "script uses {bashism:?}");
        }
        assert!(SCRIPT.trim_end().ends_with("exit 0"));
    }
}
