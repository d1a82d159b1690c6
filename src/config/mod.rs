//! Configuration: the TOML file as written ([`raw`]) → a validated [`Config`].
//!
//! Every error names the file, the line and the key, so an operator can fix a typo from the log;
//! so does every warning ([`Config::warnings`]) about a value taken other than as written.

mod raw;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::domain::{Schedule, Source};

/// The default config path, relative to the working directory.
pub const DEFAULT_PATH: &str = "config/tradefeed.toml";

/// The schedule used by sources that name none.
pub const DEFAULT_SCHEDULE: &str = "*/30 * * * *";

/// A validated configuration. Building one is all-or-nothing: there is no half-valid config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the config was read from (relative paths inside resolve against its folder).
    pub path: PathBuf,
    /// HTTP server settings.
    pub server: ServerConfig,
    /// Database settings.
    pub storage: StorageConfig,
    /// Fetch and polling settings shared by all sources.
    pub polling: PollingConfig,
    /// Near-duplicate clustering settings.
    pub cluster: ClusterSettings,
    /// Folder of topic profiles (`*.toml`); built-in `trade-policy` when it has none.
    pub topics_dir: PathBuf,
    /// Every configured source, in file order.
    pub sources: Vec<Source>,
    /// What the file holds that is taken, but not as written, each `file:line: key: message`
    /// saying what it was read as: a source name with white space at either end, a URL not
    /// written `scheme://host…`. Refusing them would stop daemons whose config loaded before
    /// these were noticed; `app::config_warnings` lists them with the other warnings.
    pub warnings: Vec<String>,
}

/// `[server]`
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Public base URL used in feed self links (e.g. `https://news.example.org`).
    pub base_url: Option<String>,
    /// Title of the served feeds.
    pub title: String,
}

/// `[storage]`
#[derive(Debug, Clone, PartialEq)]
pub struct StorageConfig {
    /// SQLite database file.
    pub path: PathBuf,
    /// Entries first seen longer ago than this are pruned (never to reappear); `None` keeps all.
    pub retention_days: Option<u32>,
}

/// `[defaults]`: limits and politeness applied to every fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct PollingConfig {
    /// Schedule of sources that name none.
    pub schedule: Schedule,
    /// Total time for one fetch, body included.
    pub timeout: Duration,
    /// Time to connect.
    pub connect_timeout: Duration,
    /// Largest body accepted (after decompression).
    pub max_body_bytes: u64,
    /// Redirects followed at most.
    pub max_redirects: u32,
    /// User-Agent header.
    pub user_agent: String,
    /// Polls running at once, across all sources.
    pub concurrency: usize,
    /// Requests to one host at once.
    pub per_host_concurrency: usize,
    /// Minimum spacing between two requests to one host.
    pub per_host_spacing: Duration,
    /// Items taken from one poll at most (newest first).
    pub max_items_per_poll: usize,
    /// Sources sharing a schedule are spread over up to this much time.
    pub max_jitter: Duration,
    /// First retry delay after a failure (doubles per consecutive failure).
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_cap: Duration,
}

/// `[cluster]`
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSettings {
    /// Near-duplicate matching only looks this far back.
    pub window_days: u32,
}

/// Why a config could not be loaded. The message names file, line and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Syntax, type, unknown-key or validation error at a place in the file.
    #[error("{path}:{}{key}: {message}", at_line(.line))]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line (0: none, as for an environment variable).
        line: usize,
        /// The key at fault, dotted (`sources[2].schedule`).
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The file holds nothing but white space (or a byte-order mark).
    #[error(
        "{path}: the config file is empty (a save in progress?); to run without sources, \
         leave a comment in it"
    )]
    Empty {
        /// The file.
        path: String,
    },
}

impl Config {
    /// Reads and validates the config file. An empty file is refused: it is a save caught
    /// half-way (an editor truncates, then writes) or a file emptied by mistake far more often
    /// than a wish to run with no sources on the default address, and a reload refuses it for
    /// that reason; `run` and `check` refuse it alike.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|e| raw::not_utf8(path, e.as_bytes(), e.utf8_error()))?;
        if text.trim_start_matches('\u{feff}').trim().is_empty() {
            return Err(ConfigError::Empty {
                path: path.display().to_string(),
            });
        }
        Config::parse(&text, path)
    }

    /// Validates config text; `path` is used in messages and to resolve relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        raw::parse(text, path)
    }

    /// Applies the environment overrides containers and units use: `TRADEFEED_LISTEN` for
    /// `[server] listen` and `TRADEFEED_DB` for `[storage] path`.
    pub fn apply_env_overrides(&mut self) -> Result<(), ConfigError> {
        if let Some(listen) = env_listen()? {
            self.server.listen = listen;
        }
        if let Some(db) = env_db()? {
            self.storage.path = db;
        }
        Ok(())
    }

    /// Reads the config file and applies the environment overrides.
    pub fn load_with_env(path: &Path) -> Result<Config, ConfigError> {
        let mut config = Config::load(path)?;
        config.apply_env_overrides()?;
        Ok(config)
    }

    /// The address `tradefeed health` probes: `$TRADEFEED_LISTEN` when set (the config is
    /// then not read at all), else the config's `[server] listen`. A config the daemon would
    /// refuse (a typo in another key, which a running daemon refuses to reload and goes on
    /// serving the old config) still gives its `listen` when the file is valid TOML and that
    /// key is valid; the error comes back beside it, for a warning. Only a file that cannot
    /// be read, is not TOML, or has an invalid `listen` gives no address.
    pub fn listen_for_health(
        path: &Path,
    ) -> Result<(SocketAddr, Option<ConfigError>), ConfigError> {
        if let Some(listen) = env_listen()? {
            return Ok((listen, None));
        }
        match Config::load(path) {
            Ok(config) => Ok((config.server.listen, None)),
            Err(error) => {
                let as_written = std::fs::read_to_string(path).ok().and_then(|text| {
                    match text.parse::<toml::Table>() {
                        Ok(table) => match table.get("server") {
                            None => Some(raw::DEFAULT_LISTEN),
                            Some(server) => match server.get("listen") {
                                None => Some(raw::DEFAULT_LISTEN),
                                Some(listen) => listen.as_str()?.parse().ok(),
                            },
                        },
                        // A slip of TOML syntax elsewhere (an unclosed string in a source's
                        // URL): the `[server]` table's `listen` line, if it reads whole.
                        Err(_) => listen_line(&text),
                    }
                });
                match as_written {
                    Some(listen) => Ok((listen, Some(error))),
                    None => Err(error),
                }
            }
        }
    }

    /// The enabled sources.
    pub fn enabled_sources(&self) -> impl Iterator<Item = &Source> {
        self.sources.iter().filter(|s| s.enabled)
    }
}

/// The `[server] listen` address of a config that is not valid TOML as a whole, read line by
/// line: each line that is TOML by itself is read as such, so every way of writing the key
/// counts, `listen = "…"` in a `[server]` table as well as `server.listen = "…"` or
/// `server = { listen = "…" }` before the first table. The default address when no line
/// gives the key; `None` when the first that does gives no address.
fn listen_line(text: &str) -> Option<SocketAddr> {
    // Where the lines are: before any table header, in `[server]`, or elsewhere.
    #[derive(PartialEq)]
    enum Table {
        Top,
        Server,
        Other,
    }
    let mut table = Table::Top;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            let header: String = line
                .split('#')
                .next()
                .unwrap_or("")
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect();
            table = if header == "[server]" {
                Table::Server
            } else {
                Table::Other
            };
            continue;
        }
        if table == Table::Other {
            continue;
        }
        let Ok(parsed) = line.parse::<toml::Table>() else {
            continue;
        };
        let listen = match table {
            Table::Server => parsed.get("listen"),
            _ => parsed.get("server").and_then(|server| server.get("listen")),
        };
        if let Some(listen) = listen {
            return listen.as_str()?.parse().ok();
        }
    }
    // No line gives `listen`: the default, as a config that parses gives it.
    Some(raw::DEFAULT_LISTEN)
}

/// `$TRADEFEED_LISTEN`, when set.
fn env_listen() -> Result<Option<SocketAddr>, ConfigError> {
    let Ok(listen) = std::env::var("TRADEFEED_LISTEN") else {
        return Ok(None);
    };
    listen.parse().map(Some).map_err(|e| ConfigError::Invalid {
        path: "environment".into(),
        line: 0,
        key: "TRADEFEED_LISTEN".into(),
        message: format!("{listen:?} is not an address like 0.0.0.0:8080: {e}"),
    })
}

/// "N: " for an error at line N, nothing but the space for one of no line (line 0: an
/// environment variable's).
fn at_line(line: &usize) -> String {
    match line {
        0 => " ".to_string(),
        n => format!("{n}: "),
    }
}

/// `$TRADEFEED_DB`, checked as `[storage] path` is: it must name a file. An empty value (a
/// unit's `Environment=TRADEFEED_DB=` left blank) or a directory passed `check` and then
/// failed every command that opened the database. Not resolved against the config's folder.
fn env_db() -> Result<Option<PathBuf>, ConfigError> {
    let Some(db) = std::env::var_os("TRADEFEED_DB") else {
        return Ok(None);
    };
    let invalid = |message: String| ConfigError::Invalid {
        path: "environment".into(),
        line: 0,
        key: "TRADEFEED_DB".into(),
        message,
    };
    if db.to_string_lossy().trim().is_empty() {
        return Err(invalid(format!("{db:?} must name a file")));
    }
    let db = PathBuf::from(db);
    if db.is_dir() {
        return Err(invalid(format!(
            "{} is a directory; name the database file, e.g. {}",
            db.display(),
            db.join("tradefeed.db").display()
        )));
    }
    Ok(Some(db))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sources on the default schedule, or writing the same line, share one parse of it (a
    /// thousand sources held thousands of copies of the cron tables); other lines have their
    /// own, and each source keeps the times of its own line.
    #[test]
    fn sources_writing_one_schedule_share_its_parse() {
        let text = "[defaults]\nschedule = \"@hourly\"\n\n\
            [[sources]]\nname = \"a\"\nurl = \"http://127.0.0.1/a\"\n\n\
            [[sources]]\nname = \"b\"\nurl = \"http://127.0.0.1/b\"\n\n\
            [[sources]]\nname = \"c\"\nurl = \"http://127.0.0.1/c\"\nschedule = \"*/5 * * * *\"\n\n\
            [[sources]]\nname = \"d\"\nurl = \"http://127.0.0.1/d\"\nschedule = \"*/5 * * * *\"\n\n\
            [[sources]]\nname = \"e\"\nurl = \"http://127.0.0.1/e\"\nschedule = \"@daily\"\n";
        let config = Config::parse(text, Path::new("t.toml")).unwrap();
        let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| &config.sources[i].schedule);
        assert!(a.shares_parse_with(b), "the default schedule, parsed once");
        assert!(
            c.shares_parse_with(d),
            "one line written twice, parsed once"
        );
        assert!(!a.shares_parse_with(c) && !c.shares_parse_with(e) && !a.shares_parse_with(e));
        assert!(a.shares_parse_with(&a.clone()), "a clone shares its parse");
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-02T10:07:00Z")
            .unwrap()
            .to_utc();
        let next = |s: &Schedule| s.next_after(at).unwrap().to_rfc3339();
        assert_eq!(next(a), "2026-12-02T11:00:00+00:00");
        assert_eq!(next(d), "2026-12-02T10:10:00+00:00");
        assert_eq!(next(e), "2026-12-03T00:00:00+00:00");
        assert_eq!((c.as_str(), e.as_str()), ("*/5 * * * *", "@daily"));
    }

    /// A config that is not TOML as a whole gives `health` its `[server] listen` however the
    /// key is written, and only the server's.
    #[test]
    fn the_listen_line_of_a_broken_config_is_read_in_every_toml_form() {
        let broken = "\n[[sources]]\nname = \"x\"\nurl = \"http://unclosed\n";
        let at = |port: u16| Some(SocketAddr::from(([127, 0, 0, 1], port)));
        for (server, expected) in [
            ("[server]\nlisten = \"127.0.0.1:18201\" # here\n", at(18201)),
            (
                "[ server ]\ntitle = \"t\"\nlisten='127.0.0.1:18202'\n",
                at(18202),
            ),
            ("server.listen = \"127.0.0.1:18203\"\n", at(18203)),
            (
                "server = { title = \"t\", listen = \"127.0.0.1:18204\" }\n",
                at(18204),
            ),
            ("[server]\n\"listen\" = \"127.0.0.1:18205\"\n", at(18205)),
            // Another table's key of that name, or none at all: the default.
            (
                "[defaults]\nserver.listen = \"127.0.0.1:1\"\n",
                Some(raw::DEFAULT_LISTEN),
            ),
            (
                "[server.tls]\nlisten = \"127.0.0.1:1\"\n",
                Some(raw::DEFAULT_LISTEN),
            ),
            ("", Some(raw::DEFAULT_LISTEN)),
            // The key given, but no address.
            ("[server]\nlisten = \"not an address\"\n", None),
            ("server.listen = 8080\n", None),
        ] {
            assert_eq!(
                listen_line(&format!("{server}{broken}")),
                expected,
                "{server}"
            );
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("conf/test.toml"))
    }

    /// Each `(text, line, key, fragment)`: the config `text` is refused at that line and key,
    /// with a message that mentions `fragment`.
    fn assert_config_errors(cases: &[(&str, usize, &str, &str)]) {
        for (text, line, key, fragment) in cases {
            let (got_line, got_key, message) = error_of(text);
            assert_eq!(got_line, *line, "line for {text:?}: {message}");
            assert_eq!(got_key, *key, "key for {text:?}: {message}");
            assert!(
                message.contains(fragment),
                "message for {text:?} should mention {fragment:?}: {message}"
            );
        }
    }

    fn error_of(text: &str) -> (usize, String, String) {
        match parse(text) {
            Err(ConfigError::Invalid {
                path,
                line,
                key,
                message,
            }) => {
                assert_eq!(path, "conf/test.toml");
                (line, key, message)
            }
            other => panic!("expected an invalid-config error, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_config_gets_every_default() {
        let c = parse("[[sources]]\nname = \"a\"\nurl = \"https://example.org/feed\"\n").unwrap();
        assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.storage.path, Path::new("conf/tradefeed.db"));
        assert_eq!(c.topics_dir, Path::new("conf/topics"));
        assert_eq!(c.polling.concurrency, 16);
        assert_eq!(c.polling.max_body_bytes, 10 * 1024 * 1024);
        assert_eq!(c.polling.max_items_per_poll, 500);
        assert_eq!(c.cluster.window_days, 7);
        assert_eq!(c.sources.len(), 1);
        let s = &c.sources[0];
        assert_eq!(s.schedule.as_str(), DEFAULT_SCHEDULE);
        assert!(s.enabled && s.cluster);
        assert_eq!(s.priority, 0);
    }

    #[test]
    fn an_empty_file_is_a_valid_config_with_no_sources() {
        let c = parse("").unwrap();
        assert!(c.sources.is_empty());
    }

    #[test]
    fn the_shipped_config_is_valid() {
        let path = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/tradefeed.toml"
        ));
        let c = Config::load(path).unwrap();
        assert!(c.sources.len() >= 10, "ships real sources");
        assert!(c.sources.iter().all(|s| s.url.starts_with("https://")));
    }

    /// A Latin-1 byte (an "é" saved by an editor set to it) is named at its line, key and
    /// column, not reported as an unreadable file.
    #[test]
    fn a_config_that_is_not_utf8_is_named_at_its_first_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latin1.toml");
        let mut text = b"[server]\ntitle = \"t\"\n\n[[sources]]\nname = \"R".to_vec();
        text.extend_from_slice(&[0xE9]);
        text.extend_from_slice(b"sum\"\nurl = \"https://a.example/f\"\n");
        std::fs::write(&path, &text).unwrap();
        match Config::load(&path) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => {
                assert_eq!((line, key.as_str()), (5, "sources[0].name"), "{message}");
                assert!(
                    message.contains("not UTF-8") && message.contains("0xE9 at column 10"),
                    "{message}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn errors_name_the_line_and_the_key() {
        let cases: &[(&str, usize, &str, &str)] = &[
            (
                "[server]\nlisten = \"127.0.0.1:8080\"\nlisen = \"x\"\n",
                3,
                "server.lisen",
                "unknown field",
            ),
            (
                "[defaults]\ntimeout_secs = \"thirty\"\n",
                2,
                "defaults.timeout_secs",
                "invalid type",
            ),
            (
                "[defaults]\ntimeout_secs = 0\n",
                2,
                "defaults.timeout_secs",
                "greater than 0",
            ),
            (
                "[[sources]]\nname = \"a\"\nurl = \"https://a.example/f\"\n\n[[sources]]\nname = \"a\"\nurl = \"https://b.example/f\"\n",
                6,
                "sources[1].name",
                "duplicate source name",
            ),
            (
                "[[sources]]\nname = \"   \"\nurl = \"https://a.example/f\"\n",
                2,
                "sources[0].name",
                "must not be empty",
            ),
            (
                "[[sources]]\nname = \"a\"\nurl = \"ftp://a.example/f\"\n",
                3,
                "sources[0].url",
                "http or https",
            ),
            (
                "[[sources]]\nname = \"a\"\nurl = \"http://\"\n",
                3,
                "sources[0].url",
                "not a valid URL",
            ),
            (
                "[[sources]]\nname = \"a\"\nurl = \"https://a.example/f\"\n\n[[sources]]\nname = \" a\"\nurl = \"https://b.example/f\"\n",
                6,
                "sources[1].name",
                "duplicate source name \"a\"",
            ),
            (
                "[[sources]]\nname = \"a\"\nurl = \"not a url\"\n",
                3,
                "sources[0].url",
                "not a valid URL",
            ),
            (
                "[[sources]]\nname = \"a\"\nurl = \"https://a.example/f\"\nschedule = \"every five minutes\"\n",
                4,
                "sources[0].schedule",
                "invalid schedule",
            ),
            (
                "[[sources]]\nname = \"a\"\nurl = \"https://a.example/f\"\nshedule = \"@hourly\"\n",
                4,
                "sources[0].shedule",
                "unknown field",
            ),
            (
                "[server]\nlisten = \"localhost\"\n",
                2,
                "server.listen",
                "not an address",
            ),
            // Inside inline tables and arrays, the key is named as in a table of its own.
            (
                "sources = [\n  { name = \"a\", url = \"https://a.example/f\" },\n  { name = \"b\", url = \"https://b.example/f\", shedule = \"@daily\" },\n]\n",
                3,
                "sources[1].shedule",
                "unknown field",
            ),
            (
                "sources = [{ name = \"a\", url = \"https://a.example/f\", bogus = 1 }]\n",
                1,
                "sources[0].bogus",
                "unknown field",
            ),
            (
                "defaults = { timeout_secs = \"x\" }\n",
                1,
                "defaults.timeout_secs",
                "invalid type",
            ),
            (
                "server.title = \"t\"\nserver.lisen = \"x\"\n",
                2,
                "server.lisen",
                "unknown field",
            ),
            ("[server\nlisten = 1\n", 1, "server", "unclosed table"),
            // An unclosed array-table header names its table and index, not `sources][1]`.
            (
                "[[sources]]\nname = \"a\"\nurl = \"https://a.example/f\"\n\n[[sources]\nname = \"B\"\n",
                5,
                "sources[1]",
                "unclosed array table",
            ),
            (
                "[server]\nlisten = \"127.0.0.1:8080\"\n\n[defaults]\nschedule = \"@hourly\"\nbackoff_base_secs = 30000\n",
                6,
                "defaults.backoff_base_secs",
                "must not be larger than backoff_cap_secs (21600 by default)",
            ),
            (
                "[defaults]\nbackoff_base_secs = 600\nbackoff_cap_secs = 60\n",
                3,
                "defaults.backoff_cap_secs",
                "must not be smaller than backoff_base_secs",
            ),
        ];
        assert_config_errors(cases);
    }

    /// Spellings that loaded before they were noticed as likely typos (a source name with
    /// white space at either end, a URL the `url` crate reads leniently) still load, as they
    /// did, with one warning each naming file, line and key and what was read.
    #[test]
    fn names_and_urls_read_other_than_as_written_load_with_a_warning() {
        let two = |name: &str, url: &str| {
            format!(
                "[[sources]]\nname = \"a\"\nurl = \"https://a.example/f\"\n\n\
                 [[sources]]\nname = \"{name}\"\nurl = \"{url}\"\n"
            )
        };
        let ok = "https://b.example/f";
        // (config text, the second source's name and url as loaded, the warning)
        let cases = [
            (
                two("  padded  ", ok),
                "padded",
                ok,
                "conf/test.toml:6: sources[1].name: \"  padded  \" has white space at either \
                 end; read as \"padded\"",
            ),
            (
                two("Trade\u{a0}", ok),
                "Trade",
                ok,
                "conf/test.toml:6: sources[1].name: \"Trade\\u{a0}\" has white space at either \
                 end; read as \"Trade\"",
            ),
            // Trimmed before the control-character check, as before the warning.
            (
                two("\\tTabbed\\n", ok),
                "Tabbed",
                ok,
                "conf/test.toml:6: sources[1].name: \"\\tTabbed\\n\" has white space at either \
                 end; read as \"Tabbed\"",
            ),
            // The URL is kept as written (trimmed), as before: the fetcher reads it as the
            // warning says.
            (
                two("b", "http:///b.example/f"),
                "b",
                "http:///b.example/f",
                "conf/test.toml:7: sources[1].url: \"http:///b.example/f\" has no host between \
                 \"//\" and the next slash; read as \"http://b.example/f\"",
            ),
            (
                two("b", " https:/b.example/f"),
                "b",
                "https:/b.example/f",
                "conf/test.toml:7: sources[1].url: \"https:/b.example/f\" must have \"//\" and \
                 the host after \"https:\"; read as \"https://b.example/f\"",
            ),
            (
                two("b", "http:b.example"),
                "b",
                "http:b.example",
                "conf/test.toml:7: sources[1].url: \"http:b.example\" must have \"//\" and the \
                 host after \"http:\"; read as \"http://b.example/\"",
            ),
            (
                two("b", "https://b.example/\\tf"),
                "b",
                "https://b.example/\tf",
                "conf/test.toml:7: sources[1].url: \"https://b.example/\\tf\" holds a tab or line \
                 break, which URL parsing drops; read as \"https://b.example/f\"",
            ),
        ];
        for (text, name, url, warning) in cases {
            let c = parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            let s = &c.sources[1];
            assert_eq!((s.name.as_str(), s.url.as_str()), (name, url), "{text:?}");
            assert_eq!(c.warnings, [warning], "{text:?}");
        }

        let c = parse("[server]\nbase_url = \"https:///news.example/\"\n").unwrap();
        assert_eq!(
            c.server.base_url.as_deref(),
            Some("https://news.example/"),
            "links start with the URL as read"
        );
        // (The message quotes the URL without its user-info, as every message does.)
        for (base, shown, what) in [
            (
                "https://trade.example.org/tf?x=1",
                "\"https://trade.example.org/tf?x=1\"",
                "a query",
            ),
            (
                "https://trade.example.org/tf#f",
                "\"https://trade.example.org/tf#f\"",
                "a fragment",
            ),
            (
                "https://u:p@trade.example.org/",
                "\"https://trade.example.org/\" (user-info left out)",
                "user-info",
            ),
            (
                "https://u@trade.example.org/",
                "\"https://trade.example.org/\" (user-info left out)",
                "user-info",
            ),
        ] {
            let err = parse(&format!("[server]\nbase_url = \"{base}\"\n"))
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "conf/test.toml:2: server.base_url: {shown} has {what}, which no prefix \
                     of a link can carry"
                )
            );
        }
        assert_eq!(
            c.warnings,
            [
                "conf/test.toml:2: server.base_url: \"https:///news.example/\" has no host between \
              \"//\" and the next slash; read as \"https://news.example/\""
            ]
        );
        // One warning per value, in file order; a config written as meant has none.
        let c = parse(&two("  b", "http:/b.example/f")).unwrap();
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(
            c.warnings[0].contains(":6: sources[1].name:"),
            "{:?}",
            c.warnings
        );
        assert!(
            c.warnings[1].contains(":7: sources[1].url:"),
            "{:?}",
            c.warnings
        );
        assert_eq!(parse(&two("b", ok)).unwrap().warnings, Vec::<String>::new());

        // A blank title made feeds without one (RSS and JSON Feed require it): the default.
        let c = parse("[server]\nlisten = \"127.0.0.1:8080\"\ntitle = \" \"\n").unwrap();
        assert_eq!(c.server.title, "tradefeed");
        assert_eq!(
            c.warnings,
            ["conf/test.toml:3: server.title: \" \" is blank; read as \"tradefeed\""]
        );
        let c = parse("[server]\ntitle = \"Trade desk\"\n").unwrap();
        assert_eq!(
            (c.server.title.as_str(), c.warnings.len()),
            ("Trade desk", 0)
        );
    }

    #[test]
    fn keys_that_feed_time_or_permit_arithmetic_have_upper_bounds() {
        // The values an audit found accepted here and panicking every poll, and their kin.
        let cases: &[(&str, &str, &str)] = &[
            (
                "[storage]\n",
                "retention_days = 99999999",
                "storage.retention_days",
            ),
            (
                "[cluster]\n",
                "window_days = 4294967295",
                "cluster.window_days",
            ),
            (
                "[defaults]\n",
                "backoff_base_secs = 10000000000000",
                "defaults.backoff_base_secs",
            ),
            (
                "[defaults]\nbackoff_base_secs = 60\n",
                "backoff_cap_secs = 10000000000000",
                "defaults.backoff_cap_secs",
            ),
            (
                "[defaults]\n",
                "timeout_secs = 18446744073709551615",
                "defaults.timeout_secs",
            ),
            (
                "[defaults]\n",
                "connect_timeout_secs = 86401",
                "defaults.connect_timeout_secs",
            ),
            (
                "[defaults]\n",
                "max_jitter_secs = 18446744073709551615",
                "defaults.max_jitter_secs",
            ),
            (
                "[defaults]\n",
                "per_host_spacing_ms = 18446744073709551615",
                "defaults.per_host_spacing_ms",
            ),
            (
                "[defaults]\n",
                "concurrency = 18446744073709551615",
                "defaults.concurrency",
            ),
            (
                "[defaults]\n",
                "per_host_concurrency = 10001",
                "defaults.per_host_concurrency",
            ),
            (
                "[defaults]\n",
                &format!("user_agent = \"{}\"", "a".repeat(513)),
                "defaults.user_agent",
            ),
        ];
        for (table, line, key) in cases {
            let text = format!("# a comment\n{table}{line}\n");
            let (got_line, got_key, message) = error_of(&text);
            assert_eq!(
                got_line,
                text.lines().count(),
                "line for {line:?}: {message}"
            );
            assert_eq!(got_key, *key, "key for {line:?}: {message}");
            assert!(message.contains("must be at most"), "{line:?}: {message}");
        }
        // The bounds themselves are accepted.
        let c = parse(
            "[storage]\nretention_days = 36500\n[cluster]\nwindow_days = 3650\n\
             [defaults]\ntimeout_secs = 86400\nconnect_timeout_secs = 86400\n\
             backoff_base_secs = 2592000\nbackoff_cap_secs = 2592000\nmax_jitter_secs = 604800\n\
             per_host_spacing_ms = 3600000\nconcurrency = 10000\nper_host_concurrency = 10000\n\
             max_redirects = 100000\n",
        )
        .unwrap();
        assert_eq!(c.storage.retention_days, Some(36_500));
        assert_eq!(c.cluster.window_days, 3_650);
        assert_eq!(c.polling.backoff_cap, Duration::from_secs(2_592_000));
        assert_eq!(c.polling.concurrency, 10_000);
        assert_eq!(
            c.polling.max_redirects, 100_000,
            "no bound: loops and the timeout end a chain"
        );
        // Retention 0 still means keep all.
        let c = parse("[storage]\nretention_days = 0\n").unwrap();
        assert_eq!(c.storage.retention_days, None);
    }

    /// `max_body_bytes` is how much of one feed a poll buffers (and then parses): unbounded,
    /// `max_body_bytes = 100000000000` let one feed make the daemon hold 100 GB.
    #[test]
    fn max_body_bytes_is_bounded_at_256_mib() {
        let text =
            "[server]\nlisten = \"127.0.0.1:8080\"\n\n[defaults]\nmax_body_bytes = 100000000000\n";
        let err = parse(text).unwrap_err();
        assert_eq!(
            err.to_string(),
            "conf/test.toml:5: defaults.max_body_bytes: must be at most 268435456 (256 MiB)"
        );
        let c = parse("[defaults]\nmax_body_bytes = 268435456\n").unwrap();
        assert_eq!(c.polling.max_body_bytes, 256 * 1024 * 1024);
        let (line, key, _) = error_of("[defaults]\nmax_body_bytes = 268435457\n");
        assert_eq!((line, key.as_str()), (2, "defaults.max_body_bytes"));
        let (_, _, message) = error_of("[defaults]\nmax_body_bytes = 0\n");
        assert_eq!(message, "must be greater than 0");
    }

    /// Values `check` used to accept that then stopped `run` and `fetch` with an error naming
    /// no file, line or key (the HTTP client refused the header; the database path was a
    /// folder).
    #[test]
    fn a_user_agent_that_cannot_be_sent_and_an_empty_database_path_are_refused_by_key() {
        for (text, key, fragment) in [
            (
                "[defaults]\nuser_agent = \"a\\nb\"\n",
                "defaults.user_agent",
                "HTTP header",
            ),
            (
                "[defaults]\nuser_agent = \"bad\\u0007ua\"\n",
                "defaults.user_agent",
                "HTTP header",
            ),
            (
                "[defaults]\nuser_agent = \"a\\u0085b\"\n",
                "defaults.user_agent",
                "HTTP header",
            ),
            (
                "[defaults]\nuser_agent = \" \"\n",
                "defaults.user_agent",
                "not be empty",
            ),
            (
                "[storage]\npath = \"\"\n",
                "storage.path",
                "must name a file",
            ),
            (
                "[storage]\npath = \"  \"\n",
                "storage.path",
                "must name a file",
            ),
            (
                "[storage]\npath = \"/\"\n",
                "storage.path",
                "/ is a directory; name the database file, e.g. /tradefeed.db",
            ),
        ] {
            let (line, got_key, message) = error_of(text);
            assert_eq!((line, got_key.as_str()), (2, key), "{text:?}: {message}");
            assert!(message.contains(fragment), "{text:?}: {message}");
        }
        // What an HTTP header can carry is kept: a tab, bytes beyond ASCII.
        for (toml, agent) in [
            (
                "ExampleBot/1.0 (+mailto:a@b.example)",
                "ExampleBot/1.0 (+mailto:a@b.example)",
            ),
            ("Fetcher f\u{fc}r\\tNews/2", "Fetcher f\u{fc}r\tNews/2"),
        ] {
            let c = parse(&format!("[defaults]\nuser_agent = \"  {toml}\"\n")).unwrap();
            assert_eq!(c.polling.user_agent, agent);
            reqwest::header::HeaderValue::from_str(&c.polling.user_agent).unwrap();
        }
    }

    #[test]
    fn private_redirects_are_refused_unless_the_defaults_or_the_source_allow_them() {
        let names_allowed = |text: &str| -> Vec<String> {
            parse(text)
                .unwrap()
                .sources
                .iter()
                .filter(|s| s.allow_private_redirects)
                .map(|s| s.name.clone())
                .collect()
        };
        let two = "[[sources]]\nname = \"a\"\nurl = \"https://a.example/f\"\n\
                   [[sources]]\nname = \"b\"\nurl = \"https://b.example/f\"\n";
        assert!(names_allowed(two).is_empty(), "refused by default");
        assert_eq!(
            names_allowed(&format!("{two}allow_private_redirects = true\n")),
            ["b"],
            "one source allowed"
        );
        assert_eq!(
            names_allowed(&format!(
                "[defaults]\nallow_private_redirects = true\n{two}"
            )),
            ["a", "b"],
            "the default applies to every source that says nothing"
        );
        assert_eq!(
            names_allowed(&format!(
                "[defaults]\nallow_private_redirects = true\n{two}allow_private_redirects = false\n"
            )),
            ["a"],
            "a source overrides the default"
        );
        // Wrong types and misspellings name file, line and key.
        let cases: &[(&str, usize, &str, &str)] = &[
            (
                "[defaults]\nallow_private_redirects = \"yes\"\n",
                2,
                "defaults.allow_private_redirects",
                "invalid type",
            ),
            (
                "[[sources]]\nname = \"a\"\nurl = \"https://a.example/f\"\nallow_private_redirects = 1\n",
                4,
                "sources[0].allow_private_redirects",
                "invalid type",
            ),
            (
                "[[sources]]\nname = \"a\"\nurl = \"https://a.example/f\"\n\n[[sources]]\nname = \"b\"\nurl = \"https://b.example/f\"\nallow_private_redirect = true\n",
                8,
                "sources[1].allow_private_redirect",
                "unknown field",
            ),
            (
                "[server]\nallow_private_redirects = true\n",
                2,
                "server.allow_private_redirects",
                "unknown field",
            ),
        ];
        assert_config_errors(cases);
        let err = parse("[defaults]\nallow_private_redirects = \"no\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("conf/test.toml:2: defaults.allow_private_redirects: "),
            "{err}"
        );
    }

    #[test]
    fn the_error_message_reads_file_line_key() {
        let err = parse("[storage]\npaht = \"x\"\n").unwrap_err().to_string();
        assert!(err.starts_with("conf/test.toml:2: storage.paht: "), "{err}");
    }
}
