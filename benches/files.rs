//! The southbound file server's throughput against nginx (Debian's, the
//! baseline the issue names): one file (1 GiB) served from the same folder
//! on the same machine by both, fetched by the same client (curl
//! processes writing to /dev/null), first by one client, then by 100 at
//! once. Reports MB/s, the ratio to nginx (target: at least 0.8), and the
//! jetpack server's RSS before and after (target: flat).
//!
//! jetpack's side is this binary re-run as `__files-server DIR PORT`: the
//! real `files::app` on the real listener (`api::serve`, its gate and
//! clocks), over a one-tree `Trees`, in its own process so that its CPU
//! and memory are its own. nginx runs with its own config in the same
//! temporary folder (sendfile on, access log off, one worker per core).
//!
//! `cargo bench --bench files` measures; under `cargo test` it runs tiny
//! (8 MiB, 4 clients) as a check that it works, and skips nginx with a
//! printed reason when it is not installed (fails in CI). Knobs:
//! JETPACK_BENCH_FILES_MIB (file size), JETPACK_BENCH_FILES_CLIENTS,
//! JETPACK_BENCH_FILES_ROUNDS.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;

use measure::{cpu_model, cpu_seconds, env_or, free_port, memory_mib, met};

const FILES_SERVER: &str = "__files-server";
const MIB: u64 = 1024 * 1024;

/// One OS image tree, `bench/1`, at DIR.
struct OneTree(PathBuf);

impl jetpack::files::Trees for OneTree {
    fn os_image(&self, name: &str, version: &str) -> Option<PathBuf> {
        (name == "bench" && version == "1").then(|| self.0.clone())
    }
    fn os_images(&self) -> Vec<(String, String)> {
        vec![("bench".into(), "1".into())]
    }
    /// `/isos/big.bin`: the same file as a store's blob (sent from a
    /// mapping, where a tree's files are read).
    fn stored(
        &self,
        kind: jetpack::files::StoreKind,
        name: &str,
    ) -> Option<jetpack::files::StoredFile> {
        let path = self.0.join(name);
        let meta = std::fs::metadata(&path).ok()?;
        (kind == jetpack::files::StoreKind::Iso && name == "big.bin").then(|| {
            jetpack::files::StoredFile {
                name: name.to_string(),
                path,
                size: meta.len(),
                // The ETag only: the bench checks sizes, not digests.
                sha256: "0".repeat(64),
                modified: meta.modified().unwrap(),
            }
        })
    }
    fn stored_list(&self, _: jetpack::files::StoreKind) -> Vec<jetpack::files::StoredFile> {
        Vec::new()
    }
    fn image(&self, _: &str) -> Option<jetpack::files::StoredFile> {
        None
    }
    fn image_by_tag(&self, _: &str) -> Option<jetpack::files::StoredFile> {
        None
    }
}

/// The jetpack side: serves DIR as `bench/1` on 127.0.0.1:PORT until killed.
fn files_server(args: &[String]) {
    let dir = PathBuf::from(&args[0]);
    let port: u16 = args[1].parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        jetpack::api::serve::serve(
            jetpack::files::app(Arc::new(OneTree(dir)), Vec::new()),
            listener,
            None,
            jetpack::config::ConnLimits::default(),
            jetpack::net::ConnGate::new("files", 1024, 1024, false),
            tokio_util::sync::CancellationToken::new(),
            Duration::from_secs(1),
        )
        .await
    });
}

struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    path: &'static str,
}

impl Server {
    fn wait_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}", self.name);
            }
            assert!(Instant::now() < deadline, "{} did not start", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}{}", self.port, self.path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_jetpack(dir: &Path) -> Server {
    let port = free_port();
    let child = Command::new(std::env::current_exe().unwrap())
        .arg(FILES_SERVER)
        .arg(dir)
        .arg(port.to_string())
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the files server");
    let mut s = Server {
        name: "jetpack",
        child,
        port,
        path: "/bench/1/big.bin",
    };
    s.wait_up();
    s
}

fn have_nginx() -> Result<(), String> {
    match Command::new("nginx").arg("-v").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
        Err(e) => Err(format!("nginx: {e} (Debian package nginx)")),
    }
}

fn start_nginx(work: &Path, root: &Path) -> Server {
    let port = free_port();
    let conf = work.join("nginx.conf");
    let t = work.display();
    std::fs::write(
        &conf,
        format!(
            "worker_processes auto;\ndaemon off;\npid {t}/nginx.pid;\nerror_log {t}/nginx-error.log;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_timeout 60;\n\
             client_body_temp_path {t}/cb; proxy_temp_path {t}/px; fastcgi_temp_path {t}/fc;\n\
             uwsgi_temp_path {t}/uw; scgi_temp_path {t}/sc;\n\
             server {{ listen 127.0.0.1:{port}; root {}; }}\n}}\n",
            root.display()
        ),
    )
    .unwrap();
    let child = Command::new("nginx")
        .arg("-c")
        .arg(&conf)
        .arg("-p")
        .arg(work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting nginx");
    let mut s = Server {
        name: "nginx",
        child,
        port,
        path: "/big.bin",
    };
    s.wait_up();
    s
}

/// `clients` curl processes fetching the file at once; total MB/s over
/// the wall time, each download's size checked.
fn fetch(url: &str, clients: usize, size: u64) -> f64 {
    let started = Instant::now();
    let children: Vec<Child> = (0..clients)
        .map(|_| {
            Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code} %{size_download}",
                ])
                .arg(url)
                .stdout(Stdio::piped())
                .spawn()
                .expect("curl")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text, format!("200 {size}"), "{url}");
    }
    let secs = started.elapsed().as_secs_f64();
    (size * clients as u64) as f64 / secs / 1e6
}

/// A file of `mib` MiB of pseudo-random bytes (not compressible, not
/// zero pages), written in 1 MiB blocks.
fn make_file(path: &Path, mib: u64) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; MIB as usize];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..mib {
        for chunk in block.chunks_mut(8) {
            // xorshift64*
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&(x.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ i).to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
    f.flush().unwrap();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(FILES_SERVER) {
        files_server(&args[1..]);
        return;
    }
    let bench = args.iter().any(|a| a == "--bench");
    let mib: u64 = env_or("JETPACK_BENCH_FILES_MIB", if bench { 1024 } else { 8 });
    let clients: usize = env_or("JETPACK_BENCH_FILES_CLIENTS", if bench { 100 } else { 4 });
    let rounds: usize = env_or("JETPACK_BENCH_FILES_ROUNDS", if bench { 3 } else { 1 });
    if !bench {
        println!("files bench: quick check (run `cargo bench --bench files` to measure)");
    }
    let work = tempfile::Builder::new()
        .prefix("jetpack-bench-files-")
        .tempdir()
        .unwrap();
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    // nginx's workers run as nobody: the tree must be readable to them.
    use std::os::unix::fs::PermissionsExt;
    for p in [work.path(), root.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let file = root.join("big.bin");
    make_file(&file, mib);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let size = mib * MIB;

    let jetpack = start_jetpack(&root);
    let pid = jetpack.child.id();
    let rss_before = memory_mib(pid, "RssAnon");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let nginx = match have_nginx() {
        Ok(()) => Some(start_nginx(work.path(), &root)),
        Err(why) if ci => panic!("nginx is required in CI: {why}"),
        Err(why) => {
            println!("SKIPPED nginx: {why}");
            None
        }
    };
    let stored = format!("http://127.0.0.1:{}/isos/big.bin", jetpack.port);
    // Warm the page cache, so that both read from memory.
    fetch(&jetpack.url(), 1, size);
    // (an OS image tree's file, the same file as a store's blob, nginx)
    let mut one = (Vec::new(), Vec::new(), Vec::new());
    let mut many = (Vec::new(), Vec::new(), Vec::new());
    let cpu_before = cpu_seconds(pid);
    // Interleaved rounds, so that drift on a shared machine hits both.
    for _ in 0..rounds {
        one.0.push(fetch(&jetpack.url(), 1, size));
        one.1.push(fetch(&stored, 1, size));
        if let Some(n) = &nginx {
            one.2.push(fetch(&n.url(), 1, size));
        }
    }
    let rss_one = memory_mib(pid, "RssAnon");
    // The peak of the server's private memory while 100 clients fetch
    // (its VmRSS would count the mapped file's page-cache pages once per
    // mapping: shared, not the server's own).
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut peak = 0f64;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(memory_mib(pid, "RssAnon"));
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        })
    };
    // One round: 100 clients of 1 GiB each are 100 GiB per server.
    for _ in 0..rounds.div_ceil(3) {
        many.0.push(fetch(&jetpack.url(), clients, size));
        many.1.push(fetch(&stored, clients, size));
        if let Some(n) = &nginx {
            many.2.push(fetch(&n.url(), clients, size));
        }
    }
    let cpu = cpu_seconds(pid) - cpu_before;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    let rss_after = memory_mib(pid, "RssAnon");

    println!();
    println!(
        "files bench: {mib} MiB file, {} core(s) ({}), rounds {rounds}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model()
    );
    println!();
    println!("| clients | served from | jetpack MB/s | nginx MB/s | ratio | target >= 0.8 |");
    println!("|---|---|---|---|---|---|");
    for (label, (tree, store, n)) in [("1", one), (&clients.to_string()[..], many)] {
        for (from, j) in [
            ("an OS image tree (read)", tree),
            ("a store (mapped)", store),
        ] {
            let j = median(j);
            if n.is_empty() {
                println!("| {label} | {from} | {j:.0} | skipped | - | - |");
            } else {
                let n = median(n.clone());
                let ratio = j / n;
                println!(
                    "| {label} | {from} | {j:.0} | {n:.0} | {ratio:.2} | {} |",
                    met(ratio >= 0.8)
                );
            }
        }
    }
    println!();
    println!(
        "jetpack server private memory (RssAnon): {rss_before:.1} MiB before, {rss_one:.1} MiB after one client, \
         {rss_after:.1} MiB after {clients} clients (peak {peak:.1} MiB while they fetched); its CPU {cpu:.1} s over the measured runs"
    );
}
