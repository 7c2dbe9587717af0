//! Who a request comes from: the real client address (behind trusted proxies), its
//! rate-limit key (IPv6 grouped by /64), and the bearer token of `Authorization`.
//! **Invariant:** every per-client limit and every token check in Deck goes through these
//! three functions; there is no second copy of the parsing (`tests` below).

use std::net::{IpAddr, Ipv6Addr};

use http::HeaderMap;

/// The client address of a request: the peer, unless the peer is a trusted proxy, in which
/// case `X-Forwarded-For` is walked from the right (the hop nearest to us) past every
/// trusted proxy, and the first address not trusted is the client.
///
/// With no trusted proxies configured the header is ignored entirely, so a client cannot
/// pick its own rate-limit bucket by sending one.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpAddr]) -> IpAddr {
    let peer = canonical(peer);
    if !trusted_proxies.iter().any(|proxy| canonical(*proxy) == peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>() else {
            // A hop we cannot read ends the chain: trust stops at the last proxy we know.
            break;
        };
        client = canonical(address);
        if !trusted_proxies.iter().any(|proxy| canonical(*proxy) == client) {
            break;
        }
    }
    client
}

/// The rate-limit key of an address. IPv6 clients usually own a whole /64, so they are
/// counted per /64; otherwise one host could rotate through 2^64 buckets.
pub fn rate_key_for_ip(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let prefix = Ipv6Addr::new(segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0);
            format!("{prefix}/64")
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, one
/// or more spaces); `None` for any other scheme, an empty token, or a header that is not
/// text.
pub fn bearer_token(header: &http::HeaderValue) -> Option<&str> {
    let value = header.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && !token.contains(' ')).then_some(token)
}

/// The bearer token of a request's `Authorization` header, if it has one.
pub fn bearer_of(headers: &HeaderMap) -> Option<&str> {
    headers.get(http::header::AUTHORIZATION).and_then(bearer_token)
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`, as dual-stack sockets report) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("x-forwarded-for", xff.parse().unwrap());
        map
    }

    #[test]
    fn header_ignored_without_trusted_proxy() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, &headers("198.51.100.1"), &[]), peer);
    }

    #[test]
    fn header_ignored_from_untrusted_peer() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(client_ip(peer, &headers("198.51.100.1"), &[proxy]), peer);
    }

    #[test]
    fn trusted_proxy_chain_is_walked_from_the_right() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let inner: IpAddr = "10.0.0.2".parse().unwrap();
        // The left-most entry is whatever the client claimed; only the entry our
        // proxies appended counts.
        let found = client_ip(proxy, &headers("1.1.1.1, 198.51.100.7, 10.0.0.2"), &[proxy, inner]);
        assert_eq!(found, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn bearer_tokens() {
        let value = |text: &str| http::HeaderValue::from_str(text).unwrap();
        assert_eq!(bearer_token(&value("Bearer abc.def")), Some("abc.def"));
        assert_eq!(bearer_token(&value("bearer   abc")), Some("abc"));
        assert_eq!(bearer_token(&value("Basic abc")), None);
        assert_eq!(bearer_token(&value("Bearer ")), None);
        assert_eq!(bearer_token(&value("Bearer a b")), None);
        assert_eq!(bearer_token(&value("abc")), None);
    }

    #[test]
    fn mapped_addresses_and_ipv6_prefixes() {
        let mapped: IpAddr = "::ffff:192.0.2.4".parse().unwrap();
        assert_eq!(rate_key_for_ip(mapped), "192.0.2.4");
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(rate_key_for_ip(a), rate_key_for_ip(b));
    }
}
