//! Tracking pixels (1×1 images such as FeedBurner's `~r/` beacons) are not passed on to the
//! readers of the served feeds; real images are. Real feed server on 127.0.0.1, real temp
//! database, the daemon asked over HTTP.

mod common;

use common::{FeedServer, Resource, fetch_pass, rss, write_config};
use tradefeed::config::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_feeds_carry_no_tracking_pixels_but_keep_real_images() {
    let server = FeedServer::start().await;
    let html = "&lt;p&gt;The EU set anti-dumping duties on steel.&lt;/p&gt;\
                &lt;img src=\"https://cdn.example/chart.png\" width=\"600\" height=\"400\"&gt;\
                &lt;img src=\"http://feeds.feedburner.com/~r/Trade/~4/kTeeGj4FnwU\" \
                height=\"1\" width=\"1\"/&gt;";
    server.put(
        "pixel.xml",
        Resource::feed(rss(
            "Pixels",
            &[(
                "p-1",
                "https://news.example/steel",
                "EU sets steel duties",
                html,
                "Fri, 27 Nov 2026 10:00:00 GMT",
            )],
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Pixels", server.url("pixel.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);

    let (base, cancel, handle) = common::start_daemon(config).await;
    for format in ["atom", "rss", "json"] {
        let (status, body) = common::get_text(&format!("{base}/feeds/all.{format}")).await;
        assert_eq!(status, 200, "{format}");
        assert!(body.contains("cdn.example/chart.png"), "{format}: {body}");
        assert!(body.contains("anti-dumping duties"), "{format}: {body}");
        assert!(
            !body.contains("feedburner"),
            "{format} passes the pixel on: {body}"
        );
    }
    common::stop_daemon(cancel, handle).await;
}
