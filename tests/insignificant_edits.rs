//! Changes to an item that no reader could see are no edits, end to end: real feed servers on
//! 127.0.0.1 polled into a temp database. An edit updates the entry, bumps its `updated` time
//! and `last_changed`, and feed readers show the item again as updated; these changes must do
//! none of that, while a real edit (a changed word, a changed absolute link) still does.
//!
//! - A source whose URL the operator changes (as a permanent redirect advises): the items'
//!   relative link, HTML and enclosure URLs now resolve against the new URL.
//! - White space: HTML re-indented, `a  b` written `a b`, a trailing newline; a title's
//!   spacing.

mod common;

use std::path::Path;

use common::{FeedServer, Resource, fetch_pass, write_config};
use tradefeed::config::Config;

const DATE: &str = "2026-11-10T09:00:00Z";

/// An Atom entry: id, link (as written, possibly relative; none when empty), title, content
/// (HTML, escaped), and an enclosure URL as written (none when empty). Atom, as RSS
/// enclosures are read only with absolute URLs.
type Item<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

fn feed(items: &[Item<'_>]) -> Resource {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Moving outlet</title>\
         <id>urn:outlet</id><updated>2026-11-10T09:00:00Z</updated>\n",
    );
    for (id, link, title, content, enclosure) in items {
        let link = if link.is_empty() {
            String::new()
        } else {
            format!("<link href=\"{link}\"/>")
        };
        let enclosure = if enclosure.is_empty() {
            String::new()
        } else {
            format!(
                "<link rel=\"enclosure\" href=\"{enclosure}\" length=\"1200\" type=\"audio/mpeg\"/>"
            )
        };
        xml.push_str(&format!(
            "<entry><id>{id}</id>{link}<title>{title}</title>\
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

const REINDENT_LINK: &str = "https://trade.example.org/news/w1";

#[tokio::test]
async fn a_feed_that_changes_only_white_space_does_not_make_its_items_look_edited() {
    let server = FeedServer::start().await;
    let compact = (
        "w1",
        REINDENT_LINK,
        "EU steel quotas extended",
        "&lt;p&gt;Duties  rise on &lt;b&gt;steel&lt;/b&gt; imports.&lt;/p&gt;&lt;ul&gt;\
         &lt;li&gt;Quotas&lt;/li&gt;&lt;li&gt;Safeguards&lt;/li&gt;&lt;/ul&gt;\
         &lt;pre&gt;tariff  = 25%&lt;/pre&gt;",
        "",
    );
    server.put("a.xml", feed(&[compact]));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    age(&db);
    let before = row(&db, "guid:w1");

    // Re-indented: line breaks and indentation between and inside blocks, a run of spaces
    // folded, a trailing newline; the title's spacing changed.
    let reindented = (
        compact.0,
        compact.1,
        "EU  steel\n   quotas extended ",
        "\n  &lt;p&gt;\n    Duties rise on &lt;b&gt;steel&lt;/b&gt;\n    imports.\n  &lt;/p&gt;\n\
         &lt;ul&gt;\n    &lt;li&gt;Quotas&lt;/li&gt;\n    &lt;li&gt;Safeguards&lt;/li&gt;\n\
         &lt;/ul&gt;\n  &lt;pre&gt;tariff  = 25%&lt;/pre&gt;\n\n",
        "",
    );
    server.put("a.xml", feed(&[reindented]));
    let reports = fetch_pass(&config).await;
    assert_eq!(reports[0].outcome, "ok", "{reports:?}");
    assert_eq!(
        (
            reports[0].items,
            reports[0].new_entries,
            reports[0].updated_entries
        ),
        (1, 0, 0),
        "{reports:?}"
    );
    assert_eq!(row(&db, "guid:w1"), before, "nothing written");

    // Real edits still count: a changed word; white space inside preformatted text.
    let reworded = (
        compact.0,
        compact.1,
        compact.2,
        &*compact.3.replace("Duties  rise", "Duties  fall"),
        "",
    );
    server.put("a.xml", feed(&[reworded]));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].new_entries, reports[0].updated_entries), (0, 1));
    let preformatted = (
        compact.0,
        compact.1,
        compact.2,
        &*reworded.3.replace("tariff  = 25%", "tariff = 25%"),
        "",
    );
    server.put("a.xml", feed(&[preformatted]));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].new_entries, reports[0].updated_entries), (0, 1));
}

#[tokio::test]
async fn a_row_hashed_before_white_space_was_folded_is_not_taken_for_an_edit() {
    let server = FeedServer::start().await;
    // No link: an item with one whose title, HTML and authors are as stored is no edit anyway
    // (see the store's `only_tracking_changed`), so only this one tells.
    let item = (
        "w2",
        "",
        "EU steel quotas extended",
        "&lt;p&gt;Duties rise.&lt;/p&gt;\n&lt;p&gt;Quotas  hold.&lt;/p&gt;\n",
        "",
    );
    let resource = feed(&[item]);
    server.put("a.xml", resource.clone());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let current = row(&db, "guid:w2");
    assert!(
        current
            .hash
            .starts_with(tradefeed::normalize::CONTENT_HASH_PREFIX),
        "{current:?}"
    );

    // The row as the release before wrote it: the hash in form `5:`, over the same item.
    let parsed = tradefeed::parse::parse_feed(&resource.body, None).unwrap();
    let ctx = tradefeed::normalize::NormalizeContext::new(chrono::Utc::now(), server.url("a.xml"));
    let entry = tradefeed::normalize::normalize_item(&parsed.items[0], &ctx).unwrap();
    let earlier = entry.content_hash_exact_white_space;
    assert!(
        earlier.starts_with("5:") && earlier != current.hash,
        "{earlier}"
    );
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE entries SET content_hash = ?1", [&earlier])
        .unwrap();
    age(&db);
    let before = row(&db, "guid:w2");

    let other = (
        "o2",
        "https://trade.example.org/news/o2",
        "Tariff talks resume",
        "Talks resume.",
        "",
    );
    server.put("a.xml", feed(&[item, other]));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].new_entries, reports[0].updated_entries), (1, 0));
    // Renewed, not edited.
    assert_eq!(
        row(&db, "guid:w2"),
        Row {
            hash: current.hash,
            ..before
        }
    );
}

/// A feed that lists a guid twice (a correction above the original) after its source moved:
/// the item the read keeps is the newest, and only that one may be compared against the old
/// base. Matching the original, which is unchanged, renewed the row's hash to the correction's
/// and hid the edit for good (review rv3 M1).
#[tokio::test]
async fn a_guid_listed_twice_after_a_move_still_shows_the_edit() {
    let old = FeedServer::start().await;
    let new = FeedServer::start().await;
    let original: Item = (
        "d1",
        "news/d1.html",
        "Steel quota notice",
        "&lt;p&gt;Quota is 10 tonnes.&lt;/p&gt;",
        "",
    );
    let corrected: Item = (
        "d1",
        "news/d1.html",
        "Steel quota notice",
        "&lt;p&gt;Quota is 90 tonnes.&lt;/p&gt;",
        "",
    );
    old.put("feeds/main.xml", feed(&[original]));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let path = write_config(dir.path(), &[("Outlet", old.url("feeds/main.xml"))], "");
    assert_eq!(
        fetch_pass(&Config::load(&path).unwrap()).await[0].new_entries,
        1
    );
    age(&db);
    new.put("feeds/main.xml", feed(&[corrected, original]));
    let path = write_config(dir.path(), &[("Outlet", new.url("feeds/main.xml"))], "");
    let moved = fetch_pass(&Config::load(&path).unwrap()).await;
    assert_eq!(moved[0].updated_entries, 1, "{moved:?}");
    let html: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT html FROM entries WHERE identity = 'guid:d1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(html.contains("90 tonnes"), "{html}");
}

/// An Atom feed whose entry sets a relative `xml:base` (`/outlet/news/`), which resolves
/// against the URL the feed is fetched from; its link and enclosure are relative to it.
fn based_feed(content: &str) -> Resource {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Based outlet</title>\
         <id>urn:based</id><updated>{DATE}</updated>\n\
         <entry xml:base=\"/outlet/news/\"><id>b1</id><link href=\"b1.html\"/>\
         <title>Export licences reviewed</title><content type=\"html\">{content}</content>\
         <link rel=\"enclosure\" href=\"b1.mp3\" length=\"1200\" type=\"audio/mpeg\"/>\
         <updated>{DATE}</updated></entry>\n</feed>\n"
    );
    Resource {
        content_type: "application/atom+xml".into(),
        ..Resource::feed(xml)
    }
}

/// An entry with a relative `xml:base` of its own keeps in its row the base that resolved to
/// (on the old host): after the source's URL changes, the same entry resolves to the new
/// host and must be renewed, not re-served as edited (review rv3 M2). A real edit still is.
#[tokio::test]
async fn an_entry_with_a_relative_xml_base_is_no_edit_after_its_source_moves() {
    let old = FeedServer::start().await;
    let new = FeedServer::start().await;
    let content = "&lt;p&gt;See the &lt;a href=\"annex.html\"&gt;annex&lt;/a&gt;.&lt;/p&gt;";
    old.put("feeds/main.xml", based_feed(content));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let path = write_config(dir.path(), &[("Based", old.url("feeds/main.xml"))], "");
    let first = fetch_pass(&Config::load(&path).unwrap()).await;
    assert_eq!((first[0].new_entries, first[0].updated_entries), (1, 0));
    let before = row(&db, "guid:b1");
    assert_eq!(before.link, Some(old.url("outlet/news/b1.html")));
    assert_eq!(before.base_url, Some(old.url("outlet/news/")));
    age(&db);
    let before = row(&db, "guid:b1");

    new.put("feeds/main.xml", based_feed(content));
    let path = write_config(dir.path(), &[("Based", new.url("feeds/main.xml"))], "");
    let config = Config::load(&path).unwrap();
    let moved = fetch_pass(&config).await;
    assert_eq!(moved[0].outcome, "ok", "{moved:?}");
    assert_eq!(
        (moved[0].new_entries, moved[0].updated_entries),
        (0, 0),
        "{moved:?}"
    );
    let after = row(&db, "guid:b1");
    assert_eq!(
        (after.last_changed, after.updated),
        (before.last_changed, before.updated),
        "not taken for an edit"
    );
    // Renewed silently: link, enclosure, the base its HTML is served against, and the hash.
    assert_eq!(after.link, Some(new.url("outlet/news/b1.html")));
    assert!(
        after
            .media
            .as_deref()
            .unwrap()
            .contains(&new.url("outlet/news/b1.mp3")),
        "{after:?}"
    );
    assert_eq!(after.base_url, Some(new.url("outlet/news/")));
    assert_ne!(after.hash, before.hash);

    // A real edit after the move is one.
    new.put(
        "feeds/main.xml",
        based_feed("&lt;p&gt;See the revised annex.&lt;/p&gt;"),
    );
    let edited = fetch_pass(&config).await;
    assert_eq!(
        (edited[0].new_entries, edited[0].updated_entries),
        (0, 1),
        "{edited:?}"
    );
}

/// A feed that drops its entry's relative `xml:base` moves the entry's relative link with it
/// (`/outlet/news/b1.html` → `/feeds/b1.html`): an edit, with no move of the source to explain
/// it; so is a changed base (review rv4 M1).
#[tokio::test]
async fn a_feed_that_drops_a_relative_entry_base_changes_the_link_and_says_so() {
    let server = FeedServer::start().await;
    let content = "&lt;p&gt;Words.&lt;/p&gt;";
    server.put("feeds/main.xml", based_feed(content));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let path = write_config(dir.path(), &[("Based", server.url("feeds/main.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    age(&db);
    let before = row(&db, "guid:b1");
    assert_eq!(before.link, Some(server.url("outlet/news/b1.html")));

    let dropped = based_feed(content);
    let dropped = Resource {
        body: String::from_utf8(dropped.body.clone())
            .unwrap()
            .replace(" xml:base=\"/outlet/news/\"", "")
            .into_bytes(),
        ..dropped
    };
    server.put("feeds/main.xml", dropped);
    let polled = fetch_pass(&config).await;
    assert_eq!(
        (polled[0].new_entries, polled[0].updated_entries),
        (0, 1),
        "{polled:?}"
    );
    let after = row(&db, "guid:b1");
    assert_eq!(after.link, Some(server.url("feeds/b1.html")));
    assert!(after.last_changed > before.last_changed, "{after:?}");
}
