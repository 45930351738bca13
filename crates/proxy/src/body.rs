//! The answer body on its way to the client, measured as it passes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use infermon_model::request::RequestRecord;
use infermon_reqmeter::{End, Meter};
use tokio::time::Sleep;

use crate::upstream::UpstreamBody;
use crate::RecordSink;

/// Error type of the bodies the proxy sends.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Fills in what the meter does not know and hands the record to the sink.
pub(crate) struct Recorder {
    pub sink: Arc<dyn RecordSink>,
    pub upstream: Arc<str>,
    pub ts_unix_ms: i64,
    pub request_body: Option<String>,
}

impl Recorder {
    pub(crate) fn send(self, mut r: RequestRecord) {
        r.ts_unix_ms = self.ts_unix_ms;
        r.request_body = self.request_body;
        self.sink.record(r);
    }
}

/// An upstream answer passing through a [`Meter`]. Dropping it before the end (the client went
/// away) drops the upstream body, which closes that connection, and records the request as
/// cancelled, or as complete when the answer's terminal event had already passed (the meter
/// decides: see [`End::ClientGone`]).
pub(crate) struct MeteredBody {
    inner: UpstreamBody,
    meter: Option<(Meter, Recorder)>,
    idle: Pin<Box<Sleep>>,
    idle_timeout: Duration,
    tail: Option<Bytes>,
}

impl MeteredBody {
    pub(crate) fn new(
        inner: UpstreamBody,
        meter: Meter,
        rec: Recorder,
        idle_timeout: Duration,
    ) -> Self {
        MeteredBody {
            inner,
            meter: Some((meter, rec)),
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
            tail: None,
        }
    }

    fn finish(&mut self, end: End) {
        if let Some((m, rec)) = self.meter.take() {
            let r = m.finish(end, Instant::now(), &rec.upstream);
            rec.send(r);
        }
    }
}

impl Body for MeteredBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(t) = this.tail.take() {
            return Poll::Ready(Some(Ok(Frame::data(t))));
        }
        if this.meter.is_none() && this.inner.is_end_stream() {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let now = Instant::now();
                    this.idle.as_mut().reset((now + this.idle_timeout).into());
                    let data = match frame.into_data() {
                        Ok(d) => d,
                        Err(other) => return Poll::Ready(Some(Ok(other))),
                    };
                    let Some((m, _)) = this.meter.as_mut() else {
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    };
                    let out = match m.on_data(&data, now) {
                        None => Some(data),
                        Some(v) if v.is_empty() => None,
                        Some(v) => Some(Bytes::from(v)),
                    };
                    // A body whose length was known ends with its last byte: the server stops
                    // polling there, so the request is finished now, not when it is dropped.
                    if this.inner.is_end_stream() {
                        let tail = this.meter.as_mut().and_then(|(m, _)| m.flush(now));
                        this.finish(End::Complete);
                        match (out, tail) {
                            (Some(o), Some(t)) => {
                                this.tail = Some(Bytes::from(t));
                                return Poll::Ready(Some(Ok(Frame::data(o))));
                            }
                            (Some(o), None) => return Poll::Ready(Some(Ok(Frame::data(o)))),
                            (None, Some(t)) => {
                                return Poll::Ready(Some(Ok(Frame::data(Bytes::from(t)))))
                            }
                            (None, None) => return Poll::Ready(None),
                        }
                    }
                    match out {
                        Some(o) => return Poll::Ready(Some(Ok(Frame::data(o)))),
                        None => continue,
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    let why = format!("upstream body broke: {e}");
                    this.finish(End::UpstreamFailed(why));
                    return Poll::Ready(Some(Err(Box::new(e))));
                }
                Poll::Ready(None) => {
                    let now = Instant::now();
                    let tail = this.meter.as_mut().and_then(|(m, _)| m.flush(now));
                    this.finish(End::Complete);
                    return Poll::Ready(tail.map(|t| Ok(Frame::data(Bytes::from(t)))));
                }
                Poll::Pending => {
                    if this.idle.as_mut().poll(cx).is_ready() {
                        let why = format!(
                            "upstream sent nothing for {} s mid-answer",
                            this.idle_timeout.as_secs_f64()
                        );
                        this.finish(End::Timeout(why.clone()));
                        return Poll::Ready(Some(Err(why.into())));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.tail.is_none() && self.meter.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.meter.as_ref().is_some_and(|(m, _)| m.rewrites()) {
            SizeHint::default()
        } else {
            self.inner.size_hint()
        }
    }
}

impl Drop for MeteredBody {
    fn drop(&mut self) {
        self.finish(End::ClientGone);
    }
}
