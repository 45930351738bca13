//! Ollama collector: `/api/ps` fixture parsing and full reads against a small fake server.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use infermon_engines::ollama::{parse_ps, Ollama, NO_COUNTERS_REASON, NO_PROXY_NOTE};
use infermon_model::raw::{EngineKind, Reading};

const PS: &str = include_str!("fixtures/ollama/ps.json");

#[test]
fn ps_fixture_full_and_partial_offload() {
    let m = parse_ps(PS).unwrap();
    assert_eq!(m.len(), 2);
    let qwen = &m[0];
    assert_eq!(qwen.name, "qwen3:8b");
    assert_eq!(qwen.state, "loaded");
    assert_eq!(qwen.size_bytes, Some(6_654_386_176));
    assert_eq!(qwen.vram_bytes, qwen.size_bytes, "fully in VRAM");
    assert_eq!(qwen.context_length, Some(8192));
    assert_eq!(qwen.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(qwen.parameter_size.as_deref(), Some("8.2B"));
    // 10:42:17.483921356+02:00 is 08:42:17.483 UTC
    assert_eq!(qwen.expires_unix_ms, Some(1_752_482_537_483));
    assert_eq!(qwen.upstream, None);

    let llama = &m[1];
    assert_eq!(llama.name, "llama3.1:70b");
    assert!(
        llama.size_bytes.unwrap() > llama.vram_bytes.unwrap(),
        "partly offloaded"
    );
    assert_eq!(llama.vram_bytes, Some(23_622_320_128));
    assert_eq!(llama.expires_unix_ms, Some(1_752_482_823_051));
    assert_eq!(llama.parameter_size.as_deref(), Some("70.6B"));
}

/// What the fake server does for each path; every asked path is recorded.
#[derive(Clone, Copy)]
enum Mode {
    Normal,
    PsHangs,
    VersionHtml,
}

async fn serve(mode: Mode) -> (String, Arc<Mutex<Vec<String>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&asked);
    let app = Router::new().fallback(move |uri: Uri| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().unwrap().push(uri.path().to_string());
            match (uri.path(), mode) {
                ("/api/version", Mode::VersionHtml) => {
                    (StatusCode::OK, "<!DOCTYPE html><html>sign in</html>").into_response()
                }
                ("/api/version", _) => (StatusCode::OK, r#"{"version":"0.9.6"}"#).into_response(),
                ("/api/ps", Mode::PsHangs) => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    (StatusCode::OK, PS).into_response()
                }
                ("/api/ps", _) => (StatusCode::OK, PS).into_response(),
                _ => (StatusCode::NOT_FOUND, "404 page not found").into_response(),
            }
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, asked)
}

#[tokio::test]
async fn full_read() {
    let (url, asked) = serve(Mode::Normal).await;
    let c = Ollama::new(&format!("{url}/"), "config", Duration::from_secs(2));
    assert_eq!(c.base(), url);
    let r = c.read().await;
    assert_eq!(r.kind, EngineKind::Ollama);
    assert_eq!(r.instance, url);
    assert_eq!(r.origin, "config");
    let h = r.health.value().unwrap();
    assert_eq!((h.http_status, h.status.as_str()), (200, "ok"));
    let p = r.props.value().unwrap();
    assert_eq!(p.model, "qwen3:8b, llama3.1:70b");
    assert_eq!(p.build_info.as_deref(), Some("0.9.6"));
    assert_eq!(p.n_ctx, None, "two models: no single context");
    let models = r.models.as_ref().unwrap().value().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(r.metrics.reason(), Some(NO_COUNTERS_REASON));
    assert_eq!(r.notes, vec![NO_PROXY_NOTE.to_string()]);
    assert!(r.events.is_empty());
    let mut asked = asked.lock().unwrap().clone();
    asked.sort();
    assert_eq!(asked, ["/api/ps", "/api/version"]);
}

#[tokio::test]
async fn hanging_ps_is_only_that_reading() {
    let (url, _) = serve(Mode::PsHangs).await;
    let c = Ollama::new(&url, "config", Duration::from_millis(300));
    let started = std::time::Instant::now();
    let r = c.read().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(r.health.value().unwrap().status, "ok");
    let reason = r.models.as_ref().unwrap().reason().unwrap();
    assert!(reason.contains(&format!("{url}/api/ps")), "{reason}");
    assert!(reason.contains("timed out"), "{reason}");
    assert_eq!(r.props.reason(), Some(reason));
}

#[tokio::test]
async fn html_version_is_unhealthy_but_models_still_read() {
    let (url, _) = serve(Mode::VersionHtml).await;
    let r = Ollama::new(&url, "config", Duration::from_secs(2))
        .read()
        .await;
    let h = r.health.value().unwrap();
    assert_eq!(h.http_status, 200);
    assert!(h.status.contains("not JSON"), "{}", h.status);
    assert_ne!(h.status, "ok");
    assert_eq!(r.props.value().unwrap().build_info, None);
    assert_eq!(r.models.as_ref().unwrap().value().unwrap().len(), 2);
}

#[tokio::test]
async fn nothing_listening_is_unavailable_naming_the_url() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let r = Ollama::new(&url, "config", Duration::from_secs(1))
        .read()
        .await;
    assert!(matches!(&r.health, Reading::Unavailable { reason } if reason.contains(&url)));
    let reason = r.models.as_ref().unwrap().reason().unwrap();
    assert!(reason.contains(&format!("{url}/api/ps")), "{reason}");
}
