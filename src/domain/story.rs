use chrono::{DateTime, Utc};

/// Database id of a story. Never reused, never changed once assigned.
pub type StoryId = i64;

/// One source's copy of a story.
#[derive(Debug, Clone, PartialEq)]
pub struct Appearance {
    /// Source name.
    pub source: String,
    /// The URL of the source's feed, as configured (user-info included: redact it to serve).
    pub feed_url: String,
    /// The entry's link.
    pub url: Option<String>,
    /// The entry's title as that source ran it.
    pub title: String,
    /// When tradefeed first saw this copy.
    pub first_seen: DateTime<Utc>,
    /// Why the entry joined the story (`first`, `url`, `fingerprint`, or near-duplicate evidence).
    pub evidence: String,
}

/// How well a story fits a topic, with the features that drove the score.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicScore {
    /// Topic name (e.g. `trade-policy`).
    pub topic: String,
    /// Score in [0, 1].
    pub score: f32,
    /// Whether the score passes the topic's threshold.
    pub matched: bool,
    /// The few features that drove the score, most important first.
    pub why: Vec<String>,
}
