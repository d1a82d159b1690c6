//! The in-memory story index: compact slots, an LSH band table over them, and the matching rule.

use chrono::{DateTime, Utc};

use super::signature::{
    BINS, FIGURES, LEAD_SHINGLES, Signature, TITLE_TERMS, WIDE_BINS, is_figure_hash,
};
use super::{ClusterConfig, Comparison, MatchEvidence};
use crate::domain::StoryId;

/// LSH bands: each band is two adjacent 16-bit minima. Two copies collide in a band with
/// probability J², so in at least one of 16 bands with 1 − (1 − J²)¹⁶: 0.94 at J = 0.4,
/// 0.99 at J = 0.5, while unrelated texts (J ≈ 0.003) collide in 0.01 % of cases.
pub(crate) const BANDS: usize = 16;
/// Below this many distinct shingles a text is too short to judge by its words: never matched.
pub(crate) const MIN_SHINGLES: u16 = 8;
/// Below this many shingles (≈ a 45-word wire brief) the stricter brief rule applies.
pub(crate) const BRIEF_SHINGLES: u16 = 40;
/// Containment of the shorter copy in the longer that alone proves a copy (long texts).
pub(crate) const TEXT_ALONE: f64 = 0.6;
/// Containment that proves a copy when the headlines also agree (long texts).
pub(crate) const TEXT_WITH_TITLE: f64 = 0.4;
/// Headline term overlap that counts as agreement (long texts).
pub(crate) const TITLE_AGREES: f64 = 0.5;
/// Containment required for briefs. A brief's own words cannot tell templated items apart
/// (two dividend notices read alike), so the headline decides and the text only has to agree.
pub(crate) const BRIEF_TEXT: f64 = 0.6;
/// Headline overlap required for briefs.
pub(crate) const BRIEF_TITLE: f64 = 0.8;
/// The shorter copy must hold at least this share of the longer copy's shingles: beyond that
/// the MinHash estimate of containment is too coarse to trust.
pub(crate) const MIN_SIZE_RATIO: f64 = 0.25;
/// Below this Jaccard similarity a text-only match (headlines not agreeing) also needs the
/// two openings to agree: the shorter text then covers less than half of the longer.
pub(crate) const QUOTE_JACCARD: f64 = 0.5;
/// Share of the shorter text's lead shingles that must stand in the longer text's lead for
/// its openings to agree. Edits and a prefixed byline leave a trimmed copy well above it;
/// unrelated openings share an 8-bit lead hash by chance about 1 time in 16.
pub(crate) const LEAD_AGREES: f64 = 0.25;

/// Marker of an unused table cell.
const EMPTY: u32 = u32::MAX;
/// Slot numbers are stored in 24 bits of a table cell (the other 8 are a key tag).
const MAX_SLOTS: usize = (1 << 24) - 1;
/// The table is rebuilt larger when more than this share of cells is used...
const MAX_LOAD: f64 = 0.7;
/// ...and rebuilt with this share used, half of the above: each rebuild puts every slot
/// again, and doubling keeps that to about one more put per slot over the index's growth
/// (a growth of 1.25 was five, most of the puts of a 2,400-feed pass). The lower load also
/// keeps linear-probe runs short (about half the cells visited per lookup).
const REBUILD_LOAD: f64 = 0.35;
/// At most this many stories are kept under one band key: the latest indexed. Templated
/// items (central-bank operations, earnings briefs, market alerts) share some bands with every
/// other item of their template, so without a bound such a key's list, and each lookup's
/// candidates, grow with the index: at 66,000 stories one key held 1,163. Past the bound the
/// key says little (like a stopword); a true copy shares many bands with its original
/// (all 16 for an unedited one) and is still found through the others.
const BAND_KEY_STORIES: usize = 32;

/// One indexed story: its representative copy's sketch and evidence, 176 bytes.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    story: StoryId,
    /// Seconds since the Unix epoch when the story was first seen (u32 lasts until 2106).
    first_seen: u32,
    shingles: u16,
    wide: [u16; WIDE_BINS],
    narrow: [u8; BINS - WIDE_BINS],
    title: [u16; TITLE_TERMS],
    figures: [u32; FIGURES],
    lead: [u8; LEAD_SHINGLES],
    n_title: u8,
    /// Distinct figures in the text; the first `min(figures_total, FIGURES)` are sampled.
    figures_total: u8,
    /// 0 for a signature stored before the lead was kept: the lead rule does not apply.
    n_lead: u8,
}

impl Slot {
    pub(crate) fn new(story: StoryId, sig: &Signature, seen: DateTime<Utc>) -> Slot {
        let mut wide = [0u16; WIDE_BINS];
        let mut narrow = [0u8; BINS - WIDE_BINS];
        for (i, m) in sig.minhash.iter().enumerate() {
            if i < WIDE_BINS {
                wide[i] = *m as u16;
            } else {
                narrow[i - WIDE_BINS] = *m as u8;
            }
        }
        let mut figures = [0u32; FIGURES];
        figures[..sig.figures.len()].copy_from_slice(&sig.figures);
        let mut title = [0u16; TITLE_TERMS];
        title[..sig.title.len()].copy_from_slice(&sig.title);
        let mut lead = [0u8; LEAD_SHINGLES];
        lead[..sig.lead.len()].copy_from_slice(&sig.lead);
        Slot {
            story,
            first_seen: epoch_seconds(seen),
            shingles: sig.shingles,
            wide,
            narrow,
            title,
            figures,
            lead,
            n_title: sig.title.len() as u8,
            figures_total: sig.figures_total,
            n_lead: sig.lead.len() as u8,
        }
    }

    fn title(&self) -> &[u16] {
        &self.title[..self.n_title as usize]
    }

    fn figures(&self) -> &[u32] {
        &self.figures[..usize::from(self.figures_total).min(FIGURES)]
    }

    fn lead(&self) -> &[u8] {
        &self.lead[..usize::from(self.n_lead)]
    }

    /// The 64-bit key of LSH band `band` (also decides the table cell and tag).
    fn band_key(&self, band: usize) -> u64 {
        let a = u64::from(self.wide[2 * band]);
        let b = u64::from(self.wide[2 * band + 1]);
        mix((band as u64) << 32 | a << 16 | b)
    }

    /// Whether the two slots have the same key in LSH band `band`: the key is a bijective mix
    /// of the band's two minima, so comparing those says the same without mixing.
    fn same_band(&self, other: &Slot, band: usize) -> bool {
        self.wide[2 * band..2 * band + 2] == other.wide[2 * band..2 * band + 2]
    }
}

/// Seconds since the Unix epoch, clamped into `u32`.
fn epoch_seconds(t: DateTime<Utc>) -> u32 {
    t.timestamp().clamp(0, i64::from(u32::MAX)) as u32
}

/// SplitMix64 finalizer: spreads band keys over the table.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// What the rule found when comparing two copies.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Judgement {
    pub(crate) accept: bool,
    pub(crate) containment: f64,
    pub(crate) jaccard: f64,
    pub(crate) title: Option<f64>,
    pub(crate) figures: Option<(usize, usize)>,
    pub(crate) reason: &'static str,
}

impl Judgement {
    fn summary(&self) -> String {
        let title = self
            .title
            .map_or_else(|| "title n/a".to_string(), |t| format!("title {t:.2}"));
        let figures = self.figures.map_or_else(
            || "figures n/a".to_string(),
            |(agree, of)| format!("figures {agree}/{of} agree"),
        );
        format!(
            "text containment {:.2} (jaccard {:.2}), {title}, {figures}; {}",
            self.containment, self.jaccard, self.reason
        )
    }
}

/// How much text two copies share, estimated from their MinHash sketches and sizes.
struct TextOverlap {
    jaccard: f64,
    /// Share of the shorter copy's shingles found in the longer.
    containment: f64,
    /// Shingle counts of the shorter and the longer copy.
    small: f64,
    large: f64,
}

fn text_overlap(a: &Slot, b: &Slot) -> TextOverlap {
    let wide = a.wide.iter().zip(&b.wide).filter(|(x, y)| x == y).count();
    let narrow = a
        .narrow
        .iter()
        .zip(&b.narrow)
        .filter(|(x, y)| x == y)
        .count();
    // 8-bit minima of different shingles still agree 1 time in 256: remove that expectation.
    let chance = (BINS - WIDE_BINS) as f64 / 256.0;
    let jaccard = (((wide + narrow) as f64 - chance) / (BINS as f64 - chance)).clamp(0.0, 1.0);
    let (small, large) = if a.shingles <= b.shingles {
        (f64::from(a.shingles), f64::from(b.shingles))
    } else {
        (f64::from(b.shingles), f64::from(a.shingles))
    };
    let shared = jaccard * (small + large) / (1.0 + jaccard);
    let containment = if small > 0.0 {
        (shared / small).min(1.0)
    } else {
        0.0
    };
    TextOverlap {
        jaccard,
        containment,
        small,
        large,
    }
}

/// Whether [`judge`] could accept the pair, from the text sizes and overlap alone: every
/// accepting branch needs both copies long enough, comparable in length and a containment
/// of at least [`TEXT_WITH_TITLE`]. Lets a lookup skip the headline and figure comparisons
/// for the many candidates that only share a band by chance or by template.
fn could_match(a: &Slot, b: &Slot) -> bool {
    let t = text_overlap(a, b);
    t.small >= f64::from(MIN_SHINGLES)
        && t.small / t.large >= MIN_SIZE_RATIO
        && t.containment >= TEXT_WITH_TITLE.min(BRIEF_TEXT).min(TEXT_ALONE)
}

/// The matching rule (documented in the module docs; keep both in step).
pub(crate) fn judge(a: &Slot, b: &Slot) -> Judgement {
    let TextOverlap {
        jaccard,
        containment,
        small,
        large,
    } = text_overlap(a, b);
    let title = title_overlap(a.title(), b.title());
    let figures = figure_agreement(a, b);
    let mut judgement = Judgement {
        accept: false,
        containment,
        jaccard,
        title,
        figures,
        reason: "",
    };
    let brief = small < f64::from(BRIEF_SHINGLES);
    judgement.reason = if small < f64::from(MIN_SHINGLES) {
        "too short to compare"
    } else if small / large < MIN_SIZE_RATIO {
        "lengths too different"
    } else if headline_figures_conflict(a.title(), b.title()) {
        "headline figures differ"
    } else if figures.is_some_and(|(agree, of)| agree < of) {
        "figures differ"
    } else if brief {
        if containment >= BRIEF_TEXT && title.is_some_and(|t| t >= BRIEF_TITLE) {
            judgement.accept = true;
            "brief: same text and headline"
        } else {
            "brief: text or headline differs"
        }
    } else if containment >= TEXT_ALONE {
        // Only the text speaks, and the shorter text covers under half of the longer: a
        // trimmed copy keeps its original's opening, a short story quoted whole inside a
        // longer one (a roundup carrying a brief) does not.
        let quoted = jaccard < QUOTE_JACCARD
            && !title.is_some_and(|t| t >= TITLE_AGREES)
            && lead_agreement(a, b).is_some_and(|l| l < LEAD_AGREES);
        if quoted {
            "text quoted in a longer story (openings differ)"
        } else {
            judgement.accept = true;
            "same text"
        }
    } else if containment >= TEXT_WITH_TITLE && title.is_some_and(|t| t >= TITLE_AGREES) {
        judgement.accept = true;
        "similar text and headline"
    } else {
        "different text"
    };
    judgement
}

/// Applies the matching rule to two signatures directly (no index, no time window): whether
/// they would match and why. For diagnostics and `tradefeed story` explanations.
pub fn compare(a: &Signature, b: &Signature) -> Comparison {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    let judgement = judge(&Slot::new(0, a, epoch), &Slot::new(0, b, epoch));
    Comparison {
        matched: judgement.accept,
        summary: judgement.summary(),
    }
}

/// Overlap coefficient of two headline term samples; `None` unless both have two terms.
fn title_overlap(a: &[u16], b: &[u16]) -> Option<f64> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let shared = a.iter().filter(|t| b.contains(t)).count();
    Some(shared as f64 / a.len().min(b.len()) as f64)
}

/// Share of the shorter text's lead shingles found in the longer text's lead; `None` when either
/// lead is unknown (a signature stored before leads were kept).
fn lead_agreement(a: &Slot, b: &Slot) -> Option<f64> {
    let (short, long) = if a.shingles <= b.shingles {
        (a.lead(), b.lead())
    } else {
        (b.lead(), a.lead())
    };
    if short.is_empty() || long.is_empty() {
        return None;
    }
    let found = short.iter().filter(|h| long.contains(h)).count();
    Some(found as f64 / short.len() as f64)
}

/// Both headlines say the same thing in words (word overlap ≥ [`TITLE_AGREES`]) but with
/// figures that share none ("GIVEN 15 MLN STG" vs "GIVEN 53 MLN STG"). Headlines written from
/// different parts of a story carry different figures without contradicting each other.
fn headline_figures_conflict(a: &[u16], b: &[u16]) -> bool {
    // `title_overlap` of the two word lists, without building them (this runs per candidate).
    let words = |t: &[u16]| t.iter().filter(|h| !is_figure_hash(**h)).count();
    let (wa, wb) = (words(a), words(b));
    if wa < 2 || wb < 2 {
        return false;
    }
    // A word hash equal to one of b's is one of b's words (figure hashes are odd, words even).
    let shared = a
        .iter()
        .filter(|h| !is_figure_hash(**h) && b.contains(h))
        .count();
    let words_agree = shared as f64 / wa.min(wb) as f64 >= TITLE_AGREES;
    let figures = |t: &[u16]| t.iter().any(|h| is_figure_hash(*h));
    words_agree
        && figures(a)
        && figures(b)
        && !a.iter().any(|f| is_figure_hash(*f) && b.contains(f))
}

/// Contexts holding figures in both copies' samples: `(agreeing, comparable)`, where a
/// context agrees if the two figure sets there (16-bit, one bit per figure) share a bit.
/// `None` if no context is comparable. Only contexts below both samples' cut are comparable
/// (the samples are bottom-k by context).
fn figure_agreement(a: &Slot, b: &Slot) -> Option<(usize, usize)> {
    let cut = |s: &Slot| {
        if usize::from(s.figures_total) > s.figures().len() {
            s.figures().last().map_or(0, |f| f >> 16)
        } else {
            u32::MAX
        }
    };
    let limit = cut(a).min(cut(b));
    let (mut agree, mut of) = (0, 0);
    for fa in a.figures().iter().filter(|f| *f >> 16 <= limit) {
        if let Some(fb) = b.figures().iter().find(|f| *f >> 16 == fa >> 16) {
            of += 1;
            agree += usize::from(fa & fb & 0xFFFF != 0);
        }
    }
    (of > 0).then_some((agree, of))
}

/// In-memory index of recent stories' signatures; lookups cost the same whatever its size.
///
/// One slot per story (its earliest copy, see [`StoryIndex::insert`]) and an open-addressing
/// table of `u32` cells (24-bit slot number + 8-bit key tag) holding each slot under its 16
/// band keys, except keys already holding [`BAND_KEY_STORIES`] later stories. Per story: 176
/// bytes of slot + 16 cells at 35–70 % load (91–183 bytes).
#[derive(Debug)]
pub struct StoryIndex {
    config: ClusterConfig,
    slots: Vec<Slot>,
    table: Vec<u32>,
    used: usize,
}

impl StoryIndex {
    /// An empty index.
    pub fn new(config: ClusterConfig) -> StoryIndex {
        StoryIndex {
            config,
            slots: Vec::new(),
            table: vec![EMPTY; 1024],
            used: 0,
        }
    }

    /// The matching settings in force.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// Applies new matching settings (a config reload). A shorter window takes effect at once:
    /// lookups compare against it, and the next [`StoryIndex::prune`] drops what it no longer
    /// covers. A longer one reaches back as far as the index already holds (the old window at
    /// the time of the change) and fills in as new stories arrive; stories the old window had
    /// already let go come back only with a rebuild from the store (the next start).
    pub fn reconfigure(&mut self, config: ClusterConfig) {
        self.config = config;
    }

    /// Number of stories indexed.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no story is indexed.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Heap bytes held by the index (slot and table capacity), for memory reports.
    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
            + self.table.capacity() * std::mem::size_of::<u32>()
    }

    /// Adds a story's appearance (its signature and time) as a match candidate.
    ///
    /// A story keeps one slot, holding its earliest appearance: usually the wire original,
    /// the copy every outlet's version was made from, and the one later copies were matched
    /// against. Containment is measured against the shorter copy, so a trimmed original
    /// still matches full copies. (A longest-copy representative was tried: it tends to be
    /// the copy with the most boilerplate.) Texts too short to ever match are not indexed.
    /// The order of calls does not matter, so a rebuild from stored signatures in any order
    /// reaches the same state, with one exception: a band key shared by more than
    /// [`BAND_KEY_STORIES`] stories keeps the ones indexed last. Memory stays one slot per
    /// story, except that an appearance sharing no LSH band with its story's slot (the story's
    /// slot is found through the bands), or disagreeing with it on a figure (a correction), gets
    /// a slot of its own, which only adds a way to find the story. An edited appearance is
    /// inserted again with its new signature.
    pub fn insert(&mut self, story: StoryId, signature: &Signature, seen: DateTime<Utc>) {
        self.insert_appearance(story, signature, seen, false);
    }

    /// [`StoryIndex::insert`] for the first appearance of a story just created, which the
    /// index cannot hold yet: skips the search for the story's slot (a third of the lookups
    /// a cold pass makes).
    pub fn insert_new_story(&mut self, story: StoryId, signature: &Signature, seen: DateTime<Utc>) {
        debug_assert!(
            self.slots.iter().all(|s| s.story != story),
            "story {story} is not new to the index"
        );
        self.insert_appearance(story, signature, seen, true);
    }

    fn insert_appearance(
        &mut self,
        story: StoryId,
        signature: &Signature,
        seen: DateTime<Utc>,
        new_story: bool,
    ) {
        if signature.shingles < MIN_SHINGLES {
            return;
        }
        let fresh = Slot::new(story, signature, seen);
        let existing = if new_story {
            None
        } else {
            self.candidates(&fresh)
                .into_iter()
                .find(|&s| self.slots[s].story == story)
        };
        match existing {
            // Copies that disagree on a figure in the same context: one of them corrected it
            // (a wire's "UPDATE 2-" from the corrected copy, an outlet's edit in place). A
            // later copy matched only against the slot's figure would be refused as another
            // story, so the story is found by either: the appearance gets a slot of its own.
            Some(s)
                if figure_agreement(&fresh, &self.slots[s])
                    .is_some_and(|(agree, of)| agree < of) =>
            {
                self.push_slot(fresh);
            }
            Some(s) => {
                if fresh.first_seen < self.slots[s].first_seen {
                    // Cells under the old keys now fail the key check and go at the next rebuild.
                    self.slots[s] = fresh;
                    self.index_slot(s);
                }
            }
            None => self.push_slot(fresh),
        }
    }

    /// Indexes `slot` as one more way to find its story.
    fn push_slot(&mut self, slot: Slot) {
        if self.slots.len() >= MAX_SLOTS {
            tracing::warn!(stories = self.slots.len(), "story index full; not indexed");
            return;
        }
        self.slots.push(slot);
        self.index_slot(self.slots.len() - 1);
    }

    /// The story the entry is a near-duplicate of, if any, with the evidence.
    ///
    /// Among the stories first seen within the window of `seen` that share an LSH band with the
    /// signature (a crowded band key lists only its latest [`BAND_KEY_STORIES`] stories), the
    /// accepted one with the highest containment wins.
    pub fn find(&self, signature: &Signature, seen: DateTime<Utc>) -> Option<MatchEvidence> {
        self.best_match(signature, seen)
            .map(|(story, j)| MatchEvidence {
                story,
                summary: j.summary(),
            })
    }

    /// The stories the entry is a near-duplicate of, best first (by containment), each once,
    /// at most `most` of them, with the evidence: [`StoryIndex::find`]'s answer and the runners-up, for
    /// a caller that may refuse the best (the writer refuses a story whose text is the copy's
    /// templated sibling, `super::templated_siblings`; the copy's own story may be the next).
    pub fn find_ranked(
        &self,
        signature: &Signature,
        seen: DateTime<Utc>,
        most: usize,
    ) -> Vec<MatchEvidence> {
        let mut accepted: Vec<(StoryId, Judgement)> = self.accepted(signature, seen).collect();
        // Among equals the last candidate first, as `find` (`max_by`) takes it.
        accepted.reverse();
        accepted.sort_by(|(_, x), (_, y)| y.containment.total_cmp(&x.containment));
        // A story may hold more than one slot (a copy joined by an exact key whose text
        // shares no band with the story's): each story once, at its best.
        let mut ranked: Vec<MatchEvidence> = Vec::with_capacity(most);
        for (story, judgement) in accepted {
            if ranked.len() == most {
                break;
            }
            if ranked.iter().all(|m| m.story != story) {
                ranked.push(MatchEvidence {
                    story,
                    summary: judgement.summary(),
                });
            }
        }
        ranked
    }

    /// Whether [`StoryIndex::find`] would find a story, without writing out its evidence.
    pub fn has_match(&self, signature: &Signature, seen: DateTime<Utc>) -> bool {
        self.best_match(signature, seen).is_some()
    }

    fn best_match(
        &self,
        signature: &Signature,
        seen: DateTime<Utc>,
    ) -> Option<(StoryId, Judgement)> {
        self.accepted(signature, seen)
            .max_by(|(_, x), (_, y)| x.containment.total_cmp(&y.containment))
    }

    /// Every story the rule accepts for the entry, in no order.
    fn accepted(
        &self,
        signature: &Signature,
        seen: DateTime<Utc>,
    ) -> impl Iterator<Item = (StoryId, Judgement)> + '_ {
        let window = self.config.window.num_seconds();
        let query = (signature.shingles >= MIN_SHINGLES).then(|| Slot::new(0, signature, seen));
        query.into_iter().flat_map(move |query| {
            let candidates = self.candidates(&query);
            candidates.into_iter().filter_map(move |s| {
                let slot = &self.slots[s];
                ((i64::from(slot.first_seen) - i64::from(query.first_seen)).abs() < window
                    && could_match(&query, slot))
                .then(|| (slot.story, judge(&query, slot)))
                .filter(|(_, j)| j.accept)
            })
        })
    }

    /// Drops candidates older than the window before `now` (keeps memory bounded).
    ///
    /// Compacts the slots and rebuilds the band table: O(stories), meant to run periodically
    /// (e.g. hourly), not per entry.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        let oldest = epoch_seconds(
            now.checked_sub_signed(self.config.window)
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
        );
        self.slots.retain(|s| s.first_seen >= oldest);
        self.slots.shrink_to_fit();
        self.rebuild(self.slots.len() * BANDS);
    }

    /// Forgets these stories entirely (e.g. stories whose creating transaction failed to
    /// commit: their ids will be given to other stories). O(stories), like [`StoryIndex::prune`].
    pub fn forget(&mut self, stories: &[StoryId]) {
        if stories.is_empty() {
            return;
        }
        let before = self.slots.len();
        self.slots.retain(|s| !stories.contains(&s.story));
        if self.slots.len() != before {
            self.rebuild(self.slots.len() * BANDS);
        }
    }

    /// Slots sharing at least one band with `probe`, each once.
    ///
    /// Once the index outgrows the CPU caches, each band's home cell and each matching slot
    /// is a cache miss. So the lookup reads all sixteen home cells before probing any, and
    /// notes every tag match before reading any slot: reads that do not wait on each other
    /// overlap, where probing band by band waited for each miss in turn.
    fn candidates(&self, probe: &Slot) -> Vec<usize> {
        let keys: [u64; BANDS] = std::array::from_fn(|band| probe.band_key(band));
        let homes: [usize; BANDS] = keys.map(|key| self.home(key));
        let firsts: [u32; BANDS] = homes.map(|cell| self.table[cell]);
        // (slot, band) of every cell whose tag matches: the slot still has to show the key.
        let mut tagged: Vec<(usize, usize)> = Vec::new();
        for band in 0..BANDS {
            if firsts[band] == EMPTY {
                continue;
            }
            let tag = keys[band] as u8;
            let mut cell = homes[band];
            loop {
                let entry = self.table[cell];
                if entry == EMPTY {
                    break;
                }
                if entry as u8 == tag {
                    tagged.push(((entry >> 8) as usize, band));
                }
                cell = if cell + 1 == self.table.len() {
                    0
                } else {
                    cell + 1
                };
            }
        }
        let mut found: Vec<usize> = Vec::with_capacity(tagged.len());
        for (slot, band) in tagged {
            // `found` first: it is small and in cache, the slot is a random read.
            if !found.contains(&slot) && self.slots[slot].same_band(probe, band) {
                found.push(slot);
            }
        }
        found
    }

    /// Puts slot `s` under its band keys, growing the table first if needed.
    fn index_slot(&mut self, s: usize) {
        if (self.used + BANDS) as f64 > MAX_LOAD * self.table.len() as f64 {
            // The rebuild puts every slot, `s` included, under its current keys.
            self.rebuild(self.slots.len() * BANDS);
        } else {
            self.put(s);
        }
    }

    /// Puts slot `s` under each of its band keys. A key already holding
    /// [`BAND_KEY_STORIES`] stories gives up its earliest-indexed one (the lowest slot number)
    /// for `s`, so a crowded key keeps the latest stories and lookups stay bounded.
    fn put(&mut self, s: usize) {
        // Every home cell read before the first is probed, as in `candidates`.
        let keys: [u64; BANDS] = std::array::from_fn(|band| self.slots[s].band_key(band));
        let homes: [usize; BANDS] = keys.map(|key| self.home(key));
        let mut firsts: [u32; BANDS] = homes.map(|cell| self.table[cell]);
        'bands: for band in 0..BANDS {
            let tag = keys[band] as u8;
            let mut cell = homes[band];
            let mut same_key = 0;
            let mut earliest: Option<usize> = None;
            let mut entry = firsts[band];
            while entry != EMPTY {
                let slot = (entry >> 8) as usize;
                if entry as u8 == tag && self.slots[slot].same_band(&self.slots[s], band) {
                    if slot == s {
                        // Already here: a slot given an earlier appearance keeps the keys the
                        // two copies share. A second cell would take a place of the bound.
                        continue 'bands;
                    }
                    same_key += 1;
                    if earliest.is_none_or(|c| (self.table[c] >> 8) as usize > slot) {
                        earliest = Some(cell);
                    }
                }
                cell = if cell + 1 == self.table.len() {
                    0
                } else {
                    cell + 1
                };
                entry = self.table[cell];
            }
            let entry = (s as u32) << 8 | u32::from(tag);
            let written = match earliest.filter(|_| same_key >= BAND_KEY_STORIES) {
                Some(full) => full,
                None => {
                    self.used += 1;
                    cell
                }
            };
            self.table[written] = entry;
            // A later band whose home cell this was must not read it as it was.
            for later in band + 1..BANDS {
                if homes[later] == written {
                    firsts[later] = entry;
                }
            }
        }
    }

    /// A fresh table sized for `cells` cells at the rebuild load, holding every slot.
    fn rebuild(&mut self, cells: usize) {
        let size = ((cells as f64 / REBUILD_LOAD) as usize).max(1024);
        self.table = vec![EMPTY; size];
        self.used = 0;
        for s in 0..self.slots.len() {
            self.put(s);
        }
    }

    /// First cell for a key: the high 32 bits scaled to the table size (the table size need
    /// not be a power of two).
    fn home(&self, key: u64) -> usize {
        (((key >> 32) * self.table.len() as u64) >> 32) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use std::collections::HashMap;

    /// A wire story of about 120 words with figures, and a second story on the same subject.
    const STORY: &str = "Japan's trade surplus with the United States narrowed to 7.32 billion \
        dollars in March from 8.14 billion in February, the Finance Ministry said on Tuesday. \
        Exports to the United States fell 4.6 pct to 11.85 billion dollars while imports rose \
        12.1 pct to 4.53 billion. Officials said the yen's rise had begun to curb shipments of \
        cars and electronics, but warned that Washington was unlikely to be satisfied. \
        Congress is weighing a trade bill that would force sanctions on countries with large \
        and persistent surpluses, and the administration has already imposed 300 mln dlrs of \
        tariffs on Japanese semiconductors. Economists in Tokyo expect the surplus to remain \
        near 80 billion dollars this fiscal year despite the currency's strength, they said.";
    const SAME_SUBJECT: &str = "Japan and the United States opened two days of talks on \
        Thursday on the semiconductor dispute, with Tokyo hoping to persuade Washington to lift \
        the 300 mln dlrs of tariffs imposed last month. Japanese negotiators said chip makers \
        had cut production and exports in line with the 1986 pact, and that third-country \
        dumping had stopped. U.S. officials said they wanted evidence that American firms had \
        gained access to the Japanese market before recommending any change. The talks come \
        ahead of a visit by Prime Minister Yasuhiro Nakasone to Washington, where trade \
        friction is expected to top the agenda, a Foreign Ministry spokesman told reporters.";

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(1987, 4, day, 9, 0, 0).unwrap()
    }

    fn slot(title: &str, text: &str) -> Slot {
        Slot::new(1, &Signature::of_text(title, text), at(1))
    }

    /// The story cut to its first `share` of words.
    fn trimmed(text: &str, share: f64) -> String {
        let words: Vec<&str> = text.split_whitespace().collect();
        words[..(words.len() as f64 * share) as usize].join(" ")
    }

    /// A copy as (headline, text).
    type Copy<'a> = (&'a str, &'a str);

    #[test]
    fn judge_accepts_copies_and_rejects_different_stories() {
        let stamped = format!("Published on 12:00 AM, April 14, 1987. TOKYO (Reuters) - {STORY}");
        let cut = trimmed(STORY, 0.55);
        let retitled_brief_a = "Bank of England provides 215 mln stg help in the afternoon \
            session, bringing its total assistance today to 433 mln stg against a shortage \
            forecast at 500 mln stg, it said.";
        let other_brief = "Bank of England provides 96 mln stg help in the afternoon \
            session, bringing its total assistance today to 187 mln stg against a shortage \
            forecast at 350 mln stg, it said.";
        let cases: &[(&str, Copy, Copy, bool)] = &[
            (
                "identical copy",
                ("Japan surplus narrows", STORY),
                ("Japan surplus narrows", STORY),
                true,
            ),
            (
                "stamped and retitled copy",
                ("Japan trade surplus with U.S. narrows in March", STORY),
                ("Tokyo's surplus shrinks - officials", &stamped),
                true,
            ),
            (
                "copy cut to 55 %",
                ("Japan surplus narrows", STORY),
                ("Japan surplus narrows", &cut),
                true,
            ),
            (
                "same subject, different story",
                ("Japan surplus narrows", STORY),
                ("Japan, U.S. open chip talks", SAME_SUBJECT),
                false,
            ),
            (
                "templated brief with other figures",
                ("U.K. MONEY MARKET GIVEN 215 MLN STG HELP", retitled_brief_a),
                ("U.K. MONEY MARKET GIVEN 96 MLN STG HELP", other_brief),
                false,
            ),
            (
                "title-only items",
                ("U.S. trade deficit narrows", ""),
                ("U.S. trade deficit narrows", ""),
                false,
            ),
        ];
        for (name, (ta, xa), (tb, xb), want) in cases {
            let j = judge(&slot(ta, xa), &slot(tb, xb));
            assert_eq!(j.accept, *want, "{name}: {}", j.summary());
        }
    }

    /// A short wire brief, as outlets run it under their own headline suffix and credit line.
    const WIRE_BRIEF: &str = "Standard and Poor's Corp said it lowered its ratings on about \
        1.3 billion dlrs of debt of Northfield Bancorp, citing rising non-performing assets and \
        net charge-offs in real estate and energy loans. The agency said the bank still has \
        high liquidity and is less exposed to Latin American borrowers than its peers.";

    #[test]
    fn copies_differing_in_outlet_suffix_prefix_and_credit_line_are_one_story() {
        let credit = |outlet: &str| {
            format!(
                "{WIRE_BRIEF} This story was provided by a wire service and has not been \
                 edited by {outlet} staff."
            )
        };
        let reporting = format!("{WIRE_BRIEF} (Reporting by Yuki Sato; Editing by Tom Becker)");
        let (credit_9, credit_66) = (credit("Outlet 0009"), credit("Outlet 0066"));
        let title = "Northfield Bancorp Debt Downgraded By S/P";
        let cases: &[(&str, Copy, Copy)] = &[
            (
                "numbered outlet suffixes, credit lines of each outlet",
                (
                    "Northfield Bancorp Debt Downgraded By S/P | Outlet 0009",
                    &credit_9,
                ),
                (
                    "Northfield Bancorp Debt Downgraded By S/P | Outlet 0066",
                    &credit_66,
                ),
            ),
            (
                "a suffix and a reporting line against a wire prefix and a credit line",
                (
                    "Northfield Bancorp Debt Downgraded By S/P | Outlet 0009",
                    &reporting,
                ),
                (
                    "UPDATE 2-Northfield Bancorp Debt Downgraded By S/P",
                    &credit_66,
                ),
            ),
            (
                "publisher suffixes",
                (
                    "Northfield Bancorp Debt Downgraded By S/P - Reuters",
                    WIRE_BRIEF,
                ),
                (
                    "Northfield Bancorp Debt Downgraded By S/P | AP News",
                    &credit_66,
                ),
            ),
            ("no suffix", (title, WIRE_BRIEF), (title, &credit_9)),
        ];
        for (name, (ta, xa), (tb, xb)) in cases {
            let j = judge(&slot(ta, xa), &slot(tb, xb));
            assert!(j.accept, "{name}: {}", j.summary());
        }
    }

    /// A bond notice of the kind a wire sends many times a day, all but the issuer, dates,
    /// coupon, price and manager the same.
    fn bond_notice(issuer: &str, due: &str, coupon: &str, price: &str, manager: &str) -> String {
        format!(
            "{issuer} is issuing a 50 mln Australian dlr eurobond due {due} paying {coupon} pct \
             and priced at {price} pct, lead manager {manager} said. The non-callable bond is \
             available in denominations of 1,000 and 10,000 Australian dlrs and will be listed \
             in Luxembourg. The selling concession is one pct while management and \
             underwriting combined pays 1/2 pct. The payment date is in the spring and there \
             will be a long first coupon."
        )
    }

    #[test]
    fn templated_headlines_told_apart_by_a_trailing_segment_of_figures_stay_apart() {
        let text = "The Treasury sold bills at its weekly auction on Monday, the department \
                    said, and dealers said demand was steady with the bid-to-cover ratio in \
                    line with recent weeks and foreign buyers taking their usual share.";
        let a = slot("Treasury bill auction results today - 3-month bills", text);
        let b = slot("Treasury bill auction results today - 6-month bills", text);
        let j = judge(&a, &b);
        assert!(!j.accept, "{}", j.summary());
        assert_eq!(j.reason, "headline figures differ", "{}", j.summary());
        // An outlet's name with a number is still no figure of the story.
        let c = slot("Treasury bill auction results today | Outlet 0066", text);
        let d = slot("Treasury bill auction results today | Outlet 0009", text);
        let j = judge(&c, &d);
        assert!(j.accept, "{}", j.summary());
    }

    #[test]
    fn templated_notices_whose_fractions_and_dates_differ_are_different_stories() {
        let harbour = bond_notice(
            "Harbour Banking Corp",
            "May 6, 1990",
            "14-1/2",
            "101-1/4",
            "Nordbank Capital Markets",
        );
        let lindqvist = bond_notice(
            "Lindqvist Finance NV",
            "July 5, 1990",
            "14-3/4",
            "101-3/8",
            "Carrow Sachs International",
        );
        let a = slot(
            "Harbour Banking Issues 50 Mln Australian Dlr Bond",
            &harbour,
        );
        let b = slot(
            "Lindqvist Finance Issues 50 Mln Australian Dlr Bond",
            &lindqvist,
        );
        let j = judge(&a, &b);
        assert!(!j.accept, "{}", j.summary());
        assert_eq!(j.reason, "figures differ", "{}", j.summary());
        // The same notice written with other fraction signs, or trimmed, is still a copy.
        let written = harbour
            .replace("14-1/2", "14½")
            .replace("101-1/4", "101 1/4");
        let copy = slot(
            "Harbour Banking Issues 50 Mln Australian Dlr Bond",
            &written,
        );
        let j = judge(&a, &copy);
        assert!(j.accept, "{}", j.summary());
        let j = judge(&a, &slot("Harbour Banking bond", &trimmed(&harbour, 0.7)));
        assert!(j.accept, "{}", j.summary());
    }

    #[test]
    fn a_story_quoted_whole_in_a_longer_one_is_not_its_copy_but_a_trimmed_copy_is() {
        // A roundup carrying STORY whole after another story, and more text after it.
        let roundup = format!("{SAME_SUBJECT} {STORY} {}", random_text(3, 90));
        let roundup_title = "Chip talks open ahead of Nakasone visit";
        let brief = slot("Japan surplus narrows", STORY);
        let carrier = slot(roundup_title, &roundup);
        let j = judge(&brief, &carrier);
        assert!(!j.accept, "{}", j.summary());
        assert_eq!(j.reason, "text quoted in a longer story (openings differ)");
        // The same pair from signatures stored before leads were kept: the old rule, a match.
        let mut lead_less = Signature::of_text("Japan surplus narrows", STORY);
        lead_less.lead.clear();
        let j = judge(&Slot::new(1, &lead_less, at(1)), &carrier);
        assert!(j.accept, "{}", j.summary());

        // A copy of the roundup cut to 40 % under a byline and an unrelated headline: it keeps
        // the opening, so text alone still proves it, though it covers under half the original.
        let cut = format!(
            "By Tom Becker, staff | Updated 3 hours ago {}",
            trimmed(&roundup, 0.4)
        );
        let j = judge(&slot("Markets brace for week ahead", &cut), &carrier);
        assert!(j.jaccard < QUOTE_JACCARD, "{}", j.summary());
        assert!(j.accept, "{}", j.summary());
        assert_eq!(j.reason, "same text");
    }

    /// A story whose copies disagree on a figure (the wire corrected 4.6 pct to 4.8 after one
    /// outlet ran it) is found by a later copy carrying either figure: the correcting copy is
    /// a slot of its own, whichever was indexed first. With one slot per story, the later
    /// "UPDATE 2-" of the corrected text met only the first copy's figure and was refused as
    /// another story.
    #[test]
    fn copies_that_disagree_on_a_figure_are_each_a_way_to_find_their_story() {
        let corrected = STORY.replace("4.6 pct", "4.8 pct");
        let update = format!(
            "{corrected} A ministry official said the figures for April would be released \
             next month, and that the government expected the trend to continue."
        );
        let sig = |text: &str| Signature::of_text("Japan surplus narrows", text);
        // Refused against the first copy alone: the figure differs.
        let mut first_only = StoryIndex::new(ClusterConfig::default());
        first_only.insert(1, &sig(STORY), at(1));
        assert_eq!(first_only.find(&sig(&update), at(2)), None);
        for order in [[STORY, corrected.as_str()], [corrected.as_str(), STORY]] {
            let mut index = StoryIndex::new(ClusterConfig::default());
            index.insert_new_story(1, &sig(order[0]), at(1));
            index.insert(1, &sig(order[1]), at(1));
            assert_eq!(index.len(), 2, "a slot for each figure");
            for copy in [update.as_str(), STORY, corrected.as_str()] {
                assert_eq!(
                    index.find(&sig(copy), at(2)).map(|m| m.story),
                    Some(1),
                    "{copy}"
                );
            }
            // An appearance agreeing with the slot adds none.
            index.insert(1, &sig(&trimmed(STORY, 0.9)), at(1));
            assert_eq!(index.len(), 2);
        }
    }

    #[test]
    fn find_ranked_gives_the_accepted_stories_best_first_and_at_most_so_many() {
        let mut index = StoryIndex::new(ClusterConfig::default());
        // An edited copy of the story (a word inserted every tenth), the story itself and an
        // unrelated story.
        let edited: Vec<String> = STORY
            .split_whitespace()
            .enumerate()
            .map(|(i, w)| {
                if i % 10 == 9 {
                    format!("{w} reportedly")
                } else {
                    w.to_string()
                }
            })
            .collect();
        index.insert(
            3,
            &Signature::of_text("Japan surplus narrows", &edited.join(" ")),
            at(1),
        );
        index.insert(
            4,
            &Signature::of_text("Japan surplus narrows", STORY),
            at(1),
        );
        index.insert(
            5,
            &Signature::of_text("Chip talks open", SAME_SUBJECT),
            at(1),
        );
        // A copy cut to 90 %: wholly in story 4, less so in the edited copy 3.
        let copy = Signature::of_text("Japan's surplus narrows", &trimmed(STORY, 0.9));
        let ranked = index.find_ranked(&copy, at(2), 3);
        let stories: Vec<StoryId> = ranked.iter().map(|m| m.story).collect();
        assert_eq!(stories, [4, 3], "{ranked:?}");
        assert_eq!(index.find(&copy, at(2)).map(|m| m.story), Some(4));
        assert_eq!(index.find_ranked(&copy, at(2), 1).len(), 1);
        assert!(
            index.find_ranked(&copy, at(20), 3).is_empty(),
            "outside the window"
        );
    }

    #[test]
    fn find_returns_the_story_a_copy_belongs_to_with_evidence() {
        let mut index = StoryIndex::new(ClusterConfig::default());
        index.insert(
            7,
            &Signature::of_text("Japan surplus narrows", STORY),
            at(1),
        );
        index.insert(
            8,
            &Signature::of_text("Chip talks open", SAME_SUBJECT),
            at(1),
        );
        let copy = Signature::of_text("Japan's surplus with U.S. narrows", &trimmed(STORY, 0.8));
        let found = index.find(&copy, at(2)).expect("copy found");
        assert_eq!(found.story, 7);
        assert!(index.has_match(&copy, at(2)));
        let unrelated = Signature::of_text(
            "Gold rises",
            "Gold prices rose on Tuesday as the dollar weakened and investors sought safety \
             after weak factory data from China and Europe, traders in London said, with \
             silver and platinum also higher in thin trade ahead of the holiday.",
        );
        assert!(index.find(&unrelated, at(2)).is_none());
        assert!(!index.has_match(&unrelated, at(2)));
        assert!(
            found.summary.contains("text containment"),
            "{}",
            found.summary
        );
    }

    #[test]
    fn find_ignores_stories_outside_the_window() {
        let mut index = StoryIndex::new(ClusterConfig::default());
        let sig = Signature::of_text("Japan surplus narrows", STORY);
        index.insert(7, &sig, at(1));
        // Within the window is less than its length apart: issues of a weekly notice dated
        // at the same hour (a date without a time: midnight) are a week apart exactly.
        let cases = [
            (at(8) - Duration::seconds(1), true),
            (at(1) - Duration::days(7) + Duration::seconds(1), true),
            (at(8), false),
            (at(9), false),
            (at(1) - Duration::days(7), false),
        ];
        for (seen, want) in cases {
            assert_eq!(index.find(&sig, seen).is_some(), want, "{seen}");
            assert_eq!(index.has_match(&sig, seen), want, "{seen}");
        }
    }

    #[test]
    fn insert_keeps_one_slot_per_story_holding_the_earliest_copy() {
        let mut index = StoryIndex::new(ClusterConfig::default());
        let earliest = Signature::of_text("t", &trimmed(STORY, 0.8));
        index.insert(7, &Signature::of_text("t", &trimmed(STORY, 0.6)), at(2));
        index.insert(7, &earliest, at(1));
        index.insert(7, &Signature::of_text("t", STORY), at(3));
        assert_eq!(index.len(), 1);
        assert_eq!(index.slots[0].shingles, earliest.shingles);
        assert_eq!(index.slots[0].first_seen, epoch_seconds(at(1)));
    }

    #[test]
    fn a_new_story_inserted_without_the_slot_search_is_indexed_as_insert_would() {
        let (mut searched, mut direct) = (
            StoryIndex::new(ClusterConfig::default()),
            StoryIndex::new(ClusterConfig::default()),
        );
        let texts: Vec<String> = (0..40).map(|i| random_text(2_000 + i, 80)).collect();
        for (i, text) in texts.iter().enumerate() {
            let sig = Signature::of_text("t", text);
            searched.insert(i as StoryId, &sig, at(1));
            direct.insert_new_story(i as StoryId, &sig, at(1));
        }
        // A later appearance of a story already indexed still goes through `insert`.
        for index in [&mut searched, &mut direct] {
            index.insert(3, &Signature::of_text("t", &trimmed(&texts[3], 0.7)), at(2));
        }
        let slots = |index: &StoryIndex| -> Vec<(StoryId, u32, u16)> {
            index
                .slots
                .iter()
                .map(|s| (s.story, s.first_seen, s.shingles))
                .collect()
        };
        assert_eq!(slots(&searched), slots(&direct));
        assert_eq!(searched.table, direct.table);
        assert_eq!(direct.len(), 40);
    }

    #[test]
    fn prune_drops_stories_first_seen_before_the_window_and_keeps_them_findable() {
        let mut index = StoryIndex::new(ClusterConfig::default());
        let old = Signature::of_text("Japan surplus narrows", STORY);
        let recent = Signature::of_text("Chip talks open", SAME_SUBJECT);
        index.insert(1, &old, at(1));
        index.insert(2, &recent, at(10));
        index.prune(at(12));
        assert_eq!(index.len(), 1);
        assert_eq!(index.find(&recent, at(12)).map(|m| m.story), Some(2));
        assert_eq!(index.find(&old, at(12)), None);
    }

    #[test]
    fn forgotten_stories_are_never_found_and_the_rest_still_are() {
        let mut index = StoryIndex::new(ClusterConfig::default());
        let texts: Vec<String> = (0..40).map(|i| random_text(1_000 + i, 80)).collect();
        for (i, text) in texts.iter().enumerate() {
            let story = i as StoryId;
            index.insert(story, &Signature::of_text("t", text), at(1));
            if i % 4 == 0 {
                // A second appearance, with a slot of its own if it shares no band.
                index.insert(story, &Signature::of_text("u", text), at(2));
            }
        }
        let forgotten: Vec<StoryId> = (0..40).filter(|i| i % 4 == 0).collect();
        index.forget(&forgotten);
        for (i, text) in texts.iter().enumerate() {
            let found = index
                .find(&Signature::of_text("t", text), at(1))
                .map(|m| m.story);
            let story = i as StoryId;
            let want = (!forgotten.contains(&story)).then_some(story);
            assert_eq!(found, want, "story {i}");
        }
        assert_eq!(index.len(), 30);
    }

    /// A text of `words` pseudo-random words from a 5,000-word vocabulary, distinct per `seed`.
    fn random_text(seed: u64, words: usize) -> String {
        (0..words as u64)
            .map(|j| format!("w{}", mix(seed << 20 | j) % 5_000))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn index_grows_past_its_first_table_and_still_finds_every_story() {
        let mut index = StoryIndex::new(ClusterConfig::default());
        for i in 0..300 {
            index.insert(
                i,
                &Signature::of_text("t", &random_text(i as u64, 80)),
                at(1),
            );
        }
        assert_eq!(index.len(), 300);
        assert!(
            index.table.len() > 1024,
            "table grew to {}",
            index.table.len()
        );
        for i in 0..300 {
            let found = index.find(&Signature::of_text("t", &random_text(i as u64, 80)), at(1));
            assert_eq!(found.map(|m| m.story), Some(i));
        }
    }

    /// The slots the table holds under one band key (each cell once).
    fn slots_under(index: &StoryIndex, band: usize, key: u64) -> Vec<usize> {
        let mut slots = Vec::new();
        let mut cell = index.home(key);
        while index.table[cell] != EMPTY {
            let entry = index.table[cell];
            let slot = (entry >> 8) as usize;
            if entry as u8 == key as u8 && index.slots[slot].band_key(band) == key {
                slots.push(slot);
            }
            cell = (cell + 1) % index.table.len();
        }
        slots.sort_unstable();
        slots
    }

    /// 300 templated stories (story `i` in slot `i`), indexed as seen at `seen`: each the same
    /// 40-word boilerplate and 60 words of its own. About one band in six of each story is
    /// taken by the boilerplate's minima and so is shared by every story of the template.
    fn templated_index(seen: DateTime<Utc>) -> (Vec<String>, StoryIndex) {
        let boilerplate = random_text(77, 40);
        let texts: Vec<String> = (0..300)
            .map(|i| format!("{boilerplate} {}", random_text(5_000 + i, 60)))
            .collect();
        let mut index = StoryIndex::new(ClusterConfig::default());
        for (i, text) in texts.iter().enumerate() {
            index.insert(i as StoryId, &Signature::of_text("t", text), seen);
        }
        (texts, index)
    }

    #[test]
    fn a_crowded_band_key_keeps_the_latest_stories_and_every_story_is_still_found() {
        let (texts, index) = templated_index(at(1));
        assert_eq!(
            index.len(),
            300,
            "templated stories are not each other's copies"
        );

        // Without the bound, some keys would list far more stories than it allows.
        let mut sharing: HashMap<(usize, u64), usize> = HashMap::new();
        for slot in &index.slots {
            for band in 0..BANDS {
                *sharing.entry((band, slot.band_key(band))).or_default() += 1;
            }
        }
        let crowded = sharing.values().filter(|&&n| n > BAND_KEY_STORIES).count();
        assert!(crowded > 0, "the test needs crowded keys");

        for (&(band, key), &stories) in &sharing {
            // Every story under the key while it has room; past that, the latest indexed.
            let mut latest: Vec<usize> = (0..index.slots.len())
                .filter(|&s| index.slots[s].band_key(band) == key)
                .collect();
            assert_eq!(latest.len(), stories);
            latest.drain(..stories.saturating_sub(BAND_KEY_STORIES));
            assert_eq!(slots_under(&index, band, key), latest, "band {band}");
        }

        // Lookups stay bounded, and an unedited copy of every story still finds it.
        for (i, text) in texts.iter().enumerate() {
            let copy = Signature::of_text("t", text);
            let probe = Slot::new(0, &copy, at(1));
            assert!(index.candidates(&probe).len() <= BANDS * BAND_KEY_STORIES);
            assert_eq!(
                index.find(&copy, at(1)).map(|m| m.story),
                Some(i as StoryId)
            );
        }
    }

    #[test]
    fn an_earlier_appearance_under_a_full_band_key_takes_no_second_place() {
        let (texts, mut index) = templated_index(at(2));
        // The most crowded key, and the latest story under it.
        let (band, key) = (0..BANDS)
            .flat_map(|band| index.slots.iter().map(move |s| (band, s.band_key(band))))
            .max_by_key(|&(band, key)| slots_under(&index, band, key).len())
            .unwrap();
        let before = slots_under(&index, band, key);
        assert_eq!(before.len(), BAND_KEY_STORIES, "the test needs a full key");
        let latest = *before.last().unwrap();

        // The same story seen a day earlier: its slot is replaced and put under its keys again.
        index.insert(
            latest as StoryId,
            &Signature::of_text("t", &texts[latest]),
            at(1),
        );
        assert_eq!(index.slots[latest].first_seen, epoch_seconds(at(1)));
        assert_eq!(
            slots_under(&index, band, key),
            before,
            "no story evicted, none twice"
        );
    }

    #[test]
    fn the_prefilter_never_rules_out_a_pair_the_rule_accepts() {
        let mut texts: Vec<(String, String)> = vec![
            ("Japan surplus narrows".into(), STORY.into()),
            ("Japan surplus narrows".into(), trimmed(STORY, 0.55)),
            ("Japan surplus narrows".into(), trimmed(STORY, 0.3)),
            (
                "Tokyo's surplus shrinks".into(),
                format!("TOKYO (Reuters) - {STORY} Read more at example.com."),
            ),
            ("Chip talks open".into(), SAME_SUBJECT.into()),
            ("Chip talks open".into(), trimmed(SAME_SUBJECT, 0.4)),
        ];
        let boilerplate = random_text(9, 30);
        for i in 0..20 {
            let own = random_text(900 + i, 10 + 5 * i as usize);
            texts.push((
                format!("Template item {}", i % 3),
                format!("{boilerplate} {own}"),
            ));
            texts.push((format!("Template item {}", i % 3), own));
        }
        let slots: Vec<Slot> = texts.iter().map(|(t, x)| slot(t, x)).collect();
        let mut accepted = 0;
        for a in &slots {
            for b in &slots {
                if judge(a, b).accept {
                    accepted += 1;
                    assert!(could_match(a, b));
                }
            }
        }
        assert!(accepted > slots.len(), "the pairs include accepted copies");
    }

    #[test]
    fn index_rebuilt_from_stored_bytes_in_reverse_order_finds_the_same_stories() {
        let appearances: Vec<(StoryId, Signature, DateTime<Utc>)> = (0..50)
            .flat_map(|i| {
                let text = random_text(1_000 + i as u64, 120);
                [
                    (i, Signature::of_text("t", &text), at(1)),
                    (i, Signature::of_text("t", &trimmed(&text, 0.7)), at(2)),
                ]
            })
            .collect();
        let mut live = StoryIndex::new(ClusterConfig::default());
        for (story, sig, seen) in &appearances {
            live.insert(*story, sig, *seen);
        }
        let mut rebuilt = StoryIndex::new(ClusterConfig::default());
        for (story, sig, seen) in appearances.iter().rev() {
            let stored = Signature::from_bytes(&sig.to_bytes()).expect("stored signature");
            rebuilt.insert(*story, &stored, *seen);
        }
        assert_eq!(rebuilt.len(), live.len());
        for i in 0..50 {
            let probe = Signature::of_text("t", &trimmed(&random_text(1_000 + i, 120), 0.9));
            let want = live.find(&probe, at(3)).map(|m| m.story);
            assert_eq!(want, Some(i as StoryId));
            assert_eq!(rebuilt.find(&probe, at(3)).map(|m| m.story), want);
        }
    }

    #[test]
    fn slot_stays_176_bytes() {
        // The memory budget (1,000,000 stories in 256 MiB) is computed from this size.
        assert_eq!(std::mem::size_of::<Slot>(), 176);
    }
}
