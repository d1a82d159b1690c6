//! Templated siblings: two texts that are one template filled in for other subjects.
//!
//! Official feeds publish notices that repeat one text with another country, company or
//! entity in it: an anti-dumping determination on silicon metal from Kazakhstan and the one
//! from Angola, an Entity List rule for other companies. Their shingles overlap by
//! 0.88–0.98, as much as an edited wire copy's, so the index takes one for a copy of the
//! other. The index keeps no words, so the writer asks [`templated_siblings`] with the two
//! texts before a near-copy from another feed joins a story (a copy from the story's own feed
//! meets the stricter same-item rule, `headline::one_item_of_a_feed`).
//!
//! What tells them apart is *where* they differ. An outlet's copy of a wire story differs by
//! trims, insertions, dropped sentences, synonyms and spelling ("pct" spelled out, "aluminium"
//! for "aluminum", "Sanchez" for "Sánchez"); a templated sibling differs by **names swapped
//! in place**: at a point where both texts run alike, one has a name the other never uses,
//! and the other has a name the first never uses ("… on silicon metal from *Kazakhstan*,
//! following …" against "… from *Angola*, following …").
//!
//! - A *name* is a capitalised word inside a sentence (not its first word, not after a
//!   sentence's full stop, though after "Mr." or "Co." it is; not a line's first word, so a
//!   hard-wrapped text shows fewer; not a month or weekday, no digits) in a text written in
//!   mixed case; in a text in capitals (or title case) only a country ([`COUNTRIES`]) can be
//!   told for one. A product that trade actions name ([`PRODUCTS`]: steel, copper, lumber,
//!   semiconductors…) is a name wherever it stands, in lower case too: a notice for another
//!   product is another action, and outlets do not write one for another.
//!   Words are split at white space, hyphens and slashes ("U.S.-China" is two words).
//! - Words are compared in a *normal form*: lower-case, without dots ("U.S." is "us"), a
//!   possessive "'s" or accents ("Sánchez" is "sanchez"), and a few names written two ways
//!   taken as one ([`ALIASES`]: "Kyiv" and "Kiev", "Burma" and "Myanmar", "UK" and
//!   "Britain"). A word also stands for its *stem*, the normal form without a demonym's or
//!   country's ending ([`ENDINGS`]) when four letters or more remain: "China" and "Chinese"
//!   (both "chin"), "Britain" and "British", "Germany" and "German" are one name, while
//!   "Niger" and "Nigeria", "Austria" and "Australia" are two.
//! - Swapped *in place*: a change of one to [`MAX_SWAP_WORDS`] words for one to as many (or
//!   a list of names for another), with unchanged words before and after it; words deleted
//!   and inserted around one unchanged word are one change ("the Slovak Republic" for "the
//!   Republic of Slovenia"). Names one letter apart ("Zelenskiy" and "Zelensky", from five
//!   letters; not two countries, "Ireland" and "Iceland") or an initialism and its words
//!   ("U.S." and "United States") are one name written two ways, no swap.
//! - A swapped name must be its item's *subject*: used at least twice in its item, headline
//!   included (a related-stories block inserted at the same place in two copies swaps other
//!   headlines' words, each used once), and never by the other item, in either form.
//! - A name may also be *added beside* a name both use, in a list: "yarn from *Brazil and
//!   India*" where the other says "from *Brazil*" (or "India, Brazil and Chile" for "Brazil
//!   and Chile"): an inserted run of at most [`MAX_SWAP_WORDS`] words, in place, of names and
//!   the words that join them ("and", "or", "the", "of"), joined to the name next to it by
//!   "and", "or" or a comma, holding a subject of its item that the other never uses. The
//!   notice widened to another country is another action. An outlet's insertion (a quoted
//!   official, a sentence of context) is no list with the names around it, and is seldom
//!   made at two places.
//! - Two swaps or additions in the texts, or one in the texts and a headline naming the
//!   subject (both headlines for a swap, "Silicon Metal From Kazakhstan" against "… From
//!   Angola"; the one with the added name for an addition, "Yarn From Brazil and India"),
//!   make two items siblings. A swapped dateline or byline is at the text's edge, with
//!   nothing alike before it, and is not counted.
//!
//! It runs on the writer thread for every near-copy from another feed, so it starts with a
//! quick test on the raw texts, both ways ([`quick_subjects`], [`uses`], [`listed`]): copies
//! of one story name the same people and places, and stop there; a trimmed copy's names are
//! all in its original, whose own names go on only when one of them stands in a list. Only
//! the first [`MAX_WORDS`] words of each text are read.
//!
//! One feed's own items are held to more ([`OwnItems`], for `headline::one_item_of_a_feed`):
//! no name replaced in place, even one used once, and a revision adds or cuts passages and
//! makes at most two small changes, no two alike.

use similar::{Algorithm, DiffOp, DiffTag, capture_diff_slices_deadline};
use std::ops::Range;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use unicode_normalization::char::{decompose_canonical, is_combining_mark};
use xxhash_rust::xxh3::xxh3_64;

use super::signature::WordHashes;

/// Words of each text read (its start: a notice names its subject throughout, so the start
/// shows the swaps; the word diff's cost grows with the words, and with this bound it stays
/// within a few milliseconds even for unrelated texts).
const MAX_WORDS: usize = 1_500;

/// A safety net only: the word diff gives up refining after this long (`similar` then returns
/// a valid, less minimal diff, which can only miss swaps). With [`MAX_WORDS`] it is not
/// reached.
const DIFF_DEADLINE: Duration = Duration::from_millis(50);

/// Longest run of words, on either side, read as one name swapped for another ("Kazakhstan"
/// for "the Republic of Korea"). A longer replaced run is a rewritten or inserted passage,
/// unless two thirds of its words on both sides are names (a list of other entities).
const MAX_SWAP_WORDS: usize = 4;

/// Swaps or additions of names that make two items siblings (a headline naming the swapped
/// or added subject counts as one).
const SIBLING_SWAPS: usize = 2;

/// Endings of countries' and peoples' names dropped for a word's stem, longest first: "China"
/// and "Chinese", "Britain" and "British", "Japan" and "Japanese", "Turkey" and "Turkish",
/// "Iraq" and "Iraqi" share a stem (or one's stem is the other's normal form, "German" and
/// "Germany"), and "Americans" is "American". Not "ia" (Niger is not Nigeria). Not every
/// pair meets: "Russia" ("russi") and "Russian" ("russ"), "Australia" and "Australian", are
/// two names here, though one letter apart, so never swapped for each other (see
/// [`one_name_written_two_ways`]).
const ENDINGS: &[&str] = &[
    "ese", "ian", "ish", "ain", "ean", "an", "ey", "a", "e", "i", "o", "y", "s",
];

/// Uses of a name in its item (headline and text) that make it the item's subject.
const SUBJECT_USES: usize = 2;

/// Letters a stem keeps at least (so "Mali" stays "mali", "Peru" "peru").
const MIN_STEM: usize = 4;

/// Names written two ways, in normal form: the first is read as the second (sorted by the
/// first; a word whose hash is one of theirs is looked up by binary search). Countries'
/// other names, and peoples' names that share no stem with their country's ("French" for
/// "France", "Dutch" for "the Netherlands"), or share one with another country's
/// ("Nigerian" is Nigeria's, not Niger's; "Dominican" is the Dominican Republic's, not
/// Dominica's); and goods' other words, read as the product of [`PRODUCTS`] they stand for
/// ("aluminium" for "aluminum", "chips" for "semiconductors", "maize" for "corn").
const ALIASES: &[(&str, &str)] = &[
    ("afghan", "afghanistan"),
    ("aluminium", "aluminum"),
    ("belgian", "belgium"),
    ("burma", "myanmar"),
    ("burmese", "myanmar"),
    ("chip", "semiconductor"),
    ("chips", "semiconductors"),
    ("czechia", "czech"),
    ("danish", "denmark"),
    ("dominican", "dominican republic"),
    ("drug", "pharmaceutical"),
    ("drugs", "pharmaceuticals"),
    ("dutch", "netherlands"),
    ("egyptian", "egypt"),
    ("emirati", "uae"),
    ("english", "england"),
    ("eswatini", "swaziland"),
    ("filipino", "philippines"),
    ("finnish", "finland"),
    ("french", "france"),
    ("greek", "greece"),
    ("holland", "netherlands"),
    ("irish", "ireland"),
    ("kazakh", "kazakhstan"),
    ("kyiv", "kiev"),
    ("lebanese", "lebanon"),
    ("maize", "corn"),
    ("medicine", "pharmaceutical"),
    ("medicines", "pharmaceuticals"),
    ("nigerian", "nigeria"),
    ("nigerien", "niger"),
    ("norwegian", "norway"),
    ("peruvian", "peru"),
    ("philippine", "philippines"),
    ("polish", "poland"),
    ("portuguese", "portugal"),
    ("scottish", "scotland"),
    ("spanish", "spain"),
    ("swedish", "sweden"),
    ("swiss", "switzerland"),
    ("thai", "thailand"),
    ("timber", "lumber"),
    ("turkiye", "turkey"),
    ("tyre", "tire"),
    ("tyres", "tires"),
    ("uk", "britain"),
    ("uzbek", "uzbekistan"),
    ("welsh", "wales"),
    ("whisky", "whiskey"),
];

/// Countries, in normal form and separated by spaces (of a name of several words, one word:
/// "korea", "africa", "zealand", so that North and South Korea, or the two Congos, are one
/// name here): the only names a text not in mixed case shows. A customs message or a wire's
/// all-capitals notice for another country swaps one of these. A word is a country's when
/// its normal form or stem is one of theirs, so most peoples' names are their countries'
/// ("CHINESE", "GERMAN"); the aliases apply ("UK" is "britain", "BURMA" is "myanmar"). Not
/// "us": in capitals it is also the pronoun.
const COUNTRIES: &str = "afghanistan africa albania algeria andorra angola arabia argentina \
     armenia australia austria azerbaijan bahamas bahrain bangladesh barbados belarus belgium \
     belize benin bhutan bolivia bosnia botswana brazil britain brunei bulgaria burkina burundi \
     cambodia cameroon canada chad chile china colombia comoros congo croatia cuba cyprus czech \
     denmark djibouti dominica ecuador egypt emirates england eritrea estonia ethiopia fiji \
     finland france gabon gambia georgia germany ghana greece grenada guatemala guinea guyana \
     haiti honduras hungary iceland india indonesia iran iraq ireland israel italy ivoire jamaica \
     japan jordan kazakhstan kenya kiribati kong korea kosovo kuwait kyrgyzstan lanka laos latvia \
     lebanon leone lesotho liberia libya liechtenstein lithuania luxembourg macau macedonia \
     madagascar malawi malaysia maldives mali malta mauritania mauritius mexico micronesia moldova \
     monaco mongolia montenegro morocco mozambique myanmar namibia nauru nepal netherlands \
     nicaragua niger nigeria norway oman pakistan palau panama paraguay peru philippines poland \
     portugal qatar rica romania russia rwanda salvador samoa scotland senegal serbia seychelles \
     singapore slovakia slovenia somalia spain sudan suriname swaziland sweden switzerland syria \
     taiwan tajikistan tanzania thailand timor tobago togo tonga tunisia turkey turkmenistan \
     tuvalu uae uganda ukraine uruguay uzbekistan vanuatu venezuela vietnam wales yemen zambia \
     zealand zimbabwe";

/// Whether a word (its key and stem key) is a country's ([`COUNTRIES`]): either is the key
/// or the stem of one of theirs, as [`Item::uses`] compares names.
fn is_country(key: u64, stem: u64) -> bool {
    static FORMS: OnceLock<std::collections::HashSet<u64>> = OnceLock::new();
    let forms = FORMS.get_or_init(|| {
        let mut normal = String::new();
        COUNTRIES
            .split_whitespace()
            .flat_map(|country| {
                let key = normal_form(country, &mut normal);
                [key, stem_key(&normal, key)]
            })
            .collect()
    });
    forms.contains(&key) || forms.contains(&stem)
}

/// Goods that trade actions name, in normal form: names wherever they stand, in lower case
/// too, so that a notice for another product is another action ("duties on steel wire rod"
/// against "on aluminum foil", a Section 232 proclamation on copper against the one on
/// lumber). Only words an outlet does not write for one another: its synonyms are aliases
/// ([`ALIASES`]: "aluminium", "timber", "chips", "drugs", "maize"), and broad or
/// overlapping words (cars and vehicles, oil and crude, gold, iron, tin) are left out.
const PRODUCTS: &str = "aluminum barley beef cobalt cocoa coffee copper corn cotton dairy \
     furniture graphite lithium lumber magnesium nickel pharmaceutical pharmaceuticals \
     polysilicon pork poultry rice rubber salmon semiconductor semiconductors shrimp solar \
     soybean soybeans steel sugar tire tires titanium tobacco tungsten uranium wheat whiskey \
     wine zinc";

/// Whether a word (its key and stem key) is a product's ([`PRODUCTS`]). Asked for every word
/// an item's reading sees: one probe of a small table of hashes each. (With a `HashSet`,
/// which hashed every key again, a cold 150-feed farm pass took 2-3% longer than without
/// products; with the table it takes the same, 16 alternated passes each.)
fn is_product(key: u64, stem: u64) -> bool {
    static FORMS: OnceLock<WordHashes> = OnceLock::new();
    let forms = FORMS.get_or_init(|| {
        // A product's normal form is the word as listed (lower-case ASCII): its key is the
        // hash of that word, its stem key the hash of its stem.
        let products: Vec<&str> = PRODUCTS.split_whitespace().collect();
        let stems: Vec<&str> = products.iter().map(|p| stem_of(p)).collect();
        WordHashes::of(&[&products, &stems])
    });
    forms.contains(key) || forms.contains(stem)
}

/// Whether a word as written may be a product or a product's alias: a quick test on its
/// letters lower-cased, for the words the quick test would otherwise pass over (those not
/// capitalised inside a sentence). Never false for a product or an alias as listed or with a
/// plural's "s" ("wines", "whiskeys"), in any case; other forms [`is_product`] takes by their
/// stem ("steeled") are passed over, as are possessives and dotted forms. (No listed product
/// takes "es" in the plural, and a stem never drops it after a vowel: "tobaccoes" is no
/// product to the exact reading either.)
fn may_be_product(core: &str) -> bool {
    const LONGEST: usize = 16;
    /// The products and their aliases as written, and for each first letter the lengths they
    /// come in (bit n: n letters), which spares most words the hash.
    struct Written {
        hashes: WordHashes,
        lengths: [u32; 26],
    }
    static WRITTEN: OnceLock<Written> = OnceLock::new();
    let written = WRITTEN.get_or_init(|| {
        let products: Vec<&str> = PRODUCTS.split_whitespace().collect();
        let aliases: Vec<&str> = ALIASES
            .iter()
            .filter(|(_, canonical)| products.contains(canonical))
            .map(|(alias, _)| *alias)
            .collect();
        let mut lengths = [0u32; 26];
        for word in products.iter().chain(&aliases) {
            assert!(word.len() <= LONGEST && word.bytes().all(|b| b.is_ascii_lowercase()));
            lengths[usize::from(word.as_bytes()[0] - b'a')] |= 1 << word.len();
        }
        Written {
            hashes: WordHashes::of(&[&products, &aliases]),
            lengths,
        }
    });
    let bytes = core.as_bytes();
    let Some(first) = bytes.first().map(u8::to_ascii_lowercase) else {
        return false;
    };
    if !first.is_ascii_lowercase() {
        return false;
    }
    let lengths = written.lengths[usize::from(first - b'a')];
    // The word, and without a plural's "s": only a word ending in "s" tries two lengths, so
    // the filter stays one bit test for most words.
    let plural = bytes.len() > 1 && bytes[bytes.len() - 1].eq_ignore_ascii_case(&b's');
    let mut lengths_listed = [Some(bytes.len()), plural.then(|| bytes.len() - 1)]
        .into_iter()
        .flatten()
        .filter(|&len| len <= LONGEST && lengths & (1 << len) != 0)
        .peekable();
    if lengths_listed.peek().is_none() || !bytes.is_ascii() {
        return false;
    }
    let mut lower = [0u8; LONGEST];
    for (to, from) in lower.iter_mut().zip(bytes) {
        *to = from.to_ascii_lowercase();
    }
    lengths_listed.any(|len| written.hashes.contains(xxh3_64(&lower[..len])))
}

/// Short words that end in a full stop without ending a sentence: the next word may be a
/// name ("Mr. Sánchez", "Co. Hikvision").
const ABBREVIATIONS: &[&str] = &[
    "co", "corp", "dr", "gen", "gov", "inc", "jr", "ltd", "mr", "mrs", "ms", "no", "prof", "rep",
    "sen", "sr", "st",
];

/// One word of a text as the comparison reads it.
#[derive(Debug, Clone, Copy)]
struct Word {
    /// Hash of its normal form.
    key: u64,
    /// Hash of its stem (its key when no ending is dropped).
    stem: u64,
    /// A capitalised word inside a sentence, in a mixed-case text.
    name: bool,
    /// Where the word (trimmed of punctuation) starts in its text, and its length, in bytes:
    /// read again only for a swap's names (spelling variants, initialisms).
    at: u32,
    len: u32,
}

/// The first [`MAX_WORDS`] white-space separated words of `text`: what is read of a text,
/// cut once so that both ways of reading it ([`walk`] and the quick test) see the same
/// words.
fn head(text: &str) -> &str {
    // A word takes a character and a space at least.
    if text.len() < 2 * MAX_WORDS {
        return text;
    }
    text.split_whitespace().nth(MAX_WORDS).map_or(text, |next| {
        &text[..next.as_ptr() as usize - text.as_ptr() as usize]
    })
}

/// Whether `c` splits a white-space separated word into words.
fn splits_words(c: char) -> bool {
    matches!(c, '-' | '–' | '—' | '/')
}

/// Walks a text's words: calls `visit` with each (trimmed of punctuation)
/// and whether it stands capitalised inside a sentence. Returns whether the text is in mixed
/// case: a text in capitals (a wire's all-caps headline or body) shows no names.
fn walk(text: &str, mut visit: impl FnMut(&str, bool)) -> bool {
    let (mut capitalised, mut lower) = (0usize, 0usize);
    let mut word = |core: &str, sentence_start: &mut bool| {
        let Some(first) = core.chars().next() else {
            return;
        };
        let first_upper = first.is_uppercase();
        if first_upper {
            capitalised += 1;
        } else if first.is_lowercase() {
            lower += 1;
        }
        visit(core, first_upper && !*sentence_start);
        *sentence_start = false;
    };
    let ends_sentence = |raw: &str, last: &str| {
        raw.trim_end_matches(['"', '\'', ')', ']', '”', '’'])
            .ends_with(['.', '!', '?', ':', ';'])
            && !is_abbreviation(last)
    };
    for line in text.lines() {
        let mut sentence_start = true;
        // Most lines are ASCII: split and trimmed on bytes, which reads the same words as
        // the general path below (ASCII's white space is Unicode's but for the vertical tab,
        // its letters and digits are its alphanumerics, and no dash but '-' is ASCII).
        if line.is_ascii() && !line.contains('\u{b}') {
            for raw in line.split_ascii_whitespace() {
                let mut last = "";
                for part in raw.split(['-', '/']) {
                    let core = ascii_core(part);
                    if !core.is_empty() {
                        word(core, &mut sentence_start);
                        last = core;
                    }
                }
                sentence_start |= ends_sentence(raw, last);
            }
            continue;
        }
        for raw in line.split_whitespace() {
            let mut last = "";
            for part in raw.split(splits_words) {
                let core = part.trim_matches(|c: char| !c.is_alphanumeric());
                if !core.is_empty() {
                    word(core, &mut sentence_start);
                    last = core;
                }
            }
            sentence_start |= ends_sentence(raw, last);
        }
    }
    capitalised <= lower
}

/// An ASCII word part trimmed of what is not a letter or digit at either end.
fn ascii_core(part: &str) -> &str {
    let bytes = part.as_bytes();
    let Some(start) = bytes.iter().position(u8::is_ascii_alphanumeric) else {
        return "";
    };
    let end = bytes
        .iter()
        .rposition(u8::is_ascii_alphanumeric)
        .map_or(start, |e| e + 1);
    &part[start..end]
}

/// A word that ends in a full stop without ending its sentence: a title or company form
/// ([`ABBREVIATIONS`]) or a dotted initialism ("U.S.", "N.V.").
fn is_abbreviation(core: &str) -> bool {
    core.contains('.')
        || ABBREVIATIONS
            .iter()
            .any(|a| a.len() == core.len() && a.eq_ignore_ascii_case(core))
}

/// Writes `core`'s normal form into `out` (see the module documentation) and returns its
/// hash (`xxh3_64`), the word's key.
fn normal_form(core: &str, out: &mut String) -> u64 {
    normal_form_aliased(core, out).0
}

/// [`normal_form`], and whether it is an alias's canonical name ("britain" for "UK").
fn normal_form_aliased(core: &str, out: &mut String) -> (u64, bool) {
    out.clear();
    let core = core
        .strip_suffix("'s")
        .or_else(|| core.strip_suffix("’s"))
        .unwrap_or(core);
    for c in core.chars().filter(|&c| c != '.') {
        push_plain_lower(c, out);
    }
    let key = xxh3_64(out.as_bytes());
    // One probe of a table of the aliases' hashes spares most words the search by string.
    static ALIAS_KEYS: OnceLock<WordHashes> = OnceLock::new();
    let aliases = ALIAS_KEYS.get_or_init(|| {
        WordHashes::of(&[&ALIASES.iter().map(|(alias, _)| *alias).collect::<Vec<_>>()])
    });
    if aliases.contains(key)
        && let Ok(i) = ALIASES.binary_search_by(|(alias, _)| (*alias).cmp(out.as_str()))
    {
        out.clear();
        out.push_str(ALIASES[i].1);
        return (xxh3_64(out.as_bytes()), true);
    }
    (key, false)
}

/// Pushes `c` lower-cased and without accents (its canonical decomposition without combining
/// marks).
fn push_plain_lower(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
    } else {
        decompose_canonical(c, |d| {
            if !is_combining_mark(d) {
                out.extend(d.to_lowercase());
            }
        });
    }
}

/// The stem of a normal form: without the first of [`ENDINGS`] it ends in, when at least
/// [`MIN_STEM`] characters remain; else the normal form itself.
fn stem_of(normal: &str) -> &str {
    // Most words end in no ending's letter: one byte compared (this runs for every word).
    if !matches!(
        normal.as_bytes().last(),
        Some(b'a' | b'e' | b'h' | b'i' | b'n' | b'o' | b's' | b'y')
    ) {
        return normal;
    }
    let bytes = normal.as_bytes();
    ENDINGS
        .iter()
        .filter_map(|ending| {
            // Compared byte by byte: the endings are a few ASCII letters, and `strip_suffix`
            // called `memcmp` for each (a cut before ASCII bytes is a character boundary).
            let ending = ending.as_bytes();
            let cut = bytes.len().checked_sub(ending.len())?;
            bytes[cut..]
                .iter()
                .zip(ending)
                .all(|(a, b)| a == b)
                .then(|| &normal[..cut])
        })
        .find(|stem| {
            stem.len() >= MIN_STEM && (stem.is_ascii() || stem.chars().count() >= MIN_STEM)
        })
        .unwrap_or(normal)
}

/// Whether a word capitalised inside a sentence (its normal form and its key) is a name: not
/// a figure, month or weekday.
fn is_name(normal: &str, key: u64) -> bool {
    // Months and weekdays are capitalised, but an update's "on Tuesday" for "on Monday" is
    // no other subject.
    static CALENDAR_KEYS: OnceLock<WordHashes> = OnceLock::new();
    !normal.bytes().any(|b| b.is_ascii_digit())
        && !CALENDAR_KEYS
            .get_or_init(|| WordHashes::of(&[super::headline::CALENDAR]))
            .contains(key)
}

/// The hash of a normal form's stem, given the form's own (most words are their stem).
fn stem_key(normal: &str, key: u64) -> u64 {
    let stem = stem_of(normal);
    if stem.len() == normal.len() {
        key
    } else {
        xxh3_64(stem.as_bytes())
    }
}

/// A title or text read into words.
fn words_of(text: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut normal = String::new();
    let mixed_case = walk(text, |core, capital_inside| {
        let key = normal_form(core, &mut normal);
        let at = core.as_ptr() as usize - text.as_ptr() as usize;
        let stem = stem_key(&normal, key);
        words.push(Word {
            key,
            stem,
            name: (capital_inside && is_name(&normal, key)) || is_product(key, stem),
            at: u32::try_from(at).unwrap_or(u32::MAX),
            len: u32::try_from(core.len()).unwrap_or(0),
        });
    });
    if !mixed_case {
        // In capitals (or title case), only a country (or a product) can be told for a name.
        for w in &mut words {
            w.name = (w.name && is_country(w.key, w.stem)) || is_product(w.key, w.stem);
        }
    }
    words
}

/// One item (headline and text) as the comparison reads it.
struct Item<'a> {
    /// Its text as read (for a swap's names).
    source: &'a str,
    text: Vec<Word>,
    headline: Vec<Word>,
    /// Every key and stem of the item's words, headline and text, sorted.
    forms: Vec<u64>,
    /// Every stem, sorted (repeated as often as used).
    stems: Vec<u64>,
}

impl<'a> Item<'a> {
    fn read(title: &str, source: &'a str) -> Item<'a> {
        let (text, headline) = (words_of(source), words_of(title));
        let words = || text.iter().chain(&headline);
        let mut forms: Vec<u64> = words().flat_map(|w| [w.key, w.stem]).collect();
        forms.sort_unstable();
        forms.dedup();
        let mut stems: Vec<u64> = words().map(|w| w.stem).collect();
        stems.sort_unstable();
        Item {
            source,
            text,
            headline,
            forms,
            stems,
        }
    }

    /// A word of the text as written (trimmed of punctuation).
    fn written(&self, w: &Word) -> &'a str {
        let at = w.at as usize;
        self.source.get(at..at + w.len as usize).unwrap_or_default()
    }

    /// Whether the item uses `w` in either form.
    fn uses(&self, w: &Word) -> bool {
        self.forms.binary_search(&w.key).is_ok() || self.forms.binary_search(&w.stem).is_ok()
    }

    /// Whether `w` names this item's subject and not the other's: a name (or, in a headline,
    /// a word this item's text uses as a name) whose stem is used at least `min_uses` times
    /// here ([`SUBJECT_USES`] between feeds) and never there.
    fn subject_not_of(&self, w: &Word, other: &Item, min_uses: usize) -> bool {
        let stem_uses = self.stems.partition_point(|&s| s <= w.stem)
            - self.stems.partition_point(|&s| s < w.stem);
        stem_uses >= min_uses && !other.uses(w)
    }

    /// Whether a headline word is used as a name in this item's text.
    fn named_in_text(&self, w: &Word) -> bool {
        self.text.iter().any(|t| t.name && t.stem == w.stem)
    }
}

/// A name [`quick_subjects`] found.
struct QuickSubject {
    /// Its normal form.
    name: String,
    /// Whether each use in the text shows its normal form's stem, as [`occurrences`] looks
    /// for it: not where it is written as an alias ("UK" for "britain") or with dots
    /// ("U.A.E." for "uae").
    findable: bool,
}

/// The names of an item that may be its subject, found quickly: its names' normal forms
/// (capitalised inside a sentence, or products, [`PRODUCTS`], anywhere) whose stem the item
/// uses at least [`SUBJECT_USES`] times as a name in its text or as a word of its headline. A subset of the subjects [`Item::read`] finds (it also counts a
/// name's uses at a sentence's start or in lower case): the quick test may only miss a
/// sibling, never refuse a copy.
fn quick_subjects(title: &str, text: &str) -> Vec<QuickSubject> {
    // (stem, name, uses), in order of first use.
    let mut names: Vec<(u64, QuickSubject, usize)> = Vec::new();
    let mut normal = String::new();
    let mixed_case = walk(text, |core, capital_inside| {
        // A product is a name wherever it stands (see `words_of`).
        if !capital_inside && !may_be_product(core) {
            return;
        }
        let (key, aliased) = normal_form_aliased(core, &mut normal);
        if !is_name(&normal, key) {
            return;
        }
        let stem = stem_key(&normal, key);
        let findable = !aliased && !core.contains('.');
        match names.iter_mut().find(|(s, ..)| *s == stem) {
            Some((_, subject, uses)) => {
                *uses += 1;
                subject.findable &= findable;
            }
            None => {
                let name = normal.clone();
                names.push((stem, QuickSubject { name, findable }, 1));
            }
        }
    });
    if !mixed_case {
        // In capitals (or title case), only countries and products are names, as
        // `words_of` reads them.
        names.retain(|(stem, subject, _)| {
            let key = xxh3_64(subject.name.as_bytes());
            is_country(key, *stem) || is_product(key, *stem)
        });
    }
    if names.is_empty() {
        return Vec::new();
    }
    walk(title, |core, _| {
        let key = normal_form(core, &mut normal);
        let stem = stem_key(&normal, key);
        if let Some((.., uses)) = names.iter_mut().find(|(s, ..)| *s == stem) {
            *uses += 1;
        }
    });
    names
        .into_iter()
        .filter(|(.., uses)| *uses >= SUBJECT_USES)
        .map(|(_, subject, _)| subject)
        .collect()
}

/// Where a lower-cased item ([`lowered`]) uses the name `normal` (a normal form) in either
/// form: the byte ranges of the words (as split at white space, hyphens and slashes) that
/// start with its stem and are the name, compared as [`Item::uses`] compares them.
fn occurrences<'t>(
    item_lower: &'t str,
    normal: &'t str,
) -> impl Iterator<Item = Range<usize>> + 't {
    let stem = stem_of(normal);
    let mut word = String::new();
    memchr::memmem::find_iter(item_lower.as_bytes(), stem.as_bytes()).filter_map(move |at| {
        // At a word's start, and that word is the name in one of its forms.
        let starts = item_lower[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        if !starts {
            return None;
        }
        let rest = &item_lower[at..];
        let end = rest
            .find(|c: char| c.is_whitespace() || splits_words(c))
            .unwrap_or(rest.len());
        normal_form(
            rest[..end].trim_matches(|c: char| !c.is_alphanumeric()),
            &mut word,
        );
        let word_stem = stem_of(&word);
        (word == normal || word == stem || word_stem == normal || word_stem == stem)
            .then_some(at..at + end)
    })
}

/// Whether a lower-cased item ([`lowered`]) uses the name `normal` in either form.
fn uses(item_lower: &str, normal: &str) -> bool {
    occurrences(item_lower, normal).next().is_some()
}

/// Whether a lower-cased item may use `subject` in a list, as far as the raw text shows:
/// "and", "or" or a comma within [`MAX_SWAP_WORDS`] words before or after it ("Brazil and
/// India", "India, Brazil", "Brazil and the Philippines", "Brazil and/or India"). The quick
/// test of [`added_beside`], whose inserted run and joint lie within that reach: it may let
/// more through, never less (a name the raw text does not show as its normal form is let
/// through).
fn listed(item_lower: &str, subject: &QuickSubject) -> bool {
    if !subject.findable {
        return true;
    }
    let joint = |w: &str| {
        w.trim_end_matches(['"', '\'', ')', ']', '”', '’'])
            .ends_with(',')
            || w.split(splits_words).any(|part| {
                matches!(
                    part.trim_matches(|c: char| !c.is_alphanumeric()),
                    "and" | "or"
                )
            })
    };
    occurrences(item_lower, &subject.name).any(|word| {
        item_lower[..word.start]
            .split_whitespace()
            .rev()
            .take(MAX_SWAP_WORDS)
            .any(joint)
            || item_lower[word.start..]
                .split_whitespace()
                .take(MAX_SWAP_WORDS + 1)
                .any(joint)
    })
}

/// An item's headline and text, lower-cased and without accents, for [`uses`].
fn lowered(title: &str, text: &str) -> String {
    let mut item = String::with_capacity(title.len() + 1 + text.len());
    for part in [title, "\n", text] {
        // Runs of ASCII copied whole (most of a text), other characters one by one.
        let mut rest = part;
        while !rest.is_empty() {
            let ascii = rest
                .bytes()
                .position(|b| !b.is_ascii())
                .unwrap_or(rest.len());
            let from = item.len();
            item.push_str(&rest[..ascii]);
            item[from..].make_ascii_lowercase();
            rest = &rest[ascii..];
            if let Some(c) = rest.chars().next() {
                push_plain_lower(c, &mut item);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    item
}

/// Whether two items are one template filled in for other subjects (see the module
/// documentation): at least [`SIBLING_SWAPS`] names swapped in place or added beside a shared
/// one, at least one of them in the texts. Symmetric in its two items.
pub fn templated_siblings(a_title: &str, a_text: &str, b_title: &str, b_text: &str) -> bool {
    names_swapped_or_added(a_title, a_text, b_title, b_text)
}

/// How one feed's two items differ in their texts (`headline::one_item_of_a_feed`), from
/// one reading of each and one word diff.
pub(super) struct OwnItems {
    /// A name is replaced in place by another name, each used anywhere in its own item and
    /// never in the other (a spelling variant or an initialism is the same name): the feed's
    /// notice for another country, company or entity, not its reissue or revision, whatever
    /// the headlines.
    pub names_replaced: bool,
    /// One text is the other with passages added or removed and at most
    /// [`REVISION_CHANGES`] other changes of at most [`REVISION_REPLACED_WORDS`] words each, no
    /// two alike: how a wire's update changes its story ("UPDATE 2-" adds paragraphs inside
    /// the text, corrects a word or a figure), where the feed's next templated notice
    /// replaces its product, country or entities, each as often as the notice names them.
    pub few_changes: bool,
}

impl OwnItems {
    pub(super) fn compare(a_title: &str, a_text: &str, b_title: &str, b_text: &str) -> OwnItems {
        let (a, b) = (
            Item::read(a_title, head(a_text)),
            Item::read(b_title, head(b_text)),
        );
        let changes = changes(&diff(&a.text, &b.text));
        OwnItems {
            names_replaced: swaps(&a, &b, &changes, 1) > 0,
            few_changes: few_changes(&a.text, &b.text, &changes),
        }
    }
}

/// [`OwnItems::few_changes`].
fn few_changes(a: &[Word], b: &[Word], changes: &[Change]) -> bool {
    let mut replaced: Vec<(Vec<u64>, Vec<u64>)> = Vec::new();
    for change in changes {
        if change.old.is_empty() || change.new.is_empty() {
            continue;
        }
        if change.old.len().max(change.new.len()) > REVISION_REPLACED_WORDS
            || replaced.len() == REVISION_CHANGES
        {
            return false;
        }
        let keys = |words: &[Word]| words.iter().map(|w| w.key).collect::<Vec<u64>>();
        let pair = (keys(&a[change.old.clone()]), keys(&b[change.new.clone()]));
        if replaced.contains(&pair) {
            return false;
        }
        replaced.push(pair);
    }
    true
}

/// Words one change of a revision may replace (a correction of a word or a figure).
const REVISION_REPLACED_WORDS: usize = 2;

/// Changes other than added or cut passages a revision may make.
const REVISION_CHANGES: usize = 2;

/// The word diff of two texts.
fn diff(a: &[Word], b: &[Word]) -> Vec<DiffOp> {
    let (a_keys, b_keys) = (
        a.iter().map(|w| w.key).collect::<Vec<_>>(),
        b.iter().map(|w| w.key).collect::<Vec<_>>(),
    );
    capture_diff_slices_deadline(
        Algorithm::Myers,
        &a_keys,
        &b_keys,
        Some(Instant::now() + DIFF_DEADLINE),
    )
}

/// Whether a change's names on the two sides are one name written two ways: one a spelling
/// variant of the other ("Zelenskiy" and "Zelensky": the same first letter and one letter
/// apart, in names of five letters or more; "Slovakia" and "Slovenia" are two apart), or an
/// initialism of the
/// other's words ("U.S." and "United States", "EU" and "European Union").
fn one_name_written_two_ways(a: &Item, old: &[Word], b: &Item, new: &[Word]) -> bool {
    let names = |item: &Item, words: &[Word]| -> Vec<String> {
        words
            .iter()
            .filter(|w| w.name)
            .map(|w| {
                let mut normal = String::new();
                normal_form(item.written(w), &mut normal);
                normal
            })
            .collect()
    };
    let (old_names, new_names) = (names(a, old), names(b, new));
    let variant = old_names
        .iter()
        .any(|o| new_names.iter().any(|n| spelling_variant(o, n)));
    let initials = |item: &Item, words: &[Word]| -> String {
        words
            .iter()
            .map(|w| item.written(w))
            .filter(|w| w.starts_with(char::is_uppercase))
            .filter_map(|w| w.chars().next())
            .collect()
    };
    let initialism = |item: &Item, words: &[Word], other: &str| {
        let [word] = words else { return false };
        let letters: String = item.written(word).chars().filter(|&c| c != '.').collect();
        letters.chars().count() >= 2 && letters.chars().all(char::is_uppercase) && letters == other
    };
    variant || initialism(a, old, &initials(b, new)) || initialism(b, new, &initials(a, old))
}

/// Whether two names' normal forms are spellings of one name (see
/// [`one_name_written_two_ways`]). Two countries never are: "Ireland" and "Iceland" are
/// one letter apart.
fn spelling_variant(a: &str, b: &str) -> bool {
    let (a_chars, b_chars): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    a_chars.len().min(b_chars.len()) >= 5
        && a_chars[0] == b_chars[0]
        && a_chars.len().abs_diff(b_chars.len()) <= 1
        // Not 0: the word a change keeps between its deletion and insertion.
        && edit_distance(&a_chars, &b_chars) == 1
        && !(country(a) && country(b))
}

/// Whether a normal form is a country's ([`is_country`]).
fn country(normal: &str) -> bool {
    let key = xxh3_64(normal.as_bytes());
    is_country(key, stem_key(normal, key))
}

/// Levenshtein distance of two short words.
fn edit_distance(a: &[char], b: &[char]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Names swapped in place, or added beside a name both items use (see the module
/// documentation).
fn names_swapped_or_added(a_title: &str, a_text: &str, b_title: &str, b_text: &str) -> bool {
    let (a_text, b_text) = (head(a_text), head(b_text));
    // Quick, on the raw texts: copies of one story name the same people and places (a
    // trimmed copy's names are all in its longer original), and stop here.
    let b_subjects = quick_subjects(b_title, b_text);
    let a_subjects = quick_subjects(a_title, a_text);
    if a_subjects.is_empty() && b_subjects.is_empty() {
        return false;
    }
    let (a_lower, b_lower) = (lowered(a_title, a_text), lowered(b_title, b_text));
    // The subjects the other item never uses.
    fn own<'s>(subjects: &'s [QuickSubject], other_lower: &str) -> Vec<&'s QuickSubject> {
        subjects
            .iter()
            .filter(|s| !uses(other_lower, &s.name))
            .collect()
    }
    let (a_own, b_own) = (own(&a_subjects, &b_lower), own(&b_subjects, &a_lower));
    // A swap needs a subject of its own on each side; an addition, one listed with another
    // name on its side.
    let listed_own = |own: &[&QuickSubject], lower: &str| own.iter().any(|s| listed(lower, s));
    if (a_own.is_empty() || b_own.is_empty())
        && !listed_own(&a_own, &a_lower)
        && !listed_own(&b_own, &b_lower)
    {
        return false;
    }
    let (a, b) = (Item::read(a_title, a_text), Item::read(b_title, b_text));
    // Exactly now, still before the diff: the subjects the other item never uses.
    let own_subject = |x: &Item, y: &Item| {
        x.text
            .iter()
            .any(|w| w.name && x.subject_not_of(w, y, SUBJECT_USES))
    };
    let (a_own, b_own) = (own_subject(&a, &b), own_subject(&b, &a));
    if !a_own && !b_own {
        return false;
    }
    // A swap needs a subject of its own on each side; an addition, a list in its text that
    // holds one. Without either, no word diff can show one (on the feed farm, half the
    // near-copies that get this far stop here).
    let (a_adds, b_adds) = (
        a_own && may_add_beside(&a, &b),
        b_own && may_add_beside(&b, &a),
    );
    let may_swap = a_own && b_own;
    if !(may_swap || a_adds || b_adds) {
        return false;
    }
    let changes = changes(&diff(&a.text, &b.text));
    let swapped = if may_swap {
        swaps(&a, &b, &changes, SUBJECT_USES)
    } else {
        0
    };
    let added_to_a = if a_adds {
        added_beside(&a, &b, &changes, Side::Old)
    } else {
        (0, Vec::new())
    };
    let added_to_b = if b_adds {
        added_beside(&b, &a, &changes, Side::New)
    } else {
        (0, Vec::new())
    };
    let in_text = swapped + added_to_a.0 + added_to_b.0;
    if in_text == 0 {
        return false;
    }
    if in_text >= SIBLING_SWAPS {
        return true;
    }
    // Headlines are rewritten by every outlet, so they are not compared word by word: for a
    // swap each headline must name a subject the other item never uses (a headline is in
    // title case or capitals: its words are names when its own text uses them as names);
    // for an addition, the headline of the item that adds it must name the added subject.
    let names_a_subject = |x: &Item, y: &Item, among: Option<&[u64]>| {
        x.headline.iter().any(|w| {
            among.is_none_or(|stems| stems.contains(&w.stem))
                && x.named_in_text(w)
                && x.subject_not_of(w, y, SUBJECT_USES)
        })
    };
    let in_headlines = if swapped > 0 {
        names_a_subject(&a, &b, None) && names_a_subject(&b, &a, None)
    } else if added_to_a.0 > 0 {
        names_a_subject(&a, &b, Some(&added_to_a.1))
    } else {
        names_a_subject(&b, &a, Some(&added_to_b.1))
    };
    in_text + usize::from(in_headlines) >= SIBLING_SWAPS
}

/// Which side of the word diff an item is: the first text (`old`) or the second (`new`).
#[derive(Clone, Copy)]
enum Side {
    Old,
    New,
}

/// The names `x` adds in place beside a name of a list: inserted runs of at most
/// [`MAX_SWAP_WORDS`] words (nothing in `y` where they stand, unchanged words before and
/// after) of names and the words that join them ("and", "or", "the", "of"), each holding a
/// name that is `x`'s subject and never used by `y` ([`Item::subject_not_of`]), and joined
/// to a name next to it by "and", "or" or a comma ("from Brazil *and India*", "*India,*
/// Brazil and Chile", "Brazil, *the Philippines* and Chile"): the notice widened to another
/// country or entity. An outlet's insertion (a quoted official, "Ross, a Trump adviser,", a
/// sentence of context) is no such list, and an added list is rarely made twice.
///
/// Returns the number of such runs and the stems of the subjects they add (for the headline
/// test).
fn added_beside(x: &Item, y: &Item, changes: &[Change], side: Side) -> (usize, Vec<u64>) {
    let (mut runs, mut added) = (0, Vec::new());
    for change in changes {
        let (mine, theirs) = match side {
            Side::Old => (&change.old, &change.new),
            Side::New => (&change.new, &change.old),
        };
        if !theirs.is_empty() || change.before == 0 || change.after == 0 {
            continue;
        }
        let subjects = listed_subjects(x, y, mine.clone());
        if !subjects.is_empty() {
            runs += 1;
            added.extend(subjects);
        }
    }
    (runs, added)
}

/// Whether some word diff could show `x` adding names beside a name of a list
/// ([`added_beside`]): whether any run of its text, with a word before and after it, is
/// such a list ([`listed_subjects`]). The diff only tells which runs are inserted, so when
/// none qualifies the diff is not needed to know that `x` adds nothing.
fn may_add_beside(x: &Item, y: &Item) -> bool {
    let last = x.text.len().saturating_sub(1);
    (1..last).any(|at| {
        let w = &x.text[at];
        w.name
            && x.subject_not_of(w, y, SUBJECT_USES)
            && (at.saturating_sub(MAX_SWAP_WORDS - 1).max(1)..=at).any(|start| {
                (at + 1..=(start + MAX_SWAP_WORDS).min(last))
                    .any(|end| !listed_subjects(x, y, start..end).is_empty())
            })
    })
}

/// The stems of `x`'s subjects that `y` never uses ([`Item::subject_not_of`]) in the run
/// `run_at` of its text, if the run is a list's addition as [`added_beside`] reads one: at most
/// [`MAX_SWAP_WORDS`] words, each a name or a joining word ("and", "or", "the", "of"), joined
/// to a name next to it by "and", "or" or a comma. Empty otherwise.
fn listed_subjects(x: &Item, y: &Item, run_at: Range<usize>) -> Vec<u64> {
    let is = |w: &Word, words: &[&str]| {
        let written = x.written(w);
        words.iter().any(|one| written.eq_ignore_ascii_case(one))
    };
    let joins = |w: &Word| is(w, &["and", "or"]);
    let comma_after = |w: &Word| {
        let end = w.at as usize + w.len as usize;
        x.source
            .get(end..)
            .is_some_and(|rest| rest.starts_with(','))
    };
    if run_at.len() > MAX_SWAP_WORDS {
        return Vec::new();
    }
    let Some(run) = x.text.get(run_at.clone()) else {
        return Vec::new();
    };
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Vec::new();
    };
    if !run
        .iter()
        .all(|w| w.name || is(w, &["and", "or", "the", "of"]))
    {
        return Vec::new();
    }
    // The word diff may set the joint on either side of the run: "Brazil *and India*"
    // or, where "and" follows again, "Brazil and *India and*" (the run then ends in the
    // joint: "Securities and *Exchange* Commission" is no list).
    let word = |k: Option<usize>| k.and_then(|k| x.text.get(k));
    let (before, after) = (word(run_at.start.checked_sub(1)), word(Some(run_at.end)));
    let (before_that, after_that) = (
        word(run_at.start.checked_sub(2)),
        word(Some(run_at.end + 1)),
    );
    let name = |w: Option<&Word>| w.is_some_and(|w| w.name);
    let listed_after = (name(before) && (joins(first) || before.is_some_and(&comma_after)))
        || (before.is_some_and(&joins) && name(before_that) && joins(last));
    let listed_before = (name(after) && (joins(last) || comma_after(last)))
        || (after.is_some_and(&joins) && name(after_that) && joins(first));
    if !(listed_after || listed_before) {
        return Vec::new();
    }
    run.iter()
        .filter(|w| w.name && x.subject_not_of(w, y, SUBJECT_USES))
        .map(|w| w.stem)
        .collect()
}

/// The names swapped in place between `a` and `b`: replaced runs of at most
/// [`MAX_SWAP_WORDS`] words on each side (or lists of names), each side holding a name the
/// other item never uses and its own uses again ([`Item::subject_not_of`]), with at least one
/// unchanged word before and after (a text's own first or last words, a dateline or a credit
/// line, are not in place).
fn swaps(a_item: &Item, b_item: &Item, changes: &[Change], min_uses: usize) -> usize {
    let (a, b) = (&a_item.text, &b_item.text);
    let mut found = 0;
    for change in changes {
        let (old_len, new_len) = (change.old.len(), change.new.len());
        if old_len == 0 || new_len == 0 {
            continue;
        }
        let (old, new) = (&a[change.old.clone()], &b[change.new.clone()]);
        // A longer run is a rewritten or inserted passage, unless it is a list of names on
        // both sides (a rule's "A, B and C" for another rule's "D, E and F").
        let names_only =
            |words: &[Word]| 3 * words.iter().filter(|w| w.name).count() >= 2 * words.len();
        if (old_len > MAX_SWAP_WORDS || new_len > MAX_SWAP_WORDS)
            && !(names_only(old) && names_only(new))
        {
            continue;
        }
        let subject_named = |words: &[Word], own: &Item, other: &Item| {
            words
                .iter()
                .any(|w| w.name && own.subject_not_of(w, other, min_uses))
        };
        if change.before > 0
            && change.after > 0
            && subject_named(old, a_item, b_item)
            && subject_named(new, b_item, a_item)
            && !one_name_written_two_ways(a_item, old, b_item, new)
        {
            found += 1;
        }
    }
    found
}

/// Unchanged words inside one change: "the *Slovak* Republic" for "the Republic *of
/// Slovenia*" is a word deleted and two inserted around an unchanged one.
const CHANGE_GAP: usize = 1;

/// A run of changed words between two texts, with the unchanged words before and after it.
struct Change {
    old: Range<usize>,
    new: Range<usize>,
    before: usize,
    after: usize,
}

/// The diff's changes (replaced, deleted and inserted words), those at most [`CHANGE_GAP`]
/// unchanged words apart taken as one.
fn changes(ops: &[DiffOp]) -> Vec<Change> {
    let ops: Vec<(DiffTag, Range<usize>, Range<usize>)> =
        ops.iter().map(DiffOp::as_tag_tuple).collect();
    let equal = |k: usize| ops.get(k).is_some_and(|op| op.0 == DiffTag::Equal);
    let equal_len = |k: Option<usize>| match k.and_then(|k| ops.get(k)) {
        Some((DiffTag::Equal, old, _)) => old.len(),
        _ => 0,
    };
    let mut out = Vec::new();
    let mut k = 0;
    while k < ops.len() {
        if equal(k) {
            k += 1;
            continue;
        }
        let start = k;
        let mut end = k;
        loop {
            if end + 1 < ops.len() && !equal(end + 1) {
                end += 1;
            } else if end + 2 < ops.len() && ops[end + 1].1.len() <= CHANGE_GAP && !equal(end + 2) {
                end += 2;
            } else {
                break;
            }
        }
        out.push(Change {
            old: ops[start].1.start..ops[end].1.end,
            new: ops[start].2.start..ops[end].2.end,
            before: equal_len(start.checked_sub(1)),
            after: equal_len(Some(end + 1)),
        });
        k = end + 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANGOLA: &str = "The Department of Commerce determines that silicon metal from Angola \
        is being, or is likely to be, sold in the United States at less than fair value. \
        The period of investigation is April 1, 2023, through March 31, 2024. Commerce \
        received no response from the producers in Angola and applied facts available. The \
        estimated weighted-average dumping margin for all producers and exporters of silicon \
        metal from Angola is 21.31 percent. Commerce will instruct U.S. Customs and Border \
        Protection to suspend liquidation of entries of subject merchandise.";

    fn other_country(text: &str, country: &str) -> String {
        text.replace("Angola", country)
    }

    #[test]
    fn a_notice_for_another_country_is_a_sibling() {
        let kazakhstan = other_country(ANGOLA, "Kazakhstan");
        assert!(templated_siblings(
            "Silicon Metal From Angola: Final Determination",
            ANGOLA,
            "Silicon Metal From Kazakhstan: Final Determination",
            &kazakhstan,
        ));
        // Symmetric.
        assert!(templated_siblings(
            "Silicon Metal From Kazakhstan: Final Determination",
            &kazakhstan,
            "Silicon Metal From Angola: Final Determination",
            ANGOLA,
        ));
        // One swap in the text and one in the headline are enough.
        let once = "Commerce determines that silicon metal from Angola is sold at less than \
                    fair value, with a margin of 21.31 percent for all producers.";
        assert!(templated_siblings(
            "Silicon Metal From Angola",
            once,
            "Silicon Metal From Kazakhstan",
            &other_country(once, "Kazakhstan"),
        ));
        // A multi-word name for a one-word one.
        assert!(templated_siblings(
            "Silicon Metal From Angola",
            ANGOLA,
            "Silicon Metal From the Republic of Korea",
            &other_country(ANGOLA, "the Republic of Korea"),
        ));
    }

    /// The quick test's filter lets through every word the exact reading takes for a
    /// product, in any case and in the plural, and the exact reading takes every product and
    /// alias.
    #[test]
    fn every_product_and_alias_is_a_product_to_both_readings() {
        let aliases = ALIASES
            .iter()
            .filter(|(_, canonical)| PRODUCTS.split_whitespace().any(|p| p == *canonical))
            .map(|(alias, _)| *alias);
        let words: Vec<&str> = PRODUCTS.split_whitespace().chain(aliases).collect();
        assert_eq!(words.len(), 42 + 12);
        let mut normal = String::new();
        for word in words {
            for written in [word.to_string(), word.to_uppercase(), {
                let mut w = word.to_string();
                w[..1].make_ascii_uppercase();
                w
            }] {
                let key = normal_form(&written, &mut normal);
                assert!(is_product(key, stem_key(&normal, key)), "{written}");
                assert!(may_be_product(&written), "{written}");
                // A plural the exact reading takes by its stem ("wines", "WHISKEYS").
                for plural in [format!("{written}s"), format!("{written}es")] {
                    let key = normal_form(&plural, &mut normal);
                    if is_product(key, stem_key(&normal, key)) {
                        assert!(may_be_product(&plural), "{plural}");
                    }
                }
            }
        }
        for plural in ["wines", "Steels", "WHISKEYS", "coppers", "tobaccos"] {
            assert!(may_be_product(plural), "{plural}");
        }
        for other in [
            "the", "tariffs", "metal", "cars", "oil", "wood", "Commerce", "ab",
        ] {
            let key = normal_form(other, &mut normal);
            assert!(!is_product(key, stem_key(&normal, key)), "{other}");
        }
    }

    /// A Section 232 proclamation, or a duty notice, for another product: the products are
    /// in lower case, so no capitalised name differs, yet they are other actions.
    #[test]
    fn a_notice_for_another_product_is_a_sibling_and_a_product_written_another_way_is_not() {
        let proclamation = |product: &str| {
            format!(
                "The Secretary of Commerce transmitted to me a report on his investigation \
                 into the effect of imports of {product} on the national security of the \
                 United States. The Secretary found that {product} is being imported in such \
                 quantities and under such circumstances as to threaten to impair the \
                 national security. I have decided to adjust the imports of {product} and \
                 {product} derivative articles by imposing a 25 percent ad valorem tariff."
            )
        };
        let title =
            |product: &str| format!("Adjusting Imports of {product} into the United States");
        assert!(siblings_both_ways(
            &title("Copper"),
            &proclamation("copper"),
            &title("Lumber"),
            &proclamation("lumber"),
        ));
        // Not in the headline, and a product of several words for another: the texts alone.
        let notice = |product: &str| {
            format!(
                "The Commission has decided to impose a definitive anti-dumping duty on \
                 imports of {product} originating in the People's Republic of China. The \
                 duty rates on {product} range from 15 percent to 35 percent, and the \
                 measures on {product} apply for five years from publication."
            )
        };
        assert!(siblings_both_ways(
            "Commission imposes anti-dumping duties",
            &notice("steel wire rod"),
            "Commission imposes anti-dumping duties",
            &notice("aluminium foil"),
        ));
        // Products in the plural ("wines" against "whiskeys"), read by their stems.
        assert!(siblings_both_ways(
            "Commission imposes anti-dumping duties",
            &notice("wines"),
            "Commission imposes anti-dumping duties",
            &notice("whiskeys"),
        ));
        // An outlet's spelling or word for the same good is no other product.
        for (a, b) in [
            ("aluminum", "aluminium"),
            ("semiconductors", "chips"),
            ("lumber", "timber"),
            ("pharmaceuticals", "drugs"),
            ("corn", "maize"),
        ] {
            assert!(
                !siblings_both_ways(&title(a), &proclamation(a), &title(b), &proclamation(b)),
                "{a} / {b}"
            );
        }
        // A copy that leaves out a product named once beside another is no sibling.
        let both = notice("steel and aluminum");
        let trimmed = both.replacen("steel and aluminum", "steel", 1);
        assert!(!siblings_both_ways("Duties", &both, "Duties", &trimmed));
    }

    #[test]
    fn other_entities_in_one_headline_are_siblings() {
        let rule = |a: &str, b: &str| {
            format!(
                "This rule amends the Export Administration Regulations by adding {a} and \
                 {b}, under the destination of China, to the Entity List. The End-User \
                 Review Committee determined that {a} and {b} act contrary to the national \
                 security interests of the United States."
            )
        };
        assert!(templated_siblings(
            "Additions to the Entity List",
            &rule("Sugon", "Inspur"),
            "Additions to the Entity List",
            &rule("Hikvision", "Dahua"),
        ));
    }

    #[test]
    fn edited_copies_of_one_story_are_not_siblings() {
        let wire = "WASHINGTON (Reuters) - The United States on Tuesday raised tariffs on \
                    Chinese steel to 25 pct, Commerce Secretary Wilbur Ross said, adding that \
                    Beijing had been warned. China said it would respond. Exports of steel \
                    from China to the United States fell 12 pct last year. (Reporting by \
                    David Lawder; Editing by Chris Reese)";
        // Another outlet: its dateline and byline, "percent" spelled out, a synonym, the
        // credit line's editor, a trimmed sentence, China's for Chinese.
        let copy = "By Staff Writer LONDON - The United States on Tuesday increased tariffs \
                    on China's steel to 25 percent, Commerce Secretary Wilbur Ross said, \
                    adding that Beijing had been warned. China said it would respond. \
                    (Reporting by David Lawder; Editing by Leslie Adler)";
        assert!(!templated_siblings(
            "US raises tariffs on Chinese steel",
            wire,
            "Washington hikes China steel duties to 25 percent",
            copy,
        ));
        // Spelling: aluminium for aluminum is one word's root, not a name.
        let us = "The Commerce Department said aluminum imports from Canada rose. Officials \
                  in Ottawa said the aluminum tariffs hurt.";
        let uk = "The Commerce Department said aluminium imports from Canada rose. Officials \
                  in Ottawa said the aluminium tariffs hurt.";
        assert!(!templated_siblings(
            "Aluminum imports rise",
            us,
            "Aluminium imports rise",
            uk
        ));
        // An update's new weekday is no other subject.
        let monday = "The minister said on Monday that talks in Geneva would resume, and \
                      officials in Brussels agreed on Monday evening.";
        assert!(!templated_siblings(
            "Talks to resume",
            monday,
            "Talks to resume",
            &monday.replace("Monday", "Tuesday")
        ));
    }

    #[test]
    fn one_swap_alone_or_an_all_caps_text_is_not_enough() {
        // One swapped name in the text and none in the headline: a copy that names another
        // official once is still a copy.
        let a = "The tariffs take effect next week, Trade Representative Katherine Tai said \
                 in a statement, and importers must file by then.";
        let b = a.replace("Katherine Tai", "Jamieson Greer");
        assert!(!templated_siblings(
            "Tariffs take effect",
            a,
            "Tariffs take effect",
            &b
        ));
        // A text in capitals shows no names but countries: other words swapped are not
        // enough, whatever the headlines.
        let caps = ANGOLA.to_uppercase();
        let swapped = caps
            .replace("PERCENT", "PCT")
            .replace("PRODUCERS", "MAKERS")
            .replace("COMMERCE", "ITA");
        assert!(!siblings_both_ways(
            "SILICON METAL FROM ANGOLA",
            &caps,
            "SILICON METAL FROM ANGOLA: MAKERS",
            &swapped,
        ));
    }

    #[test]
    fn a_notice_in_capitals_for_another_country_is_a_sibling() {
        let caps = ANGOLA.to_uppercase();
        assert!(siblings_both_ways(
            "SILICON METAL FROM ANGOLA",
            &caps,
            "SILICON METAL FROM KAZAKHSTAN",
            &caps.replace("ANGOLA", "KAZAKHSTAN"),
        ));
        // A people's name for another's, an alias for another country.
        let duties = "CBP WILL COLLECT ANTIDUMPING DUTIES ON CHINESE STEEL NAILS. IMPORTERS OF \
                      CHINESE NAILS MUST FILE ENTRY SUMMARIES WITH THE CASE NUMBER.";
        assert!(siblings_both_ways(
            "CSMS: STEEL NAILS",
            duties,
            "CSMS: STEEL NAILS",
            &duties.replace("CHINESE", "VIETNAMESE"),
        ));
        assert!(siblings_both_ways(
            "CSMS: STEEL NAILS",
            duties,
            "CSMS: STEEL NAILS",
            &duties.replace("CHINESE", "UK"),
        ));
        // A lower-case address or unit in the text changes nothing; a people's name whose
        // stem is not its country's ("GERMAN", stem "germ", is Germany's normal "german").
        let cbp = "CBP WILL COLLECT DUTIES ON GERMAN STEEL WIRE OF 5 mm. IMPORTERS OF GERMAN \
                   WIRE MUST FILE ENTRIES, SEE https://www.cbp.gov/trade.";
        assert!(siblings_both_ways(
            "CSMS: STEEL WIRE",
            cbp,
            "CSMS: STEEL WIRE",
            &cbp.replace("GERMAN", "FRENCH"),
        ));
        // One country named by its people's name in one item and its own in the other is
        // one name.
        assert!(!siblings_both_ways(
            "CSMS: STEEL NAILS",
            duties,
            "CSMS: STEEL NAILS",
            &duties
                .replacen("CHINESE STEEL", "STEEL FROM CHINA:", 1)
                .replace("CHINESE NAILS", "NAILS FROM CHINA"),
        ));
        // A copy in capitals of a notice in mixed case is still a copy.
        let mixed = "Silicon metal from Angola is sold at less than fair value, Commerce \
                     said. Producers in Angola did not respond.";
        assert!(!siblings_both_ways(
            "Silicon metal from Angola",
            mixed,
            "SILICON METAL FROM ANGOLA",
            &mixed.to_uppercase(),
        ));
    }

    /// A notice on yarn from the countries listed, naming them three times.
    fn yarn(countries: &str) -> String {
        format!(
            "The Department of Commerce determines that polyester textured yarn from \
             {countries} is being sold in the United States at less than fair value. \
             Commerce received no response from the producers in {countries} and applied \
             facts available. The dumping margin for all producers and exporters of yarn \
             from {countries} is 56.8 percent."
        )
    }

    /// A notice as (headline, text).
    type Notice = (&'static str, String);

    /// Notices widened to another country, with the added name and without.
    fn widened_notices() -> Vec<(Notice, Notice)> {
        // Names of more than one word, under headlines alike and with nothing listed after
        // them.
        let margins = |countries: &str| {
            format!(
                "Commerce determines that yarn from {countries} is sold at less than fair \
                 value. The margin for producers from {countries} is 56.8 percent."
            )
        };
        // Twice in the texts, the headlines alike, and the second time "and" follows the
        // added name (the word diff may then set the joint after it: "Brazil and *India
        // and*").
        let twice = |countries: &str| {
            format!(
                "Commerce determines that yarn from {countries} is sold at less than fair \
                 value. Producers in {countries} and exporters elsewhere did not respond."
            )
        };
        // Once in the text, and the headline names it.
        let once = |countries: &str| {
            format!(
                "Commerce determines that polyester textured yarn from {countries} is sold at \
                 less than fair value, with a margin of 56.8 percent for all producers and \
                 exporters."
            )
        };
        vec![
            // "Brazil and India" where the other says "Brazil", three times.
            (
                (
                    "Polyester Textured Yarn From Brazil and India",
                    yarn("Brazil and India"),
                ),
                ("Polyester Textured Yarn From Brazil", yarn("Brazil")),
            ),
            // Listed before the shared name, or with commas.
            (
                ("Yarn From India and Brazil", yarn("India and Brazil")),
                ("Yarn From Brazil", yarn("Brazil")),
            ),
            (
                (
                    "Yarn From Brazil, India and Chile",
                    yarn("Brazil, India and Chile"),
                ),
                ("Yarn From Brazil and Chile", yarn("Brazil and Chile")),
            ),
            (
                (
                    "Yarn From India, Brazil and Chile",
                    yarn("India, Brazil and Chile"),
                ),
                ("Yarn From Brazil and Chile", yarn("Brazil and Chile")),
            ),
            (
                ("Yarn determination", margins("Brazil and the Philippines")),
                ("Yarn determination", margins("Brazil")),
            ),
            // One word of the added name is a word the other item uses ("a new").
            (
                (
                    "Yarn From Brazil and New Zealand",
                    yarn("Brazil and New Zealand"),
                ),
                (
                    "Yarn From Brazil",
                    format!("{} A new review may follow.", yarn("Brazil")),
                ),
            ),
            (
                ("Yarn determination", twice("Brazil and India")),
                ("Yarn determination", twice("Brazil")),
            ),
            (
                ("Yarn From Brazil and India", once("Brazil and India")),
                ("Yarn From Brazil", once("Brazil")),
            ),
            // Written as an alias, or with dots: the quick test cannot find them as named.
            (
                ("Yarn determination", margins("Brazil and the UK")),
                ("Yarn determination", margins("Brazil")),
            ),
            (
                ("Yarn determination", margins("Brazil and the U.A.E.")),
                ("Yarn determination", margins("Brazil")),
            ),
            // The joint inside a word.
            (
                ("Yarn determination", margins("Brazil and/or India")),
                ("Yarn determination", margins("Brazil")),
            ),
            // Two names added at once, both subjects, the headline naming the second.
            (
                (
                    "Yarn From Chile",
                    once("Brazil, India and Chile") + " Producers in India did not respond.",
                ),
                (
                    "Yarn duties",
                    once("Brazil") + " Producers did not respond.",
                ),
            ),
        ]
    }

    #[test]
    fn a_notice_widened_to_another_country_is_a_sibling() {
        for ((wide_title, wide), (title, text)) in &widened_notices() {
            assert!(
                siblings_both_ways(wide_title, wide, title, text),
                "{wide_title:?} / {title:?}"
            );
        }
    }

    #[test]
    fn the_lists_a_word_diff_shows_added_are_found_without_it() {
        // The diff is skipped when `may_add_beside` finds no list: it must find every
        // one `added_beside` counts, whichever way round the items are diffed.
        let mut added = 0;
        for ((wide_title, wide), (title, text)) in &widened_notices() {
            let (x, y) = (Item::read(wide_title, wide), Item::read(title, text));
            let (old, new) = (
                changes(&diff(&x.text, &y.text)),
                changes(&diff(&y.text, &x.text)),
            );
            for (found, _) in [
                added_beside(&x, &y, &old, Side::Old),
                added_beside(&x, &y, &new, Side::New),
            ] {
                added += found;
                assert!(
                    found == 0 || may_add_beside(&x, &y),
                    "{wide_title:?} / {title:?}"
                );
            }
            // The narrower notice adds nothing, and no diff is needed to tell.
            assert!(!may_add_beside(&y, &x), "{title:?} / {wide_title:?}");
        }
        assert!(added > 0);
        // An outlet's insertion beside a name is no list: the copy is not diffed.
        let wire = "Commerce determines that yarn from Brazil is sold at less than fair \
                    value. Producers in Brazil did not respond to Commerce.";
        let copy = "Commerce determines that yarn from Brazil is sold at less than fair \
                    value, Reuters reported. Producers in Brazil did not respond to \
                    Commerce, a spokesman for Reuters said.";
        let (x, y) = (Item::read("Yarn", copy), Item::read("Yarn", wire));
        assert!(!may_add_beside(&x, &y) && !may_add_beside(&y, &x));
    }

    #[test]
    fn a_name_an_outlet_adds_is_no_other_action() {
        let wire = "The United States raised tariffs on steel from Canada, Commerce Secretary \
                    Wilbur Ross said on Tuesday. Officials in Canada said they would respond, \
                    and steel exporters in Canada expect orders to fall. Ross said the \
                    duties would stay until talks resume.";
        // A copy that adds a country once, listed: one addition, and its headline does not
        // name it.
        let listed_once = wire.replace("steel from Canada,", "steel from Canada and Mexico,");
        let listed_once = format!("{listed_once} Mexico was not consulted.");
        assert!(!siblings_both_ways(
            "US raises steel tariffs",
            wire,
            "US raises steel tariffs on Canada",
            &listed_once,
        ));
        // Added once, listed, and a headline naming another subject of its own, not the
        // added one.
        let with_reply = format!(
            "{} Trudeau said Canada would reply.",
            wire.replace("steel from Canada,", "steel from Canada and Mexico,")
                .replace("Officials in Canada", "Mexico's officials and Trudeau")
        );
        assert!(!siblings_both_ways(
            "US raises steel tariffs",
            wire,
            "Trudeau vows reply to US steel tariffs",
            &with_reply,
        ));
        // A word of a name dropped by an edit ("the Securities and Commission"), with the
        // headline cut there too: after "and", but no list of its own.
        let filing = "Unicorp Canada Corp told the Securities and Exchange Commission it cut \
                      its stake in Purolator Courier Corp to 286,500 shares, or 3.7 percent. \
                      Unicorp, a holding company controlled by its chairman, George Mann, said \
                      it sold 675,900 Purolator common shares.";
        assert!(!siblings_both_ways(
            "Unicorp Canada Corp Told The Securities And Exchange Commission",
            filing,
            "Unicorp Canada Corp Told The Securities",
            &filing.replace(" and Exchange ", " and "),
        ));
        // An aside after a name, twice: a comma, but no list.
        let aside = wire
            .replace("Wilbur Ross said", "Wilbur Ross, a Trump adviser, said")
            .replace(
                "Officials in Canada said",
                "Officials in Canada, a Trump ally, said",
            );
        assert!(!siblings_both_ways(
            "US raises steel tariffs",
            wire,
            "US raises steel tariffs",
            &aside,
        ));
        // Added at two places, listed with another name at one only.
        let twice = wire
            .replace("Officials in Canada", "Officials in Canada and Mexico")
            .replace("Ross said the", "Ross said in Mexico the");
        assert!(!siblings_both_ways(
            "US raises steel tariffs",
            wire,
            "US raises steel tariffs",
            &twice,
        ));
        // A trimmed copy: the names of its cut tail are no additions.
        let trimmed = "The United States raised tariffs on steel from Canada, Commerce \
                       Secretary Wilbur Ross said on Tuesday. Officials in Canada said they \
                       would respond.";
        let longer = format!(
            "{trimmed} Mexico and Japan were spared. Exporters in Japan and Mexico welcomed \
             the decision."
        );
        assert!(!siblings_both_ways(
            "US raises steel tariffs",
            &longer,
            "US raises steel tariffs",
            trimmed,
        ));
    }

    #[test]
    fn related_headlines_inserted_at_one_place_in_two_copies_are_no_subjects() {
        // Two outlets' pages insert their own related-stories block at the same place: title
        // case words swapped in place, but each used once.
        let copy = |related: &str| {
            format!(
                "Tseng Laboratories said it expects first-quarter sales to exceed its sales \
                 for the whole of last year. Related: {related} Advertisement Jack Tseng, \
                 president of the company, credited orders from major customers and its \
                 growing reseller network."
            )
        };
        assert!(!templated_siblings(
            "Tseng Laboratories expects record quarter",
            &copy("Venezuela Prepares Debt Term Sheet For Banks"),
            "Tseng expects first-quarter sales to beat last year",
            &copy("Kuwait Buys Dairy Cattle From Ireland"),
        ));
    }

    /// Both argument orders give one answer (the writer passes the stored story first).
    fn siblings_both_ways(a_title: &str, a: &str, b_title: &str, b: &str) -> bool {
        let (ab, ba) = (
            templated_siblings(a_title, a, b_title, b),
            templated_siblings(b_title, b, a_title, a),
        );
        assert_eq!(ab, ba, "asymmetric: {a_title:?} / {b_title:?}");
        ab
    }

    #[test]
    fn one_name_written_two_ways_is_no_swap() {
        let text = |name: &str| {
            format!(
                "Spain's prime minister {name} said on Monday that the European Union must \
                 answer the tariffs, and officials close to {name} said Madrid would press \
                 Brussels for a joint response within weeks."
            )
        };
        for (a, b) in [
            ("Pedro Sánchez", "Pedro Sanchez"),
            ("Mr. Sánchez", "Mr. Sanchez"),
        ] {
            assert!(
                !siblings_both_ways(
                    "Spain urges answer",
                    &text(a),
                    "Spain urges answer",
                    &text(b)
                ),
                "{a} / {b}"
            );
        }
        let place = |name: &str| {
            format!(
                "Officials in {name} said the grain corridor would reopen, and exporters in \
                 {name} expect shipments to Egypt and Turkey to resume this month."
            )
        };
        for (a, b) in [
            ("Kyiv", "Kiev"),
            ("Burma", "Myanmar"),
            ("Britain", "the UK"),
            ("Türkiye", "Turkey"),
        ] {
            assert!(
                !siblings_both_ways(
                    "Corridor to reopen",
                    &place(a),
                    "Corridor to reopen",
                    &place(b)
                ),
                "{a} / {b}"
            );
        }
        // A people's name for its country's: "Chinese" where the other says "China's".
        let a = "Commerce said it would cap Chinese steel imports, and Chinese mills said the \
                 cap would hurt exporters.";
        let b = "Commerce said it would cap China's steel imports, and China's mills said the \
                 cap would hurt exporters.";
        assert!(!siblings_both_ways("Steel cap", a, "Steel cap", b));
    }

    #[test]
    fn ascii_lines_are_read_as_the_general_path_reads_them() {
        // A no-break space ends every line in the second text: white space to both paths,
        // but it sends each line down the general (char by char) path.
        let texts = [
            ANGOLA,
            "WASHINGTON (Reuters) - U.S.-China talks: Mr. Lighthizer said \"no\".\nThe E.U.'s \
             rules/tariffs -- 25 pct -- hit Co. Hikvision; (Dahua) [Sugon] 'Inspur'? Yes!\n\
             \tTabbed line with\x0ca form feed and a\rcarriage return.\n\n- dash - alone / x",
        ];
        let read = |text: &str| {
            let mut words = Vec::new();
            let mixed = walk(text, |core, name| words.push((core.to_string(), name)));
            (words, mixed)
        };
        for text in texts {
            let general: String = text.lines().map(|l| format!("{l}\u{a0}\n")).collect();
            assert!(!general.lines().all(str::is_ascii));
            assert_eq!(read(text), read(&general), "{text:?}");
        }
    }

    #[test]
    fn aliases_are_sorted_for_their_binary_search() {
        assert!(ALIASES.windows(2).all(|w| w[0].0 < w[1].0));
        // A hash of 0 marks an empty slot of their table of hashes.
        assert!(
            ALIASES
                .iter()
                .all(|(alias, _)| xxh3_64(alias.as_bytes()) != 0)
        );
    }

    #[test]
    fn outlets_spellings_initialisms_and_peoples_names_are_one_name() {
        let text = |name: &str, them: &str| {
            format!(
                "Officials said {them} carmakers would be hit by the tariffs, and {name} \
                 ministers met in Brussels on Monday, where aides to {name} said talks with \
                 Washington would resume."
            )
        };
        for (a, b) in [
            ("Zelenskiy", "Zelensky"),
            ("Zelenskyy", "Zelenskiy"),
            ("France's", "French"),
            ("the Netherlands'", "Dutch"),
            ("Kazakhstan's", "Kazakh"),
        ] {
            assert!(
                !siblings_both_ways(
                    "Talks to resume",
                    &text(a, a),
                    "Talks to resume",
                    &text(b, b)
                ),
                "{a} / {b}"
            );
        }
        // An initialism for the words it stands for.
        let us = |name: &str| {
            format!(
                "Officials in Brussels said the {name} tariffs on steel hurt, and the {name} \
                 Commerce Department said exports fell."
            )
        };
        for (a, b) in [("U.S.", "United States"), ("EU", "European Union")] {
            assert!(
                !siblings_both_ways("Tariffs hurt", &us(a), "Tariffs hurt", &us(b)),
                "{a} / {b}"
            );
        }
        // A people's name that shares its stem with another country's: Nigerian producers
        // are Nigeria's, not Niger's.
        let nigeria = other_country(ANGOLA, "Nigeria")
            .replace("from the producers in Nigeria", "from Nigerian producers");
        assert!(siblings_both_ways(
            "Silicon Metal From Nigeria",
            &nigeria,
            "Silicon Metal From Niger",
            &other_country(ANGOLA, "Niger")
        ));
    }

    #[test]
    fn countries_one_letter_apart_are_other_countries() {
        let ireland = other_country(ANGOLA, "Ireland");
        assert!(siblings_both_ways(
            "Silicon Metal From Ireland",
            &ireland,
            "Silicon Metal From Iceland",
            &other_country(ANGOLA, "Iceland"),
        ));
        // A people's name one letter from its country's (the stems differ) is still that
        // country: a copy writing "Russian" for each "Russia" is a copy.
        let russia = "Steel from Russia is sold at less than fair value, Commerce said, and \
                      the Russia desk will review it.";
        assert!(!siblings_both_ways(
            "Russia steel",
            russia,
            "Russian steel",
            &russia.replace("Russia", "Russian"),
        ));
    }

    #[test]
    fn countries_that_share_their_first_letters_are_other_countries() {
        for (a, b) in [
            ("Austria", "Australia"),
            ("Niger", "Nigeria"),
            ("Slovakia", "Slovenia"),
            ("India", "Vietnam"),
        ] {
            let title = |c: &str| format!("Silicon Metal From {c}: Final Determination");
            assert!(
                siblings_both_ways(
                    &title(a),
                    &other_country(ANGOLA, a),
                    &title(b),
                    &other_country(ANGOLA, b)
                ),
                "{a} / {b}"
            );
        }
        // Names of several words in another order: a word deleted and two inserted around
        // an unchanged one.
        let (slovak, slovenia) = (
            other_country(ANGOLA, "the Slovak Republic"),
            other_country(ANGOLA, "the Republic of Slovenia"),
        );
        assert!(siblings_both_ways(
            "Silicon Metal From the Slovak Republic",
            &slovak,
            "Silicon Metal From the Republic of Slovenia",
            &slovenia
        ));
        // "indicated" in the text does not make the India notice use "Vietnam", nor the
        // other way round.
        let note = |c: &str| {
            format!(
                "{} Producers indicated no objection.",
                other_country(ANGOLA, c)
            )
        };
        assert!(siblings_both_ways(
            "Silicon Metal From India",
            &note("India"),
            "Silicon Metal From Vietnam",
            &note("Vietnam")
        ));
    }

    #[test]
    fn a_name_in_curly_quotes_or_after_a_hyphen_is_still_a_name() {
        let rule = |a: &str| {
            format!(
                "This rule adds “{a}” to the Entity List. The End-User Review Committee \
                 determined that {a} acts contrary to the national security interests of the \
                 United States, and a license is required for all items subject to the EAR \
                 when {a}-affiliated parties are involved."
            )
        };
        assert!(siblings_both_ways(
            "Addition of Hikvision to the Entity List",
            &rule("Hikvision"),
            "Addition of Dahua to the Entity List",
            &rule("Dahua"),
        ));
    }

    #[test]
    fn a_swap_at_the_text_edge_is_a_dateline_not_a_subject() {
        let a = "Brussels: The Commission extended duties on ceramic tableware for five years \
                 after an expiry review requested by producers. Reporting by Philip Blenkinsop";
        let b = "Geneva: The Commission extended duties on ceramic tableware for five years \
                 after an expiry review requested by producers. Reporting by Emma Farge";
        assert!(!templated_siblings(
            "Duties extended",
            a,
            "Duties extended",
            b
        ));
    }
}
