//! The redirect guard against real loopback servers: a feed on a public address may not send
//! tradefeed into a private network, and nothing is sent to a refused target.
//!
//! Every server here listens on loopback, so a test names one loopback address, 127.0.0.2,
//! that stands in for a public server ([`Network::with_public_stand_in`]) and answers some
//! names from a table ([`Network::with_host`]); the address rules, the checks and the
//! resolver's filtering are the production ones. The private targets listen on 127.0.0.1 and
//! count every request that reaches them. The binary is run where the environment matters
//! (proxies), since a test cannot change its own.

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tradefeed::fetch::{FetchError, FetchLimits, FetchOutcome, FetchRequest, Fetcher, Network};

const FEED: &str = "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Test</title>\
                    <item><title>Tariff talks resume</title><guid>t-1</guid></item>\
                    </channel></rss>";

/// The loopback address that plays a server on the internet.
const PUBLIC: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A raw HTTP/1.1 server: redirects for the paths given a Location, the feed for any other
/// path, one request per connection, every request counted.
struct Server {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    /// Request targets in arrival order (absolute URLs when the server is used as a proxy).
    seen: Arc<Mutex<Vec<String>>>,
    redirects: Arc<Mutex<HashMap<String, String>>>,
}

impl Server {
    /// A server on `ip`, on any free port.
    async fn start(ip: IpAddr) -> Server {
        Server::start_on(SocketAddr::new(ip, 0))
            .await
            .expect("bind")
    }

    async fn start_on(addr: SocketAddr) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let redirects = Arc::new(Mutex::new(HashMap::new()));
        let (task_hits, task_seen, task_redirects) =
            (hits.clone(), seen.clone(), redirects.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (hits, seen, redirects) =
                    (task_hits.clone(), task_seen.clone(), task_redirects.clone());
                tokio::spawn(async move { serve(stream, hits, seen, redirects).await });
            }
        });
        Ok(Server {
            addr,
            hits,
            seen,
            redirects,
        })
    }

    /// `path` answers 302 to `location`.
    fn redirect(&self, path: &str, location: &str) {
        self.redirects
            .lock()
            .unwrap()
            .insert(path.to_string(), location.to_string());
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve(
    mut stream: TcpStream,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
    redirects: Arc<Mutex<HashMap<String, String>>>,
) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => head.extend_from_slice(&chunk[..read]),
        }
    }
    hits.fetch_add(1, Ordering::SeqCst);
    let text = String::from_utf8_lossy(&head);
    let path = text.split(' ').nth(1).unwrap_or("/").to_string();
    seen.lock().unwrap().push(path.clone());
    let location = redirects.lock().unwrap().get(&path).cloned();
    let response = match location {
        Some(location) => format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        ),
        None => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{FEED}",
            FEED.len()
        ),
    };
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn limits() -> FetchLimits {
    FetchLimits {
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(5),
        ..FetchLimits::default()
    }
}

/// The production rules, with 127.0.0.2 playing a public server and names from `hosts`.
fn fetcher(hosts: &[(&str, &[IpAddr])]) -> Fetcher {
    let mut network = Network::system().with_public_stand_in(PUBLIC);
    for (name, addresses) in hosts {
        network = network.with_host(name, addresses);
    }
    Fetcher::with_network(limits(), network).unwrap()
}

fn get(url: String) -> FetchRequest {
    FetchRequest {
        url,
        ..FetchRequest::default()
    }
}

fn allowing(url: String) -> FetchRequest {
    FetchRequest {
        url,
        allow_private_redirects: true,
        ..FetchRequest::default()
    }
}

/// The URL the feed was finally fetched from, or a panic naming what came instead.
fn fetched_from(outcome: Result<FetchOutcome, FetchError>) -> String {
    match outcome {
        Ok(FetchOutcome::Fetched(feed)) => {
            assert_eq!(feed.body, FEED.as_bytes());
            feed.final_url
        }
        other => panic!("expected the feed, got {other:?}"),
    }
}

#[tokio::test]
async fn redirects_of_a_public_feed_to_private_addresses_and_names_are_refused_before_any_request()
{
    let public = Server::start(PUBLIC).await;
    let private = Server::start(LOOPBACK).await;
    let port = private.port();
    let fetcher = fetcher(&[("intranet.test", &[LOOPBACK])]);
    let targets = [
        format!("http://127.0.0.1:{port}/feed"),
        // The same address in other spellings.
        format!("http://2130706433:{port}/feed"),
        format!("http://0x7f.0.0.1:{port}/feed"),
        format!("http://[::ffff:127.0.0.1]:{port}/feed"),
        // 0.0.0.0 reaches this host on Linux.
        format!("http://0.0.0.0:{port}/feed"),
        format!("http://localhost:{port}/feed"),
        format!("http://Feeds.LocalHost.:{port}/feed"),
        // A name that resolves to loopback: refused by the resolver, before connecting.
        format!("http://intranet.test:{port}/feed"),
        format!("http://[::1]:{port}/feed"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "http://10.0.0.5/admin".to_string(),
        "http://[fd00::5]/admin".to_string(),
    ];
    for (index, target) in targets.iter().enumerate() {
        public.redirect(&format!("/go/{index}"), target);
        let outcome = fetcher
            .fetch(&get(public.url(&format!("/go/{index}"))))
            .await;
        assert_eq!(private.hits(), 0, "{target} reached the private server");
        assert_eq!(outcome, Err(FetchError::PrivateRedirect), "{target}");
        let error = outcome.unwrap_err();
        assert_eq!(error.kind(), "private_redirect");
        // The recorded message is the same whatever the target: nothing to probe with.
        let message = error.to_string();
        assert!(message.contains("allow_private_redirects"), "{message}");
        for leak in [
            "127.",
            &port.to_string(),
            "localhost",
            "intranet",
            "::",
            "169.254",
            "10.0",
        ] {
            assert!(!message.contains(leak), "{target}: {message}");
        }
    }
    assert_eq!(public.hits(), targets.len(), "one request per source");
    assert_eq!(private.hits(), 0, "nothing reached the private server");
}

#[tokio::test]
async fn a_private_target_is_refused_at_any_hop_of_a_chain_through_public_addresses() {
    let public = Server::start(PUBLIC).await;
    let private = Server::start(LOOPBACK).await;
    let fetcher = fetcher(&[("public.test", &[PUBLIC])]);
    let other_public = format!("http://public.test:{}", public.port());
    public.redirect("/a", "/b");
    public.redirect("/b", &format!("{other_public}/c"));
    public.redirect("/c", &private.url("/feed"));
    assert_eq!(
        fetcher.fetch(&get(public.url("/a"))).await,
        Err(FetchError::PrivateRedirect)
    );
    assert_eq!(public.hits(), 3, "the public hops were followed");
    assert_eq!(private.hits(), 0);
}

#[tokio::test]
async fn a_name_with_public_and_private_addresses_is_reached_only_at_the_public_one() {
    let public = Server::start(PUBLIC).await;
    // A private server on the same port as a public one: only the address differs.
    let mut pair = None;
    for _ in 0..20 {
        let other_public = Server::start(PUBLIC).await;
        let same_port = SocketAddr::new(LOOPBACK, other_public.port());
        if let Ok(private) = Server::start_on(same_port).await {
            pair = Some((other_public, private));
            break;
        }
    }
    let (other_public, private) = pair.expect("a port free on both addresses");
    // The private address first: a client that did not filter would connect there.
    let fetcher = fetcher(&[("mixed.test", &[LOOPBACK, PUBLIC])]);
    let target = format!("http://mixed.test:{}/feed", other_public.port());
    public.redirect("/go", &target);
    assert_eq!(
        fetched_from(fetcher.fetch(&get(public.url("/go"))).await),
        target
    );
    assert_eq!(other_public.hits(), 1);
    assert_eq!(private.hits(), 0);
}

#[tokio::test]
async fn a_public_feed_may_redirect_to_other_public_addresses_and_names() {
    let public = Server::start(PUBLIC).await;
    let fetcher = fetcher(&[("public.test", &[PUBLIC])]);
    let by_name = format!("http://public.test:{}/feed", public.port());
    public.redirect("/to-address", &public.url("/feed"));
    public.redirect("/to-name", &by_name);
    assert_eq!(
        fetched_from(fetcher.fetch(&get(public.url("/to-address"))).await),
        public.url("/feed")
    );
    assert_eq!(
        fetched_from(fetcher.fetch(&get(public.url("/to-name"))).await),
        by_name
    );
}

#[tokio::test]
async fn a_loopback_source_may_redirect_to_loopback_addresses_and_names() {
    // The real rules and the real resolver: no stand-ins, no table.
    let fetcher = Fetcher::new(limits()).unwrap();
    let source = Server::start(LOOPBACK).await;
    let target = Server::start(LOOPBACK).await;
    let by_name = format!("http://localhost:{}/feed", target.port());
    source.redirect("/to-address", &target.url("/feed"));
    source.redirect("/to-name", &by_name);
    assert_eq!(
        fetched_from(fetcher.fetch(&get(source.url("/to-address"))).await),
        target.url("/feed")
    );
    assert_eq!(
        fetched_from(fetcher.fetch(&get(source.url("/to-name"))).await),
        by_name
    );
    assert_eq!(target.hits(), 2);
}

/// A source named by DNS is a public source whatever its name resolves to: the answer that
/// decided could differ from the one its own request got (DNS rebinding). An intranet source
/// that redirects inside its network sets `allow_private_redirects`.
#[tokio::test]
async fn a_source_named_by_dns_is_public_even_when_its_name_has_only_private_addresses() {
    let intranet = Server::start(LOOPBACK).await;
    let target = Server::start(LOOPBACK).await;
    let fetcher = fetcher(&[("intranet.test", &[LOOPBACK])]);
    intranet.redirect("/go", &target.url("/feed"));
    let source = format!("http://intranet.test:{}/go", intranet.port());
    assert_eq!(
        fetcher.fetch(&get(source.clone())).await,
        Err(FetchError::PrivateRedirect)
    );
    assert_eq!(target.hits(), 0, "nothing sent to the redirect's target");
    assert_eq!(
        fetched_from(fetcher.fetch(&allowing(source)).await),
        target.url("/feed")
    );
    assert_eq!(target.hits(), 1);
}

#[tokio::test]
async fn allow_private_redirects_lets_a_public_feed_redirect_into_the_private_network() {
    let public = Server::start(PUBLIC).await;
    let private = Server::start(LOOPBACK).await;
    let port = private.port();
    let fetcher = fetcher(&[("intranet.test", &[LOOPBACK])]);
    let targets = [
        format!("http://127.0.0.1:{port}/feed"),
        format!("http://localhost:{port}/feed"),
        format!("http://intranet.test:{port}/feed"),
    ];
    for (index, target) in targets.iter().enumerate() {
        let path = format!("/go/{index}");
        public.redirect(&path, target);
        assert_eq!(
            fetched_from(fetcher.fetch(&allowing(public.url(&path))).await),
            *target
        );
        // The same fetcher still refuses it for a source that is not allowed.
        assert_eq!(
            fetcher.fetch(&get(public.url(&path))).await,
            Err(FetchError::PrivateRedirect),
            "{target}"
        );
    }
    assert_eq!(private.hits(), targets.len());
}

/// Behind an HTTP proxy the client resolves only the proxy's name, usually a private one: it
/// must still resolve, or no redirect of a public source could be followed. The proxy then
/// resolves the targets' names; addresses and `localhost` are still refused before anything
/// is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_a_proxy_named_by_a_private_name_redirects_work_and_private_addresses_are_refused()
{
    let proxy = Server::start(LOOPBACK).await;
    let port = proxy.port();
    // `.invalid` never resolves here (RFC 6761): only the proxy can reach it, and tradefeed
    // takes such a source for a public one.
    proxy.redirect("http://feed.invalid/moved", "http://feed.invalid/feed");
    proxy.redirect(
        "http://feed.invalid/to-loopback",
        &format!("http://127.0.0.1:{port}/feed"),
    );
    proxy.redirect(
        "http://feed.invalid/to-localhost",
        &format!("http://localhost:{port}/feed"),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(
        dir.path(),
        &[
            ("Moved", "http://feed.invalid/moved".to_string()),
            ("To loopback", "http://feed.invalid/to-loopback".to_string()),
            (
                "To localhost",
                "http://feed.invalid/to-localhost".to_string(),
            ),
        ],
        "connect_timeout_secs = 2",
    );
    let mut command = common::tradefeed_command(&config, &["fetch"]);
    for name in [
        "ALL_PROXY",
        "all_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        command.env_remove(name);
    }
    let output = command
        .env("HTTP_PROXY", format!("http://localhost:{port}"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {stdout}"))
            .to_string()
    };
    assert!(!line("Moved").contains("FAILED"), "{stdout}{stderr}");
    for name in ["To loopback", "To localhost"] {
        assert!(
            line(name).contains("FAILED private_redirect: "),
            "{stdout}{stderr}"
        );
    }
    let mut seen = proxy.seen();
    seen.sort();
    assert_eq!(
        seen,
        [
            "http://feed.invalid/feed",
            "http://feed.invalid/moved",
            "http://feed.invalid/to-localhost",
            "http://feed.invalid/to-loopback",
        ],
        "nothing but the sources and the public redirect went to the proxy"
    );
}
