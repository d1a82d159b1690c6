//! Pure timing functions: cron next time with per-source jitter, and failure backoff.

use std::time::Duration;

use chrono::{DateTime, Utc};
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::domain::Schedule;

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
        .unwrap_or_else(|| saturating_add(after, NEVER_AGAIN))
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
    let delay = backoff_delay(
        failures,
        timing.backoff_base,
        timing.backoff_cap,
        source_name,
    );
    let earliest = saturating_add_std(now, delay);
    let earliest = retry_not_before
        .map(|r| r.min(saturating_add(now, timing.max_retry_after)))
        .map_or(earliest, |r| r.max(earliest));
    next_due(schedule, source_name, earliest, timing.max_jitter)
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
        let ten = at("2026-03-10 10:00:00");
        let eleven = at("2026-03-10 11:00:00");
        let cases: &[(&str, DateTime<Utc>, DateTime<Utc>)] = &[
            (
                "well before the slot",
                at("2026-03-10 09:20:00"),
                ten + jitter,
            ),
            ("on the slot, before its jittered time", ten, ten + jitter),
            (
                "just before the jittered time",
                ten + jitter - chrono::Duration::milliseconds(1),
                ten + jitter,
            ),
            (
                "exactly at the jittered time",
                ten + jitter,
                eleven + jitter,
            ),
            (
                "just after the jittered time",
                ten + jitter + chrono::Duration::seconds(1),
                eleven + jitter,
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
                    // The due time is a cron slot shifted by exactly this source's jitter.
                    let slot = due - jitter;
                    assert_eq!(
                        schedule.next_after(slot - chrono::Duration::seconds(1)),
                        Some(slot),
                        "{line} {name}: {due} is not slot + jitter"
                    );
                    after = due;
                }
            }
        }
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
        assert_eq!(due, at("2026-03-10 15:10:00") + jitter);
        // Asking again at that time gives the following slot, not a backlog.
        assert_eq!(
            next_due(&schedule, name, due, max),
            at("2026-03-10 15:20:00") + jitter
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
}
