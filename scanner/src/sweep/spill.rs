//! Finished host results kept out of memory while the sweep runs.
//!
//! A host with findings, warnings or an error carries a report of a few
//! kilobytes (an affected host's findings and evidence); kept in memory until
//! the end of the sweep, they made the sweep's memory grow with the number of
//! such hosts (some 9 MB for 5,000 affected hosts of 100,000, on top of the
//! connections in flight). They are written to an unnamed temporary file as
//! they finish and read back when the report is assembled, after the sweep's
//! connections are gone.
//!
//! The file is created with `tempfile` (`O_TMPFILE` where the kernel has it:
//! no name, mode 0600, gone when the sweep ends, even if killed) in `$TMPDIR`,
//! else `/tmp`, and holds at most [`MAX_FILE`]. When it cannot be created or
//! written, or is full, results stay in memory: a full disk costs memory,
//! never a result.

use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use fleetsweep_exporters::{HostReport, OsInfo};

/// The most a sweep writes to its spill file; later results stay in memory.
/// A temporary directory is often small (Kubernetes evicts a pod whose
/// `emptyDir` outgrows its `sizeLimit`): 128 MiB holds the results of some
/// 70,000 affected hosts.
const MAX_FILE: u64 = 128 * 1024 * 1024;

/// Where one spilled result is: its offset and length in one word (a
/// sweep's slot per host stays 24 bytes).
#[derive(Debug, Clone, Copy)]
pub(super) struct Spilled(u64);

/// Bits of [`Spilled`] for the length: a result is at most 16 MiB (larger
/// ones, which the probe's output limit rules out, stay in memory), and the
/// file at most 1 TiB.
const LEN_BITS: u32 = 24;

impl Spilled {
    fn new(at: u64, len: usize) -> Option<Spilled> {
        let len = u64::try_from(len).ok().filter(|l| *l < 1 << LEN_BITS)?;
        (at < 1 << (64 - LEN_BITS)).then_some(Spilled(at << LEN_BITS | len))
    }

    fn at(self) -> u64 {
        self.0 >> LEN_BITS
    }

    fn len(self) -> usize {
        (self.0 & ((1 << LEN_BITS) - 1)) as usize
    }
}

/// The spill file of one sweep (none until the first result that needs it).
#[derive(Default)]
pub(super) struct Spill {
    file: Option<File>,
    /// Bytes written so far: where the next result goes.
    end: u64,
    /// The file could not be created or written: results stay in memory.
    off: bool,
    /// Remediation texts read back, one copy each (the catalog's texts are
    /// shared by every finding in memory; read back, each would be a copy).
    texts: HashSet<Arc<str>>,
}

impl Spill {
    /// A spill that keeps everything in memory (tests, and where no file is
    /// wanted).
    #[cfg(test)]
    pub(super) fn disabled() -> Spill {
        Spill {
            off: true,
            ..Spill::default()
        }
    }

    /// Writes `report` and says where; `None` when it stays in memory. The
    /// caller keeps what is shared (the OS) and takes it out first: it is
    /// not written.
    pub(super) fn put(&mut self, report: &HostReport) -> Option<Spilled> {
        // JSON has no NaN or infinity (it would write null and not read it
        // back): such a result, which a clock cannot give, stays in memory.
        if self.off || !report.duration_seconds.is_finite() {
            return None;
        }
        let bytes = serde_json::to_vec(report).ok()?;
        if self.end + bytes.len() as u64 > MAX_FILE {
            return None;
        }
        let at = Spilled::new(self.end, bytes.len())?;
        if let Err(e) = self.write(&bytes) {
            tracing::warn!(
                "cannot write host results to a temporary file ({e}); keeping them in \
                 memory (set TMPDIR to a writable directory with room)"
            );
            self.off = true;
            return None;
        }
        Some(at)
    }

    /// Appends `bytes` at [`Spill::end`], creating the file first if need be.
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(tempfile::tempfile()?),
        };
        // On an error, what was written of this one is never read (no more
        // are written), and the ones before stay valid.
        file.write_all(bytes)?;
        self.end += bytes.len() as u64;
        Ok(())
    }

    /// Cuts the file short, as a disk error or a meddler would (tests of
    /// what a lost result becomes).
    #[cfg(test)]
    pub(super) fn damage(&self) {
        if let Some(f) = &self.file {
            f.set_len(0).unwrap();
        }
    }

    /// The result written at `at`, with `os` back in place. An error names
    /// what failed (a file removed or truncated under the sweep).
    pub(super) fn take(
        &mut self,
        at: Spilled,
        os: Option<Arc<OsInfo>>,
    ) -> Result<HostReport, String> {
        let file = self.file.as_ref().ok_or("no spill file")?;
        let mut buf = vec![0u8; at.len()];
        file.read_exact_at(&mut buf, at.at())
            .map_err(|e| format!("cannot read the temporary file of host results: {e}"))?;
        let mut report: HostReport = serde_json::from_slice(&buf)
            .map_err(|e| format!("the temporary file of host results is damaged: {e}"))?;
        report.os = os;
        // serde grows lists by doubling as it reads them (JSON gives no
        // length): the room left over is given back, as the result had
        // none when it was written (at 100,000 hosts, 5,000 affected,
        // some 4 MB at the report's peak).
        report.warnings.shrink_to_fit();
        report.incomplete.shrink_to_fit();
        report.findings.shrink_to_fit();
        for f in &mut report.findings {
            f.evidence.shrink_to_fit();
            f.containers.shrink_to_fit();
            if let Some(text) = f.remediation.take() {
                f.remediation = Some(match self.texts.get(&text) {
                    Some(known) => known.clone(),
                    None => {
                        self.texts.insert(text.clone());
                        text
                    }
                });
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetsweep_exporters::{
        Evidence, ExceptionRef, Finding, FindingState, Outcome, Policy, ScannedBy, SignatureAge,
        Status,
    };

    /// A result with every field a host's text can reach filled, hostile text
    /// included (control characters, invalid-looking escapes, long values).
    fn report(name: &str, remediation: &Arc<str>) -> HostReport {
        let seen: jiff::Timestamp = "2026-12-05T06:00:00.123456789Z".parse().unwrap();
        let mut labels = fleetsweep_exporters::Labels::new();
        labels.insert("site".into(), "fra1\u{1b}[2J".into());
        HostReport {
            name: name.into(),
            address: "10.0.0.1".into(),
            labels,
            outcome: Outcome::Scanned,
            error: Some("line\nbreak \u{0} nul \\u0000 \"quoted\"".into()),
            os: None,
            duration_seconds: 0.1 + 0.2,
            warnings: vec!["rpm: cut at 64 MiB".into()],
            incomplete: vec!["processes: garbage".into()],
            findings: vec![Finding {
                rule: "kaspersky/kesl".into(),
                vendor: "Kaspersky".into(),
                product: "Kaspersky Endpoint Security for Linux".into(),
                policy: Policy::Ban,
                state: FindingState::Installed,
                status: Status::Overdue,
                version: Some("12.1.0-1297".into()),
                first_seen: seen,
                last_seen: Some(seen),
                due: Some("2026-12-19".parse().unwrap()),
                remediated_at: Some(seen),
                last_verified: Some(seen),
                exception: Some(ExceptionRef {
                    source: "ex.yaml:2".into(),
                    reason: "lab".into(),
                    approver: "ciso".into(),
                    expires: "2027-03-31".parse().unwrap(),
                }),
                signatures: Some(SignatureAge {
                    last_update: "2024-09-29".parse().unwrap(),
                    age_days: -3,
                    frozen: true,
                }),
                effective: Some("2024-07-20".parse().unwrap()),
                deadline: Some("2024-09-29".parse().unwrap()),
                evidence: vec![
                    Evidence {
                        kind: "package".into(),
                        source: Some("dpkg".into()),
                        value: "kesl 12.1.0-1297".into(),
                    },
                    Evidence {
                        kind: "path".into(),
                        source: None,
                        value: "/opt/kaspersky/\u{202e}x".repeat(1000),
                    },
                ],
                containers: vec!["docker 3f2a1b2c3d4e".into()],
                remediation: Some(remediation.clone()),
            }],
            scanned_by: Some(Box::new(ScannedBy {
                sweep: "s1".into(),
                scanner: None,
                shard: Some("1/2".into()),
                finished: seen,
            })),
        }
    }

    #[test]
    fn a_spilled_result_comes_back_as_it_went_with_its_os_and_one_copy_of_each_text() {
        let text: Arc<str> = "apt-get purge kesl".into();
        let os = Arc::new(OsInfo {
            family: "linux".into(),
            name: Some("Debian GNU/Linux".into()),
            version: Some("13".into()),
        });
        let mut spill = Spill::default();
        let (a, b) = (report("a", &text), report("b", &text));
        let at_a = spill.put(&a).expect("written");
        let at_b = spill.put(&b).expect("written");
        // Read back in any order, each exactly as written.
        let back_b = spill.take(at_b, None).unwrap();
        let back_a = spill.take(at_a, Some(os.clone())).unwrap();
        assert_eq!(back_b, b);
        assert_eq!(back_a.os.as_deref(), Some(&*os));
        assert_eq!(
            HostReport {
                os: None,
                ..back_a.clone()
            },
            a
        );
        // No room left over from reading (serde grows lists by doubling).
        for r in [&back_a, &back_b] {
            assert_eq!(r.findings.capacity(), r.findings.len());
            assert_eq!(r.warnings.capacity(), r.warnings.len());
            assert_eq!(r.incomplete.capacity(), r.incomplete.len());
            for f in &r.findings {
                assert_eq!(f.evidence.capacity(), f.evidence.len());
                assert_eq!(f.containers.capacity(), f.containers.len());
            }
        }
        let (ra, rb) = (
            back_a.findings[0].remediation.clone().unwrap(),
            back_b.findings[0].remediation.clone().unwrap(),
        );
        assert!(
            Arc::ptr_eq(&ra, &rb),
            "one copy of a remediation text read back"
        );
    }

    #[test]
    fn a_result_that_cannot_be_spilled_is_refused_and_later_ones_are_not_tried() {
        let text: Arc<str> = "remove it".into();
        let r = report("a", &text);
        let mut off = Spill::disabled();
        assert!(off.put(&r).is_none());
        // A file that cannot be written (a full or read-only disk): the
        // sweep keeps results in memory.
        let mut unwritable = Spill {
            file: Some(File::open("/dev/null").unwrap()),
            ..Spill::default()
        };
        assert!(unwritable.put(&r).is_none(), "a read-only file");
        assert!(unwritable.off, "and no more attempts after a failed write");
        assert!(unwritable.put(&r).is_none());
        let mut spill = Spill::default();
        for odd in [f64::NAN, f64::INFINITY] {
            let r = HostReport {
                duration_seconds: odd,
                ..r.clone()
            };
            assert!(spill.put(&r).is_none(), "{odd} would not come back");
        }
        assert!(!spill.off);
    }

    #[test]
    fn a_full_spill_file_keeps_later_results_in_memory() {
        let text: Arc<str> = "remove it".into();
        let r = report("a", &text);
        let mut spill = Spill::default();
        let first = spill.put(&r).expect("written");
        spill.end = MAX_FILE - 10;
        assert!(spill.put(&r).is_none(), "past the cap");
        assert!(!spill.off, "a full file is not a broken one");
        assert_eq!(spill.take(first, None).unwrap(), r);
    }

    #[test]
    fn offsets_and_lengths_fit_one_word_or_the_result_stays_in_memory() {
        let s = Spilled::new(123_456_789_012, 65_536).unwrap();
        assert_eq!((s.at(), s.len()), (123_456_789_012, 65_536));
        let s = Spilled::new((1 << 40) - 1, (1 << 24) - 1).unwrap();
        assert_eq!((s.at(), s.len()), ((1 << 40) - 1, (1 << 24) - 1));
        assert!(
            Spilled::new(0, 1 << 24).is_none(),
            "a result of 16 MiB or more"
        );
        assert!(Spilled::new(1 << 40, 1).is_none(), "a file past 1 TiB");
    }
}
