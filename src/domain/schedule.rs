use chrono::{DateTime, Utc};

/// A polling schedule written as a standard 5-field crontab line or an `@hourly`-style shortcut.
///
/// The `cron` crate speaks a different dialect (seconds field, Sunday = 1, day-of-month AND
/// day-of-week); this type translates standard crontab semantics exactly (DOM/DOW ORed when both
/// are restricted, Sunday as 0 or 7). Times are UTC.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The line as the operator wrote it.
    source: String,
    /// One or two cron-crate schedules; the next time is the earliest of them.
    parts: Vec<cron::Schedule>,
}

/// Why a schedule line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule {line:?}: {reason}")]
pub struct ScheduleError {
    /// The line as written.
    pub line: String,
    /// What is wrong with it.
    pub reason: String,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Schedule {
    /// Parses a standard crontab line (`*/15 * * * *`) or shortcut (`@hourly`, `@daily`, ...).
    pub fn parse(line: &str) -> Result<Schedule, ScheduleError> {
        todo!("scheduler helper: translate {line} for the cron crate")
    }

    /// The line as the operator wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.parts
            .iter()
            .filter_map(|s| s.after(&after).next())
            .min()
    }
}
