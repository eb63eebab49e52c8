//! Probes: read-only collection of what is on a host, as typed observations.
//!
//! A probe is a pure parser `&str -> observations` over the output of a documented
//! command; running the commands is the transport's job. On Linux all probes run as
//! one POSIX `sh` script ([`linux::script`]) in a single exec, printing delimited
//! sections that [`linux::parse_sections`] splits and hands to each parser.
//!
//! Windows runs one PowerShell script ([`windows::script`], sent with
//! `-EncodedCommand`) that prints one JSON document ([`windows::parse`]); macOS
//! runs one `sh` script framed like the Linux one ([`macos::parse`]). Hosts that
//! cannot be reached at all are analysed from files collected by other means
//! ([`offline`]), through the same parsers.
//!
//! Which probe a family gets, with its command, parser, roots, bundle files and
//! required sections, is the [`registry`]: one entry per [`crate::os::OsFamily`].
//!
//! Host output is untrusted: every parser is total (no panics on any input), keeps
//! what it understood, and reports what it could not parse as a [`ProbeWarning`].
//! It also says how its section went ([`Observations::sections`]): an empty list
//! parsed out of garbage must never look like a clean host, so the sweep judges
//! the sections against the family's required ones ([`completeness`]).

pub mod bundle_dir;
pub mod completeness;
pub mod linux;
pub mod macos;
pub mod offline;
pub mod registry;
pub mod text;
pub mod windows;

use std::borrow::Cow;
use std::collections::HashMap;

use serde::Serialize;

/// Everything the probes saw on one host. Each list is as the host reported it;
/// sorting and matching happen later.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Observations {
    pub os: Option<fleetsweep_exporters::OsInfo>,
    pub packages: Vec<Package>,
    pub services: Vec<Service>,
    pub processes: Vec<Process>,
    pub kernel_modules: Vec<String>,
    pub paths: Vec<PathEntry>,
    /// Windows: Uninstall ("Apps & Features") entries of every registry view and
    /// loaded user hive. Read from the registry, never from `Win32_Product`.
    pub uninstall: Vec<UninstallEntry>,
    /// Windows services (Win32 services; drivers are in `drivers`).
    pub windows_services: Vec<WindowsService>,
    /// Windows kernel drivers and file-system minifilters.
    pub drivers: Vec<Driver>,
    /// Registry keys that exist (`HKLM\SOFTWARE\KasperskyLab`, ...), as the host spelled them.
    pub registry_keys: Vec<String>,
    /// Certificates of the machine's trusted root store.
    pub certificates: Vec<Certificate>,
    /// Security Center `AntiVirusProduct` entries (workstations only: Windows
    /// Server has no Security Center, so nothing may depend on these).
    pub av_products: Vec<AvProduct>,
    /// macOS installer receipts (`pkgutil --pkgs`).
    pub pkg_receipts: Vec<PkgReceipt>,
    /// macOS application bundles with their signing Team ID.
    pub bundles: Vec<AppBundle>,
    /// macOS launchd jobs: loaded ones and job plists on disk.
    pub launchd: Vec<LaunchdJob>,
    /// macOS system extensions (`systemextensionsctl list`).
    pub system_extensions: Vec<SystemExtension>,
    /// macOS kernel extensions (`kextstat`/`kmutil showloaded`).
    pub kexts: Vec<String>,
    /// Browser extensions of Chrome, Edge and Firefox profiles.
    pub browser_extensions: Vec<BrowserExtension>,
    /// Last signature (anti-virus database) update a product reports: a banned
    /// product whose bases stopped at the update ban is frozen, not protecting.
    pub signature_updates: Vec<SignatureUpdate>,
    /// Sections that failed or were cut; the host is still scanned, but the
    /// report says which evidence is missing.
    pub warnings: Vec<ProbeWarning>,
    /// How each section the probe (or bundle) answered went: what the
    /// host's verdict ([`completeness::verdict`]) is judged on.
    pub sections: completeness::SectionMap,
}

impl Observations {
    /// Adds `from` (another file or run of the same host) to these observations:
    /// lists are appended, application bundles merged by bundle id, and the OS
    /// info already known is kept.
    pub fn merge(&mut self, from: Observations) {
        let Observations {
            os,
            packages,
            services,
            processes,
            kernel_modules,
            paths,
            uninstall,
            windows_services,
            drivers,
            registry_keys,
            certificates,
            av_products,
            pkg_receipts,
            bundles,
            launchd,
            system_extensions,
            kexts,
            browser_extensions,
            signature_updates,
            warnings,
            sections,
        } = from;
        self.os = self.os.take().or(os);
        self.packages.extend(packages);
        self.services.extend(services);
        self.processes.extend(processes);
        self.kernel_modules.extend(kernel_modules);
        self.paths.extend(paths);
        self.uninstall.extend(uninstall);
        self.windows_services.extend(windows_services);
        self.drivers.extend(drivers);
        self.registry_keys.extend(registry_keys);
        self.certificates.extend(certificates);
        self.av_products.extend(av_products);
        self.pkg_receipts.extend(pkg_receipts);
        self.merge_apps(bundles);
        self.launchd.extend(launchd);
        self.system_extensions.extend(system_extensions);
        self.kexts.extend(kexts);
        self.browser_extensions.extend(browser_extensions);
        self.signature_updates.extend(signature_updates);
        self.warnings.extend(warnings);
        for (name, r) in sections {
            completeness::record(&mut self.sections, &name, r.state, r.reason);
        }
    }

    /// Records how section `name` went (the better answer wins when two
    /// sources answer for it).
    pub fn section(
        &mut self,
        name: &str,
        (state, reason): (completeness::SectionState, Option<String>),
    ) {
        completeness::record(&mut self.sections, name, state, reason);
    }

    /// Adds an application bundle; one already seen with the same bundle id
    /// gets the fields it lacked (and a real path instead of an Info.plist name).
    pub fn merge_app(&mut self, app: AppBundle) {
        let same = self
            .bundles
            .iter_mut()
            .find(|b| b.bundle_id.is_some() && b.bundle_id == app.bundle_id);
        match same {
            Some(b) => b.fill_from(app),
            None => self.bundles.push(app),
        }
    }

    /// [`Observations::merge_app`] for many bundles, in linear time (one
    /// lookup per bundle, not a search of all bundles seen so far).
    pub fn merge_apps(&mut self, apps: impl IntoIterator<Item = AppBundle>) {
        // bundle id → the first bundle with it, which merge_app would find
        let mut first: HashMap<String, usize> = HashMap::new();
        for (i, b) in self.bundles.iter().enumerate() {
            if let Some(id) = &b.bundle_id {
                first.entry(id.clone()).or_insert(i);
            }
        }
        for app in apps {
            let at = app.bundle_id.as_ref().and_then(|id| first.get(id).copied());
            match at.and_then(|i| self.bundles.get_mut(i)) {
                Some(b) => b.fill_from(app),
                None => {
                    if let Some(id) = &app.bundle_id {
                        first.insert(id.clone(), self.bundles.len());
                    }
                    self.bundles.push(app);
                }
            }
        }
    }

    /// Adds what a parser found to the list `list` picks, and its warnings.
    ///
    /// ```
    /// # use fleetsweep::probes::{linux, Observations};
    /// let mut obs = Observations::default();
    /// obs.add(|o| &mut o.packages, linux::parse_rpm("bash\t0:5.2-1\tx86_64\tFedora\t\n"));
    /// assert_eq!(obs.packages[0].name, "bash");
    /// ```
    pub fn add<T>(
        &mut self,
        list: fn(&mut Observations) -> &mut Vec<T>,
        (found, warnings): (Vec<T>, Vec<ProbeWarning>),
    ) {
        list(self).extend(found);
        self.warnings.extend(warnings);
    }
}

/// Package manager that reported a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageManager {
    Dpkg,
    Rpm,
    Apk,
}

impl PackageManager {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageManager::Dpkg => "dpkg",
            PackageManager::Rpm => "rpm",
            PackageManager::Apk => "apk",
        }
    }
}

/// Install state of a package, normalised across package managers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageState {
    /// Fully installed (dpkg `ii`/`hi`, any rpm or apk entry).
    Installed,
    /// Removed, configuration files left (dpkg `rc`): a remnant.
    ConfigFiles,
    /// Partly installed/removed (dpkg `half-installed`, `unpacked`, `half-configured`,
    /// `triggers-*`): program files are on disk, so it counts as installed.
    Partial,
    /// Known to the database but not installed (dpkg `un`, `pn`).
    NotInstalled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Package {
    pub manager: PackageManager,
    pub name: String,
    pub version: Option<String>,
    pub arch: Option<String>,
    pub state: PackageState,
    /// rpm `%{VENDOR}`; for dpkg and apk not available (None).
    pub vendor: Option<String>,
    /// dpkg `Maintainer`, rpm `%{PACKAGER}`, apk maintainer (`m:`).
    pub maintainer: Option<String>,
}

/// A service unit (systemd) or init script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// Unit name without the `.service` suffix (`kesl`, `klnagent64`).
    pub name: String,
    /// `enabled`, `disabled`, `static`, ... from `list-unit-files`, or `file` when
    /// only the unit file was read (no systemd running).
    /// The states systemd defines are not copied per service.
    pub unit_state: Option<Cow<'static, str>>,
    /// True when systemd says the unit is active/running; None when unknown.
    pub active: Option<bool>,
    /// Where the unit file lives, when known.
    pub path: Option<String>,
    /// First `ExecStart=` program, when the unit file was read: a vendor install
    /// root in it (`/opt/kaspersky/...`) identifies the vendor even for unknown names.
    pub exec: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    pub pid: u32,
    /// Kernel process name (`comm`, at most 15 bytes): what `pgrep`/`ps -e` show.
    pub name: String,
    /// Full command line, arguments joined by spaces.
    pub cmdline: String,
    /// Executable path (`/proc/PID/exe`), when readable.
    pub exe: Option<String>,
    /// The process's owner (effective uid), where the probe reports it (Linux
    /// `/proc`). Name and command line are whatever the owner chose: only a
    /// root process (or one of unknown owner) is trusted to name a product.
    pub owner_uid: Option<u32>,
    /// The container it runs in (`docker 3f2a1b2c3d4e`, `podman …`,
    /// `kubernetes …`, `lxc NAME`, or `PID namespace pid:[…]` where the cgroup
    /// names no runtime); None for the host's own processes and where the
    /// probe cannot tell (see [`linux::containers`]).
    pub container: Option<String>,
}

impl Process {
    /// The owner of a process the probe reports owners for but did not see
    /// the owner of (it exited between the probe's listings, or raced them):
    /// not root, so not trusted to name a product.
    pub const OWNER_NOT_SEEN: u32 = u32::MAX;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PathKind {
    Dir,
    File,
    Link,
    Other,
}

/// A path that exists on the host.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct PathEntry {
    pub path: String,
    pub kind: PathKind,
}

/// A probe section that failed or was cut short.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ProbeWarning {
    /// Section name (`dpkg`, `rpm`, `systemd`, ...).
    pub section: String,
    pub message: String,
}

/// One Windows Uninstall registry entry ("Apps & Features").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UninstallEntry {
    /// Full key path (`HKLM\SOFTWARE\...\Uninstall\{GUID}`); its last
    /// component is the MSI ProductCode for MSI installs.
    pub key: String,
    pub display_name: String,
    pub display_version: Option<String>,
    pub publisher: Option<String>,
    pub install_location: Option<String>,
    pub uninstall_string: Option<String>,
}

impl UninstallEntry {
    /// The last component of the key: the ProductCode (`{...}`) of MSI installs.
    pub fn key_name(&self) -> &str {
        self.key.rsplit(['\\', '/']).next().unwrap_or_default()
    }
}

/// A Windows service (Win32_Service or Get-Service).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct WindowsService {
    pub name: String,
    pub display_name: Option<String>,
    /// `Running`, `Stopped`, ...
    pub state: Option<String>,
    /// `Auto`, `Manual`, `Disabled`, ...
    pub start_mode: Option<String>,
    /// Image path with arguments, as registered.
    pub image_path: Option<String>,
}

impl WindowsService {
    pub fn running(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("running"))
    }
}

/// A Windows kernel driver or minifilter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Driver {
    pub name: String,
    pub display_name: Option<String>,
    pub state: Option<String>,
    pub start_mode: Option<String>,
    /// `\SystemRoot\System32\drivers\klif.sys`, as registered.
    pub image_path: Option<String>,
    /// Minifilter altitude, when the driver registers filter instances.
    pub altitude: Option<String>,
}

impl Driver {
    /// The driver's file name (`klif.sys`), from its image path, else `NAME.sys`.
    pub fn file_name(&self) -> String {
        match self
            .image_path
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            Some(p) => p
                .trim_matches('"')
                .rsplit(['\\', '/'])
                .next()
                .unwrap_or(p)
                .to_string(),
            None => format!("{}.sys", self.name),
        }
    }

    pub fn running(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("running"))
    }
}

/// A certificate of the trusted root store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Certificate {
    /// Distinguished name as Windows prints it (`CN=..., O=..., C=RU`).
    pub subject: String,
    pub thumbprint: Option<String>,
    pub not_after: Option<String>,
    /// `Cert:\LocalMachine\Root`.
    pub store: String,
}

/// A Security Center anti-virus registration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AvProduct {
    pub display_name: String,
    pub product_exe: Option<String>,
    /// `productState` bit field (enabled / up to date).
    pub product_state: Option<u32>,
}

/// A macOS installer receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PkgReceipt {
    pub id: String,
    pub version: Option<String>,
}

/// A macOS application bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AppBundle {
    /// `/Applications/Kaspersky Endpoint Security for Mac.app`, when known.
    pub path: Option<String>,
    pub bundle_id: Option<String>,
    pub version: Option<String>,
    pub name: Option<String>,
    /// Apple Developer Team ID of the code signature (`codesign -dv`).
    pub team_id: Option<String>,
}

impl AppBundle {
    /// Takes the fields this bundle lacks from `other`, the same app seen
    /// elsewhere (and its real path instead of an Info.plist name).
    fn fill_from(&mut self, other: AppBundle) {
        self.version = self.version.take().or(other.version);
        self.name = self.name.take().or(other.name);
        self.team_id = self.team_id.take().or(other.team_id);
        if self
            .path
            .as_deref()
            .is_none_or(|p| p.ends_with("(Info.plist)"))
        {
            self.path = other.path.or(self.path.take());
        }
    }
}

/// A launchd job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LaunchdJob {
    pub label: String,
    /// True for a job launchd has loaded (`launchctl list`), false for a job
    /// plist on disk that is not loaded.
    pub loaded: bool,
    pub pid: Option<u32>,
    /// The job plist, when the job was seen as a file.
    pub plist: Option<String>,
    /// First program argument, when read from the plist.
    pub program: Option<String>,
}

/// A macOS system extension.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SystemExtension {
    pub team_id: Option<String>,
    pub bundle_id: String,
    pub version: Option<String>,
    /// `activated enabled`, `terminated waiting to uninstall on reboot`, ...
    pub state: String,
}

impl SystemExtension {
    /// Activated (and not being removed).
    pub fn active(&self) -> bool {
        self.state.contains("activated") && !self.state.contains("terminated")
    }
}

/// A browser extension in a browser profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BrowserExtension {
    /// `chrome`, `edge`, `firefox`.
    pub browser: String,
    /// Profile directory, when known.
    pub profile: Option<String>,
    /// Chrome/Edge 32-letter id, or the Firefox add-on id.
    pub id: String,
}

/// A product's own statement of its last anti-virus database update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SignatureUpdate {
    /// The product as it names itself (`Kaspersky Endpoint Security 10 SP1 for
    /// Linux`), or the component that reported it; matched like a display name.
    pub product: String,
    pub date: jiff::civil::Date,
    /// Where it was read (`kesl-control --app-info`, a registry value).
    pub source: String,
}
