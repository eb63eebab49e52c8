//! What each test host looks like: packages, unit files, processes and files.
//!
//! Kaspersky package metadata below is constructed from the documented package
//! names and versions (the sources in configs/catalog/tools/kaspersky-footprints.yaml); no verbatim
//! `dpkg-query`/`rpm` line of a Kaspersky package was found in public sources.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Kinds of test host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scenario {
    /// Debian 12 with look-alikes that must stay clean: package
    /// `kaspersky-removal-notes` (Debian QA), process `kesl-exporter`,
    /// `/opt/kasperskyish-tools`, unit `klnagent-monitor.service`.
    Clean,
    /// Ubuntu 22.04 with KESL 12.1.0-1297 installed: dpkg package `kesl`,
    /// `/opt/kaspersky/kesl`, `/var/opt/kaspersky/kesl`, `/etc/opt/kaspersky`,
    /// `kesl.service`, processes `kesl` and `wdserver`.
    Kesl,
    /// Rocky Linux 9.3, no dpkg packages, rpm `klnagent64` 15.1.0-20748
    /// (Vendor "AO Kaspersky Lab"), `/opt/kaspersky/klnagent64`, process `klnagent`.
    RpmNetworkAgent,
    /// Debian 12 where KESL was removed, not purged: dpkg `kesl` in state `rc`,
    /// `/var/opt/kaspersky/kesl` and `/etc/opt/kaspersky` left.
    Remnants,
    /// A Kaspersky product in no list: package `kfoo-agent` maintained by
    /// "AO Kaspersky Lab", `/opt/kaspersky/kfoo`, process `kfood` from there.
    UnknownKaspersky,
    /// Clean host whose key in known_hosts is a different one.
    WrongHostKey,
    /// Clean host whose authorized_keys lacks the client key.
    AuthRefused,
    /// Nothing runs at the address.
    NothingListening,
    /// Clean host used as a jump host; its /etc/hosts resolves the internal
    /// names of the hosts behind it. Its sshd keeps OpenSSH's defaults for
    /// `MaxStartups` (10:30:100) and `MaxSessions` (10), as a real bastion's.
    Bastion,
    /// A bastion reachable only through the named bastion, by an internal
    /// name (a two-hop chain); like [`Scenario::Bastion`] otherwise.
    InnerBastion(String),
    /// KESL remnants (dpkg `rc`), reachable only through the named bastion,
    /// by an internal name only that bastion resolves: the fleet's first
    /// such host is `internal-db.fleet.test` ([`crate::INTERNAL_NAME`]), the
    /// others `NAME.internal.fleet.test`.
    BehindBastion(String),
    /// Behind the named bastion like [`Scenario::BehindBastion`], but
    /// `dpkg-query` hangs: its probe is still running when the test wants it.
    BehindBastionHung(String),
    /// A clean host whose sshd has this `MaxStartups` (e.g. `2:50:4`), to
    /// test a server that drops unauthenticated connections.
    MaxStartups(String),
    /// sshd accepts TCP but never sends a banner (SIGSTOP).
    Hangs,
    /// sshd works, but `dpkg-query` hangs forever.
    HungProbe,
    /// KESL installed as on `Kesl`, but `dpkg-query` prints garbage instead of
    /// the package list (exit 0): the package database is not read, so the
    /// host must never be clean.
    GarbagePackageDb,
    /// A clean Debian 12 host where an unprivileged user (nobody) tries to
    /// forge a Kaspersky finding: a process whose argv[0] is KESL's daemon
    /// path, one whose argv[0] carries a newline and a forged
    /// `==> 1/cmdline <==` header, and one whose executable's path carries a
    /// newline and a forged `ls -l` line naming pid 1. It must stay clean.
    Hostile,
    /// Cheap host for benchmarks: clean, or KESL installed.
    Generated { kaspersky: bool },
    /// Ubuntu 22.04 where KESL is a real Debian package, installed at boot by
    /// the host's own `dpkg -i` into a dpkg database of its own (nothing else
    /// in it, so `apt-get` finds it consistent). The package ships a SysV init
    /// script whose `start` (run by its postinst) starts the daemons `kesl`
    /// and `wdserver`, its conffiles and unit file, and a postrm that deletes
    /// its data on purge; `/etc/init.d`, `/etc/rc?.d` and `/var/cache/apt`
    /// are the host's own. The login user may become root with sudo, as on
    /// hosts managed with Ansible. `apt-get purge kesl`, `service kesl stop`
    /// and `update-rc.d` then work for real on it (tests/tests/ansible.rs).
    KeslDeb,
    /// Debian 12 with nothing Kaspersky on the host itself; KESL's daemons
    /// `kesl` and `wdserver` run as root inside a container: their own PID
    /// and mount namespaces (`unshare --pid --mount --fork`), with the
    /// container's own `/opt` (KESL's install root) mounted over the host's
    /// in that mount namespace only, as a container image's files are.
    Containerised,
}

impl Scenario {
    /// The bastion this host is behind, if any.
    pub fn bastion(&self) -> Option<&str> {
        match self {
            Scenario::InnerBastion(b)
            | Scenario::BehindBastion(b)
            | Scenario::BehindBastionHung(b) => Some(b),
            _ => None,
        }
    }

    /// A jump host: its sshd keeps OpenSSH's start-up and session defaults.
    pub fn is_bastion(&self) -> bool {
        matches!(self, Scenario::Bastion | Scenario::InnerBastion(_))
    }
}

impl Scenario {
    pub fn label(&self) -> &'static str {
        match self {
            Scenario::Clean => "clean",
            Scenario::Kesl => "kesl",
            Scenario::RpmNetworkAgent => "rpm-network-agent",
            Scenario::Remnants => "remnants",
            Scenario::UnknownKaspersky => "unknown-kaspersky",
            Scenario::WrongHostKey => "wrong-host-key",
            Scenario::AuthRefused => "auth-refused",
            Scenario::NothingListening => "nothing-listening",
            Scenario::Bastion => "bastion",
            Scenario::InnerBastion(_) => "inner-bastion",
            Scenario::BehindBastion(_) => "behind-bastion",
            Scenario::BehindBastionHung(_) => "behind-bastion-hung",
            Scenario::MaxStartups(_) => "max-startups",
            Scenario::Hangs => "hangs",
            Scenario::HungProbe => "hung-probe",
            Scenario::GarbagePackageDb => "garbage-package-db",
            Scenario::Hostile => "hostile",
            Scenario::Generated { kaspersky: true } => "generated-kesl",
            Scenario::Generated { kaspersky: false } => "generated-clean",
            Scenario::KeslDeb => "kesl-deb",
            Scenario::Containerised => "containerised",
        }
    }
}

const DEBIAN_12: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n";
const UBUNTU_2204: &str = "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nID=ubuntu\nID_LIKE=debian\n";
const ROCKY_93: &str = "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\n";

fn base_status() -> String {
    include_str!("../hosts/debian12/status.base").to_string()
}

fn dpkg_entry(name: &str, status: &str, version: &str, maintainer: &str) -> String {
    format!(
        "\nPackage: {name}\nStatus: {status}\nPriority: optional\nSection: misc\nMaintainer: {maintainer}\nArchitecture: amd64\nVersion: {version}\nDescription: {name} (test host package)\n"
    )
}

const KL_MAINTAINER: &str = "AO Kaspersky Lab <support@kaspersky.com>";

/// Built test rpms, by name.
pub struct Rpms {
    pub files: Vec<(String, PathBuf)>,
}

impl Rpms {
    fn path(&self, name: &str) -> Option<&Path> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, p)| p.as_path())
    }
}

/// Builds the empty rpm packages the RPM hosts install into their databases.
pub fn build_rpms(dir: &Path) -> Result<Rpms> {
    let pkgs = [
        (
            "bash",
            "5.1.8",
            "6.el9",
            "Rocky Enterprise Software Foundation",
        ),
        (
            "coreutils",
            "8.32",
            "34.el9",
            "Rocky Enterprise Software Foundation",
        ),
        (
            "openssh-server",
            "8.7p1",
            "34.el9",
            "Rocky Enterprise Software Foundation",
        ),
        ("klnagent64", "15.1.0", "20748", "AO Kaspersky Lab"),
    ];
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for (name, version, release, vendor) in pkgs {
        let spec = dir.join(format!("{name}.spec"));
        std::fs::write(
            &spec,
            format!(
                "Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: {name} test package\nLicense: none\nVendor: {vendor}\nPackager: {vendor}\n\n%description\nEmpty test package for fleetsweep test hosts.\n\n%files\n"
            ),
        )?;
        let out = std::process::Command::new("rpmbuild")
            .arg("-bb")
            .arg("--target")
            .arg("x86_64")
            .arg("--define")
            .arg(format!("_topdir {}", dir.join("build").display()))
            .arg("--define")
            .arg(format!("_rpmdir {}", dir.display()))
            .arg("--define")
            .arg("_build_id_links none")
            .arg(&spec)
            .output()
            .context("running rpmbuild")?;
        if !out.status.success() {
            anyhow::bail!(
                "rpmbuild {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        files.push((
            name.to_string(),
            dir.join("x86_64")
                .join(format!("{name}-{version}-{release}.x86_64.rpm")),
        ));
    }
    Ok(Rpms { files })
}

/// The test host's stand-in for KESL's `kesl-control`: `--app-info` prints the
/// layout Kaspersky's KESL documentation shows (field names as the
/// product prints them, values written here), with anti-virus databases
/// released 2024-09-27, just before Kaspersky's US updates stopped.
const KESL_CONTROL: &str = "#!/bin/sh
[ \"$1\" = --app-info ] || { echo 'kesl-control: this test host answers --app-info only' >&2; exit 1; }
cat <<'EOF'
Name:                                       Kaspersky Endpoint Security 12.1 for Linux
Version:                                    12.1.0.1297
Key status:                                 Valid
Last release date of databases:             2024-09-27 18:02:00
Anti-virus databases loaded:                Yes
EOF
";

/// A fake daemon: `path` inside the host's tree, a symlink to `sleep`.
struct Daemon {
    /// Absolute path as seen on the host (e.g. /opt/kaspersky/kesl/libexec/kesl).
    path: &'static str,
}

/// Writes the host's tree and its boot script. `resolves`: (address, name)
/// lines for the host's /etc/hosts (a bastion's internal names).
pub fn prepare(
    hd: &Path,
    name: &str,
    scen: &Scenario,
    rpms: &Rpms,
    resolves: &[(String, String)],
) -> Result<()> {
    let root = hd.join("root");
    for d in [
        "opt",
        "etc_opt",
        "var_opt",
        "var_log",
        "systemd",
        "dpkg/updates",
        "dpkg/info",
        "rpmdb",
        "rpm_macros",
    ] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::write(root.join("dpkg/available"), "")?;
    std::fs::write(
        root.join("rpm_macros/macros.fleetsweep"),
        "%_dbpath /var/lib/rpm\n",
    )?;
    let mut status = base_status();
    let mut os = DEBIAN_12;
    let mut daemons: Vec<Daemon> = Vec::new();
    let mut dirs: Vec<&str> = Vec::new();
    let mut files: Vec<(&str, &str)> = Vec::new();
    let mut rpm_names: Vec<&str> = Vec::new();
    let mut hosts_file = format!("127.0.0.1 localhost\n::1 localhost\n127.0.1.1 {name}\n");
    let mut hung_probe = false;
    let mut garbage_dpkg = false;
    let mut hostile = false;
    let mut kesl_deb = false;
    let mut containerised = false;
    let kesl_installed = |status: &mut String,
                          dirs: &mut Vec<&str>,
                          files: &mut Vec<(&str, &str)>,
                          daemons: &mut Vec<Daemon>| {
        status.push_str(&dpkg_entry(
            "kesl",
            "install ok installed",
            "12.1.0-1297",
            KL_MAINTAINER,
        ));
        dirs.extend([
            "opt/kaspersky/kesl/bin",
            "opt/kaspersky/kesl/lib",
            "opt/kaspersky/kesl/libexec",
            "var_opt/kaspersky/kesl/common",
            "etc_opt/kaspersky",
            "var_log/kaspersky/kesl",
        ]);
        files.push(("var_opt/kaspersky/kesl/common/kesl.ini", "[General]\n"));
        files.push(("opt/kaspersky/kesl/bin/kesl-control", KESL_CONTROL));
        files.push(("etc_opt/kaspersky/kesl.conf", "# constructed test file\n"));
        files.push(("systemd/kesl.service", "[Unit]\nDescription=Kaspersky Endpoint Security for Linux\n[Service]\nExecStart=/opt/kaspersky/kesl/libexec/kesl --daemon\n[Install]\nWantedBy=multi-user.target\n"));
        daemons.push(Daemon {
            path: "/opt/kaspersky/kesl/libexec/kesl",
        });
        daemons.push(Daemon {
            path: "/opt/kaspersky/kesl/libexec/wdserver",
        });
    };
    let kesl_remnants =
        |status: &mut String, dirs: &mut Vec<&str>, files: &mut Vec<(&str, &str)>| {
            status.push_str(&dpkg_entry(
                "kesl",
                "deinstall ok config-files",
                "12.1.0-1297",
                KL_MAINTAINER,
            ));
            dirs.extend(["var_opt/kaspersky/kesl/common", "etc_opt/kaspersky"]);
            files.push(("etc_opt/kaspersky/kesl.conf", "# left behind\n"));
        };
    match scen {
        Scenario::Clean
        | Scenario::WrongHostKey
        | Scenario::AuthRefused
        | Scenario::Bastion
        | Scenario::InnerBastion(_)
        | Scenario::MaxStartups(_)
        | Scenario::Generated { kaspersky: false } => {
            status.push_str(&dpkg_entry(
                "kaspersky-removal-notes",
                "install ok installed",
                "1.0-1",
                "Debian QA Group <packages@qa.debian.org>",
            ));
            dirs.extend(["opt/kasperskyish-tools/bin"]);
            files.push((
                "systemd/klnagent-monitor.service",
                "[Service]\nExecStart=/usr/local/bin/klnagent-monitor\n",
            ));
            daemons.push(Daemon {
                path: "/opt/kasperskyish-tools/bin/kesl-exporter",
            });
            for (address, internal) in resolves {
                let _ = writeln!(hosts_file, "{address} {internal}");
            }
        }
        Scenario::Kesl | Scenario::Generated { kaspersky: true } => {
            os = UBUNTU_2204;
            kesl_installed(&mut status, &mut dirs, &mut files, &mut daemons);
        }
        Scenario::RpmNetworkAgent => {
            os = ROCKY_93;
            status = String::new();
            rpm_names = vec!["bash", "coreutils", "openssh-server", "klnagent64"];
            dirs.extend([
                "opt/kaspersky/klnagent64/bin",
                "opt/kaspersky/klnagent64/sbin",
                "opt/kaspersky/klnagent64/lib",
                "var_opt/kaspersky/klnagent",
            ]);
            files.push((
                "systemd/klnagent64.service",
                "[Service]\nType=forking\nExecStart=/opt/kaspersky/klnagent64/sbin/klnagent\n",
            ));
            daemons.push(Daemon {
                path: "/opt/kaspersky/klnagent64/sbin/klnagent",
            });
        }
        Scenario::Remnants | Scenario::BehindBastion(_) => {
            kesl_remnants(&mut status, &mut dirs, &mut files);
        }
        Scenario::BehindBastionHung(_) => {
            kesl_remnants(&mut status, &mut dirs, &mut files);
            hung_probe = true;
        }
        Scenario::UnknownKaspersky => {
            status.push_str(&dpkg_entry(
                "kfoo-agent",
                "install ok installed",
                "3.0.1-77",
                KL_MAINTAINER,
            ));
            dirs.extend(["opt/kaspersky/kfoo/bin"]);
            daemons.push(Daemon {
                path: "/opt/kaspersky/kfoo/bin/kfood",
            });
        }
        Scenario::HungProbe => {
            hung_probe = true;
        }
        Scenario::GarbagePackageDb => {
            os = UBUNTU_2204;
            kesl_installed(&mut status, &mut dirs, &mut files, &mut daemons);
            garbage_dpkg = true;
        }
        Scenario::Hostile => hostile = true,
        Scenario::Containerised => containerised = true,
        Scenario::KeslDeb => {
            os = UBUNTU_2204;
            status = String::new();
            kesl_deb = true;
        }
        Scenario::NothingListening | Scenario::Hangs => {}
    }
    std::fs::write(root.join("dpkg/status"), status)?;
    std::fs::write(root.join("os-release"), os)?;
    std::fs::write(root.join("hosts"), hosts_file)?;
    for d in &dirs {
        std::fs::create_dir_all(root.join(d))?;
    }
    for (f, text) in &files {
        std::fs::write(root.join(f), text)?;
        if f.contains("/bin/") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root.join(f), std::fs::Permissions::from_mode(0o755))?;
        }
    }
    // Fake daemons: a symlink named after the daemon, pointing at sleep.
    let mut start_daemons = String::new();
    for d in &daemons {
        let rel = d.path.trim_start_matches("/opt/");
        let link = root.join("opt").join(rel);
        if let Some(p) = link.parent() {
            std::fs::create_dir_all(p)?;
        }
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink("/bin/sleep", &link)?;
        let _ = writeln!(
            start_daemons,
            "{} infinity </dev/null >/dev/null 2>&1 &",
            d.path
        );
    }
    // Every host gets an rpm database (empty unless it is an RPM host), as a
    // host with rpm installed has.
    let init = std::process::Command::new("rpm")
        .arg("--dbpath")
        .arg(root.join("rpmdb"))
        .arg("--initdb")
        .output()
        .context("running rpm --initdb")?;
    if !init.status.success() {
        anyhow::bail!(
            "rpm --initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
    }
    if !rpm_names.is_empty() {
        let paths: Vec<String> = rpm_names
            .iter()
            .filter_map(|n| rpms.path(n))
            .map(|p| p.display().to_string())
            .collect();
        let db = root.join("rpmdb");
        let out = std::process::Command::new("rpm")
            .arg("--dbpath")
            .arg(&db)
            .args([
                "-i",
                "--justdb",
                "--nodeps",
                "--noscripts",
                "--ignorearch",
                "--ignoreos",
                "--nosignature",
                "--nodigest",
            ])
            .args(&paths)
            .output()
            .context("running rpm --justdb")?;
        if !out.status.success() {
            anyhow::bail!(
                "rpm --justdb failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    if hung_probe {
        std::fs::write(root.join("hang.sh"), "#!/bin/sh\nexec sleep 3600\n")?;
        sh_chmod(&root.join("hang.sh"))?;
    }
    if garbage_dpkg {
        std::fs::write(
            root.join("garbage.sh"),
            "#!/bin/sh\nprintf '\\001\\002 garbage \\377\\376\\nnot a package line\\n'\n",
        )?;
        sh_chmod(&root.join("garbage.sh"))?;
    }
    let r = root.display();
    let hd_s = hd.display();
    let mut boot = format!(
        "#!/bin/sh\n# Boot script of test host {name} ({}); runs as PID 1 of its namespaces.\nset -e\n\
         mkdir -p /etc/opt /var/opt /etc/systemd/system /var/lib/rpm /usr/lib/rpm/macros.d\n\
         mount --bind {r}/opt /opt\nmount --bind {r}/etc_opt /etc/opt\nmount --bind {r}/var_opt /var/opt\n\
         mount --bind {r}/var_log /var/log\nmount --bind {r}/systemd /etc/systemd/system\n\
         mount --bind {r}/dpkg /var/lib/dpkg\nmount --bind {r}/rpmdb /var/lib/rpm\n\
         mount --bind {r}/rpm_macros /usr/lib/rpm/macros.d\nmount --bind {r}/os-release /usr/lib/os-release\n\
         mount --bind {r}/hosts /etc/hosts\nhostname {name} 2>/dev/null || true\n",
        scen.label()
    );
    if hung_probe {
        let _ = writeln!(boot, "mount --bind {r}/hang.sh /usr/bin/dpkg-query");
    }
    if garbage_dpkg {
        let _ = writeln!(boot, "mount --bind {r}/garbage.sh /usr/bin/dpkg-query");
    }
    if kesl_deb {
        boot.push_str(&deb_host(hd, &root)?);
    }
    boot.push_str(&start_daemons);
    if containerised {
        // The container's root filesystem holds KESL's install root; the
        // host's /opt stays as it was. Inside, the shell is PID 1 of the new
        // PID namespace, starts wdserver and becomes kesl.
        let copt = root.join("container_opt/kaspersky/kesl/libexec");
        std::fs::create_dir_all(&copt)?;
        for d in ["kesl", "wdserver"] {
            let _ = std::fs::remove_file(copt.join(d));
            std::os::unix::fs::symlink("/bin/sleep", copt.join(d))?;
        }
        let _ = writeln!(
            boot,
            "unshare --pid --mount --fork --mount-proc sh -c 'mount --bind {r}/container_opt /opt && \
             (/opt/kaspersky/kesl/libexec/wdserver infinity &) && exec /opt/kaspersky/kesl/libexec/kesl infinity' \
             </dev/null >/dev/null 2>&1 &"
        );
    }
    if hostile {
        // The forgeries, each run as nobody (setpriv, util-linux): argv[0]
        // through bash's `exec -a`, the executable through a copy of sleep
        // whose directory name holds a newline and an `ls -l` line. Nobody
        // must reach them: the host's directories are opened up (o+x).
        let evil =
            "evil\nlrwxrwxrwx 1 root root 0 Nov 22 10:00 1/exe -> /opt/kaspersky/kesl/libexec";
        std::fs::create_dir_all(root.join(evil))?;
        std::fs::copy("/bin/sleep", root.join(evil).join("wdserver"))?;
        for dir in [hd.parent(), Some(hd), Some(root.as_path())]
            .into_iter()
            .flatten()
        {
            sh_chmod(dir)?;
        }
        sh_chmod(&root.join("evil\nlrwxrwxrwx 1 root root 0 Nov 22 10:00 1"))?;
        sh_chmod(&root.join("evil\nlrwxrwxrwx 1 root root 0 Nov 22 10:00 1/exe -> "))?;
        for d in [
            "opt",
            "opt/kaspersky",
            "opt/kaspersky/kesl",
            "opt/kaspersky/kesl/libexec",
        ] {
            sh_chmod(
                &root
                    .join("evil\nlrwxrwxrwx 1 root root 0 Nov 22 10:00 1/exe -> ")
                    .join(d),
            )?;
        }
        std::fs::write(
            root.join("forge-argv.sh"),
            "#!/bin/bash\nexec -a /opt/kaspersky/kesl/libexec/wdserver sleep infinity\n",
        )?;
        std::fs::write(
            root.join("forge-header.sh"),
            "#!/bin/bash\nexec -a \"$(printf 'x\\n==> 1/cmdline <==\\n/opt/kaspersky/kesl/libexec/wdserver -d')\" sleep infinity\n",
        )?;
        std::fs::write(
            root.join("forge-exe.sh"),
            format!(
                "#!/bin/sh\nexec '{}/{evil}/wdserver' infinity\n",
                root.display()
            ),
        )?;
        for f in ["forge-argv.sh", "forge-header.sh", "forge-exe.sh"] {
            sh_chmod(&root.join(f))?;
            let _ = writeln!(
                boot,
                "setpriv --reuid=65534 --regid=65534 --clear-groups {r}/{f} </dev/null >/dev/null 2>&1 &"
            );
        }
    }
    if matches!(scen, Scenario::Hangs) {
        // sshd listens, then is stopped: the kernel still completes TCP
        // handshakes into the listen backlog, but no banner ever comes.
        let _ = writeln!(
            boot,
            "/usr/sbin/sshd -D -f {hd_s}/sshd_config -E {hd_s}/sshd.log &\npid=$!\n\
             while [ ! -s {hd_s}/sshd.pid ]; do sleep 0.05; done\nkill -STOP $pid\n\
             touch {hd_s}/stopped\nexec sleep infinity"
        );
    } else {
        let _ = writeln!(
            boot,
            "exec /usr/sbin/sshd -D -f {hd_s}/sshd_config -E {hd_s}/sshd.log"
        );
    }
    std::fs::write(hd.join("boot.sh"), boot)?;
    Ok(())
}

/// The KESL stand-in as a Debian package: daemons (links to `sleep`), a SysV
/// init script (LSB header, so `update-rc.d` and `service` take it), its
/// configuration as conffiles, a unit file, and maintainer scripts that
/// start it on install, stop it on removal and delete its data on purge, as
/// the real package's do.
const KESL_INIT: &str = r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          kesl
# Required-Start:    $remote_fs
# Required-Stop:     $remote_fs
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: Kaspersky Endpoint Security for Linux (test stand-in)
### END INIT INFO
D=/opt/kaspersky/kesl/libexec
case "$1" in
  start)
    for n in kesl wdserver; do
      start-stop-daemon --start --quiet --oknodo --background --name $n --exec $D/$n -- infinity
    done ;;
  stop)
    for n in kesl wdserver; do
      start-stop-daemon --stop --quiet --oknodo --retry 5 --name $n --exec $D/$n
    done ;;
  status)
    start-stop-daemon --status --name kesl --exec $D/kesl; exit $? ;;
  restart|force-reload) "$0" stop; "$0" start ;;
  *) echo "Usage: $0 {start|stop|status|restart}" >&2; exit 3 ;;
esac
"#;

const KESL_POSTINST: &str = "#!/bin/sh
set -e
if [ \"$1\" = configure ]; then
  mkdir -p /var/opt/kaspersky/kesl/common /var/log/kaspersky/kesl
  echo '[General]' > /var/opt/kaspersky/kesl/common/kesl.ini
  update-rc.d kesl defaults >/dev/null
  /etc/init.d/kesl start
fi
";
const KESL_PRERM: &str = "#!/bin/sh
set -e
/etc/init.d/kesl stop
";
const KESL_POSTRM: &str = "#!/bin/sh
set -e
if [ \"$1\" = purge ]; then
  rm -rf /var/opt/kaspersky/kesl /var/log/kaspersky/kesl
  rmdir /var/opt/kaspersky /var/log/kaspersky /etc/opt/kaspersky 2>/dev/null || true
  update-rc.d kesl remove >/dev/null
fi
";

/// Builds `kesl.deb` in `hd`, gives the host its own init-script folders,
/// apt cache and sudoers, and returns the boot lines that mount them and
/// install the package.
fn deb_host(hd: &Path, root: &Path) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    if !Path::new("/usr/bin/sudo").exists() || !Path::new("/usr/bin/dpkg-deb").exists() {
        anyhow::bail!(
            "the kesl-deb test host needs sudo and dpkg-deb: run scripts/setup, or apt-get install -y sudo dpkg"
        );
    }
    let pkg = hd.join("kesl-pkg");
    let _ = std::fs::remove_dir_all(&pkg);
    for d in [
        "DEBIAN",
        "opt/kaspersky/kesl/libexec",
        "opt/kaspersky/kesl/bin",
        "etc/init.d",
        "etc/opt/kaspersky",
        "etc/systemd/system",
    ] {
        std::fs::create_dir_all(pkg.join(d))?;
    }
    for n in ["kesl", "wdserver"] {
        std::os::unix::fs::symlink("/bin/sleep", pkg.join("opt/kaspersky/kesl/libexec").join(n))?;
    }
    let files: [(&str, &str, u32); 9] = [
        (
            "DEBIAN/control",
            "Package: kesl\nVersion: 12.1.0-1297\nArchitecture: amd64\nMaintainer: AO Kaspersky Lab <support@kaspersky.com>\nSection: misc\nPriority: optional\nDescription: kesl (test host package)\n A stand-in for Kaspersky Endpoint Security for Linux on fleetsweep test hosts.\n",
            0o644,
        ),
        ("DEBIAN/conffiles", "/etc/init.d/kesl\n/etc/opt/kaspersky/kesl.conf\n", 0o644),
        ("DEBIAN/postinst", KESL_POSTINST, 0o755),
        ("DEBIAN/prerm", KESL_PRERM, 0o755),
        ("DEBIAN/postrm", KESL_POSTRM, 0o755),
        ("etc/init.d/kesl", KESL_INIT, 0o755),
        ("etc/opt/kaspersky/kesl.conf", "# constructed test file\n", 0o644),
        ("etc/systemd/system/kesl.service", "[Unit]\nDescription=Kaspersky Endpoint Security for Linux\n[Service]\nExecStart=/opt/kaspersky/kesl/libexec/kesl --daemon\n[Install]\nWantedBy=multi-user.target\n", 0o644),
        ("opt/kaspersky/kesl/bin/kesl-control", KESL_CONTROL, 0o755),
    ];
    for (f, text, mode) in files {
        std::fs::write(pkg.join(f), text)?;
        std::fs::set_permissions(pkg.join(f), std::fs::Permissions::from_mode(mode))?;
    }
    let out = std::process::Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&pkg)
        .arg(hd.join("kesl.deb"))
        .output()
        .context("running dpkg-deb")?;
    if !out.status.success() {
        anyhow::bail!(
            "dpkg-deb --build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A host's package database is never empty (the probe takes an empty
    // one for one it could not read): a small base package goes in first.
    let base = hd.join("base-pkg");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(base.join("DEBIAN"))?;
    std::fs::write(
        base.join("DEBIAN/control"),
        "Package: testhost-base\nVersion: 1.0\nArchitecture: all\nMaintainer: fleetsweep tests <tests@fleetsweep.invalid>\nSection: admin\nPriority: required\nDescription: test host base (no files)\n",
    )?;
    let out = std::process::Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&base)
        .arg(hd.join("testhost-base.deb"))
        .output()
        .context("running dpkg-deb")?;
    if !out.status.success() {
        anyhow::bail!(
            "dpkg-deb --build failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rc = ["0", "1", "2", "3", "4", "5", "6", "S"];
    for d in ["init.d", "apt_cache/archives/partial", "dpkg/triggers"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    for r in rc {
        std::fs::create_dir_all(root.join(format!("rc{r}.d")))?;
    }
    let sudoers = root.join("sudoers");
    std::fs::write(
        &sudoers,
        format!("Defaults env_reset\nDefaults secure_path=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\nroot ALL=(ALL:ALL) ALL\n{} ALL=(ALL:ALL) NOPASSWD: ALL\n", crate::USER),
    )?;
    std::fs::set_permissions(&sudoers, std::fs::Permissions::from_mode(0o440))?;
    let r = root.display();
    let mut boot = format!(
        "mkdir -p /etc/init.d /var/cache/apt
mount --bind {r}/init.d /etc/init.d
         mount --bind {r}/apt_cache /var/cache/apt
mount --bind {r}/sudoers /etc/sudoers
"
    );
    for n in rc {
        let _ = writeln!(
            boot,
            "mkdir -p /etc/rc{n}.d
mount --bind {r}/rc{n}.d /etc/rc{n}.d"
        );
    }
    let _ = writeln!(
        boot,
        "dpkg -i {} {} >{} 2>&1",
        hd.join("testhost-base.deb").display(),
        hd.join("kesl.deb").display(),
        hd.join("dpkg-install.log").display()
    );
    Ok(boot)
}

fn sh_chmod(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}
