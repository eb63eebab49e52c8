//! The catalog of banned (and watched) software, and how it is loaded.
//!
//! Format: `docs/catalog.md`. Several files merge into one [`Catalog`]; every
//! error names file, line and column, and unknown keys are errors, because a
//! typo in a security catalog must never silently disable a signature.
//! Matching observations against the catalog lives in [`matcher`].

pub mod matcher;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use globset::GlobMatcher;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use fleetsweep_exporters::Policy;
use fleetsweep_exporters::{CatalogInfo, FindingState};

use crate::diag::{self, Diagnostic};
use crate::glob::{Check, LazyGlob};
use crate::os::OsFamily;
use crate::probes::registry::probe;

/// The catalogs built into the binary (`configs/catalog/`), used when no
/// `--catalog` is given.
pub const BUILTIN: &[(&str, &str)] = &[
    (
        "builtin:kaspersky.yaml",
        include_str!("../../../configs/catalog/kaspersky.yaml"),
    ),
    (
        "builtin:ultraav.yaml",
        include_str!("../../../configs/catalog/ultraav.yaml"),
    ),
];

/// All loaded rules, merged.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub catalogs: Vec<CatalogInfo>,
    pub rules: Vec<Rule>,
}

/// A legal or documentary source behind a product's policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    #[serde(default)]
    pub id: Option<String>,
    pub title: String,
    #[serde(default)]
    pub url: Option<String>,
}

/// One product: the unit findings are reported in (`vendor/product`).
#[derive(Debug, Clone)]
pub struct Rule {
    /// `vendor/product`, stable across catalog versions.
    pub id: String,
    pub vendor_id: String,
    pub vendor: String,
    pub product: String,
    pub policy: Policy,
    pub effective: Option<jiff::civil::Date>,
    pub deadline: Option<jiff::civil::Date>,
    pub grace_days: u32,
    pub references: Vec<Reference>,
    /// OS family (`linux`, `windows`, `macos`) → guidance.
    pub remediation: BTreeMap<String, std::sync::Arc<str>>,
    /// Matches only evidence that no other product of the same vendor claimed.
    pub fallback: bool,
    /// Rule-id globs of products this one replaces (UltraAV → `kaspersky/*`).
    pub replaces: Vec<GlobMatcher>,
    pub replaces_text: Vec<String>,
    pub signatures: Vec<Signature>,
    /// Catalog name the rule came from.
    pub catalog: String,
}

/// The OS a signature applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SigOs {
    Linux,
    Windows,
    Macos,
    Any,
}

impl SigOs {
    /// The family of a per-OS section; None for `any`.
    pub fn family(self) -> Option<OsFamily> {
        match self {
            SigOs::Linux => Some(OsFamily::Linux),
            SigOs::Windows => Some(OsFamily::Windows),
            SigOs::Macos => Some(OsFamily::Macos),
            SigOs::Any => None,
        }
    }

    /// The signatures of this section apply to hosts of `family`.
    pub fn applies_to(self, family: OsFamily) -> bool {
        self == SigOs::Any || self.family() == Some(family)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SigOs::Linux => "linux",
            SigOs::Windows => "windows",
            SigOs::Macos => "macos",
            SigOs::Any => "any",
        }
    }
}

/// What a signature looks at. See the table in `docs/catalog.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SigKind {
    Package,
    PackageVendor,
    Service,
    ServiceExec,
    Process,
    ProcessPath,
    KernelModule,
    Path,
    DisplayName,
    Publisher,
    Driver,
    RegistryKey,
    Certificate,
    MsiProductCode,
    PkgReceipt,
    BundleId,
    TeamId,
    LaunchdLabel,
    SystemExtension,
    Kext,
    BrowserExtension,
}

impl SigKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SigKind::Package => "package",
            SigKind::PackageVendor => "package_vendor",
            SigKind::Service => "service",
            SigKind::ServiceExec => "service_exec",
            SigKind::Process => "process",
            SigKind::ProcessPath => "process_path",
            SigKind::KernelModule => "kernel_module",
            SigKind::Path => "path",
            SigKind::DisplayName => "display_name",
            SigKind::Publisher => "publisher",
            SigKind::Driver => "driver",
            SigKind::RegistryKey => "registry_key",
            SigKind::Certificate => "certificate",
            SigKind::MsiProductCode => "msi_product_code",
            SigKind::PkgReceipt => "pkg_receipt",
            SigKind::BundleId => "bundle_id",
            SigKind::TeamId => "team_id",
            SigKind::LaunchdLabel => "launchd_label",
            SigKind::SystemExtension => "system_extension",
            SigKind::Kext => "kext",
            SigKind::BrowserExtension => "browser_extension",
        }
    }

    /// The OS sections this kind may appear in.
    fn allowed_in(self, os: SigOs) -> bool {
        use SigKind::*;
        match os {
            SigOs::Linux => matches!(
                self,
                Package
                    | PackageVendor
                    | Service
                    | ServiceExec
                    | Process
                    | ProcessPath
                    | KernelModule
                    | Path
            ),
            SigOs::Windows => matches!(
                self,
                DisplayName
                    | Publisher
                    | Service
                    | Process
                    | Driver
                    | RegistryKey
                    | Certificate
                    | MsiProductCode
                    | Path
                    | BrowserExtension
            ),
            SigOs::Macos => matches!(
                self,
                PkgReceipt
                    | BundleId
                    | TeamId
                    | LaunchdLabel
                    | SystemExtension
                    | Kext
                    | Process
                    | ProcessPath
                    | Path
                    | BrowserExtension
            ),
            SigOs::Any => matches!(self, BrowserExtension),
        }
    }

    /// Windows names are case-insensitive.
    fn case_insensitive(self, os: SigOs) -> bool {
        os == SigOs::Windows
    }

    /// Path-like values: `*` does not cross `/`, `**` does.
    fn is_path(self) -> bool {
        matches!(
            self,
            SigKind::Path | SigKind::ServiceExec | SigKind::ProcessPath | SigKind::RegistryKey
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    High,
    Medium,
    Low,
}

/// One identifier of a product on one OS.
#[derive(Debug, Clone)]
pub struct Signature {
    pub os: SigOs,
    pub kind: SigKind,
    /// The glob as written.
    pub pattern: String,
    /// Compiled the first time an item holds the pattern's literal.
    pub matcher: LazyGlob,
    pub source: String,
    pub confidence: Confidence,
    pub note: Option<String>,
}

impl Signature {
    pub fn matches(&self, value: &str) -> bool {
        self.matcher.is_match(value)
    }
}

// ---- raw file format -------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    catalog: RawMeta,
    vendors: Vec<RawVendor>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMeta {
    name: Spanned<String>,
    version: String,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommon {
    policy: Option<Policy>,
    effective: Option<jiff::civil::Date>,
    deadline: Option<jiff::civil::Date>,
    grace_days: Option<u32>,
    references: Option<Vec<Reference>>,
    remediation: Option<RawRemediation>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemediation {
    linux: Option<String>,
    windows: Option<String>,
    macos: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVendor {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    defaults: RawCommon,
    products: Vec<RawProduct>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProduct {
    id: Spanned<String>,
    name: String,
    #[serde(default)]
    fallback: bool,
    #[serde(default)]
    replaces: Vec<Spanned<String>>,
    policy: Option<Policy>,
    effective: Option<jiff::civil::Date>,
    deadline: Option<jiff::civil::Date>,
    grace_days: Option<u32>,
    references: Option<Vec<Reference>>,
    remediation: Option<RawRemediation>,
    #[serde(default)]
    signatures: RawSignatures,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignatures {
    #[serde(default)]
    linux: Vec<RawSig>,
    #[serde(default)]
    windows: Vec<RawSig>,
    #[serde(default)]
    macos: Vec<RawSig>,
    #[serde(default)]
    any: Vec<RawSig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSig {
    package: Option<Spanned<String>>,
    package_vendor: Option<Spanned<String>>,
    service: Option<Spanned<String>>,
    service_exec: Option<Spanned<String>>,
    process: Option<Spanned<String>>,
    process_path: Option<Spanned<String>>,
    kernel_module: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    display_name: Option<Spanned<String>>,
    publisher: Option<Spanned<String>>,
    driver: Option<Spanned<String>>,
    registry_key: Option<Spanned<String>>,
    certificate: Option<Spanned<String>>,
    msi_product_code: Option<Spanned<String>>,
    pkg_receipt: Option<Spanned<String>>,
    bundle_id: Option<Spanned<String>>,
    team_id: Option<Spanned<String>>,
    launchd_label: Option<Spanned<String>>,
    system_extension: Option<Spanned<String>>,
    kext: Option<Spanned<String>>,
    browser_extension: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    #[serde(default)]
    confidence: Option<Confidence>,
    #[serde(default)]
    note: Option<String>,
}

impl RawSig {
    fn kinds(&self) -> Vec<(SigKind, &Spanned<String>)> {
        let all = [
            (SigKind::Package, &self.package),
            (SigKind::PackageVendor, &self.package_vendor),
            (SigKind::Service, &self.service),
            (SigKind::ServiceExec, &self.service_exec),
            (SigKind::Process, &self.process),
            (SigKind::ProcessPath, &self.process_path),
            (SigKind::KernelModule, &self.kernel_module),
            (SigKind::Path, &self.path),
            (SigKind::DisplayName, &self.display_name),
            (SigKind::Publisher, &self.publisher),
            (SigKind::Driver, &self.driver),
            (SigKind::RegistryKey, &self.registry_key),
            (SigKind::Certificate, &self.certificate),
            (SigKind::MsiProductCode, &self.msi_product_code),
            (SigKind::PkgReceipt, &self.pkg_receipt),
            (SigKind::BundleId, &self.bundle_id),
            (SigKind::TeamId, &self.team_id),
            (SigKind::LaunchdLabel, &self.launchd_label),
            (SigKind::SystemExtension, &self.system_extension),
            (SigKind::Kext, &self.kext),
            (SigKind::BrowserExtension, &self.browser_extension),
        ];
        all.into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
            .collect()
    }
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl Catalog {
    /// The built-in catalogs.
    pub fn builtin() -> Result<Catalog, Diagnostic> {
        let mut c = Catalog::default();
        for (name, text) in BUILTIN {
            // Checked, not compiled: the tests compile every built-in glob
            // (`catalog check` does too), and a sweep compiles the few an
            // item needs.
            c.add(Path::new(name), text, Check::Parse)?;
        }
        Ok(c)
    }

    /// Builds every signature's matcher now (`catalog check`; a sweep builds
    /// them as items need them). The error names the rule and the pattern.
    pub fn compile_all(&self) -> Result<(), String> {
        for r in &self.rules {
            for s in &r.signatures {
                s.matcher
                    .compiled()
                    .map_err(|e| format!("rule `{}`: {e}", r.id))?;
            }
        }
        Ok(())
    }

    /// Loads and merges catalog files (the built-in ones when `files` is empty).
    pub fn load(files: &[PathBuf]) -> Result<Catalog, Diagnostic> {
        if files.is_empty() {
            return Catalog::builtin();
        }
        let mut c = Catalog::default();
        for f in files {
            let text = diag::read_file(f)?;
            c.add_text(f, &text)?;
        }
        Ok(c)
    }

    /// Parses one catalog file and merges it in; every glob is compiled once
    /// to find errors now.
    pub fn add_text(&mut self, file: &Path, text: &str) -> Result<(), Diagnostic> {
        self.add(file, text, Check::Compile)
    }

    fn add(&mut self, file: &Path, text: &str, check: Check) -> Result<(), Diagnostic> {
        if diag::is_blank_yaml(text) {
            return Err(Diagnostic::whole_file(file, "the catalog is empty"));
        }
        let raw: RawFile = diag::parse_yaml(file, text)?;
        let cat_name = raw.catalog.name.value.clone();
        if !valid_id(&cat_name) {
            return Err(Diagnostic::at(
                file,
                raw.catalog.name.referenced,
                format!("catalog name `{cat_name}` must use only a-z, 0-9 and `-`"),
            ));
        }
        if self.catalogs.iter().any(|c| c.name == cat_name) {
            return Err(Diagnostic::at(
                file,
                raw.catalog.name.referenced,
                format!(
                    "a catalog named `{cat_name}` is already loaded: catalog names must be unique"
                ),
            ));
        }
        let _ = raw.catalog.description;
        let mut added = 0usize;
        for v in raw.vendors {
            if !valid_id(&v.id.value) {
                return Err(Diagnostic::at(
                    file,
                    v.id.referenced,
                    format!("vendor id `{}` must use only a-z, 0-9 and `-`", v.id.value),
                ));
            }
            for p in v.products {
                let rule =
                    build_rule(file, &cat_name, &v.id.value, &v.name, &v.defaults, p, check)?;
                if let Some(prev) = self.rules.iter().find(|r| r.id == rule.id) {
                    return Err(Diagnostic::whole_file(
                        file,
                        format!(
                            "rule `{}` is defined twice (also in catalog `{}`): rule ids must be unique",
                            rule.id, prev.catalog
                        ),
                    ));
                }
                self.rules.push(rule);
                added += 1;
            }
        }
        self.catalogs.push(CatalogInfo {
            name: cat_name,
            version: raw.catalog.version,
            rules: added,
        });
        Ok(())
    }

    pub fn rule(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Directories the probe of `family` lists (to depth 3) so that `path`
    /// signatures can match: the fixed prefix of each of the family's path
    /// globs (a glob lists its parent directory), deep enough for the probe's
    /// [`RootDepth`](crate::probes::registry::RootDepth), minus roots a shallower root already lists. Empty for a
    /// probe that takes no roots.
    ///
    /// ```
    /// use fleetsweep::{catalog::Catalog, os::OsFamily};
    /// let roots = Catalog::builtin().unwrap().path_roots(OsFamily::Linux);
    /// assert!(roots.contains(&"/opt/kaspersky".to_string()));
    /// ```
    pub fn path_roots(&self, family: OsFamily) -> Vec<String> {
        let Some(depth) = probe(family).root_depth else {
            return Vec::new();
        };
        let mut roots: Vec<String> = Vec::new();
        for sig in self.rules.iter().flat_map(|r| &r.signatures) {
            if sig.os.family() != Some(family) || sig.kind != SigKind::Path {
                continue;
            }
            let p = sig.pattern.as_str();
            let (root, min_depth) = match p.find(['*', '?', '[', '{']) {
                // Cut back to the last complete component.
                Some(i) => match p[..i].rfind('/') {
                    Some(j) => (&p[..j], depth.glob),
                    None => continue,
                },
                None => (p.trim_end_matches('/'), depth.exact),
            };
            // Never `/` itself, nor a relative path.
            if root.starts_with('/') && root.matches('/').count() >= min_depth.max(1) {
                roots.push(root.to_string());
            }
        }
        roots.sort();
        roots.dedup();
        let all = roots.clone();
        roots.retain(|r| {
            !all.iter().any(|a| {
                a != r && r.starts_with(&format!("{a}/")) && r[a.len()..].matches('/').count() <= 2
            })
        });
        roots
    }
}

fn build_rule(
    file: &Path,
    catalog: &str,
    vendor_id: &str,
    vendor_name: &str,
    defaults: &RawCommon,
    p: RawProduct,
    check: Check,
) -> Result<Rule, Diagnostic> {
    if !valid_id(&p.id.value) {
        return Err(Diagnostic::at(
            file,
            p.id.referenced,
            format!("product id `{}` must use only a-z, 0-9 and `-`", p.id.value),
        ));
    }
    let policy = p.policy.or(defaults.policy).ok_or_else(|| {
        Diagnostic::at(
            file,
            p.id.referenced,
            format!(
                "product `{}` has no policy: set `policy: ban` or `policy: watch` on it or in the vendor's defaults",
                p.id.value
            ),
        )
    })?;
    let mut remediation = BTreeMap::new();
    for r in [&defaults.remediation, &p.remediation]
        .into_iter()
        .flatten()
    {
        for (os, text) in [
            ("linux", &r.linux),
            ("windows", &r.windows),
            ("macos", &r.macos),
        ] {
            if let Some(t) = text {
                remediation.insert(os.to_string(), t.trim().into());
            }
        }
    }
    let mut replaces = Vec::new();
    let mut replaces_text = Vec::new();
    for r in &p.replaces {
        replaces.push(
            crate::glob::compile(&r.value, crate::glob::Options::default())
                .map_err(|m| Diagnostic::at(file, r.referenced, m))?,
        );
        replaces_text.push(r.value.clone());
    }
    let mut signatures = Vec::new();
    let sections = [
        (SigOs::Linux, &p.signatures.linux),
        (SigOs::Windows, &p.signatures.windows),
        (SigOs::Macos, &p.signatures.macos),
        (SigOs::Any, &p.signatures.any),
    ];
    for (os, sigs) in sections {
        for s in sigs {
            let kinds = s.kinds();
            let (kind, value) = match kinds.as_slice() {
                [one] => *one,
                [] => {
                    let at = s
                        .source
                        .as_ref()
                        .map(|x| x.referenced)
                        .unwrap_or(p.id.referenced);
                    return Err(Diagnostic::at(
                        file,
                        at,
                        format!(
                            "signature of `{vendor_id}/{}` has no kind: give exactly one of package, service, process, path, ... (see docs/catalog.md)",
                            p.id.value
                        ),
                    ));
                }
                [_, (k2, v2), ..] => {
                    return Err(Diagnostic::at(
                        file,
                        v2.referenced,
                        format!(
                            "a signature has exactly one kind, but this one also has `{}`: split it into two signatures",
                            k2.as_str()
                        ),
                    ));
                }
            };
            if !kind.allowed_in(os) {
                return Err(Diagnostic::at(
                    file,
                    value.referenced,
                    format!(
                        "`{}` signatures are not supported under `{}`",
                        kind.as_str(),
                        os.as_str()
                    ),
                ));
            }
            let source = match &s.source {
                Some(src) if !src.value.trim().is_empty() => src.value.trim().to_string(),
                _ => {
                    return Err(Diagnostic::at(
                        file,
                        value.referenced,
                        format!(
                        "signature `{}: {}` has no `source`: say where the identifier comes from",
                        kind.as_str(),
                        value.value
                    ),
                    ))
                }
            };
            if value.value.trim().is_empty() {
                return Err(Diagnostic::at(
                    file,
                    value.referenced,
                    "empty signature value",
                ));
            }
            let opts = crate::glob::Options {
                case_insensitive: kind.case_insensitive(os),
                path: kind.is_path(),
            };
            let matcher = LazyGlob::new(&value.value, opts, check)
                .map_err(|m| Diagnostic::at(file, value.referenced, m))?;
            signatures.push(Signature {
                os,
                kind,
                pattern: value.value.clone(),
                matcher,
                source,
                confidence: s.confidence.unwrap_or(Confidence::High),
                note: s.note.clone(),
            });
        }
    }
    Ok(Rule {
        id: format!("{vendor_id}/{}", p.id.value),
        vendor_id: vendor_id.to_string(),
        vendor: vendor_name.to_string(),
        product: p.name,
        policy,
        effective: p.effective.or(defaults.effective),
        deadline: p.deadline.or(defaults.deadline),
        grace_days: p.grace_days.or(defaults.grace_days).unwrap_or(30),
        references: p
            .references
            .or_else(|| defaults.references.clone())
            .unwrap_or_default(),
        remediation,
        fallback: p.fallback,
        replaces,
        replaces_text,
        signatures,
        catalog: catalog.to_string(),
    })
}

/// What a match of `kind` says about how present the product is, before the
/// observation's own state (a removed package, a stopped service) is applied.
pub fn kind_state(kind: SigKind) -> FindingState {
    match kind {
        SigKind::Path | SigKind::RegistryKey | SigKind::Certificate => FindingState::Remnants,
        _ => FindingState::Installed,
    }
}

#[cfg(test)]
mod tests;
