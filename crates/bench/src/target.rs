//! What to send requests to: the endpoint from a URL and an API, the model, and which kind of
//! engine serves it (for the hardware collectors).

use infermon_model::request::Api;
use serde_json::Value;

use crate::client::Client;

/// The endpoint of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `http://HOST:PORT` (plus any path prefix before the API path).
    pub base: String,
    /// The URL requests go to.
    pub url: String,
    /// Its API.
    pub api: Api,
}

/// The path of `api` under a base URL.
pub(crate) fn api_path(api: Api) -> &'static str {
    match api {
        Api::OpenaiChat => "/v1/chat/completions",
        Api::OpenaiCompletions => "/v1/completions",
        Api::OpenaiResponses => "/v1/responses",
        Api::OllamaChat => "/api/chat",
        Api::OllamaGenerate => "/api/generate",
    }
}

/// Resolves `url` (a base such as `http://127.0.0.1:8080`, a `…/v1` base, or a full endpoint
/// such as `…/v1/completions`) and `api` (default: the URL's, else OpenAI chat).
pub(crate) fn endpoint(url: &str, api: Option<Api>) -> Result<Endpoint, String> {
    let u = url.trim().trim_end_matches('/');
    let Some((scheme, rest)) = u.split_once("://") else {
        return Err(format!(
            "--url \"{url}\": expected an http:// URL such as http://127.0.0.1:8080"
        ));
    };
    if rest.is_empty() {
        return Err(format!(
            "--url \"{url}\": no host; expected http://HOST:PORT"
        ));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let root = format!("{scheme}://{authority}");
    let found = [
        Api::OpenaiChat,
        Api::OpenaiCompletions,
        Api::OpenaiResponses,
        Api::OllamaChat,
        Api::OllamaGenerate,
    ]
    .into_iter()
    .find(|a| path.ends_with(api_path(*a)));
    if let Some(found) = found {
        if let Some(a) = api.filter(|a| *a != found) {
            return Err(format!(
                "--url \"{url}\" is the {} endpoint but --api asks for {}",
                found.as_str(),
                a.as_str()
            ));
        }
        if found == Api::OpenaiResponses {
            return Err("the OpenAI Responses API is not supported by infermon bench; use chat or completions".into());
        }
        let prefix = &path[..path.len() - api_path(found).len()];
        return Ok(Endpoint {
            base: format!("{root}{prefix}"),
            url: u.to_string(),
            api: found,
        });
    }
    let api = api.unwrap_or(Api::OpenaiChat);
    if api == Api::OpenaiResponses {
        return Err(
            "--api responses is not supported by infermon bench; use chat or completions".into(),
        );
    }
    let base = if path.is_empty() {
        root
    } else if let Some(prefix) = path.strip_suffix("/v1") {
        if matches!(api, Api::OllamaChat | Api::OllamaGenerate) {
            return Err(format!(
                "--url \"{url}\" is an OpenAI /v1 base but --api asks for Ollama's native API; give the server's root URL"
            ));
        }
        format!("{root}{prefix}")
    } else {
        return Err(format!(
            "--url \"{url}\": path \"{path}\" is neither a base (…/v1) nor an API endpoint (/v1/chat/completions, /v1/completions, /api/chat, /api/generate)"
        ));
    };
    Ok(Endpoint {
        url: format!("{base}{}", api_path(api)),
        base,
        api,
    })
}

/// The `key` strings of the objects in the array `list` of `v` (model lists).
pub(crate) fn ids(v: &Value, list: &str, key: &str) -> Vec<String> {
    v.get(list)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get(key).and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The model to ask for when none was given: the one model an OpenAI server lists. `Ok(None)`
/// when the server does not say (requests then name no model); an error when the choice is
/// ambiguous or required (Ollama).
pub(crate) async fn model(client: &Client, ep: &Endpoint) -> Result<Option<String>, String> {
    match ep.api {
        Api::OllamaChat | Api::OllamaGenerate => {
            let have = client
                .get_json(&format!("{}/api/tags", ep.base))
                .await
                .map(|v| ids(&v, "models", "name"))
                .unwrap_or_default();
            Err(format!(
                "Ollama needs a model: give --model NAME{}",
                if have.is_empty() {
                    String::new()
                } else {
                    format!(" (installed: {})", have.join(", "))
                }
            ))
        }
        _ => match client.get_json(&format!("{}/v1/models", ep.base)).await {
            Ok(v) => {
                let ids = ids(&v, "data", "id");
                match ids.len() {
                    0 => Ok(None),
                    1 => Ok(ids.into_iter().next()),
                    n => Err(format!(
                        "{} serves {n} models ({}): choose one with --model",
                        ep.base,
                        ids.join(", ")
                    )),
                }
            }
            Err(_) => Ok(None),
        },
    }
}

/// The address of the llama-server llama-swap runs `model` on (`proxy` of its `/running`
/// entry, which must be `ready`). Only `/running` is read: nothing here makes llama-swap load
/// a model.
pub(crate) async fn llama_swap_upstream(
    client: &Client,
    base: &str,
    model: Option<&str>,
) -> Result<String, String> {
    let Some(model) = model else {
        return Err("no model named".into());
    };
    let v = client.get_json(&format!("{base}/running")).await?;
    running_proxy(&v, model)
}

/// The `proxy` of `model`'s `ready` entry in a llama-swap `/running` answer.
pub(crate) fn running_proxy(v: &Value, model: &str) -> Result<String, String> {
    let entries = v
        .get("running")
        .and_then(Value::as_array)
        .ok_or("/running has no \"running\" list")?;
    let e = entries
        .iter()
        .find(|e| e.get("model").and_then(Value::as_str) == Some(model))
        .ok_or_else(|| format!("model \"{model}\" is not running"))?;
    let state = e.get("state").and_then(Value::as_str).unwrap_or("");
    if state != "ready" {
        return Err(format!("model \"{model}\" is {state:?}, not ready"));
    }
    e.get("proxy")
        .and_then(Value::as_str)
        .map(|p| p.trim_end_matches('/').to_string())
        .filter(|p| p.starts_with("http://"))
        .ok_or_else(|| format!("model \"{model}\" has no http:// proxy address"))
}

/// Which engine kind (as `infermon agent --engine KIND=URL` names them) serves `base`.
pub(crate) async fn engine_kind(client: &Client, ep: &Endpoint) -> &'static str {
    if matches!(ep.api, Api::OllamaChat | Api::OllamaGenerate) {
        return "ollama";
    }
    let ok_json = |r: &Result<(u16, bytes::Bytes), String>| matches!(r, Ok((200..=299, b)) if serde_json::from_slice::<Value>(b).is_ok());
    if ok_json(&client.get(&format!("{}/running", ep.base)).await) {
        return "llama_swap";
    }
    if ok_json(&client.get(&format!("{}/props", ep.base)).await) {
        return "llamacpp";
    }
    if ok_json(&client.get(&format!("{}/api/version", ep.base)).await) {
        return "ollama";
    }
    if let Ok((200..=299, b)) = client.get(&format!("{}/metrics", ep.base)).await {
        let t = String::from_utf8_lossy(&b);
        if t.contains("vllm:") {
            return "vllm";
        }
        if t.contains("sglang:") {
            return "sglang";
        }
    }
    if ok_json(&client.get(&format!("{}/api/v0/models", ep.base)).await) {
        return "lm_studio";
    }
    "llamacpp"
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn llama_swap_upstream_of_a_ready_model() {
        let v: Value = serde_json::from_str(
            r#"{"running":[
                {"model":"a","state":"ready","cmd":"llama-server -m /m/a.gguf --port 10001","proxy":"http://127.0.0.1:10001/","ttl":0},
                {"model":"b","state":"starting","proxy":"http://127.0.0.1:10002"}]}"#,
        )
        .unwrap();
        assert_eq!(running_proxy(&v, "a").unwrap(), "http://127.0.0.1:10001");
        assert!(running_proxy(&v, "b").unwrap_err().contains("not ready"));
        assert!(running_proxy(&v, "c").unwrap_err().contains("not running"));
    }

    #[test]
    fn urls_resolve_to_endpoints() {
        let e = endpoint("http://127.0.0.1:8080/", None).unwrap();
        assert_eq!(e.url, "http://127.0.0.1:8080/v1/chat/completions");
        assert_eq!(e.base, "http://127.0.0.1:8080");
        let e = endpoint("http://h:1/v1", Some(Api::OpenaiCompletions)).unwrap();
        assert_eq!(e.url, "http://h:1/v1/completions");
        let e = endpoint("http://h:1/proxy/v1/completions", None).unwrap();
        assert_eq!(
            (e.api, e.base.as_str()),
            (Api::OpenaiCompletions, "http://h:1/proxy")
        );
        let e = endpoint("http://h:11434", Some(Api::OllamaChat)).unwrap();
        assert_eq!(e.url, "http://h:11434/api/chat");
        assert!(endpoint("h:1", None).unwrap_err().contains("http://"));
        assert!(endpoint("http://h:1/x", None)
            .unwrap_err()
            .contains("\"/x\""));
        assert!(endpoint("http://h:1/api/chat", Some(Api::OpenaiChat))
            .unwrap_err()
            .contains("--api"));
    }
}
