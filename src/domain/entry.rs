use chrono::{DateTime, Utc};

use super::Media;

/// A feed as the parser understood it, before any cleaning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedFeed {
    /// The feed's own title, if any.
    pub title: Option<String>,
    /// The feed's home page link, if any (used as a base for relative item links).
    pub link: Option<String>,
    /// Items in document order.
    pub items: Vec<RawItem>,
    /// What the parser had to repair in the document before it could read it (say "2 bare
    /// ampersand(s) escaped"), one phrase each; empty for a well-formed feed. Logged, so an
    /// operator can tell the publisher.
    pub repairs: Vec<String>,
    /// Items the feed lists that were not read: those in the middle of a feed listing more
    /// than the caller could take (see `parse::parse_feed_for`); 0 when every item was read.
    pub items_not_read: usize,
    /// Children of items not read: past the most an item is read with of one name, or in
    /// all (see `parse::parse_feed_for`); 0 when every one was read.
    pub elements_not_read: usize,
}

/// One item exactly as the feed carried it (text may hold HTML and entities).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawItem {
    /// The publisher's id (RSS guid, Atom id, JSON Feed id), if present.
    pub guid: Option<String>,
    /// The item's link (may be relative).
    pub link: Option<String>,
    /// The title, possibly with HTML.
    pub title: Option<String>,
    /// Summary/description HTML.
    pub summary: Option<String>,
    /// Full content HTML.
    pub content: Option<String>,
    /// Author names.
    pub authors: Vec<String>,
    /// When the publisher says it was published.
    pub published: Option<DateTime<Utc>>,
    /// When the publisher says it was last updated.
    pub updated: Option<DateTime<Utc>>,
    /// The `xml:base` attributes in scope of the item's content and summary.
    pub xml_base: XmlBase,
    /// Its enclosures and lead image as the feed gave them (URLs possibly relative; at most
    /// twice [`super::MAX_ENCLOSURES`], repeats of one URL dropped, types and lengths already
    /// sanitized); normalizing resolves and caps them.
    pub media: Media,
    /// The lead images to fall back on, best first, when normalizing refuses `media.image`
    /// (a URL too long once resolved, not http(s)): the other candidates the feed gave (JSON
    /// Feed `banner_image`, a Media RSS thumbnail, the first image enclosure), repeats left
    /// out. Empty when `media.image` is none or had no rival.
    pub image_fallbacks: Vec<String>,
}

/// The `xml:base` attributes (XML Base) an Atom document puts around one entry's content and
/// summary, as it wrote them (possibly relative; entities decoded). Relative URLs in the
/// content resolve against the URL the feed was fetched from, resolved in turn by each of
/// these, outermost first (RFC 3986). Empty when the document has none, or when they could not
/// be matched to the entries with certainty (see `parse`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct XmlBase {
    /// Those of the `<feed>` and of the `<entry>` element, outermost first (the ones present).
    pub item: Vec<String>,
    /// That of the entry's `<content>` element, then that of its wrapper `<div>` when it is
    /// XHTML (the ones present; the div is no part of the content, RFC 4287 §4.1.3.3).
    pub content: Vec<String>,
    /// Those of the entry's `<summary>` element and its XHTML wrapper `<div>`, likewise.
    pub summary: Vec<String>,
}

/// One item as one source published it, cleaned and ready to store.
///
/// Unique on (source, `identity`). Several entries from different sources can belong to one story.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Stable identity of the item within its source (see `normalize::identity` for the chain).
    pub identity: String,
    /// Plain-text title (entities decoded, tags removed, whitespace folded).
    pub title: String,
    /// The title earlier releases stored for this item, when it differs from
    /// `title`: they dropped angle-bracketed text that is no HTML tag (`<CADX.O>`), which
    /// `title` keeps. Not stored; an upgraded row is recognised by it (see
    /// `normalize::content_hash_in_stored_form`).
    pub earlier_title: Option<EarlierTitle>,
    /// Absolute link as published.
    pub link: Option<String>,
    /// Canonical form of `link` (lower-case scheme/host, no fragment, no tracking parameters).
    pub canonical_url: Option<String>,
    /// Author names.
    pub authors: Vec<String>,
    /// Publication time (first-seen time when the feed gave none; clamped to fetch time if in the future).
    pub published: DateTime<Utc>,
    /// Last update time (>= published).
    pub updated: DateTime<Utc>,
    /// Whether `published` is a date the feed gave; `false` when the fetch time stands in for
    /// a missing, unparseable or future one (an edit then keeps the first-seen time stored).
    pub dated: bool,
    /// The item's HTML as the feed gave it (content, else summary; cut at the text cap). Not
    /// safe to output as is: every output sanitizes it (`normalize::sanitize_html`).
    pub html: String,
    /// Plain text extracted from the HTML, used for matching and scoring.
    pub text: String,
    /// Hash of the normalized title + text: equal for byte-different copies of the same text.
    pub fingerprint: String,
    /// Hash of what a reader sees of the entry (title, link, HTML, authors; not its dates): a
    /// change means the item was edited.
    pub content_hash: String,
    /// When the link has tracking parameters (`utm_*`, `fbclid`, …: see [`super::without_tracking`]),
    /// the content hash over the link without them; `None` when it has none (`content_hash`
    /// is then that hash). Stored (`entries.untracked_hash`): a poll whose item differs from
    /// the row only in those parameters and in what the hash does not read (a pixel's token,
    /// a nonce class, white space) is no edit (see the store's `only_tracking_changed`).
    pub untracked_hash: Option<String>,
    /// The content hash releases before dates were left out of it wrote (form `4:`, over the
    /// dates the feed gave; tracking pixels left out). Not stored; a row holding it is
    /// recognised as unedited (see `normalize::is_earlier_hash_of`).
    pub content_hash_with_dates: String,
    /// When the HTML holds a tracking pixel, the content hash releases before pixels were left
    /// out of it wrote (form `4:`, over the dates, pixels counted). Not stored; recognised as
    /// `content_hash_with_dates` is.
    pub content_hash_with_pixels: Option<String>,
    /// The URL relative URLs in `html` resolve against when the feed's `xml:base` makes it
    /// differ from the URL the feed was fetched from (`None`: that URL). Stored per entry
    /// (`entries.base_url`); not part of `content_hash` (see `normalize::normalize_item`).
    pub base_url: Option<String>,
    /// Its enclosures and lead image: absolute http(s) URLs, at most
    /// [`super::MAX_ENCLOSURES`], no URL twice (see `normalize::normalize_item`). Stored as
    /// `entries.media`; the served story shows its representative's.
    pub media: Media,
    /// When `media` is not empty, the content hash without it: what rows stored before
    /// enclosures were read hold (and rows of the item stored while it had none). Not stored;
    /// a row holding it is recognised as unedited and takes the media (see
    /// `normalize::is_earlier_hash_of`).
    pub content_hash_without_media: Option<String>,
    /// The content hash releases before white space was folded wrote (form `5:`, the HTML's
    /// white space byte for byte; with the enclosures, when any). Not stored; a row holding it
    /// is recognised as unedited (see `normalize::is_earlier_hash_of`).
    pub content_hash_exact_white_space: String,
    /// When `media` is not empty, the `5:` hash without it: what rows stored before enclosures
    /// were read hold. Recognised as `content_hash_exact_white_space` is.
    pub content_hash_exact_white_space_without_media: Option<String>,
    /// Whether the feed gave the link or an enclosure's URL as a relative reference, resolved
    /// against the URL the feed was fetched from: the content hash then depends on that URL,
    /// and a row stored when the feed was fetched from another one (the source's URL changed,
    /// as a permanent redirect advises) is compared with the item resolved against the base
    /// that row was written with (see `ingest`). Not stored.
    pub relative_urls: bool,
}

/// An entry's title as earlier releases made it, and the entry's content hash over it.
#[derive(Debug, Clone, PartialEq)]
pub struct EarlierTitle {
    /// The title.
    pub title: String,
    /// The content hash in form `4:` with this title in place of the entry's (see
    /// `Entry::content_hash_with_dates`). None in the current form: titles kept such text
    /// before `5:` was written, so no row holds a `5:` hash over an earlier title.
    pub content_hash_with_dates: String,
    /// The same in form `4:` with tracking pixels counted, when the HTML holds one (see
    /// `Entry::content_hash_with_pixels`).
    pub content_hash_with_pixels: Option<String>,
}

/// An entry's headline as the title-only rule matches it (made by `cluster::headline_of`):
/// normalized, without the publisher suffix an aggregator added.
#[derive(Debug, Clone, PartialEq)]
pub struct Headline {
    /// The headline's words, lower-cased, punctuation read as a word break, joined by single
    /// spaces: copies are compared on it (exact equality).
    pub key: String,
    /// Whether the entry has no text of its own: none, or a description that only repeats the
    /// headline and the publisher (as Google News gives).
    pub title_only: bool,
    /// The suffix dropped from the title (` - Reuters`), when one was.
    pub dropped_suffix: Option<String>,
    /// For a title that declares itself a revision ("CORRECTED-", "UPDATE 2-": see
    /// `cluster::declares_revision`), the key of the headline without that prefix: the key
    /// its feed's earlier version of the item was stored under.
    pub unrevised: Option<String>,
}
