//! Choosing a subset of the fleet: `--limit PATTERN` and `--shard I/N`.

use globset::GlobMatcher;

use super::Host;

/// A `--limit` expression: comma-separated terms, each a glob on the host name
/// or a group name, or `key=value` on labels (value may be a glob); a leading
/// `!` excludes. A host is kept when it matches any positive term (or there is
/// none) and no negative term.
#[derive(Debug, Clone)]
pub struct Limit {
    include: Vec<Term>,
    exclude: Vec<Term>,
}

#[derive(Debug, Clone)]
enum Term {
    Name(GlobMatcher),
    Label(String, GlobMatcher),
}

impl Term {
    fn matches(&self, h: &Host) -> bool {
        match self {
            Term::Name(g) => g.is_match(&*h.name) || h.groups.iter().any(|x| g.is_match(x)),
            Term::Label(k, g) => h.labels.get(k).is_some_and(|v| g.is_match(v)),
        }
    }
}

impl Limit {
    pub fn parse(text: &str) -> Result<Limit, String> {
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for raw in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (neg, t) = match raw.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, raw),
            };
            let glob = |p: &str| {
                crate::glob::compile(p, crate::glob::Options::default())
                    .map_err(|e| format!("{e} in --limit"))
            };
            let term = match t.split_once('=') {
                Some((k, v)) => Term::Label(k.trim().to_string(), glob(v.trim())?),
                None => Term::Name(glob(t)?),
            };
            if neg {
                exclude.push(term);
            } else {
                include.push(term);
            }
        }
        if include.is_empty() && exclude.is_empty() {
            return Err(
                "--limit is empty: give host names, globs like `web-*`, group names or `site=fra1`"
                    .into(),
            );
        }
        Ok(Limit { include, exclude })
    }

    pub fn matches(&self, h: &Host) -> bool {
        (self.include.is_empty() || self.include.iter().any(|t| t.matches(h)))
            && !self.exclude.iter().any(|t| t.matches(h))
    }
}

/// `--shard I/N`: a deterministic partition of the fleet by host name, so N
/// scanners each take their own share and together cover every host once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 1-based index.
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn parse(text: &str) -> Result<Shard, String> {
        let err =
            || format!("invalid --shard `{text}`: write it as I/N with 1 <= I <= N, e.g. 2/4");
        let (i, n) = text.split_once('/').ok_or_else(err)?;
        let index: u32 = i.trim().parse().map_err(|_| err())?;
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        if count == 0 || index == 0 || index > count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }

    /// `--shard-index INDEX --shard-count N`: shard INDEX+1 of N, INDEX
    /// counted from 0 as Kubernetes' `JOB_COMPLETION_INDEX`.
    pub fn from_index(index: &str, count: &str) -> Result<Shard, String> {
        let err = || {
            format!(
                "invalid --shard-index `{index}` --shard-count `{count}`: give 0 <= INDEX < N, e.g. --shard-index 0 --shard-count 4 (in a Kubernetes Indexed Job: --shard-index $(JOB_COMPLETION_INDEX))"
            )
        };
        let i: u32 = index.trim().parse().map_err(|_| err())?;
        let n: u32 = count.trim().parse().map_err(|_| err())?;
        if n == 0 || i >= n {
            return Err(err());
        }
        Ok(Shard {
            index: i + 1,
            count: n,
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        // FNV-1a: stable across versions and platforms (unlike std's hasher).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.as_bytes() {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h % u64::from(self.count) == u64::from(self.index - 1)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}
