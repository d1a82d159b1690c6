//! Enclosures and images end to end: a podcast RSS feed, an Atom feed with `rel="enclosure"`
//! links, a JSON Feed with attachments and a Media RSS feed, served by a real feed server on
//! 127.0.0.1, polled into a temp database and read back from the daemon's `/feeds/all.atom`,
//! `.rss` and `.json`. When `/usr/bin/python3` has feedparser, each served feed is also read by
//! it: well-formed (`bozo` false) and with its enclosures where feedparser looks for them.

mod common;

use common::{FeedServer, Resource, fetch_pass, get_text, write_config};
use tradefeed::app::{self, FetchPassResult, Pipeline};
use tradefeed::config::Config;

fn typed(body: String, content_type: &str) -> Resource {
    Resource {
        content_type: content_type.into(),
        ..Resource::feed(body)
    }
}

/// A podcast: one episode with an MP3 (its URL carrying credentials and a tracking parameter,
/// which are not served) and `itunes:duration` (feed-rs keeps it only beside another iTunes
/// element of the item, here `itunes:summary`).
fn podcast(with_enclosure: bool) -> Resource {
    let enclosure = if with_enclosure {
        r#"<enclosure url="https://listener:secret@cdn.pod.example/ep7.mp3?utm_source=rss&amp;id=7" length="105003355" type="audio/mpeg"/>"#
    } else {
        ""
    };
    typed(
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">
<channel><title>Trade Talk</title><link>https://pod.example/</link><description>d</description>
  <item><guid>ep-7</guid><title>Episode 7: the steel safeguard review</title>
    <link>https://pod.example/ep7</link>
    <description>Why the steel safeguard review matters for Canadian exporters.</description>
    <pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate>
    {enclosure}
    <itunes:summary>Steel safeguards.</itunes:summary>
    <itunes:duration>1:02:03</itunes:duration></item>
</channel></rss>"#
        ),
        "application/rss+xml",
    )
}

/// An Atom entry with a relative `rel="enclosure"` link (resolved against the feed's URL).
fn atom_feed() -> Resource {
    typed(
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>urn:wto</id><title>WTO notes</title><updated>2026-11-10T09:00:00Z</updated>
  <entry><id>urn:wto:1</id><title>Panel report on fishery subsidies published</title>
    <updated>2026-11-10T08:00:00Z</updated>
    <link href="https://wto.example/news/1"/>
    <link rel="enclosure" href="files/panel-report.pdf" type="application/pdf" length="52000"/>
    <summary>The panel found that the subsidies breach the agreement.</summary>
  </entry>
</feed>"#
            .into(),
        "application/atom+xml",
    )
}

/// A JSON Feed item with an attachment (duration and title) and an image.
fn json_feed() -> Resource {
    typed(
        r#"{"version":"https://jsonfeed.org/version/1.1","title":"Briefing",
  "items":[{"id":"b-1","url":"https://brief.example/1","title":"Rice import quotas lifted in Japan",
    "content_text":"Japan lifted its quotas on rice imports after a poor harvest.",
    "date_published":"2026-11-10T07:00:00Z","image":"https://brief.example/rice.jpg",
    "attachments":[{"url":"https://brief.example/rice.m4a","mime_type":"audio/x-m4a",
      "size_in_bytes":4200000,"duration_in_seconds":300,"title":"Audio briefing"}]}]}"#
            .into(),
        "application/feed+json",
    )
}

/// A Media RSS item: a video in two renditions and a thumbnail.
fn media_rss() -> Resource {
    typed(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>TV</title><link>https://tv.example/</link><description>d</description>
  <item><guid>v-1</guid><title>Mexico and Brazil cut tariffs on auto parts</title>
    <link>https://tv.example/v1</link>
    <description>Both governments cut tariffs on car parts from January.</description>
    <pubDate>Tue, 10 Nov 2026 06:00:00 GMT</pubDate>
    <media:content url="https://tv.example/v1-720.mp4" type="video/mp4" fileSize="9000000" duration="95"/>
    <media:content url="https://tv.example/v1-360.mp4" type="video/mp4"/>
    <media:thumbnail url="https://tv.example/v1.jpg" width="320" height="180"/>
  </item>
</channel></rss>"#
            .into(),
        "application/rss+xml",
    )
}

/// The served feeds, by extension.
async fn served(config: Config) -> [String; 3] {
    let (base, cancel, handle) = common::start_daemon(config).await;
    let mut bodies = Vec::new();
    for ext in ["atom", "rss", "json"] {
        let (status, body) = get_text(&format!("{base}/feeds/all.{ext}")).await;
        assert_eq!(status, 200, "{ext}: {body}");
        bodies.push(body);
    }
    common::stop_daemon(cancel, handle).await;
    bodies.try_into().unwrap()
}

/// The JSON Feed's items by title.
fn json_items(body: &str) -> std::collections::HashMap<String, serde_json::Value> {
    let feed: serde_json::Value = serde_json::from_str(body).unwrap();
    feed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["title"].as_str().unwrap().to_owned(), i.clone()))
        .collect()
}

/// What feedparser (the `/usr/bin/python3` one) reads of a served feed: for each entry by
/// title, its enclosures as (href, type, length) and its thumbnails; `None` (with a notice)
/// when it is not installed. Panics when feedparser finds the feed ill-formed.
fn feedparser_view(body: &str) -> Option<serde_json::Value> {
    const SCRIPT: &str = r#"
import json, sys, feedparser
d = feedparser.parse(sys.stdin.buffer.read())
out = {"bozo": bool(d.bozo), "exception": str(d.get("bozo_exception", "")), "entries": {}}
for e in d.entries:
    out["entries"][e.get("title", "")] = {
        "enclosures": [[x.get("href"), x.get("type"), x.get("length")] for x in e.get("enclosures", [])],
        "thumbnails": [t.get("url") for t in e.get("media_thumbnail", [])],
    }
print(json.dumps(out))
"#;
    let python = std::path::Path::new("/usr/bin/python3");
    let has_feedparser = python.exists()
        && std::process::Command::new(python)
            .args(["-c", "import feedparser"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !has_feedparser {
        eprintln!("notice: /usr/bin/python3 with feedparser not found; skipping its check");
        return None;
    }
    use std::io::Write;
    let mut child = std::process::Command::new(python)
        .args(["-c", SCRIPT])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let view: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        view["bozo"], false,
        "feedparser: {}\n{body}",
        view["exception"]
    );
    Some(view)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enclosures_of_rss_atom_json_and_media_rss_feeds_are_served_in_all_three_formats() {
    let server = FeedServer::start().await;
    server.put("pod.rss", podcast(true));
    server.put("wto.atom", atom_feed());
    server.put("brief.json", json_feed());
    server.put("tv.rss", media_rss());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("Pod", server.url("pod.rss")),
            ("WTO", server.url("wto.atom")),
            ("Brief", server.url("brief.json")),
            ("TV", server.url("tv.rss")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    let reports = fetch_pass(&config).await;
    assert_eq!(
        reports.iter().map(|r| r.new_stories).sum::<usize>(),
        4,
        "{reports:?}"
    );
    let [atom, rss, json] = served(config).await;

    let mp3 = "https://cdn.pod.example/ep7.mp3?id=7";
    let pdf = server.url("files/panel-report.pdf");
    let (pod, wto, brief, tv) = (
        "Episode 7: the steel safeguard review",
        "Panel report on fishery subsidies published",
        "Rice import quotas lifted in Japan",
        "Mexico and Brazil cut tariffs on auto parts",
    );

    // JSON Feed: every enclosure as an attachment, the image as `image`.
    let items = json_items(&json);
    assert_eq!(
        items[pod]["attachments"],
        serde_json::json!([{"url": mp3, "mime_type": "audio/mpeg",
                            "size_in_bytes": 105003355, "duration_in_seconds": 3723}])
    );
    assert_eq!(
        items[wto]["attachments"],
        serde_json::json!([{"url": pdf, "mime_type": "application/pdf", "size_in_bytes": 52000}])
    );
    assert_eq!(
        items[brief]["attachments"],
        serde_json::json!([{"url": "https://brief.example/rice.m4a", "mime_type": "audio/x-m4a",
                            "title": "Audio briefing", "size_in_bytes": 4200000,
                            "duration_in_seconds": 300}])
    );
    assert_eq!(items[brief]["image"], "https://brief.example/rice.jpg");
    assert_eq!(
        items[tv]["attachments"],
        serde_json::json!([
            {"url": "https://tv.example/v1-720.mp4", "mime_type": "video/mp4",
             "size_in_bytes": 9000000, "duration_in_seconds": 95},
            {"url": "https://tv.example/v1-360.mp4", "mime_type": "video/mp4"}])
    );
    assert_eq!(items[tv]["image"], "https://tv.example/v1.jpg");
    assert!(
        !json.contains("secret") && !json.contains("utm_source"),
        "{json}"
    );

    // Atom: every enclosure as a link; RSS: one per item, the first audio or video.
    for needle in [
        format!(r#"<link href="{mp3}" rel="enclosure" type="audio/mpeg" length="105003355"/>"#),
        format!(r#"<link href="{pdf}" rel="enclosure" type="application/pdf" length="52000"/>"#),
        r#"<link href="https://tv.example/v1-360.mp4" rel="enclosure" type="video/mp4"/>"#.into(),
        r#"<media:thumbnail url="https://tv.example/v1.jpg">"#.into(),
    ] {
        assert!(atom.contains(&needle), "{needle} in {atom}");
    }
    for needle in [
        format!(r#"<enclosure url="{mp3}" length="105003355" type="audio/mpeg"/>"#),
        format!(r#"<enclosure url="{pdf}" length="52000" type="application/pdf"/>"#),
        r#"<enclosure url="https://brief.example/rice.m4a" length="4200000" type="audio/x-m4a"/>"#
            .into(),
        r#"<enclosure url="https://tv.example/v1-720.mp4" length="9000000" type="video/mp4"/>"#
            .into(),
    ] {
        assert!(rss.contains(&needle), "{needle} in {rss}");
    }
    assert_eq!(rss.matches("<enclosure ").count(), 4, "{rss}");
    for body in [&atom, &rss] {
        assert!(
            !body.contains("secret") && !body.contains("utm_source"),
            "{body}"
        );
    }

    // feedparser reads the XML feeds without complaint and finds the enclosures.
    let Some(atom_view) = feedparser_view(&atom) else {
        return;
    };
    let rss_view = feedparser_view(&rss).unwrap();
    let enclosures =
        |view: &serde_json::Value, title: &str| view["entries"][title]["enclosures"].clone();
    assert_eq!(
        enclosures(&atom_view, pod),
        serde_json::json!([[mp3, "audio/mpeg", "105003355"]])
    );
    assert_eq!(
        enclosures(&atom_view, tv),
        serde_json::json!([
            ["https://tv.example/v1-720.mp4", "video/mp4", "9000000"],
            ["https://tv.example/v1-360.mp4", "video/mp4", null]
        ])
    );
    assert_eq!(
        enclosures(&rss_view, wto),
        serde_json::json!([[pdf, "application/pdf", "52000"]])
    );
    assert_eq!(
        enclosures(&rss_view, tv),
        serde_json::json!([["https://tv.example/v1-720.mp4", "video/mp4", "9000000"]])
    );
    for view in [&atom_view, &rss_view] {
        assert_eq!(
            view["entries"][tv]["thumbnails"],
            serde_json::json!(["https://tv.example/v1.jpg"])
        );
        assert_eq!(view["entries"].as_object().unwrap().len(), 4);
    }
}

/// A row stored without enclosures (as every row stored before they were read is) takes them
/// at the next poll that lists its item with them, without the item counting as edited; a
/// later poll of the same feed writes nothing; a new file is an edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_stored_without_enclosures_takes_them_without_being_taken_for_an_edit() {
    let server = FeedServer::start().await;
    server.put("pod.rss", podcast(false));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Pod", server.url("pod.rss"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let db = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    let row = |db: &rusqlite::Connection| -> (Option<String>, String, i64) {
        db.query_row(
            "SELECT media, content_hash, last_changed FROM entries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let (media, hash, changed) = row(&db);
    assert_eq!(media, None, "NULL when there are none");

    server.put("pod.rss", podcast(true));
    let pipeline = Pipeline::start(&config).await.unwrap();
    let before = pipeline.store.data_version();
    let polled = app::fetch_once(&pipeline, config.sources.clone(), 8).await;
    let FetchPassResult::Polled(report) = &polled[0] else {
        panic!("{:?}", polled[0]);
    };
    assert_eq!(
        (report.new_entries, report.updated_entries),
        (0, 0),
        "{report:?}"
    );
    let taken = pipeline.store.data_version();
    assert!(
        taken > before,
        "feeds rendered without the enclosure are stale"
    );
    let (media, renewed, still) = row(&db);
    assert_eq!(
        media.as_deref(),
        Some(
            r#"{"enc":[{"url":"https://listener:secret@cdn.pod.example/ep7.mp3?utm_source=rss&id=7","type":"audio/mpeg","length":105003355,"secs":3723}]}"#
        ),
        "stored as the feed gave it; credentials and tracking go when served"
    );
    assert_ne!(renewed, hash, "the hash now covers the enclosure");
    assert_eq!(still, changed, "no edit");

    // The same feed again (its validators changed, so it is read): nothing to write.
    let mut again = podcast(true);
    again.body.extend_from_slice(b"\n");
    server.put("pod.rss", again);
    let polled = app::fetch_once(&pipeline, config.sources.clone(), 8).await;
    let FetchPassResult::Polled(report) = &polled[0] else {
        panic!("{:?}", polled[0]);
    };
    assert_eq!((report.new_entries, report.updated_entries), (0, 0));
    assert_eq!(
        pipeline.store.data_version(),
        taken,
        "nothing served changed"
    );
    assert_eq!(row(&db).1, renewed);
    pipeline.store.close().await;
    drop(pipeline);
    let items = json_items(&served(config.clone()).await[2]);
    assert_eq!(
        items["Episode 7: the steel safeguard review"]["attachments"][0]["url"],
        "https://cdn.pod.example/ep7.mp3?id=7"
    );

    // Another file in its place is an edit.
    let moved = String::from_utf8(podcast(true).body)
        .unwrap()
        .replace("ep7.mp3", "ep7-fixed.mp3");
    server.put("pod.rss", typed(moved, "application/rss+xml"));
    let report = &fetch_pass(&config).await[0];
    assert_eq!(report.updated_entries, 1, "{report:?}");
    assert!(row(&db).0.unwrap().contains("ep7-fixed.mp3"));
}

/// A feed that stamps a campaign on its link and on its enclosure's URL at every request, and
/// whose host recomputes the file's length now and then, does not make its episode look
/// edited at every poll (the stored JSON changes; the enclosures as the hash reads them, URLs
/// without tracking and types, do not). Another file, or another type, still is an edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_stamps_on_link_and_enclosure_or_a_new_length_are_no_edit() {
    let episode = |campaign: &str, file: &str, length: u32, mime: &str| {
        let body = String::from_utf8(podcast(true).body)
            .unwrap()
            .replace(
                "<link>https://pod.example/ep7</link>",
                &format!("<link>https://pod.example/ep7?utm_campaign={campaign}</link>"),
            )
            .replace(
                "ep7.mp3?utm_source=rss&amp;id=7",
                &format!("{file}?utm_source=rss&amp;utm_campaign={campaign}&amp;id=7"),
            )
            .replace("105003355", &length.to_string())
            .replace("audio/mpeg", mime);
        typed(body, "application/rss+xml")
    };
    let server = FeedServer::start().await;
    server.put(
        "pod.rss",
        episode("c0", "ep7.mp3", 105_003_355, "audio/mpeg"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Pod", server.url("pod.rss"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 1);
    let mut updated = Vec::new();
    for (campaign, length) in [("c1", 105_003_355), ("c2", 105_003_355), ("c3", 99_000_000)] {
        server.put(
            "pod.rss",
            episode(campaign, "ep7.mp3", length, "audio/mpeg"),
        );
        let report = &fetch_pass(&config).await[0];
        assert_eq!(report.outcome, "ok", "{report:?}");
        updated.push(report.updated_entries);
    }
    assert_eq!(
        updated,
        [0, 0, 0],
        "tracking stamps and a length are no edit"
    );

    server.put(
        "pod.rss",
        episode("c4", "ep7-fixed.mp3", 99_000_000, "audio/mpeg"),
    );
    assert_eq!(
        fetch_pass(&config).await[0].updated_entries,
        1,
        "another file"
    );
    server.put(
        "pod.rss",
        episode("c5", "ep7-fixed.mp3", 99_000_000, "video/mp4"),
    );
    assert_eq!(
        fetch_pass(&config).await[0].updated_entries,
        1,
        "another type"
    );
}

/// A lead image that is refused, for whatever reason (a URL too long to keep or to read, not
/// http(s)), gives way to the next the item offers: JSON Feed `banner_image`, an image
/// attachment, a Media RSS image beside an over-long thumbnail. The refusal of the preferred
/// image once left the item with none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_lead_image_gives_way_to_the_item_s_next_one() {
    // Over the 2,048 bytes kept; over the 8 KiB read at all.
    let too_long_to_keep = format!("https://img.example/{}.jpg", "a".repeat(3_000));
    let too_long_to_read = format!("https://img.example/{}.jpg", "b".repeat(9_000));
    let json = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Briefing",
        "items": [
            {
                "id": "b-1", "url": "https://brief.example/1",
                "title": "Vietnam raises duties on imported steel coil",
                "content_text": "Hanoi raised its duties on hot-rolled coil from three suppliers.",
                "date_published": "2026-11-10T07:00:00Z",
                "image": too_long_to_keep,
                "banner_image": "https://img.example/coil-banner.jpg"
            },
            {
                "id": "b-2", "url": "https://brief.example/2",
                "title": "Chile signs a fruit export accord with India",
                "content_text": "Cherries and grapes enter India at lower rates from March.",
                "date_published": "2026-11-10T06:00:00Z",
                "image": too_long_to_read,
                "banner_image": "https://img.example/fruit-banner.jpg"
            },
            {
                "id": "b-3", "url": "https://brief.example/3",
                "title": "Kenya lowers tariffs on solar panels",
                "content_text": "Nairobi cut the import tariff on photovoltaic modules to zero.",
                "date_published": "2026-11-10T05:00:00Z",
                "image": "data:image/png;base64,iVBORw0KGgo=",
                "attachments": [
                    {"url": "https://img.example/solar.jpg", "mime_type": "image/jpeg"}
                ]
            }
        ]
    });
    let rss = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>TV</title><link>https://tv.example/</link><description>d</description>
  <item><guid>v-2</guid><title>Egypt suspends wheat import tenders</title>
    <link>https://tv.example/v2</link>
    <description>The state buyer suspended its tenders until the spring.</description>
    <pubDate>Tue, 10 Nov 2026 04:00:00 GMT</pubDate>
    <media:content url="https://tv.example/v2.jpg" type="image/jpeg"/>
    <media:thumbnail url="{too_long_to_keep}" width="320" height="180"/>
  </item>
</channel></rss>"#
    );
    let server = FeedServer::start().await;
    server.put(
        "brief.json",
        typed(json.to_string(), "application/feed+json"),
    );
    server.put("tv.rss", typed(rss, "application/rss+xml"));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("Brief", server.url("brief.json")),
            ("TV", server.url("tv.rss")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    let reports = fetch_pass(&config).await;
    assert_eq!(
        reports.iter().map(|r| r.new_stories).sum::<usize>(),
        4,
        "{reports:?}"
    );
    let [_, _, json] = served(config).await;
    let items = json_items(&json);
    for (title, image) in [
        (
            "Vietnam raises duties on imported steel coil",
            "https://img.example/coil-banner.jpg",
        ),
        (
            "Chile signs a fruit export accord with India",
            "https://img.example/fruit-banner.jpg",
        ),
        (
            "Kenya lowers tariffs on solar panels",
            "https://img.example/solar.jpg",
        ),
        (
            "Egypt suspends wheat import tenders",
            "https://tv.example/v2.jpg",
        ),
    ] {
        assert_eq!(items[title]["image"], image, "{title}: {:#}", items[title]);
    }
}

/// What feed-rs alone leaves out of RSS items, served all the same: a thumbnail with no
/// `media:content` beside it (BBC News gives its lead images so), an `<enclosure>` beside a
/// `media:content` (a podcast's audio beside its cover), and an enclosure at a relative URL.
#[tokio::test]
async fn rss_media_feed_rs_leaves_out_are_read_and_served() {
    let server = FeedServer::start().await;
    server.put(
        "news/rss.xml",
        typed(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>News</title><link>https://news.example/</link><description>d</description>
  <item><guid>n-1</guid><title>EU and India resume trade talks</title>
    <link>https://news.example/n1</link><description>Talks resume in Brussels.</description>
    <pubDate>Tue, 10 Nov 2026 06:00:00 GMT</pubDate>
    <media:thumbnail width="240" height="135" url="https://ichef.news.example/n1.jpg"/>
  </item>
  <item><guid>n-2</guid><title>Podcast: the tariff week</title>
    <link>https://news.example/n2</link><description>This week in tariffs.</description>
    <pubDate>Tue, 10 Nov 2026 07:00:00 GMT</pubDate>
    <enclosure url="https://cdn.news.example/n2.mp3" type="audio/mpeg" length="4200000"/>
    <media:content url="https://cdn.news.example/n2-cover.jpg" medium="image"/>
  </item>
  <item><guid>n-3</guid><title>Customs briefing on rules of origin</title>
    <link>https://news.example/n3</link><description>The briefing, recorded.</description>
    <pubDate>Tue, 10 Nov 2026 08:00:00 GMT</pubDate>
    <enclosure url="media/n3.mp3" type="audio/mpeg" length="1200000"/>
  </item>
</channel></rss>"#
                .into(),
            "application/rss+xml",
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("News", server.url("news/rss.xml"))], "");
    let config = Config::load(&path).unwrap();
    assert_eq!(fetch_pass(&config).await[0].new_entries, 3);
    let [_, _, json] = served(config).await;
    let items = json_items(&json);
    let item = |title: &str| {
        items
            .get(title)
            .unwrap_or_else(|| panic!("{title}: {json}"))
    };
    let attachments = |title: &str| -> Vec<String> {
        item(title)["attachments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|a| a["url"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        item("EU and India resume trade talks")["image"],
        "https://ichef.news.example/n1.jpg"
    );
    let podcast = "Podcast: the tariff week";
    assert!(
        attachments(podcast).contains(&"https://cdn.news.example/n2.mp3".to_string()),
        "{:?}",
        attachments(podcast)
    );
    assert_eq!(
        item(podcast)["image"],
        "https://cdn.news.example/n2-cover.jpg"
    );
    assert_eq!(
        attachments("Customs briefing on rules of origin"),
        [server.url("news/media/n3.mp3")]
    );
}
