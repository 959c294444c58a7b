//! Launched instances on a real host: the qemu base made by
//! images/qemu/make.sh, the test kernel assembled from
//! images/test-builder/kernel.S (ELF32 and ELF64, the latter through the
//! chainloader), qemu in a pod of its own (KVM when /dev/kvm works), the
//! server over TLS. The kernel prints the SMBIOS UUID it reads: it must be
//! the instance id jetpack gave it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::server::TestServer;
use common::{processes_mentioning, tool, Driver, TestHost};
use serde_json::{json, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn qemu_base() -> PathBuf {
    common::qemu::base_tarball()
}

/// The test kernel with sample inputs, as the builder assembles it:
/// ELF32 (`-kernel`) or ELF64 (through the chainloader).
fn test_kernel(elf64: bool) -> PathBuf {
    static KERNELS: OnceLock<common::kernel::Kernels> = OnceLock::new();
    let k = KERNELS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("launch-kernels");
        common::kernel::assemble(
            &dir,
            r#"{"uplink":{"url":"https://10.0.0.1:9090","token":"abc"}}"#,
            "Launched",
        )
    });
    if elf64 {
        k.elf64.clone()
    } else {
        k.elf32.clone()
    }
}

struct Launcher {
    server: TestServer,
    host: TestHost,
}

impl Launcher {
    /// A host with the qemu base imported (unless `with_base` is false)
    /// and a server on it.
    /// `accel`: launch.accel. This host's nested KVM takes seconds of
    /// system time per boot, so most tests run TCG and one runs KVM.
    fn start(with_base: bool, accel: &str) -> Option<Launcher> {
        if !tool("qemu-system-x86_64") || !tool("as") {
            return None;
        }
        let host = TestHost::new(Driver::Dir)?;
        host.ok(&["init"]);
        if with_base {
            host.ok(&[
                "base",
                "import",
                "--name",
                "qemu",
                qemu_base().to_str().unwrap(),
            ]);
        }
        let server = TestServer::on_host_with(&host, &[&format!("launch.accel={accel}")], &[]);
        Some(Launcher { server, host })
    }

    fn push(&self, file: &Path, name: &str) -> String {
        let (status, image) = self.server.json(
            &[
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
                &format!("@{}", file.display()),
            ],
            &format!("/v1/images?name={name}"),
        );
        assert!(status == 201 || status == 200, "{image}");
        image["id"].as_str().unwrap().to_string()
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.server.json(
            &[
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
            ],
            path,
        )
    }

    /// Launches; returns the instance (the job's result).
    fn launch(&self, body: Value) -> Value {
        let (status, job) = self.post("/v1/instances", body);
        assert_eq!(status, 202, "{job}");
        assert_eq!(job["kind"], "launch");
        let job = self.wait_job(job["id"].as_str().unwrap());
        assert_eq!(job["state"], "succeeded", "{job}");
        job["result"].clone()
    }

    fn wait_job(&self, id: &str) -> Value {
        wait_for(&format!("job {id}"), Duration::from_secs(120), || {
            let (status, job) = self.server.json(&[], &format!("/v1/jobs/{id}"));
            assert_eq!(status, 200, "{job}");
            matches!(
                job["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
            .then_some(job)
        })
    }

    fn instance(&self, id: &str) -> Value {
        let (status, instance) = self.server.json(&[], &format!("/v1/instances/{id}"));
        assert_eq!(status, 200, "{instance}");
        instance
    }

    fn console(&self, id: &str) -> String {
        let (status, text) = self
            .server
            .curl(&[], &format!("/v1/instances/{id}/console"));
        assert_eq!(status, 200, "{text}");
        text
    }

    /// Waits until the console holds `needle` `times` times.
    fn console_shows(&self, id: &str, needle: &str, times: usize) -> String {
        wait_for(
            &format!("{needle:?} x{times} on the console of {id}"),
            Duration::from_secs(60),
            || {
                let text = self.console(id);
                // Whole lines only: the console may be read mid-line.
                let complete = &text[..text.rfind('\n').map_or(0, |n| n + 1)];
                (complete.matches(needle).count() >= times).then(|| complete.to_string())
            },
        )
    }

    fn pods(&self) -> Vec<Value> {
        let (status, pods) = self.server.json(&[], "/v1/pods");
        assert_eq!(status, 200, "{pods}");
        pods.as_array().unwrap().clone()
    }

    fn pod_state(&self, pod_id: &str) -> Option<String> {
        self.pods()
            .iter()
            .find(|p| p["id"] == pod_id)
            .map(|p| p["state"].as_str().unwrap().to_string())
    }
}

fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(250));
    }
}

/// The hypervisor processes of an instance (its uuid is on their command line).
fn hypervisors(instance: &Value) -> Vec<common::Process> {
    let id = instance["id"].as_str().unwrap();
    processes_mentioning(&format!("jp-{}", &id[..24]))
        .into_iter()
        .filter(|p| p.args[0].contains("qemu"))
        .collect()
}

#[test]
fn an_image_launched_in_a_pod_boots_with_the_id_jetpack_gave_it() {
    let Some(l) = Launcher::start(true, "auto") else {
        return;
    };
    let image = l.push(&test_kernel(false), "kernel32");
    let instance = l.launch(json!({"imageId": image, "append": "idle", "alias": "first"}));
    let id = instance["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 32, "{instance}");
    assert_eq!(instance["alias"], "first");
    assert_eq!(instance["status"], "launching", "{instance}");
    let launched = &instance["launched"];
    assert_eq!(launched["hypervisor"], "qemu");
    assert_eq!(launched["image"], image.as_str());
    assert_eq!(launched["restart"], "no");
    let pod_id = launched["podId"].as_str().unwrap();

    // Its serial console: the service line, then the SMBIOS UUID as
    // IncludeOS formats it, which must be the id it was given.
    let console = l.console_shows(&id, "jetpack test kernel: uuid=", 1);
    assert!(console.contains("service=Launched"), "{console}");
    // The pod was given /dev/kvm: qemu runs with KVM where the host has it.
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
    {
        assert!(console.contains("starting qemu (KVM)"), "{console}");
    }
    assert!(
        console.contains(&format!("jetpack test kernel: uuid={id}")),
        "the instance reports another id than {id}:\n{console}"
    );
    assert_eq!(l.pod_state(pod_id).as_deref(), Some("running"));
    // Its cell's holder is the supervisor forked, not jetpack exec'd again
    // (about 1 MiB less per instance), under the name the driver lists.
    let holder = cell_holder_argv(pod_id).expect("the pod's cell holder");
    assert_eq!(
        holder.first().map(String::as_str),
        Some("jetpack"),
        "{holder:?}"
    );
    assert_eq!(holder.get(1).map(String::as_str), Some("__cell-init"));
    // Listed, with its pod.
    let (_, list) = l.server.json(&[], "/v1/instances");
    let listed = list
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .expect("listed");
    assert_eq!(listed["launched"]["podId"], pod_id);
    assert_eq!(listed["status"], "launching");
    // Filtered by the status shown, which is the launch's, not the fleet's.
    let ids_with = |status: &str| -> Vec<String> {
        let (code, list) = l
            .server
            .json(&[], &format!("/v1/instances?status={status}"));
        assert_eq!(code, 200, "{list}");
        list.as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids_with("launching"), vec![id.as_str()]);
    assert!(ids_with("disconnected").is_empty());
    let (code, _) = l.server.json(&[], "/v1/instances?status=asleep");
    assert_eq!(code, 400);

    // Stop: the pod stops, the status says so; start brings it back.
    let (status, stopped) = l.post(&format!("/v1/instances/{id}/stop"), json!({}));
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(l.pod_state(pod_id).as_deref(), Some("exited"));
    assert_eq!(ids_with("stopped"), vec![id.as_str()]);
    assert!(ids_with("launching").is_empty());
    assert!(hypervisors(&instance).is_empty());
    let (status, started) = l.post("/v1/instances/first/start", json!({}));
    assert_eq!(status, 200, "{started}");
    l.console_shows(&id, &format!("uuid={id}"), 2);
    // Restart boots it a third time.
    let (status, _) = l.post(&format!("/v1/instances/{id}/restart"), json!({}));
    assert_eq!(status, 200);
    l.console_shows(&id, &format!("uuid={id}"), 3);

    // The server restarted: the instance still runs and is listed.
    let before: Vec<i32> = hypervisors(&instance).iter().map(|p| p.pid).collect();
    assert_eq!(before.len(), 1, "one qemu");
    // qemu takes SIGTERM (a stop ends it at once): the supervisor's blocked
    // stop signals are not its.
    let status = std::fs::read_to_string(format!("/proc/{}/status", before[0])).unwrap();
    let blocked = status
        .lines()
        .find_map(|l| l.strip_prefix("SigBlk:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    for signal in [1, 2, 15] {
        assert_eq!(
            blocked & (1 << (signal - 1)),
            0,
            "signal {signal} blocked in qemu"
        );
    }
    let mut server = l.server;
    server.kill();
    server.spawn(&[]);
    let l = Launcher {
        server,
        host: l.host,
    };
    let after: Vec<i32> = hypervisors(&instance).iter().map(|p| p.pid).collect();
    assert_eq!(before, after, "the same qemu runs on");
    assert_eq!(l.instance(&id)["status"], "launching");

    // Deleting it removes its pod and ends its hypervisor.
    let (status, gone) = l
        .server
        .json(&["-X", "DELETE"], &format!("/v1/instances/{id}"));
    assert_eq!(status, 200, "{gone}");
    assert!(l.pod_state(pod_id).is_none(), "its pod is gone");
    assert!(hypervisors(&instance).is_empty());
    let (status, _) = l.server.curl(&[], &format!("/v1/instances/{id}/console"));
    assert_eq!(status, 404);
}

#[test]
fn an_elf64_image_boots_through_the_chainloader() {
    let Some(l) = Launcher::start(true, "tcg") else {
        return;
    };
    let image = l.push(&test_kernel(true), "kernel64");
    let instance = l.launch(json!({"imageId": image, "append": "idle"}));
    let id = instance["id"].as_str().unwrap();
    let console = l.console_shows(id, "jetpack test kernel: uuid=", 1);
    assert!(
        console.contains(&format!("uuid={id}")),
        "the ELF64 kernel reports another id than {id}:\n{console}"
    );
    let (status, _) = l
        .server
        .json(&["-X", "DELETE"], &format!("/v1/instances/{id}"));
    assert_eq!(status, 200);
}

#[test]
fn the_restart_policy_brings_a_killed_hypervisor_back_only_when_it_says_so() {
    let Some(l) = Launcher::start(true, "tcg") else {
        return;
    };
    let image = l.push(&test_kernel(false), "kernel32");
    let always = l.launch(json!({"imageId": image, "append": "idle", "restart": "always"}));
    let never = l.launch(json!({"imageId": image, "append": "idle"}));
    for instance in [&always, &never] {
        let id = instance["id"].as_str().unwrap();
        l.console_shows(id, &format!("uuid={id}"), 1);
        let qemu = wait_for("its qemu", Duration::from_secs(10), || {
            hypervisors(instance).into_iter().next()
        });
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(qemu.pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    let id = always["id"].as_str().unwrap();
    let console = l.console_shows(id, &format!("uuid={id}"), 2);
    assert!(console.contains("restarting in 1 s"), "{console}");
    assert_eq!(
        l.pod_state(always["launched"]["podId"].as_str().unwrap())
            .as_deref(),
        Some("running")
    );
    let id = never["id"].as_str().unwrap();
    let console = l.console_shows(id, "not restarting", 1);
    assert_eq!(console.matches(&format!("uuid={id}")).count(), 1);
    let pod = never["launched"]["podId"].as_str().unwrap().to_string();
    wait_for("the pod to stop", Duration::from_secs(30), || {
        (l.pod_state(&pod).as_deref() == Some("exited")).then_some(())
    });
    assert_eq!(l.instance(id)["status"], "stopped");
    for instance in [&always, &never] {
        let id = instance["id"].as_str().unwrap();
        let (status, _) = l
            .server
            .json(&["-X", "DELETE"], &format!("/v1/instances/{id}"));
        assert_eq!(status, 200);
    }
}

#[test]
fn bad_launches_are_refused_and_leave_nothing() {
    let Some(l) = Launcher::start(true, "tcg") else {
        return;
    };
    let kernel = l.push(&test_kernel(false), "kernel32");
    let flat = Path::new(env!("CARGO_TARGET_TMPDIR")).join("launch-not-multiboot");
    common::server::fake_elf(&flat, 4096, "not multiboot");
    let flat = l.push(&flat, "flat");
    l.launch(json!({"imageId": kernel, "append": "idle", "alias": "taken"}));
    let pods_before = l.pods().len();
    let busy = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let busy = format!("{}:80", busy.local_addr().unwrap().port());
    // A gateway inside the pod network itself.
    let pod_net = l
        .host
        .options()
        .iter()
        .find_map(|o| o.strip_prefix("jail.ip4.range="))
        .unwrap()
        .replace(".0/24", ".1/24");
    let cases = [
        (
            json!({"imageId": kernel, "publish": [busy]}),
            409,
            "already in use",
        ),
        (
            json!({"imageId": kernel, "publish": ["80"]}),
            400,
            "publish",
        ),
        (json!({"imageId": kernel, "net": pod_net}), 400, "overlap"),
        (
            json!({"imageId": kernel, "net": "10.0.0.1"}),
            400,
            "GATEWAY/PREFIX",
        ),
        (json!({"imageId": flat}), 422, "multiboot"),
        (
            json!({"imageId": kernel, "memory": 1u64 << 40}),
            422,
            "more than the host's",
        ),
        (
            json!({"imageId": kernel, "hypervisor": "xen"}),
            400,
            "unknown hypervisor",
        ),
        (json!({"imageId": kernel, "alias": "taken"}), 409, "taken"),
        (
            json!({"imageId": kernel, "restart": "sometimes"}),
            400,
            "restart policy",
        ),
        (json!({"imageId": "0000000000"}), 404, ""),
        (json!({"kernel": "../../etc/passwd"}), 400, "kernel file"),
        (json!({}), 400, "either imageId or kernel"),
    ];
    for (body, code, words) in cases {
        let (status, answer) = l.post("/v1/instances", body.clone());
        assert_eq!(status, code, "{body}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{body}: {message}");
    }
    assert_eq!(l.pods().len(), pods_before, "no pod was made");
    let (_, list) = l.server.json(&[], "/v1/instances");
    assert_eq!(list.as_array().unwrap().len(), 1, "no instance was made");

    // Without the hypervisor base: one clear error naming the script.
    let Some(bare) = Launcher::start(false, "tcg") else {
        return;
    };
    let kernel = bare.push(&test_kernel(false), "kernel32");
    let (status, answer) = bare.post("/v1/instances", json!({"imageId": kernel}));
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("images/qemu/make.sh"),
        "{answer}"
    );
    assert!(bare.pods().is_empty());
}

#[test]
fn the_cli_launches_a_local_file_and_drives_the_instance() {
    let Some(l) = Launcher::start(true, "tcg") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let out = Command::new(common::jetpack_bin())
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path())
            .env_remove("JETPACK_HOST")
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &l.server.port.to_string(),
                "--username",
                "admin",
                "--password",
                &l.server.password,
                "--tlsInsecureSkipVerify",
            ])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A local ELF is pushed, then launched: the id on stdout.
    let kernel = test_kernel(false);
    let (code, out, err) = cli(&[
        "launch",
        "--append",
        "idle",
        "--name",
        "cli-one",
        "--restart",
        "on-failure",
        "--memory",
        "64",
        kernel.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let id = out.trim().to_string();
    assert_eq!(id.len(), 32, "{out}");
    let shown = l.instance("cli-one");
    assert_eq!(shown["id"], id.as_str());
    assert_eq!(shown["launched"]["memory"], 64);
    assert_eq!(shown["launched"]["restart"], "on-failure");
    l.console_shows(&id, &format!("uuid={id}"), 1);
    let (code, console, err) = cli(&["instance-console", "cli-one"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(console.contains(&format!("jetpack test kernel: uuid={id}")));

    let (code, out, err) = cli(&["stop", "cli-one"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.trim(), format!("{id} stopped"));
    let (code, out, _) = cli(&["start", "cli-one", "-o", "json"]);
    assert_eq!(code, Some(0));
    let started: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(started["status"], "launching");
    l.console_shows(&id, &format!("uuid={id}"), 2);
    let (code, out, _) = cli(&["restart", &id[..8]]);
    assert_eq!(code, Some(0));
    assert_eq!(out.trim(), format!("{id} launching"));
    l.console_shows(&id, &format!("uuid={id}"), 3);

    // One clear error for a bad launch.
    let (code, out, err) = cli(&["launch", "--hypervisor", "xen", kernel.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(
        out.is_empty() && err.contains("unknown hypervisor"),
        "{err}"
    );

    let (code, _, err) = cli(&["delete-instance", "cli-one"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(hypervisors(&json!({ "id": id })).is_empty());
    assert!(l.pods().is_empty(), "its pod went with it");
}

/// The test VM (images/linux-vm): Debian's cloud kernel and an initramfs
/// with busybox and this jetpack, whose init docks with `jetpack sim --id`.
fn test_vm() -> PathBuf {
    static VM: OnceLock<PathBuf> = OnceLock::new();
    VM.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("linux-vm");
        if !out.join("initrd.gz").exists() {
            let status = Command::new(Path::new(ROOT).join("images/linux-vm/make.sh"))
                .arg(&out)
                .arg(common::jetpack_bin())
                .status()
                .expect("running images/linux-vm/make.sh");
            assert!(status.success(), "images/linux-vm/make.sh failed");
        }
        out
    })
    .clone()
}

#[test]
fn a_linux_vm_launched_from_a_kernel_docks_serves_a_published_port_and_restarts_into_its_deployed_image(
) {
    if !tool("qemu-system-x86_64") || !tool("as") || !tool("dpkg-deb") {
        return;
    }
    let Some(host) = TestHost::new(Driver::Dir) else {
        return;
    };
    host.ok(&["init"]);
    host.ok(&[
        "base",
        "import",
        "--name",
        "qemu",
        qemu_base().to_str().unwrap(),
    ]);
    let vm = test_vm();
    let kernels = tempfile::tempdir().unwrap();
    for file in ["vmlinuz", "initrd.gz"] {
        std::fs::copy(vm.join(file), kernels.path().join(file)).unwrap();
    }
    // The hangar must listen where pods reach it: the pod network's host
    // address. This host's KVM cannot run a stock Linux kernel (kvm-pvm),
    // so the VM runs under TCG.
    let server = TestServer::on_host_with(
        &host,
        &[
            "server.listen=0.0.0.0",
            "launch.accel=tcg",
            &format!("launch.kernels={}", kernels.path().display()),
        ],
        &[],
    );
    let l = Launcher { server, host };
    let (_, uplinks) = l.server.json(&[], "/v1/uplinks");
    let launch = uplinks
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "launch")
        .expect("the launch uplink")
        .clone();
    let url = launch["url"].as_str().unwrap();
    assert!(url.contains(":"), "{url}");
    let port = common::server::free_port();
    let instance = l.launch(json!({
        "kernel": "vmlinuz",
        "initrd": "initrd.gz",
        "append": format!(
            "console=ttyS0 quiet jetpack.uplink={url} jetpack.token={}",
            launch["token"].as_str().unwrap()
        ),
        "memory": 512,
        "publish": [format!("127.0.0.1:{port}:80")],
        "alias": "vm",
    }));
    let id = instance["id"].as_str().unwrap().to_string();
    assert_eq!(instance["status"], "launching");

    // It reads the SMBIOS UUID jetpack gave it and docks as that id.
    let console = l.console_shows(&id, "jetpack test vm: id=", 1);
    assert!(
        console.contains(&format!("jetpack test vm: id={id}")),
        "the VM reports another id than {id}:\n{console}"
    );
    wait_for("the VM to dock", Duration::from_secs(180), || {
        (l.instance(&id)["status"] == "connected").then_some(())
    });

    // Its web server, published on the host.
    let page = wait_for("the published port", Duration::from_secs(30), || {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{port}/"))
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert!(page.contains(&id), "{page}");

    // A live update it acknowledges becomes what it boots: after a restart
    // the test kernel runs, and reports the same id.
    let image = l.push(&test_kernel(false), "kernel32");
    let (status, job) = l.server.json(
        &["-X", "POST"],
        &format!("/v1/instances/{id}/deploy/{image}?force=true"),
    );
    assert_eq!(status, 202, "{job}");
    let job = l.wait_job(job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(l.instance(&id)["launched"]["image"], image.as_str());
    let (status, _) = l.post(&format!("/v1/instances/{id}/restart"), json!({}));
    assert_eq!(status, 200);
    let console = l.console_shows(&id, "jetpack test kernel: uuid=", 1);
    assert!(
        console.contains(&format!("jetpack test kernel: uuid={id}")),
        "{console}"
    );

    let (status, _) = l
        .server
        .json(&["-X", "DELETE"], &format!("/v1/instances/{id}"));
    assert_eq!(status, 200);
    assert!(l.pods().is_empty());
}

#[test]
fn an_image_that_no_longer_boots_stops_the_instance_and_says_why() {
    let Some(l) = Launcher::start(true, "tcg") else {
        return;
    };
    let image = l.push(&test_kernel(false), "kernel32");
    let instance = l.launch(json!({"imageId": image, "append": "idle", "restart": "always"}));
    let id = instance["id"].as_str().unwrap();
    l.console_shows(id, &format!("uuid={id}"), 1);
    // What the pod boots is broken behind jetpack's back (a disk error, a
    // bad hand edit): the next boot cannot even be planned.
    let pod_id = instance["launched"]["podId"].as_str().unwrap();
    let pod = l.host.json(&["pod", "show", pod_id]);
    let image_in_pod = Path::new(pod["root"].as_str().unwrap()).join("jetpack/instance/image");
    std::fs::remove_file(&image_in_pod).unwrap();
    std::fs::write(&image_in_pod, b"not an image").unwrap();
    let (status, _) = l.post(&format!("/v1/instances/{id}/restart"), json!({}));
    assert_eq!(status, 200);
    let console = l.console_shows(id, "[jetpack] supervisor:", 1);
    assert!(console.contains("ELF"), "{console}");
    // The supervisor ended its cell: no pod left running, no qemu.
    wait_for("the pod to stop", Duration::from_secs(30), || {
        (l.pod_state(pod_id).as_deref() == Some("exited")).then_some(())
    });
    assert!(hypervisors(&instance).is_empty());
    assert_eq!(l.instance(id)["status"], "stopped");
}

#[test]
fn after_a_host_restart_the_server_boots_the_instances_whose_policy_says_so() {
    let Some(l) = Launcher::start(true, "tcg") else {
        return;
    };
    let image = l.push(&test_kernel(false), "kernel32");
    let always = l.launch(json!({"imageId": image, "append": "idle", "restart": "always"}));
    let never = l.launch(json!({"imageId": image, "append": "idle"}));
    for instance in [&always, &never] {
        let id = instance["id"].as_str().unwrap();
        l.console_shows(id, &format!("uuid={id}"), 1);
    }
    // A host that went down: the server, every supervisor and every cell
    // end at once, without a word.
    let mut server = l.server;
    server.kill();
    let kill = |needle: &str| {
        for p in processes_mentioning(needle) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p.pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    };
    for instance in [&always, &never] {
        kill(instance["id"].as_str().unwrap());
        kill(instance["launched"]["podId"].as_str().unwrap());
    }
    wait_for("the instances to be gone", Duration::from_secs(30), || {
        (hypervisors(&always).is_empty() && hypervisors(&never).is_empty()).then_some(())
    });
    server.spawn(&[]);
    let l = Launcher {
        server,
        host: l.host,
    };
    let id = always["id"].as_str().unwrap();
    l.console_shows(id, &format!("uuid={id}"), 2);
    assert_eq!(l.instance(id)["status"], "launching");
    let id = never["id"].as_str().unwrap();
    assert_eq!(
        l.instance(id)["status"],
        "stopped",
        "policy no: it stays down"
    );
    let (status, _) = l.post(&format!("/v1/instances/{id}/start"), json!({}));
    assert_eq!(status, 200);
    l.console_shows(id, &format!("uuid={id}"), 2);
}

/// The command line of the cell holder of pod `pod_id`, as /proc shows it.
fn cell_holder_argv(pod_id: &str) -> Option<Vec<String>> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let argv: Vec<String> = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            (argv.get(1).map(String::as_str) == Some("__cell-init")
                && argv.get(2).is_some_and(|name| name.ends_with(pod_id)))
            .then_some(argv)
        })
}
