//! Whether the scheduler polls a source at all, and if not, why: the one place that says so
//! for the status page and `tradefeed sources`.

use super::SourceState;

/// The SQL condition, on a `sources` row, that the scheduler polls the source: the rule
/// [`Idle::of`] decides in Rust (`None`: polled), for queries that filter on it. A macro so
/// that queries can `concat!` it into one `&'static str`.
macro_rules! polled_sql {
    () => {
        "(in_config = 1 AND enabled = 1 AND disabled_reason IS NULL)"
    };
}
pub(super) use polled_sql;

/// Why the scheduler leaves a source alone, whatever due time is stored for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idle {
    /// No longer listed in the config (its stories stay).
    RemovedFromConfig,
    /// `enabled = false` in the config.
    Disabled,
    /// Stopped by tradefeed (a `410 Gone`): see [`SourceState::disabled_reason`].
    Stopped,
}

impl Idle {
    /// Why a source is not polled, from what decides it (`None`: it is polled). When more
    /// than one reason holds, the operator's own comes first: removed, then disabled, then
    /// stopped.
    pub fn of(in_config: bool, enabled: bool, stopped: bool) -> Option<Idle> {
        if !in_config {
            Some(Idle::RemovedFromConfig)
        } else if !enabled {
            Some(Idle::Disabled)
        } else if stopped {
            Some(Idle::Stopped)
        } else {
            None
        }
    }

    /// The reason in a few words, as the status page and `tradefeed sources` show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Idle::RemovedFromConfig => "removed from config",
            Idle::Disabled => "disabled",
            Idle::Stopped => "stopped",
        }
    }
}

impl SourceState {
    /// Why the scheduler does not poll this source, as stored (`None`: it does).
    pub fn idle_because(&self) -> Option<Idle> {
        Idle::of(self.in_config, self.enabled, self.disabled_reason.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_idle_for_the_first_reason_that_holds() {
        use Idle::*;
        let cases = [
            (true, true, false, None),
            (true, true, true, Some(Stopped)),
            (true, false, false, Some(Disabled)),
            (true, false, true, Some(Disabled)),
            (false, true, false, Some(RemovedFromConfig)),
            (false, true, true, Some(RemovedFromConfig)),
            (false, false, false, Some(RemovedFromConfig)),
            (false, false, true, Some(RemovedFromConfig)),
        ];
        for (in_config, enabled, stopped, why) in cases {
            let state = SourceState {
                name: "s".into(),
                url: "http://s.example/feed".into(),
                schedule: "@hourly".into(),
                in_config,
                enabled,
                disabled_reason: stopped.then(|| "410 Gone".into()),
                etag: None,
                last_modified: None,
                next_due: None,
                retry_not_before: None,
                consecutive_failures: 0,
                last_attempt: None,
                last_outcome: None,
                last_error: None,
                last_success: None,
                last_new_entry: None,
                moved_to: None,
                entries: 0,
            };
            let case = (in_config, enabled, stopped);
            assert_eq!(state.idle_because(), why, "{case:?}");
        }
    }

    /// The queries that pick polled sources and [`Idle::of`] say the same of every row.
    #[test]
    fn the_sql_rule_for_a_polled_source_is_the_one_idle_decides() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE sources (in_config INTEGER, enabled INTEGER, disabled_reason TEXT);
             INSERT INTO sources
             SELECT i.v, e.v, CASE WHEN s.v = 1 THEN '410 Gone' END
               FROM (SELECT 0 AS v UNION SELECT 1) i, (SELECT 0 AS v UNION SELECT 1) e,
                    (SELECT 0 AS v UNION SELECT 1) s;",
        )
        .unwrap();
        let rows: Vec<(bool, bool, bool, bool)> = c
            .prepare(concat!(
                "SELECT in_config, enabled, disabled_reason IS NOT NULL, ",
                polled_sql!(),
                " FROM sources"
            ))
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), 8);
        for (in_config, enabled, stopped, polled) in rows {
            let case = (in_config, enabled, stopped);
            assert_eq!(
                polled,
                Idle::of(in_config, enabled, stopped).is_none(),
                "{case:?}"
            );
        }
    }
}
