//! The one place where errors of the layers below become HTTP: a status and
//! the JSON body `{code, message}` of spec/rest-api.md. Our own faults are
//! logged in full and answered with a generic 500.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::bootfiles::BootFilesError;
use crate::build::BuildError;
use crate::catalog::CatalogError;
use crate::disks::DiskError;
use crate::hangar::deploy::DeployError;
use crate::hangar::fleet::FleetError;
use crate::hangar::upgrade::UpgradeError;
use crate::jobs::JobError;
use crate::nacl::{Diagnostic, Verdict};
use crate::runtime::volumes::VolumeError;
use crate::runtime::RuntimeError;
use crate::store::blobs::BlobError;
use crate::store::StoreError;

/// The error body of every non-2xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `conflict`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// Per-line problems (NaCl validation): the errors only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Diagnostic>>,
    /// Beside the errors of a NaCl: what jetpack checks and the reference
    /// does not (never a reason to refuse it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<Diagnostic>>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Per-line problems, for a NaCl found invalid.
    pub errors: Option<Vec<Diagnostic>>,
    pub warnings: Option<Vec<Diagnostic>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            errors: None,
            warnings: None,
        }
    }
    /// 422 for a NaCl with errors, listed in `errors`, its warnings in
    /// `warnings`.
    pub fn invalid_nacl(verdict: Verdict) -> Self {
        let first = verdict
            .errors
            .first()
            .map(|d| format!(": line {}:{} {}", d.line, d.column, d.message))
            .unwrap_or_default();
        let message = format!(
            "the NaCl is invalid ({} error(s)){first}",
            verdict.errors.len()
        );
        ApiError {
            errors: Some(verdict.errors),
            warnings: Some(verdict.warnings),
            ..Self::unprocessable(message)
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
    }
    pub fn unsupported_media(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "not_acceptable", message)
    }
    /// Our own fault: the cause goes to the log, the client learns only that.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {cause}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal server error (the server log has the cause)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code,
            message: self.message,
            errors: self.errors,
            warnings: self.warnings,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NameTaken(_) => ApiError::conflict(e.to_string()),
            StoreError::NoSuchVolume(_) => ApiError::not_found(e.to_string()),
            StoreError::NoAddress(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_address", e.to_string())
            }
            e => ApiError::internal(e),
        }
    }
}

impl From<BlobError> for ApiError {
    fn from(e: BlobError) -> Self {
        match e {
            BlobError::NotFound(_) => ApiError::not_found(e.to_string()),
            BlobError::BadDigest(_) => ApiError::bad_request(e.to_string()),
            e => ApiError::internal(e),
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::NotFound { .. } => ApiError::not_found(e.to_string()),
            CatalogError::Ambiguous { .. } | CatalogError::Invalid(_) => {
                ApiError::bad_request(e.to_string())
            }
            CatalogError::NameTaken { .. } => ApiError::conflict(e.to_string()),
            CatalogError::NotAnImage(_) => ApiError::unprocessable(e.to_string()),
            CatalogError::InvalidNacl(verdict) => ApiError::invalid_nacl(verdict),
            CatalogError::Store(e) => e.into(),
            CatalogError::Blob(e) => e.into(),
            CatalogError::Fetch { .. } => {
                ApiError::new(StatusCode::BAD_GATEWAY, "upstream", e.to_string())
            }
        }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NotFound(_) => ApiError::not_found(e.to_string()),
            JobError::Ambiguous { .. } => ApiError::bad_request(e.to_string()),
            JobError::Finished(_) => ApiError::conflict(e.to_string()),
            JobError::Store(e) => e.into(),
            e => ApiError::internal(e),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(e: RuntimeError) -> Self {
        use RuntimeError as R;
        match e {
            R::NoSuchBase(_) | R::NoSuchPod(_) => ApiError::not_found(e.to_string()),
            R::Name(_) | R::Ambiguous { .. } | R::Env(_) | R::Limits(_) => {
                ApiError::bad_request(e.to_string())
            }
            R::Volume(ref v) => match v {
                VolumeError::NoSuchVolume(_) => ApiError::not_found(e.to_string()),
                VolumeError::InUse { .. } => ApiError::conflict(e.to_string()),
                _ => ApiError::bad_request(e.to_string()),
            },
            R::BaseInUse { .. }
            | R::BaseHeld { .. }
            | R::BaseNotReady(_)
            | R::PodRunning(_)
            | R::PodNotRunning { .. }
            | R::PodCannotStart(..) => ApiError::conflict(e.to_string()),
            R::PodActive { .. } => ApiError::conflict(e.to_string()),
            R::Export(ref x) => match x {
                crate::runtime::export::ExportError::Exists { .. } => {
                    ApiError::conflict(e.to_string())
                }
                _ => ApiError::unprocessable(e.to_string()),
            },
            R::CommandNotFound { .. } | R::Archive(_) => ApiError::unprocessable(e.to_string()),
            R::Store(e) => e.into(),
            e => ApiError::internal(e),
        }
    }
}

impl From<FleetError> for ApiError {
    fn from(e: FleetError) -> Self {
        match e {
            FleetError::NotFound(_) => ApiError::not_found(e.to_string()),
            FleetError::Ambiguous(..) => ApiError::bad_request(e.to_string()),
            FleetError::NotDocked(_) | FleetError::Busy(_) | FleetError::AliasTaken { .. } => {
                ApiError::conflict(e.to_string())
            }
            FleetError::Store(e) => e.into(),
            FleetError::Spawn(_) | FleetError::WriterGone => ApiError::internal(e),
        }
    }
}

impl From<DeployError> for ApiError {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::NotDocked(..)
            | DeployError::Refused(_)
            | DeployError::InProgress { .. } => ApiError::conflict(e.to_string()),
            DeployError::Fleet(e) => e.into(),
            DeployError::Catalog(e) => e.into(),
            DeployError::Jobs(e) => e.into(),
        }
    }
}

impl From<UpgradeError> for ApiError {
    fn from(e: UpgradeError) -> Self {
        match e {
            UpgradeError::NoUplink(_) => ApiError::conflict(e.to_string()),
            UpgradeError::UnknownNacl(_) | UpgradeError::NoService(_) => {
                ApiError::bad_request(e.to_string())
            }
            UpgradeError::Deploy(e) => e.into(),
            UpgradeError::Build(e) => e.into(),
            UpgradeError::Fleet(e) => e.into(),
        }
    }
}

impl From<BuildError> for ApiError {
    fn from(e: BuildError) -> Self {
        use BuildError as B;
        match e {
            B::NoProvider(_) | B::NoBob { .. } | B::NoBuilder(_) => {
                ApiError::not_found(e.to_string())
            }
            B::AmbiguousBuilder { .. } | B::Invalid(_) => ApiError::bad_request(e.to_string()),
            B::BuilderInUse(..) | B::BuilderTaken { .. } => ApiError::conflict(e.to_string()),
            B::ServiceNotOffered { .. } | B::Manifest { .. } | B::Digest { .. } => {
                ApiError::unprocessable(e.to_string())
            }
            B::Fetch { .. } => ApiError::new(StatusCode::BAD_GATEWAY, "upstream", e.to_string()),
            B::Failed(_) | B::TimedOut(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "builder_failed",
                e.to_string(),
            ),
            B::Cancelled => ApiError::conflict(e.to_string()),
            B::Runtime(e) => e.into(),
            B::Catalog(e) => e.into(),
            B::Store(e) => e.into(),
            B::Archive(_) => ApiError::unprocessable(e.to_string()),
            B::Io { .. } | B::Queue(_) => ApiError::internal(e),
            B::Jobs(e) => e.into(),
        }
    }
}

impl From<DiskError> for ApiError {
    fn from(e: DiskError) -> Self {
        match e {
            DiskError::UnknownFormat(_) => ApiError::bad_request(e.to_string()),
            DiskError::NotBootable { .. } => ApiError::unprocessable(e.to_string()),
            // The operator's to fix (a package, a key): said to the
            // client too, since it names no secret.
            DiskError::Unavailable(_) => {
                tracing::warn!("{e}");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    e.to_string(),
                )
            }
            DiskError::Catalog(e) => e.into(),
            DiskError::Blob(e) => e.into(),
            DiskError::Tool(_) | DiskError::Io { .. } => ApiError::internal(e),
        }
    }
}

impl From<BootFilesError> for ApiError {
    fn from(e: BootFilesError) -> Self {
        use BootFilesError as B;
        match e {
            B::NotFound { .. } => ApiError::not_found(e.to_string()),
            B::Name(_) | B::Invalid(_) => ApiError::bad_request(e.to_string()),
            B::Taken { .. } | B::InUse { .. } | B::Busy(_) => ApiError::conflict(e.to_string()),
            B::Store(e) => e.into(),
            B::Blob(e) => e.into(),
            B::Catalog(e) => e.into(),
            B::Job(e) => e.into(),
            // The job's failures (fetch, digest, extract) are recorded on
            // the OS image, not answered; anything else here is ours.
            e => ApiError::internal(e),
        }
    }
}

/// A blocking task that died (a panic in it) is our fault.
impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("a blocking task failed: {e}"))
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
