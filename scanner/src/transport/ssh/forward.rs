//! A channel through a bastion, as the byte stream a target's SSH session
//! runs over, that never makes the bastion connection wait for the target.
//!
//! russh reads a connection in one loop and hands each channel's messages to
//! a queue of [`super::CHANNEL_BUFFER_MESSAGES`], waiting while it is full;
//! writes from every channel go out through one queue of ten the same loop
//! drains. With russh's own stream over a bastion channel, a target session
//! that is busy writing (that shared queue full) stops reading its channel,
//! its queue fills, and the bastion's read loop waits on it: the loop that
//! would have drained the writes. Every host on that bastion connection then
//! stalls until its host timeout, and the connection can no longer even be
//! closed. The more hosts share a connection and the busier the machine, the
//! likelier it is.
//!
//! Here a task per channel takes each message as it arrives and keeps it for
//! the target session, so the bastion's loop never waits on one. What it
//! keeps is bounded by SSH flow control: a target sends no more than its
//! channel window (2 MiB) ahead of what its session has read. A peer that
//! sends past [`MAX_AHEAD`] anyway has its channel closed and its session
//! fails with an error that says so: one host, never the bastion connection.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use russh::client::Msg;
use russh::{Channel, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// Bytes a forwarded channel may hold that its session has not read: four
/// windows of a well-behaved peer.
pub const MAX_AHEAD: usize = 8 << 20;

/// How long the close of a channel its session let go of may wait for the
/// bastion connection (a connection that is gone fails at once).
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// What the channel's task hands to the session.
enum Piece {
    Data(Bytes),
    /// The far end will send no more (a read then returns end of file).
    Eof,
    /// The peer sent more than [`MAX_AHEAD`] ahead of the session; the
    /// channel is closed.
    Overflow,
}

/// The session's end of a forwarded channel: read what the channel's task
/// kept, write straight to the channel (russh's writer, within the channel's
/// window). Dropping it closes the channel.
pub struct Forwarded {
    from: mpsc::UnboundedReceiver<Piece>,
    chunk: Bytes,
    eof: bool,
    /// Bytes received and not yet read, shared with the channel's task.
    ahead: Arc<AtomicUsize>,
    to: Pin<Box<dyn AsyncWrite + Send + Sync>>,
    /// `host:port` the channel goes to, for messages.
    destination: Arc<str>,
}

/// Takes over `channel` (a `direct-tcpip` channel to `destination`): a task
/// drains it from now on.
pub fn forwarded(channel: Channel<Msg>, destination: &str) -> Forwarded {
    let (read, write) = channel.split();
    let (keep, from) = mpsc::unbounded_channel();
    let ahead = Arc::new(AtomicUsize::new(0));
    let to = Box::pin(write.make_writer());
    tokio::spawn(drain(read, write, keep, Arc::clone(&ahead)));
    Forwarded {
        from,
        chunk: Bytes::new(),
        eof: false,
        ahead,
        to,
        destination: destination.into(),
    }
}

/// How a channel's draining ended.
enum Ending {
    /// The peer closed the channel, or the bastion connection is gone: russh
    /// has already answered and forgotten the channel.
    Closed,
    /// The target's session let go of the channel.
    SessionGone,
    /// The peer sent more than [`MAX_AHEAD`] ahead of the session.
    Overflow,
}

/// Takes each message of the channel as it arrives, until the channel is
/// closed, the session lets go of it, or the peer overflows it; then has the
/// channel closed (see [`let_go`]).
async fn drain(
    mut read: ChannelReadHalf,
    write: ChannelWriteHalf<Msg>,
    keep: mpsc::UnboundedSender<Piece>,
    ahead: Arc<AtomicUsize>,
) {
    let mut eof = false;
    let ending = loop {
        let msg = tokio::select! {
            msg = read.wait() => msg,
            () = keep.closed() => break Ending::SessionGone,
        };
        match msg {
            Some(ChannelMsg::Data { data }) if !eof => {
                let n = data.len();
                if ahead.fetch_add(n, Ordering::AcqRel) + n > MAX_AHEAD {
                    let _ = keep.send(Piece::Overflow);
                    break Ending::Overflow;
                }
                if keep.send(Piece::Data(data)).is_err() {
                    break Ending::SessionGone;
                }
            }
            Some(ChannelMsg::Eof) if !eof => {
                eof = true;
                let _ = keep.send(Piece::Eof);
            }
            Some(ChannelMsg::Close) | None => break Ending::Closed,
            // Window adjustments, data after EOF, requests: nothing for the session.
            Some(_) => {}
        }
    };
    drop(keep);
    match ending {
        Ending::Closed => {}
        Ending::SessionGone => let_go(read, write).await,
        Ending::Overflow => {
            drop(read);
            let _ = tokio::time::timeout(CLOSE_WAIT, write.close()).await;
        }
    }
}

/// How long a channel its session let go of waits for the peer to close it
/// (after our EOF) before closing it from this end.
const PEER_CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Closes a channel its session let go of, so that the bastion connection
/// forgets it. russh (0.65) drops its record of a channel, and the queue
/// that goes with it (about 2 KiB), only when the peer closes first: a
/// channel closed from this end stays recorded until the connection ends,
/// which through one bastion connection is every host of the sweep (2.2 KiB
/// a host, 220 MiB at 100,000 hosts). So this end sends EOF (the bastion
/// then shuts the target's socket for writing, and the target's sshd, whose
/// session has sent its goodbye or sees the end of its input, exits) and
/// waits for the peer's close, reading what still arrives; only a peer that
/// does not close within [`PEER_CLOSE_WAIT`] is closed from here.
async fn let_go(mut read: ChannelReadHalf, write: ChannelWriteHalf<Msg>) {
    let _ = tokio::time::timeout(CLOSE_WAIT, write.eof()).await;
    let peer_closed = tokio::time::timeout(PEER_CLOSE_WAIT, async {
        while !matches!(read.wait().await, Some(ChannelMsg::Close) | None) {}
    })
    .await
    .is_ok();
    drop(read);
    if !peer_closed {
        let _ = tokio::time::timeout(CLOSE_WAIT, write.close()).await;
    }
}

impl AsyncRead for Forwarded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.chunk.is_empty() {
                let n = this.chunk.len().min(buf.remaining());
                buf.put_slice(&this.chunk.split_to(n));
                this.ahead.fetch_sub(n, Ordering::AcqRel);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.from.poll_recv(cx)) {
                Some(Piece::Data(data)) => this.chunk = data,
                Some(Piece::Eof) | None => this.eof = true,
                Some(Piece::Overflow) => {
                    return Poll::Ready(Err(io::Error::other(format!(
                        "{} sent more than {} MiB through the bastion ahead of what its SSH session had read (past SSH flow control): channel closed",
                        this.destination,
                        MAX_AHEAD >> 20
                    ))))
                }
            }
        }
    }
}

impl AsyncWrite for Forwarded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().to.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().to.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().to.as_mut().poll_shutdown(cx)
    }
}
