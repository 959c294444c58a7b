//! `/v1/nacls` and `/v1/snippets`: named NaCl text. The two resources share
//! their shape, so each handler here is a thin door onto a shared body.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::{
    blocking, time, wants_raw, ApiBytes, ApiError, ApiQuery, ApiResult, AppState, ListParams, State,
};
use crate::catalog::{NaclPolicy, Saved};
pub use crate::model::documents::Document;
use crate::nacl::{self, Verdict};
use crate::store::catalog::{DocumentKind, DocumentRow};

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(list_nacls, create_nacl))
        .routes(routes!(validate_nacl))
        .routes(routes!(get_nacl, put_nacl, delete_nacl))
        .routes(routes!(list_snippets, create_snippet))
        .routes(routes!(get_snippet, put_snippet, delete_snippet))
}

impl From<DocumentRow> for Document {
    fn from(r: DocumentRow) -> Self {
        Document {
            id: r.id.into(),
            name: r.name,
            content: r.content,
            created: time(r.created_at),
            updated: time(r.updated_at),
            warnings: Vec::new(),
        }
    }
}

impl From<Saved> for Document {
    fn from(s: Saved) -> Self {
        Document {
            warnings: s.warnings,
            ..s.row.into()
        }
    }
}

/// Create or replace: JSON `{name, content}`, or the raw text as a
/// `text/plain` body with the name in `?name=`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentRequest {
    /// Required on create; on replace, omitted keeps the name
    pub name: Option<String>,
    pub content: String,
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NameParam {
    /// The name, when the body is text/plain
    pub name: Option<String>,
}

/// How a NaCl is saved.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NaclSaveParams {
    /// The name, when the body is text/plain
    pub name: Option<String>,
    /// Store the NaCl even if jetpack's checker finds errors in it
    #[serde(default)]
    pub force: bool,
}

/// A NaCl to validate, when the body is JSON
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidateBody {
    /// The NaCl text
    pub content: Option<String>,
    /// Or a stored NaCl
    pub nacl_id: Option<String>,
}

/// The verdict on a valid NaCl, and what jetpack checks that the
/// reference does not (never a reason to refuse it).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Valid {
    pub valid: bool,
    #[serde(default)]
    pub warnings: Vec<nacl::Diagnostic>,
}

/// The NaCl a validation request names: a `text/plain` body, or JSON
/// `{content}` or `{naclId}` (which reads the catalog: call it off the
/// async workers).
pub fn nacl_to_validate(state: &AppState, headers: &HeaderMap, body: &[u8]) -> ApiResult<String> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return String::from_utf8(body.to_vec())
            .map_err(|_| ApiError::bad_request("a NaCl is UTF-8 text"));
    }
    let b: ValidateBody =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
    match (b.content, b.nacl_id) {
        (Some(text), None) => Ok(text),
        (None, Some(id)) => Ok(state.catalog.document(DocumentKind::Nacl, &id)?.content),
        _ => Err(ApiError::bad_request("give content or naclId")),
    }
}

/// 200 `{valid: true, warnings}`, or 422 with the errors and warnings.
pub fn verdict_answer(verdict: Verdict) -> ApiResult<Json<Valid>> {
    if verdict.valid {
        Ok(Json(Valid {
            valid: true,
            warnings: verdict.warnings,
        }))
    } else {
        Err(ApiError::invalid_nacl(verdict))
    }
}

fn policy(force: bool) -> NaclPolicy {
    if force {
        NaclPolicy::Force
    } else {
        NaclPolicy::Check
    }
}

/// Bodies this large are checked off the async workers.
const CHECK_INLINE_MAX: usize = 64 * 1024;

/// Reads a document request from JSON or text.
fn request(headers: &HeaderMap, name: Option<String>, body: Bytes) -> ApiResult<DocumentRequest> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match content_type.as_str() {
        "application/json" => {
            let req: DocumentRequest = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))?;
            if name.is_some() {
                return Err(ApiError::bad_request(
                    "give the name in the JSON body or in ?name=, not both",
                ));
            }
            Ok(req)
        }
        "text/plain" => Ok(DocumentRequest {
            name,
            content: String::from_utf8(body.to_vec())
                .map_err(|_| ApiError::bad_request("the body is not UTF-8 text"))?,
        }),
        _ => Err(ApiError::unsupported_media(
            "expected Content-Type: application/json or text/plain",
        )),
    }
}

async fn list(state: State, kind: DocumentKind, p: ListParams) -> ApiResult<Json<Vec<Document>>> {
    let q = p.query(kind.table())?;
    let rows = blocking(move || state.catalog.documents(kind, &q)).await?;
    Ok(Json(rows.into_iter().map(Document::from).collect()))
}

async fn create(
    state: State,
    kind: DocumentKind,
    headers: HeaderMap,
    (name, force): (Option<String>, bool),
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Document>)> {
    let req = request(&headers, name, body)?;
    let name = req
        .name
        .ok_or_else(|| ApiError::bad_request("a name is required"))?;
    let row = blocking(move || {
        state
            .catalog
            .create_document(kind, &name, req.content, policy(force))
    })
    .await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

async fn get(
    state: State,
    kind: DocumentKind,
    headers: HeaderMap,
    id: String,
) -> ApiResult<Response> {
    let raw = wants_raw(&headers, &["text/plain"])?;
    let row = blocking(move || state.catalog.document(kind, &id)).await?;
    if raw {
        return Ok((
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            row.content,
        )
            .into_response());
    }
    Ok(Json(Document::from(row)).into_response())
}

async fn put(
    state: State,
    kind: DocumentKind,
    headers: HeaderMap,
    id: String,
    (name, force): (Option<String>, bool),
    body: Bytes,
) -> ApiResult<Json<Document>> {
    let req = request(&headers, name, body)?;
    let row = blocking(move || {
        state
            .catalog
            .update_document(kind, &id, req.name.as_deref(), req.content, policy(force))
    })
    .await?;
    Ok(Json(row.into()))
}

async fn delete(state: State, kind: DocumentKind, id: String) -> ApiResult<Json<Document>> {
    let row = blocking(move || state.catalog.delete_document(kind, &id)).await?;
    Ok(Json(row.into()))
}

/// List NaCls
#[utoipa::path(get, path = "/v1/nacls", tag = "nacls", params(ListParams),
    responses((status = 200, body = Vec<Document>), (status = 400, body = ErrorBody)))]
async fn list_nacls(
    state: State,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<Vec<Document>>> {
    list(state, DocumentKind::Nacl, p).await
}

/// Create a NaCl (JSON, or text/plain with ?name=); one jetpack's checker
/// finds errors in is refused with 422 and the errors, unless ?force=true;
/// warnings never refuse it and come back in the document's `warnings`
#[utoipa::path(post, path = "/v1/nacls", tag = "nacls", params(NaclSaveParams),
    request_body(content(
        (DocumentRequest = "application/json"),
        (String = "text/plain"))),
    responses((status = 201, body = Document), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid: `errors` lists line, column, message and severity; `warnings` beside")))]
async fn create_nacl(
    state: State,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<NaclSaveParams>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<Document>)> {
    create(state, DocumentKind::Nacl, headers, (p.name, p.force), body).await
}

/// Validate a NaCl with jetpack's own checker: the NaCl as a `text/plain`
/// body, or JSON `{content}` or `{naclId}`. 200 `{valid: true, warnings}`,
/// or 422 with `errors: [{line, column, message, severity}]` (errors only,
/// the first the one the reference tool would print) and `warnings` beside.
#[utoipa::path(post, path = "/v1/nacls/validate", tag = "nacls",
    request_body(content((String = "text/plain"), (ValidateBody = "application/json"))),
    responses((status = 200, body = Valid), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid: `errors` lists line, column and message")))]
async fn validate_nacl(
    state: State,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Valid>> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !json && body.len() <= CHECK_INLINE_MAX {
        // A typical NaCl checks in microseconds: no thread hop for it.
        let nacl = nacl_to_validate(&state, &headers, &body)?;
        return verdict_answer(nacl::check(&nacl));
    }
    let verdict = blocking(move || {
        let nacl = nacl_to_validate(&state, &headers, &body)?;
        Ok::<_, ApiError>(nacl::check(&nacl))
    })
    .await?;
    verdict_answer(verdict)
}

/// Show a NaCl (JSON), or its content with `Accept: text/plain`
#[utoipa::path(get, path = "/v1/nacls/{id}", tag = "nacls",
    params(("id" = String, Path, description = "NaCl id, name or id prefix")),
    responses((status = 200, content((Document = "application/json"), (String = "text/plain"))),
        (status = 404, body = ErrorBody), (status = 406, body = ErrorBody)))]
async fn get_nacl(state: State, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Response> {
    get(state, DocumentKind::Nacl, headers, id).await
}

/// Replace a NaCl's content (and name); checked as on create
#[utoipa::path(put, path = "/v1/nacls/{id}", tag = "nacls", params(NaclSaveParams,
        ("id" = String, Path, description = "NaCl id, name or id prefix")),
    request_body(content((DocumentRequest = "application/json"), (String = "text/plain"))),
    responses((status = 200, body = Document), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid: `errors` lists line, column and message")))]
async fn put_nacl(
    state: State,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<NaclSaveParams>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Document>> {
    put(
        state,
        DocumentKind::Nacl,
        headers,
        id,
        (p.name, p.force),
        body,
    )
    .await
}

/// Delete a NaCl
#[utoipa::path(delete, path = "/v1/nacls/{id}", tag = "nacls",
    params(("id" = String, Path, description = "NaCl id, name or id prefix")),
    responses((status = 200, body = Document), (status = 404, body = ErrorBody)))]
async fn delete_nacl(state: State, Path(id): Path<String>) -> ApiResult<Json<Document>> {
    delete(state, DocumentKind::Nacl, id).await
}

/// List snippets
#[utoipa::path(get, path = "/v1/snippets", tag = "snippets", params(ListParams),
    responses((status = 200, body = Vec<Document>), (status = 400, body = ErrorBody)))]
async fn list_snippets(
    state: State,
    ApiQuery(p): ApiQuery<ListParams>,
) -> ApiResult<Json<Vec<Document>>> {
    list(state, DocumentKind::Snippet, p).await
}

/// Create a snippet (JSON, or text/plain with ?name=)
#[utoipa::path(post, path = "/v1/snippets", tag = "snippets", params(NameParam),
    request_body(content((DocumentRequest = "application/json"), (String = "text/plain"))),
    responses((status = 201, body = Document), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn create_snippet(
    state: State,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<NameParam>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<Document>)> {
    create(state, DocumentKind::Snippet, headers, (p.name, false), body).await
}

/// Show a snippet (JSON), or its content with `Accept: text/plain`
#[utoipa::path(get, path = "/v1/snippets/{id}", tag = "snippets",
    params(("id" = String, Path, description = "snippet id, name or id prefix")),
    responses((status = 200, content((Document = "application/json"), (String = "text/plain"))),
        (status = 404, body = ErrorBody)))]
async fn get_snippet(
    state: State,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    get(state, DocumentKind::Snippet, headers, id).await
}

/// Replace a snippet
#[utoipa::path(put, path = "/v1/snippets/{id}", tag = "snippets", params(NameParam,
        ("id" = String, Path, description = "snippet id, name or id prefix")),
    request_body(content((DocumentRequest = "application/json"), (String = "text/plain"))),
    responses((status = 200, body = Document), (status = 404, body = ErrorBody)))]
async fn put_snippet(
    state: State,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<NameParam>,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Document>> {
    put(
        state,
        DocumentKind::Snippet,
        headers,
        id,
        (p.name, false),
        body,
    )
    .await
}

/// Delete a snippet
#[utoipa::path(delete, path = "/v1/snippets/{id}", tag = "snippets",
    params(("id" = String, Path, description = "snippet id, name or id prefix")),
    responses((status = 200, body = Document), (status = 404, body = ErrorBody)))]
async fn delete_snippet(state: State, Path(id): Path<String>) -> ApiResult<Json<Document>> {
    delete(state, DocumentKind::Snippet, id).await
}
