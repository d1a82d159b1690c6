//! The real binary under signals: SIGTERM during polling exits 0 quickly with the database intact.
//! And reloads that move HTTP to a new `[server] listen`, or cannot.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::log_until;

/// Sends SIGTERM to the daemon.
fn sigterm(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Starts `tradefeed run` on `config` with an info log going to `stderr`.
fn run_daemon(config: &std::path::Path, stderr: Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_tradefeed"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Raises the test config's request timeout from 5 s to 60 s, so that only shutdown can end
/// a poll of a slow server within a test.
fn with_a_minute_long_timeout(config: &std::path::Path) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(
        config,
        text.replace("timeout_secs = 5", "timeout_secs = 60"),
    )
    .unwrap();
}

/// A server that answers every request with headers and then one byte per second, forever:
/// polls against it stay in flight until cancelled.
async fn start_slow_server() -> (std::net::SocketAddr, tokio::sync::mpsc::Receiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = tx.send(()).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: 100000\r\n\r\n<rss")
                    .await;
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if socket.write_all(b" ").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_polling_exits_zero_within_seconds_with_the_database_intact() {
    let (addr, mut requests) = start_slow_server().await;
    let good = common::FeedServer::start().await;
    good.put(
        "good.xml",
        common::Resource::feed(common::rss(
            "G",
            &[(
                "g1",
                "http://g.example/1",
                "Japan and EU cut car tariffs",
                "Tariffs fall under the EPA.",
                "Tue, 10 Nov 2026 09:00:00 GMT",
            )],
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(
        dir.path(),
        &[
            ("Slow", format!("http://{addr}/feed.xml")),
            ("Good", good.url("good.xml")),
        ],
        "",
    );
    with_a_minute_long_timeout(&config);

    let mut child = run_daemon(&config, Stdio::piped());
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });

    // Wait until the slow poll is in flight and the good source is stored.
    tokio::time::timeout(Duration::from_secs(20), requests.recv())
        .await
        .expect("the daemon polls the slow source")
        .unwrap();
    let mut log = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines_rx.recv().await {
            let done = line.contains("polled") && line.contains("Good");
            log.push(line);
            if done {
                break;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the good source is polled; log so far: {log:#?}"));

    sigterm(&child);
    let asked = Instant::now();
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    let took = asked.elapsed();
    assert!(exit.success(), "exit status {exit:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");

    let db = dir.path().join("tradefeed.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let entries: i64 = conn
        .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
        .unwrap();
    assert_eq!(entries, 1, "the good source's entry was committed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_every_poll_slot_is_busy_and_jobs_wait_exits_within_seconds() {
    // One poll slot, three slow sources: one poll holds the slot while the dispatcher waits
    // for it with the next job in hand and another queued. Shutdown must not wait for the
    // slot (that poll may run for its whole 60 s timeout) nor start the waiting jobs.
    let (addr, mut requests) = start_slow_server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(
        dir.path(),
        &[
            ("Slow1", format!("http://{addr}/1.xml")),
            ("Slow2", format!("http://{addr}/2.xml")),
            ("Slow3", format!("http://{addr}/3.xml")),
        ],
        "concurrency = 1",
    );
    with_a_minute_long_timeout(&config);

    let mut child = run_daemon(&config, Stdio::null());
    tokio::time::timeout(Duration::from_secs(20), requests.recv())
        .await
        .expect("the daemon polls a slow source")
        .unwrap();

    sigterm(&child);
    let asked = Instant::now();
    let exit = tokio::task::spawn_blocking(move || {
        // Bounded wait: a hung daemon is killed so the test fails instead of hanging.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    let took = asked.elapsed();
    let exit = exit.unwrap_or_else(|| panic!("still running {took:?} after SIGTERM"));
    assert!(exit.success(), "exit status {exit:?}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        requests.try_recv().is_err(),
        "no queued poll started after the shutdown request"
    );
}

/// A poll still in flight when the shutdown's grace for polls runs out is cut off: that is no
/// failure of its source and leaves no trace in the database. Not a `timeout` in the fetch
/// log, no failure counted, no backoff: the source keeps its state from before the poll
/// (here: never polled) and the due time the poll found, so the next start polls it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_cut_off_by_shutdown_is_no_failure_and_changes_nothing_stored() {
    let (addr, mut requests) = start_slow_server().await;
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(
        dir.path(),
        &[("Slow", format!("http://{addr}/feed.xml"))],
        "",
    );
    with_a_minute_long_timeout(&config);

    let mut child = run_daemon(&config, Stdio::null());
    tokio::time::timeout(Duration::from_secs(20), requests.recv())
        .await
        .expect("the daemon polls the slow source")
        .unwrap();
    let db = dir.path().join("tradefeed.db");
    let due_before: Option<i64> = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT next_due FROM sources WHERE name = 'Slow'",
            [],
            |r| r.get(0),
        )
        .unwrap();

    sigterm(&child);
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "exit status {exit:?}");

    let conn = rusqlite::Connection::open(&db).unwrap();
    let (failures, outcome, error, next_due): (i64, Option<String>, Option<String>, Option<i64>) =
        conn.query_row(
            "SELECT consecutive_failures, last_outcome, last_error, next_due
             FROM sources WHERE name = 'Slow'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!(failures, 0, "a cut-off poll is not a failure");
    assert_eq!(outcome, None, "the source was never polled to the end");
    assert_eq!(error, None);
    assert_eq!(next_due, due_before, "no backoff: due as before the poll");
    let logged: Vec<String> = conn
        .prepare("SELECT outcome FROM fetches")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(logged.is_empty(), "nothing in the fetch log: {logged:?}");
}

/// `[storage] path` changes only on restart, and a reload that asks for another says so; one
/// that asks again for what is in use (a change undone) says nothing, although the config in
/// force before it asked for another. (`[server] listen` moves on reload: see the tests
/// below.)
#[test]
fn reloads_warn_about_a_database_change_only_while_it_differs_from_what_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _port) = common::write_config_on_free_port(dir.path(), &[], "");
    let original = std::fs::read_to_string(&config).unwrap();
    let changed = common::replaced(&original, "path = \"tradefeed.db\"", "path = \"other.db\"");
    // The daemon reads its config through a symlinked folder, as `/etc/tradefeed` → a
    // mounted volume: the database path it opens is not the file's real path, and a reload
    // must still see the one asked for as the one in use.
    let links = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(dir.path(), links.path().join("etc")).unwrap();
    let linked_config = links.path().join("etc").join(config.file_name().unwrap());
    let mut child = run_daemon(&linked_config, Stdio::piped());
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut until = |needle: &str| log_until(&mut lines, needle);
    // Through the file watcher alone: a SIGHUP as well could reload one edit twice, and the
    // second reload's warnings would be read as the next edit's. The size changes each time,
    // so the watcher cannot miss an edit.
    let reload = |text: &str| std::fs::write(&config, text).unwrap();
    until("tradefeed started");

    reload(&changed);
    let log = until("config reloaded");
    let warned = |what: &str| log.iter().any(|l| l.contains(what));
    assert!(warned("[storage] path changes only on restart"), "{log:#?}");

    reload(&original);
    let log = until("config reloaded");
    assert!(
        !log.iter().any(|l| l.contains("only on restart")),
        "{log:#?}"
    );

    sigterm(&child);
    until("stopped");
    assert!(child.wait().unwrap().success());
}

/// Sends SIGHUP to the daemon: a reload.
fn sighup(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits until `addr` refuses connections, or panics after `limit`: a listener that stops
/// accepting is closed by its serve loop as soon as it is told, not within the reload.
async fn refused_within(addr: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
            outcome => assert!(
                started.elapsed() < limit,
                "{addr} still takes connections after {limit:?}: {outcome:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `url` answers 200, or panics after `limit`.
async fn answers_within(url: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let outcome = reqwest::get(url).await.map(|r| r.status());
        if matches!(outcome, Ok(s) if s.is_success()) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{url} did not answer within {limit:?}: {outcome:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A reload that changes `[server] listen` moves the HTTP server there, as nginx and Caddy
/// do: the new address serves the health check and the feeds, the old one refuses new
/// connections, and `tradefeed health`, which probes the address the config names, finds the
/// daemon healthy (it probed an address nobody served while the daemon kept the old one).
/// Shutdown then stops the listener in use. In-process, so that what is still listening
/// after `run` returns is seen; reloaded by the file watcher (no signal to this process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_listen_serves_on_the_new_address_and_health_finds_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, port) = common::write_config_on_free_port(dir.path(), &[], "");
    let config = tradefeed::config::Config::load(&path).unwrap();
    let (cancel, handle) = common::start_daemon_on_configured_listen(config).await;
    let old = format!("127.0.0.1:{port}");
    answers_within(&format!("http://{old}/healthz"), Duration::from_secs(10)).await;

    let new = format!("127.0.0.1:{}", common::free_port());
    let text = std::fs::read_to_string(&path).unwrap();
    let moved = common::replaced(
        &text,
        &format!("listen = \"{old}\""),
        &format!("listen = \"{new}\""),
    );
    std::fs::write(&path, moved).unwrap();
    // The watcher looks every 2 s and lets an edit settle for 0.5 s.
    answers_within(&format!("http://{new}/healthz"), Duration::from_secs(15)).await;
    let (status, feed) = common::get_text(&format!("http://{new}/feeds/all.atom")).await;
    assert_eq!(status, 200, "{feed}");
    assert!(feed.contains("<feed"), "{feed}");
    refused_within(&old, Duration::from_secs(5)).await;

    let health = common::tradefeed_command(&path, &["health", "--timeout", "5"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&health.stdout);
    assert_eq!(health.status.code(), Some(0), "{said}");
    assert!(
        said.contains(&format!("healthy: http://{new}/healthz")),
        "{said}"
    );

    // Shutdown stops the listener in use now, not only the one `run` was given.
    common::stop_daemon(cancel, handle).await;
    refused_within(&new, Duration::from_secs(5)).await;
}

/// A reload that moves `[server] listen` back to the address just left, seconds after the
/// move (while the old listener's requests could still be finishing: each connection has
/// 10 s), serves there again: the daemon reports no bind failure for an address it held
/// itself, neither on the status page nor in `tradefeed_listen_bind_failed`, and the address
/// it moved away from refuses connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_moving_listen_back_to_the_address_just_left_serves_there_again() {
    let dir = tempfile::tempdir().unwrap();
    let (path, port) = common::write_config_on_free_port(dir.path(), &[], "");
    let config = tradefeed::config::Config::load(&path).unwrap();
    let (cancel, handle) = common::start_daemon_on_configured_listen(config).await;
    let first = format!("127.0.0.1:{port}");
    answers_within(&format!("http://{first}/healthz"), Duration::from_secs(10)).await;
    let text = std::fs::read_to_string(&path).unwrap();
    let listening = |addr: &str| {
        common::replaced(
            &text,
            &format!("listen = \"{first}\""),
            &format!("listen = \"{addr}\""),
        )
    };

    let second = format!("127.0.0.1:{}", common::free_port());
    std::fs::write(&path, listening(&second)).unwrap();
    // The watcher looks every 2 s and lets an edit settle for 0.5 s.
    answers_within(&format!("http://{second}/healthz"), Duration::from_secs(15)).await;
    std::fs::write(&path, listening(&first)).unwrap();
    answers_within(&format!("http://{first}/healthz"), Duration::from_secs(15)).await;
    refused_within(&second, Duration::from_secs(5)).await;

    let (status, page) = common::get_text(&format!("http://{first}/")).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        !page.contains("Not serving where the config says"),
        "{page}"
    );
    let (_, metrics) = common::get_text(&format!("http://{first}/metrics")).await;
    assert!(
        metrics.contains("tradefeed_listen_bind_failed 0"),
        "{metrics}"
    );
    common::stop_daemon(cancel, handle).await;
    refused_within(&first, Duration::from_secs(5)).await;
}

/// A reload whose new `[server] listen` cannot be bound (here a port the test holds) leaves
/// the daemon serving on the old address, logs an error naming both addresses and the cause,
/// and applies the rest of the config; the next reload tries the address again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_to_a_listen_address_in_use_keeps_the_old_one_and_logs_why() {
    let dir = tempfile::tempdir().unwrap();
    let (config, port) = common::write_config_on_free_port(dir.path(), &[], "");
    let mut child = run_daemon(&config, Stdio::piped());
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut until = |needle: &str| log_until(&mut lines, needle);
    until("tradefeed started");
    let old = format!("127.0.0.1:{port}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let new = taken.local_addr().unwrap().to_string();
    let text = std::fs::read_to_string(&config).unwrap();
    let moved = common::replaced(
        &text,
        &format!("listen = \"{old}\""),
        &format!("listen = \"{new}\"\ntitle = \"Renamed on reload\""),
    );
    std::fs::write(&config, moved).unwrap();
    sighup(&child);
    let log = until("config reloaded");
    let refused: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("cannot bind the new [server] listen"))
        .collect();
    assert_eq!(refused.len(), 1, "logged once: {log:#?}");
    assert!(
        refused[0].contains("ERROR")
            && refused[0].contains(&format!("listen={new}"))
            && refused[0].contains(&format!("in_use={old}"))
            && refused[0].contains("Address already in use"),
        "both addresses and the cause: {log:#?}"
    );

    // Still served where it was, with the rest of the reload applied.
    assert_eq!(
        common::get_text(&format!("http://{old}/healthz")).await.0,
        200
    );
    let (status, feed) = common::get_text(&format!("http://{old}/feeds/all.atom")).await;
    assert_eq!(status, 200, "{feed}");
    assert!(feed.contains("Renamed on reload"), "{feed}");
    // Shown where the operator looks, not only in the log.
    let (_, page) = common::get_text(&format!("http://{old}/")).await;
    assert!(
        page.contains("Not serving where the config says")
            && page.contains(&format!("cannot bind [server] listen = {new}"))
            && page.contains(&format!("still serving HTTP on {old}")),
        "{page}"
    );
    let (_, metrics) = common::get_text(&format!("http://{old}/metrics")).await;
    assert!(
        metrics.contains("tradefeed_listen_bind_failed 1"),
        "{metrics}"
    );

    // Once the address is free, the next reload moves there.
    drop(taken);
    sighup(&child);
    let log = until("config reloaded");
    assert!(
        log.iter()
            .any(|l| l.contains("serving HTTP on the new address")),
        "{log:#?}"
    );
    assert_eq!(
        common::get_text(&format!("http://{new}/healthz")).await.0,
        200
    );
    refused_within(&old, Duration::from_secs(5)).await;
    let (_, page) = common::get_text(&format!("http://{new}/")).await;
    assert!(
        !page.contains("Not serving where the config says"),
        "{page}"
    );
    let (_, metrics) = common::get_text(&format!("http://{new}/metrics")).await;
    assert!(
        metrics.contains("tradefeed_listen_bind_failed 0"),
        "{metrics}"
    );

    sigterm(&child);
    until("stopped");
    assert!(child.wait().unwrap().success());
}

/// Two sources naming one feed are legal but usually a mistake, and the feed is polled once
/// for each: as `check` does, the daemon's start-up log warns of them, and so does a reload
/// of a config that has them; one without them gets no word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_and_reload_warn_of_sources_that_share_a_url() {
    let server = common::FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    server.put("b.xml", common::trade_deal_feed());
    server.put("c.xml", common::trade_deal_feed());
    let dir = tempfile::tempdir().unwrap();
    let (config, _port) = common::write_config_on_free_port(
        dir.path(),
        &[
            ("A", server.url("a.xml")),
            ("B", server.url("b.xml")),
            ("A again", server.url("a.xml")),
        ],
        "",
    );
    let shared = std::fs::read_to_string(&config).unwrap();
    let mut child = run_daemon(&config, Stdio::piped());
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut until = |needle: &str| log_until(&mut lines, needle);
    let warning = |names: &str, path: &str| {
        format!(
            "sources {names} have the same URL {}: it is polled once for each",
            server.url(path)
        )
    };
    // Through the file watcher alone (see the test above); each edit changes the size.
    let reload = |text: &str| std::fs::write(&config, text).unwrap();

    let log = until("tradefeed started");
    assert!(
        log.iter()
            .any(|l| l.contains(&warning("A, A again", "a.xml"))),
        "{log:#?}"
    );

    let apart = common::replaced(
        &shared,
        &format!("name = \"A again\"\nurl = \"{}\"", server.url("a.xml")),
        &format!("name = \"C\"\nurl = \"{}\"", server.url("c.xml")),
    );
    reload(&apart);
    let log = until("config reloaded");
    assert!(
        !log.iter().any(|l| l.contains("have the same URL")),
        "{log:#?}"
    );

    let b_twice = common::replaced(&apart, &server.url("c.xml"), &server.url("b.xml"));
    reload(&b_twice);
    let log = until("config reloaded");
    assert!(
        log.iter().any(|l| l.contains(&warning("B, C", "b.xml"))),
        "{log:#?}"
    );

    sigterm(&child);
    until("stopped");
    assert!(child.wait().unwrap().success());
}
