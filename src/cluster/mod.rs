//! Near-duplicate story assignment: finds the story an edited copy of a wire story belongs to.
//!
//! Exact duplicates (same canonical URL or fingerprint) are resolved by the store's unique keys;
//! this module handles copies that differ in title, boilerplate, length or markup.

use chrono::{DateTime, Duration, Utc};

use crate::domain::{Entry, StoryId};

/// Tuning of the near-duplicate matcher.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Only stories first seen within this window of an entry's time are candidates.
    pub window: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            window: Duration::days(7),
        }
    }
}

/// Compact, persistable summary of an entry's text used for matching.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    bytes: Vec<u8>,
}

impl Signature {
    /// Computes the signature of an entry from its title and plain text.
    pub fn of(entry: &Entry) -> Signature {
        todo!("cluster helper: {}", entry.title)
    }

    /// Serialized form, stored with the entry so the index can be rebuilt at start-up.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.bytes.clone()
    }

    /// Parses a stored signature; `None` if the bytes are not a signature of this version.
    pub fn from_bytes(bytes: &[u8]) -> Option<Signature> {
        Some(Signature {
            bytes: bytes.to_vec(),
        })
    }
}

/// Why an entry was judged a copy of a story (shown by `tradefeed story`).
#[derive(Debug, Clone, PartialEq)]
pub struct MatchEvidence {
    /// The story matched.
    pub story: StoryId,
    /// Human-readable evidence, e.g. `text jaccard 0.83, title 0.71, shared numbers 5/5`.
    pub summary: String,
}

/// In-memory index of recent stories' signatures; lookups cost the same whatever its size.
#[derive(Debug)]
pub struct StoryIndex {
    config: ClusterConfig,
}

impl StoryIndex {
    /// An empty index.
    pub fn new(config: ClusterConfig) -> StoryIndex {
        StoryIndex { config }
    }

    /// Adds a story's appearance (its signature and time) as a match candidate.
    pub fn insert(&mut self, story: StoryId, signature: &Signature, seen: DateTime<Utc>) {
        todo!("cluster helper: {story} {signature:?} {seen} {:?}", self.config)
    }

    /// The story the entry is a near-duplicate of, if any, with the evidence.
    pub fn find(&self, signature: &Signature, seen: DateTime<Utc>) -> Option<MatchEvidence> {
        todo!("cluster helper: {signature:?} {seen}")
    }

    /// Drops candidates older than the window before `now` (keeps memory bounded).
    pub fn prune(&mut self, now: DateTime<Utc>) {
        todo!("cluster helper: {now}")
    }
}
