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
        return Some(format!("url:{url}"));
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

/// What starts every content hash written now. Earlier forms: `4:` (the same, but also over
/// the published and updated dates the feed gave, so a feed that re-stamps its dates at every
/// request made its items look edited at every poll; releases before tracking pixels were
/// left out wrote it with them counted), `3:` (as `4:`, but over the resolved dates: the fetch
/// time for an item without one), `2:` (as `3:`, counting every attribute of the HTML's tags)
/// and bare hex (over sanitized HTML, from releases that stored it); see [`HashForm`] and
/// [`content_hashes`].
pub const CONTENT_HASH_PREFIX: &str = "5:";

/// The prefix of content hashes over the dates the feed gave.
const GIVEN_DATES_PREFIX: &str = "4:";

/// The prefix of content hashes over the resolved dates.
const RESOLVED_DATES_PREFIX: &str = "3:";

/// The prefix of content hashes that counted every attribute.
const ALL_ATTRIBUTES_PREFIX: &str = "2:";

/// `5:` and the xxh3-128 hex over title, link, HTML and authors: a change means the item was
/// edited. The dates are not hashed: many CMSs stamp every item's `<pubDate>` (or `<updated>`)
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

/// An item's content hash in the current form and in the forms of `4:` that earlier releases
/// wrote for it (see [`content_hashes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentHashes {
    /// [`content_hash`] (with the enclosures, when [`content_hashes_with_media`] was given
    /// any).
    pub current: String,
    /// When the enclosures hashed were not none, the `5:` hash without them: what a row
    /// stored before enclosures were read holds (see [`content_hashes_with_media`]).
    pub without_media: Option<String>,
    /// Form `4:`, over the dates the feed gave (`parts.published` and `parts.updated`),
    /// tracking pixels left out: what releases from 7273dfa until dates were left out wrote
    /// (and earlier ones, for an item without a pixel).
    pub given_dates: String,
    /// Form `4:` with tracking pixels counted, when the HTML holds one: what releases before
    /// 7273dfa wrote for such an item.
    pub given_dates_with_pixels: Option<String>,
}

/// [`content_hash`], with the `4:` hashes releases before it wrote for the same item, so that
/// a row holding one is recognised as unedited (see `normalize::is_earlier_hash_of`). One
/// walk over the HTML, and the fields are hashed once: `4:` hashed the same bytes as `5:`,
/// then the dates, so its hash goes on from the hasher's state after the `5:` digest (two
/// short date fields and a digest more per item; a second pass over the fields only when the
/// HTML holds a pixel, as before).
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
    // A digest reads the hasher's state without ending it: the `4:` form goes on from the
    // same state with the dates, no copy of it needed.
    let mut fields = hash_fields(parts, &shown);
    let without_media = fields.digest128();
    let current = if media.enclosures.is_empty() {
        without_media
    } else {
        let mut with_media = fields.clone();
        hash_enclosures(&mut with_media, media);
        with_media.digest128()
    };
    hash_dates(&mut fields, parts, Dates::Given);
    let hex = |prefix: &str, hash: u128| format!("{prefix}{}", hex128(hash));
    ContentHashes {
        current: hex(CONTENT_HASH_PREFIX, current),
        without_media: (current != without_media).then(|| hex(CONTENT_HASH_PREFIX, without_media)),
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
    let mut hasher = Xxh3::new();
    hash_field(&mut hasher, &[parts.title.as_bytes()]);
    hash_field(&mut hasher, &[parts.link.unwrap_or("").as_bytes()]);
    let html: Vec<&[u8]> = html.iter().map(|p| p.as_bytes()).collect();
    hash_field(&mut hasher, &html);
    hash_field(&mut hasher, &[&(parts.authors.len() as u64).to_le_bytes()]);
    for author in parts.authors {
        hash_field(&mut hasher, &[author.as_bytes()]);
    }
    hasher
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

    proptest! {
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
