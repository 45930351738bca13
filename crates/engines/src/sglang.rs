//! SGLang (`--enable-metrics`): `/health`, `/v1/models`, `/get_model_info`, `/metrics`.
//!
//! Scheduler gauges carry `model_name` plus rank labels (`tp_rank`, `dp_rank`, …); only the
//! first tensor-parallel rank (`tp_rank="0"`, or series without the label) is read, since the
//! ranks of one tensor-parallel group share one scheduler state, and the rest is summed (or,
//! for ratios, averaged) per model. The tokenizer's counters and histograms are created on the
//! first request: a live SGLang exposition without a token counter has not served a request
//! yet, so the counter is 0 there; a body with no `sglang:` series at all is an error.

use std::collections::BTreeMap;
use std::time::Duration;

use infermon_model::detail::{LatencyMetric, SchedulerRaw};
use infermon_model::raw::{EngineCounters, EngineKind, EngineProps, EngineRaw, Reading};
use infermon_promtext::Sample;
use serde_json::Value;

use crate::http::EngineHttp;
use crate::promhist::{process_start, EngineMetrics, SchedulerBuilder, Series};
use crate::vllm::{fill_metrics, head, parse_health, parse_models};

/// Latency histogram families. `time_per_output_token_seconds` (older releases) is a running
/// per-request `(now − first token) ÷ (tokens − 1)`, so it is read as TPOT, apart from the
/// inter-token histogram.
const HISTOGRAMS: [(LatencyMetric, &[&str]); 5] = [
    (LatencyMetric::Ttft, &["sglang:time_to_first_token_seconds"]),
    (LatencyMetric::Itl, &["sglang:inter_token_latency_seconds"]),
    (
        LatencyMetric::Tpot,
        &["sglang:time_per_output_token_seconds"],
    ),
    (LatencyMetric::E2e, &["sglang:e2e_request_latency_seconds"]),
    (LatencyMetric::Queue, &["sglang:queue_time_seconds"]),
];

const PROMPT: &[&str] = &["sglang:prompt_tokens_total"];
const GENERATION: &[&str] = &["sglang:generation_tokens_total"];
const CACHED: &[&str] = &["sglang:cached_tokens_total"];
const RUNNING: &[&str] = &["sglang:num_running_reqs"];
const WAITING: &[&str] = &["sglang:num_queue_reqs"];

/// Polls one SGLang server.
#[derive(Debug, Clone)]
pub struct Sglang {
    origin: String,
    http: EngineHttp,
}

impl Sglang {
    /// A collector for the server at `base` (e.g. `http://127.0.0.1:30000`); every request is
    /// bounded by `timeout`.
    pub fn new(base: &str, origin: &str, timeout: Duration) -> Self {
        Sglang {
            origin: origin.to_string(),
            http: EngineHttp::new(base, timeout),
        }
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        self.http.base()
    }

    /// Reads every endpoint concurrently; each one that fails is an `Unavailable` reading
    /// naming its URL.
    pub async fn read(&self) -> EngineRaw {
        let (health, models, info, metrics) = tokio::join!(
            self.http.get("/health"),
            self.http.get_ok("/v1/models"),
            self.http.get_ok("/get_model_info"),
            self.http.get("/metrics"),
        );
        let url = |p: &str| self.http.url(p);
        let mut raw = EngineRaw::blank(
            EngineKind::Sglang,
            self.http.base(),
            &self.origin,
            "not read",
        );
        raw.health = Reading::from_result(health.map(|(s, _, b)| parse_health(s, &b)));
        let models = models
            .and_then(|b| parse_models(&b).map_err(|e| format!("{}: {e}", url("/v1/models"))));
        let info = info.and_then(|b| {
            parse_model_info(&b).map_err(|e| format!("{}: {e}", url("/get_model_info")))
        });
        raw.props = Reading::from_result(merge_props(models, info));
        raw.slots = Reading::unavailable("SGLang has no slots endpoint");
        fill_metrics(&mut raw, metrics, &url("/metrics"), parse_metrics);
        raw
    }
}

/// `/get_model_info`: the `model_path` the server loaded.
pub fn parse_model_info(body: &str) -> Result<String, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): \"{}\"", head(body)))?;
    v.get("model_path")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("expected a string \"model_path\", got \"{}\"", head(body)))
}

/// The served name and context from `/v1/models`, the path from `/get_model_info`; either
/// alone will do (the served name defaults to the model path).
pub fn merge_props(
    models: Result<EngineProps, String>,
    info: Result<String, String>,
) -> Result<EngineProps, String> {
    match (models, info) {
        (Ok(mut p), info) => {
            if let Ok(path) = info {
                p.model_path = Some(path);
            }
            Ok(p)
        }
        (Err(_), Ok(path)) => Ok(EngineProps {
            model: path.clone(),
            model_path: Some(path),
            n_ctx: None,
            total_slots: None,
            build_info: None,
        }),
        (Err(a), Err(b)) => Err(format!("{a}; {b}")),
    }
}

/// `/metrics` text → engine counters (summed over every series), per-model histograms and
/// scheduler figures.
pub fn parse_metrics(body: &str) -> Result<EngineMetrics, String> {
    let exp = infermon_promtext::parse(body).map_err(|e| e.to_string())?;
    let s = Series::new(&exp, first_tp_rank);
    if !exp.samples.iter().any(|x| x.name.starts_with("sglang:")) {
        return Err(
            "no \"sglang:\" series in the metrics (is this SGLang, started with --enable-metrics?)"
                .to_string(),
        );
    }
    let counters = EngineCounters {
        prompt_tokens_total: s.total(PROMPT).unwrap_or(0.0),
        prompt_seconds_total: None,
        generation_tokens_total: s.total(GENERATION).unwrap_or(0.0),
        generation_seconds_total: None,
        decode_calls_total: None,
        generation_window_rate: None,
        prompt_window_rate: None,
        requests_running: s.total(RUNNING),
        requests_waiting: s.total(WAITING),
        process_start_unix: process_start(&exp),
    };
    let mut notes = Vec::new();
    let histograms = HISTOGRAMS
        .iter()
        .flat_map(|(metric, names)| s.histograms(names, *metric, &mut notes))
        .collect();
    Ok(EngineMetrics {
        counters,
        histograms,
        scheduler: scheduler(&s),
        notes,
    })
}

fn first_tp_rank(s: &Sample) -> bool {
    s.label("tp_rank").is_none_or(|r| r == "0")
}

fn scheduler(s: &Series<'_>) -> Vec<SchedulerRaw> {
    let mut b = SchedulerBuilder::default();
    let prompt = s.sum_by_model(PROMPT);
    let cached = s.sum_by_model(CACHED);
    // Prompt tokens looked up in the radix cache and those found there, when both counted.
    let queries: BTreeMap<String, f64> = prompt
        .iter()
        .filter(|(m, _)| cached.contains_key(*m))
        .map(|(m, v)| (m.clone(), *v))
        .collect();
    b.set(queries, |x| &mut x.prefix_cache_queries_total);
    b.set(cached, |x| &mut x.prefix_cache_hits_total);
    b.set(prompt, |x| &mut x.prompt_tokens_total);
    b.set(s.sum_by_model(GENERATION), |x| {
        &mut x.generation_tokens_total
    });
    b.set(s.sum_by_model(RUNNING), |x| &mut x.requests_running);
    b.set(s.sum_by_model(WAITING), |x| &mut x.requests_waiting);
    b.set(s.mean_by_model(&["sglang:token_usage"]), |x| {
        &mut x.kv_usage_ratio
    });
    b.set(s.mean_by_model(&["sglang:cache_hit_rate"]), |x| {
        &mut x.cache_hit_ratio
    });
    // Retraction (requests sent back to the queue when KV memory runs out) is SGLang's
    // preemption.
    b.set(
        s.sum_by_model(&["sglang:num_retracted_requests_total"]),
        |x| &mut x.preemptions_total,
    );
    b.set(spec_accept(s), |x| &mut x.spec_accept_ratio);
    b.set(s.sum_by_model(&["sglang:num_requests_total"]), |x| {
        &mut x.requests_finished_total
    });
    b.set(s.sum_by_model(&["sglang:gen_throughput"]), |x| {
        &mut x.generation_throughput_gauge
    });
    b.finish()
}

/// `spec_accept_rate` per model, left out where `spec_accept_length` is 0: SGLang reports both
/// as 0 when speculative decoding is off, and an acceptance length is at least 1 when on.
fn spec_accept(s: &Series<'_>) -> BTreeMap<String, f64> {
    let length = s.mean_by_model(&["sglang:spec_accept_length"]);
    s.mean_by_model(&["sglang:spec_accept_rate"])
        .into_iter()
        .filter(|(m, _)| length.get(m).is_none_or(|l| *l > 0.0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_from_either_endpoint() {
        let info = parse_model_info(r#"{"model_path":"/m/qwen","is_generation":true}"#);
        assert_eq!(info.as_deref(), Ok("/m/qwen"));
        let p = merge_props(Err("GET x timed out".into()), info.clone()).unwrap();
        assert_eq!((p.model.as_str(), p.n_ctx), ("/m/qwen", None));
        let models = parse_models(r#"{"data":[{"id":"qwen","max_model_len":4096}]}"#);
        let p = merge_props(models, info).unwrap();
        assert_eq!(p.model, "qwen");
        assert_eq!(p.model_path.as_deref(), Some("/m/qwen"));
        let e = merge_props(Err("a".into()), Err("b".into())).unwrap_err();
        assert_eq!(e, "a; b");
        assert!(parse_model_info("{}").unwrap_err().contains("model_path"));
    }

    #[test]
    fn not_sglang() {
        let e = parse_metrics("vllm:num_requests_running 0\n").unwrap_err();
        assert!(e.contains("--enable-metrics"), "{e}");
    }
}
