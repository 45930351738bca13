//! A cap on concurrent `/api/v1/stream` subscribers: each holds a [`Slot`] that gives its place
//! back when the stream is dropped (client gone, server shutting down).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Open streams and the most allowed.
#[derive(Debug)]
pub(crate) struct Slots {
    open: AtomicUsize,
    max: usize,
}

/// One open stream's place; dropping it frees the place.
#[derive(Debug)]
pub(crate) struct Slot(Arc<Slots>);

impl Slots {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Slots {
            open: AtomicUsize::new(0),
            max,
        })
    }

    /// The most streams served at once.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// A place, or `None` when `max` streams are open.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code

    use super::Slots;
    use crate::{app, AppState};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    #[test]
    fn slots_come_back_on_drop() {
        let s = Slots::new(2);
        let a = s.try_acquire().unwrap();
        let _b = s.try_acquire().unwrap();
        assert!(s.try_acquire().is_none());
        drop(a);
        assert!(s.try_acquire().is_some());
        assert!(Slots::new(0).try_acquire().is_none());
    }

    /// Opens `/api/v1/stream` on a raw connection and returns the status code and the
    /// connection (kept open, so the stream stays subscribed).
    async fn open(addr: std::net::SocketAddr) -> (u16, TcpStream, String) {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(std::time::Duration::from_secs(10), c.read(&mut buf))
                .await
                .expect("response head within 10 s")
                .unwrap();
            assert!(n > 0, "connection closed before the response head");
            head.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let status = text[9..12].parse().unwrap();
        (status, c, text)
    }

    #[tokio::test]
    async fn stream_cap_refuses_beyond_max_and_frees_on_disconnect() {
        let state = AppState {
            shared: infermon_agent::Shared::new(None),
            token: None,
            alerts: None,
            allowed_hosts: Vec::new().into(),
            max_streams: 2,
            remote_write: std::sync::Arc::from(Vec::new()),
            reports_dir: None,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app(state)).await });
        let (s1, c1, head) = open(addr).await;
        assert_eq!(s1, 200, "{head}");
        assert!(head.contains("text/event-stream"), "{head}");
        let (s2, _c2, _) = open(addr).await;
        assert_eq!(s2, 200);
        let (s3, mut c3, head) = open(addr).await;
        assert_eq!(s3, 503, "{head}");
        assert!(
            head.to_ascii_lowercase().contains("retry-after: 5"),
            "{head}"
        );
        let mut body = head;
        while !body.contains('}') {
            let mut buf = [0u8; 1024];
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), c3.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "{body}");
            body.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        assert!(body.contains("at most 2 at once"), "{body}");
        // The first client leaves: its place comes back once the server notices.
        drop(c1);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (s, _c, _) = open(addr).await;
            if s == 200 {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "slot never freed");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
