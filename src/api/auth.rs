//! Auth on every API route (unless the server runs with auth off): a
//! browser's session cookie, with its CSRF token on every request that
//! changes something (docs/CONSOLE.md), or HTTP Basic: decode the header,
//! ask `access::logins` whether the user and password tried from the
//! source address get in, and map its verdict to the request going on, 401
//! with a challenge, or 429 with Retry-After. The rules themselves
//! (throttles, the bcrypt pool, sessions) live in `access`, which knows no
//! HTTP.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::{ApiError, AppState};
use crate::access::logins::{shown_addr, shown_name, throttled_addr, Verdict};
use crate::access::sessions::SessionUser;
use crate::metrics::figures::AuthFailure;

fn failed(why: AuthFailure) {
    crate::metrics::figures().api.auth_failed(why);
}

/// The source address as throttled (`access::logins::throttled_addr`);
/// None when the listener gave none.
pub fn source(req: &Request) -> Option<IpAddr> {
    source_of(req.extensions())
}

pub fn source_of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    let ConnectInfo(addr) = extensions.get::<ConnectInfo<SocketAddr>>()?;
    Some(throttled_addr(addr.ip()))
}

pub fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
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

/// The header the web console sends with every request.
pub const FROM_CONSOLE: &str = "x-requested-with";
/// The header that repeats a session's CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A 401; with a Basic challenge unless the web console asked (a browser
/// would answer the challenge with its own login popup, over the
/// console's).
pub fn challenge(headers: &HeaderMap, message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    if headers.contains_key(FROM_CONSOLE) || super::session::cookie(headers).is_some() {
        return response;
    }
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"jetpack\", charset=\"UTF-8\""),
    );
    response
}

pub fn too_many(wait: Duration) -> Response {
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

/// Whether a request may change something: only these need the CSRF
/// token (GET and HEAD must not change anything).
fn mutates(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether the request repeats its session's CSRF token.
pub fn csrf_ok(headers: &HeaderMap, session: &SessionUser) -> bool {
    headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|token| session.csrf_matches(token))
}

pub fn csrf_refused() -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "csrf",
        "a request with the session cookie that changes something must carry the session's \
         X-CSRF-Token header",
    )
    .into_response()
}

pub async fn require(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    // Another host of the fleet, sending on what its user asked
    // (api/forward.rs): served as this host's own, never sent on again.
    if let Some(given) = req.headers().get(crate::hosts::peer::SECRET_HEADER) {
        if !state.hosts.is_fleet_secret(given.as_bytes()) {
            failed(AuthFailure::Refused);
            tracing::info!(from = %shown_addr(source(&req)), "refused: a bad fleet secret");
            return challenge(req.headers(), "bad fleet secret");
        }
        req.extensions_mut().insert(super::forward::FromPeer);
        return next.run(req).await;
    }
    let Some(users) = state.users.clone() else {
        return next.run(req).await;
    };
    if req.uri().path() == super::session::PATH {
        // Logging in needs no credentials; the session routes check
        // their own.
        return next.run(req).await;
    }
    if let Some(id) = super::session::cookie(req.headers()) {
        match state.sessions.check(&users, id) {
            Some(session) => {
                if mutates(req.method()) && !csrf_ok(req.headers(), &session) {
                    failed(AuthFailure::Csrf);
                    return csrf_refused();
                }
                req.extensions_mut().insert(session);
                return next.run(req).await;
            }
            None if credentials(req.headers()).is_none() => {
                failed(AuthFailure::SessionEnded);
                return challenge(req.headers(), "the session has ended: log in again");
            }
            None => {}
        }
    }
    let Some((user, password)) = credentials(req.headers()) else {
        failed(AuthFailure::Missing);
        return challenge(req.headers(), "authentication required (HTTP Basic)");
    };
    let from = source(&req);
    match state.logins.check(&users, from, &user, &password).await {
        Verdict::In => next.run(req).await,
        Verdict::Refused => {
            failed(AuthFailure::Refused);
            tracing::info!(
                user = %shown_name(&user),
                from = %shown_addr(from),
                "refused: bad user or password"
            );
            challenge(req.headers(), "bad user or password")
        }
        Verdict::Throttled(wait) => {
            failed(AuthFailure::Throttled);
            too_many(wait)
        }
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
