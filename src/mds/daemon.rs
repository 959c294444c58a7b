//! `jetpack mds`: the metadata service as a process. It binds the pod
//! network's host address and its control socket as root, drops to
//! `mds.user` for good, then serves pods from its index, which the hosts
//! keep current through the control socket. Keys and the index never leave
//! this process; the keys never enter a pod. Started by a server, it ends
//! with that server (`lifeline`); started on its own, on SIGTERM, SIGINT or
//! a `stop` on its control socket.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use std::sync::Arc;

use super::control::{Answer, Request, Status};
use super::counts::Counts;
use super::{lifeline, router, Index, KeyError, Keys, PodRecord};

/// How long a client may take to send its request headers (slow loris).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight may take to finish once the MDS is told to
/// stop.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// The same once its server has ended: no server keeps the index current
/// any more, so it ends quickly (tests hold it to under a second).
const ORPHAN_GRACE: Duration = Duration::from_millis(300);
/// The longest control request line (a whole index of pods).
const MAX_CONTROL_LINE: usize = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MdsError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("{path} is readable by its group or others (mode {mode:o}); it holds the MDS keys: chmod 600 {path}")]
    ConfReadable { path: String, mode: u32 },
    #[error("the MDS needs a jetpack.conf holding its keys (mds.signing-key, mds.token-key)")]
    NoConf,
    #[error("binding {what}: {source}")]
    Bind {
        what: String,
        source: std::io::Error,
    },
    #[error("no user {0:?} to run the MDS as (create it: pw useradd {0} / useradd --system {0})")]
    NoUser(String),
    #[error("dropping privileges to {user}: {reason}")]
    Privileges { user: String, reason: String },
    #[error("serving the MDS: {0}")]
    Serve(std::io::Error),
}

/// Refuses a jetpack.conf others could read: it holds the keys.
pub fn check_conf(path: Option<&Path>) -> Result<(), MdsError> {
    let path = path.ok_or(MdsError::NoConf)?;
    let mode = std::fs::metadata(path)
        .map_err(|_| MdsError::NoConf)?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(MdsError::ConfReadable {
            path: path.display().to_string(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// What the MDS process needs, gathered as root before it starts.
pub struct Daemon {
    pub keys: Keys,
    pub address: SocketAddr,
    pub user: String,
    pub socket: PathBuf,
    /// The pods that exist as it starts.
    pub pods: Vec<PodRecord>,
}

/// Binds, drops privileges, serves until SIGTERM, SIGINT, a `stop` on
/// the control socket, or the end of the server that started it.
pub fn run(d: Daemon) -> Result<(), MdsError> {
    let handle = axum_server::Handle::new();
    let started_by = lifeline::started_by();
    if let Some(server) = started_by {
        // Watched from the start: a server that ends while this MDS is
        // still binding ends it too.
        let handle = handle.clone();
        lifeline::watch(std::io::stdin(), move || {
            tracing::info!(
                "the server that started this MDS (pid {server}) has ended; MDS stopping"
            );
            handle.graceful_shutdown(Some(ORPHAN_GRACE));
            // Whatever the server loop is doing (even not serving yet),
            // this MDS does not outlive its server by more than this.
            std::thread::sleep(ORPHAN_GRACE + Duration::from_millis(200));
            std::process::exit(0);
        })
        .map_err(MdsError::Serve)?;
    }
    let bind = |what: String| move |source| MdsError::Bind { what, source };
    let listener = std::net::TcpListener::bind(d.address).map_err(bind(d.address.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(bind(d.address.to_string()))?;
    // A socket left by a previous run is replaced; only root may open it.
    let socket_name = d.socket.display().to_string();
    let _ = std::fs::remove_file(&d.socket);
    let control =
        std::os::unix::net::UnixListener::bind(&d.socket).map_err(bind(socket_name.clone()))?;
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(bind(socket_name.clone()))?;
    control.set_nonblocking(true).map_err(bind(socket_name))?;
    let uid = drop_privileges(&d.user)?;

    let index = Index::default();
    index.replace(d.pods);
    let status = Status {
        version: env!("CARGO_PKG_VERSION").to_string(),
        user: d.user.clone(),
        uid,
        address: d.address,
        pods: 0,
        pid: Some(std::process::id()),
        keys: Some(d.keys.fingerprint().to_string()),
        started_by,
    };
    tracing::info!(
        "MDS on http://{} as {} (uid {uid}), {} pod(s), keys {}, {}",
        d.address,
        d.user,
        index.len(),
        d.keys.fingerprint(),
        match started_by {
            Some(server) => format!("ends with the server that started it (pid {server})"),
            None => "started on its own".to_string(),
        }
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(MdsError::Serve)?;
    let counts = Arc::new(Counts::default());
    runtime.block_on(async move {
        let control = tokio::net::UnixListener::from_std(control).map_err(MdsError::Serve)?;
        let kept = Kept {
            index: index.clone(),
            counts: counts.clone(),
            status,
        };
        tokio::spawn(control_loop(control, kept, handle.clone()));
        tokio::spawn(stop_on_signal(handle.clone()));
        let mut server = axum_server::from_tcp(listener).map_err(MdsError::Serve)?;
        server
            .http_builder()
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        server
            .handle(handle)
            .serve(
                router(index, d.keys, counts).into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .map_err(MdsError::Serve)
    })
}

/// Gives up root for `user`'s uid and gid (and no other groups), for good.
fn drop_privileges(user: &str) -> Result<u32, MdsError> {
    use nix::unistd::{setgid, setgroups, setuid, User};
    let fail = |reason: String| MdsError::Privileges {
        user: user.to_string(),
        reason,
    };
    let found = User::from_name(user)
        .map_err(|e| fail(e.to_string()))?
        .ok_or_else(|| MdsError::NoUser(user.to_string()))?;
    setgroups(&[found.gid]).map_err(|e| fail(format!("setgroups: {e}")))?;
    setgid(found.gid).map_err(|e| fail(format!("setgid: {e}")))?;
    setuid(found.uid).map_err(|e| fail(format!("setuid: {e}")))?;
    if found.uid.is_root() || setuid(nix::unistd::Uid::from_raw(0)).is_ok() {
        return Err(fail("root could be regained".into()));
    }
    Ok(found.uid.as_raw())
}

async fn stop_on_signal(handle: axum_server::Handle<SocketAddr>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("MDS stopping");
    handle.graceful_shutdown(Some(STOP_GRACE));
}

/// What the control socket reads and changes.
#[derive(Clone)]
struct Kept {
    index: Index,
    counts: Arc<Counts>,
    status: Status,
}

async fn control_loop(
    listener: tokio::net::UnixListener,
    kept: Kept,
    handle: axum_server::Handle<SocketAddr>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (kept, handle) = (kept.clone(), handle.clone());
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).take(MAX_CONTROL_LINE as u64).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let request = serde_json::from_str::<Request>(&line);
                let stop = matches!(request, Ok(Request::Stop));
                let answer = match request {
                    Ok(request) => apply(&kept, request),
                    Err(e) => {
                        tracing::warn!("MDS control: bad request: {e}");
                        Answer::Done { ok: false }
                    }
                };
                let mut text = serde_json::to_string(&answer).unwrap_or_default();
                text.push('\n');
                let written = write.write_all(text.as_bytes()).await;
                // Answered first, so that the asker knows it was heard.
                if stop {
                    tracing::info!("MDS stopping: asked to on its control socket");
                    handle.graceful_shutdown(Some(STOP_GRACE));
                }
                if written.is_err() {
                    break;
                }
            }
        });
    }
}

fn apply(kept: &Kept, request: Request) -> Answer {
    let index = &kept.index;
    match request {
        Request::Replace { pods } => index.replace(pods),
        Request::Insert { pod } => index.insert(pod),
        Request::Remove { address } => index.remove(address),
        Request::Status => {
            return Answer::Status(Status {
                pods: index.len(),
                ..kept.status.clone()
            })
        }
        Request::Figures => return Answer::Figures(kept.counts.read()),
        // `control_loop` stops the server once this is answered.
        Request::Stop => {}
    }
    Answer::Done { ok: true }
}
