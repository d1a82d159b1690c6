//! The work a reload leaves to the background, re-scoring stored stories and choosing their
//! representatives again, runs one run at a time, and shutdown stops it between batches and
//! waits for it before the store closes. Its own test binary: the reloads are asked for by
//! SIGHUP and the runs are seen in the metrics, both process-wide; the tests here take turns.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{FeedServer, Resource, row_pairs, rss, write_config};
use tradefeed::config::Config;

/// Stories stored before the reloads: enough batches that a re-pick of them all is still
/// running when the test acts on it.
const STORIES: usize = 5000;

/// One test at a time: signals and metrics are the process's.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A feed of `STORIES` items, one per story link, each with a text of `words` words of its
/// own (no two stories look alike to the near-duplicate index).
fn feed(name: &str, words: usize) -> Resource {
    let items: Vec<[String; 4]> = (0..STORIES)
        .map(|i| {
            let text: Vec<String> = (0..words)
                .map(|k| format!("{}{i}n{k}", name.to_lowercase()))
                .collect();
            [
                format!("{name}-{i}"),
                format!("https://news.example/story/{i}"),
                format!("{name} report {i}"),
                text.join(" "),
            ]
        })
        .collect();
    let items: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|[guid, link, title, text]| {
            (
                guid.as_str(),
                link.as_str(),
                title.as_str(),
                text.as_str(),
                "Tue, 10 Nov 2026 09:00:00 GMT",
            )
        })
        .collect();
    Resource::feed(rss(name, &items))
}

/// A daemon's setting: a feed server, a config of `Long` and `Short` at equal priority, whose
/// `STORIES` stories (one copy from each) are stored and represented by `Long`'s copies, the
/// longer ones.
struct Setting {
    server: FeedServer,
    _dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
}

impl Setting {
    async fn new() -> Setting {
        let server = FeedServer::start().await;
        server.put("/long.xml", feed("Long", 120));
        server.put("/short.xml", feed("Short", 40));
        let dir = tempfile::tempdir().unwrap();
        let config = write_config(
            dir.path(),
            &[
                ("Long", server.url("/long.xml")),
                ("Short", server.url("/short.xml")),
            ],
            &format!("max_items_per_poll = {STORIES}\n"),
        );
        let db = dir.path().join("tradefeed.db");
        common::fetch_pass(&Config::load(&config).unwrap()).await;
        let setting = Setting {
            server,
            _dir: dir,
            config,
            db,
        };
        assert_eq!(setting.represented_by("Long"), STORIES);
        setting
    }

    /// Writes the config with these priorities (`None`: the key left out).
    fn set_priorities(&self, long: Option<i32>, short: Option<i32>) {
        let mut text = std::fs::read_to_string(&self.config).unwrap();
        for (name, priority) in [("Long", long), ("Short", short)] {
            let block = format!(
                "name = \"{name}\"\nurl = \"{}\"\n",
                self.server.url(&format!("/{}.xml", name.to_lowercase()))
            );
            let at = text.find(&block).expect("the source's block");
            let rest = &text[at + block.len()..];
            let end = if rest.starts_with("priority = ") {
                at + block.len() + rest.find('\n').unwrap() + 1
            } else {
                at + block.len()
            };
            let with = match priority {
                Some(p) => format!("{block}priority = {p}\n"),
                None => block.clone(),
            };
            text.replace_range(at..end, &with);
        }
        std::fs::write(&self.config, text).unwrap();
    }

    /// The priority the database holds for `source`.
    fn stored_priority(&self, source: &str) -> i64 {
        let rows: Vec<(i64, i64)> = row_pairs(
            &self.db,
            &format!("SELECT priority, 0 FROM sources WHERE name = '{source}'"),
        );
        rows[0].0
    }

    /// How many stories `source`'s copy represents.
    fn represented_by(&self, source: &str) -> usize {
        let rows: Vec<(i64, i64)> = row_pairs(
            &self.db,
            &format!(
                "SELECT count(*), 0 FROM stories st JOIN entries e ON e.id = st.representative
                 JOIN sources s ON s.id = e.source_id WHERE s.name = '{source}'"
            ),
        );
        rows[0].0 as usize
    }

    /// The priorities as the database holds them and as it recorded them applied.
    async fn priorities_and_applied(&self) -> (String, Option<String>) {
        let store =
            tradefeed::store::Store::open(&self.db, tradefeed::store::Access::ReadOnly).unwrap();
        let both = (
            store.priorities().await.unwrap(),
            store.meta("priorities").await.unwrap(),
        );
        store.close().await;
        both
    }
}

/// The value of the series `series` (name and labels as rendered) in the metrics, 0 if absent.
fn metric(series: &str) -> f64 {
    tradefeed::telemetry::render_recorded()
        .lines()
        .find_map(|line| {
            line.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
                .map(|value| value.trim().parse().unwrap())
        })
        .unwrap_or(0.0)
}

const RUNNING: &str = "tradefeed_story_sweeps_running";

fn runs(result: &str) -> f64 {
    metric(&format!(
        "tradefeed_story_sweeps_total{{result=\"{result}\"}}"
    ))
}

/// Asks this process's daemon to reload, again every 100 ms, until `done` holds (a SIGHUP
/// that comes before the daemon listens is lost, as is an edit made before its file watcher
/// took its first look), or panics after 30 s.
async fn reload_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        common::sighup_self();
        let again = Instant::now() + Duration::from_millis(100);
        while Instant::now() < again {
            if done() {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Starts the daemon on the setting's config and waits until it serves (it listens for
/// SIGHUP from just after; the tests' own handler keeps an early one harmless, and the file
/// watcher would then see the edit).
async fn start(
    setting: &Setting,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let (base, cancel, handle) = common::start_daemon(Config::load(&setting.config).unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        assert!(Instant::now() < deadline, "the daemon does not serve");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (cancel, handle)
}

/// A reload that raises a priority, followed at once by shutdown: the daemon stops only once
/// the re-pick has stopped (between two batches, each applied whole), and it leaves the
/// priorities unrecorded, so the next start does the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_right_after_a_reload_stops_the_re_pick_and_waits_for_it() {
    let _turn = TURN.lock().await;
    // SIGHUP is handled (not fatal) from here on, whatever the daemon has got to.
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let setting = Setting::new().await;
    let (done, stopped, failed) = (runs("done"), runs("stopped"), runs("failed"));
    let (cancel, handle) = start(&setting).await;

    setting.set_priorities(None, Some(5));
    reload_until("the reload is applied", || {
        setting.stored_priority("Short") == 5
    })
    .await;
    common::stop_daemon(cancel, handle).await;

    // Nothing of the daemon's runs on: the run was stopped or done before `run` returned.
    assert_eq!(
        metric(RUNNING),
        0.0,
        "a re-pick still running after shutdown"
    );
    assert_eq!(
        runs("failed"),
        failed,
        "a re-pick failed (the store closed under it?)"
    );
    assert!(
        runs("done") + runs("stopped") <= done + stopped + 1.0,
        "one reload, one run at most"
    );
    // Cut short: some stories or none moved to the higher priority's copy, and the
    // priorities are not recorded as applied.
    let (priorities, applied) = setting.priorities_and_applied().await;
    assert_ne!(
        applied.as_deref(),
        Some(priorities.as_str()),
        "the re-pick of {STORIES} stories finished before the shutdown it was asked just before"
    );
    let moved = setting.represented_by("Short");
    assert!(moved < STORIES, "{moved} stories moved");
    assert_eq!(setting.represented_by("Long") + moved, STORIES);

    // The next start finds the priorities unapplied and does the rest.
    let pipeline = tradefeed::app::Pipeline::start(&Config::load(&setting.config).unwrap())
        .await
        .unwrap();
    pipeline.store.close().await;
    assert_eq!(setting.represented_by("Short"), STORIES);
    let (priorities, applied) = setting.priorities_and_applied().await;
    assert_eq!(applied.as_deref(), Some(priorities.as_str()));
}

/// A reload while the previous reload's re-pick runs: the second re-pick waits for the first
/// to end (never two at once), then applies the newest priorities to every story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_during_a_re_pick_waits_for_it_rather_than_running_beside_it() {
    let _turn = TURN.lock().await;
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let setting = Setting::new().await;
    let done = runs("done");
    let (cancel, handle) = start(&setting).await;

    // The first reload: `Short` above `Long`, so every story is to move to `Short`'s copy.
    setting.set_priorities(None, Some(5));
    reload_until("the first re-pick is running", || metric(RUNNING) >= 1.0).await;
    // The second, while it runs: `Long` above both, so every story is to move back.
    setting.set_priorities(Some(9), Some(5));
    common::sighup_self();
    let settled = Instant::now() + Duration::from_secs(60);
    let mut second_applied_while_first_ran = None;
    loop {
        let running = metric(RUNNING);
        assert!(running <= 1.0, "two re-picks ran at once");
        if second_applied_while_first_ran.is_none() && setting.stored_priority("Long") == 9 {
            second_applied_while_first_ran = Some(runs("done") == done);
        }
        if running == 0.0 && setting.represented_by("Long") == STORIES {
            let (priorities, applied) = setting.priorities_and_applied().await;
            if applied.as_deref() == Some(priorities.as_str()) {
                break;
            }
        }
        assert!(Instant::now() < settled, "the re-picks did not settle");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(
        second_applied_while_first_ran,
        Some(true),
        "the first re-pick ended before the second reload was applied: the test saw no overlap"
    );
    common::stop_daemon(cancel, handle).await;
    assert_eq!(metric(RUNNING), 0.0);
    assert!(runs("done") >= done + 2.0, "a run for each priority change");
}

/// A reload that changes neither the topic profiles nor a priority has nothing to sweep: no
/// run is counted (every reload used to count one), while one that changes a priority is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_nothing_to_re_score_or_re_pick_counts_no_sweep() {
    let _turn = TURN.lock().await;
    let _hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let setting = Setting::new().await;
    let all_runs = || runs("done") + runs("stopped") + runs("failed");
    let reloads = || metric("tradefeed_config_reloads_total{result=\"ok\"}");
    let (cancel, handle) = start(&setting).await;
    let (before, reloaded) = (all_runs(), reloads());
    reload_until("three reloads of an unchanged config", || {
        reloads() >= reloaded + 3.0
    })
    .await;
    // The sweep task takes each reload's request at once; give it the time to count one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        all_runs(),
        before,
        "a reload with nothing to sweep counted a run"
    );
    assert_eq!(metric(RUNNING), 0.0);

    setting.set_priorities(None, Some(5));
    reload_until("the priority change is applied", || {
        setting.represented_by("Short") == STORIES
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while runs("done") < before + 1.0 {
        assert!(Instant::now() < deadline, "the re-pick was not counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    common::stop_daemon(cancel, handle).await;
    assert_eq!(all_runs(), before + 1.0, "one run, for the priority change");
}
