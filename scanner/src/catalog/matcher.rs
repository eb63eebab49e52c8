//! Observations × catalog → findings. Pure: no I/O, no clock (the caller passes `now`).
//!
//! Three passes, so that a product missing from the catalog is still reported
//! while a known product is never reported twice:
//!
//! 1. Every observation is matched against the signatures of the specific
//!    (non-fallback) products. A match *claims* the observation for that vendor,
//!    and a matched path also claims everything installed under it: a process
//!    running from `/opt/kaspersky/kesl/...` is evidence of KESL even when its
//!    name is in no list.
//! 2. Observations no specific product claimed go to the vendor's fallback
//!    product ("Unknown Kaspersky product"), which matches by vendor traits:
//!    install roots, package vendor/maintainer, publisher, signing identity.
//!    When a specific product of the vendor was found, shared vendor roots
//!    (`/etc/opt/kaspersky/...`, `/var/log/kaspersky`) are its leftovers, so
//!    only stronger traits (a package by the vendor, a process or unit running
//!    from the install root) can reveal a further, unknown product.
//! 3. A watched successor (`replaces:`) that is installed turns remnant findings
//!    of the products it replaces into `replaced`.

use crate::hashing::{HashMap, HashSet};
use std::borrow::Cow;
use std::collections::BTreeMap;

use fleetsweep_exporters::{Evidence, Finding, FindingState, SignatureAge, Status};

use super::{Catalog, Rule, SigKind};
use crate::os::OsFamily;
use crate::probes::{Observations, Package, PackageState, Process, Service};
use smallvec::{smallvec, SmallVec};

/// One thing seen on the host, in the form signatures are matched against.
/// It borrows from the host's observations: a host lists hundreds to
/// thousands of items and few match, so keys are not copied and the evidence
/// text of the most numerous kinds is only written for items a rule matched.
struct Item<'a> {
    /// (kind, value) pairs this item can be matched on: at most three but
    /// for a Windows driver, kept inline (no allocation per item).
    keys: Keys<'a>,
    /// Filesystem path the item lives at (for claims by install root).
    path: Option<Cow<'a, str>>,
    /// Whether the item shows the product installed or only remnants.
    state: FindingState,
    evidence: Ev<'a>,
    /// Version to report, for packages.
    version: Option<&'a str>,
    /// Path entries can be claimed as ancestors of claimed paths too.
    is_path_entry: bool,
    /// A trait every product of the vendor leaves behind or shares (install
    /// roots, `HKLM\SOFTWARE\KasperskyLab`, the root certificate, kernel
    /// drivers): once a specific
    /// product was found, it is that product's leftover, not an unknown product.
    shared: bool,
    /// The container a process item runs in (`docker 3f2a1b2c3d4e`).
    container: Option<&'a str>,
}

/// An item's (kind, value) keys.
type Keys<'a> = SmallVec<[(SigKind, Cow<'a, str>); 3]>;

/// An item's evidence: written out already, or the observation it comes from,
/// written out by [`Ev::build`] when a rule matched the item.
enum Ev<'a> {
    Built(Evidence),
    Package(&'a Package),
    Service(&'a Service),
    KernelModule(&'a str),
    Path(&'a str),
    Process(&'a Process),
}

impl Ev<'_> {
    fn kind(&self) -> &str {
        match self {
            Ev::Built(e) => &e.kind,
            Ev::Package(_) => "package",
            Ev::Service(_) => "service",
            Ev::KernelModule(_) => "kernel_module",
            Ev::Path(_) => "path",
            Ev::Process(_) => "process",
        }
    }

    fn build(&self) -> Evidence {
        match self {
            Ev::Built(e) => e.clone(),
            Ev::Package(p) => {
                let state_text = match p.state {
                    PackageState::Installed | PackageState::NotInstalled => "",
                    PackageState::Partial => " (partly installed)",
                    PackageState::ConfigFiles => " (removed, config files remain)",
                };
                let value = match &p.version {
                    Some(v) => format!("{} {}{}", p.name, v, state_text),
                    None => format!("{}{}", p.name, state_text),
                };
                ev("package", Some(p.manager.as_str()), value)
            }
            Ev::Service(s) => {
                let detail = match (s.active, s.unit_state.as_deref()) {
                    (Some(true), _) => "running".to_string(),
                    (Some(false), Some(u)) => format!("{u}, not running"),
                    (None, Some("file")) => "unit file; systemd not running".to_string(),
                    (None, Some(u)) => format!("unit file, {u}"),
                    (_, None) => "not running".to_string(),
                };
                ev(
                    "service",
                    Some("systemd"),
                    format!("{}.service ({detail})", s.name),
                )
            }
            Ev::KernelModule(m) => ev("kernel_module", None, m.to_string()),
            Ev::Path(p) => ev("path", None, p.to_string()),
            Ev::Process(p) => ev("process", None, process_value(p)),
        }
    }
}

/// An owned key, for the kinds whose keys are computed.
fn owned<'a>(kind: SigKind, value: String) -> (SigKind, Cow<'a, str>) {
    (kind, Cow::Owned(value))
}

/// A key borrowed from the observations.
fn borrowed(kind: SigKind, value: &str) -> (SigKind, Cow<'_, str>) {
    (kind, Cow::Borrowed(value))
}

impl<'a> Item<'a> {
    fn new(keys: Keys<'a>, state: FindingState, evidence: Evidence) -> Item<'a> {
        Item {
            keys,
            path: None,
            state,
            evidence: Ev::Built(evidence),
            version: None,
            is_path_entry: false,
            shared: false,
            container: None,
        }
    }
}

/// What to do about a product seen only inside containers: the host's
/// package manager cannot remove it, the image it runs from can.
fn container_remediation(containers: &[String]) -> String {
    format!(
        "Seen only inside container(s) {}: the host's package manager cannot remove it. \
         Find each container's image (`docker ps --filter id=ID`, `podman ps`, `crictl ps`, \
         `lxc list`), rebuild the image without the product (or stop using it), redeploy, \
         remove the running containers, then sweep again.",
        containers.join(", ")
    )
}

fn ev(kind: &'static str, source: Option<&'static str>, value: String) -> Evidence {
    Evidence {
        kind: kind.into(),
        source: source.map(Into::into),
        value,
    }
}

/// [`ev`] for a source the host named (a certificate store, a browser): its own copy.
fn ev_from(kind: &'static str, source: &str, value: String) -> Evidence {
    Evidence {
        kind: kind.into(),
        source: Some(source.to_owned().into()),
        value,
    }
}

fn installed_if(yes: bool) -> FindingState {
    if yes {
        FindingState::Installed
    } else {
        FindingState::Remnants
    }
}

/// The program of a Windows image path (`"C:\X\a.exe" -k` → `C:/X/a.exe`).
fn image_program(image: &str) -> Option<String> {
    let t = image.trim();
    let prog = if let Some(rest) = t.strip_prefix('"') {
        rest.split('"').next().unwrap_or_default()
    } else {
        let lower = t.to_ascii_lowercase();
        match lower.find(".exe") {
            Some(i) => &t[..i + 4],
            None => t.split(' ').next().unwrap_or_default(),
        }
    };
    let prog = prog.trim().replace('\\', "/");
    (!prog.is_empty()).then_some(prog)
}

/// `{8-4-4-4-12 hex digits}`: the form of an MSI product code.
fn is_guid(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
        return false;
    };
    let groups: Vec<&str> = inner.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A process's evidence: its name and command line, and its container. The
/// pid changes every sweep; evidence without it diffs cleanly.
fn process_value(p: &Process) -> String {
    let mut value = if p.cmdline.is_empty() {
        p.name.clone()
    } else {
        format!("{}: {}", p.name, p.cmdline)
    };
    if let Some(c) = &p.container {
        value.push_str(&format!(" (in container {c})"));
    }
    value
}

/// Items of the Windows and macOS observation kinds.
fn items_winmac<'a>(obs: &'a Observations, out: &mut Vec<Item<'a>>) {
    for u in &obs.uninstall {
        let mut keys: Keys<'_> = smallvec![borrowed(SigKind::DisplayName, &u.display_name)];
        if let Some(p) = &u.publisher {
            keys.push(borrowed(SigKind::Publisher, p));
        }
        let code = u.key_name();
        if code.starts_with('{') {
            keys.push(borrowed(SigKind::MsiProductCode, code));
        }
        let location = u
            .install_location
            .as_deref()
            .map(|l| {
                l.trim()
                    .trim_matches('"')
                    .replace('\\', "/")
                    .trim_end_matches('/')
                    .to_string()
            })
            .filter(|l| !l.is_empty());
        if let Some(l) = &location {
            keys.push(owned(SigKind::Path, l.clone()));
        }
        let mut value = u.display_name.clone();
        if let Some(v) = &u.display_version {
            value.push(' ');
            value.push_str(v);
        }
        if let Some(p) = &u.publisher {
            value.push_str(&format!(" (publisher {p})"));
        }
        // An MSI product's code is its own evidence item, matched by the same
        // keys as its entry: removal tools (`report --format ansible`,
        // win_package `product_id`) read it from there, never out of the
        // entry's free text, which the package's author wrote.
        let msi_code = is_guid(code).then(|| {
            let mut item = Item::new(
                keys.clone(),
                FindingState::Installed,
                ev(
                    "msi_product_code",
                    Some("registry"),
                    code.to_ascii_uppercase(),
                ),
            );
            item.version = u.display_version.as_deref();
            item
        });
        let mut item = Item::new(
            keys,
            FindingState::Installed,
            ev("uninstall_entry", Some("registry"), value),
        );
        item.path = location.map(Cow::Owned);
        item.version = u.display_version.as_deref();
        out.push(item);
        out.extend(msi_code);
    }
    for s in &obs.windows_services {
        let detail = [s.state.as_deref(), s.start_mode.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ");
        let value = match &s.display_name {
            Some(d) => format!("{} ({d}; {detail})", s.name),
            None => format!("{} ({detail})", s.name),
        };
        let mut item = Item::new(
            smallvec![borrowed(SigKind::Service, &s.name)],
            installed_if(s.running()),
            ev("service", Some(OsFamily::Windows.as_str()), value),
        );
        item.path = s
            .image_path
            .as_deref()
            .and_then(image_program)
            .map(Cow::Owned);
        out.push(item);
    }
    for d in &obs.drivers {
        let file = d.file_name();
        let mut keys: Keys<'_> = smallvec![
            owned(SigKind::Driver, file.clone()),
            borrowed(SigKind::Service, &d.name),
        ];
        if let Some(p) = d.image_path.as_deref().and_then(image_program) {
            keys.push(owned(SigKind::Driver, p));
        }
        let mut detail: Vec<String> = [d.state.clone(), d.start_mode.clone()]
            .into_iter()
            .flatten()
            .collect();
        if let Some(a) = &d.altitude {
            detail.push(format!("minifilter altitude {a}"));
        }
        let mut item = Item::new(
            keys,
            installed_if(d.running()),
            ev(
                "driver",
                Some(OsFamily::Windows.as_str()),
                format!("{} ({file}; {})", d.name, detail.join(", ")),
            ),
        );
        // Kaspersky's kl* drivers are shared by all its Windows products.
        item.shared = true;
        out.push(item);
    }
    for k in &obs.registry_keys {
        let mut item = Item::new(
            smallvec![borrowed(SigKind::RegistryKey, k)],
            FindingState::Remnants,
            ev("registry_key", None, k.replace('/', "\\")),
        );
        item.shared = true;
        out.push(item);
    }
    for c in &obs.certificates {
        let value = match &c.thumbprint {
            Some(t) => format!("{} (thumbprint {t})", c.subject),
            None => c.subject.clone(),
        };
        let mut item = Item::new(
            smallvec![borrowed(SigKind::Certificate, &c.subject)],
            FindingState::Remnants,
            ev_from("certificate", &c.store, value),
        );
        item.shared = true;
        out.push(item);
    }
    for a in &obs.av_products {
        out.push(Item::new(
            smallvec![borrowed(SigKind::DisplayName, &a.display_name)],
            FindingState::Installed,
            ev(
                "av_product",
                Some("SecurityCenter2"),
                a.display_name.clone(),
            ),
        ));
    }
    for r in &obs.pkg_receipts {
        let value = match &r.version {
            Some(v) => format!("{} {v}", r.id),
            None => r.id.clone(),
        };
        let mut item = Item::new(
            smallvec![borrowed(SigKind::PkgReceipt, &r.id)],
            FindingState::Installed,
            ev("pkg_receipt", Some("pkgutil"), value),
        );
        item.version = r.version.as_deref();
        out.push(item);
    }
    for b in &obs.bundles {
        let mut keys = Keys::new();
        if let Some(id) = &b.bundle_id {
            keys.push(borrowed(SigKind::BundleId, id));
        }
        if let Some(t) = &b.team_id {
            keys.push(borrowed(SigKind::TeamId, t));
        }
        if let Some(p) = &b.path {
            keys.push(borrowed(SigKind::Path, p.trim_end_matches('/')));
        }
        let mut detail: Vec<String> = Vec::new();
        if let Some(id) = &b.bundle_id {
            detail.push(match &b.version {
                Some(v) => format!("{id} {v}"),
                None => id.clone(),
            });
        }
        if let Some(t) = &b.team_id {
            detail.push(format!("Team ID {t}"));
        }
        let what = b
            .path
            .clone()
            .or_else(|| b.name.clone())
            .unwrap_or_default();
        let mut item = Item::new(
            keys,
            FindingState::Installed,
            ev(
                "app_bundle",
                None,
                format!("{what} ({})", detail.join(", ")),
            ),
        );
        item.path = b
            .path
            .as_deref()
            .filter(|p| p.starts_with('/'))
            .map(Cow::Borrowed);
        item.version = b.version.as_deref();
        out.push(item);
    }
    for j in &obs.launchd {
        let mut keys: Keys<'_> = smallvec![borrowed(SigKind::LaunchdLabel, &j.label)];
        if let Some(p) = &j.program {
            keys.push(borrowed(SigKind::ProcessPath, p));
        }
        let detail = match (j.loaded, j.pid, &j.plist) {
            (true, Some(pid), _) => format!("loaded, running as pid {pid}"),
            (true, None, _) => "loaded".to_string(),
            (false, _, Some(p)) => format!("job plist {p}, not loaded"),
            (false, _, None) => "not loaded".to_string(),
        };
        let mut item = Item::new(
            keys,
            installed_if(j.loaded),
            ev(
                "launchd_job",
                Some("launchd"),
                format!("{} ({detail})", j.label),
            ),
        );
        item.path = j
            .program
            .as_deref()
            .filter(|p| p.starts_with('/'))
            .map(Cow::Borrowed);
        out.push(item);
    }
    for x in &obs.system_extensions {
        let mut keys: Keys<'_> = smallvec![borrowed(SigKind::SystemExtension, &x.bundle_id)];
        if let Some(t) = &x.team_id {
            keys.push(borrowed(SigKind::TeamId, t));
        }
        let id = match &x.version {
            Some(v) => format!("{} ({v})", x.bundle_id),
            None => x.bundle_id.clone(),
        };
        out.push(Item::new(
            keys,
            installed_if(x.active()),
            ev(
                "system_extension",
                Some("systemextensionsctl"),
                format!("{id} [{}]", x.state),
            ),
        ));
    }
    for k in &obs.kexts {
        out.push(Item::new(
            smallvec![borrowed(SigKind::Kext, k)],
            FindingState::Installed,
            ev("kext", None, k.clone()),
        ));
    }
    for x in &obs.browser_extensions {
        let value = match &x.profile {
            Some(p) => format!("{} in {p}", x.id),
            None => x.id.clone(),
        };
        out.push(Item::new(
            smallvec![borrowed(SigKind::BrowserExtension, &x.id)],
            FindingState::Installed,
            ev_from("browser_extension", &x.browser, value),
        ));
    }
}

/// Evidence of a product's last signature update, with its age and how it
/// relates to the update ban (the rule's deadline).
fn signature_evidence(
    u: &crate::probes::SignatureUpdate,
    ban: Option<jiff::civil::Date>,
    now: jiff::Timestamp,
) -> Evidence {
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let days_between = |a: jiff::civil::Date, b: jiff::civil::Date| {
        a.until((jiff::Unit::Day, b))
            .map(|s| i64::from(s.get_days()))
            .unwrap_or(0)
    };
    let days = days_between(u.date, today);
    let mut value = format!("{} (last update {days} days ago", u.date);
    if let Some(ban) = ban {
        let before = days_between(u.date, ban);
        let rel = if before < 0 {
            format!("still updated after the {ban} update ban")
        } else if before <= 14 {
            format!("stopped around the {ban} update ban")
        } else {
            format!("stopped before the {ban} update ban")
        };
        value.push_str("; ");
        value.push_str(&rel);
    }
    value.push(')');
    ev_from("signature_update", &u.source, value)
}

/// The frozen-protection window: the Kaspersky update servers stopped serving
/// US customers with the 2024-09-29 ban, so bases last updated in September or
/// October 2024 are the ones that stopped with it (a host offline for a while
/// before, or updated once more just after, still falls in).
const FROZEN_FROM: jiff::civil::Date = jiff::civil::date(2024, 9, 1);
const FROZEN_UNTIL: jiff::civil::Date = jiff::civil::date(2024, 11, 1);
/// Bases are normally updated several times a day; a month without any update
/// is not a host that was briefly offline.
const FROZEN_AFTER_DAYS: i64 = 30;

/// The typed age of a product's bases on the scan day (see [`SignatureAge`]).
fn signature_age(last_update: jiff::civil::Date, now: jiff::Timestamp) -> SignatureAge {
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let age_days = last_update
        .until((jiff::Unit::Day, today))
        .map(|s| i64::from(s.get_days()))
        .unwrap_or(0);
    SignatureAge {
        last_update,
        age_days,
        frozen: (FROZEN_FROM..FROZEN_UNTIL).contains(&last_update) && age_days > FROZEN_AFTER_DAYS,
    }
}

fn items(obs: &Observations) -> Vec<Item<'_>> {
    // Sized once for the Linux kinds (most hosts): an item is ~200 bytes.
    let mut out = Vec::with_capacity(
        obs.packages.len()
            + obs.services.len()
            + obs.processes.len()
            + obs.kernel_modules.len()
            + obs.paths.len(),
    );
    for p in &obs.packages {
        let state = match p.state {
            PackageState::Installed | PackageState::Partial => FindingState::Installed,
            PackageState::ConfigFiles => FindingState::Remnants,
            PackageState::NotInstalled => continue,
        };
        let mut keys: Keys<'_> = smallvec![borrowed(SigKind::Package, &p.name)];
        for v in [&p.vendor, &p.maintainer].into_iter().flatten() {
            keys.push(borrowed(SigKind::PackageVendor, v));
        }
        out.push(Item {
            keys,
            path: None,
            state,
            evidence: Ev::Package(p),
            version: p.version.as_deref(),
            is_path_entry: false,
            shared: false,
            container: None,
        });
    }
    for s in &obs.services {
        let mut keys: Keys<'_> = smallvec![borrowed(SigKind::Service, &s.name)];
        if let Some(e) = &s.exec {
            keys.push(borrowed(SigKind::ServiceExec, e));
        }
        out.push(Item {
            keys,
            path: s.exec.as_deref().map(Cow::Borrowed),
            state: installed_if(s.active == Some(true)),
            evidence: Ev::Service(s),
            version: None,
            is_path_entry: false,
            shared: false,
            container: None,
        });
    }
    let mut seen_proc = HashSet::default();
    for p in &obs.processes {
        // A process's name and command line are whatever its owner chose
        // (`exec -a /opt/kaspersky/...`, prctl): only a root process, or one
        // whose owner the probe cannot tell (Windows, `ps`), is trusted to
        // name a product. Its executable's path is the kernel's, trusted
        // whoever runs it: only root installs under a vendor's root.
        let trusted = p.owner_uid.is_none_or(|uid| uid == 0);
        let argv0 = if trusted {
            p.cmdline.split(' ').next().unwrap_or_default()
        } else {
            ""
        };
        let exe = p.exe.as_deref().filter(|e| !e.is_empty());
        let mut keys = Keys::new();
        if trusted {
            keys.push(borrowed(SigKind::Process, &p.name));
        }
        if let Some(e) = exe {
            keys.push(borrowed(SigKind::ProcessPath, e));
        }
        if argv0.starts_with('/') && Some(argv0) != exe {
            keys.push(borrowed(SigKind::ProcessPath, argv0));
        }
        if keys.is_empty() {
            continue;
        }
        // The pid changes every sweep: processes that differ only by it are
        // one item (their evidence, written by `process_value`, is the same).
        if !seen_proc.insert((p.name.as_str(), p.cmdline.as_str(), p.container.as_deref())) {
            continue;
        }
        let path = if argv0.starts_with('/') {
            Some(argv0)
        } else {
            exe
        };
        out.push(Item {
            keys,
            path: path.map(Cow::Borrowed),
            state: FindingState::Installed,
            evidence: Ev::Process(p),
            version: None,
            is_path_entry: false,
            shared: false,
            container: p.container.as_deref(),
        });
    }
    for m in &obs.kernel_modules {
        out.push(Item {
            keys: smallvec![borrowed(SigKind::KernelModule, m)],
            path: None,
            state: FindingState::Installed,
            evidence: Ev::KernelModule(m),
            version: None,
            is_path_entry: false,
            shared: false,
            container: None,
        });
    }
    for p in &obs.paths {
        out.push(Item {
            keys: smallvec![borrowed(SigKind::Path, &p.path)],
            path: Some(Cow::Borrowed(&p.path)),
            state: FindingState::Remnants,
            evidence: Ev::Path(&p.path),
            version: None,
            is_path_entry: true,
            shared: false,
            container: None,
        });
    }
    items_winmac(obs, &mut out);
    out
}

/// `path` lies below `root` (`/opt/k/x` below `/opt/k`, not `/opt/kx`).
#[cfg(test)]
fn under(path: &str, root: &str) -> bool {
    path.len() > root.len()
        && path.starts_with(root)
        && path.as_bytes().get(root.len()) == Some(&b'/')
}

/// The install paths pass 1 claimed (rule index → path), as a tree of their
/// `/`-separated components: the claimed paths at, above or below one path
/// are found in one walk down its components.
///
/// Why a tree: a list of claimed paths checked against every item was
/// quadratic, and an install root with 100,000 entries claims 100,000 paths.
/// `path` lies below `root` exactly when the components of `root` are a
/// proper prefix of those of `path` (`/opt/k` → `["", "opt", "k"]`), which is
/// what the walk checks.
struct ClaimedPaths<'a> {
    /// `nodes[0]` is the empty prefix; a node per distinct component prefix.
    nodes: Vec<ClaimNode<'a>>,
}

#[derive(Default)]
struct ClaimNode<'a> {
    children: HashMap<&'a str, usize>,
    /// Rules (indexes into the catalog) that claimed exactly this path.
    rules: Vec<usize>,
    /// Their vendors.
    vendors: Vec<&'a str>,
    /// Vendors with a claimed path strictly below this one.
    vendors_below: Vec<&'a str>,
}

impl<'a> ClaimedPaths<'a> {
    fn new() -> Self {
        ClaimedPaths {
            nodes: vec![ClaimNode::default()],
        }
    }

    fn insert(&mut self, path: &'a str, rule: usize, vendor: &'a str) {
        let mut at = 0;
        for part in path.split('/') {
            if let Some(n) = self.nodes.get_mut(at) {
                if !n.vendors_below.contains(&vendor) {
                    n.vendors_below.push(vendor);
                }
            }
            at = match self.nodes.get(at).and_then(|n| n.children.get(part)) {
                Some(&next) => next,
                None => {
                    let next = self.nodes.len();
                    self.nodes.push(ClaimNode::default());
                    if let Some(n) = self.nodes.get_mut(at) {
                        n.children.insert(part, next);
                    }
                    next
                }
            };
        }
        if let Some(n) = self.nodes.get_mut(at) {
            if !n.rules.contains(&rule) {
                n.rules.push(rule);
            }
            if !n.vendors.contains(&vendor) {
                n.vendors.push(vendor);
            }
        }
    }

    /// The nodes of `path`'s component prefixes, shortest first, while they
    /// exist: `(node, whole path reached)`.
    fn walk<'p>(&'p self, path: &'p str) -> impl Iterator<Item = (&'p ClaimNode<'a>, bool)> + 'p {
        let mut parts = path.split('/').peekable();
        // Nothing claimed (most hosts): no walk, no lookup.
        let mut at = (self.nodes.len() > 1).then_some(0);
        std::iter::from_fn(move || {
            let part = parts.next()?;
            let next = at
                .and_then(|i| self.nodes.get(i))
                .and_then(|n| n.children.get(part))
                .copied();
            at = next;
            let node = self.nodes.get(next?)?;
            Some((node, parts.peek().is_none()))
        })
    }

    /// Rules that claimed a path `path` lies below.
    fn rules_above(&self, path: &str) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for (node, whole) in self.walk(path) {
            if whole {
                break;
            }
            for r in &node.rules {
                if !out.contains(r) {
                    out.push(*r);
                }
            }
        }
        out
    }

    /// A path claimed for `vendor` is `path` itself, above it or below it.
    fn related(&self, path: &str, vendor: &str) -> bool {
        for (node, whole) in self.walk(path) {
            if node.vendors.contains(&vendor) {
                return true;
            }
            if whole && node.vendors_below.contains(&vendor) {
                return true;
            }
        }
        false
    }
}

/// The catalog's signatures grouped by the OS family they apply to and by
/// kind, so an item's key is tried against the signatures of its own kind
/// only: a host lists hundreds of items and a catalog has hundreds of
/// signatures, and trying every rule's every signature on every item cost
/// most of a host's matching time (about 1M instructions a host; callgrind).
///
/// Built once per sweep (it depends on the catalog only), not once per host.
///
/// Each group also has a prefilter: the literal every match of a signature
/// must contain ([`crate::glob::required_literal`], `kaspersky` in
/// `*kaspersky*`), all of a group's literals found in one pass over an item
/// (Aho-Corasick, ASCII case folded as the case-insensitive globs fold it).
/// A signature whose literal an item lacks is not run: nearly every item of
/// a host (its packages, services, processes) contains none, so most items
/// cost one scan instead of a glob per signature (the globs and their
/// candidates were 8% of a sweep's instructions).
pub struct MatchIndex {
    /// How many rules the catalog had: an index is only used with its catalog.
    rules: usize,
    /// `[family][kind]` → the signatures, in rule order.
    by_family: [Vec<KindIndex>; 3],
}

/// The signatures of one family and kind.
#[derive(Default)]
struct KindIndex {
    /// (rule index, signature index, literal id or [`NO_LITERAL`]).
    sigs: Vec<(u32, u32, u32)>,
    /// Finds the group's literals; None when no signature has one.
    literals: Option<aho_corasick::AhoCorasick>,
}

/// A signature without a required literal: tried on every item.
const NO_LITERAL: u32 = u32::MAX;

impl KindIndex {
    fn new(sigs: Vec<(u32, u32)>, catalog: &Catalog) -> KindIndex {
        // One pattern per distinct literal (ASCII case folded).
        let mut literals: Vec<String> = Vec::new();
        let mut with_ids: Vec<(u32, u32, u32)> = sigs
            .into_iter()
            .map(|(ri, si)| {
                let sig = &catalog.rules[ri as usize].signatures[si as usize];
                let id = crate::glob::required_literal(&sig.pattern).map_or(NO_LITERAL, |lit| {
                    let folded = lit.to_ascii_lowercase();
                    let at = literals
                        .iter()
                        .position(|l| *l == folded)
                        .unwrap_or_else(|| {
                            literals.push(folded);
                            literals.len() - 1
                        });
                    // Catalogs hold hundreds of signatures, not billions.
                    at as u32
                });
                (ri, si, id)
            })
            .collect();
        let automaton = if literals.is_empty() {
            None
        } else {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                // A DFA without a prefilter: items are short, and on them the
                // prefilter's start-up cost more than the table lookups it saves
                // (callgrind: 5,083M instructions with it, 5,056M without, for
                // 1,000 hosts; a contiguous NFA, a tenth of the DFA's 0.9 MB
                // for the built-in catalog, 5,245M).
                .kind(Some(aho_corasick::AhoCorasickKind::DFA))
                .prefilter(false)
                .build(&literals)
                .ok()
        };
        if automaton.is_none() {
            // No prefilter (or none could be built): every signature runs.
            for s in &mut with_ids {
                s.2 = NO_LITERAL;
            }
        }
        KindIndex {
            sigs: with_ids,
            literals: automaton,
        }
    }

    /// Appends the rules of the group's signatures that match `value` (a rule
    /// already last in `rules` is not tried again).
    fn push_matches(&self, catalog: &Catalog, value: &str, rules: &mut Vec<usize>) {
        let found = self.literals_in(value);
        // The file name and extension a glob looks at, found once per
        // key, and only when a signature is tried on it.
        let mut candidate = None;
        for &(ri, si, literal) in &self.sigs {
            let ri = ri as usize;
            if rules.last() == Some(&ri) {
                continue;
            }
            if literal != NO_LITERAL && !found.contains(&literal) {
                continue;
            }
            let sig = &catalog.rules[ri].signatures[si as usize];
            let candidate = candidate.get_or_insert_with(|| globset::Candidate::new(value));
            if sig.matcher.is_match_candidate(candidate) {
                rules.push(ri);
            }
        }
    }

    /// The ids of the group's literals that `value` contains.
    fn literals_in(&self, value: &str) -> SmallVec<[u32; 4]> {
        let mut found: SmallVec<[u32; 4]> = SmallVec::new();
        if let Some(ac) = &self.literals {
            // Most items hold no literal at all: one pass says so before the
            // search for every overlapping one.
            if !ac.is_match(value) {
                return found;
            }
            for m in ac.find_overlapping_iter(value) {
                let id = m.pattern().as_u32();
                if !found.contains(&id) {
                    found.push(id);
                }
            }
        }
        found
    }
}

fn family_slot(family: OsFamily) -> usize {
    match family {
        OsFamily::Linux => 0,
        OsFamily::Windows => 1,
        OsFamily::Macos => 2,
    }
}

impl MatchIndex {
    pub fn new(catalog: &Catalog) -> MatchIndex {
        let by_family = OsFamily::ALL.map(|family| {
            let mut by_kind: Vec<Vec<(u32, u32)>> = Vec::new();
            for (ri, rule) in catalog.rules.iter().enumerate() {
                for (si, s) in rule.signatures.iter().enumerate() {
                    if !s.os.applies_to(family) {
                        continue;
                    }
                    let k = s.kind as usize;
                    if by_kind.len() <= k {
                        by_kind.resize_with(k + 1, Vec::new);
                    }
                    // Catalogs hold hundreds of rules, not billions.
                    by_kind[k].push((ri as u32, si as u32));
                }
            }
            by_kind
                .into_iter()
                .map(|sigs| KindIndex::new(sigs, catalog))
                .collect()
        });
        // `ALL` lists the families in `family_slot` order.
        debug_assert!(OsFamily::ALL
            .iter()
            .enumerate()
            .all(|(i, f)| family_slot(*f) == i));
        MatchIndex {
            rules: catalog.rules.len(),
            by_family,
        }
    }

    fn group(&self, family: OsFamily, kind: SigKind) -> Option<&KindIndex> {
        self.by_family[family_slot(family)]
            .get(kind as usize)
            .filter(|g| !g.sigs.is_empty())
    }
}

/// The rules each item matches (sorted rule indexes, one list per item; an
/// item that matches nothing costs no allocation).
fn rules_matched(
    catalog: &Catalog,
    index: &MatchIndex,
    items: &[Item<'_>],
    family: OsFamily,
) -> Vec<Vec<usize>> {
    items
        .iter()
        .map(|item| {
            let mut rules: Vec<usize> = Vec::new();
            for (kind, value) in &item.keys {
                let Some(group) = index.group(family, *kind) else {
                    continue;
                };
                group.push_matches(catalog, value.as_ref(), &mut rules);
            }
            rules.sort_unstable();
            rules.dedup();
            rules
        })
        .collect()
}

/// Matches one host's observations. `family` is the OS family the host was
/// probed as (its signatures and `any` ones apply); `now` becomes `first_seen` of every finding
/// (the state store replaces it with the real first sighting).
///
/// Builds the catalog's [`MatchIndex`] for this one call: a sweep builds it
/// once and calls [`match_host_with`].
pub fn match_host(
    catalog: &Catalog,
    obs: &Observations,
    family: OsFamily,
    now: jiff::Timestamp,
) -> Vec<Finding> {
    match_host_with(catalog, &MatchIndex::new(catalog), obs, family, now)
}

/// [`match_host`] with the catalog's index built once for many hosts.
///
/// # Panics
/// When `index` was built from another catalog (a different number of rules).
pub fn match_host_with(
    catalog: &Catalog,
    index: &MatchIndex,
    obs: &Observations,
    family: OsFamily,
    now: jiff::Timestamp,
) -> Vec<Finding> {
    assert_eq!(
        index.rules,
        catalog.rules.len(),
        "a match index is used with the catalog it was built from"
    );
    let items = items(obs);
    let matched = rules_matched(catalog, index, &items, family);
    let rule_matches = |ri: usize, ii: usize| matched[ii].binary_search(&ri).is_ok();
    // rule index → item indexes
    let mut hits: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    // (rule index, item index) pairs in `hits`
    let mut hit_set: HashSet<(usize, usize)> = HashSet::default();
    // vendor id → claimed item indexes / claimed install paths
    let mut claimed: BTreeMap<&str, HashSet<usize>> = BTreeMap::new();
    let mut claimed_paths = ClaimedPaths::new();

    // Pass 1: specific products.
    // Walked by item, each item's rules in rule order: every rule's items come
    // out in item order, as a walk by rule would give them, without trying
    // every rule on every item.
    for (ii, item) in items.iter().enumerate() {
        for &ri in &matched[ii] {
            let rule = &catalog.rules[ri];
            if rule.fallback {
                continue;
            }
            hits.entry(ri).or_default().push(ii);
            hit_set.insert((ri, ii));
            claimed
                .entry(rule.vendor_id.as_str())
                .or_default()
                .insert(ii);
            if item.is_path_entry {
                if let Some(p) = &item.path {
                    claimed_paths.insert(p, ri, &rule.vendor_id);
                }
            }
        }
    }
    // Items living under a claimed install path belong to that product.
    for (ii, item) in items.iter().enumerate() {
        let Some(p) = &item.path else { continue };
        if item.is_path_entry {
            continue;
        }
        for ri in claimed_paths.rules_above(p) {
            let rule = &catalog.rules[ri];
            if hit_set.insert((ri, ii)) {
                hits.entry(ri).or_default().push(ii);
            }
            claimed
                .entry(rule.vendor_id.as_str())
                .or_default()
                .insert(ii);
        }
    }
    // Pass 2: fallback products take what is left of their vendor.
    for (ri, rule) in catalog.rules.iter().enumerate().filter(|(_, r)| r.fallback) {
        let vendor_claims = claimed.get(rule.vendor_id.as_str());
        let vendor_found = hits
            .keys()
            .find(|i| {
                !catalog.rules[**i].fallback && catalog.rules[**i].vendor_id == rule.vendor_id
            })
            .copied();
        let mut leftovers = Vec::new();
        for (ii, item) in items.iter().enumerate() {
            if vendor_claims.is_some_and(|c| c.contains(&ii)) {
                continue;
            }
            if vendor_found.is_some() && item.is_path_entry {
                continue;
            }
            if vendor_found.is_some() && item.shared {
                // The found product's leftover (its registry key, the root
                // certificate): shown on that finding, so removal covers it.
                if rule_matches(ri, ii) {
                    leftovers.push(ii);
                }
                continue;
            }
            if let Some(p) = &item.path {
                if claimed_paths.related(p, &rule.vendor_id) {
                    continue;
                }
            }
            if rule_matches(ri, ii) {
                hits.entry(ri).or_default().push(ii);
            }
        }
        if let Some(owner) = vendor_found {
            hits.entry(owner).or_default().extend(leftovers);
        }
    }

    let mut findings: Vec<Finding> = hits
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(ri, idxs)| {
            let rule = &catalog.rules[ri];
            // macOS keeps a package's receipt after a manual uninstall: a
            // receipt with nothing else of the product left (no app, launchd
            // job, extension, kext or file) is a stale receipt, a remnant.
            let receipt = |i: &usize| items[*i].evidence.kind() == "pkg_receipt";
            let stale_receipts = idxs.iter().all(receipt);
            let state = if !stale_receipts
                && idxs
                    .iter()
                    .any(|i| items[*i].state == FindingState::Installed || receipt(i))
            {
                FindingState::Installed
            } else {
                FindingState::Remnants
            };
            let version = idxs
                .iter()
                .filter(|i| items[**i].state == FindingState::Installed)
                .chain(idxs.iter())
                .find_map(|i| items[*i].version.map(str::to_string));
            let mut evidence: Vec<Evidence> = idxs
                .iter()
                .map(|i| {
                    let mut e = items[*i].evidence.build();
                    if stale_receipts {
                        e.value.push_str(
                            " (stale receipt: no app, launchd job, extension or file of the product is left)",
                        );
                    }
                    e
                })
                .collect();
            evidence.sort();
            evidence.dedup();
            let mut containers: Vec<String> =
                idxs.iter().filter_map(|i| items[*i].container.map(str::to_string)).collect();
            containers.sort();
            containers.dedup();
            let only_in_containers = idxs.iter().all(|i| items[*i].container.is_some());
            let remediation = if only_in_containers {
                Some(container_remediation(&containers).into())
            } else {
                rule.remediation.get(family.as_str()).cloned()
            };
            Finding {
                rule: rule.id.clone(),
                vendor: rule.vendor.clone(),
                product: rule.product.clone(),
                policy: rule.policy,
                state,
                status: Status::New,
                version,
                first_seen: now,
                last_seen: Some(now),
                due: None,
                remediated_at: None,
                last_verified: None,
                exception: None,
                signatures: None,
                effective: rule.effective,
                deadline: rule.deadline,
                evidence,
                containers,
                remediation,
            }
        })
        .collect();

    // Pass 3: successors.
    let successors: Vec<&Rule> = findings
        .iter()
        .filter(|f| f.state == FindingState::Installed)
        .filter_map(|f| catalog.rule(&f.rule))
        .filter(|r| !r.replaces.is_empty())
        .collect();
    if !successors.is_empty() {
        for f in &mut findings {
            if f.state == FindingState::Remnants
                && successors
                    .iter()
                    .any(|s| s.id != f.rule && s.replaces.iter().any(|g| g.is_match(&f.rule)))
            {
                f.state = FindingState::Replaced;
            }
        }
    }
    // Frozen protection: the product's own last signature update, on each
    // installed finding of the vendor it names.
    for u in &obs.signature_updates {
        let product = u.product.to_lowercase();
        for f in findings.iter_mut().filter(|f| {
            f.state == FindingState::Installed
                && f.policy == fleetsweep_exporters::Policy::Ban
                && product.contains(&f.vendor.to_lowercase())
                // A browser extension alone has no signature bases.
                && f.evidence.iter().any(|e| e.kind != "browser_extension")
        }) {
            f.evidence.push(signature_evidence(u, f.deadline, now));
            f.evidence.sort();
            f.evidence.dedup();
            // Several sources (agent and product): the newest update counts.
            if f.signatures.is_none_or(|s| s.last_update < u.date) {
                f.signatures = Some(signature_age(u.date, now));
            }
        }
    }
    // Kept until the sweep ends: exactly their room (the signature update
    // pushed above doubled it; 4.2 MB of 5,000 affected hosts' findings).
    for f in &mut findings {
        f.evidence.shrink_to_fit();
    }
    findings.sort_by(|a, b| a.rule.cmp(&b.rule));
    findings
}

#[cfg(test)]
mod tests;
