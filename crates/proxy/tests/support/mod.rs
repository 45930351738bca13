//! What the proxy's integration tests share.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::{Duration, Instant};

use infermon_model::request::RequestRecord;
use infermon_proxy::RecordSink;

/// Keeps every record the proxy hands over.
#[derive(Default)]
pub struct Sink(pub Mutex<Vec<RequestRecord>>);

impl RecordSink for Sink {
    fn record(&self, r: RequestRecord) {
        self.0.lock().unwrap().push(r);
    }
}

impl Sink {
    /// Waits (10 s at most) until `n` records arrived and returns them.
    pub async fn wait(&self, n: usize) -> Vec<RequestRecord> {
        let t = Instant::now();
        loop {
            {
                let v = self.0.lock().unwrap();
                if v.len() >= n {
                    return v.clone();
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "expected {n} records"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
