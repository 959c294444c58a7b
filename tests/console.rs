//! The web console (docs/CONSOLE.md) against the real server with TLS and
//! auth on, users made by `htpasswd -B`: the session and CSRF rules and the
//! served bundle over HTTP with curl, then the pages in a real headless
//! Chromium (tests/common/browser.rs), found by their `data-testid` hooks.
//! Every page visited leaves a screenshot in target/console-screenshots/
//! and must pass axe-core with no serious or critical violation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::browser::{self, Browser, BACKSPACE, CTRL_END};
use common::server::TestServer;
use common::sims::{sim_command, sim_id, Killed};
use serde_json::{json, Value};

const USER: &str = "ada";
const PASSWORD: &str = "lovelace 1815";
const OTHER: &str = "bob";
const OTHER_PASSWORD: &str = "b0b-b0b";
const NAME: &str = "console-test";
const NACL: &str =
    "Iface eth0 {\n  index: 0,\n  address: 10.0.0.42,\n  netmask: 255.255.255.0\n}\n";

/// One Chromium at a time: on two cores, browsers side by side would make
/// the timed checks (2 s for a status change) measure the machine.
static BROWSER: Mutex<()> = Mutex::new(());

fn peers() -> bool {
    common::tool("curl") && common::tool("htpasswd")
}

/// A server with TLS and auth on, whose users file (made by htpasswd -B)
/// holds USER and OTHER.
struct Console {
    server: TestServer,
    users: PathBuf,
    _dir: tempfile::TempDir,
}

fn htpasswd(file: &Path, create: bool, user: &str, password: &str) {
    let mut cmd = Command::new("htpasswd");
    cmd.arg(if create { "-Bbc" } else { "-Bb" });
    let made = cmd
        .args([file.to_str().unwrap(), user, password])
        .output()
        .expect("running htpasswd");
    assert!(
        made.status.success(),
        "htpasswd: {}",
        String::from_utf8_lossy(&made.stderr)
    );
}

fn console(flags: &[&str]) -> Console {
    let dir = tempfile::tempdir().expect("tempdir");
    let users = dir.path().join("htpasswd");
    htpasswd(&users, true, USER, PASSWORD);
    htpasswd(&users, false, OTHER, OTHER_PASSWORD);
    let option = format!("server.htpasswd={}", users.display());
    let mut all = vec!["--name", NAME];
    all.extend_from_slice(flags);
    let mut server = TestServer::start(&[&option], &all);
    assert!(server.tls, "the console is tested with TLS on");
    server.user = USER.into();
    server.password = PASSWORD.into();
    Console {
        server,
        users,
        _dir: dir,
    }
}

/// An answer as curl saw it: status, headers (names lower-cased), body.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
}

/// curl without stored credentials (add `-u` or a cookie in `args`).
fn fetch(server: &TestServer, args: &[&str], path: &str) -> Resp {
    let dir = tempfile::tempdir().expect("tempdir");
    let (head, body) = (dir.path().join("head"), dir.path().join("body"));
    let out = Command::new("curl")
        .args(["-sS", "-k", "--http1.1", "-D"])
        .arg(&head)
        .arg("-o")
        .arg(&body)
        .args(args)
        .arg(server.url(path))
        .output()
        .expect("running curl");
    assert!(
        out.status.success(),
        "curl {args:?} {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = std::fs::read_to_string(&head).expect("curl's headers");
    // The last block of headers (after any 100 Continue).
    let block = head
        .split("\r\n\r\n")
        .filter(|b| !b.trim().is_empty())
        .last()
        .unwrap_or("");
    let mut lines = block.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

/// A browser session made over HTTP: the cookie and the CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

impl Session {
    fn cookie_header(&self) -> String {
        format!("Cookie: {}", self.cookie)
    }
}

fn login(server: &TestServer, user: &str, password: &str) -> (Resp, Option<Session>) {
    let body = json!({"username": user, "password": password}).to_string();
    let r = fetch(
        server,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
        ],
        "/v1/session",
    );
    let session = (r.status == 200).then(|| {
        let set = r.header("set-cookie").expect("the login sets a cookie");
        Session {
            cookie: set.split(';').next().unwrap().trim().to_string(),
            csrf: r.json()["csrf"].as_str().expect("csrf").to_string(),
        }
    });
    (r, session)
}

fn nacl_names(server: &TestServer) -> Vec<String> {
    let (status, list) = server.json(&[], "/v1/nacls");
    assert_eq!(status, 200, "{list}");
    list.as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["name"].as_str().map(str::to_string))
        .collect()
}

/// POST /v1/nacls named `name`, with the cookie and these extra headers.
fn post_nacl(server: &TestServer, session: &Session, extra: &[&str], name: &str) -> Resp {
    let body = json!({"name": name, "content": NACL}).to_string();
    let cookie = session.cookie_header();
    let mut args = vec![
        "-X",
        "POST",
        "-H",
        &cookie,
        "-H",
        "Content-Type: application/json",
    ];
    for h in extra {
        args.extend(["-H", h]);
    }
    args.extend(["--data-binary", &body]);
    fetch(server, &args, "/v1/nacls")
}

#[test]
fn login_sets_a_strict_cookie_and_mutations_need_the_csrf_token() {
    if !peers() {
        return;
    }
    let c = console(&[]);
    let s = &c.server;

    let (bad, none) = login(s, USER, "wrong");
    assert_eq!(bad.status, 401, "{}", bad.text());
    assert!(none.is_none());
    let (r, session) = login(s, USER, PASSWORD);
    assert_eq!(r.status, 200, "{}", r.text());
    let session = session.unwrap();
    let set = r.header("set-cookie").unwrap();
    assert!(session.cookie.starts_with("jetpack_session="), "{set}");
    let attrs: Vec<String> = set
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    for want in ["httponly", "samesite=strict", "secure", "path=/"] {
        assert!(attrs.iter().any(|a| a == want), "no {want} in {set}");
    }
    let answer = r.json();
    assert_eq!(answer["user"], USER, "{answer}");
    assert_eq!(answer["auth"], true, "{answer}");
    assert!(session.csrf.len() >= 16, "{answer}");
    assert!(answer["expires"].is_string() || answer["expires"].is_number());

    // The cookie alone reads; GET /v1/session gives the same token back.
    let cookie = session.cookie_header();
    let again = fetch(s, &["-H", &cookie], "/v1/session");
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["csrf"], session.csrf.as_str());
    assert_eq!(fetch(s, &["-H", &cookie], "/v1/info").status, 200);

    // A mutation with the cookie and no token, or a wrong one: 403, nothing made.
    let refused = post_nacl(s, &session, &[], "no-token");
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert_eq!(refused.json()["code"], "csrf");
    let wrong = post_nacl(
        s,
        &session,
        &["X-CSRF-Token: 0123456789abcdef"],
        "bad-token",
    );
    assert_eq!(wrong.status, 403, "{}", wrong.text());
    assert_eq!(wrong.json()["code"], "csrf");
    let names = nacl_names(s);
    assert!(
        !names.iter().any(|n| n == "no-token" || n == "bad-token"),
        "a refused request changed something: {names:?}"
    );
    // With the token it works.
    let token = format!("X-CSRF-Token: {}", session.csrf);
    let made = post_nacl(s, &session, &[&token], "with-token");
    assert_eq!(made.status, 201, "{}", made.text());
    assert!(nacl_names(s).contains(&"with-token".to_string()));

    // API clients: Basic auth, unchanged, needs no token.
    let (status, body) = s.curl(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &json!({"name": "basic", "content": NACL}).to_string(),
        ],
        "/v1/nacls",
    );
    assert_eq!(status, 201, "{body}");
    // The console's requests get no Basic challenge on 401 (no popup).
    let quiet = fetch(s, &["-H", "X-Requested-With: jetpack"], "/v1/session");
    assert_eq!(quiet.status, 401);
    assert_eq!(quiet.header("www-authenticate"), None);
    let loud = fetch(s, &[], "/v1/instances");
    assert_eq!(loud.status, 401);
    assert!(loud.header("www-authenticate").is_some());

    // Logout ends the session on the server, and clears the cookie.
    let out = fetch(
        s,
        &["-X", "DELETE", "-H", &cookie, "-H", &token],
        "/v1/session",
    );
    assert_eq!(out.status, 204, "{}", out.text());
    let cleared = out.header("set-cookie").unwrap_or("");
    assert!(cleared.starts_with("jetpack_session="), "{cleared:?}");
    assert_eq!(fetch(s, &["-H", &cookie], "/v1/session").status, 401);
    assert_eq!(fetch(s, &["-H", &cookie], "/v1/info").status, 401);
}

#[test]
fn removing_the_user_from_the_htpasswd_file_ends_their_session() {
    if !peers() {
        return;
    }
    let c = console(&[]);
    let s = &c.server;
    let (_, ada) = login(s, USER, PASSWORD);
    let (_, bob) = login(s, OTHER, OTHER_PASSWORD);
    let (ada, bob) = (ada.expect("ada's session"), bob.expect("bob's session"));
    let alive = |who: &Session| fetch(s, &["-H", &who.cookie_header()], "/v1/instances").status;
    assert_eq!((alive(&ada), alive(&bob)), (200, 200));
    // Rewritten without ada (a new file renamed over, as editors do).
    let text = std::fs::read_to_string(&c.users).expect("reading the users file");
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with(&format!("{USER}:")))
        .map(|l| format!("{l}\n"))
        .collect();
    let tmp = c.users.with_extension("new");
    std::fs::write(&tmp, kept).expect("writing the new users file");
    std::fs::rename(&tmp, &c.users).expect("replacing the users file");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(&ada) != 401 {
        assert!(
            Instant::now() < deadline,
            "ada's session outlived her removal from the users file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(alive(&bob), 200, "bob's session must survive ada's removal");
    assert_eq!(
        s.curl_as(Some(&format!("{OTHER}:{OTHER_PASSWORD}")), &[], "/v1/info")
            .0,
        200
    );
}

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

/// The console in a browser, logged in as USER.
fn logged_in(c: &Console, test: &str) -> Browser {
    let b = Browser::start(test, &c.server.url(""));
    b.goto("/");
    b.wait_present("[data-testid=login]");
    b.fill("[data-testid=login-username]", USER);
    b.fill("[data-testid=login-password]", PASSWORD);
    b.click("[data-testid=login-submit]");
    b.wait_text("[data-testid=user-name]", USER);
    b
}

#[test]
fn log_in_fail_log_out_in_the_browser() {
    if !peers() || !browser::available() {
        return;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let c = console(&[]);
    let b = Browser::start("login", &c.server.url(""));
    b.goto("/");
    b.wait_present("[data-testid=login]");
    b.page("login");
    b.fill("[data-testid=login-username]", USER);
    b.fill("[data-testid=login-password]", "not the password");
    b.click("[data-testid=login-submit]");
    b.wait_for("login-error to say why", browser::WAIT, |b| {
        match b.text("[data-testid=login-error]") {
            Some(t) if !t.trim().is_empty() => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    assert_eq!(b.count("[data-testid=logout]"), 0, "a failed login got in");
    b.page("login-error");
    b.fill("[data-testid=login-password]", PASSWORD);
    b.click("[data-testid=login-submit]");
    b.wait_text("[data-testid=user-name]", USER);
    b.wait_text("[data-testid=server-name]", NAME);
    b.wait_present("[data-testid=count-total]");
    b.page("instances-empty");
    // The cookie is not readable by the page (HttpOnly).
    let cookies = b.js("return document.cookie;", vec![]);
    assert!(
        !cookies.as_str().unwrap_or("").contains("jetpack_session"),
        "{cookies}"
    );
    b.click("[data-testid=logout]");
    b.wait_present("[data-testid=login]");
    // Gone on the server too: a reload shows the login again.
    b.goto("/#/instances");
    b.wait_present("[data-testid=login]");
    assert_eq!(b.count("[data-testid=user-name]"), 0);
}

/// `jetpack sim` docking `count` instances of `seed` (plain hangar).
fn sim(server: &TestServer, seed: &str, count: usize, extra: &[&str]) -> Killed {
    Killed::spawn(
        sim_command(server, false)
            .args(["--count", &count.to_string(), "--seed", seed])
            .args(["--report-ms", "0"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    )
}

fn wait_summary(server: &TestServer, connected: u64, disconnected: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, s) = server.json(&[], "/v1/instances/summary");
        if s["connected"] == connected && s["disconnected"] == disconnected {
            return;
        }
        assert!(Instant::now() < deadline, "summary never got there: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

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

/// The editor's text, line by line as CodeMirror shows it.
fn editor_text(b: &Browser) -> String {
    b.js(
        "return [...document.querySelectorAll('[data-testid=nacl-editor] .cm-content .cm-line')]
            .map(l => l.textContent).join('\\n');",
        vec![],
    )
    .as_str()
    .unwrap_or("")
    .to_string()
}

/// The 1-based lines whose gutter holds an error marker.
fn marked_lines(b: &Browser) -> Vec<u64> {
    let v = b.js(
        "const lines = [...document.querySelectorAll('[data-testid=nacl-editor] .cm-content .cm-line')];
         return [...document.querySelectorAll('[data-testid=nacl-editor] .cm-lint-marker-error')].map(m => {
           const r = m.getBoundingClientRect(), mid = (r.top + r.bottom) / 2;
           return 1 + lines.findIndex(l => { const b = l.getBoundingClientRect(); return mid >= b.top && mid <= b.bottom; });
         });",
        vec![],
    );
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

fn diagnostics(b: &Browser) -> Vec<String> {
    let v = b.js(
        "return [...document.querySelectorAll('[data-testid=nacl-diagnostics] li')].map(l => l.textContent.trim());",
        vec![],
    );
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn nacl_editor_marks_the_checkers_errors_saves_snippets_and_reverts() {
    if !peers() || !browser::available() {
        return;
    }
    let _one = BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    let c = console(&[]);
    let s = &c.server;
    let (status, doc) = s.json(
        &[
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &json!({"name": "edge", "content": NACL}).to_string(),
        ],
        "/v1/nacls",
    );
    assert_eq!(status, 201, "{doc}");
    let id = doc["id"].as_str().unwrap().to_string();

    let b = logged_in(&c, "nacl");
    b.goto(&format!("/#/nacls/{id}"));
    let original = NACL.trim_end_matches('\n');
    b.wait_for("the NaCl in the editor", browser::WAIT, |b| {
        let t = editor_text(b);
        if t.trim_end() == original {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    });
    b.wait_gone(".cm-lint-marker-error");

    // An invalid last line: a marker on it, and the checker's message.
    let editor = "[data-testid=nacl-editor] .cm-content";
    b.click(editor);
    let bad = "bogus 42";
    b.type_keys(editor, &format!("{CTRL_END}{bad}"));
    let typed = b.wait_for("the typed line", browser::WAIT, |b| {
        let t = editor_text(b);
        if t.ends_with(bad) {
            Ok(t)
        } else {
            Err(format!("{t:?}"))
        }
    });
    let line = typed.lines().count() as u64;
    let check = fetch(
        s,
        &[
            "-u",
            &format!("{USER}:{PASSWORD}"),
            "-X",
            "POST",
            "-H",
            "Content-Type: text/plain",
            "--data-binary",
            &typed,
        ],
        "/v1/nacls/validate",
    );
    assert_eq!(check.status, 422, "{}", check.text());
    let verdict = check.json();
    let errors = verdict["errors"].as_array().expect("errors").clone();
    assert!(!errors.is_empty(), "{verdict}");
    let mut want: Vec<String> = errors
        .iter()
        .chain(verdict["warnings"].as_array().into_iter().flatten())
        .map(|e| {
            format!(
                "line {}:{} {}",
                e["line"],
                e["column"],
                e["message"].as_str().unwrap()
            )
        })
        .collect();
    want.sort();
    let want_lines: Vec<u64> = errors.iter().filter_map(|e| e["line"].as_u64()).collect();
    assert!(
        want_lines.contains(&line),
        "the checker blames {want_lines:?}, not line {line}: {verdict}"
    );
    b.wait_for("the checker's diagnostics", browser::WAIT, |b| {
        let mut shown = diagnostics(b);
        shown.sort();
        if shown == want {
            Ok(())
        } else {
            Err(format!("{shown:?}, want {want:?}"))
        }
    });
    b.wait_for(
        &format!("an error marker on line {line}"),
        browser::WAIT,
        |b| {
            let mut marked = marked_lines(b);
            marked.sort();
            marked.dedup();
            let mut expected = want_lines.clone();
            expected.sort();
            expected.dedup();
            if marked == expected {
                Ok(())
            } else {
                Err(format!("markers on {marked:?}"))
            }
        },
    );
    b.page("nacl-editor-error");

    // Fixed: the marker goes.
    b.type_keys(editor, &BACKSPACE.repeat(bad.len()));
    b.wait_gone(".cm-lint-marker-error");
    b.wait_for("no diagnostics", browser::WAIT, |b| {
        let d = diagnostics(b);
        if d.is_empty() {
            Ok(())
        } else {
            Err(format!("{d:?}"))
        }
    });

    // An edit, saved.
    b.type_keys(editor, "// edited in the console");
    let edited = b.wait_for("the comment typed", browser::WAIT, |b| {
        let t = editor_text(b);
        if t.ends_with("// edited in the console") {
            Ok(t)
        } else {
            Err(format!("{t:?}"))
        }
    });
    b.click("[data-testid=nacl-save]");
    let wait_api = |what: &str, f: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            if Instant::now() > deadline {
                b.fail(&format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_api("the saved NaCl", &|| {
        let (_, d) = s.json(&[], &format!("/v1/nacls/{id}"));
        d["content"].as_str().map(str::trim_end) == Some(edited.trim_end())
    });

    // Saved as a snippet (the whole text: nothing is selected).
    b.fill("[data-testid=snippet-name]", "console-snippet");
    b.click("[data-testid=snippet-save]");
    wait_api("the snippet", &|| {
        let (_, list) = s.json(&[], "/v1/snippets");
        list.as_array().into_iter().flatten().any(|d| {
            d["name"] == "console-snippet"
                && d["content"].as_str().map(str::trim_end) == Some(edited.trim_end())
        })
    });
    b.wait_for("the snippet's row", browser::WAIT, |b| {
        match b.count("[data-testid=snippet-row]") {
            0 => Err("no row".into()),
            _ => Ok(()),
        }
    });

    // Revert: back to what is saved.
    b.type_keys(editor, &format!("{CTRL_END}\nnot saved"));
    b.wait_for("the unsaved line", browser::WAIT, |b| {
        if editor_text(b).ends_with("not saved") {
            Ok(())
        } else {
            Err(editor_text(b))
        }
    });
    b.click("[data-testid=nacl-revert]");
    b.wait_for("the saved text back", browser::WAIT, |b| {
        let t = editor_text(b);
        if t.trim_end() == edited.trim_end() {
            Ok(())
        } else {
            Err(format!("{t:?}"))
        }
    });
    b.page("nacl-editor");
    let (_, d) = s.json(&[], &format!("/v1/nacls/{id}"));
    assert_eq!(
        d["content"].as_str().map(str::trim_end),
        Some(edited.trim_end())
    );
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
