//! The REST API v1 (spec/rest-api.md): one routing table that is also the
//! OpenAPI document, the app state handlers share, and the HTTP-only
//! pieces (auth, content negotiation, list parameters, JSON rejections).
//! Handlers translate HTTP into calls on the catalog, the jobs, the
//! runtime and the hangar's fleet, and their errors into `ApiError`; nothing below knows HTTP.

mod apidocs;
mod auth;
mod bases;
mod bootfiles;
mod builders;
pub use builders::{build_result, prepare_result};
pub use instances::launch_result;
mod console;
mod disks;
mod documents;
pub mod error;
mod events;
mod form;
mod forward;
pub mod guard;
mod hosts;
mod images;
pub mod imageservice;
mod info;
mod instances;
mod jobs;
pub mod metrics;
mod netboot;
#[cfg(test)]
mod openapi_snapshot;
mod pods;
pub mod serve;
mod session;
mod uplinks;
mod upload;
mod volumes;
mod written_body;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde::Deserialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::access::logins::Logins;
use crate::access::sessions::Sessions;
use crate::access::users::Users;
use crate::catalog::Catalog;
use crate::events::Events;
use crate::jobs::Jobs;
use crate::logging::LogRing;
use crate::runtime::Host;
use crate::store::catalog::{ListQuery, Table};
pub use error::{ApiError, ApiResult};

/// What every handler can reach.
pub struct AppState {
    pub name: String,
    pub started: Instant,
    pub started_at: i64,
    pub catalog: Arc<Catalog>,
    pub jobs: Arc<Jobs>,
    pub host: Arc<Host>,
    pub builders: Arc<crate::build::Builders>,
    /// The instances the hangar knows.
    pub fleet: Arc<crate::hangar::fleet::Fleet>,
    /// Hypervisor disks made from images, cached.
    pub disks: Arc<crate::disks::Disks>,
    /// The fleet's hosts (this server's heartbeat among them).
    pub hosts: Arc<crate::hosts::Hosts>,
    /// The instances jetpack launched, in pods.
    pub launches: Arc<crate::launch::service::Launches>,
    /// The ISO and microkernel stores and OS images.
    pub bootfiles: Arc<crate::bootfiles::BootFiles>,
    /// None when auth is off (`--serverauth none`).
    pub users: Option<Arc<Users>>,
    /// Failed-login throttles and the bcrypt pool (`server.login.*`).
    pub logins: Logins,
    /// The web console's logins.
    pub sessions: Sessions,
    /// What `/v1/events` streams.
    pub events: Arc<Events>,
    pub log: Arc<LogRing>,
    pub max_body: usize,
    pub max_upload: u64,
    pub tls: bool,
    pub hangar_url: String,
    pub hangar_tls: bool,
}

pub type State = axum::extract::State<Arc<AppState>>;

impl AppState {
    /// Where uploaded base archives wait for their import job.
    pub fn uploads_dir(&self) -> std::path::PathBuf {
        self.host.config().data_dir.join("uploads")
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "jetpack",
        description = "IncludeOS unikernel management (Mothership API 1.0) and a jail runtime on ZFS clones"
    ),
    modifiers(&BasicAuth),
    security(("basic" = [])),
    components(schemas(error::ErrorBody))
)]
struct ApiDoc;

struct BasicAuth;

impl utoipa::Modify for BasicAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
    }
}

/// The routes and the OpenAPI document made from them.
pub fn routes() -> (Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    let router = OpenApiRouter::with_openapi(ApiDoc::openapi());
    let router = info::routes(router);
    let router = uplinks::routes(router);
    let router = documents::routes(router);
    let router = images::routes(router);
    let router = disks::routes(router);
    let router = jobs::routes(router);
    let router = bases::routes(router);
    let router = bootfiles::routes(router);
    let router = netboot::routes(router);
    let router = hosts::routes(router);
    let router = builders::routes(router);
    let router = pods::routes(router);
    let router = volumes::routes(router);
    let router = instances::routes(router);
    let router = session::routes(router);
    let router = events::routes(router);
    router.split_for_parts()
}

/// The whole application: routes, OpenAPI, docs, auth, limits, panics.
pub fn app(state: Arc<AppState>) -> Router {
    let (router, openapi) = routes();
    let openapi = Arc::new(openapi);
    let json = {
        let doc = openapi.clone();
        move || async move { axum::Json(doc.as_ref().clone()) }
    };
    let html = apidocs::render(&openapi);
    // /metrics is behind the auth layer unless metrics.auth = none.
    let metrics_auth = state.host.config().metrics.auth;
    let router = if metrics_auth {
        router.merge(metrics::routes())
    } else {
        router
    };
    router
        .route("/v1/openapi.json", axum::routing::get(json))
        .route(
            "/apidocs",
            axum::routing::get(move || async move { axum::response::Html(html.clone()) }),
        )
        .fallback(|| async { ApiError::not_found("no such resource in API v1") })
        // Inside auth: the user is known before a request is sent on.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::to_holder,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ))
        // After the auth layer: the console's files need no credentials.
        .merge(console::routes())
        .merge(if metrics_auth {
            Router::new()
        } else {
            metrics::routes()
        })
        .layer(axum::extract::DefaultBodyLimit::max(state.max_body))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        // Outermost, so that refusals by auth and panics are counted too.
        .layer(axum::middleware::from_fn(metrics::count))
        .with_state(state)
}

fn panic_response(cause: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let cause = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    ApiError::internal(format!("a handler panicked: {cause}")).into_response()
}

/// Lifts `server.maxbody` from upload routes: they stream into blobs and
/// enforce `server.maxupload` themselves.
fn unlimited(
    (schemas, paths, router): utoipa_axum::router::UtoipaMethodRouter<Arc<AppState>>,
) -> utoipa_axum::router::UtoipaMethodRouter<Arc<AppState>> {
    (
        schemas,
        paths,
        router.layer(axum::extract::DefaultBodyLimit::disable()),
    )
}

/// The longest `?q=` a list searches for, in characters. A search is a
/// LIKE pattern in SQLite, which refuses very long ones ("pattern too
/// complex"), and a substring scan of every item in memory lists: both
/// cost in proportion to it, so it is bounded like any other input.
pub const MAX_SEARCH: usize = 256;

/// The longest query string any route takes, in bytes. Hyper allows a
/// request head of hundreds of KiB; no parameter of ours needs more than
/// a URL (2 KiB) and a few names.
pub const MAX_QUERY: usize = 8192;

/// `?q=&sort=&limit=&offset=` of every list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Search: a case-insensitive substring of the searchable fields (at
    /// most 256 characters)
    #[param(max_length = 256)]
    pub q: Option<String>,
    /// Order by a field; a leading `-` reverses it (e.g. `-created`)
    pub sort: Option<String>,
    /// At most this many items (1..=1000)
    pub limit: Option<u32>,
    /// Skip this many items first
    pub offset: Option<u32>,
}

impl ListParams {
    /// The bounds of `?limit=` and `?q=`, which every way of listing
    /// (SQL, memory, the fleet) checks before it looks at any item.
    pub fn check(&self) -> ApiResult<()> {
        if let Some(l) = self.limit.filter(|l| *l == 0 || *l > 1000) {
            return Err(ApiError::bad_request(format!(
                "limit must be 1..=1000 (it is {l})"
            )));
        }
        if let Some(q) = &self.q {
            let len = q.chars().count();
            if len > MAX_SEARCH {
                return Err(ApiError::bad_request(format!(
                    "the search ?q= is {len} characters long; at most {MAX_SEARCH} are allowed"
                )));
            }
        }
        Ok(())
    }

    pub fn query(&self, table: &Table) -> ApiResult<ListQuery> {
        let sort = match self.sort_field() {
            None => None,
            Some((field, desc)) => {
                let column = table
                    .sorts
                    .iter()
                    .find(|(name, _)| *name == field)
                    .map(|(_, c)| *c)
                    .ok_or_else(|| {
                        let names: Vec<&str> = table.sorts.iter().map(|(n, _)| *n).collect();
                        unknown_sort(field, &names)
                    })?;
                Some((column, desc))
            }
        };
        self.check()?;
        Ok(ListQuery {
            q: self.q.clone(),
            sort,
            limit: self.limit,
            offset: self.offset.unwrap_or(0),
            filters: Vec::new(),
        })
    }
}

/// How a list kept in memory (bases, pods: few, and not SQL rows) is
/// ordered by a field: (name, comparison).
pub type MemorySort<T> = (&'static str, fn(&T, &T) -> std::cmp::Ordering);

impl ListParams {
    /// Searches, orders and pages `items` the way SQL lists are.
    pub fn select<T>(
        &self,
        mut items: Vec<T>,
        text: impl Fn(&T) -> Vec<String>,
        sorts: &[MemorySort<T>],
    ) -> ApiResult<Vec<T>> {
        self.check()?;
        if let Some(q) = self.q.as_deref().filter(|q| !q.is_empty()) {
            let q = q.to_lowercase();
            items.retain(|i| text(i).iter().any(|f| f.to_lowercase().contains(&q)));
        }
        if let Some((field, desc)) = self.sort_field() {
            let names: Vec<&str> = sorts.iter().map(|(n, _)| *n).collect();
            let (_, cmp) = sorts
                .iter()
                .find(|(n, _)| *n == field)
                .ok_or_else(|| unknown_sort(field, &names))?;
            items.sort_by(cmp);
            if desc {
                items.reverse();
            }
        }
        self.page(items)
    }

    /// `?sort=`: the field, and whether a leading `-` reverses it.
    pub fn sort_field(&self) -> Option<(&str, bool)> {
        let sort = self.sort.as_deref().filter(|s| !s.is_empty())?;
        Some(match sort.strip_prefix('-') {
            Some(field) => (field, true),
            None => (sort, false),
        })
    }

    /// `?offset=&limit=` of items already searched and ordered.
    pub fn page<T>(&self, items: Vec<T>) -> ApiResult<Vec<T>> {
        self.check()?;
        let offset = self.offset.unwrap_or(0) as usize;
        let limit = self.limit.map(|l| l as usize).unwrap_or(usize::MAX);
        Ok(items.into_iter().skip(offset).take(limit).collect())
    }
}

/// The answer to `?sort=` with a field a list cannot be ordered by.
pub fn unknown_sort(field: &str, names: &[&str]) -> ApiError {
    ApiError::bad_request(format!(
        "cannot sort by {field:?}; use one of {}",
        names.join(", ")
    ))
}

/// Whether the client asks for the raw resource (one of `raw`) rather than
/// its JSON metadata; anything else it insists on is a 406.
pub fn wants_raw(headers: &HeaderMap, raw: &[&str]) -> ApiResult<bool> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(false);
    };
    let accept = accept
        .to_str()
        .map_err(|_| ApiError::bad_request("unreadable Accept header"))?;
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    if types.iter().any(|t| raw.contains(t)) {
        return Ok(true);
    }
    if types
        .iter()
        .any(|t| matches!(*t, "application/json" | "*/*" | "application/*" | ""))
    {
        return Ok(false);
    }
    Err(ApiError::not_acceptable(format!(
        "cannot answer {accept:?}; this resource is application/json or {}",
        raw.join(" or ")
    )))
}

/// JSON bodies with errors in our shape (axum's own are plain text).
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::rejection::JsonRejection;
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::unsupported_media(
                "expected Content-Type: application/json",
            )),
            Err(JsonRejection::BytesRejection(r))
                if r.status() == StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    "the body is larger than server.maxbody",
                ))
            }
            Err(e) => Err(ApiError::bad_request(e.body_text())),
        }
    }
}

/// Whole bodies (text, JSON read by hand) with errors in our shape.
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => Ok(ApiBytes(b)),
            Err(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is larger than server.maxbody",
            )),
            Err(r) => Err(ApiError::bad_request(r.body_text())),
        }
    }
}

/// Query strings with errors in our shape, and no longer than `MAX_QUERY`.
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let len = parts.uri.query().map_or(0, str::len);
        if len > MAX_QUERY {
            return Err(ApiError::bad_request(format!(
                "the query string is {len} bytes long; at most {MAX_QUERY} are allowed"
            )));
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::bad_request(e.body_text()))
    }
}

/// Runs blocking work (SQLite, zfs, jails) off the async workers.
pub async fn blocking<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> ApiResult<T>
where
    T: Send + 'static,
    E: Into<ApiError> + Send + 'static,
{
    tokio::task::spawn_blocking(f).await?.map_err(Into::into)
}

/// RFC 3339 UTC time of a Unix timestamp.
pub fn time(ts: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(ts.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_chooses_raw_json_or_406() {
        let mut h = HeaderMap::new();
        assert!(!wants_raw(&h, &["application/octet-stream"]).unwrap());
        h.insert(header::ACCEPT, "application/octet-stream".parse().unwrap());
        assert!(wants_raw(&h, &["application/octet-stream"]).unwrap());
        h.insert(header::ACCEPT, "text/html, */*;q=0.8".parse().unwrap());
        assert!(!wants_raw(&h, &["application/octet-stream"]).unwrap());
        h.insert(header::ACCEPT, "image/png".parse().unwrap());
        assert_eq!(
            wants_raw(&h, &["application/octet-stream"])
                .unwrap_err()
                .status,
            StatusCode::NOT_ACCEPTABLE
        );
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_generic_500() {
        use tower::ServiceExt;
        let app: Router = Router::new()
            .route(
                "/boom",
                axum::routing::get(|| async {
                    panic!("secret detail");
                    #[allow(unreachable_code)]
                    ""
                }),
            )
            .layer(tower_http::catch_panic::CatchPanicLayer::custom(
                panic_response,
            ));
        let response = app
            .oneshot(
                Request::builder()
                    .uri("/boom")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "internal");
        assert!(!body.to_string().contains("secret detail"));
    }

    #[test]
    fn list_params_validate_sort_and_limit() {
        use crate::store::catalog::IMAGES;
        let p = ListParams {
            sort: Some("-created".into()),
            limit: Some(5),
            ..Default::default()
        };
        let q = p.query(&IMAGES).unwrap();
        assert_eq!(q.sort, Some(("created_at", true)));
        let p = ListParams {
            sort: Some("size; DROP TABLE images".into()),
            ..Default::default()
        };
        assert_eq!(
            p.query(&IMAGES).unwrap_err().status,
            StatusCode::BAD_REQUEST
        );
        let p = ListParams {
            limit: Some(0),
            ..Default::default()
        };
        assert!(p.query(&IMAGES).is_err());
    }

    #[test]
    fn searches_are_bounded_in_characters() {
        use crate::store::catalog::IMAGES;
        let search = |q: String| ListParams {
            q: Some(q),
            ..Default::default()
        };
        // 256 characters of 2 bytes each are still 256 characters.
        assert!(search("é".repeat(MAX_SEARCH)).query(&IMAGES).is_ok());
        let long = search("x".repeat(MAX_SEARCH + 1));
        let err = long.query(&IMAGES).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("at most 256"), "{}", err.message);
        assert!(long.select(vec![1], |_| vec![], &[]).is_err());
        assert!(long.page(vec![1]).is_err());
    }

    #[tokio::test]
    async fn long_query_strings_are_refused_before_parsing() {
        use axum::extract::FromRequestParts;
        let query = |q: &str| {
            Request::builder()
                .uri(format!("/v1/images?{q}"))
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        let mut ok = query("q=svc&limit=5");
        let ApiQuery(p) = ApiQuery::<ListParams>::from_request_parts(&mut ok, &())
            .await
            .unwrap();
        assert_eq!(p.q.as_deref(), Some("svc"));
        let mut long = query(&format!("sort=name&x={}", "a".repeat(MAX_QUERY)));
        let err = ApiQuery::<ListParams>::from_request_parts(&mut long, &())
            .await
            .err()
            .unwrap();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("query string"), "{}", err.message);
    }
}
