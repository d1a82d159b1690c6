use chrono::{DateTime, Utc};

/// Database id of a story. Never reused, never changed once assigned.
pub type StoryId = i64;

/// One source's copy of a story.
#[derive(Debug, Clone, PartialEq)]
pub struct Appearance {
    /// Source name.
    pub source: String,
    /// The URL of the source's feed, as configured (user-info included: redact it to serve).
    pub feed_url: String,
    /// The entry's link.
    pub url: Option<String>,
    /// The entry's title as that source ran it.
    pub title: String,
    /// When tradefeed first saw this copy.
    pub first_seen: DateTime<Utc>,
    /// Why the entry joined the story (`first`, `url`, `fingerprint`, or near-duplicate evidence).
    pub evidence: String,
}

/// How well a story fits a topic, with the features that drove the score.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicScore {
    /// Topic name (e.g. `trade-policy`).
    pub topic: String,
    /// Score in [0, 1].
    pub score: f32,
    /// Whether the score passes the topic's threshold.
    pub matched: bool,
    /// The few features that drove the score, most important first.
    pub why: Vec<String>,
}

/// What the choice of a story's representative weighs of one copy: the priority of its
/// source, then the length of its plain text. One rule for ingest (a copy joining a story)
/// and for the re-pick after a priority change, so that both choose alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyWeight {
    /// The `priority` of the copy's source.
    pub priority: i32,
    /// The length of the copy's plain text in bytes (UTF-8), not characters: the measure the
    /// writer reads of a stored text from SQLite's row header (`octet_length`).
    pub text_bytes: usize,
    /// The stored source the copy came from (its row id).
    pub source: i64,
}

impl CopyWeight {
    /// Whether this copy, stored after `current` (the story's representative; `None` when it
    /// has none, or none still stored), is to represent the story in its place: when its
    /// source has a higher priority, or the same priority and a text more than a tenth longer
    /// (wire copies are often trimmed; a few words more is no reason to change). A later copy
    /// from the representative's own source takes over too, unless its text is under half as
    /// long: it joined as that feed's same item again (the same-feed rule lets no other in), a
    /// "CORRECTED-" or "UPDATE 2-" under a new id, and the feed's latest version is the one to
    /// serve; a bare headline or a teaser of it is not.
    pub fn represents_better_than(self, current: Option<CopyWeight>) -> bool {
        match current {
            None => true,
            Some(current) if self.source == current.source => {
                self.text_bytes >= current.text_bytes / 2
            }
            Some(current) => {
                self.priority > current.priority
                    || (self.priority == current.priority
                        && self.text_bytes
                            > current.text_bytes.saturating_add(current.text_bytes / 10))
            }
        }
    }
}

/// Which of a story's copies represents it when they were stored in the order given (entry id
/// order): the first represents, and each later one takes over when
/// [`CopyWeight::represents_better_than`] says so, as ingest decides copy by copy. The index
/// of that copy; `None` when there are none.
pub fn representative_of(copies: impl IntoIterator<Item = CopyWeight>) -> Option<usize> {
    let mut chosen: Option<(usize, CopyWeight)> = None;
    for (index, copy) in copies.into_iter().enumerate() {
        if copy.represents_better_than(chosen.map(|(_, weight)| weight)) {
            chosen = Some((index, copy));
        }
    }
    chosen.map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy from a source of its own (by priority and length, as the table reads best).
    fn copy(priority: i32, text_bytes: usize) -> CopyWeight {
        static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
        CopyWeight {
            priority,
            text_bytes,
            source: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// A copy from the source `source`.
    fn from(source: i64, text_bytes: usize) -> CopyWeight {
        CopyWeight {
            priority: 0,
            text_bytes,
            source,
        }
    }

    #[test]
    fn a_later_copy_of_the_representatives_own_source_takes_over_unless_a_stub() {
        // (joining copy, current representative, takes over)
        let table = [
            // The same feed's correction or update: the latest version, shorter or not.
            (from(7, 1000), Some(from(7, 1000)), true),
            (from(7, 900), Some(from(7, 1000)), true),
            (from(7, 3000), Some(from(7, 1000)), true),
            (from(7, 500), Some(from(7, 1000)), true),
            // Its bare headline or a teaser: not.
            (from(7, 499), Some(from(7, 1000)), false),
            (from(7, 40), Some(from(7, 1000)), false),
            // Another source: the usual rule.
            (from(8, 1000), Some(from(7, 1000)), false),
            (from(8, 1101), Some(from(7, 1000)), true),
        ];
        for (joining, current, want) in table {
            assert_eq!(
                joining.represents_better_than(current),
                want,
                "{joining:?} against {current:?}"
            );
        }
        // Replayed in stored order (a priority change's re-pick) it chooses alike: the
        // feed's correction after another outlet's copy, then the latest.
        assert_eq!(
            representative_of([from(7, 1000), from(8, 1050), from(7, 990)]),
            Some(2)
        );
    }

    #[test]
    fn a_copy_represents_better_by_a_higher_priority_or_a_text_over_a_tenth_longer() {
        // (joining copy, current representative, takes over)
        let table = [
            (copy(0, 0), None, true),
            (copy(-3, 0), None, true),
            (copy(1, 0), Some(copy(0, 5000)), true),
            (copy(0, 5000), Some(copy(1, 10)), false),
            (copy(2, 1100), Some(copy(2, 1000)), false),
            (copy(2, 1101), Some(copy(2, 1000)), true),
            (copy(0, 1000), Some(copy(0, 1000)), false),
            (copy(0, 999), Some(copy(0, 1000)), false),
            // A text of under ten bytes: any longer one is over a tenth longer.
            (copy(0, 10), Some(copy(0, 9)), true),
            (copy(0, 1), Some(copy(0, 0)), true),
            (copy(0, 0), Some(copy(0, 0)), false),
            (copy(0, usize::MAX), Some(copy(0, usize::MAX)), false),
        ];
        for (joining, current, want) in table {
            assert_eq!(
                joining.represents_better_than(current),
                want,
                "{joining:?} against {current:?}"
            );
        }
    }

    #[test]
    fn the_representative_of_copies_is_ingests_choice_copy_by_copy_in_stored_order() {
        // (copies in stored order, index chosen)
        let table: [(&[CopyWeight], Option<usize>); 7] = [
            (&[], None),
            (&[copy(0, 10)], Some(0)),
            // Each later copy is weighed against the one representing then, not the longest:
            // neither 1050 nor 1090 is a tenth longer than 1000.
            (&[copy(0, 1000), copy(0, 1050), copy(0, 1090)], Some(0)),
            // Step by step: 1101 takes over from 1000, 1212 from 1101 (more than 1211), and
            // 1300 is not a tenth longer than 1212.
            (
                &[copy(0, 1000), copy(0, 1101), copy(0, 1212), copy(0, 1300)],
                Some(2),
            ),
            // A shorter copy between changes nothing, and 1099 is still not a tenth longer.
            (&[copy(0, 1000), copy(0, 900), copy(0, 1099)], Some(0)),
            // Priority first, whatever the lengths; the first of the highest priority then
            // holds against equals that are not a tenth longer (11 is not more than 10 + 1).
            (
                &[copy(0, 5000), copy(3, 10), copy(3, 11), copy(1, 9000)],
                Some(1),
            ),
            // 12 is more than 10 + 1.
            (&[copy(3, 10), copy(3, 11), copy(3, 12)], Some(2)),
        ];
        for (copies, want) in table {
            assert_eq!(
                representative_of(copies.iter().copied()),
                want,
                "{copies:?}"
            );
        }
    }
}
