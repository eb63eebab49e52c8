//! What one client may hold of the server: connections are bounded, and a
//! connection that does not send its request, or does not read its answer,
//! is closed.
//!
//! Without these, slow clients were enough to take `serve` down: a thousand
//! connections trickling header bytes stayed open forever (slowloris), each
//! a file descriptor and a task, with no bound on their number.
//!
//! - [`Bounded`] wraps the make-service axum-server calls for each accepted
//!   connection: it waits for a free slot before the accept loop goes on, so
//!   beyond the bound new connections wait in the kernel's backlog (and are
//!   served once others close) instead of being accepted unboundedly.
//! - [`Watched`] wraps each connection's stream (after TLS): the first bytes
//!   must arrive within the header timeout (hyper's own `header_read_timeout`
//!   only starts once it knows the protocol, and hyper-util waits for that
//!   forever), HTTP/2 prior knowledge is refused (only HTTP/1.1 is served,
//!   which is what ALPN offers), and a write that makes no progress for
//!   [`WRITE_STALL`] fails. hyper's `header_read_timeout` does the rest:
//!   request headers, and idle keep-alive connections.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// A client that reads nothing of an answer for this long is disconnected.
pub(super) const WRITE_STALL: Duration = Duration::from_secs(30);

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A make-service that hands out at most `max` connection services at once.
pub(super) struct Bounded<S> {
    inner: S,
    slots: Arc<Semaphore>,
    max: usize,
    /// Waiting for a slot (the accept loop waits with it).
    waiting: Option<BoxFuture<'static, Result<OwnedSemaphorePermit, AcquireError>>>,
    /// The slot of the next connection.
    ready: Option<OwnedSemaphorePermit>,
}

impl<S> Bounded<S> {
    pub(super) fn new(inner: S, max: usize) -> Bounded<S> {
        let max = max.max(1);
        Bounded {
            inner,
            slots: Arc::new(Semaphore::new(max)),
            max,
            waiting: None,
            ready: None,
        }
    }
}

impl<S: Clone> tower_service::Service<SocketAddr> for Bounded<S> {
    type Response = Held<S>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Held<S>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.ready.is_some() {
            return Poll::Ready(Ok(()));
        }
        let waiting = match &mut self.waiting {
            Some(w) => w,
            None => match self.slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    self.ready = Some(permit);
                    return Poll::Ready(Ok(()));
                }
                Err(_) => {
                    tracing::warn!(
                        limit = self.max,
                        "every connection slot is taken (--web.max-connections); new connections wait until one closes"
                    );
                    let slots = self.slots.clone();
                    self.waiting
                        .insert(Box::pin(async move { slots.acquire_owned().await }))
                }
            },
        };
        let acquired = ready!(waiting.as_mut().poll(cx));
        self.waiting = None;
        // The semaphore is never closed; were it, the connection would go unbounded rather than the server stop.
        self.ready = acquired.ok();
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _peer: SocketAddr) -> Self::Future {
        std::future::ready(Ok(Held {
            inner: self.inner.clone(),
            _slot: self.ready.take().map(Arc::new),
        }))
    }
}

/// One connection's service: its slot is free again once the connection
/// and every request on it are done (the last clone dropped).
#[derive(Clone)]
pub(super) struct Held<S> {
    inner: S,
    _slot: Option<Arc<OwnedSemaphorePermit>>,
}

impl<S, R> tower_service::Service<R> for Held<S>
where
    S: tower_service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> S::Future {
        self.inner.call(req)
    }
}

/// An acceptor (plain or TLS) whose streams are [`Watched`].
#[derive(Clone)]
pub(super) struct Watching<A> {
    inner: A,
    first_bytes: Duration,
}

impl<A> Watching<A> {
    pub(super) fn new(inner: A, first_bytes: Duration) -> Watching<A> {
        Watching { inner, first_bytes }
    }
}

impl<I, S, A> axum_server::accept::Accept<I, S> for Watching<A>
where
    A: axum_server::accept::Accept<I, S>,
    A::Future: Send + 'static,
    A::Stream: Send + 'static,
    A::Service: Send + 'static,
{
    type Stream = Watched<A::Stream>;
    type Service = A::Service;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        let accepted = self.inner.accept(stream, service);
        let first_bytes = self.first_bytes;
        Box::pin(async move {
            let (stream, service) = accepted.await?;
            Ok((Watched::new(stream, first_bytes, WRITE_STALL), service))
        })
    }
}

/// A connection's stream with deadlines on what hyper cannot bound itself.
pub(super) struct Watched<T> {
    io: T,
    /// Until the protocol is known: the deadline for it, and how many bytes
    /// of the HTTP/2 preface were seen so far.
    opening: Option<(Pin<Box<Sleep>>, usize)>,
    /// Since when a write has been pending.
    stalled: Option<Pin<Box<Sleep>>>,
    /// How long a write may stay pending.
    write_stall: Duration,
}

impl<T> Watched<T> {
    pub(super) fn new(io: T, first_bytes: Duration, write_stall: Duration) -> Watched<T> {
        Watched {
            io,
            opening: Some((Box::pin(tokio::time::sleep(first_bytes)), 0)),
            stalled: None,
            write_stall,
        }
    }

    /// Bytes just read while the protocol was not yet known.
    fn opened(&mut self, new: &[u8]) -> io::Result<()> {
        let Some((_, seen)) = &mut self.opening else {
            return Ok(());
        };
        if new.is_empty() {
            return Ok(());
        }
        let end = (*seen + new.len()).min(H2_PREFACE.len());
        if new[..end - *seen] != H2_PREFACE[*seen..end] {
            // HTTP/1: from here on hyper's header timeout applies.
            self.opening = None;
            return Ok(());
        }
        *seen = end;
        if end == H2_PREFACE.len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "HTTP/2 is not served; use HTTP/1.1",
            ));
        }
        Ok(())
    }

    /// A write, flush or shutdown of `io` that stays pending fails once it
    /// has for `write_stall`; any that completes resets the clock.
    fn watch_write<R>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut T>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>>
    where
        T: Unpin,
    {
        let polled = op(Pin::new(&mut self.io), cx);
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let after = self.write_stall;
        let stall = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        if stall.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client read nothing of the answer for {after:?}"),
            )));
        }
        Poll::Pending
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => Poll::Ready(this.opened(&buf.filled()[before..])),
            Poll::Pending => {
                if let Some((deadline, _)) = &mut this.opening {
                    if deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "no HTTP request within the header timeout",
                        )));
                    }
                }
                Poll::Pending
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.watch_write(cx, |io, cx| io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.watch_write(cx, |io, cx| io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.watch_write(cx, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.watch_write(cx, |io, cx| io.poll_shutdown(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened(chunks: &[&[u8]]) -> (io::Result<()>, bool) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        let Ok(rt) = rt else { panic!("no runtime") };
        rt.block_on(async {
            let mut w = Watched::new((), Duration::from_secs(1), WRITE_STALL);
            let mut r = Ok(());
            for c in chunks {
                r = w.opened(c);
                if r.is_err() {
                    break;
                }
            }
            (r, w.opening.is_some())
        })
    }

    #[test]
    fn http1_opens_at_its_first_byte_and_h2_prior_knowledge_is_refused() {
        let (r, still_opening) = opened(&[b"GET /healthz HTTP/1.1\r\n"]);
        assert!(r.is_ok() && !still_opening);
        // POST and PRI share a first byte: decided at the second.
        let (r, still_opening) = opened(&[b"P", b"OST / HTTP/1.1"]);
        assert!(r.is_ok() && !still_opening);
        // The preface trickled byte by byte stays under the deadline...
        let chunks: Vec<&[u8]> = H2_PREFACE[..23].chunks(1).collect();
        let (r, still_opening) = opened(&chunks);
        assert!(r.is_ok() && still_opening);
        // ...and once complete, is refused.
        let (r, _) = opened(&[H2_PREFACE]);
        assert_eq!(r.map_err(|e| e.kind()), Err(io::ErrorKind::InvalidData));
    }

    /// A client that stops reading: the answer's writes fail after the
    /// stall time instead of holding the connection; one that reads, however
    /// slowly, is not cut off.
    #[tokio::test]
    async fn a_client_that_reads_nothing_is_cut_off() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let stall = Duration::from_millis(300);
        let (server, _client) = tokio::io::duplex(64);
        let mut w = Watched::new(server, Duration::from_secs(1), stall);
        let start = std::time::Instant::now();
        let err = w.write_all(&[b'x'; 4096]).await.map_err(|e| e.kind());
        assert_eq!(err, Err(io::ErrorKind::TimedOut));
        assert!(start.elapsed() >= stall && start.elapsed() < stall * 5);

        let (server, mut client2) = tokio::io::duplex(64);
        let mut w = Watched::new(server, Duration::from_secs(1), stall);
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            let mut got = 0;
            while got < 4096 {
                tokio::time::sleep(Duration::from_millis(10)).await;
                got += client2.read(&mut buf).await.unwrap_or(0);
            }
            got
        });
        assert!(w.write_all(&[b'x'; 4096]).await.is_ok());
        assert_eq!(reader.await.ok(), Some(4096));
    }
}
