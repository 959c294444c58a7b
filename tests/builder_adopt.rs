//! A stock `includeos/builder` image (Mothership's builders, no
//! /jetpack/builder.json) adopted through the `oci` provider: the
//! look-alike of tests/fixtures/includeos-builder (same labels, entrypoint
//! and paths, a fake-but-runnable NaCl.py and cmake/make that write a real
//! ELF) pushed to a loopback docker-registry with skopeo, prepared into a
//! base on real ZFS, built with and validated by in real pods
//! (namespaces). And the default `DockerHub` provider, without ever
//! reaching the Internet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::server::TestServer;
use common::{tool, Driver, TestHost, JETPACK};
use serde_json::{json, Value};

/// Debian's docker-registry on a free loopback port, killed on drop.
struct Registry {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
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
        Some(Registry {
            child,
            port,
            _dir: dir,
        })
    }

    /// Makes the look-alike image and pushes it as `includeos/builder:TAG`.
    fn push_lookalike(&self, tag: &str) {
        let work = tempfile::tempdir().unwrap();
        let layout = work.path().join("layout");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/includeos-builder/make.sh");
        let status = Command::new(&script)
            .arg(&layout)
            .arg(tag)
            .status()
            .unwrap();
        assert!(status.success(), "{} failed", script.display());
        let status = Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!(
                "docker://127.0.0.1:{}/includeos/builder:{tag}",
                self.port
            ))
            .status()
            .unwrap();
        assert!(status.success(), "skopeo copy failed");
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The jetpack CLI against `server`, its own HOME.
fn cli(server: &TestServer, home: &Path, args: &[&str]) -> Output {
    Command::new(JETPACK)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home)
        .env_remove("JETPACK_PASSWORD")
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &server.port.to_string(),
            "--username",
            "admin",
            "--password",
            &server.password,
            "--tlsInsecureSkipVerify",
        ])
        .args(args)
        .output()
        .expect("running jetpack")
}

fn ok(server: &TestServer, home: &Path, args: &[&str]) -> String {
    let out = cli(server, home, args);
    assert!(
        out.status.success(),
        "jetpack {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn post(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    server.json(
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
        ],
        path,
    )
}

fn wait_job(server: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let (status, job) = server.json(&[], &format!("/v1/jobs/{id}"));
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

const NACL: &str =
    "Iface eth0 {\n  index: 0,\n  address: 10.0.0.42,\n  netmask: 255.255.255.0\n}\n";
const BAD_NACL: &str = "Iface eth0 {\n  index: 0\n}\nIfacee eth1 {\n}\n";

/// What the look-alike's NaCl.py makes of `nacl`, as its make appends it.
fn transpiled(nacl: &str) -> String {
    let mut text = "// nacl_content.cpp, made by NaCl.py (look-alike)\n".to_string();
    for line in nacl.lines() {
        text.push_str(&format!("// NaCl: {line}\n"));
    }
    text
}

#[test]
fn a_stock_includeos_builder_is_adopted_and_builds_and_validates() {
    let Some(registry) = Registry::start() else {
        return;
    };
    if !tool("busybox") {
        return;
    }
    registry.push_lookalike("v0.13.0");
    let Some(host) = TestHost::new(Driver::ZfsCli) else {
        return;
    };
    let provider = format!(
        "bob.provider.hub=oci http://127.0.0.1:{}/includeos/builder",
        registry.port
    );
    let server = TestServer::on_host_with(&host, &[provider.as_str()], &[]);
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    // Listed from its labels alone: the label-schema ones, no services label.
    let bobs: Value =
        serde_json::from_str(&ok(&server, home, &["bob", "update", "hub", "-o", "json"])).unwrap();
    assert_eq!(bobs[0]["id"], "v0.13.0", "{bobs}");
    assert_eq!(bobs[0]["name"], "includeos/builder");
    assert_eq!(bobs[0]["vendor"], "IncludeOS");
    assert_eq!(bobs[0]["vcsRef"], "c0ffee1");
    assert_eq!(bobs[0]["services"], json!(["Starbase"]));

    // Prepared without /jetpack/builder.json: adopted, and the job says so.
    let (status, job) = post(
        &server,
        "/v1/bobproviders/hub/prepare/bobs/v0.13.0",
        json!({}),
    );
    assert_eq!(status, 202, "{job}");
    let job = wait_job(&server, job["id"].as_str().unwrap());
    assert_eq!(job["state"], "succeeded", "{job}");
    let (_, log) = server.curl(
        &[],
        &format!("/v1/jobs/{}/log", job["id"].as_str().unwrap()),
    );
    assert!(
        log.contains("adopted as a stock includeos/builder"),
        "{log}"
    );
    let (status, builder) = server.json(&[], "/v1/builders/v0.13.0");
    assert_eq!(status, 200, "{builder}");
    // The version is the image's own /ios_version.txt (IncludeOS's git describe).
    assert_eq!(builder["version"], "v0.13.0-test", "{builder}");
    assert_eq!(builder["vendor"], "IncludeOS");
    assert_eq!(builder["providerId"], "hub");
    assert_eq!(builder["services"], json!(["Starbase"]));

    // A build: jetpack's entry point runs NaCl.py, cmake and make of the
    // image; the stored image is the ELF its make wrote.
    let (status, nacl) = post(
        &server,
        "/v1/nacls",
        json!({"name": "adopted", "content": NACL}),
    );
    assert_eq!(status, 201, "{nacl}");
    let nacl_id = nacl["id"].as_str().unwrap();
    let image = ok(
        &server,
        home,
        &[
            "build",
            "Starbase",
            "v0.13.0",
            "--nacl",
            nacl_id,
            "--waitAndPrint",
        ],
    );
    assert_eq!(image.len(), 40, "{image}");
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("image.elf");
    ok(
        &server,
        home,
        &["pull-image", &image, file.to_str().unwrap()],
    );
    let bytes = std::fs::read(&file).unwrap();
    let elf = std::fs::read("/bin/busybox").unwrap();
    assert!(bytes.starts_with(b"\x7fELF"));
    assert!(
        bytes.starts_with(&elf),
        "the image is not the look-alike's ELF"
    );
    assert_eq!(
        String::from_utf8_lossy(&bytes[elf.len()..]),
        transpiled(NACL),
        "the NaCl did not go through NaCl.py into the image"
    );
    {
        use sha1::{Digest, Sha1};
        assert_eq!(hex::encode(Sha1::digest(&bytes)), image);
    }
    let (_, meta) = server.json(&[], &format!("/v1/images/{image}"));
    assert_eq!(meta["builderId"], "v0.13.0", "{meta}");

    // A NaCl NaCl.py rejects fails the build with its line, stores nothing.
    let (status, job) = post(
        &server,
        "/v1/images/build/services/Starbase/builders/v0.13.0",
        json!({"nacl": BAD_NACL}),
    );
    assert_eq!(status, 202, "{job}");
    let job = wait_job(&server, job["id"].as_str().unwrap());
    assert_eq!(job["state"], "failed", "{job}");
    let (_, log) = server.curl(
        &[],
        &format!("/v1/jobs/{}/log", job["id"].as_str().unwrap()),
    );
    assert!(log.contains("line 4:0 Invalid type Ifacee"), "{log}");
    let (_, images) = server.json(&[], "/v1/images");
    assert_eq!(images.as_array().map(Vec::len), Some(1), "{images}");

    // Validation by the adopted builder: NaCl.py's verdict.
    let (status, v) = server.json(
        &["-H", "Content-Type: text/plain", "--data-binary", NACL],
        "/v1/nacls/validate/builders/v0.13.0",
    );
    assert_eq!((status, v), (200, json!({"valid": true, "warnings": []})));
    let (status, v) = post(
        &server,
        "/v1/nacls/validate/builders/v0.13.0",
        json!({ "content": BAD_NACL }),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(
        v["errors"],
        json!([{"line": 4, "column": 0, "message": "Invalid type Ifacee", "severity": "error"}])
    );

    // Every build and validation pod is gone.
    let (_, pods) = server.json(&[], "/v1/pods");
    assert_eq!(pods, json!([]), "pods were left");
    let pods_dataset = format!("{}/pods/", host.dataset.as_ref().unwrap());
    let left: Vec<String> = host
        .leftovers()
        .into_iter()
        .filter(|d| d.starts_with(&pods_dataset))
        .collect();
    assert!(left.is_empty(), "datasets left: {left:?}");
}

fn provider_ids(server: &TestServer) -> Vec<String> {
    let (status, list) = server.json(&[], "/v1/bobproviders");
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_dockerhub_provider_is_there_from_the_start_unless_disabled() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    // The default (the test servers turn it off unless asked, so that no
    // test reaches the Internet: ask for the default explicitly).
    let server = TestServer::start(&["builders.dockerhub=on"], &[]);
    let (_, list) = server.json(&[], "/v1/bobproviders");
    let hub = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "DockerHub")
        .unwrap_or_else(|| panic!("no DockerHub provider: {list}"))
        .clone();
    assert_eq!(hub["kind"], "oci", "{hub}");
    assert_eq!(hub["url"], "https://registry-1.docker.io/includeos/builder");
    // Never updated: no bobs yet, and listing them asks nobody.
    let out = ok(&server, home, &["bob", "list", "DockerHub", "-o", "json"]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!([]));
    drop(server);

    let server = TestServer::start(&["builders.dockerhub=off"], &[]);
    assert!(!provider_ids(&server).contains(&"DockerHub".to_string()));
    drop(server);

    // jetpack.conf's own DockerHub line wins over the default: here a
    // registry that is not there, which fails clearly, offline; updating
    // every provider says which failed and still updates the others.
    let closed = common::server::free_port();
    let mirror = format!("bob.provider.DockerHub=oci http://127.0.0.1:{closed}/includeos/builder");
    let empty = tempfile::tempdir().unwrap();
    let local = format!("bob.provider.local=local {}", empty.path().display());
    let server = TestServer::start(
        &["builders.dockerhub=on", mirror.as_str(), local.as_str()],
        &[],
    );
    assert_eq!(provider_ids(&server), ["DockerHub", "local"]);
    let out = cli(&server, home, &["bob", "update", "DockerHub"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{closed}")), "{err}");
    let out = cli(&server, home, &["bob", "update"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("provider local: 0 bob(s)"), "{err}");
    assert!(
        err.contains("could not update provider(s) DockerHub"),
        "{err}"
    );
    let (_, providers) = server.json(&[], "/v1/bobproviders");
    let local = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "local")
        .unwrap();
    assert!(!local["updated"].is_null(), "{providers}");
}
