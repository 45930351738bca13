//! Host check (DNS rebinding), Origin check on state-changing methods, and bearer token.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, AppState};

/// Where an operator allows a host name, for error messages.
const HOW_TO_ALLOW: &str =
    "allowed_hosts under [agent] in the config, INFERMON_ALLOWED_HOSTS or --allowed-host";

/// Refuses foreign Host names, cross-site state-changing requests and, with a token
/// configured, requests without it. The dashboard's static files (`/`, `/assets/…`) carry no
/// data and are read without the token (a browser loading a page or a module cannot send a
/// header); the page then sends the token on every API request.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Err(e) = check(req.method(), req.headers(), &state.allowed_hosts) {
        tracing::warn!(
            method = %req.method(),
            path = req.uri().path(),
            status = e.status.as_u16(),
            "refused API request: {}",
            e.message
        );
        return e.into_response();
    }
    let static_page = matches!(*req.method(), Method::GET | Method::HEAD)
        && crate::assets::is_page(req.uri().path());
    if let Some(token) = state.token.as_ref().filter(|_| !static_page) {
        let given = bearer(req.headers());
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
                .into_response();
        }
    }
    next.run(req).await
}

/// The bearer token of a request, if it carries one.
pub(crate) fn bearer(h: &axum::http::HeaderMap) -> Option<&str> {
    h.get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// The Host and Origin checks, without the token: `Err` is the answer to send.
///
/// Host: a loopback name, an IP literal or one of `allowed` (lowercase, no port) passes; a
/// missing Host header passes too (HTTP/1.0), anything else is 421. Origin: on methods other
/// than GET, HEAD and OPTIONS, an `Origin` header must name an allowed host, and the same host
/// as the Host header, else 403.
pub fn check(method: &Method, headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let host = match headers.get(header::HOST) {
        None => "",
        Some(v) => v.to_str().map_err(|_| {
            ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "the Host header is not visible ASCII: expected an IP address, localhost or a \
                 host name in allowed_hosts",
            )
        })?,
    };
    if !host_allowed(host, allowed) {
        return Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "host \"{host}\" is not allowed: use an IP address or localhost, or add \"{}\" to \
                 {HOW_TO_ALLOW}",
                host_name(host)
            ),
        ));
    }
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("<not ASCII>");
    let origin_host = origin_host(origin);
    let ok = origin_host
        .as_deref()
        .is_some_and(|o| name_allowed(o, allowed) && o == host_name(host));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "origin \"{origin}\" may not send {method} requests here: expected an http(s) \
                 origin on the host the request is addressed to (\"{}\"), which must be an IP \
                 address, localhost or a name in {HOW_TO_ALLOW}",
                host_name(host)
            ),
        ))
    }
}

/// Loopback names, IP literals and the allowed names pass (the port is ignored); any other
/// name could be a rebinding attack. An empty Host (HTTP/1.0) passes.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    host.is_empty() || name_allowed(&host_name(host), allowed)
}

fn name_allowed(name: &str, allowed: &[String]) -> bool {
    name == "localhost"
        || name.parse::<std::net::IpAddr>().is_ok()
        || allowed.iter().any(|a| a == name)
}

/// The name of a `Host` value: without port or IPv6 brackets, lowercase, no trailing dot.
fn host_name(host: &str) -> String {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else if host.parse::<std::net::IpAddr>().is_ok() {
        host
    } else {
        host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The host name of an `Origin` (`scheme://host[:port]`); `None` for `null` or anything not
/// http(s).
fn origin_host(origin: &str) -> Option<String> {
    let lower = origin.to_ascii_lowercase();
    let authority = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))?;
    let authority = authority.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(host_name(authority))
}

pub(crate) use infermon_model::names::secrets_equal as constant_time_eq;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code

    use super::*;
    use axum::body::Body;
    use axum::http::HeaderValue;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    fn allowed() -> Vec<String> {
        vec!["inferbox.local".to_string()]
    }

    #[test]
    fn hosts() {
        let none: &[String] = &[];
        assert!(host_allowed("127.0.0.1:7411", none));
        assert!(host_allowed("localhost:7411", none));
        assert!(host_allowed("LOCALHOST", none));
        assert!(host_allowed("[::1]:7411", none));
        assert!(host_allowed("::1", none));
        assert!(host_allowed("10.1.2.3:7411", none));
        assert!(host_allowed("", none));
        assert!(!host_allowed("evil.example.com:7411", none));
        assert!(!host_allowed("localhost.evil.com", none));
        assert!(!host_allowed("inferbox.local:7411", none));
        let a = allowed();
        assert!(host_allowed("inferbox.local:7411", &a));
        assert!(host_allowed("InferBox.Local", &a));
        assert!(host_allowed("inferbox.local.:80", &a));
        assert!(!host_allowed("inferbox.local.evil.com", &a));
        assert!(!host_allowed("xinferbox.local", &a));
        assert!(!host_allowed("evil.example.com", &a));
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn refused_host_names_the_host_and_the_setting() {
        let e = check(
            &Method::GET,
            &headers(&[("host", "Box.lan:7411")]),
            &allowed(),
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::MISDIRECTED_REQUEST);
        assert_eq!(
            e.message,
            "host \"Box.lan:7411\" is not allowed: use an IP address or localhost, or add \
             \"box.lan\" to allowed_hosts under [agent] in the config, INFERMON_ALLOWED_HOSTS \
             or --allowed-host"
        );
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_bytes(b"caf\xe9.lan").unwrap());
        let e = check(&Method::GET, &h, &allowed()).unwrap_err();
        assert_eq!(e.status, StatusCode::MISDIRECTED_REQUEST);
    }

    #[test]
    fn origin_only_matters_for_state_changing_methods() {
        let a = allowed();
        let evil = [
            ("host", "inferbox.local:7411"),
            ("origin", "https://evil.com"),
        ];
        assert!(check(&Method::GET, &headers(&evil), &a).is_ok());
        assert!(check(&Method::HEAD, &headers(&evil), &a).is_ok());
        assert!(check(&Method::OPTIONS, &headers(&evil), &a).is_ok());
        for m in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let e = check(&m, &headers(&evil), &a).unwrap_err();
            assert_eq!(e.status, StatusCode::FORBIDDEN, "{m}");
            assert!(
                e.message.contains("origin \"https://evil.com\""),
                "{}",
                e.message
            );
        }
        let post = |pairs: &[(&'static str, &str)]| check(&Method::POST, &headers(pairs), &a);
        // No Origin: not a browser's cross-site request.
        assert!(post(&[("host", "inferbox.local:7411")]).is_ok());
        assert!(post(&[
            ("host", "inferbox.local:7411"),
            ("origin", "http://InferBox.local:7411")
        ])
        .is_ok());
        assert!(post(&[
            ("host", "127.0.0.1:7411"),
            ("origin", "http://127.0.0.1:3000")
        ])
        .is_ok());
        assert!(post(&[("host", "[::1]:7411"), ("origin", "http://[::1]:7411")]).is_ok());
        for bad in [
            "null",
            "file://",
            "http://localhost:7411",
            "http://inferbox.local.evil.com",
            "http://user@inferbox.local",
            "ftp://inferbox.local",
        ] {
            let e = post(&[("host", "inferbox.local:7411"), ("origin", bad)]).unwrap_err();
            assert_eq!(e.status, StatusCode::FORBIDDEN, "{bad}");
        }
        // An allowed origin on another host than the request's.
        let e = post(&[
            ("host", "127.0.0.1:7411"),
            ("origin", "http://inferbox.local"),
        ]);
        assert_eq!(e.unwrap_err().status, StatusCode::FORBIDDEN);
        // No Host but an Origin: refused.
        let e = post(&[("origin", "http://127.0.0.1")]);
        assert_eq!(e.unwrap_err().status, StatusCode::FORBIDDEN);
    }

    fn state() -> AppState {
        AppState {
            shared: infermon_agent::Shared::new(None),
            token: None,
            alerts: None,
            allowed_hosts: allowed().into(),
            max_streams: 4,
            remote_write: std::sync::Arc::from(Vec::new()),
            reports_dir: None,
        }
    }

    async fn status(router: Router, method: &str, host: &str, origin: Option<&str>) -> u16 {
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri("/api/v1/snapshot")
            .header("host", host);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = router
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        res.status().as_u16()
    }

    /// A state-changing route behind the same guard, as any future one will be.
    #[tokio::test]
    async fn post_route_checks_origin() {
        let router = Router::new()
            .route("/api/v1/snapshot", post(|| async { "changed" }))
            .layer(axum::middleware::from_fn_with_state(state(), guard));
        let r = || router.clone();
        let host = "inferbox.local:7411";
        assert_eq!(status(r(), "POST", host, None).await, 200);
        assert_eq!(
            status(r(), "POST", host, Some("http://inferbox.local:7411")).await,
            200
        );
        assert_eq!(
            status(r(), "POST", host, Some("https://evil.example")).await,
            403
        );
        assert_eq!(status(r(), "POST", "evil.example", None).await, 421);
    }

    #[tokio::test]
    async fn app_guards_every_route() {
        let app = || crate::app(state());
        let host = "inferbox.local:7411";
        assert_eq!(status(app(), "GET", "evil.example:7411", None).await, 421);
        // GET ignores Origin; the snapshot is not there yet (503) but the guard let it by.
        let got = status(app(), "GET", host, Some("https://evil.example")).await;
        assert_ne!(got, 403);
        assert_ne!(got, 421);
        assert_eq!(
            status(app(), "POST", host, Some("https://evil.example")).await,
            403
        );
        // Same-origin POST passes the guard and meets the GET-only route: 405.
        assert_eq!(
            status(app(), "POST", host, Some("http://inferbox.local")).await,
            405
        );
    }
}
