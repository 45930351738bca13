//! Delivery under failure: 500s, a hanging receiver, a receiver down at first, one target's
//! trouble not delaying another, a refusing receiver, and a restart from the same store file.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use infermon_alert::{Format, REFUSED_ATTEMPTS};
use infermon_detect::{Kind, Severity};
use infermon_store::{Retention, Store};

const T: f64 = 1_700_000_000.0;

fn event_and_id(g: &Got) -> String {
    let j = g.json();
    format!(
        "{} {}",
        j["event"].as_str().unwrap(),
        j["observation"]["id"].as_str().unwrap()
    )
}

#[tokio::test]
async fn answered_500_twice_then_200_is_delivered_once_and_keeps_order() {
    let rx = Receiver::start(&[Reply::Status(500), Reply::Status(500)]).await;
    let mut h = Harness::new(vec![target("ops", &rx.url("/"), Format::Json)]);
    let o = obs(Kind::ErrorRate, "engine:x", Severity::Critical, T);
    h.enqueue(&[opened(&o), resolve(&o)]);
    rx.wait_accepted(2).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let got = rx.got();
    let seen: Vec<_> = got.iter().map(|g| (event_and_id(g), g.status)).collect();
    assert_eq!(
        seen,
        [
            (format!("opened {}", o.id), Some(500)),
            (format!("opened {}", o.id), Some(500)),
            (format!("opened {}", o.id), Some(200)),
            (format!("resolved {}", o.id), Some(200)),
        ],
        "the resolution waits behind its opening's retries"
    );
    let ids: Vec<_> = got
        .iter()
        .map(|g| g.header("x-infermon-delivery").unwrap())
        .collect();
    assert!(
        ids[0] == ids[1] && ids[1] == ids[2],
        "one delivery id across retries"
    );
    wait_until("2 delivered", || {
        let s = h.stats("ops");
        s.delivered >= 2 && s.queued == 0
    })
    .await;
    let s = h.stats("ops");
    assert_eq!((s.delivered, s.failed_attempts, s.queued), (2, 2, 0));
    h.stop().await;
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_enqueue_never_waits() {
    let rx = Receiver::start(&[Reply::Hang]).await;
    let mut t = target("slow", &rx.url("/"), Format::Json);
    t.timeout = Duration::from_millis(300);
    let mut h = Harness::new(vec![t]);
    let first = obs(Kind::EngineDown, "engine:a", Severity::Critical, T);
    h.enqueue(&[opened(&first)]);
    wait_until("the hanging request", || !rx.got().is_empty()).await;
    // While the receiver hangs, queuing more is immediate.
    let started = Instant::now();
    for i in 0..20 {
        let o = obs(
            Kind::EngineDown,
            &format!("engine:{i}"),
            Severity::Critical,
            T,
        );
        assert_eq!(h.enqueue(&[opened(&o)]).enqueued, 1);
    }
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "enqueue took {:?} while the receiver hung",
        started.elapsed()
    );
    let got = rx.wait_accepted(21).await;
    assert_eq!(
        event_and_id(&got[0]),
        format!("opened {}", first.id),
        "the timed-out alert comes first"
    );
    // The receiver logs a request before its answer reaches the sender: wait for the count.
    wait_until("21 delivered", || h.stats("slow").delivered >= 21).await;
    let s = h.stats("slow");
    assert_eq!((s.delivered, s.failed_attempts), (21, 1));
    assert_eq!(rx.got().len(), 22, "one hung attempt, then each alert once");
    h.stop().await;
}

#[tokio::test]
async fn a_receiver_down_at_first_gets_everything_once_it_is_up() {
    let port = free_port().await;
    let mut h = Harness::new(vec![target(
        "late",
        &format!("http://127.0.0.1:{port}/x"),
        Format::Json,
    )]);
    let a = obs(Kind::MemoryPressure, "node", Severity::Warning, T);
    let b = obs(Kind::OomRisk, "node", Severity::Critical, T);
    h.enqueue(&[opened(&a), opened(&b), resolve(&a)]);
    wait_until("failed attempts", || h.stats("late").failed_attempts >= 2).await;
    let rx = Receiver::start_on(port, &[]).await;
    let got = rx.wait_accepted(3).await;
    let seen: Vec<_> = got.iter().map(event_and_id).collect();
    assert_eq!(
        seen,
        [
            format!("opened {}", a.id),
            format!("opened {}", b.id),
            format!("resolved {}", a.id),
        ]
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(rx.got().len(), 3);
    wait_until("3 delivered", || {
        let s = h.stats("late");
        s.delivered >= 3 && s.queued == 0
    })
    .await;
    let s = h.stats("late");
    assert_eq!((s.delivered, s.queued), (3, 0));
    h.stop().await;
}

#[tokio::test]
async fn one_broken_receiver_does_not_delay_another() {
    let bad = Receiver::start(&[Reply::Hang, Reply::Hang, Reply::Hang]).await;
    let good = Receiver::start(&[]).await;
    let mut slow = target("bad", &bad.url("/"), Format::Json);
    slow.timeout = Duration::from_secs(2);
    let down = target(
        "down",
        &format!("http://127.0.0.1:{}/", free_port().await),
        Format::Json,
    );
    let mut h = Harness::new(vec![
        slow,
        down,
        target("good", &good.url("/"), Format::Json),
    ]);
    let o = obs(Kind::CpuContention, "node", Severity::Warning, T);
    let started = Instant::now();
    h.enqueue(&[opened(&o)]);
    good.wait_accepted(1).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the good receiver waited {:?}",
        started.elapsed()
    );
    assert!(bad.accepted().is_empty());
    assert_eq!(h.stats("bad").delivered, 0);
    // Stopping waits for the hung request's timeout at most.
    drop(h.stop().await);
}

#[tokio::test]
async fn a_refused_alert_is_given_up_after_its_attempts_and_the_queue_moves_on() {
    let rx = Receiver::start(&[Reply::Status(400); REFUSED_ATTEMPTS as usize]).await;
    let mut h = Harness::new(vec![target("ops", &rx.url("/"), Format::Json)]);
    let a = obs(Kind::ModelChurn, "engine:x", Severity::Warning, T);
    let b = obs(Kind::SwapStorm, "node", Severity::Warning, T);
    h.enqueue(&[opened(&a), opened(&b)]);
    let got = rx.wait_accepted(1).await;
    assert_eq!(event_and_id(&got[0]), format!("opened {}", b.id));
    wait_until("1 delivered", || h.stats("ops").delivered >= 1).await;
    let s = h.stats("ops");
    assert_eq!(
        (s.rejected, s.delivered, s.failed_attempts),
        (1, 1, u64::from(REFUSED_ATTEMPTS))
    );
    h.stop().await;
}

#[tokio::test]
async fn a_restart_delivers_every_alert_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    // Two accepted, then the receiver fails until it is fixed.
    let rx = Receiver::start(&[
        Reply::Status(200),
        Reply::Status(200),
        Reply::Status(503),
        Reply::Status(503),
        Reply::Status(503),
        Reply::Status(503),
        Reply::Status(503),
        Reply::Status(503),
        Reply::Status(503),
        Reply::Status(503),
    ])
    .await;
    let t = target("ops", &rx.url("/"), Format::Json);
    let observations: Vec<_> = (0..5)
        .map(|i| {
            obs(
                Kind::TtftRegression,
                &format!("model:m{i}@x"),
                Severity::Warning,
                T,
            )
        })
        .collect();
    let changes: Vec<_> = observations.iter().map(opened).collect();

    let store = Store::open(&path, Retention::default()).unwrap();
    let mut h = Harness::with_store(Arc::new(Mutex::new(store)), vec![t.clone()]);
    assert_eq!(h.enqueue(&changes).enqueued, 5);
    wait_until("a failed attempt after two deliveries", || {
        let s = h.stats("ops");
        s.delivered == 2 && s.failed_attempts >= 1
    })
    .await;
    // Drop the alerter and the delivery task, then the store.
    let store = h.stop().await;
    drop(Arc::try_unwrap(store).unwrap());
    rx.script(&[]);

    let store = Store::open(&path, Retention::default()).unwrap();
    let left = store.outbox().oldest("alert:ops", 100).unwrap();
    assert_eq!(left.len(), 3);
    assert!(
        left[0].attempts >= 1
            && left[0]
                .last_error
                .as_deref()
                .unwrap()
                .starts_with("HTTP 503")
    );
    let mut h = Harness::with_store(Arc::new(Mutex::new(store)), vec![t]);
    // The detector says it again: what is still queued is not queued twice.
    assert_eq!(h.enqueue(&changes[2..]).duplicates, 3);
    rx.wait_accepted(5).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let accepted: Vec<_> = rx.accepted().iter().map(event_and_id).collect();
    let want: Vec<_> = observations
        .iter()
        .map(|o| format!("opened {}", o.id))
        .collect();
    assert_eq!(accepted, want, "each alert accepted exactly once, in order");
    assert_eq!(h.stats("ops").queued, 0);
    let store = h.stop().await;
    assert_eq!(store.lock().unwrap().outbox().len("alert:ops").unwrap(), 0);
}
