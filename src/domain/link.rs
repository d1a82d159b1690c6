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
