//! Fault tests of `derive`: the wall clock jumping while the monotonic clock runs on, and an
//! engine restarting between two samples (its counters reset).

use infermon_model::detail::{Bucket, HistogramRaw, LatencyMetric, SchedulerRaw};
use infermon_model::raw::*;
use infermon_model::testing::{empty_sample, llamacpp_engine, sample_with_engine};
use infermon_model::wes::wes;
use infermon_model::{derive, DeriveSettings, Snapshot};

const STEP_MS: u64 = 2000;
const WALL0: i64 = 1_800_000_000_000;

fn set_counters(s: &mut RawSample, f: impl FnOnce(&mut EngineCounters)) {
    if let Reading::Ok { value } = &mut s.engines[0].metrics {
        f(value);
    }
}

/// Sample `k` of a steady node: every counter grows by the same amount per 2 s step of the
/// monotonic clock, whatever the wall clock says (`ts_unix_ms`).
fn steady(k: u64, ts_unix_ms: i64) -> RawSample {
    let mut s = empty_sample(10_000 + k * STEP_MS);
    s.ts_unix_ms = ts_unix_ms;
    s.host.cpu = Reading::ok(CpuTimes {
        user: 1000 + 300 * k,
        idle: 5000 + 700 * k,
        n_cpus: 8,
        ..CpuTimes::default()
    });
    s.host.vmstat = Reading::ok(VmstatRaw {
        pswpin: 100 + 10 * k,
        pswpout: 50 + 4 * k,
        pgmajfault: 0,
        page_size: 4096,
    });
    s.host.rapl = Reading::ok(vec![RaplZone {
        zone: "intel-rapl:0".to_string(),
        name: "package-0".to_string(),
        energy_uj: 1_000_000_000 + 100_000_000 * k, // 100 J per step
        max_energy_range_uj: 262_143_328_850_000,
    }]);
    let mut g = GpuRaw::empty(GpuVendor::Nvidia, 0, "GPU-test");
    g.energy_mj = Some(1_000_000 + 400_000 * k); // 400 J per step
    g.power_watts = Some(999.0); // instantaneous; the energy average must win
    s.gpus.push(g);
    s.agent.cpu_seconds_total = Some(1.0 + 0.02 * k as f64);
    let mut e = llamacpp_engine(1000.0 + 130.0 * k as f64, 10.0 + 0.5 * k as f64);
    if let Reading::Ok { value } = &mut e.metrics {
        value.prompt_tokens_total = 40.0 + 50.0 * k as f64;
        value.prompt_seconds_total = Some(0.125 + 0.125 * k as f64);
        value.requests_running = Some(1.0);
    }
    s.engines.push(e);
    s
}

fn close(got: Option<f64>, want: f64, what: &str, k: usize) {
    let g = got.unwrap_or_else(|| panic!("{what} missing at sample {k}"));
    assert!(
        g.is_finite() && g >= 0.0,
        "{what} = {g} at sample {k}: not finite and non-negative"
    );
    assert!(
        (g - want).abs() < 1e-9 * want.max(1.0),
        "{what} = {g} at sample {k}, want {want}"
    );
}

/// The figures a steady 2 s window of [`steady`] gives.
fn check_steady(snap: &Snapshot, k: usize) {
    close(snap.window_seconds, 2.0, "window_seconds", k);
    let h = &snap.host;
    close(h.cpu_utilization_ratio, 0.3, "cpu utilisation", k);
    close(h.swap_in_bytes_per_second, 5.0 * 4096.0, "swap in", k);
    close(h.swap_out_bytes_per_second, 2.0 * 4096.0, "swap out", k);
    close(h.cpu_power_watts, 50.0, "cpu power", k);
    close(snap.gpus[0].power_watts, 200.0, "gpu power", k);
    let e = &snap.engines[0];
    assert!(!e.counters_reset, "counters_reset at sample {k}");
    close(e.generation_tokens_in_window, 130.0, "tokens in window", k);
    close(e.generation_tokens_per_second, 260.0, "decode speed", k);
    close(
        e.generation_throughput_tokens_per_second,
        65.0,
        "generation throughput",
        k,
    );
    close(e.prompt_tokens_per_second, 400.0, "prompt speed", k);
    close(
        e.prompt_throughput_tokens_per_second,
        25.0,
        "prompt throughput",
        k,
    );
    let eff = &snap.efficiency;
    close(eff.generation_tokens_per_second, 65.0, "node tok/s", k);
    close(eff.power_watts, 250.0, "node power", k);
    close(eff.tokens_per_joule, 65.0 / 250.0, "tokens per joule", k);
    let want = wes(Some(65.0), Some(250.0), 1.0, eff.thermal_penalty);
    assert_eq!(eff.wes, want, "WES at sample {k}");
    let Ok(w) = eff.wes else {
        panic!("no WES at sample {k}: {:?}", eff.wes)
    };
    assert!(w.raw.is_finite() && w.raw > 0.0 && w.penalized.is_finite() && w.penalized > 0.0);
    close(snap.agent.cpu_ratio, 0.01, "agent cpu", k);
}

#[test]
fn wall_clock_jumps_back_an_hour_and_forward_a_day_rates_follow_the_monotonic_clock() {
    // Wall clock: steady, then −3600 s between samples 5 and 6, then +86 400 s between 11 and
    // 12. The monotonic clock advances 2 s every time.
    let mut ts = WALL0;
    let samples: Vec<RawSample> = (0..18u64)
        .map(|k| {
            if k > 0 {
                ts += STEP_MS as i64;
            }
            if k == 6 {
                ts -= 3_600_000;
            }
            if k == 12 {
                ts += 86_400_000;
            }
            steady(k, ts)
        })
        .collect();
    assert!(samples[6].ts_unix_ms < samples[5].ts_unix_ms);
    assert!(samples[12].ts_unix_ms - samples[11].ts_unix_ms > 86_000_000);
    for k in 1..samples.len() {
        let snap = derive(
            Some(&samples[k - 1]),
            &samples[k],
            &DeriveSettings::default(),
        );
        // The snapshot keeps the wall time it was taken at; the window is the mono one.
        assert_eq!(snap.ts_unix_ms, samples[k].ts_unix_ms);
        check_steady(&snap, k);
    }
}

#[test]
fn monotonic_clock_that_did_not_advance_gives_no_rates_whatever_the_wall_clock() {
    // Two samples at the same mono time (a wall clock a day ahead must not make a window).
    let a = steady(3, WALL0);
    let mut b = steady(4, WALL0 + 86_400_000);
    b.mono_ms = a.mono_ms;
    let snap = derive(Some(&a), &b, &DeriveSettings::default());
    assert_eq!(snap.window_seconds, None);
    assert_eq!(snap.host.cpu_power_watts, None);
    assert_eq!(snap.host.swap_in_bytes_per_second, None);
    assert_eq!(snap.gpus[0].power_watts, Some(999.0)); // instantaneous reading only
    assert_eq!(
        snap.engines[0].generation_throughput_tokens_per_second,
        None
    );
    assert_eq!(snap.agent.cpu_ratio, None);
}

fn assert_no_engine_rates(snap: &Snapshot, what: &str) {
    let e = &snap.engines[0];
    assert!(e.counters_reset, "{what}: counters_reset not set");
    assert_eq!(e.generation_tokens_in_window, None, "{what}");
    assert_eq!(e.generation_tokens_per_second, None, "{what}");
    assert_eq!(e.generation_throughput_tokens_per_second, None, "{what}");
    assert_eq!(e.prompt_tokens_per_second, None, "{what}");
    assert_eq!(e.prompt_throughput_tokens_per_second, None, "{what}");
    assert_eq!(e.speed_basis, None, "{what}");
    assert_eq!(e.memory_bandwidth_utilization_ratio, None, "{what}");
    let eff = &snap.efficiency;
    assert_eq!(eff.generation_tokens_per_second, None, "{what}");
    assert_eq!(eff.tokens_per_joule, None, "{what}");
    assert!(eff.wes.is_err(), "{what}: WES {:?}", eff.wes);
    // Hardware rates do not depend on the engine and stay normal.
    assert_eq!(snap.host.cpu_power_watts.map(|w| w.round()), Some(50.0));
}

/// Steady samples with an engine restart before sample `at`: the counters start again from
/// small values and then grow at the usual pace.
fn restarted_series(at: u64, n: u64, new_process_start: bool) -> Vec<RawSample> {
    (0..n)
        .map(|k| {
            let mut s = steady(k, WALL0 + (k * STEP_MS) as i64);
            if k >= at {
                let j = (k - at) as f64;
                set_counters(&mut s, |c| {
                    c.generation_tokens_total = 20.0 + 130.0 * j;
                    c.generation_seconds_total = Some(0.08 + 0.5 * j);
                    c.prompt_tokens_total = 5.0 + 50.0 * j;
                    c.prompt_seconds_total = Some(0.0125 + 0.125 * j);
                    if new_process_start {
                        c.process_start_unix = Some(1_800_000_100);
                    }
                });
            }
            s
        })
        .collect()
}

#[test]
fn llamacpp_restart_mid_sample_gives_no_rate_for_that_window_then_normal_rates() {
    for new_process_start in [false, true] {
        let s = restarted_series(4, 10, new_process_start);
        for k in 1..s.len() {
            let snap = derive(Some(&s[k - 1]), &s[k], &DeriveSettings::default());
            if k == 4 {
                assert_no_engine_rates(&snap, &format!("restart window ({new_process_start})"));
                // The new counters are shown as they are.
                assert_eq!(snap.engines[0].generation_tokens_total, Some(20.0));
            } else {
                check_steady(&snap, k);
            }
        }
    }
}

#[test]
fn busy_seconds_going_down_while_tokens_grow_gives_no_negative_speed() {
    // Only the busy seconds went down (tokens grew): no negative or infinite speed.
    let a = sample_with_engine(0, 1000.0, 10.0);
    let b = sample_with_engine(2000, 1130.0, 0.3);
    let e = derive(Some(&a), &b, &DeriveSettings::default()).engines[0].clone();
    assert!(e
        .generation_tokens_per_second
        .is_none_or(|r| r.is_finite() && r >= 0.0));
}

fn histogram(model: &str, n: f64) -> HistogramRaw {
    // n observations so far: 60 % under 20 ms, 35 % under 50 ms, 5 % under 100 ms.
    HistogramRaw {
        metric: LatencyMetric::Tpot,
        model: model.to_string(),
        buckets: vec![
            Bucket {
                le: 0.02,
                count: 0.6 * n,
            },
            Bucket {
                le: 0.05,
                count: 0.95 * n,
            },
            Bucket { le: 0.1, count: n },
            Bucket {
                le: f64::MAX,
                count: n,
            },
        ],
        sum: 0.025 * n,
        count: n,
    }
}

fn scheduler(model: &str, j: f64) -> SchedulerRaw {
    SchedulerRaw {
        model: model.to_string(),
        prompt_tokens_total: Some(40.0 + 50.0 * j),
        generation_tokens_total: Some(1000.0 + 130.0 * j),
        requests_running: Some(1.0),
        requests_waiting: Some(0.0),
        kv_usage_ratio: Some(0.25),
        prefix_cache_queries_total: Some(100.0 + 40.0 * j),
        prefix_cache_hits_total: Some(50.0 + 10.0 * j),
        preemptions_total: Some(2.0 + j),
        spec_draft_tokens_total: Some(200.0 + 20.0 * j),
        spec_accepted_tokens_total: Some(100.0 + 15.0 * j),
        ..SchedulerRaw::default()
    }
}

/// A vLLM engine whose histogram and scheduler counters (and token counters) restart
/// before sample `at`: after the restart they count from small values (`j` starts again).
fn vllm_series(at: u64, n: u64, new_process_start: bool) -> Vec<RawSample> {
    (0..n)
        .map(|k| {
            let mut s = restarted_series(at, n, new_process_start).swap_remove(k as usize);
            let j = if k >= at {
                (k - at) as f64
            } else {
                40.0 + k as f64
            };
            let e = &mut s.engines[0];
            e.kind = EngineKind::Vllm;
            e.histograms = vec![histogram("m", 100.0 + 20.0 * j)];
            e.scheduler = vec![scheduler("m", j)];
            s
        })
        .collect()
}

#[test]
fn vllm_histogram_and_scheduler_reset_gives_no_window_figures_then_normal_ones() {
    for new_process_start in [false, true] {
        let s = vllm_series(4, 9, new_process_start);
        for k in 1..s.len() {
            let snap = derive(Some(&s[k - 1]), &s[k], &DeriveSettings::default());
            let e = &snap.engines[0];
            let sch = &e.scheduler[0];
            if k == 4 {
                let what = format!("vLLM restart window ({new_process_start})");
                assert_no_engine_rates(&snap, &what);
                assert!(e.latency.is_empty(), "{what}: latency {:?}", e.latency);
                assert_eq!(sch.generation_throughput_tokens_per_second, None, "{what}");
                assert_eq!(sch.prompt_throughput_tokens_per_second, None, "{what}");
                assert_eq!(sch.prefix_cache_hit_ratio, None, "{what}");
                assert_eq!(sch.preemptions_in_window, None, "{what}");
                assert_eq!(sch.spec_accept_ratio, None, "{what}");
                // Gauges pass through.
                assert_eq!(sch.kv_usage_ratio, Some(0.25));
                assert_eq!(sch.requests_running, Some(1.0));
                continue;
            }
            check_steady(&snap, k);
            close(
                sch.generation_throughput_tokens_per_second,
                65.0,
                "scheduler generation throughput",
                k,
            );
            close(
                sch.prompt_throughput_tokens_per_second,
                25.0,
                "scheduler prompt throughput",
                k,
            );
            close(sch.prefix_cache_hit_ratio, 0.25, "prefix cache hits", k);
            close(sch.preemptions_in_window, 1.0, "preemptions", k);
            close(sch.spec_accept_ratio, 0.75, "spec acceptance", k);
            let l = &e.latency[0];
            assert_eq!(l.count, 20.0, "histogram count at sample {k}");
            close(l.mean_seconds, 0.025, "tpot mean", k);
            for q in [l.p50_seconds, l.p90_seconds, l.p99_seconds] {
                let q = q.expect("quantile");
                assert!(q.is_finite() && q > 0.0 && q <= 0.1, "quantile {q}");
            }
        }
    }
}
