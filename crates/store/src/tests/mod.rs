//! Tests. `sample` and `point` build inputs by hand, as the collectors and the model would.

mod clock;
mod crash;
mod deferred;
mod full;
mod outbox;
mod query;
mod rollup;
mod roundtrip;
mod schema;
mod sealed;
mod setaside;

use infermon_model::raw::{
    AgentRaw, CpuTimes, GpuRaw, GpuVendor, HostRaw, MemoryRaw, RawSample, Reading,
};
use infermon_model::series::{MetricKind, SeriesPoint};

use crate::{Retention, Store};

/// A plausible raw sample at `ts_ms`: CPU and memory read, the rest unavailable, one GPU.
pub(crate) fn sample(ts_ms: i64) -> RawSample {
    let mut gpu = GpuRaw::empty(
        GpuVendor::Nvidia,
        0,
        "GPU-5f0c1c1e-0000-0000-0000-000000000000",
    );
    gpu.name = Some("NVIDIA H100 80GB HBM3".into());
    gpu.power_watts = Some(312.5 + (ts_ms % 1000) as f64 / 100.0);
    gpu.vram_used_bytes = Some(41 << 30);
    RawSample {
        ts_unix_ms: ts_ms,
        mono_ms: u64::try_from(ts_ms - 1_700_000_000_000).unwrap_or(0),
        host: HostRaw {
            cpu: Reading::ok(CpuTimes {
                user: 1000,
                idle: 9000,
                n_cpus: 16,
                ..CpuTimes::default()
            }),
            cpu_freq: Reading::unavailable("/sys/devices/system/cpu/cpu0/cpufreq: not found"),
            memory: Reading::ok(MemoryRaw {
                total_bytes: 128 << 30,
                available_bytes: 100 << 30,
                free_bytes: 90 << 30,
                swap_total_bytes: 0,
                swap_free_bytes: 0,
            }),
            vmstat: Reading::unavailable("/proc/vmstat: permission denied"),
            pressure: Reading::unavailable("/proc/pressure: not found"),
            rapl: Reading::unavailable("/sys/class/powercap: permission denied"),
            temperatures: Reading::ok(Vec::new()),
            cpu_throttle: Reading::unavailable("not an intel cpu"),
            top_processes: None,
        },
        gpus: vec![gpu],
        gpu_sources: Vec::new(),
        engines: Vec::new(),
        agent: AgentRaw {
            cpu_seconds_total: Some(1.25),
            rss_bytes: Some(18 << 20),
            interval_ms: 1000,
            collect_ms: 3.5,
        },
    }
}

/// A gauge point.
pub(crate) fn point(
    name: &'static str,
    labels: &[(&'static str, &str)],
    value: f64,
) -> SeriesPoint {
    SeriesPoint {
        name,
        labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        value,
        kind: MetricKind::Gauge,
    }
}

/// A fresh in-memory store with default retention.
pub(crate) fn mem() -> Store {
    Store::open_in_memory(Retention::default()).unwrap()
}

/// The retention that was the default before issue 12: raw samples and points 24 h, minute
/// buckets 30 days (the tests of pruning and of `Auto` written against it keep it).
pub(crate) fn day_retention() -> Retention {
    let day = std::time::Duration::from_secs(24 * 3600);
    Retention {
        raw: day,
        points: day,
        minute: day * 30,
        ..Retention::default()
    }
}

/// A fresh in-memory store with [`day_retention`].
pub(crate) fn mem_day() -> Store {
    Store::open_in_memory(day_retention()).unwrap()
}

/// 2023-11-14T23:00:00Z, a whole hour: a convenient origin for bucket arithmetic.
pub(crate) const T0: i64 = 1_700_002_800_000;
