//! A database locked by another program while the daemon runs: the poll's write fails with a
//! logged error, serving goes on, and the poll is retried (and its items stored) once the lock
//! is gone.

mod common;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// A feed server that tells the test about each request and answers it only when told to.
async fn start_gated_server(
    body: String,
) -> (std::net::SocketAddr, mpsc::Receiver<oneshot::Sender<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let (go, wait) = oneshot::channel();
                if tx.send(go).await.is_err() {
                    return;
                }
                let _ = wait.await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (addr, rx)
}

async fn until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_lock_held_by_another_program_delays_the_poll_while_serving_goes_on() {
    let feed = common::rss(
        "Locked",
        &[(
            "l1",
            "https://locked.example/1",
            "India and EFTA trade pact enters into force",
            "The trade and economic partnership agreement removes tariffs on most goods.",
            "Tue, 10 Nov 2026 09:00:00 GMT",
        )],
    );
    let (addr, mut requests) = start_gated_server(feed).await;
    let dir = tempfile::tempdir().unwrap();
    let config_path = common::write_config(
        dir.path(),
        &[("LockedSource", format!("http://{addr}/feed.xml"))],
        "backoff_base_secs = 1\n",
    );
    let config = tradefeed::config::Config::load(&config_path).unwrap();
    let (base, cancel, handle) = common::start_daemon(config).await;

    // The daemon is polling; take SQLite's write lock before letting the answer through.
    let first = tokio::time::timeout(Duration::from_secs(20), requests.recv())
        .await
        .expect("the daemon polls")
        .unwrap();
    let db = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    first.send(()).unwrap();

    // The write fails after SQLite's busy timeout; the failure is counted, serving goes on.
    until("the failed write is counted", async || {
        let (_, metrics) = common::get_text(&format!("{base}/metrics")).await;
        metrics.contains("tradefeed_fetches_total{source=\"LockedSource\",outcome=\"store\"}")
    })
    .await;
    let (status, _) = common::get_text(&format!("{base}/feeds/all.json")).await;
    assert_eq!(status, 200, "serving goes on while the database is locked");
    let (status, _) = common::get_text(&format!("{base}/")).await;
    assert_eq!(status, 200);

    // Release the lock; the retry (after the backoff) stores the item.
    db.execute_batch("ROLLBACK").unwrap();
    drop(db);
    let retry = tokio::time::timeout(Duration::from_secs(20), requests.recv())
        .await
        .expect("the poll is retried")
        .unwrap();
    retry.send(()).unwrap();
    until("the item is served", async || {
        let (_, body) = common::get_text(&format!("{base}/feeds/all.json")).await;
        body.contains("India and EFTA trade pact enters into force")
    })
    .await;
    common::stop_daemon(cancel, handle).await;
}
