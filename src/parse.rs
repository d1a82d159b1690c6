//! Feed parsing: the only user of feed-rs. Bytes in, `ParsedFeed` out.

use crate::domain::ParsedFeed;

/// Why a body is not a feed we can read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The bytes are not RSS, Atom or JSON Feed (e.g. an HTML page or garbage).
    #[error("not a feed: {0}")]
    NotAFeed(String),
    /// The feed is malformed beyond recovery.
    #[error("malformed feed: {0}")]
    Malformed(String),
    /// The parser panicked on hostile input; caught and reported.
    #[error("parser crashed on this input: {0}")]
    Crashed(String),
}

/// Parses RSS 0.9x/1.0/2.0, Atom 1.0 or JSON Feed bytes.
///
/// `content_type` is the HTTP Content-Type header (its charset is honoured when the document
/// declares none). Never panics: feed-rs panics are caught and returned as `ParseError::Crashed`.
pub fn parse_feed(bytes: &[u8], content_type: Option<&str>) -> Result<ParsedFeed, ParseError> {
    todo!("parse helper: {} bytes, {content_type:?}", bytes.len())
}
