//! The publisher a news aggregator appends to its items' titles: Google News writes
//! "Headline - Publisher" and a description of the headline, two spaces and the publisher.
//! The name is not part of the story: near-duplicate matching leaves it out of the headline
//! (`cluster::headline_of`), and topic scoring out of the words it weighs (a publisher called
//! "Global Trade Review" made a coroner's finding look like trade policy).

/// Longest publisher name taken from a ` - Publisher` suffix, in words.
pub const MAX_PUBLISHER_WORDS: usize = 6;

/// What outlets put between a headline and their name or an attribution ("Title - Reuters",
/// "Title | AP News", "Title — Financial Times").
pub const SUFFIX_SEPARATORS: [&str; 4] = [" - ", " | ", " – ", " — "];

/// The last of [`SUFFIX_SEPARATORS`] in `s`: where it starts (bytes) and which it is. One
/// backward scan that stops at spaces: a `rfind` per separator set up a substring searcher
/// each time, which on a title cost as much as the search (the two headline functions made
/// 58,000 of them in a 150-feed cold pass).
pub fn last_separator(s: &str) -> Option<(usize, &'static str)> {
    let bytes = s.as_bytes();
    (0..bytes.len())
        .rev()
        .filter(|&at| bytes[at] == b' ')
        .find_map(|at| {
            SUFFIX_SEPARATORS
                .iter()
                .find(|sep| bytes[at..].starts_with(sep.as_bytes()))
                .map(|sep| (at, *sep))
        })
}

/// `title` and `text` without the publisher an aggregator's item names at both their ends:
/// a trailing ` - X` (or another of [`SUFFIX_SEPARATORS`]; X of 1 to [`MAX_PUBLISHER_WORDS`]
/// words that read as a name: see [`reads_as_a_name`]) that the text also ends with, compared
/// word by word without case or punctuation. `None` when the item names none so ("Tariffs -
/// what changes" keeps its words), or when nothing would be left of the title.
pub fn without_named_publisher<'a>(title: &'a str, text: &'a str) -> Option<(&'a str, &'a str)> {
    let (at, sep) = last_separator(title)?;
    let head = title[..at].trim_end();
    let publisher: Vec<&str> = words(&title[at + sep.len()..]).collect();
    if head.is_empty()
        || !(1..=MAX_PUBLISHER_WORDS).contains(&publisher.len())
        || !reads_as_a_name(&publisher)
    {
        return None;
    }
    // The text's last words, from the end, against the publisher's, from the end.
    let mut end = text.len();
    for expected in publisher.iter().rev() {
        let before = text[..end].trim_end_matches(|c: char| !c.is_alphanumeric());
        let start = before.rfind(|c: char| !c.is_alphanumeric()).map_or(0, |i| {
            i + before[i..].chars().next().map_or(1, char::len_utf8)
        });
        let word = &before[start..];
        if word.is_empty() || !same_word(word, expected) {
            return None;
        }
        end = start;
    }
    // A text that repeats the title whole, separator included ("Brexit - new tariffs on steel
    // imports" as both), says nothing of a publisher: the segment may be the headline's own
    // words. An aggregator sets the name apart otherwise (Google: two spaces).
    let before = text[..end].trim_end();
    if before.ends_with(sep.trim()) {
        return None;
    }
    Some((head, before))
}

/// Whether these words read as a publisher's name: each capitalized (or a figure, or in
/// capitals), but for the joining words names hold ("The Times of India", "Le Monde"). A
/// headline's own words after a dash are mostly in lower case ("Update - Tariffs on Canadian
/// lumber", "Commission decision - Safeguard measures on steel imports"): a description that
/// repeats them must not take them for a name.
pub fn reads_as_a_name(words: &[&str]) -> bool {
    const JOINING: &[&str] = &[
        "and", "at", "de", "del", "der", "des", "di", "du", "el", "et", "for", "in", "la", "le",
        "of", "the", "und", "y",
    ];
    let capitalized = |w: &&str| {
        w.chars()
            .next()
            .is_some_and(|c| c.is_uppercase() || c.is_ascii_digit())
    };
    words.iter().any(capitalized)
        && words
            .iter()
            .all(|w| capitalized(w) || JOINING.contains(&w.to_lowercase().as_str()))
}

/// The runs of letters and digits of `s`.
fn words(s: &str) -> impl DoubleEndedIterator<Item = &str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

fn same_word(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The scan finds what the last match of any separator by `rfind` is, in titles
        /// dense with spaces, dashes, bars and the dashes of several bytes.
        #[test]
        fn the_last_separator_is_the_rightmost_rfind(s in "[a |–—é-]{0,40}") {
            let by_rfind = SUFFIX_SEPARATORS
                .iter()
                .filter_map(|sep| s.rfind(sep).map(|at| (at, *sep)))
                .max_by_key(|(at, _)| *at);
            proptest::prop_assert_eq!(last_separator(&s), by_rfind);
        }
    }

    /// A title, a text, and what is left of the two without the publisher.
    type Case<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);

    #[test]
    fn an_aggregator_items_publisher_is_left_out_of_title_and_text() {
        let cases: &[Case] = &[
            (
                "Hospital trust breached duty of care, coroner finds - Global Trade Review",
                "Hospital trust breached duty of care, coroner finds\u{a0}\u{a0}Global Trade Review",
                Some((
                    "Hospital trust breached duty of care, coroner finds",
                    "Hospital trust breached duty of care, coroner finds",
                )),
            ),
            (
                "EU fines carmaker | AP NEWS",
                "EU fines carmaker  ap news.",
                Some(("EU fines carmaker", "EU fines carmaker")),
            ),
            // The text does not end with it: an article's title with a subtitle.
            (
                "Tariffs - what changes",
                "Importers face new duties from Monday. Here is what changes for them.",
                None,
            ),
            // Words of the headline, not a name, though the text ends with them too.
            (
                "Tariffs - what changes",
                "Importers face new duties from Monday, and here is what changes",
                None,
            ),
            (
                "Update - Tariffs on Canadian lumber",
                "Commerce issued an update on tariffs on Canadian lumber",
                None,
            ),
            (
                "Indian rupee slips - The Times of India",
                "Indian rupee slips  The Times of India",
                Some(("Indian rupee slips", "Indian rupee slips")),
            ),
            // Too long to be a name, or nothing before it.
            (
                "Steel - one two three four five six seven",
                "x one two three four five six seven",
                None,
            ),
            (" - Reuters", "Reuters", None),
            ("No separator here", "No separator here", None),
            // The text repeats the title, separator and all: no publisher to tell.
            (
                "Brexit - new tariffs on steel imports",
                "Brexit - new tariffs on steel imports",
                None,
            ),
            (
                "EU fines carmaker | AP News",
                "EU fines carmaker | AP News",
                None,
            ),
            // A word ending the text that only ends with the name is not the name.
            (
                "Port strike ends - News",
                "Port strike ends  FakeNews",
                None,
            ),
        ];
        for (title, text, want) in cases {
            assert_eq!(without_named_publisher(title, text), *want, "{title:?}");
        }
    }
}
