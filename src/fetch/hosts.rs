//! Per-host politeness: a bounded number of requests in flight and a minimum gap between the
//! starts of two requests to the same host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Stands in for a spacing too long for the clock: 30 years.
const FAR_AHEAD: Duration = Duration::from_secs(30 * 365 * 86_400);
use url::Url;

/// The gates of every host seen so far. The map only grows with the number of distinct hosts,
/// which the configured sources (and their redirects) bound.
#[derive(Debug)]
pub(super) struct HostGates {
    concurrency: usize,
    spacing: Duration,
    hosts: Mutex<HashMap<String, Arc<HostGate>>>,
}

/// One host's limits.
#[derive(Debug)]
struct HostGate {
    permits: Arc<Semaphore>,
    /// The earliest time the next request to this host may start.
    next_start: Mutex<Instant>,
}

/// Permission to have one request in flight to a host; dropping it frees the slot.
#[derive(Debug)]
pub(super) struct HostPass {
    /// The host it is for ([`host_key`]).
    key: String,
    gate: Arc<HostGate>,
    _permit: OwnedSemaphorePermit,
}

impl HostGates {
    /// `concurrency` of zero is treated as one (zero would block every request forever).
    pub(super) fn new(concurrency: usize, spacing: Duration) -> HostGates {
        HostGates {
            concurrency: concurrency.max(1),
            spacing,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until a request to `url`'s host may start.
    pub(super) async fn enter(&self, url: &Url) -> HostPass {
        let key = host_key(url);
        let gate = self.gate(&key);
        let permit = gate
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("host semaphores are never closed");
        // The slot is reserved after the permit is held, so requests that queued for a permit
        // cannot all start together when permits free up.
        self.space(&gate).await;
        HostPass {
            key,
            gate,
            _permit: permit,
        }
    }

    /// Waits until the next request of a redirect chain, to `url`, may start, and returns the
    /// pass it runs under; `pass` is the one the chain holds.
    ///
    /// To the same host the chain keeps its slot (it waits only for the spacing): giving it up
    /// and queueing again would let the host's other polls take it, and a redirect would wait
    /// behind them, perhaps for their whole timeout. To another host the old slot is given up
    /// *before* queueing at the new one, so a chain never holds one slot while waiting for
    /// another: two chains redirecting each into the other's busy host cannot deadlock, and a
    /// chain never holds two slots of one host (a chain A → B → A queues at A again).
    pub(super) async fn hop(&self, pass: HostPass, url: &Url) -> HostPass {
        let key = host_key(url);
        if key == pass.key {
            self.space(&pass.gate).await;
            return pass;
        }
        drop(pass);
        self.enter(url).await
    }

    /// Waits for `gate`'s next start time and reserves the one after it.
    async fn space(&self, gate: &HostGate) {
        if !self.spacing.is_zero() {
            let start_at = {
                let mut next = gate
                    .next_start
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let slot = (*next).max(Instant::now());
                // Clamped and checked: a spacing too long for the clock keeps the host waiting
                // (as asked) rather than panicking.
                *next = slot
                    .checked_add(self.spacing.min(FAR_AHEAD))
                    .unwrap_or(slot);
                slot
            };
            tokio::time::sleep_until(start_at).await;
        }
    }

    fn gate(&self, key: &str) -> Arc<HostGate> {
        let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
        hosts
            .entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(HostGate {
                    permits: Arc::new(Semaphore::new(self.concurrency)),
                    next_start: Mutex::new(Instant::now()),
                })
            })
            .clone()
    }
}

/// Host and port: two ports of one machine are separate servers as far as limits go.
fn host_key(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    match url.port_or_known_default() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn host_key_includes_the_port_and_ignores_path_and_case() {
        let cases = [
            ("https://Example.org/feed", "example.org:443"),
            ("http://example.org/a?b", "example.org:80"),
            ("http://example.org:8080/", "example.org:8080"),
            ("http://127.0.0.1:3000/x", "127.0.0.1:3000"),
        ];
        for (input, expected) in cases {
            assert_eq!(host_key(&url(input)), expected, "{input}");
        }
    }

    #[tokio::test]
    async fn starts_to_one_host_are_spaced_and_other_hosts_are_not_delayed() {
        let spacing = Duration::from_millis(60);
        let gates = Arc::new(HostGates::new(10, spacing));
        let origin = Instant::now();
        let mut starts = Vec::new();
        for _ in 0..3 {
            let _pass = gates.enter(&url("http://a.example/")).await;
            starts.push(origin.elapsed());
        }
        assert!(starts[0] < spacing, "first start waited {:?}", starts[0]);
        assert!(starts[1] >= spacing, "second start after {:?}", starts[1]);
        assert!(
            starts[2] >= spacing * 2,
            "third start after {:?}",
            starts[2]
        );
        let before = Instant::now();
        let _other = gates.enter(&url("http://b.example/")).await;
        assert!(before.elapsed() < spacing, "another host was delayed");
    }

    #[tokio::test]
    async fn no_more_than_the_allowed_requests_are_in_flight_to_one_host() {
        let gates = Arc::new(HostGates::new(2, Duration::ZERO));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (gates, in_flight, peak) = (gates.clone(), in_flight.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                let _pass = gates.enter(&url("http://a.example/")).await;
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_hop_to_the_same_host_keeps_its_slot_and_one_to_another_host_leaves_it_first() {
        let gates = Arc::new(HostGates::new(1, Duration::ZERO));
        let bound = Duration::from_secs(5);
        let pass = gates.enter(&url("http://a.example/1")).await;
        // With the host's only slot held, a second acquire at that host would never end.
        let pass = tokio::time::timeout(bound, gates.hop(pass, &url("http://A.example:80/2")))
            .await
            .expect("the hop to the same host kept its slot");
        let b_busy = gates.enter(&url("http://b.example/")).await;
        let hop = tokio::spawn({
            let gates = Arc::clone(&gates);
            async move { gates.hop(pass, &url("http://b.example/feed")).await }
        });
        // The hop waits at b, and has left a meanwhile.
        let a_again = tokio::time::timeout(bound, gates.enter(&url("http://a.example/")))
            .await
            .expect("the slot at a was left before queueing at b");
        assert!(!hop.is_finished());
        drop(a_again);
        drop(b_busy);
        let at_b = tokio::time::timeout(bound, hop).await.unwrap().unwrap();
        assert_eq!(at_b.key, "b.example:80");
    }

    #[tokio::test]
    async fn zero_concurrency_is_treated_as_one() {
        let gates = HostGates::new(0, Duration::ZERO);
        let _pass = gates.enter(&url("http://a.example/")).await;
    }
}
