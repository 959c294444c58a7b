//! The instances page with 50 sims, an instance page (log, statistics), and deploying from it.

use super::*;

const ROW: &str = "[data-testid=instance-row]";

fn row_ids(b: &Browser) -> Vec<String> {
    b.attrs(ROW, "data-id")
}

/// Waits until the rows shown are `want`, in that order.
fn wait_rows(b: &Browser, want: &[String]) {
    b.wait_for(&format!("rows {want:?}"), browser::WAIT, |b| {
        let ids = row_ids(b);
        if ids == want {
            Ok(())
        } else {
            Err(format!("{ids:?}"))
        }
    });
}

#[test]
fn instances_page_counts_filters_sorts_pages_and_deletes_50_sims() {
    if !peers() || !browser::available() {
        return;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let c = console(&["--nouplinktls"]);
    let s = &c.server;
    let (stay, leave) = ("stay", "leave");
    let _staying = sim(s, stay, 40, &[]);
    let mut leaving = sim(s, leave, 10, &[]);
    wait_summary(s, 50, 0);
    let mut all: Vec<String> = (0..40).map(|i| sim_id(stay, i)).collect();
    let gone: Vec<String> = (0..10).map(|i| sim_id(leave, i)).collect();
    all.extend(gone.iter().cloned());
    all.sort();

    let b = logged_in(&c, "instances");
    b.goto("/#/instances");
    b.wait_text("[data-testid=count-total]", "50");
    b.wait_text("[data-testid=count-connected]", "50");
    b.wait_text("[data-testid=count-disconnected]", "0");
    // The default order is by id: the first page is the first 20 ids.
    wait_rows(&b, &all[..20]);
    b.wait_text("[data-testid=page-info]", "1–20 of 50");
    b.page("instances");

    // 10 disconnect: the counts follow within 2 s, without a reload.
    b.js("window.__sameDocument = 'yes'; return 1;", vec![]);
    let t0 = Instant::now();
    let _ = leaving.0.kill();
    let _ = leaving.0.wait();
    b.wait_text_within(
        "[data-testid=count-connected]",
        "40",
        Duration::from_secs(2),
    );
    b.wait_text_within(
        "[data-testid=count-disconnected]",
        "10",
        Duration::from_secs(2),
    );
    let seen = t0.elapsed();
    eprintln!("10 disconnects shown in the counts after {seen:?}");
    assert!(seen <= Duration::from_secs(2), "{seen:?}");
    assert_eq!(
        b.js("return window.__sameDocument || null;", vec![]),
        "yes",
        "the page was reloaded"
    );
    b.wait_text("[data-testid=count-total]", "50");

    // Search: a part of an id finds the instances whose id has it.
    let needle = &gone[3][..7];
    let mut want: Vec<String> = all
        .iter()
        .filter(|id| id.contains(needle))
        .cloned()
        .collect();
    want.sort();
    b.fill("[data-testid=instances-search]", needle);
    wait_rows(&b, &want);
    b.fill(
        "[data-testid=instances-search]",
        "no-such-instance-anywhere",
    );
    wait_rows(&b, &[]);
    b.fill("[data-testid=instances-search]", "");
    wait_rows(&b, &all[..20]);

    // Filter by status.
    let mut left = gone.clone();
    left.sort();
    b.select("[data-testid=instances-status]", "disconnected");
    wait_rows(&b, &left);
    b.wait_text("[data-testid=page-info]", "1–10 of 10");
    // The page starts sorted by id, ascending: a click reverses it and a
    // second click restores it. Each wait needs the new order, so a click
    // whose fetch has not answered yet cannot pass for its result.
    b.click("[data-testid=sort-id]");
    let reversed: Vec<String> = left.iter().rev().cloned().collect();
    wait_rows(&b, &reversed);
    b.click("[data-testid=sort-id]");
    wait_rows(&b, &left);
    b.select("[data-testid=instances-status]", "connected");
    b.wait_text("[data-testid=page-info]", "1–20 of 40");
    b.select("[data-testid=instances-status]", "");
    b.wait_text("[data-testid=page-info]", "1–20 of 50");

    // Paging: 20 a page, still by id ascending.
    let by_id = &all;
    wait_rows(&b, &by_id[..20]);
    b.click("[data-testid=page-next]");
    b.wait_text("[data-testid=page-info]", "21–40 of 50");
    wait_rows(&b, &by_id[20..40]);
    b.click("[data-testid=page-next]");
    b.wait_text("[data-testid=page-info]", "41–50 of 50");
    wait_rows(&b, &by_id[40..]);
    b.click("[data-testid=page-prev]");
    b.wait_text("[data-testid=page-info]", "21–40 of 50");

    // Select 3 (disconnected ones) and delete them.
    b.select("[data-testid=instances-status]", "disconnected");
    wait_rows(&b, &left);
    let doomed: Vec<String> = left[..3].to_vec();
    for id in &doomed {
        b.click(&format!("{ROW}[data-id='{id}'] [data-testid=select-row]"));
    }
    b.click("[data-testid=delete-selected]");
    b.wait_present("[data-testid=confirm]");
    b.page("instances-confirm-delete");
    b.click("[data-testid=confirm]");
    wait_rows(&b, &left[3..]);
    b.wait_text("[data-testid=count-total]", "47");
    let (status, listed) = s.json(&[], "/v1/instances");
    assert_eq!(status, 200);
    let ids: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 47, "{ids:?}");
    for id in &doomed {
        assert!(!ids.contains(&id.as_str()), "{id} is still listed");
    }
}

/// The highest `tick N` in a sim's log text.
fn last_tick(log: &str) -> Option<u64> {
    log.lines()
        .filter_map(|l| l.split("tick ").nth(1)?.split(':').next()?.parse().ok())
        .max()
}

#[test]
fn instance_page_log_follows_and_statistics_draw_a_chart() {
    if !peers() || !browser::available() {
        return;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let c = console(&["--nouplinktls"]);
    let s = &c.server;
    let seed = "page";
    let id = sim_id(seed, 0);
    let _sim = sim(s, seed, 1, &["--log-ms", "200", "--stats-ms", "300"]);
    wait_summary(s, 1, 0);

    let b = logged_in(&c, "instance");
    b.goto(&format!("/#/instances/{id}"));
    b.wait_present("[data-testid=instance-alias]");
    b.wait_present("[data-testid=tab-overview]");
    b.page("instance-overview");

    // The log follows: lines sent after it opened appear, without a reload.
    b.click("[data-testid=tab-log]");
    b.js("window.__sameDocument = 'yes'; return 1;", vec![]);
    let first = b.wait_for("a LOG line", browser::WAIT, |b| {
        let t = b.text("[data-testid=instance-log]").unwrap_or_default();
        last_tick(&t).ok_or(format!("{t:?}"))
    });
    b.wait_for("later LOG lines", browser::WAIT, |b| {
        let t = b.text("[data-testid=instance-log]").unwrap_or_default();
        match last_tick(&t) {
            Some(n) if n >= first + 3 => Ok(()),
            n => Err(format!("last tick {n:?}, first {first}")),
        }
    });
    assert_eq!(
        b.js("return window.__sameDocument || null;", vec![]),
        "yes",
        "the page was reloaded"
    );
    b.page("instance-log");

    // Statistics: the STATS history drawn as charts (canvases), once the
    // server has some.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, stats) = s.json(&[], &format!("/v1/instances/{id}/stats"));
        if !stats["latest"].is_null() {
            break;
        }
        assert!(Instant::now() < deadline, "no STATS from the sim: {stats}");
        std::thread::sleep(Duration::from_millis(50));
    }
    b.click("[data-testid=tab-stats]");
    b.wait_present("[data-testid=stats-chart] canvas");
    b.page("instance-stats");
}

#[test]
fn deploy_from_the_instance_page_warns_of_the_uplink_and_forces() {
    if !peers() || !browser::available() {
        return;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let c = console(&["--nouplinktls"]);
    let s = &c.server;
    // An uploaded image: its uplink is unknown, so a deploy needs force.
    let file = s.dir.path().join("deploy.elf");
    common::server::fake_elf(&file, 200_000, "console deploy");
    let (status, image) = s.json(
        &[
            "-H",
            "Content-Type: application/octet-stream",
            "--data-binary",
            &format!("@{}", file.display()),
        ],
        "/v1/images?name=console-deploy",
    );
    assert_eq!(status, 201, "{image}");
    let image = image["id"].as_str().unwrap().to_string();
    let seed = "deploy";
    let id = sim_id(seed, 0);
    let _sim = sim(s, seed, 1, &[]);
    wait_summary(s, 1, 0);
    let image_of = || s.json(&[], &format!("/v1/instances/{id}")).1["imageId"].clone();
    let before = image_of();

    let b = logged_in(&c, "deploy");
    b.goto(&format!("/#/instances/{id}"));
    b.wait_present("[data-testid=deploy-image]");
    b.select("[data-testid=deploy-image]", &image);
    b.wait_present("[data-testid=deploy-mismatch]");
    b.page("instance-deploy-mismatch");
    // Not forced: refused, nothing deployed.
    b.click("[data-testid=deploy]");
    b.wait_for("the refusal shown", browser::WAIT, |b| {
        let t = b.text("[data-testid=deploy-mismatch]").unwrap_or_default();
        if t.to_lowercase().contains("force") {
            Ok(())
        } else {
            Err(t)
        }
    });
    let (_, jobs) = s.json(&[], "/v1/jobs");
    assert!(
        jobs.as_array().is_none_or(|j| j.is_empty()),
        "a refused deploy made a job: {jobs}"
    );
    assert_eq!(image_of(), before);
    // Forced: the job's log, and the instance runs the image.
    b.click("[data-testid=deploy-force]");
    b.click("[data-testid=deploy]");
    b.wait_for("the job's log", Duration::from_secs(30), |b| {
        match b.text("[data-testid=job-log]") {
            Some(t) if !t.trim().is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while image_of() != image.as_str() {
        if Instant::now() > deadline {
            b.fail(&format!("{id} never ran {image}: {}", image_of()));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    b.page("instance-deployed");
}
