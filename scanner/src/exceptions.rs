//! The exceptions file (docs/exceptions.md): approved, expiring acceptances of findings.
//!
//! An exception is a decision somebody signed (`approver`) for a reason, with
//! an end date. It must stop applying on its own when that date passes, so a
//! forgotten exception can never hide a product for ever; expired and unused
//! entries are reported so the file gets cleaned up.
//!
//! ```yaml
//! exceptions:
//!   - hosts: "lab-*"                 # glob on the inventory name (or labels: {site: lab})
//!     rule: kaspersky/kesl           # rule id, or a glob such as "kaspersky/*"
//!     reason: malware analysis lab, isolated VLAN
//!     approver: ciso@example.com
//!     expires: 2027-03-31            # last day it applies
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use globset::GlobMatcher;
use serde::Deserialize;
use serde_saphyr::Spanned;

use fleetsweep_exporters::{ExceptionRef, ExceptionUse, Labels};

use crate::diag::{self, Diagnostic};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    exceptions: Vec<Spanned<RawEntry>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    hosts: Option<Spanned<String>>,
    labels: Option<BTreeMap<String, String>>,
    rule: Spanned<String>,
    reason: Option<Spanned<String>>,
    approver: Option<Spanned<String>>,
    expires: Option<jiff::civil::Date>,
}

/// One validated exception entry.
#[derive(Debug, Clone)]
pub struct Exception {
    /// `file:line` of the entry, so a report points at the line to edit.
    pub source: String,
    /// The `hosts:` glob as written (empty when only labels select hosts).
    pub hosts_text: String,
    hosts: Option<GlobMatcher>,
    /// Every label must be equal on the host.
    pub labels: BTreeMap<String, String>,
    pub rule_text: String,
    rule: GlobMatcher,
    pub reason: String,
    pub approver: String,
    /// Last day on which the exception applies (UTC).
    pub expires: jiff::civil::Date,
}

impl Exception {
    /// True when the entry selects this host and rule (expiry aside).
    pub fn covers(&self, host: &str, labels: &Labels, rule: &str) -> bool {
        self.hosts.as_ref().is_none_or(|g| g.is_match(host))
            && self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.rule.is_match(rule)
    }

    /// Active on `today` (the expiry day itself included).
    pub fn active_on(&self, today: jiff::civil::Date) -> bool {
        today <= self.expires
    }

    /// The reference carried on an excepted finding.
    pub fn reference(&self) -> ExceptionRef {
        ExceptionRef {
            source: self.source.clone(),
            reason: self.reason.clone(),
            approver: self.approver.clone(),
            expires: self.expires,
        }
    }

    /// How this entry is listed in `report.exceptions`.
    pub fn usage(&self, findings: usize) -> ExceptionUse {
        let mut hosts = Vec::new();
        if !self.hosts_text.is_empty() {
            hosts.push(self.hosts_text.clone());
        }
        if !self.labels.is_empty() {
            hosts.push(labels_text(&self.labels));
        }
        let hosts = hosts.join(" ");
        ExceptionUse {
            source: self.source.clone(),
            hosts,
            rule: self.rule_text.clone(),
            reason: self.reason.clone(),
            approver: self.approver.clone(),
            expires: self.expires,
            findings,
        }
    }
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("labels {}", parts.join(","))
}

/// The entries of one exceptions file, in file order (the first match wins).
#[derive(Debug, Clone, Default)]
pub struct Exceptions {
    pub entries: Vec<Exception>,
}

impl Exceptions {
    /// Reads and validates an exceptions file; errors name file:line:column.
    pub fn load(path: &Path) -> Result<Exceptions, Diagnostic> {
        let text = diag::read_file(path)?;
        Exceptions::parse(path, &text)
    }

    /// Validates the text of an exceptions file named `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Exceptions, Diagnostic> {
        if diag::is_blank_yaml(text) {
            return Err(Diagnostic::whole_file(
                path,
                "the exceptions file is empty (write `exceptions: []` for none)",
            ));
        }
        let raw: RawFile = diag::parse_yaml(path, text)?;
        let mut entries = Vec::with_capacity(raw.exceptions.len());
        for e in raw.exceptions {
            let at = e.referenced;
            let e = e.value;
            let hosts = match &e.hosts {
                Some(h) if h.value.trim().is_empty() => {
                    return Err(Diagnostic::at(
                        path,
                        h.referenced,
                        "`hosts` is empty: give a glob on inventory names such as \"lab-*\"",
                    ))
                }
                Some(h) => Some(glob(path, h)?),
                None => None,
            };
            let labels = e.labels.unwrap_or_default();
            if hosts.is_none() && labels.is_empty() {
                return Err(Diagnostic::at(
                    path,
                    at,
                    "an exception needs `hosts:` (a glob on inventory names) or `labels:` (e.g. {site: lab})",
                ));
            }
            if e.rule.value.trim().is_empty() {
                return Err(Diagnostic::at(
                    path,
                    e.rule.referenced,
                    "`rule` is empty: give a rule id such as kaspersky/kesl, or a glob such as \"kaspersky/*\"",
                ));
            }
            let rule = glob(path, &e.rule)?;
            let missing = |field: &str| {
                Diagnostic::at(
                    path,
                    at,
                    format!("exception without `{field}`: every exception says why (`reason`), who approved it (`approver`) and when it ends (`expires`)"),
                )
            };
            let reason = e.reason.ok_or_else(|| missing("reason"))?;
            let approver = e.approver.ok_or_else(|| missing("approver"))?;
            let expires = e.expires.ok_or_else(|| missing("expires"))?;
            for (field, v) in [("reason", &reason), ("approver", &approver)] {
                if v.value.trim().is_empty() {
                    return Err(Diagnostic::at(
                        path,
                        v.referenced,
                        format!("`{field}` is empty: every exception says why and who approved it"),
                    ));
                }
            }
            entries.push(Exception {
                source: format!("{}:{}", path.display(), at.line()),
                hosts_text: e.hosts.map(|h| h.value).unwrap_or_default(),
                hosts,
                labels,
                rule_text: e.rule.value,
                rule,
                reason: reason.value,
                approver: approver.value,
                expires,
            });
        }
        Ok(Exceptions { entries })
    }

    /// Index of the first active entry covering (host, rule) on `today`.
    pub fn active_match(
        &self,
        host: &str,
        labels: &Labels,
        rule: &str,
        today: jiff::civil::Date,
    ) -> Option<usize> {
        self.entries
            .iter()
            .position(|e| e.active_on(today) && e.covers(host, labels, rule))
    }

    /// Indexes of the expired entries covering (host, rule) on `today`.
    pub fn expired_matches(
        &self,
        host: &str,
        labels: &Labels,
        rule: &str,
        today: jiff::civil::Date,
    ) -> Vec<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.active_on(today) && e.covers(host, labels, rule))
            .map(|(i, _)| i)
            .collect()
    }
}

fn glob(path: &Path, s: &Spanned<String>) -> Result<GlobMatcher, Diagnostic> {
    crate::glob::compile(&s.value, crate::glob::Options::default())
        .map_err(|why| Diagnostic::at(path, s.referenced, why))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/exceptions")
    }

    fn date(s: &str) -> jiff::civil::Date {
        s.parse().unwrap()
    }

    #[test]
    fn invalid_exception_files_name_file_line_and_column() {
        #[rustfmt::skip]
        let cases = [
            ("invalid-unknown-key.yaml", "invalid-unknown-key.yaml:4:5: unknown field `reson`, expected one of hosts, labels, rule, reason, approver, expires"),
            ("invalid-no-reason.yaml", "invalid-no-reason.yaml:2:5: exception without `reason`: every exception says why (`reason`), who approved it (`approver`) and when it ends (`expires`)"),
            ("invalid-no-approver.yaml", "invalid-no-approver.yaml:2:5: exception without `approver`: every exception says why (`reason`), who approved it (`approver`) and when it ends (`expires`)"),
            ("invalid-no-expires.yaml", "invalid-no-expires.yaml:2:5: exception without `expires`: every exception says why (`reason`), who approved it (`approver`) and when it ends (`expires`)"),
            ("invalid-empty-reason.yaml", "invalid-empty-reason.yaml:4:13: `reason` is empty: every exception says why and who approved it"),
            ("invalid-date.yaml", "invalid-date.yaml:6:14: invalid date: write it as YYYY-MM-DD with a real month and day, e.g. 2027-03-31"),
            ("invalid-only-comments.yaml", "invalid-only-comments.yaml: the exceptions file is empty (write `exceptions: []` for none)"),
            ("invalid-duplicate-key.yaml", "invalid-duplicate-key.yaml:4:5: key `rule` appears twice in the same mapping: keep one (YAML does not merge repeated keys)"),
            ("invalid-two-documents.yaml", "invalid-two-documents.yaml:3:1: the file holds several YAML documents (separated by `---`); a configuration file is one document: remove the extra `---` or split the file"),
            ("invalid-tab.yaml", "invalid-tab.yaml:2:2: a tab character here: YAML indents with spaces only; replace the tab with spaces"),
            ("invalid-not-a-list.yaml", "invalid-not-a-list.yaml:2:3: expected a list here: `- item` lines, or `[a, b]`"),
            ("invalid-hosts-mapping.yaml", "invalid-hosts-mapping.yaml:2:12: expected a single value here, not a list or a mapping"),
            ("invalid-glob.yaml", "invalid-glob.yaml:2:12: invalid glob `lab-[x`: unclosed character class; missing ']'"),
            ("invalid-no-hosts.yaml", "invalid-no-hosts.yaml:2:5: an exception needs `hosts:` (a glob on inventory names) or `labels:` (e.g. {site: lab})"),
            ("invalid-empty.yaml", "invalid-empty.yaml: the exceptions file is empty (write `exceptions: []` for none)"),
        ];
        for (file, want) in cases {
            let path = fixtures().join(file);
            let err = Exceptions::load(&path).expect_err(file).to_string();
            let err = err.replace(&format!("{}/", fixtures().display()), "");
            assert_eq!(err, want, "{file}");
        }
    }

    #[test]
    fn the_spec_example_loads_and_matches() {
        let ex = Exceptions::load(&fixtures().join("valid.yaml")).unwrap();
        assert_eq!(ex.entries.len(), 3);
        let none = Labels::new();
        let lab: Labels = [("site".to_string(), "lab".to_string())]
            .into_iter()
            .collect();
        let today = date("2027-03-31");
        assert_eq!(
            ex.active_match("lab-01", &none, "kaspersky/kesl", today),
            Some(0)
        );
        assert_eq!(
            ex.active_match("web-01", &none, "kaspersky/kesl", today),
            None
        );
        // labels select hosts; the rule is a glob
        assert_eq!(
            ex.active_match("web-01", &lab, "kaspersky/klnagent", today),
            Some(1)
        );
        // the day after expiry it no longer applies, and is reported as expired
        let next = date("2027-04-01");
        assert_eq!(
            ex.active_match("lab-01", &none, "kaspersky/kesl", next),
            None
        );
        assert_eq!(
            ex.expired_matches("lab-01", &none, "kaspersky/kesl", next),
            vec![0]
        );
        assert!(ex.entries[0].source.ends_with("valid.yaml:2"));
        assert_eq!(ex.entries[1].usage(2).hosts, "labels site=lab");
        assert_eq!(ex.entries[2].usage(0).hosts, "db-* labels env=prod");
    }
}
