//! A simulated month of one node written through the store's real write path, then measured.
//!
//! The node: two NVIDIA GPUs, a vLLM serving two models and a llama.cpp router serving three
//! (five models, two engines), with a diurnal load (quiet nights, busy afternoons, idle gaps
//! and bursts) and noise on every gauge, so compression figures are not those of constant data.
//! Each round is built as the collectors would build it, derived by `infermon_model::derive`
//! and written with `Store::write`; `Store::prune` runs every 10 simulated minutes, as the
//! agent does. Time is simulated: the month is written as fast as the store takes it.
//!
//! `cargo run --release -p infermon-store --example month -- [--days D] [--dir DIR]
//! [--queries N] [--interval-ms MS] [--raw-days R]`; `bench/store-month.sh` runs it. Raw
//! samples are kept `R` days (default: the store's default retention). With fewer than 30
//! days the size is extrapolated to a month (said so in the output; see `extrapolate`).
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use infermon_model::raw::RawSample;
use infermon_model::stats::percentile_sorted;
use infermon_model::{derive, DeriveSettings};
use infermon_store::{HistoryQuery, Resolution, Retention, Store};

mod sim;
use sim::{Node, DAY_MS, START_MS};

struct Args {
    days: f64,
    dir: Option<PathBuf>,
    queries: usize,
    interval_ms: i64,
    raw_days: f64,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        days: 30.0,
        dir: None,
        queries: 60,
        interval_ms: 2000,
        raw_days: Retention::default().raw.as_secs_f64() / 86_400.0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--days" => a.days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--dir" => a.dir = Some(PathBuf::from(value()?)),
            "--raw-days" => {
                a.raw_days = value()?.parse().map_err(|e| format!("--raw-days: {e}"))?
            }
            "--queries" => a.queries = value()?.parse().map_err(|e| format!("--queries: {e}"))?,
            "--interval-ms" => {
                a.interval_ms = value()?
                    .parse()
                    .map_err(|e| format!("--interval-ms: {e}"))?
            }
            other => return Err(format!("unknown argument \"{other}\"")),
        }
    }
    if a.days.is_nan()
        || a.days <= 0.0
        || a.raw_days.is_nan()
        || a.raw_days <= 0.0
        || a.interval_ms <= 0
        || a.queries == 0
    {
        return Err("--days, --raw-days, --interval-ms and --queries must be positive".into());
    }
    Ok(a)
}

fn file_bytes(path: &Path) -> u64 {
    let side = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::fs::metadata(PathBuf::from(p)).map_or(0, |m| m.len())
    };
    side("") + side("-wal")
}

/// `q` (0–1) of sorted values, by the project's one percentile definition.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    percentile_sorted(sorted, q * 100.0)
}

const MIB: f64 = 1024.0 * 1024.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a = args()?;
    if let Ok(n) = std::env::var("MONTH_DUMP").map(|v| v.parse::<usize>().unwrap_or(0)) {
        // Debug aid: print `n` consecutive daytime samples as JSON lines.
        let mut node = Node::new();
        for _ in 0..(14 * 1800) {
            node.advance(a.interval_ms);
        }
        for _ in 0..n {
            println!("{}", serde_json::to_string(&node.advance(a.interval_ms))?);
        }
        return Ok(());
    }
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let path = dir.join("month.db");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    let retention = Retention {
        raw: Duration::from_secs_f64(a.raw_days * 86_400.0),
        ..Retention::default()
    };
    let mut store = Store::open(&path, retention)?;
    let mut node = Node::new();
    let rounds = (a.days * DAY_MS as f64 / a.interval_ms as f64) as u64;
    let settings = DeriveSettings::default();
    let mut prev: Option<RawSample> = None;
    let mut series_seen = 0;
    let mut json_bytes = 0_u64;
    let mut write_time = Duration::ZERO;
    let mut prune_time = Duration::ZERO;
    let mut write_ms = Vec::with_capacity(rounds as usize);
    let mut last_prune = START_MS;
    let started = Instant::now();
    println!(
        "store-month: writing {rounds} rounds ({} days at {} ms, raw samples kept {} days) to {}",
        a.days,
        a.interval_ms,
        a.raw_days,
        path.display()
    );
    for i in 0..rounds {
        let raw = node.advance(a.interval_ms);
        let points = derive(prev.as_ref(), &raw, &settings).series();
        series_seen = series_seen.max(points.iter().filter(|p| p.value.is_finite()).count());
        json_bytes += serde_json::to_string(&raw)?.len() as u64;
        let t = Instant::now();
        store.write(&raw, &points)?;
        let dt = t.elapsed();
        write_time += dt;
        if i % 97 == 0 {
            write_ms.push(dt.as_secs_f64() * 1000.0);
        }
        if raw.ts_unix_ms - last_prune >= 600_000 {
            let t = Instant::now();
            store.prune(raw.ts_unix_ms)?;
            prune_time += t.elapsed();
            last_prune = raw.ts_unix_ms;
        }
        if i > 0 && i % 43_200 == 0 {
            println!(
                "  day {:>2}: {:>7.1} MiB, {:.0} s",
                i / 43_200,
                file_bytes(&path) as f64 / MIB,
                started.elapsed().as_secs_f64()
            );
        }
        prev = Some(raw);
    }
    let now = prev.as_ref().map_or(START_MS, |p| p.ts_unix_ms);
    store.prune(now)?;
    let stats = store.stats()?;
    drop(store); // the last connection closing checkpoints and removes the WAL
    let bytes = file_bytes(&path);
    let span_days = a.days;
    let tables = table_bytes(&path)?;

    // Query: 30 days (or the whole span) of several series, at the resolution `Auto` picks.
    let store = Store::open(&path, retention)?;
    let span_ms = ((span_days.min(30.0)) * DAY_MS as f64) as i64;
    let queries: [(&str, Vec<(String, String)>); 5] = [
        ("infermon_gpu_power_watts", vec![("gpu".into(), "0".into())]),
        ("infermon_gpu_utilization_ratio", vec![]),
        ("infermon_node_cpu_utilization_ratio", vec![]),
        ("infermon_engine_generation_tokens_total", vec![]),
        ("infermon_engine_requests_running", vec![]),
    ];
    let names = store.metric_names()?;
    let mut lat = Vec::new();
    let mut served = Vec::new();
    for k in 0..a.queries {
        let (metric, labels) = &queries[k % queries.len()];
        if !names.iter().any(|n| n == metric) {
            continue;
        }
        let q = HistoryQuery {
            metric: (*metric).into(),
            labels: labels.clone(),
            from_ms: now - span_ms,
            to_ms: now,
            resolution: Resolution::Auto,
        };
        let t = Instant::now();
        let h = store.history(&q)?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        if k < queries.len() {
            served.push(format!(
                "{metric}: {} series × {} points ({:?})",
                h.len(),
                h.first().map_or(0, |s| s.points.len()),
                h.first().map(|s| s.resolution)
            ));
        }
    }
    lat.sort_by(f64::total_cmp);
    write_ms.sort_by(f64::total_cmp);
    let (p50, p95) = if lat.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (percentile(&lat, 0.5), percentile(&lat, 0.95))
    };

    let per_sample = bytes as f64 / rounds as f64;
    let month_rounds = 30.0 * DAY_MS as f64 / a.interval_ms as f64;
    let month = extrapolate(bytes, &tables, span_days, a.raw_days);
    println!("rounds written:        {rounds} ({span_days} days)");
    println!(
        "series per round:      {series_seen} finite points ({} series rows in the store)",
        stats.series
    );
    println!(
        "raw sample JSON:       {:.0} B per sample ({:.1} MB a day uncompressed)",
        json_bytes as f64 / rounds as f64,
        json_bytes as f64 / rounds as f64 * 43_200.0 / 1e6
    );
    println!(
        "rows:                  samples {}, points {}, rollup_1m {}, rollup_1h {}",
        stats.samples, stats.points, stats.rollup_1m, stats.rollup_1h
    );
    println!(
        "file (db + wal):       {:.1} MiB = {:.0} B per sample written",
        bytes as f64 / MIB,
        per_sample
    );
    println!(
        "write:                 {:.0} s total, {:.2} ms mean per round, p95 {:.2} ms; prune {:.1} s",
        write_time.as_secs_f64(),
        write_time.as_secs_f64() * 1000.0 / rounds as f64,
        percentile(&write_ms, 0.95),
        prune_time.as_secs_f64()
    );
    println!("bytes by table (SQLite pages, incl. indexes):");
    for (name, b) in &tables {
        println!(
            "  {name:<24} {:>9.1} MiB  {:>7.1} B per sample written",
            *b as f64 / MIB,
            *b as f64 / rounds as f64
        );
    }
    for s in served {
        println!("  query {s}");
    }
    println!(
        "query ({} days, {} queries): p50 {p50:.2} ms, p95 {p95:.2} ms   [target ≤ 50 ms]",
        span_days.min(30.0),
        lat.len()
    );
    if span_days < 30.0 {
        println!(
            "note: {span_days} days simulated, not 30: the month figure is EXTRAPOLATED \
             ({month_rounds:.0} rounds a month; sealed samples scaled to {} days, hour buckets \
             to 30, the rest as measured{})",
            a.raw_days.min(30.0),
            if span_days < 2.0 {
                "; under 2 days the windowed tables are not yet at their steady size, and \
                 under 1 day the span is mostly the idle night the simulation starts with"
            } else {
                ""
            }
        );
    }
    if span_days <= a.raw_days && a.raw_days < 30.0 {
        // Nothing has been pruned for age yet, so the same run also says what keeping raw
        // samples for 30 days would take.
        println!(
            "size with raw samples kept 30 days (retention_raw = \"30d\"): {:.1} MiB per node-month",
            extrapolate(bytes, &tables, span_days, 30.0) as f64 / MIB
        );
    }
    println!(
        "size: {:.1} MiB per node-month, raw samples kept {} days   [target ≤ 200 MiB]",
        month as f64 / MIB,
        a.raw_days
    );
    println!(
        "store-month: {:.1} MiB per node-month, 30-day query p95 {p95:.2} ms ({} series)",
        month as f64 / MIB,
        stats.series
    );
    Ok(())
}

/// Bytes per table (indexes counted with their table), from SQLite's `dbstat`.
fn table_bytes(path: &Path) -> rusqlite::Result<Vec<(String, u64)>> {
    let conn = rusqlite::Connection::open(path)?;
    let mut st = conn.prepare(
        "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d
         LEFT JOIN sqlite_master m ON m.name = d.name
         GROUP BY 1 ORDER BY 2 DESC",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
    rows.collect()
}

/// The size after a month, from a run of `days` keeping raw samples `raw_days`. What is kept
/// longer than the run grows with the span: the sealed samples up to `raw_days` (at most 30),
/// the hour buckets up to 30; those tables are scaled, the rest (points for 3 h, minute buckets
/// for 26 h, the unsealed hour, free pages) is taken as it is, which is their steady size once
/// the run is longer than their window (two days or more).
fn extrapolate(bytes: u64, tables: &[(String, u64)], days: f64, raw_days: f64) -> u64 {
    let scale = |keep: f64| (keep.min(30.0) / days).max(1.0);
    tables.iter().fold(bytes, |total, (name, b)| {
        let factor = match name.as_str() {
            "sample_blocks" => scale(raw_days),
            "rollup_1h" => scale(30.0),
            _ => 1.0,
        };
        total + (*b as f64 * (factor - 1.0)) as u64
    })
}
