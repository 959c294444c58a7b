//! What a host does with a pod beyond one run, on real namespaces: the
//! restart policy of a detached pod (run again after a backoff, counted,
//! said in the pod's log, ended for good by `pod kill`), pods marked
//! --autostart (started by `pod autostart`, and by `jetpack serve` after
//! a simulated reboot, stopped by `pod autostart --stop`), and host ports published to a pod. Bad
//! words are one error line and leave no pod.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::server::{free_port, TestServer};
use common::{left_after, processes_mentioning, until, Driver, TestHost};

fn state(host: &TestHost, pod: &str) -> serde_json::Value {
    host.json(&["pod", "show", pod])
}

fn log(host: &TestHost, pod: &str) -> String {
    // data.dir is the host's root here, as by default.
    let id = state(host, pod)["id"].as_str().unwrap().to_string();
    std::fs::read_to_string(host.root.join("logs").join(format!("{id}.log"))).unwrap_or_default()
}

/// Waits until the pod is no longer running; its `pod show`.
fn exited(host: &TestHost, pod: &str, secs: u64) -> serde_json::Value {
    until(secs, &format!("pod {pod} exited"), || {
        let s = state(host, pod);
        (s["state"] == "exited").then_some(s)
    })
}

#[test]
fn on_failure_runs_the_command_again_until_it_succeeds() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    // Fails on its first two runs, succeeds on the third: the clone keeps
    // /runs between runs, as the cell does.
    host.ok(&[
        "pod",
        "run",
        "-d",
        "busybox",
        "--name",
        "flaky",
        "--restart",
        "on-failure",
        "--",
        "/bin/sh",
        "-c",
        "echo run >> /runs; test $(wc -l < /runs) -ge 3",
    ]);
    let done = exited(&host, "flaky", 30);
    assert_eq!(done["exit_code"], 0, "{done}");
    assert_eq!(done["restart"], "on-failure");
    assert_eq!(done["restarts"], 2, "{done}");
    let root = done["root"].as_str().unwrap();
    let runs = std::fs::read_to_string(format!("{root}/runs")).unwrap();
    assert_eq!(runs.lines().count(), 3, "{runs}");
    let log = log(&host, "flaky");
    assert!(
        log.contains(
            "the command exited with 1; restart policy on-failure: running it again in 1 s"
        ),
        "{log}"
    );
    assert!(log.contains("running it again in 2 s"), "{log}");
    let shown = host.ok(&["pod", "show", "flaky"]);
    assert!(
        shown.contains("on-failure (2 restarts since it started)"),
        "{shown}"
    );

    // Without a policy a failure stays a failure.
    host.ok(&[
        "pod", "run", "-d", "busybox", "--name", "once", "--", "/bin/sh", "-c", "exit 3",
    ]);
    let done = exited(&host, "once", 20);
    assert_eq!(done["exit_code"], 3, "{done}");
    assert_eq!(done["restarts"], 0);
    assert!(!log_has_restart(&host, "once"));
}

fn log_has_restart(host: &TestHost, pod: &str) -> bool {
    log(host, pod).contains("running it again")
}

#[test]
fn always_restarts_a_clean_exit_and_a_kill_ends_it_for_good() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    host.ok(&[
        "pod",
        "run",
        "-d",
        "busybox",
        "--name",
        "loop",
        "--restart",
        "always",
        "--",
        "/bin/sh",
        "-c",
        "echo run >> /runs",
    ]);
    let id = state(&host, "loop")["id"].as_str().unwrap().to_string();
    until(20, "two restarts", || {
        let s = state(&host, "loop");
        (s["restarts"].as_u64() >= Some(2)).then_some(())
    });
    assert_eq!(state(&host, "loop")["state"], "running");
    host.ok(&["pod", "kill", "loop"]);
    // The supervisor ends, whether it was waiting out a backoff or
    // running the command: nothing runs the pod again.
    let left = left_after(Duration::from_secs(10), || {
        processes_mentioning(&id)
            .into_iter()
            .filter(|p| p.args.iter().any(|a| a == "__supervise"))
            .collect()
    });
    assert!(
        left.is_empty(),
        "the supervisor outlived the kill: {left:?}"
    );
    let s = state(&host, "loop");
    assert_eq!(s["state"], "exited", "{s}");
    let root = s["root"].as_str().unwrap();
    let runs = std::fs::read_to_string(format!("{root}/runs")).unwrap();
    let after_kill = runs.lines().count();
    assert!(after_kill >= 3, "{runs}");
}

#[test]
fn autostart_pods_start_with_the_host_and_the_server_and_stop_at_shutdown() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    host.ok(&[
        "pod",
        "create",
        "busybox",
        "--name",
        "auto",
        "--autostart",
        "--",
        "/bin/sleep",
        "600",
    ]);
    host.ok(&[
        "pod",
        "create",
        "busybox",
        "--name",
        "manual",
        "--",
        "/bin/sleep",
        "600",
    ]);
    assert_eq!(state(&host, "auto")["autostart"], true);
    let out = host.json(&["pod", "autostart"]);
    assert_eq!(out.as_array().unwrap().len(), 1, "{out}");
    assert_eq!(out[0]["name"], "auto");
    assert!(out[0]["error"].is_null(), "{out}");
    assert_eq!(state(&host, "auto")["state"], "running");
    assert_eq!(state(&host, "manual")["state"], "created");
    // A running pod is left as it is.
    assert_eq!(host.json(&["pod", "autostart"]), serde_json::json!([]));
    let out = host.json(&["pod", "autostart", "--stop"]);
    assert_eq!(out[0]["name"], "auto", "{out}");
    assert_eq!(state(&host, "auto")["state"], "exited");

    // A simulated reboot: both pods running, then every process of their
    // cells and supervisors killed outright; the store still says running.
    host.ok(&["pod", "autostart"]);
    host.ok(&["pod", "run", "-d", "manual"]);
    for pod in ["auto", "manual"] {
        let id = state(&host, pod)["id"].as_str().unwrap().to_string();
        // The supervisor first, so that it cannot record its pod's end.
        let supervisor = || -> Vec<_> {
            processes_mentioning(&id)
                .into_iter()
                .filter(|p| p.args.iter().any(|a| a == "__supervise"))
                .collect()
        };
        assert!(!left_after(Duration::ZERO, supervisor).is_empty(), "{pod}");
        assert!(left_after(Duration::from_secs(10), supervisor).is_empty());
        let cell = left_after(Duration::ZERO, || processes_mentioning(&id));
        assert!(!cell.is_empty(), "no cell process of pod {pod} to kill");
        // Its command line empties before the process has finished
        // exiting (tearing down its namespaces): wait for the end itself.
        for p in &cell {
            until(20, "the cell's holder has exited", || {
                let stat = std::fs::read_to_string(format!("/proc/{}/stat", p.pid)).ok();
                let state = stat
                    .as_deref()
                    .and_then(|s| s.rsplit(") ").next()?.chars().next());
                matches!(state, None | Some('Z') | Some('X')).then_some(())
            });
        }
    }
    // `jetpack serve` starts the autostart pod again, and only it: the
    // other is found dead (the kernel may take a moment to let its cell go).
    let server = TestServer::on_host(&host, &[]);
    let s = until(20, "serve started the autostart pod", || {
        let (_, pod) = server.json(&[], "/v1/pods/auto");
        let log = server.log();
        (pod["state"] == "running" && log.contains("autostart: started pod auto")).then_some(pod)
    });
    assert_eq!(s["autostart"], true);
    let manual = until(10, "the other pod found dead", || {
        let (_, pod) = server.json(&[], "/v1/pods/manual");
        (pod["state"] != "running").then_some(pod)
    });
    assert_eq!(manual["state"], "dead", "{manual}");
    assert!(!server.log().contains("started pod manual"));
    host.ok(&["pod", "kill", "auto"]);

    // The same through the API.
    let post = |body: serde_json::Value| {
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
    let (status, pod) = post(serde_json::json!({
        "base": "busybox", "name": "api", "restart": "on-failure",
        "autostart": true, "publish": ["127.0.0.1:8099:80/udp"], "vnet": true,
    }));
    assert_eq!(status, 201, "{pod}");
    assert_eq!(pod["restart"], "on-failure");
    assert_eq!(pod["autostart"], true);
    assert_eq!(pod["restarts"], 0);
    assert_eq!(pod["vnet"], true);
    assert_eq!(pod["publish"], serde_json::json!(["127.0.0.1:8099:80/udp"]));
    let (status, err) =
        post(serde_json::json!({"base": "busybox", "name": "nope", "restart": "never"}));
    assert_eq!(status, 400, "{err}");
    assert!(err.to_string().contains("unknown restart policy"), "{err}");
    let (_, gone) = server.json(&[], "/v1/pods/nope");
    assert!(gone["id"].is_null(), "{gone}");
}

#[test]
fn a_published_port_reaches_the_pod_while_it_runs() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    host.ok(&[
        "pod",
        "run",
        "-d",
        "busybox",
        "--name",
        "web",
        "-p",
        &publish,
        "--",
        "/bin/sh",
        "-c",
        "mkdir -p /www && echo hello from the pod > /www/index.html && exec httpd -f -p 8080 -h /www",
    ]);
    let shown = state(&host, "web");
    assert_eq!(shown["publish"][0], format!("127.0.0.1:{port}:8080/tcp"));
    let body = until(20, "the published port answers", || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        reply.contains("hello from the pod").then_some(reply)
    });
    assert!(
        body.starts_with("HTTP/1.") && body.contains(" 200 "),
        "{body}"
    );
    assert!(log(&host, "web").contains(&format!("publishing 127.0.0.1:{port}/tcp to")));

    // Another pod cannot take the same port: refused before it starts.
    host.ok(&[
        "pod",
        "create",
        "busybox",
        "--name",
        "rival",
        "-p",
        &publish,
        "--",
        "/bin/sleep",
        "60",
    ]);
    let err = host.fails(&["pod", "run", "-d", "rival"]);
    assert!(err.contains("publishing the pod's ports"), "{err}");
    assert_eq!(state(&host, "rival")["state"], "created");

    // The port is closed once the pod stops.
    host.ok(&["pod", "kill", "web"]);
    until(10, "the published port closed", || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .is_err()
            .then_some(())
    });
}

#[test]
fn bad_policy_words_are_refused_and_leave_no_pod() {
    let Some(host) = TestHost::with_busybox(Driver::Dir) else {
        return;
    };
    for (args, says) in [
        (
            vec!["--restart", "sometimes"],
            "unknown restart policy \"sometimes\"",
        ),
        (vec!["-p", "99999:80"], "publish"),
        (vec!["-p", "8080"], "publish"),
        (vec!["-p", "8081:80", "-p", "8081:81"], "8081/tcp twice"),
    ] {
        let mut all = vec!["pod", "create", "busybox", "--name", "bad"];
        all.extend(args.iter().copied());
        let err = host.fails(&all);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(host.json(&["pod", "list"]), serde_json::json!([]));
    // A pod cannot be given them after it exists: they are for new pods.
    host.ok(&["pod", "create", "busybox", "--name", "plain"]);
    let err = host.fails(&["pod", "run", "-d", "plain", "--restart", "always"]);
    assert!(err.contains("are for creating one from a base"), "{err}");
}
