//! Removing credentials from what is served. A source URL may carry user-info
//! (`http://user:secret@host/feed`, which `import-opml` accepts); the OPML list, the status
//! page, error texts that quote the URL, and links resolved against the feed's URL would
//! otherwise publish it. Tokens in a query string cannot be told from ordinary parameters and
//! are served as they are (the README says so).

use std::borrow::Cow;

pub use crate::domain::redact_userinfo;
use crate::store::StoryView;

/// [`redact_userinfo`] in place.
pub(super) fn redact_in_place(text: &mut String) {
    if let Cow::Owned(redacted) = redact_userinfo(text) {
        *text = redacted;
    }
}

/// Makes a story ready to be rendered: its link (another copy's when its representative has
/// none), its media typed, its authors as served (see
/// [`crate::normalize::served_author`]), and user-info removed from its URLs: its link, its
/// enclosures' and image's, and its
/// appearances' links (resolved at ingest against the feed's URL, so a relative link of a feed
/// fetched with credentials carries them) and the URL its HTML's relative links are resolved
/// against at render time. The links a reader follows (the story's and its appearances') also
/// lose their tracking parameters (`utm_*`, `fbclid`, …: see
/// [`crate::normalize::without_tracking`]), which tell the publisher where a click came from
/// and select nothing.
pub(super) fn redact_story(story: &mut StoryView) {
    // A representative without a link (its feed gave none, or one no reader could follow,
    // such as `javascript:`) leaves the story linked by another outlet's copy, the first seen
    // that has one: readers click through to the story either way.
    if story.link.is_none() {
        story.link = story.appearances.iter().find_map(|a| a.url.clone());
    }
    // Media as readers need it (served so, not stored so: the type is hashed, and a stored
    // item must not look edited): an untyped enclosure typed by its extension, so that a
    // photo is no download of `application/octet-stream`; no duration on an image (feed-rs
    // gives an item's `itunes:duration` to its cover too); and for a story without a lead
    // image, its first image enclosure.
    for enclosure in &mut story.media.enclosures {
        if enclosure.mime_type.is_none() {
            enclosure.mime_type =
                crate::domain::media_type_of_path(&enclosure.url).map(str::to_owned);
        }
        if enclosure.is_image() {
            enclosure.duration = None;
        }
    }
    if story.media.image.is_none() {
        story.media.image = story
            .media
            .enclosures
            .iter()
            .find(|e| e.is_image())
            .map(|e| e.url.clone());
    }
    if let Some(link) = &mut story.link {
        redact_in_place(link);
        untrack_in_place(link);
    }
    redact_in_place(&mut story.base_url);
    // `email (Name)` authors as their name (see `normalize::served_author`).
    if story
        .authors
        .iter()
        .any(|a| crate::normalize::served_author(a).len() != a.len())
    {
        let mut served: Vec<String> = Vec::with_capacity(story.authors.len());
        for author in &story.authors {
            let name = crate::normalize::served_author(author);
            if !name.is_empty() && !served.iter().any(|s| s == name) {
                served.push(name.to_owned());
            }
        }
        story.authors = served;
    }
    // Enclosures and the image are links a reader's client follows too (a podcast app
    // downloads every episode): served the same way.
    for enclosure in &mut story.media.enclosures {
        redact_in_place(&mut enclosure.url);
        untrack_in_place(&mut enclosure.url);
    }
    if let Some(image) = &mut story.media.image {
        redact_in_place(image);
        untrack_in_place(image);
    }
    for appearance in &mut story.appearances {
        if let Some(url) = &mut appearance.url {
            redact_in_place(url);
            untrack_in_place(url);
        }
    }
}

/// [`crate::normalize::without_tracking`] in place.
fn untrack_in_place(link: &mut String) {
    if let Cow::Owned(kept) = crate::normalize::without_tracking(link) {
        *link = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_story_whose_representative_has_no_link_takes_the_first_copys_that_has_one() {
        use crate::domain::Appearance;
        let appearance = |source: &str, url: Option<&str>| Appearance {
            source: source.into(),
            feed_url: format!("https://{source}.example/feed"),
            url: url.map(str::to_owned),
            title: "t".into(),
            first_seen: Default::default(),
            evidence: "first".into(),
        };
        let mut story = StoryView {
            id: 1,
            title: "t".into(),
            link: None,
            html: String::new(),
            base_url: String::new(),
            text: String::new(),
            authors: Vec::new(),
            media: Default::default(),
            published: Default::default(),
            updated: Default::default(),
            first_seen: Default::default(),
            appearances: vec![
                appearance("wire", None),
                appearance("paper", Some("https://u:p@paper.example/a?utm_source=rss")),
                appearance("other", Some("https://other.example/b")),
            ],
            topics: Vec::new(),
        };
        redact_story(&mut story);
        assert_eq!(story.link.as_deref(), Some("https://paper.example/a"));
        // A story with a link keeps it.
        story.link = Some("https://wire.example/c".into());
        redact_story(&mut story);
        assert_eq!(story.link.as_deref(), Some("https://wire.example/c"));
    }

    #[test]
    fn untyped_media_are_typed_by_extension_and_images_lose_durations_and_lead() {
        use crate::domain::{Enclosure, Media};
        let enclosure = |url: &str, mime: Option<&str>, duration: Option<u64>| Enclosure {
            url: url.into(),
            mime_type: mime.map(str::to_owned),
            length: None,
            title: None,
            duration,
        };
        let mut story = StoryView {
            id: 1,
            title: "t".into(),
            link: Some("https://x.example/a".into()),
            html: String::new(),
            base_url: String::new(),
            text: String::new(),
            authors: Vec::new(),
            media: Media {
                enclosures: vec![
                    enclosure("https://cdn.example/ep.mp3", Some("audio/mpeg"), Some(312)),
                    enclosure(
                        "https://cdn.example/cover.jpg?size=Large",
                        Some("image/jpeg"),
                        Some(312),
                    ),
                    enclosure("https://i.example/master/3000.jpg?w=140", None, None),
                    enclosure("https://cdn.example/file", None, None),
                ],
                image: None,
            },
            published: Default::default(),
            updated: Default::default(),
            first_seen: Default::default(),
            appearances: Vec::new(),
            topics: Vec::new(),
        };
        redact_story(&mut story);
        let got: Vec<(Option<&str>, Option<u64>)> = story
            .media
            .enclosures
            .iter()
            .map(|e| (e.mime_type.as_deref(), e.duration))
            .collect();
        assert_eq!(
            got,
            [
                (Some("audio/mpeg"), Some(312)),
                (Some("image/jpeg"), None),
                (Some("image/jpeg"), None),
                (None, None),
            ]
        );
        assert_eq!(
            story.media.image.as_deref(),
            Some("https://cdn.example/cover.jpg?size=Large")
        );
    }
}
