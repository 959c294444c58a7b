//! `/v1/bobproviders`, `/v1/builders`, the build of an image by a builder
//! and the validation of a NaCl by one. Prepares and builds are jobs (202);
//! a validation answers directly, `{valid}` or 422 with its errors.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::documents::{nacl_to_validate, verdict_answer, Valid, ValidateBody};
use super::error::ErrorBody;
use super::jobs::Job;
use super::{blocking, time, ApiBytes, ApiError, ApiQuery, ApiResult, AppState, State};
use crate::build::providers::Bob;
use crate::build::{BuildRequest, Builder, Built, NaclInput, ProviderInfo};
pub use crate::model::builders::{BobModel, BobProvider, BuildBody, BuildResult, BuilderModel};

pub fn routes(r: OpenApiRouter<Arc<AppState>>) -> OpenApiRouter<Arc<AppState>> {
    r.routes(routes!(list_providers))
        .routes(routes!(update_provider))
        .routes(routes!(list_bobs))
        .routes(routes!(prepare_bob))
        .routes(routes!(list_builders))
        .routes(routes!(get_builder, delete_builder))
        .routes(routes!(build_image))
        .routes(routes!(validate_by_builder))
}

impl From<ProviderInfo> for BobProvider {
    fn from(p: ProviderInfo) -> Self {
        BobProvider {
            name: p.id.clone(),
            id: p.id,
            kind: p.kind.to_string(),
            url: p.location,
            updated: p.updated_at.map(time),
        }
    }
}

fn bob_models(provider: &str, bobs: Vec<Bob>) -> Vec<BobModel> {
    bobs.into_iter()
        .map(|b| BobModel {
            id: b.id,
            name: b.name,
            version: b.version,
            vcs_ref: b.vcs_ref,
            build_date: b.build_date,
            vendor: b.vendor,
            services: b.services,
            provider_id: provider.to_string(),
            size: b.size,
            digest: b.digest,
        })
        .collect()
}

impl From<Builder> for BuilderModel {
    fn from(b: Builder) -> Self {
        let m = b.manifest;
        BuilderModel {
            id: b.row.id.into(),
            name: m.name,
            version: m.version,
            vcs_ref: m.vcs_ref,
            build_date: m.build_date,
            vendor: m.vendor,
            provider_id: b.row.provider_id,
            services: m.services,
            digest: b.row.digest,
            base_id: b.row.base_id.to_string(),
            created: time(b.row.created_at),
        }
    }
}

/// List the bob providers jetpack.conf declares
#[utoipa::path(get, path = "/v1/bobproviders", tag = "builders",
    responses((status = 200, body = Vec<BobProvider>)))]
async fn list_providers(state: State) -> ApiResult<Json<Vec<BobProvider>>> {
    let list = blocking(move || state.builders.providers()).await?;
    Ok(Json(list.into_iter().map(BobProvider::from).collect()))
}

/// Refresh a provider's list of bobs (asks the directory, index or registry now)
#[utoipa::path(post, path = "/v1/bobproviders/{providerId}/update", tag = "builders",
    params(("providerId" = String, Path, description = "provider id")),
    responses((status = 200, body = Vec<BobModel>), (status = 404, body = ErrorBody),
        (status = 502, body = ErrorBody, description = "the provider could not be read")))]
async fn update_provider(
    state: State,
    Path(provider): Path<String>,
) -> ApiResult<Json<Vec<BobModel>>> {
    let bobs = blocking(move || {
        state
            .builders
            .update(&provider)
            .map(|bobs| bob_models(&provider, bobs))
    })
    .await?;
    Ok(Json(bobs))
}

/// A provider's bobs, as of its last update
#[utoipa::path(get, path = "/v1/bobproviders/{providerId}/bobs", tag = "builders",
    params(("providerId" = String, Path, description = "provider id")),
    responses((status = 200, body = Vec<BobModel>), (status = 404, body = ErrorBody)))]
async fn list_bobs(state: State, Path(provider): Path<String>) -> ApiResult<Json<Vec<BobModel>>> {
    let bobs = blocking(move || {
        state
            .builders
            .bobs(&provider)
            .map(|bobs| bob_models(&provider, bobs))
    })
    .await?;
    Ok(Json(bobs))
}

/// Prepare a bob as a builder (a job): fetch, verify its digest, import,
/// register. The job's result is the builder; re-preparing the same digest
/// is a no-op.
#[utoipa::path(post, path = "/v1/bobproviders/{providerId}/prepare/bobs/{bobId}", tag = "builders",
    params(("providerId" = String, Path, description = "provider id"),
        ("bobId" = String, Path, description = "bob id, as the provider lists it"), PrepareParams),
    responses((status = 202, body = Job), (status = 404, body = ErrorBody)))]
async fn prepare_bob(
    state: State,
    Path((provider, bob)): Path<(String, String)>,
    ApiQuery(p): ApiQuery<PrepareParams>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let job = blocking(move || {
        if let Some(host) = &p.host {
            state.hosts.get(host)?;
        }
        Ok::<_, ApiError>(state.builders.submit_prepare(
            &state.jobs,
            provider,
            bob,
            p.host,
            prepare_result,
        )?)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PrepareParams {
    /// The only host that may prepare it (several hosts on one store)
    host: Option<String>,
}

/// A prepare's job result: the builder, and whether it existed already.
pub fn prepare_result(builder: Builder, existed: bool) -> Result<serde_json::Value, String> {
    let mut value = serde_json::to_value(BuilderModel::from(builder)).map_err(|e| e.to_string())?;
    value["existed"] = existed.into();
    Ok(value)
}

/// List builders
#[utoipa::path(get, path = "/v1/builders", tag = "builders",
    responses((status = 200, body = Vec<BuilderModel>)))]
async fn list_builders(state: State) -> ApiResult<Json<Vec<BuilderModel>>> {
    let list = blocking(move || state.builders.builders()).await?;
    Ok(Json(list.into_iter().map(BuilderModel::from).collect()))
}

/// Show a builder
#[utoipa::path(get, path = "/v1/builders/{id}", tag = "builders",
    params(("id" = String, Path, description = "builder id or a prefix of it")),
    responses((status = 200, body = BuilderModel), (status = 404, body = ErrorBody)))]
async fn get_builder(state: State, Path(id): Path<String>) -> ApiResult<Json<BuilderModel>> {
    let b = blocking(move || state.builders.builder(&id)).await?;
    Ok(Json(b.into()))
}

/// Delete a builder and its base; 409 while a build or validation uses it
#[utoipa::path(delete, path = "/v1/builders/{id}", tag = "builders",
    params(("id" = String, Path, description = "builder id or a prefix of it")),
    responses((status = 200, body = BuilderModel), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn delete_builder(state: State, Path(id): Path<String>) -> ApiResult<Json<BuilderModel>> {
    let b = blocking(move || state.builders.delete_builder(&id)).await?;
    Ok(Json(b.into()))
}

impl BuildBody {
    pub fn nacl(&mut self) -> ApiResult<NaclInput> {
        match (self.nacl_id.take(), self.nacl.take()) {
            (Some(id), None) => Ok(NaclInput::Stored(id)),
            (None, Some(text)) => Ok(NaclInput::Text(text)),
            (Some(_), Some(_)) => Err(ApiError::bad_request("give naclId or nacl, not both")),
            (None, None) => Err(ApiError::bad_request(
                "naclId (or the NaCl text as nacl) is required",
            )),
        }
    }
}

pub fn build_result(built: Built) -> Result<serde_json::Value, String> {
    serde_json::to_value(BuildResult {
        image: built.image.into(),
        existed: built.existed,
        build_ms: built.build_time.as_millis() as u64,
        total_ms: built.total_time.as_millis() as u64,
    })
    .map_err(|e| e.to_string())
}

/// Build an image (a job) of SERVICE with a builder, from a NaCl and an
/// uplink; the job's result is the image. Builds beyond `build.concurrency`
/// stay queued.
#[utoipa::path(post, path = "/v1/images/build/services/{service}/builders/{builderId}", tag = "builders",
    params(("service" = String, Path, description = "service, e.g. Starbase"),
        ("builderId" = String, Path, description = "builder id or a prefix of it")),
    request_body = BuildBody,
    responses((status = 202, body = Job), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "the builder does not build that service")))]
async fn build_image(
    state: State,
    Path((service, builder)): Path<(String, String)>,
    super::ApiJson(mut body): super::ApiJson<BuildBody>,
) -> ApiResult<(StatusCode, Json<Job>)> {
    let nacl = body.nacl()?;
    let job = blocking(move || {
        if let Some(host) = &body.host {
            state.hosts.get(host)?;
        }
        let req = BuildRequest {
            service,
            builder,
            nacl,
            uplink: body.uplink_id,
            tag: body.tag,
            name: body.name,
        };
        let job = state
            .builders
            .submit(&state.jobs, req, body.host, build_result)?;
        Ok::<_, ApiError>(job)
    })
    .await?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}

/// Validate a NaCl with the builder's own tool (in a pod): the NaCl as a
/// `text/plain` body, or JSON `{content}` or `{naclId}`. 200 `{valid: true}`,
/// or 422 with `errors: [{line, column, message}]`.
#[utoipa::path(post, path = "/v1/nacls/validate/builders/{builderId}", tag = "builders",
    params(("builderId" = String, Path, description = "builder id or a prefix of it")),
    request_body(content((String = "text/plain"), (ValidateBody = "application/json"))),
    responses((status = 200, body = Valid), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "invalid: `errors` lists line, column and message")))]
async fn validate_by_builder(
    state: State,
    Path(builder): Path<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Json<Valid>> {
    let verdict = blocking(move || {
        let nacl = nacl_to_validate(&state, &headers, &body)?;
        Ok::<_, ApiError>(state.builders.validate(&builder, &nacl)?)
    })
    .await?;
    verdict_answer(verdict)
}
