//! Hostile feeds end to end: politeness towards servers that push back, limits on what one poll
//! may cost, output that stays safe whatever the items contain, and bad configs that start
//! nothing. Fetch- and parse-level cases live in `fetch_hostile.rs` and `parse_fixtures.rs`.

mod common;

use common::fetch_pass;

use std::process::{Command, Output};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{FeedServer, Resource, rss, write_config};
use tradefeed::app::Pipeline;
use tradefeed::config::Config;
use tradefeed::store::SourceState;

const DATE: &str = "Tue, 10 Nov 2026 09:00:00 GMT";

/// Runs the binary with `--config CONFIG ARGS...` and a quiet log.
fn tradefeed(config: &std::path::Path, args: &[&str]) -> Output {
    common::tradefeed_command(config, args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The stored state of one source, read through the library.
async fn state(config: &Config, name: &str) -> SourceState {
    let pipeline = Pipeline::start(config).await.unwrap();
    let state = pipeline.store.source_state(name).await.unwrap().unwrap();
    pipeline.store.close().await;
    state
}

/// One in-process polling pass; returns each source's report (panics on a skipped source).
/// Serves `xml` as the one source of a new config and runs one pass: the database's folder
/// (kept while the caller holds it) and the poll's report.
async fn fetch_one_feed(xml: String) -> (tempfile::TempDir, tradefeed::ingest::PollReport) {
    let server = FeedServer::start().await;
    server.put("t.xml", Resource::feed(xml));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("T", server.url("t.xml"))], "");
    let config = Config::load(&path).unwrap();
    let report = fetch_pass(&config).await.remove(0);
    (dir, report)
}

fn one_item_feed(guid: &str) -> Resource {
    Resource::feed(rss(
        "Ok",
        &[(
            guid,
            "http://ok.example/1",
            "WTO panel rules on steel duties",
            "A WTO panel ruled on the duties.",
            DATE,
        )],
    ))
}

/// Writes a config of two sources in `dir`, `Busy` (whatever the server has put at
/// `busy.xml`) and `Fine` (one healthy item, put here), and runs a first `fetch`, which must
/// exit 2 naming `Busy` as failed. Returns the config's path and that run.
fn first_fetch_fails_busy_beside_fine(
    server: &FeedServer,
    dir: &std::path::Path,
) -> (std::path::PathBuf, Output) {
    server.put("ok.xml", one_item_feed("ok-1"));
    let config = write_config(
        dir,
        &[
            ("Busy", server.url("busy.xml")),
            ("Fine", server.url("ok.xml")),
        ],
        "",
    );
    let run = tradefeed(&config, &["fetch"]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    assert!(
        stdout(&run)
            .lines()
            .any(|l| l.starts_with("Busy") && l.contains("FAILED")),
        "the failing source is named: {}",
        text(&run)
    );
    (config, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_source_is_not_asked_again_before_its_retry_after_across_fetch_runs() {
    let server = FeedServer::start().await;
    server.put(
        "busy.xml",
        Resource {
            status: 429,
            headers: vec![("Retry-After".into(), "3600".into())],
            ..Resource::feed("slow down")
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let (config, _first) = first_fetch_fails_busy_beside_fine(&server, dir.path());

    let second = tradefeed(&config, &["fetch"]);
    let out = stdout(&second);
    assert!(
        out.lines().any(|l| l.starts_with("Busy")
            && l.contains("skipped")
            && l.contains("not to be polled before")),
        "the second run names the source it leaves alone: {}",
        text(&second)
    );
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_eq!(
        server.hits("busy.xml"),
        1,
        "one request across two fetch runs"
    );
    assert_eq!(
        server.hits("ok.xml"),
        2,
        "the healthy source is polled both times"
    );

    let loaded = Config::load(&config).unwrap();
    let busy = state(&loaded, "Busy").await;
    let not_before = busy.retry_not_before.expect("Retry-After recorded");
    let wait = not_before - Utc::now();
    assert!(
        wait > chrono::Duration::minutes(55) && wait <= chrono::Duration::minutes(60),
        "retry_not_before about an hour ahead: {not_before}"
    );
    assert!(
        busy.next_due.unwrap() >= not_before,
        "next due {:?} not before {not_before}",
        busy.next_due
    );

    let table = tradefeed(&config, &["sources"]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table));
    let row = stdout(&table)
        .lines()
        .find(|l| l.starts_with("Busy"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(row.contains("rate_limited"), "{row}");
    // The NEXT DUE column, to the minute. (Comparing the day of `not_before` failed when the
    // test ran in the last hour before midnight UTC: due just after it, on the next day.)
    let due = busy.next_due.unwrap().format("%Y-%m-%d %H:%M").to_string();
    assert!(
        row.contains(&due),
        "the table shows when it is due ({due}): {row}"
    );
}

/// A config (its path) of one source `name` at `url`, polled every minute (so the cron rhythm alone
/// would bring a failing source back within a minute) with a failure backoff of 10 minutes
/// doubling up to a day.
fn every_minute_with_backoff(dir: &std::path::Path, name: &str, url: String) -> std::path::PathBuf {
    let path = write_config(
        dir,
        &[(name, url)],
        "backoff_base_secs = 600\nbackoff_cap_secs = 86400\n",
    );
    let text = common::replaced(
        &std::fs::read_to_string(&path).unwrap(),
        "schedule = \"*/5 * * * *\"",
        "schedule = \"* * * * *\"",
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// A 500 answer.
fn server_error() -> Resource {
    Resource {
        status: 500,
        ..Resource::feed("oops")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_back_off_further_each_time_and_a_success_returns_to_the_schedule() {
    let server = FeedServer::start().await;
    server.put("flaky.xml", server_error());
    let dir = tempfile::tempdir().unwrap();
    let path = every_minute_with_backoff(dir.path(), "Flaky", server.url("flaky.xml"));
    let config = Config::load(&path).unwrap();

    let mut delays = Vec::new();
    for failures in 1..=3u32 {
        let before = Utc::now();
        let report = &fetch_pass(&config).await[0];
        assert_eq!(report.http_status, Some(500), "{report:?}");
        assert!(!report.is_ok());
        let s = state(&config, "Flaky").await;
        assert_eq!(s.consecutive_failures, failures);
        delays.push(s.next_due.unwrap() - before);
    }
    for (i, pair) in delays.windows(2).enumerate() {
        assert!(
            pair[1] > pair[0] + chrono::Duration::minutes(5),
            "failure {} waits longer than failure {}: {delays:?}",
            i + 2,
            i + 1
        );
    }
    assert!(
        delays[0] >= chrono::Duration::minutes(5),
        "the first retry waits about the base delay: {delays:?}"
    );

    server.put("flaky.xml", one_item_feed("f-1"));
    let before = Utc::now();
    let report = &fetch_pass(&config).await[0];
    assert!(report.is_ok(), "{report:?}");
    let s = state(&config, "Flaky").await;
    assert_eq!(s.consecutive_failures, 0);
    let due = s.next_due.unwrap();
    assert!(
        due > before && due <= before + chrono::Duration::seconds(61),
        "back on the every-minute rhythm: due {due}, polled at {before}"
    );
    assert_eq!(due.timestamp() % 60, 0, "on a minute boundary: {due}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_stops_the_source_with_its_reason_and_a_301_records_the_new_url() {
    let server = FeedServer::start().await;
    server.put(
        "gone.xml",
        Resource {
            status: 410,
            ..Resource::feed("gone")
        },
    );
    server.put(
        "old.xml",
        Resource {
            status: 301,
            headers: vec![("Location".into(), server.url("new.xml"))],
            ..Resource::feed("")
        },
    );
    server.put("new.xml", one_item_feed("n-1"));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Gone", server.url("gone.xml")),
            ("Moved", server.url("old.xml")),
        ],
        "",
    );

    let first = tradefeed(&config, &["fetch"]);
    assert_eq!(first.status.code(), Some(2), "{}", text(&first));
    let second = tradefeed(&config, &["fetch"]);
    assert!(
        stdout(&second)
            .lines()
            .any(|l| l.starts_with("Gone") && l.contains("FAILED stopped") && l.contains("410")),
        "{}",
        text(&second)
    );
    assert_eq!(
        second.status.code(),
        Some(2),
        "a stopped source fails every pass: {}",
        text(&second)
    );
    assert_eq!(server.hits("gone.xml"), 1, "a gone feed is not asked again");
    assert_eq!(server.hits("new.xml"), 2, "the moved feed is still read");

    let table = stdout(&tradefeed(&config, &["sources"]));
    let lines: Vec<&str> = table.lines().collect();
    let gone = lines.iter().position(|l| l.starts_with("Gone")).unwrap();
    assert!(lines[gone].contains("stopped"), "{table}");
    assert!(
        lines[gone + 1].contains("410 Gone") && lines[gone + 1].contains("update or remove"),
        "the reason is shown under the source: {table}"
    );
    let new_url = server.url("new.xml");
    assert!(
        table.contains(&format!("moved permanently to {new_url}")),
        "the table warns about the move: {table}"
    );
    let loaded = Config::load(&config).unwrap();
    assert_eq!(
        state(&loaded, "Moved").await.moved_to.as_deref(),
        Some(new_url.as_str())
    );
}

/// A server that answers 304 Not Modified whatever it is asked.
fn always_not_modified() -> Resource {
    Resource {
        status: 304,
        ..Resource::feed("")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_304_to_a_request_without_validators_is_a_failure_that_backs_off_not_an_unchanged_feed() {
    let server = FeedServer::start().await;
    server.put("lazy.xml", always_not_modified());
    let dir = tempfile::tempdir().unwrap();
    let path = every_minute_with_backoff(dir.path(), "Lazy", server.url("lazy.xml"));
    let config = Config::load(&path).unwrap();

    // The first poll sends no validators: its 304 answers nothing.
    let before = Utc::now();
    let report = &fetch_pass(&config).await[0];
    assert!(!report.is_ok(), "{report:?}");
    assert_eq!(report.outcome, "http_status", "{report:?}");
    assert_eq!(report.http_status, Some(304), "{report:?}");
    let error = report.error.as_deref().unwrap_or_default();
    assert!(
        error.contains("304") && error.contains("without validators"),
        "the error says what happened: {error}"
    );
    let s = state(&config, "Lazy").await;
    assert_eq!(s.consecutive_failures, 1);
    assert_eq!(s.last_outcome.as_deref(), Some("http_status"));
    assert!(s.etag.is_none() && s.last_modified.is_none(), "{s:?}");
    assert!(
        s.next_due.unwrap() - before >= chrono::Duration::minutes(5),
        "it follows the failure backoff, not the every-minute schedule: {:?}",
        s.next_due
    );
    let table = stdout(&tradefeed(&path, &["sources"]));
    let row = table.lines().find(|l| l.starts_with("Lazy")).unwrap();
    assert!(row.contains("http_status"), "{table}");
    assert!(table.contains("without validators"), "{table}");

    // Once the feed has been read, its validators are sent and a 304 means "unchanged".
    server.put("lazy.xml", one_item_feed("l-1"));
    assert!(fetch_pass(&config).await[0].is_ok());
    server.put("lazy.xml", always_not_modified());
    let report = &fetch_pass(&config).await[0];
    assert_eq!(report.outcome, "not_modified", "{report:?}");
    let s = state(&config, "Lazy").await;
    assert_eq!(s.consecutive_failures, 0);
    assert_eq!(s.entries, 1);
}

/// An RSS feed of `n` items, item `i` published `n - i` minutes before `newest`.
fn huge_feed(n: usize, newest: DateTime<Utc>) -> String {
    let mut xml = String::with_capacity(n * 170);
    xml.push_str(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Huge</title>\
         <link>http://huge.example/</link><description>d</description>\n",
    );
    for i in 0..n {
        let date = newest - chrono::Duration::minutes((n - i) as i64);
        xml.push_str(&format!(
            "<item><guid>h-{i}</guid><link>http://huge.example/{i}</link><title>Item {i}</title>\
             <description>Body {i}</description><pubDate>{}</pubDate></item>\n",
            date.to_rfc2822()
        ));
    }
    xml.push_str("</channel></rss>\n");
    xml
}

/// Peak resident set of a finished child in KiB, from `/usr/bin/time -f %M`'s last line.
fn peak_rss_kib(stderr: &str) -> Option<u64> {
    stderr.lines().last()?.trim().parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_60000_item_feed_ingests_only_the_newest_500_with_bounded_memory() {
    const ITEMS: usize = 60_000;
    let server = FeedServer::start().await;
    // Oldest first in the document: keeping the newest must come from the dates, not the order.
    let body = huge_feed(ITEMS, Utc::now() - chrono::Duration::days(1));
    let bytes = body.len();
    server.put("huge.xml", Resource::feed(body));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[("Huge", server.url("huge.xml"))],
        "max_body_bytes = 33554432\n",
    );

    let timed = std::path::Path::new("/usr/bin/time").exists();
    let started = std::time::Instant::now();
    let output = if timed {
        Command::new("/usr/bin/time")
            .args(["-f", "%M", env!("CARGO_BIN_EXE_tradefeed"), "--config"])
            .arg(&config)
            .arg("fetch")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    } else {
        tradefeed(&config, &["fetch"])
    };
    let elapsed = started.elapsed();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let out = stdout(&output);
    assert!(out.contains("items=60000"), "{out}");
    assert!(out.contains("new=500 "), "{out}");
    match peak_rss_kib(&String::from_utf8_lossy(&output.stderr)) {
        Some(kib) => {
            eprintln!(
                "measured: fetch of a {ITEMS}-item feed ({} MiB) took {elapsed:.1?}, peak RSS {} MiB",
                bytes / (1 << 20),
                kib / 1024
            );
            assert!(kib < 512 * 1024, "peak RSS {kib} KiB");
        }
        None => eprintln!("notice: /usr/bin/time missing; peak RSS not measured"),
    }

    let db = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    let (count, oldest, newest): (i64, i64, i64) = db
        .query_row(
            "SELECT count(*), min(CAST(substr(title, 6) AS INTEGER)), \
             max(CAST(substr(title, 6) AS INTEGER)) FROM entries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(count, 500);
    assert_eq!(
        (oldest, newest),
        ((ITEMS - 500) as i64, (ITEMS - 1) as i64),
        "the newest 500 are kept"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_titles_and_texts_are_capped_future_dates_clamped_and_unidentifiable_items_counted() {
    let long_title = "Tariff ".repeat(1_000);
    let long_text = "Duties on steel imports. ".repeat(10_000);
    let far_future = "Tue, 10 Nov 2099 09:00:00 GMT";
    let mut xml = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>T</title>\
         <link>http://t.example/</link><description>d</description>\n",
    );
    xml.push_str(&format!(
        "<item><guid>long</guid><title>{long_title}</title><description>{long_text}</description>\
         <pubDate>{DATE}</pubDate></item>\n"
    ));
    xml.push_str(&format!(
        "<item><guid>future</guid><title>Future duties</title><description>Later.</description>\
         <pubDate>{far_future}</pubDate></item>\n"
    ));
    // No guid, no link, no title: identified by its text, titled from it.
    xml.push_str(
        "<item><description>Anonymous note on export controls for chips.</description></item>\n",
    );
    // Nothing at all to identify it by.
    xml.push_str("<item></item>\n<item><pubDate>Tue, 10 Nov 2026 09:00:00 GMT</pubDate></item>\n");
    xml.push_str("</channel></rss>\n");

    let server = FeedServer::start().await;
    server.put("t.xml", Resource::feed(xml));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("T", server.url("t.xml"))], "");
    let config = Config::load(&path).unwrap();
    let before = Utc::now();
    let report = &fetch_pass(&config).await[0];
    let after = Utc::now();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.items, 5, "{report:?}");
    assert_eq!(report.new_entries, 3, "{report:?}");
    assert_eq!(
        report.skipped, 2,
        "the two empty items are counted: {report:?}"
    );

    let db = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    let row = |identity_like: &str| -> (String, String, i64) {
        db.query_row(
            "SELECT e.title, s.text, e.published FROM entries e JOIN stories s ON s.id = e.story_id
              WHERE e.identity LIKE ?1",
            [identity_like],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap_or_else(|e| panic!("{identity_like}: {e}"))
    };
    let (title, body, _) = row("%long%");
    assert!(
        title.chars().count() <= 1_000,
        "title cut: {} chars",
        title.chars().count()
    );
    assert!(title.starts_with("Tariff Tariff"));
    assert!(
        body.chars().count() <= 100_000,
        "text cut: {} chars",
        body.chars().count()
    );

    let (_, _, published) = row("%future%");
    assert!(
        published >= before.timestamp() && published <= after.timestamp(),
        "a 2099 date is clamped to the fetch time: {published}"
    );

    let anonymous: String = db
        .query_row(
            "SELECT e.title FROM entries e JOIN stories s ON s.id = e.story_id
              WHERE s.text LIKE 'Anonymous note%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        anonymous.starts_with("Anonymous note on export controls"),
        "titled from its text: {anonymous}"
    );
}

/// Items crafted to smuggle script, event handlers, dangerous URLs, frames, styles and
/// characters XML cannot carry into the served feeds.
fn hostile_html() -> &'static str {
    "<script>alert('s')</script><p>Steel duties rise.</p>\
     <img src=\"http://x.example/a.png\" onerror=\"alert('e')\">\
     <a href=\"javascript:alert('j')\">click</a>\
     <a href=\"JaVaScRiPt:alert('j2')\">click2</a>\
     <a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">data</a>\
     <img src=\"data:image/svg+xml;base64,PHN2Zz48L3N2Zz4=\">\
     <iframe src=\"http://evil.example/\"></iframe>\
     <p style=\"position:fixed;top:0\">styled</p>\
     <svg onload=\"alert('v')\"><circle r=\"1\"/></svg>\
     <object data=\"http://evil.example/x.swf\"></object>\
     <form action=\"http://evil.example/\"><input name=\"q\"></form>\
     <q cite=\"javascript:alert('q')\">quoted</q>\
     <blockquote cite=\"javascript:alert('b')\">block</blockquote>\
     <del cite=\"data:text/html,x\">deleted</del><ins cite=\"vbscript:msgbox(1)\">inserted</ins>\
     <a href=\"http://ok.example/fine\" onclick=\"alert('c')\">fine link</a>"
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The constructs that must not survive into served HTML (searched case-insensitively).
const DANGEROUS: &[&str] = &[
    "<script",
    "javascript:",
    "onerror",
    "onload",
    "onclick",
    "<iframe",
    "style=",
    "data:",
    "<object",
    "<form",
    "<svg",
    "vbscript:",
];

fn assert_no_dangerous(what: &str, html: &str) {
    let lower = html.to_lowercase();
    for d in DANGEROUS {
        assert!(!lower.contains(d), "{what} contains {d:?}: {html}");
    }
}

/// XML 1.0 forbids these characters even as references.
fn assert_xml_chars(what: &str, s: &str) {
    if let Some(c) = s.chars().find(|&c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    }) {
        panic!("{what} carries the character U+{:04X}", c as u32);
    }
    for bad in ["&#0;", "&#1;", "&#x1;", "&#xFFFE;", "&#65534;"] {
        assert!(!s.contains(bad), "{what} carries {bad}");
    }
}

/// Reads a whole document with quick-xml, checking end names; panics on the first error.
fn strict_xml(what: &str, body: &str) {
    let mut reader = quick_xml::Reader::from_str(body);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    let mut depth = 0i64;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Start(_)) => depth += 1,
            Ok(quick_xml::events::Event::End(_)) => depth -= 1,
            Ok(quick_xml::events::Event::GeneralRef(r)) => {
                // A strict reader knows only character references and the five predefined
                // entities; a character reference must name a character XML 1.0 allows.
                if r.is_char_ref() {
                    let c = r
                        .resolve_char_ref()
                        .unwrap_or_else(|e| panic!("{what}: bad reference &{};: {e}", &*r))
                        .unwrap_or_else(|| panic!("{what}: bad reference &{};", &*r));
                    assert_xml_chars(what, &c.to_string());
                } else {
                    assert!(
                        ["amp", "lt", "gt", "quot", "apos"].contains(&&*r),
                        "{what}: undefined entity &{};",
                        &*r
                    );
                }
            }
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(_) => {}
            Err(e) => panic!(
                "{what} is not well-formed at {}: {e}",
                reader.buffer_position()
            ),
        }
    }
    assert_eq!(depth, 0, "{what}: every element closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_items_come_out_as_well_formed_feeds_without_script_or_dangerous_urls() {
    let hostile = hostile_html();
    let rss_body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel><title>Evil</title>\
         <link>http://evil.example/</link><description>d</description>\
         <item><guid>x1</guid><link>http://evil.example/1</link>\
         <title>{}</title><description>{}</description><pubDate>{DATE}</pubDate></item>\
         <item><guid>x2</guid><link>javascript:alert('link')</link>\
         <title>Tariff &lt;b&gt;bold&lt;/b&gt; &amp;amp; &lt;img src=x onerror=alert(1)&gt; news</title>\
         <description>Plain.</description><pubDate>{DATE}</pubDate></item>\
         </channel></rss>",
        xml_escape("<script>alert('t')</script>EU duties <b>rise</b> <img src=x onerror=alert(1)>"),
        xml_escape(&format!(
            "<p>The European Commission extended safeguard measures on hot-rolled coil for two \
             more years after a review found imports still threatened domestic mills.</p>\
             <p><a href=\"annex/table.html\">Annex</a></p>{hostile}"
        )),
    );
    // JSON can carry what XML cannot: control characters and U+FFFE in titles and content.
    let json_body = serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Controls",
        "items": [
            {
                "id": "c1",
                "url": "http://controls.example/1",
                "title": "Export\u{0} controls\u{1}\u{8}\u{b}\u{c} on \u{FFFE}chips\u{1f}",
                "content_html": format!(
                    "<p>Nul\u{0} bell\u{7} nonchar\u{FFFE}\u{FFFF} text: Washington widened \
                     licence requirements for advanced lithography tools shipped to foundries \
                     abroad, the Commerce Department said.</p>{hostile}"
                ),
                "summary": "Sum\u{2}mary",
                "date_published": "2026-11-10T09:00:00Z",
                "authors": [{"name": "Eve\u{3} <script>alert(1)</script>"}]
            }
        ]
    });
    let server = FeedServer::start().await;
    server.put("evil.xml", Resource::feed(rss_body));
    server.put(
        "controls.json",
        Resource {
            content_type: "application/feed+json".into(),
            ..Resource::feed(json_body.to_string())
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("Evil <b>source</b>", server.url("evil.xml")),
            ("Controls", server.url("controls.json")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    let reports = fetch_pass(&config).await;
    assert!(reports.iter().all(|r| r.is_ok()), "{reports:?}");
    assert_eq!(reports.iter().map(|r| r.new_entries).sum::<usize>(), 3);

    // Entries keep their feed's markup; a relative link is resolved when served, against the
    // feed's URL.
    let annex = format!("href=\"{}\"", server.url("annex/table.html"));
    let (base, cancel, handle) = common::start_daemon(config).await;
    for ext in ["atom", "rss", "json"] {
        let url = format!("{base}/feeds/all.{ext}");
        let (status, body) = common::get_text(&url).await;
        assert_eq!(status, 200, "{url}");
        assert_xml_chars(ext, &body);
        if ext != "json" {
            strict_xml(ext, &body);
        }
        let feed = feed_rs::parser::parse(body.as_bytes()).unwrap_or_else(|e| panic!("{ext}: {e}"));
        assert_eq!(feed.entries.len(), 3, "{ext}");
        assert!(
            body.replace("\\\"", "\"")
                .replace("&quot;", "\"")
                .contains(&annex),
            "{ext}: {annex} not in {body}"
        );
        for entry in &feed.entries {
            let title = entry
                .title
                .as_ref()
                .map(|t| t.content.clone())
                .unwrap_or_default();
            assert!(
                !title.contains('<') && !title.contains('>'),
                "{ext}: the title is plain text: {title:?}"
            );
            assert!(
                !title.to_lowercase().contains("onerror"),
                "{ext}: {title:?}"
            );
            let content = entry
                .content
                .as_ref()
                .and_then(|c| c.body.clone())
                .unwrap_or_default();
            let summary = entry
                .summary
                .as_ref()
                .map(|s| s.content.clone())
                .unwrap_or_default();
            assert_no_dangerous(&format!("{ext} content"), &content);
            assert_no_dangerous(&format!("{ext} summary"), &summary);
            assert_xml_chars(&format!("{ext} decoded content"), &content);
            for link in &entry.links {
                let href = link.href.to_lowercase();
                assert!(
                    href.starts_with("http://") || href.starts_with("https://"),
                    "{ext}: link {href}"
                );
            }
        }
        let titles: Vec<String> = feed
            .entries
            .iter()
            .filter_map(|e| e.title.as_ref().map(|t| t.content.clone()))
            .collect();
        assert!(
            titles.iter().any(|t| t.contains("EU duties rise")),
            "{ext}: the readable part of the title survives: {titles:?}"
        );
        assert!(
            titles
                .iter()
                .any(|t| t.contains("controls") && t.contains("chips")),
            "{ext}: {titles:?}"
        );
        if ext == "json" {
            // The raw JSON too: titles and HTML are strings here, not markup, so search them.
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            // serde escapes control characters, so look at the decoded strings too.
            let mut stack = vec![&value];
            while let Some(v) = stack.pop() {
                match v {
                    serde_json::Value::String(s) => assert_xml_chars("json decoded string", s),
                    serde_json::Value::Array(a) => stack.extend(a),
                    serde_json::Value::Object(o) => stack.extend(o.values()),
                    _ => {}
                }
            }
            for item in value["items"].as_array().unwrap() {
                assert_no_dangerous(
                    "json content_html",
                    item["content_html"].as_str().unwrap_or(""),
                );
                assert!(!item["title"].as_str().unwrap_or("").contains('<'));
            }
        }
    }

    let (status, page) = common::get_text(&format!("{base}/")).await;
    assert_eq!(status, 200);
    let lower = page.to_lowercase();
    for d in [
        "<script",
        "<img src=x",
        "<b>source",
        "<b>rise",
        "onerror=alert",
    ] {
        assert!(!lower.contains(d), "status page carries {d:?} unescaped");
    }
    assert_xml_chars("status page", &page);
    common::stop_daemon(cancel, handle).await;
}

#[test]
fn run_with_a_bad_config_exits_1_before_binding_its_port_or_creating_a_database() {
    let cases = [
        (
            "misspelt key",
            "[storage]\npaht = \"x.db\"\n",
            "storage.paht",
        ),
        (
            "impossible schedule",
            "[[sources]]\nname = \"a\"\nurl = \"http://127.0.0.1:9/\"\nschedule = \"0 0 30 2 *\"\n",
            "sources[0].schedule",
        ),
        (
            "non-http url",
            "[[sources]]\nname = \"a\"\nurl = \"file:///etc/passwd\"\n",
            "sources[0].url",
        ),
        ("not toml", "[server\nlisten = ", "tradefeed.toml"),
    ];
    for (what, body, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        let port = common::free_port();
        let path = dir.path().join("tradefeed.toml");
        let listen = format!("[server]\nlisten = \"127.0.0.1:{port}\"\n");
        // The listen line first, so only the rest is broken ("not toml" breaks everything).
        let config = if what == "not toml" {
            body.to_string()
        } else {
            format!("{listen}\n{body}")
        };
        std::fs::write(&path, config).unwrap();
        let started = std::time::Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_tradefeed"))
            .arg("--config")
            .arg(&path)
            .arg("run")
            .env("RUST_LOG", "warn")
            .env_remove("TRADEFEED_CONFIG")
            .env_remove("TRADEFEED_DB")
            .env_remove("TRADEFEED_LISTEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            // Nothing may answer on the configured port while it decides.
            assert!(
                std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
                "{what}: something listens on {port}"
            );
            if started.elapsed() > Duration::from_secs(10) {
                let _ = child.kill();
                panic!("{what}: still running after 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = child.wait_with_output().unwrap();
        assert_eq!(status.code(), Some(1), "{what}: {}", text(&output));
        let err = String::from_utf8_lossy(&output.stderr);
        assert!(err.contains(named), "{what}: names {named}: {err}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "tradefeed.toml")
            .collect();
        assert!(leftovers.is_empty(), "{what}: created {leftovers:?}");
    }
}

/// A 429 whose `Retry-After` is 8,208,452,427,198 seconds (260,000 years).
fn absurd_retry_after() -> Resource {
    Resource {
        status: 429,
        headers: vec![("Retry-After".into(), "8208452427198".into())],
        ..Resource::feed("slow down")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_asking_to_wait_260000_years_fails_the_fetch_and_is_asked_again_within_a_week() {
    let server = FeedServer::start().await;
    server.put("busy.xml", absurd_retry_after());
    let dir = tempfile::tempdir().unwrap();
    let (config, run) = first_fetch_fails_busy_beside_fine(&server, dir.path());
    assert!(
        stdout(&run).contains("2 sources, 1 failed"),
        "{}",
        text(&run)
    );

    let loaded = Config::load(&config).unwrap();
    let busy = state(&loaded, "Busy").await;
    assert_eq!(busy.consecutive_failures, 1, "{busy:?}");
    let week = Utc::now() + chrono::Duration::days(7);
    let not_before = busy.retry_not_before.expect("Retry-After recorded");
    assert!(
        not_before <= week && not_before > week - chrono::Duration::minutes(5),
        "the wait is cut to a week: {not_before}"
    );
    let error = busy.last_error.expect("the failure is recorded");
    assert!(
        error.ends_with(
            &not_before
                .format(", retry after %Y-%m-%d %H:%M:%S UTC")
                .to_string()
        ),
        "the message names the same capped time: {error}"
    );
    let due = busy.next_due.unwrap();
    assert!(
        due >= not_before && due <= week + chrono::Duration::minutes(10),
        "due again about a week from now: {due}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_asks_a_server_wanting_260000_years_once_and_not_again_in_a_loop() {
    let server = FeedServer::start().await;
    server.put("busy.xml", absurd_retry_after());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Busy", server.url("busy.xml"))], "");
    let config = Config::load(&path).unwrap();
    let (_base, cancel, handle) = common::start_daemon(config.clone()).await;
    server
        .wait_for_hits("busy.xml", 1, Duration::from_secs(10))
        .await;
    // The scheduler looks at the schedule at least every 200 ms: a poll lost to a panic was
    // queued again at once, about ten times in this second and a half.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(server.hits("busy.xml"), 1, "asked once, then left alone");
    common::stop_daemon(cancel, handle).await;
    let busy = state(&config, "Busy").await;
    assert_eq!(busy.consecutive_failures, 1, "{busy:?}");
    assert_eq!(busy.last_outcome.as_deref(), Some("rate_limited"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_beyond_the_config_bounds_still_poll_without_panicking() {
    // `check` refuses these values now; the library is still given them here, to show that
    // no value can make a poll panic (each of them did: a date or an Instant overflowed).
    let server = FeedServer::start().await;
    server.put("ok.xml", one_item_feed("ok-1"));
    server.put("broken.xml", server_error());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("Fine", server.url("ok.xml")),
            ("Broken", server.url("broken.xml")),
        ],
        "",
    );
    let mut config = Config::load(&path).unwrap();
    config.storage.retention_days = Some(99_999_999);
    config.cluster.window_days = u32::MAX;
    config.polling.backoff_base = Duration::from_secs(10_000_000_000_000);
    config.polling.backoff_cap = Duration::from_secs(10_000_000_000_000);
    config.polling.timeout = Duration::from_secs(u64::MAX);
    config.polling.connect_timeout = Duration::from_secs(u64::MAX);
    config.polling.max_jitter = Duration::from_secs(u64::MAX);

    let reports = fetch_pass(&config).await;
    let fine = reports.iter().find(|r| r.source == "Fine").unwrap();
    assert!(fine.is_ok(), "{fine:?}");
    assert_eq!(fine.new_entries, 1, "{fine:?}");
    let broken = reports.iter().find(|r| r.source == "Broken").unwrap();
    assert_eq!(broken.http_status, Some(500), "{broken:?}");
    assert_eq!(broken.outcome, "http_status", "a plain failure: {broken:?}");
    let state = state(&config, "Broken").await;
    assert_eq!(state.consecutive_failures, 1);
    assert!(state.next_due.unwrap() > Utc::now() + chrono::Duration::days(365));
}

/// Reads `(identity, published, updated)` of every entry, in identity order.
fn stored_entry_dates(config: &Config) -> Vec<(String, i64, i64)> {
    let conn = rusqlite::Connection::open(&config.storage.path).unwrap();
    let mut statement = conn
        .prepare("SELECT identity, published, updated FROM entries ORDER BY identity")
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_dated_in_the_obsolete_rfc_850_form_is_stored_with_that_date_not_its_first_seen_time()
 {
    let xml = rss(
        "Old CMS",
        &[
            (
                "o-1",
                "http://o.example/1",
                "Tariff talks resume",
                "Talks.",
                "Saturday, 28-Nov-26 10:00:00 GMT",
            ),
            (
                "o-2",
                "http://o.example/2",
                "Quota review opens",
                "Quotas.",
                "Friday, 27-Nov-2026 11:30:00 CET",
            ),
        ],
    );
    let (dir, report) = fetch_one_feed(xml).await;
    assert!(report.is_ok(), "{report:?}");
    let config = Config::load(&dir.path().join("tradefeed.toml")).unwrap();
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp();
    let mut published: Vec<i64> = stored_entry_dates(&config)
        .into_iter()
        .map(|(_, published, _)| published)
        .collect();
    published.sort_unstable();
    assert_eq!(
        published,
        [at("2026-11-27T10:30:00Z"), at("2026-11-28T10:00:00Z")],
        "as published, not when first seen ({})",
        Utc::now().timestamp()
    );
}

/// An RSS feed whose items have no usable date: none, one that does not parse, one in 2099. `edition` changes the channel only, so the server's ETag changes too.
fn undated_feed(edition: u32, first_text: &str) -> Resource {
    let future = "Tue, 10 Nov 2099 09:00:00 GMT";
    Resource::feed(format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Undated {edition}</title>\
         <link>http://u.example/</link><description>d</description>\
         <item><guid>u-1</guid><link>http://u.example/1</link><title>Tariff talks</title>\
         <description>{first_text}</description></item>\
         <item><guid>u-2</guid><link>http://u.example/2</link><title>Quota review</title>\
         <description>Quotas.</description><pubDate>sometime soon</pubDate></item>\
         <item><guid>u-3</guid><link>http://u.example/3</link><title>Duty ruling</title>\
         <description>Duties.</description><pubDate>{future}</pubDate></item>\
         </channel></rss>"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_without_a_usable_date_are_not_updated_by_a_refetch_and_keep_their_first_seen_time() {
    let server = FeedServer::start().await;
    server.put("u.xml", undated_feed(1, "Talks resume."));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Undated", server.url("u.xml"))], "");
    let config = Config::load(&path).unwrap();

    let first = &fetch_pass(&config).await[0];
    assert_eq!(
        (first.new_entries, first.updated_entries),
        (3, 0),
        "{first:?}"
    );
    let stored = stored_entry_dates(&config);

    // A later fetch of the same items (a changed channel, so a 200, not a 304).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server.put("u.xml", undated_feed(2, "Talks resume."));
    let second = &fetch_pass(&config).await[0];
    assert_eq!(second.http_status, Some(200));
    assert_eq!(
        (second.new_entries, second.updated_entries),
        (0, 0),
        "a re-fetch adds nothing: {second:?}"
    );
    assert_eq!(stored_entry_dates(&config), stored, "nothing rewritten");

    // A real edit is an update, and the entry keeps the time it was first seen.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    server.put("u.xml", undated_feed(3, "Talks resume on Monday."));
    let third = &fetch_pass(&config).await[0];
    assert_eq!(
        (third.new_entries, third.updated_entries),
        (0, 1),
        "{third:?}"
    );
    let after_edit = stored_entry_dates(&config);
    assert_eq!(after_edit[0].0, "guid:u-1");
    assert_eq!(after_edit[0].1, stored[0].1, "published stays first seen");
    assert!(after_edit[0].2 > stored[0].2, "updated moves to the edit");
    assert_eq!(after_edit[1..], stored[1..], "the others are untouched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn different_items_sharing_one_guid_are_all_kept_and_true_repeats_are_one() {
    let server = FeedServer::start().await;
    // A CMS that gives every item its home page as guid; the last item repeats the first.
    let items = [
        (
            "http://example.org/",
            "http://example.org/a",
            "EU opens anti-dumping probe",
            "Probe.",
            "Tue, 10 Nov 2026 09:00:00 GMT",
        ),
        (
            "http://example.org/",
            "http://example.org/b",
            "US extends steel tariffs",
            "Tariffs.",
            "Tue, 10 Nov 2026 08:00:00 GMT",
        ),
        (
            "http://example.org/",
            "http://example.org/c",
            "WTO panel rules on subsidies",
            "Ruling.",
            "Tue, 10 Nov 2026 07:00:00 GMT",
        ),
        (
            "http://example.org/",
            "http://example.org/a",
            "EU opens anti-dumping probe",
            "Probe.",
            "Tue, 10 Nov 2026 09:00:00 GMT",
        ),
        (
            "own-guid",
            "http://example.org/d",
            "Canada and UK sign trade deal",
            "Deal.",
            "Tue, 10 Nov 2026 06:00:00 GMT",
        ),
    ];
    server.put("cms.xml", Resource::feed(rss("CMS 1", &items)));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("CMS", server.url("cms.xml"))], "");
    let config = Config::load(&path).unwrap();

    let first = &fetch_pass(&config).await[0];
    assert_eq!(first.items, 5, "{first:?}");
    assert_eq!(
        first.new_entries, 4,
        "three items under one guid, plus one: {first:?}"
    );

    // The next poll finds the same items under the same identities.
    server.put("cms.xml", Resource::feed(rss("CMS 2", &items)));
    let second = &fetch_pass(&config).await[0];
    assert_eq!(second.http_status, Some(200));
    assert_eq!(
        (second.new_entries, second.updated_entries),
        (0, 0),
        "{second:?}"
    );
    let identities: Vec<String> = stored_entry_dates(&config)
        .into_iter()
        .map(|(identity, _, _)| identity)
        .collect();
    assert!(
        identities.contains(&"guid:own-guid".to_string()),
        "an unshared guid keeps its identity: {identities:?}"
    );
}

/// An RSS item for [`rss`]: guid, link, title, description, date.
type Item<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str);

/// Each stored entry's link and title, by link.
fn stored_links_and_titles(config: &Config) -> Vec<(String, String)> {
    common::row_pairs(
        &config.storage.path,
        "SELECT link, title FROM entries ORDER BY link, identity",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_keeps_its_stored_row_while_others_come_and_go_under_its_guid() {
    let server = FeedServer::start().await;
    let guid = "http://example.org/";
    let a = (
        guid,
        "http://example.org/a",
        "EU opens anti-dumping probe",
        "Probe.",
        "Tue, 10 Nov 2026 09:00:00 GMT",
    );
    let a_edited = (
        guid,
        "http://example.org/a",
        "EU opens anti-dumping probe into steel",
        "Probe.",
        "Tue, 10 Nov 2026 09:00:00 GMT",
    );
    // The same article reposted under a new slug, with the same guid.
    let b = (
        guid,
        "http://example.org/b",
        "US extends steel tariffs",
        "Tariffs.",
        "Tue, 10 Nov 2026 10:00:00 GMT",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("CMS", server.url("cms.xml"))], "");
    let config = Config::load(&path).unwrap();
    let a_title = |t: &str| ("http://example.org/a".to_string(), t.to_string());
    let b_row = (
        "http://example.org/b".to_string(),
        "US extends steel tariffs".to_string(),
    );

    // (feed edition, items, expected (new, updated), expected rows)
    type Poll<'a> = (
        &'a str,
        Vec<Item<'a>>,
        (usize, usize),
        Vec<(String, String)>,
    );
    let polls: Vec<Poll> = vec![
        ("1", vec![a], (1, 0), vec![a_title(a.2)]),
        ("2", vec![b, a], (1, 0), vec![a_title(a.2), b_row.clone()]),
        ("3", vec![b, a], (0, 0), vec![a_title(a.2), b_row.clone()]),
        (
            "4",
            vec![b, a_edited],
            (0, 1),
            vec![a_title(a_edited.2), b_row.clone()],
        ),
        (
            "5",
            vec![a_edited],
            (0, 0),
            vec![a_title(a_edited.2), b_row.clone()],
        ),
        (
            "6",
            vec![b, a_edited],
            (0, 0),
            vec![a_title(a_edited.2), b_row.clone()],
        ),
        // The first item leaves: the second keeps its own row, the first's is untouched.
        (
            "7",
            vec![b],
            (0, 0),
            vec![a_title(a_edited.2), b_row.clone()],
        ),
        ("8", vec![a, b], (0, 1), vec![a_title(a.2), b_row.clone()]),
    ];
    for (edition, items, (new, updated), rows) in polls {
        server.put(
            "cms.xml",
            Resource::feed(rss(&format!("CMS {edition}"), &items)),
        );
        let report = &fetch_pass(&config).await[0];
        assert_eq!(report.http_status, Some(200), "poll {edition}: {report:?}");
        assert_eq!(
            (report.new_entries, report.updated_entries),
            (new, updated),
            "poll {edition}: {report:?}"
        );
        assert_eq!(
            stored_links_and_titles(&config),
            rows,
            "poll {edition}: one row per article"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_retention_items_published_before_it_are_skipped_and_recent_ones_stored() {
    let server = FeedServer::start().await;
    let fmt = |days: i64| (Utc::now() - chrono::Duration::days(days)).to_rfc2822();
    let (old, recent) = (fmt(100), fmt(1));
    server.put(
        "mixed.xml",
        Resource::feed(rss(
            "Mixed",
            &[
                (
                    "recent-1",
                    "http://mixed.example/recent",
                    "Tariff talks resume",
                    "Negotiators met again on steel tariffs.",
                    &recent,
                ),
                (
                    "old-1",
                    "http://mixed.example/old",
                    "Quota dispute from last spring",
                    "An archived story about quotas.",
                    &old,
                ),
            ],
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("Mixed", server.url("mixed.xml"))], "");
    let mut config = Config::load(&path).unwrap();
    config.storage.retention_days = Some(30);

    let reports = fetch_pass(&config).await;
    assert_eq!(reports[0].items, 2, "{:?}", reports[0]);
    assert_eq!(reports[0].new_entries, 1, "{:?}", reports[0]);
    assert_eq!(reports[0].skipped, 1, "{:?}", reports[0]);
    let stored: Vec<String> = stored_entry_dates(&config)
        .into_iter()
        .map(|(identity, _, _)| identity)
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(stored[0].contains("recent-1"), "{stored:?}");
}

/// `open` and `close` repeated `depth` times, around nothing.
fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("{}{}", open.repeat(depth), close.repeat(depth))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_nested_thousands_deep_are_recorded_parse_errors_and_the_other_sources_are_stored() {
    let server = FeedServer::start().await;
    let media = format!(
        "<rss version=\"2.0\" xmlns:media=\"http://search.yahoo.com/mrss/\"><channel><title>T</title>\
         <link>http://x.example/</link><description>d</description><item><guid>g</guid>\
         <title>t</title>{}</item></channel></rss>",
        nested("<media:group>", "</media:group>", 3_000)
    );
    let itunes = format!(
        "<rss version=\"2.0\" xmlns:itunes=\"http://www.itunes.com/dtds/podcast-1.0.dtd\">\
         <channel><title>T</title><link>http://x.example/</link><description>d</description>{}\
         <item><guid>g</guid><title>t</title></item></channel></rss>",
        nested(
            "<itunes:category text=\"Trade\">",
            "</itunes:category>",
            5_000
        )
    );
    let atom = format!(
        "<feed xmlns=\"http://www.w3.org/2005/Atom\" xmlns:media=\"http://search.yahoo.com/mrss/\">\
         <id>f</id><title>T</title><entry><id>e</id><title>t</title>{}</entry></feed>",
        nested("<media:group>", "</media:group>", 3_000)
    );
    server.put("media.xml", Resource::feed(media));
    server.put("itunes.xml", Resource::feed(itunes));
    server.put(
        "atom.xml",
        Resource {
            content_type: "application/atom+xml".into(),
            ..Resource::feed(atom)
        },
    );
    let deep = ["Deep media", "Deep itunes", "Deep atom"];
    let dir = tempfile::tempdir().unwrap();
    server.put("ok.xml", one_item_feed("ok-1"));
    let config = write_config(
        dir.path(),
        &[
            (deep[0], server.url("media.xml")),
            (deep[1], server.url("itunes.xml")),
            (deep[2], server.url("atom.xml")),
            ("Fine", server.url("ok.xml")),
        ],
        "",
    );
    let run = tradefeed(&config, &["fetch"]);
    // A stack overflow would end the process on a signal, with no exit code.
    assert_eq!(run.status.code(), Some(2), "{}", text(&run));
    let out = stdout(&run);
    for name in deep {
        assert!(
            out.lines().any(|l| l.starts_with(name)
                && l.contains("FAILED")
                && l.contains("nested deeper than 128")),
            "{name} is a parse error: {}",
            text(&run)
        );
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("Fine") && l.contains("new=1")),
        "the good source is stored: {}",
        text(&run)
    );
    let loaded = Config::load(&config).unwrap();
    for name in deep {
        let state = state(&loaded, name).await;
        assert_eq!(state.consecutive_failures, 1, "{name}: {state:?}");
        assert!(
            state
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("nested deeper")),
            "{name}: the error is recorded: {state:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_with_80000_authors_and_spoofing_controls_is_stored_with_32_clean_names() {
    let mut xml = String::from(
        "<rss version=\"2.0\"><channel><title>T</title><link>http://t.example/</link>\
         <description>d</description><item><guid>many</guid>\
         <title>Invoice \u{202e}gnp.exe\u{202c} on tariffs</title>",
    );
    for i in 0..80_000 {
        xml.push_str(&format!("<author>\u{2067}Reporter {i}\u{2069}</author>"));
    }
    xml.push_str("</item></channel></rss>");
    let (dir, report) = &fetch_one_feed(xml).await;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.new_entries, 1, "{report:?}");

    let stored: Vec<(String, String)> = common::row_pairs(
        &dir.path().join("tradefeed.db"),
        "SELECT title, authors FROM entries",
    );
    let (title, authors) = &stored[0];
    assert_eq!(title, "Invoice gnp.exe on tariffs");
    let authors: Vec<String> = serde_json::from_str(authors).unwrap();
    assert_eq!(authors.len(), 32);
    assert_eq!(authors[0], "Reporter 0");
    assert_eq!(authors[31], "Reporter 31");
}

/// The deepest element nesting of balanced HTML (void elements aside).
fn html_depth(html: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for tag in html.split('<').skip(1) {
        if tag.starts_with('/') {
            depth = depth.saturating_sub(1);
        } else if !tag.starts_with("br") && !tag.starts_with("img") {
            depth += 1;
            max = max.max(depth);
        }
    }
    max
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_nesting_20000_elements_are_stored_at_most_64_deep_with_their_text() {
    // As deep as the 100,000-char cut leaves the text in.
    let nested = |open: &str, close: &str, depth: usize| {
        xml_escape(&format!(
            "<p>Lead.</p>{}Deep text on duties.{}<p>Tail.</p>",
            open.repeat(depth),
            close.repeat(depth)
        ))
    };
    let mut xml = String::from(
        "<rss version=\"2.0\"><channel><title>T</title><link>http://t.example/</link>\
         <description>d</description>",
    );
    for (guid, open, close, depth) in [
        ("s", "<s>", "</s>", 20_000),
        ("div", "<div>", "</div>", 19_900),
        ("ul", "<ul><li>", "</li></ul>", 12_000),
    ] {
        xml.push_str(&format!(
            "<item><guid>{guid}</guid><title>Nested {guid}</title>\
             <description>{}</description></item>",
            nested(open, close, depth)
        ));
    }
    xml.push_str(
        "<item><guid>plain</guid><title>Plain</title>\
         <description>&lt;p&gt;One &lt;b&gt;bold&lt;/b&gt; word.&lt;/p&gt;</description></item>\
         </channel></rss>",
    );
    let (dir, report) = &fetch_one_feed(xml).await;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.new_entries, 4, "{report:?}");

    let stored: Vec<(String, String)> = common::row_pairs(
        &dir.path().join("tradefeed.db"),
        "SELECT identity, html FROM entries ORDER BY identity",
    );
    for (identity, html) in &stored {
        let depth = html_depth(html);
        assert!(depth <= 64, "{identity}: stored {depth} deep");
        assert!(
            html.chars().count() <= 100_000,
            "{identity}: within the cap"
        );
        if identity != "guid:plain" {
            assert!(html.starts_with("<p>Lead.</p>"), "{identity}");
            assert!(html.contains("Deep text on duties."), "{identity}");
        }
    }
    let plain = &stored.iter().find(|(i, _)| i == "guid:plain").unwrap().1;
    assert_eq!(
        plain, "<p>One <b>bold</b> word.</p>",
        "shallow HTML is kept as given"
    );
}

/// Each stored entry's title, link and HTML, by link, after one poll of `xml` served as the one
/// source of a new config; with the poll's report.
async fn stored_after_one_poll(
    xml: String,
) -> (tradefeed::ingest::PollReport, Vec<(String, String, String)>) {
    let (dir, report) = fetch_one_feed(xml).await;
    let db = rusqlite::Connection::open(dir.path().join("tradefeed.db")).unwrap();
    let rows = db
        .prepare("SELECT title, coalesce(link, ''), html FROM entries ORDER BY link")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (report, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_ampersands_in_titles_links_and_attributes_are_read_as_if_escaped_and_cdata_is_kept() {
    // Each feed as a publisher sends it, with bare `&`, and as it should have been written.
    // CDATA holds `&` and `&amp;` literally: the repair must leave it as it is.
    let cdata = "<![CDATA[<p>Tom &amp; Jerry & co</p>]]>";
    let rss_feed = |amp: &str| {
        rss(
            "Amp",
            &[
                (
                    "a-1",
                    &format!("http://amp.example/a?x=1{amp}y=2"),
                    &format!("Trade AT{amp}T deal"),
                    cdata,
                    DATE,
                ),
                (
                    "a-2",
                    "http://amp.example/b",
                    "Steel &amp; aluminium &#8212; duties&nbsp;rise",
                    "Duties &eacute;tendues",
                    DATE,
                ),
            ],
        )
    };
    let atom_feed = |amp: &str| {
        format!(
            "<?xml version=\"1.0\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
             <title>Amp</title><id>urn:amp</id><updated>2026-11-10T09:00:00Z</updated>\n\
             <entry><id>urn:amp:1</id><title>Tariffs on US{amp}EU steel</title>\
             <updated>2026-11-10T09:00:00Z</updated>\
             <link href=\"http://amp.example/c?x=1&amp;y=2{amp}z=3\"/>\
             <content type=\"html\">{cdata}</content></entry>\n</feed>\n"
        )
    };
    for (what, feed) in [
        ("RSS", &rss_feed as &dyn Fn(&str) -> String),
        ("Atom", &atom_feed),
    ] {
        let (report, repaired) = stored_after_one_poll(feed("&")).await;
        assert_eq!(report.outcome, "ok", "{what}: {:?}", report.error);
        let (_, escaped) = stored_after_one_poll(feed("&amp;")).await;
        assert_eq!(
            repaired, escaped,
            "{what}: read as if the publisher had escaped them"
        );
        assert!(!repaired.is_empty(), "{what}");
        assert!(
            repaired
                .iter()
                .any(|(_, _, html)| html == "<p>Tom &amp; Jerry & co</p>"),
            "{what}: the CDATA text is read as written: {repaired:?}"
        );
    }
    let (_, rows) = stored_after_one_poll(rss_feed("&")).await;
    assert_eq!(rows[0].0, "Trade AT&T deal");
    assert_eq!(rows[0].1, "http://amp.example/a?x=1&y=2");
    assert_eq!(rows[1].0, "Steel & aluminium — duties rise", "{rows:?}");
    let (_, rows) = stored_after_one_poll(atom_feed("&")).await;
    assert_eq!(rows[0].0, "Tariffs on US&EU steel");
    assert_eq!(rows[0].1, "http://amp.example/c?x=1&y=2&z=3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_broken_besides_its_bare_ampersands_reports_the_error_left_where_it_is_as_served() {
    // The bare ampersands are on the line of the other error, before it: the retry reads them
    // escaped, four characters longer each, and the operator reads the feed as served.
    let item = |ampersand: &str, link_close: &str| {
        format!(
            "<item><guid>b-1</guid><title>AT{ampersand}T deal</title>\
             <link>http://amp.example/1?a=1{ampersand}b=2</{link_close}></item>"
        )
    };
    let feed = |item: &str| {
        format!(
            "<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>t</title>\n\
             {item}</channel></rss>\n"
        )
    };
    for ampersand in ["&", "&amp;"] {
        let item = item(ampersand, "lnk");
        let column = item[..item.find("</lnk>").unwrap()].chars().count() + 1;
        let (_, broken) = fetch_one_feed(feed(&item)).await;
        assert_eq!(broken.outcome, "parse", "{ampersand}");
        let error = broken.error.unwrap();
        assert!(
            error.contains("expected `</link>`, but `</lnk>` was found")
                && error.contains(&format!("(line 3, column {column})")),
            "{ampersand}: {error}"
        );
    }
    // Repaired, the same feed is read.
    let (_, read) = fetch_one_feed(feed(&item("&", "link"))).await;
    assert_eq!(read.outcome, "ok", "{:?}", read.error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_redirect_is_shown_escaped_on_the_status_page_and_in_the_metrics() {
    let server = FeedServer::start().await;
    // The target's query string has an `&`, which the page must escape.
    let new_url = format!("{}?from=old&via=<301>", server.url("new.xml"));
    for (path, status) in [("old.xml", 301), ("temporary.xml", 302)] {
        server.put(
            path,
            Resource {
                status,
                headers: vec![("Location".into(), new_url.clone())],
                ..Resource::feed("")
            },
        );
    }
    server.put("new.xml", one_item_feed("m-1"));
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &[
            ("Moved", server.url("old.xml")),
            ("Borrowed", server.url("temporary.xml")),
        ],
        "",
    );
    let config = Config::load(&path).unwrap();
    let reports = fetch_pass(&config).await;
    assert!(reports.iter().all(|r| r.outcome == "ok"), "{reports:?}");
    let stored = state(&config, "Moved").await.moved_to.unwrap();
    assert!(stored.contains("?from=old&via="), "{stored}");

    let (base, cancel, handle) = common::start_daemon(config).await;
    let (status, page) = common::get_text(&format!("{base}/")).await;
    assert_eq!(status, 200);
    let row = |name: &str| {
        let start = page.find(&format!("<tr><td>{name}</td>")).expect(name);
        page[start..start + page[start..].find("</tr>").unwrap()].to_string()
    };
    let escaped = html_escape::encode_text(&stored).into_owned();
    assert!(escaped.contains("&amp;"), "{escaped}");
    assert!(
        row("Moved").contains(&format!(
            "moved permanently to {escaped}: update the config"
        )),
        "{}",
        row("Moved")
    );
    assert!(!page.contains(&stored), "every value is escaped");
    assert!(
        !row("Borrowed").contains("moved"),
        "a temporary redirect is no move"
    );
    let (_, metrics) = common::get_text(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("tradefeed_source_moved_permanently{source=\"Moved\"} 1")
            && metrics.contains("tradefeed_source_moved_permanently{source=\"Borrowed\"} 0"),
        "{metrics}"
    );
    common::stop_daemon(cancel, handle).await;

    // Removed from the config, the source is listed as such, without the advice to update
    // a config entry it no longer has.
    let without = dir.path().join("without-moved.toml");
    std::fs::write(
        &without,
        std::fs::read_to_string(&path)
            .unwrap()
            .replace("name = \"Moved\"", "name = \"Borrowed2\"")
            .replacen(&server.url("old.xml"), &server.url("other.xml"), 1),
    )
    .unwrap();
    let (base, cancel, handle) = common::start_daemon(Config::load(&without).unwrap()).await;
    let (_, page) = common::get_text(&format!("{base}/")).await;
    let start = page.find("<tr><td>Moved</td>").expect("Moved is listed");
    let moved_row = &page[start..start + page[start..].find("</tr>").unwrap()];
    assert!(
        moved_row.contains("removed from config") && !moved_row.contains("moved permanently"),
        "{moved_row}"
    );
    common::stop_daemon(cancel, handle).await;

    // The publisher reverts its move: the old URL answers again, and the notice goes (it
    // would tell the operator to switch to a URL the publisher has given up).
    server.put("old.xml", one_item_feed("m-1"));
    let config = Config::load(&path).unwrap();
    let reports = fetch_pass(&config).await;
    // The same bytes as before, so the validators stored for them get a 304, at the old URL
    // itself this time.
    assert!(
        reports.iter().all(|r| r.outcome == "not_modified"),
        "{reports:?}"
    );
    assert_eq!(state(&config, "Moved").await.moved_to, None);
    let (base, cancel, handle) = common::start_daemon(config).await;
    let (_, page) = common::get_text(&format!("{base}/")).await;
    assert!(!page.contains("moved permanently"), "{page}");
    let (_, metrics) = common::get_text(&format!("{base}/metrics")).await;
    assert!(
        metrics.contains("tradefeed_source_moved_permanently{source=\"Moved\"} 0"),
        "{metrics}"
    );
    common::stop_daemon(cancel, handle).await;
}
