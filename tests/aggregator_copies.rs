//! Aggregator copies (Google News search feeds: a headline with ` - Publisher` added, a
//! news.google.com link, a description that repeats the two) join the story their headline
//! names, through the binary's `fetch` against real feeds on a loopback server.

mod common;

use std::path::Path;

use common::{FeedServer, Resource, row_pairs, tradefeed_command, write_config};

const STORY: &str = "Taiwan plans new tariff cuts";

/// The wire text the direct outlets run, with an outlet's own opening and closing lines.
fn wire_text(outlet: &str) -> String {
    format!(
        "{outlet} - Taiwan plans to cut tariffs on American farm goods, cars and machinery as \
         part of talks with Washington aimed at avoiding higher duties on its chip exports, the \
         economy ministry said on Monday. The cuts would cover pork, beef and wheat, and lower \
         duties on mid-sized cars from 17.5 percent to 10 percent over three years, officials \
         told reporters in Taipei. The proposal will be sent to parliament next month, and \
         negotiators expect a first round of talks before the end of the year. Read more at \
         {outlet}."
    )
}

/// An RSS item as a direct outlet publishes it: its own link, the full text.
fn direct_item(outlet: &str, title: &str) -> Resource {
    direct_item_at(
        outlet,
        title,
        &wire_text(outlet),
        "Tue, 10 Nov 2026 08:00:00 GMT",
    )
}

/// An outlet's item with this text, published at `date`.
fn direct_item_at(outlet: &str, title: &str, text: &str, date: &str) -> Resource {
    Resource::feed(common::rss(
        outlet,
        &[(
            &format!("{outlet}-1"),
            &format!("https://{outlet}.example/taiwan-tariffs"),
            title,
            text,
            date,
        )],
    ))
}

/// A Google News search feed with these (headline, publisher, pubDate) items, in Google's
/// format.
fn google_news(items: &[(&str, &str, &str)]) -> Resource {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?><rss \
         xmlns:media=\"http://search.yahoo.com/mrss/\" version=\"2.0\"><channel>\
         <generator>NFE/5.0</generator><title>\"tariffs\" - Google News</title>\
         <link>https://news.google.com/search?q=tariffs</link><language>en-US</language>\
         <description>Google News</description>\n",
    );
    for (n, (headline, publisher, date)) in items.iter().enumerate() {
        let id = format!(
            "CBMiWkFVX3lxTE{n}{}x{}",
            publisher.replace(' ', ""),
            headline.len()
        );
        let link = format!("https://news.google.com/rss/articles/{id}?oc=5");
        xml.push_str(&format!(
            "<item><title>{headline} - {publisher}</title><link>{link}</link>\
             <guid isPermaLink=\"false\">{id}</guid><pubDate>{date}</pubDate>\
             <description>&lt;a href=\"{link}\" target=\"_blank\"&gt;{headline}&lt;/a&gt;\
             &amp;nbsp;&amp;nbsp;&lt;font color=\"#6f6f6f\"&gt;{publisher}&lt;/font&gt;\
             </description><source url=\"https://{host}.example\">{publisher}</source></item>\n",
            host = publisher.replace(' ', "").to_lowercase(),
        ));
    }
    xml.push_str("</channel></rss>\n");
    Resource::feed(xml)
}

fn fetch(config: &Path, source: &str) {
    let out = tradefeed_command(config, &["fetch", "--source", source])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// (title, story id) of every entry of a source, by title.
fn placed(db: &Path, source: &str) -> Vec<(String, i64)> {
    row_pairs(
        db,
        &format!(
            "SELECT e.title, e.story_id FROM entries e JOIN sources s ON s.id = e.source_id
              WHERE s.name = '{source}' ORDER BY e.title"
        ),
    )
}

fn evidence(db: &Path, title: &str) -> String {
    let rows: Vec<(String, String)> = row_pairs(
        db,
        &format!("SELECT title, evidence FROM entries WHERE title = '{title}'"),
    );
    assert_eq!(rows.len(), 1, "one entry titled {title}: {rows:?}");
    rows[0].1.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_news_copies_of_a_stored_story_join_it_and_generic_or_late_headlines_do_not() {
    let feeds = FeedServer::start().await;
    feeds.put("wire-a.xml", direct_item("wirea", STORY));
    feeds.put(
        "daily.xml",
        direct_item(
            "daily",
            "Taiwan offers to cut tariffs on US farm goods and cars",
        ),
    );
    feeds.put(
        "herald.xml",
        direct_item("herald", "Taipei to lower duties on American cars, pork"),
    );
    feeds.put(
        "markets.xml",
        Resource::feed(common::rss(
            "Markets",
            &[(
                "m1",
                "https://markets.example/wrap",
                "Markets wrap",
                "Stocks rose in Asia on Monday as investors weighed the outlook for interest \
                 rates, with the Nikkei up 0.8 percent and the Hang Seng flat by the close of \
                 trading; the dollar eased against the yen and oil prices held steady.",
                "Tue, 10 Nov 2026 07:00:00 GMT",
            )],
        )),
    );
    feeds.put(
        "gnews-tariffs.xml",
        google_news(&[
            (STORY, "Wire A", "Tue, 10 Nov 2026 09:00:00 GMT"),
            (STORY, "Yahoo Finance", "Tue, 10 Nov 2026 10:30:00 GMT"),
            ("Markets wrap", "Reuters", "Tue, 10 Nov 2026 09:30:00 GMT"),
            (
                "EU opens anti-dumping probe into Chinese e-bikes",
                "Reuters",
                "Tue, 10 Nov 2026 11:00:00 GMT",
            ),
        ]),
    );
    feeds.put(
        "gnews-trade.xml",
        google_news(&[
            (
                "EU opens anti-dumping probe into Chinese e-bikes",
                "Financial Times",
                "Tue, 10 Nov 2026 12:00:00 GMT",
            ),
            // Same headline as the Taiwan story, nine days on: a headline alone is not
            // evidence that far apart.
            (STORY, "Focus Taiwan", "Thu, 19 Nov 2026 09:00:00 GMT"),
        ]),
    );

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Wire A", feeds.url("wire-a.xml")),
            ("Daily", feeds.url("daily.xml")),
            ("Herald", feeds.url("herald.xml")),
            ("Markets", feeds.url("markets.xml")),
            ("Google News: tariffs", feeds.url("gnews-tariffs.xml")),
            ("Google News: trade", feeds.url("gnews-trade.xml")),
        ],
        "",
    );
    let db = dir.path().join("tradefeed.db");
    // The direct outlets first, as in the audit: the story is stored when the copies come.
    for source in ["Wire A", "Daily", "Herald", "Markets"] {
        fetch(&config, source);
    }
    let story: Vec<i64> = ["Wire A", "Daily", "Herald"]
        .iter()
        .map(|s| placed(&db, s)[0].1)
        .collect();
    assert!(
        story.iter().all(|&s| s == story[0]),
        "the outlets' copies fold: {story:?}"
    );
    let story = story[0];
    let markets = placed(&db, "Markets")[0].1;

    fetch(&config, "Google News: tariffs");
    fetch(&config, "Google News: trade");

    let tariffs = placed(&db, "Google News: tariffs");
    let trade = placed(&db, "Google News: trade");
    let id = |rows: &[(String, i64)], title: &str| {
        rows.iter()
            .find(|(t, _)| t == title)
            .unwrap_or_else(|| panic!("{title} in {rows:?}"))
            .1
    };
    assert_eq!(id(&tariffs, &format!("{STORY} - Wire A")), story);
    assert_eq!(id(&tariffs, &format!("{STORY} - Yahoo Finance")), story);
    assert_eq!(
        evidence(&db, &format!("{STORY} - Yahoo Finance")),
        "same headline, title-only copy (\"- Yahoo Finance\" dropped)"
    );
    let generic = id(&tariffs, "Markets wrap - Reuters");
    assert_ne!(generic, markets, "a generic headline stands for no story");
    let probe = id(
        &tariffs,
        "EU opens anti-dumping probe into Chinese e-bikes - Reuters",
    );
    assert_eq!(
        id(
            &trade,
            "EU opens anti-dumping probe into Chinese e-bikes - Financial Times"
        ),
        probe,
        "two title-only copies fold with each other"
    );
    assert!(![story, markets, generic].contains(&probe));
    let late = id(&trade, &format!("{STORY} - Focus Taiwan"));
    assert_ne!(late, story, "nine days apart a headline is no evidence");

    let stories: Vec<(i64, i64)> = row_pairs(&db, "SELECT count(*), 0 FROM stories");
    assert_eq!(
        stories[0].0, 5,
        "Taiwan, markets, the generic Google copy, the probe, the late copy"
    );
    // The served title of a copy keeps the publisher it names.
    let titles: Vec<(String, i64)> = row_pairs(
        &db,
        &format!("SELECT title, id FROM stories WHERE id = {story}"),
    );
    assert_eq!(titles[0].0, STORY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outlet_copy_with_text_joins_the_story_a_google_news_copy_started() {
    let feeds = FeedServer::start().await;
    feeds.put(
        "gnews.xml",
        google_news(&[(STORY, "Reuters", "Tue, 10 Nov 2026 07:30:00 GMT")]),
    );
    feeds.put("wire-a.xml", direct_item("wirea", STORY));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Google News: tariffs", feeds.url("gnews.xml")),
            ("Wire A", feeds.url("wire-a.xml")),
        ],
        "",
    );
    let db = dir.path().join("tradefeed.db");
    fetch(&config, "Google News: tariffs");
    fetch(&config, "Wire A");
    let google = placed(&db, "Google News: tariffs")[0].1;
    assert_eq!(placed(&db, "Wire A")[0].1, google);
    assert_eq!(evidence(&db, STORY), "same headline as a title-only copy");
    // The copy with text represents the story.
    let titles: Vec<(String, i64)> = row_pairs(
        &db,
        &format!("SELECT title, length(text) FROM stories WHERE id = {google}"),
    );
    assert_eq!(titles[0].0, STORY);
    assert!(titles[0].1 > 200, "{titles:?}");
}

/// The scene of the fold tests: Google News's title-only copy of [`STORY`] (07:30), Outlet B's
/// copy with text under a headline of its own (`outlet_date`), the wire's original under
/// [`STORY`] (08:00), and `others` (file, source name, feed) served and configured after the
/// Google News search, whose `priority` is `google_priority` when given. Returns the server,
/// the config's folder and the config's path.
async fn fold_scene(
    outlet_date: &str,
    others: Vec<(&str, &str, Resource)>,
    google_priority: Option<i32>,
) -> (FeedServer, tempfile::TempDir, std::path::PathBuf) {
    let feeds = FeedServer::start().await;
    feeds.put(
        "gnews.xml",
        google_news(&[(STORY, "Reuters", "Tue, 10 Nov 2026 07:30:00 GMT")]),
    );
    feeds.put(
        "outlet-b.xml",
        direct_item_at(
            "outletb",
            "Taipei offers to lower duties on US pork and cars",
            &wire_text("outletb"),
            outlet_date,
        ),
    );
    feeds.put("wire-a.xml", direct_item("wirea", STORY));
    let mut sources = vec![("Google News: tariffs", feeds.url("gnews.xml"))];
    for (file, name, feed) in others {
        feeds.put(file, feed);
        sources.push((name, feeds.url(file)));
    }
    sources.push(("Outlet B", feeds.url("outlet-b.xml")));
    sources.push(("Wire A", feeds.url("wire-a.xml")));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sources, "");
    if let Some(priority) = google_priority {
        let gnews = feeds.url("gnews.xml");
        let text = std::fs::read_to_string(&config).unwrap();
        let prioritised = common::replaced(
            &text,
            &format!("url = \"{gnews}\"\n"),
            &format!("url = \"{gnews}\"\npriority = {priority}\n"),
        );
        std::fs::write(&config, prioritised).unwrap();
    }
    (feeds, dir, config)
}

/// The Google News copy first, then an outlet's copy under a headline of its own (a story of
/// its own: no text to compare with), then the wire original: it joins the outlet's copy by
/// its text, and carries the Google News copy's headline, so the story that copy started is
/// folded in. Without the fold, the three were two stories, and which way it went depended
/// on the order of polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_news_story_is_folded_into_the_story_the_copy_with_its_headline_joins() {
    // The outlet's copy dated after the wire's, the wire's after Google's: the story's first
    // publication ends at the earliest of the three, whatever moved it last.
    let (_feeds, dir, config) = fold_scene("Tue, 10 Nov 2026 10:00:00 GMT", Vec::new(), None).await;
    let db = dir.path().join("tradefeed.db");
    fetch(&config, "Google News: tariffs");
    fetch(&config, "Outlet B");
    let google = placed(&db, "Google News: tariffs")[0].1;
    let outlet = placed(&db, "Outlet B")[0].1;
    assert_ne!(google, outlet, "no text to compare yet: two stories");
    fetch(&config, "Wire A");
    assert_eq!(placed(&db, "Wire A")[0].1, outlet, "joined by its text");
    assert_eq!(
        placed(&db, "Google News: tariffs")[0].1,
        outlet,
        "the Google News copy's story folded in"
    );
    let stories: Vec<(i64, i64)> = row_pairs(&db, "SELECT id, published FROM stories");
    assert_eq!(stories.len(), 1, "{stories:?}");
    // No key is left naming the folded story (the prune after `fetch` clears any).
    let orphans: Vec<(i64, i64)> = row_pairs(
        &db,
        "SELECT count(*), 0 FROM story_keys WHERE story_id NOT IN (SELECT id FROM stories)",
    );
    assert_eq!(orphans[0].0, 0);
    // The story's first publication is the earliest of its copies': Google News's 07:30.
    assert_eq!(stories[0].1, 1_794_295_800, "{stories:?}");
    let topics: Vec<(i64, String)> = row_pairs(&db, "SELECT story_id, topic FROM story_topics");
    assert!(
        topics.iter().all(|(story, _)| *story == outlet),
        "{topics:?}"
    );
    assert_eq!(
        evidence(&db, &format!("{STORY} - Reuters")),
        "same headline as a copy with text (folded in after it)"
    );
}

/// The folded story's copy represents the story when its source has the higher priority, as it
/// would have had it arrived after the copies with text (a title-only copy takes over a story
/// with text only so): its title, link and topic scores, and the story's `updated` moves.
/// Without a priority the story keeps its representative (the test above).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folded_google_news_copy_of_higher_priority_represents_the_story() {
    let (_feeds, dir, config) =
        fold_scene("Tue, 10 Nov 2026 08:00:00 GMT", Vec::new(), Some(5)).await;
    let db = dir.path().join("tradefeed.db");
    fetch(&config, "Google News: tariffs");
    fetch(&config, "Outlet B");
    let outlet = placed(&db, "Outlet B")[0].1;
    let before: Vec<(String, i64)> = row_pairs(
        &db,
        &format!("SELECT title, updated FROM stories WHERE id = {outlet}"),
    );
    assert_eq!(
        before[0].0,
        "Taipei offers to lower duties on US pork and cars"
    );
    let scores = |story: i64| -> Vec<(String, f64)> {
        row_pairs(
            &db,
            &format!(
                "SELECT topic, score FROM story_topics WHERE story_id = {story} ORDER BY topic"
            ),
        )
    };
    let google_scores = scores(placed(&db, "Google News: tariffs")[0].1);
    assert!(!google_scores.is_empty());
    assert_ne!(
        google_scores,
        scores(outlet),
        "the headline alone scores otherwise than the outlet's text"
    );
    // `updated` is in seconds: the takeover's must be a later one.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    fetch(&config, "Wire A");
    assert_eq!(
        placed(&db, "Google News: tariffs")[0].1,
        outlet,
        "folded in"
    );
    let represented: Vec<(String, String)> = row_pairs(
        &db,
        &format!(
            "SELECT st.title, s.name FROM stories st JOIN entries e ON e.id = st.representative
               JOIN sources s ON s.id = e.source_id WHERE st.id = {outlet}"
        ),
    );
    assert_eq!(
        represented,
        [(
            format!("{STORY} - Reuters"),
            "Google News: tariffs".to_string()
        )],
        "the copy of the higher priority represents the story"
    );
    let link: Vec<(String, i64)> = row_pairs(
        &db,
        &format!("SELECT link, updated FROM stories WHERE id = {outlet}"),
    );
    assert!(
        link[0].0.starts_with("https://news.google.com/"),
        "{link:?}"
    );
    assert!(link[0].1 > before[0].1, "{link:?} {before:?}");
    // The folded story's scores came with its copy, which represents the story now; none are
    // left for a deleted story.
    assert_eq!(scores(outlet), google_scores);
    let topics: Vec<(i64, String)> = row_pairs(&db, "SELECT story_id, topic FROM story_topics");
    assert!(
        topics.iter().all(|(story, _)| *story == outlet),
        "{topics:?}"
    );
    let stories: Vec<(i64, i64)> = row_pairs(&db, "SELECT id, 0 FROM stories");
    assert_eq!(stories.len(), 1, "{stories:?}");
}

/// A Google News story that a copy with text has joined by its headline is a story with text,
/// even while the Google copy represents it (its source's priority is higher): another copy
/// with the headline that joins a third story by its text does not fold it in there (two
/// stories with text are never joined on their headlines).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_news_story_holding_a_copy_with_text_is_not_folded() {
    // A brief under the headline: it joins the Google story by its headline, and its text is
    // too short to be a near-copy of the full wire text.
    let brief = direct_item_at(
        "briefs",
        STORY,
        "Taiwan will offer to cut tariffs on some US goods, a minister said.",
        "Tue, 10 Nov 2026 07:45:00 GMT",
    );
    let (_feeds, dir, config) = fold_scene(
        "Tue, 10 Nov 2026 08:00:00 GMT",
        vec![("brief.xml", "Briefs", brief)],
        Some(5),
    )
    .await;
    let db = dir.path().join("tradefeed.db");
    fetch(&config, "Google News: tariffs");
    fetch(&config, "Briefs");
    let google = placed(&db, "Google News: tariffs")[0].1;
    assert_eq!(placed(&db, "Briefs")[0].1, google, "joined by its headline");
    fetch(&config, "Outlet B");
    fetch(&config, "Wire A");
    let outlet = placed(&db, "Outlet B")[0].1;
    assert_ne!(outlet, google);
    assert_eq!(placed(&db, "Wire A")[0].1, outlet, "joined by its text");
    assert_eq!(
        placed(&db, "Google News: tariffs")[0].1,
        google,
        "a story with text is not folded on a headline"
    );
    assert_eq!(placed(&db, "Briefs")[0].1, google);
}

/// A headline that recurs: a newer story with text and the same headline takes the headline
/// key over from the old one, so its aggregator copies join it, not the old story (whose
/// window is over) nor a story of their own. An old copy polled late cannot pull the key back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recurring_headline_leads_aggregator_copies_to_its_newest_story() {
    let feeds = FeedServer::start().await;
    let dated = |outlet: &str, date: &str, text: &str| {
        Resource::feed(common::rss(
            outlet,
            &[(
                &format!("{outlet}-{}", date.len()),
                &format!("https://{outlet}.example/{}", date.replace(' ', "-")),
                STORY,
                text,
                date,
            )],
        ))
    };
    feeds.put(
        "old.xml",
        dated(
            "wirea",
            "Tue, 10 Nov 2026 08:00:00 GMT",
            &wire_text("wirea"),
        ),
    );
    feeds.put(
        "new.xml",
        dated(
            "daily",
            "Fri, 20 Nov 2026 08:00:00 GMT",
            "A second round: the economy ministry in Taipei published a fresh list of goods on              Friday, adding semiconductors equipment, optical parts and frozen seafood to the              items whose duties it proposes to lower, after the first talks in Washington ended              without agreement on chips, officials of the trade office said in a briefing.",
        ),
    );
    feeds.put(
        "gnews.xml",
        google_news(&[(STORY, "Focus Taiwan", "Fri, 20 Nov 2026 09:00:00 GMT")]),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Old", feeds.url("old.xml")),
            ("New", feeds.url("new.xml")),
            ("Google News", feeds.url("gnews.xml")),
        ],
        "",
    );
    let db = dir.path().join("tradefeed.db");
    for source in ["Old", "New", "Google News"] {
        fetch(&config, source);
    }
    let old = placed(&db, "Old")[0].1;
    let new = placed(&db, "New")[0].1;
    assert_ne!(old, new, "ten days apart, other text: two stories");
    assert_eq!(
        placed(&db, "Google News")[0].1,
        new,
        "the copy joins the newest story"
    );
}

/// Title-only copies never near-match (their headline is compared exactly instead): two news
/// searches' items about different products under one headline template are two stories, in
/// two feeds or in one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn title_only_copies_of_templated_headlines_stay_apart() {
    let steel = "US raises tariffs on Chinese steel pipes and tubes to 50%";
    let copper = "US raises tariffs on Chinese copper pipes and tubes to 50%";
    // Dated within the hour: the near-duplicate index holds the stories of the last week.
    let recent = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc2822();
    let feeds = FeedServer::start().await;
    feeds.put("one.xml", google_news(&[(steel, "Reuters", &recent)]));
    feeds.put("two.xml", google_news(&[(copper, "Bloomberg", &recent)]));
    feeds.put(
        "both.xml",
        google_news(&[
            (steel, "Financial Times", &recent),
            (copper, "CNBC", &recent),
        ]),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("One", feeds.url("one.xml")),
            ("Two", feeds.url("two.xml")),
            ("Both", feeds.url("both.xml")),
        ],
        "",
    );
    let db = dir.path().join("tradefeed.db");
    // All three in one pass of one process: the stories of the poll written first are in the
    // in-memory index when the others are looked up (a new process rebuilds it from the store,
    // which leaves title-only copies out too).
    let out = tradefeed_command(&config, &["fetch"]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, i64)> = row_pairs(&db, "SELECT title, story_id FROM entries");
    let story_of = |needle: &str| {
        let stories: std::collections::BTreeSet<i64> = rows
            .iter()
            .filter(|(title, _)| title.contains(needle))
            .map(|(_, story)| *story)
            .collect();
        assert_eq!(stories.len(), 1, "{needle}: {rows:?}");
        stories.into_iter().next().unwrap()
    };
    assert_ne!(story_of("steel"), story_of("copper"), "{rows:?}");

    // And one feed per process (each `fetch` rebuilds the index from the store): a title-only
    // copy is not looked up whichever process stored the other.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[("One", feeds.url("one.xml")), ("Two", feeds.url("two.xml"))],
        "",
    );
    fetch(&config, "One");
    fetch(&config, "Two");
    let stories: Vec<(i64, i64)> = row_pairs(
        &dir.path().join("tradefeed.db"),
        "SELECT count(DISTINCT story_id), 0 FROM entries",
    );
    assert_eq!(stories[0].0, 2, "one story per product");
}

/// One poll that stores a title-only copy (a new story) and then a copy with its headline
/// that joins another story by its text folds the new story away: the poll's report counts
/// no new story, as none is left (it counted the folded one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_created_and_folded_in_one_poll_is_not_counted_as_new() {
    let feeds = FeedServer::start().await;
    feeds.put(
        "outlet-b.xml",
        direct_item(
            "outletb",
            "Taipei offers to lower duties on US pork and cars",
        ),
    );
    // An aggregator's feed: a search result (title-only, in Google's format) and the wire
    // copy under the same headline. A poll writes a feed's items newest first, so the
    // search result, dated later, is written first.
    let search_xml =
        String::from_utf8(google_news(&[(STORY, "Reuters", "Tue, 10 Nov 2026 08:30:00 GMT")]).body)
            .unwrap();
    let wire_item = format!(
        "<item><guid>wire-1</guid><link>https://wirea.example/taiwan-tariffs</link>\
         <title>{STORY}</title><description>{}</description>\
         <pubDate>Tue, 10 Nov 2026 08:00:00 GMT</pubDate></item>\n<item>",
        wire_text("wirea")
    );
    feeds.put(
        "aggregator.xml",
        Resource::feed(search_xml.replacen("<item>", &wire_item, 1)),
    );
    let dir = tempfile::tempdir().unwrap();
    let sources = [
        ("Outlet B", feeds.url("outlet-b.xml")),
        ("Aggregator", feeds.url("aggregator.xml")),
    ];
    let config_path = write_config(dir.path(), &sources, "");
    fetch(&config_path, "Outlet B");
    let db = dir.path().join("tradefeed.db");
    let outlet = placed(&db, "Outlet B")[0].1;
    let config = tradefeed::config::Config::load(&config_path).unwrap();
    let reports = common::fetch_pass(&config).await;
    let aggregator = reports.iter().find(|r| r.source == "Aggregator").unwrap();
    let placed_now = placed(&db, "Aggregator");
    assert_eq!(
        evidence(&db, &format!("{STORY} - Reuters")),
        "same headline as a copy with text (folded in after it)",
        "the search result started a story in the poll, folded away by the wire copy"
    );
    assert_eq!(placed_now.len(), 2, "{placed_now:?}");
    assert!(
        placed_now.iter().all(|(_, story)| *story == outlet),
        "both copies in the outlet's story: {placed_now:?}"
    );
    let stories: Vec<(i64, i64)> = row_pairs(&db, "SELECT count(*), 0 FROM stories");
    assert_eq!(stories[0].0, 1);
    assert_eq!(
        (aggregator.new_entries, aggregator.new_stories),
        (2, 0),
        "{reports:?}"
    );
}

/// A feed's second item under its first item's headline that the first item's story refuses
/// (the same-feed rule: a text changed in three words or more is another item, not an edit)
/// does not join that story through the headline key a Google News copy of the first item
/// stored: refused by its text, it is refused by its headline too, and starts a story of its
/// own. Whether its text is near enough to be the index's candidate for that story (a
/// correction of four words) or not at all (another story under a recurring headline).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_its_own_feed_refuses_does_not_join_by_a_title_only_headline_key() {
    let first = wire_text("wirea");
    let corrected = first.replace(
        "the economy ministry said on Monday",
        "the foreign trade office announced late on Tuesday",
    );
    let other_text = "wirea - Vietnam will lower import duties on ethanol, almonds and \
        apples from the United States, its trade ministry said, as Hanoi seeks to narrow a \
        surplus that has drawn threats of higher tariffs from Washington. The decree takes \
        effect in January and covers goods worth about $2 billion a year, customs data show. \
        Read more at wirea."
        .to_string();
    for second in [corrected, other_text] {
        assert_ne!(first, second);
        own_feed_refusal_holds_through_a_headline_key(&first, &second).await;
    }
}

async fn own_feed_refusal_holds_through_a_headline_key(first: &str, second: &str) {
    let feeds = FeedServer::start().await;
    let item = |guid: &str, text: &str, date: &str| {
        format!(
            "<item><guid>{guid}</guid><link>https://wirea.example/{guid}</link>\
             <title>{STORY}</title><description>{text}</description>\
             <pubDate>{date}</pubDate></item>\n"
        )
    };
    let channel = |items: &str| {
        Resource::feed(format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Wire A</title>\
             <link>https://wirea.example/</link><description>w</description>\n{items}\
             </channel></rss>\n"
        ))
    };
    feeds.put(
        "wire-a.xml",
        channel(&item("w1", first, "Tue, 10 Nov 2026 08:00:00 GMT")),
    );
    feeds.put(
        "gnews.xml",
        google_news(&[(STORY, "Reuters", "Tue, 10 Nov 2026 08:10:00 GMT")]),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Wire A", feeds.url("wire-a.xml")),
            ("Google News: tariffs", feeds.url("gnews.xml")),
        ],
        "",
    );
    let db = dir.path().join("tradefeed.db");
    fetch(&config, "Wire A");
    fetch(&config, "Google News: tariffs");
    let story = placed(&db, "Wire A")[0].1;
    assert_eq!(placed(&db, "Google News: tariffs")[0].1, story);
    feeds.put(
        "wire-a.xml",
        channel(&format!(
            "{}{}",
            item("w2", second, "Tue, 10 Nov 2026 12:00:00 GMT"),
            item("w1", first, "Tue, 10 Nov 2026 08:00:00 GMT")
        )),
    );
    fetch(&config, "Wire A");
    let rows: Vec<(String, String)> = row_pairs(
        &db,
        "SELECT link, evidence FROM entries WHERE link LIKE '%/w2'",
    );
    let stories: Vec<(String, i64)> = row_pairs(
        &db,
        "SELECT link, story_id FROM entries WHERE link LIKE 'https://wirea%' ORDER BY link",
    );
    assert_ne!(stories[0].1, stories[1].1, "{stories:?} {rows:?}");
    assert_eq!(
        rows,
        [(
            "https://wirea.example/w2".to_string(),
            "first appearance".to_string()
        )]
    );
}

/// One aggregator feed's copies of one headline from several publishers are one story, in one
/// poll and over two: a title-only copy is not held to the same-feed rule (its "text" is its
/// headline and its publisher's name, which differ between such copies by more than an edit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aggregator_s_copies_of_one_headline_from_several_publishers_are_one_story() {
    let feeds = FeedServer::start().await;
    let first_poll = [
        (STORY, "Reuters", "Tue, 10 Nov 2026 07:30:00 GMT"),
        (
            STORY,
            "South China Morning Post",
            "Tue, 10 Nov 2026 07:40:00 GMT",
        ),
    ];
    feeds.put("gnews.xml", google_news(&first_poll));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[("Google News: tariffs", feeds.url("gnews.xml"))],
        "",
    );
    let db = dir.path().join("tradefeed.db");
    fetch(&config, "Google News: tariffs");
    let mut second_poll = vec![(
        STORY,
        "The Straits Times Singapore",
        "Tue, 10 Nov 2026 08:10:00 GMT",
    )];
    second_poll.extend(first_poll);
    feeds.put("gnews.xml", google_news(&second_poll));
    fetch(&config, "Google News: tariffs");
    let copies = placed(&db, "Google News: tariffs");
    assert_eq!(copies.len(), 3, "{copies:?}");
    assert!(
        copies.iter().all(|(_, story)| *story == copies[0].1),
        "{copies:?}"
    );
}
