//! The store's writer: polls queued together commit as one transaction (a failing poll leaves
//! nothing and the others still commit: its batch is written again with a savepoint per poll),
//! hooks run in queue order, and start-up skips the whole-file integrity check only after a clean close of an unchanged file.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tradefeed::domain::{Entry, Schedule, Source, TopicScore};
use tradefeed::store::{
    Access, EntryWrite, PollHook, PollOutcome, PollRecord, PollResult, Store, StoreError, StoryView,
};

fn source(name: &str) -> Source {
    Source {
        name: name.into(),
        url: format!("https://{name}.example/feed"),
        schedule: Schedule::parse("@hourly").unwrap(),
        enabled: true,
        tags: vec![],
        priority: 0,
        cluster: true,
        allow_private_redirects: false,
    }
}

/// Records `sources` as the daemon does: a changed schedule counts from the last poll, or from
/// the end of [`BACKOFF`] after a failed one, by the scheduler's own arithmetic (without
/// jitter here).
async fn sync(store: &Store, sources: &[Source]) -> Result<(), StoreError> {
    store
        .sync_sources(sources, |source, last_attempt, failures| {
            let after = if failures == 0 {
                last_attempt
            } else {
                last_attempt + BACKOFF
            };
            tradefeed::scheduler::next_due(&source.schedule, &source.name, after, Duration::ZERO)
        })
        .await
}

/// The failure backoff of [`sync`].
const BACKOFF: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

fn not_modified(source: &str) -> PollRecord {
    PollRecord {
        source: source.into(),
        url: format!("https://{source}.example/feed"),
        source_row: None,
        started_at: Utc::now(),
        duration: Duration::from_millis(3),
        outcome: PollOutcome::NotModified {
            etag: Some(format!("\"{source}-etag\"")),
            last_modified: None,
        },
        next_due: Utc::now() + chrono::Duration::hours(1),
        due_jitter: None,
        moved_to: None,
        base_url: None,
        entries: vec![],
        listed: Default::default(),
        cluster_window: chrono::Duration::days(7),
    }
}

/// Logs the order in which the writer calls the hooks of several polls.
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
}

impl PollHook for Recorder {
    fn before_write(&mut self, _entries: &mut [EntryWrite]) {
        self.log
            .lock()
            .unwrap()
            .push(format!("before {}", self.name));
    }
    fn after_write(&mut self, _result: &PollResult) {
        self.log
            .lock()
            .unwrap()
            .push(format!("after {}", self.name));
    }
    fn rolled_back(&mut self, _result: &PollResult) {
        self.log
            .lock()
            .unwrap()
            .push(format!("rolled back {}", self.name));
    }
    fn score(&mut self, _entry: &Entry) -> Vec<TopicScore> {
        unreachable!("the entries of these polls carry their scores")
    }
    fn one_item_of_a_feed(&self, _own_title: &str, _own_html: &str, _new: &Entry) -> bool {
        unreachable!("no entry of these polls is a near copy")
    }

    fn templated_siblings(&self, _title: &str, _text: &str, _new: &Entry) -> bool {
        unreachable!("no entry of these polls is a near copy")
    }
}

fn fetch_rows(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT s.name FROM fetches f JOIN sources s ON s.id = f.source_id ORDER BY s.name",
        )
        .unwrap();
    stmt.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_queued_together_commit_together_and_a_failing_one_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    let names = ["A", "B", "C", "D"];
    sync(&store, &names.map(source))
        .await
        .expect("sources recorded");

    // C's poll fails after it has written its fetch-log row: that must not stay, while B's
    // writes before it in the same batch and D's after it commit.
    let other = rusqlite::Connection::open(&db).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER fail_c BEFORE UPDATE ON sources WHEN new.name = 'C'
             BEGIN SELECT RAISE(ABORT, 'C refuses'); END;",
        )
        .unwrap();
    // Hold the write lock so that A waits at BEGIN while B, C and D queue behind it.
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let log = Arc::new(Mutex::new(Vec::new()));
    let mut polls = Vec::new();
    for name in names {
        let store = store.clone();
        let hook = Box::new(Recorder {
            name,
            log: Arc::clone(&log),
        });
        polls.push(tokio::spawn(async move {
            store.record_poll_with(not_modified(name), Some(hook)).await
        }));
        // A first, then the others while A is stuck on the lock.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        log.lock().unwrap().len() <= 1,
        "nothing but A's first hook runs while the lock is held: {:?}",
        log.lock().unwrap()
    );
    other.execute_batch("COMMIT").unwrap();

    let mut answers = Vec::new();
    for poll in polls {
        answers.push(poll.await.unwrap());
    }
    assert!(answers[0].is_ok(), "A: {:?}", answers[0]);
    assert!(answers[1].is_ok(), "B: {:?}", answers[1]);
    match &answers[2] {
        Err(StoreError::Sqlite(e)) => assert!(e.to_string().contains("C refuses"), "{e}"),
        other => panic!("C fails with the trigger's error, got {other:?}"),
    }
    assert!(answers[3].is_ok(), "D: {:?}", answers[3]);
    assert_eq!(
        fetch_rows(&db),
        ["A", "B", "D"],
        "C's fetch row was rolled back; the rest of its batch committed"
    );
    assert_eq!(
        *log.lock().unwrap(),
        [
            // A's batch (A alone: it waited at BEGIN while the others queued).
            "before A",
            "after A",
            // B, C and D, written without savepoints first: C fails, the transaction is
            // rolled back before D's turn, and B's hook is told, as after a failed commit...
            "before B",
            "after B",
            "before C",
            "rolled back B",
            // ...then the batch is written again with a savepoint per poll.
            "before B",
            "after B",
            "before C",
            "before D",
            "after D"
        ],
        "hooks run in queue order, each poll's after before the next poll's before; a failed \
         poll gets no after; a batch is written again, savepoint by savepoint, once a poll of \
         it has failed"
    );
    store.close().await;
}

/// Takes its time before its poll is written (so the poll before it in the batch waits too).
struct Slow;

impl PollHook for Slow {
    fn before_write(&mut self, _entries: &mut [EntryWrite]) {
        std::thread::sleep(Duration::from_millis(300));
    }
    fn after_write(&mut self, _result: &PollResult) {}
    fn rolled_back(&mut self, _result: &PollResult) {}
    fn score(&mut self, _entry: &Entry) -> Vec<TopicScore> {
        unreachable!("the entries of these polls carry their scores")
    }
    fn one_item_of_a_feed(&self, _own_title: &str, _own_html: &str, _new: &Entry) -> bool {
        unreachable!("no entry of these polls is a near copy")
    }

    fn templated_siblings(&self, _title: &str, _text: &str, _new: &Entry) -> bool {
        unreachable!("no entry of these polls is a near copy")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_to_a_poll_comes_only_once_its_writes_are_visible_to_other_connections() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    let names = ["X", "A", "B"];
    sync(&store, &names.map(source)).await.unwrap();

    // X waits at BEGIN for the lock; A and then B queue behind it and share the next batch, in
    // which B's hook holds the commit back 300 ms after A's writes are done.
    let other = rusqlite::Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut polls = Vec::new();
    for name in names {
        let store = store.clone();
        let db = db.clone();
        let hook: Option<Box<dyn PollHook>> = (name == "B").then(|| Box::new(Slow) as _);
        polls.push(tokio::spawn(async move {
            store
                .record_poll_with(not_modified(name), hook)
                .await
                .unwrap();
            // Read through a connection of our own: answered means committed means visible.
            let conn = rusqlite::Connection::open(&db).unwrap();
            let etag: Option<String> = conn
                .query_row("SELECT etag FROM sources WHERE name = ?1", [name], |r| {
                    r.get(0)
                })
                .unwrap();
            assert_eq!(etag, Some(format!("\"{name}-etag\"")), "{name}");
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    other.execute_batch("COMMIT").unwrap();
    for poll in polls {
        poll.await.unwrap();
    }
    assert_eq!(fetch_rows(&db), ["A", "B", "X"]);
    store.close().await;
}

fn lock_file(db: &Path) -> String {
    std::fs::read_to_string(db.with_file_name("tradefeed.db.lock")).unwrap_or_default()
}

/// Opens the store, closes it again, and says whether opening ran the integrity check.
async fn open_runs_the_check(db: &Path) -> bool {
    let store = Store::open(db, Access::ReadWrite).unwrap();
    let checked = store.integrity_checked_at_open();
    store.close().await;
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_close_lets_the_next_start_skip_the_integrity_check_until_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");

    let store = Store::open(&db, Access::ReadWrite).unwrap();
    assert!(
        store.integrity_checked_at_open(),
        "a new database is checked"
    );
    sync(&store, &[source("A")]).await.unwrap();
    assert_eq!(lock_file(&db), "", "no stamp while the store is open");
    store.close().await;
    drop(store);
    assert!(
        lock_file(&db).starts_with("tradefeed-clean-close 2 "),
        "a clean close leaves a stamp: {:?}",
        lock_file(&db)
    );

    let store = Store::open(&db, Access::ReadWrite).unwrap();
    assert!(
        !store.integrity_checked_at_open(),
        "unchanged since a clean close: the check is skipped"
    );
    assert_eq!(
        lock_file(&db),
        "",
        "opening wipes the stamp before any write"
    );
    store.record_poll(not_modified("A")).await.unwrap();
    store.close().await;
    drop(store);

    // The same bytes written again by something else: a new modification time.
    std::thread::sleep(Duration::from_millis(20));
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes).unwrap();
    assert!(
        open_runs_the_check(&db).await,
        "a file touched since the clean close is checked"
    );

    // A stamp for a file of another size (e.g. a restored copy) does not count either.
    let stamp = lock_file(&db);
    let longer = stamp.replacen("len=", "len=1", 1);
    std::fs::write(db.with_file_name("tradefeed.db.lock"), longer).unwrap();
    assert!(open_runs_the_check(&db).await, "a stale stamp is ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_wal_means_the_check_runs_even_with_a_matching_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    sync(&store, &[source("A")]).await.unwrap();
    store.close().await;
    drop(store);
    let stamp = lock_file(&db);
    assert!(!stamp.is_empty());

    // Another program writes in WAL mode and leaves its WAL behind (it never checkpoints).
    // Its frames land inside the WAL file the clean close kept, so the file's size may stay
    // the same: the new modification time is what gives it away (hence the pause, for
    // clocks that tick coarsely).
    std::thread::sleep(Duration::from_millis(20));
    let other = rusqlite::Connection::open(&db).unwrap();
    other.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    other
        .execute("UPDATE sources SET priority = 5 WHERE name = 'A'", [])
        .unwrap();
    let wal = db.with_file_name("tradefeed.db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "a WAL is pending"
    );
    // Keep the connection open so the WAL stays; restore the stamp as if nothing happened.
    std::fs::write(db.with_file_name("tradefeed.db.lock"), &stamp).unwrap();
    assert!(
        open_runs_the_check(&db).await,
        "frames in the WAL mean the file is not as the clean close left it"
    );
    drop(other);
}

/// A fetched poll of `source` whose `n` entries carry about `bytes` of HTML each (stored with
/// the entry; the plain text, which the story keeps and search indexes, stays short).
fn bulky(source: &str, first: usize, n: usize, bytes: usize) -> PollRecord {
    let ids: Vec<(String, String)> = (first..first + n)
        .map(|i| {
            (
                format!("{source}-{i}"),
                format!("https://{source}.example/{i}"),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = ids.iter().map(|(i, l)| (i.as_str(), l.as_str())).collect();
    let mut record = fetched(source, &pairs);
    for (i, write) in record.entries.iter_mut().enumerate() {
        // Distinct bytes per entry: pages that compress or repeat would not grow the WAL.
        let filler: String = (0..bytes / 8)
            .map(|k| format!("{:07x} ", (first + i) * 1_000_003 + k))
            .collect();
        write.entry.html = format!("<p>{filler}</p>");
    }
    record
}

fn wal_len(db: &Path) -> u64 {
    std::fs::metadata(db.with_file_name("tradefeed.db-wal")).map_or(0, |m| m.len())
}

fn entry_count(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
        .unwrap()
}

/// About 40 MiB of writes (160 entries of 128 KiB of HTML), numbered from `first`: built up
/// front so that the writer never idles in between.
async fn burst(store: &Store, first: usize) {
    let polls: Vec<_> = (0..4)
        .map(|p| bulky("A", first + p * 40, 40, 128 << 10))
        .collect();
    for poll in polls {
        store.record_poll(poll).await.unwrap();
    }
}

/// Entries in a copy of the database file alone (without its WAL).
fn entries_without_the_wal(db: &Path) -> i64 {
    let copy = db.with_file_name("copy.db");
    std::fs::copy(db, &copy).unwrap();
    entry_count(&rusqlite::Connection::open(&copy).unwrap())
}

fn integrity(conn: &rusqlite::Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Shutdown folds the WAL without truncating it (freeing a just-written WAL's blocks waits for
/// the file system): the file keeps its size, but SQLite has started it over, so only the
/// close's own row is live in it and the database file alone holds every entry. The next
/// start skips the integrity check and writes over the old frames.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_close_folds_the_wal_and_leaves_no_live_frames_but_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    sync(&store, &[source("A")]).await.unwrap();
    burst(&store, 0).await;
    store.close().await;
    drop(store);
    let kept = wal_len(&db);
    assert!(
        kept > 16 << 20,
        "no commit and no close cut the burst's WAL back: {kept} bytes"
    );
    assert!(lock_file(&db).starts_with("tradefeed-clean-close 2 "));

    assert_eq!(entries_without_the_wal(&db), 160, "the database file alone");

    let store = Store::open(&db, Access::ReadWrite).unwrap();
    assert!(
        !store.integrity_checked_at_open(),
        "the database and its WAL are as the clean close left them"
    );
    store
        .record_poll(bulky("A", 160, 10, 4 << 10))
        .await
        .unwrap();
    store.close().await;
    drop(store);
    assert_eq!(wal_len(&db), kept, "the WAL's blocks were reused");

    // SQLite started the WAL over: opening it finds the close's row and nothing else.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (log, copied): (i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert!(
        log <= 4 && copied == log,
        "{log} live frames, {copied} copied"
    );
    let closed_at: String = conn
        .query_row("SELECT value FROM meta WHERE key = 'closed_at'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(&closed_at).is_ok());
    assert_eq!(entry_count(&conn), 170, "written over the old frames");
    assert_eq!(integrity(&conn), "ok");
}

/// An operator restores an older copy of the database over a cleanly closed one. The WAL the
/// clean close left beside it belongs to the newer file (its last frame, the close's own row,
/// records that file's size): applied to the restored copy it would cut it short. Start-up
/// sees that the database is not the one the stamp describes while the WAL still is, removes
/// that WAL before SQLite opens the file, and checks the restored copy, which keeps every
/// entry it had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restored_copy_is_not_mixed_with_the_wal_of_the_file_it_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    sync(&store, &[source("A")]).await.unwrap();
    store.record_poll(bulky("A", 0, 20, 4 << 10)).await.unwrap();
    store.close().await;
    drop(store);
    let backup = dir.path().join("backup.db");
    std::fs::copy(&db, &backup).unwrap();

    // The database grows well past the backup, then closes cleanly.
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    burst(&store, 20).await;
    store.close().await;
    drop(store);
    assert!(wal_len(&db) > 0, "the clean close left its WAL in place");

    std::thread::sleep(Duration::from_millis(20));
    std::fs::copy(&backup, &db).unwrap();
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    assert!(
        store.integrity_checked_at_open(),
        "a restored file is checked"
    );
    assert_eq!(store.counts().await.unwrap().1, 20, "the backup's entries");
    // Copying what the WAL holds into the restored file must find nothing foreign: the newer
    // file's last frame says the database has thousands of pages, which SQLite reports as
    // corruption of this 90-page file.
    let other = rusqlite::Connection::open(&db).unwrap();
    let copied = other.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
    assert!(
        copied.is_ok(),
        "checkpoint of the restored file: {copied:?}"
    );
    drop(other);
    store.close().await;
    drop(store);
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(entry_count(&conn), 20);
    assert_eq!(integrity(&conn), "ok");
}

/// Once the writer is idle, a WAL grown past 16 MiB by a burst is copied into the database and
/// truncated, while the store stays open and keeps taking writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_writer_truncates_a_wal_a_burst_grew() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    sync(&store, &[source("A")]).await.unwrap();
    burst(&store, 0).await;
    assert!(wal_len(&db) > 16 << 20, "the burst grew the WAL");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while wal_len(&db) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle writer truncated the WAL"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(entries_without_the_wal(&db), 160, "the database file alone");
    store
        .record_poll(bulky("A", 160, 10, 4 << 10))
        .await
        .unwrap();
    store.close().await;
    let conn = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(entry_count(&conn), 170);
}

/// `PRAGMA data_version` as seen by a connection of the test's own: it moves only when another
/// connection commits a change.
fn data_version(conn: &rusqlite::Connection) -> i64 {
    conn.query_row("PRAGMA data_version", [], |r| r.get(0))
        .unwrap()
}

/// A poll of a source that a reload renamed while it ran (same URL, new name) is stored on the
/// renamed row, not refused for want of a row of its old name.
#[tokio::test]
async fn a_poll_of_a_source_renamed_meanwhile_is_stored_on_the_renamed_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    sync(&store, &[source("a")]).await.unwrap();
    let renamed = Source {
        name: "alpha".into(),
        ..source("a")
    };
    sync(&store, &[renamed]).await.unwrap();
    // The poll began as "a", before the reload.
    store.record_poll(not_modified("a")).await.unwrap();
    let alpha = store.source_state("alpha").await.unwrap().unwrap();
    assert_eq!(alpha.etag.as_deref(), Some("\"a-etag\""));
    assert_eq!(alpha.last_outcome.as_deref(), Some("not_modified"));
    assert!(store.source_state("a").await.unwrap().is_none());
    // A poll of a name no configured row has, at a URL none has, is still refused.
    assert!(store.record_poll(not_modified("zeta")).await.is_err());
    store.close().await;
}

/// A poll that began before a reload renamed its source and gave the old name to another
/// feed, or swapped two sources' names, is stored on the row of the feed it polled (its URL),
/// not on the row that now has the poll's name.
#[tokio::test]
async fn a_poll_whose_name_a_reload_gave_to_another_feed_is_stored_on_its_feeds_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    let url = |s: &str| format!("https://{s}.example/feed");
    sync(&store, &[source("a"), source("b")]).await.unwrap();
    // "a" is renamed "alpha" and the name "a" goes to a new feed; "b" is left as it is.
    let renamed = Source {
        name: "alpha".into(),
        ..source("a")
    };
    let reused = Source {
        url: url("k2"),
        ..source("a")
    };
    sync(&store, &[renamed, reused, source("b")]).await.unwrap();
    // The poll began as "a" at a's URL, before the reload.
    store.record_poll(not_modified("a")).await.unwrap();
    store.record_poll(not_modified("b")).await.unwrap();
    let alpha = store.source_state("alpha").await.unwrap().unwrap();
    assert_eq!(alpha.url, url("a"));
    assert_eq!(alpha.etag.as_deref(), Some("\"a-etag\""));
    let a = store.source_state("a").await.unwrap().unwrap();
    assert_eq!(a.url, url("k2"));
    assert_eq!(
        (a.etag, a.last_outcome),
        (None, None),
        "the new feed's row is untouched"
    );
    let b = store.source_state("b").await.unwrap().unwrap();
    assert_eq!(b.etag.as_deref(), Some("\"b-etag\""));

    // A swap: the poll of "b" (b's URL) begun before it is stored on the row now named "a".
    let swapped = [
        Source {
            url: url("b"),
            ..source("a")
        },
        Source {
            url: url("k2"),
            ..source("b")
        },
    ];
    sync(&store, &swapped).await.unwrap();
    let late_b = PollRecord {
        outcome: PollOutcome::NotModified {
            etag: Some("\"b-etag-2\"".into()),
            last_modified: None,
        },
        ..not_modified("b")
    };
    store.record_poll(late_b).await.unwrap();
    let a = store.source_state("a").await.unwrap().unwrap();
    assert_eq!((a.url, a.etag.as_deref()), (url("b"), Some("\"b-etag-2\"")));
    let b = store.source_state("b").await.unwrap().unwrap();
    assert_eq!((b.url, b.etag), (url("k2"), None));
    store.close().await;
}

/// A source given the URL of another source's row, whose own row keeps its name (no
/// configured source has that row's URL), cannot take that row by its URL (names are unique):
/// the name decides, as before (the row of that name gets the new URL), and the sync succeeds.
#[tokio::test]
async fn a_rename_onto_a_name_whose_row_stays_falls_back_to_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    sync(&store, &[source("a"), source("b")]).await.unwrap();
    // "b" now has a's URL; b's own URL and the name "a" are gone from the config.
    let b_at_a = Source {
        url: source("a").url,
        ..source("b")
    };
    sync(&store, std::slice::from_ref(&b_at_a)).await.unwrap();
    let b = store.source_state("b").await.unwrap().unwrap();
    assert_eq!((b.url, b.in_config), (source("a").url, true));
    let a = store.source_state("a").await.unwrap().unwrap();
    assert_eq!((a.url, a.in_config), (source("a").url, false));
    store.close().await;
}

/// A URL that two configured sources share does not single out which of them a stored row
/// with it is: the name decides, so the row keeps its name (and its state) and the other
/// source is new.
#[tokio::test]
async fn a_url_two_configured_sources_share_leaves_its_row_to_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    sync(&store, &[source("a")]).await.unwrap();
    store.record_poll(not_modified("a")).await.unwrap();
    let copy = Source {
        name: "copy".into(),
        ..source("a")
    };
    // The newcomer first: whichever order the config lists them in, "a" keeps its row.
    sync(&store, &[copy, source("a")]).await.unwrap();
    let a = store.source_state("a").await.unwrap().unwrap();
    assert_eq!(a.etag.as_deref(), Some("\"a-etag\""));
    let copy = store.source_state("copy").await.unwrap().unwrap();
    assert_eq!((copy.url, copy.etag), (source("a").url, None));
    store.close().await;
}

/// A rename or a new URL changes what the feeds show of a story's sources (its name, the RSS
/// `<source url>`), so it moves the data version the output caches are keyed by; a sync that
/// changes nothing shown leaves it.
#[tokio::test]
async fn a_rename_or_a_new_url_moves_the_data_version_the_feed_caches_follow() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    sync(&store, &[source("a")]).await.unwrap();
    let v0 = store.data_version();
    sync(&store, &[source("a")]).await.unwrap();
    assert_eq!(store.data_version(), v0, "nothing changed");
    let renamed = Source {
        name: "alpha".into(),
        ..source("a")
    };
    sync(&store, std::slice::from_ref(&renamed)).await.unwrap();
    let v1 = store.data_version();
    assert_ne!(v1, v0, "renamed");
    let moved = Source {
        url: "https://elsewhere.example/feed".into(),
        ..renamed
    };
    sync(&store, &[moved]).await.unwrap();
    assert_ne!(store.data_version(), v1, "a new URL");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syncing_sources_writes_only_what_changed_and_resets_only_what_a_change_invalidates() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    let first = [
        "keep",
        "moved",
        "rescheduled",
        "failing",
        "unpolled",
        "dropped",
    ]
    .map(source);
    sync(&store, &first).await.unwrap();
    for s in first.iter().filter(|s| s.name != "unpolled") {
        let mut poll = not_modified(&s.name);
        if s.name == "failing" {
            poll.outcome = PollOutcome::Failed {
                kind: "timeout".into(),
                message: "timed out".into(),
                http_status: None,
                retry_not_before: None,
                disable: None,
            };
            poll.next_due = Utc::now() + chrono::Duration::minutes(10);
        }
        store.record_poll(poll).await.unwrap();
    }
    // A `fetch` pass reads what every poll needs in one query.
    let polls = store.poll_states().await.unwrap();
    assert_eq!(polls.len(), first.len());
    assert_eq!(polls["keep"].etag.as_deref(), Some("\"keep-etag\""));
    assert_eq!(polls["failing"].consecutive_failures, 1);
    assert_eq!(polls["unpolled"].etag, None);
    for s in &first {
        assert_eq!(
            Some(&polls[&s.name]),
            store.poll_state(&s.name, &s.url).await.unwrap().as_ref(),
            "{}",
            s.name
        );
    }

    // The same config again changes nothing in the file.
    let observer = rusqlite::Connection::open(&db).unwrap();
    let before = data_version(&observer);
    sync(&store, &first).await.unwrap();
    assert_eq!(
        data_version(&observer),
        before,
        "an unchanged config writes nothing"
    );

    let mut moved = source("moved");
    moved.url = "https://elsewhere.example/feed".into();
    let daily = |name: &str| Source {
        schedule: Schedule::parse("@daily").unwrap(),
        ..source(name)
    };
    let mut keep = source("keep");
    keep.priority = 5;
    let second = [
        keep,
        moved,
        daily("rescheduled"),
        daily("failing"),
        daily("unpolled"),
        source("new"),
    ];
    sync(&store, &second).await.unwrap();
    assert_ne!(
        data_version(&observer),
        before,
        "a changed config is written"
    );

    let states: std::collections::HashMap<String, _> = store
        .source_states()
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();
    let etag = |name: &str| states[name].etag.clone();
    assert_eq!(
        etag("keep").as_deref(),
        Some("\"keep-etag\""),
        "a new priority keeps validators"
    );
    assert!(
        states["keep"].next_due.is_some(),
        "and the schedule's next time"
    );
    assert_eq!(
        etag("moved"),
        None,
        "a new URL forgets the old feed's validators"
    );
    assert_eq!(states["moved"].url, "https://elsewhere.example/feed");
    assert!(states["moved"].next_due.is_none(), "and is due at once");
    assert_eq!(
        etag("rescheduled").as_deref(),
        Some("\"rescheduled-etag\""),
        "a new schedule keeps validators"
    );
    let last_poll = states["rescheduled"].last_attempt.unwrap();
    assert_eq!(
        states["rescheduled"].next_due,
        Some(tradefeed::scheduler::next_due(
            &Schedule::parse("@daily").unwrap(),
            "rescheduled",
            last_poll,
            Duration::ZERO
        )),
        "and is next due by the new schedule after its last poll"
    );
    assert!(
        states["rescheduled"].next_due.unwrap() > Utc::now(),
        "a less frequent schedule does not poll at once"
    );
    let failed_poll = states["failing"].last_attempt.unwrap();
    assert_eq!(
        states["failing"].next_due,
        Some(tradefeed::scheduler::next_due(
            &Schedule::parse("@daily").unwrap(),
            "failing",
            failed_poll + BACKOFF,
            Duration::ZERO
        )),
        "a source in backoff is next due by the new schedule after its backoff"
    );
    assert!(
        states["unpolled"].next_due.is_none(),
        "a source never polled stays due at once"
    );
    assert_eq!(states["rescheduled"].schedule, "@daily");
    assert!(states["new"].in_config && states["new"].etag.is_none());
    // Out of the config with no entries, it is no longer listed, but its row stays.
    assert!(!states.contains_key("dropped"));
    let dropped = store.source_state("dropped").await.unwrap().unwrap();
    assert!(
        !dropped.in_config,
        "a source left out of the config is marked"
    );
    assert_eq!(dropped.etag.as_deref(), Some("\"dropped-etag\""));

    // Listed again, it comes back as it was.
    sync(&store, &[source("dropped")]).await.unwrap();
    let states = store.source_states().await.unwrap();
    let dropped = states.iter().find(|s| s.name == "dropped").unwrap();
    assert!(dropped.in_config);
    assert_eq!(dropped.etag.as_deref(), Some("\"dropped-etag\""));
    assert!(
        states.iter().filter(|s| s.in_config).count() == 1,
        "only the listed source is in the config now"
    );
    store.close().await;
}

/// A reload gives a source a new URL while a poll of its old URL is in flight; the poll's write
/// comes after the reload's reset. The entries it fetched and its line in the fetch history are
/// the source's and stay; what it learnt about the old URL must not land on the new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_of_a_url_changed_meanwhile_keeps_its_entries_but_leaves_the_new_url_due_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    let old = source("S");
    sync(&store, std::slice::from_ref(&old)).await.unwrap();
    // The old URL's last poll failed once and asked for a wait.
    let mut failed = not_modified("S");
    failed.outcome = PollOutcome::Failed {
        kind: "http_status".into(),
        message: "503".into(),
        http_status: Some(503),
        retry_not_before: Some(Utc::now() + chrono::Duration::hours(2)),
        disable: None,
    };
    store.record_poll(failed).await.unwrap();

    // The reload: a new URL is a new feed, due at once with nothing of the old one.
    let mut new = source("S");
    new.url = "https://new.example/feed".into();
    sync(&store, std::slice::from_ref(&new)).await.unwrap();

    let state = |store: &Store| {
        let store = store.clone();
        async move { store.source_state("S").await.unwrap().unwrap() }
    };
    let reset = state(&store).await;
    assert_eq!(
        (
            reset.etag.clone(),
            reset.next_due,
            reset.consecutive_failures
        ),
        (None, None, 0)
    );

    // The poll of the old URL, begun before the reload, answers 200 with validators, a
    // permanent redirect and a next time a year away, and one new item.
    let mut late = fetched("S", &[("s-1", "https://old.example/1")]);
    assert_eq!(late.url, old.url);
    late.outcome = PollOutcome::Fetched {
        http_status: 200,
        bytes: 100,
        etag: Some("\"old-etag\"".into()),
        last_modified: Some("Wed, 21 Oct 2026 07:28:00 GMT".into()),
        listed_pruned: Some(Vec::new()),
        read_whole: true,
    };
    late.moved_to = Some("https://old.example/moved".into());
    late.next_due = Utc::now() + chrono::Duration::days(365);
    let written = store.record_poll(late).await.unwrap();
    assert_eq!(written.new_entries, 1, "the fetched entry is stored");
    assert!(
        written.url_changed,
        "the caller is told no due time was stored"
    );

    let after = state(&store).await;
    assert_eq!(after.url, new.url);
    assert_eq!(
        after.etag, None,
        "the old URL's ETag is not sent to the new one"
    );
    assert_eq!(after.last_modified, None);
    assert_eq!(
        after.moved_to, None,
        "the old URL's move is not the new URL's"
    );
    assert_eq!(after.next_due, None, "the new URL stays due at once");
    assert_eq!(after.entries, 1);
    assert!(
        after.last_new_entry.is_some(),
        "the entry counts as new content"
    );
    let story = &store
        .stories(tradefeed::store::StoryQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()[0];
    assert_eq!(
        story.base_url, old.url,
        "its relative links resolve against the URL it was fetched from"
    );

    // A late failure of the old URL: a 410 with a Retry-After.
    let mut gone = not_modified("S");
    gone.outcome = PollOutcome::Failed {
        kind: "gone".into(),
        message: "410 Gone".into(),
        http_status: Some(410),
        retry_not_before: Some(Utc::now() + chrono::Duration::days(7)),
        disable: Some("410 Gone at the old URL".into()),
    };
    gone.next_due = Utc::now() + chrono::Duration::days(7);
    store.record_poll(gone).await.unwrap();
    let after = state(&store).await;
    assert_eq!(
        after.disabled_reason, None,
        "the old URL's 410 does not stop the new one"
    );
    assert_eq!(after.consecutive_failures, 0, "nor do its failures count");
    assert_eq!(after.retry_not_before, None, "nor its Retry-After");
    assert_eq!(after.next_due, None);
    assert_eq!(after.idle_because(), None);
    assert_eq!(
        fetch_rows(&db),
        ["S", "S", "S"],
        "every poll is in the history"
    );
    assert_eq!(store.due_sources(Utc::now()).await.unwrap(), ["S"]);

    // A poll of the new URL is recorded as usual.
    let mut current = not_modified("S");
    current.url = new.url.clone();
    assert!(!store.record_poll(current).await.unwrap().url_changed);
    let after = state(&store).await;
    assert_eq!(after.etag.as_deref(), Some("\"S-etag\""));
    assert!(after.next_due.is_some());
    store.close().await;
}

/// A reload gives a source a new URL and, in the same edit, gives its old URL to another source
/// (reset there as a new feed) while a poll of the old URL is in flight. The poll's write goes
/// to the source it began as, whose URL changed: the entries are its, and the other source, a
/// new feed at that URL, takes neither the poll's validators nor its due time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_of_a_url_given_to_another_source_meanwhile_is_written_to_its_own_source() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    let (s, t) = (source("S"), source("T"));
    sync(&store, &[s.clone(), t.clone()]).await.unwrap();
    store.record_poll(not_modified("T")).await.unwrap();
    let mut s_moved = s.clone();
    s_moved.url = "https://new.example/feed".into();
    let mut t_takes_s_url = t.clone();
    t_takes_s_url.url = s.url.clone();
    sync(&store, &[s_moved, t_takes_s_url]).await.unwrap();

    let mut late = fetched("S", &[("s-1", "https://S.example/1")]);
    assert_eq!(late.url, s.url);
    late.outcome = PollOutcome::Fetched {
        http_status: 200,
        bytes: 100,
        etag: Some("\"old-etag\"".into()),
        last_modified: None,
        listed_pruned: Some(Vec::new()),
        read_whole: true,
    };
    late.next_due = Utc::now() + chrono::Duration::days(365);
    let written = store.record_poll(late).await.unwrap();
    assert!(written.url_changed, "written to S, whose URL changed");
    let target = store.poll_target("S", &s.url).await.unwrap().unwrap();
    assert_eq!(
        (target.name.as_str(), target.url.as_str()),
        ("S", "https://new.example/feed")
    );

    let s_now = store.source_state("S").await.unwrap().unwrap();
    assert_eq!(s_now.entries, 1, "the fetched entry is S's");
    assert_eq!((s_now.etag, s_now.next_due), (None, None));
    let t_now = store.source_state("T").await.unwrap().unwrap();
    assert_eq!(t_now.url, s.url);
    assert_eq!(t_now.entries, 0);
    assert_eq!(
        (t_now.etag, t_now.next_due),
        (None, None),
        "the new feed at S's old URL is due at once, with no validator of S's poll"
    );
    store.close().await;
}

/// A poll is written to the row it began on, whatever a reload renamed meanwhile. A first edit
/// moves S to a new URL and gives its old URL to T (S's row keeps that URL as its previous
/// one); a later edit swaps the two names while a poll of T, at S's old URL, runs. The rows
/// follow their URLs, so T's feed is S's row now: the poll is stored there, validators and
/// all. Placed by name and URL instead, the stale previous URL of the row named T now would
/// take it, as a poll of a URL changed meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_is_written_to_the_row_it_began_on_whatever_a_reload_renamed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    let at = |name: &str, url: &str| Source {
        url: url.into(),
        ..source(name)
    };
    let (old, new) = ("https://S.example/feed", "https://new.example/feed");
    sync(&store, &[source("S"), source("T")]).await.unwrap();
    sync(&store, &[at("S", new), at("T", old)]).await.unwrap();
    let began = store.poll_state("T", old).await.unwrap().unwrap();
    sync(&store, &[at("S", old), at("T", new)]).await.unwrap();

    let poll = |source_row| {
        let mut late = fetched("T", &[("t-1", "https://S.example/1")]);
        late.url = old.into();
        late.source_row = source_row;
        late.outcome = PollOutcome::Fetched {
            http_status: 200,
            bytes: 100,
            etag: Some("\"t-etag\"".into()),
            last_modified: None,
            listed_pruned: Some(Vec::new()),
            read_whole: true,
        };
        late
    };
    let written = store
        .record_poll(poll(Some(began.source_id)))
        .await
        .unwrap();
    assert!(!written.url_changed);
    let feed_row = store.source_state("S").await.unwrap().unwrap();
    assert_eq!(feed_row.url, old);
    assert_eq!(feed_row.etag.as_deref(), Some("\"t-etag\""));
    assert_eq!(feed_row.entries, 1);
    let other = store.source_state("T").await.unwrap().unwrap();
    assert_eq!((other.url.as_str(), other.entries), (new, 0));
    assert_eq!(other.etag, None);

    // What the row id settles: by name and URL, the row named T had the URL before its last
    // change, long before this poll.
    let mut by_name = poll(None);
    by_name.entries.clear();
    assert!(store.record_poll(by_name).await.unwrap().url_changed);
    store.close().await;
}

/// The state a poll begins with is read by its source's name *and* URL, as the write would
/// place the poll: a reload that renamed the polled feed and gave the old name to another
/// feed, between the dispatcher taking the source from the config and the poll reading its
/// state, leaves the poll the feed's row and validators, not the new feed's. A row whose URL a
/// reload changed keeps the poll, without the new URL's validators.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_begins_with_the_state_of_the_row_that_has_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    let at = |name: &str, url: &str| Source {
        url: url.into(),
        ..source(name)
    };
    let polled = |name: &str, url: &str, etag: &str| {
        let mut poll = not_modified(name);
        poll.url = url.into();
        poll.outcome = PollOutcome::NotModified {
            etag: Some(etag.into()),
            last_modified: None,
        };
        poll
    };
    let (feed, other) = ("https://feed.example/rss", "https://other.example/rss");

    sync(&store, &[at("T", feed)]).await.unwrap();
    store
        .record_poll(polled("T", feed, "\"feed\""))
        .await
        .unwrap();
    let feed_row = store.poll_state("T", feed).await.unwrap().unwrap();
    assert_eq!(feed_row.etag.as_deref(), Some("\"feed\""));
    // Renamed to S; T is another feed now, with validators of its own.
    sync(&store, &[at("S", feed), at("T", other)])
        .await
        .unwrap();
    store
        .record_poll(polled("T", other, "\"other\""))
        .await
        .unwrap();
    let began = store.poll_state("T", feed).await.unwrap().unwrap();
    assert_eq!(began, feed_row, "the feed's row, validators and all");
    let new_t = store.poll_state("T", other).await.unwrap().unwrap();
    assert_ne!(new_t.source_id, feed_row.source_id);
    assert_eq!(new_t.etag.as_deref(), Some("\"other\""));

    // S's URL changes: a poll of the old URL begun before still belongs to S's row, but the
    // validators there are the new URL's, and are not sent to the old one.
    sync(
        &store,
        &[at("S", "https://moved.example/rss"), at("T", other)],
    )
    .await
    .unwrap();
    store
        .record_poll(polled("S", "https://moved.example/rss", "\"moved\""))
        .await
        .unwrap();
    let stale = store.poll_state("S", feed).await.unwrap().unwrap();
    assert_eq!(stale.source_id, feed_row.source_id);
    assert_eq!((stale.etag, stale.last_modified), (None, None));
    let current = store
        .poll_state("S", "https://moved.example/rss")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.etag.as_deref(), Some("\"moved\""));
    store.close().await;
}

/// A poll written after a reload changed its source's schedule says so, with the source's name
/// and schedule now (a rename in the same edit included): the write's own reading, which the
/// dispatcher's correction of the due time goes by. A poll under the schedule in force says
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_written_after_its_schedule_changed_reports_the_schedule_now() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    let polled = source("S");
    sync(&store, std::slice::from_ref(&polled)).await.unwrap();
    let began = store.poll_state("S", &polled.url).await.unwrap().unwrap();
    let poll = || {
        let mut record = not_modified("S");
        record.source_row = Some(began.source_id);
        record.due_jitter = Some(tradefeed::store::DueJitter {
            max_jitter: Duration::ZERO,
            schedule: polled.schedule.as_str().to_string(),
            after: Utc::now(),
            moved: tradefeed::scheduler::due_under_jitter,
        });
        record
    };
    assert_eq!(
        store.record_poll(poll()).await.unwrap().schedule_moved,
        None
    );

    let renamed = Source {
        name: "Renamed".into(),
        schedule: Schedule::parse("*/5 * * * *").unwrap(),
        ..polled.clone()
    };
    // The reload records its jitter before the sources, as the daemon's does.
    tradefeed::scheduler::rejitter_due_times(&store, Duration::from_secs(30))
        .await
        .unwrap();
    sync(&store, &[renamed]).await.unwrap();
    assert_eq!(
        store.record_poll(poll()).await.unwrap().schedule_moved,
        Some(tradefeed::store::MovedSchedule {
            source: "Renamed".into(),
            schedule: "*/5 * * * *".into(),
            max_jitter: Some(Duration::from_secs(30)),
        })
    );
    store.close().await;
}

/// A source given a new URL is due at once; a second reload that changes its schedule before
/// the new URL was polled must not schedule it by the old URL's last poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_schedule_does_not_delay_a_source_still_due_at_once_for_its_new_url() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    sync(&store, &[source("S")]).await.unwrap();
    store.record_poll(not_modified("S")).await.unwrap();
    let mut moved = source("S");
    moved.url = "https://new.example/feed".into();
    sync(&store, std::slice::from_ref(&moved)).await.unwrap();
    moved.schedule = Schedule::parse("@yearly").unwrap();
    sync(&store, std::slice::from_ref(&moved)).await.unwrap();
    let state = store.source_state("S").await.unwrap().unwrap();
    assert_eq!(state.schedule, "@yearly");
    assert_eq!(state.next_due, None, "still due at once by its new URL");
    assert_eq!(store.due_sources(Utc::now()).await.unwrap(), ["S"]);
    store.close().await;
}

/// A reload changes a source's schedule while its poll runs; the poll ends and the daemon
/// works out its next time by the new schedule. Before that time is written, a second reload
/// gives the source a new URL, due at once. The late write is of the old URL's time and must
/// not put the new URL off until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_due_time_worked_out_for_an_old_url_does_not_delay_the_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    let old = source("S");
    sync(&store, std::slice::from_ref(&old)).await.unwrap();
    store.record_poll(not_modified("S")).await.unwrap();
    let mut moved = old.clone();
    moved.url = "https://new.example/feed".into();
    sync(&store, std::slice::from_ref(&moved)).await.unwrap();
    assert_eq!(
        store.source_state("S").await.unwrap().unwrap().next_due,
        None
    );

    let next_january = Utc::now() + chrono::Duration::days(365);
    let set = store
        .set_next_due("S", &old.url, old.schedule.as_str(), next_january)
        .await
        .unwrap();
    assert!(!set, "the old URL's time is not written");
    let state = store.source_state("S").await.unwrap().unwrap();
    assert_eq!(state.next_due, None, "still due at once by its new URL");
    assert_eq!(store.due_sources(Utc::now()).await.unwrap(), ["S"]);

    // A time worked out for the URL the source has is written.
    let soon = chrono::DateTime::from_timestamp(Utc::now().timestamp() + 60, 0).unwrap();
    assert!(
        store
            .set_next_due("S", &moved.url, moved.schedule.as_str(), soon)
            .await
            .unwrap()
    );
    let state = store.source_state("S").await.unwrap().unwrap();
    assert_eq!(state.next_due, Some(soon));
    store.close().await;
}

/// A reload moves a source from every minute to yearly while its poll runs; the poll ends and
/// the daemon works out next January by the yearly schedule. Before that time is written, a
/// second reload sets the schedule back to every minute and `sync_sources` writes the next
/// minute. The late write is by a schedule the source no longer has and must not make it
/// silent until January.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_next_due_time_worked_out_by_a_replaced_schedule_does_not_overwrite_the_newer_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    let mut minutely = source("S");
    minutely.schedule = Schedule::parse("* * * * *").unwrap();
    sync(&store, std::slice::from_ref(&minutely)).await.unwrap();
    store.record_poll(not_modified("S")).await.unwrap();
    let mut yearly = minutely.clone();
    yearly.schedule = Schedule::parse("@yearly").unwrap();
    // Reload 1 (mid-poll), then reload 2 back to every minute.
    sync(&store, std::slice::from_ref(&yearly)).await.unwrap();
    sync(&store, std::slice::from_ref(&minutely)).await.unwrap();
    let by_minute = store.source_state("S").await.unwrap().unwrap().next_due;
    let by_minute = by_minute.expect("a time by the every-minute schedule");
    assert!(by_minute <= Utc::now() + chrono::Duration::minutes(2));

    // The late write of the time worked out by the yearly schedule.
    let next_january = Utc::now() + chrono::Duration::days(365);
    let set = store
        .set_next_due("S", &yearly.url, yearly.schedule.as_str(), next_january)
        .await
        .unwrap();
    assert!(!set, "a time by the replaced schedule is not written");
    let state = store.source_state("S").await.unwrap().unwrap();
    assert_eq!(state.schedule, "* * * * *");
    assert_eq!(state.next_due, Some(by_minute), "still due by the minute");

    // A time worked out by the schedule the source has is written.
    let soon = chrono::DateTime::from_timestamp(Utc::now().timestamp() + 30, 0).unwrap();
    assert!(
        store
            .set_next_due("S", &minutely.url, minutely.schedule.as_str(), soon)
            .await
            .unwrap()
    );
    let state = store.source_state("S").await.unwrap().unwrap();
    assert_eq!(state.next_due, Some(soon));
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_before_migration_04_keeps_its_entries_and_stories_without_the_entry_text()
{
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    // The schema as the previous release left it (migrations 1 to 3), with one of everything.
    let conn = schema_at(&db, 3);
    conn.execute_batch(
        "INSERT INTO sources (name, url, schedule) VALUES ('A', 'https://a.example/feed', '@hourly');
         INSERT INTO stories (title, html, text, authors, published, updated, first_seen)
         VALUES ('Steel duties', '<p>Duties on steel.</p>', 'Duties on steel.', '[]', 1, 1, 1);
         INSERT INTO entries (source_id, identity, story_id, title, authors, published, updated,
                              html, text, fingerprint, content_hash, evidence, first_seen,
                              last_changed)
         VALUES (1, 'guid:1', 1, 'Steel duties', '[]', 1, 1, '<p>Duties on steel.</p>',
                 'Duties on steel.', 'fp', 'hash-1', 'first appearance', 1, 1);
         UPDATE stories SET representative = 1;",
    )
    .unwrap();
    drop(conn);

    let store = Store::open(&db, Access::ReadWrite).unwrap();
    assert_eq!(
        store.counts().await.unwrap(),
        (1, 1),
        "(stories, entries) kept"
    );
    let story = store.story(1).await.unwrap().expect("the story");
    assert_eq!(
        (story.title.as_str(), story.text.as_str()),
        ("Steel duties", "Duties on steel.")
    );
    store.close().await;

    let conn = rusqlite::Connection::open(&db).unwrap();
    let columns = columns(&conn, "entries");
    assert!(!columns.iter().any(|c| c == "text"), "{columns:?}");
    let kept: (String, String, String) = conn
        .query_row(
            "SELECT identity, html, content_hash FROM entries WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        kept,
        (
            "guid:1".to_string(),
            "<p>Duties on steel.</p>".to_string(),
            "hash-1".to_string()
        )
    );
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// Migration 06 drops the story's copy of its representative's HTML: a story is read with the
/// HTML of the entry that represents it, from a previous release's file as from a new one, and
/// after a prune has handed the story to a surviving copy (whose title, link and authors go
/// with its HTML). A story that an earlier release's prune had repointed without them gets
/// them from the migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_is_read_with_its_representatives_html_after_migration_06_and_after_a_prune() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    // The schema as the previous release left it (migrations 1 to 5). Story 1 is told by A (its
    // representative), then B and C; story 2 is represented by D's entry but still carries the
    // title, link and authors of an entry an earlier prune removed.
    let conn = schema_at(&db, 5);
    conn.execute_batch(
        "INSERT INTO sources (name, url, schedule) VALUES
             ('A', 'https://a.example/feed', '@hourly'), ('B', 'https://b.example/feed', '@hourly'),
             ('C', 'https://c.example/feed', '@hourly'), ('D', 'https://d.example/feed', '@hourly');
         INSERT INTO stories (title, link, html, text, authors, published, updated, first_seen)
         VALUES ('Steel duties', 'https://a.example/1', '<p>A: duties on steel.</p>',
                 'A: duties on steel.', '[\"Ann\"]', 1, 1, 1),
                ('Old title', 'https://gone.example/1', '<p>Gone.</p>', 'Quotas on cars.',
                 '[\"Gone\"]', 1, 1, 1);
         INSERT INTO entries (source_id, identity, story_id, title, link, authors, published,
                              updated, html, fingerprint, content_hash, evidence, first_seen,
                              last_changed)
         VALUES (1, 'guid:a1', 1, 'Steel duties', 'https://a.example/1', '[\"Ann\"]', 1, 1,
                 '<p>A: duties on steel.</p>', 'fp-a', 'hash-a', 'first appearance', 1, 1),
                (2, 'guid:b1', 1, 'EU steel duties', 'https://b.example/1', '[\"Bo\"]', 1, 1,
                 '<p>B: duties on steel.</p>', 'fp-b', 'hash-b', 'url', 5000000000, 5000000000),
                (3, 'guid:c1', 1, 'Steel duties rise', 'https://c.example/1', '[]', 1, 1,
                 '<p>C: duties on steel.</p>', 'fp-c', 'hash-c', 'url', 5000000000, 5000000000),
                (4, 'guid:d1', 2, 'Car quotas', 'https://d.example/1', '[\"Di\"]', 1, 1,
                 '<p>D: quotas on cars.</p>', 'fp-d', 'hash-d', 'url', 5000000000, 5000000000);
         UPDATE stories SET representative = 1 WHERE id = 1;
         UPDATE stories SET representative = 4 WHERE id = 2;",
    )
    .unwrap();
    drop(conn);

    let store = Store::open(&db, Access::ReadWrite).unwrap();
    let story = store.story(1).await.unwrap().expect("story 1");
    assert_eq!(
        (
            story.title.as_str(),
            story.html.as_str(),
            story.text.as_str()
        ),
        (
            "Steel duties",
            "<p>A: duties on steel.</p>",
            "A: duties on steel."
        ),
        "read with its representative's HTML"
    );
    let story = store.story(2).await.unwrap().expect("story 2");
    assert_eq!(
        shown(&story),
        (
            "Car quotas",
            Some("https://d.example/1"),
            vec!["Di".to_string()],
            "<p>D: quotas on cars.</p>",
            "Quotas on cars."
        ),
        "the migration gives a story repointed by an old prune its representative's title, \
         link and authors"
    );

    // A's entry is older than the cutoff; B's and C's (first seen far in the future) are not.
    let pruned = store
        .prune(chrono::DateTime::from_timestamp(1_000, 0).unwrap())
        .await
        .unwrap();
    assert_eq!(pruned, (1, 0), "A's entry went, the story stayed");
    let story = store.story(1).await.unwrap().expect("story 1");
    assert_eq!(
        shown(&story),
        (
            "EU steel duties",
            Some("https://b.example/1"),
            vec!["Bo".to_string()],
            "<p>B: duties on steel.</p>",
            "A: duties on steel."
        ),
        "the oldest surviving copy (B, not C) represents the story with its title, link, \
         authors and HTML; the text stays"
    );
    assert!(
        story.updated > chrono::DateTime::from_timestamp(1, 0).unwrap(),
        "the story counts as updated: {}",
        story.updated
    );
    store.close().await;

    let conn = rusqlite::Connection::open(&db).unwrap();
    let columns = columns(&conn, "stories");
    assert!(!columns.iter().any(|c| c == "html"), "{columns:?}");
    assert!(columns.iter().any(|c| c == "text"), "{columns:?}");
    assert_eq!(integrity(&conn), "ok");
}

/// What a feed shows of a story: title, link, authors, HTML and text.
fn shown(story: &StoryView) -> (&str, Option<&str>, Vec<String>, &str, &str) {
    (
        &story.title,
        story.link.as_deref(),
        story.authors.clone(),
        &story.html,
        &story.text,
    )
}

/// The names of a table's columns.
fn columns(conn: &rusqlite::Connection, table: &str) -> Vec<String> {
    conn.prepare("SELECT name FROM pragma_table_info(?1)")
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Pairs of row ids, e.g. (entry, its story).
type IdPairs = Vec<(i64, i64)>;

/// (id, story) of every entry and (id, representative) of every story, in id order.
/// Every row's parent exists: the writer keeps the schema's foreign keys itself (SQLite does
/// not check them on its connection), so this is what would notice one it broke.
fn assert_foreign_keys_hold(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    // (table, rowid (NULL in a WITHOUT ROWID table), parent table)
    let broken: Vec<(String, Option<i64>, String)> = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(broken.is_empty(), "rows without their parent: {broken:?}");
}

fn entry_and_story_ids(db: &Path) -> (IdPairs, IdPairs) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let pairs = |sql: &str| -> IdPairs {
        conn.prepare(sql)
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    (
        pairs("SELECT id, story_id FROM entries ORDER BY id"),
        pairs("SELECT id, representative FROM stories ORDER BY id"),
    )
}

/// The writer gives a new entry its id before inserting it, so that a new story is inserted
/// with its representative already set. The ids must be the ones SQLite's AUTOINCREMENT would
/// give: never one of a pruned entry's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_stories_are_represented_by_their_entry_and_ids_are_never_reused_after_a_prune() {
    let item = |n: u32| {
        (
            format!("a{n}"),
            format!("http://a.example/{n}"),
            format!("Trade item {n} about tariffs on steel and aluminium"),
            format!("Story {n}: the ministry announced new duties on imports, officials said."),
        )
    };
    let feed = |numbers: &[u32]| {
        let items: Vec<_> = numbers.iter().map(|&n| item(n)).collect();
        let rows: Vec<(&str, &str, &str, &str, &str)> = items
            .iter()
            .map(|(g, l, t, d)| {
                (
                    g.as_str(),
                    l.as_str(),
                    t.as_str(),
                    d.as_str(),
                    "Tue, 10 Nov 2026 09:00:00 GMT",
                )
            })
            .collect();
        common::Resource::feed(common::rss("A", &rows))
    };
    let server = common::FeedServer::start().await;
    server.put("a.xml", feed(&[1, 2]));
    // B runs A's first item under the same link: it joins A's story.
    server.put("b.xml", feed(&[1]));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(
        dir.path(),
        &[
            ("A", server.url("a.xml")),
            ("B", server.url("b.xml")),
            ("C", server.url("c.xml")),
        ],
        "",
    );
    let config = tradefeed::config::Config::load(&path).unwrap();
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    let (a, b, c) = (
        config.sources[0].clone(),
        config.sources[1].clone(),
        config.sources[2].clone(),
    );
    tradefeed::app::fetch_once(&pipeline, vec![a.clone()], 4).await;
    tradefeed::app::fetch_once(&pipeline, vec![b], 4).await;
    let db = pipeline.store.path().to_path_buf();
    let (entries, stories) = entry_and_story_ids(&db);
    assert_eq!(entries, [(1, 1), (2, 2), (3, 1)]);
    assert_eq!(stories, [(1, 1), (2, 2)]);
    assert_foreign_keys_hold(&db);

    // A re-scoring reads story 1 before the prune.
    let read = pipeline.store.stories_for_scoring(0, 1).await.unwrap();
    assert_eq!(read.len(), 1);
    let pruned = pipeline
        .store
        .prune(Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(pruned, (3, 2));
    // The stories' exact-duplicate keys and scores went with them.
    let left: (i64, i64) = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT (SELECT count(*) FROM story_keys), (SELECT count(*) FROM story_topics)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(left, (0, 0), "keys and scores of pruned stories");
    assert_foreign_keys_hold(&db);
    // Writing after it, it brings no scores back for the story that is gone, and says so.
    let read = read.into_iter().next().unwrap();
    assert_eq!(read.story, 1);
    let not_written = pipeline
        .store
        .replace_scores(vec![(read, vec![trade_score(0.9, "tariff".into())])])
        .await
        .unwrap();
    assert_eq!(not_written, [1]);
    assert_foreign_keys_hold(&db);
    // A still lists its two pruned items, and a new one.
    server.put("a.xml", feed(&[1, 2, 3]));
    tradefeed::app::fetch_once(&pipeline, vec![a], 4).await;
    let (entries, stories) = entry_and_story_ids(&db);
    assert_eq!(
        entries,
        [(4, 3)],
        "pruned items stay out, ids and story ids go on"
    );
    assert_eq!(stories, [(3, 4)]);
    // C, new, runs item 1 under the pruned story's link: it starts a story of its own (with
    // the pruned story's key left behind, it joined that story, which no longer exists).
    server.put("c.xml", feed(&[1]));
    tradefeed::app::fetch_once(&pipeline, vec![c], 4).await;
    let (entries, stories) = entry_and_story_ids(&db);
    assert_eq!(entries, [(4, 3), (5, 4)]);
    assert_eq!(stories, [(3, 4), (4, 5)]);
    assert_foreign_keys_hold(&db);
    pipeline.store.close().await;
}

/// Migration 05 stores exact-duplicate keys as hashes, which SQL cannot compute: the store
/// rehashes a previous release's text keys when it opens the file, and a copy arriving
/// afterwards still finds its story through them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_keys_from_before_migration_05_are_rehashed_and_still_join_copies() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::FeedServer::start().await;
    let link = "https://a.example/news/steel-duties";
    server.put(
        "b.xml",
        common::Resource::feed(common::rss(
            "B",
            &[(
                "b1",
                link,
                "EU steel duties (B's copy)",
                "B runs the story under the same link.",
                "Tue, 10 Nov 2026 09:00:00 GMT",
            )],
        )),
    );
    let path = common::write_config(
        dir.path(),
        &[("A", server.url("a.xml")), ("B", server.url("b.xml"))],
        "",
    );

    // The database as the previous release left it (migrations 1 to 4): A's story with its
    // two text keys.
    let db = dir.path().join("tradefeed.db");
    let conn = schema_at(&db, 4);
    conn.execute(
        "INSERT INTO sources (name, url, schedule) VALUES ('A', 'https://a.example/feed', '@hourly')",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO stories (title, html, text, authors, published, updated, first_seen)
         VALUES ('EU steel duties', '<p>Duties.</p>', 'Duties.', '[]', 1, 1, 1)",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO entries (source_id, identity, story_id, title, link, canonical_url,
                              authors, published, updated, html, fingerprint, content_hash,
                              evidence, first_seen, last_changed)
         VALUES (1, 'guid:a1', 1, 'EU steel duties', ?1, ?1, '[]', 1, 1, '<p>Duties.</p>',
                 'fp-a1', 'hash-a1', 'first appearance', 1, 1)",
        [link],
    )
    .unwrap();
    conn.execute_batch(&format!(
        "UPDATE stories SET representative = 1;
         INSERT INTO story_keys (key, story_id) VALUES ('url:{link}', 1), ('fp:fp-a1', 1);"
    ))
    .unwrap();
    drop(conn);

    let config = tradefeed::config::Config::load(&path).unwrap();
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    let b = config.sources.iter().find(|s| s.name == "B").unwrap();
    tradefeed::app::fetch_once(&pipeline, vec![b.clone()], 4).await;
    pipeline.store.close().await;
    drop(pipeline);

    let conn = rusqlite::Connection::open(&db).unwrap();
    let joined: (i64, String) = conn
        .query_row(
            "SELECT story_id, evidence FROM entries WHERE identity != 'guid:a1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(joined, (1, "same canonical URL".to_string()));
    let (keys, blobs, leftover): (i64, i64, i64) = conn
        .query_row(
            "SELECT count(*), sum(typeof(key) = 'blob' AND length(key) = 16),
                    (SELECT count(*) FROM sqlite_schema WHERE name = 'story_keys_text')
             FROM story_keys",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    // A's two keys, and B's fingerprint and headline keys (its URL key is A's).
    assert_eq!((keys, blobs, leftover), (4, 4, 0));
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// A fetched poll of `source` carrying one new entry per (identity, link) given.
fn fetched(source: &str, items: &[(&str, &str)]) -> PollRecord {
    let now = Utc::now();
    let entries = items
        .iter()
        .map(|&(identity, link)| EntryWrite {
            entry: tradefeed::domain::Entry {
                identity: identity.into(),
                title: format!("Steel duties story {identity}"),
                earlier_title: None,
                content_hash_with_dates: String::new(),
                content_hash_with_pixels: None,
                media: Default::default(),
                content_hash_without_media: None,
                relative_urls: false,
                content_hash_exact_white_space: String::new(),
                content_hash_exact_white_space_without_media: None,
                untracked_hash: None,
                link: Some(link.into()),
                canonical_url: Some(link.into()),
                authors: vec![],
                published: now,
                updated: now,
                dated: true,
                html: format!("<p>Text of {identity}.</p>"),
                text: format!("Text of {identity}."),
                fingerprint: format!("fp-{identity}"),
                content_hash: format!("hash-{identity}"),
                base_url: None,
            },
            signature: None,
            near_matches: Vec::new(),
            headline: None,
            scores: Some(vec![]),
            replaces_hash: None,
        })
        .collect();
    PollRecord {
        source: source.into(),
        url: format!("https://{source}.example/feed"),
        source_row: None,
        started_at: now,
        duration: Duration::from_millis(3),
        outcome: PollOutcome::Fetched {
            http_status: 200,
            bytes: 100,
            etag: None,
            last_modified: None,
            listed_pruned: Some(Vec::new()),
            read_whole: true,
        },
        next_due: now + chrono::Duration::hours(1),
        due_jitter: None,
        moved_to: None,
        base_url: None,
        entries,
        listed: Default::default(),
        cluster_window: chrono::Duration::days(7),
    }
}

/// Entry ids are taken before the rows are written (so a new story is inserted with its
/// representative). A poll that fails inside a batch takes its ids back with its savepoint:
/// the next poll of the batch gets them, and every story is still represented by its own entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_poll_in_a_batch_leaves_no_story_pointing_at_a_missing_entry() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    sync(&store, &["A", "B", "C"].map(source)).await.unwrap();
    let other = rusqlite::Connection::open(&db).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER fail_b BEFORE UPDATE ON sources WHEN new.name = 'B'
             BEGIN SELECT RAISE(ABORT, 'B refuses'); END;
             BEGIN IMMEDIATE;",
        )
        .unwrap();
    let records = [
        fetched(
            "A",
            &[("a1", "https://a.example/1"), ("a2", "https://a.example/2")],
        ),
        // B's entries are written, then its source update fails: all of it rolls back.
        fetched(
            "B",
            &[("b1", "https://b.example/1"), ("b2", "https://b.example/2")],
        ),
        // C's second item is A's first story under another outlet's identity.
        fetched(
            "C",
            &[("c1", "https://c.example/1"), ("c2", "https://a.example/1")],
        ),
    ];
    let mut polls = Vec::new();
    for record in records {
        let store = store.clone();
        polls.push(tokio::spawn(async move { store.record_poll(record).await }));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    other.execute_batch("COMMIT").unwrap();
    let mut answers = Vec::new();
    for poll in polls {
        answers.push(poll.await.unwrap());
    }
    assert!(answers[0].is_ok() && answers[1].is_err() && answers[2].is_ok());
    store.close().await;

    let (entries, stories) = entry_and_story_ids(&db);
    assert_eq!(
        entries,
        [(1, 1), (2, 2), (3, 3), (4, 1)],
        "B's ids went to C"
    );
    assert_eq!(stories, [(1, 1), (2, 2), (3, 3)]);
}

/// A new database file with the schema of the first `version` migrations, as a release that
/// shipped only those left it (rusqlite_migration records the version in `user_version`).
fn schema_at(db: &Path, version: usize) -> rusqlite::Connection {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut steps: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    steps.sort();
    assert!(steps.len() >= version, "only {} migrations", steps.len());
    let conn = rusqlite::Connection::open(db).unwrap();
    for step in &steps[..version] {
        let sql = std::fs::read_to_string(step.join("up.sql")).unwrap();
        conn.execute_batch(&sql).unwrap();
    }
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn
}

/// Scores on the writer what the pipeline left unscored, and notes whom it was asked about.
struct LateScorer {
    asked: Arc<Mutex<Vec<String>>>,
}

impl PollHook for LateScorer {
    fn before_write(&mut self, _entries: &mut [EntryWrite]) {}
    fn after_write(&mut self, _result: &PollResult) {}
    fn rolled_back(&mut self, _result: &PollResult) {}
    fn score(&mut self, entry: &Entry) -> Vec<TopicScore> {
        self.asked.lock().unwrap().push(entry.identity.clone());
        vec![trade_score(
            0.75,
            format!("scored late: {}", entry.identity),
        )]
    }
    fn one_item_of_a_feed(&self, _own_title: &str, _own_html: &str, _new: &Entry) -> bool {
        unreachable!("no entry of these polls is a near copy")
    }

    fn templated_siblings(&self, _title: &str, _text: &str, _new: &Entry) -> bool {
        unreachable!("no entry of these polls is a near copy")
    }
}

/// A `trade-policy` score with one line of why.
fn trade_score(score: f32, why: String) -> TopicScore {
    TopicScore {
        topic: "trade-policy".into(),
        score,
        matched: score >= 0.5,
        why: vec![why],
    }
}

/// A poll of `source` with one new entry at the shared URL, `words` words long, left unscored
/// when `scored` is false.
fn copy_of_the_story(source: &str, identity: &str, words: usize, scored: bool) -> PollRecord {
    let mut poll = fetched(source, &[(identity, "https://wire.example/steel")]);
    let write = &mut poll.entries[0];
    write.entry.text = vec!["steel"; words].join(" ");
    // The text is what the HTML reads as: an edit of one is an edit of the other.
    write.entry.html = format!("<p>{}</p>", write.entry.text);
    write.scores = scored.then(|| vec![trade_score(0.25, format!("scored early: {identity}"))]);
    poll
}

/// The pipeline may leave a copy unscored: the writer asks the poll's hook for its scores only
/// when the copy becomes or is the story's representative (a new story, a longer copy, an edit
/// of the representative), and the story's topics are then the copy's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unscored_entries_are_scored_by_the_hook_only_when_they_represent_their_story() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    sync(&store, &["A", "B", "C", "D"].map(source))
        .await
        .unwrap();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let topics = |db: &Path| -> Vec<(i64, String)> {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut rows = conn
            .prepare("SELECT story_id, why FROM story_topics ORDER BY story_id")
            .unwrap();
        rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let poll = |record: PollRecord| {
        let store = store.clone();
        let hook: Box<dyn PollHook> = Box::new(LateScorer {
            asked: Arc::clone(&asked),
        });
        async move { store.record_poll_with(record, Some(hook)).await.unwrap() }
    };

    // The first appearance makes the story: it is scored.
    poll(copy_of_the_story("A", "a", 100, false)).await;
    assert_eq!(*asked.lock().unwrap(), ["a"]);
    assert_eq!(topics(&db), [(1, r#"["scored late: a"]"#.to_string())]);

    // A copy no longer than the representative joins without being scored.
    let joined = poll(copy_of_the_story("B", "b", 105, false)).await;
    assert_eq!(joined.placements[0].story, 1);
    assert_eq!(*asked.lock().unwrap(), ["a"]);

    // A longer copy comes to represent the story: scored, and its scores are the story's.
    poll(copy_of_the_story("C", "c", 200, false)).await;
    assert_eq!(*asked.lock().unwrap(), ["a", "c"]);
    assert_eq!(topics(&db), [(1, r#"["scored late: c"]"#.to_string())]);

    // An edit of a copy that does not represent the story is not scored; an edit of the
    // representative is, and replaces the story's scores.
    let mut edited_b = copy_of_the_story("B", "b", 110, false);
    edited_b.entries[0].entry.content_hash = "hash-b-2".into();
    assert_eq!(poll(edited_b).await.updated_entries, 1);
    assert_eq!(*asked.lock().unwrap(), ["a", "c"]);
    let mut edited_c = copy_of_the_story("C", "c", 210, false);
    edited_c.entries[0].entry.content_hash = "hash-c-2".into();
    edited_c.entries[0].entry.fingerprint = "fp-c-2".into();
    assert_eq!(poll(edited_c).await.updated_entries, 1);
    assert_eq!(*asked.lock().unwrap(), ["a", "c", "c"]);

    // Scores the pipeline worked out are used as they are.
    poll(copy_of_the_story("D", "d", 400, true)).await;
    assert_eq!(*asked.lock().unwrap(), ["a", "c", "c"]);
    assert_eq!(topics(&db), [(1, r#"["scored early: d"]"#.to_string())]);
}

/// What a poll's hook leaves on the writer thread can be handed back: tasks registered with
/// `when_writer_idle` run on the writer thread once it has gone quiet after writing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tasks_run_on_the_writer_thread_once_it_goes_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    sync(&store, &[source("A")]).await.unwrap();
    let ran_on = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&ran_on);
    store.when_writer_idle(move || {
        let thread = std::thread::current().name().unwrap_or("").to_string();
        log.lock().unwrap().push(thread);
    });
    let runs = || ran_on.lock().unwrap().len();
    let quiet = |before: usize| async move {
        for _ in 0..100 {
            if runs() > before {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no idle run within 5 s");
    };
    quiet(0).await;
    // Idle and nothing written since: it does not run again and again.
    let settled = runs();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    assert_eq!(runs(), settled);
    // A write makes the writer busy; once it is quiet again, the task runs again.
    store
        .record_poll_with(fetched("A", &[("a1", "https://a.example/1")]), None)
        .await
        .unwrap();
    quiet(settled).await;
    assert!(
        ran_on.lock().unwrap().iter().all(|t| t == "store-writer"),
        "{:?}",
        ran_on.lock().unwrap()
    );
    store.close().await;
}

/// The store's data version (which invalidates rendered feeds) moves when a poll that stored
/// entries commits, before any poll is answered, and also when the poll's caller stopped
/// waiting for the answer; a poll that stored nothing leaves it.
#[tokio::test]
async fn a_committed_poll_moves_the_data_version_even_if_nobody_awaits_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("tradefeed.db"), Access::ReadWrite).unwrap();
    sync(&store, &[source("A"), source("B")]).await.unwrap();

    let start = store.data_version();
    store.record_poll(not_modified("A")).await.unwrap();
    assert_eq!(store.data_version(), start, "a poll that stored nothing");

    let queued = store
        .queue_poll(fetched("A", &[("a-1", "https://a.example/1")]), None)
        .await
        .unwrap();
    drop(queued);
    // The writer takes jobs in order: once this one is answered, the dropped one has committed.
    store.record_poll(not_modified("B")).await.unwrap();
    let after_dropped = store.data_version();
    assert!(after_dropped > start, "the dropped poll stored an entry");

    let result = store
        .record_poll(fetched("B", &[("b-1", "https://b.example/1")]))
        .await
        .unwrap();
    assert_eq!(result.new_entries, 1);
    assert!(
        store.data_version() > after_dropped,
        "moved before the answer"
    );
    store.close().await;
}

/// A story key whose story is gone (only a damaged database has one: keys go with their
/// story) is not joined: the copy starts a story of its own, which takes the key over, so the
/// next copy joins it instead of starting a third.
#[tokio::test]
async fn a_key_left_by_a_vanished_story_passes_to_the_next_story_that_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    sync(&store, &[source("A"), source("B"), source("C")])
        .await
        .unwrap();
    let link = "https://wire.example/steel";
    store
        .record_poll(fetched("A", &[("a-1", link)]))
        .await
        .unwrap();

    // The damage: the story and its entry go, its keys stay (without the schema's cascade).
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM entries; DELETE FROM stories;")
        .unwrap();
    let keys: i64 = conn
        .query_row("SELECT count(*) FROM story_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        keys, 2,
        "the URL and fingerprint keys of the vanished story"
    );

    let b = store
        .record_poll(fetched("B", &[("b-1", link)]))
        .await
        .unwrap();
    assert_eq!((b.new_entries, b.new_stories), (1, 1));
    let c = store
        .record_poll(fetched("C", &[("c-1", link)]))
        .await
        .unwrap();
    assert_eq!(
        (c.new_entries, c.new_stories),
        (1, 0),
        "C joins B's story by its URL"
    );
    let (stories, entries_story): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM stories), count(DISTINCT story_id) FROM entries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((stories, entries_story), (1, 1));
    store.close().await;
}

#[tokio::test]
async fn a_first_poll_that_repeats_an_identity_stores_it_once_and_later_polls_find_what_it_stored()
{
    // The first poll of a source skips the lookup of each entry's stored row (there is none):
    // an identity it repeats must still find the row its first copy wrote.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), Access::ReadWrite).unwrap();
    sync(&store, &[source("wire")]).await.unwrap();
    let mut first = fetched(
        "wire",
        &[
            ("a", "https://wire.example/a"),
            ("b", "https://wire.example/b"),
            ("a", "https://wire.example/a"),
        ],
    );
    first.entries[2].entry.title = "Steel duties story a, edited".into();
    first.entries[2].entry.content_hash = "hash-a-edited".into();
    let written = store.record_poll(first).await.unwrap();
    assert_eq!(
        (written.new_entries, written.updated_entries),
        (2, 1),
        "the repeated identity updated the row its first copy wrote"
    );

    // A later poll of the same source looks rows up as always.
    let mut second = fetched(
        "wire",
        &[
            ("a", "https://wire.example/a"),
            ("c", "https://wire.example/c"),
        ],
    );
    second.entries[0].entry.title = "Steel duties story a, edited".into();
    second.entries[0].entry.content_hash = "hash-a-edited".into();
    let written = store.record_poll(second).await.unwrap();
    assert_eq!(
        (
            written.new_entries,
            written.updated_entries,
            written.unchanged_entries
        ),
        (1, 0, 1)
    );
    store.close().await;
    let conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
    assert_eq!(entry_count(&conn), 3);
}

/// Lets `days` pass for what the store remembers: every time it keeps moves that far back.
/// (The store's clock is the system's; moving the data is how a test lets weeks go by.)
fn age(db: &Path, days: i64) {
    let d = days * 86_400;
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(&format!(
            "UPDATE entries SET first_seen = first_seen - {d}, published = published - {d},
                    updated = updated - {d}, last_changed = last_changed - {d};
             UPDATE stories SET first_seen = first_seen - {d}, published = published - {d},
                    updated = updated - {d};
             UPDATE tombstones SET pruned_at = pruned_at - {d}, missed_at = missed_at - {d};
             UPDATE fetches SET started_at = started_at - {d};
             UPDATE sources SET last_attempt = last_attempt - {d}, last_success = last_success - {d},
                    last_new_entry = last_new_entry - {d}, next_due = next_due - {d},
                    retry_not_before = retry_not_before - {d};"
        ))
        .unwrap();
}

/// The identities that have a tombstone, by source, sorted.
fn tombstones(db: &Path) -> Vec<(String, String)> {
    common::row_pairs(
        db,
        "SELECT s.name, t.identity FROM tombstones t JOIN sources s ON s.id = t.source_id
          ORDER BY s.name, t.identity",
    )
}

/// A feed of items with guids `ids` and no dates, the items a tombstone guards: the ingest
/// dates each at the poll that first sees it, so retention's date rule never keeps it out.
/// `edition` changes the bytes, so that each poll is a 200 rather than a 304.
fn undated_feed(edition: usize, ids: &[String]) -> common::Resource {
    let mut xml = format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Edition {edition}</title>\
         <link>http://u.example/</link><description>d</description>\n"
    );
    for id in ids {
        xml.push_str(&format!(
            "<item><guid>{id}</guid><link>http://u.example/{id}</link>\
             <title>Ministry notice {id} on steel import duties</title>\
             <description>Notice {id}: the ministry set new duties on steel imports.</description>\
             </item>\n"
        ));
    }
    xml.push_str("</channel></rss>\n");
    common::Resource::feed(xml)
}

/// One poll of `source` in the pipeline; its report.
async fn poll_one(
    pipeline: &tradefeed::app::Pipeline,
    source: &Source,
) -> tradefeed::ingest::PollReport {
    match tradefeed::app::fetch_once(pipeline, vec![source.clone()], 1)
        .await
        .pop()
        .unwrap()
    {
        tradefeed::app::FetchPassResult::Polled(report) => {
            assert!(report.is_ok(), "{report:?}");
            report
        }
        skipped => panic!("{skipped:?}"),
    }
}

/// A retention of one day, applied now as the daemon's pruner does.
async fn prune_one_day(store: &Store) {
    store
        .prune(Utc::now() - chrono::Duration::days(1))
        .await
        .unwrap();
}

fn ids(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn stones(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(s, i)| (s.to_string(), format!("guid:{i}")))
        .collect()
}

/// Retention remembers the identities it prunes so that a feed still listing them cannot
/// bring them back. Such a tombstone lasts while the feed lists its identity, however long;
/// once the feed has stopped listing it, or its source has left the config, it goes after a
/// grace period (the retention, at least a week), so the table does not grow for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_lasts_while_its_feed_lists_it_and_goes_a_grace_after_it_stops() {
    let server = common::FeedServer::start().await;
    server.put("a.xml", undated_feed(1, &ids(&["a1", "a2", "a3"])));
    server.put("r.xml", undated_feed(1, &ids(&["r1"])));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(
        dir.path(),
        &[("A", server.url("a.xml")), ("R", server.url("r.xml"))],
        "",
    );
    let config = tradefeed::config::Config::load(&path).unwrap();
    let (a, r) = (config.sources[0].clone(), config.sources[1].clone());
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    let db = pipeline.store.path().to_path_buf();
    assert_eq!(poll_one(&pipeline, &a).await.new_entries, 3);
    assert_eq!(poll_one(&pipeline, &r).await.new_entries, 1);

    // Day 2: all four entries are pruned and remembered.
    age(&db, 2);
    prune_one_day(&pipeline.store).await;
    let all = stones(&[("A", "a1"), ("A", "a2"), ("A", "a3"), ("R", "r1")]);
    assert_eq!(tombstones(&db), all);

    // Day 3: A stops listing a3; R leaves the config.
    age(&db, 1);
    server.put("a.xml", undated_feed(2, &ids(&["a1", "a2"])));
    assert_eq!(poll_one(&pipeline, &a).await.new_entries, 0, "nothing back");
    sync(&pipeline.store, std::slice::from_ref(&a))
        .await
        .unwrap();

    // Day 6: within the grace, everything is still remembered.
    age(&db, 3);
    prune_one_day(&pipeline.store).await;
    assert_eq!(tombstones(&db), all, "within the grace");
    server.put("a.xml", undated_feed(3, &ids(&["a1", "a2"])));
    assert_eq!(poll_one(&pipeline, &a).await.new_entries, 0, "nothing back");

    // Day 13, then day 60: a1 and a2, still listed, stay out for as long as they are listed;
    // a3 (not listed for ten days) and R's (out of the config as long) are forgotten.
    for (days, edition) in [(7, 4), (47, 5)] {
        age(&db, days);
        prune_one_day(&pipeline.store).await;
        assert_eq!(
            tombstones(&db),
            stones(&[("A", "a1"), ("A", "a2")]),
            "after {days} more days"
        );
        server.put("a.xml", undated_feed(edition, &ids(&["a1", "a2"])));
        let report = poll_one(&pipeline, &a).await;
        assert_eq!(
            (report.items, report.new_entries),
            (2, 0),
            "still listed, still out"
        );
    }
    // A feed that answers 304 for weeks still lists what it listed: nothing is forgotten.
    age(&db, 30);
    assert_eq!(poll_one(&pipeline, &a).await.http_status, Some(304));
    prune_one_day(&pipeline.store).await;
    assert_eq!(tombstones(&db), stones(&[("A", "a1"), ("A", "a2")]));
    pipeline.store.close().await;
    assert_foreign_keys_hold(&db);
}

/// A feed that comes back empty (a CMS failing behind a 200, a feed emptied by mistake) lists
/// nothing, which is no evidence that its items are gone for good: the source's tombstones
/// are not marked missed, however long it stays empty, and when the items come back they
/// stay out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_comes_back_empty_keeps_its_tombstones() {
    let server = common::FeedServer::start().await;
    server.put("a.xml", undated_feed(1, &ids(&["a1", "a2"])));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = tradefeed::config::Config::load(&path).unwrap();
    let a = config.sources[0].clone();
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    let db = pipeline.store.path().to_path_buf();
    assert_eq!(poll_one(&pipeline, &a).await.new_entries, 2);
    age(&db, 2);
    prune_one_day(&pipeline.store).await;
    let both = stones(&[("A", "a1"), ("A", "a2")]);
    assert_eq!(tombstones(&db), both);

    // Empty for a month, read again and again, pruned well past the grace.
    for (days, edition) in [(1, 2), (10, 3), (20, 4)] {
        age(&db, days);
        server.put("a.xml", undated_feed(edition, &[]));
        let report = poll_one(&pipeline, &a).await;
        assert_eq!((report.http_status, report.items), (Some(200), 0));
        prune_one_day(&pipeline.store).await;
        assert_eq!(
            tombstones(&db),
            both,
            "after {days} more days of an empty feed"
        );
    }
    server.put("a.xml", undated_feed(5, &ids(&["a1", "a2"])));
    let report = poll_one(&pipeline, &a).await;
    assert_eq!(
        (report.items, report.new_entries),
        (2, 0),
        "back, and still out"
    );
    pipeline.store.close().await;
}

/// Months of a busy feed under retention: every item is pruned a day or two after it
/// appears, and the feed lists each for one poll. Tombstones stay bounded by what a grace
/// period brings, while two items the feed lists all along stay out all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_stay_bounded_over_months_of_polls_and_prunes() {
    let server = common::FeedServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &[("Busy", server.url("busy.xml"))], "");
    let config = tradefeed::config::Config::load(&path).unwrap();
    let busy = config.sources[0].clone();
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    let db = pipeline.store.path().to_path_buf();
    let mut most = 0;
    for round in 0..60 {
        // Two items listed all along, two new ones each round.
        let listed = ids(&[
            "keep-1",
            "keep-2",
            &format!("n{round}a"),
            &format!("n{round}b"),
        ]);
        server.put("busy.xml", undated_feed(round, &listed));
        let report = poll_one(&pipeline, &busy).await;
        let expected_new = if round == 0 { 4 } else { 2 };
        assert_eq!(
            report.new_entries, expected_new,
            "round {round}: {report:?}"
        );
        age(&db, 2);
        prune_one_day(&pipeline.store).await;
        let count = tombstones(&db).len();
        most = most.max(count);
        // keep-1, keep-2 and two per round for a grace of 7 days (4 rounds) and one more.
        assert!(count <= 2 + 2 * 5, "round {round}: {count} tombstones");
    }
    assert!(most >= 2 + 2 * 4, "the grace is kept: at most {most}");
    let left = tombstones(&db);
    assert!(left.contains(&("Busy".to_string(), "guid:keep-1".to_string())));
    assert!(left.contains(&("Busy".to_string(), "guid:keep-2".to_string())));
    pipeline.store.close().await;
}

/// Items a poll passes over, dated before the retention or past `max_items_per_poll`, are
/// not taken in (nor looked up one by one), yet their tombstones are kept while the feed
/// lists them: a longer retention or a higher cap later must not bring them back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_a_poll_passes_over_keep_their_tombstones_while_listed() {
    let server = common::FeedServer::start().await;
    let date = |hours: i64| (Utc::now() - chrono::Duration::hours(hours)).to_rfc2822();
    let (old, older_recent, newest) = (date(5 * 24), date(2), date(1));
    let feed = |edition: &str| {
        let item = |id: &'static str, date: &str| {
            (
                id,
                "",
                "Ministry notice on steel import duties",
                "The ministry set new duties on steel imports.",
                date.to_string(),
            )
        };
        let items = [
            item("old", &old),
            item("recent-1", &older_recent),
            item("recent-2", &newest),
        ];
        let rows: Vec<(&str, &str, &str, &str, &str)> = items
            .iter()
            .map(|(g, l, t, d, p)| (*g, *l, *t, *d, p.as_str()))
            .collect();
        common::Resource::feed(common::rss(edition, &rows))
    };
    server.put("o.xml", feed("1"));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &[("Old", server.url("o.xml"))], "");
    let keep_all = tradefeed::config::Config::load(&path).unwrap();
    common::write_config(
        dir.path(),
        &[("Old", server.url("o.xml"))],
        "max_items_per_poll = 1\n",
    );
    let text = common::replaced(
        &std::fs::read_to_string(&path).unwrap(),
        "[storage]\n",
        "[storage]\nretention_days = 2\n",
    );
    std::fs::write(&path, text).unwrap();
    let strict = tradefeed::config::Config::load(&path).unwrap();
    let source = keep_all.sources[0].clone();
    let all = stones(&[("Old", "old"), ("Old", "recent-1"), ("Old", "recent-2")]);

    // Stored while all was kept, then pruned.
    let pipeline = tradefeed::app::Pipeline::start(&keep_all).await.unwrap();
    let db = pipeline.store.path().to_path_buf();
    assert_eq!(poll_one(&pipeline, &source).await.new_entries, 3);
    age(&db, 3);
    prune_one_day(&pipeline.store).await;
    assert_eq!(tombstones(&db), all);
    pipeline.store.close().await;
    drop(pipeline);

    // Months under a two-day retention and a cap of one item: at every poll the old item is
    // skipped as too old and the older recent one as past the cap; every tombstone is kept.
    let pipeline = tradefeed::app::Pipeline::start(&strict).await.unwrap();
    for edition in 2..6 {
        age(&db, 30);
        server.put("o.xml", feed(&edition.to_string()));
        let report = poll_one(&pipeline, &source).await;
        assert_eq!((report.skipped, report.new_entries), (2, 0), "{report:?}");
        prune_one_day(&pipeline.store).await;
        assert_eq!(tombstones(&db), all);
    }
    pipeline.store.close().await;
    drop(pipeline);

    // Retention and cap back as they were: every item is looked at, and stays out.
    let pipeline = tradefeed::app::Pipeline::start(&keep_all).await.unwrap();
    server.put("o.xml", feed("6"));
    let report = poll_one(&pipeline, &source).await;
    assert_eq!((report.skipped, report.new_entries), (0, 0), "{report:?}");
    pipeline.store.close().await;
}

/// The grace is counted from the first read that did not list an identity, not from the last
/// one that did. A feed that changes weekly and answers 304 in between: a week of 304s after
/// the read that listed X, then a read that drops X for a day, must not cost X its tombstone
/// (README: a week for feeds that drop an item and list it again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_dropped_for_a_day_after_a_week_of_304s_stays_out_when_listed_again() {
    let server = common::FeedServer::start().await;
    server.put("w.xml", undated_feed(1, &ids(&["x", "y"])));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &[("W", server.url("w.xml"))], "");
    let config = tradefeed::config::Config::load(&path).unwrap();
    let weekly = config.sources[0].clone();
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    let db = pipeline.store.path().to_path_buf();
    assert_eq!(poll_one(&pipeline, &weekly).await.new_entries, 2);

    // Day 2: both pruned and remembered.
    age(&db, 2);
    prune_one_day(&pipeline.store).await;
    assert_eq!(tombstones(&db), stones(&[("W", "x"), ("W", "y")]));

    // Day 8: the weekly change lists x and y; then a week of 304s, pruned every day.
    age(&db, 6);
    server.put("w.xml", undated_feed(2, &ids(&["x", "y"])));
    assert_eq!(poll_one(&pipeline, &weekly).await.new_entries, 0);
    for _ in 0..8 {
        age(&db, 1);
        assert_eq!(poll_one(&pipeline, &weekly).await.http_status, Some(304));
        prune_one_day(&pipeline.store).await;
    }
    assert_eq!(tombstones(&db), stones(&[("W", "x"), ("W", "y")]));

    // Day 16: the next change drops x for a day; the prune after it keeps x's tombstone.
    server.put("w.xml", undated_feed(3, &ids(&["y"])));
    assert_eq!(poll_one(&pipeline, &weekly).await.new_entries, 0);
    prune_one_day(&pipeline.store).await;
    assert_eq!(
        tombstones(&db),
        stones(&[("W", "x"), ("W", "y")]),
        "x was missed only now"
    );

    // Day 17: x is listed again and stays out.
    age(&db, 1);
    server.put("w.xml", undated_feed(4, &ids(&["x", "y"])));
    let report = poll_one(&pipeline, &weekly).await;
    assert_eq!((report.items, report.new_entries), (2, 0), "x came back");

    // Day 18 on: x dropped for good goes a grace (a week) after the first read that missed it.
    age(&db, 1);
    server.put("w.xml", undated_feed(5, &ids(&["y"])));
    assert_eq!(poll_one(&pipeline, &weekly).await.new_entries, 0);
    age(&db, 6);
    prune_one_day(&pipeline.store).await;
    assert_eq!(
        tombstones(&db),
        stones(&[("W", "x"), ("W", "y")]),
        "six days after"
    );
    age(&db, 2);
    prune_one_day(&pipeline.store).await;
    assert_eq!(tombstones(&db), stones(&[("W", "y")]), "eight days after");
    pipeline.store.close().await;
}

/// Tombstones from before migration 09 have no `missed_at`: they count as not yet missed, so
/// none is forgotten at the upgrade, whatever the fetch log says; the first read of their feed
/// decides, and those it does not list go a grace after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_from_before_migration_09_go_a_grace_after_the_first_read_that_misses_them() {
    let server = common::FeedServer::start().await;
    server.put("m.xml", undated_feed(1, &ids(&["old-1", "new"])));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &[("M", server.url("m.xml"))], "");
    let config = tradefeed::config::Config::load(&path).unwrap();
    let source = config.sources[0].clone();
    // The previous release's file: two tombstones a month old, and a read of the feed since,
    // after which that release forgot both at its next prune.
    let conn = schema_at(&dir.path().join("tradefeed.db"), 8);
    conn.execute(
        "INSERT INTO sources (name, url, schedule) VALUES ('M', ?1, '*/30 * * * *')",
        [server.url("m.xml")],
    )
    .unwrap();
    conn.execute_batch(
        "INSERT INTO tombstones (source_id, identity, pruned_at)
         VALUES (1, 'guid:old-1', unixepoch() - 30 * 86400),
                (1, 'guid:old-2', unixepoch() - 30 * 86400);
         INSERT INTO fetches (source_id, started_at, duration_ms, outcome, http_status, bytes,
                              new_entries, updated_entries)
         VALUES (1, unixepoch() - 20 * 86400, 5, 'ok', 200, 100, 0, 0);",
    )
    .unwrap();
    drop(conn);

    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    let db = pipeline.store.path().to_path_buf();
    prune_one_day(&pipeline.store).await;
    assert_eq!(
        tombstones(&db),
        stones(&[("M", "old-1"), ("M", "old-2")]),
        "none forgotten at the upgrade"
    );
    // The first read lists old-1 (which stays out) and not old-2.
    let report = poll_one(&pipeline, &source).await;
    assert_eq!((report.items, report.new_entries), (2, 1), "{report:?}");
    age(&db, 6);
    prune_one_day(&pipeline.store).await;
    assert_eq!(
        tombstones(&db),
        stones(&[("M", "new"), ("M", "old-1"), ("M", "old-2")]),
        "within the grace"
    );
    age(&db, 2);
    prune_one_day(&pipeline.store).await;
    assert_eq!(
        tombstones(&db),
        stones(&[("M", "new"), ("M", "old-1")]),
        "old-2 a grace after the read that missed it"
    );
    pipeline.store.close().await;
}

/// Counts from now on every row write to `tombstones` by the store (a trigger in the file,
/// run by the store's writer), in `tombstone_writes`; not those of [`age`], which move
/// `pruned_at` back.
fn count_tombstone_writes(db: &Path) {
    rusqlite::Connection::open(db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE tombstone_writes (identity TEXT NOT NULL);
             CREATE TRIGGER tombstone_updated AFTER UPDATE ON tombstones
             WHEN new.pruned_at >= old.pruned_at
             BEGIN INSERT INTO tombstone_writes VALUES (new.identity); END;",
        )
        .unwrap();
}

/// The tombstone row writes counted since the last call, by identity, sorted.
fn tombstone_writes(db: &Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut statement = conn
        .prepare("SELECT identity FROM tombstone_writes ORDER BY identity")
        .unwrap();
    let writes = statement
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    conn.execute("DELETE FROM tombstone_writes", []).unwrap();
    writes
}

/// A feed that goes on listing pruned items costs no tombstone write per read: only a read
/// that changes what is known (the first to miss an identity, the first to list it again)
/// writes, and only that row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_that_list_the_same_pruned_items_write_no_tombstone() {
    let server = common::FeedServer::start().await;
    let listed: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    server.put("p.xml", undated_feed(0, &listed));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &[("P", server.url("p.xml"))], "");
    let config = tradefeed::config::Config::load(&path).unwrap();
    let source = config.sources[0].clone();
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    let db = pipeline.store.path().to_path_buf();
    assert_eq!(poll_one(&pipeline, &source).await.new_entries, 40);
    age(&db, 2);
    prune_one_day(&pipeline.store).await;
    assert_eq!(tombstones(&db).len(), 40);
    count_tombstone_writes(&db);

    // Three weeks of daily reads listing all forty: nothing written.
    for edition in 1..=21 {
        age(&db, 1);
        server.put("p.xml", undated_feed(edition, &listed));
        let report = poll_one(&pipeline, &source).await;
        assert_eq!((report.items, report.new_entries), (40, 0), "{report:?}");
        prune_one_day(&pipeline.store).await;
    }
    assert_eq!(
        tombstone_writes(&db),
        Vec::<String>::new(),
        "listed all along"
    );

    // A read that drops p0 marks it; the next one lists it again and clears the mark.
    age(&db, 1);
    server.put("p.xml", undated_feed(22, &listed[1..]));
    assert_eq!(poll_one(&pipeline, &source).await.new_entries, 0);
    assert_eq!(tombstone_writes(&db), ["guid:p0"]);
    age(&db, 1);
    server.put("p.xml", undated_feed(23, &listed));
    assert_eq!(poll_one(&pipeline, &source).await.new_entries, 0);
    assert_eq!(tombstone_writes(&db), ["guid:p0"]);
    assert_eq!(tombstones(&db).len(), 40);
    pipeline.store.close().await;
}

/// Items that share a guid are stored under `shared:` identities (guid and link hashed). When
/// a poll passes them over, their tombstones are found under those identities too, and kept
/// while the feed lists them, as any other item's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passed_over_items_sharing_a_guid_keep_their_tombstones_while_listed() {
    let server = common::FeedServer::start().await;
    let date = |hours: i64| (Utc::now() - chrono::Duration::hours(hours)).to_rfc2822();
    let feed = |edition: &str| {
        let (old, recent) = (date(5 * 24), date(1));
        let items = [
            (
                "http://u.example/notices",
                "http://u.example/steel",
                "Ministry sets steel import duties",
                "The ministry set new duties on steel imports.",
                old.as_str(),
            ),
            (
                "http://u.example/notices",
                "http://u.example/aluminium",
                "Ministry extends aluminium quotas",
                "The ministry extended its quotas on aluminium.",
                old.as_str(),
            ),
            (
                "fresh",
                "http://u.example/fresh",
                "Trade talks resume in Geneva",
                "Negotiators resumed talks on tariffs in Geneva.",
                recent.as_str(),
            ),
        ];
        common::Resource::feed(common::rss(edition, &items))
    };
    server.put("s.xml", feed("1"));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &[("S", server.url("s.xml"))], "");
    let keep_all = tradefeed::config::Config::load(&path).unwrap();
    let text = common::replaced(
        &std::fs::read_to_string(&path).unwrap(),
        "[storage]\n",
        "[storage]\nretention_days = 2\n",
    );
    std::fs::write(&path, text).unwrap();
    let strict = tradefeed::config::Config::load(&path).unwrap();
    let source = keep_all.sources[0].clone();
    let shared = |link: &str| {
        (
            "S".to_string(),
            tradefeed::normalize::shared_identity("guid:http://u.example/notices", Some(link)),
        )
    };
    let mut all = vec![
        shared("http://u.example/steel"),
        shared("http://u.example/aluminium"),
        ("S".to_string(), "guid:fresh".to_string()),
    ];
    all.sort();

    // Stored while all was kept (the two sharing a guid under their `shared:` identities),
    // then pruned.
    let pipeline = tradefeed::app::Pipeline::start(&keep_all).await.unwrap();
    let db = pipeline.store.path().to_path_buf();
    assert_eq!(poll_one(&pipeline, &source).await.new_entries, 3);
    age(&db, 3);
    prune_one_day(&pipeline.store).await;
    assert_eq!(tombstones(&db), all);
    pipeline.store.close().await;
    drop(pipeline);

    // Months under a two-day retention: the two are passed over as too old at every poll,
    // and every tombstone is kept.
    let pipeline = tradefeed::app::Pipeline::start(&strict).await.unwrap();
    for edition in 2..6 {
        age(&db, 30);
        server.put("s.xml", feed(&edition.to_string()));
        let report = poll_one(&pipeline, &source).await;
        assert_eq!((report.skipped, report.new_entries), (2, 0), "{report:?}");
        prune_one_day(&pipeline.store).await;
        assert_eq!(tombstones(&db), all, "edition {edition}");
    }
    pipeline.store.close().await;
    drop(pipeline);

    // Retention back as it was: every item is looked at, and stays out.
    let pipeline = tradefeed::app::Pipeline::start(&keep_all).await.unwrap();
    server.put("s.xml", feed("6"));
    let report = poll_one(&pipeline, &source).await;
    assert_eq!((report.skipped, report.new_entries), (0, 0), "{report:?}");
    pipeline.store.close().await;
}

/// A source stopped by a 410 or disabled in the config is not read again, so no read marks
/// its tombstones, and retention goes on turning its entries into more. Once it has not been
/// polled for the grace they go, as a source's that left the config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstones_of_stopped_and_disabled_sources_go_a_grace_after_their_last_poll() {
    let server = common::FeedServer::start().await;
    server.put("g.xml", undated_feed(1, &ids(&["g1", "g2"])));
    server.put("d.xml", undated_feed(1, &ids(&["d1"])));
    server.put("k.xml", undated_feed(1, &ids(&["k1"])));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(
        dir.path(),
        &[
            ("Gone", server.url("g.xml")),
            ("Off", server.url("d.xml")),
            ("Kept", server.url("k.xml")),
        ],
        "",
    );
    let config = tradefeed::config::Config::load(&path).unwrap();
    let (gone, off, kept) = (
        config.sources[0].clone(),
        config.sources[1].clone(),
        config.sources[2].clone(),
    );
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    let db = pipeline.store.path().to_path_buf();
    assert_eq!(poll_one(&pipeline, &gone).await.new_entries, 2);
    assert_eq!(poll_one(&pipeline, &off).await.new_entries, 1);
    assert_eq!(poll_one(&pipeline, &kept).await.new_entries, 1);

    // Gone answers 410 and is stopped; Off is disabled in the config; Kept goes on (304s).
    server.put(
        "g.xml",
        common::Resource {
            status: 410,
            ..common::Resource::feed("gone")
        },
    );
    let stopped = tradefeed::app::fetch_once(&pipeline, vec![gone.clone()], 1).await;
    assert!(format!("{stopped:?}").contains("410 Gone"), "{stopped:?}");
    let disabled = Source {
        enabled: false,
        ..off.clone()
    };
    sync(&pipeline.store, &[gone.clone(), disabled, kept.clone()])
        .await
        .unwrap();

    // Day 2: everything is pruned and remembered; within the grace, it stays.
    age(&db, 2);
    prune_one_day(&pipeline.store).await;
    let all = stones(&[
        ("Gone", "g1"),
        ("Gone", "g2"),
        ("Kept", "k1"),
        ("Off", "d1"),
    ]);
    assert_eq!(tombstones(&db), all);
    age(&db, 6);
    assert_eq!(poll_one(&pipeline, &kept).await.http_status, Some(304));
    prune_one_day(&pipeline.store).await;
    assert_eq!(tombstones(&db), all, "day 8");

    // Day 10: a grace since their last poll and since their tombstones were made.
    age(&db, 2);
    assert_eq!(poll_one(&pipeline, &kept).await.http_status, Some(304));
    prune_one_day(&pipeline.store).await;
    assert_eq!(tombstones(&db), stones(&[("Kept", "k1")]), "day 10");
    pipeline.store.close().await;
}

/// A prune can run between ingest's lookup and the poll's write: the writer then finds a
/// tombstone for an entry ingest saw stored (here edited). The read lists that identity, so
/// it must not mark it missed, nor does it: the prune made the tombstone after the poll
/// started. A tombstone made before, which the read does not list, it does mark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_made_while_a_poll_runs_is_not_marked_missed_by_that_poll() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    sync(&store, &[source("A")]).await.unwrap();
    store
        .record_poll(fetched("A", &[("guid:e1", "https://a.example/e1")]))
        .await
        .unwrap();
    // The poll starts; ingest finds e1 stored and edited.
    let mut edit = fetched("A", &[("guid:e1", "https://a.example/e1")]);
    edit.entries[0].entry.title = "Steel duties story e1, edited".into();
    edit.entries[0].entry.content_hash = "hash-edited".into();
    // Meanwhile a prune removes e1; e0 was pruned a day ago.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO tombstones (source_id, identity, pruned_at)
             SELECT id, 'guid:e0', unixepoch() - 86400 FROM sources WHERE name = 'A'",
            [],
        )
        .unwrap();
    store
        .prune(Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();

    let result = store.record_poll(edit).await.unwrap();
    assert_eq!(
        (
            result.new_entries,
            result.updated_entries,
            result.unchanged_entries
        ),
        (0, 0, 1)
    );
    store.close().await;
    let marks: Vec<(String, bool)> = common::row_pairs(
        &db,
        "SELECT identity, missed_at IS NOT NULL FROM tombstones ORDER BY identity",
    );
    assert_eq!(
        marks,
        [
            ("guid:e0".to_string(), true),
            ("guid:e1".to_string(), false)
        ]
    );
}

/// A prune that starts before a poll can still be running when ingest reads what the source
/// has stored: ingest then sees an entry the prune is removing as stored and unchanged, so it
/// neither writes it nor reports it among the listed pruned identities. The read lists it all
/// the same, so its write, which comes after the prune, must not mark that new tombstone
/// missed. A tombstone made long before the poll, which the read does not list, it marks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tombstone_made_just_before_a_poll_began_is_not_marked_missed_by_that_poll() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let store = Store::open(&db, Access::ReadWrite).unwrap();
    sync(&store, &[source("A")]).await.unwrap();
    store
        .record_poll(fetched("A", &[("guid:e1", "https://a.example/e1")]))
        .await
        .unwrap();
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "INSERT INTO tombstones (source_id, identity, pruned_at)
             SELECT id, 'guid:e0', unixepoch() - 2 * 86400 FROM sources WHERE name = 'A'",
            [],
        )
        .unwrap();
    // The prune starts and makes e1's tombstone; the poll starts a few seconds later and
    // ingest finds e1 stored and unchanged: nothing to write, nothing listed pruned.
    store
        .prune(Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    let mut poll = fetched("A", &[]);
    poll.started_at = Utc::now() + chrono::Duration::seconds(5);
    store.record_poll(poll).await.unwrap();
    store.close().await;

    let marks: Vec<(String, bool)> = common::row_pairs(
        &db,
        "SELECT identity, missed_at IS NOT NULL FROM tombstones ORDER BY identity",
    );
    assert_eq!(
        marks,
        [
            ("guid:e0".to_string(), true),
            ("guid:e1".to_string(), false)
        ]
    );
}

/// A read that left the middle of a very long feed unread (see `parse::parse_feed_for`) says
/// which pruned identities the feed lists among those it read, and nothing of the others:
/// it clears the mark of a tombstone it finds listed, leaves the mark of one in the unread
/// middle as it was, and marks none missed that it did not see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_left_items_unread_clears_marks_but_marks_no_tombstone_missed() {
    let server = common::FeedServer::start().await;
    server.put("l.xml", undated_feed(1, &ids(&["x", "y", "w"])));
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &[("L", server.url("l.xml"))], "");
    let config = tradefeed::config::Config::load(&path).unwrap();
    let source = config.sources[0].clone();
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    let db = pipeline.store.path().to_path_buf();
    assert_eq!(poll_one(&pipeline, &source).await.new_entries, 3);
    age(&db, 2);
    prune_one_day(&pipeline.store).await;
    assert_eq!(
        tombstones(&db),
        stones(&[("L", "w"), ("L", "x"), ("L", "y")])
    );
    let missed = |db: &Path| -> Vec<(String, bool)> {
        common::row_pairs(
            db,
            "SELECT identity, missed_at IS NOT NULL FROM tombstones ORDER BY identity",
        )
    };

    // A read listing only w: x and y are missed from now on.
    age(&db, 1);
    server.put("l.xml", undated_feed(2, &ids(&["w", "z"])));
    poll_one(&pipeline, &source).await;
    let marks = |w: bool, x: bool, y: bool| {
        vec![
            ("guid:w".to_string(), w),
            ("guid:x".to_string(), x),
            ("guid:y".to_string(), y),
        ]
    };
    assert_eq!(missed(&db), marks(false, true, true));

    // The feed grows past the window: x is read (the first item), y is in the unread middle,
    // w is gone.
    let keep = tradefeed::parse::ITEMS_READ_AT_EACH_END_MIN;
    let mut long = vec!["x".to_string()];
    long.extend((0..keep).map(|i| format!("n{i}")));
    long.push("y".to_string());
    long.extend((keep..2 * keep + 10).map(|i| format!("n{i}")));
    server.put("l.xml", undated_feed(3, &long));
    let report = poll_one(&pipeline, &source).await;
    assert_eq!(report.items, long.len(), "{report:?}");
    assert_eq!(
        missed(&db),
        marks(false, false, true),
        "x cleared, y as it was, w not marked missed by a read that could not see it"
    );
    pipeline.store.close().await;
}
