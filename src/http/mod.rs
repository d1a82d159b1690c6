//! HTTP serving: output feeds, the status page, health checks.
//!
//! Reads only from the store. Rendered feeds are cached until the store's data changes and are
//! served with an ETag, so a feed reader polling every minute costs a hash lookup and a 304.
//! A cached feed keeps a gzip form too, made once, for the clients that accept gzip (a feed
//! too large to keep in both forms keeps that one alone, inflated for the other clients' GETs;
//! their HEADs are answered without inflating it).

mod opml;
mod redact;
pub mod render;
mod serve;
mod status;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub use redact::redact_userinfo;
pub use render::{Format, story_id, xml_safe};
pub use serve::{
    CLOSE_GRACE, ConnectionSlots, HEADER_READ_TIMEOUT, ServeLimits, WRITE_STALL_TIMEOUT,
    connection_limit, serve, serve_limited, serve_shared,
};

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
/// A rendering larger than this (both forms together) keeps its gzip form alone, and one whose
/// gzip form is larger too is served but not kept: caching it would evict a quarter of the
/// cache for one request (see [`FeedCache::fitting`]). Its validators are kept (see
/// [`Validator`]), so a reader's conditional request for it is answered 304 without rendering
/// it again.
const CACHE_MAX_ENTRY_BYTES: usize = CACHE_BYTES / 4;
/// How much of a body [`Rendered::gzip_within`] compresses between two looks at its output.
const GZIP_CHUNK_BYTES: usize = 64 << 10;
/// A feed body shorter than this is sent uncompressed. With its headers (about 300 bytes) it
/// fits one TCP segment (1460 bytes) as it is, so gzip would save no packet and no round trip,
/// only add its 18 bytes of framing and the client's inflating (an empty feed is ~500 bytes).
const GZIP_MIN_BYTES: usize = 1024;
/// flate2 level of the gzip form. Measured on real renderings (245 KB Atom of 50 full-text
/// stories; 537 KB of 150): level 1 gives 31.9% / 30.8% of the size in 1.4 / 2.9 ms, level 6
/// 24.5% / 23.7% in 6.9 / 15 ms, level 9 24.4% / 23.6% in 11.9 / 21 ms. A rendering is
/// compressed once and sent to every reader until the data changes, so level 6's quarter
/// fewer bytes than level 1 are worth its few milliseconds; level 9 adds time for nothing.
const GZIP_LEVEL: u32 = 6;
/// Feeds whose validators are kept at most (then the least recently used goes). A validator
/// is a few hundred bytes: its key and an ETag.
const VALIDATOR_ENTRIES: usize = 4 * CACHE_ENTRIES;

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
    /// Who may render a feed now.
    renders: Arc<RenderGate>,
    /// Called with each feed about to be rendered, on the rendering thread (tests count and
    /// hold renderings with it).
    render_hook: Option<RenderHook>,
}

/// See [`HttpState::render_hook`].
type RenderHook = Arc<dyn Fn(&FeedKey) + Send + Sync>;

/// Renderings after a cache miss go through here. One per cache key at a time, so that when
/// new data arrives the many readers asking for a feed at that moment wait for one rendering
/// instead of all rendering it (those waiting share it, also one too large to cache); different
/// feeds do not wait for each other, but at most [`RenderGate::permits`] render at once
/// (sanitising a story's HTML is CPU work, and a flood of distinct searches must not hold
/// every blocking thread). A rendering keeps its permit and its key's turn until it is done,
/// also when the client that asked for it has gone.
struct RenderGate {
    /// Each cache key being rendered or waited for: its turn and how many hold it.
    in_flight: Mutex<HashMap<CacheKey, (Arc<KeySlot>, usize)>>,
    /// One per rendering in progress: half the cores, at least 2 and at most 8.
    permits: Arc<tokio::sync::Semaphore>,
    /// Bodies inflated for identity clients from renderings kept in gzip form alone (see
    /// [`identity_body`]); tests read it.
    inflated: std::sync::atomic::AtomicU64,
}

/// A cache key's turn to render: locked while one request renders it, then holding the
/// rendering for those that waited (it may be too large for the cache).
type KeySlot = tokio::sync::Mutex<Option<Arc<Rendered>>>;

impl RenderGate {
    fn new() -> RenderGate {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        RenderGate::with_permits((cores / 2).clamp(2, 8))
    }

    fn with_permits(permits: usize) -> RenderGate {
        RenderGate {
            in_flight: Mutex::new(HashMap::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(permits)),
            inflated: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// A place in the queue for rendering `key`: lock its `slot` before looking again.
    fn turn(self: &Arc<Self>, key: &CacheKey) -> KeyTurn {
        let mut in_flight = self.in_flight.lock().expect("render gate lock poisoned");
        let (slot, users) = in_flight.entry(key.clone()).or_default();
        *users += 1;
        KeyTurn {
            gate: Arc::clone(self),
            key: key.clone(),
            slot: Arc::clone(slot),
        }
    }
}

/// A hold on one cache key's [`KeySlot`], removed from the gate when the last holder drops it.
struct KeyTurn {
    gate: Arc<RenderGate>,
    key: CacheKey,
    slot: Arc<KeySlot>,
}

impl Drop for KeyTurn {
    fn drop(&mut self) {
        let mut in_flight = self
            .gate
            .in_flight
            .lock()
            .expect("render gate lock poisoned");
        if let Some((_, users)) = in_flight.get_mut(&self.key) {
            *users -= 1;
            if *users == 0 {
                in_flight.remove(&self.key);
            }
        }
    }
}

/// What a rendering holds until it is done: its key's turn (locked) and a render permit.
struct RenderHold {
    turn: KeyTurn,
    slot: tokio::sync::OwnedMutexGuard<Option<Arc<Rendered>>>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// The status page's Content-Security-Policy: no script, no fetch, no frame, nothing loaded
/// but its own inline style; framed by no other site (its search form cannot be clickjacked);
/// no `<base>` and no form target elsewhere.
pub const STATUS_PAGE_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Site-wide settings from the config's `[server]` table.
#[derive(Debug, Clone)]
pub struct Site {
    /// Feed title.
    pub title: String,
    /// Public base URL, without trailing slash (`None`: taken from the request's Host).
    pub base_url: Option<String>,
    /// The config's last reload failure, shown on the status page.
    pub config_error: Option<String>,
    /// Why HTTP is not served where the config's `[server] listen` says (a reload's bind
    /// failed), shown on the status page.
    pub listen_error: Option<String>,
    /// How many reloads changed `title` or `base_url`. Part of each feed's cache key: a
    /// reload that undoes a change must not bring back the validator of the feed as served
    /// before it, whose `Last-Modified` would step back to before the change (a reader that
    /// saw the changed feed and sends only `If-Modified-Since` would get 304s for good).
    pub settings_changes: u64,
}

/// Which feed: what a rendering depends on besides the data. The request, and the settings a
/// live reload can change (the title and the base URL), so a reload is served at once without
/// clearing the cache by hand.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FeedKey {
    format: Format,
    topic: String,
    query: String,
    base_url: String,
    title: String,
    settings_changes: u64,
}

impl FeedKey {
    /// Bytes the key's strings hold: the query and the Host-derived base URL come from the
    /// request, so they count against the cache's budget too.
    fn heap_bytes(&self) -> usize {
        self.topic.len() + self.query.len() + self.base_url.len() + self.title.len()
    }
}

/// A feed as rendered from one data version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    version: u64,
    feed: FeedKey,
}

/// What one cache entry counts against [`CACHE_BYTES`]: the forms of the body it holds (the
/// gzip one once made) and the key.
fn entry_bytes(feed: &FeedKey, rendered: &Rendered) -> usize {
    rendered.body.as_ref().map_or(0, axum::body::Bytes::len)
        + rendered.gzip.get().map_or(0, |gz| gz.len())
        + feed.heap_bytes()
}

/// A feed rendered from one data version, with its ETags ready to send.
struct Rendered {
    version: u64,
    /// The body as rendered; `None` only in a rendering the cache keeps in its gzip form alone
    /// (see [`FeedCache::fitting`]), whose identity clients get the gzip form inflated.
    body: Option<axum::body::Bytes>,
    /// The body's length, kept also without it: a HEAD of the identity form of a rendering
    /// kept in gzip form alone answers its Content-Length without inflating it.
    identity_len: usize,
    etag: String,
    etag_header: HeaderValue,
    /// The ETag of the gzip form (see [`gzip_etag`]); `None` for a body too small to compress
    /// ([`GZIP_MIN_BYTES`]).
    gzip_etag_header: Option<HeaderValue>,
    /// The body gzipped, made once on the first request that takes it (see [`Rendered::gzip`]).
    gzip: OnceLock<axum::body::Bytes>,
}

impl Rendered {
    fn new(version: u64, body: Vec<u8>) -> Rendered {
        let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&body));
        Rendered {
            version,
            gzip_etag_header: (body.len() >= GZIP_MIN_BYTES).then(|| gzip_etag_header(&etag)),
            identity_len: body.len(),
            body: Some(axum::body::Bytes::from(body)),
            etag_header: HeaderValue::from_str(&etag).expect("a hex ETag is a header value"),
            etag,
            gzip: OnceLock::new(),
        }
    }

    /// The body gzipped, compressed now if no request has needed it yet (CPU work of a few
    /// milliseconds: call it on a blocking thread). Others asking meanwhile wait for it.
    fn gzip(&self) -> &axum::body::Bytes {
        self.gzip.get_or_init(|| {
            // A rendering without its body has its gzip form (see [`Rendered::gzip_only`]).
            let body = self.body.as_deref().unwrap_or_default();
            gzip_within(body, usize::MAX)
                .expect("no gzip form is past usize::MAX bytes")
                .into()
        })
    }

    /// Makes the gzip form only if it comes to at most `limit` bytes; whether it is made. For
    /// a body too large to keep asked for by a client that does not take gzip: its gzip form is
    /// made only to be kept in its stead (see [`FeedCache::fitting`]), so the compression stops
    /// as soon as its output is past what could be kept (a 50 MB rendering would otherwise
    /// cost seconds of compression, thrown away, on every such request).
    fn gzip_within(&self, limit: usize) -> bool {
        if self.gzip.get().is_some() {
            return true;
        }
        let body = self.body.as_deref().unwrap_or_default();
        let Some(gzip) = gzip_within(body, limit) else {
            return false;
        };
        let _ = self.gzip.set(gzip.into());
        true
    }

    /// This rendering without its body, if its gzip form is made: what the cache keeps of a
    /// feed whose two forms together are too large to keep (see [`FeedCache::fitting`]).
    fn gzip_only(&self) -> Option<Rendered> {
        let gzip = self.gzip.get()?.clone();
        Some(Rendered {
            version: self.version,
            body: None,
            identity_len: self.identity_len,
            etag: self.etag.clone(),
            etag_header: self.etag_header.clone(),
            gzip_etag_header: self.gzip_etag_header.clone(),
            gzip: OnceLock::from(gzip),
        })
    }

    /// The body, inflated from the gzip form in a rendering kept without it (CPU work: call it
    /// on a blocking thread).
    fn identity(&self) -> axum::body::Bytes {
        if let Some(body) = &self.body {
            return body.clone();
        }
        let gzip = self.gzip.get().map_or(&[][..], |gz| &gz[..]);
        let mut body = Vec::with_capacity(gzip.len() * 4);
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gzip), &mut body)
            .expect("inflating our own gzip form in memory cannot fail");
        axum::body::Bytes::from(body)
    }
}

/// `body` gzipped at [`GZIP_LEVEL`], or `None` as soon as the output is past `limit` bytes
/// (looked at every [`GZIP_CHUNK_BYTES`] of input, and at the end).
fn gzip_within(body: &[u8], limit: usize) -> Option<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity((body.len() / 3).min(limit)),
        flate2::Compression::new(GZIP_LEVEL),
    );
    for chunk in body.chunks(GZIP_CHUNK_BYTES) {
        encoder
            .write_all(chunk)
            .expect("writing to a Vec cannot fail");
        if encoder.get_ref().len() > limit {
            return None;
        }
    }
    let gzip = encoder.finish().expect("writing to a Vec cannot fail");
    (gzip.len() <= limit).then_some(gzip)
}

/// The ETag of the gzip form of the body tagged `etag` (`"…"`): `"…-gz"`. A different tag
/// from the identity form's, so that no cache mixes the two, and derived from it, so that
/// comparing with it allocates nothing (see [`none_match_fails`]).
fn gzip_etag(etag: &str) -> String {
    let open = etag.strip_suffix('"').unwrap_or(etag);
    format!("{open}-gz\"")
}

/// [`gzip_etag`] as a header value.
fn gzip_etag_header(etag: &str) -> HeaderValue {
    HeaderValue::from_str(&gzip_etag(etag)).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// What a feed's conditional requests are answered from: its ETag for a data version, and
/// when this server first served that content (`Last-Modified`). Kept per feed across data
/// versions, so a new version that renders the same feed keeps its date, and for renderings
/// too large to cache, so a conditional request for one is answered without rendering it.
///
/// `modified` is the time this process first served the feed's current content, not its
/// newest story's date: a story arriving with an older date (a new source's backlog), a new
/// outlet on a story, a prune or a re-scoring changes a feed without a newer story date, and a
/// reader sending only `If-Modified-Since` would never see it. It only ever moves forward.
/// An HTTP date has whole seconds: `modified_twice` says the content changed again within the
/// second `modified` names, so a reader holding that date may hold an older content.
///
/// Immutable once made (a change makes a new one), and shared by `Arc`, so a cached answer
/// costs no allocation: its header values are made once here.
#[derive(Debug, PartialEq)]
struct Validator {
    version: u64,
    etag: String,
    /// Unix seconds.
    modified: i64,
    modified_twice: bool,
    etag_header: HeaderValue,
    /// The gzip form's ETag, if the feed has one (its body is not too small to compress).
    gzip_etag_header: Option<HeaderValue>,
    /// `modified` as an HTTP date.
    modified_header: HeaderValue,
}

impl Validator {
    fn new(
        version: u64,
        etag: &str,
        gzip: bool,
        modified: i64,
        modified_twice: bool,
    ) -> Arc<Validator> {
        Arc::new(Validator {
            version,
            etag: etag.to_string(),
            modified,
            modified_twice,
            etag_header: HeaderValue::from_str(etag)
                .unwrap_or_else(|_| HeaderValue::from_static("\"\"")),
            gzip_etag_header: gzip.then(|| gzip_etag_header(etag)),
            modified_header: http_date_header(modified),
        })
    }
}

/// Unix seconds as an HTTP-date header value.
fn http_date_header(secs: i64) -> HeaderValue {
    let date = chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default();
    HeaderValue::from_str(&render::http_date(date)).expect("an HTTP date is a header value")
}

/// What the cache keeps of one feed: its validator and its rendering, if any.
struct FeedState {
    validator: Option<Arc<Validator>>,
    /// When the feed was last looked up or noted (the clock).
    used: u64,
    rendered: Option<Arc<Rendered>>,
    /// What `rendered` counts against [`CACHE_BYTES`] now: its gzip form is made after it is
    /// stored, and counted then (see [`FeedCache::grown`]).
    rendered_bytes: usize,
    /// When the rendering was last served or stored (the clock).
    rendered_used: u64,
}

impl FeedState {
    /// Drops the rendering, if any; the bytes it counted.
    fn drop_rendering(&mut self) -> Option<usize> {
        self.rendered.take()?;
        Some(std::mem::take(&mut self.rendered_bytes))
    }
}

/// Each feed's [`Validator`] and rendering, in one map keyed by [`FeedKey`] so that a cached
/// answer is one hash lookup. At most [`VALIDATOR_ENTRIES`] feeds (then the one looked up
/// longest ago goes, with its rendering), at most [`CACHE_ENTRIES`] renderings and
/// [`CACHE_BYTES`] of them. A feed keeps one rendering, of the data version it was rendered
/// from; renderings of an older data version can never be asked for again and go as soon as
/// a newer one is stored. Beyond the limits the rendering used longest ago goes: a flood of
/// distinct searches evicts one feed at a time instead of emptying the cache that every feed
/// reader relies on.
struct FeedCache {
    feeds: HashMap<FeedKey, FeedState>,
    /// Counts lookups and inserts; an entry remembers the count of its last use.
    clock: u64,
    /// How many feeds have a rendering.
    rendered: usize,
    /// What the renderings count against [`CACHE_BYTES`].
    bytes: usize,
    /// The newest data version stored so far.
    version: u64,
    /// Largest rendering kept in both forms, and in its gzip form alone
    /// ([`CACHE_MAX_ENTRY_BYTES`]; tests lower it).
    max_entry_bytes: usize,
    /// The newest `modified` of a validator dropped (for room, or at a settings change), or
    /// when this process started: a feed whose validator is recorded afresh may have been
    /// served with that date before.
    forgotten_modified: i64,
    /// The newest [`Site::settings_changes`] of a key looked up or noted.
    settings_changes: u64,
}

impl Default for FeedCache {
    fn default() -> FeedCache {
        FeedCache {
            feeds: HashMap::new(),
            clock: 0,
            rendered: 0,
            bytes: 0,
            version: 0,
            max_entry_bytes: CACHE_MAX_ENTRY_BYTES,
            forgotten_modified: chrono::Utc::now().timestamp(),
            settings_changes: 0,
        }
    }
}

/// What the cache can answer a feed request with.
enum Hit {
    /// The reader's copy is current: 304.
    NotModified(Arc<Validator>),
    /// The rendering, and its validator if it is of the newest data seen.
    Rendered(Arc<Rendered>, Option<Arc<Validator>>),
}

/// The validator after `version` of a feed rendered to `etag` (with a gzip form if `gzip`) is
/// served at `now` (Unix seconds), given the feed's current one: `None` to keep `current`,
/// else the new one. (`forgotten` stands for a missing one's date.)
fn next_validator(
    current: Option<&Validator>,
    version: u64,
    (etag, gzip): (&str, bool),
    now: i64,
    forgotten: i64,
) -> Option<Arc<Validator>> {
    let Some(current) = current else {
        let modified = now.max(forgotten);
        return Some(Validator::new(
            version,
            etag,
            gzip,
            modified,
            modified == forgotten,
        ));
    };
    if current.etag != etag {
        let modified = now.max(current.modified);
        return Some(Validator::new(
            version,
            etag,
            gzip,
            modified,
            modified == current.modified,
        ));
    }
    if current.modified_twice && now > current.modified {
        // Unchanged since: a later date lets readers holding it get 304s again (a reader
        // holding the ambiguous one gets the feed once more).
        return Some(Validator::new(version, etag, gzip, now, false));
    }
    (current.version != version).then(|| {
        Validator::new(
            version,
            etag,
            gzip,
            current.modified,
            current.modified_twice,
        )
    })
}

impl FeedCache {
    /// What the cache knows for `key`: a 304 if its validator says `conditions` hold (also for
    /// a feed too large to keep), else the cached rendering. `now`: Unix seconds. One lookup.
    fn lookup(&mut self, key: &CacheKey, conditions: &Conditions, now: i64) -> Option<Hit> {
        if !self.settings_seen(key.feed.settings_changes) {
            return None;
        }
        self.clock += 1;
        let clock = self.clock;
        let forgotten = self.forgotten_modified;
        let state = self.feeds.get_mut(&key.feed)?;
        state.used = clock;
        if let Some(validator) = &state.validator
            && validator.version == key.version
            && conditions.not_modified(
                &validator.etag,
                validator.gzip_etag_header.is_some(),
                Some(validator),
                now,
            )
        {
            return Some(Hit::NotModified(Arc::clone(validator)));
        }
        let rendered = Arc::clone(
            state
                .rendered
                .as_ref()
                .filter(|r| r.version == key.version)?,
        );
        state.rendered_used = clock;
        let tag = (rendered.etag.as_str(), rendered.gzip_etag_header.is_some());
        let validator = Self::note_in(state, key.version, tag, now, forgotten);
        Some(Hit::Rendered(rendered, validator))
    }

    /// Forgets every feed when a reload has changed the title or base URL since the last
    /// key seen (`changes` is that key's [`Site::settings_changes`]). Keys made before can no
    /// longer be asked for, and a feed asked for again starts from the newest date any of
    /// them was served with: a reload that undoes a change makes feeds as they were before
    /// it, and their new `Last-Modified` must not step back to before the change, or a
    /// reader holding the changed feed's date would get 304s for good.
    ///
    /// `false` for a key made before the newest change seen: nothing of it is to be kept.
    fn settings_seen(&mut self, changes: u64) -> bool {
        if changes < self.settings_changes {
            return false;
        }
        if changes == self.settings_changes {
            return true;
        }
        self.settings_changes = changes;
        for state in self.feeds.values() {
            if let Some(validator) = &state.validator {
                self.forgotten_modified = self.forgotten_modified.max(validator.modified);
            }
        }
        self.feeds.clear();
        self.rendered = 0;
        self.bytes = 0;
        true
    }

    /// Records in `state` that its feed at `version` renders to `tag` (the ETag, and whether
    /// it has a gzip form), served at `now`.
    fn note_in(
        state: &mut FeedState,
        version: u64,
        tag: (&str, bool),
        now: i64,
        forgotten: i64,
    ) -> Option<Arc<Validator>> {
        if let Some(current) = &state.validator
            && version < current.version
        {
            return None;
        }
        if let Some(next) = next_validator(state.validator.as_deref(), version, tag, now, forgotten)
        {
            state.validator = Some(next);
        }
        state.validator.clone()
    }

    /// The validator of `key`'s feed, if it is known for `key`'s data version.
    #[cfg(test)]
    fn validator(&mut self, key: &CacheKey) -> Option<Arc<Validator>> {
        self.clock += 1;
        let state = self.feeds.get_mut(&key.feed)?;
        state.used = self.clock;
        state
            .validator
            .as_ref()
            .filter(|v| v.version == key.version)
            .cloned()
    }

    /// The state of `feed`, made (after making room) if there is none.
    fn state(&mut self, feed: &FeedKey) -> &mut FeedState {
        self.clock += 1;
        if !self.feeds.contains_key(feed) && self.feeds.len() >= VALIDATOR_ENTRIES {
            let oldest = self
                .feeds
                .iter()
                .min_by_key(|(_, state)| state.used)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest
                && let Some(gone) = self.feeds.remove(&oldest)
            {
                if let Some(validator) = gone.validator {
                    self.forgotten_modified = self.forgotten_modified.max(validator.modified);
                }
                if gone.rendered.is_some() {
                    self.rendered -= 1;
                    self.bytes -= gone.rendered_bytes;
                }
            }
        }
        let clock = self.clock;
        let state = self.feeds.entry(feed.clone()).or_insert(FeedState {
            validator: None,
            used: clock,
            rendered: None,
            rendered_bytes: 0,
            rendered_used: clock,
        });
        state.used = clock;
        state
    }

    /// Records that `key` renders to `tag` (the ETag, and whether it has a gzip form), served
    /// at `now` (Unix seconds), and returns the feed's validator; `None` for a rendering of
    /// data since replaced (its date is unknown).
    fn note(&mut self, key: &CacheKey, tag: (&str, bool), now: i64) -> Option<Arc<Validator>> {
        // A rendering made under settings a reload has replaced since (it was under way when
        // the reload came): served without a validator, as one of replaced data is, since a
        // date given now would be later than the date of the feed as it is now, and a reader
        // sending it back would be told the current feed has not changed.
        if !self.settings_seen(key.feed.settings_changes) {
            return None;
        }
        self.state(&key.feed);
        // (After making room: a feed recorded afresh may have been served with the date of
        // one just dropped.)
        let forgotten = self.forgotten_modified;
        let state = self.feeds.get_mut(&key.feed).expect("just made");
        Self::note_in(state, key.version, tag, now, forgotten)
    }

    #[cfg(test)]
    fn get(&mut self, key: &CacheKey) -> Option<Arc<Rendered>> {
        self.clock += 1;
        let state = self.feeds.get_mut(&key.feed)?;
        let rendered = Arc::clone(
            state
                .rendered
                .as_ref()
                .filter(|r| r.version == key.version)?,
        );
        state.rendered_used = self.clock;
        Some(rendered)
    }

    /// What of `rendered` may be kept for `feed`: all of it if it is within
    /// [`FeedCache::max_entry_bytes`]; else its gzip form alone, if that is made and within it;
    /// else nothing.
    ///
    /// A full-text feed of 500 stories (6.5 to 8 MiB) fits the bound in one form but not in
    /// two. Dropping it when its second form was made had identity and gzip clients, taking
    /// turns, render it again for every request. Of the forms to keep, the gzip one is the
    /// one to keep: it is a fifth to a quarter of the size, feed readers all take it (at no
    /// cost), and the rare identity client's GET costs an inflate (its HEAD does not: see
    /// `Rendered::identity_len`), where keeping the identity form would cost every gzip
    /// client a compression. Measured (release build, 2 shared cores) on
    /// a 6.5 MiB Atom rendering of 500 stories of 2,000 words (a 48-word vocabulary, which
    /// compresses harder than real text): querying and rendering it 111–157 ms, compressing it
    /// at [`GZIP_LEVEL`] 558–572 ms (to 19%; at level 1 44–50 ms, to 28%), inflating the gzip
    /// form 30–37 ms.
    fn fitting(&self, feed: &FeedKey, rendered: Arc<Rendered>) -> Option<Arc<Rendered>> {
        if entry_bytes(feed, &rendered) <= self.max_entry_bytes {
            return Some(rendered);
        }
        let gzip_only = rendered.gzip_only()?;
        (entry_bytes(feed, &gzip_only) <= self.max_entry_bytes).then(|| Arc::new(gzip_only))
    }

    /// Keeps `rendered` (of `key.version`) for `key`'s feed, within the limits (in its gzip
    /// form alone if both are too large, see [`FeedCache::fitting`]).
    fn insert(&mut self, key: CacheKey, rendered: Arc<Rendered>) {
        // A rendering of data already replaced (it was slower than a newer one) would never
        // be asked for again; nor one of settings a reload has replaced since.
        if key.version < self.version || !self.settings_seen(key.feed.settings_changes) {
            return;
        }
        let Some(rendered) = self.fitting(&key.feed, rendered) else {
            return;
        };
        let size = entry_bytes(&key.feed, &rendered);
        if key.version > self.version {
            self.version = key.version;
            for state in self.feeds.values_mut() {
                if state
                    .rendered
                    .as_ref()
                    .is_some_and(|r| r.version < key.version)
                    && let Some(old) = state.drop_rendering()
                {
                    self.rendered -= 1;
                    self.bytes -= old;
                }
            }
        }
        if let Some(state) = self.feeds.get_mut(&key.feed)
            && let Some(old) = state.drop_rendering()
        {
            self.rendered -= 1;
            self.bytes -= old;
        }
        while self.rendered > 0
            && (self.rendered >= CACHE_ENTRIES || self.bytes + size > CACHE_BYTES)
        {
            let oldest = self
                .feeds
                .iter()
                .filter(|(_, state)| state.rendered.is_some())
                .min_by_key(|(_, state)| state.rendered_used)
                .map(|(k, _)| k.clone());
            let Some(oldest) = oldest else { break };
            if let Some(old) = self
                .feeds
                .get_mut(&oldest)
                .and_then(FeedState::drop_rendering)
            {
                self.rendered -= 1;
                self.bytes -= old;
            }
        }
        let state = self.state(&key.feed);
        state.rendered = Some(rendered);
        state.rendered_bytes = size;
        state.rendered_used = state.used;
        self.rendered += 1;
        self.bytes += size;
    }

    /// Counts the gzip form made for `rendered` after it was stored for `key`, if it still
    /// is: stored again, so the limits hold with it (others may go for room, and a rendering
    /// now over [`FeedCache::max_entry_bytes`] keeps its gzip form alone).
    fn grown(&mut self, key: &CacheKey, rendered: &Arc<Rendered>) {
        let Some(state) = self.feeds.get_mut(&key.feed) else {
            return;
        };
        if !state
            .rendered
            .as_ref()
            .is_some_and(|kept| Arc::ptr_eq(kept, rendered))
            || state.rendered_bytes == entry_bytes(&key.feed, rendered)
        {
            return;
        }
        if let Some(old) = state.drop_rendering() {
            self.rendered -= 1;
            self.bytes -= old;
        }
        self.insert(key.clone(), Arc::clone(rendered));
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
            renders: Arc::new(RenderGate::new()),
            render_hook: None,
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
        .fallback(not_found)
        .layer(axum::middleware::from_fn(finish_response))
        .with_state(state)
}

/// Any other path (`/index.html`, `/feeds/all.atom/`, `//feeds/all.atom`): a 404 that says
/// where things are, as the feed route's own 404s do, in place of axum's empty body.
async fn not_found() -> HttpError {
    HttpError(
        StatusCode::NOT_FOUND,
        "no such page: feeds are at /feeds/TOPIC.atom, .rss or .json; the status page is /".into(),
    )
}

/// Marks every response `X-Content-Type-Options: nosniff`, so a browser takes its content type
/// as given (error texts echo request input as `text/plain`, and must never be sniffed as
/// HTML), and counts every request by matched route (not raw path: bounded label values) and
/// status. One middleware for both: each layer costs the serving path a boxed future and a
/// clone of the routes' service per request.
async fn finish_response(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let mut response = next.run(request).await;
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    crate::telemetry::record_request(route, response.status().as_u16());
    response
}

async fn metrics(State(state): State<HttpState>) -> Response {
    // The recorder first, the database after (see `telemetry::render_recorded`).
    let recorded = crate::telemetry::render_recorded();
    let (counts, topics, sources) = tokio::join!(
        state.store.counts(),
        state.store.topic_counts(),
        state.store.source_states()
    );
    let gauges = match (counts, topics, sources) {
        (Ok((stories, entries)), Ok(matched), Ok(sources)) => {
            // Every topic configured now, 0 when none of its stories match (an alert on a
            // topic going quiet needs the series); scores of a removed profile are not one.
            let matched: std::collections::HashMap<String, u64> = matched.into_iter().collect();
            let topics: Vec<(String, u64)> = state
                .classifier
                .read()
                .expect("classifier lock poisoned")
                .topic_names()
                .into_iter()
                .map(|topic| {
                    let n = matched.get(&topic).copied().unwrap_or(0);
                    (topic, n)
                })
                .collect();
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
        _ => {
            let last = state
                .last_state_gauges
                .lock()
                .expect("gauges lock poisoned")
                .clone();
            if last.is_empty() {
                crate::telemetry::unread_state_gauges()
            } else {
                last
            }
        }
    };
    let gauges = gauges + &crate::telemetry::writer_busy_gauge(state.store.writer_busy_for());
    let mut response = (recorded + &gauges).into_response();
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

/// A client's value as a 400's message quotes it: at most [`ECHOED_CHARS`] characters of it,
/// then how long it was. A `?limit=` of 60,000 digits made a 60 KB error page.
pub(crate) fn echoed(value: &str) -> String {
    const ECHOED_CHARS: usize = 64;
    match value.char_indices().nth(ECHOED_CHARS) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!(
            "{:?}… ({} characters)",
            &value[..cut],
            value.chars().count()
        ),
    }
}

fn parse_params(raw: Option<&str>) -> Result<FeedParams, String> {
    let mut params = FeedParams {
        limit: DEFAULT_LIMIT,
        ..Default::default()
    };
    let mut seen: [bool; 3] = [false; 3];
    for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        // A known parameter given twice (`?limit=5&limit=6`) leaves the client's intent
        // ambiguous: refused, where taking either value would answer a question not asked.
        if let Some(at) = ["limit", "source", "q"].iter().position(|k| *k == key) {
            if seen[at] {
                return Err(format!("{key} may be given only once"));
            }
            seen[at] = true;
        }
        match key.as_ref() {
            "limit" => {
                // Digits only: `parse` also takes a sign (`+5`), which the README's 1–500
                // does not allow. Leading zeros are still the number.
                params.limit = Some(value.as_ref())
                    .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| {
                        format!(
                            "limit must be a whole number from 1 to {MAX_LIMIT}, got {}",
                            echoed(&value)
                        )
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
    let mut hosts = headers.get_all(header::HOST).iter();
    let host = match (hosts.next(), hosts.next()) {
        // Two Host lines (RFC 9112 §3.2: a bad request) name no one host.
        (Some(host), None) => host.to_str().ok(),
        _ => None,
    }
    .filter(|h| {
        // A DNS name is at most 253 characters; with a port, 260 is plenty.
        h.len() <= 260
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    })
    // What URL parsing makes of it, so that the links are valid URLs: no empty host (`:80`),
    // no unclosed `[`, no port past 65535 or a second colon; the default port and case
    // dropped.
    .and_then(|h| url::Url::parse(&format!("http://{h}/")).ok())
    .filter(|url| url.host_str().is_some_and(|host| !host.is_empty()));
    match host {
        Some(url) => url.as_str().trim_end_matches('/').to_string(),
        None => "http://localhost".to_string(),
    }
}

async fn feed(
    State(state): State<HttpState>,
    file: Result<Path<String>, axum::extract::rejection::PathRejection>,
    RawQuery(query): RawQuery,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    // A name that is no UTF-8 once decoded (`/feeds/%FF.atom`) names no feed: axum's own
    // answer named its route's parameter.
    let Ok(Path(file)) = file else {
        return Err(HttpError(
            StatusCode::NOT_FOUND,
            "no such feed: use /feeds/TOPIC.atom, .rss or .json".into(),
        ));
    };
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
        feed: FeedKey {
            format,
            topic: topic.to_string(),
            // The validated parameters, not the raw query: `?utm_source=…` (repeated or
            // not) and reorderings share one entry instead of each costing a query and a render.
            query: params.canonical_query(),
            base_url: base.clone(),
            title: site.title.clone(),
            settings_changes: site.settings_changes,
        },
    };
    let conditions = Conditions::of(&headers);
    let lookup = || {
        state
            .cache
            .lock()
            .expect("cache lock poisoned")
            .lookup(&key, &conditions, now_secs())
    };
    let (rendered, validator) = match lookup() {
        Some(Hit::NotModified(validator)) => {
            return Ok(not_modified(&validator, conditions.gzip));
        }
        Some(Hit::Rendered(rendered, validator)) => (rendered, validator),
        None => {
            let turn = state.renders.turn(&key);
            let slot = Arc::clone(&turn.slot).lock_owned().await;
            // Another request may have rendered it while this one waited.
            match lookup() {
                Some(Hit::NotModified(validator)) => {
                    return Ok(not_modified(&validator, conditions.gzip));
                }
                Some(Hit::Rendered(rendered, validator)) => (rendered, validator),
                None => match slot.as_ref() {
                    // Too large to cache: the rendering of the request this one waited for.
                    Some(rendered) => {
                        let rendered = Arc::clone(rendered);
                        let tag = (rendered.etag.as_str(), rendered.gzip_etag_header.is_some());
                        let validator = state.cache.lock().expect("cache lock poisoned").note(
                            &key,
                            tag,
                            now_secs(),
                        );
                        (rendered, validator)
                    }
                    None => {
                        let permit = Arc::clone(&state.renders.permits)
                            .acquire_owned()
                            .await
                            .expect("the render semaphore is never closed");
                        let hold = RenderHold {
                            turn,
                            slot,
                            _permit: permit,
                        };
                        let gzip = conditions.gzip;
                        render_feed(&state, &key, &params, &site, base, hold, gzip).await?
                    }
                },
            }
        }
    };

    let now = now_secs();
    let validator = validator.as_deref();
    // The representation this request gets: gzip if it takes gzip and the feed has that form.
    let (gzip, etag_header) = match &rendered.gzip_etag_header {
        Some(gzip_etag) if conditions.gzip => (true, gzip_etag),
        _ => (false, &rendered.etag_header),
    };
    let etag_header = etag_header.clone();
    let mut response = if conditions.not_modified(&rendered.etag, gzip, validator, now) {
        not_modified_response()
    } else {
        let mut r = if gzip {
            let body = gzip_body(&state, &key, &rendered).await?;
            let mut r = body.into_response();
            r.headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            r
        } else if method == axum::http::Method::HEAD && rendered.body.is_none() {
            // The identity form of a rendering kept in gzip form alone: its headers are known
            // without inflating it (a HEAD sends no body; axum keeps a Content-Length set).
            let mut r = StatusCode::OK.into_response();
            r.headers_mut().insert(
                header::CONTENT_LENGTH,
                HeaderValue::from(rendered.identity_len),
            );
            r
        } else {
            identity_body(&state, &rendered).await?.into_response()
        };
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        r
    };
    set_validators(response.headers_mut(), etag_header, validator, now);
    Ok(response)
}

/// The gzip form of `rendered` (the feed `key`). Made on the rendering thread when the request
/// that rendered it took gzip (the common case: feed readers all do), so this returns it at
/// once; else made now, once, on a blocking thread holding a render permit (the compression
/// is CPU work like a rendering), and counted in the cache if the rendering is kept there.
async fn gzip_body(
    state: &HttpState,
    key: &CacheKey,
    rendered: &Arc<Rendered>,
) -> Result<axum::body::Bytes, HttpError> {
    if let Some(body) = rendered.gzip.get() {
        return Ok(body.clone());
    }
    let permit = Arc::clone(&state.renders.permits)
        .acquire_owned()
        .await
        .expect("the render semaphore is never closed");
    let (cache, key, rendered) = (Arc::clone(&state.cache), key.clone(), Arc::clone(rendered));
    // Done (and counted) even if this request's client hangs up meanwhile.
    tokio::task::spawn_blocking(move || {
        let body = rendered.gzip().clone();
        cache
            .lock()
            .expect("cache lock poisoned")
            .grown(&key, &rendered);
        drop(permit);
        body
    })
    .await
    .map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The body of `rendered` for a client that does not take gzip: at once, unless the cache
/// keeps the feed in gzip form alone (see [`FeedCache::fitting`]); then inflated on a blocking
/// thread holding a render permit, for this request only (the rendering stays as kept). A
/// HEAD of that form does not come here: `feed` answers it from `Rendered::identity_len`.
async fn identity_body(
    state: &HttpState,
    rendered: &Arc<Rendered>,
) -> Result<axum::body::Bytes, HttpError> {
    if let Some(body) = &rendered.body {
        return Ok(body.clone());
    }
    let permit = Arc::clone(&state.renders.permits)
        .acquire_owned()
        .await
        .expect("the render semaphore is never closed");
    let rendered = Arc::clone(rendered);
    let gate = Arc::clone(&state.renders);
    tokio::task::spawn_blocking(move || {
        let body = rendered.identity();
        gate.inflated
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        drop(permit);
        body
    })
    .await
    .map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Queries, renders and caches the feed `key` names; its rendering and validator. `hold`
/// goes with the rendering onto its blocking thread and is released there once the result
/// is cached, so it bounds the CPU work even if this future is dropped (the client left).
/// With `gzip` (the request takes gzip), or when the body alone is too large to keep, the gzip
/// form is made there too, before it is cached.
async fn render_feed(
    state: &HttpState,
    key: &CacheKey,
    params: &FeedParams,
    site: &Site,
    base: String,
    hold: RenderHold,
    gzip: bool,
) -> Result<(Arc<Rendered>, Option<Arc<Validator>>), HttpError> {
    let topic = &key.feed.topic;
    let stories = state
        .store
        .stories(StoryQuery {
            topic: (topic != "all").then(|| topic.clone()),
            source: params.source.clone(),
            search: params.search.clone(),
            before: None,
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
        topic: topic.clone(),
        base_url: base,
        instance: state.store.instance().to_string(),
        query: key.feed.query.clone(),
    };
    let mut stories_for_render = stories;
    stories_for_render.iter_mut().for_each(redact::redact_story);
    let hook = state.render_hook.clone();
    let cache = Arc::clone(&state.cache);
    let max_entry_bytes = cache.lock().expect("cache lock poisoned").max_entry_bytes;
    let key = key.clone();
    tokio::task::spawn_blocking(move || {
        let RenderHold {
            turn,
            mut slot,
            _permit,
        } = hold;
        if let Some(hook) = hook {
            hook(&key.feed);
        }
        let body = render::render(key.feed.format, &meta, &stories_for_render);
        let rendered = Arc::new(Rendered::new(key.version, body));
        // Also for an identity client when the body alone is too large to keep: its gzip form
        // may be kept instead (see `FeedCache::fitting`), so that the next request of either
        // kind renders nothing.
        if rendered.gzip_etag_header.is_some() {
            if gzip {
                rendered.gzip();
            } else if entry_bytes(&key.feed, &rendered) > max_entry_bytes {
                rendered.gzip_within(max_entry_bytes.saturating_sub(key.feed.heap_bytes()));
            }
        }
        let validator = {
            let mut cache = cache.lock().expect("cache lock poisoned");
            cache.insert(key.clone(), Arc::clone(&rendered));
            let tag = (rendered.etag.as_str(), rendered.gzip_etag_header.is_some());
            cache.note(&key, tag, now_secs())
        };
        *slot = Some(Arc::clone(&rendered));
        // Only now may the next request for this key (or another rendering) go ahead.
        drop((slot, turn, _permit));
        (rendered, validator)
    })
    .await
    .map_err(|e| HttpError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// A 304 answer from a feed's validator, for a request that takes gzip if `gzip`.
fn not_modified(validator: &Validator, gzip: bool) -> Response {
    let mut response = not_modified_response();
    let etag = match &validator.gzip_etag_header {
        Some(gzip_etag) if gzip => gzip_etag,
        _ => &validator.etag_header,
    };
    set_validators(
        response.headers_mut(),
        etag.clone(),
        Some(validator),
        now_secs(),
    );
    response
}

/// A bare `304 Not Modified`, without the `content-length: 0` axum gives every response whose
/// body is known to be empty (hyper drops it from a GET's 304, but not from a HEAD's): a 304
/// may carry only the length of the 200 it stands for (RFC 9110 8.6), and a cache may copy
/// its headers onto the stored response (RFC 9111 4.3.4).
fn not_modified_response() -> Response {
    (StatusCode::NOT_MODIFIED, axum::body::Body::new(NoContent)).into_response()
}

/// An empty body that does not say its size, so that no `Content-Length` is derived from it.
struct NoContent;

impl http_body::Body for NoContent {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::task::Poll::Ready(None)
    }
}

/// `ETag`, `Last-Modified` (when known), `Cache-Control` and `Vary` of a feed answer at `now`.
fn set_validators(h: &mut HeaderMap, etag: HeaderValue, validator: Option<&Validator>, now: i64) {
    h.insert(header::ETAG, etag);
    // Every feed answer, identity ones and 304s too (RFC 9110 12.5.5, 15.4.5): which form a
    // cache may reuse for a request depends on its Accept-Encoding.
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(validator) = validator {
        // After a step back of the clock `modified` can lie ahead; a Last-Modified must not
        // (RFC 9110 8.8.2.1), and an earlier one only costs a reader a 200.
        let modified = if validator.modified > now {
            http_date_header(now)
        } else {
            validator.modified_header.clone()
        };
        h.insert(header::LAST_MODIFIED, modified);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
}

/// A feed request's preconditions (RFC 9110 13.1.2, 13.1.3, 13.2.2), and the representation
/// it takes: they are compared with that representation's ETag.
#[derive(Debug, Default)]
struct Conditions {
    /// The `If-None-Match` values, if the header was sent at all.
    none_match: Option<Vec<String>>,
    /// The `If-Modified-Since` date in Unix seconds, if it counts: one valid HTTP date and no
    /// `If-None-Match`.
    modified_since: Option<i64>,
    /// Whether the request takes gzip (its `Accept-Encoding`, see [`takes_gzip`]): it gets a
    /// feed's gzip form, when the feed has one.
    gzip: bool,
}

impl Conditions {
    fn of(headers: &HeaderMap) -> Conditions {
        let gzip = takes_gzip(headers);
        if headers.contains_key(header::IF_NONE_MATCH) {
            // An If-None-Match, even one that cannot be read, makes If-Modified-Since ignored.
            let values = headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .collect();
            return Conditions {
                none_match: Some(values),
                modified_since: None,
                gzip,
            };
        }
        let mut since = headers.get_all(header::IF_MODIFIED_SINCE).iter();
        let modified_since = match (since.next(), since.next()) {
            (Some(value), None) => value
                .to_str()
                .ok()
                .and_then(|v| httpdate::parse_http_date(v.trim()).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok()),
            _ => None,
        };
        Conditions {
            none_match: None,
            modified_since,
            gzip,
        }
    }

    /// Whether the reader's copy is current, so the answer is 304: `If-None-Match` names the
    /// ETag of the form this request gets (`etag`, or its gzip form's if the feed `has_gzip`
    /// and the request takes gzip), or, without it, nothing changed after the
    /// `If-Modified-Since` date. That date counts only if it is not in the future (a reader's
    /// own clock, not one of our dates) and, when it is the very second of `validator`'s
    /// date, if that second saw one change.
    fn not_modified(
        &self,
        etag: &str,
        has_gzip: bool,
        validator: Option<&Validator>,
        now: i64,
    ) -> bool {
        if let Some(values) = &self.none_match {
            let gzip = has_gzip && self.gzip;
            return values.iter().any(|v| none_match_fails(v, etag, gzip));
        }
        match (self.modified_since, validator) {
            (Some(since), Some(v)) if since <= now && v.etag == etag => {
                v.modified < since || (v.modified == since && !v.modified_twice)
            }
            _ => false,
        }
    }
}

/// Whether an `If-None-Match` value names `etag` (a quoted strong tag), or with `gzip` the
/// gzip form's tag made from it ([`gzip_etag`]), so the answer is 304. Only the tag of the form
/// the request gets: a reader holding the other form holds other bytes (RFC 9110 13.1.2 names
/// the selected representation's tag). RFC 9110 13.1.2: `*` matches any current
/// representation, and the comparison is weak: `W/"x"` matches `"x"` (a proxy that
/// compresses, such as nginx with gzip, weakens the ETags it passes on, and readers send them
/// back so). The value is a comma-separated list of entity tags, whose opaque part may itself
/// hold commas.
fn none_match_fails(value: &str, etag: &str, gzip: bool) -> bool {
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
        let quoted = &tag[..len];
        let names = if gzip {
            // `"x-gz"` for `"x"`, compared without making it.
            let open = etag.strip_suffix('"').unwrap_or(etag);
            quoted
                .strip_prefix(open)
                .is_some_and(|rest| rest == "-gz\"")
        } else {
            quoted == etag
        };
        if names {
            return true;
        }
        rest = tag[len..].trim_start_matches(SEPARATORS);
    }
    false
}

/// Whether a request with these headers takes a gzip body (RFC 9110 12.5.3): an
/// `Accept-Encoding` names `gzip` or `x-gzip` (the same coding; names are case-insensitive),
/// or `*`, with a q-value above 0 (`gzip;q=0` refuses it), and no higher one for an explicit
/// `identity`. A request without the header gets identity: the RFC lets a server pick any
/// coding then, but clients that send none (curl, wrk, scripts) mostly cannot inflate.
fn takes_gzip(headers: &HeaderMap) -> bool {
    let mut gzip: Option<u16> = None;
    let mut star: Option<u16> = None;
    let mut identity: Option<u16> = None;
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            if coding.is_empty() {
                continue;
            }
            let mut q = Some(1000);
            for param in parts {
                if let Some((name, v)) = param.split_once('=')
                    && name.trim().eq_ignore_ascii_case("q")
                {
                    q = qvalue(v.trim());
                }
            }
            // An unreadable q-value takes nothing: better identity than a body it cannot read.
            let q = q.unwrap_or(0);
            let slot =
                if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                    &mut gzip
                } else if coding == "*" {
                    &mut star
                } else if coding.eq_ignore_ascii_case("identity") {
                    &mut identity
                } else {
                    continue;
                };
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
    }
    let gzip = gzip.or(star).unwrap_or(0);
    gzip > 0 && identity.is_none_or(|identity| gzip >= identity)
}

/// A q-value (RFC 9110 12.4.2: `0`, `1` or `0.` with up to three digits, `1.000`) in
/// thousandths, or `None` if it is none.
fn qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = fraction
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .fold(0u16, |n, b| n * 10 + u16::from(b - b'0'));
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<HttpState>) -> Response {
    if !state.store.file_in_place() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database file deleted or replaced while running: restart tradefeed\n",
        )
            .into_response();
    }
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
            (Some("source=B+C&utm_source=x&utm_source=y"), "source=B+C"),
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
        let state = empty_state(dir);
        let base = serve_state(&state).await;
        (state, base)
    }

    /// Serves `state`'s router on 127.0.0.1; its base URL.
    async fn serve_state(state: &HttpState) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    /// The HTTP side's state on an empty database in `dir`.
    fn empty_state(dir: &std::path::Path) -> HttpState {
        let store = Store::open(&dir.join("tradefeed.db"), crate::store::Access::ReadWrite)
            .expect("a fresh database opens");
        let classifier = Arc::new(std::sync::RwLock::new(Arc::new(
            crate::classify::Classifier::builtin(),
        )));
        let site = Site {
            title: "tradefeed".into(),
            base_url: None,
            config_error: None,
            listen_error: None,
            settings_changes: 0,
        };
        HttpState::new(store, classifier, site)
    }

    /// Status, ETag and Last-Modified of a GET of `url` with `headers`.
    async fn get_feed(url: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
        let mut request = reqwest::Client::new().get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map_or(String::new(), |v| v.to_str().unwrap().to_string())
        };
        let (etag, modified) = (header("etag"), header("last-modified"));
        (response.status().as_u16(), etag, modified)
    }

    /// A configured source polled hourly, folding nothing.
    fn hourly_source(name: &str, url: &str) -> crate::domain::Source {
        crate::domain::Source {
            name: name.into(),
            url: url.into(),
            schedule: crate::domain::Schedule::parse("@hourly").unwrap(),
            enabled: true,
            tags: Vec::new(),
            priority: 0,
            cluster: false,
            allow_private_redirects: false,
        }
    }

    /// Records `source` in `store` as configured.
    async fn store_source(store: &Store, source: &crate::domain::Source) {
        store
            .sync_sources(std::slice::from_ref(source), |_, t, _| t)
            .await
            .unwrap();
    }

    /// Counts `state`'s renderings from now on.
    fn count_renders(state: &mut HttpState) -> Arc<std::sync::atomic::AtomicUsize> {
        let renders = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        state.render_hook = Some({
            let renders = Arc::clone(&renders);
            Arc::new(move |_: &FeedKey| {
                renders.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            })
        });
        renders
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conditional_requests_for_a_feed_too_big_to_keep_are_answered_without_rendering_it() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let mut state = empty_state(dir.path());
        let renders = count_renders(&mut state);
        {
            let mut cache = state.cache.lock().unwrap();
            // Every rendering is too big to keep.
            cache.max_entry_bytes = 0;
            // No earlier process served these feeds: a date's own second counts at once.
            cache.forgotten_modified = 0;
        }
        let base = serve_state(&state).await;
        let url = format!("{base}/feeds/all.atom");
        let renders = || renders.load(Ordering::SeqCst);

        let (status, etag, modified) = get_feed(&url, &[]).await;
        assert_eq!((status, renders()), (200, 1));
        assert!(httpdate::parse_http_date(&modified).is_ok(), "{modified:?}");
        assert_eq!(get_feed(&url, &[]).await.0, 200);
        assert_eq!(renders(), 2, "not kept: rendered for each full answer");

        let weak = format!("W/{etag}");
        for condition in [
            ("if-none-match", etag.as_str()),
            ("if-none-match", weak.as_str()),
            ("if-modified-since", modified.as_str()),
        ] {
            let answer = get_feed(&url, &[condition]).await;
            assert_eq!(
                answer,
                (304, etag.clone(), modified.clone()),
                "{condition:?}"
            );
        }
        assert_eq!(renders(), 2, "the 304s rendered nothing");

        // If-None-Match, when sent, decides alone (RFC 9110 13.1.3).
        let answer = get_feed(
            &url,
            &[
                ("if-none-match", "\"other\""),
                ("if-modified-since", &modified),
            ],
        )
        .await;
        assert_eq!(answer.0, 200);

        // New data that renders the same feed: rendered once to know that, and the feed
        // keeps its date.
        state.store.replace_scores(Vec::new()).await.unwrap();
        let rendered = renders();
        let answer = get_feed(&url, &[("if-modified-since", &modified)]).await;
        assert_eq!(answer, (304, etag.clone(), modified.clone()));
        assert_eq!(renders(), rendered + 1);
        let answer = get_feed(&url, &[("if-modified-since", &modified)]).await;
        assert_eq!(answer.0, 304);
        assert_eq!(renders(), rendered + 1);

        // Earlier dates, dates in the future (not one of ours) and no dates get the feed.
        let secs = |date: &str| {
            httpdate::parse_http_date(date)
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
        };
        let earlier = httpdate::fmt_http_date(
            std::time::UNIX_EPOCH + secs(&modified) - std::time::Duration::from_secs(1),
        );
        for since in [
            earlier.as_str(),
            "Fri, 01 Jan 2100 00:00:00 GMT",
            "yesterday",
        ] {
            let answer = get_feed(&url, &[("if-modified-since", since)]).await;
            assert_eq!(answer.0, 200, "{since}");
        }
        state.store.close().await;
    }

    /// Holds renderings on their blocking threads until opened; opens when dropped, also when
    /// a test fails.
    #[derive(Clone, Default)]
    struct HeldRenders(Arc<(Mutex<bool>, std::sync::Condvar)>);

    impl HeldRenders {
        /// Blocks the calling (rendering) thread until [`HeldRenders::open`].
        fn wait(&self) {
            let (open, wake) = &*self.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = wake.wait(open).unwrap();
            }
        }

        fn open(&self) {
            *self.0.0.lock().unwrap() = true;
            self.0.1.notify_all();
        }

        /// Holds the renderings that start from now on.
        fn close(&self) {
            *self.0.0.lock().unwrap() = false;
        }
    }

    /// Opens the renderings when dropped.
    struct OpenOnDrop(HeldRenders);

    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            self.0.open();
        }
    }

    /// Waits (up to a minute: a hang, not a speed check) until `ready` holds.
    async fn until(what: &str, ready: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        while !ready() {
            assert!(tokio::time::Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// How many requests hold or wait for the turn of the feed searched with `query`.
    fn turn_users(state: &HttpState, query: &str) -> usize {
        let in_flight = state.renders.in_flight.lock().unwrap();
        in_flight
            .iter()
            .find(|(key, _)| key.feed.query == query)
            .map_or(0, |(_, (_, users))| *users)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_for_one_feed_render_it_once_also_when_too_big_to_cache() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let mut state = empty_state(dir.path());
        let held = HeldRenders::default();
        let renders = Arc::new(Mutex::new(HashMap::<String, usize>::new()));
        let (entered, mut first_entered) = tokio::sync::mpsc::unbounded_channel();
        state.render_hook = Some({
            let (held, renders) = (held.clone(), Arc::clone(&renders));
            Arc::new(move |feed: &FeedKey| {
                *renders
                    .lock()
                    .unwrap()
                    .entry(feed.query.clone())
                    .or_default() += 1;
                entered.send(()).unwrap();
                held.wait();
            })
        });
        let open = OpenOnDrop(held);
        let base = serve_state(&state).await;
        const READERS: usize = 5;
        let answered = Arc::new(AtomicUsize::new(0));
        for (query, cacheable) in [("q=same", true), ("q=big", false)] {
            if !cacheable {
                state.cache.lock().unwrap().max_entry_bytes = 0;
            }
            let url = format!("{base}/feeds/all.atom?{query}");
            let readers: Vec<_> = (0..READERS)
                .map(|_| {
                    let (url, answered) = (url.clone(), Arc::clone(&answered));
                    tokio::spawn(async move {
                        let answer = get_feed(&url, &[]).await;
                        answered.fetch_add(1, Ordering::SeqCst);
                        answer
                    })
                })
                .collect();
            first_entered.recv().await.unwrap();
            // Every reader has missed the cache and is waiting for the one rendering.
            until("all readers wait for the feed's turn", || {
                turn_users(&state, query) == READERS
            })
            .await;
            open.0.open();
            let mut etags = Vec::new();
            for reader in readers {
                let (status, etag, _) = reader.await.unwrap();
                assert_eq!(status, 200, "{query}");
                etags.push(etag);
            }
            etags.dedup();
            assert_eq!(etags.len(), 1, "{query}: one rendering served to all");
            assert_eq!(
                renders.lock().unwrap()[query],
                1,
                "{query} (cacheable: {cacheable}) rendered once for {READERS} readers"
            );
            assert_eq!(turn_users(&state, query), 0, "the turn is gone");
            // Hold the next round's first rendering again.
            open.0.close();
        }
        assert_eq!(answered.load(Ordering::SeqCst), 2 * READERS);
        drop(open);
        state.store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_the_permit_count_of_distinct_feeds_render_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let mut state = empty_state(dir.path());
        state.renders = Arc::new(RenderGate::with_permits(2));
        let held = HeldRenders::default();
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let (entered, mut renders_entered) = tokio::sync::mpsc::unbounded_channel();
        state.render_hook = Some({
            let (held, running, most) = (held.clone(), Arc::clone(&running), Arc::clone(&most));
            Arc::new(move |_: &FeedKey| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                entered.send(()).unwrap();
                held.wait();
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        let open = OpenOnDrop(held);
        let base = serve_state(&state).await;
        let searches: Vec<_> = (0..4)
            .map(|n| tokio::spawn(get_feed_owned(format!("{base}/feeds/all.atom?q=p{n}"))))
            .collect();
        renders_entered.recv().await.unwrap();
        renders_entered.recv().await.unwrap();
        until("all four searches wait for a turn or render", || {
            (0..4).all(|n| turn_users(&state, &format!("q=p{n}")) == 1)
        })
        .await;
        // Time for a third rendering to start if nothing stopped it (and this test to fail);
        // with the permits none does however long this is.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            renders_entered.try_recv().is_err(),
            "a third rendering started"
        );
        assert_eq!(running.load(Ordering::SeqCst), 2);
        drop(open);
        for search in searches {
            assert_eq!(search.await.unwrap(), 200);
        }
        assert_eq!(
            most.load(Ordering::SeqCst),
            2,
            "never more than the permits"
        );
        state.store.close().await;
    }

    /// The status of a GET of `url`.
    async fn get_feed_owned(url: String) -> u16 {
        get_feed(&url, &[]).await.0
    }

    /// A client that hangs up mid-request makes hyper drop its handler; the rendering it
    /// started goes on, and keeps its permit until it is done: a client sending distinct
    /// searches and hanging up at once cannot pile renderings up beyond the permits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_rendering_keeps_its_permit_after_its_client_hangs_up() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().unwrap();
        let mut state = empty_state(dir.path());
        state.renders = Arc::new(RenderGate::with_permits(1));
        let held = HeldRenders::default();
        let (entered, mut renders_entered) = tokio::sync::mpsc::unbounded_channel();
        state.render_hook = Some({
            let held = held.clone();
            Arc::new(move |feed: &FeedKey| {
                entered.send(feed.query.clone()).unwrap();
                if feed.query == "q=held" {
                    held.wait();
                }
            })
        });
        let open = OpenOnDrop(held);
        // Says when the held request's handler is dropped.
        let (dropped_tx, mut dropped) = tokio::sync::mpsc::unbounded_channel::<()>();
        struct SayDropped(tokio::sync::mpsc::UnboundedSender<()>);
        impl Drop for SayDropped {
            fn drop(&mut self) {
                let _ = self.0.send(());
            }
        }
        let app = router(state.clone()).layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let watch = (request.uri().query() == Some("q=held"))
                    .then(|| SayDropped(dropped_tx.clone()));
                async move {
                    let _watch = watch;
                    next.run(request).await
                }
            },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /feeds/all.atom?q=held HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(renders_entered.recv().await.unwrap(), "q=held");
        drop(client);
        tokio::time::timeout(std::time::Duration::from_secs(60), dropped.recv())
            .await
            .expect("the handler of the client that hung up was dropped");
        assert_eq!(
            state.renders.permits.available_permits(),
            0,
            "the rendering still running holds its permit"
        );
        let second = tokio::spawn(get_feed_owned(format!(
            "http://{addr}/feeds/all.atom?q=second"
        )));
        // Time for the second rendering to start if the permit had gone with the handler;
        // with the permit held none is long enough.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            renders_entered.try_recv().is_err(),
            "a second rendering started beyond the permit"
        );
        drop(open);
        assert_eq!(second.await.unwrap(), 200);
        assert_eq!(renders_entered.recv().await.unwrap(), "q=second");
        state.store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_feed_being_rendered_holds_up_no_other_feed() {
        use std::sync::Condvar;
        /// Lets the held rendering go when dropped, also when the test fails.
        struct Release(Arc<(Mutex<bool>, Condvar)>);
        impl Drop for Release {
            fn drop(&mut self) {
                *self.0.0.lock().unwrap() = true;
                self.0.1.notify_all();
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let mut state = empty_state(dir.path());
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let (entered, mut held_entered) = tokio::sync::mpsc::unbounded_channel();
        state.render_hook = Some({
            let gate = Arc::clone(&gate);
            Arc::new(move |feed: &FeedKey| {
                if feed.query == "q=held" {
                    entered.send(()).unwrap();
                    let (released, wake) = &*gate;
                    let mut released = released.lock().unwrap();
                    while !*released {
                        released = wake.wait(released).unwrap();
                    }
                }
            })
        });
        let release = Release(gate);
        let base = serve_state(&state).await;
        let held = tokio::spawn(reqwest::get(format!("{base}/feeds/all.atom?q=held")));
        held_entered.recv().await.unwrap();

        // A minute is no speed limit: without this, the other feed would wait for ever.
        let other = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            reqwest::get(format!("{base}/feeds/all.rss")),
        )
        .await
        .expect("the other feed waited for the held rendering")
        .unwrap();
        assert_eq!(other.status(), 200);
        assert!(!held.is_finished());

        drop(release);
        assert_eq!(held.await.unwrap().unwrap().status(), 200);
        state.store.close().await;
    }

    #[test]
    fn a_feeds_date_moves_only_forward_and_only_when_its_content_changes() {
        let mut cache = FeedCache {
            forgotten_modified: 100,
            ..FeedCache::default()
        };
        let v = |version, query: &str| cache_key(version, query);
        // A feed first served in the second the process started may have been served with
        // that date, and other content, before.
        let first = cache.note(&v(1, ""), ("\"a\"", false), 100).unwrap();
        assert_eq!((first.modified, first.modified_twice), (100, true));
        // Same content later: the date moves on, and is unambiguous.
        let later = cache.note(&v(1, ""), ("\"a\"", false), 105).unwrap();
        assert_eq!((later.modified, later.modified_twice), (105, false));
        // Same content, new data version: the date stays.
        let same = cache.note(&v(2, ""), ("\"a\"", false), 110).unwrap();
        assert_eq!(
            (same.version, same.modified, same.modified_twice),
            (2, 105, false)
        );
        // New content: the date of serving it.
        let changed = cache.note(&v(3, ""), ("\"b\"", false), 120).unwrap();
        assert_eq!((changed.modified, changed.modified_twice), (120, false));
        // Changed again within that second: a reader holding "120" may hold either.
        let again = cache.note(&v(4, ""), ("\"c\"", false), 120).unwrap();
        assert_eq!((again.modified, again.modified_twice), (120, true));
        // The clock stepped back: the date does not.
        let back = cache.note(&v(5, ""), ("\"d\"", false), 50).unwrap();
        assert_eq!((back.modified, back.modified_twice), (120, true));
        // A rendering of replaced data has no date to give.
        assert_eq!(cache.note(&v(4, ""), ("\"c\"", false), 130), None);
        assert_eq!(cache.validator(&v(5, "")).unwrap().etag, "\"d\"");
        assert_eq!(
            cache.validator(&v(4, "")),
            None,
            "only for its data version"
        );

        // Dropped for room: a feed recorded afresh may have been served with the dropped
        // date, so that second is ambiguous for it.
        for n in 0..VALIDATOR_ENTRIES {
            cache.note(&v(5, &format!("q={n}")), ("\"x\"", false), 200);
        }
        assert_eq!(cache.feeds.len(), VALIDATOR_ENTRIES);
        assert!(cache.validator(&v(5, "")).is_none(), "the oldest went");
        assert_eq!(cache.forgotten_modified, 120);
        // (Recording it drops a search served at 200.)
        let fresh = cache.note(&v(5, ""), ("\"d\"", false), 120).unwrap();
        assert_eq!((fresh.modified, fresh.modified_twice), (200, true));
    }

    #[test]
    fn a_reload_that_undoes_a_settings_change_does_not_step_a_feeds_date_back() {
        let mut cache = FeedCache {
            forgotten_modified: 100,
            ..FeedCache::default()
        };
        let with = |title: &str, changes| {
            let mut key = cache_key(1, "");
            key.feed.title = title.into();
            key.feed.settings_changes = changes;
            key
        };
        let before = cache.note(&with("A", 0), ("\"a\"", false), 200).unwrap();
        assert_eq!(before.modified, 200);
        cache.insert(with("A", 0), rendering(1, 10));
        // A reload changes the title: the feed is new content from then on.
        let changed = cache.note(&with("B", 1), ("\"b\"", false), 300).unwrap();
        assert_eq!((changed.modified, changed.modified_twice), (300, false));
        assert!(cache.feeds.len() == 1 && cache.rendered == 0 && cache.bytes == 0);
        // A second reload puts the title back, the same second: the feed as it was, but a
        // reader holding "300" holds the changed one, so that date is no 304.
        let undone = cache.note(&with("A", 2), ("\"a\"", false), 300).unwrap();
        assert_eq!((undone.modified, undone.modified_twice), (300, true));
        // A second later: not before the change either.
        let mut cache_later = FeedCache {
            forgotten_modified: 100,
            ..FeedCache::default()
        };
        cache_later.note(&with("A", 0), ("\"a\"", false), 200);
        cache_later.note(&with("B", 1), ("\"b\"", false), 300);
        let undone = cache_later
            .note(&with("A", 2), ("\"a\"", false), 301)
            .unwrap();
        assert_eq!((undone.modified, undone.modified_twice), (301, false));
        // A key made before a change, noted late (a rendering that was under way): no
        // validator to serve it with (its date would be later than the current feed's), and
        // nothing of it kept.
        assert_eq!(cache_later.note(&with("B", 1), ("\"b\"", false), 302), None);
        cache_later.insert(with("B", 1), rendering(1, 10));
        assert_eq!(cache_later.validator(&with("A", 2)).unwrap().modified, 301);
        assert!(cache_later.feeds.len() == 1 && cache_later.rendered == 0);
    }

    #[test]
    fn if_modified_since_counts_alone_once_and_not_for_a_second_that_saw_two_changes() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            Conditions::of(&map)
        };
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let at = 784_111_777;
        let validator =
            |modified, modified_twice| Validator::new(1, "\"e\"", false, modified, modified_twice);
        let now = at + 1000;
        let cases = [
            (
                vec![("if-modified-since", date)],
                validator(at, false),
                true,
            ),
            (
                vec![("if-modified-since", date)],
                validator(at - 1, true),
                true,
            ),
            (
                vec![("if-modified-since", date)],
                validator(at, true),
                false,
            ),
            (
                vec![("if-modified-since", date)],
                validator(at + 1, false),
                false,
            ),
            (
                vec![("if-modified-since", "Sunday, 06-Nov-94 08:49:37 GMT")],
                validator(at, false),
                true,
            ),
            (
                vec![("if-modified-since", "not a date")],
                validator(at, false),
                false,
            ),
            (
                vec![("if-modified-since", date), ("if-modified-since", date)],
                validator(at, false),
                false,
            ),
            (
                vec![("if-none-match", "\"x\""), ("if-modified-since", date)],
                validator(at, false),
                false,
            ),
            (
                vec![
                    ("if-none-match", "\"e\""),
                    ("if-modified-since", "not a date"),
                ],
                validator(at + 1, false),
                true,
            ),
            (vec![], validator(at, false), false),
        ];
        for (sent, validator, want) in cases {
            let conditions = headers(&sent);
            assert_eq!(
                conditions.not_modified("\"e\"", false, Some(&validator), now),
                want,
                "{sent:?} against {validator:?}"
            );
        }
        // A date ahead of the server's clock is none of ours.
        let conditions = headers(&[("if-modified-since", date)]);
        assert!(!conditions.not_modified("\"e\"", false, Some(&validator(at, false)), at - 1));
        // Nor does a date say anything about a rendering without a validator, or another one.
        assert!(!conditions.not_modified("\"e\"", false, None, now));
        assert!(!conditions.not_modified("\"f\"", false, Some(&validator(at, false)), now));
    }

    /// While the database cannot be read, /metrics keeps serving the per-source gauges last
    /// read: an alert on a source's failures must not resolve because the store is down.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metrics_keep_the_last_source_gauges_while_the_database_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let (state, base) = serve_empty(dir.path()).await;
        let source = hourly_source("GaugeHeld", "http://held.example/feed");
        store_source(&state.store, &source).await;
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
        // Each configured topic has its series before any story matches it.
        assert!(
            good.contains("tradefeed_topic_stories{topic=\"trade-policy\"} 0"),
            "{good}"
        );
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

    /// A scrape says how long the database writer has been on its current job: 0 while it
    /// waits, the seconds it has been held otherwise (a stuck writer leaves reads working).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metrics_say_how_long_the_database_writer_has_been_on_its_job() {
        let dir = tempfile::tempdir().unwrap();
        let (state, base) = serve_empty(dir.path()).await;
        let busy = || async {
            let text = reqwest::get(format!("{base}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let line = text
                .lines()
                .find(|l| l.starts_with("tradefeed_store_writer_busy_seconds "))
                .unwrap_or_else(|| panic!("no writer gauge in {text}"))
                .to_string();
            line.rsplit(' ').next().unwrap().parse::<u64>().unwrap()
        };
        assert_eq!(busy().await, 0, "idle");
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel();
        let held = tokio::spawn({
            let store = state.store.clone();
            async move { store.hold_writer(started_tx, release_rx).await }
        });
        started_rx.await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        assert!(busy().await >= 1, "held for over a second");
        release_tx.send(()).unwrap();
        held.await.unwrap().unwrap();
        state.store.close().await;
    }

    /// A database that cannot be read from the first scrape on still gives the read timestamp,
    /// at 0: an alert on its age fires instead of finding no series.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn metrics_give_a_read_timestamp_of_0_when_the_database_was_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let (state, base) = serve_empty(dir.path()).await;
        rusqlite::Connection::open(dir.path().join("tradefeed.db"))
            .unwrap()
            .execute_batch("ALTER TABLE sources RENAME TO sources_gone")
            .unwrap();
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.lines()
                .any(|l| l == "tradefeed_state_read_timestamp_seconds 0"),
            "{text}"
        );
        state.store.close().await;
    }

    fn cached_queries(state: &HttpState) -> Vec<String> {
        let cache = state.cache.lock().unwrap();
        let mut queries: Vec<String> = cache
            .feeds
            .iter()
            .filter(|(_, state)| state.rendered.is_some())
            .map(|(k, _)| k.query.clone())
            .collect();
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
            feed: FeedKey {
                format: Format::Atom,
                topic: "all".into(),
                query: query.into(),
                base_url: "http://localhost".into(),
                title: "tradefeed".into(),
                settings_changes: 0,
            },
        }
    }

    fn rendering(version: u64, bytes: usize) -> Arc<Rendered> {
        Arc::new(Rendered::new(version, vec![b'x'; bytes]))
    }

    /// The renderings kept, by feed.
    fn renderings(cache: &FeedCache) -> Vec<(&FeedKey, &Arc<Rendered>)> {
        cache
            .feeds
            .iter()
            .filter_map(|(k, state)| Some((k, state.rendered.as_ref()?)))
            .collect()
    }

    /// Checks the running byte count against the entries it counts.
    fn counted_bytes(cache: &FeedCache) -> usize {
        let kept = renderings(cache);
        let sum = kept.iter().map(|(k, r)| entry_bytes(k, r)).sum();
        assert_eq!(cache.bytes, sum, "the byte count matches the entries");
        assert_eq!(cache.rendered, kept.len(), "the count matches the entries");
        sum
    }

    #[test]
    fn the_feed_cache_holds_at_most_its_byte_budget_and_skips_huge_renderings() {
        let mut cache = FeedCache::default();
        let mb = 1 << 20;
        cache.insert(cache_key(1, ""), rendering(1, 100_000));
        for n in 0..100 {
            cache.insert(cache_key(1, &format!("limit={n}")), rendering(1, mb));
            if n % 10 == 0 {
                assert!(
                    cache.get(&cache_key(1, "")).is_some(),
                    "the plain feed stays"
                );
            }
        }
        assert!(counted_bytes(&cache) <= CACHE_BYTES);
        assert!(
            renderings(&cache).len() >= CACHE_BYTES / mb - 1,
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
        cache.insert(cache_key(1, "limit=99"), rendering(1, 2 * mb));
        cache.insert(cache_key(1, "limit=99"), rendering(1, mb));
        assert!(counted_bytes(&cache) <= CACHE_BYTES);

        let huge = cache_key(1, "limit=500");
        cache.insert(huge.clone(), rendering(1, CACHE_MAX_ENTRY_BYTES + 1));
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
            listen_error: None,
            settings_changes: 0,
        };
        let with_host = |host: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
            base_url(&site, &headers)
        };
        assert_eq!(with_host("feeds.example:8080"), "http://feeds.example:8080");
        assert_eq!(with_host("[::1]:8080"), "http://[::1]:8080");
        assert_eq!(with_host("a/b"), "http://localhost");
        // What would make no valid URL, or name no host.
        for bad in ["", "[", ":80", "a:b:c", "a.example:99999", "[::1"] {
            assert_eq!(with_host(bad), "http://localhost", "{bad:?}");
        }
        assert_eq!(with_host("Feeds.Example:80"), "http://feeds.example");
        assert_eq!(with_host("feeds.example:"), "http://feeds.example");
        // Two Host lines name no one host.
        let mut headers = HeaderMap::new();
        headers.append(header::HOST, HeaderValue::from_static("a.example"));
        headers.append(header::HOST, HeaderValue::from_static("b.example"));
        assert_eq!(base_url(&site, &headers), "http://localhost");
        // A cache key (and a feed's links) per invented megabyte-long host name: no.
        let long = format!("{}.example", "a".repeat(300));
        assert_eq!(with_host(&long), "http://localhost");
    }

    #[test]
    fn a_newer_data_version_drops_the_older_renderings_at_once() {
        let mut cache = FeedCache::default();
        for n in 0..10 {
            cache.insert(cache_key(1, &format!("q=a{n}")), rendering(1, 1000));
        }
        cache.insert(cache_key(2, ""), rendering(2, 1000));
        assert_eq!(
            renderings(&cache).len(),
            1,
            "version 1 can never be asked for again"
        );
        assert_eq!(
            counted_bytes(&cache),
            1000 + cache_key(2, "").feed.heap_bytes(),
            "the body and the key's strings"
        );
        // A rendering of version 1 that finished after version 2 arrived is not kept.
        cache.insert(cache_key(1, "q=late"), rendering(1, 1000));
        assert!(cache.get(&cache_key(1, "q=late")).is_none());
        assert_eq!(renderings(&cache).len(), 1);
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
            assert!(
                none_match_fails(value, etag, false),
                "{value:?} matches {etag}"
            );
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
                !none_match_fails(value, etag, false),
                "{value:?} does not match {etag}"
            );
        }
        // The gzip form's tag, `"00ab-gz"`, for a request that gets that form; not the other.
        let gzip_matching = ["\"00ab-gz\"", "W/\"00ab-gz\"", "*", "\"00ab\", \"00ab-gz\""];
        for value in gzip_matching {
            assert!(
                none_match_fails(value, etag, true),
                "{value:?} matches gzip"
            );
        }
        for value in [
            "\"00ab\"",
            "W/\"00ab\"",
            "\"00ab-gz",
            "\"00ab-gzip\"",
            "\"00a-gz\"",
        ] {
            assert!(
                !none_match_fails(value, etag, true),
                "{value:?} is not gzip's"
            );
        }
        assert!(!none_match_fails("\"00ab-gz\"", etag, false));
        assert_eq!(gzip_etag(etag), "\"00ab-gz\"");
    }

    /// Stores `n` stories of one source, each with a paragraph of text, so a feed of them is
    /// tens of kilobytes (over [`GZIP_MIN_BYTES`]).
    async fn store_stories(store: &Store, n: usize) {
        store_stories_with_words(store, n, 0).await;
    }

    /// Like [`store_stories`], each story's text longer by `words` words of full-text prose
    /// (drawn from a vocabulary, so that it compresses about as real text does).
    async fn store_stories_with_words(store: &Store, n: usize, words: usize) {
        use crate::store::{EntryWrite, PollOutcome, PollRecord};
        let source = hourly_source("Wire", "http://wire.example/feed");
        store_source(store, &source).await;
        let now = chrono::Utc::now();
        let entries = (0..n)
            .map(|i| {
                let text = format!(
                    "Story {i}: the ministry announced duties of {i} per cent on steel imports \
                     from {} partners, to take effect next month; exporters said the measure \
                     breaks the trade agreement signed in {}.",
                    i * 7 % 13,
                    1990 + i % 30
                ) + &full_text(i, words);
                EntryWrite {
                    entry: crate::domain::Entry {
                        identity: format!("item-{i}"),
                        title: format!("Steel duties, round {i}"),
                        earlier_title: None,
                        content_hash_with_dates: String::new(),
                        content_hash_with_pixels: None,
                        media: Default::default(),
                        content_hash_without_media: None,
                        relative_urls: false,
                        content_hash_exact_white_space: String::new(),
                        content_hash_exact_white_space_without_media: None,
                        untracked_hash: None,
                        base_url: None,
                        link: Some(format!("http://wire.example/{i}")),
                        canonical_url: Some(format!("http://wire.example/{i}")),
                        authors: Vec::new(),
                        published: now - chrono::Duration::minutes(i as i64),
                        updated: now - chrono::Duration::minutes(i as i64),
                        dated: true,
                        html: format!("<p>{text}</p>"),
                        fingerprint: format!("fp-{i}"),
                        content_hash: format!("4:{i}"),
                        text,
                    },
                    signature: None,
                    near_matches: Vec::new(),
                    headline: None,
                    scores: Some(Vec::new()),
                    replaces_hash: None,
                }
            })
            .collect();
        store
            .record_poll(PollRecord {
                source: source.name.clone(),
                url: source.url.clone(),
                source_row: None,
                started_at: now,
                duration: std::time::Duration::ZERO,
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
                entries,
                listed: Default::default(),
                cluster_window: chrono::Duration::days(7),
            })
            .await
            .unwrap();
        // Indexed now rather than when the writer is next idle, which would make a new data
        // version (and renderings) in the middle of a test.
        store.catch_up_search().await.unwrap();
    }

    /// `words` words of prose for story `i`: trade-news vocabulary in a pseudo-random order
    /// (so that a rendering compresses to about a quarter, as real full-text feeds do).
    fn full_text(i: usize, words: usize) -> String {
        const VOCABULARY: [&str; 48] = [
            "the",
            "ministry",
            "said",
            "tariffs",
            "on",
            "steel",
            "and",
            "aluminium",
            "would",
            "rise",
            "from",
            "next",
            "month",
            "exporters",
            "warned",
            "that",
            "retaliation",
            "against",
            "farm",
            "goods",
            "was",
            "likely",
            "negotiators",
            "met",
            "in",
            "Geneva",
            "to",
            "discuss",
            "quotas",
            "for",
            "cars",
            "while",
            "officials",
            "denied",
            "any",
            "breach",
            "of",
            "the",
            "agreement",
            "signed",
            "last",
            "year",
            "by",
            "both",
            "governments",
            "after",
            "months",
            "talks",
        ];
        let mut state = (i as u64).wrapping_mul(6_364_136_223_846_793_005) | 1;
        let mut text = String::with_capacity(words * 7);
        for w in 0..words {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            text.push(' ');
            text.push_str(VOCABULARY[(state >> 33) as usize % VOCABULARY.len()]);
            if w % 17 == 16 {
                text.push('.');
            }
        }
        text
    }

    /// A client that leaves the body as sent (reqwest would otherwise ask for gzip itself and
    /// inflate it out of sight).
    fn raw_client() -> reqwest::Client {
        reqwest::Client::builder()
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .build()
            .unwrap()
    }

    /// What a feed answer carried: status, the headers that matter here, and the body.
    #[derive(Debug)]
    struct Answer {
        status: u16,
        encoding: Option<String>,
        etag: String,
        vary: Option<String>,
        content_type: Option<String>,
        body: Vec<u8>,
    }

    async fn ask(method: reqwest::Method, url: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = raw_client().request(method, url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        Answer {
            status: response.status().as_u16(),
            encoding: header("content-encoding"),
            etag: header("etag").unwrap_or_default(),
            vary: header("vary"),
            content_type: header("content-type"),
            body: response.bytes().await.unwrap().to_vec(),
        }
    }

    fn inflate(body: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .expect("a gzip body");
        out
    }

    #[test]
    fn accept_encoding_is_read_with_q_values_star_identity_and_any_case() {
        let takes = [
            "gzip",
            "GZIP",
            "x-gzip",
            "X-Gzip;q=0.5",
            "deflate, gzip;q=1.0, br",
            "*",
            "br;q=1, *;q=0.1",
            "gzip ; q=0.001",
            "gzip;Q=1",
            "identity;q=0.5, gzip",
            "identity;q=0, gzip;q=0.2",
            "gzip;q=0, x-gzip",
            "gzip;q=0.8, identity;q=0.8",
        ];
        let refuses = [
            "",
            "identity",
            "deflate, br",
            "gzip;q=0",
            "gzip;q=0.000",
            "x-gzip;q=0",
            "gzip;q=0, *",
            "*;q=0",
            "gzip;q=0.5, identity",
            "gzip;q=2",
            "gzip;q=0.0001",
            "gzip;q=yes",
            "gzipped",
            "zip",
        ];
        let of = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            takes_gzip(&headers)
        };
        for value in takes {
            assert!(of(value), "{value:?} takes gzip");
        }
        for value in refuses {
            assert!(!of(value), "{value:?} does not take gzip");
        }
        // No header at all: identity (the RFC allows any coding; curl and wrk could not read it).
        assert!(!takes_gzip(&HeaderMap::new()));
        // Split over two header lines.
        let mut headers = HeaderMap::new();
        headers.append(header::ACCEPT_ENCODING, HeaderValue::from_static("br"));
        headers.append(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(takes_gzip(&headers));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_gzip_client_gets_a_gzip_body_that_inflates_to_exactly_the_identity_body() {
        let dir = tempfile::tempdir().unwrap();
        let (state, base) = serve_empty(dir.path()).await;
        store_stories(&state.store, 40).await;
        let url = format!("{base}/feeds/all.atom");
        let identity = ask(reqwest::Method::GET, &url, &[]).await;
        assert_eq!(identity.status, 200);
        assert_eq!(identity.encoding, None);
        assert_eq!(identity.vary.as_deref(), Some("accept-encoding"));
        assert!(
            identity.body.len() > GZIP_MIN_BYTES,
            "{}",
            identity.body.len()
        );
        let gz_etag = format!("{}-gz\"", identity.etag.strip_suffix('"').unwrap());

        for accept in [
            "gzip",
            "x-gzip",
            "GZip",
            "*",
            "br;q=1, gzip;q=0.8",
            "gzip, deflate, br",
        ] {
            let gzip = ask(reqwest::Method::GET, &url, &[("accept-encoding", accept)]).await;
            assert_eq!(gzip.status, 200, "{accept}");
            assert_eq!(gzip.encoding.as_deref(), Some("gzip"), "{accept}");
            assert_eq!(gzip.vary.as_deref(), Some("accept-encoding"), "{accept}");
            assert_eq!(gzip.etag, gz_etag, "{accept}: its own ETag");
            assert_eq!(gzip.content_type, identity.content_type, "{accept}");
            assert!(gzip.body.len() < identity.body.len() / 2, "{accept}");
            assert!(
                inflate(&gzip.body) == identity.body,
                "{accept}: the same bytes"
            );
        }
        for accept in [
            "identity",
            "gzip;q=0",
            "GZIP;Q=0.0",
            "gzip;q=0, *",
            "*;q=0",
            "deflate, br",
            "gzip;q=0.5, identity",
        ] {
            let answer = ask(reqwest::Method::GET, &url, &[("accept-encoding", accept)]).await;
            assert_eq!(answer.status, 200, "{accept}");
            assert_eq!(answer.encoding, None, "{accept}");
            assert_eq!(answer.vary.as_deref(), Some("accept-encoding"), "{accept}");
            assert_eq!(answer.etag, identity.etag, "{accept}");
            assert!(answer.body == identity.body, "{accept}");
        }

        // HEAD: the headers of GET, for either form.
        let head = ask(reqwest::Method::HEAD, &url, &[("accept-encoding", "gzip")]).await;
        assert_eq!(head.status, 200);
        assert_eq!(head.encoding.as_deref(), Some("gzip"));
        assert_eq!(head.etag, gz_etag);
        assert_eq!(head.vary.as_deref(), Some("accept-encoding"));
        assert!(head.body.is_empty());
        let head = ask(reqwest::Method::HEAD, &url, &[]).await;
        assert_eq!((head.encoding, head.etag), (None, identity.etag.clone()));
        assert_eq!(head.vary.as_deref(), Some("accept-encoding"));

        // The other formats too.
        for format in ["rss", "json"] {
            let url = format!("{base}/feeds/all.{format}");
            let identity = ask(reqwest::Method::GET, &url, &[]).await;
            let gzip = ask(reqwest::Method::GET, &url, &[("accept-encoding", "gzip")]).await;
            assert_eq!(gzip.encoding.as_deref(), Some("gzip"), "{format}");
            assert!(inflate(&gzip.body) == identity.body, "{format}");
        }
        state.store.close().await;
    }

    /// A 304 may carry only the length of the 200 it stands for (RFC 9110 8.6), so it carries
    /// none: axum's `content-length: 0` for an empty body reached a HEAD's 304.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_304_carries_no_content_length_for_get_or_head() {
        let dir = tempfile::tempdir().unwrap();
        let (state, base) = serve_empty(dir.path()).await;
        let url = format!("{base}/feeds/all.atom");
        let first = raw_client().get(&url).send().await.unwrap();
        assert_eq!(first.status(), 200);
        assert!(first.headers().contains_key("content-length"));
        let etag = first.headers()["etag"].to_str().unwrap().to_string();
        // The first conditional request may render; the next answer from the validator alone.
        for method in [
            reqwest::Method::GET,
            reqwest::Method::HEAD,
            reqwest::Method::HEAD,
            reqwest::Method::GET,
        ] {
            let answer = raw_client()
                .request(method.clone(), &url)
                .header("if-none-match", &etag)
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 304, "{method}");
            assert_eq!(answer.headers().get("content-length"), None, "{method}");
            assert_eq!(answer.headers()["etag"].to_str().unwrap(), etag);
        }
        state.store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tiny_feeds_and_error_pages_are_sent_uncompressed() {
        let dir = tempfile::tempdir().unwrap();
        let (state, base) = serve_empty(dir.path()).await;
        let gzip = [("accept-encoding", "gzip")];
        // No stories: a few hundred bytes.
        let empty = ask(
            reqwest::Method::GET,
            &format!("{base}/feeds/all.atom"),
            &gzip,
        )
        .await;
        assert_eq!(empty.status, 200);
        assert!(empty.body.len() < GZIP_MIN_BYTES, "{}", empty.body.len());
        assert_eq!(empty.encoding, None);
        assert!(!empty.etag.contains("-gz"), "{}", empty.etag);
        assert_eq!(empty.vary.as_deref(), Some("accept-encoding"));
        // Its ETag gives a 304 to the gzip client too (it gets that one form).
        let again = ask(
            reqwest::Method::GET,
            &format!("{base}/feeds/all.atom"),
            &[("accept-encoding", "gzip"), ("if-none-match", &empty.etag)],
        )
        .await;
        assert_eq!((again.status, again.etag), (304, empty.etag.clone()));
        for path in [
            "/feeds/nope.atom",
            "/feeds/all.atom?limit=0",
            "/feeds/all.txt",
        ] {
            let error = ask(reqwest::Method::GET, &format!("{base}{path}"), &gzip).await;
            assert!(error.status >= 400, "{path}");
            assert_eq!(error.encoding, None, "{path}");
        }
        state.store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conditional_requests_get_a_304_for_the_form_they_ask_for() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let mut state = empty_state(dir.path());
        let renders = count_renders(&mut state);
        // No earlier process served these feeds: a date's own second counts at once.
        state.cache.lock().unwrap().forgotten_modified = 0;
        let base = serve_state(&state).await;
        store_stories(&state.store, 40).await;
        // Kept in the cache, and (the second round) too big to keep: answered from the
        // validator alone.
        for (round, query) in ["", "?limit=49"].into_iter().enumerate() {
            if round == 1 {
                state.cache.lock().unwrap().max_entry_bytes = 0;
            }
            let url = format!("{base}/feeds/all.atom{query}");
            let identity = ask(reqwest::Method::GET, &url, &[]).await;
            let gzip = ask(reqwest::Method::GET, &url, &[("accept-encoding", "gzip")]).await;
            assert_eq!((identity.status, gzip.status), (200, 200));
            assert_ne!(identity.etag, gzip.etag);
            let rendered = renders.load(Ordering::SeqCst);
            let weak = |etag: &str| format!("W/{etag}");
            for (accept, held, want) in [
                // Each form's own tag, strong or weakened (by nginx), gives its 304.
                ("gzip", gzip.etag.clone(), 304),
                ("gzip", weak(&gzip.etag), 304),
                ("", identity.etag.clone(), 304),
                ("", weak(&identity.etag), 304),
                ("gzip", format!("\"x\", {}", gzip.etag), 304),
                ("gzip", "*".to_string(), 304),
                // The other form's tag names other bytes: the form asked for is sent.
                ("gzip", identity.etag.clone(), 200),
                ("", gzip.etag.clone(), 200),
                ("gzip;q=0", gzip.etag.clone(), 200),
            ] {
                let mut headers = vec![("if-none-match", held.as_str())];
                if !accept.is_empty() {
                    headers.push(("accept-encoding", accept));
                }
                let answer = ask(reqwest::Method::GET, &url, &headers).await;
                let case = format!("round {round}: {accept:?} holding {held}");
                assert_eq!(answer.status, want, "{case}");
                assert_eq!(answer.vary.as_deref(), Some("accept-encoding"), "{case}");
                let sent = if accept == "gzip" { &gzip } else { &identity };
                assert_eq!(
                    answer.etag, sent.etag,
                    "{case}: the ETag of the form asked for"
                );
                if want == 304 {
                    assert!(answer.body.is_empty(), "{case}");
                } else {
                    assert_eq!(answer.encoding, sent.encoding, "{case}");
                    assert!(answer.body == sent.body, "{case}");
                }
            }
            // If-Modified-Since, for either form.
            let modified = get_feed(&url, &[]).await.2;
            for accept in ["gzip", "identity"] {
                let answer = ask(
                    reqwest::Method::GET,
                    &url,
                    &[
                        ("accept-encoding", accept),
                        ("if-modified-since", &modified),
                    ],
                )
                .await;
                let sent = if accept == "gzip" { &gzip } else { &identity };
                assert_eq!((answer.status, &answer.etag), (304, &sent.etag), "{accept}");
                assert_eq!(answer.vary.as_deref(), Some("accept-encoding"));
            }
            if round == 1 {
                assert_eq!(
                    renders.load(Ordering::SeqCst),
                    rendered + 4,
                    "too big to keep: rendered for each 200, not for the 304s"
                );
            } else {
                assert_eq!(
                    renders.load(Ordering::SeqCst),
                    rendered,
                    "all from the cache"
                );
            }
        }
        state.store.close().await;
    }

    /// The cache's entry for `query` on `/feeds/all.atom`: its rendering and what it counts.
    fn cached(state: &HttpState, query: &str) -> Option<(Arc<Rendered>, usize)> {
        let cache = state.cache.lock().unwrap();
        cache
            .feeds
            .iter()
            .find(|(k, _)| k.query == query && k.format == Format::Atom)
            .and_then(|(_, s)| Some((Arc::clone(s.rendered.as_ref()?), s.rendered_bytes)))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_feed_is_compressed_once_and_its_gzip_form_counts_in_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let (state, base) = serve_empty(dir.path()).await;
        store_stories(&state.store, 40).await;
        let gzip = [("accept-encoding", "gzip")];

        // Rendered for an identity client: no gzip form yet; made for the first gzip client
        // and counted then.
        let url = format!("{base}/feeds/all.atom?limit=40");
        assert_eq!(ask(reqwest::Method::GET, &url, &[]).await.status, 200);
        let (rendered, counted) = cached(&state, "limit=40").unwrap();
        assert!(
            rendered.gzip.get().is_none(),
            "not compressed for identity clients"
        );
        let before = state.cache.lock().unwrap().bytes;
        let first = ask(reqwest::Method::GET, &url, &gzip).await;
        assert_eq!(first.encoding.as_deref(), Some("gzip"));
        let (kept, grown) = cached(&state, "limit=40").unwrap();
        assert!(
            Arc::ptr_eq(&kept, &rendered),
            "the same rendering, not rendered again"
        );
        let gz = rendered.gzip.get().expect("compressed").len();
        assert_eq!(gz, first.body.len());
        assert_eq!(grown, counted + gz, "the gzip form counts");
        assert_eq!(state.cache.lock().unwrap().bytes, before + gz);
        // Later gzip clients get the same bytes.
        let second = ask(reqwest::Method::GET, &url, &gzip).await;
        assert!(second.body == first.body);
        assert_eq!(
            state.cache.lock().unwrap().bytes,
            before + gz,
            "counted once"
        );

        // Rendered for a gzip client: compressed on the rendering thread, counted when stored.
        let url = format!("{base}/feeds/all.atom?limit=30");
        let answer = ask(reqwest::Method::GET, &url, &gzip).await;
        let (rendered, counted) = cached(&state, "limit=30").unwrap();
        let gz = rendered.gzip.get().expect("compressed when rendered");
        assert!(*gz == answer.body);
        let key = cache_key(0, "limit=30").feed;
        assert_eq!(
            counted,
            rendered.body.as_ref().unwrap().len() + gz.len() + key.heap_bytes()
                - key.base_url.len()
                + base.len()
        );
        {
            let cache = state.cache.lock().unwrap();
            let sum: usize = cache.feeds.values().map(|s| s.rendered_bytes).sum();
            assert_eq!(cache.bytes, sum);
        }
        state.store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_feed_too_large_to_keep_in_both_forms_is_rendered_once_for_clients_taking_turns() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let mut state = empty_state(dir.path());
        let renders = count_renders(&mut state);
        let base = serve_state(&state).await;
        // Full-text stories: the rendering compresses to about a quarter, as real ones do.
        store_stories_with_words(&state.store, 40, 300).await;
        let gzip = [("accept-encoding", "gzip")];
        let url = |limit: usize| format!("{base}/feeds/all.atom?limit={limit}");

        // The two forms of the renderings, as served with room for both.
        let mut forms = Vec::new();
        for limit in [40, 39] {
            let identity = ask(reqwest::Method::GET, &url(limit), &[]).await;
            let gzipped = ask(reqwest::Method::GET, &url(limit), &gzip).await;
            assert_eq!(
                (identity.status, gzipped.encoding.as_deref()),
                (200, Some("gzip"))
            );
            forms.push((identity, gzipped));
        }
        let (body, gz) = (forms[0].0.body.len(), forms[0].1.body.len());
        assert!(gz * 3 < body, "{gz} of {body} bytes");

        for (case, bound, first_gzip) in [
            // Either form fits, not both (a 500-story full-text feed against 8 MiB).
            ("one form fits, identity first", body + gz / 2, false),
            ("one form fits, gzip first", body + gz / 2, true),
            // Only the gzip form fits.
            ("only gzip fits, identity first", body / 2, false),
        ] {
            *state.cache.lock().unwrap() = FeedCache {
                max_entry_bytes: bound,
                ..FeedCache::default()
            };
            let before = renders.load(Ordering::SeqCst);
            for turn in 0..6 {
                let takes_gzip = (turn % 2 == 0) == first_gzip;
                let limit = if turn < 3 { 40 } else { 39 };
                let (identity, gzipped) = &forms[usize::from(limit == 39)];
                let headers: &[(&str, &str)] = if takes_gzip { &gzip } else { &[] };
                let answer = ask(reqwest::Method::GET, &url(limit), headers).await;
                let sent = if takes_gzip { gzipped } else { identity };
                let what = format!("{case}: turn {turn}");
                assert_eq!(answer.status, 200, "{what}");
                assert_eq!(answer.encoding, sent.encoding, "{what}");
                assert_eq!(answer.etag, sent.etag, "{what}");
                assert!(answer.body == sent.body, "{what}: the same bytes");
            }
            assert_eq!(
                renders.load(Ordering::SeqCst) - before,
                2,
                "{case}: each feed rendered once"
            );
        }
        state.store.close().await;
    }

    /// A HEAD of the identity form of a feed the cache keeps in gzip form alone answers the
    /// headers its GET answers, Content-Length included, without inflating the gzip form
    /// (only the GET, which sends the body, does) and without rendering the feed again.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_head_of_a_feed_kept_in_gzip_form_alone_answers_its_headers_without_inflating_it() {
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let mut state = empty_state(dir.path());
        let renders = count_renders(&mut state);
        let base = serve_state(&state).await;
        store_stories_with_words(&state.store, 40, 300).await;
        let url = format!("{base}/feeds/all.atom");
        let gzip = [("accept-encoding", "gzip")];
        // The headers that describe a representation (not Date).
        let described = |response: &reqwest::Response| -> Vec<(&'static str, Option<String>)> {
            [
                "content-type",
                "content-length",
                "content-encoding",
                "etag",
                "last-modified",
                "vary",
                "cache-control",
            ]
            .into_iter()
            .map(|name| {
                let value = response.headers().get(name);
                (name, value.map(|v| v.to_str().unwrap().to_string()))
            })
            .collect()
        };
        let identity_len = ask(reqwest::Method::GET, &url, &[]).await.body.len();
        // Room for the gzip form alone; rendered for a gzip client, kept so.
        *state.cache.lock().unwrap() = FeedCache {
            max_entry_bytes: identity_len / 2,
            ..FeedCache::default()
        };
        let gzipped = ask(reqwest::Method::GET, &url, &gzip).await;
        assert_eq!(gzipped.encoding.as_deref(), Some("gzip"));
        let (kept, _) = cached(&state, "").expect("its gzip form is kept");
        assert!(kept.body.is_none(), "kept in gzip form alone");
        let rendered = renders.load(Ordering::SeqCst);
        let inflated = || state.renders.inflated.load(Ordering::SeqCst);
        // The stories were stored this second: until it has passed, Last-Modified is clamped
        // to the time of each answer (see `set_validators`), and HEAD and GET could straddle
        // a second and differ in it.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

        let head = raw_client().head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200);
        let head_headers = described(&head);
        assert!(head.bytes().await.unwrap().is_empty());
        assert_eq!(inflated(), 0, "the HEAD inflated nothing");

        let get = raw_client().get(&url).send().await.unwrap();
        assert_eq!(get.status(), 200);
        let get_headers = described(&get);
        let body = get.bytes().await.unwrap();
        assert_eq!(inflated(), 1, "the GET inflated the gzip form");
        assert_eq!(body.len(), identity_len);
        assert_eq!(head_headers, get_headers);
        let length = head_headers
            .iter()
            .find(|(name, _)| *name == "content-length");
        assert_eq!(
            length.and_then(|(_, v)| v.as_deref()),
            Some(identity_len.to_string().as_str()),
            "the identity form's length"
        );
        assert_eq!(renders.load(Ordering::SeqCst), rendered, "nothing rendered");
        state.store.close().await;
    }

    /// A rendering of `bytes` whose gzip form (set, not compressed: the sizes are what matter)
    /// is `gz` bytes.
    fn rendering_with_gzip(version: u64, bytes: usize, gz: usize) -> Arc<Rendered> {
        // Over GZIP_MIN_BYTES, and distinct bodies.
        let body: Vec<u8> = (0..bytes).map(|i| (i % 251) as u8).collect();
        let rendered = Rendered::new(version, body);
        rendered.gzip.set(vec![0; gz].into()).unwrap();
        Arc::new(rendered)
    }

    #[test]
    fn a_gzip_form_made_only_to_be_kept_stops_once_it_cannot_be() {
        // Text that compresses poorly (a pseudo-random byte stream), 2 MiB: its gzip form is
        // nearly as large as the body.
        let mut x: u32 = 1;
        let body: Vec<u8> = (0..2 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                b'a' + (x % 26) as u8
            })
            .collect();
        let rendered = Rendered::new(1, body.clone());
        assert!(!rendered.gzip_within(64 << 10), "past 64 KiB: not made");
        assert!(
            rendered.gzip.get().is_none(),
            "nothing kept of a form that cannot be"
        );
        assert!(rendered.gzip_within(4 << 20), "within 4 MiB: made");
        let gz = rendered.gzip.get().expect("the gzip form is kept").clone();
        let mut inflated = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut inflated)
            .unwrap();
        assert!(inflated == body, "the gzip form inflates to the body");
        assert!(
            rendered.gzip() == &gz,
            "and is the form served to gzip clients"
        );
    }

    /// Everything the kept renderings hold, both forms, counted afresh.
    fn held_bytes(cache: &FeedCache) -> usize {
        renderings(cache)
            .iter()
            .map(|(k, r)| {
                r.body.as_ref().map_or(0, |b| b.len())
                    + r.gzip.get().map_or(0, |g| g.len())
                    + k.heap_bytes()
            })
            .sum()
    }

    #[test]
    fn the_cache_byte_budget_holds_with_gzip_forms_made_before_or_after_storing() {
        let mb = 1 << 20;
        let mut cache = FeedCache::default();
        // Made before storing: counted at once, so fewer fit.
        for n in 0..40 {
            cache.insert(
                cache_key(1, &format!("limit={n}")),
                rendering_with_gzip(1, mb, mb / 2),
            );
            assert!(held_bytes(&cache) <= CACHE_BYTES, "after {n}");
        }
        assert_eq!(counted_bytes(&cache), held_bytes(&cache));
        assert!(
            renderings(&cache).len() < CACHE_BYTES / mb,
            "fewer than without gzip"
        );

        // Made after storing (the first gzip request of a feed rendered for identity).
        let mut cache = FeedCache::default();
        let mut kept = Vec::new();
        for n in 0..30 {
            let key = cache_key(1, &format!("q=a{n}"));
            let rendered = Arc::new(Rendered::new(
                1,
                (0..mb).map(|i| ((i + n) % 251) as u8).collect(),
            ));
            cache.insert(key.clone(), Arc::clone(&rendered));
            kept.push((key, rendered));
        }
        assert_eq!(renderings(&cache).len(), 30, "identity forms alone fit");
        for (key, rendered) in &kept {
            rendered.gzip.set(vec![0; mb / 2].into()).unwrap();
            cache.grown(key, rendered);
            assert!(held_bytes(&cache) <= CACHE_BYTES);
            assert_eq!(counted_bytes(&cache), held_bytes(&cache));
        }
        let (last_key, last) = kept.last().unwrap();
        assert!(
            cache.get(last_key).is_some_and(|r| Arc::ptr_eq(&r, last)),
            "the one just grown stays"
        );
        assert!(
            renderings(&cache).len() < kept.len(),
            "others went for room"
        );

        // A rendering whose two forms together are over the largest entry keeps its gzip
        // form alone, made before storing or after; one whose gzip form alone is over it, or
        // that has none, is not kept.
        let mut cache = FeedCache {
            max_entry_bytes: 3 * mb / 2,
            ..FeedCache::default()
        };
        let big = cache_key(1, "q=big");
        cache.insert(big.clone(), rendering_with_gzip(1, mb, mb));
        let kept = cache.get(&big).expect("its gzip form is kept");
        assert!(kept.body.is_none());
        assert_eq!(counted_bytes(&cache), held_bytes(&cache));
        let rendered = Arc::new(Rendered::new(1, vec![b'x'; mb]));
        cache.insert(big.clone(), Arc::clone(&rendered));
        assert!(cache.get(&big).is_some(), "kept while it has one form");
        rendered.gzip.set(vec![0; mb].into()).unwrap();
        cache.grown(&big, &rendered);
        let kept = cache
            .get(&big)
            .expect("its gzip form stays once it is made");
        assert!(kept.body.is_none() && kept.gzip.get() == rendered.gzip.get());
        assert_eq!(counted_bytes(&cache), held_bytes(&cache));
        let huge = cache_key(1, "q=huge");
        cache.insert(huge.clone(), rendering_with_gzip(1, mb, 2 * mb));
        cache.insert(
            cache_key(1, "q=plain"),
            Arc::new(Rendered::new(1, vec![b'x'; 2 * mb])),
        );
        assert!(cache.get(&huge).is_none());
        assert!(cache.get(&cache_key(1, "q=plain")).is_none());
        assert_eq!(counted_bytes(&cache), held_bytes(&cache));
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
            "limit=%2B5",
            "limit=+5",
            "limit=",
            "source=",
            &seventeen,
            "limit=1&limit=1",
            "q=a&source=S&q=b",
            "source=A&source=A",
        ] {
            assert!(parse_params(Some(bad)).is_err(), "{bad} should be rejected");
        }
        let sixteen = format!("q={}", ["steel"; 16].join("+"));
        assert!(parse_params(Some(&sixteen)).is_ok());
        // Pieces without a letter or digit are no words: they count towards no limit.
        let punctuation = format!("q=steel+{}", ["!"; 30].join("+"));
        assert!(parse_params(Some(&punctuation)).is_ok());
    }

    /// A 400 quotes the client's value, but not all of a huge one: a `?limit=` of 60,000
    /// digits answered with a 60 KB page.
    #[test]
    fn a_refused_value_is_quoted_up_to_64_characters() {
        assert_eq!(echoed("ten"), "\"ten\"");
        let long = "9".repeat(60_000);
        let message = parse_params(Some(&format!("limit={long}"))).unwrap_err();
        assert!(message.len() < 200, "{message}");
        assert!(
            message.ends_with(&format!("got \"{}\"… (60000 characters)", "9".repeat(64))),
            "{message}"
        );
        // Cut at a character, not a byte.
        let wide = "é".repeat(100);
        assert_eq!(
            echoed(&wide),
            format!("{:?}… (100 characters)", "é".repeat(64))
        );
        assert_eq!(echoed(&"é".repeat(64)), format!("{:?}", "é".repeat(64)));
    }
}
