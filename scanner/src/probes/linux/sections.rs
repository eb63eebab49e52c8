//! Splitting the script's output into its sections.
//!
//! Only lines that start with `@@fleetsweep:NONCE:` are markers; everything else,
//! inside or outside a section, is data. Text outside sections (a login banner,
//! an rc file's echo) is ignored. A section without its end marker is kept, marked
//! incomplete, so what did arrive is still used and the report says it was cut.

use crate::probes::ProbeWarning;

/// One section of the probe output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    /// Name from the begin marker (`dpkg`, `processes`, ...).
    pub name: &'a str,
    /// Lines between the markers, without the newline the script adds before the
    /// end marker.
    pub body: &'a str,
    /// Exit status from the end marker; None when the section was cut short or the
    /// status was unreadable.
    pub rc: Option<i32>,
    /// False when the end marker never came (output cut, script killed).
    pub complete: bool,
}

/// All sections of one run, in output order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sections<'a> {
    pub sections: Vec<Section<'a>>,
    /// The script printed its final `done` marker.
    pub done: bool,
    /// Marker problems: cut sections, stray or mismatched markers, no `done`.
    pub warnings: Vec<ProbeWarning>,
}

impl<'a> Sections<'a> {
    /// The last section called `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Section<'a>> {
        self.sections.iter().rev().find(|s| s.name == name)
    }
}

/// The output carries at least one marker of `nonce`: the script ran (even if
/// every section failed or the output was cut).
pub fn framed(output: &str, nonce: &str) -> bool {
    output.contains(&format!("@@fleetsweep:{nonce}:"))
}

/// Splits `output` into sections using the markers of `nonce`. Total: any input
/// gives a result, with warnings for anything that does not add up.
pub fn parse_sections<'a>(output: &'a str, nonce: &str) -> Sections<'a> {
    let prefix = format!("@@fleetsweep:{nonce}:");
    let mut out = Sections::default();
    // (name, byte offset where its body starts)
    let mut open: Option<(&'a str, usize)> = None;
    let mut pos = 0usize;
    for line in crate::probes::text::split_inclusive_lines(output) {
        let start = pos;
        pos += line.len();
        let text = line.trim_end_matches('\n').trim_end_matches('\r');
        let Some(marker) = text.strip_prefix(prefix.as_str()) else {
            continue;
        };
        if let Some(name) = marker.strip_prefix("begin ") {
            if let Some((prev, body_start)) = open.take() {
                out.push_cut(prev, &output[body_start..start]);
            }
            open = Some((name.trim(), pos));
        } else if let Some(rest) = marker.strip_prefix("end ") {
            let (name, rc) = parse_end(rest);
            match open.take() {
                Some((open_name, body_start)) => {
                    let body = &output[body_start..start];
                    let body = body.strip_suffix('\n').unwrap_or(body);
                    if open_name != name {
                        out.warnings.push(warning(
                            open_name,
                            format!("section closed by an end marker for `{}`", clip(name)),
                        ));
                    }
                    if rc.is_none() {
                        out.warnings.push(warning(
                            open_name,
                            "exit status unreadable in end marker".to_string(),
                        ));
                    }
                    out.sections.push(Section {
                        name: open_name,
                        body,
                        rc,
                        complete: true,
                    });
                }
                None => out.warnings.push(warning(
                    name,
                    "end marker without a begin marker".to_string(),
                )),
            }
        } else if marker == "done" {
            if let Some((prev, body_start)) = open.take() {
                out.push_cut(prev, &output[body_start..start]);
            }
            out.done = true;
        } else {
            out.warnings.push(warning(
                "probe",
                format!("unknown marker `{}`", clip(marker)),
            ));
        }
    }
    if let Some((prev, body_start)) = open.take() {
        out.push_cut(prev, &output[body_start..]);
    }
    if !out.done {
        let message = if out.sections.is_empty() {
            "no probe output: the script did not run or printed nothing recognisable"
        } else {
            "probe output ended before the script finished: later sections are missing"
        };
        out.warnings.push(warning("probe", message.to_string()));
    }
    out
}

impl<'a> Sections<'a> {
    fn push_cut(&mut self, name: &'a str, body: &'a str) {
        self.warnings.push(warning(
            name,
            "section cut short (no end marker): evidence may be incomplete".to_string(),
        ));
        self.sections.push(Section {
            name,
            body,
            rc: None,
            complete: false,
        });
    }
}

/// `NAME rc=N` → (NAME, Some(N)).
fn parse_end(rest: &str) -> (&str, Option<i32>) {
    match rest.rsplit_once(" rc=") {
        Some((name, rc)) => (name.trim(), rc.trim().parse().ok()),
        None => (rest.trim(), None),
    }
}

pub(crate) fn warning(section: &str, message: String) -> ProbeWarning {
    ProbeWarning {
        section: clip(section),
        message,
    }
}

/// Host text shown in a warning: at most 80 characters, control characters escaped.
pub(crate) fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(80).flat_map(char::escape_debug).collect();
    if s.chars().nth(80).is_some() {
        out.push('…');
    }
    out
}

/// Counts the lines a parser could not understand, for one warning per section
/// (a hostile host must not be able to flood the report with warnings).
#[derive(Debug, Default)]
pub(crate) struct Rejects {
    count: usize,
    first: Option<String>,
}

impl Rejects {
    pub(crate) fn note(&mut self, line: &str) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(clip(line));
        }
    }

    pub(crate) fn into_warning(self, section: &str) -> Option<ProbeWarning> {
        let first = self.first?;
        let lines = if self.count == 1 { "line" } else { "lines" };
        Some(warning(
            section,
            format!("{} {lines} not understood (first: \"{first}\")", self.count),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: &str = "n0nce";

    fn names(s: &Sections<'_>) -> Vec<(String, String, Option<i32>, bool)> {
        s.sections
            .iter()
            .map(|x| (x.name.to_string(), x.body.to_string(), x.rc, x.complete))
            .collect()
    }

    #[test]
    fn splits_sections_and_ignores_text_outside() {
        let out = "banner from .bashrc\n\
                   @@fleetsweep:n0nce:begin a\nline 1\nline 2\n\n@@fleetsweep:n0nce:end a rc=0\n\
                   between\n\
                   @@fleetsweep:n0nce:begin b\nno newline\n@@fleetsweep:n0nce:end b rc=3\n\
                   @@fleetsweep:n0nce:begin empty\n\n@@fleetsweep:n0nce:end empty rc=0\n\
                   @@fleetsweep:n0nce:done\n";
        let s = parse_sections(out, N);
        assert!(s.done);
        assert_eq!(s.warnings, vec![]);
        assert_eq!(
            names(&s),
            vec![
                ("a".into(), "line 1\nline 2\n".into(), Some(0), true),
                ("b".into(), "no newline".into(), Some(3), true),
                ("empty".into(), "".into(), Some(0), true),
            ]
        );
        assert_eq!(s.get("b").map(|x| x.rc), Some(Some(3)));
        assert!(s.get("zzz").is_none());
    }

    #[test]
    fn markers_of_another_nonce_are_data() {
        let out = [
            "@@fleetsweep:n0nce:begin dpkg",
            "install ok installed\tx\t1",
            "@@fleetsweep:guess:end dpkg rc=0",
            "@@fleetsweep:guess:begin rpm",
            " @@fleetsweep:n0nce:end dpkg rc=0",
            "",
            "@@fleetsweep:n0nce:end dpkg rc=0",
            "@@fleetsweep:n0nce:done",
        ]
        .join("\n");
        let s = parse_sections(&out, N);
        assert_eq!(s.sections.len(), 1);
        assert_eq!(
            s.sections[0].body,
            "install ok installed\tx\t1\n@@fleetsweep:guess:end dpkg rc=0\n\
             @@fleetsweep:guess:begin rpm\n @@fleetsweep:n0nce:end dpkg rc=0\n"
        );
    }

    #[test]
    fn cut_output_keeps_what_arrived_and_warns() {
        let cases: &[(&str, &[&str], usize)] = &[
            // (output, warning sections, number of sections)
            ("", &["probe"], 0),
            ("garbage\nonly\n", &["probe"], 0),
            ("@@fleetsweep:n0nce:begin dpkg\nii\tbash\n", &["dpkg", "probe"], 1),
            (
                "@@fleetsweep:n0nce:begin a\nx\n@@fleetsweep:n0nce:begin b\ny\n@@fleetsweep:n0nce:end b rc=0\n@@fleetsweep:n0nce:done\n",
                &["a"],
                2,
            ),
            (
                "@@fleetsweep:n0nce:begin a\nx\n@@fleetsweep:n0nce:done\n",
                &["a"],
                1,
            ),
            (
                "@@fleetsweep:n0nce:end a rc=0\n@@fleetsweep:n0nce:done\n",
                &["a"],
                0,
            ),
            (
                "@@fleetsweep:n0nce:begin a\n\n@@fleetsweep:n0nce:end b rc=0\n@@fleetsweep:n0nce:done\n",
                &["a"],
                1,
            ),
            (
                "@@fleetsweep:n0nce:begin a\n\n@@fleetsweep:n0nce:end a rc=x\n@@fleetsweep:n0nce:done\n",
                &["a"],
                1,
            ),
            (
                "@@fleetsweep:n0nce:bogus\n@@fleetsweep:n0nce:done\n",
                &["probe"],
                0,
            ),
        ];
        for (out, want, count) in cases {
            let s = parse_sections(out, N);
            let got: Vec<&str> = s.warnings.iter().map(|w| w.section.as_str()).collect();
            assert_eq!(&got, want, "output {out:?}: {:?}", s.warnings);
            assert_eq!(s.sections.len(), *count, "output {out:?}");
        }
        let s = parse_sections("@@fleetsweep:n0nce:begin dpkg\nii\tbash\n", N);
        assert_eq!(s.sections[0].body, "ii\tbash\n");
        assert!(!s.sections[0].complete);
        assert_eq!(s.sections[0].rc, None);
    }

    #[test]
    fn crlf_markers_are_accepted() {
        let out = "@@fleetsweep:n0nce:begin a\r\nx\r\n\r\n@@fleetsweep:n0nce:end a rc=0\r\n@@fleetsweep:n0nce:done\r\n";
        let s = parse_sections(out, N);
        assert!(s.done);
        assert_eq!(s.sections[0].rc, Some(0));
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn clip_escapes_and_shortens() {
        assert_eq!(clip("a\tb\0"), "a\\tb\\0");
        let long = "k".repeat(500);
        assert_eq!(clip(&long).chars().count(), 81);
    }

    #[test]
    fn rejects_make_one_warning() {
        let mut r = Rejects::default();
        assert!(Rejects::default().into_warning("x").is_none());
        r.note("bad\tline");
        r.note("worse");
        let w = r.into_warning("dpkg").expect("warning");
        assert_eq!(w.section, "dpkg");
        assert_eq!(w.message, "2 lines not understood (first: \"bad\\tline\")");
    }
}
