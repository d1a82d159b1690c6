//! Pure timing functions: cron next time with per-source jitter, and failure backoff.

use std::time::Duration;

use chrono::{DateTime, Utc};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::domain::Schedule;
use crate::store::DueTimes;

/// Seed for the schedule jitter hash.
const SCHEDULE_SEED: u64 = 0x7472_6164_6566_6565;
/// A different seed for backoff jitter, so a source early in its cron slot is not also always
/// the quickest to retry.
const BACKOFF_SEED: u64 = 0x6261_636b_6f66_6621;

/// How long `next_due` waits when a schedule will never fire again (a past-only line).
const NEVER_AGAIN: chrono::Duration = chrono::Duration::days(365);

/// Deterministic per-source offset in `[0, max)` so sources sharing a schedule do not fire at once.
///
/// The offset is a hash of the name scaled into the range: the same name always gets the same
/// offset (restarts keep the rhythm), different names spread evenly. Whole milliseconds when
/// `max` is at least a millisecond; `max` of zero gives zero.
pub fn jitter_offset(source_name: &str, max: Duration) -> Duration {
    scaled_offset(source_name, max, SCHEDULE_SEED)
}

/// A hash of `name` scaled into `[0, max)`, in milliseconds when `max` allows it.
fn scaled_offset(name: &str, max: Duration, seed: u64) -> Duration {
    let hash = u128::from(xxh3_64_with_seed(name.as_bytes(), seed));
    // Clamped so the product below fits in 128 bits (u64::MAX ms is 584 million years).
    let millis = max.as_millis().min(u128::from(u64::MAX));
    if millis > 0 {
        // (hash * span) >> 64 maps the hash uniformly onto [0, span) without modulo bias.
        let offset = (hash * millis) >> 64;
        return Duration::from_millis(u64::try_from(offset).unwrap_or(u64::MAX));
    }
    let nanos = max.as_nanos();
    Duration::from_nanos(u64::try_from((hash * nanos) >> 64).unwrap_or(0))
}

/// The next poll time after `after`: the next cron time plus the source's jitter.
///
/// The cron time is looked up from `after - jitter`, so the result is always strictly after
/// `after` and a source keeps its fixed offset inside every slot. A source that is overdue by
/// many slots gets one next time, not one per missed slot. A schedule that never fires again
/// yields `after` plus a year, so the source is not polled in a tight loop. Never panics: a
/// time too late for the calendar saturates at the latest time there is.
///
/// The result is rounded up to a whole second, because the store keeps due times in whole
/// seconds and a source is due once the current second reaches its time. Stored rounded
/// down, a jitter of 12.4 s made the source due 0.4 s before its slot, and the poll's next
/// time, worked out from a moment still before the slot, was that same slot again: one slot
/// was polled up to five times (at every 200 ms look of the scheduler) until the clock
/// passed it.
pub fn next_due(
    schedule: &Schedule,
    source_name: &str,
    after: DateTime<Utc>,
    max_jitter: Duration,
) -> DateTime<Utc> {
    let jitter = chrono::Duration::from_std(jitter_offset(source_name, max_jitter))
        .unwrap_or(chrono::Duration::zero());
    let shifted = after.checked_sub_signed(jitter).unwrap_or(after);
    schedule
        .next_after(shifted)
        .and_then(|slot| slot.checked_add_signed(jitter))
        .map(ceil_to_second)
        .unwrap_or_else(|| saturating_add(after, NEVER_AGAIN))
}

/// A due time worked out under another `max_jitter` (`old_max`), moved to the same schedule
/// slot under `new_max`; `None` when it stays as it is or is not a slot plus the source's old
/// jitter (a time that never fires again, one set by hand).
///
/// Without this, raising `max_jitter_secs` polled every source twice in its next slot: due at
/// the slot plus its old jitter, polled then, the next time was looked up from that poll minus
/// the new, larger jitter, which lies before the slot, so the same slot came round again.
pub fn rejittered_due(
    schedule: &Schedule,
    source_name: &str,
    due: DateTime<Utc>,
    old_max: Duration,
    new_max: Duration,
) -> Option<DateTime<Utc>> {
    let old = chrono::Duration::from_std(jitter_offset(source_name, old_max)).ok()?;
    let new = chrono::Duration::from_std(jitter_offset(source_name, new_max)).ok()?;
    if old == new {
        return None;
    }
    // `next_due` gives the slot plus the jitter rounded up to a whole second: less the old
    // jitter, that is the slot itself or under a second past it.
    let base = due.checked_sub_signed(old)?;
    let slot = schedule.next_after(base.checked_sub_signed(chrono::Duration::seconds(1))?)?;
    if slot > base {
        return None;
    }
    let moved = ceil_to_second(slot.checked_add_signed(new)?);
    (moved != due).then_some(moved)
}

/// A poll's due time `due`, worked out by [`next_due`] from `after` under `old_max`, as it
/// is under `new_max` (`schedule` as written, as the store keeps it): the same slot at the new
/// offset ([`rejittered_due`]), unless that is not after `after`, when the next time from
/// `after` under `new_max` is taken instead. `None` when it stays as it is (or the schedule
/// does not parse). The store's writer applies it to a poll worked out under a jitter a
/// reload has since replaced ([`crate::store::DueJitter`]).
///
/// Moving alone is right for a poll made at its old offset (it found its next slot, which
/// moves). A poll made at the new offset, while the ingestor still had the old setting (the
/// reload's move of the stored times came first), found its own slot again when the old
/// offset was the larger: moved, that was a time already past, and the source was polled
/// again at every look of the scheduler.
pub fn due_under_jitter(
    schedule: &str,
    source_name: &str,
    due: DateTime<Utc>,
    after: DateTime<Utc>,
    old_max: Duration,
    new_max: Duration,
) -> Option<DateTime<Utc>> {
    let schedule = Schedule::parse(schedule).ok()?;
    let moved = rejittered_due(&schedule, source_name, due, old_max, new_max)?;
    if moved > after {
        return Some(moved);
    }
    let next = next_due(&schedule, source_name, after, new_max);
    (next != due).then_some(next)
}

/// `t` rounded up to a whole second (itself when it is one, or when the next second is past
/// the calendar's end).
fn ceil_to_second(t: DateTime<Utc>) -> DateTime<Utc> {
    if t.timestamp_subsec_nanos() == 0 {
        return t;
    }
    DateTime::from_timestamp(t.timestamp().saturating_add(1), 0).unwrap_or(t)
}

/// `t + delta`, or the latest representable time when that would overflow.
pub fn saturating_add(t: DateTime<Utc>, delta: chrono::Duration) -> DateTime<Utc> {
    t.checked_add_signed(delta)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t + delay` for a std `Duration`, saturating like [`saturating_add`].
pub fn saturating_add_std(t: DateTime<Utc>, delay: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(delay).map_or(DateTime::<Utc>::MAX_UTC, |d| saturating_add(t, d))
}

/// Delay before retrying after `consecutive_failures` failures: exponential from `base`, capped
/// at `cap`, with deterministic-per-source jitter.
///
/// `base * 2^(failures - 1)` (saturating), then up to 10% more chosen by a hash of the source
/// name, and never more than `cap`. Zero failures means no delay.
pub fn backoff_delay(
    consecutive_failures: u32,
    base: Duration,
    cap: Duration,
    source_name: &str,
) -> Duration {
    if consecutive_failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32
        .checked_shl(consecutive_failures - 1)
        .unwrap_or(u32::MAX);
    let exponential = base.checked_mul(factor).unwrap_or(Duration::MAX).min(cap);
    let jitter = scaled_offset(source_name, exponential / 10, BACKOFF_SEED);
    exponential.saturating_add(jitter).min(cap)
}

/// The rules due times follow, from `[defaults]` (a reload may change them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Largest per-source offset inside a schedule slot ([`jitter_offset`]).
    pub max_jitter: Duration,
    /// Retry delay after the first failure ([`backoff_delay`]).
    pub backoff_base: Duration,
    /// Longest retry delay after failures.
    pub backoff_cap: Duration,
    /// Longest `Retry-After` honoured: the fetcher caps the header's time at this from when
    /// it read it.
    pub max_retry_after: chrono::Duration,
}

/// When a source is next due after its `failures`-th failure in a row at `now` (0: after a
/// success): the first cron time after the backoff delay (keeping the rhythm), and never
/// before the server's Retry-After (honoured for at most `max_retry_after`). Saturates rather
/// than panics whatever the delays.
pub fn failure_due(
    schedule: &Schedule,
    source_name: &str,
    now: DateTime<Utc>,
    failures: u32,
    retry_not_before: Option<DateTime<Utc>>,
    timing: &Timing,
) -> DateTime<Utc> {
    let earliest = failure_earliest(source_name, now, failures, retry_not_before, timing);
    next_due(schedule, source_name, earliest, timing.max_jitter)
}

/// The moment [`failure_due`] looks up the schedule's next time from: the backoff after the
/// `failures`th failure in a row, or the server's `Retry-After` (capped) when later.
pub fn failure_earliest(
    source_name: &str,
    now: DateTime<Utc>,
    failures: u32,
    retry_not_before: Option<DateTime<Utc>>,
    timing: &Timing,
) -> DateTime<Utc> {
    let delay = backoff_delay(
        failures,
        timing.backoff_base,
        timing.backoff_cap,
        source_name,
    );
    let earliest = saturating_add_std(now, delay);
    retry_not_before
        .map(|r| r.min(saturating_add(now, timing.max_retry_after)))
        .map_or(earliest, |r| r.max(earliest))
}

/// A source's stored due times brought back within reach of `now`, or `None` when they are
/// within reach already.
///
/// Due times are absolute wall-clock times. A poll at any time up to `now` can have set them
/// no later than: a Retry-After `max_retry_after` from now; without failures, the schedule's
/// next time after now; after failures, the schedule's first time after the longest backoff
/// (`backoff_cap`) or the Retry-After, whichever is later. A time further ahead was worked out
/// by a clock that ran ahead of this one: the wall clock went back since (a box that booted
/// with a time in the future and was then set right by NTP, a VM restored from a snapshot),
/// or the schedule or timing settings were changed to shorter ones. Waiting for such a time
/// could take days. A legitimately far time (a yearly schedule, a week's Retry-After, a long
/// backoff) is within reach and kept. A Retry-After out of reach is proof enough for the
/// source's next due time too, however far the longest backoff reaches.
///
/// Corrected, the times are those a poll ending now would set: the server's Retry-After
/// counted from now (its wait is read off the stored time and the last attempt, both taken
/// by the same clock; a week when unknown), and the next due time by the schedule after the
/// backoff of the stored failure count and that Retry-After ([`failure_due`]). Never later
/// than the stored times; a source due at once stays due at once.
pub fn settled_due_times(
    schedule: &Schedule,
    source_name: &str,
    stored: &DueTimes,
    now: DateTime<Utc>,
    timing: &Timing,
) -> Option<DueTimes> {
    let latest_retry = saturating_add(now, timing.max_retry_after);
    let retry_not_before = match stored.retry_not_before {
        Some(retry) if retry > latest_retry => {
            let asked = stored
                .last_attempt
                .map_or(timing.max_retry_after, |attempt| {
                    (retry - attempt).clamp(chrono::Duration::zero(), timing.max_retry_after)
                });
            Some(saturating_add(now, asked))
        }
        kept => kept,
    };
    let longest_backoff = if stored.consecutive_failures == 0 {
        Duration::ZERO
    } else {
        timing.backoff_cap
    };
    // The Retry-After is stored to the second; the next due time was worked out from it
    // before the fraction was cut off, and may be a slot later than the stored second gives.
    let retry_as_sent = retry_not_before.map(|r| saturating_add(r, chrono::Duration::seconds(1)));
    let latest_due = next_due(
        schedule,
        source_name,
        saturating_add_std(now, longest_backoff).max(retry_as_sent.unwrap_or(now)),
        timing.max_jitter,
    );
    // A Retry-After out of reach proves the clock went back, even when the longest backoff
    // could still account for the next due time: that too was set by the fast clock.
    let stepped = retry_not_before != stored.retry_not_before;
    let next_due = match stored.next_due {
        Some(due) if due > latest_due || stepped => Some(due.min(failure_due(
            schedule,
            source_name,
            now,
            stored.consecutive_failures,
            retry_not_before,
            timing,
        ))),
        kept => kept,
    };
    (next_due != stored.next_due || retry_not_before != stored.retry_not_before).then(|| DueTimes {
        next_due,
        retry_not_before,
        ..stored.clone()
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeZone;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .unwrap_or_else(|error| panic!("bad test time {text:?}: {error}"));
        Utc.from_utc_datetime(&naive)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn jitter_offset_is_within_range_and_stable_per_name() {
        let cases: &[(&str, Duration)] = &[
            ("reuters-trade", secs(300)),
            ("wto-news", secs(300)),
            ("a", secs(1)),
            ("", secs(60)),
            ("ustr-press", Duration::from_millis(1)),
            ("sub-millisecond", Duration::from_nanos(500)),
            ("huge", Duration::from_secs(u64::MAX)),
        ];
        for (name, max) in cases {
            let offset = jitter_offset(name, *max);
            assert!(
                offset < *max,
                "{name:?}: {offset:?} should be below {max:?}"
            );
            assert_eq!(offset, jitter_offset(name, *max), "{name:?} is stable");
        }
    }

    #[test]
    fn rejittered_due_keeps_the_slot_and_takes_the_new_offset() {
        let every_ten = Schedule::parse("*/10 * * * *").unwrap();
        let slot = DateTime::parse_from_rfc3339("2026-11-28T12:10:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let name = "reuters-trade";
        for (old, new) in [
            (secs(0), secs(300)),
            (secs(300), secs(0)),
            (secs(7), secs(599)),
        ] {
            let due = next_due(&every_ten, name, slot - chrono::Duration::seconds(1), old);
            let moved = rejittered_due(&every_ten, name, due, old, new).unwrap();
            assert_eq!(
                moved,
                next_due(&every_ten, name, slot - chrono::Duration::seconds(1), new),
                "{old:?} -> {new:?}"
            );
            // Back again gives the time it came from.
            assert_eq!(rejittered_due(&every_ten, name, moved, new, old), Some(due));
        }
        let due = next_due(&every_ten, name, slot, secs(300));
        // Same jitter, or no slot under the old one: left alone.
        assert_eq!(
            rejittered_due(&every_ten, name, due, secs(300), secs(300)),
            None
        );
        let off_slot = due + chrono::Duration::seconds(2);
        assert_eq!(
            rejittered_due(&every_ten, name, off_slot, secs(300), secs(60)),
            None
        );
        // A schedule that never fires again.
        let leap_day = Schedule::parse("0 0 29 2 *").unwrap();
        let far = DateTime::parse_from_rfc3339("2100-03-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            rejittered_due(&leap_day, name, far, secs(300), secs(60)),
            None
        );
    }

    #[test]
    fn jitter_offset_is_zero_when_there_is_no_room() {
        for name in ["reuters-trade", "wto-news", ""] {
            assert_eq!(jitter_offset(name, Duration::ZERO), Duration::ZERO);
        }
    }

    #[test]
    fn jitter_offset_spreads_distinct_names_over_the_range() {
        let max = secs(600);
        let offsets: Vec<Duration> = (0..200)
            .map(|i| jitter_offset(&format!("source-{i}"), max))
            .collect();
        let distinct: BTreeSet<Duration> = offsets.iter().copied().collect();
        assert!(distinct.len() >= 195, "only {} distinct", distinct.len());
        // Every tenth of the range gets some sources (expected 20 each).
        for decile in 0..10u32 {
            let low = max * decile / 10;
            let high = max * (decile + 1) / 10;
            let count = offsets.iter().filter(|o| **o >= low && **o < high).count();
            assert!(
                (5..=40).contains(&count),
                "decile {decile} holds {count} of 200"
            );
        }
    }

    #[test]
    fn next_due_is_the_next_slot_plus_the_source_jitter() {
        let hourly = Schedule::parse("0 * * * *").unwrap();
        let name = "wto-news";
        let max = secs(600);
        let jitter = chrono::Duration::from_std(jitter_offset(name, max)).unwrap();
        assert!(
            jitter > chrono::Duration::zero(),
            "test needs a non-zero jitter"
        );
        let ten = ceil_to_second(at("2026-03-10 10:00:00") + jitter);
        let eleven = ceil_to_second(at("2026-03-10 11:00:00") + jitter);
        let cases: &[(&str, DateTime<Utc>, DateTime<Utc>)] = &[
            ("well before the slot", at("2026-03-10 09:20:00"), ten),
            (
                "on the slot, before its jittered time",
                at("2026-03-10 10:00:00"),
                ten,
            ),
            (
                "just before the jittered time",
                at("2026-03-10 10:00:00") + jitter - chrono::Duration::milliseconds(1),
                ten,
            ),
            ("exactly at the jittered time", ten, eleven),
            (
                "just after the jittered time",
                ten + chrono::Duration::seconds(1),
                eleven,
            ),
        ];
        for (what, after, expected) in cases {
            assert_eq!(next_due(&hourly, name, *after, max), *expected, "{what}");
        }
    }

    #[test]
    fn next_due_without_jitter_is_the_plain_cron_time() {
        let schedule = Schedule::parse("*/15 * * * *").unwrap();
        let cases = [
            ("2026-03-10 09:20:00", "2026-03-10 09:30:00"),
            ("2026-03-10 09:30:00", "2026-03-10 09:45:00"),
            ("2026-03-10 23:59:59", "2026-03-11 00:00:00"),
        ];
        for (after, expected) in cases {
            assert_eq!(
                next_due(&schedule, "any", at(after), Duration::ZERO),
                at(expected),
                "after {after}"
            );
        }
    }

    #[test]
    fn next_due_is_always_strictly_after_and_within_one_slot_plus_jitter() {
        let max = secs(900);
        let lines = ["*/5 * * * *", "0 * * * *", "30 6 * * 1-5", "@daily"];
        let start = at("2026-11-27 23:58:52");
        for line in lines {
            let schedule = Schedule::parse(line).unwrap();
            for i in 0..50 {
                let name = format!("source-{i}");
                let mut after = start + chrono::Duration::seconds(i * 7_919);
                for _ in 0..5 {
                    let due = next_due(&schedule, &name, after, max);
                    assert!(due > after, "{line} {name}: {due} after {after}");
                    let jitter = chrono::Duration::from_std(jitter_offset(&name, max)).unwrap();
                    // The due time is a cron slot shifted by this source's jitter, rounded up
                    // to a whole second.
                    assert_eq!(due.timestamp_subsec_nanos(), 0, "{line} {name}: {due}");
                    let shifted = due - jitter;
                    let slot = schedule
                        .next_after(shifted - chrono::Duration::seconds(1))
                        .unwrap();
                    assert!(
                        slot <= shifted && shifted < slot + chrono::Duration::seconds(1),
                        "{line} {name}: {due} is not slot + jitter"
                    );
                    after = due;
                }
            }
        }
    }

    /// The store keeps due times in whole seconds and calls a source due once the current
    /// second reaches its time. Polled at the first moment it is due, a source's next time
    /// must be a later slot, or the scheduler polls the same slot again at every look.
    #[test]
    fn a_source_polled_as_soon_as_the_store_calls_it_due_gets_the_next_slot() {
        let max = secs(120);
        let start = at("2026-11-27 23:58:52");
        let mut fractional = 0;
        for line in ["* * * * *", "*/5 * * * *", "0 * * * *"] {
            let schedule = Schedule::parse(line).unwrap();
            for i in 0..100 {
                let name = format!("outlet-{i}");
                fractional += usize::from(jitter_offset(&name, max).subsec_millis() > 0);
                let due = next_due(&schedule, &name, start, max);
                // What the store keeps, and the first moment its due check says "due".
                let first_due_moment = DateTime::from_timestamp(due.timestamp(), 0).unwrap();
                let next = next_due(&schedule, &name, first_due_moment, max);
                assert!(
                    next >= due + chrono::Duration::seconds(59),
                    "{line} {name}: due {due}, polled at {first_due_moment}, next {next}"
                );
            }
        }
        assert!(
            fractional > 250,
            "the test needs jitters with fractions: {fractional}"
        );
    }

    #[test]
    fn overdue_source_gets_one_next_time_not_one_per_missed_slot() {
        let schedule = Schedule::parse("*/10 * * * *").unwrap();
        let name = "reuters-trade";
        let max = secs(120);
        let jitter = chrono::Duration::from_std(jitter_offset(name, max)).unwrap();
        // Last due at 09:00 + jitter, but the daemon was down until 15:03 (36 slots missed).
        let now = at("2026-03-10 15:03:00");
        let due = next_due(&schedule, name, now, max);
        assert_eq!(due, ceil_to_second(at("2026-03-10 15:10:00") + jitter));
        // Asking again at that time gives the following slot, not a backlog.
        assert_eq!(
            next_due(&schedule, name, due, max),
            ceil_to_second(at("2026-03-10 15:20:00") + jitter)
        );
    }

    #[test]
    fn next_due_waits_a_year_when_the_schedule_never_fires_again() {
        // The cron library stops at the year 2100.
        let schedule = Schedule::parse("0 0 1 1 *").unwrap();
        let after = at("2100-06-01 00:00:00");
        assert_eq!(
            next_due(&schedule, "late", after, secs(60)),
            after + chrono::Duration::days(365)
        );
    }

    #[test]
    fn next_due_saturates_instead_of_panicking_at_the_end_of_time() {
        let schedule = Schedule::parse("*/5 * * * *").unwrap();
        let latest = DateTime::<Utc>::MAX_UTC;
        let near_the_end = latest - chrono::Duration::days(10);
        for after in [latest, near_the_end] {
            assert_eq!(next_due(&schedule, "late", after, secs(60)), latest);
        }
        assert_eq!(
            saturating_add_std(near_the_end, Duration::MAX),
            latest,
            "a delay too long for chrono saturates"
        );
        assert_eq!(
            saturating_add_std(at("2026-03-10 10:00:00"), secs(60)),
            at("2026-03-10 10:01:00")
        );
    }

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let base = secs(60);
        let cap = secs(3600);
        let name = "wto-news";
        let cases: &[(u32, Duration)] = &[
            (1, secs(60)),
            (2, secs(120)),
            (3, secs(240)),
            (4, secs(480)),
            (5, secs(960)),
            (6, secs(1920)),
            (7, secs(3600)),
            (40, secs(3600)),
            (u32::MAX, secs(3600)),
        ];
        for (failures, exponential) in cases {
            let delay = backoff_delay(*failures, base, cap, name);
            let ceiling = (*exponential + *exponential / 10).min(cap);
            assert!(
                delay >= *exponential && delay <= ceiling,
                "{failures} failures: {delay:?} not in [{exponential:?}, {ceiling:?}]"
            );
            assert_eq!(delay, backoff_delay(*failures, base, cap, name), "stable");
        }
    }

    #[test]
    fn backoff_is_zero_without_failures() {
        assert_eq!(
            backoff_delay(0, secs(60), secs(3600), "wto-news"),
            Duration::ZERO
        );
    }

    #[test]
    fn backoff_never_exceeds_the_cap_even_with_a_huge_base() {
        let cases: &[(Duration, Duration)] = &[
            (Duration::MAX, secs(3600)),
            (secs(7200), secs(3600)),
            (secs(3500), secs(3600)),
            (Duration::from_millis(1), Duration::from_millis(1)),
        ];
        for (base, cap) in cases {
            for failures in [1, 2, 31, 32, 33, 1000] {
                let delay = backoff_delay(failures, *base, *cap, "source");
                assert!(delay <= *cap, "{base:?} x{failures}: {delay:?} > {cap:?}");
            }
        }
    }

    #[test]
    fn backoff_jitter_differs_between_sources_by_at_most_ten_percent() {
        let base = secs(100);
        let cap = secs(100_000);
        let delays: BTreeSet<Duration> = (0..50)
            .map(|i| backoff_delay(3, base, cap, &format!("source-{i}")))
            .collect();
        assert!(delays.len() >= 45, "only {} distinct delays", delays.len());
        assert!(delays.iter().all(|d| *d >= secs(400) && *d < secs(440)));
    }

    const WEEK: chrono::Duration = chrono::Duration::days(7);

    fn timing(cap: Duration) -> Timing {
        Timing {
            max_jitter: secs(300),
            backoff_base: secs(60),
            backoff_cap: cap,
            max_retry_after: WEEK,
        }
    }

    fn stored(
        next_due: Option<DateTime<Utc>>,
        retry_not_before: Option<DateTime<Utc>>,
        consecutive_failures: u32,
        last_attempt: Option<DateTime<Utc>>,
    ) -> DueTimes {
        DueTimes {
            next_due,
            retry_not_before,
            consecutive_failures,
            last_attempt,
        }
    }

    #[test]
    fn due_times_set_by_a_clock_that_was_ahead_are_worked_out_again_from_now() {
        let now = at("2026-11-28 12:00:00");
        let t = timing(secs(21_600));
        let quarter = Schedule::parse("*/15 * * * *").unwrap();
        let name = "wto-news";
        let days = |n: i64| chrono::Duration::days(n);
        let minutes = chrono::Duration::minutes;

        // Polled fine by a clock three days fast: due at its next slot from now.
        let ahead = now + days(3);
        let was = stored(Some(ahead + minutes(15)), None, 0, Some(ahead));
        let settled = settled_due_times(&quarter, name, &was, now, &t).unwrap();
        assert_eq!(
            settled.next_due,
            Some(next_due(&quarter, name, now, t.max_jitter))
        );
        assert!(settled.next_due.unwrap() <= now + minutes(20));
        assert_eq!(
            (settled.retry_not_before, settled.consecutive_failures),
            (None, 0)
        );

        // Failing twice by that clock: due after two failures' backoff from now.
        let was = stored(Some(ahead + minutes(4)), None, 2, Some(ahead));
        let settled = settled_due_times(&quarter, name, &was, now, &t).unwrap();
        assert_eq!(
            settled.next_due,
            Some(failure_due(&quarter, name, now, 2, None, &t))
        );
        assert!(settled.next_due.unwrap() <= now + minutes(20));
        assert_eq!(settled.consecutive_failures, 2, "the failures still count");

        // The server asked for an hour, ten days ahead by that clock: an hour from now.
        let ahead = now + days(10);
        let retry = ahead + chrono::Duration::hours(1);
        let was = stored(
            Some(next_due(&quarter, name, retry, t.max_jitter)),
            Some(retry),
            1,
            Some(ahead),
        );
        let settled = settled_due_times(&quarter, name, &was, now, &t).unwrap();
        let hour = now + chrono::Duration::hours(1);
        assert_eq!(settled.retry_not_before, Some(hour));
        assert_eq!(
            settled.next_due,
            Some(failure_due(&quarter, name, now, 1, Some(hour), &t))
        );
        assert!(settled.next_due.unwrap() >= hour);

        // So too when the longest backoff (a month here) could account for the next time:
        // the Retry-After proves that the clock that set both was fast.
        let month = timing(secs(30 * 86_400));
        let settled = settled_due_times(&quarter, name, &was, now, &month).unwrap();
        assert_eq!(settled.retry_not_before, Some(hour));
        assert_eq!(
            settled.next_due,
            Some(failure_due(&quarter, name, now, 1, Some(hour), &month))
        );

        // With no last attempt to count the wait from, it is the longest honoured.
        let was = stored(None, Some(retry), 1, None);
        let settled = settled_due_times(&quarter, name, &was, now, &t).unwrap();
        assert_eq!(settled.retry_not_before, Some(now + WEEK));
        assert_eq!(settled.next_due, None, "a source due at once stays so");
    }

    #[test]
    fn legitimately_far_due_times_are_kept() {
        let now = at("2026-11-28 12:00:00");
        let quarter = Schedule::parse("*/15 * * * *").unwrap();
        let yearly = Schedule::parse("0 0 1 1 *").unwrap();
        let name = "ustr-press";
        let t = timing(secs(21_600));
        let month = secs(30 * 86_400);
        let cases: Vec<(&str, &Schedule, Timing, DueTimes)> = vec![
            (
                "a yearly schedule's next slot",
                &yearly,
                t,
                stored(
                    Some(next_due(&yearly, name, now, t.max_jitter)),
                    None,
                    0,
                    Some(now),
                ),
            ),
            (
                "a yearly schedule polled a month ago",
                &yearly,
                t,
                stored(
                    Some(next_due(
                        &yearly,
                        name,
                        now - chrono::Duration::days(30),
                        t.max_jitter,
                    )),
                    None,
                    0,
                    Some(now - chrono::Duration::days(30)),
                ),
            ),
            (
                "a Retry-After of a week, just asked",
                &quarter,
                t,
                stored(
                    Some(failure_due(&quarter, name, now, 1, Some(now + WEEK), &t)),
                    Some(now + WEEK),
                    1,
                    Some(now),
                ),
            ),
            (
                "a backoff of a month",
                &quarter,
                timing(month),
                stored(
                    Some(failure_due(&quarter, name, now, 40, None, &timing(month))),
                    None,
                    40,
                    Some(now),
                ),
            ),
            (
                "the next slot after a success just now",
                &quarter,
                t,
                stored(
                    Some(next_due(&quarter, name, now, t.max_jitter)),
                    None,
                    0,
                    Some(now),
                ),
            ),
            (
                "a backoff later than this failure count's, within the longest (set under a \
                 longer base)",
                &quarter,
                t,
                stored(Some(now + chrono::Duration::hours(5)), None, 1, Some(now)),
            ),
            ("never polled", &quarter, t, stored(None, None, 0, None)),
            (
                "due in the past",
                &quarter,
                t,
                stored(Some(now - WEEK), Some(now - WEEK), 3, Some(now - WEEK)),
            ),
        ];
        for (what, schedule, timing, was) in cases {
            assert_eq!(
                settled_due_times(schedule, name, &was, now, &timing),
                None,
                "{what}"
            );
        }

        // A Retry-After of three days, sent with a fraction of a second that the store cut
        // off, and a jittered slot inside that fraction: the next due time, worked out before
        // the cut, is the following slot, and is kept.
        let minutely = Schedule::parse("* * * * *").unwrap();
        let t = Timing {
            max_jitter: secs(1),
            ..timing(secs(21_600))
        };
        let jitter = chrono::Duration::from_std(jitter_offset(name, t.max_jitter)).unwrap();
        assert!(jitter > chrono::Duration::zero() && jitter < chrono::Duration::milliseconds(999));
        let slot = now + chrono::Duration::days(3);
        let sent = slot + jitter + chrono::Duration::milliseconds(1);
        let due = failure_due(&minutely, name, now, 1, Some(sent), &t);
        assert_eq!(
            due,
            ceil_to_second(slot + chrono::Duration::minutes(1) + jitter)
        );
        let to_the_second = |t: DateTime<Utc>| DateTime::from_timestamp(t.timestamp(), 0).unwrap();
        let was = stored(Some(to_the_second(due)), Some(slot), 1, Some(now));
        assert_eq!(settled_due_times(&minutely, name, &was, now, &t), None);
    }

    #[test]
    fn settled_due_times_are_never_later_than_the_stored_ones_and_never_panic() {
        let now = at("2026-11-28 12:00:00");
        let huge = secs(10_000_000_000_000);
        let latest = DateTime::<Utc>::MAX_UTC;
        let schedules =
            ["* * * * *", "0 0 1 1 *", "0 0 29 2 *"].map(|l| Schedule::parse(l).unwrap());
        let timings = [
            timing(secs(21_600)),
            Timing {
                max_jitter: Duration::MAX,
                backoff_base: huge,
                backoff_cap: huge,
                max_retry_after: WEEK,
            },
        ];
        let times = [
            None,
            Some(now),
            Some(now + chrono::Duration::days(3)),
            Some(now + chrono::Duration::days(400)),
            Some(latest),
        ];
        for schedule in &schedules {
            for t in &timings {
                for next in times {
                    for retry in times {
                        for attempt in times {
                            for failures in [0, 1, 7, u32::MAX] {
                                let was = stored(next, retry, failures, attempt);
                                let Some(settled) = settled_due_times(schedule, "s", &was, now, t)
                                else {
                                    continue;
                                };
                                let later = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| {
                                    a.is_some() != b.is_some() || a > b
                                };
                                assert!(
                                    !later(settled.next_due, was.next_due)
                                        && !later(settled.retry_not_before, was.retry_not_before),
                                    "{was:?} became {settled:?}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
