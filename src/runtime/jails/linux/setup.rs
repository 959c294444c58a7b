//! The cell made from inside, by the holder (PID 1 of its new pid
//! namespace): new mount, UTS, IPC and network namespaces, the pod's clone
//! bound and pivoted into as root, /proc, a tmpfs /dev with its few device
//! nodes, its own devpts and /dev/shm, the hostname, and the pod's volumes
//! (bind mounts, `mount_volume`).

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use nix::unistd::{chdir, pivot_root, sethostname};

use crate::runtime::jails::volume_mounts::{fd_path, open_host_dir, open_pod_dir, Bind};
use crate::runtime::jails::CellSpec;

pub(super) fn setup(spec: &CellSpec) -> Result<(), String> {
    let step = |what: &str| {
        let what = what.to_string();
        move |e: nix::errno::Errno| format!("{what}: {e}")
    };
    unshare(
        CloneFlags::CLONE_NEWNS
            | CloneFlags::CLONE_NEWUTS
            | CloneFlags::CLONE_NEWIPC
            | CloneFlags::CLONE_NEWNET,
    )
    .map_err(step("unshare"))?;
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(step("making / private"))?;
    let root = &spec.root;
    mount(
        Some(root),
        root,
        none,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        none,
    )
    .map_err(step("binding the pod root"))?;
    // Before /proc and /dev: the pod's volumes are on its bound root,
    // mounted through the host's /proc/self/fd, and a volume may not
    // cover what the cell mounts next (the runtime refuses such targets).
    for bind in &spec.volumes {
        mount_volume(root, bind)?;
    }
    for dir in ["proc", "dev"] {
        std::fs::create_dir_all(root.join(dir)).map_err(|e| format!("creating /{dir}: {e}"))?;
    }
    mount(
        Some("proc"),
        &root.join("proc"),
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        none,
    )
    .map_err(step("mounting /proc"))?;
    let dev = root.join("dev");
    mount(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID,
        Some("mode=755,size=8m"),
    )
    .map_err(step("mounting /dev"))?;
    for (name, major, minor) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let path = dev.join(name);
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(major, minor),
        )
        .map_err(step(&format!("creating /dev/{name}")))?;
        // mknod obeys the umask; the nodes must be usable by every user.
        std::os::unix::fs::chown(&path, Some(0), Some(0))
            .map_err(|e| format!("/dev/{name}: {e}"))?;
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .map_err(|e| format!("/dev/{name}: {e}"))?;
    }
    for device in &spec.devices {
        let (name, major, minor) = device.linux_node();
        let path = dev.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("creating /dev/{name}: {e}"))?;
        }
        // Root only (0600): in an instance pod the hypervisor runs as root.
        mknod(
            &path,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o600),
            makedev(major, minor),
        )
        .map_err(step(&format!("creating /dev/{name}")))?;
    }
    for dir in ["pts", "shm"] {
        std::fs::create_dir(dev.join(dir)).map_err(|e| format!("creating /dev/{dir}: {e}"))?;
    }
    mount(
        Some("devpts"),
        &dev.join("pts"),
        Some("devpts"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=620"),
    )
    .map_err(step("mounting /dev/pts"))?;
    mount(
        Some("shm"),
        &dev.join("shm"),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=1777,size=64m"),
    )
    .map_err(step("mounting /dev/shm"))?;
    for (link, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(target, dev.join(link))
            .map_err(|e| format!("/dev/{link}: {e}"))?;
    }
    // pivot_root(".", ".") stacks the old root under the new one; detaching
    // it leaves only the pod's tree visible.
    chdir(root.as_path()).map_err(step("entering the pod root"))?;
    pivot_root(".", ".").map_err(step("pivot_root"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(step("detaching the host root"))?;
    chdir("/").map_err(step("chdir /"))?;
    sethostname(&spec.hostname).map_err(step("sethostname"))?;
    Ok(())
}

/// Binds a volume between two descriptors opened without following a
/// symlink, so a symlink planted in either path cannot send the mount
/// elsewhere; read-only is a second, remounting step (a bind ignores
/// MS_RDONLY). The mount lives in the cell's mount namespace: it goes
/// with the cell, and the host's mount table never holds it.
fn mount_volume(root: &std::path::Path, bind: &Bind) -> Result<(), String> {
    let none: Option<&str> = None;
    let source = open_host_dir(&bind.source)?;
    let target = open_pod_dir(root, &bind.target)?;
    mount(
        Some(fd_path(&source).as_str()),
        fd_path(&target.dir).as_str(),
        none,
        MsFlags::MS_BIND,
        none,
    )
    .map_err(|e| format!("mounting volume {}: {e}", bind.target))?;
    if bind.read_only {
        let mounted = target.reopen()?;
        mount(
            none,
            fd_path(&mounted).as_str(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            none,
        )
        .map_err(|e| format!("making volume {} read-only: {e}", bind.target))?;
    }
    Ok(())
}
