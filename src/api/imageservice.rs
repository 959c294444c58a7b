//! RackHD image-service's northbound interface (issue 19) on its own opt-in
//! listener (`imageservice.*`), so that its scripts and RackHD work
//! unchanged: `GET/PUT/DELETE /images` (name, version and exactly one of
//! `isoclient`, `isolocal`, `isoweb`, `isostore`), and `GET/PUT/DELETE
//! /iso` and `/microkernel` with `?name=`. Only translation lives here: the
//! stores and OS images are `bootfiles::`'s, the same as /v1's, so what is
//! made here is listed at /v1 and served by the southbound file server.
//!
//! Answered the way the image-service did (its northbound-api.js,
//! inventory.js and README): images as `{id, name, version, iso, status}`
//! with its status words (`downloading iso`, `preparing`, `OK`), store
//! entries as `{name, size: "4.15 GB", uploaded}` (`upload` too, as its
//! README wrote it), a duplicate image a 400, errors as `{message}` (ours
//! add `code`). An upload's answer is a text body streamed while the body
//! arrives, `Uploaded 10 %` ... `Uploaded 100 %`, `Upload finished!`: that
//! is what its users saw in curl's output. Where jetpack is stricter it
//! says so: exactly one source (it took the first by precedence), a taken
//! store name is a 409 (it overwrote the file), names are checked.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{blocking, time, upload, ApiError, ApiQuery, ApiResult, AppState, State};
use crate::bootfiles::{check_name, BootFileRow, BootFilesError, OsImageRow, Source, StoreKind};
use crate::runtime::fetch_policy::Net;
use crate::store::blobs::StagedBlob;
use crate::store::bootfiles::OsImageState;

/// The listener's application, for `api::serve::serve`: `allow` is the
/// source ranges let in (empty: all; others get 403), `auth` puts the
/// API's own auth (its users, throttles) in front of every route.
pub fn app(state: Arc<AppState>, allow: Vec<Net>, auth: bool) -> Router {
    let router = Router::new()
        .route(
            "/images",
            get(list_images).put(put_image).delete(delete_images),
        )
        .route("/iso", get(list_isos).put(put_iso).delete(delete_iso))
        .route(
            "/microkernel",
            get(list_microkernels)
                .put(put_microkernel)
                .delete(delete_microkernel),
        )
        .fallback(|| async { ApiError::not_found("no such route of the image-service API") });
    let router = if auth {
        router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::auth::require,
        ))
    } else {
        router
    };
    router
        // Uploads stream into blobs under `bootfiles.maxupload`; no other
        // route reads a body.
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            super::panic_response,
        ))
        // Outermost: a source not allowed learns nothing else.
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(allow),
            allowed,
        ))
        .with_state(state)
}

async fn allowed(AxumState(allow): AxumState<Arc<Vec<Net>>>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !allow.is_empty() && !peer.is_some_and(|ip| allow.iter().any(|n| n.contains(ip))) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this address may not use the image-service API (imageservice.allow)",
        )
        .into_response();
    }
    next.run(req).await
}

/// Every query parameter the image-service read (it also read them from a
/// JSON body; its scripts and RackHD send them in the query).
#[derive(Debug, Default, Deserialize)]
struct Params {
    id: Option<String>,
    name: Option<String>,
    version: Option<String>,
    iso: Option<String>,
    status: Option<String>,
    isoclient: Option<String>,
    isolocal: Option<String>,
    isoweb: Option<String>,
    isostore: Option<String>,
}

fn required(value: Option<String>, what: &str) -> ApiResult<String> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{what} is required (?{what}=)")))
}

/// The image-service's errors where they differ from /v1's: a duplicate
/// name and version was its 400 ("Image already exists").
fn compat(e: BootFilesError) -> ApiError {
    match e {
        BootFilesError::Taken {
            what: "OS image", ..
        } => ApiError::bad_request(format!("Image already exists: {e}")),
        e => e.into(),
    }
}

// ---- what the image-service answered ----

#[derive(Debug, Serialize)]
struct Image {
    id: String,
    name: String,
    version: String,
    iso: String,
    status: &'static str,
    /// Why it failed (jetpack's; the image-service kept no failed image).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Its status words: it said `OK` of an image being served.
fn status_word(state: OsImageState) -> &'static str {
    match state {
        OsImageState::Downloading => "downloading iso",
        OsImageState::Preparing => "preparing",
        OsImageState::Ready => "OK",
        OsImageState::Failed => "failed",
    }
}

/// The last path segment of a URL or path: the ISO's file name, as it
/// named the ISO of an `isoweb` or `isolocal` image.
fn file_name(source: &str) -> String {
    let path = source.split(['?', '#']).next().unwrap_or("");
    path.rsplit('/').next().unwrap_or("").to_string()
}

impl From<&OsImageRow> for Image {
    fn from(row: &OsImageRow) -> Self {
        // A stable UUID, as its ids were: the one that names the dataset.
        let id = row
            .dataset
            .as_str()
            .rsplit('/')
            .next()
            .and_then(|s| uuid::Uuid::try_parse(s).ok())
            .map(|u| u.hyphenated().to_string())
            .unwrap_or_default();
        let iso = match row.source_kind.as_str() {
            "url" | "path" => file_name(&row.source),
            _ => row.source.clone(),
        };
        Image {
            id,
            name: row.name.to_string(),
            version: row.version.to_string(),
            iso,
            status: status_word(row.state),
            reason: row.reason.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
struct Entry {
    name: String,
    /// Its words: decimal units, two decimals ("4.15 GB").
    size: String,
    /// The exact size (jetpack's).
    bytes: u64,
    /// When it was stored: `uploaded` in its code, `upload` in its README.
    upload: String,
    uploaded: String,
}

fn pretty_size(size: u64) -> String {
    let s = size as f64;
    if size > 1_000_000_000 {
        format!("{:.2} GB", s / 1e9)
    } else if size > 1_000_000 {
        format!("{:.2} MB", s / 1e6)
    } else if size > 1_000 {
        format!("{:.2} KB", s / 1e3)
    } else {
        format!("{size} Byte")
    }
}

impl From<&BootFileRow> for Entry {
    fn from(row: &BootFileRow) -> Self {
        Entry {
            name: row.name.to_string(),
            size: pretty_size(row.size),
            bytes: row.size,
            upload: time(row.created_at),
            uploaded: time(row.created_at),
        }
    }
}

// ---- /images ----

async fn list_images(state: State, ApiQuery(p): ApiQuery<Params>) -> ApiResult<Json<Vec<Image>>> {
    let rows = blocking(move || state.bootfiles.osimages()).await?;
    let keep = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    Ok(Json(
        rows.iter()
            .map(Image::from)
            .filter(|i| {
                keep(&p.id, &i.id)
                    && keep(&p.name, &i.name)
                    && keep(&p.version, &i.version)
                    && keep(&p.iso, &i.iso)
                    && keep(&p.status, i.status)
            })
            .collect(),
    ))
}

async fn put_image(
    AxumState(state): State,
    ApiQuery(p): ApiQuery<Params>,
    req: Request,
) -> ApiResult<Response> {
    let ((name, version), req) = upload::refuse_early(check_image_request(&p), req)?;
    if let Some(file) = p.isoclient {
        // The body is the ISO: into the ISO store under its file name (as
        // the image-service kept it), then the OS image from the store.
        let (n, v, f) = (name.clone(), version.clone(), file.clone());
        let service = state.bootfiles.clone();
        let free = blocking(move || {
            service.check_osimage_free(&n, &v).map_err(compat)?;
            service
                .check_free(StoreKind::Iso, &f)
                .map_err(ApiError::from)
        })
        .await;
        let ((), req) = upload::refuse_early(free, req)?;
        let service = state.bootfiles.clone();
        let what = format!("the ISO {file} of the OS image {name} {version}");
        return stream_upload(&state, req, what, move |blob| {
            service
                .create_osimage_with_iso(&name, &version, &file, blob)
                .map(drop)
                .map_err(compat)
        })
        .await;
    }
    let service = state.bootfiles.clone();
    let (row, _job) = blocking(move || {
        let source = if let Some(path) = p.isolocal {
            Source::Path(crate::bootfiles::check_path(&path)?)
        } else if let Some(url) = p.isoweb {
            crate::bootfiles::check_url(&url)?;
            Source::Url { url, sha256: None }
        } else if let Some(iso) = p.isostore {
            Source::Iso(check_name("ISO name", &iso)?)
        } else {
            return Err(ApiError::bad_request("no ISO source"));
        };
        service
            .create_osimage(&name, &version, source)
            .map_err(compat)
    })
    .await?;
    Ok(Json(Image::from(&row)).into_response())
}

/// Name, version and exactly one ISO source.
fn check_image_request(p: &Params) -> ApiResult<(String, String)> {
    let name = required(p.name.clone(), "name")?;
    let version = required(p.version.clone(), "version")?;
    let sources = [&p.isoclient, &p.isolocal, &p.isoweb, &p.isostore]
        .iter()
        .filter(|s| s.is_some())
        .count();
    if sources != 1 {
        return Err(ApiError::bad_request(format!(
            "exactly one ISO source is needed (isoclient, isolocal, isoweb or isostore); {sources} given"
        )));
    }
    if p.isoclient.as_deref() == Some("") {
        return Err(ApiError::bad_request("isoclient needs the ISO's file name"));
    }
    Ok((name, version))
}

async fn delete_images(state: State, ApiQuery(p): ApiQuery<Params>) -> ApiResult<Json<Vec<Image>>> {
    // Both, always: it deleted every image matching what was given, so a
    // request without them would have deleted them all.
    let name = required(p.name, "name")?;
    let version = required(p.version, "version")?;
    let row = blocking(move || state.bootfiles.delete_osimage(&name, &version)).await?;
    Ok(Json(vec![Image::from(&row)]))
}

// ---- uploads ----

/// How long a refused upload's answer waits for the client to finish
/// sending before the connection is cut: upload::linger's own bound, and a
/// little more.
const LINGER_BOUND: std::time::Duration = std::time::Duration::from_secs(3);

/// The declared body length, if any.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What the answer's text says while the body arrives: a line per tenth
/// of the declared length, as the image-service printed.
struct Progress {
    total: Option<u64>,
    received: u64,
    tenths: u64,
    lines: tokio::sync::mpsc::UnboundedSender<Result<Bytes, std::io::Error>>,
}

impl Progress {
    fn add(&mut self, n: usize) {
        self.received += n as u64;
        let Some(total) = self.total.filter(|t| *t > 0) else {
            return;
        };
        let tenths = (self.received.min(total) * 10 / total).min(10);
        while self.tenths < tenths {
            self.tenths += 1;
            let _ = self.lines.send(Ok(Bytes::from(format!(
                "Uploaded {} %\n",
                self.tenths * 10
            ))));
        }
    }
}

/// Receives a raw body into a staged blob and hands it to `finish` (on a
/// blocking thread), answering at once with a text body that streams the
/// progress, then `Upload finished!`, or `Upload failed: WHY` and a cut
/// connection (so that curl exits non-zero). What can be refused before
/// the body is read is, with its status, by the caller; the declared
/// length is checked here. The body is raw whatever its Content-Type, as
/// the image-service piped it to a file.
async fn stream_upload<F>(
    state: &Arc<AppState>,
    req: Request,
    what: String,
    finish: F,
) -> ApiResult<Response>
where
    F: FnOnce(StagedBlob) -> ApiResult<()> + Send + 'static,
{
    let limit = state.bootfiles.settings().max_upload;
    let total = content_length(req.headers());
    let ((), req) = upload::refuse_early(
        match total {
            Some(len) if len > limit => Err(ApiError::too_large(limit)),
            _ => Ok(()),
        },
        req,
    )?;
    let (mut parts, body) = req.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    let mut body = body.into_data_stream();
    // Asking for the first bytes answers a client's `Expect: 100-continue`
    // (curl sends it with a large file) before the 200 below goes out: a
    // final answer first would have it stop sending.
    let first = body.next().await;
    let (lines, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut progress = Progress {
        total,
        received: 0,
        tenths: 0,
        lines: lines.clone(),
    };
    // Told when the body has been read to its end (or dropped), so that a
    // refusal cuts the connection only once the client has sent it all:
    // a reset while it still sends would overtake the refusal's text.
    let (ended, read_out) = tokio::sync::oneshot::channel::<()>();
    let mut ended = Some(ended);
    let end = futures_util::stream::poll_fn(move |_| {
        if let Some(ended) = ended.take() {
            let _ = ended.send(());
        }
        std::task::Poll::Ready(None::<Result<Bytes, axum::Error>>)
    });
    let counted = futures_util::stream::iter(first)
        .chain(body)
        .map(move |chunk| {
            if let Ok(bytes) = &chunk {
                progress.add(bytes.len());
            }
            chunk
        })
        .chain(end);
    let req = Request::from_parts(parts, Body::from_stream(counted));
    let blobs_state = state.clone();
    tracing::info!("image-service: receiving {what}");
    tokio::spawn(async move {
        let done = async {
            let upload = upload::receive(blobs_state.catalog.blobs(), limit, req).await?;
            blocking(move || finish(upload.blob)).await
        }
        .await;
        match done {
            Ok(()) => {
                tracing::info!("image-service: stored {what}");
                let _ = lines.send(Ok(Bytes::from_static(b"Upload finished!\n")));
            }
            Err(e) => {
                tracing::warn!("image-service: {what}: {}", e.message);
                let _ = lines.send(Ok(Bytes::from(format!("Upload failed: {}\n", e.message))));
                // What is left of the body is read and dropped (bounded:
                // upload::linger); then the cut.
                let _ = tokio::time::timeout(LINGER_BOUND, read_out).await;
                let _ = lines.send(Err(std::io::Error::other(e.message)));
            }
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

// ---- /iso and /microkernel ----

async fn list(state: State, kind: StoreKind) -> ApiResult<Json<Vec<Entry>>> {
    let rows = blocking(move || state.bootfiles.list(kind)).await?;
    Ok(Json(rows.iter().map(Entry::from).collect()))
}

async fn put(
    AxumState(state): State,
    kind: StoreKind,
    name: Option<String>,
    req: Request,
) -> ApiResult<Response> {
    let (name, req) = upload::refuse_early(required(name, "name"), req)?;
    let service = state.bootfiles.clone();
    let n = name.clone();
    let free = blocking(move || service.check_free(kind, &n)).await;
    let ((), req) = upload::refuse_early(free, req)?;
    let service = state.bootfiles.clone();
    let what = format!("the {} {name}", word(kind));
    stream_upload(&state, req, what, move |blob| {
        service.put(kind, &name, blob, "upload")?;
        Ok(())
    })
    .await
}

async fn delete(state: State, kind: StoreKind, name: Option<String>) -> ApiResult<Json<Entry>> {
    let name = required(name, "name")?;
    let row = blocking(move || state.bootfiles.delete(kind, &name)).await?;
    Ok(Json(Entry::from(&row)))
}

fn word(kind: StoreKind) -> &'static str {
    match kind {
        StoreKind::Iso => "ISO",
        StoreKind::Microkernel => "microkernel",
    }
}

async fn list_isos(state: State) -> ApiResult<Json<Vec<Entry>>> {
    list(state, StoreKind::Iso).await
}

async fn put_iso(state: State, ApiQuery(p): ApiQuery<Params>, req: Request) -> ApiResult<Response> {
    put(state, StoreKind::Iso, p.name, req).await
}

async fn delete_iso(state: State, ApiQuery(p): ApiQuery<Params>) -> ApiResult<Json<Entry>> {
    delete(state, StoreKind::Iso, p.name).await
}

async fn list_microkernels(state: State) -> ApiResult<Json<Vec<Entry>>> {
    list(state, StoreKind::Microkernel).await
}

async fn put_microkernel(
    state: State,
    ApiQuery(p): ApiQuery<Params>,
    req: Request,
) -> ApiResult<Response> {
    put(state, StoreKind::Microkernel, p.name, req).await
}

async fn delete_microkernel(state: State, ApiQuery(p): ApiQuery<Params>) -> ApiResult<Json<Entry>> {
    delete(state, StoreKind::Microkernel, p.name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_names_and_words_as_the_image_service_had_them() {
        assert_eq!(pretty_size(4_150_000_000), "4.15 GB");
        assert_eq!(pretty_size(61_110_000), "61.11 MB");
        assert_eq!(pretty_size(1_000), "1000 Byte");
        assert_eq!(pretty_size(1_024), "1.02 KB");
        assert_eq!(
            file_name("http://h:9090/iso/photon-1.0.iso?x=/y#z"),
            "photon-1.0.iso"
        );
        assert_eq!(file_name("/srv/iso/centos-7.0.iso"), "centos-7.0.iso");
        assert_eq!(status_word(OsImageState::Ready), "OK");
        assert_eq!(status_word(OsImageState::Downloading), "downloading iso");
    }

    #[test]
    fn exactly_one_source_with_a_name_and_version() {
        let p = |q: &str| -> Params { query_of(q) };
        assert!(check_image_request(&p("name=u&version=1&isostore=x.iso")).is_ok());
        for bad in [
            "name=u&version=1",
            "name=u&version=1&isostore=x.iso&isoweb=http://h/x.iso",
            "version=1&isostore=x.iso",
            "name=u&isostore=x.iso",
            "name=u&version=1&isoclient=",
        ] {
            let e = check_image_request(&p(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
    }

    /// A query as the router's extractor reads it.
    fn query_of(q: &str) -> Params {
        let uri: axum::http::Uri = format!("/images?{q}").parse().unwrap();
        axum::extract::Query::<Params>::try_from_uri(&uri)
            .unwrap()
            .0
    }
}
