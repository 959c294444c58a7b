//! One scrape: the kept figures (figures.rs), and what is computed at that
//! moment from the layers: the fleet's counts and instances, jobs and pods
//! from the store, the blob store's size, the process. Blocking (the
//! store, the blob directory): run it off the async workers.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::instances::{self, Selection, StatLimits};
use super::snapshot::{text, Family, Kind, Snapshot, Value};
use crate::catalog::Catalog;
use crate::hangar::fleet::Fleet;
use crate::model::jobs::{JobKind, JobState};
use crate::runtime::Host;

/// What a scrape reads.
#[derive(Clone)]
pub struct Sources {
    pub fleet: Arc<Fleet>,
    pub catalog: Arc<Catalog>,
    /// `<data.dir>`: its `blobs/` is measured.
    pub data_dir: PathBuf,
    /// Unix time the server started.
    pub started_at: i64,
    /// The MDS's control socket, when an MDS serves this host's pods.
    pub mds_socket: Option<PathBuf>,
    /// The host whose pods are counted: they are in its own store, never
    /// the catalog's (which is PostgreSQL when hosts share one).
    pub host: Option<Arc<Host>>,
}

/// How one scrape shows the instances.
#[derive(Debug, Clone, Copy)]
pub struct Scrape {
    pub instances: Selection,
    /// `metrics.instances.max`.
    pub cap: usize,
    pub stats: StatLimits,
}

/// Everything, read now. Blocking.
pub fn snapshot(src: &Sources, scrape: &Scrape) -> Snapshot {
    let mut out = Snapshot::default();
    let mut info = Family::new(
        "jetpack_build_info",
        "Always 1: the version of jetpack and the system it was built for",
        Kind::Gauge,
    );
    info.push(
        vec![
            ("version", text(env!("CARGO_PKG_VERSION"))),
            ("os", text(std::env::consts::OS)),
            ("arch", text(std::env::consts::ARCH)),
        ],
        Value::Int(1),
    );
    out.add(info);
    super::figures().read(&mut out);
    super::influx::read(&mut out);
    fleet_counts(&src.fleet, &mut out);
    store_counts(&src.catalog, src.host.as_deref(), &mut out);
    blobs(&src.data_dir.join("blobs"), &mut out);
    super::process::read(src.started_at, &mut out);
    super::mds::read(src.mds_socket.as_deref(), &mut out);
    instances::read(
        &src.fleet,
        scrape.instances,
        scrape.cap,
        &scrape.stats,
        &mut out,
    );
    out
}

fn fleet_counts(fleet: &Fleet, out: &mut Snapshot) {
    let s = fleet.summary();
    let mut f = Family::new(
        "jetpack_instances",
        "Instances the hangar knows, by status",
        Kind::Gauge,
    );
    for (status, n) in [
        ("connected", s.connected),
        ("connecting", s.connecting),
        ("disconnected", s.disconnected),
        ("unknown", s.unknown),
    ] {
        f.push(vec![("status", text(status))], Value::Int(n as u64));
    }
    out.add(f);
    out.add(Family::single(
        "jetpack_instances_panicked",
        "Instances that reported a panic, whatever their status",
        Kind::Gauge,
        Value::Int(s.panicked as u64),
    ));
}

fn store_counts(catalog: &Catalog, host: Option<&Host>, out: &mut Snapshot) {
    let jobs = catalog.with_store(|s| s.job_counts());
    let pods = host.map(Host::pod_counts).transpose();
    let mut f = Family::new(
        "jetpack_jobs",
        "Jobs in the store, by kind and state",
        Kind::Gauge,
    );
    let mut queued = 0;
    match jobs {
        Ok(rows) => {
            // Every known kind and state, so that a series exists at 0.
            for kind in JobKind::ALL {
                for state in JobState::ALL {
                    let n = rows
                        .iter()
                        .find(|(k, s, _)| k == kind.as_str() && s == state.as_str())
                        .map_or(0, |r| r.2);
                    if state == JobState::Queued {
                        queued += n;
                    }
                    f.push(
                        vec![
                            ("kind", text(kind.as_str())),
                            ("state", text(state.as_str())),
                        ],
                        Value::Int(n),
                    );
                }
            }
        }
        Err(e) => tracing::warn!("metrics: counting jobs: {e}"),
    }
    out.add(f);
    out.add(Family::single(
        "jetpack_jobs_queued",
        "Jobs waiting to start (for a build slot, or a blocking thread)",
        Kind::Gauge,
        Value::Int(queued),
    ));
    let mut f = Family::new(
        "jetpack_pods",
        "Pods in the store, by state as stored",
        Kind::Gauge,
    );
    match pods {
        Ok(rows) => {
            let rows = rows.unwrap_or_default();
            for state in [
                "creating", "created", "running", "stopping", "exited", "dead", "removing",
            ] {
                let n = rows.iter().find(|(s, _)| s == state).map_or(0, |r| r.1);
                f.push(vec![("state", text(state))], Value::Int(n));
            }
        }
        Err(e) => tracing::warn!("metrics: counting pods: {e}"),
    }
    out.add(f);
}

/// The blob store's files and bytes (`blobs/sha256/xx/<hash>`): one
/// directory walk, a stat per blob; blobs are images and archives, few.
fn blobs(root: &Path, out: &mut Snapshot) {
    let (mut count, mut bytes) = (0u64, 0u64);
    if let Ok(prefixes) = std::fs::read_dir(root.join("sha256")) {
        for dir in prefixes.flatten() {
            let Ok(entries) = std::fs::read_dir(dir.path()) else {
                continue;
            };
            for e in entries.flatten() {
                if let Ok(m) = e.metadata() {
                    if m.is_file() {
                        count += 1;
                        bytes += m.len();
                    }
                }
            }
        }
    }
    out.add(Family::single(
        "jetpack_blob_store_bytes",
        "Bytes of the blob store (images, archives)",
        Kind::Gauge,
        Value::Int(bytes),
    ));
    out.add(Family::single(
        "jetpack_blob_store_blobs",
        "Blobs in the blob store",
        Kind::Gauge,
        Value::Int(count),
    ));
}
