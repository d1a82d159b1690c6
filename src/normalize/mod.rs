//! Turning a raw item into a clean `Entry`: text, URLs, dates, identity and fingerprints.
//!
//! # Identity fallback chain
//!
//! An entry is unique on (source, identity). The identity is the first of these that exists,
//! each with its own prefix so keys from different steps never collide:
//!
//! 1. `guid:<id>` — the publisher's id (RSS `guid`, Atom `id`, JSON Feed `id`), trimmed, if
//!    present and not blank (ids over 512 bytes are stored as `guid:xxh3:<hash>`);
//! 2. `url:<canonical link>` — the canonical URL of the item's link, resolved against the feed
//!    URL (see [`canonical_url`]), and `#` and the link's fragment when it names a place in
//!    the page (see [`anchor_of`]: a live blog's `#post-2`, so that its posts without ids are
//!    items of their own);
//! 3. `title:<hash>` — xxh3-128 of the normalized title and the date the feed gave (published,
//!    else updated), when the item has a title and the feed gave a date;
//! 4. `text:<hash>` — xxh3-128 of the normalized title and normalized body text.
//!
//! When one id is shared inside one feed document by items with different canonical links
//! (some CMSes give every item the home page URL as its guid), each of those items is
//! identified as `shared:<hash>` of the id and its canonical link instead (see
//! [`shared_identities`]), except the one item already stored under the plain id, which
//! keeps it; items repeating the same id and link stay one.
//!
//! An item with none of these (no id, no link, no title, no text) is skipped as
//! [`SkipReason::Unidentifiable`]. "Normalized" means lower-case, punctuation read as a word
//! break, whitespace folded, so markup-only differences do not change keys 3 and 4.
//!
//! # Hashes
//!
//! - `fingerprint`: xxh3-128 (hex) of normalized title + "\n" + normalized text — equal for
//!   byte-different renderings of the same words; the exact-duplicate key for clustering.
//! - `content_hash`: `6:` and the xxh3-128 (hex) of title, link, HTML (as the feed gave it,
//!   less comments, the content of elements no output shows, such as `script`, the
//!   attributes the sanitizer drops, such as `class`, and tracking pixels, see
//!   [`is_tracking_pixel`], with its white space folded as a reader sees it) and authors — a
//!   change means the publisher edited the item. Not
//!   the dates: many CMSs stamp every item with the time of the request, and a date alone is
//!   no edit (the stored dates stay those first read; an edit stores the dates it comes
//!   with). Earlier releases wrote other forms: `5:` hashed the HTML's white space byte for
//!   byte (a re-indented feed made its items look edited), `4:` also hashed the published and updated
//!   dates the feed gave (whether given, and which), `3:` hashed the resolved dates instead
//!   (the fetch time for an item without a usable one, so such items looked edited at every
//!   poll), `2:` also counted every attribute, and bare hex (before HTML was stored raw)
//!   hashed the sanitized HTML. [`content_hash_in_stored_form`] recomputes a stored hash's
//!   form, so an upgraded database does not take items for edits (except where the form
//!   cannot be reproduced: an undated item under `3:` or earlier, whose hashed fetch time is
//!   gone, and an item whose feed re-stamps its dates, under `4:` or earlier; even these are
//!   no edit when only their link's tracking parameters differ, see the store's
//!   `only_tracking_changed`, so only such items without a link count as updated once). The `5:`
//!   and `4:` forms come from the same pass as the `6:` hash ([`content_hashes`]). Pixels were left
//!   out under the prefix `4:`, so items without one kept their hashes; for an item with one,
//!   [`is_earlier_hash_of`] also recognises the `4:` hash with it counted. The base the
//!   HTML's relative URLs resolve against (the fetch URL, or the entry's `xml:base`) is not
//!   hashed: entries stored before `xml:base` was read keep their hashes. The link and the
//!   enclosure URLs are hashed as resolved, so when the feed gives them as relative references
//!   (`Entry::relative_urls`) the hash depends on the URL it was fetched from: `ingest`
//!   compares a row written against another URL (the source's URL changed) with the item
//!   normalized again against that one.
//!   Enclosures (see [`content_hashes_with_media`]): each one's URL, less tracking
//!   parameters, and type are hashed after the other fields, only when the item has any, so an
//!   item without them keeps its hash. For one with them, the hash without them
//!   (`Entry::content_hash_without_media`, and in form `5:`
//!   `Entry::content_hash_exact_white_space_without_media`) is recognised as no edit by [`is_earlier_hash_of`]:
//!   a row stored before enclosures were read (or while the item had none) takes them at its
//!   next poll and is not reported as updated. Lengths, durations, titles and the lead image
//!   are not hashed; they are stored with the entry and renewed with its next edit.
//!
//! # HTML is sanitized when served, not here
//!
//! `html` is the feed's own markup (content, else summary), cut at the text cap, and bounded in
//! nesting depth ([`MAX_HTML_DEPTH`]; see `nesting.rs`). Every output
//! passes it through the allow-list sanitizer ([`sanitize_html`]) when a feed is rendered, so
//! sanitizing it here as well would only be paid again, on every item of every changed feed:
//! it was 12% of the instructions of a cold pass. Renders are cached until the data changes.

mod dates;
mod identity;
mod nesting;
mod sanitize;
mod text;
mod url;

use std::cell::RefCell;

use chrono::{DateTime, Duration, Utc};

use crate::domain::{
    EarlierTitle, Enclosure, Entry, MAX_ENCLOSURES, MAX_MEDIA_URL_LEN, Media, RawItem,
};

pub use self::dates::resolve_dates;
pub use self::identity::{
    CONTENT_HASH_PREFIX, ContentHashes, ContentParts, HashForm, IdentityInput, anchor_of,
    content_hash, content_hashes, content_hashes_with_media, fingerprint,
    identity as item_identity, shared_identity,
};
pub use self::nesting::MAX_HTML_DEPTH;
pub use self::sanitize::sanitize_html_as_hashed_before;
pub(crate) use self::text::is_bidi_control;
pub use self::text::{is_tracking_pixel, normalize_for_matching, truncate_chars};
use self::url::resolve_link_url;
pub use self::url::{TRACKING_PARAMS, TRACKING_PREFIXES, resolve_link, without_tracking};

/// Chars of body text used as a title when the item has none.
const FALLBACK_TITLE_CHARS: usize = 80;

/// Authors kept per entry (the first ones the feed lists, repeats and blanks skipped): one
/// story with 80,000 authors took 13 s of CPU per poll and was served as 2.8 MB.
pub const MAX_AUTHORS: usize = 32;

/// Chars an author name is cut at.
pub const MAX_AUTHOR_CHARS: usize = 200;

/// Limits and context for normalizing the items of one fetch.
#[derive(Debug, Clone)]
pub struct NormalizeContext {
    /// When the feed was fetched: the default for missing dates and the clamp for future ones.
    pub fetched_at: DateTime<Utc>,
    /// Base URL for relative links (the feed's final URL).
    pub base_url: String,
    /// Allowed clock skew before a future date is clamped to `fetched_at`.
    pub max_future_skew: Duration,
    /// Titles longer than this (in chars) are cut.
    pub max_title_chars: usize,
    /// Texts and HTML longer than this (in chars) are cut.
    pub max_text_chars: usize,
}

/// The longest text (and stored HTML) of an entry, in characters, unless a context says
/// otherwise.
pub const MAX_TEXT_CHARS: usize = 100_000;

impl NormalizeContext {
    /// A context with default limits (10 min skew, 1,000-char titles, 100,000-char texts).
    pub fn new(fetched_at: DateTime<Utc>, base_url: impl Into<String>) -> Self {
        NormalizeContext {
            fetched_at,
            base_url: base_url.into(),
            max_future_skew: Duration::minutes(10),
            max_title_chars: 1_000,
            max_text_chars: MAX_TEXT_CHARS,
        }
    }
}

/// Why an item was not turned into an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// No guid, no link, no title and no text: nothing to identify it by.
    #[error("item has no id, link, title or text")]
    Unidentifiable,
    /// An id but nothing a reader could show: no title, link, text, image or enclosure (an
    /// RSS item holding only an opaque `<guid>`). Served, it would be a blank story.
    #[error("item has an id but no title, link, text or media")]
    NothingToShow {
        /// The item's identity: a tombstone of it is still needed while its feed lists it.
        identity: String,
    },
}

/// Normalizes one raw item. See the module docs for the identity fallback chain.
///
/// - `title`: plain text of the title on one line (or the first ~80 chars of the body text when
///   the item has no title), cut at `max_title_chars`;
/// - `link`: resolved against the feed's and the entry's `xml:base` over `ctx.base_url` (see
///   [`entry_base`]), http(s) only; `canonical_url` from it;
/// - `authors`: bidirectional controls removed, trimmed, cut at [`MAX_AUTHOR_CHARS`], empty
///   and repeated names dropped, at most [`MAX_AUTHORS`];
/// - dates: see [`resolve_dates`];
/// - `html`: the content (else summary) as the feed gave it, cut at `max_text_chars` chars, and
///   rewritten balanced with elements deeper than [`MAX_HTML_DEPTH`] unwrapped when it could
///   nest deeper than that (see `nesting.rs`); it is sanitized when served (the
///   sanitizer also closes any element the cut left open);
/// - `text`: plain text of the whole content (else summary), cut at `max_text_chars`;
/// - `base_url`: where the content's (else summary's) relative URLs point when its `xml:base`
///   makes that differ from `ctx.base_url` (see [`content_base`]); not hashed;
/// - `media`: enclosures and image resolved, filtered and capped (see [`normalize_media`]).
pub fn normalize_item(item: &RawItem, ctx: &NormalizeContext) -> Result<Entry, SkipReason> {
    // The link and enclosures resolve against the feed's and the entry's `xml:base` over the
    // URL fetched. feed-rs resolves them against an absolute base itself; a relative one
    // (`<entry xml:base="/news/">`, which RFC 4287 allows) it leaves to us, and ignoring it
    // would point the link elsewhere on the site.
    let item_base = entry_base(item, &ctx.base_url);
    let link_base = item_base.as_deref().unwrap_or(&ctx.base_url);
    let link_url = item
        .link
        .as_deref()
        .and_then(|l| with_base(link_base, |base| resolve_link_url(l, base)));
    let link = link_url.as_ref().map(|u| u.as_str().to_owned());
    let anchor = anchor_of(link_url.as_ref().and_then(|u| u.fragment())).map(str::to_owned);
    let canonical = link_url.and_then(self::url::canonical_of);
    let media = normalize_media(&item.media, &item.image_fallbacks, link_base);
    // A few bytes read per item: whether the hash depends on the URL the feed was fetched from.
    let relative_urls = (link.is_some() && item.link.as_deref().is_some_and(is_relative_reference))
        || (!media.enclosures.is_empty()
            && item
                .media
                .enclosures
                .iter()
                .any(|e| is_relative_reference(&e.url)));

    let body = item
        .content
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .or(item.summary.as_deref())
        .unwrap_or("");
    let mut html = body;
    if body.len() > ctx.max_text_chars
        && let Some((idx, _)) = body.char_indices().nth(ctx.max_text_chars)
    {
        html = &body[..idx];
    }
    let mut text = html_to_text(body);
    truncate_chars(&mut text, ctx.max_text_chars);

    let (given_title, legacy_given_title) =
        item.title.as_deref().map(title_texts).unwrap_or_default();
    let whole_title = |given: &str| {
        let mut title = if given.is_empty() {
            fallback_title(&text)
        } else {
            given.to_owned()
        };
        truncate_chars(&mut title, ctx.max_title_chars);
        title
    };
    let title = whole_title(&given_title);
    let legacy_title = legacy_given_title
        .as_deref()
        .map(whole_title)
        .filter(|legacy| *legacy != title);

    // The identity takes the title as releases before `escape_unknown_tags` read it: an item
    // identified by its title (no guid, no link) must keep the identity it was stored under.
    let identity = item_identity(&IdentityInput {
        guid: item.guid.as_deref(),
        canonical_url: canonical.as_deref(),
        anchor: anchor.as_deref(),
        title: legacy_given_title.as_deref().unwrap_or(&given_title),
        feed_date: item.published.or(item.updated),
        text: &text,
    })
    .ok_or(SkipReason::Unidentifiable)?;
    // The title falls back to the text, so an empty one means no text either. An image in
    // the HTML is the one thing the sanitizer keeps that shows without text.
    if title.trim().is_empty() && link.is_none() && media.is_empty() && !shows_an_image(html) {
        return Err(SkipReason::NothingToShow { identity });
    }

    // Stored HTML nests at most MAX_HTML_DEPTH levels, so that every render is linear. The
    // content hash covers the HTML as the feed gave it (a rewritten copy of misnested but
    // shallow HTML is the same item), except when elements were dropped for depth: then it covers
    // what is stored, so a row stored before the limit existed is rewritten at its next poll.
    let (stored_html, dropped) = self::nesting::bound_nesting(html, MAX_HTML_DEPTH);
    let hashed_html = if dropped { &*stored_html } else { html };
    let (published, updated, dated) = resolve_dates(
        item.published,
        item.updated,
        ctx.fetched_at,
        ctx.max_future_skew,
    );

    let mut authors: Vec<String> = Vec::with_capacity(item.authors.len().min(MAX_AUTHORS));
    for raw in &item.authors {
        if authors.len() == MAX_AUTHORS {
            break;
        }
        // Repeats are looked for among the (at most MAX_AUTHORS) kept names only.
        let name = author_name(raw);
        if !name.is_empty() && !authors.contains(&name) {
            authors.push(name);
        }
    }

    let fingerprint = fingerprint(&title, &text);
    // The current form does not hash the dates. The form `4:`, which rows written before
    // hold, hashed them as the feed gave them, not as resolved (the fetch time standing in
    // for a missing or future date changes on every poll).
    let hash_with_title = |title: &str| {
        content_hashes_with_media(
            &ContentParts {
                title,
                link: link.as_deref(),
                html: hashed_html,
                authors: &authors,
                published: item.published,
                updated: item.updated,
            },
            &media,
        )
    };
    let ContentHashes {
        current: content_hash,
        without_media: content_hash_without_media,
        exact_white_space: content_hash_exact_white_space,
        exact_white_space_without_media: content_hash_exact_white_space_without_media,
        given_dates: content_hash_with_dates,
        given_dates_with_pixels: content_hash_with_pixels,
    } = hash_with_title(&title);
    // Over the link as served (without tracking parameters), when that differs: a poll that
    // changes only those and what the hash does not read is no edit (see
    // `Entry::untracked_hash`). Most links have none, and cost nothing more.
    let untracked_hash = link
        .as_deref()
        .map(without_tracking)
        .filter(|untracked| Some(untracked.as_ref()) != link.as_deref())
        .map(|untracked| {
            content_hashes_with_media(
                &ContentParts {
                    title: &title,
                    link: Some(&untracked),
                    html: hashed_html,
                    authors: &authors,
                    published: item.published,
                    updated: item.updated,
                },
                &media,
            )
            .current
        });
    let earlier_title = legacy_title.map(|title| {
        let hashes = hash_with_title(&title);
        EarlierTitle {
            content_hash_with_dates: hashes.given_dates,
            content_hash_with_pixels: hashes.given_dates_with_pixels,
            title,
        }
    });
    let mut html = stored_html.into_owned();
    // Closing tags written out can make it longer than the cap; cutting it keeps it balanced.
    truncate_chars(&mut html, ctx.max_text_chars);
    // Where the body's relative URLs point is not hashed, as the URL the feed was fetched from
    // is not: a row stored before bases were read keeps its hash (it is not reported as edited)
    // and ingest renews only its stored base (see `ingest`).
    let from_content = item
        .content
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty());
    let base_url = content_base(item, from_content, &ctx.base_url);
    Ok(Entry {
        identity,
        title,
        earlier_title,
        link,
        canonical_url: canonical,
        authors,
        published,
        updated,
        dated,
        html,
        text,
        fingerprint,
        content_hash,
        untracked_hash,
        content_hash_with_dates,
        content_hash_with_pixels,
        base_url,
        media,
        content_hash_without_media,
        content_hash_exact_white_space,
        content_hash_exact_white_space_without_media,
        relative_urls,
    })
}

/// Whether `html` holds an image a reader would see: an `<img>` tag (any case) that is no
/// tracking pixel (see [`is_tracking_pixel`], which rendering leaves out). The one element the
/// sanitizer keeps that shows without text.
fn shows_an_image(html: &str) -> bool {
    let b = html.as_bytes();
    memchr::memchr_iter(b'<', b).any(|at| {
        let is_img = b
            .get(at + 1..at + 4)
            .is_some_and(|n| n.eq_ignore_ascii_case(b"img"))
            && b.get(at + 4)
                .is_none_or(|c| c.is_ascii_whitespace() || matches!(c, b'/' | b'>'));
        is_img
            && !memchr::memchr(b'>', &b[at..])
                .is_some_and(|end| is_tracking_pixel(&html[at..=at + end]))
    })
}

/// Whether `reference` (a link or enclosure URL as the feed gave it) is relative: it has no
/// scheme (RFC 3986 §3.1: a letter, then letters, digits, `+`, `-` or `.`, then `:`), so it
/// was resolved against the URL the feed was fetched from. `//host/path` counts: its scheme
/// comes from that URL.
fn is_relative_reference(reference: &str) -> bool {
    let b = reference.trim_start().as_bytes();
    if !b.first().is_some_and(u8::is_ascii_alphabetic) {
        return true;
    }
    let scheme = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'))
        .count();
    b.get(scheme) != Some(&b':')
}

/// Chars an enclosure's title is cut at.
const MAX_ENCLOSURE_TITLE_CHARS: usize = 300;

/// An item's media as an entry keeps them: each URL resolved against `base_url` (the item's
/// link base: the URL the feed was fetched from through the feed's and the entry's
/// `xml:base`, see [`entry_base`]; feed-rs applied an absolute one already) and kept only when
/// it is http(s) and at most [`MAX_MEDIA_URL_LEN`] bytes; enclosures whose URL an earlier one
/// has are dropped, and at most [`MAX_ENCLOSURES`] kept. The lead image is the first of
/// `raw.image` and then `image_fallbacks` kept so (see [`RawItem::image_fallbacks`]).
/// User-info and tracking parameters stay, as in links: they are removed when served. No work
/// for an item without media.
fn normalize_media(raw: &Media, image_fallbacks: &[String], base_url: &str) -> Media {
    if raw.is_empty() && image_fallbacks.is_empty() {
        return Media::default();
    }
    with_base(base_url, |base| {
        let resolve = |url: &str| resolve_link(url, base).filter(|u| u.len() <= MAX_MEDIA_URL_LEN);
        let mut media = Media::default();
        for enclosure in &raw.enclosures {
            if media.enclosures.len() == MAX_ENCLOSURES {
                break;
            }
            let Some(url) = resolve(&enclosure.url) else {
                continue;
            };
            if media.enclosures.iter().any(|e| e.url == url) {
                continue;
            }
            // As titles and author names are: no bidirectional controls (a reader would show
            // `\u{202e}3pm.exe` as "exe.mp3"), white space folded, cut.
            let title = enclosure.title.as_deref().map(|t| {
                let mut title = t
                    .replace(self::text::is_bidi_control, "")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                truncate_chars(&mut title, MAX_ENCLOSURE_TITLE_CHARS);
                title
            });
            media.enclosures.push(Enclosure {
                url,
                mime_type: enclosure.mime_type.clone(),
                length: enclosure.length,
                title: title.filter(|t| !t.is_empty()),
                duration: enclosure.duration,
            });
        }
        // A refused image leaves the next candidate, not the item without a lead image.
        media.image = raw
            .image
            .iter()
            .chain(image_fallbacks)
            .find_map(|image| resolve(image));
        media
    })
}

/// Longest base URL an entry keeps (bytes): a longer one is ignored, as if absent.
const MAX_BASE_URL_LEN: usize = 4_096;

/// The URL the item's content (`from_content`), else its summary, resolves relative URLs
/// against, when its `xml:base` attributes make it differ from `fetched_from`: that URL
/// resolved by each of them in turn, outermost first (XML Base, RFC 3986). A value that does
/// not resolve is skipped, as feed-rs skips it for links. `None` when there are none, or when
/// the result is no http(s) URL or is over [`MAX_BASE_URL_LEN`] bytes.
fn content_base(item: &RawItem, from_content: bool, fetched_from: &str) -> Option<String> {
    let own = if from_content {
        &item.xml_base.content
    } else {
        &item.xml_base.summary
    };
    resolve_bases(fetched_from, item.xml_base.item.iter().chain(own))
}

/// The URL the item's link and enclosures resolve against when the `xml:base` attributes of
/// its feed and its entry make it differ from `fetched_from` (as [`content_base`], without
/// the content's own).
fn entry_base(item: &RawItem, fetched_from: &str) -> Option<String> {
    resolve_bases(fetched_from, item.xml_base.item.iter())
}

/// `fetched_from` resolved by each of `bases` in turn, outermost first (see [`content_base`]).
fn resolve_bases<'b>(
    fetched_from: &str,
    mut bases: impl Iterator<Item = &'b String>,
) -> Option<String> {
    let first = bases.next()?;
    let start = with_base(fetched_from, |base| base.cloned());
    let resolved = std::iter::once(first)
        .chain(bases)
        .map(String::as_str)
        .fold(start.clone(), |base, value| {
            let value = value.trim();
            let next = match &base {
                Some(base) => base.join(value),
                None => ::url::Url::parse(value),
            };
            // A level that leads to no web URL (`javascript:`, `file:`) is skipped like one
            // that does not resolve: the levels around it still apply.
            next.ok().filter(is_web_url).or(base)
        })?;
    let differs = start.as_ref() != Some(&resolved) && resolved.as_str() != fetched_from;
    (differs && is_web_url(&resolved) && resolved.as_str().len() <= MAX_BASE_URL_LEN)
        .then(|| resolved.into())
}

fn is_web_url(url: &::url::Url) -> bool {
    matches!(url.scheme(), "http" | "https")
}

/// The identities that items of one feed document with different canonical links share: each
/// of those items is then told apart by [`shared_identity`] (which of them keeps the plain
/// identity, if one does, is up to the caller: the item stored under it before). Items that
/// repeat both the identity and the link are one item. Empty in the normal case.
pub fn shared_identities(entries: &[Entry]) -> std::collections::HashSet<String> {
    let mut links: std::collections::HashMap<&str, Option<&str>> =
        std::collections::HashMap::with_capacity(entries.len());
    let mut shared = std::collections::HashSet::new();
    for e in entries {
        match links.entry(e.identity.as_str()) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(e.canonical_url.as_deref());
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                if *o.get() != e.canonical_url.as_deref() {
                    shared.insert(e.identity.clone());
                }
            }
        }
    }
    shared
}

thread_local! {
    /// The base URL last parsed on this thread: all items of a feed share it.
    static BASE: RefCell<(String, Option<::url::Url>)> = const { RefCell::new((String::new(), None)) };
}

/// Runs `f` with the parsed `base_url` (`None` if it does not parse), parsing it only when it
/// differs from the last one on this thread.
fn with_base<R>(base_url: &str, f: impl FnOnce(Option<&::url::Url>) -> R) -> R {
    BASE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != base_url {
            cached.0.clear();
            cached.0.push_str(base_url);
            cached.1 = ::url::Url::parse(base_url).ok();
        }
        f(cached.1.as_ref())
    })
}

/// A title as one line of plain text, and the title releases before [`escape_unknown_tags`]
/// made of it when that differs (see [`Entry::earlier_title`]).
///
/// Titles are HTML here (see `parse`), but an RSS title is plain text to many publishers:
/// `Canada dollar &lt;CADX.O&gt; firms` in the XML means the ticker `<CADX.O>`, and the Atom
/// copy of the same story (`type="text"`) keeps it. So a tag whose name is no HTML element is
/// text in a title (see [`escape_unknown_tags`]); `<b>`, `<em>`, `<br>` and the rest are still
/// markup. In a body, where HTML is the rule, such a tag is dropped as a browser would.
fn title_texts(raw: &str) -> (String, Option<String>) {
    let one_line = |mut t: String| {
        if t.contains('\n') {
            t = t.replace('\n', " ");
        }
        t
    };
    match escape_unknown_tags(raw) {
        Some(escaped) => (
            one_line(html_to_text(&escaped)),
            Some(one_line(html_to_text(raw))),
        ),
        None => (one_line(html_to_text(raw)), None),
    }
}

/// `html` with the `<` of every tag whose name is no HTML element written as `&lt;`, or `None`
/// when there is none. A ticker (`<CADX.O>`, `<AXP>`), an e-mail in angle brackets
/// (`<desk@example.com>`) or `<3` thus reads as text; so does a tag named like an element but
/// followed by something no tag has there (`<b.c>`). Tickers that are element names (`<B>`,
/// `<A>`, `<I>`) cannot be told from markup and are still dropped.
fn escape_unknown_tags(html: &str) -> Option<String> {
    let b = html.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    for lt in memchr::memchr_iter(b'<', b) {
        let name_start = lt + 1 + usize::from(b.get(lt + 1) == Some(&b'/'));
        let name_len = b[name_start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        // Not a tag at all (`a < b`, `<!--`): `html_to_text` reads it as it always did.
        if name_len == 0 || !b[name_start].is_ascii_alphabetic() {
            continue;
        }
        let name = &html[name_start..name_start + name_len];
        let after = b.get(name_start + name_len);
        let ends_name = matches!(
            after,
            None | Some(b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
        );
        // A namespaced or custom element (`<o:p>`, `<st1:City>`, `<my-widget>`, what Word and
        // CMSs leave behind) is markup too, dropped as before: its prefix or name is in lower
        // case (custom element names must be), unlike Reuters' `<CO-STEEL INC>`, a company.
        let namespaced_or_custom =
            matches!(after, Some(b':' | b'-')) && !name.bytes().any(|c| c.is_ascii_uppercase());
        if (ends_name && is_html_element(name)) || namespaced_or_custom {
            continue;
        }
        let out = out.get_or_insert_with(|| String::with_capacity(html.len() + 8));
        out.push_str(&html[copied..lt]);
        out.push_str("&lt;");
        copied = lt + 1;
    }
    let mut out = out?;
    out.push_str(&html[copied..]);
    Some(out)
}

/// Whether `name` (any case) names an HTML element: the WHATWG list, with the obsolete ones
/// feeds still carry.
fn is_html_element(name: &str) -> bool {
    // Longest: "blockquote", "figcaption", "noscript"...
    if name.len() > 10 {
        return false;
    }
    let mut lower = [0u8; 10];
    for (l, c) in lower.iter_mut().zip(name.bytes()) {
        *l = c.to_ascii_lowercase();
    }
    let lower = &lower[..name.len()];
    HTML_ELEMENTS
        .binary_search_by(|e| e.as_bytes().cmp(lower))
        .is_ok()
}

/// Every HTML element name, sorted (binary search): the WHATWG living standard's elements,
/// the obsolete ones it lists that feeds still carry (`font`, `center`, `tt`...), and SVG
/// and MathML's roots.
#[rustfmt::skip]
const HTML_ELEMENTS: &[&str] = &[
    "a", "abbr", "acronym", "address", "area", "article", "aside", "audio", "b", "base",
    "basefont", "bdi", "bdo", "big", "blink", "blockquote", "body", "br", "button", "canvas",
    "caption", "center", "cite", "code", "col", "colgroup", "data", "datalist", "dd", "del",
    "details", "dfn", "dialog", "dir", "div", "dl", "dt", "em", "embed", "fieldset", "figcaption",
    "figure", "font", "footer", "form", "frame", "frameset", "h1", "h2", "h3", "h4", "h5", "h6",
    "head", "header", "hgroup", "hr", "html", "i", "iframe", "img", "input", "ins", "kbd", "label",
    "legend", "li", "link", "main", "map", "mark", "marquee", "math", "menu", "meta", "meter",
    "nav", "nobr", "noembed", "noframes", "noscript", "object", "ol", "optgroup", "option",
    "output", "p", "param", "picture", "plaintext", "pre", "progress", "q", "rb", "rp", "rt",
    "rtc", "ruby", "s", "samp", "script", "search", "section", "select", "slot", "small", "source",
    "span", "strike", "strong", "style", "sub", "summary", "sup", "svg", "table", "tbody", "td",
    "template", "textarea", "tfoot", "th", "thead", "time", "title", "tr", "track", "tt", "u",
    "ul", "var", "video", "wbr", "xmp",
];

/// An author name as stored: bidirectional controls removed (see [`text::is_bidi_control`]),
/// trimmed, cut at [`MAX_AUTHOR_CHARS`].
fn author_name(raw: &str) -> String {
    let mut name: String = if raw.contains(self::text::is_bidi_control) {
        raw.chars()
            .filter(|&c| !self::text::is_bidi_control(c))
            .collect()
    } else {
        raw.to_owned()
    };
    let trimmed = name.trim();
    if trimmed.len() != name.len() {
        name = trimmed.to_owned();
    }
    truncate_chars(&mut name, MAX_AUTHOR_CHARS);
    name
}

/// An author name as served: without the `()`, `<>`, `[]` or quotes that enclose all of it
/// (`("Name")` → `Name`; `(A) (B)` stays as it is).
///
/// RSS 2.0 makes `<author>` an address, written as `email (Name)` (the RSS Board's own
/// example) or `Name <email>`; feed-rs takes the address out but leaves the brackets that held
/// the name (`(Tom Becker)`), and readers (feedparser, Miniflux) show `Tom Becker`. An author
/// given only as an address stays that address: RSS defines the element as one, and it is the
/// only attribution such a feed gives. Applied when serving, not when storing: the stored
/// names (and so the content hashes over them) stay as earlier releases wrote them, so no
/// stored item looks edited after an upgrade, and stories stored before are served the same.
///
/// Brackets are taken off only when the first closes at the very end (`(Jane Doe (Reuters))`
/// is `Jane Doe (Reuters)`, `(Tom) (Ann)` stays as it is); quotes only when none is inside.
pub fn served_author(name: &str) -> &str {
    let mut s = name.trim();
    'strip: loop {
        for (open, close) in [('(', ')'), ('<', '>'), ('[', ']'), ('"', '"'), ('\'', '\'')] {
            if let Some(inner) = s.strip_prefix(open).and_then(|r| r.strip_suffix(close))
                && encloses(inner, open, close)
            {
                s = inner.trim();
                continue 'strip;
            }
        }
        return s;
    }
}

/// Whether `inner`, found between an `open` and a `close`, leaves them a pair: a quote when
/// `inner` holds no such quote, a bracket when every bracket `inner` closes it opened first.
fn encloses(inner: &str, open: char, close: char) -> bool {
    if open == close {
        return !inner.contains(open);
    }
    let mut depth = 0usize;
    for c in inner.chars() {
        if c == open {
            depth += 1;
        } else if c == close {
            let Some(less) = depth.checked_sub(1) else {
                return false;
            };
            depth = less;
        }
    }
    depth == 0
}

/// The first ~80 chars of the text, cut at a word boundary when there is one, on one line.
fn fallback_title(text: &str) -> String {
    let Some((cut, _)) = text.char_indices().nth(FALLBACK_TITLE_CHARS) else {
        return text.replace('\n', " ");
    };
    let head = &text[..cut];
    let head = match head.rfind([' ', '\n']) {
        Some(space) if space > cut / 2 => &head[..space],
        _ => head,
    };
    format!("{}…", head.replace('\n', " "))
}

/// Canonical form of an absolute URL: lower-case scheme and host, default port and fragment
/// removed, tracking parameters (`utm_*`, `fbclid`, `gclid`, ...) dropped. `None` if unparsable.
///
/// Only http and https URLs have a canonical form. The remaining query parameters are sorted
/// (and empty ones dropped) so that reordered copies compare equal; an empty query loses its
/// `?`. The path is kept as is, except that the root path is always `/`. The dropped
/// parameters are listed in [`TRACKING_PARAMS`] and [`TRACKING_PREFIXES`]. Idempotent.
pub fn canonical_url(url: &str) -> Option<String> {
    self::url::canonical_url(url)
}

/// Plain text of an HTML fragment: tags removed, entities decoded, whitespace folded.
///
/// Also drops the content of `script`, `style`, `noscript` and `template`, turns block elements
/// into line breaks, decodes character references once (so a double-escaped `&amp;amp;` becomes
/// `&amp;`), and returns Unicode NFC. Never panics, whatever the input.
pub fn html_to_text(html: &str) -> String {
    self::text::html_to_text(html)
}

/// `entry`'s content hash in the form `stored` was written in, when that is an earlier
/// release's form (`None` for the current one): a stored hash equal to it means the item is
/// unchanged and only its hash is out of date. The oldest form hashed the HTML sanitized
/// against the feed's URL (`base_url`, as those releases did).
///
/// Titles: releases before [`escape_unknown_tags`] dropped `<CADX.O>` from a title. For an
/// entry whose title that changes ([`Entry::earlier_title`]), every form is recomputed over the
/// title those releases stored, `4:` too (its prefix did not change when titles began to keep
/// such text, as only such titles hash differently; [`is_earlier_hash_of`] tries it over
/// either title): a row stored before keeps its title until the item is edited, rather than
/// every such item looking edited once after an upgrade.
pub fn content_hash_in_stored_form(entry: &Entry, base_url: &str, stored: &str) -> Option<String> {
    let title = entry
        .earlier_title
        .as_ref()
        .map_or(entry.title.as_str(), |earlier| earlier.title.as_str());
    match HashForm::of(stored) {
        // No release wrote `5:` or later over an earlier title (see `EarlierTitle`).
        HashForm::Current => None,
        HashForm::ExactWhiteSpace => Some(entry.content_hash_exact_white_space.clone()),
        HashForm::GivenDates => Some(
            entry
                .earlier_title
                .as_ref()
                .map_or(&entry.content_hash_with_dates, |e| {
                    &e.content_hash_with_dates
                })
                .clone(),
        ),
        HashForm::ResolvedDates => Some(self::identity::resolved_dates_content_hash(&entry_parts(
            entry,
            title,
            &entry.html,
        ))),
        HashForm::AllAttributes => Some(self::identity::all_attributes_content_hash(&entry_parts(
            entry,
            title,
            &entry.html,
        ))),
        HashForm::SanitizedHtml => {
            let sanitized = self::sanitize::sanitize_html_as_hashed_before(&entry.html, base_url);
            Some(self::identity::legacy_content_hash(&entry_parts(
                entry, title, &sanitized,
            )))
        }
    }
}

/// Whether `stored`, the content hash an entry's row holds, is `entry`'s as an earlier release
/// wrote it: without its enclosures ([`Entry::content_hash_without_media`]); in an earlier
/// form ([`content_hash_in_stored_form`]); for the form `4:`, with its
/// tracking pixels left out ([`Entry::content_hash_with_dates`]) or counted
/// ([`Entry::content_hash_with_pixels`]), over either title. Then nothing was edited and only
/// the hash is out of date. `false` for `entry.content_hash` itself: the caller compares that
/// first.
///
/// The form `4:` hashed the dates the feed gave when the row was written: for an item whose
/// feed re-stamps its dates at every request those are gone, so this says no; the store's
/// `only_tracking_changed` still takes it for no edit when it has a link (title, HTML and
/// authors as stored), and only one without a link counts as edited once more after the
/// upgrade (its row then takes the current form), and never again.
pub fn is_earlier_hash_of(entry: &Entry, base_url: &str, stored: &str) -> bool {
    // A row stored before enclosures were read (or while the item had none): the entry's
    // hash without them. The row then takes them, without the item counting as edited.
    if entry.content_hash_without_media.as_deref() == Some(stored) {
        return true;
    }
    // A row written before white space was folded, with or without the enclosures.
    if HashForm::of(stored) == HashForm::ExactWhiteSpace {
        return entry.content_hash_exact_white_space == stored
            || entry
                .content_hash_exact_white_space_without_media
                .as_deref()
                == Some(stored);
    }
    if HashForm::of(stored) == HashForm::GivenDates {
        let earlier = entry.earlier_title.as_ref();
        return [
            Some(&entry.content_hash_with_dates),
            entry.content_hash_with_pixels.as_ref(),
            earlier.map(|e| &e.content_hash_with_dates),
            earlier.and_then(|e| e.content_hash_with_pixels.as_ref()),
        ]
        .into_iter()
        .flatten()
        .any(|h| h == stored);
    }
    content_hash_in_stored_form(entry, base_url, stored).is_some_and(|h| h == stored)
}

/// The content hash releases before raw HTML storage wrote for `entry`: the same parts, but
/// with the HTML sanitized against the feed's URL (`base_url`, as those releases did, by the
/// sanitizer as it was: see `sanitize::sanitize_html_as_hashed_before`).
pub fn legacy_content_hash(entry: &Entry, base_url: &str) -> String {
    let sanitized = self::sanitize::sanitize_html_as_hashed_before(&entry.html, base_url);
    self::identity::legacy_content_hash(&entry_parts(entry, &entry.title, &sanitized))
}

/// `entry`'s hashed parts, with `title` and `html` standing for its own.
/// (The resolved dates, as every earlier form hashed them.)
fn entry_parts<'a>(entry: &'a Entry, title: &'a str, html: &'a str) -> ContentParts<'a> {
    ContentParts::resolved(
        title,
        entry.link.as_deref(),
        html,
        &entry.authors,
        entry.published,
        entry.updated,
    )
}

/// Allow-list sanitizing of an HTML fragment for output (no script, handlers, js/data URLs,
/// iframes, style attributes); relative URLs resolved against `base_url`.
///
/// Links get `rel="noopener noreferrer"`; only http, https and mailto URLs survive; relative
/// URLs are dropped when `base_url` is not an absolute URL.
pub fn sanitize_html(html: &str, base_url: &str) -> String {
    self::sanitize::sanitize_html(html, base_url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> NormalizeContext {
        let fetched = DateTime::parse_from_rfc3339("2026-11-28T00:00:00Z")
            .unwrap()
            .to_utc();
        NormalizeContext::new(fetched, "https://trade.example.org/feeds/main.xml")
    }

    fn item() -> RawItem {
        RawItem {
            guid: Some("id-1".into()),
            link: Some("/news/steel?utm_source=rss#comments".into()),
            title: Some("Steel &amp; <b>aluminium</b> tariffs".into()),
            summary: Some("<p>Short summary.</p>".into()),
            content: Some(
                "<p>Full <a href=\"/annex\">text</a>.</p><script>x()</script><p>Second.</p>".into(),
            ),
            authors: vec![" Desk ".into(), "".into(), "Desk".into(), "Ana".into()],
            published: None,
            updated: None,
            xml_base: Default::default(),
            media: Default::default(),
            image_fallbacks: Vec::new(),
        }
    }

    #[test]
    fn a_full_item_is_cleaned_resolved_and_hashed() {
        let entry = normalize_item(&item(), &ctx()).unwrap();
        assert_eq!(entry.identity, "guid:id-1");
        assert_eq!(entry.title, "Steel & aluminium tariffs");
        assert_eq!(
            entry.link.as_deref(),
            Some("https://trade.example.org/news/steel?utm_source=rss#comments")
        );
        assert_eq!(
            entry.canonical_url.as_deref(),
            Some("https://trade.example.org/news/steel")
        );
        assert_eq!(entry.authors, ["Desk", "Ana"]);
        assert_eq!(entry.published, ctx().fetched_at);
        assert_eq!(entry.updated, ctx().fetched_at);
        // Stored as the feed gave it; sanitized (against the feed URL here) when served.
        assert_eq!(
            entry.html,
            "<p>Full <a href=\"/annex\">text</a>.</p><script>x()</script><p>Second.</p>"
        );
        assert_eq!(
            sanitize_html(&entry.html, &ctx().base_url),
            "<p>Full <a href=\"https://trade.example.org/annex\" rel=\"noopener noreferrer\">text</a>.</p><p>Second.</p>"
        );
        assert_eq!(entry.text, "Full text.\nSecond.");
        assert_eq!(entry.fingerprint.len(), 32);
        assert_eq!(entry.content_hash.len(), 34);
        assert!(entry.content_hash.starts_with(CONTENT_HASH_PREFIX));
    }

    #[test]
    fn a_reference_without_a_scheme_is_relative() {
        let cases = [
            ("news/1.html", true),
            ("/news/1.html", true),
            ("//cdn.example/a.mp3", true),
            ("?p=1", true),
            ("#top", true),
            ("  ../a", true),
            ("", true),
            ("1:2", true),
            ("https://example.org/a", false),
            (" HTTP://example.org/a", false),
            ("mailto:desk@example.org", false),
            ("web+feed:x", false),
        ];
        for (reference, relative) in cases {
            assert_eq!(is_relative_reference(reference), relative, "{reference:?}");
        }
        // Only the item whose link or an enclosure is relative is marked.
        assert!(normalize_item(&item(), &ctx()).unwrap().relative_urls);
        let absolute = RawItem {
            link: Some("https://trade.example.org/news/steel".into()),
            ..item()
        };
        assert!(!normalize_item(&absolute, &ctx()).unwrap().relative_urls);
    }

    #[test]
    fn the_summary_is_used_when_there_is_no_content() {
        let raw = RawItem {
            content: Some("  ".into()),
            ..item()
        };
        let entry = normalize_item(&raw, &ctx()).unwrap();
        assert_eq!(entry.html, "<p>Short summary.</p>");
        assert_eq!(entry.text, "Short summary.");
    }

    #[test]
    fn identity_follows_the_fallback_chain() {
        let published = Some(ctx().fetched_at - Duration::hours(1));
        let cases = [
            (item(), "guid:id-1"),
            (
                RawItem {
                    guid: Some(" ".into()),
                    ..item()
                },
                "url:https://trade.example.org/news/steel",
            ),
            (
                RawItem {
                    guid: None,
                    link: Some("javascript:void(0)".into()),
                    published,
                    ..item()
                },
                "title:",
            ),
            (
                RawItem {
                    guid: None,
                    link: None,
                    ..item()
                },
                "text:",
            ),
            (
                RawItem {
                    content: Some("<p>Only a body</p>".into()),
                    ..RawItem::default()
                },
                "text:",
            ),
        ];
        for (raw, prefix) in cases {
            let entry = normalize_item(&raw, &ctx()).unwrap();
            assert!(
                entry.identity.starts_with(prefix),
                "{raw:?} gave {}",
                entry.identity
            );
        }
    }

    #[test]
    fn an_item_with_only_an_id_and_a_tracking_pixel_has_nothing_to_show() {
        let with_body = |html: &str| RawItem {
            guid: Some("opaque-1".into()),
            title: None,
            link: None,
            summary: Some(html.into()),
            content: None,
            ..item()
        };
        let pixel = r#"<img src="http://feeds.feedburner.com/~r/x/~4/a" height="1" width="1"/>"#;
        for html in ["", "<p> </p>", pixel, "<IMG width=0 height=0 src=x>"] {
            assert_eq!(
                normalize_item(&with_body(html), &ctx()).map(|e| e.identity),
                Err(SkipReason::NothingToShow {
                    identity: "guid:opaque-1".into()
                }),
                "{html}"
            );
        }
        for html in [
            r#"<img src="/chart.png">"#,
            r#"<p><IMG SRC="a.png" alt=""></p>"#,
        ] {
            assert!(normalize_item(&with_body(html), &ctx()).is_ok(), "{html}");
        }
    }

    #[test]
    fn an_item_with_nothing_to_identify_it_is_skipped() {
        let cases = [
            RawItem::default(),
            RawItem {
                title: Some(" <br> ".into()),
                summary: Some("<script>only()</script>".into()),
                published: Some(ctx().fetched_at),
                ..RawItem::default()
            },
        ];
        for raw in cases {
            assert_eq!(
                normalize_item(&raw, &ctx()),
                Err(SkipReason::Unidentifiable),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn a_title_keeps_angle_brackets_that_are_no_html_tag() {
        let cases = [
            // Reuters' RSS titles: the ticker is escaped once, so it arrives as a tag.
            (
                "Canada dollar <CADX.O> firms",
                "Canada dollar <CADX.O> firms",
            ),
            (
                "American Express <AXP> sees gain",
                "American Express <AXP> sees gain",
            ),
            (
                "Chrysler <C> and </C> closes",
                "Chrysler <C> and </C> closes",
            ),
            ("Write to <desk@example.com>", "Write to <desk@example.com>"),
            ("Steel <b.c> tag-like", "Steel <b.c> tag-like"),
            // Markup is still markup, in any case, with attributes or self-closed.
            ("<b>Tariffs</b> rise", "Tariffs rise"),
            (
                "<EM class=\"x\">Duties</EM> on <span>steel</span>",
                "Duties on steel",
            ),
            ("Quotas<br/>lifted", "Quotas lifted"),
            ("Mixed <AXP> and <i>italics</i>", "Mixed <AXP> and italics"),
            // Word's and CMSs' namespaced and custom elements stay markup.
            (
                "Tariffs<o:p></o:p> in <st1:City>Ottawa</st1:City>",
                "Tariffs in Ottawa",
            ),
            ("Quotas <my-widget x=1>lifted</my-widget>", "Quotas lifted"),
            // Reuters names companies in brackets, hyphens and all: text.
            (
                "<CO-STEEL INC> sets dividend",
                "<CO-STEEL INC> sets dividend",
            ),
            // Not tags at all, as before.
            ("1 < 2 and <3", "1 < 2 and <3"),
            ("Escaped &lt;CADX.O&gt; stays", "Escaped <CADX.O> stays"),
            // The known limit: a ticker that is an element name reads as markup.
            ("Barnes <B> rises", "Barnes rises"),
        ];
        for (raw, expected) in cases {
            assert_eq!(title_texts(raw).0, expected, "{raw:?}");
        }
        // The text of the body is still HTML: an unknown tag there is dropped.
        let raw = RawItem {
            title: Some("Canada dollar <CADX.O> firms".into()),
            content: Some("<p>The Canadian dollar <CADX.O> rose.</p>".into()),
            ..item()
        };
        let entry = normalize_item(&raw, &ctx()).unwrap();
        assert_eq!(entry.title, "Canada dollar <CADX.O> firms");
        assert_eq!(entry.text, "The Canadian dollar rose.");
        let earlier = entry.earlier_title.as_ref().unwrap();
        assert_eq!(earlier.title, "Canada dollar firms");
        // An item identified by its title keeps the identity earlier releases gave it.
        let by_title = |title: &str| RawItem {
            guid: None,
            link: None,
            title: Some(title.into()),
            published: Some(ctx().fetched_at),
            ..item()
        };
        let with_ticker =
            normalize_item(&by_title("Canada dollar <CADX.O> firms"), &ctx()).unwrap();
        let without = normalize_item(&by_title("Canada dollar firms"), &ctx()).unwrap();
        assert!(
            with_ticker.identity.starts_with("title:"),
            "{}",
            with_ticker.identity
        );
        assert_eq!(with_ticker.identity, without.identity);
        // A title the change leaves alone has no earlier form.
        assert_eq!(without.earlier_title, None);
    }

    #[test]
    fn the_rss_and_atom_copies_of_a_ticker_headline_get_one_title() {
        let rss = "<rss version=\"2.0\"><channel><title>T</title><item><guid>g</guid>\
                   <title>Canada dollar &lt;CADX.O&gt; firms</title></item></channel></rss>";
        let atom = "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>T</title><id>f</id>\
                    <updated>2026-01-01T00:00:00Z</updated><entry><id>g</id>\
                    <updated>2026-01-01T00:00:00Z</updated>\
                    <title type=\"text\">Canada dollar &lt;CADX.O&gt; firms</title></entry></feed>";
        let atom_html = atom.replace(
            "type=\"text\">Canada dollar &lt;CADX.O&gt;",
            "type=\"html\">Canada dollar &amp;lt;CADX.O&amp;gt;",
        );
        for doc in [rss, atom, atom_html.as_str()] {
            let feed = crate::parse::parse_feed(doc.as_bytes(), None).unwrap();
            let entry = normalize_item(&feed.items[0], &ctx()).unwrap();
            assert_eq!(entry.title, "Canada dollar <CADX.O> firms", "{doc}");
        }
    }

    #[test]
    fn the_element_list_is_sorted_lower_case_and_fits_the_length_cut() {
        assert!(HTML_ELEMENTS.windows(2).all(|w| w[0] < w[1]));
        for e in HTML_ELEMENTS {
            assert!(
                e.len() <= 10
                    && e.bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()),
                "{e}"
            );
            assert!(is_html_element(&e.to_ascii_uppercase()), "{e}");
        }
        assert!(!is_html_element("cadx") && !is_html_element("blockquotes"));
    }

    #[test]
    fn a_missing_title_falls_back_to_the_start_of_the_text() {
        let long = "Tariff ".repeat(30);
        let cases = [
            ("<p>Short body</p>", "Short body".to_owned()),
            ("<p>Two</p><p>paragraphs</p>", "Two paragraphs".to_owned()),
            (
                long.as_str(),
                format!("{}…", "Tariff ".repeat(11).trim_end()),
            ),
        ];
        for (body, expected) in cases {
            let raw = RawItem {
                title: None,
                content: Some(body.into()),
                ..item()
            };
            assert_eq!(normalize_item(&raw, &ctx()).unwrap().title, expected);
        }
    }

    #[test]
    fn titles_and_texts_are_capped_on_char_boundaries() {
        let mut ctx = ctx();
        ctx.max_title_chars = 5;
        ctx.max_text_chars = 7;
        let raw = RawItem {
            title: Some("Zölle über alles".into()),
            content: Some("<p>Ärger über <b>Zölle</b> und Quoten</p>".into()),
            ..item()
        };
        let entry = normalize_item(&raw, &ctx).unwrap();
        assert_eq!(entry.title, "Zölle");
        assert_eq!(entry.text.chars().count(), 7);
        // The HTML is the first 7 chars of source; the sanitizer closes what the cut left open.
        assert_eq!(entry.html, "<p>Ärge");
        assert_eq!(sanitize_html(&entry.html, &ctx.base_url), "<p>Ärge</p>");
    }

    #[test]
    fn authors_are_capped_in_number_and_length_and_repeats_dropped() {
        let mut authors: Vec<String> = (0..80_000).map(|i| format!("Author {}", i % 40)).collect();
        authors.insert(0, format!(" {} ", "N".repeat(5_000)));
        let raw = RawItem { authors, ..item() };
        let entry = normalize_item(&raw, &ctx()).unwrap();
        assert_eq!(entry.authors.len(), MAX_AUTHORS);
        assert_eq!(entry.authors[0], "N".repeat(MAX_AUTHOR_CHARS));
        assert_eq!(entry.authors[1], "Author 0");
        assert_eq!(entry.authors[MAX_AUTHORS - 1], "Author 30");
    }

    #[test]
    fn bidirectional_controls_are_removed_from_titles_texts_and_authors() {
        let raw = RawItem {
            title: Some("Invoice \u{202e}gnp.exe\u{202c} &#x2067;attached&#x2069;".into()),
            content: Some("<p>Open \u{202d}this\u{202a} \u{2066}now\u{2068}</p>".into()),
            authors: vec!["\u{202e}nimdA\u{202c}".into(), "\u{202e}".into()],
            ..item()
        };
        let entry = normalize_item(&raw, &ctx()).unwrap();
        assert_eq!(entry.title, "Invoice gnp.exe attached");
        assert_eq!(entry.text, "Open this now");
        assert_eq!(entry.authors, ["nimdA"]);
        // Marks that cannot reorder text stay.
        assert_eq!(html_to_text("\u{5e9}\u{200f}x"), "\u{5e9}\u{200f}x");
    }

    #[test]
    fn future_dates_are_clamped_and_updated_is_never_before_published() {
        let c = ctx();
        let cases = [
            (
                Some(c.fetched_at + Duration::days(2)),
                None,
                c.fetched_at,
                c.fetched_at,
            ),
            (
                Some(c.fetched_at - Duration::hours(2)),
                Some(c.fetched_at - Duration::hours(3)),
                c.fetched_at - Duration::hours(2),
                c.fetched_at - Duration::hours(2),
            ),
        ];
        for (published, updated, want_published, want_updated) in cases {
            let raw = RawItem {
                published,
                updated,
                ..item()
            };
            let entry = normalize_item(&raw, &c).unwrap();
            assert_eq!(
                (entry.published, entry.updated),
                (want_published, want_updated)
            );
        }
    }

    /// Stored keys for representative items, computed with the code before the speed work:
    /// a faster path must give the same bytes, or dedup breaks across an upgrade. Columns:
    /// identity, canonical URL, text, stored HTML (the feed's), served HTML (sanitized against
    /// the feed URL), fingerprint, content hash, and the content hash releases that stored
    /// sanitized HTML wrote (pinned from them: an upgrade must recognise it).
    #[test]
    fn stored_keys_are_pinned_for_representative_items() {
        let plain = RawItem {
            guid: None,
            link: Some("https://Wire.Example:443/a?utm_medium=x&z=1&b=2#f".into()),
            title: Some("EU tariffs rise".into()),
            summary: None,
            content: Some("Plain text body, no markup at all. Tariffs rise 25%.".into()),
            authors: vec![],
            published: Some(ctx().fetched_at - Duration::hours(3)),
            updated: None,
            xml_base: Default::default(),
            media: Default::default(),
            image_fallbacks: Vec::new(),
        };
        let unicode = RawItem {
            guid: None,
            link: None,
            title: Some("Zo\u{308}lle: caf&eacute; &amp; Ämter".into()),
            content: Some(
                "<p>Zo\u{308}lle steigen \u{2014} na&iuml;ve\u{a0}Kunden.</p>\r\n<p>Zweiter</p>"
                    .into(),
            ),
            ..RawItem::default()
        };
        let cases = [
            (
                item(),
                [
                    "guid:id-1",
                    "https://trade.example.org/news/steel",
                    "Full text.\nSecond.",
                    "<p>Full <a href=\"/annex\">text</a>.</p><script>x()</script><p>Second.</p>",
                    "<p>Full <a href=\"https://trade.example.org/annex\" rel=\"noopener noreferrer\">text</a>.</p><p>Second.</p>",
                    "b9402cf7609b40abc7ff8a4147dbb17f",
                    "5:8245727e88592d0a3524dbd4abd0228c",
                    "4:366e83e7d26d1b39beef176361f1e984",
                    "d466b2deaad158b5df0c6713754e88d7",
                    "3:a3af5cf8cc5523c547bc4e12b3bdf3c3",
                ],
            ),
            (
                plain,
                [
                    // With the link's fragment since migration 13 (which gives stored
                    // rows theirs), and only for an item without a guid.
                    "url:https://wire.example/a?b=2&z=1#f",
                    "https://wire.example/a?b=2&z=1",
                    "Plain text body, no markup at all. Tariffs rise 25%.",
                    "Plain text body, no markup at all. Tariffs rise 25%.",
                    "Plain text body, no markup at all. Tariffs rise 25%.",
                    "1755970298885c146d823026e70535f3",
                    "5:e51ae6c9704e825ef719a9ba9615538e",
                    "4:7a01f88dec999bda824c09af040066a2",
                    "8fe9fad71722b6f67f3e8123c87a6a25",
                    // No markup: the same hash as the oldest form, with its prefix.
                    "3:8fe9fad71722b6f67f3e8123c87a6a25",
                ],
            ),
            (
                unicode,
                [
                    "text:196c8f03f2fc348b63baf1ca5a499929",
                    "",
                    "Zölle steigen — naïve Kunden.\nZweiter",
                    "<p>Zo\u{308}lle steigen \u{2014} na&iuml;ve\u{a0}Kunden.</p>\r\n<p>Zweiter</p>",
                    "<p>Zo\u{308}lle steigen — naïve&nbsp;Kunden.</p>\n<p>Zweiter</p>",
                    "196c8f03f2fc348b63baf1ca5a499929",
                    "5:471bf9778cdff7e441c945bd36e26f26",
                    "4:1323a436e38adc26fdd5e651a066081e",
                    "70901c23a196d5b8a1f97aac31c2d077",
                    "3:f98460f70db74562c6fa3c707345c966",
                ],
            ),
            (
                hostile_item(),
                [
                    "guid:id-1",
                    "https://trade.example.org/news/steel",
                    // The iframe's fallback text is no text since its content is dropped
                    // (as the sanitizer drops it): text and fingerprint re-pinned then.
                    "Steel\nr &copy 2026",
                    "<script>alert(1)</script><P onclick=x()>Steel</P><a href=\"/r?a=1\">r</a>\
                     <img src=\"data:x\"><iframe src=\"https://e.example\">f</iframe>&copy 2026",
                    "<p>Steel</p><a href=\"https://trade.example.org/r?a=1\" rel=\"noopener noreferrer\">r</a><img>© 2026",
                    "7b781b992826a7dfec102b9fcd2191b2",
                    "5:ffe23a2fc5bd6e249e1f8c295fd1130b",
                    "4:7ea2bf7bcb6ca8920ca4762f51c10fc8",
                    "2b57c18430cd41b1f12460bc78e2033b",
                    "3:3ccdba6863bcac898d6286e6371af12b",
                ],
            ),
        ];
        for (raw, expected) in cases {
            let e = normalize_item(&raw, &ctx()).unwrap();
            let got = [
                e.identity.as_str(),
                e.canonical_url.as_deref().unwrap_or(""),
                e.text.as_str(),
                e.html.as_str(),
                &sanitize_html(&e.html, &ctx().base_url),
                e.fingerprint.as_str(),
                // What the release before white space was folded wrote (pinned by it).
                &content_hash_in_stored_form(&e, &ctx().base_url, "5:").unwrap(),
                // What the release before dates were left out wrote (pinned by it).
                &content_hash_in_stored_form(&e, &ctx().base_url, "4:").unwrap(),
                &legacy_content_hash(&e, &ctx().base_url),
                &content_hash_in_stored_form(&e, &ctx().base_url, "3:").unwrap(),
            ];
            assert_eq!(got, expected, "{raw:?}");
            // Form `6:` hashes the same bytes as `5:` where there is no white space to fold,
            // and HTML with a line break between paragraphs as if there were none.
            let exact = &expected[6][2..];
            let folded = &e.content_hash[2..];
            assert!(e.content_hash.starts_with("6:"), "{}", e.content_hash);
            assert_eq!(folded == exact, !e.html.contains("\r\n"), "{raw:?}");
        }
    }

    /// `item()` with hostile markup: a script, a handler, a relative link, a `data:` image, an
    /// iframe and an unterminated entity.
    fn hostile_item() -> RawItem {
        RawItem {
            content: Some(
                "<script>alert(1)</script><P onclick=x()>Steel</P><a href=\"/r?a=1\">r</a>\
                 <img src=\"data:x\"><iframe src=\"https://e.example\">f</iframe>&copy 2026"
                    .into(),
            ),
            ..item()
        }
    }

    #[test]
    fn a_hash_in_an_earlier_form_is_recomputed_in_that_form() {
        // Form `2:` counted every attribute: the same hex as now unless the HTML has one the
        // sanitizer drops (the hostile item's `onclick`). These are the values the release
        // that wrote it pinned in `stored_keys_are_pinned_for_representative_items`.
        for (raw, earlier) in [
            (item(), "2:a3af5cf8cc5523c547bc4e12b3bdf3c3"),
            (hostile_item(), "2:644281d02904f0d41aece910c02d96e2"),
        ] {
            let e = normalize_item(&raw, &ctx()).unwrap();
            let base = &ctx().base_url;
            assert_eq!(
                content_hash_in_stored_form(&e, base, "2:0").as_deref(),
                Some(earlier)
            );
            assert_eq!(
                content_hash_in_stored_form(&e, base, "0123abcd").as_deref(),
                Some(legacy_content_hash(&e, base).as_str())
            );
            assert_eq!(content_hash_in_stored_form(&e, base, &e.content_hash), None);
            assert_eq!(content_hash_in_stored_form(&e, base, ""), None);
        }
    }

    #[test]
    fn a_date_alone_leaves_the_content_hash_and_the_hash_before_it_is_recognised() {
        let restamped = |published, updated| {
            let raw = RawItem {
                published,
                updated,
                ..item()
            };
            normalize_item(&raw, &ctx()).unwrap()
        };
        let hour = Duration::hours(1);
        let published = Some(ctx().fetched_at - Duration::hours(3));
        let base = restamped(published, None);
        for other in [
            restamped(published.map(|d| d + hour), None),
            restamped(published, published.map(|d| d + hour)),
            restamped(None, None),
        ] {
            assert_eq!(other.content_hash, base.content_hash);
            assert_ne!(other.content_hash_with_dates, base.content_hash_with_dates);
        }
        // A row holding the `4:` hash over the same dates is this item unedited; over other
        // dates (gone from the feed) it is not, and the form is told by its prefix only.
        let base_url = &ctx().base_url;
        assert!(base.content_hash_with_dates.starts_with("4:"));
        assert!(is_earlier_hash_of(
            &base,
            base_url,
            &base.content_hash_with_dates
        ));
        let moved = restamped(published.map(|d| d + hour), None);
        assert!(!is_earlier_hash_of(
            &moved,
            base_url,
            &base.content_hash_with_dates
        ));
        let hex = &base.content_hash_with_dates[2..];
        assert!(!is_earlier_hash_of(&base, base_url, &format!("5:{hex}")));
        // Over the title earlier releases stored, with and without a pixel.
        let ticker = |content: &str| RawItem {
            title: Some("Canada dollar <CADX.O> firms".into()),
            content: Some(content.into()),
            ..item()
        };
        let plain = normalize_item(&ticker("<p>Rose.</p>"), &ctx()).unwrap();
        let earlier = plain.earlier_title.as_ref().unwrap();
        assert!(is_earlier_hash_of(
            &plain,
            base_url,
            &earlier.content_hash_with_dates
        ));
        let pixel = "<img src=\"https://px.example/t\" width=\"1\" height=\"1\">";
        let pixelled = normalize_item(&ticker(&format!("<p>Rose.</p>{pixel}")), &ctx()).unwrap();
        let earlier = pixelled.earlier_title.as_ref().unwrap();
        for written in [
            earlier.content_hash_with_pixels.as_ref().unwrap(),
            &earlier.content_hash_with_dates,
            pixelled.content_hash_with_pixels.as_ref().unwrap(),
            &pixelled.content_hash_with_dates,
        ] {
            assert!(
                is_earlier_hash_of(&pixelled, base_url, written),
                "{written}"
            );
        }
    }

    #[test]
    fn content_hash_ignores_what_no_output_shows_and_notices_what_it_does() {
        let hash = |content: &str| {
            let raw = RawItem {
                content: Some(content.into()),
                ..item()
            };
            normalize_item(&raw, &ctx()).unwrap().content_hash
        };
        let base = hash(
            "<p>Duties <b>rise</b>.</p><script>var nonce=1</script><!-- 0.12s -->\
             <iframe src=\"https://ads.example/?cb=1\">x</iframe>",
        );
        let per_request = hash(
            "<p>Duties <b>rise</b>.</p><SCRIPT async>var nonce=2</SCRIPT><!-- 0.31s -->\
             <iframe src=\"https://ads.example/?cb=2\">y</iframe>",
        );
        assert_eq!(base, per_request);
        for edited in [
            "<p>Duties <b>fall</b>.</p>",
            "<p>Duties <i>rise</i>.</p>",
            "<p><a href=\"/annex\">Duties</a> <b>rise</b>.</p>",
        ] {
            assert_ne!(base, hash(edited), "{edited}");
        }

        // Attributes: those the sanitizer drops do not count, those a reader gets do.
        let linked = |attributes: &str| {
            hash(&format!(
                "<p{attributes}>Duties <a href=\"/annex\" title=\"Annex\">rise</a>.</p>\
                 <img src=\"/c.png\" alt=\"Chart\">"
            ))
        };
        let plain = linked("");
        for churn in [
            " class=\"lead lead--v2\"",
            " style=\"color:red\" id=p7",
            " data-track=\"8f3a\" onclick=\"t()\"",
        ] {
            assert_eq!(plain, linked(churn), "{churn}");
        }
        let base_linked = "<p>Duties <a href=\"/annex\" title=\"Annex\">rise</a>.</p>\
                           <img src=\"/c.png\" alt=\"Chart\">";
        for (kept, changed) in [
            ("/annex", "/annex-2"),
            ("title=\"Annex\"", "title=\"Annexes\""),
            ("/c.png", "/d.png"),
            ("alt=\"Chart\"", "alt=\"Table\""),
        ] {
            assert_ne!(
                plain,
                hash(&base_linked.replace(kept, changed)),
                "{kept} → {changed}"
            );
        }
    }

    #[test]
    fn content_hash_ignores_tracking_pixels_and_keeps_the_hash_that_counted_them() {
        let entry = |content: &str| {
            let raw = RawItem {
                content: Some(content.into()),
                ..item()
            };
            normalize_item(&raw, &ctx()).unwrap()
        };
        let text = "<p>Duties <b>rise</b>.</p><img src=\"/c.png\" width=\"600\" height=\"400\">";
        let plain = entry(text);
        assert_eq!(plain.content_hash_with_pixels, None);
        // Pixels as feeds write them: any case, quoting, units, self-closed, with attributes
        // the sanitizer drops, stamped per request.
        for pixel in [
            "<img src=\"https://px.example/t.gif?r=8f3a\" width=\"1\" height=\"1\">",
            "<IMG SRC=https://px.example/t.gif?r=77 HEIGHT=1 WIDTH=1 class=tp/>",
            "<img width='0' height=' 1px ' src=\"http://feeds.feedburner.com/~r/T/~4/kTee\" />",
            "<img height=\"&#49;\" width=\"1\" src=\"https://px.example/b\" alt=\"\">",
        ] {
            let with_pixel = entry(&format!("{text}{pixel}"));
            assert_eq!(with_pixel.content_hash, plain.content_hash, "{pixel}");
            assert_eq!(
                with_pixel.content_hash_with_dates, plain.content_hash_with_dates,
                "{pixel}"
            );
            // Pixels were counted by the releases that wrote `4:`.
            let counted = with_pixel.content_hash_with_pixels.expect(pixel);
            assert!(counted.starts_with("4:"), "{counted}");
            assert_ne!(counted, plain.content_hash_with_dates, "{pixel}");
        }
        // Images that show something are content.
        for image in [
            "<img src=\"https://x.example/c.png\" width=\"1\" height=\"300\">",
            "<img src=\"https://x.example/c.png\" width=\"2\" height=\"2\">",
            "<img src=\"https://x.example/c.png\" height=\"1\">",
            "<img src=\"https://x.example/c.png\" width=\"1\" height=\"1.5\">",
        ] {
            let shown = entry(&format!("{text}{image}"));
            assert_ne!(shown.content_hash, plain.content_hash, "{image}");
            assert_eq!(shown.content_hash_with_pixels, None, "{image}");
        }
    }

    #[test]
    fn fingerprint_ignores_markup_and_content_hash_notices_edits() {
        let a = normalize_item(&item(), &ctx()).unwrap();
        let restyled = RawItem {
            content: Some("<div>Full <em>text</em>.<br>Second.</div>".into()),
            ..item()
        };
        let b = normalize_item(&restyled, &ctx()).unwrap();
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.content_hash, b.content_hash);
        let edited = RawItem {
            content: Some("<p>Full text.</p><p>Third.</p>".into()),
            ..item()
        };
        let c = normalize_item(&edited, &ctx()).unwrap();
        assert_ne!(a.fingerprint, c.fingerprint);
    }

    /// The text of `xmp`, `noembed` and `title` elements in an item's HTML reaches readers
    /// (escaped, as the sanitizer unwraps these elements) and the plain text, also when the
    /// HTML nests too deeply and is rewritten; `script` and `style` content reaches neither.
    #[test]
    fn text_in_xmp_noembed_and_title_elements_survives_storing_and_serving() {
        for element in ["xmp", "noembed", "title"] {
            for deep in [false, true] {
                let html = format!(
                    "<p>a</p><{element}>x < y</{element}><p>b</p><script>s()</script><style>p{{}}</style>{}",
                    if deep {
                        "<div>".repeat(100)
                    } else {
                        String::new()
                    }
                );
                let raw = RawItem {
                    content: Some(html.clone()),
                    ..item()
                };
                let entry = normalize_item(&raw, &ctx()).unwrap();
                let served = sanitize_html(&entry.html, &ctx().base_url);
                assert!(
                    served.starts_with("<p>a</p>x &lt; y<p>b</p>"),
                    "{element}, deep {deep}: {served}"
                );
                assert!(
                    !served.contains("s()") && !served.contains("p{}"),
                    "{served}"
                );
                assert!(entry.text.contains("x < y"), "{element}: {:?}", entry.text);
                assert!(!entry.text.contains("s()"), "{:?}", entry.text);
            }
        }
    }

    fn with_bases(item: &[&str], content: Option<&str>, summary: Option<&str>) -> RawItem {
        RawItem {
            xml_base: crate::domain::XmlBase {
                item: item.iter().map(|s| (*s).to_owned()).collect(),
                content: content.into_iter().map(str::to_owned).collect(),
                summary: summary.into_iter().map(str::to_owned).collect(),
            },
            ..item_with_relative_urls()
        }
    }

    fn item_with_relative_urls() -> RawItem {
        RawItem {
            content: Some(r#"<p><a href="post.html">p</a><img src="img/chart.png"></p>"#.into()),
            summary: Some(r#"<a href="summary.html">s</a>"#.into()),
            ..item()
        }
    }

    fn served(raw: &RawItem) -> (Option<String>, String) {
        let entry = normalize_item(raw, &ctx()).unwrap();
        let base = entry.base_url.clone().unwrap_or_else(|| ctx().base_url);
        (entry.base_url, sanitize_html(&entry.html, &base))
    }

    #[test]
    fn a_feed_level_xml_base_is_the_base_of_the_content() {
        let (base, html) = served(&with_bases(&["https://example.org/blog/"], None, None));
        assert_eq!(base.as_deref(), Some("https://example.org/blog/"));
        assert!(
            html.contains(r#"href="https://example.org/blog/post.html""#)
                && html.contains(r#"src="https://example.org/blog/img/chart.png""#),
            "{html}"
        );
    }

    #[test]
    fn nested_relative_bases_resolve_each_against_the_one_before_from_the_fetch_url() {
        // Entry-level only, relative: against the URL the feed was fetched from.
        let (base, _) = served(&with_bases(&["/2024/05/"], None, None));
        assert_eq!(base.as_deref(), Some("https://trade.example.org/2024/05/"));
        // Feed, then entry, then content, each relative to the one before.
        let (base, html) = served(&with_bases(
            &["https://example.org/blog/", "/2024/05/"],
            Some("posts/"),
            Some("ignored/"),
        ));
        assert_eq!(base.as_deref(), Some("https://example.org/2024/05/posts/"));
        assert!(
            html.contains(r#"href="https://example.org/2024/05/posts/post.html""#),
            "{html}"
        );
        // An absolute entry base overrides the feed's.
        let (base, _) = served(&with_bases(
            &["https://example.org/blog/", "https://cdn.example.net/x/"],
            None,
            None,
        ));
        assert_eq!(base.as_deref(), Some("https://cdn.example.net/x/"));
    }

    /// A relative `xml:base` on the entry (or the feed), which feed-rs cannot apply itself,
    /// is the base of the item's link and enclosures too, over the URL fetched (RFC 4287
    /// §2, XML Base); the content's own base does not reach them.
    #[test]
    fn a_relative_entry_base_is_the_base_of_the_link_and_enclosures() {
        let raw = RawItem {
            link: Some("r1.html".into()),
            media: Media {
                enclosures: vec![raw_enclosure("audio/r1.mp3", Some("audio/mpeg"))],
                image: None,
            },
            ..with_bases(&["/outlet/news/"], Some("content/"), None)
        };
        let entry = normalize_item(&raw, &ctx()).unwrap();
        assert_eq!(
            entry.link.as_deref(),
            Some("https://trade.example.org/outlet/news/r1.html")
        );
        assert_eq!(
            entry.media.enclosures[0].url,
            "https://trade.example.org/outlet/news/audio/r1.mp3"
        );
        assert!(entry.relative_urls, "the hash depends on the URL fetched");
        // Feed, then entry, each relative to the one before; without any, the URL fetched.
        let raw = RawItem {
            link: Some("r1.html".into()),
            ..with_bases(&["https://example.org/blog/", "2024/"], None, None)
        };
        let entry = normalize_item(&raw, &ctx()).unwrap();
        assert_eq!(
            entry.link.as_deref(),
            Some("https://example.org/blog/2024/r1.html")
        );
        let plain = RawItem {
            link: Some("r1.html".into()),
            ..item()
        };
        assert_eq!(
            normalize_item(&plain, &ctx()).unwrap().link.as_deref(),
            Some("https://trade.example.org/feeds/r1.html")
        );
    }

    #[test]
    fn an_item_without_content_takes_its_summary_base() {
        let raw = RawItem {
            content: None,
            ..with_bases(&["https://example.org/"], Some("c/"), Some("s/"))
        };
        let (base, html) = served(&raw);
        assert_eq!(base.as_deref(), Some("https://example.org/s/"));
        assert!(
            html.contains(r#"href="https://example.org/s/summary.html""#),
            "{html}"
        );
    }

    #[test]
    fn no_base_of_its_own_when_the_bases_lead_nowhere_new_or_to_no_web_url() {
        let none = |raw: RawItem| normalize_item(&raw, &ctx()).unwrap().base_url;
        assert_eq!(none(with_bases(&[], None, None)), None);
        assert_eq!(none(with_bases(&[&ctx().base_url], None, None)), None);
        assert_eq!(none(with_bases(&["main.xml"], None, None)), None);
        assert_eq!(
            none(with_bases(&["javascript:alert(1)//"], None, None)),
            None
        );
        assert_eq!(none(with_bases(&["ftp://example.org/"], None, None)), None);
        let long = format!("https://example.org/{}/", "a".repeat(MAX_BASE_URL_LEN));
        assert_eq!(none(with_bases(&[&long], None, None)), None);
        // A value that does not resolve, or leads to no web URL, is skipped; the rest still
        // apply.
        for bad in ["http://[bad/", "javascript:alert(1)//", "file:///etc/"] {
            assert_eq!(
                none(with_bases(&["https://example.org/", bad], Some("c/"), None)).as_deref(),
                Some("https://example.org/c/"),
                "{bad}"
            );
            let raw = RawItem {
                link: Some("r1.html".into()),
                ..with_bases(&["https://example.org/blog/", bad], None, None)
            };
            assert_eq!(
                normalize_item(&raw, &ctx()).unwrap().link.as_deref(),
                Some("https://example.org/blog/r1.html"),
                "{bad}"
            );
        }
        assert_eq!(
            none(with_bases(
                &["https://example.org/", "http://[bad/"],
                Some("c/"),
                None
            ))
            .as_deref(),
            Some("https://example.org/c/")
        );
    }

    #[test]
    fn the_base_changes_neither_identity_nor_content_hash() {
        // The content's own base: the entry's would also move the item's relative link.
        let plain = normalize_item(&item_with_relative_urls(), &ctx()).unwrap();
        let based = normalize_item(
            &with_bases(&[], Some("https://example.org/blog/c/"), None),
            &ctx(),
        )
        .unwrap();
        assert_ne!(based.base_url, plain.base_url);
        assert_eq!(
            (&based.identity, &based.content_hash, &based.fingerprint),
            (&plain.identity, &plain.content_hash, &plain.fingerprint)
        );
    }

    fn raw_enclosure(url: &str, mime: Option<&str>) -> Enclosure {
        Enclosure {
            url: url.into(),
            mime_type: mime.map(Into::into),
            ..Default::default()
        }
    }

    fn with_media(enclosures: Vec<Enclosure>, image: Option<&str>) -> RawItem {
        RawItem {
            media: Media {
                enclosures,
                image: image.map(Into::into),
            },
            ..item()
        }
    }

    #[test]
    fn enclosures_resolve_against_the_feed_url_and_only_http_ones_up_to_the_cap_are_kept() {
        let long = format!("https://cdn.example/{}", "a".repeat(MAX_MEDIA_URL_LEN));
        let mut enclosures = vec![
            raw_enclosure("/audio/ep1.mp3", Some("audio/mpeg")),
            // The same file written absolute: once.
            raw_enclosure(
                "https://trade.example.org/audio/ep1.mp3",
                Some("audio/mpeg"),
            ),
            raw_enclosure("ftp://files.example/ep1.mp3", None),
            raw_enclosure("javascript:alert(1)", None),
            raw_enclosure(&long, None),
            Enclosure {
                title: Some("  Show \u{2066} \n no\u{202e}tes\u{202c} ".into()),
                length: Some(10),
                duration: Some(3),
                ..raw_enclosure("notes.pdf", Some("application/pdf"))
            },
        ];
        for i in 0..20 {
            enclosures.push(raw_enclosure(&format!("https://cdn.example/{i}.mp3"), None));
        }
        let entry = normalize_item(&with_media(enclosures, Some("/img/lead.jpg")), &ctx()).unwrap();
        let urls: Vec<&str> = entry
            .media
            .enclosures
            .iter()
            .map(|e| e.url.as_str())
            .collect();
        assert_eq!(
            urls,
            [
                "https://trade.example.org/audio/ep1.mp3",
                "https://trade.example.org/feeds/notes.pdf",
                "https://cdn.example/0.mp3",
                "https://cdn.example/1.mp3",
                "https://cdn.example/2.mp3",
                "https://cdn.example/3.mp3",
                "https://cdn.example/4.mp3",
                "https://cdn.example/5.mp3",
            ]
        );
        assert_eq!(urls.len(), MAX_ENCLOSURES);
        assert_eq!(
            entry.media.enclosures[1],
            Enclosure {
                url: "https://trade.example.org/feeds/notes.pdf".into(),
                mime_type: Some("application/pdf".into()),
                length: Some(10),
                title: Some("Show notes".into()),
                duration: Some(3),
            }
        );
        assert_eq!(
            entry.media.image.as_deref(),
            Some("https://trade.example.org/img/lead.jpg")
        );
        let none = normalize_item(
            &with_media(vec![raw_enclosure("ftp://x/y", None)], None),
            &ctx(),
        )
        .unwrap();
        assert_eq!(none.media, Media::default());
    }

    #[test]
    fn enclosures_count_in_the_content_hash_and_a_row_stored_without_them_is_no_edit() {
        let plain = normalize_item(&item(), &ctx()).unwrap();
        assert_eq!(plain.content_hash_without_media, None);
        let mp3 = || raw_enclosure("https://cdn.example/ep1.mp3", Some("audio/mpeg"));
        let podcast = normalize_item(&with_media(vec![mp3()], None), &ctx()).unwrap();
        // The item's hash as releases before enclosures wrote it is recognised: no edit.
        assert_ne!(podcast.content_hash, plain.content_hash);
        assert_eq!(
            podcast.content_hash_without_media.as_deref(),
            Some(plain.content_hash.as_str())
        );
        assert!(is_earlier_hash_of(&podcast, "", &plain.content_hash));
        assert!(!is_earlier_hash_of(&plain, "", &podcast.content_hash));
        // The `4:` form never had them.
        assert_eq!(
            podcast.content_hash_with_dates,
            plain.content_hash_with_dates
        );

        // What is not hashed: size, duration, title, tracking parameters, the image.
        let same = [
            with_media(
                vec![Enclosure {
                    length: Some(99),
                    duration: Some(5),
                    title: Some("MP3".into()),
                    ..mp3()
                }],
                Some("https://img.example/lead.jpg"),
            ),
            with_media(
                vec![raw_enclosure(
                    "https://cdn.example/ep1.mp3?utm_source=rss",
                    Some("audio/mpeg"),
                )],
                None,
            ),
        ];
        for raw in same {
            let entry = normalize_item(&raw, &ctx()).unwrap();
            assert_eq!(entry.content_hash, podcast.content_hash, "{:?}", raw.media);
        }
        // What is: another file, another type, one more or one fewer, the order.
        let pdf = raw_enclosure("https://cdn.example/notes.pdf", Some("application/pdf"));
        let edits = [
            with_media(
                vec![raw_enclosure(
                    "https://cdn.example/ep1-v2.mp3",
                    Some("audio/mpeg"),
                )],
                None,
            ),
            with_media(
                vec![raw_enclosure(
                    "https://cdn.example/ep1.mp3",
                    Some("audio/mp4"),
                )],
                None,
            ),
            with_media(
                vec![raw_enclosure("https://cdn.example/ep1.mp3", None)],
                None,
            ),
            with_media(vec![mp3(), pdf.clone()], None),
            with_media(vec![pdf.clone(), mp3()], None),
            with_media(vec![pdf], None),
        ];
        let mut seen = std::collections::HashSet::from([podcast.content_hash.clone()]);
        for raw in edits {
            let entry = normalize_item(&raw, &ctx()).unwrap();
            assert!(seen.insert(entry.content_hash.clone()), "{:?}", raw.media);
            assert_eq!(
                entry.content_hash_without_media.as_deref(),
                Some(plain.content_hash.as_str())
            );
        }
        // An image alone leaves the hash as it was.
        let pictured = normalize_item(
            &with_media(vec![], Some("https://img.example/a.jpg")),
            &ctx(),
        )
        .unwrap();
        assert_eq!(
            (
                pictured.content_hash.as_str(),
                pictured.content_hash_without_media
            ),
            (plain.content_hash.as_str(), None)
        );
    }
}
