//! HTTP Basic on every route (unless the server runs with auth off):
//! decode the header, check it against the users (bcrypt on a cache miss,
//! on a blocking thread), answer 401 with a challenge otherwise.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::{ApiError, AppState};

fn credentials(req: &Request) -> Option<(String, String)> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn challenge(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"jetpack\", charset=\"UTF-8\""),
    );
    response
}

pub async fn require(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(users) = state.users.clone() else {
        return next.run(req).await;
    };
    let Some((user, password)) = credentials(&req) else {
        return challenge("authentication required (HTTP Basic)");
    };
    if users.cached(&user, &password) {
        return next.run(req).await;
    }
    let who = user.clone();
    let ok = tokio::task::spawn_blocking(move || users.verify(&user, &password))
        .await
        .unwrap_or(false);
    if !ok {
        tracing::info!(user = %who, "refused: bad user or password");
        return challenge("bad user or password");
    }
    next.run(req).await
}
