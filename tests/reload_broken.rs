//! Live reload (its own test binary: signals and reload metrics are process-wide).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{FeedServer, get_text, log_until, start_daemon, stop_daemon, write_config};
use tradefeed::config::Config;

#[tokio::test]
async fn a_broken_edit_leaves_the_daemon_serving_on_the_old_config_and_says_so() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let good = std::fs::read_to_string(&path).unwrap();
    let config = Config::load(&path).unwrap();
    let (base, cancel, handle) = start_daemon(config).await;
    server
        .wait_for_hits("a.xml", 1, Duration::from_secs(10))
        .await;

    // A misspelt key: the file watcher picks the edit up without any signal.
    std::fs::write(&path, good.replace("timeout_secs", "timout_secs")).unwrap();
    let page = status_page_once_a_reload_failed(&base).await;
    assert!(page.contains("timout_secs"), "names the key: {page}");
    let (status, _) = get_text(&format!("{base}/feeds/all.atom")).await;
    assert_eq!(status, 200, "still serving");
    let (_, metrics) = get_text(&format!("{base}/metrics")).await;
    let failed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tradefeed_config_reloads_total{result=\"failed\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(failed >= 1.0, "{metrics}");
    assert!(
        metrics.contains("tradefeed_config_reload_ok 0"),
        "{metrics}"
    );

    // Fixed, then emptied (an editor truncating the file before it writes, caught there):
    // the empty file is refused, not read as a config of no sources on the default address.
    std::fs::write(&path, &good).unwrap();
    status_page_once(&base, |page| !page.contains("Config reload failed")).await;
    // (A byte-order mark and a line break: what some editors leave of an emptied file.)
    std::fs::write(&path, "\u{feff}\n").unwrap();
    let page = status_page_once_a_reload_failed(&base).await;
    assert!(page.contains("the config file is empty"), "{page}");
    assert!(page.contains("<tr><td>A</td>"), "the source stays: {page}");
    stop_daemon(cancel, handle).await;
}

/// A source name with white space at its ends, or a URL the `url` crate reads leniently, loaded
/// before either was noticed as a likely typo, and daemons run on such configs: start-up and a
/// reload take them as read (the name trimmed, the URL as the crate reads it) and log a
/// warning naming file, line and key, rather than refusing to start or to reload. Through the
/// real binary, whose log the test reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_adding_a_name_padded_with_spaces_is_taken_and_the_log_warns_of_it() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    server.put("b.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let typo = server.url("a.xml").replacen("://", ":///", 1);
    let (path, port) = common::write_config_on_free_port(dir.path(), &[("A", typo.clone())], "");
    let text = std::fs::read_to_string(&path).unwrap();
    let line_of = |text: &str, needle: &str| {
        1 + text
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("{needle:?} in {text}"))
    };
    let url_warning = format!(
        "{}:{}: sources[0].url: \"{typo}\" has no host between \"//\" and the next slash; read \
         as \"{}\"",
        path.display(),
        line_of(&text, &typo),
        server.url("a.xml")
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tradefeed"))
        .args(["--config", path.to_str().unwrap(), "run"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut until = |needle: &str| log_until(&mut lines, needle);

    let log = until("tradefeed started");
    assert!(log.iter().any(|l| l.contains(&url_warning)), "{log:#?}");
    server
        .wait_for_hits("a.xml", 1, Duration::from_secs(10))
        .await;

    // Through the file watcher (the size changes).
    let edited = format!(
        "{text}[[sources]]\nname = \"  padded  \"\nurl = \"{}\"\n",
        server.url("b.xml")
    );
    std::fs::write(&path, &edited).unwrap();
    let log = until("config reloaded");
    let name_warning = format!(
        "{}:{}: sources[1].name: \"  padded  \" has white space at either end; read as \
         \"padded\"",
        path.display(),
        line_of(&edited, "  padded  ")
    );
    assert!(log.iter().any(|l| l.contains(&name_warning)), "{log:#?}");
    assert!(
        log.iter().any(|l| l.contains(&url_warning)),
        "a reload says again what is still there: {log:#?}"
    );
    server
        .wait_for_hits("b.xml", 1, Duration::from_secs(10))
        .await;
    let (_, metrics) = get_text(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert!(
        metrics.contains("tradefeed_config_reload_ok 1"),
        "{metrics}"
    );
    let (_, page) = get_text(&format!("http://127.0.0.1:{port}/")).await;
    assert!(
        page.contains("<tr><td>padded</td>") && !page.contains("Config reload failed"),
        "the source under its trimmed name: {page}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    until("stopped");
    assert!(child.wait().unwrap().success());
}

/// A valid edit that the database refuses to record (here a trigger refuses new source rows)
/// applies nothing, and the status page says so as it does for an invalid file.
#[tokio::test]
async fn an_edit_the_database_cannot_record_is_refused_and_shown() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    let db = config.storage.path.clone();
    let (base, cancel, handle) = start_daemon(config).await;
    server
        .wait_for_hits("a.xml", 1, Duration::from_secs(10))
        .await;
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER no_new_sources BEFORE INSERT ON sources
             BEGIN SELECT RAISE(ABORT, 'no room for new sources'); END;",
        )
        .unwrap();

    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "[[sources]]\nname = \"B\"\nurl = \"{}\"\n",
        server.url("b.xml")
    ));
    std::fs::write(&path, text).unwrap();
    let page = status_page_once_a_reload_failed(&base).await;
    assert!(page.contains("cannot record the sources"), "{page}");
    assert!(page.contains("no room for new sources"), "{page}");
    assert_eq!(server.hits("b.xml"), 0, "nothing of the edit applied");

    // Once the database takes the rows again, the reload is tried again by itself (within
    // 10 s), with no further edit or signal.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TRIGGER no_new_sources")
        .unwrap();
    server
        .wait_for_hits("b.xml", 1, Duration::from_secs(20))
        .await;
    status_page_once(&base, |page| !page.contains("Config reload failed")).await;
    stop_daemon(cancel, handle).await;
}

/// A config file gone (deleted, or moved away while being replaced) is a failed reload whose
/// message names the cause once: error types that print their cause in their own message were
/// shown with it twice ("No such file or directory (os error 2): No such file or ...").
#[tokio::test]
async fn a_deleted_config_is_a_failed_reload_that_names_its_cause_once() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    let (base, cancel, handle) = start_daemon(config).await;
    server
        .wait_for_hits("a.xml", 1, Duration::from_secs(10))
        .await;
    std::fs::remove_file(&path).unwrap();
    let page = status_page_once_a_reload_failed(&base).await;
    assert!(page.contains("cannot read config"), "{page}");
    assert_eq!(page.matches("(os error 2)").count(), 1, "{page}");
    stop_daemon(cancel, handle).await;
}

/// The status page once it shows a failed reload (within 15 s; the daemon looks at the file
/// every 2 s).
async fn status_page_once_a_reload_failed(base: &str) -> String {
    status_page_once(base, |page| page.contains("Config reload failed")).await
}

/// The status page once `wanted` holds for it (within 15 s).
async fn status_page_once(base: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, page) = get_text(&format!("{base}/")).await;
        assert_eq!(status, 200);
        if wanted(&page) {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the status page never showed what was waited for: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
