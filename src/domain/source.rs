use super::Schedule;

/// One configured news source, after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Unique, operator-chosen name; the key everything else hangs off.
    pub name: String,
    /// The feed URL (http or https).
    pub url: String,
    /// When the source is polled.
    pub schedule: Schedule,
    /// Disabled sources are kept (with their stories) but never polled.
    pub enabled: bool,
    /// Free-form labels for OPML: `export-opml` groups by the first, `import-opml` makes
    /// folders into tags. Not stored in the database.
    pub tags: Vec<String>,
    /// Higher priority wins when choosing which appearance represents a story.
    pub priority: i32,
    /// `false` opts the source out of near-duplicate clustering (exact dedup still applies).
    pub cluster: bool,
    /// `true` lets the redirects of a source on a public address lead to private, loopback and
    /// other non-public addresses, which are refused otherwise. Not stored in the database.
    pub allow_private_redirects: bool,
}
