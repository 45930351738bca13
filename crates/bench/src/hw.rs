//! Hardware correlation: the agent's collectors sampled in a background task while each
//! configuration runs, every window derived by `infermon_model::derive`, then summarised per
//! configuration (power, energy, tokens per joule, WES, thermal state, engine memory, swap).

use std::time::Duration;

use infermon_agent::Collector;
use infermon_config::{resolve, Overrides, RawConfig};
use infermon_model::raw::RawSample;
use infermon_model::thermal::ThermalState;
use infermon_model::wes::{wes, NoWes};
use infermon_model::{derive, DeriveSettings, EngineFigures, Snapshot};
use tokio::sync::oneshot;

use crate::bandwidth;
use crate::schema::{HwReport, SystemInfo};

/// The node's collectors, between configurations.
pub(crate) struct Hw {
    collector: Option<Collector>,
    derive: DeriveSettings,
    /// Base URL of the engine as the collectors poll it.
    engine: String,
    interval: Duration,
}

/// Sampling running during one configuration, on a thread of its own (its file reads and
/// engine requests never delay the load generator's tasks).
pub(crate) struct Sampling {
    stop: oneshot::Sender<()>,
    done: oneshot::Receiver<(Collector, Vec<Snapshot>)>,
}

/// `http://localhost:P` → `http://127.0.0.1:P`, the address discovery reports.
fn normalise(base: &str) -> String {
    base.trim_end_matches('/')
        .replacen("://localhost:", "://127.0.0.1:", 1)
        .replacen("://[::1]:", "://127.0.0.1:", 1)
}

/// (host, port) of a base URL.
fn host_port(url: &str) -> Option<(String, String)> {
    let rest = url.split_once("://").map_or(url, |x| x.1);
    let authority = rest.split('/').next()?;
    let (h, p) = authority.rsplit_once(':')?;
    let loopback = matches!(h, "localhost" | "127.0.0.1" | "[::1]" | "0.0.0.0");
    Some((
        if loopback {
            "loopback".into()
        } else {
            h.into()
        },
        p.into(),
    ))
}

/// Whether two base URLs name the same server.
pub(crate) fn same_server(a: &str, b: &str) -> bool {
    matches!((host_port(a), host_port(b)), (Some(x), Some(y)) if x == y)
}

fn engine_of<'a>(s: &'a Snapshot, base: &str) -> Option<&'a EngineFigures> {
    s.engines.iter().find(|e| same_server(&e.instance, base))
}

impl Hw {
    /// Collectors for this node and the engine of `kind` at `base`; with `discovery`, the
    /// local llama-server process serving `base` is looked up once (for its memory). Other
    /// local servers are left alone: only the endpoint's engine is polled. The error names
    /// the bad value.
    pub(crate) fn new(
        kind: &str,
        base: &str,
        discovery: bool,
        interval: Duration,
        pue: f64,
    ) -> Result<Hw, String> {
        let engine = normalise(base);
        let overrides = Overrides {
            engines: vec![format!("{kind}={engine}")],
            no_discovery: true,
            ..Overrides::default()
        };
        let settings = resolve(RawConfig::default(), &overrides, &|_| None)
            .map_err(|e| format!("hardware sampling: {e}"))?;
        let mut collector = Collector::new(&settings);
        if discovery {
            collector.attach_local_processes();
        }
        Ok(Hw {
            collector: Some(collector),
            derive: DeriveSettings { pue },
            engine,
            interval,
        })
    }

    /// One sample now: the GPUs, the node, the engine process and its model file.
    pub(crate) async fn system(
        &mut self,
        peak_flag: Option<f64>,
        model_file: Option<&std::path::Path>,
        model_size: Option<u64>,
    ) -> SystemInfo {
        let mut info = SystemInfo::default();
        let raw = match self.collector.as_mut() {
            Some(c) => Some(c.sample(self.interval).await),
            None => None,
        };
        let snap = raw.as_ref().map(|r| derive(None, r, &self.derive));
        if let Some(s) = &snap {
            info.gpus = s
                .gpus
                .iter()
                .map(|g| g.name.clone().unwrap_or_else(|| g.id.clone()))
                .collect();
            info.cpu_count = s.host.cpu_count;
            info.memory_total_bytes = s.host.memory_total_bytes;
            info.engine_pid = engine_of(s, &self.engine).and_then(|e| e.pid);
            for src in s.sources.iter().filter(|x| !x.ok) {
                if let Some(r) = &src.reason {
                    info.unavailable.push(format!("{}: {r}", src.source));
                }
            }
        }
        let (peak, source) = bandwidth::peak(peak_flag, &info.gpus);
        info.peak_bandwidth_gb_s = peak;
        info.peak_bandwidth_source = source;
        let served = raw.as_ref().and_then(|r| model_path(r, &self.engine));
        info.model_path = model_file.map(|p| p.display().to_string()).or(served);
        info.model_size_bytes = model_size;
        if info.model_size_bytes.is_none() {
            if let Some(p) = &info.model_path {
                match std::fs::metadata(p) {
                    Ok(m) => info.model_size_bytes = Some(m.len()),
                    Err(e) => info.unavailable.push(format!(
                        "model size: cannot read \"{p}\" ({e}); give --model-size or --model-file"
                    )),
                }
            } else {
                info.unavailable.push(
                    "model size: the engine did not say which file it serves; give --model-file or --model-size"
                        .into(),
                );
            }
        }
        info
    }

    /// Starts sampling: one sample at once (awaited, so it precedes the first request), then
    /// one per interval until [`Hw::end`].
    pub(crate) async fn begin(&mut self) -> Option<Sampling> {
        let mut collector = self.collector.take()?;
        let interval = self.interval;
        let settings = self.derive;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (done_tx, done) = oneshot::channel();
        let (first_tx, first_rx) = oneshot::channel::<()>();
        let body = move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(_) => {
                    let _ = first_tx.send(());
                    let _ = done_tx.send((collector, Vec::new()));
                    return;
                }
            };
            let result = rt.block_on(async move {
                let first = collector.sample(interval).await;
                let _ = first_tx.send(());
                let mut snaps = vec![derive(None, &first, &settings)];
                let mut prev = first;
                loop {
                    let last = tokio::select! {
                        () = tokio::time::sleep(interval) => false,
                        _ = &mut stopped => true,
                    };
                    let cur = collector.sample(interval).await;
                    snaps.push(derive(Some(&prev), &cur, &settings));
                    prev = cur;
                    if last {
                        return (collector, snaps);
                    }
                }
            });
            let _ = done_tx.send(result);
        };
        if let Err(e) = std::thread::Builder::new()
            .name("infermon-bench-hw".into())
            .spawn(body)
        {
            tracing::warn!("cannot start the hardware sampling thread: {e}");
            return None;
        }
        let _ = first_rx.await;
        Some(Sampling { stop, done })
    }

    /// Stops sampling (with a last sample) and summarises the configuration.
    pub(crate) async fn end(
        &mut self,
        s: Sampling,
        completion_tokens: Option<u64>,
        output_tokens_per_second: Option<f64>,
    ) -> HwReport {
        let _ = s.stop.send(());
        match s.done.await {
            Ok((collector, snaps)) => {
                self.collector = Some(collector);
                summarise(
                    &snaps,
                    &self.engine,
                    completion_tokens,
                    output_tokens_per_second,
                    self.derive.pue,
                )
            }
            Err(_) => HwReport {
                unavailable: vec!["the hardware sampling thread ended early".into()],
                thermal_state: "unknown".into(),
                ..HwReport::default()
            },
        }
    }
}

fn model_path(raw: &RawSample, base: &str) -> Option<String> {
    raw.engines
        .iter()
        .filter(|e| same_server(&e.instance, base))
        .find_map(|e| e.props.value().and_then(|p| p.model_path.clone()))
}

fn why_no_wes(n: NoWes) -> &'static str {
    match n {
        NoWes::NoTokenRate => "no token rate",
        NoWes::Idle => "no tokens were generated",
        NoWes::NoPower => "no power reading on this node",
        NoWes::NonPositivePower => "power read as zero or negative",
    }
}

/// Summarises the snapshots of one configuration (the first has no window; each later one
/// covers the time since the one before).
pub(crate) fn summarise(
    snaps: &[Snapshot],
    engine: &str,
    completion_tokens: Option<u64>,
    output_tps: Option<f64>,
    pue: f64,
) -> HwReport {
    let mut r = HwReport {
        samples: snaps.len() as u32,
        thermal_state: ThermalState::Normal.as_str().to_string(),
        ..HwReport::default()
    };
    let (Some(first), Some(last)) = (snaps.first(), snaps.last()) else {
        r.unavailable.push("no samples were taken".into());
        return r;
    };
    let windows: Vec<(&Snapshot, f64)> = snaps[1..]
        .iter()
        .filter_map(|s| s.window_seconds.filter(|w| *w > 0.0).map(|w| (s, w)))
        .collect();
    let powered: Vec<(f64, f64)> = windows
        .iter()
        .filter_map(|(s, w)| s.efficiency.power_watts.map(|p| (p, *w)))
        .collect();
    if !powered.is_empty() {
        let joules: f64 = powered.iter().map(|(p, w)| p * w).sum();
        let secs: f64 = powered.iter().map(|(_, w)| w).sum();
        r.power_watts_mean = (secs > 0.0).then(|| joules / secs);
        r.power_watts_peak = powered.iter().map(|(p, _)| *p).reduce(f64::max);
        if powered.len() == windows.len() {
            r.energy_joules = Some(joules);
        } else {
            r.unavailable.push(format!(
                "power read in {} of {} windows: no energy total",
                powered.len(),
                windows.len()
            ));
        }
        r.power_sources = last.efficiency.power_sources.clone();
    } else {
        r.unavailable
            .push("no power reading on this node (no RAPL, NVML or amdgpu power)".into());
    }
    r.tokens_per_joule = match (completion_tokens, r.energy_joules) {
        (Some(t), Some(j)) if j > 0.0 => Some(t as f64 / j),
        _ => None,
    };
    let mut worst = ThermalState::Normal;
    for (s, w) in &windows {
        let st = s.efficiency.thermal.state;
        worst = worst.max(st);
        if st != ThermalState::Normal {
            r.throttle_seconds += w;
        }
        for reason in &s.efficiency.thermal.reasons {
            if !r.thermal_reasons.contains(reason) {
                r.thermal_reasons.push(reason.clone());
            }
        }
    }
    r.thermal_state = worst.as_str().to_string();
    match wes(output_tps, r.power_watts_mean, pue, worst.penalty()) {
        Ok(w) => r.wes = Some(w),
        Err(n) => r.wes_unavailable = Some(why_no_wes(n).to_string()),
    }
    let mean = |v: Vec<f64>| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    r.gpu_utilization_mean_ratio = mean(
        windows
            .iter()
            .flat_map(|(s, _)| s.gpus.iter().filter_map(|g| g.utilization_ratio))
            .collect(),
    );
    r.cpu_utilization_mean_ratio = mean(
        windows
            .iter()
            .filter_map(|(s, _)| s.host.cpu_utilization_ratio)
            .collect(),
    );
    let delta = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    r.swap_in_bytes = delta(
        first.host.swap_in_bytes_total,
        last.host.swap_in_bytes_total,
    );
    r.swap_out_bytes = delta(
        first.host.swap_out_bytes_total,
        last.host.swap_out_bytes_total,
    );
    r.swap_any = match (r.swap_in_bytes, r.swap_out_bytes) {
        (None, None) => None,
        (i, o) => Some(i.unwrap_or(0) > 0 || o.unwrap_or(0) > 0),
    };
    if r.swap_any.is_none() {
        r.unavailable.push("swap counters unreadable".into());
    }
    r.major_page_faults = delta(
        first.host.major_page_faults_total,
        last.host.major_page_faults_total,
    );
    let engines: Vec<&EngineFigures> = snaps.iter().filter_map(|s| engine_of(s, engine)).collect();
    r.engine_pid = engines.iter().find_map(|e| e.pid);
    r.engine_memory_peak_bytes = engines.iter().filter_map(|e| e.memory_resident_bytes).max();
    if r.engine_memory_peak_bytes.is_none() {
        r.unavailable.push(match r.engine_pid {
            None => format!("engine memory: no local llama-server process found serving {engine}"),
            Some(p) => format!("engine memory: cannot read pid {p}"),
        });
    }
    r.engine_generation_tokens = match (
        engine_of(first, engine).and_then(|e| e.generation_tokens_total),
        engine_of(last, engine).and_then(|e| e.generation_tokens_total),
    ) {
        (Some(a), Some(b)) if b >= a => Some(b - a),
        _ => None,
    };
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_match_by_port_and_loopback() {
        assert!(same_server(
            "http://127.0.0.1:8080",
            "http://localhost:8080/"
        ));
        assert!(same_server(
            "http://127.0.0.1:8080/v1",
            "http://127.0.0.1:8080"
        ));
        assert!(!same_server(
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8081"
        ));
        assert!(!same_server(
            "http://10.0.0.2:8080",
            "http://127.0.0.1:8080"
        ));
        assert_eq!(normalise("http://localhost:9/"), "http://127.0.0.1:9");
    }

    #[test]
    fn the_engine_counter_delta_and_missing_power_are_reported() {
        use infermon_model::testing::sample_with_engine;
        let raws = [
            sample_with_engine(0, 100.0, 1.0),
            sample_with_engine(1000, 150.0, 2.0),
            sample_with_engine(2000, 228.0, 3.0),
        ];
        let set = DeriveSettings::default();
        let mut snaps = vec![derive(None, &raws[0], &set)];
        for w in raws.windows(2) {
            snaps.push(derive(Some(&w[0]), &w[1], &set));
        }
        let r = summarise(&snaps, "http://localhost:8080", Some(128), Some(64.0), 1.0);
        assert_eq!(r.samples, 3);
        assert_eq!(r.engine_generation_tokens, Some(128.0));
        assert_eq!(r.power_watts_mean, None);
        assert_eq!(r.energy_joules, None);
        assert_eq!(
            r.wes_unavailable.as_deref(),
            Some("no power reading on this node")
        );
        assert_eq!(r.thermal_state, "normal");
        assert!(r.swap_any.is_none());
        assert!(r.unavailable.iter().any(|u| u.contains("power")));
        assert!(r.unavailable.iter().any(|u| u.contains("engine memory")));
    }

    #[test]
    fn no_samples_say_so() {
        let r = summarise(&[], "http://127.0.0.1:1", Some(3), Some(1.0), 1.0);
        assert_eq!(r.samples, 0);
        assert!(r.energy_joules.is_none() && r.wes.is_none());
        assert!(!r.unavailable.is_empty());
    }
}
