//! Topic scoring with explanations. Pure: text in, scores out.

use crate::domain::TopicScore;

/// Why a topic profile or model could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid profile; names file, line and key where known.
    #[error("{0}")]
    Invalid(String),
}

/// Every configured topic, ready to score stories.
#[derive(Debug, Clone)]
pub struct Classifier {}

impl Classifier {
    /// The built-in `trade-policy` topic only (used when no topics are configured).
    pub fn builtin() -> Classifier {
        todo!("classify helper")
    }

    /// Loads every `*.toml` profile in `dir` (the built-in topic if the dir has none).
    pub fn load(dir: &std::path::Path) -> Result<Classifier, ProfileError> {
        todo!("classify helper: {dir:?}")
    }

    /// Topic names, in a stable order.
    pub fn topic_names(&self) -> Vec<String> {
        todo!("classify helper")
    }

    /// A hash of every profile and model in force; stored stories are re-scored when it changes.
    pub fn fingerprint(&self) -> String {
        todo!("classify helper")
    }

    /// Scores a story's title and plain text against every topic.
    pub fn score(&self, title: &str, text: &str) -> Vec<TopicScore> {
        todo!("classify helper: {title} {text}")
    }
}
