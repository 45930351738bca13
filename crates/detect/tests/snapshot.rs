//! Frames from the agent's snapshots: a discovered llama-server whose process exited is gone
//! (llama-swap unloaded it, or someone stopped it), not down; a configured one that stops
//! answering is down. Samples are built with the model crate's test helpers.

use infermon_detect::{from_snapshot, Clock, Detector, Kind};
use infermon_model::raw::Reading;
use infermon_model::testing::sample_with_engine;
use infermon_model::{derive, DeriveSettings};

fn down_opens(origin: &str) -> bool {
    let mut d = Detector::new(Clock::Unix);
    let mut prev = None;
    let mut opened = false;
    for i in 0..6u64 {
        let mut raw = sample_with_engine(i * 2000, 100.0, 1.0);
        raw.ts_unix_ms = 1_800_000_000_000 + (i as i64) * 2000;
        let e = &mut raw.engines[0];
        e.origin = origin.to_string();
        e.health = Reading::unavailable("GET http://127.0.0.1:8080/health: connection failed");
        e.memory = None; // the process is gone: its memory cannot be read
        let snap = derive(prev.as_ref(), &raw, &DeriveSettings::default());
        let frame = from_snapshot(&snap, &[], None);
        assert_eq!(frame.engines[0].gone, origin == "discovered");
        opened |= d
            .step(&frame)
            .iter()
            .any(|c| c.observation().kind == Kind::EngineDown);
        prev = Some(raw);
    }
    opened
}

#[test]
fn a_configured_engine_that_stops_answering_is_down() {
    assert!(down_opens("flag"));
}

#[test]
fn a_discovered_server_whose_process_exited_is_gone_not_down() {
    assert!(!down_opens("discovered"));
}
