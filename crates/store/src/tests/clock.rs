//! The wall clock jumps back an hour and then forward a day while sampling goes on every 2 s:
//! the rollups must stay exactly what the stored points say, `last` must follow the newest
//! point by time (not the last one written), a query across the jump returns each time
//! once, in order, and every raw sample is kept, even one taken at the same wall millisecond
//! as an older one.

use std::collections::BTreeMap;

use super::{mem, mem_day, point, sample, T0};
use crate::write::{bucket_start, HOUR_MS, MINUTE_MS};
use crate::{HistoryQuery, Resolution, Store};
use infermon_model::raw::RawSample;

const SERIES: [&str; 2] = ["0", "1"];
/// Index of the first sample after the clock went back (70 min of 2 s samples).
const BACK: usize = 70 * 30;
/// Index of the first sample after the clock went forward (40 min later).
const FORWARD: usize = BACK + 40 * 30;

/// Wall times of the sequence: 70 min of samples every 2 s (plus `jitter(k)` ms of
/// collection delay), the clock set back an hour, 40 more minutes (written into buckets that
/// already hold newer points), the clock set forward a day, 10 more minutes.
fn wall_times(jitter: fn(i64) -> i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut grid = T0 + 30_000; // not on a minute boundary
    for k in 0..FORWARD + 150 {
        if k > 0 {
            grid += 2000;
        }
        if k == BACK {
            grid -= 3_600_000;
        }
        if k == FORWARD {
            grid += 86_400_000;
        }
        out.push(grid + jitter(k as i64));
    }
    out
}

/// Writes the sequence, each raw sample marked by its monotonic time (which never jumps);
/// returns the expected points per series (a later write at the same time replaces the value,
/// as [`Store::write`] documents).
fn write_sequence(store: &mut Store, times: &[i64]) -> Vec<BTreeMap<i64, f64>> {
    let mut expected = vec![BTreeMap::new(); SERIES.len()];
    for (k, &ts) in times.iter().enumerate() {
        // Distinct values, so a wrong `last` or a double count shows.
        let values: Vec<f64> = (0..SERIES.len())
            .map(|s| ((k * 37 + s * 11) % 101) as f64 + k as f64 / 10_000.0)
            .collect();
        let points: Vec<_> = SERIES
            .iter()
            .zip(&values)
            .map(|(gpu, v)| point("infermon_v", &[("gpu", gpu)], *v))
            .collect();
        store.write(&marked(ts, k), &points).unwrap();
        for (s, v) in values.iter().enumerate() {
            expected[s].insert(ts, *v);
        }
    }
    expected
}

#[derive(Debug, PartialEq)]
struct Row {
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
    last_ts_ms: i64,
}

fn recompute(points: &BTreeMap<i64, f64>, width: i64) -> BTreeMap<i64, Row> {
    let mut out: BTreeMap<i64, Row> = BTreeMap::new();
    // Ascending time: the final `last` of each bucket is its newest point's value.
    for (&ts, &v) in points {
        let r = out.entry(bucket_start(ts, width)).or_insert(Row {
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: v,
            last_ts_ms: ts,
        });
        r.count += 1;
        r.sum += v;
        r.min = r.min.min(v);
        r.max = r.max.max(v);
        r.last = v;
        r.last_ts_ms = ts;
    }
    out
}

fn stored_rollup(store: &Store, table: &str, gpu: &str) -> BTreeMap<i64, Row> {
    let sql = format!(
        "SELECT r.bucket_ms, r.count, r.sum, r.min, r.max, r.last, r.last_ts_ms
         FROM {table} r JOIN series s ON s.id = r.series_id
         WHERE s.name = 'infermon_v' AND s.labels = ?1 ORDER BY r.bucket_ms"
    );
    let labels = format!("gpu=\"{gpu}\"");
    let mut st = store.conn.prepare(&sql).unwrap();
    let rows = st
        .query_map([labels], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Row {
                    count: r.get(1)?,
                    sum: r.get(2)?,
                    min: r.get(3)?,
                    max: r.get(4)?,
                    last: r.get(5)?,
                    last_ts_ms: r.get(6)?,
                },
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn stored_points(store: &Store, gpu: &str) -> BTreeMap<i64, f64> {
    let mut st = store
        .conn
        .prepare(
            "SELECT p.ts_ms, p.value FROM points p JOIN series s ON s.id = p.series_id
             WHERE s.name = 'infermon_v' AND s.labels = ?1",
        )
        .unwrap();
    let rows = st
        .query_map([format!("gpu=\"{gpu}\"")], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    rows.map(Result::unwrap).collect()
}

fn assert_rollups_match(
    store: &Store,
    table: &str,
    width: i64,
    gpu: &str,
    points: &BTreeMap<i64, f64>,
) {
    let want = recompute(points, width);
    let got = stored_rollup(store, table, gpu);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{table} buckets of gpu {gpu}"
    );
    for (bucket, w) in &want {
        let g = &got[bucket];
        assert_eq!(
            (g.count, g.min, g.max, g.last, g.last_ts_ms),
            (w.count, w.min, w.max, w.last, w.last_ts_ms),
            "{table} bucket {bucket} of gpu {gpu}"
        );
        assert!(
            (g.sum - w.sum).abs() < 1e-6 * w.sum.abs().max(1.0),
            "{table} bucket {bucket} of gpu {gpu}: sum {} want {}",
            g.sum,
            w.sum
        );
    }
}

fn check(jitter: fn(i64) -> i64, expect_collisions: bool) {
    let times = wall_times(jitter);
    let mut store = mem();
    let expected = write_sequence(&mut store, &times);
    let distinct = expected[0].len();
    assert_eq!(distinct < times.len(), expect_collisions);

    // The clock went back, so points were written into buckets holding newer points.
    let behind = times[BACK..FORWARD]
        .iter()
        .filter(|&&t| {
            let minute = bucket_start(t, MINUTE_MS);
            times[..BACK]
                .iter()
                .any(|&p| p > t && bucket_start(p, MINUTE_MS) == minute)
        })
        .count();
    assert!(
        behind * 10 > (FORWARD - BACK) * 9,
        "only {behind} samples written into a minute that already held a newer point"
    );

    for (s, gpu) in SERIES.iter().enumerate() {
        // Points: exactly the expected set (later writes at the same time replace).
        assert_eq!(
            stored_points(&store, gpu),
            expected[s],
            "points of gpu {gpu}"
        );
        assert_rollups_match(&store, "rollup_1m", MINUTE_MS, gpu, &expected[s]);
        assert_rollups_match(&store, "rollup_1h", HOUR_MS, gpu, &expected[s]);
    }

    // Queries across both jumps: time order, every time once.
    let (from, to) = (*times.iter().min().unwrap(), *times.iter().max().unwrap());
    for res in [Resolution::Raw, Resolution::Minute, Resolution::Hour] {
        let h = store
            .history(&HistoryQuery {
                metric: "infermon_v".into(),
                labels: vec![("gpu".into(), "0".into())],
                from_ms: from,
                to_ms: to,
                resolution: res,
            })
            .unwrap();
        assert_eq!(h.len(), 1);
        let ts: Vec<i64> = h[0].points.iter().map(|p| p.ts_ms).collect();
        assert!(
            ts.windows(2).all(|w| w[0] < w[1]),
            "{res:?}: not strictly in time order"
        );
        let total: u64 = h[0].points.iter().map(|p| p.count).sum();
        assert_eq!(
            total as usize, distinct,
            "{res:?}: points counted once each"
        );
        if res == Resolution::Raw {
            let got: BTreeMap<i64, f64> = h[0].points.iter().map(|p| (p.ts_ms, p.value)).collect();
            assert_eq!(got, expected[0]);
            for p in &h[0].points {
                assert_eq!(p.last, expected[0][&p.ts_ms]);
            }
        } else {
            let want = recompute(&expected[0], res.bucket_ms().unwrap());
            for p in &h[0].points {
                assert_eq!(p.last, want[&p.ts_ms].last, "{res:?} last at {}", p.ts_ms);
                assert_eq!(p.count as i64, want[&p.ts_ms].count);
            }
        }
    }
    // Every raw sample is kept (also those at a wall time already taken), read back by time,
    // then in write order (monotonic time), and paging by cursor neither skips nor repeats.
    let raw = store.raw_samples(from, to, 1_000_000).unwrap();
    assert_eq!(raw.len(), times.len());
    assert_eq!(store.stats().unwrap().samples as usize, times.len());
    assert!(raw
        .windows(2)
        .all(|w| (w[0].ts_unix_ms, w[0].mono_ms) < (w[1].ts_unix_ms, w[1].mono_ms)));
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let (page, next) = store.raw_samples_page(from, to, after, 7).unwrap();
        if next.is_none() {
            break;
        }
        paged.extend(page);
        after = next;
    }
    assert_eq!(paged, raw);
}

/// The sample at wall time `ts`, `k`-th of the sequence.
fn marked(ts: i64, k: usize) -> RawSample {
    let mut s = sample(ts);
    s.mono_ms = k as u64 * 2000;
    s
}

/// The clock is set back one second between two rounds, so the second round lands on the
/// wall millisecond of an earlier one: both samples are kept and read back in write order,
/// a page boundary between them loses neither, and retention removes them together.
#[test]
fn a_sample_at_the_wall_time_of_an_older_one_is_kept() {
    let mut store = mem_day();
    let rounds = [
        (T0, 0),
        (T0 + 1000, 1),
        (T0, 2),
        (T0 + 1000, 3),
        (T0 + 2000, 4),
    ];
    for (ts, k) in rounds {
        store.write(&marked(ts, k), &[]).unwrap();
    }
    let order = |v: Vec<RawSample>| v.iter().map(|s| s.mono_ms / 2000).collect::<Vec<_>>();
    assert_eq!(
        order(store.raw_samples(T0, T0 + 2000, 10).unwrap()),
        vec![0, 2, 1, 3, 4]
    );
    assert_eq!(store.latest_sample().unwrap(), Some(marked(T0 + 2000, 4)));
    let (p1, c1) = store.raw_samples_page(T0, T0 + 2000, None, 1).unwrap();
    let (p2, c2) = store.raw_samples_page(T0, T0 + 2000, c1, 2).unwrap();
    let (p3, c3) = store.raw_samples_page(T0, T0 + 2000, c2, 2).unwrap();
    let (p4, c4) = store.raw_samples_page(T0, T0 + 2000, c3, 2).unwrap();
    assert_eq!(
        (order(p1), order(p2), order(p3), order(p4)),
        (vec![0], vec![2, 1], vec![3, 4], vec![])
    );
    assert!(c3.is_some() && c4.is_none());

    // 24 h later, retention at T0 + 1000 cuts the two samples at T0 and keeps the rest.
    let pruned = store.prune(T0 + 1000 + 86_400_000).unwrap();
    assert_eq!(pruned.samples, 2);
    assert_eq!(
        order(store.raw_samples(i64::MIN, i64::MAX, 10).unwrap()),
        vec![1, 3, 4]
    );
}

#[test]
fn clock_jumps_with_collection_jitter_keep_rollups_exact_and_last_newest() {
    // A few ms of collection delay: the replayed hour lands between earlier points.
    check(|k| (k * 7) % 13, false);
}

#[test]
fn clock_jumps_onto_the_same_times_replace_points_and_recompute_rollups() {
    // Exactly on the 2 s grid: after −3600 s the wall times repeat those of an hour before.
    check(|_| 0, true);
}
