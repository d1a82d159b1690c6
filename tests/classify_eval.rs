//! Evaluations of the trade-policy classifier: a hand-checked confusion matrix, the modern
//! development set, the Reuters-21578 ModApte benchmark and false positives on BBC News.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use std::path::Path;

use tradefeed::classify::{
    Classifier, FeatureSettings, Labelled, Loss, TrainOptions, evaluate_model, evaluate_topic,
    read_labels, strip_html, train, validate,
};

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
        eprintln!(
            "NOTICE: {} is absent; skipping this corpus test",
            path.display()
        );
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

/// One Reuters split in time order (by NEWID), read as `tradefeed train` / `eval` read a
/// labels file (entities decoded, anything tag-like dropped), so the figures here are the CLI's.
fn reuters(split: &str, records: &[serde_json::Value]) -> Vec<Labelled> {
    let mut records: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["split"] == split).collect();
    records.sort_by_key(|r| r["id"].as_u64());
    records
        .into_iter()
        .map(|r| Labelled {
            title: strip_html(r["title"].as_str().unwrap_or("")),
            text: strip_html(r["body"].as_str().unwrap_or("")),
            label: r["trade"].as_bool().unwrap_or(false),
        })
        .collect()
}

/// A phrase-only profile whose scores can be computed by hand:
/// logit = -2 + 3·[tariff] - 4·[trade show]; matched when σ(logit) ≥ 0.5, i.e. logit ≥ 0.
const HAND_PROFILE: &str = r#"
name = "hand"
bias = -2.0
threshold = 0.5
[positive]
"tariff" = 3.0
[negative]
"trade show" = 4.0
"#;

/// Each line with its hand-computed logit and outcome at threshold 0.5.
const HAND_LABELS: &str = r#"{"title": "New tariff on steel", "text": "", "label": true}
{"title": "Tariff talk at the trade show", "text": "", "label": true}
{"title": "Trade show opens", "text": "Crowds arrive.", "label": false}
{"title": "Broadband tariff cut", "text": "", "label": false}
{"title": "Sunny weekend ahead", "text": "", "label": false}
{"title": "Tariffs rise again", "text": "", "label": true}
{"title": "Ministers meet", "text": "<p>A new <b>tariff</b> &amp; more</p>", "label": true}
"#;
// 1. tariff            → -2+3   =  1 → 0.731 → TP
// 2. tariff, trade show → -2+3-4 = -3 → 0.047 → FN
// 3. trade show        → -2-4   = -6 → 0.002 → TN
// 4. tariff            → -2+3   =  1 → 0.731 → FP
// 5. nothing           → -2          → 0.119 → TN
// 6. "tariffs" stems to "tariff" → 1 → TP
// 7. tariff in HTML text        → 1 → TP
// tp = 3 (1, 6, 7), fp = 1 (4), fn = 1 (2), tn = 2 (3, 5)
// precision = 3/4 = 0.75, recall = 3/4 = 0.75, f1 = 2·3/(2·3+1+1) = 0.75

#[test]
fn eval_of_a_hand_made_file_gives_the_hand_checked_confusion_matrix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hand.toml"), HAND_PROFILE).unwrap();
    let labels = dir.path().join("labels.jsonl");
    std::fs::write(&labels, HAND_LABELS).unwrap();
    let classifier = Classifier::load(dir.path()).unwrap();
    let examples = read_labels(&labels).unwrap();

    let report = evaluate_topic(&classifier, "hand", &examples, None).unwrap();
    assert_eq!((report.tp, report.fp, report.fn_, report.tn), (3, 1, 1, 2));
    assert_eq!(
        (report.precision, report.recall, report.f1),
        (0.75, 0.75, 0.75)
    );
    let titles: Vec<&str> = report
        .misclassified
        .iter()
        .map(|m| m.0.title.as_str())
        .collect();
    assert_eq!(
        titles,
        ["Tariff talk at the trade show", "Broadband tariff cut"]
    );

    let output = report.render(true);
    let last = output.lines().last().unwrap();
    assert_eq!(
        last,
        r#"{"precision":0.75,"recall":0.75,"f1":0.75,"tp":3,"fp":1,"fn":1,"tn":2}"#
    );
    assert!(output.contains("tp 3"), "{output}");
    assert!(
        output.contains("why: \"trade show\" -4.00, \"tariff\" +3.00"),
        "{output}"
    );

    // --threshold 0.9: every logit of 1 (σ = 0.731) now falls short → nothing matches.
    let strict = evaluate_topic(&classifier, "hand", &examples, Some(0.9)).unwrap();
    assert_eq!((strict.tp, strict.fp, strict.fn_, strict.tn), (0, 0, 4, 3));
    assert_eq!(
        strict.render(false).lines().last().unwrap(),
        r#"{"precision":0.0,"recall":0.0,"f1":0.0,"tp":0,"fp":0,"fn":4,"tn":3}"#
    );
    assert!(evaluate_topic(&classifier, "nope", &examples, None).is_err());
}

fn dev_set() -> Vec<Labelled> {
    read_labels(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/trade_dev.jsonl"
    )))
    .unwrap()
}

/// The held-out modern development set (written for this project, never trained on).
#[test]
fn builtin_topic_scores_the_modern_dev_set_above_0_9() {
    let dev = dev_set();
    assert!(dev.len() >= 150);
    let report = evaluate_topic(&Classifier::builtin(), "trade-policy", &dev, None).unwrap();
    eprintln!("modern dev set, builtin topic:\n{}", report.render(true));
    assert!(report.precision >= 0.9, "{}", report.json());
    assert!(report.recall >= 0.9, "{}", report.json());
}

/// A second held-out set (50 items, some title-only, some HTML), never trained on, written
/// when the profile and model were nearly final: P 1.0, R 1.0 at first scoring; after the last
/// retrain (more hard negatives, FTC / World Trade Center phrases) P 1.0, R 0.96 (one miss at
/// 0.496). It was not used to tune anything until session 30's retrain (international news
/// and market lines), whose variants it was looked at for: P 1.0, R 0.96 (the same miss, at
/// 0.494).
#[test]
fn builtin_topic_scores_the_late_holdout_set_above_0_9() {
    let set = read_labels(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/trade_holdout.jsonl"
    )))
    .unwrap();
    let report = evaluate_topic(&Classifier::builtin(), "trade-policy", &set, None).unwrap();
    eprintln!("late holdout set, builtin topic:\n{}", report.render(true));
    assert!(report.precision >= 0.9, "{}", report.json());
    assert!(report.recall >= 0.9, "{}", report.json());
}

/// A blind set written by a helper that saw neither the training data nor the code, to the
/// same labelling guide as session 31's training items: 178 items (58 on topic across every
/// kind of trade measure and many regions, 120 hard negatives: international stories rich in
/// country names, markets and economy, other senses of "trade", general news; some
/// title-only), what is left of 240 once the 62 that report an event a training item reports
/// too were removed. Scored twice: before the retrain that added those items (P 0.982, R
/// 0.966; headlines alone P 1.0, R 0.862) and after (P 1.0, R 0.983; headlines alone P 1.0,
/// R 0.897). The retrain was adopted on these figures with no variant tried.
#[test]
fn builtin_topic_scores_the_blind_set_above_0_95_and_its_headlines_above_0_85() {
    let set = read_labels(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/trade_blind.jsonl"
    )))
    .unwrap();
    assert_eq!(set.len(), 178);
    let classifier = Classifier::builtin();
    let report = evaluate_topic(&classifier, "trade-policy", &set, None).unwrap();
    eprintln!("blind set, builtin topic:\n{}", report.render(true));
    assert!(report.precision >= 0.95, "{}", report.json());
    assert!(report.recall >= 0.95, "{}", report.json());
    // The same items as a headline-only feed gives them.
    let headlines: Vec<Labelled> = set
        .into_iter()
        .map(|l| Labelled {
            text: String::new(),
            ..l
        })
        .collect();
    let report = evaluate_topic(&classifier, "trade-policy", &headlines, None).unwrap();
    eprintln!("blind set, headlines alone:\n{}", report.render(true));
    assert!(report.precision >= 0.95, "{}", report.json());
    assert!(report.recall >= 0.85, "{}", report.json());
}

/// The shipped model alone (no phrases), to show what the learned part contributes.
#[test]
fn shipped_model_alone_scores_the_modern_dev_set_above_0_85() {
    let dev = dev_set();
    let classifier = Classifier::builtin();
    let model = classifier.topic("trade-policy").unwrap().model().unwrap();
    let report = evaluate_model(model, &dev, None);
    eprintln!(
        "modern dev set, shipped model alone:\n{}",
        report.render(false)
    );
    assert!(report.f1 >= 0.85, "{}", report.json());
}

/// Reuters-21578 ModApte, category `trade`: train on `train` (L2 strength, positive weight and
/// threshold by 5-fold cross-validation on `train` only), then evaluate on `test`.
///
/// Measured with `tradefeed train` + `tradefeed eval --model` (the same procedure as here):
/// F1 0.812 (P 0.795, R 0.829; tp 97 fp 25 fn 20 tn 3157). Honest history: `test` was
/// evaluated for three designs, each once: plain-tf logistic regression refit on all data
/// (0.778); idf weighting and fold averaging, chosen on a 70/30 split of `train` (0.790); and
/// this linear SVM with the positive weight chosen by CV, chosen on `train` only by
/// `model_selection_on_reuters_train_only` below (0.812). The floor guards against regressions.
#[test]
fn learner_reaches_f1_0_80_on_reuters_modapte_trade() {
    let Some(records) = read_corpus("reuters21578/trade.jsonl.gz") else {
        return;
    };
    let train_set = reuters("train", &records);
    let test_set = reuters("test", &records);
    assert_eq!((train_set.len(), test_set.len()), (9603, 3299));
    let start = std::time::Instant::now();
    // Cross-validation on `train` over the default grid (λ 1e-3 … 1e-6 × positive weight
    // 1, 2, 4, 8) picks λ = 1e-4 and positive weight 1; the grid is narrowed here to a subset
    // holding that winner only to keep this debug-build test fast (the choice, the fold models
    // and therefore the result are the same).
    let options = TrainOptions {
        lambdas: vec![1e-4, 1e-5],
        positive_weights: vec![1.0, 2.0],
        ..TrainOptions::default()
    };
    let model = train(&train_set, &options);
    assert_eq!((model.lambda, model.positive_weight), (1e-4, 1.0));
    let report = evaluate_model(&model, &test_set, None);
    eprintln!(
        "Reuters trade: cv_f1 {} (train), threshold {}, lambda {}, {} features, {:?}\n{}",
        model.cv_f1,
        model.threshold,
        model.lambda,
        model.len(),
        start.elapsed(),
        report.render(false)
    );
    assert!(report.f1 >= 0.80, "{}", report.json());
}

/// BBC News 2004–05: sport, tech and entertainment stories should almost never match.
#[test]
fn builtin_topic_rarely_matches_bbc_sport_tech_and_entertainment() {
    let Some(records) = read_corpus("bbc_news/bbc.jsonl.gz") else {
        return;
    };
    let classifier = Classifier::builtin();
    let mut rates = Vec::new();
    for category in ["sport", "tech", "entertainment", "business", "politics"] {
        let stories: Vec<&serde_json::Value> = records
            .iter()
            .filter(|r| r["category"] == category)
            .collect();
        let matched: Vec<&str> = stories
            .iter()
            .filter(|r| {
                let title = r["title"].as_str().unwrap_or("");
                let body = r["body"].as_str().unwrap_or("");
                classifier.score(title, body)[0].matched
            })
            .map(|r| r["title"].as_str().unwrap_or(""))
            .collect();
        let rate = matched.len() as f64 / stories.len() as f64;
        eprintln!(
            "BBC {category}: {}/{} matched ({:.1}%) {:?}",
            matched.len(),
            stories.len(),
            rate * 100.0,
            &matched[..matched.len().min(8)]
        );
        rates.push((category, rate));
    }
    for (category, rate) in &rates[..3] {
        assert!(*rate <= 0.02, "{category}: {:.1}% matched", rate * 100.0);
    }
}

/// Model selection on Reuters `train` only (never `test`): each candidate training procedure
/// is scored by its 5-fold cross-validated F1 on all of `train` and by a temporal hold-out
/// (trained on the earliest 75% of `train` by NEWID, evaluated at its own threshold on the
/// latest 25%). Slow in a debug build; run with
/// `cargo test --release --test classify_eval -- --ignored --nocapture model_selection`.
#[test]
#[ignore = "model selection harness: minutes of training, prints a table"]
fn model_selection_on_reuters_train_only() {
    let Some(records) = read_corpus("reuters21578/trade.jsonl.gz") else {
        return;
    };
    let train_set = reuters("train", &records);
    // The learner before this selection: logistic loss, positive weight fixed at 2.
    let base = TrainOptions {
        loss: Loss::Logistic,
        positive_weights: vec![2.0],
        ..TrainOptions::default()
    };
    let svm = TrainOptions {
        loss: Loss::SquaredHinge,
        ..base.clone()
    };
    let variants: Vec<(&str, TrainOptions)> = vec![
        ("baseline: logistic, pos weight 2, 12 epochs", base.clone()),
        (
            "refit on all instead of fold average",
            TrainOptions {
                average_folds: false,
                ..base.clone()
            },
        ),
        (
            "pos weight by CV {1,2,4,8}",
            TrainOptions {
                positive_weights: vec![1.0, 2.0, 4.0, 8.0],
                ..base.clone()
            },
        ),
        (
            "squared hinge (linear SVM)",
            TrainOptions {
                loss: Loss::SquaredHinge,
                ..base.clone()
            },
        ),
        (
            "30 epochs, decaying rate",
            TrainOptions {
                epochs: 30,
                decay: true,
                ..base.clone()
            },
        ),
        (
            "title weight 2",
            TrainOptions {
                title_weight: 2.0,
                ..base.clone()
            },
        ),
        (
            "title weight 0.5",
            TrainOptions {
                title_weight: 0.5,
                ..base.clone()
            },
        ),
        (
            "no bigrams",
            TrainOptions {
                features: FeatureSettings {
                    bigrams: false,
                    ..FeatureSettings::default()
                },
                ..base.clone()
            },
        ),
        (
            "NB scaling, alpha 1",
            TrainOptions {
                nb_prior: Some(1.0),
                ..base.clone()
            },
        ),
        (
            "NB scaling, alpha 5",
            TrainOptions {
                nb_prior: Some(5.0),
                ..base.clone()
            },
        ),
        (
            "baseline, other shuffle seed",
            TrainOptions {
                seed: 7,
                ..base.clone()
            },
        ),
        (
            "squared hinge, other shuffle seed",
            TrainOptions {
                seed: 7,
                ..svm.clone()
            },
        ),
        (
            "squared hinge + pos weight by CV {1,2,4,8}",
            TrainOptions {
                positive_weights: vec![1.0, 2.0, 4.0, 8.0],
                ..svm.clone()
            },
        ),
        (
            "squared hinge + 30 epochs, decaying rate",
            TrainOptions {
                epochs: 30,
                decay: true,
                ..svm.clone()
            },
        ),
        (
            "squared hinge + finer λ grid",
            TrainOptions {
                lambdas: vec![1e-3, 3e-4, 1e-4, 3e-5, 1e-5, 1e-6],
                ..svm.clone()
            },
        ),
        (
            "squared hinge + title weight 0.5",
            TrainOptions {
                title_weight: 0.5,
                ..svm.clone()
            },
        ),
        (
            "squared hinge + NB scaling, alpha 5",
            TrainOptions {
                nb_prior: Some(5.0),
                ..svm.clone()
            },
        ),
        (
            "squared hinge, no bigrams",
            TrainOptions {
                features: FeatureSettings {
                    bigrams: false,
                    ..FeatureSettings::default()
                },
                ..svm.clone()
            },
        ),
        ("chosen: TrainOptions::default()", TrainOptions::default()),
    ];
    let only = std::env::var("TRADEFEED_VARIANTS").ok();
    eprintln!(
        "| variant | CV F1 | hold-out P | R | F1 | best-threshold F1 | λ | pos w | threshold |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|");
    for (i, (name, options)) in variants.iter().enumerate() {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|v| v == i.to_string()))
        {
            continue;
        }
        let v = validate(&train_set, options, 0.25);
        eprintln!(
            "| {i}. {name} | {:.3} | {:.3} | {:.3} | **{:.3}** | {:.3} | {:e} | {} | {:.3} |",
            v.cv_f1,
            v.holdout.precision,
            v.holdout.recall,
            v.holdout.f1,
            v.holdout_best_f1,
            v.model.lambda,
            v.model.positive_weight,
            v.model.threshold,
        );
    }
}
