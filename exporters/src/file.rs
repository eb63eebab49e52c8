//! Atomic file output: readers (node_exporter, a CI job, a human with `tail`)
//! never see a half-written file, even if the sweep is killed mid-write.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` through a temporary file in the same directory,
/// fsync, then rename(2) over the target.
///
/// The file gets the mode a plain `create` would give it: an existing
/// target's mode is kept, a new file is 0644 (the temporary file starts as
/// 0600, and node_exporter, which usually runs as its own user, could not
/// read a textfile written by root with that mode). Restrict the directory
/// if the reports must stay private.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// [`write_atomic`] for output written as it is produced: `fill` writes the
/// file's content to a buffered writer over the temporary file, so a large
/// report never has to be one string in memory. If `fill` fails the target
/// is left as it was.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write(path, fill).map_err(explain)
}

/// A full disk or quota said in the user's terms ("No space left on device
/// (os error 28)" does not say what to do); callers name the file.
pub fn explain(e: std::io::Error) -> std::io::Error {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    let message = match e.raw_os_error() {
        Some(ENOSPC) => "the disk is full (no space left on device): free space on it or write the file elsewhere",
        Some(EDQUOT) => "the disk quota is exceeded: free space in your quota or write the file elsewhere",
        _ => return e,
    };
    std::io::Error::new(e.kind(), message)
}

fn write(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    {
        let mut out = std::io::BufWriter::with_capacity(64 * 1024, tmp.as_file_mut());
        fill(&mut out)?;
        out.flush()?;
    }
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_full_disk_is_said_plainly() {
        let e = explain(std::io::Error::from_raw_os_error(28));
        assert_eq!(
            e.to_string(),
            "the disk is full (no space left on device): free space on it or write the file elsewhere"
        );
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
        let other = explain(std::io::Error::from_raw_os_error(13));
        assert_eq!(other.raw_os_error(), Some(13));
        // /dev/full answers every write with ENOSPC, like a full disk.
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let err = f
            .write_all(b"x")
            .and_then(|()| f.flush())
            .map_err(explain)
            .unwrap_err();
        assert!(err.to_string().starts_with("the disk is full"), "{err}");
    }

    #[test]
    fn new_files_are_world_readable_and_existing_modes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fleetsweep.prom");
        write_atomic(&p, b"a 1\n").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o644, "node_exporter (another user) must read it");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"a 2\n").unwrap();
        assert_eq!(mode(&p), 0o640);
        assert_eq!(std::fs::read(&p).unwrap(), b"a 2\n");
    }
}
