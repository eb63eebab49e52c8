//! Collecting a command's output within `--max-output`, whatever the host sends.
//!
//! Every transport (SSH, local, WinRM) feeds what arrives into one [`Capture`],
//! so the memory a host can make us hold is the same everywhere:
//! - stdout: at most the limit (the buffer never grows past it);
//! - stderr: at most [`STDERR_KEEP`] bytes: it only ever explains a failure
//!   (the report shows its first lines), so it does not get the whole limit;
//! - anything else (other SSH extended data types): counted, never kept.
//!
//! Past the cap the rest is read and dropped, so a command that ran a little
//! over still ends with its exit status. But once stdout was cut the result is
//! known to be truncated, and a host that keeps streaming must not hold its
//! sweep slot until the host timeout: reading stops (and the transport closes
//! the channel or kills the command) when either
//! - [`Capture::exhausted`]: more than [`drain_budget`] bytes arrived in all, or
//! - [`Capture::drain_deadline`] passed: [`DRAIN_GRACE`] after the first byte
//!   of stdout was dropped.
//!
//! A stderr-only flood does not start the grace period (the findings are
//! still complete); it is stopped by the byte budget.

use std::time::Duration;

use tokio::time::Instant;

use super::ExecOutput;

/// Bytes of stderr kept (when the limit is not smaller).
pub const STDERR_KEEP: usize = 64 * 1024;

/// How long a command whose stdout was already cut may go on before it is cut off.
pub const DRAIN_GRACE: Duration = Duration::from_secs(10);

/// Bytes read in all (kept or dropped, every stream) after which reading stops:
/// four times the limit, and never less than 16 MiB, so that a command that
/// only overran a small limit still ends normally.
pub fn drain_budget(limit: usize) -> usize {
    limit.saturating_mul(4).max(16 << 20)
}

/// Output of one command as it arrives, capped.
#[derive(Debug)]
pub struct Capture {
    out: ExecOutput,
    limit: usize,
    stderr_limit: usize,
    /// Bytes received on every stream, kept or not.
    seen: usize,
    budget: usize,
    /// Set when the first byte of stdout was dropped.
    drain_deadline: Option<Instant>,
}

impl Capture {
    pub fn new(limit: usize) -> Capture {
        Capture {
            out: ExecOutput::default(),
            limit,
            stderr_limit: limit.min(STDERR_KEEP),
            seen: 0,
            budget: drain_budget(limit),
            drain_deadline: None,
        }
    }

    /// Appends to stdout what fits under the limit and drops the rest.
    pub fn stdout(&mut self, data: &[u8]) {
        self.seen = self.seen.saturating_add(data.len());
        if push_capped(&mut self.out.stdout, data, self.limit) {
            self.out.truncated = true;
            self.drain_deadline
                .get_or_insert_with(|| Instant::now() + DRAIN_GRACE);
        }
    }

    /// Appends to stderr what fits under its own, smaller cap.
    pub fn stderr(&mut self, data: &[u8]) {
        self.seen = self.seen.saturating_add(data.len());
        push_capped(&mut self.out.stderr, data, self.stderr_limit);
    }

    /// Counts bytes that are never kept (other extended data, dropped chunks).
    pub fn discard(&mut self, len: usize) {
        self.seen = self.seen.saturating_add(len);
    }

    /// Room left in stdout (0: whatever comes next is dropped).
    pub fn stdout_room(&self) -> usize {
        self.limit.saturating_sub(self.out.stdout.len())
    }

    /// Room left in stderr.
    pub fn stderr_room(&self) -> usize {
        self.stderr_limit.saturating_sub(self.out.stderr.len())
    }

    /// Marks stdout as cut without data (a chunk dropped unread).
    pub fn mark_truncated(&mut self) {
        self.out.truncated = true;
        self.drain_deadline
            .get_or_insert_with(|| Instant::now() + DRAIN_GRACE);
    }

    /// More than the drain budget arrived: stop reading.
    pub fn exhausted(&self) -> bool {
        self.seen > self.budget
    }

    /// When reading must stop, once stdout was cut.
    pub fn drain_deadline(&self) -> Option<Instant> {
        self.drain_deadline
    }

    /// Bytes received in all.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The output; `cut_off` when reading stopped before the command ended
    /// (stdout may then be incomplete, whatever its length).
    pub fn finish(mut self, exit_status: Option<u32>, cut_off: bool) -> ExecOutput {
        self.out.exit_status = exit_status;
        self.out.truncated |= cut_off;
        self.out
    }
}

/// Appends the part of `data` that fits under `limit`; true when some was dropped.
/// The buffer's capacity never exceeds the limit (no doubling past it).
fn push_capped(buffer: &mut Vec<u8>, data: &[u8], limit: usize) -> bool {
    let room = limit.saturating_sub(buffer.len());
    let take = data.len().min(room);
    if take > 0 {
        let needed = buffer.len() + take;
        if needed > buffer.capacity() {
            let grown = buffer.capacity().saturating_mul(2).max(needed).min(limit);
            buffer.reserve_exact(grown - buffer.len());
        }
        buffer.extend_from_slice(data.get(..take).unwrap_or_default());
    }
    data.len() > take
}

/// Output bytes as text without a copy when they are UTF-8 (the usual case);
/// otherwise one lossy copy, and the bytes are freed at once.
pub fn into_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdout_keeps_the_prefix_and_never_outgrows_the_limit() {
        let mut c = Capture::new(8);
        c.stdout(b"hello");
        assert!(!c.out.truncated && c.drain_deadline().is_none());
        c.stdout(b"world");
        c.stdout(b"more");
        assert_eq!(c.out.stdout, b"hellowor");
        assert!(c.out.stdout.capacity() <= 8);
        assert!(c.drain_deadline().is_some());
        assert_eq!(c.seen(), 14);
        let out = c.finish(Some(0), false);
        assert!(out.truncated);
        assert_eq!(out.exit_status, Some(0));
    }

    #[test]
    fn capacity_stays_at_the_limit_with_odd_chunks() {
        let limit = 3 * 1024 * 1024 + 7;
        let mut c = Capture::new(limit);
        let chunk = vec![0u8; 32 * 1024 - 3];
        for _ in 0..200 {
            c.stdout(&chunk);
        }
        assert_eq!(c.out.stdout.len(), limit);
        assert_eq!(c.out.stdout.capacity(), limit);
    }

    #[test]
    fn stderr_is_capped_small_and_does_not_truncate_the_findings() {
        let mut c = Capture::new(1 << 20);
        c.stderr(&vec![b'e'; STDERR_KEEP + 10]);
        assert_eq!(c.out.stderr.len(), STDERR_KEEP);
        assert!(!c.out.truncated && c.drain_deadline().is_none());
        let mut small = Capture::new(4);
        small.stderr(b"error");
        assert_eq!(small.out.stderr, b"erro");
    }

    #[test]
    fn a_host_that_keeps_streaming_exhausts_the_budget() {
        let mut c = Capture::new(1024);
        let chunk = vec![0u8; 1 << 20];
        for _ in 0..16 {
            c.stderr(&chunk);
            c.discard(0);
        }
        assert!(!c.exhausted(), "16 MiB is the floor");
        c.discard(1);
        assert!(c.exhausted());
        assert!(c.finish(None, true).truncated);
        assert_eq!(drain_budget(8 << 20), 32 << 20);
    }

    #[test]
    fn text_is_moved_when_valid_and_replaced_when_not() {
        let bytes = b"caf\xc3\xa9".to_vec();
        let ptr = bytes.as_ptr();
        let text = into_text(bytes);
        assert_eq!(text, "café");
        assert_eq!(text.as_ptr(), ptr, "no copy of valid UTF-8");
        assert_eq!(into_text(b"a\xffb".to_vec()), "a\u{fffd}b");
    }
}
