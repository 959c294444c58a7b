//! Several jetpack hosts on one PostgreSQL (issue 21): three `jetpack
//! serve` processes, each with its own data root, ports and pod network,
//! started at once on an empty database. They migrate it once, share the
//! fleet's tables, see each other through their heartbeats, and see a
//! host that was killed go down.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::fleet::statuses;
use common::server::TestServer;

#[test]
fn three_hosts_migrate_once_share_the_catalog_and_see_one_die() {
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    let db = cluster.database();
    let mut hosts = common::fleet::hosts(&db, 3, &[]);

    // One host migrated the empty database, under the advisory lock; the
    // others waited and found it done (a race would have failed a start).
    let applied = db
        .psql("SELECT version || ' ' || applied_by FROM jetpack_migrations ORDER BY version")
        .expect("reading jetpack_migrations");
    let rows: Vec<&str> = applied.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(rows.len() >= 2, "{applied}");
    let by: std::collections::HashSet<&str> = rows
        .iter()
        .filter_map(|r| r.split_whitespace().nth(1))
        .collect();
    assert_eq!(by.len(), 1, "one host migrates it all: {applied}");

    // Every host lists all three, up, and knows which one it is.
    for (i, server) in hosts.iter().enumerate() {
        let seen = common::until(10, "three hosts up", || {
            let s = statuses(server);
            (s.len() == 3 && s.iter().all(|(_, status, _)| status == "up")).then_some(s)
        });
        let me: Vec<&str> = seen
            .iter()
            .filter(|(_, _, me)| *me)
            .map(|(n, _, _)| n.as_str())
            .collect();
        assert_eq!(me, [format!("h{i}").as_str()]);
    }

    // One fleet: what is made through one host is there through the others.
    let (status, nacl) = hosts[0].json(
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            r#"{"name":"edge","content":"Iface eth0 {\n index: 0,\n address: 10.0.0.2,\n netmask: 255.255.255.0\n}\n"}"#,
        ],
        "/v1/nacls",
    );
    assert_eq!(status, 201, "{nacl}");
    for server in &hosts[1..] {
        let (status, found) = server.json(&[], "/v1/nacls/edge");
        assert_eq!(status, 200, "{found}");
        assert_eq!(found["id"], nacl["id"]);
    }
    // The default uplink was made once, whoever came first.
    let (_, uplinks) = hosts[2].json(&[], "/v1/uplinks?q=default");
    assert_eq!(uplinks.as_array().map(Vec::len), Some(1), "{uplinks}");

    // Drained through h0, h1 says so itself.
    let (status, drained) = hosts[0].json(&["-X", "POST"], "/v1/hosts/h1/drain");
    assert_eq!(status, 200, "{drained}");
    let (_, h1) = hosts[1].json(&[], "/v1/hosts/h1");
    assert_eq!(h1["status"], "draining", "{h1}");

    // An up host cannot be forgotten: it would be back at its next beat.
    let (status, body) = hosts[0].curl(&["-X", "DELETE"], "/v1/hosts/h1");
    assert_eq!(status, 409, "{body}");

    // h2 dies: the others see it down once it has been silent 3 s.
    hosts[2].kill();
    for server in &hosts[..2] {
        common::until(15, "h2 down", || {
            statuses(server)
                .iter()
                .any(|(n, s, _)| n == "h2" && s == "down")
                .then_some(())
        });
    }
    let (status, gone) = hosts[1].json(&["-X", "DELETE"], "/v1/hosts/h2");
    assert_eq!(status, 200, "{gone}");
    assert_eq!(statuses(&hosts[0]).len(), 2);
    let (status, _) = hosts[0].json(&[], "/v1/hosts/h2");
    assert_eq!(status, 404);

    // Servers go before their database.
    hosts.clear();
    drop(db);
}

#[test]
fn a_lone_host_lists_itself_on_sqlite() {
    if std::env::var("JETPACK_TEST_STORE").as_deref() == Ok("postgres") {
        return;
    }
    let server = TestServer::start(&["host.name=solo"], &[]);
    let (status, hosts) = server.json(&[], "/v1/hosts");
    assert_eq!(status, 200, "{hosts}");
    assert_eq!(hosts[0]["name"], "solo");
    assert_eq!(hosts[0]["status"], "up");
    assert_eq!(hosts[0]["self"], true);
    let out = server
        .jetpack()
        .args(["--tlsInsecureSkipVerify", "--host", "127.0.0.1", "--port"])
        .arg(server.port.to_string())
        .args([
            "--username",
            "admin",
            "--password",
            &server.password,
            "hosts",
        ])
        .output()
        .expect("jetpack hosts");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("solo (this)") && text.contains("up"),
        "{text}"
    );
}

/// Downloads `url` (over the API with the server's user, or the file
/// server) into bytes; the status with them.
fn download(url: &str, userpass: Option<&str>) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got");
    let mut cmd = std::process::Command::new("curl");
    cmd.args([
        "-sS",
        "-k",
        "-o",
        out.to_str().unwrap(),
        "-w",
        "%{http_code}",
    ]);
    cmd.args(["-H", "Accept: application/octet-stream"]);
    if let Some(up) = userpass {
        cmd.args(["-u", up]);
    }
    let o = cmd.arg(url).output().unwrap();
    let status = String::from_utf8_lossy(&o.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (status, std::fs::read(&out).unwrap_or_default())
}

#[test]
fn files_stored_on_one_host_are_served_by_another() {
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    let db = cluster.database();
    let hosts = common::fleet::hosts(&db, 3, &[]);
    let dir = tempfile::tempdir().unwrap();
    // Bytes no other test has (a blob h1 cannot have by chance), with
    // ELF's magic, as the catalog wants of an image.
    let mut bytes: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> (i % 23)) as u8 ^ std::process::id() as u8)
        .collect();
    bytes[..4].copy_from_slice(b"\x7fELF");
    let file = dir.path().join("vmlinuz");
    std::fs::write(&file, &bytes).unwrap();
    let (status, mk) = hosts[0].json(
        &[
            "-F",
            &format!("file=@{}", file.display()),
            "-F",
            "name=vmlinuz-fleet",
        ],
        "/v1/microkernels",
    );
    assert_eq!(status, 201, "{mk}");
    let (status, image) = hosts[0].post_file("/v1/images?name=fleet-blob", &file);
    assert!(status == 200 || status == 201, "{image}");
    let image = image["id"].as_str().unwrap();

    // h1 serves both, through its API and its file server: fetched from
    // h0, checked against the rows' sha256, then its own.
    let userpass = format!("{}:{}", hosts[1].user, hosts[1].password);
    let api = |s: &TestServer, p: &str| download(&s.url(p), Some(&userpass));
    let (status, got) = api(&hosts[1], "/v1/microkernels/vmlinuz-fleet");
    assert_eq!(status, 200);
    assert!(got == bytes, "the microkernel from h1's API differs");
    let (status, got) = from_file_server(&hosts[1], "/microkernels/vmlinuz-fleet");
    assert_eq!(status, 200);
    assert!(
        got == bytes,
        "the microkernel from h1's file server differs"
    );
    let (status, got) = from_file_server(&hosts[1], &format!("/images/{image}"));
    assert_eq!(status, 200);
    assert!(got == bytes, "the image from h1's file server differs");
    // And an image h2 lacks, through its API.
    let userpass2 = format!("{}:{}", hosts[2].user, hosts[2].password);
    let (status, got) = download(
        &hosts[2].url(&format!("/v1/images/{image}")),
        Some(&userpass2),
    );
    assert_eq!(status, 200);
    assert!(got == bytes, "the image from h2's API differs");
    // A name no store has is still a 404 on either.
    let (status, _) = from_file_server(&hosts[1], "/microkernels/none");
    assert_eq!(status, 404);
}

/// A path of `server`'s file server (plain http, no auth).
fn from_file_server(server: &TestServer, path: &str) -> (u16, Vec<u8>) {
    download(
        &format!("http://127.0.0.1:{}{path}", server.files_port),
        None,
    )
}

/// The datasets of OS images in a dir-driver server's root.
fn osimage_datasets(server: &TestServer) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(server.data_dir().join("osimages")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.contains('.'))
        .collect()
}

#[test]
fn an_os_image_made_on_one_host_is_copied_to_another_that_serves_it() {
    if !["xorriso", "bsdtar", "curl"].into_iter().all(common::tool) {
        return;
    }
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    let db = cluster.database();
    let mut hosts = common::fleet::hosts(&db, 2, &[]);
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("boot/grub")).unwrap();
    let kernel: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(tree.join("boot/vmlinuz"), &kernel).unwrap();
    std::fs::write(tree.join("boot/grub/grub.cfg"), "set timeout=1\n").unwrap();
    let iso = dir.path().join("fleet.iso");
    let made = std::process::Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-R", "-o"])
        .arg(&iso)
        .arg(&tree)
        .status()
        .unwrap();
    assert!(made.success());
    let (status, accepted) = hosts[0].post_file("/v1/osimages/upload?name=fleetos&version=1", &iso);
    assert_eq!(status, 202, "{accepted}");
    common::until(120, "the OS image ready on h0", || {
        let (_, v) = hosts[0].json(&[], "/v1/osimages/fleetos/1");
        assert_ne!(v["state"], "failed", "{v}");
        (v["state"] == "ready").then_some(())
    });
    assert!(osimage_datasets(&hosts[1]).is_empty());

    // h1's file server serves it: copied from h0 on the first request.
    let (status, got) = from_file_server(&hosts[1], "/fleetos/1/boot/vmlinuz");
    assert_eq!(status, 200);
    assert!(got == kernel, "the kernel from h1's file server differs");
    let (status, got) = from_file_server(&hosts[1], "/fleetos/1/boot/grub/grub.cfg");
    assert_eq!((status, got.as_slice()), (200, &b"set timeout=1\n"[..]));
    assert_eq!(osimage_datasets(&hosts[1]).len(), 1, "h1 keeps its copy");
    // A host whose datasets stream otherwise is refused before any byte.
    let (status, err) = hosts[1].json(&[], "/v1/osimages/fleetos/1/export?stream=zfs");
    assert_eq!(status, 400, "{err}");

    // Deleted through h0: gone from h1's file server at once, and h1's
    // copy goes at its next start.
    let (status, _) = hosts[0].curl(&["-X", "DELETE"], "/v1/osimages/fleetos/1");
    assert_eq!(status, 200);
    let (status, _) = from_file_server(&hosts[1], "/fleetos/1/boot/vmlinuz");
    assert_eq!(status, 404);
    assert!(hosts[1].stop(), "{}", hosts[1].log());
    hosts[1].spawn(&[]);
    assert!(
        osimage_datasets(&hosts[1]).is_empty(),
        "{:?}",
        osimage_datasets(&hosts[1])
    );
}
