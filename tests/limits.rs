//! Pods' resource limits on real cgroups (v2 or v1, whichever this host
//! has) and a real ZFS quota: a pod past its memory is killed by the
//! kernel and says so, a pod at its pids limit cannot fork, the cpu quota
//! is in the cgroup's files and its use is reported, a pod past its disk
//! gets ENOSPC/EDQUOT; the cgroup goes with the pod; bad limits are one
//! error line and leave no pod; the API takes and shows limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;

use common::server::TestServer;
use common::{until, Driver, TestHost};
use serde_json::{json, Value};

/// The jail name prefix of this test host (`jail.namePrefix=...`).
fn prefix(host: &TestHost) -> String {
    host.options()
        .iter()
        .find_map(|o| o.strip_prefix("jail.namePrefix="))
        .unwrap()
        .to_string()
}

/// Every cgroup directory of a pod's cell, in whichever hierarchies exist.
fn cgroup_dirs(host: &TestHost, pod_id: &str) -> Vec<PathBuf> {
    let cell = format!("{}{pod_id}", prefix(host));
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for candidate in [
            entry.path().join("jetpack").join(&cell),
            PathBuf::from("/sys/fs/cgroup/jetpack").join(&cell),
        ] {
            if candidate.is_dir() && !dirs.contains(&candidate) {
                dirs.push(candidate);
            }
        }
    }
    dirs
}

fn pod_id(host: &TestHost, pod: &str) -> String {
    host.json(&["pod", "show", pod])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn code_and_stderr(out: &std::process::Output) -> (Option<i32>, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_pod_past_its_memory_is_killed_and_says_so() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    // busybox dd reads into one buffer of bs bytes: 64M touched at once.
    let hog = [
        "/bin/sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=64M count=1",
    ];
    let mut args = vec![
        "pod", "create", "busybox", "--name", "hog", "--memory", "32M", "--",
    ];
    args.extend(hog);
    host.ok(&args);
    let out = host.run(&["pod", "run", "hog"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(137), "SIGKILL from the kernel: {stderr}");
    assert!(
        stderr.contains("killed: out of memory (limit 32 MiB)"),
        "{stderr}"
    );
    let show = host.json(&["pod", "show", "hog"]);
    assert_eq!(show["state"], "exited");
    assert_eq!(show["exit_code"], 137);
    assert_eq!(show["exit_reason"], "killed: out of memory (limit 32 MiB)");
    assert_eq!(show["limits"]["memory"], 32 << 20);
    let list = host.ok(&["pod", "list"]);
    assert!(list.contains("exited (137, out of memory)"), "{list}");
    let id = pod_id(&host, "hog");
    assert!(
        cgroup_dirs(&host, &id).is_empty(),
        "cgroup left after the run"
    );

    // Detached: the pod's log says it.
    host.ok(&["pod", "run", "-d", "hog"]);
    until(60, "the detached hog to end", || {
        (host.json(&["pod", "show", "hog"])["state"] == "exited").then_some(())
    });
    let log = std::fs::read_to_string(host.root.join("logs").join(format!("{id}.log"))).unwrap();
    assert!(
        log.contains("jetpack: killed: out of memory (limit 32 MiB)"),
        "{log}"
    );

    // The same program without a limit succeeds.
    let mut args = vec!["pod", "run", "busybox", "--rm", "--"];
    args.extend(hog);
    host.ok(&args);
}

#[test]
fn a_pod_at_its_pids_limit_cannot_fork() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    // The shell counts the sleeps it started; a fork that fails at the
    // limit ends it with "can't fork" before it reports.
    let script = "n=0; for i in $(seq 20); do sleep 30 & n=$((n+1)); done; echo started $n";
    let out = host.run(&[
        "pod", "run", "busybox", "--rm", "--pids", "8", "--", "/bin/sh", "-c", script,
    ]);
    let (code, stderr) = code_and_stderr(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("started 20"),
        "all 20 started under --pids 8: {stdout} {stderr} ({code:?})"
    );
    assert!(
        stderr.contains("can't fork"),
        "no fork failure seen: {stdout} {stderr}"
    );
    let out = host.ok(&[
        "pod", "run", "busybox", "--rm", "--", "/bin/sh", "-c", script,
    ]);
    assert!(out.contains("started 20"), "{out}");
}

#[test]
fn the_cpu_quota_is_written_and_use_is_reported() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    host.ok(&[
        "pod",
        "create",
        "busybox",
        "--name",
        "busy",
        "--cpus",
        "0.5",
        "--memory",
        "64M",
        "--pids",
        "16",
        "--",
        "/bin/sh",
        "-c",
        "while :; do :; done",
    ]);
    host.ok(&["pod", "run", "-d", "busy"]);
    let id = pod_id(&host, "busy");
    let dirs = cgroup_dirs(&host, &id);
    assert!(!dirs.is_empty(), "no cgroup for the running pod");
    let read = |file: &str| {
        dirs.iter()
            .find_map(|d| std::fs::read_to_string(d.join(file)).ok())
            .map(|t| t.trim().to_string())
    };
    match read("cpu.max") {
        Some(max) => assert_eq!(max, "50000 100000"),
        None => {
            assert_eq!(read("cpu.cfs_quota_us").as_deref(), Some("50000"));
            assert_eq!(read("cpu.cfs_period_us").as_deref(), Some("100000"));
        }
    }
    let memory = read("memory.max").or_else(|| read("memory.limit_in_bytes"));
    assert_eq!(memory.as_deref(), Some("67108864"));
    assert_eq!(read("pids.max").as_deref(), Some("16"));
    // Use is reported while it runs (no timing asserted, only that it grows).
    let usage = until(60, "cpu use to be reported", || {
        let show = host.json(&["pod", "show", "busy"]);
        let u = show["usage"].clone();
        (u["cpuSeconds"].as_f64().unwrap_or(0.0) > 0.0).then_some(u)
    });
    assert_eq!(usage["memoryMax"], 64 << 20, "{usage}");
    assert_eq!(usage["pidsMax"], 16, "{usage}");
    assert_eq!(usage["cpusMax"], 0.5, "{usage}");
    assert!(usage["pidsCurrent"].as_u64().unwrap() >= 1, "{usage}");
    assert!(usage["memoryCurrent"].as_u64().unwrap() > 0, "{usage}");
    let table = host.ok(&["pod", "show", "busy"]);
    assert!(table.contains("limits"), "{table}");
    assert!(
        table.contains("memory 64 MiB, cpus 0.5, pids 16"),
        "{table}"
    );
    host.ok(&["pod", "kill", "busy"]);
    assert!(cgroup_dirs(&host, &id).is_empty(), "cgroup left after kill");
    host.ok(&["pod", "rm", "busy"]);
}

#[test]
fn the_disk_limit_is_a_zfs_quota_and_the_dir_driver_refuses_it() {
    if let Some(host) = TestHost::with_busybox(Driver::Dir) {
        let err = host.fails(&["pod", "create", "busybox", "--name", "big", "--disk", "8M"]);
        assert!(
            err.contains("the dir datasets driver cannot limit disk use"),
            "{err}"
        );
        assert_eq!(host.json(&["pod", "list"]), json!([]));
    }
    let Some(host) = TestHost::with_busybox(Driver::ZfsCli) else {
        return;
    };
    host.ok(&[
        "pod",
        "create",
        "busybox",
        "--name",
        "full",
        "--disk",
        "8M",
        "--",
        "/bin/sh",
        "-c",
        "dd if=/dev/zero of=/fill bs=1M count=64 2>&1; sync; echo dd done",
    ]);
    let out = host.run(&["pod", "run", "full"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Disk quota exceeded") || stdout.contains("No space left"),
        "{stdout}"
    );
    let show = host.json(&["pod", "show", "full"]);
    assert_eq!(show["limits"]["disk"], 8 << 20);
    let used = show["usage"]["diskUsed"].as_u64().unwrap();
    assert!(
        used <= 12 << 20,
        "the clone holds {used} bytes past its 8M quota"
    );
    let ds = host.dataset.as_ref().unwrap();
    let out = std::process::Command::new("zfs")
        .args(["get", "-H", "-r", "-p", "-o", "value", "quota", ds])
        .output()
        .unwrap();
    let quotas = String::from_utf8_lossy(&out.stdout);
    assert!(quotas.lines().any(|q| q == "8388608"), "{quotas}");
    host.ok(&["pod", "rm", "full"]);
}

#[test]
fn bad_limits_are_one_error_and_no_pod() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    for (flag, value, says) in [
        ("--memory", "10X", "unknown unit"),
        ("--memory", "1M", "at least 4M"),
        ("--cpus", "0", "at least 0.01"),
        ("--cpus", "many", "not a number"),
        ("--pids", "0", "between 1 and"),
        ("--maxproc", "0", "between 1 and"),
    ] {
        let err = host.fails(&["pod", "create", "busybox", flag, value]);
        assert!(err.contains(says), "{flag} {value}: {err}");
        let err = host.fails(&["pod", "run", "busybox", "--rm", flag, value, "--", "true"]);
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
    assert_eq!(host.json(&["pod", "list"]), json!([]));
}

#[test]
fn the_api_takes_and_shows_limits() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let server = TestServer::on_host(&host, &[]);
    let post = |body: Value| {
        server.json(
            &[
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
            ],
            "/v1/pods",
        )
    };
    let (status, pod) = post(json!({
        "base": "busybox",
        "name": "api",
        "command": ["/bin/sleep", "60"],
        "limits": {"memory": "64M", "cpus": 0.5, "pids": 16},
        "state": "running",
    }));
    assert_eq!(status, 201, "{pod}");
    assert_eq!(
        pod["limits"],
        json!({"memory": 67108864, "cpus": 0.5, "pids": 16})
    );
    // The detached supervisor starts the pod's process after the answer:
    // wait for it to be counted.
    let shown = until(30, "the pod's process in its cgroup", || {
        let (status, shown) = server.json(&[], "/v1/pods/api");
        assert_eq!(status, 200, "{shown}");
        (shown["usage"]["pidsCurrent"].as_u64().unwrap_or(0) >= 1).then_some(shown)
    });
    assert_eq!(shown["limits"]["memory"], 67108864);
    assert_eq!(shown["usage"]["memoryMax"], 67108864, "{shown}");
    assert_eq!(shown["usage"]["pidsMax"], 16, "{shown}");
    let id = shown["id"].as_str().unwrap().to_string();
    assert!(!cgroup_dirs(&host, &id).is_empty());
    let (status, _) = server.curl(&["-X", "DELETE"], "/v1/pods/api?force=true");
    assert_eq!(status, 200);
    assert!(cgroup_dirs(&host, &id).is_empty(), "cgroup left after rm");

    for (limits, says) in [
        (json!({"memory": "10X"}), "unknown unit"),
        (json!({"cpus": 0}), "at least 0.01"),
        (json!({"pids": 0}), "between 1 and"),
        (json!({"disk": "1G"}), "cannot limit disk use"),
        (json!({"swap": "1G"}), "swap"),
    ] {
        let (status, err) = post(json!({"base": "busybox", "limits": limits}));
        assert!(status == 400 || status == 422, "{limits}: {status} {err}");
        assert!(err.to_string().contains(says), "{limits}: {err}");
    }
    let (_, pods) = server.json(&[], "/v1/pods");
    assert_eq!(pods, json!([]));
}

#[test]
fn a_lost_cell_leaves_no_cgroup() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    host.ok(&[
        "pod",
        "run",
        "-d",
        "--name",
        "lost",
        "--memory",
        "16M",
        "busybox",
        "--",
        "/bin/sleep",
        "300",
    ]);
    let id = pod_id(&host, "lost");
    assert!(!cgroup_dirs(&host, &id).is_empty());
    // Kill the cell's holder behind jetpack's back, as a crash would.
    let cell = format!("{}{id}", prefix(&host));
    let holder = common::processes_mentioning(&cell)
        .into_iter()
        .find(|p| p.args.iter().any(|a| a == "__cell-init"))
        .expect("the holder");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder.pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    until(30, "the lost pod's cgroup to go", || {
        let state = host.json(&["pod", "show", "lost"])["state"].clone();
        (state != "running" && cgroup_dirs(&host, &id).is_empty()).then_some(())
    });
    host.ok(&["pod", "rm", "lost"]);
}
