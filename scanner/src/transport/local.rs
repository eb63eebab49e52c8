//! `transport: local`: the same probe script, run on this machine without SSH.
//!
//! This is the zero-setup first run (`fleetsweep scan --local`) and the agent-side
//! use inside CI images. Output is held within `--max-output` as for SSH (see
//! [`super::capture`]); a command that keeps writing past the cap is killed.

use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::capture::Capture;
use super::{ExecOutput, TransportError};

pub struct LocalSession;

/// Bytes read from a pipe at once.
const READ_CHUNK: usize = 16 * 1024;

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
        let input = child.stdin.take();
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let mut feed = Box::pin(async move {
            if let Some(mut w) = input {
                // The script may exit before reading everything; that is not an error.
                let _ = w.write_all(stdin).await;
            }
        });
        let mut feeding = true;
        let mut capture = Capture::new(limit);
        let mut out_buf = vec![0u8; READ_CHUNK];
        let mut err_buf = vec![0u8; READ_CHUNK];
        let mut cut_off = false;
        while out.is_some() || err.is_some() {
            if capture.exhausted() {
                cut_off = true;
                break;
            }
            let deadline = capture.drain_deadline();
            tokio::select! {
                () = &mut feed, if feeding => feeding = false,
                n = read_some(&mut out, &mut out_buf), if out.is_some() => match n {
                    Some(n) => capture.stdout(out_buf.get(..n).unwrap_or_default()),
                    None => out = None,
                },
                n = read_some(&mut err, &mut err_buf), if err.is_some() => match n {
                    Some(n) => capture.stderr(err_buf.get(..n).unwrap_or_default()),
                    None => err = None,
                },
                () = sleep_until(deadline), if deadline.is_some() => {
                    cut_off = true;
                    break;
                }
            }
        }
        if cut_off {
            tracing::debug!(
                bytes = capture.seen(),
                "local command kept writing past the output cap; killed"
            );
            // Our ends of the pipes go too: whatever the shell started gets EPIPE.
            drop(out);
            drop(err);
            let _ = child.start_kill();
        }
        // Closes stdin if the command ended without reading all of it.
        drop(feed);
        let status = child
            .wait()
            .await
            .map_err(|e| TransportError::Failed(format!("waiting for /bin/sh: {e}")))?;
        let code = if cut_off { None } else { status.code() };
        Ok(capture.finish(code.map(|c| c as u32), cut_off))
    }
}

/// Reads once; None at the end of the stream (or on a read error).
async fn read_some<R: AsyncRead + Unpin>(r: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    let reader = r.as_mut()?;
    match reader.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
