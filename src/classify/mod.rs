//! Topic scoring with explanations. Pure: text in, scores out.
//!
//! # How a story is scored
//!
//! Each topic is a *profile* (`config/topics/NAME.toml`) that combines two kinds of evidence
//! into one log-odds value, turned into a score in [0, 1] by the logistic function:
//!
//! ```text
//! logit = bias + model_weight · (model log-odds − logit(model threshold))
//!         + Σ positive phrase weights present − the strongest negative phrase weight present
//! score = σ(logit)        matched = score ≥ threshold
//! ```
//!
//! The model's log-odds are centred on its own cross-validated threshold, so with `bias = 0`,
//! `threshold = 0.5` and no phrase present a profile decides exactly as its model would, and a
//! phrase weight reads as "how far this evidence moves the decision" whatever model is plugged
//! in. (A bare model used with `eval --model` is not centred: its scores are its own
//! probabilities and its threshold is the cross-validated one.)
//!
//! - **A learned linear model** ([`Model`], optional): an L2-regularized linear SVM (squared
//!   hinge) over stemmed unigrams, adjacent-stem bigrams and `title:` unigrams; sublinear
//!   tf × idf, L2-normalized; its margin Platt-calibrated to log-odds (details, the training
//!   procedure and how it was chosen in the `model` module). It learns the
//!   vocabulary of a topic from labelled examples and generalizes to wordings no one listed
//!   ("Beijing curbs gallium exports" never says "trade").
//! - **Hand-written phrases** (`[positive]` / `[negative]` tables): prior knowledge an operator
//!   can read and tune without retraining: strong positive terms ("anti-dumping", "section 301",
//!   "rules of origin") and the negative contexts where "trade" means something else
//!   ("insider trading", "trade deadline", "trade show"). Each phrase counts once if present in
//!   the title or text (matched on stems, stopwords included, so "traded to the" works).
//!   Positive phrases add up; of the negative ones present only the strongest counts: they
//!   say that "trade" is used in another sense or the story is about something else, and a
//!   wire story's one market paragraph can hold three of them.
//!   A profile without a model is phrases only and works the same way.
//!
//! Why both: a model trained on a few hundred examples has seen only some of the ways a topic
//! is written, and a phrase list alone cannot weigh context; together the phrases carry
//! vocabulary the training set lacks and the model handles the long tail and the context.
//!
//! Every score carries `why`: the few features with the largest |contribution|, e.g.
//! `"anti-dumping" +2.50` (a phrase), `title:"tariff" +0.91` or `text:"export control" +0.40`
//! (model features, shown as stems).
//!
//! Scoring is one pass without regex or per-token allocation: words are sliced from the text,
//! looked up in a per-thread stem cache, hashed into features, counted in a reused table and
//! looked up once each in the model. Measured ≈ 39,000 stories of ~300 words per CPU-second on
//! one core (`cargo bench --bench classify`).
//!
//! # The shipped `trade-policy` topic
//!
//! `config/topics/trade-policy.toml` and `config/topics/trade-policy.model` are embedded in the
//! binary ([`Classifier::builtin`]). The model is trained only on text this project wrote:
//! `tests/data/trade_train.jsonl` (991 short modern items, 438 on topic, with many hard
//! negatives: stock, commodity and crypto trading, sports trades, trade shows, skilled trades,
//! insider trading, earnings, central banks, domestic tax, utility tariffs, non-trade
//! sanctions, the Federal Trade Commission, and international news full of country names
//! that is not about trade: security, diplomacy, visas, cyber attacks, flights, elections,
//! migration, health, space). Three further sets were never trained on:
//! `tests/data/trade_dev.jsonl` (161 items, the development set),
//! `tests/data/trade_holdout.jsonl` (50 items, written and scored once after the model and
//! profile were final) and `tests/data/trade_blind.jsonl` (178 items written blind to the
//! training data and the code, those reporting an event a training item reports removed;
//! scored before and after the retrain that came with it). To reproduce the shipped model
//! byte for byte:
//!
//! ```text
//! tradefeed train --labels tests/data/trade_train.jsonl --out config/topics/trade-policy.model
//! ```
//!
//! which is [`train`] with [`TrainOptions::default`] followed by [`Model::save`]. Without the
//! CLI: `TRADEFEED_WRITE_MODEL=1 cargo test --lib classify::tests::shipped_model` rewrites the
//! file, and the same test without the variable checks that the committed file is what the
//! training set gives.
//!
//! # Profile format
//!
//! ```toml
//! name = "trade-policy"          # [a-z0-9-]+, used in /feeds/{name}.atom; not "all"
//! description = "…"
//! threshold = 0.5                # optional, default 0.5
//! model = "trade-policy.model"   # optional, relative to this file
//! model_weight = 1.0             # optional, default 1
//! bias = 0.0                     # optional: default 0 with a model, -2 without
//! [positive]
//! "anti-dumping" = 2.5
//! [negative]
//! "insider trading" = 3.0        # magnitudes; the strongest present is subtracted
//! ```

mod eval;
mod model;
mod table;
mod text;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use xxhash_rust::xxh3::Xxh3Default;

use crate::domain::TopicScore;

pub use eval::{EvalReport, Labelled, evaluate_model, evaluate_topic, parse_labels, read_labels};
pub use model::{Loss, Model, TrainOptions, Validation, best_threshold, sigmoid, train, validate};
pub use text::stem_hash_of_word;
pub use text::{FeatureSettings, stems_cached_on_this_thread, strip_html};

use text::{FeatureMap, Scratch, Token};

/// The embedded default profile.
const BUILTIN_PROFILE: &str = include_str!("../../config/topics/trade-policy.toml");
/// The embedded default model, named by the profile as `trade-policy.model`.
const BUILTIN_MODEL: &str = include_str!("../../config/topics/trade-policy.model");
/// How many features `why` lists at most.
const WHY_LEN: usize = 5;
/// Contributions smaller than this are not worth listing in `why`.
const WHY_MIN: f32 = 0.01;
/// Size of a topic's phrase prefilter (a power of two; 512 bytes).
const PHRASE_FILTER_BITS: u64 = 4096;

/// The phrase prefilter for these first stems (see `Topic::phrase_filter`).
fn phrase_filter(first_stems: impl Iterator<Item = u64>) -> Vec<u64> {
    let mut bits = vec![0u64; (PHRASE_FILTER_BITS / 64) as usize];
    for stem in first_stems {
        let bit = stem % PHRASE_FILTER_BITS;
        bits[(bit / 64) as usize] |= 1 << (bit % 64);
    }
    bits
}

/// A profile's TOML error as one line, `FILE:LINE:COLUMN: message`: the parser's own text
/// quotes the line with a caret under it, several lines that a fatal error (said as one
/// line) and a log record (one journald line) must not hold (review, session 28).
fn toml_error(origin: &str, source: &str, error: &toml::de::Error) -> ProfileError {
    let message = error
        .message()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let Some(at) = error.span().map(|span| span.start.min(source.len())) else {
        return ProfileError::Invalid(format!("{origin}: {message}"));
    };
    let before = &source.as_bytes()[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    ProfileError::Invalid(format!("{origin}:{line}:{column}: {message}"))
}

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
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a valid profile; names file, line and key where known.
    #[error("{0}")]
    Invalid(String),
}

/// The TOML mirror of a profile file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    description: String,
    threshold: Option<f32>,
    model: Option<String>,
    model_weight: Option<f32>,
    bias: Option<f32>,
    #[serde(default)]
    positive: BTreeMap<String, f32>,
    #[serde(default)]
    negative: BTreeMap<String, f32>,
}

/// A profile phrase: its stems and its signed weight.
#[derive(Debug, Clone)]
struct Phrase {
    text: String,
    stems: Vec<u64>,
    weight: f32,
}

/// One topic: phrases, optional model, bias, blend weight and threshold.
#[derive(Debug, Clone)]
pub struct Topic {
    name: String,
    description: String,
    threshold: f32,
    bias: f32,
    model_weight: f32,
    phrases: Vec<Phrase>,
    /// First stem → indices into `phrases`.
    phrase_index: FeatureMap<Vec<usize>>,
    /// A bitset of [`PHRASE_FILTER_BITS`] bits with the bit `stem % PHRASE_FILTER_BITS` set for
    /// every phrase's first stem: most tokens start no phrase, and one bit test rules them out
    /// without a hash-map lookup.
    phrase_filter: Vec<u64>,
    model: Option<Arc<Model>>,
    /// Subtracted from the model's log-odds (see the module docs).
    center: f32,
    /// Hash of the profile and model text, for [`Classifier::fingerprint`].
    digest: u64,
}

/// A `why` entry's name: a profile phrase or a model feature.
enum Label<'a> {
    Phrase(&'a str),
    Feature(&'a str),
}

impl Label<'_> {
    /// One `why` line: the label and its contribution, e.g. `title:"tariff" +0.42`.
    fn why_line(&self, contribution: f32) -> String {
        let (prefix, quoted) = match self {
            Label::Phrase(text) => ("", *text),
            Label::Feature(name) => match name.strip_prefix("title:") {
                Some(rest) => ("title:", rest),
                None => ("text:", *name),
            },
        };
        let mut line = String::with_capacity(prefix.len() + quoted.len() + 10);
        line.push_str(prefix);
        line.push('"');
        line.push_str(quoted);
        line.push_str("\" ");
        push_signed_hundredths(&mut line, contribution);
        line
    }
}

/// Appends `format!("{v:+.2}")`. Every scored story lists up to five of these, and the
/// formatter's exact float-to-decimal conversion was most of the cost: here `v × 100` is exact
/// in `f64` (24 + 7 bits of mantissa), so rounding it to an integer gives the same digits,
/// except at an exact tie (e.g. 0.125), which is left to the formatter with the other
/// unusual values.
fn push_signed_hundredths(out: &mut String, v: f32) {
    let scaled = f64::from(v) * 100.0;
    if !scaled.is_finite() || scaled.abs() >= 1e15 || (scaled - scaled.trunc()).abs() == 0.5 {
        let _ = write!(out, "{v:+.2}");
        return;
    }
    let hundredths = scaled.abs().round() as u64;
    out.push(if v.is_sign_negative() { '-' } else { '+' });
    let _ = write!(out, "{}.{:02}", hundredths / 100, hundredths % 100);
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Drops what scoring keeps per thread (the stem cache, up to 1 MiB, and the scratch
/// buffers), and the stems the threads share (up to 1.3 MiB). A CPU worker's own go with its
/// thread when it ends; a thread that lives as long as the daemon and scores now and then,
/// such as the store's writer, calls this when idle.
pub fn release_thread_caches() {
    text::release_stem_cache();
    SCRATCH.with(|scratch| *scratch.borrow_mut() = Scratch::default());
}

impl Topic {
    /// Parses a profile's TOML; `resolve_model` reads the model file a profile names.
    fn from_toml(
        source: &str,
        origin: &str,
        resolve_model: impl Fn(&str) -> Result<(String, String), ProfileError>,
    ) -> Result<Topic, ProfileError> {
        let raw: RawProfile = toml::from_str(source).map_err(|e| toml_error(origin, source, &e))?;
        let invalid = |what: String| ProfileError::Invalid(format!("{origin}: {what}"));
        if raw.name.is_empty()
            || !raw
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid(format!(
                "name `{}`: use lower-case letters, digits and '-'",
                raw.name
            )));
        }
        if raw.name == "all" {
            return Err(invalid(
                "name `all` is reserved for the feed of every story".into(),
            ));
        }
        let mut hasher = Xxh3Default::new();
        hasher.update(source.as_bytes());
        let model = match &raw.model {
            Some(reference) => {
                let (model_origin, model_text) = resolve_model(reference)?;
                hasher.update(model_text.as_bytes());
                Some(Arc::new(Model::from_text(&model_text, &model_origin)?))
            }
            None => None,
        };
        let mut phrases = Vec::new();
        for (table, sign) in [(&raw.positive, 1.0f32), (&raw.negative, -1.0)] {
            for (text, &weight) in table {
                if !(weight.is_finite() && weight > 0.0) {
                    return Err(invalid(format!(
                        "phrase \"{text}\": weight {weight} must be a positive number \
                         (put negative evidence in [negative])"
                    )));
                }
                let mut tokens: Vec<Token> = Vec::new();
                text::tokenize(text, &mut tokens, None);
                if tokens.is_empty() {
                    return Err(invalid(format!("phrase \"{text}\" has no words")));
                }
                let stems: Vec<u64> = tokens.iter().map(|t| t.stem).collect();
                // Phrases match on stems, so "export control" and "export controls" are one
                // phrase; listing both would silently count the evidence twice.
                if let Some(same) = phrases.iter().find(|p: &&Phrase| p.stems == stems) {
                    return Err(invalid(format!(
                        "phrases \"{}\" and \"{text}\" are the same after stemming; keep one",
                        same.text
                    )));
                }
                phrases.push(Phrase {
                    text: text.clone(),
                    stems,
                    weight: sign * weight,
                });
            }
        }
        let mut phrase_index: FeatureMap<Vec<usize>> = FeatureMap::default();
        for (i, phrase) in phrases.iter().enumerate() {
            phrase_index.entry(phrase.stems[0]).or_default().push(i);
        }
        let phrase_filter = phrase_filter(phrase_index.keys().copied());
        let threshold = raw.threshold.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(invalid(format!("threshold {threshold} is outside [0, 1]")));
        }
        let model_weight = raw.model_weight.unwrap_or(1.0);
        if !model_weight.is_finite() || model_weight < 0.0 {
            return Err(invalid(format!("model_weight {model_weight} must be ≥ 0")));
        }
        let bias = raw.bias.unwrap_or(if model.is_some() { 0.0 } else { -2.0 });
        let center = model.as_ref().map_or(0.0, |m| model::logit(m.threshold));
        Ok(Topic {
            name: raw.name,
            description: raw.description,
            threshold,
            bias,
            model_weight,
            phrases,
            phrase_index,
            phrase_filter,
            model,
            center,
            digest: hasher.digest(),
        })
    }

    /// The topic name (as in `/feeds/{name}.atom`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The operator's description of the topic.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The score a story needs to match.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    /// The learned model, if the profile names one.
    pub fn model(&self) -> Option<&Model> {
        self.model.as_deref()
    }

    /// Marks every phrase present in `tokens` in `present`.
    fn mark_phrases(&self, tokens: &[Token], present: &mut [bool]) {
        for (i, token) in tokens.iter().enumerate() {
            let bit = token.stem % PHRASE_FILTER_BITS;
            if self.phrase_filter[(bit / 64) as usize] & (1 << (bit % 64)) == 0 {
                continue;
            }
            let Some(candidates) = self.phrase_index.get(&token.stem) else {
                continue;
            };
            for &p in candidates {
                let stems = &self.phrases[p].stems;
                if tokens.len() - i >= stems.len()
                    && tokens[i..i + stems.len()]
                        .iter()
                        .zip(stems)
                        .all(|(t, s)| t.stem == *s)
                {
                    present[p] = true;
                }
            }
        }
    }

    /// Scores one story's title and plain text.
    pub fn score(&self, title: &str, text: &str) -> TopicScore {
        // The publisher an aggregator's item names at the end of both is left out
        // ([`crate::domain::without_named_publisher`]): it is not what the story is about, and
        // a name such as "Global Trade Review" scored as trade words.
        let (title, text) =
            crate::domain::without_named_publisher(title, text).unwrap_or((title, text));
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut logit = self.bias;
            let mut contributions: Vec<(f32, Label)> = Vec::new();
            let mut top = Vec::with_capacity(WHY_LEN);
            match &self.model {
                Some(model) => {
                    let margin = model.explain(&mut scratch, title, text, WHY_LEN, &mut top);
                    if self.model_weight > 0.0 {
                        logit += self.model_weight * (margin - self.center);
                        contributions.extend(
                            top.iter()
                                .map(|&(v, name)| (self.model_weight * v, Label::Feature(name))),
                        );
                    }
                }
                None => {
                    let phrases_only = FeatureSettings {
                        bigrams: false,
                        title_features: false,
                        idf: false,
                    };
                    scratch.build(title, text, phrases_only, None);
                }
            }
            if !self.phrases.is_empty() {
                let mut present = vec![false; self.phrases.len()];
                self.mark_phrases(&scratch.title, &mut present);
                self.mark_phrases(&scratch.body, &mut present);
                // Negative phrases do not add up: the strongest one present counts. They say
                // that the story's trade words are used in another sense (markets, sport) or
                // that it is about something else (a rate decision); a second such phrase says
                // that again, it does not make the story less about trade. Summed, a wire
                // story's one market paragraph ("shares traded lower in early trading, and
                // trading volume was heavy": three phrases) sank a tariff story.
                let mut strongest_negative: Option<&Phrase> = None;
                for (phrase, _) in self.phrases.iter().zip(present).filter(|(_, p)| *p) {
                    if phrase.weight < 0.0 {
                        if strongest_negative.is_none_or(|n| phrase.weight < n.weight) {
                            strongest_negative = Some(phrase);
                        }
                        continue;
                    }
                    logit += phrase.weight;
                    contributions.push((phrase.weight, Label::Phrase(&phrase.text)));
                }
                if let Some(phrase) = strongest_negative {
                    logit += phrase.weight;
                    contributions.push((phrase.weight, Label::Phrase(&phrase.text)));
                }
            }
            // Stable sort: equal magnitudes keep model features before phrases, in their order.
            contributions.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
            let why = contributions
                .into_iter()
                .filter(|(v, _)| v.abs() >= WHY_MIN)
                .take(WHY_LEN)
                .map(|(v, label)| label.why_line(v))
                .collect();
            let score = sigmoid(logit);
            TopicScore {
                topic: self.name.clone(),
                score,
                matched: score >= self.threshold,
                why,
            }
        })
    }
}

/// Every configured topic, ready to score stories.
#[derive(Debug, Clone)]
pub struct Classifier {
    /// Sorted by name, names unique.
    topics: Vec<Topic>,
}

/// Names the rules that turn a profile and a text into a score, for [`Classifier::fingerprint`]:
/// changed whenever the same profiles would score a stored story otherwise (so the next start
/// of a new release re-scores what earlier ones stored). 2: only the strongest negative phrase
/// counts, and an aggregator's publisher is left out of title and text; 3: only a publisher
/// whose name reads as one.
const SCORING_RULES: &str = "scoring rules 3";

/// The built-in topic's name: the topic the status page shows, and `/feeds/trade-policy.*`.
pub const DEFAULT_TOPIC: &str = "trade-policy";

impl Classifier {
    /// The built-in `trade-policy` topic only (used when no topics are configured).
    pub fn builtin() -> Classifier {
        let topic = Topic::from_toml(BUILTIN_PROFILE, "builtin trade-policy.toml", |name| {
            if name == "trade-policy.model" {
                Ok(("builtin trade-policy.model".into(), BUILTIN_MODEL.into()))
            } else {
                Err(ProfileError::Invalid(format!(
                    "builtin profile names unknown model {name}"
                )))
            }
        })
        .expect("the embedded profile and model are tested valid");
        Classifier {
            topics: vec![topic],
        }
    }

    /// Loads every `*.toml` profile in `dir` (the built-in topic if the dir has none). A
    /// missing or unreadable `dir` is an error: an operator who names a folder means it.
    pub fn load(dir: &Path) -> Result<Classifier, ProfileError> {
        let io = |path: &Path| {
            let path = path.display().to_string();
            move |source| ProfileError::Io { path, source }
        };
        let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Ok(Classifier::builtin());
        }
        let mut topics: Vec<Topic> = Vec::new();
        for path in &files {
            let source = std::fs::read_to_string(path).map_err(io(path))?;
            let topic = Topic::from_toml(&source, &path.display().to_string(), |reference| {
                let model_path = path.parent().unwrap_or(dir).join(reference);
                let text = std::fs::read_to_string(&model_path).map_err(io(&model_path))?;
                Ok((model_path.display().to_string(), text))
            })?;
            topics.push(topic);
        }
        Classifier::from_topics(topics)
    }

    /// A classifier over the given topics; fails on duplicate names.
    fn from_topics(mut topics: Vec<Topic>) -> Result<Classifier, ProfileError> {
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = topics.windows(2).find(|w| w[0].name == w[1].name) {
            return Err(ProfileError::Invalid(format!(
                "two profiles are named `{}`",
                pair[0].name
            )));
        }
        Ok(Classifier { topics })
    }

    /// A one-topic classifier from a bare model (no phrases, the model's own threshold), as
    /// `tradefeed eval --model` needs.
    pub fn from_model(name: &str, model: Model) -> Classifier {
        let mut hasher = Xxh3Default::new();
        hasher.update(model.to_text().as_bytes());
        Classifier {
            topics: vec![Topic {
                name: name.to_string(),
                description: String::new(),
                threshold: model.threshold,
                bias: 0.0,
                model_weight: 1.0,
                phrases: Vec::new(),
                phrase_index: FeatureMap::default(),
                phrase_filter: phrase_filter(std::iter::empty()),
                model: Some(Arc::new(model)),
                center: 0.0,
                digest: hasher.digest(),
            }],
        }
    }

    /// [`Classifier::from_model`] for a model file.
    pub fn from_model_file(name: &str, path: &Path) -> Result<Classifier, ProfileError> {
        Ok(Classifier::from_model(name, Model::load(path)?))
    }

    /// Topic names, in a stable order.
    pub fn topic_names(&self) -> Vec<String> {
        self.topics.iter().map(|t| t.name.clone()).collect()
    }

    /// The topic with this name.
    pub fn topic(&self, name: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// A hash of every profile and model in force, and of the rules that score with them;
    /// stored stories are re-scored when it changes.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Xxh3Default::new();
        hasher.update(SCORING_RULES.as_bytes());
        for topic in &self.topics {
            hasher.update(topic.name.as_bytes());
            hasher.update(&[0]);
            hasher.update(&topic.digest.to_le_bytes());
        }
        format!("{:016x}", hasher.digest())
    }

    /// Scores a story's title and plain text against every topic ([`Topic::score`]).
    pub fn score(&self, title: &str, text: &str) -> Vec<TopicScore> {
        self.topics.iter().map(|t| t.score(title, text)).collect()
    }
}

#[cfg(test)]
mod tests;
