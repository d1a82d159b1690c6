//! Text → tokens → hashed features, shared by training, scoring and phrase matching.
//!
//! One pass, no regex: a token is a run of alphanumeric characters (apostrophes are dropped
//! inside a word, so `China's` → `chinas` → stem `china`; everything else separates). Tokens are
//! lower-cased, long numbers fold to `#`, then stemmed with the Snowball English stemmer. Stemming
//! is the slowest step, so each thread keeps a bounded cache from surface form to stem hash, and
//! behind it the threads share a bounded table of the stems any of them worked out.
//!
//! Feature identity is a 64-bit hash; the human-readable name lives only in the model file:
//! - unigram `tariff` → `xxh3(stem)`
//! - bigram `export control` → `bigram(xxh3("export"), xxh3("control"))` (adjacent non-stopwords)
//! - title unigram `title:tariff` → `title(xxh3("tariff"))`
//!
//! so a name read back from a model file hashes to the same id as the text that produced it.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{OnceLock, PoisonError, RwLock};

use rust_stemmers::{Algorithm, Stemmer};
use xxhash_rust::xxh3::xxh3_64;

/// Largest number of sets of the per-thread stem cache: 16,384 sets of two 32-byte ways,
/// 32,768 words in 1 MiB (stemming runs on the CPU pool, one thread per core, whose threads
/// end after 10 idle seconds). The 7,500 Reuters stories of the feed farm hold some 36,000
/// distinct words, more than two per set: the rarest push each other out, and come back from
/// the stems the threads share ([`SharedStems`]) rather than being stemmed again. Word
/// frequencies are Zipfian, so the common words that make up most tokens stay cached. (At
/// 32,768 sets and no shared stems, a cold 150-feed pass stemmed 61,400 times; now 38,900,
/// and peak RSS 0.8-1.7 MB lower in two sets of alternated runs.)
const CACHE_SETS: usize = 16_384;

/// Sets of a new stem cache (64 KiB): it doubles whenever it holds half as many words as it
/// has sets (a quarter of its ways: few sets overflow before it grows), up to
/// [`CACHE_SETS`]; the last doubling holds the old 512 KiB and the new 1 MiB for a moment. A
/// thread that scores now and then (the store's writer scores the copies that come to
/// represent their story) needs a few hundred words, not 1 MiB.
const FIRST_SETS: usize = 1_024;

/// Longest word (in bytes) the stem cache holds: its bytes are kept inline in the way, so a
/// lookup compares in place. Longer words (rare) are stemmed every time.
const CACHED_WORD_MAX: usize = 15;

/// Salt that separates title features from body features.
const TITLE_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// Function words that carry no topic; dropped from model features, kept for phrase matching
/// (so a phrase like "traded to the" still matches). `us` is deliberately absent: lower-cased,
/// it is usually the United States.
const STOPWORDS: &[&str] = &[
    "a", "about", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are",
    "as", "at", "be", "been", "before", "being", "between", "both", "but", "by", "can", "could",
    "did", "do", "does", "doing", "during", "each", "few", "for", "from", "further", "had", "has",
    "have", "having", "he", "her", "here", "hers", "him", "his", "how", "i", "if", "in", "into",
    "is", "it", "its", "itself", "just", "me", "more", "most", "my", "no", "nor", "not", "now",
    "of", "off", "on", "once", "only", "or", "other", "our", "ours", "out", "over", "own", "s",
    "said", "same", "says", "she", "should", "so", "some", "such", "than", "that", "the", "their",
    "theirs", "them", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while",
    "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "t", "mln", "pct",
    "dlrs", "reuter",
];

/// One token after normalization: the hash of its stem and whether it is a stopword.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// `xxh3_64` of the stem.
    pub stem: u64,
    /// Stopwords take part in phrases but not in model features.
    pub stop: bool,
}

/// A word and its token, keyed in the cache by the word's `xxh3_64`. The word's bytes are
/// kept inline and compared on every hit: a lookup touches one cache line and never a heap
/// string, and two words that share a hash can never be confused.
#[derive(Clone, Copy, Default)]
struct CachedWord {
    /// The word's `xxh3_64`; 0 marks an empty way (a word hashing to 0 is never cached).
    key: u64,
    /// [`Token::stem`].
    stem: u64,
    /// The word's length in bytes, with [`STOP_BIT`] set for a stopword.
    len_and_stop: u8,
    bytes: [u8; CACHED_WORD_MAX],
}

/// The bit of [`CachedWord::len_and_stop`] that is [`Token::stop`].
const STOP_BIT: u8 = 0x80;

impl CachedWord {
    /// `word` (at most [`CACHED_WORD_MAX`] bytes, hashed to `key`) and its token.
    fn new(key: u64, word: &str, token: Token) -> CachedWord {
        let mut bytes = [0u8; CACHED_WORD_MAX];
        bytes[..word.len()].copy_from_slice(word.as_bytes());
        let len = u8::try_from(word.len()).expect("at most CACHED_WORD_MAX bytes");
        CachedWord {
            key,
            stem: token.stem,
            len_and_stop: len | if token.stop { STOP_BIT } else { 0 },
            bytes,
        }
    }

    fn holds(&self, key: u64, word: &str) -> bool {
        let len = usize::from(self.len_and_stop & !STOP_BIT);
        self.key == key && len == word.len() && &self.bytes[..len] == word.as_bytes()
    }

    fn token(&self) -> Token {
        Token {
            stem: self.stem,
            stop: self.len_and_stop & STOP_BIT != 0,
        }
    }
}

/// Two ways in one cache line, the more recently used first: a lookup reads one line.
#[derive(Clone, Copy, Default)]
#[repr(C, align(64))]
struct CacheSet([CachedWord; 2]);

/// A two-way set-associative cache from word to token, bounded by construction: a word that
/// finds its set full replaces the set's less recently used word. A hash table of the same
/// words (56-byte slots, cleared when full) cost two cache misses per lookup, its control
/// bytes and its slot, on most of the 2.6 million words of a feed-farm pass.
#[derive(Default)]
struct StemCache {
    /// Empty until the first word is put, and again after [`release_stem_cache`]; else a
    /// power of two long, so a key's low bits pick its set.
    sets: Vec<CacheSet>,
    /// Ways in use.
    len: usize,
}

impl StemCache {
    /// The token of `word` (hashed to `key`), if cached; a hit moves it first in its set.
    fn get(&mut self, key: u64, word: &str) -> Option<Token> {
        // An empty cache's mask is all ones, which `get_mut` finds no set at.
        let mask = self.sets.len().wrapping_sub(1);
        let set = self.sets.get_mut(key as usize & mask)?;
        if set.0[0].holds(key, word) {
            return Some(set.0[0].token());
        }
        if set.0[1].holds(key, word) {
            set.0.swap(0, 1);
            return Some(set.0[0].token());
        }
        None
    }

    /// Caches `word` (at most [`CACHED_WORD_MAX`] bytes, hashed to `key`), first in its set.
    /// Only for a word [`StemCache::get`] just missed: one already in the set would be held
    /// twice.
    fn put(&mut self, key: u64, word: &str, token: Token) {
        if key == 0 {
            return;
        }
        debug_assert!(self.get(key, word).is_none(), "put of a cached word");
        if self.sets.is_empty() {
            self.sets = vec![CacheSet::default(); FIRST_SETS];
        } else if self.len * 2 >= self.sets.len() && self.sets.len() < CACHE_SETS {
            self.grow();
        }
        self.place(CachedWord::new(key, word, token));
    }

    /// Puts a way first in its set, the set's first way becoming its second.
    fn place(&mut self, way: CachedWord) {
        debug_assert!(self.sets.len().is_power_of_two());
        let mask = self.sets.len() - 1;
        let set = &mut self.sets[way.key as usize & mask];
        self.len += usize::from(set.0[1].key == 0);
        set.0[1] = set.0[0];
        set.0[0] = way;
    }

    /// Doubles the sets and places every word again (each set's less recently used first,
    /// so the other stays first where both land in one set).
    fn grow(&mut self) {
        let doubled = vec![CacheSet::default(); self.sets.len() * 2];
        let old = std::mem::replace(&mut self.sets, doubled);
        self.len = 0;
        for set in &old {
            for way in set.0.iter().rev().filter(|way| way.key != 0) {
                self.place(*way);
            }
        }
    }
}

thread_local! {
    static CACHE: RefCell<StemCache> = RefCell::new(StemCache::default());
}

/// Drops the calling thread's stem cache, memory included (see [`super::release_thread_caches`]),
/// and the stems shared between threads.
pub(super) fn release_stem_cache() {
    CACHE.with(|cache| *cache.borrow_mut() = StemCache::default());
    *SHARED.write().unwrap_or_else(PoisonError::into_inner) = SharedStems::default();
}

/// Most words the shared stems hold: 7/8 of 32,768 slots of 41 bytes (1.3 MiB, allocated at
/// the first word), the load at which the table would double. When full it takes no more
/// words until it is released with the threads' caches: it keeps the words met first, which
/// in news text are mostly common ones.
const SHARED_WORDS_MAX: usize = 28_672;

/// The stems that any thread has worked out, for words that a thread's own cache misses.
/// The CPU pool's threads score different stories of the same news, so most words reach
/// both: a cold pass over the 150-feed farm stemmed 61,400 times for some 36,000 distinct
/// words before this table (each thread stemmed its own), at about 3,500 instructions each. A
/// thread asks it only after missing its own cache, so the lock is taken tens of thousands of
/// times in such a pass, not once per word. It is released when the store's writer goes idle
/// ([`super::release_thread_caches`]), as a quiet daemon should be small.
#[derive(Default)]
struct SharedStems {
    /// The word's `xxh3_64` → the word (compared on every hit, as in a thread's cache).
    words: HashMap<u64, CachedWord, BuildHasherDefault<PreHashed>>,
}

impl SharedStems {
    /// The token of `word` (hashed to `key`), if held.
    fn get(&self, key: u64, word: &str) -> Option<Token> {
        self.words
            .get(&key)
            .filter(|way| way.holds(key, word))
            .map(CachedWord::token)
    }

    /// Holds `word` (at most [`CACHED_WORD_MAX`] bytes) unless full.
    fn offer(&mut self, key: u64, word: &str, token: Token) {
        if self.words.capacity() == 0 {
            self.words.reserve(SHARED_WORDS_MAX);
        }
        if self.words.len() < SHARED_WORDS_MAX {
            self.words.insert(key, CachedWord::new(key, word, token));
        }
    }
}

static SHARED: RwLock<SharedStems> = RwLock::new(SharedStems {
    words: HashMap::with_hasher(BuildHasherDefault::new()),
});

/// Words in the calling thread's stem cache (for memory checks).
pub fn stems_cached_on_this_thread() -> usize {
    CACHE.with(|cache| cache.borrow().len)
}

/// Words whose Snowball stem would be a trade term they have nothing to do with, and the stem
/// they get instead (for scoring and training only; see [`stem_hash_of_word`]):
/// - `important`, `importance`, `importantly` stem to `import`: "An important update on our
///   store hours" scored as imports (the audit's main false positive).
/// - `goods` (merchandise, a trade word) and `good` (the adjective) both stem to `good`.
/// - `customer(s)` and `customs` (the border authority) both stem to `custom`.
/// - `original`, `originally`, `originality` stem to `origin` (as in "rules of origin").
///
/// Words of one root whose senses differ (`exporting` photos, stock `trading`, `duty`) are
/// left alone: the stem is right, and the model weighs them by their company (bigrams, the
/// rest of the text). Each override is its own stem, kept apart from every Snowball stem
/// (they end in letters Snowball strips, or are whole words it would shorten).
const STEM_OVERRIDES: &[(&str, &str)] = &[
    ("important", "important"),
    ("importance", "important"),
    ("importantly", "important"),
    ("unimportant", "unimportant"),
    ("goods", "goods"),
    ("customer", "customer"),
    ("customers", "customer"),
    ("original", "original"),
    ("originally", "original"),
    ("originality", "original"),
    ("originals", "original"),
];

/// The stem text of one word as written: its [`STEM_OVERRIDES`] stem, else the Snowball stem
/// of the folded word.
fn stem_text(raw: &str) -> Cow<'_, str> {
    let folded = fold(raw);
    if let Some(&(_, stem)) = STEM_OVERRIDES.iter().find(|(word, _)| *word == folded) {
        return Cow::Borrowed(stem);
    }
    Cow::Owned(stemmer().stem(&folded).into_owned())
}

fn stemmer() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::English))
}

fn is_stopword(word: &str) -> bool {
    static SET: OnceLock<std::collections::HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOPWORDS.iter().copied().collect())
        .contains(word)
}

/// The hash of a bigram of two stem hashes (order matters): a rotate-xor followed by the
/// splitmix64 finalizer, cheap and well mixed.
pub fn bigram(a: u64, b: u64) -> u64 {
    let mut z = a.rotate_left(23) ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of a title-only feature.
pub fn title(feature: u64) -> u64 {
    bigram(feature, TITLE_SALT)
}

/// The feature hash of a readable feature name as written in a model file
/// (`tariff`, `export control`, `title:tariff`).
pub fn feature_hash(name: &str) -> u64 {
    let (is_title, rest) = match name.strip_prefix("title:") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    // Split on bytes: this runs for each of a model's ~30,000 features at every start, and
    // `str::split`'s char searcher cost more than the hashing.
    let space = |s: &str| s.bytes().position(|b| b == b' ');
    let hash = match space(rest) {
        None => xxh3_64(rest.as_bytes()),
        Some(i) => {
            let after = &rest[i + 1..];
            let second = &after[..space(after).unwrap_or(after.len())];
            bigram(xxh3_64(&rest.as_bytes()[..i]), xxh3_64(second.as_bytes()))
        }
    };
    if is_title { title(hash) } else { hash }
}

/// Lower-cases one word and folds numbers: digits-only up to 4 long (`232`, `301`, `2025`) and
/// short codes (`g7`, `h20`) stay, longer numeric strings become `#`.
fn fold(word: &str) -> Cow<'_, str> {
    if word.bytes().any(|b| b.is_ascii_digit()) && word.chars().count() > 4 {
        return Cow::Borrowed("#");
    }
    if word.chars().all(|c| !c.is_uppercase()) {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(word.to_lowercase())
    }
}

/// Calls `each` with every word of `text`, in order. Words are slices of `text` where possible;
/// only a word with an apostrophe inside is copied (to drop it: "China's" → "Chinas").
///
/// A word is a run of alphanumeric characters, with `'` or `’` allowed between two of them.
/// The scan works on bytes and decodes a character only for non-ASCII bytes: it is the first
/// step of scoring every story, and most news text is ASCII.
fn for_each_word(text: &str, mut each: impl FnMut(&str)) {
    /// The character at byte `i` (a char boundary) and its length.
    fn char_at(text: &str, i: usize) -> (char, usize) {
        let c = text[i..].chars().next().unwrap_or('\0');
        (c, c.len_utf8())
    }
    /// Whether the character starting at byte `i` is alphanumeric.
    fn alnum_at(text: &str, i: usize) -> bool {
        match text.as_bytes().get(i) {
            Some(b) if b.is_ascii() => b.is_ascii_alphanumeric(),
            Some(_) => char_at(text, i).0.is_alphanumeric(),
            None => false,
        }
    }
    let bytes = text.as_bytes();
    let mut joined = String::new();
    let mut i = 0;
    while i < bytes.len() {
        // Skip to the start of a word.
        if bytes[i].is_ascii() {
            if !bytes[i].is_ascii_alphanumeric() {
                i += 1;
                continue;
            }
        } else {
            let (c, len) = char_at(text, i);
            if !c.is_alphanumeric() {
                i += len;
                continue;
            }
        }
        let start = i;
        let mut apostrophe = false;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_alphanumeric() {
                i += 1;
            } else if b == b'\'' && alnum_at(text, i + 1) {
                apostrophe = true;
                i += 1;
            } else if b.is_ascii() {
                break;
            } else {
                let (c, len) = char_at(text, i);
                if c.is_alphanumeric() {
                    i += len;
                } else if c == '\u{2019}' && alnum_at(text, i + len) {
                    apostrophe = true;
                    i += len;
                } else {
                    break;
                }
            }
        }
        let word = &text[start..i];
        if apostrophe {
            joined.clear();
            joined.extend(word.chars().filter(|&c| c != '\'' && c != '\u{2019}'));
            each(&joined);
        } else {
            each(word);
        }
    }
}

/// Tokenizes `text`, appending to `out`; when `names` is given, records stem texts by hash.
pub fn tokenize(text: &str, out: &mut Vec<Token>, mut names: Option<&mut HashMap<u64, String>>) {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        for_each_word(text, |raw| {
            let token = token_of(&mut cache, raw);
            // Training wants each stem's text once; only then is it worked out again.
            if let Some(names) = names.as_deref_mut() {
                names
                    .entry(token.stem)
                    .or_insert_with(|| stem_text(raw).into_owned());
            }
            out.push(token);
        });
    });
}

/// [`Token::stem`] of one lower-case word without digits, through the calling thread's stem
/// cache. The near-duplicate signature stems its headline terms here, so a word that scoring
/// has already met on this thread is not stemmed again (headline words are mostly such).
///
/// Signatures are persisted, so their terms keep the plain Snowball stem: a word of
/// [`STEM_OVERRIDES`] (rare in headlines) is stemmed here every time, past the cache that holds
/// its overridden stem for scoring.
pub fn stem_hash_of_word(word: &str) -> u64 {
    if STEM_OVERRIDES
        .iter()
        .any(|(overridden, _)| *overridden == word)
    {
        return xxh3_64(stemmer().stem(word).as_bytes());
    }
    CACHE.with(|cache| token_of(&mut cache.borrow_mut(), word).stem)
}

/// The token of one word: from the thread's cache, else from the stems shared between
/// threads, else stemmed; then cached (both places).
fn token_of(cache: &mut StemCache, raw: &str) -> Token {
    if raw.len() > CACHED_WORD_MAX {
        return stem_token(raw);
    }
    let key = xxh3_64(raw.as_bytes());
    if let Some(hit) = cache.get(key, raw) {
        return hit;
    }
    let (shared, full) = {
        let shared = SHARED.read().unwrap_or_else(PoisonError::into_inner);
        (shared.get(key, raw), shared.words.len() >= SHARED_WORDS_MAX)
    };
    let token = shared.unwrap_or_else(|| {
        // Stemmed outside the lock: the other thread may stem the same word meanwhile, and
        // both then offer the same token.
        let token = stem_token(raw);
        if !full {
            SHARED
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .offer(key, raw, token);
        }
        token
    });
    cache.put(key, raw, token);
    token
}

/// The token of one word, worked out.
fn stem_token(raw: &str) -> Token {
    Token {
        stem: xxh3_64(stem_text(raw).as_bytes()),
        stop: is_stopword(&fold(raw)),
    }
}

/// How documents become feature vectors. Stored in the model file so scoring matches training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureSettings {
    /// Add adjacent-stem bigrams.
    pub bigrams: bool,
    /// Add `title:` copies of title unigrams (titles carry the topic more reliably than bodies).
    pub title_features: bool,
    /// Weight features by inverse document frequency (learned from the training set) before
    /// normalizing, so rare, specific words count for more than common ones.
    pub idf: bool,
}

impl Default for FeatureSettings {
    fn default() -> Self {
        FeatureSettings {
            bigrams: true,
            title_features: true,
            idf: true,
        }
    }
}

/// Reusable buffers for turning documents into sparse vectors without allocating per document.
#[derive(Debug, Default)]
pub struct Scratch {
    /// Title tokens.
    pub title: Vec<Token>,
    /// Body tokens (title tokens are not repeated here).
    pub body: Vec<Token>,
    raw: Vec<u64>,
    /// Counting table: (feature hash, count), 0 = empty; all empty between documents.
    slots: Vec<(u64, u32)>,
    /// Occupied slots of the current document, in first-seen order.
    used: Vec<u32>,
    /// The sparse vector, in first-seen order: `1 + ln tf` after [`Scratch::build`], the
    /// final weighted, L2-normalized values after [`Scratch::normalize`].
    pub vector: Vec<(u64, f32)>,
}

impl Scratch {
    /// Tokenizes a document into `self.title` / `self.body` and builds `self.vector` with
    /// sublinear term frequencies; call [`Scratch::normalize`] next.
    pub fn build(
        &mut self,
        title_text: &str,
        body_text: &str,
        settings: FeatureSettings,
        mut names: Option<&mut HashMap<u64, String>>,
    ) {
        self.title.clear();
        self.body.clear();
        tokenize(title_text, &mut self.title, names.as_deref_mut());
        tokenize(body_text, &mut self.body, names.as_deref_mut());
        self.raw.clear();
        for part in [&self.title, &self.body] {
            let mut previous: Option<u64> = None;
            for token in part.iter().filter(|t| !t.stop) {
                self.raw.push(token.stem);
                if settings.bigrams {
                    if let Some(p) = previous {
                        let hash = bigram(p, token.stem);
                        self.raw.push(hash);
                        if let Some(names) = names.as_deref_mut()
                            && !names.contains_key(&hash)
                        {
                            let name = format!("{} {}", names[&p], names[&token.stem]);
                            names.insert(hash, name);
                        }
                    }
                    previous = Some(token.stem);
                }
            }
        }
        if settings.title_features {
            for token in self.title.iter().filter(|t| !t.stop) {
                let hash = title(token.stem);
                self.raw.push(hash);
                if let Some(names) = names.as_deref_mut()
                    && !names.contains_key(&hash)
                {
                    let name = format!("title:{}", names[&token.stem]);
                    names.insert(hash, name);
                }
            }
        }
        self.count_raw();
    }

    /// Counts `self.raw` into `self.vector` as `(hash, 1 + ln tf)` in first-seen order, with an
    /// open-addressing table that is reused between documents (cheaper than sorting).
    fn count_raw(&mut self) {
        let needed = (self.raw.len() * 2).next_power_of_two().max(64);
        if self.slots.len() < needed {
            self.slots = vec![(0, 0); needed];
        }
        let mask = self.slots.len() - 1;
        self.used.clear();
        for &hash in &self.raw {
            // 0 marks an empty slot; a real hash of 0 (odds 2⁻⁶⁴) shares with 1.
            let key = hash.max(1);
            let mut i = (key as usize) & mask;
            loop {
                let slot = &mut self.slots[i];
                if slot.0 == key {
                    slot.1 += 1;
                    break;
                }
                if slot.0 == 0 {
                    *slot = (key, 1);
                    self.used.push(i as u32);
                    break;
                }
                i = (i + 1) & mask;
            }
        }
        self.vector.clear();
        for &i in &self.used {
            let slot = &mut self.slots[i as usize];
            // Sublinear tf: the tenth "tariff" says less than the first.
            let tf = if slot.1 == 1 {
                1.0
            } else {
                1.0 + (slot.1 as f32).ln()
            };
            self.vector.push((slot.0, tf));
            *slot = (0, 0);
        }
    }

    /// Multiplies each feature by `idf(hash)` and scales the vector to unit length.
    pub fn normalize(&mut self, idf: impl Fn(u64) -> f32) {
        let mut norm = 0.0f32;
        for (hash, w) in &mut self.vector {
            *w *= idf(*hash);
            norm += *w * *w;
        }
        if norm > 0.0 {
            let inv = 1.0 / norm.sqrt();
            for (_, w) in &mut self.vector {
                *w *= inv;
            }
        }
    }
}

/// A `Hasher` for keys that are already well-mixed 64-bit hashes.
#[derive(Default)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A `HashMap` keyed by feature hash.
pub type FeatureMap<V> = HashMap<u64, V, BuildHasherDefault<PreHashed>>;

/// Plain text from a fragment that may hold HTML: tags dropped (block tags become spaces),
/// `script`/`style` contents dropped, entities decoded, whitespace collapsed.
pub fn strip_html(input: &str) -> String {
    if !input.contains('<') && !input.contains('&') {
        return input.to_string();
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(end) = after.find('>') else {
            // A lone '<' is text, not a tag.
            out.push_str(after);
            rest = "";
            break;
        };
        let tag = after[1..end].trim_start_matches('/').to_ascii_lowercase();
        let name: String = tag
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        rest = &after[end + 1..];
        if (name == "script" || name == "style") && !after[1..].starts_with('/') {
            let close = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = match lower.find(&close) {
                Some(pos) => match rest[pos..].find('>') {
                    Some(gt) => &rest[pos + gt + 1..],
                    None => "",
                },
                None => "",
            };
        }
        out.push(' ');
    }
    out.push_str(rest);
    let decoded = html_escape::decode_html_entities(&out);
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stems(text: &str) -> Vec<String> {
        let mut names = HashMap::new();
        let mut out = Vec::new();
        tokenize(text, &mut out, Some(&mut names));
        out.iter().map(|t| names[&t.stem].clone()).collect()
    }

    #[test]
    fn tokens_are_lowercased_stemmed_and_possessives_kept_whole() {
        let cases: &[(&str, &[&str])] = &[
            ("China's Tariffs", &["china", "tariff"]),
            ("anti-dumping duties", &["anti", "dump", "duti"]),
            ("Section 232, 25% levies", &["section", "232", "25", "levi"]),
            ("$1,250,000 fine", &["1", "250", "000", "fine"]),
            ("code 1234567", &["code", "#"]),
            ("G7 ministers", &["g7", "minist"]),
        ];
        for (text, want) in cases {
            assert_eq!(stems(text), *want, "{text}");
        }
    }

    /// The token a word gets with no cache involved.
    fn uncached(word: &str) -> Token {
        stem_token(word)
    }

    #[test]
    fn words_whose_stem_would_be_a_trade_term_keep_a_stem_of_their_own() {
        let cases: &[(&str, &[&str])] = &[
            (
                "imports imported importers import",
                &["import", "import", "import", "import"],
            ),
            (
                "important importance importantly unimportant",
                &["important", "important", "important", "unimportant"],
            ),
            ("IMPORTANT Importance", &["important", "important"]),
            ("goods good", &["goods", "good"]),
            (
                "customs customers customer",
                &["custom", "customer", "customer"],
            ),
            (
                "origin original originally originals",
                &["origin", "original", "original", "original"],
            ),
            ("exporting exports", &["export", "export"]),
            // No pronoun rule and no dotted abbreviations: `us` and `U.S.` are as before.
            ("us US U.S.", &["us", "us", "u", "s"]),
        ];
        for (text, want) in cases {
            assert_eq!(stems(text), *want, "{text}");
        }
        // Every override's stem is a stem of its own: no Snowball stem of a word outside the
        // table (its own words included, stemmed plainly) is one of them.
        for (word, stem) in STEM_OVERRIDES {
            assert_ne!(stemmer().stem(word), *stem, "{word}");
        }
    }

    #[test]
    fn signature_terms_keep_the_plain_snowball_stem_of_overridden_words() {
        let mut out = Vec::new();
        tokenize("important goods customers", &mut out, None); // cached with scoring stems
        for word in ["important", "goods", "customers", "original", "tariffs"] {
            let plain = xxh3_64(stemmer().stem(word).as_bytes());
            assert_eq!(stem_hash_of_word(word), plain, "{word}");
        }
        assert_ne!(out[0].stem, stem_hash_of_word("important"));
    }

    #[test]
    fn the_stem_cache_changes_no_token_hit_miss_long_word_or_after_an_eviction() {
        let long = "Internationalization"; // 20 bytes: never cached
        assert!(long.len() > CACHED_WORD_MAX);
        let words = [
            "Tariffs",
            "tariffs",
            "the",
            "exporters",
            long,
            long,
            "Tariffs",
        ];
        let text = words.join(" ");
        let want: Vec<Token> = words.iter().map(|w| uncached(w)).collect();
        for round in 0..2 {
            let mut out = Vec::new();
            tokenize(&text, &mut out, None);
            assert_eq!(out, want, "round {round}");
        }
        // Three times as many words as the cache has ways: most of them, and the words
        // above, are pushed out of their sets.
        let filler: Vec<String> = (0..CACHE_SETS * 6).map(|i| format!("w{i}x")).collect();
        let mut out = Vec::new();
        tokenize(&filler.join(" "), &mut out, None);
        let cached = CACHE.with(|c| c.borrow().len);
        assert!(cached <= 2 * CACHE_SETS, "{cached}");
        assert_eq!(
            CACHE.with(|c| c.borrow().sets.len()),
            CACHE_SETS,
            "grows no further"
        );
        assert!(cached > CACHE_SETS, "{cached}: the ways are used");
        let want_filler: Vec<Token> = filler.iter().map(|w| uncached(w)).collect();
        assert_eq!(out, want_filler);
        out.clear();
        tokenize(&text, &mut out, None);
        assert_eq!(out, want, "after evictions");
    }

    #[test]
    fn a_word_stemmed_on_one_thread_comes_to_another_from_the_shared_stems() {
        // A made-up stem for a made-up word, planted in the shared stems: a thread that has
        // not met the word takes its token from there instead of stemming it.
        let word = "qzxvplanted";
        let key = xxh3_64(word.as_bytes());
        let planted = Token {
            stem: 42,
            stop: false,
        };
        for attempt in 0.. {
            // Put straight in: `offer` would not, were the table full (other tests fill it).
            SHARED
                .write()
                .unwrap()
                .words
                .insert(key, CachedWord::new(key, word, planted));
            let got = std::thread::spawn(move || {
                let mut out = Vec::new();
                tokenize(word, &mut out, None);
                out[0]
            })
            .join()
            .unwrap();
            if got == planted {
                break;
            }
            // Another test released the shared stems in between: plant it again.
            assert!(attempt < 10, "the shared stems were never asked");
        }
        // A word no thread has met is stemmed, and offered to the others (unless the table
        // is full, or another test released it meanwhile: then this one tries again).
        let fresh = "qzxvunplanted";
        for attempt in 0.. {
            let mut out = Vec::new();
            std::thread::spawn(move || tokenize(fresh, &mut out, None))
                .join()
                .unwrap();
            let shared = SHARED.read().unwrap();
            if shared.words.len() >= SHARED_WORDS_MAX {
                break;
            }
            if let Some(token) = shared.get(xxh3_64(fresh.as_bytes()), fresh) {
                assert_eq!(token, uncached(fresh));
                break;
            }
            assert!(attempt < 10, "the stemmed word was never offered");
        }
    }

    #[test]
    fn the_shared_stems_stay_within_their_bound() {
        let mut shared = SharedStems::default();
        let token = |stem| Token { stem, stop: false };
        shared.offer(1, "first", token(1));
        let capacity = shared.words.capacity();
        assert_eq!(
            capacity, SHARED_WORDS_MAX,
            "reserved at the first word: 1.3 MiB"
        );
        for k in 2..=SHARED_WORDS_MAX as u64 + 100 {
            shared.offer(k, &format!("w{k}"), token(k));
        }
        assert_eq!(shared.words.len(), SHARED_WORDS_MAX);
        assert_eq!(shared.words.capacity(), capacity, "never grown");
        assert_eq!(
            shared.get(1, "first"),
            Some(token(1)),
            "the first words stay"
        );
        assert_eq!(shared.get(1, "other"), None, "same key, other word");
        let late = SHARED_WORDS_MAX as u64 + 50;
        assert_eq!(shared.get(late, &format!("w{late}")), None, "taken no more");
    }

    #[test]
    fn a_set_keeps_its_more_recently_used_word() {
        let mut cache = StemCache::default();
        let token = |stem| Token { stem, stop: false };
        // Three words with keys in one set (the key picks the set, the word is compared).
        let (a, b, c) = (1u64, 1 + FIRST_SETS as u64, 1 + 2 * FIRST_SETS as u64);
        cache.put(a, "alpha", token(1));
        cache.put(b, "beta", token(2));
        assert_eq!(
            cache.get(a, "alpha"),
            Some(token(1)),
            "a hit moves alpha first"
        );
        cache.put(c, "gamma", token(3)); // pushes out beta, the less recently used
        assert_eq!(cache.get(b, "beta"), None);
        assert_eq!(cache.get(a, "alpha"), Some(token(1)));
        assert_eq!(cache.get(c, "gamma"), Some(token(3)));
        assert_eq!(cache.get(c, "gamme"), None, "same key, other word");
        assert_eq!(cache.len, 2, "ways in use: one set of two");
    }

    #[test]
    fn a_growing_cache_keeps_its_words_and_their_order() {
        let mut cache = StemCache::default();
        let token = |stem| Token { stem, stop: false };
        let n = FIRST_SETS as u64;
        // Two keys in one set before the cache doubles and after.
        let (a, b) = (1, 1 + 2 * n);
        cache.put(b, "beta", token(b));
        cache.put(a, "alpha", token(a)); // alpha is the more recently used
        // One word in each of other sets: the cache then holds half as many words as it has
        // sets.
        for k in 2..n / 2 {
            cache.put(k, &format!("w{k}"), token(k));
        }
        assert_eq!((cache.sets.len(), cache.len), (FIRST_SETS, FIRST_SETS / 2));
        cache.put(3 * n + 7, "next", token(0)); // doubles first
        assert_eq!(cache.sets.len(), 2 * FIRST_SETS);
        // Both words of alpha's set came along, alpha still first (read in place: `get`
        // would reorder them); every word counted once.
        let keys = |cache: &StemCache| cache.sets[1].0.map(|way| way.key);
        assert_eq!(keys(&cache), [a, b]);
        assert_eq!(cache.len, FIRST_SETS / 2 + 1);
        for k in 2..n / 2 {
            assert_eq!(cache.get(k, &format!("w{k}")), Some(token(k)), "{k}");
        }
        // A third word in alpha's and beta's set pushes out beta, still the less recent.
        cache.put(1 + 4 * n, "gamma", token(9));
        assert_eq!(keys(&cache), [1 + 4 * n, a]);
        assert_eq!(cache.len, FIRST_SETS / 2 + 1, "a way replaced, none added");
        assert_eq!(cache.get(b, "beta"), None);
        assert_eq!(cache.get(a, "alpha"), Some(token(a)));
        assert_eq!(cache.get(1 + 4 * n, "gamma"), Some(token(9)));
    }

    #[test]
    fn a_released_stem_cache_hands_back_its_memory_and_refills_with_the_same_tokens() {
        // Each test runs on a thread of its own, so the release of the thread's cache stays
        // with this test (the shared stems it also releases only ever spare a stemming).
        let filler: Vec<String> = (0..5_000).map(|i| format!("w{i}x")).collect();
        let text = filler.join(" ");
        let mut out = Vec::new();
        tokenize(&text, &mut out, None);
        let cached = stems_cached_on_this_thread();
        assert!((4_500..=5_000).contains(&cached), "{cached}");
        release_stem_cache();
        assert_eq!(CACHE.with(|c| c.borrow().sets.capacity()), 0);
        assert_eq!(stems_cached_on_this_thread(), 0);
        let mut again = Vec::new();
        tokenize(&text, &mut again, None);
        assert_eq!(again, out);
        assert_eq!(stems_cached_on_this_thread(), cached);
    }

    #[test]
    fn a_cache_set_is_one_64_byte_cache_line_as_the_memory_bound_assumes() {
        assert_eq!(std::mem::size_of::<CachedWord>(), 32);
        assert_eq!(std::mem::size_of::<CacheSet>(), 64);
        assert_eq!(std::mem::align_of::<CacheSet>(), 64);
    }

    #[test]
    fn training_gets_stem_texts_for_words_already_cached() {
        let mut out = Vec::new();
        tokenize("exporters retaliated", &mut out, None); // now cached, without names
        let mut names = HashMap::new();
        out.clear();
        tokenize("exporters retaliated", &mut out, Some(&mut names));
        let texts: Vec<&str> = out.iter().map(|t| names[&t.stem].as_str()).collect();
        assert_eq!(texts, ["export", "retali"]);
    }

    #[test]
    fn words_are_alphanumeric_runs_with_inner_apostrophes_dropped() {
        let cases: &[(&str, &[&str])] = &[
            ("China's tariffs", &["Chinas", "tariffs"]),
            ("China\u{2019}s curbs", &["Chinas", "curbs"]),
            ("'quoted' words'", &["quoted", "words"]),
            ("rock 'n' roll", &["rock", "n", "roll"]),
            ("l'Union européenne", &["lUnion", "européenne"]),
            ("Zölle—Exportkontrollen", &["Zölle", "Exportkontrollen"]),
            ("北京 限制 出口", &["北京", "限制", "出口"]),
            ("a’ ’b c’d’", &["a", "b", "cd"]),
            ("anti-dumping, 25%", &["anti", "dumping", "25"]),
            ("", &[]),
        ];
        for (text, want) in cases {
            let mut got = Vec::new();
            for_each_word(text, |w| got.push(w.to_string()));
            assert_eq!(got, *want, "{text:?}");
        }
    }

    #[test]
    fn feature_names_hash_like_the_text_that_produced_them() {
        let mut names = HashMap::new();
        let mut scratch = Scratch::default();
        scratch.build(
            "Tariffs rise",
            "export controls widen",
            FeatureSettings::default(),
            Some(&mut names),
        );
        scratch.normalize(|_| 1.0);
        for (hash, _) in &scratch.vector {
            assert_eq!(feature_hash(&names[hash]), *hash, "{}", names[hash]);
        }
        let all: Vec<&str> = scratch
            .vector
            .iter()
            .map(|(h, _)| names[h].as_str())
            .collect();
        for want in ["tariff", "export control", "title:tariff", "tariff rise"] {
            assert!(all.contains(&want), "{want} missing from {all:?}");
        }
    }

    #[test]
    fn vectors_are_unit_length_with_sublinear_counts() {
        let mut scratch = Scratch::default();
        let settings = FeatureSettings {
            bigrams: false,
            title_features: false,
            idf: false,
        };
        scratch.build("", "steel steel steel aluminium", settings, None);
        scratch.normalize(|_| 1.0);
        let norm: f32 = scratch.vector.iter().map(|(_, w)| w * w).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        let steel = scratch
            .vector
            .iter()
            .find(|(h, _)| *h == feature_hash("steel"))
            .unwrap();
        let alu = scratch
            .vector
            .iter()
            .find(|(h, _)| *h == feature_hash("aluminium"))
            .unwrap();
        assert!((steel.1 / alu.1 - (1.0 + 3f32.ln())).abs() < 1e-4);
    }

    #[test]
    fn html_is_reduced_to_text() {
        let cases = [
            (
                "<p>Steel &amp; aluminium</p><br/>tariffs",
                "Steel & aluminium tariffs",
            ),
            ("a <script>var x = '<b>';</script> b", "a b"),
            ("3 < 4 plain", "3 < 4 plain"),
            ("no markup", "no markup"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_html(input), want, "{input}");
        }
    }
}
