//! Bases, pods and jobs through the API on a real host: namespaces, the
//! busybox base, curl over TLS. A base import is a job whose log streams.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::server::TestServer;
use common::{busybox_tarball, Driver, TestHost};
use serde_json::{json, Value};

fn wait_job(server: &TestServer, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, job) = server.json(&[], &format!("/v1/jobs/{id}"));
        assert_eq!(status, 200, "{job}");
        let state = job["state"].as_str().unwrap().to_string();
        if matches!(state.as_str(), "succeeded" | "failed" | "cancelled") {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} still {state}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post_json(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    server.json(
        &[
            "-H",
            "Content-Type: application/json",
            "-d",
            &body.to_string(),
        ],
        path,
    )
}

#[test]
fn bases_pods_and_jobs_over_the_api() {
    let Some(host) = TestHost::new(Driver::Dir) else {
        return;
    };
    let server = TestServer::on_host(&host, &[]);
    let tarball = busybox_tarball();

    // Upload a base archive: 202 with an import job; its log streams.
    let (status, job) = server.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", tarball.display()),
        ],
        "/v1/bases?name=busybox",
    );
    assert_eq!(status, 202, "{job}");
    assert_eq!(job["kind"], "import");
    let id = job["id"].as_str().unwrap();
    let (status, log) = server.curl(&[], &format!("/v1/jobs/{id}/log"));
    assert_eq!(status, 200);
    assert!(log.contains("importing the uploaded archive"), "{log}");
    let done = wait_job(&server, id);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["progress"], 1.0);
    assert_eq!(done["result"]["name"], "busybox");
    let (_, bases) = server.json(&[], "/v1/bases");
    assert_eq!(bases.as_array().unwrap().len(), 1);
    assert_eq!(
        server
            .json(&[], "/v1/bases?q=BUSY&sort=-size&limit=1")
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(server.json(&[], "/v1/bases?q=nothing").1, json!([]));
    assert_eq!(server.curl(&[], "/v1/bases?sort=evil").0, 400);
    assert!(
        std::fs::read_dir(server.data_dir().join("uploads"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0
    );
    let (_, jobs) = server.json(&[], "/v1/jobs?state=succeeded&kind=import");
    assert_eq!(jobs.as_array().unwrap().len(), 1);
    assert_eq!(
        server.curl(&["-X", "DELETE"], &format!("/v1/jobs/{id}")).0,
        409,
        "a finished job"
    );

    // An import that fails (bad digest) is a failed job and leaves no base.
    let (status, job) = server.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", tarball.display()),
        ],
        &format!("/v1/bases?name=other&sha256={}", "0".repeat(64)),
    );
    assert_eq!(status, 202);
    let failed = wait_job(&server, job["id"].as_str().unwrap());
    assert_eq!(failed["state"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("sha256"),
        "{failed}"
    );
    assert_eq!(server.json(&[], "/v1/bases").1.as_array().unwrap().len(), 1);
    let (status, _) = post_json(&server, "/v1/bases", json!({"url": "file:///etc/passwd"}));
    assert_eq!(status, 400);

    // A pod that runs.
    let (status, pod) = post_json(
        &server,
        "/v1/pods",
        json!({"base": "busybox", "name": "web", "command": ["sh", "-c", "echo hello from $(hostname); exec sleep 60"], "state": "running"}),
    );
    assert_eq!(status, 201, "{pod}");
    assert_eq!(pod["state"], "running");
    assert!(pod["address"].is_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, log) = server.curl(&[], "/v1/pods/web/log");
        assert_eq!(status, 200);
        if log.contains("hello from") {
            break;
        }
        assert!(Instant::now() < deadline, "no output from the pod: {log:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, running) = server.json(&[], "/v1/pods?state=running");
    assert_eq!(running.as_array().unwrap().len(), 1);
    // Its start was timed: one observation, none failed.
    let (_, metrics) = server.curl(&[], "/metrics");
    for line in [
        "jetpack_pod_start_seconds_count 1",
        "jetpack_pod_start_failures_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line}: {metrics}");
    }
    assert_eq!(server.json(&[], "/v1/pods?q=nomatch").1, json!([]));

    // Conflicts: a running pod, a base in use, a taken name.
    assert_eq!(server.curl(&["-X", "DELETE"], "/v1/pods/web").0, 409);
    assert_eq!(server.curl(&["-X", "DELETE"], "/v1/bases/busybox").0, 409);
    assert_eq!(
        post_json(
            &server,
            "/v1/pods",
            json!({"base": "busybox", "name": "web"})
        )
        .0,
        409
    );
    assert_eq!(
        post_json(&server, "/v1/pods", json!({"base": "nope"})).0,
        404
    );
    assert_eq!(
        post_json(
            &server,
            "/v1/pods",
            json!({"base": "busybox", "name": "../x"})
        )
        .0,
        400
    );
    assert_eq!(
        post_json(
            &server,
            "/v1/pods",
            json!({"base": "busybox", "env": {"A-B": "1"}})
        )
        .0,
        400
    );
    assert_eq!(
        server.json(&[], "/v1/pods").1.as_array().unwrap().len(),
        1,
        "refusals made nothing"
    );

    // Stop, start again, stop, remove.
    let patch = |state: &str| {
        server.json(
            &[
                "-X",
                "PATCH",
                "-H",
                "Content-Type: application/json",
                "-d",
                &json!({"state": state}).to_string(),
            ],
            "/v1/pods/web",
        )
    };
    let (status, stopped) = patch("exited");
    assert_eq!(
        (status, stopped["state"].as_str()),
        (200, Some("exited")),
        "{stopped}"
    );
    let (status, again) = patch("running");
    assert_eq!(
        (status, again["state"].as_str()),
        (200, Some("running")),
        "{again}"
    );
    assert_eq!(patch("created").0, 400);
    assert_eq!(
        server.curl(&["-X", "DELETE"], "/v1/pods/web?force=true").0,
        200
    );
    assert_eq!(server.curl(&[], "/v1/pods/web").0, 404);

    // A base in use goes with force, and its pods with it.
    let (status, _) = post_json(
        &server,
        "/v1/pods",
        json!({"base": "busybox", "name": "idle"}),
    );
    assert_eq!(status, 201);
    assert_eq!(
        server
            .curl(&["-X", "DELETE"], "/v1/bases/busybox?force=true")
            .0,
        200
    );
    assert_eq!(server.json(&[], "/v1/pods").1, json!([]));
    assert_eq!(server.json(&[], "/v1/bases").1, json!([]));
}
