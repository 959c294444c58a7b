//! Where a base import may fetch from: the SSRF policy.
//!
//! A URL given through the API is fetched by the server, from inside the
//! operator's network; unchecked, it reaches the server's own ports, the
//! hosts beside it and cloud metadata services. So every address a URL's
//! host resolves to is classified and checked before anything connects:
//!
//! - unspecified, multicast and broadcast addresses: never;
//! - loopback, link-local and this host's own addresses (getifaddrs):
//!   only when `base.import.allow` names the address itself (`127.0.0.2`
//!   or `127.0.0.2/32`): a range never opens them, so that allowing the
//!   LAN does not also open the server's own API and hangar;
//! - private, shared (100.64/10), unique-local and reserved ranges: when a
//!   range of `base.import.allow` covers the address, or the URL's host is
//!   a name listed there;
//! - everything else (global unicast): always.
//!
//! The check sits in the resolver ureq connects through, so the address
//! checked is the address connected to (a second DNS answer cannot swap
//! it), and it runs again for every redirect, which are followed here one
//! by one rather than by ureq. Refusals and failures look alike to the
//! caller: whether a port is closed or refused must not show.
//!
//! URLs may carry credentials (`http://user:pass@host/`); `redact_urls`
//! masks them wherever a URL is logged or put in an error.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// Redirects followed before a fetch gives up.
pub const MAX_REDIRECTS: usize = 5;
/// Time to connect to one address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Time from the request to the response's head.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("base.import.allow: {entry:?} {why}")]
    BadEntry { entry: String, why: String },
}

/// An address range: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// `10.0.0.0/8`, `fd00::/8`, or one address (`10.1.2.3`, `::1`).
    /// Host bits must be zero: `10.1.2.3/8` is most likely a typo.
    pub fn parse(text: &str) -> Result<Net, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| "is not an IPv4 or IPv6 address or CIDR range".to_string())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("has a prefix length outside 0..={max}")),
            },
        };
        let net = Net { addr, prefix };
        let base = net.network();
        if base != addr {
            return Err(format!("has host bits set (did you mean {base}/{prefix}?)"));
        }
        // An IPv4-mapped range is the IPv4 range: addresses are compared
        // in their IPv4 form.
        if let IpAddr::V6(v6) = addr {
            if let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix >= 96) {
                return Ok(Net {
                    addr: IpAddr::V4(v4),
                    prefix: prefix - 96,
                });
            }
        }
        Ok(net)
    }

    /// The address with the host bits cleared.
    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask_v4(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask_v6(self.prefix))),
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.prefix);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// Whether it names one address (a /32 or /128).
    fn is_single(&self) -> bool {
        self.prefix == if self.addr.is_ipv4() { 32 } else { 128 }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask_v4(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask_v6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is the IPv4 address
/// it maps: connecting to one reaches the other.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What kind of destination an address is, by its range alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Global unicast: allowed.
    Public,
    /// Private, shared, unique-local, documentation or reserved: allowed
    /// by a range or a host name of `base.import.allow`.
    Private,
    /// Loopback or link-local: allowed only by the address itself.
    Local,
    /// Unspecified, multicast or broadcast: never a source of anything.
    Never,
}

pub fn classify(ip: IpAddr) -> Class {
    match canonical(ip) {
        IpAddr::V4(a) => classify_v4(a),
        IpAddr::V6(a) => classify_v6(a),
    }
}

fn classify_v4(a: Ipv4Addr) -> Class {
    let o = a.octets();
    if o[0] == 0 || a.is_multicast() || a.is_broadcast() {
        // 0.0.0.0/8 included: Linux connects 0.0.0.0 to itself.
        Class::Never
    } else if a.is_loopback() || a.is_link_local() {
        Class::Local
    } else if a.is_private()
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10, shared (CGNAT)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24, IETF
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 192.88.99.0/24, 6to4 relays
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15, benchmarking
        || a.is_documentation()
        || o[0] >= 240
    {
        Class::Private
    } else {
        Class::Public
    }
}

fn classify_v6(a: Ipv6Addr) -> Class {
    let s = a.segments();
    // An IPv4 address inside (NAT64, 6to4) is where a packet ends up.
    let embedded =
        |hi: u16, lo: u16| classify_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    if a.is_unspecified() || a.is_multicast() {
        Class::Never
    } else if a.is_loopback() || (s[0] & 0xffc0) == 0xfe80 {
        // ::1 and fe80::/10
        Class::Local
    } else if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // 64:ff9b::/96, NAT64
        embedded(s[6], s[7])
    } else if s[0] == 0x2002 {
        // 2002::/16, 6to4
        embedded(s[1], s[2])
    } else if (s[0] & 0xfe00) == 0xfc00 // fc00::/7, unique local
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10, site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0) // 2001::/32, Teredo
        || (s[0] == 0x2001 && s[1] == 0xdb8) // 2001:db8::/32, documentation
        || (s[0] & 0xe000) != 0x2000
    // outside 2000::/3, global unicast: reserved, IPv4-compatible...
    {
        Class::Private
    } else {
        Class::Public
    }
}

/// Why an address was refused; for the server's log only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Never,
    Local,
    Own,
    Private,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refused::Never => "unspecified, multicast or broadcast",
            Refused::Local => "loopback or link-local, not named in base.import.allow",
            Refused::Own => "an address of this host, not named in base.import.allow",
            Refused::Private => "private or reserved, not allowed by base.import.allow",
        })
    }
}

/// `base.import.allow`, parsed: ranges and host names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPolicy {
    nets: Vec<Net>,
    hosts: Vec<String>,
}

impl FetchPolicy {
    /// Parses `base.import.allow`'s entries: CIDR ranges, single
    /// addresses, host names. A bad entry is an error, not skipped: a typo
    /// must not silently leave a mirror unreachable or open a range.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<FetchPolicy, PolicyError> {
        let mut policy = FetchPolicy::default();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if entry.is_empty() {
                continue;
            }
            let bad = |why: String| PolicyError::BadEntry {
                entry: entry.to_string(),
                why,
            };
            let looks_numeric = entry.contains('/')
                || entry.contains(':')
                || entry.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            if looks_numeric {
                policy.nets.push(Net::parse(entry).map_err(bad)?);
            } else {
                policy.hosts.push(host_name(entry).map_err(bad)?);
            }
        }
        Ok(policy)
    }

    /// Whether a URL whose host is `host` may connect to `ip`; `own` are
    /// this host's addresses.
    pub fn check(&self, host: &str, ip: IpAddr, own: &[IpAddr]) -> Result<(), Refused> {
        let ip = canonical(ip);
        let named = self.nets.iter().any(|n| n.is_single() && n.contains(ip));
        let covered = self.nets.iter().any(|n| n.contains(ip));
        let host = host.trim_end_matches('.');
        let listed = self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host));
        let is_own = own.iter().any(|o| canonical(*o) == ip);
        match classify(ip) {
            Class::Never => Err(Refused::Never),
            Class::Local if named => Ok(()),
            Class::Local => Err(Refused::Local),
            _ if is_own && !named => Err(Refused::Own),
            Class::Private if covered || listed => Ok(()),
            Class::Private => Err(Refused::Private),
            Class::Public => Ok(()),
        }
    }
}

/// A host name entry, lower-cased: letters, digits and hyphens in dotted
/// labels of 1 to 63 characters, the last not all digits (that would be a
/// mistyped address).
fn host_name(entry: &str) -> Result<String, String> {
    let name = entry.trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() <= 253
        && labels.iter().all(label_ok)
        && labels
            .last()
            .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
    {
        Ok(name)
    } else {
        Err("is not a CIDR range (10.0.0.0/8), an address or a host name".into())
    }
}

/// This host's own addresses (and its interfaces' broadcast addresses):
/// the server's own ports listen there, whatever the range.
pub fn own_addresses() -> Vec<IpAddr> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut own = Vec::new();
    for interface in interfaces {
        for address in [interface.address, interface.broadcast]
            .into_iter()
            .flatten()
        {
            if let Some(v4) = address.as_sockaddr_in() {
                own.push(IpAddr::V4(v4.ip()));
            } else if let Some(v6) = address.as_sockaddr_in6() {
                own.push(IpAddr::V6(v6.ip()));
            }
        }
    }
    own
}

/// ureq's resolver, keeping only the addresses the policy allows: ureq
/// connects to what this returns and nothing else.
#[derive(Debug)]
struct CheckedResolver {
    policy: Arc<FetchPolicy>,
}

impl Resolver for CheckedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let found = DefaultResolver::default().resolve(uri, config, timeout)?;
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let own = own_addresses();
        let mut allowed = self.empty();
        let mut refused = Vec::new();
        for addr in found.iter() {
            match self.policy.check(host, addr.ip(), &own) {
                Ok(()) => allowed.push(*addr),
                Err(why) => refused.push(format!("{} ({why})", addr.ip())),
            }
        }
        if allowed.is_empty() {
            return Err(ureq::Error::Io(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{host} refused: {}", refused.join(", ")),
            )));
        }
        Ok(allowed)
    }
}

/// Why a checked fetch failed.
#[derive(Debug)]
pub enum FetchFailure {
    /// Refused by the policy, or no connection or answer: one case to the
    /// user. The text is for the server's log (it may name the URL:
    /// redact it).
    Unreachable(String),
    /// The server answered, with this status.
    Status(u16),
    /// More than `MAX_REDIRECTS` redirects.
    TooManyRedirects,
    /// A redirect to something other than http(s).
    BadRedirect,
}

impl FetchFailure {
    /// What a user is told (`name`: the URL, redacted). Why an address was
    /// unreachable or refused goes to the debug log only.
    pub fn why(&self, name: &str) -> String {
        match self {
            FetchFailure::Unreachable(detail) => {
                tracing::debug!("cannot fetch {name}: {}", redact_urls(detail));
                UNREACHABLE.into()
            }
            FetchFailure::Status(status) => format!("the server answered {status}"),
            FetchFailure::TooManyRedirects => format!("more than {MAX_REDIRECTS} redirects"),
            FetchFailure::BadRedirect => "redirected to a URL that is not http(s)".into(),
        }
    }
}

/// What a refused or unreachable URL gets, whichever it was: telling them
/// apart would tell which of the server's neighbours' ports are open.
pub const UNREACHABLE: &str = "not allowed or unreachable";

/// GETs `url` under `policy`, following up to `MAX_REDIRECTS` redirects
/// (each checked like the first); the body of the final answer.
pub fn open(url: &str, policy: &Arc<FetchPolicy>) -> Result<Box<dyn Read>, FetchFailure> {
    open_with(url, policy, None).map(|f| f.body)
}

/// A body being fetched, with its announced length when the server gave one.
pub struct Fetched {
    pub body: Box<dyn Read>,
    pub length: Option<u64>,
    /// Where the body starts in the whole file: the `from` of a resumed
    /// fetch the server honoured (206), else 0.
    pub offset: u64,
    /// What a later fetch can resume against (`If-Range`): a strong ETag,
    /// else Last-Modified; None when the server offers no byte ranges.
    pub validator: Option<String>,
}

/// Where to resume a fetch: the bytes from `from` of the file `validator`
/// named; a server whose file changed answers it whole (200).
pub struct Resume<'a> {
    pub from: u64,
    pub validator: &'a str,
}

/// `open`, where `stall` bounds each read of the body as well (a server
/// that stops sending fails the fetch instead of holding it forever).
pub fn open_with(
    url: &str,
    policy: &Arc<FetchPolicy>,
    stall: Option<Duration>,
) -> Result<Fetched, FetchFailure> {
    open_from(url, policy, stall, None)
}

/// `open_with`, asking for the rest of a file when `resume` is given.
pub fn open_from(
    url: &str,
    policy: &Arc<FetchPolicy>,
    stall: Option<Duration>,
    resume: Option<&Resume>,
) -> Result<Fetched, FetchFailure> {
    let config = ureq::Agent::config_builder()
        // A proxy would resolve and connect for us, unchecked.
        .proxy(None)
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(
            stall.unwrap_or(RESPONSE_TIMEOUT).min(RESPONSE_TIMEOUT),
        ))
        .timeout_per_read(stall)
        .build();
    let agent = ureq::Agent::with_parts(
        config,
        DefaultConnector::default(),
        CheckedResolver {
            policy: policy.clone(),
        },
    );
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let mut request = agent.get(&current);
        if let Some(r) = resume {
            request = request
                .header("range", format!("bytes={}-", r.from))
                .header("if-range", r.validator);
        }
        let response = request
            .call()
            .map_err(|e| FetchFailure::Unreachable(format!("{current}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            let headers = response.headers();
            let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
            let length = text("content-length").and_then(|v| v.trim().parse().ok());
            // A 206 counts only when it starts where it was asked to.
            let offset = match (status.as_u16(), resume) {
                (206, Some(r)) if content_range_start(text("content-range")) == Some(r.from) => {
                    r.from
                }
                (206, _) => return Err(FetchFailure::Status(206)),
                _ => 0,
            };
            let ranges = text("accept-ranges").is_some_and(|v| v.contains("bytes")) || offset > 0;
            let validator = ranges
                .then(|| {
                    text("etag")
                        .filter(|e| !e.starts_with("W/"))
                        .or(text("last-modified"))
                })
                .flatten()
                .map(str::to_string);
            return Ok(Fetched {
                body: Box::new(response.into_body().into_reader()),
                length,
                offset,
                validator,
            });
        }
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok());
        match location {
            Some(location) if status.is_redirection() => {
                current = join(&current, location).ok_or(FetchFailure::BadRedirect)?;
            }
            _ => return Err(FetchFailure::Status(status.as_u16())),
        }
    }
    Err(FetchFailure::TooManyRedirects)
}

/// The first byte of `Content-Range: bytes FIRST-LAST/TOTAL`.
fn content_range_start(value: Option<&str>) -> Option<u64> {
    let spec = value?.trim().strip_prefix("bytes ")?;
    spec.split('-').next()?.trim().parse().ok()
}

/// A redirect's `location` made absolute against `base` (RFC 3986's forms
/// that servers send: absolute, scheme-relative, absolute path, relative
/// path, query). None for a scheme other than http(s).
fn join(base: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if let Some((scheme, _)) = location.split_once("://") {
        let is_scheme = !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if is_scheme {
            return (scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
                .then(|| location.to_string());
        }
    }
    let uri: Uri = base.parse().ok()?;
    let scheme = uri.scheme_str()?;
    // The authority keeps the base's credentials: a path on the same
    // server is the same server.
    let authority = uri.authority()?.as_str();
    if let Some(rest) = location.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{scheme}://{authority}{location}"));
    }
    let path = uri.path();
    if location.starts_with('?') || location.is_empty() {
        return Some(format!("{scheme}://{authority}{path}{location}"));
    }
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Some(format!("{scheme}://{authority}{dir}{location}"))
}

/// `url` with the password of its credentials masked:
/// `http://user:pass@host/` -> `http://user:***@host/`, and a lone user
/// part (often a token) masked whole: `https://TOKEN@host/` ->
/// `https://***@host/`.
pub fn redact_url(url: &str) -> String {
    redact_urls(url).into_owned()
}

/// `text` with the credentials of every URL in it masked (see
/// `redact_url`): for log lines and errors that quote URLs.
pub fn redact_urls(text: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = text[from..].find("://") {
        let scheme_end = from + found;
        let start = scheme_end + 3;
        let end = text[start..]
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | '`')
            })
            .map_or(text.len(), |i| start + i);
        let after_scheme = text[..scheme_end]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        // The last '@' ends the credentials: a password may hold '@'.
        if let (true, Some(at)) = (after_scheme, text[start..end].rfind('@')) {
            let userinfo = &text[start..start + at];
            out.push_str(&text[copied..start]);
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str("***"),
            }
            copied = start + at;
        }
        from = end.max(start);
    }
    if copied == 0 {
        return Cow::Borrowed(text);
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_content_range_gives_where_its_bytes_start() {
        assert_eq!(content_range_start(Some("bytes 100-199/200")), Some(100));
        assert_eq!(content_range_start(Some(" bytes 0-0/1")), Some(0));
        assert_eq!(content_range_start(Some("bytes */200")), None);
        assert_eq!(content_range_start(Some("items 1-2/3")), None);
        assert_eq!(content_range_start(None), None);
    }

    #[test]
    fn cidrs_parse_and_match() {
        let net = Net::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.1.1")), "IPv4-mapped");
        assert!(!net.is_single());
        let one = Net::parse("127.0.0.2").unwrap();
        assert!(one.is_single() && one.contains(ip("127.0.0.2")));
        assert!(!one.contains(ip("127.0.0.1")));
        assert_eq!(Net::parse("127.0.0.2/32").unwrap(), one);
        let v6 = Net::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")) && !v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(Net::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Net::parse("::/0").unwrap().contains(ip("2001:4860::1")));
        assert_eq!(
            Net::parse("::ffff:10.0.0.0/104").unwrap(),
            Net::parse("10.0.0.0/8").unwrap()
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/x",
            "fd00::/129",
            "10.0.0/8",
            "300.0.0.0/8",
            "/8",
        ] {
            assert!(Net::parse(bad).is_err(), "{bad}");
        }
        let typo = Net::parse("10.1.2.3/8").unwrap_err();
        assert!(typo.contains("did you mean 10.0.0.0/8"), "{typo}");
    }

    #[test]
    fn allow_lists_parse_with_clear_errors() {
        let policy =
            FetchPolicy::parse(&["10.0.0.0/8", " mirror.example.org. ", "", "fd00::1"]).unwrap();
        assert_eq!(policy.nets.len(), 2);
        assert_eq!(policy.hosts, vec!["mirror.example.org"]);
        for bad in [
            "10.0.0",
            "10.0.0.0/40",
            "bad name",
            "-x.org",
            "a..b",
            "http://x/",
        ] {
            let e = FetchPolicy::parse(&[bad]).unwrap_err().to_string();
            assert!(e.starts_with("base.import.allow: "), "{e}");
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn addresses_are_classified() {
        for (a, class) in [
            ("8.8.8.8", Class::Public),
            ("1.1.1.1", Class::Public),
            ("127.0.0.1", Class::Local),
            ("127.9.9.9", Class::Local),
            ("169.254.169.254", Class::Local),
            ("0.0.0.0", Class::Never),
            ("0.1.2.3", Class::Never),
            ("224.0.0.1", Class::Never),
            ("255.255.255.255", Class::Never),
            ("10.1.2.3", Class::Private),
            ("172.16.0.1", Class::Private),
            ("172.31.255.255", Class::Private),
            ("172.32.0.1", Class::Public),
            ("192.168.1.1", Class::Private),
            ("100.64.0.1", Class::Private),
            ("100.127.255.255", Class::Private),
            ("100.128.0.1", Class::Public),
            ("192.0.2.1", Class::Private),
            ("198.18.0.1", Class::Private),
            ("240.0.0.1", Class::Private),
            ("::1", Class::Local),
            ("::", Class::Never),
            ("fe80::1", Class::Local),
            ("febf::1", Class::Local),
            ("ff02::1", Class::Never),
            ("fc00::1", Class::Private),
            ("fd12:3456::1", Class::Private),
            ("2001:db8::1", Class::Private),
            ("2606:4700::1111", Class::Public),
            ("::ffff:127.0.0.1", Class::Local),
            ("::ffff:8.8.8.8", Class::Public),
            ("64:ff9b::7f00:1", Class::Local),
            ("64:ff9b::808:808", Class::Public),
            ("2002:a9fe:a9fe::", Class::Local),
            ("2002:0808:0808::", Class::Public),
            ("::127.0.0.1", Class::Private),
        ] {
            assert_eq!(classify(ip(a)), class, "{a}");
        }
    }

    #[test]
    fn the_policy_opens_ranges_names_and_single_addresses() {
        let none = FetchPolicy::default();
        let own = [ip("192.0.2.10"), ip("10.9.9.9")];
        assert_eq!(none.check("h", ip("8.8.8.8"), &own), Ok(()));
        assert_eq!(none.check("h", ip("10.1.1.1"), &own), Err(Refused::Private));
        assert_eq!(none.check("h", ip("127.0.0.1"), &own), Err(Refused::Local));
        assert_eq!(
            none.check("h", ip("169.254.169.254"), &own),
            Err(Refused::Local)
        );
        assert_eq!(none.check("h", ip("0.0.0.0"), &own), Err(Refused::Never));

        let policy = FetchPolicy::parse(&[
            "10.0.0.0/8",
            "127.0.0.0/8",
            "127.0.0.2/32",
            "mirror.lan",
            "0.0.0.0/0",
        ])
        .unwrap();
        assert_eq!(policy.check("h", ip("10.1.1.1"), &own), Ok(()));
        // A range never opens loopback, link-local or this host itself.
        assert_eq!(
            policy.check("h", ip("127.0.0.1"), &own),
            Err(Refused::Local)
        );
        assert_eq!(policy.check("h", ip("10.9.9.9"), &own), Err(Refused::Own));
        assert_eq!(policy.check("h", ip("127.0.0.2"), &own), Ok(()));
        assert_eq!(
            policy.check("h", ip("::ffff:127.0.0.2"), &own),
            Ok(()),
            "the mapped form is the same address"
        );
        assert_eq!(
            policy.check("h", ip("224.0.0.1"), &own),
            Err(Refused::Never)
        );
        assert_eq!(
            policy.check("h", ip("192.0.2.10"), &own),
            Err(Refused::Own),
            "an own address in an allowed range"
        );

        let names = FetchPolicy::parse(&["mirror.lan", "192.0.2.10"]).unwrap();
        assert_eq!(names.check("Mirror.LAN.", ip("192.168.1.5"), &own), Ok(()));
        assert_eq!(
            names.check("other.lan", ip("192.168.1.5"), &own),
            Err(Refused::Private)
        );
        // A listed name does not open loopback (DNS may say anything).
        assert_eq!(
            names.check("mirror.lan", ip("127.0.0.1"), &own),
            Err(Refused::Local)
        );
        assert_eq!(names.check("h", ip("192.0.2.10"), &own), Ok(()));
    }

    #[test]
    fn redirect_locations_join_their_base() {
        let base = "http://u:p@h:8/a/b.tar?x=1";
        assert_eq!(join(base, "https://o/c").unwrap(), "https://o/c");
        assert_eq!(join(base, "HTTP://o/c").unwrap(), "HTTP://o/c");
        assert_eq!(join(base, "//o/c").unwrap(), "http://o/c");
        assert_eq!(join(base, "/c").unwrap(), "http://u:p@h:8/c");
        assert_eq!(join(base, "c.tar").unwrap(), "http://u:p@h:8/a/c.tar");
        assert_eq!(join(base, "?y=2").unwrap(), "http://u:p@h:8/a/b.tar?y=2");
        assert_eq!(join("http://h", "c").unwrap(), "http://h/c");
        assert_eq!(
            join(base, "/p?next=http://x/").unwrap(),
            "http://u:p@h:8/p?next=http://x/"
        );
        assert_eq!(join(base, "file:///etc/passwd"), None);
        assert_eq!(join(base, "gopher://h/"), None);
    }

    #[test]
    fn credentials_in_urls_are_redacted() {
        assert_eq!(
            redact_url("http://user:pass@host/x"),
            "http://user:***@host/x"
        );
        assert_eq!(redact_url("https://TOKEN@host"), "https://***@host");
        assert_eq!(
            redact_url("http://u:p@ss@host:80/"),
            "http://u:***@host:80/"
        );
        assert_eq!(redact_url("http://host/a@b"), "http://host/a@b");
        assert_eq!(redact_url("http://host:80?q=a@b"), "http://host:80?q=a@b");
        assert_eq!(redact_url("/tmp/x@y.tar"), "/tmp/x@y.tar");
        assert_eq!(redact_url("http://u:***@host/"), "http://u:***@host/");
        assert_eq!(
            redact_urls("importing http://a:b@h/x, then \"https://c:d@i/\" and http://j/"),
            "importing http://a:***@h/x, then \"https://c:***@i/\" and http://j/"
        );
        assert_eq!(
            redact_urls("cannot fetch http://u:secret@[::1]:8/x: refused"),
            "cannot fetch http://u:***@[::1]:8/x: refused"
        );
        assert_eq!(redact_urls("no urls: a://"), "no urls: a://");
        assert!(matches!(redact_urls("plain text"), Cow::Borrowed(_)));
    }
}
