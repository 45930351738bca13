//! llama.cpp `llama-server`: `/health`, `/props`, `/metrics` (needs `--metrics`), `/slots`.

use std::time::Duration;

use infermon_model::raw::{
    EngineCounters, EngineHealth, EngineKind, EngineProps, EngineRaw, Reading, SlotsRaw,
};
use serde_json::Value;

use crate::http::{ok_status, EngineHttp, Fetched};

/// Polls one llama-server.
#[derive(Debug, Clone)]
pub struct LlamaCpp {
    origin: String,
    pid: Option<u32>,
    http: EngineHttp,
}

impl LlamaCpp {
    /// A collector for the server at `base` (e.g. `http://127.0.0.1:8080`); every request is
    /// bounded by `timeout`.
    pub fn new(base: &str, origin: &str, pid: Option<u32>, timeout: Duration) -> Self {
        LlamaCpp {
            origin: origin.to_string(),
            pid,
            http: EngineHttp::new(base, timeout),
        }
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        self.http.base()
    }

    async fn get(&self, path: &str) -> Fetched {
        self.http.get(path).await
    }

    /// Reads every endpoint concurrently.
    pub async fn read(&self) -> EngineRaw {
        let (health, props, metrics, slots) = tokio::join!(
            self.get("/health"),
            self.get("/props"),
            self.get("/metrics"),
            self.get("/slots"),
        );
        let url = |p: &str| self.http.url(p);
        EngineRaw {
            kind: EngineKind::Llamacpp,
            instance: self.http.base().to_string(),
            origin: self.origin.clone(),
            pid: self.pid,
            health: Reading::from_result(health.map(|(s, _, b)| parse_health(s, &b))),
            props: Reading::from_result(
                props.and_then(|(s, _, b)| ok_status(&url("/props"), s, &b).and(parse_props(&b))),
            ),
            metrics: Reading::from_result(metrics.and_then(|(s, start, b)| {
                if s == 501 {
                    return Err(format!(
                        "{} answered 501: the server was started without --metrics",
                        url("/metrics")
                    ));
                }
                ok_status(&url("/metrics"), s, &b)?;
                parse_metrics(&b, start.as_deref()).map_err(|e| format!("{}: {e}", url("/metrics")))
            })),
            slots: Reading::from_result(slots.and_then(|(s, _, b)| {
                if s == 501 {
                    return Err(format!(
                        "{} answered 501: slots endpoint disabled (--no-slots)",
                        url("/slots")
                    ));
                }
                ok_status(&url("/slots"), s, &b)?;
                parse_slots(&b).map_err(|e| format!("{}: {e}", url("/slots")))
            })),
            memory: None,
            histograms: Vec::new(),
            scheduler: Vec::new(),
            models: None,
            events: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// `/health`: 200 `{"status":"ok"}`, or 503 with `error.message` (e.g. "Loading model").
pub fn parse_health(status: u16, body: &str) -> EngineHealth {
    let word = match serde_json::from_str::<Value>(body) {
        Ok(v) => v
            .get("status")
            .and_then(Value::as_str)
            .or_else(|| v.pointer("/error/message").and_then(Value::as_str))
            .map(str::to_lowercase)
            .unwrap_or_else(|| format!("http {status} without a status field")),
        Err(_) => format!(
            "http {status} with a body that is not llama-server's health JSON: \"{}\"",
            head(body)
        ),
    };
    EngineHealth {
        http_status: status,
        status: word,
    }
}

/// `/props`: model path, context, slots, build.
pub fn parse_props(body: &str) -> Result<EngineProps, String> {
    let v: Value = serde_json::from_str(body)
        .map_err(|e| format!("/props is not JSON ({e}): \"{}\"", head(body)))?;
    let model_path = v
        .get("model_path")
        .and_then(Value::as_str)
        .map(str::to_string);
    let alias = v.get("model_alias").and_then(Value::as_str);
    // Without --alias, llama-server reports the model path as the alias.
    let model = alias
        .filter(|a| !a.is_empty())
        .map(model_name_from_path)
        .or_else(|| model_path.as_deref().map(model_name_from_path))
        .unwrap_or_else(|| "unknown".to_string());
    Ok(EngineProps {
        model,
        model_path,
        n_ctx: v
            .pointer("/default_generation_settings/n_ctx")
            .and_then(Value::as_u64),
        total_slots: v.get("total_slots").and_then(Value::as_u64),
        build_info: v
            .get("build_info")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// File stem of a model path: `/m/SmolLM2-135M-Instruct.Q4_1.gguf` → `SmolLM2-135M-Instruct.Q4_1`.
pub fn model_name_from_path(path: &str) -> String {
    let file = path.rsplit(['/', '\\']).next().unwrap_or(path);
    file.strip_suffix(".gguf").unwrap_or(file).to_string()
}

/// `/metrics` text → counters. Requires the two token counters; the rest is optional.
pub fn parse_metrics(body: &str, process_start: Option<&str>) -> Result<EngineCounters, String> {
    let exp = infermon_promtext::parse(body).map_err(|e| e.to_string())?;
    let need = |name: &str| {
        exp.get(name)
            .ok_or_else(|| format!("no \"{name}\" in the metrics (is this a llama-server?)"))
    };
    let process_start_unix = match process_start {
        None => None,
        Some(s) => Some(s.trim().parse::<i64>().map_err(|_| {
            format!("header Process-Start-Time-Unix is \"{s}\": expected an integer")
        })?),
    };
    Ok(EngineCounters {
        prompt_tokens_total: need("llamacpp:prompt_tokens_total")?,
        prompt_seconds_total: exp.get("llamacpp:prompt_seconds_total"),
        generation_tokens_total: need("llamacpp:tokens_predicted_total")?,
        generation_seconds_total: exp.get("llamacpp:tokens_predicted_seconds_total"),
        decode_calls_total: exp.get("llamacpp:n_decode_total"),
        generation_window_rate: exp.get("llamacpp:predicted_tokens_seconds"),
        prompt_window_rate: exp.get("llamacpp:prompt_tokens_seconds"),
        requests_running: exp.get("llamacpp:requests_processing"),
        requests_waiting: exp.get("llamacpp:requests_deferred"),
        process_start_unix,
    })
}

/// `/slots` JSON array → busy/total and tokens decoded by busy slots.
pub fn parse_slots(body: &str) -> Result<SlotsRaw, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): \"{}\"", head(body)))?;
    let arr = v
        .as_array()
        .ok_or_else(|| format!("expected a JSON array of slots, got \"{}\"", head(body)))?;
    let mut s = SlotsRaw {
        total: 0,
        processing: 0,
        decoded_in_flight: 0,
    };
    for slot in arr {
        s.total += 1;
        if slot.get("is_processing").and_then(Value::as_bool) == Some(true) {
            s.processing += 1;
            s.decoded_in_flight += slot
                .pointer("/next_token/n_decoded")
                .and_then(Value::as_u64)
                .unwrap_or(0);
        }
    }
    Ok(s)
}

fn head(body: &str) -> String {
    body.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = include_str!("../tests/fixtures/llamacpp_01_current_default.prom");

    #[test]
    fn metrics_fixture() {
        let c = parse_metrics(METRICS, Some("1763000000")).unwrap();
        assert_eq!(c.generation_tokens_total, 9127.0);
        assert_eq!(c.prompt_tokens_total, 18342.0);
        assert_eq!(c.generation_seconds_total, Some(187.554));
        assert_eq!(c.requests_running, Some(2.0));
        assert_eq!(c.requests_waiting, Some(0.0));
        assert_eq!(c.process_start_unix, Some(1_763_000_000));
    }

    #[test]
    fn metrics_html_is_an_error() {
        let e = parse_metrics("<!DOCTYPE html><html><body>hi</body></html>", None).unwrap_err();
        assert!(e.to_lowercase().contains("html"), "{e}");
    }

    #[test]
    fn metrics_without_llamacpp_names() {
        let e = parse_metrics("foo 1\n", None).unwrap_err();
        assert!(e.contains("llamacpp:prompt_tokens_total"), "{e}");
    }

    #[test]
    fn bad_start_header() {
        let e = parse_metrics(METRICS, Some("soon")).unwrap_err();
        assert!(e.contains("\"soon\""), "{e}");
    }

    #[test]
    fn props_and_health_and_slots() {
        let p = parse_props(
            r#"{"model_path":"/x/SmolLM2-135M-Instruct.Q4_1.gguf","total_slots":4,
                "default_generation_settings":{"n_ctx":8192},"build_info":"b1-abc"}"#,
        )
        .unwrap();
        assert_eq!(p.model, "SmolLM2-135M-Instruct.Q4_1");
        assert_eq!(p.n_ctx, Some(8192));
        assert_eq!(p.total_slots, Some(4));
        let h = parse_health(
            503,
            r#"{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}"#,
        );
        assert_eq!(h.status, "loading model");
        assert_eq!(parse_health(200, r#"{"status":"ok"}"#).status, "ok");
        assert!(parse_health(200, "<html>login</html>")
            .status
            .contains("not llama-server's"));
        let s = parse_slots(
            r#"[{"id":0,"is_processing":true,"next_token":{"n_decoded":17}},
                {"id":1,"is_processing":false}]"#,
        )
        .unwrap();
        assert_eq!((s.total, s.processing, s.decoded_in_flight), (2, 1, 17));
        assert!(parse_slots("<html>").is_err());
        assert!(parse_props("nope").unwrap_err().contains("not JSON"));
    }
}
