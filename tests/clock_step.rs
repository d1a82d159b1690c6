//! Due times left too far ahead by a wall clock that went back (a box that booted with a time
//! in the future, set right later by NTP; a VM restored from a snapshot).

mod common;

use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use common::{FeedServer, Resource, start_daemon, stop_daemon};
use tradefeed::config::Config;
use tradefeed::domain::Schedule;
use tradefeed::scheduler::{failure_due, next_due};
use tradefeed::store::{PollOutcome, PollRecord};

/// The test config. "ahead" is polled daily at the hour twelve hours from now: its next slot
/// is always more than eleven hours away, so the daemon never finds it due while a test runs
/// (an every-minute schedule was, whenever start-up crossed a whole minute).
fn config_text(server: &FeedServer) -> String {
    let mut text = String::from(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\npath = \"tradefeed.db\"\n\n\
         [defaults]\nschedule = \"*/5 * * * *\"\ntimeout_secs = 5\nmax_jitter_secs = 0\n\
         backoff_base_secs = 86400\nbackoff_cap_secs = 2592000\n\n",
    );
    let far_hour = (Utc::now() + chrono::Duration::hours(12)).hour();
    let daily_far = format!("0 {far_hour} * * *");
    for (name, schedule) in [
        ("ahead", Some(daily_far.as_str())),
        ("yearly", Some("0 0 1 1 *")),
        ("waiting", None),
        ("backing-off", None),
    ] {
        text.push_str(&format!(
            "[[sources]]\nname = \"{name}\"\nurl = \"{}\"\n",
            server.url(&format!("{name}.xml"))
        ));
        if let Some(schedule) = schedule {
            text.push_str(&format!("schedule = \"{schedule}\"\n"));
        }
        text.push('\n');
    }
    text
}

/// A poll of `name` at `at` that ended with `outcome` and stored `next_due`.
fn poll(
    config: &Config,
    name: &str,
    at: DateTime<Utc>,
    outcome: PollOutcome,
    next_due: DateTime<Utc>,
) -> PollRecord {
    let source = config.sources.iter().find(|s| s.name == name).unwrap();
    PollRecord {
        source: name.into(),
        url: source.url.clone(),
        source_row: None,
        started_at: at,
        duration: Duration::ZERO,
        outcome,
        next_due,
        due_jitter: None,
        moved_to: None,
        base_url: None,
        entries: Vec::new(),
        listed: Default::default(),
        cluster_window: chrono::Duration::days(7),
    }
}

/// A feed server with the four sources' (empty) feeds, and the test config over it in a new
/// folder.
async fn served_config() -> (FeedServer, tempfile::TempDir, Config) {
    let server = FeedServer::start().await;
    for name in ["ahead", "yearly", "waiting", "backing-off"] {
        server.put(
            &format!("{name}.xml"),
            Resource::feed(common::rss(name, &[])),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tradefeed.toml");
    std::fs::write(&path, config_text(&server)).unwrap();
    let config = Config::load(&path).unwrap();
    (server, dir, config)
}

/// The schedule of source `name` in `config`.
fn schedule_of(config: &Config, name: &str) -> Schedule {
    config
        .sources
        .iter()
        .find(|s| s.name == name)
        .unwrap()
        .schedule
        .clone()
}

fn failed(retry_not_before: Option<DateTime<Utc>>) -> PollOutcome {
    PollOutcome::Failed {
        kind: "http_status".into(),
        message: "503".into(),
        http_status: Some(503),
        retry_not_before,
        disable: None,
    }
}

/// (next_due, retry_not_before, last_attempt) of a source, as stored.
fn due_times(db: &std::path::Path, name: &str) -> (Option<i64>, Option<i64>, Option<i64>) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT next_due, retry_not_before, last_attempt FROM sources WHERE name = ?1",
        [name],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_times_a_clock_that_went_back_left_far_ahead_are_worked_out_again_at_start_up_and_legitimate_far_ones_stay()
 {
    let (_server, dir, config) = served_config().await;

    // The database as a clock a month fast left it for "ahead"; the others were set by the
    // right clock and are far ahead for good reasons.
    let now = Utc::now();
    let timing = tradefeed::app::timing(&config);
    let schedule = |name: &str| schedule_of(&config, name);
    let store = tradefeed::app::open_store(&config).await.unwrap();
    tradefeed::app::sync_sources(&store, &config).await.unwrap();
    let fast = now + chrono::Duration::days(30);
    let not_modified = PollOutcome::NotModified {
        etag: None,
        last_modified: None,
    };
    let week = now + chrono::Duration::days(7) - chrono::Duration::minutes(1);
    let records = [
        poll(
            &config,
            "ahead",
            fast,
            not_modified.clone(),
            next_due(&schedule("ahead"), "ahead", fast, Duration::ZERO),
        ),
        poll(
            &config,
            "yearly",
            now,
            not_modified,
            next_due(&schedule("yearly"), "yearly", now, Duration::ZERO),
        ),
        // A server asked for a week's wait.
        poll(
            &config,
            "waiting",
            now,
            failed(Some(week)),
            failure_due(&schedule("waiting"), "waiting", now, 1, Some(week), &timing),
        ),
        // A failure with a backoff of a day (the base): retried tomorrow.
        poll(
            &config,
            "backing-off",
            now,
            failed(None),
            failure_due(
                &schedule("backing-off"),
                "backing-off",
                now,
                1,
                None,
                &timing,
            ),
        ),
    ];
    for record in records {
        store.record_poll(record).await.unwrap();
    }
    store.close().await;
    drop(store);
    let db = dir.path().join("tradefeed.db");
    let kept: Vec<_> = ["yearly", "waiting", "backing-off"]
        .map(|name| (name, due_times(&db, name)))
        .into();

    // Corrected at start-up to its next slot from now, hours away, not a month ahead. (The
    // next slot rather than at once: the source may well have been polled moments ago, by the
    // fast clock.) The correction is the schedule's next time after the moment of the check,
    // somewhere between the two readings of the clock around the start.
    let ahead = schedule("ahead");
    let before = Utc::now();
    let (base, cancel, handle) = start_daemon(config).await;
    // Served once started (the listener is bound already; the request waits for that).
    let (status, _) = common::get_text(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);
    let after = Utc::now();
    let (due, retry, attempt) = due_times(&db, "ahead");
    let earliest = next_due(&ahead, "ahead", before, Duration::ZERO).timestamp();
    let latest = next_due(&ahead, "ahead", after, Duration::ZERO).timestamp();
    assert!(
        due.is_some_and(|d| earliest <= d && d <= latest),
        "next due {due:?}, expected between {earliest} and {latest}"
    );
    assert_eq!(retry, None);
    assert_eq!(
        attempt,
        Some(fast.timestamp()),
        "the last poll stays as it was"
    );
    for (name, times) in &kept {
        assert_eq!(&due_times(&db, name), times, "{name} keeps its times");
    }
    stop_daemon(cancel, handle).await;
}

/// The check of the due times at start-up cannot store its corrections (here a trigger
/// refuses them, as a locked database or a full disk would). `fetch` and `run` start all the
/// same: the times are used as stored, and the daemon's scheduler checks again at its looks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_time_check_that_fails_at_start_up_does_not_stop_fetch_or_run() {
    let (_server, dir, config) = served_config().await;

    // "ahead" was polled by a clock a month fast.
    let store = tradefeed::app::open_store(&config).await.unwrap();
    tradefeed::app::sync_sources(&store, &config).await.unwrap();
    let fast = Utc::now() + chrono::Duration::days(30);
    let not_modified = PollOutcome::NotModified {
        etag: None,
        last_modified: None,
    };
    let due = next_due(
        &schedule_of(&config, "ahead"),
        "ahead",
        fast,
        Duration::ZERO,
    );
    store
        .record_poll(poll(&config, "ahead", fast, not_modified, due))
        .await
        .unwrap();
    store.close().await;
    drop(store);
    let db = dir.path().join("tradefeed.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse_earlier_due_times BEFORE UPDATE OF next_due ON sources
              WHEN NEW.next_due < OLD.next_due
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
        )
        .unwrap();
    let stored = due_times(&db, "ahead");

    let pipeline = tradefeed::app::Pipeline::start(&config)
        .await
        .expect("fetch starts although the due times cannot be checked");
    assert_eq!(
        due_times(&db, "ahead"),
        stored,
        "the correction was refused"
    );
    pipeline.store.close().await;
    drop(pipeline);

    let (base, cancel, handle) = start_daemon(config).await;
    let (status, _) = common::get_text(&format!("{base}/healthz")).await;
    assert_eq!(status, 200, "the daemon serves");
    assert_eq!(due_times(&db, "ahead"), stored);
    stop_daemon(cancel, handle).await;
}
