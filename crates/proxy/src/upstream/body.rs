//! An answer body read straight off the upstream connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;

use super::chunked::{Decoded, Framing};
use super::{Pool, READ_CHUNK};

/// The body of an upstream answer. Every poll hands on all the body bytes that have arrived
/// (one read, as much as the socket holds), decoded from their framing. When the answer
/// ends cleanly the connection goes back to the pool (if it may be kept alive); when the body
/// is dropped before that, the connection is closed.
pub(crate) struct UpstreamBody {
    stream: Option<TcpStream>,
    buf: BytesMut,
    framing: Framing,
    pool: Option<Arc<Pool>>,
    /// A failure seen but not yet reported (see [`UpstreamBody::fail`]).
    error: Option<io::Error>,
}

impl UpstreamBody {
    /// The body that follows a head on `stream`; `buf` holds the bytes read past the head.
    pub(crate) fn new(
        stream: TcpStream,
        buf: BytesMut,
        framing: Framing,
        pool: Option<Arc<Pool>>,
    ) -> Self {
        let mut b = UpstreamBody {
            stream: Some(stream),
            buf,
            framing,
            pool,
            error: None,
        };
        if b.framing == Framing::Done {
            b.release();
        }
        b
    }

    /// The answer ended: the connection is reused only when nothing followed the body.
    fn release(&mut self) {
        if let (Some(s), Some(pool)) = (self.stream.take(), self.pool.take()) {
            if self.buf.is_empty() {
                pool.put_back(s);
            }
        }
    }

    /// The answer broke. The error is reported at the next poll, not now: hyper drops what
    /// it has not yet written when a body fails, and data handed on in this same wake-up
    /// (often the last tokens before the break) would be lost to the client. Answering
    /// `Pending` once lets it flush them first.
    fn fail(
        &mut self,
        cx: &mut Context<'_>,
        kind: io::ErrorKind,
        msg: String,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.stream = None;
        self.buf.clear();
        self.error = Some(io::Error::new(kind, msg));
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// What one decoding pass over the bytes read so far found.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Body data, with more to come.
    Data(Bytes),
    /// The body ended, with its last data if any.
    End(Option<Bytes>),
    /// Nothing to hand on yet: read more.
    Read,
}

/// Decodes what `buf` holds of the body (a [`UpstreamBody`] poll before it reads).
pub(super) fn step(framing: &mut Framing, buf: &mut BytesMut) -> Result<Step, String> {
    let mut out = BytesMut::new();
    Ok(match framing.decode(buf, &mut out)? {
        Decoded::End => Step::End((!out.is_empty()).then(|| out.freeze())),
        Decoded::More if !out.is_empty() => Step::Data(out.freeze()),
        Decoded::More => Step::Read,
    })
}

/// The upstream closed the connection: the end of a body that runs until close, an error
/// for any other framing.
pub(super) fn closed(framing: &mut Framing) -> Result<(), String> {
    if *framing == Framing::UntilClose {
        *framing = Framing::Done;
        Ok(())
    } else {
        Err("the upstream closed the connection before the answer was complete".into())
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = self.get_mut();
        if let Some(e) = this.error.take() {
            this.framing = Framing::Done;
            return Poll::Ready(Some(Err(e)));
        }
        loop {
            match step(&mut this.framing, &mut this.buf) {
                Err(e) => return this.fail(cx, io::ErrorKind::InvalidData, e),
                Ok(Step::End(last)) => {
                    this.release();
                    return Poll::Ready(last.map(|d| Ok(Frame::data(d))));
                }
                Ok(Step::Data(d)) => return Poll::Ready(Some(Ok(Frame::data(d)))),
                Ok(Step::Read) => {}
            }
            let Some(s) = this.stream.as_mut() else {
                return Poll::Ready(None);
            };
            if this.buf.capacity() - this.buf.len() < 1024 {
                this.buf.reserve(READ_CHUNK);
            }
            // poll_read (not try_read) so that a short read marks the socket drained and the
            // next poll waits for readiness instead of paying for a read that would block.
            match ready!(tokio_util::io::poll_read_buf(
                Pin::new(s),
                cx,
                &mut this.buf
            )) {
                Ok(0) => match closed(&mut this.framing) {
                    Ok(()) => {
                        this.stream = None;
                        return Poll::Ready(None);
                    }
                    Err(e) => return this.fail(cx, io::ErrorKind::UnexpectedEof, e),
                },
                Ok(_) => {}
                Err(e) => {
                    return this.fail(cx, e.kind(), format!("reading the upstream's answer: {e}"))
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
