//! Simulated agents against a running `infermon hub`, speaking the real push protocol: each
//! node joins with the join token, then pushes one sampling round every interval (a raw
//! sample and its derived snapshot of the month benchmark's node: 2 GPUs, vLLM with 2 models,
//! llama.cpp with 3; snappy JSON, as `infermon agent --hub` sends it), nodes spread evenly
//! over the interval. Meanwhile it asks the leaderboard and the route once a second.
//!
//! Prints, every 30 s and at the end: pushes done and failed, push latency p50/p99 (from
//! sending to the answer), leaderboard and route p50/p99, and whether the schedule kept up.
//! `bench/hub-scale.sh` runs it against a hub pinned to 2 cores and adds RSS and disk.
//!
//!   cargo run --release -p infermon-hub --example hubload -- --hub http://127.0.0.1:9465 \
//!       --join-token T --nodes 1000 --interval 2 --duration 600

#[path = "../../store/examples/month/sim.rs"]
#[allow(dead_code)]
mod sim;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infermon_fleet::push::{JoinReply, JoinRequest, PushedSample};
use infermon_model::{derive, DeriveSettings};

/// Distinct rounds per template; node i pushes round (k + i) % ROUNDS at its k-th push.
const ROUNDS: usize = 16;
/// The start of a run left out of the `after-warmup` latencies.
const WARMUP: Duration = Duration::from_secs(60);
/// A timestamp of the template's 13 digits, replaced in the JSON at each push.
const TS_MARK: i64 = 1_111_111_111_111;

struct Args {
    hub: String,
    join_token: String,
    nodes: usize,
    interval: f64,
    duration: f64,
    prefix: String,
}

fn args() -> Args {
    let mut a = Args {
        hub: "http://127.0.0.1:9465".into(),
        join_token: String::new(),
        nodes: 100,
        interval: 2.0,
        duration: 60.0,
        prefix: "sim".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it
            .next()
            .unwrap_or_else(|| fail(&format!("{k} needs a value")));
        let num = |v: &str| -> f64 {
            v.parse()
                .unwrap_or_else(|_| fail(&format!("{k} {v}: expected a number")))
        };
        match k.as_str() {
            "--hub" => a.hub = v,
            "--join-token" => a.join_token = v,
            "--nodes" => a.nodes = num(&v) as usize,
            "--interval" => a.interval = num(&v),
            "--duration" => a.duration = num(&v),
            "--prefix" => a.prefix = v,
            _ => fail(&format!(
                "unknown argument {k}: expected --hub, --join-token, --nodes, --interval, \
                 --duration, --prefix"
            )),
        }
    }
    if a.join_token.is_empty() {
        fail("--join-token is required");
    }
    a
}

fn fail(msg: &str) -> ! {
    eprintln!("hubload: {msg}");
    std::process::exit(2)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The rounds' JSON with [`TS_MARK`] where the time goes, and a model the nodes serve.
///
/// The simulated node starts at midnight on a Saturday, when it is idle; it is moved to a
/// Monday afternoon and only rounds that generated tokens are kept, so every node has a WES
/// and the leaderboard ranks all of them (its heaviest case) rather than listing them unranked.
fn templates(interval_ms: i64) -> (Vec<String>, String, usize) {
    let mut node = sim::Node::new();
    node.advance(2 * sim::DAY_MS + 14 * 3_600_000);
    let mut prev = node.advance(interval_ms);
    let mut out = Vec::new();
    let mut model = String::new();
    let (mut tries, mut series) = (0, 0);
    while out.len() < ROUNDS {
        tries += 1;
        if tries > 100_000 {
            fail("the simulated node generated no tokens in 100000 rounds");
        }
        let mut raw = node.advance(interval_ms);
        let mut snap = derive(Some(&prev), &raw, &DeriveSettings { pue: 1.0 });
        prev = raw.clone();
        if snap.efficiency.wes.is_err() {
            continue;
        }
        raw.ts_unix_ms = TS_MARK;
        snap.ts_unix_ms = TS_MARK;
        series += snap.series().len();
        if model.is_empty() {
            let v = serde_json::to_value(&snap).unwrap_or_default();
            model = v["engines"][0]["model"].as_str().unwrap_or("").to_string();
        }
        let sample = PushedSample {
            raw,
            snapshot: snap.into(),
            observations: Vec::new(),
            endpoint: None,
        };
        out.push(serde_json::to_string(&[sample]).unwrap_or_else(|e| fail(&e.to_string())));
    }
    (out, model, series / ROUNDS)
}

#[derive(Default)]
struct Lat(Mutex<Vec<f64>>);

impl Lat {
    fn add(&self, ms: f64) {
        if let Ok(mut v) = self.0.lock() {
            v.push(ms);
        }
    }
    /// How many were added so far.
    fn len(&self) -> usize {
        self.0.lock().map_or(0, |v| v.len())
    }
    /// (count, p50, p99) of everything added from the `from`-th on.
    fn summary(&self, from: usize) -> (usize, f64, f64) {
        let Ok(v) = self.0.lock() else {
            return (0, f64::NAN, f64::NAN);
        };
        let mut s = v.get(from..).unwrap_or_default().to_vec();
        drop(v);
        s.sort_by(f64::total_cmp);
        let q = |p: f64| infermon_model::stats::percentile_sorted(&s, p);
        (s.len(), q(50.0), q(99.0))
    }
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
    late: AtomicU64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let interval_ms = (a.interval * 1000.0) as i64;
    let (bodies, model, series) = templates(interval_ms);
    let json_kb = bodies.iter().map(String::len).sum::<usize>() as f64 / ROUNDS as f64 / 1000.0;
    if std::env::var_os("HUBLOAD_DUMP").is_some() {
        println!("{}", bodies[0]);
        return;
    }
    let bodies = Arc::new(bodies);
    let client = infermon_tls::client()
        .pool_max_idle_per_host(a.nodes.max(1))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| fail(&e.to_string()));
    let base = a.hub.trim_end_matches('/').to_string();

    let mut tokens = Vec::with_capacity(a.nodes);
    let t0 = Instant::now();
    for i in 0..a.nodes {
        let node = format!("{}-{i:05}", a.prefix);
        let r = client
            .post(format!("{base}/api/v1/hub/join"))
            .bearer_auth(&a.join_token)
            .json(&JoinRequest { node: node.clone() })
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("join {node}: {e}")));
        if !r.status().is_success() {
            let s = r.status();
            fail(&format!(
                "join {node}: {s}: {}",
                r.text().await.unwrap_or_default()
            ));
        }
        let reply: JoinReply = r.json().await.unwrap_or_else(|e| fail(&e.to_string()));
        tokens.push(reply.token);
    }
    eprintln!(
        "hubload: {} nodes joined in {:.1} s; pushing every {} s for {} s; route model {model:?}; \
         a round is {series} series, {json_kb:.1} KB of JSON",
        a.nodes,
        t0.elapsed().as_secs_f64(),
        a.interval,
        a.duration
    );

    let (push_lat, read_lat, route_lat) = (
        Arc::new(Lat::default()),
        Arc::new(Lat::default()),
        Arc::new(Lat::default()),
    );
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(a.duration);
    let mut tasks = Vec::new();
    for (i, token) in tokens.into_iter().enumerate() {
        let (client, bodies, lat, counts) = (
            client.clone(),
            bodies.clone(),
            push_lat.clone(),
            counts.clone(),
        );
        let url = format!("{base}/api/v1/hub/push");
        let offset = Duration::from_secs_f64(a.interval * i as f64 / a.nodes as f64);
        let every = Duration::from_secs_f64(a.interval);
        tasks.push(tokio::spawn(async move {
            let mut due = start + offset;
            let mut k = 0usize;
            let mark = TS_MARK.to_string();
            while due < end {
                tokio::time::sleep_until(due.into()).await;
                let json = bodies[(k + i) % ROUNDS].replace(&mark, &now_ms().to_string());
                let body = snap::raw::Encoder::new()
                    .compress_vec(json.as_bytes())
                    .unwrap_or_default();
                let sent = Instant::now();
                let r = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .header("content-encoding", "snappy")
                    .body(body)
                    .send()
                    .await;
                let ok = matches!(&r, Ok(r) if r.status().is_success());
                lat.add(sent.elapsed().as_secs_f64() * 1000.0);
                if ok {
                    counts.ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                    if counts.failed.load(Ordering::Relaxed) <= 3 {
                        match r {
                            Ok(r) => eprintln!("hubload: push {}", r.status()),
                            Err(e) => eprintln!("hubload: push: {e}"),
                        }
                    }
                }
                k += 1;
                due += every;
                // A push that took longer than the interval skips the rounds it overran (each
                // counted late) but keeps the node's phase, as an agent's sampling clock does:
                // restarting the schedule from the answer made nodes answered together push
                // together from then on.
                while Instant::now() > due {
                    counts.late.fetch_add(1, Ordering::Relaxed);
                    due += every;
                }
            }
        }));
    }
    let reader = {
        let (client, read_lat, route_lat) = (client.clone(), read_lat.clone(), route_lat.clone());
        let base = base.clone();
        let enc: String = model
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        tokio::spawn(async move {
            let (mut last_board, mut last_route) = (Default::default(), Default::default());
            while Instant::now() < end {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let t = Instant::now();
                if let Ok(r) = client
                    .get(format!("{base}/api/v1/fleet/leaderboard"))
                    .send()
                    .await
                {
                    last_board = r.bytes().await.unwrap_or_default();
                    read_lat.add(t.elapsed().as_secs_f64() * 1000.0);
                }
                let t = Instant::now();
                if let Ok(r) = client
                    .get(format!("{base}/api/v1/route?model={enc}"))
                    .send()
                    .await
                {
                    last_route = r.bytes().await.unwrap_or_default();
                    route_lat.add(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            (last_board, last_route)
        })
    };
    // Latencies are printed for the whole run, for the last 30 s, and at the end also
    // without the first WARMUP (joins and every store's first write).
    let report = |label: &str, from: [usize; 3]| {
        let (n, p50, p99) = push_lat.summary(from[0]);
        let (_, b50, b99) = read_lat.summary(from[1]);
        let (_, r50, r99) = route_lat.summary(from[2]);
        println!(
            "hubload {label} t={:.0}s pushes={n} ok={} failed={} late={} push_ms p50={p50:.1} \
             p99={p99:.1} leaderboard_ms p50={b50:.1} p99={b99:.1} route_ms p50={r50:.1} \
             p99={r99:.1}",
            start.elapsed().as_secs_f64(),
            counts.ok.load(Ordering::Relaxed),
            counts.failed.load(Ordering::Relaxed),
            counts.late.load(Ordering::Relaxed),
        );
    };
    let marks = || [push_lat.len(), read_lat.len(), route_lat.len()];
    let mut last = [0; 3];
    let mut warm = None;
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(30).min(end - Instant::now())).await;
        report("so-far", [0; 3]);
        report("last-30s", last);
        last = marks();
        if warm.is_none() && start.elapsed() >= WARMUP {
            warm = Some(last);
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let (board, route) = reader.await.unwrap_or_default();
    // What the last answers held: the leaderboard's ranked and unranked nodes, the route's
    // choice and size, so a run shows what its read latencies measured.
    let board: serde_json::Value = serde_json::from_slice(&board).unwrap_or_default();
    let count = |k: &str| board[k].as_array().map_or(0, Vec::len);
    let choice: serde_json::Value = serde_json::from_slice(&route).unwrap_or_default();
    println!(
        "hubload last leaderboard: {} ranked, {} unranked; last route: node {} of {} candidates \
         ({} listed, {} bytes)",
        count("ranked"),
        count("unranked"),
        choice["node"].as_str().unwrap_or("none"),
        choice["candidates_total"],
        choice["candidates"].as_array().map_or(0, Vec::len),
        route.len()
    );
    report("total", [0; 3]);
    if let Some(w) = warm {
        report("after-warmup", w);
    }
}
