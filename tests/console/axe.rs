//! Every page against axe-core.

use super::*;

#[test]
fn every_page_passes_axe_core() {
    if !peers() || !browser::available() {
        return;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let c = console(&[]);
    let b = logged_in(&c, "pages");
    // Each page with what shows it is there (a heading's text).
    for (route, heading) in [
        ("instances", "Instances"),
        ("images", "Images"),
        ("nacls", "NaCl"),
        ("nacls/new", "NaCl"),
        ("builders", "Builders"),
        ("pods", "Pods"),
        ("jobs", "Jobs"),
        ("settings", "Settings"),
    ] {
        b.goto(&format!("/#/{route}"));
        b.wait_for(&format!("the {route} page"), browser::WAIT, |b| {
            let h = b.text("main h1, h1").unwrap_or_default();
            if h.contains(heading) {
                Ok(())
            } else {
                Err(format!("h1 {h:?}"))
            }
        });
        b.page(&route.replace('/', "-"));
    }
    // The check itself finds what it must: a button with no name.
    b.js(
        "const x = document.createElement('button'); x.id = 'unnamed';
         document.body.appendChild(x); return 1;",
        vec![],
    );
    let found = b.axe_violations();
    assert!(
        found.iter().any(|v| v["id"] == "button-name"),
        "axe-core missed an unnamed button: {found:?}"
    );
    b.wait_present("[data-testid=server-version]");
    let (_, info) = c.server.json(&[], "/v1/info");
    let version = b.text("[data-testid=server-version]").unwrap_or_default();
    assert!(
        version.contains(info["version"].as_str().unwrap_or("?")),
        "{version:?} vs {info}"
    );
}
