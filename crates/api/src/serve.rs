//! Serving the router on a socket with limits a hostile network cannot get around: a cap on
//! connections (one more is answered `503` with `Retry-After` and closed), a time limit on
//! sending a request head (which also closes idle keep-alive connections), limits on the
//! head's size and field count (`431`), a body limit (`413`), and a graceful stop: no new
//! connection, event streams end, other requests finish within the drain time.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use bytes::Bytes;
use http_body_util::Limited;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use crate::ApiError;

/// What a client may ask of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeLimits {
    /// Most connections served at once (default 256).
    pub max_connections: usize,
    /// Longest a client may take to send a request head; a keep-alive connection waiting
    /// for its next request is closed after it too (default 10 s).
    pub header_read_timeout: Duration,
    /// Largest request head, request line included, bytes (default 16 KiB).
    pub max_header_bytes: usize,
    /// Most header fields in a request (default 64).
    pub max_headers: usize,
    /// Largest request body, bytes (default 64 KiB: no route takes a body yet).
    pub max_body_bytes: u64,
    /// After `stop`, how long requests in flight may take to finish (default 5 s).
    pub drain_timeout: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 64 * 1024,
            drain_timeout: Duration::from_secs(5),
        }
    }
}

/// Refused connections answered at once; beyond, a connection is closed unanswered.
const REFUSING_MAX: usize = 512;
/// Longest a refused connection is read from before closing, so the close does not reset the
/// connection before the client reads the 503.
const REFUSE_LINGER: Duration = Duration::from_millis(500);
/// Least time between two log lines of one kind.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` with `limits` until `stop` resolves; then stops accepting,
/// ends event streams, closes idle connections and lets requests in flight finish for up to
/// [`ServeLimits::drain_timeout`] before closing what is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    stop: impl Future<Output = ()>,
) {
    serve_with(listener, router, limits, None, stop).await;
}

/// [`serve`], over TLS when `tls` is given: the handshake must end within the head's time
/// limit; a connection over the cap is closed without an answer (a plain 503 would not be
/// read by a TLS client).
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    tls: Option<infermon_tls::TlsAcceptor>,
    stop: impl Future<Output = ()>,
) {
    let listen = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let log = Arc::new(Logs::new(listen));
    let serving = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusing = Arc::new(Semaphore::new(REFUSING_MAX));
    let (stop_tx, stop_rx) = watch::channel(false);
    let limits = Arc::new(limits);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let tcp = tokio::select! {
            () = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => match a {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors, most likely: pause rather than spin.
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if let Ok(permit) = serving.clone().try_acquire_owned() {
            let conn = Conn {
                router: router.clone(),
                limits: limits.clone(),
                stop: stop_rx.clone(),
                log: log.clone(),
            };
            match &tls {
                None => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(conn.run(tcp, permit))
                }
                Some(acceptor) => conns.spawn(conn.run_tls(acceptor.clone(), tcp, permit)),
            };
            continue;
        }
        log.busy.hit(&log.listen);
        if tls.is_some() {
            drop(tcp);
            continue;
        }
        match refusing.clone().try_acquire_owned() {
            Ok(p) => {
                conns.spawn(refuse(tcp, p));
            }
            Err(_) => drop(tcp),
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = conns.len(),
            "API: requests still in flight after the {} s drain; closing them",
            limits.drain_timeout.as_secs_f64()
        );
        conns.shutdown().await;
    }
}

/// One served connection.
struct Conn {
    router: Router,
    limits: Arc<ServeLimits>,
    stop: watch::Receiver<bool>,
    log: Arc<Logs>,
}

impl Conn {
    async fn run_tls(
        self,
        acceptor: infermon_tls::TlsAcceptor,
        tcp: TcpStream,
        permit: OwnedSemaphorePermit,
    ) {
        let _ = tcp.set_nodelay(true);
        let limit = self.limits.header_read_timeout;
        match tokio::time::timeout(limit, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => self.run(tls, permit).await,
            Ok(Err(e)) => {
                self.log.bad_tls.hit(&self.log.listen);
                tracing::debug!(error = %e, "API: TLS handshake failed");
            }
            Err(_) => self.log.slow_head.hit(&self.log.listen),
        }
    }

    async fn run<IO>(self, io: IO, _permit: OwnedSemaphorePermit)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            router,
            limits,
            mut stop,
            log,
        } = self;
        let (max_body, stop_rx, body_log) = (limits.max_body_bytes, stop.clone(), log.clone());
        let svc = service_fn(move |req: Request<Incoming>| {
            let (router, stop, log) = (router.clone(), stop_rx.clone(), body_log.clone());
            async move {
                Ok::<_, std::convert::Infallible>(answer(router, req, max_body, stop, &log).await)
            }
        });
        let mut b = http1::Builder::new();
        b.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_headers(limits.max_headers)
            .max_header_size(limits.max_header_bytes)
            .keep_alive(true);
        let conn = b.serve_connection(TokioIo::new(io), svc);
        tokio::pin!(conn);
        let res = tokio::select! {
            r = conn.as_mut() => r,
            _ = async { drop(stop.wait_for(|s| *s).await) } => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = res {
            if e.is_timeout() {
                log.slow_head.hit(&log.listen);
            } else if e.is_parse_too_large() {
                log.big_head.hit(&log.listen);
            } else {
                tracing::debug!(error = %e, "API connection ended");
            }
        }
    }
}

/// Routes one request, refusing a body over `max_body` and ending an event stream at stop.
async fn answer(
    router: Router,
    req: Request<Incoming>,
    max_body: u64,
    stop: watch::Receiver<bool>,
    log: &Logs,
) -> Response<Body> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        log.big_body.hit(&log.listen);
        let mut r = ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over the limit of {max_body} bytes"),
        )
        .into_response();
        // The body is never read: the connection cannot carry another request.
        r.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
    let req = req.map(|b| Body::new(Limited::new(b, limit)));
    let Ok(resp) = router.oneshot(req).await;
    let is_stream = resp
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
    if !is_stream {
        return resp;
    }
    resp.map(|body| Body::new(EndAtStop::new(body, stop)))
}

/// A body that ends (cleanly, with the last chunk) when the server stops: event streams never
/// end on their own.
struct EndAtStop {
    inner: Body,
    stopped: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl EndAtStop {
    fn new(inner: Body, mut stop: watch::Receiver<bool>) -> Self {
        EndAtStop {
            inner,
            stopped: Box::pin(async move { drop(stop.wait_for(|s| *s).await) }),
        }
    }
}

impl hyper::body::Body for EndAtStop {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.stopped.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// The whole 503 answer to a connection over the cap.
const BUSY_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 65\r\n\r\n\
{\"error\":\"too many connections to the infermon API, retry later\"}";

/// Answers `503` with `Retry-After: 1` and closes, reading what the client sends for a moment.
async fn refuse(mut tcp: TcpStream, _permit: OwnedSemaphorePermit) {
    let _ = tokio::time::timeout(REFUSE_LINGER, async {
        if tcp.write_all(BUSY_ANSWER).await.is_err() {
            return;
        }
        let _ = tcp.shutdown().await;
        let mut sink = [0_u8; 4096];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The throttled log lines of one server.
struct Logs {
    listen: String,
    busy: Throttled,
    slow_head: Throttled,
    big_head: Throttled,
    big_body: Throttled,
    bad_tls: Throttled,
}

impl Logs {
    fn new(listen: String) -> Self {
        Logs {
            listen,
            busy: Throttled::new("connection cap reached, answering 503", false),
            slow_head: Throttled::new(
                "closed connections that sent no whole request head in time (slow or idle \
                 keep-alive clients)",
                true,
            ),
            big_head: Throttled::new("answered 431 to request heads over the limit", false),
            big_body: Throttled::new("answered 413 to request bodies over the limit", false),
            bad_tls: Throttled::new(
                "closed connections whose TLS handshake failed (plain HTTP, or a client \
                 that does not trust this certificate)",
                false,
            ),
        }
    }
}

/// Logs an event at once, then at most once per [`LOG_EVERY`] with the count since.
struct Throttled {
    what: &'static str,
    quiet: bool,
    last: Mutex<Option<Instant>>,
    since: AtomicU64,
}

impl Throttled {
    fn new(what: &'static str, quiet: bool) -> Self {
        Throttled {
            what,
            quiet,
            last: Mutex::new(None),
            since: AtomicU64::new(0),
        }
    }

    fn hit(&self, listen: &str) {
        let n = self.since.fetch_add(1, Ordering::Relaxed) + 1;
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        self.since.fetch_sub(n, Ordering::Relaxed);
        if self.quiet {
            tracing::info!(listen, count = n, "API: {}", self.what);
        } else {
            tracing::warn!(listen, count = n, "API: {}", self.what);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"]
            .as_str()
            .unwrap()
            .contains("too many connections"));
    }

    #[test]
    fn throttled_counts_what_it_did_not_log() {
        let t = Throttled::new("x", false);
        t.hit("a");
        t.hit("a");
        t.hit("a");
        assert_eq!(t.since.load(Ordering::Relaxed), 2);
    }
}
