//! The response body: a whole buffer, or a token stream that is a state machine polled by
//! hyper directly (no channel, no task per request). Each token is returned as its own
//! frame, so hyper writes it as its own chunk and flushes it whenever the next token is not
//! ready yet.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::stats::Tracker;
use crate::wire::{Plan, Times};

type PollFrame = Poll<Option<Result<Frame<Bytes>, io::Error>>>;

/// Every response body the mock sends.
#[derive(Debug)]
pub(crate) struct MockBody {
    kind: Kind,
    /// Set for generation requests; settled (completed, aborted, or cancelled on drop) here.
    tracker: Option<Tracker>,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    /// Sends `data` (with a `Content-Length` of `full_len`), then aborts the connection.
    Truncated {
        data: Option<Bytes>,
        full_len: u64,
        yielded: bool,
    },
    Stream(Box<TokenStream>),
}

impl MockBody {
    /// A complete body; the request (if tracked) counts as completed once it is handed over.
    pub(crate) fn full(data: impl Into<Bytes>, tracker: Option<Tracker>) -> MockBody {
        MockBody {
            kind: Kind::Full(Some(data.into())),
            tracker,
        }
    }

    /// Declares `full`'s length, sends its first half, then aborts (`die-after` on a
    /// non-streamed reply).
    pub(crate) fn truncated(full: Bytes, tracker: Tracker) -> MockBody {
        MockBody {
            kind: Kind::Truncated {
                full_len: full.len() as u64,
                data: Some(full.slice(..full.len() / 2)),
                yielded: false,
            },
            tracker: Some(tracker),
        }
    }

    pub(crate) fn stream(stream: TokenStream, tracker: Tracker) -> MockBody {
        MockBody {
            kind: Kind::Stream(Box::new(stream)),
            tracker: Some(tracker),
        }
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> PollFrame {
        let this = self.get_mut();
        match &mut this.kind {
            Kind::Full(data) => match data.take() {
                Some(bytes) => {
                    if let Some(t) = &mut this.tracker {
                        t.complete();
                    }
                    Poll::Ready(Some(Ok(Frame::data(bytes))))
                }
                None => Poll::Ready(None),
            },
            Kind::Truncated { data, yielded, .. } => {
                if let Some(bytes) = data.take() {
                    return Poll::Ready(Some(Ok(Frame::data(bytes))));
                }
                die(yielded, cx, &mut this.tracker)
            }
            Kind::Stream(s) => s.poll_frame(cx, &mut this.tracker),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(data) => data.is_none(),
            Kind::Truncated { .. } => false,
            Kind::Stream(s) => matches!(s.phase, Phase::Done),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Truncated { full_len, .. } => SizeHint::with_exact(*full_len),
            Kind::Stream(_) => SizeHint::default(),
        }
    }
}

/// Aborts the connection, after yielding once so that hyper flushes what it has buffered
/// (it drops its write buffer when a body fails).
fn die(yielded: &mut bool, cx: &mut Context<'_>, tracker: &mut Option<Tracker>) -> PollFrame {
    if !*yielded {
        *yielded = true;
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    if let Some(t) = tracker {
        t.abort();
    }
    Poll::Ready(Some(Err(io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "infermon-mockllm: die-after fault",
    ))))
}

/// How a stream ends early, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Send every token.
    Never,
    /// `hang-after:K`
    Hang(usize),
    /// `die-after:K`
    Die(usize),
}

#[derive(Debug)]
enum Phase {
    Tokens,
    Stalled,
    Dying { yielded: bool },
    Tail(usize),
    Done,
}

/// A streamed reply: `plan.tokens` token frames on the ttft / itl schedule, then the tail.
#[derive(Debug)]
pub(crate) struct TokenStream {
    plan: Plan,
    times: Times,
    first: Bytes,
    token: Bytes,
    sent: usize,
    stop: Stop,
    malformed_at: Option<usize>,
    itl: Duration,
    /// When the next token is due; tokens are scheduled on a fixed grid from `first_due`,
    /// so timer lateness does not accumulate.
    next_due: Instant,
    wait_first: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    phase: Phase,
}

impl TokenStream {
    pub(crate) fn new(
        plan: Plan,
        times: Times,
        ttft: Duration,
        itl: Duration,
        stop: Stop,
        malformed: bool,
    ) -> TokenStream {
        let n = plan.tokens;
        TokenStream {
            first: plan.token_frame(true),
            token: plan.token_frame(false),
            malformed_at: malformed.then(|| if n == 0 { 0 } else { (n / 2).max(1) }),
            next_due: times.first_due,
            wait_first: !ttft.is_zero(),
            plan,
            times,
            sent: 0,
            stop,
            itl,
            sleep: None,
            phase: Phase::Tokens,
        }
    }

    /// Waits until `next_due` if the schedule asks for a wait.
    fn poll_due(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let wait = if self.sent == 0 {
            self.wait_first
        } else {
            !self.itl.is_zero()
        };
        if !wait || self.next_due <= Instant::now() {
            return Poll::Ready(());
        }
        let due = self.next_due;
        let sleep = match &mut self.sleep {
            Some(s) => {
                if s.deadline() != due {
                    s.as_mut().reset(due);
                }
                s
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(due))),
        };
        sleep.as_mut().poll(cx)
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>, tracker: &mut Option<Tracker>) -> PollFrame {
        loop {
            match &mut self.phase {
                Phase::Tokens => {
                    if self.malformed_at == Some(self.sent) {
                        self.malformed_at = None;
                        return Poll::Ready(Some(Ok(Frame::data(self.plan.malformed_frame()))));
                    }
                    match self.stop {
                        Stop::Hang(k) if self.sent >= k => {
                            self.phase = Phase::Stalled;
                            continue;
                        }
                        Stop::Die(k) if self.sent >= k => {
                            self.phase = Phase::Dying { yielded: false };
                            continue;
                        }
                        _ => {}
                    }
                    let n = self.plan.tokens;
                    if self.sent >= n && n > 0 {
                        self.phase = Phase::Tail(0);
                        continue;
                    }
                    // With no tokens at all the tail still waits for the first token's time.
                    if self.poll_due(cx).is_pending() {
                        return Poll::Pending;
                    }
                    if n == 0 {
                        self.phase = Phase::Tail(0);
                        continue;
                    }
                    let frame = if self.sent == 0 {
                        self.first.clone()
                    } else {
                        self.token.clone()
                    };
                    self.sent += 1;
                    self.next_due += self.itl;
                    if let Some(t) = tracker {
                        t.add_tokens(1);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(frame))));
                }
                // Never woken: only the client going away (which drops this body) ends it.
                Phase::Stalled => return Poll::Pending,
                Phase::Dying { yielded } => {
                    let out = die(yielded, cx, tracker);
                    if out.is_ready() {
                        self.phase = Phase::Done;
                    }
                    return out;
                }
                Phase::Tail(i) => {
                    let i = *i;
                    return match self.plan.tail_frame(i, self.sent, &self.times) {
                        Some((frame, last)) => {
                            if last {
                                self.phase = Phase::Done;
                                if let Some(t) = tracker {
                                    t.complete();
                                }
                            } else {
                                self.phase = Phase::Tail(i + 1);
                            }
                            Poll::Ready(Some(Ok(Frame::data(frame))))
                        }
                        None => {
                            self.phase = Phase::Done;
                            Poll::Ready(None)
                        }
                    };
                }
                Phase::Done => return Poll::Ready(None),
            }
        }
    }
}
