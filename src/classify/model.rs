//! The learner: L2-regularized logistic regression over hashed features, trained by SGD.
//!
//! Why this learner: a linear model over sublinear-tf, L2-normalized unigrams + bigrams + title
//! unigrams is the strongest simple text classifier for topic detection (the linear SVMs of the
//! Reuters literature are the same family); logistic loss gives calibrated-ish scores in [0, 1]
//! and per-feature contributions that explain a score exactly.
//!
//! Training is deterministic: examples are visited in an order shuffled by a fixed-seed
//! xorshift generator, features are iterated in sorted order, and the model file is written
//! sorted by feature name with fixed precision, so the same labelled file always gives the same
//! bytes. L2 decay is applied lazily through a scale factor (`w = scale · v`), so each step costs
//! only the example's non-zero features.
//!
//! The decision threshold is chosen by k-fold cross-validation on the training data only: every
//! training example gets an out-of-fold score, and the threshold that maximizes F1 over those
//! scores is stored in the model. The regularization strength is chosen the same way from a
//! small grid.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use super::ProfileError;
use super::eval::Labelled;
use super::text::{FeatureMap, FeatureSettings, Scratch, feature_hash};

/// The first line of every model file; bump the number when the feature pipeline changes.
const MAGIC: &str = "tradefeed-model 1";


/// How to train a [`Model`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// Candidate L2 strengths; the one with the best cross-validated F1 is used.
    pub lambdas: Vec<f32>,
    /// Passes over the training data.
    pub epochs: usize,
    /// Folds for cross-validation (threshold and lambda choice).
    pub folds: usize,
    /// Seed of the shuffling generator.
    pub seed: u64,
    /// Loss weight of positive examples relative to negatives (topics are usually rare).
    pub positive_weight: f32,
    /// Feature extraction settings.
    pub features: FeatureSettings,
    /// Ship the average of the cross-validation fold models instead of one model refit on all
    /// data. The threshold is chosen on fold-model scores; a refit on all data is more
    /// confident than any fold model, so that threshold sits too low for it. The average of the
    /// fold models has the score scale the threshold was chosen for.
    pub average_folds: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            lambdas: vec![1e-3, 1e-4, 1e-5, 1e-6],
            epochs: 12,
            folds: 5,
            seed: 0x5eed_cafe,
            positive_weight: 2.0,
            features: FeatureSettings::default(),
            average_folds: true,
        }
    }
}

/// A trained linear model: feature weights, bias, settings and the cross-validated threshold.
#[derive(Debug, Clone)]
pub struct Model {
    /// Feature extraction the weights expect.
    pub features: FeatureSettings,
    /// Intercept (log-odds of an empty document).
    pub bias: f32,
    /// Probability threshold chosen by cross-validation on the training data.
    pub threshold: f32,
    /// Cross-validated F1 at that threshold (for reports).
    pub cv_f1: f32,
    /// The chosen L2 strength.
    pub lambda: f32,
    /// idf of a feature the training set never saw (the largest possible).
    pub unseen_idf: f32,
    /// Every training feature, by hash.
    weights: FeatureMap<Feature>,
}

/// One feature of a model.
#[derive(Debug, Clone)]
struct Feature {
    weight: f32,
    /// Inverse document frequency in the training set (1 when idf is off).
    idf: f32,
    /// Readable name (`tariff`, `export control`, `title:tariff`).
    name: Box<str>,
}

/// Logistic function.
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Inverse of [`sigmoid`], clamped away from infinities.
pub fn logit(p: f32) -> f32 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

impl Model {
    /// Scores a document: returns its log-odds and leaves in `top` its `k` largest feature
    /// contributions by magnitude (`weight × value`, largest first) with the feature names.
    ///
    /// One hash lookup per feature does everything: idf weighting, the L2 norm, the dot product
    /// and the explanation (the norm scales every contribution alike, so the ranking can be
    /// kept while streaming and scaled at the end).
    pub fn explain<'m>(
        &'m self,
        scratch: &mut Scratch,
        title: &str,
        text: &str,
        k: usize,
        top: &mut Vec<(f32, &'m str)>,
    ) -> f32 {
        top.clear();
        scratch.build(title, text, self.features, None);
        let (mut norm2, mut dot) = (0.0f32, 0.0f32);
        for &(hash, tf) in &scratch.vector {
            let feature = self.weights.get(&hash);
            let idf = match (self.features.idf, feature) {
                (false, _) => 1.0,
                (true, Some(f)) => f.idf,
                (true, None) => self.unseen_idf,
            };
            let x = tf * idf;
            norm2 += x * x;
            let Some(f) = feature.filter(|f| f.weight != 0.0) else {
                continue;
            };
            let value = f.weight * x;
            dot += value;
            if k > 0 && (top.len() < k || value.abs() > top[top.len() - 1].0.abs()) {
                let at = top.partition_point(|t| t.0.abs() >= value.abs());
                top.insert(at, (value, &f.name));
                top.truncate(k);
            }
        }
        if norm2 == 0.0 {
            return self.bias;
        }
        let inv = 1.0 / norm2.sqrt();
        for t in top.iter_mut() {
            t.0 *= inv;
        }
        self.bias + dot * inv
    }

    /// Probability that a document is on topic.
    pub fn probability(&self, title: &str, text: &str) -> f32 {
        let mut scratch = Scratch::default();
        sigmoid(self.explain(&mut scratch, title, text, 0, &mut Vec::new()))
    }

    /// Number of features with a weight.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// Whether the model has no feature weights.
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// The model file text: deterministic, sorted by feature name.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{MAGIC}");
        let _ = writeln!(out, "bigrams {}", self.features.bigrams);
        let _ = writeln!(out, "title_features {}", self.features.title_features);
        let _ = writeln!(out, "idf {}", self.features.idf);
        let _ = writeln!(out, "unseen_idf {:.4}", self.unseen_idf);
        let _ = writeln!(out, "threshold {:.6}", self.threshold);
        let _ = writeln!(out, "cv_f1 {:.6}", self.cv_f1);
        let _ = writeln!(out, "lambda {:e}", self.lambda);
        let _ = writeln!(out, "bias {:.6}", self.bias);
        let mut rows: Vec<&Feature> = self.weights.values().collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        for f in rows {
            let _ = writeln!(out, "w {:.6} {:.4} {}", f.weight, f.idf, f.name);
        }
        out
    }

    /// Parses a model file's text; `origin` names it in errors.
    pub fn from_text(text: &str, origin: &str) -> Result<Model, ProfileError> {
        let bad = |line: usize, what: &str| {
            ProfileError::Invalid(format!("{origin}:{}: {what}", line + 1))
        };
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, first)) if first.trim() == MAGIC => {}
            _ => return Err(bad(0, &format!("not a model file (expected `{MAGIC}`)"))),
        }
        let mut model = Model {
            features: FeatureSettings::default(),
            bias: 0.0,
            threshold: 0.5,
            cv_f1: 0.0,
            lambda: 0.0,
            unseen_idf: 1.0,
            weights: FeatureMap::default(),
        };
        for (n, line) in lines {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, rest) = line.split_once(' ').ok_or_else(|| bad(n, "missing value"))?;
            let float = |s: &str| s.parse::<f32>().map_err(|_| bad(n, &format!("bad number `{s}`")));
            let boolean = |s: &str| s.parse::<bool>().map_err(|_| bad(n, &format!("bad bool `{s}`")));
            match key {
                "bigrams" => model.features.bigrams = boolean(rest)?,
                "title_features" => model.features.title_features = boolean(rest)?,
                "idf" => model.features.idf = boolean(rest)?,
                "unseen_idf" => model.unseen_idf = float(rest)?,
                "threshold" => model.threshold = float(rest)?,
                "cv_f1" => model.cv_f1 = float(rest)?,
                "lambda" => model.lambda = float(rest)?,
                "bias" => model.bias = float(rest)?,
                "w" => {
                    let mut parts = rest.splitn(3, ' ');
                    let (Some(w), Some(idf), Some(name)) = (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(bad(n, "expected `w WEIGHT IDF NAME`"));
                    };
                    let feature = Feature {
                        weight: float(w)?,
                        idf: float(idf)?,
                        name: name.into(),
                    };
                    model.weights.insert(feature_hash(name), feature);
                }
                other => return Err(bad(n, &format!("unknown key `{other}`"))),
            }
        }
        if !(0.0..=1.0).contains(&model.threshold) {
            return Err(ProfileError::Invalid(format!(
                "{origin}: threshold {} is outside [0, 1]",
                model.threshold
            )));
        }
        Ok(model)
    }

    /// Writes the model file.
    pub fn save(&self, path: &Path) -> Result<(), ProfileError> {
        std::fs::write(path, self.to_text()).map_err(|source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<Model, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Model::from_text(&text, &path.display().to_string())
    }
}

/// Deterministic xorshift64* generator for shuffling.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// A vectorized example with features renumbered densely.
struct Example {
    features: Vec<(u32, f32)>,
    label: bool,
}

/// Weights over dense feature indices.
struct Linear {
    v: Vec<f32>,
    scale: f32,
    bias: f32,
}

impl Linear {
    fn margin(&self, x: &[(u32, f32)]) -> f32 {
        let dot: f32 = x.iter().map(|&(j, v)| self.v[j as usize] * v).sum();
        self.scale * dot + self.bias
    }
}

/// SGD for L2-regularized logistic loss (Bottou's schedule `η_t = η₀ / (1 + η₀ λ t)`).
fn fit(
    examples: &[Example],
    index: &[usize],
    dims: usize,
    lambda: f32,
    options: &TrainOptions,
) -> Linear {
    let mut model = Linear {
        v: vec![0.0; dims],
        scale: 1.0,
        bias: 0.0,
    };
    let mut order = index.to_vec();
    let mut rng = Rng(options.seed | 1);
    let eta0 = 0.5f32;
    let mut t = 0f32;
    for _ in 0..options.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let example = &examples[i];
            let eta = eta0 / (1.0 + eta0 * lambda * t);
            t += 1.0;
            let y = if example.label { 1.0 } else { -1.0 };
            let weight = if example.label { options.positive_weight } else { 1.0 };
            let m = model.margin(&example.features);
            // d/dm log(1 + e^{-y m}) = -y σ(-y m)
            let g = -y * sigmoid(-y * m) * weight;
            model.scale *= 1.0 - eta * lambda;
            if model.scale < 1e-6 {
                for w in &mut model.v {
                    *w *= model.scale;
                }
                model.scale = 1.0;
            }
            let step = eta * g / model.scale;
            for &(j, x) in &example.features {
                model.v[j as usize] -= step * x;
            }
            model.bias -= eta * g * 0.1;
        }
    }
    for w in &mut model.v {
        *w *= model.scale;
    }
    model.scale = 1.0;
    model
}

/// The threshold (a probability) maximizing F1 over `(probability, label)` pairs, and that F1.
pub fn best_threshold(scored: &[(f32, bool)]) -> (f32, f32) {
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let positives = sorted.iter().filter(|s| s.1).count();
    let (mut tp, mut fp) = (0usize, 0usize);
    let (mut best_f1, mut best_t) = (0.0f32, 0.5f32);
    for (i, &(p, label)) in sorted.iter().enumerate() {
        if label { tp += 1 } else { fp += 1 }
        // Only cut between distinct scores.
        if i + 1 < sorted.len() && sorted[i + 1].0 == p {
            continue;
        }
        let fn_ = positives - tp;
        let f1 = 2.0 * tp as f32 / (2 * tp + fp + fn_) as f32;
        if f1 > best_f1 {
            best_f1 = f1;
            // Midway (in log-odds) to the next lower score, so near-ties generalize.
            let next = sorted.get(i + 1).map_or(p - 1e-3, |s| s.0);
            best_t = sigmoid((logit(p) + logit(next)) / 2.0);
        }
    }
    (best_t, best_f1)
}

/// Out-of-fold probabilities for every example with one lambda, and the fold models.
fn cross_validate(
    examples: &[Example],
    dims: usize,
    lambda: f32,
    options: &TrainOptions,
) -> (Vec<(f32, bool)>, Vec<Linear>) {
    let folds = options.folds.max(2);
    // Stratified, deterministic fold assignment: positives and negatives dealt round-robin.
    let mut fold_of = vec![0usize; examples.len()];
    let (mut pos, mut neg) = (0usize, 0usize);
    for (i, e) in examples.iter().enumerate() {
        let counter = if e.label { &mut pos } else { &mut neg };
        fold_of[i] = *counter % folds;
        *counter += 1;
    }
    let mut scored = vec![(0.0f32, false); examples.len()];
    let mut models = Vec::with_capacity(folds);
    for fold in 0..folds {
        let train: Vec<usize> = (0..examples.len()).filter(|&i| fold_of[i] != fold).collect();
        let model = fit(examples, &train, dims, lambda, options);
        for (i, e) in examples.iter().enumerate() {
            if fold_of[i] == fold {
                scored[i] = (sigmoid(model.margin(&e.features)), e.label);
            }
        }
        models.push(model);
    }
    (scored, models)
}

/// The mean of linear models (itself a linear model).
fn average(models: &[Linear], dims: usize) -> Linear {
    let mut mean = Linear {
        v: vec![0.0; dims],
        scale: 1.0,
        bias: 0.0,
    };
    let k = models.len().max(1) as f32;
    for model in models {
        for (m, v) in mean.v.iter_mut().zip(&model.v) {
            *m += v / k;
        }
        mean.bias += model.bias / k;
    }
    mean
}

/// Trains a model on labelled examples; see the module docs for the procedure.
pub fn train(examples: &[Labelled], options: &TrainOptions) -> Model {
    let mut names: HashMap<u64, String> = HashMap::new();
    let mut dense: HashMap<u64, u32> = HashMap::new();
    let mut hashes: Vec<u64> = Vec::new();
    let mut scratch = Scratch::default();
    // First pass: sublinear tf per document, renumbered densely, and document frequencies.
    let mut documents: Vec<Vec<(u32, f32)>> = Vec::with_capacity(examples.len());
    let mut df: Vec<u32> = Vec::new();
    for labelled in examples {
        scratch.build(&labelled.title, &labelled.text, options.features, Some(&mut names));
        let features = scratch
            .vector
            .iter()
            .map(|&(hash, tf)| {
                let next = hashes.len() as u32;
                let j = *dense.entry(hash).or_insert_with(|| {
                    hashes.push(hash);
                    df.push(0);
                    next
                });
                df[j as usize] += 1;
                (j, tf)
            })
            .collect();
        documents.push(features);
    }
    // Smoothed idf, as if one extra document held every feature: ln((N+1)/(df+1)) + 1.
    let n = examples.len() as f32;
    let idf_of = |df: u32| round4(((n + 1.0) / (df as f32 + 1.0)).ln() + 1.0);
    let idf: Vec<f32> = df
        .iter()
        .map(|&d| if options.features.idf { idf_of(d) } else { 1.0 })
        .collect();
    let unseen_idf = if options.features.idf { idf_of(0) } else { 1.0 };
    // Second pass: weight and normalize exactly as scoring will.
    let vectorized: Vec<Example> = documents
        .into_iter()
        .zip(examples)
        .map(|(mut features, labelled)| {
            let norm = features
                .iter_mut()
                .map(|(j, x)| {
                    *x *= idf[*j as usize];
                    *x * *x
                })
                .sum::<f32>()
                .sqrt();
            if norm > 0.0 {
                for (_, x) in &mut features {
                    *x /= norm;
                }
            }
            Example {
                features,
                label: labelled.label,
            }
        })
        .collect();
    let dims = hashes.len();
    let all: Vec<usize> = (0..vectorized.len()).collect();

    let mut best: Option<(f32, f32, f32, Vec<Linear>)> = None; // (f1, threshold, lambda, folds)
    for &lambda in &options.lambdas {
        let (scored, models) = cross_validate(&vectorized, dims, lambda, options);
        let (threshold, f1) = best_threshold(&scored);
        if best.as_ref().is_none_or(|(best_f1, ..)| f1 > *best_f1) {
            best = Some((f1, threshold, lambda, models));
        }
    }
    let (cv_f1, threshold, lambda, models) = best.unwrap_or((0.0, 0.5, 1e-4, Vec::new()));
    let linear = if options.average_folds && !models.is_empty() {
        average(&models, dims)
    } else {
        fit(&vectorized, &all, dims, lambda, options)
    };
    let mut weights = FeatureMap::default();
    for (j, &hash) in hashes.iter().enumerate() {
        // Rounded as written, so a saved-and-loaded model scores exactly like this one.
        let feature = Feature {
            weight: round6(linear.v[j]),
            idf: idf[j],
            name: names[&hash].clone().into_boxed_str(),
        };
        weights.insert(hash, feature);
    }
    Model {
        features: options.features,
        bias: round6(linear.bias),
        threshold: round6(threshold),
        cv_f1: round6(cv_f1),
        lambda,
        unseen_idf,
        weights,
    }
}

fn round6(x: f32) -> f32 {
    (x * 1e6).round() / 1e6
}

fn round4(x: f32) -> f32 {
    (x * 1e4).round() / 1e4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(title: &str, text: &str, label: bool) -> Labelled {
        Labelled {
            title: title.into(),
            text: text.into(),
            label,
        }
    }

    fn toy() -> Vec<Labelled> {
        let mut out = Vec::new();
        for i in 0..20 {
            out.push(ex(
                &format!("Tariff dispute {i}"),
                "Officials raised import duties on steel under trade rules.",
                true,
            ));
            out.push(ex(
                &format!("Match report {i}"),
                "The striker scored twice as the home side won the league game.",
                false,
            ));
        }
        out
    }

    #[test]
    fn training_separates_a_trivially_separable_set() {
        let model = train(&toy(), &TrainOptions::default());
        assert!(model.probability("New tariff on steel", "duties rise") > model.threshold);
        assert!(model.probability("Striker scores", "league game won") < model.threshold);
        assert!(model.cv_f1 > 0.99);
    }

    #[test]
    fn training_is_reproducible_and_the_file_round_trips() {
        let options = TrainOptions::default();
        let a = train(&toy(), &options).to_text();
        let b = train(&toy(), &options).to_text();
        assert_eq!(a, b);
        let loaded = Model::from_text(&a, "test").unwrap();
        assert_eq!(loaded.to_text(), a);
    }

    #[test]
    fn best_threshold_maximizes_f1() {
        let scored = [(0.9, true), (0.8, true), (0.7, false), (0.6, true), (0.2, false)];
        let (t, f1) = best_threshold(&scored);
        // Cutting below 0.6 gives tp=3 fp=1 fn=0 → F1 = 6/7, the best cut.
        assert!((f1 - 6.0 / 7.0).abs() < 1e-6);
        assert!(t < 0.6 && t > 0.2, "{t}");
    }

    #[test]
    fn malformed_model_files_are_rejected_with_the_line() {
        let cases = [
            ("nonsense", "not a model file"),
            ("tradefeed-model 1\nbias x", ":2: bad number"),
            ("tradefeed-model 1\nfoo 1", ":2: unknown key"),
            ("tradefeed-model 1\nthreshold 3", "outside [0, 1]"),
        ];
        for (text, want) in cases {
            let err = Model::from_text(text, "m").unwrap_err().to_string();
            assert!(err.contains(want), "{text:?} → {err}");
        }
    }
}
