//! Which addresses are on the public internet, and which host names always mean this machine.
//!
//! The rules behind the redirect guard (see [`super::guard`]). Written out as ranges rather than
//! with `IpAddr::is_global` and its kin, most of which are still unstable.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// IPv4 ranges that are not public internet addresses, with what each is (for logs and tests).
///
/// The documentation and benchmarking ranges are never routed on the internet: an answer from
/// one can only come from something local that borrowed it, so they are refused like private
/// ones. The registry's globally reachable exceptions inside 192.0.0.0/24 (two anycast
/// addresses for PCP and TURN) serve no feeds and are refused with the rest of the block.
const IPV4_NON_PUBLIC: &[(Ipv4Addr, u8, &str)] = &[
    // Connecting to 0.0.0.0 reaches this host on Linux.
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" (RFC 791)"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private (RFC 1918)"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "shared CGNAT (RFC 6598)"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    // Cloud metadata services (169.254.169.254) live here.
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private (RFC 1918)"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (
        Ipv4Addr::new(192, 88, 99, 0),
        24,
        "6to4 relay anycast (RFC 7526)",
    ),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private (RFC 1918)"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    // Includes the limited broadcast address 255.255.255.255.
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved or broadcast"),
];

/// IPv6 ranges inside the global unicast block 2000::/3 that are not public addresses.
/// Everything outside 2000::/3 is refused as well (see [`non_public_range`]), except the two
/// forms that carry an IPv4 address, which are judged by that address.
const IPV6_NON_PUBLIC: &[(Ipv6Addr, u8, &str)] = &[
    // Teredo, benchmarking, ORCHID and other protocol blocks; the few anycast services the
    // registry marks reachable in it (AS112, AMT, PCP, TURN) serve no feeds.
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation (RFC 9637)",
    ),
];

/// Why `ip` is not a public internet address, or `None` when it is one.
///
/// IPv4-mapped (`::ffff:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:aabb:ccdd::`)
/// addresses are judged by the IPv4 address they carry: a socket connecting to
/// `::ffff:127.0.0.1` reaches 127.0.0.1.
pub fn non_public_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => ipv4_non_public_range(v4),
        IpAddr::V6(v6) => ipv6_non_public_range(v6),
    }
}

/// Whether `host` is `localhost` or a name under it, in any case and with or without the
/// final dot: such names always mean this machine (RFC 6761 §6.3), whatever DNS says.
pub fn is_local_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

fn ipv4_non_public_range(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    IPV4_NON_PUBLIC
        .iter()
        .find(|(net, len, _)| bits & prefix_mask_32(*len) == u32::from(*net))
        .map(|(_, _, what)| *what)
}

fn ipv6_non_public_range(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_non_public_range(v4);
    }
    let bits = u128::from(ip);
    // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the gateway connects to the IPv4
    // address in the last 32 bits.
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return ipv4_non_public_range(Ipv4Addr::from(bits as u32));
    }
    // 6to4 2002::/16 (RFC 3056): the IPv4 address of the tunnel end follows the prefix.
    if bits >> 112 == 0x2002 {
        return ipv4_non_public_range(Ipv4Addr::from((bits >> 80) as u32));
    }
    if bits >> 125 != 0b001 {
        // Outside 2000::/3 there is no public unicast space; named for the log.
        return Some(match bits {
            0 => "unspecified",
            1 => "loopback",
            _ if bits >> 121 == 0xfc >> 1 => "unique local (fc00::/7)",
            _ if bits >> 118 == 0xfe80 >> 6 => "link-local",
            _ if bits >> 120 == 0xff => "multicast",
            _ => "not global unicast",
        });
    }
    IPV6_NON_PUBLIC
        .iter()
        .find(|(net, len, _)| bits & prefix_mask_128(*len) == u128::from(*net))
        .map(|(_, _, what)| *what)
}

fn prefix_mask_32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn prefix_mask_128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn is_public(ip: IpAddr) -> bool {
        non_public_range(ip).is_none()
    }

    #[test]
    fn ipv4_ranges_are_refused_up_to_their_exact_bounds() {
        // (address, public?) written out by hand, bounds on both sides of every range.
        let cases: &[(&str, bool)] = &[
            ("0.0.0.0", false),
            ("0.255.255.255", false),
            ("1.0.0.0", true),
            ("1.1.1.1", true),
            ("8.8.8.8", true),
            ("9.255.255.255", true),
            ("10.0.0.0", false),
            ("10.0.0.5", false),
            ("10.255.255.255", false),
            ("11.0.0.0", true),
            ("100.63.255.255", true),
            ("100.64.0.0", false),
            ("100.100.100.100", false),
            ("100.127.255.255", false),
            ("100.128.0.0", true),
            ("126.255.255.255", true),
            ("127.0.0.1", false),
            ("127.1.2.3", false),
            ("127.255.255.255", false),
            ("128.0.0.0", true),
            ("169.253.255.255", true),
            ("169.254.0.0", false),
            ("169.254.169.254", false),
            ("169.254.255.255", false),
            ("169.255.0.0", true),
            ("172.15.255.255", true),
            ("172.16.0.0", false),
            ("172.31.255.255", false),
            ("172.32.0.0", true),
            ("191.255.255.255", true),
            ("192.0.0.0", false),
            ("192.0.0.255", false),
            ("192.0.1.0", true),
            ("192.0.2.0", false),
            ("192.0.2.255", false),
            ("192.0.3.0", true),
            ("192.88.98.255", true),
            ("192.88.99.1", false),
            ("192.88.100.0", true),
            ("192.167.255.255", true),
            ("192.168.0.0", false),
            ("192.168.1.1", false),
            ("192.168.255.255", false),
            ("192.169.0.0", true),
            ("198.17.255.255", true),
            ("198.18.0.0", false),
            ("198.19.255.255", false),
            ("198.20.0.0", true),
            ("198.51.99.255", true),
            ("198.51.100.0", false),
            ("198.51.100.255", false),
            ("198.51.101.0", true),
            ("203.0.112.255", true),
            ("203.0.113.0", false),
            ("203.0.113.255", false),
            ("203.0.114.0", true),
            ("223.255.255.255", true),
            ("224.0.0.0", false),
            ("239.255.255.255", false),
            ("240.0.0.0", false),
            ("255.255.255.254", false),
            ("255.255.255.255", false),
        ];
        for (text, public) in cases {
            assert_eq!(is_public(ip(text)), *public, "{text}");
        }
    }

    #[test]
    fn ipv6_ranges_and_ipv4_carried_in_ipv6_are_judged_by_where_they_lead() {
        let cases: &[(&str, bool)] = &[
            ("::", false),
            ("::1", false),
            ("::2", false),
            // IPv4-mapped: judged by the IPv4 address.
            ("::ffff:127.0.0.1", false),
            ("::ffff:0.0.0.0", false),
            ("::ffff:10.1.2.3", false),
            ("::ffff:100.64.0.0", false),
            ("::ffff:100.128.0.0", true),
            ("::ffff:169.254.169.254", false),
            ("::ffff:192.168.0.1", false),
            ("::ffff:255.255.255.255", false),
            ("::ffff:8.8.8.8", true),
            // IPv4-compatible (deprecated) and IPv4-translated forms: never public.
            ("::127.0.0.1", false),
            ("::8.8.8.8", false),
            ("::ffff:0:8.8.8.8", false),
            // NAT64 carries an IPv4 address; its local-use prefix is not public.
            ("64:ff9b::8.8.8.8", true),
            ("64:ff9b::127.0.0.1", false),
            ("64:ff9b::10.0.0.1", false),
            ("64:ff9b::169.254.169.254", false),
            ("64:ff9b:1::1", false),
            ("100::1", false),
            ("1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2000::", true),
            ("2001::", false),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", false),
            ("2001:2::1", false),
            ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2001:200::", true),
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:db8::", false),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2001:db9::", true),
            ("2001:4860:4860::8888", true),
            // 6to4 carries an IPv4 address after its prefix.
            ("2002:7f00:1::", false),
            ("2002:a00:5::1", false),
            ("2002:808:808::", true),
            ("2606:4700:4700::1111", true),
            ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("3fff::", false),
            ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("3fff:1000::", true),
            ("4000::", false),
            ("5f00::1", false),
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fc00::", false),
            ("fd12:3456:789a::1", false),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fe80::1", false),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
        ];
        for (text, public) in cases {
            assert_eq!(is_public(ip(text)), *public, "{text}");
        }
    }

    #[test]
    fn every_listed_range_is_refused_from_its_first_to_its_last_address_and_says_which() {
        for (net, len, what) in IPV4_NON_PUBLIC {
            let first = u32::from(*net);
            let last = first | !prefix_mask_32(*len);
            for bits in [first, last] {
                let address = IpAddr::V4(Ipv4Addr::from(bits));
                assert_eq!(non_public_range(address), Some(*what), "{address}");
            }
        }
        for (net, len, what) in IPV6_NON_PUBLIC {
            let first = u128::from(*net);
            let last = first | !prefix_mask_128(*len);
            for bits in [first, last] {
                let address = IpAddr::V6(Ipv6Addr::from(bits));
                assert_eq!(non_public_range(address), Some(*what), "{address}");
            }
        }
        let named: &[(&str, &str)] = &[
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fd00::1", "unique local (fc00::/7)"),
            ("fe80::1", "link-local"),
            ("ff05::2", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "link-local"),
        ];
        for (text, what) in named {
            assert_eq!(non_public_range(ip(text)), Some(*what), "{text}");
        }
    }

    #[test]
    fn localhost_and_names_under_it_are_local_in_any_spelling() {
        let cases: &[(&str, bool)] = &[
            ("localhost", true),
            ("LOCALHOST", true),
            ("localhost.", true),
            ("LocalHost.", true),
            ("feeds.localhost", true),
            ("a.b.localhost.", true),
            ("localhost.example.org", false),
            ("mylocalhost", false),
            ("localhostx", false),
            ("localhost..", false),
            ("example.org", false),
            ("", false),
        ];
        for (host, local) in cases {
            assert_eq!(is_local_name(host), *local, "{host:?}");
        }
    }
}
