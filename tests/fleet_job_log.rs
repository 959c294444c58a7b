//! A job's log followed on one host while the job waits in the fleet's
//! queue, then taken and run by another host (issue 21): the follow moves
//! to that host's log and carries it to the end, in the one answer the
//! client already has.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Command, Stdio};

#[test]
fn a_log_followed_before_another_host_takes_the_job_continues_from_it() {
    let Some(cluster) = common::postgres::cluster() else {
        return;
    };
    let db = cluster.database();
    let h0 = common::fleet::host(&db, 0, &[]);

    // A build for h1 alone, which has not started: it waits in the queue
    // with no host, as `POST .../build` with `"host": "h1"` leaves one.
    // Its request does not matter (that needs a builder): h1 fails it as
    // unreadable, which it writes to its own log only.
    let id = "0b9a3c1e-5d7f-4e21-9c64-2f1d8e7a6b50";
    db.psql(&format!(
        "INSERT INTO jobs (id, kind, target, state, progress, created_at, spec, affinity)
         VALUES ('{id}', 'build', 'Starbase follow', 'queued', 0,
                 extract(epoch from now())::bigint, '{{}}', 'h1')"
    ))
    .expect("queueing the build");
    let (status, job) = h0.json(&[], &format!("/v1/jobs/{id}"));
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["state"], "queued", "{job}");
    assert!(job["host"].is_null(), "{job}");

    // Its log followed from h0 while it waits: the answer's head comes at
    // once, and the follow waits in h0 for what comes next.
    let out = h0.dir.path().join("followed.log");
    let head = h0.dir.path().join("followed.head");
    let mut follow = Command::new("curl")
        .args(["-sS", "-k", "-N", "--max-time", "120"])
        .args(["-u", &format!("{}:{}", h0.user, h0.password)])
        .arg("-o")
        .arg(&out)
        .arg("-D")
        .arg(&head)
        .arg(h0.url(&format!("/v1/jobs/{id}/log")))
        .stderr(Stdio::piped())
        .spawn()
        .expect("curl");
    common::until(30, "the follow's answer head", || {
        let head = std::fs::read_to_string(&head).unwrap_or_default();
        head.contains("\r\n\r\n").then_some(())
    });
    assert!(
        std::fs::read_to_string(&head)
            .unwrap()
            .starts_with("HTTP/1.1 200"),
        "{}",
        std::fs::read_to_string(&head).unwrap()
    );
    assert_eq!(follow.try_wait().unwrap(), None, "the follow ended early");

    // h1 joins, takes the build and fails it; the follow on h0 reads the
    // job's row, goes to h1 for the log and ends with the job.
    let h1 = common::fleet::host(&db, 1, &[]);
    let ended = common::until(90, "the follow ends", || follow.try_wait().unwrap());
    let followed = std::fs::read_to_string(&out).unwrap_or_default();
    let mut stderr = String::new();
    if let Some(mut e) = follow.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert!(ended.success(), "curl: {ended} {stderr}");
    let (_, job) = h0.json(&[], &format!("/v1/jobs/{id}"));
    assert_eq!(job["host"], "h1", "{job}");
    assert_eq!(job["state"], "failed", "{job}");
    assert!(
        followed.contains("failed: a queued build's request is unreadable"),
        "followed from h0: {followed:?}\nh0: {}\nh1: {}",
        h0.log(),
        h1.log()
    );

    // The log of a job that ran on h1, asked of h0 afterwards: h1's too.
    let (status, asked) = h0.curl(&[], &format!("/v1/jobs/{id}/log"));
    assert_eq!(status, 200, "{asked}");
    assert_eq!(asked.trim_end(), followed.trim_end());

    drop((h0, h1));
    drop(db);
}
