//! The status page as a person sees it: rendered by a real headless Chromium against a daemon
//! started in-process, with no console errors and no Content-Security-Policy violations.
//!
//! Needs Debian's `chromium` (CI installs it, see `.ci/run`); without it the tests print a
//! notice and pass.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{FeedServer, Resource, rss, write_config};
use tokio_util::sync::CancellationToken;
use tradefeed::app::{self, FetchPassResult, Pipeline};
use tradefeed::config::Config;

const DATE: &str = "Tue, 10 Nov 2026 09:00:00 GMT";
/// Longest a Chromium run may take before the test gives up on it.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(90);

fn chromium() -> Option<PathBuf> {
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        eprintln!(
            "notice: chromium not found (Debian package `chromium`); skipping the browser check"
        );
    }
    found
}

/// What Chromium printed for one page.
struct Rendered {
    dom: String,
    log: String,
}

/// Loads `url` in headless Chromium and returns the serialized DOM and Chromium's log.
/// Blocking: call it from `spawn_blocking` so the in-process daemon keeps serving.
fn render(browser: &Path, url: &str, scratch: &Path) -> Rendered {
    let profile = tempfile::tempdir_in(scratch).unwrap();
    let dom_path = scratch.join("dom.html");
    let log_path = scratch.join("chromium.log");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom_path).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("chromium starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {BROWSER_TIMEOUT:?}; log:\n{}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let log = String::from_utf8_lossy(&std::fs::read(&log_path).unwrap()).into_owned();
    assert!(status.success(), "chromium failed ({status}):\n{log}");
    Rendered {
        dom: String::from_utf8_lossy(&std::fs::read(&dom_path).unwrap()).into_owned(),
        log,
    }
}

/// Log lines that are the page's console output: script errors, CSP violations, warnings.
/// (Chromium also logs its own D-Bus and GPU complaints in a container; those are not ours.)
fn console_problems(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("CONSOLE")
                || l.contains("Uncaught")
                || l.contains("Content Security Policy")
                || l.contains("Refused to")
        })
        .collect()
}

async fn fetch_pass(config: &Config) {
    let pipeline = Pipeline::start(config).await.unwrap();
    let results = app::fetch_once(&pipeline, config.sources.clone(), 8).await;
    pipeline.store.close().await;
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, FetchPassResult::Polled(_))),
        "both sources were polled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_renders_every_source_and_story_without_console_errors() {
    let Some(browser) = chromium() else { return };
    let server = FeedServer::start().await;
    server.put(
        "good.xml",
        Resource::feed(rss(
            "Wire",
            &[
                (
                    "w1",
                    "http://wire.example/steel",
                    "US raises steel tariffs to 50 percent",
                    "The United States doubled Section 232 tariffs on imported steel and \
                     aluminium, the trade representative said, drawing retaliation threats.",
                    DATE,
                ),
                (
                    "w2",
                    "http://wire.example/eu-japan",
                    "EU &amp; Japan agree to cut tariffs on cars and wine",
                    "The European Union and Japan agreed a trade deal lowering import duties \
                     on cars and wine, the WTO-compatible agreement enters into force in 2027.",
                    DATE,
                ),
            ],
        )),
    );
    // "missing.xml" is never put, so the server answers 404.
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("Good Wire", server.url("good.xml")),
            ("Broken <Feed> & Co", server.url("missing.xml")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    fetch_pass(&config).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let daemon = tokio::spawn(app::run(config, listener, cancel.clone()));

    let scratch = dir.path().to_path_buf();
    let url = format!("http://{addr}/");
    let page = tokio::task::spawn_blocking(move || render(&browser, &url, &scratch))
        .await
        .unwrap();

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), daemon)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    let dom = &page.dom;
    for wanted in [
        "<h1>",
        // Source names, escaped as text (the serializer writes < and & back as entities).
        "Good Wire",
        "Broken &lt;Feed&gt; &amp; Co",
        // The failing source is flagged.
        "failing (",
        // Stories of the trade-policy topic.
        "US raises steel tariffs to 50 percent",
        "EU &amp; Japan agree to cut tariffs on cars and wine",
    ] {
        assert!(dom.contains(wanted), "the page shows {wanted:?}:\n{dom}");
    }
    assert!(
        !dom.contains("<feed>"),
        "a source name never becomes markup"
    );
    assert_eq!(
        console_problems(&page.log),
        Vec::<&str>::new(),
        "chromium's console"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_check_catches_a_script_blocked_by_the_status_page_policy() {
    let Some(browser) = chromium() else { return };
    let server = FeedServer::start().await;
    // The status page's own policy, on a page that breaks it: proof the check above can fail.
    let mut page = Resource::feed(
        "<!DOCTYPE html><html><head><title>t</title></head><body><p>hello</p>\
         <script>document.title = 'ran';</script></body></html>",
    );
    page.content_type = "text/html; charset=utf-8".into();
    page.headers.push((
        "Content-Security-Policy".into(),
        tradefeed::http::STATUS_PAGE_POLICY.into(),
    ));
    server.put("bad.html", page);
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().to_path_buf();
    let url = server.url("bad.html");
    let rendered = tokio::task::spawn_blocking(move || render(&browser, &url, &scratch))
        .await
        .unwrap();
    assert!(rendered.dom.contains("<p>hello</p>"), "{}", rendered.dom);
    assert!(
        !rendered.dom.contains("<title>ran</title>"),
        "the script was blocked"
    );
    let problems = console_problems(&rendered.log);
    assert!(
        problems
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "the violation is reported: {problems:?}\n{}",
        rendered.log
    );
}
