//! Pod cycle latency: create a pod from a sealed base, start it, run `true`
//! in it, destroy it. Measured for jetpack (library and CLI) and for the
//! bare commands doing the same work, interleaved in one run so that drift
//! of this shared machine hits all alike; reports p50, p99 and the ratio of
//! each p50 to the bare commands'. Two bases: `small` (a static busybox,
//! three links to it, /etc/passwd and group: 15 entries), where the fixed
//! costs of a cycle show, and `busybox` (images/busybox: ~400 entries).
//! The bare dir cycle mounts an overlay on the base, as the dir driver's
//! clone does on Linux (`mount -t overlay`, `umount`, `rm -rf`). A second
//! pair of rows gives the pod three environment variables, two volumes
//! (one read-only) and limits (64 MiB, one cpu, 64 processes); its bare baseline
//! does the same (cgroups made and joined before `unshare`, a bind mount
//! in the new mount namespace for each volume, `env` before `true`). The limits need
//! cgroup v1's memory, pids and cpu hierarchies (this machine's); without
//! them those rows leave the limits out, and say so.
//!
//! Needs root, namespaces and (for the ZFS rows) zfs-fuse:
//! `sudo cargo bench --bench pod_cycle` (JETPACK_BENCH_CYCLES, default 200).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use jetpack::config::Config;
use jetpack::runtime::limits::Limits;
use jetpack::runtime::{Attach, Host, HostEnv, PodOptions};

#[path = "support/command.rs"]
mod command;
#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;

use command::run;
use measure::{env_or, percentile_ms};

const JETPACK: &str = env!("CARGO_BIN_EXE_jetpack");
const POOL: &str = "jptest";

/// zfs-fuse answers "dataset is busy" right after a clone; the bare
/// baseline retries exactly as jetpack's driver does.
fn zfs_destroy_retrying(dataset: &str) {
    let mut pause = Duration::from_millis(5);
    for _ in 0..100 {
        if run("zfs", &["destroy", "-r", dataset]).is_ok() {
            return;
        }
        let _ = run("zfs", &["unmount", "-f", dataset]);
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
    panic!("zfs destroy {dataset} kept failing");
}

/// The bases measured, by name: the small one first.
const BASES: [&str; 2] = ["small", "busybox"];

/// The small base's tarball: a static busybox and the least a pod's
/// `/bin/true` needs, 15 entries in all.
fn small_tarball(out: &Path) {
    let busybox = run("sh", &["-c", "command -v busybox"]).expect("a busybox (busybox-static)");
    let root = out.with_extension("root");
    let _ = std::fs::remove_dir_all(&root);
    for dir in ["bin", "etc", "dev", "proc", "tmp", "root", "var/tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(busybox.trim(), root.join("bin/busybox")).unwrap();
    for applet in ["sh", "true", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    run(
        "tar",
        &[
            "-C",
            root.to_str().unwrap(),
            "--numeric-owner",
            "--owner=0",
            "--group=0",
            "-cf",
            out.to_str().unwrap(),
            ".",
        ],
    )
    .expect("tar of the small base");
    std::fs::remove_dir_all(&root).unwrap();
}

struct Setup {
    interface: String,
    /// Dropped before the datasets go: its state.db lives on the root
    /// dataset and keeps it busy.
    host: Option<Host>,
    options: Vec<String>,
    /// Each base's sealed tree, by name.
    base_paths: Vec<(&'static str, PathBuf)>,
    zfs_root: Option<String>,
    scratch: PathBuf,
    /// The host directories the "+env+vol+limits" rows mount (at /data,
    /// read-only, and /cache).
    volumes: [PathBuf; 2],
}

/// The cgroup v1 hierarchies the bare cycle's limits are made in, with
/// the files and values that match the jetpack rows' `limits()`.
const CGROUPS: [(&str, &[(&str, &str)]); 3] = [
    ("memory", &[("memory.limit_in_bytes", "67108864")]),
    ("pids", &[("pids.max", "64")]),
    (
        "cpu",
        &[
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "100000"),
        ],
    ),
];

fn limits() -> Limits {
    Limits {
        memory: Some(64 << 20),
        cpus: Some(1.0),
        pids: Some(64),
        ..Limits::default()
    }
}

/// Whether this machine has the v1 hierarchies the bare cycle needs.
fn cgroup_v1() -> bool {
    CGROUPS
        .iter()
        .all(|(c, _)| Path::new("/sys/fs/cgroup").join(c).join("tasks").exists())
}

/// The bare cycle's cgroups for cycle `i`, made with their limits.
fn bare_cgroups(i: usize) -> Vec<PathBuf> {
    CGROUPS
        .iter()
        .map(|(c, files)| {
            let dir = Path::new("/sys/fs/cgroup")
                .join(c)
                .join(format!("jpbench-bare-{}-{i}", std::process::id()));
            std::fs::create_dir(&dir).unwrap();
            for (file, value) in files.iter() {
                std::fs::write(dir.join(file), value).unwrap();
            }
            dir
        })
        .collect()
}

/// Removes a cgroup once the kernel has let go of its last process.
fn remove_cgroup(dir: &Path) {
    for _ in 0..200 {
        if std::fs::remove_dir(dir).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("rmdir {} kept failing", dir.display());
}

/// The environment of the "+env+vol+limits" rows.
const ENV: [(&str, &str); 3] = [
    ("APP_MODE", "bench"),
    ("APP_PORT", "8080"),
    ("APP_NAME", "cycle"),
];

impl Setup {
    fn new(driver: &'static str, tarballs: &[(&'static str, PathBuf)], n: u32) -> Setup {
        let scratch =
            std::env::temp_dir().join(format!("jetpack-bench-{}-{driver}", std::process::id()));
        let mut options = vec![
            format!("root.zfs.mountpoint={}", scratch.join("root").display()),
            format!("datasets.driver={driver}"),
            format!("jail.interface=jpbench{n}"),
            format!("jail.ip4.range=10.251.{n}.0/24"),
            format!("jail.namePrefix=jpbench{n}-"),
        ];
        let zfs_root = (driver == "zfs-cli").then(|| format!("{POOL}/bench{}", std::process::id()));
        if let Some(root) = &zfs_root {
            options.push(format!("root.zfs={root}"));
        }
        let config = Config::load(Some(Path::new("/dev/null")), &options).expect("configuration");
        let env = HostEnv {
            exe: PathBuf::from(JETPACK),
            config_args: vec![],
        };
        let host = Host::init(config, env).expect("jetpack init");
        let base_paths = tarballs
            .iter()
            .map(|(name, tarball)| {
                let imported = host
                    .import_base(tarball.to_str().unwrap(), Some(name), None, &mut |_| {
                        std::ops::ControlFlow::Continue(())
                    })
                    .expect("base import");
                (
                    *name,
                    scratch.join("root/bases").join(imported.base.id.as_str()),
                )
            })
            .collect();
        let volumes = [scratch.join("data"), scratch.join("cache")];
        for v in &volumes {
            std::fs::create_dir_all(v).unwrap();
        }
        Setup {
            interface: format!("jpbench{n}"),
            host: Some(host),
            options,
            base_paths,
            zfs_root,
            scratch,
            volumes,
        }
    }

    fn jetpack_library(&self, base: &str, extras: bool) {
        let host = self.host.as_ref().expect("host");
        let options = if extras {
            PodOptions {
                env: ENV
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                volumes: vec![
                    format!("{}:/data:ro", self.volumes[0].display()),
                    format!("{}:/cache", self.volumes[1].display()),
                ],
                limits: if cgroup_v1() {
                    limits()
                } else {
                    Limits::default()
                },
                ..PodOptions::default()
            }
        } else {
            PodOptions::default()
        };
        let pod = host
            .create_pod_with(base, None, vec![], &options)
            .expect("create");
        let code = host
            .run_pod(&pod, Some(vec!["/bin/true".into()]), Attach::Inherit)
            .expect("run");
        assert_eq!(code, 0);
        let pod = host.pod(pod.row.id.as_str()).expect("pod");
        host.remove_pod(&pod, false).expect("remove");
    }

    fn jetpack_cli(&self, base: &str) {
        let mut cmd = Command::new(JETPACK);
        for o in &self.options {
            cmd.arg("-o").arg(o);
        }
        let status = cmd
            .args(["pod", "run", "--rm", base, "--", "/bin/true"])
            .status()
            .expect("jetpack");
        assert!(status.success());
    }

    fn bare(&self, base: &str, i: usize, extras: bool) {
        let base_path = &self
            .base_paths
            .iter()
            .find(|(name, _)| *name == base)
            .expect("an imported base")
            .1;
        let clone_path = match &self.zfs_root {
            Some(root) => {
                let id = base_path.file_name().unwrap().to_str().unwrap();
                let clone = format!("{root}/pods/bare{i}");
                run(
                    "zfs",
                    &["clone", &format!("{root}/bases/{id}@sealed"), &clone],
                )
                .expect("zfs clone");
                self.scratch.join("root/pods").join(format!("bare{i}"))
            }
            None => {
                // As the dir driver clones on Linux: an overlay on the base.
                let clone = self.scratch.join("root/pods").join(format!("bare{i}"));
                let layers = self
                    .scratch
                    .join("root/pods")
                    .join(format!("bare{i}.layers"));
                for dir in [clone.clone(), layers.join("upper"), layers.join("work")] {
                    std::fs::create_dir_all(dir).unwrap();
                }
                let options = format!(
                    "lowerdir={},upperdir={},workdir={}",
                    base_path.display(),
                    layers.join("upper").display(),
                    layers.join("work").display()
                );
                run(
                    "mount",
                    &[
                        "-t",
                        "overlay",
                        "overlay",
                        "-o",
                        &options,
                        clone.to_str().unwrap(),
                    ],
                )
                .expect("mount -t overlay");
                clone
            }
        };
        let clone_arg = clone_path.to_str().unwrap();
        let cgroups = if extras && cgroup_v1() {
            bare_cgroups(i)
        } else {
            Vec::new()
        };
        let cgroup_args: Vec<String> = cgroups.iter().map(|d| d.display().to_string()).collect();
        let count = cgroups.len().to_string();
        // Joins the cgroups, then becomes unshare: the paths are arguments
        // of the fixed script, never part of it.
        let mut argv = vec![
            "-c",
            r#"n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 1; shift; n=$((n - 1)); done; exec unshare "$@""#,
            "sh",
            &count,
        ];
        argv.extend(cgroup_args.iter().map(String::as_str));
        argv.extend(["--fork", "--pid", "--mount", "--uts", "--ipc", "--net"]);
        let env: Vec<String> = ENV.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if extras {
            std::fs::create_dir_all(clone_path.join("data")).unwrap();
            std::fs::create_dir_all(clone_path.join("cache")).unwrap();
            // The paths are arguments of the fixed script, never part of it.
            argv.extend([
                "sh",
                "-c",
                r#"mount --bind -o ro "$1" "$3/data" && mount --bind "$2" "$3/cache" && shift 3 && exec chroot "$@""#,
                "sh",
                self.volumes[0].to_str().unwrap(),
                self.volumes[1].to_str().unwrap(),
                clone_arg,
                clone_arg,
                "/bin/busybox",
                "env",
            ]);
            argv.extend(env.iter().map(String::as_str));
            argv.push("/bin/true");
        } else {
            argv.extend(["chroot", clone_arg, "/bin/true"]);
        }
        run("sh", &argv).expect("unshare chroot true");
        for dir in &cgroups {
            remove_cgroup(dir);
        }
        match &self.zfs_root {
            Some(root) => zfs_destroy_retrying(&format!("{root}/pods/bare{i}")),
            None => {
                run("umount", &[clone_path.to_str().unwrap()]).expect("umount");
                let layers = format!("{}.layers", clone_path.display());
                run("rm", &["-rf", clone_path.to_str().unwrap(), &layers]).expect("rm");
            }
        }
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        if let Some(host) = self.host.take() {
            for base in BASES {
                if let Ok(b) = host.base(base) {
                    let _ = host.remove_base(b.id.as_str(), false);
                }
            }
        }
        if let Some(root) = &self.zfs_root {
            zfs_destroy_retrying(root);
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
        let _ = run("ip", &["link", "del", &self.interface]);
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // useful either way. Run only when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("pod_cycle: needs root (namespaces, mounts, zfs); skipped");
        return;
    }
    let cycles: usize = env_or("JETPACK_BENCH_CYCLES", 200);
    let tarball = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox.tar.xz");
    if !tarball.exists() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/busybox/build.sh");
        run(script.to_str().unwrap(), &[tarball.to_str().unwrap()])
            .expect("building the busybox base");
    }
    let small = Path::new(env!("CARGO_TARGET_TMPDIR")).join("small.tar");
    small_tarball(&small);
    let tarballs = [(BASES[0], small), (BASES[1], tarball)];
    let pool_script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/zfs-test-pool.sh");
    let mut drivers = vec!["dir"];
    match run(pool_script.to_str().unwrap(), &[POOL]) {
        Ok(_) => drivers.insert(0, "zfs-cli"),
        Err(e) => eprintln!("pod_cycle: no ZFS, zfs-cli rows skipped: {e}"),
    }

    println!("pod cycle: create from a sealed base + start + run true + destroy; {cycles} cycles each, interleaved");
    if !cgroup_v1() {
        println!(
            "(no cgroup v1 memory, pids and cpu hierarchies: the +limits rows run without limits)"
        );
    }
    println!(
        "{:<8} {:<8} {:<26} {:>8} {:>8} {:>12}",
        "driver", "base", "variant", "p50 ms", "p99 ms", "p50 / bare"
    );
    for (n, driver) in drivers.into_iter().enumerate() {
        let setup = Setup::new(driver, &tarballs, n as u32 + 1);
        // Warm caches (page cache, the bridge) before measuring.
        for base in BASES {
            setup.bare(base, usize::MAX, false);
            setup.bare(base, usize::MAX, true);
            setup.jetpack_library(base, false);
            setup.jetpack_library(base, true);
            setup.jetpack_cli(base);
        }
        // Per base: bare, library, CLI; bare and library with the extras.
        let mut samples: Vec<[Vec<Duration>; 5]> =
            BASES.iter().map(|_| Default::default()).collect();
        for i in 0..cycles {
            for (b, base) in BASES.iter().enumerate() {
                let t = Instant::now();
                setup.bare(base, i, false);
                samples[b][0].push(t.elapsed());
                let t = Instant::now();
                setup.jetpack_library(base, false);
                samples[b][1].push(t.elapsed());
                let t = Instant::now();
                setup.jetpack_cli(base);
                samples[b][2].push(t.elapsed());
                let t = Instant::now();
                setup.bare(base, i, true);
                samples[b][3].push(t.elapsed());
                let t = Instant::now();
                setup.jetpack_library(base, true);
                samples[b][4].push(t.elapsed());
            }
        }
        for (base, samples) in BASES.iter().zip(samples.iter_mut()) {
            for s in samples.iter_mut() {
                s.sort();
            }
            let bare_p50 = percentile_ms(&samples[0], 0.5);
            let bare_extras_p50 = percentile_ms(&samples[3], 0.5);
            for (v, (variant, s)) in [
                "bare commands",
                "jetpack (library)",
                "jetpack pod run --rm (CLI)",
                "bare +env+vol+limits",
                "jetpack +env+vol+limits",
            ]
            .iter()
            .zip(samples.iter())
            .enumerate()
            {
                let p50 = percentile_ms(s, 0.5);
                let bare_p50 = if v < 3 { bare_p50 } else { bare_extras_p50 };
                println!(
                    "{driver:<8} {base:<8} {variant:<26} {p50:>8.1} {:>8.1} {:>11.2}x",
                    percentile_ms(s, 0.99),
                    p50 / bare_p50
                );
            }
        }
    }
}
