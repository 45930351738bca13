//! `derive` checked against hand computations.

use infermon_model::raw::*;
use infermon_model::testing::{empty_sample, sample_with_engine};
use infermon_model::thermal::ThermalState;
use infermon_model::wes::NoWes;
use infermon_model::{derive, DeriveSettings};

fn set_counters(s: &mut RawSample, f: impl FnOnce(&mut EngineCounters)) {
    if let Reading::Ok { value } = &mut s.engines[0].metrics {
        f(value);
    }
}

#[test]
fn first_sample_has_counters_but_no_rates() {
    let s = sample_with_engine(0, 500.0, 3.0);
    let snap = derive(None, &s, &DeriveSettings::default());
    let e = &snap.engines[0];
    assert_eq!(e.generation_tokens_total, Some(500.0));
    assert_eq!(e.generation_tokens_per_second, None);
    assert_eq!(snap.efficiency.wes, Err(NoWes::NoTokenRate));
}

#[test]
fn engine_rates_by_hand() {
    let mut a = sample_with_engine(10_000, 1000.0, 10.0);
    let mut b = sample_with_engine(12_000, 1130.0, 10.5);
    set_counters(&mut a, |c| {
        c.prompt_tokens_total = 40.0;
        c.prompt_seconds_total = Some(0.1);
    });
    set_counters(&mut b, |c| {
        c.prompt_tokens_total = 90.0;
        c.prompt_seconds_total = Some(0.2);
    });
    let e = derive(Some(&a), &b, &DeriveSettings::default()).engines[0].clone();
    assert_eq!(e.generation_tokens_in_window, Some(130.0));
    assert_eq!(e.generation_tokens_per_second, Some(260.0)); // 130 / 0.5 s busy
    assert_eq!(e.generation_throughput_tokens_per_second, Some(65.0)); // 130 / 2 s
    assert!((e.prompt_tokens_per_second.unwrap() - 500.0).abs() < 1e-9); // 50 / 0.1 s
    assert_eq!(e.prompt_throughput_tokens_per_second, Some(25.0));
}

#[test]
fn counter_reset_gives_no_rate() {
    let a = sample_with_engine(0, 1000.0, 10.0);
    let b = sample_with_engine(2000, 20.0, 0.1);
    let e = derive(Some(&a), &b, &DeriveSettings::default()).engines[0].clone();
    assert!(e.counters_reset);
    assert_eq!(e.generation_tokens_per_second, None);
    assert_eq!(e.generation_tokens_total, Some(20.0));
}

#[test]
fn server_restart_detected_from_process_start_even_if_counters_grew() {
    let a = sample_with_engine(0, 10.0, 0.1);
    let mut b = sample_with_engine(2000, 50.0, 0.5);
    set_counters(&mut b, |c| c.process_start_unix = Some(1_800_000_000));
    let e = derive(Some(&a), &b, &DeriveSettings::default()).engines[0].clone();
    assert!(e.counters_reset);
    assert_eq!(e.generation_throughput_tokens_per_second, None);
}

#[test]
fn idle_window_is_zero_speed_and_no_wes() {
    let a = sample_with_engine(0, 100.0, 1.0);
    let b = sample_with_engine(2000, 100.0, 1.0);
    let snap = derive(Some(&a), &b, &DeriveSettings::default());
    assert_eq!(snap.engines[0].generation_tokens_per_second, Some(0.0));
    assert_eq!(snap.efficiency.wes, Err(NoWes::Idle));
}

fn gpu(energy_mj: u64, mask: u64) -> GpuRaw {
    let mut g = GpuRaw::empty(GpuVendor::Nvidia, 0, "GPU-test");
    g.energy_mj = Some(energy_mj);
    g.power_watts = Some(999.0); // instantaneous reading; the energy average must win
    g.throttle = Some(ThrottleRaw::NvidiaClockEvents { mask });
    g
}

#[test]
fn wes_through_derive_uses_energy_counter_and_penalty() {
    // 188.2 tokens in 2 s = 94.1 tok/s; 1.8 J in 2 s = 0.9 W; SwPowerCap = Fair.
    let mut a = sample_with_engine(0, 1000.0, 10.0);
    let mut b = sample_with_engine(2000, 1188.2, 11.0);
    a.gpus.push(gpu(50_000, 0x4));
    b.gpus.push(gpu(51_800, 0x4));
    let snap = derive(Some(&a), &b, &DeriveSettings::default());
    assert!((snap.gpus[0].power_watts.unwrap() - 0.9).abs() < 1e-9);
    assert_eq!(snap.efficiency.thermal.state, ThermalState::Fair);
    assert_eq!(snap.efficiency.thermal.reasons, vec!["sw_power_cap"]);
    let w = snap.efficiency.wes.unwrap();
    assert_eq!(
        (w.raw, w.penalized, w.thermal_cost_percent),
        (104.6, 83.6, 20.0)
    );
    let tpj = snap.efficiency.tokens_per_joule.unwrap();
    assert!((tpj - 94.1 / 0.9).abs() < 1e-6);
}

#[test]
fn rapl_wrap_and_subzones() {
    let zone = |name: &str, e: u64| RaplZone {
        zone: name.to_string(),
        name: "package-0".to_string(),
        energy_uj: e,
        max_energy_range_uj: 262_143_328_850,
    };
    let mut a = empty_sample(0);
    let mut b = empty_sample(4000);
    a.host.rapl = Reading::ok(vec![
        zone("intel-rapl:0", 262_143_000_000),
        zone("intel-rapl:0:0", 5),
    ]);
    // wrapped: 328_850 µJ to the top, then 39_671_150 µJ → 40 J over 4 s = 10 W.
    b.host.rapl = Reading::ok(vec![
        zone("intel-rapl:0", 39_671_150),
        zone("intel-rapl:0:0", 10),
    ]);
    let snap = derive(Some(&a), &b, &DeriveSettings::default());
    assert!((snap.host.cpu_power_watts.unwrap() - 10.0).abs() < 1e-9);
    assert_eq!(snap.efficiency.power_sources, vec!["cpu:rapl"]);
}

#[test]
fn unavailable_sources_are_absent_and_named() {
    let mut s = empty_sample(0);
    s.host.rapl =
        Reading::unavailable("/sys/class/powercap/intel-rapl:0/energy_uj: permission denied");
    let snap = derive(None, &s, &DeriveSettings::default());
    assert_eq!(snap.host.cpu_power_watts, None);
    let rapl = snap
        .sources
        .iter()
        .find(|x| x.source == "host.rapl")
        .unwrap();
    assert!(!rapl.ok);
    assert!(rapl
        .reason
        .as_deref()
        .unwrap()
        .contains("permission denied"));
    let names: Vec<_> = snap.series().iter().map(|p| p.name).collect();
    assert!(!names.contains(&"infermon_node_cpu_power_watts"));
    assert!(names.contains(&"infermon_source_up"));
}

#[test]
fn cpu_utilisation_and_swap_rates() {
    let times = |busy: u64, idle: u64| CpuTimes {
        user: busy,
        idle,
        n_cpus: 2,
        ..CpuTimes::default()
    };
    let vm = |pin: u64, pout: u64| VmstatRaw {
        pswpin: pin,
        pswpout: pout,
        pgmajfault: 0,
        page_size: 4096,
    };
    let mut a = empty_sample(0);
    let mut b = empty_sample(2000);
    a.host.cpu = Reading::ok(times(100, 900));
    b.host.cpu = Reading::ok(times(250, 1250));
    a.host.vmstat = Reading::ok(vm(10, 0));
    b.host.vmstat = Reading::ok(vm(30, 4));
    let h = derive(Some(&a), &b, &DeriveSettings::default()).host;
    assert_eq!(h.cpu_utilization_ratio, Some(0.3)); // 150 of 500 ticks
    assert_eq!(h.swap_in_bytes_per_second, Some(20.0 * 4096.0 / 2.0));
    assert_eq!(h.swap_out_bytes_per_second, Some(4.0 * 4096.0 / 2.0));
    assert_eq!(h.swap_in_bytes_total, Some(30 * 4096));
}

#[test]
fn server_window_rate_is_preferred_when_the_window_has_tokens() {
    // 48 tokens in 0.5 s of generation: counters say 96 tok/s; the server's own window rate
    // counts 47 decode steps (the first token comes from the prompt batch): 94 tok/s.
    let a = sample_with_engine(0, 100.0, 1.0);
    let mut b = sample_with_engine(2000, 148.0, 1.5);
    set_counters(&mut b, |c| c.generation_window_rate = Some(94.0));
    let e = derive(Some(&a), &b, &DeriveSettings::default()).engines[0].clone();
    assert_eq!(e.generation_tokens_per_second, Some(94.0));
    assert_eq!(
        e.speed_basis,
        Some(infermon_model::SpeedBasis::ServerWindow)
    );
    // Without the gauge: counters.
    let mut c = sample_with_engine(2000, 148.0, 1.5);
    set_counters(&mut c, |c| c.generation_window_rate = None);
    let e = derive(Some(&a), &c, &DeriveSettings::default()).engines[0].clone();
    assert_eq!(e.generation_tokens_per_second, Some(96.0));
    assert_eq!(e.speed_basis, Some(infermon_model::SpeedBasis::Counters));
    // A stale gauge (another scraper reset the bucket: 0) with tokens: counters.
    let mut d = sample_with_engine(2000, 148.0, 1.5);
    set_counters(&mut d, |c| c.generation_window_rate = Some(0.0));
    let e = derive(Some(&a), &d, &DeriveSettings::default()).engines[0].clone();
    assert_eq!(e.generation_tokens_per_second, Some(96.0));
}

fn proc_cpu(pid: u32, name: &str, total: f64, used: Option<f64>, window: f64) -> ProcessCpuRaw {
    ProcessCpuRaw {
        pid,
        name: name.into(),
        cpu_seconds_total: total,
        window_cpu_seconds: used,
        window_seconds: used.map(|_| window),
    }
}

#[test]
fn top_processes_in_cores_and_share_of_the_node() {
    let mut s = empty_sample(2000);
    s.host.cpu = Reading::ok(CpuTimes {
        n_cpus: 4,
        ..CpuTimes::default()
    });
    s.host.top_processes = Some(Reading::ok(vec![
        // 5.68 CPU seconds in 2 s: 2.84 cores, 71 % of 4 CPUs.
        proc_cpu(4242, "ffmpeg", 120.0, Some(5.68), 2.0),
        proc_cpu(777, "llama (server)", 30.5, Some(0.5), 2.0),
        // No window figures: left out.
        proc_cpu(1, "systemd", 9.0, None, 2.0),
    ]));
    let snap = derive(None, &s, &DeriveSettings::default());
    let top = &snap.host.top_processes;
    assert_eq!(top.len(), 2);
    assert_eq!((top[0].pid, top[0].name.as_str()), (4242, "ffmpeg"));
    assert!((top[0].cpu_cores - 2.84).abs() < 1e-12);
    assert!((top[0].cpu_ratio.unwrap() - 0.71).abs() < 1e-12);
    assert_eq!(top[0].cpu_seconds_total, 120.0);
    assert_eq!((top[1].pid, top[1].cpu_cores), (777, 0.25));
    assert_eq!(top[1].cpu_ratio, Some(0.0625));
    let source = snap
        .sources
        .iter()
        .find(|x| x.source == "host.processes")
        .unwrap();
    assert!(source.ok);
    // Never exported: one series per pid would be unbounded.
    assert!(snap
        .series()
        .iter()
        .all(|p| !p.labels.iter().any(|(k, _)| *k == "pid")));

    // Without a CPU count there are cores but no share.
    s.host.cpu = Reading::unavailable("/proc/stat: not found");
    let top = derive(None, &s, &DeriveSettings::default())
        .host
        .top_processes;
    assert_eq!((top[0].cpu_cores, top[0].cpu_ratio), (2.84, None));

    // Unread (older samples) or unavailable: no processes; unavailable is named in sources.
    s.host.top_processes = None;
    let snap = derive(None, &s, &DeriveSettings::default());
    assert!(snap.host.top_processes.is_empty());
    assert!(!snap.sources.iter().any(|x| x.source == "host.processes"));
    s.host.top_processes = Some(Reading::unavailable("/proc: permission denied"));
    let snap = derive(None, &s, &DeriveSettings::default());
    assert!(snap.host.top_processes.is_empty());
    let source = snap
        .sources
        .iter()
        .find(|x| x.source == "host.processes")
        .unwrap();
    assert_eq!(source.reason.as_deref(), Some("/proc: permission denied"));
}

#[test]
fn raw_samples_without_top_processes_still_read() {
    let s = empty_sample(0);
    let mut json = serde_json::to_value(&s).unwrap();
    json["host"]
        .as_object_mut()
        .unwrap()
        .remove("top_processes");
    let back: RawSample = serde_json::from_value(json).unwrap();
    assert_eq!(back.host.top_processes, None);
    let snap = derive(None, &back, &DeriveSettings::default());
    let mut json = serde_json::to_value(&snap).unwrap();
    json["host"]
        .as_object_mut()
        .unwrap()
        .remove("top_processes");
    let back: infermon_model::Snapshot = serde_json::from_value(json).unwrap();
    assert!(back.host.top_processes.is_empty());
}

fn named_gpu(id: &str, name: &str) -> GpuRaw {
    let mut g = GpuRaw::empty(GpuVendor::Nvidia, 0, id);
    g.name = Some(name.to_string());
    g
}

/// 100 tokens in 1 busy second (100 decode steps/s per stream) by an engine whose estimate
/// says `weights` bytes, on the given GPUs.
fn mbu_pair(weights: Option<u64>, gpus: &[(&str, &str)]) -> (RawSample, RawSample) {
    let mut a = sample_with_engine(0, 1000.0, 10.0);
    let mut b = sample_with_engine(2000, 1100.0, 11.0);
    for s in [&mut a, &mut b] {
        s.engines[0].memory = Some(EngineMemoryRaw {
            rss_bytes: Some(5_000_000_000),
            pss_bytes: None,
            estimate_total_bytes: Some(5_500_000_000),
            estimate_kv_bytes: Some(400_000_000),
            estimate_weights_bytes: weights,
            unavailable: Vec::new(),
        });
        s.gpus = gpus.iter().map(|(id, n)| named_gpu(id, n)).collect();
    }
    (a, b)
}

#[test]
fn bandwidth_utilisation_by_hand() {
    // 4.9 GB × 100 steps/s = 490 GB/s of 1008 GB/s (RTX 4090; the T4 is not in the table).
    let (a, b) = mbu_pair(
        Some(4_900_000_000),
        &[("GPU-0", "Tesla T4"), ("GPU-1", "NVIDIA GeForce RTX 4090")],
    );
    let snap = derive(Some(&a), &b, &DeriveSettings::default());
    let e = &snap.engines[0];
    assert_eq!(e.generation_tokens_per_second, Some(100.0));
    let mbu = e.memory_bandwidth_utilization_ratio.unwrap();
    assert!((mbu - 490.0 / 1008.0).abs() < 1e-12, "{mbu}");
    assert!((mbu - 0.486).abs() < 0.001);
    let series: Vec<_> = snap
        .series()
        .into_iter()
        .filter(|p| p.name == "infermon_engine_memory_bandwidth_utilization_ratio")
        .collect();
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].value, mbu);
    assert_eq!(
        series[0].labels.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        ["engine", "instance", "model"]
    );
}

#[test]
fn bandwidth_utilisation_is_absent_without_any_input() {
    let rtx = [("GPU-1", "NVIDIA GeForce RTX 4090")];
    let mbu = |a: &RawSample, b: &RawSample| {
        let snap = derive(Some(a), b, &DeriveSettings::default());
        let series = snap
            .series()
            .iter()
            .any(|p| p.name == "infermon_engine_memory_bandwidth_utilization_ratio");
        (snap.engines[0].memory_bandwidth_utilization_ratio, series)
    };
    // No GPU the table knows.
    let (a, b) = mbu_pair(Some(4_900_000_000), &[("GPU-0", "Tesla T4")]);
    assert_eq!(mbu(&a, &b), (None, false));
    // No GPU at all.
    let (a, b) = mbu_pair(Some(4_900_000_000), &[]);
    assert_eq!(mbu(&a, &b), (None, false));
    // No estimate of the weights, or no local process at all.
    let (a, b) = mbu_pair(None, &rtx);
    assert_eq!(mbu(&a, &b), (None, false));
    let (mut a, mut b) = mbu_pair(Some(4_900_000_000), &rtx);
    a.engines[0].memory = None;
    b.engines[0].memory = None;
    assert_eq!(mbu(&a, &b), (None, false));
    // No decode rate yet (first sample).
    let snap = derive(None, &b, &DeriveSettings::default());
    assert_eq!(snap.engines[0].memory_bandwidth_utilization_ratio, None);
}

#[test]
fn records_without_weights_or_mbu_still_read() {
    let (_, b) = mbu_pair(Some(4_900_000_000), &[("GPU-1", "NVIDIA GeForce RTX 4090")]);
    let mut json = serde_json::to_value(&b).unwrap();
    json["engines"][0]["memory"]
        .as_object_mut()
        .unwrap()
        .remove("estimate_weights_bytes");
    let back: RawSample = serde_json::from_value(json).unwrap();
    let memory = back.engines[0].memory.as_ref().unwrap();
    assert_eq!(memory.estimate_weights_bytes, None);
    let snap = derive(None, &b, &DeriveSettings::default());
    let mut json = serde_json::to_value(&snap).unwrap();
    json["engines"][0]
        .as_object_mut()
        .unwrap()
        .remove("memory_bandwidth_utilization_ratio");
    let back: infermon_model::Snapshot = serde_json::from_value(json).unwrap();
    assert_eq!(back.engines[0].memory_bandwidth_utilization_ratio, None);
}
