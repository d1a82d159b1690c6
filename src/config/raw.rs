//! The config file exactly as written (serde mirror, unknown keys rejected), and its validation.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::{
    ClusterSettings, Config, ConfigError, DEFAULT_SCHEDULE, PollingConfig, ServerConfig,
    StorageConfig,
};
use crate::domain::{Schedule, Source};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    cluster: RawCluster,
    #[serde(default)]
    topics: RawTopics,
    #[serde(default)]
    sources: Vec<RawSource>,
}

/// `[server] title` when none is given (or a blank one).
const DEFAULT_TITLE: &str = "tradefeed";
/// `[server] listen` when the config has none.
pub(super) const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8080,
));

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    title: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    path: Option<Spanned<String>>,
    retention_days: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    schedule: Option<Spanned<String>>,
    timeout_secs: Option<Spanned<u64>>,
    connect_timeout_secs: Option<Spanned<u64>>,
    max_body_bytes: Option<Spanned<u64>>,
    max_redirects: Option<Spanned<u32>>,
    user_agent: Option<Spanned<String>>,
    concurrency: Option<Spanned<usize>>,
    per_host_concurrency: Option<Spanned<usize>>,
    per_host_spacing_ms: Option<Spanned<u64>>,
    max_items_per_poll: Option<Spanned<usize>>,
    max_jitter_secs: Option<Spanned<u64>>,
    backoff_base_secs: Option<Spanned<u64>>,
    backoff_cap_secs: Option<Spanned<u64>>,
    allow_private_redirects: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    window_days: Option<Spanned<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopics {
    dir: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: Spanned<String>,
    url: Spanned<String>,
    schedule: Option<Spanned<String>>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    priority: i32,
    #[serde(default = "yes")]
    cluster: bool,
    /// `[defaults] allow_private_redirects` when not given.
    allow_private_redirects: Option<bool>,
}

/// Upper bounds of the keys that feed date, timer or permit arithmetic: far beyond any sensible
/// setting, far below where that arithmetic would overflow.
const MAX_RETENTION_DAYS: u32 = 36_500;
/// See [`MAX_RETENTION_DAYS`].
const MAX_WINDOW_DAYS: u32 = 3_650;
/// See [`MAX_RETENTION_DAYS`]; with its words for error messages.
const MAX_TIMEOUT_SECS: (u64, &str) = (86_400, "a day");
/// See [`MAX_RETENTION_DAYS`].
const MAX_BACKOFF_SECS: (u64, &str) = (30 * 86_400, "30 days");
/// See [`MAX_RETENTION_DAYS`].
const MAX_JITTER_SECS: (u64, &str) = (7 * 86_400, "7 days");
/// See [`MAX_RETENTION_DAYS`].
const MAX_SPACING_MS: (u64, &str) = (3_600_000, "an hour");
/// See [`MAX_RETENTION_DAYS`].
const MAX_CONCURRENCY: usize = 10_000;
/// Largest `max_body_bytes`: a poll holds its whole body in memory and parses it (at about
/// 12 MB/s: 256 MiB is some 20 s of a CPU), once per poll slot. Real feeds are at most a few
/// MB (the largest of the shared test feeds, a 730-item podcast feed, is 1.6 MB); 256 MiB is
/// 25 times the default, far above any real feed, yet bounds what one feed can make the
/// daemon hold.
const MAX_BODY_BYTES: (u64, &str) = (256 * 1024 * 1024, "256 MiB");
/// Longest `user_agent`, in bytes: a header line, not a document.
const MAX_USER_AGENT_BYTES: usize = 512;

fn yes() -> bool {
    true
}

/// Builds errors that point at a place in the file.
struct Locator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Locator<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text[..end].bytes().filter(|&b| b == b'\n').count() + 1
    }

    /// A value taken, but not as written: `file:line: key: message`, as an error reads.
    fn warning(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> String {
        self.error(span, key, message).to_string()
    }

    fn error(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.display().to_string(),
            line: if self.text.is_empty() {
                0
            } else {
                self.line_of(span.start)
            },
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// The dotted key a serde error points at: the `[table]` header above the line plus the
    /// `key =` on it (best effort: serde's message already names unknown fields).
    fn key_at(&self, offset: usize) -> String {
        let end = offset.min(self.text.len());
        let before = &self.text[..end];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[line_start..]
            .find('\n')
            .map_or(self.text.len(), |i| line_start + i);
        let line = self.text[line_start..line_end].trim();
        let mut table = String::new();
        let mut array_index: Option<usize> = None;
        let mut counts = std::collections::HashMap::<String, usize>::new();
        for l in self.text[..line_end].lines() {
            let l = l.trim();
            // Up to the first `]`: an unclosed `[[sources]` names `sources`, not `sources]`.
            if let Some(name) = l.strip_prefix("[[").and_then(|r| r.split(']').next()) {
                let name = name.trim().to_string();
                let n = counts.entry(name.clone()).or_insert(0);
                array_index = Some(*n);
                *n += 1;
                table = name;
            } else if let Some(name) = l.strip_prefix('[').and_then(|r| r.split(']').next()) {
                table = name.trim().to_string();
                array_index = None;
            }
        }
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim().trim_matches('"').to_string())
            .filter(|k| !k.is_empty() && !k.starts_with('['));
        let prefix = match array_index {
            Some(i) => format!("{table}[{i}]"),
            None => table,
        };
        match (prefix.is_empty(), key) {
            (true, Some(k)) => k,
            (false, Some(k)) => format!("{prefix}.{k}"),
            (_, None) if !prefix.is_empty() => prefix,
            _ => "(top level)".to_string(),
        }
    }
}

/// The dotted key (`sources[1].schedule`) of the deepest key or value of a document that is
/// valid TOML whose place in the text holds `offset`: where serde's errors point, also inside
/// inline tables and arrays, which [`Locator::key_at`]'s reading of lines cannot see into.
/// `None` when the text is not TOML or nothing there holds the offset.
fn key_path_at(text: &str, offset: usize) -> Option<String> {
    use toml::Spanned;
    use toml::de::{DeTable, DeValue};
    /// The path below `value` to what holds `offset`, innermost last; empty when `value`
    /// itself does.
    fn below(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<Vec<String>> {
        let found = match value.get_ref() {
            DeValue::Table(table) => in_table(table, offset),
            DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let mut path = below(item, offset)?;
                path.insert(0, format!("[{i}]"));
                Some(path)
            }),
            _ => None,
        };
        found.or_else(|| value.span().contains(&offset).then(Vec::new))
    }
    fn in_table(table: &DeTable<'_>, offset: usize) -> Option<Vec<String>> {
        table.iter().find_map(|(key, value)| {
            if key.span().contains(&offset) {
                return Some(vec![key.get_ref().to_string()]);
            }
            let mut path = below(value, offset)?;
            path.insert(0, key.get_ref().to_string());
            Some(path)
        })
    }
    let document = DeTable::parse(text).ok()?;
    let path = in_table(document.get_ref(), offset)?;
    let mut dotted = String::new();
    for segment in path {
        if !dotted.is_empty() && !segment.starts_with('[') {
            dotted.push('.');
        }
        dotted.push_str(&segment);
    }
    (!dotted.is_empty()).then_some(dotted)
}

/// A config file that is not UTF-8 (TOML is; a Latin-1 "é" is the usual slip), named at the
/// line, key and column of its first byte that is not.
pub(super) fn not_utf8(path: &Path, bytes: &[u8], error: std::str::Utf8Error) -> ConfigError {
    let at = error.valid_up_to();
    let text = String::from_utf8_lossy(bytes);
    let column = text[..at].chars().rev().take_while(|&c| c != '\n').count() + 1;
    let locator = Locator { text: &text, path };
    locator.error(
        at..at,
        &locator.key_at(at),
        format!(
            "the file is not UTF-8 text (byte {:#04X} at column {column}); save it as UTF-8",
            bytes[at]
        ),
    )
}

pub(super) fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let at = Locator { text, path };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let message = e.message().trim().to_string();
        let key = key_path_at(text, span.start).unwrap_or_else(|| at.key_at(span.start));
        at.error(span.clone(), &key, message)
    })?;
    let base_dir = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let mut warnings = Vec::new();

    let server = ServerConfig {
        listen: match &raw.server.listen {
            Some(listen) => listen.get_ref().parse::<SocketAddr>().map_err(|e| {
                at.error(
                    listen.span(),
                    "server.listen",
                    format!(
                        "{:?} is not an address like 127.0.0.1:8080: {e}",
                        listen.get_ref()
                    ),
                )
            })?,
            None => DEFAULT_LISTEN,
        },
        base_url: match &raw.server.base_url {
            Some(base) => Some(check_base_url(&at, base, &mut warnings)?),
            None => None,
        },
        title: match &raw.server.title {
            // An empty title made feeds without one (RSS and JSON Feed require it) and a status
            // page titled " — status". It loaded before, so it still does, as the default.
            Some(title) if title.get_ref().trim().is_empty() => {
                warnings.push(at.warning(
                    title.span(),
                    "server.title",
                    format!(
                        "{:?} is blank; read as \"{DEFAULT_TITLE}\"",
                        title.get_ref()
                    ),
                ));
                DEFAULT_TITLE.to_string()
            }
            Some(title) => title.get_ref().clone(),
            None => DEFAULT_TITLE.to_string(),
        },
    };

    let storage = StorageConfig {
        path: match &raw.storage.path {
            Some(p) if p.get_ref().trim().is_empty() => {
                return Err(at.error(p.span(), "storage.path", "must name a file"));
            }
            // A directory passed `check` and then failed every command that opened it.
            Some(p) if resolve(&base_dir, p.get_ref()).is_dir() => {
                let dir = resolve(&base_dir, p.get_ref());
                return Err(at.error(
                    p.span(),
                    "storage.path",
                    format!(
                        "{} is a directory; name the database file, e.g. {}",
                        dir.display(),
                        dir.join("tradefeed.db").display()
                    ),
                ));
            }
            Some(p) => resolve(&base_dir, p.get_ref()),
            None => resolve(&base_dir, "tradefeed.db"),
        },
        retention_days: match &raw.storage.retention_days {
            Some(d) if *d.get_ref() > MAX_RETENTION_DAYS => {
                return Err(at.error(
                    d.span(),
                    "storage.retention_days",
                    format!("must be at most {MAX_RETENTION_DAYS} (100 years); 0 keeps all"),
                ));
            }
            Some(d) => Some(*d.get_ref()).filter(|&d| d > 0),
            None => None,
        },
    };

    let d = &raw.defaults;
    let default_schedule = match &d.schedule {
        Some(s) => parse_schedule(&at, s, "defaults.schedule")?,
        None => Schedule::parse(DEFAULT_SCHEDULE).expect("the default schedule is valid"),
    };
    // `min` of 1 for the keys that must be greater than 0; `max` for those that feed time or
    // permit arithmetic, where an absurd value would overflow (`limit` says it in words).
    let bounded = |v: &Option<Spanned<u64>>,
                   key: &str,
                   default: u64,
                   min: u64,
                   (max, limit): (u64, &str)|
     -> Result<u64, ConfigError> {
        match v {
            Some(s) if *s.get_ref() < min => Err(at.error(s.span(), key, "must be greater than 0")),
            Some(s) if *s.get_ref() > max => {
                Err(at.error(s.span(), key, format!("must be at most {max} ({limit})")))
            }
            Some(s) => Ok(*s.get_ref()),
            None => Ok(default),
        }
    };
    let positive_usize = |v: &Option<Spanned<usize>>,
                          key: &str,
                          default: usize,
                          max: usize|
     -> Result<usize, ConfigError> {
        match v {
            Some(s) if *s.get_ref() == 0 => Err(at.error(s.span(), key, "must be greater than 0")),
            Some(s) if *s.get_ref() > max => {
                Err(at.error(s.span(), key, format!("must be at most {max}")))
            }
            Some(s) => Ok(*s.get_ref()),
            None => Ok(default),
        }
    };
    let backoff_base = bounded(
        &d.backoff_base_secs,
        "defaults.backoff_base_secs",
        60,
        1,
        MAX_BACKOFF_SECS,
    )?;
    let backoff_cap = bounded(
        &d.backoff_cap_secs,
        "defaults.backoff_cap_secs",
        6 * 3600,
        1,
        MAX_BACKOFF_SECS,
    )?;
    if backoff_cap < backoff_base {
        // Point at the key the operator wrote: the cap when given, else the base that
        // exceeds the default cap.
        return Err(match (&d.backoff_cap_secs, &d.backoff_base_secs) {
            (Some(cap), _) => at.error(
                cap.span(),
                "defaults.backoff_cap_secs",
                "must not be smaller than backoff_base_secs",
            ),
            (None, Some(base)) => at.error(
                base.span(),
                "defaults.backoff_base_secs",
                format!("must not be larger than backoff_cap_secs ({backoff_cap} by default)"),
            ),
            (None, None) => unreachable!("the default base is below the default cap"),
        });
    }
    let polling = PollingConfig {
        schedule: default_schedule.clone(),
        timeout: Duration::from_secs(bounded(
            &d.timeout_secs,
            "defaults.timeout_secs",
            30,
            1,
            MAX_TIMEOUT_SECS,
        )?),
        connect_timeout: Duration::from_secs(bounded(
            &d.connect_timeout_secs,
            "defaults.connect_timeout_secs",
            10,
            1,
            MAX_TIMEOUT_SECS,
        )?),
        max_body_bytes: bounded(
            &d.max_body_bytes,
            "defaults.max_body_bytes",
            10 * 1024 * 1024,
            1,
            MAX_BODY_BYTES,
        )?,
        // Any count: a loop is caught at its first repeat and the total timeout bounds a
        // long chain, so a high value costs nothing (and configs that set one keep working).
        max_redirects: d.max_redirects.as_ref().map_or(5, |n| *n.get_ref()),
        user_agent: match &d.user_agent {
            Some(agent) => check_user_agent(&at, agent)?,
            None => format!(
                "tradefeed/{} (+https://github.com/tradefeed/tradefeed)",
                env!("CARGO_PKG_VERSION")
            ),
        },
        concurrency: positive_usize(&d.concurrency, "defaults.concurrency", 16, MAX_CONCURRENCY)?,
        per_host_concurrency: positive_usize(
            &d.per_host_concurrency,
            "defaults.per_host_concurrency",
            2,
            MAX_CONCURRENCY,
        )?,
        per_host_spacing: Duration::from_millis(bounded(
            &d.per_host_spacing_ms,
            "defaults.per_host_spacing_ms",
            0,
            0,
            MAX_SPACING_MS,
        )?),
        max_items_per_poll: positive_usize(
            &d.max_items_per_poll,
            "defaults.max_items_per_poll",
            500,
            usize::MAX,
        )?,
        max_jitter: Duration::from_secs(bounded(
            &d.max_jitter_secs,
            "defaults.max_jitter_secs",
            120,
            0,
            MAX_JITTER_SECS,
        )?),
        backoff_base: Duration::from_secs(backoff_base),
        backoff_cap: Duration::from_secs(backoff_cap),
    };

    let cluster = ClusterSettings {
        window_days: match &raw.cluster.window_days {
            Some(w) if *w.get_ref() == 0 => {
                return Err(at.error(w.span(), "cluster.window_days", "must be greater than 0"));
            }
            Some(w) if *w.get_ref() > MAX_WINDOW_DAYS => {
                return Err(at.error(
                    w.span(),
                    "cluster.window_days",
                    format!("must be at most {MAX_WINDOW_DAYS} (10 years)"),
                ));
            }
            Some(w) => *w.get_ref(),
            None => 7,
        },
    };

    // Off unless the operator says otherwise: a public feed's redirects stay out of private
    // networks (see `fetch::guard`).
    let allow_private_redirects = d.allow_private_redirects.unwrap_or(false);
    let mut names = HashSet::new();
    // Sources that write the same schedule line share one parse (see `Schedule`).
    let mut schedules: HashMap<&str, Schedule> = HashMap::new();
    let mut sources = Vec::with_capacity(raw.sources.len());
    for (i, s) in raw.sources.iter().enumerate() {
        let written = s.name.get_ref().as_str();
        let name = written.trim();
        let key = |field: &str| format!("sources[{i}].{field}");
        if name.is_empty() {
            return Err(at.error(s.name.span(), &key("name"), "must not be empty"));
        }
        if name.chars().any(|c| c.is_control()) {
            return Err(at.error(
                s.name.span(),
                &key("name"),
                "must not hold control characters",
            ));
        }
        // A name is the source's identity in the database and in the served feeds, and what
        // `--source` matches: white space at its ends is a typo that would go unseen there.
        // Such names were trimmed without a word and configs running for months hold them,
        // so the name is still trimmed (the identity the database already knows), and said.
        if name != written {
            warnings.push(at.warning(
                s.name.span(),
                &key("name"),
                format!("{written:?} has white space at either end; read as {name:?}"),
            ));
        }
        if !names.insert(name.to_string()) {
            return Err(at.error(
                s.name.span(),
                &key("name"),
                format!("duplicate source name {name:?}: names must be unique"),
            ));
        }
        let url = check_http_url(&at, &s.url, &key("url"), &mut warnings)?;
        let schedule = match &s.schedule {
            Some(line) => match schedules.get(line.get_ref().as_str()) {
                Some(parsed) => parsed.clone(),
                None => {
                    let parsed = parse_schedule(&at, line, &key("schedule"))?;
                    schedules.insert(line.get_ref(), parsed.clone());
                    parsed
                }
            },
            None => default_schedule.clone(),
        };
        sources.push(Source {
            name: name.to_string(),
            url,
            schedule,
            enabled: s.enabled,
            tags: s.tags.clone(),
            priority: s.priority,
            cluster: s.cluster,
            allow_private_redirects: s.allow_private_redirects.unwrap_or(allow_private_redirects),
        });
    }

    Ok(Config {
        path: path.to_path_buf(),
        server,
        storage,
        polling,
        cluster,
        topics_dir: resolve(&base_dir, raw.topics.dir.as_deref().unwrap_or("topics")),
        sources,
        warnings,
    })
}

/// A `user_agent` the HTTP client can send: a header value (no control character but the
/// tab: one would split the request's header lines, and the client refuses it when it is
/// built, long after `check` said ok), not empty, at most [`MAX_USER_AGENT_BYTES`].
fn check_user_agent(at: &Locator<'_>, agent: &Spanned<String>) -> Result<String, ConfigError> {
    let value = agent.get_ref().trim();
    let key = "defaults.user_agent";
    if value.is_empty() {
        return Err(at.error(agent.span(), key, "must not be empty"));
    }
    if value.len() > MAX_USER_AGENT_BYTES {
        return Err(at.error(
            agent.span(),
            key,
            format!("must be at most {MAX_USER_AGENT_BYTES} bytes"),
        ));
    }
    if let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') {
        return Err(at.error(
            agent.span(),
            key,
            format!("the control character {c:?} cannot be sent in an HTTP header"),
        ));
    }
    Ok(value.to_string())
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn parse_schedule(
    at: &Locator,
    line: &Spanned<String>,
    key: &str,
) -> Result<Schedule, ConfigError> {
    Schedule::parse(line.get_ref()).map_err(|e| at.error(line.span(), key, e.to_string()))
}

/// An http(s) URL, trimmed and otherwise as written. One not written `scheme://host…`
/// (`http:///host/rss`, see [`crate::domain::parse_http_url`]) is most likely a typo, but
/// such URLs loaded before that rule and daemons run on them: it is taken (the fetcher reads
/// it as the `url` crate does) with a warning saying what it is read as.
/// `[server] base_url`: an http(s) URL (see [`check_http_url`]) that every served link
/// starts with, so as URL parsing reads it (a spelling warned about serves valid links) and
/// without what a prefix cannot carry: a query or a fragment would end up in the middle of
/// each link (`…/tf?x=1#f/feeds/all.rss`), and user-info would publish a password in every
/// feed's self link.
fn check_base_url(
    at: &Locator,
    base: &Spanned<String>,
    warnings: &mut Vec<String>,
) -> Result<String, ConfigError> {
    const KEY: &str = "server.base_url";
    let text = check_http_url(at, base, KEY, warnings)?;
    let shown = quoted_url(&text);
    let (url, _) = crate::domain::read_http_url(&text)
        .map_err(|e| at.error(base.span(), KEY, format!("{shown} {e}")))?;
    let refuse = |what: &str| {
        at.error(
            base.span(),
            KEY,
            format!("{shown} has {what}, which no prefix of a link can carry"),
        )
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("user-info"));
    }
    if url.query().is_some() {
        return Err(refuse("a query"));
    }
    if url.fragment().is_some() {
        return Err(refuse("a fragment"));
    }
    Ok(url.into())
}

/// A URL value as a message quotes it (messages go to the terminal, the log and the status
/// page): as written, unless it may hold user-info (an `@`); then as URL parsing reads it,
/// without the user-info, and said so. Redacting the written text instead misses what the
/// parser reads past (`http:user:pw@host`, a line break, a space in the password).
fn quoted_url(text: &str) -> String {
    if text.contains('@') {
        format!(
            "{:?} (user-info left out)",
            crate::domain::url_for_display(text)
        )
    } else {
        format!("{text:?}")
    }
}

fn check_http_url(
    at: &Locator,
    url: &Spanned<String>,
    key: &str,
    warnings: &mut Vec<String>,
) -> Result<String, ConfigError> {
    let text = url.get_ref().trim();
    let shown = quoted_url(text);
    match crate::domain::read_http_url(text) {
        Ok((_, None)) => {}
        Ok((read, Some(spelling))) => warnings.push(at.warning(
            url.span(),
            key,
            format!(
                "{shown} {spelling}; read as {:?}",
                crate::domain::url_for_display(read.as_str())
            ),
        )),
        Err(e) => return Err(at.error(url.span(), key, format!("{shown} {e}"))),
    }
    Ok(text.to_string())
}
