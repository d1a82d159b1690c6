//! HTTP fetching: reqwest clients, enforced limits, conditional GET, redirects followed by hand
//! and kept out of private networks.
//!
//! Returns typed outcomes; reqwest types never leave this module.

mod address;
mod guard;
mod hosts;
mod response;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{self, HeaderValue};
use tracing::Instrument;
use url::Url;

use crate::domain::redact_userinfo;
use guard::Guard;
pub use guard::Network;
use hosts::{HostGates, HostPass};

/// Limits and identity applied to every request.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// Time allowed to establish a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange, redirects and body included (stops slow-drip
    /// servers); waits for a host's slot are not counted. A fetch, those waits included, ends
    /// at its ceiling at most (see [`Ceiling`] and [`FetchError::BusyHost`]).
    pub total_timeout: Duration,
    /// Maximum body size, counted after decompression.
    pub max_body_bytes: u64,
    /// Maximum redirects followed before giving up.
    pub max_redirects: u32,
    /// The User-Agent header.
    pub user_agent: String,
    /// Concurrent requests allowed to one host (0 is treated as 1).
    pub per_host_concurrency: usize,
    /// Minimum time between the starts of two requests to one host.
    pub per_host_spacing: Duration,
}

impl Default for FetchLimits {
    fn default() -> Self {
        FetchLimits {
            connect_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30),
            max_body_bytes: 10 * 1024 * 1024,
            max_redirects: 5,
            user_agent: concat!("tradefeed/", env!("CARGO_PKG_VERSION")).to_string(),
            per_host_concurrency: 2,
            per_host_spacing: Duration::from_millis(0),
        }
    }
}

/// What to ask for: the URL and the validators from the last successful fetch.
#[derive(Debug, Clone, Default)]
pub struct FetchRequest {
    /// Absolute http(s) URL.
    pub url: String,
    /// ETag from the last 200, sent as If-None-Match.
    pub etag: Option<String>,
    /// Last-Modified from the last 200, sent as If-Modified-Since.
    pub last_modified: Option<String>,
    /// Follow redirects to non-public addresses even when `url` is public (the source's
    /// `allow_private_redirects`). Off, a public URL's redirects may only lead to public
    /// addresses; a non-public URL's redirects are never limited.
    pub allow_private_redirects: bool,
}

/// A successful exchange.
#[derive(Debug, Clone, PartialEq)]
pub enum FetchOutcome {
    /// 200 with a body.
    Fetched(FetchedFeed),
    /// 304: the feed is unchanged since the validators we sent.
    NotModified(Validators),
}

/// Cache validators and redirect facts of a response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Validators {
    /// ETag response header.
    pub etag: Option<String>,
    /// Last-Modified response header.
    pub last_modified: Option<String>,
    /// Set when a 301/308 moved the feed: the URL the config should be updated to.
    pub permanent_redirect: Option<String>,
}

/// A fetched feed body and what the server said about it.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchedFeed {
    /// The URL the body came from after redirects.
    pub final_url: String,
    /// The Content-Type header, if any (may carry a charset).
    pub content_type: Option<String>,
    /// The decompressed body.
    pub body: Vec<u8>,
    /// Validators and redirect facts.
    pub validators: Validators,
}

/// Why a fetch failed. `kind()` gives a stable label for metrics and the status table.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// The URL could not be used.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// Connecting failed (DNS, refused, TLS).
    #[error("connect failed: {0}")]
    Connect(String),
    /// The connect or total time limit ran out.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The fetch's ceiling (see [`Ceiling`]: wall time, waits at hosts' gates included)
    /// passed: the hosts it asked were kept busy by other polls for longer than it may wait.
    /// Not a `timeout`: the servers may answer quickly once asked. The message names the host
    /// spacing only where there is one: with none it is neither in the ceiling nor a cause of
    /// the wait, and naming it would send the operator to a setting that is not in play.
    #[error(
        "gave up after {ceiling:?} in all ({}), {waited:?} of it waiting for a busy host's \
         free slot ({})",
        busy_host_ceiling(*.spacing),
        busy_host_settings(*.spacing)
    )]
    BusyHost {
        /// The ceiling that passed.
        ceiling: Duration,
        /// How long of it the fetch waited at hosts' gates (to the millisecond).
        waited: Duration,
        /// The per-host spacing (`per_host_spacing_ms`) the ceiling was made with.
        spacing: Duration,
    },
    /// The body exceeded the size limit (after decompression).
    #[error("body larger than {limit} bytes")]
    TooLarge {
        /// The limit that was hit.
        limit: u64,
    },
    /// More redirects than allowed.
    #[error("too many redirects (limit {0})")]
    TooManyRedirects(u32),
    /// A redirect back to a URL of the same chain (shown without its query): no limit would
    /// help, so it says so rather than "too many" (an operator raised `max_redirects` for
    /// nothing).
    #[error("redirect loop: {0} was redirected to again")]
    RedirectLoop(String),
    /// A redirect of a public source led to a private, loopback or other non-public address
    /// and was not followed: nothing was sent there. The message names neither the target nor
    /// why it is not public, and reads the same whatever the target, so the status page
    /// tells a hostile feed nothing about the network behind tradefeed.
    #[error(
        "redirect to a non-public address refused, nothing was requested there: a feed on a \
         public address may not lead into a private network (set allow_private_redirects = \
         true on this source if it should)"
    )]
    PrivateRedirect,
    /// 410 Gone: the source should be disabled.
    #[error("410 Gone")]
    Gone,
    /// 429 or 503; `retry_after` is when the server allows the next attempt.
    #[error("HTTP {status}{}", retry_note(retry_after))]
    RateLimited {
        /// 429 or 503.
        status: u16,
        /// Parsed Retry-After (seconds or HTTP date), if any, at most [`MAX_RETRY_AFTER`] ahead.
        retry_after: Option<DateTime<Utc>>,
    },
    /// Any other non-success status.
    #[error("HTTP {0}")]
    Status(u16),
    /// 304 Not Modified to a request that carried no validators (no `If-None-Match`, no
    /// `If-Modified-Since`): a 304 only answers a conditional request, so there is no copy it
    /// could mean and the feed was never received. Counted as `http_status`.
    #[error(
        "HTTP 304 Not Modified answered to a request without validators (no If-None-Match or \
         If-Modified-Since was sent): there is no stored copy it could refer to"
    )]
    UnaskedNotModified,
    /// The connection broke while reading, or another transport error.
    #[error("transport error: {0}")]
    Transport(String),
}

/// The longest wait a server's `Retry-After` is honoured for. A week is longer than any
/// maintenance window a publisher has signalled, yet a bogus value (seen: 8208452427198
/// seconds, 260,000 years) cannot park a source for good; the source is then asked again
/// after a week, and waits again if the server still says so. Applied where the header is
/// read, so the error's message, the stored wait and the next due time all agree.
pub const MAX_RETRY_AFTER: chrono::Duration = chrono::Duration::days(7);

/// A fetch ends after this many times `total_timeout` of wall time at most, and the host
/// spacing once for each request its redirects allow, however long it waits at hosts' gates
/// (which its `total_timeout` does not count, see [`Budget`]; [`Ceiling`] has the sum).
///
/// Those waits are finite each, but a source whose redirects lead into a host that other
/// polls keep busy could wait at each hop, holding one of the process's poll slots
/// (`concurrency`) all the while; many such sources hold them all. Four times the timeout
/// leaves at least three timeouts' worth for waiting (the exchange itself is bounded by one),
/// enough to queue behind a few of the host's own slow polls. The spacing is added because
/// a chain waits it out by itself: a redirect to the same host is a request that must keep
/// `per_host_spacing` from the one before, with no other poll in the way.
pub const CEILING_FACTOR: u32 = 4;

/// ", retry after 2026-11-28 03:01:04 UTC" when the server said when, else nothing.
fn retry_note(retry_after: &Option<DateTime<Utc>>) -> String {
    retry_after.map_or_else(String::new, |t| {
        format!(", retry after {}", t.format("%Y-%m-%d %H:%M:%S UTC"))
    })
}

impl FetchError {
    /// A short stable label: `invalid_url`, `connect`, `timeout`, `busy_host`, `too_large`,
    /// `redirects`, `private_redirect`, `gone`, `rate_limited`, `http_status`, `transport`.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::InvalidUrl(_) => "invalid_url",
            FetchError::Connect(_) => "connect",
            FetchError::Timeout(_) => "timeout",
            FetchError::BusyHost { .. } => "busy_host",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::TooManyRedirects(_) | FetchError::RedirectLoop(_) => "redirects",
            FetchError::PrivateRedirect => "private_redirect",
            FetchError::Gone => "gone",
            FetchError::RateLimited { .. } => "rate_limited",
            FetchError::Status(_) | FetchError::UnaskedNotModified => "http_status",
            FetchError::Transport(_) => "transport",
        }
    }
}

/// What [`FetchError::BusyHost`]'s ceiling is made of.
fn busy_host_ceiling(spacing: Duration) -> String {
    if spacing.is_zero() {
        format!("{CEILING_FACTOR} × the timeout")
    } else {
        format!(
            "{CEILING_FACTOR} × the timeout, and the host spacing once for each request a \
             redirect chain may make"
        )
    }
}

/// The settings that make hosts busy, for [`FetchError::BusyHost`].
fn busy_host_settings(spacing: Duration) -> &'static str {
    if spacing.is_zero() {
        "per_host_concurrency"
    } else {
        "per_host_concurrency, per_host_spacing_ms"
    }
}

/// The HTTP fetcher of the process. Cheap to clone (shares the connection pools).
///
/// Every request goes through the per-host gates (`per_host_concurrency` in flight,
/// `per_host_spacing` between starts); a redirect to the same host keeps the slot its chain
/// holds. Waiting at a gate does not count against `total_timeout`, everything else (connect,
/// every redirect hop, the body) does (see [`Budget`]); the whole fetch, waits included, is
/// bounded by its ceiling (see [`Ceiling`]).
///
/// It holds two clients, alike but for their resolver: `client` connects wherever a name
/// leads, `public_client` only to public addresses. Which one a request uses is the redirect
/// guard's decision (see [`Fetcher::fetch`]); two clients, because a resolver cannot tell one
/// request from another, and two pools, so that a connection made to a private address is
/// never reused for a request that may not go there. `public_client` is built at the first
/// redirect that needs it: most feeds never redirect, and building a client (which loads
/// the system's CA certificates) is 19 M instructions and its own copy of them in memory.
#[derive(Debug, Clone)]
pub struct Fetcher {
    limits: FetchLimits,
    client: reqwest::Client,
    public_client: Arc<tokio::sync::OnceCell<reqwest::Client>>,
    guard: Guard,
    hosts: Arc<HostGates>,
}

/// Where the redirects of one fetch may lead; decided at its first redirect.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RedirectScope {
    /// A non-public source, or one allowed to: anywhere, through `client`.
    Anywhere,
    /// A public source: public addresses only, through `public_client`.
    PublicOnly,
}

/// What we accept, in order of preference: feed types first, generic XML, then anything (many
/// servers label feeds `text/html` or `application/octet-stream`).
const ACCEPT: &str = "application/atom+xml, application/rss+xml, application/feed+json, \
                      application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, \
                      application/json;q=0.8, */*;q=0.5";

/// How long an idle pooled connection is kept for the next poll of the same host. Long enough
/// to reuse a connection across the sources of one host polled in the same pass; polls of a
/// source are minutes apart, and each idle connection holds buffers (up to hundreds of KiB
/// after a large feed), so keeping them longer only costs memory.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest timer handed to the HTTP client (a year: far beyond any configured timeout,
/// far from overflowing the clock).
const LONGEST_TIMER: Duration = Duration::from_secs(365 * 86_400);

impl Fetcher {
    /// Builds the clients with the given limits, on the system's resolver.
    ///
    /// Redirects are not followed by the clients (see [`Fetcher::fetch`]); bodies are
    /// decompressed (gzip, brotli, deflate) and counted against the size limit: brotli as it
    /// is read, gzip and deflate (in any spelling, raw deflate too, stacked, and a gzip file
    /// sent with no coding) after the read, which counts the bytes as sent, within the same
    /// limit.
    pub fn new(limits: FetchLimits) -> Result<Fetcher, FetchError> {
        Fetcher::with_network(limits, Network::system())
    }

    /// [`Fetcher::new`] with another view of the network: for tests, whose servers all listen
    /// on loopback, to let one stand in for a public server. Production code uses `new`.
    pub fn with_network(limits: FetchLimits, network: Network) -> Result<Fetcher, FetchError> {
        let guard = Guard::new(network);
        let client = build_client(&limits, guard.resolver(false))?;
        let hosts = Arc::new(HostGates::new(
            limits.per_host_concurrency,
            limits.per_host_spacing,
        ));
        Ok(Fetcher {
            limits,
            client,
            public_client: Arc::new(tokio::sync::OnceCell::new()),
            guard,
            hosts,
        })
    }

    /// Takes over `previous`'s per-host gates when its per-host limits are these: a reload
    /// builds a new fetcher, and with gates of its own it would let a source added then
    /// request a host while the old fetcher's request to it (perhaps one hanging for its whole
    /// timeout) still holds the host's only slot. With other limits the gates start anew.
    pub fn keep_host_gates_from(&mut self, previous: &Fetcher) {
        if previous.limits.per_host_concurrency == self.limits.per_host_concurrency
            && previous.limits.per_host_spacing == self.limits.per_host_spacing
        {
            self.hosts = Arc::clone(&previous.hosts);
        }
    }

    /// The client that connects only to public addresses, built at its first use (see
    /// [`Fetcher`]).
    async fn public_client(&self) -> Result<&reqwest::Client, FetchError> {
        self.public_client
            .get_or_try_init(|| async {
                // Loading the CA certificates is blocking work: off the async threads.
                let (limits, resolver) = (self.limits.clone(), self.guard.resolver(true));
                tokio::task::spawn_blocking(move || build_client(&limits, resolver))
                    .await
                    .unwrap_or_else(|e| {
                        Err(FetchError::Transport(format!(
                            "building the HTTP client: {e}"
                        )))
                    })
            })
            .await
    }

    /// The limits in force.
    pub fn limits(&self) -> &FetchLimits {
        &self.limits
    }

    /// Performs one conditional GET, following redirects by hand, within every limit.
    ///
    /// Sends `If-None-Match`/`If-Modified-Since` from the request, follows at most
    /// `max_redirects` redirects (a loop is an error at once), and reports a 301/308 chain as
    /// [`Validators::permanent_redirect`]. A 304 comes back as [`FetchOutcome::NotModified`]
    /// with the validators the server sent, falling back to the ones we sent; a 304 to a
    /// request that sent none is [`FetchError::UnaskedNotModified`].
    ///
    /// The request's own URL is fetched wherever it leads: the operator chose it. Its
    /// redirects may lead to a non-public address only when that URL is itself non-public (a
    /// non-public address, `localhost` or a name under it; a name is never looked up for
    /// this, see `Guard::source_is_private`) or the
    /// request allows it; any other such hop is [`FetchError::PrivateRedirect`], with nothing
    /// sent to it.
    pub async fn fetch(&self, request: &FetchRequest) -> Result<FetchOutcome, FetchError> {
        let url = parse_http_url(&request.url)?;
        let span = tracing::info_span!(
            "fetch",
            url = %redact_userinfo(url.as_str()),
            status = tracing::field::Empty,
            bytes = tracing::field::Empty,
            final_url = tracing::field::Empty,
        );
        async {
            let ceiling = Ceiling::start(&self.limits);
            let started = Instant::now();
            let result = ceiling
                .run(async {
                    let pass = ceiling.wait(self.hosts.enter(&url)).await;
                    self.exchange(request, url, pass, &ceiling).await
                })
                .await;
            let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match &result {
                Ok(FetchOutcome::Fetched(feed)) => {
                    tracing::debug!(duration_ms, bytes = feed.body.len(), "fetched")
                }
                Ok(FetchOutcome::NotModified(_)) => tracing::debug!(duration_ms, "not modified"),
                Err(error) => {
                    tracing::debug!(duration_ms, kind = error.kind(), %error, "fetch failed")
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    /// The redirect loop and the final response, within the total timeout (waits at the
    /// gates of the hosts redirected to excepted, see [`Budget`]; they are counted in
    /// `ceiling`); `pass` is the slot taken at `url`'s host.
    async fn exchange(
        &self,
        request: &FetchRequest,
        mut url: Url,
        mut pass: HostPass,
        ceiling: &Ceiling,
    ) -> Result<FetchOutcome, FetchError> {
        let mut budget = Budget::start(self.limits.total_timeout);
        let source = url.clone();
        let mut visited = HashSet::from([url.clone()]);
        let mut redirects = 0u32;
        // The target of the longest all-permanent prefix of the chain.
        let mut permanent_redirect: Option<Url> = None;
        let mut all_permanent = true;
        // Decided at the first redirect, so that a source that does not redirect (nearly all)
        // costs no lookup.
        let mut scope: Option<RedirectScope> = None;
        loop {
            let response = budget
                .run(async {
                    let client = match scope {
                        Some(RedirectScope::PublicOnly) => self.public_client().await?,
                        None | Some(RedirectScope::Anywhere) => &self.client,
                    };
                    match self.send(client, &url, request).await {
                        Err(FetchError::PrivateRedirect) => {
                            // Only the operator's log names the target, never the recorded
                            // error.
                            tracing::info!(location = %redact_userinfo(url.as_str()), "redirect refused: the name has no public address; allow_private_redirects allows it");
                            Err(FetchError::PrivateRedirect)
                        }
                        other => other,
                    }
                })
                .await?;
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                let span = tracing::Span::current();
                span.record("status", status);
                if redirects > 0 {
                    span.record("final_url", &*redact_userinfo(url.as_str()));
                }
                let permanent = permanent_redirect.map(String::from);
                return budget
                    .run(response::finish(
                        response,
                        request,
                        url,
                        permanent,
                        &self.limits,
                    ))
                    .await;
            }
            let Some(next) = response::location(&response, &url)? else {
                // A redirect status without a usable Location is just a failed status.
                return Err(FetchError::Status(status));
            };
            // Dropping the response before reading its body closes that connection, which is
            // cheaper than draining an unbounded redirect body.
            drop(response);
            redirects += 1;
            if redirects > self.limits.max_redirects {
                return Err(FetchError::TooManyRedirects(self.limits.max_redirects));
            }
            if !visited.insert(next.clone()) {
                // Its query (which may carry a session or signed token) and fragment left out.
                let mut shown = next.clone();
                shown.set_query(None);
                shown.set_fragment(None);
                return Err(FetchError::RedirectLoop(shown.to_string()));
            }
            let scope = match scope {
                Some(scope) => scope,
                None => *scope.insert(self.redirect_scope(request, &source)),
            };
            if scope == RedirectScope::PublicOnly
                && let Some(range) = self.guard.refused_target(&next)
            {
                tracing::info!(location = %redact_userinfo(next.as_str()), range, "redirect refused: not a public address; allow_private_redirects allows it");
                return Err(FetchError::PrivateRedirect);
            }
            if all_permanent && matches!(status, 301 | 308) {
                permanent_redirect = Some(next.clone());
            } else {
                all_permanent = false;
            }
            tracing::debug!(status, location = %redact_userinfo(next.as_str()), "following redirect");
            // Kept to the same host; left before queueing at another (see `HostGates::hop`).
            pass = budget
                .pause(ceiling.wait(self.hosts.hop(pass, &next)))
                .await;
            url = next;
        }
    }

    /// Where the redirects of `request`, whose own URL is `source`, may lead.
    fn redirect_scope(&self, request: &FetchRequest, source: &Url) -> RedirectScope {
        if request.allow_private_redirects || self.guard.source_is_private(source) {
            RedirectScope::Anywhere
        } else {
            RedirectScope::PublicOnly
        }
    }

    /// Sends one GET with the conditional headers through `client`.
    async fn send(
        &self,
        client: &reqwest::Client,
        url: &Url,
        request: &FetchRequest,
    ) -> Result<reqwest::Response, FetchError> {
        let mut builder = client
            .get(url.as_str())
            .header(header::ACCEPT, HeaderValue::from_static(ACCEPT));
        if let Some(value) = header_value(request.etag.as_deref()) {
            builder = builder.header(header::IF_NONE_MATCH, value);
        }
        if let Some(value) = header_value(request.last_modified.as_deref()) {
            builder = builder.header(header::IF_MODIFIED_SINCE, value);
        }
        builder
            .send()
            .await
            .map_err(|error| response::classify(&error, &self.limits))
    }
}

/// What is left of a fetch's `total_timeout`. It runs while the fetch talks to servers
/// (connect, every redirect hop, the body) and stands still while the fetch waits at a host's
/// gate, at its first host (before the budget starts) as at a host redirected to: the wait is
/// the host's other polls' time, not this source's, and counting it made a redirect fail as
/// a `timeout` whenever the host redirected to was busy with slow polls.
#[derive(Debug)]
struct Budget {
    total: Duration,
    /// When the time runs out; `None` for a limit too long for the clock (never).
    deadline: Option<tokio::time::Instant>,
}

impl Budget {
    /// The whole of `total`, starting now.
    fn start(total: Duration) -> Budget {
        Budget {
            total,
            deadline: tokio::time::Instant::now().checked_add(total),
        }
    }

    /// `work`, or [`FetchError::Timeout`] if the budget runs out first.
    async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, work)
                .await
                .unwrap_or(Err(FetchError::Timeout(self.total))),
            None => work.await,
        }
    }

    /// `wait`, however long it takes, with the budget standing still meanwhile.
    async fn pause<T>(&mut self, wait: impl Future<Output = T>) -> T {
        let began = tokio::time::Instant::now();
        let out = wait.await;
        self.deadline = self.deadline.and_then(|d| d.checked_add(began.elapsed()));
        out
    }
}

/// The wall-time bound of one whole fetch, [`CEILING_FACTOR`] × `total_timeout` plus
/// `per_host_spacing` × (`max_redirects` + 1), which unlike [`Budget`] runs on while the
/// fetch waits at hosts' gates, and the time spent waiting there, for the error that says so.
#[derive(Debug)]
struct Ceiling {
    limit: Duration,
    /// The per-host spacing that went into `limit`, for the message.
    spacing: Duration,
    /// `None` for a limit too long for the clock (never).
    deadline: Option<tokio::time::Instant>,
    /// Nanoseconds waited at gates so far. Atomic rather than a `Cell` so that the fetch's
    /// future, which borrows it, stays `Send`.
    waited: AtomicU64,
}

impl Ceiling {
    /// The whole ceiling for `limits`, starting now.
    fn start(limits: &FetchLimits) -> Ceiling {
        let limit = limits
            .total_timeout
            .saturating_mul(CEILING_FACTOR)
            .saturating_add(
                limits
                    .per_host_spacing
                    .saturating_mul(limits.max_redirects.saturating_add(1)),
            );
        Ceiling {
            limit,
            spacing: limits.per_host_spacing,
            deadline: tokio::time::Instant::now().checked_add(limit),
            waited: AtomicU64::new(0),
        }
    }

    /// `work`, or [`FetchError::BusyHost`] once the ceiling passes. `work` is dropped then,
    /// and with it the host slot it held or queued for.
    async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        let Some(deadline) = self.deadline else {
            return work.await;
        };
        // Its own statement, so that `work` (and the clock of a wait it was in, see
        // `Ceiling::wait`) is dropped before the time waited is read.
        let outcome = tokio::time::timeout_at(deadline, work).await;
        outcome.unwrap_or_else(|_| {
            // The wait's clock stops a little after the deadline (when the timer is seen
            // to fire): never said to be longer than the ceiling.
            let waited = Duration::from_nanos(self.waited.load(Ordering::Relaxed)).min(self.limit);
            Err(FetchError::BusyHost {
                ceiling: self.limit,
                spacing: self.spacing,
                waited: Duration::from_millis(
                    u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
                ),
            })
        })
    }

    /// `wait` (a wait at a host's gate), its time counted as waited, also when the ceiling
    /// passes during it.
    async fn wait<T>(&self, wait: impl Future<Output = T>) -> T {
        let _clock = WaitClock {
            waited: &self.waited,
            began: tokio::time::Instant::now(),
        };
        wait.await
    }
}

/// Adds the time since `began` to `waited` when dropped: when the wait ends, or when it is
/// dropped unfinished.
struct WaitClock<'a> {
    waited: &'a AtomicU64,
    began: tokio::time::Instant,
}

impl Drop for WaitClock<'_> {
    fn drop(&mut self) {
        let nanos = u64::try_from(self.began.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.waited.fetch_add(nanos, Ordering::Relaxed);
    }
}

/// One of the fetcher's clients: redirects left to us, bodies decompressed, the limits' timeouts
/// and pool sizes, names resolved by `resolver`.
fn build_client(
    limits: &FetchLimits,
    resolver: guard::GuardedResolver,
) -> Result<reqwest::Client, FetchError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(resolver)
        // Both clamped: the client adds them to `Instant::now()` unchecked, and panics
        // on a value too long for the clock.
        .connect_timeout(limits.connect_timeout.min(LONGEST_TIMER))
        // A per-read inactivity bound inside the client; the total bound around the whole
        // exchange (see `fetch`) is what stops a server that keeps a read alive by dripping.
        .read_timeout(limits.total_timeout.min(LONGEST_TIMER))
        // gzip and deflate are decoded after the read (see `response::decode_body`), so that a
        // raw deflate stream, a plain body labelled gzip or deflate and stacked codings can be
        // read; the client would fail on the first two as it reads, and not see the third.
        // Brotli it decodes as it reads. Accept-Encoding names all three, as the client would.
        .gzip(false)
        .deflate(false)
        .brotli(true)
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("gzip, deflate, br"),
        )]))
        .user_agent(limits.user_agent.as_str())
        .pool_max_idle_per_host(limits.per_host_concurrency.max(1))
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build()
        .map_err(|error| {
            FetchError::Transport(format!(
                "building the HTTP client: {}",
                response::error_chain(&error)
            ))
        })
}

/// A stored validator as a header value; one that cannot be sent (control characters) is
/// skipped, which just means an unconditional GET.
fn header_value(value: Option<&str>) -> Option<HeaderValue> {
    value
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| HeaderValue::from_str(v.trim()).ok())
}

/// Parses an absolute http(s) URL with a host.
fn parse_http_url(text: &str) -> Result<Url, FetchError> {
    let url = Url::parse(text.trim())
        .map_err(|error| FetchError::InvalidUrl(format!("{text:?}: {error}")))?;
    check_http_url(url)
}

/// Only http and https with a host are fetched (no `file:`, `ftp:`, `data:`).
fn check_http_url(url: Url) -> Result<Url, FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::InvalidUrl(format!(
            "{url}: only http and https URLs can be fetched"
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(FetchError::InvalidUrl(format!("{url}: no host")));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fetcher built by a reload with the same per-host limits shares the old one's gates:
    /// a request the old one has in flight keeps the host's only slot. With other limits the
    /// new fetcher's gates start anew.
    #[tokio::test]
    async fn a_rebuilt_fetcher_keeps_the_per_host_slots_its_predecessor_holds() {
        let limits = FetchLimits {
            per_host_concurrency: 1,
            ..FetchLimits::default()
        };
        let old = Fetcher::new(limits.clone()).unwrap();
        let url = Url::parse("http://feeds.example/a.xml").unwrap();
        let _in_flight = old.hosts.enter(&url).await;
        let mut rebuilt = Fetcher::new(limits).unwrap();
        rebuilt.keep_host_gates_from(&old);
        let wait = tokio::time::timeout(Duration::from_millis(100), rebuilt.hosts.enter(&url));
        assert!(wait.await.is_err(), "the host's one slot is taken");
        let mut wider = Fetcher::new(FetchLimits {
            per_host_concurrency: 2,
            ..FetchLimits::default()
        })
        .unwrap();
        wider.keep_host_gates_from(&old);
        let wait = tokio::time::timeout(Duration::from_millis(100), wider.hosts.enter(&url));
        assert!(wait.await.is_ok(), "other limits, gates of its own");
    }

    #[test]
    fn only_absolute_http_and_https_urls_are_accepted() {
        let cases: &[(&str, bool)] = &[
            ("https://example.org/feed.xml", true),
            ("http://127.0.0.1:8080/rss", true),
            ("  https://example.org/feed  ", true),
            ("HTTPS://EXAMPLE.ORG/", true),
            ("ftp://example.org/feed.xml", false),
            ("file:///etc/passwd", false),
            ("data:text/plain,hello", false),
            ("/relative/feed.xml", false),
            ("example.org/feed.xml", false),
            ("", false),
            ("http://", false),
        ];
        for (input, ok) in cases {
            let result = parse_http_url(input);
            assert_eq!(result.is_ok(), *ok, "{input:?}: {result:?}");
            if let Err(error) = result {
                assert_eq!(error.kind(), "invalid_url", "{input:?}");
            }
        }
    }

    #[test]
    fn the_busy_host_message_names_the_spacing_only_when_there_is_one() {
        let busy = |spacing: Duration| FetchError::BusyHost {
            ceiling: Duration::from_secs(120),
            waited: Duration::from_millis(95_200),
            spacing,
        };
        assert_eq!(
            busy(Duration::ZERO).to_string(),
            "gave up after 120s in all (4 × the timeout), 95.2s of it waiting for a busy \
             host's free slot (per_host_concurrency)"
        );
        assert_eq!(
            busy(Duration::from_millis(1)).to_string(),
            "gave up after 120s in all (4 × the timeout, and the host spacing once for each \
             request a redirect chain may make), 95.2s of it waiting for a busy host's free \
             slot (per_host_concurrency, per_host_spacing_ms)"
        );
    }

    #[test]
    fn stored_validators_become_headers_unless_blank_or_unsendable() {
        let cases: &[(Option<&str>, Option<&str>)] = &[
            (None, None),
            (Some(""), None),
            (Some("   "), None),
            (Some("\"abc\""), Some("\"abc\"")),
            (Some("W/\"v2\" "), Some("W/\"v2\"")),
            (Some("bad\nvalue"), None),
        ];
        for (input, expected) in cases {
            let value = header_value(*input);
            assert_eq!(
                value.as_ref().map(|v| v.to_str().unwrap()),
                *expected,
                "{input:?}"
            );
        }
    }

    /// Answers every connection's first request: `/moved` with a redirect to `/feed`,
    /// anything else with a small feed.
    async fn redirecting_server(at: std::net::IpAddr) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind((at, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    let answer = if buf[..n].starts_with(b"GET /moved ") {
                        "HTTP/1.1 302 Found\r\nLocation: /feed\r\nContent-Length: 0\r\n\
                         Connection: close\r\n\r\n"
                    } else {
                        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\n<rss/>"
                    };
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        addr
    }

    /// The client for public sources' redirects is built when a redirect first needs it, and
    /// only then: most feeds never redirect.
    #[tokio::test]
    async fn the_public_only_client_is_built_at_the_first_redirect_of_a_public_source() {
        let stand_in: std::net::IpAddr = "127.0.0.2".parse().unwrap();
        let addr = redirecting_server(stand_in).await;
        let fetcher = Fetcher::with_network(
            FetchLimits::default(),
            Network::system().with_public_stand_in(stand_in),
        )
        .unwrap();
        let get = |path: &str| FetchRequest {
            url: format!("http://{addr}{path}"),
            ..FetchRequest::default()
        };
        let fetched = |outcome: Result<FetchOutcome, FetchError>| match outcome {
            Ok(FetchOutcome::Fetched(feed)) => feed.final_url,
            other => panic!("expected the feed, got {other:?}"),
        };
        assert!(fetched(fetcher.fetch(&get("/feed")).await).ends_with("/feed"));
        assert!(
            fetcher.public_client.get().is_none(),
            "no redirect, no second client"
        );
        assert!(fetched(fetcher.fetch(&get("/moved")).await).ends_with("/feed"));
        assert!(
            fetcher.public_client.get().is_some(),
            "built for the redirect"
        );
        // Clones share it.
        assert!(fetcher.clone().public_client.get().is_some());
    }

    #[test]
    fn a_fetcher_builds_with_default_limits_and_keeps_them() {
        let fetcher = Fetcher::new(FetchLimits::default()).unwrap();
        assert!(fetcher.limits().user_agent.starts_with("tradefeed/"));
        assert_eq!(fetcher.limits().max_redirects, 5);
    }
}
