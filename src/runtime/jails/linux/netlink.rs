//! A small synchronous rtnetlink client for the cell's network (`net`): a
//! NETLINK_ROUTE socket in the host's network namespace or in a cell's, the
//! few messages the pod network needs (a bridge, a veth pair, link flags,
//! an IPv4 address, a default route), and the reading of the kernel's
//! replies, every request acknowledged or failed with its errno.
//!
//! Built on netlink-packet-route (the messages) and netlink-sys (the
//! socket), used synchronously, rather than on rtnetlink: rtnetlink is
//! async on tokio, while the driver's `create` is synchronous (the CLI
//! calls it directly, the server from a blocking task), and a handful of
//! request/ACK exchanges on a blocking socket need no runtime. The kernel
//! answers a rtnetlink request before `send` returns, so a blocking `recv`
//! never waits on anything but the kernel's reply.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;

use netlink_packet_core::{
    ErrorBuffer, NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLMSG_DONE,
    NLMSG_ERROR, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkFlags, LinkHeader, LinkInfo, LinkMessage,
};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// Room for one reply datagram: an ACK is tens of bytes, the one link
/// asked for by name (`link_index`) a few kilobytes.
const RECV_BUFFER: usize = 32 * 1024;

/// A NETLINK_ROUTE socket, bound to the network namespace it was created
/// in for its whole life.
pub(super) struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub(super) fn open() -> io::Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// A socket in the network namespace `netns` (a /proc/PID/ns/net
    /// file). A socket belongs to the namespace it was created in, so a
    /// short-lived thread enters `netns` and creates it there; the caller's
    /// threads never change namespace (setns(2) applies to one thread, and
    /// that thread ends with its change).
    pub(super) fn open_in(netns: &File) -> io::Result<Netlink> {
        let fd = netns.as_fd();
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(io::Error::from)?;
                    Netlink::open()
                })
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the netlink thread panicked")))
        })
    }

    /// Sends `message` with NLM_F_REQUEST | NLM_F_ACK | `flags` and waits
    /// for its ACK: Ok, or the kernel's errno. The links the kernel sent
    /// back before the ACK (a RTM_GETLINK's answer) are returned by index.
    fn request(&mut self, message: RouteNetlinkMessage, flags: u16) -> io::Result<Vec<u32>> {
        self.sequence = self.sequence.wrapping_add(1);
        let bytes = serialize(message, flags, self.sequence);
        self.socket.send(&bytes, 0)?;
        let mut links = Vec::new();
        loop {
            let mut reply = Vec::with_capacity(RECV_BUFFER);
            self.socket.recv(&mut reply, 0)?;
            if let Reply::Done(result) = read_reply(&reply, self.sequence, &mut links) {
                return result.map(|()| links);
            }
        }
    }

    /// The index of link `name` in this socket's namespace, or ENODEV.
    pub(super) fn link_index(&mut self, name: &str) -> io::Result<u32> {
        let mut message = LinkMessage::default();
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_string()));
        self.request(RouteNetlinkMessage::GetLink(message), 0)?
            .first()
            .copied()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))
    }

    /// Creates the link described by `message` (EEXIST if it exists).
    pub(super) fn create_link(&mut self, message: LinkMessage) -> io::Result<()> {
        self.request(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Sets link `name` up (`ip link set NAME up`).
    pub(super) fn set_up(&mut self, name: &str) -> io::Result<()> {
        self.request(RouteNetlinkMessage::NewLink(up(name)), 0)
            .map(drop)
    }

    /// Adds `address`/`prefix` to the link `index` (EEXIST if it is there).
    pub(super) fn add_address(
        &mut self,
        index: u32,
        address: Ipv4Addr,
        prefix: u8,
    ) -> io::Result<()> {
        self.request(
            RouteNetlinkMessage::NewAddress(ipv4_address(index, address, prefix)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// Adds the default route via `gateway` to the main table.
    pub(super) fn add_default_route(&mut self, gateway: Ipv4Addr) -> io::Result<()> {
        self.request(
            RouteNetlinkMessage::NewRoute(default_route(gateway)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }
}

/// `ip link add NAME type bridge`.
pub(super) fn bridge(name: &str) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.attributes = vec![
        LinkAttribute::IfName(name.to_string()),
        LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]),
    ];
    message
}

/// A veth pair in one request: the host end `host`, up and on the bridge
/// of index `bridge`; its peer `peer` with MAC `mac`, made directly in the
/// network namespace of process `pid` (IFLA_NET_NS_PID), so that it never
/// shows in the host's namespace.
pub(super) fn veth(host: &str, bridge: u32, peer: &str, mac: [u8; 6], pid: u32) -> LinkMessage {
    let mut peer_message = LinkMessage::default();
    peer_message.attributes = vec![
        LinkAttribute::IfName(peer.to_string()),
        LinkAttribute::Address(mac.to_vec()),
        LinkAttribute::NetNsPid(pid),
    ];
    let mut message = LinkMessage::default();
    message.header = up_header();
    message.attributes = vec![
        LinkAttribute::IfName(host.to_string()),
        LinkAttribute::Controller(bridge),
        LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_message))),
        ]),
    ];
    message
}

/// IFF_UP set, and only IFF_UP changed.
fn up_header() -> LinkHeader {
    LinkHeader {
        flags: LinkFlags::Up,
        change_mask: LinkFlags::Up,
        ..LinkHeader::default()
    }
}

/// `ip link set NAME up`: the link named, not indexed (index 0 tells the
/// kernel to look the name up).
fn up(name: &str) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header = up_header();
    message.attributes = vec![LinkAttribute::IfName(name.to_string())];
    message
}

/// `ip addr add ADDRESS/PREFIX dev INDEX`: as ip(8) does, the address is
/// both the local one and the peer one (IFA_LOCAL, IFA_ADDRESS).
fn ipv4_address(index: u32, address: Ipv4Addr, prefix: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix;
    message.header.index = index;
    message.attributes = vec![
        AddressAttribute::Local(IpAddr::V4(address)),
        AddressAttribute::Address(IpAddr::V4(address)),
    ];
    message
}

/// `ip route add default via GATEWAY`: the main table, as ip(8) makes it
/// (protocol boot, universe scope, unicast); the kernel finds the link
/// from the gateway.
fn default_route(gateway: Ipv4Addr) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = AddressFamily::Inet;
    message.header.destination_prefix_length = 0;
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::Boot;
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway))];
    message
}

/// The bytes of one request.
fn serialize(message: RouteNetlinkMessage, flags: u16, sequence: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    header.sequence_number = sequence;
    let mut message = NetlinkMessage::new(header, NetlinkPayload::from(message));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

#[derive(Debug)]
enum Reply {
    /// The request's ACK (or its error, or NLMSG_DONE) was read.
    Done(io::Result<()>),
    /// Not yet: read the next datagram.
    More,
}

/// Reads one datagram of replies to request `sequence`: the indexes of
/// the links in it go to `links`; its ACK or error ends the request.
/// Replies to other requests (none are expected) are skipped.
fn read_reply(mut datagram: &[u8], sequence: u32, links: &mut Vec<u32>) -> Reply {
    while !datagram.is_empty() {
        let message = match NetlinkBuffer::new_checked(datagram) {
            Ok(m) => m,
            Err(e) => return Reply::Done(Err(io::Error::new(io::ErrorKind::InvalidData, e))),
        };
        let length = message.length() as usize;
        if message.sequence_number() == sequence {
            match message.message_type() {
                NLMSG_ERROR => {
                    return Reply::Done(match ErrorBuffer::new_checked(message.payload()) {
                        Ok(error) => match error.code() {
                            None => Ok(()),
                            Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                        },
                        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
                    })
                }
                NLMSG_DONE => return Reply::Done(Ok(())),
                libc::RTM_NEWLINK => match LinkHeader::parse(message.payload()) {
                    Ok(header) => links.push(header.index),
                    Err(e) => {
                        return Reply::Done(Err(io::Error::new(io::ErrorKind::InvalidData, e)))
                    }
                },
                _ => {}
            }
        }
        // Messages are 4-byte aligned within a datagram.
        let step = (length + 3) & !3;
        datagram = datagram.get(step..).unwrap_or_default();
    }
    Reply::More
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(message: RouteNetlinkMessage, flags: u16) -> NetlinkMessage<RouteNetlinkMessage> {
        let bytes = serialize(message, flags, 7);
        let back = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&bytes).unwrap();
        assert_eq!(back.header.length as usize, bytes.len());
        assert_eq!(back.header.sequence_number, 7);
        assert_eq!(back.header.flags, NLM_F_REQUEST | NLM_F_ACK | flags);
        back
    }

    fn link(message: NetlinkMessage<RouteNetlinkMessage>) -> LinkMessage {
        match message.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(m)) => m,
            other => panic!("not a RTM_NEWLINK: {other:?}"),
        }
    }

    #[test]
    fn bridges_are_created_by_kind() {
        let m = link(round_trip(
            RouteNetlinkMessage::NewLink(bridge("jp0")),
            NLM_F_CREATE | NLM_F_EXCL,
        ));
        assert_eq!(m.header.index, 0);
        assert!(m.attributes.contains(&LinkAttribute::IfName("jp0".into())));
        assert!(m
            .attributes
            .contains(&LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge
            )])));
    }

    #[test]
    fn veth_pairs_put_their_peer_in_the_cell() {
        let mac = [0x02, 0x6a, 10, 200, 1, 2];
        let m = link(round_trip(
            RouteNetlinkMessage::NewLink(veth("jpabc", 9, "eth0", mac, 4242)),
            NLM_F_CREATE | NLM_F_EXCL,
        ));
        assert_eq!(m.header.flags, LinkFlags::Up);
        assert_eq!(m.header.change_mask, LinkFlags::Up);
        assert!(m
            .attributes
            .contains(&LinkAttribute::IfName("jpabc".into())));
        assert!(m.attributes.contains(&LinkAttribute::Controller(9)));
        let info = m
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(info) => Some(info),
                _ => None,
            })
            .unwrap();
        assert_eq!(info[0], LinkInfo::Kind(InfoKind::Veth));
        let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) = &info[1] else {
            panic!("no veth peer: {info:?}");
        };
        assert_eq!(
            peer.attributes,
            vec![
                LinkAttribute::IfName("eth0".into()),
                LinkAttribute::Address(mac.to_vec()),
                LinkAttribute::NetNsPid(4242),
            ]
        );
    }

    #[test]
    fn links_are_set_up_by_name() {
        let m = link(round_trip(RouteNetlinkMessage::NewLink(up("lo")), 0));
        assert_eq!(m.header.index, 0);
        assert_eq!(m.header.flags, LinkFlags::Up);
        assert_eq!(m.header.change_mask, LinkFlags::Up);
        assert_eq!(m.attributes, vec![LinkAttribute::IfName("lo".into())]);
    }

    #[test]
    fn addresses_and_routes_are_ipv4() {
        let address: Ipv4Addr = "10.200.1.2".parse().unwrap();
        let back = round_trip(
            RouteNetlinkMessage::NewAddress(ipv4_address(3, address, 24)),
            NLM_F_CREATE | NLM_F_EXCL,
        );
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) = back.payload else {
            panic!("not a RTM_NEWADDR");
        };
        assert_eq!(
            (a.header.family, a.header.prefix_len, a.header.index),
            (AddressFamily::Inet, 24, 3)
        );
        assert!(a
            .attributes
            .contains(&AddressAttribute::Local(IpAddr::V4(address))));

        let gateway: Ipv4Addr = "10.200.1.1".parse().unwrap();
        let back = round_trip(
            RouteNetlinkMessage::NewRoute(default_route(gateway)),
            NLM_F_CREATE | NLM_F_EXCL,
        );
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(r)) = back.payload else {
            panic!("not a RTM_NEWROUTE");
        };
        assert_eq!(r.header.destination_prefix_length, 0);
        assert_eq!(r.header.table, RouteHeader::RT_TABLE_MAIN);
        assert_eq!(r.header.kind, RouteType::Unicast);
        assert_eq!(
            r.attributes,
            vec![RouteAttribute::Gateway(RouteAddress::Inet(gateway))]
        );
    }

    /// A kernel reply: an NLMSG_ERROR with `code` (0 for an ACK).
    fn error_reply(sequence: u32, code: i32) -> Vec<u8> {
        let mut bytes = vec![0u8; 16 + 20];
        let mut message = NetlinkBuffer::new(&mut bytes[..]);
        message.set_length(36);
        message.set_message_type(NLMSG_ERROR);
        message.set_sequence_number(sequence);
        ErrorBuffer::new(message.payload_mut()).set_code(code);
        bytes
    }

    #[test]
    fn replies_end_on_their_own_ack_or_error() {
        let mut links = vec![];
        assert!(matches!(
            read_reply(&error_reply(5, 0), 5, &mut links),
            Reply::Done(Ok(()))
        ));
        let Reply::Done(Err(e)) = read_reply(&error_reply(5, -libc::EEXIST), 5, &mut links) else {
            panic!("an error reply is an error");
        };
        assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
        // A stale reply to another request is skipped; two in a datagram.
        assert!(matches!(
            read_reply(&error_reply(4, -libc::EPERM), 5, &mut links),
            Reply::More
        ));
        let mut both = error_reply(4, -libc::EPERM);
        both.extend(error_reply(5, 0));
        assert!(matches!(
            read_reply(&both, 5, &mut links),
            Reply::Done(Ok(()))
        ));
        assert!(links.is_empty());
    }

    #[test]
    fn link_replies_give_their_index() {
        let mut message = LinkMessage::default();
        message.header.index = 12;
        message.attributes = vec![LinkAttribute::IfName("eth0".into())];
        let mut reply = serialize(RouteNetlinkMessage::NewLink(message), 0, 3);
        reply.extend(error_reply(3, 0));
        let mut links = vec![];
        assert!(matches!(
            read_reply(&reply, 3, &mut links),
            Reply::Done(Ok(()))
        ));
        assert_eq!(links, vec![12]);
    }

    #[test]
    fn truncated_replies_are_errors() {
        let reply = error_reply(1, 0);
        let mut links = vec![];
        assert!(matches!(
            read_reply(&reply[..10], 1, &mut links),
            Reply::Done(Err(_))
        ));
    }
}
