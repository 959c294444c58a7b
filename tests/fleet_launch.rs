//! Launches as the fleet's work (issue 21): three hosts on one
//! PostgreSQL, h0 and h1 with the qemu base (made by images/qemu/make.sh),
//! h2 without. Requests go to h2, which cannot launch: placement puts
//! each launch on h0 or h1 (pinned, spread by tag, least loaded), the
//! image's bytes are fetched from h0 where it was pushed, a console is
//! read through another host, and draining h1 boots its instances again on
//! h0 as themselves (the test kernel prints the SMBIOS UUID it was given).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::server::TestServer;
use common::{tool, Driver};
use serde_json::{json, Value};

fn job(server: &TestServer, id: &str) -> Value {
    let (status, j) = server.json(&[], &format!("/v1/jobs/{id}"));
    assert_eq!(status, 200, "{j}");
    j
}

/// Launches through `server`; returns the instance once its job succeeded.
fn launch(server: &TestServer, body: Value) -> Value {
    let (status, j) = server.post_json("/v1/instances", &body);
    assert_eq!(status, 202, "{j}");
    let id = j["id"].as_str().unwrap().to_string();
    let done = common::until(180, &format!("launch {body}"), || {
        let j = job(server, &id);
        matches!(
            j["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
        .then_some(j)
    });
    assert_eq!(done["state"], "succeeded", "{done}");
    done["result"].clone()
}

/// Where `server` says instance `id` runs, once it has merged it (an
/// instance another host made reaches it within a merge, 500 ms).
fn launched_on(server: &TestServer, id: &str) -> Option<String> {
    let i = common::until(10, &format!("instance {id} merged"), || {
        let (status, i) = server.json(&[], &format!("/v1/instances/{id}"));
        assert!(status == 200 || status == 404, "{i}");
        (status == 200).then_some(i)
    });
    i["launchedOn"].as_str().map(str::to_string)
}

fn console(server: &TestServer, id: &str) -> String {
    let (status, text) = server.curl(&[], &format!("/v1/instances/{id}/console"));
    assert_eq!(status, 200, "{text}");
    text
}

/// How many times the console (asked of `server`) holds the line the
/// test kernel prints with the UUID it booted with.
fn boots_as(server: &TestServer, id: &str) -> usize {
    console(server, id)
        .matches(&format!("jetpack test kernel: uuid={id}"))
        .count()
}

fn instance_pods(server: &TestServer) -> usize {
    let (status, pods) = server.json(&[], "/v1/pods");
    assert_eq!(status, 200, "{pods}");
    pods.as_array().unwrap().len()
}

#[test]
fn launches_are_placed_over_the_hosts_that_can_make_them_and_move_off_a_draining_one() {
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    if !tool("qemu-system-x86_64") || !tool("as") {
        return;
    }
    let Some(machines) = common::fleet::machines(3, Driver::Dir) else {
        return;
    };
    let base = common::qemu::base_tarball();
    for machine in &machines[..2] {
        machine.ok(&["init"]);
        machine.ok(&["base", "import", "--name", "qemu", base.to_str().unwrap()]);
    }
    let db = cluster.database();
    let hosts = common::fleet::on_machines(&db, &machines, |_| vec!["launch.accel=tcg".into()]);
    // What each host can launch with, as h2 sees it.
    common::until(30, "three hosts beating", || {
        let (_, list) = hosts[2].json(&[], "/v1/hosts");
        let launch: Vec<(String, Value)> = list
            .as_array()?
            .iter()
            .map(|h| (h["name"].as_str().unwrap().to_string(), h["launch"].clone()))
            .collect();
        (launch
            == vec![
                ("h0".to_string(), json!(["qemu"])),
                ("h1".to_string(), json!(["qemu"])),
                ("h2".to_string(), json!([])),
            ])
        .then_some(())
    });

    // The image is pushed to h0; launches are asked of h2.
    let kernels = common::kernel::assemble(
        &Path::new(env!("CARGO_TARGET_TMPDIR")).join("fleet-launch-kernels"),
        r#"{"uplink":{"url":"https://10.0.0.1:9090","token":"abc"}}"#,
        "Launched",
    );
    let (status, image) = hosts[0].json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", kernels.elf32.display()),
        ],
        "/v1/images?name=fleet-kernel",
    );
    assert!(status == 200 || status == 201, "{image}");
    let image = image["id"].as_str().unwrap().to_string();
    let body = |extra: Value| {
        let mut b = json!({"imageId": image, "append": "idle"});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };

    // Bad asks are refused at once and queue nothing.
    let (status, err) = hosts[2].post_json("/v1/instances", &body(json!({"host": "h2"})));
    assert_eq!(status, 409, "h2 has no qemu base: {err}");
    let (status, err) = hosts[2].post_json("/v1/instances", &body(json!({"hypervisor": "bhyve"})));
    assert_eq!(status, 409, "nobody has bhyve here: {err}");
    let (status, err) = hosts[2].post_json("/v1/instances", &body(json!({"host": "nope"})));
    assert_eq!(status, 404, "{err}");
    let (status, err) = hosts[2].post_json("/v1/instances", &body(json!({"spread": "a b"})));
    assert_eq!(status, 400, "{err}");
    // More memory than any host has: each says its size in its heartbeat.
    let (_, h0) = hosts[2].json(&[], "/v1/hosts/h0");
    let memory = h0["memoryMib"].as_u64().unwrap();
    assert!(memory > 0 && h0["cpus"].as_u64().unwrap() > 0, "{h0}");
    let (status, err) = hosts[2].post_json("/v1/instances", &body(json!({"memory": memory + 1})));
    assert_eq!(status, 409, "no host has that much memory: {err}");
    assert!(
        err.to_string().contains(&format!("{} MiB", memory + 1)),
        "{err}"
    );
    let (_, jobs) = hosts[2].json(&[], "/v1/jobs?kind=launch");
    assert_eq!(jobs.as_array().unwrap().len(), 0, "{jobs}");

    // Two pinned to h0; then two spread by the tag "web": the first to
    // h1 (the least loaded), the second to h0 (h1 has a "web" already);
    // then one by load alone, to h1 (one there, three on h0).
    let pinned: Vec<String> = (0..2)
        .map(|_| {
            launch(&hosts[2], body(json!({"host": "h0"})))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let web1 = launch(&hosts[2], body(json!({"spread": "web"})));
    let web2 = launch(&hosts[2], body(json!({"spread": "web"})));
    let plain = launch(&hosts[2], body(json!({})));
    let id = |v: &Value| v["id"].as_str().unwrap().to_string();
    let (web1, web2, plain) = (id(&web1), id(&web2), id(&plain));
    for p in &pinned {
        assert_eq!(launched_on(&hosts[2], p).as_deref(), Some("h0"));
    }
    assert_eq!(launched_on(&hosts[2], &web1).as_deref(), Some("h1"));
    assert_eq!(launched_on(&hosts[2], &web2).as_deref(), Some("h0"));
    assert_eq!(launched_on(&hosts[2], &plain).as_deref(), Some("h1"));
    let (_, listed) = hosts[2].json(&[], "/v1/hosts/h0");
    assert_eq!(listed["launched"], 3, "{listed}");

    // h1 fetched the image from h0 and booted it with the id it gave:
    // its console, asked of h2, comes from h1.
    for on_h1 in [&web1, &plain] {
        common::until(60, "the kernel on h1 printing its uuid", || {
            (boots_as(&hosts[2], on_h1) == 1).then_some(())
        });
    }
    assert_eq!(instance_pods(&hosts[1]), 2);

    // h1 drains: its two instances boot on h0 (the only seat left), as
    // themselves, and their pods on h1 are gone.
    let (status, drained) = hosts[2].json(&["-X", "POST"], "/v1/hosts/h1/drain");
    assert_eq!(status, 200, "{drained}");
    for moved in [&web1, &plain] {
        common::until(180, "an instance of h1 launched again on h0", || {
            (launched_on(&hosts[2], moved).as_deref() == Some("h0")).then_some(())
        });
        common::until(60, "the moved kernel printing the same uuid", || {
            (boots_as(&hosts[0], moved) == 1).then_some(())
        });
    }
    common::until(30, "h1's instance pods removed", || {
        (instance_pods(&hosts[1]) == 0).then_some(())
    });
    assert_eq!(instance_pods(&hosts[0]), 5);
    let (_, h1) = hosts[2].json(&[], "/v1/hosts/h1");
    assert_eq!(
        (h1["status"].as_str(), h1["launched"].as_u64()),
        (Some("draining"), Some(0))
    );

    // Removed through h2, an instance's pod goes on h0.
    let (status, gone) = hosts[2].json(&["-X", "DELETE"], &format!("/v1/instances/{plain}"));
    assert!(status == 200 || status == 204, "{gone}");
    common::until(30, "the removed instance's pod gone from h0", || {
        (instance_pods(&hosts[0]) == 4).then_some(())
    });
}
