//! Loaded kernel modules: `/proc/modules` (`name size refs deps state address`)
//! or, without it, `lsmod` (a `Module Size Used by` header, then the same first
//! column). Only the name is kept.

use super::sections::Rejects;
use crate::probes::ProbeWarning;

/// Parses the `modules` section. Total on any input; a first word that is not a
/// plausible module name (letters, digits, `_`, `-`) is counted in one warning.
///
/// ```
/// use fleetsweep::probes::linux::parse_modules;
/// let (mods, _) = parse_modules("bridge 73728 1 br_netfilter, Live 0x0000000000000000\n");
/// assert_eq!(mods, vec!["bridge".to_string()]);
/// ```
pub fn parse_modules(body: &str) -> (Vec<String>, Vec<ProbeWarning>) {
    let mut modules = Vec::new();
    let mut rejects = Rejects::default();
    for line in body.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name == "Module" {
            continue; // lsmod header
        }
        let plausible = name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if plausible {
            modules.push(name.to_string());
        } else {
            rejects.note(line);
        }
    }
    (
        modules,
        rejects.into_warning("modules").into_iter().collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LSMOD: &str = include_str!("../../../../tests/fixtures/linux/inspec-mocks/lsmod");

    #[test]
    fn lsmod_and_proc_modules() {
        let cases: &[(&str, &[&str], usize)] = &[
            (LSMOD, &["bridge", "video"], 0),
            (
                "bridge 73728 1 br_netfilter, Live 0xffffffffc0a5e000\n\
                 klif 155648 3 - Live 0xffffffffc0a00000 (OE)\n",
                &["bridge", "klif"],
                0,
            ),
            ("", &[], 0),
            ("\n   \n", &[], 0),
            ("bad/name 1 0\nok 1 0\n", &["ok"], 1),
            ("@@fleetsweep:abc:end modules rc=0\n", &[], 1),
            ("kl\0if 1 0\n", &[], 1),
        ];
        for (body, want, nwarn) in cases {
            let (mods, warnings) = parse_modules(body);
            assert_eq!(mods, *want, "{body:?}");
            assert_eq!(warnings.len(), *nwarn, "{body:?}: {warnings:?}");
        }
        let (mods, warnings) = parse_modules(&"k".repeat(1 << 20));
        assert!(mods.is_empty());
        assert_eq!(warnings.len(), 1);
    }
}
