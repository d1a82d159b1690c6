//! Live reload (its own test binary: signals and reload metrics are process-wide).

mod common;

use std::time::Duration;

use common::{FeedServer, get_text, start_daemon, stop_daemon, write_config};
use tradefeed::config::Config;

/// `tradefeed_config_reloads_total{result="ok"}`.
async fn reloads_ok(base: &str) -> f64 {
    let (_, metrics) = get_text(&format!("{base}/metrics")).await;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("tradefeed_config_reloads_total{result=\"ok\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_sighup_reloads_and_a_source_appended_to_the_config_is_polled_within_seconds() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    server.put("b.xml", common::trade_deal_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let original = std::fs::read_to_string(&path).unwrap();
    let config = Config::load(&path).unwrap();
    let (base, cancel, handle) = start_daemon(config).await;
    server
        .wait_for_hits("a.xml", 1, Duration::from_secs(10))
        .await;

    // A SIGHUP reloads by itself, the files unchanged (the file watcher sees every edit, so
    // this is how the signal is told from it).
    assert_eq!(reloads_ok(&base).await, 0.0);
    common::sighup_self();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while reloads_ok(&base).await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the SIGHUP reloaded nothing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An appended source, with a SIGHUP at once: polled within seconds.
    let block = format!(
        "[[sources]]\nname = \"B\"\nurl = \"{}\"\n",
        server.url("b.xml")
    );
    std::fs::write(&path, format!("{original}{block}")).unwrap();
    common::sighup_self();
    server
        .wait_for_hits("b.xml", 1, Duration::from_secs(10))
        .await;
    assert!(reloads_ok(&base).await >= 2.0);
    stop_daemon(cancel, handle).await;
}
