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

use std::collections::{BTreeMap, HashSet};

use fleetsweep_exporters::{Evidence, Finding, FindingState, Status};

use super::{Catalog, Rule, SigKind, SigOs};
use crate::probes::{Observations, PackageState};

/// One thing seen on the host, in the form signatures are matched against.
struct Item {
    /// (kind, value) pairs this item can be matched on.
    keys: Vec<(SigKind, String)>,
    /// Filesystem path the item lives at (for claims by install root).
    path: Option<String>,
    /// Whether the item shows the product installed or only remnants.
    state: FindingState,
    evidence: Evidence,
    /// Version to report, for packages.
    version: Option<String>,
    /// Path entries can be claimed as ancestors of claimed paths too.
    is_path_entry: bool,
}

fn items(obs: &Observations) -> Vec<Item> {
    let mut out = Vec::new();
    for p in &obs.packages {
        let state = match p.state {
            PackageState::Installed | PackageState::Partial => FindingState::Installed,
            PackageState::ConfigFiles => FindingState::Remnants,
            PackageState::NotInstalled => continue,
        };
        let mut keys = vec![(SigKind::Package, p.name.clone())];
        for v in [&p.vendor, &p.maintainer].into_iter().flatten() {
            keys.push((SigKind::PackageVendor, v.clone()));
        }
        let state_text = match p.state {
            PackageState::Installed => "",
            PackageState::Partial => " (partly installed)",
            PackageState::ConfigFiles => " (removed, config files remain)",
            PackageState::NotInstalled => "",
        };
        let value = match &p.version {
            Some(v) => format!("{} {}{}", p.name, v, state_text),
            None => format!("{}{}", p.name, state_text),
        };
        out.push(Item {
            keys,
            path: None,
            state,
            evidence: Evidence {
                kind: "package".into(),
                source: Some(p.manager.as_str().into()),
                value,
            },
            version: p.version.clone(),
            is_path_entry: false,
        });
    }
    for s in &obs.services {
        let mut keys = vec![(SigKind::Service, s.name.clone())];
        if let Some(e) = &s.exec {
            keys.push((SigKind::ServiceExec, e.clone()));
        }
        let running = s.active == Some(true);
        let detail = match (s.active, s.unit_state.as_deref()) {
            (Some(true), _) => "running".to_string(),
            (Some(false), Some(u)) => format!("{u}, not running"),
            (None, Some("file")) => "unit file; systemd not running".to_string(),
            (None, Some(u)) => format!("unit file, {u}"),
            (_, None) => "not running".to_string(),
        };
        out.push(Item {
            keys,
            path: s.exec.clone(),
            state: if running {
                FindingState::Installed
            } else {
                FindingState::Remnants
            },
            evidence: Evidence {
                kind: "service".into(),
                source: Some("systemd".into()),
                value: format!("{}.service ({detail})", s.name),
            },
            version: None,
            is_path_entry: false,
        });
    }
    let mut seen_proc = HashSet::new();
    for p in &obs.processes {
        let argv0 = p.cmdline.split(' ').next().unwrap_or_default().to_string();
        let exe = p.exe.clone().filter(|e| !e.is_empty());
        let mut keys = vec![(SigKind::Process, p.name.clone())];
        if let Some(e) = &exe {
            keys.push((SigKind::ProcessPath, e.clone()));
        }
        if argv0.starts_with('/') && Some(&argv0) != exe.as_ref() {
            keys.push((SigKind::ProcessPath, argv0.clone()));
        }
        // The pid changes every sweep; evidence without it diffs cleanly.
        let value = if p.cmdline.is_empty() {
            p.name.clone()
        } else {
            format!("{}: {}", p.name, p.cmdline)
        };
        if !seen_proc.insert(value.clone()) {
            continue;
        }
        let path = if argv0.starts_with('/') {
            Some(argv0)
        } else {
            exe
        };
        out.push(Item {
            keys,
            path,
            state: FindingState::Installed,
            evidence: Evidence {
                kind: "process".into(),
                source: None,
                value,
            },
            version: None,
            is_path_entry: false,
        });
    }
    for m in &obs.kernel_modules {
        out.push(Item {
            keys: vec![(SigKind::KernelModule, m.clone())],
            path: None,
            state: FindingState::Installed,
            evidence: Evidence {
                kind: "kernel_module".into(),
                source: None,
                value: m.clone(),
            },
            version: None,
            is_path_entry: false,
        });
    }
    for p in &obs.paths {
        out.push(Item {
            keys: vec![(SigKind::Path, p.path.clone())],
            path: Some(p.path.clone()),
            state: FindingState::Remnants,
            evidence: Evidence {
                kind: "path".into(),
                source: None,
                value: p.path.clone(),
            },
            version: None,
            is_path_entry: true,
        });
    }
    out
}

fn under(path: &str, root: &str) -> bool {
    path.len() > root.len()
        && path.starts_with(root)
        && path.as_bytes().get(root.len()) == Some(&b'/')
}

/// Signature OS sections that apply to a host of `family`.
fn applies(os: SigOs, family: &str) -> bool {
    os == SigOs::Any || os.as_str() == family
}

fn rule_matches(rule: &Rule, item: &Item, family: &str) -> bool {
    rule.signatures.iter().any(|s| {
        applies(s.os, family) && item.keys.iter().any(|(k, v)| *k == s.kind && s.matches(v))
    })
}

/// Matches one host's observations. `family` is the host's OS family
/// (`linux`, `windows`, `macos`); `now` becomes `first_seen` of every finding
/// (the state store replaces it with the real first sighting).
pub fn match_host(
    catalog: &Catalog,
    obs: &Observations,
    family: &str,
    now: jiff::Timestamp,
) -> Vec<Finding> {
    let items = items(obs);
    // rule index → item indexes
    let mut hits: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    // vendor id → claimed item indexes / claimed install paths
    let mut claimed: BTreeMap<&str, HashSet<usize>> = BTreeMap::new();
    let mut claimed_paths: Vec<(usize, String)> = Vec::new(); // (rule index, path)

    // Pass 1: specific products.
    for (ri, rule) in catalog
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| !r.fallback)
    {
        for (ii, item) in items.iter().enumerate() {
            if rule_matches(rule, item, family) {
                hits.entry(ri).or_default().push(ii);
                claimed
                    .entry(rule.vendor_id.as_str())
                    .or_default()
                    .insert(ii);
                if item.is_path_entry {
                    if let Some(p) = &item.path {
                        claimed_paths.push((ri, p.clone()));
                    }
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
        for (ri, root) in &claimed_paths {
            if under(p, root) {
                let rule = &catalog.rules[*ri];
                let list = hits.entry(*ri).or_default();
                if !list.contains(&ii) {
                    list.push(ii);
                }
                claimed
                    .entry(rule.vendor_id.as_str())
                    .or_default()
                    .insert(ii);
            }
        }
    }
    // Pass 2: fallback products take what is left of their vendor.
    for (ri, rule) in catalog.rules.iter().enumerate().filter(|(_, r)| r.fallback) {
        let vendor_claims = claimed.get(rule.vendor_id.as_str());
        let vendor_found = hits
            .keys()
            .any(|i| !catalog.rules[*i].fallback && catalog.rules[*i].vendor_id == rule.vendor_id);
        for (ii, item) in items.iter().enumerate() {
            if vendor_claims.is_some_and(|c| c.contains(&ii)) {
                continue;
            }
            if vendor_found && item.is_path_entry {
                continue;
            }
            if let Some(p) = &item.path {
                let related = claimed_paths.iter().any(|(cri, root)| {
                    catalog.rules[*cri].vendor_id == rule.vendor_id
                        && (p == root || under(p, root) || under(root, p))
                });
                if related {
                    continue;
                }
            }
            if rule_matches(rule, item, family) {
                hits.entry(ri).or_default().push(ii);
            }
        }
    }

    let mut findings: Vec<Finding> = hits
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(ri, idxs)| {
            let rule = &catalog.rules[ri];
            let state = if idxs
                .iter()
                .any(|i| items[*i].state == FindingState::Installed)
            {
                FindingState::Installed
            } else {
                FindingState::Remnants
            };
            let version = idxs
                .iter()
                .filter(|i| items[**i].state == FindingState::Installed)
                .chain(idxs.iter())
                .find_map(|i| items[*i].version.clone());
            let mut evidence: Vec<Evidence> =
                idxs.iter().map(|i| items[*i].evidence.clone()).collect();
            evidence.sort();
            evidence.dedup();
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
                effective: rule.effective,
                deadline: rule.deadline,
                evidence,
                remediation: rule.remediation.get(family).cloned(),
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
    findings.sort_by(|a, b| a.rule.cmp(&b.rule));
    findings
}

#[cfg(test)]
mod tests;
