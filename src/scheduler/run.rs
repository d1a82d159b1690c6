//! The scheduling loop: asks the store which sources are due and queues them as jobs.
//! It never fetches; whoever receives the jobs runs them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error};

use crate::domain::Source;
use crate::store::Store;

/// Longest sleep between two looks at the schedule (a safety net; reloads wake it at once).
const MAX_SLEEP: Duration = Duration::from_secs(5);

/// One source to poll now. While the job exists the source counts as in flight, so it is never
/// queued twice.
#[derive(Debug)]
pub struct Job {
    /// The source, as configured when the job was queued.
    pub source: Source,
    in_flight: InFlight,
}

impl Job {
    /// Keeps the source from being queued again before `until`, whatever the database says.
    /// For polls whose result could not be stored (disk full, database locked): the stored
    /// due time is stale then, and polling again at once would hammer the publisher.
    pub fn defer_until(&self, until: chrono::DateTime<Utc>) {
        self.in_flight
            .deferred
            .lock()
            .expect("deferral lock poisoned")
            .insert(self.in_flight.name.clone(), until);
    }
}

#[derive(Debug)]
struct InFlight {
    name: String,
    set: Arc<Mutex<HashSet<String>>>,
    deferred: Arc<Mutex<HashMap<String, chrono::DateTime<Utc>>>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .expect("in-flight lock poisoned")
            .remove(&self.name);
    }
}

/// Queues due sources onto `jobs` until `cancel` fires. `sources` carries the current config's
/// sources; a change wakes the loop so new sources are polled at once.
pub async fn run(
    store: Store,
    mut sources: watch::Receiver<Arc<Vec<Source>>>,
    jobs: mpsc::Sender<Job>,
    cancel: CancellationToken,
) {
    let in_flight = Arc::new(Mutex::new(HashSet::<String>::new()));
    let deferred = Arc::new(Mutex::new(HashMap::<String, chrono::DateTime<Utc>>::new()));
    loop {
        let now = Utc::now();
        deferred
            .lock()
            .expect("deferral lock poisoned")
            .retain(|_, until| *until > now);
        let current: HashMap<String, Source> = sources
            .borrow_and_update()
            .iter()
            .filter(|s| s.enabled)
            .map(|s| (s.name.clone(), s.clone()))
            .collect();
        match store.due_sources(Utc::now()).await {
            Ok(due) => {
                for name in due {
                    let Some(source) = current.get(&name) else {
                        continue;
                    };
                    if deferred
                        .lock()
                        .expect("deferral lock poisoned")
                        .contains_key(&name)
                    {
                        continue;
                    }
                    if !in_flight
                        .lock()
                        .expect("in-flight lock poisoned")
                        .insert(name.clone())
                    {
                        continue;
                    }
                    let job = Job {
                        source: source.clone(),
                        in_flight: InFlight {
                            name,
                            set: Arc::clone(&in_flight),
                            deferred: Arc::clone(&deferred),
                        },
                    };
                    debug!(source = %job.source.name, "queued");
                    tokio::select! {
                        sent = jobs.send(job) => if sent.is_err() { return },
                        () = cancel.cancelled() => return,
                    }
                }
            }
            Err(e) => error!(error = %e, "cannot read the schedule; retrying"),
        }
        let sleep = match store.next_wakeup().await {
            Ok(Some(t)) => (t - Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
                .min(MAX_SLEEP),
            _ => MAX_SLEEP,
        }
        .max(Duration::from_millis(200));
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            changed = sources.changed() => if changed.is_err() { return },
            () = cancel.cancelled() => return,
        }
    }
}
