//! Feed discovery: the feeds an HTML page advertises.
//!
//! Operators often configure a web page (a press-release page, a blog's home page) instead of
//! its feed. Such a page names its feeds the way browsers and feed readers (Miniflux, FreshRSS)
//! look for them: `<link rel="alternate" type="application/rss+xml" href="…" title="…">` in its
//! `<head>`. [`discover`] reads those elements so that a failed poll can name them and
//! `tradefeed discover` can list them; nothing switches a source's URL by itself (a page may
//! advertise several feeds, comments feeds among them: the operator chooses).
//!
//! The page is read with html5ever's tokenizer (the one ammonia uses), not a pattern: it
//! decodes character references in attribute values, reads quoted and unquoted values, and
//! skips comments, `<script>` and `<style>` contents the way a browser does, whatever the
//! markup's state. Bounds, so that a hostile or huge page costs little:
//!
//! - only the `<head>`: reading stops at `</head>` or `<body>` (a `<link rel="alternate">` is
//!   only valid there; one in the body usually belongs to embedded content);
//! - only the first [`MAX_SCAN_BYTES`] of the body (heads with inline scripts and styles reach
//!   a few hundred KiB on news sites; a head longer than that is no page we can help with);
//! - at most [`MAX_FEEDS`] feeds, and hrefs of at most [`MAX_URL_LEN`] bytes.
//!
//! CPU work only; imports only `domain` of ours.

use std::cell::RefCell;
use std::fmt;

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};
use html5ever::TokenizerResult;
use html5ever::tendril::StrTendril;
use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use url::Url;

use crate::domain::without_feed_scheme;

/// How much of a page is read at most.
pub const MAX_SCAN_BYTES: usize = 512 * 1024;
/// How many advertised feeds are returned at most (real pages list one to five).
pub const MAX_FEEDS: usize = 20;
/// Longest href taken (longer ones are no feed URL an operator would paste into a config).
pub const MAX_URL_LEN: usize = 2048;
/// Longest title kept, in characters (longer ones are cut and end in `…`).
const MAX_TITLE_CHARS: usize = 120;

/// The feed formats a page can advertise, from the `type` of its `<link>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// `application/rss+xml`.
    Rss,
    /// `application/atom+xml`.
    Atom,
    /// `application/feed+json`.
    JsonFeed,
    /// `application/json`: JSON Feed 1.0's type, though also used for other JSON (WordPress
    /// advertises its REST API with it).
    Json,
}

impl FeedKind {
    /// The kind a MIME type names (case-insensitive, parameters ignored), if it is a feed's.
    pub fn from_mime(mime: &str) -> Option<FeedKind> {
        let essence = mime.split(';').next().unwrap_or("").trim();
        [
            ("application/rss+xml", FeedKind::Rss),
            ("application/atom+xml", FeedKind::Atom),
            ("application/feed+json", FeedKind::JsonFeed),
            ("application/json", FeedKind::Json),
        ]
        .into_iter()
        .find(|(m, _)| essence.eq_ignore_ascii_case(m))
        .map(|(_, kind)| kind)
    }

    /// A short human label: `RSS`, `Atom`, `JSON Feed`, `JSON`.
    pub fn label(self) -> &'static str {
        match self {
            FeedKind::Rss => "RSS",
            FeedKind::Atom => "Atom",
            FeedKind::JsonFeed => "JSON Feed",
            FeedKind::Json => "JSON",
        }
    }
}

/// One feed a page advertises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedFeed {
    /// Absolute http(s) URL, resolved against the page's `<base href>` or its own URL.
    pub url: String,
    /// The format its `type` names.
    pub kind: FeedKind,
    /// Its `title` attribute, white space folded, if not empty.
    pub title: Option<String>,
}

/// `https://example.org/feed.xml (RSS "Press releases")`: the URL first, so that it is the
/// first word of a line.
impl fmt::Display for AdvertisedFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.url, self.kind.label())?;
        if let Some(title) = &self.title {
            write!(f, " \"{title}\"")?;
        }
        f.write_str(")")
    }
}

/// What a body turned out to be, for discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    /// An HTML page, with the feeds it advertises in document order (possibly none).
    HtmlPage(Vec<AdvertisedFeed>),
    /// Not recognisably HTML (no `<!DOCTYPE html>`, and the first element is none of `html`,
    /// `head`, `body`, `title`, `meta`, `link`, `base`).
    NotHtml,
}

/// Reads the feeds an HTML body advertises. `content_type` is the HTTP header (its charset
/// decodes the body; else UTF-8 when valid, else windows-1252, a byte-order mark winning over
/// both); `page_url` is the URL the body came from after redirects, the base for relative
/// hrefs unless the page sets a `<base href>`.
///
/// Only `<link>` elements whose `rel` holds the token `alternate` (in any case), whose `type`
/// is a feed's (see [`FeedKind::from_mime`]) and whose href resolves to an http(s) URL count
/// (a `feed:` href read as the URL it stands for, see [`without_feed_scheme`]); each URL is
/// listed once, at its first appearance.
pub fn discover(body: &[u8], content_type: Option<&str>, page_url: &str) -> Discovery {
    let text = decode(&body[..body.len().min(MAX_SCAN_BYTES)], content_type);
    let sink = HeadReader::default();
    let tokenizer = Tokenizer::new(sink, TokenizerOpts::default());
    let input = BufferQueue::default();
    input.push_back(StrTendril::from_slice(&text));
    // The reader stops the tokenizer (as a script would) once the head is over.
    if let TokenizerResult::Done = tokenizer.feed(&input) {
        tokenizer.end();
    }
    let head = tokenizer.sink.state.into_inner();
    if !head.is_html {
        return Discovery::NotHtml;
    }
    let page = Url::parse(page_url).ok();
    let base = match (&page, &head.base) {
        (Some(page), Some(base)) => page.join(base).ok().or_else(|| Some(page.clone())),
        (Some(page), None) => Some(page.clone()),
        (None, Some(base)) => Url::parse(base).ok(),
        (None, None) => None,
    };
    let mut feeds: Vec<AdvertisedFeed> = Vec::new();
    for link in head.links {
        if feeds.len() == MAX_FEEDS {
            break;
        }
        // `feed://host/rss` and `feed:https://host/rss` as what they stand for, as OPML
        // imports read them: some sites still advertise their feeds that way.
        let href = without_feed_scheme(&link.href);
        let resolved = match &base {
            Some(base) => base.join(&href),
            None => Url::parse(&href),
        };
        let Ok(url) = resolved else { continue };
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || (link.kind == FeedKind::Json && is_wordpress_api(&url))
        {
            continue;
        }
        let url = String::from(url);
        if url.len() > MAX_URL_LEN || feeds.iter().any(|f| f.url == url) {
            continue;
        }
        feeds.push(AdvertisedFeed {
            url,
            kind: link.kind,
            title: link.title,
        });
    }
    Discovery::HtmlPage(feeds)
}

/// Whether `url` is WordPress's REST API, which every WordPress page advertises as
/// `application/json` (JSON Feed 1.0's type) beside its real feeds: a `/wp-json/` path, or
/// the `rest_route` parameter of sites without pretty links. It answers a JSON array, no
/// feed, so it is not listed: pasted from `discover --toml`, it failed at every poll
/// (review, session 28).
fn is_wordpress_api(url: &Url) -> bool {
    url.path().contains("/wp-json/") || url.query_pairs().any(|(name, _)| name == "rest_route")
}

/// Names for the `[[sources]]` blocks of `tradefeed discover --toml`, one per feed in order:
/// each `(title, url)` is named by its title (folded as advertised titles are) or, without
/// one, by its URL, so that every name keeps the config's rules: not empty, no control
/// characters, no white space at either end (the config would trim it with a warning), and
/// unique among themselves and against `taken` (the names the config already holds; compared
/// exactly, as the config compares its trimmed names).
///
/// A name already taken gets its feed's URL without the scheme in parentheses
/// (`Press (example.org/comments/feed/)`): feeds a page advertises under one title differ by
/// their URL, and that tells the operator which is which, where a bare number would not. A
/// name still taken then (or a URL used as the name, which a suffix would only repeat) gets
/// the first free number from 2 (`… (2)`). Deterministic: the same feeds and names give the
/// same result.
pub fn source_names<'a>(
    feeds: impl IntoIterator<Item = (Option<&'a str>, &'a str)>,
    taken: &std::collections::HashSet<String>,
) -> Vec<String> {
    let mut used: std::collections::HashSet<String> = taken.clone();
    let mut names = Vec::new();
    for (title, url) in feeds {
        // A URL loses white space and control characters as a URL parser drops them.
        let url: String = url
            .chars()
            .filter(|c| !c.is_whitespace() && !c.is_control())
            .collect();
        let titled = title.and_then(fold_title);
        let base = match &titled {
            Some(title) => title.clone(),
            None if url.is_empty() => "feed".to_owned(),
            None => url.clone(),
        };
        let mut candidates = vec![base.clone()];
        if titled.is_some() && !url.is_empty() {
            let label = url.split_once("://").map_or(&url[..], |(_, rest)| rest);
            candidates.push(format!("{base} ({label})"));
        }
        let name = candidates
            .into_iter()
            .chain((2..).map(|n| format!("{base} ({n})")))
            .find(|c| !used.contains(c))
            .expect("an unbounded sequence of distinct names has a free one");
        used.insert(name.clone());
        names.push(name);
    }
    names
}

/// Feeds named in [`page_message`] at most; `tradefeed discover` lists them all.
const MAX_FEEDS_NAMED: usize = 5;

/// Why an HTML page is no feed, naming the feeds it advertises so that the operator can set
/// the source's URL to one of them: the text of a poll's error (`fetch`, `sources`, the status
/// page, the fetch log), after "not a feed: ".
pub fn page_message(feeds: &[AdvertisedFeed]) -> String {
    if feeds.is_empty() {
        return "an HTML page, which advertises no feed (no <link rel=\"alternate\"> to RSS, \
                Atom or JSON Feed in its head)"
            .into();
    }
    let named: Vec<String> = feeds
        .iter()
        .take(MAX_FEEDS_NAMED)
        .map(ToString::to_string)
        .collect();
    let more = match feeds.len().saturating_sub(MAX_FEEDS_NAMED) {
        0 => String::new(),
        n => format!(", and {n} more (`tradefeed discover URL` lists them all)"),
    };
    let which = if feeds.len() == 1 {
        "to it"
    } else {
        "to one of them"
    };
    format!(
        "an HTML page; it advertises: {}{more}; set the source's url {which}",
        named.join(", ")
    )
}

/// The body as text, as a browser would decode it (minus the `<meta charset>` pre-scan: feed
/// URLs are ASCII in practice, and only a title could come out wrong).
fn decode<'a>(bytes: &'a [u8], content_type: Option<&str>) -> std::borrow::Cow<'a, str> {
    let declared = content_type.and_then(|ct| {
        ct.split(';').skip(1).find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| Encoding::for_label(value.trim().trim_matches('"').as_bytes()))?
        })
    });
    // A body cut at the read limit may end inside a character: that alone (no `error_len`)
    // still reads as UTF-8.
    let utf8 = match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    let encoding = declared.unwrap_or(if utf8 { UTF_8 } else { WINDOWS_1252 });
    // `decode` lets a byte-order mark override the encoding, as browsers do.
    encoding.decode(bytes).0
}

/// A `<link rel="alternate">` to a feed, before its href is resolved.
#[derive(Debug)]
struct FeedLink {
    href: String,
    kind: FeedKind,
    title: Option<String>,
}

/// What the head holds, as the tokenizer reads it.
#[derive(Debug, Default)]
struct Head {
    /// The first tag or doctype says HTML.
    is_html: bool,
    /// A tag or doctype has been seen (only the first decides `is_html`).
    started: bool,
    /// The first `<base href>`.
    base: Option<String>,
    links: Vec<FeedLink>,
}

#[derive(Debug, Default)]
struct HeadReader {
    state: RefCell<Head>,
}

/// Elements only an HTML document starts with.
const HTML_FIRST_ELEMENTS: [&str; 7] = ["html", "head", "body", "title", "meta", "link", "base"];

impl TokenSink for HeadReader {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut head = self.state.borrow_mut();
        match token {
            Token::DoctypeToken(doctype) if !head.started => {
                head.started = true;
                head.is_html = doctype
                    .name
                    .as_ref()
                    .is_some_and(|n| n.eq_ignore_ascii_case("html"));
            }
            Token::TagToken(tag) => {
                if !head.started {
                    head.started = true;
                    head.is_html = HTML_FIRST_ELEMENTS.contains(&&*tag.name);
                }
                // Only tags may return anything but `Continue` (the tokenizer asserts it).
                return read_tag(&mut head, tag);
            }
            _ => {}
        }
        TokenSinkResult::Continue
    }
}

/// Takes what a tag says and tells the tokenizer how to go on: a raw-text element's content
/// is text (as the tree builder would switch it), the end of the head stops it.
fn read_tag(head: &mut Head, tag: Tag) -> TokenSinkResult<()> {
    let attr = |name: &str| {
        tag.attrs
            .iter()
            .find(|a| &*a.name.local == name)
            .map(|a| &*a.value)
    };
    match (tag.kind, &*tag.name) {
        (TagKind::EndTag, "head") | (TagKind::StartTag, "body") => TokenSinkResult::Script(()),
        (TagKind::EndTag, _) => TokenSinkResult::Continue,
        (_, "link") => {
            let alternate = attr("rel").is_some_and(|rel| {
                rel.split_ascii_whitespace()
                    .any(|t| t.eq_ignore_ascii_case("alternate"))
            });
            let kind = attr("type").and_then(FeedKind::from_mime);
            let href = attr("href").map(str::trim).filter(|h| !h.is_empty());
            if let (true, Some(kind), Some(href)) = (alternate, kind, href) {
                // Bounded well above MAX_FEEDS: some may be duplicates or unusable.
                if head.links.len() < MAX_FEEDS * 4 && href.len() <= MAX_URL_LEN {
                    head.links.push(FeedLink {
                        href: href.to_owned(),
                        kind,
                        title: attr("title").and_then(fold_title),
                    });
                }
            }
            TokenSinkResult::Continue
        }
        (_, "base") => {
            if head.base.is_none() {
                head.base = attr("href").map(|h| h.trim().to_owned());
            }
            TokenSinkResult::Continue
        }
        (_, "script") => TokenSinkResult::RawData(RawKind::ScriptData),
        (_, "style" | "noscript" | "iframe" | "noembed" | "noframes" | "xmp") => {
            TokenSinkResult::RawData(RawKind::Rawtext)
        }
        (_, "title" | "textarea") => TokenSinkResult::RawData(RawKind::Rcdata),
        (_, "plaintext") => TokenSinkResult::Script(()),
        _ => TokenSinkResult::Continue,
    }
}

/// A title with white space and control characters folded to single spaces, and without
/// bidirectional embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069: they would
/// show the error it goes into in another order than it is, as titles elsewhere lose them),
/// cut to [`MAX_TITLE_CHARS`]; `None` when nothing is left.
fn fold_title(raw: &str) -> Option<String> {
    let kept: String = raw
        .chars()
        .filter(|c| !matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        .collect();
    let words: Vec<&str> = kept
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    let folded = words.join(" ");
    if folded.is_empty() {
        return None;
    }
    Some(match folded.char_indices().nth(MAX_TITLE_CHARS) {
        Some((cut, _)) => format!("{}…", &folded[..cut]),
        None => folded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "https://example.org/news/press.html";

    fn feeds(html: &str) -> Vec<AdvertisedFeed> {
        match discover(html.as_bytes(), Some("text/html"), PAGE) {
            Discovery::HtmlPage(feeds) => feeds,
            Discovery::NotHtml => panic!("not taken for HTML: {html}"),
        }
    }

    fn urls(html: &str) -> Vec<String> {
        feeds(html).into_iter().map(|f| f.url).collect()
    }

    /// The feeds `html` advertises are `expected`: URL and title each, in order.
    fn assert_urls_and_titles(html: &str, expected: &[(&str, Option<&str>)]) {
        let found = feeds(html);
        let got: Vec<(&str, Option<&str>)> = found
            .iter()
            .map(|f| (&f.url[..], f.title.as_deref()))
            .collect();
        assert_eq!(got, expected);
    }

    fn page(head: &str) -> String {
        format!("<!DOCTYPE html><html><head><title>Press</title>{head}</head><body></body></html>")
    }

    #[test]
    fn a_wordpress_head_yields_its_feeds_in_document_order_with_types_and_titles() {
        // Its REST API, advertised as `application/json` with or without pretty links, is
        // no feed and is not listed.
        let html = page(
            r#"<link rel="alternate" type="application/rss+xml" title="Example &raquo; Feed" href="https://example.org/feed/" />
<link rel="alternate" type="application/rss+xml" title="Example &raquo; Comments Feed" href="https://example.org/comments/feed/" />
<link rel="alternate" type="application/json+oembed" href="https://example.org/wp-json/oembed/1.0/embed?url=x" />
<link rel="alternate" type="application/json" href="https://example.org/wp-json/wp/v2/posts/42" />
<link rel="alternate" type="application/json" href="https://example.org/?rest_route=/wp/v2/pages/7" />
<link rel="stylesheet" href="/style.css" />
<link rel="alternate" type="application/atom+xml" title="Atom" href="/atom.xml">
<link rel="alternate" type="application/feed+json" href="/feed.json">"#,
        );
        assert_eq!(
            feeds(&html),
            vec![
                AdvertisedFeed {
                    url: "https://example.org/feed/".into(),
                    kind: FeedKind::Rss,
                    title: Some("Example » Feed".into()),
                },
                AdvertisedFeed {
                    url: "https://example.org/comments/feed/".into(),
                    kind: FeedKind::Rss,
                    title: Some("Example » Comments Feed".into()),
                },
                AdvertisedFeed {
                    url: "https://example.org/atom.xml".into(),
                    kind: FeedKind::Atom,
                    title: Some("Atom".into()),
                },
                AdvertisedFeed {
                    url: "https://example.org/feed.json".into(),
                    kind: FeedKind::JsonFeed,
                    title: None,
                },
            ]
        );
    }

    #[test]
    fn rel_is_a_case_insensitive_token_list_and_only_alternate_counts() {
        let html = page(
            r#"<link rel="ALTERNATE" type="application/rss+xml" href="/a.xml">
<link rel="home alternate" type="application/rss+xml" href="/b.xml">
<link rel="	alternate
" type="application/rss+xml" href="/c.xml">
<link rel="alternates" type="application/rss+xml" href="/no1.xml">
<link rel="alternate-feed" type="application/rss+xml" href="/no2.xml">
<link rel="feed" type="application/rss+xml" href="/no3.xml">
<link type="application/rss+xml" href="/no4.xml">"#,
        );
        assert_eq!(
            urls(&html),
            [
                "https://example.org/a.xml",
                "https://example.org/b.xml",
                "https://example.org/c.xml"
            ]
        );
    }

    #[test]
    fn types_are_case_insensitive_with_parameters_ignored_and_other_types_are_left_out() {
        let html = page(
            r#"<link rel=alternate type="Application/RSS+XML; charset=utf-8" href="/a.xml">
<link rel=alternate type=" application/atom+xml " href="/b.xml">
<link rel=alternate type="application/json" href="/c.json">
<link rel=alternate type="text/html" hreflang="fr" href="/fr/">
<link rel=alternate type="application/json+oembed" href="/oembed">
<link rel=alternate type="text/xml" href="/d.xml">
<link rel=alternate href="/no-type.xml">"#,
        );
        let found = feeds(&html);
        let got: Vec<(&str, FeedKind)> = found.iter().map(|f| (&f.url[..], f.kind)).collect();
        assert_eq!(
            got,
            [
                ("https://example.org/a.xml", FeedKind::Rss),
                ("https://example.org/b.xml", FeedKind::Atom),
                ("https://example.org/c.json", FeedKind::Json),
            ]
        );
    }

    #[test]
    fn relative_hrefs_resolve_against_the_page_url() {
        let html = page(
            r#"<link rel=alternate type=application/rss+xml href="feed.xml">
<link rel=alternate type=application/rss+xml href="../all.xml">
<link rel=alternate type=application/rss+xml href="//cdn.example.net/f.xml">
<link rel=alternate type=application/rss+xml href="?format=rss">"#,
        );
        assert_eq!(
            urls(&html),
            [
                "https://example.org/news/feed.xml",
                "https://example.org/all.xml",
                "https://cdn.example.net/f.xml",
                "https://example.org/news/press.html?format=rss",
            ]
        );
    }

    #[test]
    fn a_base_href_is_the_base_even_after_the_links_and_only_the_first_counts() {
        let html = page(
            r#"<link rel=alternate type=application/rss+xml href="feed.xml">
<base href="/blog/">
<base href="https://other.example/">"#,
        );
        assert_eq!(urls(&html), ["https://example.org/blog/feed.xml"]);
        let absolute = page(
            r#"<base href="http://mirror.example/site/"><link rel=alternate type=application/atom+xml href="atom">"#,
        );
        assert_eq!(urls(&absolute), ["http://mirror.example/site/atom"]);
    }

    #[test]
    fn character_references_in_hrefs_and_titles_are_decoded() {
        let html = page(
            r#"<link rel="alternate" type="application/rss+xml" title="Trade &amp; Tariffs &#8212; &quot;Daily&quot;" href="/feed?cat=1&amp;lang=en&#38;x=%20">"#,
        );
        let found = feeds(&html);
        assert_eq!(found[0].url, "https://example.org/feed?cat=1&lang=en&x=%20");
        assert_eq!(
            found[0].title.as_deref(),
            Some("Trade & Tariffs — \"Daily\"")
        );
    }

    #[test]
    fn unquoted_single_quoted_and_odd_attribute_markup_is_read_as_a_browser_would() {
        let html = "<html><head>\
            <link rel=alternate type=application/rss+xml href=/a.xml title=Unquoted>\
            <LINK REL='Alternate' TYPE='application/atom+xml' HREF='/b.xml' TITLE='Single \"quoted\"'>\
            <link\nrel = \"alternate\"\ntype = \"application/rss+xml\"\nhref = \"/c.xml\"/>\
            <link rel=alternate type=application/rss+xml href=/d.xml href=/ignored.xml>\
            </head></html>";
        assert_urls_and_titles(
            html,
            &[
                ("https://example.org/a.xml", Some("Unquoted")),
                ("https://example.org/b.xml", Some("Single \"quoted\"")),
                ("https://example.org/c.xml", None),
                ("https://example.org/d.xml", None),
            ],
        );
    }

    #[test]
    fn links_in_comments_scripts_and_styles_or_after_the_head_are_not_advertised() {
        let html = r#"<!DOCTYPE html><html><head>
<!-- <link rel="alternate" type="application/rss+xml" href="/commented.xml"> -->
<script>document.write('<link rel="alternate" type="application/rss+xml" href="/script.xml">');</script>
<style>/* <link rel="alternate" type="application/rss+xml" href="/style.xml"> */</style>
<title><link rel="alternate" type="application/rss+xml" href="/title.xml"></title>
<link rel="alternate" type="application/rss+xml" href="/real.xml">
</head><body>
<link rel="alternate" type="application/rss+xml" href="/body.xml">
</body></html>"#;
        assert_eq!(urls(html), ["https://example.org/real.xml"]);
    }

    #[test]
    fn duplicates_are_listed_once_and_non_http_schemes_are_left_out() {
        let html = page(
            r#"<link rel=alternate type=application/rss+xml href="/feed.xml" title="First">
<link rel=alternate type=application/atom+xml href="https://example.org/feed.xml" title="Again">
<link rel=alternate type=application/rss+xml href="javascript:alert(1)">
<link rel=alternate type=application/rss+xml href="ftp://example.org/f.xml">
<link rel=alternate type=application/rss+xml href="">
<link rel=alternate type=application/rss+xml href="http://[bad">
<link rel=alternate type=application/rss+xml href="HTTP://EXAMPLE.ORG/Other.xml">"#,
        );
        assert_urls_and_titles(
            &html,
            &[
                ("https://example.org/feed.xml", Some("First")),
                ("http://example.org/Other.xml", None),
            ],
        );
    }

    #[test]
    fn feed_pseudo_scheme_hrefs_are_read_as_the_urls_they_stand_for() {
        let html = page(
            r#"<link rel=alternate type=application/rss+xml href="feed://example.org/x.xml">
<link rel=alternate type=application/atom+xml href="feed:https://example.org/y.atom">
<link rel=alternate type=application/rss+xml href="FEED:HTTP://example.org/z.xml">
<link rel=alternate type=application/rss+xml href="feed:http://example.org/x.xml">
<link rel=alternate type=application/rss+xml href="feed:/relative.xml">
<link rel=alternate type=application/rss+xml href="feed:ftp://example.org/f.xml">"#,
        );
        assert_eq!(
            urls(&html),
            [
                "http://example.org/x.xml",
                "https://example.org/y.atom",
                "http://example.org/z.xml",
            ]
        );
    }

    #[test]
    fn at_most_twenty_feeds_are_listed_and_only_the_first_half_mebibyte_is_read() {
        let many: String = (0..50)
            .map(|i| format!(r#"<link rel=alternate type=application/rss+xml href="/f{i}.xml">"#))
            .collect();
        let found = urls(&page(&many));
        assert_eq!(found.len(), MAX_FEEDS);
        assert_eq!(found[19], "https://example.org/f19.xml");

        let padding = format!("<script>{}</script>", "x".repeat(MAX_SCAN_BYTES));
        let late = page(&format!(
            r#"<link rel=alternate type=application/rss+xml href="/early.xml">{padding}<link rel=alternate type=application/rss+xml href="/late.xml">"#
        ));
        assert_eq!(urls(&late), ["https://example.org/early.xml"]);
    }

    #[test]
    fn malformed_markup_neither_panics_nor_hides_the_links_before_it() {
        let html = "<html><head><link rel=alternate type=application/rss+xml href=/ok.xml>\
                    <meta content=\"unterminated><link rel=alternate type=application/rss+xml href=/lost.xml>";
        assert_eq!(urls(html), ["https://example.org/ok.xml"]);
        for junk in [
            "<html><head><link rel=\"alternate",
            "<html>\u{0}<<<>>>&&#x;&#99999999;</",
        ] {
            assert_eq!(
                discover(junk.as_bytes(), None, PAGE),
                Discovery::HtmlPage(vec![])
            );
        }
        // A tag cut off by the end of the body was never read.
        assert_eq!(discover(b"<html", None, PAGE), Discovery::NotHtml);
    }

    #[test]
    fn only_bodies_that_start_as_html_are_taken_for_pages() {
        for html in [
            "<!DOCTYPE html><p>x",
            "<!doctype HTML>",
            "\u{feff}  <html lang=en>",
            "<?xml version=\"1.0\"?>\n<html xmlns=\"http://www.w3.org/1999/xhtml\"></html>",
            "<!-- a comment first --><head><title>x</title></head>",
            "<title>No html element</title><link rel=alternate type=application/rss+xml href=/f>",
        ] {
            assert!(
                matches!(
                    discover(html.as_bytes(), None, PAGE),
                    Discovery::HtmlPage(_)
                ),
                "{html}"
            );
        }
        for other in [
            "",
            "plain text",
            "{\"json\": true}",
            "<?xml version=\"1.0\"?><opml version=\"2.0\"></opml>",
            "<urlset><url><loc>https://example.org/</loc></url></urlset>",
            "<rss version=\"2.0\"><channel></channel></rss>",
        ] {
            assert_eq!(
                discover(other.as_bytes(), None, PAGE),
                Discovery::NotHtml,
                "{other}"
            );
        }
    }

    #[test]
    fn a_declared_charset_decodes_titles_and_a_byte_order_mark_wins() {
        let latin1 = b"<html><head><link rel=alternate type=application/rss+xml title=\"Comit\xe9\" href=/f></head>";
        let found = match discover(latin1, Some("text/html; charset=ISO-8859-1"), PAGE) {
            Discovery::HtmlPage(f) => f,
            Discovery::NotHtml => panic!("not html"),
        };
        assert_eq!(found[0].title.as_deref(), Some("Comité"));
        // Undeclared and not UTF-8: windows-1252.
        let found = match discover(latin1, None, PAGE) {
            Discovery::HtmlPage(f) => f,
            Discovery::NotHtml => panic!("not html"),
        };
        assert_eq!(found[0].title.as_deref(), Some("Comité"));
    }

    #[test]
    fn a_utf8_body_cut_inside_a_character_still_reads_as_utf8() {
        let html =
            page("<link rel=alternate type=application/rss+xml href=/a title=\"Comité » Presse\">");
        let mut cut = html.into_bytes();
        // The read limit fell inside a two-byte character after the head.
        cut.extend_from_slice("<p>é".as_bytes());
        cut.pop();
        assert!(std::str::from_utf8(&cut).is_err());
        let found = match discover(&cut, None, PAGE) {
            Discovery::HtmlPage(f) => f,
            Discovery::NotHtml => panic!("not html"),
        };
        assert_eq!(found[0].title.as_deref(), Some("Comité » Presse"));
    }

    #[test]
    fn bidirectional_controls_leave_titles() {
        let html = page(
            "<link rel=alternate type=application/rss+xml href=/a \
             title=\"Press \u{202e}lmx.sserp\u{202c} \u{2067}feed\u{2069}\">",
        );
        assert_eq!(
            feeds(&html)[0].title.as_deref(),
            Some("Press lmx.sserp feed")
        );
    }

    #[test]
    fn titles_are_folded_and_cut_and_the_display_puts_the_url_first() {
        let long = "word ".repeat(100);
        let html = page(&format!(
            "<link rel=alternate type=application/rss+xml href=/a title=\"  Press\n\t releases  \">\
             <link rel=alternate type=application/atom+xml href=/b title=\"{long}\">\
             <link rel=alternate type=application/json href=/c title=\"   \">"
        ));
        let found = feeds(&html);
        assert_eq!(
            found[0].to_string(),
            "https://example.org/a (RSS \"Press releases\")"
        );
        let cut = found[1].title.as_deref().unwrap();
        assert_eq!(cut.chars().count(), MAX_TITLE_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(found[2].to_string(), "https://example.org/c (JSON)");
    }

    #[test]
    fn source_names_are_unique_among_themselves_and_against_the_config_and_never_empty() {
        let taken: std::collections::HashSet<String> = [
            "Press releases",
            "Comments (2)",
            "https://example.org/c.json",
        ]
        .map(String::from)
        .into();
        type Feeds<'a> = &'a [(Option<&'a str>, &'a str)];
        let cases: &[(Feeds, &[&str])] = &[
            // Free titles are kept as they are.
            (
                &[(Some("Trade news"), "https://example.org/a.xml")],
                &["Trade news"],
            ),
            // Two feeds under one title (the second an Atom copy): the later gets its URL.
            (
                &[
                    (Some("Blog"), "https://example.org/feed/"),
                    (Some("Blog"), "https://example.org/feed/atom/"),
                ],
                &["Blog", "Blog (example.org/feed/atom/)"],
            ),
            // A title the config holds gets the URL; a URL-named one the config holds a number.
            (
                &[
                    (Some("Press releases"), "http://example.org/press.xml"),
                    (None, "https://example.org/c.json"),
                ],
                &[
                    "Press releases (example.org/press.xml)",
                    "https://example.org/c.json (2)",
                ],
            ),
            // Title and URL both taken: the first free number (the config has "(2)").
            (
                &[
                    (Some("Comments"), "https://example.org/c.xml"),
                    (Some("Comments"), "https://example.org/c.xml?x"),
                    (Some("Comments"), "https://example.org/c.xml"),
                ],
                &[
                    "Comments",
                    "Comments (example.org/c.xml?x)",
                    "Comments (example.org/c.xml)",
                ],
            ),
            (
                &[
                    (Some("Comments"), "https://example.org/c.xml"),
                    (Some("Comments"), "https://example.org/c.xml"),
                    (Some("Comments"), "https://example.org/c.xml"),
                ],
                &["Comments", "Comments (example.org/c.xml)", "Comments (3)"],
            ),
            // Titles the config would refuse are folded; an empty one falls back to the URL.
            (
                &[
                    (
                        Some("  Daily\u{1}\tbrief \u{202e}x "),
                        "https://example.org/d",
                    ),
                    (Some(" \u{7} "), "https://example.org/e\tf"),
                ],
                &["Daily brief x", "https://example.org/ef"],
            ),
        ];
        for (feeds, expected) in cases {
            let names = source_names(feeds.iter().copied(), &taken);
            assert_eq!(names, *expected, "{feeds:?}");
            for name in &names {
                assert!(!taken.contains(name), "{name}");
                assert!(!name.trim().is_empty() && !name.chars().any(char::is_control));
            }
        }
    }

    #[test]
    fn the_poll_message_names_the_advertised_feeds_and_what_to_do() {
        let feed = |i: usize, title: Option<&str>| AdvertisedFeed {
            url: format!("https://example.org/f{i}.xml"),
            kind: FeedKind::Rss,
            title: title.map(String::from),
        };
        assert_eq!(
            page_message(&[feed(1, Some("Press releases"))]),
            "an HTML page; it advertises: https://example.org/f1.xml (RSS \"Press releases\"); \
             set the source's url to it"
        );
        let seven: Vec<AdvertisedFeed> = (0..7).map(|i| feed(i, None)).collect();
        let message = page_message(&seven);
        assert!(
            message.contains("https://example.org/f4.xml (RSS), and 2 more"),
            "{message}"
        );
        assert!(!message.contains("f5.xml"), "{message}");
        assert!(
            message.ends_with("set the source's url to one of them"),
            "{message}"
        );
        assert!(page_message(&[]).contains("advertises no feed"));
    }
}
