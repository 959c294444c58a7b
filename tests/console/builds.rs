//! Uploads and builds from the console: an upload's progress, preparing a builder and building with it.

use super::*;

#[test]
fn an_upload_shows_its_progress_and_the_image_appears() {
    if !peers() || !browser::available() {
        return;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let c = console(&[]);
    let s = &c.server;
    let file = c.server.dir.path().join("console-upload.elf");
    let size = 4 << 20;
    common::server::fake_elf(&file, size, "console upload");

    let b = logged_in(&c, "images");
    b.goto("/#/images");
    b.wait_present("[data-testid=image-upload]");
    b.page("images");
    b.type_keys("[data-testid=image-upload]", file.to_str().unwrap());
    // The bar knows the size, and ends full when the server has it.
    let seen = b.wait_for("the upload to end", Duration::from_secs(30), |b| {
        let v = b
            .try_js(
                "const p = document.querySelector('[data-testid=upload-progress]');
                 const done = [...document.querySelectorAll('[role=status]')]
                   .some(e => e.textContent.includes('Uploaded'));
                 const err = document.querySelector('[data-testid=error-banner]');
                 return [p ? p.value : null, p ? p.max : null, done, err ? err.textContent : null];",
                vec![],
            )
            .map_err(|e| e.to_string())?;
        if let Some(e) = v[3].as_str() {
            b.fail(&format!("the upload failed: {e}"));
        }
        if v[2] == true {
            Ok(v)
        } else {
            Err(format!("{v}"))
        }
    });
    assert_eq!(seen[1].as_f64(), Some(size as f64), "the bar's max: {seen}");
    assert_eq!(seen[0], seen[1], "the bar ends full: {seen}");
    let (status, images) = s.json(&[], "/v1/images");
    assert_eq!(status, 200);
    let image = images
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "console-upload")
        .unwrap_or_else(|| panic!("no image named console-upload: {images}"))
        .clone();
    let id = image["id"].as_str().unwrap();
    b.wait_present(&format!("[data-testid=image-row][data-id='{id}']"));
    b.page("images-uploaded");
}

#[test]
fn builders_page_prepares_the_test_builder_and_images_page_builds_with_it() {
    if !peers() || !browser::available() || !common::tool("as") || !common::tool("ld") {
        return;
    }
    let Some(host) = common::TestHost::new(common::Driver::ZfsCli) else {
        return;
    };
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("tempdir");
    let bobs = dir.path().join("bobs");
    std::fs::create_dir_all(&bobs).expect("the provider folder");
    for f in ["test-builder.tar.gz", "test-builder.json"] {
        std::fs::copy(common::bobs::provider_dir().join(f), bobs.join(f))
            .expect("copying the test builder");
    }
    let users = dir.path().join("htpasswd");
    htpasswd(&users, true, USER, PASSWORD);
    let provider = format!("bob.provider.local=local {}", bobs.display());
    let users_option = format!("server.htpasswd={}", users.display());
    let mut server =
        TestServer::on_host_with(&host, &[&provider, &users_option], &["--name", NAME]);
    server.user = USER.into();
    server.password = PASSWORD.into();
    let (status, nacl) = server.json(
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &json!({"name": "build-me", "content": NACL}).to_string(),
        ],
        "/v1/nacls",
    );
    assert_eq!(status, 201, "{nacl}");
    let nacl = nacl["id"].as_str().unwrap().to_string();
    let c = Console {
        server,
        users,
        _dir: dir,
    };
    let s = &c.server;

    let b = logged_in(&c, "builders");
    b.goto("/#/builders");
    let local = "[data-testid=provider-row][data-id='local']";
    b.wait_present(local);
    b.click(&format!("{local} [data-testid=provider-update]"));
    let bob = "[data-testid=bob-row][data-id='test-builder']";
    b.wait_present(bob);
    b.page("builders");
    b.click(&format!("{bob} [data-testid=bob-prepare]"));
    b.wait_for(
        "the prepared builder",
        Duration::from_secs(120),
        |b| match b.count("[data-testid=builder-row][data-id='test-builder']") {
            0 => Err(format!(
                "rows: {:?}",
                b.attrs("[data-testid=builder-row]", "data-id")
            )),
            _ => Ok(()),
        },
    );
    let (_, builders) = s.json(&[], "/v1/builders");
    assert_eq!(builders[0]["id"], "test-builder", "{builders}");
    b.page("builders-prepared");

    // A build from the Images page: its log streams, the image appears.
    let (_, before) = s.json(&[], "/v1/images");
    b.goto("/#/images");
    b.select("[data-testid=build-builder]", "test-builder");
    b.select("[data-testid=build-service]", "Starbase");
    b.select("[data-testid=build-nacl]", &nacl);
    b.fill("[data-testid=build-tag]", "from-console");
    b.click("[data-testid=build-submit]");
    b.wait_for("the build's log", Duration::from_secs(30), |b| {
        match b.text("[data-testid=job-log]") {
            Some(t) if !t.trim().is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let image = b.wait_for("the built image", Duration::from_secs(150), |_| {
        let (_, after) = s.json(&[], "/v1/images");
        after
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["tag"] == "from-console" && !before.as_array().unwrap().contains(i))
            .and_then(|i| i["id"].as_str().map(str::to_string))
            .ok_or_else(|| format!("{after}"))
    });
    b.wait_present(&format!("[data-testid=image-row][data-id='{image}']"));
    b.page("images-built");
    drop(b);
    drop(c);
    drop(host);
}
