//! The fetcher against real local servers that misbehave on purpose.
//!
//! Each test starts its own raw HTTP/1.1 server on 127.0.0.1:0 (bound before it is used, so no
//! waiting for readiness). Every response closes its connection, so one connection is one
//! request.

use std::collections::HashMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use flate2::{Compress, Compression, Crc, FlushCompress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tradefeed::fetch::{
    FetchError, FetchLimits, FetchOutcome, FetchRequest, FetchedFeed, Fetcher, Validators,
};

/// A small RSS document of our own.
const FEED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Test</title>\
                    <item><title>Tariff talks resume</title><guid>t-1</guid></item>\
                    </channel></rss>";
const ETAG: &str = "\"v1\"";
const LAST_MODIFIED: &str = "Wed, 21 Oct 2026 07:28:00 GMT";

/// The HTTP date `/busy-date` asks to wait until: two days from the first use, in whole seconds
/// (a Retry-After more than a week ahead is cut to a week, so a fixed date would not do).
fn retry_date() -> DateTime<Utc> {
    static DATE: OnceLock<DateTime<Utc>> = OnceLock::new();
    *DATE.get_or_init(|| {
        let at = Utc::now() + chrono::Duration::days(2);
        DateTime::from_timestamp(at.timestamp(), 0).unwrap()
    })
}
const MIB: u64 = 1024 * 1024;

/// One request as the server saw it; header names lower-cased.
#[derive(Debug, Clone)]
struct SeenRequest {
    path: String,
    headers: HashMap<String, String>,
    /// When the request head was complete.
    arrived: Instant,
}

#[derive(Debug, Default)]
struct ServerState {
    requests: Mutex<Vec<SeenRequest>>,
    /// `/slow` requests being worked on, and the most at once.
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
    /// Told of every request recorded.
    arrived: tokio::sync::Notify,
    /// One permit answers one `/held-redirect`.
    release: Held,
}

/// Permits to answer held requests: none until the test adds them.
#[derive(Debug)]
struct Held(tokio::sync::Semaphore);

impl Default for Held {
    fn default() -> Self {
        Held(tokio::sync::Semaphore::new(0))
    }
}

struct TestServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    bomb: Arc<Vec<u8>>,
}

impl TestServer {
    async fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(ServerState::default());
        let bomb = shared_bomb();
        let (task_state, task_bomb) = (state.clone(), bomb.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, bomb) = (task_state.clone(), task_bomb.clone());
                tokio::spawn(async move { serve(stream, addr, state, bomb).await });
            }
        });
        TestServer { addr, state, bomb }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn requests(&self) -> Vec<SeenRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until a request for a path starting with `prefix` has arrived.
    async fn arrival(&self, prefix: &str) {
        let seen = || self.requests().iter().any(|r| r.path.starts_with(prefix));
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.state.arrived.notified();
                if seen() {
                    return;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no request for {prefix} within 10 s"));
    }
}

/// Reads one request head, records it and answers according to the path.
async fn serve(
    mut stream: TcpStream,
    addr: SocketAddr,
    state: Arc<ServerState>,
    bomb: Arc<Vec<u8>>,
) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    state.requests.lock().unwrap().push(request.clone());
    state.arrived.notify_waiters();
    // Write errors mean the client hung up, which several tests provoke on purpose.
    let _ = respond(&mut stream, addr, &request, &state, &bomb).await;
}

async fn read_request(stream: &mut TcpStream) -> Option<SeenRequest> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 || buffer.len() > 64 * 1024 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Some(SeenRequest {
        path,
        headers,
        arrived: Instant::now(),
    })
}

fn head(status: &str, headers: &[(&str, String)]) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

/// A complete response with a body and its Content-Length.
fn full(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut all = headers.to_vec();
    all.push(("Content-Length", body.len().to_string()));
    let mut bytes = head(status, &all);
    bytes.extend_from_slice(body);
    bytes
}

fn redirect(status: &str, location: &str) -> Vec<u8> {
    full(status, &[("Location", location.to_string())], b"moved")
}

async fn respond(
    stream: &mut TcpStream,
    addr: SocketAddr,
    request: &SeenRequest,
    state: &ServerState,
    bomb: &[u8],
) -> std::io::Result<()> {
    let header = |name: &str| request.headers.get(name).map(String::as_str);
    let feed_headers = [
        (
            "Content-Type",
            "application/rss+xml; charset=utf-8".to_string(),
        ),
        ("ETag", ETAG.to_string()),
        ("Last-Modified", LAST_MODIFIED.to_string()),
    ];
    let bytes = match request.path.as_str() {
        "/feed" => {
            let unchanged = header("if-none-match") == Some(ETAG)
                || (header("if-none-match").is_none()
                    && header("if-modified-since") == Some(LAST_MODIFIED));
            if unchanged {
                head("304 Not Modified", &[("ETag", ETAG.to_string())])
            } else {
                full("200 OK", &feed_headers, FEED.as_bytes())
            }
        }
        "/gzip" => {
            let mut headers = feed_headers.to_vec();
            headers.push(("Content-Encoding", "gzip".to_string()));
            full("200 OK", &headers, &gzip(FEED.as_bytes()))
        }
        "/x-gzip" | "/GZIP" | "/gzip-identity" => {
            // Other spellings of gzip, which the client leaves to us (RFC 9110 §8.4.1).
            let coding = match request.path.as_str() {
                "/x-gzip" => "x-gzip",
                "/GZIP" => "GZIP",
                _ => "identity, X-GZip",
            };
            let mut headers = feed_headers.to_vec();
            headers.push(("Content-Encoding", coding.to_string()));
            full("200 OK", &headers, &gzip(FEED.as_bytes()))
        }
        "/gzip-file" => {
            // A gzip file served as is, with no Content-Encoding.
            let headers = [("Content-Type", "application/xml".to_string())];
            full("200 OK", &headers, &gzip(FEED.as_bytes()))
        }
        "/gzip-twice" => {
            let mut headers = feed_headers.to_vec();
            headers.push(("Content-Encoding", "gzip".to_string()));
            full("200 OK", &headers, &gzip(&gzip(FEED.as_bytes())))
        }
        "/gzip-members" => {
            // Two gzip members, one after the other, make one file (RFC 1952 §2.2).
            let half = FEED.len() / 2;
            let mut body = gzip(&FEED.as_bytes()[..half]);
            body.extend_from_slice(&gzip(&FEED.as_bytes()[half..]));
            full(
                "200 OK",
                &[("Content-Encoding", "x-gzip".to_string())],
                &body,
            )
        }
        path if path.starts_with("/corpus/") => {
            // A file of the shared corpus, as a plain web server serves it: no coding.
            let name = &path["/corpus/".len()..];
            match corpus_dir().map(|dir| std::fs::read(dir.join(name))) {
                Some(Ok(body)) => full("200 OK", &[], &body),
                _ => full("404 Not Found", &[], b"not found"),
            }
        }
        "/deflate-zlib" | "/deflate-raw" | "/gzip-plain" => {
            // deflate as RFC 9110 says (zlib-wrapped), as some servers send it (the raw
            // stream), and a plain body labelled gzip.
            let (coding, body) = match request.path.as_str() {
                "/deflate-zlib" => ("deflate", zlib(FEED.as_bytes())),
                "/deflate-raw" => ("deflate", raw_deflate(FEED.as_bytes())),
                _ => ("gzip", FEED.as_bytes().to_vec()),
            };
            let mut headers = feed_headers.to_vec();
            headers.push(("Content-Encoding", coding.to_string()));
            full("200 OK", &headers, &body)
        }
        "/deflate-plain" => {
            let mut headers = feed_headers.to_vec();
            headers.push(("Content-Encoding", "deflate".to_string()));
            full("200 OK", &headers, FEED.as_bytes())
        }
        path if path.starts_with("/stacked/") => {
            // Codings listed in the order applied (RFC 9110 §8.4), each applied in turn.
            let codings = path["/stacked/".len()..].replace("%20", " ");
            let mut body = FEED.as_bytes().to_vec();
            for coding in codings.split(',').map(str::trim) {
                body = match coding.to_ascii_lowercase().as_str() {
                    "gzip" | "x-gzip" => gzip(&body),
                    "deflate" => zlib(&body),
                    "br" => brotli_stored(&body),
                    // The magic of `compress` (LZW) before the bytes: opaque as LZW would be.
                    "compress" => [b"\x1f\x9d".as_slice(), &body].concat(),
                    _ => body,
                };
            }
            let mut headers = feed_headers.to_vec();
            headers.push(("Content-Encoding", codings));
            full("200 OK", &headers, &body)
        }
        path if path.starts_with("/mislabelled-gzip/") => {
            // A gzip file under a label that is no coding we decode (`none`, a media type).
            let label = path["/mislabelled-gzip/".len()..].replace("%2F", "/");
            let mut headers = feed_headers.to_vec();
            headers.push(("Content-Encoding", label));
            full("200 OK", &headers, &gzip(FEED.as_bytes()))
        }
        "/two-field-lines" => {
            // `deflate` then `gzip`, each on its own Content-Encoding line: one list.
            let mut headers = feed_headers.to_vec();
            headers.push(("Content-Encoding", "deflate".to_string()));
            headers.push(("Content-Encoding", "gzip".to_string()));
            full("200 OK", &headers, &gzip(&zlib(FEED.as_bytes())))
        }
        "/bomb-stacked" => {
            // The bomb gzipped once more: small on the wire and after the first inflation.
            let headers = [("Content-Encoding", "gzip, gzip".to_string())];
            full("200 OK", &headers, &gzip(bomb))
        }
        "/bomb-deflate-raw" => {
            // The bomb's deflate stream without its gzip header (10 bytes) and trailer (8).
            let headers = [("Content-Encoding", "deflate".to_string())];
            stream.write_all(&head("200 OK", &headers)).await?;
            for piece in bomb[10..bomb.len() - 8].chunks(16 * 1024) {
                stream.write_all(piece).await?;
            }
            return stream.shutdown().await;
        }
        "/bomb" | "/bomb-x-gzip" | "/bomb-file" => {
            let mut headers = vec![("Content-Type", "application/rss+xml".to_string())];
            match request.path.as_str() {
                "/bomb" => headers.push(("Content-Encoding", "gzip".to_string())),
                "/bomb-x-gzip" => headers.push(("Content-Encoding", "x-gzip".to_string())),
                _ => {}
            }
            // No Content-Length: the body runs until the connection closes.
            stream.write_all(&head("200 OK", &headers)).await?;
            for piece in bomb.chunks(16 * 1024) {
                stream.write_all(piece).await?;
            }
            return stream.shutdown().await;
        }
        "/endless" => {
            stream.write_all(&head("200 OK", &[])).await?;
            let zeros = vec![0u8; 64 * 1024];
            loop {
                stream.write_all(&zeros).await?;
            }
        }
        "/declared-huge" => {
            // Claims 50 MiB, then sends nothing: only the header can say no this fast.
            stream
                .write_all(&head(
                    "200 OK",
                    &[("Content-Length", (50 * MIB).to_string())],
                ))
                .await?;
            tokio::time::sleep(Duration::from_secs(30)).await;
            return Ok(());
        }
        "/drip" => {
            stream
                .write_all(&head("200 OK", &[("Content-Length", "100".to_string())]))
                .await?;
            for _ in 0..100 {
                stream.write_all(b"x").await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            return Ok(());
        }
        "/bad-gzip" => full(
            "200 OK",
            &[("Content-Encoding", "gzip".to_string())],
            b"this is not gzip at all",
        ),
        "/bad-deflate" => full(
            "200 OK",
            &[("Content-Encoding", "deflate".to_string())],
            b"this is not deflate at all",
        ),
        "/bad-x-gzip" => full(
            "200 OK",
            &[("Content-Encoding", "x-gzip".to_string())],
            b"this is not gzip at all",
        ),
        "/cut-short-gzip" => {
            // A gzip file that stops halfway, the connection closed cleanly.
            let whole = gzip(FEED.as_bytes());
            full("200 OK", &[], &whole[..whole.len() / 2])
        }
        "/cut-short" => {
            // Promises 1000 bytes, sends 10, hangs up.
            stream
                .write_all(&head("200 OK", &[("Content-Length", "1000".to_string())]))
                .await?;
            stream.write_all(b"<rss><chan").await?;
            return stream.shutdown().await;
        }
        "/silent" => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return Ok(());
        }
        "/slow" => {
            // Counted while being worked on; the count drops before the answer is written, so
            // the client cannot start its next request while this one still counts.
            let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            state.peak_in_flight.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(150)).await;
            state.in_flight.fetch_sub(1, Ordering::SeqCst);
            full("200 OK", &feed_headers, FEED.as_bytes())
        }
        path if path.starts_with("/held-redirect") => {
            // A 301 to `?to=URL` (or `/feed`), sent when the test releases it.
            state
                .release
                .0
                .acquire()
                .await
                .expect("never closed")
                .forget();
            let to = path.split_once("?to=").map_or("/feed", |(_, to)| to);
            redirect("301 Moved Permanently", to)
        }
        path if path.starts_with("/redirect?to=") => {
            redirect("302 Found", &path["/redirect?to=".len()..])
        }
        "/loop-a" => redirect("302 Found", "/loop-b"),
        "/loop-b" => redirect("302 Found", "/loop-a"),
        path if path.starts_with("/chain/") => {
            let step: u32 = path["/chain/".len()..].parse().unwrap_or(0);
            redirect("302 Found", &format!("/chain/{}", step + 1))
        }
        "/moved" => redirect("301 Moved Permanently", "moved-again"),
        "/moved-again" => redirect("308 Permanent Redirect", &format!("http://{addr}/feed")),
        "/temp" => redirect("302 Found", "/feed"),
        "/see-other" => redirect("303 See Other", "/feed"),
        "/temp-307" => redirect("307 Temporary Redirect", "/feed"),
        "/moved-then-temp" => redirect("301 Moved Permanently", "/temp"),
        "/temp-then-moved" => redirect("302 Found", "/moved-again"),
        "/moved-nowhere" => full("301 Moved Permanently", &[], b""),
        "/moved-to-ftp" => redirect("301 Moved Permanently", "ftp://example.org/feed"),
        "/gone" => full("410 Gone", &[], b"gone"),
        "/busy-seconds" => full(
            "429 Too Many Requests",
            &[("Retry-After", "120".to_string())],
            b"",
        ),
        "/busy-date" => full(
            "429 Too Many Requests",
            &[("Retry-After", httpdate::fmt_http_date(retry_date().into()))],
            b"",
        ),
        "/busy-plain" => full("429 Too Many Requests", &[], b""),
        "/unavailable" => full(
            "503 Service Unavailable",
            &[("Retry-After", "30".to_string())],
            b"",
        ),
        "/unavailable-plain" => full("503 Service Unavailable", &[], b""),
        "/error" => full("500 Internal Server Error", &[], b"oops"),
        "/forbidden" => full("403 Forbidden", &[], b"no"),
        _ => full("404 Not Found", &[], b"not found"),
    };
    stream.write_all(&bytes).await?;
    stream.shutdown().await
}

/// The shared feed corpus, if present (see `tests/parse_fixtures.rs`).
fn corpus_dir() -> Option<std::path::PathBuf> {
    let data = match std::env::var_os("TRADEFEED_DATA") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data")),
    };
    let feeds = data.join("feeds");
    feeds.is_dir().then_some(feeds)
}

/// The 1 GiB bomb, built once per test binary.
fn shared_bomb() -> Arc<Vec<u8>> {
    static BOMB: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
    BOMB.get_or_init(|| Arc::new(gzip_bomb(1024))).clone()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// `data` as a brotli stream of one uncompressed meta-block (RFC 7932 §9.2), at most 64 KiB:
/// the window size (22 bits), a meta-block header (not last, four nibbles of length - 1, the
/// uncompressed flag), the bytes, then an empty last meta-block.
fn brotli_stored(data: &[u8]) -> Vec<u8> {
    let len_minus_one = data.len() - 1;
    assert!(len_minus_one < 1 << 16);
    let mut stream = vec![
        0x0b | ((len_minus_one & 1) << 7) as u8,
        (len_minus_one >> 1) as u8,
        0x80 | (len_minus_one >> 9) as u8,
    ];
    stream.extend_from_slice(data);
    stream.push(0x03);
    stream
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A valid gzip file of `mebibytes` MiB of zeros, built from one compressed MiB repeated.
///
/// A full flush leaves the deflate stream byte-aligned with no back-references across it, so
/// the compressed MiB can be repeated as is; only the CRC needs the whole length. 1024 MiB
/// compress to about 1 MiB.
fn gzip_bomb(mebibytes: u32) -> Vec<u8> {
    let zeros = vec![0u8; MIB as usize];
    let mut compress = Compress::new(Compression::best(), false);
    let mut block = Vec::with_capacity(64 * 1024);
    compress
        .compress_vec(&zeros, &mut block, FlushCompress::Full)
        .unwrap();
    assert_eq!(
        compress.total_in(),
        MIB,
        "one call compresses the whole MiB"
    );
    assert!(block.len() < block.capacity(), "the flush completed");

    let mut one_mib_crc = Crc::new();
    one_mib_crc.update(&zeros);
    let mut crc = Crc::new();
    let mut bomb = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
    for _ in 0..mebibytes {
        bomb.extend_from_slice(&block);
        crc.combine(&one_mib_crc);
    }
    // An empty final block with fixed codes, then CRC-32 and length mod 2^32 (little-endian).
    bomb.extend_from_slice(&[0x03, 0x00]);
    bomb.extend_from_slice(&crc.sum().to_le_bytes());
    bomb.extend_from_slice(&crc.amount().to_le_bytes());
    bomb
}

fn limits() -> FetchLimits {
    FetchLimits {
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(5),
        max_body_bytes: 4 * MIB,
        max_redirects: 5,
        per_host_concurrency: 8,
        ..FetchLimits::default()
    }
}

fn get(url: String) -> FetchRequest {
    FetchRequest {
        url,
        ..FetchRequest::default()
    }
}

fn fetched(outcome: Result<FetchOutcome, FetchError>) -> FetchedFeed {
    match outcome {
        Ok(FetchOutcome::Fetched(feed)) => feed,
        other => panic!("expected a fetched feed, got {other:?}"),
    }
}

/// Held by the tests that measure peak memory, so no two of them run at once: `VmHWM` is the
/// whole process's peak, and one bomb test's inflating must not count in another's window.
static MEMORY_MEASURED: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How much a bomb test's peak memory may grow. Inflating a whole bomb needs 1 GiB, the body
/// limit is 4 MiB: 256 MiB tells the two apart by a wide margin, and leaves room for the other
/// tests of this binary, which run in parallel and share the process's peak.
const MAX_PEAK_GROWTH_KIB: u64 = 256 * 1024;

/// Peak resident memory of this process in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn the_test_bomb_is_a_valid_gzip_of_zeros() {
    let small = gzip_bomb(3);
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(small.as_slice())
        .read_to_end(&mut inflated)
        .expect("valid gzip");
    assert_eq!(inflated.len() as u64, 3 * MIB);
    assert!(inflated.iter().all(|b| *b == 0));
    let full = shared_bomb();
    assert!(
        full.len() < 2 * MIB as usize,
        "1 GiB of zeros compresses to {} bytes",
        full.len()
    );
}

#[tokio::test]
async fn a_plain_feed_is_fetched_with_its_validators_and_our_user_agent() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let feed = fetched(fetcher.fetch(&get(server.url("/feed"))).await);
    assert_eq!(
        feed,
        FetchedFeed {
            final_url: server.url("/feed"),
            content_type: Some("application/rss+xml; charset=utf-8".to_string()),
            body: FEED.as_bytes().to_vec(),
            validators: Validators {
                etag: Some(ETAG.to_string()),
                last_modified: Some(LAST_MODIFIED.to_string()),
                permanent_redirect: None,
            },
        }
    );
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let agent = requests[0].headers.get("user-agent").cloned();
    assert!(
        agent
            .as_deref()
            .is_some_and(|a| a.starts_with("tradefeed/")),
        "User-Agent was {agent:?}"
    );
    assert!(!requests[0].headers.contains_key("if-none-match"));
    assert!(!requests[0].headers.contains_key("if-modified-since"));
}

#[tokio::test]
async fn conditional_requests_send_the_validators_and_a_match_gives_not_modified() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let not_modified = Ok(FetchOutcome::NotModified(Validators {
        etag: Some(ETAG.to_string()),
        // The 304 carries only the ETag; the Last-Modified we sent is kept.
        last_modified: Some(LAST_MODIFIED.to_string()),
        permanent_redirect: None,
    }));
    let cases: &[(Option<&str>, Option<&str>, bool)] = &[
        (Some(ETAG), Some(LAST_MODIFIED), true),
        (Some(ETAG), None, true),
        (None, Some(LAST_MODIFIED), true),
        (Some("\"old\""), Some(LAST_MODIFIED), false),
        (None, Some("Mon, 01 Jan 2024 00:00:00 GMT"), false),
    ];
    for (index, (etag, last_modified, unchanged)) in cases.iter().enumerate() {
        let request = FetchRequest {
            url: server.url("/feed"),
            etag: etag.map(str::to_string),
            last_modified: last_modified.map(str::to_string),
            ..FetchRequest::default()
        };
        let outcome = fetcher.fetch(&request).await;
        if *unchanged {
            let mut expected = not_modified.clone();
            if let Ok(FetchOutcome::NotModified(validators)) = &mut expected {
                validators.last_modified = last_modified.map(str::to_string);
            }
            assert_eq!(outcome, expected, "{etag:?} {last_modified:?}");
        } else {
            assert_eq!(fetched(outcome).body, FEED.as_bytes(), "{etag:?}");
        }
        let seen = &server.requests()[index];
        assert_eq!(seen.headers.get("if-none-match").map(String::as_str), *etag);
        assert_eq!(
            seen.headers.get("if-modified-since").map(String::as_str),
            *last_modified
        );
    }
}

#[tokio::test]
async fn a_gzip_encoded_feed_arrives_decompressed() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let feed = fetched(fetcher.fetch(&get(server.url("/gzip"))).await);
    assert_eq!(feed.body, FEED.as_bytes());
    let accepted = server.requests()[0].headers.get("accept-encoding").cloned();
    assert!(
        accepted.as_deref().is_some_and(|a| a.contains("gzip")),
        "Accept-Encoding was {accepted:?}"
    );
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_the_body_limit_quickly_with_bounded_memory() {
    let server = TestServer::start().await;
    assert!(server.bomb.len() < 2 * MIB as usize);
    let fetcher = Fetcher::new(limits()).unwrap();
    let _measuring = MEMORY_MEASURED.lock().await;
    let peak_before = peak_rss_kib();
    let outcome = fetcher.fetch(&get(server.url("/bomb"))).await;
    // TooLarge, not Timeout: the fetch stopped within its 5 s total time limit. No tighter
    // wall-clock bound: this is not a benchmark, and the box may be loaded.
    assert_eq!(outcome, Err(FetchError::TooLarge { limit: 4 * MIB }));
    assert_peak_grew_less_than_a_bomb(peak_before);
}

/// Asserts that the process's peak memory grew less than [`MAX_PEAK_GROWTH_KIB`] since
/// `before` (a reading of [`peak_rss_kib`]); no check where the figure cannot be read.
fn assert_peak_grew_less_than_a_bomb(before: Option<u64>) {
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        assert!(
            after.saturating_sub(before) < MAX_PEAK_GROWTH_KIB,
            "peak memory grew by {} KiB",
            after - before
        );
    }
}

#[tokio::test]
async fn gzip_bodies_the_client_leaves_compressed_arrive_decompressed() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    for path in [
        "/x-gzip",
        "/GZIP",
        "/gzip-identity",
        "/gzip-file",
        "/gzip-twice",
        "/gzip-members",
    ] {
        let feed = fetched(fetcher.fetch(&get(server.url(path))).await);
        assert_eq!(
            String::from_utf8_lossy(&feed.body),
            FEED,
            "{path} arrived still compressed or mangled"
        );
    }
}

#[tokio::test]
async fn raw_deflate_and_a_plain_body_labelled_gzip_arrive_as_the_feed() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    for path in ["/deflate-zlib", "/deflate-raw", "/gzip-plain"] {
        let feed = fetched(fetcher.fetch(&get(server.url(path))).await);
        assert_eq!(String::from_utf8_lossy(&feed.body), FEED, "{path}");
    }
    let accepted = server.requests()[0].headers.get("accept-encoding").cloned();
    assert_eq!(accepted.as_deref(), Some("gzip, deflate, br"));
}

#[tokio::test]
async fn a_plain_feed_labelled_deflate_arrives_as_sent() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let feed = fetched(fetcher.fetch(&get(server.url("/deflate-plain"))).await);
    assert_eq!(String::from_utf8_lossy(&feed.body), FEED);
}

#[tokio::test]
async fn a_feed_under_stacked_codings_arrives_with_every_layer_removed() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    for codings in [
        "gzip,%20gzip",
        "deflate,%20gzip",
        "gzip,%20deflate",
        "X-Gzip,%20identity,%20deflate,%20gzip",
        "deflate,%20gzip,%20deflate,%20gzip",
    ] {
        let feed = fetched(
            fetcher
                .fetch(&get(server.url(&format!("/stacked/{codings}"))))
                .await,
        );
        assert_eq!(String::from_utf8_lossy(&feed.body), FEED, "{codings}");
    }
    // Brotli alone, as the client decodes it as it reads: unchanged.
    let feed = fetched(fetcher.fetch(&get(server.url("/stacked/br"))).await);
    assert_eq!(String::from_utf8_lossy(&feed.body), FEED, "br");
    // The list given on two field lines (RFC 9110 5.3).
    let feed = fetched(fetcher.fetch(&get(server.url("/two-field-lines"))).await);
    assert_eq!(String::from_utf8_lossy(&feed.body), FEED, "two field lines");
}

/// A gzip file is inflated whatever it is labelled: under no coding, and under a label that
/// is no coding at all (`application/x-gzip` is a common misconfiguration for `.xml.gz`).
#[tokio::test]
async fn a_gzip_file_under_a_label_that_is_no_coding_is_inflated() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    for label in [
        "none",
        "UTF-8",
        "application%2Fx-gzip",
        "application%2Fgzip",
        "deflate",
    ] {
        let feed = fetched(
            fetcher
                .fetch(&get(server.url(&format!("/mislabelled-gzip/{label}"))))
                .await,
        );
        assert_eq!(String::from_utf8_lossy(&feed.body), FEED, "{label}");
    }
}

#[tokio::test]
async fn too_many_codings_or_brotli_in_a_list_are_transport_errors_that_say_so() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    for (codings, expected) in [
        ("gzip,gzip,gzip,gzip,gzip", "lists 5 codings"),
        ("br,%20gzip", "brotli"),
        ("gzip,%20br", "brotli"),
        ("compress,%20gzip", "\"compress\""),
    ] {
        let outcome = fetcher
            .fetch(&get(server.url(&format!("/stacked/{codings}"))))
            .await;
        let Err(FetchError::Transport(message)) = &outcome else {
            panic!("{codings}: expected a transport error, got {outcome:?}");
        };
        assert!(message.contains(expected), "{codings}: {message}");
    }
}

#[tokio::test]
async fn a_gzip_bomb_inside_a_second_gzip_layer_stops_at_the_body_limit_with_bounded_memory() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let _measuring = MEMORY_MEASURED.lock().await;
    let peak_before = peak_rss_kib();
    let outcome = fetcher.fetch(&get(server.url("/bomb-stacked"))).await;
    assert_eq!(outcome, Err(FetchError::TooLarge { limit: 4 * MIB }));
    assert_peak_grew_less_than_a_bomb(peak_before);
}

#[tokio::test]
async fn a_raw_deflate_bomb_stops_at_the_body_limit_with_bounded_memory() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let _measuring = MEMORY_MEASURED.lock().await;
    let peak_before = peak_rss_kib();
    let outcome = fetcher.fetch(&get(server.url("/bomb-deflate-raw"))).await;
    assert_eq!(outcome, Err(FetchError::TooLarge { limit: 4 * MIB }));
    assert_peak_grew_less_than_a_bomb(peak_before);
}

#[tokio::test]
async fn a_gzip_bomb_under_another_coding_name_or_none_stops_at_the_body_limit() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let _measuring = MEMORY_MEASURED.lock().await;
    let peak_before = peak_rss_kib();
    for path in ["/bomb-x-gzip", "/bomb-file"] {
        let outcome = fetcher.fetch(&get(server.url(path))).await;
        // TooLarge, not Timeout: stopped within the 5 s total time limit (no benchmark here).
        assert_eq!(
            outcome,
            Err(FetchError::TooLarge { limit: 4 * MIB }),
            "{path}"
        );
    }
    assert_peak_grew_less_than_a_bomb(peak_before);
}

#[tokio::test]
async fn the_corpus_files_saved_gzip_compressed_fetch_and_parse_when_served_without_a_coding() {
    let Some(dir) = corpus_dir() else {
        eprintln!("NOTICE: feed corpus not found; skipping (set TRADEFEED_DATA)");
        return;
    };
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(FetchLimits {
        max_body_bytes: 10 * MIB,
        ..limits()
    })
    .unwrap();
    let mut compressed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let raw = std::fs::read(&path).unwrap();
        if !raw.starts_with(&[0x1f, 0x8b]) {
            continue;
        }
        compressed += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let feed = fetched(
            fetcher
                .fetch(&get(server.url(&format!("/corpus/{name}"))))
                .await,
        );
        let mut expected = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut expected)
            .unwrap();
        assert_eq!(feed.body, expected, "{name}");
        let parsed = tradefeed::parse::parse_feed(&feed.body, feed.content_type.as_deref());
        assert!(
            parsed.is_ok_and(|parsed| !parsed.items.is_empty()),
            "{name} did not parse into items"
        );
    }
    // MANIFEST.md names two: compressed.xml and invalid-characters-gzipped.xml.
    assert_eq!(compressed, 2, "gzip files in {}", dir.display());
}

#[tokio::test]
async fn an_endless_plain_body_stops_at_the_body_limit() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let outcome = fetcher.fetch(&get(server.url("/endless"))).await;
    assert_eq!(outcome, Err(FetchError::TooLarge { limit: 4 * MIB }));
}

#[tokio::test]
async fn a_declared_content_length_over_the_limit_is_refused_before_reading() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let outcome = fetcher.fetch(&get(server.url("/declared-huge"))).await;
    // The server sends no body after its 50 MiB header: a fetch that waited for the body
    // would end at the 5 s total timeout (`Timeout`), so `TooLarge` can only come from the
    // header check. No wall-clock bound: tests are not benchmarks, and the box may be loaded.
    assert_eq!(outcome, Err(FetchError::TooLarge { limit: 4 * MIB }));
}

#[tokio::test]
async fn servers_that_drip_or_never_answer_are_cut_off_by_the_total_timeout() {
    let server = TestServer::start().await;
    let total = Duration::from_secs(2);
    let fetcher = Fetcher::new(FetchLimits {
        total_timeout: total,
        ..limits()
    })
    .unwrap();
    let timed = |path: &'static str| {
        let (fetcher, url) = (fetcher.clone(), server.url(path));
        async move {
            let started = Instant::now();
            let outcome = fetcher.fetch(&get(url)).await;
            (path, outcome, started.elapsed())
        }
    };
    // Both at once, to keep the test at one timeout's length.
    let (drip, silent) = tokio::join!(timed("/drip"), timed("/silent"));
    for (path, outcome, elapsed) in [drip, silent] {
        assert_eq!(outcome, Err(FetchError::Timeout(total)), "{path}");
        assert!(
            elapsed >= total - Duration::from_millis(50) && elapsed < total * 2,
            "{path} took {elapsed:?}"
        );
    }
}

#[tokio::test]
async fn redirect_loops_and_overlong_chains_are_told_apart() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let loop_outcome = fetcher.fetch(&get(server.url("/loop-a"))).await;
    assert_eq!(
        loop_outcome,
        Err(FetchError::RedirectLoop(server.url("/loop-a")))
    );
    assert_eq!(loop_outcome.unwrap_err().kind(), "redirects");
    // The loop is noticed on revisiting /loop-a, not after five hops.
    assert_eq!(server.requests().len(), 2);

    let chain_outcome = fetcher.fetch(&get(server.url("/chain/0"))).await;
    assert_eq!(chain_outcome, Err(FetchError::TooManyRedirects(5)));
    // The original request plus five followed redirects; the sixth is not followed.
    assert_eq!(server.requests().len(), 2 + 6);
}

#[tokio::test]
async fn only_a_chain_of_permanent_redirects_is_recorded_as_the_new_url() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let cases: &[(&str, Option<&str>)] = &[
        // 301 (relative Location) then 308 (absolute): the feed moved for good.
        ("/moved", Some("/feed")),
        ("/moved-again", Some("/feed")),
        ("/temp", None),
        ("/see-other", None),
        ("/temp-307", None),
        // Permanent up to /temp, which then redirects temporarily: /temp is the new home.
        ("/moved-then-temp", Some("/temp")),
        // A temporary first hop means the configured URL is still the right one.
        ("/temp-then-moved", None),
    ];
    for (path, recorded) in cases {
        let feed = fetched(fetcher.fetch(&get(server.url(path))).await);
        assert_eq!(feed.final_url, server.url("/feed"), "{path}");
        assert_eq!(feed.body, FEED.as_bytes(), "{path}");
        assert_eq!(
            feed.validators.permanent_redirect,
            recorded.map(|p| server.url(p)),
            "{path}"
        );
    }

    // A moved feed that is also unchanged still reports the move.
    let request = FetchRequest {
        url: server.url("/moved"),
        etag: Some(ETAG.to_string()),
        last_modified: None,
        ..FetchRequest::default()
    };
    assert_eq!(
        fetcher.fetch(&request).await,
        Ok(FetchOutcome::NotModified(Validators {
            etag: Some(ETAG.to_string()),
            last_modified: None,
            permanent_redirect: Some(server.url("/feed")),
        }))
    );
}

#[tokio::test]
async fn redirects_without_a_usable_location_fail_cleanly() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    assert_eq!(
        fetcher.fetch(&get(server.url("/moved-nowhere"))).await,
        Err(FetchError::Status(301))
    );
    let to_ftp = fetcher.fetch(&get(server.url("/moved-to-ftp"))).await;
    assert_eq!(
        to_ftp.as_ref().map_err(FetchError::kind),
        Err("invalid_url")
    );
}

#[tokio::test]
async fn error_statuses_map_to_typed_errors() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let retry_date = retry_date();
    let cases: &[(&str, FetchError)] = &[
        ("/gone", FetchError::Gone),
        (
            "/busy-date",
            FetchError::RateLimited {
                status: 429,
                retry_after: Some(retry_date),
            },
        ),
        (
            "/busy-plain",
            FetchError::RateLimited {
                status: 429,
                retry_after: None,
            },
        ),
        (
            "/unavailable-plain",
            FetchError::RateLimited {
                status: 503,
                retry_after: None,
            },
        ),
        ("/error", FetchError::Status(500)),
        ("/forbidden", FetchError::Status(403)),
        ("/missing", FetchError::Status(404)),
    ];
    for (path, expected) in cases {
        let outcome = fetcher.fetch(&get(server.url(path))).await;
        assert_eq!(outcome, Err(expected.clone()), "{path}");
    }
}

#[tokio::test]
async fn retry_after_in_seconds_becomes_an_absolute_time() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    let cases: &[(&str, u16, i64)] = &[("/busy-seconds", 429, 120), ("/unavailable", 503, 30)];
    for (path, expected_status, seconds) in cases {
        let before = Utc::now();
        let outcome = fetcher.fetch(&get(server.url(path))).await;
        let after = Utc::now();
        let Err(FetchError::RateLimited {
            status,
            retry_after: Some(when),
        }) = outcome
        else {
            panic!("{path}: expected RateLimited with a time, got {outcome:?}");
        };
        assert_eq!(status, *expected_status, "{path}");
        let delay = chrono::Duration::seconds(*seconds);
        assert!(
            when >= before + delay && when <= after + delay,
            "{path}: {when} not {seconds}s after the request"
        );
    }
}

#[tokio::test]
async fn broken_bodies_are_transport_errors_with_their_cause() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(limits()).unwrap();
    for path in [
        "/bad-gzip",
        "/cut-short",
        "/bad-x-gzip",
        "/cut-short-gzip",
        "/bad-deflate",
    ] {
        let outcome = fetcher.fetch(&get(server.url(path))).await;
        let Err(FetchError::Transport(message)) = &outcome else {
            panic!("{path}: expected a transport error, got {outcome:?}");
        };
        // The message carries the cause chain, not just reqwest's outer "error decoding body".
        assert!(message.contains(": "), "{path}: {message}");
    }
}

#[tokio::test]
async fn a_refused_connection_is_a_connect_error() {
    // Bind to learn a free port, then close it so nothing listens there.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let fetcher = Fetcher::new(limits()).unwrap();
    let outcome = fetcher.fetch(&get(format!("http://{addr}/feed"))).await;
    assert!(
        matches!(outcome, Err(FetchError::Connect(_))),
        "expected Connect, got {outcome:?}"
    );
}

#[tokio::test]
async fn non_http_urls_are_refused_without_a_request() {
    let fetcher = Fetcher::new(limits()).unwrap();
    for url in ["ftp://127.0.0.1/feed", "file:///etc/hosts", "not a url"] {
        let outcome = fetcher.fetch(&get(url.to_string())).await;
        assert!(
            matches!(outcome, Err(FetchError::InvalidUrl(_))),
            "{url}: {outcome:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_than_the_per_host_concurrency_reaches_the_server_at_once() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(FetchLimits {
        per_host_concurrency: 2,
        ..limits()
    })
    .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let fetcher = fetcher.clone();
        let request = get(server.url("/slow"));
        tasks.push(tokio::spawn(async move { fetcher.fetch(&request).await }));
    }
    for task in tasks {
        assert_eq!(fetched(task.await.unwrap()).body, FEED.as_bytes());
    }
    assert_eq!(server.requests().len(), 6);
    assert_eq!(server.state.peak_in_flight.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_to_one_host_start_at_least_the_spacing_apart() {
    let server = TestServer::start().await;
    let spacing = Duration::from_millis(200);
    let fetcher = Fetcher::new(FetchLimits {
        per_host_spacing: spacing,
        ..limits()
    })
    .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let fetcher = fetcher.clone();
        let request = get(server.url("/feed"));
        tasks.push(tokio::spawn(async move { fetcher.fetch(&request).await }));
    }
    for task in tasks {
        assert_eq!(fetched(task.await.unwrap()).body, FEED.as_bytes());
    }
    let mut arrivals: Vec<Instant> = server.requests().iter().map(|r| r.arrived).collect();
    arrivals.sort();
    assert_eq!(arrivals.len(), 3);
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        // Slack for scheduling noise between the client starting a request and the server
        // reading it; without spacing the three would arrive within a few milliseconds.
        assert!(gap >= spacing - Duration::from_millis(60), "gap {gap:?}");
    }
}

/// A fetch started by the test; its outcome comes back through the handle.
fn spawn_fetch(
    fetcher: &Fetcher,
    url: String,
) -> tokio::task::JoinHandle<Result<FetchOutcome, FetchError>> {
    let fetcher = fetcher.clone();
    tokio::spawn(async move { fetcher.fetch(&get(url)).await })
}

/// The audit's case: a source redirecting within its host, which other polls keep busy with a
/// server that never answers. Its hop keeps the slot the fetch holds; queueing again let the
/// waiting poll in first, and the redirect failed as a `timeout` while that poll hung.
#[tokio::test]
async fn a_redirect_to_the_same_host_keeps_its_slot_when_other_polls_wait_for_the_host() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(FetchLimits {
        total_timeout: Duration::from_secs(2),
        per_host_concurrency: 1,
        ..limits()
    })
    .unwrap();
    let redirected = spawn_fetch(&fetcher, server.url("/held-redirect"));
    server.arrival("/held-redirect").await;
    // The redirecting fetch holds the host's only slot: this one queues for it. On this
    // single-threaded runtime a few yields run it up to that wait.
    let hanging = spawn_fetch(&fetcher, server.url("/silent"));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(!hanging.is_finished());
    server.state.release.0.add_permits(1);
    let feed = fetched(redirected.await.unwrap());
    assert_eq!(feed.final_url, server.url("/feed"));
    assert_eq!(
        feed.validators.permanent_redirect,
        Some(server.url("/feed"))
    );
    // Only then does the queued poll reach the server.
    assert_eq!(
        hanging.await.unwrap(),
        Err(FetchError::Timeout(Duration::from_secs(2)))
    );
    let paths: Vec<_> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/held-redirect", "/feed", "/silent"]);
}

/// A redirect to another host waits for a slot there like any request, and that wait is not
/// taken out of its timeout (no more than the wait for the first host's slot is).
#[tokio::test]
async fn waiting_for_a_busy_host_redirected_to_does_not_count_against_the_timeout() {
    let (origin, target) = (TestServer::start().await, TestServer::start().await);
    let total = Duration::from_secs(2);
    let fetcher = Fetcher::new(FetchLimits {
        total_timeout: total,
        per_host_concurrency: 1,
        ..limits()
    })
    .unwrap();
    let redirected = spawn_fetch(
        &fetcher,
        origin.url(&format!("/held-redirect?to={}", target.url("/feed"))),
    );
    origin.arrival("/held-redirect").await;
    // Started after the redirecting fetch, it holds the target's only slot until it times
    // out, after the redirecting fetch's own timeout would have ended had the wait counted.
    let hanging = spawn_fetch(&fetcher, target.url("/silent"));
    target.arrival("/silent").await;
    origin.state.release.0.add_permits(1);
    let feed = fetched(redirected.await.unwrap());
    assert_eq!(feed.final_url, target.url("/feed"));
    assert!(
        hanging.is_finished(),
        "the hop got the slot the hanging poll left"
    );
    assert_eq!(hanging.await.unwrap(), Err(FetchError::Timeout(total)));
}

#[tokio::test]
async fn limits_too_long_for_the_clock_fetch_instead_of_panicking() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(FetchLimits {
        connect_timeout: Duration::from_secs(u64::MAX),
        total_timeout: Duration::from_secs(u64::MAX),
        per_host_spacing: Duration::from_millis(u64::MAX),
        ..limits()
    })
    .unwrap();
    // Twice to one host: the second start waits on the spacing, which must not overflow.
    let feed = fetched(fetcher.fetch(&get(server.url("/feed"))).await);
    assert_eq!(feed.body, FEED.as_bytes());
    let second = tokio::time::timeout(
        Duration::from_millis(300),
        fetcher.fetch(&get(server.url("/feed"))),
    )
    .await;
    assert!(second.is_err(), "the second request waits for its spacing");
}

/// Limits whose ceiling, 4 × a 250 ms timeout and the 2 s spacing twice (one redirect
/// allowed), passes after 5 s: three requests to a host ahead of a fetch keep it waiting 6 s,
/// past its ceiling, a deterministic stand-in for a host whose queue of polls outlasts the
/// ceiling. A second either way: the last request ahead starts 4 s in, a second within its
/// own ceiling, and a fetch queued up to a second after the first would still wait past its.
fn ceiling_limits() -> FetchLimits {
    FetchLimits {
        total_timeout: Duration::from_millis(250),
        per_host_concurrency: 1,
        per_host_spacing: Duration::from_secs(2),
        max_redirects: 1,
        ..limits()
    }
}

/// The ceiling of [`ceiling_limits`].
const CEILING: Duration = Duration::from_secs(5);

/// Keeps `server`'s host busy for 6 s: three fetches of its feed, the first at once, the
/// others queued for their spacing (each within its own ceiling), all queued before this
/// returns.
async fn three_requests_ahead(
    fetcher: &Fetcher,
    server: &TestServer,
) -> Vec<tokio::task::JoinHandle<Result<FetchOutcome, FetchError>>> {
    let ahead: Vec<_> = (0..3)
        .map(|_| spawn_fetch(fetcher, server.url("/feed")))
        .collect();
    server.arrival("/feed").await;
    // The other two are queued at the gate by now: a spawned fetch queues at its first poll.
    tokio::time::sleep(Duration::from_millis(50)).await;
    ahead
}

/// Each of `ahead` fetched the feed: the host was spaced, not failing.
async fn all_fetched(ahead: Vec<tokio::task::JoinHandle<Result<FetchOutcome, FetchError>>>) {
    for fetch in ahead {
        fetched(fetch.await.unwrap());
    }
}

/// `outcome` is the ceiling passing, [`CEILING`] after the fetch began, mostly spent waiting.
fn assert_busy_host(what: &str, outcome: Result<FetchOutcome, FetchError>, elapsed: Duration) {
    let ceiling = CEILING;
    match &outcome {
        Err(
            error @ FetchError::BusyHost {
                ceiling: c,
                waited,
                spacing,
            },
        ) => {
            assert_eq!(*c, ceiling, "{what}");
            assert_eq!(*spacing, ceiling_limits().per_host_spacing, "{what}");
            assert!(
                *waited >= ceiling / 2 && *waited <= ceiling,
                "{what}: waited {waited:?}"
            );
            assert_eq!(error.kind(), "busy_host");
            let message = error.to_string();
            assert!(
                message.contains(
                    "gave up after 5s in all (4 × the timeout, and the host spacing once \
                     for each request a redirect chain may make)"
                ) && message.contains(
                    "waiting for a busy host's free slot (per_host_concurrency, \
                     per_host_spacing_ms)"
                ),
                "{what}: {message}"
            );
        }
        other => panic!("{what}: expected the ceiling, got {other:?}"),
    }
    assert!(
        elapsed >= ceiling - Duration::from_millis(50) && elapsed < ceiling * 2,
        "{what} took {elapsed:?}"
    );
}

/// A redirect within a spaced host waits out the spacing by itself, with no other poll in the
/// way: its ceiling leaves room for that, however short the timeout (4 × 250 ms here, against
/// a 2 s spacing), so it is fetched rather than failing as `busy_host`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_within_a_spaced_host_is_fetched_however_short_the_timeout() {
    let server = TestServer::start().await;
    let fetcher = Fetcher::new(ceiling_limits()).unwrap();
    let started = Instant::now();
    let url = server.url(&format!("/redirect?to={}", server.url("/feed")));
    let feed = fetched(fetcher.fetch(&get(url)).await);
    assert_eq!(feed.final_url, server.url("/feed"));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1950) && elapsed < CEILING,
        "the hop waited for the spacing, within the ceiling: {elapsed:?}"
    );
}

/// Waiting at a host's gate does not count against the timeout, but a fetch, waits
/// included, ends at its ceiling: at its first host as at a host a redirect leads to. Neither
/// request that waited reaches the busy host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_that_waits_for_a_busy_host_past_its_ceiling_fails_as_busy_host() {
    let (origin, target) = (TestServer::start().await, TestServer::start().await);
    let fetcher = Fetcher::new(ceiling_limits()).unwrap();
    let ahead = three_requests_ahead(&fetcher, &target).await;
    let timed = |url: String| {
        let fetcher = fetcher.clone();
        async move {
            let started = Instant::now();
            let outcome = fetcher.fetch(&get(url)).await;
            (outcome, started.elapsed())
        }
    };
    // Both at once, to keep the test at one ceiling's length.
    let (first_gate, hop) = tokio::join!(
        timed(target.url("/feed")),
        timed(origin.url(&format!("/redirect?to={}", target.url("/feed")))),
    );
    assert_busy_host("waiting at the first host", first_gate.0, first_gate.1);
    assert_busy_host("waiting at the host redirected to", hop.0, hop.1);
    all_fetched(ahead).await;
    let paths = |server: &TestServer| -> Vec<String> {
        server.requests().into_iter().map(|r| r.path).collect()
    };
    assert_eq!(paths(&target), ["/feed", "/feed", "/feed"]);
    assert_eq!(
        paths(&origin),
        [format!("/redirect?to={}", target.url("/feed"))]
    );
}

/// With no host spacing the ceiling is 4 × the timeout alone, and the `busy_host` message
/// names neither the spacing nor its setting. A fetch held at its first host, then redirected
/// to a host whose only slot is taken by requests that began after it (their ceilings end
/// after its own), waits there past its ceiling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_host_spacing_the_busy_host_message_does_not_name_the_spacing() {
    let (origin, target) = (TestServer::start().await, TestServer::start().await);
    let timeout = Duration::from_millis(600);
    let ceiling = timeout * 4;
    let fetcher = Fetcher::new(FetchLimits {
        total_timeout: timeout,
        per_host_concurrency: 1,
        per_host_spacing: Duration::ZERO,
        max_redirects: 1,
        ..limits()
    })
    .unwrap();
    let fetch = spawn_fetch(
        &fetcher,
        origin.url(&format!("/held-redirect?to={}", target.url("/feed"))),
    );
    origin.arrival("/held-redirect").await;
    // Half a timeout later, five requests that each hold the target's slot for a whole
    // timeout: the fourth holds it from 1.5 timeouts before the fetch's ceiling to half a
    // timeout after it.
    tokio::time::sleep(timeout / 2).await;
    let ahead: Vec<_> = (0..5)
        .map(|_| spawn_fetch(&fetcher, target.url("/silent")))
        .collect();
    target.arrival("/silent").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    origin.state.release.0.add_permits(1);
    match fetch.await.unwrap() {
        Err(
            error @ FetchError::BusyHost {
                ceiling: c,
                waited,
                spacing,
            },
        ) => {
            assert_eq!((c, spacing), (ceiling, Duration::ZERO));
            assert!(waited >= ceiling / 2 && waited <= ceiling, "{waited:?}");
            assert_eq!(
                error.to_string(),
                format!(
                    "gave up after 2.4s in all (4 × the timeout), {waited:?} of it waiting for \
                     a busy host's free slot (per_host_concurrency)"
                )
            );
        }
        other => panic!("expected the ceiling, got {other:?}"),
    }
    for request in ahead {
        request.abort();
    }
    assert!(
        !target.requests().iter().any(|r| r.path == "/feed"),
        "the fetch never reached the busy host"
    );
}

/// A poll whose fetch passes its ceiling is recorded against its source as `busy_host`, with
/// the message that says why, and its poll slot (one of `concurrency`) is free again at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_past_its_ceiling_is_recorded_as_busy_host_and_frees_its_slot() {
    use std::sync::RwLock;
    let (origin, target) = (TestServer::start().await, TestServer::start().await);
    let fetcher = Fetcher::new(ceiling_limits()).unwrap();
    let ahead = three_requests_ahead(&fetcher, &target).await;
    let dir = tempfile::tempdir().unwrap();
    let store = tradefeed::store::Store::open(
        &dir.path().join("t.db"),
        tradefeed::store::Access::ReadWrite,
    )
    .unwrap();
    let source = tradefeed::domain::Source {
        name: "Redirected".into(),
        url: origin.url(&format!("/redirect?to={}", target.url("/feed"))),
        schedule: tradefeed::domain::Schedule::parse("*/5 * * * *").unwrap(),
        enabled: true,
        tags: Vec::new(),
        priority: 0,
        cluster: true,
        allow_private_redirects: false,
    };
    store
        .sync_sources(std::slice::from_ref(&source), |_, t, _| t)
        .await
        .unwrap();
    let ingestor = tradefeed::ingest::Ingestor::new(
        store.clone(),
        fetcher,
        Arc::new(RwLock::new(Arc::new(
            tradefeed::classify::Classifier::builtin(),
        ))),
        tradefeed::ingest::IngestSettings {
            max_items_per_poll: 500,
            max_jitter: Duration::ZERO,
            backoff_base: Duration::from_secs(60),
            backoff_cap: Duration::from_secs(3600),
            retention: None,
            cluster: tradefeed::cluster::ClusterConfig::default(),
        },
    )
    .await
    .unwrap();
    let slots = Arc::new(tokio::sync::Semaphore::new(1));
    let slot = Arc::clone(&slots).acquire_owned().await.unwrap();
    let started = Instant::now();
    let report = ingestor
        .poll(
            &source,
            None,
            slot,
            &tokio_util::sync::CancellationToken::new(),
        )
        .await;
    let elapsed = started.elapsed();
    assert!(elapsed < CEILING * 2, "the poll took {elapsed:?}");
    assert_eq!(report.outcome, "busy_host");
    assert_eq!(slots.available_permits(), 1, "the poll's slot is free");
    let states = store.source_states().await.unwrap();
    let state = states.iter().find(|s| s.name == "Redirected").unwrap();
    assert_eq!(state.last_outcome.as_deref(), Some("busy_host"));
    let error = state.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("waiting for a busy host's free slot"),
        "{error}"
    );
    assert_eq!(state.consecutive_failures, 1);
    all_fetched(ahead).await;
    store.close().await;
}
