//! An engine restarting between two samples (its counters reset) must not open a symptom:
//! `derive` gives no rate for that window, and the detector sees a gap, not a drop or spike.

use infermon_detect::{from_snapshot, Change, Clock, Detector, Kind};
use infermon_model::raw::{GpuRaw, GpuVendor, RawSample, Reading};
use infermon_model::testing::sample_with_engine;
use infermon_model::{derive, DeriveSettings};

const SYMPTOMS: [Kind; 3] = [
    Kind::ThroughputDrop,
    Kind::TpotRegression,
    Kind::EfficiencyDrift,
];

/// Sample `k`: one busy request, about 130 tokens per 2 s (±1.5 %, deterministic), a GPU
/// drawing 200 W by its energy counter. `(tokens, seconds)` are the cumulative counters.
fn sample(k: u64, tokens: f64, seconds: f64) -> RawSample {
    let mut s = sample_with_engine(k * 2000, tokens, seconds);
    s.ts_unix_ms = 1_800_000_000_000 + (k as i64) * 2000;
    if let Reading::Ok { value } = &mut s.engines[0].metrics {
        value.requests_running = Some(1.0);
    }
    let mut g = GpuRaw::empty(GpuVendor::Nvidia, 0, "GPU-test");
    g.energy_mj = Some(1_000_000 + 400_000 * k);
    s.gpus.push(g);
    s
}

fn tokens_in_step(k: u64) -> f64 {
    130.0 + [0.0, 2.0, -1.5, 1.0, -2.0][(k % 5) as usize]
}

/// 60 steady samples, then the engine restarts (counters drop to small values) before sample
/// `60`, then `after` more steady samples whose tokens per step are scaled by `after_scale`.
fn run(after: u64, after_scale: f64) -> Vec<Change> {
    let (mut tokens, mut secs) = (5000.0, 40.0);
    let mut raws = Vec::new();
    for k in 0..60 + after {
        if k == 60 {
            // Restart mid-sample: the new process has done a little work already.
            (tokens, secs) = (20.0, 0.08);
        } else if k > 0 {
            let scale = if k > 60 { after_scale } else { 1.0 };
            tokens += tokens_in_step(k) * scale;
            secs += 0.5;
        }
        raws.push(sample(k, tokens, secs));
    }
    let mut d = Detector::new(Clock::Unix);
    let mut changes = Vec::new();
    for k in 0..raws.len() {
        let prev = k.checked_sub(1).map(|p| &raws[p]);
        let snap = derive(prev, &raws[k], &DeriveSettings::default());
        let e = &snap.engines[0];
        if k == 60 {
            assert!(e.counters_reset);
            assert_eq!(e.generation_throughput_tokens_per_second, None);
            assert_eq!(e.generation_tokens_per_second, None);
            assert!(snap.efficiency.wes.is_err());
        } else if k > 0 {
            assert!(!e.counters_reset, "sample {k}");
            let t = e.generation_throughput_tokens_per_second;
            assert!(
                t.is_some_and(|t| t.is_finite() && t > 0.0 && t < 100.0),
                "sample {k}: {t:?} tok/s"
            );
        }
        changes.extend(d.step(&from_snapshot(&snap, &[], None)));
    }
    changes
}

fn opened(changes: &[Change]) -> Vec<Kind> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Opened(o) => Some(o.kind),
            _ => None,
        })
        .collect()
}

#[test]
fn an_engine_restart_mid_sample_opens_no_symptom() {
    let kinds = opened(&run(60, 1.0));
    for k in SYMPTOMS {
        assert!(
            !kinds.contains(&k),
            "{k:?} opened after a restart: {kinds:?}"
        );
    }
}

#[test]
fn the_same_warm_detector_does_see_a_real_drop_after_a_restart() {
    // Control: the baseline was learned, so halving the throughput is found.
    let kinds = opened(&run(40, 0.5));
    assert!(
        kinds.contains(&Kind::ThroughputDrop),
        "no throughput_drop: {kinds:?}"
    );
}
