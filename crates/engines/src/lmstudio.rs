//! LM Studio's server: `/api/v0/models` (REST API v0, LM Studio ≥ 0.3.6) lists every downloaded
//! model with `state` `loaded` / `not-loaded`, its type, quantization and context lengths.
//!
//! LM Studio has no token counters or Prometheus endpoint: its per-response `stats` arrive with
//! each response, so they can only be seen by infermon's proxy. `metrics` stays unavailable.

use std::time::Duration;

use infermon_model::detail::ModelRaw;
use infermon_model::raw::{EngineHealth, EngineKind, EngineProps, EngineRaw, Reading};
use serde_json::Value;

use crate::http::EngineHttp;
use crate::ollama::{checked, joined_names, NO_PROXY_NOTE};

/// Why `metrics` is unavailable for LM Studio.
pub const NO_COUNTERS_REASON: &str = "lm studio exposes no token counters; its per-response \
     stats come with each response, so request metrics come from infermon's proxy";

const MODELS: &str = "/api/v0/models";

/// Polls one LM Studio server.
#[derive(Debug, Clone)]
pub struct LmStudio {
    origin: String,
    http: EngineHttp,
}

impl LmStudio {
    /// A collector for the server at `base` (e.g. `http://127.0.0.1:1234`); every request is
    /// bounded by `timeout`.
    pub fn new(base: &str, origin: &str, timeout: Duration) -> Self {
        LmStudio {
            origin: origin.to_string(),
            http: EngineHttp::new(base, timeout),
        }
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        self.http.base()
    }

    /// Reads `/api/v0/models`: health, loaded models and the model list all come from it.
    pub async fn read(&self) -> EngineRaw {
        let mut raw = EngineRaw::blank(EngineKind::LmStudio, self.base(), &self.origin, "not read");
        raw.slots = Reading::unavailable("lm studio has no slots endpoint");
        raw.metrics = Reading::unavailable(NO_COUNTERS_REASON);
        raw.notes.push(NO_PROXY_NOTE.to_string());
        let fetched = self.http.get(MODELS).await;
        raw.health =
            Reading::from_result(fetched.clone().map(|(s, _, b)| health_from_models(s, &b)));
        let models = checked(&self.http, MODELS, fetched, parse_models);
        raw.props = match &models {
            Ok(list) => Reading::ok(EngineProps {
                model: joined_names(
                    list.iter()
                        .filter(|m| m.state == "loaded")
                        .map(|m| m.name.as_str()),
                ),
                model_path: None,
                n_ctx: None,
                total_slots: None,
                build_info: None,
            }),
            Err(e) => Reading::unavailable(e.clone()),
        };
        raw.models = Some(Reading::from_result(models));
        raw
    }
}

/// Health from the model list: a 200 answer with LM Studio's list JSON is `ok`.
pub fn health_from_models(status: u16, body: &str) -> EngineHealth {
    let word = match (status, parse_models(body)) {
        (200, Ok(_)) => "ok".to_string(),
        (200, Err(e)) => format!("http 200 but {MODELS}: {e}"),
        (s, _) => format!("http {s}: \"{}\"", head(body)),
    };
    EngineHealth {
        http_status: status,
        status: word,
    }
}

/// `/api/v0/models` body → language models (`llm`, `vlm`; embedding models are left out).
///
/// `context_length` is `loaded_context_length`, which LM Studio gives only for loaded models;
/// `max_context_length` (what the model could be loaded with) is not a loaded context.
pub fn parse_models(body: &str) -> Result<Vec<ModelRaw>, String> {
    let v: Value =
        serde_json::from_str(body).map_err(|e| format!("not JSON ({e}): \"{}\"", head(body)))?;
    let list = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("no \"data\" array: \"{}\"", head(body)))?;
    let mut out = Vec::new();
    for m in list {
        let text = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
        if !matches!(text("type").as_deref(), None | Some("llm") | Some("vlm")) {
            continue;
        }
        let name = text("id")
            .ok_or_else(|| format!("a model without \"id\": {}", head(&m.to_string())))?;
        out.push(ModelRaw {
            state: text("state").unwrap_or_else(|| "unknown".to_string()),
            size_bytes: None,
            vram_bytes: None,
            context_length: m.get("loaded_context_length").and_then(Value::as_u64),
            expires_unix_ms: None,
            quantization: text("quantization").filter(|q| !q.is_empty()),
            parameter_size: None,
            upstream: None,
            name,
        });
    }
    Ok(out)
}

fn head(body: &str) -> String {
    body.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_words() {
        assert_eq!(
            health_from_models(200, r#"{"object":"list","data":[]}"#).status,
            "ok"
        );
        let h = health_from_models(200, "<!DOCTYPE html><html>");
        assert!(
            h.status
                .starts_with("http 200 but /api/v0/models: not JSON"),
            "{}",
            h.status
        );
        assert_eq!(
            health_from_models(404, "Not Found").status,
            "http 404: \"Not Found\""
        );
        assert!(parse_models(r#"{"object":"list"}"#)
            .unwrap_err()
            .contains("\"data\""));
    }
}
