//! `jetpack serve` against real peers: curl over TLS on loopback, users
//! made by `htpasswd -B`, certificates made by `openssl req -x509`. Every
//! resource family is driven through the HTTP surface a user would use.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use common::server::{fake_elf, TestServer};
use serde_json::{json, Value};

fn peers() -> bool {
    common::tool("curl") && common::tool("htpasswd") && common::tool("openssl")
}

#[test]
fn first_start_makes_a_certificate_and_an_admin_and_curl_gets_info() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let keys = server.keys_dir();
    use std::os::unix::fs::PermissionsExt;
    for file in ["htpasswd", "admin.password", "key.pem"] {
        let mode = std::fs::metadata(keys.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let log = server.log();
    assert!(
        log.contains(&keys.join("admin.password").display().to_string()),
        "{log}"
    );
    assert!(log.contains("SHA-256 fingerprint"), "{log}");
    assert!(log.contains("1 user(s) registered"), "{log}");
    assert!(
        log.contains(&format!("https://127.0.0.1:{}", server.port)),
        "{log}"
    );
    assert!(!server.password.is_empty());
    assert!(
        !log.contains(&server.password),
        "the password must not be logged"
    );

    let (status, info) = server.json(&[], "/v1/info");
    assert_eq!(status, 200);
    assert_eq!(info["name"], "jetpack");
    assert_eq!(info["tls"], true);
    let (status, name) = server.json(&[], "/v1/info/name");
    assert_eq!((status, name["name"].as_str()), (200, Some("jetpack")));

    // No credentials, or wrong ones: 401 with a challenge, JSON error body.
    let out = Command::new("curl")
        .args(["-sk", "-i", &server.url("/v1/info")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        text.starts_with("http/2 401") || text.starts_with("http/1.1 401"),
        "{text}"
    );
    assert!(text.contains("www-authenticate: basic"), "{text}");
    let (status, body) = server.curl_as(Some("admin:wrong"), &[], "/v1/info");
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "unauthorized"
    );

    // The log resource has what the server said.
    let (status, lines) = server.json(&[], "/v1/log?lines=50");
    assert_eq!(status, 200);
    assert!(lines
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains("API listening")));
}

#[test]
fn users_made_by_htpasswd_work_and_jetpack_user_changes_are_seen_live() {
    if !peers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("htpasswd");
    let made = Command::new("htpasswd")
        .args([
            "-B",
            "-b",
            "-c",
            file.to_str().unwrap(),
            "alice",
            "wonder land",
        ])
        .status()
        .unwrap();
    assert!(made.success());
    let htpasswd = format!("server.htpasswd={}", file.display());
    let server = TestServer::start(&[&htpasswd], &[]);
    assert!(
        !server.keys_dir().join("admin.password").exists(),
        "users exist: no admin made"
    );
    assert_eq!(
        server.curl_as(Some("alice:wonder land"), &[], "/v1/info").0,
        200
    );
    assert_eq!(server.curl_as(Some("alice:wonder"), &[], "/v1/info").0, 401);

    let added = server
        .jetpack()
        .args(["user", "add", "bob", "--password", "b0b"])
        .output()
        .unwrap();
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    // Our hash is one htpasswd itself accepts.
    let verify = Command::new("htpasswd")
        .args(["-v", "-b", file.to_str().unwrap(), "bob", "b0b"])
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.curl_as(Some("bob:b0b"), &[], "/v1/info").0 != 200 {
        assert!(Instant::now() < deadline, "the server never saw bob");
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed = server
        .jetpack()
        .args(["user", "list", "-o", "json"])
        .output()
        .unwrap();
    let users: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(users, json!(["alice", "bob"]));
    assert!(server
        .jetpack()
        .args(["user", "rm", "alice"])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.curl_as(Some("alice:wonder land"), &[], "/v1/info").0 != 401 {
        assert!(
            Instant::now() < deadline,
            "a removed user still gets in (cache not dropped)"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let missing = server
        .jetpack()
        .args(["user", "rm", "nobody"])
        .output()
        .unwrap();
    assert!(!missing.status.success());
}

fn openssl_cert(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    (cert, key)
}

#[test]
fn an_openssl_certificate_is_served_and_verifiable_and_sighup_reloads_it() {
    if !peers() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = openssl_cert(dir.path(), "one");
    let server = TestServer::start(
        &[],
        &[
            "--certfile",
            cert.to_str().unwrap(),
            "--keyfile",
            key.to_str().unwrap(),
        ],
    );
    // Verified against the certificate itself, no -k.
    let out = Command::new("curl")
        .args(["-sS", "--cacert", cert.to_str().unwrap(), "-u"])
        .arg(format!("admin:{}", server.password))
        .arg(server.url("/v1/info"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (cert2, key2) = openssl_cert(dir.path(), "two");
    std::fs::copy(&cert2, &cert).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    server.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "--cacert",
                cert2.to_str().unwrap(),
                "-u",
            ])
            .arg(format!("admin:{}", server.password))
            .arg(server.url("/v1/info"))
            .output()
            .unwrap();
        if out.status.success() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not load the new certificate"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_certificates_stop_the_start_with_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (garbage, key) = (dir.path().join("bad.pem"), dir.path().join("bad.key"));
    std::fs::write(&garbage, "not a certificate").unwrap();
    std::fs::write(&key, "not a key").unwrap();
    // An expired certificate, made by rcgen with dates in the past.
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let signing = rcgen::KeyPair::generate().unwrap();
    let expired = params.self_signed(&signing).unwrap();
    let (old_cert, old_key) = (dir.path().join("old.pem"), dir.path().join("old.key"));
    std::fs::write(&old_cert, expired.pem()).unwrap();
    std::fs::write(&old_key, signing.serialize_pem()).unwrap();
    let unreadable = dir.path().join("missing.pem");
    for (cert, key, expect) in [
        (&garbage, &key, "bad.pem"),
        (&old_cert, &old_key, "not valid now"),
        (&unreadable, &key, "exists but"),
    ] {
        let conf = dir.path().join("jetpack.conf");
        std::fs::write(&conf, "").unwrap();
        let out = Command::new(common::JETPACK)
            .arg("--config")
            .arg(&conf)
            .args([
                "-o",
                &format!("root.zfs.mountpoint={}", dir.path().join("root").display()),
            ])
            .args(["-o", "datasets.driver=dir", "-o", "server.port=1"])
            .args([
                "serve",
                "--certfile",
                cert.to_str().unwrap(),
                "--keyfile",
                key.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "started with {cert:?}");
        let last = stderr.lines().last().unwrap_or("");
        assert!(
            last.starts_with("jetpack: ") && last.contains(expect),
            "{stderr}"
        );
    }
}

#[test]
fn uplinks_crud_with_a_default_and_bad_input_changes_nothing() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&["uplink.url=https://hangar.example:9090"], &[]);
    let (status, list) = server.json(&[], "/v1/uplinks");
    assert_eq!(status, 200);
    // `default`, and `launch`: the hangar at the pod network's host address.
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(names.contains(&"default") && names.contains(&"launch"));
    let url = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .map(|u| u["url"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(url("default"), "https://hangar.example:9090");
    let launch = url("launch");
    assert!(
        launch.starts_with("https://172.23.0.1:"),
        "the launch uplink is the pod network's host address: {launch}"
    );
    let post = |body: &str| {
        server.json(
            &["-H", "Content-Type: application/json", "-d", body],
            "/v1/uplinks",
        )
    };
    let (status, made) =
        post(r#"{"name":"lab","url":"http://10.0.0.1:9090","tag":"v1","send_stats":5000}"#);
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["verify"], true);
    assert_eq!(made["send_stats"], 5000);
    assert_eq!(made["token"].as_str().unwrap().len(), 48);
    for (body, code) in [
        (r#"{"name":"lab","url":"http://10.0.0.2:9090"}"#, 409),
        (r#"{"name":"x","url":"10.0.0.1:9090"}"#, 400),
        (r#"{"name":"../etc","url":"http://h:1"}"#, 400),
        (r#"{"name":"a/b","url":"http://h:1"}"#, 400),
        (r#"{"name":"x","url":"http://h:1","surprise":1}"#, 400),
        (r#"{"name":"x","url":5}"#, 400),
        (r#"{"name":"x","#, 400),
    ] {
        let (status, err) = post(body);
        assert_eq!(status, code, "{body}: {err}");
        assert!(
            err["code"].is_string() && err["message"].is_string(),
            "{err}"
        );
    }
    let (status, _) = server.json(
        &["-H", "Content-Type: text/plain", "-d", "{}"],
        "/v1/uplinks",
    );
    assert_eq!(status, 415);
    assert_eq!(
        server.json(&[], "/v1/uplinks").1.as_array().unwrap().len(),
        3
    );

    let id = made["id"].as_str().unwrap();
    let (status, got) = server.json(&[], "/v1/uplinks/lab");
    assert_eq!((status, got["id"].as_str()), (200, Some(id)));
    let (status, put) = server.json(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"name":"lab","url":"https://10.0.0.9:9090"}"#,
        ],
        &format!("/v1/uplinks/{id}"),
    );
    assert_eq!(status, 200, "{put}");
    assert_eq!(put["url"], "https://10.0.0.9:9090");
    assert_eq!(put["token"], made["token"], "PUT without a token keeps it");
    let (status, listed) = server.json(&[], "/v1/uplinks?q=10.0.0.9");
    assert_eq!((status, listed.as_array().unwrap().len()), (200, 1));
    assert_eq!(server.curl(&["-X", "DELETE"], "/v1/uplinks/lab").0, 200);
    assert_eq!(server.curl(&[], "/v1/uplinks/lab").0, 404);
}

#[test]
fn nacls_are_checked_natively_on_validate_and_on_save() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let good = "Iface eth0 dhcp\neth0.index: 0\n";
    let bad = "Iface eth0 {\n  index: 0,\n  config: dhcp\n}\nFilter::IP f {\n  if (ip.saddr == 10.0.0.0/24) { accept }\n  drop\n}\neth0.input: [f, g]\n";
    let warned = "Iface a { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }\nIface v { index: 0, vlan: 5000, address: 10.0.1.1, netmask: 255.255.255.0 }\n";
    let vlan_warning = json!({"line": 2, "column": 26, "severity": "warning",
        "message": "Invalid value of vlan (5000). It must be a VLAN tag, an integer from 1 to 4094"});
    let text = |body: &str| {
        vec![
            "-H".to_string(),
            "Content-Type: text/plain".to_string(),
            "--data-binary".to_string(),
            body.to_string(),
        ]
    };
    let json_body = |v: Value| {
        vec![
            "-H".to_string(),
            "Content-Type: application/json".to_string(),
            "-d".to_string(),
            v.to_string(),
        ]
    };
    let call = |args: Vec<String>, path: &str| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        server.json(&args, path)
    };
    assert_eq!(
        call(text(good), "/v1/nacls/validate"),
        (200, json!({"valid": true, "warnings": []}))
    );
    let (status, v) = call(json_body(json!({"content": bad})), "/v1/nacls/validate");
    assert_eq!(status, 422, "{v}");
    assert_eq!(
        v["errors"],
        // The reference checks functions after the rest: the Filter's own
        // error comes once the Iface's chain is right.
        json!([
            {"line": 9, "column": 16, "message": "No function with the name g exists", "severity": "error"},
        ])
    );
    assert_eq!(v["warnings"], json!([]), "{v}");
    // What the reference does not check is a warning: valid, and told;
    // beside errors, a warning stays out of `errors`.
    let (status, v) = call(text(warned), "/v1/nacls/validate");
    assert_eq!(
        (status, v["valid"].clone(), v["warnings"].clone()),
        (200, json!(true), json!([vlan_warning.clone()])),
        "{v}"
    );
    let (status, v) = call(
        text(&format!("{warned}Iface eth1 dhcpp\n")),
        "/v1/nacls/validate",
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(
        v["errors"][0]["message"],
        json!("Invalid Iface value dhcpp"),
        "{v}"
    );
    assert_eq!(v["errors"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["warnings"], json!([vlan_warning.clone()]), "{v}");
    let (status, v) = call(text("Iface eth0 {\n  index: 0\n"), "/v1/nacls/validate");
    assert_eq!(
        (status, v["errors"][0]["line"].clone()),
        (422, json!(3)),
        "{v}"
    );
    let (status, _) = call(json_body(json!({"naclId": "nope"})), "/v1/nacls/validate");
    assert_eq!(status, 404);

    // Saving checks too: an invalid NaCl is refused and nothing is
    // stored, unless forced; a valid one can then replace it, an invalid
    // one cannot.
    let (status, v) = call(
        json_body(json!({"name": "edge", "content": bad})),
        "/v1/nacls",
    );
    assert_eq!(
        (status, v["errors"].as_array().map(Vec::len)),
        (422, Some(1)),
        "{v}"
    );
    assert_eq!(server.json(&[], "/v1/nacls").1, json!([]));
    let (status, made) = call(
        json_body(json!({"name": "edge", "content": bad})),
        "/v1/nacls?force=true",
    );
    assert_eq!(status, 201, "{made}");
    let put = |body: &str, query: &str| {
        let mut args = vec!["-X".to_string(), "PUT".to_string()];
        args.extend(text(body));
        call(args, &format!("/v1/nacls/edge{query}"))
    };
    assert_eq!(put("Iface eth0 dhcpp", "").0, 422);
    assert_eq!(server.json(&[], "/v1/nacls/edge").1["content"], bad);
    assert_eq!(put(good, "").0, 200);
    // A NaCl with warnings only is saved, and they come back with it.
    let (status, saved) = put(warned, "");
    assert_eq!(
        (status, saved["warnings"].clone()),
        (200, json!([vlan_warning.clone()])),
        "{saved}"
    );
    let (status, made) = call(
        json_body(json!({"name": "warned", "content": warned})),
        "/v1/nacls",
    );
    assert_eq!(
        (status, made["warnings"].clone()),
        (201, json!([vlan_warning])),
        "{made}"
    );
    assert_eq!(put(good, "").0, 200);
    assert_eq!(put("Iface eth0 dhcpp", "?force=true").0, 200);
    // A saved NaCl validates by id.
    let (status, v) = call(json_body(json!({"naclId": "edge"})), "/v1/nacls/validate");
    assert_eq!(
        (status, v["errors"][0]["message"].clone()),
        (422, json!("Invalid Iface value dhcpp"))
    );
    // Snippets are pieces of a NaCl: never checked.
    let (status, _) = call(
        json_body(json!({"name": "piece", "content": "if (x"})),
        "/v1/snippets",
    );
    assert_eq!(status, 201);
}

#[test]
fn nacls_and_snippets_store_text_and_answer_raw_on_request() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&["server.maxbody=4096"], &[]);
    let nacl = "Iface eth0 {\n  index: 0,\n  address: 10.0.0.42,\n  netmask: 255.255.255.0\n}\n";
    let body = json!({"name": "web", "content": nacl}).to_string();
    let (status, made) = server.json(
        &["-H", "Content-Type: application/json", "-d", &body],
        "/v1/nacls",
    );
    assert_eq!(status, 201, "{made}");
    let (status, raw) = server.curl(&["-H", "Accept: text/plain"], "/v1/nacls/web");
    assert_eq!((status, raw.as_str()), (200, nacl));
    let (status, doc) = server.json(&[], &format!("/v1/nacls/{}", made["id"].as_str().unwrap()));
    assert_eq!((status, doc["content"].as_str()), (200, Some(nacl)));
    assert_eq!(
        server.curl(&["-H", "Accept: image/png"], "/v1/nacls/web").0,
        406
    );
    // Text bodies with the name in the query, as push-nacl can send them.
    let (status, _) = server.json(
        &[
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            "Iface eth1 { index: 1, config: dhcp }",
        ],
        "/v1/nacls?name=second",
    );
    assert_eq!(status, 201);
    let (status, updated) = server.json(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            "Iface eth2 { index: 2, config: dhcp }",
        ],
        "/v1/nacls/second",
    );
    assert_eq!(
        (status, updated["content"].as_str()),
        (200, Some("Iface eth2 { index: 2, config: dhcp }"))
    );
    assert_eq!(
        server
            .json(&[], "/v1/nacls?q=eth2")
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        server.json(&[], "/v1/nacls?sort=-name&limit=1").1[0]["name"],
        "web"
    );
    assert_eq!(server.curl(&[], "/v1/nacls?sort=evil").0, 400);

    // Oversized, badly named and duplicate: refused, nothing stored.
    let big = json!({"name": "big", "content": "x".repeat(8192)}).to_string();
    let (status, err) = server.json(
        &["-H", "Content-Type: application/json", "-d", &big],
        "/v1/nacls",
    );
    assert_eq!(status, 413, "{err}");
    for name in ["../x", "a/b", ".hidden", ""] {
        let body = json!({"name": name, "content": "x"}).to_string();
        let (status, _) = server.json(
            &["-H", "Content-Type: application/json", "-d", &body],
            "/v1/nacls",
        );
        assert_eq!(status, 400, "{name:?}");
    }
    let (status, _) = server.json(
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            &json!({"name":"web","content":""}).to_string(),
        ],
        "/v1/nacls",
    );
    assert_eq!(status, 409);
    assert_eq!(server.json(&[], "/v1/nacls").1.as_array().unwrap().len(), 2);
    assert_eq!(server.curl(&["-X", "DELETE"], "/v1/nacls/web").0, 200);
    assert_eq!(server.curl(&["-X", "DELETE"], "/v1/nacls/web").0, 404);

    let (status, snip) = server.json(
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"name":"ssh","content":"Filter::IP ssh {}"}"#,
        ],
        "/v1/snippets",
    );
    assert_eq!(status, 201, "{snip}");
    assert_eq!(
        server.json(&[], "/v1/snippets").1.as_array().unwrap().len(),
        1
    );
    let (status, _) = server.json(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"content":"Filter::IP ssh2 {}"}"#,
        ],
        "/v1/snippets/ssh",
    );
    assert_eq!(status, 200);
    assert_eq!(
        server
            .curl(&["-H", "Accept: text/plain"], "/v1/snippets/ssh")
            .1,
        "Filter::IP ssh2 {}"
    );
    assert_eq!(server.curl(&["-X", "DELETE"], "/v1/snippets/ssh").0, 200);
}

fn sha(program: &str, path: &std::path::Path) -> String {
    let out = Command::new(program).arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn blob_files(server: &TestServer) -> Vec<String> {
    let mut found = Vec::new();
    for sub in ["blobs/staging", "blobs/sha256"] {
        let dir = server.data_dir().join(sub);
        for entry in walk(&dir) {
            found.push(entry);
        }
    }
    found
}

/// The blob files once an upload that ended has been cleaned up: a
/// refused or cut-off upload's staging file goes when its writer thread
/// ends, which may be just after the client saw the end. Waits up to 5 s
/// for `expected`, then returns what is there.
fn settled_blob_files(server: &TestServer, expected: &[String]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = blob_files(server);
        if found == expected || Instant::now() >= deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

#[test]
fn images_upload_download_with_range_and_etag_and_refuse_bad_input() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&["server.maxupload=1048576"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("service.elf");
    fake_elf(&elf, 300_000, "one");
    let file_arg = format!("@{}", elf.display());
    let (status, img) = server.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &file_arg,
        ],
        "/v1/images?name=service&tag=v1",
    );
    assert_eq!(status, 201, "{img}");
    assert_eq!(img["id"].as_str().unwrap(), sha("sha1sum", &elf));
    assert_eq!(img["sha256"].as_str().unwrap(), sha("sha256sum", &elf));
    assert_eq!(img["size"], 300_000);
    let id = img["id"].as_str().unwrap().to_string();
    // The same bytes again: the same image, 200.
    let (status, again) = server.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &file_arg,
        ],
        "/v1/images?name=other",
    );
    assert_eq!((status, again["name"].as_str()), (200, Some("service")));

    let out = dir.path().join("down.elf");
    let got = Command::new("curl")
        .args(["-sSfk", "-u", &format!("admin:{}", server.password)])
        .args([
            "-H",
            "Accept: application/octet-stream",
            "-o",
            out.to_str().unwrap(),
        ])
        .arg(server.url(&format!("/v1/images/{id}")))
        .status()
        .unwrap();
    assert!(got.success());
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&elf).unwrap());
    let (status, part) = server.curl(
        &["-H", "Accept: application/octet-stream", "-r", "0-3"],
        &format!("/v1/images/{id}"),
    );
    assert_eq!((status, part.as_bytes()), (206, &b"\x7fELF"[..]));
    let etag = format!("If-None-Match: \"{}\"", img["sha256"].as_str().unwrap());
    assert_eq!(
        server
            .curl(
                &["-H", "Accept: application/octet-stream", "-H", &etag],
                &format!("/v1/images/{id}")
            )
            .0,
        304
    );
    assert_eq!(
        server
            .curl(
                &["-H", "Accept: application/octet-stream", "-r", "400000-"],
                &format!("/v1/images/{id}")
            )
            .0,
        416
    );
    assert_eq!(
        server
            .curl(&["-H", "Accept: text/html"], &format!("/v1/images/{id}"))
            .0,
        406
    );
    let (status, meta) = server.json(&[], &format!("/v1/images/{}", &id[..8]));
    assert_eq!((status, meta["tag"].as_str()), (200, Some("v1")));

    // Multipart, as browsers and `curl -F` send it.
    let elf2 = dir.path().join("two.elf");
    fake_elf(&elf2, 1000, "two");
    let (status, two) = server.json(
        &[
            "-F",
            &format!("file=@{}", elf2.display()),
            "-F",
            "name=svc2",
            "-F",
            "tag=t2",
        ],
        "/v1/images",
    );
    assert_eq!(
        (status, two["name"].as_str(), two["tag"].as_str()),
        (201, Some("svc2"), Some("t2")),
        "{two}"
    );
    assert_eq!(
        server
            .json(&[], "/v1/images?q=svc2")
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let before = blob_files(&server);

    // Not an ELF, too large, no name, wrong type: refused, nothing stored.
    let text = dir.path().join("script.sh");
    std::fs::write(&text, "#!/bin/sh\necho hi\n").unwrap();
    let big = dir.path().join("big.elf");
    fake_elf(&big, 2 << 20, "big");
    for (args, path, code) in [
        (
            vec![
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
            ],
            format!("@{}", text.display()),
            422,
        ),
        (
            vec![
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
            ],
            format!("@{}", big.display()),
            413,
        ),
        (
            vec![
                "-H",
                "Transfer-Encoding: chunked",
                "-H",
                "Content-Type: application/octet-stream",
                "--data-binary",
            ],
            format!("@{}", big.display()),
            413,
        ),
        (
            vec!["-H", "Content-Type: image/png", "--data-binary"],
            format!("@{}", elf2.display()),
            415,
        ),
    ] {
        let mut a = args.clone();
        a.push(&path);
        let (status, body) = server.curl(&a, "/v1/images?name=bad");
        assert_eq!(status, code, "{a:?}: {body}");
    }
    let (status, _) = server.curl(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &file_arg,
        ],
        "/v1/images",
    );
    assert_eq!(status, 400, "no name");
    assert_eq!(
        server.json(&[], "/v1/images").1.as_array().unwrap().len(),
        2
    );
    assert_eq!(
        settled_blob_files(&server, &before),
        before,
        "refused uploads left files behind"
    );

    assert_eq!(
        server
            .curl(&["-X", "DELETE"], &format!("/v1/images/{id}"))
            .0,
        200
    );
    assert_eq!(server.curl(&[], &format!("/v1/images/{id}")).0, 404);
    assert_eq!(
        blob_files(&server).len(),
        before.len() - 1,
        "the blob went with the image"
    );
}

/// Sends the head of an upload and half its body over plain HTTP, so the
/// test controls exactly where it stops.
fn half_upload(server: &TestServer, total: usize) -> std::net::TcpStream {
    use base64::Engine;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{}", server.password));
    write!(
        stream,
        "POST /v1/images?name=cut HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
    )
    .unwrap();
    let mut body = b"\x7fELF".to_vec();
    body.resize(total / 2, 1);
    stream.write_all(&body).unwrap();
    stream.flush().unwrap();
    stream
}

#[test]
fn an_upload_cut_off_or_killed_half_way_leaves_nothing_visible() {
    if !peers() {
        return;
    }
    let mut server = TestServer::start(&[], &["--noservertls"]);
    let staging = server.data_dir().join("blobs/staging");
    // The client goes away half way: once the server has staged what came,
    // the staged file goes with the connection.
    let stream = half_upload(&server, 4 << 20);
    common::until(30, "the upload staged", || {
        (walk(&staging).len() == 1).then_some(())
    });
    drop(stream);
    common::until(30, "the cut upload's staged file removed", || {
        walk(&staging).is_empty().then_some(())
    });
    let left = settled_blob_files(&server, &[]);
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(server.json(&[], "/v1/images").1, json!([]));

    // The server dies half way (SIGKILL: nothing of it runs), then restarts.
    let _stream = half_upload(&server, 4 << 20);
    common::until(30, "the upload staged", || {
        (walk(&staging).len() == 1).then_some(())
    });
    server.kill();
    server.spawn(&["--noservertls"]);
    assert_eq!(server.json(&[], "/v1/images").1, json!([]));
    assert!(blob_files(&server).is_empty(), "{:?}", blob_files(&server));
}

#[test]
fn state_survives_a_restart_and_clean_needs_confirmation() {
    if !peers() {
        return;
    }
    let mut server = TestServer::start(&[], &[]);
    let (status, _) = server.json(
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"name":"keep","content":"Iface eth0 { index: 0 }"}"#,
        ],
        "/v1/nacls",
    );
    assert_eq!(status, 201);
    assert!(server.stop(), "SIGTERM should end the server cleanly");
    server.spawn(&[]);
    assert_eq!(server.json(&[], "/v1/nacls").1[0]["name"], "keep");
    let uplinks = server.json(&[], "/v1/uplinks").1;
    assert_eq!(
        uplinks.as_array().unwrap().len(),
        2,
        "one default and one launch uplink, not one per start"
    );
    server.stop();

    let refused = server
        .jetpack()
        .args(["serve", "--clean"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    server.spawn(&["--clean", "--yes"]);
    assert_eq!(server.json(&[], "/v1/nacls").1, json!([]));
    assert_eq!(
        server.json(&[], "/v1/uplinks").1.as_array().unwrap().len(),
        2,
        "the default and launch uplinks are made again"
    );
}

#[test]
fn every_route_is_in_the_openapi_document() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&["server.auth=none"], &[]);
    let (status, doc) = server.json(&[], "/v1/openapi.json");
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().unwrap();
    let expected: &[(&str, &[&str])] = &[
        ("/v1/info", &["get"]),
        ("/v1/info/name", &["get"]),
        ("/v1/log", &["get"]),
        ("/v1/uplinks", &["get", "post"]),
        ("/v1/uplinks/{id}", &["get", "put", "delete"]),
        ("/v1/nacls", &["get", "post"]),
        ("/v1/nacls/{id}", &["get", "put", "delete"]),
        ("/v1/snippets", &["get", "post"]),
        ("/v1/snippets/{id}", &["get", "put", "delete"]),
        ("/v1/images", &["get", "post"]),
        ("/v1/images/{id}", &["get", "delete"]),
        ("/v1/images/{id}/disk", &["get"]),
        ("/v1/jobs", &["get"]),
        ("/v1/jobs/{id}", &["get", "delete"]),
        ("/v1/jobs/{id}/log", &["get"]),
        ("/v1/bases", &["get", "post"]),
        ("/v1/bases/{id}", &["get", "delete"]),
        ("/v1/bases/{id}/export", &["get"]),
        ("/v1/bases/import", &["post"]),
        ("/v1/pods", &["get", "post"]),
        ("/v1/pods/{id}", &["get", "patch", "delete"]),
        ("/v1/pods/{id}/log", &["get"]),
        ("/v1/volumes", &["get", "post"]),
        ("/v1/volumes/{name}", &["delete"]),
        ("/v1/netboot", &["get"]),
        ("/v1/netboot/{mac}", &["get", "put", "delete"]),
    ];
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} is missing"));
        for m in *methods {
            assert!(item.get(*m).is_some(), "{m} {path} is missing");
        }
    }
    // And every documented operation answers (not the 404 fallback).
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let url_path = path.replace("{id}", "nonexistent");
            // Bounded: the event stream answers and then never ends.
            let (status, body) = server.curl(
                &["-X", &method.to_uppercase(), "--max-time", "5"],
                &url_path,
            );
            assert!(
                !(status == 404 && body.contains("no such resource")),
                "{method} {path} is documented but not routed"
            );
        }
    }
    let (status, html) = server.curl(&[], "/apidocs");
    assert_eq!(status, 200);
    assert!(html.contains("/v1/images/{id}") && html.contains("<html"));
    assert_eq!(server.json(&[], "/v1/nope").0, 404);
}

#[test]
fn sigterm_lets_an_upload_in_flight_finish() {
    if !peers() {
        return;
    }
    let mut server = TestServer::start(&[], &["--noservertls"]);
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("slow.elf");
    fake_elf(&elf, 3 << 20, "slow");
    // About three seconds at this rate; SIGTERM lands in the middle.
    let upload = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--limit-rate",
            "1M",
        ])
        .args(["-u", &format!("admin:{}", server.password)])
        .args([
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
        ])
        .arg(format!("@{}", elf.display()))
        .arg(server.url("/v1/images?name=slow"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // SIGTERM once the body is arriving (its staged blob exists), however
    // long curl takes to start on a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(20);
    while walk(&server.data_dir().join("blobs/staging")).len() != 1 {
        assert!(Instant::now() < deadline, "the upload never got under way");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, body) = common::server::curl_result(upload.wait_with_output().unwrap());
    assert_eq!(status, 201, "{body}");
    assert!(server.stop(), "the server ends cleanly after draining");
    assert!(server.log().contains("draining"));
    server.spawn(&["--noservertls"]);
    let (_, images) = server.json(&[], "/v1/images");
    assert_eq!(images[0]["name"], "slow");
    assert_eq!(images[0]["size"], 3 << 20);
}

/// An HTTP server that sends a large body a few bytes at a time, so that a
/// download from it is in progress for as long as a test needs.
fn trickle_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut head = [0u8; 1024];
            let _ = std::io::Read::read(&mut conn, &mut head);
            let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n");
            for _ in 0..600 {
                if conn.write_all(&[0u8; 64]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    });
    (port, handle)
}

#[test]
fn a_running_import_job_streams_its_log_and_can_be_cancelled() {
    if !peers() {
        return;
    }
    // The source is on loopback, which base imports refuse unless allowed.
    let server = TestServer::start(&["base.import.allow=127.0.0.1"], &[]);
    let (port, _trickle) = trickle_server();
    let url = format!("http://127.0.0.1:{port}/slow.tar");
    let (status, job) = server.json(
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            &json!({"url": url, "name": "slow"}).to_string(),
        ],
        "/v1/bases",
    );
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    // The log answer stays open while the job runs.
    let follower = Command::new("curl")
        .args(["-sSk", "-N", "-u", &format!("admin:{}", server.password)])
        .arg(server.url(&format!("/v1/jobs/{id}/log")))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let (_, running) = server.json(&[], &format!("/v1/jobs/{id}"));
    assert_eq!(running["state"], "running", "{running}");
    let (status, _) = server.curl(&["-X", "DELETE"], &format!("/v1/jobs/{id}"));
    assert_eq!(status, 202);
    let log = follower.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains(&format!("importing {url}")), "{log}");
    assert!(log.contains("cancelled"), "{log}");
    let (_, done) = server.json(&[], &format!("/v1/jobs/{id}"));
    assert_eq!(done["state"], "cancelled", "{done}");
    assert_eq!(server.json(&[], "/v1/bases").1, json!([]));
    assert!(
        walk(&server.data_dir().join("tmp")).is_empty(),
        "the staged download is gone"
    );
}
