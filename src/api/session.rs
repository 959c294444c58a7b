//! `/v1/session`: a browser's login and logout (docs/CONSOLE.md). The
//! cookie carries only the session's random id; `access::sessions` holds
//! what it means. These routes do their own auth: logging in needs none.

use std::sync::Arc;
use std::time::SystemTime;

use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{challenge, credentials, csrf_ok, csrf_refused, source_of, too_many};
use super::error::ErrorBody;
use super::{ApiError, ApiJson, ApiResult, AppState, State};
use crate::access::logins::{shown_addr, shown_name, Verdict};
use crate::access::sessions::{SessionUser, MAX_AGE};

pub const PATH: &str = "/v1/session";
const COOKIE: &str = "jetpack_session";

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(login, whoami, logout))
}

#[derive(Deserialize, ToSchema)]
pub struct Login {
    username: String,
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionView {
    /// Who the session acts as (null when auth is off)
    user: Option<String>,
    /// Repeat it as `X-CSRF-Token` on every request that changes something
    /// (empty when auth is off or the request used HTTP Basic)
    csrf: String,
    /// RFC 3339: when the session ends at the latest (null without one)
    expires: Option<String>,
    /// Whether the server asks for credentials at all
    auth: bool,
}

impl SessionView {
    fn of(s: &SessionUser) -> SessionView {
        SessionView {
            user: Some(s.user.clone()),
            csrf: s.csrf.clone(),
            expires: Some(rfc3339(s.expires)),
            auth: true,
        }
    }

    fn auth_off() -> SessionView {
        SessionView {
            user: None,
            csrf: String::new(),
            expires: None,
            auth: false,
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The session id the request's cookie carries, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn set_cookie(state: &AppState, value: &str, max_age: u64) -> HeaderValue {
    let secure = if state.tls { "; Secure" } else { "" };
    let text =
        format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    // Only hex and fixed text: always a valid header value.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Log in: a session cookie for a user of the htpasswd file
#[utoipa::path(post, path = "/v1/session", tag = "session", request_body = Login,
    responses((status = 200, body = SessionView, description = "logged in; `Set-Cookie: jetpack_session`"),
        (status = 401, body = ErrorBody, description = "bad user or password"),
        (status = 429, body = ErrorBody, description = "too many failed logins")))]
async fn login(
    state: State,
    extensions: Extensions,
    ApiJson(body): ApiJson<Login>,
) -> ApiResult<Response> {
    let Some(users) = state.users.clone() else {
        return Ok(Json(SessionView::auth_off()).into_response());
    };
    let from = source_of(&extensions);
    match state
        .logins
        .check(&users, from, &body.username, &body.password)
        .await
    {
        Verdict::In => {}
        Verdict::Refused => {
            tracing::info!(
                user = %shown_name(&body.username),
                from = %shown_addr(from),
                "console login refused: bad user or password"
            );
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "bad user or password",
            ));
        }
        Verdict::Throttled(wait) => return Ok(too_many(wait)),
    }
    let opened = state
        .sessions
        .open(&users, &body.username)
        .map_err(ApiError::internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "bad user or password",
            )
        })?;
    tracing::info!(user = %shown_name(&body.username), from = %shown_addr(from), "console login");
    let mut response = Json(SessionView::of(&opened.user)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&state, &opened.id, MAX_AGE.as_secs()),
    );
    Ok(response)
}

/// Who the request's session (or HTTP Basic credentials) acts as
#[utoipa::path(get, path = "/v1/session", tag = "session",
    responses((status = 200, body = SessionView), (status = 401, body = ErrorBody)))]
async fn whoami(state: State, extensions: Extensions, headers: HeaderMap) -> Response {
    let Some(users) = state.users.clone() else {
        return Json(SessionView::auth_off()).into_response();
    };
    if let Some(session) = cookie(&headers).and_then(|id| state.sessions.check(&users, id)) {
        return Json(SessionView::of(&session)).into_response();
    }
    if let Some((user, password)) = credentials(&headers) {
        let from = source_of(&extensions);
        match state.logins.check(&users, from, &user, &password).await {
            Verdict::In => {
                return Json(SessionView {
                    user: Some(user),
                    csrf: String::new(),
                    expires: None,
                    auth: true,
                })
                .into_response()
            }
            Verdict::Throttled(wait) => return too_many(wait),
            Verdict::Refused => {}
        }
    }
    challenge(&headers, "no session: log in")
}

/// Log out: the session ends on the server and the cookie is cleared
#[utoipa::path(delete, path = "/v1/session", tag = "session",
    responses((status = 204, description = "no session any more"),
        (status = 403, body = ErrorBody, description = "a live session without its X-CSRF-Token")))]
async fn logout(state: State, headers: HeaderMap) -> Response {
    if let (Some(users), Some(id)) = (state.users.as_ref(), cookie(&headers)) {
        if let Some(session) = state.sessions.check(users, id) {
            if !csrf_ok(&headers, &session) {
                return csrf_refused();
            }
            state.sessions.close(id);
        }
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, set_cookie(&state, "", 0))],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        assert_eq!(cookie(&h), None);
        h.insert(
            header::COOKIE,
            "a=1; jetpack_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "x=1".parse().unwrap());
        h.append(header::COOKIE, "jetpack_session=def".parse().unwrap());
        assert_eq!(cookie(&h), Some("def"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, "jetpack_sessionx=1".parse().unwrap());
        assert_eq!(cookie(&h), None);
    }
}
