//! The command line: subcommands and what each prints. `main` parses, sets up logging, calls
//! [`execute`].

mod opml;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::Utc;
use clap::{Parser, Subcommand, ValueEnum};
use tokio_util::sync::CancellationToken;
use tracing::info;
use unicode_width::UnicodeWidthStr;

use crate::app::{self, FetchPassResult, Pipeline};
use crate::config::{self, Config};
use crate::store::{Access, Idle, Store};

/// Exit status of `fetch` when some sources failed.
pub const EXIT_SOME_FAILED: u8 = 2;
/// Exit status of a fatal error (bad config, unusable database).
pub const EXIT_FATAL: u8 = 1;

/// tradefeed: one consolidated, deduplicated trade-policy feed from many news sources.
#[derive(Debug, Parser)]
#[command(name = "tradefeed", version, about)]
pub struct Cli {
    /// Config file.
    #[arg(long, global = true, env = "TRADEFEED_CONFIG", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Log format on stderr (level via RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A threshold: a number in [0, 1] (a score can be neither below 0 nor above 1, so a
/// threshold outside matches everything or nothing).
fn unit_interval(s: &str) -> Result<f32, String> {
    let x: f32 = s.trim().parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("{x} is not in [0, 1]"))
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: poll on schedule and serve the feeds.
    Run,
    /// One polling pass over every enabled source (or one), then exit.
    /// Exit status: 0 all fine, 2 some sources failed (a source stopped by a 410 included), 1
    /// fatal.
    Fetch {
        /// Poll only this source.
        #[arg(long)]
        source: Option<String>,
    },
    /// Validate the config file and topic profiles.
    Check,
    /// Table of sources: status, last success, next due, entries.
    Sources,
    /// Train a topic model from labelled JSONL (`{"title", "text", "label"}` per line).
    Train {
        /// Labelled examples.
        #[arg(long)]
        labels: PathBuf,
        /// Where to write the model file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Score a labelled JSONL file and print the confusion counts; the last line is JSON with
    /// precision, recall, f1, tp, fp, fn, tn.
    Eval {
        /// Labelled examples.
        #[arg(long)]
        labels: PathBuf,
        /// A configured (or the built-in) topic to evaluate.
        #[arg(long, conflicts_with = "model")]
        topic: Option<String>,
        /// A trained model file to evaluate on its own.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Decision threshold to use instead of the topic's or model's own (scores are in
        /// [0, 1]).
        #[arg(long, value_parser = unit_interval)]
        threshold: Option<f32>,
        /// List the misclassified items with the features that drove their scores.
        #[arg(long)]
        explain: bool,
    },
    /// Re-score every stored story with the current topic profiles (the daemon also does this
    /// on start-up when the profiles changed).
    Reclassify,
    /// Print one story with its appearances and the evidence that joined each.
    Story {
        /// The story number, or its whole feed id as a feed reader shows it
        /// (`tag:tradefeed,2026:…/story/N`).
        #[arg(value_parser = story_ref)]
        id: StoryRef,
    },
    /// Ask the running daemon's /healthz (for container health checks); exit 0 when healthy.
    Health {
        /// Give up after this many seconds (1 to 3600).
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
    },
    /// Add an OPML subscription list's feeds to the config file (comments and layout kept).
    ImportOpml {
        /// The OPML file (as exported by a feed reader).
        file: PathBuf,
    },
    /// Print the configured sources as an OPML 2.0 subscription list.
    ExportOpml,
    /// Find the feeds a web page advertises (its `<link rel="alternate">` elements), or say
    /// that the URL is a feed itself. Exit status: 0 found, 1 none found or a fatal error.
    Discover {
        /// The page (or feed) to look at: an http(s) URL.
        url: String,
        /// Print the feeds as `[[sources]]` blocks ready to paste into the config.
        #[arg(long)]
        toml: bool,
    },
}

/// Parses the process's command line. A bad one (an unknown flag, a missing or malformed
/// value, no command) is printed with clap's message and usage and ends in [`EXIT_FATAL`], not
/// clap's own status 2, which `fetch` and `import-opml` use for "some sources failed" and which
/// Docker's `HEALTHCHECK` reserves (`health` answers 0 or 1); `--help` and `--version` print
/// and end in 0.
pub fn parse_args() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::from(EXIT_FATAL)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Runs a parsed command line and returns the process exit status.
pub fn execute(cli: Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Check => check(&cli),
        Command::ImportOpml { file } => opml::import(&cli, file),
        Command::ExportOpml => opml::export(&cli),
        Command::Train { labels, out } => train(labels, out),
        Command::Eval {
            labels,
            topic,
            model,
            threshold,
            explain,
        } => eval(
            &cli,
            labels,
            topic.as_deref(),
            model.as_deref(),
            *threshold,
            *explain,
        ),
        _ => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                // Blocking work is bounded by the store's readers and the CPU permits; this cap
                // only guards memory (each thread has a stack and its own caches).
                .max_blocking_threads(32)
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return ExitCode::from(EXIT_FATAL);
                }
            };
            runtime.block_on(async {
                match &cli.command {
                    Command::Run => run(&cli).await,
                    Command::Fetch { source } => fetch(&cli, source.as_deref()).await,
                    Command::Sources => sources(&cli).await,
                    Command::Health { timeout } => health(&cli, *timeout).await,
                    Command::Reclassify => reclassify(&cli).await,
                    Command::Story { id } => story(&cli, id).await,
                    Command::Discover { url, toml } => discover(&cli, url, *toml).await,
                    Command::Check
                    | Command::Train { .. }
                    | Command::Eval { .. }
                    | Command::ImportOpml { .. }
                    | Command::ExportOpml => unreachable!("handled above"),
                }
            })
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            // Said once (an error is logged once, where it is handled): a plain line with the
            // cause chain, which reads the same for every command, in a terminal and in the
            // journal (which takes the daemon's stderr), whatever the log format.
            eprintln!("error: {}", app::error_chain(&e));
            ExitCode::from(EXIT_FATAL)
        }
    }
}

/// An error and its causes, outermost first, joined by `: `. A cause whose text the message
/// already ends with is left out: several of our errors show their cause in their own text
/// (`path: cause`) and also report it as their source, which printed it twice.
fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(Config::load_with_env(&cli.config)?)
}

async fn health(cli: &Cli, timeout: u64) -> anyhow::Result<ExitCode> {
    // A config the running daemon refused on reload (it goes on serving the old one) must not
    // make it look unhealthy: the address is read as written when the rest is invalid.
    let (mut addr, refused) = Config::listen_for_health(&cli.config)?;
    if let Some(error) = refused {
        eprintln!(
            "warning: {}; probing its [server] listen as written",
            app::error_chain(&error.into())
        );
    }
    // Port 0 has the daemon take any free port, which only its log says: probing port 0
    // would fail with a connection error that reads like a dead daemon.
    if addr.port() == 0 {
        let from = if std::env::var("TRADEFEED_LISTEN").is_ok() {
            "$TRADEFEED_LISTEN"
        } else {
            "the config's [server] listen"
        };
        eprintln!(
            "error: cannot probe the daemon at {addr} (from {from}): port 0 lets it take any \
             free port, which only its log says (the address it bound); give it a port, or \
             set $TRADEFEED_LISTEN to the address the daemon logged"
        );
        return Ok(ExitCode::from(EXIT_FATAL));
    }
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let url = format!("http://{addr}/healthz");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(timeout))
        .build()?;
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => {
            println!("healthy: {url}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(r) => {
            println!("unhealthy: {url} answered {}", r.status());
            Ok(ExitCode::from(EXIT_FATAL))
        }
        Err(e) => {
            println!("unhealthy: {url}: {e}");
            Ok(ExitCode::from(EXIT_FATAL))
        }
    }
}

fn check(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let classifier = app::load_classifier(&config)?;
    for message in app::config_warnings(&config, &classifier) {
        eprintln!("warning: {message}");
    }
    let builtin = if config.topics_dir.is_dir() {
        String::new()
    } else {
        format!(" (built-in: no folder at {})", config.topics_dir.display())
    };
    // A relaxed security rule is worth a word where the operator checks the config.
    let allowed: Vec<&str> = config
        .sources
        .iter()
        .filter(|s| s.allow_private_redirects)
        .map(|s| s.name.as_str())
        .collect();
    let private_redirects = if allowed.is_empty() {
        String::new()
    } else {
        format!("; private redirects allowed for: {}", allowed.join(", "))
    };
    println!(
        "{}: ok ({} sources, {} enabled; topics: {}{builtin}; database {}{private_redirects})",
        cli.config.display(),
        config.sources.len(),
        config.enabled_sources().count(),
        classifier.topic_names().join(", "),
        config.storage.path.display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let listener = match tokio::net::TcpListener::bind(config.server.listen).await {
        Ok(listener) => listener,
        // A second `run` on the same config: its port is taken by the first, and that, not
        // the port, is what to say.
        Err(e)
            if e.kind() == std::io::ErrorKind::AddrInUse
                && crate::store::held_by_another_process(&config.storage.path) =>
        {
            return Err(
                crate::store::StoreError::InUse(config.storage.path.display().to_string()).into(),
            );
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("binding {}", config.server.listen)));
        }
    };
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    app::run(config, listener, cancel).await?;
    Ok(ExitCode::SUCCESS)
}

/// Cancels `cancel` on SIGTERM or SIGINT.
async fn shutdown_on_signal(cancel: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::select! {
            _ = term.recv() => info!(signal = "SIGTERM", "shutdown requested"),
            _ = int.recv() => info!(signal = "SIGINT", "shutdown requested"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    cancel.cancel();
}

async fn fetch(cli: &Cli, only: Option<&str>) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let sources: Vec<_> = match only {
        Some(name) => {
            let source = config
                .sources
                .iter()
                .find(|s| s.name == name)
                .with_context(|| format!("no source named {name:?} in {}", cli.config.display()))?;
            vec![source.clone()]
        }
        None => config.enabled_sources().cloned().collect(),
    };
    let pipeline = Pipeline::start(&config).await?;
    let started = std::time::Instant::now();
    let results = app::fetch_once(&pipeline, sources, config.polling.concurrency).await;
    // The daemon prunes hourly; a database fed only by `fetch` (from cron, say) is pruned
    // here, or retention and the fetch log's cap would never apply to it.
    app::prune_once(
        &pipeline.store,
        config.storage.retention_days,
        &CancellationToken::new(),
    )
    .await;
    pipeline.store.close().await;

    // One line per source: buffered, so a pass over thousands of sources is not a write
    // system call per line (stdout's own buffer flushes at every newline).
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let failed = write_fetch_summary(&mut out, &results, started.elapsed());
    let _ = out.flush();
    Ok(if failed > 0 {
        ExitCode::from(EXIT_SOME_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}

/// `discover URL`: fetches the URL as a poll would (the config's limits, User-Agent and
/// redirect rules; the defaults when the config file does not exist) and prints the feeds the
/// page advertises, one per line (`URL (KIND "TITLE")`), or that the URL is itself a feed;
/// with `toml`, as `[[sources]]` blocks, and a comment in place of each feed already configured.
async fn discover(cli: &Cli, url: &str, toml: bool) -> anyhow::Result<ExitCode> {
    use crate::discover::{Discovery, discover, source_names};
    use crate::fetch::{FetchLimits, FetchOutcome, FetchRequest, Fetcher};

    // `http:///page` is a typo, not `http://page/`: refused here, where it is new input (the
    // config loads one with a warning, as it loaded before the rule).
    if let Err(e) = crate::domain::parse_http_url(url) {
        anyhow::bail!("invalid url: {url:?} {e}");
    }

    // The config gives the fetch limits, the source names printed blocks must not reuse and
    // the feeds already configured. Without one there is nothing to clash with; one that does
    // not load is said, and the page still listed (the operator may be writing the config
    // from this output).
    let (limits, configured) = match Config::load_with_env(&cli.config) {
        Ok(config) => (app::fetch_limits(&config), Configured::of(&config.sources)),
        Err(config::ConfigError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            (FetchLimits::default(), Configured::default())
        }
        Err(e) => {
            let names = if toml {
                "; source names are checked only against each other"
            } else {
                ""
            };
            eprintln!(
                "warning: the config does not load, so the default fetch limits apply{names}: \
                 {e}"
            );
            (FetchLimits::default(), Configured::default())
        }
    };
    // Building the client loads the system's CA certificates: blocking work.
    let fetcher = tokio::task::spawn_blocking(move || Fetcher::new(limits)).await??;
    let request = FetchRequest {
        url: url.to_owned(),
        ..FetchRequest::default()
    };
    let fetched = match fetcher
        .fetch(&request)
        .await
        .with_context(|| format!("fetching {url}"))?
    {
        FetchOutcome::Fetched(fetched) => fetched,
        // No validators were sent: the fetcher answers a 304 to that with an error, so this
        // is not reached.
        FetchOutcome::NotModified(_) => anyhow::bail!("fetching {url}: 304 Not Modified"),
    };
    let redirected = if fetched.final_url == url {
        String::new()
    } else {
        format!(" (redirected to {})", fetched.final_url)
    };
    let body = std::sync::Arc::new(fetched.body);
    let (parse_body, content_type) = (std::sync::Arc::clone(&body), fetched.content_type.clone());
    let parsed = tokio::task::spawn_blocking(move || {
        crate::parse::parse_feed(&parse_body, content_type.as_deref())
    })
    .await?;
    let mut out = std::io::stdout().lock();
    match parsed {
        Ok(feed) => {
            let folded = feed
                .title
                .as_deref()
                .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|t| !t.is_empty());
            let title = folded
                .as_deref()
                .map_or_else(String::new, |t| format!(" \"{t}\","));
            if toml {
                // Where a permanent redirect moved the feed, else the URL as given: a 302 or
                // 307 target is temporary, and the source should keep asking at the URL.
                let source_url = fetched
                    .validators
                    .permanent_redirect
                    .as_deref()
                    .unwrap_or(url);
                // Configured under either URL, it is polled already: a source at the URL given
                // that moved permanently is told so by `sources` and the status page.
                let configured_as = [source_url, url]
                    .into_iter()
                    .find_map(|u| configured.source_of(u).map(|name| (u, name)));
                let block = match configured_as {
                    Some((configured_url, name)) => already_configured(configured_url, name),
                    None => {
                        let names =
                            source_names([(feed.title.as_deref(), source_url)], &configured.names);
                        sources_block(&names[0], source_url)
                    }
                };
                writeln!(out, "{block}")?;
            } else {
                writeln!(
                    out,
                    "{url} is a feed{redirected}:{title} {} items; use it as the source's url",
                    feed.items.len() + feed.items_not_read
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => match discover(&body, fetched.content_type.as_deref(), &fetched.final_url) {
            Discovery::HtmlPage(feeds) if !feeds.is_empty() => {
                if toml {
                    // Named among the new feeds only: a configured one gets no block.
                    let new: Vec<_> = feeds
                        .iter()
                        .filter(|f| configured.source_of(&f.url).is_none())
                        .collect();
                    let mut names = source_names(
                        new.iter().map(|f| (f.title.as_deref(), &f.url[..])),
                        &configured.names,
                    )
                    .into_iter();
                    for feed in &feeds {
                        let block = match configured.source_of(&feed.url) {
                            Some(name) => already_configured(&feed.url, name),
                            None => sources_block(
                                &names.next().expect("one name per new feed"),
                                &feed.url,
                            ),
                        };
                        writeln!(out, "{block}")?;
                    }
                } else {
                    for feed in &feeds {
                        writeln!(out, "{feed}")?;
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            Discovery::HtmlPage(_) => anyhow::bail!(
                "{url}{redirected} is an HTML page that advertises no feed (no <link \
                 rel=\"alternate\"> to RSS, Atom or JSON Feed in its head)"
            ),
            Discovery::NotHtml => {
                anyhow::bail!("{url}{redirected} is neither a feed nor an HTML page: {error}")
            }
        },
    }
}

/// The config's sources as `discover --toml` weighs them.
#[derive(Debug, Default)]
struct Configured {
    /// Every source's name: printed blocks take others.
    names: HashSet<String>,
    /// Each configured URL (as `import-opml` compares them, see [`crate::opml::comparable_url`]) and
    /// the name of the first source that has it.
    urls: HashMap<String, String>,
}

impl Configured {
    fn of(sources: &[crate::domain::Source]) -> Configured {
        let mut configured = Configured::default();
        for source in sources {
            configured.names.insert(source.name.clone());
            configured
                .urls
                .entry(crate::opml::comparable_url(&source.url))
                .or_insert_with(|| source.name.clone());
        }
        configured
    }

    /// The name of the source that already polls `url`, if one does.
    fn source_of(&self, url: &str) -> Option<&str> {
        self.urls
            .get(&crate::opml::comparable_url(url))
            .map(String::as_str)
    }
}

/// What `discover --toml` prints for a feed the config already has, in place of a block: a
/// TOML comment, so that the output stays pastable (a block would make the config poll one
/// URL twice, under two names), naming the source as it is written in the config.
fn already_configured(url: &str, name: &str) -> String {
    let quote = |s: &str| toml_edit::Value::from(s).to_string();
    // One comment line: a line break in the URL (an argument can hold one; URL parsing drops
    // it) would end the comment.
    let url: String = url.chars().filter(|c| !c.is_control()).collect();
    format!(
        "# {url} is already configured, as source {}\n",
        quote(name).trim()
    )
}

/// A `[[sources]]` block for the config, ending in a blank line.
fn sources_block(name: &str, url: &str) -> String {
    let quote = |s: &str| toml_edit::Value::from(s).to_string();
    format!(
        "[[sources]]\nname = {}\nurl = {}\n",
        quote(name).trim(),
        quote(url).trim()
    )
}

async fn sources(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let path = config.storage.path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&path, Access::ReadOnly)).await??;
    let states = store.source_states().await?;
    let mut out = std::io::stdout().lock();
    write_sources_table(&mut out, &config.sources, &states);
    Ok(ExitCode::SUCCESS)
}

/// Widest the name column of `fetch` and `sources` is padded to: a longer name is printed
/// whole (names are what operators grep for) and pushes the rest of its own line right.
const MAX_NAME_COLUMN: usize = 60;

/// Width of a name column in terminal columns: the widest of `names` (see [`Padded`]), at
/// least `min` (the heading's width), at most [`MAX_NAME_COLUMN`].
fn name_column_width<'a>(names: impl Iterator<Item = &'a str>, min: usize) -> usize {
    names
        .map(UnicodeWidthStr::width)
        .max()
        .unwrap_or(0)
        .clamp(min, MAX_NAME_COLUMN.max(min))
}

/// A name followed by spaces up to a width in terminal columns. `{:<width$}` pads by chars,
/// but a CJK character (`日本経済新聞`) or an emoji takes two columns and a combining mark
/// none, so the columns after such a name went out of line. A name wider than the width is
/// written whole, never cut.
struct Padded<'a>(&'a str, usize);

impl std::fmt::Display for Padded<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Padded(name, width) = *self;
        f.write_str(name)?;
        write!(f, "{:1$}", "", width.saturating_sub(name.width()))
    }
}

/// What the operator can do about a source the store has stopped (a `410 Gone`): the stop is
/// lifted only when `sync_sources` records another URL for the source (a new URL is a new
/// feed); `enabled`, a rename or a restart leave it in place.
/// The stored reason already says to update or remove the source; this says what "update"
/// means.
pub const STOPPED_REMEDY: &str =
    "not polled again until its url in the config changes (the new URL is polled as a new feed)";

/// Writes the `fetch` report: a line per source, then the summary line. Returns how many
/// sources failed: polls that failed and sources the store has stopped (a cron job running
/// `fetch` must see those through the exit status, not only in the status table); a source
/// the server asked to wait (`Retry-After`) is no failure.
///
/// Scripts parse these lines: fields are only ever added, at the end. A polled source's line
/// ends with `skipped=N` when items of its feed were not taken in (no identity, published
/// before the retention, over `max_items_per_poll`); the summary ends with their total, worded
/// so that no number stands before the word `items` but the first (`benches/acceptance.sh`
/// reads that one with a greedy pattern).
fn write_fetch_summary(
    out: &mut impl Write,
    results: &[FetchPassResult],
    elapsed: std::time::Duration,
) -> usize {
    let width = name_column_width(
        results.iter().map(|r| match r {
            FetchPassResult::Polled(p) => p.source.as_str(),
            FetchPassResult::Skipped { source, .. } | FetchPassResult::Stopped { source, .. } => {
                source.as_str()
            }
        }),
        28,
    );
    let (mut failed, mut items, mut new, mut not_modified, mut skipped) = (0, 0, 0, 0, 0);
    for r in results {
        match r {
            FetchPassResult::Polled(p) if p.is_ok() => {
                items += p.items;
                new += p.new_entries;
                skipped += p.skipped;
                if p.outcome == "not_modified" {
                    not_modified += 1;
                }
                let _ = write!(
                    out,
                    "{} {:<13} items={:<4} new={:<4} updated={:<4} stories+={:<4} {:>6}ms",
                    Padded(&p.source, width),
                    p.outcome,
                    p.items,
                    p.new_entries,
                    p.updated_entries,
                    p.new_stories,
                    p.duration.as_millis()
                );
                if p.skipped > 0 {
                    let _ = write!(out, " skipped={}", p.skipped);
                }
                let _ = writeln!(out);
            }
            FetchPassResult::Polled(p) => {
                failed += 1;
                let _ = writeln!(
                    out,
                    "{} FAILED {}: {}",
                    Padded(&p.source, width),
                    p.outcome,
                    p.error.as_deref().unwrap_or("")
                );
            }
            FetchPassResult::Skipped { source, reason } => {
                let _ = writeln!(out, "{} skipped: {reason}", Padded(source, width));
            }
            // Worded as a failed poll (`FAILED` and an outcome word, the STATUS of `sources`)
            // so that scripts matching failures find it.
            FetchPassResult::Stopped { source, reason } => {
                failed += 1;
                let _ = writeln!(
                    out,
                    "{} FAILED stopped: {reason}; {STOPPED_REMEDY}",
                    Padded(source, width)
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "{} sources, {} failed, {} not modified, {} items, {} new entries in {:.2}s, {} skipped items",
        results.len(),
        failed,
        not_modified,
        items,
        new,
        elapsed.as_secs_f64(),
        skipped
    );
    failed
}

/// Writes the `sources` table: every configured source with its stored state (`states`).
/// The NAME column is as wide as the widest name (see [`name_column_width`]).
fn write_sources_table(
    out: &mut impl Write,
    configured: &[crate::domain::Source],
    states: &[crate::store::SourceState],
) {
    let fmt = |t: Option<chrono::DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_string(),
            |t| t.format("%Y-%m-%d %H:%M").to_string(),
        )
    };
    let width = name_column_width(configured.iter().map(|s| s.name.as_str()), 24);
    let _ = writeln!(
        out,
        "{:<width$} {:<16} {:<17} {:<17} {:>7} {:>5}  URL",
        "NAME", "STATUS", "LAST SUCCESS", "NEXT DUE", "ENTRIES", "FAILS"
    );
    for config_source in configured {
        let state = states.iter().find(|s| s.name == config_source.name);
        // From the config file (which the daemon may not have reloaded yet) and the stored
        // stop; every row listed is in the config.
        let idle = Idle::of(
            true,
            config_source.enabled,
            state.is_some_and(|s| s.disabled_reason.is_some()),
        );
        let status = match (idle, state) {
            (Some(why), _) => why.as_str().to_string(),
            (None, None) => "never polled".to_string(),
            (None, Some(s)) => s
                .last_outcome
                .clone()
                .unwrap_or_else(|| "never polled".into()),
        };
        let _ = writeln!(
            out,
            "{} {:<16} {:<17} {:<17} {:>7} {:>5}  {}",
            Padded(&config_source.name, width),
            status,
            fmt(state.and_then(|s| s.last_success)),
            // A disabled or stopped source is skipped by the scheduler and by `fetch`
            // whatever due time is stored for it.
            if idle.is_some() {
                "not polled".to_string()
            } else {
                fmt(state.and_then(|s| s.next_due))
            },
            state.map_or(0, |s| s.entries),
            state.map_or(0, |s| s.consecutive_failures),
            config_source.url
        );
        // Stored texts as the log shows them (one line, escapes written out, no password):
        // rows written by earlier releases hold them as they came.
        let shown = crate::ingest::message_as_shown;
        if let Some(s) = state {
            if let Some(reason) = &s.disabled_reason {
                let _ = writeln!(out, "  ! {}", shown(reason));
            }
            if let Some(moved) = &s.moved_to {
                let _ = writeln!(
                    out,
                    "  ! moved permanently to {}: update the config",
                    shown(moved)
                );
            }
            if let Some(err) = &s.last_error {
                let _ = writeln!(out, "  ! last error: {}", shown(err));
            }
        }
    }
}

fn train(labels: &std::path::Path, out: &std::path::Path) -> anyhow::Result<ExitCode> {
    use crate::classify::{Model, TrainOptions, read_labels, train};
    let examples = read_labels(labels)?;
    // Before the training, which takes a while, rather than failing after it.
    Model::check_writable(out)?;
    let positives = examples.iter().filter(|e| e.label).count();
    anyhow::ensure!(
        positives > 0 && positives < examples.len(),
        "{}: needs both positive and negative examples ({positives} of {} are positive)",
        labels.display(),
        examples.len()
    );
    let started = std::time::Instant::now();
    let model = train(&examples, &TrainOptions::default());
    model.save(out)?;
    println!(
        "trained on {} examples ({} positive) in {:.1}s: {} features, threshold {:.3} (cross-validated); wrote {}",
        examples.len(),
        positives,
        started.elapsed().as_secs_f64(),
        model.len(),
        model.threshold,
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn eval(
    cli: &Cli,
    labels: &std::path::Path,
    topic: Option<&str>,
    model: Option<&std::path::Path>,
    threshold: Option<f32>,
    explain: bool,
) -> anyhow::Result<ExitCode> {
    use crate::classify::{Model, evaluate_model, evaluate_topic, read_labels};
    let examples = read_labels(labels)?;
    let report = match model {
        Some(path) => evaluate_model(&Model::load(path)?, &examples, threshold),
        None => {
            // The configured topics when the config exists, else the built-in one.
            let classifier = match Config::load_with_env(&cli.config) {
                Ok(config) => app::load_classifier(&config)?,
                Err(config::ConfigError::Io { .. }) => crate::classify::Classifier::builtin(),
                Err(e) => return Err(e.into()),
            };
            evaluate_topic(
                &classifier,
                topic.unwrap_or("trade-policy"),
                &examples,
                threshold,
            )?
        }
    };
    print!("{}", report.render(explain));
    Ok(ExitCode::SUCCESS)
}

async fn reclassify(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let classifier = std::sync::Arc::new(app::load_classifier(&config)?);
    let store = app::open_store(&config).await?;
    let started = std::time::Instant::now();
    let app::Sweep::Done(rescored) = app::rescore_all(
        &store,
        &classifier,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await?
    else {
        anyhow::bail!("re-scoring stopped before every story was scored");
    };
    // The database is this process's alone (see `open_store`), so no poll changes a story
    // meanwhile; should one have, the profiles are not recorded as applied.
    if rescored.left > 0 {
        store.close().await;
        anyhow::bail!(
            "{} stories changed while they were re-scored; run reclassify again",
            rescored.left
        );
    }
    store
        .set_meta("classifier", &classifier.fingerprint())
        .await?;
    store.close().await;
    println!(
        "re-scored {} stories for {} in {:.2}s",
        rescored.stories,
        classifier.topic_names().join(", "),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// A story as `story` is given it: its number, and the database instance when its whole feed
/// id was given.
#[derive(Debug, Clone)]
pub struct StoryRef {
    instance: Option<String>,
    id: i64,
}

/// Reads `N` or a story's feed id, `tag:tradefeed,YEAR:INSTANCE/story/N` (what a reader shows
/// and copies), so the id of an item in a feed can be pasted as it is.
fn story_ref(text: &str) -> Result<StoryRef, String> {
    let number = |n: &str| {
        n.parse::<i64>()
            .map_err(|e| format!("{e} (give the story number or its feed id)"))
    };
    if !text.starts_with("tag:tradefeed,") {
        return Ok(StoryRef {
            instance: None,
            id: number(text)?,
        });
    }
    let (instance, n) = crate::http::render::story_id_parts(text).ok_or_else(|| {
        format!("{text:?} is not a story's feed id (tag:tradefeed,YEAR:ID/story/N)")
    })?;
    Ok(StoryRef {
        instance: Some(instance.to_string()),
        id: number(n)?,
    })
}

async fn story(cli: &Cli, story: &StoryRef) -> anyhow::Result<ExitCode> {
    let config = load_config(cli)?;
    let path = config.storage.path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&path, Access::ReadOnly)).await??;
    if let Some(instance) = &story.instance
        && instance != store.instance()
    {
        anyhow::bail!(
            "story {} is from another tradefeed database (id {instance}; {} is {})",
            story.id,
            config.storage.path.display(),
            store.instance()
        );
    }
    let id = story.id;
    let Some(s) = store.story(id).await? else {
        anyhow::bail!("no story {id} in {}", config.storage.path.display());
    };
    let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "story {}  {}",
        s.id,
        crate::http::story_id(store.instance(), s.id)
    );
    let _ = writeln!(out, "title:      {}", s.title);
    let _ = writeln!(out, "link:       {}", s.link.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "published:  {}", fmt(s.published));
    let _ = writeln!(out, "updated:    {}", fmt(s.updated));
    let _ = writeln!(out, "first seen: {}", fmt(s.first_seen));
    for t in &s.topics {
        let _ = writeln!(
            out,
            "topic:      {} {:.3} {} — {}",
            t.topic,
            t.score,
            if t.matched { "matched" } else { "not matched" },
            t.why.join("; ")
        );
    }
    let _ = writeln!(out, "appearances ({}):", s.appearances.len());
    for a in &s.appearances {
        let _ = writeln!(out, "  - {} ({})", a.source, fmt(a.first_seen));
        let _ = writeln!(out, "    title:    {}", a.title);
        let _ = writeln!(out, "    url:      {}", a.url.as_deref().unwrap_or("-"));
        let _ = writeln!(out, "    evidence: {}", a.evidence);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use crate::app::error_chain;

    #[test]
    fn a_cause_the_message_already_shows_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("{path}: {source}")]
        struct Io {
            path: String,
            source: std::io::Error,
        }
        let io = Io {
            path: "/srv/tradefeed.db.lock".into(),
            source: std::io::Error::from_raw_os_error(30),
        };
        let e = anyhow::Error::new(io).context("opening the database");
        assert_eq!(
            error_chain(&e),
            "opening the database: /srv/tradefeed.db.lock: Read-only file system (os error 30)"
        );
        let plain = anyhow::anyhow!("inner").context("middle").context("outer");
        assert_eq!(error_chain(&plain), "outer: middle: inner");
    }

    use super::{FetchPassResult, write_fetch_summary, write_sources_table};
    use crate::ingest::PollReport;
    use unicode_width::UnicodeWidthStr;

    /// 55 characters: longer than the old fixed columns, within [`super::MAX_NAME_COLUMN`].
    const LONG: &str = "Federal Register: Office of the US Trade Representative";

    /// A successful poll of `source` with `items` items, `skipped` of them not taken in.
    fn polled(source: &str, items: usize, skipped: usize) -> FetchPassResult {
        let mut report = PollReport::failed(source, "ok", String::new(), chrono::Utc::now());
        report.error = None;
        report.items = items;
        report.skipped = skipped;
        report.new_entries = items - skipped;
        FetchPassResult::Polled(report)
    }

    /// Where each whitespace-separated field of `line` after the name starts.
    fn field_starts(line: &str, name: &str) -> Vec<usize> {
        let rest = &line[name.len()..];
        let mut starts = Vec::new();
        let mut prev_space = false;
        for (i, c) in rest.char_indices() {
            if !c.is_whitespace() && prev_space {
                starts.push(name.len() + i);
            }
            prev_space = c.is_whitespace();
        }
        starts
    }

    #[test]
    fn fetch_counts_skipped_items_per_source_and_in_the_summary() {
        let results = [
            polled("WTO", 10, 3),
            polled("Reuters", 5, 0),
            polled("BBC", 7, 2),
        ];
        let mut out = Vec::new();
        let failed =
            write_fetch_summary(&mut out, &results, std::time::Duration::from_millis(1500));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(failed, 0);
        assert!(lines[0].starts_with("WTO "), "{text}");
        assert!(lines[0].ends_with("ms skipped=3"), "{text}");
        assert!(
            lines[1].ends_with("ms"),
            "nothing skipped, nothing added: {text}"
        );
        assert!(lines[2].ends_with("ms skipped=2"), "{text}");
        // The fields scripts read stay as they were, in order; the total comes last.
        assert_eq!(
            lines[3],
            "3 sources, 0 failed, 0 not modified, 22 items, 17 new entries in 1.50s, 5 skipped items"
        );
        // `benches/acceptance.sh` takes the last number before " items" as the item count.
        let counts: Vec<&str> = lines[3]
            .match_indices(" items")
            .filter(|(at, _)| lines[3][..*at].ends_with(|c: char| c.is_ascii_digit()))
            .map(|(at, _)| lines[3][..at].rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(counts, ["22"]);
    }

    #[test]
    fn a_stopped_source_is_a_failure_named_with_its_remedy_and_a_retry_after_wait_is_not() {
        let results = [
            polled("WTO", 1, 0),
            FetchPassResult::Skipped {
                source: "Busy".into(),
                reason: "server asked not to be polled before 2026-11-30 12:00:00 UTC".into(),
            },
        ];
        let mut out = Vec::new();
        let failed = write_fetch_summary(&mut out, &results, std::time::Duration::ZERO);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(failed, 0, "waiting is no failure: {text}");
        assert!(text.contains("2 sources, 0 failed,"), "{text}");

        let gone = "410 Gone at 2026-11-30 10:00 UTC: the publisher removed this feed";
        let results = [
            polled("WTO", 1, 0),
            FetchPassResult::Stopped {
                source: "Gone".into(),
                reason: gone.into(),
            },
        ];
        let mut out = Vec::new();
        let failed = write_fetch_summary(&mut out, &results, std::time::Duration::ZERO);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(failed, 1, "{text}");
        assert_eq!(
            lines[1],
            format!(
                "{} FAILED stopped: {gone}; {}",
                super::Padded("Gone", 28),
                super::STOPPED_REMEDY
            ),
            "{text}"
        );
        assert!(lines[2].starts_with("2 sources, 1 failed, "), "{text}");
    }

    #[test]
    fn fetch_lines_line_up_with_a_source_name_longer_than_28_characters() {
        let results = [polled("WTO", 10, 0), polled(LONG, 5, 0)];
        let mut out = Vec::new();
        write_fetch_summary(&mut out, &results, std::time::Duration::ZERO);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].starts_with(LONG),
            "the name is printed whole: {text}"
        );
        assert_eq!(
            field_starts(lines[0], "WTO"),
            field_starts(lines[1], LONG),
            "{text}"
        );
        // Past the bound, a name is still printed whole, never cut.
        let longest = format!("{LONG} and the Bureau of Industry and Security");
        let mut out = Vec::new();
        write_fetch_summary(
            &mut out,
            &[polled(&longest, 1, 0)],
            std::time::Duration::ZERO,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&format!("{longest} ok ")), "{text}");
    }

    /// Where each field of `line` after `name` starts, in terminal columns.
    fn field_columns(line: &str, name: &str) -> Vec<usize> {
        field_starts(line, name)
            .into_iter()
            .map(|at| line[..at].width())
            .collect()
    }

    #[test]
    fn names_are_padded_by_terminal_columns_and_never_cut() {
        // 12 columns in 6 chars; 10 in 9 (the emoji takes two); 17 in 18 (a combining
        // accent takes none); and one wider than the widest column, in CJK.
        let names = [
            "日本経済新聞",
            "📈 Markets",
            "Le Monde E\u{301}conomie",
            "WTO",
        ];
        for (name, width) in names.iter().zip([12, 10, 17, 3]) {
            assert_eq!(
                super::Padded(name, 20).to_string(),
                format!("{name}{}", " ".repeat(20 - width))
            );
            assert_eq!(super::Padded(name, 2).to_string(), *name, "written whole");
        }
        let results: Vec<_> = names.iter().map(|n| polled(n, 1, 0)).collect();
        let mut out = Vec::new();
        write_fetch_summary(&mut out, &results, std::time::Duration::ZERO);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (line, name) in lines.iter().zip(names) {
            assert!(line.starts_with(name), "{text}");
            assert_eq!(
                field_columns(line, name),
                field_columns(lines[3], "WTO"),
                "{text}"
            );
        }
        // The column is as wide as the widest name in columns, not in chars.
        let wide = "日本経済新聞・国際貿易ニュース速報版";
        assert_eq!(super::name_column_width([wide, "WTO"].into_iter(), 28), 36);
        let mut out = Vec::new();
        write_fetch_summary(
            &mut out,
            &[polled(wide, 1, 0), polled("WTO", 1, 0)],
            std::time::Duration::ZERO,
        );
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            field_columns(lines[0], wide),
            field_columns(lines[1], "WTO"),
            "{text}"
        );
        assert_eq!(field_columns(lines[0], wide)[0], 37, "{text}");
    }

    /// An hourly source named `name`, polled from `url`, as the config would give it.
    fn hourly_source(name: &str, url: String) -> crate::domain::Source {
        crate::domain::Source {
            name: name.into(),
            url,
            schedule: crate::domain::Schedule::parse("@hourly").unwrap(),
            enabled: true,
            tags: Vec::new(),
            priority: 0,
            cluster: true,
            allow_private_redirects: false,
        }
    }

    #[test]
    fn stored_errors_are_printed_on_one_line_without_escape_sequences_or_passwords() {
        let source = hourly_source("Hostile", "https://hostile.example/feed".into());
        // As an earlier release stored them.
        let state = crate::store::SourceState {
            name: "Hostile".into(),
            url: source.url.clone(),
            schedule: "@hourly".into(),
            in_config: true,
            enabled: true,
            disabled_reason: Some("gone\u{1b}]0;PWNED\u{7}".into()),
            etag: None,
            last_modified: None,
            next_due: None,
            retry_not_before: None,
            consecutive_failures: 1,
            last_attempt: None,
            last_outcome: Some("parse".into()),
            last_error: Some("expected </item>, but </itx\nWTO ok> was found".into()),
            last_success: None,
            last_new_entry: None,
            moved_to: Some("http://u:secret@new.example/feed".into()),
            entries: 0,
        };
        let mut out = Vec::new();
        write_sources_table(&mut out, &[source], &[state]);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("! last error: expected </item>, but </itx\\nWTO ok> was found")
                && text.contains("! gone\\u{1b}]0;PWNED\\u{7}")
                && text.contains("moved permanently to http://new.example/feed"),
            "{text}"
        );
        assert!(!text.lines().any(|l| l.starts_with("WTO")), "{text}");
        assert!(!text.contains(['\u{1b}', '\u{7}']) && !text.contains("secret"));
    }

    #[test]
    fn sources_columns_line_up_with_a_source_name_longer_than_24_characters() {
        let source =
            |name: &str| hourly_source(name, format!("https://{}.example/feed", name.len()));
        let mut out = Vec::new();
        write_sources_table(&mut out, &[source("WTO"), source(LONG)], &[]);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[2].starts_with(LONG),
            "the name is printed whole: {text}"
        );
        let heading = field_starts(lines[0], "NAME");
        // The heading's "LAST SUCCESS" and "NEXT DUE" are two words each; "never polled" too.
        assert_eq!(
            field_starts(lines[1], "WTO"),
            field_starts(lines[2], LONG),
            "{text}"
        );
        assert_eq!(
            heading[0],
            field_starts(lines[1], "WTO")[0],
            "STATUS: {text}"
        );
        assert_eq!(
            lines[0].find("URL").unwrap(),
            lines[2].find("https://").unwrap(),
            "{text}"
        );
    }
}
