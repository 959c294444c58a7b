//! Launching IncludeOS images: the real `jetpack serve` (TLS, on loopback,
//! dir driver) launching the test kernel (images/test-builder/kernel.S,
//! ELF32, `-append idle`: it prints its SMBIOS uuid and halts, staying up)
//! in a pod cloned from the qemu base (images/qemu/make.sh), against bare
//! qemu booting the same image. On this machine's cores, in one run:
//!
//! - launch latency (JETPACK_BENCH_LAUNCHES, default 50 of each,
//!   interleaved bare, jetpack, bare, jetpack...): jetpack's is from the
//!   `POST /v1/instances` (over a kept-alive TLS connection) to the line
//!   `jetpack test kernel: uuid=` in the instance's console log, which the
//!   bench reads directly (`<data dir>/consoles/<id>.log`), polling every
//!   millisecond (the resolution: ~1 ms plus a read); the job is polled
//!   every 5 ms alongside. Bare qemu's is from its spawn to the same line on
//!   its stdout (a pipe, as the supervisor gives jetpack's qemu; read as it
//!   comes, so no polling). Bare qemu gets jetpack's own argv (`Qemu::args`
//!   of the same spec: same accel, CPU model, memory, console on stdio,
//!   `-no-reboot`, `-kernel IMAGE -append idle`, a virtio-net NIC on a tap
//!   made once on the host for it), only not in a pod. Each instance is
//!   deleted after its sample, untimed. p50 and p99 of both, the overhead
//!   (jetpack p50 − bare p50, target < 100 ms) and the ratio, and where
//!   jetpack's time goes by p50: the launch job (pod clone, image copy,
//!   record, supervisor spawn), the supervisor up (its console log
//!   opened), the cell and network made (its "starting qemu" note), qemu
//!   booted (the uuid line).
//! - density (JETPACK_BENCH_DENSITY, default 100): that many launches one
//!   after another (each POST once the previous job succeeded), the time
//!   from the first POST to the last job and to the last uuid line, that
//!   all their qemu run, and memory by PSS (/proc/PID/smaps_rollup; RSS
//!   beside): jetpack's own per instance = (the server and its MDS + every
//!   supervisor, its forked waiter and the cell holder, once all are up −
//!   the server and its MDS before the first launch) / N, target < 2 MiB;
//!   qemu's per instance for context. Then every instance is deleted and
//!   nothing may be left: no qemu, supervisor, holder, pod or console log.
//!   Deletes are timed for information only; the server runs with
//!   `jail.stop.timeout=2`, which bounds a stop that qemu does not answer.
//!
//! - the Linux test VM (images/linux-vm; JETPACK_BENCH_VMS, default 3):
//!   from the POST to the instance `connected` in the hangar, polled every
//!   20 ms. This host's KVM (kvm-pvm) cannot boot a stock Linux kernel:
//!   run it with JETPACK_BENCH_ACCEL=tcg here.
//!
//! JETPACK_BENCH_ACCEL=tcg|kvm picks qemu's accelerator for both sides
//! (KVM by default where /dev/kvm opens); JETPACK_BENCH_DRIVER=zfs-cli puts
//! the pods on ZFS clones (zfs-fuse) instead of the dir driver's copies.
//!
//! Needs root (pods), qemu-system-x86_64, as and ld:
//! `sudo cargo bench --bench launch`. Targets are printed, never enforced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jetpack::hypervisor::qemu::{kvm_usable, Accel};
use jetpack::hypervisor::{BootPath, Console, LaunchSpec, MacAddr, Nic, Qemu, RestartPolicy};
use serde_json::{json, Value};

#[path = "support/command.rs"]
mod command;
#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "support/kernel.rs"]
mod kernel;
#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "support/serve.rs"]
mod serve;

use command::run;
use measure::{env_or, free_port, met, percentile_ms};

const JETPACK: &str = env!("CARGO_BIN_EXE_jetpack");
const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// What the test kernel prints once it read its SMBIOS uuid.
const NEEDLE: &str = "jetpack test kernel: uuid=";
const MEMORY_MIB: u64 = 32;
/// The console's poll interval.
const POLL: Duration = Duration::from_millis(1);
/// The job's poll interval while a launch is timed.
const JOB_POLL: Duration = Duration::from_millis(5);

/// Whether a program is on PATH.
fn have(program: &str) -> bool {
    run("sh", &["-c", &format!("command -v {program}")]).is_ok()
}

/// The qemu base: JETPACK_BENCH_QEMU_BASE, else made once by the real script.
fn qemu_base() -> PathBuf {
    if let Some(base) = std::env::var_os("JETPACK_BENCH_QEMU_BASE") {
        return PathBuf::from(base);
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qemu-base");
    let tarball = out.join("qemu.tar.gz");
    if !tarball.exists() {
        run(
            &format!("{ROOT}/images/qemu/make.sh"),
            &[out.to_str().unwrap()],
        )
        .expect("images/qemu/make.sh");
    }
    tarball
}

/// The ELF32 test kernel with sample inputs, assembled as tests/launch.rs
/// does (the builder's kernel.S, its paths pointed at a folder here).
fn test_kernel() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("launch-bench-kernel");
    kernel::assemble(
        &dir,
        r#"{"uplink":{"url":"https://10.0.0.1:9090","token":"abc"}}"#,
        "Launched",
    )
    .elf32
}

/// A process as /proc shows it.
#[derive(Debug, Clone)]
struct Proc {
    pid: u32,
    args: Vec<String>,
}

fn processes() -> Vec<Proc> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            (!args.is_empty() && state != 'Z' && state != 'X').then_some(Proc { pid, args })
        })
        .collect()
}

/// The parent of a process.
fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// (PSS, RSS) of a process in KiB: smaps_rollup's Pss and Rss, or
/// status's VmRSS for both where there is no smaps_rollup.
fn memory(pid: u32) -> (u64, u64) {
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
    };
    if let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
        if let (Some(pss), Some(rss)) = (field(&rollup, "Pss"), field(&rollup, "Rss")) {
            return (pss, rss);
        }
    }
    let rss = measure::memory_kib(pid, "VmRSS").unwrap_or(0);
    (rss, rss)
}

/// Summed (PSS, RSS) in KiB of `pids`.
fn memory_of(pids: &[u32]) -> (u64, u64) {
    pids.iter()
        .map(|&p| memory(p))
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The bench's server and what it takes to talk to it.
struct Jetpack {
    server: serve::Server,
    client: http::Client<http::TlsStream>,
    conf: PathBuf,
    consoles: PathBuf,
    prefix: String,
    image: String,
}

impl Jetpack {
    fn start(
        base: &Path,
        kernel: &Path,
        accel: Accel,
        kernels: &Path,
        zfs_root: Option<&str>,
    ) -> Jetpack {
        let dir = tempfile::Builder::new()
            .prefix("jetpack-bench-launch-")
            .tempdir()
            .expect("a temporary folder");
        let conf = dir.path().join("jetpack.conf");
        std::fs::write(&conf, "# jetpack launch bench\n").unwrap();
        std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let n = std::process::id() % 100_000;
        let prefix = format!("jpl{n}-");
        let (port, uplink) = (free_port(), free_port());
        let mut options = vec![
            match zfs_root {
                Some(_) => "datasets.driver=zfs-cli".to_string(),
                None => "datasets.driver=dir".to_string(),
            },
            format!("root.zfs.mountpoint={}", dir.path().join("root").display()),
            // The hangar where pods reach it (the VM docks there).
            "server.listen=0.0.0.0".into(),
            format!(
                "launch.accel={}",
                match accel {
                    Accel::Kvm => "kvm",
                    Accel::Tcg => "tcg",
                }
            ),
            format!("launch.kernels={}", kernels.display()),
            format!("server.port={port}"),
            format!("uplink.port={uplink}"),
            "files.listen=off".into(),
            format!("jail.interface=jpl{n}"),
            format!("jail.namePrefix={prefix}"),
            format!("jail.ip4.range=10.246.{}.0/24", n % 250),
            "jail.stop.timeout=2".into(),
        ];
        if let Some(root) = zfs_root {
            options.push(format!("root.zfs={root}"));
        }
        let jetpack = |args: &[&str]| {
            let mut cmd = Command::new(JETPACK);
            cmd.arg("--config").arg(&conf);
            for o in &options {
                cmd.arg("-o").arg(o);
            }
            let out = cmd.args(args).output().expect("jetpack");
            assert!(
                out.status.success(),
                "jetpack {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        jetpack(&["init"]);
        jetpack(&["base", "import", "--name", "qemu", base.to_str().unwrap()]);
        let mut cmd = Command::new(JETPACK);
        cmd.arg("--config").arg(&conf);
        for o in &options {
            cmd.arg("-o").arg(o);
        }
        cmd.arg("serve");
        let consoles = dir.path().join("root/consoles");
        let mut server = serve::Server::spawn("jetpack serve", dir, port, cmd);
        let keys = server.dir.path().join("jetpack");
        let password =
            std::fs::read_to_string(keys.join("admin.password")).expect("the admin's password");
        server.userpass = format!("admin:{}", password.trim());
        server.authorization = format!(
            "Authorization: Basic {}\r\n",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &server.userpass)
        );
        server.certfile = keys.join("cert.pem");
        let client = server.connect();
        let mut jetpack = Jetpack {
            server,
            client,
            conf,
            consoles,
            prefix,
            image: String::new(),
        };
        let bytes = std::fs::read(kernel).unwrap();
        let (status, image) = jetpack.call(
            "POST",
            "/v1/images?name=kernel32",
            Some(("application/octet-stream", &bytes)),
        );
        assert!(status == 201 || status == 200, "{image}");
        jetpack.image = image["id"].as_str().unwrap().to_string();
        jetpack
    }

    /// One request over the kept-alive connection: (status, JSON body).
    fn call(&mut self, method: &str, path: &str, body: Option<(&str, &[u8])>) -> (u16, Value) {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{}Accept: application/json\r\n",
            self.server.port, self.server.authorization
        )
        .into_bytes();
        match body {
            Some((kind, bytes)) => {
                request.extend(
                    format!(
                        "Content-Type: {kind}\r\nContent-Length: {}\r\n\r\n",
                        bytes.len()
                    )
                    .bytes(),
                );
                request.extend_from_slice(bytes);
            }
            None => request.extend(b"Content-Length: 0\r\n\r\n"),
        }
        let (status, body) = self
            .client
            .exchange(&request)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body).unwrap_or_else(|e| {
                panic!(
                    "{method} {path}: not JSON ({e}): {}",
                    String::from_utf8_lossy(body)
                )
            })
        };
        (status, value)
    }

    /// POST /v1/instances: the job's id.
    fn post_launch(&mut self) -> String {
        let body = json!({"imageId": self.image, "append": "idle", "memory": MEMORY_MIB});
        let (status, job) = self.call(
            "POST",
            "/v1/instances",
            Some(("application/json", body.to_string().as_bytes())),
        );
        assert_eq!(status, 202, "{job}");
        job["id"].as_str().unwrap().to_string()
    }

    /// The job, once ended: the launched instance's id (it must succeed).
    fn job_done(&mut self, job: &str) -> Option<String> {
        let (status, job) = self.call("GET", &format!("/v1/jobs/{job}"), None);
        assert_eq!(status, 200, "{job}");
        match job["state"].as_str() {
            Some("succeeded") => Some(job["result"]["id"].as_str().unwrap().to_string()),
            Some("failed" | "cancelled") => {
                panic!("launch job ended: {job}\n{}", self.server.log())
            }
            _ => None,
        }
    }

    fn wait_job(&mut self, job: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(id) = self.job_done(job) {
                return id;
            }
            assert!(Instant::now() < deadline, "job {job} did not end");
            std::thread::sleep(JOB_POLL);
        }
    }

    fn console_path(&self, id: &str) -> PathBuf {
        self.consoles.join(format!("{id}.log"))
    }

    fn delete(&mut self, id: &str) {
        let (status, body) = self.call("DELETE", &format!("/v1/instances/{id}"), None);
        assert_eq!(status, 200, "DELETE {id}: {body}\n{}", self.server.log());
    }

    /// The server and its MDS (its child `jetpack ... mds`).
    fn server_pids(&self) -> Vec<u32> {
        let me = self.server.pid();
        let mut pids = vec![me];
        pids.extend(
            processes()
                .into_iter()
                .filter(|p| ppid(p.pid) == Some(me) && p.args.iter().any(|a| a == "mds"))
                .map(|p| p.pid),
        );
        pids
    }

    /// Supervisors (and their forked waiters, which show the same command
    /// line) and cell holders of this server's pods.
    fn instance_pids(&self) -> (Vec<u32>, Vec<u32>) {
        let conf = self.conf.display().to_string();
        let mut supervisors = Vec::new();
        let mut holders = Vec::new();
        for p in processes() {
            if p.args.iter().any(|a| a == "__supervise-instance") && p.args.contains(&conf) {
                supervisors.push(p.pid);
            } else if p.args.get(1).is_some_and(|a| a == "__cell-init")
                && p.args.get(2).is_some_and(|a| a.starts_with(&self.prefix))
            {
                holders.push(p.pid);
            }
        }
        (supervisors, holders)
    }

    /// The qemu processes of `ids`.
    fn qemus(&self, ids: &HashSet<String>) -> Vec<u32> {
        let names: HashSet<String> = ids.iter().map(|id| format!("jp-{}", &id[..24])).collect();
        processes()
            .into_iter()
            .filter(|p| p.args[0].contains("qemu-system"))
            .filter(|p| p.args.iter().any(|a| names.contains(a)))
            .map(|p| p.pid)
            .collect()
    }
}

impl Drop for Jetpack {
    /// After a failure too: no instance outlives the bench. A supervisor
    /// told to stop ends its cell and qemu; what is left is killed.
    fn drop(&mut self) {
        let signal = |pids: &[u32], signal| {
            for &pid in pids {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
            }
        };
        let (supervisors, _) = self.instance_pids();
        signal(&supervisors, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (supervisors, holders) = self.instance_pids();
            if supervisors.is_empty() && holders.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                signal(&supervisors, nix::sys::signal::Signal::SIGKILL);
                signal(&holders, nix::sys::signal::Signal::SIGKILL);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let bridge = self.prefix.trim_end_matches('-').to_string();
        let _ = run("ip", &["link", "del", &bridge]);
    }
}

/// When each step of one jetpack launch was seen, from the POST.
#[derive(Default, Clone, Copy)]
struct Steps {
    job: Option<Duration>,
    console: Option<Duration>,
    starting: Option<Duration>,
    uuid: Option<Duration>,
}

/// The whole lines of a console file.
fn complete_lines(path: &Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let end = text.iter().rposition(|&b| b == b'\n').map_or(0, |n| n + 1);
    Some(String::from_utf8_lossy(&text[..end]).into_owned())
}

/// One jetpack launch, timed: its id and steps.
fn jetpack_sample(jp: &mut Jetpack) -> (String, Steps) {
    let before: HashSet<PathBuf> = std::fs::read_dir(&jp.consoles)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    let t = Instant::now();
    let job = jp.post_launch();
    let mut steps = Steps::default();
    let mut id: Option<String> = None;
    let mut console: Option<PathBuf> = None;
    let mut next_job = t;
    let deadline = t + Duration::from_secs(120);
    loop {
        let now = Instant::now();
        if id.is_none() && now >= next_job {
            id = jp.job_done(&job);
            if id.is_some() {
                steps.job = Some(t.elapsed());
            }
            next_job = now + JOB_POLL;
        }
        if console.is_none() {
            console = match &id {
                Some(id) => Some(jp.console_path(id)).filter(|p| p.exists()),
                None => std::fs::read_dir(&jp.consoles)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| !before.contains(p) && p.extension().is_some_and(|e| e == "log")),
            };
            if console.is_some() {
                steps.console = Some(t.elapsed());
            }
        }
        if let Some(text) = console.as_deref().and_then(complete_lines) {
            if steps.starting.is_none() && text.contains("starting qemu") {
                steps.starting = Some(t.elapsed());
            }
            if text.contains(NEEDLE) {
                steps.uuid = Some(t.elapsed());
                steps.starting.get_or_insert(steps.uuid.unwrap());
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no uuid line on the console of job {job}: {:?}",
            console.as_deref().and_then(complete_lines)
        );
        std::thread::sleep(POLL);
    }
    let id = match id {
        Some(id) => id,
        None => {
            let id = jp.wait_job(&job);
            steps.job = Some(t.elapsed());
            id
        }
    };
    let text = complete_lines(&jp.console_path(&id)).unwrap_or_default();
    assert!(
        text.contains(&format!("{NEEDLE}{id}")),
        "instance {id} printed another uuid:\n{text}"
    );
    (id, steps)
}

/// Bare qemu with jetpack's argv for the same image and accel.
struct Bare {
    qemu: Qemu,
    kernel: PathBuf,
    tap: String,
}

impl Bare {
    fn argv(&self) -> (Vec<std::ffi::OsString>, String) {
        let uuid = uuid::Uuid::new_v4();
        let b = uuid.as_bytes();
        let spec = LaunchSpec {
            name: format!("jpbare-{}", &uuid.simple().to_string()[..20]),
            boot: BootPath::Multiboot32 {
                image: self.kernel.clone(),
                cmdline: "idle".into(),
            },
            memory_mib: MEMORY_MIB,
            cpus: 1,
            uuid,
            nics: vec![Nic {
                tap: self.tap.clone(),
                mac: MacAddr([0x52, 0x54, 0x00, b[13], b[14], b[15]]),
            }],
            console: Console::Stdio,
            restart: RestartPolicy::No,
            debug_exit: false,
        };
        (
            self.qemu.args(&spec).expect("qemu's argv"),
            uuid.simple().to_string(),
        )
    }

    /// Spawn to the uuid line; the qemu is ended after, untimed.
    fn sample(&self) -> Duration {
        let (args, _) = self.argv();
        let t = Instant::now();
        let mut child = Command::new(&self.qemu.program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("qemu-system-x86_64");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = String::new();
        let took = loop {
            match lines.next() {
                Some(Ok(line)) if line.contains(NEEDLE) => break t.elapsed(),
                Some(Ok(line)) => {
                    seen.push_str(&line);
                    seen.push('\n');
                }
                _ => {
                    let status = child.wait();
                    panic!("bare qemu ended ({status:?}) before the uuid line:\n{seen}");
                }
            }
        };
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = child.wait();
        took
    }
}

fn sorted(mut v: Vec<Duration>) -> Vec<Duration> {
    v.sort();
    v
}

fn latency(jp: &mut Jetpack, bare: &Bare, n: usize) {
    // Warm caches (page cache, the bridge, qemu's libraries) first.
    bare.sample();
    let (id, _) = jetpack_sample(jp);
    jp.delete(&id);
    let mut bares = Vec::new();
    let mut jets = Vec::new();
    let mut steps = Vec::new();
    let mut deletes = Vec::new();
    for _ in 0..n {
        bares.push(bare.sample());
        let (id, s) = jetpack_sample(jp);
        jets.push(s.uuid.unwrap());
        steps.push(s);
        let t = Instant::now();
        jp.delete(&id);
        deletes.push(t.elapsed());
    }
    let deletes = sorted(deletes);
    let (bares, jets) = (sorted(bares), sorted(jets));
    let (b50, j50) = (percentile_ms(&bares, 0.5), percentile_ms(&jets, 0.5));
    println!();
    println!(
        "launch latency: request to the kernel's uuid line; {n} of each, interleaved (bare, jetpack, ...)"
    );
    println!("{:<58} {:>8} {:>8} {:>8}", "", "p50 ms", "p99 ms", "max ms");
    println!(
        "{:<58} {:>8.1} {:>8.1} {:>8.1}",
        "bare qemu: spawn to the line on its stdout",
        b50,
        percentile_ms(&bares, 0.99),
        percentile_ms(&bares, 1.0)
    );
    println!(
        "{:<58} {:>8.1} {:>8.1} {:>8.1}",
        "jetpack: POST /v1/instances to the line in consoles/ID.log",
        j50,
        percentile_ms(&jets, 0.99),
        percentile_ms(&jets, 1.0)
    );
    println!(
        "overhead (jetpack p50 - bare p50): {:.1} ms (target < 100 ms: met {}); ratio {:.2}x",
        j50 - b50,
        met(j50 - b50 < 100.0),
        j50 / b50
    );
    let step =
        |f: fn(&Steps) -> Option<Duration>| sorted(steps.iter().filter_map(f).collect::<Vec<_>>());
    let job = step(|s| s.job);
    let console = step(|s| s.console);
    let starting = step(|s| s.starting);
    println!("jetpack's launch by step (p50 / p99 ms from the POST; job polled every 5 ms, the console every 1 ms):");
    for (what, s) in [
        (
            "launch job succeeded (pod clone, image copy, record, supervisor spawned)",
            &job,
        ),
        ("supervisor up: its console log exists", &console),
        (
            "cell started, instance network attached: \"starting qemu\" noted",
            &starting,
        ),
        ("qemu booted the kernel: the uuid line", &jets),
    ] {
        println!(
            "  {what:<72} {:>7.1} {:>7.1}",
            percentile_ms(s, 0.5),
            percentile_ms(s, 0.99)
        );
    }
    println!(
        "DELETE /v1/instances/ID after each (not in the latency): p50 {:.1} ms, p99 {:.1} ms",
        percentile_ms(&deletes, 0.5),
        percentile_ms(&deletes, 0.99)
    );
}

fn density(jp: &mut Jetpack, n: usize) {
    let server_pids = jp.server_pids();
    let (server_before_pss, server_before_rss) = memory_of(&server_pids);
    let t = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..n {
        let job = jp.post_launch();
        ids.push(jp.wait_job(&job));
    }
    let jobs_done = t.elapsed();
    let mut pending: HashSet<String> = ids.iter().cloned().collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !pending.is_empty() {
        pending.retain(|id| {
            !complete_lines(&jp.console_path(id)).is_some_and(|text| text.contains(NEEDLE))
        });
        assert!(
            Instant::now() < deadline,
            "{} instances printed no uuid line",
            pending.len()
        );
        std::thread::sleep(POLL);
    }
    let all_up = t.elapsed();
    for id in &ids {
        let text = complete_lines(&jp.console_path(id)).unwrap();
        assert!(text.contains(&format!("{NEEDLE}{id}")), "{id}: {text}");
    }
    // Settled: every supervisor has its waiter and its cell.
    std::thread::sleep(Duration::from_secs(1));
    let idset: HashSet<String> = ids.iter().cloned().collect();
    let qemus = jp.qemus(&idset);
    let (supervisors, holders) = jp.instance_pids();
    let server_after = memory_of(&jp.server_pids());
    let sup = memory_of(&supervisors);
    let hold = memory_of(&holders);
    let qemu = memory_of(&qemus);
    let per = |total: i64| total as f64 / 1024.0 / n as f64;
    let own_pss = server_after.0 as i64 - server_before_pss as i64 + sup.0 as i64 + hold.0 as i64;
    let own_rss = server_after.1 as i64 - server_before_rss as i64 + sup.1 as i64 + hold.1 as i64;
    println!();
    println!(
        "density: {n} launches of the test kernel (-append idle, {MEMORY_MIB} MiB), one after another"
    );
    println!(
        "  first POST to the last launch job succeeded:   {:>8.2} s",
        jobs_done.as_secs_f64()
    );
    println!(
        "  first POST to the last instance's uuid line:   {:>8.2} s ({:.0} ms per instance)",
        all_up.as_secs_f64(),
        all_up.as_secs_f64() * 1000.0 / n as f64
    );
    println!(
        "  qemu processes running: {} of {n}; supervisor processes (with their forked waiters): {}; cell holders: {}",
        qemus.len(),
        supervisors.len(),
        holders.len()
    );
    println!("  memory (MiB)                                         PSS        RSS");
    println!(
        "  server + MDS before the first launch            {:>9.1}  {:>9.1}",
        mib(server_before_pss),
        mib(server_before_rss)
    );
    println!(
        "  server + MDS with all up                        {:>9.1}  {:>9.1}",
        mib(server_after.0),
        mib(server_after.1)
    );
    println!(
        "  supervisors + waiters, all                      {:>9.1}  {:>9.1}",
        mib(sup.0),
        mib(sup.1)
    );
    println!(
        "  cell holders, all                               {:>9.1}  {:>9.1}",
        mib(hold.0),
        mib(hold.1)
    );
    println!(
        "  jetpack's own per instance                      {:>9.2}  {:>9.2}   (target < 2 MiB by PSS: met {})",
        per(own_pss),
        per(own_rss),
        met(per(own_pss) < 2.0)
    );
    println!(
        "  qemu per instance (context)                     {:>9.2}  {:>9.2}",
        mib(qemu.0) / n as f64,
        mib(qemu.1) / n as f64
    );
    assert_eq!(qemus.len(), n, "not every instance's qemu runs");

    let t = Instant::now();
    for id in &ids {
        jp.delete(id);
    }
    let deleted = t.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    let left = loop {
        let (s, h) = jp.instance_pids();
        let q = jp.qemus(&idset);
        let consoles = ids.iter().filter(|id| jp.console_path(id).exists()).count();
        let (_, pods) = jp.call("GET", "/v1/pods", None);
        let pods = pods.as_array().map_or(0, Vec::len);
        let left = (q.len(), s.len(), h.len(), pods, consoles);
        if left == (0, 0, 0, 0, 0) || Instant::now() >= deadline {
            break left;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!(
        "  deleted all in {:.2} s ({:.0} ms each); left: {} qemu, {} supervisors, {} holders, {} pods, {} console logs",
        deleted.as_secs_f64(),
        deleted.as_secs_f64() * 1000.0 / n as f64,
        left.0,
        left.1,
        left.2,
        left.3,
        left.4
    );
    assert_eq!(left, (0, 0, 0, 0, 0), "instances left behind");
}

struct Tap(String);

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = run("ip", &["link", "del", &self.0]);
    }
}

/// The test pool of scripts/zfs-test-pool.sh.
const POOL: &str = "jptest";

/// The bench's root dataset, destroyed at the end.
struct ZfsRoot(String);

impl Drop for ZfsRoot {
    fn drop(&mut self) {
        let _ = run("zfs", &["destroy", "-r", &self.0]);
    }
}

/// The test VM (images/linux-vm/make.sh), with this jetpack in it.
fn test_vm() -> PathBuf {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-linux-vm");
    if !out.join("initrd.gz").exists() {
        let status = Command::new(Path::new(ROOT).join("images/linux-vm/make.sh"))
            .arg(&out)
            .arg(JETPACK)
            .status()
            .expect("images/linux-vm/make.sh");
        assert!(status.success(), "images/linux-vm/make.sh failed");
    }
    out
}

/// The Linux test VM launched from its kernel: from the POST to the
/// instance `connected` in the hangar (polled every 20 ms), `n` times.
fn vm(jp: &mut Jetpack, n: usize, accel: Accel) {
    let (_, uplinks) = jp.call("GET", "/v1/uplinks", None);
    let launch = uplinks
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "launch")
        .expect("the launch uplink")
        .clone();
    let body = json!({
        "kernel": "vmlinuz",
        "initrd": "initrd.gz",
        "memory": 512,
        "append": format!(
            "console=ttyS0 quiet jetpack.uplink={} jetpack.token={}",
            launch["url"].as_str().unwrap(),
            launch["token"].as_str().unwrap()
        ),
    })
    .to_string();
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let (status, job) = jp.call(
            "POST",
            "/v1/instances",
            Some(("application/json", body.as_bytes())),
        );
        assert_eq!(status, 202, "{job}");
        let id = jp.wait_job(job["id"].as_str().unwrap());
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let (_, instance) = jp.call("GET", &format!("/v1/instances/{id}"), None);
            if instance["status"] == "connected" {
                break;
            }
            assert!(Instant::now() < deadline, "the VM {id} did not dock");
            std::thread::sleep(Duration::from_millis(20));
        }
        times.push(t.elapsed());
        jp.delete(&id);
    }
    let times = sorted(times);
    println!(
        "\nLinux test VM ({}), launch -> connected, {n} runs: p50 {:.0} ms, p99 {:.0} ms",
        match accel {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        },
        percentile_ms(&times, 0.50),
        percentile_ms(&times, 0.99)
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("launch: needs root (pods, taps); skipped");
        return;
    }
    for program in ["qemu-system-x86_64", "as", "ld", "ip"] {
        if !have(program) {
            eprintln!("launch: {program} is not installed; skipped");
            return;
        }
    }
    let launches: usize = env_or("JETPACK_BENCH_LAUNCHES", 50);
    let instances: usize = env_or("JETPACK_BENCH_DENSITY", 100);
    let vms: usize = env_or("JETPACK_BENCH_VMS", 3);
    let kernel = test_kernel();
    let base = qemu_base();
    // JETPACK_BENCH_ACCEL=tcg|kvm; KVM by default where /dev/kvm opens.
    let accel = match std::env::var("JETPACK_BENCH_ACCEL").as_deref() {
        Ok("tcg") => Accel::Tcg,
        Ok("kvm") => Accel::Kvm,
        _ => Accel::choose(kvm_usable()),
    };
    let kernels = tempfile::tempdir().unwrap();
    if vms > 0 {
        let vm = test_vm();
        for file in ["vmlinuz", "initrd.gz"] {
            std::fs::copy(vm.join(file), kernels.path().join(file)).unwrap();
        }
    }
    let tap = Tap(format!("jplb{}", std::process::id() % 100_000));
    run("ip", &["tuntap", "add", "dev", &tap.0, "mode", "tap"]).expect("a tap for bare qemu");
    let bare = Bare {
        qemu: Qemu::new(accel, None),
        kernel: kernel.clone(),
        tap: tap.0.clone(),
    };
    // JETPACK_BENCH_DRIVER=zfs-cli: pods on ZFS clones (zfs-fuse, the
    // test pool of scripts/zfs-test-pool.sh) instead of copied directories.
    let zfs_root = (std::env::var("JETPACK_BENCH_DRIVER").as_deref() == Ok("zfs-cli")).then(|| {
        let script = Path::new(ROOT).join("scripts/zfs-test-pool.sh");
        run(script.to_str().unwrap(), &[POOL]).expect("the ZFS test pool");
        ZfsRoot(format!("{POOL}/launchbench{}", std::process::id()))
    });
    let mut jp = Jetpack::start(
        &base,
        &kernel,
        accel,
        kernels.path(),
        zfs_root.as_ref().map(|r| r.0.as_str()),
    );
    println!(
        "launch bench: {}, {} cores, qemu {} ({}), test kernel ELF32 -append idle, {MEMORY_MIB} MiB, 1 vCPU",
        measure::cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        run("qemu-system-x86_64", &["--version"])
            .unwrap_or_default()
            .lines()
            .next()
            .unwrap_or("")
            .trim_start_matches("QEMU emulator version "),
        match accel {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    );
    let (argv, _) = bare.argv();
    println!(
        "bare qemu's argv (jetpack's own, not in a pod): qemu-system-x86_64 {}",
        argv.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    if launches > 0 {
        latency(&mut jp, &bare, launches);
    }
    if instances > 0 {
        density(&mut jp, instances);
    }
    if vms > 0 {
        vm(&mut jp, vms, accel);
    }
}
