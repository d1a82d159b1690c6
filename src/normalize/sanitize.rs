//! Allow-list HTML sanitizing for output (ammonia).
//!
//! The ammonia `Builder` is built once (it holds several hash sets). Relative URLs must be
//! resolved against a per-feed base, which a shared builder cannot hold, so the builder's
//! custom relative-URL evaluator reads the base from a thread-local set by [`sanitize_html`]
//! for the duration of one synchronous `clean` call.
//!
//! Plain text with no markup characters skips ammonia (its output would be the same bytes).
//! Every piece of markup goes through ammonia: a hand-written fast path for "simple" markup
//! was tried (it saved about 3 µs per item) and left out, because the sanitizer is the one
//! place where a well-tested library beats a faster parser of our own.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use url::Url;

/// Elements kept: text formatting, lists, quotes, headings, code, tables, images and links.
const TAGS: &[&str] = &[
    "a",
    "abbr",
    "b",
    "blockquote",
    "br",
    "caption",
    "cite",
    "code",
    "dd",
    "del",
    "dl",
    "dt",
    "em",
    "figcaption",
    "figure",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "i",
    "img",
    "ins",
    "kbd",
    "li",
    "mark",
    "ol",
    "p",
    "pre",
    "q",
    "s",
    "small",
    "span",
    "strong",
    "sub",
    "sup",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "time",
    "tr",
    "u",
    "ul",
];

/// Elements removed together with their content (everything else not in [`TAGS`] is unwrapped:
/// the tag goes, its text stays).
const DROPPED_WITH_CONTENT: &[&str] = &[
    "script", "style", "noscript", "template", "iframe", "object", "embed", "form", "svg", "math",
    "textarea", "select", "button",
];

/// URL schemes allowed in `href`/`src`/`cite` (see [`checked_url`]); `javascript:`, `data:`
/// and the rest are removed.
const URL_SCHEMES: &[&str] = &["http", "https", "mailto"];

thread_local! {
    /// The base for relative URLs of the current `sanitize_html` call (string and its parse).
    static BASE: RefCell<(String, Option<Url>)> = const { RefCell::new((String::new(), None)) };
}

/// Resolves a relative URL against the current base; without a usable base the attribute goes.
fn resolve_relative(url: &str) -> Option<Cow<'_, str>> {
    BASE.with(|base| {
        let base = base.borrow();
        let joined = base.1.as_ref()?.join(url).ok()?;
        matches!(joined.scheme(), "http" | "https").then(|| Cow::Owned(joined.into()))
    })
}

/// A URL attribute's value (`href`, `src`, `cite`) as served: resolved against the base as a
/// browser would resolve it there, serialized by URL parsing, kept only with an allowed
/// scheme. Ammonia checks the scheme of `href` and `src` (not of `cite`) and resolves what it
/// takes for relative, but passes what it takes for absolute on as written:
/// - `https:evil.example` (no `//`) is relative to an https base for a browser, and points
///   elsewhere for a reader without one;
/// - bidirectional overrides, spaces and control characters stay raw, so a link could read
///   `gnp.exe`;
///
/// serialized, they are percent-encoded. A value that does not resolve, or to no allowed
/// scheme (`java&#10;script:` included: URL parsing drops the line break), removes the
/// attribute; so does a relative one without a usable base.
fn checked_url(value: &str) -> Option<Cow<'_, str>> {
    BASE.with(|base| {
        let base = base.borrow();
        let url = match &base.1 {
            Some(base) => base.join(value),
            None => Url::parse(value),
        }
        .ok()?;
        URL_SCHEMES
            .contains(&url.scheme())
            .then(|| Cow::Owned(url.into()))
    })
}

/// Attributes kept on particular elements; every other attribute goes, except
/// [`GENERIC_ATTRIBUTES`].
const TAG_ATTRIBUTES: &[(&str, &[&str])] = &[
    ("a", &["href", "hreflang"]),
    ("img", &["src", "alt", "width", "height"]),
    ("blockquote", &["cite"]),
    ("q", &["cite"]),
    ("del", &["cite", "datetime"]),
    ("ins", &["cite", "datetime"]),
    ("time", &["datetime"]),
    ("ol", &["start", "reversed"]),
    ("td", &["colspan", "rowspan"]),
    ("th", &["colspan", "rowspan", "scope"]),
];

/// Attributes kept on any element.
const GENERIC_ATTRIBUTES: &[&str] = &["title", "lang", "dir"];

/// Whether the sanitizer keeps attribute `attribute` of a `tag` element (names compared
/// without case, as HTML does): what the content hash counts of a start tag.
pub(super) fn attribute_is_kept(tag: &str, attribute: &str) -> bool {
    GENERIC_ATTRIBUTES
        .iter()
        .any(|a| a.eq_ignore_ascii_case(attribute))
        || TAG_ATTRIBUTES
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(tag))
            .is_some_and(|(_, kept)| kept.iter().any(|a| a.eq_ignore_ascii_case(attribute)))
}

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    sanitizer(|_, attribute, value| match attribute {
        "href" | "src" | "cite" => checked_url(value),
        _ => Some(Cow::Borrowed(value)),
    })
});

/// The sanitizer releases before e21d8af (where entries began to keep their feed's HTML) ran
/// at ingest: those releases hashed the HTML sanitized so, and the hash their rows hold is
/// recomputed with it (see [`sanitize_html_as_hashed_before`]). Any change here would make
/// such a row look edited. Those releases had no filter of attribute values: `cite` was kept
/// as written (checked since b455901), and URLs were not serialized (since 087965b).
static SANITIZER_AS_HASHED_BEFORE: LazyLock<Builder<'static>> =
    LazyLock::new(|| sanitizer(|_, _, value| Some(Cow::Borrowed(value))));

/// The allow-list builder, with `attribute_filter` for the values of the attributes kept.
fn sanitizer(
    attribute_filter: for<'u> fn(&str, &str, &'u str) -> Option<Cow<'u, str>>,
) -> Builder<'static> {
    let tag_attributes: HashMap<&str, HashSet<&str>> = TAG_ATTRIBUTES
        .iter()
        .map(|&(tag, attrs)| (tag, attrs.iter().copied().collect()))
        .collect();
    let mut builder = Builder::new();
    builder
        .tags(TAGS.iter().copied().collect())
        .clean_content_tags(DROPPED_WITH_CONTENT.iter().copied().collect())
        .tag_attributes(tag_attributes)
        .generic_attributes(GENERIC_ATTRIBUTES.iter().copied().collect())
        .url_schemes(URL_SCHEMES.iter().copied().collect())
        .url_relative(UrlRelative::Custom(Box::new(resolve_relative)))
        .attribute_filter(attribute_filter)
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true);
    builder
}

/// Bidirectional overrides (LEFT-TO-RIGHT and RIGHT-TO-LEFT OVERRIDE): they show the text
/// after them in reverse, the spoofing of `\u{202e}gnp.exe` as "exe.png". Removed from what
/// is served; the embeddings, isolates and marks that right-to-left text mixed with numbers
/// and Latin words needs stay (they set a direction, but reverse no letters).
const OVERRIDES: [char; 2] = ['\u{202d}', '\u{202e}'];

/// What makes text more than plain text to the HTML serializer: text without any of these
/// skips the parser (its output would be the same bytes).
const MARKUP: [char; 6] = ['<', '>', '&', '\u{a0}', '\r', '\0'];

/// Allow-list sanitizing (see [`super::sanitize_html`]).
pub fn sanitize_html(html: &str, base_url: &str) -> String {
    // Plain text that the HTML serializer would write back unchanged skips the parser.
    let mut clean = if html.contains(MARKUP) {
        clean_with_ammonia(html, base_url)
    } else {
        html.to_owned()
    };
    if clean.contains(OVERRIDES) {
        clean.retain(|c| !OVERRIDES.contains(&c));
    }
    // A carriage return the serializer writes out raw (from `&#13;` in an attribute or a
    // text) would be read as a line feed by every XML parser of an Atom or RSS feed the HTML
    // is carried in, and the same item's HTML would differ between formats.
    if clean.contains('\r') {
        clean = clean.replace('\r', "&#13;");
    }
    clean
}

/// `html` sanitized as releases before e21d8af sanitized it, for the content hashes their rows
/// hold (see [`SANITIZER_AS_HASHED_BEFORE`]).
pub fn sanitize_html_as_hashed_before(html: &str, base_url: &str) -> String {
    if !html.contains(MARKUP) {
        return html.to_owned();
    }
    set_base(base_url);
    SANITIZER_AS_HASHED_BEFORE.clean(html).to_string()
}

/// The full sanitizer: HTML5 parsing, the allow-list, serializing.
fn clean_with_ammonia(html: &str, base_url: &str) -> String {
    set_base(base_url);
    SANITIZER.clean(html).to_string()
}

/// Sets the base of relative URLs for the next `clean` call on this thread.
fn set_base(base_url: &str) {
    BASE.with(|base| {
        let mut base = base.borrow_mut();
        if base.0 != base_url {
            base.0.clear();
            base.0.push_str(base_url);
            base.1 = Url::parse(base_url).ok();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE_URL: &str = "https://trade.example.org/news/feed.xml";

    #[test]
    fn dangerous_markup_is_removed_and_formatting_kept() {
        let cases = [
            ("<p>Tariffs <b>rise</b></p>", "<p>Tariffs <b>rise</b></p>"),
            ("<script>alert(1)</script><p>ok</p>", "<p>ok</p>"),
            ("<style>p{}</style>ok", "ok"),
            (
                "<iframe src=\"https://x.example\">fallback</iframe>ok",
                "ok",
            ),
            ("<object data=\"x\"></object><embed src=\"y\">ok", "ok"),
            ("<form action=\"/x\"><input name=q></form>ok", "ok"),
            (
                "<img src=\"https://x.example/a.png\" onerror=\"alert(1)\">",
                "<img src=\"https://x.example/a.png\">",
            ),
            (
                "<p style=\"color:red\" onclick=\"x()\">styled</p>",
                "<p>styled</p>",
            ),
            (
                "<a href=\"javascript:alert(1)\">js</a>",
                "<a rel=\"noopener noreferrer\">js</a>",
            ),
            (
                "<a href=\"data:text/html,<b>x</b>\">data</a>",
                "<a rel=\"noopener noreferrer\">data</a>",
            ),
            ("<img src=\"data:image/png;base64,AAAA\">", "<img>"),
            (
                "<a href=\"https://x.example/a\" target=\"_blank\">ok</a>",
                "<a href=\"https://x.example/a\" rel=\"noopener noreferrer\">ok</a>",
            ),
            (
                "<a href=\"mailto:desk@x.example\">mail</a>",
                "<a href=\"mailto:desk@x.example\" rel=\"noopener noreferrer\">mail</a>",
            ),
            (
                "<div><span class=\"c\">unwrapped div</span></div>",
                "<span>unwrapped div</span>",
            ),
            ("<!-- comment -->text", "text"),
            ("<p>unclosed <b>bold", "<p>unclosed <b>bold</b></p>"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_html(input, BASE_URL), expected, "input {input:?}");
        }
    }

    #[test]
    fn relative_urls_are_resolved_against_the_base() {
        let cases = [
            (
                "<a href=\"/2026/quotas\">q</a>",
                "<a href=\"https://trade.example.org/2026/quotas\" rel=\"noopener noreferrer\">q</a>",
            ),
            (
                "<img src=\"img/chart.png\">",
                "<img src=\"https://trade.example.org/news/img/chart.png\">",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_html(input, BASE_URL), expected, "input {input:?}");
        }
    }

    #[test]
    fn plain_text_passes_through_and_special_characters_are_escaped() {
        let cases = [
            ("", ""),
            ("Tariffs rise again", "Tariffs rise again"),
            ("Quotes \"stay\" 'as is'", "Quotes \"stay\" 'as is'"),
            ("AT&T < 5 > 3", "AT&amp;T &lt; 5 &gt; 3"),
            ("non\u{a0}breaking", "non&nbsp;breaking"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_html(input, BASE_URL), expected, "input {input:?}");
        }
    }

    #[test]
    fn cite_urls_are_checked_and_resolved_like_links() {
        let cases = [
            ("<q cite=\"javascript:alert(1)\">q</q>", "<q>q</q>"),
            (
                "<blockquote cite=\" JaVaScRiPt:alert(1)\">b</blockquote>",
                "<blockquote>b</blockquote>",
            ),
            (
                "<blockquote cite=\"java&#10;script:alert(1)\">b</blockquote>",
                "<blockquote>b</blockquote>",
            ),
            (
                "<del cite=\"data:text/html,<script>x</script>\">d</del>",
                "<del>d</del>",
            ),
            (
                "<ins cite=\"vbscript:msgbox(1)\" datetime=\"2026-11-10\">i</ins>",
                "<ins datetime=\"2026-11-10\">i</ins>",
            ),
            (
                "<q cite=\"https://wto.example/ruling\">q</q>",
                "<q cite=\"https://wto.example/ruling\">q</q>",
            ),
            (
                "<blockquote cite=\"/2026/ruling\">b</blockquote>",
                "<blockquote cite=\"https://trade.example.org/2026/ruling\">b</blockquote>",
            ),
            ("<q cite=\"http://[bad\">q</q>", "<q>q</q>"),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_html(input, BASE_URL), expected, "input {input:?}");
        }
        assert_eq!(
            sanitize_html("<q cite=\"/x\">q</q>", "not a url"),
            "<q>q</q>",
            "a relative cite goes without a usable base"
        );
    }

    #[test]
    fn absolute_urls_are_served_as_resolved_and_serialized() {
        let cases = [
            // Relative to an https base for a browser: resolved so for every reader.
            (
                "<a href=\"https:evil.example\">x</a>",
                "<a href=\"https://trade.example.org/news/evil.example\" rel=\"noopener noreferrer\">x</a>",
            ),
            (
                "<a href=\"http:evil.example\">x</a>",
                "<a href=\"http://evil.example/\" rel=\"noopener noreferrer\">x</a>",
            ),
            // An override or a space in a URL is percent-encoded.
            (
                "<a href=\"https://ok.example/&#x202E;x y\">x</a>",
                "<a href=\"https://ok.example/%E2%80%AEx%20y\" rel=\"noopener noreferrer\">x</a>",
            ),
            (
                "<img src=\"HTTPS://CDN.Example/a.png\">",
                "<img src=\"https://cdn.example/a.png\">",
            ),
            (
                "<a href=\"java&#10;script:alert(1)\">x</a>",
                "<a rel=\"noopener noreferrer\">x</a>",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_html(input, BASE_URL), expected, "input {input:?}");
        }
    }

    #[test]
    fn overrides_go_and_carriage_returns_are_written_as_references() {
        let cases = [
            (
                "tariff \u{202e}reverse\u{202c} WTO",
                "tariff reverse\u{202c} WTO",
            ),
            (
                "<p>\u{202d}a\u{202c} \u{202b}\u{645}\u{202c} \u{2067}b\u{2069}\u{200f}</p>",
                "<p>a\u{202c} \u{202b}\u{645}\u{202c} \u{2067}b\u{2069}\u{200f}</p>",
            ),
            (
                "<p title=\"t&#10;&#13;&#9;\">x&#13;y</p>",
                "<p title=\"t\n&#13;\t\">x&#13;y</p>",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(sanitize_html(input, BASE_URL), expected, "input {input:?}");
        }
    }

    /// The sanitizer that recomputes the hashes of rows written before e21d8af, where it
    /// differs from the one that serves: pinned, as any change makes such rows look edited.
    #[test]
    fn the_sanitizer_of_old_hashes_stays_as_it_was() {
        let cases = [
            (
                "<a href=\"http://example.com\">x</a>",
                "<a href=\"http://example.com\" rel=\"noopener noreferrer\">x</a>",
            ),
            (
                "<a href=\"https:evil.example/a b\">x</a>",
                "<a href=\"https:evil.example/a b\" rel=\"noopener noreferrer\">x</a>",
            ),
            (
                "<blockquote cite=\"/2026/ruling\">b</blockquote>",
                "<blockquote cite=\"/2026/ruling\">b</blockquote>",
            ),
            ("<p>a\u{202e}b&#13;c</p>", "<p>a\u{202e}b\rc</p>"),
            (
                "<a href=\"/rel\">r</a><script>x</script>",
                "<a href=\"https://trade.example.org/rel\" rel=\"noopener noreferrer\">r</a>",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                sanitize_html_as_hashed_before(input, BASE_URL),
                expected,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn relative_urls_are_dropped_without_a_usable_base() {
        assert_eq!(
            sanitize_html("<a href=\"/x\">x</a>", "not a url"),
            "<a rel=\"noopener noreferrer\">x</a>"
        );
    }
}
