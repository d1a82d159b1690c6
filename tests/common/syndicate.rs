//! Generator of syndicated copies of Reuters-21578 stories, with ground truth, for measuring
//! near-duplicate clustering.
//!
//! Every chosen document becomes one *true story*, published by 1–6 outlets. Each outlet's copy
//! is built independently from the original: its own headline, boilerplate, trimming, word edits,
//! HTML, URL and time. Two modes are built differently so that a matcher tuned to one is caught
//! out by the other:
//!
//! - [`Mode::Standard`]: headline rewrites from a menu (case, `UPDATE n-`, ` - sources`,
//!   synonyms, dropped or reordered words), a dateline or `Published on …` line in front,
//!   `Read more at …` / copyright after, trailing paragraphs cut (≥ 50 % of words kept), about
//!   1 % of words edited, published up to 3 days after the story.
//! - [`Mode::Heavy`]: headlines rewritten from the lead sentence, sentence-level edits (one or
//!   two sentences dropped or swapped), about 4 % of words edited, "pct" spelled out, related-
//!   headline blocks of *other* stories inserted, trimming by sentences, up to 5 days later.
//!
//! Hard negatives: documents whose titles share a template ("… QTR NET", "U.K. MONEY MARKET
//! GIVEN …", the same strike talks reported on several days) are all included and published
//! within 3 days of each other, and some documents are republished under the headline of a
//! *different* document (same title template, different text).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use tradefeed::domain::Entry;

/// Deterministic xorshift64* generator (no `rand` needed; a fixed seed gives a fixed sample).
pub struct Prng(u64);

impl Prng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Prng {
        Prng(seed.max(1))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A random element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One Reuters-21578 document (title and body with the trailing "Reuter" signature removed).
#[derive(Debug, Clone)]
pub struct Doc {
    /// Corpus id.
    pub id: u64,
    /// Headline as Reuters ran it (upper case).
    pub title: String,
    /// Body paragraphs.
    pub paragraphs: Vec<String>,
}

impl Doc {
    fn words(&self) -> usize {
        self.paragraphs
            .iter()
            .map(|p| p.split_whitespace().count())
            .sum()
    }
}

/// Where the shared corpora live: `$TRADEFEED_DATA`, else `../shared/data` next to the crate.
pub fn data_dir() -> PathBuf {
    std::env::var_os("TRADEFEED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")))
}

/// Loads the corpus, dropping title-only items and exact duplicate bodies (Reuters-21578 holds
/// about a thousand re-sent documents, which would otherwise be two "different" true stories).
/// `None` if the file is absent.
pub fn load_corpus(path: &Path) -> Option<Vec<Doc>> {
    let file = std::fs::File::open(path).ok()?;
    let reader = BufReader::new(flate2::read::GzDecoder::new(file));
    let mut seen = std::collections::HashSet::new();
    let mut docs = Vec::new();
    for line in reader.lines() {
        let line = line.expect("corpus line");
        let record: serde_json::Value = serde_json::from_str(&line).expect("corpus json");
        let title = record["title"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_string();
        let body = record["body"].as_str().unwrap_or_default();
        let key: String = body
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if title.is_empty() || key.is_empty() || !seen.insert(key) {
            continue;
        }
        let mut paragraphs: Vec<String> = body
            .split("\n    ")
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty())
            .collect();
        if let Some(last) = paragraphs.last_mut() {
            for signature in [" Reuter", " REUTER", "Reuter", "REUTER"] {
                if let Some(stripped) = last.strip_suffix(signature) {
                    *last = stripped.trim_end().to_string();
                    break;
                }
            }
        }
        paragraphs.retain(|p| !p.is_empty());
        if paragraphs.is_empty() {
            continue;
        }
        docs.push(Doc {
            id: record["id"].as_u64().expect("corpus id"),
            title,
            paragraphs,
        });
    }
    Some(docs)
}

/// Drops documents that are re-sends of an earlier document: at least half of the shorter one's
/// sentences (of six words or more), or at least three of them, appear verbatim in the other. Reuters re-sent and updated
/// stories under new headlines; the corpus does not say they are the same story, so keeping
/// both would make correct merges count as errors. Returns the kept documents and the number
/// dropped.
pub fn drop_resends(docs: Vec<Doc>) -> (Vec<Doc>, usize) {
    let sentences: Vec<Vec<String>> = docs
        .iter()
        .map(|d| {
            let text = d.paragraphs.join(" ").to_lowercase();
            let mut list: Vec<String> = text
                .split(". ")
                .map(str::trim)
                .filter(|s| s.split_whitespace().count() >= 6)
                .map(str::to_string)
                .collect();
            list.sort();
            list.dedup();
            list
        })
        .collect();
    let mut holders: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut keep = vec![true; docs.len()];
    for (i, list) in sentences.iter().enumerate() {
        let mut shared: HashMap<usize, usize> = HashMap::new();
        for s in list {
            for &j in holders.get(s.as_str()).into_iter().flatten() {
                *shared.entry(j).or_default() += 1;
            }
        }
        let resend = shared
            .iter()
            .any(|(&j, &n)| n >= 3 || 2 * n >= list.len().min(sentences[j].len()));
        if resend {
            keep[i] = false;
        } else {
            for s in list {
                holders.entry(s.as_str()).or_default().push(i);
            }
        }
    }
    let dropped = keep.iter().filter(|k| !**k).count();
    let kept = docs
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(d, _)| d)
        .collect();
    (kept, dropped)
}

/// How copies are built (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Menu-driven headline rewrites, paragraph trimming, light edits.
    Standard,
    /// Lead-sentence headlines, sentence-level edits, heavier word edits, related-link blocks.
    Heavy,
}

/// One generated copy with its ground truth.
#[derive(Debug, Clone)]
pub struct Copy {
    /// The true story (index into the chosen stories).
    pub story: usize,
    /// Corpus id of the document the copy was made from.
    pub doc: u64,
    /// The entry as normalize would hand it over.
    pub entry: Entry,
}

/// How a story was chosen, for per-kind reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A document picked at random.
    Plain,
    /// A member of a group of documents whose titles share a template.
    Templated,
    /// A document republished under another document's headline.
    BorrowedTitle,
}

/// The generated sample: copies in publication order, and each true story's kind.
pub struct Sample {
    /// Every outlet's copy, sorted by publication time.
    pub copies: Vec<Copy>,
    /// Kind of each true story.
    pub kinds: Vec<Kind>,
}

const OUTLETS: &[&str] = &[
    "reuters",
    "tradewire",
    "globalpost",
    "financialdaily",
    "portnews",
    "agrimarkets",
    "asiabusiness",
    "eurotrade",
    "capitalcourier",
    "marketwatcher",
];

/// Title template: the first three words with figures and `<TICKER>`s masked. Documents sharing
/// one ("U.K. MONEY MARKET", "<X> 1ST QTR NET" by its tail) are hard negatives for each other.
fn template(title: &str) -> String {
    let words: Vec<String> = title
        .split_whitespace()
        .filter(|w| !w.starts_with('<'))
        .map(|w| {
            if w.bytes().any(|b| b.is_ascii_digit()) {
                "#".to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    if title.contains("QTR") || title.contains("DIVIDEND") || title.ends_with(" NET") {
        // Earnings and dividend items: the company name varies, the tail is the template.
        words[words.len().saturating_sub(3)..].join(" ")
    } else {
        words[..words.len().min(3)].join(" ")
    }
}

/// Builds the sample: `plain` random documents with at least 60 words, every member of up to
/// `groups` title-template groups, and `borrowed` documents republished under another's title.
pub fn generate(
    docs: &[Doc],
    mode: Mode,
    seed: u64,
    plain: usize,
    groups: usize,
    borrowed: usize,
) -> Sample {
    let mut rng = Prng::new(seed);
    let start = Utc.with_ymd_and_hms(1987, 3, 1, 6, 0, 0).unwrap();
    let span_minutes = 60 * 24 * 60;

    // Stories: (doc index, headline to use, first publication time, kind).
    let mut stories: Vec<(usize, String, DateTime<Utc>, Kind)> = Vec::new();
    let mut used = std::collections::HashSet::new();

    let mut by_template: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, d) in docs.iter().enumerate() {
        if d.words() >= 15 {
            by_template.entry(template(&d.title)).or_default().push(i);
        }
    }
    let mut group_keys: Vec<&String> = by_template
        .iter()
        .filter(|(_, members)| members.len() >= 2)
        .map(|(k, _)| k)
        .collect();
    group_keys.sort();
    for _ in 0..groups.min(group_keys.len()) {
        let key = group_keys.swap_remove(rng.below(group_keys.len()));
        let base = start + Duration::minutes(rng.below(span_minutes) as i64);
        for &i in by_template[key].iter().take(8) {
            if used.insert(i) {
                let t = base + Duration::minutes(rng.below(3 * 24 * 60) as i64);
                stories.push((i, docs[i].title.clone(), t, Kind::Templated));
            }
        }
    }

    let long: Vec<usize> = (0..docs.len()).filter(|&i| docs[i].words() >= 60).collect();
    let mut added = 0;
    while added < plain && used.len() < docs.len() {
        let i = *rng.pick(&long);
        if used.insert(i) {
            let t = start + Duration::minutes(rng.below(span_minutes) as i64);
            stories.push((i, docs[i].title.clone(), t, Kind::Plain));
            added += 1;
        }
    }

    // Republish other documents under the headline of an already chosen story, close in time.
    let chosen = stories.len();
    let mut added = 0;
    while added < borrowed {
        let i = *rng.pick(&long);
        if !used.insert(i) {
            continue;
        }
        let (_, title, t, _) = stories[rng.below(chosen)].clone();
        let t = t + Duration::minutes(rng.below(2 * 24 * 60) as i64);
        stories.push((i, title, t, Kind::BorrowedTitle));
        added += 1;
    }

    let mut copies = Vec::new();
    for (story, (doc, title, first, _)) in stories.iter().enumerate() {
        let outlets = 1 + rng.below(6);
        let mut names: Vec<&str> = OUTLETS.to_vec();
        for n in 0..outlets {
            let outlet = names.swap_remove(rng.below(names.len()));
            let delay_days = if mode == Mode::Heavy { 5 } else { 3 };
            let published = if n == 0 {
                *first
            } else {
                *first + Duration::minutes(rng.below(delay_days * 24 * 60) as i64)
            };
            let other = &docs[*rng.pick(&long)].title;
            let (headline, paragraphs) = match mode {
                Mode::Standard => standard_copy(&mut rng, title, &docs[*doc], published),
                Mode::Heavy => heavy_copy(&mut rng, title, &docs[*doc], other),
            };
            copies.push(Copy {
                story,
                doc: docs[*doc].id,
                entry: entry(outlet, story, n, &headline, &paragraphs, published),
            });
        }
    }
    copies.sort_by_key(|c| c.entry.published);
    Sample {
        copies,
        kinds: stories.iter().map(|s| s.3).collect(),
    }
}

/// Wraps paragraphs in an outlet's HTML and builds the entry normalize would produce: the text
/// is the paragraphs joined with folded whitespace.
fn entry(
    outlet: &str,
    story: usize,
    n: usize,
    title: &str,
    paragraphs: &[String],
    published: DateTime<Utc>,
) -> Entry {
    let slug: String = title
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(6)
        .collect::<Vec<_>>()
        .join("-");
    let link = format!(
        "https://www.{outlet}.example/{}/{slug}-{}",
        published.format("%Y/%m/%d"),
        story * 10 + n
    );
    let html = paragraphs
        .iter()
        .map(|p| {
            format!(
                "<p class=\"{outlet}-para\">{}</p>",
                html_escape::encode_text(p)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let text = paragraphs.join(" ");
    Entry {
        identity: link.clone(),
        earlier_title: None,
        content_hash_with_dates: String::new(),
        content_hash_with_pixels: None,
        media: Default::default(),
        content_hash_without_media: None,
        relative_urls: false,
        content_hash_exact_white_space: String::new(),
        content_hash_exact_white_space_without_media: None,
        untracked_hash: None,
        title: title.to_string(),
        canonical_url: Some(link.clone()),
        link: Some(link),
        authors: vec![format!("{outlet} staff")],
        published,
        updated: published,
        dated: true,
        html,
        fingerprint: format!("fp-{story}-{n}"),
        content_hash: format!("ch-{story}-{n}"),
        base_url: None,
        text,
    }
}

/// Word substitutions an editor might make (both directions are used).
const SYNONYMS: &[(&str, &str)] = &[
    ("said", "stated"),
    ("rise", "increase"),
    ("rose", "climbed"),
    ("fell", "dropped"),
    ("talks", "negotiations"),
    ("trade", "commerce"),
    ("government", "administration"),
    ("company", "firm"),
    ("expected", "anticipated"),
    ("told", "informed"),
    ("U.S.", "US"),
    ("mln", "million"),
    ("billion", "bln"),
    ("dlrs", "dollars"),
    ("pct", "percent"),
    ("narrows", "shrinks"),
    ("rises", "climbs"),
    ("cuts", "reduces"),
    ("says", "said"),
    ("sees", "expects"),
    ("to", "will"),
    ("up", "higher"),
    ("down", "lower"),
];

fn synonym(word: &str) -> Option<&'static str> {
    let lower = word.to_lowercase();
    SYNONYMS.iter().find_map(|(a, b)| {
        if a.to_lowercase() == lower {
            Some(*b)
        } else if b.to_lowercase() == lower {
            Some(*a)
        } else {
            None
        }
    })
}

fn title_case(s: &str) -> String {
    s.split_whitespace()
        .map(|w| {
            let lower = w.to_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A menu-driven headline rewrite (1–2 transforms).
fn rewrite_headline(rng: &mut Prng, title: &str) -> String {
    let mut t = title.to_string();
    for _ in 0..1 + rng.below(2) {
        let words: Vec<&str> = t.split_whitespace().collect();
        t = match rng.below(7) {
            0 => title_case(&t),
            1 => format!("UPDATE {}-{}", 1 + rng.below(3), t),
            2 => format!(
                "{t} - {}",
                rng.pick(&["sources", "officials say", "report", "analysts"])
            ),
            3 => words
                .iter()
                .map(|w| synonym(w).map_or_else(|| w.to_string(), str::to_uppercase))
                .collect::<Vec<_>>()
                .join(" "),
            4 if words.len() > 4 => {
                let drop = 1 + rng.below(words.len() - 1);
                words
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != drop)
                    .map(|(_, w)| *w)
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            5 if words.len() > 4 => {
                let cut = 2 + rng.below(words.len() - 3);
                format!("{}: {}", words[cut..].join(" "), words[..cut].join(" "))
            }
            _ => t.to_lowercase(),
        };
    }
    t
}

/// Replaces, drops or inserts words with probability `rate` per word.
fn edit_words(rng: &mut Prng, text: &str, rate: f64) -> String {
    let mut out: Vec<String> = Vec::new();
    for w in text.split_whitespace() {
        if !rng.chance(rate) {
            out.push(w.to_string());
            continue;
        }
        match rng.below(3) {
            0 => out.push(synonym(w).map_or_else(|| w.to_string(), str::to_string)),
            1 => {}
            _ => {
                out.push(
                    rng.pick(&["also", "now", "reportedly", "meanwhile"])
                        .to_string(),
                );
                out.push(w.to_string());
            }
        }
    }
    out.join(" ")
}

const DATELINES: &[&str] = &[
    "WASHINGTON",
    "TOKYO",
    "LONDON",
    "BRUSSELS",
    "OTTAWA",
    "SYDNEY",
];

/// A standard copy: rewritten headline, boilerplate, paragraph trimming, light edits.
fn standard_copy(
    rng: &mut Prng,
    title: &str,
    doc: &Doc,
    published: DateTime<Utc>,
) -> (String, Vec<String>) {
    let headline = if rng.chance(0.2) {
        title.to_string()
    } else {
        rewrite_headline(rng, title)
    };
    let total = doc.words();
    let keep_share = 0.5 + 0.5 * rng.unit();
    let mut paragraphs = Vec::new();
    let mut kept = 0;
    for p in &doc.paragraphs {
        if kept as f64 >= keep_share * total as f64 {
            break;
        }
        kept += p.split_whitespace().count();
        paragraphs.push(edit_words(rng, p, 0.01));
    }
    if rng.chance(0.6) {
        let line = match rng.below(3) {
            0 => "(Reuters) -".to_string(),
            1 => format!(
                "{}, {} (Reuters) -",
                rng.pick(DATELINES),
                published.format("%B %-d")
            ),
            _ => format!("Published on {}", published.format("%-I:%M %p, %B %-d, %Y")),
        };
        paragraphs.insert(0, line);
    }
    if rng.chance(0.5) {
        paragraphs.push(match rng.below(3) {
            0 => format!(
                "Read more at https://www.example.com/news/{}",
                rng.below(100_000)
            ),
            1 => format!(
                "Copyright {} Reuters. All rights reserved.",
                published.format("%Y")
            ),
            _ => "Share this article: Facebook Twitter LinkedIn Email".to_string(),
        });
    }
    (headline, paragraphs)
}

/// A heavy copy: lead-sentence headline, sentence drops and swaps, 4 % word edits, related
/// headlines of another story inserted, trimming by sentences.
fn heavy_copy(rng: &mut Prng, title: &str, doc: &Doc, other_title: &str) -> (String, Vec<String>) {
    let text = doc.paragraphs.join(" ");
    let mut sentences: Vec<String> = text
        .split_inclusive(". ")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let headline = if rng.chance(0.5) {
        let lead: Vec<&str> = sentences[0]
            .split_whitespace()
            .take(6 + rng.below(4))
            .collect();
        title_case(lead.join(" ").trim_end_matches(['.', ',']))
    } else {
        rewrite_headline(rng, title)
    };
    if sentences.len() > 4 {
        for _ in 0..1 + rng.below(2) {
            let i = 1 + rng.below(sentences.len() - 2);
            if rng.chance(0.5) {
                sentences.remove(i);
            } else {
                sentences.swap(i, i + 1);
            }
        }
    }
    let total: usize = sentences.iter().map(|s| s.split_whitespace().count()).sum();
    let keep_share = 0.5 + 0.5 * rng.unit();
    let mut out = Vec::new();
    let mut kept = 0;
    for s in &sentences {
        if kept as f64 >= keep_share * total as f64 {
            break;
        }
        kept += s.split_whitespace().count();
        out.push(edit_words(rng, &s.replace(" pct", " percent"), 0.04));
    }
    if out.len() > 2 && rng.chance(0.5) {
        let at = 1 + rng.below(out.len() - 1);
        out.insert(
            at,
            format!("Related: {} Advertisement", title_case(other_title)),
        );
    }
    if rng.chance(0.5) {
        out.insert(
            0,
            format!(
                "By {} staff | Updated {} hours ago",
                rng.pick(OUTLETS),
                1 + rng.below(12)
            ),
        );
    }
    (headline, out)
}

/// Pairwise precision and recall of a clustering over copies.
pub fn pairwise(truth: &[usize], predicted: &[i64]) -> (f64, f64, u64, u64, u64) {
    let choose2 = |n: u64| n * n.saturating_sub(1) / 2;
    let mut cells: HashMap<(i64, usize), u64> = HashMap::new();
    let mut by_pred: HashMap<i64, u64> = HashMap::new();
    let mut by_true: HashMap<usize, u64> = HashMap::new();
    for (&t, &p) in truth.iter().zip(predicted) {
        *cells.entry((p, t)).or_default() += 1;
        *by_pred.entry(p).or_default() += 1;
        *by_true.entry(t).or_default() += 1;
    }
    let both: u64 = cells.values().map(|&n| choose2(n)).sum();
    let pred_pairs: u64 = by_pred.values().map(|&n| choose2(n)).sum();
    let true_pairs: u64 = by_true.values().map(|&n| choose2(n)).sum();
    let precision = if pred_pairs == 0 {
        1.0
    } else {
        both as f64 / pred_pairs as f64
    };
    let recall = if true_pairs == 0 {
        1.0
    } else {
        both as f64 / true_pairs as f64
    };
    (precision, recall, both, pred_pairs, true_pairs)
}
