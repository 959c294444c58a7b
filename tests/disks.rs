//! Disks for hypervisors (`GET /v1/images/{id}/disk`, `pull-image
//! --disk`) against a real `jetpack serve`: the test kernel
//! (images/test-builder/kernel.S, ELF32 and ELF64) uploaded as an image,
//! made into raw, qcow2 and iso disks that boot under qemu (TCG) through
//! GRUB to the kernel's serial line; vmdk and vdi recognised by `qemu-img
//! info`; the cache (a second request is the same file, concurrent
//! requests make one disk); bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::home::Home;
use common::server::{fake_elf, TestServer};
use common::tool;
use sha2::Digest;

/// What the test kernel prints first on COM1.
const SERIAL_LINE: &str = "jetpack test kernel: service=Disk";

/// The test kernel, assembled as the test builder does (ELF32, or ELF64
/// like an IncludeOS x86_64 image, which GRUB loads without the
/// chainloader qemu's -kernel needs).
fn test_kernel(elf64: bool) -> PathBuf {
    static KERNELS: OnceLock<common::kernel::Kernels> = OnceLock::new();
    let k = KERNELS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("disk-kernels");
        common::kernel::assemble(&dir, r#"{"uplink":{}}"#, "Disk")
    });
    if elf64 {
        k.elf64.clone()
    } else {
        k.elf32.clone()
    }
}

/// Whether every peer these tests need is here (skips, or fails in CI).
fn peers() -> bool {
    [
        "qemu-system-x86_64",
        "qemu-img",
        "grub-mkrescue",
        "xorriso",
        "as",
        "ld",
    ]
    .into_iter()
    .all(tool)
        && common::facility(
            "GRUB's i386-pc files",
            if Path::new("/usr/lib/grub/i386-pc/boot_hybrid.img").exists() {
                Ok(())
            } else {
                Err("grub-pc-bin is not installed".into())
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

/// A downloaded disk and the headers it came with.
struct Download {
    status: u16,
    headers: String,
    file: PathBuf,
}

impl Download {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

fn download(server: &TestServer, path: &str, into: &Path) -> Download {
    let headers = into.with_extension("headers");
    let userpass = format!("{}:{}", server.user, server.password);
    let out = Command::new("curl")
        .args(["-sS", "-k", "-u", &userpass, "-w", "%{http_code}", "-D"])
        .arg(&headers)
        .arg("-o")
        .arg(into)
        .arg(server.url(path))
        .output()
        .expect("running curl");
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    Download {
        status,
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        file: into.to_path_buf(),
    }
}

fn sha256_of(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Boots `how` (qemu's -drive arguments, or `-cdrom FILE`) to the test
/// kernel's line, within a minute.
fn boots(how: &[&str], dir: &Path, label: &str) {
    common::qemu::boots_to(how, dir, label, SERIAL_LINE, Duration::from_secs(60));
}

fn qemu_img_format(path: &Path) -> String {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    info["format"].as_str().unwrap().to_string()
}

#[test]
fn disks_boot_under_qemu_and_are_cached() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let work = tempfile::tempdir().unwrap();
    let id = push(&server, &test_kernel(false), "kernel32", "v1");

    // raw: the hybrid ISO's bytes, booted as a hard disk.
    let first = Instant::now();
    let raw = download(
        &server,
        &format!("/v1/images/{id}/disk?format=raw"),
        &work.path().join("k.img"),
    );
    let made_in = first.elapsed();
    assert_eq!(
        raw.status,
        200,
        "{}",
        std::fs::read_to_string(&raw.file).unwrap_or_default()
    );
    let size = std::fs::metadata(&raw.file).unwrap().len();
    assert_eq!(raw.header("content-length"), Some(size.to_string()));
    assert_eq!(
        raw.header("etag"),
        Some(format!("\"{}\"", sha256_of(&raw.file)))
    );
    let disposition = raw.header("content-disposition").unwrap();
    assert!(
        disposition.contains("filename=\"kernel32-v1.img\""),
        "{disposition}"
    );
    boots(
        &["-drive", &format!("file={},format=raw", raw.file.display())],
        work.path(),
        "raw",
    );

    // The second request is the cached file: same inode, same mtime, and
    // the server made it once.
    let cached = server
        .data_dir()
        .join("disks")
        .join(&id)
        .join("raw")
        .join("disk");
    let before = std::fs::metadata(&cached).unwrap();
    let second = Instant::now();
    let again = download(
        &server,
        &format!("/v1/images/{}/disk?format=raw", &id[..12]),
        &work.path().join("k2.img"),
    );
    // A figure for the README (with --nocapture): made against cached.
    eprintln!(
        "raw disk of {} bytes: made in {:?} (with the first curl), from the cache in {:?}",
        size,
        made_in,
        second.elapsed()
    );
    assert_eq!(again.status, 200);
    assert_eq!(sha256_of(&again.file), sha256_of(&raw.file));
    let after = std::fs::metadata(&cached).unwrap();
    assert_eq!(
        (before.ino(), before.mtime_nsec()),
        (after.ino(), after.mtime_nsec())
    );
    assert_eq!(before.mode() & 0o777, 0o600, "the cache is private");
    assert_eq!(server.log().matches("made the raw disk").count(), 1);
    // ETag revalidation.
    let etag = raw.header("etag").unwrap();
    let (status, _) = server.curl(
        &["-H", &format!("If-None-Match: {etag}")],
        &format!("/v1/images/{id}/disk?format=raw"),
    );
    assert_eq!(status, 304);

    // qcow2: converted by qemu-img, booted by qemu as qcow2.
    let qcow2 = download(
        &server,
        &format!("/v1/images/{id}/disk?format=qcow2"),
        &work.path().join("k.qcow2"),
    );
    assert_eq!(qcow2.status, 200);
    assert_eq!(qemu_img_format(&qcow2.file), "qcow2");
    boots(
        &[
            "-drive",
            &format!("file={},format=qcow2", qcow2.file.display()),
        ],
        work.path(),
        "qcow2",
    );

    // iso: booted as a CD.
    let iso = download(
        &server,
        &format!("/v1/images/{id}/disk?format=iso"),
        &work.path().join("k.iso"),
    );
    assert_eq!(iso.status, 200);
    assert_eq!(
        iso.header("content-type").as_deref(),
        Some("application/x-iso9660-image")
    );
    boots(&["-cdrom", iso.file.to_str().unwrap()], work.path(), "iso");

    // vmdk and vdi: recognised by qemu-img; two requests at once make the
    // vdi once.
    let vmdk = download(
        &server,
        &format!("/v1/images/{id}/disk?format=vmdk"),
        &work.path().join("k.vmdk"),
    );
    assert_eq!(vmdk.status, 200);
    assert_eq!(qemu_img_format(&vmdk.file), "vmdk");
    let together: Vec<Download> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|n| {
                let (server, work) = (&server, work.path());
                let id = id.clone();
                s.spawn(move || {
                    download(
                        server,
                        &format!("/v1/images/{id}/disk?format=vdi"),
                        &work.join(format!("k{n}.vdi")),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for d in &together {
        assert_eq!(d.status, 200);
        assert_eq!(qemu_img_format(&d.file), "vdi");
        assert_eq!(sha256_of(&d.file), sha256_of(&together[0].file));
    }
    assert_eq!(server.log().matches("made the vdi disk").count(), 1);

    // An ELF64 image (IncludeOS x86_64) boots through GRUB as well.
    let id64 = push(&server, &test_kernel(true), "kernel64", "v1");
    let raw64 = download(
        &server,
        &format!("/v1/images/{id64}/disk?format=raw"),
        &work.path().join("k64.img"),
    );
    assert_eq!(raw64.status, 200);
    boots(
        &[
            "-drive",
            &format!("file={},format=raw", raw64.file.display()),
        ],
        work.path(),
        "raw64",
    );

    // Deleting the image deletes its disks.
    let (status, _) = server.curl(&["-X", "DELETE"], &format!("/v1/images/{id64}"));
    assert_eq!(status, 200);
    assert!(!server.data_dir().join("disks").join(&id64).exists());
    // Nothing is left staging.
    let staging = server.data_dir().join("disks").join(".staging");
    let left: Vec<_> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn bad_requests_are_refused_and_make_nothing() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&[], &[]);
    let work = tempfile::tempdir().unwrap();
    let id = push(&server, &test_kernel(false), "kernel32", "v1");
    let status_of = |path: &str| server.curl(&[], path);

    let (status, body) = status_of(&format!("/v1/images/{id}/disk?format=vhdx"));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("vhdx"), "{body}");
    let (status, _) = status_of(&format!("/v1/images/{id}/disk?format=..%2Fraw"));
    assert_eq!(status, 400);
    let (status, body) = status_of(&format!("/v1/images/{}/disk?format=raw", "0".repeat(40)));
    assert_eq!(status, 404, "{body}");
    for traversal in ["..%2F..%2Fetc", "%2e%2e", "..", "a%00b", "%2Fetc%2Fpasswd"] {
        let (status, body) = status_of(&format!("/v1/images/{traversal}/disk?format=raw"));
        assert!(
            status == 400 || status == 404,
            "{traversal}: {status} {body}"
        );
    }
    // An ELF that is no multiboot image cannot boot from GRUB: 422.
    let fake = work.path().join("fake");
    fake_elf(&fake, 4096, "not multiboot");
    let fake_id = push(&server, &fake, "fake", "v1");
    let (status, body) = status_of(&format!("/v1/images/{fake_id}/disk?format=iso"));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("multiboot"), "{body}");
    // None of it made a disk.
    let disks = server.data_dir().join("disks");
    let made: Vec<_> = std::fs::read_dir(&disks)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".staging")
        .collect();
    assert!(made.is_empty(), "{made:?}");
    assert_eq!(server.log().matches(" disk of image ").count(), 0);
}

#[test]
fn pull_image_disk_writes_the_disk_with_its_name() {
    if !peers() {
        return;
    }
    let server = TestServer::start(&[], &[]);
    // The CLI's home is its working folder too: a disk pulled without -f lands there.
    let home = Home::new();
    let id = push(&server, &test_kernel(false), "kernel32", "v2");
    let cli = |args: &[&str]| home.run(&server, args);
    // -f FILE.
    let target = home.path().join("mine.qcow2");
    let out = cli(&[
        "pull-image",
        &id[..10],
        "--disk",
        "qcow2",
        "-f",
        target.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(qemu_img_format(&target), "qcow2");
    // No file: the server's name, in the current folder.
    let out = cli(&["pull-image", &id, "--disk", "vdi"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(qemu_img_format(&home.path().join("kernel32-v2.vdi")), "vdi");
    // A bad format is refused before any request, in one line.
    let out = cli(&["pull-image", &id, "--disk", "vhdx"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown disk format \"vhdx\""), "{err}");
    assert_eq!(server.log().matches(" disk of image ").count(), 2);
    // The plain pull still takes a positional FILE.
    let elf = home.path().join("k.elf");
    let out = cli(&["pull-image", &id, elf.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&elf).unwrap(),
        std::fs::read(test_kernel(false)).unwrap()
    );
}
