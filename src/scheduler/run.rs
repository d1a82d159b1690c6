//! The scheduling loop: asks the store which sources are due and queues them as jobs.
//! It never fetches; whoever receives the jobs runs them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::timing::{Timing, settled_due_times};
use crate::domain::Source;
use crate::store::{Store, StoreError};

/// Longest sleep between two looks at the schedule (a safety net; reloads wake it at once).
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// One source to poll now. While the job exists the source counts as in flight, so it is never
/// queued twice.
#[derive(Debug)]
pub struct Job {
    /// The source, as configured when the job was queued.
    pub source: Source,
    in_flight: InFlight,
}

impl Job {
    /// Keeps the source from being queued again for `wait`, whatever the database says.
    /// For polls whose stored due time does not reflect them: their result could not be
    /// stored (disk full, database locked), they crashed or were cancelled, or the source's
    /// URL in the database was no longer the one polled (edited behind the daemon). Polling
    /// again at once would hammer the publisher, or poll the old URL at every look.
    ///
    /// A span of the monotonic clock, never a wall-clock time (the caller's or one kept
    /// here): the wall clock may go back during the poll or the wait, and a time would then
    /// hold the source back for the step as well; nothing corrects deferrals, which live in
    /// memory only.
    ///
    /// The job's URL is held back, whichever source has it: a reload that gives the source
    /// another URL makes it a new feed, due at once, and one that renames the source while
    /// its poll runs holds the renamed source back as well.
    pub fn defer_for(&self, wait: Duration) {
        self.in_flight
            .deferred
            .lock()
            .expect("deferral lock poisoned")
            .insert(
                self.in_flight.url.clone(),
                Deferral {
                    since: Instant::now(),
                    wait,
                },
            );
    }
}

/// A URL held back ([`Job::defer_for`]).
#[derive(Debug)]
struct Deferral {
    /// When it was deferred.
    since: Instant,
    /// For how long.
    wait: Duration,
}

/// URLs held back: a source is held back while it has one of them.
type Deferred = Arc<Mutex<HashMap<String, Deferral>>>;

/// When the last poll of each URL ended (its job dropped, its result stored), for the polls
/// that ended since the last look's read of the due times began.
type Ended = Arc<Mutex<HashMap<String, Instant>>>;

/// The URLs being polled. By URL, not by source name: the stored source follows its URL, so
/// a source renamed while its poll runs (the poll is written to it under the new name) is not
/// polled again under that name before the poll has stored its next due time.
type Polling = Mutex<HashSet<String>>;

/// Whether a look whose read of the due times began at `read_began` must leave `url` out: its
/// poll ended after that (it was in flight when the read began, and may have committed its
/// next due time only after the read saw the old, past one: queued again, it would be polled
/// twice in one slot). The poll's end wakes the loop, and the next look reads the new time.
fn ended_since(ended: &HashMap<String, Instant>, url: &str, read_began: Instant) -> bool {
    ended.get(url).is_some_and(|&at| at >= read_began)
}

#[derive(Debug)]
struct InFlight {
    /// The URL polled, its key in `set`, `ended` and `deferred`.
    url: String,
    set: Arc<Polling>,
    deferred: Deferred,
    ended: Ended,
    /// Wakes the loop when the poll is over (its result stored), so that the loop need not
    /// look every [`MIN_SLEEP`] while polls run.
    finished: Arc<Notify>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        // Noted before the source leaves the set: a look that finds it out of the set then
        // finds when it ended.
        self.ended
            .lock()
            .expect("ended-polls lock poisoned")
            .insert(self.url.clone(), Instant::now());
        self.set
            .lock()
            .expect("in-flight lock poisoned")
            .remove(&self.url);
        self.finished.notify_one();
    }
}

/// Queues due sources onto `jobs` until `cancel` fires. `sources` carries the current config's
/// sources; a change wakes the loop so new sources are polled at once. `timing` carries the
/// timing rules in force, by which stored due times are checked against the clock (see
/// [`ClockCheck`]).
pub async fn run(
    store: Store,
    mut sources: watch::Receiver<Arc<Vec<Source>>>,
    timing: watch::Receiver<Timing>,
    jobs: mpsc::Sender<Job>,
    cancel: CancellationToken,
) {
    let in_flight: Arc<Polling> = Arc::new(Mutex::new(HashSet::new()));
    let deferred: Deferred = Arc::new(Mutex::new(HashMap::new()));
    let ended: Ended = Arc::new(Mutex::new(HashMap::new()));
    let finished = Arc::new(Notify::new());
    let mut clock = ClockCheck::new();
    loop {
        deferred
            .lock()
            .expect("deferral lock poisoned")
            .retain(|_, d| d.since.elapsed() < d.wait);
        let configured = Arc::clone(&sources.borrow_and_update());
        let rules = *timing.borrow();
        clock
            .look(
                &store,
                &configured,
                &rules,
                &in_flight,
                Utc::now(),
                Instant::now(),
            )
            .await;
        // Borrowed from the config's list, not copied: a look runs at every poll's end, and
        // a copy of every source (with its name, URL and tags) stayed allocated until the
        // next look.
        let current: HashMap<&str, &Source> = configured
            .iter()
            .filter(|s| s.enabled)
            .map(|s| (s.name.as_str(), s))
            .collect();
        let read_began = Instant::now();
        match store.due_sources(Utc::now()).await {
            Ok(due) => {
                for name in due {
                    let Some(&source) = current.get(name.as_str()) else {
                        continue;
                    };
                    if !claim(source, &deferred, &in_flight, &ended, read_began) {
                        continue;
                    }
                    let job = Job {
                        source: source.clone(),
                        in_flight: InFlight {
                            url: source.url.clone(),
                            set: Arc::clone(&in_flight),
                            deferred: Arc::clone(&deferred),
                            ended: Arc::clone(&ended),
                            finished: Arc::clone(&finished),
                        },
                    };
                    debug!(source = %job.source.name, "queued");
                    tokio::select! {
                        sent = jobs.send(job) => if sent.is_err() { return },
                        () = cancel.cancelled() => return,
                    }
                }
            }
            Err(e) => error!(error = %e, "cannot read the schedule; retrying"),
        }
        forget_ended_before(&ended, read_began);
        // Sleeps on the monotonic clock, at most MAX_SLEEP: a wall-clock step is seen at the
        // next look whichever way it went.
        let sleep = match store.due_at().await {
            Ok(due_at) => until_next_look(
                &due_at,
                &current,
                &deferred.lock().expect("deferral lock poisoned"),
                &in_flight.lock().expect("in-flight lock poisoned"),
                Utc::now(),
                Instant::now(),
            ),
            Err(_) => MAX_SLEEP,
        };
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = finished.notified() => {}
            changed = sources.changed() => if changed.is_err() { return },
            () = cancel.cancelled() => return,
        }
    }
}

/// Whether a look that read `source` as due at `read_began` queues it now, and if so marks its
/// URL in flight. Not when its URL is held back (`deferred`) or already in flight (under this
/// name or, after a rename, another), or its poll ended after the read began (the read may
/// predate its commit, so the due time it gave is the old one; the end woke the next look,
/// which reads the new time). A source left out for that last reason is not left marked in
/// flight, or it would never be polled again.
fn claim(
    source: &Source,
    deferred: &Deferred,
    in_flight: &Polling,
    ended: &Ended,
    read_began: Instant,
) -> bool {
    let url = &source.url;
    if deferred
        .lock()
        .expect("deferral lock poisoned")
        .contains_key(url)
    {
        return false;
    }
    if !in_flight
        .lock()
        .expect("in-flight lock poisoned")
        .insert(url.clone())
    {
        return false;
    }
    if ended_since(
        &ended.lock().expect("ended-polls lock poisoned"),
        url,
        read_began,
    ) {
        in_flight
            .lock()
            .expect("in-flight lock poisoned")
            .remove(url);
        return false;
    }
    true
}

/// Drops the polls that ended before `read_began`, the last look's read: only those that end
/// after the next look's read began can matter to it, so the map stays as small as the
/// polls of one look, however long the daemon runs.
fn forget_ended_before(ended: &Ended, read_began: Instant) {
    ended
        .lock()
        .expect("ended-polls lock poisoned")
        .retain(|_, at| *at >= read_began);
}

/// Shortest sleep between two looks: a due source the look could not queue (its poll is
/// still running, its new due time not stored yet) is not looked at again in a busy loop.
const MIN_SLEEP: Duration = Duration::from_millis(200);

/// How long the loop sleeps after a look: until the earliest of the times `due_at` (from
/// [`Store::due_at`]) gives the sources of `current` that are not held back, and the ends of
/// the holds in `deferred` (read at `wall` and `mono`); within [`MIN_SLEEP`] and
/// [`MAX_SLEEP`]. A held-back source's stored time is left out: it is usually past (the
/// poll's result was not stored, or its URL was changed behind the daemon), and counting it
/// would wake the loop every [`MIN_SLEEP`] for as long as the hold lasts, to do nothing.
/// A hold is on a URL, as in the look: it counts for whichever source has that URL. A source
/// whose URL is being polled (`in_flight`) is left out too: its stored time is the past one it
/// was queued by until its poll stores the next, and the end of its poll wakes the loop.
fn until_next_look(
    due_at: &[(String, DateTime<Utc>)],
    current: &HashMap<&str, &Source>,
    deferred: &HashMap<String, Deferral>,
    in_flight: &HashSet<String>,
    wall: DateTime<Utc>,
    mono: Instant,
) -> Duration {
    let held = |name: &str| -> Option<&Deferral> { deferred.get(&current.get(name)?.url) };
    let holds_end = current.keys().filter_map(|name| held(name)).map(|d| {
        d.wait
            .saturating_sub(mono.saturating_duration_since(d.since))
    });
    let due = due_at
        .iter()
        .filter(|(name, _)| {
            current
                .get(name.as_str())
                .is_some_and(|source| !in_flight.contains(&source.url))
                && held(name).is_none()
        })
        .map(|(_, t)| (*t - wall).to_std().unwrap_or(Duration::ZERO));
    holds_end
        .chain(due)
        .min()
        .unwrap_or(MAX_SLEEP)
        .clamp(MIN_SLEEP, MAX_SLEEP)
}

/// A wall-clock step back smaller than this is not looked for: it delays a source by as
/// little, and NTP slews smaller offsets rather than stepping.
const STEP_TOLERANCE: chrono::Duration = chrono::Duration::seconds(1);

/// How far the wall clock went back between two looks, each a reading of the wall clock and
/// of the monotonic clock (which never steps), if by more than [`STEP_TOLERANCE`].
fn stepped_back(
    before: (DateTime<Utc>, Instant),
    after: (DateTime<Utc>, Instant),
) -> Option<chrono::Duration> {
    let elapsed = chrono::Duration::from_std(after.1.saturating_duration_since(before.1))
        .unwrap_or(chrono::Duration::MAX);
    let back = elapsed.checked_sub(&(after.0 - before.0))?;
    (back > STEP_TOLERANCE).then_some(back)
}

/// Keeps stored due times within reach of the wall clock while the daemon runs.
///
/// Due times are stored as wall-clock times, worked out by the clock of the moment. When the
/// clock steps back, those set before the step lie further ahead than the schedule, backoff
/// and Retry-After could have put them ([`settled_due_times`]), and their sources would wait
/// until the clock comes round to them again: days, for a box that booted with a time in the
/// future. The loop reads due times from the store at every look and sleeps on the monotonic
/// clock, so nothing else it keeps goes stale; what it must do is correct the stored times.
/// They are checked at the first look (the daemon may start after a step, or the clock may
/// step while it starts), whenever the wall clock went back since the previous look, and
/// again as each poll that was running at the step ends (it may store a due time worked out
/// before the step). A check that fails is tried again at the next look.
struct ClockCheck {
    /// The previous look's (wall clock, monotonic clock).
    last: Option<(DateTime<Utc>, Instant)>,
    /// Due times are to be checked at this look.
    pending: bool,
    /// URLs in flight when the clock last stepped back, whose polls have not ended yet.
    across_step: HashSet<String>,
}

impl ClockCheck {
    fn new() -> Self {
        ClockCheck {
            last: None,
            pending: true,
            across_step: HashSet::new(),
        }
    }

    /// One look at the clocks (`wall` and `mono`, read now); corrects stored due times that
    /// are out of reach when there is cause to check them.
    async fn look(
        &mut self,
        store: &Store,
        sources: &[Source],
        timing: &Timing,
        in_flight: &Polling,
        wall: DateTime<Utc>,
        mono: Instant,
    ) {
        let in_flight = in_flight.lock().expect("in-flight lock poisoned").clone();
        if let Some(before) = self.last.replace((wall, mono))
            && let Some(back) = stepped_back(before, (wall, mono))
        {
            warn!(
                seconds = back.num_seconds(),
                "the wall clock went back; checking the due times"
            );
            self.pending = true;
            self.across_step = in_flight.clone();
        }
        let running = self.across_step.len();
        self.across_step.retain(|url| in_flight.contains(url));
        if self.across_step.len() < running {
            self.pending = true;
        }
        if self.pending {
            match settle_due_times(store, sources, timing, wall).await {
                Ok(_) => self.pending = false,
                Err(e) => error!(error = %e, "cannot check the due times; retrying"),
            }
        }
    }
}

/// Corrects the stored due times of `sources` that lie further ahead of `now` than their
/// schedule, backoff and Retry-After allow ([`settled_due_times`]: the clock went back since
/// they were set, or the settings were shortened). Returns how many sources were corrected.
/// At start-up and whenever the wall clock goes back.
pub async fn settle_due_times(
    store: &Store,
    sources: &[Source],
    timing: &Timing,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let configured: HashMap<&str, &Source> = sources.iter().map(|s| (s.name.as_str(), s)).collect();
    let corrections: Vec<_> = store
        .due_times()
        .await?
        .into_iter()
        .filter_map(|(name, stored)| {
            let source = configured.get(name.as_str())?;
            let settled = settled_due_times(&source.schedule, &name, &stored, now, timing)?;
            Some((name, stored, settled))
        })
        .collect();
    if corrections.is_empty() {
        return Ok(0);
    }
    let changed: HashSet<String> = store
        .correct_due_times(corrections.clone())
        .await?
        .into_iter()
        .collect();
    if changed.is_empty() {
        return Ok(0);
    }
    for (name, stored, settled) in corrections.iter().filter(|c| changed.contains(&c.0)) {
        info!(
            source = %name,
            next_due_was = ?stored.next_due,
            next_due = ?settled.next_due,
            retry_not_before_was = ?stored.retry_not_before,
            retry_not_before = ?settled.retry_not_before,
            "due time corrected"
        );
    }
    warn!(
        sources = changed.len(),
        "due times lay further ahead than schedule, backoff and Retry-After allow from now \
         (the clock went back, or the settings were shortened); worked out again from now"
    );
    Ok(changed.len())
}

/// Moves every stored due time to the same schedule slot under `max_jitter` when the due
/// times were worked out under another one (`[defaults] max_jitter_secs` changed since the
/// last start or reload: see [`super::rejittered_due`]). Returns how many moved. Run before
/// the sources are synced, so that each is moved by the schedule it was worked out by.
pub async fn rejitter_due_times(store: &Store, max_jitter: Duration) -> Result<usize, StoreError> {
    let moved = store
        .rejitter_due_times(max_jitter, move |schedule, name, due, old_max| {
            let schedule = crate::domain::Schedule::parse(schedule).ok()?;
            super::rejittered_due(&schedule, name, due, old_max, max_jitter)
        })
        .await?;
    if let Some((old_max, moved)) = moved {
        info!(
            max_jitter_secs_was = old_max.as_secs_f64(),
            max_jitter_secs = max_jitter.as_secs_f64(),
            sources = moved,
            "max_jitter_secs changed: next polls moved to their new offsets in the same slots"
        );
        return Ok(moved);
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    /// A poll that ends after a look's read of the due times began is left out of that look:
    /// the read may have seen its old, past due time (the soak found slots polled twice, the
    /// second request half a second after the first). Its end is noted before it leaves the
    /// in-flight set, so a look that no longer finds it there finds when it ended.
    #[test]
    fn a_poll_that_ends_after_the_look_read_the_due_times_is_not_queued_by_that_look() {
        let set = Arc::new(Mutex::new(HashSet::from(["a".to_string()])));
        let ended: Ended = Arc::new(Mutex::new(HashMap::new()));
        let in_flight = |url: &str| InFlight {
            url: url.to_string(),
            set: Arc::clone(&set),
            deferred: Arc::new(Mutex::new(HashMap::new())),
            ended: Arc::clone(&ended),
            finished: Arc::new(Notify::new()),
        };
        let before = in_flight("before");
        drop(before);
        let read_began = Instant::now();
        let after = in_flight("a");
        drop(after);
        assert!(!set.lock().unwrap().contains("a"), "no longer in flight");
        let ended = ended.lock().unwrap();
        assert!(
            ended_since(&ended, "a", read_began),
            "ended after the read began: left out"
        );
        assert!(
            !ended_since(&ended, "before", read_began),
            "ended before the read began: the read saw its new time"
        );
        assert!(!ended_since(&ended, "never", read_began));
    }

    /// What a look's claim on a due source does to the in-flight set, branch by branch.
    #[test]
    fn a_look_claims_a_due_source_only_when_nothing_holds_it_and_never_leaves_it_stuck() {
        let in_flight = Mutex::new(HashSet::new());
        let deferred: Deferred = Arc::new(Mutex::new(HashMap::new()));
        let ended: Ended = Arc::new(Mutex::new(HashMap::new()));
        let (free, busy, held, moved, late) = (
            source("free", "@hourly"),
            source("busy", "@hourly"),
            source("held", "@hourly"),
            source("moved", "@hourly"),
            source("late", "@hourly"),
        );
        in_flight.lock().unwrap().insert(busy.url.clone());
        let hold = || Deferral {
            since: Instant::now(),
            wait: secs(60),
        };
        deferred.lock().unwrap().insert(held.url.clone(), hold());
        deferred
            .lock()
            .unwrap()
            .insert("http://old.example/feed".into(), hold());
        let read_began = Instant::now();
        let ms = Duration::from_millis(1);
        ended
            .lock()
            .unwrap()
            .insert(late.url.clone(), read_began + ms);

        assert!(claim(&free, &deferred, &in_flight, &ended, read_began));
        assert!(
            !claim(&free, &deferred, &in_flight, &ended, read_began),
            "claimed once"
        );
        assert!(!claim(&busy, &deferred, &in_flight, &ended, read_began));
        // Renamed while its poll runs: the URL is in flight, so not polled twice.
        let renamed = Source {
            name: "renamed".into(),
            ..busy.clone()
        };
        assert!(!claim(&renamed, &deferred, &in_flight, &ended, read_began));
        assert!(!claim(&held, &deferred, &in_flight, &ended, read_began));
        // A hold is on the URL it was put on, whatever the source is called now: renamed
        // while its poll ran, it is held back too; a source moved since is polled.
        let held_renamed = Source {
            name: "held, renamed".into(),
            ..held.clone()
        };
        assert!(!claim(
            &held_renamed,
            &deferred,
            &in_flight,
            &ended,
            read_began
        ));
        assert!(claim(&moved, &deferred, &in_flight, &ended, read_began));
        // Its poll ended after the read began: left out, and not left in flight, so the next
        // look (reading the new due time) can queue it.
        assert!(!claim(&late, &deferred, &in_flight, &ended, read_began));
        let set = in_flight.lock().unwrap().clone();
        assert_eq!(
            set,
            HashSet::from([&free, &busy, &moved].map(|s| s.url.clone()))
        );
        // Given another URL while the old one is still polled (its poll being cut off): the
        // new URL is a new feed, claimed at once.
        let busy_moved = Source {
            url: "http://busy-moved.example/feed".into(),
            ..busy.clone()
        };
        assert!(claim(
            &busy_moved,
            &deferred,
            &in_flight,
            &ended,
            read_began
        ));
        assert!(claim(
            &late,
            &deferred,
            &in_flight,
            &ended,
            read_began + 2 * ms
        ));
    }

    #[test]
    fn the_ended_polls_kept_are_those_after_the_last_read_began() {
        let ended: Ended = Arc::new(Mutex::new(HashMap::new()));
        let read_began = Instant::now();
        let ms = Duration::from_millis(1);
        ended.lock().unwrap().insert("old".into(), read_began - ms);
        ended.lock().unwrap().insert("new".into(), read_began + ms);
        forget_ended_before(&ended, read_began);
        let kept: Vec<String> = ended.lock().unwrap().keys().cloned().collect();
        assert_eq!(kept, ["new"]);
    }
    use crate::domain::Schedule;
    use crate::scheduler::{jitter_offset, next_due};
    use crate::store::{Access, DueTimes, PollOutcome, PollRecord};

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn a_step_back_of_the_wall_clock_is_told_from_time_passing() {
        let wall = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let mono = Instant::now();
        let s = chrono::Duration::seconds;
        let cases: &[(&str, chrono::Duration, Duration, Option<chrono::Duration>)] = &[
            ("both clocks ran five seconds", s(5), secs(5), None),
            (
                "the wall clock stood still for half a second",
                s(0),
                Duration::from_millis(500),
                None,
            ),
            ("the wall clock jumped ahead", s(3600), secs(5), None),
            (
                "the wall clock went back three days",
                -chrono::Duration::days(3) + s(5),
                secs(5),
                Some(chrono::Duration::days(3)),
            ),
            (
                "the wall clock went back a minute while a look waited",
                s(-60),
                secs(30),
                Some(s(90)),
            ),
            (
                "the wall clock stood still for five seconds",
                s(0),
                secs(5),
                Some(s(5)),
            ),
        ];
        for (what, wall_moved, mono_moved, back) in cases {
            assert_eq!(
                stepped_back((wall, mono), (wall + *wall_moved, mono + *mono_moved)),
                *back,
                "{what}"
            );
        }
    }

    fn source(name: &str, schedule: &str) -> Source {
        Source {
            name: name.into(),
            url: format!("http://{name}.example/feed"),
            schedule: Schedule::parse(schedule).unwrap(),
            enabled: true,
            tags: Vec::new(),
            priority: 0,
            cluster: true,
            allow_private_redirects: false,
        }
    }

    /// A poll of `source` begun at `at` that stored `next_due`.
    fn polled(source: &Source, at: DateTime<Utc>, next_due: DateTime<Utc>) -> PollRecord {
        PollRecord {
            source: source.name.clone(),
            url: source.url.clone(),
            source_row: None,
            started_at: at,
            duration: Duration::ZERO,
            outcome: PollOutcome::NotModified {
                etag: None,
                last_modified: None,
            },
            next_due,
            due_jitter: None,
            moved_to: None,
            base_url: None,
            entries: Vec::new(),
            listed: Default::default(),
            cluster_window: chrono::Duration::days(7),
        }
    }

    async fn next_due_of(store: &Store, name: &str) -> Option<DateTime<Utc>> {
        store
            .due_times()
            .await
            .unwrap()
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, t)| t.next_due)
    }

    /// `max_jitter_secs` raised from 10 s to 600 s between two polls (a reload or a restart):
    /// the source is polled once per slot, at its new offset. Without the move, the poll at
    /// the old offset found its own slot again under the new jitter and polled it twice.
    /// Lowered, the same. A database that never recorded a jitter records it and moves
    /// nothing; an unchanged one moves nothing.
    #[tokio::test]
    async fn a_changed_max_jitter_moves_due_times_within_their_slots_so_no_slot_is_polled_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), Access::ReadWrite).unwrap();
        let hourly = source("wto-news", "0 * * * *");
        let every_minute = source("minutely", "* * * * *");
        let sources = vec![hourly.clone(), every_minute.clone()];
        store.sync_sources(&sources, |_, t, _| t).await.unwrap();
        let (small, large) = (secs(10), secs(600));
        let offset = |max| chrono::Duration::from_std(jitter_offset("wto-news", max)).unwrap();
        assert!(offset(large) > offset(small) + chrono::Duration::seconds(1));
        let slot = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let hour = chrono::Duration::hours(1);

        // First start: nothing recorded, nothing moved.
        assert_eq!(rejitter_due_times(&store, small).await.unwrap(), 0);
        // Polled in the 12:00 slot under the small jitter: due in the 13:00 slot.
        let polled_at = slot + offset(small);
        let due = next_due(&hourly.schedule, "wto-news", polled_at, small);
        store
            .record_poll(polled(&hourly, polled_at, due))
            .await
            .unwrap();
        let minutely_due = next_due(&every_minute.schedule, "minutely", polled_at, small);
        store
            .record_poll(polled(&every_minute, polled_at, minutely_due))
            .await
            .unwrap();
        assert_eq!(rejitter_due_times(&store, small).await.unwrap(), 0);

        // The jitter is raised before 13:00. Unmoved, the poll at 13:00 plus the small offset
        // would be due again at 13:00 plus the large one: the slot twice.
        let unmoved_next = next_due(&hourly.schedule, "wto-news", due, large);
        assert!(
            unmoved_next < slot + hour * 2,
            "the defect this guards against"
        );
        assert_eq!(rejitter_due_times(&store, large).await.unwrap(), 2);
        let moved = next_due_of(&store, "wto-news").await.unwrap();
        assert!(
            moved >= slot + hour + offset(large)
                && moved < slot + hour + offset(large) + chrono::Duration::seconds(1),
            "due {moved}"
        );
        // Polled then, the next time is the 14:00 slot's.
        let after = next_due(&hourly.schedule, "wto-news", moved, large);
        assert!(after >= slot + hour * 2, "next {after}");
        // Run again under the same jitter (the next reload): nothing moves.
        assert_eq!(rejitter_due_times(&store, large).await.unwrap(), 0);
        assert_eq!(next_due_of(&store, "wto-news").await, Some(moved));

        // Lowered back: the same slot at the small offset.
        assert_eq!(rejitter_due_times(&store, small).await.unwrap(), 2);
        assert_eq!(next_due_of(&store, "wto-news").await, Some(due));

        // A poll that began under the small jitter and is written after a reload raised it
        // (and moved the stored times) worked its time out under the small one: the writer
        // stores it at the large offset in the same slot, as the reload's move would have.
        assert_eq!(rejitter_due_times(&store, large).await.unwrap(), 2);
        let polled_late = next_due(&hourly.schedule, "wto-news", due, small);
        let written = store
            .record_poll(polled_under(&hourly, due, polled_late, small))
            .await
            .unwrap();
        let moved = crate::scheduler::rejittered_due(
            &hourly.schedule,
            "wto-news",
            polled_late,
            small,
            large,
        )
        .unwrap();
        assert_eq!(next_due_of(&store, "wto-news").await, Some(moved));
        // The poll's result says the time stored (the poll's log line shows it), not the
        // one it worked out.
        assert_ne!(moved, polled_late);
        assert_eq!(written.next_due, Some(moved));
        // One worked out under the jitter recorded is stored as it is.
        let next = next_due(&hourly.schedule, "wto-news", moved, large);
        let written = store
            .record_poll(polled_under(&hourly, moved, next, large))
            .await
            .unwrap();
        assert_eq!(next_due_of(&store, "wto-news").await, Some(next));
        assert_eq!(written.next_due, Some(next));
        // So is one worked out by a schedule the source no longer has (a reload changed it
        // while the poll ran: the dispatcher's rule for schedules applies, not this one).
        let old_schedule = source("wto-news", "30 * * * *");
        let by_old = next_due(&old_schedule.schedule, "wto-news", next, small);
        store
            .record_poll(polled_under(&old_schedule, next, by_old, small))
            .await
            .unwrap();
        assert_eq!(next_due_of(&store, "wto-news").await, Some(by_old));
    }

    /// The jitter lowered by a reload whose move of the stored times is recorded before the
    /// ingestor takes the new setting (or a reload that then failed on the database, until it
    /// is retried): the source is polled at its new, small offset, but the poll works its next
    /// time out under the old, large one, which finds the same slot again. Moved within that
    /// slot, the time was already past and the source was polled at every look of the
    /// scheduler; it is the next slot at the small offset instead. A failed poll's time stays
    /// after its backoff.
    #[tokio::test]
    async fn a_poll_at_the_new_offset_worked_out_under_the_old_larger_jitter_is_due_next_slot() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), Access::ReadWrite).unwrap();
        let hourly = source("wto-news", "0 * * * *");
        store
            .sync_sources(std::slice::from_ref(&hourly), |_, t, _| t)
            .await
            .unwrap();
        let (small, large) = (secs(10), secs(600));
        let offset = |max| chrono::Duration::from_std(jitter_offset("wto-news", max)).unwrap();
        assert!(offset(large) > offset(small) + chrono::Duration::seconds(2));
        let slot = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let hour = chrono::Duration::hours(1);
        assert_eq!(rejitter_due_times(&store, large).await.unwrap(), 0);
        assert_eq!(rejitter_due_times(&store, small).await.unwrap(), 0);

        // Polled at 12:00 plus the small offset, worked out under the large one: 12:00 plus
        // the large offset, the same slot (the defect's premise).
        let polled_at = slot + offset(small) + chrono::Duration::seconds(1);
        let worked_out = next_due(&hourly.schedule, "wto-news", polled_at, large);
        assert!(worked_out < slot + hour, "the same slot: {worked_out}");
        store
            .record_poll(polled_under(&hourly, polled_at, worked_out, large))
            .await
            .unwrap();
        let stored = next_due_of(&store, "wto-news").await.unwrap();
        assert!(stored > polled_at, "stored {stored}, polled at {polled_at}");
        assert_eq!(
            stored,
            next_due(&hourly.schedule, "wto-news", polled_at, small),
            "the next slot at the small offset"
        );

        // A failure whose backoff ends at 12:30: the time stays after it.
        let backoff_end = slot + chrono::Duration::minutes(30);
        let failed_due = next_due(&hourly.schedule, "wto-news", backoff_end, large);
        let mut failed = polled_under(&hourly, polled_at, failed_due, large);
        failed.outcome = PollOutcome::Failed {
            kind: "timeout".into(),
            message: "timed out".into(),
            http_status: None,
            retry_not_before: None,
            disable: None,
        };
        if let Some(jitter) = failed.due_jitter.as_mut() {
            jitter.after = backoff_end;
        }
        store.record_poll(failed).await.unwrap();
        let stored = next_due_of(&store, "wto-news").await.unwrap();
        assert!(stored > backoff_end, "stored {stored}");
        assert_eq!(
            stored,
            next_due(&hourly.schedule, "wto-news", backoff_end, small)
        );
    }

    /// [`polled`], its time worked out under `max_jitter` by the source's schedule from `at`.
    fn polled_under(
        source: &Source,
        at: DateTime<Utc>,
        next_due: DateTime<Utc>,
        max_jitter: Duration,
    ) -> PollRecord {
        PollRecord {
            due_jitter: Some(crate::store::DueJitter {
                max_jitter,
                schedule: source.schedule.as_str().to_string(),
                after: at,
                moved: crate::scheduler::due_under_jitter,
            }),
            ..polled(source, at, next_due)
        }
    }

    /// The daemon runs with its clock three days fast, polls, then NTP sets the clock right
    /// while one poll is still running. The looks see the step, bring the due times back
    /// from three days ahead, and check again once the running poll has stored what it
    /// worked out before the step. A yearly source's far time is left alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn due_times_set_before_the_clock_went_back_are_corrected_while_running() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), Access::ReadWrite).unwrap();
        let minutely = source("minutely", "* * * * *");
        let yearly = source("yearly", "0 0 1 1 *");
        let running = source("running", "*/5 * * * *");
        let sources = vec![minutely.clone(), yearly.clone(), running.clone()];
        store.sync_sources(&sources, |_, t, _| t).await.unwrap();
        let timing = Timing {
            max_jitter: Duration::ZERO,
            backoff_base: secs(60),
            backoff_cap: secs(21_600),
            max_retry_after: chrono::Duration::days(7),
        };
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let fast = now + chrono::Duration::days(3);
        let yearly_due = next_due(&yearly.schedule, "yearly", fast, Duration::ZERO);
        for (source, due) in [
            (
                &minutely,
                next_due(&minutely.schedule, "minutely", fast, Duration::ZERO),
            ),
            (&yearly, yearly_due),
        ] {
            store.record_poll(polled(source, fast, due)).await.unwrap();
        }
        let in_flight = Mutex::new(HashSet::from(["running".to_string()]));
        let mut clock = ClockCheck::new();
        let mono = Instant::now();

        // The first look, by the fast clock, finds every time within reach of it.
        clock
            .look(&store, &sources, &timing, &in_flight, fast, mono)
            .await;
        assert!(next_due_of(&store, "minutely").await.unwrap() > fast);

        // The clock steps back three days: the minutely source is due within a minute.
        clock
            .look(&store, &sources, &timing, &in_flight, now, mono + secs(5))
            .await;
        let due = next_due_of(&store, "minutely").await.unwrap();
        assert!(due <= now + chrono::Duration::minutes(1), "due {due}");
        assert_eq!(next_due_of(&store, "yearly").await, Some(yearly_due));

        // The poll that ran across the step stores a time worked out by the fast clock,
        // then ends: the next look corrects it, with no further step.
        let stale = next_due(&running.schedule, "running", fast, Duration::ZERO);
        store
            .record_poll(polled(&running, fast, stale))
            .await
            .unwrap();
        clock
            .look(
                &store,
                &sources,
                &timing,
                &in_flight,
                now + secs(5),
                mono + secs(10),
            )
            .await;
        assert_eq!(
            next_due_of(&store, "running").await,
            Some(stale),
            "still running: its time is checked once it has ended"
        );
        in_flight.lock().unwrap().clear();
        clock
            .look(
                &store,
                &sources,
                &timing,
                &in_flight,
                now + secs(10),
                mono + secs(15),
            )
            .await;
        let due = next_due_of(&store, "running").await.unwrap();
        assert!(due <= now + chrono::Duration::minutes(5), "due {due}");
        assert_eq!(next_due_of(&store, "yearly").await, Some(yearly_due));
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_correction_is_not_written_over_a_poll_stored_since_the_times_were_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db"), Access::ReadWrite).unwrap();
        let s = source("s", "*/5 * * * *");
        store
            .sync_sources(std::slice::from_ref(&s), |_, t, _| t)
            .await
            .unwrap();
        let now = Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap();
        let far = now + chrono::Duration::days(3);
        store.record_poll(polled(&s, far, far)).await.unwrap();
        let read = store.due_times().await.unwrap().remove(0).1;
        let corrected = DueTimes {
            next_due: Some(now),
            ..read.clone()
        };
        // A poll lands between the read and the correction.
        let newer = now + chrono::Duration::minutes(5);
        store.record_poll(polled(&s, now, newer)).await.unwrap();
        let changed = store
            .correct_due_times(vec![("s".into(), read, corrected)])
            .await
            .unwrap();
        assert!(changed.is_empty());
        assert_eq!(next_due_of(&store, "s").await, Some(newer));
        store.close().await;
    }

    /// A source held back in memory whose stored due time is past (its poll's result was not
    /// stored, or its URL was changed behind the daemon) does not wake the loop at every
    /// [`MIN_SLEEP`]: the loop sleeps until the hold ends or another source is due, whichever
    /// comes first, and a hold on a URL the source no longer has counts for nothing.
    #[test]
    fn the_next_look_is_at_the_end_of_a_hold_or_the_next_due_source_not_at_a_held_ones_past_time() {
        let wall = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap();
        let mono = Instant::now();
        let sources = ["held", "later", "moved"].map(|name| source(name, "* * * * *"));
        let current: HashMap<&str, &Source> =
            sources.iter().map(|s| (s.name.as_str(), s)).collect();
        let hold = |wait: u64| Deferral {
            since: mono,
            wait: secs(wait),
        };
        let due = |name: &str, at: DateTime<Utc>| (name.to_string(), at);
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let none = HashSet::new();
        let mut deferred = HashMap::new();
        deferred.insert(current["held"].url.clone(), hold(3));

        // Held for 3 s and due at once by the database; the next source due in 4 s.
        let due_at = [due("held", epoch), due("later", wall + secs(4))];
        assert_eq!(
            until_next_look(&due_at, &current, &deferred, &none, wall, mono),
            secs(3),
            "until the hold ends"
        );
        // Another source due sooner than the hold ends.
        let due_at = [due("held", epoch), due("later", wall + secs(2))];
        assert_eq!(
            until_next_look(&due_at, &current, &deferred, &none, wall, mono),
            secs(2)
        );
        // Held for longer than the longest sleep: the longest sleep.
        deferred.insert(current["held"].url.clone(), hold(600));
        let due_at = [due("held", epoch), due("later", wall + secs(3_600))];
        assert_eq!(
            until_next_look(&due_at, &current, &deferred, &none, wall, mono),
            MAX_SLEEP
        );
        // A hold on a URL the source no longer has: its new URL is due at once.
        deferred.insert("http://old.example/feed".to_string(), hold(600));
        let due_at = [due("moved", epoch), due("later", wall + secs(3_600))];
        assert_eq!(
            until_next_look(&due_at, &current, &deferred, &none, wall, mono),
            MIN_SLEEP
        );
        // Nothing pollable: the longest sleep.
        assert_eq!(
            until_next_look(&[], &current, &HashMap::new(), &none, wall, mono),
            MAX_SLEEP
        );
        // A source being polled keeps its past due time until its poll stores the next one;
        // the end of the poll wakes the loop, so the time does not count.
        let polling: HashSet<String> = [current["held"].url.clone()].into();
        let due_at = [due("held", epoch), due("later", wall + secs(4))];
        assert_eq!(
            until_next_look(&due_at, &current, &HashMap::new(), &polling, wall, mono),
            secs(4),
            "until the next source not being polled is due"
        );
    }
}
