//! Issue 6's acceptance: a config whose sources are all hostile except one. `tradefeed fetch`
//! finishes in bounded time and memory, the good source's items are served well-formed and
//! clean, the rate-limited source is not asked again before its Retry-After, and the database
//! passes its integrity check.

mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{FeedServer, Resource, write_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A server that sends headers, then one byte a second for ever.
async fn start_slow_drip() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = socket.read(&mut buf).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\r\n<rss")
                    .await;
                while socket.write_all(b" ").await.is_ok() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    });
    addr
}

/// 64 MiB of zeros, gzip-compressed to about 64 KiB.
fn gzip_bomb() -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        encoder.write_all(&zeros).unwrap();
    }
    encoder.finish().unwrap()
}

/// The highest VmHWM (peak resident set) seen while the process runs, in KiB.
fn watch_peak_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kib);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        peak
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_over_hostile_sources_and_one_good_one_is_bounded_and_serves_the_good_items() {
    let server = FeedServer::start().await;
    let slow = start_slow_drip().await;
    let fixture = |name: &str| {
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/").to_string() + name)
            .unwrap()
    };
    server.put(
        "good.xml",
        Resource::feed(common::rss(
            "Good",
            &[
                (
                    "g1",
                    "https://good.example/1",
                    "Mexico and Canada open USMCA review talks",
                    "Negotiators met in Ottawa to start the joint review of the USMCA trade pact.",
                    "Tue, 10 Nov 2026 09:00:00 GMT",
                ),
                (
                    "g2",
                    "https://good.example/2",
                    "EU sets &lt;script&gt;alert(1)&lt;/script&gt; duties on e-bikes",
                    "&lt;p onclick=\"evil()\"&gt;Duties&lt;script&gt;alert(2)&lt;/script&gt; \
                     &lt;a href=\"javascript:alert(3)\"&gt;link&lt;/a&gt;&lt;/p&gt;",
                    "Tue, 10 Nov 2026 10:00:00 GMT",
                ),
            ],
        )),
    );
    let bomb = Resource {
        headers: vec![("Content-Encoding".into(), "gzip".into())],
        ..Resource::feed(gzip_bomb())
    };
    server.put("bomb.xml", bomb);
    server.put(
        "loop.xml",
        Resource {
            status: 301,
            headers: vec![("Location".into(), server.url("loop.xml"))],
            ..Resource::feed("")
        },
    );
    server.put(
        "busy.xml",
        Resource {
            status: 429,
            headers: vec![("Retry-After".into(), "3600".into())],
            ..Resource::feed("slow down")
        },
    );
    server.put(
        "gone.xml",
        Resource {
            status: 410,
            ..Resource::feed("gone")
        },
    );
    server.put(
        "page.html",
        Resource {
            content_type: "text/html".into(),
            ..Resource::feed(fixture("html_page.html"))
        },
    );
    server.put("garbage.bin", Resource::feed(fixture("garbage.bin")));
    server.put("laughs.xml", Resource::feed(fixture("billion_laughs.xml")));
    let hostile = [
        ("Gzip bomb", server.url("bomb.xml")),
        ("Redirect loop", server.url("loop.xml")),
        ("Rate limited", server.url("busy.xml")),
        ("Gone", server.url("gone.xml")),
        ("HTML page", server.url("page.html")),
        ("Garbage", server.url("garbage.bin")),
        ("Slow drip", format!("http://{slow}/feed.xml")),
        ("Refused", "http://127.0.0.1:9/feed.xml".to_string()),
    ];
    let mut sources: Vec<(&str, String)> = hostile.to_vec();
    // Entity bombs are read without expanding anything: the item may be stored, but small.
    sources.push(("Billion laughs", server.url("laughs.xml")));
    sources.push(("Good", server.url("good.xml")));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sources, "");

    let started = Instant::now();
    let child = common::tradefeed_command(&config, &["fetch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let peak = watch_peak_rss(child.id());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    let peak_kib = peak.join().unwrap();
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    eprintln!(
        "measured: fetch over {} hostile sources and 1 good one took {took:.1?}, peak RSS {} MiB\n{out}",
        hostile.len(),
        peak_kib / 1024
    );
    assert_eq!(output.status.code(), Some(2), "some sources failed: {out}");
    assert!(took < Duration::from_secs(30), "bounded time: {took:?}");
    assert!(peak_kib < 256 * 1024, "bounded memory: {peak_kib} KiB");
    for (name, _) in &hostile {
        assert!(
            out.lines()
                .any(|l| l.starts_with(name) && l.contains("FAILED")),
            "{name} is reported as failed: {out}"
        );
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("Good") && l.contains("new=2")),
        "{out}"
    );
    assert!(
        out.contains("retry after 20") && !out.contains("Some("),
        "the Retry-After time is shown readably: {out}"
    );

    // A second pass does not ask the rate-limited source again.
    let second = common::tradefeed_command(&config, &["fetch"])
        .output()
        .unwrap();
    let second_out = String::from_utf8_lossy(&second.stdout);
    assert!(
        second_out
            .lines()
            .any(|l| l.starts_with("Rate limited") && l.contains("skipped")),
        "{second_out}"
    );
    assert!(
        second_out
            .lines()
            .any(|l| l.starts_with("Gone") && l.contains("FAILED stopped")),
        "{second_out}"
    );
    assert_eq!(server.hits("busy.xml"), 1, "asked once, then left alone");
    assert_eq!(server.hits("gone.xml"), 1, "stopped after 410");

    let db = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let laughs: i64 = db
        .query_row(
            "SELECT coalesce(sum(length(e.title) + length(st.text) + length(e.html)), 0)
               FROM entries e JOIN sources s ON s.id = e.source_id
                              JOIN stories st ON st.id = e.story_id
              WHERE s.name = 'Billion laughs'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        laughs < 10_000,
        "entities were not expanded: {laughs} bytes stored"
    );
    drop(db);

    // The good items are served, well-formed and clean.
    let loaded = tradefeed::config::Config::load(&config).unwrap();
    let (base, cancel, handle) = common::start_daemon(loaded).await;
    for ext in ["atom", "rss", "json"] {
        let (status, body) = common::get_text(&format!("{base}/feeds/all.{ext}")).await;
        assert_eq!(status, 200);
        let feed = feed_rs::parser::parse(body.as_bytes()).unwrap();
        let titles: Vec<String> = feed
            .entries
            .iter()
            .map(|e| {
                e.title
                    .as_ref()
                    .map(|t| t.content.clone())
                    .unwrap_or_default()
            })
            .collect();
        assert!(
            titles.contains(&"Mexico and Canada open USMCA review talks".to_string()),
            "{ext}: {titles:?}"
        );
        let lower = body.to_lowercase();
        for bad in ["<script", "&lt;script", "javascript:", "onclick"] {
            assert!(!lower.contains(bad), "{ext} contains {bad}: {body}");
        }
    }
    common::stop_daemon(cancel, handle).await;
}
