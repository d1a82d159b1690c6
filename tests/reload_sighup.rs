//! Live reload (its own test binary: signals and reload metrics are process-wide).

mod common;

use std::time::Duration;

use common::{FeedServer, get_text, start_daemon, stop_daemon, write_config};
use tradefeed::config::Config;

#[tokio::test]
async fn a_source_appended_to_the_config_is_polled_within_seconds_of_a_sighup() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    server.put("b.xml", common::trade_deal_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    // The edit below must be seen only through SIGHUP, not by the file watcher, which compares
    // size and modification time: reserve its bytes now as a comment of the same length, then
    // swap them in and put the old modification time back.
    let block = format!(
        "[[sources]]\nname = \"B\"\nurl = \"{}\"\n",
        server.url("b.xml")
    );
    let padding = format!("#{}\n", "x".repeat(block.len() - 2));
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{original}{padding}")).unwrap();
    let config = Config::load(&path).unwrap();
    let (base, cancel, handle) = start_daemon(config).await;
    server
        .wait_for_hits("a.xml", 1, Duration::from_secs(10))
        .await;

    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, format!("{original}{block}")).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    // Longer than the watcher's 2 s look plus its settle time: the edit stays unseen.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(server.hits("b.xml"), 0, "the file watcher did not reload");
    common::sighup_self();
    server
        .wait_for_hits("b.xml", 1, Duration::from_secs(10))
        .await;

    let (_, metrics) = get_text(&format!("{base}/metrics")).await;
    let ok: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tradefeed_config_reloads_total{result=\"ok\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(ok >= 1.0, "{metrics}");
    stop_daemon(cancel, handle).await;
}
