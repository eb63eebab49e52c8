//! The macOS probe: one read-only `sh` script over SSH, framed like the Linux
//! one (nonce markers, see [`crate::probes::linux::script`]), and its parsers.
//! The same parsers read the raw command outputs of offline bundles.
//!
//! Sections of `probe.sh` ([`SCRIPT`]):
//! - `sw-vers`: `sw_vers` (ProductName, ProductVersion, BuildVersion).
//! - `pkgutil`: `p<TAB>id[<TAB>version]` per `pkgutil --pkgs` receipt; versions
//!   (`pkgutil --pkg-info`) for every receipt not from Apple.
//! - `apps`: `a<TAB>path<TAB>bundle id<TAB>version<TAB>name<TAB>Team ID` per
//!   application bundle in /Applications (two levels), ~/Applications and the
//!   Kaspersky support folder; the Team ID from `codesign -dv`.
//! - `launchd`: `launchctl list` (PID, status, label), then
//!   `f<TAB>plist<TAB>label<TAB>program` per job plist in the LaunchDaemons and
//!   LaunchAgents folders.
//! - `sysext`: `systemextensionsctl list`.
//! - `kexts`: `kmutil showloaded --list-only`, else `kextstat -l`.
//! - `ps`: `ps -axww -o pid= -o ucomm= -o args=`.
//! - `browser-extensions`: `browser<TAB>profile<TAB>id` per Chrome/Edge
//!   extension directory and Firefox add-on.
//! - `paths`: like Linux, below the catalog's macOS path roots
//!   ([`crate::catalog::Catalog::path_roots`]).

use std::collections::{HashMap, HashSet};

use super::completeness::{judge_body, with_framing, SectionState};
use super::linux::sections::{parse_sections, warning, Rejects};
use super::linux::{framed, parse_paths, parse_ps, probe_state, sh_command, stdin_for};
use super::offline::{paths_list, saved_run};
use super::registry::{BundleFile, Probe, RequiredSection, RootDepth};
use super::{
    AppBundle, BrowserExtension, LaunchdJob, Observations, PkgReceipt, ProbeWarning,
    SystemExtension,
};
use crate::os::OsFamily;

/// The macOS probe script; its standard input is [`crate::probes::linux::stdin_for`].
pub const SCRIPT: &str = concat!(
    // LC_ALL and a macOS PATH, then the framing every sh probe shares.
    include_str!("probe_env.sh"),
    include_str!("../framing.sh"),
    include_str!("probe.sh")
);

/// The command that runs [`SCRIPT`] (its stdin carries nonce and roots).
pub fn command() -> String {
    sh_command(SCRIPT)
}

/// The macOS entry of the [probe registry](super::registry).
pub const PROBE: Probe = Probe {
    family: OsFamily::Macos,
    command,
    script: || SCRIPT.to_string(),
    stdin: stdin_for,
    sudo: true,
    parse,
    answered: framed,
    // A Mac runs the Linux probe's `sh` script and reports Darwin.
    recognises: |run| {
        run.obs
            .os
            .as_ref()
            .and_then(|o| o.name.as_deref())
            .is_some_and(|n| n == "Darwin")
    },
    // Only a vendor's own folder, never `/` or a whole top-level folder like
    // `/Applications` or `/var/log` (their exact paths are listed instead).
    root_depth: Some(RootDepth { glob: 3, exact: 2 }),
    fixed_roots: &[
        "/Applications",
        "/Users/*/Applications",
        "/Library/Application Support/Kaspersky Lab",
        "/Library/LaunchDaemons",
        "/Library/LaunchAgents",
        "/Users/*/Library/LaunchAgents",
    ],
    bundle_files: BUNDLE_FILES,
    required_sections: &[
        RequiredSection {
            what: "installer receipts (pkgutil)",
            any_of: &["pkgutil"],
        },
        RequiredSection {
            what: "application bundles",
            any_of: &["apps"],
        },
    ],
};

const BUNDLE_FILES: &[BundleFile] = &[
    BundleFile::text("macos.txt", "the macOS probe script's output", |t, obs| {
        saved_run(t, obs, "macos.txt", "macOS", parse)
    }),
    BundleFile::text("sw_vers.txt", "sw_vers", |t, obs| {
        let os = parse_sw_vers(t);
        obs.section("sw-vers", os_state(&os));
        obs.os = Some(os)
    }),
    BundleFile::text("pkgutil-pkgs.txt", "pkgutil --pkgs", |t, obs| {
        let found = bundle_list(obs, "pkgutil", t, true, false, parse_pkgutil(t));
        obs.add(|o| &mut o.pkg_receipts, found)
    }),
    BundleFile::text("launchctl-list.txt", "launchctl list", |t, obs| {
        let found = bundle_list(obs, "launchd", t, false, true, parse_launchctl_list(t));
        obs.add(|o| &mut o.launchd, found)
    }),
    BundleFile::text(
        "systemextensionsctl-list.txt",
        "systemextensionsctl list",
        |t, obs| {
            obs.system_extensions.extend(parse_systemextensionsctl(t));
        },
    ),
    BundleFile::text(
        "kextstat.txt",
        "kextstat -l (or kmutil showloaded --list-only)",
        |t, obs| {
            let (kexts, _) =
                bundle_list(obs, "kexts", t, false, true, (parse_kexts(t), Vec::new()));
            obs.kexts.extend(kexts)
        },
    ),
    BundleFile::text(
        "codesign.txt",
        "codesign -dv /Applications/*.app 2>&1",
        |t, obs| {
            // Signing details of the apps (`apps` comes from Info.plist files).
            let (apps, _) = bundle_list(
                obs,
                "codesign",
                t,
                false,
                false,
                (parse_codesign(t), Vec::new()),
            );
            obs.merge_apps(apps);
        },
    ),
    BundleFile::plist_dir(
        "Info.plist",
        "directory of copied application Info.plist files",
        |b, name, obs| match parse_info_plist(b) {
            Ok(mut app) => {
                obs.section("apps", (SectionState::Read, None));
                if app.path.is_none() {
                    app.path = Some(format!("{name} (Info.plist)"));
                }
                obs.merge_app(app);
            }
            Err(e) => {
                let why = format!("{name}: {e}");
                obs.section("Info.plist", (SectionState::Partial, Some(why.clone())));
                obs.warnings.push(warning("Info.plist", why))
            }
        },
    ),
    BundleFile::plist_dir(
        "LaunchDaemons",
        "directory of copied launchd job plists",
        |b, name, obs| match parse_launchd_plist(b) {
            Ok(mut job) => {
                obs.section("LaunchDaemons", (SectionState::Read, None));
                job.plist = Some(name.to_string());
                if !obs.launchd.iter().any(|j| j.label == job.label) {
                    obs.launchd.push(job);
                }
            }
            Err(e) => {
                let why = format!("{name}: {e}");
                obs.section("LaunchDaemons", (SectionState::Partial, Some(why.clone())));
                obs.warnings.push(warning("LaunchDaemons", why))
            }
        },
    ),
    BundleFile::text(
        "paths.txt",
        "find '/Library/Application Support/Kaspersky Lab' -maxdepth 3",
        paths_list,
    ),
];

/// Parses one run of [`SCRIPT`] whose markers carry `nonce`. Total.
pub fn parse(output: &str, nonce: &str) -> Observations {
    let split = parse_sections(output, nonce);
    let mut obs = Observations {
        warnings: split.warnings.clone(),
        ..Observations::default()
    };
    for s in &split.sections {
        if let Some(rc) = s.rc.filter(|rc| *rc != 0) {
            if s.name != "sw-vers" || s.body.trim().is_empty() {
                obs.warnings.push(warning(
                    s.name,
                    format!("command failed (exit status {rc}): its evidence may be incomplete"),
                ));
            }
        }
        // (warnings, judged content)
        let (w, judged) = match s.name {
            "sw-vers" => {
                let os = parse_sw_vers(s.body);
                let state = os_state(&os);
                obs.os = Some(os);
                (Vec::new(), state)
            }
            "pkgutil" => {
                let (r, w) = parse_pkgutil(s.body);
                let state = judge_body(s.body, r.len(), true, false);
                obs.pkg_receipts = r;
                (w, state)
            }
            "apps" => {
                let (a, w) = parse_apps(s.body);
                let state = judge_body(s.body, a.len(), true, false);
                obs.bundles = a;
                (w, state)
            }
            "launchd" => {
                let (j, w) = parse_launchctl_list(s.body);
                let state = judge_body(s.body, j.len(), false, true);
                obs.launchd = j;
                (w, state)
            }
            "sysext" => {
                obs.system_extensions = parse_systemextensionsctl(s.body);
                // Headers and "0 extension(s)" lines: judged on framing only.
                (Vec::new(), (SectionState::Read, None))
            }
            "kexts" => {
                obs.kexts = parse_kexts(s.body);
                let state = judge_body(s.body, obs.kexts.len(), false, true);
                (Vec::new(), state)
            }
            "ps" => {
                let (p, w) = parse_ps(s.body);
                let state = judge_body(s.body, p.len(), false, false);
                obs.processes = p;
                (w, state)
            }
            "browser-extensions" => {
                let (x, w) = parse_browser_extensions(s.body);
                let state = judge_body(s.body, x.len(), false, true);
                obs.browser_extensions = x;
                (w, state)
            }
            "paths" => {
                let (p, w) = parse_paths(s.body);
                let state = judge_body(s.body, p.len(), false, true);
                obs.paths = p;
                (w, state)
            }
            other => {
                obs.warnings
                    .push(warning(other, "unknown section ignored".to_string()));
                continue;
            }
        };
        // sw_vers may exit non-zero after printing everything (a known quirk).
        let rc = if s.name == "sw-vers" && judged.0 == SectionState::Read {
            None
        } else {
            s.rc
        };
        obs.section(s.name, with_framing(judged, s.complete, rc));
        obs.warnings.extend(w);
    }
    probe_state(&split, &mut obs);
    obs
}

/// `sw_vers` that named the system.
fn os_state(os: &fleetsweep_exporters::OsInfo) -> (SectionState, Option<String>) {
    if os.name.is_some() || os.version.is_some() {
        (SectionState::Read, None)
    } else {
        (
            SectionState::Failed,
            Some("no ProductName or ProductVersion in it".to_string()),
        )
    }
}

/// A single command output of a bundle: its list, and the state of the
/// section it answers for.
fn bundle_list<T>(
    obs: &mut Observations,
    section: &str,
    text: &str,
    strict: bool,
    empty_ok: bool,
    (found, warnings): (Vec<T>, Vec<ProbeWarning>),
) -> (Vec<T>, Vec<ProbeWarning>) {
    obs.section(section, judge_body(text, found.len(), strict, empty_ok));
    (found, warnings)
}

/// `sw_vers` → OS info (`ProductName:\tmacOS`, `ProductVersion:\t14.5`, `BuildVersion:\t23F79`).
pub fn parse_sw_vers(body: &str) -> fleetsweep_exporters::OsInfo {
    let mut name = None;
    let mut version = None;
    let mut build = None;
    for line in body.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k.trim() {
            "ProductName" => name = Some(v),
            "ProductVersion" => version = Some(v),
            "BuildVersion" => build = Some(v),
            _ => {}
        }
    }
    fleetsweep_exporters::OsInfo {
        family: "macos".to_string(),
        name,
        version: match (version, build) {
            (Some(v), Some(b)) => Some(format!("{v} ({b})")),
            (v, _) => v,
        },
    }
}

/// The `pkgutil` section, or a plain `pkgutil --pkgs` output (one id a line).
pub fn parse_pkgutil(body: &str) -> (Vec<PkgReceipt>, Vec<ProbeWarning>) {
    let mut out = Vec::new();
    let mut rejects = Rejects::default();
    let mut seen = HashSet::new();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let (id, version) = match line.strip_prefix("p\t") {
            Some(rest) => match rest.split_once('\t') {
                Some((id, v)) => (id, Some(v.trim()).filter(|v| !v.is_empty())),
                None => (rest, None),
            },
            None => (line.trim(), None),
        };
        if id.is_empty() || id.contains(char::is_whitespace) {
            rejects.note(line);
            continue;
        }
        if seen.insert(id.to_string()) {
            out.push(PkgReceipt {
                id: id.to_string(),
                version: version.map(str::to_string),
            });
        }
    }
    (out, rejects.into_warning("pkgutil").into_iter().collect())
}

/// The `apps` section.
pub fn parse_apps(body: &str) -> (Vec<AppBundle>, Vec<ProbeWarning>) {
    let mut out = Vec::new();
    let mut rejects = Rejects::default();
    let opt = |s: Option<&str>| {
        s.map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    for line in body.lines() {
        if line.is_empty() || line == "!truncated" {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.first() != Some(&"a") || f.len() < 3 {
            rejects.note(line);
            continue;
        }
        out.push(AppBundle {
            path: opt(f.get(1).copied()),
            bundle_id: opt(f.get(2).copied()),
            version: opt(f.get(3).copied()),
            name: opt(f.get(4).copied()),
            team_id: opt(f.get(5).copied()),
        });
    }
    (out, rejects.into_warning("apps").into_iter().collect())
}

/// `launchctl list` (`PID<TAB>Status<TAB>Label`, header optional), plus the
/// script's `f<TAB>plist<TAB>label<TAB>program` lines for job plists on disk.
pub fn parse_launchctl_list(body: &str) -> (Vec<LaunchdJob>, Vec<ProbeWarning>) {
    let mut out: Vec<LaunchdJob> = Vec::new();
    // label → its job in `out`: a search of `out` per line made 300,000 jobs
    // take over 20 s.
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut rejects = Rejects::default();
    for line in body.lines() {
        if line.trim().is_empty() || line.starts_with("PID\t") {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f[0] == "f" && f.len() >= 3 {
            let plist = f[1].to_string();
            let label = match f[2].trim() {
                "" => plist
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches(".plist")
                    .to_string(),
                l => l.to_string(),
            };
            let program = f.get(3).map(|s| s.trim()).filter(|s| !s.is_empty());
            match index.get(&label).and_then(|i| out.get_mut(*i)) {
                Some(j) => {
                    j.plist = Some(plist);
                    j.program = program.map(str::to_string);
                }
                None => {
                    index.insert(label.clone(), out.len());
                    out.push(LaunchdJob {
                        label,
                        loaded: false,
                        pid: None,
                        plist: Some(plist),
                        program: program.map(str::to_string),
                    });
                }
            }
            continue;
        }
        match f.as_slice() {
            [pid, status, label]
                if !label.is_empty() && (status.parse::<i64>().is_ok() || *status == "-") =>
            {
                let pid = pid.parse::<u32>().ok();
                match index.get(*label).and_then(|i| out.get_mut(*i)) {
                    Some(j) => {
                        j.loaded = true;
                        j.pid = pid;
                    }
                    None => {
                        index.insert(label.to_string(), out.len());
                        out.push(LaunchdJob {
                            label: label.to_string(),
                            loaded: true,
                            pid,
                            plist: None,
                            program: None,
                        });
                    }
                }
            }
            _ => rejects.note(line),
        }
    }
    (out, rejects.into_warning("launchd").into_iter().collect())
}

/// `systemextensionsctl list`: rows like
/// `*\t*\t2Y8XE5CQ94\tcom.kaspersky.kav.sysext (21.0/21.0.19)\tKaspersky\t[activated enabled]`.
/// Header and category lines (`--- com.apple.system_extension.network_extension`) are skipped.
pub fn parse_systemextensionsctl(body: &str) -> Vec<SystemExtension> {
    let mut out = Vec::new();
    for line in body.lines() {
        let Some(open) = line.rfind('[') else {
            continue;
        };
        let state = line[open..]
            .trim()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let cols: Vec<&str> = line[..open]
            .split('\t')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        // enabled, active, teamID, bundleID (version), name
        let Some(bi) = cols
            .iter()
            .position(|c| c.contains('.') && !c.starts_with('*'))
        else {
            continue;
        };
        let (bundle_id, version) = match cols[bi].split_once(" (") {
            Some((b, v)) => (b.trim(), Some(v.trim_end_matches(')').to_string())),
            None => (cols[bi], None),
        };
        if bundle_id.contains(char::is_whitespace) {
            continue;
        }
        let team_id = bi
            .checked_sub(1)
            .and_then(|i| cols.get(i))
            .filter(|t| !t.starts_with('*') && !t.is_empty())
            .map(|t| t.to_string());
        out.push(SystemExtension {
            team_id,
            bundle_id: bundle_id.to_string(),
            version,
            state,
        });
    }
    out
}

/// `kextstat -l` / `kmutil showloaded --list-only`: the bundle id is the first
/// column that is followed by a `(version)` column.
pub fn parse_kexts(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for line in body.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        for w in words.windows(2) {
            if w[1].starts_with('(') && w[0].contains('.') && w[0].chars().any(char::is_alphabetic)
            {
                if seen.insert(w[0]) {
                    out.push(w[0].to_string());
                }
                break;
            }
        }
    }
    out
}

/// The `browser-extensions` section.
pub fn parse_browser_extensions(body: &str) -> (Vec<BrowserExtension>, Vec<ProbeWarning>) {
    let mut out = Vec::new();
    let mut rejects = Rejects::default();
    for line in body.lines() {
        if line.is_empty() {
            continue;
        }
        match line.split('\t').collect::<Vec<_>>().as_slice() {
            [b, profile, id] if !id.is_empty() && !b.is_empty() => out.push(BrowserExtension {
                browser: b.to_string(),
                profile: Some(profile.to_string()).filter(|p| !p.is_empty()),
                id: id.to_string(),
            }),
            _ => rejects.note(line),
        }
    }
    (
        out,
        rejects
            .into_warning("browser-extensions")
            .into_iter()
            .collect(),
    )
}

/// `codesign -dv APP...` output (stderr, one block per app): `Executable=`,
/// `Identifier=`, `TeamIdentifier=` lines → (bundle path, identifier, Team ID).
pub fn parse_codesign(body: &str) -> Vec<AppBundle> {
    let mut out: Vec<AppBundle> = Vec::new();
    let mut cur: Option<AppBundle> = None;
    for line in body.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim();
        match k.trim() {
            "Executable" => {
                out.extend(cur.take());
                let path = v.find(".app/").map(|i| v[..i + 4].to_string());
                cur = Some(AppBundle {
                    path,
                    ..AppBundle::default()
                });
            }
            "Identifier" => {
                if let Some(c) = cur.as_mut() {
                    c.bundle_id = Some(v.to_string());
                }
            }
            "TeamIdentifier" => {
                if let Some(c) = cur.as_mut() {
                    c.team_id = Some(v.to_string()).filter(|t| t != "not set");
                }
            }
            _ => {}
        }
    }
    out.extend(cur);
    out
}

/// Deepest nesting of arrays and dictionaries a plist may have (real ones
/// stay under 10), and the most values it may hold. The plist library builds
/// values recursively: 20,000 nested arrays overflowed the stack, and a
/// binary plist whose objects share references expands exponentially.
const PLIST_MAX_DEPTH: usize = 64;
const PLIST_MAX_EVENTS: usize = 200_000;

/// A plist (XML or binary) from a host, read only after one streaming pass
/// (no recursion) has checked its depth and size.
fn plist_value(bytes: &[u8]) -> Result<plist::Value, String> {
    let mut depth = 0usize;
    for (n, event) in plist::stream::Reader::new(std::io::Cursor::new(bytes)).enumerate() {
        let event = event.map_err(|e| format!("not a plist: {e}"))?;
        if n >= PLIST_MAX_EVENTS {
            return Err(format!(
                "the plist holds more than {PLIST_MAX_EVENTS} values"
            ));
        }
        match event {
            plist::stream::Event::StartArray(_) | plist::stream::Event::StartDictionary(_) => {
                depth += 1;
                if depth > PLIST_MAX_DEPTH {
                    return Err(format!(
                        "the plist nests arrays or dictionaries deeper than {PLIST_MAX_DEPTH} levels"
                    ));
                }
            }
            plist::stream::Event::EndCollection => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    plist::from_bytes(bytes).map_err(|e| format!("not a plist: {e}"))
}

/// An `Info.plist` (XML or binary) → bundle id, version and name.
pub fn parse_info_plist(bytes: &[u8]) -> Result<AppBundle, String> {
    let v = plist_value(bytes)?;
    let d = v
        .as_dictionary()
        .ok_or_else(|| "the plist is not a dictionary".to_string())?;
    let s = |k: &str| {
        d.get(k)
            .and_then(plist::Value::as_string)
            .map(str::to_string)
    };
    Ok(AppBundle {
        path: None,
        bundle_id: s("CFBundleIdentifier"),
        version: s("CFBundleShortVersionString").or_else(|| s("CFBundleVersion")),
        name: s("CFBundleName"),
        team_id: None,
    })
}

/// A launchd job plist (XML or binary) → its label and first program argument.
pub fn parse_launchd_plist(bytes: &[u8]) -> Result<LaunchdJob, String> {
    let v = plist_value(bytes)?;
    let d = v
        .as_dictionary()
        .ok_or_else(|| "the plist is not a dictionary".to_string())?;
    let label = d
        .get("Label")
        .and_then(plist::Value::as_string)
        .ok_or_else(|| "the job plist has no Label".to_string())?;
    let program = d
        .get("Program")
        .and_then(plist::Value::as_string)
        .map(str::to_string)
        .or_else(|| {
            d.get("ProgramArguments")
                .and_then(plist::Value::as_array)
                .and_then(|a| a.first())
                .and_then(plist::Value::as_string)
                .map(str::to_string)
        });
    Ok(LaunchdJob {
        label: label.to_string(),
        loaded: false,
        pid: None,
        plist: None,
        program,
    })
}

#[cfg(test)]
mod tests;
