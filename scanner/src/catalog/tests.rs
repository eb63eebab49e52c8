use std::path::{Path, PathBuf};

use super::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/catalog")
        .join(name)
}

fn load(name: &str) -> Result<Catalog, String> {
    Catalog::load(&[fixture(name)]).map_err(|e| {
        e.to_string()
            .replace(&fixture("").display().to_string(), "")
    })
}

/// blackbox_exporter style: each broken file and the exact start of its error.
#[test]
fn invalid_catalogs_name_file_line_and_column() {
    let cases = [
        ("invalid-unknown-key.yaml", "invalid-unknown-key.yaml:8:9: unknown field `polcy`"),
        ("invalid-two-kinds.yaml", "invalid-two-kinds.yaml:11:37: a signature has exactly one kind, but this one also has `service`"),
        ("invalid-no-source.yaml", "invalid-no-source.yaml:11:25: signature `package: a` has no `source`"),
        ("invalid-no-policy.yaml", "invalid-no-policy.yaml:6:13: product `p` has no policy"),
        ("invalid-kind-os.yaml", "invalid-kind-os.yaml:11:30: `display_name` signatures are not supported under `linux`"),
        ("invalid-glob.yaml", "invalid-glob.yaml:11:22: invalid glob `/opt/[x`"),
        ("invalid-policy.yaml", "invalid-policy.yaml:5:24: unknown variant `forbid`, expected one of ban, watch"),
        ("invalid-date.yaml", "invalid-date.yaml:5:39: invalid date: write it as YYYY-MM-DD with a real month and day, e.g. 2027-03-31"),
        ("invalid-vendor-id.yaml", "invalid-vendor-id.yaml:3:9: vendor id `V_1` must use only a-z, 0-9 and `-`"),
        ("invalid-duplicate-rule.yaml", "invalid-duplicate-rule.yaml: rule `v/p` is defined twice"),
        ("missing.yaml", "missing.yaml: cannot read file"),
    ];
    let mut failures = Vec::new();
    for (file, want) in cases {
        match load(file) {
            Ok(_) => failures.push(format!("{file}: loaded, expected `{want}`")),
            Err(got) if got.starts_with(want) => {}
            Err(got) => failures.push(format!(
                "{file}:\n  want prefix: {want}\n  got:         {got}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A catalog written inline to `c.yaml`; the error as printed.
fn load_text(text: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(&path, text).unwrap();
    Catalog::load(std::slice::from_ref(&path))
        .map(|_| "loaded".to_string())
        .unwrap_or_else(|e| e.to_string().replace(&path.display().to_string(), "c.yaml"))
}

/// The YAML-level mistakes, each with its exact message.
#[test]
#[rustfmt::skip]
fn bad_yaml_in_catalogs_gives_exact_messages() {
    let head = "catalog: {name: t, version: 1}\nvendors: []\n";
    let cases: [(String, &str); 8] = [
        ("# no rules yet\n".into(), "c.yaml: the catalog is empty"),
        (format!("{head}{head}"), "c.yaml:3:1: key `catalog` appears twice in the same mapping: keep one (YAML does not merge repeated keys)"),
        (format!("{head}---\n{head}"), "c.yaml:4:1: the file holds several YAML documents (separated by `---`); a configuration file is one document: remove the extra `---` or split the file"),
        ("catalog:\n\tname: t\n".into(), "c.yaml:2:2: a tab character here: YAML indents with spaces only; replace the tab with spaces"),
        ("catalog: {name: t\x00, version: 1}\n".into(), "c.yaml:1:18: a NUL byte here: configuration files are text; is this the right file?"),
        ("catalog: {name: t, version: 1}\nvendors: *v\n".into(), "c.yaml:2:10: this alias (`*name`) refers to no anchor (`&name`) defined above it"),
        // 100,000 open brackets: an error, not a stack overflow.
        (format!("catalog: [{}]\n", "[".repeat(100_000)), "c.yaml:1:10: expected a mapping here: `key: value` lines, or `{key: value}`"),
        ("catalog: {name: t, version: 1\n".into(), "c.yaml:1:10: unclosed bracket '{': check the YAML syntax here (indentation with spaces, quotes and brackets closed)"),
    ];
    let mut failures = Vec::new();
    for (text, want) in &cases {
        let got = load_text(text.as_bytes());
        if got != *want {
            failures.push(format!("want: {want}\n  got:  {got}"));
        }
    }
    assert_eq!(load_text(b"catalog: {name: caf\xe9}\n"), "c.yaml:1:20: file is not valid UTF-8");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn test_catalog_loads_with_inheritance() {
    let c = load("test-catalog.yaml").unwrap();
    assert_eq!(c.catalogs.len(), 1);
    assert_eq!(c.catalogs[0].rules, 4);
    let av = c.rule("acme/av").unwrap();
    assert_eq!(av.policy, Policy::Ban);
    assert_eq!(av.deadline, Some(jiff::civil::date(2024, 9, 29)));
    assert_eq!(
        av.remediation.get("linux").map(|t| &**t),
        Some("apt-get purge acme-av")
    );
    assert_eq!(av.signatures.len(), 5);
    let shield = c.rule("succ/shield").unwrap();
    assert_eq!(shield.policy, Policy::Watch);
    assert!(shield.replaces[0].is_match("acme/av"));
    assert_eq!(c.path_roots(OsFamily::Linux), ["/opt/acme"]);
}

#[test]
fn loading_the_same_catalog_twice_is_an_error() {
    let f = fixture("test-catalog.yaml");
    let err = Catalog::load(&[f.clone(), f]).unwrap_err().to_string();
    assert!(
        err.contains("a catalog named `testcat` is already loaded"),
        "{err}"
    );
}

#[test]
fn builtin_catalog_is_valid_and_covers_every_os() {
    let c = Catalog::builtin().unwrap();
    let names: Vec<_> = c.catalogs.iter().map(|c| c.name.as_str()).collect();
    assert!(
        names.contains(&"kaspersky") && names.contains(&"ultraav"),
        "{names:?}"
    );
    for os in [SigOs::Linux, SigOs::Windows, SigOs::Macos] {
        let n = c
            .rules
            .iter()
            .flat_map(|r| &r.signatures)
            .filter(|s| s.os == os)
            .count();
        assert!(n >= 10, "{} has only {n} signatures", os.as_str());
    }
    for r in c.rules.iter().filter(|r| r.vendor_id == "kaspersky") {
        assert_eq!(r.policy, Policy::Ban, "{}", r.id);
        assert_eq!(
            r.effective,
            Some(jiff::civil::date(2024, 7, 20)),
            "{}",
            r.id
        );
        assert_eq!(r.deadline, Some(jiff::civil::date(2024, 9, 29)), "{}", r.id);
        assert!(!r.references.is_empty(), "{} has no legal reference", r.id);
    }
    let refs: String = c
        .rules
        .iter()
        .flat_map(|r| &r.references)
        .map(|r| format!("{r:?}"))
        .collect();
    for needle in ["ICTS-2021-002", "17-01", "Covered List"] {
        assert!(refs.contains(needle), "no reference mentions {needle}");
    }
    assert!(c.rule("kaspersky/unknown").is_some_and(|r| r.fallback));
    assert!(c
        .rules
        .iter()
        .any(|r| r.policy == Policy::Watch && !r.replaces.is_empty()));
    let roots = c.path_roots(OsFamily::Linux);
    for r in ["/opt/kaspersky", "/var/opt/kaspersky", "/etc/opt/kaspersky"] {
        assert!(roots.iter().any(|x| x == r), "{r} not probed: {roots:?}");
    }
}

#[test]
fn macos_path_roots_from_the_builtin_catalog() {
    let c = Catalog::builtin().unwrap();
    let roots = c.path_roots(OsFamily::Macos);
    assert!(
        roots.contains(&"/Library/Application Support/Kaspersky Lab".to_string()),
        "{roots:?}"
    );
    assert!(
        roots
            .iter()
            .all(|r| r != "/" && r != "/Applications" && r != "/var/log"),
        "{roots:?}"
    );
    // The Windows probe lists its fixed roots only.
    assert!(c.path_roots(OsFamily::Windows).is_empty());
}

/// The versioned driver folder of the built-in catalog matches image paths as
/// the matcher sees them (`/` separators, `\SystemRoot` or `C:\Windows` prefix).
#[test]
fn versioned_driver_folder_matches_registered_image_paths() {
    let c = Catalog::builtin().unwrap();
    let sig = c
        .rules
        .iter()
        .flat_map(|r| &r.signatures)
        .find(|s| s.pattern.contains("drivers/K4W-21-25/"))
        .expect("the built-in catalog lists the versioned driver folder");
    assert!(sig.matches("/SystemRoot/System32/drivers/K4W-21-25/klif.sys"));
    assert!(sig.matches("C:/Windows/system32/DRIVERS/k4w-21-25/KLIF.SYS"));
    assert!(!sig.matches("C:/Windows/System32/drivers/K4W-21-25x/klif.sys"));
    assert!(!sig.matches("C:/Windows/System32/drivers/klif.sys"));
}

/// One algorithm, two probes' depths: Linux lists any root but `/`; macOS only
/// a vendor's own folder (never `/Applications` or `/var/log` themselves).
#[test]
fn path_roots_per_family_depth() {
    let builtin = Catalog::builtin().unwrap();
    let mut rule = builtin.rules[0].clone();
    let template = rule.signatures[0].clone();
    let patterns = [
        "/",
        "/*",
        "/opt",
        "/opt/k*",
        "/x/y",
        "/x/y/z/",
        "/a/b/c*",
        "/a/b/c/d*",
        "/var/log/x*.log",
        "/Library/A/B",
        "/Library/A/B/C/D/E",
        "relative/a/b/c/d",
    ];
    rule.signatures = [SigOs::Linux, SigOs::Macos]
        .into_iter()
        .flat_map(|os| patterns.map(|p| (os, p)))
        .map(|(os, p)| Signature {
            os,
            kind: SigKind::Path,
            pattern: p.to_string(),
            ..template.clone()
        })
        .collect();
    let c = Catalog {
        catalogs: Vec::new(),
        rules: vec![rule],
    };
    assert_eq!(
        c.path_roots(OsFamily::Linux),
        [
            "/Library/A/B",
            "/Library/A/B/C/D/E",
            "/a/b",
            "/opt",
            "/var/log",
            "/x/y"
        ]
    );
    assert_eq!(
        c.path_roots(OsFamily::Macos),
        ["/Library/A/B", "/Library/A/B/C/D/E", "/a/b/c", "/x/y"]
    );
    assert!(c.path_roots(OsFamily::Windows).is_empty());
}
