//! Link resolution and canonical URLs.

use url::Url;

use crate::domain::is_tracking;
pub use crate::domain::{TRACKING_PARAMS, TRACKING_PREFIXES, without_tracking};

/// Canonical form of an absolute http(s) URL (see [`super::canonical_url`]).
pub fn canonical_url(input: &str) -> Option<String> {
    canonical_of(Url::parse(input.trim()).ok()?)
}

/// [`canonical_url`] of an already parsed URL (a URL reparsed from its serialization is the
/// same URL, so this saves the parse).
pub fn canonical_of(mut url: Url) -> Option<String> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    // The url crate already lower-cases scheme and host, removes the default port and gives the
    // root path its "/"; what is left is the fragment and the query.
    url.set_fragment(None);
    if let Some(query) = url.query() {
        let mut pairs: Vec<&str> = query
            .split('&')
            .filter(|p| !p.is_empty() && !is_tracking(p))
            .collect();
        if pairs.is_empty() {
            url.set_query(None);
        } else {
            // Order carries no meaning for servers we care about; sorting makes copies equal.
            pairs.sort_unstable();
            let joined = pairs.join("&");
            url.set_query(Some(&joined));
        }
    }
    Some(url.into())
}

/// Resolves a possibly relative link against `base`; only http(s) results are kept.
pub fn resolve_link(link: &str, base: Option<&Url>) -> Option<String> {
    resolve_link_url(link, base).map(Url::into)
}

/// [`resolve_link`], keeping the parsed URL.
pub fn resolve_link_url(link: &str, base: Option<&Url>) -> Option<Url> {
    let link = link.trim();
    if link.is_empty() {
        return None;
    }
    let url = match base {
        Some(base) => base.join(link).ok()?,
        None => Url::parse(link).ok()?,
    };
    matches!(url.scheme(), "http" | "https").then_some(url)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_url_strips_what_does_not_identify_the_page() {
        let cases = [
            ("HTTPS://Example.ORG/News", Some("https://example.org/News")),
            ("http://example.org:80/a", Some("http://example.org/a")),
            ("https://example.org:443/a", Some("https://example.org/a")),
            (
                "https://example.org:8443/a",
                Some("https://example.org:8443/a"),
            ),
            (
                "https://example.org/a#section-2",
                Some("https://example.org/a"),
            ),
            ("https://example.org", Some("https://example.org/")),
            ("https://example.org/a/", Some("https://example.org/a/")),
            ("https://example.org/a?", Some("https://example.org/a")),
            (
                "https://example.org/a?utm_source=rss&utm_Medium=feed&id=7",
                Some("https://example.org/a?id=7"),
            ),
            (
                "https://example.org/a?fbclid=x&gclid=y&dclid=z&msclkid=1&mc_cid=2&mc_eid=3",
                Some("https://example.org/a"),
            ),
            (
                "https://example.org/a?igshid=1&yclid=2&_ga=3&ref_src=4&cmpid=5&UTM_CAMPAIGN=6",
                Some("https://example.org/a"),
            ),
            (
                "https://example.org/a?b=2&a=1",
                Some("https://example.org/a?a=1&b=2"),
            ),
            (
                "https://example.org/a?b=2&&a=1&",
                Some("https://example.org/a?a=1&b=2"),
            ),
            (
                "https://example.org/a?utm=keep",
                Some("https://example.org/a?utm=keep"),
            ),
            ("  https://example.org/a  ", Some("https://example.org/a")),
            ("ftp://example.org/a", None),
            ("javascript:alert(1)", None),
            ("mailto:desk@example.org", None),
            ("/relative/path", None),
            ("not a url", None),
            ("", None),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical_url(input).as_deref(), expected, "input {input:?}");
        }
    }

    #[test]
    fn tracking_parameters_leave_a_link_and_nothing_else_changes() {
        let cases = [
            ("https://example.org/a", "https://example.org/a"),
            ("https://example.org/a?id=7", "https://example.org/a?id=7"),
            (
                "https://Example.org/A?utm_source=rss&B=2&utm_Medium=feed&a=1#Top",
                "https://Example.org/A?B=2&a=1#Top",
            ),
            (
                "https://example.org/a?utm_source=rss",
                "https://example.org/a",
            ),
            (
                "https://example.org/a?fbclid=x#frag?utm_source=y",
                "https://example.org/a#frag?utm_source=y",
            ),
            (
                "https://example.org/a?q=caf%C3%A9&gclid=1&&x",
                "https://example.org/a?q=caf%C3%A9&x",
            ),
            (
                "https://example.org/a?utm=keep",
                "https://example.org/a?utm=keep",
            ),
            ("https://example.org/a?", "https://example.org/a?"),
            ("not a url ?utm_x=1", "not a url "),
            (
                "https://example.org/a?utm\u{e9}=1&ut\u{e9}=2",
                "https://example.org/a?utm\u{e9}=1&ut\u{e9}=2",
            ),
            (
                "https://example.org/a?\u{e9}=1&utm_x",
                "https://example.org/a?\u{e9}=1",
            ),
        ];
        for (link, want) in cases {
            assert_eq!(without_tracking(link), want, "{link}");
        }
        assert!(matches!(
            without_tracking("https://example.org/a?id=7"),
            Cow::Borrowed(_)
        ));
    }

    proptest::proptest! {
        /// What is left of a link has the canonical URL the link had: only parameters the
        /// canonical form drops anyway go.
        #[test]
        fn a_link_without_tracking_has_the_same_canonical_url(
            path in "/[a-z]{0,6}",
            pairs in proptest::collection::vec(
                proptest::sample::select(vec![
                    "utm_source=rss", "id=7", "fbclid=abc", "B=2", "x", "UTM_Campaign=q", "gclid=",
                ]),
                0..5,
            ),
            fragment in proptest::option::of("[a-z]{0,4}"),
        ) {
            let mut link = format!("https://example.org{path}");
            if !pairs.is_empty() {
                link.push('?');
                link.push_str(&pairs.join("&"));
            }
            if let Some(f) = fragment {
                link.push('#');
                link.push_str(&f);
            }
            let kept = without_tracking(&link);
            proptest::prop_assert_eq!(canonical_url(&kept), canonical_url(&link));
            proptest::prop_assert!(!kept.to_ascii_lowercase().contains("utm_"));
        }
    }

    #[test]
    fn resolve_link_makes_relative_links_absolute() {
        let base = Url::parse("https://trade.example.org/news/feed.xml").ok();
        let cases = [
            (
                "/2026/tariffs",
                Some("https://trade.example.org/2026/tariffs"),
            ),
            (
                "item?id=3",
                Some("https://trade.example.org/news/item?id=3"),
            ),
            ("//cdn.example.org/a", Some("https://cdn.example.org/a")),
            ("https://other.example/x", Some("https://other.example/x")),
            ("javascript:alert(1)", None),
            ("   ", None),
        ];
        for (input, expected) in cases {
            assert_eq!(resolve_link(input, base.as_ref()).as_deref(), expected);
        }
        assert_eq!(resolve_link("/relative", None), None);
    }

    proptest! {
        #[test]
        fn canonical_of_a_resolved_link_equals_canonical_url_of_its_text(
            link in "[a-zA-Z0-9/._~%?&=#:-]{0,40}",
        ) {
            let base = Url::parse("https://Trade.Example.org:443/news/feed.xml").ok();
            if let Some(url) = resolve_link_url(&link, base.as_ref()) {
                let text = url.to_string();
                prop_assert_eq!(canonical_of(url), canonical_url(&text));
            }
        }

        #[test]
        fn canonical_url_never_panics_on_arbitrary_strings(s in ".*") {
            let _ = canonical_url(&s);
        }

        #[test]
        fn canonical_url_is_idempotent(
            path in "[a-zA-Z0-9/._~%-]{0,20}",
            query in "[a-zA-Z0-9=&_%+. -]{0,30}",
            frag in "[a-z]{0,5}",
        ) {
            let input = format!("https://Example.org/{path}?{query}#{frag}");
            if let Some(once) = canonical_url(&input) {
                prop_assert_eq!(canonical_url(&once), Some(once.clone()));
            }
        }

        #[test]
        fn canonical_url_is_idempotent_on_arbitrary_input(s in "https?://[ -~]{0,40}") {
            if let Some(once) = canonical_url(&s) {
                prop_assert_eq!(canonical_url(&once), Some(once.clone()));
            }
        }
    }
}
