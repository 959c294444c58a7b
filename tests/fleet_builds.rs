//! Builds across three jetpack hosts on one PostgreSQL (issue 21), each on
//! its own real ZFS datasets and pod network: the test builder is prepared
//! on h0 only; twenty builds submitted to h0 run on all three (the others
//! bring the builder's base over from h0), none twice, and every image is
//! listed by every host. A build left running on a host killed with
//! SIGKILL fails with the reason; the rest finish.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{HashMap, HashSet};

use common::server::TestServer;
use common::{tool, Driver};
use serde_json::{json, Value};

const BUILDS: usize = 20;
/// A NaCl of its own for build `i`: the image embeds it, so each build
/// makes an image of its own.
fn nacl(i: usize) -> String {
    format!(
        "Iface eth0 {{\n  index: 0,\n  address: 10.0.1.{},\n  netmask: 255.255.255.0\n}}\n",
        i + 2
    )
}

fn job(server: &TestServer, id: &str) -> Value {
    let (status, job) = server.json(&[], &format!("/v1/jobs/{id}"));
    assert_eq!(status, 200, "{job}");
    job
}

fn finished(job: &Value) -> bool {
    matches!(
        job["state"].as_str(),
        Some("succeeded" | "failed" | "cancelled")
    )
}

#[test]
fn twenty_builds_spread_over_three_hosts_and_survive_one_death() {
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    if !tool("as") || !tool("ld") {
        return;
    }
    let Some(machines) = common::fleet::machines(3, Driver::ZfsCli) else {
        return;
    };
    let db = cluster.database();
    let provider = format!(
        "bob.provider.local=local {}",
        common::bobs::provider_dir().display()
    );
    // h0, which has the base and takes the requests, is the narrowest,
    // so that the others take their share.
    let mut hosts = common::fleet::on_machines(&db, &machines, |i| {
        vec![
            format!("build.concurrency={}", if i == 0 { 1 } else { 2 }),
            provider.clone(),
        ]
    });

    // The builder is prepared through the queue, asked of h1 and pinned
    // to h0; its base is there only.
    let (status, _) = hosts[0].json(&["-X", "POST"], "/v1/bobproviders/local/update");
    assert!(status == 200 || status == 202, "update: {status}");
    let (status, prepare) = hosts[1].json(
        &["-X", "POST"],
        "/v1/bobproviders/local/prepare/bobs/test-builder?host=h0",
    );
    assert_eq!(status, 202, "{prepare}");
    let prepared = common::until(300, "the builder prepared", || {
        let j = job(&hosts[1], prepare["id"].as_str().unwrap());
        finished(&j).then_some(j)
    });
    assert_eq!(prepared["state"], "succeeded", "{prepared}");
    assert_eq!(prepared["host"], "h0", "{prepared}");

    // A build that sleeps, for h2 alone: it runs there when h2 dies.
    let (status, stuck) = hosts[0].post_json(
        "/v1/images/build/services/Starbase/builders/test-builder",
        &json!({"nacl": format!("// test: sleep\n{}", nacl(99)), "name": "stuck", "host": "h2"}),
    );
    assert_eq!(status, 202, "{stuck}");
    let stuck = stuck["id"].as_str().unwrap().to_string();
    common::until(300, "the sleeping build running on h2", || {
        (job(&hosts[1], &stuck)["state"] == "running").then_some(())
    });

    // Twenty builds asked of h0, each its own image (their NaCls differ).
    let ids: Vec<String> = (0..BUILDS)
        .map(|i| {
            let (status, j) = hosts[0].post_json(
                "/v1/images/build/services/Starbase/builders/test-builder",
                &json!({"nacl": nacl(i), "name": format!("spread-{i}")}),
            );
            assert_eq!(status, 202, "{j}");
            j["id"].as_str().unwrap().to_string()
        })
        .collect();

    // Once each host has taken one, h2 dies; its sleeping build fails
    // with the reason, and what it took of the twenty fails too.
    let where_ran = |server: &TestServer| -> HashMap<String, String> {
        let (_, all) = server.json(&[], "/v1/jobs?limit=1000");
        all.as_array()
            .expect("jobs")
            .iter()
            .filter_map(|j| {
                Some((
                    j["id"].as_str()?.to_string(),
                    j["host"].as_str()?.to_string(),
                ))
            })
            .collect()
    };
    common::until(300, "builds taken by h1 and h2 too", || {
        let ran = where_ran(&hosts[1]);
        let by: HashSet<&String> = ids.iter().filter_map(|id| ran.get(id)).collect();
        (by.len() == 3).then_some(())
    });
    hosts[2].kill();
    let failed = common::until(30, "the sleeping build failed", || {
        let j = job(&hosts[0], &stuck);
        finished(&j).then_some(j)
    });
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap_or("")
            .contains("host h2 went down"),
        "{failed}"
    );

    // Every build ends; those h0 and h1 ran succeeded, once each.
    let ends: Vec<Value> = ids
        .iter()
        .map(|id| {
            common::until(600, "a build ends", || {
                let j = job(&hosts[1], id);
                finished(&j).then_some(j)
            })
        })
        .collect();
    let ran = where_ran(&hosts[0]);
    let mut images = HashSet::new();
    for (id, end) in ids.iter().zip(&ends) {
        let host = ran.get(id).map(String::as_str);
        match host {
            Some("h0" | "h1") => {
                assert_eq!(end["state"], "succeeded", "{end}");
                images.insert(end["result"]["id"].as_str().unwrap().to_string());
            }
            Some("h2") => assert_eq!(end["state"], "failed", "{end}"),
            other => panic!("build {id} ran on {other:?}: {end}"),
        }
    }
    let succeeded = ends.iter().filter(|e| e["state"] == "succeeded").count();
    assert_eq!(images.len(), succeeded, "one image per build");
    assert!(succeeded >= BUILDS / 2, "{succeeded} of {BUILDS} succeeded");
    // Every image is listed by both hosts left.
    for server in &hosts[..2] {
        let (_, listed) = server.json(&[], "/v1/images?limit=1000");
        let listed: HashSet<&str> = listed
            .as_array()
            .expect("images")
            .iter()
            .filter_map(|i| i["id"].as_str())
            .collect();
        for image in &images {
            assert!(listed.contains(image.as_str()), "{image} not listed");
        }
    }

    hosts.clear();
    drop(db);
}
