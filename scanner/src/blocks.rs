//! Records a sweep needs for every host, kept out of memory: the inventory's
//! hosts ([`crate::inventory::HostTable`]) and the known_hosts lines
//! ([`crate::transport::known_hosts`]). Held in memory, each grew with the
//! fleet (64 and 80 bytes a host at 100,000 hosts), for as long as the
//! pipeline lives (`serve`: the whole daemon's life).
//!
//! Records are appended once, each with its length, in blocks of a fixed
//! number of records, and read back a block at a time; only where each
//! block starts stays in memory (8 bytes a block). The bytes go to an
//! unnamed temporary file (`tempfile`: `O_TMPFILE` where the kernel has it,
//! no name, mode 0600, in `$TMPDIR`, else `/tmp`, gone when the records are
//! dropped, even if the process is killed). When it cannot be created or
//! written, the records that are not in it stay in memory, as they would be
//! on file: a full or read-only temporary directory costs memory, never a
//! record.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Bytes gathered before they are written (whole blocks only).
const FLUSH_AT: usize = 64 * 1024;

/// Makes the file the records go to.
pub(crate) type NewFile = fn() -> std::io::Result<File>;

/// Appended records, read back by block. Bytes `[0, in_file)` are in the
/// file, the rest in memory; records are written a whole number of blocks
/// at a time, so no block straddles the two.
#[derive(Debug)]
pub(crate) struct Blocks {
    /// What the records are, for the warning when they stay in memory.
    what: &'static str,
    per_block: usize,
    records: usize,
    pub(crate) file: Option<File>,
    pub(crate) in_file: u64,
    pub(crate) memory: Vec<u8>,
    new_file: Option<NewFile>,
    /// Creating or writing the file failed, or no file is wanted: the rest
    /// stays in memory.
    pub(crate) no_file: bool,
    /// Where each block starts, and (once [`Blocks::finish`]ed) where the
    /// last one ends.
    pub(crate) starts: Vec<u64>,
}

impl Blocks {
    /// Records of `what`, `per_block` to a block, in the file `new_file`
    /// makes (none: in memory).
    pub(crate) fn new(what: &'static str, per_block: usize, new_file: Option<NewFile>) -> Blocks {
        Blocks {
            what,
            per_block: per_block.max(1),
            records: 0,
            file: None,
            in_file: 0,
            memory: Vec::new(),
            new_file,
            no_file: new_file.is_none(),
            starts: Vec::new(),
        }
    }

    /// No records, to go where this one's go: the same kind of file, or
    /// memory when this one's file could not be made or written (which was
    /// said once already).
    pub(crate) fn empty_like(&self) -> Blocks {
        let new_file = if self.no_file { None } else { self.new_file };
        Blocks::new(self.what, self.per_block, new_file)
    }

    /// In the temporary file (`$TMPDIR`, else `/tmp`).
    pub(crate) fn on_file(what: &'static str, per_block: usize) -> Blocks {
        Blocks::new(what, per_block, Some(tempfile::tempfile))
    }

    pub(crate) fn len(&self) -> usize {
        self.records
    }

    pub(crate) fn per_block(&self) -> usize {
        self.per_block
    }

    /// Appends one record.
    pub(crate) fn push(&mut self, record: &[u8]) {
        if self.records.is_multiple_of(self.per_block) {
            if self.memory.len() >= FLUSH_AT {
                self.flush();
            }
            self.starts.push(self.end());
        }
        put_uint(&mut self.memory, record.len() as u64);
        self.memory.extend_from_slice(record);
        self.records += 1;
    }

    /// Done appending: the rest goes to the file, and the end of the last
    /// block is known.
    pub(crate) fn finish(&mut self) {
        self.flush();
        self.starts.push(self.end());
        self.memory.shrink_to_fit();
        self.starts.shrink_to_fit();
    }

    fn end(&self) -> u64 {
        self.in_file + self.memory.len() as u64
    }

    /// The records of block `b`, whole, from wherever they are.
    pub(crate) fn block(&self, b: usize) -> std::io::Result<Block> {
        let (Some(&start), Some(&end)) = (self.starts.get(b), self.starts.get(b + 1)) else {
            return Err(damaged("a block past the end"));
        };
        let len = usize::try_from(end.saturating_sub(start)).map_err(std::io::Error::other)?;
        let bytes = if len == 0 {
            Vec::new()
        } else if end <= self.in_file {
            let file = self.file.as_ref().ok_or_else(|| damaged("no file"))?;
            let mut buf = vec![0u8; len];
            file.read_exact_at(&mut buf, start)?;
            buf
        } else {
            let from = usize::try_from(start.saturating_sub(self.in_file))
                .map_err(std::io::Error::other)?;
            self.memory
                .get(from..from.saturating_add(len))
                .ok_or_else(|| damaged("a block past the end"))?
                .to_vec()
        };
        let count = self
            .per_block
            .min(self.records.saturating_sub(b * self.per_block));
        Ok(Block { bytes, count })
    }

    /// Record `at`, read with its block (tests: the users read blocks).
    #[cfg(test)]
    pub(crate) fn record(&self, at: usize) -> std::io::Result<Vec<u8>> {
        if at >= self.records {
            return Err(damaged("a record past the end"));
        }
        let block = self.block(at / self.per_block)?;
        let record = block.records().nth(at % self.per_block);
        record
            .ok_or_else(|| damaged("cut short"))?
            .map(<[u8]>::to_vec)
    }

    /// Moves what is gathered in memory to the file (created on the first
    /// call). On a failure it stays in memory, and so does all that follows.
    fn flush(&mut self) {
        if self.no_file || self.memory.is_empty() {
            return;
        }
        let file = match &mut self.file {
            Some(file) => file,
            None => match self.new_file.map(|f| f()) {
                Some(Ok(file)) => self.file.insert(file),
                Some(Err(e)) => return self.keep_in_memory(&e),
                None => return,
            },
        };
        // Positioned: a write cut short leaves nothing that is read (its
        // bytes are still in memory, and reads of them go there).
        match file.write_all_at(&self.memory, self.in_file) {
            Ok(()) => {
                self.in_file += self.memory.len() as u64;
                self.memory.clear();
            }
            Err(e) => self.keep_in_memory(&e),
        }
    }

    fn keep_in_memory(&mut self, e: &std::io::Error) {
        tracing::warn!(
            "cannot write {} to a temporary file ({e}); keeping them in memory (set TMPDIR \
             to a writable directory with room)",
            self.what
        );
        self.no_file = true;
    }
}

impl Default for Blocks {
    /// No records, and no file.
    fn default() -> Blocks {
        Blocks::new("records", 1, None)
    }
}

/// One block's records, read back.
pub(crate) struct Block {
    bytes: Vec<u8>,
    count: usize,
}

impl Block {
    /// Its records in order; a damaged block ends with an error.
    pub(crate) fn records(&self) -> impl Iterator<Item = std::io::Result<&[u8]>> {
        let mut rest = Decoder::new(&self.bytes);
        let mut left = self.count;
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            left -= 1;
            let record = rest.small::<usize>().and_then(|len| rest.bytes(len));
            if record.is_err() {
                left = 0;
            }
            Some(record)
        })
    }
}

/// An error of records read back damaged (cut short, or changed under the
/// process): never a panic.
pub(crate) fn damaged(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// LEB128, as records encode numbers.
pub(crate) fn put_uint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A length and the bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_uint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads what [`put_uint`] and [`put_bytes`] wrote; every error is
/// [`damaged`].
pub(crate) struct Decoder<'a> {
    rest: &'a [u8],
}

impl<'a> Decoder<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { rest: bytes }
    }

    pub(crate) fn uint(&mut self) -> std::io::Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(damaged("a number too long"))
    }

    pub(crate) fn small<T: TryFrom<u64>>(&mut self) -> std::io::Result<T> {
        T::try_from(self.uint()?).map_err(|_| damaged("a number out of range"))
    }

    pub(crate) fn byte(&mut self) -> std::io::Result<u8> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| damaged("cut short"))?;
        self.rest = rest;
        Ok(b)
    }

    /// The next `len` bytes.
    pub(crate) fn bytes(&mut self, len: usize) -> std::io::Result<&'a [u8]> {
        if len > self.rest.len() {
            return Err(damaged("cut short"));
        }
        let (b, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(b)
    }

    /// What [`put_bytes`] wrote.
    pub(crate) fn counted(&mut self) -> std::io::Result<&'a [u8]> {
        let len = self.small()?;
        self.bytes(len)
    }

    pub(crate) fn str(&mut self) -> std::io::Result<&'a str> {
        std::str::from_utf8(self.counted()?).map_err(|_| damaged("not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<Vec<u8>> {
        // Empty, short and long records, some past a block's worth of bytes.
        (0..n)
            .map(|i| {
                let len = [0, 1, 7, 200, 5_000][i % 5];
                (0..len).map(|j| (i * 31 + j) as u8).collect()
            })
            .collect()
    }

    fn filled(n: usize, new_file: Option<NewFile>) -> Blocks {
        let mut b = Blocks::new("test records", 16, new_file);
        for r in records(n) {
            b.push(&r);
        }
        b.finish();
        b
    }

    fn all(b: &Blocks) -> Vec<Vec<u8>> {
        (0..b.len()).map(|i| b.record(i).unwrap()).collect()
    }

    #[test]
    fn records_come_back_from_file_and_from_memory() {
        let on_file = filled(1_000, Some(tempfile::tempfile));
        assert!(on_file.file.is_some());
        assert!(on_file.in_file > FLUSH_AT as u64);
        assert!(on_file.memory.is_empty());
        assert_eq!(all(&on_file), records(1_000));
        let in_memory = filled(1_000, None);
        assert!(in_memory.file.is_none());
        assert_eq!(all(&in_memory), records(1_000));
        let block = on_file.block(62).unwrap();
        let last: Vec<Vec<u8>> = block.records().map(|r| r.unwrap().to_vec()).collect();
        assert_eq!(last, records(1_000)[992..]);
        assert!(on_file.record(1_000).is_err());
        assert!(on_file.block(63).is_err());
        let empty = filled(0, Some(tempfile::tempfile));
        assert_eq!(empty.len(), 0);
        assert!(empty.file.is_none(), "nothing to write, no file");
    }

    #[test]
    fn a_full_disk_keeps_the_records_in_memory() {
        // Every write to /dev/full fails with ENOSPC, as on a full disk.
        fn full() -> std::io::Result<File> {
            std::fs::OpenOptions::new().write(true).open("/dev/full")
        }
        let b = filled(1_000, Some(full));
        assert!(b.no_file);
        assert_eq!(b.in_file, 0);
        assert_eq!(all(&b), records(1_000));
    }

    #[test]
    fn damaged_blocks_are_errors_never_panics() {
        let good = filled(40, None);
        // Cut at every byte of the first block: its records end in an error.
        let end = good.starts[1] as usize;
        for cut in 0..end {
            let mut b = filled(40, None);
            b.memory.truncate(cut);
            b.starts = vec![0, cut as u64];
            let block = b.block(0).unwrap();
            assert!(block.records().any(|r| r.is_err()), "cut at {cut}");
        }
        // A file cut short under the records.
        let b = filled(1_000, Some(tempfile::tempfile));
        b.file.as_ref().unwrap().set_len(100).unwrap();
        assert!(b.record(999).is_err());
        // Any byte changed: records or an error.
        for at in 0..end.min(400) {
            for byte in [0x00, 0x7f, 0x80, 0xff] {
                let mut b = filled(40, None);
                b.memory[at] = byte;
                for r in b.block(0).unwrap().records() {
                    let _ = r;
                }
            }
        }
    }
}
