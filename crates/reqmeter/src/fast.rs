//! The common case read without building a JSON tree: an OpenAI streamed chunk that only
//! carries (or does not carry) a token. It answers only when the chunk has nothing else the
//! full reading ([`crate::events::facts`] over a `serde_json::Value`) would take from it: no
//! `usage`, `timings`, `stats` or `error` that is not null, and no choice with a
//! `finish_reason`. Anything else — those chunks, a shape it does not expect, duplicate keys —
//! is left to the full reading, so both always agree (a test feeds both the same chunks).
//! A token is what the full reading calls one: non-empty `text`, or in `delta` (else
//! `message`) a non-empty `content`, `reasoning_content` or `reasoning`, or a non-empty
//! `tool_calls` list.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// `Some(token)` for a plain token chunk, `None` when the full reading must look.
pub(crate) fn token_chunk(text: &[u8]) -> Option<bool> {
    let c: Chunk = serde_json::from_slice(text).ok()?;
    if c.usage.0 || c.timings.0 || c.stats.0 || c.error.0 {
        return None;
    }
    let mut token = false;
    for ch in c.choices.unwrap_or_default() {
        if ch.finish_reason.0 {
            return None;
        }
        let d = match ch.delta {
            Delta::Absent => ch.message,
            d => d,
        };
        token |= ch.text.0 || d.token();
    }
    Some(token)
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Option<Vec<Choice>>,
    #[serde(default)]
    usage: Present,
    #[serde(default)]
    timings: Present,
    #[serde(default)]
    stats: Present,
    #[serde(default)]
    error: Present,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    finish_reason: Present,
    #[serde(default)]
    text: NonEmpty,
    #[serde(default)]
    delta: Delta,
    #[serde(default)]
    message: Delta,
}

/// A `delta` / `message`: absent, or present (any value; only an object has fields).
#[derive(Default)]
enum Delta {
    #[default]
    Absent,
    Present(Fields),
}

#[derive(Deserialize, Default)]
struct Fields {
    #[serde(default)]
    content: NonEmpty,
    #[serde(default)]
    reasoning_content: NonEmpty,
    #[serde(default)]
    reasoning: NonEmpty,
    #[serde(default)]
    tool_calls: NonEmptySeq,
}

impl Delta {
    fn token(&self) -> bool {
        match self {
            Delta::Absent => false,
            Delta::Present(f) => {
                f.content.0 || f.reasoning_content.0 || f.reasoning.0 || f.tool_calls.0
            }
        }
    }
}

impl<'de> Deserialize<'de> for Delta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Delta;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Delta, A::Error> {
                Fields::deserialize(de::value::MapAccessDeserializer::new(map)).map(Delta::Present)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Delta, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Delta::Present(Fields::default()))
            }
            fn visit_unit<E>(self) -> Result<Delta, E> {
                Ok(Delta::Present(Fields::default()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Delta, E> {
                Ok(Delta::Present(Fields::default()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Delta, E> {
                Ok(Delta::Present(Fields::default()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Delta, E> {
                Ok(Delta::Present(Fields::default()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Delta, E> {
                Ok(Delta::Present(Fields::default()))
            }
            fn visit_str<E>(self, _: &str) -> Result<Delta, E> {
                Ok(Delta::Present(Fields::default()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Whether a value is a non-empty string.
#[derive(Default)]
struct NonEmpty(bool);

/// Whether a value is a non-empty array.
#[derive(Default)]
struct NonEmptySeq(bool);

/// Whether a value is there and not null.
#[derive(Default)]
struct Present(bool);

/// A visitor that takes any JSON value, answering `f` of what it saw.
struct Probe<F>(F);

/// What [`Probe`] saw.
enum Seen {
    Null,
    Str(bool),
    Seq(bool),
    Other,
}

impl<'de, F: Fn(Seen) -> bool> Visitor<'de> for Probe<F> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok((self.0)(Seen::Null))
    }
    fn visit_none<E>(self) -> Result<bool, E> {
        Ok((self.0)(Seen::Null))
    }
    fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
        Ok((self.0)(Seen::Other))
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok((self.0)(Seen::Other))
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok((self.0)(Seen::Other))
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok((self.0)(Seen::Other))
    }
    fn visit_str<E>(self, s: &str) -> Result<bool, E> {
        Ok((self.0)(Seen::Str(!s.is_empty())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        let mut any = false;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            any = true;
        }
        Ok((self.0)(Seen::Seq(any)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok((self.0)(Seen::Other))
    }
}

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Probe(|s| matches!(s, Seen::Str(true))))
            .map(NonEmpty)
    }
}

impl<'de> Deserialize<'de> for NonEmptySeq {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Probe(|s| matches!(s, Seen::Seq(true))))
            .map(NonEmptySeq)
    }
}

impl<'de> Deserialize<'de> for Present {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Probe(|s| !matches!(s, Seen::Null)))
            .map(Present)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::events::facts;
    use infermon_model::request::Api;

    /// Chunks as llama.cpp, vLLM, SGLang, Ollama's and LM Studio's OpenAI APIs send them,
    /// plus odd shapes; constructed.
    const CHUNKS: &[&str] = &[
        r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}],"usage":null}"#,
        r#"{"choices":[{"index":0,"delta":{"content":""}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"\u00e9\n\"x\""}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hm"}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"reasoning":"hm","content":""}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[]}}]}"#,
        r#"{"choices":[{"index":0,"delta":null,"message":{"content":"x"}}]}"#,
        r#"{"choices":[{"index":0,"message":{"content":"x"}}]}"#,
        r#"{"choices":[{"index":0,"text":"a","logprobs":null,"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"text":""}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#,
        r#"{"choices":[{"delta":{"content":"x"}}],"timings":{"predicted_n":1}}"#,
        r#"{"error":{"message":"boom"}}"#,
        r#"{"error":null,"choices":[{"delta":{"content":"x"}}]}"#,
        r#"{"choices":null}"#,
        r#"{"choices":"weird"}"#,
        r#"{"choices":[{"delta":"weird"}]}"#,
        r#"{"choices":[{"delta":{"content":5}}]}"#,
        r#"{"choices":[{"delta":{"content":"a"},"delta":{"content":""}}]}"#,
        r#"{}"#,
        r#"[1,2]"#,
    ];

    #[test]
    fn agrees_with_the_full_reading_whenever_it_answers() {
        let mut answered = 0;
        for c in CHUNKS {
            let v: serde_json::Value = serde_json::from_str(c).unwrap();
            for api in [Api::OpenaiChat, Api::OpenaiCompletions] {
                let full = facts(api, &v);
                if let Some(token) = token_chunk(c.as_bytes()) {
                    answered += 1;
                    assert_eq!(token, full.token, "{c}");
                    assert!(
                        full.prompt_tokens.is_none()
                            && full.completion_tokens.is_none()
                            && full.timings.is_none()
                            && full.error.is_none()
                            && !full.finish
                            && !full.usage_only,
                        "answered a chunk the full reading needs: {c}"
                    );
                }
            }
        }
        assert!(
            answered >= 24,
            "the fast path answers the common chunks: {answered}"
        );
    }

    #[test]
    fn leaves_special_chunks_to_the_full_reading() {
        for c in [
            r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#,
            r#"{"choices":[],"usage":{"completion_tokens":1}}"#,
            r#"{"error":"x"}"#,
            r#"{"choices":[{"delta":{"content":"x"}}],"stats":{}}"#,
            "not json",
        ] {
            assert_eq!(token_chunk(c.as_bytes()), None, "{c}");
        }
        assert_eq!(
            token_chunk(br#"{"choices":[{"delta":{"content":"x"}}]}"#),
            Some(true)
        );
    }
}
