//! Parse and normalize over our own fixture feeds (`tests/fixtures/`) and, when present, over the
//! real-world feed corpus in `../shared/data/feeds` (or `$TRADEFEED_DATA/feeds`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use tradefeed::domain::{Entry, ParsedFeed};
use tradefeed::normalize::{
    NormalizeContext, SkipReason, html_to_text, normalize_item, sanitize_html,
};
use tradefeed::parse::{ParseError, parse_feed};

const FETCHED_AT: &str = "2026-11-28T00:00:00Z";

fn fetched_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(FETCHED_AT).unwrap().to_utc()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn parse_fixture(name: &str) -> ParsedFeed {
    parse_feed(&fixture(name), None).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn normalize_all(feed: &ParsedFeed, base: &str) -> Vec<Result<Entry, SkipReason>> {
    let ctx = NormalizeContext::new(fetched_at(), base);
    feed.items.iter().map(|i| normalize_item(i, &ctx)).collect()
}

/// Every fixture that is a feed: file, item count, and (item index, text its normalized title
/// must contain) for a sampled title, most with non-ASCII characters.
const GOOD_FIXTURES: &[(&str, usize, usize, &str)] = &[
    ("rss091.xml", 2, 0, "Zollunion: Ständige Überprüfung"),
    ("rss092.xml", 2, 0, "café tariffs"),
    ("rss10.rdf", 2, 0, "Güter mit doppeltem Verwendungszweck"),
    ("rss20.xml", 3, 0, "tariffs & quotas"),
    ("rss20.xml", 3, 2, "WTO ministerial: what’s on"),
    (
        "atom10.xml",
        2,
        0,
        "Anti-dumping duties on solar glass confirmed",
    ),
    ("atom10.xml", 2, 1, "Quotas <> tariffs: a primer"),
    ("atom03.xml", 2, 0, "Ausfuhrzölle auf Schrott: Überblick"),
    ("jsonfeed11.json", 2, 0, "Liste des gels d’avoirs élargie"),
    ("iso-8859-1.xml", 2, 0, "la Commission révise les droits"),
    (
        "windows-1252-stray-byte.xml",
        2,
        0,
        "Zölle auf Stahl steigen",
    ),
    (
        "windows-1252-stray-byte.xml",
        2,
        1,
        "Café prices and “quotas”",
    ),
    ("windows-1251.xml", 2, 0, "Пошлины на сталь повышены"),
    ("koi8-r.xml", 2, 0, "Экспортные квоты на зерно"),
    ("no_guid.xml", 2, 0, "Container volumes fall"),
    ("no_link.xml", 7, 0, "Brief with an id but no link"),
    ("relative_links.xml", 2, 0, "Quota allocation published"),
    ("rss_no_version.xml", 1, 0, "Safeguard review opens"),
];

#[test]
fn every_feed_fixture_parses_with_its_item_count_and_decoded_titles() {
    for &(name, count, index, title) in GOOD_FIXTURES {
        let feed = parse_fixture(name);
        assert_eq!(feed.items.len(), count, "{name}: item count");
        let entries = normalize_all(&feed, "https://fixtures.example.org/feed.xml");
        let entry = entries[index].as_ref().unwrap();
        assert!(
            entry.title.contains(title),
            "{name}: title {:?} should contain {title:?}",
            entry.title
        );
        assert!(!entry.title.contains('\u{FFFD}'), "{name}: {}", entry.title);
    }
}

#[test]
fn non_feed_fixtures_fail_with_the_expected_error() {
    let cases = [("html_page.html", "NotAFeed"), ("garbage.bin", "NotAFeed")];
    for (name, expected) in cases {
        let result = parse_feed(&fixture(name), Some("text/html; charset=utf-8"));
        let variant = match &result {
            Err(ParseError::NotAFeed(_)) => "NotAFeed",
            Err(ParseError::Malformed(_)) => "Malformed",
            Err(ParseError::Crashed(_)) => "Crashed",
            Ok(_) => "Ok",
        };
        assert_eq!(variant, expected, "{name}: {result:?}");
    }
}

#[test]
fn a_second_xml_declaration_switching_the_encoding_is_a_parse_error_before_feed_rs_reads_it() {
    // quick-xml asserts when a later declaration switches the encoding (the panic used to be
    // caught as a crash), and a switch can hide markup from the nesting scan: refused first.
    let result = parse_feed(&fixture("double_declaration.xml"), None);
    assert!(
        matches!(&result, Err(ParseError::Malformed(m)) if m.contains("another encoding")),
        "{result:?}"
    );
}

#[test]
fn billion_laughs_entities_are_never_expanded() {
    let bytes = fixture("billion_laughs.xml");
    // Either refused or parsed with the references left unexpanded; never a huge string.
    if let Ok(feed) = parse_feed(&bytes, None) {
        let item = &feed.items[0];
        let title = item.title.as_deref().unwrap_or("");
        let summary = item.summary.as_deref().unwrap_or("");
        assert!(title.len() < 100, "title expanded to {} bytes", title.len());
        assert!(
            summary.len() < 100,
            "summary expanded to {} bytes",
            summary.len()
        );
        assert!(!summary.contains("lollol"), "{summary}");
        assert_eq!(title, "Tariffs &lol9;");
        let entry = normalize_item(
            item,
            &NormalizeContext::new(fetched_at(), "https://x.example/"),
        );
        assert!(entry.unwrap().text.len() < 100);
    }
}

#[test]
fn items_without_guid_are_identified_by_their_canonical_link() {
    for name in ["no_guid.xml", "rss10.rdf"] {
        let feed = parse_fixture(name);
        assert!(feed.items.iter().all(|i| i.guid.is_none()), "{name}");
        for entry in normalize_all(&feed, "https://x.example/") {
            let entry = entry.unwrap();
            assert_eq!(
                entry.identity,
                format!("url:{}", entry.canonical_url.as_deref().unwrap()),
                "{name}"
            );
        }
    }
}

#[test]
fn items_without_link_fall_back_along_the_identity_chain() {
    let feed = parse_fixture("no_link.xml");
    let entries = normalize_all(&feed, "https://briefs.example.com/feed");
    let prefixes: Vec<&str> = entries
        .iter()
        .map(|e| match e {
            Ok(entry) => entry.identity.split(':').next().unwrap(),
            Err(SkipReason::Unidentifiable) => "skipped",
            Err(SkipReason::NothingToShow { .. }) => "blank",
        })
        .collect();
    // The last two have only an id: one shows nothing (an empty paragraph), one an image.
    assert_eq!(
        prefixes,
        ["guid", "title", "text", "text", "skipped", "blank", "guid"]
    );
    let description_only = entries[3].as_ref().unwrap();
    assert_eq!(
        description_only.title,
        "A brief with only a description about export licences."
    );
}

#[test]
fn relative_links_resolve_against_the_feed_url() {
    let feed = parse_fixture("relative_links.xml");
    let base = "https://gazette.example.org/feeds/main.xml";
    let entries = normalize_all(&feed, base);
    let first = entries[0].as_ref().unwrap();
    assert_eq!(
        first.link.as_deref(),
        Some("https://gazette.example.org/news/quota-allocation")
    );
    // The entry keeps the feed's markup; links in it resolve when it is served.
    let served = sanitize_html(&first.html, base);
    assert!(
        served.contains("href=\"https://gazette.example.org/feeds/annex/table.html\""),
        "{served}"
    );
    assert!(
        served.contains("src=\"https://gazette.example.org/img/chart.png\""),
        "{served}"
    );
    let second = entries[1].as_ref().unwrap();
    assert_eq!(
        second.canonical_url.as_deref(),
        Some("https://gazette.example.org/feeds/calculator?lang=en")
    );
}

#[test]
fn rss20_fixture_normalizes_dates_authors_content_and_urls() {
    let feed = parse_fixture("rss20.xml");
    assert_eq!(feed.title.as_deref(), Some("Trade Policy Daily"));
    assert_eq!(feed.link.as_deref(), Some("https://tpd.example.com/"));
    let entries = normalize_all(&feed, "https://tpd.example.com/feed.xml");
    let first = entries[0].as_ref().unwrap();
    assert_eq!(first.identity, "guid:tpd-2026-0001");
    assert_eq!(
        first.title,
        "EU and Mercosur close the chapter on tariffs & quotas"
    );
    // CET is UTC+1.
    assert_eq!(first.published.to_rfc3339(), "2026-11-27T08:15:00+00:00");
    assert_eq!(first.authors, ["Ana Pérez"]);
    assert_eq!(
        first.canonical_url.as_deref(),
        Some("https://tpd.example.com/2026/11/eu-mercosur")
    );
    let served = sanitize_html(&first.html, "https://tpd.example.com/feed.xml");
    assert!(first.html.contains("script"), "kept as the feed gave it");
    assert!(!served.contains("script") && !served.contains("onclick"));
    assert_eq!(
        first.text,
        "Negotiators agreed the tariff schedules on Friday.\nRatification comes next in São Paulo and Brussels."
    );
    let second = entries[1].as_ref().unwrap();
    assert_eq!(
        second.canonical_url.as_deref(),
        Some("https://tpd.example.com/2026/11/steel-safeguard")
    );
    // An offset-less ISO date is read as UTC.
    let third = entries[2].as_ref().unwrap();
    assert_eq!(third.published.to_rfc3339(), "2026-11-25T08:00:00+00:00");
}

#[test]
fn atom_fixtures_keep_dates_authors_and_the_alternate_link() {
    let entries = normalize_all(&parse_fixture("atom10.xml"), "https://cur.example.org/");
    let first = entries[0].as_ref().unwrap();
    assert_eq!(
        first.link.as_deref(),
        Some("https://cur.example.org/2026/solar-glass")
    );
    assert_eq!(first.authors, ["Jonas Öberg"]);
    assert_eq!(first.published.to_rfc3339(), "2026-11-26T08:00:00+00:00");
    assert_eq!(first.updated.to_rfc3339(), "2026-11-27T08:00:00+00:00");
    let second = entries[1].as_ref().unwrap();
    assert_eq!(second.text, "Tariff-rate quotas combine both instruments.");

    let entries = normalize_all(&parse_fixture("atom03.xml"), "https://handel.example.de/");
    let first = entries[0].as_ref().unwrap();
    assert_eq!(first.identity, "guid:tag:handel.example.de,2026:schrott");
    assert_eq!(first.published.to_rfc3339(), "2026-11-26T08:00:00+00:00");
    assert_eq!(first.updated.to_rfc3339(), "2026-11-26T10:00:00+00:00");
    assert_eq!(first.text, "Several countries now tax scrap metal exports.");
    let second = entries[1].as_ref().unwrap();
    assert_eq!(
        second.text,
        "Talks on a free trade agreement start in January."
    );
}

#[test]
fn json_feed_plain_text_content_is_read_literally() {
    let entries = normalize_all(
        &parse_fixture("jsonfeed11.json"),
        "https://sanctions.example.org/",
    );
    let first = entries[0].as_ref().unwrap();
    assert_eq!(
        first.html,
        "<p>Twelve entities were <strong>added</strong> to the list.</p>"
    );
    assert_eq!(first.authors, ["Sanctions Desk"]);
    let second = entries[1].as_ref().unwrap();
    assert_eq!(
        second.text,
        "Food & medicine shipments keep their exemption; <b> is not markup here."
    );
    assert!(second.html.contains("&lt;b&gt;"), "{}", second.html);
    assert_eq!(second.updated.to_rfc3339(), "2026-11-24T09:00:00+00:00");
}

// ---------------------------------------------------------------------------------------------
// The real-world corpus
// ---------------------------------------------------------------------------------------------

fn data_dir() -> PathBuf {
    match std::env::var_os("TRADEFEED_DATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")),
    }
}

/// The corpus files, or `None` (with a notice) when the corpus is absent.
fn corpus_files() -> Option<Vec<PathBuf>> {
    let dir = data_dir().join("feeds");
    let Ok(read) = std::fs::read_dir(&dir) else {
        eprintln!(
            "NOTICE: feed corpus not found at {}; skipping (set TRADEFEED_DATA)",
            dir.display()
        );
        return None;
    };
    let mut files: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().is_some_and(|n| n != "MANIFEST.md"))
        .collect();
    files.sort();
    Some(files)
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("valid gzip");
    out
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_corpus_feed_parses_and_normalizes_without_panicking() {
    let Some(files) = corpus_files() else { return };
    assert!(!files.is_empty());
    let (mut bytes_total, mut items_total, mut skipped) = (0usize, 0usize, 0usize);
    let (mut parse_time, mut normalize_time) = (Default::default(), Default::default());
    for path in &files {
        let name = file_name(path);
        let raw = std::fs::read(path).unwrap();
        let bytes = if is_gzip(&raw) {
            // Compressed bodies are the transport's job; parse refuses them clearly.
            assert!(
                matches!(parse_feed(&raw, None), Err(ParseError::NotAFeed(_))),
                "{name}"
            );
            gunzip(&raw)
        } else {
            raw
        };
        let started = Instant::now();
        let feed = parse_feed(&bytes, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        parse_time += started.elapsed();
        assert!(!feed.items.is_empty(), "{name}: no items");
        // Feeds that carry item dates must have them understood (lenient timestamp parsing).
        let has_dates = ["<pubDate>", "<dc:date>", "<published>", "<updated>"]
            .iter()
            .any(|tag| bytes.windows(tag.len()).any(|w| w == tag.as_bytes()));
        if has_dates {
            let dated = feed
                .items
                .iter()
                .filter(|i| i.published.is_some() || i.updated.is_some())
                .count();
            assert!(
                dated * 10 >= feed.items.len() * 9,
                "{name}: only {dated} of {} items have a parsed date",
                feed.items.len()
            );
        }

        let ctx = NormalizeContext::new(fetched_at(), "https://corpus.example.org/feed");
        let started = Instant::now();
        let entries: Vec<_> = feed.items.iter().map(|i| normalize_item(i, &ctx)).collect();
        normalize_time += started.elapsed();
        let blank = |f: &Option<String>| f.as_deref().is_none_or(|s| s.trim().is_empty());
        for (item, entry) in feed.items.iter().zip(&entries) {
            let entry = match entry {
                Ok(entry) => entry,
                Err(reason) => {
                    let allowed = match reason {
                        // Only an item with nothing to go by may be skipped for that.
                        SkipReason::Unidentifiable => {
                            blank(&item.guid) && blank(&item.summary) && blank(&item.content)
                        }
                        // And only one a reader would see as blank for this.
                        SkipReason::NothingToShow { .. } => {
                            item.summary
                                .iter()
                                .chain(&item.content)
                                .all(|h| html_to_text(h).trim().is_empty())
                                && item.media.enclosures.is_empty()
                        }
                    };
                    assert!(
                        allowed && blank(&item.link) && blank(&item.title),
                        "{name}: skipped ({reason}) an item with more {item:?}"
                    );
                    skipped += 1;
                    continue;
                }
            };
            assert!(!entry.identity.is_empty(), "{name}");
            assert!(!entry.title.is_empty(), "{name}: empty title for {item:?}");
            assert!(!entry.title.contains('\u{FFFD}'), "{name}: {}", entry.title);
            assert!(entry.updated >= entry.published, "{name}");
            let served = sanitize_html(&entry.html, &ctx.base_url);
            assert!(!served.contains("<script"), "{name}");
        }
        bytes_total += bytes.len();
        items_total += feed.items.len();
    }
    let parse_time: std::time::Duration = parse_time;
    let normalize_time: std::time::Duration = normalize_time;
    eprintln!(
        "corpus: {} files, {} items ({} skipped as unidentifiable), {:.1} MB; parse {:?} ({:.1} MB/s), normalize {:?} ({:.2}x parse)",
        files.len(),
        items_total,
        skipped,
        bytes_total as f64 / 1e6,
        parse_time,
        bytes_total as f64 / 1e6 / parse_time.as_secs_f64(),
        normalize_time,
        normalize_time.as_secs_f64() / parse_time.as_secs_f64(),
    );
}

/// The corpus's Atom feeds with `xml:base` on `<content>` (TypePad's absolute, reddit's
/// relative): every such entry gets it, and its content resolves against it.
#[test]
fn corpus_atom_feeds_with_content_xml_base_give_each_entry_its_base() {
    let Some(files) = corpus_files() else { return };
    let mut checked = 0;
    for path in &files {
        let name = file_name(path);
        let bytes = std::fs::read(path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        let with_base = text
            .split("<content ")
            .skip(1)
            .filter(|tag| tag.split('>').next().unwrap_or("").contains("xml:base="))
            .count();
        if with_base == 0 || is_gzip(&bytes) {
            continue;
        }
        let feed = parse_feed(&bytes, None).unwrap();
        let based = feed
            .items
            .iter()
            .filter(|i| !i.xml_base.content.is_empty())
            .count();
        assert_eq!(based, with_base, "{name}");
        let ctx = NormalizeContext::new(fetched_at(), "https://www.reddit.com/r/all/.rss");
        for item in feed.items.iter().filter(|i| !i.xml_base.content.is_empty()) {
            let entry = normalize_item(item, &ctx).unwrap();
            let base = entry.base_url.expect("a base of its own");
            assert!(
                base == "http://everything.typepad.com/blog/"
                    || base.starts_with("https://www.reddit.com/"),
                "{name}: {base}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 2, "TypePad's and reddit's feeds");
}

fn is_cyrillic(c: char) -> bool {
    ('\u{0400}'..='\u{04FF}').contains(&c)
}

fn is_latin_accented(c: char) -> bool {
    ('\u{00C0}'..='\u{00FF}').contains(&c) && c != '\u{00D7}' && c != '\u{00F7}'
}

/// Corpus files in legacy encodings, the script their text must come out in, and how many
/// characters of that script they hold at least (small files hold few).
type ScriptTest = fn(char) -> bool;

const ENCODED_CORPUS: &[(&str, ScriptTest, usize)] = &[
    ("miniflux__encoding_WINDOWS-1251.xml", is_cyrillic, 100),
    ("nodefeedparser__iconv.xml", is_cyrillic, 100),
    ("nodefeedparser__compressed.xml", is_cyrillic, 100),
    ("miniflux__koi8r.xml", is_cyrillic, 10),
    ("rssparser__encoding.rss", is_latin_accented, 10),
    ("miniflux__encoding_ISO-8859-1.xml", is_latin_accented, 10),
    ("feedrs__rss_1.0_iso8859.xml", is_latin_accented, 1),
    ("rssparser__uolNoticias.rss", is_latin_accented, 10),
    (
        "miniflux__no_encoding_ISO-8859-1.xml",
        is_latin_accented,
        10,
    ),
];

#[test]
fn corpus_feeds_in_legacy_encodings_decode_to_the_right_script() {
    let Some(_) = corpus_files() else { return };
    let dir = data_dir().join("feeds");
    for &(name, in_script, at_least) in ENCODED_CORPUS {
        let raw = std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let bytes = if is_gzip(&raw) { gunzip(&raw) } else { raw };
        let feed = parse_feed(&bytes, None).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ctx = NormalizeContext::new(fetched_at(), "https://corpus.example.org/");
        let mut text = feed.title.clone().unwrap_or_default();
        for item in &feed.items {
            if let Ok(entry) = normalize_item(item, &ctx) {
                text.push_str(&entry.title);
                text.push_str(&entry.text);
            }
        }
        assert!(!text.contains('\u{FFFD}'), "{name}: replacement characters");
        let hits = text.chars().filter(|&c| in_script(c)).count();
        assert!(
            hits >= at_least,
            "{name}: only {hits} characters of the expected script"
        );
        // Mojibake of UTF-8 read as Latin-1 shows up as "Ã" followed by another Latin-1 char.
        assert!(
            !text.contains("Ã©") && !text.contains("Ã£"),
            "{name}: mojibake"
        );
        // And Latin-1 read as UTF-8 where its bytes happen to be valid (`é »`, bytes E9 A0
        // BB, is a CJK character) as letters no Western legacy byte stands for.
        if in_script('é') {
            let from_bytes: std::collections::HashSet<char> = encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(&(0..=255).collect::<Vec<u8>>())
                .0
                .chars()
                .collect();
            let strange: String = text
                .chars()
                .filter(|c| !from_bytes.contains(c) && !c.is_whitespace())
                .collect();
            assert!(strange.is_empty(), "{name}: {strange:?}");
        }
    }
}

#[test]
fn a_utf8_corpus_feed_declared_iso_8859_1_is_not_double_decoded() {
    let Some(_) = corpus_files() else { return };
    let bytes = std::fs::read(data_dir().join("feeds/nodefeedparser__mediacontent-dupes.xml"))
        .expect("corpus file");
    let feed = parse_feed(&bytes, None).unwrap();
    let all: String = feed
        .items
        .iter()
        .flat_map(|i| [i.title.clone(), i.summary.clone()])
        .flatten()
        .collect();
    assert!(
        !all.contains("Ã") && !all.contains("â€"),
        "mojibake in {all}"
    );
}

#[test]
fn the_same_blog_in_rss_and_atom_gives_the_same_fingerprints() {
    let Some(_) = corpus_files() else { return };
    let dir = data_dir().join("feeds");
    let prints = |name: &str| -> Vec<String> {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let feed = parse_feed(&bytes, None).unwrap();
        normalize_all(&feed, "https://dustri.org/")
            .into_iter()
            .map(|e| e.unwrap().fingerprint)
            .collect()
    };
    let rss = prints("miniflux__large_rss.xml");
    let atom = prints("miniflux__large_atom.xml");
    assert_eq!(rss.len(), 25);
    let shared = rss.iter().filter(|p| atom.contains(p)).count();
    assert_eq!(
        shared,
        rss.len(),
        "fingerprints shared between the RSS and Atom copies"
    );
}

/// Enclosures and Media RSS in the corpus: the podcast's MP3 on each of its 730 items, BBC's
/// `media:content` audio with its size and duration, newscred's image and thumbnail (inside a
/// `media:content`), and a Daily Mail item's image and video renditions, each reaching the entry
/// with its type (and absolute, http(s) URLs).
#[test]
fn corpus_enclosures_and_media_rss_reach_the_entries() {
    let Some(_) = corpus_files() else { return };
    let dir = data_dir().join("feeds");
    let entries = |name: &str| -> Vec<Entry> {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let feed = parse_feed(&bytes, None).unwrap();
        normalize_all(&feed, "https://feeds.example/feed")
            .into_iter()
            .map(|e| e.unwrap())
            .collect()
    };
    let podcast = entries("rssparser__giantbomb-podcast.rss");
    assert_eq!(podcast.len(), 730);
    for entry in &podcast {
        let [mp3] = entry.media.enclosures.as_slice() else {
            panic!("{}: {:?}", entry.title, entry.media)
        };
        assert!(
            mp3.url.starts_with("https://dts.podtrac.com/redirect.mp3/")
                && mp3.url.ends_with(".mp3"),
            "{mp3:?}"
        );
        assert_eq!(mp3.mime_type.as_deref(), Some("audio/mpeg"), "{mp3:?}");
        // (Some items give `length="1"`: a placeholder, but a number, so kept.)
        assert!(mp3.length.is_some(), "{mp3:?}");
        assert_ne!(mp3.duration, Some(0), "a zero duration is none");
    }
    let first = &podcast[0].media.enclosures[0];
    assert_eq!(
        (first.url.as_str(), first.length),
        (
            "https://dts.podtrac.com/redirect.mp3/www.giantbomb.com/podcasts/download/2823/603__Call_of_Tuesday-10-01-2019-6277737276.mp3",
            Some(105_003_355)
        )
    );

    let bbc = entries("feedrs__rss_2.0_bbc.xml");
    let audio: Vec<_> = bbc.iter().flat_map(|e| &e.media.enclosures).collect();
    assert_eq!(audio.len(), 1, "{audio:?}");
    assert_eq!(
        (
            audio[0].mime_type.as_deref(),
            audio[0].length,
            audio[0].duration
        ),
        (Some("audio/mpeg"), Some(50_496_000), Some(3156))
    );
    assert!(
        audio[0].url.ends_with("/vpid/p097wt5b.mp3"),
        "{:?}",
        audio[0]
    );

    let newscred = entries("feedrs__atom_mediarss_newscred_1.xml");
    let media = &newscred[0].media;
    assert_eq!(media.enclosures.len(), 1, "{media:?}");
    assert_eq!(media.enclosures[0].mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(
        media.image.as_deref(),
        Some(
            "https://www.example.com/Zz1hNjRiMWFjMzdhYWIzNTEwNjk2YjIzYjc5NWQxNWFlMA==?width=75&height=75"
        )
    );

    let mail = entries("nodefeedparser__mediacontent-dupes.xml");
    let types: Vec<Option<&str>> = mail[0]
        .media
        .enclosures
        .iter()
        .map(|e| e.mime_type.as_deref())
        .collect();
    assert!(
        types.contains(&Some("video/mp4")) && types.contains(&Some("image/jpeg")),
        "{types:?}"
    );
    for entry in bbc.iter().chain(&newscred).chain(&mail) {
        for url in entry
            .media
            .enclosures
            .iter()
            .map(|e| &e.url)
            .chain(&entry.media.image)
        {
            assert!(
                url.starts_with("http://") || url.starts_with("https://"),
                "{url}"
            );
        }
    }
}

/// HTML in an item is text to the XML parser, so its nesting is no XML depth; every reader of
/// it after the parse (the plain-text pass, the depth bound on stored HTML, the sanitizer that
/// renders it, html5ever under it) must stay within the stack of a test thread (2 MiB) and
/// finish, whatever the nesting: 100,000 levels of `div`, `b` and `table`, escaped in a
/// description and in CDATA in `content:encoded`.
#[test]
fn html_nested_100000_deep_in_an_item_is_read_stored_bounded_and_rendered() {
    for (open, close) in [
        ("<div>", "</div>"),
        ("<b>", "</b>"),
        ("<table>", "</table>"),
    ] {
        let html = format!(
            "{}Duties on steel{}",
            open.repeat(100_000),
            close.repeat(100_000)
        );
        let escaped = html.replace('<', "&lt;").replace('>', "&gt;");
        let feed = format!(
            "<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\">\
             <channel><title>T</title><item><guid>d</guid><title>t</title>\
             <description>{escaped}</description></item><item><guid>c</guid><title>t</title>\
             <content:encoded><![CDATA[{html}]]></content:encoded></item></channel></rss>"
        );
        let feed = parse_feed(feed.as_bytes(), None).unwrap_or_else(|e| panic!("{open}: {e}"));
        assert_eq!(feed.items.len(), 2, "{open}");
        for entry in normalize_all(&feed, "https://t.example/") {
            let entry = entry.unwrap_or_else(|e| panic!("{open}: {e:?}"));
            assert!(entry.text.contains("Duties on steel"), "{open}");
            // The stored HTML holds the first 100,000 characters, bounded in depth.
            let rendered = sanitize_html(&entry.html, "https://t.example/");
            assert!(rendered.len() < entry.html.len() + 64 * 16, "{open}");
        }
    }
}
