//! Web pages configured as sources: the poll's error names the feeds the page advertises, and
//! `tradefeed discover URL` lists them (or says the URL is a feed).

mod common;

use std::process::Output;

use common::{FeedServer, Resource, write_config};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn html(body: &str) -> Resource {
    Resource {
        content_type: "text/html; charset=utf-8".into(),
        ..Resource::feed(body)
    }
}

/// A press-release page as a CMS serves it: its feeds in the head, relative and absolute, a
/// comments feed, other alternates that are not feeds.
fn press_page(server: &FeedServer) -> Resource {
    html(&format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Press releases | Trade Ministry</title>
<link rel="stylesheet" href="/style.css">
<link rel="alternate" hreflang="fr" type="text/html" href="/fr/press">
<link rel="alternate" type="application/rss+xml" title="Press releases" href="feed.xml">
<link rel="alternate" type="application/atom+xml" title="Comments &amp; replies" href="{}">
</head><body><h1>Press releases</h1><p>Tariffs on steel</p></body></html>"#,
        server.url("comments.atom")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_configured_with_a_web_page_records_an_error_naming_the_feeds_it_advertises() {
    let server = FeedServer::start().await;
    server.put("news/press", press_page(&server));
    server.put("news/feed.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("Ministry", server.url("news/press"))], "");

    let o = common::tradefeed_command(&config, &["fetch"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let expected = format!(
        "not a feed: an HTML page; it advertises: {} (RSS \"Press releases\"), {} (Atom \
         \"Comments & replies\"); set the source's url to one of them",
        server.url("news/feed.xml"),
        server.url("comments.atom")
    );
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("Ministry") && l.ends_with(&format!("FAILED parse: {expected}"))),
        "fetch names the advertised feeds under the `parse` outcome: {out}"
    );
    // The operator chooses: the source's URL is not switched, nor the feed polled.
    assert_eq!(server.hits("news/feed.xml"), 0);

    // The same error is what the database keeps: the fetch log and the source's last error
    // (which `sources` and the status page show).
    let db = dir.path().join("tradefeed.db");
    let logged: Vec<(String, String)> =
        common::row_pairs(&db, "SELECT outcome, error FROM fetches");
    assert_eq!(logged, [("parse".to_string(), expected.clone())]);
    let o = common::tradefeed_command(&config, &["sources"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("  ! last error: {expected}")),
        "{}",
        stdout(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_advertising_no_feed_says_so_and_other_non_feeds_keep_their_error() {
    let server = FeedServer::start().await;
    server.put(
        "home",
        html("<!doctype html><html><head><title>Home</title></head><body>Hi</body></html>"),
    );
    server.put("garbage", html("Service temporarily unavailable"));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Home", server.url("home")),
            ("Garbage", server.url("garbage")),
        ],
        "",
    );
    let o = common::tradefeed_command(&config, &["fetch"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.lines().any(|l| l.starts_with("Home")
            && l.contains("FAILED parse: not a feed: an HTML page, which advertises no feed")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with("Garbage")
            && l.ends_with("FAILED parse: not a feed: body starts with neither '<' nor '{'")),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_lists_a_pages_feeds_one_per_line_and_exits_0() {
    let server = FeedServer::start().await;
    server.put("news/press", press_page(&server));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[], "");
    let o = common::tradefeed_command(&config, &["discover", &server.url("news/press")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "{} (RSS \"Press releases\")\n{} (Atom \"Comments & replies\")\n",
            server.url("news/feed.xml"),
            server.url("comments.atom")
        )
    );

    // --toml: blocks that, appended to a config, make a valid one with those sources.
    let o = common::tradefeed_command(&config, &["discover", "--toml", &server.url("news/press")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&stdout(&o));
    std::fs::write(&config, text).unwrap();
    let parsed = tradefeed::config::Config::load(&config).unwrap();
    let sources: Vec<(&str, &str)> = parsed
        .sources
        .iter()
        .map(|s| (s.name.as_str(), s.url.as_str()))
        .collect();
    let (feed, comments) = (server.url("news/feed.xml"), server.url("comments.atom"));
    assert_eq!(
        sources,
        [
            ("Press releases", feed.as_str()),
            ("Comments & replies", comments.as_str())
        ]
    );
}

/// `feed://host/rss` and `feed:https://host/rss` links are listed as the http(s) URLs they
/// stand for, as `import-opml` reads them, and `--toml` blocks with them load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_reads_feed_pseudo_scheme_links_as_import_opml_does() {
    let server = FeedServer::start().await;
    let (feed, comments) = (server.url("news/feed.xml"), server.url("comments.atom"));
    let host = feed.split_once("://").unwrap().1.split('/').next().unwrap();
    server.put(
        "news/press",
        html(&format!(
            r#"<!DOCTYPE html><html><head><title>Press</title>
<link rel="alternate" type="application/rss+xml" title="Press releases" href="feed://{host}/news/feed.xml">
<link rel="alternate" type="application/atom+xml" title="Comments" href="feed:{comments}">
</head><body></body></html>"#
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[], "");
    let o = common::tradefeed_command(&config, &["discover", &server.url("news/press")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        format!("{feed} (RSS \"Press releases\")\n{comments} (Atom \"Comments\")\n")
    );

    let o = common::tradefeed_command(&config, &["discover", "--toml", &server.url("news/press")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let base = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{base}{}", stdout(&o))).unwrap();
    let parsed = tradefeed::config::Config::load(&config).unwrap();
    let urls: Vec<&str> = parsed.sources.iter().map(|s| s.url.as_str()).collect();
    assert_eq!(urls, [feed.as_str(), comments.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_says_when_the_url_is_a_feed_and_exits_1_when_nothing_is_found() {
    let server = FeedServer::start().await;
    server.put("feed.xml", common::steel_duties_feed());
    server.put(
        "home",
        html("<!doctype html><html><head><title>Home</title></head><body>Hi</body></html>"),
    );
    server.put("text", html("just text"));
    // No config file: the default limits apply.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("absent.toml");
    let run = |url: String| {
        common::tradefeed_command(&config, &["discover", &url])
            .output()
            .unwrap()
    };

    let o = run(server.url("feed.xml"));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(&format!("{} is a feed: \"", server.url("feed.xml")))
            && out
                .trim_end()
                .ends_with("items; use it as the source's url"),
        "{out}"
    );
    let feed = tradefeed::parse::parse_feed(&common::steel_duties_feed().body, None).unwrap();
    assert!(
        out.contains(&format!(", {} items;", feed.items.len())),
        "{out}"
    );

    let o = run(server.url("home"));
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("is an HTML page that advertises no feed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");

    let o = run(server.url("text"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is neither a feed nor an HTML page: not a feed"),
        "{}",
        stderr(&o)
    );

    let o = run(server.url("missing"));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("HTTP 404"), "{}", stderr(&o));

    let o = run("ftp://example.org/feed".into());
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("invalid url"), "{}", stderr(&o));

    // Refused (the config only warns of it), though the `url` crate reads it as the feed's URL.
    let typo = server.url("feed.xml").replacen("://", ":///", 1);
    let o = run(typo.clone());
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(&format!(
            "invalid url: {typo:?} has no host between \"//\" and the next slash (it would be \
             read as {:?})",
            server.url("feed.xml")
        )),
        "{}",
        stderr(&o)
    );
    assert_eq!(server.hits("feed.xml"), 1, "the typo was not fetched");
}

/// The `[[sources]]` names `discover --toml` printed, appended to `base` (a config's text):
/// the config that makes must load, and its source names are returned in order.
fn names_after_appending(config: &std::path::Path, base: &str, printed: &str) -> Vec<String> {
    std::fs::write(config, format!("{base}{printed}")).unwrap();
    let parsed = tradefeed::config::Config::load(config)
        .unwrap_or_else(|e| panic!("the printed blocks do not load: {e}\n{base}{printed}"));
    parsed.sources.into_iter().map(|s| s.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_toml_prints_names_unique_among_themselves_and_against_the_configs_sources() {
    let server = FeedServer::start().await;
    // One title twice (an RSS and an Atom copy), a title the config already uses, no title.
    server.put(
        "blog",
        html(
            r#"<!DOCTYPE html><html><head><title>Blog</title>
<link rel="alternate" type="application/rss+xml" title="Trade blog" href="/blog/feed/">
<link rel="alternate" type="application/atom+xml" title="Trade blog" href="/blog/feed/atom/">
<link rel="alternate" type="application/rss+xml" title="Ministry" href="/blog/ministry.xml">
<link rel="alternate" type="application/feed+json" href="/blog/feed.json">
</head><body></body></html>"#,
        ),
    );
    server.put("feed.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Ministry", server.url("elsewhere.xml")),
            ("A", server.url("other.xml")),
        ],
        "",
    );
    let base = std::fs::read_to_string(&config).unwrap();
    let host = server.url("").split_once("://").unwrap().1.to_owned();
    let json = server.url("blog/feed.json");

    let o = common::tradefeed_command(&config, &["discover", "--toml", &server.url("blog")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stderr(&o), "");
    assert_eq!(
        names_after_appending(&config, &base, &stdout(&o)),
        [
            "Ministry".to_string(),
            "A".into(),
            "Trade blog".into(),
            format!("Trade blog ({host}blog/feed/atom/)"),
            format!("Ministry ({host}blog/ministry.xml)"),
            json.clone(),
        ]
    );

    // A feed URL whose title (`A`) the config uses.
    std::fs::write(&config, &base).unwrap();
    let o = common::tradefeed_command(&config, &["discover", "--toml", &server.url("feed.xml")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        names_after_appending(&config, &base, &stdout(&o))[2],
        format!("A ({host}feed.xml)")
    );

    // A config that does not load: said on stderr, and the names still differ among
    // themselves (the config's own names cannot be known).
    std::fs::write(&config, format!("{base}[[sources]]\nname = \"broken\"\n")).unwrap();
    let o = common::tradefeed_command(&config, &["discover", "--toml", &server.url("blog")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("warning: the config does not load")
            && stderr(&o).contains("checked only against each other"),
        "{}",
        stderr(&o)
    );
    let empty = write_config(dir.path(), &[], "");
    let empty_base = std::fs::read_to_string(&empty).unwrap();
    assert_eq!(
        names_after_appending(&empty, &empty_base, &stdout(&o)),
        [
            "Trade blog".to_string(),
            format!("Trade blog ({host}blog/feed/atom/)"),
            "Ministry".into(),
            json,
        ]
    );
}

/// A feed the config already has, under its own name or another (its URL spelt another way
/// too), gets a comment naming its source instead of a `[[sources]]` block: the output still
/// appends to a valid config, and no URL is configured twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_toml_prints_no_block_for_a_feed_already_configured_but_names_its_source() {
    let server = FeedServer::start().await;
    server.put(
        "blog",
        html(
            r#"<!DOCTYPE html><html><head><title>Blog</title>
<link rel="alternate" type="application/rss+xml" title="Trade blog" href="/blog/feed/">
<link rel="alternate" type="application/rss+xml" title="Ministry" href="/blog/ministry.xml">
<link rel="alternate" type="application/atom+xml" title="Trade blog" href="/blog/feed/atom/">
</head><body></body></html>"#,
        ),
    );
    server.put("feed.xml", common::steel_duties_feed());
    let (blog, ministry, atom) = (
        server.url("blog/feed/"),
        server.url("blog/ministry.xml"),
        server.url("blog/feed/atom/"),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Trade blog", blog.clone()),
            // The same URL as the page's, spelt with an upper-case scheme.
            ("Old ministry", ministry.replace("http://", "HTTP://")),
            ("Steel", server.url("feed.xml")),
        ],
        "",
    );
    let base = std::fs::read_to_string(&config).unwrap();

    let o = common::tradefeed_command(&config, &["discover", "--toml", &server.url("blog")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let host = server.url("").split_once("://").unwrap().1.to_owned();
    assert_eq!(
        stdout(&o),
        format!(
            "# {blog} is already configured, as source \"Trade blog\"\n\n\
             # {ministry} is already configured, as source \"Old ministry\"\n\n\
             [[sources]]\nname = \"Trade blog ({host}blog/feed/atom/)\"\nurl = \"{atom}\"\n\n"
        )
    );
    assert_eq!(
        names_after_appending(&config, &base, &stdout(&o)),
        [
            "Trade blog".to_string(),
            "Old ministry".into(),
            "Steel".into(),
            format!("Trade blog ({host}blog/feed/atom/)"),
        ]
    );

    // A feed URL given directly, already configured.
    std::fs::write(&config, &base).unwrap();
    let o = common::tradefeed_command(&config, &["discover", "--toml", &server.url("feed.xml")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "# {} is already configured, as source \"Steel\"\n\n",
            server.url("feed.xml")
        )
    );

    // A configured URL that has moved permanently: the block would name the new URL, and the
    // config would then poll the feed twice, under two names.
    server.put(
        "old-steel.xml",
        common::Resource {
            status: 301,
            body: Vec::new(),
            content_type: "text/plain".into(),
            headers: vec![("Location".into(), server.url("feed.xml"))],
        },
    );
    std::fs::write(
        &config,
        format!(
            "{base}\n[[sources]]\nname = \"Old steel\"\nurl = \"{}\"\n",
            server.url("old-steel.xml")
        ),
    )
    .unwrap();
    let moved_config = std::fs::read_to_string(&config).unwrap();
    let moved_config = common::replaced(
        &moved_config,
        &format!("name = \"Steel\"\nurl = \"{}\"", server.url("feed.xml")),
        &format!("name = \"Steel\"\nurl = \"{}\"", server.url("other.xml")),
    );
    std::fs::write(&config, &moved_config).unwrap();
    let o = common::tradefeed_command(
        &config,
        &["discover", "--toml", &server.url("old-steel.xml")],
    )
    .output()
    .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "# {} is already configured, as source \"Old steel\"\n\n",
            server.url("old-steel.xml")
        )
    );
}
