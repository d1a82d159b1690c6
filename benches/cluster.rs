//! Near-duplicate clustering cost and memory.
//!
//! - `baseline/lowercase_tokenize`: lower-casing and splitting a ~300-word text into words, the
//!   least any text stage does per entry; the ratios below are against it.
//! - `signature/of`: `Signature::of` for the same text.
//! - `index/find_insert_100k`: `find` then `insert` of a new story into an index pre-filled
//!   with 100,000 stories.
//! - `template/copy`: `templated_siblings` for a story and another feed's copy of it (a
//!   sentence cut, one added), the check the writer makes for each cross-feed near-copy;
//!   `template/sibling`: the same text with two of its subjects swapped, the longest path.
//! - Memory: an index of 1,000,000 stories built from synthetic signatures (random MinHash
//!   minima, headline terms and figures, in the stored format), reported as the index's own
//!   capacity arithmetic (`StoryIndex::heap_bytes`) and as the process's resident-set growth
//!   read from `/proc/self/statm`.
//!
//! Texts are synthetic (a 20,000-word Zipf-like vocabulary with figures), so the bench needs
//! no corpus.

use std::hint::black_box;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::Criterion;
use tradefeed::cluster::{ClusterConfig, Signature, StoryIndex, templated_siblings};

/// xorshift64* (deterministic, no `rand`).
struct Prng(u64);

impl Prng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// A pronounceable word for vocabulary rank `rank`.
fn word(rank: u64) -> String {
    const SYLLABLES: &[&str] = &[
        "ba", "ko", "ri", "tan", "mel", "su", "de", "gor", "li", "pa", "ven", "to", "mi", "ras",
        "ne", "qu", "zo", "lan", "fi", "ter",
    ];
    let mut w = String::new();
    let mut r = rank + 20;
    while r > 0 {
        w.push_str(SYLLABLES[(r % 20) as usize]);
        r /= 20;
    }
    w
}

/// A ~300-word news-like text: words drawn with a Zipf-like skew, a figure every ~15 words.
fn text(rng: &mut Prng) -> String {
    let mut out = Vec::with_capacity(300);
    for i in 0..300 {
        if i % 15 == 7 {
            out.push(format!(
                "{}.{}",
                rng.next_u64() % 1000,
                rng.next_u64() % 100
            ));
        } else {
            // Squaring a uniform draw favours low ranks, like word frequencies do.
            let u = (rng.next_u64() % 20_000) as f64 / 20_000.0;
            out.push(word((u * u * 20_000.0) as u64));
        }
        if i % 20 == 19 {
            out.last_mut().expect("a word").push('.');
        }
    }
    out.join(" ")
}

/// A ~300-word text written as news is: sentences of 20 words that start with a capital, and
/// one word in six a name capitalised inside its sentence, drawn from 40 names (so each
/// recurs, as a story's subjects do).
fn text_with_names(rng: &mut Prng) -> String {
    let mut out: Vec<String> = Vec::with_capacity(300);
    for i in 0..300 {
        let mut w = if i % 6 == 3 {
            word(rng.next_u64() % 40 + 5_000)
        } else {
            word(rng.next_u64() % 20_000)
        };
        if i % 6 == 3 || i % 20 == 0 {
            w[..1].make_ascii_uppercase();
        }
        if i % 20 == 19 {
            w.push('.');
        }
        out.push(w);
    }
    out.join(" ")
}

fn title(rng: &mut Prng) -> String {
    (0..8)
        .map(|_| word(rng.next_u64() % 20_000))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A synthetic signature in the stored format (version 1): random minima, 8 headline terms,
/// 6 figure contexts. Far cheaper to make a million of than hashing a million texts.
fn synthetic_signature(rng: &mut Prng) -> Signature {
    let mut bytes = vec![1u8];
    bytes.extend_from_slice(&250u16.to_le_bytes());
    bytes.extend_from_slice(&300u16.to_le_bytes());
    for _ in 0..64 {
        bytes.extend_from_slice(&(rng.next_u64() as u32).to_le_bytes());
    }
    bytes.push(8);
    for _ in 0..8 {
        bytes.extend_from_slice(&(rng.next_u64() as u16).to_le_bytes());
    }
    bytes.push(12);
    bytes.push(6);
    let mut figures: Vec<u32> = (0..6).map(|_| rng.next_u64() as u32).collect();
    figures.sort_unstable();
    for f in figures {
        bytes.extend_from_slice(&f.to_le_bytes());
    }
    Signature::from_bytes(&bytes).expect("valid synthetic signature")
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
}

/// Resident set size in bytes, from `/proc/self/statm` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Builds a 1,000,000-story index and prints its memory.
fn memory_report() {
    const STORIES: usize = 1_000_000;
    let mut rng = Prng(0x5EED_0001);
    let before = resident_bytes();
    let began = Instant::now();
    let mut index = StoryIndex::new(ClusterConfig::default());
    for story in 0..STORIES {
        let seen = start() + Duration::seconds(story as i64 % (6 * 86_400));
        index.insert(story as i64, &synthetic_signature(&mut rng), seen);
    }
    let built = began.elapsed();
    let after = resident_bytes();
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    println!(
        "memory: {} stories indexed in {:.1} s; heap (capacity arithmetic) {} bytes = {:.1} MiB \
         ({:.0} bytes/story)",
        index.len(),
        built.as_secs_f64(),
        index.heap_bytes(),
        mib(index.heap_bytes() as u64),
        index.heap_bytes() as f64 / STORIES as f64
    );
    if let (Some(b), Some(a)) = (before, after) {
        println!(
            "memory: resident set grew by {} bytes = {:.1} MiB while building",
            a.saturating_sub(b),
            mib(a.saturating_sub(b))
        );
    }
    black_box(&index);
}

fn benches(c: &mut Criterion) {
    let mut rng = Prng(0x5EED_0002);
    let sample_title = title(&mut rng);
    let sample_text = text(&mut rng);
    println!("text: {} words", sample_text.split_whitespace().count());

    c.bench_function("baseline/lowercase_tokenize", |b| {
        b.iter(|| {
            let lower = black_box(&sample_text).to_lowercase();
            let words: Vec<&str> = lower
                .split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .collect();
            black_box(words.len())
        })
    });

    c.bench_function("signature/of", |b| {
        b.iter(|| Signature::of_text(black_box(&sample_title), black_box(&sample_text)))
    });

    // 100,000 stories from real signatures of distinct texts, then per iteration one entry's
    // find + insert (its signature computed outside the timed part), cycling through 1,000
    // new texts: the first pass adds stories, later passes find their earlier copy.
    let mut index = StoryIndex::new(ClusterConfig::default());
    for story in 0..100_000i64 {
        let sig = Signature::of_text(&title(&mut rng), &text(&mut rng));
        index.insert(story, &sig, start() + Duration::seconds(story));
    }
    let fresh: Vec<Signature> = (0..1_000)
        .map(|_| Signature::of_text(&title(&mut rng), &text(&mut rng)))
        .collect();
    let mut next = 100_000i64;
    c.bench_function("index/find_insert_100k", |b| {
        b.iter(|| {
            let sig = &fresh[next as usize % fresh.len()];
            let seen = start() + Duration::seconds(next);
            let story = match index.find(black_box(sig), seen) {
                Some(found) => found.story,
                None => next,
            };
            index.insert(story, sig, seen);
            next += 1;
        })
    });
}

/// The templated-sibling check on a copy and on a sibling.
fn template_benches(c: &mut Criterion, rng: &mut Prng) {
    let story_title = title(rng);
    let story = text_with_names(rng);
    let sentences: Vec<&str> = story.split_inclusive(". ").collect();
    // Another outlet's copy: its own first sentence, the third cut.
    let copy = format!(
        "By a staff writer for the outlet. {}{}",
        sentences[1..2].concat(),
        sentences[3..].concat()
    );
    c.bench_function("template/copy", |b| {
        b.iter(|| {
            templated_siblings(
                black_box(&story_title),
                black_box(&story),
                black_box(&story_title),
                black_box(&copy),
            )
        })
    });
    // Two of the story's names swapped for names it never uses.
    let names: Vec<String> = (5_000..5_040).map(word).collect();
    let used: Vec<&String> = names
        .iter()
        .filter(|n| {
            let mut capital = (*n).clone();
            capital[..1].make_ascii_uppercase();
            story.matches(capital.as_str()).count() >= 2
        })
        .take(2)
        .collect();
    let mut sibling = story.clone();
    for (k, name) in used.iter().enumerate() {
        let (mut from, mut to) = ((*name).clone(), word(9_000 + k as u64));
        from[..1].make_ascii_uppercase();
        to[..1].make_ascii_uppercase();
        sibling = sibling.replace(&from, &to);
    }
    assert!(templated_siblings(
        &story_title,
        &story,
        &story_title,
        &sibling
    ));
    c.bench_function("template/sibling", |b| {
        b.iter(|| {
            templated_siblings(
                black_box(&story_title),
                black_box(&story),
                black_box(&story_title),
                black_box(&sibling),
            )
        })
    });
}

fn main() {
    // As the daemon does: headline terms stemmed through the classifier's stem caches.
    tradefeed::cluster::use_stem_hash(tradefeed::classify::stem_hash_of_word);
    // `CLUSTER_BENCH_SKIP_MEMORY=1` skips the 1,000,000-story build (e.g. when profiling).
    if std::env::var_os("CLUSTER_BENCH_SKIP_MEMORY").is_none() {
        memory_report();
    }
    let mut criterion = Criterion::default().configure_from_args();
    benches(&mut criterion);
    template_benches(&mut criterion, &mut Prng(0x5EED_0003));
    criterion.final_summary();
}
