use std::path::Path;

use fleetsweep_exporters::{FindingState, Policy};

use super::*;
use crate::probes::{Package, PackageManager, PathEntry, PathKind, Process, Service};

fn catalog() -> Catalog {
    let p =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/catalog/test-catalog.yaml");
    Catalog::load(&[p]).unwrap()
}

fn now() -> jiff::Timestamp {
    "2026-11-22T06:00:00Z".parse().unwrap()
}

fn pkg(name: &str, state: PackageState, maintainer: Option<&str>) -> Package {
    Package {
        manager: PackageManager::Dpkg,
        name: name.into(),
        version: Some("1.2-3".into()),
        arch: Some("amd64".into()),
        state,
        vendor: None,
        maintainer: maintainer.map(Into::into),
    }
}

fn proc_(name: &str, cmdline: &str) -> Process {
    Process {
        pid: 7,
        name: name.into(),
        cmdline: cmdline.into(),
        exe: None,
        owner_uid: None,
        container: None,
    }
}

fn dir(p: &str) -> PathEntry {
    PathEntry {
        path: p.into(),
        kind: PathKind::Dir,
    }
}

fn summary(f: &[Finding]) -> Vec<String> {
    f.iter()
        .map(|f| {
            format!(
                "{} {:?} [{}]",
                f.rule,
                f.state,
                f.evidence
                    .iter()
                    .map(|e| e.value.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
        .collect()
}

#[test]
fn installed_product_claims_its_processes_and_paths() {
    let obs = Observations {
        packages: vec![pkg(
            "acme-av",
            PackageState::Installed,
            Some("Acme Corp <x@acme>"),
        )],
        processes: vec![
            proc_("acmed", "/opt/acme/av/bin/acmed --daemon"),
            // Not in any list, but runs from the product's install root.
            proc_("watchdog", "/opt/acme/av/libexec/watchdog"),
        ],
        paths: vec![
            dir("/opt/acme"),
            dir("/opt/acme/av"),
            dir("/opt/acme/av/bin"),
        ],
        ..Default::default()
    };
    let f = match_host(&catalog(), &obs, OsFamily::Linux, now());
    assert_eq!(
        summary(&f),
        ["acme/av Installed [acme-av 1.2-3; /opt/acme/av; acmed: /opt/acme/av/bin/acmed --daemon; watchdog: /opt/acme/av/libexec/watchdog]"]
    );
    assert_eq!(f[0].version.as_deref(), Some("1.2-3"));
    assert_eq!(f[0].status, Status::New);
    assert_eq!(f[0].policy, Policy::Ban);
    assert_eq!(f[0].remediation.as_deref(), Some("apt-get purge acme-av"));
    assert_eq!(f[0].first_seen, now());
}

#[test]
fn removed_package_with_config_files_is_a_remnant() {
    let obs = Observations {
        packages: vec![
            pkg("acme-av", PackageState::ConfigFiles, None),
            pkg("acme-agent", PackageState::NotInstalled, None),
        ],
        ..Default::default()
    };
    let f = match_host(&catalog(), &obs, OsFamily::Linux, now());
    assert_eq!(
        summary(&f),
        ["acme/av Remnants [acme-av 1.2-3 (removed, config files remain)]"]
    );
}

#[test]
fn stopped_service_unit_is_a_remnant_running_one_is_installed() {
    let mut svc = Service {
        name: "acme-avd".into(),
        unit_state: Some("file".into()),
        active: None,
        path: Some("/etc/systemd/system/acme-avd.service".into()),
        exec: Some("/opt/acme/av/sbin/acme-avd".into()),
    };
    let obs = Observations {
        services: vec![svc.clone()],
        ..Default::default()
    };
    assert_eq!(
        summary(&match_host(&catalog(), &obs, OsFamily::Linux, now())),
        ["acme/av Remnants [acme-avd.service (unit file; systemd not running)]"]
    );
    svc.active = Some(true);
    let obs = Observations {
        services: vec![svc],
        ..Default::default()
    };
    assert_eq!(
        summary(&match_host(&catalog(), &obs, OsFamily::Linux, now())),
        ["acme/av Installed [acme-avd.service (running)]"]
    );
}

#[test]
fn unknown_product_of_the_vendor_is_caught_by_vendor_traits() {
    let obs = Observations {
        packages: vec![pkg(
            "acme-newthing",
            PackageState::Installed,
            Some("Acme Corp <pkg@acme.example>"),
        )],
        processes: vec![proc_("newthingd", "/opt/acme/newthing/bin/newthingd")],
        paths: vec![dir("/opt/acme"), dir("/opt/acme/newthing")],
        ..Default::default()
    };
    let f = match_host(&catalog(), &obs, OsFamily::Linux, now());
    assert_eq!(
        summary(&f),
        ["acme/unknown Installed [acme-newthing 1.2-3; /opt/acme; /opt/acme/newthing; newthingd: /opt/acme/newthing/bin/newthingd]"]
    );
}

#[test]
fn known_product_does_not_also_show_up_as_unknown() {
    let obs = Observations {
        packages: vec![pkg(
            "acme-agent",
            PackageState::Installed,
            Some("Acme Corp <pkg@acme.example>"),
        )],
        services: vec![Service {
            name: "acme-agentd".into(),
            unit_state: Some("enabled".into()),
            active: Some(true),
            path: None,
            exec: Some("/opt/acme/agent/bin/agentd".into()),
        }],
        paths: vec![dir("/opt/acme"), dir("/opt/acme/agent")],
        ..Default::default()
    };
    let f = match_host(&catalog(), &obs, OsFamily::Linux, now());
    assert_eq!(
        summary(&f),
        ["acme/agent Installed [acme-agent 1.2-3; /opt/acme/agent; acme-agentd.service (running)]"]
    );
}

#[test]
fn shared_vendor_roots_do_not_add_an_unknown_product_next_to_a_known_one() {
    let obs = Observations {
        packages: vec![pkg("acme-av", PackageState::Installed, None)],
        paths: vec![dir("/opt/acme/av"), dir("/opt/acme/shared-config")],
        ..Default::default()
    };
    let f = match_host(&catalog(), &obs, OsFamily::Linux, now());
    assert_eq!(
        summary(&f),
        ["acme/av Installed [acme-av 1.2-3; /opt/acme/av]"]
    );
    // A second, unknown product with a stronger trait is still reported.
    let obs = Observations {
        packages: vec![
            pkg("acme-av", PackageState::Installed, None),
            pkg(
                "acme-other",
                PackageState::Installed,
                Some("Acme Corp <x@acme>"),
            ),
        ],
        paths: vec![dir("/opt/acme/av"), dir("/opt/acme/other")],
        ..Default::default()
    };
    let f = match_host(&catalog(), &obs, OsFamily::Linux, now());
    assert_eq!(
        summary(&f),
        [
            "acme/av Installed [acme-av 1.2-3; /opt/acme/av]",
            "acme/unknown Installed [acme-other 1.2-3]"
        ]
    );
}

#[test]
fn a_product_running_only_in_a_container_is_reported_with_the_container_and_container_guidance() {
    let mut kesl = proc_("kesl", "/opt/kaspersky/kesl/libexec/kesl -d");
    kesl.exe = Some("/opt/kaspersky/kesl/libexec/kesl".into());
    kesl.container = Some("docker 3f2a1b2c3d4e".into());
    let obs = Observations {
        processes: vec![kesl.clone()],
        ..Observations::default()
    };
    let f = match_host(&builtin(), &obs, OsFamily::Linux, now());
    assert_eq!(f.len(), 1, "{:#?}", summary(&f));
    assert_eq!(f[0].rule, "kaspersky/kesl");
    assert_eq!(f[0].containers, vec!["docker 3f2a1b2c3d4e".to_string()]);
    assert!(
        f[0].evidence[0]
            .value
            .ends_with("(in container docker 3f2a1b2c3d4e)"),
        "{:?}",
        f[0].evidence
    );
    let r = f[0].remediation.as_deref().unwrap();
    assert!(
        r.contains("container(s) docker 3f2a1b2c3d4e") && r.contains("rebuild the image"),
        "{r}"
    );
    assert!(!r.contains("apt-get"), "no host package guidance: {r}");

    // Installed on the host as well: the host's guidance, the container still named.
    let obs = Observations {
        processes: vec![kesl],
        packages: vec![pkg("kesl", PackageState::Installed, None)],
        ..Observations::default()
    };
    let f = match_host(&builtin(), &obs, OsFamily::Linux, now());
    assert_eq!(f[0].containers, vec!["docker 3f2a1b2c3d4e".to_string()]);
    assert!(
        !f[0]
            .remediation
            .as_deref()
            .unwrap_or_default()
            .contains("container"),
        "{:?}",
        f[0].remediation
    );
}

#[test]
fn look_alikes_stay_clean() {
    let obs = Observations {
        packages: vec![
            pkg(
                "acme-av-docs",
                PackageState::Installed,
                Some("Debian QA <qa@debian.org>"),
            ),
            pkg("xacme-av", PackageState::Installed, None),
        ],
        processes: vec![
            proc_("acmed-exporter", "/usr/local/bin/acmed-exporter"),
            proc_("acmed", ""),
        ],
        services: vec![Service {
            name: "acme-avd-monitor".into(),
            unit_state: Some("enabled".into()),
            active: Some(true),
            path: None,
            exec: Some("/usr/local/bin/acme-avd-monitor".into()),
        }],
        paths: vec![dir("/opt/acmeish"), dir("/opt/acme-tools")],
        ..Default::default()
    };
    let f = match_host(&catalog(), &obs, OsFamily::Linux, now());
    // Only the exact process name `acmed` matches; everything else is clean.
    assert_eq!(summary(&f), ["acme/av Installed [acmed]"]);
}

#[test]
fn successor_marks_remnants_replaced() {
    let obs = Observations {
        packages: vec![
            pkg("acme-av", PackageState::ConfigFiles, None),
            pkg("shield", PackageState::Installed, None),
        ],
        ..Default::default()
    };
    let f = match_host(&catalog(), &obs, OsFamily::Linux, now());
    assert_eq!(
        summary(&f),
        [
            "acme/av Replaced [acme-av 1.2-3 (removed, config files remain)]",
            "succ/shield Installed [shield 1.2-3]"
        ]
    );
    assert_eq!(f[1].policy, Policy::Watch);
    // An installed product is not "replaced" even if the successor is there too.
    let obs = Observations {
        packages: vec![
            pkg("acme-av", PackageState::Installed, None),
            pkg("shield", PackageState::Installed, None),
        ],
        ..Default::default()
    };
    let f = match_host(&catalog(), &obs, OsFamily::Linux, now());
    assert_eq!(f[0].state, FindingState::Installed);
}

#[test]
fn signatures_of_other_os_families_do_not_apply() {
    let obs = Observations {
        packages: vec![pkg("acme-av", PackageState::Installed, None)],
        ..Default::default()
    };
    assert!(match_host(&catalog(), &obs, OsFamily::Windows, now()).is_empty());
}

/// The shipped catalog: real products are found by name or by vendor traits,
/// look-alikes of other vendors stay clean.
#[test]
fn shipped_catalog_known_unknown_and_look_alikes() {
    let cat = Catalog::builtin().unwrap();
    let run = |obs: Observations| summary(&match_host(&cat, &obs, OsFamily::Linux, now()));
    let mut rpm = pkg("klnagent64", PackageState::Installed, None);
    rpm.manager = PackageManager::Rpm;
    rpm.vendor = Some("AO Kaspersky Lab".into());
    assert_eq!(
        run(Observations {
            packages: vec![pkg("kesl", PackageState::Installed, None), rpm],
            ..Default::default()
        }),
        [
            "kaspersky/kesl Installed [kesl 1.2-3]",
            "kaspersky/klnagent Installed [klnagent64 1.2-3]"
        ]
    );
    // A Kaspersky product in no list, seen only through vendor traits.
    for obs in [
        Observations {
            packages: vec![pkg(
                "kwts",
                PackageState::Installed,
                Some("AO Kaspersky Lab <support@kaspersky.com>"),
            )],
            ..Default::default()
        },
        Observations {
            processes: vec![proc_("ksmgd", "/opt/kaspersky/ksmg/bin/ksmgd --foreground")],
            ..Default::default()
        },
        Observations {
            paths: vec![dir("/opt/kaspersky/ksmg")],
            ..Default::default()
        },
        Observations {
            services: vec![Service {
                name: "kwts-control".into(),
                unit_state: Some("enabled".into()),
                active: Some(true),
                path: None,
                exec: Some("/opt/kaspersky/kwts/bin/kwts".into()),
            }],
            ..Default::default()
        },
    ] {
        let f = run(obs);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].starts_with("kaspersky/unknown "), "{f:?}");
    }
    // Look-alikes: other vendors' software with Kaspersky-ish names.
    let look_alikes = Observations {
        packages: vec![
            pkg(
                "kesl-exporter",
                PackageState::Installed,
                Some("Prometheus Community <x@example.org>"),
            ),
            pkg(
                "kaspersky-removal-notes",
                PackageState::Installed,
                Some("Debian QA Group <packages@qa.debian.org>"),
            ),
            pkg(
                "python3-kasperskyapi",
                PackageState::Installed,
                Some("Jane Doe <jane@example.org>"),
            ),
            pkg("klnagent-monitor", PackageState::Installed, None),
            pkg(
                "check-mk-agent",
                PackageState::Installed,
                Some("Checkmk <feedback@checkmk.com>"),
            ),
        ],
        processes: vec![
            proc_("kesl-exporter", "/usr/local/bin/kesl-exporter"),
            proc_("avp-proxy", "/usr/bin/avp-proxy"),
        ],
        services: vec![Service {
            name: "klnagent-monitor".into(),
            unit_state: Some("enabled".into()),
            active: Some(true),
            path: None,
            exec: Some("/usr/local/bin/klnagent-monitor".into()),
        }],
        paths: vec![dir("/opt/kasperskyish-tools"), dir("/opt/kaspersky-notes")],
        ..Default::default()
    };
    assert_eq!(run(look_alikes), Vec::<String>::new());

    // What an unprivileged user can make a process say: its argv[0]
    // (`exec -a`) and its name (prctl, or a copy of `sleep` named so). Not a
    // finding unless root runs it; the executable's real path always counts.
    let forged = |uid: Option<u32>, exe: &str| Process {
        pid: 4242,
        name: "klnagent".into(),
        cmdline: "/opt/kaspersky/kesl/libexec/wdserver -d".into(),
        exe: Some(exe.into()),
        owner_uid: uid,
        container: None,
    };
    for uid in [Some(1000), Some(65534)] {
        let obs = Observations {
            processes: vec![forged(uid, "/usr/bin/sleep")],
            ..Default::default()
        };
        assert_eq!(run(obs), Vec::<String>::new(), "uid {uid:?}");
    }
    for uid in [Some(0), None] {
        let obs = Observations {
            processes: vec![forged(uid, "/usr/bin/sleep")],
            ..Default::default()
        };
        assert!(
            !run(obs).is_empty(),
            "uid {uid:?}: root (or unknown) is trusted"
        );
    }
    let real = Observations {
        processes: vec![forged(Some(1000), "/opt/kaspersky/kesl/libexec/wdserver")],
        ..Default::default()
    };
    let found = run(real);
    assert!(
        found.iter().any(|f| f.starts_with("kaspersky/")),
        "an executable under the vendor's root is evidence whoever runs it: {found:?}"
    );
}

// ---- Windows and macOS observation kinds, against the built-in catalog ----

use crate::probes::{
    AppBundle, Certificate, Driver, LaunchdJob, PkgReceipt, SignatureUpdate, SystemExtension,
    UninstallEntry, WindowsService,
};

fn builtin() -> Catalog {
    Catalog::builtin().unwrap()
}

fn uninstall(name: &str, publisher: &str) -> UninstallEntry {
    UninstallEntry {
        key: format!("HKLM/SOFTWARE/Microsoft/Windows/CurrentVersion/Uninstall/{name}"),
        display_name: name.into(),
        display_version: Some("1.0".into()),
        publisher: Some(publisher.into()),
        ..UninstallEntry::default()
    }
}

fn rules_states(f: &[Finding]) -> Vec<(String, FindingState)> {
    f.iter().map(|f| (f.rule.clone(), f.state)).collect()
}

#[test]
fn windows_uninstall_entries_by_name_publisher_and_product_code() {
    let mut kes = uninstall(
        "Kaspersky Endpoint Security for Windows",
        "AO Kaspersky Lab",
    );
    kes.display_version = Some("12.5.0.539".into());
    let mut nagent = uninstall("Netzwerkagent", "Kaspersky");
    nagent.key = "HKLM/SOFTWARE/WOW6432Node/Microsoft/Windows/CurrentVersion/Uninstall/{2924BEDA-E0D7-4DAF-A224-50D2E0B12F5B}".into();
    let obs = Observations {
        uninstall: vec![
            kes,
            nagent,
            uninstall("Kaspersky VPN Secure Connection", "AO Kaspersky Lab"),
            uninstall("Kasperskyish Tools", "Kasperskyish Tools Ltd"),
            uninstall("7-Zip", "Igor Pavlov"),
        ],
        ..Observations::default()
    };
    let f = match_host(&builtin(), &obs, OsFamily::Windows, now());
    assert_eq!(
        rules_states(&f),
        vec![
            ("kaspersky/kes-windows".to_string(), FindingState::Installed),
            ("kaspersky/klnagent".to_string(), FindingState::Installed),
            ("kaspersky/ksec".to_string(), FindingState::Installed),
        ],
        "{:#?}",
        summary(&f)
    );
    assert_eq!(f[0].version.as_deref(), Some("12.5.0.539"));
    assert_eq!(f[0].evidence[0].kind, "uninstall_entry");
    assert!(summary(&f)[2].contains("Kaspersky VPN Secure Connection"));
    // An MSI entry's product code is its own evidence item (what removal
    // tools use); an entry whose key is no `{GUID}` has none.
    let codes = |f: &Finding| -> Vec<String> {
        f.evidence
            .iter()
            .filter(|e| e.kind == "msi_product_code")
            .map(|e| e.value.clone())
            .collect()
    };
    assert_eq!(codes(&f[1]), ["{2924BEDA-E0D7-4DAF-A224-50D2E0B12F5B}"]);
    assert!(codes(&f[0]).is_empty());
    // The same on a Linux host: Windows signatures do not apply.
    assert!(match_host(&builtin(), &obs, OsFamily::Linux, now()).is_empty());
}

#[test]
fn ksde_is_the_vpn_secure_connection_service_whatever_its_version() {
    // KSDE<version> and ksde.exe belong to Kaspersky VPN Secure Connection,
    // not to Disk Encryption (an earlier catalog's mistake).
    for service in ["KSDE1.0.0", "KSDE5.0", "ksde5.10"] {
        let obs = Observations {
            windows_services: vec![WindowsService {
                name: service.into(),
                state: Some("Running".into()),
                ..WindowsService::default()
            }],
            ..Observations::default()
        };
        let f = match_host(&builtin(), &obs, OsFamily::Windows, now());
        assert_eq!(
            rules_states(&f),
            vec![("kaspersky/ksec".to_string(), FindingState::Installed)],
            "{service}: {:#?}",
            summary(&f)
        );
        assert_eq!(f[0].product, "Kaspersky VPN Secure Connection");
    }
    // A look-alike service name stays clean.
    let obs = Observations {
        windows_services: vec![WindowsService {
            name: "KSDExtender".into(),
            ..WindowsService::default()
        }],
        ..Observations::default()
    };
    let f = match_host(&builtin(), &obs, OsFamily::Windows, now());
    assert!(f.is_empty(), "{:#?}", summary(&f));
}

#[test]
fn windows_remnants_registry_certificate_stopped_service_driver() {
    let obs = Observations {
        registry_keys: vec!["HKLM/SOFTWARE/WOW6432Node/KasperskyLab".into()],
        certificates: vec![Certificate {
            subject: "CN=Kaspersky Anti-Virus Personal Root Certificate, O=AO Kaspersky Lab".into(),
            store: "Cert:\\LocalMachine\\Root".into(),
            ..Certificate::default()
        }],
        drivers: vec![Driver {
            name: "klif".into(),
            state: Some("Stopped".into()),
            image_path: Some("\\SystemRoot\\System32\\drivers\\klif.sys".into()),
            ..Driver::default()
        }],
        windows_services: vec![WindowsService {
            name: "klnagent".into(),
            state: Some("Stopped".into()),
            start_mode: Some("Disabled".into()),
            ..WindowsService::default()
        }],
        ..Observations::default()
    };
    let f = match_host(&builtin(), &obs, OsFamily::Windows, now());
    assert_eq!(
        rules_states(&f),
        vec![("kaspersky/klnagent".to_string(), FindingState::Remnants)],
        "{:#?}",
        summary(&f)
    );
    // The registry key, the certificate and the kl* driver are shared by all
    // of the vendor's products: shown on the product that was found.
    let kinds = |f: &Finding| {
        f.evidence
            .iter()
            .map(|e| e.kind.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds(&f[0]),
        vec!["certificate", "driver", "registry_key", "service"]
    );
    assert_eq!(
        f[0].evidence[2].value,
        "HKLM\\SOFTWARE\\WOW6432Node\\KasperskyLab"
    );
    // Without the Network Agent service they are the unknown product's.
    let mut only = obs.clone();
    only.windows_services.clear();
    let f = match_host(&builtin(), &only, OsFamily::Windows, now());
    assert_eq!(
        rules_states(&f),
        vec![("kaspersky/unknown".to_string(), FindingState::Remnants)]
    );
    assert_eq!(kinds(&f[0]), vec!["certificate", "driver", "registry_key"]);
    // A running driver makes it installed.
    let mut obs = obs;
    obs.drivers[0].state = Some("Running".into());
    obs.windows_services.clear();
    let f = match_host(&builtin(), &obs, OsFamily::Windows, now());
    assert_eq!(f[0].state, FindingState::Installed);
}

#[test]
fn ultraav_next_to_kaspersky_remnants_is_replaced() {
    let obs = Observations {
        uninstall: vec![uninstall("UltraAV", "Pango")],
        registry_keys: vec!["HKLM/SOFTWARE/KasperskyLab".into()],
        paths: vec![dir("C:/ProgramData/Kaspersky Lab")],
        ..Observations::default()
    };
    let f = match_host(&builtin(), &obs, OsFamily::Windows, now());
    assert_eq!(
        rules_states(&f),
        vec![
            ("kaspersky/unknown".to_string(), FindingState::Replaced),
            ("pango/ultraav".to_string(), FindingState::Installed),
        ],
        "{:#?}",
        summary(&f)
    );
    assert_eq!(f[1].policy, Policy::Watch);
}

#[test]
fn macos_receipts_bundles_team_id_launchd_sysext_kexts() {
    let obs = Observations {
        pkg_receipts: vec![
            PkgReceipt {
                id: "com.kaspersky.kav.core".into(),
                version: Some("21.0.19".into()),
            },
            PkgReceipt {
                id: "com.kasperskyish.tools".into(),
                version: None,
            },
        ],
        bundles: vec![
            AppBundle {
                path: Some("/Applications/Kaspersky Endpoint Security for Mac.app".into()),
                bundle_id: Some("com.kaspersky.kav".into()),
                version: Some("11.3.0".into()),
                team_id: Some("2Y8XE5CQ94".into()),
                ..AppBundle::default()
            },
            // Not in any list, signed by Kaspersky's team: an unknown product.
            AppBundle {
                path: Some("/Applications/Kaspersky Secure Connection.app".into()),
                bundle_id: Some("com.kasp.ksec".into()),
                team_id: Some("2Y8XE5CQ94".into()),
                ..AppBundle::default()
            },
            AppBundle {
                path: Some("/Applications/Google Chrome.app".into()),
                bundle_id: Some("com.google.Chrome".into()),
                team_id: Some("EQHXZ8M8AV".into()),
                ..AppBundle::default()
            },
        ],
        launchd: vec![LaunchdJob {
            label: "com.kaspersky.kav".into(),
            loaded: true,
            pid: Some(77),
            ..LaunchdJob::default()
        }],
        system_extensions: vec![SystemExtension {
            team_id: Some("2Y8XE5CQ94".into()),
            bundle_id: "com.kaspersky.kav.sysext".into(),
            version: None,
            state: "activated enabled".into(),
        }],
        kexts: vec!["com.kaspersky.kext.klif".into()],
        ..Observations::default()
    };
    let f = match_host(&builtin(), &obs, OsFamily::Macos, now());
    assert_eq!(
        rules_states(&f),
        vec![
            (
                "kaspersky/kaspersky-mac".to_string(),
                FindingState::Installed
            ),
            ("kaspersky/unknown".to_string(), FindingState::Installed),
        ],
        "{:#?}",
        summary(&f)
    );
    let kinds: Vec<&str> = f[0].evidence.iter().map(|e| &*e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            "app_bundle",
            "kext",
            "launchd_job",
            "pkg_receipt",
            "system_extension"
        ]
    );
    assert!(summary(&f)[1].contains("Kaspersky Secure Connection"));
    assert!(!summary(&f).join(" ").contains("kasperskyish"));
}

#[test]
fn macos_receipt_with_nothing_else_left_is_a_stale_remnant() {
    // macOS keeps pkgutil receipts after a manual uninstall.
    let receipts = Observations {
        pkg_receipts: vec![PkgReceipt {
            id: "com.kaspersky.kav.core".into(),
            version: Some("21.0.19".into()),
        }],
        ..Observations::default()
    };
    let f = match_host(&builtin(), &receipts, OsFamily::Macos, now());
    assert_eq!(
        rules_states(&f),
        vec![(
            "kaspersky/kaspersky-mac".to_string(),
            FindingState::Remnants
        )],
        "{:#?}",
        summary(&f)
    );
    assert!(
        f[0].evidence
            .iter()
            .all(|e| e.kind == "pkg_receipt" && e.value.contains("stale receipt")),
        "{:#?}",
        f[0].evidence
    );
    assert_eq!(f[0].version.as_deref(), Some("21.0.19"));
    // With the product's files still there, the receipt means installed.
    let mut with_files = receipts.clone();
    with_files.paths = vec![dir("/Library/Application Support/Kaspersky Lab")];
    let f = match_host(&builtin(), &with_files, OsFamily::Macos, now());
    assert_eq!(f[0].state, FindingState::Installed, "{:#?}", summary(&f));
    assert!(!f[0].evidence.iter().any(|e| e.value.contains("stale")));
    // ... and with a running launchd job of it.
    let mut with_job = receipts;
    with_job.launchd = vec![LaunchdJob {
        label: "com.kaspersky.kav".into(),
        loaded: true,
        pid: Some(9),
        ..LaunchdJob::default()
    }];
    let f = match_host(&builtin(), &with_job, OsFamily::Macos, now());
    assert_eq!(f[0].state, FindingState::Installed);
}

#[test]
fn macos_remnants_only_files_and_unloaded_job() {
    let obs = Observations {
        launchd: vec![LaunchdJob {
            label: "com.kaspersky.kav.gui".into(),
            loaded: false,
            plist: Some("/Library/LaunchAgents/com.kaspersky.kav.gui.plist".into()),
            ..LaunchdJob::default()
        }],
        paths: vec![
            dir("/Library/Application Support/Kaspersky Lab"),
            dir("/Library/Application Support/Kaspersky Lab/KAV"),
        ],
        ..Observations::default()
    };
    let f = match_host(&builtin(), &obs, OsFamily::Macos, now());
    assert_eq!(
        rules_states(&f),
        vec![(
            "kaspersky/kaspersky-mac".to_string(),
            FindingState::Remnants
        )],
        "{:#?}",
        summary(&f)
    );
}

#[test]
fn browser_extension_on_any_os() {
    let obs = Observations {
        browser_extensions: vec![crate::probes::BrowserExtension {
            browser: "chrome".into(),
            profile: None,
            id: "amkpcclbbgegoafihnpgomddadjhcadd".into(),
        }],
        ..Observations::default()
    };
    for family in [OsFamily::Windows, OsFamily::Macos, OsFamily::Linux] {
        let f = match_host(&builtin(), &obs, family, now());
        assert_eq!(
            rules_states(&f),
            vec![(
                "kaspersky/browser-extensions".to_string(),
                FindingState::Installed
            )],
            "{family}"
        );
    }
}

#[test]
fn signature_update_age_on_installed_findings() {
    let obs = Observations {
        uninstall: vec![uninstall(
            "Kaspersky Endpoint Security for Windows",
            "AO Kaspersky Lab",
        )],
        signature_updates: vec![SignatureUpdate {
            product: "Kaspersky".into(),
            date: "2024-09-28".parse().unwrap(),
            source: "HKLM\\...\\AVState\\Protection_BasesDate".into(),
        }],
        ..Observations::default()
    };
    let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
    let f = match_host(&builtin(), &obs, OsFamily::Windows, now);
    let e = f[0]
        .evidence
        .iter()
        .find(|e| e.kind == "signature_update")
        .expect("signature_update");
    assert_eq!(
        e.value,
        "2024-09-28 (last update 793 days ago; stopped around the 2024-09-29 update ban)"
    );
    let age = |f: &[Finding]| f[0].signatures.expect("signatures");
    assert_eq!(
        age(&f),
        SignatureAge {
            last_update: "2024-09-28".parse().unwrap(),
            age_days: 793,
            frozen: true
        }
    );
    // Long before the ban, and after it.
    let mut obs = obs;
    obs.signature_updates[0].date = "2018-08-23".parse().unwrap();
    let f = match_host(&builtin(), &obs, OsFamily::Windows, now);
    assert!(
        !age(&f).frozen,
        "stopped years before the ban: {:?}",
        age(&f)
    );
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.value.contains("stopped before the 2024-09-29 update ban")));
    obs.signature_updates[0].date = "2026-11-01".parse().unwrap();
    let f = match_host(&builtin(), &obs, OsFamily::Windows, now);
    assert_eq!((age(&f).age_days, age(&f).frozen), (29, false));
    // A date in the ban window that is not yet 30 days old is not frozen (yet).
    obs.signature_updates[0].date = "2024-10-31".parse().unwrap();
    let early: jiff::Timestamp = "2024-11-30T12:00:00Z".parse().unwrap();
    let f = match_host(&builtin(), &obs, OsFamily::Windows, early);
    assert_eq!((age(&f).age_days, age(&f).frozen), (30, false));
    let f = match_host(&builtin(), &obs, OsFamily::Windows, now);
    assert!(age(&f).frozen);
    // Window edges: 2024-09-01 is in, 2024-08-31 and 2024-11-01 are out.
    for (date, frozen) in [
        ("2024-08-31", false),
        ("2024-09-01", true),
        ("2024-11-01", false),
    ] {
        obs.signature_updates[0].date = date.parse().unwrap();
        let f = match_host(&builtin(), &obs, OsFamily::Windows, now);
        assert_eq!(age(&f).frozen, frozen, "{date}");
    }
    // Two sources: the newest update counts.
    obs.signature_updates[0].date = "2024-09-28".parse().unwrap();
    obs.signature_updates.push(SignatureUpdate {
        product: "Kaspersky Security Center Network Agent".into(),
        date: "2026-11-20".parse().unwrap(),
        source: "agent".into(),
    });
    let f = match_host(&builtin(), &obs, OsFamily::Windows, now);
    assert_eq!(age(&f).last_update.to_string(), "2026-11-20");
    assert!(!age(&f).frozen);
    obs.signature_updates.pop();
    assert!(f[0]
        .evidence
        .iter()
        .any(|e| e.value.contains("still updated after")));
    // No installed finding: nothing to put it on.
    obs.uninstall.clear();
    assert!(match_host(&builtin(), &obs, OsFamily::Windows, now).is_empty());
}

/// The tree of claimed paths answers exactly what the list it replaced did:
/// every pair of paths spelled from a few components, `//`, trailing `/` and
/// the empty path included.
#[test]
fn claimed_paths_agree_with_a_scan_of_all_claimed_paths() {
    let parts = ["", "a", "b", "ab"];
    let mut paths: Vec<String> = vec![String::new()];
    for n in 1..=3 {
        let mut level = vec![String::new()];
        for _ in 0..n {
            level = level
                .iter()
                .flat_map(|p| parts.iter().map(move |c| format!("{p}/{c}")))
                .collect();
        }
        paths.extend(level.iter().cloned());
        paths.extend(level.iter().map(|p| p.trim_start_matches('/').to_string()));
    }
    paths.sort();
    paths.dedup();
    let vendors = ["v1", "v2"];
    // Every 7th path is claimed, by rule i % 3 of vendor i % 2.
    let claims: Vec<(usize, &str, &str)> = paths
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 == 0)
        .map(|(i, p)| (i % 3, vendors[i % 2], p.as_str()))
        .collect();
    let mut tree = ClaimedPaths::new();
    for (rule, vendor, p) in &claims {
        tree.insert(p, *rule, vendor);
    }
    for p in &paths {
        let mut want: Vec<usize> = claims
            .iter()
            .filter(|(_, _, root)| under(p, root))
            .map(|(r, _, _)| *r)
            .collect();
        want.sort();
        want.dedup();
        let mut got = tree.rules_above(p);
        got.sort();
        assert_eq!(got, want, "rules above {p:?}");
        for v in vendors {
            let want = claims
                .iter()
                .any(|(_, cv, root)| *cv == v && (p == root || under(p, root) || under(root, p)));
            assert_eq!(tree.related(p, v), want, "{p:?} related to {v}");
        }
    }
}

/// 100,000 paths of one install root (each claimed) next to 2,000 processes
/// running from it: linear, not every process checked against every path.
#[test]
fn many_claimed_paths_match_in_linear_time() {
    let mut cat = Catalog::default();
    let yaml = "catalog: {name: big, version: \"1\"}\nvendors:\n  - id: acme\n    name: Acme\n    defaults: {policy: ban}\n    products:\n      - id: av\n        name: Acme AV\n        signatures:\n          linux:\n            - {path: \"/opt/acme/av/**\", source: test}\n      - id: unknown\n        name: Unknown Acme product\n        fallback: true\n        signatures:\n          linux:\n            - {process_path: \"/opt/acme/**\", source: test}\n";
    cat.add_text(Path::new("big.yaml"), yaml).unwrap();
    let mut obs = Observations::default();
    for i in 0..100_000 {
        obs.paths
            .push(dir(&format!("/opt/acme/av/d{}/f{i}", i / 100)));
    }
    for i in 0..2_000 {
        obs.processes.push(proc_(
            "x",
            &format!("/opt/acme/av/d{}/f{i}/bin --n {i}", i / 100),
        ));
    }
    let start = std::time::Instant::now();
    let f = match_host(&cat, &obs, OsFamily::Linux, now());
    eprintln!("matched in {:?}", start.elapsed());
    assert_eq!(
        f.len(),
        1,
        "{:?}",
        f.iter().map(|f| &f.rule).collect::<Vec<_>>()
    );
    let count = |kind: &str| f[0].evidence.iter().filter(|e| e.kind == kind).count();
    assert_eq!((count("path"), count("process")), (100_000, 2_000));
}

/// A sweep builds the index once and matches every host with it: the findings
/// are those of matching each host alone, whatever its family, and a process
/// seen under several pids is one piece of evidence.
#[test]
fn one_index_for_many_hosts_of_every_family() {
    let catalog = builtin();
    let index = MatchIndex::new(&catalog);
    let mut kesl = proc_("kesl", "/opt/kaspersky/kesl/libexec/kesl -d");
    kesl.exe = Some("/opt/kaspersky/kesl/libexec/kesl".into());
    let mut again = kesl.clone();
    again.pid = 8;
    let linux = Observations {
        processes: vec![kesl, again, proc_("kasperskyish", "/usr/bin/kasperskyish")],
        packages: vec![pkg("kesl", PackageState::Installed, None)],
        paths: vec![dir("/opt/kaspersky/kesl"), dir("/var/opt/kaspersky")],
        ..Observations::default()
    };
    let windows = Observations {
        uninstall: vec![uninstall(
            "Kaspersky Endpoint Security for Windows",
            "AO Kaspersky Lab",
        )],
        ..Observations::default()
    };
    let clean = Observations {
        packages: vec![pkg("openssh-server", PackageState::Installed, None)],
        ..Observations::default()
    };
    for (obs, family) in [
        (&linux, OsFamily::Linux),
        (&windows, OsFamily::Windows),
        (&clean, OsFamily::Linux),
        (&linux, OsFamily::Macos),
        (&windows, OsFamily::Linux),
    ] {
        let alone = match_host(&catalog, obs, family, now());
        let shared = match_host_with(&catalog, &index, obs, family, now());
        assert_eq!(summary(&shared), summary(&alone), "{family:?}");
    }
    let f = match_host_with(&catalog, &index, &linux, OsFamily::Linux, now());
    assert_eq!(f.len(), 1, "{:#?}", summary(&f));
    assert_eq!(f[0].rule, "kaspersky/kesl");
    let processes: Vec<_> = f[0]
        .evidence
        .iter()
        .filter(|e| e.kind == "process")
        .map(|e| e.value.as_str())
        .collect();
    assert_eq!(
        processes,
        vec!["kesl: /opt/kaspersky/kesl/libexec/kesl -d"],
        "one evidence for two pids, none for the look-alike"
    );
    let f = match_host_with(&catalog, &index, &windows, OsFamily::Windows, now());
    assert_eq!(rules_states(&f).len(), 1, "{:#?}", summary(&f));
    assert!(match_host_with(&catalog, &index, &clean, OsFamily::Linux, now()).is_empty());
}

#[test]
#[should_panic(expected = "a match index is used with the catalog it was built from")]
fn an_index_of_another_catalog_is_refused() {
    let index = MatchIndex::new(&catalog());
    let obs = Observations::default();
    match_host_with(&builtin(), &index, &obs, OsFamily::Linux, now());
}

/// Strings a pattern matches, or nearly: `*` as nothing and as text, `?` as
/// one letter, a class as its first member, an alternative group as its first
/// or last choice.
fn samples(pattern: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (star, last) in [("", false), ("Zq-9/", true), ("x", false)] {
        let mut s = String::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => s.push_str(star),
                '?' => s.push('k'),
                '\\' => s.extend(chars.next()),
                '[' => {
                    let mut members: Vec<char> = Vec::new();
                    for m in chars.by_ref() {
                        if m == ']' && !members.is_empty() {
                            break;
                        }
                        members.push(m);
                    }
                    match members.first() {
                        Some('!' | '^') => s.push('#'),
                        Some(m) => s.push(*m),
                        None => {}
                    }
                }
                '{' => {
                    let mut depth = 1;
                    let mut group = String::new();
                    for m in chars.by_ref() {
                        match m {
                            '{' => depth += 1,
                            '}' => depth -= 1,
                            _ => {}
                        }
                        if depth == 0 {
                            break;
                        }
                        group.push(m);
                    }
                    let choices: Vec<&str> = group.split(',').collect();
                    let pick = if last {
                        choices.last()
                    } else {
                        choices.first()
                    };
                    s.push_str(pick.copied().unwrap_or_default());
                }
                c => s.push(c),
            }
        }
        out.push(s);
    }
    let more: Vec<String> = out
        .iter()
        .flat_map(|s| {
            [
                s.to_uppercase(),
                s.to_lowercase(),
                format!("pre {s} post"),
                s.chars().skip(1).collect(),
                s.chars().rev().collect(),
                s.replace('a', "\u{e1}"),
            ]
        })
        .collect();
    out.extend(more);
    out
}

/// The prefilter never changes what matches: for every signature group of
/// the shipped and the test catalog, on strings made from every signature
/// and on the words of the recorded fixtures (real hosts' names, look-alikes
/// included), the rules found are the rules every glob run one by one finds.
#[test]
fn the_literal_prefilter_finds_what_every_glob_finds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut corpus: Vec<String> = Vec::new();
    let catalogs = [Catalog::builtin().unwrap(), catalog()];
    for c in &catalogs {
        for rule in &c.rules {
            for sig in &rule.signatures {
                corpus.extend(samples(&sig.pattern));
            }
        }
    }
    let mut stack = vec![
        root.join("tests/fixtures/offline"),
        root.join("tests/fixtures/windows"),
    ];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                for line in text.lines() {
                    corpus.push(line.trim().to_string());
                    corpus.extend(
                        line.split(|c: char| c.is_whitespace() || "\"'<>=,;".contains(c))
                            .filter(|w| !w.is_empty())
                            .map(str::to_string),
                    );
                }
            }
        }
    }
    // What a hostile host could send as a name: control characters and NULs
    // inside a literal or around it, a literal split by an invalid byte's
    // replacement, literals that overlap or repeat, mixed and Unicode case,
    // and a name as long as a capped section allows.
    let long = format!("{}kaspersky{}", "k".repeat(65_536), "y".repeat(65_536));
    for s in [
        "kas\0persky",
        "\0kaspersky\0",
        "\u{1b}[31mkaspersky\u{1b}[0m",
        "kas\u{fffd}persky",
        "kaskaspersky",
        "kasperskykasperskykaspersky",
        "KaSpErSkY",
        "\u{212a}aspersky",
        "kaspersk\u{fffd}y",
        "\tkesl\t",
        "kesl\nklnagent",
        long.as_str(),
    ] {
        corpus.extend(samples(s));
        corpus.push(s.to_string());
    }
    corpus.sort();
    corpus.dedup();
    assert!(corpus.len() > 1000, "{} strings", corpus.len());
    let mut matched = 0;
    let mut prefiltered = 0;
    for c in &catalogs {
        let index = MatchIndex::new(c);
        for family in OsFamily::ALL {
            for group in &index.by_family[family_slot(family)] {
                prefiltered += group.sigs.iter().filter(|s| s.2 != NO_LITERAL).count();
                for value in &corpus {
                    let mut fast = Vec::new();
                    group.push_matches(c, value, &mut fast);
                    fast.sort_unstable();
                    fast.dedup();
                    let mut slow: Vec<usize> = group
                        .sigs
                        .iter()
                        .filter(|(ri, si, _)| {
                            c.rules[*ri as usize].signatures[*si as usize].matches(value)
                        })
                        .map(|(ri, _, _)| *ri as usize)
                        .collect();
                    slow.dedup();
                    assert_eq!(fast, slow, "{value:?} ({family:?})");
                    matched += usize::from(!slow.is_empty());
                }
            }
        }
    }
    // The corpus reaches the globs, and the prefilter is in use.
    assert!(matched > 500, "{matched} matches");
    assert!(prefiltered > 100, "{prefiltered} signatures with a literal");
}

#[test]
fn a_glob_is_built_when_an_item_holds_its_literal_and_every_built_in_one_builds() {
    let cat = builtin();
    let sigs = || cat.rules.iter().flat_map(|r| &r.signatures);
    let built = || sigs().filter(|s| s.matcher.is_compiled()).count();
    let all = sigs().count();
    assert_eq!(built(), 0, "nothing is built when the catalog is read");
    // A host without the vendor's software, with look-alikes that hold no
    // literal of the catalog: only the few globs without a literal are built.
    let clean = Observations {
        packages: vec![
            pkg("openssh-server", PackageState::Installed, Some("Debian")),
            pkg("kasper-tools", PackageState::Installed, None),
        ],
        processes: vec![proc_("sshd", "/usr/sbin/sshd -D")],
        paths: vec![dir("/opt/acme")],
        ..Observations::default()
    };
    assert!(match_host(&cat, &clean, OsFamily::Linux, now()).is_empty());
    let after_clean = built();
    assert!(after_clean * 10 < all, "{after_clean} of {all} built");
    // The vendor's package: the globs holding its literal are built, and match.
    let affected = Observations {
        packages: vec![pkg("kesl", PackageState::Installed, None)],
        ..Observations::default()
    };
    let f = match_host(&cat, &affected, OsFamily::Linux, now());
    assert_eq!(summary(&f), ["kaspersky/kesl Installed [kesl 1.2-3]"]);
    assert!(built() > after_clean);
    assert!(built() < all);
    // `catalog check` builds them all: every built-in glob compiles.
    cat.compile_all().unwrap();
    assert_eq!(built(), all);
}

#[test]
fn a_findings_fixed_texts_are_shared_not_copied() {
    let cat = builtin();
    let obs = Observations {
        packages: vec![
            pkg("kesl", PackageState::Installed, None),
            pkg("klnagent64", PackageState::Installed, None),
        ],
        processes: vec![proc_("kesl", "/opt/kaspersky/kesl/libexec/kesl -d")],
        // Pushed onto each finding's evidence after the rest.
        signature_updates: vec![SignatureUpdate {
            product: "Kaspersky Endpoint Security".into(),
            date: "2024-09-28".parse().unwrap(),
            source: "kesl-control --app-info".into(),
        }],
        ..Observations::default()
    };
    let f = match_host(&cat, &obs, OsFamily::Linux, now());
    assert_eq!(f.len(), 2, "{:#?}", summary(&f));
    assert!(f[0].evidence.iter().any(|e| e.kind == "signature_update"));
    for finding in &f {
        // The remediation is the catalog's own text (one copy for all its findings).
        let rule = cat.rule(&finding.rule).unwrap();
        let text = rule.remediation.get("linux").unwrap();
        assert!(std::sync::Arc::ptr_eq(
            finding.remediation.as_ref().unwrap(),
            text
        ));
        // Evidence kinds and probe names are static text, not a copy per item,
        // and a finding's evidence keeps no spare room.
        for e in &finding.evidence {
            assert!(matches!(e.kind, std::borrow::Cow::Borrowed(_)), "{e:?}");
            // (The update's source is the host's own text.)
            assert!(
                e.kind == "signature_update"
                    || e.source
                        .as_ref()
                        .is_none_or(|s| matches!(s, std::borrow::Cow::Borrowed(_))),
                "{e:?}"
            );
        }
        assert_eq!(finding.evidence.capacity(), finding.evidence.len());
    }
}
