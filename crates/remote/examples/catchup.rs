//! Remote write catch-up: queues N snapshots (as after an outage of N samples) in a real store
//! and drains them into a receiver, timing both. Used by `bench/remote-write.sh`.
//!
//!   cargo run --release -p infermon-remote --example catchup -- URL N [RATE]
//!
//! Prints one line per phase; RATE is the pacing (snapshots per second, default: unpaced).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infermon_model::{derive, testing, DeriveSettings};
use infermon_remote::{enqueue, run_sender, Stats, Target};
use infermon_store::{Retention, Store};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = args.get(1).expect("usage: catchup URL N [RATE]").clone();
    let n: usize = args.get(2).map_or(43_200, |s| s.parse().expect("N"));
    let rate: u32 = args.get(3).map_or(1_000_000, |s| s.parse().expect("RATE"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let store = Store::open(&path, Retention::default()).unwrap();
    // A node name per run: a receiver refuses samples older than ones it has for a series.
    let mut target = Target::new(&url, &format!("bench-{}", std::process::id()));
    target.max_pending = n.max(100);
    target.max_samples_per_second = rate;
    let stats = Arc::new(Stats::default());
    let mut snap = derive(
        None,
        &testing::sample_with_engine(0, 0.0, 0.0),
        &DeriveSettings::default(),
    );
    let series = snap.series().len();
    // Samples 2 s apart ending a minute ago (receivers take recent data).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first = now_ms - 60_000 - (n as i64) * 2000;
    let t0 = Instant::now();
    for i in 0..n {
        snap.ts_unix_ms = first + i as i64 * 2000;
        snap.agent.interval_seconds = (i % 7) as f64;
        enqueue(&store, &target, &snap, &stats, now_ms).unwrap();
    }
    let enq = t0.elapsed();
    let bytes: u64 = store
        .outbox()
        .oldest(&target.channel(), n)
        .unwrap()
        .iter()
        .map(|i| i.payload.len() as u64)
        .sum();
    println!(
        "queued {n} snapshots of {series} series in {:.2} s ({:.0} µs each), {:.0} B each in the queue",
        enq.as_secs_f64(),
        enq.as_secs_f64() * 1e6 / n as f64,
        bytes as f64 / n as f64
    );
    let store = Arc::new(Mutex::new(store));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let t0 = Instant::now();
    let sender = tokio::spawn(run_sender(target, store, stats.clone(), stop_rx));
    while stats.sent.load(Ordering::Relaxed) + stats.dropped_rejected.load(Ordering::Relaxed)
        < n as u64
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if t0.elapsed() > Duration::from_secs(900) {
            break;
        }
    }
    let took = t0.elapsed();
    let _ = stop_tx.send(true);
    let _ = sender.await;
    println!(
        "drained {} snapshots in {:.2} s ({:.0} per second); refused {}, failed requests {}",
        stats.sent.load(Ordering::Relaxed),
        took.as_secs_f64(),
        stats.sent.load(Ordering::Relaxed) as f64 / took.as_secs_f64(),
        stats.dropped_rejected.load(Ordering::Relaxed),
        stats.failed_requests.load(Ordering::Relaxed)
    );
}
