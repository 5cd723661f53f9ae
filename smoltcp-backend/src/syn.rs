//! Recognising inbound TCP SYNs in raw frames, with `smoltcp::wire`.

use smoltcp::phy::Medium;
#[cfg(feature = "proto-ipv6")]
use smoltcp::wire::Ipv6Packet;
use smoltcp::wire::{
    EthernetFrame, EthernetProtocol, IpAddress, IpEndpoint, IpProtocol, Ipv4Packet, TcpPacket,
};

/// Who sent a connection request, to recognise its retransmissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SynKey {
    pub(crate) src_addr: [u8; 16],
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
}

impl SynKey {
    /// The key of the requests `remote` sends to `local_port`.
    pub(crate) fn new(remote: IpEndpoint, local_port: u16) -> Self {
        let mut src_addr = [0u8; 16];
        match remote.addr {
            IpAddress::Ipv4(a) => src_addr[..4].copy_from_slice(&a.octets()),
            #[cfg(feature = "proto-ipv6")]
            IpAddress::Ipv6(a) => src_addr = a.octets(),
        }
        Self {
            src_addr,
            src_port: remote.port,
            dst_port: local_port,
        }
    }
}

/// The key of `frame` when it is a TCP segment with SYN set and ACK clear
/// (a connection request); `None` for everything else, malformed frames included.
pub(crate) fn connection_request(medium: Medium, frame: &[u8]) -> Option<SynKey> {
    let ip = match medium {
        Medium::Ethernet => {
            let eth = EthernetFrame::new_checked(frame).ok()?;
            match eth.ethertype() {
                EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6 => eth.payload(),
                _ => return None,
            }
        }
        #[cfg(feature = "medium-ip")]
        Medium::Ip => frame,
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    let (src_addr, tcp) = match ip.first()? >> 4 {
        4 => {
            let packet = Ipv4Packet::new_checked(ip).ok()?;
            // A fragment's TCP header may be elsewhere; SYNs are never fragmented in practice.
            if packet.next_header() != IpProtocol::Tcp
                || packet.more_frags()
                || packet.frag_offset() != 0
            {
                return None;
            }
            let mut addr = [0u8; 16];
            addr[..4].copy_from_slice(&packet.src_addr().octets());
            (addr, packet.payload())
        }
        #[cfg(feature = "proto-ipv6")]
        6 => {
            let packet = Ipv6Packet::new_checked(ip).ok()?;
            // Extension headers before TCP are not followed: such SYNs pass through.
            if packet.next_header() != IpProtocol::Tcp {
                return None;
            }
            (packet.src_addr().octets(), packet.payload())
        }
        _ => return None,
    };
    let segment = TcpPacket::new_checked(tcp).ok()?;
    (segment.syn() && !segment.ack()).then(|| SynKey {
        src_addr,
        src_port: segment.src_port(),
        dst_port: segment.dst_port(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP SYN from 192.168.69.100:40000 to port 7.
    fn syn_frame(flags: u8) -> [u8; 54] {
        let mut f = [0u8; 54];
        f[12] = 0x08; // IPv4
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[22] = 64;
        f[23] = 6; // TCP
        f[26..30].copy_from_slice(&[192, 168, 69, 100]);
        f[30..34].copy_from_slice(&[192, 168, 69, 1]);
        f[34..36].copy_from_slice(&40000u16.to_be_bytes());
        f[36..38].copy_from_slice(&7u16.to_be_bytes());
        f[46] = 0x50;
        f[47] = flags;
        f
    }

    #[test]
    fn recognises_a_syn() {
        let key = connection_request(Medium::Ethernet, &syn_frame(0x02)).unwrap();
        assert_eq!(key.dst_port, 7);
        assert_eq!(key.src_port, 40000);
        assert_eq!(&key.src_addr[..4], &[192, 168, 69, 100]);
    }

    #[test]
    fn key_of_an_endpoint_matches_the_key_of_its_syn() {
        let remote = IpEndpoint::new(IpAddress::v4(192, 168, 69, 100), 40000);
        let key = connection_request(Medium::Ethernet, &syn_frame(0x02)).unwrap();
        assert_eq!(SynKey::new(remote, 7), key);
    }

    #[test]
    fn ignores_syn_ack_and_junk() {
        assert!(connection_request(Medium::Ethernet, &syn_frame(0x12)).is_none());
        assert!(connection_request(Medium::Ethernet, &syn_frame(0x10)).is_none());
        assert!(connection_request(Medium::Ethernet, &[0u8; 10]).is_none());
        #[cfg(feature = "medium-ip")]
        assert!(connection_request(Medium::Ip, &[]).is_none());
    }
}
