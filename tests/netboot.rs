//! Netboot (issue 19, item 4) against a real `jetpack serve`: a qemu VM
//! (TCG, user-mode networking, loopback only) boots with iPXE (Debian's
//! ipxe-qemu ROMs) from a TFTP folder whose `boot.ipxe` chains to the file
//! server's `/boot/ipxe?mac=${net0/mac}` (then `?tag=`, then that URL as
//! the DHCP boot file itself, as dnsmasq hands it), and runs the test
//! kernel (images/test-builder/kernel.S) uploaded as an image, whose line
//! appears on the serial port. And the API: mappings set, listed, shown,
//! deleted (curl and the CLI), bad MACs and command lines refused, misses
//! answered with a script that explains, `?tag=` the newest image, auth.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::home::Home;
use common::server::{fake_elf, TestServer};
use common::tool;

/// What the test kernel prints first on COM1.
const SERIAL_LINE: &str = "jetpack test kernel: service=Netboot";

/// The test kernel as ELF32 (iPXE loads multiboot ELF32 kernels).
fn test_kernel() -> PathBuf {
    static KERNELS: OnceLock<common::kernel::Kernels> = OnceLock::new();
    KERNELS
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("netboot-kernels");
            common::kernel::assemble(&dir, r#"{"uplink":{}}"#, "Netboot")
        })
        .elf32
        .clone()
}

/// qemu, the assembler and iPXE's ROM for virtio-net.
fn qemu_peers() -> bool {
    ["qemu-system-x86_64", "as", "ld", "curl"]
        .into_iter()
        .all(tool)
        && common::facility(
            "iPXE's ROMs for qemu",
            if Path::new("/usr/lib/ipxe/qemu/efi-virtio.rom").exists()
                || Path::new("/usr/share/qemu/efi-virtio.rom").exists()
            {
                Ok(())
            } else {
                Err("ipxe-qemu is not installed".into())
            },
        )
}

fn push(server: &TestServer, file: &Path, name: &str, tag: &str) -> String {
    let (status, image) = server.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
        &format!("/v1/images?name={name}&tag={tag}"),
    );
    assert!(status == 201 || status == 200, "{status} {image}");
    image["id"].as_str().unwrap().to_string()
}

/// A request to the file server: (status, content type, body).
fn files_get(server: &TestServer, args: &[&str], path: &str) -> (u16, String, String) {
    let scheme = if server.options.iter().any(|o| o == "files.tls=on") {
        "https"
    } else {
        "http"
    };
    let out = Command::new("curl")
        .args([
            "-sS",
            "-k",
            "-o",
            "-",
            "-w",
            "\n%{http_code} %{content_type}",
        ])
        .args(args)
        .arg(format!("{scheme}://127.0.0.1:{}{path}", server.files_port))
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, tail) = text.rsplit_once('\n').unwrap();
    let (status, ctype) = tail.split_once(' ').unwrap();
    (status.parse().unwrap(), ctype.to_string(), body.to_string())
}

/// What qemu's DHCP hands iPXE as its boot file.
enum BootFile<'a> {
    /// `boot.ipxe` from qemu's TFTP folder, holding this script.
    Script(&'a str),
    /// A URL iPXE fetches itself (settings such as `${net0/mac}` in it
    /// expanded by iPXE), as dnsmasq's `dhcp-boot=tag:ipxe,URL` gives it.
    Url(&'a str),
}

/// Boots a VM from `boot` until the test kernel's line is on the serial
/// port (it then exits qemu through isa-debug-exit), or fails after two
/// minutes.
fn netboots(dir: &Path, label: &str, boot: BootFile) {
    let tftp = dir.join(format!("{label}-tftp"));
    std::fs::create_dir_all(&tftp).unwrap();
    let bootfile = match boot {
        BootFile::Script(script) => {
            std::fs::write(tftp.join("boot.ipxe"), script).unwrap();
            "boot.ipxe"
        }
        BootFile::Url(url) => url,
    };
    let netdev = format!("user,id=n0,tftp={},bootfile={bootfile}", tftp.display());
    let how = [
        "-netdev",
        &netdev,
        "-device",
        "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
        "-boot",
        "n",
    ];
    let took = common::qemu::boots_to(&how, dir, label, SERIAL_LINE, Duration::from_secs(120));
    eprintln!(
        "{label}: the kernel's line after {:.1} s",
        took.as_secs_f64()
    );
}

#[test]
fn a_vm_netboots_the_test_kernel_by_mac_by_tag_and_by_url() {
    if !qemu_peers() {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let id = push(&server, &test_kernel(), "netboot", "nb");
    let (status, mapping) = server.json(
        &[
            "-X",
            "PUT",
            "--json",
            r#"{"tag":"nb","append":"console=ttyS0"}"#,
        ],
        "/v1/netboot/52-54-00-12-34-56",
    );
    assert_eq!(status, 201, "{mapping}");
    // What iPXE will be given, as it will ask (10.0.2.2 is the host).
    let (status, _, script) = files_get(
        &server,
        &["-H", &format!("Host: 10.0.2.2:{}", server.files_port)],
        "/boot/ipxe?mac=52:54:00:12:34:56",
    );
    assert_eq!(status, 200, "{script}");
    assert_eq!(
        script,
        format!(
            "#!ipxe\nkernel http://10.0.2.2:{}/images/{id} console=ttyS0\nboot\n",
            server.files_port
        )
    );
    let chain = |query: &str| {
        format!(
            "#!ipxe\nchain http://10.0.2.2:{}/boot/ipxe?{query}\n",
            server.files_port
        )
    };
    netboots(
        dir.path(),
        "by-mac",
        BootFile::Script(&chain("mac=${net0/mac}")),
    );
    netboots(dir.path(), "by-tag", BootFile::Script(&chain("tag=nb")));
    let url = format!(
        "http://10.0.2.2:{}/boot/ipxe?mac=${{net0/mac}}",
        server.files_port
    );
    netboots(dir.path(), "by-url", BootFile::Url(&url));
}

#[test]
fn mappings_are_kept_checked_and_served_as_scripts() {
    if !tool("curl") {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let elf = |salt: &str| {
        let p = dir.path().join(format!("{salt}.elf"));
        fake_elf(&p, 4096, salt);
        p
    };
    let old = push(&server, &elf("old"), "svc", "web");
    let new = push(&server, &elf("new"), "svc", "web");
    let other = push(&server, &elf("other"), "svc", "db");
    let files_port = server.files_port;
    let host = format!("Host: 127.0.0.1:{files_port}");
    let script = |path: &str| files_get(&server, &["-H", &host], path);
    let boots =
        |id: &str| format!("#!ipxe\nkernel http://127.0.0.1:{files_port}/images/{id}\nboot\n");

    // ?tag= picks the newest, resolved to its id; ?image= takes a prefix.
    let (status, ctype, body) = script("/boot/ipxe?tag=web");
    assert_eq!((status, body.as_str()), (200, boots(&new).as_str()));
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let (status, _, body) = script(&format!("/boot/ipxe?image={}", &old[..10]));
    assert_eq!((status, body), (200, boots(&old)));

    // Set (by image prefix, upper case and '-' in the MAC), show, list.
    let (status, m) = server.json(
        &[
            "-X",
            "PUT",
            "--json",
            &format!(
                r#"{{"imageId":"{}","append":"a=1 b=${{net0/ip}}"}}"#,
                &other[..8]
            ),
        ],
        "/v1/netboot/AA-BB-CC-DD-EE-01",
    );
    assert_eq!(status, 201, "{m}");
    assert_eq!(m["mac"], "aa:bb:cc:dd:ee:01");
    assert_eq!(m["imageId"], other.as_str());
    assert!(m.get("tag").is_none(), "{m}");
    let (status, m) = server.json(&[], "/v1/netboot/aa:bb:cc:dd:ee:01");
    assert_eq!(
        (status, m["append"].as_str()),
        (200, Some("a=1 b=${net0/ip}"))
    );
    let (status, _, body) = script("/boot/ipxe?mac=AA:BB:CC:DD:EE:01");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!(
            "#!ipxe\nkernel http://127.0.0.1:{files_port}/images/{other} a=1 b=${{net0/ip}}\nboot\n"
        )
    );
    // Replaced: 200, now a tag, resolved at boot time.
    let (status, m) = server.json(
        &["-X", "PUT", "--json", r#"{"tag":"web"}"#],
        "/v1/netboot/aa:bb:cc:dd:ee:01",
    );
    assert_eq!((status, m["tag"].as_str()), (200, Some("web")), "{m}");
    assert_eq!(script("/boot/ipxe?mac=aa-bb-cc-dd-ee-01").2, boots(&new));
    let newest = push(&server, &elf("newest"), "svc", "web");
    assert_eq!(script("/boot/ipxe?mac=aa-bb-cc-dd-ee-01").2, boots(&newest));
    let (status, list) = server.json(&[], "/v1/netboot");
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");

    // Bad input: 400 with nothing stored.
    for (mac, body) in [
        ("aa:bb:cc:dd:ee", r#"{"tag":"web"}"#),
        ("zz:bb:cc:dd:ee:ff", r#"{"tag":"web"}"#),
        (
            "aa:bb:cc:dd:ee:02",
            r#"{"tag":"web","append":"x\nkernel http://evil/k"}"#,
        ),
        ("aa:bb:cc:dd:ee:02", r#"{"tag":"web","append":"caf\u00e9"}"#),
        ("aa:bb:cc:dd:ee:02", r#"{"tag":"web","imageId":"abcd"}"#),
        ("aa:bb:cc:dd:ee:02", r#"{}"#),
        ("aa:bb:cc:dd:ee:02", r#"{"tag":"../x"}"#),
        ("aa:bb:cc:dd:ee:02", r#"{"tag":"web","extra":1}"#),
    ] {
        let (status, e) = server.json(
            &["-X", "PUT", "--json", body],
            &format!("/v1/netboot/{mac}"),
        );
        assert_eq!(status, 400, "{mac} {body}: {e}");
    }
    let long = format!(r#"{{"tag":"web","append":"{}"}}"#, "x".repeat(1025));
    let (status, _) = server.json(
        &["-X", "PUT", "--json", &long],
        "/v1/netboot/aa:bb:cc:dd:ee:02",
    );
    assert_eq!(status, 400);
    let (status, _) = server.json(
        &["-X", "PUT", "--json", r#"{"imageId":"ffffffff"}"#],
        "/v1/netboot/aa:bb:cc:dd:ee:02",
    );
    assert_eq!(status, 404);
    assert_eq!(server.json(&[], "/v1/netboot/aa:bb:cc:dd:ee:02").0, 404);
    assert_eq!(server.json(&[], "/v1/netboot/not-a-mac").0, 400);

    // Misses: a script that says why and exits, 404 (400 when malformed).
    for (path, want, says) in [
        (
            "/boot/ipxe?mac=52:54:00:00:00:09",
            404,
            "no netboot mapping for 52:54:00:00:00:09",
        ),
        ("/boot/ipxe?tag=none", 404, "no image is tagged"),
        ("/boot/ipxe?image=ffffffffff", 404, "no image"),
        ("/boot/ipxe?mac=bogus", 400, "is not a MAC address"),
        ("/boot/ipxe", 400, "exactly one of"),
        (
            "/boot/ipxe?tag=a&mac=52:54:00:00:00:09",
            400,
            "exactly one of",
        ),
    ] {
        let (status, ctype, body) = script(path);
        assert_eq!(status, want, "{path}: {body}");
        assert!(ctype.starts_with("text/plain"), "{path}: {ctype}");
        assert!(body.starts_with("#!ipxe\necho jetpack: "), "{path}: {body}");
        assert!(body.ends_with("\nexit 1\n"), "{path}: {body}");
        assert!(body.contains(says), "{path}: {body}");
        assert_eq!(body.lines().count(), 3, "{path}: {body}");
    }
    // A mapping to an image that was deleted fails clearly.
    let (status, _) = server.json(
        &["-X", "PUT", "--json", &format!(r#"{{"imageId":"{old}"}}"#)],
        "/v1/netboot/aa:bb:cc:dd:ee:03",
    );
    assert_eq!(status, 201);
    assert_eq!(
        server
            .curl(&["-X", "DELETE"], &format!("/v1/images/{old}"))
            .0,
        200
    );
    let (status, _, body) = script("/boot/ipxe?mac=aa:bb:cc:dd:ee:03");
    assert_eq!(status, 404);
    assert!(
        body.contains(&format!("mapped to image {old}, which was deleted")),
        "{body}"
    );

    // The Host header is used only when it is a plain host[:port]; else
    // the connection's local address.
    let (_, _, body) = files_get(&server, &["-H", "Host: evil/x\"y"], "/boot/ipxe?tag=db");
    assert_eq!(body, boots(&other));
    let (_, _, body) = files_get(
        &server,
        &["-H", "Host: boot.example.org"],
        "/boot/ipxe?tag=db",
    );
    assert_eq!(
        body,
        format!("#!ipxe\nkernel http://boot.example.org/images/{other}\nboot\n")
    );
    // HEAD: the headers only.
    let (status, _, body) = files_get(&server, &["-I"], "/boot/ipxe?tag=db");
    assert_eq!(status, 200);
    assert!(
        body.to_ascii_lowercase()
            .contains("content-type: text/plain"),
        "{body}"
    );

    // Auth like every /v1 route.
    for (method, path) in [
        ("GET", "/v1/netboot"),
        ("GET", "/v1/netboot/aa:bb:cc:dd:ee:01"),
        ("PUT", "/v1/netboot/aa:bb:cc:dd:ee:01"),
        ("DELETE", "/v1/netboot/aa:bb:cc:dd:ee:01"),
    ] {
        let (status, _) = server.curl_as(None, &["-X", method, "--json", r#"{"tag":"x"}"#], path);
        assert_eq!(status, 401, "{method} {path}");
    }

    // Delete: 200 with the mapping, then 404 everywhere.
    let (status, m) = server.json(&["-X", "DELETE"], "/v1/netboot/AA:BB:CC:DD:EE:01");
    assert_eq!(
        (status, m["mac"].as_str()),
        (200, Some("aa:bb:cc:dd:ee:01"))
    );
    assert_eq!(
        server
            .curl(&["-X", "DELETE"], "/v1/netboot/aa:bb:cc:dd:ee:01")
            .0,
        404
    );
    assert_eq!(script("/boot/ipxe?mac=aa:bb:cc:dd:ee:01").0, 404);
}

/// The CLI: `netboot set`, `list`, `show`, `rm`, with `-o json`.
#[test]
fn the_cli_sets_lists_and_removes_mappings() {
    if !tool("curl") {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("a.elf");
    fake_elf(&elf, 4096, "cli");
    let id = push(&server, &elf, "svc", "web");
    let home = Home::new();
    let cli = |args: &[&str]| home.texts(&server, args);
    let (code, out, err) = cli(&[
        "netboot",
        "set",
        "52-54-00-AA-BB-CC",
        "--image",
        &id[..8],
        "--append",
        "-v console=ttyS0",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{out} {err}");
    let m: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(m["mac"], "52:54:00:aa:bb:cc");
    assert_eq!(m["imageId"], id.as_str());
    assert_eq!(m["append"], "-v console=ttyS0");
    let (code, out, err) = cli(&["netboot", "set", "52:54:00:aa:bb:cd", "--tag", "web"]);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(out.trim(), "52:54:00:aa:bb:cd");
    let (code, out, _) = cli(&["netboot", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("52:54:00:aa:bb:cc") && out.contains("tag web"),
        "{out}"
    );
    let (code, out, _) = cli(&["netboot", "list", "-o", "json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (code, out, _) = cli(&["netboot", "show", "52:54:00:AA:BB:CD"]);
    assert_eq!(code, 0);
    assert!(out.contains("web"), "{out}");
    let (code, out, _) = cli(&["netboot", "rm", "52:54:00:aa:bb:cd", "-o", "id"]);
    assert_eq!((code, out.trim()), (0, "52:54:00:aa:bb:cd"));
    let (code, _, err) = cli(&["netboot", "rm", "52:54:00:aa:bb:cd"]);
    assert_ne!(code, 0);
    assert!(err.contains("no netboot mapping"), "{err}");
    let (code, _, err) = cli(&["netboot", "set", "nope", "--tag", "web"]);
    assert_ne!(code, 0);
    assert!(err.contains("not a MAC address"), "{err}");
}

/// With `files.tls` on, the scripts' kernel URLs say https.
#[test]
fn scripts_say_https_when_the_file_server_has_tls() {
    if !tool("curl") {
        return;
    }
    let server = TestServer::start(&["files.tls=on"], &[]);
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("a.elf");
    fake_elf(&elf, 4096, "tls");
    let id = push(&server, &elf, "svc", "sec");
    let (status, _, body) = files_get(&server, &[], "/boot/ipxe?tag=sec");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        format!(
            "#!ipxe\nkernel https://127.0.0.1:{}/images/{id}\nboot\n",
            server.files_port
        )
    );
}

/// Mappings survive a restart; `serve --clean` erases them with the images.
#[test]
fn mappings_survive_a_restart_and_go_with_clean() {
    if !tool("curl") {
        return;
    }
    let mut server = TestServer::start(&[], &[]);
    let (status, _) = server.json(
        &["-X", "PUT", "--json", r#"{"tag":"web","append":"x=1"}"#],
        "/v1/netboot/52:54:00:00:00:01",
    );
    assert_eq!(status, 201);
    assert!(server.stop(), "SIGTERM should end the server cleanly");
    server.spawn(&[]);
    let (status, m) = server.json(&[], "/v1/netboot/52:54:00:00:00:01");
    assert_eq!((status, m["append"].as_str()), (200, Some("x=1")), "{m}");
    server.stop();
    server.spawn(&["--clean", "--yes"]);
    assert_eq!(server.json(&[], "/v1/netboot").1, serde_json::json!([]));
}
