//! vLLM (V1 engine): `/health`, `/v1/models`, `/version`, `/metrics`.
//!
//! Metrics carry `model_name` and `engine` (the engine core under data parallelism) labels;
//! series are kept apart by model and summed over engines. Names vLLM renamed are read newest
//! first: `kv_cache_usage_perc` before `gpu_cache_usage_perc`, `prefix_cache_*` before
//! `gpu_prefix_cache_*`, `inter_token_latency_seconds` before `time_per_output_token_seconds`
//! (the old name of the same inter-token histogram).

use std::time::Duration;

use infermon_model::detail::{LatencyMetric, SchedulerRaw};
use infermon_model::raw::{
    EngineCounters, EngineHealth, EngineKind, EngineProps, EngineRaw, Reading,
};
use infermon_promtext::Sample;
use serde_json::Value;

use crate::http::{ok_status, EngineHttp};
use crate::promhist::{process_start, EngineMetrics, SchedulerBuilder, Series};

/// Latency histogram families, newest name first.
const HISTOGRAMS: [(LatencyMetric, &[&str]); 8] = [
    (LatencyMetric::Ttft, &["vllm:time_to_first_token_seconds"]),
    (
        LatencyMetric::Itl,
        &[
            "vllm:inter_token_latency_seconds",
            "vllm:time_per_output_token_seconds",
        ],
    ),
    (
        LatencyMetric::Tpot,
        &["vllm:request_time_per_output_token_seconds"],
    ),
    (LatencyMetric::E2e, &["vllm:e2e_request_latency_seconds"]),
    (LatencyMetric::Queue, &["vllm:request_queue_time_seconds"]),
    (
        LatencyMetric::Prefill,
        &["vllm:request_prefill_time_seconds"],
    ),
    (LatencyMetric::Decode, &["vllm:request_decode_time_seconds"]),
    (
        LatencyMetric::Inference,
        &["vllm:request_inference_time_seconds"],
    ),
];

const PROMPT: &[&str] = &["vllm:prompt_tokens_total"];
const GENERATION: &[&str] = &["vllm:generation_tokens_total"];
const RUNNING: &[&str] = &["vllm:num_requests_running"];
const WAITING: &[&str] = &["vllm:num_requests_waiting"];

/// Polls one vLLM OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct Vllm {
    origin: String,
    http: EngineHttp,
}

impl Vllm {
    /// A collector for the server at `base` (e.g. `http://127.0.0.1:8000`); every request is
    /// bounded by `timeout`.
    pub fn new(base: &str, origin: &str, timeout: Duration) -> Self {
        Vllm {
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
        let (health, models, version, metrics) = tokio::join!(
            self.http.get("/health"),
            self.http.get_ok("/v1/models"),
            self.http.get_ok("/version"),
            self.http.get("/metrics"),
        );
        let url = |p: &str| self.http.url(p);
        let mut raw =
            EngineRaw::blank(EngineKind::Vllm, self.http.base(), &self.origin, "not read");
        raw.health = Reading::from_result(health.map(|(s, _, b)| parse_health(s, &b)));
        raw.props = Reading::from_result(models.and_then(|b| {
            let mut p = parse_models(&b).map_err(|e| format!("{}: {e}", url("/v1/models")))?;
            p.build_info = version.ok().and_then(|v| parse_version(&v));
            Ok(p)
        }));
        raw.slots = Reading::unavailable("vLLM has no slots endpoint");
        fill_metrics(&mut raw, metrics, &url("/metrics"), parse_metrics);
        raw
    }
}

/// Puts a parsed `/metrics` answer into `raw`: counters, histograms, scheduler and notes, or
/// the reason the metrics could not be read.
pub(crate) fn fill_metrics(
    raw: &mut EngineRaw,
    fetched: crate::http::Fetched,
    url: &str,
    parse: fn(&str) -> Result<EngineMetrics, String>,
) {
    let parsed = fetched.and_then(|(s, _, b)| {
        ok_status(url, s, &b)?;
        parse(&b).map_err(|e| format!("{url}: {e}"))
    });
    match parsed {
        Ok(m) => {
            raw.metrics = Reading::ok(m.counters);
            raw.histograms = m.histograms;
            raw.scheduler = m.scheduler;
            raw.notes.extend(m.notes);
        }
        Err(e) => raw.metrics = Reading::unavailable(e),
    }
}

/// `/health` of an OpenAI-compatible Python server (vLLM, SGLang): 200 with an empty body
/// is healthy (`ok`); anything else says what came back.
pub fn parse_health(status: u16, body: &str) -> EngineHealth {
    let t = body.trim();
    let word = if status == 200 && !t.starts_with('<') {
        "ok".to_string()
    } else if status == 200 {
        format!(
            "http 200 with a body that is not a health answer: \"{}\"",
            head(t)
        )
    } else if t.is_empty() {
        format!("unhealthy (http {status})")
    } else {
        format!("unhealthy (http {status}): \"{}\"", head(t))
    };
    EngineHealth {
        http_status: status,
        status: word,
    }
}

/// `/v1/models`: the served model (the first one without a `parent`, so LoRA adapters are
/// passed over), its `root` path and `max_model_len`.
pub fn parse_models(body: &str) -> Result<EngineProps, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): \"{}\"", head(body)))?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("expected {{\"data\": [models]}}, got \"{}\"", head(body)))?;
    let base = data
        .iter()
        .find(|m| m.get("parent").is_none_or(Value::is_null))
        .or_else(|| data.first())
        .ok_or_else(|| "the model list \"data\" is empty".to_string())?;
    let model = base
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("model entry without a string \"id\": {base}"))?;
    Ok(EngineProps {
        model: model.to_string(),
        model_path: base.get("root").and_then(Value::as_str).map(str::to_string),
        n_ctx: base.get("max_model_len").and_then(Value::as_u64),
        total_slots: None,
        build_info: None,
    })
}

/// `/version`: `{"version": "0.11.0"}` → `vllm 0.11.0`.
pub fn parse_version(body: &str) -> Option<String> {
    let v: Value = serde_json::from_str(body).ok()?;
    v.get("version")
        .and_then(Value::as_str)
        .map(|s| format!("vllm {s}"))
}

/// `/metrics` text → engine counters (summed over every series), per-model histograms and
/// scheduler counters. Requires the two token counters; everything else is optional.
pub fn parse_metrics(body: &str) -> Result<EngineMetrics, String> {
    let exp = infermon_promtext::parse(body).map_err(|e| e.to_string())?;
    let s = Series::new(&exp, keep_all);
    let need = |names: &[&'static str]| {
        s.total(names).ok_or_else(|| {
            format!(
                "no \"{}\" in the metrics (is this a vLLM server?)",
                names[0]
            )
        })
    };
    let counters = EngineCounters {
        prompt_tokens_total: need(PROMPT)?,
        prompt_seconds_total: None,
        generation_tokens_total: need(GENERATION)?,
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

fn keep_all(_: &Sample) -> bool {
    true
}

fn scheduler(s: &Series<'_>) -> Vec<SchedulerRaw> {
    let mut b = SchedulerBuilder::default();
    b.set(s.sum_by_model(PROMPT), |x| &mut x.prompt_tokens_total);
    b.set(s.sum_by_model(GENERATION), |x| {
        &mut x.generation_tokens_total
    });
    b.set(s.sum_by_model(RUNNING), |x| &mut x.requests_running);
    b.set(s.sum_by_model(WAITING), |x| &mut x.requests_waiting);
    // A fraction per engine core: averaged over cores, not summed.
    b.set(
        s.mean_by_model(&["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]),
        |x| &mut x.kv_usage_ratio,
    );
    b.set(
        s.sum_by_model(&[
            "vllm:prefix_cache_queries_total",
            "vllm:gpu_prefix_cache_queries_total",
        ]),
        |x| &mut x.prefix_cache_queries_total,
    );
    b.set(
        s.sum_by_model(&[
            "vllm:prefix_cache_hits_total",
            "vllm:gpu_prefix_cache_hits_total",
        ]),
        |x| &mut x.prefix_cache_hits_total,
    );
    b.set(s.sum_by_model(&["vllm:num_preemptions_total"]), |x| {
        &mut x.preemptions_total
    });
    b.set(
        s.sum_by_model(&["vllm:spec_decode_num_draft_tokens_total"]),
        |x| &mut x.spec_draft_tokens_total,
    );
    b.set(
        s.sum_by_model(&["vllm:spec_decode_num_accepted_tokens_total"]),
        |x| &mut x.spec_accepted_tokens_total,
    );
    b.set(s.sum_by_model(&["vllm:request_success_total"]), |x| {
        &mut x.requests_finished_total
    });
    b.finish()
}

pub(crate) fn head(body: &str) -> String {
    body.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_words() {
        assert_eq!(parse_health(200, "").status, "ok");
        assert_eq!(parse_health(503, "").status, "unhealthy (http 503)");
        assert!(parse_health(200, "<html>login</html>")
            .status
            .contains("not a health answer"));
    }

    #[test]
    fn models_skip_lora_adapters() {
        let p = parse_models(
            r#"{"object":"list","data":[
                {"id":"sql-lora","root":"/adapters/sql","parent":"Qwen/Qwen3-8B"},
                {"id":"Qwen/Qwen3-8B","root":"/models/qwen3","parent":null,"max_model_len":32768}]}"#,
        )
        .unwrap();
        assert_eq!(p.model, "Qwen/Qwen3-8B");
        assert_eq!(p.model_path.as_deref(), Some("/models/qwen3"));
        assert_eq!(p.n_ctx, Some(32768));
        assert!(parse_models(r#"{"data":[]}"#)
            .unwrap_err()
            .contains("empty"));
        assert!(parse_models("<html>").unwrap_err().contains("not JSON"));
        assert_eq!(
            parse_version(r#"{"version":"0.11.0"}"#).as_deref(),
            Some("vllm 0.11.0")
        );
    }

    #[test]
    fn metrics_need_token_counters() {
        let e = parse_metrics("vllm:num_requests_running 0\n").unwrap_err();
        assert!(e.contains("vllm:prompt_tokens_total"), "{e}");
    }
}
