//! The Windows probe: one read-only PowerShell script per host, printing one
//! JSON document, and the pure parser that turns it into [`Observations`].
//!
//! # Layout
//! - `probe.ps1`: the script ([`script`]). It reads the Uninstall keys of both
//!   registry views and every loaded user hive (never `Win32_Product`, which
//!   makes Windows Installer verify and possibly repair every MSI product),
//!   services, drivers with their minifilter altitudes, processes, the
//!   `KasperskyLab` registry keys (both views) with Network Agent's `AVState`
//!   statistics, the Kaspersky install roots, Security Center's
//!   `AntiVirusProduct` (absent on Windows Server: a warning, not a failure),
//!   `Cert:\LocalMachine\Root`, browser extension directories and the OS
//!   caption/version/build. Every list is capped and every string cut.
//! - [`encoded_command`]: the command line to run it. `-EncodedCommand` takes
//!   UTF-16LE base64, so quoting works whether the remote default shell is
//!   cmd.exe or PowerShell; the script is gzip-compressed inside a small loader
//!   so that the line stays under cmd.exe's 8191-character limit.
//! - [`parse`]: the JSON document → observations; [`clixml`]: `Export-Clixml`
//!   files of offline bundles.
//!
//! ```
//! use fleetsweep::probes::windows;
//! let obs = windows::parse(r#"{"fleetsweep":1,"os":{"Caption":"Microsoft Windows 11 Pro","Version":"10.0.22631","BuildNumber":"22631"},
//!   "uninstall":[{"Key":"HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\X","DisplayName":"7-Zip","Publisher":"Igor Pavlov"}]}"#);
//! assert_eq!(obs.uninstall[0].display_name, "7-Zip");
//! assert_eq!(obs.os.unwrap().version.as_deref(), Some("10.0.22631 (build 22631)"));
//! ```

pub mod clixml;

use std::io::Write;

use base64::Engine;
use serde_json::Value;

use crate::os::OsFamily;

use super::completeness::{self, judge_lines, SectionState};
use super::linux::sections::warning;
use super::registry::{BundleFile, Probe, RequiredSection};
use super::{
    AvProduct, Certificate, Driver, Observations, PathEntry, PathKind, ProbeWarning, Process,
    SignatureUpdate, UninstallEntry, WindowsService,
};

/// The Windows entry of the [probe registry](super::registry).
pub const PROBE: Probe = Probe {
    family: OsFamily::Windows,
    command: encoded_command,
    script,
    // Everything is in the command line: no stdin, and no path roots (the
    // script lists its fixed roots only).
    stdin: |_, _| Vec::new(),
    sudo: false,
    parse: |stdout, _| parse(stdout),
    answered: |stdout, _| stdout.contains("\"fleetsweep\""),
    recognises: |run| !run.answered && looks_like_windows_shell(run.stderr),
    root_depth: None,
    fixed_roots: &[
        r"%ProgramFiles%\Kaspersky Lab",
        r"%ProgramFiles%\KasperskyLab",
        r"%ProgramFiles(x86)%\Kaspersky Lab",
        r"%ProgramFiles(x86)%\KasperskyLab",
        r"%ProgramData%\Kaspersky Lab",
        r"%ProgramData%\KasperskyLab",
    ],
    bundle_files: &[
        BundleFile::text(
            "windows.json",
            "the Windows probe script's output",
            |t, obs| obs.merge(parse(t)),
        ),
        BundleFile::text(
            "Get-Service.xml",
            "Get-Service | Export-Clixml",
            |t, obs| {
                add_export(obs, "services", t, clixml::services(t), |o| {
                    &mut o.windows_services
                })
            },
        ),
        BundleFile::text(
            "Win32_OperatingSystem.xml",
            "Get-CimInstance Win32_OperatingSystem | Export-Clixml",
            |t, obs| {
                let (os, w) = clixml::operating_system(t);
                obs.section("os", export_state(t, usize::from(os.is_some())));
                obs.os = obs.os.take().or(os);
                obs.warnings.extend(w);
            },
        ),
        BundleFile::text(
            "uninstall.xml",
            "Get-ItemProperty over the Uninstall keys | Export-Clixml",
            |t, obs| {
                add_export(obs, "uninstall", t, clixml::uninstall(t), |o| {
                    &mut o.uninstall
                })
            },
        ),
    ],
    required_sections: &[
        RequiredSection {
            what: "the Uninstall list (Apps & Features)",
            any_of: &["uninstall"],
        },
        RequiredSection {
            what: "services",
            any_of: &["services"],
        },
    ],
};

/// An `Export-Clixml` file of a bundle: read when it gave at least one
/// object, failed when it has text but nothing readable, empty otherwise.
fn export_state(text: &str, found: usize) -> (SectionState, Option<String>) {
    let lines = usize::from(!text.trim().is_empty());
    judge_lines(lines, found, 0, false)
}

/// A list read from an Export-Clixml file: judged as its section, then
/// added to the list `list` picks.
fn add_export<T>(
    obs: &mut Observations,
    section: &str,
    text: &str,
    found: (Vec<T>, Vec<ProbeWarning>),
    list: fn(&mut Observations) -> &mut Vec<T>,
) {
    obs.section(section, export_state(text, found.0.len()));
    obs.add(list, found);
}

/// cmd.exe's and PowerShell's answers to a missing `/bin/sh`: a Windows host
/// without an `os:` hint, given the Linux probe.
pub fn looks_like_windows_shell(stderr: &str) -> bool {
    stderr.contains("is not recognized as an internal or external command")
        || stderr.contains("is not recognized as the name of a cmdlet")
        || stderr.contains("The system cannot find the path specified")
}

/// The probe script, as run on the host.
const SCRIPT: &str = include_str!("probe.ps1");

/// The longest command line cmd.exe accepts.
pub const CMD_EXE_LIMIT: usize = 8191;

/// Cap on each list taken from the JSON document (the script caps them too).
const MAX_ITEMS: usize = 20_000;
/// Cap on each string taken from the JSON document.
const MAX_STRING: usize = 4096;

/// The PowerShell probe script (plain text, as documented for offline bundles).
pub fn script() -> String {
    SCRIPT.to_string()
}

/// The loader that `-EncodedCommand` carries: it inflates the gzip+base64 body
/// of [`script`] and runs it as a script block (no `Invoke-Expression`: the
/// only code it can run is the body embedded in the same command line).
pub fn loader() -> String {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = gz.write_all(SCRIPT.as_bytes());
    let body = gz.finish().unwrap_or_default();
    let b64 = base64::engine::general_purpose::STANDARD.encode(body);
    format!(
        "$m=[IO.MemoryStream]::new([Convert]::FromBase64String('{b64}'));\
         $z=[IO.Compression.GZipStream]::new($m,[IO.Compression.CompressionMode]::Decompress);\
         $s=[IO.StreamReader]::new($z,[Text.Encoding]::UTF8).ReadToEnd();\
         & ([ScriptBlock]::Create($s))"
    )
}

/// `text` as UTF-16LE base64, the form `-EncodedCommand` takes.
pub fn encode_utf16le(text: &str) -> String {
    let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The full command line that runs the probe, for an SSH exec (OpenSSH for
/// Windows, any default shell) or a WinRM shell. Built (gzip, base64) once per
/// process: it is the same for every host.
pub fn encoded_command() -> String {
    static COMMAND: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "powershell.exe -NoProfile -NonInteractive -EncodedCommand {}",
            encode_utf16le(&loader())
        )
    });
    COMMAND.clone()
}

/// Parses the probe's JSON document. Total: any output, even empty or hostile,
/// gives `Observations`, with warnings saying what is missing.
///
/// A document cut short (the transport's byte limit, a killed PowerShell) keeps
/// every complete list entry read before the cut ([`read_document`]); the list
/// that was cut is [`SectionState::Partial`], the lists after it are missing.
/// Output that is no JSON document at all (a PowerShell error) fails the
/// `probe` section with the first line of what was printed.
pub fn parse(stdout: &str) -> Observations {
    let mut obs = Observations::default();
    let text = stdout.trim_start_matches('\u{feff}');
    let not_json = |obs: &mut Observations, what: &str| {
        let why = format!(
            "{what} (it begins: \"{}\")",
            sections_clip(first_text_line(text))
        );
        obs.section("probe", (SectionState::Failed, Some(why.clone())));
        obs.warnings.push(warning("probe", why));
    };
    let Some(start) = text.find('{') else {
        not_json(&mut obs, "no JSON document in the Windows probe output");
        return obs;
    };
    let doc = match read_document(&text[start..]) {
        Ok(doc) => doc,
        Err(e) => {
            not_json(
                &mut obs,
                &format!("the Windows probe output is not valid JSON: {e}"),
            );
            return obs;
        }
    };
    if let Some(cut) = &doc.cut {
        obs.warnings.push(warning(
            "probe",
            format!(
                "the Windows probe output is not valid JSON (cut short?): {}",
                cut.why
            ),
        ));
        obs.section("probe", (SectionState::Partial, Some(cut.why.clone())));
    }
    let value = Value::Object(doc.map);
    if value.get("fleetsweep").is_none() {
        not_json(
            &mut obs,
            "the JSON document is not fleetsweep Windows probe output",
        );
        return obs;
    }
    from_document(&value, &mut obs);
    judge_sections(&value, doc.cut.as_ref(), &mut obs);
    obs
}

/// The first non-blank line of `text`.
fn first_text_line(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

fn sections_clip(s: &str) -> String {
    super::linux::sections::clip(s)
}

/// The lists of the probe document, each a section.
const LISTS: &[&str] = &[
    "uninstall",
    "services",
    "drivers",
    "processes",
    "registry_keys",
    "registry_values",
    "paths",
    "av_products",
    "certificates",
    "browser_extensions",
];

/// Records the state of every list of the document: missing, the wrong JSON
/// type, cut, garbage entries, or failed by the script's own account (its
/// `errors` list). Security Center (`av_products`) may be absent: Windows
/// Server has none, and nothing depends on it.
fn judge_sections(doc: &Value, cut: Option<&Cut>, obs: &mut Observations) {
    for key in LISTS {
        let state = match doc.get(*key) {
            None => (
                SectionState::Failed,
                Some(match cut {
                    Some(_) => "not in the output: the document was cut before it".to_string(),
                    None => "missing from the Windows probe output".to_string(),
                }),
            ),
            Some(Value::Null) if *key == "av_products" => continue,
            Some(v @ (Value::Array(_) | Value::Object(_))) => {
                let items = list(doc, key);
                let kept = items.iter().filter(|i| usable(key, i)).count();
                let total = match v {
                    Value::Array(a) => a.len().min(MAX_ITEMS),
                    _ => 1,
                };
                judge_lines(total, kept, total - kept, true)
            }
            Some(Value::String(_)) if *key == "registry_keys" => (SectionState::Read, None),
            Some(other) => (
                SectionState::Failed,
                Some(format!(
                    "has the wrong JSON type ({}), not a list",
                    json_type(other)
                )),
            ),
        };
        let state = match cut {
            Some(c) if c.key.as_deref() == Some(*key) && state.0 == SectionState::Read => {
                let kept = list(doc, key).iter().filter(|i| usable(key, i)).count();
                let state = if kept > 0 {
                    SectionState::Partial
                } else {
                    SectionState::Failed
                };
                (state, Some(format!("cut short: {}", c.why)))
            }
            _ => state,
        };
        obs.section(key, state);
    }
    match doc.get("os") {
        Some(Value::Object(_)) => obs.section("os", (SectionState::Read, None)),
        Some(other) => obs.section(
            "os",
            (
                SectionState::Failed,
                Some(format!("has the wrong JSON type ({})", json_type(other))),
            ),
        ),
        None => {}
    }
    for e in list(doc, "errors") {
        if let (Some(s), Some(m)) = (text(e, "Section"), text(e, "Message")) {
            if s != "av_products" && LISTS.contains(&s.as_str()) {
                // The script's own account beats what the list looks like.
                obs.sections.insert(
                    s,
                    completeness::SectionResult {
                        state: SectionState::Failed,
                        reason: Some(sections_clip(&m)),
                    },
                );
            }
        }
    }
}

/// An entry of list `key` that the parser keeps.
fn usable(key: &str, v: &Value) -> bool {
    let field = match key {
        "uninstall" => "DisplayName",
        "services" | "drivers" | "processes" => "Name",
        "registry_keys" => return v.as_str().is_some(),
        "registry_values" => "Name",
        "paths" => "Path",
        "av_products" => "displayName",
        "certificates" => "Subject",
        "browser_extensions" => "Id",
        _ => return true,
    };
    text(v, field).is_some()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

/// The probe document as far as it could be read.
#[derive(Debug, Default)]
pub struct Document {
    /// The top-level members read completely, and the complete entries of a
    /// list that was cut.
    pub map: serde_json::Map<String, Value>,
    /// Where and why reading stopped early; None for a whole document.
    pub cut: Option<Cut>,
}

/// Where a document stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    /// The member being read when it stopped (None: between members).
    pub key: Option<String>,
    pub why: String,
}

/// Reads the top-level object at the start of `text` member by member, and
/// lists element by element, so a document cut short (or broken) keeps every
/// complete entry before the break. Linear: each value is parsed once by
/// serde_json (which bounds nesting depth), and reading stops at the first
/// break. `Err` when `text` does not even start a JSON object with a key.
pub fn read_document(text: &str) -> Result<Document, String> {
    let b = text.as_bytes();
    let mut doc = Document::default();
    let mut pos = skip_ws(b, 0);
    if b.get(pos) != Some(&b'{') {
        return Err("no JSON object".to_string());
    }
    pos = skip_ws(b, pos + 1);
    let stop = |doc: &mut Document, key: Option<&str>, why: String| {
        doc.cut = Some(Cut {
            key: key.map(str::to_string),
            why,
        });
    };
    let at = |pos: usize| format!("at byte {pos}");
    if b.get(pos) == Some(&b'}') {
        return Ok(doc);
    }
    loop {
        // A key.
        let key = match next_value::<String>(text, pos) {
            Ok((k, end)) => {
                pos = end;
                k
            }
            Err(e) => {
                if doc.map.is_empty() && !e.is_eof() {
                    return Err(e.to_string());
                }
                stop(&mut doc, None, format!("{e} ({})", at(pos)));
                return Ok(doc);
            }
        };
        pos = skip_ws(b, pos);
        match b.get(pos) {
            Some(b':') => pos = skip_ws(b, pos + 1),
            _ => {
                stop(
                    &mut doc,
                    Some(&key),
                    format!("no value for `{}` ({})", sections_clip(&key), at(pos)),
                );
                return Ok(doc);
            }
        }
        // Its value: a list element by element, anything else whole.
        if b.get(pos) == Some(&b'[') {
            let (items, end, broken) = read_list(text, pos);
            doc.map.insert(key.clone(), Value::Array(items));
            if let Some(why) = broken {
                stop(&mut doc, Some(&key), why);
                return Ok(doc);
            }
            pos = end;
        } else {
            match next_value::<Value>(text, pos) {
                Ok((v, end)) => {
                    doc.map.insert(key.clone(), v);
                    pos = end;
                }
                Err(e) => {
                    stop(&mut doc, Some(&key), format!("{e} ({})", at(pos)));
                    return Ok(doc);
                }
            }
        }
        pos = skip_ws(b, pos);
        match b.get(pos) {
            Some(b',') => pos = skip_ws(b, pos + 1),
            Some(b'}') => return Ok(doc),
            None => {
                stop(
                    &mut doc,
                    None,
                    format!("the document ends without `}}` ({})", at(pos)),
                );
                return Ok(doc);
            }
            Some(_) => {
                stop(&mut doc, None, format!("expected `,` or `}}` {}", at(pos)));
                return Ok(doc);
            }
        }
    }
}

/// The list starting at `pos` (a `[`): its complete elements, the position
/// after it, and why it broke off, if it did.
fn read_list(text: &str, mut pos: usize) -> (Vec<Value>, usize, Option<String>) {
    let b = text.as_bytes();
    let mut items = Vec::new();
    pos = skip_ws(b, pos + 1);
    if b.get(pos) == Some(&b']') {
        return (items, pos + 1, None);
    }
    loop {
        match next_value::<Value>(text, pos) {
            Ok((v, end)) => {
                if items.len() < MAX_ITEMS {
                    items.push(v);
                }
                pos = skip_ws(b, end);
            }
            Err(e) => {
                let n = items.len();
                return (items, pos, Some(format!("{e}, after {n} complete entries")));
            }
        }
        match b.get(pos) {
            Some(b',') => pos = skip_ws(b, pos + 1),
            Some(b']') => return (items, pos + 1, None),
            None => {
                let n = items.len();
                return (
                    items,
                    pos,
                    Some(format!(
                        "the document ends inside a list, after {n} complete entries"
                    )),
                );
            }
            Some(_) => {
                let n = items.len();
                return (
                    items,
                    pos,
                    Some(format!(
                        "expected `,` or `]` at byte {pos}, after {n} complete entries"
                    )),
                );
            }
        }
    }
}

/// One JSON value starting at `pos`, and the position after it.
fn next_value<T: serde::de::DeserializeOwned>(
    text: &str,
    pos: usize,
) -> Result<(T, usize), serde_json::Error> {
    let rest = text.get(pos..).unwrap_or("");
    let mut stream = serde_json::Deserializer::from_str(rest).into_iter::<T>();
    match stream.next() {
        Some(Ok(v)) => Ok((v, pos + stream.byte_offset())),
        Some(Err(e)) => Err(e),
        None => Err(serde::de::Error::custom("EOF while parsing a value")),
    }
}

fn skip_ws(b: &[u8], mut pos: usize) -> usize {
    while b.get(pos).is_some_and(|c| c.is_ascii_whitespace()) {
        pos += 1;
    }
    pos
}

/// Fills `obs` from a parsed probe document.
pub fn from_document(doc: &Value, obs: &mut Observations) {
    if doc.get("fleetsweep").is_none() {
        obs.warnings.push(warning(
            "probe",
            "the JSON document is not fleetsweep Windows probe output".to_string(),
        ));
        return;
    }
    obs.warnings.extend(missing_sections(doc));
    if let Some(os) = doc.get("os") {
        obs.os = Some(os_info(
            text(os, "Caption"),
            text(os, "Version"),
            text(os, "BuildNumber"),
        ));
    }
    for u in list(doc, "uninstall") {
        let Some(name) = text(u, "DisplayName") else {
            continue;
        };
        obs.uninstall.push(UninstallEntry {
            key: normalize_key(&text(u, "Key").unwrap_or_default()),
            display_name: name,
            display_version: text(u, "DisplayVersion"),
            publisher: text(u, "Publisher"),
            install_location: text(u, "InstallLocation"),
            uninstall_string: text(u, "UninstallString"),
        });
    }
    for s in list(doc, "services") {
        let Some(name) = text(s, "Name") else {
            continue;
        };
        obs.windows_services.push(WindowsService {
            name,
            display_name: text(s, "DisplayName"),
            state: text(s, "State"),
            start_mode: text(s, "StartMode"),
            image_path: text(s, "PathName"),
        });
    }
    for d in list(doc, "drivers") {
        let Some(name) = text(d, "Name") else {
            continue;
        };
        obs.drivers.push(Driver {
            name,
            display_name: text(d, "DisplayName"),
            state: text(d, "State"),
            start_mode: text(d, "StartMode"),
            image_path: text(d, "PathName"),
            altitude: text(d, "Altitude"),
        });
    }
    for p in list(doc, "processes") {
        let Some(name) = text(p, "Name") else {
            continue;
        };
        obs.processes.push(Process {
            pid: p
                .get("ProcessId")
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            name,
            cmdline: text(p, "CommandLine").unwrap_or_default(),
            exe: text(p, "ExecutablePath").map(|e| normalize_path(&e)),
            owner_uid: None,
            container: None,
        });
    }
    for k in list(doc, "registry_keys") {
        if let Some(k) = k.as_str().filter(|k| !k.is_empty()) {
            obs.registry_keys.push(normalize_key(&cut(k)));
        }
    }
    for v in list(doc, "registry_values") {
        let (Some(key), Some(name), Some(value)) =
            (text(v, "Key"), text(v, "Name"), text(v, "Value"))
        else {
            continue;
        };
        if name == "Protection_BasesDate" {
            match parse_kaspersky_date(&value) {
                Some(date) => obs.signature_updates.push(SignatureUpdate {
                    product: "Kaspersky Security Center Network Agent".to_string(),
                    date,
                    source: format!("{}\\{name}", normalize_key(&key).replace('/', "\\")),
                }),
                None => obs.warnings.push(warning(
                    "registry_values",
                    format!("{name} not understood: {:?}", cut_to(&value, 80)),
                )),
            }
        }
    }
    for p in list(doc, "paths") {
        let Some(path) = text(p, "Path") else {
            continue;
        };
        let kind = match text(p, "Kind").as_deref() {
            Some("dir") => PathKind::Dir,
            Some("file") => PathKind::File,
            _ => PathKind::Other,
        };
        obs.paths.push(PathEntry {
            path: normalize_path(&path),
            kind,
        });
    }
    match doc.get("av_products") {
        Some(Value::Null) | None => {}
        Some(_) => {
            for a in list(doc, "av_products") {
                let Some(name) = text(a, "displayName") else {
                    continue;
                };
                obs.av_products.push(AvProduct {
                    display_name: name,
                    product_exe: text(a, "pathToSignedProductExe"),
                    product_state: a
                        .get("productState")
                        .and_then(Value::as_u64)
                        .and_then(|n| u32::try_from(n).ok()),
                });
            }
        }
    }
    for c in list(doc, "certificates") {
        let Some(subject) = text(c, "Subject") else {
            continue;
        };
        obs.certificates.push(Certificate {
            subject,
            thumbprint: text(c, "Thumbprint"),
            not_after: text(c, "NotAfter"),
            store: "Cert:\\LocalMachine\\Root".to_string(),
        });
    }
    for x in list(doc, "browser_extensions") {
        let (Some(browser), Some(id)) = (text(x, "Browser"), text(x, "Id")) else {
            continue;
        };
        obs.browser_extensions.push(super::BrowserExtension {
            browser,
            profile: text(x, "Profile"),
            id,
        });
    }
    for e in list(doc, "errors") {
        if let (Some(s), Some(m)) = (text(e, "Section"), text(e, "Message")) {
            obs.warnings.push(warning(&s, m));
        }
    }
}

/// OS info from Win32_OperatingSystem's Caption, Version and BuildNumber.
pub fn os_info(
    caption: Option<String>,
    version: Option<String>,
    build: Option<String>,
) -> fleetsweep_exporters::OsInfo {
    let version = match (version, build) {
        (Some(v), Some(b)) => Some(format!("{v} (build {b})")),
        (v, b) => v.or(b.map(|b| format!("build {b}"))),
    };
    fleetsweep_exporters::OsInfo {
        family: "windows".to_string(),
        name: caption.map(|c| c.trim().to_string()),
        version,
    }
}

/// A JSON list under `key`; PowerShell writes a one-element list as the bare
/// element, so an object counts as a list of one.
fn list<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    match v.get(key) {
        Some(Value::Array(a)) => a.iter().take(MAX_ITEMS).collect(),
        Some(o @ Value::Object(_)) => vec![o],
        Some(s @ Value::String(_)) => vec![s],
        _ => Vec::new(),
    }
}

/// A string field (numbers and booleans as text), cut to a bounded length;
/// empty strings count as absent.
fn text(v: &Value, key: &str) -> Option<String> {
    let s = match v.get(key)? {
        Value::String(s) => cut(s.trim()),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

fn cut(s: &str) -> String {
    cut_to(s, MAX_STRING)
}

fn cut_to(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// `HKEY_LOCAL_MACHINE\SOFTWARE\X` and `HKLM:\SOFTWARE\X` → `HKLM/SOFTWARE/X`,
/// the form catalog `registry_key` globs are written in.
pub fn normalize_key(key: &str) -> String {
    let k = key.trim().trim_start_matches("Registry::");
    let k = k.replace('\\', "/");
    for (long, short) in [
        ("HKEY_LOCAL_MACHINE", "HKLM"),
        ("HKLM:", "HKLM"),
        ("HKEY_USERS", "HKU"),
        ("HKEY_CURRENT_USER", "HKCU"),
        ("HKCU:", "HKCU"),
    ] {
        // `get` and `get(n..)`, not indexing: a host's key may have a
        // multi-byte character where the prefix would end (`HKLMé`).
        if let (Some(head), Some(tail)) = (k.get(..long.len()), k.get(long.len()..)) {
            if head.eq_ignore_ascii_case(long) {
                return format!("{short}{tail}");
            }
        }
    }
    k
}

/// `C:\Program Files (x86)\Kaspersky Lab` → `C:/Program Files (x86)/Kaspersky Lab`,
/// the form catalog `path` globs are written in.
pub fn normalize_path(path: &str) -> String {
    path.trim().replace('\\', "/")
}

/// Kaspersky's registry dates: `dd-MM-yyyy HH-mm-ss` (Network Agent AVState,
/// as Checkmk reads it); ISO `yyyy-MM-dd` is accepted too.
pub fn parse_kaspersky_date(s: &str) -> Option<jiff::civil::Date> {
    let day = s.split_whitespace().next()?;
    let parts: Vec<&str> = day.split(['-', '.', '/']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (y, m, d) = if a.len() == 4 { (a, b, c) } else { (c, b, a) };
    jiff::civil::Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?).ok()
}

/// Warnings for a document that is missing whole sections the script always
/// writes (a cut or foreign document).
fn missing_sections(doc: &Value) -> Vec<ProbeWarning> {
    ["uninstall", "services", "processes"]
        .into_iter()
        .filter(|k| doc.get(*k).is_none())
        .map(|k| {
            warning(
                k,
                "section missing from the Windows probe output".to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
