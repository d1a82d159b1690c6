//! Evaluations of the trade-policy classifier: a hand-checked confusion matrix, the modern
//! development set, the Reuters-21578 ModApte benchmark and false positives on BBC News.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use tradefeed::classify::{Labelled, TrainOptions, evaluate_model, train};

/// The shared corpus folder: `$TRADEFEED_DATA`, else `../shared/data` next to the repository.
fn data_dir() -> PathBuf {
    std::env::var_os("TRADEFEED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")))
}

/// Reads a gzipped JSONL corpus file, or prints a notice and returns `None` when absent.
fn read_corpus(relative: &str) -> Option<Vec<serde_json::Value>> {
    let path = data_dir().join(relative);
    let Ok(file) = std::fs::File::open(&path) else {
        eprintln!("NOTICE: {} is absent; skipping this corpus test", path.display());
        return None;
    };
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    Some(
        reader
            .lines()
            .map(|l| serde_json::from_str(&l.expect("corpus line")).expect("corpus JSON"))
            .collect(),
    )
}

fn reuters(split: &str, records: &[serde_json::Value]) -> Vec<Labelled> {
    records
        .iter()
        .filter(|r| r["split"] == split)
        .map(|r| Labelled {
            title: r["title"].as_str().unwrap_or("").to_string(),
            text: r["body"].as_str().unwrap_or("").to_string(),
            label: r["trade"].as_bool().unwrap_or(false),
        })
        .collect()
}

#[test]
fn reuters_cv_experiment() {
    let Some(records) = read_corpus("reuters21578/trade.jsonl.gz") else {
        return;
    };
    let train_set = reuters("train", &records);
    let start = std::time::Instant::now();
    let mut o = TrainOptions::default(); o.lambdas = vec![1e-5, 3e-6, 1e-6]; let model = train(&train_set, &o);
    eprintln!(
        "cv_f1 {} threshold {} lambda {} features {} in {:?}",
        model.cv_f1,
        model.threshold,
        model.lambda,
        model.len(),
        start.elapsed()
    );
    let _ = evaluate_model;
}
