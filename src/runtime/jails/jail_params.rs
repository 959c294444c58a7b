//! The jail(2) parameters of a pod's jail: what jetpack sets itself, the
//! conservative defaults, and the operator's extras from `jail.param.*`.
//! Pure code, compiled everywhere so that the list is tested on any host;
//! the FreeBSD driver turns it into typed jail_set(2) values.
//!
//! Values are strings as jail.conf(5) spells them; booleans are `0` or `1`.

use super::CellSpec;
use crate::names::JailParam;

/// Parameters jetpack owns (checked where a `JailParam` is made).
pub const OWNED: &[&str] = JailParam::OWNED;

/// The full parameter list of `spec`'s jail, in a fixed order: jetpack's
/// own, the defaults, then the extras in their order. An extra replaces a
/// default of the same name in place (so the order stays the same whatever
/// is configured); a later extra replaces an earlier one. Extras naming an
/// `OWNED` parameter are left out: a `JailParam` cannot name one, and the
/// jail's identity should not rest on that one type's check alone.
pub fn jail_params(spec: &CellSpec) -> Vec<(String, String)> {
    let mut params: Vec<(String, String)> = vec![
        ("name".into(), spec.name.clone()),
        ("path".into(), spec.root.display().to_string()),
        ("host.hostname".into(), spec.hostname.clone()),
        // A pod with a stack of its own has its address there (`vnet`).
        if super::vnet::has_own_stack(spec) {
            ("vnet".into(), "new".into())
        } else {
            ("ip4.addr".into(), spec.address.to_string())
        },
        ("securelevel".into(), spec.securelevel.to_string()),
        ("devfs_ruleset".into(), spec.devfs_ruleset.to_string()),
    ];
    // The kernel's defaults are already close to these, but they are
    // inherited from the parent and tunable by sysctl; saying them keeps a
    // pod the same on every host.
    for (k, v) in [
        ("enforce_statfs", "2"),
        ("children.max", "0"),
        ("allow.set_hostname", "0"),
        ("allow.sysvipc", "0"),
        ("allow.raw_sockets", "0"),
        ("allow.chflags", "0"),
        ("allow.mount", "0"),
        ("allow.mlock", "0"),
        ("allow.socket_af", "0"),
        ("persist", "1"),
    ] {
        params.push((k.into(), v.into()));
    }
    // bhyve in a jail needs vmm(4) allowed (FreeBSD 12+); the nodes
    // themselves come through the devfs ruleset.
    if spec.devices.contains(&super::Device::Kvm) {
        params.push(("allow.vmm".into(), "1".into()));
    }
    for extra in &spec.params {
        let (k, v) = (extra.name(), extra.value());
        if OWNED.contains(&k) {
            continue;
        }
        match params.iter_mut().find(|(name, _)| name == k) {
            Some(slot) => slot.1 = v.to_string(),
            None => params.push((k.to_string(), v.to_string())),
        }
    }
    params
}

/// A file system the FreeBSD driver mounts in a pod's root before its
/// jail starts, and unmounts when the jail is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellMount {
    pub fstype: &'static str,
    /// Relative to the pod's root.
    pub path: &'static str,
    /// mount(8)'s `-o` (empty: none).
    pub options: &'static str,
}

/// Every mount a cell may hold, in mounting order (unmounted in reverse,
/// all of them whatever the cell had: one not mounted is no error).
const ALL_MOUNTS: &[CellMount] = &[
    CellMount {
        fstype: "devfs",
        path: "dev",
        options: "",
    },
    // What linux(4) programs expect, as FreeBSD's rc.d/linux mounts them
    // under /compat/linux: glibc, cmake and python read /proc and /sys,
    // shm_open wants /dev/shm, and `linrdlnk` makes /dev/fd/N read as
    // Linux links.
    CellMount {
        fstype: "fdescfs",
        path: "dev/fd",
        options: "linrdlnk",
    },
    CellMount {
        fstype: "tmpfs",
        path: "dev/shm",
        options: "mode=1777",
    },
    CellMount {
        fstype: "linprocfs",
        path: "proc",
        options: "",
    },
    CellMount {
        fstype: "linsysfs",
        path: "sys",
        options: "",
    },
];

/// The mounts of `spec`'s cell, in order: devfs always, and the Linux
/// ABI's file systems when its root holds Linux programs.
pub fn cell_mounts(spec: &CellSpec) -> &'static [CellMount] {
    if spec.linux_abi {
        ALL_MOUNTS
    } else {
        &ALL_MOUNTS[..1]
    }
}

/// Every mount any cell may hold, in unmounting order.
pub fn unmount_order() -> impl Iterator<Item = &'static CellMount> {
    ALL_MOUNTS.iter().rev()
}

/// devfs(8)'s arguments that put a cell's devfs at `dev` under `ruleset`,
/// as rc.subr's devfs_set_ruleset does: the ruleset made the mount's own
/// first, so that nodes that appear later (an instance's tap) are judged
/// by it too, then applied to the nodes already there.
pub fn devfs_ruleset_args(dev: &std::path::Path, ruleset: u32) -> [Vec<std::ffi::OsString>; 2] {
    let m = || -> Vec<std::ffi::OsString> { vec!["-m".into(), dev.as_os_str().to_owned()] };
    let mut own = m();
    own.extend(["ruleset".into(), ruleset.to_string().into()]);
    let mut apply = m();
    apply.extend(["rule".into(), "applyset".into()]);
    [own, apply]
}

/// mount(8)'s arguments for `mount` in `root`.
pub fn mount_args(root: &std::path::Path, mount: &CellMount) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["-t".into(), mount.fstype.into()];
    if !mount.options.is_empty() {
        args.extend(["-o".into(), mount.options.into()]);
    }
    args.push(mount.fstype.into());
    args.push(root.join(mount.path).into_os_string());
    args
}

/// Whether every component of `relative` below `root` is a real
/// directory. unmount(2) follows symlinks: a pod's `dev -> /dev` would
/// otherwise take the host's /dev/fd off.
pub fn real_dirs_below(root: &std::path::Path, relative: &str) -> bool {
    let mut at = root.to_path_buf();
    std::path::Path::new(relative).components().all(|part| {
        at.push(part);
        std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_dir())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ipv4Net;

    fn spec(params: &[(&str, &str)]) -> CellSpec {
        CellSpec {
            name: "jetpack-0b7e".into(),
            hostname: "alpha".into(),
            root: "/var/jetpack/pods/0b7e".into(),
            address: "172.23.0.5".parse().unwrap(),
            network: Ipv4Net::parse("172.23.0.0/24").unwrap(),
            interface: "lo1".into(),
            securelevel: 2,
            devfs_ruleset: 4,
            linux_abi: false,
            devices: Vec::new(),
            volumes: Vec::new(),
            limits: Default::default(),
            vnet: false,
            // Unchecked, so that the guard against owned names is seen.
            params: params
                .iter()
                .map(|(k, v)| JailParam::unchecked(k, v))
                .collect(),
        }
    }

    fn pairs(list: &[(String, String)]) -> Vec<(&str, &str)> {
        list.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    const DEFAULTS: &[(&str, &str)] = &[
        ("name", "jetpack-0b7e"),
        ("path", "/var/jetpack/pods/0b7e"),
        ("host.hostname", "alpha"),
        ("ip4.addr", "172.23.0.5"),
        ("securelevel", "2"),
        ("devfs_ruleset", "4"),
        ("enforce_statfs", "2"),
        ("children.max", "0"),
        ("allow.set_hostname", "0"),
        ("allow.sysvipc", "0"),
        ("allow.raw_sockets", "0"),
        ("allow.chflags", "0"),
        ("allow.mount", "0"),
        ("allow.mlock", "0"),
        ("allow.socket_af", "0"),
        ("persist", "1"),
    ];

    #[test]
    fn jail_params_exact_list() {
        assert_eq!(pairs(&jail_params(&spec(&[]))), DEFAULTS);
    }

    #[test]
    fn jail_params_extras_override_in_place_and_append_in_order() {
        let s = spec(&[
            ("allow.raw_sockets", "1"),
            ("osrelease", "13.2-RELEASE"),
            ("securelevel", "3"),
            ("allow.mount.devfs", "1"),
            ("osrelease", "14.1-RELEASE"),
        ]);
        let mut expected = DEFAULTS.to_vec();
        for (k, v) in [("allow.raw_sockets", "1"), ("securelevel", "3")] {
            expected.iter_mut().find(|(name, _)| *name == k).unwrap().1 = v;
        }
        expected.push(("osrelease", "14.1-RELEASE"));
        expected.push(("allow.mount.devfs", "1"));
        assert_eq!(pairs(&jail_params(&s)), expected);
        // Same input, same list.
        assert_eq!(jail_params(&s), jail_params(&s));
    }

    #[test]
    fn jail_params_never_let_extras_change_identity() {
        let s = spec(&[
            ("name", "other"),
            ("path", "/"),
            ("ip4.addr", "172.23.0.1"),
            ("persist", "0"),
        ]);
        assert_eq!(pairs(&jail_params(&s)), DEFAULTS);
    }

    #[test]
    fn an_instance_pod_has_its_own_stack_and_vmm() {
        let mut s = spec(&[("vnet", "inherit")]);
        s.devices = vec![super::super::Device::Tun, super::super::Device::Kvm];
        let list = jail_params(&s);
        let got = pairs(&list);
        assert!(got.contains(&("vnet", "new")), "{got:?}");
        assert!(got.contains(&("allow.vmm", "1")), "{got:?}");
        assert!(!got.iter().any(|(k, _)| *k == "ip4.addr"), "{got:?}");
        assert_eq!(got.len(), DEFAULTS.len() + 1);
    }

    #[test]
    fn a_cells_devfs_takes_its_ruleset_for_nodes_made_later_too() {
        let [own, apply] = devfs_ruleset_args(std::path::Path::new("/pods/x/dev"), 20);
        let text = |a: Vec<std::ffi::OsString>| {
            a.into_iter()
                .map(|s| s.into_string().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(text(own), "-m /pods/x/dev ruleset 20");
        assert_eq!(text(apply), "-m /pods/x/dev rule applyset");
    }

    #[test]
    fn a_linux_root_gets_the_linux_file_systems_inside_devfs() {
        let native = spec(&[]);
        let names = |m: &[CellMount]| m.iter().map(|m| m.path).collect::<Vec<_>>();
        assert_eq!(names(cell_mounts(&native)), ["dev"]);
        let linux = CellSpec {
            linux_abi: true,
            ..spec(&[])
        };
        let mounts = cell_mounts(&linux);
        assert_eq!(names(mounts), ["dev", "dev/fd", "dev/shm", "proc", "sys"]);
        let args = |m: &CellMount| {
            mount_args(&linux.root, m)
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            args(&mounts[0]),
            ["-t", "devfs", "devfs", "/var/jetpack/pods/0b7e/dev"]
        );
        assert_eq!(
            args(&mounts[1]),
            [
                "-t",
                "fdescfs",
                "-o",
                "linrdlnk",
                "fdescfs",
                "/var/jetpack/pods/0b7e/dev/fd"
            ]
        );
        // Whatever a cell had, everything comes off, inner mounts first.
        let order: Vec<&str> = unmount_order().map(|m| m.path).collect();
        assert_eq!(order, ["sys", "proc", "dev/shm", "dev/fd", "dev"]);
    }

    #[test]
    fn only_real_directories_are_unmounted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("dev/fd")).unwrap();
        assert!(real_dirs_below(root, "dev/fd"));
        assert!(!real_dirs_below(root, "dev/shm"), "missing");
        std::fs::remove_dir_all(root.join("dev")).unwrap();
        // A pod's `dev -> /dev` must not lead to the host's /dev/fd.
        std::os::unix::fs::symlink("/dev", root.join("dev")).unwrap();
        assert!(!real_dirs_below(root, "dev/fd"));
        assert!(!real_dirs_below(root, "dev"));
    }
}
