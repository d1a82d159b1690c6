//! Renamed sources follow their feeds: a stored row is renamed to the configured source that
//! now has its URL, also when another source takes the old name, when names are swapped, and
//! round a longer cycle. Real feed servers on 127.0.0.1 and real SQLite files.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use common::{FeedServer, Resource, fetch_pass, rss, write_config};
use tradefeed::config::Config;
use tradefeed::store::StoryQuery;

const DATE: &str = "Tue, 10 Nov 2026 09:00:00 GMT";

/// Headlines and texts that no two items share a word pattern of, so every item is a story
/// of its own (no folding across feeds to blur which feed an appearance came from).
const ITEMS: [(&str, &str); 13] = [
    (
        "EU imposes anti-dumping duties on Chinese steel",
        "Brussels set provisional duties on cold-rolled steel after a complaint by mills.",
    ),
    (
        "Canada and UK sign trade continuity deal",
        "Ottawa and London kept tariff-free access for cars and cheese in a bridging pact.",
    ),
    (
        "Japan lifts rice import quota for drought year",
        "Tokyo doubled the minimum-access quota as paddies in Niigata dried out.",
    ),
    (
        "WTO panel faults Indian sugar subsidies",
        "Australia and Brazil won their case over cane price support in Maharashtra.",
    ),
    (
        "Mercosur ministers delay vote on common external tariff",
        "Uruguay asked for more time to study cuts on machinery and chemicals.",
    ),
    (
        "Kenya opens port of Lamu to transit cargo for Ethiopia",
        "Trucks from Addis Ababa began collecting fertiliser under a new corridor accord.",
    ),
    (
        "Mexico widens tomato suspension agreement talks",
        "Growers in Sinaloa want a lower reference price for greenhouse varieties.",
    ),
    (
        "Norway salmon exporters face new Russian ban",
        "Moscow extended its embargo on Nordic seafood for another eighteen months.",
    ),
    (
        "Vietnam textile orders fall as cotton prices climb",
        "Spinners in Dong Nai cut shifts while yarn stocks piled up at Hai Phong.",
    ),
    (
        "Chile copper royalty bill clears senate committee",
        "Miners warned the sliding levy would stall expansions in the Atacama.",
    ),
    (
        "Indonesia bans nickel ore shipments again",
        "Jakarta wants smelters built at home before any raw laterite leaves.",
    ),
    (
        "Swiss watch exports to Hong Kong recover",
        "Geneva makers shipped more luxury pieces as mainland tourists returned.",
    ),
    (
        "Argentina cuts soybean export tax for farmers",
        "Buenos Aires trimmed the levy on beans and meal to speed harvest sales.",
    ),
];

/// A feed named `feed` of the items `range` of [`ITEMS`]: guid `{feed}-{i}`, link
/// `http://{feed}.example/{i}`, so an appearance's link tells which feed carried it.
fn feed(feed: &str, range: std::ops::Range<usize>) -> Resource {
    let items: Vec<(String, String, &str, &str)> = range
        .map(|i| {
            (
                format!("{feed}-{i}"),
                format!("http://{feed}.example/{i}"),
                ITEMS[i].0,
                ITEMS[i].1,
            )
        })
        .collect();
    let items: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(g, l, t, d)| (g.as_str(), l.as_str(), *t, *d, DATE))
        .collect();
    Resource::feed(rss(feed, &items))
}

/// The feed (`e` for `http://e.example/3`) an item link belongs to.
fn feed_of(link: &str) -> &str {
    link.trim_start_matches("http://")
        .split('.')
        .next()
        .unwrap()
}

/// Each source's row: name → (URL, entries, stories).
fn rows(db: &Path) -> BTreeMap<String, (String, i64, i64)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut statement = conn
        .prepare(
            "SELECT s.name, s.url, count(e.id), count(DISTINCT e.story_id)
               FROM sources s LEFT JOIN entries e ON e.source_id = s.id GROUP BY s.id",
        )
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Checks the database at `config`'s path against `want`: each configured source (name, feed
/// file, item count) has one row, at its URL, holding exactly its feed's items, each its own
/// story; every story has one appearance per source, credited to the feed that carried it;
/// `source=` finds a source's feed's stories and no others; and another pass adds nothing.
async fn assert_rows_follow_feeds(
    config: &Config,
    server: &FeedServer,
    want: &[(&str, &str, i64)],
) {
    let db = &config.storage.path;
    let expected: BTreeMap<String, (String, i64, i64)> = want
        .iter()
        .map(|(name, file, n)| (name.to_string(), (server.url(file), *n, *n)))
        .collect();
    let found: BTreeMap<_, _> = rows(db)
        .into_iter()
        .filter(|(name, _)| expected.contains_key(name))
        .collect();
    assert_eq!(found, expected, "name → (url, entries, stories)");
    assert_eq!(rows(db).len(), want.len(), "no other rows: {:?}", rows(db));

    // "e.xml" → "e": the feed whose links a source's appearances must carry.
    let feed_name = |file: &str| file.trim_end_matches(".xml").to_string();
    let feeds: HashMap<&str, (String, String)> = want
        .iter()
        .map(|(name, file, _)| (*name, (server.url(file), feed_name(file))))
        .collect();
    let pipeline = tradefeed::app::Pipeline::start(config).await.unwrap();
    let stories = pipeline
        .store
        .stories(StoryQuery {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    let total: i64 = want.iter().map(|w| w.2).sum();
    assert_eq!(stories.len() as i64, total);
    for story in &stories {
        assert_eq!(story.appearances.len(), 1, "one appearance each: {story:?}");
        let a = &story.appearances[0];
        let (url, feed) = &feeds[a.source.as_str()];
        assert_eq!(&a.feed_url, url, "{a:?}");
        assert_eq!(feed_of(a.url.as_deref().unwrap()), feed, "{a:?}");
    }
    for (name, _, n) in want {
        let found = pipeline
            .store
            .stories(StoryQuery {
                limit: 500,
                source: Some(name.to_string()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(found.len() as i64, *n, "source={name}");
        for story in &found {
            let link = story.appearances[0].url.as_deref().unwrap();
            assert_eq!(feed_of(link), feeds[name].1, "source={name}: {story:?}");
        }
    }
    pipeline.store.close().await;
    // The database's lock goes with the pipeline.
    drop(pipeline);

    let again = fetch_pass(config).await;
    assert!(
        again
            .iter()
            .all(|r| r.new_entries + r.updated_entries + r.new_stories == 0),
        "the next poll adds nothing: {again:#?}"
    );
}

/// Writes a config of `sources` (name, feed file) and loads it.
fn configure(dir: &Path, server: &FeedServer, sources: &[(&str, &str)]) -> Config {
    let sources: Vec<(&str, String)> = sources
        .iter()
        .map(|(name, file)| (*name, server.url(file)))
        .collect();
    Config::load(&write_config(dir, &sources, "")).unwrap()
}

/// The audit's case: "Reuters" is renamed "Reuters World" (same URL) and a new source takes
/// the name "Reuters" with another feed. The row follows e.xml; k2.xml is a new source.
#[tokio::test]
async fn a_source_renamed_while_another_takes_its_old_name_keeps_its_stories() {
    let server = FeedServer::start().await;
    server.put("e.xml", feed("e", 0..5));
    server.put("k2.xml", feed("k2", 5..8));
    let dir = tempfile::tempdir().unwrap();
    let before = configure(dir.path(), &server, &[("Reuters", "e.xml")]);
    assert_eq!(fetch_pass(&before).await[0].new_entries, 5);

    let after = configure(
        dir.path(),
        &server,
        &[("Reuters World", "e.xml"), ("Reuters", "k2.xml")],
    );
    let reports = fetch_pass(&after).await;
    let report = |name: &str| reports.iter().find(|r| r.source == name).unwrap();
    assert_eq!(report("Reuters World").new_entries, 0, "{reports:#?}");
    assert_eq!(report("Reuters World").new_stories, 0, "{reports:#?}");
    assert_eq!(report("Reuters").new_entries, 3, "{reports:#?}");
    assert_rows_follow_feeds(
        &after,
        &server,
        &[("Reuters World", "e.xml", 5), ("Reuters", "k2.xml", 3)],
    )
    .await;
}

/// Two sources swap names, URLs unchanged: two renames. Each row keeps its feed, and a later
/// edit in a feed reaches the story under the source's new name.
#[tokio::test]
async fn two_sources_that_swap_names_are_two_renames() {
    let server = FeedServer::start().await;
    server.put("a.xml", feed("a", 0..2));
    server.put("b.xml", feed("b", 2..5));
    let dir = tempfile::tempdir().unwrap();
    let before = configure(dir.path(), &server, &[("A", "a.xml"), ("B", "b.xml")]);
    assert_eq!(
        fetch_pass(&before)
            .await
            .iter()
            .map(|r| r.new_entries)
            .sum::<usize>(),
        5
    );

    let after = configure(dir.path(), &server, &[("B", "a.xml"), ("A", "b.xml")]);
    let reports = fetch_pass(&after).await;
    assert!(
        reports.iter().all(|r| r.new_entries == 0),
        "nothing ingested again: {reports:#?}"
    );
    assert_rows_follow_feeds(&after, &server, &[("B", "a.xml", 2), ("A", "b.xml", 3)]).await;

    // An edit in a.xml, now source B's feed, updates the story in place.
    let mut edited = feed("a", 0..2);
    edited.body = String::from_utf8(edited.body)
        .unwrap()
        .replace(
            "Brussels set provisional duties",
            "Brussels set definitive duties",
        )
        .into_bytes();
    server.put("a.xml", edited);
    let reports = fetch_pass(&after).await;
    let b = reports.iter().find(|r| r.source == "B").unwrap();
    assert_eq!((b.new_entries, b.updated_entries), (0, 1), "{reports:#?}");
    let pipeline = tradefeed::app::Pipeline::start(&after).await.unwrap();
    let stories = pipeline
        .store
        .stories(StoryQuery {
            limit: 50,
            source: Some("B".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    pipeline.store.close().await;
    drop(pipeline);
    assert!(
        stories
            .iter()
            .any(|s| s.text.contains("Brussels set definitive duties")),
        "{stories:#?}"
    );
}

/// A → B, B → C, C → A in one edit: three renames, each row keeping its feed.
#[tokio::test]
async fn names_passed_round_a_cycle_of_three_are_three_renames() {
    let server = FeedServer::start().await;
    server.put("a.xml", feed("a", 0..2));
    server.put("b.xml", feed("b", 2..5));
    server.put("c.xml", feed("c", 5..9));
    let dir = tempfile::tempdir().unwrap();
    let before = configure(
        dir.path(),
        &server,
        &[("A", "a.xml"), ("B", "b.xml"), ("C", "c.xml")],
    );
    assert_eq!(
        fetch_pass(&before)
            .await
            .iter()
            .map(|r| r.new_entries)
            .sum::<usize>(),
        9
    );

    let after = configure(
        dir.path(),
        &server,
        &[("B", "a.xml"), ("C", "b.xml"), ("A", "c.xml")],
    );
    let reports = fetch_pass(&after).await;
    assert!(
        reports.iter().all(|r| r.new_entries == 0),
        "nothing ingested again: {reports:#?}"
    );
    assert_rows_follow_feeds(
        &after,
        &server,
        &[("B", "a.xml", 2), ("C", "b.xml", 3), ("A", "c.xml", 4)],
    )
    .await;
}

/// The audit's case through a live reload of a running daemon (its file watcher sees the
/// edit): the feeds it serves list each story once, under the feed that carried it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_reload_that_renames_a_source_and_reuses_its_name_keeps_its_stories() {
    let server = FeedServer::start().await;
    server.put("e.xml", feed("e", 0..5));
    server.put("k2.xml", feed("k2", 5..8));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let before = configure(dir.path(), &server, &[("Reuters", "e.xml")]);
    let (base, cancel, handle) = common::start_daemon(before).await;
    let entries = |db: &Path| -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
            .unwrap_or(0)
    };
    let wait_for = |what: &'static str, done: Box<dyn Fn() -> bool>| async move {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let db2 = db.clone();
    wait_for("e.xml's entries", Box::new(move || entries(&db2) == 5)).await;

    let after = configure(
        dir.path(),
        &server,
        &[("Reuters World", "e.xml"), ("Reuters", "k2.xml")],
    );
    // The fetch log's line is written with the poll's entries.
    let (db2, k2) = (db.clone(), server.url("k2.xml"));
    let k2_polled = move || {
        rusqlite::Connection::open(&db2)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM fetches f JOIN sources s ON s.id = f.source_id
                  WHERE s.url = ?1",
                [&k2],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            > 0
    };
    wait_for("a poll of k2.xml", Box::new(k2_polled)).await;
    // Each item served for `source=`: its appearances' (source, feed of the link).
    let served = |query: &'static str| {
        let base = base.clone();
        async move {
            let (status, body) = common::get_text(&format!("{base}/feeds/all.json?{query}")).await;
            assert_eq!(status, 200, "{body}");
            let json: serde_json::Value = serde_json::from_str(&body).unwrap();
            json["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|item| {
                    item["_tradefeed"]["appearances"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|a| {
                            let link = a["url"].as_str().unwrap();
                            (
                                a["source"].as_str().unwrap().to_string(),
                                feed_of(link).to_string(),
                            )
                        })
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        }
    };
    let one = |source: &str, feed: &str| vec![(source.to_string(), feed.to_string())];
    assert_eq!(
        served("source=Reuters").await,
        vec![one("Reuters", "k2"); 3]
    );
    assert_eq!(
        served("source=Reuters%20World").await,
        vec![one("Reuters World", "e"); 5]
    );
    common::stop_daemon(cancel, handle).await;

    assert_rows_follow_feeds(
        &after,
        &server,
        &[("Reuters World", "e.xml", 5), ("Reuters", "k2.xml", 3)],
    )
    .await;
}
