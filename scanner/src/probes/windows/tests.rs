#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;

use base64::Engine;

use super::*;
use crate::probes::completeness;

/// Read-only cmdlets the probe (and its loader) may use. Every `Verb-Noun`
/// token of the script must be here; write verbs never are.
const ALLOWED_CMDLETS: &[&str] = &[
    "ConvertTo-Json",
    "ForEach-Object",
    "Get-ChildItem",
    "Get-CimInstance",
    "Get-Item",
    "Get-ItemProperty",
    "Join-Path",
    "Out-String",
    "Select-Object",
    "Sort-Object",
    "Split-Path",
    "Test-Path",
    "Where-Object",
];

/// Things a read-only probe must never contain, whatever the tokeniser sees.
const FORBIDDEN: &[&str] = &[
    "win32_product",
    "invoke-expression",
    "iex ",
    "invoke-command",
    "invoke-wmimethod",
    "invoke-cimmethod",
    "start-process",
    "set-",
    "remove-",
    "new-item",
    "out-file",
    "add-content",
    "::write",
    "::delete",
    "::copy",
    "::move",
    ".delete(",
    ".setvalue(",
    "stop-",
    "restart-",
];

/// `Verb-Noun` tokens: a capitalised verb, a dash, a capitalised noun.
fn cmdlet_tokens(script: &str) -> Vec<String> {
    let b = script.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start_ok = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if start_ok && b[i].is_ascii_uppercase() {
            let mut j = i + 1;
            while j < b.len() && b[j].is_ascii_alphanumeric() {
                j += 1;
            }
            if j > i + 1 && j + 1 < b.len() && b[j] == b'-' && b[j + 1].is_ascii_uppercase() {
                let mut k = j + 2;
                while k < b.len() && (b[k].is_ascii_alphanumeric()) {
                    k += 1;
                }
                out.push(script[i..k].to_string());
                i = k;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn decode_encoded_command(line: &str) -> String {
    let b64 = line
        .rsplit(' ')
        .next()
        .expect("the -EncodedCommand argument");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("valid base64");
    assert_eq!(bytes.len() % 2, 0, "UTF-16LE has an even number of bytes");
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).expect("valid UTF-16LE")
}

#[test]
fn encoded_command_fits_cmd_exe_and_carries_the_script() {
    let line = encoded_command();
    eprintln!(
        "script {} bytes, loader {} chars, command line {} chars (limit {CMD_EXE_LIMIT})",
        script().len(),
        loader().len(),
        line.len()
    );
    assert!(
        line.len() <= CMD_EXE_LIMIT,
        "{} chars > {CMD_EXE_LIMIT}",
        line.len()
    );
    assert!(line.starts_with("powershell.exe -NoProfile -NonInteractive -EncodedCommand "));
    // Only base64 after the flag: nothing cmd.exe or PowerShell would interpret.
    let arg = line.rsplit(' ').next().unwrap();
    assert!(arg
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(&c)));
    let loader_text = decode_encoded_command(&line);
    assert_eq!(loader_text, loader());
    // The loader's body inflates to exactly the script.
    let start = loader_text.find("FromBase64String('").unwrap() + "FromBase64String('".len();
    let end = start + loader_text[start..].find('\'').unwrap();
    let gz = base64::engine::general_purpose::STANDARD
        .decode(&loader_text[start..end])
        .unwrap();
    let mut body = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut body)
        .unwrap();
    assert_eq!(body, script());
    // Without the loader the script would not fit: the compression is needed.
    let plain = format!(
        "powershell.exe -EncodedCommand {}",
        encode_utf16le(&script())
    );
    assert!(plain.len() > CMD_EXE_LIMIT, "{}", plain.len());
}

#[test]
fn script_and_loader_use_only_read_only_cmdlets() {
    for (what, text) in [("script", script()), ("loader", loader())] {
        let tokens = cmdlet_tokens(&text);
        for t in &tokens {
            assert!(
                ALLOWED_CMDLETS.iter().any(|a| a.eq_ignore_ascii_case(t)),
                "{what} uses `{t}`, which is not on the read-only allow-list"
            );
        }
        let lower = text.to_ascii_lowercase();
        // The comment names what is never used; strip comment lines first.
        let code: String = lower
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        for f in FORBIDDEN {
            assert!(!code.contains(f), "{what} contains `{f}`");
        }
        assert!(!code.contains('>'), "{what} redirects output to a file");
    }
    let tokens = cmdlet_tokens(&script());
    for needed in ["Get-ItemProperty", "Get-CimInstance", "ConvertTo-Json"] {
        assert!(tokens.iter().any(|t| t == needed), "{needed} missing");
    }
    // The tokeniser itself: it sees cmdlets and ignores date formats and flags.
    assert_eq!(
        cmdlet_tokens("Get-Item x|Remove-Item y; 'yyyy-MM-dd' -ErrorAction Stop"),
        vec!["Get-Item", "Remove-Item"]
    );
}

#[test]
fn script_reads_every_source_the_issue_lists() {
    let s = script();
    for needle in [
        r"HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall",
        r"HKLM:\SOFTWARE\WOW6432Node\Microsoft\Windows\CurrentVersion\Uninstall",
        "HKEY_USERS",
        "Win32_Service",
        "Win32_SystemDriver",
        "Instances",
        "Win32_Process",
        r"HKLM:\SOFTWARE\KasperskyLab",
        r"HKLM:\SOFTWARE\WOW6432Node\KasperskyLab",
        "root/SecurityCenter2",
        r"Cert:\LocalMachine\Root",
        "Win32_OperatingSystem",
        "Protection_BasesDate",
        "-First",
    ] {
        assert!(s.contains(needle), "script lacks {needle}");
    }
}

const WORKSTATION: &str =
    include_str!("../../../../tests/fixtures/windows/probe/workstation-kes.json");

#[test]
fn parses_a_workstation_document() {
    let obs = parse(WORKSTATION);
    assert!(obs.warnings.is_empty(), "{:?}", obs.warnings);
    let os = obs.os.clone().unwrap();
    assert_eq!(os.name.as_deref(), Some("Microsoft Windows 10 Enterprise"));
    assert_eq!(os.version.as_deref(), Some("10.0.19045 (build 19045)"));
    assert_eq!(obs.uninstall.len(), 4);
    let kes = &obs.uninstall[0];
    assert_eq!(kes.publisher.as_deref(), Some("AO Kaspersky Lab"));
    assert_eq!(kes.key_name(), "{9A017442-C1BC-4A6F-B2C7-8A1B2C3D4E5F}");
    assert!(kes.key.starts_with("HKLM/SOFTWARE/WOW6432Node/"));
    assert!(obs.uninstall[3].key.starts_with("HKU/S-1-5-21"));
    assert_eq!(obs.windows_services.len(), 3);
    assert!(obs.windows_services[0].running());
    assert_eq!(obs.drivers[0].file_name(), "klif.sys");
    assert_eq!(obs.drivers[0].altitude.as_deref(), Some("323600"));
    assert_eq!(obs.processes.len(), 3);
    assert_eq!(
        obs.processes[1].exe.as_deref(),
        Some(
            "C:/Program Files (x86)/Kaspersky Lab/Kaspersky Endpoint Security for Windows/avp.exe"
        )
    );
    assert_eq!(
        obs.registry_keys,
        vec![
            "HKLM/SOFTWARE/WOW6432Node/KasperskyLab",
            "HKLM/SOFTWARE/WOW6432Node/KasperskyLab/Components",
            "HKLM/SOFTWARE/WOW6432Node/KasperskyLab/Components/34/1103/1.0.0.0/Statistics/AVState"
        ]
    );
    assert_eq!(obs.signature_updates.len(), 1);
    assert_eq!(obs.signature_updates[0].date.to_string(), "2024-09-28");
    assert_eq!(obs.paths[0].path, "C:/Program Files (x86)/Kaspersky Lab");
    assert_eq!(obs.av_products.len(), 2);
    assert_eq!(obs.certificates.len(), 2);
    assert_eq!(obs.browser_extensions.len(), 2);
}

#[test]
fn powershell_quirks_and_server_without_security_center() {
    // PowerShell 5.1 writes a one-element list as the bare object; a Windows
    // Server has no SecurityCenter2 (av_products null plus the script's note).
    let doc = r#"{"fleetsweep":1,"os":{"Caption":"Microsoft Windows Server 2019 Datacenter","Version":"10.0.17763","BuildNumber":"17763","ProductType":3},
      "uninstall":{"Key":"HKEY_LOCAL_MACHINE\\SOFTWARE\\X","DisplayName":"Only One","DisplayVersion":"1"},
      "services":[],"processes":[],"registry_keys":"HKLM\\SOFTWARE\\KasperskyLab","av_products":null,
      "errors":{"Section":"av_products","Message":"Security Center not available: Invalid namespace"}}"#;
    let obs = parse(doc);
    assert_eq!(obs.uninstall.len(), 1);
    assert_eq!(obs.registry_keys, vec!["HKLM/SOFTWARE/KasperskyLab"]);
    assert!(obs.av_products.is_empty());
    assert_eq!(obs.warnings.len(), 1, "{:?}", obs.warnings);
    assert_eq!(obs.warnings[0].section, "av_products");
}

#[test]
fn broken_output_is_a_warning_never_a_panic() {
    for (out, want) in [
        ("", "no JSON"),
        ("#< CLIXML\r\n<Objs/>", "no JSON"),
        (
            "{\"fleetsweep\":1,\"uninstall\":[{\"DisplayName\":\"x\"",
            "not valid JSON",
        ),
        ("{\"something\":\"else\"}", "not fleetsweep"),
    ] {
        let obs = parse(out);
        // A cut document also warns about the lists it never reached.
        if !want.contains("not valid") {
            assert_eq!(obs.warnings.len(), 1, "{out:?}: {:?}", obs.warnings);
        }
        assert!(
            obs.warnings[0].message.contains(want),
            "{out:?}: {:?}",
            obs.warnings
        );
    }
    // Noise before the document (a profile banner, a BOM) is skipped.
    let obs = parse(&format!("\u{feff}banner\r\n{WORKSTATION}\r\n"));
    assert_eq!(obs.uninstall.len(), 4);
    // Wrong types and huge strings: kept bounded, never a panic.
    let long = "A".repeat(100_000);
    let doc = format!(
        r#"{{"fleetsweep":1,"uninstall":[{{"DisplayName":"{long}"}},{{"DisplayName":5}},{{"DisplayName":[1]}},7],"processes":[{{"Name":"x","ProcessId":-3}}],"registry_values":[{{"Key":"k","Name":"Protection_BasesDate","Value":"99-99-2024"}}]}}"#
    );
    let obs = parse(&doc);
    assert_eq!(obs.uninstall.len(), 2);
    assert_eq!(obs.uninstall[0].display_name.len(), MAX_STRING);
    assert_eq!(obs.processes[0].pid, 0);
    assert!(obs.warnings.iter().any(|w| w.section == "registry_values"));
    // Arbitrary bytes.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for round in 0..200 {
        let mut s = String::from("{\"fleetsweep\":1,");
        for _ in 0..(round * 13 % 600) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let alphabet = b"{}[]\",:\\0aZ \n";
            s.push(alphabet[(x % alphabet.len() as u64) as usize] as char);
        }
        let _ = parse(&s);
    }
}

#[test]
fn kaspersky_dates() {
    let d = |s| parse_kaspersky_date(s).map(|d| d.to_string());
    assert_eq!(d("28-09-2024 21-14-03").as_deref(), Some("2024-09-28"));
    assert_eq!(d("2024-09-28").as_deref(), Some("2024-09-28"));
    assert_eq!(d("28.09.2024 21:14:03").as_deref(), Some("2024-09-28"));
    assert_eq!(d("31-02-2024 00-00-00"), None);
    assert_eq!(d(""), None);
    assert_eq!(d("never"), None);
}

#[test]
fn keys_and_paths_normalise_to_catalog_form() {
    assert_eq!(
        normalize_key(r"HKEY_LOCAL_MACHINE\SOFTWARE\KasperskyLab"),
        "HKLM/SOFTWARE/KasperskyLab"
    );
    assert_eq!(normalize_key(r"HKLM:\SOFTWARE\X"), "HKLM/SOFTWARE/X");
    assert_eq!(
        normalize_key(r"Registry::HKEY_USERS\S-1\Software"),
        "HKU/S-1/Software"
    );
    assert_eq!(
        normalize_path(r"C:\ProgramData\Kaspersky Lab"),
        "C:/ProgramData/Kaspersky Lab"
    );
}

/// A multi-byte character where a hive prefix would end used to panic the
/// whole sweep (byte slicing inside a character).
#[test]
fn keys_with_multibyte_characters_at_the_prefix_boundary_do_not_panic() {
    for key in [
        "HKLMé",
        "HKLM:é",
        "HKEY_USERé",
        "HKEY_LOCAL_MACHIN€\\X",
        "é",
        "HKCU",
        "",
    ] {
        let _ = normalize_key(key);
    }
    assert_eq!(normalize_key("HKLMé"), "HKLMé");
    assert_eq!(normalize_key(r"HKLM:\é"), "HKLM/é");
    let obs = parse(
        r#"{"fleetsweep":1,"uninstall":[{"Key":"HKLMé","DisplayName":"Kaspersky Endpoint Security for Windows","Publisher":"AO Kaspersky Lab"}],"services":[],"processes":[]}"#,
    );
    assert_eq!(obs.uninstall.len(), 1);
    assert_eq!(obs.uninstall[0].key, "HKLMé");
}

#[test]
fn windows_default_shells_are_recognised_by_their_answer() {
    // cmd.exe and PowerShell, asked to run `/bin/sh -c ...`.
    assert!(looks_like_windows_shell(
        "'/bin/sh' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n"
    ));
    assert!(looks_like_windows_shell(
        "/bin/sh : The term '/bin/sh' is not recognized as the name of a cmdlet, function, script file, or operable program."
    ));
    assert!(!looks_like_windows_shell("sh: 1: dpkg-query: not found"));
    assert!(!looks_like_windows_shell(""));
}

fn state(obs: &Observations, section: &str) -> Option<SectionState> {
    obs.sections.get(section).map(|s| s.state)
}

#[test]
fn a_cut_document_keeps_every_complete_entry_before_the_cut() {
    let whole = WORKSTATION.trim();
    // Cut inside the second uninstall entry: the first (KES) is kept.
    let first = whole.find("\"DisplayName\"").expect("an entry");
    let second = whole[first + 1..]
        .find("\"DisplayName\"")
        .map(|i| first + 1 + i + 5)
        .expect("a second entry");
    let obs = parse(&whole[..second]);
    assert_eq!(obs.uninstall.len(), 1, "{:?}", obs.warnings);
    assert_eq!(
        obs.uninstall[0].publisher.as_deref(),
        Some("AO Kaspersky Lab")
    );
    assert_eq!(state(&obs, "uninstall"), Some(SectionState::Partial));
    assert_eq!(state(&obs, "services"), Some(SectionState::Failed));
    assert_eq!(state(&obs, "probe"), Some(SectionState::Partial));
    let v = completeness::verdict(&obs.sections, PROBE.required_sections);
    assert_eq!(v.missing.len(), 1, "{v:?}");
    assert!(
        v.missing[0]
            .starts_with("services (services: not in the output: the document was cut before it)"),
        "{v:?}"
    );
    // Cut at every byte: never a panic, never more entries than the whole.
    for i in 0..whole.len() {
        if let Some(prefix) = whole.get(..i) {
            let obs = parse(prefix);
            assert!(obs.uninstall.len() <= 4);
        }
    }
    // The whole document is read, every list.
    let obs = parse(whole);
    assert!(
        obs.sections.values().all(|s| s.state == SectionState::Read),
        "{:?}",
        obs.sections
    );
    assert_eq!(
        completeness::verdict(&obs.sections, PROBE.required_sections),
        completeness::Verdict::default()
    );
}

#[test]
fn a_powershell_error_is_no_document() {
    let err = "Get-CimInstance : Access denied \r\nAt line:1 char:1\r\n+ & ([ScriptBlock]::Create($s))\r\n+ CategoryInfo : PermissionDenied: (root\\cimv2:Win32_Service) [Get-CimInstance], CimException {x}\r\n";
    let obs = parse(err);
    assert_eq!(state(&obs, "probe"), Some(SectionState::Failed));
    let why = obs.sections["probe"].reason.clone().unwrap_or_default();
    assert!(
        why.contains("it begins: \"Get-CimInstance : Access denied\""),
        "{why}"
    );
    let v = completeness::verdict(&obs.sections, PROBE.required_sections);
    assert_eq!(v.missing.len(), 2, "{v:?}");
}

#[test]
fn lists_of_the_wrong_type_fail_their_section() {
    let doc = r#"{"fleetsweep":1,"os":{"Caption":"W"},"uninstall":5,"services":"x","drivers":true,"processes":[1,2,3],"registry_keys":[],"registry_values":[],"paths":[],"av_products":null,"certificates":[],"browser_extensions":[],"errors":[]}"#;
    let obs = parse(doc);
    assert_eq!(state(&obs, "uninstall"), Some(SectionState::Failed));
    assert_eq!(
        obs.sections["uninstall"].reason.as_deref(),
        Some("has the wrong JSON type (number), not a list")
    );
    assert_eq!(state(&obs, "services"), Some(SectionState::Failed));
    assert_eq!(state(&obs, "drivers"), Some(SectionState::Failed));
    assert_eq!(state(&obs, "processes"), Some(SectionState::Failed));
    assert_eq!(state(&obs, "registry_keys"), Some(SectionState::Read));
    assert_eq!(state(&obs, "av_products"), None);
    let v = completeness::verdict(&obs.sections, PROBE.required_sections);
    assert_eq!(v.missing.len(), 2, "{v:?}");
    assert_eq!(v.incomplete.len(), 2, "{v:?}");
    // The script's own report of a failed list fails it; Security Center's does not.
    let doc = r#"{"fleetsweep":1,"uninstall":[],"services":[],"processes":[],"errors":[{"Section":"services","Message":"Win32_Service returned nothing"},{"Section":"av_products","Message":"Security Center not available"}]}"#;
    let obs = parse(doc);
    assert_eq!(state(&obs, "services"), Some(SectionState::Failed));
    assert_eq!(state(&obs, "uninstall"), Some(SectionState::Read));
    assert_eq!(state(&obs, "av_products"), Some(SectionState::Failed));
}

#[test]
fn reading_a_cut_document_is_linear_and_bounded() {
    // 50,000 entries cut in the last one (kept up to the cap); and deep
    // nesting in an entry.
    let mut doc = String::from("{\"fleetsweep\":1,\"uninstall\":[");
    for i in 0..50_000 {
        doc.push_str(&format!("{{\"Key\":\"k{i}\",\"DisplayName\":\"n{i}\"}},"));
    }
    doc.push_str("{\"Key\":\"cut");
    let t = std::time::Instant::now();
    let d = read_document(&doc).unwrap();
    assert!(t.elapsed().as_secs() < 20);
    assert_eq!(d.map["uninstall"].as_array().map(Vec::len), Some(MAX_ITEMS));
    let deep = format!("{{\"fleetsweep\":1,\"uninstall\":[{}", "[".repeat(100_000));
    let obs = parse(&deep);
    assert_eq!(state(&obs, "uninstall"), Some(SectionState::Failed));
}
