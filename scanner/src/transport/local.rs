//! `transport: local`: the same probe script, run on this machine without SSH.
//!
//! This is the zero-setup first run (`fleetsweep scan --local`) and the agent-side
//! use inside CI images.

use std::process::Stdio;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{ExecOutput, TransportError};

pub struct LocalSession;

impl LocalSession {
    pub async fn exec(
        &mut self,
        command: &str,
        stdin: &[u8],
        limit: usize,
    ) -> Result<ExecOutput, TransportError> {
        let mut child = tokio::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| TransportError::Failed(format!("cannot start /bin/sh: {e}")))?;
        let mut input = child.stdin.take();
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let stdin = stdin.to_vec();
        let feed = async move {
            if let Some(mut w) = input.take() {
                // The script may exit before reading everything; that is not an error.
                let _ = w.write_all(&stdin).await;
            }
        };
        let (_, (stdout, t1), (stderr, t2)) = tokio::join!(
            feed,
            read_capped(out.take(), limit),
            read_capped(err.take(), limit)
        );
        let status = child
            .wait()
            .await
            .map_err(|e| TransportError::Failed(format!("waiting for /bin/sh: {e}")))?;
        Ok(ExecOutput {
            stdout,
            stderr,
            exit_status: status.code().map(|c| c as u32),
            truncated: t1 || t2,
        })
    }
}

/// Reads a stream to its end, keeping at most `limit` bytes.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(
    r: Option<R>,
    limit: usize,
) -> (Vec<u8>, bool) {
    let Some(mut r) = r else {
        return (Vec::new(), false);
    };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buf = [0u8; 16 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = limit.saturating_sub(kept.len());
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}
