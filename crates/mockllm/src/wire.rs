//! The wire formats: request fields the mock reads, and the response bytes it writes.
//!
//! Everything that repeats per token is formatted once per request into a [`Bytes`] and
//! then only cloned (a reference count), so a token costs no formatting and no JSON.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;
use tokio::time::Instant;

/// The text of every token; JSON-safe, so it is pasted into templates as is.
pub const TOKEN_TEXT: &str = " tok";

/// Which API a generation request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `POST /v1/chat/completions`
    Chat,
    /// `POST /v1/completions`
    Completion,
    /// `POST /api/chat` (Ollama)
    OllamaChat,
    /// `POST /api/generate` (Ollama)
    OllamaGenerate,
}

impl Api {
    pub(crate) fn is_ollama(self) -> bool {
        matches!(self, Api::OllamaChat | Api::OllamaGenerate)
    }
}

/// The fields of a generation request the mock looks at; everything else is ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct GenRequest {
    model: Option<String>,
    stream: Option<bool>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    stream_options: Option<StreamOptions>,
    options: Option<OllamaOptions>,
    prompt: Option<serde_json::Value>,
    messages: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StreamOptions {
    include_usage: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OllamaOptions {
    num_predict: Option<i64>,
}

impl GenRequest {
    /// Parses a request body; an empty body is an empty request.
    pub(crate) fn parse(body: &[u8]) -> Result<GenRequest, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(GenRequest::default());
        }
        serde_json::from_slice(body).map_err(|e| format!("request body is not valid JSON: {e}"))
    }

    /// Whether the reply streams: OpenAI defaults to no, Ollama to yes.
    pub(crate) fn stream(&self, api: Api) -> bool {
        self.stream.unwrap_or(api.is_ollama())
    }

    /// The request's own token limit, if it set one (negative values mean "no limit").
    pub(crate) fn limit(&self, api: Api) -> Option<usize> {
        let raw = if api.is_ollama() {
            self.options.as_ref().and_then(|o| o.num_predict)
        } else {
            self.max_completion_tokens.or(self.max_tokens)
        };
        raw.and_then(|n| usize::try_from(n).ok())
    }

    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false)
    }

    pub(crate) fn model(&self) -> Option<&str> {
        self.model.as_deref().filter(|m| !m.is_empty())
    }

    /// A rough prompt size: a token per four characters of text, a token per number in a
    /// token-id prompt, at least one.
    pub(crate) fn estimate_prompt_tokens(&self) -> u64 {
        fn walk(v: &serde_json::Value, chars: &mut u64, ids: &mut u64) {
            match v {
                serde_json::Value::String(s) => *chars += s.chars().count() as u64,
                serde_json::Value::Number(_) => *ids += 1,
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, chars, ids)),
                serde_json::Value::Object(o) => o.values().for_each(|v| walk(v, chars, ids)),
                serde_json::Value::Null | serde_json::Value::Bool(_) => {}
            }
        }
        let (mut chars, mut ids) = (0, 0);
        for v in [&self.prompt, &self.messages].into_iter().flatten() {
            walk(v, &mut chars, &mut ids);
        }
        (chars.div_ceil(4) + ids).max(1)
    }
}

/// The timestamps of one request, for Ollama's duration fields.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Times {
    /// The request arrived.
    pub arrived: Instant,
    /// Its body was read and parsed ("model loaded").
    pub parsed: Instant,
    /// The first token was due (`parsed + ttft`).
    pub first_due: Instant,
}

impl Times {
    /// Ollama's `total_duration`…`eval_duration` fields (nanoseconds), ending now.
    ///
    /// `load + prompt_eval + eval == total`; `eval` runs from when the first token was due to
    /// now, so it is at least `(tokens - 1) * itl`.
    fn ollama_durations(&self, prompt_tokens: u64, eval_count: usize) -> String {
        let end = Instant::now().max(self.first_due);
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let load = ns(self.parsed - self.arrived);
        let prompt_eval = ns(self.first_due - self.parsed);
        let eval = ns(end - self.first_due);
        let total = load.saturating_add(prompt_eval).saturating_add(eval);
        format!(
            "\"total_duration\":{total},\"load_duration\":{load},\"prompt_eval_count\":{prompt_tokens},\
             \"prompt_eval_duration\":{prompt_eval},\"eval_count\":{eval_count},\"eval_duration\":{eval}"
        )
    }
}

/// Everything about one request's response that is fixed before the first byte.
#[derive(Debug)]
pub(crate) struct Plan {
    pub api: Api,
    pub stream: bool,
    /// Completion tokens to send.
    pub tokens: usize,
    pub prompt_tokens: u64,
    pub include_usage: bool,
    /// `finish_reason` / `done_reason`: `length` when the request's own limit was reached.
    pub finish: &'static str,
    /// The object's opening fields up to and including the comma before the API-specific
    /// part: `{"id":…,"object":…,"created":…,"model":…,` or `{"model":…,"created_at":…,`.
    head: String,
}

impl Plan {
    /// `tokens` is the count to send (already decided from headers, the request's limit and
    /// the default); `id` makes the response id.
    pub(crate) fn new(
        api: Api,
        req: &GenRequest,
        tokens: usize,
        prompt_tokens: u64,
        default_model: &str,
        id: u128,
    ) -> Plan {
        let stream = req.stream(api);
        let include_usage = req.include_usage();
        let limit = req.limit(api);
        let model = req.model().unwrap_or(default_model);
        let model = json_string(model);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let head = match api {
            Api::Chat | Api::Completion => {
                let (prefix, object) = match (api, stream) {
                    (Api::Chat, true) => ("chatcmpl", "chat.completion.chunk"),
                    (Api::Chat, false) => ("chatcmpl", "chat.completion"),
                    _ => ("cmpl", "text_completion"),
                };
                format!(
                    "{{\"id\":\"{prefix}-{id:032x}\",\"object\":\"{object}\",\"created\":{},\"model\":{model},",
                    now.as_secs()
                )
            }
            Api::OllamaChat | Api::OllamaGenerate => {
                format!(
                    "{{\"model\":{model},\"created_at\":\"{}\",",
                    rfc3339_utc(now)
                )
            }
        };
        let finish = if limit.is_some_and(|l| tokens >= l) {
            "length"
        } else {
            "stop"
        };
        Plan {
            api,
            stream,
            tokens,
            prompt_tokens,
            include_usage,
            finish,
            head,
        }
    }

    /// The bytes of one streamed token: an SSE event or an NDJSON line. The first token of a
    /// chat stream also carries `"role":"assistant"`.
    pub(crate) fn token_frame(&self, first: bool) -> Bytes {
        let head = &self.head;
        let t = TOKEN_TEXT;
        let s = match self.api {
            Api::Chat if first => format!(
                "data: {head}\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"content\":\"{t}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
            ),
            Api::Chat => format!(
                "data: {head}\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{t}\"}},\"logprobs\":null,\"finish_reason\":null}}]}}\n\n"
            ),
            Api::Completion => format!(
                "data: {head}\"choices\":[{{\"index\":0,\"text\":\"{t}\",\"logprobs\":null,\"finish_reason\":null,\"stop_reason\":null}}]}}\n\n"
            ),
            Api::OllamaChat => format!(
                "{head}\"message\":{{\"role\":\"assistant\",\"content\":\"{t}\"}},\"done\":false}}\n"
            ),
            Api::OllamaGenerate => format!("{head}\"response\":\"{t}\",\"done\":false}}\n"),
        };
        Bytes::from(s)
    }

    /// The frames after the last token, one per call with `index` 0, 1, …; `None` past the
    /// end. The `bool` is true for the last one.
    pub(crate) fn tail_frame(
        &self,
        index: usize,
        sent: usize,
        times: &Times,
    ) -> Option<(Bytes, bool)> {
        let head = &self.head;
        let finish = self.finish;
        let frame = match (self.api, index) {
            (Api::Chat, 0) => format!(
                "data: {head}\"choices\":[{{\"index\":0,\"delta\":{{}},\"logprobs\":null,\"finish_reason\":\"{finish}\"}}]}}\n\n"
            ),
            (Api::Completion, 0) => format!(
                "data: {head}\"choices\":[{{\"index\":0,\"text\":\"\",\"logprobs\":null,\"finish_reason\":\"{finish}\",\"stop_reason\":null}}]}}\n\n"
            ),
            (Api::Chat | Api::Completion, 1) if self.include_usage => {
                format!("data: {head}\"choices\":[],{}}}\n\n", self.usage(sent))
            }
            (Api::Chat | Api::Completion, 1 | 2) => {
                return (index == 1 || self.include_usage)
                    .then(|| (Bytes::from_static(b"data: [DONE]\n\n"), true));
            }
            (Api::OllamaChat, 0) => format!(
                "{head}\"message\":{{\"role\":\"assistant\",\"content\":\"\"}},\"done_reason\":\"{finish}\",\"done\":true,{}}}\n",
                times.ollama_durations(self.prompt_tokens, sent)
            ),
            (Api::OllamaGenerate, 0) => format!(
                "{head}\"response\":\"\",\"done\":true,\"done_reason\":\"{finish}\",{}}}\n",
                times.ollama_durations(self.prompt_tokens, sent)
            ),
            _ => return None,
        };
        Some((Bytes::from(frame), self.api.is_ollama()))
    }

    /// The whole non-streamed response body.
    pub(crate) fn full_body(&self, times: &Times) -> Bytes {
        let head = &self.head;
        let finish = self.finish;
        let text = TOKEN_TEXT.repeat(self.tokens);
        let s = match self.api {
            Api::Chat => format!(
                "{head}\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":\"{text}\"}},\"logprobs\":null,\"finish_reason\":\"{finish}\"}}],{}}}",
                self.usage(self.tokens)
            ),
            Api::Completion => format!(
                "{head}\"choices\":[{{\"index\":0,\"text\":\"{text}\",\"logprobs\":null,\"finish_reason\":\"{finish}\",\"stop_reason\":null}}],{}}}",
                self.usage(self.tokens)
            ),
            Api::OllamaChat => format!(
                "{head}\"message\":{{\"role\":\"assistant\",\"content\":\"{text}\"}},\"done_reason\":\"{finish}\",\"done\":true,{}}}",
                times.ollama_durations(self.prompt_tokens, self.tokens)
            ),
            Api::OllamaGenerate => format!(
                "{head}\"response\":\"{text}\",\"done\":true,\"done_reason\":\"{finish}\",{}}}",
                times.ollama_durations(self.prompt_tokens, self.tokens)
            ),
        };
        Bytes::from(s)
    }

    /// The `malformed` fault's line: framed like a token, but not JSON.
    pub(crate) fn malformed_frame(&self) -> Bytes {
        if self.api.is_ollama() {
            Bytes::from_static(b"{\"model\": this is not json\n")
        } else {
            Bytes::from_static(b"data: {\"id\": this is not json\n\n")
        }
    }

    /// The `Content-Type` of the response.
    pub(crate) fn content_type(&self) -> &'static str {
        match (self.stream, self.api.is_ollama()) {
            (true, false) => "text/event-stream; charset=utf-8",
            (true, true) => "application/x-ndjson",
            (false, false) => "application/json",
            (false, true) => "application/json; charset=utf-8",
        }
    }

    fn usage(&self, completion: usize) -> String {
        let p = self.prompt_tokens;
        let c = completion as u64;
        format!(
            "\"usage\":{{\"prompt_tokens\":{p},\"total_tokens\":{},\"completion_tokens\":{c}}}",
            p + c
        )
    }
}

/// `s` as a JSON string literal, quotes included.
pub(crate) fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// `2024-08-07T03:57:33.036588800Z` (nanoseconds, UTC), as Ollama's `created_at`.
pub(crate) fn rfc3339_utc(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since_epoch.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn times() -> Times {
        let now = Instant::now();
        Times {
            arrived: now,
            parsed: now,
            first_due: now,
        }
    }

    fn plan(api: Api, stream: bool, usage: bool) -> Plan {
        let body = format!(
            r#"{{"model":"m\"x","stream":{stream},"max_tokens":3,"options":{{"num_predict":3}},
                "stream_options":{{"include_usage":{usage}}}}}"#
        );
        let req = GenRequest::parse(body.as_bytes()).unwrap();
        Plan::new(api, &req, 3, 5, "default", 0xabc)
    }

    fn event_json(frame: &Bytes) -> serde_json::Value {
        let s = std::str::from_utf8(frame).unwrap();
        let s = s.strip_prefix("data: ").unwrap_or(s).trim_end();
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn dates() {
        assert_eq!(
            rfc3339_utc(Duration::ZERO),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339_utc(Duration::new(1_709_251_199, 5)),
            "2024-02-29T23:59:59.000000005Z"
        );
        assert_eq!(
            rfc3339_utc(Duration::new(951_782_400, 0)),
            "2000-02-29T00:00:00.000000000Z"
        );
    }

    #[test]
    fn every_frame_is_json() {
        for api in [
            Api::Chat,
            Api::Completion,
            Api::OllamaChat,
            Api::OllamaGenerate,
        ] {
            for usage in [false, true] {
                let p = plan(api, true, usage);
                let first = event_json(&p.token_frame(true));
                assert_eq!(first["model"], "m\"x");
                event_json(&p.token_frame(false));
                let mut i = 0;
                while let Some((f, last)) = p.tail_frame(i, 3, &times()) {
                    if &f[..] != b"data: [DONE]\n\n" {
                        let v = event_json(&f);
                        if api.is_ollama() {
                            assert_eq!(v["done"], true);
                            assert_eq!(v["eval_count"], 3);
                            assert_eq!(v["done_reason"], "length");
                        }
                    }
                    i += 1;
                    if last {
                        assert!(p.tail_frame(i, 3, &times()).is_none());
                        break;
                    }
                }
                let expected = if api.is_ollama() {
                    1
                } else {
                    2 + usize::from(usage)
                };
                assert_eq!(i, expected, "{api:?} usage={usage}");
                let full = event_json(&plan(api, false, false).full_body(&times()));
                assert!(full.is_object());
            }
        }
    }

    #[test]
    fn request_fields() {
        let r = GenRequest::parse(
            br#"{"model":"x","max_tokens":7,"max_completion_tokens":9,"stream":true,
                "stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello world!"}]}"#,
        )
        .unwrap();
        assert_eq!(r.limit(Api::Chat), Some(9));
        assert!(r.stream(Api::Chat) && r.include_usage());
        assert_eq!(r.estimate_prompt_tokens(), 4); // "user" + "hello world!" = 16 chars
        let o = GenRequest::parse(br#"{"prompt":[1,2,3],"options":{"num_predict":-1}}"#).unwrap();
        assert_eq!(o.limit(Api::OllamaGenerate), None);
        assert!(o.stream(Api::OllamaGenerate) && !o.stream(Api::Completion));
        assert_eq!(o.estimate_prompt_tokens(), 3);
        assert!(GenRequest::parse(b"").is_ok());
        assert!(GenRequest::parse(b"{nope").is_err());
    }
}
