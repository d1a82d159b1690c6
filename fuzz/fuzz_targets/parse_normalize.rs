//! Arbitrary bytes through the parser, then every item through the normalizer and its HTML
//! through the sanitizer the output runs: none may panic, whatever a server sends. The first byte picks the declared content type, so the
//! header-driven paths (charset, JSON Feed) are reached too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tradefeed::normalize::{NormalizeContext, normalize_item, sanitize_html};
use tradefeed::parse::parse_feed;

const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/rss+xml"),
    Some("application/atom+xml; charset=utf-8"),
    Some("text/xml; charset=iso-8859-1"),
    Some("application/feed+json"),
    Some("application/json; charset=windows-1251"),
    Some("text/html"),
    Some("text/xml; charset=koi8-r"),
];

fuzz_target!(
    init: {
        // `parse_feed` turns a feed-rs/quick-xml panic into `ParseError::Crashed` (that is the
        // contract the daemon relies on). libfuzzer-sys's panic hook would abort on those
        // caught panics too, so replace it with a silent one: a panic that escapes
        // `parse_feed` or `normalize_item` still aborts (libfuzzer-sys aborts on any panic
        // reaching the target boundary) and is saved as a crash.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let content_type = CONTENT_TYPES[selector as usize % CONTENT_TYPES.len()];
    let Ok(feed) = parse_feed(body, content_type) else {
        return;
    };
    let fetched_at = chrono::DateTime::from_timestamp(1_795_000_000, 0).unwrap();
    let mut ctx = NormalizeContext::new(fetched_at, "http://fuzz.example/feed/");
    // Small caps so that cutting (and the sanitizer closing what a cut left open) is exercised.
    ctx.max_title_chars = 40;
    ctx.max_text_chars = 200;
    for item in &feed.items {
        // Entries keep their feed's HTML; the sanitizer runs when it is served.
        if let Ok(entry) = normalize_item(item, &ctx) {
            let _ = sanitize_html(&entry.html, &ctx.base_url);
        }
    }
    }
);
