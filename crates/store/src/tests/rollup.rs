//! Rollup arithmetic, worked by hand.

use super::{mem, point, sample, T0};
use crate::{HistoryPoint, HistoryQuery, Resolution, Store};

fn write_values(store: &mut Store, values: &[(i64, f64)]) {
    for &(offset_ms, v) in values {
        let ts = T0 + offset_ms;
        store
            .write(&sample(ts), &[point("infermon_v", &[("gpu", "0")], v)])
            .unwrap();
    }
}

fn read(store: &Store, res: Resolution, from_ms: i64, to_ms: i64) -> Vec<HistoryPoint> {
    let mut h = store
        .history(&HistoryQuery {
            metric: "infermon_v".into(),
            labels: vec![],
            from_ms,
            to_ms,
            resolution: res,
        })
        .unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].resolution, res);
    h.remove(0).points
}

fn hp(ts_ms: i64, value: f64, min: f64, max: f64, last: f64, count: u64) -> HistoryPoint {
    HistoryPoint {
        ts_ms,
        value,
        min,
        max,
        last,
        count,
    }
}

#[test]
fn minute_and_hour_rollups_hold_mean_min_max_last() {
    let mut store = mem();
    // Minute 0: 10, 30, 20 → count 3, mean 20, min 10, max 30, last 20.
    // Minute 1: 5, 15     → count 2, mean 10, min 5,  max 15, last 15.
    // Hour:                 count 5, mean 16, min 5,  max 30, last 15.
    write_values(
        &mut store,
        &[
            (0, 10.0),
            (20_000, 30.0),
            (50_000, 20.0),
            (60_000, 5.0),
            (90_000, 15.0),
        ],
    );

    let minutes = read(&store, Resolution::Minute, T0, T0 + 119_999);
    assert_eq!(
        minutes,
        vec![
            hp(T0, 20.0, 10.0, 30.0, 20.0, 3),
            hp(T0 + 60_000, 10.0, 5.0, 15.0, 15.0, 2)
        ]
    );
    let hours = read(&store, Resolution::Hour, T0, T0 + 119_999);
    assert_eq!(hours, vec![hp(T0, 16.0, 5.0, 30.0, 15.0, 5)]);

    // A window starting inside a bucket returns the whole overlapping bucket.
    let overlap = read(&store, Resolution::Minute, T0 + 30_000, T0 + 60_000);
    assert_eq!(overlap.len(), 2);
    assert_eq!(overlap[0].ts_ms, T0);
    // A window ending before a bucket starts leaves it out.
    assert_eq!(read(&store, Resolution::Minute, T0, T0 + 59_999).len(), 1);
}

#[test]
fn out_of_order_point_updates_sums_but_not_last() {
    let mut store = mem();
    write_values(&mut store, &[(0, 10.0), (50_000, 20.0)]);
    // Late arrival from earlier in the minute: counted, but `last` stays the newest point's.
    write_values(&mut store, &[(30_000, 90.0)]);
    assert_eq!(
        read(&store, Resolution::Minute, T0, T0),
        vec![hp(T0, 40.0, 10.0, 90.0, 20.0, 3)]
    );
    assert_eq!(
        read(&store, Resolution::Hour, T0, T0),
        vec![hp(T0, 40.0, 10.0, 90.0, 20.0, 3)]
    );
}

#[test]
fn rewriting_a_point_recomputes_its_buckets() {
    let mut store = mem();
    write_values(&mut store, &[(0, 10.0), (20_000, 30.0), (60_000, 5.0)]);
    // Replace the minute's maximum: 30 → 2. Minute 0 is now {10, 2}; the hour {10, 2, 5}.
    write_values(&mut store, &[(20_000, 2.0)]);
    assert_eq!(
        read(&store, Resolution::Minute, T0, T0 + 60_000),
        vec![
            hp(T0, 6.0, 2.0, 10.0, 2.0, 2),
            hp(T0 + 60_000, 5.0, 5.0, 5.0, 5.0, 1)
        ]
    );
    let hour = read(&store, Resolution::Hour, T0, T0);
    assert_eq!(hour, vec![hp(T0, 17.0 / 3.0, 2.0, 10.0, 5.0, 3)]);
}

#[test]
fn buckets_align_to_utc_boundaries_even_before_1970() {
    assert_eq!(crate::write::bucket_start(-1, 60_000), -60_000);
    assert_eq!(crate::write::bucket_start(0, 60_000), 0);
    assert_eq!(crate::write::bucket_start(T0 + 3_599_999, 3_600_000), T0);
}

/// A round of 250 series is written in chunks of statements (100, 100, 50): every series gets
/// its point and its buckets, and a series given twice in a round keeps the later value with
/// buckets recomputed, as one point per series would.
#[test]
fn a_round_of_many_series_is_written_whole_in_chunks() {
    let mut store = mem();
    let gpus: Vec<String> = (0..250).map(|i| i.to_string()).collect();
    let round = |k: f64| -> Vec<infermon_model::series::SeriesPoint> {
        gpus.iter()
            .enumerate()
            .map(|(i, g)| point("infermon_v", &[("gpu", g)], i as f64 + k))
            .collect()
    };
    store.write(&sample(T0), &round(0.0)).unwrap();
    store.write(&sample(T0 + 10_000), &round(100.0)).unwrap();
    // Series 7 twice in one round (the third chunk holds the repeat): 1000 wins over 107+100.
    let mut third = round(200.0);
    third.push(point("infermon_v", &[("gpu", "7")], 1000.0));
    store.write(&sample(T0 + 20_000), &third).unwrap();
    let minute = |gpu: &str| {
        let h = store
            .history(&HistoryQuery {
                metric: "infermon_v".into(),
                labels: vec![("gpu".into(), gpu.into())],
                from_ms: T0,
                to_ms: T0 + 59_999,
                resolution: Resolution::Minute,
            })
            .unwrap();
        assert_eq!(h.len(), 1, "gpu {gpu}");
        h[0].points.clone()
    };
    // gpu i: i, i+100, i+200 → mean i+100, min i, max i+200, last i+200.
    for i in [0_u32, 99, 100, 199, 249] {
        let v = f64::from(i);
        assert_eq!(
            minute(&i.to_string()),
            vec![hp(T0, v + 100.0, v, v + 200.0, v + 200.0, 3)],
            "gpu {i}"
        );
    }
    // gpu 7: 7, 107, 1000 → mean 371.33…, min 7, max 1000, last 1000.
    let p = minute("7");
    assert_eq!(
        (p[0].count, p[0].min, p[0].max, p[0].last),
        (3, 7.0, 1000.0, 1000.0)
    );
    assert!((p[0].value - 1114.0 / 3.0).abs() < 1e-9, "{p:?}");
}
