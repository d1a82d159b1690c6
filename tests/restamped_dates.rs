//! Feeds whose CMS stamps every item's date with the time of the request: a date alone is no
//! edit, so such a feed's items are not taken for edited at every poll (and the served feeds
//! keep their ETag); an edit still stores the dates it comes with. Real feed server on
//! 127.0.0.1, real temp database, the daemon asked over HTTP.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use chrono::{DateTime, Utc};
use common::{FeedServer, Resource, fetch_pass, rss, write_config};
use tradefeed::config::Config;
use tradefeed::normalize::CONTENT_HASH_PREFIX;

/// What the stamping server serves: every item's date is a new one at every request.
struct Stamped {
    /// The body of the first item (the others keep theirs).
    text: String,
    /// Whether the link carries a campaign parameter stamped per request too.
    stamp_links: bool,
    /// Requests of the RSS feed, and of the Atom feed.
    requests: [i64; 2],
}

/// The time the server stamps on the `n`th response: a minute later at every request, so each
/// poll reads dates it never read before (a real CMS stamps the current time).
fn stamp(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_795_773_600 + n * 60, 0).unwrap()
}

/// An RSS feed (`/feed.xml`, every `<pubDate>` re-stamped) and an Atom feed (`/feed.atom`,
/// every `<published>` and `<updated>` re-stamped) on 127.0.0.1, each response a new body.
async fn start_stamping_server(state: Arc<Mutex<Stamped>>) -> String {
    fn next(state: &Mutex<Stamped>, feed: usize) -> (String, bool, DateTime<Utc>, i64) {
        let mut state = state.lock().unwrap();
        state.requests[feed] += 1;
        let n = state.requests[feed];
        (state.text.clone(), state.stamp_links, stamp(n), n)
    }
    async fn rss_feed(
        State(state): State<Arc<Mutex<Stamped>>>,
    ) -> ([(&'static str, &'static str); 1], String) {
        let (text, stamp_links, now, n) = next(&state, 0);
        let date = now.to_rfc2822();
        let link = |i: usize| {
            let campaign = if stamp_links {
                format!("?utm_campaign=feed-{n}")
            } else {
                String::new()
            };
            format!("https://news.example/r{i}{campaign}")
        };
        let (l1, l2) = (link(1), link(2));
        let items = [
            (
                "r1",
                l1.as_str(),
                "EU sets steel duties",
                text.as_str(),
                date.as_str(),
            ),
            (
                "r2",
                l2.as_str(),
                "Canada reviews aluminium quotas",
                "&lt;p&gt;Ottawa opened a review of aluminium import quotas.&lt;/p&gt;",
                date.as_str(),
            ),
        ];
        (
            [("content-type", "application/rss+xml")],
            rss("Stamped RSS", &items),
        )
    }
    async fn atom_feed(
        State(state): State<Arc<Mutex<Stamped>>>,
    ) -> ([(&'static str, &'static str); 1], String) {
        let (_, _, now, _) = next(&state, 1);
        let date = now.to_rfc3339();
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
             <feed xmlns=\"http://www.w3.org/2005/Atom\"><title>Stamped Atom</title>\
             <id>urn:stamped</id><updated>{date}</updated>\
             <entry><id>urn:stamped:a1</id><title>Japan and Mexico sign a trade deal</title>\
             <link href=\"https://wire.example/a1\"/><published>{date}</published>\
             <updated>{date}</updated>\
             <content type=\"html\">&lt;p&gt;The agreement cuts tariffs on cars.&lt;/p&gt;</content>\
             </entry></feed>"
        );
        ([("content-type", "application/atom+xml")], body)
    }
    let app = axum::Router::new()
        .route("/feed.xml", axum::routing::get(rss_feed))
        .route("/feed.atom", axum::routing::get(atom_feed))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// Every entry by identity: its content hash, published and updated dates, last change, and
/// its story's `updated`.
fn entries(db: &Path) -> Vec<(String, String, i64, i64, i64, i64)> {
    let db = rusqlite::Connection::open(db).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT e.identity, e.content_hash, e.published, e.updated, e.last_changed,
                    st.updated
               FROM entries e JOIN stories st ON st.id = e.story_id ORDER BY e.identity",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// The ETag and body of `/feeds/all.atom` as a daemon started on the database serves it (asked
/// under one `Host`, so that its self links do not change with the daemon's port).
async fn served_atom(config: &Config) -> (String, String) {
    let (base, cancel, handle) = common::start_daemon(config.clone()).await;
    let response = reqwest::Client::new()
        .get(format!("{base}/feeds/all.atom"))
        .header("host", "feeds.test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let body = response.text().await.unwrap();
    common::stop_daemon(cancel, handle).await;
    (etag, body)
}

const TEXT: &str = "&lt;p&gt;The EU set duties on steel.&lt;/p&gt;";

/// (items, new, updated) of each source's poll, in config order.
fn counts(reports: &[tradefeed::ingest::PollReport]) -> Vec<(usize, usize, usize)> {
    reports
        .iter()
        .map(|r| (r.items, r.new_entries, r.updated_entries))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_restamps_every_date_at_each_request_has_no_edits_and_keeps_its_etag() {
    let state = Arc::new(Mutex::new(Stamped {
        text: TEXT.to_owned(),
        stamp_links: false,
        requests: [0, 0],
    }));
    let base = start_stamping_server(Arc::clone(&state)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("RSS", format!("{base}/feed.xml")),
            ("Atom", format!("{base}/feed.atom")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    let db = dir.path().join("tradefeed.db");
    assert_eq!(counts(&fetch_pass(&config).await), [(2, 2, 0), (1, 1, 0)]);
    let first = entries(&db);
    assert_eq!(first.len(), 3);
    for (identity, hash, ..) in &first {
        assert!(hash.starts_with(CONTENT_HASH_PREFIX), "{identity}: {hash}");
    }
    let (etag, atom) = served_atom(&config).await;

    for poll in 2..=4 {
        let reports = fetch_pass(&config).await;
        assert_eq!(counts(&reports), [(2, 0, 0), (1, 0, 0)], "poll {poll}");
        // Not rewritten either: the dates stay the ones first read.
        assert_eq!(entries(&db), first, "poll {poll}");
        let (etag_now, atom_now) = served_atom(&config).await;
        assert_eq!((&etag_now, &atom_now), (&etag, &atom), "poll {poll}");
    }
    assert_eq!(
        state.lock().unwrap().requests,
        [4, 4],
        "every poll read new bodies"
    );

    // Other text, with the new date it comes with: an edit, stored with that date.
    state.lock().unwrap().text = "&lt;p&gt;The EU set higher duties on steel.&lt;/p&gt;".into();
    assert_eq!(counts(&fetch_pass(&config).await), [(2, 0, 1), (1, 0, 0)]);
    let edited = entries(&db);
    let stamped = stamp(state.lock().unwrap().requests[0]).timestamp();
    let r1 = edited.iter().find(|e| e.0 == "guid:r1").unwrap();
    let before = first.iter().find(|e| e.0 == "guid:r1").unwrap();
    assert_ne!(r1.1, before.1, "the hash moves");
    assert_eq!(
        (r1.2, r1.3),
        (stamped, stamped),
        "the dates read with the edit"
    );
    // The story's `updated` is the time of the edit (this poll's).
    assert!(r1.4 >= before.4 && r1.5 >= before.5, "{r1:?} {before:?}");
    // The other items are as they were.
    for (now, then) in edited.iter().zip(&first) {
        if now.0 != "guid:r1" {
            assert_eq!(now, then);
        }
    }
    let (etag_edited, atom_edited) = served_atom(&config).await;
    assert_ne!(etag_edited, etag, "an edit is news to a reader");
    assert!(atom_edited.contains("higher duties"), "{atom_edited}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dates_and_link_campaigns_stamped_at_each_request_are_no_edit() {
    let state = Arc::new(Mutex::new(Stamped {
        text: TEXT.to_owned(),
        stamp_links: true,
        requests: [0, 0],
    }));
    let base = start_stamping_server(Arc::clone(&state)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("RSS", format!("{base}/feed.xml"))], "");
    let config = Config::load(&path).unwrap();
    let db = dir.path().join("tradefeed.db");
    assert_eq!(counts(&fetch_pass(&config).await), [(2, 2, 0)]);
    let dates = |rows: &[(String, String, i64, i64, i64, i64)]| -> Vec<(i64, i64, i64, i64)> {
        rows.iter().map(|e| (e.2, e.3, e.4, e.5)).collect()
    };
    let first = dates(&entries(&db));
    let hashes = |rows: &[(String, String, i64, i64, i64, i64)]| -> Vec<String> {
        rows.iter().map(|e| e.1.clone()).collect()
    };
    let mut previous = hashes(&entries(&db));
    for poll in 2..=3 {
        assert_eq!(
            counts(&fetch_pass(&config).await),
            [(2, 0, 0)],
            "poll {poll}"
        );
        // The row takes the link and the hash over it (see `only_tracking_changed`), so the
        // next poll can skip it before any work; its dates, last change and story stay.
        let rows = entries(&db);
        assert_eq!(dates(&rows), first, "poll {poll}");
        let now = hashes(&rows);
        assert!(
            now.iter().zip(&previous).all(|(now, then)| now != then),
            "poll {poll}: each row took the hash over its new link: {now:?} {previous:?}"
        );
        previous = now;
    }
}

/// Two items as a feed that does not re-stamp its dates lists them: one with a link, one
/// without (for that one, nothing on the writer's side tells an unchanged row from an edit
/// once its hash differs: only the recognised earlier form does; see `only_tracking_changed`).
const DATED_ITEMS: [(&str, &str, &str, &str, &str); 2] = [
    (
        "d1",
        "http://a.example/d1",
        "WTO panel rules on steel tariffs",
        "&lt;p&gt;The panel found the duties inconsistent.&lt;/p&gt;",
        "Fri, 27 Nov 2026 10:00:00 GMT",
    ),
    (
        "n1",
        "",
        "Steel safeguard notice",
        "&lt;p&gt;The safeguard on steel imports is extended to 2027.&lt;/p&gt;",
        "Fri, 27 Nov 2026 11:00:00 GMT",
    ),
];

/// [`DATED_ITEMS`] as RSS, the link element left out where the link is empty, with `more`.
fn dated_feed(more: &[(&str, &str, &str, &str, &str)]) -> String {
    let items: Vec<_> = DATED_ITEMS.iter().chain(more).copied().collect();
    rss("A", &items).replace("<link></link>", "")
}

/// The hashes the releases before dates were left out (form `4:`, over the dates the feed
/// gave) wrote for [`DATED_ITEMS`], by identity: read from the database the binary built from
/// main at 57a61e7 (which holds a6d517c; the items have no pixel, so 7273dfa writes the same)
/// made when it polled a feed listing them.
const GIVEN_DATES_HASHES: [(&str, &str); 2] = [
    ("guid:d1", "4:24cecdccd880192bb8010a1114e5f166"),
    ("guid:n1", "4:fd4d9c7e4c9c53f3387815a1f2481dfa"),
];

#[tokio::test]
async fn the_hash_the_release_before_wrote_is_renewed_not_taken_for_an_edit() {
    let server = FeedServer::start().await;
    server.put("a.xml", Resource::feed(dated_feed(&[])));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 2);
    let db_path = dir.path().join("tradefeed.db");
    let current = entries(&db_path);
    for (identity, hash, ..) in &current {
        assert!(hash.starts_with(CONTENT_HASH_PREFIX), "{identity}: {hash}");
    }
    // The rows as that release left them, changed an hour ago.
    let db = rusqlite::Connection::open(&db_path).unwrap();
    for (identity, hash) in GIVEN_DATES_HASHES {
        let changed = db
            .execute(
                "UPDATE entries SET content_hash = ?2, last_changed = last_changed - 3600
                  WHERE identity = ?1",
                [identity, hash],
            )
            .unwrap();
        assert_eq!(changed, 1, "{identity}");
    }
    db.execute("UPDATE stories SET updated = updated - 3600", [])
        .unwrap();
    let before = entries(&db_path);

    // Polled again beside a new item (so not a 304): not an edit; only the hashes are renewed.
    let other = (
        "d2",
        "http://a.example/d2",
        "Steel quotas reviewed",
        "Reviewed.",
        "Fri, 27 Nov 2026 12:00:00 GMT",
    );
    server.put("a.xml", Resource::feed(dated_feed(&[other])));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].new_entries, reports[0].updated_entries), (1, 0));
    let after = entries(&db_path);
    let renewed: Vec<_> = before
        .iter()
        .zip(&current)
        .map(|(row, now)| (row.0.clone(), now.1.clone(), row.2, row.3, row.4, row.5))
        .collect();
    assert_eq!(
        after
            .iter()
            .filter(|e| e.0 != "guid:d2")
            .cloned()
            .collect::<Vec<_>>(),
        renewed,
        "renewed, not edited"
    );

    // Once renewed, the next poll finds the current hashes: the items are not looked at again.
    server.put(
        "a.xml",
        Resource::feed(format!("{}<!-- another body -->", dated_feed(&[other]))),
    );
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].new_entries, reports[0].updated_entries), (0, 0));
    assert_eq!(entries(&db_path), after);
}
