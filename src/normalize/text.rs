//! Plain text from HTML, and the normalized form of text used for matching.
//!
//! [`html_to_text`] is a single-pass state machine rather than an HTML5 parser: it runs on every
//! title and body of every fetch, so it must be fast, and for matching we only need the words in
//! order with block boundaries kept. It never fails: stray `<`, unterminated tags, comments and
//! CDATA sections are all read as a browser would, or as literal text when they are not markup.

use std::borrow::Cow;

use unicode_normalization::char::is_combining_mark;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Elements whose content is not text and is dropped with them, read as raw text up to their
/// end tag (as HTML reads `script`, `style`, `iframe` and `textarea`).
const DROPPED_CONTENT: [&str; 6] = [
    "script", "style", "noscript", "template", "iframe", "textarea",
];

/// Elements the output sanitizer drops with their content (`normalize::sanitize`) that hold
/// markup and may nest: an inline chart's `svg` (its labels and `<title>`s), a formula, a
/// newsletter's sign-up `form` with its `button` and `select` options, an `object`'s fallback.
/// No reader sees their text, so the plain text (search, scores, matching) leaves it out too.
const DROPPED_NESTED: [&str; 6] = ["svg", "math", "form", "select", "button", "object"];

/// Invisible characters dropped without leaving a gap: soft hyphen, zero-width space, BOM, and
/// the bidirectional embeddings, overrides and isolates (see [`is_bidi_control`]).
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}' | '\u{feff}') || is_bidi_control(c)
}

/// U+202A–U+202E (embeddings and overrides) and U+2066–U+2069 (isolates): in a title or a name
/// they make a reader show text in another order than it is (`\u{202e}gnp.exe` reads as
/// "exe.png"). Removed, as most feed readers do; the marks U+200E/U+200F, which cannot
/// reorder text, stay.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// What separates two runs of text: nothing, a space, or a line break (strongest wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Gap {
    None,
    Space,
    Line,
}

/// Accumulates text with folded whitespace: runs of whitespace become one space, block
/// boundaries one newline, and nothing leads or trails.
struct TextWriter {
    out: String,
    gap: Gap,
    scratch: String,
}

impl TextWriter {
    fn new(capacity: usize) -> Self {
        TextWriter {
            out: String::with_capacity(capacity),
            gap: Gap::None,
            scratch: String::new(),
        }
    }

    fn gap(&mut self, gap: Gap) {
        self.gap = self.gap.max(gap);
    }

    /// Appends literal text, folding whitespace and dropping control characters.
    fn text(&mut self, s: &str) {
        if s.is_ascii() {
            self.ascii_text(s);
        } else {
            self.unicode_text(s);
        }
    }

    /// [`TextWriter::text`] for any text, char by char.
    fn unicode_text(&mut self, s: &str) {
        for (i, word) in s
            .split(|c: char| c.is_whitespace() || c.is_control())
            .enumerate()
        {
            if i > 0 {
                self.gap(Gap::Space);
            }
            let word: Cow<'_, str> = if word.contains(is_invisible) {
                Cow::Owned(word.chars().filter(|&c| !is_invisible(c)).collect())
            } else {
                Cow::Borrowed(word)
            };
            if word.is_empty() {
                continue;
            }
            self.word(&word);
        }
    }

    /// [`TextWriter::text`] for ASCII text, on bytes: the separators are the bytes whose char
    /// is whitespace or a control (0x00–0x20 and 0x7F), and no invisible character can occur.
    fn ascii_text(&mut self, s: &str) {
        let b = s.as_bytes();
        let separator = |c: u8| c <= b' ' || c == 0x7f;
        let mut i = 0;
        while i < b.len() {
            if separator(b[i]) {
                self.gap(Gap::Space);
                i += 1;
                continue;
            }
            // Words joined by single spaces come out as they are: copy them as one run.
            let start = i;
            loop {
                while i < b.len() && !separator(b[i]) {
                    i += 1;
                }
                if b.get(i) == Some(&b' ') && b.get(i + 1).is_some_and(|&c| !separator(c)) {
                    i += 1;
                } else {
                    break;
                }
            }
            self.word(&s[start..i]);
        }
    }

    /// Appends a non-empty word (or words joined by single spaces) after the pending gap.
    fn word(&mut self, word: &str) {
        if !self.out.is_empty() {
            match self.gap {
                Gap::None => {}
                Gap::Space => self.out.push(' '),
                Gap::Line => self.out.push('\n'),
            }
        }
        self.gap = Gap::None;
        self.out.push_str(word);
    }

    /// Appends text that may contain character references, decoding them once.
    fn text_with_entities(&mut self, s: &str) {
        if !s.contains('&') {
            self.text(s);
            return;
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        html_escape::decode_html_entities_to_string(s, &mut scratch);
        self.text(&scratch);
        self.scratch = scratch;
    }

    fn finish(self) -> String {
        nfc(self.out)
    }
}

/// Unicode NFC, without re-allocating text that is already normalized (the common case).
fn nfc(s: String) -> String {
    if s.is_ascii() || is_nfc_quick(s.chars()) == IsNormalized::Yes {
        s
    } else {
        s.nfc().collect()
    }
}

/// Plain text of an HTML fragment: tags removed, the content of the elements no output shows
/// dropped ([`DROPPED_CONTENT`], [`DROPPED_NESTED`]), block elements turned into line breaks (table cells into spaces),
/// character references decoded once, whitespace folded, Unicode NFC.
pub fn html_to_text(html: &str) -> String {
    let mut w = TextWriter::new(html.len());
    let b = html.as_bytes();
    let n = b.len();
    let mut i = 0;
    while i < n {
        let Some(lt) = memchr(b'<', &b[i..]).map(|p| i + p) else {
            w.text_with_entities(&html[i..]);
            break;
        };
        if lt > i {
            w.text_with_entities(&html[i..lt]);
        }
        i = lt;
        let rest = &html[i..];
        if rest.starts_with("<!--") {
            i = find_from(html, i + 4, "-->").map_or(n, |p| p + 3);
            continue;
        }
        if rest.starts_with("<![CDATA[") {
            let end = find_from(html, i + 9, "]]>").unwrap_or(n);
            w.text(&html[i + 9..end]);
            i = (end + 3).min(n);
            continue;
        }
        if rest.starts_with("<!") || rest.starts_with("<?") {
            i = memchr(b'>', &b[i..]).map_or(n, |p| i + p + 1);
            continue;
        }
        let closing = b.get(i + 1) == Some(&b'/');
        let name_start = i + 1 + usize::from(closing);
        if !b.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            // Not a tag ("a < b", "<3"): the '<' is text.
            w.text("<");
            i += 1;
            continue;
        }
        let name_end = name_start
            + b[name_start..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-' || **c == b':')
                .count();
        let Some(tag_end) = find_tag_end(b, name_end) else {
            // No '>' anywhere after it: not a tag but text such as "x <y".
            w.text_with_entities(&html[i..]);
            break;
        };
        let name = &html[name_start..name_end];
        i = tag_end + 1;
        let self_closing = tag_end > 0 && b[tag_end - 1] == b'/';
        if !closing && !self_closing && DROPPED_CONTENT.iter().any(|t| t.eq_ignore_ascii_case(name))
        {
            i = find_close_tag(html, i, name).unwrap_or(n);
            w.gap(Gap::Space);
            continue;
        }
        if !closing && !self_closing && DROPPED_NESTED.iter().any(|t| t.eq_ignore_ascii_case(name))
        {
            i = find_nested_close_tag(html, i, name).unwrap_or(n);
            w.gap(Gap::Space);
            continue;
        }
        w.gap(tag_gap(name));
    }
    w.finish()
}

/// Elements whose content no output shows (the sanitizer drops them whole) and that HTML reads
/// as raw text up to their end tag, so skipping to it is what a browser does too.
const HIDDEN_CONTENT: [&str; 6] = [
    "script", "style", "noscript", "template", "iframe", "textarea",
];

/// Which attributes of a start tag [`for_each_shown_part`] passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShownAttributes {
    /// Every attribute (the content hash's form `2:`).
    All,
    /// Only those the output sanitizer keeps (`class`, `style`, `id`, `data-*`, event
    /// handlers and the rest never reach a reader): the current form.
    Kept,
}

/// Calls `each(part, pixel)` with the parts of `html` outside comments and outside
/// [`HIDDEN_CONTENT`] elements (their tags included), in order: what the content hash covers.
/// With [`ShownAttributes::Kept`], a start tag's attributes that the sanitizer drops are left
/// out too, each with the whitespace before it, so HTML without such attributes gives the same
/// bytes either way; the parts of a tracking pixel's tag (see [`is_tracking_pixel`]) then come
/// with `pixel` set, the others without: the current hash leaves them out, the forms before it
/// did not (with [`ShownAttributes::All`], the form `2:`, `pixel` is never set). An unclosed
/// comment or element hides the rest, as in [`html_to_text`].
pub(crate) fn for_each_shown_part<'a>(
    html: &'a str,
    attributes: ShownAttributes,
    mut each: impl FnMut(&'a str, bool),
) {
    let b = html.as_bytes();
    let n = b.len();
    let (mut start, mut i) = (0, 0);
    while let Some(lt) = memchr(b'<', &b[i..]).map(|p| i + p) {
        let rest = &html[lt..];
        let hidden_end = if rest.starts_with("<!--") {
            Some(find_from(html, lt + 4, "-->").map_or(n, |p| p + 3))
        } else {
            let name_end = lt
                + 1
                + b[lt + 1..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .count();
            let name = &html[lt + 1..name_end];
            if HIDDEN_CONTENT.iter().any(|t| t.eq_ignore_ascii_case(name)) {
                let open_end = find_tag_end(b, name_end).map_or(n, |p| p + 1);
                Some(find_close_tag(html, open_end, name).unwrap_or(n))
            } else if attributes == ShownAttributes::Kept
                && b.get(lt + 1).is_some_and(u8::is_ascii_alphabetic)
            {
                // A start tag: its attributes are read in place of the '<' search. Only an
                // `<img>` can be a pixel, and only it is read twice.
                let pixel = is_image(name) && {
                    let end = for_each_attribute(html, name_end, |_, _, _, _| {});
                    is_tracking_pixel(&html[lt..end])
                };
                if pixel && lt > start {
                    each(&html[start..lt], false);
                    start = lt;
                }
                i = for_each_dropped_attribute(html, name, name_end, |from, to| {
                    if from > start {
                        each(&html[start..from], pixel);
                    }
                    start = to;
                });
                if pixel {
                    if i > start {
                        each(&html[start..i], true);
                    }
                    start = i;
                }
                if i >= n {
                    break;
                }
                continue;
            } else {
                None
            }
        };
        match hidden_end {
            Some(end) => {
                if lt > start {
                    each(&html[start..lt], false);
                }
                start = end;
                i = end;
            }
            None => i = lt + 1,
        }
        if i >= n {
            break;
        }
    }
    if start < n {
        each(&html[start..], false);
    }
}

/// Whether an element name is `img` (or `image`, which HTML parsers read as `img`).
fn is_image(name: &str) -> bool {
    name.eq_ignore_ascii_case("img") || name.eq_ignore_ascii_case("image")
}

/// Whether `tag`, the text of one start tag from its `<` to its `>` (as a feed wrote it, or
/// as the sanitizer serializes it), is a tracking pixel: an `<img>` whose `width` and `height`
/// attributes are both at most 1 (an optional `px` after the number), such as FeedBurner's
/// `~r/` beacons. It shows nothing; every reader that displays the item would fetch it, and
/// feeds often vary its URL per request. The one definition for what is served and what is
/// hashed: output leaves such images out, and the content hash does not count them.
pub fn is_tracking_pixel(tag: &str) -> bool {
    let b = tag.as_bytes();
    if b.first() != Some(&b'<') || b.last() != Some(&b'>') {
        return false;
    }
    let name_end = 1 + b[1..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric())
        .count();
    if !is_image(&tag[1..name_end]) {
        return false;
    }
    let (mut width, mut height) = (None, None);
    for_each_attribute(tag, name_end, |_, name, value, _| {
        // A repeated attribute is ignored, as HTML parsers do.
        let slot = if name.eq_ignore_ascii_case("width") {
            &mut width
        } else if name.eq_ignore_ascii_case("height") {
            &mut height
        } else {
            return;
        };
        slot.get_or_insert(value.unwrap_or(""));
    });
    width.is_some_and(at_most_one_pixel) && height.is_some_and(at_most_one_pixel)
}

/// Whether a `width` or `height` value (character references not yet decoded) is at most 1.
fn at_most_one_pixel(value: &str) -> bool {
    let value = html_escape::decode_html_entities(value);
    let value = value.trim();
    let value = value.strip_suffix("px").unwrap_or(value).trim();
    value.parse::<f64>().is_ok_and(|n| n <= 1.0)
}

/// Reads the attributes of the start tag whose name ends at `from`, as an HTML tokenizer does
/// (names end at whitespace, `/`, `>` or `=`; values are quoted or run to whitespace or `>`),
/// and calls `each(before, name, value, end)` for each: `before` is where the whitespace
/// before it starts, `end` where it ends, `value` its text without quotes (`None` when it has
/// none). Returns where the tag ends (after its `>`, or the end of the input). Every boundary
/// is an ASCII byte, so a char boundary.
fn for_each_attribute<'a>(
    html: &'a str,
    from: usize,
    mut each: impl FnMut(usize, &'a str, Option<&'a str>, usize),
) -> usize {
    let b = html.as_bytes();
    let n = b.len();
    let space = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c');
    let mut j = from;
    loop {
        let before = j;
        while j < n && (space(b[j]) || b[j] == b'/') {
            j += 1;
        }
        if j >= n {
            return n;
        }
        if b[j] == b'>' {
            return j + 1;
        }
        let name_start = j;
        // A name may start with '=' (the tokenizer takes it as a character of the name).
        j += 1;
        while j < n && !space(b[j]) && !matches!(b[j], b'/' | b'>' | b'=') {
            j += 1;
        }
        let name = &html[name_start..j];
        let mut value = None;
        let mut k = j;
        while k < n && space(b[k]) {
            k += 1;
        }
        if k < n && b[k] == b'=' {
            k += 1;
            while k < n && space(b[k]) {
                k += 1;
            }
            match b.get(k) {
                Some(&q @ (b'"' | b'\'')) => {
                    let close = memchr(q, &b[k + 1..]).map(|p| k + 1 + p);
                    value = Some(&html[k + 1..close.unwrap_or(n)]);
                    k = close.map_or(n, |c| c + 1);
                }
                _ => {
                    let start = k;
                    while k < n && !space(b[k]) && b[k] != b'>' {
                        k += 1;
                    }
                    value = Some(&html[start..k]);
                }
            }
            j = k;
        }
        each(before, name, value, j);
    }
}

/// Calls `dropped(from, to)` with the byte range of each attribute of the start tag named `tag`
/// (its name ending at `from`) that the sanitizer drops, the whitespace before it included
/// (see [`for_each_attribute`]). Returns where the tag ends.
fn for_each_dropped_attribute(
    html: &str,
    tag: &str,
    from: usize,
    mut dropped: impl FnMut(usize, usize),
) -> usize {
    for_each_attribute(html, from, |before, name, _, end| {
        if !super::sanitize::attribute_is_kept(tag, name) {
            dropped(before, end);
        }
    })
}

/// The gap an element boundary creates in the text.
fn tag_gap(name: &str) -> Gap {
    if name.len() > 10 {
        return Gap::None;
    }
    let mut buf = [0u8; 10];
    for (d, s) in buf.iter_mut().zip(name.bytes()) {
        *d = s.to_ascii_lowercase();
    }
    match &buf[..name.len()] {
        b"p" | b"br" | b"div" | b"li" | b"ul" | b"ol" | b"h1" | b"h2" | b"h3" | b"h4" | b"h5"
        | b"h6" | b"tr" | b"table" | b"blockquote" | b"pre" | b"hr" | b"section" | b"article"
        | b"header" | b"footer" | b"aside" | b"nav" | b"main" | b"figure" | b"figcaption"
        | b"dl" | b"dt" | b"dd" | b"address" | b"form" | b"fieldset" | b"details" | b"summary"
        | b"thead" | b"tbody" | b"tfoot" | b"caption" | b"center" | b"title" => Gap::Line,
        b"td" | b"th" | b"img" | b"option" | b"iframe" | b"video" | b"audio" | b"embed"
        | b"object" | b"input" | b"button" | b"select" | b"textarea" => Gap::Space,
        _ => Gap::None,
    }
}

/// The '>' that ends a tag whose name ends at `from`, skipping quoted attribute values. If a
/// quote never closes, the first '>' wins (as browsers recover).
fn find_tag_end(b: &[u8], from: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    for (k, &c) in b[from..].iter().enumerate() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'>') => return Some(from + k),
            (None, _) => {}
        }
    }
    memchr(b'>', &b[from..]).map(|p| from + p)
}

/// Position just after the `</name ...>` that closes an element `name` opened before `from`,
/// counting the `name` elements opened inside it (an `svg` in an `svg`), case-insensitively.
fn find_nested_close_tag(html: &str, from: usize, name: &str) -> Option<usize> {
    let b = html.as_bytes();
    let mut depth = 1usize;
    let mut i = from;
    while let Some(lt) = memchr(b'<', &b[i..]).map(|p| i + p) {
        let closing = b.get(lt + 1) == Some(&b'/');
        let start = lt + 1 + usize::from(closing);
        let end = start + name.len();
        i = lt + 1;
        let named = b
            .get(start..end)
            .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
            && !b
                .get(end)
                .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b':'));
        if !named {
            continue;
        }
        let tag_end = find_tag_end(b, end)?;
        if closing {
            depth -= 1;
            if depth == 0 {
                return Some(tag_end + 1);
            }
        } else if b[tag_end - 1] != b'/' {
            depth += 1;
        }
        i = tag_end + 1;
    }
    None
}

/// Position just after the `</name ...>` that closes a raw-content element, case-insensitively.
fn find_close_tag(html: &str, from: usize, name: &str) -> Option<usize> {
    let b = html.as_bytes();
    let mut i = from;
    while let Some(p) = find_from(html, i, "</") {
        let start = p + 2;
        let end = start + name.len();
        if end <= b.len()
            && b[start..end].eq_ignore_ascii_case(name.as_bytes())
            && !b.get(end).is_some_and(u8::is_ascii_alphanumeric)
        {
            return Some(memchr(b'>', &b[end..]).map_or(b.len(), |q| end + q + 1));
        }
        i = start;
    }
    None
}

fn find_from(s: &str, from: usize, needle: &str) -> Option<usize> {
    s.get(from..)?.find(needle).map(|p| from + p)
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == needle)
}

/// Text reduced to what identifies it for matching: lower-case, punctuation and symbols read as
/// word breaks, whitespace folded to single spaces, trimmed. Two renderings of the same words
/// give the same string.
pub fn normalize_for_matching(text: &str) -> String {
    if text.is_ascii() {
        normalize_ascii_for_matching(text)
    } else {
        normalize_unicode_for_matching(text)
    }
}

/// [`normalize_for_matching`] for any text, char by char.
fn normalize_unicode_for_matching(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.chars() {
        // Combining marks belong to their word (Devanagari, Arabic and other vowel signs).
        if c.is_alphanumeric() || (!out.is_empty() && !gap && is_combining_mark(c)) {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
        } else {
            gap = true;
        }
    }
    out
}

/// [`normalize_for_matching`] for ASCII text, on bytes (no ASCII char is a combining mark, and
/// `is_alphanumeric` is `is_ascii_alphanumeric`).
fn normalize_ascii_for_matching(text: &str) -> String {
    // Lower-cased in bulk, then compacted in place: runs of letters and digits joined by one
    // space (pushing char by char costs twice as much).
    let mut b = text.to_ascii_lowercase().into_bytes();
    let (mut read, mut write) = (0, 0);
    while read < b.len() {
        if !b[read].is_ascii_alphanumeric() {
            read += 1;
            continue;
        }
        if write > 0 {
            b[write] = b' ';
            write += 1;
        }
        while read < b.len() && b[read].is_ascii_alphanumeric() {
            b[write] = b[read];
            write += 1;
            read += 1;
        }
    }
    b.truncate(write);
    String::from_utf8(b).expect("ASCII in, ASCII out")
}

/// Feeds [`normalize_for_matching`]`(text)` to `hasher` without building the string. The
/// fingerprint hashes every item's whole text: for ASCII text (most news) the normalized bytes
/// pass through a small buffer instead of a lower-cased copy of the text compacted in place.
pub(crate) fn hash_normalized_for_matching(text: &str, hasher: &mut xxhash_rust::xxh3::Xxh3) {
    if !text.is_ascii() {
        hasher.update(normalize_unicode_for_matching(text).as_bytes());
        return;
    }
    let mut buf = [0u8; 512];
    let mut len = 0;
    // A word has been written (so a later break becomes one space), and a break is pending.
    let (mut started, mut gap) = (false, false);
    for &b in text.as_bytes() {
        let folded = MATCHING_BYTE[usize::from(b)];
        if folded == 0 {
            gap = started;
            continue;
        }
        if len + 2 > buf.len() {
            hasher.update(&buf[..len]);
            len = 0;
        }
        if gap {
            buf[len] = b' ';
            len += 1;
            gap = false;
        }
        buf[len] = folded;
        len += 1;
        started = true;
    }
    hasher.update(&buf[..len]);
}

/// Each ASCII byte as [`normalize_for_matching`] keeps it: letters lower-cased, digits as they
/// are, 0 for everything else (a word break).
const MATCHING_BYTE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 128 {
        let c = b as u8;
        if c.is_ascii_alphanumeric() {
            table[b] = c.to_ascii_lowercase();
        }
        b += 1;
    }
    table
};

/// Cuts `s` to at most `max` chars, on a char boundary.
pub fn truncate_chars(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    if let Some((idx, _)) = s.char_indices().nth(max) {
        s.truncate(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ShownAttributes::{All, Kept};
    use proptest::prelude::*;

    #[test]
    fn html_to_text_handles_the_markup_found_in_feeds() {
        let cases = [
            ("plain words", "plain words"),
            ("  lots   of \n\t space  ", "lots of space"),
            (
                "<p>Tariffs rise</p><p>Quotas fall</p>",
                "Tariffs rise\nQuotas fall",
            ),
            ("line<br>break<br/>twice<br />", "line\nbreak\ntwice"),
            ("<b>Tr</b>ade <i>war</i>", "Trade war"),
            ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
            ("<table><tr><td>a</td><td>b</td></tr></table>", "a b"),
            ("AT&amp;T &lt;b&gt; &quot;q&quot;", "AT&T <b> \"q\""),
            ("caf&eacute; &#233; &#xE9; na&iuml;ve", "café é é naïve"),
            ("non&nbsp;breaking", "non breaking"),
            ("AT&amp;amp;T", "AT&amp;T"),
            ("<script>var x = '<p>no</p>';</script>kept", "kept"),
            ("<SCRIPT type=\"x\">alert(1)</SCRIPT >kept", "kept"),
            ("<style>p { color: red }</style><p>kept</p>", "kept"),
            ("<noscript>enable js</noscript>kept", "kept"),
            ("<template><p>hidden</p></template>kept", "kept"),
            // What the output sanitizer drops with its content is no text either, nested
            // elements of the same name counted.
            (
                "<p>Exports rose.</p><svg viewBox=\"0 0 9 9\"><title>Chart</title>\
                 <svg><text>inner</text></svg><text>Q1</text></svg><p>kept</p>",
                "Exports rose.\nkept",
            ),
            (
                "a<form action=x><select><option>EU</option><option>US</option></select>\
                 <button>Subscribe</button><textarea><p>raw</p></textarea></form>b",
                "a b",
            ),
            ("a<SVG/>b<svg><svg/></svg>c", "ab c"),
            (
                "a<math><mi>x</mi></math>b<iframe>no <b>frames</b></iframe>c",
                "a b c",
            ),
            ("<svg><g>never closed", ""),
            ("<svgfoo>kept</svgfoo>", "kept"),
            ("<script>never closed <p>hidden", ""),
            ("a < b and c > d", "a < b and c > d"),
            ("x <3 y", "x <3 y"),
            ("text <unterminated", "text <unterminated"),
            ("<a href=\"x>y\">link</a> after", "link after"),
            ("<a href='x'>one</a><a href=\"y>\">two", "onetwo"),
            ("before<!-- a <b>comment</b> -->after", "beforeafter"),
            ("before<!-- never closed", "before"),
            ("<![CDATA[raw &amp; <kept>]]> tail", "raw &amp; <kept> tail"),
            ("<?xml version=\"1.0\"?><p>pi dropped</p>", "pi dropped"),
            ("<div><div><p>deep</p></div></div>", "deep"),
            ("<p>unclosed <b>bold <i>italic", "unclosed bold italic"),
            ("</p>stray close</div>", "stray close"),
            ("e\u{301}", "é"),
            ("ctrl\u{1}chars\u{7}", "ctrl chars"),
            ("Zoll\u{ad}tarif\u{200b} \u{feff}x", "Zolltarif x"),
            ("", ""),
        ];
        for (html, expected) in cases {
            assert_eq!(html_to_text(html), expected, "input {html:?}");
        }
    }

    #[test]
    fn normalize_for_matching_ignores_case_punctuation_and_spacing() {
        let cases = [
            ("U.S. Tariffs, EU quotas!", "u s tariffs eu quotas"),
            ("  Zölle   UND Ämter ", "zölle und ämter"),
            ("trade—policy…", "trade policy"),
            ("हिंदी समाचार", "हिंदी समाचार"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_for_matching(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn truncate_chars_cuts_on_char_boundaries() {
        let cases = [
            ("Zölle", 2, "Zö"),
            ("abc", 5, "abc"),
            ("日本語", 1, "日"),
            ("", 0, ""),
        ];
        for (input, max, expected) in cases {
            let mut s = input.to_owned();
            truncate_chars(&mut s, max);
            assert_eq!(s, expected);
        }
    }

    /// The shown parts of `html`, joined.
    fn shown(attributes: ShownAttributes, html: &str) -> String {
        let mut out = String::new();
        for_each_shown_part(html, attributes, |p, _| out.push_str(p));
        out
    }

    #[test]
    fn tracking_pixels_are_images_of_at_most_one_by_one_as_written_or_serialized() {
        let cases = [
            (
                r#"<img src="https://px.example/t.gif" width="1" height="1">"#,
                true,
            ),
            (
                r#"<img height="1" width="1" src="http://feeds.feedburner.com/~r/x/~4/a"/>"#,
                true,
            ),
            (r#"<IMG SRC=x WIDTH=0 Height='1px'>"#, true),
            (r#"<img width=" 1 px" height="0.5">"#, true),
            (r#"<img width="&#49;" height="1">"#, true),
            (r#"<image width="1" height="1">"#, true),
            (r#"<img width="1" height="1" width="600">"#, true),
            (r#"<img width="600" height="1" width="1">"#, false),
            (r#"<img width="1">"#, false),
            (r#"<img width="1" height="2">"#, false),
            (r#"<img width="1" height="auto">"#, false),
            (r#"<img alt='width="1" height="1"'>"#, false),
            (r#"<imgx width="1" height="1">"#, false),
            (r#"<p width="1" height="1">"#, false),
            (r#"<img width="1" height="1""#, false),
        ];
        for (tag, pixel) in cases {
            assert_eq!(is_tracking_pixel(tag), pixel, "{tag}");
        }
    }

    #[test]
    fn shown_parts_mark_the_pixel_tags_and_leave_the_other_bytes_as_they_were() {
        let html = "<p class=\"x\">a</p><IMG class=t src=p width=1 height=1><b>b</b>";
        let (mut all, mut marked) = (String::new(), String::new());
        for_each_shown_part(html, Kept, |part, pixel| {
            all.push_str(part);
            if pixel {
                marked.push_str(part);
            }
        });
        assert_eq!(all, "<p>a</p><IMG src=p width=1 height=1><b>b</b>");
        assert_eq!(marked, "<IMG src=p width=1 height=1>");
        for_each_shown_part(html, All, |_, pixel| assert!(!pixel));
    }

    #[test]
    fn shown_parts_leave_out_comments_and_hidden_elements_only() {
        assert_eq!(
            shown(
                All,
                "<p>a</p><!-- t=0.1 --><SCRIPT src=x>n=1</script ><p>b</p>"
            ),
            "<p>a</p><p>b</p>"
        );
        assert_eq!(
            shown(All, "x<iframe src='?cb=1'>f</iframe>y<style>p{}</style>z"),
            "xyz"
        );
        // Not hidden: other elements, look-alike names, a bare '<'.
        assert_eq!(
            shown(All, "<scripts>a</scripts> 1 < 2 <"),
            "<scripts>a</scripts> 1 < 2 <"
        );
        // Unclosed, a comment or hidden element hides the rest, as in html_to_text.
        assert_eq!(shown(All, "a<!-- b"), "a");
        assert_eq!(shown(All, "a<script>b"), "a");
        assert_eq!(shown(All, "a<script"), "a");
        assert_eq!(shown(All, "plain"), "plain");
        assert_eq!(shown(All, ""), "");
    }

    #[test]
    fn shown_parts_leave_out_the_attributes_the_sanitizer_drops() {
        // Dropped with the whitespace before them; kept ones stay byte for byte.
        assert_eq!(
            shown(
                Kept,
                "<p class=\"lead\" id=x data-track='7'>a <A HREF=\"/r\" onclick=\"t()\" \
                 Title=t>r</A></p><img style=\"w\" src=i.png alt=\"\" data-src=\"?v=2\"/>"
            ),
            "<p>a <A HREF=\"/r\" Title=t>r</A></p><img src=i.png alt=\"\"/>"
        );
        // Quotes hide '>' and spaces; an unquoted value ends at '>'; a bare name has no value.
        assert_eq!(
            shown(
                Kept,
                "<td colspan=2 class=\"a > b\" nowrap>c</td><br class=x>d"
            ),
            "<td colspan=2>c</td><br>d"
        );
        assert_eq!(
            shown(Kept, "<div class = \"x\" lang=en>t"),
            "<div lang=en>t"
        );
        // Kept attributes are judged per element, as the sanitizer does.
        assert_eq!(
            shown(Kept, "<a src=x href=y><img href=x src=y>"),
            "<a href=y><img src=y>"
        );
        // Hidden elements and comments go as before; end tags, text and non-tags are kept.
        assert_eq!(
            shown(
                Kept,
                "<p id=1>x</p><script a=1>n</script><!-- c --> 1 < 2 <3 </p a=1>"
            ),
            "<p>x</p> 1 < 2 <3 </p a=1>"
        );
        // An unclosed tag or quote runs to the end of the input.
        assert_eq!(shown(Kept, "a<p class=\"x"), "a<p");
        assert_eq!(shown(Kept, "a<p title=\"x"), "a<p title=\"x");
        assert_eq!(shown(Kept, "a<p"), "a<p");
        // Without any dropped attribute, the bytes are the input's.
        let clean = "<p>Duties <a href=\"https://e.example/\" title=t>rise</a>.</p><br/>é";
        assert_eq!(shown(Kept, clean), clean);
        assert_eq!(shown(All, clean), clean);
    }

    /// The streamed hash of [`hash_normalized_for_matching`] against hashing the string.
    fn streamed_equals_built(text: &str) {
        use xxhash_rust::xxh3::{Xxh3, xxh3_128};
        let mut hasher = Xxh3::new();
        hash_normalized_for_matching(text, &mut hasher);
        assert_eq!(
            hasher.digest128(),
            xxh3_128(normalize_for_matching(text).as_bytes()),
            "{text:?}"
        );
    }

    #[test]
    fn the_streamed_matching_hash_is_the_hash_of_the_normalized_text() {
        let long: String = (0..400)
            .map(|i| format!("Word{i}, -- AND more! "))
            .collect();
        for text in [
            "",
            "   ",
            "...",
            "Tariffs",
            "  Tariffs rise, 25% -- on STEEL.  ",
            "a",
            "déjà vu: Über-tariffs",
            long.as_str(),
            &"x".repeat(2_000),
            &"ab ".repeat(700),
        ] {
            streamed_equals_built(text);
        }
    }

    proptest! {
        #[test]
        fn the_streamed_matching_hash_matches_for_any_text(
            s in "[ a-zA-Z0-9.,;'\\-\n\té]{0,1400}"
        ) {
            streamed_equals_built(&s);
        }

        #[test]
        fn shown_parts_are_slices_of_the_input_in_order(s in "[<>/a-z!\\- =\"'é]{0,48}") {
            let mut last = 0;
            for_each_shown_part(&s, ShownAttributes::Kept, |part, _| {
                let at = part.as_ptr() as usize - s.as_ptr() as usize;
                assert!(at >= last && at + part.len() <= s.len());
                last = at + part.len();
            });
        }

        #[test]
        fn pixel_tags_are_read_without_panics_and_marked_within_their_tag(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just("<img"), Just("<IMG"), Just(" width=1"), Just(" height=\"1px\""),
                    Just(" height='0'"), Just(" class=x"), Just("/"), Just(">"), Just("\""),
                    Just("'"), Just("<p>"), Just("é"), Just(" src=&#49;"), Just("<!--"),
                ],
                0..16,
            )
        ) {
            let s = pieces.concat();
            let (mut last, mut in_pixel) = (0, false);
            for_each_shown_part(&s, ShownAttributes::Kept, |part, pixel| {
                let at = part.as_ptr() as usize - s.as_ptr() as usize;
                assert!(at >= last && at + part.len() <= s.len());
                last = at + part.len();
                // A pixel's parts come in a row, the first opening its `<img` tag.
                let opens = part.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("<img"));
                assert!(!pixel || in_pixel || opens, "{s:?}: {part:?}");
                in_pixel = pixel;
            });
        }

        #[test]
        fn ascii_paths_give_the_output_of_the_char_by_char_paths(
            segments in proptest::collection::vec("[ -~\t\n\r\u{0}-\u{1f}\u{7f}]{0,12}", 1..6),
            gaps in proptest::collection::vec(0..3u8, 6),
        ) {
            let gap = |g: u8| [Gap::None, Gap::Space, Gap::Line][usize::from(g)];
            let (mut fast, mut reference) = (TextWriter::new(0), TextWriter::new(0));
            for (segment, g) in segments.iter().zip(&gaps) {
                fast.gap(gap(*g));
                reference.gap(gap(*g));
                fast.ascii_text(segment);
                reference.unicode_text(segment);
                prop_assert_eq!((&fast.out, fast.gap), (&reference.out, reference.gap));
            }
            let joined = segments.concat();
            prop_assert_eq!(
                normalize_ascii_for_matching(&joined),
                normalize_unicode_for_matching(&joined)
            );
        }

        #[test]
        fn html_to_text_never_panics_and_never_leaves_edge_whitespace(s in ".*") {
            let text = html_to_text(&s);
            prop_assert_eq!(text.trim(), text.as_str());
        }

        #[test]
        fn html_to_text_never_panics_on_tag_soup(s in "[<>/a-z!\\[\\]\\-&;# =\"'CDATA]{0,64}") {
            let _ = html_to_text(&s);
        }
    }
}
