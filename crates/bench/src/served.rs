//! Models a running server already offers, for `infermon bench sweep --url URL --models …`:
//! llama-swap and Ollama (which load a model when a request names it) or any
//! OpenAI-compatible router that picks the model by name.
//!
//! [`catalog`] lists the server's models and [`expand`] resolves the names and `*` patterns
//! the user gave against that list, in the order given. [`describe`] says what a model is
//! without a GGUF file: Ollama's `/api/show` gives its quantization, parameter count and the
//! blob it loads (a local GGUF when Ollama runs on this machine); for other servers the
//! quantization is read from the model's name and marked as guessed. [`loaded`] tells which
//! models were resident before the sweep, and [`unload`] frees the ones the sweep loaded
//! after their turn (llama-swap `POST /api/models/unload/NAME`, Ollama `keep_alive: 0`), so
//! that the perplexity run and the next model do not share memory with them. Nothing here
//! uses llama-swap's `/upstream` routes.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::Client;
use crate::sweep::{bits_per_weight, file_type_names, ModelFacts};
use crate::target::ids;

/// What kind of server offers the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catalog {
    /// llama-swap: `/v1/models`, `/running`, `/api/models/unload/NAME`.
    LlamaSwap,
    /// Ollama: `/api/tags`, `/api/ps`, `/api/show`.
    Ollama,
    /// Any OpenAI-compatible server: `/v1/models` only; nothing is unloaded.
    OpenAi,
}

impl Catalog {
    /// The catalog of an engine kind as `target::engine_kind` names it.
    pub fn of_kind(kind: &str) -> Catalog {
        match kind {
            "llama_swap" => Catalog::LlamaSwap,
            "ollama" => Catalog::Ollama,
            _ => Catalog::OpenAi,
        }
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Catalog::LlamaSwap => "llama-swap",
            Catalog::Ollama => "Ollama",
            Catalog::OpenAi => "OpenAI-compatible server",
        }
    }
}

/// One entry of `--models`: `NAME`, a pattern with `*` / `?`, or `NAME=FILE.gguf` (the file
/// the server loads for that model, for its header and perplexity).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Name or pattern.
    pub pattern: String,
    /// The model's GGUF file on this machine.
    pub file: Option<PathBuf>,
}

/// Parses `--models` entries.
///
/// # Errors
///
/// An empty name, or a file given for a pattern (a file belongs to one model).
pub fn parse_specs(entries: &[String]) -> Result<Vec<ModelSpec>, String> {
    entries
        .iter()
        .map(|e| {
            let (name, file) = match e.split_once('=') {
                Some((n, f)) if !f.trim().is_empty() => (n.trim(), Some(PathBuf::from(f.trim()))),
                Some(_) => {
                    return Err(format!(
                        "--models \"{e}\": no file after \"=\"; expected NAME=FILE.gguf"
                    ))
                }
                None => (e.trim(), None),
            };
            if name.is_empty() {
                return Err(format!(
                    "--models \"{e}\": no model name; expected NAME, a pattern such as 'qwen*', or NAME=FILE.gguf"
                ));
            }
            if file.is_some() && is_pattern(name) {
                return Err(format!(
                    "--models \"{e}\": a file can be given for one model, not for the pattern \"{name}\""
                ));
            }
            Ok(ModelSpec {
                pattern: name.to_string(),
                file,
            })
        })
        .collect()
}

fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Whether `name` matches `pattern` (`*`: any run of characters, `?`: one character).
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative matching with one backtrack point (the last `*`).
    let (mut i, mut j) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while j < n.len() {
        if i < p.len() && (p[i] == '?' || p[i] == n[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Resolves the specs against the server's list, in the order given, each model once.
/// Without a list (the server does not say), plain names are taken as they are.
///
/// # Errors
///
/// A name the server does not list, or a pattern that matches nothing; both name what the
/// server offers.
pub fn expand(specs: &[ModelSpec], listed: &[String]) -> Result<Vec<ModelSpec>, String> {
    let offered = || {
        if listed.is_empty() {
            "the server lists no models".to_string()
        } else {
            format!("it offers: {}", listed.join(", "))
        }
    };
    let mut out: Vec<ModelSpec> = Vec::new();
    for s in specs {
        let names: Vec<String> = if is_pattern(&s.pattern) {
            let m: Vec<String> = listed
                .iter()
                .filter(|n| glob(&s.pattern, n))
                .cloned()
                .collect();
            if m.is_empty() {
                return Err(format!(
                    "--models: \"{}\" matches no model ({})",
                    s.pattern,
                    offered()
                ));
            }
            m
        } else if listed.is_empty() || listed.contains(&s.pattern) {
            vec![s.pattern.clone()]
        } else {
            return Err(format!(
                "--models: the server has no model \"{}\" ({})",
                s.pattern,
                offered()
            ));
        };
        for name in names {
            if !out.iter().any(|o| o.pattern == name) {
                out.push(ModelSpec {
                    pattern: name,
                    file: s.file.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// A model the server lists, with its size when the list says (Ollama).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Name to ask for.
    pub name: String,
    /// Bytes on disk.
    pub size_bytes: Option<u64>,
}

/// The server's models: Ollama's `/api/tags`, else `/v1/models`.
///
/// # Errors
///
/// When the list cannot be read.
pub(crate) async fn catalog(
    client: &Client,
    base: &str,
    c: Catalog,
) -> Result<Vec<Listed>, String> {
    match c {
        Catalog::Ollama => {
            let v = client.get_json(&format!("{base}/api/tags")).await?;
            Ok(ollama_tags(&v))
        }
        Catalog::LlamaSwap | Catalog::OpenAi => {
            let v = client.get_json(&format!("{base}/v1/models")).await?;
            Ok(ids(&v, "data", "id")
                .into_iter()
                .map(|name| Listed {
                    name,
                    size_bytes: None,
                })
                .collect())
        }
    }
}

fn ollama_tags(v: &Value) -> Vec<Listed> {
    v.get("models")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| {
                    Some(Listed {
                        name: m.get("name").and_then(Value::as_str)?.to_string(),
                        size_bytes: m.get("size").and_then(Value::as_u64),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Models resident now: llama-swap's `/running` entries that are not stopped, Ollama's
/// `/api/ps`. Empty when the server does not say.
pub(crate) async fn loaded(client: &Client, base: &str, c: Catalog) -> Vec<String> {
    match c {
        Catalog::LlamaSwap => match client.get_json(&format!("{base}/running")).await {
            Ok(v) => v
                .get("running")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter(|e| {
                            !matches!(
                                e.get("state").and_then(Value::as_str),
                                Some("stopped" | "shutdown")
                            )
                        })
                        .filter_map(|e| e.get("model").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        },
        Catalog::Ollama => match client.get_json(&format!("{base}/api/ps")).await {
            Ok(v) => ids(&v, "models", "name"),
            Err(_) => Vec::new(),
        },
        Catalog::OpenAi => Vec::new(),
    }
}

/// What a server says about one of its models.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// What is known without a GGUF header.
    pub facts: ModelFacts,
    /// The model's GGUF file, when the server names one that exists on this machine.
    pub file: Option<PathBuf>,
}

/// Describes `listed` without a GGUF file: Ollama's `/api/show`, else its name.
pub(crate) async fn describe(
    client: &Client,
    base: &str,
    c: Catalog,
    listed: &Listed,
) -> Described {
    if c == Catalog::Ollama {
        let body = json!({ "model": listed.name });
        let url = format!("{base}/api/show");
        if let Ok((200..=299, b)) = client.post_json(&url, &body, Duration::from_secs(30)).await {
            if let Ok(v) = serde_json::from_slice::<Value>(&b) {
                return ollama_show(&v, listed);
            }
        }
    }
    Described {
        facts: from_name(&listed.name, listed.size_bytes),
        file: None,
    }
}

/// Facts from Ollama's `/api/show` answer.
pub fn ollama_show(v: &Value, listed: &Listed) -> Described {
    let quant = v
        .pointer("/details/quantization_level")
        .and_then(Value::as_str)
        .filter(|q| !q.is_empty());
    let parameters = v
        .pointer("/model_info/general.parameter_count")
        .and_then(Value::as_u64);
    let file = v.get("modelfile").and_then(Value::as_str).and_then(|mf| {
        mf.lines()
            .filter_map(|l| l.trim().strip_prefix("FROM "))
            .map(|p| PathBuf::from(p.trim()))
            .find(|p| p.is_absolute() && p.is_file())
    });
    let mut facts = match quant {
        Some(q) => ModelFacts {
            quant: q.to_string(),
            source: "Ollama /api/show".into(),
            ..from_name(&listed.name, listed.size_bytes)
        },
        None => from_name(&listed.name, listed.size_bytes),
    };
    facts.parameters = parameters;
    facts.bits_per_weight = match (listed.size_bytes, parameters) {
        (Some(s), Some(p)) => bits_per_weight(s, p),
        _ => None,
    };
    Described { facts, file }
}

/// Facts from a model's name alone: a quantization name in it (`…-q4_K_M`), marked as
/// guessed, else `unknown`.
pub fn from_name(name: &str, size_bytes: Option<u64>) -> ModelFacts {
    let upper = name.to_ascii_uppercase();
    // The longest type name that appears between separators (Q4_K_M before Q4_K).
    let quant = file_type_names()
        .filter(|q| {
            upper.match_indices(*q).any(|(i, m)| {
                let before = upper[..i].chars().next_back();
                let after = upper[i + m.len()..].chars().next();
                let sep =
                    |c: Option<char>| c.is_none_or(|c| !c.is_ascii_alphanumeric() && c != '_');
                sep(before) && sep(after)
            })
        })
        .max_by_key(|q| q.len());
    ModelFacts {
        quant: quant.map_or_else(|| "unknown".to_string(), |q| format!("{q} (from name)")),
        size_bytes,
        bits_per_weight: None,
        parameters: None,
        source: "model name".into(),
    }
}

/// Unloads a model the sweep loaded.
///
/// # Errors
///
/// When the server refuses or cannot be reached.
pub(crate) async fn unload(
    client: &Client,
    base: &str,
    c: Catalog,
    model: &str,
) -> Result<(), String> {
    let (url, body) = match c {
        Catalog::LlamaSwap => (
            format!("{base}/api/models/unload/{}", path_segment(model)),
            json!({}),
        ),
        Catalog::Ollama => (
            format!("{base}/api/generate"),
            json!({ "model": model, "keep_alive": 0 }),
        ),
        Catalog::OpenAi => return Ok(()),
    };
    match client
        .post_json(&url, &body, Duration::from_secs(60))
        .await?
    {
        (200..=299, _) => Ok(()),
        (status, b) => Err(format!(
            "POST {url} answered HTTP {status}: {}",
            String::from_utf8_lossy(&b[..b.len().min(200)])
        )),
    }
}

/// Percent-encodes a model name for one URL path segment.
fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(glob("qwen*", "qwen2.5-7b-q4_K_M"));
        assert!(glob("*q4*", "qwen2.5-7b-q4_K_M"));
        assert!(glob(
            "llama3.1:8b-instruct-q?_0",
            "llama3.1:8b-instruct-q8_0"
        ));
        assert!(!glob(
            "llama3.1:8b-instruct-q?_0",
            "llama3.1:8b-instruct-q4_K_M"
        ));
        assert!(glob("*", ""));
        assert!(!glob("a*b", "acbd"));
        assert!(glob("a*b*c", "aXbYbc"));
    }

    #[test]
    fn specs_parse_and_refuse_bad_entries() {
        let s = parse_specs(&names(&["a", "b=/m/b.gguf", "q*"])).unwrap();
        assert_eq!(s[1].file, Some(PathBuf::from("/m/b.gguf")));
        assert!(parse_specs(&names(&["=x.gguf"]))
            .unwrap_err()
            .contains("no model name"));
        assert!(parse_specs(&names(&["q*=x.gguf"]))
            .unwrap_err()
            .contains("pattern"));
        assert!(parse_specs(&names(&["a="]))
            .unwrap_err()
            .contains("NAME=FILE"));
    }

    #[test]
    fn expand_keeps_order_and_names_what_is_offered() {
        let listed = names(&["m-q8_0", "m-q4_0", "m-q3_k_s", "other"]);
        let specs = parse_specs(&names(&["m-q4_0", "m-*"])).unwrap();
        let got: Vec<String> = expand(&specs, &listed)
            .unwrap()
            .into_iter()
            .map(|s| s.pattern)
            .collect();
        assert_eq!(got, names(&["m-q4_0", "m-q8_0", "m-q3_k_s"]));
        let e = expand(&parse_specs(&names(&["nope"])).unwrap(), &listed).unwrap_err();
        assert!(
            e.contains("\"nope\"") && e.contains("m-q8_0, m-q4_0"),
            "{e}"
        );
        let e = expand(&parse_specs(&names(&["x*"])).unwrap(), &listed).unwrap_err();
        assert!(e.contains("matches no model"), "{e}");
        // No list: plain names pass, patterns cannot match.
        assert_eq!(
            expand(&parse_specs(&names(&["a"])).unwrap(), &[])
                .unwrap()
                .len(),
            1
        );
        assert!(expand(&parse_specs(&names(&["a*"])).unwrap(), &[]).is_err());
    }

    #[test]
    fn quantization_from_the_name_prefers_the_longest() {
        let f = from_name("Qwen2.5-7B-Instruct-Q4_K_M", Some(10));
        assert_eq!(f.quant, "Q4_K_M (from name)");
        assert_eq!(f.size_bytes, Some(10));
        assert_eq!(
            from_name("llama3.1:8b-instruct-q8_0", None).quant,
            "Q8_0 (from name)"
        );
        assert_eq!(from_name("mistral-small", None).quant, "unknown");
        // Not inside a longer word.
        assert_eq!(from_name("xq8_0y", None).quant, "unknown");
    }

    #[test]
    fn ollama_show_gives_quant_parameters_and_bits() {
        // Shape of Ollama's /api/show answer (api/types.go ShowResponse), constructed.
        let v: Value = serde_json::from_str(
            r##"{"modelfile":"# Modelfile generated by \"ollama show\"\nFROM /nonexistent/blobs/sha256-abc\nTEMPLATE x",
                "details":{"format":"gguf","family":"llama","parameter_size":"8.0B","quantization_level":"Q4_K_M"},
                "model_info":{"general.architecture":"llama","general.parameter_count":8030261248}}"##,
        )
        .unwrap();
        let listed = Listed {
            name: "llama3.1:8b".into(),
            size_bytes: Some(4_920_753_328),
        };
        let d = ollama_show(&v, &listed);
        assert_eq!(d.facts.quant, "Q4_K_M");
        assert_eq!(d.facts.source, "Ollama /api/show");
        assert_eq!(d.facts.parameters, Some(8_030_261_248));
        let bpw = d.facts.bits_per_weight.unwrap();
        assert!((bpw - 8.0 * 4_920_753_328.0 / 8_030_261_248.0).abs() < 1e-9);
        assert_eq!(
            d.file, None,
            "a FROM path that is not a file here is not used"
        );
    }

    #[test]
    fn tags_and_segments() {
        let v: Value = serde_json::from_str(
            r#"{"models":[{"name":"a:1b","size":10},{"name":"b"},{"size":3}]}"#,
        )
        .unwrap();
        let t = ollama_tags(&v);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].size_bytes, Some(10));
        assert_eq!(path_segment("qwen:7b/x y"), "qwen%3A7b%2Fx%20y");
    }
}
