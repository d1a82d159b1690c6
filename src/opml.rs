//! OPML 2.0, the subscription-list format every feed reader imports and exports: read one into
//! the config (keeping the operator's comments and layout), write the configured sources as one.
//!
//! Reading uses quick-xml, which never expands DTD entities: a document that declares entities
//! is refused, and an undefined entity reference is an error, so no input can grow in memory.
//! Writing is plain string building with every attribute escaped; the output is checked by
//! parsing it back in the tests.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use crate::config::{Config, ConfigError};
use crate::domain::without_feed_scheme;

/// One feed of an OPML subscription list, or one configured source to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpmlFeed {
    /// Display name (`title`, else `text`, else the URL's host).
    pub name: String,
    /// The feed URL (`xmlUrl`), trimmed.
    pub url: String,
    /// Folder path (enclosing outlines' `text`) then `category` segments (with `%2F`, `%2C`
    /// and `%25` read as `/`, `,` and `%`), without duplicates.
    pub tags: Vec<String>,
}

impl From<&crate::domain::Source> for OpmlFeed {
    /// A configured source as an OPML outline: its name, URL and tags.
    fn from(source: &crate::domain::Source) -> OpmlFeed {
        OpmlFeed {
            name: source.name.clone(),
            url: source.url.clone(),
            tags: source.tags.clone(),
        }
    }
}

/// Why an OPML file could not be read. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum OpmlError {
    /// The file could not be read.
    #[error("{path}: cannot read the OPML file: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not well-formed XML, or not OPML.
    #[error("{path}: {}{message}", at_line(.line))]
    Malformed {
        /// The file.
        path: String,
        /// 1-based line of the problem (0: the whole document).
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Folders nested deeper than this refuse the document. Every feed carries its folder path as
/// tags, so a hostile file nesting thousands of folders around thousands of feeds made
/// millions of tags from a few hundred KB (a 258 KB file took 2.4 GB of memory and wrote a
/// 78 MB config); no feed reader nests folders more than a few levels.
pub const MAX_FOLDER_DEPTH: usize = 32;

/// Longer folder names and `category` segments are cut to this many characters (on a character
/// boundary) before they become tags. Every feed in a folder carries the folder's name, so one
/// 100 KB folder name around 10,000 one-line feeds (a 500 KB file) made 1 GB of tags; no feed
/// reader names a folder with more than a few words.
pub const MAX_TAG_CHARS: usize = 200;

/// An import whose tags add up to more bytes than this refuses the document (at the feed that
/// crosses it). With names cut to [`MAX_TAG_CHARS`] and folders at most [`MAX_FOLDER_DEPTH`]
/// deep, a feed still carries up to 6.4 KB of tags; this bounds the whole list. 100,000 feeds
/// in folders two deep with 20-character names take about 4 MB.
pub const MAX_TAG_BYTES: usize = 16 << 20;

/// "line N: " for a problem at a line, nothing for one of the whole document (line 0).
fn at_line(line: &usize) -> String {
    match line {
        0 => String::new(),
        n => format!("line {n}: "),
    }
}

/// Larger OPML files are refused before they are read: a subscription list of 100,000 feeds
/// is about 15 MB.
pub const MAX_OPML_BYTES: u64 = 64 << 20;

/// Parses an OPML file from disk.
pub fn read_file(path: &Path) -> Result<Vec<OpmlFeed>, OpmlError> {
    use std::io::Read as _;
    let read_error = |source| OpmlError::Read {
        path: path.display().to_string(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_OPML_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_OPML_BYTES {
        return Err(OpmlError::Malformed {
            path: path.display().to_string(),
            line: 0,
            message: format!(
                "larger than {} MiB: not a subscription list",
                MAX_OPML_BYTES >> 20
            ),
        });
    }
    parse(&bytes, &path.display().to_string())
}

/// Parses OPML bytes; `origin` names the document in errors. Feeds are every `outline` with an
/// `xmlUrl` inside `<body>`, nested outlines included, in document order. Outlines nested
/// more than [`MAX_FOLDER_DEPTH`] deep refuse the document, folder and category names are cut
/// to [`MAX_TAG_CHARS`], and tags adding up to more than [`MAX_TAG_BYTES`] refuse it.
pub fn parse(bytes: &[u8], origin: &str) -> Result<Vec<OpmlFeed>, OpmlError> {
    let malformed = |line: usize, message: String| OpmlError::Malformed {
        path: origin.to_string(),
        line,
        message,
    };
    let text = decode(bytes).map_err(|m| malformed(0, m))?;
    let line_at = |offset: u64| {
        let end = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(text.len());
        text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    };

    let mut reader = quick_xml::Reader::from_str(&text);
    // Outline stack: `Some(label)` for a folder (its text becomes a tag), `None` for a feed
    // outline that happens to have children (its name is not a category).
    let mut folders: Vec<Option<String>> = Vec::new();
    let mut depth = 0usize;
    let (mut seen_root, mut root_closed, mut in_body, mut seen_body) = (false, false, false, false);
    let mut feeds = Vec::new();
    let mut tag_bytes = 0usize;
    loop {
        let position = reader.buffer_position();
        let event = reader.read_event().map_err(|e| {
            malformed(
                line_at(reader.error_position()),
                format!("not well-formed XML: {e}"),
            )
        })?;
        match event {
            Event::Eof => break,
            Event::DocType(d) if AsRef::<str>::as_ref(&d).contains("<!ENTITY") => {
                return Err(malformed(
                    line_at(position),
                    "the DOCTYPE declares entities; entity expansion is not supported".into(),
                ));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = e.name().as_ref().to_string();
                if depth == 0 {
                    if seen_root {
                        return Err(malformed(
                            line_at(position),
                            "more than one root element".into(),
                        ));
                    }
                    seen_root = true;
                    if name != "opml" {
                        return Err(malformed(
                            line_at(position),
                            format!("the root element is <{name}>, not <opml>: not an OPML file"),
                        ));
                    }
                } else if depth == 1 && name == "body" {
                    seen_body = true;
                    in_body = !is_empty;
                } else if in_body && name == "outline" {
                    if !is_empty && folders.len() >= MAX_FOLDER_DEPTH {
                        return Err(malformed(
                            line_at(position),
                            format!(
                                "outlines nested more than {MAX_FOLDER_DEPTH} deep: \
                                 not a subscription list"
                            ),
                        ));
                    }
                    let attrs = attributes(e).map_err(|m| malformed(line_at(position), m))?;
                    let label =
                        |key: &str| attr(&attrs, key).map(clean_label).filter(|s| !s.is_empty());
                    let tag = |key: &str| label(key).map(|l| cut_tag(&l).to_string());
                    let url = without_feed_scheme(attr(&attrs, "xmlurl").map_or("", str::trim));
                    let url = url.as_ref();
                    if url.is_empty() {
                        if !is_empty {
                            folders.push(tag("text").or_else(|| tag("title")));
                        }
                    } else {
                        let mut tags: Vec<String> = folders.iter().flatten().cloned().collect();
                        if let Some(categories) = attr(&attrs, "category") {
                            // Every level of every category path is a tag, as every folder is.
                            tags.extend(
                                categories
                                    .split(',')
                                    .flat_map(|c| c.split('/'))
                                    .map(|c| {
                                        cut_tag(&clean_label(&unescape_category(c))).to_string()
                                    })
                                    .filter(|s| !s.is_empty()),
                            );
                        }
                        // Tags are cut to MAX_TAG_CHARS, so the clones are small.
                        let mut seen = HashSet::new();
                        tags.retain(|t| seen.insert(t.clone()));
                        tag_bytes = tag_bytes.saturating_add(tags.iter().map(String::len).sum());
                        if tag_bytes > MAX_TAG_BYTES {
                            return Err(malformed(
                                line_at(position),
                                format!(
                                    "the feeds' folder and category tags add up to more than \
                                     {} MiB: not a subscription list",
                                    MAX_TAG_BYTES >> 20
                                ),
                            ));
                        }
                        let name = label("title")
                            .or_else(|| label("text"))
                            .or_else(|| {
                                url::Url::parse(url)
                                    .ok()
                                    .and_then(|u| u.host_str().map(str::to_string))
                            })
                            .unwrap_or_else(|| url.to_string());
                        feeds.push(OpmlFeed {
                            name,
                            url: url.to_string(),
                            tags,
                        });
                        if !is_empty {
                            folders.push(None);
                        }
                    }
                }
                if !is_empty {
                    depth += 1;
                }
            }
            Event::End(e) => {
                depth = depth.saturating_sub(1);
                let name = e.name().as_ref().to_string();
                if depth == 0 {
                    root_closed = true;
                } else if depth == 1 && name == "body" {
                    in_body = false;
                } else if in_body && name == "outline" {
                    folders.pop();
                }
            }
            _ => {}
        }
    }
    if !seen_root {
        return Err(malformed(
            0,
            "no root element: the file is empty or not XML".into(),
        ));
    }
    if !root_closed {
        return Err(malformed(
            line_at(text.len() as u64),
            "the document ends before </opml>: the file is truncated".into(),
        ));
    }
    if !seen_body {
        return Err(malformed(0, "<opml> has no <body>".into()));
    }
    Ok(feeds)
}

/// The document as UTF-8: a BOM wins, then valid UTF-8, then the declared encoding.
fn decode(bytes: &[u8]) -> Result<String, String> {
    if let Some((encoding, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, malformed) = encoding.decode_without_bom_handling(&bytes[bom..]);
        return if malformed {
            Err(format!("bytes that are not valid {}", encoding.name()))
        } else {
            Ok(text.into_owned())
        };
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok(text.to_string());
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
    let declared = head
        .split_once("encoding=")
        .and_then(|(_, rest)| {
            let quote = rest.chars().next()?;
            let rest = &rest[quote.len_utf8()..];
            rest.split(quote).next().map(str::to_string)
        })
        .ok_or("the file is not UTF-8 and declares no encoding")?;
    let encoding = encoding_rs::Encoding::for_label(declared.as_bytes())
        .ok_or_else(|| format!("unknown encoding {declared:?}"))?;
    let (text, _, malformed) = encoding.decode(bytes);
    if malformed {
        return Err(format!("bytes that are not valid {declared}"));
    }
    Ok(text.into_owned())
}

/// An element's attributes with lower-case names (exporters disagree on `xmlUrl` vs `xmlurl`).
fn attributes(e: &BytesStart<'_>) -> Result<Vec<(String, String)>, String> {
    e.attributes()
        .map(|a| {
            let a = a.map_err(|err| format!("bad attribute: {err}"))?;
            let key = a.key.as_ref().to_ascii_lowercase();
            let value = a
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| format!("attribute {key}: {err}"))?;
            Ok((key, value.into_owned()))
        })
        .collect()
}

fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Whitespace folded, control characters dropped (the config refuses them in names).
fn clean_label(s: &str) -> String {
    s.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A label as a tag: at most [`MAX_TAG_CHARS`] characters, cut on a character boundary.
fn cut_tag(label: &str) -> &str {
    match label.char_indices().nth(MAX_TAG_CHARS) {
        Some((end, _)) => label[..end].trim_end(),
        None => label,
    }
}

/// The escapes a tag takes in a `category` attribute, where OPML 2.0 (after RSS 2.0's
/// `category`) gives `,` (between categories) and `/` (between the levels of one) a meaning and
/// offers no escape of its own: URL-style, upper-case hex.
const CATEGORY_ESCAPES: [(char, &str); 3] = [('/', "%2F"), (',', "%2C"), ('%', "%25")];

/// The escape at the start of `s`, if any (hex digits in either case), and the character it
/// stands for.
fn category_escape_at(s: &str) -> Option<char> {
    let code = s.get(..3)?;
    CATEGORY_ESCAPES
        .iter()
        .find(|(_, escape)| escape.eq_ignore_ascii_case(code))
        .map(|(c, _)| *c)
}

/// A tag as one category of a `category` attribute: `/` and `,` escaped, and `%` only where it
/// would otherwise start an escape, so that `100%` stays as other readers should show it.
fn escape_category(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len());
    for (i, c) in tag.char_indices() {
        match c {
            '/' => out.push_str("%2F"),
            ',' => out.push_str("%2C"),
            '%' if category_escape_at(&tag[i..]).is_some() => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`escape_category`], for one level of a category path: the three escapes
/// become their characters, any other `%` stays as it is.
fn unescape_category(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    let mut rest = segment;
    while let Some(c) = rest.chars().next() {
        match category_escape_at(rest) {
            Some(escaped) => {
                out.push(escaped);
                rest = &rest[3..];
            }
            None => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// Escapes text for a double-quoted XML attribute, dropping characters XML 1.0 forbids.
fn escape_attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Attribute-value normalization would turn raw tab/newline into spaces.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// Renders an OPML 2.0 document: sources with tags are grouped under an outline named after
/// their first tag (all tags also go in `category`, so an import restores them); sources
/// without tags sit directly in `<body>`. Groups appear in the order of their first source.
/// Each tag is one category in the spec's form for a tag (no `/`), with `/`, `,` and a `%`
/// that would start an escape written `%2F`, `%2C` and `%25` (see [`escape_category`]).
pub fn render(title: &str, created: DateTime<Utc>, sources: &[OpmlFeed]) -> String {
    let mut xml =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<opml version=\"2.0\">\n");
    let _ = writeln!(
        xml,
        "  <head>\n    <title>{}</title>\n    <dateCreated>{}</dateCreated>\n  </head>\n  <body>",
        escape_attr(title),
        // RFC 822 date as OPML 2.0 asks, e.g. "Sat, 28 Nov 2026 00:11:31 GMT".
        created.format("%a, %d %b %Y %H:%M:%S GMT")
    );
    let outline = |xml: &mut String, indent: &str, s: &OpmlFeed| {
        let name = escape_attr(&s.name);
        let _ = write!(
            xml,
            "{indent}<outline type=\"rss\" text=\"{name}\" title=\"{name}\" xmlUrl=\"{}\"",
            escape_attr(&s.url)
        );
        if !s.tags.is_empty() {
            let categories: Vec<String> = s.tags.iter().map(|t| escape_category(t)).collect();
            let _ = write!(xml, " category=\"{}\"", escape_attr(&categories.join(",")));
        }
        xml.push_str("/>\n");
    };
    for s in sources.iter().filter(|s| s.tags.is_empty()) {
        outline(&mut xml, "    ", s);
    }
    let mut groups: Vec<&str> = Vec::new();
    for s in sources {
        if let Some(first) = s.tags.first()
            && !groups.contains(&first.as_str())
        {
            groups.push(first);
        }
    }
    for group in groups {
        let label = escape_attr(group);
        let _ = writeln!(xml, "    <outline text=\"{label}\" title=\"{label}\">");
        for s in sources
            .iter()
            .filter(|s| s.tags.first().map(String::as_str) == Some(group))
        {
            outline(&mut xml, "      ", s);
        }
        xml.push_str("    </outline>\n");
    }
    xml.push_str("  </body>\n</opml>\n");
    xml
}

/// Names listed per reason in an [`ImportReport`]'s summary line; a re-import of a large list
/// would otherwise print every name.
const LISTED_AT_MOST: usize = 10;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Names of the sources added, in order.
    pub added: Vec<String>,
    /// Feeds skipped because their URL is already in the config (or earlier in the same
    /// OPML), by OPML name.
    pub already_present: Vec<String>,
    /// Feeds skipped because a configured source has their name with another URL (perhaps
    /// the same feed, moved): by OPML name. Said apart, as the feed may be a new one.
    pub name_taken: Vec<String>,
    /// Feeds skipped because their URL is not http(s): (name, reason).
    pub invalid: Vec<(String, String)>,
}

impl ImportReport {
    /// Feeds not added, for any reason.
    pub fn skipped(&self) -> usize {
        self.already_present.len() + self.name_taken.len() + self.invalid.len()
    }
}

impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "added {}, skipped {}", self.added.len(), self.skipped())?;
        let mut reasons = Vec::new();
        let listed = |names: &[String]| {
            let shown = &names[..names.len().min(LISTED_AT_MOST)];
            let mut list = shown.join(", ");
            if names.len() > shown.len() {
                let _ = write!(list, " and {} more", names.len() - shown.len());
            }
            list
        };
        if !self.already_present.is_empty() {
            reasons.push(format!(
                "already present: {}",
                listed(&self.already_present)
            ));
        }
        if !self.name_taken.is_empty() {
            reasons.push(format!(
                "name configured with another URL, rename the outline to add it: {}",
                listed(&self.name_taken)
            ));
        }
        if !self.invalid.is_empty() {
            let shown: Vec<String> = self
                .invalid
                .iter()
                .take(LISTED_AT_MOST)
                .map(|(name, why)| format!("{name}: {why}"))
                .collect();
            let mut list = shown.join("; ");
            if self.invalid.len() > shown.len() {
                let _ = write!(list, " and {} more", self.invalid.len() - shown.len());
            }
            reasons.push(format!("invalid URL: {list}"));
        }
        if !reasons.is_empty() {
            write!(f, " ({})", reasons.join("; "))?;
        }
        Ok(())
    }
}

/// Why an import changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The OPML file is unreadable or malformed.
    #[error(transparent)]
    Opml(#[from] OpmlError),
    /// The config could not be read or written.
    #[error("{path}: {what}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What we tried.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The config is not TOML, or `sources` is not a list of tables.
    #[error("{path}: {message}")]
    ConfigShape {
        /// The config file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The config was invalid before the import; nothing was changed.
    #[error("the config is invalid before the import (nothing changed): {0}")]
    InvalidBefore(ConfigError),
    /// The edited config would be invalid; the original was left untouched.
    #[error("the config would be invalid after the import, so it was left untouched: {0}")]
    InvalidAfter(ConfigError),
}

/// URL as compared for duplicates: trimmed, scheme and host lower-cased (what `url` does when
/// it parses); unparsable text is compared trimmed.
pub fn comparable_url(url: &str) -> String {
    let url = url.trim();
    url::Url::parse(url).map_or_else(|_| url.to_string(), |u| u.to_string())
}

/// A feed URL written `scheme://host…` (see [`crate::domain::parse_http_url`]), checked
/// before the feed is added so that one bad outline is reported rather than failing the import.
/// Stricter than the config, which still loads a leniently read URL with a warning: an import
/// is new input, and nothing running depends on it.
fn check_url(url: &str) -> Result<(), String> {
    crate::domain::parse_http_url(url)
        .map(drop)
        .map_err(|e| format!("{url:?} {e}"))
}

/// Adds `feeds` to the config text as `[[sources]]` tables appended after the existing ones;
/// every other byte of `config_text` is kept. Skips feeds whose URL (after
/// [`comparable_url`]) or name is already configured: a name match means the operator already
/// has that feed, perhaps at an updated URL, so re-importing the same OPML adds nothing. Two
/// different feeds with one name inside the OPML are both added, the later one as "Name (2)".
/// `origin` goes in a comment above the first added source. `path` names the config in errors.
pub fn merge_into_config(
    config_text: &str,
    path: &Path,
    feeds: &[OpmlFeed],
    origin: &str,
) -> Result<(String, ImportReport), ImportError> {
    let shape = |message: String| ImportError::ConfigShape {
        path: path.display().to_string(),
        message,
    };
    let mut doc: DocumentMut = config_text
        .parse()
        .map_err(|e: toml_edit::TomlError| shape(format!("not valid TOML: {e}")))?;

    let mut urls = HashSet::new();
    let mut names = HashSet::new();
    match doc.get("sources") {
        None => {}
        Some(Item::ArrayOfTables(list)) => {
            for t in list.iter() {
                if let Some(u) = t.get("url").and_then(Item::as_str) {
                    urls.insert(comparable_url(u));
                }
                if let Some(n) = t.get("name").and_then(Item::as_str) {
                    names.insert(n.trim().to_string());
                }
            }
        }
        Some(Item::Value(Value::Array(list))) => {
            for t in list.iter().filter_map(Value::as_inline_table) {
                if let Some(u) = t.get("url").and_then(Value::as_str) {
                    urls.insert(comparable_url(u));
                }
                if let Some(n) = t.get("name").and_then(Value::as_str) {
                    names.insert(n.trim().to_string());
                }
            }
        }
        Some(_) => {
            return Err(shape(
                "`sources` is not a list of [[sources]] tables".into(),
            ));
        }
    }
    let configured_names = names.clone();

    let mut report = ImportReport::default();
    let mut added = Vec::new();
    for feed in feeds {
        if let Err(why) = check_url(&feed.url) {
            report.invalid.push((feed.name.clone(), why));
            continue;
        }
        if urls.contains(&comparable_url(&feed.url)) {
            report.already_present.push(feed.name.clone());
            continue;
        }
        if configured_names.contains(&feed.name) {
            report.name_taken.push(feed.name.clone());
            continue;
        }
        urls.insert(comparable_url(&feed.url));
        let mut name = feed.name.clone();
        let mut n = 2;
        while names.contains(&name) {
            name = format!("{} ({n})", feed.name);
            n += 1;
        }
        names.insert(name.clone());
        report.added.push(name.clone());
        added.push(OpmlFeed {
            name,
            url: feed.url.clone(),
            tags: feed.tags.clone(),
        });
    }
    if added.is_empty() {
        return Ok((config_text.to_string(), report));
    }

    let stamp = Utc::now().format("%Y-%m-%d");
    // One comment line whatever the file is called: a line break in the name would end the
    // comment and put the rest of the name into the config as TOML.
    let heading = format!("\n# Imported from {} on {stamp}.\n", clean_label(origin));
    match doc.get_mut("sources") {
        Some(Item::Value(Value::Array(list))) => {
            for feed in &added {
                let mut t = InlineTable::new();
                t.insert("name", feed.name.as_str().into());
                t.insert("url", feed.url.as_str().into());
                if !feed.tags.is_empty() {
                    t.insert("tags", Value::Array(tag_array(&feed.tags)));
                }
                list.push(t);
            }
        }
        _ => {
            // A file without sources gets them at its end, after every table it has.
            let had_sources = doc.get("sources").is_some();
            if !had_sources {
                doc.insert("sources", Item::ArrayOfTables(ArrayOfTables::new()));
            }
            // What follows the last table is the document's trailing text, which `toml_edit`
            // writes after every table, the added ones too. Its lines up to the first blank
            // one hang on the last table (a comment on it, a commented-out key of it) or are
            // a file of comments only: below the imported sources, uncommenting such a key
            // changed an imported source. They stay where they were, before the heading; a
            // block after a blank line (a commented-out source) stays at the end.
            // Only when no other table comes after the sources: after one (`[cluster]`), the
            // comments are that table's, and the imported sources go before it.
            let last_header = config_text
                .lines()
                .rev()
                .map(str::trim_start)
                .find(|line| line.starts_with('['));
            let sources_last = !had_sources
                || last_header.is_none_or(|header| {
                    header
                        .strip_prefix("[[")
                        .and_then(|h| h.split_once("]]"))
                        .is_some_and(|(name, _)| name.trim() == "sources")
                });
            let trailing = doc.trailing().as_str().unwrap_or("").to_string();
            let attached_len: usize = if sources_last {
                trailing
                    .split_inclusive('\n')
                    .take_while(|line| !line.trim().is_empty())
                    .map(str::len)
                    .sum()
            } else {
                0
            };
            let (attached, rest) = trailing.split_at(attached_len);
            let heading = format!("{attached}{heading}");
            doc.set_trailing(rest);
            let list = doc
                .get_mut("sources")
                .and_then(Item::as_array_of_tables_mut)
                .expect("sources is an array of tables here");
            for (i, feed) in added.iter().enumerate() {
                let mut t = Table::new();
                t.insert("name", toml_edit::value(feed.name.as_str()));
                t.insert("url", toml_edit::value(feed.url.as_str()));
                if !feed.tags.is_empty() {
                    t.insert("tags", toml_edit::value(tag_array(&feed.tags)));
                }
                t.decor_mut()
                    .set_prefix(if i == 0 { heading.as_str() } else { "\n" });
                list.push(t);
            }
        }
    }
    let mut text = doc.to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    // toml_edit writes every line ending as `\n`: a file written with `\r\n` (its first line
    // says which) gets them back, on its own lines and the added ones alike.
    let first_line = config_text.split_inclusive('\n').next().unwrap_or("");
    if first_line.ends_with("\r\n") {
        text = text.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    Ok((text, report))
}

fn tag_array(tags: &[String]) -> Array {
    tags.iter().map(String::as_str).collect()
}

/// Imports an OPML file into the config at `config_path`: validates the config first, merges
/// (see [`merge_into_config`]), writes a temp file beside the config, validates it with
/// [`Config::load`] and only then renames it over the original, so a failure at any step
/// leaves the original untouched. A symlinked config is edited at its target.
pub fn import_file(config_path: &Path, opml_path: &Path) -> Result<ImportReport, ImportError> {
    let io = |path: &Path, what: &'static str| {
        let path = path.display().to_string();
        move |source| ImportError::Io { path, what, source }
    };
    let target =
        std::fs::canonicalize(config_path).map_err(io(config_path, "cannot find the config"))?;
    let feeds = read_file(opml_path)?;
    let original =
        std::fs::read_to_string(&target).map_err(io(&target, "cannot read the config"))?;
    Config::parse(&original, &target).map_err(ImportError::InvalidBefore)?;
    let origin = opml_path.file_name().map_or_else(
        || opml_path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (edited, report) = merge_into_config(&original, &target, &feeds, &origin)?;
    if report.added.is_empty() {
        return Ok(report);
    }

    let temp = temp_path(&target);
    let result = write_and_check(&target, &temp, &edited);
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result.map(|()| report)
}

fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map_or_else(|| "config".into(), |n| n.to_string_lossy().into_owned());
    target.with_file_name(format!(".{name}.import-{}.tmp", std::process::id()))
}

fn write_and_check(target: &Path, temp: &Path, text: &str) -> Result<(), ImportError> {
    let io = |path: &Path, what: &'static str| {
        let path = path.display().to_string();
        move |source| ImportError::Io { path, what, source }
    };
    let original = std::fs::metadata(target).map_err(io(target, "cannot read the config"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    // Private until it has the config's own permissions below.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(temp)
        .map_err(io(temp, "cannot create the temp file"))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io(temp, "cannot write the temp file"))?;
    drop(file);
    // Keep the config's owner and mode: the service may read it under its own user. Changing
    // the owner needs root; when it fails the importing user owns the file, as after an edit.
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::chown(temp, Some(original.uid()), Some(original.gid()));
    }
    std::fs::set_permissions(temp, original.permissions())
        .map_err(io(temp, "cannot set the temp file's permissions"))?;
    // Same folder, so relative paths in the config resolve exactly as they will after rename.
    Config::load(temp).map_err(ImportError::InvalidAfter)?;
    std::fs::rename(temp, target).map_err(io(target, "cannot replace the config"))?;
    // The rename is durable once the folder is synced; failing that is not worth an error.
    if let Some(dir) = target.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(name: &str, url: &str, tags: &[&str]) -> OpmlFeed {
        OpmlFeed {
            name: name.into(),
            url: url.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn outlines_are_read_with_folders_categories_and_name_fallbacks() {
        let opml = br#"<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>t</title></head><body>
  <outline text="Top" xmlUrl=" https://a.example/top.xml "/>
  <outline text="News">
    <outline text="Europe" title="Europe">
      <outline text="Text name" title="Title name" type="rss" xmlUrl="https://b.example/feed"/>
    </outline>
    <outline type="rss" xmlurl="https://c.example/rss" category="/wire/us,/tariffs"/>
  </outline>
  <outline text="Feed with children" xmlUrl="https://d.example/f">
    <outline text="child &amp; &lt;friend&gt;" xmlUrl="https://e.example/f"/>
  </outline>
  <outline text="Empty folder"></outline>
</body></opml>"#;
        let got = parse(opml, "test.opml").unwrap();
        let want = vec![
            feed("Top", "https://a.example/top.xml", &[]),
            feed("Title name", "https://b.example/feed", &["News", "Europe"]),
            feed(
                "c.example",
                "https://c.example/rss",
                &["News", "wire", "us", "tariffs"],
            ),
            feed("Feed with children", "https://d.example/f", &[]),
            feed("child & <friend>", "https://e.example/f", &[]),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn malformed_or_foreign_documents_are_refused_with_the_file_and_line() {
        let cases: [(&[u8], &str); 7] = [
            (b"", "no root element"),
            (b"<html><body/></html>", "not <opml>"),
            (b"<opml version=\"2.0\"><head/></opml>", "no <body>"),
            (
                b"<opml>\n<body>\n<outline text=\"x\" xmlUrl=\"http://a/\">\n</body></opml>",
                "line 4",
            ),
            (b"<opml><body><outline text=\"a\"/>", "truncated"),
            (
                b"<!DOCTYPE opml [<!ENTITY x \"yyyy\">]><opml><body/></opml>",
                "entities",
            ),
            (
                b"<opml><body><outline text=\"&x;\" xmlUrl=\"http://a/\"/></body></opml>",
                "attribute text",
            ),
        ];
        for (input, needle) in cases {
            let err = parse(input, "subs.opml").unwrap_err().to_string();
            assert!(err.starts_with("subs.opml:"), "{err}");
            assert!(err.contains(needle), "{err:?} should mention {needle:?}");
            // A problem of the whole document names no line (lines count from 1).
            assert!(!err.contains("line 0"), "{err}");
        }
        assert_eq!(
            parse(b"", "subs.opml").unwrap_err().to_string(),
            "subs.opml: no root element: the file is empty or not XML"
        );
    }

    #[test]
    fn a_latin1_document_is_decoded_by_its_declaration() {
        let mut bytes =
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><opml><body><outline text=\"Caf"
                .to_vec();
        bytes.push(0xE9);
        bytes.extend_from_slice(b"\" xmlUrl=\"http://a.example/\"/></body></opml>");
        let got = parse(&bytes, "latin1.opml").unwrap();
        assert_eq!(got[0].name, "Café");
    }

    #[test]
    fn rendered_opml_escapes_everything_and_reads_back_the_same() {
        let sources = vec![
            feed("Plain", "https://a.example/feed", &[]),
            feed(
                "Q&A <\"quoted\"> 'x'",
                "https://b.example/rss?a=1&b=2",
                &["news", "us"],
            ),
            feed("Other news", "http://c.example/", &["news"]),
            feed("Official", "https://d.example/atom", &["official", "wto"]),
        ];
        let created = DateTime::parse_from_rfc3339("2026-11-28T00:11:31Z")
            .unwrap()
            .with_timezone(&Utc);
        let xml = render("My <feeds> & more", created, &sources);
        assert!(
            xml.contains("<dateCreated>Sat, 28 Nov 2026 00:11:31 GMT</dateCreated>"),
            "{xml}"
        );
        assert!(
            xml.contains("<title>My &lt;feeds&gt; &amp; more</title>"),
            "{xml}"
        );
        let mut back = parse(xml.as_bytes(), "rendered").unwrap();
        back.sort_by(|a, b| a.name.cmp(&b.name));
        let mut want = sources.clone();
        want.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(back, want);
    }

    #[test]
    fn categories_escape_slashes_commas_and_only_the_per_cent_signs_that_start_an_escape() {
        let cases = [
            ("plain", "plain"),
            ("EU/UK", "EU%2FUK"),
            ("tariffs, duties", "tariffs%2C duties"),
            ("100%", "100%"),
            ("50% off", "50% off"),
            ("a%2Fb", "a%252Fb"),
            ("a%2fb", "a%252fb"),
            ("%25", "%2525"),
            ("%/", "%%2F"),
            ("%2,", "%2%2C"),
            ("Zölle/関税", "Zölle%2F関税"),
        ];
        for (tag, escaped) in cases {
            assert_eq!(escape_category(tag), escaped, "{tag:?}");
            assert_eq!(unescape_category(escaped), tag, "{escaped:?}");
        }
        // A foreign file's lower-case hex is read too; other per cent signs are text.
        assert_eq!(unescape_category("a%2fb%2c%zz%"), "a/b,%zz%");
    }

    /// A foreign reader's `category` keeps its meaning: every level of every path is a tag.
    #[test]
    fn foreign_category_paths_still_give_one_tag_per_level() {
        let opml = br#"<opml version="2.0"><body>
<outline text="f" xmlUrl="https://f.example/" category="/Boston/Weather,/Harvard/Berkman,Politics,50%"/>
</body></opml>"#;
        let got = parse(opml, "foreign.opml").unwrap();
        assert_eq!(
            got[0].tags,
            ["Boston", "Weather", "Harvard", "Berkman", "Politics", "50%"]
        );
    }

    proptest::proptest! {
        /// Any tag the importer keeps as it is (no control characters or runs of white
        /// space, at most MAX_TAG_CHARS) comes back exactly, in order, from a rendered
        /// document, in first place (the folder) and after it.
        #[test]
        fn rendered_tags_read_back_exactly(
            raw in proptest::collection::vec("[a-c/,%25FfCc \"&<>öé関]{1,12}", 1..6),
        ) {
            let mut tags: Vec<String> = Vec::new();
            for t in raw.iter().map(|t| clean_label(t)) {
                if !t.is_empty() && !tags.contains(&t) {
                    tags.push(t);
                }
            }
            proptest::prop_assume!(!tags.is_empty());
            let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
            let sources = vec![
                feed("One", "https://one.example/", &tag_refs),
                feed("Two", "https://two.example/", &[]),
            ];
            let xml = render("t", Utc::now(), &sources);
            let back = parse(xml.as_bytes(), "rendered").unwrap();
            proptest::prop_assert_eq!(&back[1].tags, &tags, "{}", xml);
        }
    }

    #[test]
    fn urls_compare_equal_after_trimming_and_lower_casing_scheme_and_host() {
        let cases = [
            (
                "HTTPS://Example.ORG/Feed",
                " https://example.org/Feed ",
                true,
            ),
            ("http://example.org", "http://example.org/", true),
            (
                "https://example.org/Feed",
                "https://example.org/feed",
                false,
            ),
            ("http://example.org/a", "https://example.org/a", false),
        ];
        for (a, b, same) in cases {
            assert_eq!(comparable_url(a) == comparable_url(b), same, "{a} vs {b}");
        }
    }

    #[test]
    fn merging_appends_new_sources_and_skips_known_urls_names_and_bad_schemes() {
        let config = "# head comment\n[server]\nlisten = \"127.0.0.1:0\" # inline\n\n\
                      # sources\n[[sources]]\nname = \"A\"\nurl = \"https://A.example/feed\"\n";
        let feeds = vec![
            feed("A copy", "https://a.example/feed", &[]),
            feed("A", "https://a.example/moved", &[]),
            feed("B", "https://b.example/feed", &["news"]),
            feed("B", "https://b2.example/feed", &[]),
            feed("B again", "https://B.example/feed", &[]),
            feed("Bad", "ftp://c.example/feed", &[]),
        ];
        let (text, report) =
            merge_into_config(config, Path::new("t.toml"), &feeds, "subs.opml").unwrap();
        assert!(text.starts_with(config), "{text}");
        assert_eq!(report.added, ["B", "B (2)"]);
        assert_eq!(report.already_present, ["A copy", "B again"]);
        // Another URL under a configured name: said apart, as it may be another feed.
        assert_eq!(report.name_taken, ["A"]);
        assert_eq!(report.invalid.len(), 1);
        assert!(
            report
                .to_string()
                .contains("; name configured with another URL, rename the outline to add it: A;"),
            "{report}"
        );
        assert_eq!(
            report.to_string().split(" (").next().unwrap(),
            "added 2, skipped 4"
        );
        let added = &text[config.len()..];
        assert!(
            added.starts_with("\n# Imported from subs.opml on "),
            "{added}"
        );
        assert!(
            added.contains(
                "[[sources]]\nname = \"B\"\nurl = \"https://b.example/feed\"\ntags = [\"news\"]\n"
            ),
            "{added}"
        );
        let parsed = Config::parse(&text, Path::new("t.toml")).unwrap();
        assert_eq!(parsed.sources.len(), 3);
    }

    #[test]
    fn merging_into_a_config_with_crlf_line_endings_keeps_them_and_adds_lines_with_them() {
        let config = "# head comment\r\n[server]\r\nlisten = \"127.0.0.1:0\" # inline\r\n\r\n\
                      [[sources]]\r\nname = \"A\"\r\nurl = \"https://a.example/feed\"\r\n";
        let feeds = vec![feed("B", "https://b.example/feed", &["news"])];
        let (text, report) =
            merge_into_config(config, Path::new("t.toml"), &feeds, "subs.opml").unwrap();
        assert_eq!(report.added, ["B"]);
        assert!(text.starts_with(config), "{text:?}");
        assert_eq!(
            text.matches('\n').count(),
            text.matches("\r\n").count(),
            "{text:?}"
        );
        assert!(
            text[config.len()..].contains("[[sources]]\r\nname = \"B\"\r\n"),
            "{text:?}"
        );
        let parsed = Config::parse(&text, Path::new("t.toml")).unwrap();
        assert_eq!(parsed.sources.len(), 2);
        // A file with `\n` line endings keeps them.
        let lf = config.replace("\r\n", "\n");
        let (text, _) = merge_into_config(&lf, Path::new("t.toml"), &feeds, "subs.opml").unwrap();
        assert!(text.starts_with(&lf) && !text.contains('\r'), "{text:?}");
    }

    #[test]
    fn merging_into_a_config_without_sources_creates_the_list_with_exact_values() {
        let config = "[server]\ntitle = \"x\"\n";
        let feeds = vec![
            feed("New", "https://n.example/", &["a"]),
            feed(
                "Say \"hi\" \\ to Zürich's 'news'",
                "https://z.example/?q=\"x\"",
                &["tag \"q\"", "ünï"],
            ),
        ];
        let (text, report) =
            merge_into_config(config, Path::new("t.toml"), &feeds, "f.opml").unwrap();
        assert_eq!(report.added, ["New", feeds[1].name.as_str()]);
        assert!(text.starts_with(config), "{text}");
        let parsed = Config::parse(&text, Path::new("t.toml")).unwrap();
        let got: Vec<OpmlFeed> = parsed.sources.iter().map(OpmlFeed::from).collect();
        assert_eq!(
            got, feeds,
            "quotes, backslashes and non-ASCII survive TOML quoting"
        );
    }

    #[test]
    fn the_summary_lists_at_most_ten_names_per_reason() {
        let names = |n: usize| (1..=n).map(|i| format!("F{i}")).collect::<Vec<_>>();
        let cases = [
            (1, "added 0, skipped 1 (already present: F1)".to_string()),
            (
                10,
                format!(
                    "added 0, skipped 10 (already present: {})",
                    names(10).join(", ")
                ),
            ),
            (
                12,
                format!(
                    "added 0, skipped 12 (already present: {} and 2 more)",
                    names(10).join(", ")
                ),
            ),
        ];
        for (n, want) in cases {
            let report = ImportReport {
                already_present: names(n),
                ..Default::default()
            };
            assert_eq!(report.to_string(), want);
        }
    }

    #[test]
    fn new_sources_go_after_the_last_source_before_later_tables_and_trailing_comments() {
        let feeds = vec![feed("N", "https://n.example/", &[])];
        let added = "\n# Imported from f.opml on DATE.\n[[sources]]\nname = \"N\"\nurl = \"https://n.example/\"\n";
        let source = "[[sources]]\nname = \"A\"\nurl = \"https://a.example/\"\n";
        let cases = [
            (
                format!("{source}\n# [[sources]]\n# name = \"Off\"\n"),
                format!("{source}{added}\n# [[sources]]\n# name = \"Off\"\n"),
            ),
            (
                format!("{source}\n[cluster]\nwindow_days = 3 # days\n"),
                format!("{source}{added}\n[cluster]\nwindow_days = 3 # days\n"),
            ),
            // Comments hanging on the last source stay with it, above the imported ones; a
            // block after a blank line stays at the end.
            (
                format!("{source}# priority = 2\n\n# [[sources]]\n# name = \"Off\"\n"),
                format!("{source}# priority = 2\n{added}\n# [[sources]]\n# name = \"Off\"\n"),
            ),
            // A file of comments only keeps them first.
            (
                "# no sources yet\n".to_string(),
                format!("# no sources yet\n{added}"),
            ),
            // Comments under a later table stay with it.
            (
                format!("{source}\n[cluster]\nwindow_days = 3\n# max = 5\n"),
                format!("{source}{added}\n[cluster]\nwindow_days = 3\n# max = 5\n"),
            ),
            // A file with tables and no sources gets them at its end, under its comments.
            (
                "[cluster]\nwindow_days = 3\n# max = 5\n".to_string(),
                format!("[cluster]\nwindow_days = 3\n# max = 5\n{added}"),
            ),
        ];
        let today = Utc::now().format("%Y-%m-%d").to_string();
        for (config, want) in cases {
            let (text, _) =
                merge_into_config(&config, Path::new("t.toml"), &feeds, "f.opml").unwrap();
            assert_eq!(text, want.replace("DATE", &today));
        }
    }

    /// `depth` folders, each named by its level, around one feed.
    fn nested(depth: usize) -> String {
        let mut opml = String::from("<opml version=\"2.0\"><body>\n");
        for i in 0..depth {
            let _ = writeln!(opml, "<outline text=\"f{i}\">");
        }
        opml.push_str("<outline text=\"deep\" xmlUrl=\"https://deep.example/f\"/>\n");
        opml.push_str(&"</outline>\n".repeat(depth));
        opml.push_str("</body></opml>\n");
        opml
    }

    #[test]
    fn folders_nested_deeper_than_the_limit_refuse_the_document_with_its_line() {
        let got = parse(nested(MAX_FOLDER_DEPTH).as_bytes(), "ok.opml").unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].tags.len(), MAX_FOLDER_DEPTH, "every folder is a tag");

        let err = parse(nested(MAX_FOLDER_DEPTH + 1).as_bytes(), "deep.opml")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "deep.opml: line {}: outlines nested more than {MAX_FOLDER_DEPTH} deep: \
                 not a subscription list",
                MAX_FOLDER_DEPTH + 2
            )
        );
    }

    #[test]
    fn a_file_larger_than_the_limit_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.opml");
        let file = std::fs::File::create(&path).unwrap();
        // Sparse: no disk is used for it.
        file.set_len(MAX_OPML_BYTES + 1).unwrap();
        let err = read_file(&path).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{}: larger than 64 MiB: not a subscription list",
                path.display()
            )
        );
        file.set_len(MAX_OPML_BYTES).unwrap();
        let err = read_file(&path).unwrap_err().to_string();
        assert!(err.contains("no root element"), "read and parsed: {err}");
    }

    #[test]
    fn a_file_name_with_line_breaks_stays_inside_the_import_comment() {
        let config = "[[sources]]\nname = \"A\"\nurl = \"https://a.example/\"\n";
        let feeds = vec![feed("N", "https://n.example/", &[])];
        let origin = "x\nenabled = false\r\n#.opml";
        let (text, _) = merge_into_config(config, Path::new("t.toml"), &feeds, origin).unwrap();
        let today = Utc::now().format("%Y-%m-%d").to_string();
        assert!(
            text.contains(&format!(
                "\n# Imported from x enabled = false #.opml on {today}.\n[[sources]]\n"
            )),
            "{text}"
        );
        let parsed = Config::parse(&text, Path::new("t.toml")).unwrap();
        assert!(parsed.sources.iter().all(|s| s.enabled), "{text}");
    }

    #[test]
    fn long_folder_and_category_names_are_cut_on_a_character_boundary() {
        let long = "€".repeat(MAX_TAG_CHARS + 50);
        let opml = format!(
            "<opml version=\"2.0\"><body>\n<outline text=\"{long}\">\n\
             <outline text=\"f\" xmlUrl=\"https://f.example/\" category=\"a{long},b\"/>\n\
             </outline></body></opml>\n"
        );
        let got = parse(opml.as_bytes(), "long.opml").unwrap();
        let cut = "€".repeat(MAX_TAG_CHARS);
        let cut_a = format!("a{}", "€".repeat(MAX_TAG_CHARS - 1));
        assert_eq!(got[0].tags, [cut, cut_a, "b".to_string()]);
    }

    #[test]
    fn tags_adding_up_to_more_than_the_limit_refuse_the_document_at_that_feed() {
        // 32 folders of 200-character names: 6,400 bytes of tags on every feed.
        let mut opml = String::from("<opml version=\"2.0\"><body>\n");
        for i in 0..MAX_FOLDER_DEPTH {
            let _ = writeln!(opml, "<outline text=\"{i:0>200}\">");
        }
        let per_feed = MAX_FOLDER_DEPTH * MAX_TAG_CHARS;
        let fits = MAX_TAG_BYTES / per_feed;
        for i in 0..=fits {
            let _ = writeln!(
                opml,
                "<outline text=\"{i}\" xmlUrl=\"https://{i}.example/\"/>"
            );
        }
        opml.push_str(&"</outline>\n".repeat(MAX_FOLDER_DEPTH));
        opml.push_str("</body></opml>\n");
        let err = parse(opml.as_bytes(), "many.opml").unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "many.opml: line {}: the feeds' folder and category tags add up to more than \
                 16 MiB: not a subscription list",
                MAX_FOLDER_DEPTH + 2 + fits
            )
        );
        let fewer = opml.replacen(
            &format!("<outline text=\"{fits}\" xmlUrl=\"https://{fits}.example/\"/>\n"),
            "",
            1,
        );
        assert_eq!(parse(fewer.as_bytes(), "fewer.opml").unwrap().len(), fits);
    }
}
