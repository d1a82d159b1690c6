//! Turning a raw item into a clean `Entry`: text, URLs, dates, identity and fingerprints.

use chrono::{DateTime, Duration, Utc};

use crate::domain::{Entry, RawItem};

/// Limits and context for normalizing the items of one fetch.
#[derive(Debug, Clone)]
pub struct NormalizeContext {
    /// When the feed was fetched: the default for missing dates and the clamp for future ones.
    pub fetched_at: DateTime<Utc>,
    /// Base URL for relative links (the feed's final URL).
    pub base_url: String,
    /// Allowed clock skew before a future date is clamped to `fetched_at`.
    pub max_future_skew: Duration,
    /// Titles longer than this (in chars) are cut.
    pub max_title_chars: usize,
    /// Texts and HTML longer than this (in chars) are cut.
    pub max_text_chars: usize,
}

impl NormalizeContext {
    /// A context with default limits (10 min skew, 1,000-char titles, 100,000-char texts).
    pub fn new(fetched_at: DateTime<Utc>, base_url: impl Into<String>) -> Self {
        NormalizeContext {
            fetched_at,
            base_url: base_url.into(),
            max_future_skew: Duration::minutes(10),
            max_title_chars: 1_000,
            max_text_chars: 100_000,
        }
    }
}

/// Why an item was not turned into an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    /// No guid, no link, no title and no text: nothing to identify it by.
    #[error("item has no id, link, title or text")]
    Unidentifiable,
}

/// Normalizes one raw item. See the module docs for the identity fallback chain.
pub fn normalize_item(item: &RawItem, ctx: &NormalizeContext) -> Result<Entry, SkipReason> {
    todo!("normalize helper: {item:?} {ctx:?}")
}

/// Canonical form of an absolute URL: lower-case scheme and host, default port and fragment
/// removed, tracking parameters (`utm_*`, `fbclid`, `gclid`, ...) dropped. `None` if unparsable.
pub fn canonical_url(url: &str) -> Option<String> {
    todo!("normalize helper: {url}")
}

/// Plain text of an HTML fragment: tags removed, entities decoded, whitespace folded.
pub fn html_to_text(html: &str) -> String {
    todo!("normalize helper: {html}")
}

/// Allow-list sanitizing of an HTML fragment for output (no script, handlers, js/data URLs,
/// iframes, style attributes); relative URLs resolved against `base_url`.
pub fn sanitize_html(html: &str, base_url: &str) -> String {
    todo!("normalize helper: {html} {base_url}")
}
