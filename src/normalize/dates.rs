//! Entry dates: defaults and clamping.

use chrono::{DateTime, Duration, Utc};

/// Resolves `(published, updated)` for an entry.
///
/// `published` is the feed's published date, else its updated date, else `fetched_at`;
/// `updated` is the feed's updated date (else `published`), never before `published`. Either is
/// clamped to `fetched_at` when it lies more than `max_future_skew` ahead of it (a wrong clock or
/// a wrong zone must not pin an item to the top of every output feed).
///
/// The third value says whether `published` is a date the feed gave (`false`: the fetch time
/// stands in for a missing or future one).
pub fn resolve_dates(
    published: Option<DateTime<Utc>>,
    updated: Option<DateTime<Utc>>,
    fetched_at: DateTime<Utc>,
    max_future_skew: Duration,
) -> (DateTime<Utc>, DateTime<Utc>, bool) {
    let limit = fetched_at
        .checked_add_signed(max_future_skew)
        .unwrap_or(fetched_at);
    let clamp = |t: DateTime<Utc>| if t > limit { fetched_at } else { t };
    let given = published.or(updated).filter(|t| *t <= limit);
    let published = clamp(published.or(updated).unwrap_or(fetched_at));
    let updated = clamp(updated.unwrap_or(published)).max(published);
    (published, updated, given.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_default_order_and_clamp() {
        let fetched = DateTime::from_timestamp(1_795_773_600, 0).unwrap();
        let skew = Duration::minutes(10);
        let h = |hours: i64| fetched + Duration::hours(hours);
        let m = |mins: i64| fetched + Duration::minutes(mins);
        let cases = [
            // (published, updated) → (published, updated)
            ((Some(h(-2)), Some(h(-1))), (h(-2), h(-1))),
            ((Some(h(-2)), None), (h(-2), h(-2))),
            ((None, Some(h(-1))), (h(-1), h(-1))),
            ((None, None), (fetched, fetched)),
            ((Some(h(-1)), Some(h(-2))), (h(-1), h(-1))),
            ((Some(m(5)), None), (m(5), m(5))),
            ((Some(h(3)), None), (fetched, fetched)),
            ((Some(h(-1)), Some(h(3))), (h(-1), fetched)),
            ((Some(h(48)), Some(h(49))), (fetched, fetched)),
        ];
        for ((p, u), (published, updated)) in cases {
            let (got_published, got_updated, dated) = resolve_dates(p, u, fetched, skew);
            assert_eq!(
                (got_published, got_updated),
                (published, updated),
                "{p:?} {u:?}"
            );
            let usable = p.or(u).is_some_and(|t| t <= fetched + skew);
            assert_eq!(dated, usable, "dated for {p:?} {u:?}");
        }
    }
}
