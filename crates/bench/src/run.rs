//! Profiles, warm-up and the run: [`run`] turns a [`RunConfig`] into a [`RunReport`].
//!
//! Profiles (each configuration sends [`RunConfig::requests`] measured requests):
//! - `sync`: one request at a time.
//! - `concurrency`: a closed loop keeping N requests in flight, one configuration per N.
//! - `rate`: an open loop sending R requests per second at constant or Poisson-distributed
//!   arrival times (seeded), optionally capped at a number in flight (a request due while the
//!   cap is reached waits, as with vLLM's `--max-concurrency`); `inf` sends them all at once.
//!
//! Warm-up requests (sequential, before the first configuration) are excluded from every
//! figure. A run never panics and never returns nothing: when the endpoint cannot be reached,
//! never answers, or the run is interrupted, it stops, says why in `aborted`, and reports what
//! completed; planned requests that were never sent are counted in `requests_not_sent`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use infermon_model::reqstats::Slo;
use infermon_model::request::{Api, Outcome, RequestRecord};
use infermon_model::stats::Summary;
use tokio::sync::watch;

use crate::client::{Client, Ready};
use crate::drive::drive;
use crate::figures::{figures, sample};
use crate::hw::Hw;
use crate::progress::Progress;
use crate::prompts::{body, load_jsonl, synthetic, BodySpec, Prompt, Rng};
use crate::schema::{
    Bandwidth, ConfigReport, RunReport, RunSettings, RunStatus, SystemInfo, Target, Warmup,
};
use crate::target::{self, Endpoint};

/// The load shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// One request at a time.
    Sync,
    /// A closed loop per in-flight level.
    Concurrency(Vec<u32>),
    /// An open loop per rate (`None` = all at once).
    Rate {
        /// Requests per second, one configuration each.
        rates: Vec<Option<f64>>,
        /// Poisson arrivals (else evenly spaced).
        poisson: bool,
        /// In-flight cap.
        max_concurrency: Option<u32>,
    },
}

/// Where prompts come from.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptSource {
    /// Synthetic prompts of about this many tokens.
    Synthetic {
        /// Approximate prompt length in tokens.
        input_tokens: u32,
    },
    /// A JSONL file (see [`crate::prompts`]).
    Jsonl(PathBuf),
}

/// Node sampling during the run.
#[derive(Debug, Clone, PartialEq)]
pub struct HwConfig {
    /// Sample the node (default on).
    pub enabled: bool,
    /// Sampling interval (default 1 s).
    pub interval: Duration,
    /// Engine kind for the collectors (`llamacpp`, `vllm`, …); `None` detects it.
    pub engine_kind: Option<String>,
    /// Scan for local engine processes, for the engine's memory (default on).
    pub discovery: bool,
    /// Peak memory bandwidth of the device, GB/s (else from the GPU table).
    pub peak_bandwidth_gb_s: Option<f64>,
    /// The model file (else the one the engine says it serves).
    pub model_file: Option<PathBuf>,
    /// Bytes read per decode step (else the model file's size).
    pub model_size_bytes: Option<u64>,
    /// PUE for WES.
    pub pue: f64,
}

impl Default for HwConfig {
    fn default() -> Self {
        HwConfig {
            enabled: true,
            interval: Duration::from_secs(1),
            engine_kind: None,
            discovery: true,
            peak_bandwidth_gb_s: None,
            model_file: None,
            model_size_bytes: None,
            pue: 1.0,
        }
    }
}

/// Asks a run to stop (Ctrl-C): in-flight requests are dropped, the report says
/// `interrupted`. The default never stops.
#[derive(Debug, Clone, Default)]
pub struct Stop(Option<watch::Receiver<bool>>);

impl Stop {
    /// A stop signal and its sender; send `true` to stop.
    pub fn channel() -> (watch::Sender<bool>, Stop) {
        let (tx, rx) = watch::channel(false);
        (tx, Stop(Some(rx)))
    }

    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|r| *r.borrow())
    }

    /// Resolves once a stop is asked for (never for the default).
    pub(crate) async fn wait(&mut self) {
        if let Some(rx) = self.0.as_mut() {
            loop {
                if *rx.borrow_and_update() {
                    return;
                }
                if rx.changed().await.is_err() {
                    break;
                }
            }
        }
        std::future::pending::<()>().await;
    }
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Base URL (`http://127.0.0.1:8080`), a `…/v1` base, or a full endpoint.
    pub url: String,
    /// API (default: from the URL, else OpenAI chat).
    pub api: Option<Api>,
    /// Model to ask for (default: the one the server lists; Ollama needs one).
    pub model: Option<String>,
    /// Load shape.
    pub profile: Profile,
    /// Measured requests per configuration.
    pub requests: u64,
    /// Warm-up requests before the first configuration.
    pub warmup: u64,
    /// Prompts.
    pub prompts: PromptSource,
    /// `max_tokens` per request.
    pub max_tokens: u32,
    /// Send `ignore_eos` so every answer runs to `max_tokens` (OpenAI APIs).
    pub ignore_eos: bool,
    /// Seed of prompts and arrivals.
    pub seed: u64,
    /// Objectives for goodput.
    pub slo: Slo,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Longest silence (no head, no chunk) before a request times out.
    pub timeout: Duration,
    /// Node sampling.
    pub hardware: HwConfig,
    /// Stop signal.
    pub stop: Stop,
}

impl RunConfig {
    /// Defaults: sync, 50 requests, 1 warm-up, synthetic 128-token prompts, 128 output tokens
    /// with `ignore_eos`, seed 0, 60 s timeout, hardware sampling every second.
    pub fn new(url: &str) -> Self {
        RunConfig {
            url: url.to_string(),
            api: None,
            model: None,
            profile: Profile::Sync,
            requests: 50,
            warmup: 1,
            prompts: PromptSource::Synthetic { input_tokens: 128 },
            max_tokens: 128,
            ignore_eos: true,
            seed: 0,
            slo: Slo::default(),
            headers: Vec::new(),
            timeout: Duration::from_secs(60),
            hardware: HwConfig::default(),
            stop: Stop::default(),
        }
    }
}

/// One configuration to run.
#[derive(Debug, Clone, PartialEq)]
struct Plan {
    label: String,
    profile: &'static str,
    concurrency: Option<u32>,
    rate: Option<f64>,
    arrivals: Option<&'static str>,
}

fn plans(p: &Profile) -> Vec<Plan> {
    match p {
        Profile::Sync => vec![Plan {
            label: "sync".into(),
            profile: "sync",
            concurrency: Some(1),
            rate: None,
            arrivals: None,
        }],
        Profile::Concurrency(levels) => levels
            .iter()
            .map(|c| Plan {
                label: format!("concurrency={c}"),
                profile: "concurrency",
                concurrency: Some((*c).max(1)),
                rate: None,
                arrivals: None,
            })
            .collect(),
        Profile::Rate {
            rates,
            poisson,
            max_concurrency,
        } => rates
            .iter()
            .map(|r| {
                let arrivals = if *poisson { "poisson" } else { "constant" };
                Plan {
                    label: match r {
                        Some(r) => format!("rate={r}/s {arrivals}"),
                        None => "rate=inf".into(),
                    },
                    profile: "rate",
                    concurrency: *max_concurrency,
                    rate: *r,
                    arrivals: r.map(|_| arrivals),
                }
            })
            .collect(),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn settings_of(cfg: &RunConfig) -> RunSettings {
    let (profile, concurrency, rates, arrivals, max_concurrency) = match &cfg.profile {
        Profile::Sync => ("sync", vec![1], vec![], None, None),
        Profile::Concurrency(l) => ("concurrency", l.clone(), vec![], None, None),
        Profile::Rate {
            rates,
            poisson,
            max_concurrency,
        } => (
            "rate",
            vec![],
            rates.clone(),
            Some(if *poisson { "poisson" } else { "constant" }.to_string()),
            *max_concurrency,
        ),
    };
    let (input_tokens, prompts) = match &cfg.prompts {
        PromptSource::Synthetic { input_tokens } => (Some(*input_tokens), "synthetic".to_string()),
        PromptSource::Jsonl(p) => (None, p.display().to_string()),
    };
    RunSettings {
        profile: profile.into(),
        concurrency,
        rates,
        arrivals,
        max_concurrency,
        requests: cfg.requests,
        warmup: cfg.warmup,
        max_tokens: cfg.max_tokens,
        input_tokens,
        prompts,
        seed: cfg.seed,
        ignore_eos: cfg.ignore_eos,
        slo: cfg.slo,
        timeout_s: cfg.timeout.as_secs_f64(),
        hardware: cfg.hardware.enabled,
    }
}

/// The request bodies numbered `first..first+n`.
fn readies(
    cfg: &RunConfig,
    api: Api,
    model: Option<&str>,
    jsonl: Option<&[Prompt]>,
    first: u64,
    n: u64,
) -> Result<Vec<Ready>, String> {
    let spec = BodySpec {
        api,
        model,
        max_tokens: cfg.max_tokens,
        ignore_eos: cfg.ignore_eos,
    };
    let prompts: Vec<Prompt> = match (jsonl, &cfg.prompts) {
        (Some(p), _) if !p.is_empty() => (first..first + n)
            .map(|i| p[(i % p.len() as u64) as usize].clone())
            .collect(),
        (_, PromptSource::Synthetic { input_tokens }) => {
            synthetic(first, n as usize, *input_tokens, cfg.seed)
        }
        (_, PromptSource::Jsonl(path)) => {
            return Err(format!("no prompts read from \"{}\"", path.display()))
        }
    };
    prompts
        .iter()
        .map(|p| {
            let b = body(&spec, p)?;
            let prepared = infermon_reqmeter::prepare(api, &b);
            Ok(Ready {
                body: Bytes::from(b),
                prepared,
            })
        })
        .collect()
}

/// Send offsets for `n` requests at `rate` per second.
fn schedule(n: usize, rate: f64, poisson: bool, seed: u64) -> Vec<Duration> {
    let mut rng = Rng::new(seed);
    let mut t = 0.0f64;
    (0..n)
        .map(|i| {
            if i > 0 {
                t += if poisson {
                    rng.exponential(1.0 / rate)
                } else {
                    1.0 / rate
                };
            }
            Duration::from_secs_f64(t)
        })
        .collect()
}

/// Memory-bandwidth utilisation from the model size, mean TPOT and the device's peak.
fn bandwidth(sys: &SystemInfo, tpot: Option<&Summary>) -> Option<Bandwidth> {
    let tpot = tpot.map(|s| s.mean).filter(|t| *t > 0.0)?;
    let steps = 1000.0 / tpot;
    let achieved = sys.model_size_bytes.map(|b| b as f64 * steps);
    let peak = sys.peak_bandwidth_gb_s.map(|g| g * 1e9);
    Some(Bandwidth {
        model_size_bytes: sys.model_size_bytes,
        steps_per_second: Some(steps),
        achieved_bytes_per_second: achieved,
        peak_bytes_per_second: peak,
        utilization_ratio: match (achieved, peak) {
            (Some(a), Some(p)) if p > 0.0 => Some(a / p),
            _ => None,
        },
        peak_source: sys.peak_bandwidth_source.clone(),
    })
}

/// The node facts that need no sampling (`--no-hardware`).
fn static_system(h: &crate::run::HwConfig) -> SystemInfo {
    let (peak, source) = crate::bandwidth::peak(h.peak_bandwidth_gb_s, &[]);
    let mut info = SystemInfo {
        model_path: h.model_file.as_ref().map(|p| p.display().to_string()),
        model_size_bytes: h.model_size_bytes,
        peak_bandwidth_gb_s: peak,
        peak_bandwidth_source: source,
        ..SystemInfo::default()
    };
    if let (None, Some(p)) = (info.model_size_bytes, &h.model_file) {
        match std::fs::metadata(p) {
            Ok(m) => info.model_size_bytes = Some(m.len()),
            Err(e) => info
                .unavailable
                .push(format!("model size: cannot read \"{}\" ({e})", p.display())),
        }
    }
    info
}

/// Runs the benchmark; never panics, always returns what completed.
pub async fn run(cfg: &RunConfig, progress: &dyn Progress) -> RunReport {
    let plan = plans(&cfg.profile);
    let mut rep = RunReport {
        started_unix_ms: now_ms(),
        settings: settings_of(cfg),
        target: Target {
            url: cfg.url.clone(),
            model: cfg.model.clone(),
            ..Target::default()
        },
        ..RunReport::default()
    };
    let planned = cfg.requests * plan.len() as u64;
    let mut stop = cfg.stop.clone();
    let prepared = match prepare(cfg, &mut rep, progress).await {
        Ok(p) => p,
        Err(msg) => return finish(rep, Vec::new(), Some(msg), planned, 0.0, &cfg.slo),
    };
    let (ep, client) = (&prepared.ep, &prepared.client);
    let jsonl = prepared.jsonl.as_deref();
    let model = prepared.model.as_deref();
    let mut all: Vec<RequestRecord> = Vec::new();
    let mut not_sent = 0u64;
    let mut duration = 0.0;
    let mut aborted = None;

    if cfg.warmup > 0 {
        progress.stage("warm-up", cfg.warmup);
        let w = match readies(cfg, ep.api, model, jsonl, 0, cfg.warmup) {
            Ok(w) => w,
            Err(msg) => return finish(rep, all, Some(msg), planned, 0.0, &cfg.slo),
        };
        let d = drive(
            client,
            Arc::new(w),
            1,
            None,
            &mut stop,
            cfg.timeout,
            progress,
        )
        .await;
        let ok: Vec<&RequestRecord> = d
            .measured
            .iter()
            .map(|m| &m.record)
            .filter(|r| r.outcome == Outcome::Ok)
            .collect();
        rep.warmup = Warmup {
            requests: d.measured.len() as u64,
            completed: ok.len() as u64,
            completion_tokens: ok.iter().filter_map(|r| r.completion_tokens).sum(),
        };
        if d.aborted.as_deref() == Some("interrupted") {
            return finish(rep, all, d.aborted, planned, 0.0, &cfg.slo);
        }
    }

    let mut hw = hardware(cfg, &prepared, &mut rep, progress).await;
    let mut first = cfg.warmup;
    for (ci, p) in plan.iter().enumerate() {
        if aborted.is_some() {
            not_sent += cfg.requests;
            continue;
        }
        progress.stage(&p.label, cfg.requests);
        let reqs = match readies(cfg, ep.api, model, jsonl, first, cfg.requests) {
            Ok(r) => r,
            Err(msg) => {
                aborted = Some(msg);
                not_sent += cfg.requests;
                continue;
            }
        };
        first += cfg.requests;
        let sched = p.rate.map(|r| {
            schedule(
                reqs.len(),
                r,
                p.arrivals == Some("poisson"),
                cfg.seed ^ (ci as u64 + 1),
            )
        });
        let limit = p.concurrency.map_or(reqs.len(), |c| c as usize);
        let started_unix_ms = now_ms();
        let sampling = match hw.as_mut() {
            Some(h) => h.begin().await,
            None => None,
        };
        let d = drive(
            client,
            Arc::new(reqs),
            limit,
            sched.as_deref(),
            &mut stop,
            cfg.timeout,
            progress,
        )
        .await;
        let records: Vec<&RequestRecord> = d.measured.iter().map(|m| &m.record).collect();
        let secs = d.duration.as_secs_f64();
        let figs = figures(&records, secs, d.not_sent, &cfg.slo);
        let hardware = match (hw.as_mut(), sampling) {
            (Some(h), Some(s)) => Some(
                h.end(
                    s,
                    figs.completion_tokens_total,
                    figs.output_tokens_per_second,
                )
                .await,
            ),
            _ => None,
        };
        if let Some(l) = d.lag_ms.filter(|l| l.p99 > 10.0) {
            progress.note(&format!(
                "{}: requests left up to {:.0} ms late (p99) against their schedule: the client could not keep this rate (try --client-threads)",
                p.label, l.p99
            ));
        }
        let cr = ConfigReport {
            label: p.label.clone(),
            profile: p.profile.into(),
            concurrency: p.concurrency,
            rate_rps: p.rate,
            arrivals: p.arrivals.map(str::to_string),
            started_unix_ms,
            memory_bandwidth: bandwidth(&rep.system, figs.tpot_ms.as_ref()),
            schedule_lag_ms: d.lag_ms,
            figures: figs,
            hardware,
            requests: d.measured.iter().map(|m| sample(m, d.start)).collect(),
        };
        progress.stage_done(&cr);
        rep.configs.push(cr);
        not_sent += d.not_sent;
        duration += secs;
        all.extend(d.measured.into_iter().map(|m| m.record));
        aborted = d.aborted;
    }
    finish(rep, all, aborted, not_sent, duration, &cfg.slo)
}

/// What a run needs before its first request.
struct Prepared {
    ep: Endpoint,
    client: Arc<Client>,
    jsonl: Option<Vec<Prompt>>,
    model: Option<String>,
    /// Whether the server answered before the run.
    reachable: bool,
}

async fn prepare(
    cfg: &RunConfig,
    rep: &mut RunReport,
    progress: &dyn Progress,
) -> Result<Prepared, String> {
    let ep = target::endpoint(&cfg.url, cfg.api)?;
    rep.target.endpoint = ep.url.clone();
    rep.target.api = ep.api.as_str().to_string();
    let pool = match &cfg.profile {
        Profile::Sync => 1,
        Profile::Concurrency(l) => l.iter().copied().max().unwrap_or(1) as usize,
        Profile::Rate {
            max_concurrency, ..
        } => max_concurrency.map_or(cfg.requests as usize, |c| c as usize),
    };
    let client = Arc::new(Client::new(
        &ep.url,
        ep.api,
        &cfg.headers,
        cfg.timeout,
        pool,
    )?);
    let jsonl = match &cfg.prompts {
        PromptSource::Jsonl(p) => Some(load_jsonl(p)?),
        PromptSource::Synthetic { .. } => None,
    };
    let reachable = match client.get(&format!("{}/v1/models", ep.base)).await {
        Ok(_) => true,
        Err(e) => {
            progress.note(&e);
            false
        }
    };
    let model = match (&cfg.model, reachable) {
        (Some(m), _) => Some(m.clone()),
        (None, true) => target::model(&client, &ep).await?,
        (None, false) if matches!(ep.api, Api::OllamaChat | Api::OllamaGenerate) => {
            return Err(format!(
                "Ollama needs a model: give --model NAME (and {} did not answer)",
                ep.base
            ))
        }
        (None, false) => None,
    };
    rep.target.model = model.clone();
    Ok(Prepared {
        ep,
        client,
        jsonl,
        model,
        reachable,
    })
}

/// Sets up node sampling (after the warm-up, so that a model a router loads on demand is
/// running by then). Behind llama-swap, the llama-server of the model is polled directly at
/// its own address (read from `/running`, only once the model is `ready`: never through
/// llama-swap's `/upstream` routes, which would load models).
async fn hardware(
    cfg: &RunConfig,
    p: &Prepared,
    rep: &mut RunReport,
    progress: &dyn Progress,
) -> Option<Hw> {
    let h = &cfg.hardware;
    if !h.enabled {
        rep.system = static_system(h);
        return None;
    }
    let mut kind = match (&h.engine_kind, p.reachable) {
        (Some(k), _) => k.clone(),
        (None, true) => target::engine_kind(&p.client, &p.ep).await.to_string(),
        (None, false) => "llamacpp".to_string(),
    };
    let mut base = p.ep.base.clone();
    let mut notes = Vec::new();
    if kind == "llama_swap" {
        match target::llama_swap_upstream(&p.client, &p.ep.base, p.model.as_deref()).await {
            Ok(up) => {
                kind = "llamacpp".to_string();
                base = up;
            }
            Err(why) => notes.push(format!(
                "engine behind llama-swap not polled ({why}); llama-swap itself is"
            )),
        }
    }
    match Hw::new(&kind, &base, h.discovery, h.interval, h.pue) {
        Ok(mut sampler) => {
            rep.system = sampler
                .system(
                    h.peak_bandwidth_gb_s,
                    h.model_file.as_deref(),
                    h.model_size_bytes,
                )
                .await;
            rep.system.engine_kind = Some(kind);
            rep.system.engine_url = Some(base);
            rep.system.unavailable.extend(notes);
            Some(sampler)
        }
        Err(msg) => {
            progress.note(&msg);
            rep.system = static_system(h);
            rep.system.unavailable.extend(notes);
            rep.system.unavailable.push(msg);
            None
        }
    }
}

fn finish(
    mut rep: RunReport,
    all: Vec<RequestRecord>,
    aborted: Option<String>,
    not_sent: u64,
    duration: f64,
    slo: &Slo,
) -> RunReport {
    let refs: Vec<&RequestRecord> = all.iter().collect();
    rep.totals = figures(&refs, duration, not_sent, slo);
    rep.status = if aborted.is_some()
        || rep.totals.requests_failed > 0
        || rep.totals.requests_not_sent > 0
    {
        RunStatus::Partial
    } else {
        RunStatus::Complete
    };
    rep.aborted = aborted;
    rep.finished_unix_ms = now_ms();
    rep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_make_configurations() {
        assert_eq!(plans(&Profile::Sync)[0].label, "sync");
        let c = plans(&Profile::Concurrency(vec![1, 4]));
        assert_eq!(c[1].label, "concurrency=4");
        assert_eq!(c[1].concurrency, Some(4));
        let r = plans(&Profile::Rate {
            rates: vec![Some(2.0), None],
            poisson: true,
            max_concurrency: Some(8),
        });
        assert_eq!(r[0].label, "rate=2/s poisson");
        assert_eq!(r[1].label, "rate=inf");
        assert_eq!(r[1].arrivals, None);
    }

    #[test]
    fn schedules_are_seeded_and_paced() {
        let c = schedule(5, 2.0, false, 0);
        assert_eq!(c[4], Duration::from_secs(2));
        let p = schedule(2000, 10.0, true, 3);
        assert_eq!(p, schedule(2000, 10.0, true, 3));
        let span = p[1999].as_secs_f64();
        assert!((span - 199.9).abs() < 15.0, "{span}");
    }

    #[test]
    fn bandwidth_is_size_times_steps_over_peak() {
        let sys = SystemInfo {
            model_size_bytes: Some(4_000_000_000),
            peak_bandwidth_gb_s: Some(1000.0),
            peak_bandwidth_source: "flag".into(),
            ..SystemInfo::default()
        };
        let s = Summary::of(&[10.0]);
        let b = bandwidth(&sys, s.as_ref()).unwrap_or_default();
        assert_eq!(b.steps_per_second, Some(100.0));
        assert_eq!(b.achieved_bytes_per_second, Some(4e11));
        assert_eq!(b.utilization_ratio, Some(0.4));
        let unknown = SystemInfo::default();
        let b = bandwidth(&unknown, s.as_ref()).unwrap_or_default();
        assert_eq!(
            (b.achieved_bytes_per_second, b.utilization_ratio),
            (None, None)
        );
    }
}
