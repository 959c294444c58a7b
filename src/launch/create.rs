//! Launching: everything checked that can be checked before anything is
//! made (the image boots, the hypervisor exists here, the spec fits the
//! host, the base is there), then the instance pod cloned from the base,
//! what it boots copied into it read-only, the record stored, and its
//! supervisor started. Any failure undoes what was made.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::record::{Boot, LaunchRecord, IMAGE_IN_POD, INITRD_IN_POD, KERNEL_IN_POD};
use super::{io_err, LaunchError};
use crate::hypervisor::{
    boot, smbios, BootPath, Console, HostLimits, HypervisorKind, LaunchSpec, RestartPolicy,
};
use crate::net::publish::{PublishSpec, Publisher};
use crate::runtime::jails::instance_net::InstanceNet;
use crate::runtime::{Host, Pod, RuntimeError};
use crate::store::launches::{LaunchRow, Wanted};

/// What to boot.
#[derive(Debug, Clone)]
pub enum BootSource {
    /// A multiboot image (an IncludeOS ELF), with its command line.
    Image { path: PathBuf, cmdline: String },
    /// A kernel, maybe an initrd, and their command line.
    Kernel {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        append: String,
    },
}

/// A launch as asked, defaults not yet applied.
#[derive(Debug, Clone)]
pub struct LaunchOrder {
    pub source: BootSource,
    pub hypervisor: Option<HypervisorKind>,
    pub memory_mib: Option<u64>,
    pub cpus: Option<u32>,
    pub restart: RestartPolicy,
    pub image_id: Option<String>,
    pub image_name: String,
    pub publish: Vec<PublishSpec>,
    pub net: InstanceNet,
    /// The identity of an instance moved from another host (else a new one).
    pub uuid: Option<uuid::Uuid>,
}

/// The hypervisors this build can run.
pub fn available(kind: HypervisorKind) -> bool {
    match kind {
        HypervisorKind::Qemu => true,
        HypervisorKind::Bhyve => cfg!(target_os = "freebsd"),
    }
}

/// The hypervisors this host can launch with now: those this build runs,
/// once the hypervisor base is ready.
pub fn hypervisors(host: &Host) -> Vec<&'static str> {
    match host.base(&host.config().launch.base) {
        Ok(base) if base.state == crate::store::BaseState::Ready => HypervisorKind::ALL
            .into_iter()
            .filter(|k| available(*k))
            .map(HypervisorKind::as_str)
            .collect(),
        _ => Vec::new(),
    }
}

/// The host's memory and cpus, the bounds of a launch.
pub fn host_limits() -> HostLimits {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    HostLimits {
        memory_mib: (pages.max(0) as u64 * page.max(0) as u64) >> 20,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        max_nics: 1,
    }
}

/// Which script makes the hypervisor base of `kind`.
fn base_script(kind: HypervisorKind) -> &'static str {
    match kind {
        HypervisorKind::Qemu => "images/qemu/make.sh",
        HypervisorKind::Bhyve => "the bhyve base of docs/FREEBSD.md",
    }
}

/// What a launch will make, once every check passed.
struct Plan {
    record: LaunchRecord,
    base: crate::names::BaseId,
    elf64: bool,
}

/// Every check a launch makes before it makes anything: the hypervisor
/// runs here, the image boots, the spec fits the host, the base exists.
pub fn check(host: &Host, order: &LaunchOrder) -> Result<(), LaunchError> {
    plan(host, order).map(drop)
}

fn plan(host: &Host, order: &LaunchOrder) -> Result<Plan, LaunchError> {
    let config = &host.config().launch;
    let kind = order
        .hypervisor
        .unwrap_or_else(HypervisorKind::host_default);
    if !available(kind) {
        return Err(LaunchError::HypervisorUnavailable(kind));
    }
    let (boot_kind, elf64) = match &order.source {
        BootSource::Image { path, cmdline } => {
            let path = boot::detect(path, cmdline)?;
            (
                Boot::Multiboot {
                    cmdline: cmdline.clone(),
                },
                matches!(path, BootPath::Multiboot64 { .. }),
            )
        }
        BootSource::Kernel { initrd, append, .. } => (
            Boot::Linux {
                initrd: initrd.is_some(),
                append: append.clone(),
            },
            false,
        ),
    };
    let uuid = order.uuid.unwrap_or_else(uuid::Uuid::new_v4);
    let record = LaunchRecord {
        instance_id: smbios::instance_id(&uuid),
        uuid,
        pod_id: crate::names::PodId::random(),
        hypervisor: kind,
        memory_mib: order.memory_mib.unwrap_or(config.memory_mib),
        cpus: order.cpus.unwrap_or(config.cpus),
        restart: order.restart,
        boot: boot_kind,
        image_id: order.image_id.clone(),
        image_name: order.image_name.clone(),
        publish: order.publish.clone(),
        net: order.net.clone(),
    };
    record
        .instance_net()
        .validate(host.config().ip4_range)
        .map_err(|e| LaunchError::Net(e.to_string()))?;
    // A port in use fails now, before any pod; the supervisor binds them
    // for good (a race with another program stays possible, and is said
    // on the console).
    drop(Publisher::bind(
        &record.publish,
        std::net::Ipv4Addr::LOCALHOST,
    )?);
    LaunchSpec {
        name: record.vm_name(),
        boot: record.boot_path(elf64),
        memory_mib: record.memory_mib,
        cpus: record.cpus,
        uuid,
        nics: vec![record.nic()],
        console: Console::Stdio,
        restart: record.restart,
        debug_exit: false,
    }
    .validate(&host_limits())?;
    let base = match host.base(&config.base) {
        Ok(base) if base.state == crate::store::BaseState::Ready => base,
        Ok(_) | Err(RuntimeError::NoSuchBase(_)) => {
            return Err(LaunchError::NoHypervisorBase {
                base: config.base.clone(),
                script: base_script(kind),
            })
        }
        Err(e) => return Err(e.into()),
    };
    Ok(Plan {
        record,
        base: base.id,
        elf64,
    })
}

/// Launches an instance: returns its record once its supervisor runs.
pub fn launch(host: &Host, order: LaunchOrder) -> Result<LaunchRecord, LaunchError> {
    let Plan {
        record,
        base,
        elf64,
    } = plan(host, &order)?;
    let kind = record.hypervisor;
    let instance_id = record.instance_id.clone();
    let pod = host.create_pod(
        base.as_str(),
        None,
        vec![format!("{}-system-x86_64", kind.as_str())],
    )?;
    let made = fill_pod(host, &pod, &order.source, elf64)
        .and_then(|()| {
            let record = LaunchRecord {
                pod_id: pod.row.id.clone(),
                ..record
            };
            host.store().insert_launch(&LaunchRow {
                instance_id: instance_id.clone(),
                pod_id: pod.row.id.clone(),
                spec: record.to_json(),
                wanted: Wanted::Running,
                supervisor: None,
                created_at: crate::store::now(),
            })?;
            Ok(record)
        })
        .and_then(|record| {
            super::control::spawn_supervisor(host, &instance_id)?;
            Ok(record)
        });
    match made {
        Ok(record) => Ok(record),
        Err(e) => {
            if let Err(undo) = super::control::unmake(host, &instance_id, &pod) {
                tracing::warn!("launch of {instance_id} failed ({e}) and its undo too: {undo}");
            }
            Err(e)
        }
    }
}

/// Copies what the instance boots into its pod, read-only.
fn fill_pod(host: &Host, pod: &Pod, source: &BootSource, elf64: bool) -> Result<(), LaunchError> {
    if elf64 {
        let chainloader = &host.config().launch.chainloader;
        if !in_root(&pod.root, chainloader).is_file() {
            return Err(LaunchError::NoChainloader {
                base: host.config().launch.base.clone(),
                path: chainloader.clone(),
            });
        }
    }
    match source {
        BootSource::Image { path, .. } => place(pod, path, IMAGE_IN_POD),
        BootSource::Kernel { kernel, initrd, .. } => {
            place(pod, kernel, KERNEL_IN_POD)?;
            match initrd {
                Some(initrd) => place(pod, initrd, INITRD_IN_POD),
                None => Ok(()),
            }
        }
    }
}

fn in_root(root: &Path, inside: impl AsRef<Path>) -> PathBuf {
    root.join(inside.as_ref().strip_prefix("/").unwrap_or(inside.as_ref()))
}

/// Puts `from` at `inside` in the pod, staged then renamed, 0444: the
/// hypervisor reads it, nothing in the pod may change it.
pub(super) fn place(pod: &Pod, from: &Path, inside: &str) -> Result<(), LaunchError> {
    let to = in_root(&pod.root, inside);
    let dir = to.parent().unwrap_or(&pod.root);
    std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let staged = dir.join(format!(".staged-{}", std::process::id()));
    std::fs::copy(from, &staged).map_err(io_err(format!(
        "copying {} into the instance pod",
        from.display()
    )))?;
    let done = std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o444))
        .and_then(|()| std::fs::rename(&staged, &to));
    if done.is_err() {
        let _ = std::fs::remove_file(&staged);
    }
    done.map_err(io_err(format!("placing {}", to.display())))
}
