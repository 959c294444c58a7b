//! The served bundle: CSP, cache headers, brotli.

use super::*;

/// The assets `index.html` names (`/assets/NAME-HASH.EXT`).
fn asset_paths(index: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = index;
    while let Some(at) = rest.find("/assets/") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c == '"' || c == '\'' || c == ')' || c.is_whitespace())
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn the_bundle_is_served_with_csp_cache_headers_and_brotli() {
    if !peers() {
        return;
    }
    let c = console(&[]);
    let s = &c.server;
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("gui/dist");
    // No credentials needed for the page (it holds no data).
    let page = fetch(s, &[], "/");
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(
        page.header("content-type")
            .unwrap_or("")
            .starts_with("text/html"),
        "{:?}",
        page.headers
    );
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let csp = page.header("content-security-policy").expect("a CSP");
    let directive = |name: &str| {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .map(str::to_string)
    };
    let default = directive("default-src").expect("default-src");
    assert!(
        default == "default-src 'none'" || default == "default-src 'self'",
        "{csp}"
    );
    if let Some(script) = directive("script-src") {
        assert_eq!(script, "script-src 'self'", "{csp}");
    }
    if let Some(style) = directive("style-src") {
        assert_eq!(style, "style-src 'self'", "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert!(!csp.contains("http:") && !csp.contains("https:"), "{csp}");
    assert_eq!(
        page.body,
        std::fs::read(dist.join("index.html")).expect("gui/dist/index.html")
    );
    let index = page.text();
    assert!(!index.contains("<script>"), "no inline script: {index}");
    let assets = asset_paths(&index);
    assert!(
        assets.iter().any(|a| a.ends_with(".js")) && assets.iter().any(|a| a.ends_with(".css")),
        "{assets:?}"
    );
    for asset in &assets {
        let plain = fetch(s, &[], asset);
        assert_eq!(plain.status, 200, "{asset}");
        let cache = plain.header("cache-control").unwrap_or("");
        assert!(
            cache.contains("max-age=31536000") && cache.contains("immutable"),
            "{asset}: {cache}"
        );
        assert!(plain.header("content-security-policy").is_some(), "{asset}");
        assert_eq!(plain.header("content-encoding"), None, "{asset}");
        let file = dist.join(asset.trim_start_matches('/'));
        assert_eq!(
            plain.body,
            std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display())),
            "{asset}"
        );
        let br = fetch(s, &["-H", "Accept-Encoding: gzip, deflate, br"], asset);
        assert_eq!(br.header("content-encoding"), Some("br"), "{asset}");
        assert!(
            br.header("vary")
                .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")),
            "{asset}: {:?}",
            br.headers
        );
        let mut br_file = file.into_os_string();
        br_file.push(".br");
        assert_eq!(
            br.body,
            std::fs::read(&br_file).unwrap_or_else(|e| panic!("{br_file:?}: {e}")),
            "{asset}.br"
        );
        let gz = fetch(s, &["-H", "Accept-Encoding: gzip"], asset);
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{asset}");
    }
    let br = fetch(s, &["-H", "Accept-Encoding: br"], "/");
    assert_eq!(br.header("content-encoding"), Some("br"));
    // The API under /v1/ still needs credentials.
    assert_eq!(fetch(s, &[], "/v1/instances").status, 401);
}

// ---- in the browser ----
