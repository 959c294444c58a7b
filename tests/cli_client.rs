//! The jetpack CLI as a client of a real `jetpack serve` (TLS and Basic
//! auth on loopback): login and its file, every resource command in every
//! output format, errors as one line and exit code 1, and `base`/`pod`
//! sent to the server by `--host`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::home::Home;
use common::server::{fake_elf, TestServer};
use serde_json::Value;

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args).output().expect("running jetpack")
}

/// Runs, asserts success, returns stdout.
fn ok(cmd: Command, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "jetpack {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Runs, asserts exit code 1 with nothing on stdout and one line
/// `jetpack: ...` on stderr; returns that line.
fn fails(cmd: Command, args: &[&str]) -> String {
    let (line, stderr) = fails_after(cmd, args);
    assert_eq!(
        stderr.lines().count(),
        1,
        "jetpack {args:?}: one error line expected: {stderr:?}"
    );
    line
}

/// `fails` for commands that show a job's log on stderr first: the error
/// is still one line, the last.
fn fails_after(cmd: Command, args: &[&str]) -> (String, String) {
    let out = run(cmd, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "jetpack {args:?}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "jetpack {args:?} printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("jetpack: "))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "jetpack {args:?}: one error line expected: {stderr:?}"
    );
    assert_eq!(stderr.lines().last(), Some(errors[0]), "{stderr:?}");
    (errors[0].to_string(), stderr)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn sha1_hex(path: &Path) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(std::fs::read(path).expect("reading")))
}

#[test]
fn login_stores_a_private_file_that_later_commands_use() {
    let server = TestServer::start(&[], &[]);
    let home = Home::new();
    ok(home.cli(&server), &["login"]);

    let file = home.login_file();
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(file.parent().unwrap()), 0o700);
    let stored = json(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(stored["host"], "127.0.0.1");
    assert_eq!(stored["port"], server.port);
    assert_eq!(stored["username"], "admin");
    assert_eq!(stored["password"], server.password.as_str());
    assert_eq!(stored["insecure"], true);
    assert_eq!(stored["notls"], false);
    // Only the file itself: the staging file was renamed, not left.
    assert_eq!(
        std::fs::read_dir(file.parent().unwrap()).unwrap().count(),
        1
    );

    // Later commands need no flags at all.
    let info = json(&ok(home.bare(), &["info", "-o", "json"]));
    assert_eq!(info["name"], "jetpack");
    assert_eq!(info["auth"], true);
    let ids = ok(home.bare(), &["uplinks", "-o", "id"]);
    assert_eq!(
        ids.lines().count(),
        2,
        "the default and launch uplinks: {ids:?}"
    );

    // A flag overrides the stored value.
    let line = fails(home.bare(), &["--password", "wrong", "info"]);
    assert!(line.contains("(401)"), "{line}");

    // Without XDG_CONFIG_HOME the file is under $HOME/.config.
    let mut cmd = home.cli(&server);
    cmd.env_remove("XDG_CONFIG_HOME");
    ok(cmd, &["login"]);
    let fallback = home.path().join(".config/jetpack/login.json");
    assert_eq!(mode(&fallback), 0o600);
    let mut cmd = home.bare();
    cmd.env_remove("XDG_CONFIG_HOME");
    assert_eq!(json(&ok(cmd, &["info", "-o", "json"]))["name"], "jetpack");
}

#[test]
fn a_wrong_password_is_refused_in_one_line_and_nothing_is_stored() {
    let server = TestServer::start(&[], &[]);
    let home = Home::new();
    let port = server.port.to_string();
    let line = fails(
        home.bare(),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--username",
            "admin",
            "--password",
            "not-the-password",
            "--tlsInsecureSkipVerify",
            "login",
        ],
    );
    assert!(line.contains("login to https://127.0.0.1:"), "{line}");
    assert!(line.contains("bad user or password (401)"), "{line}");
    assert!(!home.login_file().exists());
    assert!(
        !home.xdg().join("jetpack").exists()
            || std::fs::read_dir(home.xdg().join("jetpack"))
                .unwrap()
                .count()
                == 0
    );

    // Without any credentials, commands say how to give them.
    let line = fails(
        home.bare(),
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port,
            "--tlsInsecureSkipVerify",
            "images",
        ],
    );
    assert!(line.contains("jetpack login"), "{line}");
    assert!(line.ends_with("(401)"), "{line}");
}

#[test]
fn info_in_every_format() {
    let server = TestServer::start(&[], &[]);
    let home = Home::new();
    let table = ok(home.cli(&server), &["info"]);
    let name_line = table
        .lines()
        .find(|l| l.trim_start().starts_with("name:"))
        .expect(&table);
    assert!(name_line.ends_with(": jetpack"), "{table}");
    assert!(
        table.contains(&format!("https://127.0.0.1:{}", server.port)),
        "{table}"
    );
    let doc = ok(home.cli(&server), &["info", "-o", "json"]);
    let info = json(&doc);
    assert_eq!(info["apiVersion"], "1.0");
    assert_eq!(info["tls"], true);
    // The server's document, in its own key order, pretty printed.
    assert!(
        doc.starts_with("{\n  \"name\": \"jetpack\",\n  \"version\": "),
        "{doc}"
    );
    assert_eq!(ok(home.cli(&server), &["-o", "id", "info"]), "jetpack\n");
}

#[test]
fn uplinks_are_pushed_updated_inspected_and_deleted() {
    let server = TestServer::start(&[], &[]);
    let home = Home::new();
    let file = home.path().join("edge.json");
    std::fs::write(
        &file,
        r#"{"name": "edge", "url": "https://10.0.0.1:9090", "token": "Vq8sK2mZ7rT4wX9pL3nB"}"#,
    )
    .unwrap();
    let id = ok(home.cli(&server), &["push-uplink", file.to_str().unwrap()]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 36, "a uuid: {id:?}");

    let all = json(&ok(home.cli(&server), &["uplinks", "-o", "json"]));
    let edge: Vec<&Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["name"] == "edge")
        .collect();
    assert_eq!(edge.len(), 1);
    assert_eq!(edge[0]["id"], id.as_str());
    assert_eq!(edge[0]["token"], "Vq8sK2mZ7rT4wX9pL3nB");

    // Pushing the same name again replaces it (409 then PUT): same id, new
    // url. The file is what inspect-uplink -o json wrote, ids and times in.
    let saved = ok(home.cli(&server), &["inspect-uplink", "edge", "-o", "json"]);
    std::fs::write(&file, saved.replace("10.0.0.1", "10.0.0.2")).unwrap();
    let again = ok(home.cli(&server), &["push-uplink", file.to_str().unwrap()]);
    assert_eq!(again.trim(), id);
    let shown = json(&ok(
        home.cli(&server),
        &["inspect-uplink", &id, "-o", "json"],
    ));
    assert_eq!(shown["url"], "https://10.0.0.2:9090");
    assert_eq!(shown["token"], "Vq8sK2mZ7rT4wX9pL3nB");
    let all = json(&ok(home.cli(&server), &["uplinks", "-o", "json"]));
    assert_eq!(
        all.as_array().unwrap().len(),
        3,
        "the default, launch and edge: {all}"
    );

    // -o id: exactly the ids of -o json, one per line.
    let ids = ok(home.cli(&server), &["uplinks", "-o", "id"]);
    let expected: Vec<String> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.lines().map(str::to_string).collect::<Vec<_>>(),
        expected
    );

    let table = ok(home.cli(&server), &["uplinks"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("NAME") && header.contains("URL"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("edge") && l.contains("https://10.0.0.2:9090")),
        "{table}"
    );

    let out = run(home.cli(&server), &["delete-uplink", "edge"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("deleted uplink edge"));
    let line = fails(home.cli(&server), &["inspect-uplink", "edge"]);
    assert_eq!(line, "jetpack: no uplink \"edge\" (404)");

    let bad = home.path().join("bad.json");
    std::fs::write(&bad, r#"{"url": "https://x:1"}"#).unwrap();
    let line = fails(home.cli(&server), &["push-uplink", bad.to_str().unwrap()]);
    assert!(line.contains("needs a \"name\""), "{line}");
}

#[test]
fn nacls_are_created_then_updated_and_pulled_byte_for_byte() {
    let server = TestServer::start(&[], &[]);
    let home = Home::new();
    let file = home.path().join("net.nacl");
    std::fs::write(&file, "Iface eth0 {\n  index: 0,\n  config: dhcp\n}\n").unwrap();
    let first = ok(
        home.cli(&server),
        &["push-nacl", file.to_str().unwrap(), "--name", "net"],
    );
    // No final newline, tabs and non-ASCII: the bytes must come back as they
    // went. (Non-ASCII makes it invalid, as the reference cannot read it:
    // stored because forced.)
    let content = "Iface eth0 {\n\tindex: 1, # café\r\n  address: 10.0.0.42, netmask: 255.0.0.0\n}";
    std::fs::write(&file, content).unwrap();
    let out = run(
        home.cli(&server),
        &[
            "push-nacl",
            file.to_str().unwrap(),
            "--name",
            "net",
            "--force",
        ],
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("updated NaCl net"));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        first,
        "an update keeps the id"
    );

    let all = json(&ok(home.cli(&server), &["nacls", "-o", "json"]));
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["content"], content);

    let pulled = run(home.cli(&server), &["pull-nacl", "net"]);
    assert!(pulled.status.success());
    assert_eq!(pulled.stdout, content.as_bytes());
    let target = home.path().join("pulled.nacl");
    ok(
        home.cli(&server),
        &["pull-nacl", first.trim(), "-f", target.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&target).unwrap(), content.as_bytes());

    assert_eq!(ok(home.cli(&server), &["nacls", "-o", "id"]), first);
    ok(home.cli(&server), &["delete-nacl", "net"]);
    assert_eq!(ok(home.cli(&server), &["nacls", "-o", "json"]).trim(), "[]");
    let line = fails(home.cli(&server), &["pull-nacl", "net"]);
    assert!(line.ends_with("(404)"), "{line}");

    // Without a builder, jetpack's own checker judges: nothing invalid is
    // stored unless forced.
    std::fs::write(&file, "Iface eth0 {\n  index: 0,\n  adress: 10.0.0.1\n}\n").unwrap();
    let out = run(
        home.cli(&server),
        &["push-nacl", file.to_str().unwrap(), "--name", "net"],
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("net.nacl: line 3:2 Invalid Iface member adress"),
        "{said}"
    );
    assert_eq!(ok(home.cli(&server), &["nacls", "-o", "json"]).trim(), "[]");
    ok(
        home.cli(&server),
        &[
            "push-nacl",
            file.to_str().unwrap(),
            "--name",
            "net",
            "--force",
        ],
    );
    let all = json(&ok(home.cli(&server), &["nacls", "-o", "json"]));
    assert_eq!(all.as_array().unwrap().len(), 1);
}

#[test]
fn images_are_pushed_listed_pulled_and_deleted() {
    let server = TestServer::start(&[], &[]);
    let home = Home::new();
    let file = home.path().join("service.elf");
    fake_elf(&file, 3 << 20, "cli-client");
    let sha1 = sha1_hex(&file);

    let pushed = ok(
        home.cli(&server),
        &[
            "push-image",
            file.to_str().unwrap(),
            "--name",
            "service",
            "--tag",
            "v1",
        ],
    );
    assert_eq!(pushed.trim(), sha1);

    let list = json(&ok(home.cli(&server), &["images", "-o", "json"]));
    let images = list.as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["id"], sha1.as_str());
    assert_eq!(images[0]["name"], "service");
    assert_eq!(images[0]["tag"], "v1");
    assert_eq!(images[0]["size"], 3 << 20);
    assert_eq!(
        ok(home.cli(&server), &["images", "-o", "id"]),
        format!("{sha1}\n")
    );
    let table = ok(home.cli(&server), &["images"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(
        table.lines().nth(1).unwrap().starts_with(&sha1[..12]),
        "{table}"
    );

    // Pushing the same bytes again is not an error; the id is the same.
    assert_eq!(
        ok(
            home.cli(&server),
            &["push-image", file.to_str().unwrap(), "--name", "service"]
        )
        .trim(),
        sha1
    );

    let target = home.path().join("pulled.elf");
    ok(
        home.cli(&server),
        &["pull-image", &sha1[..10], target.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(&file).unwrap()
    );
    let inspected = json(&ok(
        home.cli(&server),
        &["inspect-image", &sha1, "-o", "json"],
    ));
    assert_eq!(inspected["sha1"], sha1.as_str());

    ok(home.cli(&server), &["delete-image", &sha1]);
    let line = fails(home.cli(&server), &["inspect-image", &sha1]);
    assert_eq!(line, format!("jetpack: no image \"{sha1}\" (404)"));
    // A failed download leaves nothing behind, not even a staging file.
    let missing = home.path().join("missing.elf");
    fails(
        home.cli(&server),
        &["pull-image", &sha1, missing.to_str().unwrap()],
    );
    assert!(!missing.exists());
    let leftovers: Vec<String> = std::fs::read_dir(home.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".part-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let line = fails(
        home.cli(&server),
        &["push-image", "no-such-file.elf", "--name", "x"],
    );
    assert!(line.contains("no-such-file.elf"), "{line}");
}

#[test]
fn an_upload_over_the_server_limit_is_refused_before_it_is_sent() {
    let server = TestServer::start(&["server.maxupload=100000"], &[]);
    let home = Home::new();
    let file = home.path().join("big.elf");
    fake_elf(&file, 20 << 20, "too-big");
    let line = fails(
        home.cli(&server),
        &["push-image", file.to_str().unwrap(), "--name", "big"],
    );
    // The server's own answer (not a broken pipe): it refused from the headers.
    assert_eq!(
        line,
        "jetpack: the body is larger than the limit of 100000 bytes (413)"
    );
    assert_eq!(
        ok(home.cli(&server), &["images", "-o", "json"]).trim(),
        "[]"
    );
}

#[test]
fn jobs_bases_and_pods_of_an_empty_server() {
    let server = TestServer::start(&[], &[]);
    let home = Home::new();
    let jobs = ok(home.cli(&server), &["jobs"]);
    assert_eq!(jobs.lines().count(), 1, "only the header: {jobs:?}");
    assert!(jobs.starts_with("ID") && jobs.contains("STATE"), "{jobs:?}");
    assert_eq!(ok(home.cli(&server), &["jobs", "-o", "json"]).trim(), "[]");
    assert_eq!(ok(home.cli(&server), &["jobs", "-o", "id"]), "");

    // --host sends base and pod to the server: its (empty) lists, not this
    // machine's (which has no jetpack.conf or data at all here).
    assert_eq!(
        ok(home.cli(&server), &["base", "list", "-o", "json"]).trim(),
        "[]"
    );
    assert_eq!(
        ok(home.cli(&server), &["pod", "list", "-o", "json"]).trim(),
        "[]"
    );
    let line = fails(home.cli(&server), &["pod", "show", "nope"]);
    assert!(line.ends_with("(404)"), "{line}");
    let line = fails(home.cli(&server), &["pod", "run", "busybox"]);
    assert!(line.contains("on the server's host"), "{line}");
    let line = fails(home.cli(&server), &["pod", "exec", "web", "--", "ls"]);
    assert!(line.contains("on the server's host"), "{line}");
    let line = fails(home.cli(&server), &["pod", "run", "-d", "nothing"]);
    assert_eq!(line, "jetpack: no pod or base \"nothing\"");

    // An import that fails is a failed job: `base import` says so, and
    // `job --follow` replays its log and exits 1.
    let (line, stderr) = fails_after(
        home.cli(&server),
        &["base", "import", "http://127.0.0.1:1/root.tar.gz"],
    );
    assert!(
        line.contains("importing http://127.0.0.1:1/root.tar.gz failed"),
        "{line}"
    );
    assert!(
        stderr.starts_with("importing http://127.0.0.1:1/root.tar.gz\n"),
        "the job's log first: {stderr}"
    );
    let jobs = json(&ok(home.cli(&server), &["jobs", "-o", "json"]));
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(jobs[0]["state"], "failed");
    let id = jobs[0]["id"].as_str().unwrap();
    let out = run(home.cli(&server), &["job", id, "--follow"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("importing http://127.0.0.1:1/root.tar.gz")
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("failed"));
    let shown = json(&ok(home.cli(&server), &["job", &id[..8], "-o", "json"]));
    assert_eq!(shown["id"], id);
}

#[test]
fn tls_mismatches_and_unreachable_servers_fail_in_one_line() {
    let server = TestServer::start(&[], &[]);
    let home = Home::new();
    let port = server.port.to_string();
    let creds = [
        "--username",
        "admin",
        "--password",
        server.password.as_str(),
    ];

    let line = fails(
        home.bare(),
        &[
            &["--host", "127.0.0.1", "--port", &port, "--notls", "info"][..],
            &creds,
        ]
        .concat(),
    );
    assert!(
        line.starts_with(&format!("jetpack: cannot reach http://127.0.0.1:{port}: ")),
        "{line}"
    );
    assert!(line.contains("TLS"), "{line}");

    // The self-signed certificate is refused unless trusted or skipped.
    let line = fails(
        home.bare(),
        &[
            &["--host", "127.0.0.1", "--port", &port, "info"][..],
            &creds,
        ]
        .concat(),
    );
    assert!(line.contains("--cacert"), "{line}");
    let cert = server.keys_dir().join("cert.pem");
    let info = ok(
        home.bare(),
        &[
            &[
                "--host",
                "localhost",
                "--port",
                &port,
                "--cacert",
                cert.to_str().unwrap(),
                "-o",
                "json",
                "info",
            ][..],
            &creds,
        ]
        .concat(),
    );
    assert_eq!(json(&info)["name"], "jetpack");

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let line = fails(
        home.bare(),
        &["--host", "127.0.0.1", "--port", &closed.to_string(), "info"],
    );
    assert!(
        line.starts_with(&format!(
            "jetpack: cannot reach https://127.0.0.1:{closed}: "
        )),
        "{line}"
    );
}

#[test]
fn bases_and_pods_on_a_real_host_through_the_api() {
    let Some(host) = common::TestHost::new(common::Driver::Dir) else {
        return;
    };
    let server = TestServer::on_host(&host, &[]);
    let home = Home::new();
    let tarball = common::busybox_tarball();

    let id = ok(
        home.cli(&server),
        &[
            "base",
            "import",
            tarball.to_str().unwrap(),
            "--name",
            "busybox",
        ],
    );
    assert_eq!(id.trim().len(), 64, "a sha256: {id:?}");
    let bases = json(&ok(home.cli(&server), &["base", "list", "-o", "json"]));
    assert_eq!(bases[0]["name"], "busybox");
    assert_eq!(bases[0]["id"], id.trim());

    let jobs = json(&ok(home.cli(&server), &["jobs", "-o", "json"]));
    let job = jobs[0]["id"].as_str().unwrap();
    let out = run(home.cli(&server), &["job", job, "--follow"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("importing the uploaded archive"));

    let pod = ok(
        home.cli(&server),
        &[
            "pod",
            "create",
            "busybox",
            "--name",
            "web",
            "--",
            "sh",
            "-c",
            "exec sleep 60",
        ],
    );
    let pod = pod.trim();
    let shown = json(&ok(
        home.cli(&server),
        &["pod", "show", "web", "-o", "json"],
    ));
    assert_eq!(shown["id"], pod);
    assert_eq!(shown["state"], "created");
    ok(home.cli(&server), &["pod", "run", "-d", "web"]);
    assert_eq!(
        json(&ok(
            home.cli(&server),
            &["pod", "show", "web", "-o", "json"]
        ))["state"],
        "running"
    );
    let line = fails(home.cli(&server), &["pod", "rm", "web"]);
    assert!(line.ends_with("(409)"), "{line}");
    ok(home.cli(&server), &["pod", "kill", "web"]);
    let state = json(&ok(
        home.cli(&server),
        &["pod", "show", "web", "-o", "json"],
    ))["state"]
        .clone();
    assert!(state == "exited" || state == "dead", "{state}");
    ok(home.cli(&server), &["pod", "rm", "web"]);

    // run -d of a base creates and starts a pod; rm -f removes it running.
    let second = ok(
        home.cli(&server),
        &[
            "pod", "run", "-d", "busybox", "--name", "bg", "--", "sleep", "60",
        ],
    );
    assert_eq!(
        json(&ok(
            home.cli(&server),
            &["pod", "show", second.trim(), "-o", "json"]
        ))["state"],
        "running"
    );
    ok(home.cli(&server), &["pod", "rm", "-f", "bg"]);
    assert_eq!(
        ok(home.cli(&server), &["pod", "list", "-o", "json"]).trim(),
        "[]"
    );
    ok(home.cli(&server), &["base", "rm", "busybox"]);
    assert_eq!(ok(home.cli(&server), &["base", "list", "-o", "id"]), "");
}
