//! What is sent: each format's body and headers, the signature, routing, order, cooldown; and
//! the routing state (updates, resolutions, restore, queue cap) without a receiver.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use std::time::Duration;

use common::*;
use infermon_alert::{AlertTarget, Alerter, Format};
use infermon_detect::{Change, Kind, Severity};
use infermon_store::{Retention, Store};
use sha2::{Digest, Sha256};

const T: f64 = 1_700_000_000.0;

#[tokio::test]
async fn json_format_body_and_headers() {
    let rx = Receiver::start(&[]).await;
    let mut h = Harness::new(vec![target("ops", &rx.url("/hook"), Format::Json)]);
    let o = obs(Kind::ThermalThrottling, "gpu:0", Severity::Critical, T);
    let sum = h.enqueue(&[opened(&o)]);
    assert_eq!((sum.enqueued, sum.errors.len()), (1, 0));
    let got = rx.wait_accepted(1).await;
    let g = &got[0];
    assert_eq!(g.path, "/hook");
    assert_eq!(g.header("content-type"), Some("application/json"));
    assert!(g.header("user-agent").unwrap().starts_with("infermon/"));
    let id = g.header("x-infermon-delivery").unwrap();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(
        g.header("x-infermon-signature"),
        None,
        "no secret, no signature"
    );
    assert_eq!(
        g.json(),
        serde_json::json!({"event": "opened", "observation": serde_json::to_value(&o).unwrap()})
    );
    h.enqueue(&[resolve(&o)]);
    let got = rx.wait_accepted(2).await;
    assert_eq!(got[1].json()["event"], "resolved");
    assert_eq!(got[1].json()["observation"]["end_s"], T + 250.0);
    assert_ne!(got[1].header("x-infermon-delivery"), Some(id));
    h.stop().await;
}

#[tokio::test]
async fn slack_format_is_one_escaped_line() {
    let rx = Receiver::start(&[]).await;
    let mut h = Harness::new(vec![target("chat", &rx.url("/s"), Format::Slack)]);
    let mut o = obs(Kind::SwapStorm, "node", Severity::Warning, T);
    o.action = "Stop <the> batch job & free\nmemory.".into();
    h.enqueue(&[opened(&o), resolve(&o)]);
    let got = rx.wait_accepted(2).await;
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    assert_eq!(
        got[0].json(),
        serde_json::json!({
            "text": "[infermon] WARNING swap_storm on node: Stop &lt;the&gt; batch job &amp; free memory."
        })
    );
    assert_eq!(
        got[1].json(),
        serde_json::json!({
            "text": "[infermon] RESOLVED swap_storm on node (was warning, lasted 4m 10s)"
        })
    );
    h.stop().await;
}

#[tokio::test]
async fn ntfy_format_body_and_headers() {
    let rx = Receiver::start(&[]).await;
    let mut h = Harness::new(vec![target(
        "phone",
        &rx.url("/infermon-alerts"),
        Format::Ntfy,
    )]);
    let crit = obs(Kind::ThermalThrottling, "gpu:0", Severity::Critical, T);
    let warn = obs(
        Kind::KvSaturation,
        "engine:http://127.0.0.1:8080",
        Severity::Warning,
        T,
    );
    let info = obs(
        Kind::ModelChange,
        "model:Llama-3-ü@local",
        Severity::Info,
        T,
    );
    h.enqueue(&[opened(&crit), opened(&warn), opened(&info), resolve(&crit)]);
    let got = rx.wait_accepted(4).await;
    assert!(got.iter().all(|g| g.path == "/infermon-alerts"));
    let g = &got[0];
    assert_eq!(g.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        g.header("title"),
        Some("critical: thermal_throttling on gpu:0")
    );
    assert_eq!(g.header("priority"), Some("5"));
    assert_eq!(g.header("tags"), Some("rotating_light,thermal_throttling"));
    assert_eq!(
        g.text(),
        "Check the GPU's airflow; clocks fell 29% under load.\n\
         gpu_clock_mhz: 1410.5 (normal 1980)\n\
         at requests_running=2\n\
         id: thermal_throttling:gpu:0:1700000000000"
    );
    assert_eq!(got[1].header("priority"), Some("4"));
    assert_eq!(got[1].header("tags"), Some("warning,kv_saturation"));
    assert_eq!(got[2].header("priority"), Some("3"));
    // Not ASCII: one RFC 2047 encoded word, which ntfy decodes.
    let title = got[2].header("title").unwrap();
    assert!(
        title.starts_with("=?UTF-8?B?") && title.ends_with("?="),
        "{title}"
    );
    let r = &got[3];
    assert_eq!(
        r.header("title"),
        Some("resolved: thermal_throttling on gpu:0")
    );
    assert_eq!(r.header("priority"), Some("3"), "a resolution never pages");
    assert_eq!(
        r.header("tags"),
        Some("white_check_mark,thermal_throttling")
    );
    assert_eq!(
        r.text(),
        "Resolved after 4m 10s (was critical).\nid: thermal_throttling:gpu:0:1700000000000"
    );
    h.stop().await;
}

/// HMAC-SHA256 written out from RFC 2104, independent of the `hmac` crate.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0_u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(msg.iter().copied())
        .collect();
    let inner = Sha256::digest(&inner);
    let outer: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner.iter().copied())
        .collect();
    Sha256::digest(&outer).to_vec()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test]
async fn hmac_signature_verifies_over_the_raw_body() {
    let rx = Receiver::start(&[]).await;
    let secret = "correct horse battery staple";
    let mut json = target("signed", &rx.url("/j"), Format::Json);
    json.secret = Some(infermon_alert::Secret::new(secret));
    let mut ntfy = target("signed-ntfy", &rx.url("/n"), Format::Ntfy);
    ntfy.secret = Some(infermon_alert::Secret::new(secret));
    let mut h = Harness::new(vec![json, ntfy]);
    h.enqueue(&[opened(&obs(Kind::OomRisk, "node", Severity::Critical, T))]);
    let got = rx.wait_accepted(2).await;
    let now_s = now_ms() / 1000;
    for g in &got {
        let sig = g.header("x-infermon-signature").unwrap();
        assert_eq!(
            sig,
            format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), &g.body)))
        );
        assert_ne!(
            sig,
            format!("sha256={}", hex(&hmac_sha256(b"wrong secret", &g.body)))
        );
        let ts: i64 = g.header("x-infermon-timestamp").unwrap().parse().unwrap();
        assert!((now_s - ts).abs() <= 5, "timestamp {ts} vs now {now_s}");
    }
    // The library's own function agrees with the RFC 4231 vector and the hand-made HMAC.
    assert_eq!(
        infermon_alert::signature(b"Jefe", b"what do ya want for nothing?"),
        format!(
            "sha256={}",
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?"))
        )
    );
    h.stop().await;
}

#[tokio::test]
async fn opened_then_resolved_arrive_once_each_in_order() {
    let rx = Receiver::start(&[]).await;
    let mut h = Harness::new(vec![target("ops", &rx.url("/"), Format::Json)]);
    let o = obs(Kind::QueueBacklog, "engine:x", Severity::Warning, T);
    let sum = h.enqueue(&[
        opened(&o),
        opened(&o),
        Change::Updated(o.clone()),
        resolve(&o),
    ]);
    assert_eq!((sum.enqueued, sum.duplicates), (2, 1), "{sum:?}");
    rx.wait_accepted(2).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let got = rx.got();
    let events: Vec<_> = got.iter().map(|g| g.json()["event"].clone()).collect();
    assert_eq!(events, ["opened", "resolved"]);
    wait_until("2 delivered", || {
        let s = h.stats("ops");
        s.delivered >= 2 && s.queued == 0
    })
    .await;
    let s = h.stats("ops");
    assert_eq!(
        (s.enqueued, s.delivered, s.failed_attempts, s.queued),
        (2, 2, 0, 0)
    );
    h.stop().await;
}

#[tokio::test]
async fn routing_by_kind_and_severity() {
    let rx = Receiver::start(&[]).await;
    let all = target("all", &rx.url("/all"), Format::Json);
    let mut crit = target("crit", &rx.url("/crit"), Format::Json);
    crit.min_severity = Severity::Critical;
    let mut thermal = target("thermal", &rx.url("/thermal"), Format::Json);
    thermal.kinds = vec![Kind::ThermalThrottling, Kind::PowerCapping];
    let mut h = Harness::new(vec![all, crit, thermal]);
    let hot = obs(Kind::ThermalThrottling, "gpu:0", Severity::Warning, T);
    let swap = obs(Kind::SwapStorm, "node", Severity::Critical, T);
    let model = obs(Kind::ModelChange, "engine:x", Severity::Info, T);
    let sum = h.enqueue(&[opened(&hot), opened(&swap), opened(&model)]);
    assert_eq!(sum.enqueued, 5);
    h.enqueue(&[resolve(&hot), resolve(&swap), resolve(&model)]);
    rx.wait_accepted(10).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got = rx.got();
    let at = |path: &str| -> Vec<(String, String)> {
        got.iter()
            .filter(|g| g.path == path)
            .map(|g| {
                let j = g.json();
                (
                    j["event"].as_str().unwrap().to_owned(),
                    j["observation"]["kind"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    assert_eq!(
        at("/all"),
        pairs(&[
            ("opened", "thermal_throttling"),
            ("opened", "swap_storm"),
            ("opened", "model_change"),
            ("resolved", "thermal_throttling"),
            ("resolved", "swap_storm"),
            ("resolved", "model_change"),
        ])
    );
    assert_eq!(
        at("/crit"),
        pairs(&[("opened", "swap_storm"), ("resolved", "swap_storm")])
    );
    assert_eq!(
        at("/thermal"),
        pairs(&[
            ("opened", "thermal_throttling"),
            ("resolved", "thermal_throttling")
        ])
    );
    h.stop().await;
}

#[tokio::test]
async fn cooldown_holds_back_a_reopening_of_the_same_kind_and_subject() {
    let rx = Receiver::start(&[]).await;
    let mut t = target("ops", &rx.url("/"), Format::Json);
    t.cooldown = Duration::from_millis(400);
    let mut h = Harness::new(vec![t]);
    let first = obs(Kind::EngineDown, "engine:a", Severity::Critical, T);
    let again = obs(Kind::EngineDown, "engine:a", Severity::Critical, T + 20.0);
    let other = obs(Kind::EngineDown, "engine:b", Severity::Critical, T + 20.0);
    assert_eq!(h.enqueue(&[opened(&first), resolve(&first)]).enqueued, 2);
    let sum = h.enqueue(&[opened(&again), opened(&other)]);
    assert_eq!((sum.enqueued, sum.suppressed), (1, 1), "{sum:?}");
    assert_eq!(
        h.enqueue(&[resolve(&again)]).enqueued,
        0,
        "the resolution of a held-back opening is held back too"
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    let later = obs(Kind::EngineDown, "engine:a", Severity::Critical, T + 40.0);
    assert_eq!(
        h.enqueue(&[opened(&later)]).enqueued,
        1,
        "after the cooldown"
    );
    rx.wait_accepted(4).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ids: Vec<_> = rx
        .got()
        .iter()
        .map(|g| {
            let j = g.json();
            format!(
                "{} {}",
                j["event"].as_str().unwrap(),
                j["observation"]["id"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            format!("opened {}", first.id),
            format!("resolved {}", first.id),
            format!("opened {}", other.id),
            format!("opened {}", later.id),
        ]
    );
    assert_eq!(h.stats("ops").suppressed, 1);
    h.stop().await;
}

// Routing state, without a receiver: what lands in the outbox.

fn mem() -> Store {
    Store::open_in_memory(Retention::default()).unwrap()
}

fn queued(store: &Store, target: &str) -> Vec<String> {
    store
        .outbox()
        .oldest(&format!("alert:{target}"), 1000)
        .unwrap()
        .into_iter()
        .map(|i| i.dedup_key.unwrap())
        .collect()
}

fn quiet(name: &str) -> AlertTarget {
    target(name, "http://127.0.0.1:9/", Format::Json)
}

#[test]
fn updates_are_not_alerted_except_a_raise_past_min_severity() {
    let store = mem();
    let mut crit = quiet("crit");
    crit.min_severity = Severity::Critical;
    let mut a = Alerter::new(vec![quiet("all"), crit]).unwrap();
    let mut o = obs(Kind::KvSaturation, "engine:x", Severity::Warning, T);
    a.enqueue(&store, &[opened(&o)], 1);
    a.enqueue(&store, &[Change::Updated(o.clone())], 2);
    assert_eq!(queued(&store, "all"), [format!("all:opened:{}", o.id)]);
    assert!(queued(&store, "crit").is_empty());
    o.severity = Severity::Critical;
    let sum = a.enqueue(&store, &[Change::Updated(o.clone())], 3);
    assert_eq!(
        sum.enqueued, 1,
        "the raise reaches the critical-only target once"
    );
    assert_eq!(queued(&store, "crit"), [format!("crit:opened:{}", o.id)]);
    assert_eq!(queued(&store, "all").len(), 1, "an update is not an alert");
    a.enqueue(&store, &[Change::Updated(o.clone())], 4);
    assert_eq!(queued(&store, "crit").len(), 1);
    a.enqueue(&store, &[resolve(&o)], 5);
    assert_eq!(queued(&store, "crit").len(), 2);
    assert_eq!(queued(&store, "all").len(), 2);
}

#[test]
fn a_resolution_follows_its_opening() {
    let store = mem();
    let mut crit = quiet("crit");
    crit.min_severity = Severity::Critical;
    let mut no_resolved = quiet("quiet");
    no_resolved.send_resolved = false;
    let mut a = Alerter::new(vec![crit, no_resolved]).unwrap();
    let mut o = obs(Kind::ErrorRate, "engine:x", Severity::Warning, T);
    a.enqueue(&store, &[opened(&o)], 1);
    // Filtered at opening; resolved at a higher severity without an update in between.
    o.severity = Severity::Critical;
    a.enqueue(&store, &[resolve(&o)], 2);
    assert!(
        queued(&store, "crit").is_empty(),
        "never opened there, so never resolved"
    );
    assert_eq!(queued(&store, "quiet"), [format!("quiet:opened:{}", o.id)]);
    // An opening not seen by this alerter (a restart): resolved if the target takes it.
    let before = obs(Kind::ErrorRate, "engine:y", Severity::Critical, T);
    a.enqueue(&store, &[resolve(&before)], 3);
    assert_eq!(
        queued(&store, "crit"),
        [format!("crit:resolved:{}", before.id)]
    );
    assert_eq!(queued(&store, "quiet").len(), 1);
}

#[test]
fn restore_seeds_the_cooldown_and_open_observations() {
    let store = mem();
    let mut t = quiet("ops");
    t.cooldown = Duration::from_secs(600);
    t.min_severity = Severity::Warning;
    let mut a = Alerter::new(vec![t]).unwrap();
    let was = obs(Kind::PowerCapping, "gpu:1", Severity::Warning, T);
    let filtered = obs(Kind::BandwidthBound, "gpu:1", Severity::Info, T);
    a.restore(&[was.clone(), filtered.clone()]);
    let now = ((was.confirmed_s + 60.0) * 1000.0) as i64;
    let reopened = obs(Kind::PowerCapping, "gpu:1", Severity::Warning, T + 50.0);
    let sum = a.enqueue(&store, &[opened(&reopened)], now);
    assert_eq!(
        (sum.enqueued, sum.suppressed),
        (0, 1),
        "within the restored cooldown"
    );
    a.enqueue(&store, &[resolve(&was), resolve(&filtered)], now);
    assert_eq!(queued(&store, "ops"), [format!("ops:resolved:{}", was.id)]);
    let late = now + 600_000;
    let sum = a.enqueue(
        &store,
        &[opened(&obs(
            Kind::PowerCapping,
            "gpu:1",
            Severity::Warning,
            T + 700.0,
        ))],
        late,
    );
    assert_eq!(sum.enqueued, 1, "after the cooldown");
}

#[test]
fn queue_cap_drops_the_oldest_and_counts() {
    let store = mem();
    let mut a = Alerter::new(vec![quiet("ops"), quiet("other")])
        .unwrap()
        .with_max_queue(3);
    let changes: Vec<Change> = (0..5)
        .map(|i| {
            opened(&obs(
                Kind::CpuContention,
                &format!("s{i}"),
                Severity::Warning,
                T,
            ))
        })
        .collect();
    let sum = a.enqueue(&store, &changes, 1);
    assert_eq!((sum.enqueued, sum.dropped), (10, 4));
    let keys = queued(&store, "ops");
    assert_eq!(keys.len(), 3);
    assert!(
        keys[0].contains(":s2:") && keys[2].contains(":s4:"),
        "{keys:?}"
    );
    let stats = a.stats().snapshot();
    let s = stats.target("ops").unwrap();
    assert_eq!((s.enqueued, s.dropped, s.queued), (5, 2, 3));
}

#[test]
fn alerter_refuses_bad_or_duplicate_targets() {
    let e = Alerter::new(vec![quiet("a"), quiet("a")]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "alert target name \"a\" is used twice: expected unique names"
    );
    let mut t = quiet("a");
    t.timeout = Duration::ZERO;
    assert!(Alerter::new(vec![t])
        .unwrap_err()
        .to_string()
        .contains("timeout"));
}
