//! Tracking pixels (1×1 images such as FeedBurner's `~r/` beacons) are not passed on to the
//! readers of the served feeds; real images are. Real feed server on 127.0.0.1, real temp
//! database, the daemon asked over HTTP.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use common::{FeedServer, Resource, fetch_pass, rss, write_config};
use tradefeed::config::Config;
use tradefeed::normalize::CONTENT_HASH_PREFIX;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_feeds_carry_no_tracking_pixels_but_keep_real_images() {
    let server = FeedServer::start().await;
    let html = "&lt;p&gt;The EU set anti-dumping duties on steel.&lt;/p&gt;\
                &lt;img src=\"https://cdn.example/chart.png\" width=\"600\" height=\"400\"&gt;\
                &lt;img src=\"http://feeds.feedburner.com/~r/Trade/~4/kTeeGj4FnwU\" \
                height=\"1\" width=\"1\"/&gt;";
    server.put(
        "pixel.xml",
        Resource::feed(rss(
            "Pixels",
            &[(
                "p-1",
                "https://news.example/steel",
                "EU sets steel duties",
                html,
                "Fri, 27 Nov 2026 10:00:00 GMT",
            )],
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Pixels", server.url("pixel.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);

    let (base, cancel, handle) = common::start_daemon(config).await;
    for format in ["atom", "rss", "json"] {
        let (status, body) = common::get_text(&format!("{base}/feeds/all.{format}")).await;
        assert_eq!(status, 200, "{format}");
        assert!(body.contains("cdn.example/chart.png"), "{format}: {body}");
        assert!(body.contains("anti-dumping duties"), "{format}: {body}");
        assert!(
            !body.contains("feedburner"),
            "{format} passes the pixel on: {body}"
        );
    }
    common::stop_daemon(cancel, handle).await;
}

/// What the stamping server's item holds; `{token}` in `html` becomes a new value at every
/// request.
struct Stamped {
    html: String,
    requests: usize,
}

/// A feed server on 127.0.0.1 whose one item carries a pixel with a new token in its URL at
/// every request, as ad servers stamp them: each response is a new body (no 304 possible).
async fn start_stamping_server(state: Arc<Mutex<Stamped>>) -> String {
    async fn feed(
        State(state): State<Arc<Mutex<Stamped>>>,
    ) -> ([(&'static str, &'static str); 1], String) {
        let mut state = state.lock().unwrap();
        state.requests += 1;
        let token = format!(
            "{:016x}",
            xxhash_rust::xxh3::xxh3_64(&state.requests.to_le_bytes())
        );
        let html = state.html.replace("{token}", &token);
        let item = (
            "p-1",
            "https://news.example/steel",
            "EU sets steel duties",
            html.as_str(),
            DATE,
        );
        (
            [("content-type", "application/rss+xml")],
            rss("Pixels", &[item]),
        )
    }
    let app = axum::Router::new()
        .route("/feed.xml", axum::routing::get(feed))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/feed.xml")
}

const DATE: &str = "Fri, 27 Nov 2026 10:00:00 GMT";

/// The entry's content hash and last change, and its story's `updated` date.
fn entry_state(db: &Path) -> (String, i64, i64) {
    let db = rusqlite::Connection::open(db).unwrap();
    db.query_row(
        "SELECT e.content_hash, e.last_changed, st.updated FROM entries e
           JOIN stories st ON st.id = e.story_id",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pixel_whose_url_changes_at_every_request_does_not_make_its_item_edited() {
    let body = |text: &str, chart: &str| {
        format!(
            "&lt;p&gt;{text}&lt;/p&gt;\
             &lt;img src=\"https://cdn.example/{chart}\" width=\"600\" height=\"400\"&gt;\
             &lt;img src=\"https://px.example/t.gif?r={{token}}\" width=\"1\" height=\"1\"&gt;"
        )
    };
    let state = Arc::new(Mutex::new(Stamped {
        html: body("The EU set duties on steel.", "chart.png"),
        requests: 0,
    }));
    let url = start_stamping_server(Arc::clone(&state)).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Pixels", url)], "");
    let config = Config::load(&path).unwrap();
    let db = dir.path().join("tradefeed.db");
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let first = entry_state(&db);

    for poll in 2..=4 {
        let reports = fetch_pass(&config).await;
        assert_eq!(
            (
                reports[0].items,
                reports[0].new_entries,
                reports[0].updated_entries
            ),
            (1, 0, 0),
            "poll {poll}"
        );
        assert_eq!(entry_state(&db), first, "poll {poll}");
    }
    assert_eq!(
        state.lock().unwrap().requests,
        4,
        "every poll read a new body"
    );

    // Another picture is an edit, and so is other text.
    state.lock().unwrap().html = body("The EU set duties on steel.", "chart-2.png");
    assert_eq!(fetch_pass(&config).await[0].updated_entries, 1);
    let pictured = entry_state(&db);
    assert_ne!(pictured.0, first.0);
    state.lock().unwrap().html = body("The EU set higher duties on steel.", "chart-2.png");
    assert_eq!(fetch_pass(&config).await[0].updated_entries, 1);
    assert_ne!(entry_state(&db).0, pictured.0);
}

/// An item with a FeedBurner beacon whose URL does not change.
const BEACON_ITEM: (&str, &str, &str, &str, &str) = (
    "b1",
    "http://a.example/b1",
    "EU steel safeguard extended",
    "&lt;p&gt;Extended to 2027.&lt;/p&gt;\
     &lt;img src=\"http://feeds.feedburner.com/~r/Trade/~4/kTeeGj4FnwU\" height=\"1\" width=\"1\"/&gt;",
    DATE,
);

/// The hash release a6d517c (which counted tracking pixels) wrote for [`BEACON_ITEM`], read
/// from the database it made when it polled the same feed.
const WITH_PIXEL_HASH: &str = "4:dea32a30da9217beb19b435636a513f9";

#[tokio::test]
async fn an_item_hashed_with_its_pixel_by_an_earlier_release_is_not_taken_for_an_edit() {
    let server = FeedServer::start().await;
    server.put("a.xml", Resource::feed(rss("A", &[BEACON_ITEM])));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let db_path = dir.path().join("tradefeed.db");
    let (hash, _, _) = entry_state(&db_path);
    assert!(hash.starts_with(CONTENT_HASH_PREFIX), "{hash}");
    assert_ne!(hash, WITH_PIXEL_HASH, "the pixel is no longer hashed");
    // The row as that release left it, changed an hour ago.
    let db = rusqlite::Connection::open(&db_path).unwrap();
    db.execute(
        "UPDATE entries SET content_hash = ?1, last_changed = last_changed - 3600",
        [WITH_PIXEL_HASH],
    )
    .unwrap();
    let (_, changed, story_updated) = entry_state(&db_path);

    // Polled again beside a new item (so not a 304): not an edit; only the hash is renewed.
    let other = (
        "b2",
        "http://a.example/b2",
        "Steel quotas reviewed",
        "Reviewed.",
        DATE,
    );
    server.put("a.xml", Resource::feed(rss("A", &[BEACON_ITEM, other])));
    let reports = fetch_pass(&config).await;
    assert_eq!((reports[0].new_entries, reports[0].updated_entries), (1, 0));
    let row: (String, i64, i64) = db
        .query_row(
            "SELECT e.content_hash, e.last_changed, st.updated FROM entries e
               JOIN stories st ON st.id = e.story_id WHERE e.identity = 'guid:b1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(row, (hash, changed, story_updated), "renewed, not edited");
}

/// A row the release before titles kept `<CADX.O>` wrote for an item with a pixel holds the
/// title without the ticker and the hash over it with the pixel counted (that release counted
/// pixels): not an edit either.
#[tokio::test]
async fn an_item_stored_without_its_ticker_and_hashed_with_its_pixel_is_not_taken_for_an_edit() {
    let item = (
        "t1",
        "http://a.example/t1",
        "Canada dollar &lt;CADX.O&gt; firms on trade data",
        "&lt;p&gt;The Canadian dollar rose.&lt;/p&gt;\
         &lt;img src=\"http://feeds.feedburner.com/~r/Fx/~4/q1\" width=\"1\" height=\"1\"&gt;",
        DATE,
    );
    let server = FeedServer::start().await;
    server.put("a.xml", Resource::feed(rss("A", &[item])));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let db = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    let row = |db: &rusqlite::Connection| -> (String, String, i64) {
        db.query_row(
            "SELECT e.title, e.content_hash, e.last_changed FROM entries e
              WHERE e.identity = 'guid:t1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let (_, hash, _) = row(&db);

    // The row as that release wrote it (see tests/pinned_outputs.rs: the hashes it wrote are
    // those over the earlier title with pixels counted).
    let feed = tradefeed::parse::parse_feed(rss("A", &[item]).as_bytes(), None).unwrap();
    let ctx = tradefeed::normalize::NormalizeContext::new(chrono::Utc::now(), server.url("a.xml"));
    let entry = tradefeed::normalize::normalize_item(&feed.items[0], &ctx).unwrap();
    assert_eq!(entry.content_hash, hash);
    let earlier = entry.earlier_title.expect("the title changed");
    let written = earlier
        .content_hash_with_pixels
        .expect("the item has a pixel");
    assert_ne!(
        written, earlier.content_hash_with_dates,
        "the pixel is counted"
    );
    db.execute(
        "UPDATE entries SET title = ?1, content_hash = ?2, last_changed = last_changed - 3600",
        [&earlier.title, &written],
    )
    .unwrap();
    db.execute("UPDATE stories SET title = ?1", [&earlier.title])
        .unwrap();
    let (_, _, changed) = row(&db);

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
        (earlier.title, hash, changed),
        "renewed, not edited"
    );
}
