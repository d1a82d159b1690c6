//! Labelled JSONL files and evaluation reports (`tradefeed eval`).

use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use super::text::strip_html;
use super::{Classifier, Model, ProfileError};

/// One labelled example: a story's title and plain text, and whether it is on topic.
#[derive(Debug, Clone, PartialEq)]
pub struct Labelled {
    /// The headline.
    pub title: String,
    /// The body as plain text (HTML in the file is stripped on reading).
    pub text: String,
    /// Whether the story belongs to the topic.
    pub label: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    title: String,
    #[serde(default)]
    text: String,
    label: bool,
}

/// Reads a JSONL file of `{"title": …, "text": …, "label": true|false}` lines (blank lines
/// skipped; `text` may hold HTML, which is reduced to plain text). A file with no labelled
/// line is an error: scores over nothing (precision, recall and F1 all 0) read as a measured
/// failure, not as the wrong file.
pub fn read_labels(path: &Path) -> Result<Vec<Labelled>, ProfileError> {
    let content = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let labelled = parse_labels(&content, &path.display().to_string())?;
    if labelled.is_empty() {
        return Err(ProfileError::Invalid(format!(
            "{}: no labelled examples (the file is empty or holds only blank lines)",
            path.display()
        )));
    }
    Ok(labelled)
}

/// Parses JSONL labelled text; `origin` names the file in errors.
pub fn parse_labels(content: &str, origin: &str) -> Result<Vec<Labelled>, ProfileError> {
    let mut out = Vec::new();
    for (n, line) in content.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line)
            .map_err(|e| ProfileError::Invalid(format!("{origin}:{}: {e}", n + 1)))?;
        out.push(Labelled {
            title: strip_html(&parsed.title),
            text: strip_html(&parsed.text),
            label: parsed.label,
        });
    }
    Ok(out)
}

/// Confusion counts and metrics of one evaluation, with the misclassified items.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// The threshold applied.
    pub threshold: f32,
    /// On topic and matched.
    pub tp: usize,
    /// Off topic but matched.
    pub fp: usize,
    /// On topic but missed.
    pub fn_: usize,
    /// Off topic and not matched.
    pub tn: usize,
    /// tp / (tp + fp); 0 when nothing matched.
    pub precision: f64,
    /// tp / (tp + fn); 0 when nothing is on topic.
    pub recall: f64,
    /// Harmonic mean of precision and recall; 0 when both are 0.
    pub f1: f64,
    /// Every misclassified example with its score and why, in input order.
    pub misclassified: Vec<(Labelled, f32, Vec<String>)>,
}

impl EvalReport {
    /// Builds the report from scored examples `(example, score, why)`.
    pub fn from_scores(threshold: f32, scored: Vec<(Labelled, f32, Vec<String>)>) -> EvalReport {
        let (mut tp, mut fp, mut fn_, mut tn) = (0, 0, 0, 0);
        let mut misclassified = Vec::new();
        for (example, score, why) in scored {
            match (example.label, score >= threshold) {
                (true, true) => tp += 1,
                (false, false) => tn += 1,
                (false, true) => {
                    fp += 1;
                    misclassified.push((example, score, why));
                }
                (true, false) => {
                    fn_ += 1;
                    misclassified.push((example, score, why));
                }
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = ratio(2 * tp, 2 * tp + fp + fn_);
        EvalReport {
            threshold,
            tp,
            fp,
            fn_,
            tn,
            precision,
            recall,
            f1,
            misclassified,
        }
    }

    /// The metrics as one JSON object (the last line of the CLI output).
    pub fn json(&self) -> String {
        // Written by hand to keep the documented key order (serde_json sorts its maps).
        format!(
            "{{\"precision\":{},\"recall\":{},\"f1\":{},\"tp\":{},\"fp\":{},\"fn\":{},\"tn\":{}}}",
            number(self.precision),
            number(self.recall),
            number(self.f1),
            self.tp,
            self.fp,
            self.fn_,
            self.tn
        )
    }

    /// The CLI output: confusion counts, then (with `explain`) each misclassified item with its
    /// score and why, and as the last line the JSON metrics object.
    pub fn render(&self, explain: bool) -> String {
        let mut out = String::new();
        let total = self.tp + self.fp + self.fn_ + self.tn;
        let _ = writeln!(out, "items: {total}  threshold: {:.3}", self.threshold);
        let _ = writeln!(out, "               predicted yes  predicted no");
        let _ = writeln!(out, "labelled yes   tp {:<10}  fn {}", self.tp, self.fn_);
        let _ = writeln!(out, "labelled no    fp {:<10}  tn {}", self.fp, self.tn);
        if explain && !self.misclassified.is_empty() {
            let _ = writeln!(out, "misclassified:");
            for (example, score, why) in &self.misclassified {
                let kind = if example.label { "FN" } else { "FP" };
                let _ = writeln!(out, "{kind} {score:.3} {}", example.title);
                let _ = writeln!(out, "    why: {}", why.join(", "));
            }
        }
        out.push_str(&self.json());
        out.push('\n');
        out
    }
}

/// A metric rounded to 4 decimals, as JSON (serde_json prints the shortest exact form).
fn number(x: f64) -> String {
    serde_json::Value::from((x * 10_000.0).round() / 10_000.0).to_string()
}

/// Scores `examples` with one topic of `classifier`; `threshold` overrides the topic's own.
/// Fails when the classifier has no such topic.
pub fn evaluate_topic(
    classifier: &Classifier,
    topic: &str,
    examples: &[Labelled],
    threshold: Option<f32>,
) -> Result<EvalReport, ProfileError> {
    let topic = classifier.topic(topic).ok_or_else(|| {
        ProfileError::Invalid(format!(
            "unknown topic `{topic}` (known: {})",
            classifier.topic_names().join(", ")
        ))
    })?;
    let threshold = threshold.unwrap_or(topic.threshold());
    let scored = examples
        .iter()
        .map(|e| {
            let s = topic.score(&e.title, &e.text);
            (e.clone(), s.score, s.why)
        })
        .collect();
    Ok(EvalReport::from_scores(threshold, scored))
}

/// Scores `examples` with a bare model; `threshold` overrides the model's cross-validated one.
pub fn evaluate_model(model: &Model, examples: &[Labelled], threshold: Option<f32>) -> EvalReport {
    let classifier = Classifier::from_model("model", model.clone());
    evaluate_topic(
        &classifier,
        "model",
        examples,
        threshold.or(Some(model.threshold)),
    )
    .expect("the classifier has the topic it was built with")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(label: bool) -> Labelled {
        Labelled {
            title: "t".into(),
            text: String::new(),
            label,
        }
    }

    #[test]
    fn report_counts_and_metrics_follow_the_definitions() {
        // scores vs threshold 0.5: TP, TP, FP, FN, TN, TN
        let scored = vec![
            (ex(true), 0.9, vec![]),
            (ex(true), 0.5, vec![]),
            (ex(false), 0.7, vec![]),
            (ex(true), 0.1, vec![]),
            (ex(false), 0.2, vec![]),
            (ex(false), 0.49, vec![]),
        ];
        let r = EvalReport::from_scores(0.5, scored);
        assert_eq!((r.tp, r.fp, r.fn_, r.tn), (2, 1, 1, 2));
        assert!((r.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.f1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(r.misclassified.len(), 2);
        let text = r.render(true);
        let last = text.lines().last().unwrap();
        let json: serde_json::Value = serde_json::from_str(last).unwrap();
        assert_eq!(json["fn"], 1);
        assert_eq!(json["precision"], 0.6667);
        assert!(text.contains("FP 0.700"), "{text}");
    }

    #[test]
    fn empty_denominators_give_zero_not_nan() {
        let r = EvalReport::from_scores(0.5, vec![(ex(false), 0.1, vec![])]);
        assert_eq!((r.precision, r.recall, r.f1), (0.0, 0.0, 0.0));
        assert!(r.render(false).ends_with("\"tn\":1}\n"));
    }

    #[test]
    fn label_lines_are_parsed_and_html_is_stripped() {
        let content = "{\"title\":\"A &amp; B\",\"text\":\"<p>x</p>\",\"label\":true}\n\n\
                       {\"title\":\"C\",\"label\":false}\n";
        let got = parse_labels(content, "f").unwrap();
        assert_eq!(got[0].title, "A & B");
        assert_eq!(got[0].text, "x");
        assert!(!got[1].label);
        let err = parse_labels("{\"title\":1}", "f.jsonl")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("f.jsonl:1:"), "{err}");
    }
}
