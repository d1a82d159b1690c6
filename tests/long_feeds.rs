//! A feed listing far more items than a poll takes (an archive feed, or a hostile one of
//! thousands of tiny items) is read at its two ends only (`parse::parse_feed_for`): the
//! newest items are taken whichever way the feed is sorted, and the poll reports every item
//! the feed lists, those left unread counted as skipped.

mod common;

use chrono::{Duration, Utc};
use common::{FeedServer, Resource, fetch_pass, row_pairs, rss, write_config};
use tradefeed::config::Config;

/// Items listed, a poll's default cap (`max_items_per_poll`) and the window read at each end.
const LISTED: usize = 3_000;
const TAKEN: usize = 500;

/// Item `i` of the archive: published `LISTED - i` minutes ago, so a higher number is newer.
fn item(i: usize) -> (String, String, String, String, String) {
    let published = Utc::now() - Duration::minutes((LISTED - i) as i64);
    (
        format!("notice-{i}"),
        format!("https://ustr.example/notices/{i}"),
        format!("Notice {i} of a tariff-rate quota allocation"),
        format!("Allocation number {i} of the tariff-rate quota among supplying countries."),
        published.to_rfc2822(),
    )
}

fn rss_archive(order: impl Iterator<Item = usize>) -> Resource {
    let items: Vec<_> = order.map(item).collect();
    let borrowed: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(g, l, t, d, p)| (g.as_str(), l.as_str(), t.as_str(), d.as_str(), p.as_str()))
        .collect();
    Resource::feed(rss("Notices", &borrowed))
}

fn json_archive(order: impl Iterator<Item = usize>) -> Resource {
    let items: Vec<serde_json::Value> = order
        .map(|i| {
            let (id, url, title, text, _) = item(i);
            let published = Utc::now() - Duration::minutes((LISTED - i) as i64);
            serde_json::json!({
                "id": id, "url": url, "title": title, "content_text": text,
                "date_published": published.to_rfc3339(),
            })
        })
        .collect();
    let feed = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Notices",
        "items": items,
    });
    let mut resource = Resource::feed(feed.to_string());
    resource.content_type = "application/feed+json".into();
    resource
}

/// The numbers of the stored items of `source`, ascending.
fn stored(db: &std::path::Path, source: &str) -> Vec<usize> {
    let rows: Vec<(String, String)> = row_pairs(
        db,
        &format!(
            "SELECT e.identity, s.name FROM entries e JOIN sources s ON s.id = e.source_id
              WHERE s.name = '{source}'"
        ),
    );
    let mut numbers: Vec<usize> = rows
        .iter()
        .map(|(identity, _)| identity.rsplit('-').next().unwrap().parse().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_feed_gives_its_newest_items_whichever_way_it_is_sorted() {
    let server = FeedServer::start().await;
    server.put("newest-first.xml", rss_archive((0..LISTED).rev()));
    server.put("oldest-first.xml", rss_archive(0..LISTED));
    server.put("oldest-first.json", json_archive(0..LISTED));
    let dir = tempfile::tempdir().unwrap();
    let sources = [
        ("Newest first", server.url("newest-first.xml")),
        ("Oldest first", server.url("oldest-first.xml")),
        ("JSON", server.url("oldest-first.json")),
    ];
    let config = Config::load(&write_config(dir.path(), &sources, "")).unwrap();
    let reports = fetch_pass(&config).await;
    assert_eq!(reports.len(), 3);
    let newest: Vec<usize> = (LISTED - TAKEN..LISTED).collect();
    let db = dir.path().join("tradefeed.db");
    for report in &reports {
        assert_eq!(report.outcome, "ok", "{report:?}");
        assert_eq!(
            (report.items, report.new_entries, report.skipped),
            (LISTED, TAKEN, LISTED - TAKEN),
            "{}: every listed item is counted, the unread ones as skipped",
            report.source
        );
        assert_eq!(
            stored(&db, &report.source),
            newest,
            "{}: the newest {TAKEN}",
            report.source
        );
    }

    // The window is what is read: the newest item, listed in the middle of an otherwise
    // newest-first feed, is not among what the poll takes (read whole, it would be first).
    let mut order: Vec<usize> = (0..LISTED - 1).rev().collect();
    order.insert(LISTED / 2, LISTED - 1);
    server.put("middle.xml", rss_archive(order.into_iter()));
    let middle = [("Middle", server.url("middle.xml"))];
    let config = Config::load(&write_config(dir.path(), &middle, "")).unwrap();
    let report = &fetch_pass(&config).await[0];
    assert_eq!(
        (report.items, report.new_entries),
        (LISTED, TAKEN),
        "{report:?}"
    );
    let expected: Vec<usize> = (LISTED - 1 - TAKEN..LISTED - 1).collect();
    assert_eq!(stored(&db, "Middle"), expected);

    // The next poll of the same feeds takes nothing new and changes nothing.
    let config = Config::load(&write_config(dir.path(), &sources, "")).unwrap();
    let again = fetch_pass(&config).await;
    for report in &again {
        assert_eq!(
            (report.new_entries, report.updated_entries),
            (0, 0),
            "{report:?}"
        );
    }
}

/// A read that leaves the middle of a long feed unread cannot tell that an item there is gone:
/// a new undated item with the words of one stored from the middle is a new entry of its
/// story, never that item under a new id, which would take its row (review rv1 L2). A feed
/// read whole still re-keys such an item (`tests/changing_ids.rs`), and so does a long one
/// for a dated item (below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_read_takes_no_unread_item_for_an_undated_one_under_a_new_id() {
    let server = FeedServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    // First the short feed: the item that will end up in the middle, undated.
    let (_, _, title, text, _) = item(0);
    let twin = |guid: &str| {
        (
            guid.to_string(),
            format!("https://ustr.example/{guid}"),
            title.clone(),
            text.clone(),
            String::new(),
        )
    };
    server.put("long.xml", feed_of(vec![twin("kept-1")]));
    let sources = [("Long", server.url("long.xml"))];
    let config = Config::load(&write_config(dir.path(), &sources, "")).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);

    // Then the long feed: its twin under a new guid first, the stored item in the unread
    // middle, and older items around it.
    let mut items: Vec<_> = (1..LISTED).rev().map(item).collect();
    items.insert(LISTED / 2, twin("kept-1"));
    items.insert(0, twin("twin-2"));
    server.put("long.xml", feed_of(items));
    let report = &fetch_pass(&config).await[0];
    assert_eq!(report.outcome, "ok", "{report:?}");
    let identities: Vec<(String, i64)> = row_pairs(
        &db,
        "SELECT identity, story_id FROM entries WHERE identity LIKE 'guid:%-%' \
          AND identity NOT LIKE 'guid:notice-%' ORDER BY identity",
    );
    let names: Vec<&str> = identities.iter().map(|(i, _)| i.as_str()).collect();
    assert_eq!(names, ["guid:kept-1", "guid:twin-2"], "{report:?}");
    assert_eq!(
        identities[0].1, identities[1].1,
        "the twin joins the stored item's story by its words"
    );
}

/// A long feed that gives its items new ids and links at every request (a session in each)
/// is read at its ends at every poll, and its dated items are known under their new ids:
/// no poll stores them again (review rv5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_feed_changing_its_ids_at_every_poll_stores_its_items_once() {
    let server = FeedServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let start = Utc::now() - Duration::days(3);
    let session_feed = |session: usize| {
        feed_of(
            (0..LISTED)
                .rev()
                .map(|i| {
                    (
                        format!("notice-{i}-s{session}"),
                        format!("https://ustr.example/notices/{i}?session={session}"),
                        format!("Notice {i} of a tariff-rate quota allocation"),
                        distinct_text(i),
                        (start + Duration::minutes(i as i64)).to_rfc2822(),
                    )
                })
                .collect(),
        )
    };
    let sources = [("Sessions", server.url("sessions.xml"))];
    let config = Config::load(&write_config(dir.path(), &sources, "")).unwrap();
    for session in 1..=3 {
        server.put("sessions.xml", session_feed(session));
        let report = &fetch_pass(&config).await[0];
        assert_eq!(report.outcome, "ok", "{report:?}");
        let count: Vec<(i64, i64)> = row_pairs(&db, "SELECT count(*), 0 FROM entries");
        assert_eq!(count[0].0, TAKEN as i64, "poll {session}: {report:?}");
    }
}

/// An RSS feed of these items (guid, link, title, description, pubDate).
fn feed_of(items: Vec<(String, String, String, String, String)>) -> Resource {
    let borrowed: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(g, l, t, d, p)| (g.as_str(), l.as_str(), t.as_str(), d.as_str(), p.as_str()))
        .collect();
    Resource::feed(rss("Notices", &borrowed))
}

/// Words of their own for item `i`: items whose texts differ by a number alone are
/// near-duplicates, one story, which is not what this feed is.
fn distinct_text(i: usize) -> String {
    const WORDS: [&str; 24] = [
        "steel",
        "quota",
        "tariff",
        "dumping",
        "subsidy",
        "customs",
        "origin",
        "safeguard",
        "export",
        "import",
        "licence",
        "ministry",
        "panel",
        "dispute",
        "duties",
        "textile",
        "grain",
        "dairy",
        "aluminium",
        "timber",
        "vehicle",
        "shipping",
        "port",
        "treaty",
    ];
    let mut state = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let words: Vec<&str> = (0..14)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            WORDS[(state % WORDS.len() as u64) as usize]
        })
        .collect();
    format!("Allocation {i}: {}.", words.join(" "))
}
