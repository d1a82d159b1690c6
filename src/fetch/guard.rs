//! The redirect guard: a feed on a public address may not send tradefeed to a private one.
//!
//! A redirect hop of a public source is checked twice, both times before anything is sent:
//! the target URL's host when it is an address or `localhost` ([`Guard::refused_target`]), and
//! a target host *name* inside the HTTP client's resolver ([`GuardedResolver`]), which drops
//! the non-public addresses from the very answer the client then connects to. There is no
//! second lookup for DNS rebinding to race: what the check saw is what is connected to. Nor
//! is a source's own name looked up to decide whether it is private (see
//! [`Guard::source_is_private`]).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use url::{Host, Url};

use super::address;

/// How the fetcher sees the network: who answers name lookups, and which addresses count as
/// public.
///
/// Production code uses [`Network::system`]: the system resolver and the rules of
/// [`address::non_public_range`]. It exists for tests, whose servers all listen on loopback:
/// they name a loopback address that stands in for a public server, and answer some names from
/// a table, while everything else (the rules, the checks, the filtering) stays what runs in
/// production.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// Names answered from this table instead of the system resolver (lower case, no final
    /// dot).
    hosts: Arc<HashMap<String, Vec<IpAddr>>>,
    /// Addresses taken as public although the rules say otherwise.
    public_stand_ins: Arc<HashSet<IpAddr>>,
}

impl Network {
    /// The machine's resolver and the real rules.
    pub fn system() -> Network {
        Network::default()
    }

    /// Answers lookups of `name` with `addresses` instead of asking the system resolver
    /// (tests: a name that resolves to a loopback server).
    pub fn with_host(mut self, name: &str, addresses: &[IpAddr]) -> Network {
        Arc::make_mut(&mut self.hosts).insert(normalize_name(name), addresses.to_vec());
        self
    }

    /// Takes `address` as public although it is not (tests: a loopback server standing in for a
    /// feed on the internet).
    pub fn with_public_stand_in(mut self, address: IpAddr) -> Network {
        Arc::make_mut(&mut self.public_stand_ins).insert(address);
        self
    }

    /// Why `ip` is not public, or `None` when it is (or stands in for a public address).
    fn non_public_range(&self, ip: IpAddr) -> Option<&'static str> {
        if self.public_stand_ins.contains(&ip) {
            return None;
        }
        address::non_public_range(ip)
    }

    /// The addresses of `name` (port 0: the client puts the URL's port in).
    async fn lookup(&self, name: &str) -> std::io::Result<Vec<SocketAddr>> {
        if let Some(addresses) = self.hosts.get(&normalize_name(name)) {
            return Ok(addresses.iter().map(|ip| SocketAddr::new(*ip, 0)).collect());
        }
        // getaddrinfo on the blocking pool, as reqwest's own resolver does.
        Ok(tokio::net::lookup_host((name, 0)).await?.collect())
    }
}

/// A host name as compared: lower case, without the final dot.
fn normalize_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// The environment variables the HTTP client reads its proxies from (hyper-util's list).
const PROXY_VARIABLES: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
];

/// The host names of the proxies the environment names. Behind a proxy the client resolves
/// only the proxy's name, which is usually private: the guarded resolver must let it through,
/// and so a redirect may never name it as its target.
fn proxy_hosts(variable: impl Fn(&str) -> Option<String>) -> HashSet<String> {
    PROXY_VARIABLES
        .iter()
        .filter_map(|name| variable(name))
        .filter_map(|value| {
            let value = value.trim();
            if value.is_empty() {
                return None;
            }
            // The client takes `host:port` without a scheme as an http proxy.
            let url = if value.contains("://") {
                Url::parse(value)
            } else {
                Url::parse(&format!("http://{value}"))
            };
            match url.ok()?.host()? {
                Host::Domain(name) => Some(normalize_name(name)),
                // Addresses never reach a resolver; the address rules judge them.
                Host::Ipv4(_) | Host::Ipv6(_) => None,
            }
        })
        .collect()
}

/// The marker the guarded resolver fails with; found again in the client's error chain.
#[derive(Debug)]
struct NonPublicName;

impl std::fmt::Display for NonPublicName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the name has no public address")
    }
}

impl std::error::Error for NonPublicName {}

/// Whether a client error was the guarded resolver refusing a name.
pub(super) fn refused_by_resolver(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error.is::<NonPublicName>() {
            return true;
        }
        cause = error.source();
    }
    false
}

/// The network view, the proxies and the rules, shared by the fetcher and its resolvers.
#[derive(Debug, Clone)]
pub(super) struct Guard {
    network: Network,
    /// See [`proxy_hosts`].
    proxies: Arc<HashSet<String>>,
}

impl Guard {
    /// Reads the proxies from the environment, as the HTTP client does when it is built.
    pub(super) fn new(network: Network) -> Guard {
        Guard::with_proxies(network, proxy_hosts(|name| std::env::var(name).ok()))
    }

    fn with_proxies(network: Network, proxies: HashSet<String>) -> Guard {
        Guard {
            network,
            proxies: Arc::new(proxies),
        }
    }

    /// A resolver for one of the fetcher's clients: every address, or only public ones.
    pub(super) fn resolver(&self, public_only: bool) -> GuardedResolver {
        GuardedResolver {
            guard: self.clone(),
            public_only,
        }
    }

    /// Whether a source's own URL is non-public, which lets its redirects lead anywhere: its
    /// host is a non-public address, `localhost` or a name under it. A name is never looked
    /// up for this: whoever answers for it could answer with a public address for the feed's
    /// request and a private one for this decision (a zero TTL does it), and then redirect
    /// anywhere in the network behind tradefeed. An intranet source named by DNS that
    /// redirects inside its network sets `allow_private_redirects`.
    pub(super) fn source_is_private(&self, url: &Url) -> bool {
        match url.host() {
            Some(Host::Ipv4(ip)) => self.network.non_public_range(ip.into()).is_some(),
            Some(Host::Ipv6(ip)) => self.network.non_public_range(ip.into()).is_some(),
            Some(Host::Domain(name)) => address::is_local_name(name),
            None => false,
        }
    }

    /// Why a redirect target of a public source is refused before anything is sent, or `None`
    /// when it may be tried (a name is then checked by the resolver when connecting).
    pub(super) fn refused_target(&self, url: &Url) -> Option<&'static str> {
        match url.host()? {
            Host::Ipv4(ip) => self.network.non_public_range(ip.into()),
            Host::Ipv6(ip) => self.network.non_public_range(ip.into()),
            Host::Domain(name) if address::is_local_name(name) => Some("localhost"),
            Host::Domain(name) if self.proxies.contains(&normalize_name(name)) => {
                Some("the HTTP proxy")
            }
            Host::Domain(_) => None,
        }
    }
}

/// The resolver of the fetcher's clients: [`Network::lookup`], and for the client of a public
/// source's redirects only the public addresses of the answer.
pub(super) struct GuardedResolver {
    guard: Guard,
    public_only: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let public_only = self.public_only;
        let name = name.as_str().to_string();
        Box::pin(async move {
            let addresses = guard.network.lookup(&name).await?;
            if !public_only || guard.proxies.contains(&normalize_name(&name)) {
                return Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs);
            }
            let found = addresses.len();
            let public: Vec<SocketAddr> = addresses
                .into_iter()
                .filter(|a| guard.network.non_public_range(a.ip()).is_none())
                .collect();
            if public.is_empty() && found > 0 {
                return Err(Box::new(NonPublicName) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use reqwest::dns::Resolve as _;

    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const STAND_IN: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    #[test]
    fn proxies_are_read_from_every_variable_the_client_reads() {
        let env: HashMap<&str, &str> = HashMap::from([
            ("ALL_PROXY", "socks5://Socks.Corp.:1080"),
            ("http_proxy", "proxy.corp:3128"),
            ("HTTPS_PROXY", "http://user:pw@secure.corp:8443/"),
            ("https_proxy", "  "),
            ("HTTP_PROXY", "http://10.0.0.1:3128"),
            ("NO_PROXY", "ignored.corp"),
        ]);
        let hosts = proxy_hosts(|name| env.get(name).map(|v| v.to_string()));
        let mut hosts: Vec<_> = hosts.into_iter().collect();
        hosts.sort();
        assert_eq!(hosts, ["proxy.corp", "secure.corp", "socks.corp"]);
        assert!(proxy_hosts(|_| None).is_empty());
    }

    #[test]
    fn redirect_targets_that_are_addresses_localhost_or_the_proxy_are_judged_from_the_url() {
        let guard = Guard::with_proxies(
            Network::system().with_public_stand_in(STAND_IN),
            HashSet::from(["proxy.corp".to_string()]),
        );
        let cases: &[(&str, Option<&str>)] = &[
            ("http://127.0.0.1:6379/", Some("loopback")),
            ("http://2130706433/", Some("loopback")),
            ("http://0x7f.1/", Some("loopback")),
            ("http://0.0.0.0/", Some("\"this network\" (RFC 791)")),
            (
                "http://169.254.169.254/latest/meta-data/",
                Some("link-local"),
            ),
            ("http://10.0.0.5/admin", Some("private (RFC 1918)")),
            ("http://[::1]/", Some("loopback")),
            ("http://[::ffff:127.0.0.1]:8080/", Some("loopback")),
            ("http://[::ffff:7f00:1]/", Some("loopback")),
            ("http://[fd00::1]/", Some("unique local (fc00::/7)")),
            ("http://localhost:8080/", Some("localhost")),
            ("http://LOCALHOST./", Some("localhost")),
            ("http://redis.localhost/", Some("localhost")),
            ("http://Proxy.Corp.:3128/", Some("the HTTP proxy")),
            ("http://127.0.0.2:8080/", None),
            ("http://8.8.8.8/", None),
            ("https://[2606:4700:4700::1111]/", None),
            ("https://example.org/feed", None),
            ("https://intranet.corp/feed", None),
        ];
        for (target, refused) in cases {
            assert_eq!(guard.refused_target(&url(target)), *refused, "{target}");
        }
    }

    #[test]
    fn a_source_is_private_by_its_address_or_a_localhost_name_never_by_a_lookup() {
        // Names answered with private addresses only: still public sources, as DNS could
        // answer otherwise for the feed's own request.
        let network = Network::system()
            .with_public_stand_in(STAND_IN)
            .with_host("intranet.test", &[LOOPBACK, "10.1.2.3".parse().unwrap()])
            .with_host("public.test", &[STAND_IN]);
        let guard = Guard::with_proxies(network, HashSet::new());
        let cases: &[(&str, bool)] = &[
            ("http://127.0.0.1:8080/feed", true),
            ("http://[::1]/feed", true),
            ("http://[::ffff:10.0.0.1]/feed", true),
            ("http://192.168.1.20/rss", true),
            ("http://localhost/feed", true),
            ("http://news.localhost/feed", true),
            ("http://intranet.test/feed", false),
            ("http://INTRANET.test./feed", false),
            ("http://127.0.0.2/feed", false),
            ("https://8.8.8.8/feed", false),
            ("http://public.test/feed", false),
            ("http://feed.invalid/feed", false),
        ];
        for (source, private) in cases {
            assert_eq!(guard.source_is_private(&url(source)), *private, "{source}");
        }
    }

    #[tokio::test]
    async fn the_guarded_resolver_keeps_only_public_addresses_and_fails_with_its_marker() {
        let v6_loopback = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let network = Network::system()
            .with_public_stand_in(STAND_IN)
            .with_host("private.test", &[LOOPBACK, v6_loopback])
            .with_host("mixed.test", &[LOOPBACK, STAND_IN, v6_loopback])
            .with_host("proxy.corp", &[LOOPBACK]);
        let guard = Guard::with_proxies(network, HashSet::from(["proxy.corp".to_string()]));
        let resolve = |public_only: bool, name: &str| {
            guard
                .resolver(public_only)
                .resolve(name.parse().expect("a name"))
        };
        let ips = |addrs: reqwest::dns::Addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>();

        let refused = resolve(true, "private.test").await.err().expect("refused");
        assert!(refused_by_resolver(&*refused), "{refused}");
        assert_eq!(ips(resolve(true, "mixed.test").await.unwrap()), [STAND_IN]);
        // The proxy's own name must resolve, or nothing could be fetched through it.
        assert_eq!(ips(resolve(true, "proxy.corp").await.unwrap()), [LOOPBACK]);
        // The other client takes every address.
        assert_eq!(
            ips(resolve(false, "private.test").await.unwrap()),
            [LOOPBACK, v6_loopback]
        );
        // A name that does not resolve is an ordinary lookup failure, not a refusal.
        let failed = resolve(true, "feed.invalid")
            .await
            .err()
            .expect("no such name");
        assert!(!refused_by_resolver(&*failed), "{failed}");
    }
}
