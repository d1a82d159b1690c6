//! Allow-list HTML sanitizing for output (ammonia).
//!
//! The ammonia `Builder` is built once (it holds several hash sets). Relative URLs must be
//! resolved against a per-feed base, which a shared builder cannot hold, so the builder's
//! custom relative-URL evaluator reads the base from a thread-local set by [`sanitize_html`]
//! for the duration of one synchronous `clean` call.
//!
//! Plain text and markup in the simple subset of [`super::simple_html`] skip ammonia: their
//! output is known without parsing, and is the same bytes (the tests here compare both paths).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};
use url::Url;

use super::simple_html::sanitize_simple;

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

/// URL schemes allowed in `href`/`src`/`cite`; `javascript:`, `data:` and the rest are removed.
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

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| {
    let tag_attributes: HashMap<&str, HashSet<&str>> = [
        ("a", &["href", "hreflang"][..]),
        ("img", &["src", "alt", "width", "height"][..]),
        ("blockquote", &["cite"][..]),
        ("q", &["cite"][..]),
        ("del", &["cite", "datetime"][..]),
        ("ins", &["cite", "datetime"][..]),
        ("time", &["datetime"][..]),
        ("ol", &["start", "reversed"][..]),
        ("td", &["colspan", "rowspan"][..]),
        ("th", &["colspan", "rowspan", "scope"][..]),
    ]
    .into_iter()
    .map(|(tag, attrs)| (tag, attrs.iter().copied().collect()))
    .collect();
    let mut builder = Builder::new();
    builder
        .tags(TAGS.iter().copied().collect())
        .clean_content_tags(DROPPED_WITH_CONTENT.iter().copied().collect())
        .tag_attributes(tag_attributes)
        .generic_attributes(["title", "lang", "dir"].into_iter().collect())
        .url_schemes(URL_SCHEMES.iter().copied().collect())
        .url_relative(UrlRelative::Custom(Box::new(resolve_relative)))
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true);
    builder
});

/// Allow-list sanitizing (see [`super::sanitize_html`]).
pub fn sanitize_html(html: &str, base_url: &str) -> String {
    // Plain text that the HTML serializer would write back unchanged skips the parser.
    if !html.contains(['<', '>', '&', '\u{a0}', '\r', '\0']) {
        return html.to_owned();
    }
    // So does markup simple enough that ammonia's output is known (most feed bodies): the
    // parser and its DOM are most of the cost of normalizing an item.
    if let Some(clean) = sanitize_simple(html) {
        return clean;
    }
    clean_with_ammonia(html, base_url)
}

/// The full sanitizer: HTML5 parsing, the allow-list, serializing.
fn clean_with_ammonia(html: &str, base_url: &str) -> String {
    BASE.with(|base| {
        let mut base = base.borrow_mut();
        if base.0 != base_url {
            base.0.clear();
            base.0.push_str(base_url);
            base.1 = Url::parse(base_url).ok();
        }
    });
    SANITIZER.clean(html).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
    fn simple_markup_takes_the_fast_path_with_ammonias_exact_output() {
        let cases = [
            "<p>Tariffs rise</p><p>Quotas &amp; duties &lt;fall&gt;</p>",
            "<p>one</p>\n\n<p>two</p>\n",
            "line<br>break<br/>twice<br />",
            "<p>AT&amp;T said &quot;no&quot; &#39;now&#x27; &apos;ok&apos; a&nbsp;b \u{a0}c > d</p>",
            "<ul><li>one</li><li><p>two</p><ol><li>nested</li></ol></li></ul>",
            "<h2>Head</h2><blockquote><p>quoted <em>text</em></p><hr></blockquote>",
            "<p><b>bold <i>italic <u>under</u></i></b> <code>x</code><sub>2</sub></p>",
            "<b><b><b><b><b>deep</b></b></b></b></b>",
            "<span><mark>m</mark><abbr>a</abbr><cite>c</cite><q>q</q><kbd>k</kbd></span>",
            "<del>d</del><ins>i</ins><time>t</time><s>s</s><small>s</small><sup>1</sup>",
            "<p></p>",
            "Zölle — 日本語 emoji 🎉 <p>é</p>",
            "\t<p>\ttabbed\t</p>",
        ];
        for input in cases {
            let expected = clean_with_ammonia(input, BASE_URL);
            let fast = sanitize_simple(input);
            assert_eq!(fast, Some(expected), "input {input:?}");
        }
    }

    #[test]
    fn markup_outside_the_simple_subset_is_left_to_ammonia() {
        let cases = [
            "<p class=\"x\">attribute</p>",
            "<P>upper case</P>",
            "<p>unclosed",
            "stray</p>",
            "<b>mis<i>nested</b></i>",
            "<p>a<p>nested paragraph</p></p>",
            "<b><p>block in inline</p></b>",
            "<p><ul><li>list closes the paragraph</li></ul></p>",
            "<li>item outside a list</li>",
            "<ul><b><li>item not directly in the list</li></b></ul>",
            "<a href=\"https://x.example\">link</a>",
            "<img src=\"x.png\">",
            "<div>div</div>",
            "<pre>\npre</pre>",
            "<script>alert(1)</script>",
            "<!-- comment --><p>x</p>",
            "<p>&copy; other entity</p>",
            "<p>&amp bare ampersand</p>",
            "<p>a & b</p>",
            "<p>a < b</p>",
            "<p>cr\r\nlf</p>",
            "<p>nul\u{0}</p>",
            "<p>c1\u{85}</p>",
            "<p>bom\u{feff}</p>",
            "<p>nonchar\u{fffe}</p>",
            "<b/>",
            "</br>",
            "<br  />",
            "<p >space</p>",
            "<>",
            "</>",
            "<p>truncated</p><p",
        ];
        for input in cases {
            assert_eq!(sanitize_simple(input), None, "input {input:?}");
            // Whichever path runs, the public function gives ammonia's output.
            assert_eq!(
                sanitize_html(input, BASE_URL),
                clean_with_ammonia(input, BASE_URL),
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

    /// Element names of the fast path (lists and items weighted up so items often land in
    /// lists), and some names it must leave to ammonia.
    const SIMPLE_NAMES: &[&str] = &[
        "p",
        "b",
        "i",
        "em",
        "strong",
        "u",
        "s",
        "small",
        "sub",
        "sup",
        "code",
        "span",
        "mark",
        "abbr",
        "cite",
        "q",
        "kbd",
        "del",
        "ins",
        "time",
        "h1",
        "h3",
        "h6",
        "blockquote",
        "ul",
        "ol",
        "ul",
        "li",
        "li",
        "li",
    ];
    const OTHER_NAMES: &[&str] = &["div", "a", "pre", "table", "td", "P", "script", "font"];

    /// Text in the fast path's alphabet, or anything near it.
    fn text(simple: bool) -> BoxedStrategy<String> {
        let entities = proptest::sample::select(vec![
            "&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x27;", "&apos;", "&nbsp;", "<br>",
            "<br/>", "<br />", "<hr>",
        ])
        .prop_map(str::to_owned);
        if simple {
            prop_oneof!["[a-zé \t\n\"'>;#0-9\u{a0}]{0,10}", entities].boxed()
        } else {
            prop_oneof![
                "[a-z &<>;#x0-9\u{a0}\r\u{0}\u{1}\u{85}\u{feff}\u{fffe}=/]{0,6}",
                entities,
                proptest::sample::select(vec!["&copy;", "&amp", "&#233;", "</br>", "<!--x-->"])
                    .prop_map(str::to_owned),
            ]
            .boxed()
        }
    }

    /// Generated markup: well nested from the fast path's names when `simple`, else with
    /// other names, unclosed and self-closed tags and attributes mixed in.
    fn markup(simple: bool) -> impl Strategy<Value = String> {
        let names: Vec<&str> = if simple {
            SIMPLE_NAMES.to_vec()
        } else {
            [SIMPLE_NAMES, OTHER_NAMES].concat()
        };
        let quirks = if simple { 3..4u8 } else { 0..8u8 };
        text(simple).prop_recursive(5, 64, 6, move |inner| {
            (
                proptest::sample::select(names.clone()),
                proptest::collection::vec(inner, 0..6),
                quirks.clone(),
            )
                .prop_map(|(name, children, quirk)| {
                    let body = children.concat();
                    match quirk {
                        0 => format!("<{name}>{body}"),
                        1 => format!("<{name}/>{body}"),
                        2 => format!("<{name} title=\"t\">{body}</{name}>"),
                        _ => format!("<{name}>{body}</{name}>"),
                    }
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn the_fast_path_gives_ammonias_output_on_simple_markup(
            parts in proptest::collection::vec(markup(true), 1..5),
        ) {
            let input = parts.concat();
            if let Some(fast) = sanitize_simple(&input) {
                prop_assert_eq!(fast, clean_with_ammonia(&input, BASE_URL));
            }
        }

        #[test]
        fn the_fast_path_gives_ammonias_output_whenever_it_answers_on_tag_soup(
            parts in proptest::collection::vec(markup(false), 1..5),
        ) {
            let input = parts.concat();
            if let Some(fast) = sanitize_simple(&input) {
                prop_assert_eq!(fast, clean_with_ammonia(&input, BASE_URL));
            }
        }
    }
}
