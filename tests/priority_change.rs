//! A changed `priority` applies to stored stories: the next start (here, the next `fetch`)
//! makes every story whose representative a copy of higher priority now outranks be
//! represented by that copy, with the copy's title, text and topic scores; stories whose
//! representative still has the highest priority keep it.

mod common;

use std::path::{Path, PathBuf};

use common::{FeedServer, Resource, replaced, row_pairs, rss, tradefeed_command, write_config};

const LINK: &str = "https://news.example/2026/11/steel";

/// The wire's copy: a long market report that never mentions trade policy.
fn wire_feed() -> Resource {
    Resource::feed(rss(
        "Wire",
        &[(
            "wire-1",
            LINK,
            "Markets close higher on strong earnings",
            "Shares rose across Europe and Asia on Tuesday as quarterly earnings from banks and \
             carmakers beat forecasts, lifting benchmark indexes to their best close in a month. \
             Bond yields eased and the dollar slipped against the yen as investors weighed \
             comments from central bank officials about the pace of interest rate cuts next year.",
            "Tue, 10 Nov 2026 09:00:00 GMT",
        )],
    ))
}

/// The paper's copy of the same link: short, and about steel tariffs.
fn paper_feed() -> Resource {
    Resource::feed(rss(
        "Paper",
        &[(
            "paper-1",
            LINK,
            "US doubles steel tariffs, EU threatens WTO case",
            "The United States doubled tariffs on steel imports to 50 percent; the European \
             Union said it would bring a WTO dispute over the duties.",
            "Tue, 10 Nov 2026 09:05:00 GMT",
        )],
    ))
}

/// A server with both feeds, and a config in a new folder with `Wire` and `Paper` at equal
/// priority and the shipped topics.
async fn wire_and_paper() -> (FeedServer, tempfile::TempDir, PathBuf) {
    let server = FeedServer::start().await;
    server.put("/wire.xml", wire_feed());
    server.put("/paper.xml", paper_feed());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Wire", server.url("/wire.xml")),
            ("Paper", server.url("/paper.xml")),
        ],
        &format!(
            "\n[topics]\ndir = \"{}\"\n",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("config/topics")
                .display()
        ),
    );
    (server, dir, config)
}

fn fetch(config: &Path) {
    let out = tradefeed_command(config, &["fetch"]).output().unwrap();
    assert!(
        out.status.success(),
        "fetch failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The one story's title, and whether it is matched to the trade-policy topic.
fn story(db: &Path) -> (String, bool) {
    let rows: Vec<(String, i64)> = row_pairs(
        db,
        "SELECT s.title, coalesce((SELECT matched FROM story_topics t
                                   WHERE t.story_id = s.id AND t.topic = 'trade-policy'), -1)
         FROM stories s",
    );
    assert_eq!(rows.len(), 1, "one story of two copies: {rows:?}");
    let (title, matched) = rows.into_iter().next().unwrap();
    assert_ne!(matched, -1, "the story has a trade-policy score");
    (title, matched == 1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raised_priority_makes_its_copy_represent_stored_stories_and_rescores_them() {
    let (server, dir, config) = wire_and_paper().await;
    let db = dir.path().join("tradefeed.db");
    let text = std::fs::read_to_string(&config).unwrap();
    let paper_block = format!("name = \"Paper\"\nurl = \"{}\"\n", server.url("/paper.xml"));
    let wire_block = format!("name = \"Wire\"\nurl = \"{}\"\n", server.url("/wire.xml"));

    // Equal priorities: the far longer text represents the story, whichever came first.
    fetch(&config);
    let wire = ("Markets close higher on strong earnings".to_string(), false);
    assert_eq!(story(&db), wire);

    // The paper's priority raised: its copy represents the stored story at the next start,
    // and the story is scored on the paper's text.
    let raised = replaced(&text, &paper_block, &format!("{paper_block}priority = 5\n"));
    std::fs::write(&config, &raised).unwrap();
    fetch(&config);
    let paper = (
        "US doubles steel tariffs, EU threatens WTO case".to_string(),
        true,
    );
    assert_eq!(story(&db), paper);
    let texts: Vec<(String, String)> = row_pairs(&db, "SELECT text, link FROM stories");
    assert!(
        texts[0].0.starts_with("The United States doubled tariffs"),
        "{texts:?}"
    );

    // Back to equal priorities: the paper's copy still has the highest, so it stays.
    std::fs::write(&config, &text).unwrap();
    fetch(&config);
    assert_eq!(story(&db), paper);

    // The wire's priority raised above: back to the wire's copy.
    let wire_first = replaced(&text, &wire_block, &format!("{wire_block}priority = 9\n"));
    std::fs::write(&config, &wire_first).unwrap();
    fetch(&config);
    assert_eq!(story(&db), wire);
    let ids: Vec<(i64, i64)> = row_pairs(&db, "SELECT count(*), count(DISTINCT id) FROM stories");
    assert_eq!(ids, [(1, 1)], "the story kept its id");
}

/// Waits until both sources were polled and the one story has title `want`.
async fn wait_for_title(db: &Path, want: &str) {
    let title = || -> Option<String> {
        let rows: Vec<(String, i64)> = row_pairs(db, "SELECT title, id FROM stories");
        (rows.len() == 1).then(|| rows[0].0.clone())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let polled: Vec<(i64, i64)> = row_pairs(
            db,
            "SELECT count(*), 0 FROM sources WHERE last_success IS NOT NULL",
        );
        if polled == [(2, 0)] && title().as_deref() == Some(want) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "story title {:?}, not {want:?}",
            title()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A running daemon applies a changed priority when it reloads its config (here, on the file
/// watcher's notice), without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_daemon_applies_a_changed_priority_at_its_reload() {
    let (server, dir, config) = wire_and_paper().await;
    let db = dir.path().join("tradefeed.db");
    let text = std::fs::read_to_string(&config).unwrap();
    let loaded = tradefeed::config::Config::load(&config).unwrap();
    let (_base, cancel, handle) = common::start_daemon(loaded).await;
    // Polled: the database exists (reading it before would create an empty file).
    for feed in ["/wire.xml", "/paper.xml"] {
        server
            .wait_for_hits(feed, 1, std::time::Duration::from_secs(10))
            .await;
    }
    wait_for_title(&db, "Markets close higher on strong earnings").await;

    let paper_block = format!("name = \"Paper\"\nurl = \"{}\"\n", server.url("/paper.xml"));
    std::fs::write(
        &config,
        replaced(&text, &paper_block, &format!("{paper_block}priority = 5\n")),
    )
    .unwrap();
    wait_for_title(&db, "US doubles steel tariffs, EU threatens WTO case").await;
    common::stop_daemon(cancel, handle).await;
}

/// The store side: a choice made against a representative that changed since (a poll chose
/// under the current priorities meanwhile) is not applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_choice_made_against_an_older_representative_is_not_applied() {
    let (_server, dir, config) = wire_and_paper().await;
    fetch(&config);
    let db = dir.path().join("tradefeed.db");
    let store = tradefeed::store::Store::open(&db, tradefeed::store::Access::ReadWrite).unwrap();
    assert_eq!(
        store.outranked_stories(0, 10).await.unwrap(),
        [],
        "equal priorities outrank nothing"
    );
    let rows: Vec<(i64, i64)> = row_pairs(&db, "SELECT id, representative FROM stories");
    let (story, representative) = rows[0];
    let other: Vec<(i64, String)> = row_pairs(
        &db,
        &format!("SELECT id, content_hash FROM entries WHERE id != {representative}"),
    );
    let (entry, hash) = other[0].clone();
    let pick = |was: Option<i64>, content_hash: &str| tradefeed::store::RepresentativePick {
        story,
        was,
        entry,
        content_hash: content_hash.into(),
        title: "picked".into(),
        link: None,
        text: "picked".into(),
        authors: "[]".into(),
        scores: Vec::new(),
    };
    let apply = |pick| {
        let store = store.clone();
        async move { store.represent_again(vec![pick]).await.unwrap() }
    };
    // The story has another representative than the one the pick was made against.
    assert_eq!(apply(pick(Some(representative + 100), &hash)).await, 0);
    assert_eq!(apply(pick(None, &hash)).await, 0);
    // The chosen copy was edited after it was read: its text in the pick is out of date.
    assert_eq!(apply(pick(Some(representative), "4:edited-since")).await, 0);
    let titles: Vec<(String, i64)> = row_pairs(&db, "SELECT title, id FROM stories");
    assert_eq!(titles[0].0, "Markets close higher on strong earnings");
    assert_eq!(apply(pick(Some(representative), &hash)).await, 1);
    let titles: Vec<(String, i64)> = row_pairs(&db, "SELECT title, id FROM stories");
    assert_eq!(titles[0].0, "picked");
    store.close().await;
}

/// A feed of one source's copies `(guid, link, title, text)` of the two stories below.
fn copies_feed(name: &str, items: &[(&str, &str, &str, String)]) -> Resource {
    let items: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(guid, link, title, text)| {
            (
                *guid,
                *link,
                *title,
                text.as_str(),
                "Tue, 10 Nov 2026 09:00:00 GMT",
            )
        })
        .collect();
    Resource::feed(rss(name, &items))
}

/// Polls the config's sources one after the other in `order` (so their entries are stored in
/// that order), the pipeline opened and closed around the passes.
async fn poll_in_order(config: &Path, order: &[&str]) {
    let config = tradefeed::config::Config::load(config).unwrap();
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    for name in order {
        let source = config.sources.iter().find(|s| s.name == *name).unwrap();
        let results = tradefeed::app::fetch_once(&pipeline, vec![source.clone()], 1).await;
        match &results[..] {
            [tradefeed::app::FetchPassResult::Polled(report)] => {
                assert!(report.error.is_none(), "{name}: {report:?}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    pipeline.store.close().await;
}

/// Each story's link and title (its representative's), by link.
fn titles(db: &Path) -> Vec<(String, String)> {
    row_pairs(db, "SELECT link, title FROM stories ORDER BY link")
}

/// Copies at equal priority stored in the order 1000, 1050, 1090 bytes of text: ingest keeps
/// the first (neither later one is a tenth longer than it), and so does the re-pick after a
/// priority change makes them outrank the wire's copy, where it used to take the longest.
/// Lengths are weighed in bytes as ingest weighs them: 600 two-byte characters (1200 bytes)
/// take over from 1000 one-byte ones. Either way the re-pick gives what ingest gives when the
/// priorities were these from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_re_pick_replays_ingests_choice_among_copies_in_the_order_they_were_stored() {
    let (one, two) = ("https://news.example/one", "https://news.example/two");
    let server = FeedServer::start().await;
    let wire = copies_feed(
        "Wire",
        &[
            ("w1", one, "Wire one", "w".repeat(2000)),
            ("w2", two, "Wire two", "w".repeat(2000)),
        ],
    );
    server.put("/wire.xml", wire);
    let a = copies_feed(
        "A",
        &[
            ("a1", one, "A one", "a".repeat(1000)),
            ("a2", two, "A two", "a".repeat(1000)),
        ],
    );
    server.put("/a.xml", a);
    let b = copies_feed(
        "B",
        &[
            ("b1", one, "B one", "b".repeat(1050)),
            ("b2", two, "B two", "é".repeat(600)),
        ],
    );
    server.put("/b.xml", b);
    server.put(
        "/c.xml",
        copies_feed("C", &[("c1", one, "C one", "c".repeat(1090))]),
    );
    let sources = |server: &FeedServer| {
        ["Wire", "A", "B", "C"]
            .map(|name| (name, server.url(&format!("/{}.xml", name.to_lowercase()))))
    };
    let raised = |config: &Path| {
        let mut text = std::fs::read_to_string(config).unwrap();
        for (name, url) in sources(&server).into_iter().skip(1) {
            let block = format!("name = \"{name}\"\nurl = \"{url}\"\n");
            text = replaced(&text, &block, &format!("{block}priority = 5\n"));
        }
        std::fs::write(config, text).unwrap();
    };
    let order = ["Wire", "A", "B", "C"];
    let want = [
        (one.to_string(), "A one".to_string()),
        (two.to_string(), "B two".to_string()),
    ];

    // Stored at equal priorities: the wire's copies came first, longest, and hold.
    let repicked = tempfile::tempdir().unwrap();
    let config = common::write_config(repicked.path(), &sources(&server), "");
    poll_in_order(&config, &order).await;
    let db = repicked.path().join("tradefeed.db");
    assert_eq!(
        titles(&db),
        [
            (one.to_string(), "Wire one".to_string()),
            (two.to_string(), "Wire two".to_string())
        ]
    );
    // A, B and C raised: the next start chooses among their copies again.
    raised(&config);
    poll_in_order(&config, &[]).await;
    assert_eq!(titles(&db), want, "the re-pick");

    // The same copies stored in the same order with those priorities from the start.
    let fresh = tempfile::tempdir().unwrap();
    let config = common::write_config(fresh.path(), &sources(&server), "");
    raised(&config);
    poll_in_order(&config, &order).await;
    assert_eq!(
        titles(&fresh.path().join("tradefeed.db")),
        want,
        "ingest's choice"
    );
}
