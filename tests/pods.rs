//! Pods on real namespaces and real datasets: the CLI as users run it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use common::{Driver, TestHost};

fn echo_hi(driver: Driver) {
    let Some(host) = TestHost::with_busybox(driver) else {
        return;
    };
    let out = host.ok(&["pod", "run", "--rm", "busybox", "--", "/bin/echo", "hi"]);
    assert_eq!(out, "hi\n");
    assert!(
        host.json(&["pod", "list"]).as_array().unwrap().is_empty(),
        "--rm left the pod"
    );
    host.ok(&["base", "rm", "busybox"]);
    assert!(
        host.leftovers().is_empty(),
        "left behind: {:?}",
        host.leftovers()
    );
}

/// A detached pod `name` of busybox that sleeps for 300 s.
fn run_sleeping(host: &TestHost, name: &str) {
    host.ok(&[
        "pod",
        "run",
        "-d",
        "--name",
        name,
        "busybox",
        "--",
        "/bin/sleep",
        "300",
    ]);
}

#[test]
fn echo_hi_on_dir() {
    echo_hi(Driver::Dir);
}

#[test]
fn echo_hi_on_zfs() {
    echo_hi(Driver::ZfsCli);
}

#[test]
fn a_pod_has_its_own_hostname_pid_namespace_and_address() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let id = host
        .ok(&["pod", "create", "busybox", "--name", "alpha"])
        .trim()
        .to_string();
    let show = host.json(&["pod", "show", "alpha"]);
    assert_eq!(show["id"], id.as_str());
    let address = show["address"].as_str().unwrap().to_string();
    let script = "hostname; echo $$; cat /proc/1/cmdline | tr '\\0' ' '; echo; ip -4 -o addr show dev eth0; ls /proc | grep -c '^[0-9]'";
    let out = host.ok(&["pod", "run", "alpha", "--", "/bin/sh", "-c", script]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "alpha", "hostname: {out}");
    let own_pid: u32 = lines[1].parse().unwrap();
    assert!(
        own_pid < 10,
        "the command should be one of the first pids of its own namespace: {out}"
    );
    assert!(
        lines[2].contains("__cell-init"),
        "pid 1 should be the holder: {out}"
    );
    assert!(
        lines[3].contains(&format!("inet {address}/24")),
        "address: {out}"
    );
    let processes: u32 = lines[4].parse().unwrap();
    assert!(
        processes < 10,
        "the pod must not see the host's processes: {out}"
    );
    // The host's hostname is untouched.
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host_name.trim(), "alpha");
    let show = host.json(&["pod", "show", "alpha"]);
    assert_eq!(show["state"], "exited");
    assert_eq!(show["exit_code"], 0);
}

#[test]
fn the_host_tells_pods_apart_by_source_address() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    host.ok(&["pod", "create", "busybox", "--name", "one"]);
    host.ok(&["pod", "create", "busybox", "--name", "two"]);
    // The bridge exists once a pod has run; run one so the host side is up.
    host.ok(&["pod", "run", "one", "--", "/bin/true"]);
    let gateway = format!("{}.1", host.net);
    let listener =
        std::net::TcpListener::bind((gateway.as_str(), 0)).expect("bind on the bridge address");
    let port = listener.local_addr().unwrap().port();
    for name in ["one", "two"] {
        let expected = host.json(&["pod", "show", name])["address"]
            .as_str()
            .unwrap()
            .to_string();
        let target = format!("echo from-{name} | nc {gateway} {port}");
        let h = std::thread::spawn({
            let cmd = host.command();
            move || {
                let mut cmd = cmd;
                cmd.args(["pod", "run", name, "--", "/bin/sh", "-c", &target])
                    .output()
                    .unwrap()
            }
        });
        let Some((mut stream, peer)) = accept_within(&listener, std::time::Duration::from_secs(20))
        else {
            let run = h.join().unwrap();
            panic!(
                "no connection from pod {name}: {}{}",
                String::from_utf8_lossy(&run.stdout),
                String::from_utf8_lossy(&run.stderr)
            )
        };
        // Read to EOF (nc closes its side), then close ours so nc exits.
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut got = String::new();
        std::io::Read::read_to_string(&mut stream, &mut got).unwrap();
        drop(stream);
        let run = h.join().unwrap();
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        assert_eq!(peer.ip().to_string(), expected, "peer of pod {name}");
        assert_eq!(got.trim(), format!("from-{name}"));
    }
}

fn accept_within(
    listener: &std::net::TcpListener,
    limit: std::time::Duration,
) -> Option<(std::net::TcpStream, std::net::SocketAddr)> {
    listener.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, peer)) => {
                stream.set_nonblocking(false).unwrap();
                return Some((stream, peer));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    None
}

#[test]
fn pods_cannot_see_each_other_or_write_to_the_base() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    host.ok(&["pod", "create", "busybox", "--name", "a"]);
    host.ok(&["pod", "create", "busybox", "--name", "b"]);
    host.ok(&[
        "pod",
        "run",
        "a",
        "--",
        "/bin/sh",
        "-c",
        "echo secret > /root/a-only",
    ]);
    let a_root = host.json(&["pod", "show", "a"])["root"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(format!("{a_root}/root/a-only")).unwrap(),
        "secret\n"
    );
    // b sees neither a's file in its own tree nor a's root by its host path.
    let out = host.run(&[
        "pod",
        "run",
        "b",
        "--",
        "/bin/sh",
        "-c",
        &format!("cat /root/a-only; ls {a_root}; find / -name a-only -xdev"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("secret"), "pod b saw pod a's file: {text}");
    // Root in a pod cannot mount (CAP_SYS_ADMIN is gone) and so cannot reach
    // the base; its writes land in its own clone only.
    let out = host.run(&["pod", "run", "b", "--", "/bin/sh", "-c", "mount -t tmpfs none /mnt 2>&1; echo scribble > /bin/busybox-note; mkdir -p /mnt; mount -o remount,rw / 2>&1; echo done"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("done"), "{text}");
    assert!(!text.trim().lines().any(|l| l.is_empty()), "{text}");
    let base_id = host.json(&["base", "show", "busybox"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base_root = host.root.join("bases").join(&base_id);
    assert!(base_root.join("bin/busybox").exists());
    assert!(
        !base_root.join("bin/busybox-note").exists(),
        "a pod wrote into the base"
    );
    assert!(
        !base_root.join("root/a-only").exists(),
        "a pod wrote into the base"
    );
    let tmpfs_in_b = host.run(&[
        "pod",
        "run",
        "b",
        "--",
        "/bin/sh",
        "-c",
        "grep -c ' /mnt ' /proc/mounts",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&tmpfs_in_b.stdout).trim(),
        "0",
        "mount inside the pod succeeded"
    );
}

#[test]
fn detached_pods_are_found_again_and_killed() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    run_sleeping(&host, "svc");
    // Every jetpack process above has exited; a new one finds the pod.
    let pods = host.json(&["pod", "list"]);
    assert_eq!(pods[0]["state"], "running", "{pods}");
    // The supervisor starts the command just after `run -d` returns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let out = loop {
        let out = host.run(&["pod", "exec", "svc", "--", "/bin/pidof", "sleep"]);
        if out.status.success() || std::time::Instant::now() > deadline {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        out.trim().parse::<u32>().is_ok_and(|pid| pid < 10),
        "sleep runs in the pod: {out}"
    );
    host.fails(&["pod", "rm", "svc"]);
    host.fails(&["base", "rm", "busybox"]);
    host.ok(&["pod", "kill", "svc"]);
    assert_eq!(host.json(&["pod", "show", "svc"])["state"], "exited");
    let err = host.fails(&["pod", "kill", "svc"]);
    assert!(err.contains("not running"), "{err}");
    host.ok(&["pod", "rm", "svc"]);
    host.ok(&["base", "rm", "busybox"]);
    assert!(host.leftovers().is_empty(), "{:?}", host.leftovers());
}

/// The relay between a spawner and a process entering a cell is a fork of
/// the spawner (for the server, a whole `jetpack serve`): when the spawner
/// is killed, the relay ends at once instead of waiting out the pod's
/// process for nobody.
#[test]
fn an_exec_relay_ends_with_its_spawner() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    run_sleeping(&host, "svc");
    // A duration no other process of this machine mentions.
    let marker = format!("{}", 40_000 + std::process::id() % 10_000);
    let mut exec = host
        .command()
        .args(["pod", "exec", "svc", "--", "/bin/sleep", &marker])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("jetpack pod exec");
    let of_jetpack = |p: &common::Process| p.args.first().is_some_and(|a| a.ends_with("jetpack"));
    common::until(10, "the exec's sleep running in the pod", || {
        common::processes_mentioning(&marker)
            .iter()
            .any(|p| p.args == ["/bin/sleep", marker.as_str()])
            .then_some(())
    });
    let relays = common::processes_mentioning(&marker)
        .into_iter()
        .filter(|p| of_jetpack(p) && p.pid != exec.id() as i32)
        .count();
    assert_eq!(relays, 1, "the exec runs through one relay");
    exec.kill().expect("kill -9 the spawner");
    let _ = exec.wait();
    let left = common::left_after(std::time::Duration::from_secs(5), || {
        common::processes_mentioning(&marker)
            .into_iter()
            .filter(of_jetpack)
            .collect()
    });
    assert!(left.is_empty(), "the relay outlived its spawner: {left:#?}");
    host.ok(&["pod", "kill", "svc"]);
    host.ok(&["pod", "rm", "svc"]);
    host.ok(&["base", "rm", "busybox"]);
    assert!(host.leftovers().is_empty(), "{:?}", host.leftovers());
}

#[test]
fn a_lost_cell_makes_its_pod_dead() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    run_sleeping(&host, "doomed");
    let cell_pid = host.ok(&["pod", "exec", "doomed", "--", "/bin/cat", "/proc/1/stat"]);
    assert!(cell_pid.starts_with("1 "), "{cell_pid}");
    // Kill the holder behind jetpack's back, as a crash or reboot would.
    let holder = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c).contains("__cell-init")
                        && String::from_utf8_lossy(&c).contains(&host_prefix(&host))
                })
                .unwrap_or(false)
        })
        .expect("the holder process");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(holder),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let state = host.json(&["pod", "show", "doomed"])["state"]
            .as_str()
            .unwrap()
            .to_string();
        if state == "dead" || state == "exited" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "pod still {state}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    host.ok(&["pod", "rm", "doomed"]);
}

fn host_prefix(host: &TestHost) -> String {
    host.command()
        .args(["config", "jail.namePrefix"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap()
}

#[test]
fn exit_codes_and_tty_runs() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let out = host.run(&[
        "pod", "run", "--rm", "busybox", "--", "/bin/sh", "-c", "exit 7",
    ]);
    assert_eq!(out.status.code(), Some(7));
    // -t gives the process a terminal even when ours is a pipe.
    let out = host.ok(&[
        "pod",
        "run",
        "-t",
        "--rm",
        "busybox",
        "--",
        "/bin/sh",
        "-c",
        "tty; test -t 0 && echo is-a-tty",
    ]);
    assert!(
        out.contains("/dev/pts/") && out.contains("is-a-tty"),
        "{out}"
    );
}

/// Serves `body` once per connection over plain HTTP/1.1 on loopback, for
/// `count` requests.
fn serve_http(body: Vec<u8>, count: usize) -> (String, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/images/busybox.tar.xz",
        listener.local_addr().unwrap()
    );
    let handle = std::thread::spawn(move || {
        for _ in 0..count {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") {
                if std::io::Read::read(&mut stream, &mut byte).unwrap() == 0 {
                    break;
                }
                request.push(byte[0]);
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/x-xz\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = std::io::Write::write_all(&mut stream, head.as_bytes());
            let _ = std::io::Write::write_all(&mut stream, &body);
        }
    });
    (url, handle)
}

#[test]
fn bases_import_from_a_url() {
    let Some(host) = TestHost::new(Driver::Dir) else {
        return;
    };
    host.ok(&["init"]);
    let body = std::fs::read(common::busybox_tarball()).unwrap();
    let digest = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&body))
    };
    let (url, server) = serve_http(body, 2);
    let id = host.ok(&["base", "import", &url, "--sha256", &digest]);
    assert_eq!(
        id.trim(),
        digest,
        "a base's id is the sha256 of its archive"
    );
    assert_eq!(
        host.json(&["base", "show", "busybox"])["source"],
        url.as_str()
    );
    // The same archive again is the same base.
    let again = host.run(&["base", "import", &url]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already imported"));
    server.join().unwrap();
    assert_eq!(
        host.ok(&[
            "pod",
            "run",
            "--rm",
            "busybox",
            "--",
            "/bin/echo",
            "from-url"
        ]),
        "from-url\n"
    );
}

#[test]
fn the_console_is_an_interactive_shell() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    run_sleeping(&host, "box");
    let mut child = host
        .command()
        .args(["pod", "console", "box"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(
            &mut stdin,
            b"echo console-$((6 * 7)) on $(hostname); tty; exit 3\n",
        )
        .unwrap();
        // Keep stdin open until the shell has read the line.
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("console-42 on box"), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert_eq!(out.status.code(), Some(3), "{text}");
    host.ok(&["pod", "kill", "box"]);
}
