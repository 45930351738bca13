//! Writing and reading back samples and points.

use super::{mem, point, sample, T0};
use crate::{HistoryQuery, Resolution, StoreError};

#[test]
fn write_then_read_round_trips_samples_and_points() {
    let mut store = mem();
    for i in 0..3 {
        let ts = T0 + i * 1000;
        let p = [
            point(
                "infermon_gpu_power_watts",
                &[("gpu", "0")],
                300.0 + i as f64,
            ),
            point("infermon_gpu_power_watts", &[("gpu", "1")], 100.0),
        ];
        store.write(&sample(ts), &p).unwrap();
    }
    let samples = store.raw_samples(T0, T0 + 2000, 100).unwrap();
    assert_eq!(
        samples,
        vec![sample(T0), sample(T0 + 1000), sample(T0 + 2000)]
    );
    assert_eq!(store.raw_samples(T0, T0 + 2000, 2).unwrap().len(), 2);
    assert_eq!(store.raw_samples(T0 + 1, T0 + 999, 10).unwrap(), vec![]);
    assert_eq!(store.latest_sample().unwrap(), Some(sample(T0 + 2000)));

    let h = store
        .history(&HistoryQuery {
            metric: "infermon_gpu_power_watts".into(),
            labels: vec![("gpu".into(), "0".into())],
            from_ms: T0,
            to_ms: T0 + 2000,
            resolution: Resolution::Raw,
        })
        .unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].name, "infermon_gpu_power_watts");
    assert_eq!(h[0].labels, vec![("gpu".to_owned(), "0".to_owned())]);
    assert_eq!(h[0].kind, "gauge");
    assert_eq!(h[0].resolution, Resolution::Raw);
    let values: Vec<(i64, f64, u64)> = h[0]
        .points
        .iter()
        .map(|p| (p.ts_ms, p.value, p.count))
        .collect();
    assert_eq!(
        values,
        vec![(T0, 300.0, 1), (T0 + 1000, 301.0, 1), (T0 + 2000, 302.0, 1)]
    );
    assert!(h[0]
        .points
        .iter()
        .all(|p| p.min == p.value && p.max == p.value && p.last == p.value));

    let stats = store.stats().unwrap();
    assert_eq!((stats.samples, stats.series, stats.points), (3, 2, 6));
    assert_eq!((stats.rollup_1m, stats.rollup_1h), (2, 2));
    assert_eq!(stats.schema_version, crate::schema::SCHEMA_VERSION);
    assert!(stats.size_bytes > 0);
    assert_eq!(
        store.metric_names().unwrap(),
        vec!["infermon_gpu_power_watts".to_owned()]
    );
}

#[test]
fn empty_store_reads_empty() {
    let store = mem();
    assert_eq!(store.latest_sample().unwrap(), None);
    assert!(store
        .raw_samples(i64::MIN, i64::MAX, usize::MAX)
        .unwrap()
        .is_empty());
    assert!(store.metric_names().unwrap().is_empty());
}

/// Two rounds at the same wall time (the clock was set back): both raw samples are kept, in
/// write order; the series point keeps the later value.
#[test]
fn same_ts_keeps_both_samples_and_the_later_value() {
    let mut store = mem();
    let mut first = sample(T0);
    first.agent.collect_ms = 1.0;
    store
        .write(&first, &[point("infermon_x", &[], 1.0)])
        .unwrap();
    store
        .write(&sample(T0), &[point("infermon_x", &[], 5.0)])
        .unwrap();
    assert_eq!(
        store.raw_samples(T0, T0, 10).unwrap(),
        vec![first, sample(T0)]
    );
    assert_eq!(store.latest_sample().unwrap(), Some(sample(T0)));
    let stats = store.stats().unwrap();
    assert_eq!((stats.samples, stats.points), (2, 1));
    for res in [Resolution::Raw, Resolution::Minute, Resolution::Hour] {
        let h = store
            .history(&HistoryQuery {
                metric: "infermon_x".into(),
                labels: vec![],
                from_ms: T0,
                to_ms: T0,
                resolution: res,
            })
            .unwrap();
        let p = h[0].points[0];
        assert_eq!(
            (p.value, p.min, p.max, p.last, p.count),
            (5.0, 5.0, 5.0, 5.0, 1),
            "{res:?}"
        );
    }
}

#[test]
fn non_finite_values_are_skipped_and_counted_never_zero() {
    let mut store = mem();
    let p = [
        point("infermon_a", &[], f64::NAN),
        point("infermon_a", &[("x", "1")], f64::INFINITY),
        point("infermon_a", &[("x", "2")], f64::NEG_INFINITY),
        point("infermon_a", &[("x", "3")], 7.0),
    ];
    store.write(&sample(T0), &p).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!(stats.skipped_non_finite, 3);
    assert_eq!((stats.points, stats.series, stats.rollup_1m), (1, 1, 1));
    let h = store
        .history(&HistoryQuery {
            metric: "infermon_a".into(),
            labels: vec![],
            from_ms: T0,
            to_ms: T0,
            resolution: Resolution::Raw,
        })
        .unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].points[0].value, 7.0);
    // Counted across writes.
    store.write(&sample(T0 + 1000), &p[..1]).unwrap();
    assert_eq!(store.stats().unwrap().skipped_non_finite, 4);
}

/// A file written by a newer build, whose samples carry fields this build does not know,
/// still reads: unknown fields are ignored.
#[test]
fn stored_sample_with_unknown_fields_still_reads() {
    let store = mem();
    let mut json = serde_json::to_value(sample(T0)).unwrap();
    json["future_top_level"] = serde_json::json!({"a": 1});
    json["host"]["future_host_field"] = serde_json::json!([1, 2]);
    json["gpus"][0]["future_gpu_field"] = serde_json::json!("x");
    store
        .conn
        .execute(
            "INSERT INTO samples (ts_ms, raw) VALUES (?1, ?2)",
            (T0, json.to_string()),
        )
        .unwrap();
    assert_eq!(store.raw_samples(T0, T0, 1).unwrap(), vec![sample(T0)]);
    assert_eq!(store.latest_sample().unwrap(), Some(sample(T0)));
}

/// Honest about today's limit: `RawSample`'s fields are required, so a stored record that
/// lacks one fails, naming its time. New fields must be `#[serde(default)]` (crate docs).
#[test]
fn stored_sample_missing_a_required_field_is_an_error_naming_its_ts() {
    let store = mem();
    let mut json = serde_json::to_value(sample(T0)).unwrap();
    json.as_object_mut().unwrap().remove("agent");
    store
        .conn
        .execute(
            "INSERT INTO samples (ts_ms, raw) VALUES (?1, ?2)",
            (T0, json.to_string()),
        )
        .unwrap();
    let err = store.raw_samples(T0, T0, 1).unwrap_err();
    assert!(
        matches!(err, StoreError::Decode { ts_ms: T0, .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("stored sample at ts_ms {T0} in store at \":memory:\" does not decode: missing field `agent`")),
        "{text}"
    );
}

#[test]
fn raw_samples_rejects_an_inverted_range() {
    let err = mem().raw_samples(20, 10, 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid time range: from_ms 20 is after to_ms 10"
    );
}
