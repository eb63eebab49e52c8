//! Reading Ansible inventories (INI and YAML) into flat hosts: each with the
//! variables that apply to it and the groups it is in. Variables resolve as
//! Ansible does: `all` → parent groups → child groups → host.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use crate::diag::Diagnostic;

/// Which inventory dialect a file is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Native,
    AnsibleYaml,
    AnsibleIni,
}

/// Guesses the dialect from the text: INI starts with a `[section]` or a bare
/// host line; Ansible YAML has groups with `hosts:`/`children:` at the top level
/// instead of fleetsweep's `defaults:`/`groups:`/`hosts:`.
pub fn detect(text: &str) -> Dialect {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && l != &"---");
    let Some(first) = first else {
        return Dialect::Native;
    };
    if first.starts_with('[') {
        return Dialect::AnsibleIni;
    }
    let native = ["defaults", "groups", "hosts"];
    // A top-level `defaults:`/`groups:`/`hosts:` key (at column 0) settles it
    // without reading the whole file twice: a 60 MB inventory would otherwise
    // be parsed untyped here first, doubling time and peak memory.
    let native_key_at_top = text.lines().any(|l| {
        let l = l.trim_start_matches('\u{feff}');
        native.iter().any(|k| {
            l.strip_prefix(k)
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
    });
    if native_key_at_top {
        return Dialect::Native;
    }
    let Ok(Value::Object(top)) =
        serde_saphyr::from_str_with_options::<Value>(text, crate::diag::yaml_options())
    else {
        // Not a YAML mapping: bare INI host lines (`web-01 ansible_host=...`),
        // or YAML with an error, which the dialect its first key names reports
        // (rather than a fleetsweep "unknown field `all`" for an Ansible file);
        // a list or a flow mapping is fleetsweep's to explain.
        let key = first.split(':').next().unwrap_or_default().trim();
        return if first.contains('=') || !first.contains(':') {
            Dialect::AnsibleIni
        } else if native.contains(&key) || first.starts_with('-') || first.starts_with('{') {
            Dialect::Native
        } else {
            Dialect::AnsibleYaml
        };
    };
    if top.keys().any(|k| native.contains(&k.as_str())) {
        return Dialect::Native;
    }
    let looks_ansible = top.contains_key("_meta")
        || top.values().any(|v| {
            v.as_object().is_some_and(|g| {
                g.contains_key("hosts") || g.contains_key("children") || g.contains_key("vars")
            })
        });
    if looks_ansible {
        Dialect::AnsibleYaml
    } else {
        Dialect::Native
    }
}

/// A flattened Ansible host: the variables that apply to it, and its groups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnsibleHost {
    pub name: String,
    pub vars: BTreeMap<String, String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Default)]
struct Group {
    hosts: Vec<(String, BTreeMap<String, String>)>,
    children: Vec<String>,
    vars: BTreeMap<String, String>,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn vars_of(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| scalar(v).map(|s| (k.clone(), s)))
                .collect()
        })
        .unwrap_or_default()
}

/// Parses an Ansible YAML inventory, or the JSON that `ansible-inventory
/// --list` prints (and inventory scripts return): there, `hosts` and
/// `children` are lists of names, every group is a top-level key, and host
/// variables sit under `_meta.hostvars`.
pub fn parse_yaml(file: &Path, text: &str) -> Result<Vec<AnsibleHost>, Diagnostic> {
    let top: Value = crate::diag::parse_yaml(file, text)?;
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    fn walk(name: &str, v: &Value, groups: &mut BTreeMap<String, Group>, depth: usize) {
        if depth > 32 {
            return;
        }
        let mut g = Group {
            vars: vars_of(v.get("vars")),
            ..Group::default()
        };
        match v.get("hosts") {
            Some(Value::Object(hosts)) => {
                for (h, hv) in hosts {
                    g.hosts.push((h.clone(), vars_of(Some(hv))));
                }
            }
            // `ansible-inventory --list`: names only.
            Some(Value::Array(hosts)) => {
                for h in hosts.iter().filter_map(scalar) {
                    g.hosts.push((h, BTreeMap::new()));
                }
            }
            _ => {}
        }
        match v.get("children") {
            Some(Value::Object(children)) => {
                for (c, cv) in children {
                    g.children.push(c.clone());
                    walk(c, cv, groups, depth + 1);
                }
            }
            // `ansible-inventory --list`: the children are top-level keys of
            // their own, walked there.
            Some(Value::Array(children)) => {
                g.children.extend(children.iter().filter_map(scalar));
            }
            _ => {}
        }
        let e = groups.entry(name.to_string()).or_default();
        e.hosts.extend(g.hosts);
        e.children.extend(g.children);
        e.vars.extend(g.vars);
    }
    let Some(top) = top.as_object() else {
        return Err(Diagnostic::whole_file(
            file,
            "an Ansible YAML inventory is a mapping of groups",
        ));
    };
    for (name, v) in top {
        if name != "_meta" {
            walk(name, v, &mut groups, 0);
        }
    }
    // `_meta.hostvars`: each host's own variables (group variables already
    // folded in unless `--export` kept them on the groups).
    if let Some(hostvars) = top
        .get("_meta")
        .and_then(|m| m.get("hostvars"))
        .and_then(Value::as_object)
    {
        for g in groups.values_mut() {
            for (h, vars) in &mut g.hosts {
                if let Some(hv) = hostvars.get(h.as_str()) {
                    let mut own = vars_of(Some(hv));
                    own.append(vars);
                    *vars = own;
                }
            }
        }
    }
    Ok(flatten(groups))
}

/// Parses an Ansible INI inventory.
pub fn parse_ini(file: &Path, text: &str) -> Result<Vec<AnsibleHost>, Diagnostic> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut section = ("ungrouped".to_string(), "hosts");
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lineno = i as u64 + 1;
        let err = |col: usize, msg: String| Diagnostic {
            file: file.to_path_buf(),
            line: lineno,
            column: col as u64 + 1,
            message: msg,
        };
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let Some(inner) = inner.strip_suffix(']') else {
                return Err(err(
                    0,
                    format!("section header `{line}` lacks its closing `]`"),
                ));
            };
            let (name, kind) = match inner.split_once(':') {
                Some((n, "vars")) => (n, "vars"),
                Some((n, "children")) => (n, "children"),
                Some((_, other)) => {
                    return Err(err(
                        0,
                        format!("unknown section suffix `:{other}`: use `:vars` or `:children`"),
                    ))
                }
                None => (inner, "hosts"),
            };
            if name.trim().is_empty() {
                return Err(err(1, "empty group name".into()));
            }
            section = (name.trim().to_string(), kind);
            groups.entry(section.0.clone()).or_default();
            continue;
        }
        let g = groups.entry(section.0.clone()).or_default();
        match section.1 {
            "vars" => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(err(
                        0,
                        format!("expected `name=value` in [{}:vars]", section.0),
                    ));
                };
                g.vars.insert(k.trim().to_string(), unquote(v.trim()));
            }
            "children" => g.children.push(
                line.split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ),
            _ => {
                let words = split_quoted(line);
                let mut words = words.iter().map(String::as_str);
                let host = words.next().unwrap_or_default().to_string();
                let mut vars = BTreeMap::new();
                for w in words {
                    let Some((k, v)) = w.split_once('=') else {
                        let col = raw.find(w).unwrap_or(0);
                        return Err(err(
                            col,
                            format!("expected `name=value` after the host name, found `{w}`"),
                        ));
                    };
                    vars.insert(k.to_string(), unquote(v));
                }
                if host.contains('[') {
                    let col = raw.find('[').unwrap_or(0);
                    return Err(err(col, format!("host ranges like `{host}` are not supported: list the hosts one per line")));
                }
                g.hosts.push((host, vars));
            }
        }
    }
    Ok(flatten(groups))
}

/// Splits on whitespace outside single or double quotes (quotes are kept, and
/// removed later by [`unquote`] on the value).
fn split_quoted(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (_, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|x| x.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

/// Resolves group nesting into per-host variables and group lists.
fn flatten(groups: BTreeMap<String, Group>) -> Vec<AnsibleHost> {
    // Parents of each group (a group may have several).
    let mut parents: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, g) in &groups {
        for c in &g.children {
            parents.entry(c.as_str()).or_default().push(name.as_str());
        }
    }
    // Ancestors, outermost first, `all` before everything.
    // A group is marked before its parents are walked, so a cycle of groups
    // (each a child of the other) ends at once instead of walking every path.
    fn chain<'a>(
        g: &'a str,
        parents: &BTreeMap<&'a str, Vec<&'a str>>,
        out: &mut Vec<&'a str>,
        seen: &mut HashSet<&'a str>,
        depth: usize,
    ) {
        if depth > 32 || !seen.insert(g) {
            return;
        }
        if let Some(ps) = parents.get(g) {
            for p in ps {
                chain(p, parents, out, seen, depth + 1);
            }
        }
        out.push(g);
    }
    let mut hosts: Vec<AnsibleHost> = Vec::new();
    // Host name → index in `hosts`: a lookup per group entry stays O(1) for
    // inventories of 100,000 hosts.
    let mut index: HashMap<String, usize> = HashMap::new();
    for (gname, g) in &groups {
        let mut lineage = Vec::new();
        chain(gname, &parents, &mut lineage, &mut HashSet::new(), 0);
        for (h, hvars) in &g.hosts {
            let idx = *index.entry(h.clone()).or_insert_with(|| {
                hosts.push(AnsibleHost {
                    name: h.clone(),
                    ..AnsibleHost::default()
                });
                hosts.len() - 1
            });
            let host = &mut hosts[idx];
            let mut vars = groups
                .get("all")
                .map(|a| a.vars.clone())
                .unwrap_or_default();
            for l in &lineage {
                if let Some(gg) = groups.get(*l) {
                    vars.extend(gg.vars.clone());
                }
                if *l != "all" && *l != "ungrouped" && !host.groups.iter().any(|x| x == l) {
                    host.groups.push(l.to_string());
                }
            }
            // Variables from another group the host is in stay; this group's win.
            for (k, v) in vars {
                host.vars.insert(k, v);
            }
            host.vars.extend(hvars.clone());
        }
    }
    hosts
}
