//! Test fixtures on real parts: a zfs-fuse pool on a file, the busybox base
//! built by images/busybox/build.sh, network namespaces and a bridge per
//! test host. A missing facility skips the test with a printed reason, and
//! fails it under CI (CI=true), where everything must run.

#![allow(dead_code)]

pub mod bobs;
pub mod browser;
pub mod conformance;
pub mod fleet;
pub mod hangar;
pub mod home;
#[path = "../../benches/support/iso.rs"]
pub mod iso;
pub mod jails;
#[path = "../../benches/support/kernel.rs"]
pub mod kernel;
pub mod postgres;
pub mod qemu;
pub mod server;
pub mod sims;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

pub const JETPACK: &str = env!("CARGO_BIN_EXE_jetpack");

/// The binary a test server runs: JETPACK_BIN when set (the test command
/// sets the release build), else the one cargo built for the tests.
pub fn jetpack_bin() -> String {
    std::env::var("JETPACK_BIN").unwrap_or_else(|_| JETPACK.to_string())
}
pub const POOL: &str = "jptest";

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Whether a facility is here; skips (prints why) or, in CI, fails.
pub fn facility(name: &str, available: Result<(), String>) -> bool {
    match available {
        Ok(()) => true,
        Err(why) if in_ci() => panic!("{name} is required in CI but unavailable: {why}"),
        Err(why) => {
            eprintln!("SKIPPED: {name} unavailable: {why}");
            false
        }
    }
}

/// Whether a program is on PATH (a test's peer): skips or, in CI, fails.
pub fn tool(name: &str) -> bool {
    facility(
        name,
        Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .map_err(|e| e.to_string())
            .and_then(|o| {
                if o.status.success() {
                    Ok(())
                } else {
                    Err(format!("{name} is not installed"))
                }
            }),
    )
}

/// The benches' helper: a program's stdout, or its command line and stderr.
#[path = "../../benches/support/command.rs"]
mod command;
use command::run as command_ok;

/// Root, namespaces, ip(8) and a static busybox: what pods need.
pub fn pods_available() -> bool {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECK.get_or_init(|| {
        if !nix::unistd::geteuid().is_root() {
            return Err("not root".into());
        }
        command_ok(
            "unshare",
            &["--pid", "--fork", "--mount", "--net", "--uts", "true"],
        )?;
        command_ok("ip", &["-V"])?;
        command_ok("busybox", &["true"]).map_err(|e| format!("busybox-static: {e}"))?;
        Ok(())
    });
    facility("namespaces", result.clone())
}

/// A zfs-fuse daemon and the test pool on a file, made once per machine,
/// and made again when the daemon was found gone (on a loaded machine
/// zfs-fuse has died in the middle of a test binary): every call checks
/// the pool answers and, if not, restarts the daemon and re-imports it.
pub fn zfs_available() -> bool {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let result = CHECK.get_or_init(|| {
        if !Path::new("/dev/fuse").exists() {
            return Err("/dev/fuse is missing".into());
        }
        locked_ensure_pool()
    });
    if result.is_ok() && !pool_answers() {
        eprintln!(
            "zfs-fuse is not answering for pool {POOL}: restarting it and re-importing the pool"
        );
        let again = locked_ensure_pool();
        return facility("zfs-fuse (restarted)", again);
    }
    facility("zfs-fuse", result.clone())
}

fn pool_answers() -> bool {
    Command::new("zpool")
        .args(["list", "-H", "-o", "name", POOL])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// ensure_pool under a machine-wide lock: test binaries run at once.
fn locked_ensure_pool() -> Result<(), String> {
    let lock = File::create("/var/tmp/jetpack-test-pool.lock").map_err(|e| e.to_string())?;
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| e.to_string())
        .and_then(|_guard| ensure_pool())
}

fn ensure_pool() -> Result<(), String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/zfs-test-pool.sh");
    command_ok(script.to_str().ok_or("script path")?, &[POOL]).map(|_| ())
}

/// The busybox base archive, built once by the real build script
/// (`JETPACK_TEST_BASE` names another, as the FreeBSD VM does).
pub fn busybox_tarball() -> PathBuf {
    static TARBALL: OnceLock<PathBuf> = OnceLock::new();
    TARBALL
        .get_or_init(|| {
            if let Some(base) = std::env::var_os("JETPACK_TEST_BASE") {
                return PathBuf::from(base);
            }
            let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox.tar.xz");
            if !out.exists() {
                let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/busybox/build.sh");
                let status = Command::new(script)
                    .arg(&out)
                    .status()
                    .expect("running images/busybox/build.sh");
                assert!(status.success(), "images/busybox/build.sh failed");
            }
            out
        })
        .clone()
}

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A /24 in 10.200.0.0/14 that no other host of this process took and no
/// interface on the machine holds: a bridge left behind by a killed run
/// would otherwise take the pods' traffic.
fn free_net() -> String {
    static TAKEN: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    let held = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let start = (std::process::id() % 200) * 5;
    for i in 0..1024 {
        let k = (start + i) % 1024;
        let net = format!("10.{}.{}", 200 + k / 256, k % 256);
        let dotted = format!(" {net}.");
        if !taken.contains(&net) && !held.contains(&dotted) {
            taken.push(net.clone());
            return net;
        }
    }
    panic!("no free /24 in 10.200.0.0/14 on this machine");
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    Dir,
    ZfsCli,
}

/// A jetpack host of its own for one test: a root (directory or dataset),
/// a bridge and an address range nobody else uses, removed on drop.
pub struct TestHost {
    pub driver: Driver,
    pub root: PathBuf,
    pub dataset: Option<String>,
    pub bridge: String,
    /// The first three octets of this host's /24 ("10.a.b").
    pub net: String,
    options: Vec<String>,
    _dir: tempfile::TempDir,
}

impl TestHost {
    /// A host on `driver`, or None when the test must skip.
    pub fn new(driver: Driver) -> Option<TestHost> {
        if !pods_available() || (driver == Driver::ZfsCli && !zfs_available()) {
            return None;
        }
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = tempfile::Builder::new()
            .prefix("jetpack-test-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("root");
        let bridge = format!("jpt{}x{n}", pid % 100000);
        let net = free_net();
        let mut options = vec![
            format!("root.zfs.mountpoint={}", root.display()),
            format!("jail.interface={bridge}"),
            format!("jail.ip4.range={net}.0/24"),
            "jail.stop.timeout=2".to_string(),
            format!("jail.namePrefix=jpt{pid}-{n}-"),
        ];
        let dataset = match driver {
            Driver::Dir => {
                options.push("datasets.driver=dir".into());
                None
            }
            Driver::ZfsCli => {
                let ds = format!("{POOL}/t{pid}-{n}");
                options.push("datasets.driver=zfs-cli".into());
                options.push(format!("root.zfs={ds}"));
                Some(ds)
            }
        };
        Some(TestHost {
            driver,
            root,
            dataset,
            bridge,
            net,
            options,
            _dir: dir,
        })
    }

    /// This host's configuration, as `-o key=value` values.
    pub fn options(&self) -> &[String] {
        &self.options
    }

    /// The jetpack command with this host's configuration.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(JETPACK);
        for o in &self.options {
            cmd.arg("-o").arg(o);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("running jetpack")
    }

    /// Runs jetpack, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "jetpack {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs jetpack, asserts failure with one error line, returns it.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "jetpack {args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one error line from {args:?}, got: {stderr}"
        );
        assert!(lines[0].starts_with("jetpack: "), "{stderr}");
        stderr
    }

    /// An initialised host with the busybox base imported as `busybox`.
    pub fn with_busybox(driver: Driver) -> Option<TestHost> {
        let host = TestHost::new(driver)?;
        host.ok(&["init"]);
        let tarball = busybox_tarball();
        host.ok(&[
            "base",
            "import",
            tarball.to_str().unwrap(),
            "--name",
            "busybox",
        ]);
        Some(host)
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a)).expect("json output")
    }

    /// Datasets below this host's root (zfs) or entries of its tree (dir),
    /// for "nothing left behind" checks.
    pub fn leftovers(&self) -> Vec<String> {
        match &self.dataset {
            Some(ds) => command_ok("zfs", &["list", "-H", "-r", "-t", "all", "-o", "name", ds])
                .unwrap_or_default()
                .lines()
                .filter(|l| {
                    !matches!(
                        l.strip_prefix(ds.as_str()),
                        Some("") | Some("/bases") | Some("/pods")
                    )
                })
                .map(str::to_string)
                .collect(),
            None => ["bases", "pods", "tmp"]
                .iter()
                .flat_map(|d| {
                    std::fs::read_dir(self.root.join(d))
                        .into_iter()
                        .flatten()
                        .flatten()
                })
                .map(|e| e.path().display().to_string())
                .collect(),
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        // Pods first (their cells hold clones), then the datasets, then the bridge.
        if let Ok(out) = self.command().args(["pod", "list", "-o", "id"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.command().args(["pod", "rm", "-f", id]).output();
            }
        }
        if let Some(ds) = &self.dataset {
            for _ in 0..50 {
                if command_ok("zfs", &["destroy", "-r", ds]).is_ok()
                    || command_ok("zfs", &["list", ds]).is_err()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = command_ok("ip", &["link", "del", &self.bridge]);
    }
}

/// A live process, as /proc shows it (for "nothing left behind" checks).
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: i32,
    pub uid: u32,
    pub args: Vec<String>,
}

impl Process {
    /// The jetpack subcommand of its command line (`serve`, `mds`, `pod`):
    /// the first argument that is neither a global option nor its value.
    pub fn jetpack_command(&self) -> Option<&str> {
        let mut args = self.args.iter().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--config" | "-o" | "--host" | "--username" | "--password" => {
                    args.next();
                }
                a if a.starts_with('-') => {}
                a => return Some(a),
            }
        }
        None
    }
}

/// The live (not zombie) processes with an argument that contains
/// `needle`, e.g. a test's own jetpack.conf path.
pub fn processes_mentioning(needle: &str) -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid as u32 != std::process::id())
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if !args.iter().any(|a| a.contains(needle)) {
                return None;
            }
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(str::trim)
                    .map(str::to_string)
            };
            if field("State:").is_some_and(|s| s.starts_with('Z') || s.starts_with('X')) {
                return None;
            }
            let uid = field("Uid:")?.split_whitespace().next()?.parse().ok()?;
            Some(Process { pid, uid, args })
        })
        .collect()
}

/// Waits up to `within` for `find` to find nothing; what it still finds
/// then is SIGKILLed (so that a failing test leaves nothing behind either)
/// and returned.
pub fn left_after(within: Duration, find: impl Fn() -> Vec<Process>) -> Vec<Process> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let found = find();
        if found.is_empty() {
            return found;
        }
        if std::time::Instant::now() >= deadline {
            for p in &found {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fails the test when `left` is not empty, unless it is failing already
/// (a second panic while unwinding would abort the whole test binary).
pub fn assert_none_left(what: &str, left: &[Process]) {
    if !left.is_empty() && !std::thread::panicking() {
        panic!("{what} left behind (now killed): {left:#?}");
    }
}

/// Polls `f` every 100 ms until it gives a value, for at most `secs`.
pub fn until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not within {secs} s: {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
