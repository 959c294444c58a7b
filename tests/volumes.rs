//! A pod's environment and volumes on real namespaces: the CLI as users
//! run it. Variables reach the pod's processes; volumes are bind mounts in
//! the cell's own mount namespace, read-only when asked, never through a
//! symlink planted in either path, gone with the cell; named volumes keep
//! their data across pods and cannot be removed while a pod names one;
//! bad input is one error line and leaves nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use std::path::Path;

use common::{Driver, TestHost};

fn pod_root(host: &TestHost, pod: &str) -> String {
    host.json(&["pod", "show", pod])["root"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every mount table of this host (each live process's), as text.
fn all_mount_tables() -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(t) = std::fs::read_to_string(entry.path().join("mountinfo")) {
                all.push_str(&t);
            }
        }
    }
    all
}

#[test]
fn a_pod_sees_its_variables_and_show_lists_them() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(
        &file,
        "# settings\n\nFROM_FILE=one two\nSHARED=file\nHOME=/srv\n",
    )
    .unwrap();
    host.ok(&[
        "pod",
        "create",
        "busybox",
        "--name",
        "envy",
        "--env-file",
        file.to_str().unwrap(),
        "--env",
        "SHARED=flag",
        "-e",
        "EQ=a=b",
        "--",
        "/bin/sh",
    ]);
    let out = host.ok(&["pod", "run", "envy", "--", "/bin/env"]);
    for line in ["FROM_FILE=one two", "SHARED=flag", "EQ=a=b", "HOME=/srv"] {
        assert!(out.lines().any(|l| l == line), "{line} missing from: {out}");
    }
    // jetpack's own defaults stay where the pod sets nothing.
    assert!(out.lines().any(|l| l.starts_with("PATH=/")), "{out}");
    assert!(out.lines().any(|l| l == "HOSTNAME=envy"), "{out}");
    let show = host.json(&["pod", "show", "envy"]);
    assert_eq!(show["env"]["SHARED"], "flag");
    assert_eq!(show["env"]["FROM_FILE"], "one two");
    let table = host.ok(&["pod", "show", "envy"]);
    assert!(table.contains("EQ=a=b"), "{table}");
    // An exec in a running pod gets them too.
    host.ok(&["pod", "run", "-d", "envy", "--", "/bin/sleep", "60"]);
    let out = host.ok(&["pod", "exec", "envy", "--", "/bin/sh", "-c", "echo $SHARED"]);
    assert_eq!(out, "flag\n");
    host.ok(&["pod", "kill", "envy"]);
}

#[test]
fn a_read_only_volume_cannot_be_written_and_a_writable_one_can() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    let rw = dir.path().join("rw");
    std::fs::create_dir(&ro).unwrap();
    std::fs::create_dir(&rw).unwrap();
    std::fs::write(ro.join("f"), "original\n").unwrap();
    let script = "echo changed > /in/f; echo rc=$?; cat /in/f; echo new > /deep/out/g; echo rc=$?";
    let out = host.ok(&[
        "pod",
        "run",
        "--rm",
        "busybox",
        "-v",
        &format!("{}:/in:ro", ro.display()),
        "--volume",
        &format!("{}:/deep/out", rw.display()),
        "--",
        "/bin/sh",
        "-c",
        script,
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_ne!(
        lines[0], "rc=0",
        "a write to a read-only volume worked: {out}"
    );
    assert_eq!(lines[1], "original", "{out}");
    assert_eq!(lines[2], "rc=0", "{out}");
    assert_eq!(std::fs::read_to_string(ro.join("f")).unwrap(), "original\n");
    assert_eq!(std::fs::read_to_string(rw.join("g")).unwrap(), "new\n");
}

#[test]
fn a_symlink_in_the_pod_path_is_refused_not_followed() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marker"), "volume\n").unwrap();
    let source = dir.path().display().to_string();
    for (name, link, target) in [("direct", "data", "/data"), ("parent", "srv", "/srv/x")] {
        host.ok(&[
            "pod",
            "create",
            "busybox",
            "--name",
            name,
            "-v",
            &format!("{source}:{target}"),
        ]);
        let root = pod_root(&host, name);
        // Planted in the clone after creation, as a pod's own process could.
        std::os::unix::fs::symlink("/etc", Path::new(&root).join(link)).unwrap();
        let err = host.fails(&["pod", "run", name, "--", "/bin/true"]);
        assert!(err.contains("symlink"), "{err}");
        let show = host.json(&["pod", "show", name]);
        assert_ne!(show["state"], "running", "{show}");
        // Nothing was mounted over the host's /etc, nor anywhere else.
        assert!(!Path::new("/etc/marker").exists());
        let canonical = dir.path().canonicalize().unwrap().display().to_string();
        let stayed = all_mount_tables()
            .lines()
            .any(|l| l.split(' ').nth(3) == Some(canonical.as_str()));
        assert!(!stayed, "a mount of the volume stayed");
    }
}

#[test]
fn a_symlink_in_the_host_path_is_refused_at_start_and_checked_at_create() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    host.ok(&[
        "pod",
        "create",
        "busybox",
        "--name",
        "swapped",
        "-v",
        &format!("{}:/data", real.display()),
    ]);
    // The directory checked at create is swapped for a symlink to /etc.
    std::fs::rename(&real, dir.path().join("moved")).unwrap();
    std::os::unix::fs::symlink("/etc", &real).unwrap();
    let err = host.fails(&["pod", "run", "swapped", "--", "/bin/ls", "/data"]);
    assert!(err.contains("symlink"), "{err}");
    // At create a symlink is resolved, and a path into jetpack's own data
    // (here its datasets, through a link) is refused.
    let link = dir.path().join("into-jetpack");
    std::os::unix::fs::symlink(host.root.join("pods"), &link).unwrap();
    let err = host.fails(&[
        "pod",
        "create",
        "busybox",
        "-v",
        &format!("{}:/data", link.display()),
    ]);
    assert!(err.contains("jetpack's own"), "{err}");
    let err = host.fails(&["pod", "create", "busybox", "-v", "/:/host"]);
    assert!(err.contains("jetpack's own"), "{err}");
}

#[test]
fn volumes_leave_the_mount_tables_when_the_pod_stops() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().canonicalize().unwrap().display().to_string();
    host.ok(&[
        "pod",
        "run",
        "-d",
        "busybox",
        "--name",
        "mounted",
        "-v",
        &format!("{source}:/data:ro"),
        "--",
        "/bin/sleep",
        "300",
    ]);
    let inside = host.ok(&[
        "pod",
        "exec",
        "mounted",
        "--",
        "/bin/cat",
        "/proc/self/mountinfo",
    ]);
    let line = inside
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/data"))
        .unwrap_or_else(|| panic!("no /data mount in the pod: {inside}"));
    assert!(
        line.contains(" ro,") || line.contains(" ro "),
        "not read-only: {line}"
    );
    // A bind mount of the volume: its root field is the host directory.
    let binds = |table: &str| {
        table
            .lines()
            .filter(|l| l.split(' ').nth(3) == Some(source.as_str()))
            .count()
    };
    // The host's own table never holds it (the cell's namespace is
    // private); the holder's does, while the pod runs.
    let own = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(binds(&own), 0, "the host's table holds the volume");
    assert!(binds(&all_mount_tables()) > 0, "no table holds the volume");
    host.ok(&["pod", "kill", "mounted"]);
    assert_eq!(
        binds(&all_mount_tables()),
        0,
        "a mount of the volume stayed after the pod stopped"
    );
}

#[test]
fn named_volumes_keep_data_across_pods_and_refuse_removal_while_used() {
    for driver in [Driver::Dir, Driver::ZfsCli] {
        let Some(host) = TestHost::with_busybox(driver) else {
            continue;
        };
        host.ok(&["volume", "create", "cache"]);
        let err = host.fails(&["volume", "create", "cache"]);
        assert!(err.contains("taken"), "{err}");
        host.ok(&[
            "pod",
            "run",
            "--rm",
            "busybox",
            "-v",
            "cache:/cache",
            "--",
            "/bin/sh",
            "-c",
            "echo kept > /cache/file",
        ]);
        let out = host.ok(&[
            "pod",
            "run",
            "--rm",
            "busybox",
            "-v",
            "cache:/c:ro",
            "--",
            "/bin/cat",
            "/c/file",
        ]);
        assert_eq!(out, "kept\n", "{driver:?}");
        let list = host.json(&["volume", "list"]);
        assert_eq!(list[0]["name"], "cache");
        host.ok(&[
            "pod",
            "create",
            "busybox",
            "--name",
            "user",
            "-v",
            "cache:/cache",
        ]);
        let err = host.fails(&["volume", "rm", "cache"]);
        assert!(err.contains("used by pod(s) user"), "{err}");
        let list = host.json(&["volume", "list"]);
        assert_eq!(list[0]["pods"].as_array().unwrap().len(), 1);
        host.ok(&["pod", "rm", "user"]);
        host.ok(&["volume", "rm", "cache"]);
        let err = host.fails(&["pod", "create", "busybox", "-v", "cache:/cache"]);
        assert!(err.contains("no volume \"cache\""), "{err}");
        assert!(host
            .json(&["volume", "list"])
            .as_array()
            .unwrap()
            .is_empty());
        assert!(host.json(&["pod", "list"]).as_array().unwrap().is_empty());
    }
}

#[test]
fn bad_input_is_one_error_and_leaves_nothing() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().display().to_string();
    let bad_file = dir.path().join("bad.env");
    std::fs::write(&bad_file, "GOOD=1\n# fine\nthis is not a pair\n").unwrap();
    let nul_file = dir.path().join("nul.env");
    std::fs::write(&nul_file, "A=x\0y\n").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["-v".into(), "relative:/data:ro:x".into()],
            "expected SOURCE:TARGET",
        ),
        (
            vec!["-v".into(), format!("{real}:data")],
            "not an absolute path",
        ),
        (
            vec!["-v".into(), format!("{real}:/a/../b")],
            "holds . or ..",
        ),
        (
            vec!["-v".into(), format!("{real}/missing:/data")],
            "No such file",
        ),
        (
            vec!["-v".into(), format!("{real}:/proc/x")],
            "the cell's own",
        ),
        (
            vec!["-v".into(), "no-such-volume:/data".into()],
            "no volume",
        ),
        (vec!["-v".into(), "../x:/data".into()], "volume name"),
        (vec!["-e".into(), "1BAD=x".into()], "not a POSIX name"),
        (vec!["-e".into(), "NOEQUALS".into()], "is not KEY=VALUE"),
        (
            vec!["--env-file".into(), bad_file.display().to_string()],
            "bad.env line 3",
        ),
        (
            vec!["--env-file".into(), nul_file.display().to_string()],
            "NUL",
        ),
    ];
    for (flags, expected) in cases {
        let mut args: Vec<&str> = vec!["pod", "create", "busybox"];
        args.extend(flags.iter().map(String::as_str));
        let err = host.fails(&args);
        assert!(err.contains(expected), "{flags:?}: {err}");
        let mut run: Vec<&str> = vec!["pod", "run", "--rm", "busybox"];
        run.extend(flags.iter().map(String::as_str));
        run.extend(["--", "/bin/true"]);
        host.fails(&run);
    }
    assert!(host.json(&["pod", "list"]).as_array().unwrap().is_empty());
    host.ok(&["base", "rm", "busybox"]);
    assert!(
        host.leftovers().is_empty(),
        "left behind: {:?}",
        host.leftovers()
    );
}

#[test]
fn env_and_volumes_through_the_api() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let server = common::server::TestServer::on_host(&host, &[]);
    let post = |path: &str, body: serde_json::Value| {
        server.json(
            &[
                "-H",
                "Content-Type: application/json",
                "-d",
                &body.to_string(),
            ],
            path,
        )
    };
    let (status, v) = post("/v1/volumes", serde_json::json!({"name": "shared"}));
    assert_eq!(status, 201, "{v}");
    let (status, pod) = post(
        "/v1/pods",
        serde_json::json!({
            "base": "busybox", "name": "api",
            "env": {"GREETING": "hello"},
            "volumes": ["shared:/shared"],
            "command": ["/bin/sh", "-c", "echo $GREETING > /shared/out"],
            "state": "running"
        }),
    );
    assert_eq!(status, 201, "{pod}");
    assert_eq!(pod["env"]["GREETING"], "hello");
    assert_eq!(pod["volumes"][0]["source"], "shared");
    common::until(30, "the pod to exit", || {
        let (_, p) = server.json(&[], "/v1/pods/api");
        (p["state"] == "exited").then_some(())
    });
    let out = host.root.join("volumes/shared/out");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hello\n");
    let (status, body) = server.curl(&["-X", "DELETE"], "/v1/volumes/shared");
    assert_eq!(status, 409, "{body}");
    let (_, list) = server.json(&[], "/v1/volumes");
    assert_eq!(list[0]["pods"][0], pod["id"]);
    for (body, expected) in [
        (
            serde_json::json!({"base": "busybox", "env": {"1X": "y"}}),
            400,
        ),
        (
            serde_json::json!({"base": "busybox", "env": {"X": "a\u{0}b"}}),
            400,
        ),
        (
            serde_json::json!({"base": "busybox", "volumes": ["/no/such/dir:/x"]}),
            400,
        ),
        (
            serde_json::json!({"base": "busybox", "volumes": ["/tmp:/a/../b"]}),
            400,
        ),
        (
            serde_json::json!({"base": "busybox", "volumes": ["gone:/x"]}),
            404,
        ),
    ] {
        let (status, answer) = post("/v1/pods", body.clone());
        assert_eq!(status, expected, "{body}: {answer}");
    }
    let (_, pods) = server.json(&[], "/v1/pods");
    assert_eq!(pods.as_array().unwrap().len(), 1, "{pods}");
    let (status, _) = server.curl(&["-X", "DELETE"], "/v1/pods/api");
    assert_eq!(status, 200);
    let (status, _) = server.curl(&["-X", "DELETE"], "/v1/volumes/shared");
    assert_eq!(status, 200);
    assert!(!out.exists());
}
