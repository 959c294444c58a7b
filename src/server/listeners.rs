//! The listeners beside the API and the hangar: `metrics.listen`
//! (/metrics alone), `files.listen` (the southbound file server) and
//! `imageservice.port` (RackHD's image-service routes). Each has its own
//! gate and the API's clocks, and each is off unless configured.

use std::net::SocketAddr;
use std::sync::Arc;

use super::{io, ServeError, DRAIN};
use crate::api::{self, AppState};
use crate::config::ServerConfig;

/// Connections the `metrics.listen` listener holds at once (and per
/// address): scrapers are few; its descriptors come on top of the API's
/// and the hangar's shares.
const METRICS_CONNS: usize = 64;
const METRICS_CONNS_PER_IP: usize = 16;

/// Binds `at` and serves `app` there until `stop`, on `gate` and the API's
/// clocks; `what` names the listener in a bind error.
async fn spawn_listener(
    at: SocketAddr,
    what: String,
    app: axum::Router,
    tls: Option<api::serve::ReloadableTls>,
    gate: Arc<crate::net::ConnGate>,
    server: &ServerConfig,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .map_err(io(format!("binding {what} on {at}")))?;
    tokio::spawn(api::serve::serve(
        app,
        listener,
        tls,
        server.api_limits.clone(),
        gate,
        stop,
        DRAIN,
    ));
    Ok(())
}

/// `metrics.listen`: /metrics alone over plain HTTP, bounded by its own
/// gate and the API's clocks.
pub(super) async fn serve_metrics(
    state: Arc<AppState>,
    at: SocketAddr,
    server: &ServerConfig,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), ServeError> {
    let gate = crate::net::ConnGate::new("metrics", METRICS_CONNS, METRICS_CONNS_PER_IP, true);
    let app = api::metrics::listener_app(state.clone());
    spawn_listener(
        at,
        "the metrics listener".into(),
        app,
        None,
        gate,
        server,
        stop,
    )
    .await?;
    tracing::info!(
        "metrics listening on http://{at}/metrics ({})",
        if state.host.config().metrics.auth {
            "the API's auth"
        } else {
            "no auth: metrics.auth = none"
        }
    );
    Ok(())
}

/// `files.listen`: the southbound file server (read-only, no auth) over
/// the catalog, on its own gate and the API's clocks; TLS (the API's
/// certificate, reloaded with it) only when `files.tls` is on.
pub(super) async fn serve_files(
    state: &Arc<AppState>,
    api_tls: Option<api::serve::ReloadableTls>,
    server: &ServerConfig,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), ServeError> {
    let files = state.host.config().files.clone();
    let Some(at) = files.listen else {
        tracing::info!("file server off (files.listen = off)");
        return Ok(());
    };
    let tls = if files.tls {
        match api_tls {
            Some(tls) => Some(tls),
            None => {
                tracing::warn!("files.tls is on but the API has no TLS (server.tls off): serving files without TLS");
                None
            }
        }
    } else {
        None
    };
    // Booting machines fetch big files and keep few connections: no
    // eviction, so a long download is never cut for a newcomer.
    let gate = crate::net::ConnGate::new("files", files.max_conns, files.max_conns_per_ip, false);
    let trees = Arc::new(crate::files::CatalogTrees::new(
        state.catalog.clone(),
        state.bootfiles.clone(),
    ));
    let boots = Arc::new(crate::netboot::Netboot::new(state.catalog.clone()));
    let https = tls.is_some();
    let app = crate::files::app_with_netboot(trees, files.allow.clone(), Some(boots), https);
    let what = "the file server (files.listen)".to_string();
    spawn_listener(at, what, app, tls, gate, server, stop).await?;
    tracing::info!(
        "file server listening on {}://{at} (read-only, no auth; {})",
        if https { "https" } else { "http" },
        if files.allow.is_empty() {
            "any source".to_string()
        } else {
            format!("{} allowed source range(s)", files.allow.len())
        }
    );
    Ok(())
}

/// `imageservice.port`: RackHD image-service's northbound routes on their
/// own gate and the API's clocks; the API's users and TLS unless told
/// `imageservice.auth = none` / `imageservice.tls = off`, which are refused
/// rather than silently weakened when the API has no users or certificate.
pub(super) async fn serve_imageservice(
    state: &Arc<AppState>,
    api_tls: Option<api::serve::ReloadableTls>,
    server: &ServerConfig,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), ServeError> {
    let conf = state.host.config().imageservice.clone();
    let Some(port) = conf.port else {
        return Ok(());
    };
    if conf.auth && state.users.is_none() {
        return Err(ServeError::ImageService(
            "imageservice.auth = basic needs the API's users, but server.auth = none: set imageservice.auth = none to serve it without auth",
        ));
    }
    let tls = match (conf.tls, api_tls) {
        (true, Some(tls)) => Some(tls),
        (true, None) => {
            return Err(ServeError::ImageService(
                "imageservice.tls = on needs the API's certificate, but server.tls = off: set imageservice.tls = off to serve it over plain HTTP",
            ))
        }
        (false, _) => None,
    };
    let at = SocketAddr::new(conf.listen, port);
    let https = tls.is_some();
    let gate =
        crate::net::ConnGate::new("imageservice", conf.max_conns, conf.max_conns_per_ip, false);
    let app = api::imageservice::app(state.clone(), conf.allow.clone(), conf.auth);
    let what = "the image-service listener (imageservice.port)".to_string();
    spawn_listener(at, what, app, tls, gate, server, stop).await?;
    tracing::info!(
        "image-service API listening on {}://{at} ({}; {})",
        if https { "https" } else { "http" },
        if conf.auth {
            "the API's users"
        } else {
            "no auth"
        },
        if conf.allow.is_empty() {
            "any source".to_string()
        } else {
            format!("{} allowed source range(s)", conf.allow.len())
        }
    );
    Ok(())
}
