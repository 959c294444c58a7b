//! HTTP Basic on every route (unless the server runs with auth off):
//! decode the header, ask `access::logins` whether the user and password
//! tried from the source address get in, and map its verdict to the
//! request going on, 401 with a challenge, or 429 with Retry-After. The
//! rules themselves (throttles, the bcrypt pool) live in `access`, which
//! knows no HTTP.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::{ApiError, AppState};
use crate::access::logins::{shown_addr, shown_name, throttled_addr, Verdict};

/// The source address as throttled (`access::logins::throttled_addr`);
/// None when the listener gave none.
pub fn source(req: &Request) -> Option<IpAddr> {
    let ConnectInfo(addr) = req.extensions().get::<ConnectInfo<SocketAddr>>()?;
    Some(throttled_addr(addr.ip()))
}

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

fn too_many(wait: Duration) -> Response {
    // Whole seconds, rounded up (Retry-After has no fractions), at least 1.
    let secs = wait
        .as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
        .clamp(1, 3600);
    let mut response = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        format!(
            "too many failed logins from this address or for this user name; retry in {secs} s"
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

pub async fn require(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let Some(users) = state.users.clone() else {
        return next.run(req).await;
    };
    let Some((user, password)) = credentials(&req) else {
        return challenge("authentication required (HTTP Basic)");
    };
    let from = source(&req);
    match state.logins.check(&users, from, &user, &password).await {
        Verdict::In => next.run(req).await,
        Verdict::Refused => {
            tracing::info!(
                user = %shown_name(&user),
                from = %shown_addr(from),
                "refused: bad user or password"
            );
            challenge("bad user or password")
        }
        Verdict::Throttled(wait) => too_many(wait),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn ipv6_sources_are_throttled_by_their_64() {
        let mut req = Request::new(axum::body::Body::empty());
        assert_eq!(source(&req), None);
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from((
            "2001:db8:1:2:3:4:5:6".parse::<IpAddr>().unwrap(),
            443,
        ))));
        assert_eq!(source(&req), ip("2001:db8:1:2::"));
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from((
            "::ffff:10.1.2.3".parse::<IpAddr>().unwrap(),
            443,
        ))));
        assert_eq!(source(&req), ip("10.1.2.3"));
    }
}
