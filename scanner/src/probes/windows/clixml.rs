//! CLIXML (`Export-Clixml`) files of offline Windows bundles: what users on
//! air-gapped networks often already collect with their own tooling.
//!
//! Only the flat, named properties of each top-level object are read (`<S>`,
//! `<B>`, `<I32>`, ... in `<Props>` and `<MS>`), plus the `<ToString>` of enum
//! objects (`Status`, `StartType`). That covers `Get-Service`,
//! `Get-CimInstance Win32_OperatingSystem` and `Get-ItemProperty` over the
//! Uninstall keys; nested objects and references are skipped.

use std::collections::BTreeMap;

use super::super::linux::sections::warning;
use super::super::{ProbeWarning, UninstallEntry, WindowsService};
use super::normalize_key;

/// One top-level object: property name → value as text.
pub type Object = BTreeMap<String, String>;

/// Cap on objects read from one file.
const MAX_OBJECTS: usize = 20_000;
/// Deepest element nesting read (real CLIXML stays under 20). roxmltree
/// recurses with the depth: 20,000 nested elements overflowed the stack.
const MAX_DEPTH: usize = 256;

/// One streaming pass (no recursion) over the elements: refuses a document
/// nested deeper than `max` before a tree is built from it.
fn depth_within(xml: &str, max: usize) -> Result<(), String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0usize;
    loop {
        match reader.read_event() {
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth > max {
                    return Err(format!(
                        "not read: elements nested deeper than {max} levels"
                    ));
                }
            }
            Ok(Event::End(_)) => depth = depth.saturating_sub(1),
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            // Malformed XML is not read further either: what quick-xml
            // skipped, roxmltree would build with recursion.
            Err(e) => return Err(format!("not a CLIXML document: {e}")),
        }
    }
}

/// Parses a CLIXML document into its top-level objects. Total: malformed XML
/// gives what was read before the error is reported as a warning.
pub fn parse_objects(xml: &str, section: &str) -> (Vec<Object>, Vec<ProbeWarning>) {
    let xml = xml.trim_start_matches('\u{feff}');
    if let Err(e) = depth_within(xml, MAX_DEPTH) {
        return (Vec::new(), vec![warning(section, e)]);
    }
    let doc = match roxmltree::Document::parse(xml) {
        Ok(d) => d,
        Err(e) => {
            return (
                Vec::new(),
                vec![warning(section, format!("not a CLIXML document: {e}"))],
            )
        }
    };
    let root = doc.root_element();
    if root.tag_name().name() != "Objs" {
        return (
            Vec::new(),
            vec![warning(
                section,
                format!(
                    "not a CLIXML document (root element <{}>)",
                    root.tag_name().name()
                ),
            )],
        );
    }
    let mut out = Vec::new();
    for obj in root
        .children()
        .filter(|n| n.is_element() && n.tag_name().name() == "Obj")
        .take(MAX_OBJECTS)
    {
        let mut o = Object::new();
        for group in obj
            .children()
            .filter(|n| n.is_element() && matches!(n.tag_name().name(), "Props" | "MS"))
        {
            for p in group.children().filter(|n| n.is_element()) {
                let Some(name) = p.attribute("N") else {
                    continue;
                };
                let value = match p.tag_name().name() {
                    "Nil" | "Ref" => continue,
                    "Obj" => {
                        // Enums and similar: their display text.
                        match p
                            .children()
                            .find(|c| c.is_element() && c.tag_name().name() == "ToString")
                        {
                            Some(t) => t.text().unwrap_or_default().to_string(),
                            None => continue,
                        }
                    }
                    _ => p.text().unwrap_or_default().to_string(),
                };
                o.insert(name.to_string(), decode(&value));
            }
        }
        if let Some(t) = obj
            .children()
            .find(|c| c.is_element() && c.tag_name().name() == "ToString")
        {
            o.entry("ToString".to_string())
                .or_insert_with(|| decode(t.text().unwrap_or_default()));
        }
        out.push(o);
    }
    (out, Vec::new())
}

/// CLIXML escapes characters XML cannot carry as `_xHHHH_`.
fn decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("_x") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let hex = tail.get(2..6);
        let ok = tail.get(6..7) == Some("_");
        match hex
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .filter(|_| ok)
        {
            Some(cp) => {
                out.push(char::from_u32(cp).unwrap_or('\u{fffd}'));
                rest = &tail[7..];
            }
            None => {
                out.push_str("_x");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn get(o: &Object, k: &str) -> Option<String> {
    o.get(k)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// `Get-Service | Export-Clixml`: services (drivers are not in Get-Service).
pub fn services(xml: &str) -> (Vec<WindowsService>, Vec<ProbeWarning>) {
    let (objs, warnings) = parse_objects(xml, "get-service");
    let services = objs
        .iter()
        .filter_map(|o| {
            Some(WindowsService {
                name: get(o, "ServiceName").or_else(|| get(o, "Name"))?,
                display_name: get(o, "DisplayName"),
                state: get(o, "Status"),
                start_mode: get(o, "StartType"),
                image_path: None,
            })
        })
        .collect();
    (services, warnings)
}

/// `Get-CimInstance Win32_OperatingSystem | Export-Clixml`.
pub fn operating_system(xml: &str) -> (Option<fleetsweep_exporters::OsInfo>, Vec<ProbeWarning>) {
    let (objs, warnings) = parse_objects(xml, "win32-operatingsystem");
    let os = objs
        .first()
        .map(|o| super::os_info(get(o, "Caption"), get(o, "Version"), get(o, "BuildNumber")));
    (os, warnings)
}

/// `Get-ItemProperty <Uninstall keys>\* | Select-Object DisplayName,
/// DisplayVersion, Publisher, InstallLocation, UninstallString, PSPath |
/// Export-Clixml`; entries without a DisplayName are not shown by Windows either.
pub fn uninstall(xml: &str) -> (Vec<UninstallEntry>, Vec<ProbeWarning>) {
    let (objs, warnings) = parse_objects(xml, "uninstall");
    let entries = objs
        .iter()
        .filter_map(|o| {
            Some(UninstallEntry {
                key: get(o, "PSPath")
                    .map(|k| normalize_key(&k))
                    .unwrap_or_default(),
                display_name: get(o, "DisplayName")?,
                display_version: get(o, "DisplayVersion"),
                publisher: get(o, "Publisher"),
                install_location: get(o, "InstallLocation"),
                uninstall_string: get(o, "UninstallString"),
            })
        })
        .collect();
    (entries, warnings)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    const E19_SERVICES: &str =
        include_str!("../../../../tests/fixtures/windows/css-exchange-clixml/E19_GetService.xml");
    const E16_SERVICES: &str =
        include_str!("../../../../tests/fixtures/windows/css-exchange-clixml/E16_GetService.xml");
    const E19_OS: &str = include_str!(
        "../../../../tests/fixtures/windows/css-exchange-clixml/E19_Win32_OperatingSystem.xml"
    );
    const E19_VC: &str = include_str!(
        "../../../../tests/fixtures/windows/css-exchange-clixml/E19_GetVisualCRedistributableInstalledVersion.xml"
    );

    #[test]
    fn real_get_service_exports() {
        let (s19, w) = services(E19_SERVICES);
        assert!(w.is_empty(), "{w:?}");
        // 254 top-level services (the 312 of the research notes count nested dependents too).
        assert_eq!(s19.len(), 254);
        let wd = s19
            .iter()
            .find(|s| s.name == "WinDefend")
            .expect("WinDefend");
        assert_eq!(wd.state.as_deref(), Some("Running"));
        assert_eq!(wd.start_mode.as_deref(), Some("Automatic"));
        let aj = s19.iter().find(|s| s.name == "AJRouter").expect("AJRouter");
        assert_eq!(aj.display_name.as_deref(), Some("AllJoyn Router Service"));
        assert_eq!(aj.state.as_deref(), Some("Stopped"));
        let (s16, w) = services(E16_SERVICES);
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(s16.len(), 245);
    }

    #[test]
    fn real_operating_system_export() {
        let (os, w) = operating_system(E19_OS);
        assert!(w.is_empty());
        let os = os.expect("os");
        assert_eq!(os.family, "windows");
        assert_eq!(
            os.name.as_deref(),
            Some("Microsoft Windows Server 2019 Datacenter")
        );
        assert_eq!(os.version.as_deref(), Some("10.0.17763 (build 17763)"));
    }

    #[test]
    fn real_uninstall_subset() {
        let (entries, w) = uninstall(E19_VC);
        assert!(w.is_empty());
        assert_eq!(entries.len(), 6);
        assert_eq!(
            entries[0].display_name,
            "Microsoft Visual C++ 2012 x64 Additional Runtime - 11.0.61030"
        );
        assert_eq!(entries[0].display_version.as_deref(), Some("11.0.61030"));
        assert_eq!(entries[0].publisher, None);
    }

    #[test]
    fn escapes_and_garbage() {
        assert_eq!(decode("a_x000A_b_x0009_c"), "a\nb\tc");
        assert_eq!(decode("_x12_ and _xZZZZ_"), "_x12_ and _xZZZZ_");
        assert_eq!(decode("end_x"), "end_x");
        for bad in [
            "",
            "<Objs",
            "<html/>",
            "\u{feff}<Objs><Obj><Props><S>x</S></Props></Obj></Objs>",
        ] {
            let (s, _) = services(bad);
            assert!(s.is_empty(), "{bad:?}");
        }
        let (s, w) = services("<Objs");
        assert!(s.is_empty() && w.len() == 1);
    }

    /// 20,000 nested elements used to overflow the stack and abort the
    /// whole process; now the file is refused with a warning.
    #[test]
    fn deeply_nested_documents_are_refused_not_a_stack_overflow() {
        let n = 20_000;
        for xml in [
            format!(
                "<Objs>{}{}</Objs>",
                "<Obj><MS><Obj N=\"x\">".repeat(n),
                "</Obj></MS></Obj>".repeat(n)
            ),
            format!(
                "<Objs><Obj><Props><S N=\"a\">{}x{}</S></Props></Obj></Objs>",
                "<i>".repeat(n),
                "</i>".repeat(n)
            ),
            format!("<Objs>{}", "<Obj>".repeat(n)),
        ] {
            let (objs, warnings) = uninstall(&xml);
            assert!(objs.is_empty());
            assert_eq!(warnings.len(), 1, "{warnings:?}");
            assert!(
                warnings[0].message.contains("deeper than 256 levels"),
                "{warnings:?}"
            );
        }
        let (_, warnings) = uninstall("<Objs><Obj></Objs>");
        assert!(
            warnings[0].message.starts_with("not a CLIXML document"),
            "{warnings:?}"
        );
    }
}
