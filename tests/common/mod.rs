//! Shared test support: a real HTTP feed server on 127.0.0.1 and config/app helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, Response, StatusCode, header};

/// One resource the server answers with.
#[derive(Clone)]
pub struct Resource {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
}

impl Resource {
    pub fn feed(body: impl Into<Vec<u8>>) -> Resource {
        Resource {
            status: 200,
            body: body.into(),
            content_type: "application/rss+xml".into(),
            headers: Vec::new(),
        }
    }
}

#[derive(Default)]
struct ServerState {
    resources: HashMap<String, Resource>,
    hits: HashMap<String, usize>,
    not_modified: usize,
    requests: Arc<tokio::sync::Notify>,
}

/// A static feed server: serves what tests put in it, with ETag/Last-Modified and 304s the way
/// a well-behaved web server (nginx) does.
#[derive(Clone)]
pub struct FeedServer {
    pub addr: SocketAddr,
    state: Arc<Mutex<ServerState>>,
}

impl FeedServer {
    pub async fn start() -> FeedServer {
        let state = Arc::new(Mutex::new(ServerState::default()));
        let app = Router::new()
            .route("/{*path}", axum::routing::get(serve))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FeedServer { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    pub fn put(&self, path: &str, resource: Resource) {
        self.state
            .lock()
            .unwrap()
            .resources
            .insert(path.trim_start_matches('/').to_string(), resource);
    }

    pub fn hits(&self, path: &str) -> usize {
        *self
            .state
            .lock()
            .unwrap()
            .hits
            .get(path.trim_start_matches('/'))
            .unwrap_or(&0)
    }

    /// Waits until `path` has been requested at least `n` times, or panics after `timeout`.
    pub async fn wait_for_hits(&self, path: &str, n: usize, timeout: std::time::Duration) {
        let notify = Arc::clone(&self.state.lock().unwrap().requests);
        tokio::time::timeout(timeout, async {
            loop {
                let notified = notify.notified();
                if self.hits(path) >= n {
                    return;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{path} was not requested {n} times within {timeout:?}"));
    }

    pub fn not_modified_count(&self) -> usize {
        self.state.lock().unwrap().not_modified
    }
}

async fn serve(
    State(state): State<Arc<Mutex<ServerState>>>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response<Body> {
    let mut state = state.lock().unwrap();
    *state.hits.entry(path.clone()).or_insert(0) += 1;
    state.requests.notify_waiters();
    let Some(resource) = state.resources.get(&path).cloned() else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("not found"))
            .unwrap();
    };
    let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(&resource.body));
    if resource.status == 200
        && headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str())
    {
        state.not_modified += 1;
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, etag)
            .body(Body::empty())
            .unwrap();
    }
    let mut builder = Response::builder()
        .status(resource.status)
        .header(header::CONTENT_TYPE, &resource.content_type);
    if resource.status == 200 {
        builder = builder
            .header(header::ETAG, etag)
            .header(header::LAST_MODIFIED, "Wed, 21 Oct 2026 07:28:00 GMT");
    }
    for (k, v) in &resource.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder.body(Body::from(resource.body)).unwrap()
}

/// Writes a config into `dir` and returns its path.
pub fn write_config(dir: &Path, sources: &[(&str, String)], extra: &str) -> PathBuf {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[storage]\npath = \"tradefeed.db\"\n\n\
         [defaults]\nschedule = \"*/5 * * * *\"\ntimeout_secs = 5\nmax_jitter_secs = 0\n\
         per_host_concurrency = 8\n{extra}\n"
    );
    for (name, url) in sources {
        text.push_str(&format!(
            "[[sources]]\nname = \"{name}\"\nurl = \"{url}\"\n\n"
        ));
    }
    let path = dir.join("tradefeed.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `text` with every `from` replaced by `to`. Panics if `from` does not occur: a test that
/// edits the text [`write_config`] writes then fails loudly when that text changes, rather
/// than running on a config it did not mean.
pub fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "{from:?} is not in the text to edit:\n{text}"
    );
    text.replace(from, to)
}

/// A loopback port that was free a moment ago (another process may take it before the test
/// binds it: use it where the daemon must be given an address rather than port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Like [`write_config`], with `[server] listen` on a port that was free a moment ago (for
/// tests that start the binary, which must be told its port). Returns the path and the port.
pub fn write_config_on_free_port(
    dir: &Path,
    sources: &[(&str, String)],
    extra: &str,
) -> (PathBuf, u16) {
    let port = free_port();
    let path = write_config(dir, sources, extra);
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&path, text).unwrap();
    (path, port)
}

/// An RSS 2.0 feed with the given items (guid, link, title, description, pubDate).
pub fn rss(title: &str, items: &[(&str, &str, &str, &str, &str)]) -> String {
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>{title}</title><link>http://example.org/</link><description>test</description>\n"
    );
    for (guid, link, t, desc, date) in items {
        xml.push_str(&format!(
            "<item><guid>{guid}</guid><link>{link}</link><title>{t}</title>\
             <description>{desc}</description><pubDate>{date}</pubDate></item>\n"
        ));
    }
    xml.push_str("</channel></rss>\n");
    xml
}

/// Where the shared corpora live, if present.
pub fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TRADEFEED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "notice: corpus folder {} not found (set TRADEFEED_DATA); skipping the corpus part",
            dir.display()
        );
        None
    }
}

/// Starts the daemon in-process on a free port; returns its base URL and how to stop it.
pub async fn start_daemon(
    config: tradefeed::config::Config,
) -> (
    String,
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let cancel = tokio_util::sync::CancellationToken::new();
    let handle = tokio::spawn(tradefeed::app::run(config, listener, cancel.clone()));
    (base, cancel, handle)
}

/// Starts the daemon in-process on the address its config names (`[server] listen`), as
/// `tradefeed run` does: for the tests that reload or probe that address. Stop it with
/// [`stop_daemon`].
pub async fn start_daemon_on_configured_listen(
    config: tradefeed::config::Config,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let handle = tokio::spawn(tradefeed::app::run(config, listener, cancel.clone()));
    (cancel, handle)
}

/// Stops a daemon started by [`start_daemon`] and checks it exits cleanly within 10 s.
pub async fn stop_daemon(
    cancel: tokio_util::sync::CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
) {
    cancel.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), handle)
        .await
        .expect("stops within 10 s")
        .unwrap()
        .unwrap();
}

/// GET returning status and body text.
pub async fn get_text(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A one-item feed about EU anti-dumping duties on steel.
pub fn steel_duties_feed() -> Resource {
    Resource::feed(rss(
        "A",
        &[(
            "a1",
            "http://a.example/1",
            "EU imposes anti-dumping duties on Chinese steel",
            "The European Commission imposed provisional anti-dumping duties on steel imports.",
            "Tue, 10 Nov 2026 09:00:00 GMT",
        )],
    ))
}

/// A one-item feed about a Canada–UK trade deal.
pub fn trade_deal_feed() -> Resource {
    Resource::feed(rss(
        "B",
        &[(
            "b1",
            "http://b.example/1",
            "Canada and UK sign trade continuity deal",
            "Ottawa and London signed an agreement keeping tariff-free trade in place.",
            "Tue, 10 Nov 2026 09:00:00 GMT",
        )],
    ))
}

/// The `tradefeed` binary with `--config CONFIG ARGS…`, a quiet log and none of the
/// environment overrides of the machine running the tests.
pub fn tradefeed_command(config: &Path, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tradefeed"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("TRADEFEED_CONFIG")
        .env_remove("TRADEFEED_DB")
        .env_remove("TRADEFEED_LISTEN");
    command
}

/// Every row of `sql`, a query of two columns, in the database at `db` (read beside the
/// daemon's own connections).
pub fn row_pairs<A, B>(db: &Path, sql: &str) -> Vec<(A, B)>
where
    A: rusqlite::types::FromSql,
    B: rusqlite::types::FromSql,
{
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut statement = conn.prepare(sql).unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// One `fetch` pass over the config's sources (the pipeline opened and closed around it): each
/// source's report; a source the pass skipped or found stopped fails the test.
pub async fn fetch_pass(config: &tradefeed::config::Config) -> Vec<tradefeed::ingest::PollReport> {
    let pipeline = tradefeed::app::Pipeline::start(config).await.unwrap();
    let results = tradefeed::app::fetch_once(&pipeline, config.sources.clone(), 8).await;
    pipeline.store.close().await;
    results
        .into_iter()
        .map(|r| match r {
            tradefeed::app::FetchPassResult::Polled(p) => p,
            tradefeed::app::FetchPassResult::Skipped { source, reason } => {
                panic!("{source} skipped: {reason}")
            }
            tradefeed::app::FetchPassResult::Stopped { source, reason } => {
                panic!("{source} stopped: {reason}")
            }
        })
        .collect()
}

/// Sends SIGHUP to this test process, whose daemon (run in-process) takes it as a reload.
pub fn sighup_self() {
    let pid = std::process::id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
}

/// A daemon's log read so far: its lines up to and including the first that contains
/// `needle` (the daemon's stderr, read line by line).
pub fn log_until(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    needle: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    for line in lines {
        let line = line.unwrap();
        let done = line.contains(needle);
        seen.push(line);
        if done {
            return seen;
        }
    }
    panic!("the daemon's log ended before {needle:?}: {seen:#?}");
}
