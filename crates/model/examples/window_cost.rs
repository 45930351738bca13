//! Time and memory of the agent's per-model request figures over a full window:
//! `cargo run --release -p infermon-model --example window_cost [RECORDS] [GAPS]`
//! (default 50 000 records — the window's cap — of 63 inter-token gaps each, one model).
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use infermon_model::reqstats::{aggregate, Slo, WindowRecord};
use infermon_model::request::Outcome;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let gaps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(63);
    let (up, model): (std::sync::Arc<str>, std::sync::Arc<str>) = ("http://u".into(), "m".into());
    let mut x: u64 = 1;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as f64 / (1u64 << 31) as f64
    };
    let recs: Vec<WindowRecord> = (0..n)
        .map(|i| WindowRecord {
            ts_unix_ms: i as i64,
            upstream: up.clone(),
            model: model.clone(),
            outcome: Outcome::Ok,
            ttft_ms: Some(20.0 + 10.0 * next()),
            tpot_ms: Some(2.0 + next()),
            e2e_ms: 150.0 + 20.0 * next(),
            prompt_tokens: Some(128),
            completion_tokens: Some(gaps as u64 + 1),
            gaps_ms: (0..gaps).map(|_| (2.0 + next()) as f32).collect(),
        })
        .collect();
    let bytes_per = std::mem::size_of::<WindowRecord>() + gaps * 4;
    let slo = Slo::default();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let s = aggregate(recs.iter(), 300.0, &slo);
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(s[0].itl_ms.unwrap().count, (n * gaps) as u64);
    }
    println!(
        "{n} records x {gaps} gaps: aggregate {:.1} ms (best of 5); {bytes_per} B per record \
         before allocator overhead ({:.1} MiB)",
        best * 1000.0,
        (n * bytes_per) as f64 / (1 << 20) as f64
    );
}
