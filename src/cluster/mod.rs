//! Near-duplicate story assignment: finds the story an edited copy of a wire story belongs to.
//!
//! Exact duplicates (same canonical URL or fingerprint) are resolved by the store's unique keys;
//! this module handles copies that differ in title, boilerplate, length or markup.
//!
//! # Signature
//!
//! [`Signature::of`] reads the entry's title and plain text. The text is lower-cased and split
//! into words (runs of letters or of digits; `155,221` and `5.93` stay one word, `65.50` is
//! written `65.5`, `U.S.` is `us`; web and e-mail addresses are skipped). Every run of 4
//! consecutive words is a *shingle*; shingles made only of stopwords are skipped. The signature
//! keeps a 64-bin one-permutation MinHash of the distinct shingles (with densification), their
//! count, a sample of up to 8 stemmed headline terms (stopwords and attribution words such as
//! "sources" or "officials" dropped, read from the headline without a wire prefix such as
//! `UPDATE n-` or a short outlet suffix such as `| AP News`: `headline::comparable_headline`)
//! and the text's *figures* (words with a digit) grouped by *context*, the nearest non-figure
//! words before and after (`fixed at 1.8218 marks` → `at … marks`): for up to 6 contexts
//! (smallest hashes) a 16-bit set of the figures standing there (one bit per figure; tables
//! repeat contexts such as `vs … mln`; a figure with no word on one side is not used). A
//! figure of several tokens is one value (`14-1/2`, `14½`, `May 6, 1990`), under a marked
//! context. Figures in the first or last 30 words within two words of a month, `am`/`pm`,
//! "published", "updated", "ago", "copyright", "edited", "staff" or "syndicated" are skipped,
//! as outlets stamp copies with their own dates and credit lines. It also keeps the
//! text's *lead*: its first 16 shingles in order, 8 bits each. In memory the index keeps 32
//! minima with 16 bits and 32 with 8 bits, and so does [`Signature::to_bytes`] on disk (format
//! version 3; versions 1, without the lead, and 2, with 32-bit minima, still read, cut to the
//! same bits).
//!
//! # Matching rule
//!
//! A new copy N is compared with each indexed story S that shares an LSH band with it (16
//! bands of two 16-bit minima each; a band key lists at most the latest 32 stories, so that
//! templated items cannot make lookups grow with the index) and was first seen within the
//! window (default 7 days) of N's time. From the MinHash agreement the Jaccard similarity J of the shingle sets is
//! estimated (8-bit chance agreements removed), and from J and both set sizes the *containment*
//! C = |N ∩ S| / min(|N|, |S|): syndicated copies are trimmed from the end, so the shorter copy
//! is largely contained in the longer one even when J is only 0.5. Then, in this order:
//!
//! 1. If the shorter copy has fewer than 8 shingles (title-only items): no match.
//! 2. If the shorter copy has less than a quarter of the longer one's shingles: no match (the
//!    MinHash estimate of C is too coarse there).
//! 3. If the headlines agree in words (overlap of their non-figure terms ≥ 0.5) but both
//!    contain figures and share none: no match ("GIVEN 15 MLN STG" is not "GIVEN 53 MLN STG").
//! 4. If a context holds figures in both copies, the two figure sets there must share a
//!    figure (a bit; unrelated figures collide 1 time in 16): otherwise no match. Copies
//!    carry figures verbatim (edits change the words around a figure, which only makes the
//!    context incomparable), while templated items (earnings tables, money-market and crop
//!    reports, price changes, slaughter estimates) put other figures in the same contexts.
//! 5. Briefs (shorter copy under 40 shingles, ≈ 45 words) match only if the headline term
//!    overlap (shared terms / terms of the shorter headline) is ≥ 0.8 and C ≥ 0.6: a brief's
//!    words cannot tell templated notices apart, so the headline decides.
//! 6. Longer texts match if C ≥ 0.6, or if C ≥ 0.4 and the headline overlap is ≥ 0.5. A
//!    match on text alone (headline overlap under 0.5) where J < 0.5, so that the shorter text
//!    covers under half of the longer, also needs the openings to agree: at least a quarter
//!    of the shorter text's lead shingles must stand in the longer text's lead. A trimmed copy
//!    keeps its original's opening (a prefixed byline only shifts it); a short story quoted
//!    whole inside a longer one, as a roundup carries a brief, sits in its middle. A signature
//!    stored without a lead skips this check.
//!
//! Among accepted stories the one with the highest C wins. Two different stories on the same
//! subject share vocabulary but few 4-word runs (C well under 0.4), and templated items are
//! kept apart by rules 3 and 4; a copy has C near 1 minus its edits and added boilerplate.
//!
//! # Templated siblings across feeds
//!
//! The index keeps no words, so notices that repeat one text for another country, product or
//! entity (shingle containment 0.88–0.93) pass the rule above. Before a near-copy from another
//! feed joins a story, the writer compares the two texts with [`templated_siblings`]: names
//! swapped in place, or added beside a shared name in a list ("Brazil and India" for
//! "Brazil"), where both texts otherwise run alike, make them two stories (see `template`).
//!
//! # Title-only copies
//!
//! Rule 1 leaves items with no text of their own (Google News: a headline with ` - Publisher`
//! added, a description repeating the two) to [`headline_of`]: it gives the headline they are
//! matched on (the suffix dropped when the text names the same publisher), says whether the
//! item is title-only, and refuses headlines with under [`MIN_DISTINCTIVE_WORDS`] distinctive
//! words. The store keeps it as an exact key beside the URL and fingerprint keys, and a
//! title-only copy joins the story holding a copy with the same headline published within two
//! days (`store::write`, `HEADLINE_WINDOW_SECS`).
//!
//! # Index
//!
//! [`StoryIndex`] holds one slot per story (its earliest copy) and an open-addressing table of
//! band keys: a lookup probes 16 cells and verifies a handful of candidates, whatever the number
//! of stories. Memory is 176 bytes per slot plus 91–183 bytes of table: measured (bench
//! `cluster`) 305.3 MiB of capacity, 297.8 MiB of resident-set growth, for 1,000,000 stories.
//! [`StoryIndex::prune`] drops stories first seen before the window; the index is rebuilt at
//! start-up by inserting the stored signatures.

mod headline;
mod index;
mod signature;
mod template;

use chrono::Duration;

pub use headline::{
    MIN_DISTINCTIVE_WORDS, declares_revision, headline_of, one_item_of_a_feed, same_headline,
};
pub use index::{StoryIndex, compare};
pub use signature::{Signature, use_stem_hash};
pub use template::templated_siblings;

use crate::domain::StoryId;

/// Tuning of the near-duplicate matcher.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterConfig {
    /// Only stories first seen within this window of an entry's time are candidates.
    pub window: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            window: Duration::days(7),
        }
    }
}

/// Why an entry was judged a copy of a story (shown by `tradefeed story`).
#[derive(Debug, Clone, PartialEq)]
pub struct MatchEvidence {
    /// The story matched.
    pub story: StoryId,
    /// Human-readable evidence, e.g. `text jaccard 0.83, title 0.71, shared numbers 5/5`.
    pub summary: String,
}

/// The matching rule's verdict on two signatures, from [`compare`].
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Whether the two copies would be put in one story (ignoring the time window).
    pub matched: bool,
    /// The evidence, in the same form as [`MatchEvidence::summary`].
    pub summary: String,
}
