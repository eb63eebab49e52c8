//! The last sweep's report as `/report` serves it, kept out of memory.
//!
//! The YAML of a 100,000-host report is some 27 MB. Held as a string it
//! stayed resident between sweeps, twice over while the next one was
//! rendered, and every `/report` request copied it whole (a few requests at
//! once were a few times that). It is written as it is serialized to an
//! unnamed temporary file (`tempfile`: `O_TMPFILE` where the kernel has it,
//! mode 0600, gone with the last reader even if the daemon is killed) in
//! `$TMPDIR`, else `/tmp`, and each request reads it in chunks as the client
//! takes them. When no file can be had (a read-only or full temporary
//! directory) the page is kept in memory, shared by every request, never
//! copied: a full disk costs memory, never the page.

use std::fs::File;
use std::io::{BufWriter, Seek};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;

use fleetsweep_exporters::yaml::YamlError;
use fleetsweep_exporters::Report;

/// What one read of a file-backed page sends at most: a slow client holds
/// one chunk, whatever the report's size.
const CHUNK: usize = 256 * 1024;

/// A rendered report page.
pub(super) enum Page {
    /// In an unnamed temporary file of `len` bytes, never written again
    /// (shared with the reads under way).
    File { file: Arc<File>, len: u64 },
    /// In memory (no temporary file could be written).
    Memory(Bytes),
}

impl Page {
    /// Renders `report` as YAML: to a temporary file, else in memory.
    pub(super) fn render(report: &Report) -> Result<Page, String> {
        match Page::to_file(report) {
            Ok(page) => Ok(page),
            // The report itself does not serialize: no file would help.
            Err(e) if e.get_ref().is_some_and(|inner| inner.is::<YamlError>()) => {
                Err(e.to_string())
            }
            Err(e) => {
                tracing::warn!(
                    "cannot write the report page to a temporary file ({e}); keeping it in \
                     memory (set TMPDIR to a writable directory with room)"
                );
                fleetsweep_exporters::yaml::to_yaml(report)
                    .map(|y| Page::Memory(Bytes::from(y)))
                    .map_err(|e| e.to_string())
            }
        }
    }

    fn to_file(report: &Report) -> std::io::Result<Page> {
        let mut out = BufWriter::with_capacity(CHUNK, tempfile::tempfile()?);
        fleetsweep_exporters::yaml::write_yaml(report, &mut out)?;
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        let len = file.stream_position()?;
        Ok(Page::File {
            file: Arc::new(file),
            len,
        })
    }

    /// The page's size in bytes (its `Content-Length`).
    pub(super) fn len(&self) -> u64 {
        match self {
            Page::File { len, .. } => *len,
            Page::Memory(b) => b.len() as u64,
        }
    }

    /// The page in chunks, read as they are asked for. The stream holds the
    /// page: a sweep published meanwhile does not cut a response short.
    pub(super) fn chunks(page: Arc<Page>) -> impl Stream<Item = std::io::Result<Bytes>> + Send {
        futures::stream::try_unfold(0u64, move |at| {
            let page = page.clone();
            async move {
                let len = page.len();
                if at >= len {
                    return Ok(None);
                }
                let chunk = match &*page {
                    Page::Memory(b) => b.clone(),
                    Page::File { file, .. } => {
                        let (file, n) = (file.clone(), (len - at).min(CHUNK as u64) as usize);
                        // Off the async threads: a cold page cache or a slow
                        // disk must not stall the other handlers.
                        tokio::task::spawn_blocking(move || read_at(&file, at, n))
                            .await
                            .map_err(std::io::Error::other)??
                    }
                };
                let next = at + chunk.len() as u64;
                Ok(Some((chunk, next)))
            }
        })
    }
}

/// `n` bytes of a page's file from `at` (positioned reads: requests at once
/// do not share a cursor).
fn read_at(file: &File, at: u64, n: usize) -> std::io::Result<Bytes> {
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, at)?;
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a panic is a failed test

    use std::io::Write;

    use futures::TryStreamExt;

    use super::*;

    async fn read(page: Page) -> std::io::Result<Vec<Bytes>> {
        Page::chunks(Arc::new(page)).try_collect().await
    }

    fn file_of(bytes: &[u8]) -> Arc<File> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        Arc::new(f)
    }

    #[tokio::test]
    async fn a_page_is_read_whole_in_bounded_chunks() {
        let text: Vec<u8> = (0..CHUNK * 2 + 1000).map(|i| (i % 251) as u8).collect();
        let chunks = read(Page::File {
            file: file_of(&text),
            len: text.len() as u64,
        })
        .await
        .unwrap();
        assert_eq!(
            chunks.iter().map(Bytes::len).collect::<Vec<_>>(),
            [CHUNK, CHUNK, 1000]
        );
        assert_eq!(chunks.concat(), text);

        let chunks = read(Page::Memory(Bytes::from_static(b"report_version: 1\n")))
            .await
            .unwrap();
        assert_eq!(chunks.concat(), b"report_version: 1\n");
        assert!(read(Page::Memory(Bytes::new())).await.unwrap().is_empty());
        let empty = Page::File {
            file: file_of(b""),
            len: 0,
        };
        assert!(read(empty).await.unwrap().is_empty());
    }

    /// A file cut short under the daemon (a full or meddled-with temporary
    /// directory) ends the answer with an error: never a shorter page
    /// passed off as the whole one.
    #[tokio::test]
    async fn a_page_cut_short_is_an_error_not_a_shorter_page() {
        let text = vec![b'x'; CHUNK + 10];
        let page = Page::File {
            file: file_of(&text),
            len: text.len() as u64 + 5,
        };
        let e = read(page).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    }
}
