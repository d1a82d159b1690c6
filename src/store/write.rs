//! Everything that changes the database. Each public method is one transaction on the writer.
//!
//! Transactions start IMMEDIATE: they take SQLite's write lock at BEGIN, so when another
//! program holds it the busy timeout applies (a deferred transaction that reads first and then
//! writes gets SQLITE_BUSY at once instead).

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::idle::polled_sql;
use super::key_filter::KeyFilter;
use super::{DueTimes, PollJob, Store, StoreError, StoryToScore, WriteJob, secs};
use crate::domain::{CopyWeight, Entry, Headline, Source, StoryId, TopicScore, without_tracking};

/// How far apart (seconds) a title-only copy and the story it joins by headline may be
/// published: two days. A headline alone is weaker evidence than text, and a wire story's
/// aggregator copies run within hours of it, while headlines of recurring items come back.
pub const HEADLINE_WINDOW_SECS: i64 = 2 * 24 * 3600;

/// One entry to store, with what the pipeline worked out about it.
#[derive(Debug, Clone)]
pub struct EntryWrite {
    /// The normalized entry.
    pub entry: Entry,
    /// Its near-duplicate signature (`None` when the source opts out of clustering).
    pub signature: Option<Vec<u8>>,
    /// What the cluster index says this entry is a near-copy of, with the evidence: the
    /// candidates in order of preference (the stored stories, best first, then an earlier
    /// entry of the same poll), of which the entry joins the first the writer accepts (see
    /// `near_copy_refusal`). Exact keys (same canonical URL or fingerprint) take
    /// precedence over them.
    pub near_matches: Vec<NearMatch>,
    /// The entry's headline for the title-only rule (`None` when the source opts out of
    /// clustering or the headline is too generic to stand for a story): a title-only copy
    /// joins a story published within [`HEADLINE_WINDOW_SECS`] of it that holds a copy with
    /// the same headline (see `cluster::headline_of`).
    pub headline: Option<Headline>,
    /// Topic scores of the entry's title and text (applied when it represents its story).
    /// `None`: not worked out yet. A copy of a story already stored rarely comes to represent
    /// it, so the pipeline may leave it unscored; the poll's hook then scores it on the writer
    /// thread if it does ([`PollHook::score`]).
    pub scores: Option<Vec<TopicScore>>,
    /// Set when the entry's row holds this hash for the same content, in the form an earlier
    /// release wrote (`normalize::content_hash_in_stored_form`): the writer then only
    /// renews the row's hash, so an upgrade does not take every item for an edit; or the hash
    /// it holds already, for an unchanged entry whose stored base differs from its own
    /// (`Entry::base_url`). Such a write changes nothing else than the hash, the stored base
    /// when the entry has one of its own, and the stored enclosures and image (a row stored
    /// before they were read takes them: see `normalize::is_earlier_hash_of`); its signature
    /// and scores are left empty.
    pub replaces_hash: Option<String>,
}

/// One near-copy candidate of an entry ([`EntryWrite::near_matches`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NearMatch {
    /// What the entry would join.
    pub of: NearCopyOf,
    /// Human-readable evidence (`text containment 0.93 (jaccard 0.73), title 0.38, …`).
    pub evidence: String,
}

/// What an entry is a near-copy of ([`NearMatch::of`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NearCopyOf {
    /// A story already stored.
    Story(StoryId),
    /// An earlier entry of the same poll (its index in the poll's entries): the entry joins
    /// whichever story that one was written to, a new one included. Without this, copies
    /// that arrive in one poll (an original and its update, an aggregator's outlets, a first
    /// poll's backlog) stayed apart for good, while the same copies polled apart joined.
    EarlierEntry(usize),
}

/// How a poll ended, as recorded against the source.
#[derive(Debug, Clone, PartialEq)]
pub enum PollOutcome {
    /// A feed was fetched and parsed.
    Fetched {
        /// HTTP status (200).
        http_status: u16,
        /// Body bytes.
        bytes: u64,
        /// New validators to send next time.
        etag: Option<String>,
        /// New validators to send next time.
        last_modified: Option<String>,
        /// Identities the feed listed whose entries retention has pruned: their tombstones
        /// are still needed, and the source's others were missed by this read; the poll's
        /// write says so (see [`Store::prune`]). `None` when the read listed no item it could
        /// identify: a feed that comes back empty (a CMS failing behind a 200) is no evidence
        /// that the source dropped its pruned items, and counting it as such would let them
        /// come back as new once the grace ran out.
        listed_pruned: Option<Vec<String>>,
        /// Whether the read saw every item the feed lists: false when the middle of a very
        /// long feed was left unread (see `parse::parse_feed_for`). Such a read clears the
        /// mark of each pruned identity it found listed, but marks no tombstone missed: an
        /// identity it did not see may be among the items it did not read.
        read_whole: bool,
    },
    /// 304: nothing to do.
    NotModified {
        /// Validators (servers may refresh them on 304).
        etag: Option<String>,
        /// Validators (servers may refresh them on 304).
        last_modified: Option<String>,
    },
    /// The poll failed.
    Failed {
        /// Stable error label (`timeout`, `parse`, `http_status`...).
        kind: String,
        /// The full message with its cause chain.
        message: String,
        /// HTTP status when the server answered.
        http_status: Option<u16>,
        /// Do not ask again before this (Retry-After).
        retry_not_before: Option<DateTime<Utc>>,
        /// 410 Gone: disable the source with this reason.
        disable: Option<String>,
    },
}

/// A copy chosen to represent its story again (see [`Store::represent_again`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RepresentativePick {
    pub story: StoryId,
    /// The representative the choice was made against (`Outranked::representative`).
    pub was: Option<i64>,
    pub entry: i64,
    /// The entry's content hash when it was chosen (`Candidate::content_hash`).
    pub content_hash: String,
    pub title: String,
    pub link: Option<String>,
    /// The entry's plain text, as the story keeps it.
    pub text: String,
    /// JSON array, as stored.
    pub authors: String,
    /// The topic scores of the title and text.
    pub scores: Vec<TopicScore>,
}

impl PollOutcome {
    /// The label stored as the source's last outcome.
    pub fn label(&self) -> &str {
        match self {
            PollOutcome::Fetched { .. } => "ok",
            PollOutcome::NotModified { .. } => "not_modified",
            PollOutcome::Failed { kind, .. } => kind,
        }
    }
}

/// Everything one poll of one source writes, in one transaction.
#[derive(Debug, Clone)]
pub struct PollRecord {
    /// Source name.
    pub source: String,
    /// The URL the poll fetched: the source's URL when the poll began. A reload may give the
    /// source another URL while the poll runs; what the poll learnt about its URL (validators,
    /// a move, a 410, failures, Retry-After, the next due time) is recorded only if the source
    /// still has this one. A reload that renamed the source (and perhaps gave its name to
    /// another feed) leaves the poll to the row with this URL (see `source_row`).
    pub url: String,
    /// The stored source's row id, read with its poll state when the poll began: the poll is
    /// written to that row whatever a reload renamed or swapped meanwhile (rows keep their
    /// ids, and their URLs, through renames). `None` (a record made without reading the
    /// state) finds the row by name and URL instead (see `source_row`).
    pub source_row: Option<i64>,
    /// When the poll started.
    pub started_at: DateTime<Utc>,
    /// How long it took.
    pub duration: Duration,
    /// What happened.
    pub outcome: PollOutcome,
    /// When the source is due next.
    pub next_due: DateTime<Utc>,
    /// What `next_due` was worked out under, when it is a schedule slot plus the source's
    /// jitter: the writer moves it to the jitter in force should a reload have changed
    /// `max_jitter_secs` while the poll ran (see [`DueJitter`]). `None` for other times (a
    /// crash's backoff) and in tests that need no such move.
    pub due_jitter: Option<DueJitter>,
    /// Where a permanent redirect pointed (config should be updated).
    pub moved_to: Option<String>,
    /// The URL the feed was fetched from, when a redirect made it differ from the source's
    /// configured URL: relative URLs in the entries' HTML resolve against it when served,
    /// except in an entry with a base of its own (`Entry::base_url`, from `xml:base`).
    pub base_url: Option<String>,
    /// Parsed, normalized entries (empty unless fetched).
    pub entries: Vec<EntryWrite>,
    /// Every identity the read listed, as ingest settled it (`shared:` ones included): those
    /// of `entries` and those ingest took no further (unchanged items, pruned ones, items
    /// passed over for their age or the per-poll cap). Empty unless fetched. The entries' own
    /// identities count as listed whether or not they are here. A new entry that joins a
    /// story holding an entry of its source with its title and text (and date) is taken for
    /// that item under a new id only when that entry's identity is not listed: the item moved
    /// to a new id, rather than a sibling with the same words appeared (see `write_entry`).
    pub listed: HashSet<String>,
    /// `[cluster] window_days` as the poll found it: how far apart (by publication time) a
    /// new entry and a story may be for the entry to join it on the fingerprint of its title
    /// and text, the window the near-duplicate index compares within (see `story_keys`). A
    /// title-only entry's fingerprint is held to [`HEADLINE_WINDOW_SECS`] instead.
    pub cluster_window: chrono::Duration,
}

/// The `max_jitter_secs` and schedule a poll's due time was worked out under
/// ([`PollRecord::due_jitter`]), with the scheduler's arithmetic to move it.
///
/// A reload that changes `max_jitter_secs` moves every stored due time to its new offset in
/// the same slot and records the new jitter, in one transaction ([`Store::rejitter_due_times`]),
/// before the ingestor takes the new setting. A poll that began under the old jitter and is
/// written after that move would store an old-jitter time: the source's next slot was then
/// polled twice once the jitter had grown. The writer compares the poll's jitter with the one
/// recorded and moves the time in the poll's own transaction, so whichever comes first, the
/// reload's move or the poll's write, the time stored is the recorded jitter's: also when the
/// reload commits the move and then fails, and the ingestor keeps the old jitter until the
/// reload is retried.
#[derive(Debug, Clone)]
pub struct DueJitter {
    /// The jitter the time was worked out under.
    pub max_jitter: Duration,
    /// The schedule it was worked out by, as written: a reload that changed the schedule
    /// meanwhile has its own rule (the dispatcher's), and the time is left to it.
    pub schedule: String,
    /// The moment it was worked out from: the end of the poll, or after a failure the end of
    /// its backoff (or the server's Retry-After). A moved time is never at or before it.
    pub after: DateTime<Utc>,
    /// `(schedule, source, due, after, old_max, new_max)` → the time under `new_max`, `None`
    /// when it stays (`scheduler::due_under_jitter`).
    pub moved: DueMover,
}

/// The scheduler's move of a due time to another jitter: see [`DueJitter::moved`].
pub type DueMover =
    fn(&str, &str, DateTime<Utc>, DateTime<Utc>, Duration, Duration) -> Option<DateTime<Utc>>;

/// The meta key of the `max_jitter_secs` the stored due times were worked out under, in
/// milliseconds.
const MAX_JITTER_KEY: &str = "max_jitter_ms";

/// The `max_jitter_secs` the stored due times are worked out under (recorded at start and on
/// reload by [`Store::rejitter_due_times`]), if one is recorded.
fn recorded_max_jitter(tx: &Prepared<'_>) -> Result<Option<Duration>, StoreError> {
    Ok(query_opt(
        tx,
        "SELECT value FROM meta WHERE key = ?1",
        [MAX_JITTER_KEY],
        |r| r.get::<_, String>(0),
    )?
    .and_then(|v| v.parse::<u64>().ok())
    .map(Duration::from_millis))
}

/// The time a poll's record stores as its source's next due time: `record.next_due`, moved
/// to the `recorded` jitter ([`recorded_max_jitter`]) when the poll worked it out under
/// another (see [`DueJitter`]).
fn next_due_under_recorded_jitter(
    recorded: Option<Duration>,
    stored_schedule: &str,
    record: &PollRecord,
) -> DateTime<Utc> {
    let (Some(jitter), Some(recorded)) = (&record.due_jitter, recorded) else {
        return record.next_due;
    };
    if recorded == jitter.max_jitter || stored_schedule != jitter.schedule {
        return record.next_due;
    }
    (jitter.moved)(
        &jitter.schedule,
        &record.source,
        record.next_due,
        jitter.after,
        jitter.max_jitter,
        recorded,
    )
    .unwrap_or(record.next_due)
}

/// Renames the rows of sources whose name changed in the config. A row's entries came from its
/// URL, so the row follows its feed: a configured source with the URL of a stored row of
/// another name is that row renamed, even when another configured source now has the row's
/// old name, and names swapped between sources (or passed round a longer cycle) are renames
/// too (see [`renames_by_url`]). Entries, stories, tombstones, validators and schedule stay
/// with the row, as in a feed reader that renames a subscription; without this, the renamed
/// source was a new one that ingested the feed again, every story listed the outlet twice,
/// and the old name's new feed was credited with the old feed's stories.
///
/// Where the URL does not single out one row for one configured source (two configured
/// sources share it, or two stored rows do), the name decides: a configured name the table
/// does not hold, with the URL of a row whose name the config no longer lists, is that row
/// renamed; when several such rows share the URL, the one configured until now wins, then the
/// one polled last. A name and a URL changed together are a new source. Says whether it
/// renamed any.
fn rename_moved_names(
    tx: &Connection,
    sources: &[Source],
    stored: &mut std::collections::HashMap<String, StoredSource>,
) -> Result<bool, StoreError> {
    let by_url = renames_by_url(sources, stored);
    let mut renamed = !by_url.is_empty();
    // Through names no row holds: a swap or a cycle would otherwise hit the UNIQUE name at its
    // first step. All in the caller's transaction, so no other connection sees them.
    let mut taken: HashSet<String> = stored.keys().cloned().collect();
    taken.extend(sources.iter().map(|s| s.name.clone()));
    let mut moving = Vec::with_capacity(by_url.len());
    for (old, new) in by_url {
        let temporary = (0..)
            .map(|n| format!("tradefeed renaming {n}"))
            .find(|t| !taken.contains(t))
            .expect("an unbounded range");
        taken.insert(temporary.clone());
        exec(
            tx,
            "UPDATE sources SET name = ?2 WHERE name = ?1",
            params![old, temporary],
        )?;
        let row = stored.remove(&old).expect("planned from the stored rows");
        moving.push((old, temporary, new, row));
    }
    for (old, temporary, new, row) in moving {
        exec(
            tx,
            "UPDATE sources SET name = ?2 WHERE name = ?1",
            params![temporary, new],
        )?;
        tracing::info!(from = %old, to = %new, "source renamed; its stories and state stay");
        stored.insert(new, row);
    }

    let configured: HashSet<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    for s in sources {
        if stored.contains_key(&s.name) {
            continue;
        }
        let Some(old) = stored
            .iter()
            .filter(|(name, row)| row.url == s.url && !configured.contains(name.as_str()))
            .max_by_key(|(_, row)| (row.in_config, row.last_attempt))
            .map(|(name, _)| name.clone())
        else {
            continue;
        };
        exec(
            tx,
            "UPDATE sources SET name = ?2 WHERE name = ?1",
            params![old, s.name],
        )?;
        tracing::info!(from = %old, to = %s.name, "source renamed; its stories and state stay");
        let row = stored.remove(&old).expect("found above");
        stored.insert(s.name.clone(), row);
        renamed = true;
    }
    Ok(renamed)
}

/// The renames (stored name, configured name) that make each stored row follow its feed: for
/// each URL held by exactly one configured source and exactly one stored row, under different
/// names. A rename onto the name of a row that keeps it (no configured source has that row's
/// URL alone) cannot be made, names being unique, and is left to [`rename_moved_names`]'s
/// match by name; the row it would have moved then keeps its name too, which may block
/// another, hence the loop. Sorted by stored name, so the log reads the same every time.
fn renames_by_url(
    sources: &[Source],
    stored: &std::collections::HashMap<String, StoredSource>,
) -> Vec<(String, String)> {
    let mut configured_at: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for s in sources {
        configured_at
            .entry(s.url.as_str())
            .or_default()
            .push(&s.name);
    }
    let mut stored_at: std::collections::HashMap<&str, Vec<&str>> = Default::default();
    for (name, row) in stored {
        stored_at.entry(row.url.as_str()).or_default().push(name);
    }
    let mut planned: std::collections::HashMap<&str, &str> = configured_at
        .iter()
        .filter_map(
            |(url, configured)| match (&configured[..], stored_at.get(url)) {
                ([new], Some(rows)) if rows.len() == 1 && rows[0] != *new => Some((rows[0], *new)),
                _ => None,
            },
        )
        .collect();
    loop {
        let blocked: Vec<&str> = planned
            .iter()
            .filter(|(_, new)| stored.contains_key(**new) && !planned.contains_key(**new))
            .map(|(old, _)| *old)
            .collect();
        if blocked.is_empty() {
            break;
        }
        for old in blocked {
            planned.remove(old);
        }
    }
    let mut renames: Vec<(String, String)> = planned
        .into_iter()
        .map(|(old, new)| (old.to_string(), new.to_string()))
        .collect();
    renames.sort();
    renames
}

/// A source's row as `sync_sources` compares it with the config.
struct StoredSource {
    url: String,
    schedule: String,
    in_config: bool,
    enabled: bool,
    priority: i32,
    /// When it was last polled (`None`: never).
    last_attempt: Option<DateTime<Utc>>,
    /// Failed polls in a row: above 0, its next time is the schedule's first after the backoff.
    failures: u32,
    /// Due at once (`next_due` NULL): never polled, or not yet polled at a new URL.
    due_at_once: bool,
}

/// Where one written entry ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// Index into `PollRecord::entries`.
    pub index: usize,
    /// The story it belongs to.
    pub story: StoryId,
    /// A new story was created for it.
    pub new_story: bool,
    /// It joined an existing story on the near-duplicate index's word (not an exact key).
    pub near_duplicate: bool,
}

/// Work done on the writer thread for one poll, just before and just after its entries are
/// written. Hooks of successive polls run strictly in queue order, so what one poll's
/// `after_write` records is what the next poll's `before_write` sees: the ingest keeps its
/// near-duplicate index here, and two copies written moments apart cannot miss each other.
pub trait PollHook: Send {
    /// Before the poll's entries are written: may annotate them (e.g. `near_matches`), or drop
    /// their scores (`EntryWrite::scores` set to `None`) to have them worked out by `score`
    /// (when the topic profiles the poll scored with have been replaced since).
    fn before_write(&mut self, entries: &mut [EntryWrite]);
    /// After the poll's writes succeeded, with where each new entry went. (Its batch may still
    /// fail to commit: see [`Store::record_poll_with`].)
    fn after_write(&mut self, result: &PollResult);
    /// The batch holding this poll's writes (`result`, as given to `after_write`) failed to
    /// commit: nothing of it exists, and the ids of stories it created will be given to other
    /// stories. Undo what `after_write` recorded.
    fn rolled_back(&mut self, result: &PollResult);
    /// The topic scores of an entry written without them (`EntryWrite::scores` is `None`),
    /// asked for only when the entry comes to represent its story.
    fn score(&mut self, entry: &Entry) -> Vec<TopicScore>;
    /// Whether `new`, a near-copy, is the same item as one its own source listed before
    /// under another id (`own_title`, `own_html`: that entry's stored title and HTML): its reissue, correction or revision, not the source's next templated notice. A
    /// near-copy joins a story holding entries of its own source only then (see
    /// `near_copy_refusal`). Asked only for entries carrying `near_matches`.
    fn one_item_of_a_feed(&self, own_title: &str, own_html: &str, new: &Entry) -> bool;
    /// Whether `new`, a near-copy from another feed than any of the story's, is rather the
    /// story's templated sibling: the same text filled in for another country, company or
    /// entity (`title`, `text`: the story's stored title and text, its representative's).
    /// The copy does not join that story: the writer asks its next candidate, and with none
    /// left the copy starts a story of its own, its evidence naming the sibling's story (see
    /// `near_copy_refusal`). Asked only for entries carrying `near_matches`.
    fn templated_siblings(&self, title: &str, text: &str, new: &Entry) -> bool;
}

/// A source whose schedule a reload changed while its poll ran ([`PollResult::schedule_moved`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MovedSchedule {
    /// The source's name now.
    pub source: String,
    /// Its schedule now, as written in the config.
    pub schedule: String,
    /// The `max_jitter_secs` the stored due times are worked out under now, if one is
    /// recorded: a reload that also changed it records it before it hands the daemon's
    /// scheduler the new one, and a time by the old one could poll a slot twice.
    pub max_jitter: Option<Duration>,
}

/// What a poll changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PollResult {
    /// Entries seen for the first time.
    pub new_entries: usize,
    /// Known entries whose content changed (updated in place).
    pub updated_entries: usize,
    /// Known entries with no change, plus pruned ones ignored.
    pub unchanged_entries: usize,
    /// Unchanged entries (counted above) whose stored base URL changed (see `write_entry`):
    /// what is served of them changes.
    pub rebased_entries: usize,
    /// Unchanged entries (counted above) whose stored enclosures or image changed: a row
    /// stored before they were read took them (see `write_entry`). What is served of them
    /// changes.
    pub remedia_entries: usize,
    /// New entries taken for a stored item under a new id whose row took a link that is served
    /// differently (counted as unchanged too, see `write_entry`): the link served changes. A
    /// row that took only the new identity (the same link, or one differing only in tracking
    /// parameters) is counted as unchanged alone: nothing served changed.
    pub rekeyed_entries: usize,
    /// New stories created.
    pub new_stories: usize,
    /// Where each new entry went, and the story of each edited one with a signature (for the
    /// near-duplicate index).
    pub placements: Vec<Placement>,
    /// The source no longer had the URL polled ([`PollRecord::url`]): the entries and the
    /// fetch log line were stored, but none of the URL's state, no next due time either.
    /// Its due time in the database does not reflect this poll.
    pub url_changed: bool,
    /// The next due time stored for the source: the record's, or that time moved to the
    /// jitter recorded when the poll worked it out under another (see [`DueJitter`]). `None`
    /// when none was stored (`url_changed`).
    pub next_due: Option<DateTime<Utc>>,
    /// The source the poll was written to, under its name and schedule as this transaction
    /// read them, when that schedule is no longer the one the poll worked its due time out by
    /// ([`DueJitter::schedule`]): a reload changed it while the poll ran (and may have renamed
    /// the source), and the time stored is the old schedule's until the dispatcher corrects
    /// it. Read here, not from the daemon's config: the reload records the sources before it
    /// tells the dispatcher, and a poll written in between would otherwise go unnoticed.
    pub schedule_moved: Option<MovedSchedule>,
}

impl Store {
    /// Makes the sources table match the config: adds new names, renames a row whose source
    /// kept its URL under a new name (see [`rename_moved_names`]), updates changed ones, marks
    /// removed ones as out of config (their stories stay). A changed URL is a new feed: its
    /// validators are forgotten and it is due at once (a poll of the old URL still in flight
    /// records its entries but none of that state: see [`PollRecord::url`]). A changed
    /// schedule takes effect from
    /// the source's last poll: its next time becomes `next_after(source, last_attempt,
    /// failures)` (the caller's schedule arithmetic, with its backoff after `failures` failed
    /// polls in a row; the store does none), so `@hourly` → `@daily` does not poll now, and a
    /// source in failure backoff is next due by the new schedule after its backoff rather
    /// than at the old schedule's slot (a failing yearly source moved to `*/5` waited for
    /// January). A source due at once (never polled, or not yet polled at a new URL) stays
    /// due at once.
    ///
    /// Reads the table once and writes only rows that differ: every start and every reload
    /// runs this, and with nothing changed (the usual case) it writes nothing at all.
    pub async fn sync_sources(
        &self,
        sources: &[Source],
        next_after: impl Fn(&Source, DateTime<Utc>, u32) -> DateTime<Utc> + Send + 'static,
    ) -> Result<(), StoreError> {
        let sources = sources.to_vec();
        let shown_changed = self
            .write(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut stored: std::collections::HashMap<String, StoredSource> = tx
                    .prepare(
                        "SELECT name, url, schedule, in_config, enabled, priority, last_attempt,
                            consecutive_failures, next_due IS NULL
                     FROM sources",
                    )?
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            StoredSource {
                                url: r.get(1)?,
                                schedule: r.get(2)?,
                                in_config: r.get(3)?,
                                enabled: r.get(4)?,
                                priority: r.get(5)?,
                                last_attempt: r.get::<_, Option<i64>>(6)?.map(super::time),
                                failures: r.get(7)?,
                                due_at_once: r.get(8)?,
                            },
                        ))
                    })?
                    .collect::<Result<_, _>>()?;
                // A rename or a new URL changes what the feeds show of a story's sources (names,
                // the RSS <source url>): their cached renderings must go.
                let mut shown_changed = rename_moved_names(&tx, &sources, &mut stored)?;
                for s in &sources {
                    let before = stored.remove(&s.name);
                    if let Some(before) = &before
                        && before.in_config
                        && before.url == s.url
                        && before.schedule == s.schedule.as_str()
                        && before.enabled == s.enabled
                        && before.priority == s.priority
                    {
                        continue;
                    }
                    exec(
                        &tx,
                        "INSERT INTO sources (name, url, schedule, in_config, enabled, priority)
                     VALUES (?1, ?2, ?3, 1, ?4, ?5)
                     ON CONFLICT (name) DO UPDATE SET url = excluded.url,
                        schedule = excluded.schedule, in_config = 1,
                        enabled = excluded.enabled, priority = excluded.priority",
                        params![s.name, s.url, s.schedule.as_str(), s.enabled, s.priority],
                    )?;
                    let Some(before) = before else { continue };
                    shown_changed |= before.url != s.url;
                    if before.url != s.url {
                        // The entries that resolve against the source's URL (no base of their
                        // own) were fetched from the old one: they keep it as their base, so
                        // that they are served as before and a poll of the new URL can tell an
                        // item whose relative URLs now resolve against it from an edited one
                        // (see `ingest`). The next poll that lists one renews its base.
                        exec(
                            &tx,
                            "UPDATE entries SET base_url = ?2
                              WHERE source_id = (SELECT id FROM sources WHERE name = ?1)
                                AND base_url IS NULL",
                            params![s.name, before.url],
                        )?;
                        // A new URL is a new feed: forget validators, the move and any 410.
                        // The old URL is kept for the entries with a relative base of their
                        // own, which resolved against it (see `KnownEntries::previous_url`).
                        exec(
                            &tx,
                            "UPDATE sources SET etag = NULL, last_modified = NULL, moved_to = NULL,
                            disabled_reason = NULL, consecutive_failures = 0,
                            retry_not_before = NULL, next_due = NULL, previous_url = ?2
                         WHERE name = ?1",
                            params![s.name, before.url],
                        )?;
                    } else if before.schedule != s.schedule.as_str()
                    && let Some(last) = before.last_attempt
                    // Due at once because an earlier reload changed its URL: the last poll
                    // was of the old URL, and the new one is still to be polled at once.
                    && !before.due_at_once
                    {
                        exec(
                            &tx,
                            "UPDATE sources SET next_due = ?2 WHERE name = ?1",
                            params![s.name, secs(next_after(s, last, before.failures))],
                        )?;
                    }
                }
                // What is left was not in this config.
                for (name, before) in &stored {
                    if before.in_config {
                        exec(
                            &tx,
                            "UPDATE sources SET in_config = 0 WHERE name = ?1",
                            [name],
                        )?;
                    }
                }
                tx.commit()?;
                Ok(shown_changed)
            })
            .await?;
        if shown_changed {
            self.bump_version();
        }
        Ok(())
    }

    /// Deletes the fetch log's lines (one per poll, for debugging) from before `before`, at
    /// most `batch` per write job. Returns how many lines and how many jobs. The log would
    /// otherwise only be pruned with the entries; a source polled every minute writes 1,440
    /// lines a day. Batches let polls' writes take turns with the first prune of a log that
    /// grew for a year, and each finds its lines through the log's index ([`FETCH_LOG_DELETE`]).
    /// The caller may drop the future between batches (at shutdown): each batch is atomic.
    pub async fn prune_fetch_log(
        &self,
        before: DateTime<Utc>,
        batch: usize,
    ) -> Result<(usize, usize), StoreError> {
        let before = secs(before);
        let batch = batch.max(1);
        let (mut lines, mut jobs) = (0, 0);
        loop {
            let deleted = self
                .write(move |conn| {
                    Ok(conn.execute(FETCH_LOG_DELETE, params![before, batch as i64])?)
                })
                .await?;
            lines += deleted;
            jobs += 1;
            if deleted < batch {
                return Ok((lines, jobs));
            }
        }
    }

    /// Sets when a source is next due, if its URL is still `url` and its schedule still
    /// `schedule` (the line as written); returns whether it was set. For a due time worked out
    /// by `schedule` from a poll of `url`: a reload that gave the source another URL since made
    /// it due at once by the new one, and one that gave it another schedule worked out its
    /// time by that schedule (`sync_sources`); either must stand.
    pub async fn set_next_due(
        &self,
        source: &str,
        url: &str,
        schedule: &str,
        due: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (source, url, schedule) = (source.to_string(), url.to_string(), schedule.to_string());
        self.write(move |conn| {
            // URL and schedule are checked in the same statement: a check read before it
            // could be overtaken by a reload's write.
            let rows = conn.execute(
                "UPDATE sources SET next_due = ?2 WHERE name = ?1 AND url = ?3 AND schedule = ?4",
                params![source, secs(due), url, schedule],
            )?;
            Ok(rows > 0)
        })
        .await
    }

    /// Replaces sources' due times: each `(name, read, corrected)` sets the next due time and
    /// Retry-After of `corrected`, but only if the source's stored times are still those of
    /// `read` (a poll recorded since then has worked out newer ones). Returns the names of
    /// the sources changed.
    pub async fn correct_due_times(
        &self,
        corrections: Vec<(String, DueTimes, DueTimes)>,
    ) -> Result<Vec<String>, StoreError> {
        if corrections.is_empty() {
            return Ok(Vec::new());
        }
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut changed = Vec::new();
            for (name, read, corrected) in corrections {
                let rows = exec(
                    &tx,
                    "UPDATE sources SET next_due = ?2, retry_not_before = ?3
                      WHERE name = ?1 AND next_due IS ?4 AND retry_not_before IS ?5
                        AND consecutive_failures = ?6",
                    params![
                        name,
                        corrected.next_due.map(secs),
                        corrected.retry_not_before.map(secs),
                        read.next_due.map(secs),
                        read.retry_not_before.map(secs),
                        read.consecutive_failures,
                    ],
                )?;
                if rows > 0 {
                    changed.push(name);
                }
            }
            tx.commit()?;
            Ok(changed)
        })
        .await
    }

    /// Records one poll: the attempt, the source's new state and every entry, atomically.
    pub async fn record_poll(&self, record: PollRecord) -> Result<PollResult, StoreError> {
        self.record_poll_with(record, None).await
    }

    /// [`Store::record_poll`], with a hook run on the writer thread around the write.
    ///
    /// Polls queued together are written in one transaction (group commit). A poll that fails
    /// leaves nothing behind and the others still commit: the transaction is rolled back and
    /// the batch written again with a savepoint per poll (hooks of polls already written get
    /// `rolled_back`, then run again). The answer comes only once the whole transaction has
    /// committed. A hook's `after_write` may therefore have seen a write whose batch then
    /// failed to commit; stories it remembers may not exist, and the store checks a near
    /// match's story before using it.
    pub async fn record_poll_with(
        &self,
        record: PollRecord,
        hook: Option<Box<dyn PollHook>>,
    ) -> Result<PollResult, StoreError> {
        self.queue_poll(record, hook).await?.result().await
    }

    /// The first half of [`Store::record_poll_with`]: hands the poll to the writer's queue
    /// (waiting while the queue is full) and returns at once. The poll is written whether or
    /// not [`QueuedPoll::result`] is awaited.
    pub async fn queue_poll(
        &self,
        record: PollRecord,
        hook: Option<Box<dyn PollHook>>,
    ) -> Result<QueuedPoll, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit(WriteJob::Poll(Box::new(PollJob {
            record,
            hook,
            reply,
        })))
        .await?;
        Ok(QueuedPoll { answer })
    }

    /// Replaces the topic scores of stories (re-scoring after a profile change), each with
    /// the scores of the story as it was read. Returns the stories whose scores were not
    /// written: those gone since the read, and those whose representative, title or text
    /// changed since. The stories were read on another connection before this job ran, and a
    /// poll in between may have given one another representative or an edited text, with
    /// scores of its own: scores of what was read would overwrite them with those of a text
    /// the story no longer has. Read again, such a story is scored afresh. A story that a
    /// prune deleted must not get scores back without it (SQLite does not check foreign keys
    /// here); read again, it is simply not found.
    pub async fn replace_scores(
        &self,
        scores: Vec<(StoryToScore, Vec<TopicScore>)>,
    ) -> Result<Vec<StoryId>, StoreError> {
        let not_written = self
            .write(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut not_written = Vec::new();
                {
                    let tx = &Prepared::new(&tx);
                    for (read, s) in &scores {
                        let unchanged = query_opt(
                            tx,
                            "SELECT 1 FROM stories WHERE id = ?1 AND representative IS ?2
                                AND title = ?3 AND text = ?4",
                            params![read.story, read.representative, read.title, read.text],
                            |_| Ok(()),
                        )?;
                        if unchanged.is_some() {
                            write_scores(tx, read.story, s, false)?;
                        } else {
                            not_written.push(read.story);
                        }
                    }
                }
                tx.commit()?;
                Ok(not_written)
            })
            .await?;
        self.bump_version();
        Ok(not_written)
    }

    /// Makes each pick's entry the representative of its story, with the story's title,
    /// link, text and authors taken from it and its topic scores replaced, when the story is
    /// still represented as it was when the pick was made (`was`) and the entry is still one
    /// of its copies, unedited (`content_hash`): a poll in between may have given the story
    /// another representative or the copy other content, and the pick, made from what it
    /// read before, is then not applied. Returns how many stories changed.
    pub async fn represent_again(
        &self,
        picks: Vec<RepresentativePick>,
    ) -> Result<usize, StoreError> {
        let now = secs(Utc::now());
        let changed = self
            .write(move |conn| {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let mut changed = 0;
                {
                    let tx = &Prepared::new(&tx);
                    for pick in &picks {
                        let rows = exec(
                            tx,
                            "UPDATE stories SET representative = ?2, title = ?3, link = ?4,
                                text = ?5, authors = ?6, updated = max(updated, ?7)
                             WHERE id = ?1 AND representative IS ?8
                               AND EXISTS (SELECT 1 FROM entries
                                            WHERE id = ?2 AND story_id = ?1 AND content_hash = ?9)",
                            params![
                                pick.story,
                                pick.entry,
                                pick.title,
                                pick.link,
                                pick.text,
                                pick.authors,
                                now,
                                pick.was,
                                pick.content_hash
                            ],
                        )?;
                        if rows == 1 {
                            write_scores(tx, pick.story, &pick.scores, false)?;
                            changed += 1;
                        }
                    }
                }
                tx.commit()?;
                Ok(changed)
            })
            .await?;
        if changed > 0 {
            self.bump_version();
        }
        Ok(changed)
    }

    /// Returns once the writes the writer thread has in hand are done (committed or given
    /// up): a job of its own waits its turn behind them, the writer running one at a time.
    /// A re-score after a reload starts with it, so a poll whose hook checked the classifier
    /// in force before the reload replaced it (see `PollHook::before_write`) is written
    /// before the re-score reads the stories.
    pub async fn finish_writes_in_hand(&self) -> Result<(), StoreError> {
        self.write(|_| Ok(())).await
    }

    /// Moves stored due times to their slots' offsets under `max_jitter` when they were
    /// worked out under another one: `moved(schedule, name, next_due, old_max_jitter)` gives a
    /// source's new time (the scheduler's arithmetic). The `max_jitter` in force is kept in
    /// the meta table; a database that has none yet records it and moves nothing (its times
    /// were most likely worked out under the same). One transaction: a crash leaves the times
    /// and the recorded jitter in step. Returns the old jitter and how many moved, or `None`
    /// when it was unchanged.
    pub async fn rejitter_due_times(
        &self,
        max_jitter: Duration,
        moved: impl Fn(&str, &str, DateTime<Utc>, Duration) -> Option<DateTime<Utc>> + Send + 'static,
    ) -> Result<Option<(Duration, usize)>, StoreError> {
        let now_ms = u64::try_from(max_jitter.as_millis()).unwrap_or(u64::MAX);
        self.write(move |conn| {
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let recorded: Option<String> = tx
                .query_row(
                    "SELECT value FROM meta WHERE key = ?1",
                    [MAX_JITTER_KEY],
                    |r| r.get(0),
                )
                .optional()?;
            let old_ms = recorded.and_then(|v| v.parse::<u64>().ok());
            if old_ms == Some(now_ms) {
                return Ok(None);
            }
            let mut count = 0;
            if let Some(old_ms) = old_ms {
                let old_max = Duration::from_millis(old_ms);
                let dues: Vec<(String, String, i64)> = tx
                    .prepare(
                        "SELECT name, schedule, next_due FROM sources WHERE next_due IS NOT NULL",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                for (name, schedule, due) in dues {
                    if let Some(to) = moved(&schedule, &name, super::time(due), old_max) {
                        exec(
                            &tx,
                            "UPDATE sources SET next_due = ?2 WHERE name = ?1",
                            params![name, secs(to)],
                        )?;
                        count += 1;
                    }
                }
            }
            exec(
                &tx,
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![MAX_JITTER_KEY, now_ms.to_string()],
            )?;
            tx.commit()?;
            Ok(old_ms.map(|ms| (Duration::from_millis(ms), count)))
        })
        .await
    }

    /// Sets a value in the meta table.
    pub async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let (key, value) = (key.to_string(), value.to_string());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
        .await
    }

    /// Deletes entries first seen before `cutoff` (remembering their identities so a feed that
    /// still lists them cannot bring them back), stories left without entries, and old fetch
    /// logs. Returns (entries, stories) removed.
    ///
    /// A remembered identity (a tombstone) is needed only while its source's feed lists it.
    /// Each poll that reads the feed (a 200 listing at least one item) marks the source's tombstones it did not find
    /// listed as missed at its start (`missed_at`, kept from the first such read; not those
    /// made less than an hour before it, which a prune still running may have hidden from
    /// ingest) and clears the mark of those it found listed ([`PollOutcome::Fetched`]'s
    /// `listed_pruned`). A tombstone is forgotten once it was missed more than a grace period
    /// ago (the retention, `now - cutoff`, and at least [`TOMBSTONE_GRACE_FLOOR`]) and not
    /// listed since, or when the source is not polled (out of the config, disabled in it, or
    /// stopped by a 410) and has not been within the grace, and the tombstone is older than
    /// the grace. A feed answering 304 lists what it listed at its last read; one failing has
    /// not been read since: neither marks anything, as what it lists is unknown. `pruned_at`
    /// is when the prune made the tombstone (the release before migration 09 moved it on at
    /// each read that listed it).
    pub async fn prune(&self, cutoff: DateTime<Utc>) -> Result<(usize, usize), StoreError> {
        let result = self
            .write(move |conn| {
                let now = secs(Utc::now());
                let cutoff = secs(cutoff);
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                tx.execute(
                    "INSERT OR IGNORE INTO tombstones (source_id, identity, pruned_at)
                 SELECT source_id, identity, ?2 FROM entries WHERE first_seen < ?1",
                    [cutoff, now],
                )?;
                let forgotten = forget_tombstones(
                    &tx,
                    cutoff.min(now.saturating_sub(TOMBSTONE_GRACE_FLOOR.num_seconds())),
                )?;
                if forgotten > 0 {
                    tracing::debug!(tombstones = forgotten, "tombstones no longer needed");
                }
                let entries = tx.execute("DELETE FROM entries WHERE first_seen < ?1", [cutoff])?;
                // A story left without entries goes with its keys and scores (foreign keys are
                // not enforced, so the schema's ON DELETE CASCADE does not run: see `configure`
                // in the store module). A key left behind would join a later copy to a story
                // that no longer exists. So do the keys of a story folded into another that
                // were not moved with it (a headline or fingerprint its copies had before an
                // edit: see `fold_in_title_only_story`). The keys are not indexed by story
                // (migration 08): this delete scans them once, which costs less than the index
                // did on every insert.
                tx.execute_batch(
                    "CREATE TEMP TABLE pruned_stories AS
                         SELECT id FROM stories WHERE NOT EXISTS
                             (SELECT 1 FROM entries WHERE entries.story_id = stories.id);
                     DELETE FROM story_keys WHERE story_id IN (SELECT id FROM pruned_stories)
                        OR story_id NOT IN (SELECT id FROM stories);
                     DELETE FROM story_topics WHERE story_id IN (SELECT id FROM pruned_stories);",
                )?;
                let stories = tx.execute(
                    "DELETE FROM stories WHERE id IN (SELECT id FROM pruned_stories)",
                    [],
                )?;
                tx.execute_batch("DROP TABLE pruned_stories")?;
                // Repoint stories whose representative was pruned to their oldest surviving
                // entry, whose title, link and authors go with the HTML a story is read with
                // (its representative's); the change shows in `updated`. The story's text
                // stays (entries keep none): the surviving entries are copies of the same
                // story, and scoring and search go on reading it. Stories without entries
                // were deleted above; the EXISTS keeps an empty subquery from ever setting
                // the NOT NULL title to NULL.
                tx.execute(
                    "UPDATE stories SET (representative, title, link, authors) =
                    (SELECT id, title, link, authors FROM entries
                      WHERE entries.story_id = stories.id ORDER BY id LIMIT 1),
                    updated = max(updated, unixepoch())
                 WHERE (representative IS NULL OR representative NOT IN (SELECT id FROM entries))
                   AND EXISTS (SELECT 1 FROM entries WHERE entries.story_id = stories.id)",
                    [],
                )?;
                // By source, so the delete reads the log's index instead of the whole table.
                tx.execute(
                    "DELETE FROM fetches
                      WHERE source_id IN (SELECT id FROM sources) AND started_at < ?1",
                    [cutoff],
                )?;
                tx.commit()?;
                Ok((entries, stories))
            })
            .await?;
        self.bump_version();
        Ok(result)
    }
}

/// Fetch-log lines deleted per write job by the pruner ([`Store::prune_fetch_log`]).
pub(crate) const FETCH_LOG_BATCH: usize = 10_000;

/// One batch of [`Store::prune_fetch_log`]: lines before `?1`, at most `?2`, found by source
/// and time through the log's index (`fetches_source`); by time alone SQLite reads the whole
/// table.
pub(crate) const FETCH_LOG_DELETE: &str = "DELETE FROM fetches WHERE id IN (
    SELECT id FROM fetches
     WHERE source_id IN (SELECT id FROM sources) AND started_at < ?1
     LIMIT ?2)";

/// The shortest time a tombstone is kept after the first read of its feed that did not list
/// its identity, whatever the retention. A feed may drop an item for a while and list it again
/// (a stale cache or mirror answering, a list of "most read" items, a paged feed): an identity
/// it has not listed for a week is taken to be gone. With a longer retention the grace is the
/// retention: a tombstone outlives the last listing of its identity as long as an entry
/// outlives its first sighting, which keeps the table about as large as the entries' identities.
pub const TOMBSTONE_GRACE_FLOOR: chrono::Duration = chrono::Duration::days(7);

/// Deletes the tombstones no longer needed (see [`Store::prune`]), `before` being the start
/// of the grace period. Returns how many. One scan of the table.
fn forget_tombstones(tx: &Connection, before: i64) -> rusqlite::Result<usize> {
    // Missed by a read before the grace and not listed by any read since (a listing clears
    // the mark). Or the source is not polled (out of the config, disabled in it, or stopped
    // by a 410) and has not been for the grace (or its row is gone, which only a damaged
    // database has): nothing reads its feed, so nothing marks its tombstones, while
    // retention goes on making more of its entries; those older than the grace go. That is
    // safe because the grace is at least the retention and items dated before the retention
    // are skipped at ingest anyway: a tombstone's item was seen by the source's last poll or
    // earlier, so it is dated more than the retention back by the time the source is polled
    // again. Only an item without a date, or dated in the future (ingest clamps a future
    // date to the fetch time), is dated when fetched and can come back, as for a source
    // that returns to the config.
    tx.execute(
        concat!(
            "DELETE FROM tombstones
              WHERE missed_at < ?1
                 OR (pruned_at < ?1
                     AND source_id NOT IN (SELECT id FROM sources WHERE ",
            polled_sql!(),
            " OR last_attempt >= ?1))"
        ),
        [before],
    )
}

/// How long before a read began a prune must have made a tombstone for that read to mark it
/// missed. `pruned_at` is when the prune began, before its transaction: a poll that began
/// after it could have read the source's entries before the prune committed, seen the entry
/// as stored and unchanged, and so neither written it nor reported it listed (ingest reports
/// only the identities it knows are pruned). The prune's transaction never takes an hour,
/// so a tombstone made an hour before the read began was there when ingest read. A mark is
/// only put off to a later read; the grace it starts is a week or more.
const TOMBSTONE_MARK_DELAY: chrono::Duration = chrono::Duration::hours(1);

/// What the read of the source's feed that started at `started` says of its tombstones (see
/// [`Store::prune`]): those it found listed (`listed`) are not missed, the others are missed
/// from this read on, unless a read missed them before (the grace counts from the first) or
/// a prune made them less than [`TOMBSTONE_MARK_DELAY`] before the read started (ingest may
/// not have seen those as pruned, so could not have reported them listed).
/// A read that did not see every item (`whole` false) only clears the marks of those listed.
/// One statement: a range read of the source's tombstones (in a source without any, one probe
/// of the key) that writes only the rows whose mark changes, so a feed that goes on listing
/// the same pruned identities costs no write.
fn note_listed_tombstones(
    tx: &Prepared<'_>,
    source_id: i64,
    listed: &[String],
    whole: bool,
    started: i64,
) -> rusqlite::Result<()> {
    // An empty list in its place would mark every tombstone of the source missed.
    let listed = serde_json::to_string(listed).expect("a list of strings serializes to JSON");
    exec(
        tx,
        "WITH listed (identity) AS (SELECT value FROM json_each(?3))
         UPDATE tombstones SET missed_at = CASE WHEN missed_at IS NULL THEN ?2 END
          WHERE source_id = ?1
            AND CASE WHEN identity IN (SELECT identity FROM listed) THEN missed_at IS NOT NULL
                     ELSE ?5 AND missed_at IS NULL AND pruned_at < ?4 END",
        params![
            source_id,
            started,
            listed,
            started.saturating_sub(TOMBSTONE_MARK_DELAY.num_seconds()),
            whole
        ],
    )?;
    Ok(())
}

/// Indexes for search up to `limit` stories that are not yet indexed, in id order, and moves
/// the watermark past them (see `migrations/03-search-off-ingest`). Returns how many it indexed.
pub(super) fn index_search_backlog(
    conn: &mut Connection,
    limit: usize,
) -> Result<usize, rusqlite::Error> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let upto: i64 = query_row(
        &tx,
        "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'search_indexed_upto'",
        [],
        |r| r.get(0),
    )?;
    let (count, last): (i64, Option<i64>) = query_row(
        &tx,
        "SELECT count(*), max(id) FROM (SELECT id FROM stories WHERE id > ?1 ORDER BY id LIMIT ?2)",
        params![upto, limit],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let Some(last) = last else {
        return Ok(0);
    };
    exec(
        &tx,
        "INSERT INTO stories_fts (rowid, title, text)
         SELECT id, title, text FROM stories WHERE id > ?1 AND id <= ?2",
        params![upto, last],
    )?;
    exec(
        &tx,
        "UPDATE meta SET value = CAST(?1 AS TEXT) WHERE key = 'search_indexed_upto'",
        [last],
    )?;
    tx.commit()?;
    Ok(usize::try_from(count).unwrap_or(0))
}

/// What the statement helpers below run statements on: a connection, through its statement
/// cache, or [`Prepared`], which keeps them prepared while it lives.
trait Statements {
    /// Runs `f` with the prepared statement of `sql`. `f` must not run another statement on
    /// the same `Statements` (see [`Prepared`]); the helpers below only read a row in it.
    fn with_statement<T>(
        &self,
        sql: &'static str,
        f: impl FnOnce(&mut rusqlite::Statement<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T>;
}

impl Statements for Connection {
    /// Through the connection's statement cache: the per-entry statements of a poll run
    /// thousands of times, and preparing them anew each time was a seventh of ingest.
    fn with_statement<T>(
        &self,
        sql: &'static str,
        f: impl FnOnce(&mut rusqlite::Statement<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let mut statement = self.prepare_cached(sql)?;
        f(&mut statement)
    }
}

impl Statements for rusqlite::Transaction<'_> {
    /// Through the connection's statement cache, as for the connection itself.
    fn with_statement<T>(
        &self,
        sql: &'static str,
        f: impl FnOnce(&mut rusqlite::Statement<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        Connection::with_statement(self, sql, f)
    }
}

/// The writer's connection with every statement run through it kept prepared until this is
/// dropped: for one poll (`record_poll`), or one re-scoring job. rusqlite's statement cache
/// hashes a statement's SQL text to find it and hashes it again (with an allocation) to put
/// it back, on every use: a twentieth of the writer's time in a feed-farm pass. Here a
/// statement is found by the address and length of its SQL text, a `&'static str`, among the
/// twenty or so a poll uses (the same address and length is the same text; a literal that
/// the compiler keeps twice is only prepared twice). The statements go back to the
/// connection's cache when this is dropped, before the caller's savepoint or transaction
/// ends. Each is reset after every use (rusqlite resets on `execute` and when a row's
/// `Rows` drop), so none keeps a read open; a kept statement does keep its last bound values
/// (copies of one entry's fields) until its next use or the drop.
struct Prepared<'c> {
    conn: &'c Connection,
    /// (address and length of the SQL text, its statement from the connection's cache).
    statements: std::cell::RefCell<Vec<((usize, usize), rusqlite::CachedStatement<'c>)>>,
}

impl<'c> Prepared<'c> {
    fn new(conn: &'c Connection) -> Self {
        Prepared {
            conn,
            statements: std::cell::RefCell::new(Vec::with_capacity(24)),
        }
    }

    /// The row id of the connection's last successful INSERT.
    fn last_insert_rowid(&self) -> i64 {
        self.conn.last_insert_rowid()
    }
}

impl Statements for Prepared<'_> {
    fn with_statement<T>(
        &self,
        sql: &'static str,
        f: impl FnOnce(&mut rusqlite::Statement<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let key = (sql.as_ptr() as usize, sql.len());
        // Borrowed while `f` runs: `f` running another statement here would panic (see
        // `Statements::with_statement`).
        let mut statements = self.statements.borrow_mut();
        let index = match statements.iter().position(|(k, _)| *k == key) {
            Some(index) => index,
            None => {
                statements.push((key, self.conn.prepare_cached(sql)?));
                statements.len() - 1
            }
        };
        f(&mut statements[index].1)
    }
}

/// Runs a statement (see [`Statements`]).
fn exec(
    conn: &impl Statements,
    sql: &'static str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.with_statement(sql, |s| s.execute(params))
}

/// `query_row` (see [`Statements`]); `f` only reads the row.
fn query_row<T>(
    conn: &impl Statements,
    sql: &'static str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.with_statement(sql, |s| s.query_row(params, f))
}

/// [`query_row`] for a row that may not exist; `f` only reads the row.
fn query_opt<T>(
    conn: &impl Statements,
    sql: &'static str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    conn.with_statement(sql, |s| s.query_row(params, f).optional())
}

/// Why a near-copy `new` from `source_id` may not join `story`, if it may not. When the story
/// holds no entry of that source: only if it is the story's templated sibling
/// ([`PollHook::templated_siblings`]: the same text with other names swapped or added in, a
/// notice for another country, company or entity). Else unless it is the same item as one of those
/// entries ([`PollHook::one_item_of_a_feed`]: the same headline, or a declared revision, and
/// one item's text). One feed's new item whose text nearly repeats an item it listed before, under
/// another headline or with other names in it, is its next templated notice (an anti-dumping
/// regulation on another product, an Entity List rule for other entities), not a copy: folded
/// in, it was never served as an item of its own. The same rule holds within one poll
/// (`ingest`'s hook, [`NearCopyOf::EarlierEntry`]).
fn near_copy_refusal(
    tx: &Prepared<'_>,
    hook: &Option<Box<dyn PollHook>>,
    story: i64,
    source_id: i64,
    new: &Entry,
) -> Result<Option<Refusal>, StoreError> {
    let Some(hook) = hook.as_ref() else {
        return Ok(None);
    };
    if let Some(refused) = own_items_refuse(tx, hook.as_ref(), story, source_id, new)? {
        return Ok(refused.then_some(Refusal::NotTheSameItem));
    }
    // A copy from another feed: the index's estimate cannot tell an official notice from its
    // sibling for another country or product (most of their text is shared), the two texts
    // can (`cluster::templated_siblings`). The story's own title and text are its
    // representative's, one row read.
    let story_text: Option<(String, String)> = query_opt(
        tx,
        "SELECT title, text FROM stories WHERE id = ?1",
        [story],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(story_text
        .is_some_and(|(title, text)| hook.templated_siblings(&title, &text, new))
        .then_some(Refusal::TemplatedSibling))
}

/// Whether `story`, holding items of `source_id`, refuses `new` from that source because it is
/// none of them (the same-feed rule: [`PollHook::one_item_of_a_feed`]); `None` when the story
/// holds no item of that source. Asked of a near-copy's candidate stories and of the story a
/// headline key offers: a feed's item under its earlier item's headline with another text
/// (too different to be a near-copy candidate at all) would otherwise join that item's story
/// through the title-only key an aggregator's copy of it left.
fn own_items_refuse(
    tx: &Prepared<'_>,
    hook: &dyn PollHook,
    story: i64,
    source_id: i64,
    new: &Entry,
) -> Result<Option<bool>, StoreError> {
    // Bounded: a story holds a handful of one source's items (a feed's update under a new
    // id, moved items), and any of them being the same item lets the copy in; the latest
    // are asked (a feed's latest item is the one its next reissue repeats).
    let own: Vec<(String, String)> = tx.with_statement(
        "SELECT title, html FROM entries WHERE story_id = ?1 AND source_id = ?2
          ORDER BY id DESC LIMIT 32",
        |s| {
            s.query_map(params![story, source_id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()
        },
    )?;
    if own.is_empty() {
        return Ok(None);
    }
    Ok(Some(!own.iter().any(|(title, html)| {
        hook.one_item_of_a_feed(title, html, new)
    })))
}

/// Why the writer refused a near-copy's candidate story ([`near_copy_refusal`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The story holds items of the copy's own feed, and the copy is none of them.
    NotTheSameItem,
    /// The copy is the story's templated sibling (from another feed).
    TemplatedSibling,
}

/// The stored source a poll is written to ([`source_row`]).
struct PolledRow {
    id: i64,
    /// Its name now: a reload may have renamed it while the poll ran.
    name: String,
    priority: i32,
    url: String,
    previous_url: Option<String>,
    /// As written in the config.
    schedule: String,
}

/// The source a poll of `name` at `url` belongs to: the row it began on (`polled_row`, read
/// with its poll state; rows are never deleted). A record without it is placed by name and
/// URL: the row of that name if it still has that URL, or had it until a reload gave it
/// another (`previous_url`); else (a reload renamed the source while the poll ran: see
/// [`rename_moved_names`], which keeps the URL) the one configured row with that URL; else the
/// row of that name. The URL is asked before the name falls back: a reload may have renamed
/// the feed's row and given its old name to another feed, or swapped two sources' names, and
/// the poll's entries are the feed's. But a source whose URL the reload changed keeps the poll
/// even when the same edit gave its old URL to another source: that one is a new feed there,
/// and must not take the poll's validators or due time. (`previous_url` is the URL before the
/// *last* change, which may be older than the poll: the row id has no such doubt.)
fn source_row(
    tx: &Prepared<'_>,
    polled_row: Option<i64>,
    name: &str,
    url: &str,
) -> Result<PolledRow, StoreError> {
    let row = |r: &rusqlite::Row<'_>| {
        Ok(PolledRow {
            id: r.get(0)?,
            priority: r.get(1)?,
            url: r.get(2)?,
            previous_url: r.get(3)?,
            schedule: r.get(4)?,
            name: r.get(5)?,
        })
    };
    if let Some(id) = polled_row
        && let Some(found) = query_opt(
            tx,
            "SELECT id, priority, url, previous_url, schedule, name FROM sources WHERE id = ?1",
            [id],
            row,
        )?
    {
        return Ok(found);
    }
    let named = query_opt(
        tx,
        "SELECT id, priority, url, previous_url, schedule, name FROM sources WHERE name = ?1",
        [name],
        row,
    )?;
    pick_poll_target(
        named,
        |named| named.url == url || named.previous_url.as_deref() == Some(url),
        || {
            Ok(tx.with_statement(
                "SELECT id, priority, url, previous_url, schedule, name FROM sources
                  WHERE url = ?1 AND in_config = 1 LIMIT 2",
                |s| s.query_map([url], row)?.collect(),
            )?)
        },
    )?
    .ok_or_else(|| rusqlite::Error::QueryReturnedNoRows.into())
}

/// The name-and-URL rule of [`source_row`] (for a record without its row id), over the row
/// named as the poll's source (`named`, which `polled_feed` tells whether it has or had the
/// polled URL) and the configured rows with the polled URL (asked only when it does not; two
/// at most are needed): shared with [`Store::poll_target`], the dispatcher's question after a
/// reload, which cannot know the row a poll began on either.
pub(super) fn pick_poll_target<T>(
    named: Option<T>,
    polled_feed: impl Fn(&T) -> bool,
    configured_with_url: impl FnOnce() -> Result<Vec<T>, StoreError>,
) -> Result<Option<T>, StoreError> {
    if named.as_ref().is_some_and(polled_feed) {
        return Ok(named);
    }
    Ok(match <[_; 1]>::try_from(configured_with_url()?) {
        Ok([found]) => Some(found),
        Err(_) => named,
    })
}

/// A poll in the writer's queue (see [`Store::queue_poll`]).
#[must_use = "the poll is written either way; its result says what was stored"]
pub struct QueuedPoll {
    answer: tokio::sync::oneshot::Receiver<Result<PollResult, StoreError>>,
}

impl QueuedPoll {
    /// What the write stored, once its transaction has committed. The store's data version
    /// has moved on by then if it stored anything, whether or not this is awaited.
    pub async fn result(self) -> Result<PollResult, StoreError> {
        self.answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// Writes a batch of queued polls in one transaction and answers each once the transaction has
/// committed (see [`Store::record_poll_with`]).
///
/// A failing poll must leave nothing behind while the others of its batch still commit: a
/// savepoint per poll gives that, but its sub-journal keeps a copy of every page a poll
/// changes, a twelfth of the writer's time on a 2,400-feed first pass. Polls seldom fail, so
/// a batch is first written without savepoints. If a poll fails, that transaction is rolled
/// back, the hooks of the polls already written are told (as after a failed commit), and the
/// batch is written again with a savepoint per poll: the outcome the savepoints alone give.
///
/// `key_filter` is the writer's filter of stored story keys: loaded here when a batch first
/// has entries to write (and again once it outgrows its size); left `None` if it cannot be
/// read, which only means every key is looked up.
pub(super) fn record_polls(
    conn: &mut Connection,
    mut batch: Vec<PollJob>,
    key_filter: &mut Option<KeyFilter>,
    version: &AtomicU64,
) {
    if batch.iter().any(|job| !job.record.entries.is_empty())
        && key_filter.as_ref().is_none_or(KeyFilter::is_full)
    {
        *key_filter = KeyFilter::load(conn)
            .inspect_err(|e| tracing::warn!(error = %e, "story key filter not loaded"))
            .ok();
    }
    let outcome = match write_batch(conn, &mut batch, false, key_filter) {
        Attempt::PollFailed { written, .. } if batch.len() > 1 => {
            take_back(batch.iter_mut().zip(&written).collect());
            // The near-duplicate lookups run again against the index as it is now.
            for job in &mut batch {
                for write in &mut job.record.entries {
                    write.near_matches.clear();
                }
            }
            write_batch(conn, &mut batch, true, key_filter)
        }
        outcome => outcome,
    };
    match outcome {
        Attempt::Committed(results) => {
            // Before any answer, so that whoever is answered reads feeds rendered anew; and
            // here rather than in the caller, which may have stopped waiting.
            if results.iter().any(|r| {
                r.as_ref().is_ok_and(|r| {
                    r.new_entries
                        + r.updated_entries
                        + r.rebased_entries
                        + r.remedia_entries
                        + r.rekeyed_entries
                        > 0
                })
            }) {
                version.fetch_add(1, Ordering::AcqRel);
            }
            for (job, written) in batch.into_iter().zip(results) {
                let _ = job.reply.send(written);
            }
        }
        Attempt::PollFailed { error, .. } => {
            // Only a batch of one poll ends here (a larger one was written again): its
            // rollback left nothing, as a savepoint would have, and no other hook ran.
            debug_assert_eq!(batch.len(), 1);
            if let Some(job) = batch.into_iter().next() {
                let _ = job.reply.send(Err(error));
            }
        }
        Attempt::TransactionFailed(e, results) => {
            let written: Vec<(&mut PollJob, &PollResult)> = batch
                .iter_mut()
                .zip(&results)
                .filter_map(|(job, result)| result.as_ref().ok().map(|r| (job, r)))
                .collect();
            take_back(written);
            for job in batch {
                let _ = job.reply.send(Err(shared_failure(&e)));
            }
        }
    }
}

/// How one attempt at writing a batch ended.
enum Attempt {
    /// The transaction committed: each poll's result, in batch order (with savepoints, a poll
    /// that failed wrote nothing and the others committed).
    Committed(Vec<Result<PollResult, StoreError>>),
    /// Without savepoints, a poll failed (with `error`) and the transaction was rolled back;
    /// `written` are the results of the polls before it, whose hooks have seen `after_write`.
    PollFailed {
        written: Vec<PollResult>,
        error: StoreError,
    },
    /// The transaction could not begin or commit: nothing of the batch exists. The results
    /// are those the polls had before (the hooks of the successful ones saw `after_write`).
    TransactionFailed(rusqlite::Error, Vec<Result<PollResult, StoreError>>),
}

/// Writes `batch` in one transaction, with a savepoint around each poll when `savepoints`.
fn write_batch(
    conn: &mut Connection,
    batch: &mut [PollJob],
    savepoints: bool,
    key_filter: &mut Option<KeyFilter>,
) -> Attempt {
    let mut tx = match conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => return Attempt::TransactionFailed(e, Vec::new()),
    };
    let mut results = Vec::with_capacity(batch.len());
    for job in batch.iter_mut() {
        if let Some(hook) = job.hook.as_mut() {
            hook.before_write(&mut job.record.entries);
        }
        let written = if savepoints {
            // A savepoint rolls back when dropped without commit: a failed poll leaves nothing.
            tx.savepoint().map_err(StoreError::from).and_then(|sp| {
                let result = record_poll(&sp, &job.record, &mut job.hook, key_filter)?;
                sp.commit()?;
                Ok(result)
            })
        } else {
            record_poll(&tx, &job.record, &mut job.hook, key_filter)
        };
        match written {
            Ok(result) => {
                if let Some(hook) = job.hook.as_mut() {
                    hook.after_write(&result);
                }
                results.push(Ok(result));
            }
            Err(error) if !savepoints => {
                // Dropping the transaction rolls it back.
                drop(tx);
                return Attempt::PollFailed {
                    written: results.into_iter().filter_map(Result::ok).collect(),
                    error,
                };
            }
            Err(error) => results.push(Err(error)),
        }
    }
    match tx.commit() {
        Ok(()) => Attempt::Committed(results),
        Err(e) => Attempt::TransactionFailed(e, results),
    }
}

/// Tells the hooks of polls that their writes (each poll with its result, in batch order) were
/// rolled back, latest first: the reverse of the order they recorded in.
fn take_back(written: Vec<(&mut PollJob, &PollResult)>) {
    for (job, result) in written.into_iter().rev() {
        if let Some(hook) = job.hook.as_mut() {
            hook.rolled_back(result);
        }
    }
}

/// One SQLite failure reported to every poll of a batch (`rusqlite::Error` is not `Clone`).
fn shared_failure(e: &rusqlite::Error) -> StoreError {
    let error = match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    };
    StoreError::Sqlite(error)
}

/// One poll's writes, inside the caller's transaction or savepoint.
fn record_poll(
    tx: &Connection,
    record: &PollRecord,
    hook: &mut Option<Box<dyn PollHook>>,
    key_filter: &mut Option<KeyFilter>,
) -> Result<PollResult, StoreError> {
    let tx = &Prepared::new(tx);
    let PolledRow {
        id: source_id,
        name,
        priority,
        url,
        schedule,
        ..
    } = source_row(tx, record.source_row, &record.source, &record.url)?;
    // A reload gave the source another URL while this poll ran, and reset it as a new feed
    // (`sync_sources`). The entries and the fetch log line are still the source's; what the
    // poll learnt about the old URL is not the new URL's (see below).
    let same_url = url == record.url;
    let started = secs(record.started_at);
    let mut result = PollResult::default();
    // Whether the source has tombstones, when the entries' probe below has asked.
    let mut tombstones_known = None;
    if !record.entries.is_empty() {
        let (has_tombstones, has_entries): (bool, bool) = query_row(
            tx,
            "SELECT EXISTS (SELECT 1 FROM tombstones WHERE source_id = ?1),
                    EXISTS (SELECT 1 FROM entries WHERE source_id = ?1)",
            [source_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tombstones_known = Some(has_tombstones);
        let mut poll = PollContext {
            source_id,
            priority,
            now: secs(Utc::now()),
            has_tombstones,
            written_to_empty_source: (!has_entries).then(HashSet::new),
            next_entry_id: None,
            // Entries without a base URL resolve against their source's URL, which is no
            // longer the one they were fetched from.
            base_url: record
                .base_url
                .clone()
                .or_else(|| (!same_url).then(|| record.url.clone())),
            key_filter: key_filter.as_mut(),
            cluster_window: record.cluster_window.num_seconds(),
            listed: &record.listed,
            read_whole: !matches!(
                record.outcome,
                PollOutcome::Fetched {
                    read_whole: false,
                    ..
                }
            ),
            entries: &record.entries,
        };
        for (index, write) in record.entries.iter().enumerate() {
            write_entry(tx, &mut poll, index, write, hook, &mut result)?;
        }
    }
    // A read of the feed says which of the source's tombstones it lists (nothing to say for a
    // source known to have none, a first pass's every poll, nor by a read that listed nothing).
    if let PollOutcome::Fetched {
        listed_pruned: Some(listed_pruned),
        read_whole,
        ..
    } = &record.outcome
        && tombstones_known != Some(false)
    {
        note_listed_tombstones(tx, source_id, listed_pruned, *read_whole, started)?;
    }

    let (http_status, bytes, error) = match &record.outcome {
        PollOutcome::Fetched {
            http_status, bytes, ..
        } => (Some(*http_status), *bytes, None),
        PollOutcome::NotModified { .. } => (Some(304), 0, None),
        PollOutcome::Failed {
            http_status,
            message,
            ..
        } => (*http_status, 0, Some(message.clone())),
    };
    exec(
        tx,
        "INSERT INTO fetches (source_id, started_at, duration_ms, outcome, http_status, bytes,
                              new_entries, updated_entries, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            source_id,
            started,
            i64::try_from(record.duration.as_millis()).unwrap_or(i64::MAX),
            record.outcome.label(),
            http_status,
            i64::try_from(bytes).unwrap_or(i64::MAX),
            result.new_entries as i64,
            result.updated_entries as i64,
            error,
        ],
    )?;

    if !same_url {
        // The source was reset as a new feed, due at once with no validators, move, 410,
        // failures or Retry-After: applying the old URL's would send the new feed the old
        // one's ETag (a 304 for good), stop it for the old one's 410, or make it wait for
        // the old one's next time. Its last attempt, outcome and error are left to the new
        // URL's first poll too; the fetch log above keeps this one.
        result.url_changed = true;
        exec(
            tx,
            "UPDATE sources SET last_new_entry = ?2 WHERE id = ?1 AND ?3 > 0",
            params![source_id, started, result.new_entries as i64],
        )?;
        return Ok(result);
    }
    // Read once: the jitter the due time is moved to, and the one a moved schedule's
    // correction is worked out under. Only a poll with a schedule's due time has either.
    let recorded = match record.due_jitter {
        Some(_) => recorded_max_jitter(tx)?,
        None => None,
    };
    let next_due = next_due_under_recorded_jitter(recorded, &schedule, record);
    result.next_due = Some(next_due);
    if record
        .due_jitter
        .as_ref()
        .is_some_and(|jitter| jitter.schedule != schedule)
    {
        result.schedule_moved = Some(MovedSchedule {
            source: name,
            schedule,
            max_jitter: recorded,
        });
    }
    match &record.outcome {
        PollOutcome::Fetched {
            etag,
            last_modified,
            ..
        }
        | PollOutcome::NotModified {
            etag,
            last_modified,
        } => {
            // A fetch that succeeded says where the feed is: moved, or answering at its URL
            // again (a publisher that reverted its 301), when the notice goes. A failed one
            // says nothing of it, and leaves the notice as it was.
            exec(
                tx,
                "UPDATE sources SET etag = ?2, last_modified = ?3, consecutive_failures = 0,
                    retry_not_before = NULL, last_error = NULL, last_success = ?4,
                    last_attempt = ?4, last_outcome = ?5, next_due = ?6, moved_to = ?7,
                    last_new_entry = CASE WHEN ?8 > 0 THEN ?4 ELSE last_new_entry END
                 WHERE id = ?1",
                params![
                    source_id,
                    etag,
                    last_modified,
                    started,
                    record.outcome.label(),
                    secs(next_due),
                    record.moved_to,
                    result.new_entries as i64,
                ],
            )?;
        }
        PollOutcome::Failed {
            message,
            retry_not_before,
            disable,
            ..
        } => {
            exec(
                tx,
                "UPDATE sources SET consecutive_failures = consecutive_failures + 1,
                    last_error = ?2, last_attempt = ?3, last_outcome = ?4, next_due = ?5,
                    retry_not_before = ?6, disabled_reason = coalesce(?7, disabled_reason),
                    moved_to = coalesce(?8, moved_to)
                 WHERE id = ?1",
                params![
                    source_id,
                    message,
                    started,
                    record.outcome.label(),
                    secs(next_due),
                    retry_not_before.map(secs),
                    disable,
                    record.moved_to,
                ],
            )?;
        }
    }
    Ok(result)
}

/// The kind of an exact-duplicate key: the two join under different rules (see
/// [`story_keys`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// The entry's canonical URL.
    Url,
    /// The fingerprint of its normalized title and text.
    Fingerprint,
}

impl KeyKind {
    /// The evidence a join by this key is stored with.
    fn evidence(self) -> &'static str {
        match self {
            KeyKind::Url => "same canonical URL",
            KeyKind::Fingerprint => "same title and text",
        }
    }
}

/// The entry's exact-duplicate keys, strongest first, as stored (see [`key_hash`]).
///
/// A key names one story, and a new entry joins it only on that key's terms:
/// - the canonical URL: two outlets linking to one article are one story, whenever each
///   was published; but a story that already holds an entry of the entry's own source is
///   not joined by URL. The entry is another item of that source (had it been the same
///   item, its identity would have found its row, or the re-key below would have taken it),
///   and a source that links several items to one page (a live blog's `#post-2`, whose
///   fragment the canonical URL drops; press releases all linking to `/news`) would
///   otherwise show its readers one of them;
/// - the fingerprint: the same words are one story only within the window the
///   near-duplicate index uses (`[cluster] window_days`, between the entry's and the
///   story's publication times), or [`HEADLINE_WINDOW_SECS`] for an item without text of
///   its own, whose fingerprint is its headline: a monthly notice with the same words, or a
///   headline that recurs, is a new story each time.
///
/// A key refused on these terms moves to the story the entry lands in when that is the
/// newer one (see [`store_key`]), so the next copies of the newest item find it.
fn story_keys(entry: &Entry) -> Vec<([u8; 16], KeyKind)> {
    let mut keys = Vec::with_capacity(2);
    if let Some(url) = &entry.canonical_url {
        keys.push((url_key(url), KeyKind::Url));
    }
    // A fingerprint of almost no text would merge unrelated items (e.g. empty bodies).
    if entry.title.len() + entry.text.len() >= 20 {
        keys.push((
            key_hash(&format!("fp:{}", entry.fingerprint)),
            KeyKind::Fingerprint,
        ));
    }
    keys
}

/// How far apart (seconds, by publication time) an entry and a story may be for the entry
/// to join it on its fingerprint: the cluster window, or [`HEADLINE_WINDOW_SECS`] for an
/// entry with no text of its own (none, or a description that only repeats its headline),
/// whose fingerprint is then its headline's, the evidence the title-only rule weighs with
/// that window: a longer one would let an exact title join what that rule keeps apart.
fn fingerprint_window(write: &EntryWrite, cluster_window: i64) -> i64 {
    if is_title_only(write) {
        HEADLINE_WINDOW_SECS.min(cluster_window)
    } else {
        cluster_window
    }
}

/// Whether the entry has no text of its own: none, or a description that only repeats its
/// headline (and publisher). Stored with it (`entries.title_only`).
fn is_title_only(write: &EntryWrite) -> bool {
    write.entry.text.trim().is_empty() || write.headline.as_ref().is_some_and(|h| h.title_only)
}

/// The exact-duplicate key of a canonical URL (see [`story_keys`]).
fn url_key(canonical_url: &str) -> [u8; 16] {
    key_hash(&format!("url:{canonical_url}"))
}

/// The key of a headline (see [`EntryWrite::headline`]), one kind for title-only copies and
/// one for copies with text: a title-only copy looks up both, a copy with text only the
/// title-only kind (two stories with text are never joined on their headlines alone).
fn headline_key(headline: &str, title_only: bool) -> [u8; 16] {
    let kind = if title_only { "hlt" } else { "hl" };
    key_hash(&format!("{kind}:{headline}"))
}

/// A new entry's join: the story, the evidence, and what the join needs of the story.
type Join = (i64, String, JoinedStory);

/// The story a feed's revision of its own item joins when nothing else placed it: a
/// "CORRECTED-" or "UPDATE 2-" under a new id whose headline, without that prefix, is its
/// earlier item's (`unrevised`, the key that item was stored under), published within
/// `window` of the entry, and that the same-feed rule takes for that item again
/// ([`PollHook::one_item_of_a_feed`]: a correction changes two words at most each way). A
/// corrected figure is what the near-duplicate index refuses ("figures differ"), and such a
/// correction was a second story beside the item it corrects.
fn join_own_revision(
    tx: &Prepared<'_>,
    poll: &PollContext<'_>,
    hook: &dyn PollHook,
    unrevised: &str,
    source_id: i64,
    e: &Entry,
    window: i64,
) -> Result<Option<Join>, StoreError> {
    let key = headline_key(unrevised, false);
    let Some((story, read)) = story_of_key(tx, poll, &key, secs(e.published), window)? else {
        return Ok(None);
    };
    if own_items_refuse(tx, hook, story, source_id, e)? != Some(false) {
        return Ok(None);
    }
    Ok(Some((
        story,
        "the feed's own item again, a revision under its headline".to_string(),
        read,
    )))
}

/// The story an exact key names, if any; the key filter spares the lookup of a key never
/// stored.
fn keyed_story(
    tx: &Prepared<'_>,
    poll: &PollContext<'_>,
    key: &[u8; 16],
) -> Result<Option<i64>, StoreError> {
    if poll
        .key_filter
        .as_ref()
        .is_some_and(|f| !f.may_contain(key))
    {
        return Ok(None);
    }
    Ok(query_opt(
        tx,
        "SELECT story_id FROM story_keys WHERE key = ?1",
        [key],
        |r| r.get::<_, i64>(0),
    )?)
}

/// The story an exact key names ([`keyed_story`]), read as a join needs it, if it was
/// published less than `window` from `published`.
fn story_of_key(
    tx: &Prepared<'_>,
    poll: &PollContext<'_>,
    key: &[u8; 16],
    published: i64,
    window: i64,
) -> Result<Option<(i64, JoinedStory)>, StoreError> {
    let Some(story) = keyed_story(tx, poll, key)? else {
        return Ok(None);
    };
    Ok(JoinedStory::read(tx, story)?
        .filter(|read| (read.published - published).abs() < window)
        .map(|read| (story, read)))
}

/// The story a new entry joins by the title-only rule, with its evidence: the story of a
/// stored copy with the same headline (a copy with text first), if that story was published
/// within [`HEADLINE_WINDOW_SECS`] of the entry.
fn join_by_headline(
    tx: &Prepared<'_>,
    poll: &PollContext<'_>,
    headline: &Headline,
    published: i64,
) -> Result<Option<Join>, StoreError> {
    let kinds: &[bool] = if headline.title_only {
        &[false, true]
    } else {
        &[true]
    };
    for &title_only in kinds {
        let key = headline_key(&headline.key, title_only);
        if let Some((story, read)) = story_of_key(tx, poll, &key, published, HEADLINE_WINDOW_SECS)?
        {
            let mut evidence = if headline.title_only {
                "same headline, title-only copy".to_string()
            } else {
                "same headline as a title-only copy".to_string()
            };
            if let Some(suffix) = &headline.dropped_suffix {
                evidence.push_str(&format!(" (\"{}\" dropped)", suffix.trim()));
            }
            return Ok(Some((story, evidence, read)));
        }
    }
    Ok(None)
}

/// Folds a story of title-only copies with this copy's headline into the story the copy
/// (one with text) is in. A news search's title-only copy polled before any copy with its
/// headline starts a story of its own, and the wire original that carries the headline may
/// then join another outlet's copy by its text: without this, the search's copy stayed a
/// story apart for good, and which way a story went depended on the order of polls (a
/// black-box audit: 5 of 5 such copies apart when the feeds were polled at once). The
/// other story is folded in only when it is within [`HEADLINE_WINDOW_SECS`] of the copy and
/// every copy it holds was stored as title-only (`entries.title_only`: two stories with text
/// are never joined on their headlines); its entries, keys and first publication time move
/// over, its row goes. The story keeps its representative unless the folded story's
/// outranks it by the one rule ([`CopyWeight::represents_better_than`]: in effect, a source
/// of higher priority, as a title-only copy's text is no longer); that one then represents
/// the story with its title, link, text, authors and topic scores, as it would have had the
/// copies come in the other order. Returns the folded story's id.
fn fold_in_title_only_story(
    tx: &Prepared<'_>,
    poll: &PollContext<'_>,
    headline: &Headline,
    story_id: i64,
    published: i64,
) -> Result<Option<i64>, StoreError> {
    let title_only_key = headline_key(&headline.key, true);
    if poll
        .key_filter
        .as_ref()
        .is_some_and(|f| !f.may_contain(&title_only_key))
    {
        return Ok(None);
    }
    let Some((other, other_published)) = query_opt(
        tx,
        "SELECT st.id, st.published FROM story_keys k JOIN stories st ON st.id = k.story_id
          WHERE k.key = ?1 AND st.id <> ?2
            AND NOT EXISTS (SELECT 1 FROM entries e
                             WHERE e.story_id = st.id AND e.title_only IS NOT 1)",
        params![title_only_key, story_id],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
    )?
    else {
        return Ok(None);
    };
    if (other_published - published).abs() >= HEADLINE_WINDOW_SECS {
        return Ok(None);
    }
    // The other story's keys, found from its copies and moved one by one: the key table has
    // no index by story (migration 08), and a scan of it per fold would stall the writer.
    let copies: Vec<(Option<String>, String)> = tx.with_statement(
        "SELECT canonical_url, fingerprint FROM entries WHERE story_id = ?1",
        |s| {
            s.query_map([other], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        },
    )?;
    let mut keys = vec![title_only_key];
    for (url, fingerprint) in &copies {
        keys.extend(url.as_deref().map(url_key));
        keys.push(key_hash(&format!("fp:{fingerprint}")));
    }
    for key in keys {
        exec(
            tx,
            "UPDATE story_keys SET story_id = ?3 WHERE key = ?1 AND story_id = ?2",
            params![key, other, story_id],
        )?;
    }
    exec(
        tx,
        "UPDATE entries SET story_id = ?2,
                evidence = 'same headline as a copy with text (folded in after it)'
          WHERE story_id = ?1",
        params![other, story_id],
    )?;
    exec(
        tx,
        "UPDATE stories SET published = min(published, ?2) WHERE id = ?1",
        params![story_id, other_published],
    )?;
    let weight = |story| JoinedStory::read(tx, story).map(|s| s.and_then(|s| s.representative));
    let (folded, here) = (weight(other)?, weight(story_id)?);
    let takes_over = folded.is_some_and(|w| w.represents_better_than(here));
    // The schema's cascades are off (see `configure`): the writer deletes dependents itself.
    if takes_over {
        exec(
            tx,
            "UPDATE stories SET (representative, title, link, text, authors) =
                    (SELECT representative, title, link, text, authors FROM stories
                      WHERE id = ?2),
                    updated = max(updated, ?3)
              WHERE id = ?1",
            params![story_id, other, poll.now],
        )?;
        exec(
            tx,
            "DELETE FROM story_topics WHERE story_id = ?1",
            [story_id],
        )?;
        exec(
            tx,
            "UPDATE story_topics SET story_id = ?2 WHERE story_id = ?1",
            params![other, story_id],
        )?;
    } else {
        exec(tx, "DELETE FROM story_topics WHERE story_id = ?1", [other])?;
    }
    exec(tx, "DELETE FROM stories WHERE id = ?1", [other])?;
    Ok(Some(other))
}

/// Stores one of an entry's keys for `story_id` (the story the entry is in). A key already
/// naming a story stays with it, unless that story is gone or was published before
/// `take_over_before`: then this story takes the key over. Callers pass a time such that only
/// a newer story takes a key over, so that later copies of a recurring item find the story it
/// is now, never an older one (a backfilled old copy cannot pull the key back in time):
/// - a headline or fingerprint key: the entry's time less its window, plus one second (a
///   story published a whole window earlier or more is one the entry could not join, as
///   copies join only less than a window apart; see [`story_keys`]);
/// - a URL key the entry could not join by (the keyed story holds another item of the
///   entry's source): the entry's time, compared with the newest appearance of that URL
///   (`url`) in the keyed story rather than with the story's first publication, which another
///   outlet's older copy of the story can pull back (a late, older item of the source would
///   then take the key from the newest): the URL leads to the newest item linking it;
/// - any other key: `i64::MIN`, never taken over.
///
/// A key is added to the writer's filter whenever a row is written, taken over or not: a
/// key taken over was in the filter already, and counting it again only reloads it sooner.
fn store_key(
    tx: &Prepared<'_>,
    poll: &mut PollContext<'_>,
    key: &[u8; 16],
    story_id: i64,
    take_over_before: i64,
    url: Option<&str>,
) -> rusqlite::Result<()> {
    let stored = exec(
        tx,
        "INSERT INTO story_keys (key, story_id) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET story_id = excluded.story_id
          WHERE story_keys.story_id <> excluded.story_id
            AND coalesce(CASE WHEN ?4 IS NULL
                              THEN (SELECT published FROM stories WHERE id = story_keys.story_id)
                              ELSE (SELECT max(published) FROM entries
                                     WHERE story_id = story_keys.story_id AND canonical_url = ?4)
                         END,
                         -9223372036854775807) < ?3",
        params![key, story_id, take_over_before, url],
    )?;
    if stored > 0
        && let Some(filter) = poll.key_filter.as_deref_mut()
    {
        filter.insert(key);
    }
    Ok(())
}

/// Stores an entry's own headline key (see [`store_key`]), published at `published`.
fn store_headline_key(
    tx: &Prepared<'_>,
    poll: &mut PollContext<'_>,
    key: Option<[u8; 16]>,
    story_id: i64,
    published: i64,
) -> rusqlite::Result<()> {
    let Some(key) = key else { return Ok(()) };
    store_key(
        tx,
        poll,
        &key,
        story_id,
        outside_window_before(published, HEADLINE_WINDOW_SECS),
        None,
    )
}

/// The take-over bound of a key joined within `window` (see [`store_key`]): a story
/// published a whole window before `published` or earlier is one a copy published then cannot
/// join, as copies join only less than their window apart.
fn outside_window_before(published: i64, window: i64) -> i64 {
    published - window + 1
}

/// How an exact-duplicate key is stored: its 128-bit xxh3 hash, little-endian. Sixteen bytes
/// keep the key table and its story index a fraction of the size of the text keys (which
/// outgrew the writer's page cache at scale), and two different keys share a hash with
/// negligible probability (about 10⁻¹⁹ among ten billion keys).
fn key_hash(key: &str) -> [u8; 16] {
    xxhash_rust::xxh3::xxh3_128(key.as_bytes()).to_le_bytes()
}

/// Finishes migration 05: hashes the text keys it set aside (SQL has no xxh3) into
/// `story_keys` and drops them, in one transaction. Does nothing once done.
pub(super) fn rehash_story_keys(conn: &mut Connection) -> rusqlite::Result<()> {
    let pending: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table'
                                                     AND name = 'story_keys_text')",
        [],
        |r| r.get(0),
    )?;
    if !pending {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut moved = 0usize;
    {
        let mut read = tx.prepare("SELECT key, story_id FROM story_keys_text")?;
        let mut insert =
            tx.prepare("INSERT OR IGNORE INTO story_keys (key, story_id) VALUES (?1, ?2)")?;
        let mut rows = read.query([])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let story: i64 = row.get(1)?;
            moved += insert.execute(params![key_hash(&key), story])?;
        }
    }
    tx.execute_batch("DROP TABLE story_keys_text")?;
    tx.commit()?;
    tracing::info!(keys = moved, "story keys rehashed (migration 05)");
    Ok(())
}

/// What the entry writes of one poll share.
struct PollContext<'a> {
    source_id: i64,
    priority: i32,
    now: i64,
    /// Whether any identity of this source was ever pruned. Most sources have none, and then
    /// the per-entry tombstone lookup is skipped.
    has_tombstones: bool,
    /// For a source with no stored entries when the poll began (its first poll, as for every
    /// source of a new database), the identities this poll has written: any other identity
    /// has no row, so the per-entry lookup of an existing row is skipped. `None` otherwise.
    written_to_empty_source: Option<HashSet<&'a str>>,
    /// [`PollRecord::base_url`].
    base_url: Option<String>,
    /// The id the next new entry will get, read when first needed. Knowing it before the entry
    /// row exists lets a new story be inserted with its representative already set, instead
    /// of inserting the story and then rewriting its whole row (text included) to set it.
    next_entry_id: Option<i64>,
    /// The writer's filter of stored story keys, if loaded (see [`KeyFilter`]).
    key_filter: Option<&'a mut KeyFilter>,
    /// [`PollRecord::cluster_window`], in seconds.
    cluster_window: i64,
    /// [`PollRecord::listed`].
    listed: &'a HashSet<String>,
    /// Whether the read saw every item the feed lists (`PollOutcome::Fetched::read_whole`):
    /// see [`took_moved_item`].
    read_whole: bool,
    /// [`PollRecord::entries`], whose identities count as listed too.
    entries: &'a [EntryWrite],
}

impl PollContext<'_> {
    /// Takes the id for a new entry: what SQLite would choose for an AUTOINCREMENT table (one
    /// past the larger of the table's sequence and its largest id), counted on from there.
    /// The transaction holds the write lock, so no one else takes ids meanwhile.
    fn take_entry_id(&mut self, tx: &Prepared<'_>) -> rusqlite::Result<i64> {
        let id = match self.next_entry_id {
            Some(id) => id,
            None => query_row(
                tx,
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'entries'), 0),
                            coalesce((SELECT max(id) FROM entries), 0)) + 1",
                [],
                |r| r.get(0),
            )?,
        };
        self.next_entry_id = Some(id + 1);
        Ok(id)
    }

    /// Whether this poll's read listed `identity` (see [`PollRecord::listed`]). Asked only
    /// when a new entry may be an item under a new id, which is rare: the scan of the
    /// entries does not matter.
    fn listed(&self, identity: &str) -> bool {
        self.listed.contains(identity) || self.entries.iter().any(|w| w.entry.identity == identity)
    }
}

/// Stores an entry's exact-duplicate keys for its story (a key already stored keeps its story)
/// and adds them to the writer's key filter.
fn insert_keys(
    tx: &Prepared<'_>,
    poll: &mut PollContext<'_>,
    keys: &[([u8; 16], KeyKind)],
    story_id: i64,
) -> rusqlite::Result<()> {
    for (key, _) in keys {
        let stored = exec(
            tx,
            "INSERT OR IGNORE INTO story_keys (key, story_id) VALUES (?1, ?2)",
            params![key, story_id],
        )?;
        // A key that was already stored is in the filter already (loaded with the table, or
        // added when this writer stored it): counting it again would only reload sooner.
        if stored > 0
            && let Some(filter) = poll.key_filter.as_deref_mut()
        {
            filter.insert(key);
        }
    }
    Ok(())
}

fn write_entry<'a>(
    tx: &Prepared<'_>,
    poll: &mut PollContext<'a>,
    index: usize,
    write: &'a EntryWrite,
    hook: &mut Option<Box<dyn PollHook>>,
    result: &mut PollResult,
) -> Result<(), StoreError> {
    let (source_id, priority, now) = (poll.source_id, poll.priority, poll.now);
    let e = &write.entry;
    let pruned = poll.has_tombstones
        && query_opt(
            tx,
            "SELECT 1 FROM tombstones WHERE source_id = ?1 AND identity = ?2",
            params![source_id, e.identity],
            |_| Ok(true),
        )?
        .unwrap_or(false);
    if pruned {
        // Pruned after ingest looked (it found no tombstone): still listed, still needed.
        // Nothing to write for it: the prune made it after this poll started, so it is not
        // marked missed and this read does not mark it (see `note_listed_tombstones`).
        result.unchanged_entries += 1;
        return Ok(());
    }
    let authors = serde_json::to_string(&e.authors).unwrap_or_else(|_| "[]".into());
    let media = stored_media(e);
    // A record's identities are distinct (ingest keeps one entry per identity), so in a
    // source that had no entries each is new; the set guards a record that repeats one.
    let known_absent = poll
        .written_to_empty_source
        .as_mut()
        .is_some_and(|written| written.insert(e.identity.as_str()));
    let existing: Option<(i64, String, i64)> = if known_absent {
        None
    } else {
        query_opt(
            tx,
            "SELECT id, content_hash, story_id FROM entries WHERE source_id = ?1 AND identity = ?2",
            params![source_id, e.identity],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?
    };
    if let Some(legacy) = &write.replaces_hash {
        if let Some((entry_id, hash, story_id)) = &existing
            && hash == legacy
        {
            // (A write sent only to renew the base holds the current hash already.)
            if *hash != e.content_hash {
                exec(
                    tx,
                    "UPDATE entries SET content_hash = ?2, untracked_hash = ?3 WHERE id = ?1",
                    params![entry_id, e.content_hash, untracked_hash(e)],
                )?;
            }
            // The base the row is to hold: the entry's own (`xml:base`), else the URL a
            // redirect fetched the feed from, else none (the source's URL). A row stored
            // before bases were read, or before the feed changed or dropped its base, is
            // served with the right one from now on; feeds rendered before must go.
            let base = e.base_url.as_ref().or(poll.base_url.as_ref());
            if exec(
                tx,
                "UPDATE entries SET base_url = ?2 WHERE id = ?1 AND base_url IS NOT ?2",
                params![entry_id, base],
            )? > 0
            {
                result.rebased_entries += 1;
            }
            // The link: an item whose relative link resolved against another URL when its row
            // was written (the source's URL changed) takes the one resolved now, without being
            // taken for an edit (see `ingest`). Any other renewal finds the stored link (it is
            // hashed), but may find its canonical form made by an earlier release's rules: the
            // row and its story's URL key take the current one, once (review rv3 L1: kept, so
            // that a renewed row is keyed as a new one would be).
            let (old_link, old_url): (Option<String>, Option<String>) = query_row(
                tx,
                "SELECT link, canonical_url FROM entries WHERE id = ?1",
                [entry_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if old_link != e.link || old_url != e.canonical_url {
                exec(
                    tx,
                    "UPDATE entries SET link = ?2, canonical_url = ?3 WHERE id = ?1",
                    params![entry_id, e.link, e.canonical_url],
                )?;
                renew_story_link(tx, poll, e, *entry_id, *story_id, old_link, old_url, result)?;
            }
            // The enclosures and image: a row stored before they were read takes them here
            // (its hash without them was recognised, see `normalize::is_earlier_hash_of`).
            if exec(
                tx,
                "UPDATE entries SET media = ?2 WHERE id = ?1 AND media IS NOT ?2",
                params![entry_id, media],
            )? > 0
            {
                result.remedia_entries += 1;
            }
        }
        // Otherwise the row changed or went since ingest read its hash, which cannot happen
        // while a source's polls run one at a time (a pruned row has a tombstone, checked
        // above). This write has no signature or scores to store an edit with: the next poll
        // of a changed feed compares again.
        result.unchanged_entries += 1;
        return Ok(());
    }
    let keys = story_keys(e);
    // Stored after the exact keys (see `store_headline_key`), looked up after them (see
    // `join_by_headline`).
    let own_headline_key = write
        .headline
        .as_ref()
        .map(|h| headline_key(&h.key, h.title_only));

    if let Some((entry_id, hash, story_id)) = existing {
        if hash == e.content_hash {
            result.unchanged_entries += 1;
            return Ok(());
        }
        if only_tracking_changed(tx, entry_id, e, &authors)? {
            // The link's tracking parameters (`utm_campaign` stamped per day or per request)
            // are all that changed: no reader sees it (links are served without them), so it
            // is no edit: `updated`, `last_changed`, the story and its scores stay. The row
            // takes the link and the hash over it, so that the next poll listing this link
            // finds the hash it computes and skips the item before any work (left as it was,
            // the item went through the whole pipeline at every poll from then on). A later
            // return to the earlier link is tracking-only again.
            exec(
                tx,
                "UPDATE entries SET link = ?2, content_hash = ?3, untracked_hash = ?4 WHERE id = ?1",
                params![entry_id, e.link, e.content_hash, untracked_hash(e)],
            )?;
            result.unchanged_entries += 1;
            return Ok(());
        }

        // An edited item: update in place; its story keeps its id. When the feed gave no
        // usable date, `published` stays the time the entry was first seen (?14), rather
        // than becoming this fetch's time.
        exec(
            tx,
            "UPDATE entries SET title = ?2, link = ?3, canonical_url = ?4, authors = ?5,
                published = CASE WHEN ?14 THEN ?6 ELSE published END,
                updated = CASE WHEN ?14 THEN ?7 ELSE max(?7, published) END,
                html = ?8, fingerprint = ?9,
                content_hash = ?10, signature = coalesce(?11, signature), last_changed = ?12,
                base_url = ?13, media = ?15, untracked_hash = ?16, title_only = ?17
             WHERE id = ?1",
            params![
                entry_id,
                e.title,
                e.link,
                e.canonical_url,
                authors,
                secs(e.published),
                secs(e.updated),
                e.html,
                e.fingerprint,
                e.content_hash,
                write.signature,
                now,
                e.base_url.as_ref().or(poll.base_url.as_ref()),
                e.dated,
                media,
                untracked_hash(e),
                is_title_only(write)
            ],
        )?;
        insert_keys(tx, poll, &keys, story_id)?;
        store_headline_key(tx, poll, own_headline_key, story_id, secs(e.published))?;
        let representative: Option<i64> = query_row(
            tx,
            "SELECT representative FROM stories WHERE id = ?1",
            [story_id],
            |r| r.get(0),
        )?;
        if representative == Some(entry_id) {
            represent(tx, story_id, entry_id, e, &authors, now)?;
            write_scores(tx, story_id, &scores_of(write, hook), false)?;
        }
        result.updated_entries += 1;
        // The edit's signature goes to the near-duplicate index too: a corrected figure
        // must find the story for the copies that carry the correction.
        if write.signature.is_some() {
            result.placements.push(Placement {
                index,
                story: story_id,
                new_story: false,
                near_duplicate: false,
            });
        }
        return Ok(());
    }

    // A new entry: find its story by exact key, on each key's terms (see `story_keys`), then
    // by the near-duplicate hint, then by headline. The story is read once, for all the join
    // needs (see `JoinedStory`); one that no longer exists is not joined.
    let published = secs(e.published);
    let window = fingerprint_window(write, poll.cluster_window);
    let mut joined: Option<Join> = None;
    // Whether a story holding the entry's URL holds an item of this source already.
    let mut url_refused = false;
    for &(key, kind) in &keys {
        let Some(story) = keyed_story(tx, poll, &key)? else {
            continue;
        };
        let Some(read) = JoinedStory::read(tx, story)? else {
            // A key left behind by a story that is gone (only a damaged database has one:
            // keys go with their story). Dropped, so that the story this entry joins or
            // starts takes the key over, and later copies find it.
            exec(tx, "DELETE FROM story_keys WHERE key = ?1", [key])?;
            continue;
        };
        // Before the key's terms: the same item under another id is found whatever they say
        // (an undated item renumbered a month on is still the item its story holds).
        if took_moved_item(tx, poll, e, story, result)? {
            return Ok(());
        }
        let joins = match kind {
            KeyKind::Url => {
                url_refused = query_row(
                    tx,
                    "SELECT EXISTS (SELECT 1 FROM entries WHERE story_id = ?1 AND source_id = ?2)",
                    params![story, source_id],
                    |r| r.get(0),
                )?;
                !url_refused
            }
            KeyKind::Fingerprint => (read.published - published).abs() < window,
        };
        if joins {
            joined = Some((story, kind.evidence().to_string(), read));
            break;
        }
    }
    let mut near_duplicate = false;
    // The first story refused as the copy's templated sibling, named in its evidence should
    // it start a story of its own (an operator asking why two near-identical notices are two
    // stories).
    let mut sibling_of = None;
    // Candidate stories the same-feed rule refused: not asked again below.
    let mut own_feed_refused: Vec<i64> = Vec::new();
    for candidate in &write.near_matches {
        if joined.is_some() {
            break;
        }
        let story = match candidate.of {
            NearCopyOf::Story(story) => Some(story),
            NearCopyOf::EarlierEntry(earlier) => result
                .placements
                .iter()
                .rev()
                .find(|p| p.index == earlier)
                .map(|p| p.story),
        };
        if let Some(story) = story
            && let Some(read) = JoinedStory::read(tx, story)?
        {
            match near_copy_refusal(tx, hook, story, source_id, e)? {
                None => {
                    joined = Some((
                        story,
                        format!("near-duplicate: {}", candidate.evidence),
                        read,
                    ));
                    near_duplicate = true;
                }
                Some(Refusal::TemplatedSibling) => {
                    sibling_of.get_or_insert(story);
                }
                Some(Refusal::NotTheSameItem) => own_feed_refused.push(story),
            }
        }
    }
    if joined.is_none()
        && let Some(headline) = &write.headline
    {
        // Not into the sibling's story through a title-only copy of it under the same
        // headline ("Additions to the Entity List - Federal Register"), nor into a story the
        // same-feed rule refuses: an aggregator's copy of the feed's earlier item left that
        // story a title-only headline key, and the copy (a correction of three words or more,
        // another text under the same headline) joined it by its headline. A title-only copy
        // is exempt: its "text" is its headline and publisher, so an aggregator's copies of
        // one headline from two publishers would read as two items of its feed, and its
        // headline is all there is to compare.
        joined = join_by_headline(tx, poll, headline, published)?
            .filter(|(story, ..)| Some(*story) != sibling_of && !own_feed_refused.contains(story));
        if let (Some((story, ..)), Some(hook)) = (&joined, hook.as_deref())
            && !headline.title_only
            && own_items_refuse(tx, hook, *story, source_id, e)? == Some(true)
        {
            joined = None;
        }
    }
    if joined.is_none()
        && let (Some(headline), Some(hook)) = (&write.headline, hook.as_deref())
        && let Some(unrevised) = &headline.unrevised
        && !headline.title_only
    {
        joined = join_own_revision(tx, poll, hook, unrevised, source_id, e, window)?;
    }

    let entry_id = poll.take_entry_id(tx)?;
    let (story_id, evidence, joined_story) = match joined {
        Some((story, evidence, read)) => (story, evidence, Some(read)),
        None => {
            exec(
                tx,
                "INSERT INTO stories (representative, title, link, text, authors,
                                      published, updated, first_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    entry_id,
                    e.title,
                    e.link,
                    e.text,
                    authors,
                    secs(e.published),
                    secs(e.updated),
                    now
                ],
            )?;
            let evidence = match sibling_of {
                Some(of) => format!(
                    "first appearance (not story {of}: its templated sibling, other names in \
                     the same text)"
                ),
                None => "first appearance".to_string(),
            };
            (tx.last_insert_rowid(), evidence, None)
        }
    };
    let new_story = joined_story.is_none();

    exec(
        tx,
        "INSERT INTO entries (id, source_id, identity, story_id, title, link, canonical_url,
                              authors, published, updated, html, fingerprint, content_hash,
                              signature, evidence, first_seen, last_changed, base_url, media,
                              untracked_hash, title_only)
         VALUES (?16, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15,
                 ?17, ?18, ?19, ?20)",
        params![
            source_id,
            e.identity,
            story_id,
            e.title,
            e.link,
            e.canonical_url,
            authors,
            secs(e.published),
            secs(e.updated),
            e.html,
            e.fingerprint,
            e.content_hash,
            write.signature,
            evidence,
            now,
            entry_id,
            e.base_url.as_ref().or(poll.base_url.as_ref()),
            media,
            untracked_hash(e),
            is_title_only(write)
        ],
    )?;
    for &(key, kind) in &keys {
        let (take_over_before, url) = match kind {
            KeyKind::Url if url_refused => (published, e.canonical_url.as_deref()),
            KeyKind::Url => (i64::MIN, None),
            KeyKind::Fingerprint => (outside_window_before(published, window), None),
        };
        store_key(tx, poll, &key, story_id, take_over_before, url)?;
    }
    store_headline_key(tx, poll, own_headline_key, story_id, published)?;

    match joined_story {
        None => write_scores(tx, story_id, &scores_of(write, hook), true)?,
        Some(story) => {
            // The story's first publication time is the earliest of its appearances; a late
            // appearance never makes it look new. (Only an earlier time writes: an UPDATE
            // rewrites the whole row, text included, even when nothing changes.)
            if secs(e.published) < story.published {
                // `min`, as the fold below writes it: the stored time, not the one read, is
                // the one to beat.
                exec(
                    tx,
                    "UPDATE stories SET published = min(published, ?2) WHERE id = ?1",
                    params![story_id, secs(e.published)],
                )?;
            }
            if story.represented_better_by(priority, source_id, e) {
                represent(tx, story_id, entry_id, e, &authors, now)?;
                write_scores(tx, story_id, &scores_of(write, hook), false)?;
            }
        }
    }
    // After this copy's own claim to represent, so that a folded copy of higher priority
    // is weighed against the representative the story has now.
    if let Some(headline) = write.headline.as_ref().filter(|h| !h.title_only)
        && let Some(folded) = fold_in_title_only_story(tx, poll, headline, story_id, published)?
    {
        // A story this poll created and the fold deleted is no new story, and its copies
        // are in this one now.
        for placement in result.placements.iter_mut().filter(|p| p.story == folded) {
            placement.story = story_id;
            if std::mem::take(&mut placement.new_story) {
                result.new_stories -= 1;
            }
        }
    }
    result.new_entries += 1;
    if new_story {
        result.new_stories += 1;
    }
    result.placements.push(Placement {
        index,
        story: story_id,
        new_story,
        near_duplicate,
    });
    Ok(())
}

/// The same item under another id: a feed that makes up its guids (and session links) at
/// each request, or renumbers them once, lists the same title and text again, with the
/// same date or none. The story holds it from this source already; storing it again would
/// add an appearance per poll, for ever ("Also reported by" the source itself, once per
/// poll). Only a text long enough for its fingerprint to be a story key counts (see
/// `story_keys`); a notice the source publishes again under another date is an entry of
/// its own. Looked up only in a story one of the entry's keys names, before that key's terms
/// are weighed (see [`story_keys`]): an item the story holds from this source under this
/// fingerprint put that key there (or its URL's), so a near-duplicate or headline join (most
/// copies that join a story) cannot find one, and is spared the read; and the item is found
/// even where the key would not join, as when an undated item is renumbered a month after
/// its story began (its fingerprint only joins within the window) or its story holds it by
/// URL (a URL joins no story holding an item of the same source).
///
/// Such a row is this item only if this read no longer lists the row's identity: the item
/// moved to a new id. A row whose identity is listed too is a sibling with the same words
/// (an undated "Notice of public hearing" listed twice under two guids and links): the new
/// entry is stored as an appearance of its own. Among rows not listed, one with the entry's
/// canonical URL is taken first (siblings renumbered together keep their links). The row
/// taken for the item is re-keyed to the new identity and link (its dates, story, scores
/// and fingerprint key stay; no appearance is added), so that the next poll listing the new
/// id finds its row; left under the old id, the item went through the whole pipeline at
/// every poll from then on. Its content hash stays the one of what the row holds: the words
/// matched, but the HTML or authors may differ, and the next poll compares them as for any
/// known entry (a link alone renews the hash there, see `only_tracking_changed`; the dates
/// are no part of the hash, so the row keeps those it holds). A representative's story
/// takes a link served differently too: the feeds tell the representative's appearance by
/// its link, and a story still holding the old one listed its own source under "Also
/// reported by". The new identity has no row (the caller's lookup found none) and no
/// tombstone (checked first), so the source's UNIQUE (source, identity) holds. A new canonical URL becomes a key of the story, so that another
/// outlet's copy carrying it joins by key, as it would have had the item been stored under
/// it; the old URL's key goes, unless another entry of the story still has that URL (a copy
/// that joined by it), so a session link that changes at every poll keeps one key, not one
/// more per poll. (The fingerprint's key stays: the words are the same.)
///
/// Unlike the story keys (a UNIQUE key, never read-then-write), this reads, then writes.
/// That is safe here: the one writer thread runs every poll's writes, and this read and
/// write happen inside this poll's IMMEDIATE transaction (its savepoint in a batch), which
/// holds SQLite's write lock, so no other write can come between them.
///
/// Returns whether it did (the entry is then written, as that row).
fn took_moved_item(
    tx: &Prepared<'_>,
    poll: &mut PollContext<'_>,
    e: &Entry,
    story: i64,
    result: &mut PollResult,
) -> Result<bool, StoreError> {
    if e.title.len() + e.text.len() < 20 {
        return Ok(false);
    }
    // A read that left the middle of a very long feed unread cannot tell that an item it did
    // not see is gone from the feed. A dated entry is taken only for a row of its date, which
    // a feed sorted by date lists beside it, in the part read; an undated one could be taken
    // for any row of its words, one still listed in the unread middle among them (review
    // rv1 L2), so it is a new entry of its story instead. (Refusing every re-key in such a
    // read made a long feed that changes its ids at every request store its items again at
    // every poll: review rv5.)
    if !poll.read_whole && !e.dated {
        return Ok(false);
    }
    let same: Vec<(i64, String, Option<String>, Option<String>)> = tx.with_statement(
        "SELECT id, identity, link, canonical_url FROM entries
              WHERE story_id = ?1 AND source_id = ?2
                 AND fingerprint = ?3 AND (NOT ?4 OR published = ?5)
             ORDER BY canonical_url IS ?6 DESC, id",
        |s| {
            s.query_map(
                params![
                    story,
                    poll.source_id,
                    e.fingerprint,
                    e.dated,
                    secs(e.published),
                    e.canonical_url
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?
            .collect()
        },
    )?;
    if let Some((moved, _, old_link, old_url)) = same
        .iter()
        .find(|(_, identity, _, _)| !poll.listed(identity))
    {
        exec(
            tx,
            // The hash stays over the link the row had: what its untracked one is, is not known.
            "UPDATE entries SET identity = ?2, link = ?3, canonical_url = ?4,
                                untracked_hash = NULL
              WHERE id = ?1",
            params![moved, e.identity, e.link, e.canonical_url],
        )?;
        renew_story_link(
            tx,
            poll,
            e,
            *moved,
            story,
            old_link.clone(),
            old_url.clone(),
            result,
        )?;
        result.unchanged_entries += 1;
        return Ok(true);
    }
    Ok(false)
}

/// What follows an entry's link (`old_link`, canonically `old_url`) renewed to `e`'s without
/// an edit (an item under a new id, or one whose relative link now resolves against the
/// source's new URL), in its story `story`. A new canonical URL becomes a key of the story, so
/// that another outlet's copy carrying it joins by key; the old URL's key goes, unless another
/// entry of the story still has that URL (a copy that joined by it), so a session link that
/// changes at every poll keeps one key, not one more per poll. (The fingerprint's key stays:
/// the words are the same.) A representative's story takes a link served differently too:
/// the feeds tell the representative's appearance by its link.
#[allow(clippy::too_many_arguments)]
fn renew_story_link(
    tx: &Prepared<'_>,
    poll: &mut PollContext<'_>,
    e: &Entry,
    entry_id: i64,
    story: i64,
    old_link: Option<String>,
    old_url: Option<String>,
    result: &mut PollResult,
) -> Result<(), StoreError> {
    if e.canonical_url != old_url {
        if let Some(url) = &e.canonical_url {
            insert_keys(tx, poll, &[(url_key(url), KeyKind::Url)], story)?;
        }
        // The row holds the new URL already: an entry found here is another one.
        if let Some(old) = &old_url {
            exec(
                tx,
                "DELETE FROM story_keys WHERE key = ?1 AND story_id = ?2
                             AND NOT EXISTS (SELECT 1 FROM entries
                                              WHERE story_id = ?2 AND canonical_url = ?3)",
                params![url_key(old), story, old],
            )?;
        }
    }
    // Only a link that reads differently once served (links are served without their
    // tracking parameters) changes what the feeds show: then their version is bumped
    // and the story's link renewed. A feed behind two backends that write different
    // guids for one item (its link the same) moves the row between them at every poll:
    // that is this one row's identity written, and no feed rendered again for it.
    if old_link.as_deref().map(without_tracking) != e.link.as_deref().map(without_tracking) {
        exec(
            tx,
            "UPDATE stories SET link = ?2 WHERE id = ?1 AND representative = ?3",
            params![story, e.link, entry_id],
        )?;
        result.rekeyed_entries += 1;
    }
    Ok(())
}

/// Whether the stored row `entry_id` differs from `e` at most in its link's tracking
/// parameters ([`without_tracking`]: `utm_*`, `fbclid`, …, which links are served without)
/// and in what the content hash does not read: the links are the same once those parameters
/// are removed, and the hashes over them are too (`entries.untracked_hash`, or the row's
/// content hash when its link has none; see [`Entry::untracked_hash`]). So a feed that
/// stamps a campaign on its links and a token on its tracking pixel (or a nonce class, or new
/// white space) at every request does not make its items look edited (review, session 28:
/// the HTML was compared byte for byte). The dates are not compared, as the content hash
/// leaves them out (a date alone is no edit): a feed that stamps both its dates and its
/// links' campaign parameters at every request does not make its items look edited either.
/// A fragment, the order of the other parameters or their case still make an edit (a live
/// blog's `#update-4` leads elsewhere than its `#update-3`), unlike what the canonical URL
/// leaves out.
///
/// A row an earlier release wrote (no `untracked_hash`), a row moved to a new id (whose
/// hash stays over the link it had), or one whose hash is in an earlier form, is compared
/// as before: the same title, HTML byte
/// for byte, authors (`authors` as stored) and enclosures as the hash reads them
/// ([`crate::domain::Media::same_enclosures_as_hashed`]). Read only for an entry whose
/// content hash changed (one indexed row read).
fn only_tracking_changed(
    tx: &Prepared<'_>,
    entry_id: i64,
    e: &Entry,
    authors: &str,
) -> Result<bool, StoreError> {
    type Stored = (Option<String>, Option<String>, String, Option<String>, bool);
    let Some(link) = &e.link else {
        return Ok(false);
    };
    let stored: Option<Stored> = query_opt(
        tx,
        "SELECT link, media, content_hash, untracked_hash, html = ?3 FROM entries
          WHERE id = ?1 AND title = ?2 AND authors = ?4",
        params![entry_id, e.title, e.html, authors],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )?;
    let Some((Some(stored_link), stored_media, stored_hash, stored_untracked, same_html)) = stored
    else {
        return Ok(false);
    };
    let untracked_link = without_tracking(&stored_link);
    if untracked_link != without_tracking(link) {
        return Ok(false);
    }
    // The row's hash over its link without tracking parameters, when this release's form has
    // it: the hash's form is what precedes its `:`.
    fn form(hash: &str) -> Option<&str> {
        hash.split_once(':').map(|(form, _)| form)
    }
    let current = form(&e.content_hash);
    let row_untracked = match stored_untracked.as_deref() {
        Some("") => Some(stored_hash),
        Some(_) => stored_untracked,
        None => None,
    }
    .filter(|hash| form(hash) == current);
    if let Some(row_untracked) = row_untracked {
        return Ok(row_untracked == *e.untracked_hash.as_ref().unwrap_or(&e.content_hash));
    }
    if !same_html {
        return Ok(false);
    }
    // The enclosures as the hash reads them, not the stored JSON: the campaign a feed stamps
    // on its link it stamps on its enclosures' URLs too, and a length or an image alone is no
    // edit (the row keeps what it holds of those until its next edit). NULL is no media; a
    // row that cannot be read is taken as edited, which rewrites it.
    let stored_media = match stored_media.as_deref().map(serde_json::from_str) {
        None => crate::domain::Media::default(),
        Some(Ok(media)) => media,
        Some(Err(_)) => return Ok(false),
    };
    Ok(stored_media.same_enclosures_as_hashed(&e.media))
}

/// What `entries.untracked_hash` holds for `e`: its [`Entry::untracked_hash`], or `''` when
/// its link has no tracking parameters (the row's content hash is then that hash). NULL is
/// left for rows this cannot be said of: those earlier releases wrote, and a row moved to a
/// new id, whose hash stays over the link it had (see `took_moved_item`).
fn untracked_hash(e: &Entry) -> &str {
    e.untracked_hash.as_deref().unwrap_or("")
}

/// An entry's media as `entries.media` holds them: compact JSON (`domain::Media`'s serde
/// form), `None` (NULL) when it has none, which is most entries (no allocation then).
fn stored_media(e: &Entry) -> Option<String> {
    (!e.media.is_empty())
        .then(|| serde_json::to_string(&e.media).ok())
        .flatten()
}

/// What a new entry's join needs of its story, read once when the join is decided: when it
/// was first published, and the priority of its representative's source with the length of
/// its text (the story's own copy of the representative's), which `represented_better_by`
/// weighs. Read before the entry is written; nothing the write does changes them.
struct JoinedStory {
    published: i64,
    /// `None` when the representative entry or its source is gone: any copy represents better.
    representative: Option<CopyWeight>,
}

impl JoinedStory {
    /// The story as a join needs it; `None` if it does not exist (a prune can remove a story
    /// between the near-duplicate lookup, made against the in-memory index, and this write).
    /// Lengths are in bytes: SQLite reads `octet_length` from the row header, where `length`
    /// (characters) would read the whole text.
    fn read(tx: &Prepared<'_>, story: i64) -> Result<Option<JoinedStory>, StoreError> {
        Ok(query_opt(
            tx,
            "SELECT st.published, s.priority, octet_length(st.text), s.id FROM stories st
               LEFT JOIN entries en ON en.id = st.representative
               LEFT JOIN sources s ON s.id = en.source_id
              WHERE st.id = ?1",
            [story],
            |r| {
                let priority: Option<i32> = r.get(1)?;
                let weight = |priority| {
                    Ok::<_, rusqlite::Error>(CopyWeight {
                        priority,
                        text_bytes: usize::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                        source: r.get(3)?,
                    })
                };
                Ok(JoinedStory {
                    published: r.get(0)?,
                    representative: priority.map(weight).transpose()?,
                })
            },
        )?)
    }

    /// Whether a joining entry is to represent the story, by the one rule
    /// ([`CopyWeight::represents_better_than`]) that the re-pick after a priority change
    /// replays too.
    fn represented_better_by(&self, priority: i32, source: i64, e: &Entry) -> bool {
        CopyWeight {
            priority,
            text_bytes: e.text.len(),
            source,
        }
        .represents_better_than(self.representative)
    }
}

fn represent(
    tx: &Prepared<'_>,
    story: i64,
    entry_id: i64,
    e: &Entry,
    authors: &str,
    now: i64,
) -> Result<(), StoreError> {
    exec(
        tx,
        "UPDATE stories SET representative = ?2, title = ?3, link = ?4, text = ?5,
            authors = ?6, updated = max(updated, ?7)
         WHERE id = ?1",
        params![story, entry_id, e.title, e.link, e.text, authors, now],
    )?;
    Ok(())
}

/// The entry's topic scores: the pipeline's, or the hook's when the pipeline left them to be
/// worked out only if needed.
fn scores_of<'w>(
    write: &'w EntryWrite,
    hook: &mut Option<Box<dyn PollHook>>,
) -> std::borrow::Cow<'w, [TopicScore]> {
    match (&write.scores, hook) {
        (Some(scores), _) => std::borrow::Cow::Borrowed(scores),
        (None, Some(hook)) => std::borrow::Cow::Owned(hook.score(&write.entry)),
        (None, None) => {
            // The pipeline leaves scores out only for polls it gives a hook.
            debug_assert!(false, "an entry without scores in a poll without a hook");
            tracing::error!(identity = %write.entry.identity, "entry stored without topic scores");
            std::borrow::Cow::Borrowed(&[])
        }
    }
}

/// Sets a story's topic scores; `new_story`: it has none yet, so there is nothing to delete.
fn write_scores(
    tx: &impl Statements,
    story: i64,
    scores: &[TopicScore],
    new_story: bool,
) -> Result<(), StoreError> {
    if !new_story {
        exec(tx, "DELETE FROM story_topics WHERE story_id = ?1", [story])?;
    }
    for s in scores {
        let why = serde_json::to_string(&s.why).unwrap_or_else(|_| "[]".into());
        exec(
            tx,
            "INSERT INTO story_topics (story_id, topic, score, matched, why) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![story, s.topic, f64::from(s.score), s.matched, why],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(tx: &impl Statements) -> i64 {
        query_row(tx, "SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_poll_keeps_each_statement_prepared_once_and_reuses_it() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        let tx = Prepared::new(&conn);
        for x in 0..5 {
            exec(&tx, "INSERT INTO t (x) VALUES (?1)", [x]).unwrap();
            assert_eq!(count(&tx), x + 1);
        }
        let found = query_opt(&tx, "SELECT x FROM t WHERE x = ?1", [3], |r| {
            r.get::<_, i64>(0)
        });
        assert_eq!(found.unwrap(), Some(3));
        let missing = query_opt(&tx, "SELECT x FROM t WHERE x = ?1", [9], |r| {
            r.get::<_, i64>(0)
        });
        assert_eq!(missing.unwrap(), None);
        // Three statements, each prepared once for the twelve runs.
        assert_eq!(tx.statements.borrow().len(), 3);
        // Every kept statement was reset after its run: none is mid-step, holding a read.
        assert!(!conn.is_busy());
        // A rollback to a savepoint taken while they are kept is seen through them.
        conn.execute_batch("SAVEPOINT s; INSERT INTO t (x) VALUES (7)")
            .unwrap();
        assert_eq!(count(&tx), 6);
        conn.execute_batch("ROLLBACK TO s; RELEASE s").unwrap();
        assert_eq!(count(&tx), 5);
        assert!(!conn.is_busy());
    }

    #[test]
    fn a_failing_statement_is_reported_and_the_poll_goes_on() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (x INTEGER UNIQUE)")
            .unwrap();
        let tx = Prepared::new(&conn);
        exec(&tx, "INSERT INTO t (x) VALUES (?1)", [1]).unwrap();
        let duplicate = exec(&tx, "INSERT INTO t (x) VALUES (?1)", [1]).unwrap_err();
        assert_eq!(
            duplicate.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ConstraintViolation),
            "{duplicate}"
        );
        // The kept statement that failed was reset: it runs again at once, holding no read.
        assert!(!conn.is_busy());
        exec(&tx, "INSERT INTO t (x) VALUES (?1)", [2]).unwrap();
        let missing = exec(&tx, "INSERT INTO nowhere (x) VALUES (?1)", [1]).unwrap_err();
        assert!(missing.to_string().contains("no such table"), "{missing}");
        assert_eq!(
            tx.statements.borrow().len(),
            1,
            "one statement kept, none for the SQL that did not prepare"
        );
        assert_eq!(count(&tx), 2, "the failures wrote nothing");
        assert!(!conn.is_busy());
    }
}
