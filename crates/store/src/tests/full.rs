//! A full disk: a write fails as a whole with an error that says so and may be retried,
//! reading goes on, and the same round is written once there is room again.

use super::{point, sample, T0};
use crate::{Retention, Store};

#[test]
fn a_write_on_a_full_disk_fails_whole_and_succeeds_later() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let mut store = Store::open(&path, Retention::default()).unwrap();
    store
        .write(&sample(T0), &[point("infermon_a", &[("gpu", "0")], 1.0)])
        .unwrap();
    let before = store.stats().unwrap();
    let cap = store.limit_size(0).unwrap();
    assert_eq!(cap, before.size_bytes, "never below what the file holds");
    // Many new series: the round needs pages the file does not have.
    let labels: Vec<String> = (0..300)
        .map(|i| format!("{i}-{}", "x".repeat(80)))
        .collect();
    let points: Vec<_> = labels
        .iter()
        .map(|l| point("infermon_a", &[("gpu", l)], 2.0))
        .collect();
    let err = store.write(&sample(T0 + 1000), &points).unwrap_err();
    assert!(err.is_disk_full() && err.is_retryable(), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("in store at \"{}\"", path.display())) && text.contains("full"),
        "{text}"
    );
    // Nothing of the round is stored, and reading goes on.
    let after = store.stats().unwrap();
    assert_eq!(
        (after.samples, after.series, after.points),
        (before.samples, before.series, before.points)
    );
    assert_eq!(store.latest_sample().unwrap(), Some(sample(T0)));

    store.limit_size(1 << 30).unwrap();
    store.write(&sample(T0 + 1000), &points).unwrap();
    let stats = store.stats().unwrap();
    assert_eq!((stats.samples, stats.series), (2, 301));
    assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_owned()]);
}

#[test]
fn errors_about_the_data_are_not_retryable() {
    let err = crate::StoreError::InvalidRange {
        from_ms: 2,
        to_ms: 1,
    };
    assert!(!err.is_retryable() && !err.is_disk_full());
}
