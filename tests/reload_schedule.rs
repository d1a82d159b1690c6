//! A schedule changed by a reload while its source's poll is in flight (its own test binary:
//! the reload watcher and metrics are process-wide).

mod common;

use std::time::Duration;

use common::{start_daemon, stop_daemon, write_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tradefeed::config::Config;

/// A feed server that holds its one answer until `release` fires; sends `()` on each request.
async fn start_held_server(
    body: String,
    release: tokio::sync::watch::Receiver<bool>,
) -> (std::net::SocketAddr, tokio::sync::mpsc::Receiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (tx, body, mut release) = (tx.clone(), body.clone(), release.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = tx.send(()).await;
                let _ = release.wait_for(|r| *r).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
            });
        }
    });
    (addr, rx)
}

fn number(db: &std::path::Path, sql: &str) -> Option<i64> {
    let conn = rusqlite::Connection::open(db).ok()?;
    conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .ok()
        .flatten()
}

fn stored(db: &std::path::Path, sql: &str) -> Option<String> {
    let conn = rusqlite::Connection::open(db).ok()?;
    conn.query_row(sql, [], |r| r.get::<_, Option<String>>(0))
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_changed_while_its_source_is_polled_sets_the_next_due_time() {
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let feed = common::rss(
        "D",
        &[(
            "d1",
            "http://d.example/1",
            "EU raises steel tariffs",
            "Tariffs rise.",
            "Tue, 10 Nov 2026 09:00:00 GMT",
        )],
    );
    let (addr, mut requests) = start_held_server(feed, release_rx).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("D", format!("http://{addr}/d.xml"))], "");
    let yearly = std::fs::read_to_string(&path)
        .unwrap()
        .replace("schedule = \"*/5 * * * *\"", "schedule = \"0 0 1 1 *\"")
        .replace("timeout_secs = 5", "timeout_secs = 60");
    std::fs::write(&path, &yearly).unwrap();
    let (_base, cancel, handle) = start_daemon(Config::load(&path).unwrap()).await;
    tokio::time::timeout(Duration::from_secs(10), requests.recv())
        .await
        .expect("the new source is polled at once")
        .unwrap();

    // While the poll waits for its answer, the schedule becomes every minute.
    std::fs::write(
        &path,
        yearly.replace("schedule = \"0 0 1 1 *\"", "schedule = \"* * * * *\""),
    )
    .unwrap();
    let db = dir.path().join("tradefeed.db");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while stored(&db, "SELECT schedule FROM sources WHERE name = 'D'").as_deref()
        != Some("* * * * *")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the reload is applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    release_tx.send_replace(true);

    // Once the poll is stored, the source is next due within a minute, not next January.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let polled = number(&db, "SELECT count(*) FROM entries") == Some(1);
        let due = number(&db, "SELECT next_due FROM sources WHERE name = 'D'");
        let now = chrono::Utc::now().timestamp();
        if polled && due.is_some_and(|d| d <= now + 61) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "polled: {polled}, next due {:?} seconds from now",
            due.map(|d| d - now)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_daemon(cancel, handle).await;
}
