//! End-to-end behaviour of the daemon against real local feed servers and temp databases.

mod common;

use std::time::Duration;

use common::{FeedServer, Resource, rss, write_config};
use tokio_util::sync::CancellationToken;
use tradefeed::app::{self, FetchPassResult, Pipeline};
use tradefeed::config::Config;
use tradefeed::store::StoryQuery;

const DATE: &str = "Tue, 10 Nov 2026 09:00:00 GMT";

fn reports(results: &[FetchPassResult]) -> Vec<&tradefeed::ingest::PollReport> {
    results
        .iter()
        .map(|r| match r {
            FetchPassResult::Polled(p) => p,
            FetchPassResult::Skipped { source, reason } => panic!("{source} skipped: {reason}"),
            FetchPassResult::Stopped { source, reason } => panic!("{source} stopped: {reason}"),
        })
        .collect()
}

async fn fetch_pass(config: &Config) -> Vec<tradefeed::ingest::PollReport> {
    let pipeline = Pipeline::start(config).await.unwrap();
    let results = app::fetch_once(&pipeline, config.sources.clone(), 8).await;
    pipeline.store.close().await;
    reports(&results).into_iter().cloned().collect()
}

fn steel_story(link: &str) -> String {
    rss(
        "Wire",
        &[(
            "wire-1",
            link,
            "US raises steel tariffs to 50 percent",
            "The United States doubled Section 232 tariffs on imported steel and aluminium, \
             the trade representative said on Tuesday, drawing retaliation threats from partners.",
            DATE,
        )],
    )
}

#[tokio::test]
async fn the_second_poll_of_unchanged_feeds_gets_304s_and_writes_nothing_new() {
    let server = FeedServer::start().await;
    server.put(
        "a.xml",
        Resource::feed(rss(
            "A",
            &[
                (
                    "a1",
                    "http://a.example/1",
                    "Tariff talks resume",
                    "Negotiators met on tariffs.",
                    DATE,
                ),
                (
                    "a2",
                    "http://a.example/2",
                    "WTO panel rules on duties",
                    "A WTO panel ruled.",
                    DATE,
                ),
            ],
        )),
    );
    server.put(
        "b.xml",
        Resource::feed(steel_story("http://b.example/steel")),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[("A", server.url("a.xml")), ("B", server.url("b.xml"))],
        "",
    );
    let config = Config::load(&path).unwrap();

    let first = fetch_pass(&config).await;
    assert!(first.iter().all(|r| r.outcome == "ok"), "{first:?}");
    assert_eq!(first.iter().map(|r| r.new_entries).sum::<usize>(), 3);

    let second = fetch_pass(&config).await;
    assert!(
        second.iter().all(|r| r.outcome == "not_modified"),
        "{second:?}"
    );
    assert_eq!(
        second
            .iter()
            .map(|r| r.new_entries + r.updated_entries)
            .sum::<usize>(),
        0
    );
    assert_eq!(server.not_modified_count(), 2);

    let pipeline = Pipeline::start(&config).await.unwrap();
    let (stories, entries) = pipeline.store.counts().await.unwrap();
    assert_eq!((stories, entries), (3, 3));
    pipeline.store.close().await;
}

#[tokio::test]
async fn one_story_syndicated_to_three_sources_is_served_once_with_three_appearances() {
    let server = FeedServer::start().await;
    let links = [
        "https://wire.example/steel?utm_source=rss&amp;utm_medium=feed",
        "https://WIRE.example/steel?fbclid=abc123#top",
        "https://wire.example/steel?gclid=xyz",
    ];
    for (i, link) in links.iter().enumerate() {
        server.put(&format!("s{i}.xml"), Resource::feed(steel_story(link)));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("Outlet One", server.url("s0.xml")),
            ("Outlet Two", server.url("s1.xml")),
            ("Outlet Three", server.url("s2.xml")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    let reports = fetch_pass(&config).await;
    assert_eq!(
        reports.iter().map(|r| r.new_entries).sum::<usize>(),
        3,
        "{reports:#?}"
    );
    assert_eq!(reports.iter().map(|r| r.new_stories).sum::<usize>(), 1);

    let pipeline = Pipeline::start(&config).await.unwrap();
    let stories = pipeline
        .store
        .stories(StoryQuery {
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(stories.len(), 1);
    let mut sources: Vec<_> = stories[0]
        .appearances
        .iter()
        .map(|a| a.source.clone())
        .collect();
    sources.sort();
    assert_eq!(sources, ["Outlet One", "Outlet Three", "Outlet Two"]);
    pipeline.store.close().await;
}

/// A source renamed in the config is the same source: its stories keep one appearance each,
/// under the new name, and nothing is ingested again. A name and a URL changed together are a
/// new source.
#[tokio::test]
async fn a_source_renamed_in_the_config_keeps_its_stories_and_is_not_ingested_again() {
    let server = FeedServer::start().await;
    server.put(
        "a.xml",
        Resource::feed(steel_story("http://a.example/steel")),
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let pass = |name: &'static str, file: &'static str| {
        let path = write_config(dir.path(), &[(name, server.url(file))], "");
        async move { fetch_pass(&Config::load(&path).unwrap()).await }
    };
    assert_eq!(pass("Outlet C", "a.xml").await[0].new_entries, 1);
    let renamed = pass("Outlet Charlie", "a.xml").await;
    assert_eq!(renamed[0].source, "Outlet Charlie");
    assert_eq!((renamed[0].new_entries, renamed[0].updated_entries), (0, 0));
    let conn = rusqlite::Connection::open(&db).unwrap();
    let names = |conn: &rusqlite::Connection| -> Vec<(String, i64)> {
        conn.prepare(
            "SELECT s.name, count(e.id) FROM sources s LEFT JOIN entries e ON e.source_id = s.id
              GROUP BY s.id ORDER BY s.id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    assert_eq!(names(&conn), [("Outlet Charlie".to_string(), 1)]);

    // Renamed and moved at once: another feed, so another source.
    server.put(
        "b.xml",
        Resource::feed(steel_story("http://a.example/steel")),
    );
    assert_eq!(pass("Outlet D", "b.xml").await[0].new_entries, 1);
    assert_eq!(
        names(&conn),
        [
            ("Outlet Charlie".to_string(), 1),
            ("Outlet D".to_string(), 1)
        ]
    );
}

#[tokio::test]
async fn an_edited_item_updates_in_place_and_keeps_its_story_id() {
    let server = FeedServer::start().await;
    let original = rss(
        "A",
        &[(
            "x1",
            "http://a.example/x1",
            "EU and Mercosur close in on trade deal",
            "Talks continue.",
            DATE,
        )],
    );
    server.put("a.xml", Resource::feed(original));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    fetch_pass(&config).await;

    let query = StoryQuery {
        limit: 10,
        ..Default::default()
    };
    let pipeline = Pipeline::start(&config).await.unwrap();
    let before = pipeline.store.stories(query.clone()).await.unwrap();
    pipeline.store.close().await;
    drop(pipeline);

    let edited = rss(
        "A",
        &[(
            "x1",
            "http://a.example/x1",
            "EU and Mercosur sign trade deal",
            "The agreement was signed in Montevideo after 25 years of talks.",
            DATE,
        )],
    );
    server.put("a.xml", Resource::feed(edited));
    let reports = fetch_pass(&config).await;
    assert_eq!(reports[0].updated_entries, 1);
    assert_eq!(reports[0].new_entries, 0);

    let pipeline = Pipeline::start(&config).await.unwrap();
    let after = pipeline.store.stories(query).await.unwrap();
    assert_eq!(before.len(), 1);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, before[0].id);
    assert_eq!(after[0].title, "EU and Mercosur sign trade deal");
    assert!(after[0].text.contains("Montevideo"));
    pipeline.store.close().await;
}

/// A wire story of some 110 words, and the paragraph a longer copy adds to it.
const WIRE_TEXT: &str = "The United States will double tariffs on imported steel and aluminium \
    to 50 percent from next month, the Commerce Department said on Tuesday, widening a trade \
    dispute with Canada, Mexico and the European Union. Officials said the higher Section 232 \
    duties would protect domestic mills from a glut of cheap metal. Canada's trade minister \
    called the move unjustified and said Ottawa would respond with countermeasures on American \
    goods worth billions of dollars. The European Commission said it was ready to restore \
    suspended duties on bourbon, motorcycles and jeans. Mexico asked for consultations under \
    the USMCA agreement. Steelmakers in Pennsylvania and Ohio welcomed the decision, while \
    carmakers warned that higher input costs would be passed on to buyers within months.";
const ADDED_PARAGRAPH: &str = "Analysts at the Peterson Institute estimated that the \
    measure would cost American manufacturers about 12 billion dollars a year and cut \
    employment in metal-using industries, which outnumber steel jobs eighty to one, and said \
    retaliation would fall hardest on farm exports such as soybeans and pork.";

/// A copy found in the near-duplicate index is left unscored by the pipeline: a shorter copy
/// joins without touching the story's scores, and a longer copy that comes to represent the
/// story brings its own scores, worked out on the writer.
#[tokio::test]
async fn a_copy_that_comes_to_represent_its_story_brings_its_own_scores() {
    let server = FeedServer::start().await;
    let trimmed: String = WIRE_TEXT.split(" Steelmakers").next().unwrap().to_string();
    let longer = format!("{WIRE_TEXT} {ADDED_PARAGRAPH}");
    let feeds = [
        (
            "wire",
            "US doubles steel and aluminium tariffs to 50%",
            WIRE_TEXT,
        ),
        (
            "brief",
            "US doubles steel, aluminium tariffs",
            trimmed.as_str(),
        ),
        (
            "full",
            "US doubles steel and aluminium tariffs to 50 percent",
            longer.as_str(),
        ),
    ];
    for (name, title, text) in feeds {
        let link = format!("https://{name}.example/steel");
        let item = ("s1", link.as_str(), title, text, DATE);
        server.put(&format!("{name}.xml"), Resource::feed(rss(name, &[item])));
    }
    let dir = tempfile::tempdir().unwrap();
    let sources: Vec<_> = feeds
        .iter()
        .map(|(name, _, _)| (*name, server.url(&format!("{name}.xml"))))
        .collect();
    let path = write_config(dir.path(), &sources, "");
    let config = Config::load(&path).unwrap();
    let pipeline = Pipeline::start(&config).await.unwrap();
    let classifier = std::sync::Arc::clone(&pipeline.classifier.read().unwrap());
    let story = || async {
        let stories = pipeline
            .store
            .stories(StoryQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(stories.len(), 1, "{stories:#?}");
        stories.into_iter().next().unwrap()
    };
    // One source at a time, in order: the copies are polled after the index holds the story.
    let poll = |i: usize| app::fetch_once(&pipeline, vec![config.sources[i].clone()], 1);

    assert_eq!(reports(&poll(0).await)[0].unscored_copies, 0);
    let first = story().await;
    assert_eq!(first.topics, classifier.score(feeds[0].1, WIRE_TEXT));

    let joined = poll(1).await;
    assert_eq!(reports(&joined)[0].near_merges, 1);
    assert_eq!(reports(&joined)[0].unscored_copies, 1);
    let after_brief = story().await;
    assert_eq!(after_brief.text, WIRE_TEXT);
    assert_eq!(after_brief.topics, first.topics);

    let joined = poll(2).await;
    assert_eq!(reports(&joined)[0].near_merges, 1);
    assert_eq!(reports(&joined)[0].unscored_copies, 1);
    let after_full = story().await;
    assert_eq!(after_full.text, longer);
    let own = classifier.score(feeds[2].1, &longer);
    assert_ne!(
        own, first.topics,
        "the added paragraph should change the scores or their why"
    );
    assert_eq!(after_full.topics, own);

    // The writer scored that copy; once idle, it has handed back its stem cache (the task the
    // ingestor registered runs before this one).
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    pipeline.store.when_writer_idle(move || {
        let _ = tx
            .lock()
            .unwrap()
            .send(tradefeed::classify::stems_cached_on_this_thread());
    });
    // A write makes the writer go idle once more after it.
    app::fetch_once(&pipeline, vec![config.sources[0].clone()], 1).await;
    let cached = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the writer went idle");
    assert_eq!(cached, 0);
    pipeline.store.close().await;
}

/// The item and the row release 3dc21f5, which stored and hashed sanitized HTML, wrote for it
/// (read from that release's database).
const LEGACY_ITEM: (&str, &str, &str, &str, &str) = (
    "x1",
    "http://a.example/x1",
    "EU and Mercosur close in on trade deal",
    "&lt;p onclick=\"track()\"&gt;Talks &lt;b&gt;continue&lt;/b&gt; in Brussels.&lt;/p&gt;\
     &lt;script&gt;track()&lt;/script&gt;",
    DATE,
);
const LEGACY_HTML: &str = "<p>Talks <b>continue</b> in Brussels.</p>";
const LEGACY_HASH: &str = "5bec9f1f9a87cb09e0224770da4cbfe5";

#[tokio::test]
async fn an_item_hashed_by_a_release_that_stored_sanitized_html_is_not_taken_for_an_edit() {
    let server = FeedServer::start().await;
    server.put("a.xml", Resource::feed(rss("A", &[LEGACY_ITEM])));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);

    let db = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    let row = |db: &rusqlite::Connection| -> (String, String, i64) {
        db.query_row(
            "SELECT html, content_hash, last_changed FROM entries WHERE identity = 'guid:x1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let (html, hash, _) = row(&db);
    assert!(
        html.contains("<script>"),
        "stored as the feed gave it: {html}"
    );
    assert_ne!(hash, LEGACY_HASH);
    // Make the row what the earlier release wrote, changed an hour ago.
    db.execute(
        "UPDATE entries SET html = ?1, content_hash = ?2, last_changed = last_changed - 3600",
        [LEGACY_HTML, LEGACY_HASH],
    )
    .unwrap();
    let (_, _, changed) = row(&db);
    let story_updated = |db: &rusqlite::Connection| -> i64 {
        db.query_row(
            "SELECT st.updated FROM stories st JOIN entries e ON e.story_id = st.id
              WHERE e.identity = 'guid:x1'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let updated = story_updated(&db);

    // The same item polled again (beside a new one, so the feed is not a 304): not an edit,
    // but its hash is renewed to the current form.
    let other = (
        "x2",
        "http://a.example/x2",
        "Mercosur ministers meet",
        "Ministers met.",
        DATE,
    );
    server.put("a.xml", Resource::feed(rss("A", &[LEGACY_ITEM, other])));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].new_entries, reports[0].updated_entries), (1, 0));
    assert_eq!(row(&db), (LEGACY_HTML.to_owned(), hash.clone(), changed));
    assert_eq!(story_updated(&db), updated);

    // A real edit after the upgrade is still one.
    let edited = (
        LEGACY_ITEM.0,
        LEGACY_ITEM.1,
        LEGACY_ITEM.2,
        "Talks ended.",
        DATE,
    );
    server.put("a.xml", Resource::feed(rss("A", &[edited, other])));
    let reports = fetch_pass(&config).await;
    assert_eq!(reports[0].updated_entries, 1);
    assert_eq!(row(&db).0, "Talks ended.");

    // So is an edit that arrives with the upgrade: a row in the earlier form whose item changed.
    db.execute(
        "UPDATE entries SET html = ?1, content_hash = ?2 WHERE identity = 'guid:x1'",
        [LEGACY_HTML, LEGACY_HASH],
    )
    .unwrap();
    let resumed = (edited.0, edited.1, edited.2, "Talks resumed.", DATE);
    server.put("a.xml", Resource::feed(rss("A", &[resumed, other])));
    let reports = fetch_pass(&config).await;
    assert_eq!(reports[0].updated_entries, 1);
    let (html, hash, _) = row(&db);
    assert_eq!(html, "Talks resumed.");
    assert!(
        hash.starts_with(tradefeed::normalize::CONTENT_HASH_PREFIX),
        "{hash}"
    );
}

/// Titles keep angle-bracketed text that is no HTML tag (`<CADX.O>`) since the release after
/// session 19; a row stored before, without it, is not taken for an edit on the upgrade.
#[tokio::test]
async fn a_title_stored_without_its_ticker_by_an_earlier_release_is_not_taken_for_an_edit() {
    let item = (
        "t1",
        "http://a.example/t1",
        "Canada dollar &lt;CADX.O&gt; firms on trade data",
        "The Canadian dollar rose after the trade figures.",
        DATE,
    );
    let server = FeedServer::start().await;
    server.put("a.xml", Resource::feed(rss("A", &[item])));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);

    let db = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    let row = |db: &rusqlite::Connection| -> (String, String, String) {
        db.query_row(
            "SELECT e.title, e.content_hash, st.title FROM entries e
               JOIN stories st ON st.id = e.story_id WHERE e.identity = 'guid:t1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let (title, hash, story_title) = row(&db);
    assert_eq!(title, "Canada dollar <CADX.O> firms on trade data");
    assert_eq!(story_title, title);

    // The row as the earlier release wrote it: the title without the ticker, hashed over that
    // in the form of its day, `4:` (dates included; this item has no tracking pixel).
    let feed = tradefeed::parse::parse_feed(rss("A", &[item]).as_bytes(), None).unwrap();
    let ctx = tradefeed::normalize::NormalizeContext::new(chrono::Utc::now(), server.url("a.xml"));
    let entry = tradefeed::normalize::normalize_item(&feed.items[0], &ctx).unwrap();
    let earlier = entry.earlier_title.clone().expect("the title changed");
    assert_eq!(earlier.title, "Canada dollar firms on trade data");
    assert_eq!(entry.content_hash, hash);
    assert!(earlier.content_hash_with_dates.starts_with("4:"));
    assert_ne!(
        earlier.content_hash_with_dates,
        entry.content_hash_with_dates
    );
    db.execute(
        "UPDATE entries SET title = ?1, content_hash = ?2 WHERE identity = 'guid:t1'",
        [&earlier.title, &earlier.content_hash_with_dates],
    )
    .unwrap();
    db.execute("UPDATE stories SET title = ?1", [&earlier.title])
        .unwrap();

    // Polled again beside a new item (so not a 304): not an edit; only the hash is renewed.
    let other = (
        "t2",
        "http://a.example/t2",
        "Quotas lifted",
        "Quotas.",
        DATE,
    );
    server.put("a.xml", Resource::feed(rss("A", &[item, other])));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].new_entries, reports[0].updated_entries), (1, 0));
    assert_eq!(
        row(&db),
        (earlier.title.clone(), hash.clone(), earlier.title.clone())
    );

    // A real edit brings the title as read now.
    let edited = (item.0, item.1, item.2, "The dollar rose further.", DATE);
    server.put("a.xml", Resource::feed(rss("A", &[edited, other])));
    let reports = fetch_pass(&config).await;
    assert_eq!(reports[0].updated_entries, 1);
    assert_eq!(row(&db).0, "Canada dollar <CADX.O> firms on trade data");
}

#[tokio::test]
async fn a_feed_that_varies_a_script_nonce_per_request_does_not_make_its_items_edited() {
    let server = FeedServer::start().await;
    let item = |description: &'static str| {
        (
            "s1",
            "http://a.example/s1",
            "EU steel safeguard extended",
            description,
            DATE,
        )
    };
    let nonce_1 = "&lt;script&gt;var nonce=1&lt;/script&gt;&lt;p&gt;Extended.&lt;/p&gt;";
    let nonce_2 = "&lt;script&gt;var nonce=2&lt;/script&gt;&lt;p&gt;Extended.&lt;/p&gt;";
    server.put("a.xml", Resource::feed(rss("A", &[item(nonce_1)])));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    server.put("a.xml", Resource::feed(rss("A", &[item(nonce_2)])));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].items, reports[0].updated_entries), (1, 0));
}

/// An item whose markup carries attributes no reader gets (the sanitizer drops `class`,
/// `data-*` and `onclick`) beside one a reader follows (`href`).
const STYLED_ITEM: (&str, &str, &str, &str, &str) = (
    "c1",
    "http://a.example/c1",
    "EU steel safeguard extended",
    "&lt;p class=\"lead x7f\" data-view=\"1\"&gt;Extended to \
     &lt;a href=\"http://a.example/annex\" onclick=\"t(1)\"&gt;2027&lt;/a&gt;.&lt;/p&gt;",
    DATE,
);

#[tokio::test]
async fn a_feed_that_varies_attributes_no_reader_gets_does_not_make_its_items_edited() {
    let server = FeedServer::start().await;
    let (guid, link, title, _, date) = STYLED_ITEM;
    let rebuilt = "&lt;p class=\"lead k2q\" data-view=\"2\" style=\"margin:0\"&gt;Extended to \
                   &lt;a href=\"http://a.example/annex\" onclick=\"t(2)\"&gt;2027&lt;/a&gt;.&lt;/p&gt;";
    let relinked = "&lt;p&gt;Extended to \
                    &lt;a href=\"http://a.example/annex-2\"&gt;2027&lt;/a&gt;.&lt;/p&gt;";
    server.put("a.xml", Resource::feed(rss("A", &[STYLED_ITEM])));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let item = |description| (guid, link, title, description, date);
    server.put("a.xml", Resource::feed(rss("A", &[item(rebuilt)])));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].items, reports[0].updated_entries), (1, 0));
    // A link a reader follows is content.
    server.put("a.xml", Resource::feed(rss("A", &[item(relinked)])));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].items, reports[0].updated_entries), (1, 1));
}

/// The hash release 28d3976 wrote for [`STYLED_ITEM`] (form `2:`, every attribute counted),
/// read from the database it made when it polled the same feed.
const ALL_ATTRIBUTES_HASH: &str = "2:f5ccbda738befb2edd48962b451b10ab";

#[tokio::test]
async fn an_item_hashed_with_every_attribute_counted_is_not_taken_for_an_edit() {
    let server = FeedServer::start().await;
    let item = STYLED_ITEM;
    server.put("a.xml", Resource::feed(rss("A", &[item])));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let db = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    let row = |db: &rusqlite::Connection| -> (String, i64) {
        db.query_row(
            "SELECT content_hash, last_changed FROM entries WHERE identity = 'guid:c1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    };
    let (hash, _) = row(&db);
    assert!(
        hash.starts_with(tradefeed::normalize::CONTENT_HASH_PREFIX),
        "{hash}"
    );
    db.execute(
        "UPDATE entries SET content_hash = ?1, last_changed = last_changed - 3600",
        [ALL_ATTRIBUTES_HASH],
    )
    .unwrap();
    let (_, changed) = row(&db);

    let other = (
        "c2",
        "http://a.example/c2",
        "Steel quotas reviewed",
        "Reviewed.",
        DATE,
    );
    server.put("a.xml", Resource::feed(rss("A", &[item, other])));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].new_entries, reports[0].updated_entries), (1, 0));
    assert_eq!(row(&db), (hash, changed), "renewed, not edited");
}

#[tokio::test]
async fn relative_links_resolve_against_the_url_a_redirect_fetched_the_feed_from() {
    let server = FeedServer::start().await;
    let item = (
        "r1",
        "http://a.example/r1",
        "EU quota allocation published",
        "&lt;p&gt;See the &lt;a href=\"annex/table.html\"&gt;annex&lt;/a&gt;.&lt;/p&gt;",
        DATE,
    );
    server.put("feeds/v2/main.xml", Resource::feed(rss("A", &[item])));
    server.put(
        "old.xml",
        Resource {
            status: 302,
            body: Vec::new(),
            content_type: "text/plain".into(),
            headers: vec![("location".into(), server.url("feeds/v2/main.xml"))],
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("old.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);

    let (base, cancel, handle) = common::start_daemon(config).await;
    let (status, body) = common::get_text(&format!("{base}/feeds/all.json")).await;
    assert_eq!(status, 200);
    let body = body.replace("\\\"", "\"");
    let resolved = format!("href=\"{}\"", server.url("feeds/v2/annex/table.html"));
    assert!(body.contains(&resolved), "{resolved} not in {body}");
    common::stop_daemon(cancel, handle).await;
}

#[tokio::test]
async fn a_malformed_feed_is_recorded_against_its_source_while_the_others_are_ingested() {
    let server = FeedServer::start().await;
    server.put(
        "good.xml",
        Resource::feed(steel_story("http://good.example/1")),
    );
    server.put(
        "html.xml",
        Resource {
            content_type: "text/html".into(),
            ..Resource::feed("<!DOCTYPE html><html><body><h1>Not a feed</h1></body></html>")
        },
    );
    server.put(
        "garbage.xml",
        Resource::feed(vec![0xff, 0x00, 0x13, 0x37, b'<', b'<']),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("Good", server.url("good.xml")),
            ("Html", server.url("html.xml")),
            ("Garbage", server.url("garbage.xml")),
            ("Missing", server.url("missing.xml")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    let reports = fetch_pass(&config).await;
    let by_name = |n: &str| reports.iter().find(|r| r.source == n).unwrap();
    assert_eq!(by_name("Good").outcome, "ok");
    assert_eq!(by_name("Good").new_entries, 1);
    assert_eq!(by_name("Html").outcome, "parse");
    assert_eq!(by_name("Garbage").outcome, "parse");
    assert_eq!(by_name("Missing").outcome, "http_status");

    let pipeline = Pipeline::start(&config).await.unwrap();
    let states = pipeline.store.source_states().await.unwrap();
    for name in ["Html", "Garbage", "Missing"] {
        let s = states.iter().find(|s| s.name == name).unwrap();
        assert_eq!(s.consecutive_failures, 1, "{name}");
        assert!(s.last_error.is_some(), "{name} has its error recorded");
    }
    let good = states.iter().find(|s| s.name == "Good").unwrap();
    assert_eq!((good.consecutive_failures, good.entries), (0, 1));
    pipeline.store.close().await;
}

/// Starts the daemon on port 0 and returns its address and a handle to stop it.
async fn start_daemon(
    config: Config,
) -> (
    std::net::SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let handle = tokio::spawn(app::run(config, listener, cancel.clone()));
    (addr, cancel, handle)
}

async fn get(url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn served_atom_rss_and_json_parse_agree_and_keep_their_ids_across_a_restart() {
    let server = FeedServer::start().await;
    server.put(
        "a.xml",
        Resource::feed(rss(
            "A",
            &[
                (
                    "a1",
                    "http://a.example/1",
                    "China curbs gallium exports",
                    "Beijing announced export controls on gallium and germanium.",
                    DATE,
                ),
                (
                    "a2",
                    "http://a.example/2",
                    "Lakers trade guard to Celtics",
                    "The Lakers traded their guard in a deal before the deadline.",
                    "Tue, 10 Nov 2026 10:00:00 GMT",
                ),
                (
                    "a3",
                    "http://a.example/3",
                    "Canada &amp;amp; Mexico &lt;b&gt;respond&lt;/b&gt; to USMCA review",
                    "Ottawa and Mexico City set out positions for the USMCA joint review.",
                    "Tue, 10 Nov 2026 11:00:00 GMT",
                ),
            ],
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    fetch_pass(&config).await;

    let mut ids_by_run = Vec::new();
    for _run in 0..2 {
        let (addr, cancel, handle) = start_daemon(config.clone()).await;
        let base = format!("http://{addr}/feeds/all");
        let mut ids_by_format = Vec::new();
        for ext in ["atom", "rss", "json"] {
            let (status, headers, body) = get(&format!("{base}.{ext}")).await;
            assert_eq!(status, 200, "{ext}");
            assert!(headers.get("etag").is_some(), "{ext} has an ETag");
            if ext != "json" {
                let text = String::from_utf8_lossy(&body);
                assert!(text.starts_with("<?xml"), "{ext}: declaration first");
                assert_eq!(text.matches("<?xml").count(), 1, "{ext}: one declaration");
            }
            let feed = feed_rs::parser::parse(&body[..]).unwrap_or_else(|e| panic!("{ext}: {e}"));
            let mut ids: Vec<String> = feed.entries.iter().map(|e| e.id.clone()).collect();
            let mut titles: Vec<String> = feed
                .entries
                .iter()
                .map(|e| e.title.as_ref().unwrap().content.clone())
                .collect();
            ids.sort();
            titles.sort();
            assert_eq!(ids.len(), 3, "{ext}");
            assert!(
                titles.contains(&"Canada & Mexico respond to USMCA review".to_string()),
                "{ext}: {titles:?}"
            );
            ids_by_format.push(ids);
        }
        assert_eq!(ids_by_format[0], ids_by_format[1], "atom and rss ids agree");
        assert_eq!(
            ids_by_format[0], ids_by_format[2],
            "atom and json ids agree"
        );
        ids_by_run.push(ids_by_format[0].clone());
        cancel.cancel();
        handle.await.unwrap().unwrap();
    }
    assert_eq!(ids_by_run[0], ids_by_run[1], "ids survive a restart");
}

/// What a feed reader takes from an RSS item: authors as `dc:creator`, the topic as a tag (its
/// name alone), and `<source>` naming the outlet whose link the item shows, by its feed's URL
/// (without credentials).
#[tokio::test]
async fn served_rss_items_carry_authors_topic_names_and_their_source_feed() {
    let server = FeedServer::start().await;
    let story = |outlet: &str, link: &str, author: &str| {
        steel_story(link)
            .replace("<title>Wire</title>", &format!("<title>{outlet}</title>"))
            .replace(
                "<rss version=\"2.0\">",
                "<rss version=\"2.0\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">",
            )
            .replace(
                "</title><description>",
                &format!("</title><dc:creator>{author}</dc:creator><description>"),
            )
    };
    server.put(
        "a.xml",
        Resource::feed(story("A", "http://a.example/steel", "Jane Doe")),
    );
    server.put(
        "b.xml",
        // The RSS way of naming an author, an address with the name in brackets, is served
        // as the name alone.
        Resource::feed(story(
            "B",
            "http://b.example/steel",
            "news@b.example (Max Roe)",
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let b_url = server
        .url("b.xml")
        .replace("http://", "http://reader:s3cret@");
    let path = write_config(
        dir.path(),
        &[("Outlet A", server.url("a.xml")), ("Outlet B", b_url)],
        "",
    );
    // Outlet B's copy represents the story: it comes first.
    let mut config = Config::load(&path).unwrap();
    let a = config.sources.remove(0);
    fetch_pass(&config).await;
    config.sources.push(a);
    fetch_pass(&config).await;

    let (addr, cancel, handle) = start_daemon(config.clone()).await;
    let (status, _, body) = get(&format!("http://{addr}/feeds/trade-policy.rss")).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body.clone()).unwrap();
    let feed = feed_rs::parser::parse(&body[..]).unwrap();
    assert_eq!(feed.entries.len(), 1, "{text}");
    let entry = &feed.entries[0];
    let authors: Vec<&str> = entry
        .authors
        .iter()
        .filter_map(|p| p.name.as_deref())
        .collect();
    assert_eq!(authors, ["Max Roe"], "{text}");
    for path in ["all.json", "all.atom", "all.rss"] {
        let (_, _, body) = get(&format!("http://{addr}/feeds/{path}")).await;
        let body = String::from_utf8(body).unwrap();
        assert!(
            body.contains("Max Roe") && !body.contains("(Max Roe)"),
            "{path}: {body}"
        );
    }
    let terms: Vec<&str> = entry.categories.iter().map(|c| c.term.as_str()).collect();
    assert_eq!(terms, ["trade-policy"], "{text}");
    let b_feed = server.url("b.xml");
    assert!(
        text.contains(&format!("<source url=\"{b_feed}\">Outlet B</source>")),
        "{text}"
    );
    assert!(
        !text.contains("s3cret") && !text.contains("reader:"),
        "{text}"
    );
    cancel.cancel();
    handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn feeds_answer_conditional_requests_and_reject_bad_parameters() {
    let server = FeedServer::start().await;
    server.put("a.xml", Resource::feed(steel_story("http://a.example/1")));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    fetch_pass(&config).await;
    let (addr, cancel, handle) = start_daemon(config).await;
    let base = format!("http://{addr}");

    let (status, headers, _) = get(&format!("{base}/feeds/all.atom")).await;
    assert_eq!(status, 200);
    let etag = headers.get("etag").unwrap().to_str().unwrap().to_string();
    let client = reqwest::Client::new();
    let again = client
        .get(format!("{base}/feeds/all.atom"))
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    assert!(headers.get("cache-control").is_some());

    for (path, want) in [
        ("/feeds/nosuchtopic.atom", 404),
        ("/feeds/all.xml", 404),
        ("/feeds/%FF.atom", 404),
        ("/feeds/all.atom/", 404),
        ("//feeds/all.atom", 404),
        ("/index.html", 404),
        ("/feeds/all.atom?limit=0", 400),
        ("/feeds/all.atom?limit=9999", 400),
        ("/feeds/all.json?limit=abc", 400),
        ("/feeds/trade-policy.rss", 200),
        ("/feeds/all.json?limit=1&source=A", 200),
        ("/healthz", 200),
        ("/readyz", 200),
        ("/", 200),
    ] {
        let (status, _, body) = get(&format!("{base}{path}")).await;
        assert_eq!(status, want, "{path}: {}", String::from_utf8_lossy(&body));
        if want == 400 {
            assert!(
                String::from_utf8_lossy(&body).contains("limit"),
                "{path} explains itself"
            );
        }
        // Every 404 says why, in text, and names no route parameter of the router's.
        if want == 404 {
            let text = String::from_utf8_lossy(&body);
            assert!(
                (text.contains("/feeds/TOPIC.atom") || text.contains("unknown topic"))
                    && !text.contains("`file`"),
                "{path}: {text}"
            );
        }
    }
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// A poll gives its place under the concurrency limit back once its results are queued for
/// the writer: with `concurrency` 1 and the database held by another program, the second
/// source is fetched while the first one's write waits, and both commit once the other
/// program lets go.
#[tokio::test]
async fn a_poll_waiting_for_its_commit_lets_the_next_poll_fetch() {
    let server = FeedServer::start().await;
    for name in ["first", "second"] {
        let link = format!("https://{name}.example/steel");
        let item = ("s1", link.as_str(), "Steel tariffs", WIRE_TEXT, DATE);
        server.put(&format!("{name}.xml"), Resource::feed(rss(name, &[item])));
    }
    let dir = tempfile::tempdir().unwrap();
    let sources: Vec<_> = ["first", "second"]
        .iter()
        .map(|name| (*name, server.url(&format!("{name}.xml"))))
        .collect();
    let path = write_config(dir.path(), &sources, "");
    let config = Config::load(&path).unwrap();
    let pipeline = Pipeline::start(&config).await.unwrap();

    // Another program's write transaction: the writer waits for it (busy timeout 5 s).
    let other = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let pass = app::fetch_once(&pipeline, config.sources.clone(), 1);
    let release = async {
        server
            .wait_for_hits("second.xml", 1, Duration::from_secs(3))
            .await;
        let query = StoryQuery {
            limit: 10,
            ..Default::default()
        };
        // Nothing committed yet: the first poll's write is still waiting.
        assert!(pipeline.store.stories(query).await.unwrap().is_empty());
        other.execute_batch("ROLLBACK").unwrap();
    };
    let (results, ()) = tokio::join!(pass, release);
    let reports = reports(&results);
    assert!(
        reports
            .iter()
            .all(|r| r.error.is_none() && r.new_entries == 1),
        "{reports:#?}"
    );
    pipeline.store.close().await;
}
