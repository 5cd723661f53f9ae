//! Hostile peers for the smoltcp TAP tests: forged SYNs written as raw
//! frames on the kernel side of a TAP device, and silent clients.
//!
//! Forged SYNs come from addresses of the TAP subnet that nobody owns, so
//! the smoltcp stack's ARP requests for them are never answered: its SYN-ACK
//! (and any RST) can never leave, exactly as for a spoofed source. They are
//! sent through an `AF_PACKET` socket bound to the TAP device (smoltcp's
//! `RawSocket`), which only exists inside the test's own namespace.
//!
//! Use with `#[path = "support/forge.rs"] mod forge;`.

#![allow(dead_code)] // each test crate uses a subset

use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::Duration;

use smoltcp::phy::{Device, Medium, RawSocket, TxToken};
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpProtocol, Ipv4Packet, TcpPacket,
    TcpSeqNumber,
};

/// Frames written per burst before a short pause: the TAP device queues
/// about 500 frames for its reader and drops the rest.
const BURST: usize = 100;
/// The pause between bursts, so the stack's reader keeps up.
const PAUSE: Duration = Duration::from_millis(3);

/// Source address number `i` of the forged SYNs: 192.168.69.2 to .254,
/// skipping the kernel side (.100) and the stack (.1).
fn forged_source(i: usize) -> Ipv4Addr {
    let hosts: Vec<u8> = (2..=254).filter(|h| *h != 100).collect();
    Ipv4Addr::new(192, 168, 69, hosts[i % hosts.len()])
}

/// An Ethernet + IPv4 + TCP SYN from forged source `i` to `dst`, with
/// correct checksums, addressed to the stack's hardware address.
pub fn forged_syn(i: usize, stack_mac: EthernetAddress, dst: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(dst) = dst else {
        panic!("forged SYNs are IPv4");
    };
    let src = forged_source(i);
    let src_port = 20_000 + (i / 252) as u16;
    let mut frame = vec![0u8; 14 + 20 + 20];
    let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.set_dst_addr(stack_mac);
    // Locally administered, owned by nobody.
    eth.set_src_addr(EthernetAddress([0x02, 0x66, 0x6f, 0x72, 0x67, 0x65]));
    eth.set_ethertype(EthernetProtocol::Ipv4);
    let mut ip = Ipv4Packet::new_unchecked(eth.payload_mut());
    ip.set_version(4);
    ip.set_header_len(20);
    ip.set_total_len(40);
    ip.set_ident(i as u16);
    ip.clear_flags();
    ip.set_dont_frag(true);
    ip.set_hop_limit(64);
    ip.set_next_header(IpProtocol::Tcp);
    ip.set_src_addr(src);
    ip.set_dst_addr(*dst.ip());
    ip.fill_checksum();
    let mut tcp = TcpPacket::new_unchecked(ip.payload_mut());
    tcp.set_src_port(src_port);
    tcp.set_dst_port(dst.port());
    tcp.set_seq_number(TcpSeqNumber(0x1000_0000 + i as i32));
    tcp.set_ack_number(TcpSeqNumber(0));
    tcp.set_header_len(20);
    tcp.clear_flags();
    tcp.set_syn(true);
    tcp.set_window_len(64_240);
    tcp.set_urgent_at(0);
    tcp.fill_checksum(&IpAddress::Ipv4(src), &IpAddress::Ipv4(*dst.ip()));
    frame
}

/// Writes forged SYNs `range` on TAP device `tap` (in this thread's
/// namespace), in paced bursts. Bounded: one frame per index.
pub fn send_forged_syns(
    tap: &str,
    stack_mac: EthernetAddress,
    dst: SocketAddr,
    range: std::ops::Range<usize>,
) {
    let mut raw = RawSocket::new(tap, Medium::Ethernet)
        .unwrap_or_else(|e| panic!("AF_PACKET socket on {tap}: {e}"));
    let now = smoltcp::time::Instant::ZERO;
    for (n, i) in range.enumerate() {
        let frame = forged_syn(i, stack_mac, dst);
        let Some(tx) = raw.transmit(now) else {
            panic!("raw socket refused to transmit");
        };
        tx.consume(frame.len(), |buf| buf.copy_from_slice(&frame));
        if n % BURST == BURST - 1 {
            thread::sleep(PAUSE);
        }
    }
}

/// Opens `count` connections to `addr` that never send a byte, without
/// waiting for them to complete (non-blocking connects), paced like the
/// forged SYNs. Keep the sockets: dropping them closes the connections.
pub fn silent_clients(addr: SocketAddr, count: usize) -> Vec<socket2::Socket> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let target = SockAddr::from(addr);
    (0..count)
        .map(|n| {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
                .unwrap_or_else(|e| panic!("socket #{n}: {e}"));
            socket
                .set_nonblocking(true)
                .unwrap_or_else(|e| panic!("nonblocking #{n}: {e}"));
            match socket.connect(&target) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::EINPROGRESS) => {}
                Err(e) => panic!("connect #{n}: {e}"),
            }
            if n % BURST == BURST - 1 {
                thread::sleep(PAUSE);
            }
            socket
        })
        .collect()
}

/// Raises this process's open-file limit to its hard limit (at most 65,536),
/// for tests that hold a thousand sockets.
pub fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(65_536), hard);
    }
}
