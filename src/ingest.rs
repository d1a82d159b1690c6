//! The orchestrator: runs one source through fetch → parse → normalize → classify → cluster →
//! store. Stages never call each other; this is the only place that sequences them. The CPU
//! pool signs and scores each entry (skipping the score of a copy the index already places);
//! the store's writer places it among the stories just before the poll's write.

mod cpu_pool;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{Instrument, error, info, info_span, warn};

use crate::classify::Classifier;
use crate::cluster::{
    ClusterConfig, Signature, StoryIndex, headline_of, one_item_of_a_feed, templated_siblings,
};
use crate::discover::{Discovery, discover, page_message};
use crate::domain::{Entry, Source, StoryId, TopicScore};
use crate::fetch::{FetchError, FetchOutcome, FetchRequest, Fetcher};
use crate::normalize::{
    IdentityInput, NormalizeContext, SkipReason, is_earlier_hash_of, item_identity, normalize_item,
    shared_identities, shared_identity,
};
use crate::parse::{ParseError, parse_feed_for};
use crate::scheduler::{Timing, backoff_delay, failure_earliest, next_due, saturating_add_std};
use crate::store::{
    DueJitter, EntryWrite, KnownEntries, NearCopyOf, NearMatch, PollHook, PollOutcome, PollRecord,
    PollResult, PollState, Store, StoreError,
};
use cpu_pool::CpuPool;

/// The classifier in force; replaced as a whole when topic profiles are reloaded.
pub type SharedClassifier = Arc<RwLock<Arc<Classifier>>>;

/// Settings the orchestrator needs beyond what the stages take.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Items taken from one poll at most (newest first).
    pub max_items_per_poll: usize,
    /// Spread of sources sharing a schedule.
    pub max_jitter: Duration,
    /// First retry delay after a failure.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
    /// Items published before now minus this are skipped: news older than the retention is
    /// not taken in (an archive feed relisting years of items). Pruning goes by first seen.
    pub retention: Option<chrono::Duration>,
    /// Near-duplicate window.
    pub cluster: ClusterConfig,
}

impl IngestSettings {
    /// The rules the due times of polls follow.
    pub fn timing(&self) -> Timing {
        Timing {
            max_jitter: self.max_jitter,
            backoff_base: self.backoff_base,
            backoff_cap: self.backoff_cap,
            max_retry_after: MAX_RETRY_AFTER,
        }
    }
}

/// What one poll of one source did, for logs, the `fetch` summary and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct PollReport {
    /// Source name.
    pub source: String,
    /// `ok`, `not_modified` or an error kind (`timeout`, `parse`, `store`...).
    pub outcome: String,
    /// The error message with its causes, when the poll failed.
    pub error: Option<String>,
    /// HTTP status, when the server answered.
    pub http_status: Option<u16>,
    /// Body bytes received.
    pub bytes: u64,
    /// Items in the feed.
    pub items: usize,
    /// Items skipped (no identity, too old, over the per-poll cap).
    pub skipped: usize,
    /// Entries stored for the first time.
    pub new_entries: usize,
    /// Entries updated in place.
    pub updated_entries: usize,
    /// Stories created.
    pub new_stories: usize,
    /// Entries that joined an existing story as a near-duplicate.
    pub near_merges: usize,
    /// New entries the near-duplicate index placed before they were scored: copies, scored
    /// only if they came to represent their story.
    pub unscored_copies: usize,
    /// Wall time of the poll.
    pub duration: Duration,
    /// When the source is due next.
    pub next_due: DateTime<Utc>,
    /// A reload changed the source's schedule while the poll ran, so `next_due` is the old
    /// schedule's: the source's name and schedule now ([`PollResult::schedule_moved`]).
    pub schedule_moved: Option<crate::store::MovedSchedule>,
    /// How long a scheduler should hold the source back whatever the database says, when the
    /// due time stored there may not reflect this poll (its result could not be stored, the
    /// poll crashed or was cancelled, or the source's URL in the database was no longer the
    /// one polled: [`PollResult::url_changed`]); `None` when it does. A span and not a time: the
    /// wall clock read when the poll began may have been stepped back since, and a time
    /// would then hold the source back for the step as well.
    pub defer_for: Option<Duration>,
}

impl PollReport {
    /// A report of nothing done yet, due next at `next_due`.
    fn blank(source: &str, next_due: DateTime<Utc>) -> PollReport {
        PollReport {
            source: source.to_string(),
            outcome: String::new(),
            error: None,
            http_status: None,
            bytes: 0,
            items: 0,
            skipped: 0,
            new_entries: 0,
            updated_entries: 0,
            new_stories: 0,
            near_merges: 0,
            unscored_copies: 0,
            duration: Duration::ZERO,
            next_due,
            schedule_moved: None,
            defer_for: None,
        }
    }

    /// Whether the poll succeeded (fetched or not modified).
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }

    /// A failed poll with no further detail: `outcome` as its label, `error` as its message.
    /// For callers that lost a poll's own report (its task failed).
    pub fn failed(source: &str, outcome: &str, error: String, next_due: DateTime<Utc>) -> Self {
        PollReport {
            outcome: outcome.to_string(),
            error: Some(error),
            ..PollReport::blank(source, next_due)
        }
    }
}

/// Runs polls. Cheap to clone; clones share the fetcher, store, classifier and index.
#[derive(Clone)]
pub struct Ingestor {
    store: Store,
    fetcher: Arc<RwLock<Fetcher>>,
    classifier: SharedClassifier,
    /// Built from the store the first time a poll brings new entries (a pass of 304s never
    /// needs it), then kept up to date.
    ///
    /// Placing lookups and inserts happen on the store's writer thread, in write order (see
    /// [`ClusterHook`]); the CPU pool only reads it, to leave copies unscored (see
    /// [`Ingestor::prepare`]). `index_rebuild` makes sure only one poll rebuilds it.
    index: Arc<std::sync::RwLock<Option<StoryIndex>>>,
    index_rebuild: Arc<Mutex<()>>,
    /// CPU-bound work (parse, normalize, sign, classify) runs here, on one thread per core:
    /// more would not be faster, and each thread keeps its own caches.
    cpu: Arc<CpuPool>,
    settings: Arc<RwLock<IngestSettings>>,
    last_prune: Arc<std::sync::Mutex<Instant>>,
    /// Polls handed to the writer whose commit has not been answered yet (see
    /// [`Ingestor::poll`]), at most [`QUEUED_POLLS`]: each holds its entries.
    queued_polls: Arc<Semaphore>,
    /// Polls fetching or being prepared, not yet handed to the writer (see [`PreparingPoll`]).
    preparing: Arc<AtomicUsize>,
}

/// A poll between its start and the hand-over of its writes to the store. While none is, no
/// CPU work is left until the next poll starts, but the writer may still have polls queued:
/// the store is asked to copy its WAL meanwhile, on the core that would idle (see
/// [`Store::copy_wal_soon`]); the next poll to start withdraws the ask. (Should a start and
/// the last hand-over cross, an ask may stand while a poll prepares: the copy then merely
/// comes early.)
struct PreparingPoll<'a> {
    count: &'a AtomicUsize,
    store: &'a Store,
}

impl<'a> PreparingPoll<'a> {
    fn start(count: &'a AtomicUsize, store: &'a Store) -> Self {
        if count.fetch_add(1, Ordering::AcqRel) == 0 {
            store.copy_wal_soon(false);
        }
        PreparingPoll { count, store }
    }
}

impl Drop for PreparingPoll<'_> {
    fn drop(&mut self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.store.copy_wal_soon(true);
        }
    }
}

/// The outcome label of a poll that panicked.
pub const CRASHED: &str = "crashed";

/// The outcome label of a poll ended by shutdown.
pub const CANCELLED: &str = "cancelled";

/// At most this many polls wait for their commit after giving back their concurrency slot,
/// each holding its entries. On the feed farm, 12 made the cold pass as fast as 32 did, and
/// its peak memory 2 MB smaller (3.6 MB above polls that keep their slot to the end).
const QUEUED_POLLS: usize = 12;

/// How often the near-duplicate index drops stories older than the window.
const INDEX_PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Why a fetched body could not be prepared for writing.
#[derive(Debug)]
enum PrepareError {
    /// The feed did not parse (or its parser crashed): recorded against the source.
    Parse(ParseError),
    /// Its known entries could not be read: without them an entry stored by an earlier
    /// release could be taken for an edit, so the poll is retried like a failed write.
    Store(StoreError),
}

impl From<ParseError> for PrepareError {
    fn from(e: ParseError) -> Self {
        PrepareError::Parse(e)
    }
}

/// The near-duplicate step of one poll, run by the store's writer thread around the poll's
/// write: looks each entry up just before it is written and adds the new stories just after.
/// Polls pass through the writer one at a time in queue order, so two copies polled at the
/// same moment cannot both miss each other, and no lock is held while a poll waits its turn.
///
/// It also keeps the poll's scores those of the profiles in force when it writes: a poll
/// whose profiles a reload replaced while it ran has its entries scored again on the writer
/// (see [`ClusterHook::score_with_the_profiles_in_force`]). Polls without signatures (sources
/// that opt out of clustering) get one for that alone.
struct ClusterHook {
    index: Arc<std::sync::RwLock<Option<StoryIndex>>>,
    /// Each entry's signature and publication time, in entry order.
    signatures: Vec<Option<(Signature, DateTime<Utc>)>>,
    /// Whether any entry has a signature: without, the index is neither read nor written.
    clustered: bool,
    last_prune: Arc<std::sync::Mutex<Instant>>,
    /// The classifier the poll scored its entries with; scores the copies the pipeline left
    /// unscored, should one come to represent its story.
    classifier: Arc<Classifier>,
    /// The classifier in force, compared with `classifier` when the poll is written.
    shared: SharedClassifier,
}

impl ClusterHook {
    /// When a reload replaced the classifier since the poll took it, the scores the pipeline
    /// worked out are those of the old profiles, and the sweep that re-scores every stored
    /// story may already have passed this poll's stories (or their ids): written, they would
    /// stay stale until the stories change again. They are dropped and the entries scored
    /// with the classifier in force instead, each only if it comes to represent its story
    /// ([`PollHook::score`]). The writer runs this just before the write, one poll at a time,
    /// so a reload after it is one the sweep it starts sees written. Without a reload (the
    /// usual case) this is one pointer comparison per poll.
    fn score_with_the_profiles_in_force(&mut self, entries: &mut [EntryWrite]) {
        {
            let in_force = self.shared.read().unwrap_or_else(PoisonError::into_inner);
            if Arc::ptr_eq(&self.classifier, &in_force) {
                return;
            }
            self.classifier = Arc::clone(&in_force);
        }
        for write in entries {
            // A hash renewal writes no scores (see `EntryWrite::replaces_hash`).
            if write.replaces_hash.is_none() {
                write.scores = None;
            }
        }
    }
}

/// Stored stories offered to the writer for one near-copy, best first. Stories with the same
/// text that the writer tells apart (one template's anti-dumping notices for Angola,
/// Kazakhstan and four other countries, opened the same day) are all candidates of a
/// feed's copy of one of them, and its own story may rank below its siblings: the writer
/// asks each in turn, and a refusal costs one text comparison.
const STORED_CANDIDATES: usize = 8;

impl PollHook for ClusterHook {
    fn before_write(&mut self, entries: &mut [EntryWrite]) {
        self.score_with_the_profiles_in_force(entries);
        if !self.clustered {
            return;
        }
        let index = read_index(&self.index);
        let Some(index) = index.as_ref() else {
            return;
        };
        // The poll's own entries, each under its position: a copy of an earlier entry of the
        // same poll joins that entry's story (an original and its update, a backlog's
        // duplicates), but only as the same item (`cluster::one_item_of_a_feed`: the same
        // headline or a declared revision, and one item's text): one feed's items that share
        // their text under other headlines, or with other names in it, are its batch of
        // templated notices (anti-dumping regulations on five products, Entity List rules for
        // other entities), not copies. Only for polls of more than one signed entry. Stored
        // stories that match come first, best first; the earlier entry is the writer's last
        // choice, for when it refuses them all (a story holding an item of this feed that is
        // not this item, or one whose text is this one's templated sibling: `store::write`'s
        // `near_copy_refusal`).
        let mut this_poll = (self.signatures.iter().flatten().nth(1).is_some())
            .then(|| StoryIndex::new(index.config().clone()));
        for (position, signature) in self.signatures.iter().enumerate() {
            let Some((sig, published)) = signature else {
                continue;
            };
            let (before, rest) = entries.split_at_mut(position);
            let Some(write) = rest.first_mut() else {
                break;
            };
            // The best stored stories: the writer may refuse one (a story holding an item of
            // this feed that is not this item, or whose text is this one's templated sibling
            // for another country or product), and the copy's own story may be the next.
            for found in index.find_ranked(sig, *published, STORED_CANDIDATES) {
                write.near_matches.push(NearMatch {
                    of: NearCopyOf::Story(found.story),
                    evidence: found.summary,
                });
            }
            if let Some((earlier, found)) = this_poll
                .as_ref()
                .and_then(|p| p.find(sig, *published))
                .and_then(|found| {
                    let earlier = usize::try_from(found.story).ok()?;
                    let (own, new) = (&before.get(earlier)?.entry, &write.entry);
                    one_item_of_a_feed(&own.title, &own.text, &new.title, &new.text)
                        .then_some((earlier, found))
                })
            {
                write.near_matches.push(NearMatch {
                    of: NearCopyOf::EarlierEntry(earlier),
                    evidence: found.summary,
                });
            }
            if let Some(this_poll) = this_poll.as_mut() {
                let position = StoryId::try_from(position).unwrap_or(StoryId::MAX);
                this_poll.insert_new_story(position, sig, *published);
            }
        }
    }

    fn one_item_of_a_feed(&self, own_title: &str, own_html: &str, new: &Entry) -> bool {
        one_item_of_a_feed(
            own_title,
            &crate::normalize::html_to_text(own_html),
            &new.title,
            &new.text,
        )
    }

    fn templated_siblings(&self, title: &str, text: &str, new: &Entry) -> bool {
        templated_siblings(title, text, &new.title, &new.text)
    }

    fn after_write(&mut self, result: &PollResult) {
        if !self.clustered {
            return;
        }
        let mut index = write_index(&self.index);
        let Some(index) = index.as_mut() else {
            return;
        };
        for placement in &result.placements {
            if let Some(Some((sig, published))) = self.signatures.get(placement.index) {
                if placement.new_story {
                    index.insert_new_story(placement.story, sig, *published);
                } else {
                    index.insert(placement.story, sig, *published);
                }
            }
        }
        // Pruning compacts the whole index: do it now and then, not after every poll.
        // An instant is never half-written.
        let mut last_prune = self
            .last_prune
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last_prune.elapsed() >= INDEX_PRUNE_EVERY {
            index.prune(Utc::now());
            *last_prune = Instant::now();
        }
    }

    fn rolled_back(&mut self, result: &PollResult) {
        // The stories this poll created do not exist, and their ids come back for others:
        // left in the index, a later copy of this poll's text would be folded into whichever
        // unrelated story gets the id (seen after a full disk). Appearances it added to
        // existing stories only point at stories that exist, and are left.
        let created: Vec<_> = result
            .placements
            .iter()
            .filter(|p| p.new_story)
            .map(|p| p.story)
            .collect();
        if let Some(index) = write_index(&self.index).as_mut() {
            index.forget(&created);
        }
    }

    fn score(&mut self, entry: &Entry) -> Vec<TopicScore> {
        // Its per-thread caches go when the writer is idle (see `Ingestor::new`).
        self.classifier.score(&entry.title, &entry.text)
    }
}

/// Most bases one poll reads its items again against (see [`rebased_matches`]): a source
/// whose URL changed has one (its old URL); more come only from rows stored through several
/// redirects, and each costs a read of the items asked about.
const MAX_REBASES: usize = 4;

/// The positions in `fresh` (new and changed entries, each with the hash its row holds) of
/// the entries among `rebase` (each with the base its row was written with) that, normalized
/// again from `body` against that base, hash as their rows do, in the current form or an
/// earlier one (see `is_earlier_hash_of`): items whose only difference from their rows is the
/// URL their relative link and enclosure URLs resolved against (a source whose URL the
/// operator changed, as a permanent redirect advises). Only the items asked about are
/// normalized again (one with a publisher id is told by it first); called only when a poll
/// has such an entry, so an unchanged item costs nothing. Matched by identity: an item
/// identified by its link, which resolves differently too, is a new entry anyway.
fn rebased_matches(
    fresh: &[(Entry, Option<String>, Option<String>)],
    rebase: &[(usize, &str)],
    body: &[u8],
    content_type: Option<&str>,
    taken: usize,
    fetched_at: DateTime<Utc>,
) -> Vec<usize> {
    // The same items as the first read (see `parse_feed_for`).
    let Ok(feed) = parse_feed_for(body, content_type, taken) else {
        return Vec::new();
    };
    let mut by_base: std::collections::BTreeMap<&str, std::collections::HashMap<&str, usize>> =
        std::collections::BTreeMap::new();
    for &(i, base) in rebase {
        by_base
            .entry(base)
            .or_default()
            .insert(fresh[i].0.identity.as_str(), i);
    }
    let mut matched = Vec::new();
    for (base, wanted) in by_base.into_iter().take(MAX_REBASES) {
        let ctx = NormalizeContext::new(fetched_at, base);
        for item in &feed.items {
            let by_guid = item_identity(&IdentityInput {
                guid: item.guid.as_deref(),
                canonical_url: None,
                anchor: None,
                title: "",
                feed_date: None,
                text: "",
            });
            if by_guid.is_some_and(|id| !wanted.contains_key(id.as_str())) {
                continue;
            }
            let Ok(again) = normalize_item(item, &ctx) else {
                continue;
            };
            let Some(&i) = wanted.get(again.identity.as_str()) else {
                continue;
            };
            // The item the first read kept, not another listed under its identity (a feed
            // listing a guid twice, the newest first): a match of the other would renew the
            // row's hash to the kept item's and hide its edit for good.
            let kept = &fresh[i].0;
            if again.html != kept.html || again.title != kept.title || again.authors != kept.authors
            {
                continue;
            }
            let stored = fresh[i].1.as_deref().unwrap_or_default();
            if again.content_hash == stored || is_earlier_hash_of(&again, base, stored) {
                matched.push(i);
            }
        }
    }
    matched
}

/// What the CPU pool's first step made of a body (see `Ingestor::prepare`).
struct ReadBody {
    /// Items the feed lists, read or not.
    items: usize,
    /// Items not taken in: no identity, too old, past the per-poll cap, or not read.
    skipped: usize,
    /// The entries taken, newest first, each with its other identity when it shares a guid.
    entries: Vec<(Entry, Option<String>)>,
    /// Items listed but taken no further (too old, past the cap), by identity and link.
    passed_over: Vec<(String, Option<String>)>,
    /// What the parser repaired, for the log.
    repairs: String,
    /// Items in the unread middle of a very long feed (see `parse_feed_for`).
    items_not_read: usize,
    /// Children of items left out of the read (see `parse_feed_for`).
    elements_not_read: usize,
    /// The body, kept (not copied) in case items must be read again against another base
    /// (see `rebased_matches`).
    body: Vec<u8>,
}

/// The CPU-bound result of parsing and normalizing one body.
struct Prepared {
    items: usize,
    skipped: usize,
    entries: Vec<EntryWrite>,
    /// Identities the feed listed that retention has pruned; `None` when it listed no item
    /// it could identify (see `PollOutcome::Fetched`).
    listed_pruned: Option<Vec<String>>,
    /// Whether every item the feed lists was read (see `PollOutcome::Fetched`).
    read_whole: bool,
    /// Every identity the feed listed (see `PollRecord::listed`).
    listed: HashSet<String>,
}

impl Ingestor {
    /// Builds the orchestrator. The near-duplicate index is rebuilt from the store when first
    /// needed.
    pub async fn new(
        store: Store,
        fetcher: Fetcher,
        classifier: SharedClassifier,
        settings: IngestSettings,
    ) -> Result<Ingestor, StoreError> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Headline terms of near-duplicate signatures are stemmed through the classifier's
        // shared stem caches (see `cluster::use_stem_hash`).
        crate::cluster::use_stem_hash(crate::classify::stem_hash_of_word);
        // The writer scores the copies that come to represent their story (`ClusterHook`):
        // what that keeps on its thread goes when it is idle, as a CPU worker's goes with it.
        store.when_writer_idle(crate::classify::release_thread_caches);
        Ok(Ingestor {
            store,
            fetcher: Arc::new(RwLock::new(fetcher)),
            classifier,
            index: Arc::new(std::sync::RwLock::new(None)),
            index_rebuild: Arc::new(Mutex::new(())),
            cpu: Arc::new(CpuPool::new(cores).map_err(|source| StoreError::Io {
                path: "CPU worker threads".into(),
                source,
            })?),
            settings: Arc::new(RwLock::new(settings)),
            last_prune: Arc::new(std::sync::Mutex::new(Instant::now())),
            queued_polls: Arc::new(Semaphore::new(QUEUED_POLLS)),
            preparing: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The near-duplicate index as the store knows it: every signature first seen within the
    /// window.
    async fn rebuild_index(&self, settings: &IngestSettings) -> Result<StoryIndex, StoreError> {
        let mut index = StoryIndex::new(settings.cluster.clone());
        let since = Utc::now()
            .checked_sub_signed(settings.cluster.window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let mut loaded = 0usize;
        for (story, bytes, seen) in self.store.signatures_since(since).await? {
            if let Some(sig) = Signature::from_bytes(&bytes) {
                index.insert(story, &sig, seen);
                loaded += 1;
            }
        }
        info!(signatures = loaded, "near-duplicate index rebuilt");
        Ok(index)
    }

    /// Replaces the fetcher and settings for every clone (config reload). In-flight polls
    /// finish with the old ones. The near-duplicate index, built once with the window in force
    /// then, takes the new window too (see [`StoryIndex::reconfigure`]).
    pub fn reconfigure(&self, mut fetcher: Fetcher, settings: IngestSettings) {
        let cluster = settings.cluster.clone();
        // Both are replaced whole, so a lock a panic poisoned is still safe to write. The
        // requests the old fetcher has in flight keep their hosts' slots.
        let mut current = self.fetcher.write().unwrap_or_else(PoisonError::into_inner);
        fetcher.keep_host_gates_from(&current);
        *current = fetcher;
        drop(current);
        // Settings first, then the index: an index being built meanwhile is installed with
        // the settings it reads then (see `ensure_index`), so neither order misses the change.
        *self
            .settings
            .write()
            .unwrap_or_else(PoisonError::into_inner) = settings;
        if let Some(index) = write_index(&self.index).as_mut()
            && *index.config() != cluster
        {
            index.reconfigure(cluster);
        }
    }

    /// The first retry delay after a failure, as configured now.
    pub fn backoff_base(&self) -> Duration {
        self.settings().backoff_base
    }

    /// The spread of sources sharing a schedule, in force now.
    pub fn max_jitter(&self) -> Duration {
        self.settings().max_jitter
    }

    /// The longest failure backoff, in force now.
    pub fn backoff_cap(&self) -> Duration {
        self.settings().backoff_cap
    }

    /// The store this ingestor writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn settings(&self) -> IngestSettings {
        // Settings are replaced whole: a panic elsewhere cannot leave them half-written.
        self.settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Clears what a panic left poisoned among the locks every poll takes, so that one crash
    /// does not make every later poll crash too. The settings, fetcher and classifier are only
    /// ever replaced whole, so they are kept; the near-duplicate index may be half-updated, so
    /// it is dropped and rebuilt from the store by the next poll that needs it. (Cheap: an
    /// atomic load per lock when nothing is poisoned.)
    fn recover_poisoned_locks(&self) {
        if self.settings.is_poisoned() {
            self.settings.clear_poison();
        }
        if self.fetcher.is_poisoned() {
            self.fetcher.clear_poison();
        }
        if self.classifier.is_poisoned() {
            self.classifier.clear_poison();
        }
        recover_index(&self.index);
    }

    /// Polls one source once and records the result. Never fails: every error is recorded
    /// against the source and returned in the report.
    ///
    /// `slot` is the poll's place under the caller's concurrency limit. The poll gives it back
    /// as soon as its results are queued for the writer rather than when they are committed:
    /// the next poll fetches and parses while this one waits. The writer commits the polls
    /// queued meanwhile together, and bigger transactions write fewer pages per entry (each
    /// commit writes every page it touched, and story keys land all over their index).
    /// `known` is the source's stored poll state when the caller has read it already
    /// (`Some(None)`: never stored): a `fetch` pass reads every source's state in one query
    /// instead of one each. When `cancel` fires (shutdown), the poll is ended and has ended
    /// (its fetch dropped) by the time this returns, with the outcome `cancelled`.
    pub async fn poll(
        &self,
        source: &Source,
        known: Option<Option<PollState>>,
        slot: OwnedSemaphorePermit,
        cancel: &CancellationToken,
    ) -> PollReport {
        // Credentials in a source URL stay out of the log, which reaches more people than the
        // config (journald, log shippers).
        let span = info_span!(
            "poll",
            source = %source.name,
            url = %crate::domain::url_for_display(&source.url)
        );
        let poll = {
            let this = self.clone();
            let source = source.clone();
            async move { this.poll_inner(&source, known, slot).await }.instrument(span.clone())
        };
        let report = self
            .contain_panic(source, poll, cancel)
            .instrument(span)
            .await;
        crate::telemetry::record_poll(&report);
        report
    }

    /// Runs `poll` on a task of its own so that a panic in it (a bug, or a dependency that
    /// panics on hostile input) ends as a failed poll rather than a lost one: recorded
    /// against the source with the panic's message (outcome `crashed`), counted as a
    /// failure, and due again after the failure backoff. Without this, `fetch` dropped the
    /// source from its summary and `run` queued it again every 200 ms. When `cancel` fires,
    /// the poll's task is aborted and awaited: its fetch is over before this returns, so a
    /// shutdown that waits for its polls closes the store after their fetches. (Dropping the
    /// returned future aborts the task too, but does not wait for it to end.)
    async fn contain_panic<F>(
        &self,
        source: &Source,
        poll: F,
        cancel: &CancellationToken,
    ) -> PollReport
    where
        F: std::future::Future<Output = PollReport> + Send + 'static,
    {
        let started_at = Utc::now();
        let clock = Instant::now();
        let mut task = AbortOnDropHandle::new(tokio::spawn(poll));
        let joined = tokio::select! {
            joined = &mut task => joined,
            () = cancel.cancelled() => {
                task.abort();
                // Resolves once the task's future (the fetch, the wait for the writer) has
                // been dropped; a poll that finished meanwhile still gives its report.
                task.await
            }
        };
        match joined {
            Ok(report) => report,
            Err(e) if e.is_panic() => {
                let message = format!("the poll crashed: {}", panic_message(e.into_panic()));
                self.record_crash(source, started_at, clock, message).await
            }
            // Aborted above, by shutdown (or by a reload that no longer polls the URL: the
            // dispatcher logs that case itself): nothing is recorded against the source (the
            // poll is no failure of it, and the due time it found stands), only counted as
            // `cancelled` in the metrics. A poll whose results were already queued for the
            // writer is still committed as it ended.
            Err(_) => {
                let retry = self.settings().backoff_base;
                PollReport {
                    outcome: CANCELLED.into(),
                    error: Some("cut off by shutdown".into()),
                    duration: clock.elapsed(),
                    defer_for: Some(retry),
                    ..PollReport::blank(&source.name, saturating_add_std(Utc::now(), retry))
                }
            }
        }
    }

    /// Records a crashed poll as a failure of its source, due again after the failure
    /// backoff. The due time is plain arithmetic (no schedule lookup), so that whatever
    /// crashed the poll cannot crash this too.
    async fn record_crash(
        &self,
        source: &Source,
        started_at: DateTime<Utc>,
        clock: Instant,
        message: String,
    ) -> PollReport {
        let message = message_as_shown(&message);
        let settings = self.settings();
        let failures = match self.store.poll_state(&source.name, &source.url).await {
            Ok(state) => state.map_or(0, |s| s.consecutive_failures),
            Err(_) => 0,
        };
        let delay = backoff_delay(
            failures.saturating_add(1),
            settings.backoff_base,
            settings.backoff_cap,
            &source.name,
        );
        let next = saturating_add_std(Utc::now(), delay);
        error!(source = %source.name, error = %message, next_due = %next, "poll crashed; recorded as a failure");
        let record = PollRecord {
            source: source.name.clone(),
            url: source.url.clone(),
            // Found by name and URL: the state read above is of now, not of the poll's start.
            source_row: None,
            started_at,
            duration: clock.elapsed(),
            outcome: PollOutcome::Failed {
                kind: CRASHED.into(),
                message: message.clone(),
                http_status: None,
                retry_not_before: None,
                disable: None,
            },
            next_due: next,
            // A backoff from now, not a schedule slot: nothing to move.
            due_jitter: None,
            moved_to: None,
            base_url: None,
            entries: Vec::new(),
            listed: Default::default(),
            cluster_window: settings.cluster.window,
        };
        if let Err(e) = self.store.record_poll(record).await {
            warn!(source = %source.name, error = %e, "could not record the crashed poll");
        }
        PollReport {
            outcome: CRASHED.into(),
            error: Some(message),
            duration: clock.elapsed(),
            defer_for: Some(delay),
            ..PollReport::blank(&source.name, next)
        }
    }

    /// One poll. `known` is the source's poll state when the caller has read it already.
    async fn poll_inner(
        &self,
        source: &Source,
        known: Option<Option<PollState>>,
        slot: OwnedSemaphorePermit,
    ) -> PollReport {
        self.recover_poisoned_locks();
        let preparing = PreparingPoll::start(&self.preparing, &self.store);
        let settings = self.settings();
        let started_at = Utc::now();
        let clock = Instant::now();
        let state = match known {
            Some(state) => state,
            None => match self.store.poll_state(&source.name, &source.url).await {
                Ok(state) => state,
                Err(e) => return self.store_failure(source, clock, &settings, e, None),
            },
        };
        let failures = state.as_ref().map_or(0, |s| s.consecutive_failures);
        let request = FetchRequest {
            url: source.url.clone(),
            etag: state.as_ref().and_then(|s| s.etag.clone()),
            last_modified: state.as_ref().and_then(|s| s.last_modified.clone()),
            allow_private_redirects: source.allow_private_redirects,
        };

        // The classifier the poll scores with. Should a reload replace it before the poll is
        // written, the writer scores the entries again with the one in force then (see
        // `ClusterHook::score_with_the_profiles_in_force`).
        let classifier = Arc::clone(
            &self
                .classifier
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let mut report = PollReport::blank(&source.name, started_at);
        let mut moved_to = None;
        let mut base_url = None;
        let mut entries = Vec::new();
        let mut listed = HashSet::new();
        let fetcher = self
            .fetcher
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let outcome = match fetcher.fetch(&request).await {
            Ok(FetchOutcome::NotModified(v)) => {
                report.http_status = Some(304);
                moved_to = v.permanent_redirect.clone();
                PollOutcome::NotModified {
                    etag: v.etag.or(request.etag.clone()),
                    last_modified: v.last_modified.or(request.last_modified.clone()),
                }
            }
            Ok(FetchOutcome::Fetched(feed)) => {
                report.http_status = Some(200);
                report.bytes = feed.body.len() as u64;
                moved_to = feed.validators.permanent_redirect.clone();
                if feed.final_url != source.url {
                    base_url = Some(feed.final_url.clone());
                }
                match self
                    .prepare(
                        source,
                        feed.body,
                        feed.content_type,
                        feed.final_url,
                        &settings,
                        Arc::clone(&classifier),
                    )
                    .await
                {
                    Ok(prepared) => {
                        report.items = prepared.items;
                        report.skipped = prepared.skipped;
                        report.unscored_copies = prepared
                            .entries
                            .iter()
                            .filter(|w| w.scores.is_none())
                            .count();
                        entries = prepared.entries;
                        listed = prepared.listed;
                        PollOutcome::Fetched {
                            http_status: 200,
                            bytes: report.bytes,
                            etag: feed.validators.etag,
                            last_modified: feed.validators.last_modified,
                            listed_pruned: prepared.listed_pruned,
                            read_whole: prepared.read_whole,
                        }
                    }
                    Err(PrepareError::Store(e)) => {
                        return self.store_failure(source, clock, &settings, e, None);
                    }
                    Err(PrepareError::Parse(e)) => PollOutcome::Failed {
                        kind: "parse".into(),
                        message: message_as_shown(&e.to_string()),
                        http_status: Some(200),
                        retry_not_before: None,
                        disable: None,
                    },
                }
            }
            Err(e) => fetch_failure(&e, started_at),
        };
        if let Some(to) = &moved_to {
            warn!(moved_to = %crate::domain::redact_userinfo(to), "feed moved permanently; update its url in the config");
        }

        // The next time is the schedule's first after `after`: the end of this poll, or of
        // the backoff after a failure.
        let after = match &outcome {
            PollOutcome::Failed {
                retry_not_before, ..
            } => failure_earliest(
                &source.name,
                started_at,
                failures + 1,
                *retry_not_before,
                &settings.timing(),
            ),
            _ => Utc::now(),
        };
        let next = next_due(&source.schedule, &source.name, after, settings.max_jitter);
        report.next_due = next;
        report.outcome = outcome.label().to_string();
        // The wait a server asked for (429/503 with Retry-After): should this poll's write
        // fail, the hold in memory must still honour it.
        let server_wait = match &outcome {
            PollOutcome::Failed {
                retry_not_before, ..
            } => *retry_not_before,
            _ => None,
        };
        if let PollOutcome::Failed {
            message,
            http_status,
            ..
        } = &outcome
        {
            report.error = Some(message.clone());
            report.http_status = *http_status;
        }

        // Each entry's signature and publication time: the index matches copies by when they
        // were published (as it does when rebuilt from the store at start-up).
        // Title-only copies (a news search's headline and publisher) never near-match: their
        // headline is matched exactly instead (`EntryWrite::headline`). Indexed, two searches'
        // items about different products under one template ("… on Chinese steel pipes" and
        // "… copper pipes") joined as briefs with the same text.
        let signatures: Vec<Option<(Signature, DateTime<Utc>)>> = entries
            .iter()
            .map(|w| {
                if w.headline.as_ref().is_some_and(|h| h.title_only)
                    || w.entry.text.trim().is_empty()
                {
                    return None;
                }
                let sig = w.signature.as_deref().and_then(Signature::from_bytes)?;
                Some((sig, w.entry.published))
            })
            .collect();
        let clustered = signatures.iter().any(Option::is_some);
        if clustered && let Err(e) = self.ensure_index(&settings).await {
            return self.store_failure(source, clock, &settings, e, server_wait);
        }
        // Any entry that writes scores needs the hook, clustered or not: a reload may replace
        // the profiles before the poll is written.
        let hook: Option<Box<dyn PollHook>> =
            entries.iter().any(|w| w.replaces_hash.is_none()).then(|| {
                Box::new(ClusterHook {
                    index: Arc::clone(&self.index),
                    signatures,
                    clustered,
                    last_prune: Arc::clone(&self.last_prune),
                    classifier,
                    shared: Arc::clone(&self.classifier),
                }) as Box<dyn PollHook>
            });
        let record = PollRecord {
            source: source.name.clone(),
            url: source.url.clone(),
            source_row: state.as_ref().map(|s| s.source_id),
            started_at,
            duration: clock.elapsed(),
            outcome,
            next_due: next,
            due_jitter: Some(DueJitter {
                max_jitter: settings.max_jitter,
                schedule: source.schedule.as_str().to_string(),
                after,
                moved: crate::scheduler::due_under_jitter,
            }),
            moved_to,
            base_url,
            entries,
            listed,
            cluster_window: settings.cluster.window,
        };
        // The poll's CPU work is done, even if it has to wait for room in the writer's queue.
        drop(preparing);
        // Held until the commit is answered; the semaphore is never closed.
        let _waiting = self.queued_polls.acquire().await;
        let written = match self.store.queue_poll(record, hook).await {
            Ok(queued) => {
                drop(slot);
                queued.result().await
            }
            Err(e) => Err(e),
        };
        match written {
            Ok(result) => {
                report.near_merges = result
                    .placements
                    .iter()
                    .filter(|p| p.near_duplicate)
                    .count();
                report.new_entries = result.new_entries;
                report.updated_entries = result.updated_entries;
                report.new_stories = result.new_stories;
                // What the log line and the dispatcher see is the time stored, which the
                // writer may have moved to a jitter a reload recorded meanwhile.
                if let Some(stored) = result.next_due {
                    report.next_due = stored;
                }
                report.schedule_moved = result.schedule_moved.clone();
                if result.url_changed {
                    // Nothing was stored for this URL: as the database sees it, the source
                    // is due at once by its new one. Right after a reload the caller polls
                    // the new URL; should its config still name this one (the database was
                    // edited behind its back), it would otherwise poll this URL again at
                    // every look.
                    info!("the source's URL changed during the poll; none of its state kept");
                    report.defer_for = Some(settings.backoff_base);
                }
            }
            Err(e) => return self.store_failure(source, clock, &settings, e, server_wait),
        }
        Self::finish(report, clock)
    }

    /// Builds the near-duplicate index from the store if this is the first poll to need it.
    async fn ensure_index(&self, settings: &IngestSettings) -> Result<(), StoreError> {
        let _one_rebuild = self.index_rebuild.lock().await;
        if read_index(&self.index).is_some() {
            return Ok(());
        }
        let mut index = self.rebuild_index(settings).await?;
        // Whatever a panic left in the lock meanwhile is replaced whole.
        let mut installed = self.index.write().unwrap_or_else(PoisonError::into_inner);
        // A reload while the index was being built: its window applies from now on.
        let cluster = self.settings().cluster;
        if *index.config() != cluster {
            index.reconfigure(cluster);
        }
        *installed = Some(index);
        Ok(())
    }

    /// Stamps the poll's duration and logs its outcome.
    fn finish(mut report: PollReport, clock: Instant) -> PollReport {
        report.duration = clock.elapsed();
        match &report.error {
            None => info!(
                outcome = %report.outcome,
                items = report.items,
                new_entries = report.new_entries,
                updated_entries = report.updated_entries,
                new_stories = report.new_stories,
                duration_ms = report.duration.as_millis() as u64,
                "polled"
            ),
            // A 410 stops the source until its URL changes: it has no next time to show.
            Some(error) if report.http_status == Some(410) => warn!(
                outcome = %report.outcome,
                error = %error,
                "poll failed; the source is stopped until its url changes in the config"
            ),
            Some(error) => {
                warn!(outcome = %report.outcome, error = %error, next_due = %report.next_due, "poll failed")
            }
        }
        report
    }

    /// Parses and normalizes a body, then signs the entries that are new or changed and scores
    /// them, except new copies the near-duplicate index already places (see `EntryWrite::scores`).
    async fn prepare(
        &self,
        source: &Source,
        body: Vec<u8>,
        content_type: Option<String>,
        final_url: String,
        settings: &IngestSettings,
        classifier: Arc<Classifier>,
    ) -> Result<Prepared, PrepareError> {
        let fetched_at = Utc::now();
        let max_items = settings.max_items_per_poll;
        // No cutoff when the retention reaches back before the calendar begins.
        let cutoff = settings
            .retention
            .and_then(|r| fetched_at.checked_sub_signed(r));
        let base_url = final_url.clone();
        let reparse_as = content_type.clone();
        // Parsing and normalizing are CPU work: keep them off the async threads.
        let ReadBody {
            items,
            skipped,
            entries: normalized,
            passed_over,
            repairs,
            items_not_read: not_read,
            elements_not_read,
            body,
        } = self
            .cpu
            .run(move || {
                let feed = parse_feed_for(&body, content_type.as_deref(), max_items)
                    .map_err(|e| explain_page(e, &body, content_type.as_deref(), &base_url))?;
                // Items in the middle of a very long feed are not read (see `parse_feed_for`):
                // listed, and skipped.
                let not_read = feed.items_not_read;
                let elements_not_read = feed.elements_not_read;
                let items = feed.items.len() + not_read;
                let repairs = feed.repairs.join("; ");
                let ctx = NormalizeContext::new(fetched_at, base_url);
                let mut skipped = not_read;
                let mut entries: Vec<Entry> = Vec::with_capacity(items.min(max_items));
                // Listed items not taken in, by identity and link: a tombstone of one is still
                // needed.
                let mut passed_over: Vec<(String, Option<String>)> = Vec::new();
                for item in &feed.items {
                    match normalize_item(item, &ctx) {
                        Ok(e) if cutoff.is_some_and(|c| e.published < c) => {
                            skipped += 1;
                            passed_over.push((e.identity, e.canonical_url));
                        }
                        Ok(e) => entries.push(e),
                        // Listed with an identity: a tombstone of it is still needed.
                        Err(SkipReason::NothingToShow { identity }) => {
                            skipped += 1;
                            passed_over.push((identity, None));
                        }
                        Err(SkipReason::Unidentifiable) => skipped += 1,
                    }
                }
                // Newest first, then cap: a 60,000-item feed costs at most `max_items` entries.
                entries.sort_by_key(|e| std::cmp::Reverse(e.published));
                // One identity for different items (a CMS's constant guid): each is told apart
                // by its link once the store says which of them its plain-identity row is.
                let shared = shared_identities(&entries);
                // The same identity twice in one feed (duplicate GUIDs, same link): keep the
                // first (newest).
                let mut seen = std::collections::HashSet::new();
                entries.retain(|e| {
                    let link = shared
                        .contains(&e.identity)
                        .then(|| e.canonical_url.clone());
                    seen.insert((e.identity.clone(), link))
                });
                if entries.len() > max_items {
                    skipped += entries.len() - max_items;
                    passed_over.extend(
                        entries
                            .drain(max_items..)
                            .map(|e| (e.identity, e.canonical_url)),
                    );
                }
                // Each shared-identity item's other identity.
                let entries: Vec<(Entry, Option<String>)> = entries
                    .into_iter()
                    .map(|e| {
                        let other = shared
                            .contains(&e.identity)
                            .then(|| shared_identity(&e.identity, e.canonical_url.as_deref()));
                        (e, other)
                    })
                    .collect();
                Ok::<_, ParseError>(ReadBody {
                    items,
                    skipped,
                    entries,
                    passed_over,
                    repairs,
                    items_not_read: not_read,
                    elements_not_read,
                    body,
                })
            })
            .await
            .map_err(ParseError::Crashed)
            .and_then(|parsed| parsed)?;
        // Read, but only after repairs a strict reader would not make: the publisher's to fix.
        if !repairs.is_empty() {
            info!(repairs = %repairs, "feed read after repairing malformed XML");
        }
        if elements_not_read > 0 {
            info!(
                elements_not_read,
                "items with more children than a poll reads (of one name, or in all): the rest \
                 left out"
            );
        }
        if not_read > 0 {
            info!(
                items,
                not_read, "feed lists more items than a poll reads: those in its middle left out"
            );
        }

        // A read listing no item it can identify says nothing of the source's tombstones; one
        // that left items unread says only which are listed (see `PollOutcome::Fetched`).
        let listed_any = !normalized.is_empty() || !passed_over.is_empty();
        let (normalized, known) = self
            .identify(&source.name, normalized)
            .await
            .map_err(PrepareError::Store)?;
        // Every identity the read lists, for the writer to tell an item that moved to a new id
        // from a sibling with the same words (see `PollRecord::listed`): those settled above,
        // and those of items passed over, under their `shared:` form as well in a source that
        // has such rows (as for their tombstones below).
        let mut listed: HashSet<String> = normalized.iter().map(|e| e.identity.clone()).collect();
        for (identity, link) in &passed_over {
            if known.any_shared {
                listed.insert(shared_identity(identity, link.as_deref()));
            }
            listed.insert(identity.clone());
        }
        // Items passed over are not looked up (that is what passing them over saves), except
        // for a tombstone in a source that has any: a longer retention or a higher cap later
        // must not bring them back either. Best-effort: without the answer this read marks
        // their tombstones missed, which the next read that finds them listed clears; one
        // forgotten meanwhile (no such read within the grace) matters only if a longer
        // retention or a higher cap later takes its item in. The entries are kept.
        let mut listed_pruned = if known.any_pruned && !passed_over.is_empty() {
            // An item that shares its guid, now or when it was stored, may be remembered under
            // its `shared:` identity (see `identify`): in a source with such rows, each is
            // asked about under both.
            let mut asked =
                Vec::with_capacity(passed_over.len() * (1 + usize::from(known.any_shared)));
            for (identity, link) in passed_over {
                if known.any_shared {
                    asked.push(shared_identity(&identity, link.as_deref()));
                }
                asked.push(identity);
            }
            let count = asked.len();
            self.store
                .pruned_among(&source.name, asked)
                .await
                .unwrap_or_else(|error| {
                    warn!(
                        error = %error,
                        identities = count,
                        "could not look up the tombstones of items passed over; poll kept"
                    );
                    Vec::new()
                })
        } else {
            Vec::new()
        };
        let (bases, previous_url, known) = (known.bases, known.previous_url, known.hashes);
        // Fetched from the configured URL: a row's base can only be the entry's own.
        let fetched_as_configured = final_url == source.url;
        // New entries, and known ones whose hash differs, with the hash their row holds (and,
        // for a known one whose relative URLs may have resolved against another URL, the base
        // its row was written with: its own, else the source's URL). An
        // unchanged entry goes no further, nor does a pruned one (its tombstone's hash is ''),
        // except one whose row holds another base than its own (`xml:base`): the base is no
        // part of the hash, and a row stored before bases were read, or before the feed
        // changed or dropped its base, has its base renewed without being taken for an edit.
        // A feed fetched through a redirect leaves the base of an entry without one of its
        // own as it is: the redirect's target may change from poll to poll (signed URLs), and
        // the row holds the one it was stored with (see `PollRecord::base_url`).
        let fresh: Vec<(Entry, Option<String>, Option<String>)> = normalized
            .into_iter()
            .filter_map(|e| match known.get(&e.identity) {
                None => Some((e, None, None)),
                Some(stored) if stored.is_empty() => {
                    listed_pruned.push(e.identity);
                    None
                }
                Some(stored) if *stored == e.content_hash => {
                    let held = bases.get(&e.identity);
                    let renew = match &e.base_url {
                        Some(own) => held != Some(own),
                        None => fetched_as_configured && held.is_some(),
                    };
                    renew.then(|| (e, Some(stored.clone()), None))
                }
                Some(stored) => {
                    // The URL the feed was fetched from when the row was written, if the
                    // item's relative URLs may have resolved against another one than now:
                    // - without a base of its own, a row resolved against the source's URL,
                    //   or the old URL a change of it pinned on the row. A row holding another
                    //   base held the entry's own `xml:base`, which the feed has dropped since:
                    //   its links moved with it, an edit (review rv4 M1; a row written through
                    //   a redirect, which holds the redirect's target, counts so too);
                    // - with a base of its own (`xml:base`, which may be relative to the URL
                    //   fetched), a row holding another base: the source's URL before the config
                    //   changed it, if it did. A row holding the same base was written against
                    //   the URL fetched now, and is read only once (review rv4 L1).
                    let held = bases.get(&e.identity);
                    let written_against = if !e.relative_urls {
                        None
                    } else if e.base_url.is_none() {
                        match held {
                            None => Some(&source.url),
                            Some(held) => Some(held).filter(|h| Some(*h) == previous_url.as_ref()),
                        }
                    } else if held != e.base_url.as_ref() {
                        previous_url.as_ref()
                    } else {
                        None
                    }
                    .filter(|base| **base != final_url)
                    .cloned();
                    Some((e, Some(stored.clone()), written_against))
                }
            })
            .collect();
        let cluster = source.cluster;
        let index = Arc::clone(&self.index);
        let entries = self
            .cpu
            .run(move || {
                // A row an earlier release wrote holds its hash in an earlier form: when the
                // item's hash in that form matches, nothing was edited and only the hash is
                // renewed (once: the renewed hash has the current form). An unchanged entry
                // gets here only to have its base renewed.
                let mut unedited: Vec<bool> = fresh
                    .iter()
                    .map(|(entry, stored, _)| {
                        stored.as_ref().is_some_and(|stored| {
                            *stored == entry.content_hash
                                || is_earlier_hash_of(entry, &final_url, stored)
                        })
                    })
                    .collect();
                // An item whose relative URLs resolved against another URL when its row was
                // written (the source's URL changed) is no edit when, resolved against that
                // URL, it hashes as the row does: only its base moved. Its row takes the URLs
                // resolved now. Read again from the body only when there is such an item.
                let rebase: Vec<(usize, &str)> = fresh
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !unedited[*i])
                    .filter_map(|(i, (_, _, base))| Some((i, base.as_deref()?)))
                    .collect();
                if !rebase.is_empty() {
                    for i in rebased_matches(
                        &fresh,
                        &rebase,
                        &body,
                        reparse_as.as_deref(),
                        max_items,
                        fetched_at,
                    ) {
                        unedited[i] = true;
                    }
                }
                drop(body);
                fresh
                    .into_iter()
                    .zip(unedited)
                    .map(|((entry, stored, _), unedited)| {
                        let is_new = stored.is_none();
                        if let Some(stored) = stored
                            && unedited
                        {
                            return EntryWrite {
                                entry,
                                signature: None,
                                near_matches: Vec::new(),
                                headline: None,
                                scores: Some(Vec::new()),
                                replaces_hash: Some(stored),
                            };
                        }
                        let signature = cluster.then(|| Signature::of(&entry));
                        // A new entry the index already places is a copy of a stored story,
                        // and copies seldom come to represent their story (3 in 4 never do on
                        // the feed farm): its scores are worked out on the writer only if it
                        // does (`ClusterHook::score`). The writer places it again itself.
                        let copy = is_new
                            && signature.as_ref().is_some_and(|sig| {
                                read_index(&index)
                                    .as_ref()
                                    .is_some_and(|index| index.has_match(sig, entry.published))
                            });
                        let scores = (!copy).then(|| classifier.score(&entry.title, &entry.text));
                        let headline = cluster
                            .then(|| headline_of(&entry.title, &entry.text))
                            .flatten();
                        EntryWrite {
                            entry,
                            signature: signature.map(|sig| sig.to_bytes()),
                            near_matches: Vec::new(),
                            headline,
                            scores,
                            replaces_hash: None,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(ParseError::Crashed)?;
        Ok(Prepared {
            items,
            skipped,
            entries,
            listed_pruned: listed_any.then_some(listed_pruned),
            read_whole: not_read == 0,
            listed,
        })
    }

    /// Settles the identity of each entry against the source's stored rows and returns them
    /// with what the store holds of them. An entry whose identity other items of the document
    /// share (`other` is its `shared:` identity) keeps the plain one if the stored row under it
    /// has its link, and takes the `shared:` one otherwise. An entry whose identity no other
    /// item shares keeps it, unless the source has `shared:` rows and its own is one while the
    /// plain row (if any) belongs to another link: the item it shared a guid with has left. So
    /// an item's row is found again whoever else uses its guid; in the normal case (no shared
    /// guid, no `shared:` row) this is the one lookup per entry a poll does anyway.
    async fn identify(
        &self,
        source: &str,
        entries: Vec<(Entry, Option<String>)>,
    ) -> Result<(Vec<Entry>, KnownEntries), StoreError> {
        let mut ask: Vec<(String, bool)> = Vec::with_capacity(entries.len());
        for (e, other) in &entries {
            ask.push((e.identity.clone(), other.is_some()));
            if let Some(other) = other {
                ask.push((other.clone(), false));
            }
        }
        let mut known = self.store.known_entries(source, ask).await?;
        let plain_row_is_its = |known: &KnownEntries, e: &Entry| {
            known
                .links
                .get(&e.identity)
                .is_some_and(|link| link.as_deref() == e.canonical_url.as_deref())
        };
        // Each entry, and whether its identity is settled (it shares its guid in this document).
        let mut entries: Vec<(Entry, bool)> = entries
            .into_iter()
            .map(|(mut e, other)| {
                let settled = other.is_some();
                if let Some(other) = other
                    && !plain_row_is_its(&known, &e)
                {
                    e.identity = other;
                }
                (e, settled)
            })
            .collect();
        if known.any_shared {
            // Only sources that once had a shared guid get here: ask about the `shared:`
            // identity of every entry that now has its guid to itself. What is stored under
            // its plain identity, link included, the first round has read already.
            let mut ask = Vec::new();
            let mut candidates = Vec::with_capacity(entries.len());
            for (e, settled) in &entries {
                if *settled {
                    candidates.push(None);
                    continue;
                }
                let candidate = shared_identity(&e.identity, e.canonical_url.as_deref());
                ask.push((candidate.clone(), false));
                candidates.push(Some(candidate));
            }
            let more = self.store.known_entries(source, ask).await?;
            for ((e, _), candidate) in entries.iter_mut().zip(candidates) {
                if let Some(candidate) = candidate
                    && more.hashes.contains_key(&candidate)
                    && !plain_row_is_its(&known, e)
                {
                    e.identity = candidate;
                }
            }
            known.hashes.extend(more.hashes);
            known.bases.extend(more.bases);
        }
        Ok((entries.into_iter().map(|(e, _)| e).collect(), known))
    }

    /// A poll whose store write failed: report it; the source stays due in the database, so
    /// the report asks to hold it back for the backoff base before it is retried, or until
    /// `server_wait` if the server asked to wait longer (a Retry-After the write would have
    /// stored).
    fn store_failure(
        &self,
        source: &Source,
        clock: Instant,
        settings: &IngestSettings,
        error: StoreError,
        server_wait: Option<DateTime<Utc>>,
    ) -> PollReport {
        warn!(error = %error, "could not record poll; will retry");
        let asked = server_wait
            .and_then(|t| (t - Utc::now()).to_std().ok())
            .unwrap_or_default();
        let retry = settings.backoff_base.max(asked);
        PollReport {
            outcome: "store".into(),
            error: Some(error.to_string()),
            duration: clock.elapsed(),
            defer_for: Some(retry),
            ..PollReport::blank(&source.name, saturating_add_std(Utc::now(), retry))
        }
    }
}

pub use crate::fetch::MAX_RETRY_AFTER;

/// The near-duplicate index for reading, after [`recover_index`].
fn read_index(
    index: &std::sync::RwLock<Option<StoryIndex>>,
) -> std::sync::RwLockReadGuard<'_, Option<StoryIndex>> {
    recover_index(index);
    index.read().unwrap_or_else(PoisonError::into_inner)
}

/// The near-duplicate index for writing, after [`recover_index`].
fn write_index(
    index: &std::sync::RwLock<Option<StoryIndex>>,
) -> std::sync::RwLockWriteGuard<'_, Option<StoryIndex>> {
    recover_index(index);
    index.write().unwrap_or_else(PoisonError::into_inner)
}

/// Drops the near-duplicate index if a panic poisoned its lock: it may be half-updated. The
/// next poll that needs it rebuilds it from the store (see `Ingestor::ensure_index`).
fn recover_index(index: &std::sync::RwLock<Option<StoryIndex>>) {
    if index.is_poisoned() {
        *index.write().unwrap_or_else(PoisonError::into_inner) = None;
        index.clear_poison();
        warn!("a panic left the near-duplicate index half-updated; it is rebuilt from the store");
    }
}

/// The text a panic was raised with, if it was text.
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// A body that is no feed because it is an HTML page: the error names the feeds the page
/// advertises, so that the operator can set the source's url to one of them. The URL is never
/// switched here: a page may advertise several feeds (comments feeds among them).
fn explain_page(
    error: ParseError,
    body: &[u8],
    content_type: Option<&str>,
    page_url: &str,
) -> ParseError {
    if !matches!(error, ParseError::NotAFeed(_)) || body.starts_with(&[0x1f, 0x8b]) {
        return error;
    }
    match discover(body, content_type, page_url) {
        Discovery::HtmlPage(feeds) => ParseError::NotAFeed(page_message(&feeds)),
        Discovery::NotHtml => error,
    }
}

/// A poll's error message as logged, recorded and shown: without the user-info of any URL it
/// quotes, and on one line with what a terminal would act on written out. Parser errors quote
/// the feed's bytes (`expected </item>, but </it…> was found`), so a hostile feed could
/// otherwise forge log lines with a newline, or send escape sequences (colours, a window
/// title) to the terminal of an operator reading the log or `tradefeed sources`. Control
/// characters, Unicode line breaks and bidirectional controls are written as Rust escapes
/// (`\n`, `\u{1b}`).
pub(crate) fn message_as_shown(message: &str) -> String {
    let message = crate::domain::redact_userinfo(message);
    let hidden = |c: char| {
        c.is_control()
            || matches!(c, '\u{2028}' | '\u{2029}')
            || crate::normalize::is_bidi_control(c)
    };
    if !message.contains(hidden) {
        return message.into_owned();
    }
    let mut out = String::with_capacity(message.len() + 8);
    for c in message.chars() {
        if hidden(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn fetch_failure(e: &FetchError, now: DateTime<Utc>) -> PollOutcome {
    let (http_status, retry_not_before, disable) = match e {
        FetchError::RateLimited {
            status,
            retry_after,
        } => (
            Some(*status),
            // Already at most MAX_RETRY_AFTER ahead: the fetcher caps it where it reads the
            // header, so this time and the error's message agree.
            *retry_after,
            None,
        ),
        FetchError::Gone => (
            Some(410),
            None,
            Some(format!(
                "410 Gone at {}: the publisher removed this feed; update or remove it in the config",
                now.format("%Y-%m-%d %H:%M UTC")
            )),
        ),
        FetchError::Status(status) => (Some(*status), None, None),
        FetchError::UnaskedNotModified => (Some(304), None, None),
        _ => (None, None, None),
    };
    PollOutcome::Failed {
        kind: e.kind().to_string(),
        message: message_as_shown(&e.to_string()),
        http_status,
        retry_not_before,
        disable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The due time after a failure, as a poll works it out (see
    /// [`crate::scheduler::failure_due`]).
    fn failure_due(
        source: &Source,
        now: DateTime<Utc>,
        failures: u32,
        retry_not_before: Option<DateTime<Utc>>,
        settings: &IngestSettings,
    ) -> DateTime<Utc> {
        crate::scheduler::failure_due(
            &source.schedule,
            &source.name,
            now,
            failures,
            retry_not_before,
            &settings.timing(),
        )
    }

    fn test_source(name: &str) -> Source {
        Source {
            name: name.into(),
            url: "http://127.0.0.1:9/feed.xml".into(),
            schedule: crate::domain::Schedule::parse("*/5 * * * *").unwrap(),
            enabled: true,
            tags: Vec::new(),
            priority: 0,
            cluster: true,
            allow_private_redirects: false,
        }
    }

    fn test_settings(base: Duration, cap: Duration) -> IngestSettings {
        IngestSettings {
            max_items_per_poll: 500,
            max_jitter: Duration::ZERO,
            backoff_base: base,
            backoff_cap: cap,
            retention: None,
            cluster: ClusterConfig::default(),
        }
    }

    #[test]
    fn a_retry_after_too_far_ahead_is_honoured_for_a_week_and_never_panics() {
        let source = test_source("busy");
        let settings = test_settings(Duration::from_secs(60), Duration::from_secs(21_600));
        let now = Utc::now();
        let week = now + MAX_RETRY_AFTER;
        // Retry-After: 8208452427198 (seconds), as a server sent it, and the latest time there is.
        let far = now + chrono::Duration::seconds(8_208_452_427_198);
        for retry in [far, DateTime::<Utc>::MAX_UTC] {
            let due = failure_due(&source, now, 1, Some(retry), &settings);
            assert!(
                due >= week && due <= week + chrono::Duration::minutes(5),
                "due {due}, a week is {week}"
            );
        }
        // The fetcher caps the wait where it reads the header; the failure records that very
        // time, the one its message names.
        let error = FetchError::RateLimited {
            status: 429,
            retry_after: Some(week),
        };
        let PollOutcome::Failed {
            retry_not_before,
            message,
            ..
        } = fetch_failure(&error, now)
        else {
            panic!("a 429 is a failure");
        };
        assert_eq!(retry_not_before, Some(week));
        assert!(
            message.ends_with(&week.format("retry after %Y-%m-%d %H:%M:%S UTC").to_string()),
            "{message}"
        );
        // A modest Retry-After is honoured as sent.
        let hour = now + chrono::Duration::hours(1);
        let due = failure_due(&source, now, 1, Some(hour), &settings);
        assert!(due >= hour && due <= hour + chrono::Duration::minutes(5));
    }

    #[test]
    fn failure_due_saturates_with_delays_too_long_for_the_calendar() {
        let source = test_source("slow");
        let huge = Duration::from_secs(10_000_000_000_000);
        let settings = test_settings(huge, huge);
        let now = Utc::now();
        for failures in [1, 2, 40, u32::MAX] {
            assert_eq!(
                failure_due(&source, now, failures, None, &settings),
                DateTime::<Utc>::MAX_UTC,
                "{failures} failures"
            );
        }
    }

    fn default_fetcher() -> Fetcher {
        Fetcher::new(crate::fetch::FetchLimits::default()).unwrap()
    }

    /// A store in `dir` and an ingestor over it with the built-in classifier.
    async fn ingestor_over_a_new_store(
        dir: &std::path::Path,
        settings: &IngestSettings,
    ) -> (Store, Ingestor) {
        let store = Store::open(&dir.join("t.db"), crate::store::Access::ReadWrite).unwrap();
        let ingestor = Ingestor::new(
            store.clone(),
            default_fetcher(),
            Arc::new(RwLock::new(Arc::new(Classifier::builtin()))),
            settings.clone(),
        )
        .await
        .unwrap();
        (store, ingestor)
    }

    /// Records `source` in `store` as the config's only source (a poll needs its row).
    async fn record_source(store: &Store, source: &Source) {
        store
            .sync_sources(std::slice::from_ref(source), |_, t, _| t)
            .await
            .unwrap();
    }

    /// Polls `source` once with a slot of its own and no shutdown.
    async fn poll_alone(ingestor: &Ingestor, source: &Source) -> PollReport {
        let slot = Arc::new(Semaphore::new(1)).acquire_owned().await.unwrap();
        ingestor
            .poll(source, None, slot, &CancellationToken::new())
            .await
    }

    #[tokio::test]
    async fn an_index_built_from_settings_a_reload_has_replaced_takes_the_new_window() {
        let dir = tempfile::tempdir().unwrap();
        let week = test_settings(Duration::from_secs(60), Duration::from_secs(21_600));
        let (store, ingestor) = ingestor_over_a_new_store(dir.path(), &week).await;
        let one_day = ClusterConfig {
            window: chrono::Duration::days(1),
        };
        // The reload lands before any index exists; a poll that took its settings earlier
        // then builds the index with the old window.
        let reloaded = IngestSettings {
            cluster: one_day.clone(),
            ..week.clone()
        };
        ingestor.reconfigure(default_fetcher(), reloaded);
        ingestor.ensure_index(&week).await.unwrap();
        let window = ingestor
            .index
            .read()
            .unwrap()
            .as_ref()
            .unwrap()
            .config()
            .clone();
        assert_eq!(window, one_day);
        store.close().await;
    }

    #[tokio::test]
    async fn a_reload_that_changes_the_near_duplicate_window_applies_it_to_the_built_index() {
        let dir = tempfile::tempdir().unwrap();
        let settings = test_settings(Duration::from_secs(60), Duration::from_secs(21_600));
        let week = settings.cluster.window;
        let (store, ingestor) = ingestor_over_a_new_store(dir.path(), &settings).await;
        ingestor.ensure_index(&settings).await.unwrap();
        // A story first seen three days ago, and a copy of it arriving now.
        let text = "The European Union raised tariffs on Chinese steel imports to 25 percent on \
                    Monday, citing a surge of cheap shipments that undercut mills in Germany, \
                    Italy and Poland. The duties take effect next month and run for five years \
                    unless a review finds the dumping has stopped, officials in Brussels said.";
        let signature = Signature::of_text("EU raises tariffs on Chinese steel", text);
        let now = Utc::now();
        let finds_the_story = |ingestor: &Ingestor| {
            let index = ingestor.index.read().unwrap();
            index
                .as_ref()
                .unwrap()
                .find(&signature, now)
                .map(|found| found.story)
        };
        ingestor.index.write().unwrap().as_mut().unwrap().insert(
            42,
            &signature,
            now - chrono::Duration::days(3),
        );
        assert_eq!(finds_the_story(&ingestor), Some(42), "within a week");

        let one_day = IngestSettings {
            cluster: ClusterConfig {
                window: chrono::Duration::days(1),
            },
            ..settings.clone()
        };
        ingestor.reconfigure(default_fetcher(), one_day);
        assert_eq!(
            finds_the_story(&ingestor),
            None,
            "outside the new one-day window"
        );

        let back = IngestSettings {
            cluster: ClusterConfig { window: week },
            ..settings
        };
        ingestor.reconfigure(default_fetcher(), back);
        assert_eq!(finds_the_story(&ingestor), Some(42), "the week again");
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_that_panics_is_recorded_as_a_failure_of_its_source_and_backs_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), crate::store::Access::ReadWrite).unwrap();
        let source = test_source("crashy");
        record_source(&store, &source).await;
        let base = Duration::from_secs(600);
        let ingestor = Ingestor::new(
            store.clone(),
            Fetcher::new(crate::fetch::FetchLimits::default()).unwrap(),
            Arc::new(RwLock::new(Arc::new(Classifier::builtin()))),
            test_settings(base, Duration::from_secs(21_600)),
        )
        .await
        .unwrap();

        for failures in 1..=2u32 {
            let before = Utc::now();
            let report = ingestor
                .contain_panic(
                    &source,
                    async { panic!("DateTime + TimeDelta overflowed") },
                    &CancellationToken::new(),
                )
                .await;
            assert!(!report.is_ok(), "{report:?}");
            assert_eq!(report.outcome, CRASHED);
            let hold = report.defer_for.expect("the scheduler holds it back");
            let base_wait = base * (1 << (failures - 1));
            assert!(
                hold >= base_wait && hold <= Duration::from_secs(21_600),
                "held back for the backoff: {hold:?}"
            );
            assert!(
                report
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("DateTime + TimeDelta overflowed")),
                "{report:?}"
            );
            let state = store.source_state("crashy").await.unwrap().unwrap();
            assert_eq!(state.consecutive_failures, failures, "{state:?}");
            assert_eq!(state.last_outcome.as_deref(), Some(CRASHED));
            assert!(
                state
                    .last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("crashed")),
                "{state:?}"
            );
            let due = state.next_due.unwrap();
            let base_wait = chrono::Duration::from_std(base_wait).unwrap();
            assert!(
                due >= before + base_wait - chrono::Duration::seconds(1),
                "backs off: due {due}, crashed at {before}"
            );
        }

        // A poll that does not panic passes through untouched.
        let fine = PollReport::blank("crashy", Utc::now());
        let expected = fine.clone();
        assert_eq!(
            ingestor
                .contain_panic(&source, async move { fine }, &CancellationToken::new())
                .await,
            expected
        );
        store.close().await;
    }

    // One thread: an aborted task that nobody waits for is torn down only when the runtime
    // next gets to it, after the check below.
    #[tokio::test(flavor = "current_thread")]
    async fn a_cancelled_poll_has_ended_its_work_when_it_returns() {
        struct Ended(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Ended {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), crate::store::Access::ReadWrite).unwrap();
        let source = test_source("slow");
        let ingestor = Ingestor::new(
            store.clone(),
            Fetcher::new(crate::fetch::FetchLimits::default()).unwrap(),
            Arc::new(RwLock::new(Arc::new(Classifier::builtin()))),
            test_settings(Duration::from_secs(600), Duration::from_secs(21_600)),
        )
        .await
        .unwrap();
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        // A fetch that never ends.
        let poll = {
            let guard = Ended(Arc::clone(&ended));
            async move {
                let _in_flight = guard;
                let _ = started_tx.send(());
                std::future::pending::<PollReport>().await
            }
        };
        let cancel = CancellationToken::new();
        let report = {
            let cancel = cancel.clone();
            let poll = ingestor.contain_panic(&source, poll, &cancel);
            tokio::pin!(poll);
            tokio::select! {
                _ = &mut poll => unreachable!("the poll never ends by itself"),
                _ = started_rx => {}
            }
            cancel.cancel();
            poll.await
        };
        assert_eq!(report.outcome, CANCELLED, "{report:?}");
        assert_eq!(report.error.as_deref(), Some("cut off by shutdown"));
        assert_eq!(
            report.defer_for,
            Some(Duration::from_secs(600)),
            "held back for the backoff base"
        );
        assert!(
            ended.load(Ordering::SeqCst),
            "the poll's work is dropped before the cancelled poll returns"
        );
        store.close().await;
    }

    /// A poll whose result cannot be stored leaves a stale due time in the database: it asks
    /// the scheduler to hold the source back for the backoff base, as a span.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_that_could_not_be_stored_asks_to_be_held_back_for_the_backoff_base() {
        let dir = tempfile::tempdir().unwrap();
        let base = Duration::from_secs(600);
        let settings = test_settings(base, Duration::from_secs(21_600));
        let (store, ingestor) = ingestor_over_a_new_store(dir.path(), &settings).await;
        store.close().await;
        let report = poll_alone(&ingestor, &test_source("s")).await;
        assert_eq!(report.outcome, "store", "{report:?}");
        assert_eq!(report.defer_for, Some(base));
    }

    /// A server's Retry-After outlives a write that fails: the poll's hold is the server's
    /// wait, not the shorter backoff base, so the source is not asked again meanwhile.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_retry_after_is_honoured_when_the_poll_that_got_it_cannot_be_stored() {
        let dir = tempfile::tempdir().unwrap();
        let base = Duration::from_secs(600);
        let settings = test_settings(base, Duration::from_secs(21_600));
        let (store, ingestor) = ingestor_over_a_new_store(dir.path(), &settings).await;
        let source = Source {
            url: serve_answer("429 Too Many Requests", "Retry-After: 3600\r\n", "").await,
            ..test_source("busy")
        };
        record_source(&store, &source).await;
        // Reads still work; every write of a poll's outcome to the source's row fails.
        rusqlite::Connection::open(dir.path().join("t.db"))
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER no_poll_writes BEFORE UPDATE ON sources
                 BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
            )
            .unwrap();
        let report = poll_alone(&ingestor, &source).await;
        assert_eq!(report.outcome, "store", "{report:?}");
        let hold = report.defer_for.expect("held back").as_secs();
        assert!((3_590..=3_600).contains(&hold), "held {hold} s: {report:?}");
        store.close().await;
    }

    /// A feed's bytes quoted in a parser error reach the log, the database and `tradefeed
    /// sources` on one line, with nothing a terminal acts on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_parse_error_quoting_the_feed_cannot_forge_a_log_line_or_reach_the_terminal() {
        let dir = tempfile::tempdir().unwrap();
        let settings = test_settings(Duration::from_secs(60), Duration::from_secs(3_600));
        let (store, ingestor) = ingestor_over_a_new_store(dir.path(), &settings).await;
        let source = Source {
            url: serve_feed(
                "<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>t</title>\
                 <item><title>a</title></itx\n2026-11-30T20:00:00Z  INFO poll{source=Fake}: \
                 polled outcome=ok \u{1b}]0;PWNED\u{7}\u{202e}>\n</channel></rss>",
            )
            .await,
            ..test_source("hostile")
        };
        record_source(&store, &source).await;
        let report = poll_alone(&ingestor, &source).await;
        assert_eq!(report.outcome, "parse", "{report:?}");
        let error = report.error.expect("an error");
        assert!(
            error.contains("itx\\n2026-11-30T20:00:00Z") && error.contains("\\u{1b}]0;PWNED"),
            "the bytes are written out: {error}"
        );
        assert!(
            !error.contains(|c: char| c.is_control() || c == '\u{202e}'),
            "{error:?}"
        );
        let stored: Option<String> = rusqlite::Connection::open(dir.path().join("t.db"))
            .unwrap()
            .query_row(
                "SELECT last_error FROM sources WHERE name = 'hostile'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(stored.as_deref(), Some(error.as_str()));
        store.close().await;
    }

    #[test]
    fn messages_as_shown_lose_credentials_and_write_out_control_line_and_bidi_characters() {
        assert_eq!(message_as_shown("plain: café — ok"), "plain: café — ok");
        assert_eq!(
            message_as_shown("a\nb\r\tc\u{1b}[31m\u{85}\u{2028}\u{202e}d\u{200f}"),
            "a\\nb\\r\\tc\\u{1b}[31m\\u{85}\\u{2028}\\u{202e}d\u{200f}"
        );
        assert_eq!(
            message_as_shown("invalid url: http://u:secret@host/f\n"),
            "invalid url: http://host/f\\n"
        );
    }

    /// Serves `body` as an RSS feed to every request on 127.0.0.1; returns its URL.
    async fn serve_feed(body: &'static str) -> String {
        serve_answer("200 OK", "Content-Type: application/rss+xml\r\n", body).await
    }

    /// Answers every request on 127.0.0.1 with `status`, the header lines `headers` (each
    /// ending in CRLF) and `body`; returns the URL.
    async fn serve_answer(
        status: &'static str,
        headers: &'static str,
        body: &'static str,
    ) -> String {
        let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        serve_answer_on([127, 0, 0, 1], status, headers.to_string(), body, hits).await
    }

    /// [`serve_answer`] on `ip`, counting the requests in `hits`.
    async fn serve_answer_on(
        ip: [u8; 4],
        status: &'static str,
        headers: String,
        body: &'static str,
        hits: Arc<std::sync::atomic::AtomicUsize>,
    ) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(std::net::SocketAddr::from((ip, 0)))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (headers, hits) = (headers.clone(), Arc::clone(&hits));
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let head = format!(
                        "HTTP/1.1 {status}\r\n{headers}\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(body.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        format!("http://{addr}/feed.xml")
    }

    /// A feed on a (stand-in) public address redirecting to a private one fails alone, with
    /// its own outcome and a message naming the key that allows it; the source that sets the
    /// key gets its feed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_redirect_fails_its_source_alone_and_the_key_lets_another_follow_it() {
        const FEED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>\
            <title>T</title><item><guid>p-1</guid><title>Tariff talks resume</title>\
            <pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item></channel></rss>";
        use std::sync::atomic::{AtomicUsize, Ordering};
        let private_hits = Arc::new(AtomicUsize::new(0));
        let private = serve_answer_on(
            [127, 0, 0, 1],
            "200 OK",
            "Content-Type: application/rss+xml\r\n".into(),
            FEED,
            Arc::clone(&private_hits),
        )
        .await;
        let public = serve_answer_on(
            [127, 0, 0, 2],
            "302 Found",
            format!("Location: {private}\r\n"),
            "",
            Arc::new(AtomicUsize::new(0)),
        )
        .await;
        let refused = Source {
            url: public.clone(),
            ..test_source("public")
        };
        let allowed = Source {
            url: public,
            allow_private_redirects: true,
            ..test_source("public, allowed")
        };
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), crate::store::Access::ReadWrite).unwrap();
        store
            .sync_sources(&[refused.clone(), allowed.clone()], |_, t, _| t)
            .await
            .unwrap();
        let network = crate::fetch::Network::system()
            .with_public_stand_in(std::net::IpAddr::from([127, 0, 0, 2]));
        let ingestor = Ingestor::new(
            store.clone(),
            Fetcher::with_network(crate::fetch::FetchLimits::default(), network).unwrap(),
            Arc::new(RwLock::new(Arc::new(Classifier::builtin()))),
            test_settings(Duration::from_secs(60), Duration::from_secs(21_600)),
        )
        .await
        .unwrap();

        let report = poll_alone(&ingestor, &refused).await;
        assert_eq!(report.outcome, "private_redirect", "{report:?}");
        assert_eq!(private_hits.load(Ordering::SeqCst), 0);
        let state = store.source_state("public").await.unwrap().unwrap();
        assert_eq!(state.last_outcome.as_deref(), Some("private_redirect"));
        let error = state.last_error.unwrap_or_default();
        assert!(error.contains("allow_private_redirects"), "{error}");
        assert!(!error.contains(&private), "{error}");
        assert_eq!(state.consecutive_failures, 1);

        let report = poll_alone(&ingestor, &allowed).await;
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.new_entries, 1, "{report:?}");
        assert_eq!(private_hits.load(Ordering::SeqCst), 1);
        store.close().await;
    }

    /// A poll is written to the stored source whose state it began with. An old edit moved S
    /// to a new URL and gave its old one to T; a reload landing during a poll of T swaps the
    /// two names, and the rows follow their URLs, so T's feed is the row named S now. Found by
    /// name and URL instead, the row named T (which had that URL before the old edit) would
    /// take the poll as one of a URL changed meanwhile, and the feed's row would miss it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_is_written_to_the_row_whose_state_it_began_with() {
        const FEED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>\
            <title>T</title><link>http://t.example/</link><description>d</description>\
            <item><guid>t-1</guid><link>http://t.example/1</link>\
            <title>EU opens anti-dumping probe into steel</title>\
            <description>The EU opened a probe.</description>\
            <pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item>\
            </channel></rss>";
        let dir = tempfile::tempdir().unwrap();
        let settings = test_settings(Duration::from_secs(60), Duration::from_secs(21_600));
        let (store, ingestor) = ingestor_over_a_new_store(dir.path(), &settings).await;
        let (feed, elsewhere) = (serve_feed(FEED).await, "http://127.0.0.1:9/new.xml");
        let at = |name: &str, url: &str| Source {
            url: url.into(),
            ..test_source(name)
        };
        let sync = |sources: [Source; 2]| {
            let store = store.clone();
            async move { store.sync_sources(&sources, |_, t, _| t).await.unwrap() }
        };
        sync([at("S", &feed), at("T", "http://127.0.0.1:9/t.xml")]).await;
        sync([at("S", elsewhere), at("T", &feed)]).await;
        let began = store.poll_state("T", &feed).await.unwrap();
        sync([at("S", &feed), at("T", elsewhere)]).await;

        let slot = Arc::new(Semaphore::new(1)).acquire_owned().await.unwrap();
        let report = ingestor
            .poll(
                &at("T", &feed),
                Some(began),
                slot,
                &CancellationToken::new(),
            )
            .await;
        assert!(report.is_ok(), "{report:?}");
        let feed_row = store.source_state("S").await.unwrap().unwrap();
        assert_eq!(
            (feed_row.url.as_str(), feed_row.entries),
            (feed.as_str(), 1)
        );
        assert!(
            feed_row.last_success.is_some(),
            "the poll's state is the feed's row's"
        );
        assert_eq!(store.source_state("T").await.unwrap().unwrap().entries, 0);
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_holding_the_index_or_settings_lock_does_not_crash_later_polls() {
        const FEED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>\
            <title>T</title><link>http://t.example/</link><description>d</description>\
            <item><guid>t-1</guid><link>http://t.example/1</link>\
            <title>EU opens anti-dumping probe into steel</title>\
            <description>The EU opened a probe.</description>\
            <pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item>\
            </channel></rss>";
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), crate::store::Access::ReadWrite).unwrap();
        let source = Source {
            url: serve_feed(FEED).await,
            ..test_source("after-crash")
        };
        record_source(&store, &source).await;
        let settings = test_settings(Duration::from_secs(600), Duration::from_secs(21_600));
        let ingestor = Ingestor::new(
            store.clone(),
            Fetcher::new(crate::fetch::FetchLimits::default()).unwrap(),
            Arc::new(RwLock::new(Arc::new(Classifier::builtin()))),
            settings.clone(),
        )
        .await
        .unwrap();
        ingestor.ensure_index(&settings).await.unwrap();

        // A panic in the middle of an index update, and one while replacing the settings
        // (only a writer's panic poisons an RwLock).
        let (index, settings_lock) = (Arc::clone(&ingestor.index), Arc::clone(&ingestor.settings));
        std::thread::spawn(move || {
            let _held = index.write().unwrap();
            panic!("mid-update");
        })
        .join()
        .unwrap_err();
        std::thread::spawn(move || {
            let _held = settings_lock.write().unwrap();
            panic!("while replacing the settings");
        })
        .join()
        .unwrap_err();
        assert!(ingestor.index.is_poisoned() && ingestor.settings.is_poisoned());

        let report = poll_alone(&ingestor, &source).await;
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.new_entries, 1, "{report:?}");
        assert!(!ingestor.index.is_poisoned() && !ingestor.settings.is_poisoned());
        assert!(
            ingestor.index.read().unwrap().is_some(),
            "the dropped index is rebuilt from the store"
        );
        // And a reload works again.
        ingestor.reconfigure(
            Fetcher::new(crate::fetch::FetchLimits::default()).unwrap(),
            settings,
        );
        store.close().await;
    }

    /// A source that once had items sharing a guid keeps asking about each item's `shared:`
    /// identity; what its plain identity's row holds, link included, the first lookup has
    /// already read, so it is not looked up again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_source_with_shared_guid_rows_looks_each_identity_up_once() {
        const SHARED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>\
            <title>T</title><link>http://t.example/</link><description>d</description>\
            <item><guid>http://t.example/</guid><link>http://t.example/a</link>\
            <title>EU opens anti-dumping probe into steel</title><description>A.</description>\
            <pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item>\
            <item><guid>http://t.example/</guid><link>http://t.example/b</link>\
            <title>US extends steel tariffs</title><description>B.</description>\
            <pubDate>Tue, 10 Nov 2026 08:00:00 GMT</pubDate></item>\
            <item><guid>c</guid><link>http://t.example/c</link>\
            <title>WTO panel rules on subsidies</title><description>C.</description>\
            <pubDate>Tue, 10 Nov 2026 07:00:00 GMT</pubDate></item>\
            </channel></rss>";
        // The next edition: the first item has the guid to itself, the second left, a new one.
        const OWN: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>\
            <title>T</title><link>http://t.example/</link><description>d</description>\
            <item><guid>http://t.example/</guid><link>http://t.example/a</link>\
            <title>EU opens anti-dumping probe into steel</title><description>A.</description>\
            <pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item>\
            <item><guid>c</guid><link>http://t.example/c</link>\
            <title>WTO panel rules on subsidies</title><description>C.</description>\
            <pubDate>Tue, 10 Nov 2026 07:00:00 GMT</pubDate></item>\
            <item><guid>d</guid><link>http://t.example/d</link>\
            <title>Canada and UK sign trade deal</title><description>D.</description>\
            <pubDate>Tue, 10 Nov 2026 06:00:00 GMT</pubDate></item>\
            </channel></rss>";
        let dir = tempfile::tempdir().unwrap();
        let settings = test_settings(Duration::from_secs(600), Duration::from_secs(21_600));
        let (store, ingestor) = ingestor_over_a_new_store(dir.path(), &settings).await;
        let source = Source {
            url: serve_feed(SHARED).await,
            ..test_source("cms")
        };
        record_source(&store, &source).await;
        let first = poll_alone(&ingestor, &source).await;
        assert_eq!(first.new_entries, 3, "{first:?}");

        let before = store.identity_lookups();
        let own = Source {
            url: serve_feed(OWN).await,
            ..source
        };
        let second = poll_alone(&ingestor, &own).await;
        assert_eq!(
            (second.new_entries, second.updated_entries),
            (1, 0),
            "the first item found its `shared:` row: {second:?}"
        );
        assert_eq!(
            store.identity_lookups() - before,
            2 * 3,
            "three items, each under its identity and its `shared:` one"
        );
        store.close().await;
    }

    /// An earlier release gave every item of a shared-guid group its `shared:` identity, so an
    /// item stored before under the plain guid may have a second row. When it has the guid to
    /// itself, the plain row with its link stays its row: an edit updates that one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_item_keeps_its_plain_guid_row_beside_an_earlier_releases_shared_row() {
        const FEED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>\
            <title>T</title><link>http://t.example/</link><description>d</description>\
            <item><guid>http://t.example/</guid><link>http://t.example/a</link>\
            <title>EU opens anti-dumping probe into steel</title><description>A.</description>\
            <pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item>\
            </channel></rss>";
        const EDITED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>\
            <title>T</title><link>http://t.example/</link><description>d</description>\
            <item><guid>http://t.example/</guid><link>http://t.example/a</link>\
            <title>EU opens anti-dumping probe into Chinese steel</title>\
            <description>A.</description>\
            <pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item>\
            </channel></rss>";
        let dir = tempfile::tempdir().unwrap();
        let settings = test_settings(Duration::from_secs(600), Duration::from_secs(21_600));
        let (store, ingestor) = ingestor_over_a_new_store(dir.path(), &settings).await;
        let source = Source {
            url: serve_feed(FEED).await,
            ..test_source("cms")
        };
        record_source(&store, &source).await;
        assert_eq!(poll_alone(&ingestor, &source).await.new_entries, 1);
        // The earlier release's second row of the same item.
        let guid = "guid:http://t.example/";
        let shared = shared_identity(guid, Some("http://t.example/a"));
        let db = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        let columns = "source_id, story_id, title, link, canonical_url, authors, published, \
                       updated, html, fingerprint, content_hash, signature, evidence, \
                       first_seen, last_changed, base_url";
        db.execute(
            &format!(
                "INSERT INTO entries (identity, {columns})
                 SELECT ?2, {columns} FROM entries WHERE identity = ?1"
            ),
            [guid, shared.as_str()],
        )
        .unwrap();

        let edited = Source {
            url: serve_feed(EDITED).await,
            ..source
        };
        let edited = poll_alone(&ingestor, &edited).await;
        assert_eq!((edited.new_entries, edited.updated_entries), (0, 1));
        let title = |identity: &str| -> String {
            db.query_row(
                "SELECT title FROM entries WHERE identity = ?1",
                [identity],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(
            title(guid),
            "EU opens anti-dumping probe into Chinese steel"
        );
        assert_eq!(title(&shared), "EU opens anti-dumping probe into steel");
        store.close().await;
    }

    /// Which tombstones the items a poll passes over have is asked for best-effort: without
    /// the answer the read counts them as not listed, which the next read that lists them
    /// undoes within the grace, so a failed lookup must not throw the fetched entries away
    /// and make the source back off.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_lookup_of_passed_over_items_keeps_the_poll() {
        const ONE: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>\
            <title>T</title><link>http://t.example/</link><description>d</description>\
            <item><guid>a</guid><link>http://t.example/a</link>\
            <title>EU opens anti-dumping probe into steel</title><description>A.</description>\
            <pubDate>Tue, 10 Nov 2026 08:00:00 GMT</pubDate></item>\
            </channel></rss>";
        // A new item c, newest; a (pruned) and b past the cap of one.
        const THREE: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>\
            <title>T</title><link>http://t.example/</link><description>d</description>\
            <item><guid>c</guid><link>http://t.example/c</link>\
            <title>WTO panel rules on subsidies</title><description>C.</description>\
            <pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item>\
            <item><guid>a</guid><link>http://t.example/a</link>\
            <title>EU opens anti-dumping probe into steel</title><description>A.</description>\
            <pubDate>Tue, 10 Nov 2026 08:00:00 GMT</pubDate></item>\
            <item><guid>b</guid><link>http://t.example/b</link>\
            <title>US extends steel tariffs</title><description>B.</description>\
            <pubDate>Tue, 10 Nov 2026 07:00:00 GMT</pubDate></item>\
            </channel></rss>";
        let dir = tempfile::tempdir().unwrap();
        let settings = IngestSettings {
            max_items_per_poll: 1,
            ..test_settings(Duration::from_secs(600), Duration::from_secs(21_600))
        };
        let (store, ingestor) = ingestor_over_a_new_store(dir.path(), &settings).await;
        let poll = |url: String| {
            let (ingestor, store) = (&ingestor, &store);
            async move {
                let source = Source {
                    url,
                    ..test_source("capped")
                };
                record_source(store, &source).await;
                poll_alone(ingestor, &source).await
            }
        };
        assert_eq!(poll(serve_feed(ONE).await).await.new_entries, 1);
        store
            .prune(Utc::now() + chrono::Duration::days(1))
            .await
            .unwrap();

        store.fail_pruned_among(true);
        let report = poll(serve_feed(THREE).await).await;
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(
            (report.items, report.skipped, report.new_entries),
            (3, 2, 1),
            "{report:?}"
        );
        store.fail_pruned_among(false);
        let db = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        let entries: Vec<String> = db
            .prepare("SELECT identity FROM entries")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(entries, ["guid:c"]);
        store.close().await;
    }

    #[tokio::test]
    async fn the_last_poll_to_hand_over_its_writes_asks_the_store_to_copy_its_wal() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), crate::store::Access::ReadWrite).unwrap();
        let preparing = AtomicUsize::new(0);
        let first = PreparingPoll::start(&preparing, &store);
        let second = PreparingPoll::start(&preparing, &store);
        drop(first);
        assert!(
            !store.copy_wal_soon_asked(),
            "another poll is still preparing"
        );
        drop(second);
        assert!(store.copy_wal_soon_asked(), "no poll left preparing");
        let third = PreparingPoll::start(&preparing, &store);
        assert!(
            !store.copy_wal_soon_asked(),
            "the next poll to start withdraws the ask"
        );
        drop(third);
        assert!(store.copy_wal_soon_asked());
        assert_eq!(preparing.load(Ordering::Acquire), 0);
        store.close().await;
    }

    #[tokio::test]
    async fn a_writer_that_goes_idle_drops_an_ask_to_copy_its_wal_soon() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), crate::store::Access::ReadWrite).unwrap();
        // A write, so that the writer folds the WAL once idle; the ask comes after its commit.
        store.set_meta("test", "1").await.unwrap();
        store.copy_wal_soon(true);
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.copy_wal_soon_asked() {
            assert!(Instant::now() < deadline, "the idle writer dropped the ask");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        store.close().await;
    }

    /// Serves `body` as an RSS feed to one request on 127.0.0.1, answering only once
    /// `release` fires; `fetched` fires when the request has come in. Returns the URL.
    async fn serve_held_feed(
        body: &'static str,
    ) -> (
        String,
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (fetched_tx, fetched) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let _ = fetched_tx.send(());
            let _ = released.await;
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
        (format!("http://{addr}/feed.xml"), fetched, release)
    }

    /// A poll takes the classifier in force when it starts; a reload replaces the topic
    /// profiles while the poll's feed is still being fetched (the sweep it starts may pass
    /// the poll's stories before they are written). What the poll writes is scored with the
    /// profiles in force when it is written, not with those it started with, whether its
    /// source clusters (a poll with a near-duplicate hook) or not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_poll_overtaken_by_a_reload_writes_the_scores_of_the_profiles_in_force() {
        const FEED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel>\
            <title>T</title><link>http://t.example/</link><description>d</description>\
            <item><guid>a</guid><link>http://t.example/a</link>\
            <title>EU opens anti-dumping probe into Chinese steel</title>\
            <description>Brussels said steel imports surged.</description>\
            <pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item>\
            <item><guid>b</guid><link>http://t.example/b</link>\
            <title>Central bank holds rates</title>\
            <description>Inflation eased in October.</description>\
            <pubDate>Tue, 10 Nov 2026 08:00:00 GMT</pubDate></item>\
            </channel></rss>";
        let topics = tempfile::tempdir().unwrap();
        std::fs::write(
            topics.path().join("steel.toml"),
            "name = \"steel\"\nthreshold = 0.5\n[positive]\n\"steel\" = 1.5\n",
        )
        .unwrap();
        for cluster in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let settings = test_settings(Duration::from_secs(600), Duration::from_secs(21_600));
            let (store, ingestor) = ingestor_over_a_new_store(dir.path(), &settings).await;
            let (url, fetched, release) = serve_held_feed(FEED).await;
            let source = Source {
                url,
                cluster,
                ..test_source("held")
            };
            record_source(&store, &source).await;
            let poll = tokio::spawn({
                let (ingestor, source) = (ingestor.clone(), source.clone());
                async move { poll_alone(&ingestor, &source).await }
            });
            // The request is out: the poll has taken the built-in classifier.
            fetched.await.unwrap();
            let reloaded = Arc::new(Classifier::load(topics.path()).unwrap());
            *ingestor.classifier.write().unwrap() = Arc::clone(&reloaded);
            release.send(()).unwrap();
            let report = poll.await.unwrap();
            assert_eq!(report.new_entries, 2, "cluster {cluster}: {report:?}");

            let stored = store.stories_for_scoring(0, 10).await.unwrap();
            assert_eq!(stored.len(), 2, "cluster {cluster}");
            for story in stored {
                let topics = store.story(story.story).await.unwrap().unwrap().topics;
                let names: Vec<_> = topics.iter().map(|t| t.topic.as_str()).collect();
                assert_eq!(names, ["steel"], "cluster {cluster}: {}", story.title);
                assert_eq!(
                    topics,
                    reloaded.score(&story.title, &story.text),
                    "cluster {cluster}: {}",
                    story.title
                );
            }
            store.close().await;
        }
    }
}
