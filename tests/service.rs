//! The daemon as a long-running service: metrics and search.

mod common;

use std::time::Duration;

use common::{FeedServer, get_text, start_daemon, stop_daemon, write_config};
use tradefeed::app::{self, Pipeline};
use tradefeed::config::Config;

/// Checks the Prometheus text exposition format line by line.
fn assert_prometheus_text(text: &str) {
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                "bad comment line {line:?}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line:?}"));
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "bad value in {line:?}"
        );
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels in {line:?}");
        }
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text_and_show_the_fetches() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("MetricsA", server.url("a.xml")),
            ("Broken", server.url("nope.xml")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    let (base, cancel, handle) = start_daemon(config).await;
    server
        .wait_for_hits("nope.xml", 1, Duration::from_secs(10))
        .await;
    server
        .wait_for_hits("a.xml", 1, Duration::from_secs(10))
        .await;
    assert_eq!(get_text(&format!("{base}/healthz")).await.0, 200);
    // The poll is recorded just after the request is answered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let (status, metrics) = get_text(&format!("{base}/metrics")).await;
        assert_eq!(status, 200);
        // A scrape takes the counters before it reads the database, so once the poll is
        // counted its rows are in the gauges of the same scrape; the gauges are still waited
        // for, as the state's three reads are not one snapshot.
        if metrics.contains("tradefeed_fetches_total{source=\"Broken\"")
            && metrics.contains("tradefeed_fetches_total{source=\"MetricsA\",outcome=\"ok\"}")
            && metrics.contains("tradefeed_topic_stories{topic=\"trade-policy\"} 1")
            && metrics.contains("\ntradefeed_entries 1\n")
        {
            break metrics;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_prometheus_text(&metrics);
    for expected in [
        "tradefeed_fetches_total{source=\"MetricsA\",outcome=\"ok\"}",
        "tradefeed_fetches_total{source=\"Broken\",outcome=\"http_status\"}",
        "tradefeed_fetch_duration_seconds_bucket",
        "tradefeed_new_entries_total{source=\"MetricsA\"} 1",
        // A process-wide counter: other tests in this binary fold copies in parallel.
        "tradefeed_unscored_copies_total ",
        "tradefeed_source_consecutive_failures{source=\"Broken\"} 1",
        "tradefeed_build_info{version=",
        "tradefeed_http_requests_total{route=\"/healthz\",status=\"200\"}",
        "tradefeed_topic_stories{topic=\"trade-policy\"} 1",
        "\ntradefeed_stories 1\n",
        "# TYPE tradefeed_entries gauge\ntradefeed_entries 1\n",
        "tradefeed_state_read_timestamp_seconds ",
        // Counters of events that may not have happened yet are listed from the start.
        "tradefeed_http_write_timeouts_total ",
        "tradefeed_config_reloads_total{result=\"failed\"} ",
        "tradefeed_story_sweeps_total{result=\"stopped\"} ",
        "tradefeed_story_sweeps_running ",
    ] {
        assert!(metrics.contains(expected), "missing {expected}:\n{metrics}");
    }
    stop_daemon(cancel, handle).await;
}

/// A source removed from the config (or renamed) loses its per-source gauges at once: an
/// alert on its failure count must not keep firing for a source that no longer exists.
/// Two daemons in one process see what a live reload sees: the metrics recorder is
/// process-wide.
#[tokio::test]
async fn a_source_removed_from_the_config_leaves_the_per_source_gauges() {
    let server = FeedServer::start().await;
    server.put("kept.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let both = [
        ("GaugeKept", server.url("kept.xml")),
        ("GaugeDropped", server.url("missing.xml")),
    ];
    let gauges = |metrics: &str, source: &str| -> Vec<String> {
        metrics
            .lines()
            .filter(|l| l.starts_with("tradefeed_source_") && l.contains(source))
            .map(str::to_string)
            .collect()
    };
    // A polled source has three: consecutive failures, last success and moved permanently.
    let scrape_when_polled = |base: String| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, metrics) = get_text(&format!("{base}/metrics")).await;
            assert_eq!(status, 200);
            if metrics
                .contains("tradefeed_source_last_success_timestamp_seconds{source=\"GaugeKept\"}")
                && metrics.contains("tradefeed_fetches_total{source=\"GaugeKept\"")
            {
                assert_prometheus_text(&metrics);
                return metrics;
            }
            assert!(tokio::time::Instant::now() < deadline, "{metrics}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };

    let path = write_config(dir.path(), &both, "");
    let (base, cancel, handle) = start_daemon(Config::load(&path).unwrap()).await;
    server
        .wait_for_hits("missing.xml", 1, Duration::from_secs(10))
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let metrics = loop {
        let metrics = scrape_when_polled(base.clone()).await;
        if metrics.contains("tradefeed_source_consecutive_failures{source=\"GaugeDropped\"} 1") {
            break metrics;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(gauges(&metrics, "GaugeKept").len(), 3, "{metrics}");
    stop_daemon(cancel, handle).await;

    write_config(dir.path(), &both[..1], "");
    let (base, cancel, handle) = start_daemon(Config::load(&path).unwrap()).await;
    let metrics = scrape_when_polled(base).await;
    stop_daemon(cancel, handle).await;
    assert_eq!(gauges(&metrics, "GaugeKept").len(), 3, "{metrics}");
    assert_eq!(gauges(&metrics, "GaugeDropped").len(), 0, "{metrics}");
    // Counters are cumulative: the removed source's polls stay counted until a restart.
    assert!(
        metrics.contains("tradefeed_fetches_total{source=\"GaugeDropped\""),
        "{metrics}"
    );

    // Back in the config but turned off (`enabled = false`): no gauges either, so an alert on
    // its failures does not fire for a source the operator stopped.
    let path = write_config(dir.path(), &both, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let missing = format!("url = \"{}\"\n", server.url("missing.xml"));
    std::fs::write(
        &path,
        common::replaced(&text, &missing, &format!("{missing}enabled = false\n")),
    )
    .unwrap();
    let (base, cancel, handle) = start_daemon(Config::load(&path).unwrap()).await;
    let metrics = scrape_when_polled(base).await;
    stop_daemon(cancel, handle).await;
    assert_eq!(gauges(&metrics, "GaugeKept").len(), 3, "{metrics}");
    assert_eq!(gauges(&metrics, "GaugeDropped").len(), 0, "{metrics}");
}

#[tokio::test]
async fn search_finds_stories_by_stemmed_words_in_feeds_and_on_the_status_page() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    server.put("b.xml", common::trade_deal_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[("A", server.url("a.xml")), ("B", server.url("b.xml"))],
        "",
    );
    let config = Config::load(&path).unwrap();
    let pipeline = Pipeline::start(&config).await.unwrap();
    app::fetch_once(&pipeline, config.sources.clone(), 4).await;
    pipeline.store.close().await;
    drop(pipeline);
    let (base, cancel, handle) = start_daemon(config).await;

    let titles = |body: &str| -> Vec<String> {
        feed_rs::parser::parse(body.as_bytes())
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.title.unwrap().content)
            .collect()
    };
    let (_, steel) = get_text(&format!("{base}/feeds/all.atom?q=steel")).await;
    assert_eq!(
        titles(&steel),
        ["EU imposes anti-dumping duties on Chinese steel"]
    );
    // Stemming: "agreements" finds "agreement"; case does not matter.
    let (_, deal) = get_text(&format!("{base}/feeds/all.json?q=Agreements")).await;
    assert_eq!(titles(&deal), ["Canada and UK sign trade continuity deal"]);
    // FTS syntax in the query is taken as plain words, never an error.
    let (status, odd) = get_text(&format!("{base}/feeds/all.rss?q=%22steel%20OR%20(NEAR")).await;
    assert_eq!(status, 200);
    assert!(titles(&odd).is_empty());
    let (_, page) = get_text(&format!("{base}/?q=steel")).await;
    assert!(page.contains("EU imposes anti-dumping duties on Chinese steel"));
    assert!(!page.contains("Canada and UK sign"));
    // Relative links and form action: the page works behind a proxy that serves it under a
    // path (`https://example.org/tf/`), where `/feeds/...` would leave that path.
    assert!(
        page.contains("<a href=\"feeds/all.atom?q=steel\">"),
        "offers a subscription: {page}"
    );
    assert!(page.contains("action=\"./\""), "{page}");
    assert!(
        !page.contains("href=\"/") && !page.contains("action=\"/"),
        "{page}"
    );
    // A reader given the search page's address finds that search's feeds.
    assert!(
        page.contains(
            "<link rel=\"alternate\" type=\"application/atom+xml\" \
             title=\"tradefeed: “steel” (Atom)\" href=\"feeds/all.atom?q=steel\">"
        ),
        "{page}"
    );
    assert_eq!(page.matches("<link rel=\"alternate\"").count(), 3, "{page}");

    // And given the status page's, the topics' feeds, the default topic's first: as a feed
    // reader's autodiscovery (here `discover`'s) reads them.
    // Off the runtime's thread, which serves the daemon meanwhile.
    let mut discover = common::tradefeed_command(&path, &["discover", &format!("{base}/")]);
    let o = tokio::task::spawn_blocking(move || discover.output().unwrap())
        .await
        .unwrap();
    let listed = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{listed}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let first: Vec<&str> = listed.lines().take(3).collect();
    assert_eq!(
        first,
        [
            format!("{base}/feeds/trade-policy.atom (Atom \"tradefeed: trade-policy (Atom)\")"),
            format!("{base}/feeds/trade-policy.rss (RSS \"tradefeed: trade-policy (RSS)\")"),
            format!(
                "{base}/feeds/trade-policy.json (JSON Feed \"tradefeed: trade-policy (JSON Feed)\")"
            ),
        ],
        "{listed}"
    );
    assert!(
        listed.contains(&format!("{base}/feeds/all.atom ")),
        "{listed}"
    );
    stop_daemon(cancel, handle).await;
}

/// The cells of the status page's row for `source` in its sources table.
fn source_row_cells(page: &str, source: &str) -> Vec<String> {
    let table = &page[page.find("<h2>Sources</h2>").expect("a sources table")..];
    let start = table
        .find(&format!("<tr><td>{source}</td>"))
        .unwrap_or_else(|| panic!("no row for {source}: {table}"));
    let row = &table[start..start + table[start..].find("</tr>").unwrap()];
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let inner = &cell[cell.find('>').unwrap() + 1..];
            inner[..inner.find("</td>").unwrap()].to_string()
        })
        .collect()
}

/// A source removed from the config that holds no entries (it never stored any) is not listed
/// as "removed from config" for ever: only removed sources whose stories are still held are.
#[tokio::test]
async fn a_removed_source_that_stored_nothing_is_no_longer_listed() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let both = [
        ("Active", server.url("a.xml")),
        ("NeverStored", server.url("missing.xml")),
    ];
    let path = write_config(dir.path(), &both, "");
    let config = Config::load(&path).unwrap();
    let pipeline = Pipeline::start(&config).await.unwrap();
    app::fetch_once(&pipeline, config.sources.clone(), 2).await;
    pipeline.store.close().await;
    drop(pipeline);

    write_config(dir.path(), &both[..1], "");
    let (base, cancel, handle) = start_daemon(Config::load(&path).unwrap()).await;
    let (status, page) = get_text(&format!("{base}/")).await;
    assert_eq!(status, 200);
    stop_daemon(cancel, handle).await;
    assert!(
        page.contains("Active") && !page.contains("NeverStored"),
        "{page}"
    );
    let table = common::tradefeed_command(&path, &["sources"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(
        table.contains("Active") && !table.contains("NeverStored"),
        "{table}"
    );
}

/// A source the scheduler will not poll (removed from the config, disabled, or stopped by a
/// 410) has no next due time: the status page and `tradefeed sources` say why instead, and
/// give the same reason when more than one holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_that_will_not_be_polled_show_why_instead_of_a_next_due_time() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    server.put("off.xml", common::trade_deal_feed());
    server.put("old.xml", common::trade_deal_feed());
    for gone in ["gone.xml", "dead.xml"] {
        server.put(
            gone,
            common::Resource {
                status: 410,
                ..common::Resource::feed("gone")
            },
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let sources = [
        ("Active", server.url("a.xml")),
        ("Dead", server.url("dead.xml")),
        ("Gone", server.url("gone.xml")),
        ("Off", server.url("off.xml")),
        ("Old", server.url("old.xml")),
    ];
    // One pass with all five polled: each has a next due time stored.
    let path = write_config(dir.path(), &sources, "");
    let config = Config::load(&path).unwrap();
    let pipeline = Pipeline::start(&config).await.unwrap();
    app::fetch_once(&pipeline, config.sources.clone(), 5).await;
    for name in ["Active", "Dead", "Gone", "Off", "Old"] {
        let state = pipeline.store.source_state(name).await.unwrap().unwrap();
        assert!(state.next_due.is_some(), "{name} has a due time stored");
    }
    pipeline.store.close().await;
    drop(pipeline);

    // Then Old leaves the config, and Off and Dead (stopped by its 410) are disabled in it.
    write_config(dir.path(), &sources[..4], "");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for url in [server.url("off.xml"), server.url("dead.xml")] {
        text = common::replaced(
            &text,
            &format!("url = \"{url}\"\n"),
            &format!("url = \"{url}\"\nenabled = false\n"),
        );
    }
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    assert!(!config.sources[1].enabled && !config.sources[3].enabled);

    let (base, cancel, handle) = start_daemon(config).await;
    let (status, page) = get_text(&format!("{base}/")).await;
    assert_eq!(status, 200);
    stop_daemon(cancel, handle).await;
    // Name, status, last success, next due, …
    let due = |name: &str| source_row_cells(&page, name)[3].clone();
    assert!(due("Active").ends_with(" UTC"), "{:?}", due("Active"));
    for (name, why) in [
        ("Dead", "disabled"),
        ("Gone", "stopped"),
        ("Off", "disabled"),
        ("Old", "removed from config"),
    ] {
        let cell = due(name);
        assert!(
            cell.contains(why) && !cell.contains("UTC"),
            "{name}'s next due cell says why it is not polled, no time: {cell:?}"
        );
    }

    let table = common::tradefeed_command(&path, &["sources"])
        .output()
        .unwrap();
    assert_eq!(table.status.code(), Some(0));
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    let row = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}: {table}"))
            .to_string()
    };
    // A time in the NEXT DUE column is a second `YYYY-MM-DD HH:MM` after LAST SUCCESS.
    let times = |line: &str| {
        line.split_whitespace()
            .filter(|w| w.len() == 10 && w.as_bytes()[4] == b'-' && w.as_bytes()[7] == b'-')
            .count()
    };
    assert_eq!(
        times(&row("Active")),
        2,
        "last success and next due: {table}"
    );
    assert_eq!(times(&row("Off")), 1, "last success only: {table}");
    assert_eq!(times(&row("Gone")), 0, "never succeeded, not due: {table}");
    for name in ["Dead", "Gone", "Off"] {
        assert!(row(name).contains("not polled"), "{table}");
    }
    // Disabled and stopped: both say the operator's own reason first, as for every source.
    assert_eq!(source_row_cells(&page, "Dead")[1], "disabled");
    assert_eq!(
        row("Dead").split_whitespace().nth(1),
        Some("disabled"),
        "{table}"
    );
}
