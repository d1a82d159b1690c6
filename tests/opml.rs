//! OPML import and export through the real binary, and `/sources.opml` from a daemon started
//! in-process.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use quick_xml::events::Event;
use tokio_util::sync::CancellationToken;
use tradefeed::app;
use tradefeed::config::Config;

/// The shipped config: real comments, alignment and blank lines to preserve.
const SHIPPED_CONFIG: &str = include_str!("../config/tradefeed.toml");

/// A feed reader's export: a top-level feed, folders two deep, a `category` attribute, one URL
/// already configured (spelled with an upper-case host), one name already configured, one
/// feed listed in two folders, two different feeds sharing a title, and a non-http URL.
const SUBSCRIPTIONS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline type="rss" text="EU trade news" title="EU trade news" xmlUrl="https://policy.example.eu/trade.rss"/>
    <outline text="Asia">
      <outline text="Japan">
        <outline type="rss" text="METI releases" xmlUrl="https://meti.example.jp/rss.xml"/>
      </outline>
      <outline type="rss" text="Asia markets" xmlUrl="https://asia.example.com/feed" category="/markets"/>
      <outline type="rss" text="Asia markets" xmlUrl="https://other.example.com/asia"/>
    </outline>
    <outline text="Official">
      <outline type="rss" text="WTO (again)" xmlUrl="https://WWW.WTO.ORG/library/rss/latest_news_e.xml"/>
      <outline type="rss" text="BBC Business" xmlUrl="https://example.org/not-the-bbc.xml"/>
      <outline type="rss" text="METI copy" xmlUrl="https://meti.example.jp/rss.xml"/>
      <outline type="rss" text="Gopher" xmlUrl="gopher://old.example/feed"/>
    </outline>
  </body>
</opml>
"#;

fn tradefeed(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tradefeed"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("TRADEFEED_CONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the tradefeed binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temp folder holding a copy of the shipped config and the given OPML.
fn setup(opml: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tradefeed.toml");
    std::fs::write(&config, SHIPPED_CONFIG).unwrap();
    let subs = dir.path().join("subs.opml");
    std::fs::write(&subs, opml).unwrap();
    (dir, config, subs)
}

fn names_and_tags(config: &Config) -> Vec<(String, String, Vec<String>)> {
    config
        .sources
        .iter()
        .map(|s| (s.name.clone(), s.url.clone(), s.tags.clone()))
        .collect()
}

fn folder_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn importing_into_the_commented_config_keeps_every_existing_byte_and_appends_valid_sources() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, config, subs) = setup(SUBSCRIPTIONS);
    let before = Config::load(&config).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).unwrap();

    let out = tradefeed(&config, &["import-opml", subs.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a gopher URL was refused: {out:?}"
    );
    let report = stdout(&out);
    assert!(
        report.starts_with(
            "added 4, skipped 4 (already present: WTO (again), METI copy; name configured \
             with another URL, rename the outline to add it: BBC Business; invalid URL: Gopher: "
        ),
        "{report}"
    );

    let text = std::fs::read_to_string(&config).unwrap();
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the config keeps its permissions");
    assert!(
        text.starts_with(SHIPPED_CONFIG),
        "the original text is an untouched prefix"
    );
    let appended = &text[SHIPPED_CONFIG.len()..];
    assert!(
        appended.starts_with("\n# Imported from subs.opml on "),
        "{appended}"
    );

    let after = Config::load(&config).unwrap();
    assert_eq!(
        names_and_tags(&after)[..before.sources.len()],
        names_and_tags(&before)[..]
    );
    let s = |name: &str, url: &str, tags: &[&str]| {
        (
            name.to_string(),
            url.to_string(),
            tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        names_and_tags(&after)[before.sources.len()..],
        [
            s("EU trade news", "https://policy.example.eu/trade.rss", &[]),
            s(
                "METI releases",
                "https://meti.example.jp/rss.xml",
                &["Asia", "Japan"]
            ),
            s(
                "Asia markets",
                "https://asia.example.com/feed",
                &["Asia", "markets"]
            ),
            s(
                "Asia markets (2)",
                "https://other.example.com/asia",
                &["Asia"]
            ),
        ]
    );
    // New sources take the default schedule and settings.
    let added = after.sources.last().unwrap();
    assert!(added.enabled && added.cluster && added.priority == 0);
    assert_eq!(
        folder_entries(dir.path()),
        ["subs.opml", "tradefeed.toml"],
        "no temp file is left behind"
    );

    let check = tradefeed(&config, &["check"]);
    assert!(check.status.success(), "{}", stderr(&check));
}

#[test]
fn importing_the_same_list_again_adds_nothing_and_leaves_the_file_as_it_was() {
    let (_dir, config, subs) = setup(SUBSCRIPTIONS);
    tradefeed(&config, &["import-opml", subs.to_str().unwrap()]);
    let once = std::fs::read(&config).unwrap();

    let again = tradefeed(&config, &["import-opml", subs.to_str().unwrap()]);
    let report = stdout(&again);
    assert!(report.starts_with("added 0, skipped 8 (already present: EU trade news, METI releases, Asia markets, Asia markets, WTO (again), METI copy; name configured with another URL, rename the outline to add it: BBC Business; invalid URL: Gopher"), "{report}");
    assert_eq!(std::fs::read(&config).unwrap(), once);
}

#[test]
fn a_broken_opml_file_is_refused_with_its_name_and_problem_and_the_config_is_untouched() {
    let cases = [
        (
            "<opml version=\"2.0\"><body>\n<outline text=\"a\" xmlUrl=\"https://a.example/\">\n</body></opml>",
            "line 3",
        ),
        (
            "<html><body>not a subscription list</body></html>",
            "not <opml>",
        ),
        (
            "<opml><body><outline text=\"a\" xmlUrl=\"https://a.example/\"/>",
            "truncated",
        ),
        (
            "<!DOCTYPE opml [<!ENTITY boom \"boom\">]><opml><body/></opml>",
            "entities",
        ),
        ("", "no root element"),
    ];
    for (opml, problem) in cases {
        let (dir, config, subs) = setup(opml);
        let out = tradefeed(&config, &["import-opml", subs.to_str().unwrap()]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{opml}: {err}");
        assert!(
            err.contains(&subs.display().to_string()),
            "names the file: {err}"
        );
        assert!(
            err.contains(problem),
            "{opml}: {err} should say {problem:?}"
        );
        assert_eq!(std::fs::read_to_string(&config).unwrap(), SHIPPED_CONFIG);
        assert_eq!(folder_entries(dir.path()), ["subs.opml", "tradefeed.toml"]);
    }
}

#[test]
fn an_invalid_config_is_refused_before_anything_is_written() {
    let (_dir, config, subs) = setup(SUBSCRIPTIONS);
    let broken = SHIPPED_CONFIG.replace("retention_days = 180", "retention_dayz = 180");
    std::fs::write(&config, &broken).unwrap();
    let out = tradefeed(&config, &["import-opml", subs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("invalid before the import") && err.contains("retention_dayz"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), broken);
}

/// Feeds of an OPML document as (title, xmlUrl, category) read with quick-xml directly.
fn outlines(xml: &str) -> (String, String, Vec<(String, String, String)>) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut title, mut created, mut feeds) = (String::new(), String::new(), Vec::new());
    let mut current = String::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) => current = e.name().as_ref().to_string(),
            Event::Text(t) => {
                let text = t
                    .xml_content(quick_xml::XmlVersion::Implicit1_0)
                    .into_owned();
                match current.as_str() {
                    "title" => title.push_str(&text),
                    "dateCreated" => created.push_str(&text),
                    _ => {}
                }
            }
            Event::GeneralRef(r) => {
                let text = match r.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    other => panic!("unexpected entity {other}"),
                };
                if current == "title" {
                    title.push_str(text);
                }
            }
            Event::End(_) => current.clear(),
            Event::Empty(e) if e.name().as_ref() == "outline" => {
                let get = |key: &str| {
                    e.try_get_attribute(key)
                        .unwrap()
                        .map(|a| {
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .unwrap()
                                .into_owned()
                        })
                        .unwrap_or_default()
                };
                assert_eq!(get("type"), "rss");
                assert_eq!(get("text"), get("title"));
                feeds.push((get("title"), get("xmlUrl"), get("category")));
            }
            _ => {}
        }
    }
    (title, created, feeds)
}

#[test]
fn exported_opml_parses_back_to_exactly_the_configured_sources() {
    let (_dir, config, _subs) = setup("");
    let title_with_markup = SHIPPED_CONFIG.replace(
        "title = \"tradefeed — trade policy\"",
        "title = \"Trade & <policy> feeds\"",
    );
    std::fs::write(&config, &title_with_markup).unwrap();
    let out = tradefeed(&config, &["export-opml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let xml = stdout(&out);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">"));

    let (title, created, mut got) = outlines(&xml);
    assert_eq!(title, "Trade & <policy> feeds");
    let created = chrono::DateTime::parse_from_rfc2822(&created).unwrap();
    assert!((chrono::Utc::now() - created.to_utc()).num_seconds().abs() < 60);

    let loaded = Config::load(&config).unwrap();
    let mut want: Vec<(String, String, String)> = loaded
        .sources
        .iter()
        // Tags in the spec's form for a tag, without slashes (the shipped tags need no escape).
        .map(|s| (s.name.clone(), s.url.clone(), s.tags.join(",")))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // URLs with `&` (the Google News searches) survive escaping.
    assert!(
        got.iter()
            .any(|(_, url, _)| url.contains("&hl=en-US&gl=US"))
    );

    // And our own importer reads it back to the same sources, tags included.
    let back = tradefeed::opml::parse(xml.as_bytes(), "export").unwrap();
    let mut back: Vec<_> = back.into_iter().map(|f| (f.name, f.url, f.tags)).collect();
    let mut want: Vec<_> = names_and_tags(&loaded);
    back.sort();
    want.sort();
    assert_eq!(back, want);
}

#[tokio::test]
async fn the_daemon_serves_the_sources_still_in_its_config_as_opml() {
    let dir = tempfile::tempdir().unwrap();
    let both = [
        ("Alpha & Co", "http://127.0.0.1:9/a.xml".to_string()),
        ("Beta", "http://127.0.0.1:9/b.xml?x=1&y=2".to_string()),
    ];
    let mut served = Vec::new();
    for sources in [&both[..], &both[..1]] {
        let path = common::write_config(dir.path(), sources, "");
        let config = Config::load(&path).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(app::run(config, listener, cancel.clone()));

        let url = format!("http://{addr}/sources.opml");
        let response = reqwest::get(&url).await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/x-opml; charset=utf-8"
        );
        let body = response.text().await.unwrap();
        let (_, _, feeds) = outlines(&body);
        served.push(
            feeds
                .into_iter()
                .map(|(name, url, _)| (name, url))
                .collect::<Vec<_>>(),
        );

        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(10), handle)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
    let pairs = |s: &[(&str, String)]| -> Vec<(String, String)> {
        s.iter().map(|(n, u)| (n.to_string(), u.clone())).collect()
    };
    assert_eq!(served[0], pairs(&both), "both configured sources");
    assert_eq!(
        served[1],
        pairs(&both[..1]),
        "a source removed from the config is no longer listed"
    );
}

#[test]
fn a_symlinked_config_is_edited_at_its_target_and_stays_a_link() {
    let (dir, real, subs) = setup(SUBSCRIPTIONS);
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = tradefeed(&link, &["import-opml", subs.to_str().unwrap()]);
    assert!(stdout(&out).starts_with("added 4,"), "{out:?}");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let text = std::fs::read_to_string(&real).unwrap();
    assert!(text.starts_with(SHIPPED_CONFIG) && text.contains("name = \"METI releases\""));
}

#[test]
fn an_opml_nesting_folders_thousands_deep_is_refused_and_the_config_is_untouched() {
    // Every feed inside takes the whole folder path as tags: before the nesting limit this
    // 260 KB file made 9 million tags (2.4 GB of memory, a 78 MB config).
    let n = 3000;
    let mut opml = String::from("<opml version=\"2.0\"><body>\n");
    for i in 0..n {
        opml.push_str(&format!("<outline text=\"folder {i}\">"));
    }
    for i in 0..n {
        opml.push_str(&format!(
            "<outline text=\"feed {i}\" xmlUrl=\"https://h{i}.example/f\"/>"
        ));
    }
    opml.push_str(&"</outline>".repeat(n));
    opml.push_str("\n</body></opml>\n");
    let (dir, config, subs) = setup(&opml);
    let out = tradefeed(&config, &["import-opml", subs.to_str().unwrap()]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{}{err}", stdout(&out));
    assert!(
        err.contains(&format!(
            "{}: line 2: outlines nested more than 32 deep",
            subs.display()
        )),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), SHIPPED_CONFIG);
    assert_eq!(folder_entries(dir.path()), ["subs.opml", "tradefeed.toml"]);
}

#[test]
fn a_huge_folder_name_around_thousands_of_feeds_is_cut_and_the_config_stays_small() {
    // Every feed takes its folder's name as a tag: before names were cut, one 20 KB folder
    // name around 5,000 one-line feeds (a 300 KB file) wrote a 100 MB config (and a 100 KB
    // name around 10,000 feeds took 1 GB of memory).
    let feeds = 5000;
    let name = "é".repeat(10_000);
    let mut opml = format!("<opml version=\"2.0\"><body>\n<outline text=\"{name}\">\n");
    for i in 0..feeds {
        opml.push_str(&format!(
            "<outline text=\"feed {i}\" xmlUrl=\"https://h{i}.example/f\"/>\n"
        ));
    }
    opml.push_str("</outline>\n</body></opml>\n");
    let (_dir, config, subs) = setup(&opml);
    let out = tradefeed(&config, &["import-opml", subs.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let written = std::fs::metadata(&config).unwrap().len();
    assert!(
        written < 3 * 1024 * 1024,
        "the config grew to {written} bytes"
    );
    let loaded = Config::load(&config).unwrap();
    let imported: Vec<_> = names_and_tags(&loaded)
        .into_iter()
        .filter(|(name, _, _)| name.starts_with("feed "))
        .collect();
    assert_eq!(imported.len(), feeds);
    let cut = "é".repeat(tradefeed::opml::MAX_TAG_CHARS);
    assert!(
        imported
            .iter()
            .all(|(_, _, tags)| tags.len() == 1 && tags[0] == cut)
    );
}

/// Tags the OPML `category` syntax gives a meaning to (`,` separates categories, `/` the
/// levels of one), with quotes, non-ASCII and per cent signs, in first position (the folder
/// an export groups by) and later.
const AWKWARD_TAGS: &str = r#"
[[sources]]
name = "Slashes"
url = "https://s.example/feed"
tags = ["EU/UK", "trade/remedies/steel", "plain"]

[[sources]]
name = "Commas"
url = "https://c.example/feed"
tags = ["tariffs, duties", "a,b,", "EU/UK"]

[[sources]]
name = "Quotes and more"
url = "https://q.example/feed"
tags = ["say \"hi\" & <b>", "Zölle/関税", "100%", "a%2Fb", "%25,%2C/"]
"#;

/// A source's tags come back exactly through `export-opml` and `import-opml`, whatever
/// characters they hold, and exporting the imported config gives the same document.
#[test]
fn tags_with_slashes_commas_quotes_and_non_ascii_survive_export_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original.toml");
    std::fs::write(&original, AWKWARD_TAGS).unwrap();
    let export = tradefeed(&original, &["export-opml"]);
    assert!(export.status.success(), "{}", stderr(&export));
    let xml = stdout(&export);
    let subs = dir.path().join("subs.opml");
    std::fs::write(&subs, &xml).unwrap();

    let copy = dir.path().join("copy.toml");
    std::fs::write(&copy, "[server]\ntitle = \"copy\"\n").unwrap();
    let import = tradefeed(&copy, &["import-opml", subs.to_str().unwrap()]);
    assert!(import.status.success(), "{}", stderr(&import));
    assert!(
        stdout(&import).starts_with("added 3, skipped 0"),
        "{}",
        stdout(&import)
    );
    assert_eq!(
        names_and_tags(&Config::load(&copy).unwrap()),
        names_and_tags(&Config::load(&original).unwrap()),
        "config → OPML → config keeps every tag:\n{xml}"
    );

    let again = tradefeed(&copy, &["export-opml"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let without_date = |xml: &str| {
        xml.lines()
            .filter(|l| !l.contains("<dateCreated>") && !l.contains("<title>"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        without_date(&stdout(&again)),
        without_date(&xml),
        "OPML → config → OPML gives the same outlines"
    );
}

#[test]
fn feed_scheme_urls_that_readers_export_are_imported_as_http_and_https() {
    let (_dir, config, subs) = setup(
        r#"<?xml version="1.0"?>
<opml version="2.0"><head><title>Reader export</title></head><body>
  <outline text="Safari style" xmlUrl="feed://feeds.example/trade.xml"/>
  <outline text="Wrapped https" xmlUrl="FEED:https://secure.example/atom"/>
  <outline text="Plain" xmlUrl="https://plain.example/rss"/>
</body></opml>
"#,
    );
    let out = tradefeed(&config, &["import-opml", subs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("added 3, skipped 0"),
        "{}",
        stdout(&out)
    );
    let loaded = Config::load(&config).unwrap();
    let urls: Vec<(String, String)> = names_and_tags(&loaded)
        .into_iter()
        .filter(|(name, _, _)| ["Safari style", "Wrapped https", "Plain"].contains(&name.as_str()))
        .map(|(name, url, _)| (name, url))
        .collect();
    assert_eq!(
        urls,
        [
            (
                "Safari style".to_string(),
                "http://feeds.example/trade.xml".to_string()
            ),
            (
                "Wrapped https".to_string(),
                "https://secure.example/atom".to_string()
            ),
            ("Plain".to_string(), "https://plain.example/rss".to_string()),
        ]
    );
}

/// The config warns of source names with white space at their ends; the names an import
/// writes are folded, so outlines titled with such spaces (ASCII or no-break) import under the
/// trimmed name and the edited config loads without a warning.
#[test]
fn outline_names_padded_with_spaces_are_imported_trimmed() {
    let (_dir, config, subs) = setup(
        "<?xml version=\"1.0\"?>\n<opml version=\"2.0\"><head><title>t</title></head><body>\n\
         <outline text=\"  Padded  \" xmlUrl=\"https://padded.example/rss\"/>\n\
         <outline title=\"\u{a0}No-break\u{a0}\" text=\"x\" xmlUrl=\"https://nbsp.example/rss\"/>\n\
         <outline title=\"   \" text=\" Text  fallback \" xmlUrl=\"https://text.example/rss\"/>\n\
         </body></opml>\n",
    );
    let out = tradefeed(&config, &["import-opml", subs.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("added 3, skipped 0"),
        "{}",
        stdout(&out)
    );
    let loaded = Config::load(&config).unwrap();
    let names: Vec<String> = names_and_tags(&loaded)
        .into_iter()
        .filter(|(_, url, _)| url.contains(".example/rss"))
        .map(|(name, _, _)| name)
        .collect();
    assert_eq!(names, ["Padded", "No-break", "Text fallback"]);
}

/// An `xmlUrl` the `url` crate would read leniently (`http:///host/rss` as `http://host/rss`)
/// is refused (the config, which loaded such URLs before, only warns of one; an import is new
/// input), named with what it would have been read as; the other feeds are still added and the
/// exit status is 2.
#[test]
fn feed_urls_without_a_host_after_the_slashes_are_refused_as_invalid() {
    let (_dir, config, subs) = setup(
        r#"<?xml version="1.0"?>
<opml version="2.0"><head><title>t</title></head><body>
  <outline text="Three slashes" xmlUrl="http:///typo.example/rss"/>
  <outline text="One slash" xmlUrl="https:/typo.example/atom"/>
  <outline text="Feed three slashes" xmlUrl="feed:///typo.example/feed"/>
  <outline text="Fine" xmlUrl="https://fine.example/rss"/>
</body></opml>
"#,
    );
    let before = std::fs::read_to_string(&config).unwrap();
    let out = tradefeed(&config, &["import-opml", subs.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report = stdout(&out);
    assert!(report.contains("added 1, skipped 3"), "{report}");
    assert!(
        report.contains(
            "Three slashes: \"http:///typo.example/rss\" has no host between \"//\" and the \
             next slash (it would be read as \"http://typo.example/rss\")"
        ) && report.contains(
            "One slash: \"https:/typo.example/atom\" must have \"//\" and the host after \
             \"https:\" (it would be read as \"https://typo.example/atom\")"
        ) && report.contains("Feed three slashes: \"http:///typo.example/feed\" has no host"),
        "{report}"
    );
    let loaded = Config::load(&config).unwrap();
    let added = std::fs::read_to_string(&config).unwrap()[before.len()..].to_string();
    assert!(!added.contains("typo.example"), "{added}");
    assert!(
        loaded
            .sources
            .iter()
            .any(|s| s.url == "https://fine.example/rss")
    );
}
