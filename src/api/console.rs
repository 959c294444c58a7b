//! The web console's files (docs/CONSOLE.md): the bundle built from
//! `gui/` into `gui/dist/`, embedded in the binary so that the server needs
//! nothing beside it. `/` is the page, `/assets/…` the files it loads, named
//! by their content hash and so cached for good; each is sent as its
//! precompressed brotli or gzip sibling when the browser takes one. The
//! files hold no data and need no credentials; everything they show comes
//! from the API, which does. A strict Content-Security-Policy keeps the
//! page to its own scripts and styles and this origin.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{ApiError, AppState};

#[derive(rust_embed::Embed)]
#[folder = "gui/dist/"]
#[allow_missing = true]
struct Bundle;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   font-src 'self'; connect-src 'self'; manifest-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

/// Files named by their content: they never change under one name.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The page itself names the current assets: always asked again (a 304
/// when unchanged).
const REVALIDATE: &str = "no-cache";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(page))
        .route("/index.html", get(page))
        .route("/assets/{*path}", get(asset))
}

async fn page(headers: HeaderMap) -> Response {
    serve("index.html", REVALIDATE, &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    // Only the plain files are named; their compressed siblings are chosen
    // here, by Accept-Encoding.
    if path.ends_with(".br") || path.ends_with(".gz") {
        return ApiError::not_found("no such file in the web console").into_response();
    }
    serve(&format!("assets/{path}"), IMMUTABLE, &headers)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") | Some("map") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// The encodings the client takes, best first: brotli, then gzip.
fn accepted(headers: &HeaderMap) -> Vec<(&'static str, &'static str)> {
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let takes = |name: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    == Some(0.0)
            });
            coding.eq_ignore_ascii_case(name) && !refused
        })
    };
    [("br", ".br"), ("gzip", ".gz")]
        .into_iter()
        .filter(|(name, _)| takes(name))
        .collect()
}

fn serve(path: &str, cache: &'static str, headers: &HeaderMap) -> Response {
    let Some(plain) = Bundle::get(path) else {
        let message = if Bundle::get("index.html").is_none() {
            "the web console was not built into this binary (gui/dist/ was missing)"
        } else {
            "no such file in the web console"
        };
        return ApiError::not_found(message).into_response();
    };
    let etag = format!(
        "\"{}\"",
        plain
            .metadata
            .sha256_hash()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let mut response = if crate::net::conditional::if_none_match(headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let compressed = accepted(headers)
            .into_iter()
            .find_map(|(name, suffix)| Bundle::get(&format!("{path}{suffix}")).map(|f| (name, f)));
        match compressed {
            Some((name, file)) => (
                [(header::CONTENT_ENCODING, HeaderValue::from_static(name))],
                file.data.into_owned(),
            )
                .into_response(),
            None => plain.data.into_owned().into_response(),
        }
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
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
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, accept.parse().unwrap());
        h
    }

    #[test]
    fn brotli_then_gzip_unless_refused() {
        let names = |h: &HeaderMap| accepted(h).iter().map(|(n, _)| *n).collect::<Vec<_>>();
        assert_eq!(names(&with("gzip, deflate, br, zstd")), ["br", "gzip"]);
        assert_eq!(names(&with("gzip")), ["gzip"]);
        assert_eq!(names(&with("br;q=0, gzip;q=0.5")), ["gzip"]);
        assert_eq!(names(&with("identity")), Vec::<&str>::new());
        assert_eq!(names(&HeaderMap::new()), Vec::<&str>::new());
    }

    #[test]
    fn types_by_extension() {
        assert_eq!(
            content_type("assets/app-1.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("index.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("x"), "application/octet-stream");
    }
}
