//! Atom `xml:base` end to end: relative URLs in an entry's content resolve against the base
//! the feed gives it (feed, then entry, then content, each against the one before, starting
//! from the URL the feed was fetched from), in the feeds served. Real feed server on 127.0.0.1,
//! real temp database, the daemon asked over HTTP.

mod common;

use common::fetch_pass;

use common::{FeedServer, Resource, get_text, write_config};
use tradefeed::app::{self, FetchPassResult, Pipeline};
use tradefeed::config::Config;

fn atom(resource: String) -> Resource {
    Resource {
        content_type: "application/atom+xml".into(),
        ..Resource::feed(resource)
    }
}

/// A blog whose feed sets an absolute base and one entry a relative one of its own.
fn blog_feed() -> Resource {
    atom(
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://example.org/blog/">
  <id>urn:blog</id><title>Blog</title><updated>2026-11-10T09:00:00Z</updated>
  <entry xml:base="/2024/05/">
    <id>urn:blog:1</id><title>EU imposes anti-dumping duties on Chinese steel</title>
    <updated>2026-11-10T09:00:00Z</updated><link href="steel.html"/>
    <content type="html">&lt;p&gt;Read &lt;a href="post.html"&gt;the post&lt;/a&gt;
      &lt;img src="img/chart.png" alt="chart"&gt;&lt;/p&gt;</content>
  </entry>
  <entry>
    <id>urn:blog:2</id><title>Canada and UK sign trade continuity deal</title>
    <updated>2026-11-10T08:00:00Z</updated><link href="deal.html"/>
    <content type="html">&lt;p&gt;The &lt;a href="deal-text.html"&gt;deal&lt;/a&gt;.&lt;/p&gt;</content>
  </entry>
</feed>"#
            .into(),
    )
}

/// A feed whose only base is relative: it resolves against the URL the feed was fetched from.
/// Its second entry's XHTML content has a base on its wrapper `<div>` too (no part of the
/// content, RFC 4287 §4.1.3.3), which counts after the content's own.
fn relative_feed() -> Resource {
    atom(
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="news/">
  <id>urn:news</id><title>News</title><updated>2026-11-10T09:00:00Z</updated>
  <entry>
    <id>urn:news:1</id><title>Japan lifts quotas on rice imports</title>
    <updated>2026-11-10T07:00:00Z</updated>
    <summary type="html" xml:base="2026/">&lt;a href="rice.html"&gt;rice&lt;/a&gt;</summary>
  </entry>
  <entry>
    <id>urn:news:2</id><title>Mexico and Brazil cut tariffs on auto parts</title>
    <updated>2026-11-10T06:00:00Z</updated>
    <content type="xhtml" xml:base="2026/">
      <div xmlns="http://www.w3.org/1999/xhtml" xml:base="autos/"><p>The
        <a href="parts.html">list</a> <img src="img/parts.png" alt="parts"/></p></div>
    </content>
  </entry>
</feed>"#
            .into(),
    )
}

/// Every item's `content_html` in the daemon's JSON Feed of all stories.
async fn served_html(config: Config) -> Vec<String> {
    let (base, cancel, handle) = common::start_daemon(config).await;
    let (status, body) = get_text(&format!("{base}/feeds/all.json")).await;
    common::stop_daemon(cancel, handle).await;
    assert_eq!(status, 200, "{body}");
    let feed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut html: Vec<String> = feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["content_html"].as_str().unwrap_or_default().to_owned())
        .collect();
    html.sort();
    html
}

fn assert_holds(html: &[String], needles: &[&str]) {
    let all = html.join("\n");
    for needle in needles {
        assert!(all.contains(needle), "{needle} not in:\n{all}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_content_resolves_relative_urls_against_the_feed_entry_and_content_xml_base() {
    let server = FeedServer::start().await;
    server.put("blog/feed.atom", blog_feed());
    server.put("site/feed.atom", relative_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("Blog", server.url("blog/feed.atom")),
            ("News", server.url("site/feed.atom")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    let reports = fetch_pass(&config).await;
    assert_eq!(
        reports.iter().map(|r| r.new_entries).sum::<usize>(),
        4,
        "{reports:?}"
    );
    let html = served_html(config).await;
    let fetched_from = server.url("site/feed.atom");
    let news_base = fetched_from.replace("site/feed.atom", "site/news/2026/");
    assert_holds(
        &html,
        &[
            r#"href="https://example.org/2024/05/post.html""#,
            r#"src="https://example.org/2024/05/img/chart.png""#,
            r#"href="https://example.org/blog/deal-text.html""#,
            &format!(r#"href="{news_base}rice.html""#),
            &format!(r#"href="{news_base}autos/parts.html""#),
            &format!(r#"src="{news_base}autos/img/parts.png""#),
        ],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_stored_before_xml_base_was_read_gets_its_base_without_being_taken_for_an_edit() {
    let server = FeedServer::start().await;
    server.put("blog/feed.atom", blog_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Blog", server.url("blog/feed.atom"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 2);

    // The rows as the release before wrote them: no base of their own (the source was fetched
    // from its configured URL), the same content hash (the base is not hashed).
    let db_path = dir.path().join("tradefeed.db");
    let stored = |db: &rusqlite::Connection| -> Vec<(String, Option<String>, String)> {
        let mut statement = db
            .prepare("SELECT identity, base_url, content_hash FROM entries ORDER BY identity")
            .unwrap();
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let db = rusqlite::Connection::open(&db_path).unwrap();
    let written = stored(&db);
    let bases: Vec<Option<&str>> = written.iter().map(|r| r.1.as_deref()).collect();
    assert_eq!(
        bases,
        [
            Some("https://example.org/2024/05/"),
            Some("https://example.org/blog/")
        ]
    );
    db.execute("UPDATE entries SET base_url = NULL", [])
        .unwrap();

    // Polled again, the feed unchanged but for its server's validators (a 304 reads nothing):
    // nothing is reported edited, and each row has its base back, hash unchanged.
    let mut unconditional = blog_feed();
    unconditional.body.extend_from_slice(b"\n");
    server.put("blog/feed.atom", unconditional);
    let reports = fetch_pass(&config).await;
    assert_eq!(
        (reports[0].new_entries, reports[0].updated_entries),
        (0, 0),
        "{:?}",
        reports[0]
    );
    assert_eq!(stored(&db), written);
    let html = served_html(config).await;
    assert_holds(&html, &[r#"href="https://example.org/2024/05/post.html""#]);
}

/// A feed that drops its `xml:base` (its links absolute, so no item reads as edited) has its
/// rows served against the URL it is fetched from again, and the feeds rendered before go;
/// a later unchanged poll writes nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_that_drops_its_xml_base_is_served_against_its_own_url_again() {
    let absolute = |with_bases: bool| {
        let mut xml = String::from_utf8(blog_feed().body).unwrap();
        xml = xml
            .replace(
                r#"<link href="steel.html"/>"#,
                r#"<link href="https://example.org/2024/05/steel.html"/>"#,
            )
            .replace(
                r#"<link href="deal.html"/>"#,
                r#"<link href="https://example.org/blog/deal.html"/>"#,
            );
        if !with_bases {
            xml = xml
                .replace(r#" xml:base="https://example.org/blog/""#, "")
                .replace(r#" xml:base="/2024/05/""#, "");
        }
        atom(xml)
    };
    let server = FeedServer::start().await;
    server.put("blog/feed.atom", absolute(true));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Blog", server.url("blog/feed.atom"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 2);
    let db_path = dir.path().join("tradefeed.db");
    let bases = || -> Vec<Option<String>> {
        let db = rusqlite::Connection::open(&db_path).unwrap();
        let mut statement = db
            .prepare("SELECT base_url FROM entries ORDER BY identity")
            .unwrap();
        statement
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert_eq!(
        bases(),
        [
            Some("https://example.org/2024/05/".to_string()),
            Some("https://example.org/blog/".to_string())
        ]
    );

    server.put("blog/feed.atom", absolute(false));
    let pipeline = Pipeline::start(&config).await.unwrap();
    let before = pipeline.store.data_version();
    let reports = app::fetch_once(&pipeline, config.sources.clone(), 8).await;
    let FetchPassResult::Polled(report) = &reports[0] else {
        panic!("{:?}", reports[0]);
    };
    assert_eq!((report.new_entries, report.updated_entries), (0, 0));
    assert_eq!(bases(), [None, None], "the bases the feed dropped are gone");
    let rebased = pipeline.store.data_version();
    assert!(
        rebased > before,
        "feeds rendered with the old bases are stale"
    );

    // Unchanged again (a body that differs only by a newline, so it is read): nothing moves.
    let mut again = absolute(false);
    again.body.extend_from_slice(b"\n");
    server.put("blog/feed.atom", again);
    app::fetch_once(&pipeline, config.sources.clone(), 8).await;
    assert_eq!(pipeline.store.data_version(), rebased);
    pipeline.store.close().await;
    drop(pipeline);

    let html = served_html(config).await;
    let own = server.url("blog/post.html");
    assert_holds(&html, &[&format!(r#"href="{own}""#)]);
}
