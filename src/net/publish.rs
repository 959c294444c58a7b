//! `--publish [ADDR:]HOSTPORT:PORT[/tcp|udp]`: ports of the host forwarded
//! to a launched instance. The host side is a userspace proxy (`Publisher`)
//! to the pod's address, where the pod's own DNAT
//! (`runtime::jails::instance_net`) takes the traffic on to the guest.
//!
//! As with docker, ADDR defaults to 0.0.0.0 (every host address) and the
//! protocol to tcp; a HOSTPORT of 0 asks for any free port (`bound` says
//! which). Only IPv4.
//!
//! The publisher runs inside the instance's synchronous supervisor: it
//! keeps a thread of its own running a current-thread tokio runtime, so
//! that hundreds of idle connections cost tasks rather than threads, and
//! so that stopping is one cancellation instead of waking blocked threads.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// A transport protocol of a forwarded port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        })
    }
}

impl FromStr for Proto {
    type Err = PublishParseError;
    fn from_str(s: &str) -> Result<Proto, PublishParseError> {
        match s {
            "tcp" => Ok(Proto::Tcp),
            "udp" => Ok(Proto::Udp),
            other => Err(PublishParseError::Proto(other.to_string())),
        }
    }
}

/// One `--publish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublishSpec {
    pub addr: Ipv4Addr,
    pub host_port: u16,
    pub port: u16,
    pub proto: Proto,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishParseError {
    #[error("empty publish spec; expected [ADDR:]HOSTPORT:PORT[/tcp|udp]")]
    Empty,
    #[error("{0:?}: expected [ADDR:]HOSTPORT:PORT[/tcp|udp]")]
    Shape(String),
    #[error("{0:?} is not an IPv4 address")]
    Address(String),
    #[error("{which} {value:?} is not a port number (0-65535)")]
    Port { which: &'static str, value: String },
    #[error("the instance's port cannot be 0")]
    ZeroPort,
    #[error("protocol {0:?}: expected tcp or udp")]
    Proto(String),
}

fn port(which: &'static str, value: &str) -> Result<u16, PublishParseError> {
    // u16's parser takes a leading '+'; a port is digits only.
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PublishParseError::Port {
            which,
            value: value.into(),
        });
    }
    value.parse().map_err(|_| PublishParseError::Port {
        which,
        value: value.into(),
    })
}

impl FromStr for PublishSpec {
    type Err = PublishParseError;
    fn from_str(s: &str) -> Result<PublishSpec, PublishParseError> {
        if s.is_empty() {
            return Err(PublishParseError::Empty);
        }
        let (ports, proto) = match s.rsplit_once('/') {
            Some((ports, proto)) => (ports, proto.parse()?),
            None => (s, Proto::Tcp),
        };
        let parts: Vec<&str> = ports.split(':').collect();
        let (addr, host_port, port_) = match parts.as_slice() {
            [h, p] => (Ipv4Addr::UNSPECIFIED, *h, *p),
            [a, h, p] => (
                a.parse()
                    .map_err(|_| PublishParseError::Address(a.to_string()))?,
                *h,
                *p,
            ),
            _ => return Err(PublishParseError::Shape(s.into())),
        };
        let host_port = port("host port", host_port)?;
        let port = port("port", port_)?;
        if port == 0 {
            return Err(PublishParseError::ZeroPort);
        }
        Ok(PublishSpec {
            addr,
            host_port,
            port,
            proto,
        })
    }
}

impl fmt::Display for PublishSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}/{}",
            self.addr, self.host_port, self.port, self.proto
        )
    }
}

impl TryFrom<String> for PublishSpec {
    type Error = PublishParseError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PublishSpec> for String {
    fn from(p: PublishSpec) -> String {
        p.to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot publish {proto} {addr}: the address is already in use")]
    InUse { addr: SocketAddrV4, proto: Proto },
    #[error("cannot publish {proto} {addr}: {source}")]
    Bind {
        addr: SocketAddrV4,
        proto: Proto,
        source: std::io::Error,
    },
    #[error("starting the publisher: {0}")]
    Start(std::io::Error),
}

/// The publisher's bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// TCP connections open at once per publish; more are refused
    /// (closed at accept). Also the UDP clients relayed at once.
    pub max_connections: usize,
    /// How long a connection to the pod may take before the client's
    /// connection is closed.
    pub connect_timeout: Duration,
    /// A UDP client's relay ends after this long without a reply from
    /// the pod.
    pub udp_idle: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            connect_timeout: Duration::from_secs(5),
            udp_idle: Duration::from_secs(30),
        }
    }
}

enum Socket {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
}

/// Every publish of an instance, bound and not yet forwarding.
pub struct Publisher {
    sockets: Vec<(PublishSpec, Socket)>,
    target: Ipv4Addr,
    limits: Limits,
}

impl Publisher {
    /// Binds every host socket before anything forwards, so that a taken
    /// port fails the launch at once: the first failure is the error and
    /// the sockets already bound are closed with it.
    pub fn bind(specs: &[PublishSpec], target: Ipv4Addr) -> Result<Publisher, PublishError> {
        let mut sockets = Vec::with_capacity(specs.len());
        for spec in specs {
            let addr = SocketAddrV4::new(spec.addr, spec.host_port);
            let failed = |source: std::io::Error| {
                if source.kind() == std::io::ErrorKind::AddrInUse {
                    PublishError::InUse {
                        addr,
                        proto: spec.proto,
                    }
                } else {
                    PublishError::Bind {
                        addr,
                        proto: spec.proto,
                        source,
                    }
                }
            };
            let socket = match spec.proto {
                Proto::Tcp => Socket::Tcp(std::net::TcpListener::bind(addr).map_err(failed)?),
                Proto::Udp => Socket::Udp(std::net::UdpSocket::bind(addr).map_err(failed)?),
            };
            sockets.push((*spec, socket));
        }
        Ok(Publisher {
            sockets,
            target,
            limits: Limits::default(),
        })
    }

    pub fn with_limits(mut self, limits: Limits) -> Publisher {
        self.limits = limits;
        self
    }

    /// Each publish with the address it is bound to (the port chosen
    /// where its HOSTPORT was 0).
    pub fn bound(&self) -> Vec<(PublishSpec, SocketAddr)> {
        self.sockets
            .iter()
            .filter_map(|(spec, s)| {
                let local = match s {
                    Socket::Tcp(l) => l.local_addr(),
                    Socket::Udp(u) => u.local_addr(),
                };
                local.ok().map(|a| (*spec, a))
            })
            .collect()
    }

    /// Starts forwarding on a thread of its own; it goes on until the
    /// returned handle is stopped or dropped.
    pub fn start(self) -> Result<Running, PublishError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(PublishError::Start)?;
        let token = CancellationToken::new();
        let mut tasks = Vec::new();
        {
            // Registering the sockets with the reactor needs the runtime's
            // context.
            let _guard = runtime.enter();
            for (spec, socket) in self.sockets {
                let target = SocketAddrV4::new(self.target, spec.port);
                match socket {
                    Socket::Tcp(l) => {
                        l.set_nonblocking(true).map_err(PublishError::Start)?;
                        let l =
                            tokio::net::TcpListener::from_std(l).map_err(PublishError::Start)?;
                        tasks.push(tokio::spawn(tcp_accept(
                            l,
                            target,
                            self.limits,
                            token.clone(),
                        )));
                    }
                    Socket::Udp(u) => {
                        u.set_nonblocking(true).map_err(PublishError::Start)?;
                        let u = tokio::net::UdpSocket::from_std(u).map_err(PublishError::Start)?;
                        tasks.push(tokio::spawn(udp_relay(
                            Arc::new(u),
                            target,
                            self.limits,
                            token.clone(),
                        )));
                    }
                }
            }
        }
        let stop = token.clone();
        let thread = std::thread::Builder::new()
            .name("publish".into())
            .spawn(move || {
                runtime.block_on(stop.cancelled());
                // Dropping the runtime ends every task and closes every
                // socket they hold.
                drop(tasks);
                drop(runtime);
            })
            .map_err(PublishError::Start)?;
        Ok(Running {
            token,
            thread: Some(thread),
        })
    }
}

/// A forwarding publisher; dropping it stops it.
pub struct Running {
    token: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// Stops forwarding: every listener and connection is closed when
    /// this returns.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.token.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.halt();
    }
}

async fn tcp_accept(
    listener: tokio::net::TcpListener,
    target: SocketAddrV4,
    limits: Limits,
    token: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = token.cancelled() => return,
            a = listener.accept() => a,
        };
        let (client, peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors or a connection reset before accept:
                // transient; a short pause keeps an EMFILE from spinning.
                tracing::warn!("publish {target}: accept: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                "publish {target}: {} connections open, refusing {peer}",
                limits.max_connections
            );
            continue;
        };
        tokio::spawn(async move {
            let _permit = permit;
            let upstream = tokio::time::timeout(
                limits.connect_timeout,
                tokio::net::TcpStream::connect(target),
            )
            .await;
            let mut upstream = match upstream {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!("publish {target}: connecting for {peer}: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("publish {target}: connecting for {peer} timed out");
                    return;
                }
            };
            let mut client = client;
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}

/// The relays of one UDP publish, by client address: each client gets a
/// socket of its own towards the pod, so replies find their client.
type Sessions = Arc<Mutex<HashMap<SocketAddr, Arc<tokio::net::UdpSocket>>>>;

async fn udp_relay(
    socket: Arc<tokio::net::UdpSocket>,
    target: SocketAddrV4,
    limits: Limits,
    token: CancellationToken,
) {
    let sessions: Sessions = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let received = tokio::select! {
            _ = token.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        let (n, client) = match received {
            Ok(r) => r,
            // An ICMP error of an earlier send_to surfaces here; the
            // socket is still good.
            Err(_) => continue,
        };
        let existing = sessions.lock().ok().and_then(|s| s.get(&client).cloned());
        let upstream = match existing {
            Some(u) => u,
            None => {
                let count = sessions.lock().map(|s| s.len()).unwrap_or(usize::MAX);
                if count >= limits.max_connections {
                    tracing::warn!("publish udp {target}: {count} clients, dropping {client}");
                    continue;
                }
                let Ok(u) = new_upstream(target).await else {
                    continue;
                };
                let u = Arc::new(u);
                if let Ok(mut s) = sessions.lock() {
                    s.insert(client, u.clone());
                }
                tokio::spawn(udp_back(
                    socket.clone(),
                    u.clone(),
                    client,
                    sessions.clone(),
                    limits.udp_idle,
                ));
                u
            }
        };
        let _ = upstream.send(&buf[..n]).await;
    }
}

async fn new_upstream(target: SocketAddrV4) -> std::io::Result<tokio::net::UdpSocket> {
    let u = tokio::net::UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    u.connect(target).await?;
    Ok(u)
}

/// Relays the pod's replies to `client` until no reply came for `idle`.
/// A client still sending after that gets a new relay (a new source port
/// towards the pod), which UDP services that answer each datagram on its
/// own do not notice.
async fn udp_back(
    socket: Arc<tokio::net::UdpSocket>,
    upstream: Arc<tokio::net::UdpSocket>,
    client: SocketAddr,
    sessions: Sessions,
    idle: Duration,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        match tokio::time::timeout(idle, upstream.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                let _ = socket.send_to(&buf[..n], client).await;
            }
            // ECONNREFUSED from an ICMP unreachable: nothing listens yet.
            Ok(Err(_)) => continue,
            Err(_) => break,
        }
    }
    if let Ok(mut s) = sessions.lock() {
        s.remove(&client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_specs_parse_and_print_in_full() {
        for (text, full) in [
            ("8080:80", "0.0.0.0:8080:80/tcp"),
            ("8080:80/udp", "0.0.0.0:8080:80/udp"),
            ("127.0.0.1:53:53/udp", "127.0.0.1:53:53/udp"),
            ("10.1.2.3:0:443/tcp", "10.1.2.3:0:443/tcp"),
            ("65535:65535", "0.0.0.0:65535:65535/tcp"),
        ] {
            let spec: PublishSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), full);
            assert_eq!(full.parse::<PublishSpec>().unwrap(), spec);
        }
        let spec: PublishSpec = "1.2.3.4:80:8080/udp".parse().unwrap();
        assert_eq!(
            spec,
            PublishSpec {
                addr: Ipv4Addr::new(1, 2, 3, 4),
                host_port: 80,
                port: 8080,
                proto: Proto::Udp
            }
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        use PublishParseError as E;
        let port = |which: &'static str, value: &str| E::Port {
            which,
            value: value.into(),
        };
        for (text, err) in [
            ("", E::Empty),
            ("80", E::Shape("80".into())),
            ("1:2:3:4", E::Shape("1:2:3:4".into())),
            ("::1:80:80", E::Shape("::1:80:80".into())),
            ("localhost:80:80", E::Address("localhost".into())),
            (":80:80", E::Address("".into())),
            ("80:80/sctp", E::Proto("sctp".into())),
            ("80:80/TCP", E::Proto("TCP".into())),
            ("80:80/", E::Proto("".into())),
            ("x:80", port("host port", "x")),
            (":80", port("host port", "")),
            ("80:", port("port", "")),
            ("65536:80", port("host port", "65536")),
            ("80:+80", port("port", "+80")),
            ("80:-1", port("port", "-1")),
            ("80:0", E::ZeroPort),
        ] {
            assert_eq!(text.parse::<PublishSpec>(), Err(err), "{text:?}");
        }
        // Every error names the offending piece in its message.
        let msg = "80:80/sctp".parse::<PublishSpec>().unwrap_err().to_string();
        assert!(msg.contains("sctp"), "{msg}");
    }

    #[test]
    fn serde_uses_the_string_form() {
        let spec: PublishSpec = "9000:90/udp".parse().unwrap();
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(json, r#""0.0.0.0:9000:90/udp""#);
        assert_eq!(serde_json::from_str::<PublishSpec>(&json).unwrap(), spec);
        assert!(serde_json::from_str::<PublishSpec>(r#""90""#).is_err());
        assert_eq!(serde_json::to_string(&Proto::Tcp).unwrap(), r#""tcp""#);
    }
}
