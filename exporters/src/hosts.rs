//! A report's host list: in memory, or read host by host from where a sweep
//! left its results.
//!
//! A report read from a file or a store holds its hosts ([`HostList::from`]
//! a `Vec`). A sweep's report does not: at 100,000 hosts a list of whole
//! host reports is 17 MB (168 bytes a host, most of them a name, an address
//! and an outcome), and the affected hosts' findings as much again. The
//! sweep hands over a [`HostSource`] instead, which builds each host's report
//! when it is reached, so the state step, the report writers and the metrics
//! go through the fleet one host at a time ([`HostList::iter`] yields each
//! host borrowed or built, a [`Cow`]).
//!
//! Changing a host ([`HostList::update`]) goes back to its source; a list
//! that is shared (a cloned report) is first made a list of its own, so a
//! clone never sees another's changes.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::report::HostReport;

/// Where a sweep's host reports are, in report order (by name).
pub trait HostSource: Send + Sync {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Host `i`'s report, built. Never fails: a result that cannot be read
    /// back comes out as its host, failed, with the reason.
    fn get(&self, i: usize) -> HostReport;
    /// Replaces host `i`'s report.
    fn set(&self, i: usize, report: HostReport);
}

/// The hosts of a report, in report order.
#[derive(Clone, Default)]
pub struct HostList(Hosts);

#[derive(Clone)]
enum Hosts {
    Owned(Vec<HostReport>),
    Source(Arc<dyn HostSource>),
}

impl Default for Hosts {
    fn default() -> Self {
        Hosts::Owned(Vec::new())
    }
}

impl HostList {
    pub fn new() -> HostList {
        HostList::default()
    }

    /// Hosts built one by one from `source` when they are reached.
    pub fn from_source(source: Arc<dyn HostSource>) -> HostList {
        HostList(Hosts::Source(source))
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Hosts::Owned(v) => v.len(),
            Hosts::Source(s) => s.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Host `i`: borrowed from memory, or built from the source.
    pub fn get(&self, i: usize) -> Option<Cow<'_, HostReport>> {
        match &self.0 {
            Hosts::Owned(v) => v.get(i).map(Cow::Borrowed),
            Hosts::Source(s) => (i < s.len()).then(|| Cow::Owned(s.get(i))),
        }
    }

    /// Every host in order, each borrowed or built as it is reached.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            list: self,
            next: 0,
            end: self.len(),
        }
    }

    /// Changes host `i` (nothing when there is none).
    pub fn update<R>(&mut self, i: usize, f: impl FnOnce(&mut HostReport) -> R) -> Option<R> {
        if i >= self.len() {
            return None;
        }
        self.unshare();
        match &mut self.0 {
            Hosts::Owned(v) => Some(f(&mut v[i])),
            Hosts::Source(s) => {
                let mut host = s.get(i);
                let r = f(&mut host);
                s.set(i, host);
                Some(r)
            }
        }
    }

    /// The hosts as a vector of their own, built when they come from a
    /// source (every host in memory: for small reports and tests, not for a
    /// sweep's).
    pub fn to_mut(&mut self) -> &mut Vec<HostReport> {
        if let Hosts::Source(s) = &self.0 {
            let all = (0..s.len()).map(|i| s.get(i)).collect();
            self.0 = Hosts::Owned(all);
        }
        match &mut self.0 {
            Hosts::Owned(v) => v,
            Hosts::Source(_) => unreachable!("made owned above"),
        }
    }

    /// The hosts, all in memory.
    pub fn into_vec(mut self) -> Vec<HostReport> {
        std::mem::take(self.to_mut())
    }

    /// A source shared with a clone of this list is left to the clone: this
    /// list's hosts become its own (in memory) before they change.
    fn unshare(&mut self) {
        if let Hosts::Source(s) = &mut self.0 {
            if Arc::get_mut(s).is_none() {
                self.to_mut();
            }
        }
    }

    /// True when the hosts are in memory (not built from a source).
    pub fn is_in_memory(&self) -> bool {
        matches!(self.0, Hosts::Owned(_))
    }
}

/// The hosts of a [`HostList`], borrowed or built.
pub struct Iter<'a> {
    list: &'a HostList,
    next: usize,
    end: usize,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Cow<'a, HostReport>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let host = self.list.get(self.next);
        self.next += 1;
        host
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.end - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a HostList {
    type Item = Cow<'a, HostReport>;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl From<Vec<HostReport>> for HostList {
    fn from(v: Vec<HostReport>) -> HostList {
        HostList(Hosts::Owned(v))
    }
}

impl FromIterator<HostReport> for HostList {
    fn from_iter<I: IntoIterator<Item = HostReport>>(iter: I) -> HostList {
        HostList::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl PartialEq for HostList {
    fn eq(&self, other: &HostList) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl fmt::Debug for HostList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Hosts::Owned(v) => v.fmt(f),
            Hosts::Source(s) => write!(f, "HostList({} hosts from a source)", s.len()),
        }
    }
}

/// A sequence of hosts, each built, written and dropped in turn.
impl Serialize for HostList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for HostList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HostList, D::Error> {
        Vec::<HostReport>::deserialize(deserializer).map(HostList::from)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Mutex;

    /// Hosts kept in a vector behind the source interface, counting builds.
    struct Kept(Mutex<(Vec<HostReport>, usize)>);

    impl HostSource for Kept {
        fn len(&self) -> usize {
            self.0.lock().unwrap().0.len()
        }
        fn get(&self, i: usize) -> HostReport {
            let mut k = self.0.lock().unwrap();
            k.1 += 1;
            k.0[i].clone()
        }
        fn set(&self, i: usize, report: HostReport) {
            self.0.lock().unwrap().0[i] = report;
        }
    }

    fn host(name: &str) -> HostReport {
        serde_json::from_value(serde_json::json!({
            "name": name, "address": "127.0.0.1", "labels": {}, "outcome": "scanned",
            "error": null, "os": null, "duration_seconds": 0.0, "findings": [],
        }))
        .unwrap()
    }

    #[test]
    fn a_source_is_read_host_by_host_and_serialized_as_the_same_list() {
        let hosts = vec![host("a"), host("b"), host("c")];
        let kept = Arc::new(Kept(Mutex::new((hosts.clone(), 0))));
        let list = HostList::from_source(kept.clone());
        let owned = HostList::from(hosts);
        assert_eq!(list.len(), 3);
        assert_eq!(list, owned);
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            serde_json::to_string(&owned).unwrap()
        );
        let names: Vec<String> = list.iter().map(|h| h.name.to_string()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(list.get(3).is_none());
        assert!(!list.is_in_memory());
    }

    #[test]
    fn a_change_goes_back_to_the_source_and_a_clone_keeps_its_own_hosts() {
        let kept = Arc::new(Kept(Mutex::new((vec![host("a"), host("b")], 0))));
        let mut list = HostList::from_source(kept.clone());
        // Only this list holds the source (and the test's handle): made own.
        let before = list.clone();
        list.update(1, |h| h.error = Some("changed".into()));
        assert_eq!(list.get(1).unwrap().error.as_deref(), Some("changed"));
        assert_eq!(before.get(1).unwrap().error, None, "a clone is not changed");
        assert_eq!(kept.0.lock().unwrap().0[1].error, None);
        assert!(
            list.is_in_memory(),
            "made a list of its own before changing"
        );

        // A source held by the list alone takes the change.
        let alone = Arc::new(Kept(Mutex::new((vec![host("a")], 0))));
        let mut list = HostList::from_source(alone);
        assert_eq!(
            list.update(0, |h| h.outcome = crate::Outcome::ProbeFailed),
            Some(())
        );
        assert!(!list.is_in_memory());
        assert_eq!(list.get(0).unwrap().outcome, crate::Outcome::ProbeFailed);
        assert_eq!(list.update(5, |_| ()), None);
    }
}
