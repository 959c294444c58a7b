//! `--publish` on loopback with real sockets: TCP and UDP echoed through
//! the publisher, the connection cap, and a taken port failing the whole
//! bind with nothing left bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use jetpack::net::publish::{Limits, PublishError, PublishSpec, Publisher};

const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// A bound on every blocking read, so that a broken publisher fails the
/// test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(10);

/// A TCP echo server on loopback; its port.
fn tcp_echo() -> u16 {
    let listener = TcpListener::bind((LOCAL, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

/// A UDP echo server on loopback; its port.
fn udp_echo() -> u16 {
    let socket = UdpSocket::bind((LOCAL, 0)).unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    port
}

fn spec(text: &str) -> PublishSpec {
    text.parse().unwrap()
}

fn only_bound(publisher: &Publisher) -> SocketAddr {
    let bound = publisher.bound();
    assert_eq!(bound.len(), 1);
    bound[0].1
}

fn echo_tcp(addr: SocketAddr, message: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(message).unwrap();
    let mut back = vec![0u8; message.len()];
    stream.read_exact(&mut back).unwrap();
    assert_eq!(back, message);
    stream
}

#[test]
fn tcp_is_proxied_to_the_target_port() {
    let echo = tcp_echo();
    let publisher = Publisher::bind(&[spec(&format!("127.0.0.1:0:{echo}"))], LOCAL).unwrap();
    let addr = only_bound(&publisher);
    assert_ne!(addr.port(), echo);
    let running = publisher.start().unwrap();
    echo_tcp(addr, b"hello through the publisher");
    // Stopping closes the listener: its port can be bound again.
    running.stop();
    TcpListener::bind(addr).expect("the listener outlived stop");
}

#[test]
fn tcp_connections_beyond_the_cap_are_closed() {
    let echo = tcp_echo();
    let publisher = Publisher::bind(&[spec(&format!("127.0.0.1:0:{echo}/tcp"))], LOCAL)
        .unwrap()
        .with_limits(Limits {
            max_connections: 1,
            ..Limits::default()
        });
    let addr = only_bound(&publisher);
    let _running = publisher.start().unwrap();
    let first = echo_tcp(addr, b"one");
    let mut second = TcpStream::connect(addr).unwrap();
    second.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = second.write_all(b"two");
    let mut buf = [0u8; 8];
    match second.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("the connection over the cap was served: {other:?}"),
    }
    // Once the first ends, a new one is served again; the slot comes back
    // when the proxy notices the close, so retry until it has.
    drop(first);
    let served = (0..200).any(|_| {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(PATIENCE)).unwrap();
        s.write_all(b"three").is_ok() && {
            let mut back = [0u8; 5];
            s.read_exact(&mut back).is_ok() && &back == b"three"
        }
    });
    assert!(served, "the slot of a closed connection never came back");
}

#[test]
fn udp_is_relayed_per_client() {
    let echo = udp_echo();
    let publisher = Publisher::bind(&[spec(&format!("127.0.0.1:0:{echo}/udp"))], LOCAL).unwrap();
    let addr = only_bound(&publisher);
    let _running = publisher.start().unwrap();
    let clients: Vec<UdpSocket> = (0..2)
        .map(|_| {
            let c = UdpSocket::bind((LOCAL, 0)).unwrap();
            c.set_read_timeout(Some(PATIENCE)).unwrap();
            c
        })
        .collect();
    for round in 0..2 {
        for (i, c) in clients.iter().enumerate() {
            let message = format!("client {i} round {round}");
            c.send_to(message.as_bytes(), addr).unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = c.recv_from(&mut buf).unwrap();
            assert_eq!(from, addr, "the reply must come from the published port");
            assert_eq!(&buf[..n], message.as_bytes());
        }
    }
}

#[test]
fn a_taken_port_fails_the_bind_and_leaves_nothing_bound() {
    let taken = TcpListener::bind((LOCAL, 0)).unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    // A port free a moment ago, for the publish that binds before the
    // failing one.
    let free_port = TcpListener::bind((LOCAL, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let udp_free = UdpSocket::bind((LOCAL, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let specs = [
        spec(&format!("127.0.0.1:{free_port}:80")),
        spec(&format!("127.0.0.1:{udp_free}:53/udp")),
        spec(&format!("127.0.0.1:{taken_port}:80")),
    ];
    match Publisher::bind(&specs, LOCAL) {
        Err(e @ PublishError::InUse { .. }) => {
            let text = e.to_string();
            assert!(
                text.contains(&format!("127.0.0.1:{taken_port}")),
                "the error must name the address: {text}"
            );
        }
        Err(other) => panic!("expected InUse, got {other}"),
        Ok(_) => panic!("bound a taken port"),
    }
    TcpListener::bind((LOCAL, free_port)).expect("the earlier TCP publish stayed bound");
    UdpSocket::bind((LOCAL, udp_free)).expect("the earlier UDP publish stayed bound");

    let udp_taken = UdpSocket::bind((LOCAL, 0)).unwrap();
    let udp_port = udp_taken.local_addr().unwrap().port();
    assert!(matches!(
        Publisher::bind(&[spec(&format!("127.0.0.1:{udp_port}:53/udp"))], LOCAL),
        Err(PublishError::InUse { addr, .. }) if addr.port() == udp_port
    ));
}
