//! The southbound file server: what booting machines (PXE/iPXE, RackHD,
//! installers) read over plain HTTP, read-only and without auth, on its own
//! port (`files.listen`). It serves OS image trees at `/<name>/<version>/...`
//! (RackHD's `repo` layout), the ISO and microkernel stores at `/isos/` and
//! `/microkernels/`, and unikernel images at `/images/<id>` and
//! `/images/by-tag/<tag>`. What exists is asked of a `Trees`, so the stores
//! plug in without this layer knowing them.
//!
//! The listener is the API's (`api::serve`: the gate, the clocks, TLS when
//! `files.tls` is on); this layer is only the application it runs:
//! path.rs (the request path, decoded once and refused when it could
//! leave a tree), resolve.rs (finding the file or directory, symlinks kept
//! inside their tree), respond.rs (validators, ranges, streamed bodies),
//! listing.rs (directory listings as HTML or JSON), catalog_trees.rs (the
//! server's `Trees` over the catalog and the boot files), netboot.rs
//! (`/boot/ipxe`: the iPXE script that boots a unikernel, chosen by a
//! `Boots`).

mod catalog_trees;
mod listing;
mod netboot;
mod path;
mod resolve;
mod respond;

pub use catalog_trees::CatalogTrees;
pub use netboot::{BootAsk, BootImage, BootMiss, Boots};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::runtime::fetch_policy::Net;

/// What the file server serves. Every method runs on a blocking thread
/// (implementations may read a database or the disk). Names come from the
/// request path, already decoded and free of `/`, `..` and NUL; an
/// implementation still checks them against its own naming rules.
pub trait Trees: Send + Sync + 'static {
    /// `/<name>/<version>/...`: the content root directory of a ready OS image.
    fn os_image(&self, name: &str, version: &str) -> Option<PathBuf>;
    /// Whether OS image trees cannot change under the server (sealed
    /// read-only even to root): their files may then be sent from a
    /// mapping, like a store's blobs.
    fn os_images_read_only(&self) -> bool {
        false
    }
    /// Ready OS images (name, version) for the listing at `/`.
    fn os_images(&self) -> Vec<(String, String)>;
    /// `/isos/<name>` and `/microkernels/<name>`: one stored file.
    fn stored(&self, store: StoreKind, name: &str) -> Option<StoredFile>;
    fn stored_list(&self, store: StoreKind) -> Vec<StoredFile>;
    /// `/images/<id>`: a unikernel image by its id (SHA-1).
    fn image(&self, id: &str) -> Option<StoredFile>;
    /// `/images/by-tag/<tag>`: the newest image with the tag.
    fn image_by_tag(&self, tag: &str) -> Option<StoredFile>;
}

/// The stores and their files are the boot files' (`bootfiles`); a
/// store's folder on this server is the first segment of its paths.
pub use crate::bootfiles::{StoreKind, StoredFile};

/// The first segment of a store's paths on this server.
pub fn folder(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Iso => "isos",
        StoreKind::Microkernel => "microkernels",
    }
}

/// Why a request found nothing to serve; each is one status.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("bad path: {0}")]
    BadPath(&'static str),
    #[error("not found")]
    NotFound,
    #[error("the path leaves its tree")]
    Outside,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

impl FilesError {
    fn status(&self) -> StatusCode {
        match self {
            FilesError::BadPath(_) => StatusCode::BAD_REQUEST,
            FilesError::NotFound => StatusCode::NOT_FOUND,
            FilesError::Outside => StatusCode::FORBIDDEN,
            FilesError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Longest request target accepted (414 beyond): paths in ISOs are short,
/// and a long one costs a walk of the disk for nothing.
const MAX_TARGET: usize = 4096;

struct Served {
    trees: Arc<dyn Trees>,
    allow: Vec<Net>,
    /// Who chooses the image of `/boot/ipxe` (none: not served).
    boots: Option<Arc<dyn Boots>>,
    /// The scripts' URLs are https (`files.tls`).
    https: bool,
}

/// The file server's application, for `api::serve::serve`. `allow`: the
/// source ranges let in (empty: all); others are answered 403.
pub fn app(trees: Arc<dyn Trees>, allow: Vec<Net>) -> Router {
    app_with_netboot(trees, allow, None, false)
}

/// `app`, also answering `/boot/ipxe` with what `boots` chooses; `https`:
/// the server has TLS, so the scripts' kernel URLs say https.
pub fn app_with_netboot(
    trees: Arc<dyn Trees>,
    allow: Vec<Net>,
    boots: Option<Arc<dyn Boots>>,
    https: bool,
) -> Router {
    Router::new().fallback(handle).with_state(Arc::new(Served {
        trees,
        allow,
        boots,
        https,
    }))
}

async fn handle(State(served): State<Arc<Served>>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !served.allow.is_empty()
        && !peer.is_some_and(|ip| served.allow.iter().any(|n| n.contains(ip)))
    {
        return plain(
            StatusCode::FORBIDDEN,
            "this address may not read files here",
        );
    }
    let head = match *req.method() {
        Method::GET => false,
        Method::HEAD => true,
        _ => {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "read-only: GET and HEAD");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
    };
    let target = req.uri().path();
    if target.len() > MAX_TARGET {
        return plain(StatusCode::URI_TOO_LONG, "the path is too long");
    }
    if target == netboot::PATH {
        return netboot::respond(served.boots.clone(), served.https, req, head).await;
    }
    let route = match path::route(target) {
        Ok(route) => route,
        Err(e) => return error(&e),
    };
    let trees = served.trees.clone();
    let found = tokio::task::spawn_blocking(move || resolve::find(trees.as_ref(), &route)).await;
    let found = match found {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => return error(&e),
        Err(e) => {
            tracing::error!("files: a lookup of {target:?} failed: {e}");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    let headers = req.headers();
    match found {
        resolve::Found::File(file) => respond::file(file, headers, head),
        resolve::Found::Dir(list) => listing::respond(&list, headers, head),
        resolve::Found::Redirect(to) => {
            let mut r = plain(StatusCode::MOVED_PERMANENTLY, "a directory: see Location");
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
    }
}

fn error(e: &FilesError) -> Response {
    if let FilesError::Io { .. } = e {
        tracing::warn!("files: {e}");
        return plain(e.status(), "internal error");
    }
    plain(e.status(), &e.to_string())
}

/// A short text answer (errors, redirects).
fn plain(status: StatusCode, text: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        Body::from(format!("{text}\n")),
    )
        .into_response()
}
