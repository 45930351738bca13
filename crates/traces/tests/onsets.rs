//! Each label's onset row (and end row) actually shows the fault, and the figures around it
//! move the way the label says.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use common::{trace, Table};
use infermon_traces::{all, Expect, Trace};

/// Rows in two minutes.
const W: usize = 60;

/// The figure moved by `factor` (ratio of medians over two minutes after against two minutes
/// before the onset): at least `factor` when it is above 1, at most when below.
fn moved(tab: &Table, on: usize, col: &str, factor: f64) -> bool {
    let ratio = tab.median(on, on + W, col) / tab.median(on - W, on, col);
    if factor >= 1.0 {
        ratio >= factor
    } else {
        ratio <= factor
    }
}

fn wes_ratio(tab: &Table, on: usize) -> f64 {
    let med = |a: usize, b: usize| {
        let mut v: Vec<f64> = (a..b).filter_map(|i| tab.wes(i)).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    med(on, on + W) / med(on - W, on)
}

fn reasons(tab: &Table, i: usize) -> Vec<&str> {
    tab.text(i, "thermal_reasons").split(';').collect()
}

/// Asserts that the rows show `e` at its onset (and no more at its end).
fn shows(t: &Trace, e: &Expect) {
    let tab = Table::of(t);
    let on = tab.at(e.onset_s);
    let end = e.end_s.map(|s| tab.at(s));
    let last = end.unwrap_or(tab.len());
    let name = format!("{} / {} at {}", t.name, e.kind, e.onset_s);
    let max_clock = tab.get(on, "gpu_clock_max_mhz");
    let frac_avail = |i: usize| tab.get(i, "mem_available_bytes") / tab.get(i, "mem_total_bytes");
    match e.kind.as_str() {
        "thermal_throttling" => {
            assert_eq!(tab.text(on - 1, "thermal_state"), "Normal", "{name}");
            assert!(
                tab.get(on - 1, "gpu_clock_mhz") >= 0.95 * max_clock,
                "{name}"
            );
            assert!(tab.get(on - 1, "gpu_temp_c") < 83.0, "{name}");
            for i in on..last {
                assert_eq!(tab.text(i, "thermal_state"), "Serious", "{name} row {i}");
                assert_eq!(reasons(&tab, i), ["sw_thermal_slowdown"], "{name}");
                let temp = tab.get(i, "gpu_temp_c");
                assert!((83.0..=90.0).contains(&temp), "{name} row {i}: {temp} °C");
                assert!(
                    tab.get(i, "gpu_clock_mhz") <= 0.72 * max_clock,
                    "{name} row {i}"
                );
                assert!(
                    tab.get(i, "gpu_util") >= 90.0,
                    "{name} row {i}: busy while slowed"
                );
            }
        }
        "power_capping" => {
            assert_eq!(tab.text(on - 1, "thermal_state"), "Normal", "{name}");
            assert!(
                tab.get(on - 1, "power_w") < 0.95 * tab.get(on - 1, "power_limit_w"),
                "{name}"
            );
            for i in on..last {
                assert_eq!(tab.text(i, "thermal_state"), "Fair", "{name} row {i}");
                assert_eq!(reasons(&tab, i), ["sw_power_cap"], "{name}");
                assert!(
                    tab.get(i, "power_w") >= 0.97 * tab.get(i, "power_limit_w"),
                    "{name} row {i}"
                );
            }
            assert!(
                moved(&tab, on, "gpu_clock_mhz", 0.9),
                "{name}: clock about -15 %"
            );
            assert!(
                !moved(&tab, on, "gpu_clock_mhz", 0.8),
                "{name}: clock about -15 %"
            );
        }
        "kv_saturation" => {
            assert!(tab.get(on - 1, "kv_usage") < 0.97, "{name}");
            for i in on..last {
                assert!(tab.get(i, "kv_usage") >= 0.97, "{name} row {i}");
            }
            if let Some(end) = end {
                assert!(tab.get(end, "kv_usage") < 0.5, "{name}: over at its end");
            }
        }
        "queue_backlog" => {
            assert_eq!(tab.get(on - 1, "requests_waiting"), 0.0, "{name}");
            assert!(tab.get(on, "requests_waiting") > 0.0, "{name}");
            assert!(
                tab.get(on + 30, "requests_waiting") > tab.get(on, "requests_waiting"),
                "{name}: grows"
            );
            for i in on..last {
                assert!(tab.get(i, "requests_waiting") > 0.0, "{name} row {i}");
            }
            if let Some(end) = end {
                assert_eq!(
                    tab.get(end, "requests_waiting"),
                    0.0,
                    "{name}: drained at its end"
                );
            }
            assert!(moved(&tab, on, "ttft_p50_ms", 3.0), "{name}: TTFT rises");
        }
        "cpu_contention" => {
            assert!(
                !tab.text(on - 1, "top_process").starts_with("ffmpeg"),
                "{name}"
            );
            for i in on..last {
                let top = tab.text(i, "top_process");
                assert!(top.starts_with("ffmpeg:4242:"), "{name} row {i}: {top}");
                let cores: f64 = top.rsplit(':').next().unwrap().parse().unwrap();
                assert!(
                    cores > 1.5 && tab.get(i, "cpu_count") == 2.0,
                    "{name} row {i}"
                );
                assert!(tab.get(i, "cpu_util") >= 0.97, "{name} row {i}");
            }
            assert!(tab.get(last, "cpu_util") < 0.8, "{name}: over at its end");
        }
        "swap_storm" => {
            assert_eq!(tab.get(on - 1, "swap_in_pages_per_s"), 0.0, "{name}");
            assert!(tab.get(on, "swap_in_pages_per_s") >= 1000.0, "{name}");
            let swap = tab.values(on, last, "swap_in_pages_per_s");
            assert!(swap.iter().all(|s| *s >= 500.0), "{name}");
            assert!(
                swap.iter().sum::<f64>() / swap.len() as f64 >= 2000.0,
                "{name}: thousands"
            );
            assert!(
                (on..last).all(|i| frac_avail(i) < 0.05),
                "{name}: a few % available"
            );
        }
        "memory_pressure" => {
            assert!(frac_avail(on - 1) >= 0.03, "{name}");
            for i in on..last {
                assert!(frac_avail(i) < 0.03, "{name} row {i}");
                assert!(tab.get(i, "psi_memory_some") >= 0.2, "{name} row {i}");
                assert_eq!(tab.get(i, "swap_in_pages_per_s"), 0.0, "{name}: no swap");
            }
            assert!(frac_avail(last) > 0.5, "{name}: over at its end");
            // The model is in VRAM: inference does not change.
            for c in ["tpot_p50_ms", "ttft_p50_ms", "generation_tokens_per_s"] {
                assert!(
                    !moved(&tab, on, c, 0.9) && !moved(&tab, on, c, 1.1),
                    "{name}: {c}"
                );
            }
        }
        "oom_risk" => {
            let risk = |i: usize| {
                tab.get(i, "memory_estimate_bytes")
                    > tab.get(i, "memory_resident_bytes") + tab.get(i, "mem_available_bytes")
            };
            assert!(!(0..on).any(risk), "{name}: no risk before");
            assert!((on..last).all(risk), "{name}");
            assert!(
                tab.text(on, "events").contains("starting:"),
                "{name}: while it loads"
            );
        }
        "model_change" => {
            assert_ne!(tab.text(on, "model"), tab.text(on - 1, "model"), "{name}");
            assert!(tab.text(on, "events").contains("unloaded:"), "{name}");
        }
        "model_churn" => {
            let end = end.unwrap();
            assert!(tab.text(on, "events").contains("unloaded:"), "{name}");
            assert!(
                (0..on)
                    .chain(end..tab.len())
                    .all(|i| tab.text(i, "events").is_empty()),
                "{name}"
            );
            let loads = (on..end)
                .filter(|&i| tab.text(i, "events").starts_with("loaded:"))
                .count();
            assert!(loads >= 12, "{name}: {loads} loads in 10 min");
            let models: std::collections::BTreeSet<&str> =
                (on..end).map(|i| tab.text(i, "model")).collect();
            assert_eq!(models.len(), 3, "{name}");
        }
        "engine_down" => {
            assert_eq!(tab.get(on - 1, "engine_up"), 1.0, "{name}");
            assert!((on..last).all(|i| tab.get(i, "engine_up") == 0.0), "{name}");
            assert!(
                (on..last).all(|i| tab.text(i, "model").is_empty()),
                "{name}: empty figures"
            );
            assert_eq!(tab.get(last, "engine_up"), 1.0, "{name}: back at its end");
            assert_eq!(last - on, 90, "{name}: three minutes");
        }
        "error_rate" => {
            let mean = |a: usize, b: usize| {
                let v = tab.values(a, b, "error_ratio");
                v.iter().sum::<f64>() / v.len() as f64
            };
            for i in on..last {
                assert!(tab.get(i, "requests_ended") >= 10.0, "{name} row {i}");
                // Failures per row are a count (Poisson ≈ 7): the ratio of any 10 s is high.
                assert!(tab.get(i, "error_ratio") > 0.0, "{name} row {i}");
                assert!(
                    mean(i.saturating_sub(4).max(on), i + 1) >= 0.1,
                    "{name} row {i}"
                );
            }
            assert!(
                (mean(on, last) - 0.2).abs() < 0.02,
                "{name}: {}",
                mean(on, last)
            );
            assert!(mean(0, on) < 0.01 && mean(last, tab.len()) < 0.01, "{name}");
            assert_eq!(last - on, 150, "{name}: five minutes");
        }
        "bandwidth_bound" => {
            for i in on..last {
                if tab.get(i, "requests_running") > 0.0 {
                    assert!(tab.get(i, "bandwidth_util") >= 0.85, "{name} row {i}");
                }
            }
        }
        "tpot_regression" => assert!(moved(&tab, on, "tpot_p50_ms", 1.18), "{name}"),
        "ttft_regression" => assert!(moved(&tab, on, "ttft_p50_ms", 1.5), "{name}"),
        "throughput_drop" => assert!(moved(&tab, on, "generation_tokens_per_s", 0.85), "{name}"),
        "efficiency_drift" => assert!(
            wes_ratio(&tab, on) < 0.85,
            "{name}: {}",
            wes_ratio(&tab, on)
        ),
        other => panic!("{name}: no check for {other}"),
    }
    // A symptom with no visible cause: the hardware and host look the same after as before.
    if e.cause.is_none() && ["tpot_regression", "ttft_regression"].contains(&e.kind.as_str()) {
        for c in [
            "gpu_clock_mhz",
            "power_w",
            "gpu_util",
            "gpu_temp_c",
            "cpu_util",
            "mem_available_bytes",
            "kv_usage",
        ] {
            assert!(
                !moved(&tab, on, c, 1.04) && !moved(&tab, on, c, 0.96),
                "{name}: {c} moved"
            );
        }
        assert!(
            (0..tab.len()).all(|i| tab.text(i, "thermal_state") == "Normal"),
            "{name}"
        );
        assert!(
            (0..tab.len()).all(|i| tab.get(i, "requests_waiting") == 0.0),
            "{name}"
        );
        assert!(
            !moved(&tab, on, "prompt_tokens_mean", 0.97),
            "{name}: same prompts"
        );
        assert!(
            !moved(&tab, on, "requests_running", 1.1) && !moved(&tab, on, "requests_running", 0.9)
        );
    }
}

#[test]
fn every_expected_observation_shows_in_the_rows() {
    let mut checked = 0;
    for t in all() {
        for e in &t.labels.expect {
            shows(&t, e);
            checked += 1;
        }
    }
    assert_eq!(checked, 23, "expectations checked");
}

#[test]
fn the_thermal_symptoms_follow_the_clock() {
    let tab = Table::of(&trace("thermal_throttling"));
    let on = tab.at(600.0);
    let clock = tab.median(on, on + W, "gpu_clock_mhz") / tab.median(on - W, on, "gpu_clock_mhz");
    assert!(
        (0.64..0.71).contains(&clock),
        "clock x{clock}: about -33 % as in the product brief"
    );
    let tpot = tab.median(on, on + W, "tpot_p50_ms") / tab.median(on - W, on, "tpot_p50_ms");
    let want = clock.powf(-0.85);
    assert!(
        (tpot / want - 1.0).abs() < 0.05,
        "TPOT x{tpot}, want x{want}"
    );
}

#[test]
fn cpu_contention_triples_ttft() {
    let tab = Table::of(&trace("cpu_contention"));
    let on = tab.at(600.0);
    let ttft = tab.median(on, on + 150, "ttft_p50_ms") / tab.median(on - 150, on, "ttft_p50_ms");
    assert!(
        (2.7..3.3).contains(&ttft),
        "TTFT x{ttft}: +200 % as in the product brief"
    );
    let tpot = tab.median(on, on + 150, "tpot_p50_ms") / tab.median(on - 150, on, "tpot_p50_ms");
    assert!((1.15..1.25).contains(&tpot), "TPOT x{tpot}");
}

#[test]
fn swap_storm_slows_decode_five_times_or_more() {
    let tab = Table::of(&trace("swap_storm"));
    let on = tab.at(600.0);
    assert!(moved(&tab, on, "tpot_p50_ms", 5.0));
    assert!(moved(&tab, on, "generation_tokens_per_s", 0.2));
}

#[test]
fn bursty_idle_gaps_have_no_latency_and_no_tokens() {
    let tab = Table::of(&trace("quiet_bursty"));
    let idle: Vec<usize> = (0..tab.len())
        .filter(|&i| tab.get(i, "requests_running") == 0.0)
        .collect();
    let busy = tab.len() - idle.len();
    assert!(
        idle.len() > 200 && busy > 200,
        "idle {} busy {busy}",
        idle.len()
    );
    for &i in &idle {
        assert_eq!(tab.get(i, "generation_tokens_per_s"), 0.0);
        assert!(tab.num(i, "ttft_p50_ms").is_none() && tab.num(i, "tpot_p50_ms").is_none());
    }
    let sizes: std::collections::BTreeSet<u64> = tab
        .values(0, tab.len(), "requests_running")
        .iter()
        .map(|r| *r as u64)
        .collect();
    assert!(
        sizes.contains(&1) && sizes.contains(&6) && !sizes.contains(&7),
        "{sizes:?}"
    );
}

#[test]
fn the_day_has_a_night_and_a_noon() {
    let tab = Table::of(&trace("quiet_diurnal_24h"));
    let hour = |h: f64| tab.at(h * 3600.0);
    let mean = |a: usize, b: usize, c: &str| {
        let v = tab.values(a, b, c);
        v.iter().sum::<f64>() / v.len() as f64
    };
    let night = mean(hour(3.0), hour(5.0), "requests_running");
    let noon = mean(hour(12.0), hour(14.0), "requests_running");
    assert!(night < 0.6 && noon > 4.5, "night {night}, noon {noon}");
    assert!(mean(hour(12.0), hour(14.0), "power_w") > 2.0 * mean(hour(3.0), hour(5.0), "power_w"));
    let idle = (hour(3.0)..hour(5.0))
        .filter(|&i| tab.num(i, "tpot_p50_ms").is_none())
        .count();
    assert!(idle > 1000, "{idle} idle rows at night");
}

#[test]
fn all_has_every_trace_once() {
    assert_eq!(all().len(), 18);
}
