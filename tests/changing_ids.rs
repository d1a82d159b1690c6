//! A feed that gives the same item a new id (and a new session link) at every request: the
//! item is stored once per source, not once per poll. Real feed server on 127.0.0.1, real temp
//! database, the daemon asked over HTTP.

mod common;

use common::{FeedServer, Resource, fetch_pass, row_pairs, rss, write_config};
use tradefeed::config::Config;

const TEXT: &str = "Negotiators failed to agree on steel tariffs and anti-dumping duties at the \
                    WTO in Geneva on Friday, officials said.";

fn session_feed(n: usize) -> Resource {
    dated_session_feed(n, "Fri, 27 Nov 2026 10:00:00 GMT")
}

fn dated_session_feed(n: usize, date: &str) -> Resource {
    titled_session_feed(n, date, "Session feed")
}

/// The session feed under another channel title: another body, so the server answers it in
/// full (its ETag changes) with the same item.
fn titled_session_feed(n: usize, date: &str, title: &str) -> Resource {
    let guid = format!("urn:uuid:{n}-77");
    let link = format!("http://example.org/story/77?session={n}");
    Resource::feed(rss(
        title,
        &[(
            guid.as_str(),
            link.as_str(),
            "Steel tariff talks collapse in Geneva",
            TEXT,
            date,
        )],
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_whose_id_and_link_change_at_every_poll_is_stored_once_per_source() {
    let server = FeedServer::start().await;
    server.put("session.xml", session_feed(1));
    server.put(
        "wire.xml",
        Resource::feed(rss(
            "Wire",
            &[(
                "wire-1",
                "http://wire.example/steel-talks",
                "Steel tariff talks collapse in Geneva",
                TEXT,
                "Fri, 27 Nov 2026 10:00:00 GMT",
            )],
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Session", server.url("session.xml"))], "");
    let config = Config::load(&path).unwrap();
    let first = fetch_pass(&config).await;
    assert_eq!(first[0].new_entries, 1, "{first:?}");

    for n in 2..=4 {
        server.put("session.xml", session_feed(n));
        let again = fetch_pass(&config).await;
        assert_eq!(
            (again[0].outcome.as_str(), again[0].new_entries),
            ("ok", 0),
            "poll {n}: the same item under a new id is no new entry: {again:?}"
        );
    }
    let db = dir.path().join("tradefeed.db");
    let rows: Vec<(i64, i64)> = row_pairs(
        &db,
        "SELECT count(*), count(DISTINCT story_id) FROM entries",
    );
    assert_eq!(rows, vec![(1, 1)], "one entry in one story");

    // The same words published again under another date are an entry of their own (a
    // recurring notice), and, two weeks apart (outside the 7-day cluster window), a story of
    // their own too.
    server.put(
        "session.xml",
        dated_session_feed(5, "Fri, 13 Nov 2026 10:00:00 GMT"),
    );
    let again = fetch_pass(&config).await;
    assert_eq!(again[0].new_entries, 1, "{again:?}");
    let rows: Vec<(i64, i64)> = row_pairs(
        &db,
        "SELECT count(*), count(DISTINCT story_id) FROM entries",
    );
    assert_eq!(rows, vec![(2, 2)]);
    server.put("session.xml", session_feed(6));

    // Another outlet running the same text is still an appearance of its own.
    let path = write_config(
        dir.path(),
        &[
            ("Session", server.url("session.xml")),
            ("Wire", server.url("wire.xml")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    let reports = fetch_pass(&config).await;
    let wire = reports.iter().find(|r| r.source == "Wire").unwrap();
    assert_eq!(wire.new_entries, 1, "{reports:?}");
    let rows: Vec<(String, i64)> = row_pairs(
        &db,
        "SELECT s.name, count(*) FROM entries e JOIN sources s ON s.id = e.source_id
         GROUP BY s.name ORDER BY s.name",
    );
    assert_eq!(rows, vec![("Session".into(), 2), ("Wire".into(), 1)]);
    let stories: Vec<(i64, i64)> = row_pairs(
        &db,
        "SELECT count(*), count(DISTINCT story_id) FROM entries
          WHERE published = (SELECT max(published) FROM entries)",
    );
    assert_eq!(
        stories,
        vec![(2, 1)],
        "both outlets' copies of the 27 November item are one story"
    );

    // Served: the story lists each outlet once.
    let (base, cancel, handle) = common::start_daemon(config).await;
    let (status, body) = common::get_text(&format!("{base}/feeds/all.json")).await;
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let sources: Vec<&str> = json["items"][0]["_tradefeed"]["appearances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources.len(), 2, "{sources:?}");
    assert!(
        sources.contains(&"Session") && sources.contains(&"Wire"),
        "{sources:?}"
    );
    common::stop_daemon(cancel, handle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undated_item_whose_id_changes_at_every_poll_is_stored_once() {
    let server = FeedServer::start().await;
    server.put("undated.xml", dated_session_feed(1, ""));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Undated", server.url("undated.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    for n in 2..=3 {
        server.put("undated.xml", dated_session_feed(n, ""));
        let again = fetch_pass(&config).await;
        assert_eq!(again[0].new_entries, 0, "poll {n}: {again:?}");
    }
    let db = dir.path().join("tradefeed.db");
    let rows: Vec<(i64, i64)> = row_pairs(
        &db,
        "SELECT count(*), count(DISTINCT story_id) FROM entries",
    );
    assert_eq!(rows, vec![(1, 1)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_tracking_parameters_change_at_every_poll_is_no_edit() {
    let server = FeedServer::start().await;
    let feed = |campaign: &str, path: &str| {
        let link = format!(
            "https://news.example/{path}?id=7&amp;utm_source=rss&amp;utm_campaign={campaign}"
        );
        Resource::feed(rss(
            "Tracked",
            &[(
                "tracked-1",
                link.as_str(),
                "Steel tariff talks collapse in Geneva",
                TEXT,
                "Fri, 27 Nov 2026 10:00:00 GMT",
            )],
        ))
    };
    server.put("tracked.xml", feed("c1", "steel"));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Tracked", server.url("tracked.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let db = dir.path().join("tradefeed.db");
    let before: Vec<(i64, i64)> = row_pairs(&db, "SELECT updated, last_changed FROM entries");
    let story_before: Vec<(String, i64)> = row_pairs(&db, "SELECT link, updated FROM stories");
    let hash = |db: &std::path::Path| -> String {
        row_pairs::<String, i64>(db, "SELECT content_hash, 0 FROM entries")
            .remove(0)
            .0
    };
    let mut hashes = vec![hash(&db)];

    for n in [2, 3, 1] {
        server.put("tracked.xml", feed(&format!("c{n}"), "steel"));
        let again = fetch_pass(&config).await;
        assert_eq!(
            (again[0].new_entries, again[0].updated_entries),
            (0, 0),
            "poll {n}: only the tracking parameters changed: {again:?}"
        );
        // The row takes the link as listed and the hash over it, so the next poll listing the
        // same link finds its hash stored and skips the item before any work.
        let links: Vec<(String, i64)> = row_pairs(&db, "SELECT link, count(*) FROM entries");
        assert_eq!(
            links,
            vec![(
                format!("https://news.example/steel?id=7&utm_source=rss&utm_campaign=c{n}"),
                1
            )],
            "poll {n}: the stored link is renewed"
        );
        hashes.push(hash(&db));
    }
    assert_ne!(hashes[1], hashes[0], "the hash is renewed with the link");
    assert_eq!(
        hashes[3], hashes[0],
        "the first link again has its first hash"
    );
    let after: Vec<(i64, i64)> = row_pairs(&db, "SELECT updated, last_changed FROM entries");
    assert_eq!(after, before, "the entry was not taken for edited");
    let story_after: Vec<(String, i64)> = row_pairs(&db, "SELECT link, updated FROM stories");
    assert_eq!(
        story_after, story_before,
        "what the story shows did not move"
    );

    // A link that leads elsewhere is an edit.
    server.put("tracked.xml", feed("c4", "steel-updated"));
    let again = fetch_pass(&config).await;
    assert_eq!(again[0].updated_entries, 1, "{again:?}");
}

/// A link whose campaign changes at every poll together with what the content hash does not
/// read (a tracking pixel's token, a nonce class, white space) is no edit either: the store
/// compared the HTML byte for byte to tell a tracking-only change, so such an item was served
/// as updated at every poll (review, session 28). Each change alone was no edit already.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_campaign_changes_with_what_no_reader_sees_is_no_edit() {
    let server = FeedServer::start().await;
    let feed = |n: usize, body: &str| {
        let link = format!("https://news.example/steel?id=7&amp;utm_campaign=c{n}");
        Resource::feed(rss(
            "Stamped",
            &[(
                "stamped-1",
                link.as_str(),
                "Steel tariff talks collapse in Geneva",
                body,
                "Fri, 27 Nov 2026 10:00:00 GMT",
            )],
        ))
    };
    let pixel = |n: usize| {
        format!(
            "&lt;p&gt;{TEXT}&lt;/p&gt;&lt;img src=\"http://px.example/t.gif?r={n}\" \
             width=\"1\" height=\"1\"&gt;"
        )
    };
    let nonce = |n: usize| format!("&lt;p class=\"n{n}\"&gt;{TEXT}&lt;/p&gt;");
    let spaces = |n: usize| format!("&lt;p&gt;{TEXT}&lt;/p&gt;{}", " ".repeat(n));
    let cases: [(&str, &dyn Fn(usize) -> String); 3] = [
        ("pixel", &pixel),
        ("nonce", &nonce),
        ("white space", &spaces),
    ];
    for (what, body) in cases {
        server.put("stamped.xml", feed(1, &body(1)));
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), &[("Stamped", server.url("stamped.xml"))], "");
        let config = Config::load(&path).unwrap();
        assert_eq!(fetch_pass(&config).await[0].new_entries, 1, "{what}");
        let db = dir.path().join("tradefeed.db");
        let before: Vec<(i64, i64)> = row_pairs(&db, "SELECT updated, last_changed FROM entries");
        for n in 2..=4 {
            server.put("stamped.xml", feed(n, &body(n)));
            let again = fetch_pass(&config).await;
            assert_eq!(
                (again[0].new_entries, again[0].updated_entries),
                (0, 0),
                "{what}, poll {n}: {again:?}"
            );
        }
        let after: Vec<(i64, i64)> = row_pairs(&db, "SELECT updated, last_changed FROM entries");
        assert_eq!(after, before, "{what}: the entry was not taken for edited");
        // What a reader sees changed: an edit.
        server.put(
            "stamped.xml",
            feed(5, &body(5).replace("Geneva", "Geneva and Brussels")),
        );
        assert_eq!(fetch_pass(&config).await[0].updated_entries, 1, "{what}");
    }
}

/// Items without ids are known by their link; a live blog's posts link to one page with a
/// fragment each (`#post-2`), which the canonical URL leaves out: each new post overwrote
/// the last, so every post but the newest was lost (review, session 28). The fragment is now
/// part of the identity when it names a place (not a `#xtor=…` statistics stamp, which
/// stays out), and a database from the release before keeps its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_blog_posts_without_ids_are_items_of_their_own_by_their_anchor() {
    let server = FeedServer::start().await;
    let post = |n: usize| {
        (
            format!("https://news.example/live#post-{n}"),
            format!("Tariff talks, update {n}: ministers meet again in round {n}"),
            format!("Update {n}. {TEXT} Round {n} of the talks begins."),
        )
    };
    // Post 1's text with `edit` added.
    let dated_feed = |newest: usize, date: &str, edit: &str| {
        let mut posts: Vec<_> = (1..=newest).rev().map(post).collect();
        posts.last_mut().unwrap().2.push_str(edit);
        let stamped = "https://news.example/weekly#xtor=RSS-3";
        let mut items: Vec<(&str, &str, &str, &str, &str)> = posts
            .iter()
            .map(|(link, title, text)| ("", link.as_str(), title.as_str(), text.as_str(), date))
            .collect();
        items.push((
            "",
            stamped,
            "Weekly trade figures",
            "Exports rose 2% in the week to Friday.",
            "Fri, 27 Nov 2026 09:00:00 GMT",
        ));
        Resource::feed(rss("Live", &items))
    };
    let feed = |newest: usize| dated_feed(newest, "Fri, 27 Nov 2026 10:00:00 GMT", "");
    server.put("live.xml", feed(1));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Live", server.url("live.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 2);
    for n in 2..=3 {
        server.put("live.xml", feed(n));
        let again = fetch_pass(&config).await;
        assert_eq!(
            (again[0].new_entries, again[0].updated_entries),
            (1, 0),
            "poll {n}: the new post alone is new: {again:?}"
        );
    }
    let db = dir.path().join("tradefeed.db");
    let rows: Vec<(String, String)> =
        row_pairs(&db, "SELECT identity, link FROM entries ORDER BY identity");
    assert_eq!(
        rows.iter()
            .map(|(identity, _)| identity.as_str())
            .collect::<Vec<_>>(),
        [
            "url:https://news.example/live#post-1",
            "url:https://news.example/live#post-2",
            "url:https://news.example/live#post-3",
            "url:https://news.example/weekly",
        ]
    );
    let stories: Vec<(i64, i64)> = row_pairs(&db, "SELECT count(*), 0 FROM stories");
    assert_eq!(stories[0].0, 4, "each post a story of its own");

    // The release before stored one row for such posts, without its anchor (the newest post
    // had overwritten the others; its schema had no later migration's column either);
    // migration 13 gives it its anchor, so the next poll finds
    // that post stored (here edited since) and takes the others in as new. Unedited, it
    // would also be found as an item moved to a new id (the same words).
    let feed = |newest: usize| dated_feed(newest, "", "");
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Live", server.url("live.xml"))], "");
    let config = Config::load(&path).unwrap();
    server.put("live.xml", feed(1));
    assert_eq!(fetch_pass(&config).await[0].new_entries, 2);
    let db = dir.path().join("tradefeed.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "UPDATE entries SET identity = substr(identity, 1, instr(identity, '#') - 1)
          WHERE identity LIKE 'url:%#%';
         ALTER TABLE entries DROP COLUMN title_only;
         PRAGMA user_version = 12;",
    )
    .unwrap();
    drop(conn);
    let stored: Vec<(i64, String)> = row_pairs(&db, "SELECT id, link FROM entries ORDER BY id");
    server.put(
        "live.xml",
        dated_feed(3, "", " Corrected: round 1 began on Thursday."),
    );
    let again = fetch_pass(&config).await;
    assert_eq!(
        (again[0].new_entries, again[0].updated_entries),
        (2, 1),
        "after the upgrade, posts 2 and 3 new, post 1 edited: {again:?}"
    );
    let kept: Vec<(i64, String)> = row_pairs(
        &db,
        "SELECT id, identity FROM entries WHERE link LIKE '%#post-1' OR link LIKE '%weekly%' ORDER BY id",
    );
    assert_eq!(
        kept,
        vec![
            (
                stored[0].0,
                "url:https://news.example/live#post-1".to_string()
            ),
            (stored[1].0, "url:https://news.example/weekly".to_string()),
        ],
        "the stored rows kept, post 1's with its anchor"
    );
}

/// What a canonical URL leaves out besides tracking parameters still makes an edit: a live
/// blog that moves its link from `#update-3` to `#update-4` points readers somewhere else, and
/// so may a reordered query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_whose_fragment_or_parameter_order_changes_is_an_edit() {
    let server = FeedServer::start().await;
    let feed = |link: &str| {
        Resource::feed(rss(
            "Live",
            &[(
                "live-1",
                link,
                "Steel tariff talks collapse in Geneva",
                TEXT,
                "Fri, 27 Nov 2026 10:00:00 GMT",
            )],
        ))
    };
    server.put(
        "live.xml",
        feed("https://news.example/live?a=1&amp;b=2&amp;utm_source=rss#update-3"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Live", server.url("live.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);

    for (n, link) in [
        "https://news.example/live?a=1&amp;b=2&amp;utm_source=rss#update-4",
        "https://news.example/live?b=2&amp;a=1&amp;utm_source=rss#update-4",
    ]
    .into_iter()
    .enumerate()
    {
        server.put("live.xml", feed(link));
        let again = fetch_pass(&config).await;
        assert_eq!(
            (again[0].new_entries, again[0].updated_entries),
            (0, 1),
            "change {n} of the link is an edit: {again:?}"
        );
    }
    let db = dir.path().join("tradefeed.db");
    let links: Vec<(String, i64)> = row_pairs(&db, "SELECT link, count(*) FROM entries");
    assert_eq!(
        links,
        vec![(
            "https://news.example/live?b=2&a=1&utm_source=rss#update-4".to_string(),
            1
        )]
    );
}

/// The identity and link of each stored entry, in id order.
fn identities(db: &std::path::Path) -> Vec<(String, String)> {
    row_pairs(db, "SELECT identity, link FROM entries ORDER BY id")
}

/// An item found under a new id (its old one no longer listed) is re-keyed: its row takes
/// the new identity and link, so the next poll that lists the same id finds it stored and
/// takes it no further than the hash check (before, the new id was never stored and the item
/// went through the whole pipeline at every poll).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_under_a_new_id_is_re_keyed_and_the_next_poll_listing_that_id_skips_it() {
    let server = FeedServer::start().await;
    server.put("session.xml", session_feed(1));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Session", server.url("session.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let db = dir.path().join("tradefeed.db");
    let before: Vec<(i64, i64)> = row_pairs(&db, "SELECT updated, last_changed FROM entries");
    let hash = |db: &std::path::Path| -> String {
        row_pairs::<String, i64>(db, "SELECT content_hash, 0 FROM entries")
            .remove(0)
            .0
    };
    let mut last_hash = hash(&db);

    for n in 2..=3 {
        server.put("session.xml", session_feed(n));
        let moved = fetch_pass(&config).await;
        assert_eq!(
            (moved[0].new_entries, moved[0].updated_entries),
            (0, 0),
            "poll {n}: {moved:?}"
        );
        let rows = identities(&db);
        assert_eq!(rows.len(), 1, "poll {n}: {rows:?}");
        assert!(
            rows[0].0.ends_with(&format!("urn:uuid:{n}-77")),
            "poll {n}: the row takes the new id: {rows:?}"
        );
        assert_eq!(
            rows[0].1,
            format!("http://example.org/story/77?session={n}"),
            "poll {n}: and the new link"
        );
        // The hash stays that of what the row holds (only the words were matched); the
        // story, which it represents, takes the link its appearance now has, so the feeds do
        // not list the source beside its own story.
        assert_eq!(hash(&db), last_hash, "poll {n}: the hash is the row's");
        let represented: Vec<(String, String)> = row_pairs(
            &db,
            "SELECT s.link, e.link FROM stories s JOIN entries e ON e.id = s.representative",
        );
        assert_eq!(represented[0].0, represented[0].1, "poll {n}");

        // The same id again, in a feed that changed elsewhere (a 304 would say nothing):
        // found stored, compared, and only its link differs from what the hash was made
        // over: the hash is renewed, nothing is taken for an edit.
        let date = "Fri, 27 Nov 2026 10:00:00 GMT";
        server.put(
            "session.xml",
            titled_session_feed(n, date, &format!("Session feed, poll {n} again")),
        );
        let again = fetch_pass(&config).await;
        assert_eq!(
            (
                again[0].new_entries,
                again[0].updated_entries,
                again[0].unscored_copies
            ),
            (0, 0, 0),
            "poll {n} again: {again:?}"
        );
        let renewed = hash(&db);
        assert_ne!(renewed, last_hash, "poll {n}: the hash over the new link");
        last_hash = renewed;
        // And once more: the hash matches, the item goes no further than ingest's lookup.
        server.put(
            "session.xml",
            titled_session_feed(n, date, &format!("Session feed, poll {n} once more")),
        );
        let once_more = fetch_pass(&config).await;
        assert_eq!(
            (once_more[0].new_entries, once_more[0].updated_entries),
            (0, 0),
            "poll {n} once more: {once_more:?}"
        );
        assert_eq!(hash(&db), last_hash);
    }
    let after: Vec<(i64, i64)> = row_pairs(&db, "SELECT updated, last_changed FROM entries");
    assert_eq!(after, before, "a re-keyed entry is not taken for edited");
    let stories: Vec<(i64, i64)> = row_pairs(&db, "SELECT count(*), 0 FROM stories");
    assert_eq!(stories, vec![(1, 0)]);
}

/// Two different items (their own guids and links) that share an undated title and text,
/// such as two notices of a public hearing, are two appearances, whether listed together from
/// the start or the second one later while the first is still listed. Should the feed then
/// renumber both, each row is re-keyed to its item's new id, and nothing is added.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_items_with_the_same_undated_title_and_text_are_each_stored() {
    let server = FeedServer::start().await;
    let notice = |guid: &str, link: &str| {
        (
            guid.to_string(),
            link.to_string(),
            "Notice of public hearing on Section 301 tariffs".to_string(),
            "The Office of the United States Trade Representative will hold a public hearing \
             on proposed Section 301 tariff actions."
                .to_string(),
            String::new(),
        )
    };
    let feed = |items: &[(String, String, String, String, String)]| {
        let items: Vec<(&str, &str, &str, &str, &str)> = items
            .iter()
            .map(|(g, l, t, d, p)| (g.as_str(), l.as_str(), t.as_str(), d.as_str(), p.as_str()))
            .collect();
        Resource::feed(rss("Notices", &items))
    };
    let a = notice("notice-a", "https://ustr.example/notices/a");
    let b = notice("notice-b", "https://ustr.example/notices/b");
    let c = notice("notice-c", "https://ustr.example/notices/c");

    // Listed together from the first poll.
    server.put("notices.xml", feed(&[a.clone(), b.clone()]));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Notices", server.url("notices.xml"))], "");
    let config = Config::load(&path).unwrap();
    let first = fetch_pass(&config).await;
    assert_eq!(first[0].new_entries, 2, "{first:?}");
    let again = fetch_pass(&config).await;
    assert_eq!(
        (again[0].new_entries, again[0].updated_entries),
        (0, 0),
        "{again:?}"
    );

    // A third one listed beside them later.
    server.put("notices.xml", feed(&[a.clone(), b.clone(), c.clone()]));
    let later = fetch_pass(&config).await;
    assert_eq!(later[0].new_entries, 1, "{later:?}");
    let db = dir.path().join("tradefeed.db");
    let links: Vec<String> = identities(&db).into_iter().map(|(_, l)| l).collect();
    assert_eq!(
        links,
        [a.1.as_str(), b.1.as_str(), c.1.as_str()],
        "each notice keeps its own link"
    );
    let stories: Vec<(i64, i64)> = row_pairs(&db, "SELECT count(*), 0 FROM stories");
    assert_eq!(stories, vec![(1, 0)], "the same words are one story");

    // The CMS renumbers every guid once (links unchanged) and lists them the other way
    // round: each row takes its own item's new id.
    let renumbered: Vec<_> = [&c, &b, &a]
        .iter()
        .map(|n| {
            (
                format!("new-{}", n.0),
                n.1.clone(),
                n.2.clone(),
                n.3.clone(),
                n.4.clone(),
            )
        })
        .collect();
    server.put("notices.xml", feed(&renumbered));
    let moved = fetch_pass(&config).await;
    assert_eq!(
        (moved[0].new_entries, moved[0].updated_entries),
        (0, 0),
        "{moved:?}"
    );
    let rows = identities(&db);
    assert_eq!(rows.len(), 3, "{rows:?}");
    for ((identity, link), notice) in rows.iter().zip([&a, &b, &c]) {
        assert!(
            identity.ends_with(&format!("new-{}", notice.0)) && *link == notice.1,
            "each row keeps its link and takes its item's new id: {rows:?}"
        );
    }
    let again = fetch_pass(&config).await;
    assert_eq!(
        (
            again[0].new_entries,
            again[0].updated_entries,
            again[0].unscored_copies
        ),
        (0, 0, 0),
        "{again:?}"
    );
}

/// A sibling with the same words that the per-poll cap passes over is still listed: a new one
/// with those words is stored beside it, not taken for it moved to a new id (its row would
/// have been re-keyed, and its own id lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sibling_passed_over_by_the_cap_still_counts_as_listed() {
    let server = FeedServer::start().await;
    const DATE: &str = "Fri, 27 Nov 2026 10:00:00 GMT";
    let notice = |id: &'static str| {
        (
            id,
            match id {
                "a" => "https://ustr.example/notices/a",
                "b" => "https://ustr.example/notices/b",
                _ => "https://ustr.example/notices/c",
            },
            "Notice of public hearing on Section 301 tariffs",
            "The Office of the United States Trade Representative will hold a public hearing \
             on proposed Section 301 tariff actions.",
            DATE,
        )
    };
    server.put(
        "notices.xml",
        Resource::feed(rss("Notices", &[notice("a"), notice("b")])),
    );
    let dir = tempfile::tempdir().unwrap();
    let sources = [("Notices", server.url("notices.xml"))];
    let config = Config::load(&write_config(dir.path(), &sources, "")).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 2);

    // A third with the same words and date, listed first: with a cap of one item a poll, the
    // first two are passed over (equal dates keep the feed's order), yet still listed.
    server.put(
        "notices.xml",
        Resource::feed(rss("Notices", &[notice("c"), notice("a"), notice("b")])),
    );
    let capped = write_config(dir.path(), &sources, "max_items_per_poll = 1");
    let config = Config::load(&capped).unwrap();
    let later = fetch_pass(&config).await;
    assert_eq!(
        (later[0].new_entries, later[0].skipped),
        (1, 2),
        "{later:?}"
    );
    let db = dir.path().join("tradefeed.db");
    let rows = identities(&db);
    let ids: Vec<&str> = rows
        .iter()
        .map(|(identity, _)| identity.rsplit(':').next().unwrap_or(identity))
        .collect();
    assert_eq!(ids, ["a", "b", "c"], "each keeps its own row: {rows:?}");
}

/// In a source where two items once shared a guid (a CMS giving several items one id), their
/// rows are stored under `shared:` identities, and the read lists them in that form: a sibling
/// with the same words listed beside them, in full or passed over by the per-poll cap, is
/// still listed (a new item with those words is stored beside it), while one renumbered to a
/// guid of its own is found under its new id (its row re-keyed, nothing added).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_source_with_shared_guids_re_keying_tells_listed_rows_from_moved_ones() {
    let server = FeedServer::start().await;
    const DATE: &str = "Fri, 27 Nov 2026 10:00:00 GMT";
    const NOTICE: &str = "Notice of public hearing on Section 301 tariffs";
    const NOTICE_TEXT: &str = "The Office of the United States Trade Representative will hold \
                               a public hearing on proposed Section 301 tariff actions.";
    // The item sharing the notice's guid, with words of its own.
    let other = (
        "shared-guid",
        "https://ustr.example/news/quota",
        "Tariff-rate quota for raw cane sugar allocated",
        "The Trade Representative allocated the fiscal year tariff-rate quota for raw cane \
         sugar among supplying countries.",
        DATE,
    );
    let notice = |guid: &'static str, link: &'static str| (guid, link, NOTICE, NOTICE_TEXT, DATE);
    let feed = |items: &[(&str, &str, &str, &str, &str)]| Resource::feed(rss("Notices", items));
    let a = notice("shared-guid", "https://ustr.example/notices/a");
    server.put("notices.xml", feed(&[other, a]));
    let dir = tempfile::tempdir().unwrap();
    let sources = [("Notices", server.url("notices.xml"))];
    let config = Config::load(&write_config(dir.path(), &sources, "")).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 2);
    let db = dir.path().join("tradefeed.db");
    let rows = identities(&db);
    assert!(
        rows.iter()
            .all(|(identity, _)| identity.starts_with("shared:")),
        "both items are stored under their `shared:` identities: {rows:?}"
    );
    let notice_row = rows[1].clone();

    // A sibling with the notice's words under a guid of its own, listed beside it: stored.
    let b = notice("notice-b", "https://ustr.example/notices/b");
    server.put("notices.xml", feed(&[b, other, a]));
    let beside = fetch_pass(&config).await;
    assert_eq!(beside[0].new_entries, 1, "{beside:?}");

    // Another, listed first, with a cap of one item a poll: the others are passed over
    // (equal dates keep the feed's order), yet still listed, the two sharing the guid in their
    // `shared:` form, so the notice's row is not taken for this item moved to a new id.
    let c = notice("notice-c", "https://ustr.example/notices/c");
    server.put("notices.xml", feed(&[c, other, a, b]));
    let capped = Config::load(&write_config(
        dir.path(),
        &sources,
        "max_items_per_poll = 1",
    ))
    .unwrap();
    let later = fetch_pass(&capped).await;
    assert_eq!(
        (later[0].new_entries, later[0].skipped),
        (1, 3),
        "{later:?}"
    );
    let rows = identities(&db);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(
        rows[1], notice_row,
        "the notice keeps its own row: {rows:?}"
    );
    assert!(
        rows[2].0.ends_with("notice-b") && rows[3].0.ends_with("notice-c"),
        "each sibling has its own row: {rows:?}"
    );

    // The CMS gives the notice a guid of its own (its link unchanged); the other item has the
    // old guid to itself and keeps its row. The notice's `shared:` identity is no longer
    // listed: its row is re-keyed, nothing is added.
    let a_renumbered = notice("notice-a", "https://ustr.example/notices/a");
    server.put("notices.xml", feed(&[other, a_renumbered, b, c]));
    let moved = fetch_pass(&config).await;
    assert_eq!(
        (moved[0].new_entries, moved[0].updated_entries),
        (0, 0),
        "{moved:?}"
    );
    let rows = identities(&db);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert!(rows[0].0.starts_with("shared:"), "{rows:?}");
    assert!(
        rows[1].0.ends_with("notice-a") && rows[1].1 == notice_row.1,
        "the notice's row takes its new id: {rows:?}"
    );
    let again = fetch_pass(&config).await;
    assert_eq!(
        (
            again[0].new_entries,
            again[0].updated_entries,
            again[0].unscored_copies
        ),
        (0, 0, 0),
        "{again:?}"
    );
}

/// A feed behind two load-balanced backends that write different guids for one item (its
/// link the same) lists it under one guid, then the other, at every poll. The row moves to
/// the guid listed (so the next poll listing it skips the item), but nothing served changes:
/// the feeds' version stays (no reader downloads them again) and the story is not rewritten;
/// the row's identity is the one write. A new link is served, and bumps the version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_whose_guid_alternates_between_two_backends_changes_no_feed() {
    const LINK: &str = "https://news.example/steel-77";
    let server = FeedServer::start().await;
    let backend = |n: usize, link: &str| {
        let guid = format!("backend-{n}/steel-77");
        Resource::feed(rss(
            "Balanced",
            &[(
                guid.as_str(),
                link,
                "Steel tariff talks collapse in Geneva",
                TEXT,
                "Fri, 27 Nov 2026 10:00:00 GMT",
            )],
        ))
    };
    server.put("balanced.xml", backend(1, LINK));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Balanced", server.url("balanced.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let db = dir.path().join("tradefeed.db");
    // Every update of an entry or a story row, counted by the database itself.
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "CREATE TABLE test_writes (row TEXT NOT NULL);
             CREATE TRIGGER test_entry_writes AFTER UPDATE ON entries
                 BEGIN INSERT INTO test_writes VALUES ('entry'); END;
             CREATE TRIGGER test_story_writes AFTER UPDATE ON stories
                 BEGIN INSERT INTO test_writes VALUES ('story'); END;",
        )
        .unwrap();
    let writes = |db: &std::path::Path| -> Vec<(String, i64)> {
        row_pairs(
            db,
            "SELECT row, count(*) FROM test_writes GROUP BY row ORDER BY row",
        )
    };

    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    // The search index catches up first: indexing the story stored above bumps the version.
    pipeline
        .store
        .stories(tradefeed::store::StoryQuery {
            topic: None,
            source: None,
            search: Some("steel".into()),
            before: None,
            limit: 10,
        })
        .await
        .unwrap();
    let poll = |n: usize| {
        let (pipeline, config) = (&pipeline, &config);
        async move {
            let reports = tradefeed::app::fetch_once(pipeline, config.sources.clone(), 1).await;
            match reports.into_iter().next() {
                Some(tradefeed::app::FetchPassResult::Polled(report)) => report,
                _ => panic!("poll {n}: the source was not polled"),
            }
        }
    };
    let version = pipeline.store.data_version();
    for n in 2..=7 {
        let answering = 2 - n % 2;
        server.put("balanced.xml", backend(answering, LINK));
        let report = poll(n).await;
        assert_eq!(
            (
                report.outcome.as_str(),
                report.new_entries,
                report.updated_entries
            ),
            ("ok", 0, 0),
            "poll {n}: {report:?}"
        );
        let rows = identities(&db);
        assert_eq!(rows.len(), 1, "poll {n}: {rows:?}");
        assert!(
            rows[0]
                .0
                .ends_with(&format!("backend-{answering}/steel-77"))
                && rows[0].1 == LINK,
            "poll {n}: the row takes the guid listed: {rows:?}"
        );
    }
    assert_eq!(
        pipeline.store.data_version(),
        version,
        "six polls, each moving the row between the two guids, changed nothing served"
    );
    assert_eq!(
        writes(&db),
        vec![("entry".to_string(), 6)],
        "one write a poll, the row's identity; the story is not rewritten"
    );

    // A backend that also gives the item another link: served, so the feeds change.
    let moved = "https://news.example/2026/steel-77";
    server.put("balanced.xml", backend(3, moved));
    assert_eq!(poll(8).await.new_entries, 0);
    assert_eq!(pipeline.store.data_version(), version + 1);
    let story: Vec<(String, i64)> = row_pairs(&db, "SELECT link, count(*) FROM stories");
    assert_eq!(
        story,
        vec![(moved.to_string(), 1)],
        "the story takes the link"
    );
    pipeline.store.close().await;
}

/// A re-keyed entry's new canonical URL is a key of its story: another outlet's copy carrying
/// that URL (its own words, so only the URL can join it) joins the story, as it would have had
/// the item been stored under it. The old URL's key goes with it, so a session link that
/// changes at every poll keeps one key, unless another entry of the story still has that URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_keyed_entry_s_new_url_joins_other_outlets_copies_to_its_story() {
    const DATE: &str = "Fri, 27 Nov 2026 10:00:00 GMT";
    let server = FeedServer::start().await;
    // Each outlet in words of its own, and none like the session item's.
    let outlet = |name: &str, n: usize| {
        let link = format!("http://example.org/story/77?session={n}");
        let (title, text) = match name {
            "Wire" => (
                "No deal on steel as ministers leave Geneva",
                "Trade ministers went home without any agreement on duties for steel imports \
                 after a week of meetings.",
            ),
            _ => (
                "Metal levies unresolved after Swiss round",
                "Delegations ended the round with quotas and surcharges on metals still open; \
                 a further session is planned for January.",
            ),
        };
        Resource::feed(rss(
            name,
            &[(
                format!("{name}-77").as_str(),
                link.as_str(),
                title,
                text,
                DATE,
            )],
        ))
    };
    server.put("session.xml", session_feed(1));
    let dir = tempfile::tempdir().unwrap();
    let session = [("Session", server.url("session.xml"))];
    let config = Config::load(&write_config(dir.path(), &session, "")).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let db = dir.path().join("tradefeed.db");
    let key_count = |db: &std::path::Path| -> i64 {
        row_pairs::<i64, i64>(db, "SELECT count(*), 0 FROM story_keys")[0].0
    };
    let keys = key_count(&db);

    for n in 2..=4 {
        server.put("session.xml", session_feed(n));
        assert_eq!(fetch_pass(&config).await[0].new_entries, 0, "poll {n}");
        assert_eq!(
            key_count(&db),
            keys,
            "poll {n}: the new URL's key replaces the old"
        );
    }

    // Another outlet's copy, in words of its own, carrying the URL the entry was re-keyed to.
    server.put("wire.xml", outlet("Wire", 4));
    let both = [
        ("Session", server.url("session.xml")),
        ("Wire", server.url("wire.xml")),
    ];
    let config = Config::load(&write_config(dir.path(), &both, "")).unwrap();
    let reports = fetch_pass(&config).await;
    let wire = reports.iter().find(|r| r.source == "Wire").unwrap();
    assert_eq!((wire.new_entries, wire.new_stories), (1, 0), "{reports:?}");
    let joined: Vec<(String, i64)> = row_pairs(
        &db,
        "SELECT e.evidence, count(DISTINCT e.story_id) FROM entries e
          JOIN sources s ON s.id = e.source_id WHERE s.name = 'Wire'",
    );
    assert_eq!(joined, vec![("same canonical URL".to_string(), 1)]);
    let stories: Vec<(i64, i64)> = row_pairs(&db, "SELECT count(*), 0 FROM stories");
    assert_eq!(
        stories,
        vec![(1, 0)],
        "the copy joined the re-keyed entry's story"
    );

    // Re-keyed again: the URL the wire copy still has keeps its key, and a third outlet
    // carrying it joins too.
    server.put("session.xml", session_feed(5));
    let reports = fetch_pass(&config).await;
    assert!(reports.iter().all(|r| r.new_entries == 0), "{reports:?}");
    server.put("press.xml", outlet("Press", 4));
    let all = [
        ("Session", server.url("session.xml")),
        ("Wire", server.url("wire.xml")),
        ("Press", server.url("press.xml")),
    ];
    let config = Config::load(&write_config(dir.path(), &all, "")).unwrap();
    let reports = fetch_pass(&config).await;
    let press = reports.iter().find(|r| r.source == "Press").unwrap();
    assert_eq!(
        (press.new_entries, press.new_stories),
        (1, 0),
        "{reports:?}"
    );
    let stories: Vec<(i64, i64)> = row_pairs(&db, "SELECT count(*), 0 FROM stories");
    assert_eq!(stories, vec![(1, 0)], "{reports:?}");
    let rows = identities(&db);
    assert_eq!(
        rows[0].1, "http://example.org/story/77?session=5",
        "the session entry was re-keyed: {rows:?}"
    );
}

/// Issues of a weekly notice, the same words a week apart to the second (dated without a
/// time, as many agencies date them), are two stories: copies join only less than the
/// cluster window (7 days) apart. Another outlet's copy of the second issue joins the second,
/// whose keys it took over from the first. A notice long enough for the near-duplicate index
/// and one too short for it (only its exact-duplicate key can join a copy to it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_of_a_weekly_notice_a_week_apart_are_stories_of_their_own() {
    weekly_issues(
        "The International Trade Commission will hold a public hearing on the safeguard \
         investigation of imported crystalline silicon photovoltaic cells. Requests to appear \
         must be filed by the deadline stated in the notice, with the hearing statement and a \
         summary of the testimony.",
    )
    .await;
    weekly_issues("Hearing on solar cells set.").await;
}

async fn weekly_issues(notice: &str) {
    let title = "Notice of public hearing: safeguard investigation";
    let issue = |n: u32, date: &str| {
        (
            format!("urn:notice:{n}"),
            format!("http://agency.example/notices/{n}"),
            date.to_string(),
        )
    };
    let first = issue(1, "Mon, 16 Nov 2026 00:00:00 GMT");
    let second = issue(2, "Mon, 23 Nov 2026 00:00:00 GMT");
    let feed = |issues: &[&(String, String, String)]| {
        let items: Vec<(&str, &str, &str, &str, &str)> = issues
            .iter()
            .map(|(g, l, d)| (g.as_str(), l.as_str(), title, notice, d.as_str()))
            .collect();
        Resource::feed(rss("Agency notices", &items))
    };
    let server = FeedServer::start().await;
    server.put("agency.xml", feed(&[&first]));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let path = write_config(dir.path(), &[("Agency", server.url("agency.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    server.put("agency.xml", feed(&[&second, &first]));
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let rows: Vec<(i64, i64)> = row_pairs(
        &db,
        "SELECT count(*), count(DISTINCT story_id) FROM entries",
    );
    assert_eq!(rows, vec![(2, 2)], "a week apart: two stories ({notice})");

    // Another outlet runs the second issue an hour later: it joins the second.
    let wire = (
        "urn:wire:9".to_string(),
        "http://wire.example/9".to_string(),
        "Mon, 23 Nov 2026 01:00:00 GMT".to_string(),
    );
    let items = [(
        wire.0.as_str(),
        wire.1.as_str(),
        title,
        notice,
        wire.2.as_str(),
    )];
    server.put("wire.xml", Resource::feed(rss("Wire", &items)));
    let path = write_config(
        dir.path(),
        &[
            ("Agency", server.url("agency.xml")),
            ("Wire", server.url("wire.xml")),
        ],
        "",
    );
    let reports = fetch_pass(&Config::load(&path).unwrap()).await;
    assert!(reports.iter().all(|r| r.error.is_none()), "{reports:?}");
    let joined: Vec<(String, String)> = row_pairs(
        &db,
        "SELECT w.identity, a.identity FROM entries w JOIN entries a
             ON a.story_id = w.story_id AND a.id <> w.id",
    );
    assert_eq!(
        joined,
        vec![
            (
                "guid:urn:notice:2".to_string(),
                "guid:urn:wire:9".to_string()
            ),
            (
                "guid:urn:wire:9".to_string(),
                "guid:urn:notice:2".to_string()
            ),
        ],
        "the wire copy is in the second issue's story ({notice})"
    );
}
