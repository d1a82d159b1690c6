//! Live reload (its own test binary: signals and reload metrics are process-wide).

mod common;

use std::time::Duration;

use common::{FeedServer, get_text, start_daemon, stop_daemon, write_config};
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
    assert!(
        metrics.contains("tradefeed_config_reloads_total{result=\"failed\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("tradefeed_config_reload_ok 0"),
        "{metrics}"
    );
    stop_daemon(cancel, handle).await;
}

/// A source name with white space at its ends is refused on reload like any invalid edit:
/// the old config stays (the new source is never polled) and the status page names the file's
/// line and key.
#[tokio::test]
async fn an_edit_adding_a_name_padded_with_spaces_is_refused_and_the_old_config_kept() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    server.put("b.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    let (base, cancel, handle) = start_daemon(config).await;
    server
        .wait_for_hits("a.xml", 1, Duration::from_secs(10))
        .await;

    let good = std::fs::read_to_string(&path).unwrap();
    let edited = format!(
        "{good}[[sources]]\nname = \"  padded  \"\nurl = \"{}\"\n",
        server.url("b.xml")
    );
    let line = edited.lines().count() - 1;
    std::fs::write(&path, &edited).unwrap();
    let page = status_page_once_a_reload_failed(&base).await;
    assert!(
        page.contains(&format!("tradefeed.toml:{line}: sources[1].name"))
            && page.contains("must not begin or end with white space"),
        "names the line and key: {page}"
    );
    let (_, metrics) = get_text(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("tradefeed_config_reload_ok 0"),
        "{metrics}"
    );
    assert!(
        page.contains("<tr><td>A</td>") && !page.contains("padded</td>"),
        "the old sources only: {page}"
    );
    assert_eq!(server.hits("b.xml"), 0, "nothing of the edit applied");
    stop_daemon(cancel, handle).await;
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
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, page) = get_text(&format!("{base}/")).await;
        assert_eq!(status, 200);
        if page.contains("Config reload failed") {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the failed reload is shown on the status page"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
