//! Inspecting (and, for usage, amending) a request body before it goes upstream.

use infermon_model::request::Api;
use serde_json::{Map, Value};

/// What a request asked for, and the body to send upstream when infermon changed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// `model` of the request, when it names one.
    pub model: Option<String>,
    /// Whether the answer will be streamed.
    pub stream: bool,
    /// Whether infermon added `stream_options.include_usage` (its usage chunk is then removed
    /// from the answer before the client sees it).
    pub usage_injected: bool,
    /// The amended body; `None` means send the original unchanged.
    pub body: Option<Vec<u8>>,
}

/// Inspects a request body of `api`. A body that is not a JSON object is sent unchanged (the
/// engine will answer it with its own error).
pub fn prepare(api: Api, body: &[u8]) -> Prepared {
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(body) else {
        return Prepared {
            model: None,
            stream: false,
            usage_injected: false,
            body: None,
        };
    };
    let model = obj.get("model").and_then(Value::as_str).map(str::to_string);
    let stream = obj
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(api.streams_by_default());
    let wants_usage = matches!(api, Api::OpenaiChat | Api::OpenaiCompletions) && stream;
    let asked = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !wants_usage || asked {
        return Prepared {
            model,
            stream,
            usage_injected: false,
            body: None,
        };
    }
    let opts = obj
        .entry("stream_options")
        .or_insert_with(|| Value::Object(Map::new()));
    if !opts.is_object() {
        *opts = Value::Object(Map::new());
    }
    if let Value::Object(o) = opts {
        o.insert("include_usage".into(), Value::Bool(true));
    }
    match serde_json::to_vec(&Value::Object(obj)) {
        Ok(b) => Prepared {
            model,
            stream,
            usage_injected: true,
            body: Some(b),
        },
        Err(_) => Prepared {
            model,
            stream,
            usage_injected: false,
            body: None,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn json(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn asks_for_usage_only_when_streaming_openai_without_it() {
        let p = prepare(
            Api::OpenaiChat,
            br#"{"model":"a","stream":true,"stream_options":{"continuous_usage_stats":false}}"#,
        );
        assert!(p.usage_injected && p.stream);
        assert_eq!(p.model.as_deref(), Some("a"));
        let b = json(&p.body.unwrap());
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["stream_options"]["continuous_usage_stats"], false);

        let p = prepare(
            Api::OpenaiChat,
            br#"{"stream":true,"stream_options":{"include_usage":true}}"#,
        );
        assert!(!p.usage_injected && p.body.is_none());
        let p = prepare(Api::OpenaiCompletions, br#"{"model":"a"}"#);
        assert!(!p.stream && !p.usage_injected && p.body.is_none());
    }

    #[test]
    fn ollama_streams_by_default_and_is_never_amended() {
        let p = prepare(Api::OllamaChat, br#"{"model":"llama3"}"#);
        assert!(p.stream && !p.usage_injected && p.body.is_none());
        let p = prepare(Api::OllamaGenerate, br#"{"model":"x","stream":false}"#);
        assert!(!p.stream);
    }

    #[test]
    fn non_json_bodies_pass_unchanged() {
        let p = prepare(Api::OpenaiChat, b"not json");
        assert_eq!(p.body, None);
        assert_eq!(p.model, None);
    }
}
