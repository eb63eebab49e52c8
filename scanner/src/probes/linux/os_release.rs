//! `/etc/os-release` (and `uname -sr` when it is missing).
//!
//! The format is a list of shell-style `KEY=value` assignments
//! (<https://www.freedesktop.org/software/systemd/man/os-release.html>): values may
//! be unquoted, `"double"` (with `\"`, `\\`, `` \` ``, `\$` escapes) or `'single'`
//! quoted; lines starting with `#` are comments.

use fleetsweep_exporters::OsInfo;

/// `NAME` (else `ID`) and `VERSION_ID` of an os-release file. Family is always
/// `linux`. Total: garbage gives an `OsInfo` with no name or version.
///
/// ```
/// use fleetsweep::probes::linux::parse_os_release;
/// let os = parse_os_release("NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n");
/// assert_eq!(os.name.as_deref(), Some("Debian GNU/Linux"));
/// assert_eq!(os.version.as_deref(), Some("12"));
/// ```
pub fn parse_os_release(text: &str) -> OsInfo {
    let mut name = None;
    let mut id = None;
    let mut version = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let slot = match key.trim() {
            "NAME" => &mut name,
            "ID" => &mut id,
            "VERSION_ID" => &mut version,
            _ => continue,
        };
        let value = unquote(raw.trim());
        // Later assignments win, as when the file is sourced by a shell.
        *slot = (!value.is_empty()).then_some(value);
    }
    OsInfo {
        family: "linux".to_string(),
        name: name.or(id),
        version,
    }
}

/// OS info from `uname -sr` alone (no os-release): the kernel name, no version;
/// the kernel release is not the distribution's version.
pub fn parse_uname(text: &str) -> OsInfo {
    OsInfo {
        family: "linux".to_string(),
        name: text.split_whitespace().next().map(str::to_string),
        version: None,
    }
}

/// Shell-style unquoting of one os-release value.
fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    out.push(c);
                }
            }
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => match chars.next() {
                            Some(e @ ('"' | '\\' | '`' | '$')) => out.push(e),
                            Some(other) => {
                                out.push('\\');
                                out.push(other);
                            }
                            None => out.push('\\'),
                        },
                        _ => out.push(c),
                    }
                }
            }
            '\\' => {
                if let Some(e) = chars.next() {
                    out.push(e);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/etc/os-release` of the Debian 12 machine this project is built on.
    const DEBIAN12: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n\
        NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\n\
        VERSION_CODENAME=bookworm\nID=debian\nHOME_URL=\"https://www.debian.org/\"\n";

    fn os(name: Option<&str>, version: Option<&str>) -> OsInfo {
        OsInfo {
            family: "linux".into(),
            name: name.map(Into::into),
            version: version.map(Into::into),
        }
    }

    #[test]
    fn parses_real_and_edge_case_files() {
        let cases: &[(&str, OsInfo)] = &[
            (DEBIAN12, os(Some("Debian GNU/Linux"), Some("12"))),
            (
                "NAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nID=ubuntu\n",
                os(Some("Ubuntu"), Some("22.04")),
            ),
            (
                "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n",
                os(Some("Alpine Linux"), Some("3.19.1")),
            ),
            ("ID=arch\nBUILD_ID=rolling\n", os(Some("arch"), None)),
            ("NAME='Single Quoted'\n", os(Some("Single Quoted"), None)),
            (
                r#"NAME="Say \"hi\" \$HOME \\ \`x\` \n""#,
                os(Some(r#"Say "hi" $HOME \ `x` \n"#), None),
            ),
            ("NAME=Plain\\ Escaped\n", os(Some("Plain Escaped"), None)),
            ("# NAME=Commented\nID=real\n", os(Some("real"), None)),
            ("  NAME = \"Spaced\"  \n", os(Some("Spaced"), None)),
            ("NAME=\"unterminated\n", os(Some("unterminated"), None)),
            ("NAME=\"\"\nID=fallback\n", os(Some("fallback"), None)),
            ("NAME=first\nNAME=second\n", os(Some("second"), None)),
            (
                "NAME=\"trailing backslash\\",
                os(Some("trailing backslash\\"), None),
            ),
            ("", os(None, None)),
            ("no equals here\n=\n==\n", os(None, None)),
            ("\0\0\0NAME=x", os(None, None)),
        ];
        for (text, want) in cases {
            assert_eq!(&parse_os_release(text), want, "input {text:?}");
        }
    }

    #[test]
    fn very_long_values_do_not_break_the_parser() {
        let text = format!("NAME=\"{}\"\nVERSION_ID=1\n", "x".repeat(1 << 20));
        let got = parse_os_release(&text);
        assert_eq!(got.name.map(|n| n.len()), Some(1 << 20));
        assert_eq!(got.version.as_deref(), Some("1"));
    }

    #[test]
    fn uname_gives_kernel_name_only() {
        assert_eq!(
            parse_uname("Linux 6.1.0-18-amd64\n"),
            os(Some("Linux"), None)
        );
        assert_eq!(parse_uname(""), os(None, None));
    }
}
