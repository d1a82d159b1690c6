//! A Bloom filter over the stored exact-duplicate keys, kept by the writer thread.
//!
//! A new entry's story is first looked up by its exact keys (canonical URL, fingerprint), and
//! most of those lookups find nothing: the entry starts a story or joins one as a
//! near-duplicate. Each was an index search in SQLite (2% of a cold pass's instructions, more
//! at scale, where the key table's pages fall out of the cache). The filter answers "never
//! stored" for nearly all of them from memory; "maybe" still asks SQLite, so a false positive
//! costs one lookup and nothing else.
//!
//! The filter only ever has keys added: a rolled-back write or a pruned story leaves its keys
//! in, which can only make it say "maybe". It is loaded from the table when the writer first
//! needs it, and loaded again, twice as large, once it holds more keys than it was sized for.

use rusqlite::Connection;

/// Filter bits per key of capacity (a power of two at or above this): with [`PROBES`] probes,
/// about 1% of absent keys read "maybe" when the filter is full, far fewer before.
const BITS_PER_KEY: usize = 10;
/// Bits set and tested per key.
const PROBES: u64 = 7;
/// Keys a filter is sized for at least (2^20 bits: 128 KiB).
const MIN_CAPACITY: usize = 1 << 16;

/// The stored story keys, as a Bloom filter. See the module docs.
pub(super) struct KeyFilter {
    bits: Vec<u64>,
    /// `bit count - 1` (the bit count is a power of two).
    mask: u64,
    /// Keys added (loaded or inserted since).
    keys: usize,
    /// Keys the filter is sized for; past it, the filter is loaded again from the table.
    capacity: usize,
}

impl KeyFilter {
    /// An empty filter sized for `capacity` keys.
    fn with_capacity(capacity: usize) -> KeyFilter {
        let capacity = capacity.max(MIN_CAPACITY);
        let bit_count = (capacity * BITS_PER_KEY).next_power_of_two();
        KeyFilter {
            bits: vec![0; bit_count / 64],
            mask: bit_count as u64 - 1,
            keys: 0,
            capacity,
        }
    }

    /// A filter holding every key of `story_keys`, with room for as many again.
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<KeyFilter> {
        let stored: i64 = conn.query_row("SELECT count(*) FROM story_keys", [], |r| r.get(0))?;
        let mut filter = KeyFilter::with_capacity(usize::try_from(stored).unwrap_or(0) * 2);
        let mut statement = conn.prepare("SELECT key FROM story_keys")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            // Keys are written and looked up as 16-byte blobs: a value of any other form could
            // never equal a lookup, so it need not be in the filter.
            if let Ok(Ok(key)) = row.get_ref(0)?.as_blob().map(<&[u8; 16]>::try_from) {
                filter.insert(key);
            }
        }
        Ok(filter)
    }

    /// Whether the filter is over the capacity it was sized for (then load it again).
    pub(super) fn is_full(&self) -> bool {
        self.keys > self.capacity
    }

    /// Adds a key (a 128-bit hash, as stored).
    pub(super) fn insert(&mut self, key: &[u8; 16]) {
        for bit in self.probes(key) {
            self.bits[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        self.keys += 1;
    }

    /// False when the key was never added: it is not in the table. True when it may be.
    pub(super) fn may_contain(&self, key: &[u8; 16]) -> bool {
        self.probes(key)
            .all(|bit| self.bits[(bit / 64) as usize] & (1 << (bit % 64)) != 0)
    }

    /// The key's bit positions. The key is already a uniform 128-bit hash: its two halves
    /// give the positions by double hashing (Kirsch and Mitzenmacher), no hashing needed.
    fn probes(&self, key: &[u8; 16]) -> impl Iterator<Item = u64> + use<> {
        let (low, high) = key.split_at(8);
        let h1 = u64::from_le_bytes(low.try_into().expect("8 bytes"));
        // Odd, so that the steps visit distinct positions in a power-of-two table.
        let h2 = u64::from_le_bytes(high.try_into().expect("8 bytes")) | 1;
        let mask = self.mask;
        (0..PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & mask)
    }

    /// Bytes the filter holds (for the memory notes in the README).
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.bits.len() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xxhash_rust::xxh3::xxh3_128;

    fn key(n: u64) -> [u8; 16] {
        xxh3_128(&n.to_le_bytes()).to_le_bytes()
    }

    #[test]
    fn added_keys_always_may_be_present_and_few_others_do() {
        let mut filter = KeyFilter::with_capacity(100_000);
        for n in 0..100_000 {
            filter.insert(&key(n));
        }
        assert!(!filter.is_full());
        assert!((0..100_000).all(|n| filter.may_contain(&key(n))));
        // Filled to capacity: about 1% false positives (10 to 20 bits per key, 7 probes).
        let false_positives = (1_000_000..1_100_000)
            .filter(|&n| filter.may_contain(&key(n)))
            .count();
        assert!(false_positives < 2_000, "{false_positives} of 100,000");
        assert_eq!(
            filter.heap_bytes(),
            (100_000usize * 10).next_power_of_two() / 8
        );
    }

    #[test]
    fn an_empty_filter_says_no_and_a_filter_past_its_size_asks_to_be_reloaded() {
        let mut filter = KeyFilter::with_capacity(0);
        assert!(!filter.may_contain(&key(1)));
        for n in 0..=MIN_CAPACITY as u64 {
            filter.insert(&key(n));
        }
        assert!(filter.is_full());
    }

    #[test]
    fn a_loaded_filter_holds_every_stored_key_with_room_for_as_many_again() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE story_keys (key BLOB PRIMARY KEY, story_id INTEGER NOT NULL)
             WITHOUT ROWID;",
        )
        .unwrap();
        let mut insert = conn
            .prepare("INSERT INTO story_keys (key, story_id) VALUES (?1, 1)")
            .unwrap();
        for n in 0..40_000 {
            insert.execute([key(n)]).unwrap();
        }
        // A value of another form (never written) cannot equal a 16-byte lookup: not counted.
        insert.execute([b"short key".to_vec()]).unwrap();
        drop(insert);
        let filter = KeyFilter::load(&conn).unwrap();
        assert!((0..40_000).all(|n| filter.may_contain(&key(n))));
        assert_eq!(filter.keys, 40_000);
        assert_eq!(filter.capacity, 80_002);
        assert!(!filter.is_full());
    }
}
