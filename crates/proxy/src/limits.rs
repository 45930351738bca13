//! What a client may ask of a proxy: connections at once (shared by the workers), the size of
//! a request head, and what happens beyond: a `503` answered on the raw socket, and log lines
//! throttled so that a flood cannot flood the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest request head (request line and headers), bytes; larger gets `431`.
pub(crate) const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header fields in a request; more gets `431`.
pub(crate) const MAX_HEADERS: usize = 100;
/// Refused connections being answered at once; beyond, a connection is closed unanswered.
const REJECTING_MAX: usize = 512;
/// Longest a refused connection is kept to read what the client sent before closing (so the
/// close does not reset the connection before the client reads the 503).
const REJECT_LINGER: Duration = Duration::from_millis(500);
/// Least time between two log lines of one kind.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Logs an event at once, then at most once per [`LOG_EVERY`] with the count since.
pub(crate) struct Throttled {
    what: &'static str,
    /// Log at info rather than warn (idle keep-alive clients end the same way as slow ones).
    quiet: bool,
    last: Mutex<Option<Instant>>,
    since: AtomicU64,
}

impl Throttled {
    pub(crate) const fn new(what: &'static str, quiet: bool) -> Self {
        Throttled {
            what,
            quiet,
            last: Mutex::new(None),
            since: AtomicU64::new(0),
        }
    }

    /// Counts one event and logs when the last line is old enough.
    pub(crate) fn hit(&self, listen: &dyn std::fmt::Display) {
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
            tracing::info!(listen = %listen, count = n, "proxy: {}", self.what);
        } else {
            tracing::warn!(listen = %listen, count = n, "proxy: {}", self.what);
        }
    }
}

/// Connections over the cap.
pub(crate) static BUSY: Throttled = Throttled::new(
    "connection cap reached, answering 503 (count since the last line)",
    false,
);
/// Clients too slow to send a request head.
pub(crate) static SLOW_HEAD: Throttled = Throttled::new(
    "closed connections that sent no whole request head in time (slow or idle keep-alive clients)",
    true,
);
/// Heads over the size or count limit.
pub(crate) static BIG_HEAD: Throttled = Throttled::new(
    "answered 431 to request heads over the size or count limit",
    false,
);
/// Bodies over the limit.
pub(crate) static BIG_BODY: Throttled =
    Throttled::new("answered 413 to request bodies over the limit", false);

/// The connection cap of one proxy, shared by its workers.
#[derive(Clone)]
pub(crate) struct Gate {
    serving: Arc<Semaphore>,
    rejecting: Arc<Semaphore>,
}

/// What to do with an accepted connection.
pub(crate) enum Admit {
    /// Serve it; the permit is held as long as the connection.
    Serve(OwnedSemaphorePermit),
    /// Answer 503 on it; the permit bounds the refusals in progress.
    Refuse(OwnedSemaphorePermit),
    /// Close it at once (too many refusals in progress already).
    Drop,
}

impl Gate {
    pub(crate) fn new(max_connections: usize) -> Self {
        Gate {
            serving: Arc::new(Semaphore::new(max_connections.max(1))),
            rejecting: Arc::new(Semaphore::new(REJECTING_MAX)),
        }
    }

    pub(crate) fn admit(&self) -> Admit {
        if let Ok(p) = self.serving.clone().try_acquire_owned() {
            return Admit::Serve(p);
        }
        match self.rejecting.clone().try_acquire_owned() {
            Ok(p) => Admit::Refuse(p),
            Err(_) => Admit::Drop,
        }
    }
}

/// The whole 503 answer to a connection over the cap.
const BUSY_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 105\r\n\r\n\
{\"error\":{\"message\":\"infermon proxy: too many connections, retry later\",\"type\":\"overloaded\",\"code\":503}}\n";

/// Answers `503 Service Unavailable` with `Retry-After: 1` and closes, reading (and dropping)
/// what the client sends for a moment so its request does not turn the close into a reset.
pub(crate) async fn refuse(mut tcp: TcpStream, _permit: OwnedSemaphorePermit) {
    let _ = tokio::time::timeout(REJECT_LINGER, async {
        if tcp.write_all(BUSY_ANSWER).await.is_err() {
            return;
        }
        let _ = tcp.shutdown().await;
        let mut sink = [0_u8; 4096];
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
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
        assert_eq!(v["error"]["code"], 503);
    }

    #[test]
    fn the_gate_serves_up_to_the_cap_then_refuses_then_drops() {
        let g = Gate::new(2);
        let served: Vec<_> = (0..2).map(|_| g.admit()).collect();
        assert!(served.iter().all(|a| matches!(a, Admit::Serve(_))));
        let refused: Vec<_> = (0..REJECTING_MAX).map(|_| g.admit()).collect();
        assert!(refused.iter().all(|a| matches!(a, Admit::Refuse(_))));
        assert!(matches!(g.admit(), Admit::Drop));
        drop(served);
        assert!(matches!(g.admit(), Admit::Serve(_)));
    }
}
