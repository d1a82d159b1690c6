use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};

/// A polling schedule written as a standard 5-field crontab line or an `@hourly`-style shortcut.
///
/// The `cron` crate speaks a different dialect (seconds field, Sunday = 1, day-of-month AND
/// day-of-week); this type translates standard crontab semantics exactly (DOM/DOW ORed when both
/// are restricted, Sunday as 0 or 7). Times are UTC.
///
/// Clones share one parse: every source holds its schedule, and the config, the running
/// daemon's source list and the jobs it queues hold sources, so a thousand sources on the
/// default schedule were a few thousand copies of the cron library's tables (1.3 MB of the idle
/// daemon's heap with 1,000 sources).
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The line as the operator wrote it.
    source: Arc<str>,
    /// One or two cron-crate schedules; the next time is the earliest of them.
    parts: Arc<[cron::Schedule]>,
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
    ///
    /// Follows vixie cron: the fields are minute (0-59), hour (0-23), day of month (1-31),
    /// month (1-12 or JAN-DEC) and day of week (0-7 or SUN-SAT; 0 and 7 are both Sunday). Each
    /// field is a comma list of `*`, `N`, `N-M`, `*/S` or `N-M/S`. When neither day field starts
    /// with `*`, a day matches if EITHER field matches; otherwise both must match (so `*/2`
    /// counts as unrestricted for that rule, exactly as in vixie cron). Shortcuts: `@yearly`,
    /// `@annually`, `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`.
    pub fn parse(line: &str) -> Result<Schedule, ScheduleError> {
        let fail = |reason: String| ScheduleError {
            line: line.to_string(),
            reason,
        };
        let fields = parse_fields(line).map_err(fail)?;
        let minute_text = render_numbers(fields.minutes.bits, &MINUTE);
        let hour_text = render_numbers(fields.hours.bits, &HOUR);
        let day_text = render_numbers(fields.days.bits, &DAY_OF_MONTH);
        let month_text = render_numbers(fields.months.bits, &MONTH);
        let weekday_text = render_weekdays(fields.weekdays.bits);

        let day_pairs: Vec<(&str, &str)> = if fields.days_ored() {
            vec![(day_text.as_str(), "*"), ("*", weekday_text.as_str())]
        } else {
            vec![(day_text.as_str(), weekday_text.as_str())]
        };

        let mut parts = Vec::with_capacity(day_pairs.len());
        for (day, weekday) in day_pairs {
            // The cron crate's dialect: seconds first, weekdays by name (its numbers start at
            // Sunday = 1), and day-of-month ANDed with day-of-week.
            let expression = format!("0 {minute_text} {hour_text} {day} {month_text} {weekday}");
            let part = cron::Schedule::from_str(&expression).map_err(|error| {
                fail(format!(
                    "the cron library refused its translation `{expression}`: {error}"
                ))
            })?;
            parts.push(part);
        }
        Ok(Schedule {
            source: Arc::from(line),
            parts: Arc::from(parts),
        })
    }

    /// The line as the operator wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the two share one parse (see [`Schedule`]).
    #[cfg(test)]
    pub(crate) fn shares_parse_with(&self, other: &Schedule) -> bool {
        Arc::ptr_eq(&self.parts, &other.parts)
    }

    /// The first fire time strictly after `after`; `None` after the cron library's last year
    /// (2100), which also keeps it from overflowing near the end of chrono's calendar.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if after.year() > CRON_LAST_YEAR {
            return None;
        }
        self.parts
            .iter()
            .filter_map(|s| s.after(&after).next())
            .min()
    }
}

/// The last year the cron library computes fire times in.
const CRON_LAST_YEAR: i32 = 2100;

/// What one crontab field may hold.
struct FieldSpec {
    /// Name used in error messages.
    name: &'static str,
    /// Smallest allowed number.
    min: u32,
    /// Largest allowed number.
    max: u32,
    /// Three-letter names for the numbers starting at `names_start` (months, weekdays).
    names: &'static [&'static str],
    /// The number the first name stands for.
    names_start: u32,
    /// Allowed values, spelled out for error messages.
    allowed: &'static str,
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_start: 0,
    allowed: "0-59",
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_start: 0,
    allowed: "0-23",
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
    names_start: 0,
    allowed: "1-31",
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    names_start: 1,
    allowed: "1-12 or JAN-DEC",
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    names_start: 0,
    allowed: "0-7 (0 and 7 are Sunday) or SUN-SAT",
};

/// Names the cron crate understands for weekdays 0 (Sunday) to 6 (Saturday).
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// The longest each month can be (February in a leap year).
const LONGEST_MONTH: [u32; 12] = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/// One parsed field: the set of allowed values and whether it was written starting with `*`
/// (which decides how the two day fields combine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FieldSet {
    /// Bit `n` set when value `n` is allowed.
    bits: u64,
    /// The field text started with `*`.
    starts_with_star: bool,
}

impl FieldSet {
    fn contains(&self, value: u32) -> bool {
        self.bits & (1 << value) != 0
    }
}

/// All five fields of a crontab line, weekday 7 folded into 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CrontabFields {
    minutes: FieldSet,
    hours: FieldSet,
    days: FieldSet,
    months: FieldSet,
    weekdays: FieldSet,
}

impl CrontabFields {
    /// vixie cron ORs the day fields only when neither starts with `*`.
    fn days_ored(&self) -> bool {
        !self.days.starts_with_star && !self.weekdays.starts_with_star
    }
}

/// Parses a crontab line or shortcut into its field sets, checking that it can ever fire.
fn parse_fields(line: &str) -> Result<CrontabFields, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Err(
            "the schedule is empty; write 5 crontab fields such as `*/30 * * * *` or a \
                    shortcut such as `@hourly`"
                .to_string(),
        );
    }
    let expanded = if trimmed.starts_with('@') {
        expand_shortcut(trimmed)?
    } else {
        trimmed
    };
    let texts: Vec<&str> = expanded.split_whitespace().collect();
    if texts.len() != 5 {
        return Err(field_count_reason(texts.len()));
    }
    let minutes = parse_field(texts[0], &MINUTE)?;
    let hours = parse_field(texts[1], &HOUR)?;
    let days = parse_field(texts[2], &DAY_OF_MONTH)?;
    let months = parse_field(texts[3], &MONTH)?;
    let mut weekdays = parse_field(texts[4], &DAY_OF_WEEK)?;
    // Sunday may be written 0 or 7; keep only 0.
    if weekdays.contains(7) {
        weekdays.bits = (weekdays.bits & !(1 << 7)) | 1;
    }
    let fields = CrontabFields {
        minutes,
        hours,
        days,
        months,
        weekdays,
    };
    // With ORed day fields the weekday half always fires; otherwise a day of month that no
    // selected month has (`30 2`) would make the line silently dead.
    if !fields.days_ored() && !some_day_exists(fields.days, fields.months) {
        return Err(format!(
            "it never fires: day-of-month `{}` does not occur in month `{}`",
            texts[2], texts[3]
        ));
    }
    Ok(fields)
}

/// The 5-field line a shortcut stands for.
fn expand_shortcut(shortcut: &str) -> Result<&'static str, String> {
    match shortcut.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => Ok("0 0 1 1 *"),
        "@monthly" => Ok("0 0 1 * *"),
        "@weekly" => Ok("0 0 * * 0"),
        "@daily" | "@midnight" => Ok("0 0 * * *"),
        "@hourly" => Ok("0 * * * *"),
        "@reboot" => Err(
            "`@reboot` means nothing for a polling schedule; use a shortcut such \
                          as `@hourly` or 5 crontab fields"
                .to_string(),
        ),
        _ => Err(format!(
            "unknown shortcut `{shortcut}`; use one of @yearly, @annually, @monthly, @weekly, \
             @daily, @midnight, @hourly"
        )),
    }
}

fn field_count_reason(count: usize) -> String {
    match count {
        6 | 7 => format!(
            "it has {count} fields, but a schedule is a standard 5-field crontab line (minute \
             hour day-of-month month day-of-week) without a seconds or year field"
        ),
        _ => format!(
            "it has {count} field{}, expected 5: minute hour day-of-month month day-of-week, \
             as in `*/30 * * * *`",
            if count == 1 { "" } else { "s" }
        ),
    }
}

/// Parses one field: a comma list of `*`, `N`, `N-M`, `*/S` or `N-M/S`.
fn parse_field(text: &str, spec: &FieldSpec) -> Result<FieldSet, String> {
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!(
                "the {} field `{text}` has an empty list item",
                spec.name
            ));
        }
        let mut pieces = item.split('/');
        let range_text = pieces.next().unwrap_or_default();
        let step = match (pieces.next(), pieces.next()) {
            (None, _) => None,
            (Some(step), None) => Some(parse_step(step, item, spec)?),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "`{item}` in the {} field has more than one `/`",
                    spec.name
                ));
            }
        };
        let (low, high) = if range_text == "*" {
            (spec.min, spec.max)
        } else if let Some((from, to)) = range_text.split_once('-') {
            let low = parse_value(from, spec)?;
            let mut high = parse_value(to, spec)?;
            // `FRI-SUN` is unambiguous: a named Sunday that ends a range is day 7.
            if spec.name == DAY_OF_WEEK.name && to.eq_ignore_ascii_case("SUN") && from != to {
                high = 7;
            }
            if low > high {
                return Err(format!(
                    "the range `{range_text}` in the {} field runs backwards; write the lower \
                     value first or list the values",
                    spec.name
                ));
            }
            (low, high)
        } else {
            let value = parse_value(range_text, spec)?;
            if let Some(step) = step {
                return Err(format!(
                    "`{item}` in the {} field: a step needs a range or `*`, as in \
                     `{value}-{}/{step}` or `*/{step}`",
                    spec.name, spec.max
                ));
            }
            (value, value)
        };
        let step = step.unwrap_or(1);
        for value in (low..=high).step_by(step as usize) {
            bits |= 1 << value;
        }
    }
    Ok(FieldSet {
        bits,
        starts_with_star: text.starts_with('*'),
    })
}

fn parse_step(text: &str, item: &str, spec: &FieldSpec) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(step) if step >= 1 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(step),
        _ => Err(format!(
            "the step in `{item}` ({} field) must be a whole number of at least 1",
            spec.name
        )),
    }
}

/// One number or name of a field.
fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(value) if (spec.min..=spec.max).contains(&value) => Ok(value),
            _ => Err(format!(
                "`{text}` is out of range for the {} field (allowed: {})",
                spec.name, spec.allowed
            )),
        };
    }
    spec.names
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .map(|index| spec.names_start + index as u32)
        .ok_or_else(|| {
            format!(
                "`{text}` is not a valid {} (allowed: {})",
                spec.name, spec.allowed
            )
        })
}

/// `*` when every value of the field is allowed, else the numbers as a comma list.
fn render_numbers(bits: u64, spec: &FieldSpec) -> String {
    let values: Vec<u32> = (spec.min..=spec.max)
        .filter(|v| bits & (1 << v) != 0)
        .collect();
    if values.len() as u32 == spec.max - spec.min + 1 {
        return "*".to_string();
    }
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Weekdays 0-6 as the names the cron crate reads, or `*` for all seven.
fn render_weekdays(bits: u64) -> String {
    if bits & 0x7f == 0x7f {
        return "*".to_string();
    }
    WEEKDAY_NAMES
        .iter()
        .enumerate()
        .filter(|(day, _)| bits & (1 << day) != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

/// Whether any selected day of month exists in any selected month (Feb 29 counts).
fn some_day_exists(days: FieldSet, months: FieldSet) -> bool {
    (1..=12u32)
        .filter(|month| months.contains(*month))
        .any(|month| (1..=LONGEST_MONTH[month as usize - 1]).any(|day| days.contains(day)))
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Duration, NaiveDate, TimeZone, Timelike};

    use super::*;

    /// `2024-02-27 10:30` (a Tuesday in a leap year) as UTC.
    fn at(text: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .unwrap_or_else(|error| panic!("bad test time {text:?}: {error}"));
        Utc.from_utc_datetime(&naive)
    }

    fn next_times(schedule: &Schedule, start: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut times = Vec::with_capacity(count);
        let mut cursor = start;
        for _ in 0..count {
            let Some(next) = schedule.next_after(cursor) else {
                break;
            };
            times.push(next);
            cursor = next;
        }
        times
    }

    #[test]
    fn standard_crontab_lines_fire_at_the_times_vixie_cron_would() {
        // Start: Tuesday 2024-02-27 10:30 (2024 is a leap year).
        let start = "2024-02-27 10:30";
        let cases: &[(&str, &[&str])] = &[
            (
                "*/15 * * * *",
                &["2024-02-27 10:45", "2024-02-27 11:00", "2024-02-27 11:15"],
            ),
            // The start itself matches; the next time is strictly after it.
            ("30 10 * * *", &["2024-02-28 10:30", "2024-02-29 10:30"]),
            // Weekdays: Wed, Thu (Feb 29), Fri, then Monday.
            (
                "0 9 * * 1-5",
                &[
                    "2024-02-28 09:00",
                    "2024-02-29 09:00",
                    "2024-03-01 09:00",
                    "2024-03-04 09:00",
                ],
            ),
            ("0 9 * * MON-FRI", &["2024-02-28 09:00", "2024-02-29 09:00"]),
            // Sunday as 0, 7, a name in either case.
            ("0 0 * * 0", &["2024-03-03 00:00", "2024-03-10 00:00"]),
            ("0 0 * * 7", &["2024-03-03 00:00", "2024-03-10 00:00"]),
            ("0 0 * * SUN", &["2024-03-03 00:00", "2024-03-10 00:00"]),
            ("0 0 * * sun", &["2024-03-03 00:00", "2024-03-10 00:00"]),
            // Ranges reaching Sunday at the end of the week.
            (
                "0 12 * * 5-7",
                &[
                    "2024-03-01 12:00",
                    "2024-03-02 12:00",
                    "2024-03-03 12:00",
                    "2024-03-08 12:00",
                ],
            ),
            (
                "0 12 * * FRI-SUN",
                &["2024-03-01 12:00", "2024-03-02 12:00", "2024-03-03 12:00"],
            ),
            // 0-6 and 0-7 are every day.
            (
                "0 0 * * 0-6",
                &["2024-02-28 00:00", "2024-02-29 00:00", "2024-03-01 00:00"],
            ),
            ("0 0 * * 0-7", &["2024-02-28 00:00", "2024-02-29 00:00"]),
            // Steps over weekdays: */2 is Sun, Tue, Thu, Sat; 1-5/2 is Mon, Wed, Fri.
            (
                "0 0 * * */2",
                &[
                    "2024-02-29 00:00",
                    "2024-03-02 00:00",
                    "2024-03-03 00:00",
                    "2024-03-05 00:00",
                ],
            ),
            (
                "0 0 * * 1-5/2",
                &["2024-02-28 00:00", "2024-03-01 00:00", "2024-03-04 00:00"],
            ),
            // Lists and ranges of hours and minutes.
            (
                "5,35 8-9 * * *",
                &[
                    "2024-02-28 08:05",
                    "2024-02-28 08:35",
                    "2024-02-28 09:05",
                    "2024-02-28 09:35",
                    "2024-02-29 08:05",
                ],
            ),
            ("0 */6 * * *", &["2024-02-27 12:00", "2024-02-27 18:00"]),
            (
                "10-20/5 10 * * *",
                &["2024-02-28 10:10", "2024-02-28 10:15"],
            ),
            // Both day fields restricted: either one matches (13th OR Friday).
            (
                "0 12 13 * 5",
                &[
                    "2024-03-01 12:00",
                    "2024-03-08 12:00",
                    "2024-03-13 12:00",
                    "2024-03-15 12:00",
                ],
            ),
            (
                "0 12 15 * mon",
                &[
                    "2024-03-04 12:00",
                    "2024-03-11 12:00",
                    "2024-03-15 12:00",
                    "2024-03-18 12:00",
                ],
            ),
            // A day field starting with `*` makes vixie AND them: odd days that are Fridays.
            (
                "0 12 */2 * 5",
                &["2024-03-01 12:00", "2024-03-15 12:00", "2024-03-29 12:00"],
            ),
            // Restricted but complete weekday field ORs with the 1st: every day.
            ("0 0 1 * 0-6", &["2024-02-28 00:00", "2024-02-29 00:00"]),
            // ORed, with a day of month that never occurs in those months: only Mondays fire.
            ("0 0 31 2,4 1", &["2024-04-01 00:00", "2024-04-08 00:00"]),
            // Month-length handling.
            ("0 0 29 2 *", &["2024-02-29 00:00", "2028-02-29 00:00"]),
            (
                "0 0 31 * *",
                &[
                    "2024-03-31 00:00",
                    "2024-05-31 00:00",
                    "2024-07-31 00:00",
                    "2024-08-31 00:00",
                ],
            ),
            ("0 0 30 * *", &["2024-03-30 00:00", "2024-04-30 00:00"]),
            // Month names and steps over months.
            ("0 0 1 jan,Jul *", &["2024-07-01 00:00", "2025-01-01 00:00"]),
            (
                "0 6 1 mar-may/2 *",
                &["2024-03-01 06:00", "2024-05-01 06:00", "2025-03-01 06:00"],
            ),
            ("59 23 31 12 *", &["2024-12-31 23:59", "2025-12-31 23:59"]),
            // Shortcuts.
            ("@hourly", &["2024-02-27 11:00", "2024-02-27 12:00"]),
            ("@daily", &["2024-02-28 00:00", "2024-02-29 00:00"]),
            ("@midnight", &["2024-02-28 00:00"]),
            ("@weekly", &["2024-03-03 00:00", "2024-03-10 00:00"]),
            ("@monthly", &["2024-03-01 00:00", "2024-04-01 00:00"]),
            ("@yearly", &["2025-01-01 00:00", "2026-01-01 00:00"]),
            ("@annually", &["2025-01-01 00:00"]),
            // Surrounding and repeated whitespace is ignored.
            ("  0  9 * *   1-5 ", &["2024-02-28 09:00"]),
        ];
        for (line, expected) in cases {
            let schedule = Schedule::parse(line)
                .unwrap_or_else(|error| panic!("{line:?} should parse: {error}"));
            let expected: Vec<DateTime<Utc>> = expected.iter().map(|text| at(text)).collect();
            assert_eq!(
                next_times(&schedule, at(start), expected.len()),
                expected,
                "next times of {line:?} after {start}"
            );
        }
    }

    #[test]
    fn next_after_skips_to_the_next_minute_from_a_time_with_seconds() {
        let schedule = Schedule::parse("* * * * *").unwrap();
        let start = at("2024-02-27 10:30") + Duration::milliseconds(30_500);
        assert_eq!(schedule.next_after(start), Some(at("2024-02-27 10:31")));
        let just_before = at("2024-02-27 10:31") - Duration::milliseconds(1);
        assert_eq!(
            schedule.next_after(just_before),
            Some(at("2024-02-27 10:31"))
        );
    }

    #[test]
    fn malformed_or_unsupported_lines_are_rejected_with_a_helpful_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("   ", "empty"),
            ("* * * * * *", "6 fields"),
            ("0 0 * * * * 2024", "7 fields"),
            ("* * * *", "4 fields"),
            ("*", "1 field,"),
            ("60 * * * *", "out of range for the minute field"),
            ("-1 * * * *", "not a valid minute"),
            ("* 24 * * *", "out of range for the hour field"),
            ("* * 0 * *", "out of range for the day-of-month field"),
            ("* * 32 * *", "out of range for the day-of-month field"),
            ("* * * 0 *", "out of range for the month field"),
            ("* * * 13 *", "out of range for the month field"),
            ("* * * * 8", "out of range for the day-of-week field"),
            ("99999999999 * * * *", "out of range for the minute field"),
            ("*/0 * * * *", "at least 1"),
            ("*/x * * * *", "at least 1"),
            ("*/ * * * *", "at least 1"),
            ("5/15 * * * *", "a step needs a range"),
            ("*/5/2 * * * *", "more than one `/`"),
            ("10-5 * * * *", "runs backwards"),
            ("1-2-3 * * * *", "not a valid minute"),
            ("1,,2 * * * *", "empty list item"),
            ("1, * * * *", "empty list item"),
            ("* * * foo *", "not a valid month"),
            ("* * * * MONDAY", "not a valid day-of-week"),
            ("* * * * MON-FRIDAY", "not a valid day-of-week"),
            ("* * * * SAT-MON", "runs backwards"),
            ("MON * * * *", "not a valid minute"),
            ("? * * * *", "not a valid minute"),
            ("* * ? * *", "not a valid day-of-month"),
            ("* * L * *", "not a valid day-of-month"),
            ("* * * * 5#3", "not a valid day-of-week"),
            ("a b c d e", "not a valid minute"),
            ("@reboot", "means nothing for a polling schedule"),
            ("@every 5m", "unknown shortcut"),
            ("@fortnightly", "unknown shortcut"),
            ("0 0 30 2 *", "never fires"),
            ("0 0 31 4,6,9,11 *", "never fires"),
            ("0 0 31 2 */2", "never fires"),
        ];
        for (line, reason_part) in cases {
            let error = Schedule::parse(line)
                .err()
                .unwrap_or_else(|| panic!("{line:?} should be rejected"));
            assert_eq!(error.line, *line);
            assert!(
                error.reason.contains(reason_part),
                "reason for {line:?} should mention {reason_part:?}, got {:?}",
                error.reason
            );
        }
    }

    #[test]
    fn as_str_returns_the_line_as_written() {
        let schedule = Schedule::parse(" */5 * * * * ").unwrap();
        assert_eq!(schedule.as_str(), " */5 * * * * ");
        assert_eq!(schedule, Schedule::parse(" */5 * * * * ").unwrap());
        assert_ne!(schedule, Schedule::parse("*/5 * * * *").unwrap());
    }

    /// Brute-force vixie cron: the first matching minute strictly after `after`, scanning day by
    /// day. Independent of the cron crate, it checks the translation.
    fn brute_force_next(fields: &CrontabFields, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let first_minute = after
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .expect("valid time")
            + Duration::minutes(1);
        let mut day: NaiveDate = first_minute.date_naive();
        // The cron crate's horizon: it knows no year after 2100.
        let last_day = NaiveDate::from_ymd_opt(2100, 12, 31).expect("valid date");
        while day <= last_day {
            let day_of_month_ok = fields.days.contains(day.day());
            let weekday_ok = fields
                .weekdays
                .contains(day.weekday().num_days_from_sunday());
            let day_ok = if fields.days_ored() {
                day_of_month_ok || weekday_ok
            } else {
                day_of_month_ok && weekday_ok
            };
            if day_ok && fields.months.contains(day.month()) {
                for hour in (0..24).filter(|h| fields.hours.contains(*h)) {
                    for minute in (0..60).filter(|m| fields.minutes.contains(*m)) {
                        let candidate =
                            Utc.from_utc_datetime(&day.and_hms_opt(hour, minute, 0).unwrap());
                        if candidate >= first_minute {
                            return Some(candidate);
                        }
                    }
                }
            }
            day = day.succ_opt()?;
        }
        None
    }

    #[test]
    fn translation_agrees_with_a_brute_force_scan_of_the_same_fields() {
        let lines = [
            "* * * * *",
            "*/7 * * * *",
            "0 */5 * * *",
            "15 3 * * *",
            "0 0 1 * *",
            "0 0 1,15 * 3",
            "30 6 * * 1-5",
            "30 6 * * 0,6",
            "0 12 */3 * 2",
            "0 12 2-30/7 * 2",
            "0 0 13 * 5",
            "0 0 29 2 *",
            "0 0 29 2 1",
            "0 0 31 * 0",
            "0 0 * 2 7",
            "0 0 * */3 6",
            "45 23 31 12 *",
            "0 8-18/2 * jan-mar,oct-dec mon,wed,fri",
            "@weekly",
            "@monthly",
        ];
        let starts = [
            "2024-02-27 10:30",
            "2024-02-28 23:59",
            "2024-12-31 23:45",
            "2025-02-28 00:00",
            "2026-11-27 23:58",
        ];
        for line in lines {
            let Ok(fields) = parse_fields(line) else {
                assert!(Schedule::parse(line).is_err(), "{line:?} parsed");
                continue;
            };
            let schedule = Schedule::parse(line).unwrap();
            for start in starts {
                let mut cursor = at(start) + Duration::seconds(17);
                for _ in 0..6 {
                    let expected = brute_force_next(&fields, cursor);
                    let actual = schedule.next_after(cursor);
                    assert_eq!(actual, expected, "{line:?} after {cursor}");
                    let Some(next) = actual else { break };
                    cursor = next;
                }
            }
        }
    }

    /// One random list item of a field: `*`, `*/s`, `a`, `a-b` or `a-b/s` within `min..=max`.
    fn field_item(min: u32, max: u32) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        (0..5u8, min..=max, min..=max, 1..=(max - min + 1)).prop_map(move |(form, a, b, step)| {
            let (low, high) = (a.min(b), a.max(b));
            match form {
                0 => "*".to_string(),
                1 => format!("*/{step}"),
                2 => low.to_string(),
                3 => format!("{low}-{high}"),
                _ => format!("{low}-{high}/{step}"),
            }
        })
    }

    fn field_text(min: u32, max: u32) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        proptest::collection::vec(field_item(min, max), 1..=3).prop_map(|items| items.join(","))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn random_crontab_lines_agree_with_the_brute_force_scan(
            minute in field_text(0, 59),
            hour in field_text(0, 23),
            day in field_text(1, 31),
            month in field_text(1, 12),
            weekday in field_text(0, 7),
            start_minutes in 0i64..(60 * 24 * 365 * 4),
        ) {
            let line = format!("{minute} {hour} {day} {month} {weekday}");
            let start = at("2024-01-01 00:00") + Duration::minutes(start_minutes);
            match parse_fields(&line) {
                Ok(fields) => {
                    let schedule = Schedule::parse(&line).unwrap();
                    let mut cursor = start;
                    for _ in 0..3 {
                        let expected = brute_force_next(&fields, cursor);
                        proptest::prop_assert_eq!(schedule.next_after(cursor), expected, "{} after {}", line, cursor);
                        let Some(next) = expected else { break };
                        cursor = next;
                    }
                }
                // Only a day of month missing from every chosen month may be refused.
                Err(reason) => proptest::prop_assert!(reason.contains("never fires"), "{}: {}", line, reason),
            }
        }
    }
}
