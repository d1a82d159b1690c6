//! HTTP fetching: one reqwest client, enforced limits, conditional GET, redirects followed by hand.
//!
//! Returns typed outcomes; reqwest types never leave this module.

mod hosts;
mod response;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::header::{self, HeaderValue};
use tracing::Instrument;
use url::Url;

use hosts::{HostGates, HostPass};

/// Limits and identity applied to every request.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// Time allowed to establish a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange, body included (stops slow-drip servers).
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
    /// The body exceeded the size limit (after decompression).
    #[error("body larger than {limit} bytes")]
    TooLarge {
        /// The limit that was hit.
        limit: u64,
    },
    /// More redirects than allowed, or a loop.
    #[error("too many redirects (limit {0})")]
    TooManyRedirects(u32),
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

/// ", retry after 2026-11-28 03:01:04 UTC" when the server said when, else nothing.
fn retry_note(retry_after: &Option<DateTime<Utc>>) -> String {
    retry_after.map_or_else(String::new, |t| {
        format!(", retry after {}", t.format("%Y-%m-%d %H:%M:%S UTC"))
    })
}

impl FetchError {
    /// A short stable label: `invalid_url`, `connect`, `timeout`, `too_large`, `redirects`,
    /// `gone`, `rate_limited`, `http_status`, `transport`.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::InvalidUrl(_) => "invalid_url",
            FetchError::Connect(_) => "connect",
            FetchError::Timeout(_) => "timeout",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::TooManyRedirects(_) => "redirects",
            FetchError::Gone => "gone",
            FetchError::RateLimited { .. } => "rate_limited",
            FetchError::Status(_) => "http_status",
            FetchError::Transport(_) => "transport",
        }
    }
}

/// The one HTTP client of the process. Cheap to clone (shares the connection pool).
///
/// Every request goes through the per-host gates (`per_host_concurrency` in flight,
/// `per_host_spacing` between starts); waiting at the first gate does not count against
/// `total_timeout`, everything after it (connect, every redirect hop, the body) does.
#[derive(Debug, Clone)]
pub struct Fetcher {
    limits: FetchLimits,
    client: reqwest::Client,
    hosts: Arc<HostGates>,
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
    /// Builds the client with the given limits.
    ///
    /// Redirects are not followed by the client (see [`Fetcher::fetch`]); bodies are
    /// decompressed (gzip, brotli, deflate) before they are counted against the size limit.
    /// The client decodes only a Content-Encoding spelled exactly `gzip`; the gzip bodies it
    /// leaves alone (`x-gzip`, `GZIP`, a gzip file sent with no coding) are inflated after the
    /// read, within the same limit.
    pub fn new(limits: FetchLimits) -> Result<Fetcher, FetchError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Both clamped: the client adds them to `Instant::now()` unchecked, and panics
            // on a value too long for the clock.
            .connect_timeout(limits.connect_timeout.min(LONGEST_TIMER))
            // A per-read inactivity bound inside the client; the total bound around the whole
            // exchange (see `fetch`) is what stops a server that keeps a read alive by dripping.
            .read_timeout(limits.total_timeout.min(LONGEST_TIMER))
            .gzip(true)
            .brotli(true)
            .deflate(true)
            .user_agent(limits.user_agent.as_str())
            .pool_max_idle_per_host(limits.per_host_concurrency.max(1))
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .build()
            .map_err(|error| {
                FetchError::Transport(format!(
                    "building the HTTP client: {}",
                    response::error_chain(&error)
                ))
            })?;
        let hosts = Arc::new(HostGates::new(
            limits.per_host_concurrency,
            limits.per_host_spacing,
        ));
        Ok(Fetcher {
            limits,
            client,
            hosts,
        })
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
    /// with the validators the server sent, falling back to the ones we sent.
    pub async fn fetch(&self, request: &FetchRequest) -> Result<FetchOutcome, FetchError> {
        let url = parse_http_url(&request.url)?;
        let span = tracing::info_span!(
            "fetch",
            url = %url,
            status = tracing::field::Empty,
            bytes = tracing::field::Empty,
            final_url = tracing::field::Empty,
        );
        async {
            let pass = self.hosts.enter(&url).await;
            let started = Instant::now();
            let total = self.limits.total_timeout;
            let result = tokio::time::timeout(total, self.exchange(request, url, pass))
                .await
                .unwrap_or(Err(FetchError::Timeout(total)));
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

    /// The redirect loop and the final response; runs inside the total timeout.
    async fn exchange(
        &self,
        request: &FetchRequest,
        mut url: Url,
        pass: HostPass,
    ) -> Result<FetchOutcome, FetchError> {
        // Held for its drop: the slot at the current host.
        let mut _pass = pass;
        let mut visited = HashSet::from([url.clone()]);
        let mut redirects = 0u32;
        // The target of the longest all-permanent prefix of the chain.
        let mut permanent_redirect: Option<Url> = None;
        let mut all_permanent = true;
        loop {
            let response = self.send(&url, request).await?;
            let status = response.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                let span = tracing::Span::current();
                span.record("status", status);
                if redirects > 0 {
                    span.record("final_url", url.as_str());
                }
                let permanent = permanent_redirect.map(String::from);
                return response::finish(response, request, url, permanent, &self.limits).await;
            }
            let Some(next) = response::location(&response, &url)? else {
                // A redirect status without a usable Location is just a failed status.
                return Err(FetchError::Status(status));
            };
            // Dropping the response before reading its body closes that connection, which is
            // cheaper than draining an unbounded redirect body.
            drop(response);
            redirects += 1;
            if redirects > self.limits.max_redirects || !visited.insert(next.clone()) {
                return Err(FetchError::TooManyRedirects(self.limits.max_redirects));
            }
            if all_permanent && matches!(status, 301 | 308) {
                permanent_redirect = Some(next.clone());
            } else {
                all_permanent = false;
            }
            tracing::debug!(status, location = %next, "following redirect");
            // Leave the old host's slot before queueing at the new one.
            drop(_pass);
            _pass = self.hosts.enter(&next).await;
            url = next;
        }
    }

    /// Sends one GET with the conditional headers.
    async fn send(
        &self,
        url: &Url,
        request: &FetchRequest,
    ) -> Result<reqwest::Response, FetchError> {
        let mut builder = self
            .client
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

    #[test]
    fn a_fetcher_builds_with_default_limits_and_keeps_them() {
        let fetcher = Fetcher::new(FetchLimits::default()).unwrap();
        assert!(fetcher.limits().user_agent.starts_with("tradefeed/"));
        assert_eq!(fetcher.limits().max_redirects, 5);
    }
}
