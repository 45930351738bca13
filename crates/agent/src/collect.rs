//! One sampling round over every collector. Failures become `Unavailable` readings.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use infermon_config::Settings;
use infermon_engines::client::EngineClient;
use infermon_engines::discover::discover;
use infermon_hw::{detect_gpus, GpuSource, HostReader};
use infermon_model::raw::{
    AgentRaw, EngineKind, EngineMemoryRaw, EngineRaw, RawSample, SourceStatus,
};

/// Bytes of one estimate: total, KV cache and weights.
#[derive(Clone, Copy)]
struct EstimateBytes {
    total: u64,
    kv: u64,
    weights: u64,
}

/// An estimate for (pid, model path): its bytes, or why there is none.
type CachedEstimate = (u32, String, Result<EstimateBytes, String>);

struct Engine {
    client: EngineClient,
    discovered: bool,
    /// Process and its arguments, when a local process serves this URL.
    process: Option<(u32, Vec<String>)>,
    /// Estimate for (pid, model path): total, KV and weight bytes, or why there is none.
    estimate: Option<CachedEstimate>,
}

impl Engine {
    fn new(client: EngineClient, discovered: bool, process: Option<(u32, Vec<String>)>) -> Self {
        Engine {
            client,
            discovered,
            process,
            estimate: None,
        }
    }
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
            .filter_map(|e| {
                let Some(kind) = EngineKind::parse(&e.kind) else {
                    tracing::error!(kind = %e.kind, url = %e.url, "unknown engine kind: not polled");
                    return None;
                };
                Some(Engine::new(
                    EngineClient::new(kind, &e.url, e.origin, None, settings.engine_timeout),
                    false,
                    None,
                ))
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

    /// Rescans the process list: adds newly found servers, drops discovered ones that are gone.
    pub fn refresh_discovery(&mut self) {
        let found = discover(&self.root);
        self.engines
            .retain(|e| !e.discovered || found.iter().any(|d| d.url == e.client.base()));
        for d in found {
            if let Some(e) = self.engines.iter_mut().find(|e| e.client.base() == d.url) {
                e.process = Some((d.pid, d.args.clone()));
                continue;
            }
            tracing::info!(url = %d.url, pid = d.pid, how = d.how, "discovered llama-server");
            self.engines.push(Engine::new(
                EngineClient::new(
                    EngineKind::Llamacpp,
                    &d.url,
                    "discovered",
                    Some(d.pid),
                    self.timeout,
                ),
                true,
                Some((d.pid, d.args)),
            ));
        }
    }

    /// Looks up the local processes serving the configured engines, so that their memory is
    /// read with every sample, without adding the other local servers that discovery finds
    /// (for a run that must poll one engine only, like `infermon bench`). A process is matched
    /// to an engine when their base URLs are equal. Returns the engines that got a process,
    /// as (base URL, pid).
    pub fn attach_local_processes(&mut self) -> Vec<(String, u32)> {
        let found = discover(&self.root);
        let mut attached = Vec::new();
        for e in &mut self.engines {
            if let Some(d) = found.iter().find(|d| d.url == e.client.base()) {
                e.process = Some((d.pid, d.args.clone()));
                attached.push((d.url.clone(), d.pid));
            }
        }
        attached
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
        // Host and GPU reads are synchronous file and driver calls (a few ms, more on a slow
        // box); they must not hold a runtime worker that proxies are streaming on.
        let (host, gpus, gpu_sources) = off_runtime(|| {
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
            (host, gpus, gpu_sources)
        });
        let mut engines = engines_fut.await;
        let root = self.root.clone();
        off_runtime(|| {
            for (raw, e) in engines.iter_mut().zip(self.engines.iter_mut()) {
                if let Some((pid, _)) = &e.process {
                    raw.pid = Some(*pid);
                }
                raw.memory = engine_memory(&root, e, raw);
            }
        });
        let me = off_runtime(|| infermon_hw::read_self(&self.root));
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

/// Runs blocking work without stalling the runtime's other tasks: on a multi-thread runtime
/// the worker hands its queued tasks to another thread first (`block_in_place`); elsewhere
/// (single-threaded tests) it just runs.
fn off_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Measures a local engine process and estimates what it should use (once per pid and model).
fn engine_memory(
    root: &std::path::Path,
    e: &mut Engine,
    raw: &EngineRaw,
) -> Option<EngineMemoryRaw> {
    let (pid, args) = e.process.clone()?;
    let mut m = EngineMemoryRaw {
        rss_bytes: None,
        pss_bytes: None,
        estimate_total_bytes: None,
        estimate_kv_bytes: None,
        estimate_weights_bytes: None,
        unavailable: Vec::new(),
    };
    match infermon_hw::read_process(root, pid) {
        Ok(p) => {
            m.rss_bytes = Some(p.rss_bytes);
            m.pss_bytes = p.pss_bytes;
        }
        Err(err) => m.unavailable.push(format!("memory of pid {pid}: {err}")),
    }
    let Some(model) = raw.props.value().and_then(|p| p.model_path.clone()) else {
        m.unavailable
            .push("estimate: the server has not said which model it runs".into());
        return Some(m);
    };
    let fresh = !matches!(&e.estimate, Some((p, path, _)) if *p == pid && *path == model);
    if fresh {
        let (mut params, _unknown) = infermon_fit::parse_args(args.get(1..).unwrap_or(&[]));
        params.model = Some(model.clone().into());
        let result = infermon_fit::from_gguf::load(std::path::Path::new(&model))
            .and_then(|info| {
                infermon_fit::estimate(&info, None, &params, false).map_err(|x| x.to_string())
            })
            .map(|est| EstimateBytes {
                total: est.total_bytes,
                kv: est.kv_bytes,
                weights: est.weights_bytes,
            });
        e.estimate = Some((pid, model, result));
    }
    match e.estimate.as_ref().map(|x| &x.2) {
        Some(Ok(b)) => {
            m.estimate_total_bytes = Some(b.total);
            m.estimate_kv_bytes = Some(b.kv);
            m.estimate_weights_bytes = Some(b.weights);
        }
        Some(Err(err)) => m.unavailable.push(format!("estimate: {err}")),
        None => {}
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_configurable_kind_is_a_collector() {
        for k in infermon_config::ENGINE_KINDS {
            assert!(EngineKind::parse(k).is_some(), "{k}");
        }
        assert_eq!(infermon_config::ENGINE_KINDS.len(), EngineKind::ALL.len());
    }
}
