//! A model's features, by hash: built once when a model is loaded or trained, then only read,
//! once per term of every story scored.
//!
//! A hash map kept them in 1.6 MB for the 30,669 features of the shipped model: its table
//! stays under 7/8 full, so it doubled to 65,536 slots of 24 bytes at 28,672 features. Here
//! the features lie in one array of 16-byte entries sorted by the top bits of their hash,
//! with the start of each bucket of top bits beside it and the name numbers apart: 0.68 MB
//! for that model. A lookup reads two bucket starts and compares about two hashes, where the
//! map compared a group of control bytes and then a hash.

/// One feature of a model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Feature {
    pub(super) weight: f32,
    /// What its term frequency is multiplied by before normalizing: idf in the training set
    /// (1 when idf is off) × title weight × NB ratio, as training chose.
    pub(super) scale: f32,
}

/// A feature on its way into a [`FeatureTable`]: its hash and what it holds (its name is
/// given apart, see [`FeatureTable::build`]).
pub(super) type Row = (u64, Feature);

/// A model's features by hash, with their names (see the module docs).
#[derive(Debug, Clone, Default)]
pub(super) struct FeatureTable {
    /// Every feature with its hash, by the top bits of the hash (within a bucket, in the
    /// order they were given).
    entries: Box<[Row]>,
    /// The number of each entry's name in `names`: read only to explain a score, so kept
    /// out of the entries the lookups scan.
    name_numbers: Box<[u32]>,
    /// `entries[starts[b]..starts[b + 1]]` are the features whose hash's top bits are `b`.
    starts: Box<[u32]>,
    /// The hash shift that leaves its top bits: 64 less their count.
    shift: u32,
    /// The features' names, in the order the features were given.
    names: FeatureNames,
}

impl FeatureTable {
    /// The table of these features, row `i` named by name `i` of `names`. A hash given
    /// twice keeps the last row given (as a map would: a model file that lists a feature
    /// twice scores with its last line).
    pub(super) fn build(rows: Vec<Row>, names: FeatureNames) -> FeatureTable {
        // About two features per bucket, and at least two buckets (a shift of 64 would
        // overflow).
        let buckets = (rows.len() / 2).next_power_of_two().max(2);
        let shift = 64 - buckets.trailing_zeros();
        let bucket = |hash: u64| (hash >> shift) as usize;
        // A counting sort by bucket (this runs at every start, on some 30,000 rows): first
        // where each bucket ends, then the rows put in place from the last, each bucket's end
        // moving down to its start, so that within a bucket the rows keep the order given.
        let mut starts = vec![0u32; buckets + 1];
        for row in &rows {
            starts[bucket(row.0)] += 1;
        }
        let mut end = 0;
        for start in &mut starts[..buckets] {
            end += *start;
            *start = end;
        }
        starts[buckets] = end;
        let unset = Feature {
            weight: 0.0,
            scale: 0.0,
        };
        let mut entries = vec![(0u64, unset); rows.len()];
        let mut name_numbers = vec![0u32; rows.len()];
        for (i, row) in rows.iter().enumerate().rev() {
            let start = &mut starts[bucket(row.0)];
            *start -= 1;
            entries[*start as usize] = *row;
            name_numbers[*start as usize] = i as u32;
        }
        // Each hash's last row only (a hand-edited model file may list a feature twice):
        // the buckets compacted in place, each starting where the one before now ends.
        let mut kept = 0;
        for b in 0..buckets {
            let given = starts[b] as usize..starts[b + 1] as usize;
            let first = kept;
            starts[b] = first as u32;
            for at in given {
                let at_kept = entries[first..kept]
                    .iter()
                    .position(|e| e.0 == entries[at].0)
                    .map_or(kept, |earlier| first + earlier);
                // Nothing moves until a repeat (the usual model has none).
                if at_kept != at {
                    entries[at_kept] = entries[at];
                    name_numbers[at_kept] = name_numbers[at];
                }
                if at_kept == kept {
                    kept += 1;
                }
            }
        }
        starts[buckets] = kept as u32;
        entries.truncate(kept);
        name_numbers.truncate(kept);
        FeatureTable {
            entries: entries.into_boxed_slice(),
            name_numbers: name_numbers.into_boxed_slice(),
            starts: starts.into(),
            shift,
            names,
        }
    }

    /// The feature of this hash and its position (for [`FeatureTable::name`]), if the model
    /// has it.
    pub(super) fn get(&self, hash: u64) -> Option<(usize, &Feature)> {
        let b = (hash >> self.shift) as usize;
        let (start, end) = (self.starts[b] as usize, self.starts[b + 1] as usize);
        self.entries[start..end]
            .iter()
            .position(|e| e.0 == hash)
            .map(|i| (start + i, &self.entries[start + i].1))
    }

    /// The name of the feature at `position`.
    pub(super) fn name(&self, position: usize) -> &str {
        self.names.get(self.name_numbers[position])
    }

    /// Every feature with its name, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, &Feature)> {
        self.entries
            .iter()
            .enumerate()
            .map(|(i, e)| (self.name(i), &e.1))
    }

    /// How many features it holds.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes its lookups use: the entries, their name numbers and the bucket starts (the
    /// names themselves are what any layout would hold).
    #[cfg(test)]
    pub(super) fn lookup_bytes(&self) -> usize {
        self.entries.len() * size_of::<Row>()
            + self.name_numbers.len() * size_of::<u32>()
            + self.starts.len() * size_of::<u32>()
    }
}

/// The names of a model's features, kept together: one allocation for the model's tens of
/// thousands of names, where a `Box<str>` each cost 16 bytes and a heap block apiece.
#[derive(Debug, Clone, Default)]
pub(super) struct FeatureNames {
    text: String,
    /// Where each name starts in `text`; name `i` ends where name `i + 1` starts.
    starts: Vec<u32>,
}

impl FeatureNames {
    /// Room for `names` more names.
    pub(super) fn reserve(&mut self, names: usize) {
        self.starts.reserve(names);
    }

    /// Adds a name, the next number's.
    pub(super) fn push(&mut self, name: &str) {
        self.starts.push(self.text.len() as u32);
        self.text.push_str(name);
    }

    fn get(&self, number: u32) -> &str {
        let at = number as usize;
        let start = self.starts[at] as usize;
        let end = self
            .starts
            .get(at + 1)
            .map_or(self.text.len(), |&e| e as usize);
        &self.text[start..end]
    }

    pub(super) fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.starts.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn feature(weight: f32) -> Feature {
        Feature { weight, scale: 1.0 }
    }

    fn build(rows: &[(u64, Feature, &str)]) -> FeatureTable {
        let mut names = FeatureNames::default();
        for row in rows {
            names.push(row.2);
        }
        FeatureTable::build(rows.iter().map(|&(h, f, _)| (h, f)).collect(), names)
    }

    /// Every hash given is found with its feature and name, whatever the table's size and
    /// however the hashes fall in buckets; absent hashes are not; a hash given twice keeps
    /// its last feature and name, as a map would.
    #[test]
    fn finds_what_a_map_finds() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for n in [0usize, 1, 2, 3, 5, 64, 1_000, 30_669] {
            let names: Vec<String> = (0..n).map(|i| format!("f{i}")).collect();
            let mut hashes: Vec<u64> = (0..n).map(|_| next()).collect();
            // Crowded buckets: hashes that share their top bits, and small ones (top bits 0).
            if n >= 64 {
                for i in 0..8 {
                    hashes[i] = (hashes[0] & !0xff) | i as u64;
                    hashes[8 + i] = i as u64;
                }
            }
            let mut rows: Vec<(u64, Feature, &str)> = hashes
                .iter()
                .zip(&names)
                .enumerate()
                .map(|(i, (&h, name))| (h, feature(i as f32), name.as_str()))
                .collect();
            // The same hash again, later, with another feature and name.
            if n >= 3 {
                rows.push((hashes[1], feature(-1.0), "again"));
            }
            // And after it, a new hash in the crowded bucket and that repeat again: what
            // follows a repeat in its bucket moves down over it.
            if n >= 64 {
                rows.push(((hashes[0] & !0xff) | 0x80, feature(-2.0), "after"));
                rows.push((hashes[1], feature(-3.0), "third"));
            }
            let map: HashMap<u64, (Feature, &str)> =
                rows.iter().map(|&(h, f, name)| (h, (f, name))).collect();
            let table = build(&rows);
            assert_eq!(table.len(), map.len(), "n = {n}");
            for (&hash, &(f, name)) in &map {
                let (at, found) = table.get(hash).expect("a given hash is found");
                assert_eq!((*found, table.name(at)), (f, name), "n = {n}");
            }
            for _ in 0..1_000 {
                let absent = next();
                assert_eq!(table.get(absent).is_some(), map.contains_key(&absent));
            }
            let mut listed: Vec<(&str, Feature)> = table.iter().map(|(n, f)| (n, *f)).collect();
            let mut expected: Vec<(&str, Feature)> = map.values().map(|&(f, n)| (n, f)).collect();
            listed.sort_by(|a, b| a.0.cmp(b.0));
            expected.sort_by(|a, b| a.0.cmp(b.0));
            assert_eq!(listed, expected, "n = {n}");
        }
    }

    /// The shipped model's size: under half of what its hash map took (1.6 MB).
    #[test]
    fn the_table_of_thirty_thousand_features_is_under_half_a_map() {
        let names: Vec<String> = (0..30_669).map(|i| format!("feature {i}")).collect();
        let rows: Vec<(u64, Feature, &str)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                    feature(1.0),
                    n.as_str(),
                )
            })
            .collect();
        let table = build(&rows);
        let lookup_bytes = table.lookup_bytes();
        assert!(lookup_bytes < 700_000, "{lookup_bytes} bytes");
    }
}
