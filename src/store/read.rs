//! Queries. Each runs on a read connection and sees one consistent snapshot (WAL).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::idle::polled_sql;
use super::{Store, StoreError, secs, time};
use crate::domain::{Appearance, Media, StoryId, TopicScore};

/// Why a source is left out of a polling pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollBlocker {
    /// Stopped by us (e.g. 410 Gone), with the reason.
    Disabled(String),
    /// The server asked not to be polled before this time.
    RetryAfter(DateTime<Utc>),
}

/// The stored source a poll belongs to by names and URLs ([`Store::poll_target`]), as the
/// config now has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollTarget {
    /// Its name now.
    pub name: String,
    /// Its URL now: another than the polled one when a reload gave the source a new URL.
    pub url: String,
    /// Whether the config lists it (a removed source's row stays while it has entries).
    pub in_config: bool,
    /// Whether the config enables it.
    pub enabled: bool,
    /// The URL it had before the config last changed it.
    pub previous_url: Option<String>,
}

/// The part of a source's state a poll reads before fetching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollState {
    /// The stored source's row, which the poll is written to whatever a reload renames
    /// meanwhile ([`crate::store::PollRecord::source_row`]).
    pub source_id: i64,
    /// Validator to send as If-None-Match.
    pub etag: Option<String>,
    /// Validator to send as If-Modified-Since.
    pub last_modified: Option<String>,
    /// Failed polls in a row (drives the back-off).
    pub consecutive_failures: u32,
}

/// When a source may be polled next, as stored, with what decided it: the scheduler checks
/// these against the clock (see `scheduler::settle_due_times`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTimes {
    /// When it is due next (`None`: as soon as possible).
    pub next_due: Option<DateTime<Utc>>,
    /// The server asked not to be polled before this.
    pub retry_not_before: Option<DateTime<Utc>>,
    /// Failed polls in a row (drives the back-off).
    pub consecutive_failures: u32,
    /// When its last poll began.
    pub last_attempt: Option<DateTime<Utc>>,
}

/// A source's polling state and health, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceState {
    /// Name.
    pub name: String,
    /// Configured URL.
    pub url: String,
    /// Schedule line.
    pub schedule: String,
    /// Still listed in the config.
    pub in_config: bool,
    /// Config's `enabled`.
    pub enabled: bool,
    /// Why tradefeed stopped polling it (e.g. 410 Gone).
    pub disabled_reason: Option<String>,
    /// Validator from the last 200.
    pub etag: Option<String>,
    /// Validator from the last 200.
    pub last_modified: Option<String>,
    /// When it is due next (`None`: as soon as possible).
    pub next_due: Option<DateTime<Utc>>,
    /// The server asked not to be polled before this.
    pub retry_not_before: Option<DateTime<Utc>>,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Last poll start.
    pub last_attempt: Option<DateTime<Utc>>,
    /// `ok`, `not_modified` or an error kind.
    pub last_outcome: Option<String>,
    /// Last error message (cleared on success).
    pub last_error: Option<String>,
    /// Last successful poll.
    pub last_success: Option<DateTime<Utc>>,
    /// Last poll that brought a new entry.
    pub last_new_entry: Option<DateTime<Utc>>,
    /// URL a 301/308 pointed to.
    pub moved_to: Option<String>,
    /// Entries stored for it.
    pub entries: u64,
}

/// Which stories to list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoryQuery {
    /// Only stories matching this topic (`None`: all stories).
    pub topic: Option<String>,
    /// Only stories with an appearance from this source.
    pub source: Option<String>,
    /// Words that must all occur in the title or text (stemmed, case- and accent-insensitive).
    pub search: Option<String>,
    /// Only stories older than this one in the list's order (the next page after it).
    pub before: Option<StoryCursor>,
    /// At most this many, newest first.
    pub limit: usize,
}

/// A story's place in the order every story list has (newest published first, then highest
/// id first, as the index `stories_published` keeps them): a page of a list ends at one, and
/// the next page is the stories after it ([`StoryQuery::before`]). The id breaks ties among
/// stories published in the same second, so paging neither skips nor repeats one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoryCursor {
    /// The story's publication time (as stored, to the second).
    pub published: DateTime<Utc>,
    /// The story's id.
    pub id: StoryId,
}

impl StoryCursor {
    /// The place of `story` in the list.
    pub fn of(story: &StoryView) -> StoryCursor {
        StoryCursor {
            published: story.published,
            id: story.id,
        }
    }
}

/// A story with everything the output feeds show.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryView {
    /// Stable id.
    pub id: StoryId,
    /// Representative title (plain text).
    pub title: String,
    /// Representative link.
    pub link: Option<String>,
    /// The representative entry's HTML as its feed gave it (older databases hold it
    /// sanitized). Not safe to output as is: sanitize it (`normalize::sanitize_html`), as
    /// every feed this crate serves does.
    pub html: String,
    /// The URL relative URLs in `html` are relative to: the one the representative's feed was
    /// fetched from (its source's URL unless a redirect said otherwise; empty if the story has
    /// no representative).
    pub base_url: String,
    /// Representative plain text.
    pub text: String,
    /// Authors of the representative entry.
    pub authors: Vec<String>,
    /// The representative entry's enclosures and lead image (empty for a row stored before
    /// they were read and not renewed since, see migration 10).
    pub media: Media,
    /// Earliest publication time among appearances.
    pub published: DateTime<Utc>,
    /// Last content change.
    pub updated: DateTime<Utc>,
    /// When tradefeed first saw it.
    pub first_seen: DateTime<Utc>,
    /// Every appearance, earliest first.
    pub appearances: Vec<Appearance>,
    /// Topic scores.
    pub topics: Vec<TopicScore>,
}

const STATE_COLUMNS: &str = "s.name, s.url, s.schedule, s.in_config, s.enabled, s.disabled_reason,
    s.etag, s.last_modified, s.next_due, s.retry_not_before, s.consecutive_failures,
    s.last_attempt, s.last_outcome, s.last_error, s.last_success, s.last_new_entry, s.moved_to,
    (SELECT count(*) FROM entries e WHERE e.source_id = s.id)";

/// A [`PollState`] from the columns `id, etag, last_modified, consecutive_failures`, starting
/// at column `first`.
fn poll_state_at(r: &rusqlite::Row, first: usize) -> rusqlite::Result<PollState> {
    Ok(PollState {
        source_id: r.get(first)?,
        etag: r.get(first + 1)?,
        last_modified: r.get(first + 2)?,
        consecutive_failures: r.get(first + 3)?,
    })
}

fn state_from_row(r: &rusqlite::Row) -> rusqlite::Result<SourceState> {
    let t = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(time))
    };
    Ok(SourceState {
        name: r.get(0)?,
        url: r.get(1)?,
        schedule: r.get(2)?,
        in_config: r.get(3)?,
        enabled: r.get(4)?,
        disabled_reason: r.get(5)?,
        etag: r.get(6)?,
        last_modified: r.get(7)?,
        next_due: t(8)?,
        retry_not_before: t(9)?,
        consecutive_failures: r.get(10)?,
        last_attempt: t(11)?,
        last_outcome: r.get(12)?,
        last_error: r.get(13)?,
        last_success: t(14)?,
        last_new_entry: t(15)?,
        moved_to: r.get(16)?,
        entries: r.get::<_, i64>(17)?.max(0) as u64,
    })
}

/// What the store holds of the entries a poll asks about (see [`Store::known_entries`]).
#[derive(Debug, Default)]
pub struct KnownEntries {
    /// The content hash of each stored identity asked about (`""` for a pruned entry).
    pub hashes: HashMap<String, String>,
    /// The canonical link of each stored entry asked about with its link, and of every stored
    /// entry asked about under a plain (not `shared:`) identity when `any_shared`.
    pub links: HashMap<String, Option<String>>,
    /// The stored base URL (`entries.base_url`) of each stored entry asked about that has one
    /// (most have none: a source fetched from its configured URL, without `xml:base`).
    pub bases: HashMap<String, String>,
    /// Whether the source holds any entry (or pruned one) identified as `shared:…`.
    pub any_shared: bool,
    /// Whether the source has any tombstone (an entry pruned by retention).
    pub any_pruned: bool,
    /// The source's URL before the config last changed it (`sources.previous_url`), when it
    /// has entries: the URL the entries stored before the change were fetched from.
    pub previous_url: Option<String>,
}

/// One identity of a source, stored or pruned (a tombstone's hash is '' and it has no link).
const IDENTITY_LOOKUP: &str = "SELECT e.content_hash, e.canonical_url, e.base_url FROM entries e
                                 JOIN sources s ON s.id = e.source_id
                                WHERE s.name = ?1 AND e.identity = ?2
                               UNION ALL
                               SELECT '', NULL, NULL FROM tombstones t JOIN sources s ON s.id = t.source_id
                                WHERE s.name = ?1 AND t.identity = ?2";

/// A story whose representative a priority change outranked (see
/// [`Store::outranked_stories`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Outranked {
    pub story: StoryId,
    /// Its representative entry when read (`None`: none, or one no longer stored).
    pub representative: Option<i64>,
    /// Its copies from the sources of the highest priority among its copies', by entry id:
    /// the order they were stored in, which the choice among them replays.
    pub candidates: Vec<Candidate>,
}

/// A story as read for re-scoring (see [`Store::stories_for_scoring`]): what its scores are
/// made from, and what [`Store::replace_scores`] checks is still there before it writes them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryToScore {
    pub story: StoryId,
    /// Its representative entry when read.
    pub representative: Option<i64>,
    pub title: String,
    /// The story's plain text, as scored.
    pub text: String,
}

/// One row of `SELECT id, representative, title, text FROM stories`.
fn story_to_score(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoryToScore> {
    Ok(StoryToScore {
        story: r.get(0)?,
        representative: r.get(1)?,
        title: r.get(2)?,
        text: r.get(3)?,
    })
}

/// A stored copy that may come to represent its story.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub entry: i64,
    /// The priority of its source now.
    pub priority: i32,
    /// Its source (the stored row's id).
    pub source: i64,
    pub title: String,
    pub link: Option<String>,
    /// As stored: the feed's HTML, cut at the text cap.
    pub html: String,
    /// JSON array, as stored.
    pub authors: String,
    /// As stored: an edit changes it.
    pub content_hash: String,
}

impl Store {
    /// How many identity lookups [`Store::known_entries`] has run on the pooled read
    /// connections (SQLite's own count of runs of the statement).
    #[cfg(test)]
    pub(crate) fn identity_lookups(&self) -> i64 {
        let readers = self.inner.readers.lock().expect("reader lock poisoned");
        readers
            .iter()
            .map(|c| {
                c.prepare_cached(IDENTITY_LOOKUP).map_or(0, |s| {
                    i64::from(s.get_status(rusqlite::StatementStatus::Run))
                })
            })
            .sum()
    }

    /// Every source configured now, and every one removed from the config whose entries are
    /// still stored (an entry's source is named with its story), by name. A removed source
    /// that never stored anything, or whose entries were all pruned, is history only the
    /// fetch log needs: listed, it stayed on the status page as "removed from config" forever.
    pub async fn source_states(&self) -> Result<Vec<SourceState>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {STATE_COLUMNS} FROM sources s
                  WHERE s.in_config = 1
                     OR EXISTS (SELECT 1 FROM entries e WHERE e.source_id = s.id)
                  ORDER BY s.name"
            ))?;
            let rows = stmt.query_map([], state_from_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The stored source a poll of `url` begun as the source named `name` belongs to now, by
    /// the rule the write follows for a record without its row id (`source_row`; a poll's
    /// write goes to the row it began on, which this cannot know): the row of that name while it
    /// has that URL, or had it until a reload gave it another (none of the old URL's state
    /// is written to it then); else the one configured row with that URL (a reload renamed
    /// the source, or swapped two names); else the row of that name. `None` if there is no
    /// such row.
    /// The dispatcher asks it when a reload lands during a poll.
    pub async fn poll_target(
        &self,
        name: &str,
        url: &str,
    ) -> Result<Option<PollTarget>, StoreError> {
        Ok(self
            .polled_source(name, url)
            .await?
            .map(|(target, _)| target))
    }

    /// What a poll of `url`, begun as the source named `name`, needs to know about its source:
    /// the validators to send and how many polls in a row have failed. Lighter than
    /// [`Store::source_state`], which also counts entries.
    ///
    /// The row is the one the write would place the poll on by name and URL (the rule of
    /// [`Store::poll_target`]): a reload that renamed the source after the dispatcher took it
    /// from the config, and gave its old name to another feed, would otherwise hand the poll
    /// that feed's row, and its validators would be sent to this URL (a 304 for a feed never
    /// fetched). A row whose URL a reload changed keeps the poll, but its validators are of
    /// the new URL and are not sent.
    pub async fn poll_state(&self, name: &str, url: &str) -> Result<Option<PollState>, StoreError> {
        Ok(self
            .polled_source(name, url)
            .await?
            .map(|(target, mut state)| {
                if target.url != url {
                    state.etag = None;
                    state.last_modified = None;
                }
                state
            }))
    }

    /// The row [`Store::poll_target`] picks, with its [`PollState`].
    async fn polled_source(
        &self,
        name: &str,
        url: &str,
    ) -> Result<Option<(PollTarget, PollState)>, StoreError> {
        const COLUMNS: &str = "name, url, in_config, enabled, previous_url, \
                               id, etag, last_modified, consecutive_failures";
        let (name, url) = (name.to_string(), url.to_string());
        self.read(move |c| {
            let row = |r: &rusqlite::Row<'_>| {
                let target = PollTarget {
                    name: r.get(0)?,
                    url: r.get(1)?,
                    in_config: r.get(2)?,
                    enabled: r.get(3)?,
                    previous_url: r.get(4)?,
                };
                Ok((target, poll_state_at(r, 5)?))
            };
            // Both reads in one snapshot: a reload committed between them could give a
            // pick that matches neither the config before it nor after.
            let snapshot = c.unchecked_transaction()?;
            let named = snapshot
                .prepare_cached(&format!("SELECT {COLUMNS} FROM sources WHERE name = ?1"))?
                .query_row([&name], row)
                .optional()?;
            let picked = super::write::pick_poll_target(
                named,
                |(named, _)| {
                    named.url == url || named.previous_url.as_deref() == Some(url.as_str())
                },
                || {
                    Ok(snapshot
                        .prepare_cached(&format!(
                            "SELECT {COLUMNS} FROM sources WHERE url = ?1 AND in_config = 1 LIMIT 2"
                        ))?
                        .query_map([&url], row)?
                        .collect::<Result<_, _>>()?)
                },
            )?;
            snapshot.finish()?;
            Ok(picked)
        })
        .await
    }

    /// [`Store::poll_state`] of every source, by name: one query for a whole `fetch` pass
    /// instead of one per source.
    pub async fn poll_states(
        &self,
    ) -> Result<std::collections::HashMap<String, PollState>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, id, etag, last_modified, consecutive_failures FROM sources",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, poll_state_at(r, 1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    /// Why sources must not be polled now, by name: those stopped by the server (410 Gone)
    /// and those it asked to wait (Retry-After still in the future). One query for a whole
    /// `fetch` pass.
    pub async fn poll_blockers(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, PollBlocker)>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, disabled_reason, retry_not_before FROM sources
                  WHERE disabled_reason IS NOT NULL OR coalesce(retry_not_before, 0) > ?1",
            )?;
            let rows = stmt.query_map([secs(now)], |r| {
                let name: String = r.get(0)?;
                let blocker = match r.get::<_, Option<String>>(1)? {
                    Some(reason) => PollBlocker::Disabled(reason),
                    None => PollBlocker::RetryAfter(time(r.get(2)?)),
                };
                Ok((name, blocker))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// One source's state.
    pub async fn source_state(&self, name: &str) -> Result<Option<SourceState>, StoreError> {
        let name = name.to_string();
        self.read(move |c| {
            Ok(c.query_row(
                &format!("SELECT {STATE_COLUMNS} FROM sources s WHERE s.name = ?1"),
                [name],
                state_from_row,
            )
            .optional()?)
        })
        .await
    }

    /// Every source's [`DueTimes`], by name.
    pub async fn due_times(&self) -> Result<Vec<(String, DueTimes)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT name, next_due, retry_not_before, consecutive_failures, last_attempt
                   FROM sources",
            )?;
            let rows = stmt.query_map([], |r| {
                let t = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
                    Ok(r.get::<_, Option<i64>>(i)?.map(time))
                };
                Ok((
                    r.get(0)?,
                    DueTimes {
                        next_due: t(1)?,
                        retry_not_before: t(2)?,
                        consecutive_failures: r.get(3)?,
                        last_attempt: t(4)?,
                    },
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Names of pollable sources due at `now` (never polled, or past both their due time and
    /// any Retry-After), most overdue first.
    pub async fn due_sources(&self, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(concat!(
                "SELECT name FROM sources WHERE ",
                polled_sql!(),
                " AND coalesce(next_due, 0) <= ?1 AND coalesce(retry_not_before, 0) <= ?1
                  ORDER BY coalesce(next_due, 0), name",
            ))?;
            let rows = stmt.query_map([secs(now)], |r| r.get(0))?;
            Ok(rows.collect::<Result<Vec<String>, _>>()?)
        })
        .await
    }

    /// When each pollable source becomes due, by name: the later of its due time and any
    /// Retry-After (the epoch for one due at once). Per source, not just the earliest, so
    /// that the scheduler can leave out the sources it holds back in memory.
    pub async fn due_at(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(concat!(
                "SELECT name, max(coalesce(next_due, 0), coalesce(retry_not_before, 0))
                   FROM sources WHERE ",
                polled_sql!()
            ))?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, time(r.get(1)?))))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Content hashes of a source's known entries among `identities` (to skip unchanged ones
    /// before the costly stages), and the canonical link of those asked with `true` (to tell
    /// which of the items sharing one guid its stored row is), or of every plain identity
    /// when the source has `shared:` rows (see [`KnownEntries::any_shared`]).
    pub async fn known_entries(
        &self,
        source: &str,
        identities: Vec<(String, bool)>,
    ) -> Result<KnownEntries, StoreError> {
        let source = source.to_string();
        self.read(move |c| {
            let mut known = KnownEntries::default();
            // A source that has never stored an entry (a new one: every source on a first
            // pass) has nothing to find: one probe instead of a lookup per item.
            // The same probe reads the source's previous URL (see `previous_url`).
            let (any_entry, any_pruned, previous_url): (bool, bool, Option<String>) = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM entries e JOIN sources s ON s.id = e.source_id
                                     WHERE s.name = ?1),
                            EXISTS (SELECT 1 FROM tombstones t JOIN sources s ON s.id = t.source_id
                                     WHERE s.name = ?1),
                            (SELECT previous_url FROM sources WHERE name = ?1)",
                )?
                .query_row([&source], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            known.any_pruned = any_pruned;
            if !any_entry && !any_pruned {
                return Ok(known);
            }
            known.previous_url = previous_url;
            // One range probe on the (source, identity) keys.
            known.any_shared = c
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM entries e JOIN sources s ON s.id = e.source_id
                                     WHERE s.name = ?1 AND e.identity >= 'shared:'
                                       AND e.identity < 'shared;')
                         OR EXISTS (SELECT 1 FROM tombstones t JOIN sources s ON s.id = t.source_id
                                     WHERE s.name = ?1 AND t.identity >= 'shared:'
                                       AND t.identity < 'shared;')",
                )?
                .query_row([&source], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(IDENTITY_LOOKUP)?;
            for (identity, with_link) in identities {
                // A source with `shared:` rows needs every plain identity's link (which item
                // its row is): read now, from the row this lookup reads anyway, it saves
                // asking for the identity again. Other sources (nearly all) read no link.
                let with_link = with_link || (known.any_shared && !identity.starts_with("shared:"));
                if let Some((hash, link, base)) = stmt
                    .query_row(params![source, identity], |r| {
                        let link = if with_link {
                            r.get::<_, Option<String>>(1)?
                        } else {
                            None
                        };
                        Ok((r.get::<_, String>(0)?, link, r.get::<_, Option<String>>(2)?))
                    })
                    .optional()?
                {
                    // A tombstone has no link to match.
                    if with_link && !hash.is_empty() {
                        known.links.insert(identity.clone(), link);
                    }
                    if let Some(base) = base {
                        known.bases.insert(identity.clone(), base);
                    }
                    known.hashes.insert(identity, hash);
                }
            }
            Ok(known)
        })
        .await
    }

    /// Which of `identities` the source has tombstones for, each once. Asked about the items
    /// a poll read but did not take in (dated before the retention, or past
    /// `max_items_per_poll`), whose tombstones its write then keeps (see [`Store::prune`]);
    /// only for a source with any ([`KnownEntries::any_pruned`]). See [`pruned_among`] for
    /// what it costs.
    pub async fn pruned_among(
        &self,
        source: &str,
        identities: Vec<String>,
    ) -> Result<Vec<String>, StoreError> {
        #[cfg(test)]
        if self
            .inner
            .fail_pruned_among
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR_READ),
                None,
            )));
        }
        let source = source.to_string();
        self.read(move |c| Ok(pruned_among(c, &source, identities)?))
            .await
    }

    /// Stories for an output feed, newest first.
    pub async fn stories(&self, query: StoryQuery) -> Result<Vec<StoryView>, StoreError> {
        // A search sees every committed story once the index has caught up. When it cannot
        // (a full disk, another program holding the write lock), the index as it is still
        // answers, without the newest stories: better than no search at all. The writer
        // reports the failure, and tries again.
        if query.search.is_some()
            && let Err(e) = self.catch_up_search().await
        {
            tracing::debug!(error = %e, "search served from the index as it is");
        }
        self.read(move |c| list_stories(c, &query)).await
    }

    /// One story with its appearances (and their evidence), if it exists.
    pub async fn story(&self, id: StoryId) -> Result<Option<StoryView>, StoreError> {
        self.read(move |c| {
            let mut stories = load_stories(c, &[id])?;
            Ok(stories.pop())
        })
        .await
    }

    /// Stories after `after` (by id, at most `limit`) with what re-scoring reads of them.
    pub async fn stories_for_scoring(
        &self,
        after: StoryId,
        limit: usize,
    ) -> Result<Vec<StoryToScore>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, representative, title, text FROM stories
                  WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit as i64], story_to_score)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The stories of `ids` that still exist, as [`Store::stories_for_scoring`] reads them: read
    /// again when a poll changed them after an earlier read (see [`Store::replace_scores`]).
    pub async fn stories_to_score(
        &self,
        ids: Vec<StoryId>,
    ) -> Result<Vec<StoryToScore>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, representative, title, text FROM stories WHERE id = ?1",
            )?;
            let mut stories = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(story) = stmt.query_row([id], story_to_score).optional()? {
                    stories.push(story);
                }
            }
            Ok(stories)
        })
        .await
    }

    /// The sources' priorities in one text (`id:priority,…` by id): stored beside the
    /// representatives chosen under them, so that a change is seen at the next start or
    /// reload (see `app::repick_if_priorities_changed`).
    pub async fn priorities(&self) -> Result<String, StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT coalesce(group_concat(id || ':' || priority, ',' ORDER BY id), '')
                 FROM sources",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Stories after `after` (by id, at most `limit`) represented by a copy whose source now
    /// has a lower priority than another of their copies' (a priority changed since the copies
    /// came in), or by no stored copy: each with its copies of the highest priority, which
    /// one of them is to represent it (see [`Store::represent_again`]).
    pub async fn outranked_stories(
        &self,
        after: StoryId,
        limit: usize,
    ) -> Result<Vec<Outranked>, StoreError> {
        self.read(move |c| {
            let mut stories = c.prepare_cached(
                "SELECT s.id, s.representative FROM stories s
                 LEFT JOIN entries r ON r.id = s.representative AND r.story_id = s.id
                 LEFT JOIN sources rs ON rs.id = r.source_id
                 WHERE s.id > ?1 AND EXISTS (
                     SELECT 1 FROM entries e JOIN sources es ON es.id = e.source_id
                     WHERE e.story_id = s.id
                       AND (rs.id IS NULL OR es.priority > rs.priority))
                 ORDER BY s.id LIMIT ?2",
            )?;
            let found = stories
                .query_map(params![after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<(StoryId, Option<i64>)>, _>>()?;
            let mut copies = c.prepare_cached(
                "SELECT e.id, e.title, e.link, e.html, e.authors, e.content_hash, es.priority,
                        es.id
                 FROM entries e JOIN sources es ON es.id = e.source_id
                 WHERE e.story_id = ?1 AND es.priority = (
                     SELECT max(s2.priority) FROM entries e2 JOIN sources s2 ON s2.id = e2.source_id
                     WHERE e2.story_id = ?1)
                 ORDER BY e.id",
            )?;
            let mut outranked = Vec::with_capacity(found.len());
            for (story, representative) in found {
                let candidates = copies
                    .query_map([story], |r| {
                        Ok(Candidate {
                            entry: r.get(0)?,
                            title: r.get(1)?,
                            link: r.get(2)?,
                            html: r.get(3)?,
                            authors: r.get(4)?,
                            content_hash: r.get(5)?,
                            priority: r.get(6)?,
                            source: r.get(7)?,
                        })
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                outranked.push(Outranked {
                    story,
                    representative,
                    candidates,
                });
            }
            Ok(outranked)
        })
        .await
    }

    /// Signatures of entries first seen since `since`, with their story, for rebuilding the
    /// near-duplicate index at start-up.
    pub async fn signatures_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(StoryId, Vec<u8>, DateTime<Utc>)>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare(
                "SELECT story_id, signature, published FROM entries
                  WHERE signature IS NOT NULL AND title_only IS NOT 1 AND first_seen >= ?1
                  ORDER BY id",
            )?;
            let rows = stmt.query_map([secs(since)], |r| {
                Ok((r.get(0)?, r.get(1)?, time(r.get(2)?)))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// A value from the meta table.
    pub async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = key.to_string();
        self.read(move |c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    /// Stories matching each topic, by topic name.
    pub async fn topic_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT topic, count(*) FROM story_topics WHERE matched = 1 GROUP BY topic ORDER BY topic",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Counts for the status page: (stories, entries).
    pub async fn counts(&self) -> Result<(u64, u64), StoreError> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT (SELECT count(*) FROM stories), (SELECT count(*) FROM entries)",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )?)
        })
        .await
    }
}

fn list_stories(c: &Connection, q: &StoryQuery) -> Result<Vec<StoryView>, StoreError> {
    use rusqlite::types::Value;
    let mut sql = String::from("SELECT st.id FROM stories st WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(before) = &q.before {
        // A row value, compared as the ORDER BY below sorts (both columns descending), so
        // that SQLite walks `stories_published` from the cursor on.
        args.push(Value::Integer(secs(before.published)));
        args.push(Value::Integer(before.id));
        sql.push_str(&format!(
            " AND (st.published, st.id) < (?{}, ?{})",
            args.len() - 1,
            args.len()
        ));
    }
    if let Some(topic) = &q.topic {
        args.push(Value::Text(topic.clone()));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM story_topics t WHERE t.story_id = st.id
                 AND t.topic = ?{} AND t.matched = 1)",
            args.len()
        ));
    }
    if let Some(source) = &q.source {
        args.push(Value::Text(source.clone()));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM entries e JOIN sources s ON s.id = e.source_id
                 WHERE e.story_id = st.id AND s.name = ?{})",
            args.len()
        ));
    }
    if let Some(search) = q.search.as_deref() {
        let words = search_words(search);
        if words.len() > MAX_SEARCH_WORDS {
            return Err(StoreError::Search(format!(
                "at most {MAX_SEARCH_WORDS} words can be searched for, got {}",
                words.len()
            )));
        }
        match fts_query(&words) {
            Some(fts) => {
                args.push(Value::Text(fts));
                sql.push_str(&format!(
                    " AND st.id IN (SELECT rowid FROM stories_fts WHERE stories_fts MATCH ?{})",
                    args.len()
                ));
            }
            // A search for nothing searchable finds nothing (not everything).
            None => return Ok(Vec::new()),
        }
    }
    sql.push_str(&format!(
        " ORDER BY st.published DESC, st.id DESC LIMIT {}",
        q.limit
    ));
    let mut stmt = c.prepare_cached(&sql)?;
    let ids = stmt
        .query_map(params_from_iter(args.iter()), |r| r.get::<_, i64>(0))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| match q.search {
            Some(_) => search_error(e),
            None => StoreError::Sqlite(e),
        })?;
    load_stories(c, &ids)
}

/// An error running a prepared search. FTS5 reports a MATCH expression it cannot read as a
/// plain SQLITE_ERROR whose message starts `fts5:` ("fts5: syntax error near …") or is
/// "unterminated string": that is the search's fault ([`StoreError::Search`], a 400). Every
/// other failure, plain SQLITE_ERROR included ("no such table", "no such column": a schema
/// fault, never the reader's), stays the database's ([`StoreError::Sqlite`], a 503, logged).
/// FTS5's own "no such column: …" for a column filter is left out on purpose: it cannot be told
/// from a schema fault, and [`fts_query`] quotes every word, so no search makes a filter.
fn search_error(e: rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(f, Some(message))
            if f.extended_code == rusqlite::ffi::SQLITE_ERROR
                && (message.starts_with("fts5:") || message == "unterminated string") =>
        {
            StoreError::Search(message)
        }
        other => StoreError::Sqlite(other),
    }
}

/// Most words a search may have (each is one more FTS5 phrase to intersect).
pub const MAX_SEARCH_WORDS: usize = 16;

/// The words a search text is searched for: split at whitespace and control characters (which
/// never reach FTS5), `"` removed, and only pieces with a letter or digit kept (`!!!`, `&` or a
/// zero-width space are no words). A search with no words finds nothing.
pub fn search_words(text: &str) -> Vec<String> {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .map(|w| w.replace('"', ""))
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect()
}

/// An FTS5 query in which every word must match: each word becomes a quoted string, so no
/// input can be read as FTS5 syntax (operators, columns, parentheses). `None` without words.
fn fts_query(words: &[String]) -> Option<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
    (!quoted.is_empty()).then(|| quoted.join(" "))
}

fn load_stories(c: &Connection, ids: &[StoryId]) -> Result<Vec<StoryView>, StoreError> {
    let mut story_stmt = c.prepare_cached(
        "SELECT st.id, st.title, st.link, coalesce(en.html, ''), st.text, st.authors,
                st.published, st.updated, st.first_seen,
                coalesce(en.base_url, so.url, ''), en.media
           FROM stories st LEFT JOIN entries en ON en.id = st.representative
                LEFT JOIN sources so ON so.id = en.source_id
          WHERE st.id = ?1",
    )?;
    let mut appearance_stmt = c.prepare_cached(
        "SELECT s.name, e.link, e.title, e.first_seen, e.evidence, s.url
           FROM entries e JOIN sources s ON s.id = e.source_id
          WHERE e.story_id = ?1 ORDER BY e.first_seen, e.id",
    )?;
    let mut topic_stmt = c.prepare_cached(
        "SELECT topic, score, matched, why FROM story_topics WHERE story_id = ?1 ORDER BY topic",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for &id in ids {
        let Some(mut view) = story_stmt
            .query_row([id], |r| {
                let authors: String = r.get(5)?;
                Ok(StoryView {
                    id: r.get(0)?,
                    title: r.get(1)?,
                    link: r.get(2)?,
                    html: r.get(3)?,
                    base_url: r.get(9)?,
                    text: r.get(4)?,
                    authors: serde_json::from_str(&authors).unwrap_or_default(),
                    // A value this release cannot read (a later one's) is served as none.
                    media: r
                        .get::<_, Option<String>>(10)?
                        .and_then(|m| serde_json::from_str(&m).ok())
                        .unwrap_or_default(),
                    published: time(r.get(6)?),
                    updated: time(r.get(7)?),
                    first_seen: time(r.get(8)?),
                    appearances: Vec::new(),
                    topics: Vec::new(),
                })
            })
            .optional()?
        else {
            continue;
        };
        view.appearances = appearance_stmt
            .query_map([id], |r| {
                Ok(Appearance {
                    source: r.get(0)?,
                    feed_url: r.get(5)?,
                    url: r.get(1)?,
                    title: r.get(2)?,
                    first_seen: time(r.get(3)?),
                    evidence: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        view.topics = topic_stmt
            .query_map([id], |r| {
                let why: String = r.get(3)?;
                Ok(TopicScore {
                    topic: r.get(0)?,
                    score: r.get::<_, f64>(1)? as f32,
                    matched: r.get(2)?,
                    why: serde_json::from_str(&why).unwrap_or_default(),
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        out.push(view);
    }
    Ok(out)
}

/// Up to this many identities, [`pruned_among`] looks each up by its key; beyond, it reads
/// the source's tombstones instead.
const PRUNED_LOOKUPS_BY_KEY: usize = 256;

/// [`Store::pruned_among`] on connection `c`, in one statement besides the source's id: a
/// few identities (up to [`PRUNED_LOOKUPS_BY_KEY`]) are looked up by key, in one query over
/// the list, whatever the source holds; more (a 60,000-item feed under a cap of a few hundred
/// passes over nearly all) are matched in memory against the source's tombstones, read in
/// one range scan of the primary key's (source, identity) prefix. That scan costs what the
/// source holds, more than key lookups would when its tombstones far outnumber the
/// identities, but never one query per identity.
pub(super) fn pruned_among(
    c: &Connection,
    source: &str,
    identities: Vec<String>,
) -> rusqlite::Result<Vec<String>> {
    let Some(id) = c
        .prepare_cached("SELECT id FROM sources WHERE name = ?1")?
        .query_row([source], |r| r.get::<_, i64>(0))
        .optional()?
    else {
        return Ok(Vec::new());
    };
    if identities.len() <= PRUNED_LOOKUPS_BY_KEY {
        let list =
            serde_json::to_string(&identities).expect("a list of strings serializes to JSON");
        let mut stmt = c.prepare_cached(
            "SELECT identity FROM tombstones
              WHERE source_id = ?1 AND identity IN (SELECT value FROM json_each(?2))",
        )?;
        let rows = stmt.query_map(params![id, list], |r| r.get::<_, String>(0))?;
        return rows.collect();
    }
    let mut stmt = c.prepare_cached("SELECT identity FROM tombstones WHERE source_id = ?1")?;
    let mut pruned = stmt
        .query_map([id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<std::collections::HashSet<String>>>()?;
    // Taken out when found: an identity listed twice is reported once.
    Ok(identities
        .into_iter()
        .filter(|identity| pruned.remove(identity))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_split_at_spaces_and_control_characters_and_keep_only_words() {
        let cases: [(&str, &[&str]); 9] = [
            ("steel tariffs", &["steel", "tariffs"]),
            ("  steel\ttariffs\n", &["steel", "tariffs"]),
            ("steel\0x", &["steel", "x"]),
            ("\0steel\u{1}\u{7f}\u{9f}", &["steel"]),
            (
                "\"anti-dumping\" OR NEAR(",
                &["anti-dumping", "OR", "NEAR("],
            ),
            ("!!! & -- \u{200b}", &[]),
            ("U.S. Zölle 関税", &["U.S.", "Zölle", "関税"]),
            ("\"\"", &[]),
            ("", &[]),
        ];
        for (text, want) in cases {
            assert_eq!(search_words(text), want, "{text:?}");
        }
        assert_eq!(
            fts_query(&search_words("steel \"x")).as_deref(),
            Some("\"steel\" \"x\"")
        );
        assert_eq!(fts_query(&search_words("!!!")), None);
    }

    #[test]
    fn a_query_fts5_cannot_read_is_a_search_error_and_a_schema_fault_stays_a_database_error() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE VIRTUAL TABLE stories_fts USING fts5(title, text);")
            .unwrap();
        let run = |fts: &str| {
            c.prepare("SELECT rowid FROM stories_fts WHERE stories_fts MATCH ?1")
                .unwrap()
                .query_map([fts], |r| r.get::<_, i64>(0))
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        };
        // What FTS5 itself reports for a MATCH it cannot read.
        for (bad, said) in [
            ("\"unterminated", "unterminated string"),
            ("steel AND", "fts5: syntax error near \"\""),
            ("steel OR (", "fts5: syntax error near \"\""),
            ("\"steel\0\"", "unterminated string"),
        ] {
            let err = search_error(run(bad).unwrap_err());
            assert!(
                matches!(&err, StoreError::Search(m) if m == said),
                "{bad:?}: {err:?}"
            );
        }
        // Plain SQLITE_ERRORs that are faults of the schema, not of the search.
        for sql in [
            "SELECT rowid FROM no_such_table",
            "SELECT no_such_column FROM stories_fts",
        ] {
            let failure = c.prepare(sql).map(|_| ()).unwrap_err();
            let err = search_error(failure);
            assert!(matches!(err, StoreError::Sqlite(_)), "{sql}: {err:?}");
        }
        let bare = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR),
            None,
        );
        assert!(matches!(search_error(bare), StoreError::Sqlite(_)));
        // Failures of the database itself stay database errors.
        for code in [
            rusqlite::ffi::SQLITE_IOERR_READ,
            rusqlite::ffi::SQLITE_BUSY,
            rusqlite::ffi::SQLITE_CORRUPT_VTAB,
            rusqlite::ffi::SQLITE_NOMEM,
        ] {
            let failure = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
            let err = search_error(failure);
            assert!(matches!(err, StoreError::Sqlite(_)), "{code}: {err:?}");
        }
        assert_eq!(run("\"steel\"").unwrap(), Vec::<i64>::new());
    }

    /// A connection to a new database with the store's schema and sources "Wide" and "Deep":
    /// Wide has tombstones for `guid:7`, `guid:30000` and `guid:59999`; Deep for `guid:0`
    /// to `guid:9999`.
    fn tombstoned_sources(dir: &std::path::Path) -> Connection {
        let path = dir.join("t.db");
        drop(crate::store::Store::open(&path, crate::store::Access::ReadWrite).unwrap());
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "INSERT INTO sources (id, name, url, schedule)
             VALUES (1, 'Wide', 'http://w.example/', '* * * * *'),
                    (2, 'Deep', 'http://d.example/', '* * * * *');
             INSERT INTO tombstones (source_id, identity, pruned_at)
             VALUES (1, 'guid:7', 0), (1, 'guid:30000', 0), (1, 'guid:59999', 0);
             WITH RECURSIVE n (i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 9999)
             INSERT INTO tombstones (source_id, identity, pruned_at)
             SELECT 2, 'guid:' || i, 0 FROM n;",
        )
        .unwrap();
        c
    }

    /// The SQLite virtual-machine instructions `f` runs on `c` (a progress handler called
    /// after each): the work a query does, whatever the clock.
    fn instructions<T>(c: &Connection, f: impl FnOnce() -> T) -> (T, u64) {
        let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = std::sync::Arc::clone(&count);
        c.progress_handler(
            1,
            Some(move || {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                false
            }),
        )
        .unwrap();
        let result = f();
        c.progress_handler(0, None::<fn() -> bool>).unwrap();
        (result, count.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The items a poll passes over are asked about in bulk: a 60,000-item feed under a cap of
    /// a few hundred must not cost a query per item, nor a few items a read of every
    /// tombstone of a source that has thousands. Just past [`PRUNED_LOOKUPS_BY_KEY`]
    /// identities, a source with thousands of tombstones costs one scan of them all: more
    /// than key lookups would, as documented, but one statement.
    #[test]
    fn pruned_among_looks_a_few_identities_up_by_key_and_matches_more_against_one_scan() {
        let dir = tempfile::tempdir().unwrap();
        let c = tombstoned_sources(dir.path());
        let guids = |range: std::ops::Range<usize>| -> Vec<String> {
            range.map(|i| format!("guid:{i}")).collect()
        };

        // Wide: 60,000 identities passed over (one twice), three with tombstones.
        let mut wide = guids(0..60_000);
        wide.push("guid:7".into());
        let (found, steps) = instructions(&c, || pruned_among(&c, "Wide", wide).unwrap());
        assert!(steps < 1_000, "{steps} instructions for 3 tombstones");
        assert_eq!(found, ["guid:7", "guid:30000", "guid:59999"]);

        // Deep: a few identities against 10,000 tombstones.
        let few = vec![
            "guid:5".to_string(),
            "guid:123456".into(),
            "guid:9999".into(),
        ];
        let (mut found, steps) = instructions(&c, || pruned_among(&c, "Deep", few).unwrap());
        assert!(steps < 1_000, "{steps} instructions for 3 identities");
        found.sort();
        assert_eq!(found, ["guid:5", "guid:9999"]);

        // At the threshold against 10,000 tombstones, lookups by key; one more identity, one
        // scan of all 10,000 (a few instructions each).
        let (found, by_key) = instructions(&c, || {
            pruned_among(&c, "Deep", guids(9_950..9_950 + PRUNED_LOOKUPS_BY_KEY)).unwrap()
        });
        assert_eq!(found, guids(9_950..10_000));
        let (found, scan) = instructions(&c, || {
            pruned_among(&c, "Deep", guids(9_950..9_951 + PRUNED_LOOKUPS_BY_KEY)).unwrap()
        });
        assert_eq!(found, guids(9_950..10_000));
        assert!(
            by_key < 10_000,
            "{by_key} instructions for 256 lookups by key"
        );
        assert!(
            (10_000..80_000).contains(&scan),
            "{scan} instructions for one scan of 10,000 tombstones"
        );

        // Past the threshold with a hundred found, and a source that does not exist.
        let found = pruned_among(&c, "Deep", guids(9_900..10_000 + PRUNED_LOOKUPS_BY_KEY));
        assert_eq!(found.unwrap(), guids(9_900..10_000));
        assert!(pruned_among(&c, "Gone", guids(0..3)).unwrap().is_empty());
    }
}
