//! The hub's deferred writes through its own API: pushes pend, one claimed fold applies
//! them (and checkpoints), and history answers every pushed round whether folded or not.

#![allow(clippy::unwrap_used)]

use infermon_fleet::push::PushedSample;
use infermon_model::{derive, testing, DeriveSettings};
use infermon_store::{HistoryQuery, Resolution, Retention};

use crate::{Hub, FOLD_ROUNDS};

const JOIN: &str = "join-token-for-the-fold-test";
const T0: i64 = 1_800_000_000_000;

fn round(ts: i64) -> (PushedSample, &'static str) {
    let mut raw = testing::sample_with_engine(0, 0.0, 0.0);
    raw.ts_unix_ms = ts;
    let snapshot = derive(None, &raw, &DeriveSettings::default());
    // A series every round has (the first the snapshot exports).
    let name = snapshot.series()[0].name;
    let s = PushedSample {
        raw,
        snapshot: snapshot.into(),
        observations: Vec::new(),
        endpoint: None,
    };
    (s, name)
}

fn points(hub: &Hub, metric: &str) -> usize {
    let q = HistoryQuery {
        metric: metric.to_string(),
        labels: Vec::new(),
        from_ms: T0 - 1,
        to_ms: T0 + 3_600_000,
        resolution: Resolution::Raw,
    };
    hub.history("n1", &q)
        .unwrap()
        .iter()
        .map(|s| s.points.len())
        .sum()
}

#[test]
fn pushes_pend_until_one_claimed_fold_and_history_never_misses_them() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(dir.path(), JOIN, Retention::default()).unwrap();
    let token = hub.join(JOIN, "n1", T0).unwrap().token;
    let push = |i: i64| {
        let (s, name) = round(T0 + i * 2000);
        let body = serde_json::to_vec(&[s]).unwrap();
        let (_, reply) = hub.push(&token, &body, false, T0 + i * 2000).unwrap();
        assert_eq!(reply.accepted, 1, "round {i}");
        name
    };
    let metric = push(0);
    for i in 1..FOLD_ROUNDS as i64 - 1 {
        assert!(!hub.fold_due("n1"), "due after {i} rounds");
        push(i);
    }
    assert!(!hub.fold_due("n1"), "due after {} rounds", FOLD_ROUNDS - 1);
    push(FOLD_ROUNDS as i64 - 1);
    // The first caller claims the fold; pushes meanwhile do not claim it again.
    assert!(hub.fold_due("n1"));
    push(FOLD_ROUNDS as i64);
    assert!(!hub.fold_due("n1"), "claimed twice");
    assert_eq!(hub.fold("n1").unwrap(), FOLD_ROUNDS + 1);
    assert!(!hub.fold_due("n1"), "nothing pends after the fold");
    // Pending again, and read: history folds first, so every round is there.
    push(FOLD_ROUNDS as i64 + 1);
    assert_eq!(points(&hub, metric), FOLD_ROUNDS as usize + 2);
    // The WAL was checkpointed by the fold and the files read back after a reopen.
    drop(hub);
    let hub = Hub::open(dir.path(), JOIN, Retention::default()).unwrap();
    assert_eq!(points(&hub, metric), FOLD_ROUNDS as usize + 2);
}

#[test]
fn first_pushes_of_new_nodes_at_once_land_in_one_store_per_node() {
    let dir = tempfile::tempdir().unwrap();
    let hub = Hub::open(dir.path(), JOIN, Retention::default()).unwrap();
    let names = ["a1", "a2", "a3", "a4"];
    let tokens: Vec<String> = names
        .iter()
        .map(|n| hub.join(JOIN, n, T0).unwrap().token)
        .collect();
    // Two first pushes of each new node at the same moment, with different samples: both
    // land in the one store of that node (a second store opened beside the first would
    // hold one of them only).
    std::thread::scope(|s| {
        for token in &tokens {
            for i in 0..2 {
                let hub = &hub;
                s.spawn(move || {
                    let (sample, _) = round(T0 + i * 2000);
                    let body = serde_json::to_vec(&[sample]).unwrap();
                    let (_, reply) = hub.push(token, &body, false, T0 + i * 2000).unwrap();
                    assert_eq!(reply.accepted, 1);
                });
            }
        }
    });
    assert!(hub.opening.lock().unwrap().is_empty(), "openers forgotten");
    for n in names {
        let q = HistoryQuery {
            metric: round(T0).1.to_string(),
            labels: Vec::new(),
            from_ms: T0 - 1,
            to_ms: T0 + 3_600_000,
            resolution: Resolution::Raw,
        };
        let got: usize = hub
            .history(n, &q)
            .unwrap()
            .iter()
            .map(|s| s.points.len())
            .sum();
        assert_eq!(got, 2, "node {n}: both first rounds in its store");
    }
}
