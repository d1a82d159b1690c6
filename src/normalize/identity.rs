//! Item identity and the two hashes: fingerprint (same text) and content hash (same entry).
//!
//! The identity fallback chain is documented on the parent module.

use chrono::{DateTime, SecondsFormat, Utc};
use xxhash_rust::xxh3::Xxh3;

use crate::domain::{Media, without_tracking};

use super::text::{
    ShownAttributes, for_each_shown_part, hash_normalized_for_matching, normalize_for_matching,
};

/// Publisher ids longer than this (bytes) are stored as their hash: the identity is a database
/// key and a hostile feed could send megabyte-long ids.
const MAX_GUID_BYTES: usize = 512;

/// What the identity chain looks at, already normalized by the caller.
#[derive(Debug, Clone, Copy)]
pub struct IdentityInput<'a> {
    /// The publisher's id, as parsed.
    pub guid: Option<&'a str>,
    /// The canonical URL of the resolved link.
    pub canonical_url: Option<&'a str>,
    /// The resolved link's fragment when it names a place in the page (see [`anchor_of`]),
    /// which the canonical URL leaves out.
    pub anchor: Option<&'a str>,
    /// The plain-text title the feed gave (empty when it gave none).
    pub title: &'a str,
    /// The date the feed gave (published, else updated); `None` when it gave none.
    pub feed_date: Option<DateTime<Utc>>,
    /// The plain text of the body.
    pub text: &'a str,
}

/// Applies the identity fallback chain; `None` when there is nothing to identify the item by.
pub fn identity(input: &IdentityInput<'_>) -> Option<String> {
    if let Some(guid) = input.guid.map(str::trim).filter(|g| !g.is_empty()) {
        return Some(if guid.len() > MAX_GUID_BYTES {
            format!("guid:xxh3:{}", hex128(hash_parts(&[guid.as_bytes()])))
        } else {
            format!("guid:{guid}")
        });
    }
    if let Some(url) = input.canonical_url {
        return Some(match input.anchor {
            Some(anchor) => format!("url:{url}#{anchor}"),
            None => format!("url:{url}"),
        });
    }
    let title = normalize_for_matching(input.title);
    if let (false, Some(date)) = (title.is_empty(), input.feed_date) {
        let date = date.to_rfc3339_opts(SecondsFormat::Secs, true);
        return Some(format!(
            "title:{}",
            hex128(hash_parts(&[title.as_bytes(), date.as_bytes()]))
        ));
    }
    let text = normalize_for_matching(input.text);
    if title.is_empty() && text.is_empty() {
        return None;
    }
    Some(format!(
        "text:{}",
        hex128(hash_parts(&[title.as_bytes(), text.as_bytes()]))
    ))
}

/// The fragment of an item's resolved link, when it names a place in the page: a live blog's
/// `#post-2` or a news ticker's `#item-1234`, whose items without ids would otherwise be one
/// item, each new one overwriting the last (review, session 28). Not one that reads as
/// parameters (`#xtor=RSS-3`, `#ref=rss`: any `=`), which outlets stamp for their statistics
/// and may vary, and not an empty one. Migration 13 gave the rows stored before their
/// anchors by the same rule (`migrations/13-entry-url-anchor`).
pub fn anchor_of(fragment: Option<&str>) -> Option<&str> {
    fragment.filter(|f| !f.is_empty() && !f.contains('='))
}

/// The identity of an item whose publisher id (`identity`) is shared, within one feed document,
/// by items with different links (a CMS that gives every item its home page URL as guid):
/// `shared:` and the xxh3-128 hex of the id and the canonical link. Stable across polls, and
/// different for each link, so no item of the group is lost.
pub fn shared_identity(identity: &str, canonical_url: Option<&str>) -> String {
    format!(
        "shared:{}",
        hex128(hash_parts(&[
            identity.as_bytes(),
            canonical_url.unwrap_or("").as_bytes()
        ]))
    )
}

/// xxh3-128 hex of the normalized title + "\n" + normalized text: equal for byte-different
/// renderings (markup, case, punctuation, spacing) of the same words.
pub fn fingerprint(title: &str, text: &str) -> String {
    let mut hasher = Xxh3::new();
    hash_normalized_for_matching(title, &mut hasher);
    hasher.update(b"\n");
    hash_normalized_for_matching(text, &mut hasher);
    hex128(hasher.digest128())
}

/// Everything stored for an entry that can change when the publisher edits it.
#[derive(Debug, Clone, Copy)]
pub struct ContentParts<'a> {
    /// Plain-text title.
    pub title: &'a str,
    /// Absolute link.
    pub link: Option<&'a str>,
    /// HTML as the feed gave it (cut at the text cap).
    pub html: &'a str,
    /// Author names.
    pub authors: &'a [String],
    /// Publication time, which [`content_hash`] leaves out: for the form `4:` (see
    /// [`content_hashes`]), the one the feed gave (`None` when it gave none); earlier forms
    /// hashed the resolved time (see [`ContentParts::resolved`]).
    pub published: Option<DateTime<Utc>>,
    /// Last update time, as `published`.
    pub updated: Option<DateTime<Utc>>,
}

impl<'a> ContentParts<'a> {
    /// Parts with resolved dates, as every form before `4:` hashed them.
    pub fn resolved(
        title: &'a str,
        link: Option<&'a str>,
        html: &'a str,
        authors: &'a [String],
        published: DateTime<Utc>,
        updated: DateTime<Utc>,
    ) -> Self {
        ContentParts {
            title,
            link,
            html,
            authors,
            published: Some(published),
            updated: Some(updated),
        }
    }
}

/// What starts every content hash written now. Earlier forms: `5:` (the same, but over the
/// HTML's white space byte for byte, so a feed that re-indented its HTML made its items look
/// edited; see [`fold_white_space`]), `4:` (as `5:`, but also over
/// the published and updated dates the feed gave, so a feed that re-stamps its dates at every
/// request made its items look edited at every poll; releases before tracking pixels were
/// left out wrote it with them counted), `3:` (as `4:`, but over the resolved dates: the fetch
/// time for an item without one), `2:` (as `3:`, counting every attribute of the HTML's tags)
/// and bare hex (over sanitized HTML, from releases that stored it); see [`HashForm`] and
/// [`content_hashes`].
pub const CONTENT_HASH_PREFIX: &str = "6:";

/// The prefix of content hashes over the HTML's white space as the feed wrote it.
const EXACT_WHITE_SPACE_PREFIX: &str = "5:";

/// The prefix of content hashes over the dates the feed gave.
const GIVEN_DATES_PREFIX: &str = "4:";

/// The prefix of content hashes over the resolved dates.
const RESOLVED_DATES_PREFIX: &str = "3:";

/// The prefix of content hashes that counted every attribute.
const ALL_ATTRIBUTES_PREFIX: &str = "2:";

/// `6:` and the xxh3-128 hex over title, link, HTML and authors: a change means the item was
/// edited. White space in the HTML is hashed as a reader sees it ([`fold_white_space`]): a
/// run of it counts as one space, and none at all next to a block element's tag or at either
/// end, except inside preformatted elements (`pre`); a feed that re-indents its HTML or
/// changes `a  b` to `a b` does not make its items look edited. (Titles are plain text with
/// their white space folded already.) The dates are not hashed: many CMSs stamp every item's `<pubDate>` (or `<updated>`)
/// with the time of the request, and a date alone is no edit a reader could see. The HTML is
/// hashed as far as a reader can see it (see [`for_each_shown_part`]): without comments,
/// without the content of the elements no output shows (`script`, `style`, `iframe` and the
/// like), without the attributes the sanitizer drops (`class`, `style`, `id`, `data-*`,
/// handlers) and without tracking pixels (see [`super::is_tracking_pixel`]), which no output
/// serves. A feed that varies a date, a nonce, a timing comment, a tracking attribute or a
/// pixel's URL per request does not make its items look edited.
pub fn content_hash(parts: &ContentParts<'_>) -> String {
    content_hashes(parts).current
}

/// An item's content hash in the current form and in the forms of `5:` and `4:` that earlier
/// releases wrote for it (see [`content_hashes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentHashes {
    /// [`content_hash`] (with the enclosures, when [`content_hashes_with_media`] was given
    /// any).
    pub current: String,
    /// When the enclosures hashed were not none, the current hash without them: what a row
    /// stored while the item had none holds (see [`content_hashes_with_media`]).
    pub without_media: Option<String>,
    /// Form `5:`, the HTML's white space hashed byte for byte (with the enclosures, when
    /// any): what releases from dates being left out until white space was folded wrote.
    pub exact_white_space: String,
    /// When the enclosures hashed were not none, the `5:` hash without them: what a row
    /// stored before enclosures were read holds.
    pub exact_white_space_without_media: Option<String>,
    /// Form `4:`, over the dates the feed gave (`parts.published` and `parts.updated`),
    /// tracking pixels left out: what releases from 7273dfa until dates were left out wrote
    /// (and earlier ones, for an item without a pixel).
    pub given_dates: String,
    /// Form `4:` with tracking pixels counted, when the HTML holds one: what releases before
    /// 7273dfa wrote for such an item.
    pub given_dates_with_pixels: Option<String>,
}

/// [`content_hash`], with the `5:` and `4:` hashes releases before it wrote for the same item,
/// so that a row holding one is recognised as unedited (see `normalize::is_earlier_hash_of`).
/// One walk over the HTML: `4:` hashed the same bytes as `5:`, then the dates, so its hash
/// goes on from the hasher's state after the `5:` digest (two short date fields and a digest
/// more per item; a second pass over the fields only when the HTML holds a pixel, as before);
/// the current form hashes the same parts with their white space folded: HTML with nothing
/// to fold (told by a few vectorised searches, see `may_fold`) takes the `5:` digest as it
/// is, other HTML is folded (one walk) and hashed once more.
pub fn content_hashes(parts: &ContentParts<'_>) -> ContentHashes {
    content_hashes_with_media(parts, &Media::default())
}

/// [`content_hashes`], the current form also over the item's enclosures: each one's URL
/// (without its tracking parameters, as it is served) and type, in order. An enclosure added,
/// removed or moved to another file is an edit a reader sees. Not hashed: lengths, durations
/// and titles (hosts recompute a length when ads are inserted, and a size alone is no edit),
/// and the lead image (CDN image URLs vary more than files do); they are stored with the
/// entry and renewed with its next edit. An item without enclosures hashes as before they
/// were read, so its stored rows keep their hashes; for one with them, the hash without them
/// is `without_media`, which recognises a row stored before (see
/// `normalize::is_earlier_hash_of`). The `4:` forms never had them.
pub fn content_hashes_with_media(parts: &ContentParts<'_>, media: &Media) -> ContentHashes {
    // The pixel-free parts, and every part once a pixel was met (a copy of the former then).
    let mut shown: Vec<&str> = Vec::new();
    let mut with_pixels: Option<Vec<&str>> = None;
    for_each_shown_part(parts.html, ShownAttributes::Kept, |part, pixel| {
        if pixel {
            with_pixels.get_or_insert_with(|| shown.clone()).push(part);
        } else {
            shown.push(part);
            if let Some(all) = &mut with_pixels {
                all.push(part);
            }
        }
    });
    // With and without the enclosures: the hash and the hasher to go on from.
    let with_and_without_media = |fields: &Xxh3| {
        let without_media = fields.digest128();
        let current = if media.enclosures.is_empty() {
            without_media
        } else {
            let mut with_media = fields.clone();
            hash_enclosures(&mut with_media, media);
            with_media.digest128()
        };
        (current, without_media)
    };
    // A digest reads the hasher's state without ending it: the `4:` form goes on from the
    // same state with the dates, no copy of it needed.
    let mut fields = hash_fields(parts, &shown);
    let (exact, exact_without_media) = with_and_without_media(&fields);
    let (current, without_media) = FOLDED.with(|buffers| {
        let (joined, folded) = &mut *buffers.borrow_mut();
        // Folded as one text: a part may end anywhere in it.
        let html: &[u8] = match shown.as_slice() {
            [one] => one.as_bytes(),
            parts => {
                joined.clear();
                for part in parts {
                    joined.extend_from_slice(part.as_bytes());
                }
                joined
            }
        };
        // Nothing to fold: the same bytes, whose hash is the `5:` one (the same fields,
        // however the HTML's bytes are split into parts). Most compact HTML is told so by a
        // few vectorised searches, without being folded.
        let unchanged = !may_fold(html) || {
            folded.clear();
            fold_white_space(html, folded);
            folded[..] == html[..]
        };
        if unchanged {
            (exact, exact_without_media)
        } else {
            with_and_without_media(&hash_fields_bytes(parts, &[folded]))
        }
    });
    hash_dates(&mut fields, parts, Dates::Given);
    let hex = |prefix: &str, hash: u128| format!("{prefix}{}", hex128(hash));
    ContentHashes {
        current: hex(CONTENT_HASH_PREFIX, current),
        without_media: (current != without_media).then(|| hex(CONTENT_HASH_PREFIX, without_media)),
        exact_white_space: hex(EXACT_WHITE_SPACE_PREFIX, exact),
        exact_white_space_without_media: (exact != exact_without_media)
            .then(|| hex(EXACT_WHITE_SPACE_PREFIX, exact_without_media)),
        given_dates: hex(GIVEN_DATES_PREFIX, fields.digest128()),
        given_dates_with_pixels: with_pixels
            .map(|all| hex(GIVEN_DATES_PREFIX, hash_content(parts, &all, Dates::Given))),
    }
}

/// The content hash in form `3:`, over the resolved dates (`parts` from
/// [`ContentParts::resolved`]), tracking pixels counted.
pub fn resolved_dates_content_hash(parts: &ContentParts<'_>) -> String {
    hash_in_form(
        parts,
        ShownAttributes::Kept,
        Dates::Resolved,
        RESOLVED_DATES_PREFIX,
    )
}

/// The content hash in form `2:`, which counted every attribute (`parts` from
/// [`ContentParts::resolved`]).
pub fn all_attributes_content_hash(parts: &ContentParts<'_>) -> String {
    hash_in_form(
        parts,
        ShownAttributes::All,
        Dates::Resolved,
        ALL_ATTRIBUTES_PREFIX,
    )
}

/// A hash in an earlier form: every shown part counted, tracking pixels too.
fn hash_in_form(
    parts: &ContentParts<'_>,
    attributes: ShownAttributes,
    dates: Dates,
    prefix: &str,
) -> String {
    let mut shown: Vec<&str> = Vec::new();
    for_each_shown_part(parts.html, attributes, |part, _| shown.push(part));
    format!("{prefix}{}", hex128(hash_content(parts, &shown, dates)))
}

/// The content hash releases before raw HTML storage wrote: the same fields, the whole
/// (sanitized) HTML, no prefix. `parts.html` must be the HTML as they stored it, and its
/// dates the resolved ones.
pub fn legacy_content_hash(parts: &ContentParts<'_>) -> String {
    hex128(hash_content(parts, &[parts.html], Dates::Resolved))
}

/// How an earlier form hashed the dates (the current one does not hash them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dates {
    /// Whether each was given, then its time (form `4:`).
    Given,
    /// The time alone, always present (earlier forms).
    Resolved,
}

/// The form of a stored content hash, which says how to recompute it for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashForm {
    /// [`content_hash`]'s (or no hash at all).
    Current,
    /// [`ContentHashes::exact_white_space`]' (or, without the enclosures,
    /// `exact_white_space_without_media`).
    ExactWhiteSpace,
    /// [`ContentHashes::given_dates`]' (or, with pixels counted, `given_dates_with_pixels`).
    GivenDates,
    /// [`resolved_dates_content_hash`]'s.
    ResolvedDates,
    /// [`all_attributes_content_hash`]'s.
    AllAttributes,
    /// [`legacy_content_hash`]'s, over sanitized HTML.
    SanitizedHtml,
}

impl HashForm {
    /// The form `hash` was written in.
    pub fn of(hash: &str) -> HashForm {
        if hash.is_empty() || hash.starts_with(CONTENT_HASH_PREFIX) {
            HashForm::Current
        } else if hash.starts_with(EXACT_WHITE_SPACE_PREFIX) {
            HashForm::ExactWhiteSpace
        } else if hash.starts_with(GIVEN_DATES_PREFIX) {
            HashForm::GivenDates
        } else if hash.starts_with(RESOLVED_DATES_PREFIX) {
            HashForm::ResolvedDates
        } else if hash.starts_with(ALL_ATTRIBUTES_PREFIX) {
            HashForm::AllAttributes
        } else {
            HashForm::SanitizedHtml
        }
    }
}

/// xxh3-128 over the fields and the dates, with `html` given as the parts to hash in order
/// (one field): the earlier forms.
fn hash_content(parts: &ContentParts<'_>, html: &[&str], dates: Dates) -> u128 {
    let mut hasher = hash_fields(parts, html);
    hash_dates(&mut hasher, parts, dates);
    hasher.digest128()
}

/// Adds one field to `hasher`, length-prefixed, so moving text between fields changes the hash.
fn hash_field(hasher: &mut Xxh3, pieces: &[&[u8]]) {
    let len: usize = pieces.iter().map(|p| p.len()).sum();
    hasher.update(&(len as u64).to_le_bytes());
    for piece in pieces {
        hasher.update(piece);
    }
}

/// A hasher fed with title, link, HTML (`html`, its parts in order) and authors: every form's
/// fields before the dates.
fn hash_fields(parts: &ContentParts<'_>, html: &[&str]) -> Xxh3 {
    let html: Vec<&[u8]> = html.iter().map(|p| p.as_bytes()).collect();
    hash_fields_bytes(parts, &html)
}

/// [`hash_fields`] with the HTML's parts as bytes.
fn hash_fields_bytes(parts: &ContentParts<'_>, html: &[&[u8]]) -> Xxh3 {
    let mut hasher = Xxh3::new();
    hash_field(&mut hasher, &[parts.title.as_bytes()]);
    hash_field(&mut hasher, &[parts.link.unwrap_or("").as_bytes()]);
    hash_field(&mut hasher, html);
    hash_field(&mut hasher, &[&(parts.authors.len() as u64).to_le_bytes()]);
    for author in parts.authors {
        hash_field(&mut hasher, &[author.as_bytes()]);
    }
    hasher
}

thread_local! {
    /// The HTML's shown parts joined, and with their white space folded, for the hash:
    /// buffers per thread, reused item after item.
    static FOLDED: std::cell::RefCell<(Vec<u8>, Vec<u8>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// HTML's white space: space, tab, line feed, form feed, carriage return.
const fn is_html_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0c' | b'\r')
}

/// Whether [`fold_white_space`] could change `html`: it holds white space other than the
/// space, or a space at either end, next to another, or next to a `<` or `>` (where one is
/// dropped: at a block element's tag, before a tag's `>`). When not, folding would give the
/// same bytes; this costs a few vectorised searches rather than a walk over every byte.
fn may_fold(html: &[u8]) -> bool {
    html.first() == Some(&b' ')
        || html.last() == Some(&b' ')
        || memchr::memchr3(b'\t', b'\n', b'\r', html).is_some()
        || memchr::memchr(b'\x0c', html).is_some()
        || ["  ", " <", "> ", " >"]
            .iter()
            .any(|pair| memchr::memmem::find(html, pair.as_bytes()).is_some())
}

/// Whether a byte ends a run of text [`fold_white_space`] copies as it is: `<` or white space.
static ENDS_TEXT: [bool; 256] = {
    let mut ends = [false; 256];
    let mut i = 0;
    while i < 256 {
        ends[i] = i as u8 == b'<' || is_html_space(i as u8);
        i += 1;
    }
    ends
};

/// Whether white space next to this element's tags shows as nothing (CSS collapses it at
/// the edges of a block: line breaks before and after a paragraph, indentation between list
/// items); `name` lower-case.
fn is_block(name: &[u8]) -> bool {
    matches!(
        name,
        b"address"
            | b"article"
            | b"aside"
            | b"blockquote"
            | b"body"
            | b"br"
            | b"caption"
            | b"center"
            | b"col"
            | b"colgroup"
            | b"dd"
            | b"details"
            | b"dialog"
            | b"dir"
            | b"div"
            | b"dl"
            | b"dt"
            | b"fieldset"
            | b"figcaption"
            | b"figure"
            | b"footer"
            | b"form"
            | b"h1"
            | b"h2"
            | b"h3"
            | b"h4"
            | b"h5"
            | b"h6"
            | b"head"
            | b"header"
            | b"hgroup"
            | b"hr"
            | b"html"
            | b"legend"
            | b"li"
            | b"listing"
            | b"main"
            | b"menu"
            | b"nav"
            | b"ol"
            | b"optgroup"
            | b"option"
            | b"p"
            | b"plaintext"
            | b"pre"
            | b"section"
            | b"summary"
            | b"table"
            | b"tbody"
            | b"td"
            | b"tfoot"
            | b"th"
            | b"thead"
            | b"tr"
            | b"ul"
            | b"xmp"
    )
}

/// Whether white space in this element's content shows as written; `name` lower-case.
fn is_preformatted(name: &[u8]) -> bool {
    matches!(name, b"pre" | b"listing" | b"plaintext" | b"xmp")
}

/// Where [`fold_white_space`] is in the HTML.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Text,
    /// In a tag; in a quoted attribute value when `quote` is not 0.
    Tag {
        quote: u8,
    },
    /// In a preformatted element's content, until its end tag.
    Preformatted,
}

/// Appends `b` (the HTML's shown parts, joined) to `out` with white space as a reader
/// sees it: each run of it is one space, and none at either end of the HTML or next to the
/// tag of a block element ([`is_block`]: `<p>`, `</li>`, `<br>`...); in a tag, runs between
/// attributes are one space and none before its `>`, while attribute values are kept as
/// written. Inside a preformatted element (`pre`, [`is_preformatted`]) everything is kept as
/// written up to its end tag. So HTML re-indented, wrapped differently, or with a trailing
/// newline, gives the same bytes. Character references (`&nbsp;`) are no white space here,
/// as they are none to a reader.
fn fold_white_space(b: &[u8], out: &mut Vec<u8>) {
    let mut place = Place::Text;
    // A run of white space met and not yet written; whether the last thing written was a
    // block element's tag (white space after it shows as nothing).
    let (mut space, mut after_block) = (false, false);
    // The preformatted element whose end tag ends `Place::Preformatted`, lower-case.
    let mut open: [u8; 9] = [0; 9];
    let mut open_len = 0;
    // Whether the tag being read is a block element's, and a preformatted one's start tag.
    let (mut block_tag, mut preformatted_tag) = (false, false);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match place {
            Place::Text => {
                // A run of text is written as it is: up to a `<`, or white space other
                // than one space between two of its characters (the most part of text).
                let mut end = i;
                while let Some(&c) = b.get(end) {
                    if ENDS_TEXT[usize::from(c)] {
                        let lone = c == b' '
                            && end > i
                            && b.get(end + 1).is_some_and(|&d| !ENDS_TEXT[usize::from(d)]);
                        if !lone {
                            break;
                        }
                        end += 1;
                    }
                    end += 1;
                }
                if end > i {
                    if space && !after_block && !out.is_empty() {
                        out.push(b' ');
                    }
                    (space, after_block) = (false, false);
                    out.extend_from_slice(&b[i..end]);
                    i = end;
                    continue;
                }
                if is_html_space(c) {
                    space = true;
                    i += 1;
                    continue;
                }
                if c == b'<' {
                    let closing = b.get(i + 1) == Some(&b'/');
                    let start = i + 1 + usize::from(closing);
                    let len = b[start..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .count();
                    let tag = (len > 0 && b[start].is_ascii_alphabetic())
                        || (!closing && matches!(b.get(i + 1), Some(b'!' | b'?')));
                    if tag {
                        let mut name = [0u8; 10];
                        let named = len <= name.len();
                        if named {
                            for (n, c) in name.iter_mut().zip(&b[start..start + len]) {
                                *n = c.to_ascii_lowercase();
                            }
                        }
                        let name = &name[..if named { len } else { 0 }];
                        block_tag = is_block(name);
                        preformatted_tag = !closing && is_preformatted(name);
                        if preformatted_tag {
                            open[..name.len()].copy_from_slice(name);
                            open_len = name.len();
                        }
                        if block_tag {
                            space = false;
                        }
                        place = Place::Tag { quote: 0 };
                    }
                }
                if space && !after_block && !out.is_empty() {
                    out.push(b' ');
                }
                space = false;
                after_block = false;
                out.push(c);
            }
            Place::Tag { quote } => {
                if quote != 0 {
                    // A value is kept as written, to its closing quote.
                    let Some(close) = memchr::memchr(quote, &b[i..]).map(|p| i + p) else {
                        out.extend_from_slice(&b[i..]);
                        break;
                    };
                    out.extend_from_slice(&b[i..=close]);
                    place = Place::Tag { quote: 0 };
                    i = close;
                } else if is_html_space(c) {
                    space = true;
                } else {
                    if space && c != b'>' {
                        out.push(b' ');
                    }
                    space = false;
                    out.push(c);
                    if matches!(c, b'"' | b'\'') {
                        place = Place::Tag { quote: c };
                    } else if c == b'>' {
                        after_block = block_tag;
                        place = if preformatted_tag {
                            Place::Preformatted
                        } else {
                            Place::Text
                        };
                    }
                }
            }
            Place::Preformatted => {
                let Some(lt) = memchr::memchr(b'<', &b[i..]).map(|p| i + p) else {
                    out.extend_from_slice(&b[i..]);
                    break;
                };
                out.extend_from_slice(&b[i..lt]);
                i = lt;
                let name = &open[..open_len];
                let ends = b.get(i + 1) == Some(&b'/')
                    && b.len() >= i + 2 + name.len()
                    && b[i + 2..i + 2 + name.len()].eq_ignore_ascii_case(name);
                if ends {
                    // Its end tag: read as any tag (a block's: white space after it
                    // shows as nothing).
                    place = Place::Text;
                    continue;
                }
                out.push(b'<');
            }
        }
        i += 1;
    }
}

/// Adds the enclosures (see [`content_hashes_with_media`]) after every other field: a marker,
/// their count, then each one's URL without tracking parameters and its type.
fn hash_enclosures(hasher: &mut Xxh3, media: &Media) {
    hash_field(hasher, &[b"enclosures"]);
    hash_field(hasher, &[&(media.enclosures.len() as u64).to_le_bytes()]);
    for enclosure in &media.enclosures {
        hash_field(hasher, &[without_tracking(&enclosure.url).as_bytes()]);
        hash_field(
            hasher,
            &[enclosure.mime_type.as_deref().unwrap_or("").as_bytes()],
        );
    }
}

/// Adds the published and updated dates, as the earlier form `dates` hashed them.
fn hash_dates(hasher: &mut Xxh3, parts: &ContentParts<'_>, dates: Dates) {
    for date in [parts.published, parts.updated] {
        let micros = date.map_or(0, |d| d.timestamp_micros()).to_le_bytes();
        match (dates, date) {
            (Dates::Resolved, _) => hash_field(hasher, &[&micros]),
            (Dates::Given, Some(_)) => hash_field(hasher, &[b"d", &micros]),
            (Dates::Given, None) => hash_field(hasher, &[]),
        }
    }
}

fn hash_parts(parts: &[&[u8]]) -> u128 {
    let mut hasher = Xxh3::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b"\n");
        }
        hasher.update(part);
    }
    hasher.digest128()
}

fn hex128(hash: u128) -> String {
    format!("{hash:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::html_to_text;
    use proptest::prelude::*;

    fn input<'a>(
        guid: Option<&'a str>,
        url: Option<&'a str>,
        title: &'a str,
        date: Option<DateTime<Utc>>,
        text: &'a str,
    ) -> IdentityInput<'a> {
        IdentityInput {
            guid,
            canonical_url: url,
            anchor: None,
            title,
            feed_date: date,
            text,
        }
    }

    #[test]
    fn identity_chain_takes_the_first_usable_key_with_its_prefix() {
        let date = DateTime::from_timestamp(1_795_773_600, 0);
        let url = Some("https://example.org/a");
        let cases = [
            (
                input(Some(" tag:x,2026:1 "), url, "T", date, "b"),
                Some("guid:tag:x,2026:1"),
            ),
            (
                input(Some("   "), url, "T", date, "b"),
                Some("url:https://example.org/a"),
            ),
            (
                input(None, url, "T", date, "b"),
                Some("url:https://example.org/a"),
            ),
            (input(None, None, "T", date, "b"), Some("title:")),
            (input(None, None, "T", None, "b"), Some("text:")),
            (input(None, None, "", date, "body only"), Some("text:")),
            (input(None, None, "", None, "body only"), Some("text:")),
            (input(None, None, " ", date, " ... "), None),
            (input(None, None, "", None, ""), None),
        ];
        for (case, expected_prefix) in cases {
            let id = identity(&case);
            match expected_prefix {
                Some(prefix) => assert!(
                    id.as_deref().is_some_and(|i| i.starts_with(prefix)),
                    "{case:?} gave {id:?}, wanted prefix {prefix}"
                ),
                None => assert_eq!(id, None, "{case:?}"),
            }
        }
    }

    #[test]
    fn title_identity_depends_on_the_date_and_ignores_markup_differences() {
        let d1 = DateTime::from_timestamp(1_795_773_600, 0);
        let d2 = DateTime::from_timestamp(1_795_860_000, 0);
        let a = identity(&input(None, None, "EU Tariffs", d1, "x"));
        let b = identity(&input(None, None, "eu tariffs!", d1, "y"));
        let c = identity(&input(None, None, "EU Tariffs", d2, "x"));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn very_long_guids_are_hashed() {
        let long = "g".repeat(2_000);
        let id = identity(&input(Some(&long), None, "", None, "")).unwrap();
        assert!(id.starts_with("guid:xxh3:"));
        assert_eq!(id.len(), "guid:xxh3:".len() + 32);
    }

    #[test]
    fn fingerprint_is_equal_across_markup_variants_of_the_same_text() {
        let variants = [
            "<p>The EU raised tariffs on steel.</p><p>Talks resume Monday.</p>",
            "The EU raised tariffs on steel. Talks resume Monday.",
            "<div>The <b>EU</b> raised tariffs on steel.<br>Talks resume&nbsp;Monday.</div>",
            "  The EU raised tariffs   on steel.\n\nTalks resume Monday!  ",
        ];
        let prints: Vec<_> = variants
            .iter()
            .map(|v| fingerprint("EU tariffs", &html_to_text(v)))
            .collect();
        assert!(prints.iter().all(|p| p == &prints[0]), "{prints:?}");
        assert_eq!(prints[0].len(), 32);
    }

    #[test]
    fn fingerprint_differs_for_different_texts_or_titles() {
        let base = fingerprint("EU tariffs", "Steel duties rise.");
        assert_ne!(base, fingerprint("EU tariffs", "Steel duties fall."));
        assert_ne!(base, fingerprint("US tariffs", "Steel duties rise."));
        // The separator keeps title and text apart.
        assert_ne!(fingerprint("a b", "c"), fingerprint("a", "b c"));
    }

    #[test]
    fn the_hash_with_pixels_is_the_form_that_counted_them_and_the_hash_the_one_without() {
        let published = DateTime::from_timestamp(1_795_773_600, 0);
        let authors = vec!["Desk".to_owned()];
        let parts = |html| ContentParts {
            title: "T",
            link: Some("https://example.org/a"),
            html,
            authors: &authors,
            published,
            updated: None,
        };
        let text = "<p class=\"x\">Duties rise.</p>";
        let pixel = "<img class=\"tp\" src=\"https://px.example/t.gif?r=8f3a\" width=1 height=1>";
        let with_pixel = format!("{text}{pixel}<p>More.</p>");
        let without = format!("{text}<p>More.</p>");
        let hashes = content_hashes(&parts(&with_pixel));
        let counting = |html| hash_in_form(&parts(html), ShownAttributes::Kept, Dates::Given, "4:");
        assert_eq!(hashes.given_dates, counting(&without));
        assert_eq!(hashes.given_dates_with_pixels, Some(counting(&with_pixel)));
        assert_eq!(
            content_hashes(&parts(&without)),
            ContentHashes {
                given_dates_with_pixels: None,
                ..hashes
            }
        );
    }

    /// The parts of a dated item, and variants of it that differ in one field each.
    fn parts_and_variants<'a>(
        authors: &'a [String],
        other_authors: &'a [String],
    ) -> (
        ContentParts<'a>,
        Vec<ContentParts<'a>>,
        Vec<ContentParts<'a>>,
    ) {
        let published = DateTime::from_timestamp(1_795_773_600, 0).unwrap();
        let base = ContentParts {
            title: "T",
            link: Some("https://example.org/a"),
            html: "<p>x</p>",
            authors,
            published: Some(published),
            updated: Some(published),
        };
        let later = published + chrono::Duration::seconds(1);
        let content = vec![
            ContentParts {
                title: "T2",
                ..base
            },
            ContentParts { link: None, ..base },
            ContentParts {
                html: "<p>y</p>",
                ..base
            },
            ContentParts {
                authors: other_authors,
                ..base
            },
        ];
        let dates = vec![
            ContentParts {
                published: Some(later),
                ..base
            },
            ContentParts {
                updated: Some(later),
                ..base
            },
            ContentParts {
                published: None,
                ..base
            },
            ContentParts {
                updated: None,
                ..base
            },
        ];
        (base, content, dates)
    }

    #[test]
    fn content_hash_changes_with_every_stored_field_but_not_with_the_dates() {
        let (authors, other_authors) = (vec!["Desk".to_owned()], vec!["Other".to_owned()]);
        let (base, content, dates) = parts_and_variants(&authors, &other_authors);
        let h = content_hash(&base);
        assert!(h.starts_with(CONTENT_HASH_PREFIX), "{h}");
        assert_eq!(h, content_hash(&base));
        for v in content {
            assert_ne!(h, content_hash(&v), "{v:?}");
        }
        for v in dates {
            assert_eq!(h, content_hash(&v), "{v:?}");
        }
    }

    #[test]
    fn the_given_dates_form_is_the_one_that_hashed_every_field_and_the_dates_the_feed_gave() {
        let (authors, other_authors) = (vec!["Desk".to_owned()], vec!["Other".to_owned()]);
        let (base, content, dates) = parts_and_variants(&authors, &other_authors);
        let given = |parts: &ContentParts<'_>| content_hashes(parts).given_dates;
        let h = given(&base);
        assert_eq!(
            h,
            hash_in_form(&base, ShownAttributes::Kept, Dates::Given, "4:")
        );
        for v in content.iter().chain(&dates) {
            assert_ne!(h, given(v), "{v:?}");
        }
    }

    fn folded(html: &str) -> String {
        let mut out = Vec::new();
        fold_white_space(html.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn white_space_is_folded_as_a_reader_sees_it() {
        let cases = [
            ("<p>a  b</p>\n", "<p>a b</p>"),
            ("\n\t <p>a\n\t\tb</p>\n\n", "<p>a b</p>"),
            // None next to a block's tags, one beside inline ones and in text.
            (
                "<ul>\n  <li>One</li>\n  <li>Two</li>\n</ul>",
                "<ul><li>One</li><li>Two</li></ul>",
            ),
            (
                "<p>\n  Duties <b>rise</b>  <i>now</i> .\n</p>",
                "<p>Duties <b>rise</b> <i>now</i> .</p>",
            ),
            ("a<br>\n b <br/> c", "a<br>b<br/>c"),
            ("<p>x</p>  text  <div>y</div>", "<p>x</p>text<div>y</div>"),
            // In tags: runs between attributes are one space, none before `>`; values kept.
            (
                r#"<a
   href="/a"
   title="x  y" >z</a>"#,
                r#"<a href="/a" title="x  y">z</a>"#,
            ),
            (
                r#"<img src='/a b.png'   alt="c"  >"#,
                r#"<img src='/a b.png' alt="c">"#,
            ),
            // Preformatted content is kept as written, to its end tag.
            (
                "<pre>\n  x  = 1\n</pre>\n<p>a  b</p>",
                "<pre>\n  x  = 1\n</pre><p>a b</p>",
            ),
            ("<PRE>a  <b>b</b>  c</Pre>  d", "<PRE>a  <b>b</b>  c</Pre>d"),
            // Character references and text that is no tag are no white space or tags.
            ("a&nbsp; &nbsp;b", "a&nbsp; &nbsp;b"),
            ("1 <  2 and\n<3", "1 < 2 and <3"),
            ("", ""),
            ("  \n ", ""),
        ];
        for (html, expected) in cases {
            assert_eq!(folded(html), expected, "{html:?}");
        }
    }

    #[test]
    fn white_space_alone_leaves_the_content_hash_and_the_hash_before_it_is_recognisable() {
        let authors = vec!["Desk".to_owned()];
        let hashes = |html| {
            content_hashes(&ContentParts {
                title: "T",
                link: Some("https://example.org/a"),
                html,
                authors: &authors,
                published: None,
                updated: None,
            })
        };
        let base = hashes("<p>Duties rise.</p><p>Talks <b>resume</b>.</p>");
        for reindented in [
            // One byte for one: a line break for a space.
            "<p>Duties\nrise.</p><p>Talks <b>resume</b>.</p>",
            "<p>Duties rise.</p>\n<p>Talks <b>resume</b>.</p>\n",
            "\n  <p>\n    Duties  rise.\n  </p>\n  <p>Talks\n<b>resume</b>.</p>",
        ] {
            let other = hashes(reindented);
            assert_eq!(other.current, base.current, "{reindented:?}");
            assert_ne!(other.exact_white_space, base.exact_white_space);
        }
        for edited in [
            "<p>Duties fall.</p><p>Talks <b>resume</b>.</p>",
            "<p>Duties rise.</p><p>Talks<b>resume</b>.</p>",
            "<p>Duties rise.</p><pre>Talks <b>resume</b>.</pre>",
        ] {
            assert_ne!(hashes(edited).current, base.current, "{edited:?}");
        }
        assert!(base.current.starts_with("6:") && base.exact_white_space.starts_with("5:"));
        // Nothing to fold: the same bytes hashed, under each prefix.
        assert_eq!(base.current[2..], base.exact_white_space[2..]);
        let pre = |html| hashes(html).current;
        assert_ne!(pre("<pre>a  b</pre>"), pre("<pre>a b</pre>"));
    }

    proptest! {
        #[test]
        fn html_the_quick_check_passes_is_left_as_it_is_by_folding(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "<p>", "</p>", " ", "  ", "\n", "a", "bc", "<b>", "</b>", "<pre>", "</pre>",
                    "<br/>", "<a href=\"x  y\">", "<li >", "'", "\"", "<", ">", "&nbsp;", "=",
                ]),
                0..30,
            ),
        ) {
            let html: String = pieces.concat();
            let mut out = Vec::new();
            fold_white_space(html.as_bytes(), &mut out);
            prop_assert!(may_fold(html.as_bytes()) || out == html.as_bytes(), "{:?}", html);
        }

        #[test]
        fn fingerprint_is_stable_under_whitespace_changes(
            words in proptest::collection::vec("[a-zA-Z0-9éü]{1,8}", 1..12),
            seps in proptest::collection::vec("[ \t\n]{1,3}", 12),
        ) {
            let single = words.join(" ");
            let mut spaced = String::from("  ");
            for (w, s) in words.iter().zip(&seps) {
                spaced.push_str(w);
                spaced.push_str(s);
            }
            prop_assert_eq!(fingerprint("t", &single), fingerprint(" t ", &spaced));
        }
    }

    #[test]
    fn fingerprints_of_a_known_text_do_not_change() {
        // Stored fingerprints are exact-duplicate keys: a change in how they are computed
        // would leave every stored story unreachable by its copies' `fp:` key.
        assert_eq!(
            fingerprint("U.S. Tariffs, EU quotas!", "Zölle — trade\tpolicy…  \n"),
            "e02801485348cf8e46625377b4bc3152"
        );
    }
}
