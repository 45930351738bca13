//! What one JSON object of an answer says: does it carry a token, usage, the engine's timings
//! or an error. One function per API family; no timing here.

use infermon_model::request::{Api, ServerTimings};
use serde_json::Value;

/// The facts one JSON object of an answer carries.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Facts {
    /// It carries at least one non-empty token (content, reasoning or a tool-call fragment).
    pub token: bool,
    /// Prompt tokens, from `usage` or the engine's final object.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens, from `usage` or the engine's final object.
    pub completion_tokens: Option<u64>,
    /// The engine's own timings.
    pub timings: Option<ServerTimings>,
    /// An error the engine reported inside the answer.
    pub error: Option<String>,
    /// It is an OpenAI chunk with no choices that only carries `usage`.
    pub usage_only: bool,
    /// It is an OpenAI chunk in which a choice finished (`finish_reason` set).
    pub finish: bool,
    /// It is the answer's last object: Ollama's final object (`done: true`), or the Responses
    /// API's `response.completed` / `response.incomplete` / `response.failed` event.
    pub terminal: bool,
}

fn non_empty_str(v: Option<&Value>) -> bool {
    v.and_then(Value::as_str).is_some_and(|s| !s.is_empty())
}

fn non_empty_array(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array).is_some_and(|a| !a.is_empty())
}

fn u(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

fn f(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// Reads one JSON object of an answer of `api` (a streamed chunk or a whole body).
pub(crate) fn facts(api: Api, v: &Value) -> Facts {
    let mut out = Facts {
        error: error_of(v),
        ..Facts::default()
    };
    match api {
        Api::OpenaiChat | Api::OpenaiCompletions => openai(v, &mut out),
        Api::OpenaiResponses => responses(v, &mut out),
        Api::OllamaChat | Api::OllamaGenerate => ollama(v, &mut out),
    }
    out
}

fn error_of(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    if e.is_null() {
        return None;
    }
    Some(
        e.get("message")
            .and_then(Value::as_str)
            .or_else(|| e.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| e.to_string()),
    )
}

fn openai(v: &Value, out: &mut Facts) {
    let choices = v.get("choices").and_then(Value::as_array);
    if let Some(cs) = choices {
        out.finish = cs
            .iter()
            .any(|c| c.get("finish_reason").is_some_and(|f| !f.is_null()));
        out.token = cs.iter().any(|c| {
            let d = c.get("delta").or_else(|| c.get("message"));
            non_empty_str(c.get("text"))
                || d.is_some_and(|d| {
                    non_empty_str(d.get("content"))
                        || non_empty_str(d.get("reasoning_content"))
                        || non_empty_str(d.get("reasoning"))
                        || non_empty_array(d.get("tool_calls"))
                })
        });
    }
    if let Some(usage) = v.get("usage").filter(|u| u.is_object()) {
        out.prompt_tokens = u(usage, "prompt_tokens");
        out.completion_tokens = u(usage, "completion_tokens");
        out.usage_only = choices.is_some_and(Vec::is_empty);
    }
    if let Some(t) = v.get("timings").filter(|t| t.is_object()) {
        let predicted_n = u(t, "predicted_n");
        let predicted_ms = f(t, "predicted_ms");
        out.timings = Some(ServerTimings {
            prompt_n: u(t, "prompt_n"),
            prompt_ms: f(t, "prompt_ms"),
            predicted_n,
            predicted_ms,
            predicted_per_token_ms: f(t, "predicted_per_token_ms"),
            cache_n: u(t, "cache_n"),
            load_ms: None,
            total_ms: None,
            ttft_ms: None,
        });
    }
    // LM Studio: `stats` in seconds and tokens per second.
    if let Some(st) = v.get("stats").filter(|t| t.is_object()) {
        let gen_ms = f(st, "generation_time").map(|s| s * 1000.0);
        let tps = f(st, "tokens_per_second").filter(|x| *x > 0.0);
        out.timings = Some(ServerTimings {
            predicted_ms: gen_ms,
            predicted_per_token_ms: tps.map(|x| 1000.0 / x),
            ttft_ms: f(st, "time_to_first_token").map(|s| s * 1000.0),
            predicted_n: out.completion_tokens,
            ..ServerTimings::default()
        });
    }
}

fn responses(v: &Value, out: &mut Facts) {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "response.output_text.delta"
        | "response.reasoning_text.delta"
        | "response.reasoning_summary_text.delta"
        | "response.refusal.delta"
        | "response.function_call_arguments.delta" => {
            out.token = non_empty_str(v.get("delta"));
        }
        "response.failed" | "error" => {
            out.error = out.error.take().or_else(|| {
                v.pointer("/response/error/message")
                    .or_else(|| v.get("message"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .or_else(|| Some(kind.to_string()))
            });
        }
        _ => {}
    }
    out.terminal = matches!(
        kind,
        "response.completed" | "response.incomplete" | "response.failed"
    );
    // A whole (non-streamed) response, or the `response.completed` event that wraps one.
    let resp = if kind.is_empty() {
        Some(v)
    } else {
        v.get("response")
    };
    if let Some(usage) = resp.and_then(|r| r.get("usage")).filter(|u| u.is_object()) {
        out.prompt_tokens = u(usage, "input_tokens");
        out.completion_tokens = u(usage, "output_tokens");
    }
    if kind.is_empty() {
        out.token = v
            .get("output")
            .and_then(Value::as_array)
            .is_some_and(|o| !o.is_empty());
    }
}

fn ollama(v: &Value, out: &mut Facts) {
    let msg = v.get("message");
    out.token = non_empty_str(v.get("response"))
        || non_empty_str(v.get("thinking"))
        || msg.is_some_and(|m| {
            non_empty_str(m.get("content"))
                || non_empty_str(m.get("thinking"))
                || non_empty_array(m.get("tool_calls"))
        });
    if v.get("done").and_then(Value::as_bool) == Some(true) {
        out.terminal = true;
        let ms = |key: &str| f(v, key).map(|ns| ns / 1e6);
        let eval_count = u(v, "eval_count");
        let eval_ms = ms("eval_duration");
        out.prompt_tokens = u(v, "prompt_eval_count");
        out.completion_tokens = eval_count;
        out.timings = Some(ServerTimings {
            prompt_n: u(v, "prompt_eval_count"),
            prompt_ms: ms("prompt_eval_duration"),
            predicted_n: eval_count,
            predicted_ms: eval_ms,
            predicted_per_token_ms: match (eval_ms, eval_count) {
                (Some(t), Some(n)) if n > 0 => Some(t / n as f64),
                _ => None,
            },
            cache_n: None,
            load_ms: ms("load_duration"),
            total_ms: ms("total_duration"),
            ttft_ms: None,
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn j(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn openai_tokens_are_non_empty_content_reasoning_or_tool_calls() {
        let chat = |s| facts(Api::OpenaiChat, &j(s)).token;
        assert!(!chat(
            r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#
        ));
        assert!(!chat(r#"{"choices":[{"delta":{"content":null}}]}"#));
        assert!(chat(r#"{"choices":[{"delta":{"content":"x"}}]}"#));
        assert!(chat(
            r#"{"choices":[{"delta":{"reasoning_content":"hm"}}]}"#
        ));
        assert!(chat(
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#
        ));
        assert!(facts(Api::OpenaiCompletions, &j(r#"{"choices":[{"text":"a"}]}"#)).token);
    }

    #[test]
    fn usage_only_chunk_and_llamacpp_timings() {
        let f = facts(
            Api::OpenaiChat,
            &j(
                r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9},
                "timings":{"prompt_n":5,"prompt_ms":12.5,"predicted_n":9,"predicted_ms":80.0,
                "predicted_per_token_ms":8.888,"cache_n":0}}"#,
            ),
        );
        assert!(f.usage_only && !f.token);
        assert_eq!((f.prompt_tokens, f.completion_tokens), (Some(5), Some(9)));
        let t = f.timings.unwrap();
        assert_eq!(
            (t.predicted_n, t.predicted_per_token_ms),
            (Some(9), Some(8.888))
        );
    }

    #[test]
    fn ollama_final_object_gives_counts_and_durations_in_ms() {
        let f = facts(
            Api::OllamaChat,
            &j(r#"{"message":{"role":"assistant","content":""},"done":true,
                "total_duration":5000000000,"load_duration":1000000,"prompt_eval_count":26,
                "prompt_eval_duration":130000000,"eval_count":290,"eval_duration":4000000000}"#),
        );
        assert!(!f.token);
        assert_eq!(
            (f.prompt_tokens, f.completion_tokens),
            (Some(26), Some(290))
        );
        let t = f.timings.unwrap();
        assert_eq!(t.predicted_ms, Some(4000.0));
        assert!((t.predicted_per_token_ms.unwrap() - 4000.0 / 290.0).abs() < 1e-9);
        assert_eq!((t.load_ms, t.total_ms), (Some(1.0), Some(5000.0)));
    }

    #[test]
    fn responses_api_deltas_usage_and_failures() {
        let r = |s| facts(Api::OpenaiResponses, &j(s));
        assert!(r(r#"{"type":"response.output_text.delta","delta":"Hi"}"#).token);
        assert!(!r(r#"{"type":"response.output_text.delta","delta":""}"#).token);
        let done = r(
            r#"{"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":4}}}"#,
        );
        assert_eq!(
            (done.prompt_tokens, done.completion_tokens),
            (Some(3), Some(4))
        );
        let failed = r(r#"{"type":"response.failed","response":{"error":{"message":"boom"}}}"#);
        assert_eq!(failed.error.as_deref(), Some("boom"));
    }

    #[test]
    fn lm_studio_stats() {
        let f = facts(
            Api::OpenaiChat,
            &j(
                r#"{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":3,"completion_tokens":20},
                "stats":{"tokens_per_second":50.0,"time_to_first_token":0.111,"generation_time":0.4}}"#,
            ),
        );
        let t = f.timings.unwrap();
        assert_eq!(t.predicted_per_token_ms, Some(20.0));
        assert_eq!(t.predicted_ms, Some(400.0));
        assert_eq!(t.ttft_ms, Some(111.0));
        assert_eq!(t.predicted_n, Some(20));
        assert_eq!(
            Api::from_path("/api/v0/chat/completions"),
            Some(Api::OpenaiChat)
        );
    }

    #[test]
    fn errors_inside_streams_are_seen() {
        let f = facts(
            Api::OpenaiChat,
            &j(r#"{"error":{"message":"context too long","code":400}}"#),
        );
        assert_eq!(f.error.as_deref(), Some("context too long"));
        assert_eq!(
            facts(Api::OllamaChat, &j(r#"{"error":"model not found"}"#))
                .error
                .as_deref(),
            Some("model not found")
        );
    }
}
