//! Media an item carries beside its text: enclosures (a podcast's audio, a video, a PDF) and a
//! lead image, as readers show them under an item.

use serde::{Deserialize, Serialize};

/// Enclosures kept per entry (the first ones the feed lists, repeats dropped): a podcast has
/// one, a Media RSS item a few renditions; a hostile feed could list thousands.
pub const MAX_ENCLOSURES: usize = 8;

/// Longest enclosure or image URL kept (bytes); a longer one is dropped, as if absent.
pub const MAX_MEDIA_URL_LEN: usize = 2_048;

/// One media file attached to an item: RSS `<enclosure>`, an Atom `rel="enclosure"` link, a JSON
/// Feed attachment or a Media RSS `media:content`.
///
/// Its serde form (short keys, absent fields left out) is what `entries.media` stores: never
/// rename a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enclosure {
    /// Where the file is: an absolute http(s) URL once normalized (possibly relative as parsed).
    pub url: String,
    /// Its MIME type (`audio/mpeg`), lower-case, without parameters; `None` when the feed gave
    /// none or nothing shaped `type/subtype`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Its size in bytes, as the feed gave it; `None` when absent or no non-negative integer
    /// (and for 0, which podcast hosts write for "unknown").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// A title of its own (Atom link `title`, JSON Feed attachment `title`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// How long it plays, in whole seconds (Media RSS `duration`, `itunes:duration`, JSON Feed
    /// `duration_in_seconds`); `None` when absent or 0.
    #[serde(rename = "secs", default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,
}

impl Enclosure {
    /// Whether its type says it is an image.
    pub fn is_image(&self) -> bool {
        self.mime_type
            .as_deref()
            .is_some_and(|t| t.starts_with("image/"))
    }

    /// Whether its type says it is audio or video: what a podcast or video feed encloses.
    pub fn is_audio_or_video(&self) -> bool {
        self.mime_type
            .as_deref()
            .is_some_and(|t| t.starts_with("audio/") || t.starts_with("video/"))
    }
}

/// The media of one item: its enclosures, in the feed's order, and a lead image.
///
/// Empty for most items (no allocation then). Stored as compact JSON in `entries.media` (NULL
/// when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// Enclosures, at most [`MAX_ENCLOSURES`] once normalized, no URL twice.
    #[serde(rename = "enc", default, skip_serializing_if = "Vec::is_empty")]
    pub enclosures: Vec<Enclosure>,
    /// The item's lead image or thumbnail: the first kept of JSON Feed `image`, its
    /// `banner_image`, Media RSS `media:thumbnail` and the first image enclosure.
    #[serde(rename = "img", default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

impl Media {
    /// Whether there is neither an enclosure nor an image.
    pub fn is_empty(&self) -> bool {
        self.enclosures.is_empty() && self.image.is_none()
    }

    /// The enclosure a format that carries one alone (RSS 2.0) serves: the first audio or
    /// video one (what podcast and video readers play), else the first that is no image (a
    /// document), else the first.
    pub fn primary(&self) -> Option<&Enclosure> {
        self.enclosures
            .iter()
            .find(|e| e.is_audio_or_video())
            .or_else(|| self.enclosures.iter().find(|e| !e.is_image()))
            .or_else(|| self.enclosures.first())
    }

    /// Whether `other` has the same enclosures as the content hash reads them: each one's URL
    /// without its tracking parameters, and its type, in order (lengths, durations, titles
    /// and the image are no part of it: see `normalize::content_hashes_with_media`). What
    /// tells an item whose link and enclosure URLs are stamped with a campaign at every
    /// request from one whose enclosures changed.
    pub fn same_enclosures_as_hashed(&self, other: &Media) -> bool {
        self.enclosures.len() == other.enclosures.len()
            && self.enclosures.iter().zip(&other.enclosures).all(|(a, b)| {
                a.mime_type == b.mime_type
                    && super::without_tracking(&a.url) == super::without_tracking(&b.url)
            })
    }
}

/// `raw` as a MIME type when it has the shape `type/subtype` (RFC 6838 restricted names:
/// letters, digits and `!#$&-^_.+`, each at most 127 characters), lower-cased and without
/// parameters (`audio/mpeg; codecs=mp3` is `audio/mpeg`); `None` for anything else (`mp3`,
/// `audio/`, a URL, markup).
pub fn media_type(raw: &str) -> Option<String> {
    let essence = raw.split(';').next().unwrap_or("").trim();
    let (ty, sub) = essence.split_once('/')?;
    let name = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.as_bytes()[0].is_ascii_alphanumeric()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    (name(ty) && name(sub)).then(|| essence.to_ascii_lowercase())
}

/// The MIME type a media URL's file extension names (`…/3000.jpg?w=140` is `image/jpeg`), for
/// an enclosure whose feed gave none: the Guardian's `media:content` photos carry neither
/// `type` nor `medium`. `None` for an extension not in the short list of common web media
/// and documents.
pub fn media_type_of_path(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let file = path.rsplit('/').next().unwrap_or("");
    let (_, extension) = file.rsplit_once('.')?;
    Some(match extension.to_ascii_lowercase().as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "avif" => "image/avif",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/opus",
        "wav" => "audio/wav",
        "mp4" | "m4v" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "pdf" => "application/pdf",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_untyped_media_url_is_typed_by_its_extension() {
        let table = [
            (
                "https://i.guim.co.uk/img/media/ab/master/3000.jpg?w=140&q=55",
                Some("image/jpeg"),
            ),
            ("https://cdn.example/ep7.MP3", Some("audio/mpeg")),
            ("https://cdn.example/clip.webm#t=10", Some("video/webm")),
            ("https://cdn.example/notice.pdf", Some("application/pdf")),
            ("https://cdn.example/page.html", None),
            ("https://cdn.example/", None),
            ("https://cdn.example.jpg/file", None),
            ("https://cdn.example/a.jpg/", None),
        ];
        for (url, want) in table {
            assert_eq!(media_type_of_path(url), want, "{url}");
        }
    }

    #[test]
    fn mime_types_shaped_type_slash_subtype_are_kept_lower_case_without_parameters() {
        let table = [
            ("audio/mpeg", Some("audio/mpeg")),
            ("Audio/MPEG", Some("audio/mpeg")),
            (" video/mp4 ", Some("video/mp4")),
            ("audio/mpeg; codecs=mp3", Some("audio/mpeg")),
            (
                "application/vnd.apple.mpegurl",
                Some("application/vnd.apple.mpegurl"),
            ),
            ("image/svg+xml", Some("image/svg+xml")),
            ("mp3", None),
            ("audio/", None),
            ("/mpeg", None),
            ("audio/mpeg/x", None),
            ("audio mpeg/x", None),
            ("<b>audio/mpeg</b>", None),
            ("audio/\"mpeg\"", None),
            ("", None),
        ];
        for (raw, want) in table {
            assert_eq!(media_type(raw).as_deref(), want, "{raw:?}");
        }
        assert_eq!(media_type(&format!("audio/{}", "a".repeat(128))), None);
    }

    fn enclosure(url: &str, mime: Option<&str>) -> Enclosure {
        Enclosure {
            url: url.into(),
            mime_type: mime.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn the_primary_enclosure_is_audio_or_video_then_a_document_then_the_first() {
        let photo = enclosure("https://x.example/a.jpg", Some("image/jpeg"));
        let pdf = enclosure("https://x.example/a.pdf", Some("application/pdf"));
        let mp3 = enclosure("https://x.example/a.mp3", Some("audio/mpeg"));
        let untyped = enclosure("https://x.example/a", None);
        let media = |enclosures: Vec<Enclosure>| Media {
            enclosures,
            image: None,
        };
        let table = [
            (vec![photo.clone(), pdf.clone(), mp3.clone()], Some(&mp3)),
            (vec![photo.clone(), pdf.clone()], Some(&pdf)),
            (vec![photo.clone(), untyped.clone()], Some(&untyped)),
            (vec![photo.clone()], Some(&photo)),
            (vec![], None),
        ];
        for (enclosures, want) in table {
            let m = media(enclosures);
            assert_eq!(m.primary(), want, "{m:?}");
        }
    }

    #[test]
    fn the_stored_form_is_compact_and_reads_back() {
        let m = Media {
            enclosures: vec![Enclosure {
                url: "https://x.example/a.mp3".into(),
                mime_type: Some("audio/mpeg".into()),
                length: Some(123),
                title: None,
                duration: Some(61),
            }],
            image: Some("https://x.example/a.jpg".into()),
        };
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(
            json,
            r#"{"enc":[{"url":"https://x.example/a.mp3","type":"audio/mpeg","length":123,"secs":61}],"img":"https://x.example/a.jpg"}"#
        );
        assert_eq!(serde_json::from_str::<Media>(&json).unwrap(), m);
        assert_eq!(serde_json::to_string(&Media::default()).unwrap(), "{}");
    }
}
