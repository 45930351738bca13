//! LM Studio collector: `/api/v0/models` fixture parsing and full reads against a fake server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::time::Duration;

use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use infermon_engines::lmstudio::{parse_models, LmStudio, NO_COUNTERS_REASON};
use infermon_engines::ollama::NO_PROXY_NOTE;
use infermon_model::raw::EngineKind;

const MODELS: &str = include_str!("fixtures/lmstudio/models.json");

#[test]
fn models_fixture_keeps_language_models() {
    let m = parse_models(MODELS).unwrap();
    let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["qwen2-vl-7b-instruct", "meta-llama-3.1-8b-instruct"]
    );
    assert_eq!(m[0].state, "not-loaded");
    assert_eq!(
        m[0].context_length, None,
        "max_context_length is not a loaded context"
    );
    assert_eq!(m[0].quantization.as_deref(), Some("4bit"));
    assert_eq!(m[1].state, "loaded");
    assert_eq!(m[1].context_length, Some(16384));
    assert_eq!(m[1].quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!((m[1].size_bytes, m[1].vram_bytes), (None, None));
}

async fn serve(body: &'static str) -> String {
    let app = Router::new().fallback(move |uri: Uri| async move {
        match uri.path() {
            "/api/v0/models" => (StatusCode::OK, body).into_response(),
            _ => (StatusCode::NOT_FOUND, "Unexpected endpoint").into_response(),
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    url
}

#[tokio::test]
async fn full_read() {
    let url = serve(MODELS).await;
    let r = LmStudio::new(&url, "discovered", Duration::from_secs(2))
        .read()
        .await;
    assert_eq!(r.kind, EngineKind::LmStudio);
    let h = r.health.value().unwrap();
    assert_eq!((h.http_status, h.status.as_str()), (200, "ok"));
    assert_eq!(r.props.value().unwrap().model, "meta-llama-3.1-8b-instruct");
    assert_eq!(r.models.as_ref().unwrap().value().unwrap().len(), 2);
    assert_eq!(r.metrics.reason(), Some(NO_COUNTERS_REASON));
    assert_eq!(r.notes, vec![NO_PROXY_NOTE.to_string()]);
}

#[tokio::test]
async fn none_loaded() {
    let url = serve(
        r#"{"object":"list","data":[{"id":"a","type":"llm","state":"not-loaded","max_context_length":4096}]}"#,
    )
    .await;
    let r = LmStudio::new(&url, "config", Duration::from_secs(2))
        .read()
        .await;
    assert_eq!(r.props.value().unwrap().model, "none loaded");
}

#[tokio::test]
async fn html_answer_is_unhealthy_and_models_unavailable() {
    let url = serve("<!DOCTYPE html><html><body>proxy login</body></html>").await;
    let r = LmStudio::new(&url, "config", Duration::from_secs(2))
        .read()
        .await;
    let h = r.health.value().unwrap();
    assert_ne!(h.status, "ok");
    assert!(h.status.contains("not JSON"), "{}", h.status);
    let reason = r.models.as_ref().unwrap().reason().unwrap();
    assert!(reason.contains(&format!("{url}/api/v0/models")), "{reason}");
    assert!(r.props.reason().is_some());
}
