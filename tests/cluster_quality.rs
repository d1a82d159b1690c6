//! Near-duplicate clustering quality on generated syndicated copies of Reuters-21578 stories.
//!
//! Copies are fed in publication order through `StoryIndex::find` → `insert` (a new story when
//! nothing matches), as ingest does; pairwise precision and recall over copies are printed and
//! the standard mode must reach precision ≥ 0.98 and recall ≥ 0.95. The heavy mode (built
//! differently, see `common/syndicate.rs`) is reported, with a looser floor that catches
//! regressions. Skips with a notice when the corpus is absent.

#[path = "common/syndicate.rs"]
mod syndicate;

use std::collections::HashMap;

use syndicate::{Kind, Mode, Sample, drop_resends, generate, load_corpus, pairwise};
use tradefeed::cluster::{ClusterConfig, Signature, StoryIndex, compare, templated_siblings};
use tradefeed::domain::StoryId;

/// Seed of the sample; fixed so the numbers are reproducible.
const SEED: u64 = 0x7EAD_FEED_2026;

/// Runs the copies through the index; returns the predicted story of each copy. Prints the
/// first few joins that put a copy into another true story's cluster, with their evidence.
fn cluster(sample: &Sample) -> Vec<StoryId> {
    let mut index = StoryIndex::new(ClusterConfig::default());
    let mut next: StoryId = 1;
    let mut predicted = Vec::with_capacity(sample.copies.len());
    let mut founder: HashMap<StoryId, usize> = HashMap::new();
    let mut wrong = 0;
    // Near-copies refused as templated siblings: [of another true story, of their own].
    let mut refused = [0usize; 2];
    let mut missed = 0;
    let mut miss_reasons: HashMap<String, usize> = HashMap::new();
    // First copy (index) of each true story seen so far, to explain missed joins.
    let mut first_of_truth: HashMap<usize, usize> = HashMap::new();
    for (i, copy) in sample.copies.iter().enumerate() {
        let sig = Signature::of(&copy.entry);
        // As the writer does for a copy from another feed: a templated sibling of the story
        // (its first copy standing for the representative) starts a story of its own.
        let found = index
            .find_ranked(&sig, copy.entry.published, 8)
            .into_iter()
            .find(|found| {
                let first = &sample.copies[founder[&found.story]];
                let siblings = templated_siblings(
                    &first.entry.title,
                    &first.entry.text,
                    &copy.entry.title,
                    &copy.entry.text,
                );
                if siblings {
                    refused[usize::from(first.story == copy.story)] += 1;
                }
                !siblings
            });
        let story = match found {
            Some(found) => {
                let first = &sample.copies[founder[&found.story]];
                if first.story != copy.story {
                    wrong += 1;
                    if wrong <= 6 {
                        println!(
                            "  wrong join: doc {} {:?} -> story of doc {} {:?}: {}",
                            copy.doc, copy.entry.title, first.doc, first.entry.title, found.summary
                        );
                    }
                }
                found.story
            }
            None => {
                if let Some(&f) = first_of_truth.get(&copy.story) {
                    missed += 1;
                    let first = &sample.copies[f];
                    let why = compare(&sig, &Signature::of(&first.entry));
                    let reason = match why.summary.rsplit_once("; ") {
                        _ if why.matched => "matches the first copy (LSH miss or window)",
                        Some((_, reason)) => reason,
                        None => "?",
                    };
                    *miss_reasons.entry(reason.to_string()).or_default() += 1;
                    if missed <= 6 {
                        println!(
                            "  missed join: {:?} <> {:?}: {}{}",
                            copy.entry.title,
                            first.entry.title,
                            why.summary,
                            if why.matched {
                                " (LSH miss or other representative)"
                            } else {
                                ""
                            }
                        );
                    }
                }
                next += 1;
                next - 1
            }
        };
        index.insert(story, &sig, copy.entry.published);
        founder.entry(story).or_insert(i);
        first_of_truth.entry(copy.story).or_insert(i);
        predicted.push(story);
    }
    println!(
        "  refused as templated siblings: {} of other stories, {} of their own",
        refused[0], refused[1]
    );
    // Outlets' edits (trims, synonyms, spelling, related-stories blocks, bylines) are no
    // names swapped in place: no copy of a story is refused by its own story.
    assert_eq!(
        refused[1], 0,
        "copies refused by their own story as templated siblings"
    );
    let mut reasons: Vec<(String, usize)> = miss_reasons.into_iter().collect();
    reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
    println!(
        "  {missed} copies started a new story although their story existed; vs its first copy: {reasons:?}"
    );
    predicted
}

/// Prints precision/recall overall, the worst wrong merges and per-kind figures.
fn report(name: &str, sample: &Sample, predicted: &[StoryId]) -> (f64, f64) {
    let truth: Vec<usize> = sample.copies.iter().map(|c| c.story).collect();
    let (p, r, both, pred_pairs, true_pairs) = pairwise(&truth, predicted);
    println!(
        "{name}: {} copies of {} stories; pairwise precision {p:.4} ({both}/{pred_pairs}), \
         recall {r:.4} ({both}/{true_pairs})",
        sample.copies.len(),
        sample.kinds.len()
    );
    for kind in [Kind::Plain, Kind::Templated, Kind::BorrowedTitle] {
        let keep: Vec<usize> = (0..truth.len())
            .filter(|&i| sample.kinds[truth[i]] == kind)
            .collect();
        let t: Vec<usize> = keep.iter().map(|&i| truth[i]).collect();
        let q: Vec<StoryId> = keep.iter().map(|&i| predicted[i]).collect();
        let (kp, kr, ..) = pairwise(&t, &q);
        println!(
            "  {kind:?}: {} copies, precision {kp:.4}, recall {kr:.4}",
            keep.len()
        );
    }
    (p, r)
}

#[test]
fn syndicated_copies_cluster_with_high_pairwise_precision_and_recall() {
    let path = syndicate::data_dir().join("reuters21578/trade.jsonl.gz");
    let Some(docs) = load_corpus(&path) else {
        eprintln!(
            "notice: {} not found; skipping the clustering quality test",
            path.display()
        );
        return;
    };
    let (docs, dropped) = drop_resends(docs);
    println!(
        "corpus: {} documents kept, {dropped} re-sends of other documents dropped",
        docs.len()
    );
    let standard = generate(&docs, Mode::Standard, SEED, 1500, 60, 150);
    let (p, r) = report("standard", &standard, &cluster(&standard));
    let heavy = generate(&docs, Mode::Heavy, SEED ^ 0x5555, 1500, 60, 150);
    let (hp, hr) = report("heavy", &heavy, &cluster(&heavy));
    assert!(p >= 0.98, "standard precision {p:.4} < 0.98");
    assert!(r >= 0.95, "standard recall {r:.4} < 0.95");
    assert!(hp >= 0.98, "heavy precision {hp:.4} < 0.98");
    assert!(hr >= 0.80, "heavy recall {hr:.4} < 0.80");
}
