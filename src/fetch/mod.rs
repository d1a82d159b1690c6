//! HTTP fetching: one reqwest client, enforced limits, conditional GET, redirects followed by hand.
//!
//! Returns typed outcomes; reqwest types never leave this module.

use std::time::Duration;

use chrono::{DateTime, Utc};

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
    /// Concurrent requests allowed to one host.
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
    #[error("HTTP {status}, retry after {retry_after:?}")]
    RateLimited {
        /// 429 or 503.
        status: u16,
        /// Parsed Retry-After (seconds or HTTP date), if any.
        retry_after: Option<DateTime<Utc>>,
    },
    /// Any other non-success status.
    #[error("HTTP {0}")]
    Status(u16),
    /// The connection broke while reading, or another transport error.
    #[error("transport error: {0}")]
    Transport(String),
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
#[derive(Debug, Clone)]
pub struct Fetcher {
    limits: FetchLimits,
}

impl Fetcher {
    /// Builds the client with the given limits.
    pub fn new(limits: FetchLimits) -> Result<Fetcher, FetchError> {
        todo!("fetch helper: build reqwest client with {limits:?}")
    }

    /// The limits in force.
    pub fn limits(&self) -> &FetchLimits {
        &self.limits
    }

    /// Performs one conditional GET, following redirects by hand, within every limit.
    pub async fn fetch(&self, request: &FetchRequest) -> Result<FetchOutcome, FetchError> {
        todo!("fetch helper: {request:?}")
    }
}
