//! `jetpack serve`: the server process. It owns first start (TLS identity,
//! the first user, the default uplink), logging, the listeners and their
//! life: SIGTERM drains, SIGHUP reloads users and certificates. It wires
//! the layers together and is imported by nothing but `main` and `cli`;
//! the pieces it uses that are not HTTP live below it (`access` for
//! users, TLS identities and login rules, `logging` for the log ring).

mod fleet_sync;
mod job_queue;
mod listeners;
mod mds;
mod pod_watch;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::access::logins::Logins;
use crate::access::tls::{self, TlsError};
use crate::access::users::{self, Htpasswd, Users, UsersError};
use crate::api::{self, AppState};
use crate::catalog::{Catalog, CatalogError};
use crate::config::{Config, ServerConfig};
use crate::hangar::fleet::{Fleet, FleetError, Limits};
use crate::hangar::token::TokenError;
use crate::hangar::{self, Hangar};
use crate::jobs::{JobError, Jobs};
use crate::runtime::{Host, HostEnv, RuntimeError, UrlSources};

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Users(#[from] UsersError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Mds(#[from] mds::MdsError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Influx(#[from] crate::metrics::influx::InfluxError),
    #[error(transparent)]
    Jobs(#[from] JobError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Disks(#[from] crate::disks::DiskError),
    #[error(transparent)]
    BootFiles(#[from] crate::bootfiles::BootFilesError),
    #[error(transparent)]
    Hosts(#[from] crate::hosts::HostsError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    ImageService(&'static str),
    #[error(transparent)]
    DataDir(#[from] crate::store::backup::BackupError),
    #[error("--clean erases every pod, base, image, NaCl, uplink and job: add --yes to confirm")]
    CleanNotConfirmed,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// How long SIGTERM waits for requests (and blob writes) in flight.
const DRAIN: Duration = Duration::from_secs(30);
/// The web console's counts change at most this often, however many
/// instances change (docs/CONSOLE.md).
const COUNTS_EVERY: Duration = Duration::from_millis(250);

/// Makes the first user when the htpasswd file has none: `admin` with a
/// random password written once to `admin.password` beside it (0600).
fn ensure_first_user(server: &ServerConfig) -> Result<(), ServeError> {
    let mut file = Htpasswd::load(&server.htpasswd)?;
    if !file.is_empty() {
        return Ok(());
    }
    let password = crate::catalog::random_hex(16)?;
    file.set("admin", &password)?;
    let password_file = server
        .htpasswd
        .parent()
        .unwrap_or(Path::new("."))
        .join("admin.password");
    users::write_private(&password_file, format!("{password}\n").as_bytes())?;
    file.save(&server.htpasswd)?;
    tracing::warn!(
        "no users in {}: made user admin; its password is in {}",
        server.htpasswd.display(),
        password_file.display()
    );
    Ok(())
}

/// The URL instances reach the hangar at: `uplink.url`, else the host's
/// primary address (an instance cannot resolve the host's name).
pub fn hangar_url(server: &ServerConfig) -> String {
    if !server.uplink_url.is_empty() {
        return server.uplink_url.clone();
    }
    let host = primary_address()
        .map(|a| a.to_string())
        .or_else(|| nix::unistd::gethostname().ok()?.into_string().ok())
        .unwrap_or_else(|| "localhost".into());
    hangar_url_at(server, &host)
}

/// This server's name among the fleet's hosts: `host.name`, else the
/// machine's.
fn host_name(config: &Config) -> String {
    if !config.host.name.is_empty() {
        return config.host.name.clone();
    }
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// This server's heartbeat in the fleet's hosts table.
fn hosts(
    config: &Config,
    server: &ServerConfig,
    catalog: &Arc<Catalog>,
    fleet: &Arc<crate::hangar::fleet::Fleet>,
    host: &Arc<Host>,
    hangar_url: &str,
    api_pin: &str,
) -> Result<Arc<crate::hosts::Hosts>, ServeError> {
    let scheme = if server.tls { "https" } else { "http" };
    let api_address = if server.listen.is_unspecified() {
        primary_address()
            .map(std::net::IpAddr::V4)
            .unwrap_or(server.listen)
    } else {
        server.listen
    };
    let api_url = format!(
        "{scheme}://{}",
        std::net::SocketAddr::new(api_address, server.port)
    );
    // Other hosts refuse to send the fleet secret to a plain http:// API
    // that is not loopback (hosts::peer): said once here, where the
    // operator looks, rather than in every other host's failed forwards.
    if matches!(config.store, crate::config::StoreDriver::Postgres(_)) {
        let seen_as = crate::hosts::peer::Peer {
            name: host_name(config),
            api_url: api_url.clone(),
            pin: String::new(),
        };
        if let Err(crate::hosts::peer::PeerError::Cleartext { .. }) = seen_as.check() {
            tracing::warn!(
                "API TLS is off (--noservertls) at {api_url}: other hosts of the fleet will not \
                 forward requests to this one (the fleet secret is not sent in clear)"
            );
        }
    }
    let pool = match config.datasets_driver {
        crate::config::DatasetsDriver::Dir => config.root_mountpoint.display().to_string(),
        _ => config.root_zfs.clone(),
    };
    let limits = crate::launch::create::host_limits();
    let me = crate::store::hosts::HostBeat {
        name: host_name(config),
        api_url,
        hangar_url: hangar_url.to_string(),
        pool,
        capacity: config.build_concurrency as u32,
        version: env!("CARGO_PKG_VERSION").to_string(),
        instances: 0,
        pods: 0,
        started_at: crate::store::now(),
        api_pin: api_pin.to_string(),
        launch: String::new(),
        memory_mib: limits.memory_mib,
        cpus: limits.cpus,
    };
    let (fleet, host) = (fleet.clone(), host.clone());
    let measure: crate::hosts::Measure = Box::new(move || crate::hosts::Measured {
        instances: fleet.docked_here() as u64,
        pods: host
            .pod_counts()
            .map(|c| c.iter().map(|(_, n)| n).sum())
            .unwrap_or(0),
        launch: crate::launch::create::hypervisors(&host),
    });
    let hosts = Arc::new(crate::hosts::Hosts::new(
        catalog.clone(),
        me,
        measure,
        config.host.heartbeat,
        config.host.down_after,
    )?);
    hosts.start()?;
    Ok(hosts)
}

fn hangar_url_at(server: &ServerConfig, host: &str) -> String {
    let scheme = if server.uplink_tls { "https" } else { "http" };
    format!("{scheme}://{host}:{}", server.uplink_port)
}

/// The address this host's default route leaves from: a UDP socket
/// "connected" to a documentation address sends nothing, but the kernel
/// picks its source address.
fn primary_address() -> Option<std::net::Ipv4Addr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    match socket.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(a) if !a.is_unspecified() => Some(a),
        _ => None,
    }
}

/// Makes the server's own folder (users, keys, admin.password) 0700 with
/// 0600 files, and tightens one found looser, saying so once.
fn private_dir(dir: &Path) -> Result<(), ServeError> {
    use crate::store::private;
    private::create_dir(dir).map_err(io(format!("creating {}", dir.display())))?;
    let tightened = private::tighten(dir, private::Depth::Tree)
        .map_err(io(format!("tightening the modes under {}", dir.display())))?;
    if tightened > 0 {
        tracing::warn!(
            "tightened modes of {tightened} path(s) under {} (they were open to group or others)",
            dir.display()
        );
    }
    Ok(())
}

/// Erases the runtime's pods and bases and the catalog (`--clean --yes`).
fn clean(host: &Host, catalog: &Catalog) -> Result<(), ServeError> {
    for pod in host.pods()? {
        host.remove_pod(&pod, true)?;
    }
    for base in host.bases()? {
        host.remove_base_with(
            base.id.as_str(),
            true,
            &crate::build::BuilderHolds::Fleet(catalog),
        )?;
    }
    catalog.clear()?;
    tracing::warn!("--clean: erased every pod, base, image, NaCl, snippet, uplink and job");
    Ok(())
}

/// Runs the server until SIGTERM or SIGINT.
pub fn serve(
    config: Config,
    env: HostEnv,
    clean_first: bool,
    confirmed: bool,
) -> Result<(), ServeError> {
    if clean_first && !confirmed {
        return Err(ServeError::CleanNotConfirmed);
    }
    // Everything the server makes (keys, users, state) is root's only.
    crate::store::private::private_umask();
    let server = config.server.clone();
    let ring = crate::logging::init(server.verbose, server.log_lines);
    // The API's TLS identity, the users and the hangar's identity all live
    // in the server's folder: made private once (a walk of the tree), by
    // whichever of them is on.
    if server.tls || server.auth || server.uplink_tls {
        private_dir(&server.dir)?;
    }
    let identity = if server.tls {
        if tls::ensure_self_signed(&server.certfile, &server.keyfile)? {
            tracing::warn!(
                "made a self-signed certificate {} (key {})",
                server.certfile.display(),
                server.keyfile.display()
            );
        }
        let identity = tls::load(&server.certfile, &server.keyfile)?;
        tracing::info!(
            "TLS certificate {} SHA-256 fingerprint {} (valid until {})",
            server.certfile.display(),
            identity.fingerprint,
            identity.not_after
        );
        Some(identity)
    } else {
        None
    };
    let users = if server.auth {
        ensure_first_user(&server)?;
        let users = Arc::new(Users::open(&server.htpasswd)?);
        tracing::info!(
            "{} user(s) registered in {}",
            users.count(),
            server.htpasswd.display()
        );
        Some(users)
    } else {
        tracing::warn!("API auth is off (--serverauth none): anyone who reaches the port is admin");
        None
    };
    // Base imports through the API fetch URLs API users gave: checked
    // against base.import.allow.
    let host = Arc::new(Host::init_for(config.clone(), env, UrlSources::Users)?);
    // One server per data dir, and no restore under it (`store::backup`).
    // Taken once the host is made: the data dir is often the root
    // dataset's mountpoint, which must be empty when it is first mounted.
    let _data_dir_lock = crate::store::backup::DataDirLock::take(&config.data_dir)?;
    let _mds = mds::start(&host)?;
    let catalog = Arc::new(Catalog::open_on(
        &config.data_dir,
        &config.store,
        &host_name(&config),
    )?);
    if let crate::config::StoreDriver::Postgres(pg) = &config.store {
        tracing::info!(
            "the fleet's tables are in PostgreSQL at {} (tls {})",
            crate::store::sql::postgres::redact(&pg.url),
            if pg.tls { "on" } else { "off" }
        );
    }
    if clean_first {
        clean(&host, &catalog)?;
    }
    let swept = catalog.sweep_blobs()?;
    if swept > 0 {
        tracing::info!("removed {swept} blob(s) no image refers to");
    }
    let disks = Arc::new(crate::disks::Disks::open(
        &config.data_dir,
        config.disks.clone(),
    )?);
    let images: std::collections::HashSet<String> = catalog
        .images(&Default::default())?
        .into_iter()
        .map(|i| i.id.to_string())
        .collect();
    let swept = disks.sweep(&images)?;
    if swept > 0 {
        tracing::info!("removed the disks of {swept} image(s) that are gone");
    }
    let uploads = config.data_dir.join("uploads");
    let _ = std::fs::remove_dir_all(&uploads);
    let default_url = hangar_url(&server);
    // Launched instances reach the hangar through their pod, at the pod
    // network's host address.
    let launch_url = hangar_url_at(&server, &config.ip4_range.host().to_string());
    for (name, url) in [
        (crate::catalog::DEFAULT_UPLINK, &default_url),
        (crate::catalog::LAUNCH_UPLINK, &launch_url),
    ] {
        if let Some(made) = catalog.ensure_uplink(name, url)? {
            tracing::info!("made the uplink {name} ({}) -> {}", made.id, made.url);
        }
    }
    let jobs = Arc::new(Jobs::open(catalog.clone(), &config.data_dir)?);
    // After the jobs: their runner has failed the jobs of OS images a
    // previous server left in work; this marks those images failed too.
    let bootfiles = Arc::new(crate::bootfiles::BootFiles::open(
        host.clone(),
        catalog.clone(),
        jobs.clone(),
    )?);
    if clean_first {
        // The catalog's clear swept the stores' blobs: their rows go too.
        bootfiles.clear()?;
        // Netboot mappings name the images just erased.
        catalog
            .with_store(|s| s.clear_netboot())
            .map_err(CatalogError::Store)?;
    }
    let fleet = Arc::new(Fleet::load(
        catalog.clone(),
        Limits {
            log_bytes: server.uplink_log_bytes,
            stats_history: server.uplink_stats_history,
            ..Limits::default()
        },
    )?);
    if !fleet.is_empty() {
        tracing::info!(
            "{} known instance(s), unknown until they dock again",
            fleet.len()
        );
    }
    let hangar = Arc::new(Hangar::new(
        catalog.clone(),
        fleet.clone(),
        hangar::Settings {
            ping: Duration::from_secs(server.uplink_ping),
            max_transport: server.uplink_max_transport,
            auth_rate: server.uplink_auth_rate as f64,
            auth_burst: server.uplink_auth_burst as f64,
            ..hangar::Settings::default()
        },
    )?);
    let hangar_tls = if server.uplink_tls {
        if hangar::tls::ensure_self_signed(&server.uplink_certfile, &server.uplink_keyfile)? {
            tracing::warn!(
                "made a self-signed RSA certificate for the hangar {} (key {})",
                server.uplink_certfile.display(),
                server.uplink_keyfile.display()
            );
        }
        let acceptor = hangar::tls::acceptor(&server.uplink_certfile, &server.uplink_keyfile)?;
        tracing::info!(
            "hangar TLS certificate {} SHA-256 fingerprint {}",
            server.uplink_certfile.display(),
            hangar::tls::fingerprint(&server.uplink_certfile).unwrap_or_default()
        );
        Some(Arc::new(acceptor))
    } else {
        tracing::warn!("hangar TLS is off (--nouplinktls): instances dock over plain ws://");
        None
    };
    let builders = Arc::new(crate::build::Builders::new(
        host.clone(),
        catalog.clone(),
        &config,
    ));
    match crate::launch::control::resume(&host) {
        Ok(ids) if !ids.is_empty() => {
            tracing::info!("started launched instances again: {}", ids.join(", "))
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("launched instances could not all be started again: {e}"),
    }
    if config.jail_autostart {
        autostart(&host);
    }
    let launches = Arc::new(crate::launch::service::Launches {
        host: host.clone(),
        catalog: catalog.clone(),
        fleet: fleet.clone(),
        seats: Default::default(),
    });
    let listener = Arc::downgrade(&launches);
    fleet.on_image(Box::new(move |id, image| match listener.upgrade() {
        Some(launches) => launches
            .deployed(id, image)
            .map_err(|e| format!("its pod still boots the image it had: {e}")),
        None => Ok(()),
    }));
    let events = Arc::new(crate::events::Events::new());
    fleet.publish_to(events.clone());
    jobs.publish_to(events.clone());
    // Other hosts reach this one's API pinned to its certificate.
    let api_pin = identity.as_ref().map_or("", |i| i.fingerprint.as_str());
    let hosts = hosts(
        &config,
        &server,
        &catalog,
        &fleet,
        &host,
        &default_url,
        api_pin,
    )?;
    let state = Arc::new(AppState {
        hosts,
        disks,
        events,
        launches,
        bootfiles,
        name: server.name.clone(),
        started: Instant::now(),
        started_at: crate::store::now(),
        catalog,
        jobs,
        host,
        builders,
        fleet,
        users: users.clone(),
        logins: Logins::new(&server.login),
        sessions: Default::default(),
        log: ring,
        max_body: server.max_body,
        max_upload: server.max_upload,
        tls: server.tls,
        hangar_url: default_url,
        hangar_tls: server.uplink_tls,
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("starting the async runtime"))?;
    let bootfiles = state.bootfiles.clone();
    let ran = runtime.block_on(run(
        state,
        server,
        identity.map(|i| i.config),
        users,
        hangar,
        hangar_tls,
    ));
    // The runtime's end waits for blocking work: OS images in work stop now.
    bootfiles.stop();
    ran
}

async fn run(
    state: Arc<AppState>,
    server: ServerConfig,
    tls_config: Option<Arc<rustls::ServerConfig>>,
    users: Option<Arc<Users>>,
    hangar: Arc<Hangar>,
    hangar_tls: Option<Arc<openssl::ssl::SslAcceptor>>,
) -> Result<(), ServeError> {
    let stop = tokio_util::sync::CancellationToken::new();
    let fleet = state.fleet.clone();
    tokio::spawn(crate::events::publish_counts(
        state.events.clone(),
        COUNTS_EVERY,
        move || fleet.summary(),
        stop.clone(),
    ));
    tokio::spawn(pod_watch::watch(
        state.host.clone(),
        state.events.clone(),
        stop.clone(),
    ));
    if matches!(
        state.host.config().store,
        crate::config::StoreDriver::Postgres(_)
    ) {
        // Images built or uploaded elsewhere are fetched from there.
        state
            .catalog
            .set_blob_source(Arc::new(crate::hosts::blobs::PeerBlobs {
                hosts: state.hosts.clone(),
                runtime: tokio::runtime::Handle::current(),
            }));
        // Builds and launches go to the fleet's queue; this host takes its
        // share.
        state.jobs.share();
        let _ = state.launches.seats.set(state.hosts.clone());
        let bases: Arc<dyn crate::build::queue::BaseSource> =
            Arc::new(crate::hosts::bases::PeerBases {
                hosts: state.hosts.clone(),
                host: state.host.clone(),
                runtime: tokio::runtime::Handle::current(),
                fetching: std::sync::Mutex::new(()),
            });
        let taker = job_queue::Taker {
            jobs: state.jobs.clone(),
            builders: state.builders.clone(),
            launches: state.launches.clone(),
            hosts: state.hosts.clone(),
            bases,
            staying: Default::default(),
        };
        tokio::spawn(job_queue::run(Arc::new(taker), stop.clone()));
        tokio::spawn(fleet_sync::run(
            state.catalog.clone(),
            state.fleet.clone(),
            state.hosts.clone(),
            stop.clone(),
        ));
    }
    start_reporter(&state)?;
    let metrics_listen = state.host.config().metrics.listen;
    if let Some(at) = metrics_listen {
        listeners::serve_metrics(state.clone(), at, &server, stop.clone()).await?;
    }
    let tls = tls_config.map(api::serve::ReloadableTls::new);
    listeners::serve_files(&state, tls.clone(), &server, stop.clone()).await?;
    listeners::serve_imageservice(&state, tls.clone(), &server, stop.clone()).await?;
    let hosts = state.hosts.clone();
    let app = api::app(state);
    let addr = SocketAddr::new(server.listen, server.port);
    let fd_limit = match crate::net::raise_fd_limit() {
        Some(limit) => {
            if limit < 65536 {
                tracing::warn!(
                    "descriptor limit {limit} (not raised: no CAP_SYS_RESOURCE?): the hangar holds fewer than {limit} docked instances"
                );
            }
            limit
        }
        None => {
            tracing::warn!("cannot read the descriptor limit; assuming 1024");
            1024
        }
    };
    // Each listener has its own share, so neither can starve the other.
    let budget = crate::net::budget(
        fd_limit,
        server.api_limits.max_conns,
        server.hangar_limits.max_conns,
    );
    // The API evicts idle connections for new ones; the hangar does not,
    // since its connections are docked instances, idle by nature.
    let api_gate =
        crate::net::ConnGate::new("API", budget.api, server.api_limits.max_conns_per_ip, true);
    let hangar_gate = crate::net::ConnGate::new(
        "hangar",
        budget.hangar,
        server.hangar_limits.max_conns_per_ip,
        false,
    );
    tracing::info!(
        "descriptor limit {fd_limit}: API up to {} connection(s) ({} per address), hangar up to {} ({} per address)",
        budget.api,
        api_gate.max_per_ip(),
        budget.hangar,
        hangar_gate.max_per_ip()
    );
    let hangar_addr = SocketAddr::new(server.listen, server.uplink_port);
    let hangar_listener = tokio::net::TcpListener::bind(hangar_addr)
        .await
        .map_err(io(format!("binding the hangar on {hangar_addr}")))?;
    tracing::info!(
        "hangar listening on {}://{hangar_addr} ({}) for instances",
        if hangar_tls.is_some() {
            "https"
        } else {
            "http"
        },
        if hangar_tls.is_some() {
            "TLS, AES256-SHA offered"
        } else {
            "no TLS"
        }
    );
    tokio::spawn(hangar::listener::serve(
        hangar.clone(),
        hangar_listener,
        hangar_tls,
        hangar_gate,
        stop.clone(),
    ));
    tokio::spawn(signals(
        tls.clone(),
        server.clone(),
        users,
        hosts,
        stop.clone(),
    ));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(io(format!("binding {addr}")))?;
    tracing::info!(
        "API listening on {scheme}://{addr} ({})",
        if tls.is_some() { "TLS" } else { "no TLS" }
    );
    api::serve::serve(
        app,
        listener,
        tls,
        server.api_limits.clone(),
        api_gate,
        stop,
        DRAIN,
    )
    .await;
    tracing::info!("stopped");
    Ok(())
}

/// `metrics.reporter = influxdb`: Mothership's InfluxDB reporter, on a
/// thread of its own, fed STATS by the hangar through a bounded queue.
fn start_reporter(state: &Arc<AppState>) -> Result<(), ServeError> {
    use crate::metrics::influx;
    let config = state.host.config();
    if !config.metrics.influxdb {
        return Ok(());
    }
    influx::start(influx::Settings {
        target: influx::Target::from_env(|k| std::env::var(k).ok())?,
        interval: Duration::from_secs(config.metrics.interval),
        stats: crate::metrics::instances::StatLimits {
            max_keys: config.metrics.stats_max,
            ..Default::default()
        },
        sources: crate::api::metrics::sources(state),
    })?;
    Ok(())
}

/// SIGTERM/SIGINT: stop taking connections, close idle ones, and let the
/// ones in flight finish (up to `DRAIN`). SIGHUP: re-read users and the
/// certificate.
async fn signals(
    tls: Option<api::serve::ReloadableTls>,
    server: ServerConfig,
    users: Option<Arc<Users>>,
    hosts: Arc<crate::hosts::Hosts>,
    stop: tokio_util::sync::CancellationToken,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                if let Some(users) = &users {
                    match users.reload() {
                        Ok(n) => tracing::info!("SIGHUP: {n} user(s)"),
                        Err(e) => tracing::error!("SIGHUP: users: {e}"),
                    }
                }
                if let Some(tls) = &tls {
                    match tls::load(&server.certfile, &server.keyfile) {
                        Ok(id) => {
                            tls.reload(id.config);
                            tracing::info!("SIGHUP: certificate {} reloaded", id.fingerprint);
                            // The other hosts pin the new one from the next beat.
                            hosts.set_api_pin(&id.fingerprint);
                        }
                        Err(e) => tracing::error!("SIGHUP: keeping the old certificate: {e}"),
                    }
                }
            }
        }
    }
    tracing::info!(
        "stopping: closing idle connections, draining requests in flight (up to {}s)",
        DRAIN.as_secs()
    );
    // Docked instances are told the server goes away; they re-dock to
    // the next one by themselves.
    stop.cancel();
}

/// Starts the pods marked --autostart (`jail.autostart`), each one's
/// outcome logged: one that cannot start does not stop the server.
fn autostart(host: &crate::runtime::Host) {
    match host.autostart_pods() {
        Ok(outcomes) => {
            for (pod, ran) in outcomes {
                match ran {
                    Ok(()) => tracing::info!("autostart: started pod {}", pod.label()),
                    Err(e) => tracing::warn!("autostart: pod {}: {e}", pod.label()),
                }
            }
        }
        Err(e) => tracing::warn!("autostart: {e}"),
    }
}
