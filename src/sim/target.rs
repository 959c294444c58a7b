//! Where simulated instances connect to and from: the uplink URLs, each
//! read the way an IncludeOS image reads its `uplink.url` (spec/uplink.md
//! 1: scheme mandatory, no port means 80 even for https, any path
//! dropped), which of them an instance tries (spread over the fleet, the
//! next one after a failure), and the `--source` range whose addresses the
//! instances' sockets are bound to. Pure, so it is all unit-tested.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The hangar as one URL names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL as given (echoed in UPLINK, named in messages).
    pub url: String,
    /// The scheme is https.
    pub https: bool,
    /// Host name or address, without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// `Host` header: the URL's authority as written.
    pub authority: String,
}

/// Parses an uplink URL: `http://host[:port][/...]` or `https://...`.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        format!("--url {url:?}: no scheme; expected http://host:port or https://host:port")
    })?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        other => {
            return Err(format!(
                "--url {url:?}: scheme {other:?} is neither http nor https"
            ))
        }
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(format!("--url {url:?}: user information is not supported"));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| format!("--url {url:?}: unclosed '[' in the host"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("--url {url:?}: junk after the IPv6 address"))?,
                ),
            };
            (host, port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err(format!("--url {url:?}: no host"));
    }
    let port = match port {
        // An instance defaults to 80 whatever the scheme (spec/uplink.md 1).
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("--url {url:?}: bad port {p:?} (1-65535)"))?,
    };
    Ok(Target {
        url: url.to_string(),
        https,
        host: host.to_string(),
        port,
        authority: authority.to_string(),
    })
}

/// Parses every `--url`, in order. The first bad one is refused, and the
/// message names it (`parse_url`'s messages all do).
pub fn parse_urls(urls: &[String]) -> Result<Vec<Target>, String> {
    if urls.is_empty() {
        return Err("--url: at least one hangar URL is needed".into());
    }
    urls.iter().map(|u| parse_url(u)).collect()
}

/// The URL (its place among `n`) that instance `index` tries first:
/// instance i takes URL i mod n, so a fleet is spread evenly over the
/// hangars, as a DNS name with several A records spreads real instances.
pub fn first_url(index: u64, n: usize) -> usize {
    match n {
        0 => 0,
        n => (index % n as u64) as usize,
    }
}

/// The URL an instance tries after failing to dock on, or losing its dock
/// on, URL `current`: the next one, round-robin.
pub fn next_url(current: usize, n: usize) -> usize {
    match n {
        0 => 0,
        n => (current + 1) % n,
    }
}

/// The addresses of a `--source` CIDR, handed out round-robin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    first: u128,
    count: u128,
    v6: bool,
}

impl Sources {
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    pub fn len(&self) -> u128 {
        self.count
    }

    /// The address of instance `index`.
    pub fn nth(&self, index: u64) -> IpAddr {
        let a = self.first + (index as u128 % self.count);
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::from(a as u32))
        }
    }
}

/// Parses `ADDR/PREFIX`. The network and broadcast addresses of IPv4
/// ranges larger than /31 (and the subnet-router address of IPv6 ones)
/// are left out: they are not host addresses.
pub fn parse_cidr(s: &str) -> Result<Sources, String> {
    let bad =
        |why: &str| format!("--source {s:?}: {why}; expected ADDR/PREFIX such as 127.0.0.0/20");
    let (addr, prefix) = s.split_once('/').ok_or_else(|| bad("no /PREFIX"))?;
    let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address"))?;
    let prefix: u32 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
    let (bits, value, v6) = match addr {
        IpAddr::V4(a) => (32, u32::from(a) as u128, false),
        IpAddr::V6(a) => (128, u128::from(a), true),
    };
    if prefix > bits {
        return Err(bad("prefix length too large"));
    }
    let host_bits = bits - prefix;
    let network = if host_bits >= 128 {
        0
    } else {
        value & !((1u128 << host_bits) - 1)
    };
    // More addresses than any run could use: cap rather than overflow.
    let size = if host_bits >= 64 {
        1u128 << 64
    } else {
        1u128 << host_bits
    };
    let (first, count) = match (v6, host_bits) {
        (false, 0..=1) => (network, size),
        (false, _) => (network + 1, size - 2),
        (true, 0..=1) => (network, size),
        (true, _) => (network + 1, size - 1),
    };
    Ok(Sources { first, count, v6 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_as_an_instance_reads_them() {
        let t = parse_url("http://127.0.0.1:9090").unwrap();
        assert_eq!(
            t,
            Target {
                url: "http://127.0.0.1:9090".into(),
                https: false,
                host: "127.0.0.1".into(),
                port: 9090,
                authority: "127.0.0.1:9090".into()
            }
        );
        let t = parse_url("https://hangar.example/some/path?x=1").unwrap();
        assert!(t.https);
        assert_eq!(t.port, 80, "no port means 80, even for https");
        assert_eq!(t.authority, "hangar.example");
        let t = parse_url("HTTPS://[::1]:9443/").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.https), ("::1", 9443, true));
        assert_eq!(parse_url("http://[fe80::1]").unwrap().port, 80);
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        for (url, why) in [
            ("127.0.0.1:9090", "no scheme"),
            ("ws://h:1", "neither http nor https"),
            ("http://h:0", "bad port"),
            ("http://h:65536", "bad port"),
            ("http://h:x", "bad port"),
            ("http://h:", "bad port"),
            ("http://:9090", "no host"),
            ("http://", "no host"),
            ("http://u@h:1", "user information"),
            ("http://[::1:1", "unclosed"),
            ("http://[::1]x", "junk"),
        ] {
            let e = parse_url(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn several_urls_parse_in_order_and_a_bad_one_is_named() {
        let urls = |u: &[&str]| u.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ts = parse_urls(&urls(&["http://a:1", "https://b:2/x", "http://[::1]:3"])).unwrap();
        let got: Vec<_> = ts
            .iter()
            .map(|t| (t.url.as_str(), t.host.as_str(), t.port, t.https))
            .collect();
        assert_eq!(
            got,
            [
                ("http://a:1", "a", 1, false),
                ("https://b:2/x", "b", 2, true),
                ("http://[::1]:3", "::1", 3, false)
            ],
            "each URL keeps its own scheme"
        );
        let e = parse_urls(&urls(&["http://a:1", "http://b:0", "c:3"])).unwrap_err();
        assert!(
            e.contains("\"http://b:0\"") && e.contains("bad port"),
            "{e}"
        );
        let e = parse_urls(&urls(&["http://a:1", "ftp://c:3"])).unwrap_err();
        assert!(e.contains("\"ftp://c:3\""), "{e}");
        assert!(parse_urls(&[]).is_err());
    }

    #[test]
    fn instances_spread_over_the_urls_and_fail_over_round_robin() {
        let firsts: Vec<usize> = (0..7).map(|i| first_url(i, 3)).collect();
        assert_eq!(firsts, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(first_url(1_000_000_001, 2), 1);
        assert!((0..100).all(|i| first_url(i, 1) == 0), "one URL: always it");
        // Instance 4 of 3 URLs: 1, then after each failure 2, 0, 1, ...
        let mut at = first_url(4, 3);
        let mut tried = vec![at];
        for _ in 0..4 {
            at = next_url(at, 3);
            tried.push(at);
        }
        assert_eq!(tried, [1, 2, 0, 1, 2]);
        assert_eq!(next_url(0, 1), 0);
    }

    #[test]
    fn source_ranges_skip_network_and_broadcast() {
        let s = parse_cidr("127.0.0.0/20").unwrap();
        assert_eq!(s.len(), 4094);
        assert_eq!(s.nth(0), "127.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(s.nth(4093), "127.0.15.254".parse::<IpAddr>().unwrap());
        assert_eq!(s.nth(4094), s.nth(0), "round-robin");
        // A host address given with the prefix means its network.
        assert_eq!(parse_cidr("127.0.0.77/24").unwrap().nth(0), s.nth(0));
        let one = parse_cidr("10.1.2.3/32").unwrap();
        assert_eq!((one.len(), one.nth(5)), (1, "10.1.2.3".parse().unwrap()));
        assert_eq!(parse_cidr("10.1.2.2/31").unwrap().len(), 2);
        let v6 = parse_cidr("fd00::/120").unwrap();
        assert!(v6.is_v6());
        assert_eq!((v6.len(), v6.nth(0)), (255, "fd00::1".parse().unwrap()));
        assert_eq!(
            parse_cidr("::/0").unwrap().len(),
            (1u128 << 64) - 1,
            "capped"
        );
        for bad in ["127.0.0.1", "127.0.0.0/33", "x/8", "127.0.0.0/", "::/129"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }
}
