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
use crate::scheduler;
use crate::store::{Access, Store};

/// How long in-flight polls may run on after a shutdown request before they are cancelled.
const POLL_DRAIN: Duration = Duration::from_secs(4);
/// How long open HTTP connections may take to finish after a shutdown request.
const HTTP_DRAIN: Duration = Duration::from_secs(3);
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

/// Loads the topic profiles the config names (the built-in topic when there are none).
pub fn load_classifier(config: &Config) -> anyhow::Result<Classifier> {
    if config.topics_dir.is_dir() {
        Classifier::load(&config.topics_dir).with_context(|| {
            format!(
                "loading topic profiles from {}",
                config.topics_dir.display()
            )
        })
    } else {
        Ok(Classifier::builtin())
    }
}

/// Opens the store for writing (in the blocking pool: it may run an integrity check).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let path = config.storage.path.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&path, Access::ReadWrite))
        .await
        .context("opening the database")??;
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
        let classifier = load_classifier(config)?;
        let store = open_store(config).await?;
        store
            .sync_sources(&config.sources)
            .await
            .context("recording the configured sources")?;
        rescore_if_changed(&store, &classifier).await?;
        let classifier: SharedClassifier = Arc::new(RwLock::new(Arc::new(classifier)));
        let fetcher = Fetcher::new(fetch_limits(config)).context("building the HTTP client")?;
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

/// Re-scores every stored story when the topic profiles differ from those that scored them.
pub async fn rescore_if_changed(store: &Store, classifier: &Classifier) -> anyhow::Result<()> {
    let fingerprint = classifier.fingerprint();
    if store.meta("classifier").await?.as_deref() == Some(fingerprint.as_str()) {
        return Ok(());
    }
    let n = rescore_all(store, classifier).await?;
    store.set_meta("classifier", &fingerprint).await?;
    info!(
        stories = n,
        "topic profiles changed; stored stories re-scored"
    );
    Ok(())
}

/// Re-scores every stored story with `classifier`; returns how many.
pub async fn rescore_all(store: &Store, classifier: &Classifier) -> anyhow::Result<usize> {
    let mut after = 0;
    let mut total = 0;
    loop {
        let batch = store.stories_for_scoring(after, RESCORE_BATCH).await?;
        let Some(last) = batch.last() else { break };
        after = last.0;
        total += batch.len();
        let scores = batch
            .into_iter()
            .map(|(id, title, text)| (id, classifier.score(&title, &text)))
            .collect();
        store.replace_scores(scores).await?;
    }
    Ok(total)
}

/// Runs the daemon until `cancel` fires, serving HTTP on `listener`.
pub async fn run(
    config: Config,
    listener: TcpListener,
    cancel: CancellationToken,
) -> anyhow::Result<()> {
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
        },
    );
    let http_cancel = CancellationToken::new();
    let server = {
        let router = http::router(http_state);
        let http_cancel = http_cancel.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move { http_cancel.cancelled().await })
                .await
        })
    };

    let (sources_tx, sources_rx) = watch::channel(Arc::new(config.sources.clone()));
    let (jobs_tx, mut jobs_rx) = mpsc::channel::<scheduler::Job>(config.polling.concurrency);
    let scheduler_cancel = CancellationToken::new();
    let scheduler_task = tokio::spawn(scheduler::run(
        store.clone(),
        sources_rx,
        jobs_tx,
        scheduler_cancel.clone(),
    ));

    let polls = TaskTracker::new();
    let poll_cancel = CancellationToken::new();
    let permits = Arc::new(Semaphore::new(config.polling.concurrency));
    let dispatcher = {
        let polls = polls.clone();
        let poll_cancel = poll_cancel.clone();
        let ingestor = ingestor.clone();
        tokio::spawn(async move {
            while let Some(job) = jobs_rx.recv().await {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let ingestor = ingestor.clone();
                let cancel = poll_cancel.clone();
                polls.spawn(async move {
                    tokio::select! {
                        _ = ingestor.poll(&job.source) => {}
                        () = cancel.cancelled() => {
                            warn!(source = %job.source.name, "poll cancelled by shutdown");
                        }
                    }
                    drop(permit);
                    drop(job);
                });
            }
        })
    };

    let pruner = config.storage.retention_days.map(|days| {
        let store = store.clone();
        let cancel = scheduler_cancel.clone();
        tokio::spawn(async move {
            loop {
                let cutoff = Utc::now() - chrono::Duration::days(i64::from(days));
                match store.prune(cutoff).await {
                    Ok((entries, stories)) if entries + stories > 0 => {
                        info!(entries, stories, "pruned by retention");
                    }
                    Ok(_) => {}
                    Err(e) => error!(error = %e, "pruning failed; will retry"),
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(3600)) => {}
                    () = cancel.cancelled() => return,
                }
            }
        })
    });

    cancel.cancelled().await;
    info!("shutting down");
    // 1. HTTP: stop accepting, give open requests a moment.
    http_cancel.cancel();
    match tokio::time::timeout(HTTP_DRAIN, server).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => error!(error = %e, "HTTP server failed"),
        Ok(Err(e)) => error!(error = %e, "HTTP server task failed"),
        Err(_) => warn!("HTTP connections still open after the drain time; closing"),
    }
    // 2. Scheduler: queue nothing more.
    scheduler_cancel.cancel();
    let _ = scheduler_task.await;
    let _ = dispatcher.await;
    if let Some(pruner) = pruner {
        let _ = pruner.await;
    }
    // 3. In-flight polls: let them finish briefly, then cancel (their writes are atomic).
    polls.close();
    if tokio::time::timeout(POLL_DRAIN, polls.wait())
        .await
        .is_err()
    {
        poll_cancel.cancel();
        polls.wait().await;
    }
    drop(sources_tx);
    // 4. Store: finish queued writes, checkpoint.
    store.close().await;
    info!("stopped");
    Ok(())
}

/// One polling pass over `sources` (all polled now, due or not, except those the server asked
/// to wait or that were stopped), at most `concurrency` at once. Reports come back in order.
pub async fn fetch_once(
    pipeline: &Pipeline,
    sources: Vec<crate::domain::Source>,
    concurrency: usize,
) -> Vec<FetchPassResult> {
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(sources.len());
    for source in sources {
        let ingestor = pipeline.ingestor.clone();
        let store = pipeline.store.clone();
        let permits = Arc::clone(&permits);
        tasks.push(tokio::spawn(async move {
            let state = store.source_state(&source.name).await.ok().flatten();
            if let Some(state) = &state {
                if let Some(reason) = &state.disabled_reason {
                    return FetchPassResult::Skipped {
                        source: source.name.clone(),
                        reason: reason.clone(),
                    };
                }
                if let Some(t) = state.retry_not_before.filter(|&t| t > Utc::now()) {
                    return FetchPassResult::Skipped {
                        source: source.name.clone(),
                        reason: format!(
                            "server asked not to be polled before {}",
                            t.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                    };
                }
            }
            let _permit = permits.acquire_owned().await;
            FetchPassResult::Polled(ingestor.poll(&source).await)
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(r) => results.push(r),
            Err(e) => error!(error = %e, "poll task failed"),
        }
    }
    results
}

/// One line of a `fetch` pass.
#[derive(Debug)]
pub enum FetchPassResult {
    /// The source was polled.
    Polled(PollReport),
    /// The source was left alone, and why.
    Skipped {
        /// Source name.
        source: String,
        /// Why.
        reason: String,
    },
}
