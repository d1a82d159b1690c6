//! HTTP serving: output feeds, the status page, health checks.
//!
//! Reads only from the store. Rendered feeds are cached until the store's data changes and are
//! served with an ETag, so a feed reader polling every minute costs a hash lookup and a 304.

mod opml;
mod redact;
pub mod render;
mod serve;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use redact::redact_userinfo;
pub use render::{Format, story_id, xml_safe};
pub use serve::{HEADER_READ_TIMEOUT, connection_limit, serve, serve_limited};

use crate::ingest::SharedClassifier;
use crate::store::{MAX_SEARCH_WORDS, Store, StoreError, StoryQuery};

/// Default number of stories in a feed.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest `?limit=` accepted.
pub const MAX_LIMIT: usize = 500;
/// Longest `?q=` accepted, in characters.
const MAX_QUERY_CHARS: usize = 200;
/// Rendered feeds kept at most (then the least recently used goes).
const CACHE_ENTRIES: usize = 256;
/// Bytes of rendered feeds kept at most. Keys come from the request (`limit`, `q`, `source`,
/// and the Host header when no `base_url` is set), and one full-text feed of 500 stories can
/// be megabytes, so a count alone let any client pin hundreds of megabytes: 256 distinct
/// `?limit=` values over a thousand stories held 287 MB. The plain feeds readers poll are
/// tens to hundreds of kilobytes; this keeps dozens of them.
const CACHE_BYTES: usize = 32 << 20;
/// A rendering larger than this is served but not kept: caching it would evict a quarter of
/// the cache for one request.
const CACHE_MAX_ENTRY_BYTES: usize = CACHE_BYTES / 4;

/// What the handlers share.
#[derive(Clone)]
pub struct HttpState {
    /// The database.
    pub store: Store,
    /// For the topic names that exist.
    pub classifier: SharedClassifier,
    /// Settings shown in feeds.
    pub site: Arc<std::sync::RwLock<Site>>,
    cache: Arc<Mutex<FeedCache>>,
    /// The per-source and per-topic gauges of the last scrape that could read the database.
    last_state_gauges: Arc<Mutex<String>>,
    /// Held while a feed is rendered after a cache miss, so that when new data arrives the
    /// many readers asking at that moment wait for one rendering instead of all rendering it.
    render_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Site-wide settings from the config's `[server]` table.
#[derive(Debug, Clone)]
pub struct Site {
    /// Feed title.
    pub title: String,
    /// Public base URL, without trailing slash (`None`: taken from the request's Host).
    pub base_url: Option<String>,
    /// The config's last reload failure, shown on the status page.
    pub config_error: Option<String>,
}

/// What a rendered feed depends on: the data, the request, and the settings a live reload can
/// change (the title and the base URL), so a reload is served at once without clearing the
/// cache by hand.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    version: u64,
    format: Format,
    topic: String,
    query: String,
    base_url: String,
    title: String,
}

impl CacheKey {
    /// Bytes the key's strings hold: the query and the Host-derived base URL come from the
    /// request, so they count against the cache's budget too.
    fn heap_bytes(&self) -> usize {
        self.topic.len() + self.query.len() + self.base_url.len() + self.title.len()
    }
}

/// What one cache entry counts against [`CACHE_BYTES`].
fn entry_bytes(key: &CacheKey, rendered: &Rendered) -> usize {
    rendered.body.len() + key.heap_bytes()
}

struct Rendered {
    body: axum::body::Bytes,
    etag: String,
    last_modified: String,
}

/// Rendered feeds by [`CacheKey`], at most [`CACHE_ENTRIES`] and [`CACHE_BYTES`] of bodies.
/// Entries of an older data version can never be asked for again (the version is part of the
/// key) and go as soon as a newer one is stored. Beyond the limits the one used longest ago
/// goes: a flood of distinct searches evicts one feed at a time instead of emptying the cache
/// that every feed reader relies on.
#[derive(Default)]
struct FeedCache {
    entries: HashMap<CacheKey, (Arc<Rendered>, u64)>,
    /// Counts lookups and inserts; an entry remembers the count of its last use.
    clock: u64,
    /// Sum of the cached bodies' lengths.
    bytes: usize,
    /// The newest data version stored so far.
    version: u64,
}

impl FeedCache {
    fn get(&mut self, key: &CacheKey) -> Option<Arc<Rendered>> {
        self.clock += 1;
        let (rendered, used) = self.entries.get_mut(key)?;
        *used = self.clock;
        Some(Arc::clone(rendered))
    }

    fn insert(&mut self, key: CacheKey, rendered: Arc<Rendered>) {
        self.clock += 1;
        let size = entry_bytes(&key, &rendered);
        // A rendering of data already replaced (it was slower than a newer one) would never
        // be asked for again.
        if key.version < self.version || size > CACHE_MAX_ENTRY_BYTES {
            return;
        }
        if key.version > self.version {
            self.version = key.version;
            self.entries.retain(|k, _| k.version == key.version);
            self.bytes = self
                .entries
                .iter()
                .map(|(k, (r, _))| entry_bytes(k, r))
                .sum();
        }
        if let Some((old, _)) = self.entries.remove(&key) {
            self.bytes -= entry_bytes(&key, &old);
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= CACHE_ENTRIES || self.bytes + size > CACHE_BYTES)
        {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest
                && let Some((old, _)) = self.entries.remove(&oldest)
            {
                self.bytes -= entry_bytes(&oldest, &old);
            }
        }
        self.bytes += size;
        self.entries.insert(key, (rendered, self.clock));
    }
}

impl HttpState {
    /// Builds the shared state.
    pub fn new(store: Store, classifier: SharedClassifier, site: Site) -> HttpState {
        HttpState {
            store,
            classifier,
            site: Arc::new(std::sync::RwLock::new(site)),
            cache: Arc::new(Mutex::new(FeedCache::default())),
            last_state_gauges: Arc::new(Mutex::new(String::new())),
            render_lock: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn topic_exists(&self, topic: &str) -> bool {
        topic == "all"
            || self
                .classifier
                .read()
                .expect("classifier lock poisoned")
                .topic_names()
                .iter()
                .any(|t| t == topic)
    }
}

/// The router with every route.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/", get(status::page))
        .route("/feeds/{file}", get(feed))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/sources.opml", get(opml::sources))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn(count_requests))
        .layer(axum::middleware::map_response(no_sniffing))
        .with_state(state)
}

/// Marks every response `X-Content-Type-Options: nosniff`, so a browser takes its content type
/// as given: error texts echo request input as `text/plain`, and must never be sniffed as HTML.
async fn no_sniffing(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Counts every request by matched route (not raw path: bounded label values) and status.
async fn count_requests(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    crate::telemetry::record_request(&route, response.status().as_u16());
    response
}

async fn metrics(State(state): State<HttpState>) -> Response {
    let (counts, topics, sources) = tokio::join!(
        state.store.counts(),
        state.store.topic_counts(),
        state.store.source_states()
    );
    let gauges = match (counts, topics, sources) {
        (Ok((stories, entries)), Ok(mut topics), Ok(sources)) => {
            // Scores of a topic whose profile was removed are not a series any more.
            topics.retain(|(topic, _)| state.topic_exists(topic));
            let gauges = crate::telemetry::state_gauges(&crate::telemetry::StoredState {
                stories,
                entries,
                topics: &topics,
                sources: &sources,
                read_at: chrono::Utc::now().timestamp(),
            });
            gauges.clone_into(
                &mut state
                    .last_state_gauges
                    .lock()
                    .expect("gauges lock poisoned"),
            );
            gauges
        }
        // The database cannot be read now (/readyz says so): the last values read stay
        // served, so an alert on a source's failures neither resolves nor flaps meanwhile.
        _ => state
            .last_state_gauges
            .lock()
            .expect("gauges lock poisoned")
            .clone(),
    };
    let mut response = crate::telemetry::render(&gauges).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// A 4xx/5xx answer with a plain-text message.
struct HttpError(StatusCode, String);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut response = (self.0, format!("{}\n", self.1)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        response
    }
}

/// `?limit=`, `?source=`, `?q=`, validated.
#[derive(Debug, Default, PartialEq)]
struct FeedParams {
    limit: usize,
    source: Option<String>,
    search: Option<String>,
}

impl FeedParams {
    /// The parameters as a query string in one canonical form: only the parameters that
    /// change the feed, in a fixed order, percent-encoded (so ASCII and XML-safe whatever the
    /// request carried), `limit` only when not the default. The feed's self link and id
    /// carry it, so `?utm_source=…` or a reordering leaves them unchanged.
    fn canonical_query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        if self.limit != DEFAULT_LIMIT {
            query.append_pair("limit", &self.limit.to_string());
        }
        if let Some(source) = &self.source {
            query.append_pair("source", source);
        }
        if let Some(search) = &self.search {
            query.append_pair("q", search);
        }
        query.finish()
    }
}

fn parse_params(raw: Option<&str>) -> Result<FeedParams, String> {
    let mut params = FeedParams {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "limit" => {
                params.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}, got {value:?}")
                    })?;
            }
            "source" => {
                if value.trim().is_empty() {
                    return Err("source must name a source".into());
                }
                params.source = Some(value.trim().to_string());
            }
            "q" => params.search = search_param(&value)?,
            // Feed readers and proxies add their own parameters; ignoring them is the norm.
            _ => {}
        }
    }
    Ok(params)
}

/// A `?q=` value, validated: `None` for a blank one (no search), an error message for one that
/// is too long or has too many words. A search whose text has no words at all is kept: it
/// finds nothing (see [`crate::store::search_words`]).
fn search_param(value: &str) -> Result<Option<String>, String> {
    if value.chars().count() > MAX_QUERY_CHARS {
        return Err(format!("q must be at most {MAX_QUERY_CHARS} characters"));
    }
    let words = crate::store::search_words(value).len();
    if words > MAX_SEARCH_WORDS {
        return Err(format!(
            "q must have at most {MAX_SEARCH_WORDS} words, got {words}"
        ));
    }
    let value = value.trim();
    Ok((!value.is_empty()).then(|| value.to_string()))
}

/// The answer to a failed story query: a search the index cannot run is the asker's fault
/// (400); anything else means the database cannot answer now (503, logged).
fn query_failed(e: StoreError) -> HttpError {
    match e {
        StoreError::Search(message) => HttpError(
            StatusCode::BAD_REQUEST,
            format!("q cannot be searched for: {message}"),
        ),
        e => {
            tracing::error!(error = %e, "story query failed");
            HttpError(
                StatusCode::SERVICE_UNAVAILABLE,
                "the database is unavailable; try again shortly".into(),
            )
        }
    }
}

fn base_url(site: &Site, headers: &HeaderMap) -> String {
    if let Some(base) = &site.base_url {
        return base.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            // A DNS name is at most 253 characters; with a port, 260 is plenty.
            h.len() <= 260
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}

async fn feed(
    State(state): State<HttpState>,
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    let (topic, format) = file
        .rsplit_once('.')
        .and_then(|(topic, ext)| Some((topic, Format::from_extension(ext)?)))
        .ok_or_else(|| {
            HttpError(
                StatusCode::NOT_FOUND,
                format!("no such feed {file:?}: use /feeds/TOPIC.atom, .rss or .json"),
            )
        })?;
    if !state.topic_exists(topic) {
        return Err(HttpError(
            StatusCode::NOT_FOUND,
            format!("unknown topic {topic:?}"),
        ));
    }
    let params =
        parse_params(query.as_deref()).map_err(|m| HttpError(StatusCode::BAD_REQUEST, m))?;
    let site = state.site.read().expect("site lock poisoned").clone();
    let base = base_url(&site, &headers);
    let key = CacheKey {
        version: state.store.data_version(),
        format,
        topic: topic.to_string(),
        // The validated parameters, not the raw query: `?utm_source=…`, repeats and reorderings
        // share one entry instead of each costing a query and a render.
        query: params.canonical_query(),
        base_url: base.clone(),
        title: site.title.clone(),
    };
    let lookup = || state.cache.lock().expect("cache lock poisoned").get(&key);
    let mut cached = lookup();
    let _rendering = match cached {
        Some(_) => None,
        None => {
            let guard = state.render_lock.lock().await;
            // Another request may have rendered it while this one waited.
            cached = lookup();
            Some(guard)
        }
    };
    let rendered = match cached {
        Some(r) => r,
        None => {
            let stories = state
                .store
                .stories(StoryQuery {
                    topic: (topic != "all").then(|| topic.to_string()),
                    source: params.source.clone(),
                    search: params.search.clone(),
                    limit: params.limit,
                })
                .await
                .map_err(query_failed)?;
            let meta = render::FeedMeta {
                title: if topic == "all" {
                    site.title.clone()
                } else {
                    format!("{} — {topic}", site.title)
                },
                topic: topic.to_string(),
                base_url: base,
                instance: state.store.instance().to_string(),
                query: key.query.clone(),
            };
            let mut stories_for_render = stories;
            stories_for_render.iter_mut().for_each(redact::redact_story);
            let (body, last) = tokio::task::spawn_blocking(move || {
                let body = render::render(format, &meta, &stories_for_render);
                (body, render::last_updated(&stories_for_render))
            })
            .await
            .map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
            let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&body));
            let rendered = Arc::new(Rendered {
                body: axum::body::Bytes::from(body),
                etag,
                last_modified: render::http_date(last),
            });
            state
                .cache
                .lock()
                .expect("cache lock poisoned")
                .insert(key, Arc::clone(&rendered));
            rendered
        }
    };

    let not_modified = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| none_match_fails(v, &rendered.etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = rendered.body.clone().into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&rendered.etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&rendered.last_modified) {
        h.insert(header::LAST_MODIFIED, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(response)
}

/// Whether an `If-None-Match` value names `etag` (a quoted strong tag), so the answer is 304.
/// RFC 9110 13.1.2: `*` matches any current representation, and the comparison is weak:
/// `W/"x"` matches `"x"` (a proxy that compresses, such as nginx with gzip, weakens the ETags
/// it passes on, and readers send them back so). The value is a comma-separated list of entity
/// tags, whose opaque part may itself hold commas.
fn none_match_fails(value: &str, etag: &str) -> bool {
    const SEPARATORS: [char; 3] = [' ', '\t', ','];
    if value.trim_matches(SEPARATORS) == "*" {
        return true;
    }
    let mut rest = value.trim_start_matches(SEPARATORS);
    while !rest.is_empty() {
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        // The quoted tag: `"`, the opaque part (which holds no `"`), `"`.
        let Some(len) = tag
            .strip_prefix('"')
            .and_then(|t| t.find('"'))
            .map(|i| i + 2)
        else {
            return false;
        };
        if tag[..len] == *etag {
            return true;
        }
        rest = tag[len..].trim_start_matches(SEPARATORS);
    }
    false
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<HttpState>) -> Response {
    match state.store.counts().await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "database unavailable: {}\n",
                redact_userinfo(&e.to_string())
            ),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_canonical_query_keeps_only_what_changes_the_feed_in_one_ascii_form() {
        let cases = [
            (None, ""),
            (Some("utm_source=x&fbclid=y"), ""),
            (Some("limit=50"), ""),
            (Some("q=steel&limit=10&x=1"), "limit=10&q=steel"),
            (Some("source=A&source=B+C"), "source=B+C"),
            (Some("q=%20steel%20tariffs%20"), "q=steel+tariffs"),
            (
                Some("x=\u{FFFE}&q=Z%C3%B6lle\u{FFFF}"),
                "q=Z%C3%B6lle%EF%BF%BF",
            ),
            (Some("q=a%26b%3Dc%23d"), "q=a%26b%3Dc%23d"),
        ];
        for (raw, want) in cases {
            assert_eq!(
                parse_params(raw).unwrap().canonical_query(),
                want,
                "{raw:?}"
            );
        }
    }

    /// A daemon's HTTP side on an empty database in `dir`, served on 127.0.0.1; its base URL.
    async fn serve_empty(dir: &std::path::Path) -> (HttpState, String) {
        let store = Store::open(&dir.join("tradefeed.db"), crate::store::Access::ReadWrite)
            .expect("a fresh database opens");
        let classifier = Arc::new(std::sync::RwLock::new(Arc::new(
            crate::classify::Classifier::builtin(),
        )));
        let site = Site {
            title: "tradefeed".into(),
            base_url: None,
            config_error: None,
        };
        let state = HttpState::new(store, classifier, site);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (state, base)
    }

    /// While the database cannot be read, /metrics keeps serving the per-source gauges last
    /// read: an alert on a source's failures must not resolve because the store is down.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metrics_keep_the_last_source_gauges_while_the_database_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let (state, base) = serve_empty(dir.path()).await;
        let source = crate::domain::Source {
            name: "GaugeHeld".into(),
            url: "http://held.example/feed".into(),
            schedule: crate::domain::Schedule::parse("@hourly").unwrap(),
            enabled: true,
            tags: Vec::new(),
            priority: 0,
            cluster: false,
        };
        state
            .store
            .sync_sources(std::slice::from_ref(&source), |_, t| t)
            .await
            .unwrap();
        let line = "tradefeed_source_consecutive_failures{source=\"GaugeHeld\"} 0";
        let scrape = || async {
            let r = reqwest::get(format!("{base}/metrics")).await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        };
        // When the gauges were last read: whole seconds, so a scrape a second later differs.
        let read_at = |metrics: &str| -> f64 {
            let line = metrics
                .lines()
                .find(|l| l.starts_with("tradefeed_state_read_timestamp_seconds "))
                .unwrap_or_else(|| panic!("no read timestamp in {metrics}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        let good = scrape().await;
        assert!(good.contains(line));
        let good_read_at = read_at(&good);
        let now = chrono::Utc::now().timestamp() as f64;
        assert!(
            (now - good_read_at).abs() <= 2.0,
            "{good_read_at} vs now {now}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

        // The sources table goes away behind the daemon: its reads fail from now on.
        rusqlite::Connection::open(dir.path().join("tradefeed.db"))
            .unwrap()
            .execute_batch("ALTER TABLE sources RENAME TO sources_gone")
            .unwrap();
        assert!(state.store.source_states().await.is_err());
        let metrics = scrape().await;
        assert!(metrics.contains(line), "{metrics}");
        assert_eq!(metrics.matches(line).count(), 1, "{metrics}");
        // ...and say how old they are: the read timestamp stays at the last good read.
        assert_eq!(read_at(&metrics), good_read_at, "{metrics}");
        state.store.close().await;
    }

    fn cached_queries(state: &HttpState) -> Vec<String> {
        let cache = state.cache.lock().unwrap();
        let mut queries: Vec<String> = cache.entries.keys().map(|k| k.query.clone()).collect();
        queries.sort();
        queries
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ignored_parameters_share_one_cache_entry_and_a_full_cache_evicts_one_feed() {
        let dir = tempfile::tempdir().unwrap();
        let (state, base) = serve_empty(dir.path()).await;
        let get = |path: String| {
            let url = format!("{base}{path}");
            async move {
                let r = reqwest::get(&url).await.unwrap();
                assert_eq!(r.status(), 200, "{url}");
            }
        };
        for junk in 0..20 {
            get(format!("/feeds/all.atom?utm_source={junk}&fbclid=x{junk}")).await;
        }
        get("/feeds/all.atom?limit=50".into()).await;
        assert_eq!(cached_queries(&state), [""], "one entry for the plain feed");

        // Fill the cache with distinct searches; the plain feed is read now and then, as feed
        // readers do, and must survive the flood.
        for n in 0..CACHE_ENTRIES + 40 {
            get(format!("/feeds/all.atom?q=flood{n}")).await;
            if n % 50 == 0 {
                get("/feeds/all.atom".into()).await;
            }
        }
        let queries = cached_queries(&state);
        assert_eq!(queries.len(), CACHE_ENTRIES, "full, not cleared");
        assert!(queries.contains(&String::new()), "the plain feed stays");
        let last = format!("q=flood{}", CACHE_ENTRIES + 39);
        assert!(queries.contains(&last), "the newest search is cached");
        assert!(
            !queries.contains(&"q=flood0".to_string()),
            "the oldest search went"
        );
        state.store.close().await;
    }

    fn cache_key(version: u64, query: &str) -> CacheKey {
        CacheKey {
            version,
            format: Format::Atom,
            topic: "all".into(),
            query: query.into(),
            base_url: "http://localhost".into(),
            title: "tradefeed".into(),
        }
    }

    fn rendering(bytes: usize) -> Arc<Rendered> {
        Arc::new(Rendered {
            body: axum::body::Bytes::from(vec![b'x'; bytes]),
            etag: "\"0\"".into(),
            last_modified: String::new(),
        })
    }

    /// Checks the running byte count against the entries it counts.
    fn counted_bytes(cache: &FeedCache) -> usize {
        let sum = cache
            .entries
            .iter()
            .map(|(k, (r, _))| entry_bytes(k, r))
            .sum();
        assert_eq!(cache.bytes, sum, "the byte count matches the entries");
        sum
    }

    #[test]
    fn the_feed_cache_holds_at_most_its_byte_budget_and_skips_huge_renderings() {
        let mut cache = FeedCache::default();
        let mb = 1 << 20;
        cache.insert(cache_key(1, ""), rendering(100_000));
        for n in 0..100 {
            cache.insert(cache_key(1, &format!("limit={n}")), rendering(mb));
            if n % 10 == 0 {
                assert!(
                    cache.get(&cache_key(1, "")).is_some(),
                    "the plain feed stays"
                );
            }
        }
        assert!(counted_bytes(&cache) <= CACHE_BYTES);
        assert!(
            cache.entries.len() >= CACHE_BYTES / mb - 1,
            "full, not cleared"
        );
        assert!(
            cache.get(&cache_key(1, "limit=99")).is_some(),
            "the newest is kept"
        );
        assert!(
            cache.get(&cache_key(1, "limit=0")).is_none(),
            "the oldest went"
        );

        // Stored again under the same key: counted once.
        cache.insert(cache_key(1, "limit=99"), rendering(2 * mb));
        cache.insert(cache_key(1, "limit=99"), rendering(mb));
        assert!(counted_bytes(&cache) <= CACHE_BYTES);

        let huge = cache_key(1, "limit=500");
        cache.insert(huge.clone(), rendering(CACHE_MAX_ENTRY_BYTES + 1));
        assert!(cache.get(&huge).is_none(), "served, not kept");
        assert!(
            cache.get(&cache_key(1, "")).is_some(),
            "and it evicted nothing"
        );
    }

    #[test]
    fn the_base_url_takes_a_plausible_host_header_only() {
        let site = Site {
            title: "t".into(),
            base_url: None,
            config_error: None,
        };
        let with_host = |host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            base_url(&site, &headers)
        };
        assert_eq!(with_host("feeds.example:8080"), "http://feeds.example:8080");
        assert_eq!(with_host("[::1]:8080"), "http://[::1]:8080");
        assert_eq!(with_host("a/b"), "http://localhost");
        // A cache key (and a feed's links) per invented megabyte-long host name: no.
        let long = format!("{}.example", "a".repeat(300));
        assert_eq!(with_host(&long), "http://localhost");
    }

    #[test]
    fn a_newer_data_version_drops_the_older_renderings_at_once() {
        let mut cache = FeedCache::default();
        for n in 0..10 {
            cache.insert(cache_key(1, &format!("q=a{n}")), rendering(1000));
        }
        cache.insert(cache_key(2, ""), rendering(1000));
        assert_eq!(
            cache.entries.len(),
            1,
            "version 1 can never be asked for again"
        );
        assert_eq!(
            counted_bytes(&cache),
            1000 + cache_key(2, "").heap_bytes(),
            "the body and the key's strings"
        );
        // A rendering of version 1 that finished after version 2 arrived is not kept.
        cache.insert(cache_key(1, "q=late"), rendering(1000));
        assert!(cache.get(&cache_key(1, "q=late")).is_none());
        assert_eq!(cache.entries.len(), 1);
    }

    #[test]
    fn if_none_match_compares_weakly_and_reads_lists_and_star() {
        let etag = "\"00ab\"";
        let matching = [
            "\"00ab\"",
            "W/\"00ab\"",
            "*",
            " * ",
            "\"ffff\", W/\"00ab\"",
            "\"ffff\",\"00ab\"",
            "W/\"a,b\", \"00ab\"",
            ",\t\"00ab\" ,",
        ];
        for value in matching {
            assert!(none_match_fails(value, etag), "{value:?} matches {etag}");
        }
        let other = [
            "",
            "\"ffff\"",
            "W/\"ffff\"",
            "00ab",
            "w/\"00ab\"",
            "\"00ab",
            "\"00abc\"",
            "\"00a\"",
            "W/\"a,\"00ab\"",
            "*x",
        ];
        for value in other {
            assert!(
                !none_match_fails(value, etag),
                "{value:?} does not match {etag}"
            );
        }
    }

    #[test]
    fn feed_parameters_are_validated_with_messages() {
        let ok = [
            (None, DEFAULT_LIMIT, None, None),
            (Some("limit=10"), 10, None, None),
            (Some("limit=500&source=BBC"), 500, Some("BBC"), None),
            (
                Some("q=steel+tariffs&utm_source=x"),
                DEFAULT_LIMIT,
                None,
                Some("steel tariffs"),
            ),
        ];
        for (raw, limit, source, search) in ok {
            let p = parse_params(raw).unwrap();
            assert_eq!(p.limit, limit, "{raw:?}");
            assert_eq!(p.source.as_deref(), source, "{raw:?}");
            assert_eq!(p.search.as_deref(), search, "{raw:?}");
        }
        let seventeen = format!("q={}", ["steel"; 17].join("+"));
        for bad in [
            "limit=0",
            "limit=501",
            "limit=ten",
            "limit=-1",
            "source=",
            &seventeen,
        ] {
            assert!(parse_params(Some(bad)).is_err(), "{bad} should be rejected");
        }
        let sixteen = format!("q={}", ["steel"; 16].join("+"));
        assert!(parse_params(Some(&sixteen)).is_ok());
        // Pieces without a letter or digit are no words: they count towards no limit.
        let punctuation = format!("q=steel+{}", ["!"; 30].join("+"));
        assert!(parse_params(Some(&punctuation)).is_ok());
    }
}
