//! Plain data shared by every pipeline stage. No IO, no crate of ours.

mod entry;
mod schedule;
mod source;
mod story;

pub use entry::{EarlierTitle, Entry, Headline, ParsedFeed, RawItem, XmlBase};
pub use schedule::{Schedule, ScheduleError};
pub use source::Source;
pub use story::{Appearance, CopyWeight, StoryId, TopicScore, representative_of};
