//! The outbox: dedup, due order, delivered/failed, caps, and persistence across reopen.

use super::{mem, T0};
use crate::{Retention, Store};

#[test]
fn enqueue_dedups_per_channel_and_never_without_a_key() {
    let store = mem();
    let ob = store.outbox();
    assert!(ob.enqueue("a", Some("k1"), b"one", T0).unwrap());
    assert!(
        !ob.enqueue("a", Some("k1"), b"other", T0 + 5).unwrap(),
        "the same key in the same channel is enqueued once"
    );
    assert!(
        ob.enqueue("b", Some("k1"), b"one", T0).unwrap(),
        "keys are per channel"
    );
    assert!(ob.enqueue("a", None, b"x", T0).unwrap());
    assert!(ob.enqueue("a", None, b"x", T0).unwrap(), "no key, no dedup");
    assert_eq!(ob.len("a").unwrap(), 3);
    assert_eq!(ob.len("b").unwrap(), 1);
    assert_eq!(ob.len("c").unwrap(), 0);
    assert!(ob.is_empty("c").unwrap());
    let first = &ob.due("a", T0, 10).unwrap()[0];
    assert_eq!(first.payload, b"one", "the first payload is kept");
    assert_eq!(first.dedup_key.as_deref(), Some("k1"));
    assert_eq!((first.created_ms, first.next_try_ms), (T0, T0));
    assert_eq!((first.attempts, first.last_error.as_deref()), (0, None));
}

#[test]
fn a_delivered_key_can_be_enqueued_again() {
    let store = mem();
    let ob = store.outbox();
    assert!(ob.enqueue("a", Some("k"), b"1", T0).unwrap());
    let id = ob.due("a", T0, 1).unwrap()[0].id;
    assert!(ob.delivered(id).unwrap());
    assert!(!ob.delivered(id).unwrap(), "already gone");
    assert_eq!(ob.get(id).unwrap(), None);
    assert!(ob.enqueue("a", Some("k"), b"1", T0).unwrap());
}

#[test]
fn due_is_oldest_first_within_the_channel_and_respects_next_try() {
    let store = mem();
    let ob = store.outbox();
    for i in 0..5_i64 {
        // Created out of time order: order is arrival (id), not created_ms.
        ob.enqueue("a", Some(&format!("k{i}")), &[i as u8], T0 - i)
            .unwrap();
        ob.enqueue("other", None, b"-", T0).unwrap();
    }
    let due = ob.due("a", T0, 10).unwrap();
    assert_eq!(
        due.iter().map(|i| i.payload[0]).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert!(due.iter().all(|i| i.channel == "a"));
    assert!(due.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(ob.due("a", T0, 2).unwrap().len(), 2, "limit");
    assert_eq!(
        ob.due("a", T0 - 3, 10).unwrap().len(),
        2,
        "only items due by now_ms"
    );

    // A failure moves the item out of `due` until its next try, but not out of `oldest`.
    assert!(ob.failed(due[0].id, "HTTP 500", T0 + 1_000).unwrap());
    let now = ob.due("a", T0, 10).unwrap();
    assert_eq!(now.len(), 4);
    assert_eq!(now[0].id, due[1].id);
    let head = &ob.oldest("a", 1).unwrap()[0];
    assert_eq!(head.id, due[0].id);
    assert_eq!(head.attempts, 1);
    assert_eq!(head.next_try_ms, T0 + 1_000);
    assert_eq!(head.last_error.as_deref(), Some("HTTP 500"));
    assert_eq!(ob.due("a", T0 + 1_000, 10).unwrap()[0].id, due[0].id);

    ob.failed(due[0].id, "timed out", T0 + 3_000).unwrap();
    let again = ob.get(due[0].id).unwrap().unwrap();
    assert_eq!(again.attempts, 2);
    assert_eq!(again.last_error.as_deref(), Some("timed out"));
    assert!(!ob.failed(i64::MAX, "x", T0).unwrap(), "unknown id");
}

#[test]
fn failed_cuts_long_errors() {
    let store = mem();
    let ob = store.outbox();
    ob.enqueue("a", None, b"", T0).unwrap();
    let id = ob.oldest("a", 1).unwrap()[0].id;
    let long = "é".repeat(5_000);
    ob.failed(id, &long, T0).unwrap();
    let err = ob.get(id).unwrap().unwrap().last_error.unwrap();
    assert!(err.len() <= 2_000 && err.len() >= 1_998, "{}", err.len());
    assert!(long.starts_with(&err));
}

#[test]
fn trim_drops_the_oldest_and_counts_them() {
    let store = mem();
    let ob = store.outbox();
    for i in 0..10_u8 {
        ob.enqueue("a", None, &[i], T0).unwrap();
    }
    ob.enqueue("b", None, b"b", T0).unwrap();
    assert_eq!(ob.trim("a", 20).unwrap(), 0);
    assert_eq!(ob.trim("a", 4).unwrap(), 6);
    assert_eq!(
        ob.oldest("a", 100)
            .unwrap()
            .iter()
            .map(|i| i.payload[0])
            .collect::<Vec<_>>(),
        [6, 7, 8, 9],
        "the newest are kept"
    );
    assert_eq!(ob.len("b").unwrap(), 1, "other channels untouched");
    assert_eq!(ob.trim("a", 0).unwrap(), 4);
    assert_eq!(ob.len("a").unwrap(), 0);
}

#[test]
fn ids_are_not_reused_after_delete() {
    let store = mem();
    let ob = store.outbox();
    ob.enqueue("a", None, b"1", T0).unwrap();
    let first = ob.oldest("a", 1).unwrap()[0].id;
    ob.delivered(first).unwrap();
    ob.enqueue("a", None, b"2", T0).unwrap();
    assert!(ob.oldest("a", 1).unwrap()[0].id > first);
}

#[test]
fn items_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox.db");
    {
        let store = Store::open(&path, Retention::default()).unwrap();
        let ob = store.outbox();
        ob.enqueue("alert:x", Some("k1"), b"p1", T0).unwrap();
        ob.enqueue("alert:x", Some("k2"), b"p2", T0).unwrap();
        let id = ob.oldest("alert:x", 1).unwrap()[0].id;
        ob.failed(id, "connection refused", T0 + 500).unwrap();
    }
    let store = Store::open(&path, Retention::default()).unwrap();
    let ob = store.outbox();
    let items = ob.oldest("alert:x", 10).unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].payload, b"p1");
    assert_eq!(items[0].attempts, 1);
    assert_eq!(items[0].next_try_ms, T0 + 500);
    assert!(
        !ob.enqueue("alert:x", Some("k1"), b"p1", T0).unwrap(),
        "dedup holds across reopen"
    );
}
