//! The database survives what processes and disks do to it: a `fetch` killed with SIGKILL
//! mid-pass, a disk that fills up mid-pass, a corrupted file, two processes reaching for one
//! database.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{FeedServer, Resource, write_config};

use common::tradefeed_command as tradefeed;

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Words no other item shares, so that near-duplicate folding leaves distinct items alone.
fn words(seed: u64, n: usize) -> String {
    (0..n as u64)
        .map(|j| {
            format!(
                "k{:x}",
                xxhash_rust::xxh3::xxh3_64(&(seed * 1000 + j).to_le_bytes()) % 0xfffff
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A feed of `n` distinct stories for source `s`, plus one wire story that source `s ^ 1`
/// carries too (same link, title and text), so cross-source dedup runs under the kill as well.
fn feed(s: usize, n: usize) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>F</title>\
         <link>http://f.example/</link><description>d</description>\n",
    );
    for i in 0..n {
        let seed = (s * 10_000 + i) as u64;
        xml.push_str(&format!(
            "<item><guid>s{s}-{i}</guid><link>http://news{s}.example/story/{i}</link>\
             <title>Report {s}-{i} {}</title><description>{}</description>\
             <pubDate>Tue, 10 Nov 2026 {:02}:{:02}:00 GMT</pubDate></item>\n",
            words(seed, 4),
            words(seed + 7_777_777, 40),
            i / 60 % 24,
            i % 60
        ));
    }
    let shared = s / 2;
    xml.push_str(&format!(
        "<item><guid>shared-{shared}</guid><link>http://shared.example/{shared}</link>\
         <title>Shared wire story {shared} {}</title><description>{}</description>\
         <pubDate>Tue, 10 Nov 2026 08:00:00 GMT</pubDate></item>\n",
        words(99_000_000 + shared as u64, 3),
        words(98_000_000 + shared as u64, 30)
    ));
    xml.push_str("</channel></rss>\n");
    xml
}

fn open(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(db).unwrap()
}

/// (entries, stories, entries without a story, stories without an entry, distinct canonical
/// URLs, stories sharing a canonical URL with another story).
fn census(db: &Path) -> (i64, i64, i64, i64, i64, i64) {
    let c = open(db);
    let one = |sql: &str| -> i64 { c.query_row(sql, [], |r| r.get(0)).unwrap() };
    (
        one("SELECT count(*) FROM entries"),
        one("SELECT count(*) FROM stories"),
        one(
            "SELECT count(*) FROM entries e LEFT JOIN stories s ON s.id = e.story_id WHERE s.id IS NULL",
        ),
        one(
            "SELECT count(*) FROM stories s WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.story_id = s.id)",
        ),
        one("SELECT count(DISTINCT canonical_url) FROM entries"),
        one(
            "SELECT count(*) FROM (SELECT canonical_url FROM entries GROUP BY canonical_url \
             HAVING count(DISTINCT story_id) > 1)",
        ),
    )
}

fn integrity(db: &Path) -> String {
    open(db)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// A local server with `count` feeds of `items` stories each plus the shared one (see
/// [`feed`]), and each feed's (name, URL). Keep the server alive while it is polled.
async fn serve_feeds(count: usize, items: usize) -> (FeedServer, Vec<(String, String)>) {
    let server = FeedServer::start().await;
    let mut sources = Vec::new();
    for s in 0..count {
        server.put(&format!("f{s}.xml"), Resource::feed(feed(s, items)));
        sources.push((format!("Source {s}"), server.url(&format!("f{s}.xml"))));
    }
    (server, sources)
}

/// `sources` as [`write_config`] takes them.
fn as_named(sources: &[(String, String)]) -> Vec<(&str, String)> {
    sources
        .iter()
        .map(|(n, u)| (n.as_str(), u.clone()))
        .collect()
}

/// `db` is sound and holds every item of [`serve_feeds`]`(count, items)` once, one story per
/// distinct URL (the pairs of feeds share one).
fn assert_everything_stored_once(db: &Path, count: usize, items: usize) {
    assert_eq!(integrity(db), "ok");
    let (entries, stories, orphans, empty, urls, split) = census(db);
    assert_eq!(
        entries,
        (count * (items + 1)) as i64,
        "every item stored once"
    );
    assert_eq!(
        stories,
        (count * items + count / 2) as i64,
        "every story once"
    );
    assert_eq!((orphans, empty, split), (0, 0, 0));
    assert_eq!(stories, urls, "stories = distinct canonical URLs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_killed_mid_pass_leaves_a_sound_database_and_a_rerun_completes_it() {
    const SOURCES: usize = 60;
    const ITEMS: usize = 30;
    let (_server, sources) = serve_feeds(SOURCES, ITEMS).await;
    let named = as_named(&sources);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &named, "concurrency = 4\n");
    let db = dir.path().join("tradefeed.db");

    let mut child = tradefeed(&config, &["fetch"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some polls are committed (but the pass is far from done), then SIGKILL.
    let started = Instant::now();
    let mut committed = 0i64;
    while started.elapsed() < Duration::from_secs(20) {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if db.exists()
            && let Ok(c) = rusqlite::Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            && let Ok(n) = c.query_row("SELECT count(*) FROM fetches", [], |r| r.get::<_, i64>(0))
        {
            committed = n;
            if n >= 10 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_early = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL on Unix: no cleanup runs.
    child.wait().unwrap();
    assert!(committed > 0, "some polls were committed before the kill");
    eprintln!("killed after {committed} committed polls of {SOURCES} (mid-pass: {killed_early})");
    if killed_early {
        assert_eq!(
            std::fs::read_to_string(dir.path().join("tradefeed.db.lock")).unwrap(),
            "",
            "a killed writer leaves no clean-close stamp, so the next start checks the file"
        );
    }

    assert_eq!(integrity(&db), "ok");
    let (entries, stories, orphans, empty, urls, split) = census(&db);
    assert!(entries > 0);
    assert_eq!(orphans, 0, "every entry's story exists");
    assert_eq!(empty, 0, "every story has an entry");
    assert_eq!(split, 0, "no canonical URL split over two stories");
    assert_eq!(stories, urls, "one story per distinct URL");

    // A re-run finishes the job: every source polled, nothing duplicated.
    let rerun = tradefeed(&config, &["fetch"]).output().unwrap();
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    assert_everything_stored_once(&db, SOURCES, ITEMS);
    let after = census(&db);

    // And a third pass is a no-op.
    let again = tradefeed(&config, &["fetch"]).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(census(&db), after, "an idempotent re-poll");
}

/// Whether this process may mount a tmpfs in a mount namespace of its own (root, with
/// util-linux's `unshare`): the way to give `tradefeed` a small disk that really fills up.
fn can_mount_a_private_tmpfs() -> bool {
    Command::new("unshare")
        .args(["--mount", "sh", "-c"])
        .arg("d=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs \"$d\" && umount \"$d\" && rmdir \"$d\"")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A config whose database lives in `dir/data/` (created empty), for tests that mount a
/// filesystem of their own there.
fn config_with_data_dir(dir: &Path, sources: &[(&str, String)], extra: &str) -> PathBuf {
    let config = write_config(dir, sources, extra);
    move_database_to_data_dir(&config);
    config
}

/// Points `config`'s database at `data/` beside it, and creates that folder empty.
fn move_database_to_data_dir(config: &Path) {
    let moved = std::fs::read_to_string(config)
        .unwrap()
        .replace("path = \"tradefeed.db\"", "path = \"data/tradefeed.db\"");
    std::fs::write(config, moved).unwrap();
    std::fs::create_dir_all(config.parent().unwrap().join("data")).unwrap();
}

/// `sh -c script` in a mount namespace of its own, so what it mounts on `$DATA` (the config's
/// `data/` folder) disappears with it. `$TF` is the binary, `$CFG` the config and `$OUT` the
/// config's `out/` folder, where the script leaves what the test reads.
fn private_mount_command(config: &Path, script: &str) -> Command {
    let dir = config.parent().unwrap();
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "sh", "-c", script])
        .env("TF", env!("CARGO_BIN_EXE_tradefeed"))
        .env("CFG", config)
        .env("DATA", dir.join("data"))
        .env("OUT", dir.join("out"))
        .env("RUST_LOG", "warn")
        .env_remove("TRADEFEED_CONFIG")
        .env_remove("TRADEFEED_DB");
    command
}

/// Runs [`private_mount_command`] to the end; it must succeed.
fn in_private_mount(config: &Path, script: &str) {
    let run = private_mount_command(config, script).output().unwrap();
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_only_the_polls_it_cannot_store_and_a_pass_with_space_completes_them() {
    if !can_mount_a_private_tmpfs() {
        eprintln!("skipped: needs root and `unshare` to mount a small tmpfs for the database");
        return;
    }
    const SOURCES: usize = 60;
    const ITEMS: usize = 30;
    let (_server, sources) = serve_feeds(SOURCES, ITEMS).await;
    let named = as_named(&sources);
    let dir = tempfile::tempdir().unwrap();
    // The database goes on its own small filesystem: `data/`, a 1 MiB tmpfs, about a fifth of
    // what the pass stores.
    let config = config_with_data_dir(dir.path(), &named, "concurrency = 4\n");
    let out = dir.path().join("out");
    for d in [out.join("full"), out.join("after")] {
        std::fs::create_dir_all(d).unwrap();
    }

    // Inside the namespace: a pass on the full disk, a copy of what it left, then the same
    // filesystem grown (space freed) and a second pass. The mount ends with the namespace.
    let script = r#"
        set -u
        mount -t tmpfs -o size=1m tmpfs "$DATA" || exit 90
        "$TF" --config "$CFG" fetch > "$OUT/first.out" 2>&1; echo $? > "$OUT/first.code"
        cp "$DATA/tradefeed.db" "$OUT/full/"
        if [ -e "$DATA/tradefeed.db-wal" ]; then cp "$DATA/tradefeed.db-wal" "$OUT/full/"; fi
        mount -o remount,size=256m "$DATA" || exit 91
        "$TF" --config "$CFG" fetch > "$OUT/second.out" 2>&1; echo $? > "$OUT/second.code"
        cp "$DATA"/tradefeed.db "$OUT/after/"
        if [ -e "$DATA/tradefeed.db-wal" ]; then cp "$DATA/tradefeed.db-wal" "$OUT/after/"; fi
    "#;
    in_private_mount(&config, script);
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();

    // The first pass: the polls it could not store fail, by name and with the cause; it exits 2.
    let first = read("first.out");
    assert_eq!(read("first.code").trim(), "2", "{first}");
    let failed: Vec<&str> = first.lines().filter(|l| l.contains("FAILED")).collect();
    assert!(!failed.is_empty(), "the disk filled up: {first}");
    assert!(
        failed.iter().all(|l| l.contains("disk is full")),
        "each failure says why: {first}"
    );
    let stored_sources = first
        .lines()
        .filter(|l| l.starts_with("Source ") && l.contains(" ok "))
        .count();
    assert!(stored_sources > 0, "some polls fitted: {first}");
    eprintln!(
        "disk full after {stored_sources} of {SOURCES} polls stored; {} failed",
        failed.len()
    );
    assert_eq!(stored_sources + failed.len(), SOURCES, "{first}");

    // What it left is sound, and holds exactly the polls it reported stored, each whole.
    let full = out.join("full").join("tradefeed.db");
    assert_eq!(integrity(&full), "ok");
    let (entries, _, orphans, empty, _, split) = census(&full);
    assert_eq!(
        entries,
        (stored_sources * (ITEMS + 1)) as i64,
        "no poll stored in part: {first}"
    );
    assert_eq!((orphans, empty, split), (0, 0, 0));

    // With space again, a pass completes the job: every item once, every story once.
    let second = read("second.out");
    assert_eq!(read("second.code").trim(), "0", "{second}");
    assert_everything_stored_once(&out.join("after").join("tradefeed.db"), SOURCES, ITEMS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_on_a_full_disk_keeps_serving_and_stores_the_rest_once_there_is_space() {
    if !can_mount_a_private_tmpfs() {
        eprintln!("skipped: needs root and `unshare` to mount a small tmpfs for the database");
        return;
    }
    // 12 sources x 31 items: about twice what the 1 MiB disk holds; 366 stories, within one
    // JSON Feed page (500).
    const SOURCES: usize = 12;
    const ITEMS: usize = 30;
    let (_server, sources) = serve_feeds(SOURCES, ITEMS).await;
    let named = as_named(&sources);
    let dir = tempfile::tempdir().unwrap();
    // A poll that cannot be stored is tried again after the backoff base: 1 s here.
    let (config, port) = common::write_config_on_free_port(
        dir.path(),
        &named,
        "concurrency = 4\nbackoff_base_secs = 1\n",
    );
    move_database_to_data_dir(&config);
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("after")).unwrap();

    // The daemon runs on the full disk until the test writes `grow`; then the disk grows and
    // the script answers `grown`; `stop` stops the daemon and saves what it left.
    let mut script = private_mount_command(
        &config,
        r#"
        mount -t tmpfs -o size=1m tmpfs "$DATA" || exit 90
        "$TF" --config "$CFG" run > "$OUT/run.log" 2>&1 &
        daemon=$!
        while [ ! -e "$OUT/grow" ]; do sleep 0.05; done
        mount -o remount,size=256m "$DATA" || exit 91
        touch "$OUT/grown"
        while [ ! -e "$OUT/stop" ]; do sleep 0.05; done
        kill -TERM $daemon; wait $daemon; echo $? > "$OUT/run.code"
        cp "$DATA/tradefeed.db" "$OUT/after/"
        if [ -e "$DATA/tradefeed.db-wal" ]; then cp "$DATA/tradefeed.db-wal" "$OUT/after/"; fi
        "#,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let log = || std::fs::read_to_string(out.join("run.log")).unwrap_or_default();
    let stories_served = || async {
        let (status, body) = common::get_text(&format!("{base}/feeds/all.json?limit=500")).await;
        assert_eq!(status, 200, "the feed is served: {body}");
        let feed: serde_json::Value = serde_json::from_str(&body).unwrap();
        feed["items"].as_array().unwrap().len()
    };
    let wait_for = |what: &str, deadline: Instant| {
        assert!(
            Instant::now() < deadline,
            "{what} within the time limit; daemon log:\n{}",
            log()
        );
    };

    // The disk fills: polls fail with the cause logged, and the daemon goes on serving.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !log().contains("disk is full") {
        wait_for("a poll failing on the full disk", deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (health, _) = common::get_text(&format!("{base}/healthz")).await;
    assert_eq!(health, 200, "healthy while the disk is full");
    let on_full_disk = stories_served().await;
    assert!(
        on_full_disk < SOURCES * ITEMS,
        "not everything fitted: {on_full_disk}"
    );

    // Space again: the failed polls are retried and everything is stored and served.
    std::fs::write(out.join("grow"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.join("grown").exists() {
        wait_for("the disk growing", deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let expected_stories = SOURCES * ITEMS + SOURCES / 2;
    let deadline = Instant::now() + Duration::from_secs(30);
    while stories_served().await < expected_stories {
        wait_for("every story served after the disk grew", deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("{on_full_disk} stories on the full disk, {expected_stories} after it grew");

    std::fs::write(out.join("stop"), "").unwrap();
    let status = script.wait().unwrap();
    assert_eq!(status.code(), Some(0), "daemon log:\n{}", log());
    assert_eq!(
        std::fs::read_to_string(out.join("run.code"))
            .unwrap()
            .trim(),
        "0",
        "a clean stop"
    );
    assert_everything_stored_once(&out.join("after").join("tradefeed.db"), SOURCES, ITEMS);
}

#[test]
fn a_database_folder_on_a_read_only_filesystem_stops_fetch_with_one_clear_error() {
    if !can_mount_a_private_tmpfs() {
        eprintln!("skipped: needs root and `unshare` to mount a read-only tmpfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_data_dir(
        dir.path(),
        &[("A", "http://127.0.0.1:9/a.xml".to_string())],
        "",
    );
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    in_private_mount(
        &config,
        r#"
        mount -t tmpfs -o size=1m,ro tmpfs "$DATA" || exit 90
        "$TF" --config "$CFG" fetch > "$OUT/stdout" 2> "$OUT/stderr"; echo $? > "$OUT/code"
        "#,
    );
    let read = |name: &str| std::fs::read_to_string(dir.path().join("out").join(name)).unwrap();
    let stderr = read("stderr");
    assert_eq!(read("code").trim(), "1", "a fatal error: {stderr}");
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("an error line: {stderr}"));
    assert!(
        error.contains("opening the database")
            && error.contains("tradefeed.db.lock")
            && error.matches("Read-only file system").count() == 1,
        "says what failed, where and why, once: {error}"
    );
    assert!(read("stdout").is_empty(), "no source was polled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_with_flipped_bytes_is_refused_with_a_clear_message_and_left_untouched() {
    let server = FeedServer::start().await;
    let mut sources = Vec::new();
    for s in 0..6 {
        server.put(&format!("f{s}.xml"), Resource::feed(feed(s, 60)));
        sources.push((format!("S{s}"), server.url(&format!("f{s}.xml"))));
    }
    let named: Vec<(&str, String)> = sources
        .iter()
        .map(|(n, u)| (n.as_str(), u.clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &named, "");
    let db = dir.path().join("tradefeed.db");
    let first = tradefeed(&config, &["fetch"]).output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert_eq!(integrity(&db), "ok");

    // Scribble over the b-tree headers of a run of pages in the middle of the file.
    let mut bytes = std::fs::read(&db).unwrap();
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    let pages = bytes.len() / page;
    assert!(pages >= 8, "a database of {pages} pages");
    for p in pages / 3..pages / 3 + 4 {
        for b in &mut bytes[p * page..p * page + 64] {
            *b ^= 0xA5;
        }
    }
    std::fs::write(&db, &bytes).unwrap();
    let _ = std::fs::remove_file(dir.path().join("tradefeed.db-wal"));

    for args in [&["fetch"][..], &["reclassify"][..]] {
        let o = tradefeed(&config, args).output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr).to_lowercase();
        assert!(
            err.contains("tradefeed.db") && (err.contains("corrupt") || err.contains("malformed")),
            "{args:?}: names the file and says what is wrong: {err}"
        );
        assert_eq!(
            std::fs::read(&db).unwrap(),
            bytes,
            "{args:?}: the file is not modified"
        );
    }
}

/// Runs `command` to its end, or kills it after `limit`: a second daemon let in by mistake
/// would otherwise run for ever, and the test hang instead of failing.
fn output_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Runs `command` (a second process on a database in use) and checks that it exits 1 saying
/// so; `what` names the case in failures.
fn refused_as_in_use(command: Command, what: &str) {
    let o = output_within(command, Duration::from_secs(30));
    assert_eq!(o.status.code(), Some(1), "{what}: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("in use by another tradefeed process"),
        "{what}: {}",
        text(&o)
    );
}

#[test]
fn a_second_process_on_one_database_exits_1_while_the_first_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = common::write_config_on_free_port(dir.path(), &[], "");

    let mut first = tradefeed(&config, &["run"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let healthy = || {
        tradefeed(&config, &["health", "--timeout", "2"])
            .output()
            .unwrap()
    };
    let started = Instant::now();
    while healthy().status.code() != Some(0) {
        assert!(first.try_wait().unwrap().is_none(), "the first daemon died");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never became healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Another `run` on the same database (its own port, so only the database is shared),
    // named as the first names it, through a symlink to the file, through a symlink to its
    // folder, and with a `..` in the way: SQLite opens the one file whichever way it is named,
    // so the lock must be the same one too.
    let other_dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tradefeed.db");
    let linked_file = other_dir.path().join("linked.db");
    std::os::unix::fs::symlink(&db, &linked_file).unwrap();
    let linked_dir = other_dir.path().join("linked-dir");
    std::os::unix::fs::symlink(dir.path(), &linked_dir).unwrap();
    std::fs::create_dir(other_dir.path().join("sub")).unwrap();
    let dotted = other_dir.path().join("sub/../linked-dir/./tradefeed.db");
    // A hard link is the same file under a name no path resolution leads back to: only a
    // lock on the file itself sees it (both temp dirs are on one file system).
    let hard_link = other_dir.path().join("hard.db");
    std::fs::hard_link(&db, &hard_link).unwrap();
    for (n, path) in [
        db.clone(),
        linked_file,
        linked_dir.join("tradefeed.db"),
        dotted,
        hard_link,
    ]
    .iter()
    .enumerate()
    {
        let other = other_dir.path().join(format!("other-{n}.toml"));
        std::fs::write(
            &other,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[storage]\npath = \"{}\"\n",
                path.display()
            ),
        )
        .unwrap();
        for args in [&["run"][..], &["fetch"][..]] {
            refused_as_in_use(tradefeed(&other, args), &format!("{path:?} {args:?}"));
        }
    }
    assert!(
        !other_dir.path().join("linked.db.lock").exists(),
        "no lock file of its own beside the symlink"
    );
    // The same config again: its port is the first daemon's, and the message says why.
    refused_as_in_use(tradefeed(&config, &["run"]), "same config");
    // An operator clearing a "stale" lock file while the daemon runs: the next process makes
    // a new one, and must still be refused.
    std::fs::remove_file(dir.path().join("tradefeed.db.lock")).unwrap();
    refused_as_in_use(tradefeed(&config, &["fetch"]), "lock file deleted");
    assert!(
        first.try_wait().unwrap().is_none(),
        "the first daemon still runs"
    );
    assert_eq!(healthy().status.code(), Some(0), "and still serves");

    let term = Command::new("kill")
        .args(["-TERM", &first.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = first.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not stop within 10 s");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_program_stops_start_up_with_a_clear_error_then_works_once_free()
 {
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
    let config = tradefeed::config::Config::load(&path).unwrap();
    let db = dir.path().join("tradefeed.db");
    // Create the database (schema, sources) without polling anything.
    let pipeline = tradefeed::app::Pipeline::start(&config).await.unwrap();
    pipeline.store.close().await;
    drop(pipeline); // releases the single-process lock file

    // Another program (an admin's sqlite3 shell, a backup tool) holds the write lock. Start-up
    // must write (the configured sources), so the daemon gives up after the busy timeout with
    // an error that says why, instead of hanging or serving half-started.
    let locker = open(&db);
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let (_base, _cancel, handle) = common::start_daemon(config.clone()).await;
    let result = tokio::time::timeout(Duration::from_secs(20), handle)
        .await
        .expect("gives up within 20 s")
        .unwrap();
    let error = format!(
        "{:#}",
        result.expect_err("cannot start on a locked database")
    );
    assert!(
        error.contains("locked"),
        "says the database is locked: {error}"
    );
    assert_eq!(server.hits("a.xml"), 0, "nothing polled while half-started");

    // Once the lock is gone the daemon starts, polls and serves the story.
    locker.execute_batch("ROLLBACK").unwrap();
    drop(locker);
    let (base, cancel, handle) = common::start_daemon(config).await;
    let started = Instant::now();
    loop {
        let (_, feed) = common::get_text(&format!("{base}/feeds/all.json")).await;
        if feed.contains("anti-dumping duties on Chinese steel") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the story never arrived after the lock was released"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    common::stop_daemon(cancel, handle).await;
    assert_eq!(integrity(&db), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_commands_on_a_database_in_a_read_only_folder_name_the_file_and_the_cause() {
    if !can_mount_a_private_tmpfs() {
        eprintln!("skipped: needs root and `unshare` to mount a folder read-only");
        return;
    }
    let server = FeedServer::start().await;
    server.put("a.xml", common::steel_duties_feed());
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_data_dir(dir.path(), &[("A", server.url("a.xml"))], "");
    let fetch = tradefeed(&config, &["fetch"]).output().unwrap();
    assert_eq!(fetch.status.code(), Some(0), "{}", text(&fetch));
    // A copy of the database alone, as a backup is: what a clean close leaves is complete.
    let data = dir.path().join("data");
    for extra in ["tradefeed.db-wal", "tradefeed.db-shm", "tradefeed.db.lock"] {
        let _ = std::fs::remove_file(data.join(extra));
    }
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    in_private_mount(
        &config,
        r#"
        mount --bind "$DATA" "$DATA" && mount -o remount,bind,ro "$DATA" || exit 90
        "$TF" --config "$CFG" sources > /dev/null 2> "$OUT/sources"; echo $? >> "$OUT/codes"
        "$TF" --config "$CFG" story 1 > /dev/null 2> "$OUT/story"; echo $? >> "$OUT/codes"
        "#,
    );
    let read = |name: &str| std::fs::read_to_string(dir.path().join("out").join(name)).unwrap();
    assert_eq!(read("codes"), "1\n1\n");
    let db = data.join("tradefeed.db");
    for command in ["sources", "story"] {
        let stderr = read(command);
        let error = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("{command}: an error line: {stderr}"));
        assert!(
            error.starts_with(&format!(
                "error: {}: cannot open the database",
                db.display()
            )) && error.contains("create tradefeed.db-shm beside it")
                && error.contains("read-only"),
            "{command} names the file and the cause: {error}"
        );
    }
}

/// A database file deleted or replaced (a backup moved over it) while the daemon runs: what
/// the daemon stores from then on goes into a file no later start opens. `/readyz` says so,
/// so that an orchestrator restarts it; until then it was "ready" for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_once_the_database_file_is_deleted_or_replaced() {
    for replace in [false, true] {
        let server = FeedServer::start().await;
        server.put("a.xml", common::steel_duties_feed());
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), &[("A", server.url("a.xml"))], "");
        let config = tradefeed::config::Config::load(&path).unwrap();
        let (base, cancel, handle) = common::start_daemon(config).await;
        let (status, _) = common::get_text(&format!("{base}/readyz")).await;
        assert_eq!(status, 200);
        let db = dir.path().join("tradefeed.db");
        if replace {
            let copy = dir.path().join("backup.db");
            std::fs::copy(&db, &copy).unwrap();
            std::fs::rename(&copy, &db).unwrap();
        } else {
            std::fs::remove_file(&db).unwrap();
        }
        let (status, body) = common::get_text(&format!("{base}/readyz")).await;
        assert_eq!(status, 503, "replaced: {replace}: {body}");
        assert!(body.contains("deleted or replaced"), "{body}");
        common::stop_daemon(cancel, handle).await;
    }
}
