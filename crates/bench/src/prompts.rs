//! Prompts and request bodies: a seeded synthetic generator with controlled lengths, or a
//! JSONL file.
//!
//! **Synthetic** prompts are common English words drawn with a seeded generator, one word per
//! input token asked for (common words are one token in the BPE vocabularies of current
//! models; the chat template adds a few). Each prompt starts with a unique tag so no two
//! share a cached prefix. The real prompt length is the server's `usage.prompt_tokens`, which
//! the report carries. Output length is controlled by `max_tokens` with `ignore_eos`.
//!
//! **JSONL**: one JSON object per line with `prompt` (or `text`) — a string — or `messages`
//! (an OpenAI chat array, chat APIs only), and optionally `max_tokens` (or `output_tokens`).
//! Blank lines are skipped; requests take the prompts in file order, wrapping around.

use std::path::Path;

use infermon_model::request::Api;
use serde_json::{json, Map, Value};

/// A small seeded pseudo-random generator (SplitMix64): the same seed gives the same prompts
/// and arrival times on every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponentially distributed with this mean (Poisson inter-arrival times).
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.next_f64()).ln()
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "was", "that", "for", "on", "with", "as", "by", "at",
    "from", "his", "her", "they", "this", "which", "be", "are", "or", "an", "had", "not", "but",
    "have", "one", "were", "all", "their", "there", "been", "has", "when", "who", "will", "more",
    "no", "if", "out", "so", "said", "what", "up", "its", "about", "into", "than", "them", "can",
    "only", "other", "new", "some", "could", "time", "these", "two", "may", "then", "do", "first",
    "any", "my", "now", "such", "like", "our", "over", "man", "me", "even", "most", "made",
    "after", "also", "did", "many", "before", "must", "through", "back", "years", "where", "much",
    "your", "way", "well", "down", "should", "because", "each", "just", "those", "people", "how",
    "too", "little", "state", "good", "very", "make", "world", "still", "own", "see", "men",
    "work", "long", "get", "here", "between", "both", "life", "being", "under", "never", "day",
    "same", "another", "know", "while", "last", "might", "us", "great", "old", "year", "off",
    "come", "since", "against", "go", "came", "right", "used", "take", "three", "house", "water",
    "light", "river", "city", "road", "music", "paper", "window", "garden", "table", "market",
    "stone", "morning", "evening", "summer", "winter", "family", "story", "friend", "school",
    "field", "letter", "king", "green", "small", "large", "early", "open", "short", "high",
    "young", "quiet", "clear", "simple",
];

/// The text or messages of one prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptText {
    /// Plain text (a user message for chat APIs).
    Text(String),
    /// An OpenAI chat `messages` array.
    Messages(Value),
}

/// One prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// What to send.
    pub text: PromptText,
    /// Its own `max_tokens`, overriding the run's.
    pub max_tokens: Option<u32>,
}

/// `n` synthetic prompts of about `input_tokens` tokens, numbered from `first` (the number is
/// part of the unique tag, so prompts of different configurations differ too).
pub fn synthetic(first: u64, n: usize, input_tokens: u32, seed: u64) -> Vec<Prompt> {
    let mut rng = Rng::new(seed ^ first.wrapping_mul(0x2545_f491_4f6c_dd1d));
    (0..n as u64)
        .map(|i| {
            let mut s = format!("r{}-{:x}", first + i, rng.next_u64() >> 40);
            for _ in 1..input_tokens.max(1) {
                s.push(' ');
                s.push_str(WORDS[rng.below(WORDS.len())]);
            }
            Prompt {
                text: PromptText::Text(s),
                max_tokens: None,
            }
        })
        .collect()
}

/// Reads a JSONL prompt file (see the module docs); errors name the file, the line and what
/// was expected.
pub fn load_jsonl(path: &Path) -> Result<Vec<Prompt>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read prompt file \"{}\": {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("prompt file \"{}\" line {}", path.display(), i + 1);
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("{}: not JSON ({e}); expected {{\"prompt\": \"...\"}}", at()))?;
        let prompt_text = v
            .get("prompt")
            .or_else(|| v.get("text"))
            .and_then(Value::as_str)
            .map(|s| PromptText::Text(s.to_string()));
        let text = match (prompt_text, v.get("messages")) {
            (Some(t), _) => t,
            (None, Some(m)) if m.as_array().is_some_and(|a| !a.is_empty()) => {
                PromptText::Messages(m.clone())
            }
            _ => {
                return Err(format!(
                "{}: expected a \"prompt\" (or \"text\") string or a non-empty \"messages\" array",
                at()
            ))
            }
        };
        let max_tokens = match v.get("max_tokens").or_else(|| v.get("output_tokens")) {
            None | Some(Value::Null) => None,
            Some(m) => Some(
                m.as_u64()
                    .and_then(|m| u32::try_from(m).ok())
                    .filter(|m| *m > 0)
                    .ok_or_else(|| format!("{}: max_tokens {m} is not a positive integer", at()))?,
            ),
        };
        out.push(Prompt { text, max_tokens });
    }
    if out.is_empty() {
        return Err(format!(
            "prompt file \"{}\" has no prompts (expected one JSON object per line)",
            path.display()
        ));
    }
    Ok(out)
}

/// What every request body of a run shares.
#[derive(Debug, Clone)]
pub struct BodySpec<'a> {
    /// API.
    pub api: Api,
    /// Model to name (`None`: name none).
    pub model: Option<&'a str>,
    /// `max_tokens` unless the prompt has its own.
    pub max_tokens: u32,
    /// Send `ignore_eos` (OpenAI APIs; llama.cpp, vLLM and SGLang honour it).
    pub ignore_eos: bool,
}

fn joined(messages: &Value) -> String {
    messages
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("content").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The streaming request body for `prompt`, asking for usage.
pub fn body(spec: &BodySpec<'_>, prompt: &Prompt) -> Result<Vec<u8>, String> {
    let max = prompt.max_tokens.unwrap_or(spec.max_tokens);
    let user = |t: &str| json!([{ "role": "user", "content": t }]);
    let mut o = Map::new();
    if let Some(m) = spec.model {
        o.insert("model".into(), json!(m));
    }
    match spec.api {
        Api::OpenaiChat | Api::OpenaiCompletions => {
            if spec.api == Api::OpenaiChat {
                let messages = match &prompt.text {
                    PromptText::Text(t) => user(t),
                    PromptText::Messages(m) => m.clone(),
                };
                o.insert("messages".into(), messages);
            } else {
                let text = match &prompt.text {
                    PromptText::Text(t) => t.clone(),
                    PromptText::Messages(m) => joined(m),
                };
                o.insert("prompt".into(), json!(text));
            }
            o.insert("max_tokens".into(), json!(max));
            o.insert("stream".into(), json!(true));
            o.insert("stream_options".into(), json!({ "include_usage": true }));
            if spec.ignore_eos {
                o.insert("ignore_eos".into(), json!(true));
            }
        }
        Api::OllamaChat | Api::OllamaGenerate => {
            if spec.api == Api::OllamaChat {
                let messages = match &prompt.text {
                    PromptText::Text(t) => user(t),
                    PromptText::Messages(m) => m.clone(),
                };
                o.insert("messages".into(), messages);
            } else {
                let text = match &prompt.text {
                    PromptText::Text(t) => t.clone(),
                    PromptText::Messages(m) => joined(m),
                };
                o.insert("prompt".into(), json!(text));
            }
            o.insert("stream".into(), json!(true));
            o.insert("options".into(), json!({ "num_predict": max }));
        }
        Api::OpenaiResponses => return Err(
            "the OpenAI Responses API is not supported by infermon bench; use chat or completions"
                .to_string(),
        ),
    }
    serde_json::to_vec(&Value::Object(o)).map_err(|e| format!("cannot encode a request body: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn synthetic_prompts_are_seeded_unique_and_sized() {
        let a = synthetic(0, 3, 50, 7);
        assert_eq!(a, synthetic(0, 3, 50, 7));
        assert_ne!(a, synthetic(0, 3, 50, 8));
        let PromptText::Text(t) = &a[0].text else {
            panic!()
        };
        assert_eq!(t.split(' ').count(), 50);
        assert_ne!(a[0].text, a[1].text);
        assert_ne!(synthetic(3, 1, 50, 7)[0], a[0]);
    }

    #[test]
    fn bodies_ask_for_usage_and_limits() {
        let p = &synthetic(0, 1, 4, 1)[0];
        let spec = BodySpec {
            api: Api::OpenaiChat,
            model: Some("m"),
            max_tokens: 32,
            ignore_eos: true,
        };
        let v: Value = serde_json::from_slice(&body(&spec, p).unwrap()).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["max_tokens"], 32);
        assert_eq!(v["ignore_eos"], true);
        assert_eq!(v["messages"][0]["role"], "user");
        let o = BodySpec {
            api: Api::OllamaGenerate,
            ..spec
        };
        let v: Value = serde_json::from_slice(&body(&o, p).unwrap()).unwrap();
        assert_eq!(v["options"]["num_predict"], 32);
        assert!(v.get("ignore_eos").is_none() && v["prompt"].is_string());
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("p.jsonl");
        std::fs::write(&f, "{\"prompt\":\"hi\",\"max_tokens\":5}\n\n{\"nope\":1}\n").unwrap();
        let e = load_jsonl(&f).unwrap_err();
        assert!(e.contains("line 3") && e.contains("p.jsonl"), "{e}");
        std::fs::write(&f, "{\"prompt\":\"hi\",\"max_tokens\":5}\n{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}\n").unwrap();
        let p = load_jsonl(&f).unwrap();
        assert_eq!(p[0].max_tokens, Some(5));
        assert!(matches!(p[1].text, PromptText::Messages(_)));
        assert!(load_jsonl(&dir.path().join("missing"))
            .unwrap_err()
            .contains("cannot read"));
    }

    #[test]
    fn poisson_gaps_have_the_right_mean() {
        let mut r = Rng::new(1);
        let n = 20_000;
        let mean = (0..n).map(|_| r.exponential(0.5)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
    }
}
