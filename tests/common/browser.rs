//! A real headless Chromium for the console's tests, driven over WebDriver
//! by Debian's chromedriver on a loopback port. Everything is synchronous
//! for the test (a private runtime runs the WebDriver client), every wait
//! is a bounded poll for a condition that fails with what it last saw and a
//! screenshot, and the driver, the browser and its profile go away on drop,
//! panic or not.
//!
//! Nothing is installed here: scripts/test.sh installs chromium and
//! chromium-driver, and axe-core into target/axe. Missing, they skip the
//! test with a printed reason, or fail it under CI.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a wait for the page lasts unless told otherwise.
pub const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(25);

/// WebDriver keys: Control+A (Control pressed, a, Control released).
pub const SELECT_ALL: &str = "\u{E009}a\u{E009}";
pub const BACKSPACE: &str = "\u{E003}";
/// Control+End: the end of a text.
pub const CTRL_END: &str = "\u{E009}\u{E010}\u{E009}";

/// Where screenshots go: `target/console-screenshots/` (not committed).
pub fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("console-screenshots")
}

/// axe-core's `axe.min.js`: JETPACK_AXE, or where the test command puts it
/// (`target/axe`), or the GUI's own node_modules.
pub fn axe_path() -> Option<PathBuf> {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let target = tmp.parent().unwrap_or(tmp);
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::var_os("JETPACK_AXE")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            target.join("axe/node_modules/axe-core/axe.min.js"),
            manifest.join("target/axe/node_modules/axe-core/axe.min.js"),
            manifest.join("gui/node_modules/axe-core/axe.min.js"),
        ])
        .find(|p| p.is_file())
}

/// Whether Chromium, chromedriver and axe-core are here: skips (printing
/// why) or, under CI, fails.
pub fn available() -> bool {
    let check = || -> Result<(), String> {
        for p in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(p).exists() {
                return Err(format!(
                    "{p} is missing (Debian's chromium, chromium-driver)"
                ));
            }
        }
        axe_path().ok_or("axe-core is missing (scripts/test.sh installs it into target/axe)")?;
        Ok(())
    };
    super::facility("headless Chromium", check())
}

/// A chromedriver and the Chromium it drives, for one test.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Option<Child>,
    profile: tempfile::TempDir,
    /// The test's name: screenshots are `NAME-PAGE.png`.
    pub name: String,
    /// The base URL of the server, `https://127.0.0.1:PORT`.
    pub base: String,
}

impl Browser {
    /// Starts chromedriver on a free port, waits for its /status, and opens
    /// a headless Chromium session with a fresh profile.
    pub fn start(name: &str, base: &str) -> Browser {
        Self::start_with(name, base, json!({}))
    }

    /// `start`, with these capabilities added (e.g. `pageLoadStrategy`).
    pub fn start_with(name: &str, base: &str, extra: Value) -> Browser {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the WebDriver client");
        let profile = tempfile::Builder::new()
            .prefix("jetpack-chromium-")
            .tempdir()
            .expect("a Chromium profile folder");
        let port = super::server::free_port();
        let log = std::fs::File::create(profile.path().join("chromedriver.log"))
            .expect("chromedriver's log");
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("chromedriver's log"))
                .stderr(log)
                // Its own process group: the browser it starts goes with it.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {CHROMEDRIVER}: {e}"))
        };
        let mut browser = Browser {
            rt,
            client: None,
            driver: Some(driver),
            profile,
            name: name.to_string(),
            base: base.trim_end_matches('/').to_string(),
        };
        let status = format!("http://127.0.0.1:{port}/status");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = ureq::get(&status)
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            if let Some(Ok(Some(exit))) = browser.driver.as_mut().map(|d| d.try_wait()) {
                panic!("chromedriver exited with {exit}: {}", browser.driver_log());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver's /status never said ready: {}",
                browser.driver_log()
            );
            std::thread::sleep(POLL);
        }
        let user_data = format!(
            "--user-data-dir={}",
            browser.profile.path().join("p").display()
        );
        let caps = json!({
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    "--disable-quic", "--window-size=1280,800", user_data,
                ],
            },
        });
        let caps = match (caps, extra) {
            (Value::Object(mut m), Value::Object(more)) => {
                m.extend(more);
                m
            }
            (Value::Object(m), _) => m,
            _ => unreachable!(),
        };
        let url = format!("http://127.0.0.1:{port}");
        let client = browser.rt.block_on(async {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&url)
                .await
        });
        match client {
            Ok(c) => browser.client = Some(c),
            Err(e) => panic!("no Chromium session: {e}: {}", browser.driver_log()),
        }
        browser
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromedriver.log")).unwrap_or_default()
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a live session")
    }

    /// Runs one WebDriver call; a failure saves a screenshot and fails.
    fn call<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> T {
        match self.rt.block_on(f) {
            Ok(v) => v,
            Err(e) => self.fail(&format!("{what}: {e}")),
        }
    }

    /// Saves a screenshot and fails the test with `message`.
    pub fn fail(&self, message: &str) -> ! {
        let shot = self.screenshot("FAILED");
        let url = self
            .rt
            .block_on(self.client().current_url())
            .map(|u| u.to_string())
            .unwrap_or_default();
        panic!("{message}\n  page: {url}\n  screenshot: {}", shot.display())
    }

    /// Opens `path` (e.g. `/#/instances`) on the server, or a whole URL
    /// (`about:blank`).
    pub fn goto(&self, path: &str) {
        let url = if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            path.to_string()
        };
        self.call(&format!("opening {url}"), self.client().goto(&url));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.call("running a script", self.client().execute(script, args))
    }

    /// `js`, with the error returned (a page still loading, a navigation).
    pub fn try_js(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        self.rt
            .block_on(self.client().execute(script, args))
            .map_err(|e| e.to_string())
    }

    /// Opens `path` in a new tab and switches to it.
    pub fn new_tab(&self, path: &str) {
        let tab = self.call("opening a tab", self.client().new_window(true));
        self.call("switching tabs", self.client().switch_to_window(tab.handle));
        self.goto(path);
    }

    /// Polls `probe` every 25 ms until it gives Some, for up to `within`;
    /// then fails with `what`, the last thing `describe` said, and a
    /// screenshot.
    pub fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        mut probe: impl FnMut(&Browser) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + within;
        loop {
            match probe(self) {
                Ok(v) => return v,
                Err(last) if Instant::now() >= deadline => self.fail(&format!(
                    "timed out after {within:?} waiting for {what}; last: {last}"
                )),
                Err(_) => std::thread::sleep(POLL),
            }
        }
    }

    /// The text of the first element matching `css`, or None.
    pub fn text(&self, css: &str) -> Option<String> {
        self.try_js(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![json!(css)],
        )
        .ok()?
        .as_str()
        .map(str::to_string)
    }

    /// How many elements match `css`.
    pub fn count(&self, css: &str) -> usize {
        self.try_js(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(css)],
        )
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(0) as usize
    }

    /// `attr` of every element matching `css`, in document order.
    pub fn attrs(&self, css: &str, attr: &str) -> Vec<String> {
        let v = self
            .try_js(
                "return [...document.querySelectorAll(arguments[0])].map(e => e.getAttribute(arguments[1]));",
                vec![json!(css), json!(attr)],
            )
            .unwrap_or(Value::Null);
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until an element matches `css` (and is displayed).
    pub fn wait_present(&self, css: &str) {
        self.wait_for(&format!("{css} to be shown"), WAIT, |b| {
            let shown = b.try_js(
                "const e = document.querySelector(arguments[0]);
                 return !!e && e.getClientRects().length > 0;",
                vec![json!(css)],
            );
            if shown == Ok(Value::Bool(true)) {
                Ok(())
            } else {
                Err(format!("{} match(es)", b.count(css)))
            }
        })
    }

    /// Waits until nothing matches `css`.
    pub fn wait_gone(&self, css: &str) {
        self.wait_for(&format!("{css} to be gone"), WAIT, |b| match b.count(css) {
            0 => Ok(()),
            n => Err(format!("{n} match(es)")),
        })
    }

    /// Waits until the (trimmed) text of `css` is `expected`, for `within`.
    pub fn wait_text_within(&self, css: &str, expected: &str, within: Duration) {
        self.wait_for(&format!("{css} to read {expected:?}"), within, |b| {
            let t = b.text(css).map(|t| t.trim().to_string());
            if t.as_deref() == Some(expected) {
                Ok(())
            } else {
                Err(format!("{t:?}"))
            }
        })
    }

    pub fn wait_text(&self, css: &str, expected: &str) {
        self.wait_text_within(css, expected, WAIT)
    }

    /// Waits until `css` matches exactly `n` elements.
    pub fn wait_count(&self, css: &str, n: usize) {
        self.wait_for(&format!("{n} of {css}"), WAIT, |b| match b.count(css) {
            c if c == n => Ok(()),
            c => Err(format!("{c}")),
        })
    }

    fn element(&self, css: &str) -> fantoccini::elements::Element {
        self.wait_present(css);
        self.call(
            &format!("finding {css}"),
            self.client().find(Locator::Css(css)),
        )
    }

    /// Clicks the first element matching `css` once it is shown.
    pub fn click(&self, css: &str) {
        let e = self.element(css);
        self.call(&format!("clicking {css}"), e.click());
    }

    /// Empties the input matching `css` and types `text` into it, as a
    /// user does (select all, delete, type), so that the page sees input
    /// events (WebDriver's clear fires none).
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.element(css);
        let keys = format!("{SELECT_ALL}{BACKSPACE}{text}");
        self.call(&format!("typing into {css}"), e.send_keys(&keys));
        let value = self.try_js(
            "const e = document.querySelector(arguments[0]); return e ? e.value : null;",
            vec![json!(css)],
        );
        if value != Ok(json!(text)) {
            self.fail(&format!("{css} holds {value:?} after typing {text:?}"));
        }
    }

    /// Types `text` (WebDriver keys allowed) into the element matching `css`.
    pub fn type_keys(&self, css: &str, text: &str) {
        let e = self.element(css);
        self.call(&format!("typing into {css}"), e.send_keys(text));
    }

    /// Picks the option of value `value` in the select matching `css`
    /// (once it has that option), as a change by the user.
    pub fn select(&self, css: &str, value: &str) {
        self.wait_for(&format!("{value:?} chosen in {css}"), WAIT, |b| {
            let v = b.try_js(
                "const e = document.querySelector(arguments[0]);
                 if (!e) return 'no such select';
                 if (![...e.options].some(o => o.value === arguments[1]))
                   return 'options: ' + [...e.options].map(o => JSON.stringify(o.value)).join(' ');
                 e.focus();
                 e.value = arguments[1];
                 e.dispatchEvent(new Event('input', { bubbles: true }));
                 e.dispatchEvent(new Event('change', { bubbles: true }));
                 return 'ok';",
                vec![json!(css), json!(value)],
            )?;
            if v == "ok" {
                Ok(())
            } else {
                Err(v.to_string())
            }
        })
    }

    /// Saves a screenshot as `NAME-LABEL.png`; returns its path.
    pub fn screenshot(&self, label: &str) -> PathBuf {
        let dir = screenshot_dir();
        let path = dir.join(format!("{}-{label}.png", self.name));
        if let Some(client) = &self.client {
            if let Ok(png) = self.rt.block_on(client.screenshot()) {
                let _ = std::fs::create_dir_all(&dir);
                if let Err(e) = std::fs::write(&path, png) {
                    eprintln!("screenshot {}: {e}", path.display());
                }
            }
        }
        path
    }

    /// Runs axe-core in the page; fails listing the serious and critical
    /// violations.
    pub fn assert_accessible(&self, label: &str) {
        let list = self.axe_violations();
        if !list.is_empty() {
            let text: Vec<String> = list
                .iter()
                .map(|v| {
                    format!(
                        "  {} ({}): {} at {}",
                        v["id"].as_str().unwrap_or("?"),
                        v["impact"].as_str().unwrap_or("?"),
                        v["help"].as_str().unwrap_or(""),
                        v["nodes"]
                    )
                })
                .collect();
            self.fail(&format!(
                "axe-core: serious or critical violations on {label}:\n{}",
                text.join("\n")
            ));
        }
    }

    /// axe-core's serious and critical violations on the page: `{id,
    /// impact, help, nodes}` each.
    pub fn axe_violations(&self) -> Vec<Value> {
        let path = axe_path().expect("axe-core (checked by browser::available)");
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        self.js(
            &format!("if (!window.axe) {{ {source}\n; }} return !!window.axe;"),
            vec![],
        );
        let script = "const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
              .then(r => done(r.violations
                .filter(v => v.impact === 'serious' || v.impact === 'critical')
                .map(v => ({ id: v.id, impact: v.impact, help: v.help,
                             nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')) }))))
              .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));";
        let found = self.call(
            "running axe-core",
            self.client().execute_async(script, vec![]),
        );
        found.as_array().cloned().unwrap_or_default()
    }

    /// Every page a test visits: a screenshot, then axe-core.
    pub fn page(&self, label: &str) {
        self.screenshot(label);
        self.assert_accessible(label);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Ends the session: chromedriver quits its Chromium.
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), client.close()).await
            });
        }
        if let Some(mut driver) = self.driver.take() {
            let group = nix::unistd::Pid::from_raw(-(driver.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = driver.kill();
            let _ = driver.wait();
        }
        // Whatever Chromium process is left of this profile is killed too.
        let profile = self.profile.path().display().to_string();
        let left = super::left_after(Duration::from_secs(5), || {
            super::processes_mentioning(&profile)
        });
        super::assert_none_left("Chromium processes", &left);
    }
}
