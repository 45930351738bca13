//! Constructed fleets: snapshots derived from test samples, then set to the figures each case
//! needs (the crate reads snapshots only, so this is the same input the hub will pass).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use infermon_detect::{Evidence, Kind, Observation, Severity};
use infermon_model::detail::{ModelFigures, ModelRaw};
use infermon_model::stats::Summary;
use infermon_model::wes::{NoWes, Wes};
use infermon_model::{derive, testing, DeriveSettings};

use crate::*;

const NOW: i64 = 1_800_000_000_000;

fn node(name: &str, model: &str, wes: Option<f64>) -> Node {
    let raw = testing::sample_with_engine(0, 0.0, 0.0);
    let mut snapshot = derive(None, &raw, &DeriveSettings::default());
    let e = &mut snapshot.engines[0];
    e.model = model.to_string();
    e.up = true;
    e.requests_waiting = Some(0.0);
    e.slots_total = Some(1);
    snapshot.efficiency.generation_tokens_per_second = wes.map(|w| w * 10.0);
    snapshot.efficiency.power_watts = Some(10.0);
    snapshot.efficiency.wes = wes
        .map(|w| Wes {
            raw: w,
            penalized: w,
            thermal_cost_percent: 0.0,
        })
        .ok_or(NoWes::NoPower);
    Node {
        name: name.to_string(),
        last_seen_unix_ms: NOW - 1_000,
        interval_seconds: 2.0,
        snapshot: Arc::new(snapshot),
        observations: Vec::new(),
        endpoint: None,
    }
}

fn observation(kind: Kind, severity: Severity) -> Observation {
    Observation {
        id: Observation::make_id(kind, "node", 1.0),
        kind,
        start_s: 1.0,
        confirmed_s: 5.0,
        end_s: None,
        severity,
        subject: "node".into(),
        evidence: Evidence::default(),
        cause: None,
        action: "cool it".into(),
    }
}

fn measured(n: &mut Node, model: &str, ttft_ms: f64, e2e_ms: f64) {
    let s = |v: f64| Summary {
        count: 20,
        mean: v,
        min: v,
        p50: v,
        p90: v,
        p99: v,
        max: v,
    };
    let mut r: infermon_model::reqstats::RequestStats = serde_json::from_value(serde_json::json!({
        "upstream": "http://127.0.0.1:8080", "model": model, "window_seconds": 20.0,
        "requests": 20, "completed": 20, "errors": 0, "cancelled": 0, "error_ratio": 0.0,
        "outcomes": {}, "prompt_tokens": 0, "completion_tokens": 0,
        "output_tokens_per_second": 0.0, "requests_per_second": 1.0
    }))
    .unwrap();
    r.ttft_ms = Some(s(ttft_ms));
    r.e2e_ms = Some(s(e2e_ms));
    Arc::make_mut(&mut n.snapshot).requests.push(r);
}

#[test]
fn liveness_follows_the_interval_then_a_minute() {
    let mut n = node("a", "m", Some(1.0));
    assert_eq!(n.liveness(NOW), Liveness::Up);
    n.last_seen_unix_ms = NOW - 9_000; // 3 × 2 s < 9 s ≤ 10 s floor
    assert_eq!(n.liveness(NOW), Liveness::Up);
    n.last_seen_unix_ms = NOW - 11_000;
    assert_eq!(n.liveness(NOW), Liveness::Stale);
    n.last_seen_unix_ms = NOW - 61_000;
    assert_eq!(n.liveness(NOW), Liveness::Down);
    n.interval_seconds = 30.0; // a slow node is up for three of its intervals
    n.last_seen_unix_ms = NOW - 59_000;
    assert_eq!(n.liveness(NOW), Liveness::Up);
    n.last_seen_unix_ms = NOW + 5_000; // its clock ahead of ours
    assert_eq!(n.age_s(NOW), 0.0);
}

#[test]
fn leaderboard_ranks_by_penalized_wes_and_lists_the_rest_with_why() {
    let mut hot = node("hot", "m", Some(80.0));
    Arc::make_mut(&mut hot.snapshot).efficiency.wes = Ok(Wes {
        raw: 100.0,
        penalized: 40.0,
        thermal_cost_percent: 60.0,
    });
    let mut gone = node("gone", "m", Some(500.0));
    gone.last_seen_unix_ms = NOW - 120_000;
    let fleet = [
        node("b", "m", Some(50.0)),
        hot,
        node("nopower", "m", None),
        gone,
        node("a", "m", Some(50.0)),
        node("other", "x", Some(900.0)),
    ];
    let b = leaderboard(&fleet, Some("m"), NOW);
    let order: Vec<_> = b.ranked.iter().map(|r| (r.rank, r.node.as_str())).collect();
    // The degraded node falls in rank by its penalized WES although its raw WES is highest;
    // ties keep name order; the node serving another model is not on this board.
    assert_eq!(order, [(1, "a"), (2, "b"), (3, "hot")]);
    assert_eq!(b.ranked[2].wes_raw, 100.0);
    assert_eq!(b.ranked[2].thermal_cost_percent, 60.0);
    let why: Vec<_> = b
        .unranked
        .iter()
        .map(|u| (u.node.as_str(), u.why.as_str()))
        .collect();
    assert_eq!(
        why,
        [
            ("gone", "down: last heard from 120 s ago"),
            ("nopower", "WES unavailable: no power reading on this node")
        ]
    );
    // Without a model every node is on the board.
    let all = leaderboard(&fleet, None, NOW);
    assert_eq!(all.ranked[0].node, "other");
    assert_eq!(all.ranked.len() + all.unranked.len(), fleet.len());
}

#[test]
fn a_loaded_node_beats_a_faster_one_that_would_have_to_load_the_model() {
    let mut loaded = node("loaded", "qwen", Some(10.0));
    measured(&mut loaded, "qwen", 300.0, 4_000.0);
    let mut fast = node("fast", "llama", Some(50.0));
    measured(&mut fast, "qwen", 40.0, 800.0);
    Arc::make_mut(&mut fast.snapshot).engines[0].models = Some(vec![ModelFigures {
        raw: ModelRaw {
            name: "qwen".into(),
            state: "stopped".into(),
            size_bytes: None,
            vram_bytes: None,
            context_length: None,
            expires_unix_ms: None,
            quantization: None,
            parameter_size: None,
            upstream: None,
        },
        cpu_offload_ratio: None,
    }]);
    assert_eq!(fast.serves("qwen"), Some(Serving::Cold));
    let r = route(&[fast, loaded], "qwen", NOW, &RouteSettings::default()).unwrap();
    assert_eq!(r.node, "loaded", "{r:#?}");
    assert!(r.candidates[1].why.contains("not loaded"), "{r:#?}");
}

#[test]
fn a_throttling_or_queued_node_loses_to_a_healthy_one() {
    let mut throttled = node("throttled", "m", Some(60.0));
    measured(&mut throttled, "m", 50.0, 1_000.0);
    throttled
        .observations
        .push(observation(Kind::ThermalThrottling, Severity::Warning));
    let mut healthy = node("healthy", "m", Some(40.0));
    measured(&mut healthy, "m", 60.0, 1_000.0);
    let s = RouteSettings::default();
    let r = route(&[throttled.clone(), healthy.clone()], "m", NOW, &s).unwrap();
    assert_eq!(r.node, "healthy", "{r:#?}");
    assert!(r.candidates[1].why.contains("thermal_throttling"), "{r:#?}");
    // Without the observation the more efficient, equally fast node wins.
    throttled.observations.clear();
    let r = route(&[throttled.clone(), healthy.clone()], "m", NOW, &s).unwrap();
    assert_eq!(r.node, "throttled", "{r:#?}");
    // A queue of four one-second requests on one slot outweighs a 10 ms TTFT edge.
    Arc::make_mut(&mut throttled.snapshot).engines[0].requests_waiting = Some(4.0);
    let r = route(&[throttled, healthy], "m", NOW, &s).unwrap();
    assert_eq!(r.node, "healthy", "{r:#?}");
}

#[test]
fn a_down_node_is_never_chosen_and_no_node_is_a_503_with_reasons() {
    let mut down = node("down", "m", Some(1000.0));
    down.last_seen_unix_ms = NOW - 300_000;
    let mut stale = node("stale", "m", Some(1000.0));
    stale.last_seen_unix_ms = NOW - 30_000;
    let mut engine_dead = node("dead", "m", Some(1000.0));
    Arc::make_mut(&mut engine_dead.snapshot).engines[0].up = false;
    let slow = node("slow", "m", Some(1.0));
    let fleet = [down.clone(), stale.clone(), engine_dead.clone(), slow];
    let r = route(&fleet, "m", NOW, &RouteSettings::default()).unwrap();
    assert_eq!(r.node, "slow");
    let err = route(
        &[down, stale, engine_dead],
        "m",
        NOW,
        &RouteSettings::default(),
    )
    .unwrap_err();
    assert_eq!(err.reason, "no node that is up serves m");
    let why: Vec<_> = err.candidates.iter().map(|c| c.why.as_str()).collect();
    assert_eq!(
        why,
        [
            "no engine that is up serves m",
            "down: last heard from 300 s ago",
            "stale: last heard from 30 s ago"
        ]
    );
    assert_eq!(
        route(&[], "m", NOW, &RouteSettings::default())
            .unwrap_err()
            .reason,
        "no nodes have reported"
    );
}

#[test]
fn slo_misses_and_full_kv_cost_more() {
    let mut missing = node("missing", "m", Some(10.0));
    measured(&mut missing, "m", 900.0, 1_000.0);
    let mut meeting = node("meeting", "m", Some(10.0));
    measured(&mut meeting, "m", 950.0, 1_000.0);
    Arc::make_mut(&mut meeting.snapshot).requests[0]
        .ttft_ms
        .as_mut()
        .unwrap()
        .p99 = 500.0;
    Arc::make_mut(&mut missing.snapshot).requests[0]
        .ttft_ms
        .as_mut()
        .unwrap()
        .p99 = 3_000.0;
    let s = RouteSettings {
        slo_ttft_ms: Some(1_000.0),
        ..RouteSettings::default()
    };
    let r = route(&[missing, meeting.clone()], "m", NOW, &s).unwrap();
    assert_eq!(r.node, "meeting", "{r:#?}");
    assert!(r.candidates[1].why.contains("misses the SLO"));

    // The same two without the SLO, one with its KV cache nearly full.
    let mut full = meeting.clone();
    full.name = "full".into();
    Arc::make_mut(&mut full.snapshot).requests[0]
        .ttft_ms
        .as_mut()
        .unwrap()
        .p50 = 900.0;
    Arc::make_mut(&mut full.snapshot).engines[0].scheduler =
        vec![serde_json::from_value(serde_json::json!({
            "model": "m", "kv_usage_ratio": 0.95
        }))
        .unwrap()];
    let r = route(&[full, meeting], "m", NOW, &RouteSettings::default()).unwrap();
    assert_eq!(r.node, "meeting", "{r:#?}");
    assert!(r.candidates[1].why.contains("KV cache 95 % (×2)"), "{r:#?}");
}

#[test]
fn fleet_outlier_needs_peers_and_half_the_median() {
    let fleet = [
        node("a", "m", Some(100.0)),
        node("b", "m", Some(90.0)),
        node("c", "m", Some(110.0)),
        node("weak", "m", Some(30.0)),
        node("x1", "x", Some(100.0)),
        node("x2", "x", Some(10.0)),
    ];
    let o = fleet_outliers(&fleet, NOW);
    assert_eq!(o.len(), 1, "{o:#?}");
    assert_eq!((o[0].node.as_str(), o[0].model.as_str()), ("weak", "m"));
    // Median of 30, 90, 100, 110 is 95.
    assert_eq!(o[0].fleet_median, 95.0);
    assert!((o[0].ratio - 30.0 / 95.0).abs() < 1e-12);
}

#[test]
fn fleet_observations_open_update_and_resolve_with_stable_ids_per_node() {
    use crate::alerts::{fleet_observations, FleetWatch};
    use infermon_detect::Change;
    let mut fleet = vec![
        node("a", "m", Some(1.0)),
        node("b", "m", Some(1.0)),
        node("c", "m", Some(0.3)),
        node("d", "m", None),
    ];
    fleet[1].observations = vec![observation(Kind::ThermalThrottling, Severity::Warning)];
    fleet[3].last_seen_unix_ms = NOW - 61_000; // down
    let mut watch = FleetWatch::new();
    let now = fleet_observations(&fleet, NOW);
    let kinds: Vec<(Kind, &str)> = now.iter().map(|o| (o.kind, o.subject.as_str())).collect();
    assert_eq!(
        kinds,
        [
            (Kind::ThermalThrottling, "b/node"),
            (Kind::NodeDown, "d/node"),
            (Kind::FleetOutlier, "c/model:m"),
        ]
    );
    let down = &now[1];
    assert_eq!(down.severity, Severity::Critical);
    assert_eq!(down.start_s, (NOW - 61_000) as f64 / 1000.0);
    assert_eq!(down.evidence.figures[0].now, Some(61.0));
    assert!(
        now[0].id.starts_with("b/thermal_throttling:node:"),
        "{}",
        now[0].id
    );
    let first = watch.step(now, NOW);
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|c| matches!(c, Change::Opened(_))));
    let outlier_id = first[2].observation().id.clone();

    // Ten seconds on: the same set changes nothing (the outlier keeps its id and start); the
    // throttling one raised to critical is an update.
    let seen = |fleet: &mut Vec<Node>, t: i64| {
        for n in fleet.iter_mut().take(3) {
            n.last_seen_unix_ms = t - 1_000;
        }
    };
    seen(&mut fleet, NOW + 10_000);
    fleet[1].observations[0].severity = Severity::Critical;
    let later = fleet_observations(&fleet, NOW + 10_000);
    let second = watch.step(later, NOW + 10_000);
    assert_eq!(second.len(), 1, "{second:?}");
    assert!(matches!(&second[0], Change::Updated(o) if o.severity == Severity::Critical));

    // d pushes again and b cools down: both resolve; c is still an outlier, unchanged.
    seen(&mut fleet, NOW + 20_000);
    fleet[3].last_seen_unix_ms = NOW + 19_000;
    fleet[1].observations.clear();
    let third = watch.step(fleet_observations(&fleet, NOW + 20_000), NOW + 20_000);
    let resolved: Vec<&str> = third
        .iter()
        .map(|c| match c {
            Change::Resolved(o) => {
                assert_eq!(o.end_s, Some((NOW + 20_000) as f64 / 1000.0));
                o.subject.as_str()
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(resolved, ["b/node", "d/node"]);
    seen(&mut fleet, NOW + 30_000);
    fleet[3].last_seen_unix_ms = NOW + 29_000;
    let still = fleet_observations(&fleet, NOW + 30_000);
    assert!(watch.step(still, NOW + 30_000).is_empty());
    assert!(watch
        .step(Vec::new(), NOW + 40_000)
        .iter()
        .any(|c| c.observation().id == outlier_id));
}

#[test]
fn a_shortened_answer_keeps_the_cheapest_and_counts_every_node() {
    let nodes: Vec<Node> = (0..5)
        .map(|i| {
            let mut n = node(&format!("n{i}"), "m", Some(40.0));
            measured(&mut n, "m", 50.0 + 10.0 * f64::from(i), 1_000.0);
            n
        })
        .collect();
    let s = RouteSettings::default();
    let full = route(&nodes, "m", NOW, &s).unwrap();
    assert_eq!((full.candidates_total, full.candidates.len()), (5, 5));
    let mut short = full.clone();
    short.keep_candidates(2);
    assert_eq!(short.candidates_total, 5);
    assert_eq!(short.candidates, full.candidates[..2].to_vec());
    assert_eq!(short.candidates[0].node, short.node);
    let mut none = route(&nodes, "other", NOW, &s).unwrap_err();
    assert_eq!(none.candidates_total, 5);
    none.keep_candidates(0);
    assert!(none.candidates.is_empty() && none.candidates_total == 5);
}
