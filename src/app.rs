//! Wiring and lifecycle: opens the store, builds the stages, runs the HTTP server, the scheduler
//! and the pollers, and shuts them down in order (HTTP → scheduler → in-flight polls → store).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::classify::Classifier;
use crate::cluster::ClusterConfig;
use crate::config::Config;
use crate::fetch::{FetchLimits, Fetcher};
use crate::http::{self, HttpState, Site};
use crate::ingest::{IngestSettings, Ingestor, PollReport, SharedClassifier};
use crate::reload::{ConfigWatcher, ReloadSignal};
use crate::scheduler;
use crate::store::{Access, PollBlocker, PollTarget, Store};

/// How long in-flight polls may run on after a shutdown request before they are cancelled.
const POLL_DRAIN: Duration = Duration::from_secs(4);
/// How long open HTTP connections may take to finish after a shutdown request.
const HTTP_DRAIN: Duration = Duration::from_secs(3);
/// How soon a valid config the database could not record is tried again (one write).
const RELOAD_RETRY: Duration = Duration::from_secs(10);
/// Longest a `[server] listen` move waits for the old serve loop to close its listener (it
/// does so as soon as it runs; this only bounds a reload against a runtime gone wrong).
const LISTENER_CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Days of the fetch log (one line per poll) kept when the retention keeps more, or is off.
pub const FETCH_LOG_DAYS: i64 = 30;

/// How often the pruner applies the retention (besides at once after a reload changes it).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Stories re-scored per store round trip.
const RESCORE_BATCH: usize = 500;

/// The fetch limits a config asks for.
pub fn fetch_limits(config: &Config) -> FetchLimits {
    let p = &config.polling;
    FetchLimits {
        connect_timeout: p.connect_timeout,
        total_timeout: p.timeout,
        max_body_bytes: p.max_body_bytes,
        max_redirects: p.max_redirects,
        user_agent: p.user_agent.clone(),
        per_host_concurrency: p.per_host_concurrency,
        per_host_spacing: p.per_host_spacing,
    }
}

/// The orchestrator settings a config asks for.
pub fn ingest_settings(config: &Config) -> IngestSettings {
    let p = &config.polling;
    IngestSettings {
        max_items_per_poll: p.max_items_per_poll,
        max_jitter: p.max_jitter,
        backoff_base: p.backoff_base,
        backoff_cap: p.backoff_cap,
        retention: config
            .storage
            .retention_days
            .map(|d| chrono::Duration::days(i64::from(d))),
        cluster: ClusterConfig {
            window: chrono::Duration::days(i64::from(config.cluster.window_days)),
        },
    }
}

/// The rules due times follow under a config.
pub fn timing(config: &Config) -> scheduler::Timing {
    ingest_settings(config).timing()
}

/// Records the config's sources in the store. A source whose schedule changed is next due by
/// its new schedule after its last poll, or after the backoff that poll's failure began (the
/// same arithmetic as after a poll; a Retry-After is kept apart and still holds); a changed
/// `max_jitter_secs` moves every due time to its new offset in the same slot.
pub async fn sync_sources(store: &Store, config: &Config) -> Result<(), crate::store::StoreError> {
    let max_jitter = config.polling.max_jitter;
    let timing = timing(config);
    // First, while the stored schedules are still those the due times were worked out by.
    scheduler::rejitter_due_times(store, max_jitter).await?;
    store
        .sync_sources(&config.sources, move |source, last_attempt, failures| {
            let after = if failures == 0 {
                last_attempt
            } else {
                scheduler::failure_earliest(&source.name, last_attempt, failures, None, &timing)
            };
            scheduler::next_due(&source.schedule, &source.name, after, max_jitter)
        })
        .await
}

/// An error with its causes, each once: `a: b: c`. Error types here often print their cause
/// in their own message too (`{path}: cannot read config: {source}`), which `{:#}` then
/// repeated (`...: No such file or directory (os error 2): No such file or directory (os
/// error 2)`); a cause whose text ends the message so far is left out.
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if message.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// Loads the topic profiles the config names (the built-in topic when there are none).
pub fn load_classifier(config: &Config) -> anyhow::Result<Classifier> {
    load_topics(&config.topics_dir)
}

/// [`load_classifier`] from the topics folder alone.
fn load_topics(topics_dir: &std::path::Path) -> anyhow::Result<Classifier> {
    if topics_dir.is_dir() {
        Classifier::load(topics_dir)
            .with_context(|| format!("loading topic profiles from {}", topics_dir.display()))
    } else {
        // Not an error (the built-in topic is made for this), but a misspelt `[topics] dir`
        // would otherwise change what is matched without a word.
        info!(
            folder = %topics_dir.display(),
            "no topic profiles folder; the built-in trade-policy topic applies"
        );
        Ok(Classifier::builtin())
    }
}

/// A warning when the topics folder has profiles and none of them is the default topic: the
/// built-in `trade-policy` applies only with no profiles at all, so adding one custom profile
/// takes `/feeds/trade-policy.*` away (they answer 404), which a subscriber notices before the
/// operator does. `None` when the topic is there.
pub fn missing_default_topic(
    topics_dir: &std::path::Path,
    classifier: &Classifier,
) -> Option<String> {
    use crate::classify::DEFAULT_TOPIC;
    if classifier.topic_names().iter().any(|t| t == DEFAULT_TOPIC) {
        return None;
    }
    Some(format!(
        "topics folder {} has profiles and none named {DEFAULT_TOPIC}: \
         /feeds/{DEFAULT_TOPIC}.* will answer 404 (add a {DEFAULT_TOPIC} profile to keep them)",
        topics_dir.display()
    ))
}

/// One line per URL (compared as `import-opml` compares them) that more than one source
/// names, in config order. Legal (two names for one feed), but usually a mistake, and the feed
/// is then polled once for each. One of [`config_warnings`].
pub fn same_url_warnings(sources: &[crate::domain::Source]) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for source in sources {
        let key = crate::opml::comparable_url(&source.url);
        match index.get(&key) {
            Some(&i) => groups[i].1.push(&source.name),
            None => {
                index.insert(key, groups.len());
                groups.push((&source.url, vec![&source.name]));
            }
        }
    }
    groups
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(url, names)| {
            format!(
                "sources {} have the same URL {}: it is polled once for each",
                names.join(", "),
                crate::domain::url_for_display(url)
            )
        })
        .collect()
}

/// Every warning about a config that loads, in the order given: what the file holds that was
/// read other than as written ([`Config::warnings`]), a missing default topic
/// ([`missing_default_topic`]), sources that share a URL ([`same_url_warnings`]). `check`
/// prints them and start-up and reload log them ([`log_config_warnings`]), all through this
/// one list so that none of the three forgets one.
pub fn config_warnings(config: &Config, classifier: &Classifier) -> Vec<String> {
    let mut warnings = config.warnings.clone();
    warnings.extend(missing_default_topic(&config.topics_dir, classifier));
    warnings.extend(same_url_warnings(&config.sources));
    warnings
}

/// Logs [`config_warnings`], one line each.
fn log_config_warnings(config: &Config, classifier: &Classifier) {
    for message in config_warnings(config, classifier) {
        warn!("{message}");
    }
}

/// Opens the store for writing (in the blocking pool: it may run an integrity check).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let path = config.storage.path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&path, Access::ReadWrite))
        .await
        .context("opening the database")?
        .context("opening the database")?;
    Ok(store)
}

/// Everything a polling pass needs, ready to run: store synced with the config, classifier
/// loaded and stored scores current.
pub struct Pipeline {
    /// The database.
    pub store: Store,
    /// The classifier in force.
    pub classifier: SharedClassifier,
    /// The orchestrator.
    pub ingestor: Ingestor,
}

impl Pipeline {
    /// Opens the store, syncs sources, loads topics (re-scoring stored stories if they
    /// changed) and rebuilds the near-duplicate index.
    pub async fn start(config: &Config) -> anyhow::Result<Pipeline> {
        // Loading the model and the system's CA roots take a few milliseconds of CPU each:
        // done beside opening the database, a short `fetch` pass starts sooner.
        let topics_dir = config.topics_dir.clone();
        let classifier = tokio::task::spawn_blocking(move || load_topics(&topics_dir));
        let limits = fetch_limits(config);
        let fetcher = tokio::task::spawn_blocking(move || Fetcher::new(limits));
        let store = open_store(config).await;
        let classifier = match classifier.await.context("loading topic profiles")? {
            Ok(classifier) => classifier,
            Err(e) => {
                // A start refused for its profiles leaves nothing the open made behind (a
                // broken config makes nothing: it is read before anything opens). The files
                // are removed once the store has closed them.
                if let Ok(store) = store {
                    let made = store.made_by_open();
                    store.close().await;
                    // The open was logged (created, migrated): say it is undone.
                    let announce = made.made_the_database(&config.storage.path);
                    made.remove();
                    if announce && !config.storage.path.exists() {
                        info!(
                            path = %config.storage.path.display(),
                            "database removed again: this start was refused for its topic profiles"
                        );
                    }
                }
                return Err(e);
            }
        };
        log_config_warnings(config, &classifier);
        let store = store?;
        sync_sources(&store, config)
            .await
            .context("recording the configured sources")?;
        // Before anything reads the due times: a clock that went back while the daemon was
        // down (or before it started) left some too far ahead to be waited for. Not a reason
        // to refuse to start: `run`'s scheduler checks again at its first look, and until a
        // check succeeds; `fetch` polls its sources whatever their due times (a Retry-After
        // left too far ahead still holds one back, as it would have without the check).
        if let Err(e) =
            scheduler::settle_due_times(&store, &config.sources, &timing(config), Utc::now()).await
        {
            warn!(error = %e, "cannot check the stored due times against the clock; going on with them as stored");
        }
        // Start-up does this work before anything else runs, and to the end: the token is
        // never cancelled (a daemon's reloads run it again in the background, see `sweep`).
        let whole = CancellationToken::new();
        let classifier = Arc::new(classifier);
        rescore_if_changed(&store, &classifier, &whole).await?;
        repick_if_priorities_changed(&store, &classifier, &whole).await?;
        let classifier: SharedClassifier = Arc::new(RwLock::new(classifier));
        let fetcher = fetcher
            .await
            .context("building the HTTP client")?
            .context("building the HTTP client")?;
        let ingestor = Ingestor::new(
            store.clone(),
            fetcher,
            Arc::clone(&classifier),
            ingest_settings(config),
        )
        .await
        .context("rebuilding the near-duplicate index")?;
        Ok(Pipeline {
            store,
            classifier,
            ingestor,
        })
    }
}

/// How work over every stored story, done in batches, ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep<T> {
    /// Every story was looked at; what the work reports.
    Done(T),
    /// Stopped between two batches because its cancellation token fired (shutdown). What it
    /// records once done is left unrecorded, so the next start or reload does it again.
    Stopped,
}

/// Re-scores every stored story when the topic profiles differ from those that scored them.
/// The profiles' fingerprint is recorded (meta `classifier`) only once every story was
/// re-scored: stopped by `cancel`, or with stories that polls kept changing while they were
/// scored (see [`rescore_all`]), the next start or reload re-scores again.
pub async fn rescore_if_changed(
    store: &Store,
    classifier: &Arc<Classifier>,
    cancel: &CancellationToken,
) -> anyhow::Result<Sweep<()>> {
    let fingerprint = classifier.fingerprint();
    if store.meta("classifier").await?.as_deref() == Some(fingerprint.as_str()) {
        return Ok(Sweep::Done(()));
    }
    // A poll the writer was writing when the classifier was replaced may hold scores of the
    // old profiles: it is written before the stories are read (polls written after it score
    // with the new ones, see `ingest::ClusterHook`).
    store.finish_writes_in_hand().await?;
    let Sweep::Done(rescored) = rescore_all(store, classifier, cancel).await? else {
        return Ok(Sweep::Stopped);
    };
    if rescored.left > 0 {
        warn!(
            stories = rescored.left,
            "stories changed by polls while they were re-scored; \
             re-scored again at the next start or reload"
        );
        return Ok(Sweep::Done(()));
    }
    store.set_meta("classifier", &fingerprint).await?;
    info!(
        stories = rescored.stories,
        "topic profiles changed; stored stories re-scored"
    );
    Ok(Sweep::Done(()))
}

/// When a source's priority changed since the stored stories' representatives were chosen
/// (at ingest, each copy is weighed against the representative as it arrives), makes the
/// stories that a copy of higher priority now outranks be represented by it: their title,
/// link, text and authors, and their topic scores. Stories whose representative still has
/// the highest priority among their copies keep it. Returns how many changed; stopped by
/// `cancel` (between batches), the priorities are left unrecorded (meta `priorities`) and the
/// next start or reload looks again.
pub async fn repick_if_priorities_changed(
    store: &Store,
    classifier: &Arc<Classifier>,
    cancel: &CancellationToken,
) -> anyhow::Result<Sweep<usize>> {
    let priorities = store.priorities().await?;
    if store.meta("priorities").await?.as_deref() == Some(priorities.as_str()) {
        return Ok(Sweep::Done(0));
    }
    let mut changed = 0;
    // A pick is not applied when a poll changed the story or the chosen copy after the pick
    // read them (see `Store::represent_again`); the story is then read again by the next
    // pass, which finds it still outranked (the poll weighed its copy against the
    // representative only) or no longer.
    for pass in 1..=REPICK_PASSES {
        let Sweep::Done((applied, skipped)) = repick_outranked(store, classifier, cancel).await?
        else {
            return Ok(Sweep::Stopped);
        };
        changed += applied;
        if skipped == 0 {
            // Recorded only once every story was looked at and none was left outranked: a
            // process stopped halfway, or a pass that polls kept overtaking, looks again at
            // the next start or reload.
            store.set_meta("priorities", &priorities).await?;
            break;
        }
        if pass == REPICK_PASSES {
            warn!(
                stories = skipped,
                "stories changed by polls while their representatives were chosen again; \
                 looked at again at the next start or reload"
            );
        }
    }
    if changed > 0 {
        info!(
            stories = changed,
            "source priorities changed; stories represented by a copy of higher priority"
        );
    }
    Ok(Sweep::Done(changed))
}

/// Passes of [`repick_if_priorities_changed`] (and of [`rescore_all`]) at most, while polls
/// overtake their writes.
const REPICK_PASSES: usize = 3;

/// The work of [`repick_if_priorities_changed`], whatever the stored priorities: how many
/// stories changed, and how many picks were not applied because a poll changed the story or
/// its chosen copy meanwhile. Stopped between batches when `cancel` fires (each batch's picks
/// are applied in one write, so what was applied is whole).
pub async fn repick_outranked(
    store: &Store,
    classifier: &Arc<Classifier>,
    cancel: &CancellationToken,
) -> anyhow::Result<Sweep<(usize, usize)>> {
    let (mut after, mut changed, mut skipped) = (0, 0, 0);
    loop {
        if cancel.is_cancelled() {
            return Ok(Sweep::Stopped);
        }
        let batch = store.outranked_stories(after, RESCORE_BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.story;
        // Reducing HTML to text and scoring a batch is CPU work: off the async threads.
        let classifier = Arc::clone(classifier);
        let picks: Vec<_> = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .filter_map(|outranked| pick_representative(outranked, &classifier))
                .collect()
        })
        .await?;
        let asked = picks.len();
        let applied = store.represent_again(picks).await?;
        changed += applied;
        skipped += asked - applied;
    }
    Ok(Sweep::Done((changed, skipped)))
}

/// The copy to represent an outranked story, with its text and topic scores: the one ingest
/// would have chosen had the priorities always been these. Its candidates are its copies of
/// the highest priority in the order they were stored; the first represents and each later
/// one takes over when the rule ingest weighs a joining copy by says so
/// ([`crate::domain::representative_of`]). Copies of lower priority never take over from one
/// of these, so leaving them out changes nothing.
fn pick_representative(
    outranked: crate::store::Outranked,
    classifier: &Classifier,
) -> Option<crate::store::RepresentativePick> {
    let mut texts: Vec<String> = outranked
        .candidates
        .iter()
        .map(|candidate| {
            // The entry's own text is not stored: it is made again from its stored HTML as
            // ingest made it from the feed's, and it is what the story will carry.
            let mut text = crate::normalize::html_to_text(&candidate.html);
            crate::normalize::truncate_chars(&mut text, crate::normalize::MAX_TEXT_CHARS);
            text
        })
        .collect();
    // Lengths in bytes, not characters: ingest weighs the joining copy's text by `len()` against
    // the byte length the writer reads of the stored text, and a replay by another measure
    // would choose otherwise for texts in scripts of several bytes a character.
    let chosen = crate::domain::representative_of(outranked.candidates.iter().zip(&texts).map(
        |(candidate, text)| crate::domain::CopyWeight {
            priority: candidate.priority,
            text_bytes: text.len(),
            source: candidate.source,
        },
    ))?;
    let text = texts.swap_remove(chosen);
    let candidate = outranked.candidates.into_iter().nth(chosen)?;
    Some(crate::store::RepresentativePick {
        story: outranked.story,
        was: outranked.representative,
        entry: candidate.entry,
        content_hash: candidate.content_hash,
        scores: classifier.score(&candidate.title, &text),
        title: candidate.title,
        link: candidate.link,
        text,
        authors: candidate.authors,
    })
}

/// What [`rescore_all`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rescored {
    /// Stories read and scored (each once, however often it was read again).
    pub stories: usize,
    /// Stories whose scores were still not written after the last pass, because a poll
    /// changed them each time between their read and the write: they keep the scores the
    /// poll gave them. Nonzero, the re-score is not done.
    pub left: usize,
}

/// Re-scores every stored story with `classifier`. Stopped between batches when `cancel`
/// fires (each batch's scores are replaced in one write).
///
/// A poll may change a story (another representative, an edited text) between the batch's
/// read and its write; the story's scores are then not overwritten with those of the text it
/// had (see [`Store::replace_scores`]). Such stories are read and scored again in a further
/// pass, [`REPICK_PASSES`] in all at most; those still changed after the last are counted in
/// [`Rescored::left`].
pub async fn rescore_all(
    store: &Store,
    classifier: &Arc<Classifier>,
    cancel: &CancellationToken,
) -> anyhow::Result<Sweep<Rescored>> {
    let mut after = 0;
    let mut stories = 0;
    let mut changed = Vec::new();
    loop {
        if cancel.is_cancelled() {
            return Ok(Sweep::Stopped);
        }
        let batch = store.stories_for_scoring(after, RESCORE_BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.story;
        stories += batch.len();
        changed.extend(score_and_replace(store, classifier, batch).await?);
    }
    for _ in 1..REPICK_PASSES {
        if changed.is_empty() {
            break;
        }
        let again = std::mem::take(&mut changed);
        for ids in again.chunks(RESCORE_BATCH) {
            if cancel.is_cancelled() {
                return Ok(Sweep::Stopped);
            }
            let batch = store.stories_to_score(ids.to_vec()).await?;
            changed.extend(score_and_replace(store, classifier, batch).await?);
        }
    }
    Ok(Sweep::Done(Rescored {
        stories,
        left: changed.len(),
    }))
}

/// Scores `batch` and writes the scores of the stories a poll has not changed since they
/// were read; returns the others (see [`Store::replace_scores`]).
async fn score_and_replace(
    store: &Store,
    classifier: &Arc<Classifier>,
    batch: Vec<crate::store::StoryToScore>,
) -> anyhow::Result<Vec<crate::domain::StoryId>> {
    // Scoring a batch is CPU work: off the async threads.
    let classifier = Arc::clone(classifier);
    let scores = tokio::task::spawn_blocking(move || {
        batch
            .into_iter()
            .map(|story| {
                let scores = classifier.score(&story.title, &story.text);
                (story, scores)
            })
            .collect()
    })
    .await?;
    Ok(store.replace_scores(scores).await?)
}

/// Brings the stored stories up to date with the classifier and the priorities in force
/// after a reload, one run of [`sweep_once`] at a time, until `cancel` fires. Each change of
/// `requests` (a reload) asks for a run; asks made while one runs are seen as one when it
/// ends, so a burst of reloads makes one run after the running one, with what is in force by
/// then. `cancel` also stops a run between two batches: `run` waits for this task before it
/// closes the store.
async fn sweep(
    store: Store,
    classifier: SharedClassifier,
    mut requests: watch::Receiver<()>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => return,
            asked = requests.changed() => if asked.is_err() { return },
        }
        let classifier = Arc::clone(&classifier.read().expect("classifier lock poisoned"));
        sweep_once(&store, &classifier, &cancel).await;
    }
}

/// One run of [`sweep`]: [`rescore_if_changed`], then [`repick_if_priorities_changed`];
/// counted in the metrics, and logged when it stops or fails. A reload that changed neither
/// the topic profiles nor a priority, nor left such a change unapplied, has nothing to run and
/// counts none.
async fn sweep_once(store: &Store, classifier: &Arc<Classifier>, cancel: &CancellationToken) {
    // A failed check is run anyway: its error is the run's, counted and logged there.
    if let Ok(false) = sweep_needed(store, classifier).await {
        return;
    }
    crate::telemetry::sweep_started();
    let ended = async {
        if rescore_if_changed(store, classifier, cancel)
            .await
            .context("re-scoring after a topic change")?
            == Sweep::Stopped
        {
            return Ok(Sweep::Stopped);
        }
        repick_if_priorities_changed(store, classifier, cancel)
            .await
            .context("choosing representatives after a priority change")
            .map(|sweep| match sweep {
                Sweep::Done(_) => Sweep::Done(()),
                Sweep::Stopped => Sweep::Stopped,
            })
    }
    .await;
    crate::telemetry::sweep_ended(match &ended {
        Ok(Sweep::Done(())) => "done",
        Ok(Sweep::Stopped) => "stopped",
        Err(_) => "failed",
    });
    match ended {
        Ok(Sweep::Done(())) => {}
        Ok(Sweep::Stopped) => {
            info!(
                "re-scoring or choosing representatives stopped by shutdown; done at the next start"
            )
        }
        Err(e) => error!(
            error = error_chain(&e),
            "updating stored stories after a reload failed"
        ),
    }
}

/// Whether the stored scores or representatives are not yet those of `classifier` and the
/// configured priorities: the checks [`rescore_if_changed`] and
/// [`repick_if_priorities_changed`] begin with.
async fn sweep_needed(store: &Store, classifier: &Classifier) -> anyhow::Result<bool> {
    let scored = store.meta("classifier").await?;
    if scored.as_deref() != Some(classifier.fingerprint().as_str()) {
        return Ok(true);
    }
    let picked = store.meta("priorities").await?;
    Ok(picked.as_deref() != Some(store.priorities().await?.as_str()))
}

/// Runs the daemon until `cancel` fires, serving HTTP on `listener`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
    // Live reload: SIGHUP or a change of the config file / topic profiles on disk. Armed
    // before anything starts: the files are stamped before the first poll can run and before
    // the topic profiles are read, so an edit made from here on (while the daemon starts, or
    // once its first poll is under way) is seen as a change; and a SIGHUP during start-up is
    // kept for a reload once started instead of ending the process. (The config file itself
    // was read just before `run`: an edit in that instant is taken up with the next edit.)
    let mut reloads = ReloadSignal::new(ConfigWatcher::new(&config));
    let Pipeline {
        store,
        classifier,
        ingestor,
    } = Pipeline::start(&config).await?;
    let addr = listener.local_addr().ok();
    info!(listen = ?addr, sources = config.sources.len(), database = %store.path().display(), "tradefeed started");

    let http_state = HttpState::new(
        store.clone(),
        Arc::clone(&classifier),
        Site {
            title: config.server.title.clone(),
            base_url: config.server.base_url.clone(),
            config_error: None,
            listen_error: None,
            settings_changes: 0,
        },
    );
    let http_state_site = Arc::clone(&http_state.site);
    crate::telemetry::install();
    let server = HttpServer::start(
        listener,
        addr.unwrap_or(config.server.listen),
        http::router(http_state),
    );

    let site = http_state_site.clone();
    let (sources_tx, sources_rx) = watch::channel(Arc::new(config.sources.clone()));
    let (jobs_tx, mut jobs_rx) = mpsc::channel::<scheduler::Job>(config.polling.concurrency);
    let scheduler_cancel = CancellationToken::new();
    let configured = sources_rx.clone();
    let (timing_tx, timing_rx) = watch::channel(timing(&config));
    let scheduler_task = tokio::spawn(scheduler::run(
        store.clone(),
        sources_rx,
        timing_rx,
        jobs_tx,
        scheduler_cancel.clone(),
    ));

    let polls = TaskTracker::new();
    let poll_cancel = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(config.polling.concurrency));
    let permits_handle = Arc::new(PollPermits {
        semaphore: Arc::clone(&permits),
        size: std::sync::Mutex::new(config.polling.concurrency),
    });
    let dispatcher = {
        let polls = polls.clone();
        let poll_cancel = poll_cancel.clone();
        let ingestor = ingestor.clone();
        let stop = scheduler_cancel.clone();
        tokio::spawn(async move {
            // Shutdown stops the dispatcher with the scheduler, also while it waits for a
            // job or for a free slot: a slot may stay taken for a poll's whole timeout, and
            // jobs still queued must not start polls after the request to stop.
            loop {
                let job = tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    job = jobs_rx.recv() => match job {
                        Some(job) => job,
                        None => break,
                    },
                };
                let permit = tokio::select! {
                    biased;
                    () = stop.cancelled() => break,
                    permit = Arc::clone(&permits).acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                };
                let ingestor = ingestor.clone();
                let cancel = poll_cancel.clone();
                let configured = configured.clone();
                polls.spawn(async move {
                    // The poll gives its place back once its results are queued for the
                    // writer, so the next due source starts while this one is committed.
                    // On shutdown's cancel the poll ends before this task does, so waiting
                    // for the tracker waits for its fetch to be over.
                    // A reload that gives the source another URL, removes it or disables
                    // it cuts this poll off: the usual reason for such an edit is that the
                    // feed hangs, and its slot is then free for the next due source (a new
                    // URL is due at once).
                    let this_poll = cancel.child_token();
                    let mut left = None;
                    let report = {
                        let poll = ingestor.poll(&job.source, None, permit, &this_poll);
                        tokio::pin!(poll);
                        tokio::select! {
                            report = &mut poll => report,
                            why = no_longer_polled(ingestor.store(), configured.clone(), &job.source) => {
                                left = Some(why);
                                this_poll.cancel();
                                poll.await
                            }
                        }
                    };
                    match after_poll(&report, this_poll.is_cancelled(), ingestor.backoff_cap()) {
                        AfterPoll::Cancelled if !cancel.is_cancelled() => match left {
                            Some(Unpolled::NewUrl) | None => info!(
                                source = %job.source.name,
                                "poll of the old URL cut off: a reload gave the source another \
                                 URL, which is polled at once"
                            ),
                            Some(Unpolled::Dropped) => info!(
                                source = %job.source.name,
                                "poll cut off: a reload removed or disabled the source; \
                                 nothing of it is recorded but results already queued"
                            ),
                        },
                        AfterPoll::Cancelled => {
                            warn!(
                                source = %job.source.name,
                                "poll cut off by shutdown; nothing recorded, due as before"
                            );
                        }
                        AfterPoll::HoldBack(wait) => job.defer_for(wait),
                        AfterPoll::Reschedule => {
                            reschedule_if_changed_meanwhile(&ingestor, &job.source, &report)
                                .await;
                        }
                    }
                    drop(job);
                });
            }
        })
    };

    // The retention in force, replaced on reload: the pruner applies a new one at once.
    let (retention_tx, retention_rx) = watch::channel(config.storage.retention_days);
    let pruner = tokio::spawn(prune_by_retention(
        store.clone(),
        retention_rx,
        PRUNE_EVERY,
        scheduler_cancel.clone(),
    ));

    notify_systemd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("serving"),
    ]);
    let watchdog = spawn_watchdog(scheduler_cancel.clone());

    // Re-scoring and re-picking after reloads: one run at a time, stopped at the shutdown
    // request between batches, and waited for before the store closes.
    let (sweep_tx, sweep_rx) = watch::channel(());
    let sweeper = tokio::spawn(sweep(
        store.clone(),
        Arc::clone(&classifier),
        sweep_rx,
        cancel.clone(),
    ));

    let mut live = Live {
        http: server,
        config,
        store: store.clone(),
        classifier: Arc::clone(&classifier),
        ingestor: ingestor.clone(),
        sources: sources_tx,
        timing: timing_tx,
        retention: retention_tx,
        site,
        permits: Arc::clone(&permits_handle),
        sweep: sweep_tx,
    };
    // When a reload the database refused is tried again by itself.
    let mut retry_at: Option<tokio::time::Instant> = None;
    loop {
        let retry = async {
            match retry_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => break,
            () = reloads.next() => {}
            () = retry => {
                info!("trying the reload the database refused again");
            }
        }
        notify_systemd(&[sd_notify::NotifyState::Reloading]);
        retry_at = live
            .reload()
            .await
            .then(|| tokio::time::Instant::now() + RELOAD_RETRY);
        reloads.rearm(&live.config);
        notify_systemd(&[sd_notify::NotifyState::Ready]);
    }
    info!("shutting down");
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    // 1. HTTP: stop accepting (on the listener in use, and on any a reload replaced whose
    // connections are still finishing), give open requests a moment.
    live.http.shutdown(HTTP_DRAIN).await;
    // 2. Scheduler and dispatcher: queue nothing more, start no queued poll.
    scheduler_cancel.cancel();
    let _ = scheduler_task.await;
    let _ = dispatcher.await;
    let _ = pruner.await;
    // 3. In-flight polls: let them finish briefly, then cancel (their writes are atomic).
    polls.close();
    if tokio::time::timeout(POLL_DRAIN, polls.wait())
        .await
        .is_err()
    {
        poll_cancel.cancel();
        polls.wait().await;
    }
    drop(live);
    if let Some(w) = watchdog {
        let _ = w.await;
    }
    // 3b. The reload's re-scoring or re-picking: it stops at the shutdown request, after the
    // batch it is on, whose write then still goes to the store.
    if let Err(e) = sweeper.await {
        error!(error = %e, "the task updating stored stories after reloads failed");
    }
    // 4. Store: finish queued writes, checkpoint.
    store.close().await;
    info!("stopped");
    Ok(())
}

/// What the poll dispatcher does once a poll has ended.
#[derive(Debug, PartialEq, Eq)]
enum AfterPoll {
    /// Shutdown, or a reload that no longer polls the source's URL ([`no_longer_polled`]),
    /// cancelled the poll: nothing more.
    Cancelled,
    /// Hold the source back for this span whatever the database says ([`Job::defer_for`]):
    /// the poll's result was not stored, it crashed, or it was of a URL the database no longer
    /// has. The stored due time does not reflect the poll, and the scheduler would queue the
    /// source again at its next look.
    ///
    /// [`Job::defer_for`]: scheduler::Job::defer_for
    HoldBack(Duration),
    /// The poll stored its due time; correct it if a reload changed the schedule meanwhile
    /// ([`reschedule_if_changed_meanwhile`]).
    Reschedule,
}

/// Why a poll in flight is no longer wanted after a reload ([`no_longer_polled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unpolled {
    /// The stored source the poll would be written to has another URL now.
    NewUrl,
    /// No configured, enabled source would take the poll: its source is removed or disabled
    /// (or renamed onto a URL that several sources now share).
    Dropped,
}

/// Resolves once a reload leaves the poll of `source` without a configured, enabled source to
/// be written to, or gives that source another URL; never otherwise. Asked of the store after
/// a reload that changed the polled source (the reload records the config's sources before it
/// tells the dispatcher), by names and URLs ([`Store::poll_target`]): a source renamed
/// meanwhile, or two sources whose names were swapped, keep their polls, written under the new
/// names. The write itself goes to the row the poll began on, which this cannot know; the two
/// answers differ only when an old URL move and a later swap of names meet, and then a poll
/// this cuts off is polled again at once. Should the store not answer, the poll runs on.
async fn no_longer_polled(
    store: &Store,
    mut configured: watch::Receiver<Arc<Vec<crate::domain::Source>>>,
    source: &crate::domain::Source,
) -> Unpolled {
    loop {
        if configured.changed().await.is_err() {
            return std::future::pending().await;
        }
        // The config still polls the source as it was: the store (which the reload wrote
        // before it told the dispatcher) would say so too.
        let as_polled = configured
            .borrow_and_update()
            .iter()
            .any(|s| s.name == source.name && s.url == source.url && s.enabled);
        if as_polled {
            continue;
        }
        match store.poll_target(&source.name, &source.url).await {
            Ok(target) => {
                if let Some(why) = unpolled(target.as_ref(), &source.url) {
                    return why;
                }
            }
            Err(e) => {
                warn!(source = %source.name, error = %e, "cannot tell whether a reload dropped the source being polled; its poll runs on");
            }
        }
    }
}

/// Whether a poll of `url` that the store would now write to `target` is no longer wanted,
/// and why.
fn unpolled(target: Option<&PollTarget>, url: &str) -> Option<Unpolled> {
    match target {
        Some(t) if t.url != url => Some(Unpolled::NewUrl),
        Some(t) if t.in_config && t.enabled => None,
        _ => Some(Unpolled::Dropped),
    }
}

/// What the dispatcher does after a poll that ended with `report` (`shutting_down`: the
/// poll's cancel has fired: shutdown, or a reload that no longer polls the source's URL). A
/// hold is the span the poll asked for ([`PollReport::defer_for`]), never more than
/// `backoff_cap`, the longest failure backoff.
/// Not worked out from the report's `next_due`: that is a wall-clock time, read when the
/// poll began or ended, and a clock stepped back meanwhile would stretch the hold by the
/// step, with nothing to shorten it until a restart.
fn after_poll(report: &PollReport, shutting_down: bool, backoff_cap: Duration) -> AfterPoll {
    if shutting_down && report.outcome == crate::ingest::CANCELLED {
        return AfterPoll::Cancelled;
    }
    match report.defer_for {
        Some(wait) => AfterPoll::HoldBack(wait.min(backoff_cap)),
        None => AfterPoll::Reschedule,
    }
}

/// Corrects the due time a poll stored when a reload changed its source's schedule while the
/// poll ran. The poll computed it from the schedule it started with, and its write came after
/// the reload's own correction (`sync_sources`), so without this a source moved from a yearly
/// to an every-minute schedule mid-poll would wait for the yearly slot, even across restarts.
/// After a success the next time is the new schedule's next slot; after a failure the
/// backoff's time is kept unless the new schedule reaches past the longest backoff sooner.
/// Only when the write found the stored schedule changed (`report.schedule_moved`, read in
/// its transaction, with the name and schedule of the source it wrote to: a reload may have
/// renamed the source and given it a new schedule in one edit); the common case does nothing.
/// A source whose URL changed meanwhile is left as it is: the store recorded none of the old
/// URL's state on it (`PollRecord::url`), so it stays due at once by its new URL. That holds
/// also when the URL changes after the poll was written: the store sets the time only while
/// the source still has the polled URL. Likewise a reload that changes the schedule again
/// after the poll was written wrote a time by its own schedule, which stands: the store sets
/// the time only while the source still has the schedule it was worked out by.
async fn reschedule_if_changed_meanwhile(
    ingestor: &Ingestor,
    polled: &crate::domain::Source,
    report: &PollReport,
) {
    let Some(moved) = &report.schedule_moved else {
        return;
    };
    // Stored from a config that parsed, so it parses.
    let Ok(schedule) = crate::domain::Schedule::parse(&moved.schedule) else {
        return;
    };
    let target = moved.source.as_str();
    let now = Utc::now();
    // The jitter the store's due times are under: the ingestor takes a reload's new one only
    // after the reload has written the sources, and this poll may have been written between.
    let max_jitter = moved.max_jitter.unwrap_or_else(|| ingestor.max_jitter());
    let due = if report.error.is_none() {
        scheduler::next_due(&schedule, target, now, max_jitter)
    } else {
        let latest = scheduler::saturating_add_std(now, ingestor.backoff_cap());
        report
            .next_due
            .min(scheduler::next_due(&schedule, target, latest, max_jitter))
    };
    match ingestor
        .store()
        .set_next_due(target, &polled.url, schedule.as_str(), due)
        .await
    {
        Ok(true) => {
            info!(source = %target, next_due = %due, "schedule changed during the poll; next due by the new one")
        }
        // A later reload changed its URL (due at once by the new one) or its schedule again
        // (its time worked out by that one): either stands.
        Ok(false) => {}
        Err(e) => {
            error!(source = %target, error = %e, "cannot store the due time by the new schedule")
        }
    }
}

/// Deletes entries first seen longer ago than the retention in force, every `every` and at
/// once when `retention` changes (a reload), until `cancel` fires: [`prune_once`] each time.
/// Also runs the metrics upkeep each time it wakes.
pub async fn prune_by_retention(
    store: Store,
    mut retention: watch::Receiver<Option<u32>>,
    every: Duration,
    cancel: CancellationToken,
) {
    loop {
        crate::telemetry::upkeep();
        // Hourly, whether or not anything asks `/readyz`: logged once when found.
        store.file_in_place();
        let days = *retention.borrow_and_update();
        if !prune_once(&store, days, &cancel).await {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            changed = retention.changed() => if changed.is_err() { return },
            () = cancel.cancelled() => return,
        }
    }
}

/// One prune, as the daemon runs it hourly and `fetch` after its pass: `None` prunes no
/// entries; `Some(days)` prunes entries first seen more than `days` days ago (with their
/// stories, remembering their identities). Whatever the retention, the fetch log keeps
/// [`FETCH_LOG_DAYS`]. Failures are logged (the next prune retries). False when `cancel`
/// fired while the fetch log was being pruned (then the entries are left for next time).
pub async fn prune_once(store: &Store, days: Option<u32>, cancel: &CancellationToken) -> bool {
    // Checked: a retention reaching back before the calendar begins prunes nothing.
    let cutoff = days.map(|days| {
        Utc::now()
            .checked_sub_signed(chrono::Duration::days(i64::from(days)))
            .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC)
    });
    // The fetch log first, in batches, to the later of its own days and the retention, so
    // the retention's transaction below finds no log lines left to delete at once. Stopped
    // between batches at shutdown: a log that grew for a year takes thousands of them.
    let log_cutoff = (Utc::now() - chrono::Duration::days(FETCH_LOG_DAYS))
        .max(cutoff.unwrap_or(chrono::DateTime::<Utc>::MIN_UTC));
    tokio::select! {
        pruned = store.prune_fetch_log(log_cutoff, crate::store::FETCH_LOG_BATCH) => match pruned {
            Ok((0, _)) => {}
            Ok((lines, _)) => info!(lines, "pruned the fetch log"),
            Err(e) => error!(error = %e, "pruning the fetch log failed; will retry"),
        },
        () = cancel.cancelled() => return false,
    }
    if let (Some(days), Some(cutoff)) = (days, cutoff) {
        match store.prune(cutoff).await {
            Ok((entries, stories)) if entries + stories > 0 => {
                info!(
                    entries,
                    stories,
                    retention_days = days,
                    "pruned by retention"
                );
            }
            Ok(_) => {}
            Err(e) => error!(error = %e, "pruning failed; will retry"),
        }
    }
    true
}

/// One polling pass over `sources` (all polled now, due or not, except those the server asked
/// to wait or that were stopped), at most `concurrency` at once. Reports come back in order:
/// a stopped source as [`FetchPassResult::Stopped`] (the operator must act), one asked to wait
/// as [`FetchPassResult::Skipped`] (nothing to do).
pub async fn fetch_once(
    pipeline: &Pipeline,
    sources: Vec<crate::domain::Source>,
    concurrency: usize,
) -> Vec<FetchPassResult> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    // One read each for the whole pass (not one per source): those to leave alone, and the
    // validators and failure counts of the rest. If the states cannot be read, each poll
    // reads its own (and reports the error against its source).
    let (blockers, states) = tokio::join!(
        pipeline.store.poll_blockers(Utc::now()),
        pipeline.store.poll_states()
    );
    let mut blockers: std::collections::HashMap<String, PollBlocker> = blockers
        .map(|b| b.into_iter().collect())
        .unwrap_or_default();
    let mut states = states.ok();
    let mut tasks = Vec::with_capacity(sources.len());
    let mut names = Vec::with_capacity(sources.len());
    let retry = pipeline.ingestor.backoff_base();
    for source in sources {
        names.push(source.name.clone());
        let ingestor = pipeline.ingestor.clone();
        let permits = Arc::clone(&permits);
        let blocker = blockers.remove(&source.name);
        let state = states.as_mut().map(|s| s.remove(&source.name));
        tasks.push(tokio::spawn(async move {
            match blocker {
                Some(PollBlocker::Disabled(reason)) => {
                    return FetchPassResult::Stopped {
                        source: source.name.clone(),
                        reason,
                    };
                }
                Some(PollBlocker::RetryAfter(t)) => {
                    return FetchPassResult::Skipped {
                        source: source.name.clone(),
                        reason: format!(
                            "server asked not to be polled before {}",
                            t.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                    };
                }
                None => {}
            }
            // The poll gives its place back once its results are queued for the writer.
            let slot = permits
                .acquire_owned()
                .await
                .expect("the pass's own semaphore is never closed");
            // A pass is not cancelled: it ends when its polls do.
            FetchPassResult::Polled(
                ingestor
                    .poll(&source, state, slot, &CancellationToken::new())
                    .await,
            )
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for (task, name) in tasks.into_iter().zip(names) {
        match task.await {
            Ok(r) => results.push(r),
            // The poll itself contains its panics (`Ingestor::poll`); this is the pass's own
            // task failing around it. Still a failed source, named in the summary.
            Err(e) => {
                let message = crate::ingest::message_as_shown(&if e.is_panic() {
                    format!(
                        "the poll crashed: {}",
                        crate::ingest::panic_message(e.into_panic())
                    )
                } else {
                    format!("the poll task failed: {e}")
                });
                error!(source = %name, error = %message, "poll task failed");
                results.push(FetchPassResult::Polled(PollReport::failed(
                    &name,
                    crate::ingest::CRASHED,
                    message,
                    crate::scheduler::saturating_add_std(Utc::now(), retry),
                )));
            }
        }
    }
    results
}

/// One line of a `fetch` pass.
#[derive(Debug)]
pub enum FetchPassResult {
    /// The source was polled.
    Polled(PollReport),
    /// The source was left alone because the server asked to wait (`Retry-After`): not a
    /// failure, it is polled again once the time has passed.
    Skipped {
        /// Source name.
        source: String,
        /// Why.
        reason: String,
    },
    /// The source was left alone because the store has stopped it (a `410 Gone`): a failure
    /// of the pass, as it is never polled again until its URL changes in the config.
    Stopped {
        /// Source name.
        source: String,
        /// Why it was stopped, as recorded.
        reason: String,
    },
}

/// The poll concurrency limit, resizable on reload.
struct PollPermits {
    semaphore: Arc<Semaphore>,
    size: std::sync::Mutex<usize>,
}

impl PollPermits {
    fn resize(&self, wanted: usize) {
        let mut size = self.size.lock().expect("permits lock poisoned");
        if wanted > *size {
            self.semaphore.add_permits(wanted - *size);
        } else if wanted < *size {
            // Permits held by running polls are taken back as they give them back (once their
            // writes are queued).
            let semaphore = Arc::clone(&self.semaphore);
            let surplus = (*size - wanted) as u32;
            tokio::spawn(async move {
                if let Ok(p) = semaphore.acquire_many(surplus).await {
                    p.forget();
                }
            });
        }
        *size = wanted;
    }
}

/// The HTTP server: the listener it accepts on, which a reload that changes `[server] listen`
/// replaces ([`HttpServer::rebind`]), and the serve loops of replaced listeners whose
/// connections are still finishing. Shutdown stops them all ([`HttpServer::shutdown`]).
struct HttpServer {
    router: axum::Router,
    /// The limits each serve loop serves with.
    limits: http::ServeLimits,
    /// The connections every serve loop draws on: one cap across the listener in use and the
    /// replaced ones still finishing, not one each (a move would double it while they drain).
    slots: http::ConnectionSlots,
    /// The address accepted on now: what a reload's `[server] listen` is compared with (the
    /// previous config's may name another that could not be bound).
    addr: std::net::SocketAddr,
    /// Stops the current listener's serve loop (a child of `all`).
    current: CancellationToken,
    /// Fires once the current listener's serve loop has closed its listener.
    current_closed: CancellationToken,
    /// Stops every serve loop: shutdown.
    all: CancellationToken,
    /// Every serve loop started, to wait for at shutdown.
    loops: TaskTracker,
}

impl HttpServer {
    /// Serves `router` on `listener`, bound to `addr`, with the daemon's limits.
    fn start(listener: TcpListener, addr: std::net::SocketAddr, router: axum::Router) -> Self {
        let limits = http::ServeLimits::with_header_read_timeout(http::HEADER_READ_TIMEOUT);
        HttpServer::start_limited(listener, addr, router, limits)
    }

    /// [`HttpServer::start`] with `limits`: `max_connections` is the cap of all its serve
    /// loops together.
    fn start_limited(
        listener: TcpListener,
        addr: std::net::SocketAddr,
        router: axum::Router,
        limits: http::ServeLimits,
    ) -> Self {
        let all = CancellationToken::new();
        let mut server = HttpServer {
            router,
            limits,
            slots: http::ConnectionSlots::new(limits.max_connections),
            addr,
            current: all.child_token(),
            current_closed: CancellationToken::new(),
            all,
            loops: TaskTracker::new(),
        };
        server.current_closed = server.spawn(listener, server.current.clone());
        server
    }

    /// Runs a serve loop on `listener` until `stop` fires, then lets its open connections
    /// finish (see [`http::serve_shared`]), within the server's one connection budget. A panic
    /// in it is logged, not propagated. Returns a token that fires once the loop has closed
    /// `listener` (or ended otherwise).
    fn spawn(&self, listener: TcpListener, stop: CancellationToken) -> CancellationToken {
        let closed = CancellationToken::new();
        let closing = closed.clone().drop_guard();
        let serving = tokio::spawn(http::serve_shared(
            listener,
            self.router.clone(),
            self.limits,
            self.slots.clone(),
            stop.cancelled_owned(),
            move || drop(closing),
        ));
        self.loops.spawn(async move {
            if let Err(e) = serving.await {
                error!(error = %e, "HTTP server task failed");
            }
        });
        closed
    }

    /// Moves the server to `wanted`, as nginx and Caddy do on reload: binds it first and, once
    /// bound, serves on it and closes the old listener, whose requests in flight still finish.
    /// Returns once the old listener is closed, so that a move straight back to the address
    /// left binds it (the old loop closed it only when it next ran: a move back before then
    /// found the address taken, by this daemon). When the bind fails (the port taken, no
    /// permission) nothing changes: the old listener keeps serving. Returns the address left,
    /// or the bind's error.
    async fn rebind(
        &mut self,
        wanted: std::net::SocketAddr,
    ) -> std::io::Result<std::net::SocketAddr> {
        let listener = TcpListener::bind(wanted).await?;
        let bound = listener.local_addr()?;
        let stop = self.all.child_token();
        let closed = self.spawn(listener, stop.clone());
        // Only once the new listener is bound and served: no moment without one.
        std::mem::replace(&mut self.current, stop).cancel();
        let old_closed = std::mem::replace(&mut self.current_closed, closed);
        // The loop stops accepting at its next wake-up, before its connections drain: this
        // waits for a task to be scheduled, not for any client.
        if tokio::time::timeout(LISTENER_CLOSE_WAIT, old_closed.cancelled())
            .await
            .is_err()
        {
            warn!(
                previous = %self.addr,
                "the old HTTP listener was not closed in time after a [server] listen move"
            );
        }
        Ok(std::mem::replace(&mut self.addr, bound))
    }

    /// Stops accepting on every listener and waits up to `drain` for the open connections.
    async fn shutdown(&self, drain: Duration) {
        self.all.cancel();
        self.loops.close();
        if tokio::time::timeout(drain, self.loops.wait())
            .await
            .is_err()
        {
            warn!("HTTP connections still open after the drain time; closing");
        }
    }
}

/// What a reload can change while the daemon runs.
struct Live {
    config: Config,
    /// The HTTP server, moved when a reload changes `[server] listen`.
    http: HttpServer,
    store: Store,
    classifier: SharedClassifier,
    ingestor: Ingestor,
    sources: watch::Sender<Arc<Vec<crate::domain::Source>>>,
    /// The timing rules in force, read by the scheduler.
    timing: watch::Sender<scheduler::Timing>,
    /// `[storage] retention_days` in force, read by the pruner.
    retention: watch::Sender<Option<u32>>,
    site: Arc<RwLock<Site>>,
    permits: Arc<PollPermits>,
    /// Asks the [`sweep`] task to bring stored stories up to date with what is in force.
    sweep: watch::Sender<()>,
}

impl Live {
    /// A reload that applies nothing: logged, shown on the status page and in the metrics,
    /// whatever the step that failed.
    fn refuse(&self, message: String) {
        error!(error = %message, "config reload failed; still running on the previous config");
        self.site.write().expect("site lock poisoned").config_error = Some(message);
        crate::telemetry::record_reload(false);
    }

    /// Moves HTTP to the `[server] listen` a reload asks for ([`HttpServer::rebind`]). A
    /// failed bind is logged with both addresses and its cause and the old address kept: the
    /// rest of the reload still applies (the daemon is fine, only unreachable where the config
    /// now says). Returns that failure for the status page.
    async fn move_http(&mut self, wanted: std::net::SocketAddr) -> Option<String> {
        match self.http.rebind(wanted).await {
            Ok(previous) => {
                info!(
                    listen = %self.http.addr,
                    previous = %previous,
                    "[server] listen changed: serving HTTP on the new address; the old one takes no new connections"
                );
                None
            }
            Err(e) => {
                error!(
                    listen = %wanted,
                    in_use = %self.http.addr,
                    error = %e,
                    "cannot bind the new [server] listen; still serving HTTP on the old address (tried again at the next reload)"
                );
                Some(format!(
                    "cannot bind [server] listen = {wanted} ({e}); still serving HTTP on {} \
                     (tried again at the next reload)",
                    self.http.addr
                ))
            }
        }
    }

    /// Re-reads the config and topic profiles; applies them all, or nothing (a new
    /// `[server] listen` that cannot be bound excepted: see [`Live::move_http`]). Returns
    /// whether to try again by itself: a valid config the database could not record (locked
    /// by another program, a full disk) is no fault of the file, and waiting for its next
    /// edit left the daemon on the old config after the database was free again.
    async fn reload(&mut self) -> bool {
        let path = self.config.path.clone();
        // An empty file (a save caught half-way) is refused by `Config::load`.
        let loaded = Config::load_with_env(&path)
            .map_err(anyhow::Error::from)
            .and_then(|c| load_classifier(&c).map(|k| (c, k)));
        let (new, classifier) = match loaded {
            Ok(pair) => pair,
            Err(e) => {
                self.refuse(error_chain(&e));
                return false;
            }
        };
        log_config_warnings(&new, &classifier);
        if new.storage.path != self.store.path() {
            warn!(path = %new.storage.path.display(), in_use = %self.store.path().display(), "[storage] path changes only on restart");
        }
        let fetcher = match Fetcher::new(fetch_limits(&new)) {
            Ok(f) => f,
            Err(e) => {
                self.refuse(format!("cannot build the HTTP client: {e:#}"));
                return false;
            }
        };
        if let Err(e) = sync_sources(&self.store, &new).await {
            self.refuse(format!(
                "cannot record the sources in the database (tried again in {} s and at the \
                 next change): {e:#}",
                RELOAD_RETRY.as_secs()
            ));
            return true;
        }
        // Compared with what is in use, not with the previous config: a move that failed is
        // tried again at the next reload, and one asked for and then undone is no change.
        let listen_error = if listens_on(self.http.addr, new.server.listen) {
            None
        } else {
            self.move_http(new.server.listen).await
        };
        crate::telemetry::record_listen_bind(listen_error.is_some());
        self.ingestor.reconfigure(fetcher, ingest_settings(&new));
        self.permits.resize(new.polling.concurrency);
        {
            let mut site = self.site.write().expect("site lock poisoned");
            if site.title != new.server.title || site.base_url != new.server.base_url {
                site.settings_changes += 1;
            }
            site.title = new.server.title.clone();
            site.base_url = new.server.base_url.clone();
            site.config_error = None;
            site.listen_error = listen_error;
        }
        let changed_topics = classifier.fingerprint()
            != self
                .classifier
                .read()
                .expect("classifier lock poisoned")
                .fingerprint();
        if changed_topics {
            *self.classifier.write().expect("classifier lock poisoned") = Arc::new(classifier);
        }
        // Off the reload's path (both read every stored story when they have work), and one
        // run at a time: the sweep task takes the classifier in force when it starts.
        self.sweep.send_replace(());
        let _ = self.sources.send(Arc::new(new.sources.clone()));
        self.timing.send_replace(timing(&new));
        self.retention.send_if_modified(|days| {
            let changed = *days != new.storage.retention_days;
            *days = new.storage.retention_days;
            changed
        });
        info!(
            sources = new.sources.len(),
            topics_changed = changed_topics,
            "config reloaded"
        );
        crate::telemetry::record_reload(true);
        self.config = new;
        false
    }
}

/// Whether a server listening on `bound` serves what `[server] listen = wanted` asks for: the
/// same address and port, port 0 (any free port) matching whichever was given.
fn listens_on(bound: std::net::SocketAddr, wanted: std::net::SocketAddr) -> bool {
    bound.ip() == wanted.ip() && (wanted.port() == 0 || wanted.port() == bound.port())
}

/// Tells systemd (when run under it with `Type=notify`) about a state change; a no-op elsewhere.
fn notify_systemd(states: &[sd_notify::NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        warn!(error = %e, "could not notify systemd");
    }
}

/// Pings the systemd watchdog at half its interval, when `WatchdogSec` is set.
fn spawn_watchdog(cancel: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()? / 2;
    Some(tokio::spawn(async move {
        loop {
            notify_systemd(&[sd_notify::NotifyState::Watchdog]);
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                () = cancel.cancelled() => return,
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Entry, Schedule, Source};
    use crate::store::{EntryWrite, PollOutcome, PollRecord};

    /// Stores one new entry of `source` now.
    async fn store_entry(store: &Store, source: &str, identity: &str) {
        store_copy(
            store,
            source,
            identity,
            (
                &format!("Steel duties {identity}"),
                &format!("Text {identity}."),
            ),
            Vec::new(),
        )
        .await;
    }

    /// Stores `source`'s entry `identity` now, with `(title, text)` and topic `scores` as a
    /// poll would: new, or an edit of the entry stored under that identity (its content hash
    /// is made from the title and text).
    async fn store_copy(
        store: &Store,
        source: &str,
        identity: &str,
        (title, text): (&str, &str),
        scores: Vec<crate::domain::TopicScore>,
    ) {
        let now = Utc::now();
        let entry = Entry {
            identity: identity.into(),
            title: title.into(),
            earlier_title: None,
            content_hash_with_dates: String::new(),
            content_hash_with_pixels: None,
            media: Default::default(),
            content_hash_without_media: None,
            relative_urls: false,
            content_hash_exact_white_space: String::new(),
            content_hash_exact_white_space_without_media: None,
            untracked_hash: None,
            link: Some(format!("http://a.example/{identity}")),
            canonical_url: Some(format!("http://a.example/{identity}")),
            authors: Vec::new(),
            published: now,
            updated: now,
            dated: true,
            html: format!("<p>{text}</p>"),
            text: text.into(),
            fingerprint: format!("fp-{identity}"),
            content_hash: format!("4:{identity}:{title}:{text}"),
            base_url: None,
        };
        store
            .record_poll(PollRecord {
                source: source.into(),
                url: "http://a.example/feed".into(),
                source_row: None,
                started_at: now,
                duration: Duration::ZERO,
                outcome: PollOutcome::Fetched {
                    http_status: 200,
                    bytes: 1,
                    etag: None,
                    last_modified: None,
                    listed_pruned: Some(Vec::new()),
                    read_whole: true,
                },
                next_due: now,
                due_jitter: None,
                moved_to: None,
                base_url: None,
                entries: vec![EntryWrite {
                    entry,
                    signature: None,
                    near_matches: Vec::new(),
                    headline: None,
                    scores: Some(scores),
                    replaces_hash: None,
                }],
                listed: Default::default(),
                cluster_window: chrono::Duration::days(7),
            })
            .await
            .unwrap();
    }

    /// A poll begins by a wall clock three days fast; NTP sets it right while the poll runs,
    /// and its result cannot be stored. The due time in its report was worked out by the
    /// fast clock; the dispatcher holds the source back for the backoff the poll asked for,
    /// not for the step as well. A poll that stored its due time is rescheduled if need be,
    /// and one shutdown cancelled is left alone.
    #[test]
    fn the_dispatcher_holds_a_poll_not_stored_across_a_clock_step_back_for_its_backoff_only() {
        let base = Duration::from_secs(60);
        let cap = Duration::from_secs(21_600);
        let fast = Utc::now() + chrono::Duration::days(3);
        let report = PollReport {
            defer_for: Some(base),
            ..PollReport::failed(
                "s",
                "store",
                "database or disk is full".into(),
                scheduler::saturating_add_std(fast, base),
            )
        };
        assert_eq!(after_poll(&report, false, cap), AfterPoll::HoldBack(base));
        // Never longer than the longest backoff, whatever a report asks for.
        let greedy = PollReport {
            defer_for: Some(Duration::from_secs(86_400 * 30)),
            ..report.clone()
        };
        assert_eq!(after_poll(&greedy, false, cap), AfterPoll::HoldBack(cap));
        let stored = PollReport {
            defer_for: None,
            ..report.clone()
        };
        assert_eq!(
            after_poll(&stored, false, cap),
            AfterPoll::Reschedule,
            "its due time is stored"
        );
        // Cancelled: by shutdown, nothing more; otherwise held back like any unstored poll.
        let cancelled = PollReport {
            outcome: crate::ingest::CANCELLED.into(),
            ..report
        };
        assert_eq!(after_poll(&cancelled, true, cap), AfterPoll::Cancelled);
        assert_eq!(
            after_poll(&cancelled, false, cap),
            AfterPoll::HoldBack(base)
        );
    }

    /// A move to another address lets a request in flight on the old listener finish while
    /// that listener refuses new connections; the new one serves; shutdown stops it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_moved_http_server_finishes_the_old_listener_s_request_in_flight() {
        let (entered_tx, mut entered) = mpsc::channel::<()>(1);
        let release = Arc::new(Semaphore::new(0));
        let router = {
            let release = Arc::clone(&release);
            axum::Router::new()
                .route(
                    "/slow",
                    axum::routing::get(move || {
                        let (entered, release) = (entered_tx.clone(), Arc::clone(&release));
                        async move {
                            let _ = entered.send(()).await;
                            release.acquire().await.unwrap().forget();
                            "finished\n"
                        }
                    }),
                )
                .route("/fast", axum::routing::get(|| async { "fast\n" }))
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let old = listener.local_addr().unwrap();
        let mut server = HttpServer::start(listener, old, router);
        let in_flight = tokio::spawn(reqwest::get(format!("http://{old}/slow")));
        entered.recv().await.unwrap();

        let previous = server.rebind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_eq!(previous, old);
        let new = server.addr;
        assert_ne!(new, old);
        let fast = reqwest::get(format!("http://{new}/fast")).await.unwrap();
        assert_eq!(fast.text().await.unwrap(), "fast\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(old).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "{old} still accepts");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        release.add_permits(1);
        let answer = in_flight.await.unwrap().unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "finished\n");

        server.shutdown(Duration::from_secs(5)).await;
        assert!(server.loops.is_empty(), "every serve loop ended");
        assert!(tokio::net::TcpStream::connect(new).await.is_err());
    }

    /// A router whose `/slow` answers once the test adds a permit to the semaphore returned,
    /// telling the channel when it starts (the counter holds the most such requests it ever
    /// had in hand at once), and whose `/fast` answers at once.
    fn held_router() -> (
        axum::Router,
        mpsc::Receiver<()>,
        Arc<Semaphore>,
        Arc<std::sync::atomic::AtomicUsize>,
    ) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (entered_tx, entered) = mpsc::channel::<()>(16);
        let release = Arc::new(Semaphore::new(0));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let router = {
            let (release, most) = (Arc::clone(&release), Arc::clone(&most));
            axum::Router::new()
                .route(
                    "/slow",
                    axum::routing::get(move || {
                        let (entered, release) = (entered_tx.clone(), Arc::clone(&release));
                        let (now, most) = (Arc::clone(&now), Arc::clone(&most));
                        async move {
                            most.fetch_max(
                                now.fetch_add(1, Ordering::SeqCst) + 1,
                                Ordering::SeqCst,
                            );
                            let _ = entered.send(()).await;
                            release.acquire().await.unwrap().forget();
                            now.fetch_sub(1, Ordering::SeqCst);
                            "finished\n"
                        }
                    }),
                )
                .route("/fast", axum::routing::get(|| async { "fast\n" }))
        };
        (router, entered, release, most)
    }

    /// The connection cap is one budget across a move: while requests on the old listener
    /// hold every slot, the new listener takes no connection (its clients wait in the
    /// backlog), so the daemon never has more than the cap open; once they finish, the new
    /// listener's clients are served. (Each loop had a cap of its own: twice the limit.)
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_moved_http_server_keeps_one_connection_cap_across_the_old_and_new_listener() {
        use std::sync::atomic::Ordering;
        const CAP: usize = 2;
        let (router, mut entered, release, most) = held_router();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let old = listener.local_addr().unwrap();
        let limits = http::ServeLimits {
            header_read_timeout: Duration::from_secs(600),
            max_connections: CAP,
            close_grace: http::CLOSE_GRACE,
            write_stall_timeout: http::WRITE_STALL_TIMEOUT,
        };
        let mut server = HttpServer::start_limited(listener, old, router, limits);
        // A client each: reqwest's pool would otherwise reuse one connection.
        let get = |addr: std::net::SocketAddr| {
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let answer = client.get(format!("http://{addr}/slow")).send().await?;
                answer.text().await
            })
        };
        let on_old: Vec<_> = (0..CAP).map(|_| get(old)).collect();
        for _ in 0..CAP {
            entered.recv().await.unwrap();
        }

        server.rebind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let new = server.addr;
        let on_new: Vec<_> = (0..CAP).map(|_| get(new)).collect();
        // Time for a loop with slots of its own to take them (and this test to fail); with
        // one budget no wait is long enough, so nothing here depends on speed.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            entered.try_recv().is_err(),
            "the new listener served while the old one's requests held the cap"
        );
        assert_eq!(most.load(Ordering::SeqCst), CAP);
        assert_eq!(
            server.slots.open(),
            CAP,
            "the old listener's connections hold the budget"
        );

        release.add_permits(2 * CAP);
        for answer in on_old.into_iter().chain(on_new) {
            assert_eq!(answer.await.unwrap().unwrap(), "finished\n");
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            CAP,
            "never more than the cap at once"
        );
        server.shutdown(Duration::from_secs(5)).await;
        assert!(server.loops.is_empty(), "every serve loop ended");
        assert_eq!(server.slots.open(), 0);
    }

    /// A move back to the address just left, at once, while a request on it is still being
    /// answered: the address is bound again and serves, and the request finishes. One
    /// thread, so the old loop runs only when this test awaits: it closed its listener when it
    /// next ran, after `rebind` had returned, so a move back before then found the address
    /// taken (a bind failure reported for an address the daemon itself held).
    #[tokio::test(flavor = "current_thread")]
    async fn a_move_back_to_the_address_just_left_serves_there_while_its_requests_finish() {
        let (router, mut entered, release, _) = held_router();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let first = listener.local_addr().unwrap();
        let mut server = HttpServer::start(listener, first, router);
        let in_flight = tokio::spawn(async move {
            let answer = reqwest::get(format!("http://{first}/slow")).await?;
            answer.text().await
        });
        entered.recv().await.unwrap();

        let left = server.rebind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        assert_eq!(left, first);
        let second = server.addr;
        let left = server
            .rebind(first)
            .await
            .unwrap_or_else(|e| panic!("moving back to {first}: {e}"));
        assert_eq!((left, server.addr), (second, first));
        let fast = reqwest::get(format!("http://{first}/fast")).await.unwrap();
        assert_eq!(fast.text().await.unwrap(), "fast\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while tokio::net::TcpStream::connect(second).await.is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "{second} still accepts"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }

        release.add_permits(1);
        assert_eq!(in_flight.await.unwrap().unwrap(), "finished\n");
        server.shutdown(Duration::from_secs(5)).await;
        assert!(server.loops.is_empty(), "every serve loop ended");
    }

    #[test]
    fn a_reloaded_listen_is_compared_with_the_address_bound() {
        let cases = [
            ("127.0.0.1:19107", "127.0.0.1:19107", true),
            ("127.0.0.1:19107", "127.0.0.1:19108", false),
            ("127.0.0.1:19107", "0.0.0.0:19107", false),
            ("127.0.0.1:41234", "127.0.0.1:0", true),
            ("127.0.0.1:41234", "127.0.0.2:0", false),
            ("[::1]:8080", "[::1]:8080", true),
            ("[::]:8080", "0.0.0.0:8080", false),
        ];
        for (bound, wanted, same) in cases {
            let (b, w) = (bound.parse().unwrap(), wanted.parse().unwrap());
            assert_eq!(listens_on(b, w), same, "{bound} for {wanted}");
        }
    }

    /// Stopped before its first batch, a re-score or re-pick records nothing (the next start
    /// or reload does the work); a run to the end records what it applied.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_re_score_or_re_pick_leaves_its_meta_key_unrecorded() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_hourly_sources(&dir.path().join("t.db"), &["A"]).await;
        store_entry(&store, "A", "a-1").await;
        let classifier = Arc::new(Classifier::builtin());
        let stopped = CancellationToken::new();
        stopped.cancel();

        assert_eq!(
            rescore_if_changed(&store, &classifier, &stopped)
                .await
                .unwrap(),
            Sweep::Stopped
        );
        assert_eq!(store.meta("classifier").await.unwrap(), None);
        assert_eq!(
            repick_if_priorities_changed(&store, &classifier, &stopped)
                .await
                .unwrap(),
            Sweep::Stopped
        );
        assert_eq!(store.meta("priorities").await.unwrap(), None);

        let whole = CancellationToken::new();
        assert_eq!(
            rescore_if_changed(&store, &classifier, &whole)
                .await
                .unwrap(),
            Sweep::Done(())
        );
        assert_eq!(
            store.meta("classifier").await.unwrap(),
            Some(classifier.fingerprint())
        );
        assert_eq!(
            repick_if_priorities_changed(&store, &classifier, &whole)
                .await
                .unwrap(),
            Sweep::Done(0)
        );
        assert_eq!(
            store.meta("priorities").await.unwrap(),
            Some(store.priorities().await.unwrap())
        );
        store.close().await;
    }

    /// The audit's interleaving, step by step: a re-score reads a batch, a poll then edits a
    /// story of it (a new title and text, with the poll's own scores), and the re-score
    /// writes the scores of what it read. They are not written over the poll's: the story is
    /// handed back, and read again it is scored from the text it has now.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_re_score_does_not_overwrite_the_scores_of_a_story_a_poll_changed_since_its_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_hourly_sources(&dir.path().join("t.db"), &["A"]).await;
        let old = (
            "Markets close higher",
            "Shares rose on strong bank earnings.",
        );
        store_copy(&store, "A", "a-1", old, Vec::new()).await;
        let classifier = Arc::new(Classifier::builtin());
        let scores_of = |story: i64| {
            let store = store.clone();
            async move { store.story(story).await.unwrap().unwrap().topics }
        };

        let read = store.stories_for_scoring(0, RESCORE_BATCH).await.unwrap();
        assert_eq!(read.len(), 1);
        let story = read[0].story;
        let new = (
            "US doubles steel tariffs, EU threatens WTO case",
            "The United States doubled tariffs on steel imports; the European Union said it \
             would bring a WTO dispute over the duties.",
        );
        let polls = classifier.score(new.0, new.1);
        assert_ne!(
            polls,
            classifier.score(old.0, old.1),
            "the texts score apart"
        );
        store_copy(&store, "A", "a-1", new, polls.clone()).await;
        assert_eq!(scores_of(story).await, polls);

        let not_written = score_and_replace(&store, &classifier, read).await.unwrap();
        assert_eq!(not_written, [story]);
        assert_eq!(scores_of(story).await, polls, "the poll's scores stay");

        let again = store.stories_to_score(not_written).await.unwrap();
        assert_eq!((again[0].title.as_str(), again[0].text.as_str()), new);
        // Scores that differ from the poll's show that this write is applied.
        let marked: Vec<_> = again
            .into_iter()
            .map(|read| {
                let mut scores = classifier.score(&read.title, &read.text);
                scores.iter_mut().for_each(|s| s.why.push("again".into()));
                (read, scores)
            })
            .collect();
        let written = marked[0].1.clone();
        assert!(store.replace_scores(marked).await.unwrap().is_empty());
        assert_eq!(scores_of(story).await, written);

        // A whole re-score with nothing changing meanwhile leaves nothing behind.
        let whole = CancellationToken::new();
        assert_eq!(
            rescore_all(&store, &classifier, &whole).await.unwrap(),
            Sweep::Done(Rescored {
                stories: 1,
                left: 0
            })
        );
        assert_eq!(scores_of(story).await, polls);
        store.close().await;
    }

    async fn entry_count(store: &Store) -> u64 {
        store.counts().await.unwrap().1
    }

    /// Waits until the store holds `n` entries, or panics after 10 s.
    async fn wait_for_entries(store: &Store, n: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while entry_count(store).await != n {
            assert!(
                std::time::Instant::now() < deadline,
                "still {} entries, waiting for {n}",
                entry_count(store).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pruner_applies_the_retention_in_force_and_none_when_it_is_turned_off() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_hourly_sources(&dir.path().join("t.db"), &["A"]).await;
        store_entry(&store, "A", "a-1").await;
        // Entries are first seen in whole seconds: one second on, the entry is older than
        // a retention of 0 days.
        tokio::time::sleep(Duration::from_millis(1100)).await;

        let (retention, receiver) = watch::channel(None);
        let cancel = CancellationToken::new();
        let every = Duration::from_millis(50);
        let pruner = tokio::spawn(prune_by_retention(
            store.clone(),
            receiver,
            every,
            cancel.clone(),
        ));
        // Started without retention: many rounds, nothing pruned.
        tokio::time::sleep(every * 6).await;
        assert_eq!(entry_count(&store).await, 1, "no retention, no pruning");

        // A reload turns retention on: applied without a restart.
        retention.send_replace(Some(0));
        wait_for_entries(&store, 0).await;

        // A reload turns it off again: an entry as old as the pruned one stays.
        retention.send_replace(None);
        store_entry(&store, "A", "a-2").await;
        tokio::time::sleep(Duration::from_millis(1100) + every * 4).await;
        assert_eq!(
            entry_count(&store).await,
            1,
            "retention off, pruning stopped"
        );

        // A retention reaching back before the calendar begins prunes nothing, and does not
        // stop the pruner either.
        retention.send_replace(Some(u32::MAX));
        tokio::time::sleep(every * 4).await;
        assert_eq!(entry_count(&store).await, 1);
        retention.send_replace(Some(0));
        wait_for_entries(&store, 0).await;

        cancel.cancel();
        pruner.await.unwrap();
        store.close().await;
    }

    /// A reload during a poll cuts it off exactly when the store would no longer write it to a
    /// configured, enabled source with the polled URL: the rule of the write itself, asked of
    /// a real store after the reload's sources are recorded.
    #[tokio::test]
    async fn a_poll_is_unwanted_once_its_url_is_no_longer_configured_under_an_enabled_source() {
        let source = |name: &str, url: &str, enabled: bool| Source {
            name: name.into(),
            url: url.into(),
            schedule: Schedule::parse("@hourly").unwrap(),
            enabled,
            tags: Vec::new(),
            priority: 0,
            cluster: false,
            allow_private_redirects: false,
        };
        let (d, e) = ("http://d.example/feed", "http://e.example/feed");
        let polled = source("D", d, true);
        let other = source("E", e, true);
        let before = vec![polled.clone(), other.clone()];
        let shared = vec![polled.clone(), source("F", d, true)];
        let cases = [
            (
                "unchanged",
                &before,
                vec![polled.clone(), other.clone()],
                None,
            ),
            (
                "new URL",
                &before,
                vec![source("D", "http://d2.example/feed", true)],
                Some(Unpolled::NewUrl),
            ),
            (
                "removed",
                &before,
                vec![other.clone()],
                Some(Unpolled::Dropped),
            ),
            (
                "disabled",
                &before,
                vec![source("D", d, false)],
                Some(Unpolled::Dropped),
            ),
            ("renamed", &before, vec![source("D2", d, true)], None),
            // The store renames the feed's row: the poll is written to E.
            (
                "names swapped",
                &before,
                vec![source("E", d, true), source("D", e, true)],
                None,
            ),
            // D's row takes the new URL; the poll is written to D2, the one source with it.
            (
                "renamed, the old name given to another feed",
                &before,
                vec![
                    source("D2", d, true),
                    source("D", "http://x.example/feed", true),
                ],
                None,
            ),
            // E's row is reset as a new feed at D's old URL: it must not take the old URL's
            // validators or due time, so the poll is of D, whose URL changed.
            (
                "new URL, the old one given to another source",
                &before,
                vec![
                    source("D", "http://d2.example/feed", true),
                    source("E", d, true),
                ],
                Some(Unpolled::NewUrl),
            ),
            (
                "renamed and disabled",
                &before,
                vec![source("D2", d, false)],
                Some(Unpolled::Dropped),
            ),
            // The poll would be written to D's row, disabled.
            (
                "disabled, its URL also another source's",
                &shared,
                vec![source("D", d, false), source("F", d, true)],
                Some(Unpolled::Dropped),
            ),
            // D's row stays (not renamed: F already had one), out of the config.
            (
                "removed, its URL also another source's",
                &shared,
                vec![source("F", d, true)],
                Some(Unpolled::Dropped),
            ),
            (
                "every source removed",
                &before,
                Vec::new(),
                Some(Unpolled::Dropped),
            ),
        ];
        for (case, before, after, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("t.db"), Access::ReadWrite).unwrap();
            store.sync_sources(before, |_, t, _| t).await.unwrap();
            store.sync_sources(&after, |_, t, _| t).await.unwrap();
            let target = store.poll_target(&polled.name, &polled.url).await.unwrap();
            assert_eq!(unpolled(target.as_ref(), d), want, "{case}: {target:?}");
            store.close().await;
        }
    }

    /// A new store at `db` with these sources configured, hourly, at
    /// `http://<name in lower case>.example/feed`.
    async fn store_with_hourly_sources(db: &std::path::Path, names: &[&str]) -> Store {
        let store = Store::open(db, Access::ReadWrite).unwrap();
        let sources: Vec<Source> = names
            .iter()
            .map(|name| Source {
                name: (*name).into(),
                url: format!("http://{}.example/feed", name.to_lowercase()),
                schedule: Schedule::parse("@hourly").unwrap(),
                enabled: true,
                tags: Vec::new(),
                priority: 0,
                cluster: false,
                allow_private_redirects: false,
            })
            .collect();
        store.sync_sources(&sources, |_, t, _| t).await.unwrap();
        store
    }

    /// The start times of the fetch log's lines, oldest first, read beside the daemon's
    /// connections.
    fn fetch_log(db: &std::path::Path) -> Vec<i64> {
        let conn = rusqlite::Connection::open(db).unwrap();
        let mut stmt = conn
            .prepare("SELECT started_at FROM fetches ORDER BY started_at")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// Adds fetch-log lines `(source, started_at)` beside the daemon's connections.
    fn insert_lines(db: &std::path::Path, lines: &[(&str, i64)]) {
        let mut conn = rusqlite::Connection::open(db).unwrap();
        let tx = conn.transaction().unwrap();
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO fetches (source_id, started_at, duration_ms, outcome, bytes,
                                          new_entries, updated_entries)
                     VALUES ((SELECT id FROM sources WHERE name = ?1), ?2, 0, 'ok', 0, 0, 0)",
                )
                .unwrap();
            for (source, started_at) in lines {
                insert
                    .execute(rusqlite::params![source, started_at])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }

    /// `count` lines two months old and older, alternating over sources `a` and `b`.
    fn insert_old_lines(db: &std::path::Path, count: usize) {
        let now = Utc::now().timestamp();
        let lines: Vec<(&str, i64)> = (0..count)
            .map(|i| {
                (
                    if i % 2 == 0 { "a" } else { "b" },
                    now - 86_400 * 60 - i as i64,
                )
            })
            .collect();
        insert_lines(db, &lines);
    }

    /// A log that grew for months goes in batches (each its own write job), all of it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_fetch_log_is_pruned_in_batches_to_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let store = store_with_hourly_sources(&db, &["a", "b"]).await;
        let now = Utc::now().timestamp();
        let old = 2 * crate::store::FETCH_LOG_BATCH + 345;
        insert_old_lines(&db, old);
        insert_lines(&db, &[("a", now), ("b", now)]);
        let cutoff = Utc::now() - chrono::Duration::days(FETCH_LOG_DAYS);
        let batch = crate::store::FETCH_LOG_BATCH;
        assert_eq!(
            store.prune_fetch_log(cutoff, batch).await.unwrap(),
            (old, 3),
            "two full batches and a short one"
        );
        assert_eq!(fetch_log(&db), [now, now], "only the recent lines stay");
        assert_eq!(store.prune_fetch_log(cutoff, batch).await.unwrap(), (0, 1));

        // At shutdown the pruner stops between batches instead of working through the log.
        insert_old_lines(&db, old);
        let (_retention, receiver) = watch::channel(None);
        let cancel = CancellationToken::new();
        cancel.cancel();
        prune_by_retention(store.clone(), receiver, Duration::from_secs(3600), cancel).await;
        assert!(
            fetch_log(&db).len() > old + 2 - batch,
            "at most one batch went after the stop was asked"
        );

        // Each batch finds its lines through the log's index, not by reading the table.
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut plan = conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                crate::store::FETCH_LOG_DELETE
            ))
            .unwrap();
        let plan: Vec<String> = plan
            .query_map(rusqlite::params![0, 1], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("INDEX fetches_source")),
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|step| step.starts_with("SCAN fetches")),
            "{plan:?}"
        );
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_pruner_bounds_the_fetch_log_without_a_retention() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let store = store_with_hourly_sources(&db, &["A"]).await;
        // Polls a day past the fetch log's days, a day short of them, and now; each a 304.
        let now = Utc::now();
        let day = chrono::Duration::days(1);
        let started =
            [FETCH_LOG_DAYS + 1, FETCH_LOG_DAYS - 1, 0].map(|days| now - day * days as i32);
        for started_at in started {
            store
                .record_poll(PollRecord {
                    source: "A".into(),
                    url: "http://a.example/feed".into(),
                    source_row: None,
                    started_at,
                    duration: Duration::ZERO,
                    outcome: PollOutcome::NotModified {
                        etag: None,
                        last_modified: None,
                    },
                    next_due: now,
                    due_jitter: None,
                    moved_to: None,
                    base_url: None,
                    entries: Vec::new(),
                    listed: Default::default(),
                    cluster_window: chrono::Duration::days(7),
                })
                .await
                .unwrap();
        }
        assert_eq!(fetch_log(&db).len(), 3);

        // No retention: entries are kept for ever, the fetch log is not.
        let (_retention, receiver) = watch::channel(None);
        let cancel = CancellationToken::new();
        let pruner = tokio::spawn(prune_by_retention(
            store.clone(),
            receiver,
            Duration::from_millis(50),
            cancel.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while fetch_log(&db).len() > 2 {
            assert!(tokio::time::Instant::now() < deadline, "the old line stays");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cancel.cancel();
        pruner.await.unwrap();
        assert_eq!(
            fetch_log(&db),
            [started[1].timestamp(), started[2].timestamp()],
            "the two recent lines are kept"
        );
        store.close().await;
    }
}
