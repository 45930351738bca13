//! The dashboard's files, embedded at build time (`build.rs` gzips them and names their
//! version): `/` serves `index.html`, `/assets/VERSION/NAME` the rest.
//!
//! Every answer carries a Content-Security-Policy that allows nothing but this agent (no
//! inline script, no other host), `nosniff` and `no-referrer`. Assets under the current
//! version are cached for a year (their URL changes when they do); `index.html` is revalidated
//! each time through its ETag. Gzip goes to clients that accept it.

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::ApiError;

/// One embedded file.
pub struct Asset {
    /// File name.
    pub name: &'static str,
    /// Content type.
    pub mime: &'static str,
    /// The file.
    pub raw: &'static [u8],
    /// The file gzipped.
    pub gz: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The page's policy: scripts, styles, data and images only from this agent; no frames, no
/// forms, no plugins. uPlot sets element styles from script, which `style-src` does not govern.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; font-src 'self'; \
                       base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `/`: the dashboard page.
pub async fn index(headers: HeaderMap) -> Response {
    serve(&INDEX, &headers, "no-cache")
}

/// `/` of the hub: its page (the same assets, `fleet.js` its module).
pub async fn hub_index(headers: HeaderMap) -> Response {
    serve(&HUB_PAGE, &headers, "no-cache")
}

/// `/assets/{version}/{name}`.
pub async fn asset(Path((version, name)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let found = ASSETS.iter().find(|a| a.name == name);
    match found {
        Some(a) if version == VERSION => serve(a, &headers, "public, max-age=31536000, immutable"),
        // An older page asking for this build's file: serve it, but do not let it stick.
        Some(a) => serve(a, &headers, "no-cache"),
        None => {
            ApiError::new(StatusCode::NOT_FOUND, format!("no asset \"{name}\"")).into_response()
        }
    }
}

/// The strong ETag of an asset: the build's version and the file's name.
fn etag(a: &Asset) -> String {
    format!("\"{VERSION}-{}\"", a.name)
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|enc| {
            let mut parts = enc.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| p.replace(' ', "") == "q=0");
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn serve(a: &'static Asset, headers: &HeaderMap, cache: &'static str) -> Response {
    let tag = etag(a);
    let mut res = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else if accepts_gzip(headers) {
        let mut r = a.gz.into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        a.raw.into_response()
    };
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// Whether a path is part of the dashboard's page (`/`, `/assets/…`): static files that carry
/// no data, served without the bearer token so a browser can load them.
pub fn is_page(path: &str) -> bool {
    path == "/" || path.starts_with("/assets/")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // test code

    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, HeaderValue::from_str(v).unwrap());
        }
        m
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&h(&[(
            "accept-encoding",
            "gzip, deflate, br"
        )])));
        assert!(accepts_gzip(&h(&[(
            "accept-encoding",
            "br;q=1.0, GZIP;q=0.5"
        )])));
        assert!(accepts_gzip(&h(&[("accept-encoding", "*")])));
        assert!(!accepts_gzip(&h(&[("accept-encoding", "gzip;q=0")])));
        assert!(!accepts_gzip(&h(&[("accept-encoding", "identity")])));
        assert!(!accepts_gzip(&h(&[])));
    }

    #[test]
    fn every_asset_is_embedded_and_the_page_names_this_version() {
        let page = std::str::from_utf8(INDEX.raw).unwrap();
        assert!(!page.contains("{{version}}"));
        assert!(page.contains(&format!("assets/{VERSION}/app.js")), "{page}");
        for a in ASSETS {
            assert!(!a.raw.is_empty(), "{}", a.name);
            // gzip magic, and the trailer's length is the file's.
            assert_eq!(&a.gz[..2], &[0x1f, 0x8b], "{}", a.name);
            let n = a.gz.len();
            let size = u32::from_le_bytes(a.gz[n - 4..].try_into().unwrap());
            assert_eq!(size as usize, a.raw.len(), "{}", a.name);
        }
    }

    fn app(token: Option<&str>) -> axum::Router {
        crate::app(crate::AppState {
            shared: infermon_agent::Shared::new(None),
            token: token.map(Into::into),
            alerts: None,
            allowed_hosts: Vec::new().into(),
            max_streams: 4,
            remote_write: std::sync::Arc::from(Vec::new()),
            reports_dir: None,
        })
    }

    async fn get(
        app: axum::Router,
        uri: &str,
        pairs: &[(&'static str, &str)],
    ) -> axum::response::Response {
        use tower::ServiceExt;
        let mut req = axum::http::Request::builder().uri(uri);
        for (k, v) in pairs {
            req = req.header(*k, *v);
        }
        app.oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn page_and_assets_are_served_with_policy_cache_and_gzip() {
        let host = ("host", "127.0.0.1:7411");
        let res = get(app(None), "/", &[host]).await;
        assert_eq!(res.status(), 200);
        let hd = res.headers();
        assert_eq!(hd[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(hd[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(hd[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(hd[header::CACHE_CONTROL], "no-cache");
        assert!(hd.get(header::CONTENT_ENCODING).is_none());

        let uri = format!("/assets/{VERSION}/app.js");
        let gz = [host, ("accept-encoding", "gzip")];
        let res = get(app(None), &uri, &gz).await;
        assert_eq!(res.status(), 200);
        let hd = res.headers();
        assert_eq!(hd[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(hd[header::CONTENT_ENCODING], "gzip");
        assert!(hd[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let tag = hd[header::ETAG].to_str().unwrap().to_string();
        let res = get(app(None), &uri, &[host, ("if-none-match", &tag)]).await;
        assert_eq!(res.status(), 304);

        // Another build's page gets this build's file, but not for good.
        let res = get(app(None), "/assets/0000/style.css", &[host]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-cache");
        let res = get(app(None), &format!("/assets/{VERSION}/nope.js"), &[host]).await;
        assert_eq!(res.status(), 404);
    }

    #[tokio::test]
    async fn the_page_needs_no_token_but_its_data_does_and_both_need_a_good_host() {
        let host = ("host", "localhost:7411");
        let asset = format!("/assets/{VERSION}/api.js");
        for uri in ["/", asset.as_str()] {
            assert_eq!(get(app(Some("s3cret")), uri, &[host]).await.status(), 200);
            let evil = [("host", "evil.example:7411")];
            assert_eq!(get(app(Some("s3cret")), uri, &evil).await.status(), 421);
        }
        for uri in ["/api/v1/series", "/api/v1/snapshot", "/metrics"] {
            assert_eq!(get(app(Some("s3cret")), uri, &[host]).await.status(), 401);
        }
        let ok = [host, ("authorization", "Bearer s3cret")];
        // No sample yet, but past the guard.
        assert_eq!(
            get(app(Some("s3cret")), "/api/v1/series", &ok)
                .await
                .status(),
            503
        );
    }

    #[test]
    fn page_paths() {
        assert!(is_page("/"));
        assert!(is_page("/assets/abc/app.js"));
        assert!(!is_page("/api/v1/snapshot"));
        assert!(!is_page("/metrics"));
        assert!(!is_page("/assetsx"));
    }
}
