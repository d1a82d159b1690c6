//! A schedule or URL changed by a reload while its source's poll is in flight, or a URL
//! changed in the database behind the daemon's back (its own test binary: the reload watcher
//! and metrics are process-wide).

mod common;

use std::time::Duration;

use common::{replaced, start_daemon, stop_daemon, write_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tradefeed::config::Config;

/// A whole 200 answer carrying `body` as RSS, with `headers` (each ending in CRLF) added.
fn rss_answer(body: &str, headers: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n{headers}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A server that answers every request with `response` (a whole HTTP response), once
/// `release` fires if given; sends the text of each request it reads.
async fn start_server(
    response: String,
    release: Option<tokio::sync::watch::Receiver<bool>>,
) -> (std::net::SocketAddr, tokio::sync::mpsc::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (tx, response, release) = (tx.clone(), response.clone(), release.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let _ = tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .await;
                if let Some(mut release) = release {
                    let _ = release.wait_for(|r| *r).await;
                }
                let _ = socket.write_all(response.as_bytes()).await;
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
    let (addr, mut requests) = start_server(rss_answer(&feed, ""), Some(release_rx)).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/d.xml");
    let (path, yearly, cancel, handle) =
        start_with_yearly_d(dir.path(), &url, "", &mut requests).await;

    // While the poll waits for its answer, the schedule becomes every minute.
    std::fs::write(
        &path,
        replaced(
            &yearly,
            "schedule = \"0 0 1 1 *\"",
            "schedule = \"* * * * *\"",
        ),
    )
    .unwrap();
    let db = dir.path().join("tradefeed.db");
    wait_for_text(
        &db,
        "SELECT schedule FROM sources WHERE name = 'D'",
        "* * * * *",
    )
    .await;
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

/// A one-item feed of source `name` (guid `{name}1`).
fn one_item_feed(name: &str) -> String {
    common::rss(
        name,
        &[(
            &format!("{name}1"),
            &format!("http://{name}.example/1"),
            &format!("{name}: EU raises steel tariffs"),
            "Tariffs rise.",
            "Tue, 10 Nov 2026 09:00:00 GMT",
        )],
    )
}

/// Starts the daemon with source `D` at `old` on a yearly schedule, waits for the poll of
/// `old` to begin, then reloads the config with `D` at `new` and waits until the reload is
/// stored. Returns what `stop_daemon` needs and the config's folder.
async fn reload_a_new_url_during_a_poll(
    old: std::net::SocketAddr,
    old_requests: &mut tokio::sync::mpsc::Receiver<String>,
    new: std::net::SocketAddr,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let old_url = format!("http://{old}/d.xml");
    let (path, yearly, cancel, handle) =
        start_with_yearly_d(dir.path(), &old_url, "", old_requests).await;

    // While the poll of the old URL waits for its answer, the source gets a new URL.
    let new_url = format!("http://{new}/d.xml");
    std::fs::write(&path, replaced(&yearly, &old_url, &new_url)).unwrap();
    let db = dir.path().join("tradefeed.db");
    wait_for_text(&db, "SELECT url FROM sources WHERE name = 'D'", &new_url).await;
    (cancel, handle, dir)
}

/// Writes a config with source `D` at `url` on a yearly schedule (no poll by the schedule
/// while a test runs), a 60 s timeout (a held answer is not given up on) and `defaults` added,
/// starts the daemon and waits for D's first poll to reach its server. Returns the config's
/// path and text, and what `stop_daemon` needs.
async fn start_with_yearly_d(
    dir: &std::path::Path,
    url: &str,
    defaults: &str,
    requests: &mut tokio::sync::mpsc::Receiver<String>,
) -> (
    std::path::PathBuf,
    String,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let path = write_config(dir, &[("D", url.to_string())], defaults);
    let yearly = replaced(
        &std::fs::read_to_string(&path).unwrap(),
        "schedule = \"*/5 * * * *\"",
        "schedule = \"0 0 1 1 *\"",
    );
    let yearly = replaced(&yearly, "timeout_secs = 5", "timeout_secs = 60");
    std::fs::write(&path, &yearly).unwrap();
    let (_base, cancel, handle) = start_daemon(Config::load(&path).unwrap()).await;
    tokio::time::timeout(Duration::from_secs(10), requests.recv())
        .await
        .expect("the new source is polled at once")
        .unwrap();
    (path, yearly, cancel, handle)
}

/// Waits (15 s at most) until `sql` gives the text `want`.
async fn wait_for_text(db: &std::path::Path, sql: &str, want: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while stored(db, sql).as_deref() != Some(want) {
        assert!(
            std::time::Instant::now() < deadline,
            "{sql}: {:?}, waiting for {want:?}",
            stored(db, sql)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (15 s at most) until `sql` gives `want`.
async fn wait_for_number(db: &std::path::Path, sql: &str, want: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while number(db, sql) != Some(want) {
        assert!(
            std::time::Instant::now() < deadline,
            "{sql}: {:?}, waiting for {want}",
            number(db, sql)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_changed_while_its_source_is_polled_is_polled_at_once_without_the_old_validators() {
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let body = one_item_feed("a");
    let old_answer = rss_answer(
        &body,
        "ETag: \"old-etag\"\r\nLast-Modified: Wed, 21 Oct 2026 07:28:00 GMT\r\n",
    );
    let (old, mut old_requests) = start_server(old_answer, Some(release_rx)).await;
    let body = one_item_feed("b");
    let new_answer = rss_answer(&body, "");
    let (new, mut new_requests) = start_server(new_answer, None).await;
    let (cancel, handle, dir) = reload_a_new_url_during_a_poll(old, &mut old_requests, new).await;

    // The poll of the old URL, still waiting for its answer, is cut off: the new URL is
    // polled at once (not once the old one answers or times out, nor next January, the old
    // poll's next time), and asked without the old feed's validators.
    let request = tokio::time::timeout(Duration::from_secs(15), new_requests.recv())
        .await
        .expect("the new URL is polled at once, while the old one still holds its answer")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        !request.contains("if-none-match") && !request.contains("if-modified-since"),
        "the new URL was asked with the old URL's validators:\n{request}"
    );
    release_tx.send_replace(true);
    // Only the new URL's poll is stored: the old one's was cut off before its answer.
    let db = dir.path().join("tradefeed.db");
    wait_for_number(&db, "SELECT count(*) FROM entries", 1).await;
    wait_for_number(&db, "SELECT count(*) FROM fetches", 1).await;
    assert_eq!(
        stored(&db, "SELECT title FROM entries"),
        Some("b: EU raises steel tariffs".into())
    );
    assert_eq!(
        stored(&db, "SELECT etag FROM sources WHERE name = 'D'"),
        None,
        "the new URL sent no ETag, and the old one's is not kept"
    );
    stop_daemon(cancel, handle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_from_the_old_url_of_a_source_given_a_new_one_meanwhile_does_not_stop_it() {
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let gone = "HTTP/1.1 410 Gone\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string();
    let (old, mut old_requests) = start_server(gone, Some(release_rx)).await;
    let body = one_item_feed("b");
    let new_answer = rss_answer(&body, "");
    let (new, mut new_requests) = start_server(new_answer, None).await;
    let (cancel, handle, dir) = reload_a_new_url_during_a_poll(old, &mut old_requests, new).await;

    tokio::time::timeout(Duration::from_secs(15), new_requests.recv())
        .await
        .expect("the new URL is polled at once, the old one's answer still held")
        .unwrap();
    // The old URL's 410 comes too late: its poll was cut off.
    release_tx.send_replace(true);
    let db = dir.path().join("tradefeed.db");
    wait_for_number(&db, "SELECT count(*) FROM entries", 1).await;
    wait_for_number(&db, "SELECT count(*) FROM fetches", 1).await;
    assert_eq!(
        stored(&db, "SELECT disabled_reason FROM sources WHERE name = 'D'"),
        None
    );
    assert_eq!(
        number(
            &db,
            "SELECT consecutive_failures FROM sources WHERE name = 'D'"
        ),
        Some(0),
        "the old URL's failure is not the new URL's"
    );
    stop_daemon(cancel, handle).await;
}

/// The database gives a source another URL behind the daemon's back (an operator or a tool
/// edited it; a second tradefeed process is refused the database), so the daemon's config
/// and the database disagree for good. Each poll of the configured URL finds the row's URL
/// changed: the store keeps its entries but no due time, and the source stays due at once.
/// The daemon holds the source back for the backoff instead of polling the old URL again at
/// every look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_the_database_changed_behind_the_daemon_is_not_polled_at_every_look() {
    let body = one_item_feed("a");
    let (addr, mut requests) = start_server(rss_answer(&body, ""), None).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://{addr}/d.xml");
    let (_path, _yearly, cancel, handle) = start_with_yearly_d(
        dir.path(),
        &url,
        "backoff_base_secs = 3600\n",
        &mut requests,
    )
    .await;
    let db = dir.path().join("tradefeed.db");
    wait_for_number(&db, "SELECT count(*) FROM fetches", 1).await;

    // As `sync_sources` from a config with another URL leaves the row: due at once.
    let elsewhere = "http://127.0.0.1:9/elsewhere.xml";
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE sources SET url = ?1, next_due = NULL, etag = NULL, last_modified = NULL
              WHERE name = 'D'",
            [elsewhere],
        )
        .unwrap();
    tokio::time::timeout(Duration::from_secs(15), requests.recv())
        .await
        .expect("the daemon polls the URL it is configured with")
        .unwrap();
    wait_for_number(&db, "SELECT count(*) FROM fetches", 2).await;
    assert_eq!(
        stored(&db, "SELECT url FROM sources WHERE name = 'D'").as_deref(),
        Some(elsewhere)
    );
    assert_eq!(
        number(&db, "SELECT next_due FROM sources WHERE name = 'D'"),
        None,
        "no due time of the configured URL lands on the other one"
    );

    // Ten looks' worth of time at the shortest sleep: the source is held back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut again = 0;
    while requests.try_recv().is_ok() {
        again += 1;
    }
    assert_eq!(again, 0, "the old URL was polled again {again} times");
    stop_daemon(cancel, handle).await;
}

/// A change to a config's text, given the text and source D's URL.
type ConfigEdit<'a> = dyn Fn(&str, &str) -> String + 'a;

/// Starts the daemon with source `D` on a yearly schedule and one poll slot, its first poll
/// held by its server; while it waits, rewrites the config with `edit` (given the config's
/// text and D's URL) and waits until the reload has reached the database (`reloaded`, a query
/// giving 1). Returns D's release and the requests its server receives after the first, what
/// `stop_daemon` needs and the config's folder.
async fn edit_during_a_held_poll(
    edit: impl FnOnce(&str, &str) -> String,
    reloaded: &str,
) -> (
    (
        tokio::sync::watch::Sender<bool>,
        tokio::sync::mpsc::Receiver<String>,
    ),
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
    tempfile::TempDir,
) {
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let (d, mut d_requests) =
        start_server(rss_answer(&one_item_feed("d"), ""), Some(release_rx)).await;
    let dir = tempfile::tempdir().unwrap();
    let d_url = format!("http://{d}/d.xml");
    let (path, yearly, cancel, handle) =
        start_with_yearly_d(dir.path(), &d_url, "concurrency = 1", &mut d_requests).await;
    std::fs::write(&path, edit(&yearly, &d_url)).unwrap();
    wait_for_number(&dir.path().join("tradefeed.db"), reloaded, 1).await;
    ((release_tx, d_requests), cancel, handle, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_of_a_source_removed_or_disabled_meanwhile_is_cut_off_and_frees_its_slot() {
    let (e, mut e_requests) = start_server(rss_answer(&one_item_feed("e"), ""), None).await;
    let e_source = format!("[[sources]]\nname = \"E\"\nurl = \"http://{e}/e.xml\"\n");
    let removed = |config: &str, d_url: &str| {
        let d_source = format!("[[sources]]\nname = \"D\"\nurl = \"{d_url}\"\n");
        replaced(config, &d_source, &e_source)
    };
    let disabled = |config: &str, d_url: &str| {
        let d_url_line = format!("url = \"{d_url}\"\n");
        let off = format!("{d_url_line}enabled = false\n\n{e_source}");
        replaced(config, &d_url_line, &off)
    };
    let edits: [(&str, &ConfigEdit<'_>, &str); 2] = [
        (
            "removed",
            &removed,
            "SELECT NOT in_config FROM sources WHERE name = 'D'",
        ),
        (
            "disabled",
            &disabled,
            "SELECT NOT enabled FROM sources WHERE name = 'D'",
        ),
    ];
    for (case, edit, reloaded) in edits {
        let ((release, _), cancel, handle, dir) = edit_during_a_held_poll(edit, reloaded).await;
        // The one poll slot was D's, held until its server answers (60 s timeout): E, added
        // by the same edit, is polled at once only because D's poll was cut off.
        tokio::time::timeout(Duration::from_secs(15), e_requests.recv())
            .await
            .unwrap_or_else(|_| panic!("{case}: the slot of the held poll was not freed"))
            .unwrap();
        let db = dir.path().join("tradefeed.db");
        wait_for_number(&db, "SELECT count(*) FROM entries", 1).await;
        // D's answer, released now, finds no poll to take it: nothing of it is recorded.
        release.send_replace(true);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            stored(&db, "SELECT group_concat(title) FROM entries"),
            Some("e: EU raises steel tariffs".into()),
            "{case}"
        );
        assert_eq!(
            number(
                &db,
                "SELECT count(*) FROM fetches JOIN sources ON sources.id = fetches.source_id \
                 WHERE sources.name = 'D'"
            ),
            Some(0),
            "{case}: the cut-off poll left a fetch log line"
        );
        stop_daemon(cancel, handle).await;
    }
}

/// A source renamed while its poll runs keeps the poll, stored under the new name, and is not
/// polled again under that name meanwhile: the scheduler knows polls in flight by URL. Renamed
/// and given a new schedule in one edit, it is next due by the new schedule, as a source only
/// rescheduled is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_of_a_source_renamed_meanwhile_is_kept_and_stored_under_the_new_name() {
    use chrono::{Datelike, Timelike};
    // A new schedule half an hour off whatever the time: no slot of it falls inside the test
    // (an every-minute one would poll the source again at the next minute boundary).
    let minute = (chrono::Utc::now().minute() + 30) % 60;
    let hourly = format!("schedule = \"{minute} * * * *\"");
    let renamed = |config: &str, _: &str| replaced(config, "name = \"D\"", "name = \"Renamed\"");
    let rescheduled_too = |config: &str, d_url: &str| {
        replaced(&renamed(config, d_url), "schedule = \"0 0 1 1 *\"", &hourly)
    };
    let edits: [(&str, &ConfigEdit<'_>, &str); 2] = [
        ("renamed", &renamed, "yearly"),
        ("renamed and rescheduled", &rescheduled_too, "hourly"),
    ];
    for (case, edit, schedule) in edits {
        let reloaded = if schedule == "yearly" {
            "SELECT count(*) FROM sources WHERE name = 'Renamed' AND in_config".to_string()
        } else {
            format!(
                "SELECT count(*) FROM sources WHERE name = 'Renamed' \
                 AND schedule = '{minute} * * * *'"
            )
        };
        let ((release, mut requests), cancel, handle, dir) =
            edit_during_a_held_poll(edit, &reloaded).await;
        release.send_replace(true);
        let db = dir.path().join("tradefeed.db");
        wait_for_number(
            &db,
            "SELECT count(*) FROM entries JOIN sources ON sources.id = entries.source_id \
             WHERE sources.name = 'Renamed'",
            1,
        )
        .await;
        // Long enough for a second poll under the new name to reach the server, were the
        // first one's URL not known to be in flight: the one poll slot is free again once the
        // first poll's results are queued for the writer, and the reload woke the scheduler.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            requests.try_recv().is_err(),
            "{case}: polled again under the new name"
        );
        assert_eq!(
            number(&db, "SELECT count(*) FROM fetches"),
            Some(1),
            "{case}"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let due = number(&db, "SELECT next_due FROM sources WHERE name = 'Renamed'")
                .and_then(|d| chrono::DateTime::from_timestamp(d, 0));
            let now = chrono::Utc::now();
            let due_by_its_schedule = due.is_some_and(|d| match schedule {
                "yearly" => (d.month(), d.day(), d.hour(), d.minute()) == (1, 1, 0, 0),
                _ => d.minute() == minute && d > now && d - now <= chrono::TimeDelta::hours(1),
            });
            if due_by_its_schedule {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{case}: next due at {due:?}, not by the {schedule} schedule"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop_daemon(cancel, handle).await;
    }
}

/// A source in failure backoff given a more frequent schedule is next due by the new schedule
/// after its backoff, not at the old schedule's slot: a failing yearly source moved to every
/// five minutes waited for January.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_given_a_new_schedule_is_due_by_it_after_its_backoff() {
    let failing =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (addr, mut requests) = start_server(failing.to_string(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let (path, yearly, cancel, handle) = start_with_yearly_d(
        dir.path(),
        &format!("http://{addr}/d.xml"),
        "",
        &mut requests,
    )
    .await;
    let db = dir.path().join("tradefeed.db");
    wait_for_number(
        &db,
        "SELECT consecutive_failures FROM sources WHERE name = 'D'",
        1,
    )
    .await;
    let now = chrono::Utc::now().timestamp();
    let due = number(&db, "SELECT next_due FROM sources WHERE name = 'D'").unwrap();
    assert!(
        due > now + 86_400,
        "the yearly slot after the backoff: {}",
        due - now
    );

    std::fs::write(
        &path,
        replaced(
            &yearly,
            "schedule = \"0 0 1 1 *\"",
            "schedule = \"*/5 * * * *\"",
        ),
    )
    .unwrap();
    wait_for_text(
        &db,
        "SELECT schedule FROM sources WHERE name = 'D'",
        "*/5 * * * *",
    )
    .await;
    let (attempt, due) = (
        number(&db, "SELECT last_attempt FROM sources WHERE name = 'D'").unwrap(),
        number(&db, "SELECT next_due FROM sources WHERE name = 'D'").unwrap(),
    );
    // The first backoff (60 s, jittered by at most a tenth) and then the next five-minute slot.
    assert!(
        due > attempt + 50 && due <= attempt + 66 + 300,
        "next due {} s after the failed poll",
        due - attempt
    );
    stop_daemon(cancel, handle).await;
}
