//! The search index off the ingest path: the writer indexes new stories when idle, a search
//! catches up first, and edits, pruning and upgrades keep the index and the stories in step.

mod common;

use std::path::Path;
use std::time::Duration;

use chrono::Utc;
use common::{FeedServer, Resource, rss, write_config};
use tradefeed::app::{self, Pipeline};
use tradefeed::config::Config;
use tradefeed::store::{Access, Store, StoryQuery};

fn search(words: &str) -> StoryQuery {
    StoryQuery {
        search: Some(words.into()),
        limit: 50,
        ..Default::default()
    }
}

async fn titles(store: &Store, words: &str) -> Vec<String> {
    store
        .stories(search(words))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.title)
        .collect()
}

/// The watermark and the number of stories, read from the file.
fn watermark_and_max(db: &Path) -> (i64, i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'search_indexed_upto'),
                (SELECT coalesce(max(id), 0) FROM stories)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

/// FTS5's own check that the index holds exactly the text of the rows it claims (rank 1:
/// compare with the external content table, row by row, for indexed rows).
fn assert_index_consistent(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let (upto, _) = watermark_and_max(db);
    let unindexed: i64 = conn
        .query_row("SELECT count(*) FROM stories WHERE id > ?1", [upto], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(unindexed, 0, "check only a caught-up index");
    conn.execute(
        "INSERT INTO stories_fts (stories_fts, rank) VALUES ('integrity-check', 1)",
        [],
    )
    .expect("the search index matches the stories");
}

/// A daemon pipeline over two sources on a local feed server: A with one story about steel
/// duties, B with one about a trade agreement. The server and the temp dir live as long as
/// the returned guards.
async fn two_sources() -> (FeedServer, tempfile::TempDir, Config, Pipeline) {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    server.put("b.xml", common::trade_deal_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[("A", server.url("a.xml")), ("B", server.url("b.xml"))],
        "",
    );
    let config = Config::load(&path).unwrap();
    let pipeline = Pipeline::start(&config).await.unwrap();
    (server, dir, config, pipeline)
}

fn steel_feed(description: &str) -> Resource {
    Resource::feed(rss(
        "A",
        &[(
            "a1",
            "http://a.example/1",
            "EU imposes anti-dumping duties on Chinese imports",
            description,
            "Tue, 10 Nov 2026 09:00:00 GMT",
        )],
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_is_found_by_a_search_made_right_after_its_poll() {
    let (_server, _dir, config, pipeline) = two_sources().await;
    app::fetch_once(&pipeline, config.sources.clone(), 4).await;
    // No pause: the search itself brings the index up to date.
    assert_eq!(
        titles(&pipeline.store, "steel").await,
        ["EU imposes anti-dumping duties on Chinese steel"]
    );
    assert_eq!(
        titles(&pipeline.store, "agreements").await,
        ["Canada and UK sign trade continuity deal"]
    );
    let db = pipeline.store.path().to_path_buf();
    pipeline.store.close().await;
    drop(pipeline);
    let (upto, max) = watermark_and_max(&db);
    assert_eq!((upto, max), (2, 2));
    assert_index_consistent(&db);
}

/// A search whose catch-up cannot write (a full disk, another program holding the write lock
/// past the busy timeout) is answered from the index as it is, not refused; once the writes
/// go through again, it sees every story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_that_cannot_bring_the_index_up_to_date_searches_it_as_it_is() {
    let (_server, _dir, config, pipeline) = two_sources().await;
    let db = pipeline.store.path().to_path_buf();
    let other = rusqlite::Connection::open(&db).unwrap();
    other
        .execute_batch(
            "CREATE TRIGGER no_indexing BEFORE UPDATE ON meta
              WHEN new.key = 'search_indexed_upto'
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
    app::fetch_once(&pipeline, config.sources.clone(), 4).await;
    let answer = pipeline.store.stories(search("steel")).await;
    assert!(
        answer.as_ref().is_ok_and(Vec::is_empty),
        "answered from the index, which holds nothing yet: {answer:?}"
    );
    assert_eq!(watermark_and_max(&db), (0, 2), "the index stayed behind");
    other.execute_batch("DROP TRIGGER no_indexing").unwrap();
    assert_eq!(
        titles(&pipeline.store, "steel").await,
        ["EU imposes anti-dumping duties on Chinese steel"]
    );
    pipeline.store.close().await;
    drop(pipeline);
    assert_index_consistent(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_writer_indexes_new_stories_when_idle_without_any_search() {
    let (_server, _dir, config, pipeline) = two_sources().await;
    app::fetch_once(&pipeline, config.sources.clone(), 4).await;
    let db = pipeline.store.path().to_path_buf();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (upto, max) = watermark_and_max(&db);
        if max == 2 && upto == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "index still behind after 10 s: {upto} of {max}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pipeline.store.close().await;
    drop(pipeline);
    assert_index_consistent(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_story_is_found_by_its_new_words_and_not_its_old_ones() {
    let server = FeedServer::start().await;
    server.put(
        "a.xml",
        steel_feed("Provisional duties on steel imports from next month."),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    let pipeline = Pipeline::start(&config).await.unwrap();
    app::fetch_once(&pipeline, config.sources.clone(), 4).await;
    assert_eq!(titles(&pipeline.store, "steel").await.len(), 1);

    // The outlet edits the item: same guid, new text. The story is updated in place.
    server.put(
        "a.xml",
        steel_feed("Provisional duties on aluminium imports from next month."),
    );
    app::fetch_once(&pipeline, config.sources.clone(), 4).await;
    assert_eq!(titles(&pipeline.store, "aluminium").await.len(), 1);
    assert!(titles(&pipeline.store, "steel").await.is_empty());
    let db = pipeline.store.path().to_path_buf();
    pipeline.store.close().await;
    drop(pipeline);
    assert_index_consistent(&db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_indexed_and_unindexed_stories_leaves_the_index_consistent() {
    let (_server, _dir, config, pipeline) = two_sources().await;
    let a = config.sources.iter().find(|s| s.name == "A").unwrap();
    app::fetch_once(&pipeline, vec![a.clone()], 4).await;
    assert_eq!(titles(&pipeline.store, "steel").await.len(), 1);
    let b = config.sources.iter().find(|s| s.name == "B").unwrap();
    app::fetch_once(&pipeline, vec![b.clone()], 4).await;
    // Prune everything at once: A is indexed, B may not be yet.
    let (entries, stories) = pipeline
        .store
        .prune(Utc::now() + chrono::Duration::days(1))
        .await
        .unwrap();
    assert_eq!((entries, stories), (2, 2));
    assert!(titles(&pipeline.store, "steel").await.is_empty());
    assert!(titles(&pipeline.store, "agreements").await.is_empty());
    let db = pipeline.store.path().to_path_buf();
    pipeline.store.close().await;
    drop(pipeline);
    assert_index_consistent(&db);
}

#[test]
fn deleting_or_editing_a_story_the_index_has_not_reached_leaves_the_index_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    drop(Store::open(&db, Access::ReadWrite).unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let insert = |title: &str, text: &str| -> i64 {
        conn.execute(
            "INSERT INTO stories (title, text, authors, published, updated, first_seen)
             VALUES (?1, ?2, '[]', 0, 0, 0)",
            [title, text],
        )
        .unwrap();
        conn.last_insert_rowid()
    };
    let indexed = insert("tariff story", "duties on steel");
    conn.execute(
        "INSERT INTO stories_fts (rowid, title, text) SELECT id, title, text FROM stories",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE meta SET value = CAST(?1 AS TEXT) WHERE key = 'search_indexed_upto'",
        [indexed],
    )
    .unwrap();
    let pending = insert("quota story", "quotas on sugar");
    let pending_too = insert("ban story", "import ban on chips");
    // Neither has index entries: without the triggers' guard, FTS5 would be asked to delete
    // terms it never held and the index would be corrupt.
    conn.execute(
        "UPDATE stories SET text = 'quotas on rice' WHERE id = ?1",
        [pending],
    )
    .unwrap();
    conn.execute("DELETE FROM stories WHERE id = ?1", [pending_too])
        .unwrap();
    conn.execute(
        "UPDATE stories SET text = 'duties on aluminium' WHERE id = ?1",
        [indexed],
    )
    .unwrap();
    drop(conn);

    // The next open indexes the one pending story with its current text.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&db, Access::ReadWrite).unwrap();
        assert_eq!(titles(&store, "rice").await, ["quota story"]);
        assert!(titles(&store, "sugar").await.is_empty());
        assert_eq!(titles(&store, "aluminium").await, ["tariff story"]);
        assert!(titles(&store, "steel").await.is_empty());
        store.close().await;
    });
    assert_index_consistent(&db);
}

#[test]
fn a_database_from_before_the_change_keeps_its_index_and_goes_on_indexing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    // The schema as the previous release left it: migrations 1 and 2, index kept by triggers.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let conn = rusqlite::Connection::open(&db).unwrap();
    for step in ["01-initial", "02-story-search"] {
        let sql = std::fs::read_to_string(root.join(step).join("up.sql")).unwrap();
        conn.execute_batch(&sql).unwrap();
    }
    conn.pragma_update(None, "user_version", 2).unwrap();
    conn.execute(
        "INSERT INTO stories (title, html, text, authors, published, updated, first_seen)
         VALUES ('old story', '', 'safeguard duties on washing machines', '[]', 0, 0, 0)",
        [],
    )
    .unwrap();
    drop(conn);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(&db, Access::ReadWrite).unwrap();
        assert_eq!(
            watermark_and_max(&db),
            (1, 1),
            "already indexed by the old triggers"
        );
        assert_eq!(titles(&store, "washing machines").await, ["old story"]);
        store.close().await;
    });
    assert_index_consistent(&db);
}
