//! Build overhead: a build of the Starbase test builder through jetpack
//! (plan, queue, clone the builder into a pod, inputs in, run `build`,
//! collect and store the ELF, destroy the pod) against its `build` command
//! alone (the same script chrooted into an unpacked copy of the builder),
//! interleaved in one run; then ten builds submitted at once under
//! `build.concurrency=2` against five times one build, with no pod left.
//!
//! Needs root, namespaces and zfs-fuse: `sudo cargo bench --bench build`
//! (JETPACK_BENCH_BUILDS, default 40).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jetpack::build::{BuildRequest, Builders, NaclInput};
use jetpack::catalog::Catalog;
use jetpack::config::Config;
use jetpack::jobs::Jobs;
use jetpack::names::JobId;
use jetpack::runtime::{Host, HostEnv};

#[path = "support/command.rs"]
mod command;
#[allow(dead_code)]
#[path = "support/measure.rs"]
mod measure;

use command::run;
use measure::{env_or, percentile, percentile_ms};

const JETPACK: &str = env!("CARGO_BIN_EXE_jetpack");
const POOL: &str = "jptest";
const NACL: &str =
    "Iface eth0 {\n  index: 0,\n  address: 10.0.0.42,\n  netmask: 255.255.255.0\n}\n";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Bench {
    jobs: Arc<Jobs>,
    builders: Arc<Builders>,
    host: Arc<Host>,
}

impl Bench {
    fn wait(&self, id: &JobId) -> serde_json::Value {
        loop {
            let job = self.jobs.get(id.as_str()).expect("job");
            if matches!(job.state.as_str(), "succeeded" | "failed" | "cancelled") {
                assert_eq!(job.state.as_str(), "succeeded", "{:?}", job.error);
                return job.result.unwrap_or_default();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn submit(&self) -> JobId {
        let plan = self
            .builders
            .plan(BuildRequest {
                service: "Starbase".into(),
                builder: "test-builder".into(),
                nacl: NaclInput::Text(NACL.into()),
                uplink: None,
                tag: None,
                name: None,
            })
            .expect("plan");
        let builders = self.builders.clone();
        self.jobs
            .submit_limited(
                jetpack::jobs::JobKind::Build,
                None,
                Some(self.builders.build_slots()),
                move |ctx| {
                    let built = builders.build(&plan, ctx).map_err(|e| e.to_string())?;
                    Ok(serde_json::json!({"build_ms": built.build_time.as_secs_f64() * 1000.0}))
                },
            )
            .expect("submit")
            .id
    }
}

/// The build command alone: the builder unpacked once, `build` chrooted.
fn bare_build(root: &Path) {
    let out = root.join("build/out");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    run("chroot", &[root.to_str().unwrap(), "/jetpack/build"]).expect("bare build");
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!("build: needs root (namespaces, mounts, zfs); skipped");
        return;
    }
    let builds: usize = env_or("JETPACK_BENCH_BUILDS", 40);
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pool_script = manifest_dir.join("scripts/zfs-test-pool.sh");
    if let Err(e) = run(pool_script.to_str().unwrap(), &[POOL]) {
        eprintln!("build: no ZFS, skipped: {e}");
        return;
    }
    let scratch = std::env::temp_dir().join(format!("jetpack-bench-build-{}", std::process::id()));
    let bobs = scratch.join("bobs");
    let script = manifest_dir.join("images/test-builder/make.sh");
    run(script.to_str().unwrap(), &[bobs.to_str().unwrap()]).expect("making the test builder");
    let zfs_root = format!("{POOL}/benchbuild{}", std::process::id());
    let options = vec![
        format!("root.zfs.mountpoint={}", scratch.join("root").display()),
        "datasets.driver=zfs-cli".to_string(),
        format!("root.zfs={zfs_root}"),
        "jail.interface=jpbenchb".to_string(),
        "jail.ip4.range=10.252.1.0/24".to_string(),
        "jail.namePrefix=jpbenchb-".to_string(),
        format!("bob.provider.local=local {}", bobs.display()),
        "build.concurrency=2".to_string(),
    ];
    let config = Config::load(Some(Path::new("/dev/null")), &options).expect("configuration");
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let _guard = runtime.enter();
    let env = HostEnv {
        exe: PathBuf::from(JETPACK),
        config_args: vec![],
    };
    let host = Arc::new(Host::init(config.clone(), env).expect("jetpack init"));
    let catalog = Arc::new(Catalog::open(&config.data_dir).expect("catalog"));
    catalog
        .ensure_uplink(jetpack::catalog::DEFAULT_UPLINK, "https://127.0.0.1:9090")
        .expect("default uplink");
    let jobs = Arc::new(Jobs::open(catalog.clone(), &config.data_dir).expect("jobs"));
    let builders = Arc::new(Builders::new(host.clone(), catalog.clone(), &config));
    builders.update("local").expect("bob update");
    let b = Bench {
        jobs,
        builders,
        host,
    };
    let prepare = {
        let builders = b.builders.clone();
        b.jobs
            .submit(jetpack::jobs::JobKind::Prepare, None, move |ctx| {
                builders
                    .prepare("local", "test-builder", ctx)
                    .map(|_| serde_json::Value::Null)
                    .map_err(Into::into)
            })
            .expect("prepare")
            .id
    };
    b.wait(&prepare);

    let bare_root = scratch.join("bare");
    std::fs::create_dir_all(&bare_root).unwrap();
    run(
        "tar",
        &[
            "-C",
            bare_root.to_str().unwrap(),
            "-xzf",
            bobs.join("test-builder.tar.gz").to_str().unwrap(),
        ],
    )
    .expect("unpacking the builder");
    let inputs = bare_root.join("build/in");
    std::fs::write(inputs.join("nacl.txt"), NACL).unwrap();
    std::fs::write(
        inputs.join("config.json"),
        r#"{"uplink":{"url":"https://127.0.0.1:9090","token":"t"}}"#,
    )
    .unwrap();
    std::fs::write(
        inputs.join("build.json"),
        r#"{"name":"starbase","service":"Starbase","tag":null}"#,
    )
    .unwrap();

    // Warm up both.
    bare_build(&bare_root);
    b.wait(&b.submit());
    let (mut bare, mut built, mut own) = (vec![], vec![], vec![]);
    for _ in 0..builds {
        let t = Instant::now();
        bare_build(&bare_root);
        bare.push(t.elapsed());
        let t = Instant::now();
        let result = b.wait(&b.submit());
        let total = t.elapsed();
        built.push(total);
        let command = Duration::from_secs_f64(result["build_ms"].as_f64().unwrap_or(0.0) / 1000.0);
        own.push(total.saturating_sub(command));
    }
    for v in [&mut bare, &mut built, &mut own] {
        v.sort();
    }
    println!("build of the Starbase test builder on zfs-fuse, {builds} builds, interleaved with the bare command");
    println!("{:<44} {:>8} {:>8}", "", "p50 ms", "p99 ms");
    for (name, v) in [
        ("build command alone (chroot)", &bare),
        ("jetpack build (submit to image stored)", &built),
        ("  of which outside the build command", &own),
    ] {
        println!(
            "{name:<44} {:>8.1} {:>8.1}",
            percentile_ms(v, 0.5),
            percentile_ms(v, 0.99)
        );
    }
    let (built_p50, bare_p50) = (
        percentile(&built, 0.5).expect("timed builds"),
        percentile(&bare, 0.5).expect("timed bare builds"),
    );
    let overhead = built_p50.saturating_sub(bare_p50);
    println!(
        "overhead = p50(jetpack) - p50(bare) = {:.1} ms (target < 150 ms); ratio {:.2}",
        ms(overhead),
        built_p50.as_secs_f64() / bare_p50.as_secs_f64()
    );

    let t = Instant::now();
    let ids: Vec<JobId> = (0..10).map(|_| b.submit()).collect();
    for id in &ids {
        b.wait(id);
    }
    let ten = t.elapsed();
    let five = built_p50 * 5;
    let left = b.host.pods().expect("pods").len();
    println!(
        "10 builds at once, build.concurrency=2: {:.0} ms = {:.2} x five single builds ({:.0} ms); pods left: {left}",
        ms(ten),
        ten.as_secs_f64() / five.as_secs_f64(),
        ms(five)
    );
    assert_eq!(left, 0, "builds left pods behind");

    drop(b);
    drop(catalog);
    let _ = run("zfs", &["destroy", "-r", &zfs_root]);
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = run("ip", &["link", "del", "jpbenchb"]);
}
