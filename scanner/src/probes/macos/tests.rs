#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use super::*;

const F: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/macos/");

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(format!("{F}{rel}")).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn real_launchctl_list() {
    let text = String::from_utf8(fixture("inspec-mocks/launchctl-list")).unwrap();
    let (jobs, w) = parse_launchctl_list(&text);
    assert!(w.is_empty(), "{w:?}");
    let got: Vec<(&str, Option<u32>, bool)> = jobs
        .iter()
        .map(|j| (j.label.as_str(), j.pid, j.loaded))
        .collect();
    assert_eq!(
        got,
        vec![
            ("org.openbsd.ssh-agent", Some(2892), true),
            ("com.apple.FilesystemUI", None, true),
            ("org.example.killed-agent", None, true),
        ]
    );
}

#[test]
fn real_info_plists_xml_and_binary() {
    let chrome =
        parse_info_plist(&fixture("osv-scalibr-info-plist/GoogleChrome_Info.plist")).unwrap();
    assert_eq!(chrome.bundle_id.as_deref(), Some("com.google.Chrome"));
    assert_eq!(chrome.version.as_deref(), Some("130.0.6723.69"));
    assert_eq!(chrome.name.as_deref(), Some("Chrome"));
    let binary =
        parse_info_plist(&fixture("osv-scalibr-info-plist/BinaryApp_Info.bplist")).unwrap();
    assert_eq!(
        binary.bundle_id.as_deref(),
        Some("com.google.corp.gMacInformation")
    );
    let photo = parse_info_plist(&fixture("osquery-plist/test_info.plist")).unwrap();
    assert_eq!(photo.bundle_id.as_deref(), Some("com.apple.PhotoBooth"));
    assert_eq!(photo.version.as_deref(), Some("6.0"));
    let job = parse_launchd_plist(&fixture("osquery-plist/test_launchd.plist")).unwrap();
    assert_eq!(job.label, "com.apple.mDNSResponder");
    assert_eq!(job.program.as_deref(), Some("/usr/sbin/mDNSResponder"));
    assert!(parse_info_plist(b"not a plist").is_err());
    assert!(parse_info_plist(b"<?xml version=\"1.0\"?><plist><array/></plist>").is_err());
    assert!(parse_launchd_plist(&fixture("osquery-plist/test_info.plist")).is_err());
}

#[test]
fn command_output_formats() {
    let (r, w) = parse_pkgutil(
        "com.apple.pkg.Core\ncom.kaspersky.kav.core\n\ncom.kaspersky.kav.core\nhas space\n",
    );
    assert_eq!(r.len(), 2);
    assert_eq!(w.len(), 1);
    let (r, _) = parse_pkgutil("p\tcom.apple.pkg.Core\np\tcom.kaspersky.kav.core\t21.0.19\n");
    assert_eq!(r[1].version.as_deref(), Some("21.0.19"));

    // Shape as Kaspersky's documentation shows it (constructed, not recorded).
    let x = parse_systemextensionsctl(
        "1 extension(s)\n--- com.apple.system_extension.network_extension\n\
         enabled\tactive\tteamID\tbundleID (version)\tname\t[state]\n\
         *\t*\t2Y8XE5CQ94\tcom.kaspersky.kav.sysext (21.0/21.0.19)\tKaspersky\t[activated enabled]\n\
         \t\tEQHXZ8M8AV\tcom.example.filter (1.0/1)\tFilter\t[terminated waiting to uninstall on reboot]\n",
    );
    assert_eq!(x.len(), 2);
    assert_eq!(x[0].team_id.as_deref(), Some("2Y8XE5CQ94"));
    assert_eq!(x[0].bundle_id, "com.kaspersky.kav.sysext");
    assert_eq!(x[0].version.as_deref(), Some("21.0/21.0.19"));
    assert!(x[0].active());
    assert!(!x[1].active());

    let k = parse_kexts(
        "Index Refs Address            Size       Wired      Name (Version) UUID <Linked Against>\n\
           1  150 0                  0          0          com.apple.kpi.bsd (21.6.0) 0F43 <>\n\
         166    0 0xffffff7f8a1f5000 0x5000     0x5000     com.kaspersky.kext.klif (3.1.0d4) 1A2B <7 5 4 3 1>\n",
    );
    assert_eq!(k, vec!["com.apple.kpi.bsd", "com.kaspersky.kext.klif"]);

    let apps = parse_codesign(
        "Executable=/Applications/Kaspersky Downloader.app/Contents/MacOS/Kaspersky Downloader\n\
         Identifier=com.kaspersky.kav.downloader\nFormat=app bundle with Mach-O thin (x86_64)\n\
         TeamIdentifier=2Y8XE5CQ94\n\
         Executable=/Applications/Unsigned.app/Contents/MacOS/Unsigned\nIdentifier=Unsigned\nTeamIdentifier=not set\n",
    );
    assert_eq!(apps.len(), 2);
    assert_eq!(
        apps[0].path.as_deref(),
        Some("/Applications/Kaspersky Downloader.app")
    );
    assert_eq!(apps[0].team_id.as_deref(), Some("2Y8XE5CQ94"));
    assert_eq!(apps[1].team_id, None);

    let (a, w) =
        parse_apps("a\t/Applications/X.app\tcom.x\t1.0\tX\tABCDE12345\nbad line\n!truncated\n");
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].team_id.as_deref(), Some("ABCDE12345"));
    assert_eq!(w.len(), 1);

    let (x, _) = parse_browser_extensions("chrome\t/Users/u/Library/Application Support/Google/Chrome/Default\tamkpcclbbgegoafihnpgomddadjhcadd\n");
    assert_eq!(x[0].id, "amkpcclbbgegoafihnpgomddadjhcadd");

    let os =
        parse_sw_vers("ProductName:\t\tmacOS\nProductVersion:\t\t14.5\nBuildVersion:\t\t23F79\n");
    assert_eq!(
        (os.name.as_deref(), os.version.as_deref()),
        (Some("macOS"), Some("14.5 (23F79)"))
    );
}

#[test]
fn hostile_sections_never_panic() {
    let n = "N0nce";
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..100 {
        let mut body = String::new();
        for _ in 0..(round * 31 % 2000) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            body.push(b"\t\n:()[]*. aZ9/"[(x % 14) as usize] as char);
        }
        let mut out = String::new();
        for s in [
            "sw-vers",
            "pkgutil",
            "apps",
            "launchd",
            "sysext",
            "kexts",
            "ps",
            "browser-extensions",
            "paths",
        ] {
            out.push_str(&format!(
                "@@fleetsweep:{n}:begin {s}\n{body}\n@@fleetsweep:{n}:end {s} rc=0\n"
            ));
        }
        let _ = parse(&out, n);
        let _ = parse_codesign(&body);
        let _ = parse_info_plist(body.as_bytes());
    }
}

/// The script runs under /bin/sh here (a Linux box: the macOS tools are
/// missing, so their sections are absent or fail), frames every section with
/// the nonce and finishes with `done`.
#[test]
fn script_runs_under_sh_and_frames_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("Kaspersky Lab");
    std::fs::create_dir_all(root.join("KAV/Binaries")).unwrap();
    let nonce = crate::probes::linux::new_nonce();
    let stdin = crate::probes::linux::stdin_for(&nonce, &[root.to_string_lossy().into_owned()]);
    let mut child = Command::new("/bin/sh")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.ends_with(&format!("@@fleetsweep:{nonce}:done\n")),
        "{text}"
    );
    let obs = parse(&text, &nonce);
    assert!(
        obs.paths
            .iter()
            .any(|p| p.path.ends_with("Kaspersky Lab/KAV/Binaries")),
        "{:?}",
        obs.paths
    );
    assert!(
        obs.processes.iter().any(|p| p.pid == std::process::id()),
        "own process missing"
    );
    // A bad nonce: refused, nothing printed.
    let mut child = Command::new("/bin/sh")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"bad nonce\n.\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

/// 20,000 nested arrays in an XML or a binary plist used to overflow the
/// stack and abort the whole process; now they are one refused file.
#[test]
fn deeply_nested_plists_are_refused_not_a_stack_overflow() {
    let n = 20_000;
    let xml = format!(
        "<?xml version=\"1.0\"?><plist version=\"1.0\">{}{}</plist>",
        "<array>".repeat(n),
        "</array>".repeat(n)
    );
    let err = parse_info_plist(xml.as_bytes()).unwrap_err();
    assert!(err.contains("deeper than 64 levels"), "{err}");
    // Binary: object i is a one-element array holding object i+1.
    let mut objects: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            let mut o = vec![0xA1]; // array of 1, 2-byte refs follow
            o.extend_from_slice(&((i + 1) as u16).to_be_bytes());
            o
        })
        .collect();
    objects.push(vec![0x08]); // false
    let mut body = b"bplist00".to_vec();
    let mut offsets = Vec::new();
    for o in &objects {
        offsets.push(body.len() as u32);
        body.extend_from_slice(o);
    }
    let table = body.len() as u64;
    for off in &offsets {
        body.extend_from_slice(&off.to_be_bytes());
    }
    let mut trailer = vec![0u8; 6];
    trailer.push(4); // offset size
    trailer.push(2); // ref size
    trailer.extend_from_slice(&(objects.len() as u64).to_be_bytes());
    trailer.extend_from_slice(&0u64.to_be_bytes());
    trailer.extend_from_slice(&table.to_be_bytes());
    body.extend_from_slice(&trailer);
    let err = parse_launchd_plist(&body).unwrap_err();
    assert!(err.contains("deeper than 64 levels"), "{err}");
    // A shallow binary plist of the same shape still reads.
    assert!(parse_info_plist(&fixture("osv-scalibr-info-plist/BinaryApp_Info.bplist")).is_ok());
}

/// Shared references make a small binary plist expand exponentially.
#[test]
fn binary_plists_that_expand_exponentially_are_refused() {
    let levels = 40u16;
    let mut body = b"bplist00".to_vec();
    let mut offsets = Vec::new();
    for i in 0..levels {
        offsets.push(body.len() as u32);
        body.push(0xA2); // array of 2, both refs to the next object
        body.extend_from_slice(&(i + 1).to_be_bytes());
        body.extend_from_slice(&(i + 1).to_be_bytes());
    }
    offsets.push(body.len() as u32);
    body.push(0x09); // true
    let table = body.len() as u64;
    for off in &offsets {
        body.extend_from_slice(&off.to_be_bytes());
    }
    let mut trailer = vec![0u8; 6];
    trailer.extend_from_slice(&[4, 2]);
    trailer.extend_from_slice(&(offsets.len() as u64).to_be_bytes());
    trailer.extend_from_slice(&0u64.to_be_bytes());
    trailer.extend_from_slice(&table.to_be_bytes());
    body.extend_from_slice(&trailer);
    let t0 = std::time::Instant::now();
    let err = parse_info_plist(&body).unwrap_err();
    assert!(
        err.contains("more than 200000 values") || err.contains("not a plist"),
        "{err}"
    );
    assert!(t0.elapsed() < std::time::Duration::from_secs(10));
}
