//! Flattening a [`Snapshot`] into named series: the single naming of every figure, shared by
//! `/metrics`, the store and the history API.

use crate::series::{MetricKind, SeriesPoint};
use crate::snapshot::{EngineFigures, Snapshot};

struct Out(Vec<SeriesPoint>);

impl Out {
    fn g(&mut self, name: &'static str, labels: &[(&'static str, &str)], v: Option<f64>) {
        self.push(name, labels, v, MetricKind::Gauge);
    }
    fn c(&mut self, name: &'static str, labels: &[(&'static str, &str)], v: Option<f64>) {
        self.push(name, labels, v, MetricKind::Counter);
    }
    fn push(
        &mut self,
        name: &'static str,
        labels: &[(&'static str, &str)],
        v: Option<f64>,
        kind: MetricKind,
    ) {
        if let Some(value) = v.filter(|x| x.is_finite()) {
            self.0.push(SeriesPoint {
                name,
                labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
                value,
                kind,
            });
        }
    }
}

fn b(x: bool) -> Option<f64> {
    Some(if x { 1.0 } else { 0.0 })
}

fn u(x: Option<u64>) -> Option<f64> {
    x.map(|v| v as f64)
}

impl Snapshot {
    /// Every figure of this snapshot as a named series. Figures that are unavailable are
    /// absent (never 0); `infermon_source_up` says which sources could not be read.
    pub fn series(&self) -> Vec<SeriesPoint> {
        let mut o = Out(Vec::with_capacity(96));
        self.host_series(&mut o);
        self.gpu_series(&mut o);
        self.engine_series(&mut o);
        self.efficiency_series(&mut o);
        for r in &self.requests {
            request_series(r, &mut o);
        }
        for s in &self.sources {
            o.g("infermon_source_up", &[("source", &s.source)], b(s.ok));
        }
        if let Some(st) = &self.store {
            let n = |v: u64| Some(v as f64);
            o.c(
                "infermon_store_write_errors_total",
                &[],
                n(st.write_errors_total),
            );
            o.g("infermon_store_backlog_samples", &[], n(st.backlog_samples));
            o.c(
                "infermon_store_samples_written_late_total",
                &[],
                n(st.samples_written_late_total),
            );
            o.c(
                "infermon_store_samples_dropped_total",
                &[],
                n(st.samples_dropped_total),
            );
        }
        let a = &self.agent;
        o.c("infermon_agent_cpu_seconds_total", &[], a.cpu_seconds_total);
        o.g(
            "infermon_agent_resident_memory_bytes",
            &[],
            u(a.resident_memory_bytes),
        );
        o.g(
            "infermon_agent_sample_interval_seconds",
            &[],
            Some(a.interval_seconds),
        );
        o.g(
            "infermon_agent_collect_duration_seconds",
            &[],
            Some(a.collect_seconds),
        );
        o.0
    }

    fn host_series(&self, o: &mut Out) {
        let h = &self.host;
        o.g(
            "infermon_node_cpu_utilization_ratio",
            &[],
            h.cpu_utilization_ratio,
        );
        o.g("infermon_node_cpus", &[], h.cpu_count.map(f64::from));
        o.g(
            "infermon_node_cpu_frequency_hertz",
            &[],
            h.cpu_frequency_hertz,
        );
        o.g(
            "infermon_node_cpu_frequency_max_hertz",
            &[],
            h.cpu_frequency_max_hertz,
        );
        o.g(
            "infermon_node_memory_total_bytes",
            &[],
            u(h.memory_total_bytes),
        );
        o.g(
            "infermon_node_memory_available_bytes",
            &[],
            u(h.memory_available_bytes),
        );
        o.g("infermon_node_swap_total_bytes", &[], u(h.swap_total_bytes));
        o.g("infermon_node_swap_used_bytes", &[], u(h.swap_used_bytes));
        o.c(
            "infermon_node_swap_in_bytes_total",
            &[],
            u(h.swap_in_bytes_total),
        );
        o.c(
            "infermon_node_swap_out_bytes_total",
            &[],
            u(h.swap_out_bytes_total),
        );
        o.g(
            "infermon_node_swap_in_bytes_per_second",
            &[],
            h.swap_in_bytes_per_second,
        );
        o.g(
            "infermon_node_swap_out_bytes_per_second",
            &[],
            h.swap_out_bytes_per_second,
        );
        o.c(
            "infermon_node_major_page_faults_total",
            &[],
            u(h.major_page_faults_total),
        );
        let psi = "infermon_node_pressure_ratio";
        let mem_some = [("resource", "memory"), ("kind", "some")];
        o.g(psi, &mem_some, h.pressure_memory_some_ratio);
        let mem_full = [("resource", "memory"), ("kind", "full")];
        o.g(psi, &mem_full, h.pressure_memory_full_ratio);
        o.g(
            psi,
            &[("resource", "cpu"), ("kind", "some")],
            h.pressure_cpu_some_ratio,
        );
        o.g(
            psi,
            &[("resource", "io"), ("kind", "some")],
            h.pressure_io_some_ratio,
        );
        o.c(
            "infermon_node_cpu_energy_joules_total",
            &[],
            h.cpu_energy_joules_total,
        );
        o.g("infermon_node_cpu_power_watts", &[], h.cpu_power_watts);
        for t in &h.temperatures {
            o.g(
                "infermon_node_temperature_celsius",
                &[("sensor", &t.sensor)],
                Some(t.celsius),
            );
        }
    }

    fn gpu_series(&self, o: &mut Out) {
        for g in &self.gpus {
            let vendor = match g.vendor {
                crate::raw::GpuVendor::Nvidia => "nvidia",
                crate::raw::GpuVendor::Amd => "amd",
            };
            let index = g.index.to_string();
            let l = [
                ("vendor", vendor),
                ("gpu", index.as_str()),
                ("id", g.id.as_str()),
            ];
            o.g("infermon_gpu_utilization_ratio", &l, g.utilization_ratio);
            o.g("infermon_gpu_memory_busy_ratio", &l, g.memory_busy_ratio);
            let with = |pool: &'static str| {
                [
                    ("vendor", vendor),
                    ("gpu", index.as_str()),
                    ("id", g.id.as_str()),
                    ("pool", pool),
                ]
            };
            o.g(
                "infermon_gpu_memory_used_bytes",
                &with("vram"),
                u(g.vram_used_bytes),
            );
            o.g(
                "infermon_gpu_memory_total_bytes",
                &with("vram"),
                u(g.vram_total_bytes),
            );
            o.g(
                "infermon_gpu_memory_used_bytes",
                &with("gtt"),
                u(g.gtt_used_bytes),
            );
            o.g(
                "infermon_gpu_memory_total_bytes",
                &with("gtt"),
                u(g.gtt_total_bytes),
            );
            o.g("infermon_gpu_power_watts", &l, g.power_watts);
            o.g("infermon_gpu_power_limit_watts", &l, g.power_limit_watts);
            o.c(
                "infermon_gpu_energy_joules_total",
                &l,
                g.energy_joules_total,
            );
            o.g(
                "infermon_gpu_temperature_celsius",
                &l,
                g.temperature_celsius,
            );
            o.g("infermon_gpu_clock_hertz", &l, g.clock_hertz);
            o.g("infermon_gpu_clock_max_hertz", &l, g.clock_max_hertz);
            o.g("infermon_gpu_memory_clock_hertz", &l, g.memory_clock_hertz);
            if let Some(t) = &g.thermal {
                o.g("infermon_gpu_thermal_penalty", &l, Some(t.state.penalty()));
            }
        }
    }

    fn engine_series(&self, o: &mut Out) {
        for e in &self.engines {
            let l = [
                ("engine", e.kind.as_str()),
                ("instance", e.instance.as_str()),
                ("model", e.model.as_str()),
            ];
            o.g("infermon_engine_up", &l, b(e.up));
            o.g(
                "infermon_engine_metrics_available",
                &l,
                b(e.metrics_available),
            );
            o.c(
                "infermon_engine_prompt_tokens_total",
                &l,
                e.prompt_tokens_total,
            );
            o.c(
                "infermon_engine_generation_tokens_total",
                &l,
                e.generation_tokens_total,
            );
            o.g(
                "infermon_engine_generation_tokens_per_second",
                &l,
                e.generation_tokens_per_second,
            );
            o.g(
                "infermon_engine_generation_throughput_tokens_per_second",
                &l,
                e.generation_throughput_tokens_per_second,
            );
            o.g(
                "infermon_engine_prompt_tokens_per_second",
                &l,
                e.prompt_tokens_per_second,
            );
            o.g(
                "infermon_engine_prompt_throughput_tokens_per_second",
                &l,
                e.prompt_throughput_tokens_per_second,
            );
            o.g("infermon_engine_requests_running", &l, e.requests_running);
            o.g("infermon_engine_requests_waiting", &l, e.requests_waiting);
            o.g(
                "infermon_engine_slots_processing",
                &l,
                e.slots_processing.map(f64::from),
            );
            o.g("infermon_engine_slots", &l, e.slots_total.map(f64::from));
            o.g("infermon_engine_context_size_tokens", &l, u(e.n_ctx));
            o.g(
                "infermon_engine_memory_resident_bytes",
                &l,
                u(e.memory_resident_bytes),
            );
            if let Some(c) = &e.memory_estimate {
                let est = Some(c.estimated_bytes as f64);
                o.g("infermon_engine_memory_estimated_bytes", &l, est);
                let ratio = Some(c.error_percent / 100.0);
                o.g("infermon_engine_memory_estimate_error_ratio", &l, ratio);
            }
            o.g(
                "infermon_engine_memory_bandwidth_utilization_ratio",
                &l,
                e.memory_bandwidth_utilization_ratio,
            );
            engine_detail_series(e, o);
        }
    }

    fn efficiency_series(&self, o: &mut Out) {
        let f = &self.efficiency;
        o.g(
            "infermon_node_generation_tokens_per_second",
            &[],
            f.generation_tokens_per_second,
        );
        o.g("infermon_node_power_watts", &[], f.power_watts);
        o.g("infermon_node_tokens_per_joule", &[], f.tokens_per_joule);
        o.g("infermon_thermal_penalty", &[], Some(f.thermal_penalty));
        o.g(
            "infermon_thermal_state",
            &[("state", f.thermal.state.as_str())],
            Some(f64::from(f.thermal.state.level())),
        );
        if let Ok(w) = &f.wes {
            o.g("infermon_wes", &[("kind", "raw")], Some(w.raw));
            o.g("infermon_wes", &[("kind", "penalized")], Some(w.penalized));
            o.g(
                "infermon_thermal_cost_ratio",
                &[],
                Some(w.thermal_cost_percent / 100.0),
            );
        }
    }
}

/// Window figures of requests measured by the proxies, per upstream and model (the
/// cumulative OpenTelemetry histograms are rendered by the API from the request log).
fn request_series(r: &crate::reqstats::RequestStats, o: &mut Out) {
    let l = [
        ("upstream", r.upstream.as_str()),
        ("model", r.model.as_str()),
    ];
    o.g("infermon_requests_in_window", &l, Some(r.requests as f64));
    o.g("infermon_requests_error_ratio", &l, Some(r.error_ratio));
    o.g(
        "infermon_requests_output_tokens_per_second",
        &l,
        Some(r.output_tokens_per_second),
    );
    o.g(
        "infermon_requests_per_second",
        &l,
        Some(r.requests_per_second),
    );
    o.g(
        "infermon_requests_goodput_per_second",
        &l,
        r.goodput_requests_per_second,
    );
    o.g(
        "infermon_requests_slo_attainment_ratio",
        &l,
        r.slo_attainment_ratio,
    );
    for (metric, s) in [
        ("ttft", &r.ttft_ms),
        ("tpot", &r.tpot_ms),
        ("itl", &r.itl_ms),
        ("e2e", &r.e2e_ms),
    ] {
        let Some(s) = s else { continue };
        for (q, v) in [("50", s.p50), ("90", s.p90), ("99", s.p99)] {
            let lq = [l[0], l[1], ("metric", metric), ("percentile", q)];
            o.g("infermon_requests_latency_seconds", &lq, Some(v / 1000.0));
        }
        let lm = [l[0], l[1], ("metric", metric)];
        o.g(
            "infermon_requests_latency_mean_seconds",
            &lm,
            Some(s.mean / 1000.0),
        );
    }
}

/// Per-model series of an engine: latency quantiles over the window, scheduler and cache
/// figures, hosted models. Labelled `engine`, `instance` and the per-model `model`.
fn engine_detail_series(e: &EngineFigures, o: &mut Out) {
    let (kind, instance) = (e.kind.as_str(), e.instance.as_str());
    for f in &e.latency {
        let metric = f.metric.as_str();
        let l = [
            ("engine", kind),
            ("instance", instance),
            ("model", f.model.as_str()),
            ("metric", metric),
        ];
        let n = "infermon_engine_latency_window_observations";
        o.g(n, &l, Some(f.count));
        o.g("infermon_engine_latency_mean_seconds", &l, f.mean_seconds);
        for (q, v) in [
            ("50", f.p50_seconds),
            ("90", f.p90_seconds),
            ("99", f.p99_seconds),
        ] {
            let lq = [l[0], l[1], l[2], l[3], ("percentile", q)];
            o.g("infermon_engine_latency_seconds", &lq, v);
        }
    }
    for s in &e.scheduler {
        let l = [
            ("engine", kind),
            ("instance", instance),
            ("model", s.model.as_str()),
        ];
        o.g(
            "infermon_engine_model_generation_throughput_tokens_per_second",
            &l,
            s.generation_throughput_tokens_per_second,
        );
        o.g(
            "infermon_engine_model_prompt_throughput_tokens_per_second",
            &l,
            s.prompt_throughput_tokens_per_second,
        );
        o.g(
            "infermon_engine_model_requests_running",
            &l,
            s.requests_running,
        );
        o.g(
            "infermon_engine_model_requests_waiting",
            &l,
            s.requests_waiting,
        );
        o.g("infermon_engine_kv_cache_usage_ratio", &l, s.kv_usage_ratio);
        o.g(
            "infermon_engine_prefix_cache_hit_ratio",
            &l,
            s.prefix_cache_hit_ratio,
        );
        o.g("infermon_engine_preemptions", &l, s.preemptions_in_window);
        o.g("infermon_engine_spec_accept_ratio", &l, s.spec_accept_ratio);
    }
    for m in e.models.iter().flatten() {
        let r = &m.raw;
        let l = [
            ("engine", kind),
            ("instance", instance),
            ("model", r.name.as_str()),
        ];
        let ls = [l[0], l[1], l[2], ("state", r.state.as_str())];
        o.g("infermon_engine_model_loaded", &ls, Some(1.0));
        o.g("infermon_engine_model_size_bytes", &l, u(r.size_bytes));
        o.g("infermon_engine_model_vram_bytes", &l, u(r.vram_bytes));
        o.g(
            "infermon_engine_model_cpu_offload_ratio",
            &l,
            m.cpu_offload_ratio,
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::detail::ModelRaw;
    use crate::raw::Reading;
    use crate::testing::{empty_sample, llamacpp_engine};
    use crate::{derive, DeriveSettings};

    fn model(name: &str, size: Option<u64>, vram: Option<u64>) -> ModelRaw {
        ModelRaw {
            name: name.into(),
            state: "loaded".into(),
            size_bytes: size,
            vram_bytes: vram,
            context_length: None,
            expires_unix_ms: None,
            quantization: None,
            parameter_size: None,
            upstream: None,
        }
    }

    #[test]
    fn model_series_leave_unknowns_out() {
        let mut s = empty_sample(0);
        let mut e = llamacpp_engine(0.0, 0.0);
        e.models = Some(Reading::ok(vec![
            model("a", Some(8_000), Some(2_000)),
            model("b", Some(4_000), None),
        ]));
        s.engines.push(e);
        let series = derive(None, &s, &DeriveSettings::default()).series();
        let find = |name: &str, m: &str| {
            series
                .iter()
                .find(|p| p.name == name && p.labels.contains(&("model", m.to_string())))
                .map(|p| p.value)
        };
        let loaded = series
            .iter()
            .find(|p| p.name == "infermon_engine_model_loaded")
            .map(|p| p.labels.clone());
        assert!(loaded.is_some_and(|l| l.contains(&("state", "loaded".to_string()))));
        assert_eq!(
            find("infermon_engine_model_cpu_offload_ratio", "a"),
            Some(0.75)
        );
        assert_eq!(find("infermon_engine_model_size_bytes", "b"), Some(4_000.0));
        assert_eq!(find("infermon_engine_model_vram_bytes", "b"), None);
        assert_eq!(find("infermon_engine_model_cpu_offload_ratio", "b"), None);
    }
}
