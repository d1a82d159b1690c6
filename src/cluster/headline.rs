//! The headline an entry is matched on when its text cannot speak for it: aggregator copies
//! (Google News) carry only a headline with the publisher's name added, and a description
//! that repeats the two.

use std::sync::OnceLock;

use xxhash_rust::xxh3::xxh3_64;

use super::signature::{HEADLINE_NOISE, WordHashes, is_stopword_hash};
use crate::domain::{Headline, MAX_PUBLISHER_WORDS, last_separator, reads_as_a_name};

/// Fewest distinctive headline words (not stopwords, not generic words such as "wrap" or
/// "briefing", not figures, months or weekdays) for a headline to stand for a story: "Markets
/// wrap" or "Morning briefing: Tuesday 3 June" name no event.
pub const MIN_DISTINCTIVE_WORDS: usize = 4;

/// Words that name a kind of item rather than an event: recurring columns and newsletters
/// reuse them every day.
const GENERIC: &[&str] = &[
    "afternoon",
    "brief",
    "briefing",
    "briefs",
    "daily",
    "digest",
    "evening",
    "headlines",
    "know",
    "latest",
    "market",
    "markets",
    "morning",
    "need",
    "newsletter",
    "opinion",
    "podcast",
    "roundup",
    "stocks",
    "stories",
    "things",
    "today",
    "top",
    "week",
    "weekly",
    "what",
    "wrap",
    "wraps",
];

/// Months and weekdays: the dates recurring items are told apart by.
pub(super) const CALENDAR: &[&str] = &[
    "jan",
    "january",
    "feb",
    "february",
    "mar",
    "march",
    "apr",
    "april",
    "may",
    "jun",
    "june",
    "jul",
    "july",
    "aug",
    "august",
    "sep",
    "sept",
    "september",
    "oct",
    "october",
    "nov",
    "november",
    "dec",
    "december",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Longest trailing segment [`comparable_headline`] drops without the text's confirmation, in
/// words: outlet names and attributions ("Reuters", "AP News", "Outlet 0066", "sources").
const MAX_TRAILING_WORDS: usize = 4;

/// Fewest words a headline keeps when [`comparable_headline`] drops a trailing segment: in
/// "Economic Spotlight - Euroyen Bond Issues Increase" the segment is the headline.
const MIN_HEAD_WORDS: usize = 4;

/// Wire-service prefixes ("UPDATE 2-", "WRAPUP 1-", "EXCLUSIVE-", "REFILE-", "Corrected - "):
/// a revision or a label, never part of the event.
const WIRE_PREFIXES: &[&str] = &[
    "analysis",
    "breakingviews",
    "corrected",
    "correction",
    "exclusive",
    "factbox",
    "insight",
    "refile",
    "rpt",
    "update",
    "wrapup",
];

/// The part of a title that near-duplicate matching compares: without a wire prefix
/// (`UPDATE 1-`, `WRAPUP 2-`, `EXCLUSIVE-`) and without trailing segments after ` - `, ` | `,
/// ` – ` or ` — ` of at most four words ("| Outlet 0066", "- Reuters", "| AP News"), as long
/// as four words stay. Outlets add these to the same wire headline, and a publisher's name
/// carries words and figures ("Outlet 0066", "9News") that made copies' headlines disagree.
/// Unlike [`headline_of`]'s exact key, this feeds only the headline term overlap, so it needs
/// no confirmation from the text; a dropped attribution ("- sources", "- paper") is no
/// evidence either way.
pub(crate) fn comparable_headline(title: &str) -> &str {
    let mut head = strip_wire_prefix(title.trim());
    loop {
        let Some((at, sep)) = last_separator(head) else {
            return head;
        };
        let segment = &head[at + sep.len()..];
        let tail = words(segment).count();
        if !(1..=MAX_TRAILING_WORDS).contains(&tail)
            || words(&head[..at]).count() < MIN_HEAD_WORDS
            || tells_figures(segment)
        {
            return head;
        }
        head = head[..at].trim_end();
    }
}

/// Whether two titles carry the same headline, give or take what outlets and wire updates
/// add: every content word of the one with fewer (after [`comparable_headline`]'s wire prefix
/// and outlet's suffix are dropped; compared by stem, stopwords and attribution words left
/// out, figures as written) is in the other, so "UPDATE 1-US raises tariffs on Chinese steel
/// to 50%, Beijing vows response" has the headline of "US to raise tariffs on Chinese steel",
/// and "... on Chinese aluminium ..." or "... to 25%" has not. Whole headlines, not the
/// signature's sample of eight terms: a templated notice's product or country may lie
/// outside that sample.
pub fn same_headline(a: &str, b: &str) -> bool {
    let terms_of = |title: &str| -> std::collections::HashSet<u64> {
        // Trailing segments only when they read as an outlet's name ("| Outlet 0066", "-
        // Reuters"): [`comparable_headline`] drops any short one, and "… duty - Ceramic
        // tableware from China" and "… duty - Aluminium foil from Brazil" would compare as
        // one headline.
        let mut head = strip_wire_prefix(title.trim());
        while let Some((at, sep)) = last_separator(head) {
            let segment: Vec<&str> = words(&head[at + sep.len()..]).collect();
            if segment.len() > MAX_TRAILING_WORDS
                || words(&head[..at]).count() < MIN_HEAD_WORDS
                || !reads_as_a_name(&segment)
            {
                break;
            }
            head = head[..at].trim_end();
        }
        super::signature::headline_terms(&head.to_lowercase())
    };
    let (a, b) = (terms_of(a), terms_of(b));
    let (fewer, more) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    !fewer.is_empty() && fewer.is_subset(&more)
}

/// Whether a trailing segment says figures of the story rather than naming an outlet: it holds
/// a digit and a word in lower case ("- 3-month bills", "- 7.3 bln dlrs"), where a name is
/// capitalized ("| Outlet 0066", "- 9News"). Dropped, its figures could no longer tell two
/// templated headlines apart ("… results - 3-month bills" against "… - 6-month bills").
/// Headlines all in capitals (old wire style) cannot be told so and lose such a segment.
fn tells_figures(segment: &str) -> bool {
    segment.bytes().any(|b| b.is_ascii_digit())
        && words(segment).any(|w| w.chars().count() >= 2 && w.chars().all(char::is_lowercase))
}

/// The runs of letters and digits of `s`: its words, as headlines are compared.
fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// Whether `new` (title and plain text) is the same item as `own`, an item its own feed
/// listed before under another id: the feed's reissue, correction or revision, and not its
/// next templated notice.
///
/// - Unless either declares itself a revision ([`declares_revision`]: a wire rewords its
///   headline as the story moves, inserts paragraphs inside the text, and its original may
///   be polled after it), the headlines must be one ([`same_headline`]) and the texts one
///   item's ([`super::signature::one_items_text`]: they differ in at most two words each
///   way, a correction, or only at the shorter one's ends, a byline, credit line, trim or
///   extension). A feed's templated notices under one headline ("Additions to the Entity
///   List" for four other entities) differ in more words than that, inside the text.
/// - Either way the texts make at most two small changes besides added or cut passages, no
///   two alike (`template::OwnItems::few_changes`): the feed's next templated notice
///   replaces its product, country or entities as often as it names them ("silicon metal"
///   for "steel nails" twice is two words each way, but no correction); an update that
///   recasts sentences stays apart.
/// - And no name is replaced in place by another that the other item never uses
///   (`template::OwnItems::names_replaced`): "Kazakhstan" for "Angola" once is a one-word
///   difference, but another notice; so is "corn" for "wheat", a listed product
///   (`template::PRODUCTS`), even under a correction's prefix.
///
/// Exact, on the two texts: the index's containment estimate (64 MinHash bins) is too coarse
/// here, off by 0.03–0.06 near 0.95, and taken against a story's earliest copy, which may be
/// another outlet's.
pub fn one_item_of_a_feed(
    own_title: &str,
    own_text: &str,
    new_title: &str,
    new_text: &str,
) -> bool {
    let revision = declares_revision(own_title) || declares_revision(new_title);
    // The cheaper tests first: the writer asks this for up to 32 items of the feed per
    // candidate story, and a word diff costs more than the shingle test.
    let one_item = revision
        || (same_headline(own_title, new_title)
            && super::signature::one_items_text(own_text, new_text));
    if !one_item {
        return false;
    }
    // Another country, company or entity named in place of the item's, whatever the
    // headlines or prefixes, is the feed's next notice; and at most two small changes besides
    // added or cut passages.
    let own = super::template::OwnItems::compare(own_title, own_text, new_title, new_text);
    !own.names_replaced && own.few_changes
}

/// The wire prefixes that mark a revision of an item the wire sent before (not a piece of
/// its own, as "FACTBOX-" or "ANALYSIS-" are).
const REVISION_PREFIXES: &[&str] = &["corrected", "correction", "refile", "rpt", "update"];

/// Whether `title` declares itself a revision of an earlier item: it starts with a wire
/// prefix such as "UPDATE 2-", "REFILE-", "CORRECTED-" or "RPT-". A wire's update rewords
/// its headline as the story moves ("Canada to impose 25% surtax …" becomes "UPDATE
/// 1-Canada hits back at US metals tariffs …"); the prefix says it is the same story.
pub fn declares_revision(title: &str) -> bool {
    let title = title.trim();
    let word_end = title
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(title.len());
    REVISION_PREFIXES.contains(&title[..word_end].to_ascii_lowercase().as_str())
        && strip_wire_prefix(title) != title
}

/// `title` without a leading wire prefix: one of [`WIRE_PREFIXES`], optionally a revision
/// number, then `-` or `:` ("UPDATE 2-", "EXCLUSIVE-", "Corrected - ", "ANALYSIS: ").
fn strip_wire_prefix(title: &str) -> &str {
    let word_end = title
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(title.len());
    if !WIRE_PREFIXES.contains(&title[..word_end].to_ascii_lowercase().as_str()) {
        return title;
    }
    let rest = title[word_end..].trim_start();
    let rest = rest
        .trim_start_matches(|c: char| c.is_ascii_digit())
        .trim_start();
    match rest.strip_prefix(['-', ':', '–', '—']) {
        Some(after) if !after.trim().is_empty() => after.trim_start(),
        _ => title,
    }
}

/// The headline of an entry with this plain-text title and text. The title loses a
/// trailing ` - X` or ` | X` (X at most six words) only when the text also ends with X:
/// the item names its publisher there (Google News writes the headline, two spaces and
/// the publisher), so X is not part of the headline ("Tariffs - what changes" keeps
/// its words). `None` when the headline has fewer than [`MIN_DISTINCTIVE_WORDS`]
/// distinctive words.
pub fn headline_of(title: &str, text: &str) -> Option<Headline> {
    // A revision's headline without its prefix: the key its feed's earlier item has.
    let unrevised = declares_revision(title)
        .then(|| headline_of(strip_wire_prefix(title), text))
        .flatten()
        .map(|h| h.key);
    // Only the text's end (where an aggregator names the publisher) matters, and the whole
    // of it only when it could equal the title: a full article is not normalized whole (it
    // was, for every clustered entry: a lower-cased copy of up to 100,000 characters).
    let letters = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).count();
    // Bytes first: a text four times the title's length is an article (counting its letters
    // was 2-3% of a cold pass's instructions), whatever its punctuation.
    let short = text.len() <= 4 * title.len() + 64 && letters(text) <= letters(title);
    let text = if short {
        normalized(text)
    } else {
        let mut start = text.len().saturating_sub(title.len() + 8);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        normalized(&text[start..])
    };
    let whole = normalized(title);
    let mut key = whole.clone();
    let mut dropped_suffix = None;
    if let Some((at, sep)) = last_separator(title) {
        let head = normalized(&title[..at]);
        let publisher = normalized(&title[at + sep.len()..]);
        let words = publisher.split(' ').filter(|w| !w.is_empty()).count();
        if !head.is_empty()
            && (1..=MAX_PUBLISHER_WORDS).contains(&words)
            && (text == publisher || text.ends_with(&format!(" {publisher}")))
        {
            key = head;
            dropped_suffix = Some(title[at..].trim_end().to_owned());
        }
    }
    let title_only = short && (text.is_empty() || text == whole || text == key);
    let distinctive = key
        .split(' ')
        .filter(|w| {
            w.chars().count() > 1 && !w.chars().all(|c| c.is_ascii_digit()) && {
                let hash = xxh3_64(w.as_bytes());
                !is_stopword_hash(hash) && !is_filler_hash(hash)
            }
        })
        .count();
    (distinctive >= MIN_DISTINCTIVE_WORDS).then_some(Headline {
        unrevised: unrevised.filter(|unrevised| *unrevised != key),
        key,
        title_only,
        dropped_suffix,
    })
}

/// Whether the word whose `xxh3_64` is `hash` says nothing of a headline's event: one of
/// [`HEADLINE_NOISE`], [`GENERIC`] or [`CALENDAR`]. One probe of a table of their hashes (three
/// scans of the lists compared every headline word with 77 others).
fn is_filler_hash(hash: u64) -> bool {
    static TABLE: OnceLock<WordHashes> = OnceLock::new();
    TABLE
        .get_or_init(|| WordHashes::of(&[HEADLINE_NOISE, GENERIC, CALENDAR]))
        .contains(hash)
}

/// Lower-cased words (runs of letters and digits), joined by single spaces.
fn normalized(s: &str) -> String {
    if s.is_ascii() {
        normalized_ascii(s)
    } else {
        normalized_by_chars(s)
    }
}

/// [`normalized`] of any text, a char at a time.
fn normalized_by_chars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in words(s) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// [`normalized`] of ASCII text, a byte at a time: decoding each char and looking up its
/// lower case made the headline 4% of a cold pass's instructions (most titles and the ends
/// of most texts are ASCII).
fn normalized_ascii(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut gap = false;
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(char::from(b.to_ascii_lowercase()));
        } else {
            gap = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn ascii_text_is_normalized_as_the_unicode_path_does(s in "[ -~\t\n]{0,80}") {
            proptest::prop_assert_eq!(normalized_ascii(&s), normalized_by_chars(&s));
        }

    }

    /// An Entity List rule's text for four entities.
    fn rule(entities: &str) -> String {
        format!(
            "The Bureau of Industry and Security is amending the Export Administration \
             Regulations by adding four entities to the Entity List: {entities}. These entities \
             have been determined by the End-User Review Committee to be acting contrary to the \
             national security or foreign policy interests of the United States. A license is \
             required for all items subject to the regulations, and applications will be \
             reviewed under a presumption of denial. This rule is effective December 2, 2026."
        )
    }

    #[test]
    fn a_revision_prefix_does_not_let_the_feeds_next_notice_in() {
        let notice = |product: &str, country: &str| {
            format!(
                "The Department of Commerce determines that {product} from {country} is sold \
                 in the United States at less than fair value. Commerce received no response \
                 from the producers and applied facts available. The margin for all \
                 exporters of {product} is 21.31 percent, and Customs will suspend \
                 liquidation of entries of subject merchandise."
            )
        };
        let title = |product: &str, country: &str| format!("{product} from {country}: final");
        let stored = (
            format!("UPDATE 1-{}", title("Silicon metal", "Angola")),
            notice("silicon metal", "Angola"),
        );
        for (new_title, new_text) in [
            // A product replaced wherever the notice names it (twice).
            (
                title("Steel nails", "Angola"),
                notice("steel nails", "Angola"),
            ),
            // A country replaced once, under a prefix.
            (
                format!("UPDATE 2-{}", title("Silicon metal", "Kazakhstan")),
                notice("silicon metal", "Kazakhstan"),
            ),
            // A country of several words in another order.
            (
                title("Silicon metal", "the Slovak Republic"),
                notice("silicon metal", "the Slovak Republic"),
            ),
        ] {
            assert!(
                !one_item_of_a_feed(&stored.0, &stored.1, &new_title, &new_text),
                "{new_title}"
            );
            assert!(
                !one_item_of_a_feed(&new_title, &new_text, &stored.0, &stored.1),
                "{new_title}, the other way round"
            );
        }
        // A listed product is a name too, replaced once under a correction's prefix: the
        // feed's next notice by this rule, though it may be a correction of the product (a
        // duplicate item then, the smaller loss than a notice never served). Another word
        // corrected is the same item.
        let shipped = |product: &str, rise: &str| {
            format!(
                "Exporters shipped 1.2 million tonnes of {product} to China in October, \
                 customs data showed on Monday, up {rise} percent from a year earlier as \
                 buyers stocked up before new duties take effect."
            )
        };
        let headline = "China buys more grain before duties";
        let corrected = format!("CORRECTED-{headline}");
        assert!(!one_item_of_a_feed(
            headline,
            &shipped("wheat", "12"),
            &corrected,
            &shipped("corn", "12")
        ));
        assert!(one_item_of_a_feed(
            headline,
            &shipped("wheat", "12"),
            &corrected,
            &shipped("wheat", "14")
        ));
        // Its own revision, a sentence added inside it, is the same item either way.
        let revised = notice("silicon metal", "Angola").replacen(
            ". ",
            ". The determination follows a complaint by domestic producers. ",
            1,
        );
        let revised_title = format!("UPDATE 2-{}", title("Silicon metal", "Angola"));
        assert!(one_item_of_a_feed(
            &stored.0,
            &stored.1,
            &revised_title,
            &revised
        ));
        assert!(one_item_of_a_feed(
            &revised_title,
            &revised,
            &stored.0,
            &stored.1
        ));
    }

    #[test]
    fn one_item_of_a_feed_takes_reissues_corrections_and_revisions_not_templated_siblings() {
        let title = "Additions to the Entity List";
        let text = rule(
            "Nanjing Starwave Electronics, Hefei Brightline Photonics, Xi'an Tianhe \
             Navigation and Chengdu Redpeak Avionics",
        );
        // The rest of a full Federal Register rule: some 600 words the siblings share.
        let long_tail = "The rule also sets out the procedure for requesting removal or \
             modification of an entry, the reasons for the End-User Review Committee's \
             determinations, and the paperwork burden estimates for the affected collections. "
            .repeat(20);
        let long_text = format!("{text} {long_tail}");
        let same_item = [
            // Reissued as it was, or with a credit line added.
            (title.to_string(), text.clone()),
            (
                title.to_string(),
                format!("{text} Published by the Federal Register."),
            ),
            // Trimmed to its first sentences.
            (
                title.to_string(),
                text[..text.find(" A license").unwrap()].to_string(),
            ),
            // A correction of one word and one figure.
            (
                title.to_string(),
                text.replace("presumption of denial", "presumption of approval")
                    .replace("December 2", "December 4"),
            ),
            // A wire's revision under a reworded headline, its text extended.
            (
                "UPDATE 1-US blacklists four Chinese avionics and photonics firms".to_string(),
                format!("{text} The companies did not respond to requests for comment."),
            ),
            // A later revision: a paragraph inserted inside the text and a word changed, no
            // text of one item (the insertion is not at an end), but declared a revision.
            (
                "UPDATE 2-US adds four Chinese firms to trade blacklist".to_string(),
                text.replacen(
                    ". ",
                    ". The companies have 45 days to appeal, a spokesperson for the bureau \
                     said, and exporters holding licences must stop shipments at once. ",
                    1,
                )
                .replace("A license is required", "A licence is required"),
            ),
            // A byline before it and a credit line after it.
            (
                title.to_string(),
                format!("By the Federal Register staff. {text} Distributed by Trade Wire Inc."),
            ),
        ];
        for (new_title, new_text) in &same_item {
            assert!(
                one_item_of_a_feed(title, &text, new_title, new_text),
                "{new_title:?} {new_text:?}"
            );
        }
        // The original polled after its revision, which inserted a paragraph inside it.
        let (update_title, update_text) = &same_item[5];
        assert!(update_title.starts_with("UPDATE 2-"));
        assert!(one_item_of_a_feed(update_title, update_text, title, &text));
        // A long rule and its trimmed or corrected copy; the feed's title-only item.
        for new_text in [
            text.clone(),
            long_text.replace("presumption of denial", "presumption of approval"),
        ] {
            assert!(one_item_of_a_feed(title, &long_text, title, &new_text));
        }
        assert!(one_item_of_a_feed(title, "", title, &long_text));
        let other_items = [
            // The feed's next rule under the same headline: four other entities.
            (
                title.to_string(),
                rule(
                    "Guangzhou Brightpath Semiconductor, Wuhan Silverline Materials, \
                     Shenyang Northstar Machinery and Tianjin Harborview Logistics",
                ),
            ),
            // Even declared a revision, other entities are another rule.
            (
                "UPDATE 1-Additions to the Entity List".to_string(),
                rule(
                    "Kunming Highland Optics, Harbin Frostline Aerospace, Changsha Redriver \
                     Drones and Qingdao Bluewave Marine",
                ),
            ),
            // However long the rule: the names differ inside its text.
            (
                title.to_string(),
                format!(
                    "{} {long_tail}",
                    rule(
                        "Guangzhou Brightpath Semiconductor, Wuhan Silverline Materials, \
                         Shenyang Northstar Machinery and Tianjin Harborview Logistics"
                    )
                ),
            ),
            // The same text under another headline, not declared a revision.
            ("Revisions to the Unverified List".to_string(), text.clone()),
        ];
        for (new_title, new_text) in &other_items {
            assert!(
                !one_item_of_a_feed(title, &text, new_title, new_text),
                "{new_title:?} {new_text:?}"
            );
        }
    }

    #[test]
    fn revisions_are_told_by_their_wire_prefix() {
        for title in [
            "UPDATE 1-Canada hits back at US metals tariffs",
            "update 12 - Canada hits back",
            "REFILE-Canada hits back",
            "CORRECTED: Canada hits back",
            "RPT-Canada hits back",
        ] {
            assert!(declares_revision(title), "{title:?}");
        }
        for title in [
            "Canada hits back at US metals tariffs",
            "FACTBOX-What Canada's surtax covers",
            "ANALYSIS-Canada's retaliation",
            "Update on the tariff talks",
            "UPDATE 1-",
        ] {
            assert!(!declares_revision(title), "{title:?}");
        }
    }

    #[test]
    fn same_headline_reads_a_templated_subject_after_a_dash_as_headline() {
        assert!(!same_headline(
            "Commission imposes definitive anti-dumping duty - Ceramic tableware from China",
            "Commission imposes definitive anti-dumping duty - Aluminium foil from Brazil",
        ));
        assert!(same_headline(
            "Commission imposes definitive anti-dumping duty - Reuters",
            "Commission imposes definitive anti-dumping duty | AP News",
        ));
    }

    #[test]
    fn same_headline_allows_what_outlets_add_and_nothing_else() {
        let base = "US raises tariffs on Chinese steel to 50%";
        for (other, same) in [
            (base, true),
            (
                "UPDATE 1-US raises tariffs on Chinese steel to 50%, Beijing vows response",
                true,
            ),
            (
                "US raises tariffs on Chinese steel to 50% | Outlet 0066",
                true,
            ),
            ("us RAISES tariffs on chinese steel to 50%", true),
            // A wire update rewords the verb: the same stems.
            (
                "UPDATE 2-U.S. raising tariff on Chinese steel to 50% - sources",
                true,
            ),
            ("US to raise tariffs on Chinese steel", true),
            ("US raises tariffs on Chinese aluminium to 50%", false),
            ("US raises tariffs on Chinese steel to 25%", false),
            (
                "Commission imposes definitive anti-dumping duty on steel wire rod from Russia",
                false,
            ),
            ("", false),
        ] {
            assert_eq!(same_headline(base, other), same, "{other:?}");
            assert_eq!(same_headline(other, base), same, "{other:?} (swapped)");
        }
    }

    #[test]
    fn the_filler_table_holds_exactly_the_listed_words() {
        let listed = || HEADLINE_NOISE.iter().chain(GENERIC).chain(CALENDAR);
        assert!(listed().all(|w| xxh3_64(w.as_bytes()) != 0));
        let filler = |w: &str| is_filler_hash(xxh3_64(w.as_bytes()));
        assert!(listed().all(|w| filler(w)));
        // Near misses of every listed word, and words of events, are not fillers.
        for w in listed() {
            for near in [format!("{w}s"), format!("x{w}"), w[1..].to_string()] {
                let is_listed = listed().any(|l| *l == near);
                assert_eq!(filler(&near), is_listed, "{near}");
            }
        }
        assert!(!filler("tariffs") && !filler("steel") && !filler(""));
    }

    #[test]
    fn ascii_and_unicode_text_normalize_alike() {
        for s in [
            "",
            "  ",
            "U.S. tariffs -- on STEEL, 25%!",
            "- Reuters",
            "a",
            "Tariffs: what changes?  ",
            "Zölle auf Stahl - Handelsblatt",
        ] {
            assert_eq!(normalized(s), normalized_by_chars(s), "{s:?}");
        }
        assert_eq!(
            normalized("U.S. tariffs -- on STEEL, 25%!"),
            "u s tariffs on steel 25"
        );
    }

    /// A revision's headline carries the key of its headline without the wire prefix: the
    /// one its feed's earlier version was stored under. Other titles carry none.
    #[test]
    fn a_revisions_headline_knows_the_key_it_revises() {
        let text = "Mexico and Japan signed a customs agreement on Monday that simplifies rules \
            of origin for car parts and steel.";
        let title = "Mexico and Japan sign customs pact on rules of origin";
        let original = headline_of(title, text).unwrap();
        assert_eq!(original.unrevised, None);
        for prefix in [
            "CORRECTED-",
            "UPDATE 2-",
            "REFILE-",
            "Corrected - ",
            "Update: ",
        ] {
            let revised = headline_of(&format!("{prefix}{title}"), text).unwrap();
            assert_ne!(revised.key, original.key, "{prefix}");
            assert_eq!(
                revised.unrevised.as_deref(),
                Some(original.key.as_str()),
                "{prefix}"
            );
        }
        for not_a_revision in ["FACTBOX-", "ANALYSIS-"] {
            let h = headline_of(&format!("{not_a_revision}{title}"), text).unwrap();
            assert_eq!(h.unrevised, None, "{not_a_revision}");
        }
    }

    #[test]
    fn a_long_text_is_read_by_its_end_and_is_never_title_only() {
        let title = "Taiwan plans new tariff cuts on farm goods - Reuters";
        let article = format!(
            "{} Taiwan plans new tariff cuts on farm goods",
            "Word ".repeat(5000)
        );
        let h = headline_of(title, &article).unwrap();
        assert!(!h.title_only);
        assert_eq!(
            h.dropped_suffix, None,
            "the text does not end with the publisher"
        );
        let signed = format!("{} Reuters", "Word ".repeat(5000));
        let h = headline_of(title, &signed).unwrap();
        assert!(!h.title_only);
        assert_eq!(h.key, "taiwan plans new tariff cuts on farm goods");
        // A multi-byte character where the end's window starts.
        let accents = format!("{}é Reuters", "é".repeat(5000));
        assert!(headline_of(title, &accents).is_some());
    }

    #[test]
    fn a_google_news_item_is_title_only_and_loses_its_publisher_suffix() {
        let h = headline_of(
            "Taiwan plans new tariff cuts - Reuters",
            "Taiwan plans new tariff cuts\u{a0}\u{a0}Reuters",
        )
        .unwrap();
        assert_eq!(h.key, "taiwan plans new tariff cuts");
        assert!(h.title_only);
        assert_eq!(h.dropped_suffix.as_deref(), Some(" - Reuters"));
    }

    #[test]
    fn a_suffix_the_text_does_not_name_stays_part_of_the_headline() {
        let h = headline_of("Steel tariffs explained - what changes for importers", "").unwrap();
        assert_eq!(h.key, "steel tariffs explained what changes for importers");
        assert!(h.title_only);
        assert_eq!(h.dropped_suffix, None);
    }

    #[test]
    fn a_pipe_suffix_is_dropped_too_and_a_long_text_is_not_title_only() {
        let text = "Taiwan said on Monday it plans to cut tariffs on farm goods and cars as part \
                    of talks with Washington, officials told reporters. Yahoo Finance";
        let h = headline_of("Taiwan plans new tariff cuts | Yahoo Finance", text).unwrap();
        assert_eq!(h.key, "taiwan plans new tariff cuts");
        assert!(!h.title_only);
    }

    #[test]
    fn generic_headlines_stand_for_no_story() {
        for title in [
            "Markets wrap",
            "Morning briefing - Reuters",
            "Morning briefing: Tuesday 3 June",
            "Top stories this week",
            "What you need to know today",
            "Markets wrap: stocks fall",
        ] {
            assert_eq!(headline_of(title, ""), None, "{title}");
        }
    }

    #[test]
    fn comparable_headlines_lose_wire_prefixes_and_short_trailing_segments() {
        let cases = [
            (
                "First Interstate Debt Downgraded By S/P | Outlet 0009",
                "First Interstate Debt Downgraded By S/P",
            ),
            (
                "Taiwan plans new tariff cuts - Reuters",
                "Taiwan plans new tariff cuts",
            ),
            (
                "Taiwan plans new tariff cuts | AP News",
                "Taiwan plans new tariff cuts",
            ),
            (
                "EU opens steel probe — South China Morning Post",
                "EU opens steel probe",
            ),
            (
                "UPDATE 2-Japan surplus narrows to 7.3 bln",
                "Japan surplus narrows to 7.3 bln",
            ),
            (
                "WRAPUP 1-G7 ministers meet on trade",
                "G7 ministers meet on trade",
            ),
            (
                "EXCLUSIVE-Boeing nears China order",
                "Boeing nears China order",
            ),
            ("Corrected - Gm To Idle Six Plants", "Gm To Idle Six Plants"),
            (
                "ANALYSIS: Tariffs bite US farmers",
                "Tariffs bite US farmers",
            ),
            // Two segments: the attribution and the outlet.
            (
                "Iran Has ANTI-SHIP Missiles Near Gulf - Paper | Outlet 0124",
                "Iran Has ANTI-SHIP Missiles Near Gulf",
            ),
            (
                "UPDATE 1-Bank Of Japan Steps Up Dollar Buying - sources",
                "Bank Of Japan Steps Up Dollar Buying",
            ),
            // A segment that says figures of the story stays; an outlet's name with a number
            // goes.
            (
                "Treasury bill auction results today - 3-month bills",
                "Treasury bill auction results today - 3-month bills",
            ),
            (
                "Japan trade surplus narrows in February - 7.3 bln dlrs",
                "Japan trade surplus narrows in February - 7.3 bln dlrs",
            ),
            (
                "Storm closes schools across the state - 9News",
                "Storm closes schools across the state",
            ),
            // The segment is the headline: too few words would stay.
            (
                "Economic Spotlight - Euroyen Bond Issues Increase | Outlet 0007",
                "Economic Spotlight - Euroyen Bond Issues Increase",
            ),
            ("Brazil - coffee exports", "Brazil - coffee exports"),
            // A long trailing segment is part of the headline.
            (
                "Steel tariffs explained - what changes for importers now",
                "Steel tariffs explained - what changes for importers now",
            ),
            // Words that only look like a prefix, and a prefix with nothing after it.
            (
                "Updated tariff schedule takes effect",
                "Updated tariff schedule takes effect",
            ),
            ("Update on the trade talks", "Update on the trade talks"),
            ("UPDATE 1-", "UPDATE 1-"),
            (
                "Trade-war fears grow in Asia",
                "Trade-war fears grow in Asia",
            ),
            ("", ""),
        ];
        for (title, want) in cases {
            assert_eq!(comparable_headline(title), want, "{title:?}");
        }
    }

    #[test]
    fn a_description_that_is_the_headline_alone_is_title_only() {
        let h = headline_of(
            "EU opens anti-dumping probe into steel",
            "EU opens anti-dumping probe into steel",
        )
        .unwrap();
        assert!(h.title_only);
        assert_eq!(h.key, "eu opens anti dumping probe into steel");
    }
}
