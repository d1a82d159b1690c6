//! Prometheus metrics: one process-wide recorder, the metric names in one place, and the
//! helpers the stages call. Rendered by `GET /metrics`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::ingest::PollReport;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Fetch durations from 10 ms to 60 s.
const DURATION_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Installs the recorder once per process (later calls reuse it) and describes every metric.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(
                    "tradefeed_fetch_duration_seconds".into(),
                ),
                DURATION_BUCKETS,
            )
            .expect("bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (e.g. by an embedding program); our handle
        // then renders only what we recorded before, which is still valid output.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        gauge!("tradefeed_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        // Counters of events that may never happen are listed at 0 from the start: a series
        // that only appears at its first event reads as "not exported" to a dashboard, and
        // `rate()` over it misses that first event.
        counter!("tradefeed_http_write_timeouts_total").increment(0);
        for result in ["ok", "failed"] {
            counter!("tradefeed_config_reloads_total", "result" => result).increment(0);
        }
        for result in ["done", "stopped", "failed"] {
            counter!("tradefeed_story_sweeps_total", "result" => result).increment(0);
        }
        gauge!("tradefeed_story_sweeps_running").increment(0.0);
        handle
    })
}

fn describe() {
    describe_counter!(
        "tradefeed_fetches_total",
        "Polls by source and outcome (ok, not_modified, or the error kind)."
    );
    describe_histogram!(
        "tradefeed_fetch_duration_seconds",
        "Wall time of one poll, by outcome."
    );
    describe_counter!(
        "tradefeed_fetch_bytes_total",
        "Feed body bytes received, by source."
    );
    describe_counter!(
        "tradefeed_new_entries_total",
        "Entries stored for the first time, by source."
    );
    describe_counter!(
        "tradefeed_updated_entries_total",
        "Entries updated in place (edited by the publisher), by source."
    );
    describe_counter!("tradefeed_new_stories_total", "Stories created.");
    describe_counter!(
        "tradefeed_cluster_merges_total",
        "Entries folded into an existing story as near-duplicates."
    );
    describe_counter!(
        "tradefeed_unscored_copies_total",
        "New entries the near-duplicate index placed before scoring: scored only if they came \
         to represent their story."
    );
    describe_counter!(
        "tradefeed_config_reloads_total",
        "Config reloads by result (ok, failed)."
    );
    describe_gauge!(
        "tradefeed_config_reload_ok",
        "1 when the last config reload succeeded (or none failed yet), 0 when the daemon runs on an older config."
    );
    describe_gauge!(
        "tradefeed_listen_bind_failed",
        "1 while HTTP is served on an older address because a reload's [server] listen could not be bound."
    );
    describe_counter!(
        "tradefeed_http_requests_total",
        "HTTP requests by route and status."
    );
    describe_counter!(
        "tradefeed_http_write_timeouts_total",
        "HTTP connections closed because a response write made no progress for 30 s (a client \
         that stopped reading)."
    );
    describe_gauge!(
        "tradefeed_story_sweeps_running",
        "1 while stored stories are being re-scored or given new representatives after a \
         reload (never more: one run at a time), 0 otherwise."
    );
    describe_counter!(
        "tradefeed_story_sweeps_total",
        "Runs of the re-scoring and re-picking after reloads, by result (done; stopped by \
         shutdown, left for the next start; failed, logged)."
    );
    describe_gauge!(
        "tradefeed_build_info",
        "Always 1; the version label names the build."
    );
}

/// Records one poll.
pub fn record_poll(report: &PollReport) {
    let source = report.source.clone();
    counter!("tradefeed_fetches_total", "source" => source.clone(), "outcome" => report.outcome.clone())
        .increment(1);
    histogram!("tradefeed_fetch_duration_seconds", "outcome" => report.outcome.clone())
        .record(report.duration.as_secs_f64());
    counter!("tradefeed_fetch_bytes_total", "source" => source.clone()).increment(report.bytes);
    counter!("tradefeed_new_entries_total", "source" => source.clone())
        .increment(report.new_entries as u64);
    counter!("tradefeed_updated_entries_total", "source" => source)
        .increment(report.updated_entries as u64);
    counter!("tradefeed_new_stories_total").increment(report.new_stories as u64);
    counter!("tradefeed_cluster_merges_total").increment(report.near_merges as u64);
    counter!("tradefeed_unscored_copies_total").increment(report.unscored_copies as u64);
}

/// Records a config reload attempt.
pub fn record_reload(ok: bool) {
    counter!("tradefeed_config_reloads_total", "result" => if ok { "ok" } else { "failed" })
        .increment(1);
    gauge!("tradefeed_config_reload_ok").set(if ok { 1.0 } else { 0.0 });
}

/// Records, after an applied reload, whether HTTP is served elsewhere than the config's
/// `[server] listen` says because that address could not be bound.
pub fn record_listen_bind(failed: bool) {
    gauge!("tradefeed_listen_bind_failed").set(if failed { 1.0 } else { 0.0 });
}

/// Records that a run of the re-scoring and re-picking after reloads began.
pub fn sweep_started() {
    gauge!("tradefeed_story_sweeps_running").increment(1.0);
}

/// Records that a run of the re-scoring and re-picking after reloads ended with `result`
/// (`done`, `stopped` or `failed`).
pub fn sweep_ended(result: &'static str) {
    gauge!("tradefeed_story_sweeps_running").decrement(1.0);
    counter!("tradefeed_story_sweeps_total", "result" => result).increment(1);
}

/// Records one HTTP request to `route` (a matched route pattern) answered with `status`.
pub fn record_request(route: String, status: u16) {
    counter!("tradefeed_http_requests_total", "route" => route, "status" => status.to_string())
        .increment(1);
}

/// Records an HTTP connection closed because its client stopped reading a response.
pub fn record_write_timeout() {
    counter!("tradefeed_http_write_timeouts_total").increment(1);
}

/// The Prometheus text of every metric the recorder holds. `/metrics` takes it before it reads
/// the stored state (see [`state_gauges`]), so that a scrape never shows a poll counted whose
/// rows its gauges do not show yet: polls are counted after their commit, so counters taken
/// first are never ahead of the rows read after them. The other way round, a poll committed
/// and counted while the reads ran showed up in the counters but not in the gauges (session
/// 19's "unexplained stale read" in `tests/service.rs`).
pub fn render_recorded() -> String {
    let mut text = install().render();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The text of the stored-state gauges, written here from the rows read for this scrape.
///
/// They are not kept in the process-wide recorder: a series set there stays until the
/// process ends, so a source removed from the config (or renamed) kept its last failure count
/// and success time, and an alert on them kept firing for a source that no longer exists. And
/// a recorder gauge is shared by every store the process serves (tests run several daemons
/// in one process), where a scrape could show another store's entry count.
pub fn state_gauges(state: &StoredState<'_>) -> String {
    let mut text = String::new();
    append_state_gauges(&mut text, state);
    text
}

/// What `/metrics` serves of the stored state while the database has not been read once since
/// the start: the read timestamp at 0, so an alert on its age fires rather than finding no
/// series.
pub fn unread_state_gauges() -> String {
    let mut text = String::new();
    append_read_timestamp(&mut text, 0);
    text
}

fn append_read_timestamp(text: &mut String, read_at: i64) {
    use std::fmt::Write as _;
    let name = "tradefeed_state_read_timestamp_seconds";
    let _ = writeln!(
        text,
        "# HELP {name} When the per-topic and per-source gauges were read from the database; \
         older than the scrape interval means the database could not be read since (0: never).\n\
         # TYPE {name} gauge\n{name} {read_at}"
    );
}

/// The gauge of how long the store's writer has been on its current job (0 while it waits
/// for one): a writer stuck behind another program's lock or a dead disk leaves reads, and so
/// serving, working while no poll can be stored.
pub fn writer_busy_gauge(busy: Option<std::time::Duration>) -> String {
    let name = "tradefeed_store_writer_busy_seconds";
    format!(
        "# HELP {name} How long the database writer has been on its current job (0: waiting \
         for one); minutes mean it is stuck.\n# TYPE {name} gauge\n{name} {}\n",
        busy.map_or(0, |d| d.as_secs())
    )
}

/// What `/metrics` reads from the store at each scrape.
pub struct StoredState<'a> {
    /// Stories stored.
    pub stories: u64,
    /// Entries stored.
    pub entries: u64,
    /// Stories matching each topic that exists now.
    pub topics: &'a [(String, u64)],
    /// Every source row; those out of the config are left out.
    pub sources: &'a [crate::store::SourceState],
    /// When these were read (Unix seconds).
    pub read_at: i64,
}

fn append_state_gauges(text: &mut String, state: &StoredState<'_>) {
    use std::fmt::Write as _;
    let family = |text: &mut String, name: &str, help: &str| {
        let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    // Rendered with the gauges it dates: while the database cannot be read, the last gauges
    // read are served again, and this says how old they are.
    append_read_timestamp(text, state.read_at);
    family(text, "tradefeed_stories", "Stories stored.");
    let _ = writeln!(text, "tradefeed_stories {}", state.stories);
    family(text, "tradefeed_entries", "Entries stored.");
    let _ = writeln!(text, "tradefeed_entries {}", state.entries);
    if !state.topics.is_empty() {
        family(
            text,
            "tradefeed_topic_stories",
            "Stories matching each topic.",
        );
        for (topic, n) in state.topics {
            let _ = writeln!(
                text,
                "tradefeed_topic_stories{{topic=\"{}\"}} {n}",
                label_value(topic)
            );
        }
    }
    // A source turned off in the config (`enabled = false`) is left out like a removed one:
    // the operator stopped it, and an alert on its failures would fire for nothing. One
    // tradefeed stopped (a 410) stays: that is for the operator to act on.
    let configured = || state.sources.iter().filter(|s| s.in_config && s.enabled);
    if configured().next().is_some() {
        family(
            text,
            "tradefeed_source_consecutive_failures",
            "Failures since the source's last success.",
        );
        for s in configured() {
            let _ = writeln!(
                text,
                "tradefeed_source_consecutive_failures{{source=\"{}\"}} {}",
                label_value(&s.name),
                s.consecutive_failures
            );
        }
    }
    if configured().next().is_some() {
        family(
            text,
            "tradefeed_source_moved_permanently",
            "1 once the source's URL has answered with a permanent redirect (301/308), until the \
             config gives it another URL.",
        );
        for s in configured() {
            let _ = writeln!(
                text,
                "tradefeed_source_moved_permanently{{source=\"{}\"}} {}",
                label_value(&s.name),
                u8::from(s.moved_to.is_some())
            );
        }
    }
    if configured().any(|s| s.last_success.is_some()) {
        family(
            text,
            "tradefeed_source_last_success_timestamp_seconds",
            "Unix time of the source's last successful poll.",
        );
        for s in configured() {
            if let Some(t) = s.last_success {
                let _ = writeln!(
                    text,
                    "tradefeed_source_last_success_timestamp_seconds{{source=\"{}\"}} {}",
                    label_value(&s.name),
                    t.timestamp()
                );
            }
        }
    }
}

/// A label value escaped as the text format requires: backslash, double quote and line feed.
fn label_value(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut escaped = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    std::borrow::Cow::Owned(escaped)
}

/// Keeps histogram memory bounded; call now and then.
pub fn upkeep() {
    install().run_upkeep();
}

/// How often [`upkeep`] should run.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_as_the_text_format_requires() {
        assert_eq!(label_value("Reuters Trade"), "Reuters Trade");
        assert_eq!(label_value("a \"b\" c\\d\ne"), "a \\\"b\\\" c\\\\d\\ne");
    }
}
