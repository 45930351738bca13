//! History queries: label matching, resolution choice, errors.

use super::{mem, mem_day, point, sample, T0};
use crate::query::parse_labels;
use crate::{HistoryQuery, Resolution, Retention, Store};
use infermon_model::series::label_key;

fn q(
    metric: &str,
    labels: &[(&str, &str)],
    from_ms: i64,
    to_ms: i64,
    res: Resolution,
) -> HistoryQuery {
    HistoryQuery {
        metric: metric.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect(),
        from_ms,
        to_ms,
        resolution: res,
    }
}

fn label_sets(store: &Store, labels: &[(&str, &str)]) -> Vec<Vec<(String, String)>> {
    store
        .history(&q("infermon_tps", labels, T0, T0, Resolution::Raw))
        .unwrap()
        .into_iter()
        .map(|s| s.labels)
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
}

#[test]
fn labels_match_exactly_not_by_substring() {
    let mut store = mem();
    let p = [
        point(
            "infermon_tps",
            &[("instance", "http://a:8080"), ("model", "llama")],
            1.0,
        ),
        point(
            "infermon_tps",
            &[("instance", "http://a:80"), ("model", "llama-3")],
            2.0,
        ),
        point(
            "infermon_tps",
            &[
                ("instance", "http://b:8080"),
                ("model", "say \"hi\",x=\"y\""),
            ],
            3.0,
        ),
        point("infermon_other", &[("instance", "http://a:8080")], 4.0),
    ];
    store.write(&sample(T0), &p).unwrap();

    assert_eq!(
        label_sets(&store, &[("instance", "http://a:80")]),
        vec![pairs(&[("instance", "http://a:80"), ("model", "llama-3")])]
    );
    assert_eq!(
        label_sets(&store, &[("model", "llama")]),
        vec![pairs(&[("instance", "http://a:8080"), ("model", "llama")])]
    );
    // A value that contains quote, comma and `x="y"` text: matched by value, not by text.
    assert_eq!(
        label_sets(&store, &[("x", "y")]),
        Vec::<Vec<(String, String)>>::new()
    );
    assert_eq!(
        label_sets(&store, &[("model", "say \"hi\",x=\"y\"")]),
        vec![pairs(&[
            ("instance", "http://b:8080"),
            ("model", "say \"hi\",x=\"y\"")
        ])]
    );
    // All pairs must match; order of the query does not matter.
    assert_eq!(
        label_sets(&store, &[("model", "llama"), ("instance", "http://a:80")]).len(),
        0
    );
    assert_eq!(
        label_sets(&store, &[("model", "llama"), ("instance", "http://a:8080")]).len(),
        1
    );
    assert_eq!(label_sets(&store, &[]).len(), 3);
    assert_eq!(label_sets(&store, &[("nope", "")]).len(), 0);
}

#[test]
fn unknown_metric_is_empty_and_names_are_listed() {
    let mut store = mem();
    store
        .write(
            &sample(T0),
            &[
                point("infermon_b", &[], 1.0),
                point("infermon_a", &[("k", "v")], 1.0),
                point("infermon_a", &[], 1.0),
            ],
        )
        .unwrap();
    assert!(store
        .history(&q("infermon_nope", &[], T0, T0, Resolution::Auto))
        .unwrap()
        .is_empty());
    assert_eq!(
        store.metric_names().unwrap(),
        vec!["infermon_a".to_owned(), "infermon_b".to_owned()]
    );
}

#[test]
fn inverted_range_is_an_error_naming_both_values() {
    let err = mem()
        .history(&q("infermon_a", &[], 5_000, 4_999, Resolution::Raw))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid time range: from_ms 5000 is after to_ms 4999"
    );
}

#[test]
fn auto_picks_by_span() {
    const H: i64 = 3_600_000;
    assert_eq!(Resolution::for_span(0), Resolution::Raw);
    assert_eq!(Resolution::for_span(2 * H), Resolution::Raw);
    assert_eq!(Resolution::for_span(2 * H + 1), Resolution::Minute);
    assert_eq!(Resolution::for_span(72 * H), Resolution::Minute);
    assert_eq!(Resolution::for_span(72 * H + 1), Resolution::Hour);

    let mut store = mem_day();
    store
        .write(&sample(T0), &[point("infermon_a", &[], 1.0)])
        .unwrap();
    let resolved = |from_ms: i64, to_ms: i64| {
        store
            .history(&q("infermon_a", &[], from_ms, to_ms, Resolution::Auto))
            .unwrap()[0]
            .resolution
    };
    assert_eq!(resolved(T0 - 2 * H, T0), Resolution::Raw);
    assert_eq!(resolved(T0 - 2 * H - 1, T0), Resolution::Minute);
    assert_eq!(resolved(T0 - 72 * H, T0), Resolution::Minute);
    assert_eq!(resolved(T0 - 72 * H - 1, T0), Resolution::Hour);
    // The resolved series carries data at that resolution.
    let h = store
        .history(&q("infermon_a", &[], T0 - 72 * H, T0, Resolution::Auto))
        .unwrap();
    assert_eq!(h[0].points.len(), 1);
    assert_eq!(h[0].points[0].ts_ms, T0);
}

#[test]
fn auto_coarsens_when_the_window_starts_before_retention() {
    const H: i64 = 3_600_000;
    let mut store = mem_day();
    let newest = T0 + 48 * H;
    store
        .write(&sample(newest), &[point("infermon_a", &[], 1.0)])
        .unwrap();
    let resolved = |from_ms: i64, to_ms: i64| {
        store
            .history(&q("infermon_a", &[], from_ms, to_ms, Resolution::Auto))
            .unwrap()[0]
            .resolution
    };
    // One hour, 30 h before the newest sample: raw points there are past the 24 h retention.
    assert_eq!(
        resolved(newest - 30 * H, newest - 29 * H),
        Resolution::Minute
    );
    assert_eq!(resolved(newest - 24 * H, newest - 23 * H), Resolution::Raw);
    // One day, 31 days back: past the 30-day minute retention.
    assert_eq!(
        resolved(newest - 31 * 24 * H, newest - 30 * 24 * H),
        Resolution::Hour
    );
    // Explicit resolutions are served as asked.
    let h = store
        .history(&q(
            "infermon_a",
            &[],
            newest - 30 * H,
            newest,
            Resolution::Raw,
        ))
        .unwrap();
    assert_eq!(h[0].resolution, Resolution::Raw);
}

#[test]
fn label_text_parses_back_to_the_pairs_it_came_from() {
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("gpu", "0".into())],
        vec![("a", String::new()), ("b", "x,y=\"z\"".into())],
        vec![
            ("path", "C:\\dir\\\"q\"\nnext".into()),
            ("u", "ünïcødé".into()),
        ],
    ];
    for labels in cases {
        let text = label_key(&labels);
        let parsed = parse_labels(&text).unwrap();
        let want: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| ((*k).into(), v.clone()))
            .collect();
        assert_eq!(parsed, want, "{text}");
    }
    for bad in [
        "gpu",
        "gpu=0",
        "gpu=\"0",
        "gpu=\"0\",",
        "gpu=\"0\"x",
        "=\"0\"",
        "gpu=\"\\t\"",
    ] {
        assert!(parse_labels(bad).is_err(), "{bad}");
    }
}

#[test]
fn malformed_stored_labels_are_an_error_naming_the_series() {
    let mut store = mem();
    store
        .write(&sample(T0), &[point("infermon_a", &[("k", "v")], 1.0)])
        .unwrap();
    store
        .conn
        .execute("UPDATE series SET labels = 'k=v'", [])
        .unwrap();
    let err = store
        .history(&q("infermon_a", &[], T0, T0, Resolution::Raw))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "series 1 in store at \":memory:\" has malformed labels \"k=v\": expected '\"' after \"k=\""
    );
}

#[test]
fn prune_drops_old_rows_by_retention() {
    const H: i64 = 3_600_000;
    const D: i64 = 24 * H;
    let mut store = mem_day();
    let old = T0;
    // Rows at: now-40d (only its hour bucket survives), now-2d (minute+hour), now-1h (all).
    let now = old + 40 * D;
    for ts in [old, now - 2 * D, now - H] {
        store
            .write(&sample(ts), &[point("infermon_a", &[], 1.0)])
            .unwrap();
    }
    store
        .write(&sample(old), &[point("infermon_gone", &[], 1.0)])
        .unwrap();
    let before = store.stats().unwrap();
    assert_eq!(
        (
            before.samples,
            before.points,
            before.rollup_1m,
            before.rollup_1h,
            before.series
        ),
        (4, 4, 4, 4, 2) // both rounds at `old` keep their raw sample
    );

    let pruned = store.prune(now).unwrap();
    assert_eq!(pruned.samples, 3);
    assert_eq!(pruned.points, 3);
    assert_eq!(pruned.rollup_1m, 2); // the two 40-day-old minute buckets
    assert_eq!(pruned.rollup_1h, 0);
    assert_eq!(pruned.series, 0); // infermon_gone keeps its hour bucket
    assert_eq!(
        store.raw_samples(i64::MIN, i64::MAX, 10).unwrap(),
        vec![sample(now - H)]
    );

    // 441 days after `old`, even the newest hour bucket (at now-1h = old+40d-1h) is past 400 days.
    let pruned = store.prune(old + 441 * D).unwrap();
    assert_eq!(
        (
            pruned.samples,
            pruned.points,
            pruned.rollup_1m,
            pruned.rollup_1h
        ),
        (1, 1, 2, 4)
    );
    assert_eq!(pruned.series, 2);
    let after = store.stats().unwrap();
    assert_eq!(
        (
            after.samples,
            after.points,
            after.rollup_1m,
            after.rollup_1h,
            after.series
        ),
        (0, 0, 0, 0, 0)
    );
    assert!(store.metric_names().unwrap().is_empty());
    // The series cache was cleared with the series: writing again recreates it.
    store
        .write(&sample(old + 441 * D), &[point("infermon_a", &[], 2.0)])
        .unwrap();
    assert_eq!(store.stats().unwrap().series, 1);
}

#[test]
fn prune_keeps_a_bucket_until_it_has_ended_past_retention() {
    let retention = Retention {
        requests: Retention::default().requests,
        raw: std::time::Duration::from_secs(10),
        points: std::time::Duration::from_secs(10),
        minute: std::time::Duration::from_secs(60),
        hour: std::time::Duration::from_secs(3600),
    };
    let mut store = Store::open_in_memory(retention).unwrap();
    store
        .write(&sample(T0 + 30_000), &[point("infermon_a", &[], 1.0)])
        .unwrap();
    // Minute bucket [T0, T0+60s) ends at T0+60s; retention 60 s: kept until now >= T0+120s.
    assert_eq!(store.prune(T0 + 119_999).unwrap().rollup_1m, 0);
    assert_eq!(store.prune(T0 + 120_000).unwrap().rollup_1m, 1);
    // The point at T0+30s is older than 10 s.
    assert_eq!(store.stats().unwrap().points, 0);
    assert_eq!(store.stats().unwrap().rollup_1h, 1);
}
