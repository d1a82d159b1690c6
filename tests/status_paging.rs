//! The status page a page at a time: the latest stories of a topic and a search's matches,
//! paged back by the "Older stories" link as a browser follows it, over stories that share
//! publication times; the topic chosen by `?topic=`; and the parameters refused. Each test
//! polls a real feed from a local server into a temp database, then asks the daemon over HTTP
//! (or the store, for the query shapes the page does not use).

mod common;

use std::collections::HashSet;

use chrono::{DateTime, Duration, DurationRound, Utc};
use common::{FeedServer, Resource, rss, write_config};
use tradefeed::config::Config;
use tradefeed::store::{Store, StoryCursor, StoryQuery};

/// Stories the feed holds: more than four pages of the latest list (30 a page) and more
/// than one page of a search (100 a page).
const STORIES: usize = 130;
/// Stories published in each second: runs of seven, so page ends (of 30, 100 and 5) fall
/// inside runs.
const PER_SECOND: usize = 7;

/// Item `i`'s title: the page shows it, and [`titles`] reads it back.
fn title(i: usize) -> String {
    format!("Tariff notice N{i:03}")
}

/// A word of six letters of its own for item `i`, word `k`: each item's text is its own, so
/// no two items are taken for copies of one story.
fn word(i: usize, k: usize) -> String {
    let mut x = (i as u64 * 1_000 + k as u64 + 1).wrapping_mul(6_364_136_223_846_793_005);
    (0..6)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect()
}

/// Whether item `i` is about steel (the `steel` topic's) and mentions Section 232.
fn is_steel(i: usize) -> bool {
    i.is_multiple_of(3)
}
fn is_section_232(i: usize) -> bool {
    i.is_multiple_of(5)
}

/// When item `i` was published: [`PER_SECOND`] items a second, item 0 the newest, a day ago.
fn published(newest: DateTime<Utc>, i: usize) -> DateTime<Utc> {
    newest - Duration::seconds((i / PER_SECOND) as i64)
}

/// The feed of [`STORIES`] items, listed oldest first (not the order the page shows).
fn feed() -> Resource {
    let newest = (Utc::now() - Duration::days(1))
        .duration_trunc(Duration::minutes(1))
        .unwrap();
    let items: Vec<(String, String, String, String, String)> = (0..STORIES)
        .rev()
        .map(|i| {
            let own: Vec<String> = (0..12).map(|k| word(i, k)).collect();
            let text = format!(
                "{} tariff {}{} {}",
                own[..6].join(" "),
                if is_steel(i) { "steel " } else { "" },
                if is_section_232(i) { "section 232" } else { "" },
                own[6..].join(" "),
            );
            (
                format!("n{i}"),
                format!("http://notices.example/{i}"),
                title(i),
                text,
                published(newest, i).to_rfc2822(),
            )
        })
        .collect();
    let items: Vec<(&str, &str, &str, &str, &str)> = items
        .iter()
        .map(|(a, b, c, d, e)| (a.as_str(), b.as_str(), c.as_str(), d.as_str(), e.as_str()))
        .collect();
    Resource::feed(rss("Notices", &items))
}

/// A config in `dir` with the one source `Notices` (near-copies not folded) and two topics:
/// `trade-policy` (the default: every item, by "tariff") and `steel`.
fn notices_config(dir: &std::path::Path, server: &FeedServer) -> Config {
    let topics = dir.join("topics");
    std::fs::create_dir_all(&topics).unwrap();
    for (name, phrase) in [("trade-policy", "tariff"), ("steel", "steel")] {
        std::fs::write(
            topics.join(format!("{name}.toml")),
            format!("name = \"{name}\"\n[positive]\n\"{phrase}\" = 3.0\n"),
        )
        .unwrap();
    }
    let path = write_config(
        dir,
        &[("Notices", server.url("notices.xml"))],
        &format!("\n[topics]\ndir = \"{}\"\n", topics.display()),
    );
    // The last table is the one source's.
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("cluster = false\n");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}

/// The feed polled into a new database, and the daemon started on it.
struct Site {
    base: String,
    cancel: tokio_util::sync::CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
    dir: tempfile::TempDir,
    _server: FeedServer,
}

impl Site {
    async fn start() -> Site {
        let server = FeedServer::start().await;
        server.put("notices.xml", feed());
        let dir = tempfile::tempdir().unwrap();
        let config = notices_config(dir.path(), &server);
        let reports = common::fetch_pass(&config).await;
        assert!(reports.iter().all(|r| r.is_ok()), "{reports:?}");
        let (base, cancel, handle) = common::start_daemon(config).await;
        Site {
            base,
            cancel,
            handle,
            dir,
            _server: server,
        }
    }

    async fn stop(self) {
        common::stop_daemon(self.cancel, self.handle).await;
    }

    /// Every story's title in the store's own order (newest published first, then highest
    /// id), read from the file, with its publication time.
    fn stored_order(&self) -> Vec<(String, i64)> {
        common::row_pairs(
            &self.dir.path().join("tradefeed.db"),
            "SELECT title, published FROM stories ORDER BY published DESC, id DESC",
        )
    }
}

/// The item numbers of the stories a page lists, in its order.
fn titles(page: &str) -> Vec<usize> {
    page.split("Tariff notice N")
        .skip(1)
        .map(|rest| rest[..3].parse().unwrap())
        .collect()
}

/// The `href` of the link whose text starts with `label`, as a browser reads the attribute.
fn link(page: &str, label: &str) -> Option<String> {
    let at = page.find(&format!(">{label}"))?;
    let start = page[..at].rfind("<a href=\"")? + "<a href=\"".len();
    let href = &page[start..at];
    let href = &href[..href.find('"').unwrap()];
    Some(html_escape::decode_html_entities(href).into_owned())
}

/// Follows the "Older stories" links from `first` to the last page: each page's item numbers.
async fn page_through(first: &str, page_size: usize) -> Vec<Vec<usize>> {
    let mut url = url::Url::parse(first).unwrap();
    let mut pages = Vec::new();
    loop {
        let (status, page) = common::get_text(url.as_str()).await;
        assert_eq!(status, 200, "{url}: {page}");
        let listed = titles(&page);
        let older = link(&page, "Older stories");
        let newest = link(&page, "← Newest");
        if pages.is_empty() {
            assert_eq!(newest, None, "the first page links to no newer one: {url}");
        } else {
            let newest = newest.unwrap_or_else(|| panic!("{url} links to the newest: {page}"));
            assert_eq!(
                url.join(&newest).unwrap().as_str(),
                first,
                "{url}: the newest page is the first"
            );
        }
        match older {
            Some(href) => {
                assert_eq!(
                    listed.len(),
                    page_size,
                    "{url}: a full page before an older"
                );
                assert!(href.starts_with("./?"), "{url}: a relative link: {href}");
                url = url.join(&href).unwrap();
                pages.push(listed);
            }
            None => {
                assert!(
                    (1..=page_size).contains(&listed.len()),
                    "{url}: the last page lists what is left: {listed:?}"
                );
                pages.push(listed);
                return pages;
            }
        }
    }
}

/// The item numbers of the stored stories for which `keep` holds, in the store's order.
fn expected(stored: &[(String, i64)], keep: impl Fn(usize) -> bool) -> Vec<usize> {
    stored
        .iter()
        .map(|(t, _)| t.trim_start_matches("Tariff notice N").parse().unwrap())
        .filter(|&i| keep(i))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_the_latest_stories_visits_each_once_in_the_stores_order_across_shared_seconds() {
    let site = Site::start().await;
    let stored = site.stored_order();
    assert_eq!(stored.len(), STORIES, "one story per item");
    // Page ends fall among stories published in the same second.
    for end in [30, 60, 90, 100, 120] {
        assert_eq!(stored[end - 1].1, stored[end].1, "{end}: {stored:?}");
    }

    let pages = page_through(&format!("{}/", site.base), 30).await;
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [30, 30, 30, 30, 10]
    );
    let visited: Vec<usize> = pages.concat();
    assert_eq!(visited, expected(&stored, |_| true));
    assert_eq!(
        visited.iter().collect::<HashSet<_>>().len(),
        STORIES,
        "each story once"
    );
    // Newest first, the store's order: item numbers grow with age, by whole seconds.
    assert!(
        visited
            .windows(2)
            .all(|w| w[0] / PER_SECOND <= w[1] / PER_SECOND),
        "{visited:?}"
    );

    // The same for the default topic named, and for `all`; the links keep the topic.
    for topic in ["trade-policy", "all"] {
        let first = format!("{}/?topic={topic}", site.base);
        let (_, page) = common::get_text(&first).await;
        let older = link(&page, "Older stories").unwrap();
        assert!(
            older.starts_with(&format!("./?topic={topic}&before=")),
            "{older}"
        );
        assert_eq!(page_through(&first, 30).await.concat(), visited, "{topic}");
    }
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_a_search_keeps_the_search_encoded_and_visits_each_match_once() {
    let site = Site::start().await;
    let stored = site.stored_order();

    // Every item has "tariff": a page of 100 and one of 30. The `&` is no word, but is kept
    // in the links, encoded, and escaped in the HTML.
    let first = format!("{}/?q=tariff+%26", site.base);
    let (status, page) = common::get_text(&first).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("href=\"./?q=tariff+%26&amp;before="),
        "the older link keeps q, percent-encoded and escaped: {page}"
    );
    let pages = page_through(&first, 100).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [100, 30]);
    assert_eq!(pages.concat(), expected(&stored, |_| true));

    // A search of fewer matches than a page has no older link.
    let (_, page) = common::get_text(&format!("{}/?q=section+232", site.base)).await;
    assert_eq!(titles(&page), expected(&stored, is_section_232));
    assert_eq!(link(&page, "Older stories"), None);
    assert_eq!(link(&page, "← Newest"), None);
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_is_chosen_by_name_narrows_a_search_and_an_unknown_or_repeated_one_is_refused() {
    let site = Site::start().await;
    let stored = site.stored_order();
    let base = &site.base;

    // 44 steel stories: a page of 30 and one of 14, the links keeping the topic.
    let first = format!("{base}/?topic=steel");
    let (status, page) = common::get_text(&first).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h2>Latest steel stories</h2>"), "{page}");
    assert!(
        page.contains("<a href=\"./?topic=steel\" aria-current=\"page\">steel</a>"),
        "the topic links mark the page's: {page}"
    );
    assert!(
        page.contains("<a href=\"./?topic=all\">all</a>"),
        "and link the others: {page}"
    );
    // Feed autodiscovery offers the page's topic first.
    let alternate = page.find("<link rel=\"alternate\"").unwrap();
    let first_feed = &page[alternate..];
    let first_feed = &first_feed[..first_feed.find('>').unwrap()];
    assert!(
        first_feed.ends_with("href=\"feeds/steel.atom\""),
        "{first_feed}"
    );
    let pages = page_through(&first, 30).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [30, 14]);
    assert_eq!(pages.concat(), expected(&stored, is_steel));

    // The default page offers the default topic's feeds first, as before.
    let (_, page) = common::get_text(&format!("{base}/")).await;
    let first_feed = &page[page.find("<link rel=\"alternate\"").unwrap()..];
    let first_feed = &first_feed[..first_feed.find('>').unwrap()];
    assert!(
        first_feed.ends_with("href=\"feeds/trade-policy.atom\""),
        "{first_feed}"
    );

    // A search with a topic is of that topic's stories; without, of every story.
    let both = |i| is_steel(i) && is_section_232(i);
    let (status, page) = common::get_text(&format!("{base}/?q=section+232&topic=steel")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(titles(&page), expected(&stored, both));
    assert!(
        page.contains("Stories matching “section 232” in steel"),
        "{page}"
    );
    assert!(
        page.contains("href=\"feeds/steel.atom?q=section+232\""),
        "subscribing keeps the topic: {page}"
    );
    assert!(
        page.contains("<input type=\"hidden\" name=\"topic\" value=\"steel\">"),
        "the search box searches the topic's: {page}"
    );
    assert!(
        page.contains("<a href=\"./?q=section+232\">Search all stories</a>"),
        "and a link widens it: {page}"
    );
    let (_, page) = common::get_text(&format!("{base}/?q=section+232")).await;
    assert_eq!(titles(&page), expected(&stored, is_section_232));
    assert!(
        page.contains("href=\"feeds/all.atom?q=section+232\""),
        "{page}"
    );

    for (query, status, message) in [
        ("topic=nope", 404, "unknown topic \"nope\""),
        ("topic=", 404, "unknown topic \"\""),
        ("topic=Steel", 404, "unknown topic \"Steel\""),
        ("q=steel&topic=nope", 404, "unknown topic \"nope\""),
        (
            "topic=steel&topic=steel",
            400,
            "topic may be given only once",
        ),
        ("topic=steel&topic=all", 400, "topic may be given only once"),
    ] {
        let (got, body) = common::get_text(&format!("{base}/?{query}")).await;
        assert_eq!(got, status, "{query}: {body}");
        assert_eq!(body.trim_end(), message, "{query}");
    }
    site.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_or_repeated_cursor_is_refused_naming_before() {
    let site = Site::start().await;
    let base = &site.base;
    for before in [
        "",
        "x",
        "1794301200",
        "1794301200.",
        ".5",
        "1794301200.-5",
        "1794301200.0",
        "+1794301200.5",
        "1794301200.5.5",
        "1794301200.99999999999999999999",
        "99999999999999999999.5",
        "9223372036854775807.5",
        "%201794301200.5",
        "1e9.5",
    ] {
        for page in ["", "q=tariff&", "topic=steel&"] {
            let url = format!("{base}/?{page}before={before}");
            let (status, body) = common::get_text(&url).await;
            assert_eq!(status, 400, "{url}: {body}");
            assert!(
                body.starts_with("before must be PUBLISHED.ID"),
                "{url}: {body}"
            );
        }
    }
    let (status, body) = common::get_text(&format!("{base}/?before=5.5&before=5.5")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body.trim_end(), "before may be given only once");

    // A cursor past every story: an empty page that links to the newest, and to no older.
    let (status, page) = common::get_text(&format!("{base}/?before=-5.5")).await;
    assert_eq!(status, 200, "{page}");
    assert!(titles(&page).is_empty(), "{page}");
    assert_eq!(link(&page, "← Newest").as_deref(), Some("./"));
    assert_eq!(link(&page, "Older stories"), None);
    site.stop().await;
}

/// Pages of `size` of `query`, each after the last story of the one before: their titles.
async fn pages_by_cursor(store: &Store, query: StoryQuery, size: usize) -> Vec<String> {
    let mut titles = Vec::new();
    let mut before = None;
    loop {
        let page = store
            .stories(StoryQuery {
                before,
                limit: size,
                ..query.clone()
            })
            .await
            .unwrap();
        titles.extend(page.iter().map(|s| s.title.clone()));
        match page.last() {
            Some(last) if page.len() == size => before = Some(StoryCursor::of(last)),
            _ => return titles,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_story_query_pages_by_cursor_without_skipping_or_repeating_a_story() {
    let server = FeedServer::start().await;
    server.put("notices.xml", feed());
    let dir = tempfile::tempdir().unwrap();
    let config = notices_config(dir.path(), &server);
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    tradefeed::app::fetch_once(&pipeline, config.sources.clone(), 4).await;
    let store = &pipeline.store;
    for query in [
        StoryQuery::default(),
        StoryQuery {
            topic: Some("steel".into()),
            ..Default::default()
        },
        StoryQuery {
            source: Some("Notices".into()),
            ..Default::default()
        },
        StoryQuery {
            search: Some("section 232".into()),
            ..Default::default()
        },
        StoryQuery {
            topic: Some("steel".into()),
            source: Some("Notices".into()),
            search: Some("tariff".into()),
            ..Default::default()
        },
    ] {
        let all: Vec<String> = store
            .stories(StoryQuery {
                limit: 1_000,
                ..query.clone()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.title)
            .collect();
        assert!(all.len() > 5, "{query:?}: {all:?}");
        // 5 a page: page ends fall inside runs of stories published in the same second.
        assert_eq!(
            pages_by_cursor(store, query.clone(), 5).await,
            all,
            "{query:?}"
        );
    }
    store.close().await;
}
