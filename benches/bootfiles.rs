//! ISO to ready: an ISO made by xorriso (JETPACK_BENCH_ISO_MIB of noise,
//! 1024, in JETPACK_BENCH_ISO_FILES files, 10,000, a hundred to a folder)
//! made an OS image by the real `jetpack serve` (release binary, TLS and
//! auth on, the dir datasets driver) from a path on the server: the time
//! from the POST to `ready` (the job, a new dataset, bsdtar, the seal),
//! against `bsdtar -x -f ISO -C DIR` of the same ISO in the same run,
//! interleaved, JETPACK_BENCH_RUNS times (3) after a warm-up of each (the
//! ISO is in the page cache for both). Then the same ISO uploaded
//! (`POST /v1/osimages/upload`) to ready, once.
//!
//! `cargo bench --bench bootfiles` measures; without `--bench` (`cargo test
//! --benches`) it runs tiny (16 MiB, 200 files, one run) as a check that it
//! works. Figures are printed, never enforced.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "support/http.rs"]
mod http;
#[path = "support/iso.rs"]
mod iso;
#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "support/serve.rs"]
mod serve;

use iso::noise;
use measure::{cpu_model, env_or};
use serve::{Bench, Server};

const MIB: u64 = 1024 * 1024;

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bench_iso(dir: &Path, mib: u64, files: usize) -> std::path::PathBuf {
    let tree = dir.join("tree");
    let each = (mib * MIB / files as u64) as usize;
    for i in 0..files {
        let folder = tree.join(format!("d{:03}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&folder).unwrap();
        }
        std::fs::write(folder.join(format!("f{i:05}.bin")), noise(each, i as u64)).unwrap();
    }
    let iso = dir.join("bench.iso");
    iso::make_iso(&tree, &iso);
    std::fs::remove_dir_all(&tree).unwrap();
    iso
}

fn curl(server: &Server, args: &[&str], path: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-sSfk", "-u", &server.userpass])
        .args(args)
        .arg(server.url(path))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls until the OS image is ready; its time from `start`.
fn until_ready(server: &Server, name: &str, start: Instant) -> Duration {
    loop {
        let v = curl(server, &[], &format!("/v1/osimages/{name}/1"));
        match v["state"].as_str().unwrap() {
            "ready" => return start.elapsed(),
            "failed" => panic!("{name} failed: {v}"),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn jetpack_path(server: &Server, iso: &Path, name: &str) -> Duration {
    let body = serde_json::json!({"name": name, "version": "1",
        "source": {"path": iso.display().to_string()}});
    let start = Instant::now();
    curl(
        server,
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
        ],
        "/v1/osimages",
    );
    let took = until_ready(server, name, start);
    curl(server, &["-X", "DELETE"], &format!("/v1/osimages/{name}/1"));
    took
}

fn bsdtar(iso: &Path, scratch: &Path) -> Duration {
    let target = scratch.join("bsdtar-out");
    std::fs::create_dir_all(&target).unwrap();
    let start = Instant::now();
    run(
        "bsdtar",
        &[
            "-x",
            "--no-same-owner",
            "-f",
            iso.to_str().unwrap(),
            "-C",
            target.to_str().unwrap(),
        ],
    );
    let took = start.elapsed();
    std::fs::remove_dir_all(&target).unwrap();
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (mib, files, runs) = if bench {
        (
            env_or("JETPACK_BENCH_ISO_MIB", 1024u64),
            env_or("JETPACK_BENCH_ISO_FILES", 10_000usize),
            env_or("JETPACK_BENCH_RUNS", 3usize),
        )
    } else {
        (16, 200, 1)
    };
    for tool in ["xorriso", "bsdtar", "curl"] {
        if Command::new(tool).arg("--version").output().is_err() {
            eprintln!("SKIPPED: bootfiles bench: {tool} is not installed");
            return;
        }
    }
    let scratch = tempfile::Builder::new()
        .prefix("jetpack-bench-bootfiles-")
        .tempdir()
        .unwrap();
    let made = Instant::now();
    let iso = bench_iso(scratch.path(), mib, files);
    let size = std::fs::metadata(&iso).unwrap().len();
    println!(
        "bootfiles: ISO of {} MiB, {files} files, made by xorriso in {:.1} s; {}",
        size / MIB,
        made.elapsed().as_secs_f64(),
        cpu_model()
    );
    let server = Server::jetpack(
        &Bench {
            name: "bootfiles",
            tag: "jpbf",
        },
        "jetpack",
        &[],
    );
    // Warm-ups: the ISO into the page cache, the server's first job.
    bsdtar(&iso, scratch.path());
    jetpack_path(&server, &iso, "warm");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..runs {
        theirs.push(bsdtar(&iso, scratch.path()));
        ours.push(jetpack_path(&server, &iso, &format!("run{i}")));
    }
    let (ours, theirs) = (median(ours), median(theirs));
    let rate = |d: Duration| size as f64 / MIB as f64 / d.as_secs_f64();
    println!(
        "  path to ready (job, dataset, bsdtar, seal): median {:.2} s ({:.0} MiB/s) over {runs} run(s)",
        ours.as_secs_f64(),
        rate(ours)
    );
    println!(
        "  bsdtar -x alone:                             median {:.2} s ({:.0} MiB/s)",
        theirs.as_secs_f64(),
        rate(theirs)
    );
    println!(
        "  jetpack / bsdtar: {:.2}x the time",
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
    let start = Instant::now();
    curl(
        &server,
        &[
            "-H",
            "Content-Type: application/octet-stream",
            // -T streams the file (--data-binary would read it into memory).
            "-X",
            "POST",
            "-T",
            iso.to_str().unwrap(),
        ],
        "/v1/osimages/upload?name=uploaded&version=1",
    );
    let uploaded = until_ready(&server, "uploaded", start);
    println!(
        "  upload to ready (curl over TLS, then the same): {:.2} s ({:.0} MiB/s)",
        uploaded.as_secs_f64(),
        rate(uploaded)
    );
}
