//! Shared by the vLLM and SGLang tests: a fake server answering fixed texts per path, and
//! `derive` over two engine readings.
#![allow(dead_code)]

use std::time::Duration;

use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Router;
use infermon_model::raw::EngineRaw;
use infermon_model::testing::empty_sample;
use infermon_model::{derive, DeriveSettings, Snapshot};

/// Request timeout the collectors are built with in these tests.
pub const TIMEOUT: Duration = Duration::from_millis(400);

/// Status that makes the fake hang (well past [`TIMEOUT`]) instead of answering.
pub const HANG: u16 = 0;

/// A fake engine on a free local port.
pub struct Fake {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Fake {
    /// Serves `(path, status, body)`; other paths answer 404.
    pub async fn start(routes: Vec<(&'static str, u16, &'static str)>) -> Fake {
        let app = Router::new().fallback(move |uri: Uri| {
            let hit = routes.iter().find(|(p, _, _)| *p == uri.path()).copied();
            async move {
                match hit {
                    Some((_, HANG, _)) => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        StatusCode::OK.into_response()
                    }
                    Some((_, status, body)) => {
                        (StatusCode::from_u16(status).unwrap(), body).into_response()
                    }
                    None => (StatusCode::NOT_FOUND, "not found").into_response(),
                }
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        Fake { base }
    }
}

/// Derives the snapshot of `cur` taken `ms` after `prev`.
pub fn derive_pair(prev: EngineRaw, cur: EngineRaw, ms: u64) -> Snapshot {
    let mut a = empty_sample(1_000);
    a.engines.push(prev);
    let mut b = empty_sample(1_000 + ms);
    b.engines.push(cur);
    derive(Some(&a), &b, &DeriveSettings::default())
}

/// `a` is present and within 1e-9 of `b`.
pub fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}
