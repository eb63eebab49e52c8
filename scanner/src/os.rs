//! The operating-system family a host is probed as.
//!
//! One closed set, used by every layer (inventory hints, the probe registry,
//! the offline reader, the matcher), so no layer branches on strings. Reports
//! keep the family as text (`as_str`), which is how users read and filter it.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// An operating-system family fleetsweep has a probe for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OsFamily {
    Linux,
    Windows,
    Macos,
}

impl OsFamily {
    /// Every family, in the order reports and listings show them.
    pub const ALL: [OsFamily; 3] = [OsFamily::Linux, OsFamily::Windows, OsFamily::Macos];

    /// The spelling of inventories, catalogs and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            OsFamily::Linux => "linux",
            OsFamily::Windows => "windows",
            OsFamily::Macos => "macos",
        }
    }
}

impl fmt::Display for OsFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an unknown family name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown OS family `{0}`: use linux, windows or macos")]
pub struct UnknownOsFamily(pub String);

impl FromStr for OsFamily {
    type Err = UnknownOsFamily;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OsFamily::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| UnknownOsFamily(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in OsFamily::ALL {
            assert_eq!(f.as_str().parse::<OsFamily>(), Ok(f));
            assert_eq!(f.to_string(), f.as_str());
        }
        assert_eq!(
            "Windows".parse::<OsFamily>().unwrap_err().to_string(),
            "unknown OS family `Windows`: use linux, windows or macos"
        );
    }
}
