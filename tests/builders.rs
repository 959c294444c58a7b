//! Bobs, builders and builds on a real host: the test builder of
//! images/test-builder (busybox and binutils) from a `local` provider,
//! prepared into a base on real ZFS, its builds and validations in real
//! pods (namespaces), the image booted under qemu to its serial line.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::server::TestServer;
use common::{tool, Driver, TestHost, JETPACK};
use serde_json::{json, Value};

fn provider_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(common::bobs::provider_dir).clone()
}

/// A copy of the provider directory a test may change.
fn own_provider(dir: &Path) -> PathBuf {
    let own = dir.join("bobs");
    std::fs::create_dir_all(&own).unwrap();
    for f in ["test-builder.tar.gz", "test-builder.json"] {
        std::fs::copy(provider_dir().join(f), own.join(f)).unwrap();
    }
    own
}

struct Builds {
    host: TestHost,
    server: TestServer,
    home: tempfile::TempDir,
    _work: tempfile::TempDir,
    bobs: PathBuf,
}

impl Builds {
    /// A server on real ZFS and namespaces with a local provider `local`;
    /// None when the machine cannot (the test then skips, never in CI).
    fn start(options: &[&str]) -> Option<Builds> {
        if !tool("as") || !tool("ld") {
            return None;
        }
        let host = TestHost::new(Driver::ZfsCli)?;
        let work = tempfile::tempdir().unwrap();
        let bobs = own_provider(work.path());
        let provider = format!("bob.provider.local=local {}", bobs.display());
        let mut all = vec![provider.as_str()];
        all.extend(options);
        let server = TestServer::on_host_with(&host, &all, &[]);
        Some(Builds {
            host,
            server,
            home: tempfile::tempdir().unwrap(),
            _work: work,
            bobs,
        })
    }

    fn cli(&self, args: &[&str]) -> Output {
        Command::new(JETPACK)
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.home.path())
            .env_remove("JETPACK_PASSWORD")
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.server.port.to_string(),
                "--username",
                "admin",
                "--password",
                &self.server.password,
                "--tlsInsecureSkipVerify",
            ])
            .args(args)
            .output()
            .expect("running jetpack")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "jetpack {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
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

    fn wait_job(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let (status, job) = self.server.json(&[], &format!("/v1/jobs/{id}"));
            assert_eq!(status, 200, "{job}");
            if matches!(
                job["state"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            ) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} is still {}",
                job["state"]
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn prepared(&self) -> String {
        self.ok(&["bob", "update", "local"]);
        self.ok(&["bob", "prepare", "--wait", "local", "test-builder"])
    }

    fn push_nacl(&self, name: &str, text: &str) -> String {
        let (status, nacl) = self.post("/v1/nacls", json!({"name": name, "content": text}));
        assert_eq!(status, 201, "{nacl}");
        nacl["id"].as_str().unwrap().to_string()
    }

    /// Submits a build; returns the finished job.
    fn build(&self, body: Value) -> Value {
        let (status, job) = self.post(
            "/v1/images/build/services/Starbase/builders/test-builder",
            body,
        );
        assert_eq!(status, 202, "{job}");
        self.wait_job(job["id"].as_str().unwrap())
    }

    /// Pods and datasets left: none once every build has ended.
    fn assert_nothing_left(&self) {
        let (_, pods) = self.server.json(&[], "/v1/pods");
        assert_eq!(pods, json!([]), "build pods were left");
        let pods_dataset = format!("{}/pods/", self.host.dataset.as_ref().unwrap());
        let left: Vec<String> = self
            .host
            .leftovers()
            .into_iter()
            .filter(|d| d.starts_with(&pods_dataset))
            .collect();
        assert!(left.is_empty(), "datasets left: {left:?}");
    }
}

const NACL: &str =
    "Iface eth0 {\n  index: 0,\n  address: 10.0.0.42,\n  netmask: 255.255.255.0\n}\n";

/// Boots `image` under qemu; returns what it printed on the serial port.
fn boot(image: &Path) -> String {
    let mut args = vec![
        "-kernel".to_string(),
        image.display().to_string(),
        "-display".into(),
        "none".into(),
        "-serial".into(),
        "stdio".into(),
        "-device".into(),
        "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
        "-no-reboot".into(),
        "-m".into(),
        "64".into(),
    ];
    if Path::new("/dev/kvm").exists() {
        args.extend(["-accel", "kvm", "-accel", "tcg"].map(String::from));
    }
    let out = Command::new("timeout")
        .arg("60")
        .arg("qemu-system-x86_64")
        .args(&args)
        .output()
        .expect("running qemu-system-x86_64");
    format!(
        "{}\n(stderr: {})",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_local_bob_becomes_a_builder_whose_image_boots_with_the_chosen_uplink() {
    let Some(b) = Builds::start(&[]) else {
        return;
    };
    let listed = b.ok(&["bob", "list", "-o", "json"]);
    assert_eq!(listed, "[]", "no bobs before the first update");
    let updated: Value = serde_json::from_str(&b.ok(&["bob", "update", "-o", "json"])).unwrap();
    assert_eq!(updated[0]["id"], "test-builder");
    assert_eq!(updated[0]["version"], "v0.1.0-test");
    assert_eq!(updated[0]["services"], json!(["Starbase"]));
    assert!(updated[0]["digest"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));

    let builder = b.ok(&["bob", "prepare", "--wait", "local", "test-builder"]);
    assert_eq!(builder, "test-builder");
    let (_, builders) = b.server.json(&[], "/v1/builders");
    assert_eq!(builders[0]["id"], "test-builder");
    assert_eq!(builders[0]["providerId"], "local");
    assert_eq!(builders[0]["vcsRef"], "5e1f00d");
    // The same digest again is the same builder, fetched and imported once.
    let again = b.cli(&["bob", "prepare", "--wait", "local", "test-builder"]);
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        again.status.success() && said.contains("already"),
        "a second prepare: {said}"
    );
    let (_, bases) = b.server.json(&[], "/v1/bases");
    assert_eq!(bases.as_array().unwrap().len(), 1, "{bases}");

    // An uplink of our own, which the image must carry.
    let (status, uplink) = b.post(
        "/v1/uplinks",
        json!({"name": "lab", "url": "https://10.9.8.7:9090", "tag": "lab-tag"}),
    );
    assert_eq!(status, 201, "{uplink}");
    let nacl = b.push_nacl("starbase", NACL);
    let image = b.ok(&[
        "build",
        "Starbase",
        "test-builder",
        "--nacl",
        &nacl,
        "--uplink",
        "lab",
        "--waitAndPrint",
    ]);
    assert_eq!(image.len(), 40, "an image id (SHA-1): {image:?}");
    let (status, meta) = b.server.json(&[], &format!("/v1/images/{image}"));
    assert_eq!(status, 200, "{meta}");
    assert_eq!(meta["builderId"], "test-builder");
    assert_eq!(meta["naclId"], nacl.as_str());
    assert_eq!(meta["uplinkId"], uplink["id"]);
    assert_eq!(meta["uplinkUrl"], "https://10.9.8.7:9090");
    assert_eq!(meta["tag"], "lab-tag");
    assert_eq!(meta["includeosVersion"], "v0.1.0-test");

    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("image.elf");
    b.ok(&["pull-image", &image, file.to_str().unwrap()]);
    // The embedded config.json is the chosen uplink, as IncludeOS reads it.
    let config = work.path().join("config.json");
    let status = Command::new("objcopy")
        .args(["-O", "binary", "--only-section=.config"])
        .arg(&file)
        .arg(&config)
        .status()
        .unwrap();
    assert!(status.success());
    let embedded: Value = serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert_eq!(embedded["uplink"]["url"], "https://10.9.8.7:9090");
    assert_eq!(embedded["uplink"]["token"], uplink["token"]);
    assert_eq!(embedded["uplink"]["tag"], "lab-tag");
    if tool("qemu-system-x86_64") {
        let serial = boot(&file);
        let line = serial
            .lines()
            .find(|l| l.starts_with("jetpack test kernel: "))
            .unwrap_or_else(|| panic!("no serial line from the image: {serial:?}"));
        assert!(line.contains("https://10.9.8.7:9090"), "{line}");
    }
    b.assert_nothing_left();

    // A builder in use cannot go; afterwards it goes with its base.
    let out = b.cli(&["delete-builder", "test-builder"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, bases) = b.server.json(&[], "/v1/bases");
    assert_eq!(bases, json!([]));
}

#[test]
fn failed_builds_leave_no_pod_and_no_dataset() {
    let Some(b) = Builds::start(&["build.timeout=3"]) else {
        return;
    };
    b.prepared();
    for (hook, expected) in [
        ("exit 7", "exited with status 7"),
        ("no-output", "wrote nothing"),
        ("not-elf", "not an image"),
        ("symlink", "symlink"),
        ("two-outputs", "2 entries"),
        ("sleep", "ran out of time"),
    ] {
        let job = b.build(json!({"nacl": format!("// test: {hook}\n{NACL}")}));
        assert_eq!(job["state"], "failed", "{hook}: {job}");
        let error = job["error"].as_str().unwrap();
        assert!(error.contains(expected), "{hook}: {error}");
        b.assert_nothing_left();
    }
    let (_, images) = b.server.json(&[], "/v1/images");
    assert_eq!(images, json!([]), "a failed build stored an image");
    // The build's own output reached the job log.
    let (_, jobs) = b.server.json(&[], "/v1/jobs");
    let builds: Vec<&Value> = jobs
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "build")
        .collect();
    assert_eq!(builds.len(), 6);
    let exited = builds
        .iter()
        .find(|j| j["error"].as_str().unwrap().contains("status 7"))
        .unwrap();
    let (_, log) = b.server.curl(
        &[],
        &format!("/v1/jobs/{}/log", exited["id"].as_str().unwrap()),
    );
    assert!(log.contains("failing on purpose"), "{log}");
}

#[test]
fn bad_requests_are_refused_before_anything_runs() {
    let Some(b) = Builds::start(&[]) else {
        return;
    };
    // Nothing is known before an update.
    let (status, e) = b.post(
        "/v1/bobproviders/local/prepare/bobs/test-builder",
        json!({}),
    );
    assert_eq!(status, 404, "{e}");
    let (status, _) = b.post("/v1/bobproviders/nope/update", json!({}));
    assert_eq!(status, 404);
    b.prepared();
    let (status, e) = b.post("/v1/bobproviders/local/prepare/bobs/nope", json!({}));
    assert_eq!(status, 404, "{e}");
    let build = |service: &str, builder: &str, body: Value| {
        b.post(
            &format!("/v1/images/build/services/{service}/builders/{builder}"),
            body,
        )
    };
    let (status, e) = build("Acorn", "test-builder", json!({"nacl": NACL}));
    assert_eq!(status, 422, "{e}");
    assert!(e["message"].as_str().unwrap().contains("Starbase"), "{e}");
    let (status, e) = build("Starbase", "nope", json!({"nacl": NACL}));
    assert_eq!(status, 404, "{e}");
    let (status, e) = build(
        "Starbase",
        "test-builder",
        json!({"naclId": "no-such-nacl"}),
    );
    assert_eq!(status, 404, "{e}");
    let (status, e) = build("Starbase", "test-builder", json!({}));
    assert_eq!(status, 400, "{e}");
    let (status, e) = build(
        "Starbase",
        "test-builder",
        json!({"nacl": NACL, "uplinkId": "nope"}),
    );
    assert_eq!(status, 404, "{e}");
    let (_, jobs) = b.server.json(&[], "/v1/jobs");
    assert!(
        !jobs
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["kind"] == "build"),
        "a refused build became a job: {jobs}"
    );

    // A manifest missing a field: the prepare fails and leaves no base.
    let manifest = b.bobs.join("test-builder.json");
    let mut broken: Value = serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    broken.as_object_mut().unwrap().remove("validate");
    std::fs::write(b.bobs.join("broken.json"), broken.to_string()).unwrap();
    std::fs::copy(
        b.bobs.join("test-builder.tar.gz"),
        b.bobs.join("broken.tar.gz"),
    )
    .unwrap();
    let bobs: Value =
        serde_json::from_str(&b.ok(&["bob", "update", "local", "-o", "json"])).unwrap();
    assert_eq!(
        bobs.as_array().unwrap().len(),
        1,
        "the broken bob is skipped: {bobs}"
    );

    // An archive changed since the update is refused by its digest.
    // (Recompressed, so that its digest is not the prepared builder's.)
    std::fs::write(
        b.bobs.join("corrupt.json"),
        std::fs::read(&manifest).unwrap(),
    )
    .unwrap();
    let tar = {
        use std::io::Read;
        let gz = std::fs::File::open(b.bobs.join("test-builder.tar.gz")).unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut tar)
            .unwrap();
        tar
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    std::fs::write(b.bobs.join("corrupt.tar.gz"), gz.finish().unwrap()).unwrap();
    b.ok(&["bob", "update", "local"]);
    let mut bytes = std::fs::read(b.bobs.join("corrupt.tar.gz")).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(b.bobs.join("corrupt.tar.gz"), bytes).unwrap();
    let out = b.cli(&["bob", "prepare", "--wait", "local", "corrupt"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sha256"), "{stderr}");
    let (_, builders) = b.server.json(&[], "/v1/builders");
    assert_eq!(builders.as_array().unwrap().len(), 1, "{builders}");
    let (_, bases) = b.server.json(&[], "/v1/bases");
    assert_eq!(bases.as_array().unwrap().len(), 1, "{bases}");
}

#[test]
fn builds_over_the_limit_queue_and_cancel_kills_the_pod() {
    let Some(b) = Builds::start(&["build.concurrency=1", "build.timeout=60"]) else {
        return;
    };
    b.prepared();
    let submit = |nacl: String| {
        let (status, job) = b.post(
            "/v1/images/build/services/Starbase/builders/test-builder",
            json!({ "nacl": nacl }),
        );
        assert_eq!(status, 202, "{job}");
        job["id"].as_str().unwrap().to_string()
    };
    let sleeper = submit(format!("// test: sleep\n{NACL}"));
    let queued = submit(NACL.to_string());
    // The first runs (its pod exists), the second waits for the slot.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, pods) = b.server.json(&[], "/v1/pods");
        if pods.as_array().is_some_and(|p| !p.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "the first build never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, job) = b.server.json(&[], &format!("/v1/jobs/{queued}"));
    assert_eq!(job["state"], "queued", "{job}");
    // A builder in use cannot be deleted.
    let (status, e) = b
        .server
        .json(&["-X", "DELETE"], "/v1/builders/test-builder");
    assert_eq!(status, 409, "{e}");
    let (status, _) = b
        .server
        .json(&["-X", "DELETE"], &format!("/v1/jobs/{sleeper}"));
    assert_eq!(status, 202);
    let job = b.wait_job(&sleeper);
    assert_eq!(job["state"], "cancelled", "{job}");
    let job = b.wait_job(&queued);
    assert_eq!(job["state"], "succeeded", "{job}");
    b.assert_nothing_left();
}

#[test]
fn validation_by_builder_maps_errors_to_lines() {
    let Some(b) = Builds::start(&[]) else {
        return;
    };
    b.prepared();
    let (status, v) = b.server.json(
        &["-H", "Content-Type: text/plain", "--data-binary", NACL],
        "/v1/nacls/validate/builders/test-builder",
    );
    // A builder runs the reference: its verdict has no warnings.
    assert_eq!((status, v), (200, json!({"valid": true, "warnings": []})));
    let bad = "Iface eth0 {\n  index: 0\n}\nIfacee eth1 {\n}\n}\n";
    let (status, v) = b.post(
        "/v1/nacls/validate/builders/test-builder",
        json!({ "content": bad }),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(
        v["errors"],
        json!([
            {"line": 4, "column": 0, "message": "Invalid type Ifacee", "severity": "error"},
            {"line": 6, "column": 0, "message": "Unmatched }", "severity": "error"},
        ])
    );
    // push-nacl with a builder validates first and stores nothing invalid.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("bad.nacl");
    std::fs::write(&file, bad).unwrap();
    let out = b.cli(&[
        "push-nacl",
        file.to_str().unwrap(),
        "test-builder",
        "--name",
        "bad",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 4:0 Invalid type Ifacee"));
    let (_, nacls) = b.server.json(&[], "/v1/nacls");
    assert_eq!(nacls, json!([]));
    std::fs::write(&file, NACL).unwrap();
    b.ok(&[
        "push-nacl",
        file.to_str().unwrap(),
        "test-builder",
        "--name",
        "good",
    ]);
    b.assert_nothing_left();
}

/// A plain HTTP server on loopback serving the files of `dir` (a real
/// peer for the `http` provider; one request per connection).
fn serve_dir(dir: PathBuf) -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).map_or(true, |n| n == 0) || header == "\r\n" {
                    break;
                }
            }
            let mut stream = reader.into_inner();
            let file = path.trim_start_matches('/');
            match std::fs::read(dir.join(file))
                .ok()
                .filter(|_| !file.contains(".."))
            {
                Some(body) => {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = stream.write_all(&body);
                }
                None => {
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
        }
    });
    port
}

#[test]
fn an_http_index_is_listed_and_its_archives_checked_before_import() {
    let work = tempfile::tempdir().unwrap();
    let site = work.path().join("site");
    std::fs::create_dir_all(&site).unwrap();
    let archive = provider_dir().join("test-builder.tar.gz");
    std::fs::copy(&archive, site.join("test-builder.tar.gz")).unwrap();
    let bytes = std::fs::read(&archive).unwrap();
    let sha256 = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(provider_dir().join("test-builder.json")).unwrap())
            .unwrap();
    let entry = |id: &str, sha: &str| {
        let mut e = manifest.clone();
        e["id"] = json!(id);
        e["url"] = json!("test-builder.tar.gz");
        e["sha256"] = json!(sha);
        e["size"] = json!(bytes.len());
        e
    };
    let index =
        json!({"bobs": [entry("web-builder", &sha256), entry("wrong-digest", &"0".repeat(64))]});
    std::fs::write(site.join("index.json"), index.to_string()).unwrap();
    let port = serve_dir(site);
    let provider = format!("bob.provider.web=http http://127.0.0.1:{port}/index.json");
    let Some(b) = Builds::start(&[provider.as_str()]) else {
        return;
    };
    let bobs: Value = serde_json::from_str(&b.ok(&["bob", "update", "web", "-o", "json"])).unwrap();
    let ids: Vec<&str> = bobs
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["web-builder", "wrong-digest"]);
    assert_eq!(bobs[0]["digest"], format!("sha256:{sha256}"));
    // A wrong digest is refused after the fetch and before any import.
    let out = b.cli(&["bob", "prepare", "--wait", "web", "wrong-digest"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sha256"));
    let (_, bases) = b.server.json(&[], "/v1/bases");
    assert_eq!(bases, json!([]), "{bases}");
    assert_eq!(
        b.ok(&["bob", "prepare", "--wait", "web", "web-builder"]),
        "web-builder"
    );
    let (_, builder) = b.server.json(&[], "/v1/builders/web-builder");
    assert_eq!(builder["providerId"], "web");
    assert_eq!(builder["services"], json!(["Starbase"]));
}

/// Debian's docker-registry on a free loopback port, killed on drop.
struct Registry {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Option<Registry> {
        if !tool("docker-registry") || !tool("skopeo") || !tool("jq") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = common::server::free_port();
        let config = dir.path().join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Registry { child, port, dir })
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The largest file under `dir`: the registry's copy of the layer.
fn largest_file(dir: &Path) -> PathBuf {
    let mut best: Option<(u64, PathBuf)> = None;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                pending.push(e.path());
            } else if best.as_ref().is_none_or(|(size, _)| meta.len() > *size) {
                best = Some((meta.len(), e.path()));
            }
        }
    }
    best.expect("no file in the registry").1
}

#[test]
fn an_oci_image_pushed_to_a_registry_becomes_a_builder() {
    let Some(registry) = Registry::start() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("layout");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/test-builder/make.sh");
    let status = Command::new(&script)
        .args(["--oci", layout.to_str().unwrap(), "v0.1.0-test"])
        .status()
        .unwrap();
    assert!(status.success(), "make.sh --oci failed");
    let status = Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v0.1.0-test", layout.display()))
        .arg(format!(
            "docker://127.0.0.1:{}/jetpack/test-builder:v0.1.0-test",
            registry.port
        ))
        .status()
        .unwrap();
    assert!(status.success(), "skopeo copy failed");
    let provider = format!(
        "bob.provider.hub=oci http://127.0.0.1:{}/jetpack/test-builder",
        registry.port
    );
    let Some(b) = Builds::start(&[provider.as_str()]) else {
        return;
    };
    let bobs: Value = serde_json::from_str(&b.ok(&["bob", "update", "hub", "-o", "json"])).unwrap();
    assert_eq!(bobs[0]["id"], "v0.1.0-test", "{bobs}");
    assert_eq!(bobs[0]["name"], "jetpack/test-builder");
    assert_eq!(bobs[0]["vcsRef"], "5e1f00d");
    assert_eq!(bobs[0]["services"], json!(["Starbase"]));
    // A layer the registry serves damaged is refused before import.
    let layer = largest_file(&registry.dir.path().join("data"));
    let original = std::fs::read(&layer).unwrap();
    let mut damaged = original.clone();
    damaged[original.len() / 2] ^= 0xff;
    std::fs::write(&layer, &damaged).unwrap();
    let out = b.cli(&["bob", "prepare", "--wait", "hub", "v0.1.0-test"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sha256"),
        "{out:?}"
    );
    let (_, bases) = b.server.json(&[], "/v1/bases");
    assert_eq!(bases, json!([]), "{bases}");
    std::fs::write(&layer, &original).unwrap();
    assert_eq!(
        b.ok(&["bob", "prepare", "--wait", "hub", "v0.1.0-test"]),
        "v0.1.0-test"
    );
    let nacl = b.push_nacl("hub", NACL);
    let image = b.ok(&[
        "build",
        "Starbase",
        "v0.1.0-test",
        "--nacl",
        &nacl,
        "--waitAndPrint",
    ]);
    assert_eq!(image.len(), 40, "{image}");
    b.assert_nothing_left();
}

#[test]
fn an_upgrade_builds_with_the_instances_uplink_and_deploys_it() {
    let port = common::server::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let (port_option, url_option) = (format!("uplink.port={port}"), format!("uplink.url={url}"));
    let Some(b) = Builds::start(&[&port_option, &url_option, "uplink.tls=off"]) else {
        return;
    };
    b.prepared();
    let nacl = b.push_nacl("upgrade", NACL);
    let (_, uplink) = b.server.json(&[], "/v1/uplinks/default");
    let token = uplink["token"].as_str().unwrap().to_string();
    let mut sim = Command::new(JETPACK)
        .args([
            "sim", "--url", &url, "--token", &token, "--count", "1", "--seed", "upg",
        ])
        .args(["--report-ms", "500"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starting jetpack sim");
    let id = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(b"upg-0"))[..32].to_string()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = b.server.json(&[], &format!("/v1/instances/{id}"));
        if status == 200 && common::hangar::is_identified(&v) {
            break;
        }
        assert!(Instant::now() < deadline, "the instance never docked: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, job) = b.post(
        &format!("/v1/instances/{id}/upgrade"),
        json!({"builderId": "test-builder", "naclId": nacl, "timeout": 30}),
    );
    assert_eq!(status, 202, "{job}");
    let job = b.wait_job(job["id"].as_str().unwrap());
    let _ = sim.kill();
    let _ = sim.wait();
    assert_eq!(job["state"], "succeeded", "{job}");
    let image = job["result"]["id"].as_str().unwrap();
    assert_eq!(job["result"]["deploy"]["image"], image);
    assert_eq!(job["result"]["uplinkUrl"], url.as_str());
    assert_eq!(job["result"]["uplinkId"], uplink["id"]);
    b.assert_nothing_left();
}

#[test]
fn with_an_mds_a_build_takes_its_parameters_from_it_and_its_output_is_signed() {
    let keys = [
        "mds.token-key=5a8d1c3e7b9f2a4c6e8d0b1a3c5e7f9a2b4d6f8e0a1c3e5b7d9f1a3c5e7b9d0f"
            .to_string(),
        "mds.signing-key=0f9e8d7c6b5a49382716f5e4d3c2b1a00f9e8d7c6b5a49382716f5e4d3c2b1a0"
            .to_string(),
        format!("mds.port={}", common::server::free_port()),
    ];
    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    let Some(b) = Builds::start(&keys) else {
        return;
    };
    b.prepared();
    let log = |job: &Value| {
        b.server
            .curl(
                &[],
                &format!("/v1/jobs/{}/log", job["id"].as_str().unwrap()),
            )
            .1
    };
    let job = b.build(json!({"nacl": NACL, "name": "From-Mds"}));
    assert_eq!(job["state"], "succeeded", "{job} {}", log(&job));
    let said = log(&job);
    assert!(
        said.contains("parameters from the MDS: service=Starbase name=From-Mds"),
        "{said}"
    );
    assert!(said.contains("MDS signature verified"), "{said}");
    // A signature the MDS did not make is refused, and nothing is stored.
    let (_, before) = b.server.json(&[], "/v1/images");
    let job = b.build(json!({"nacl": format!("// test: bad-signature\n{NACL}")}));
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        job["error"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"),
        "{job}"
    );
    let (_, after) = b.server.json(&[], "/v1/images");
    assert_eq!(before, after);
    b.assert_nothing_left();
}
