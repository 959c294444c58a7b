//! The web console (docs/CONSOLE.md) against the real server with TLS and
//! auth on, users made by `htpasswd -B`: the session and CSRF rules and the
//! served bundle over HTTP with curl, then the pages in a real headless
//! Chromium (tests/common/browser.rs), found by their `data-testid` hooks.
//! Every page visited leaves a screenshot in target/console-screenshots/
//! and must pass axe-core with no serious or critical violation.
//! Each area is one module; the helpers they share are here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../common/mod.rs"]
mod common;

mod axe;
mod builds;
mod bundle;
mod instances;
mod nacl_editor;
mod session;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::browser::{self, Browser};
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
