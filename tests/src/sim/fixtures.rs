//! The probe outputs simulated hosts print: real recorded outputs of the Linux
//! probe (`tests/fixtures/sim/*.out`, recorded by `tests/fixtures/sim/record.sh`),
//! compiled in so that the `fleetsim` binary needs no fixture directory.

use super::Profile;

/// The nonce the fixtures were recorded with (`record.sh`).
const RECORDED_NONCE: &str = "SIMRECORDEDNONCE0000000A";
/// The KESL version installed on the recorded KESL host.
pub const KESL_VERSION: &str = "12.1.0-1297";

const CLEAN: &str = include_str!("../../fixtures/sim/clean.out");
const KESL: &str = include_str!("../../fixtures/sim/kesl.out");
const LARGE: &str = include_str!("../../fixtures/sim/large.out");

/// One recorded output, cut at its nonce so each run gets its own.
pub struct Fixture {
    parts: Vec<&'static str>,
}

impl Fixture {
    pub fn of(profile: Profile) -> Fixture {
        let text = match profile {
            Profile::Clean => CLEAN,
            Profile::Kesl => KESL,
            Profile::Large => LARGE,
        };
        Fixture {
            parts: text.split(RECORDED_NONCE).collect(),
        }
    }

    /// The output of a run whose standard input started with `nonce`.
    pub fn render(&self, nonce: &str) -> Vec<u8> {
        self.parts.join(nonce).into_bytes()
    }
}

/// The nonce of a probe's standard input (its first line), when it is one the
/// real script accepts: ASCII letters and digits. The script prints nothing
/// for any other.
pub fn nonce_of(stdin: &[u8]) -> Option<&str> {
    let line = stdin.split(|b| *b == b'\n').next()?;
    let nonce = std::str::from_utf8(line).ok()?;
    (!nonce.is_empty() && nonce.len() <= 64 && nonce.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(nonce)
}

/// The probe's input is complete: its `.` line arrived (the script stops
/// reading there, without waiting for EOF).
pub fn input_complete(stdin: &[u8]) -> bool {
    stdin.windows(3).any(|w| w == b"\n.\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fixture_carries_its_nonce_in_every_marker() {
        for p in [Profile::Clean, Profile::Kesl, Profile::Large] {
            let out = String::from_utf8_lossy(&Fixture::of(p).render("N0nce")).into_owned();
            assert!(!out.contains(RECORDED_NONCE), "{p:?}");
            assert!(out.contains("@@fleetsweep:N0nce:begin dpkg\n"), "{p:?}");
            assert!(out.ends_with("@@fleetsweep:N0nce:done\n"), "{p:?}");
        }
        let kesl = String::from_utf8_lossy(&Fixture::of(Profile::Kesl).render("x")).into_owned();
        assert!(kesl.contains(&format!("\tkesl\t{KESL_VERSION}\t")));
    }

    #[test]
    fn sizes_vary() {
        let len = |p| Fixture::of(p).render("n").len();
        assert!(len(Profile::Large) > 3 * len(Profile::Clean));
    }

    #[test]
    fn nonce_is_the_first_line_if_the_script_would_take_it() {
        assert_eq!(nonce_of(b"abc123\n/opt/kaspersky\n.\n"), Some("abc123"));
        assert_eq!(nonce_of(b"abc123"), Some("abc123"));
        assert_eq!(nonce_of(b"a b\n.\n"), None);
        assert_eq!(nonce_of(b"\n.\n"), None);
        assert_eq!(nonce_of(b"\xff\n"), None);
    }

    #[test]
    fn input_ends_at_the_dot_line() {
        assert!(input_complete(b"n\n/opt\n.\n"));
        assert!(!input_complete(b"n\n/opt\n"));
        assert!(!input_complete(b"n\n/opt/.x\n"));
    }
}
