//! A headless Chromium driven over WebDriver (chromedriver from the
//! distribution's packages), with waits that poll until a deadline,
//! screenshots under `target/`, and the axe-core accessibility check.
//!
//! Without `chromium` and `chromedriver` on the `PATH` (or in
//! `VDI_CHROMIUM` / `VDI_CHROMEDRIVER`) the browser tests print a skip line
//! and pass, unless `VDI_REQUIRE_BROWSER` is set (CI sets it): then they
//! fail. The same holds for axe-core (`VDI_AXE_JS`, or
//! `target/axe-core/node_modules/axe-core/axe.min.js`, which `.ci/run`
//! installs from the npm registry).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::{Value, json};

use vdi_cluster_server::auth::{Role, mint_jwt};

use crate::common::{DEADLINE, JWT_SECRET, free_port};

/// Whether a missing browser or axe-core fails the test instead of skipping it.
fn required() -> bool {
    std::env::var_os("VDI_REQUIRE_BROWSER").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Writes `line` to the process's standard error directly, so that it
/// shows even where the test harness captures a passing test's output.
fn skip_line(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn program(var: &str, names: &[&str]) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) if !p.is_empty() => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        _ => on_path(names),
    }
}

/// A JWT for `sub` with `role`, signed with the test control plane's secret.
pub fn token(sub: &str, role: Role) -> String {
    mint_jwt(
        JWT_SECRET.as_bytes(),
        sub,
        &[role],
        Duration::from_secs(3600),
        None,
        None,
    )
    .unwrap()
}

/// Where screenshots go: `target/browser-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Removes the screenshots an earlier run of `test` left.
fn forget_screenshots(test: &str) {
    let prefix = format!("{test}-");
    for entry in std::fs::read_dir(screenshot_dir()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The README's picture of the page, `docs/operators-page.png`.
pub const README_SCREENSHOT: &str = "docs/operators-page.png";

/// With `VDI_UPDATE_README_SCREENSHOT` set, copies `shot` to
/// [`README_SCREENSHOT`] (to commit when the page changes).
pub fn keep_for_readme(shot: &Path) {
    if std::env::var_os("VDI_UPDATE_README_SCREENSHOT").is_some() {
        let to = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(README_SCREENSHOT);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(shot, &to).unwrap();
    }
}

fn axe_source() -> Option<String> {
    let path = match std::env::var_os("VDI_AXE_JS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("the target directory")
            .join("axe-core/node_modules/axe-core/axe.min.js"),
    };
    std::fs::read_to_string(path).ok()
}

/// A chromedriver process and one browser session; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    test: String,
    shots: u32,
    axe: Option<String>,
    /// chromedriver's URL, for the browser's console log.
    driver_url: String,
}

impl Browser {
    /// A headless Chromium at 1280×800 whose preferred language is `lang`
    /// (`en-US`, `vi-VN`), or `None` (after a skip line) when the browser
    /// is not installed and not required.
    pub async fn start(test: &str, lang: &str) -> Option<Self> {
        let chromium = program(
            "VDI_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let driver = program("VDI_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            assert!(
                !required(),
                "VDI_REQUIRE_BROWSER is set but chromium or chromedriver is missing (apt-get install chromium chromium-driver)"
            );
            skip_line(&format!(
                "SKIP: browser test {test}: chromium or chromedriver not found (apt-get install chromium chromium-driver; VDI_REQUIRE_BROWSER=1 makes this a failure)"
            ));
            return None;
        };
        let axe = axe_source();
        if axe.is_none() {
            assert!(
                !required(),
                "VDI_REQUIRE_BROWSER is set but axe-core is missing (npm install --prefix target/axe-core axe-core, or VDI_AXE_JS)"
            );
            skip_line(&format!(
                "SKIP: accessibility checks of {test}: axe-core not found (npm install --prefix target/axe-core axe-core; VDI_REQUIRE_BROWSER=1 makes this a failure)"
            ));
        }
        forget_screenshots(test);
        let port = free_port();
        // Its own process group, so that the browsers it starts end with it.
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,800", format!("--lang={lang}"),
                    "--no-first-run", "--no-default-browser-check",
                ],
                "prefs": {"intl.accept_languages": lang},
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        let session = tokio::time::timeout(DEADLINE, async {
            loop {
                let attempt = ClientBuilder::new(HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await;
                match attempt {
                    Ok(client) => return client,
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        let client =
            session.unwrap_or_else(|_| panic!("no WebDriver session from chromedriver: {last:?}"));
        Some(Self {
            client,
            driver,
            test: test.to_owned(),
            shots: 0,
            axe,
            driver_url: url,
        })
    }

    /// Signs in on the page shown with `jwt` and waits for the overview.
    pub async fn sign_in(&self, jwt: &str) {
        self.fill("#token", jwt).await;
        self.click("#sign-in").await;
        self.wait_for("#fig-workers").await;
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The first element matching `css`, waiting for it.
    pub async fn wait_for(&self, css: &str) -> Element {
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Ok(el) = self.client.find(Locator::Css(css)).await {
                    return el;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("{}: no element {css} before the deadline", self.test))
    }

    /// Whether an element matches `css` now.
    pub async fn has(&self, css: &str) -> bool {
        self.client.find(Locator::Css(css)).await.is_ok()
    }

    /// The text of `css` once `pred` holds for it; panics with `what`.
    pub async fn wait_text(&self, css: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut last = String::new();
        let read = tokio::time::timeout(DEADLINE, async {
            loop {
                if let Ok(el) = self.client.find(Locator::Css(css)).await
                    && let Ok(text) = el.text().await
                {
                    if pred(&text) {
                        return text;
                    }
                    last = text;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        read.unwrap_or_else(|_| panic!("{}: {what}: {css} still reads {last:?}", self.test))
    }

    /// Clicks `css`, waiting for it; again if a live refresh replaced it
    /// between finding and clicking.
    pub async fn click(&self, css: &str) {
        let mut last = None;
        let clicked = tokio::time::timeout(DEADLINE, async {
            loop {
                let clicked = match self.client.find(Locator::Css(css)).await {
                    Ok(el) => el.click().await,
                    Err(e) => Err(e),
                };
                match clicked {
                    Ok(()) => return,
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        if clicked.is_err() {
            panic!("{}: cannot click {css}: {last:?}", self.test);
        }
    }

    /// Types `text` into `css` after clearing it.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.wait_for(css).await;
        el.clear().await.unwrap();
        el.send_keys(text).await.unwrap();
    }

    /// Runs `script` in the page.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap()
    }

    /// Runs `script` (an async function body; `return` its answer) in the
    /// page and waits for its answer.
    pub async fn js_async(&self, body: &str) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1];\n(async () => {{ {body} }})().then(done, (e) => done({{error: String(e)}}));"
        );
        self.client
            .execute_async(&script, Vec::new())
            .await
            .unwrap()
    }

    /// The notice line once it shows `kind` (`ok` or `error`).
    pub async fn notice(&self, kind: &str) -> String {
        let css = format!("#notice[data-kind='{kind}']:not([hidden])");
        self.wait_text(&css, &format!("a {kind} notice"), |t| !t.is_empty())
            .await
    }

    /// The errors the browser's console logged since the last call
    /// (`SEVERE` entries: script errors, and requests answered 4xx or
    /// 5xx), read from chromedriver's log endpoint.
    pub async fn console_errors(&self) -> Vec<String> {
        let session = self.client.session_id().await.unwrap().unwrap();
        let log: Value = reqwest::Client::new()
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log["value"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no console log: {log}", self.test))
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Writes a screenshot `target/browser-screenshots/<test>-<n>-<name>.png`.
    pub async fn screenshot(&mut self, name: &str) -> PathBuf {
        self.shots += 1;
        let png = self.client.screenshot().await.unwrap();
        let path = screenshot_dir().join(format!("{}-{:02}-{name}.png", self.test, self.shots));
        std::fs::write(&path, png).unwrap();
        path
    }

    /// The axe-core check of the current view: no serious or critical
    /// violation (skipped, after a line, when axe-core is absent and not
    /// required).
    pub async fn check_accessibility(&self, view: &str) {
        let Some(axe) = &self.axe else {
            return;
        };
        self.client.execute(axe, Vec::new()).await.unwrap();
        let found = self
            .js_async(
                "const r = await axe.run(document, {resultTypes: ['violations']});
                 return r.violations
                   .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                   .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                 nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' '))}));",
            )
            .await;
        assert_eq!(
            found,
            json!([]),
            "{}: accessibility violations in {view}",
            self.test
        );
    }
}

impl Browser {
    /// Ends the browser session, then chromedriver.
    pub async fn quit(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The group is chromedriver's own (see `start`): it and the
        // browsers it started, nothing else.
        if let Ok(id) = i32::try_from(self.driver.id())
            && let Some(group) = Pid::from_raw(id)
        {
            let _ = kill_process_group(group, Signal::KILL);
        }
        let _ = self.driver.wait();
    }
}
