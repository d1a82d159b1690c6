//! Plain data shared by every pipeline stage. No IO, no crate of ours.

mod entry;
mod link;
mod media;
mod publisher;
mod schedule;
mod source;
mod story;

pub use entry::{EarlierTitle, Entry, Headline, ParsedFeed, RawItem, XmlBase};
pub(crate) use link::is_tracking;
pub use link::{
    HttpUrlError, LenientSpelling, TRACKING_PARAMS, TRACKING_PREFIXES, parse_http_url,
    read_http_url, redact_userinfo, url_for_display, without_feed_scheme, without_tracking,
};
pub use media::{
    Enclosure, MAX_ENCLOSURES, MAX_MEDIA_URL_LEN, Media, media_type, media_type_of_path,
};
pub use publisher::{
    MAX_PUBLISHER_WORDS, SUFFIX_SEPARATORS, last_separator, reads_as_a_name,
    without_named_publisher,
};
pub use schedule::{Schedule, ScheduleError};
pub use source::Source;
pub use story::{Appearance, CopyWeight, StoryId, TopicScore, representative_of};
