//! `/api/v1/reports`: the bench reports saved in the agent's `<data dir>/reports` (what
//! `infermon bench --save` writes), listed with their headline figures, and one by name as
//! its JSON (the dashboard's Bench view renders it). Files are read when asked for; the agent
//! keeps nothing about them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use infermon_bench::report::library;
use serde_json::json;

use crate::{ApiError, AppState};

/// `GET /api/v1/reports`: `{"dir": PATH|null, "reports": [Entry, …]}`, newest first.
pub async fn list(State(st): State<AppState>) -> Result<Response, ApiError> {
    let Some(dir) = st.reports_dir.clone() else {
        return Ok(Json(json!({"dir": null, "reports": []})).into_response());
    };
    let shown = dir.display().to_string();
    let entries = tokio::task::spawn_blocking(move || library::list(&dir))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok(Json(json!({"dir": shown, "reports": entries})).into_response())
}

/// `GET /api/v1/reports/{name}`: the report's JSON; 400 for a name that could not be a
/// report, 404 when there is none, 422 when the file is not a readable report.
pub async fn one(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    library::check_name(&name).map_err(ApiError::bad_request)?;
    let Some(dir) = st.reports_dir.clone() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "this agent has no reports folder",
        ));
    };
    let wanted = name.clone();
    let report = tokio::task::spawn_blocking(move || library::open(&dir, &wanted))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    match report {
        Some(r) => Ok(Json(r).into_response()),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no report named \"{name}\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use infermon_bench::report::json as report_json;
    use infermon_bench::schema::{BenchReport, RunReport};
    use tower::ServiceExt;

    fn app(dir: Option<&std::path::Path>) -> axum::Router {
        crate::app(crate::AppState {
            shared: infermon_agent::Shared::new(None),
            token: None,
            alerts: None,
            allowed_hosts: Vec::new().into(),
            max_streams: 4,
            remote_write: std::sync::Arc::from(Vec::new()),
            reports_dir: dir.map(std::path::Path::to_path_buf),
        })
    }

    async fn get(app: axum::Router, uri: &str) -> (u16, serde_json::Value) {
        let req = Request::builder()
            .uri(uri)
            .header("host", "127.0.0.1:7411")
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        let status = res.status().as_u16();
        let body = axum::body::to_bytes(res.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn lists_opens_and_refuses_with_the_right_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut run = RunReport {
            started_unix_ms: 42,
            ..RunReport::default()
        };
        run.totals.output_tokens_per_second = Some(9.5);
        report_json::write(&dir.path().join("a.json"), &BenchReport::new(run, None)).unwrap();
        std::fs::write(dir.path().join("bad.json"), "[]").unwrap();

        let (s, list) = get(app(Some(dir.path())), "/api/v1/reports").await;
        assert_eq!(s, 200);
        assert_eq!(list["reports"][0]["name"], "a.json");
        assert_eq!(list["reports"][0]["output_tokens_per_second"], 9.5);
        assert!(list["reports"][1]["error"].is_string(), "{list}");
        let (s, one) = get(app(Some(dir.path())), "/api/v1/reports/a.json").await;
        assert_eq!((s, &one["started_unix_ms"]), (200, &serde_json::json!(42)));
        let (s, e) = get(app(Some(dir.path())), "/api/v1/reports/nope.json").await;
        assert_eq!(s, 404, "{e}");
        let (s, e) = get(app(Some(dir.path())), "/api/v1/reports/bad.json").await;
        assert_eq!(s, 422, "{e}");
        let (s, e) = get(app(Some(dir.path())), "/api/v1/reports/..json").await;
        assert_eq!(s, 400, "{e}");
        assert!(e.to_string().contains("..json"), "{e}");
        let (s, none) = get(app(None), "/api/v1/reports").await;
        assert_eq!((s, &none["dir"]), (200, &serde_json::Value::Null));
    }
}
