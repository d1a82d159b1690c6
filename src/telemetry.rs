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
    describe_gauge!("tradefeed_stories", "Stories stored.");
    describe_gauge!("tradefeed_entries", "Entries stored.");
    describe_gauge!("tradefeed_topic_stories", "Stories matching each topic.");
    describe_gauge!(
        "tradefeed_source_consecutive_failures",
        "Failures since the source's last success."
    );
    describe_gauge!(
        "tradefeed_source_last_success_timestamp_seconds",
        "Unix time of the source's last successful poll."
    );
    describe_counter!(
        "tradefeed_config_reloads_total",
        "Config reloads by result (ok, failed)."
    );
    describe_gauge!(
        "tradefeed_config_reload_ok",
        "1 when the last config reload succeeded (or none failed yet), 0 when the daemon runs on an older config."
    );
    describe_counter!(
        "tradefeed_http_requests_total",
        "HTTP requests by route and status."
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

/// Records one HTTP request.
pub fn record_request(route: &str, status: u16) {
    counter!("tradefeed_http_requests_total", "route" => route.to_string(), "status" => status.to_string())
        .increment(1);
}

/// Sets the gauges that describe stored state (called just before rendering).
pub fn set_state(
    stories: u64,
    entries: u64,
    topics: &[(String, u64)],
    sources: &[crate::store::SourceState],
) {
    gauge!("tradefeed_stories").set(stories as f64);
    gauge!("tradefeed_entries").set(entries as f64);
    for (topic, n) in topics {
        gauge!("tradefeed_topic_stories", "topic" => topic.clone()).set(*n as f64);
    }
    for s in sources.iter().filter(|s| s.in_config) {
        gauge!("tradefeed_source_consecutive_failures", "source" => s.name.clone())
            .set(f64::from(s.consecutive_failures));
        if let Some(t) = s.last_success {
            gauge!("tradefeed_source_last_success_timestamp_seconds", "source" => s.name.clone())
                .set(t.timestamp() as f64);
        }
    }
}

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    install().render()
}

/// Keeps histogram memory bounded; call now and then.
pub fn upkeep() {
    install().run_upkeep();
}

/// How often [`upkeep`] should run.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(60);
