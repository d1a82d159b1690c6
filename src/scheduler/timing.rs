//! Pure timing functions: cron next time with per-source jitter, and failure backoff.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::Schedule;

/// Deterministic per-source offset in `[0, max)` so sources sharing a schedule do not fire at once.
pub fn jitter_offset(source_name: &str, max: Duration) -> Duration {
    todo!("scheduler helper: {source_name} {max:?}")
}

/// The next poll time after `after`: the next cron time plus the source's jitter.
pub fn next_due(
    schedule: &Schedule,
    source_name: &str,
    after: DateTime<Utc>,
    max_jitter: Duration,
) -> DateTime<Utc> {
    todo!("scheduler helper: {schedule:?} {source_name} {after} {max_jitter:?}")
}

/// Delay before retrying after `consecutive_failures` failures: exponential from `base`, capped
/// at `cap`, with deterministic-per-source jitter.
pub fn backoff_delay(
    consecutive_failures: u32,
    base: Duration,
    cap: Duration,
    source_name: &str,
) -> Duration {
    todo!("scheduler helper: {consecutive_failures} {base:?} {cap:?} {source_name}")
}
