//! The `tradefeed` binary's contracts: exit statuses and what the commands print.

mod common;

use std::process::Output;

use common::{FeedServer, Resource, write_config};

/// Runs the binary with `ARGS` (which name `--config` themselves).
fn tradefeed(args: &[&str]) -> Output {
    let (config, rest) = match args {
        ["--config", config, rest @ ..] => (*config, rest),
        _ => panic!("the tests name --config first"),
    };
    common::tradefeed_command(std::path::Path::new(config), rest)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_exits_0_when_all_sources_are_fine_2_when_some_fail_and_1_on_a_bad_config() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(dir.path(), &[("Good", server.url("a.xml"))], "");
    let o = tradefeed(&["--config", good.to_str().unwrap(), "fetch"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("Good"),
        "a line per source: {}",
        stdout(&o)
    );

    let dir2 = tempfile::tempdir().unwrap();
    server.put(
        "html",
        Resource {
            content_type: "text/html".into(),
            ..Resource::feed("<html><body>moved</body></html>")
        },
    );
    let mixed = write_config(
        dir2.path(),
        &[
            ("Good", server.url("a.xml")),
            ("Html page", server.url("html")),
        ],
        "",
    );
    let o = tradefeed(&["--config", mixed.to_str().unwrap(), "fetch"]);
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| l.starts_with("Html page") && l.contains("FAILED")),
        "names the failed source: {out}"
    );

    // One source only.
    let o = tradefeed(&[
        "--config",
        mixed.to_str().unwrap(),
        "fetch",
        "--source",
        "Good",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(!stdout(&o).contains("Html page"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[storage]\npaht = \"x.db\"\n").unwrap();
    let o = tradefeed(&["--config", bad.to_str().unwrap(), "fetch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("bad.toml:2: storage.paht"),
        "names file, line and key: {}",
        stderr(&o)
    );
}

/// A source the store stopped after a `410 Gone` is not fine: every later `fetch` names it as
/// failed with its reason and what to do (give it another URL), and exits 2, so a cron job
/// sees it; a source the server asked to wait (`Retry-After`) is skipped without failing the
/// pass. Following the advice (a new URL) brings the source back and the exit status to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_exits_2_naming_a_source_stopped_by_a_410_until_its_url_changes() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    server.put(
        "gone.xml",
        Resource {
            status: 410,
            ..Resource::feed("gone")
        },
    );
    server.put(
        "busy.xml",
        Resource {
            status: 429,
            headers: vec![("Retry-After".into(), "3600".into())],
            ..Resource::feed("slow down")
        },
    );
    server.put("moved.xml", common::trade_deal_feed());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Good", server.url("a.xml")),
            ("Gone", server.url("gone.xml")),
            ("Busy", server.url("busy.xml")),
        ],
        "",
    );
    let c = config.to_str().unwrap();
    let first = tradefeed(&["--config", c, "fetch"]);
    assert_eq!(first.status.code(), Some(2), "{}", stdout(&first));
    // The 410's log line says the source is stopped, not when it is due (it is not).
    let log = stderr(&first);
    let gone_line = log
        .lines()
        .find(|l| l.contains("outcome=gone"))
        .unwrap_or_else(|| panic!("the 410 is logged: {log}"));
    assert!(
        gone_line.contains("the source is stopped until its url changes")
            && !gone_line.contains("next_due"),
        "{gone_line}"
    );

    for pass in ["second", "third"] {
        let o = tradefeed(&["--config", c, "fetch"]);
        let out = stdout(&o);
        assert_eq!(o.status.code(), Some(2), "{pass} pass: {out}{}", stderr(&o));
        let gone = out
            .lines()
            .find(|l| l.starts_with("Gone"))
            .unwrap_or_else(|| panic!("{pass} pass names the stopped source: {out}"));
        assert!(
            gone.contains("FAILED stopped: 410 Gone at ")
                && gone.contains("not polled again until its url in the config changes"),
            "{pass} pass: the reason and the remedy: {out}"
        );
        assert!(
            out.lines()
                .any(|l| l.starts_with("Busy") && l.contains("skipped: server asked")),
            "{pass} pass: {out}"
        );
        assert!(
            out.lines()
                .last()
                .unwrap()
                .starts_with("3 sources, 1 failed, "),
            "the stopped source is counted as failed, the waiting one is not: {out}"
        );
    }
    assert_eq!(
        server.hits("gone.xml"),
        1,
        "a stopped source is not asked again"
    );

    // The remedy the line gives: another URL lifts the stop.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        common::replaced(&text, &server.url("gone.xml"), &server.url("moved.xml")),
    )
    .unwrap();
    let o = tradefeed(&["--config", c, "fetch"]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(
        out.lines()
            .any(|l| l.starts_with("Gone") && l.contains(" ok ") && l.contains("new=1")),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .starts_with("3 sources, 0 failed, "),
        "{out}"
    );
}

/// A `[topics] dir` that does not exist is not an error (the built-in topic is made for a
/// config without profiles), but `check` says the built-in applies and where it looked, so a
/// misspelt folder does not change what is matched unnoticed.
#[test]
fn check_says_when_the_built_in_topic_applies_for_want_of_a_profiles_folder() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.toml");
    std::fs::write(
        &config,
        "[topics]\ndir = \"topcis\"\n\n[[sources]]\nname = \"a\"\nurl = \"https://a.example/\"\n",
    )
    .unwrap();
    let o = tradefeed(&["--config", config.to_str().unwrap(), "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let folder = dir.path().join("topcis");
    assert!(
        stdout(&o).contains(&format!(
            "topics: trade-policy (built-in: no folder at {})",
            folder.display()
        )),
        "{}",
        stdout(&o)
    );
}

/// The built-in topic applies only with no profiles at all: a folder with one custom profile
/// takes `/feeds/trade-policy.*` away. Legal, so not an error, but `check` and the start-up
/// log (here `fetch`'s) say so; a folder that has a `trade-policy` profile gets no word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profiles_folder_without_trade_policy_is_warned_of_by_check_and_at_start() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let topics = dir.path().join("topics");
    std::fs::create_dir_all(&topics).unwrap();
    let profile = |name: &str| format!("name = \"{name}\"\n[positive]\n\"steel\" = 3.0\n");
    std::fs::write(topics.join("steel.toml"), profile("steel")).unwrap();
    let warning = format!(
        "topics folder {} has profiles and none named trade-policy: /feeds/trade-policy.* will \
         answer 404",
        topics.display()
    );

    let o = tradefeed(&["--config", config.to_str().unwrap(), "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("topics: steel;"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains(&format!("warning: {warning}")),
        "{}",
        stderr(&o)
    );
    let o = tradefeed(&["--config", config.to_str().unwrap(), "fetch"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains(&warning), "{}", stderr(&o));

    std::fs::write(topics.join("trade-policy.toml"), profile("trade-policy")).unwrap();
    for command in ["check", "fetch"] {
        let o = tradefeed(&["--config", config.to_str().unwrap(), command]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(
            !stderr(&o).contains("none named"),
            "{command}: {}",
            stderr(&o)
        );
    }
}

/// An empty config (white space, a byte-order mark) is refused by `check`, `run` and `fetch`
/// as a reload refuses it: a save caught half-way or a file emptied by mistake, not a wish to
/// run with no sources. A comment makes it a config of no sources.
#[test]
fn an_empty_config_is_refused_and_one_holding_a_comment_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tradefeed.toml");
    for empty in ["", " \n\t\n", "\u{feff}\n"] {
        std::fs::write(&config, empty).unwrap();
        for command in ["check", "run", "fetch"] {
            let o = exits_within_10_s(&config, command);
            assert_eq!(
                o.status.code(),
                Some(1),
                "{command} {empty:?}: {}",
                stderr(&o)
            );
            assert!(
                stderr(&o).contains("tradefeed.toml: the config file is empty"),
                "{command} {empty:?}: {}",
                stderr(&o)
            );
        }
    }
    std::fs::write(&config, "# no sources yet\n").unwrap();
    let o = tradefeed(&["--config", config.to_str().unwrap(), "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok (0 sources"), "{}", stdout(&o));
}

/// `tradefeed --config CONFIG COMMAND`'s output; a process still running after 10 s (a `run`
/// that started a daemon instead of refusing its config) is killed and the test fails.
fn exits_within_10_s(config: &std::path::Path, command: &str) -> Output {
    let mut child = common::tradefeed_command(config, &[command])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            let o = child.wait_with_output().unwrap();
            panic!("`{command}` still running after 10 s: {}", stderr(&o));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Two sources with one URL are legal (two names for one feed) but usually a mistake, and the
/// feed is polled twice: `check` warns on stderr and still exits 0.
#[test]
fn check_warns_of_sources_that_share_a_url() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("A", "https://a.example/feed".into()),
            ("B", "https://b.example/feed".into()),
            ("A again", "HTTPS://A.example/feed".into()),
        ],
        "",
    );
    let o = tradefeed(&["--config", config.to_str().unwrap(), "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok (3 sources"), "{}", stdout(&o));
    let warnings: Vec<String> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        warnings,
        [
            "warning: sources A, A again have the same URL https://a.example/feed: it is polled \
          once for each"
        ],
        "{}",
        stderr(&o)
    );
}

/// A source name with white space at either end and a URL the `url` crate reads leniently
/// loaded before they were noticed as likely typos: `check` still passes such a config (exit
/// 0, as start-up does) and warns of each on stderr with file, line, key and what was read.
#[test]
fn check_passes_names_and_urls_read_other_than_as_written_with_a_warning_each() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("  Padded ", "https://a.example/feed".into()),
            ("B", "http:///b.example/feed".into()),
        ],
        "",
    );
    let text = std::fs::read_to_string(&config).unwrap();
    let line_of = |needle: &str| 1 + text.lines().position(|l| l.contains(needle)).unwrap();
    let o = tradefeed(&["--config", config.to_str().unwrap(), "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok (2 sources"), "{}", stdout(&o));
    let warnings: Vec<String> = stderr(&o)
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .map(str::to_owned)
        .collect();
    let path = config.display();
    assert_eq!(
        warnings,
        [
            format!(
                "warning: {path}:{}: sources[0].name: \"  Padded \" has white space at either \
                 end; read as \"Padded\"",
                line_of("Padded")
            ),
            format!(
                "warning: {path}:{}: sources[1].url: \"http:///b.example/feed\" has no host \
                 between \"//\" and the next slash; read as \"http://b.example/feed\"",
                line_of("b.example")
            ),
        ],
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_accepts_the_shipped_config_and_rejects_a_misspelt_key() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/tradefeed.toml");
    let o = tradefeed(&["--config", shipped, "check"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok"), "{}", stdout(&o));
    assert!(!stdout(&o).contains("built-in"), "{}", stdout(&o));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("t.toml");
    std::fs::write(
        &bad,
        "[[sources]]\nname = \"a\"\nurl = \"https://a.example/\"\nschedul = \"@hourly\"\n",
    )
    .unwrap();
    let o = tradefeed(&["--config", bad.to_str().unwrap(), "check"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("t.toml:4: sources[0].schedul"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_names_the_sources_allowed_to_redirect_into_private_networks() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.toml");
    let sources = "[[sources]]\nname = \"a\"\nurl = \"https://a.example/\"\n\
                   [[sources]]\nname = \"b\"\nurl = \"https://b.example/\"\n";
    let check = |text: &str| {
        std::fs::write(&config, text).unwrap();
        tradefeed(&["--config", config.to_str().unwrap(), "check"])
    };
    let o = check(sources);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stdout(&o).contains("private redirects"), "{}", stdout(&o));

    let o = check(&format!("{sources}allow_private_redirects = true\n"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("; private redirects allowed for: b)"),
        "{}",
        stdout(&o)
    );

    let o = check(&format!(
        "[defaults]\nallow_private_redirects = true\n\n{sources}"
    ));
    assert!(
        stdout(&o).contains("; private redirects allowed for: a, b)"),
        "{}",
        stdout(&o)
    );

    let o = check(&format!("{sources}allow_private_redirects = \"yes\"\n"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("t.toml:7: sources[1].allow_private_redirects: invalid type"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_corrupt_database_is_refused_by_name_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[], "");
    let db = dir.path().join("tradefeed.db");
    let junk = b"this is not an sqlite database, it is a text file\n".repeat(100);
    std::fs::write(&db, &junk).unwrap();
    let o = tradefeed(&["--config", config.to_str().unwrap(), "fetch"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("not an SQLite database"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("tradefeed.db"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&db).unwrap(), junk, "never modified");
}

#[test]
fn eval_prints_confusion_counts_and_ends_with_a_json_line_of_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.jsonl");
    std::fs::write(
        &labels,
        [
            r#"{"title": "US imposes 25% tariffs on Canadian steel", "text": "The Commerce Department announced Section 232 duties on steel imports from Canada.", "label": true}"#,
            r#"{"title": "WTO panel rules against China in anti-dumping dispute", "text": "A World Trade Organization panel found that Beijing's <b>anti-dumping duties</b> broke trade rules.", "label": true}"#,
            r#"{"title": "Lakers trade guard to Celtics before deadline", "text": "The Lakers traded their starting guard for two draft picks.", "label": false}"#,
            r#"{"title": "Shares of Apple traded higher after earnings", "text": "Apple stock traded up 3% after quarterly results beat forecasts.", "label": false}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    let missing = dir.path().join("none.toml");
    let o = tradefeed(&[
        "--config",
        missing.to_str().unwrap(),
        "eval",
        "--topic",
        "trade-policy",
        "--labels",
        labels.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let last = out.lines().last().unwrap();
    let json: serde_json::Value = serde_json::from_str(last).unwrap();
    for key in ["precision", "recall", "f1", "tp", "fp", "fn", "tn"] {
        assert!(json.get(key).is_some(), "{key} in {last}");
    }
    let count = |k: &str| json[k].as_u64().unwrap();
    assert_eq!(count("tp") + count("fn"), 2, "two positives: {last}");
    assert_eq!(count("fp") + count("tn"), 2, "two negatives: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn story_prints_every_appearance_with_its_evidence() {
    let server = FeedServer::start().await;
    let item = |link: &str| {
        Resource::feed(common::rss(
            "W",
            &[(
                "w1",
                link,
                "Japan and UK agree digital trade chapter",
                "Negotiators from Tokyo and London agreed a chapter on data flows.",
                "Tue, 10 Nov 2026 09:00:00 GMT",
            )],
        ))
    };
    server.put("a.xml", item("https://wire.example/jp-uk?utm_source=a"));
    server.put("b.xml", item("https://wire.example/jp-uk?utm_source=b"));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Outlet A", server.url("a.xml")),
            ("Outlet B", server.url("b.xml")),
        ],
        "",
    );
    let c = config.to_str().unwrap();
    assert_eq!(tradefeed(&["--config", c, "fetch"]).status.code(), Some(0));
    let o = tradefeed(&["--config", c, "story", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Japan and UK agree digital trade chapter"),
        "{out}"
    );
    assert!(out.contains("appearances (2)"), "{out}");
    assert!(out.contains("evidence: first appearance"), "{out}");
    assert!(out.contains("evidence: same canonical URL"), "{out}");
    let o = tradefeed(&["--config", c, "story", "99"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no story 99"));

    // The story's feed id, as a reader shows it, names it too.
    let feed_id = out
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap();
    assert!(feed_id.starts_with("tag:tradefeed,"), "{out}");
    let by_feed_id = tradefeed(&["--config", c, "story", feed_id]);
    assert_eq!(by_feed_id.status.code(), Some(0), "{}", stderr(&by_feed_id));
    assert_eq!(stdout(&by_feed_id), out);
    // One from another database is not taken for this database's story of that number.
    let other = "tag:tradefeed,2026:0123456789abcdef/story/1";
    let o = tradefeed(&["--config", c, "story", other]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("is from another tradefeed database"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stdout(&o), "");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_exits_0_while_the_daemon_answers_and_1_when_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    // `health` finds the daemon through the port named in the config.
    let (config_path, _) = common::write_config_on_free_port(dir.path(), &[], "");
    let config = tradefeed::config::Config::load(&config_path).unwrap();
    let (cancel, handle) = common::start_daemon_on_configured_listen(config).await;
    let c = config_path.to_str().unwrap();
    let o = tradefeed(&["--config", c, "health"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("healthy"));

    // An edit the daemon refuses (it goes on serving the old config) does not make it look
    // unhealthy: the listen address is read as written, and the error is a warning.
    let good = std::fs::read_to_string(&config_path).unwrap();
    assert!(good.contains("[server]\n"), "{good}");
    let listen = good
        .lines()
        .find_map(|l| l.strip_prefix("listen = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    std::fs::write(
        &config_path,
        good.replacen("[server]\n", "[server]\ntitel = \"typo\"\n", 1),
    )
    .unwrap();
    let o = tradefeed(&["--config", c, "health"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("warning:") && stderr(&o).contains("titel"),
        "{}",
        stderr(&o)
    );
    // Not TOML at all, or no file: the config names no address, but `$TRADEFEED_LISTEN` (the
    // Docker image sets it) does, and the config is then not read.
    let missing = dir.path().join("missing.toml");
    for config in [config_path.as_path(), missing.as_path()] {
        std::fs::write(&config_path, format!("bogus line\n{good}")).unwrap();
        let o = common::tradefeed_command(config, &["health"])
            .env("TRADEFEED_LISTEN", &listen)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{config:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert_eq!(stderr(&o), "", "{config:?}");
    }
    // Without it, a slip of TOML syntax elsewhere (an unclosed string in a source's URL) still
    // leaves the `[server]` table's `listen` line to read, with a warning.
    std::fs::write(
        &config_path,
        format!("{good}\n[[sources]]\nname = \"x\"\nurl = \"http://unclosed\n"),
    )
    .unwrap();
    let o = tradefeed(&["--config", c, "health"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stderr(&o).contains("warning:"), "{}", stderr(&o));
    // So does the key written dotted or as an inline table (it probed the default before).
    for server in [
        format!("server.listen = \"{listen}\""),
        format!("server = {{ title = \"t\", listen = '{listen}' }}"),
    ] {
        std::fs::write(
            &config_path,
            format!("{server}\n\n[[sources]]\nname = \"x\"\nurl = \"http://unclosed\n"),
        )
        .unwrap();
        let o = tradefeed(&["--config", c, "health", "--timeout", "5"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{server}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        assert!(stderr(&o).contains("warning:"), "{}", stderr(&o));
    }
    // One whose `listen` line does not read as an address is an error naming the file and
    // line. (With no `listen` line at all, the default address is probed.)
    std::fs::write(
        &config_path,
        "bogus line\n[server]\nlisten = \"not an address\"\n",
    )
    .unwrap();
    let o = tradefeed(&["--config", c, "health"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stderr(&o).contains(":1:"), "{}", stderr(&o));
    std::fs::write(&config_path, good).unwrap();
    common::stop_daemon(cancel, handle).await;
    let o = tradefeed(&["--config", c, "health", "--timeout", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("unhealthy"));

    // Port 0 (any free port) names no address to probe: said so, not a connection error.
    let any_port = common::write_config(dir.path(), &[], "");
    let from_env = common::tradefeed_command(&config_path, &["health"])
        .env("TRADEFEED_LISTEN", "0.0.0.0:0")
        .output()
        .unwrap();
    for (o, from) in [
        (
            tradefeed(&["--config", any_port.to_str().unwrap(), "health"]),
            "(from the config's [server] listen)",
        ),
        (from_env, "(from $TRADEFEED_LISTEN)"),
    ] {
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        for said in ["port 0 lets it take any free port", from] {
            assert!(stderr(&o).contains(said), "{}", stderr(&o));
        }
    }
}

/// `train` checks that it can write its model before it trains (which takes a while), and says
/// "cannot write" for a write failure; `eval` over a labels file with no examples is an error
/// naming the file, not scores of 0.
#[test]
fn train_refuses_an_unwritable_model_path_before_training_and_eval_refuses_empty_labels() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[], "");
    let config = config.to_str().unwrap();
    let labels = dir.path().join("l.jsonl");
    std::fs::write(
        &labels,
        "{\"title\": \"EU steel tariffs\", \"label\": true}\n\
         {\"title\": \"Football scores\", \"label\": false}\n",
    )
    .unwrap();
    let labels = labels.to_str().unwrap();
    let missing = dir.path().join("no-such-folder").join("x.model");
    let folder = dir.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    for out in [&missing, &folder] {
        let o = tradefeed(&[
            "--config",
            config,
            "train",
            "--labels",
            labels,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("error: cannot write {}: ", out.display())),
            "{}",
            stderr(&o)
        );
        assert_eq!(stdout(&o), "", "nothing trained");
    }
    assert!(!missing.parent().unwrap().exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        3,
        "no probe left"
    );

    let empty = dir.path().join("empty.jsonl");
    for text in ["", "\n  \n"] {
        std::fs::write(&empty, text).unwrap();
        for command in ["eval", "train"] {
            let mut args = vec!["--config", config, command, "--labels"];
            args.push(empty.to_str().unwrap());
            if command == "train" {
                args.extend(["--out", "x.model"]);
            }
            let o = tradefeed(&args);
            assert_eq!(o.status.code(), Some(1), "{command}: {}", stdout(&o));
            assert!(
                stderr(&o).contains(&format!("error: {}: no labelled examples", empty.display())),
                "{command}: {}",
                stderr(&o)
            );
        }
    }
}

/// A fatal error is said once, as the plain `error:` line with its causes (not also as a log
/// line): here `run` on a port another process holds.
#[test]
fn run_on_a_port_in_use_says_so_once_and_exits_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[], "");
    let text = std::fs::read_to_string(&config).unwrap();
    let listen = format!("listen = \"{addr}\"");
    std::fs::write(
        &config,
        common::replaced(&text, "listen = \"127.0.0.1:0\"", &listen),
    )
    .unwrap();
    let o = tradefeed(&["--config", config.to_str().unwrap(), "run"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let mentions: Vec<&str> = err
        .lines()
        .filter(|l| l.contains(&format!("binding {addr}")))
        .collect();
    assert_eq!(mentions.len(), 1, "{err}");
    assert!(mentions[0].starts_with("error: binding "), "{err}");
    drop(taken);
}

#[test]
fn a_bad_command_line_exits_1_with_clap_s_message_never_the_2_of_some_sources_failed() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[], "");
    let config = config.to_str().unwrap();
    let cases: [(&[&str], &str); 9] = [
        (&["fetch", "--bogus"], "unexpected argument '--bogus'"),
        // Values no run can use: a score is in [0, 1]; a zero timeout always fails.
        (
            &["eval", "--labels", "l.jsonl", "--threshold", "1.5"],
            "1.5 is not in [0, 1]",
        ),
        (
            &["eval", "--labels", "l.jsonl", "--threshold=-0.1"],
            "is not in [0, 1]",
        ),
        (&["health", "--timeout", "0"], "0 is not in 1..=3600"),
        (
            &["fetch", "--source"],
            "a value is required for '--source <SOURCE>'",
        ),
        (&["story", "abc"], "invalid value 'abc' for '<ID>'"),
        (&["health", "--timeout", "soon"], "invalid value 'soon'"),
        (
            &["import-opml"],
            "the following required arguments were not provided",
        ),
        (&[], "Usage: tradefeed"),
    ];
    for (args, message) in cases {
        let mut all = vec!["--config", config];
        all.extend_from_slice(args);
        let o = tradefeed(&all);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "", "{args:?}");
    }
    for flag in ["--help", "--version"] {
        let o = tradefeed(&["--config", config, flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}: {}", stderr(&o));
        assert!(stdout(&o).contains("tradefeed"), "{flag}: {}", stdout(&o));
    }
}

/// The schema version this build migrates to: one per folder in `migrations/`.
fn known_schema() -> i64 {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    std::fs::read_dir(root).unwrap().count() as i64
}

/// Every file beside the database, with its bytes.
fn files_of(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .filter(|(name, _)| name.starts_with("tradefeed.db") && !name.ends_with(".lock"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_from_a_newer_release_is_refused_by_every_command_and_left_as_it_is() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let c = config.to_str().unwrap();
    assert_eq!(tradefeed(&["--config", c, "fetch"]).status.code(), Some(0));
    let db = dir.path().join("tradefeed.db");
    let newer = known_schema() + 1;
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", newer).unwrap();
        // As a newer release might: another journal mode, which this one must not switch.
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let before = files_of(dir.path());
    let want = format!(
        "{}: database schema version {newer} is newer than this tradefeed knows ({}): it was \
         written by a newer release",
        db.display(),
        known_schema()
    );
    for args in [
        &["fetch"][..],
        &["sources"],
        &["story", "1"],
        &["reclassify"],
    ] {
        let mut all = vec!["--config", c];
        all.extend_from_slice(args);
        let o = tradefeed(&all);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stdout(&o));
        assert!(stderr(&o).contains(&want), "{args:?}: {}", stderr(&o));
        assert_eq!(
            files_of(dir.path()),
            before,
            "{args:?} left the files as they were"
        );
    }
}

#[test]
fn read_only_commands_on_a_database_not_yet_upgraded_say_how_to_upgrade_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[], "");
    let c = config.to_str().unwrap();
    let db = dir.path().join("tradefeed.db");
    {
        // The first release's schema, with one story.
        let conn = rusqlite::Connection::open(&db).unwrap();
        let first =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/01-initial/up.sql");
        conn.execute_batch(&std::fs::read_to_string(first).unwrap())
            .unwrap();
        conn.execute_batch(
            "PRAGMA user_version = 1;
             INSERT INTO sources (name, url, schedule) VALUES ('A', 'http://a.example/', '@daily');
             INSERT INTO stories (id, representative, title, link, html, text, authors,
                                  published, updated, first_seen)
                  VALUES (1, 1, 'Old story', 'http://a.example/1', '<p>x</p>', 'x', '[]', 0, 0, 0);
             INSERT INTO entries (id, source_id, identity, story_id, title, link, canonical_url,
                                  authors, published, updated, html, text, fingerprint,
                                  content_hash, evidence, first_seen, last_changed)
                  VALUES (1, 1, 'guid:1', 1, 'Old story', 'http://a.example/1',
                          'http://a.example/1', '[]', 0, 0, '<p>x</p>', 'x', 'fp', 'h',
                          'first appearance', 0, 0);",
        )
        .unwrap();
    }
    let before = files_of(dir.path());
    let want = format!(
        "{}: database schema version 1 is older than this tradefeed's ({}); start `tradefeed \
         run` or run `tradefeed fetch` once to upgrade it",
        db.display(),
        known_schema()
    );
    for args in [&["sources"][..], &["story", "1"]] {
        let mut all = vec!["--config", c];
        all.extend_from_slice(args);
        let o = tradefeed(&all);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stdout(&o));
        assert!(stderr(&o).contains(&want), "{args:?}: {}", stderr(&o));
        assert_eq!(files_of(dir.path()), before, "{args:?} changed nothing");
    }
    // Upgraded by a pass, the same commands work.
    assert_eq!(tradefeed(&["--config", c, "fetch"]).status.code(), Some(0));
    let o = tradefeed(&["--config", c, "story", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("title:      Old story"),
        "{}",
        stdout(&o)
    );
}

/// `$TRADEFEED_DB` is checked as `[storage] path` is: empty or a directory, `check` refuses
/// it (it said ok before, and every command that opened the database then failed) and
/// `fetch` touches nothing.
#[test]
fn an_empty_or_directory_tradefeed_db_is_refused_by_check_and_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[], "");
    let folder = dir.path().join("data");
    std::fs::create_dir(&folder).unwrap();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    for (value, said) in [
        ("", "must name a file"),
        ("  ", "must name a file"),
        (
            folder.to_str().unwrap(),
            "is a directory; name the database file",
        ),
    ] {
        for command in ["check", "fetch"] {
            let o = common::tradefeed_command(&config, &[command])
                .env("TRADEFEED_DB", value)
                .current_dir(&cwd)
                .output()
                .unwrap();
            assert_eq!(
                o.status.code(),
                Some(1),
                "{command} {value:?}: {}",
                stdout(&o)
            );
            assert!(
                stderr(&o).contains("environment: TRADEFEED_DB: ") && stderr(&o).contains(said),
                "{command} {value:?}: {}",
                stderr(&o)
            );
        }
    }
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "nothing left behind"
    );
    assert_eq!(std::fs::read_dir(&folder).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_name_starting_with_file_colon_is_a_file_not_an_sqlite_uri() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    // SQLite would read this as an in-memory database: everything fetched would be lost.
    let name = "file:news.db?mode=memory";
    let run = |args: &[&str]| {
        common::tradefeed_command(&config, args)
            .env("TRADEFEED_DB", name)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let o = run(&["fetch"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let o = run(&["sources"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let row = stdout(&o)
        .lines()
        .find(|l| l.starts_with("A "))
        .unwrap()
        .to_string();
    assert!(row.contains(" ok "), "{row}");
    let db = dir.path().join(name);
    let stories: i64 =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
            .query_row("SELECT count(*) FROM stories", [], |r| r.get(0))
            .unwrap();
    assert!(stories > 0, "stored in {}", db.display());
}

/// `fetch` prunes after its pass as the daemon does hourly: a database fed only by `fetch`
/// from cron keeps to `retention_days` (pruned identities remembered, so the feed that still
/// lists them brings none back) and to the fetch log's 30 days.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_prunes_by_retention_and_caps_the_fetch_log_after_its_pass() {
    // Undated items: ingest dates each when first seen, so only retention removes them.
    let feed = |edition: u32| {
        Resource::feed(format!(
            "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>E{edition}</title>\
             <link>http://p.example/</link><description>d</description>\
             <item><guid>p-1</guid><title>Ministry sets steel import duties</title>\
             <description>New duties on steel imports.</description></item>\
             <item><guid>p-2</guid><title>Talks on a trade deal resume</title>\
             <description>Negotiators met again on the trade deal.</description></item>\
             </channel></rss>"
        ))
    };
    let server = FeedServer::start().await;
    server.put("p.xml", feed(1));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("P", server.url("p.xml"))], "");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = common::replaced(
        &text,
        "path = \"tradefeed.db\"",
        "path = \"tradefeed.db\"\nretention_days = 1",
    );
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let o = tradefeed(&["--config", config, "fetch"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));

    // Two days on for the entries, forty for the fetch log.
    let db = dir.path().join("tradefeed.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch(
            "UPDATE entries SET first_seen = first_seen - 172800, published = published - 172800,
                    updated = updated - 172800, last_changed = last_changed - 172800;
             UPDATE stories SET first_seen = first_seen - 172800, published = published - 172800,
                    updated = updated - 172800;
             UPDATE fetches SET started_at = started_at - 3456000;",
        )
        .unwrap();
    server.put("p.xml", feed(2));
    let o = tradefeed(&["--config", config, "fetch"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("new=0"), "{}", stdout(&o));

    let count = |sql: &str| -> i64 {
        rusqlite::Connection::open(&db)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM entries"), 0, "pruned");
    assert_eq!(count("SELECT count(*) FROM stories"), 0, "pruned");
    assert_eq!(count("SELECT count(*) FROM tombstones"), 2, "remembered");
    assert_eq!(
        count("SELECT count(*) FROM fetches"),
        1,
        "only this pass's line is younger than 30 days"
    );

    // The feed still lists both: the next pass brings neither back.
    server.put("p.xml", feed(3));
    let o = tradefeed(&["--config", config, "fetch"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("new=0"), "{}", stdout(&o));
    assert_eq!(count("SELECT count(*) FROM entries"), 0);
}

/// The INFO line saying the built-in topic applies for want of a profiles folder, as logged.
const NO_PROFILES_FOLDER: &str =
    "no topic profiles folder; the built-in trade-policy topic applies";

/// Start-up says once that the built-in topic applies: a `fetch` pass and the daemon's start
/// each read the topics once, so their log says it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_run_say_once_that_the_built_in_topic_applies() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &[("Good", server.url("a.xml"))], "");
    assert!(!dir.path().join("topics").exists());

    let o = common::tradefeed_command(&config, &["fetch"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).matches(NO_PROFILES_FOLDER).count(),
        1,
        "{}",
        stderr(&o)
    );

    let mut daemon = common::tradefeed_command(&config, &["run"])
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(daemon.stderr.take().unwrap()).lines();
        // Up to the line that ends the start-up, then the rest once the daemon has stopped.
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.push_str(&line);
            log.push('\n');
            if line.contains("tradefeed started") {
                break;
            }
        }
        let term = std::process::Command::new("kill")
            .args(["-TERM", &daemon.id().to_string()])
            .status()
            .unwrap();
        assert!(term.success());
        for line in lines {
            log.push_str(&line.unwrap());
            log.push('\n');
        }
    }
    assert!(daemon.wait().unwrap().success(), "{log}");
    assert!(log.contains("tradefeed started"), "{log}");
    assert_eq!(log.matches(NO_PROFILES_FOLDER).count(), 1, "{log}");
}

/// The terminal column at which each field after the name starts (a field: a run of
/// non-spaces after a space), counted in display columns (a CJK character or an emoji takes
/// two, a combining mark none).
fn field_columns(line: &str, name: &str) -> Vec<usize> {
    use unicode_width::UnicodeWidthStr;
    let mut columns = Vec::new();
    let mut prev_space = false;
    for (i, c) in line.char_indices().skip(name.chars().count()) {
        if !c.is_whitespace() && prev_space {
            columns.push(line[..i].width());
        }
        prev_space = c.is_whitespace();
    }
    columns
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_sources_line_up_names_of_wide_and_combining_characters() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    // Two columns a character; an emoji of two columns; an É written as E and a combining
    // acute (one column, two chars); and a plain name.
    let names = [
        "日本経済新聞",
        "📈 Markets",
        "Le Monde E\u{301}conomie",
        "WTO",
    ];
    let dir = tempfile::tempdir().unwrap();
    let sources: Vec<(&str, String)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (*name, server.url(&format!("a.xml?{i}"))))
        .collect();
    let config = write_config(dir.path(), &sources, "");
    let config = config.to_str().unwrap();

    let o = tradefeed(&["--config", config, "fetch"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    // The last field, the poll's duration, is right-aligned: `9ms` starts a column after
    // `10ms`. The fields before it are compared.
    let columns: Vec<Vec<usize>> = names
        .iter()
        .map(|name| {
            let line = lines.iter().find(|l| l.starts_with(name)).unwrap();
            let mut columns = field_columns(line, name);
            assert!(line.ends_with("ms"), "{line}");
            columns.pop();
            columns
        })
        .collect();
    assert!(
        columns.iter().all(|c| c == &columns[3]),
        "{columns:?}\n{out}"
    );

    let o = tradefeed(&["--config", config, "sources"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    let heading = field_columns(lines[0], "NAME");
    let columns: Vec<Vec<usize>> = names
        .iter()
        .map(|name| {
            let line = lines.iter().find(|l| l.starts_with(name)).unwrap();
            field_columns(line, name)
        })
        .collect();
    assert!(
        columns.iter().all(|c| c == &columns[3]),
        "{columns:?}\n{out}"
    );
    // STATUS and URL start under their headings.
    assert_eq!(heading[0], columns[0][0], "{out}");
    assert_eq!(heading.last(), columns[0].last(), "{out}");
}

/// A start refused for a broken topic profile says so on one line (the TOML parser's own
/// text quotes the line with a caret, several lines) and leaves no database behind: the
/// profiles load beside the database's open, and a new file and its folder were left
/// migrated before (review, session 28). An existing database is kept, of course.
#[test]
fn a_broken_profile_is_one_error_line_and_leaves_no_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let topics = dir.path().join("topics");
    std::fs::create_dir(&topics).unwrap();
    std::fs::write(
        topics.join("trade-policy.toml"),
        "name = \"trade-policy\"\nthreshold = \"high\"\n",
    )
    .unwrap();
    let config = dir.path().join("tradefeed.toml");
    std::fs::write(
        &config,
        "[storage]\npath = \"fresh/new.db\"\n\n[topics]\ndir = \"topics\"\n\n\
         [[sources]]\nname = \"a\"\nurl = \"http://127.0.0.1:9/feed\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    for command in ["fetch", "run", "check"] {
        let out = tradefeed(&["--config", config, command]);
        assert_eq!(out.status.code(), Some(1), "{command}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(errors.len(), 1, "{command}: {stderr}");
        assert!(
            errors[0].contains("trade-policy.toml:2:13: ") && errors[0].contains("expected f32"),
            "{command}: {stderr}"
        );
        assert!(!dir.path().join("fresh").exists(), "{command}");
    }
    // At the info level the open's lines (created, migrated) are followed by one saying the
    // database is gone again (audit: the log read as if a database had been made).
    let out = common::tradefeed_command(std::path::Path::new(config), &["fetch"])
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("database removed again: this start was refused for its topic profiles"),
        "{log}"
    );
    assert!(!dir.path().join("fresh").exists());
    // A path that is a symbolic link (to a volume not yet holding the file) is the
    // operator's: it stays (review rv7 M1), and what the open made where it points goes
    // (rv8 2).
    let volume = dir.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    let link = dir.path().join("linked.db");
    std::os::unix::fs::symlink(volume.join("tradefeed.db"), &link).unwrap();
    let linked = dir.path().join("linked.toml");
    std::fs::write(
        &linked,
        "[storage]\npath = \"linked.db\"\n\n[topics]\ndir = \"topics\"\n\n\
         [[sources]]\nname = \"a\"\nurl = \"http://127.0.0.1:9/feed\"\n",
    )
    .unwrap();
    let out = tradefeed(&["--config", linked.to_str().unwrap(), "fetch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
        "the link is kept"
    );
    let left: Vec<_> = std::fs::read_dir(&volume).unwrap().collect();
    assert!(left.is_empty(), "nothing left where it points: {left:?}");
    // A file that was there before is not the open's to remove, even when the database is
    // not (a clean close leaves the lock file beside it; the database moved away since).
    std::fs::remove_file(&link).unwrap();
    std::fs::write(dir.path().join("linked.db.lock"), "").unwrap();
    let out = tradefeed(&["--config", linked.to_str().unwrap(), "fetch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        dir.path().join("linked.db.lock").exists(),
        "the lock file kept"
    );
    assert!(
        !dir.path().join("linked.db").exists(),
        "the new database removed"
    );
}

/// What `fetch` logs and prints keeps a source URL's credentials out and cannot be forged by a
/// feed: a parser error quoting the feed's bytes stays on its line, escape sequences written
/// out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_logs_no_credentials_and_a_feed_cannot_forge_its_lines() {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    server.put(
        "forged.xml",
        Resource::feed(
            "<?xml version=\"1.0\"?>\n<rss version=\"2.0\"><channel><title>t</title>\
             <item><title>a</title></itx\nForged                       ok            \
             items=1 \u{1b}]0;PWNED\u{7}>\n</channel></rss>",
        ),
    );
    let with_credentials = |path: &str| server.url(path).replace("://", "://alice:s3cretpw@");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &[
            ("Good", with_credentials("a.xml")),
            ("Hostile", with_credentials("forged.xml")),
            // Spellings the config reads with a warning (which quotes them), and the same
            // URL twice (warned about too). `\\\\` is one backslash in a TOML string.
            (
                "Slashed",
                server
                    .url("a.xml")
                    .replace("http://", "http:\\\\\\\\alice:s3cretpw@"),
            ),
            (
                "Tabbed",
                server.url("a.xml").replace("://", "://alice\\t:s3cretpw@"),
            ),
            ("Twice", with_credentials("a.xml")),
            (
                "Bare",
                server
                    .url("a.xml")
                    .replace("http://", "http:alice:s3cretpw@"),
            ),
            (
                "Newline",
                server.url("a.xml").replace("://", "://alice\\n:s3cret pw@"),
            ),
        ],
        "",
    );
    let o = common::tradefeed_command(&config, &["fetch"])
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}{}", stdout(&o), stderr(&o));
    let (out, err) = (stdout(&o), stderr(&o));
    assert!(
        err.contains("poll{source=Good") && err.contains("fetch{url=http://127.0.0.1:"),
        "the spans are logged: {err}"
    );
    for warned in [
        "sources[2].url",
        "sources[3].url",
        "sources[5].url",
        "sources[6].url",
        "have the same URL",
    ] {
        assert!(err.contains(warned), "{warned} is warned about: {err}");
    }
    assert!(
        err.contains("poll{source=Slashed url=http://127.0.0.1:"),
        "the span shows the URL as read, less its user-info: {err}"
    );
    for text in [&out, &err] {
        assert!(
            !text.contains("s3cretpw") && !text.contains("s3cret pw"),
            "{text}"
        );
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
    }
    assert!(
        !out.lines().any(|l| l.starts_with("Forged")),
        "no line of the feed's own: {out}"
    );
    assert!(
        !err.lines().any(|l| l.starts_with("Forged")),
        "nor in the log: {err}"
    );
    let hostile = out
        .lines()
        .find(|l| l.starts_with("Hostile"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(hostile.contains("itx\\nForged"), "{hostile}");
}
