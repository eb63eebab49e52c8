//! Probes: read-only collection of what is on a host, as typed observations.
//!
//! A probe is a pure parser `&str -> observations` over the output of a documented
//! command; running the commands is the transport's job. On Linux all probes run as
//! one POSIX `sh` script ([`linux::script`]) in a single exec, printing delimited
//! sections that [`linux::parse_sections`] splits and hands to each parser.
//!
//! Host output is untrusted: every parser is total (no panics on any input), keeps
//! what it understood, and reports what it could not parse as a [`ProbeWarning`].

pub mod linux;

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
    /// Sections that failed or were cut; the host is still scanned, but the
    /// report says which evidence is missing.
    pub warnings: Vec<ProbeWarning>,
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
    pub unit_state: Option<String>,
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
