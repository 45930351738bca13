//! Deferred writes (`Store::write_deferred` + `Store::fold_pending`) against immediate ones
//! (`Store::write`): the same rounds must read back the same, whatever the fold points.

use infermon_model::series::SeriesPoint;

use super::{mem, point, sample, T0};
use crate::{HistoryQuery, HistorySeries, Resolution, Store};

/// A pseudo-random stream (xorshift), so the rounds are irregular but the test repeatable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// 400 rounds over about 2.5 hours: mostly in order every 20 s, some late (out of order),
/// some at a time already written (a value replaced), series coming and going, a few
/// non-finite values.
fn rounds() -> Vec<(i64, Vec<SeriesPoint>)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    let mut ts = T0 - 30_000;
    for i in 0..400_i64 {
        let at = match rng.next() % 10 {
            0 => ts - 20_000 * (1 + (rng.next() % 5) as i64) - 7,
            1 if i > 0 => out.last().map_or(ts, |r: &(i64, Vec<SeriesPoint>)| r.0),
            _ => {
                ts += 20_000;
                ts
            }
        };
        let gpus = 2 + (rng.next() % 3) as usize;
        let mut points: Vec<SeriesPoint> = (0..gpus)
            .map(|g| {
                let v = (rng.next() % 10_000) as f64 / 8.0;
                point("infermon_v", &[("gpu", &g.to_string())], v)
            })
            .collect();
        if rng.next().is_multiple_of(17) {
            points.push(point("infermon_v", &[("gpu", "0")], f64::NAN));
        }
        if rng.next().is_multiple_of(5) {
            // A series given twice in one round: the later value counts.
            points.push(point("infermon_v", &[("gpu", "1")], 1e6 + i as f64));
        }
        out.push((at, points));
    }
    out
}

fn all(store: &Store, res: Resolution) -> Vec<HistorySeries> {
    store
        .history(&HistoryQuery {
            metric: "infermon_v".into(),
            labels: vec![],
            from_ms: T0 - 3_600_000,
            to_ms: T0 + 4 * 3_600_000,
            resolution: res,
        })
        .unwrap()
}

/// Same counts, minimum, maximum and newest value; means equal but for the rounding of a sum
/// taken in another order.
fn assert_same(a: &[HistorySeries], b: &[HistorySeries], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: series");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.labels, y.labels, "{what}");
        assert_eq!(x.points.len(), y.points.len(), "{what} {:?}", x.labels);
        for (p, q) in x.points.iter().zip(&y.points) {
            let ctx = format!("{what} {:?} at {}", x.labels, p.ts_ms);
            assert_eq!(
                (p.ts_ms, p.count, p.min, p.max, p.last),
                (q.ts_ms, q.count, q.min, q.max, q.last),
                "{ctx}"
            );
            assert!(
                (p.value - q.value).abs() <= 1e-9 * p.value.abs().max(1.0),
                "{ctx}: {} vs {}",
                p.value,
                q.value
            );
        }
    }
}

#[test]
fn deferred_rounds_folded_at_any_point_read_back_as_immediate_writes() {
    let rounds = rounds();
    let mut direct = mem();
    for (ts, pts) in &rounds {
        direct.write(&sample(*ts), pts).unwrap();
    }
    let compare = |deferred: &Store, what: &str| {
        assert_eq!(deferred.pending_rounds(), 0);
        for res in [Resolution::Raw, Resolution::Minute, Resolution::Hour] {
            assert_same(
                &all(&direct, res),
                &all(deferred, res),
                &format!("{what}, {res:?}"),
            );
        }
        let (d, f) = (direct.stats().unwrap(), deferred.stats().unwrap());
        assert_eq!(
            (
                d.samples,
                d.points,
                d.rollup_1m,
                d.rollup_1h,
                d.skipped_non_finite
            ),
            (
                f.samples,
                f.points,
                f.rollup_1m,
                f.rollup_1h,
                f.skipped_non_finite
            ),
            "{what}"
        );
    };
    for fold_every in [1_u64, 3, 16, 1000] {
        let mut deferred = mem();
        for (ts, pts) in &rounds {
            if deferred.write_deferred(&sample(*ts), pts).unwrap() >= fold_every {
                deferred.fold_pending().unwrap();
            }
        }
        deferred.fold_pending().unwrap();
        compare(&deferred, &format!("fold every {fold_every}"));
    }
    // Many rounds per transaction (a node catching up): series first seen in the middle of a
    // batch, and rounds at a time another round of the same batch has.
    let samples: Vec<_> = rounds.iter().map(|(ts, _)| sample(*ts)).collect();
    for batch in [7_usize, 400] {
        let mut deferred = mem();
        for (chunk, raws) in rounds.chunks(batch).zip(samples.chunks(batch)) {
            let many: Vec<_> = raws
                .iter()
                .zip(chunk)
                .map(|(raw, (_, pts))| (raw, pts.as_slice()))
                .collect();
            let pending = deferred.write_deferred_many(&many).unwrap();
            assert_eq!(pending, many.len() as u64);
            deferred.fold_pending().unwrap();
        }
        compare(&deferred, &format!("batches of {batch}"));
    }
    // The test is worth something only if the stream has late and repeated times.
    let late = rounds.windows(2).filter(|w| w[1].0 < w[0].0).count();
    let repeated = rounds.windows(2).filter(|w| w[1].0 == w[0].0).count();
    assert!(
        late > 10 && repeated > 10,
        "late {late}, repeated {repeated}"
    );
}

#[test]
fn pending_points_are_kept_across_a_reopen_and_shown_once_folded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.db");
    let ts = |i: i64| T0 + i * 2000;
    {
        let mut store = Store::open(&path, crate::Retention::default()).unwrap();
        for i in 0..5 {
            let n = store
                .write_deferred(&sample(ts(i)), &[point("infermon_v", &[], i as f64)])
                .unwrap();
            assert_eq!(n, i as u64 + 1);
        }
        // The raw samples are there at once; the points wait.
        assert_eq!(store.raw_samples(T0, ts(4), 100).unwrap().len(), 5);
        assert!(all(&store, Resolution::Raw)
            .iter()
            .all(|s| s.points.is_empty()));
    }
    let mut store = Store::open(&path, crate::Retention::default()).unwrap();
    assert_eq!(store.pending_rounds(), 5);
    assert_eq!(store.fold_pending().unwrap(), 5);
    assert_eq!(store.fold_pending().unwrap(), 0);
    let raw = all(&store, Resolution::Raw);
    let values: Vec<f64> = raw[0].points.iter().map(|p| p.value).collect();
    assert_eq!(values, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
    let minute = all(&store, Resolution::Minute);
    assert_eq!(
        (minute[0].points[0].count, minute[0].points[0].value),
        (5, 2.0)
    );
}

#[test]
fn prune_folds_pending_rounds_first() {
    let mut store = mem();
    store
        .write_deferred(&sample(T0), &[point("infermon_v", &[], 4.0)])
        .unwrap();
    store.prune(T0 + 1000).unwrap();
    assert_eq!(store.pending_rounds(), 0);
    assert_eq!(all(&store, Resolution::Raw)[0].points[0].value, 4.0);
}

#[test]
fn a_damaged_pending_row_is_named_and_nothing_is_folded() {
    let mut store = mem();
    store
        .write_deferred(&sample(T0), &[point("infermon_v", &[], 4.0)])
        .unwrap();
    store
        .conn
        .execute(
            "INSERT INTO pending_points (ts_ms, data) VALUES (?1, x'0102')",
            [T0 + 2000],
        )
        .unwrap();
    let e = store.fold_pending().unwrap_err().to_string();
    assert!(
        e.contains(&format!("pending points of ts_ms {}", T0 + 2000)) && e.contains("2 bytes"),
        "{e}"
    );
    assert!(all(&store, Resolution::Raw)
        .iter()
        .all(|s| s.points.is_empty()));
    assert_eq!(store.pending_rounds(), 1, "the count is the writer's own");
}
