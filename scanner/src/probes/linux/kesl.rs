//! `kesl-control --app-info`: what Kaspersky Endpoint Security for Linux says of
//! itself, of which the probe keeps the product name and the date of its last
//! anti-virus database release (the "frozen protection" signal: KESL hosts
//! whose bases stopped around 2024-09-29, when Kaspersky's US updates ended).
//!
//! The layout is the one Kaspersky's KESL documentation shows for `--app-info`: one
//! `Field name:   value` per line, for example
//!
//! ```text
//! Name:                                       Kaspersky Endpoint Security 12.1 for Linux
//! Version:                                    12.1.0.1297
//! Last release date of databases:             2024-09-27 18:02:00
//! ```
//!
//! In the live probe the section ends with `!rc=N`, kesl-control's own exit
//! status (the section's status is that of the `head` bounding it).

use super::super::SignatureUpdate;

/// Longest product name kept from a host's output.
const MAX_NAME: usize = 200;

/// The product name and `Last release date of databases:`; None without a
/// readable date.
pub fn parse_kesl_app_info(text: &str) -> Option<SignatureUpdate> {
    let mut name = None;
    let mut date = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        match k.trim() {
            "Name" => {
                let clean: String = v
                    .trim()
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_NAME)
                    .collect();
                if !clean.is_empty() {
                    name = Some(clean);
                }
            }
            "Last release date of databases" => {
                date = v
                    .split_whitespace()
                    .next()
                    .and_then(|d| d.parse::<jiff::civil::Date>().ok());
            }
            _ => {}
        }
    }
    Some(SignatureUpdate {
        product: name.unwrap_or_else(|| "Kaspersky Endpoint Security for Linux".to_string()),
        date: date?,
        source: "kesl-control --app-info".to_string(),
    })
}

/// kesl-control's exit status from the live section's `!rc=N` line; None when
/// the line is missing (output cut at the bound).
pub fn app_info_status(text: &str) -> Option<i32> {
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("!rc="))
        .and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn recorded_format() {
        // The `kesl-control --app-info` layout (as Kaspersky's KESL documentation shows it), values written here.
        let t = "Name:                                       Kaspersky Endpoint Security 12.1 for Linux\n\
                 Version:                                    12.1.0.1297\n\
                 Last release date of databases:             2024-09-27 18:02:00\n\
                 Anti-virus databases loaded:                Yes\n!rc=0\n";
        let u = parse_kesl_app_info(t).unwrap();
        assert_eq!(u.product, "Kaspersky Endpoint Security 12.1 for Linux");
        assert_eq!(u.date.to_string(), "2024-09-27");
        assert_eq!(app_info_status(t), Some(0));
        assert!(parse_kesl_app_info("Name: x\n").is_none());
    }

    #[test]
    fn hostile_output_is_bounded_and_never_panics() {
        let long = format!(
            "Name: {}\x1b[2J\nLast release date of databases: 2024-09-27\n",
            "K".repeat(10_000)
        );
        let u = parse_kesl_app_info(&long).unwrap();
        assert_eq!(u.product.chars().count(), MAX_NAME);
        assert!(!u.product.contains('\x1b'));
        for junk in [
            "",
            ":",
            "Last release date of databases:",
            "Last release date of databases: 2024-13-45",
            "\u{0}:\u{0}",
        ] {
            assert!(parse_kesl_app_info(junk).is_none(), "{junk:?}");
        }
        assert_eq!(
            app_info_status("Error: permission denied\n!rc=1\n"),
            Some(1)
        );
        assert_eq!(app_info_status("Name: cut here"), None);
    }
}
