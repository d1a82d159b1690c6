//! Links as readers follow them: what of a link only tracks where a click came from.

use std::borrow::Cow;

/// Query parameters that only track where a click came from; they never select content, so they
/// are dropped from canonical URLs (compared case-insensitively). Any key starting with one of
/// [`TRACKING_PREFIXES`] is dropped too.
pub const TRACKING_PARAMS: &[&str] = &[
    "fbclid",      // Facebook
    "gclid",       // Google Ads
    "dclid",       // Google Display
    "gbraid",      // Google Ads (iOS)
    "wbraid",      // Google Ads (web to app)
    "msclkid",     // Microsoft Ads
    "mc_cid",      // Mailchimp campaign
    "mc_eid",      // Mailchimp recipient
    "igshid",      // Instagram share
    "yclid",       // Yandex
    "_ga",         // Google Analytics cross-domain
    "_gl",         // Google Analytics linker
    "ref_src",     // Twitter/X
    "ref_url",     // Twitter/X
    "cmpid",       // campaign id (news sites)
    "_hsenc",      // HubSpot
    "_hsmi",       // HubSpot
    "mkt_tok",     // Marketo
    "oly_anon_id", // Omeda
    "oly_enc_id",  // Omeda
    "vero_id",     // Vero
    "wt.mc_id",    // Webtrends
    "wt_mc",       // Webtrends (heise and others)
    "ncid",        // news-site campaign id
    "ocid",        // Microsoft/MSN campaign id
    "s_cid",       // Adobe campaign id
    "at_medium",   // AT Internet
    "at_campaign", // AT Internet
    "sr_share",    // share widgets
];

/// Prefixes of tracking query parameters (`utm_source`, `utm_medium`, ...).
pub const TRACKING_PREFIXES: &[&str] = &["utm_"];

pub(crate) fn is_tracking(pair: &str) -> bool {
    let key = pair.split_once('=').map_or(pair, |(k, _)| k);
    TRACKING_PARAMS.iter().any(|t| t.eq_ignore_ascii_case(key))
        || TRACKING_PREFIXES.iter().any(|p| {
            // Bytes: a key need not have a char boundary where the prefix ends (`utmé`).
            key.as_bytes()
                .get(..p.len())
                .is_some_and(|k| k.eq_ignore_ascii_case(p.as_bytes()))
        })
}

/// `link` without its tracking query parameters ([`TRACKING_PARAMS`], [`TRACKING_PREFIXES`]),
/// every other byte kept as it was: the query's other parameters in their order and spelling,
/// the fragment, case, encoding. Unlike `normalize::canonical_url` it changes nothing else, so the link
/// still opens what the publisher linked to; a link with no such parameter is returned as is.
pub fn without_tracking(link: &str) -> Cow<'_, str> {
    let fragment_at = link.find('#').unwrap_or(link.len());
    let Some(query_at) = link[..fragment_at].find('?') else {
        return Cow::Borrowed(link);
    };
    let query = &link[query_at + 1..fragment_at];
    if !query.split('&').any(is_tracking) {
        return Cow::Borrowed(link);
    }
    let mut out = String::with_capacity(link.len());
    out.push_str(&link[..query_at]);
    for (i, pair) in query
        .split('&')
        .filter(|pair| !pair.is_empty() && !is_tracking(pair))
        .enumerate()
    {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(pair);
    }
    out.push_str(&link[fragment_at..]);
    Cow::Owned(out)
}

/// `url` without the `feed:` pseudo-scheme some readers and browsers export (`feed://host/rss`
/// for `http://host/rss`, `feed:https://host/rss` for `https://host/rss`); any other URL as it
/// is. The scheme is compared without case, as URL schemes are. Read the same way wherever a
/// feed's URL comes from a document: an OPML file's `xmlUrl`, a page's `<link rel="alternate">`.
pub fn without_feed_scheme(url: &str) -> Cow<'_, str> {
    let starts = |s: &str, prefix: &str| {
        s.get(..prefix.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    };
    if !starts(url, "feed:") {
        return url.into();
    }
    let rest = &url["feed:".len()..];
    if starts(rest, "http://") || starts(rest, "https://") {
        rest.into()
    } else if rest.starts_with("//") {
        format!("http:{rest}").into()
    } else {
        url.into()
    }
}

/// Why a URL an operator wrote (a source's `url`, `[server] base_url`, an OPML `xmlUrl`, the
/// argument of `tradefeed discover`) is not taken. Its message follows the URL as written:
/// `"http:///feed" has …`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpUrlError {
    /// Not a URL at all.
    #[error("is not a valid URL: {0}")]
    Invalid(#[from] url::ParseError),
    /// A URL, but neither http nor https.
    #[error("must be an http or https URL (scheme is {0:?})")]
    NotHttp(String),
    /// An http(s) URL the parser reads, but not written `scheme://host…`.
    #[error("{spelling} (it would be read as {read:?})")]
    Lenient {
        /// How it departs from `scheme://host…`.
        spelling: LenientSpelling,
        /// What the parser makes of it.
        read: String,
    },
}

/// How an http(s) URL is written other than `scheme://host…` while the `url` crate still reads
/// it (as a browser reads a typed address). Its message follows the URL as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LenientSpelling {
    /// A tab or line break, which URL parsing drops wherever it stands (`ht<TAB>tp://…`
    /// reads as `http://…`): a paste gone wrong, not part of an address.
    #[error("holds a tab or line break, which URL parsing drops")]
    TabOrLineBreak,
    /// Nothing between `//` and the next slash (`http:///feed`), or a backslash there: the
    /// parser looks past them for a host and takes the path's first segment (`http://feed/`).
    #[error("has no host between \"//\" and the next slash")]
    EmptyHost,
    /// `http:/feed`, `http:feed`, `http:\\feed`: no `//` after the scheme, so the parser takes
    /// what follows for the host. Holds the scheme with its colon as written, `http:`.
    #[error("must have \"//\" and the host after {0:?}")]
    NoSlashes(String),
}

/// The http(s) URL an operator wrote, parsed, when it is written `scheme://host…`.
///
/// The WHATWG rules the `url` crate follows read http and https URLs leniently, as browsers
/// read a typed address: `http:///y`, `http:/y`, `http:y` and `http:\\y` all become
/// `http://y/`. In a subscription list or on the command line such a URL is a typo, and the
/// feed polled would be another than the one meant, so it is refused with what it would have
/// been read as. (The config, which loaded such URLs before this rule, reads them as the
/// parser does with a warning: [`read_http_url`].) Spaces and control characters at the ends
/// are ignored, as the parser ignores them.
pub fn parse_http_url(text: &str) -> Result<url::Url, HttpUrlError> {
    match read_http_url(text)? {
        (url, None) => Ok(url),
        (url, Some(spelling)) => Err(HttpUrlError::Lenient {
            spelling,
            read: url.into(),
        }),
    }
}

/// An http(s) URL as the `url` crate reads it, with how it departs from `scheme://host…` when
/// it does (see [`parse_http_url`]); an error only for one that is not a URL or not http(s).
pub fn read_http_url(text: &str) -> Result<(url::Url, Option<LenientSpelling>), HttpUrlError> {
    let url = url::Url::parse(text)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(HttpUrlError::NotHttp(url.scheme().to_owned()));
    }
    let written = text.trim_matches(|c: char| c == ' ' || c.is_ascii_control());
    if written.contains(['\t', '\n', '\r']) {
        return Ok((url, Some(LenientSpelling::TabOrLineBreak)));
    }
    // With no tab or line break in it, the written URL starts with the scheme and its colon.
    let Some(scheme) = written
        .get(..=url.scheme().len())
        .filter(|s| s.ends_with(':'))
    else {
        let scheme = format!("{}:", url.scheme());
        return Ok((url, Some(LenientSpelling::NoSlashes(scheme))));
    };
    let spelling = match written[scheme.len()..].strip_prefix("//") {
        Some(authority) if authority.starts_with(['/', '\\']) => Some(LenientSpelling::EmptyHost),
        Some(_) => None,
        None => Some(LenientSpelling::NoSlashes(scheme.to_owned())),
    };
    Ok((url, spelling))
}

/// A URL as the log, warnings and served lists (`/sources.opml`, RSS `<source url>`) show it:
/// as URL parsing reads it (the fetcher's
/// reading, whatever the spelling: `http:u:p@host`, a tab or a line break anywhere, a space in
/// the password), without its user-info. Text that is no URL has the user-info of any URL in
/// it removed (see [`redact_userinfo`]).
pub fn url_for_display(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            // Both fail only for URLs that cannot have credentials, which have none to remove.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.into()
        }
        Err(_) => redact_userinfo(raw).into_owned(),
    }
}

/// `text` with the user-info (`user:password@`) of every URL in it removed, the rest kept as
/// it was: `connect failed: … (http://u:p@host/feed)` becomes `… (http://host/feed)`. A URL's
/// authority starts after `://`, or, after `http:` or `https:`, after any run of slashes and
/// backslashes (the config reads `http:\\host/feed` and `http:/host/feed` as URL parsing
/// does, so they carry credentials as well). It runs to the first `/`, `\`, `?`, `#`, white
/// space other than a tab (which URL parsing drops), quote or angle bracket, and its user-info
/// ends at the authority's last `@` (as WHATWG URL parsing reads it, so an unescaped `@` in a
/// password does not leave the rest of it behind).
pub fn redact_userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains('@') || !text.contains(':') {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    // What of `text` is in `out`, and where the search for the next URL goes on.
    let (mut copied, mut from) = (0, 0);
    while let Some(colon) = text[from..].find(':').map(|at| at + from) {
        let after = &text[colon + 1..];
        let slashes = after.len() - after.trim_start_matches(['/', '\\']).len();
        let scheme = text[..colon]
            .rsplit(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .next()
            .unwrap_or("");
        let is_url = after.starts_with("//")
            || (slashes > 0
                && (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")));
        if !is_url {
            from = colon + 1;
            continue;
        }
        let start = colon + 1 + slashes;
        let rest = &text[start..];
        let end = rest
            .find(|c: char| {
                matches!(c, '/' | '\\' | '?' | '#' | '"' | '\'' | '<' | '>' | '`')
                    || (c.is_whitespace() && c != '\t')
            })
            .unwrap_or(rest.len());
        if let Some(at) = rest[..end].rfind('@') {
            out.push_str(&text[copied..start]);
            copied = start + at + 1;
        }
        from = start + end;
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_written_scheme_slash_slash_host_are_taken_and_lenient_spellings_refused() {
        for ok in [
            "http://example.org/feed",
            "https://example.org",
            "HTTPS://Example.ORG:8443/a//b?x=1#f",
            "http://user:pw@example.org/",
            "http://127.0.0.1:8080/feed.xml",
            "http://[::1]/feed",
            "  https://example.org/feed \u{0}",
        ] {
            assert!(parse_http_url(ok).is_ok(), "{ok}");
        }
        use LenientSpelling::{EmptyHost, NoSlashes, TabOrLineBreak};
        let lenient: &[(&str, LenientSpelling, &str)] = &[
            ("http:///y", EmptyHost, "http://y/"),
            ("https:////y/z", EmptyHost, "https://y/z"),
            ("http://\\y", EmptyHost, "http://y/"),
            ("http:/y", NoSlashes("http:".into()), "http://y/"),
            ("HTTP:y/feed", NoSlashes("HTTP:".into()), "http://y/feed"),
            ("http:\\\\y", NoSlashes("http:".into()), "http://y/"),
            ("http:/\n/y", TabOrLineBreak, "http://y/"),
            ("ht\ttp://y/", TabOrLineBreak, "http://y/"),
        ];
        for (text, spelling, read) in lenient {
            let (url, got) = read_http_url(text).unwrap();
            assert_eq!(
                (url.as_str(), got.as_ref()),
                (*read, Some(spelling)),
                "{text:?}"
            );
            assert_eq!(
                parse_http_url(text),
                Err(HttpUrlError::Lenient {
                    spelling: spelling.clone(),
                    read: (*read).into()
                }),
                "{text:?}"
            );
        }
        let refused: &[(&str, HttpUrlError)] = &[
            ("ftp://example.org/f", HttpUrlError::NotHttp("ftp".into())),
            ("feed://example.org/f", HttpUrlError::NotHttp("feed".into())),
            ("http://", HttpUrlError::Invalid(url::ParseError::EmptyHost)),
            (
                "example.org/feed",
                HttpUrlError::Invalid(url::ParseError::RelativeUrlWithoutBase),
            ),
        ];
        for (text, error) in refused {
            assert_eq!(parse_http_url(text).as_ref(), Err(error), "{text:?}");
            assert_eq!(read_http_url(text).as_ref().err(), Some(error), "{text:?}");
        }
        assert_eq!(
            read_http_url("http://example.org/feed").unwrap().1,
            None,
            "written scheme://host"
        );
        assert_eq!(
            parse_http_url("http:///y").unwrap_err().to_string(),
            "has no host between \"//\" and the next slash (it would be read as \"http://y/\")"
        );
    }

    #[test]
    fn a_url_is_displayed_as_parsed_without_user_info_whatever_its_spelling() {
        let cases = [
            ("https://u:p@host/feed?a=1", "https://host/feed?a=1"),
            (
                "http:alice:s3cret@feeds.example/rss",
                "http://feeds.example/rss",
            ),
            ("http:\\\\u:p@host/f", "http://host/f"),
            ("http:/u:p@host/f", "http://host/f"),
            ("http://u\n:p@host/f", "http://host/f"),
            ("http://u:p\r@host/f", "http://host/f"),
            ("http:\t//u:p@host/f", "http://host/f"),
            ("ht\ttp:/u:p@host/f", "http://host/f"),
            ("http://alice:my pass@host/f", "http://host/f"),
            ("http://host/feed", "http://host/feed"),
            ("https://token@host:8443/a", "https://host:8443/a"),
            (
                "http:\\\\u:secret@127.0.0.1:18801/h7.json",
                "http://127.0.0.1:18801/h7.json",
            ),
            ("http://u\t:secret@host/f", "http://host/f"),
            ("not a url http://u:p@host", "not a url http://host"),
        ];
        for (raw, want) in cases {
            assert_eq!(url_for_display(raw), want, "{raw:?}");
        }
    }

    #[test]
    fn user_info_is_removed_from_every_url_in_a_text_and_the_rest_kept() {
        let cases = [
            ("http://host/feed", "http://host/feed"),
            ("http://user:secret@host/feed", "http://host/feed"),
            (
                "https://token@host:8443/a?b=c@d#e@f",
                "https://host:8443/a?b=c@d#e@f",
            ),
            ("http://u:p@ss@host/x", "http://host/x"),
            ("http://u:p%40ss@[::1]:80/", "http://[::1]:80/"),
            ("http://user:secret@host", "http://host"),
            (
                "connect failed: error sending request for url (http://u:s@127.0.0.1:1/f.xml)",
                "connect failed: error sending request for url (http://127.0.0.1:1/f.xml)",
            ),
            (
                "invalid url: \"http://u:s@h\": bad",
                "invalid url: \"http://h\": bad",
            ),
            ("(see http://u:s@host)", "(see http://host)"),
            (
                "two: http://a:1@x/ and https://b:2@y/ end",
                "two: http://x/ and https://y/ end",
            ),
            (
                "mail me@example.com, not a URL",
                "mail me@example.com, not a URL",
            ),
            (
                "http://host/ by me@example.com",
                "http://host/ by me@example.com",
            ),
            ("", ""),
            ("http://u:p@", "http://"),
            // The spellings the config reads with a warning.
            ("http:\\\\u:p@host/f", "http:\\\\host/f"),
            ("HTTPS:/u:p@host/f", "HTTPS:/host/f"),
            ("see http:\\u:p@host\\f", "see http:\\host\\f"),
            ("http://u\t:p@host/f", "http://host/f"),
            // Not a URL's authority: one slash after another scheme, a path's colon.
            ("note:/me@x", "note:/me@x"),
            ("http://host/a:/b@c", "http://host/a:/b@c"),
            ("ratio 3:1 by me@example.com", "ratio 3:1 by me@example.com"),
        ];
        for (text, want) in cases {
            assert_eq!(redact_userinfo(text), want, "{text:?}");
        }
        assert!(matches!(redact_userinfo("no URL here"), Cow::Borrowed(_)));
    }
}
