//! Changes to an item that no reader could see are no edits, end to end: real feed servers on
//! 127.0.0.1 polled into a temp database. An edit updates the entry, bumps its `updated` time
//! and `last_changed`, and feed readers show the item again as updated; these changes must do
//! none of that, while a real edit (a changed word, a changed absolute link) still does.
//!
//! - A source whose URL the operator changes (as a permanent redirect advises): the items'
//!   relative link, HTML and enclosure URLs now resolve against the new URL.

mod common;

use std::path::Path;

use common::{FeedServer, Resource, fetch_pass, write_config};
use tradefeed::config::Config;

const DATE: &str = "2026-11-10T09:00:00Z";

/// An Atom entry: id, link (as written, possibly relative), title, content (HTML, escaped),
/// and an enclosure URL as written (none when empty). Atom, as RSS enclosures are read only
/// with absolute URLs.
type Item<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

fn feed(items: &[Item<'_>]) -> Resource {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Moving outlet</title>\
         <id>urn:outlet</id><updated>2026-11-10T09:00:00Z</updated>\n",
    );
    for (id, link, title, content, enclosure) in items {
        let enclosure = if enclosure.is_empty() {
            String::new()
        } else {
            format!(
                "<link rel=\"enclosure\" href=\"{enclosure}\" length=\"1200\" type=\"audio/mpeg\"/>"
            )
        };
        xml.push_str(&format!(
            "<entry><id>{id}</id><link href=\"{link}\"/><title>{title}</title>\
             <content type=\"html\">{content}</content>{enclosure}\
             <updated>{DATE}</updated></entry>\n"
        ));
    }
    xml.push_str("</feed>\n");
    Resource {
        content_type: "application/atom+xml".into(),
        ..Resource::feed(xml)
    }
}

/// What an entry's row holds that an edit changes: link, content hash, `last_changed`,
/// `updated`, base URL and media.
#[derive(Debug, Clone, PartialEq)]
struct Row {
    link: Option<String>,
    hash: String,
    last_changed: i64,
    updated: i64,
    base_url: Option<String>,
    media: Option<String>,
}

fn row(db: &Path, identity: &str) -> Row {
    let db = rusqlite::Connection::open(db).unwrap();
    db.query_row(
        "SELECT link, content_hash, last_changed, updated, base_url, media FROM entries
          WHERE identity = ?1",
        [identity],
        |r| {
            Ok(Row {
                link: r.get(0)?,
                hash: r.get(1)?,
                last_changed: r.get(2)?,
                updated: r.get(3)?,
                base_url: r.get(4)?,
                media: r.get(5)?,
            })
        },
    )
    .unwrap()
}

/// Moves every entry's `last_changed` an hour back, so that a write in the same second as the
/// poll that stored it still shows.
fn age(db: &Path) {
    let db = rusqlite::Connection::open(db).unwrap();
    db.execute("UPDATE entries SET last_changed = last_changed - 3600", [])
        .unwrap();
}

const ANNEX: &str = "&lt;p&gt;Quotas for 2027 are in the \
                     &lt;a href=\"annex/table.html\"&gt;annex&lt;/a&gt;.&lt;/p&gt;\
                     &lt;img src=\"/img/chart.png\" alt=\"chart\"&gt;";

#[tokio::test]
async fn a_source_moved_to_a_new_url_does_not_make_its_items_with_relative_urls_look_edited() {
    let old = FeedServer::start().await;
    let new = FeedServer::start().await;
    // Relative link, relative URLs in the HTML and a relative enclosure; an item whose link
    // is relative too but whose words change along with the move; one with absolute URLs.
    let relative: Item = (
        "r1",
        "news/r1.html",
        "EU publishes steel quota allocation",
        ANNEX,
        "/media/r1.mp3",
    );
    let edited = (
        "r2",
        "/news/r2.html",
        "Safeguard review opens",
        "&lt;p&gt;The review opens on Monday.&lt;/p&gt;",
        "",
    );
    let absolute = (
        "a1",
        "https://trade.example.org/news/a1",
        "WTO panel rules on duties",
        "&lt;p&gt;A panel ruled.&lt;/p&gt;",
        "",
    );
    old.put("feeds/main.xml", feed(&[relative, edited, absolute]));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let path = write_config(dir.path(), &[("Outlet", old.url("feeds/main.xml"))], "");
    let config = Config::load(&path).unwrap();
    let first = fetch_pass(&config).await;
    assert_eq!((first[0].new_entries, first[0].updated_entries), (3, 0));
    let stored = row(&db, "guid:r1");
    assert_eq!(stored.link, Some(old.url("feeds/news/r1.html")));
    assert!(
        stored
            .media
            .as_deref()
            .unwrap()
            .contains(&old.url("media/r1.mp3"))
    );
    age(&db);
    let (before, before_absolute) = (row(&db, "guid:r1"), row(&db, "guid:a1"));

    // The feed moved permanently; the operator updates the config. The new host serves the
    // same items, but for one changed word in r2.
    let edited_now = (
        edited.0,
        edited.1,
        edited.2,
        "&lt;p&gt;The review opens on Tuesday.&lt;/p&gt;",
        edited.4,
    );
    new.put("feeds/main.xml", feed(&[relative, edited_now, absolute]));
    let path = write_config(dir.path(), &[("Outlet", new.url("feeds/main.xml"))], "");
    let config = Config::load(&path).unwrap();
    let moved = fetch_pass(&config).await;
    assert_eq!(moved[0].outcome, "ok", "{moved:?}");
    assert_eq!(
        (moved[0].new_entries, moved[0].updated_entries),
        (0, 1),
        "only the item whose words changed is an edit: {moved:?}"
    );
    let after = row(&db, "guid:r1");
    assert_eq!(
        (after.last_changed, after.updated),
        (before.last_changed, before.updated),
        "not taken for an edit"
    );
    // Its URLs are renewed silently: the link, the enclosure, the base its HTML is served
    // against (the source's URL again), and the hash, so the next poll skips it.
    assert_eq!(after.link, Some(new.url("feeds/news/r1.html")));
    assert!(
        after
            .media
            .as_deref()
            .unwrap()
            .contains(&new.url("media/r1.mp3"))
    );
    assert_eq!(after.base_url, None);
    assert_ne!(after.hash, before.hash);
    let story_link: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT s.link FROM stories s JOIN entries e ON e.story_id = s.id
              WHERE e.identity = 'guid:r1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(story_link, new.url("feeds/news/r1.html"));
    let r2 = row(&db, "guid:r2");
    assert!(r2.last_changed > before.last_changed, "r2 was edited");
    assert_eq!(r2.link, Some(new.url("news/r2.html")));
    assert_eq!(row(&db, "guid:a1"), before_absolute, "nothing to renew");

    // Polled again with the feed changed elsewhere (so no 304): nothing more to renew.
    let other = (
        "o1",
        "https://trade.example.org/news/o1",
        "Tariff talks resume",
        "Talks resume.",
        "",
    );
    new.put(
        "feeds/main.xml",
        feed(&[relative, edited_now, absolute, other]),
    );
    let again = fetch_pass(&config).await;
    assert_eq!((again[0].new_entries, again[0].updated_entries), (1, 0));
    assert_eq!(row(&db, "guid:r1"), after);

    // Real edits still count: a changed word, a changed absolute link.
    let reworded = (
        relative.0,
        relative.1,
        relative.2,
        "&lt;p&gt;Quotas for 2028 are in the \
         &lt;a href=\"annex/table.html\"&gt;annex&lt;/a&gt;.&lt;/p&gt;",
        relative.4,
    );
    let relinked = (
        absolute.0,
        "https://trade.example.com/news/a1",
        absolute.2,
        absolute.3,
        absolute.4,
    );
    new.put(
        "feeds/main.xml",
        feed(&[reworded, edited_now, relinked, other]),
    );
    let edits = fetch_pass(&config).await;
    assert_eq!((edits[0].new_entries, edits[0].updated_entries), (0, 2));
}
