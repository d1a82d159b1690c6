//! Output feed rendering: Atom 1.0 (RFC 4287), RSS 2.0 and JSON Feed 1.1 from stored stories.
//!
//! Titles are plain text in every format; HTML is sanitized here, when it is served (entries keep
//! their feed's markup, see `normalize`); every
//! string is stripped of characters XML 1.0 forbids, so the output is well-formed whatever bytes
//! came in.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::normalize::{is_tracking_pixel, sanitize_html};
use crate::store::StoryView;

/// The three output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Atom 1.0.
    Atom,
    /// RSS 2.0.
    Rss,
    /// JSON Feed 1.1.
    Json,
}

impl Format {
    /// The format named by a file extension.
    pub fn from_extension(ext: &str) -> Option<Format> {
        match ext {
            "atom" => Some(Format::Atom),
            "rss" => Some(Format::Rss),
            "json" => Some(Format::Json),
            _ => None,
        }
    }

    /// The Content-Type to serve it with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Atom => "atom",
            Format::Rss => "rss",
            Format::Json => "json",
        }
    }
}

/// What a feed says about itself.
#[derive(Debug, Clone)]
pub struct FeedMeta {
    /// Feed title.
    pub title: String,
    /// Topic name (`all` for every story).
    pub topic: String,
    /// Public base URL (no trailing slash), for self and home links.
    pub base_url: String,
    /// The database's id namespace (part of every story id).
    pub instance: String,
    /// The feed's parameters as a canonical query string (kept in the self link and the id);
    /// built from validated parameters, never the raw request.
    pub query: String,
}

impl FeedMeta {
    fn self_url(&self, format: Format) -> String {
        let mut url = format!(
            "{}/feeds/{}.{}",
            self.base_url,
            self.topic,
            format.extension()
        );
        if !self.query.is_empty() {
            url.push('?');
            url.push_str(&xml_safe(&self.query));
        }
        url
    }

    fn feed_id(&self) -> String {
        let mut id = format!("tag:tradefeed,2026:{}/feeds/{}", self.instance, self.topic);
        if !self.query.is_empty() {
            id.push('?');
            id.push_str(&xml_safe(&self.query));
        }
        id
    }
}

/// The permanent id of a story: a tag URI (RFC 4151) that never changes for the story.
pub fn story_id(instance: &str, id: i64) -> String {
    format!("tag:tradefeed,2026:{instance}/story/{id}")
}

/// [`story_id`] read back: the database instance and the story number's text, whatever the
/// year (the date part of a tag URI names when its authority was held, not this release).
/// `None` for text that is not a story's feed id.
pub fn story_id_parts(tag: &str) -> Option<(&str, &str)> {
    let (_, path) = tag.strip_prefix("tag:tradefeed,")?.split_once(':')?;
    let (instance, number) = path.split_once("/story/")?;
    (!instance.is_empty() && !instance.contains('/')).then_some((instance, number))
}

/// Removes characters that XML 1.0 does not allow (C0 controls but tab/newline/return,
/// U+FFFE, U+FFFF), so no input can make the output malformed.
pub fn xml_safe(s: &str) -> String {
    s.chars()
        .filter(|&c| {
            matches!(c, '\t' | '\n' | '\r')
                || (c >= ' '
                    && c != '\u{FFFE}'
                    && c != '\u{FFFF}'
                    && !('\u{7F}'..='\u{84}').contains(&c)
                    && !('\u{86}'..='\u{9F}').contains(&c))
        })
        .collect()
}

fn escape_html(s: &str) -> String {
    html_escape::encode_double_quoted_attribute(s).into_owned()
}

/// The story's sanitized HTML plus an "Also reported by" list of its other appearances.
/// Entries keep their feed's markup: this is where it is made safe, relative URLs resolved
/// against the URL its feed was fetched from (`StoryView::base_url`).
fn story_html(story: &StoryView) -> String {
    // A sanitizer panic on one story's markup must not fail every feed that lists it (on every
    // request, since a failed render is not cached): that story is served as its plain text.
    let sanitized = std::panic::catch_unwind(|| {
        served_tags(text_paragraphs(sanitize_html(&story.html, &story.base_url)))
    });
    let mut html = sanitized.unwrap_or_else(|_| {
        tracing::error!(
            story = story.id,
            "the HTML sanitizer panicked on this story; serving its plain text"
        );
        format!("<p>{}</p>", escape_html(&story.text))
    });
    // Other outlets only: the representative's own feed's earlier versions of the item (a
    // correction under a new id took over) are not another outlet reporting it.
    let own_source = story
        .appearances
        .iter()
        .find(|a| a.url.is_some() && a.url == story.link)
        .map(|a| a.source.as_str());
    let others: Vec<_> = story
        .appearances
        .iter()
        .filter(|a| a.url.is_some() && a.url != story.link && Some(a.source.as_str()) != own_source)
        .collect();
    if !others.is_empty() {
        html.push_str("<p>Also reported by: ");
        for (i, a) in others.iter().enumerate() {
            if i > 0 {
                html.push_str(", ");
            }
            let url = a.url.as_deref().unwrap_or_default();
            if url.starts_with("http://") || url.starts_with("https://") {
                html.push_str(&format!(
                    "<a href=\"{}\" rel=\"noopener noreferrer\">{}</a>",
                    escape_html(url),
                    escape_html(&a.source)
                ));
            } else {
                html.push_str(&escape_html(&a.source));
            }
        }
        html.push_str("</p>");
    }
    xml_safe(&html)
}

/// Sanitized HTML that is plain text (no tag: a JSON Feed `content_text`, an Atom
/// `type="text"` content, an RSS description written as text) with its paragraphs marked: a
/// blank line parts two paragraphs, which HTML would run into one block (a feed reader shows
/// markup, not line breaks). Single line breaks stay as they are (text wrapped at 72
/// columns is not broken up). Markup is left alone: it has its own paragraphs. Done when
/// served, so nothing stored or hashed changes.
fn text_paragraphs(html: String) -> String {
    if html.contains('<') || !html.contains('\n') {
        return html;
    }
    let mut paragraphs = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in html.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line.trim_end());
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join("\n"));
    }
    if paragraphs.len() < 2 {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 7 * paragraphs.len());
    for paragraph in paragraphs {
        out.push_str("<p>");
        out.push_str(paragraph.trim_start());
        out.push_str("</p>");
    }
    out
}

/// Sanitized `html` as it is served: without tracking pixels, and with the user-info removed
/// from the URLs of its `href`, `src` and `cite` attributes. One pass over its tags, done when
/// serving, so stored HTML stays as it is.
///
/// Tracking pixels ([`is_tracking_pixel`]: `<img>` elements whose `width` and `height` are
/// both at most 1, such as FeedBurner's `~r/` beacons) show nothing, and every reader that
/// displays the story would fetch them, telling the tracker who read which story through this
/// daemon; the content hash leaves out the same ones, by the same definition. User-info:
/// entries stored before migration 07 hold HTML sanitized at ingest, its relative links
/// already made absolute against the source's URL, credentials included; later ones are
/// resolved at render against a base without them, so for those this changes nothing.
///
/// The serializer writes no raw `<` in text (it is `&lt;`) and every attribute as
/// ` name="value"` (a `"` in a value is `&quot;`), so each `<` outside a value starts a tag,
/// which ends at the first `>` outside a value, and an `<img>` has no end tag.
fn served_tags(html: String) -> String {
    let redact = html.contains('@');
    let pixels = html.contains("<img ");
    if !redact && !pixels {
        return html;
    }
    let mut out = String::with_capacity(html.len());
    let mut rest = html.as_str();
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        rest = &rest[lt..];
        let mut in_value = false;
        let end = rest
            .bytes()
            .position(|b| {
                in_value ^= b == b'"';
                b == b'>' && !in_value
            })
            .map_or(rest.len(), |at| at + 1);
        let (tag, after) = rest.split_at(end);
        rest = after;
        if pixels && is_tracking_pixel(tag) {
            continue;
        }
        if redact {
            push_redacted(&mut out, tag);
        } else {
            out.push_str(tag);
        }
    }
    out.push_str(rest);
    out
}

/// Pushes one serialized tag with the user-info removed from its `href`, `src` and `cite`
/// values (see [`served_tags`]).
fn push_redacted(out: &mut String, tag: &str) {
    let mut rest = tag;
    // A value opens at each `"` outside one and ends at the next `"`.
    while let Some(p) = rest.find('"') {
        let (head, tail) = rest.split_at(p + 1);
        out.push_str(head);
        let end = tail.find('"').map_or(tail.len(), |e| e + 1);
        let value = tail[..end].trim_end_matches('"');
        let name = head[..p].trim_end_matches('=');
        if [" href", " src", " cite"].iter().any(|a| name.ends_with(a)) {
            out.push_str(&super::redact_userinfo(value));
        } else {
            out.push_str(value);
        }
        out.push_str(&tail[value.len()..end]);
        rest = &tail[end..];
    }
    out.push_str(rest);
}

fn summary_text(story: &StoryView) -> String {
    const MAX: usize = 500;
    let text = story.text.trim();
    let cut = if text.chars().count() > MAX {
        let mut s: String = text.chars().take(MAX).collect();
        s.push('…');
        s
    } else {
        text.to_string()
    };
    xml_safe(&cut)
}

fn sources_line(story: &StoryView) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for a in &story.appearances {
        if !names.contains(&a.source) {
            names.push(a.source.clone());
        }
    }
    names
}

fn matched_topics(story: &StoryView) -> impl Iterator<Item = &crate::domain::TopicScore> {
    story.topics.iter().filter(|t| t.matched)
}

/// The feed-level `updated`: the newest story change, or the epoch for an empty feed (a fixed
/// value keeps an empty feed's ETag stable). It can lie before 1970 (a feed of old stories):
/// format it with [`http_date`] or [`writable`], never directly.
pub fn last_updated(stories: &[StoryView]) -> DateTime<Utc> {
    stories
        .iter()
        .map(|s| s.updated.max(s.published))
        .max()
        .unwrap_or_default()
}

/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the instants RFC 3339 and RFC 2822 dates
/// (four-digit years) can carry, as Unix seconds.
const WRITABLE_SECS: (i64, i64) = (-62_167_219_200, 253_402_300_799);

/// `t` moved into the years 0000–9999, where RFC 3339 and RFC 2822 dates can be written
/// (chrono panics writing RFC 2822 outside it). A stored date lies wherever its feed said:
/// `0000-01-01T00:00:00+01:00` is in year -1.
pub fn writable(t: DateTime<Utc>) -> DateTime<Utc> {
    let (first, last) = WRITABLE_SECS;
    let secs = t.timestamp();
    if (first..=last).contains(&secs) {
        t
    } else {
        DateTime::from_timestamp(secs.clamp(first, last), 0).unwrap_or_default()
    }
}

/// `t` as an HTTP date (`Last-Modified`), clamped to what one can say: no earlier than the
/// epoch and no later than the year 9999 (httpdate panics outside that range).
pub fn http_date(t: DateTime<Utc>) -> String {
    let secs = t.timestamp().clamp(0, WRITABLE_SECS.1).unsigned_abs();
    httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// The type an enclosure is served with when its feed gave none (RSS 2.0 and JSON Feed
/// require one).
const UNKNOWN_TYPE: &str = "application/octet-stream";

/// The Media RSS namespace, whose `media:thumbnail` carries a story's lead image in Atom and
/// RSS (JSON Feed has `image`).
const MEDIA_RSS_NAMESPACE: &str = "http://search.yahoo.com/mrss/";

/// An Atom entry's extensions holding one `<media:thumbnail url="…"/>`. atom_syndication
/// writes an extension's attributes as given (raw bytes), so the value goes in escaped.
fn atom_thumbnail(image: &str) -> atom_syndication::extension::ExtensionMap {
    let thumbnail = atom_syndication::extension::Extension {
        name: "media:thumbnail".into(),
        attrs: BTreeMap::from([("url".to_owned(), escape_html(&xml_safe(image)))]),
        ..Default::default()
    };
    BTreeMap::from([(
        "media".to_owned(),
        BTreeMap::from([("thumbnail".to_owned(), vec![thumbnail])]),
    )])
}

/// An RSS item's extensions holding one `<media:thumbnail url="…"/>` (the rss crate escapes
/// attribute values itself).
fn rss_thumbnail(image: &str) -> rss::extension::ExtensionMap {
    let thumbnail = rss::extension::Extension {
        name: "media:thumbnail".into(),
        attrs: BTreeMap::from([("url".to_owned(), xml_safe(image))]),
        ..Default::default()
    };
    BTreeMap::from([(
        "media".to_owned(),
        BTreeMap::from([("thumbnail".to_owned(), vec![thumbnail])]),
    )])
}

/// Renders an Atom 1.0 feed.
pub fn atom(meta: &FeedMeta, stories: &[StoryView]) -> Vec<u8> {
    use atom_syndication::{Category, Content, Entry, Feed, Link, Person, Text};
    let mut feed = Feed {
        title: Text::plain(xml_safe(&meta.title)),
        id: meta.feed_id(),
        updated: writable(last_updated(stories)).fixed_offset(),
        ..Default::default()
    };
    feed.links = vec![
        Link {
            href: meta.self_url(Format::Atom),
            rel: "self".into(),
            mime_type: Some("application/atom+xml".into()),
            ..Default::default()
        },
        Link {
            href: format!("{}/", meta.base_url),
            rel: "alternate".into(),
            mime_type: Some("text/html".into()),
            ..Default::default()
        },
    ];
    feed.generator = Some(atom_syndication::Generator {
        value: "tradefeed".into(),
        version: Some(env!("CARGO_PKG_VERSION").into()),
        ..Default::default()
    });
    // RFC 4287 4.1.1: a feed whose entries lack authors needs a feed-level author.
    feed.authors = vec![Person {
        name: "tradefeed".into(),
        ..Default::default()
    }];
    if stories.iter().any(|s| s.media.image.is_some()) {
        feed.namespaces
            .insert("media".into(), MEDIA_RSS_NAMESPACE.into());
    }
    feed.entries = stories
        .iter()
        .map(|s| {
            let mut entry = Entry {
                title: Text::plain(xml_safe(&s.title)),
                id: story_id(&meta.instance, s.id),
                updated: writable(s.updated.max(s.published)).fixed_offset(),
                published: Some(writable(s.published).fixed_offset()),
                summary: Some(Text::plain(summary_text(s))),
                content: Some(Content {
                    value: Some(story_html(s)),
                    content_type: Some("html".into()),
                    ..Default::default()
                }),
                ..Default::default()
            };
            if let Some(link) = &s.link {
                entry.links.push(Link {
                    href: xml_safe(link),
                    rel: "alternate".into(),
                    ..Default::default()
                });
            }
            // Every enclosure (RFC 4287 4.2.7.2: `length` is advisory, in bytes).
            for enclosure in &s.media.enclosures {
                entry.links.push(Link {
                    href: xml_safe(&enclosure.url),
                    rel: "enclosure".into(),
                    mime_type: enclosure.mime_type.as_deref().map(xml_safe),
                    length: enclosure.length.map(|l| l.to_string()),
                    title: enclosure.title.as_deref().map(xml_safe),
                    ..Default::default()
                });
            }
            if let Some(image) = &s.media.image {
                entry.extensions = atom_thumbnail(image);
            }
            entry.authors = s
                .authors
                .iter()
                .map(|a| Person {
                    name: xml_safe(a),
                    ..Default::default()
                })
                .collect();
            for source in sources_line(s) {
                entry.contributors.push(Person {
                    name: xml_safe(&source),
                    ..Default::default()
                });
            }
            entry.categories = matched_topics(s)
                .map(|t| Category {
                    term: t.topic.clone(),
                    scheme: Some("https://tradefeed.invalid/topics".into()),
                    label: Some(xml_safe(&format!(
                        "{} {:.2}: {}",
                        t.topic,
                        t.score,
                        t.why.join("; ")
                    ))),
                })
                .collect();
            entry
        })
        .collect();
    feed.to_string().into_bytes()
}

/// Renders an RSS 2.0 feed.
pub fn rss(meta: &FeedMeta, stories: &[StoryView]) -> Vec<u8> {
    use rss::{Category, Channel, Guid, Item};
    let mut channel = Channel {
        title: xml_safe(&meta.title),
        link: format!("{}/", meta.base_url),
        description: xml_safe(&format!("{} — {} stories", meta.title, meta.topic)),
        generator: Some(format!("tradefeed {}", env!("CARGO_PKG_VERSION"))),
        // Optional in RSS 2.0: an empty feed (a search with no hits yet, an unknown source)
        // has no build date to give, where the epoch read as "last built in 1970".
        last_build_date: (!stories.is_empty())
            .then(|| writable(last_updated(stories)).to_rfc2822()),
        ..Default::default()
    };
    channel.atom_ext = Some(rss::extension::atom::AtomExtension {
        links: vec![rss::extension::atom::Link {
            href: meta.self_url(Format::Rss),
            rel: "self".into(),
            mime_type: Some("application/rss+xml".into()),
            ..Default::default()
        }],
    });
    if stories.iter().any(|s| s.media.image.is_some()) {
        channel
            .namespaces
            .insert("media".into(), MEDIA_RSS_NAMESPACE.into());
    }
    channel.items = stories
        .iter()
        .map(|s| {
            let mut item = Item {
                title: Some(xml_safe(&s.title)),
                link: s.link.as_deref().map(xml_safe),
                description: Some(story_html(s)),
                guid: Some(Guid {
                    value: story_id(&meta.instance, s.id),
                    permalink: false,
                }),
                pub_date: Some(writable(s.published).to_rfc2822()),
                // RSS 2.0 carries one enclosure per item, whose three attributes are
                // required: a size of 0 when the feed gave none (as the RSS Best Practices
                // Profile says to write an unknown one), a generic type when it gave none.
                enclosure: s.media.primary().map(|e| rss::Enclosure {
                    url: xml_safe(&e.url),
                    length: e.length.unwrap_or(0).to_string(),
                    mime_type: e
                        .mime_type
                        .as_deref()
                        .map_or_else(|| UNKNOWN_TYPE.into(), xml_safe),
                }),
                ..Default::default()
            };
            if let Some(image) = &s.media.image {
                item.extensions = rss_thumbnail(image);
            }
            // The topic alone: readers turn each category into a tag, so a score or an
            // explanation in it made a tag per story (RSS has no label; Atom's category keeps
            // them in its label, the JSON Feed in `_tradefeed.topics`).
            item.categories = matched_topics(s)
                .map(|t| Category {
                    name: xml_safe(&t.topic),
                    domain: Some("https://tradefeed.invalid/topics".into()),
                })
                .collect();
            // RSS 2.0's <author> holds an e-mail address; names go in Dublin Core's creator,
            // which readers show as the author.
            if !s.authors.is_empty() {
                item.dublin_core_ext = Some(rss::extension::dublincore::DublinCoreExtension {
                    creators: s.authors.iter().map(|a| xml_safe(a)).collect(),
                    ..Default::default()
                });
            }
            // <source> names the feed the item came from, by its URL: the copy whose link the
            // story shows (its representative), else the first one seen.
            if let Some(source) = s
                .appearances
                .iter()
                .find(|a| a.url.is_some() && a.url == s.link)
                .or(s.appearances.first())
            {
                item.source = Some(rss::Source {
                    url: xml_safe(&crate::domain::url_for_display(&source.feed_url)),
                    title: Some(xml_safe(&source.source)),
                });
            }
            item
        })
        .collect();
    // `write_to` writes the XML declaration itself.
    let mut out = Vec::with_capacity(16 * 1024);
    match channel.write_to(&mut out) {
        Ok(_) => out,
        // Writing to a Vec cannot fail for I/O reasons; an error here is a bug, shown as such.
        Err(e) => format!("<error>{}</error>", xml_safe(&e.to_string())).into_bytes(),
    }
}

#[derive(Serialize)]
struct JsonFeed {
    version: &'static str,
    title: String,
    home_page_url: String,
    feed_url: String,
    items: Vec<JsonItem>,
}

#[derive(Serialize)]
struct JsonItem {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    title: String,
    content_html: String,
    summary: String,
    date_published: String,
    date_modified: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<JsonAuthor>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<JsonAttachment>,
    _tradefeed: Extension,
}

/// A JSON Feed 1.1 attachment (`url` and `mime_type` are required).
#[derive(Serialize)]
struct JsonAttachment {
    url: String,
    mime_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_in_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_in_seconds: Option<u64>,
}

#[derive(Serialize)]
struct JsonAuthor {
    name: String,
}

#[derive(Serialize)]
struct Extension {
    sources: Vec<String>,
    first_seen: String,
    appearances: Vec<JsonAppearance>,
    topics: Vec<JsonTopic>,
}

#[derive(Serialize)]
struct JsonAppearance {
    source: String,
    url: Option<String>,
    title: String,
    first_seen: String,
}

#[derive(Serialize)]
struct JsonTopic {
    name: String,
    score: f32,
    matched: bool,
    why: Vec<String>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    writable(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Renders a JSON Feed 1.1 with the `_tradefeed` extension on every item. Text goes through
/// [`xml_safe`] as in Atom and RSS: a control character or noncharacter a hostile feed put in a
/// title is no more welcome in a JSON reader than in an XML one.
pub fn json(meta: &FeedMeta, stories: &[StoryView]) -> Vec<u8> {
    let feed = JsonFeed {
        version: "https://jsonfeed.org/version/1.1",
        title: xml_safe(&meta.title),
        home_page_url: format!("{}/", meta.base_url),
        feed_url: meta.self_url(Format::Json),
        items: stories
            .iter()
            .map(|s| JsonItem {
                id: story_id(&meta.instance, s.id),
                url: s.link.as_deref().map(xml_safe),
                title: xml_safe(&s.title),
                content_html: story_html(s),
                summary: summary_text(s),
                date_published: rfc3339(s.published),
                date_modified: rfc3339(s.updated.max(s.published)),
                authors: s
                    .authors
                    .iter()
                    .map(|a| JsonAuthor { name: xml_safe(a) })
                    .collect(),
                tags: matched_topics(s).map(|t| xml_safe(&t.topic)).collect(),
                image: s.media.image.as_deref().map(xml_safe),
                attachments: s
                    .media
                    .enclosures
                    .iter()
                    .map(|e| JsonAttachment {
                        url: xml_safe(&e.url),
                        mime_type: e
                            .mime_type
                            .as_deref()
                            .map_or_else(|| UNKNOWN_TYPE.into(), xml_safe),
                        title: e.title.as_deref().map(xml_safe),
                        size_in_bytes: e.length,
                        duration_in_seconds: e.duration,
                    })
                    .collect(),
                _tradefeed: Extension {
                    sources: sources_line(s).iter().map(|n| xml_safe(n)).collect(),
                    first_seen: rfc3339(s.first_seen),
                    appearances: s
                        .appearances
                        .iter()
                        .map(|a| JsonAppearance {
                            source: xml_safe(&a.source),
                            url: a.url.as_deref().map(xml_safe),
                            title: xml_safe(&a.title),
                            first_seen: rfc3339(a.first_seen),
                        })
                        .collect(),
                    topics: s
                        .topics
                        .iter()
                        .map(|t| JsonTopic {
                            name: xml_safe(&t.topic),
                            score: (t.score * 1000.0).round() / 1000.0,
                            matched: t.matched,
                            why: t.why.iter().map(|w| xml_safe(w)).collect(),
                        })
                        .collect(),
                },
            })
            .collect(),
    };
    serde_json::to_vec_pretty(&feed)
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}").into_bytes())
}

/// Renders `stories` in `format`.
pub fn render(format: Format, meta: &FeedMeta, stories: &[StoryView]) -> Vec<u8> {
    match format {
        Format::Atom => atom(meta, stories),
        Format::Rss => rss(meta, stories),
        Format::Json => json(meta, stories),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A story of one entry with `html` as stored, and nothing else.
    fn story_of_html(html: &str) -> StoryView {
        StoryView {
            id: 1,
            title: "t".into(),
            link: None,
            html: html.into(),
            base_url: String::new(),
            text: String::new(),
            authors: Vec::new(),
            media: Default::default(),
            published: DateTime::default(),
            updated: DateTime::default(),
            first_seen: DateTime::default(),
            appearances: Vec::new(),
            topics: Vec::new(),
        }
    }

    #[test]
    fn tracking_pixels_are_dropped_credentials_redacted_and_other_markup_kept() {
        let cases = [
            (
                r#"<p>Duties rise.</p><img src="http://feeds.feedburner.com/~r/x/~4/a" height="1" width="1">"#,
                "<p>Duties rise.</p>",
            ),
            (
                r#"<img width="0" src="https://t.example/o.gif" height="1px"><b>x</b>"#,
                "<b>x</b>",
            ),
            // Both in one pass: the pixel goes, the link loses its credentials.
            (
                r#"<a href="http://u:p@x.example/a">a</a><img src="https://t@t.example/p" width="1" height="1">"#,
                r#"<a href="http://x.example/a">a</a>"#,
            ),
            (
                r#"<img src="https://x.example/chart.png" width="1" height="300">"#,
                r#"<img src="https://x.example/chart.png" width="1" height="300">"#,
            ),
            (
                r#"<img src="https://x.example/chart.png">"#,
                r#"<img src="https://x.example/chart.png">"#,
            ),
            (
                r#"<img alt=" width=&quot;1&quot; height=&quot;1&quot;" src="https://x.example/a.png">"#,
                r#"<img alt=" width=&quot;1&quot; height=&quot;1&quot;" src="https://x.example/a.png">"#,
            ),
            (
                r#"<a title="<img width=1>" href="https://x.example/">a &lt;img width="1" height="1"&gt;</a>"#,
                r#"<a title="<img width=1>" href="https://x.example/">a &lt;img width="1" height="1"&gt;</a>"#,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(served_tags(input.to_string()), want, "input {input:?}");
        }
    }

    #[test]
    fn plain_text_is_served_with_its_paragraphs_and_markup_as_it_is() {
        let cases = [
            (
                "Duties rise on steel.\n\nThe ministry said more would follow.",
                "<p>Duties rise on steel.</p><p>The ministry said more would follow.</p>",
            ),
            // White space around and between, CRLF-free (the sanitizer drops CR), lines
            // wrapped inside a paragraph kept, `&lt;` text kept escaped.
            (
                "\n  First line\n  wrapped here.  \n \n\n\tSecond &lt;CADX.O&gt;\n",
                "<p>First line\n  wrapped here.</p><p>Second &lt;CADX.O&gt;</p>",
            ),
            // One paragraph, or none: as it is.
            ("One paragraph\nwrapped.", "One paragraph\nwrapped."),
            ("No break at all", "No break at all"),
            ("", ""),
            // Markup has its own paragraphs.
            ("<p>a</p>\n\n<p>b</p>", "<p>a</p>\n\n<p>b</p>"),
            ("a\n\n<b>b</b>", "a\n\n<b>b</b>"),
        ];
        for (input, want) in cases {
            assert_eq!(text_paragraphs(input.to_string()), want, "input {input:?}");
        }
        // As every output serves a story: a JSON Feed's `content_text`, stored escaped.
        let story = story_of_html("Quotas are set.\n\nTalks resume &amp; end.");
        assert_eq!(
            story_html(&story),
            "<p>Quotas are set.</p><p>Talks resume &amp; end.</p>"
        );
    }

    #[test]
    fn xml_safe_removes_characters_xml_forbids_and_keeps_the_rest() {
        let cases = [
            ("plain", "plain"),
            ("tab\tnew\nline\r", "tab\tnew\nline\r"),
            ("bell\u{7}null\u{0}esc\u{1b}", "bellnullesc"),
            ("nonchar\u{FFFE}\u{FFFF}", "nonchar"),
            ("Zölle – 関税", "Zölle – 関税"),
        ];
        for (input, want) in cases {
            assert_eq!(xml_safe(input), want, "input {input:?}");
        }
    }

    #[test]
    fn dates_outside_what_http_and_rfc_dates_can_carry_are_clamped_not_panicked_on() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let cases = [
            // (stored, HTTP date, RFC 2822, RFC 3339)
            (
                at("1969-07-20T20:17:00Z"),
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "Sun, 20 Jul 1969 20:17:00 +0000",
                "1969-07-20T20:17:00Z",
            ),
            (
                at("1970-01-01T00:00:00+01:00"),
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "Wed, 31 Dec 1969 23:00:00 +0000",
                "1969-12-31T23:00:00Z",
            ),
            (
                at("0000-01-01T00:00:00+01:00"),
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "Sat, 1 Jan 0000 00:00:00 +0000",
                "0000-01-01T00:00:00Z",
            ),
            (
                DateTime::<Utc>::MIN_UTC,
                "Thu, 01 Jan 1970 00:00:00 GMT",
                "Sat, 1 Jan 0000 00:00:00 +0000",
                "0000-01-01T00:00:00Z",
            ),
            (
                DateTime::<Utc>::MAX_UTC,
                "Fri, 31 Dec 9999 23:59:59 GMT",
                "Fri, 31 Dec 9999 23:59:59 +0000",
                "9999-12-31T23:59:59Z",
            ),
            (
                at("2026-11-10T09:00:00Z"),
                "Tue, 10 Nov 2026 09:00:00 GMT",
                "Tue, 10 Nov 2026 09:00:00 +0000",
                "2026-11-10T09:00:00Z",
            ),
        ];
        for (t, http, rfc2822, rfc3339_text) in cases {
            assert_eq!(http_date(t), http, "{t:?}");
            assert_eq!(writable(t).to_rfc2822(), rfc2822, "{t:?}");
            assert_eq!(rfc3339(t), rfc3339_text, "{t:?}");
        }
    }

    #[test]
    fn credentials_in_links_of_html_stored_already_absolute_are_removed_at_render() {
        // As rows from before migration 07 hold it: sanitized, links resolved against the
        // source's URL with its user-info.
        let story = story_of_html(
            "<p>See <a href=\"http://u:secret@feeds.example/a?x=1@2\">this</a> \
             <img src=\"https://tok@img.example/i.png\" alt=\"a@b\"> \
             <q cite=\"http://u:p@c.example/\">q</q> mail me@example.com, \
             http://u:p@text.example/ as text, and x=\"1 in a quote: \
             <a href=\"http://u:later@late.example/\">later</a> \
             and href=\"http://u:p@prose.example/\" in prose.</p>",
        );
        let html = story_html(&story);
        assert!(!html.contains("secret") && !html.contains("tok@"), "{html}");
        assert!(!html.contains("u:p@c.example"), "{html}");
        assert!(
            !html.contains("later@"),
            "after a quote in the text: {html}"
        );
        for kept in [
            "href=\"http://feeds.example/a?x=1@2\"",
            "src=\"https://img.example/i.png\"",
            "cite=\"http://c.example/\"",
            "alt=\"a@b\"",
            "me@example.com",
            // Text is the publisher's: only attributes hold links resolved against our URL.
            "http://u:p@text.example/ as text",
            "href=\"http://late.example/\"",
            "http://u:p@prose.example/",
        ] {
            assert!(html.contains(kept), "{kept} in {html}");
        }
    }

    #[test]
    fn story_ids_are_tag_uris_that_depend_only_on_instance_and_id() {
        assert_eq!(story_id("ab12", 7), "tag:tradefeed,2026:ab12/story/7");
        assert_eq!(story_id_parts(&story_id("ab12", 7)), Some(("ab12", "7")));
        assert_eq!(story_id_parts("tag:tradefeed,2026:/story/7"), None);
        assert_eq!(story_id_parts("tag:tradefeed,2026:ab12/feeds/all"), None);
        assert_ne!(story_id("ab12", 7), story_id("cd34", 7));
    }

    /// "Also reported by" names other outlets: not the representative's own feed, whose
    /// earlier version of the item (a correction under a new id took over) is no other outlet.
    #[test]
    fn also_reported_by_lists_other_outlets_only() {
        let appearance = |source: &str, url: &str| crate::domain::Appearance {
            source: source.into(),
            feed_url: format!("https://{source}.example/feed"),
            url: Some(url.into()),
            title: "t".into(),
            first_seen: DateTime::default(),
            evidence: "first".into(),
        };
        let mut story = media_story(1, crate::domain::Media::default());
        story.link = Some("https://a.example/pact-corrected".into());
        story.appearances = vec![
            appearance("A", "https://a.example/pact"),
            appearance("B", "https://b.example/pact"),
            appearance("A", "https://a.example/pact-corrected"),
        ];
        let html = story_html(&story);
        assert!(
            html.contains("Also reported by: <a href=\"https://b.example/pact\""),
            "{html}"
        );
        assert!(!html.contains("a.example"), "{html}");
        story.appearances.remove(1);
        assert!(!story_html(&story).contains("Also reported by"));
    }

    fn media_story(id: i64, media: crate::domain::Media) -> StoryView {
        StoryView {
            id,
            title: format!("Episode {id}"),
            link: Some(format!("https://pod.example/{id}")),
            html: "<p>Notes.</p>".into(),
            base_url: "https://pod.example/feed".into(),
            text: "Notes.".into(),
            authors: Vec::new(),
            media,
            published: DateTime::default(),
            updated: DateTime::default(),
            first_seen: DateTime::default(),
            appearances: Vec::new(),
            topics: Vec::new(),
        }
    }

    /// An empty feed (a search with no hits yet) gives no RSS build date rather than the
    /// epoch, which readers showed as "last built in 1970"; a feed with stories gives its
    /// newest change.
    #[test]
    fn an_empty_rss_feed_has_no_build_date() {
        let empty = String::from_utf8(rss(&meta(), &[])).unwrap();
        assert!(!empty.contains("lastBuildDate"), "{empty}");
        assert!(!empty.contains("1970"), "{empty}");
        let full = String::from_utf8(rss(&meta(), &stories_with_media())).unwrap();
        assert!(full.contains("<lastBuildDate>"), "{full}");
    }

    fn meta() -> FeedMeta {
        FeedMeta {
            title: "All".into(),
            topic: "all".into(),
            base_url: "http://127.0.0.1:8080".into(),
            instance: "ab12".into(),
            query: String::new(),
        }
    }

    /// Three stories: one with a thumbnail, an image and an untyped MP3 whose URL needs
    /// escaping (as stored: URL-serialized); an article with a PDF and a photo; one without.
    fn stories_with_media() -> Vec<StoryView> {
        use crate::domain::{Enclosure, Media};
        vec![
            media_story(
                1,
                Media {
                    enclosures: vec![
                        Enclosure {
                            url: "https://img.example/still.jpg".into(),
                            mime_type: Some("image/jpeg".into()),
                            ..Default::default()
                        },
                        Enclosure {
                            url: "https://cdn.example/ep1.mp3?a=1&b=%3C2%3E".into(),
                            mime_type: None,
                            length: Some(105_003_355),
                            title: Some("MP3 \"HQ\" & more".into()),
                            duration: Some(3723),
                        },
                    ],
                    image: Some("https://img.example/thumb.jpg?w=1&h=2".into()),
                },
            ),
            media_story(
                2,
                Media {
                    enclosures: vec![
                        Enclosure {
                            url: "https://cdn.example/photo.jpg".into(),
                            mime_type: Some("image/jpeg".into()),
                            length: Some(5),
                            ..Default::default()
                        },
                        Enclosure {
                            url: "https://cdn.example/report.pdf".into(),
                            mime_type: Some("application/pdf".into()),
                            length: Some(52_000),
                            ..Default::default()
                        },
                    ],
                    image: None,
                },
            ),
            media_story(3, Default::default()),
        ]
    }

    /// The enclosures our own parser reads back from a rendered feed, per item.
    fn read_back(body: &[u8]) -> Vec<crate::domain::Media> {
        let feed = crate::parse::parse_feed(body, None).expect("the output parses");
        feed.items.into_iter().map(|i| i.media).collect()
    }

    #[test]
    fn atom_serves_every_enclosure_as_a_link_and_the_image_as_a_media_thumbnail() {
        let body = atom(&meta(), &stories_with_media());
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(
            text.contains(r#"xmlns:media="http://search.yahoo.com/mrss/""#),
            "{text}"
        );
        assert!(
            text.contains(r#"<media:thumbnail url="https://img.example/thumb.jpg?w=1&amp;h=2"#),
            "escaped once: {text}"
        );
        let got = read_back(&body);
        let urls = |m: &crate::domain::Media| -> Vec<(String, Option<String>, Option<u64>)> {
            m.enclosures
                .iter()
                .map(|e| (e.url.clone(), e.mime_type.clone(), e.length))
                .collect()
        };
        assert_eq!(
            urls(&got[0]),
            [
                (
                    "https://img.example/still.jpg".into(),
                    Some("image/jpeg".into()),
                    None
                ),
                (
                    "https://cdn.example/ep1.mp3?a=1&b=%3C2%3E".into(),
                    None,
                    Some(105_003_355)
                ),
            ]
        );
        assert_eq!(
            got[0].enclosures[1].title.as_deref(),
            Some("MP3 \"HQ\" & more")
        );
        // (feed-rs drops a `media:thumbnail` outside a `media:content`: our parser takes the
        // first image enclosure; feedparser reads the thumbnail, see tests/enclosures.rs.)
        assert_eq!(
            got[0].image.as_deref(),
            Some("https://img.example/still.jpg")
        );
        assert_eq!(got[1].enclosures.len(), 2);
        assert_eq!(got[2], crate::domain::Media::default());
    }

    #[test]
    fn rss_serves_one_enclosure_audio_or_video_first_with_all_three_attributes() {
        let body = rss(&meta(), &stories_with_media());
        let text = String::from_utf8(body.clone()).unwrap();
        // The MP3 before the still image; its unknown type written generic; the PDF before
        // the photo.
        assert!(
            text.contains(
                r#"<enclosure url="https://cdn.example/ep1.mp3?a=1&amp;b=%3C2%3E" length="105003355" type="application/octet-stream"/>"#
            ),
            "{text}"
        );
        assert!(
            text.contains(
                r#"<enclosure url="https://cdn.example/report.pdf" length="52000" type="application/pdf"/>"#
            ),
            "{text}"
        );
        assert_eq!(
            text.matches("<enclosure ").count(),
            2,
            "one per item at most"
        );
        assert!(
            text.contains(r#"<media:thumbnail url="https://img.example/thumb.jpg?w=1&amp;h=2"#),
            "escaped once: {text}"
        );
        let got = read_back(&body);
        assert_eq!(
            got[0].enclosures[0].url,
            "https://cdn.example/ep1.mp3?a=1&b=%3C2%3E"
        );
        assert_eq!(got[1].enclosures[0].url, "https://cdn.example/report.pdf");
        assert_eq!(got[2], crate::domain::Media::default());
    }

    #[test]
    fn json_feed_serves_every_enclosure_as_an_attachment_and_the_image() {
        let body = json(&meta(), &stories_with_media());
        let feed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let items = feed["items"].as_array().unwrap();
        assert_eq!(
            items[0]["attachments"],
            serde_json::json!([
                {"url": "https://img.example/still.jpg", "mime_type": "image/jpeg"},
                {"url": "https://cdn.example/ep1.mp3?a=1&b=%3C2%3E",
                 "mime_type": "application/octet-stream", "title": "MP3 \"HQ\" & more",
                 "size_in_bytes": 105_003_355, "duration_in_seconds": 3723}
            ])
        );
        assert_eq!(items[0]["image"], "https://img.example/thumb.jpg?w=1&h=2");
        assert_eq!(items[1]["attachments"].as_array().unwrap().len(), 2);
        assert!(items[1].get("image").is_none());
        assert!(items[2].get("attachments").is_none() && items[2].get("image").is_none());
        // Our parser reads them back (durations included).
        let got = read_back(&body);
        assert_eq!(got[0].enclosures[1].duration, Some(3723));
        assert_eq!(got[0].enclosures[1].length, Some(105_003_355));
    }
}
