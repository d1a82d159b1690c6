//! The sanitizer's fast path: markup so plain that ammonia's output is known without parsing.
//!
//! Most feed bodies are paragraphs of text with a little inline formatting (`<p>`, `<br>`,
//! `<b>`, `<em>`, lists) and the five entities a publisher's escaping writes. For such input
//! the HTML5 tree builder creates exactly the elements the tags spell, so ammonia's output is
//! the input re-serialized. [`sanitize_simple`] recognizes a strict subset of that case and
//! writes the same bytes directly; anything outside it (any attribute, any other element or
//! entity, a tag the parser would move or close implicitly, a comment, a control character,
//! unbalanced or upper-case tags) returns `None` and goes through ammonia.
//!
//! Elements accepted, all in the sanitizer's allow-list and never carrying attributes here:
//!
//! - inline, anywhere: `b i em strong u s small sub sup code span mark abbr cite q kbd del ins
//!   time`, and the void `br`;
//! - blocks `p h1…h6 blockquote ul ol` and the void `hr`, only where every open element is a
//!   `blockquote`, `ul`, `ol` or `li` (so no open `p` or heading is ever closed implicitly);
//! - `li`, only directly inside `ul` or `ol`.
//!
//! Every end tag must close the current element and nothing may be left open: then the HTML5
//! rules for these elements (implied end tags, the adoption agency, active formatting
//! elements) never change the tree. The serializer escapes `&`, `<`, `>` and U+00A0 in text;
//! the fast path writes text the same way. The sanitizer's tests compare the two paths on
//! generated markup.

/// Open elements deeper than this are left to ammonia (no real feed nests this far).
const MAX_DEPTH: usize = 32;

/// How an accepted element may be placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Phrasing content: allowed anywhere.
    Inline,
    /// Void phrasing element (`br`): allowed anywhere, no end tag.
    InlineVoid,
    /// Block: only where every open element is a `blockquote`, `ul`, `ol` or `li`.
    Block,
    /// A block that holds `li` items.
    List,
    /// Void block (`hr`).
    BlockVoid,
    /// A list item: only directly inside a list.
    Item,
}

fn kind(name: &str) -> Option<Kind> {
    Some(match name {
        "b" | "i" | "em" | "strong" | "u" | "s" | "small" | "sub" | "sup" | "code" | "span"
        | "mark" | "abbr" | "cite" | "q" | "kbd" | "del" | "ins" | "time" => Kind::Inline,
        "br" => Kind::InlineVoid,
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" => Kind::Block,
        "ul" | "ol" => Kind::List,
        "hr" => Kind::BlockVoid,
        "li" => Kind::Item,
        _ => return None,
    })
}

/// The bytes written as they are: printable ASCII but `&`, `<` and `>`, and tab and newline
/// (a table: this test runs for every byte of every body).
const COPIED: [bool; 256] = {
    let mut table = [false; 256];
    let mut c = b' ';
    while c <= b'~' {
        table[c as usize] = !matches!(c, b'&' | b'<' | b'>');
        c += 1;
    }
    table[b'\t' as usize] = true;
    table[b'\n' as usize] = true;
    table
};

/// Character references the fast path decodes, and what the serializer writes for each.
const ENTITIES: &[(&str, &str)] = &[
    ("&amp;", "&amp;"),
    ("&lt;", "&lt;"),
    ("&gt;", "&gt;"),
    ("&quot;", "\""),
    ("&#39;", "'"),
    ("&#x27;", "'"),
    ("&apos;", "'"),
    ("&nbsp;", "&nbsp;"),
];

/// Ammonia's output for `html` when it is in the simple subset (see the module docs), else
/// `None`.
pub fn sanitize_simple(html: &str) -> Option<String> {
    let b = html.as_bytes();
    let mut out = String::with_capacity(html.len() + html.len() / 16);
    let mut open: Vec<&str> = Vec::new();
    let mut i = 0;
    // Start of the run of text not yet copied to `out`.
    let mut copied = 0;
    while i < b.len() {
        let c = b[i];
        if COPIED[usize::from(c)] {
            i += 1;
            continue;
        }
        out.push_str(&html[copied..i]);
        match c {
            b'<' => {
                let end = i + memchr(b'>', &b[i..])?;
                tag(&html[i + 1..end], &mut open, &mut out)?;
                i = end + 1;
            }
            b'&' => {
                let (entity, written) = ENTITIES
                    .iter()
                    .find(|(entity, _)| html[i..].starts_with(entity))?;
                out.push_str(written);
                i += entity.len();
            }
            b'>' => {
                out.push_str("&gt;");
                i += 1;
            }
            0x80.. => {
                let ch = html[i..].chars().next()?;
                match ch {
                    '\u{a0}' => out.push_str("&nbsp;"),
                    // C1 controls, the byte-order mark and noncharacters: the parser may
                    // report, drop or replace them; leave them to it.
                    '\u{80}'..='\u{9f}' | '\u{feff}' | '\u{fdd0}'..='\u{fdef}' => return None,
                    _ if (ch as u32) & 0xfffe == 0xfffe => return None,
                    _ => out.push(ch),
                }
                i += ch.len_utf8();
            }
            // Other ASCII controls (NUL, CR, form feed, DEL, ...).
            _ => return None,
        }
        copied = i;
    }
    out.push_str(&html[copied..]);
    open.is_empty().then_some(out)
}

/// Handles the tag whose text between `<` and `>` is `inner`; `None` if it is outside the
/// subset.
fn tag<'a>(inner: &'a str, open: &mut Vec<&'a str>, out: &mut String) -> Option<()> {
    if let Some(name) = inner.strip_prefix('/') {
        // An end tag closes the current element, which must be an accepted non-void one.
        if open.last() != Some(&name) {
            return None;
        }
        open.pop();
        out.push_str("</");
        out.push_str(name);
        out.push('>');
        return Some(());
    }
    let (name, self_closing) = match inner.strip_suffix('/') {
        Some(name) => (name.strip_suffix(' ').unwrap_or(name), true),
        None => (inner, false),
    };
    if !name
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    {
        return None;
    }
    let kind = kind(name)?;
    let in_containers = || {
        open.iter()
            .all(|e| matches!(*e, "blockquote" | "li" | "ul" | "ol"))
    };
    let allowed = match kind {
        Kind::Inline | Kind::InlineVoid => true,
        Kind::Block | Kind::List | Kind::BlockVoid => in_containers(),
        Kind::Item => matches!(open.last(), Some(&"ul" | &"ol")),
    };
    let void = matches!(kind, Kind::InlineVoid | Kind::BlockVoid);
    if !allowed || (self_closing && !void) || open.len() >= MAX_DEPTH {
        return None;
    }
    out.push('<');
    out.push_str(name);
    out.push('>');
    if !void {
        open.push(name);
    }
    Some(())
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&c| c == needle)
}
