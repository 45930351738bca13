//! One sampling round over every collector. Failures become `Unavailable` readings.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use infermon_config::Settings;
use infermon_engines::discover::discover;
use infermon_engines::llamacpp::LlamaCpp;
use infermon_hw::{detect_gpus, GpuSource, HostReader};
use infermon_model::raw::{AgentRaw, RawSample, SourceStatus};

struct Engine {
    client: LlamaCpp,
    discovered: bool,
}

/// Holds the collectors chosen at start-up (GPU sources by the detection factory, engines from
/// settings plus discovery).
pub struct Collector {
    root: PathBuf,
    host: HostReader,
    gpus: Vec<Box<dyn GpuSource>>,
    gpu_init_status: Vec<SourceStatus>,
    engines: Vec<Engine>,
    timeout: Duration,
    started: Instant,
}

impl Collector {
    /// Builds the collectors for these settings.
    pub fn new(settings: &Settings) -> Self {
        let (gpus, gpu_init_status) = detect_gpus(&settings.root);
        let engines = settings
            .engines
            .iter()
            .map(|e| Engine {
                client: LlamaCpp::new(&e.url, e.origin, None, settings.engine_timeout),
                discovered: false,
            })
            .collect();
        Collector {
            root: settings.root.clone(),
            host: HostReader::new(settings.root.clone()),
            gpus,
            gpu_init_status,
            engines,
            timeout: settings.engine_timeout,
            started: Instant::now(),
        }
    }

    /// Base URLs of the engines polled now.
    pub fn engine_urls(&self) -> Vec<String> {
        self.engines
            .iter()
            .map(|e| e.client.base().to_string())
            .collect()
    }

    /// Rescans the process list: adds newly found servers, drops discovered ones that are gone.
    pub fn refresh_discovery(&mut self) {
        let found = discover(&self.root);
        self.engines
            .retain(|e| !e.discovered || found.iter().any(|d| d.url == e.client.base()));
        for d in found {
            if self.engines.iter().any(|e| e.client.base() == d.url) {
                continue;
            }
            tracing::info!(url = %d.url, pid = d.pid, how = d.how, "discovered llama-server");
            self.engines.push(Engine {
                client: LlamaCpp::new(&d.url, "discovered", Some(d.pid), self.timeout),
                discovered: true,
            });
        }
    }

    /// Reads everything once.
    pub async fn sample(&mut self, interval: Duration) -> RawSample {
        let t0 = Instant::now();
        let ts_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mono_ms = self.started.elapsed().as_millis() as u64;
        let engines_fut =
            futures_util::future::join_all(self.engines.iter().map(|e| e.client.read()));
        let host = self.host.read();
        let mut gpus = Vec::new();
        let mut gpu_sources = self.gpu_init_status.clone();
        for src in &mut self.gpus {
            match src.read() {
                Ok(mut g) => {
                    gpu_sources.push(SourceStatus {
                        source: src.name().to_string(),
                        unavailable: None,
                    });
                    gpus.append(&mut g);
                }
                Err(reason) => gpu_sources.push(SourceStatus {
                    source: src.name().to_string(),
                    unavailable: Some(reason),
                }),
            }
        }
        let engines = engines_fut.await;
        let me = infermon_hw::read_self(&self.root);
        RawSample {
            ts_unix_ms,
            mono_ms,
            host,
            gpus,
            gpu_sources,
            engines,
            agent: AgentRaw {
                cpu_seconds_total: me.cpu_seconds_total,
                rss_bytes: me.rss_bytes,
                interval_ms: interval.as_millis() as u64,
                collect_ms: t0.elapsed().as_secs_f64() * 1000.0,
            },
        }
    }
}
