//! Loss recovery for smoltcp's sender, from the wire: the gate watches the
//! segments of pool connections and, when the peer's ACKs show that a
//! segment was lost, makes smoltcp resend it at once instead of after its
//! retransmission timeout.
//!
//! Why: smoltcp resends a lost segment early only on three duplicate ACKs
//! that carry no data (RFC 5681's definition), and otherwise after its
//! retransmission timeout, which is at least 1 s (RFC 6298) and doubles
//! each time, resending the whole window. A peer that sends while it
//! receives (an echo client, any full-duplex protocol) puts every ACK on a
//! data segment, so nothing counts as duplicate: each lost segment costs a
//! second or more. Over a link losing 5% of frames that is 0.1 MB/s.
//!
//! What: the peer's ACKs carry SACK blocks (smoltcp accepts SACK when the
//! peer offers it, and Linux does). When the highest SACKed byte is more
//! than three segments above the peer's cumulative ACK, the segment at that
//! ACK is lost (RFC 6675's rule, which a reordering of one or two segments
//! does not trip). The gate then hands smoltcp what its own rule waits for:
//! a pure ACK that changes the window by one unit (so smoltcp's duplicate
//! count restarts from zero) and three pure duplicates of it, and smoltcp
//! fast-retransmits the segment. A retransmission that is lost again, or a
//! loss at the tail of a burst that no later segment reveals, is caught by a
//! timer: data outstanding with no ACK progress for twice the smoothed
//! round trip (at least 5 ms; on a connection that has lost nothing yet,
//! 200 ms more when a single segment is outstanding, which a delayed ACK may
//! hold) triggers the same, the timer doubling until it passes 1 s, where
//! smoltcp's own timeout rules.
//!
//! Two more habits of smoltcp are worked around here: it drops a segment
//! whose ACK number is older than one it already took, data included (a
//! reordered segment of a full-duplex peer), so such a segment is handed to
//! it with the latest ACK number and window ([`Stale`]); and the pool holds
//! back the FIN of a connection that needed recovery until its data is
//! acknowledged, since in LAST-ACK smoltcp counts no duplicate ACK.
//!
//! The synthetic ACKs only repeat what the peer said (its ACK number, its
//! window give or take one unit, smoltcp's own ACK number as the sequence
//! number, the one it surely accepts), so smoltcp's state stays the peer's;
//! and a frame is believed only when its checksums hold. Frames are parsed
//! with `smoltcp::wire`; nothing is allocated: a few connections are tracked
//! in a fixed table, the least recently active giving way.

use smoltcp::phy::{ChecksumCapabilities, Medium};
use smoltcp::time::{Duration, Instant};
#[cfg(feature = "proto-ipv6")]
use smoltcp::wire::Ipv6Packet;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpEndpoint, IpProtocol, IpRepr,
    Ipv4Packet, TcpPacket, TcpSeqNumber,
};

/// Connections tracked at once; the least recently active gives way.
/// About 110 bytes each on a 32-bit target: firmware serves few at once.
#[cfg(not(feature = "std"))]
pub(crate) const TRACKED: usize = 4;
/// Connections tracked at once; the least recently active gives way.
#[cfg(feature = "std")]
pub(crate) const TRACKED: usize = 16;

/// Segments SACKed above a hole before it counts as lost (RFC 6675's DupThresh).
const DUP_THRESH: usize = 3;

/// The shortest wait for ACK progress before a probe: a little more than a
/// LAN's round trip, well under the 10 ms of Linux's tail loss probe (a
/// probe that was not needed costs one segment sent twice).
const MIN_TIMEOUT: Duration = Duration::from_millis(5);

/// Added to the wait when a single segment is outstanding on a connection
/// that has lost nothing yet: the peer may hold its ACK that long (Linux
/// delays up to 200 ms). Once a connection has lost a segment, an early
/// probe (one segment sent twice) is cheaper than a stall.
const LONE_SEGMENT: Duration = Duration::from_millis(200);

/// Probes stop once the wait would exceed this: smoltcp's own
/// retransmission timeout (at least 1 s) takes over.
const GIVE_UP: Duration = Duration::from_secs(1);

/// Synthetic frames per trigger: a window change that restarts smoltcp's
/// duplicate count, then three duplicates.
const INJECT: u8 = 4;

/// The gate's buffer for synthetic frames and rewritten ones: an Ethernet
/// frame of a 1500-byte MTU, with room to spare. Longer frames with a stale
/// ACK pass unchanged (smoltcp drops their data as it would anyway).
#[cfg(feature = "std")]
pub(crate) const FRAME_BYTES: usize = 1536;
/// Without `std` (firmware, where RAM is scarce) the buffer only holds
/// synthetic ACKs (Ethernet, IPv6, TCP without options): data behind an
/// old ACK is left to smoltcp, which drops it, and the peer sends it again.
#[cfg(not(feature = "std"))]
pub(crate) const FRAME_BYTES: usize = 14 + 40 + 20;

/// What to write into a segment sent before one smoltcp already took.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stale {
    ack: TcpSeqNumber,
    window: u16,
}

impl Stale {
    /// `frame` with this ACK number and window, copied into `into`; its length.
    pub(crate) fn rewrite(&self, medium: Medium, frame: &[u8], into: &mut [u8]) -> Option<usize> {
        let copy = into.get_mut(..frame.len())?;
        copy.copy_from_slice(frame);
        let ip = match medium {
            Medium::Ethernet => copy.get_mut(14..)?,
            #[allow(unreachable_patterns)]
            _ => copy,
        };
        let (src, dst, tcp) = match ip.first()? >> 4 {
            4 => {
                let packet = Ipv4Packet::new_checked(&*ip).ok()?;
                (
                    IpAddress::Ipv4(packet.src_addr()),
                    IpAddress::Ipv4(packet.dst_addr()),
                    usize::from(packet.header_len())..usize::from(packet.total_len()),
                )
            }
            #[cfg(feature = "proto-ipv6")]
            6 => {
                let packet = Ipv6Packet::new_checked(&*ip).ok()?;
                (
                    IpAddress::Ipv6(packet.src_addr()),
                    IpAddress::Ipv6(packet.dst_addr()),
                    40..40 + usize::from(packet.payload_len()),
                )
            }
            _ => return None,
        };
        let tcp = ip.get_mut(tcp)?;
        let mut segment = TcpPacket::new_checked(tcp).ok()?;
        segment.set_ack_number(self.ack);
        segment.set_window_len(self.window);
        segment.fill_checksum(&src, &dst);
        Some(frame.len())
    }
}

/// A TCP segment's header, read from a frame.
#[derive(Debug, Clone, Copy)]
struct Segment {
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: IpAddress,
    dst: IpAddress,
    src_port: u16,
    dst_port: u16,
    seq: TcpSeqNumber,
    ack: Option<TcpSeqNumber>,
    window: u16,
    syn: bool,
    fin: bool,
    rst: bool,
    len: usize,
    /// The highest right edge among the SACK blocks, if any.
    sack_edge: Option<TcpSeqNumber>,
}

impl Segment {
    /// Sequence space the segment occupies after its first byte.
    fn end(&self) -> TcpSeqNumber {
        self.seq + (self.len + usize::from(self.syn) + usize::from(self.fin))
    }
}

/// The TCP segment in `frame`; with `verify`, `None` unless its IPv4 and
/// TCP checksums hold: a frame damaged on the way must not lend recovery an
/// ACK number the peer never sent, since recovery repeats ACK numbers to
/// smoltcp, which would then drop data as acknowledged.
fn parse(medium: Medium, frame: &[u8], verify: bool) -> Option<Segment> {
    let (ip, src_mac, dst_mac) = match medium {
        Medium::Ethernet => {
            let eth = EthernetFrame::new_checked(frame).ok()?;
            match eth.ethertype() {
                EthernetProtocol::Ipv4 | EthernetProtocol::Ipv6 => {}
                _ => return None,
            }
            (eth.payload(), eth.src_addr(), eth.dst_addr())
        }
        #[cfg(feature = "medium-ip")]
        Medium::Ip => (
            frame,
            EthernetAddress::BROADCAST,
            EthernetAddress::BROADCAST,
        ),
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    let (src, dst, tcp) = match ip.first()? >> 4 {
        4 => {
            let packet = Ipv4Packet::new_checked(ip).ok()?;
            if packet.next_header() != IpProtocol::Tcp
                || packet.more_frags()
                || packet.frag_offset() != 0
                || (verify && !packet.verify_checksum())
            {
                return None;
            }
            (
                IpAddress::Ipv4(packet.src_addr()),
                IpAddress::Ipv4(packet.dst_addr()),
                packet.payload(),
            )
        }
        #[cfg(feature = "proto-ipv6")]
        6 => {
            let packet = Ipv6Packet::new_checked(ip).ok()?;
            if packet.next_header() != IpProtocol::Tcp {
                return None;
            }
            (
                IpAddress::Ipv6(packet.src_addr()),
                IpAddress::Ipv6(packet.dst_addr()),
                packet.payload(),
            )
        }
        _ => return None,
    };
    let segment = TcpPacket::new_checked(tcp).ok()?;
    if verify && !segment.verify_checksum(&src, &dst) {
        return None;
    }
    Some(Segment {
        src_mac,
        dst_mac,
        src,
        dst,
        src_port: segment.src_port(),
        dst_port: segment.dst_port(),
        seq: segment.seq_number(),
        ack: segment.ack().then(|| segment.ack_number()),
        window: segment.window_len(),
        syn: segment.syn(),
        fin: segment.fin(),
        rst: segment.rst(),
        len: segment.payload().len(),
        sack_edge: sack_edge(segment.options()),
    })
}

/// The highest right edge of the SACK option in `options`, if there is one.
fn sack_edge(mut options: &[u8]) -> Option<TcpSeqNumber> {
    let mut edge: Option<TcpSeqNumber> = None;
    while let Some((&kind, rest)) = options.split_first() {
        match kind {
            0 => break,
            1 => options = rest,
            _ => {
                let len = usize::from(*rest.first()?);
                if len < 2 || len > options.len() {
                    break;
                }
                if kind == 5 {
                    for block in options[2..len].chunks_exact(8) {
                        let right = TcpSeqNumber(i32::from_be_bytes([
                            block[4], block[5], block[6], block[7],
                        ]));
                        edge = Some(edge.map_or(right, |e| e.max(right)));
                    }
                }
                options = &options[len..];
            }
        }
    }
    edge
}

/// How far `a` is past `b` in sequence space (0 when it is not).
fn past(a: TcpSeqNumber, b: TcpSeqNumber) -> usize {
    usize::try_from(a.0.wrapping_sub(b.0)).unwrap_or(0)
}

/// One connection as seen on the wire.
#[derive(Debug, Clone, Copy)]
struct Flow {
    local: IpAddress,
    local_port: u16,
    remote: IpAddress,
    remote_port: u16,
    local_mac: EthernetAddress,
    remote_mac: EthernetAddress,
    /// One past the highest sequence number smoltcp sent.
    snd_max: TcpSeqNumber,
    /// The largest payload smoltcp sent: its segment size.
    mss: usize,
    /// The peer's cumulative ACK and window field, as last received.
    peer_ack: TcpSeqNumber,
    peer_win: u16,
    /// The ACK number smoltcp sent last, while no data from the peer has
    /// reached it since: the one sequence number a synthetic ACK may carry
    /// that smoltcp surely accepts (with a zero window it accepts no other).
    rcv_nxt: Option<TcpSeqNumber>,
    /// The window field smoltcp saw last on this connection (the peer's or ours).
    seen_win: u16,
    /// When the timer started: the last ACK progress, the first byte
    /// outstanding, or the last trigger.
    armed_at: Instant,
    /// A sequence number whose ACK times a round trip, and when it was sent.
    sample: Option<(TcpSeqNumber, Instant)>,
    srtt: Option<Duration>,
    /// The ACK number a fast retransmit was triggered for.
    hole: Option<TcpSeqNumber>,
    /// Consecutive timer triggers without ACK progress.
    backoff: u8,
    /// Synthetic frames still to hand smoltcp, and their window field.
    inject: u8,
    inject_win: u16,
    /// A fast retransmit was triggered on this connection.
    recovered: bool,
    active: Instant,
}

impl Flow {
    fn outstanding(&self) -> usize {
        past(self.snd_max, self.peer_ack)
    }

    /// When the timer fires, if it runs.
    fn deadline(&self) -> Option<Instant> {
        if self.outstanding() == 0 || self.peer_win == 0 {
            return None;
        }
        let mut wait = self.srtt.map_or(MIN_TIMEOUT, |s| (s * 2).max(MIN_TIMEOUT));
        if !self.recovered && self.outstanding() <= self.mss {
            wait += LONE_SEGMENT;
        }
        let wait = wait * (1u32 << self.backoff.min(16));
        (wait <= GIVE_UP).then_some(self.armed_at + wait)
    }

    fn trigger(&mut self, now: Instant) {
        self.recovered = true;
        self.hole = Some(self.peer_ack);
        self.armed_at = now;
        // Karn: a round trip that spans a retransmission measures nothing.
        self.sample = None;
        self.inject = INJECT;
        // Different from what smoltcp saw last, so the first frame is a
        // window update and its duplicate count starts again; never zero
        // (callers check that the peer's window is open), which would stop
        // smoltcp sending until the peer's next segment.
        self.inject_win = match self.peer_win {
            w if w != self.seen_win => w,
            1 => 2,
            w => w - 1,
        };
    }

    fn sample_rtt(&mut self, rtt: Duration) {
        self.srtt = Some(match self.srtt {
            Some(s) => (s * 7 + rtt) / 8,
            None => rtt,
        });
    }
}

pub(crate) use crate::recovery_counts::Counts;

/// The tracked connections.
#[derive(Debug)]
pub(crate) struct Recovery {
    pub(crate) enabled: bool,
    medium: Medium,
    verify: bool,
    flows: heapless::Vec<Flow, TRACKED>,
    pub(crate) counts: Counts,
}

impl Recovery {
    /// Recovery for a device of `medium`; `verify` when the stack checks
    /// received checksums itself (the device's checksum capabilities), so
    /// recovery must too.
    pub(crate) fn new(medium: Medium, verify: bool) -> Self {
        Self {
            enabled: true,
            medium,
            verify,
            flows: heapless::Vec::new(),
            counts: Counts::default(),
        }
    }

    fn find(&mut self, local_port: u16, remote: IpAddress, remote_port: u16) -> Option<usize> {
        self.flows.iter().position(|f| {
            f.local_port == local_port && f.remote_port == remote_port && f.remote == remote
        })
    }

    /// Looks at a frame from the device, before smoltcp does. `pool_port`
    /// says whether a local port is served by a pool. Returns the ACK
    /// number and window to write into the frame when smoltcp would
    /// otherwise drop its data (see [`Stale`]).
    pub(crate) fn on_incoming(
        &mut self,
        frame: &[u8],
        now: Instant,
        pool_port: impl Fn(u16) -> bool,
    ) -> Option<Stale> {
        if !self.enabled {
            return None;
        }
        let seg = parse(self.medium, frame, self.verify)?;
        if !pool_port(seg.dst_port) {
            return None;
        }
        let found = self.find(seg.dst_port, seg.src, seg.src_port);
        if seg.syn || seg.rst {
            // A new connection on the same addresses, or the end of this one.
            if let Some(i) = found {
                self.flows.swap_remove(i);
            }
            return None;
        }
        let ack = seg.ack?;
        let flow = match found {
            Some(i) => &mut self.flows[i],
            None => self.insert(&seg, ack, now),
        };
        flow.active = now;
        flow.remote_mac = seg.src_mac;
        flow.local_mac = seg.dst_mac;
        if seg.len > 0 || seg.fin {
            // smoltcp's next ACK says how much of it it took.
            flow.rcv_nxt = None;
        }
        if ack < flow.peer_ack {
            // Sent before a segment smoltcp already took (reordered, or a
            // late duplicate): smoltcp ignores a segment whose ACK is older
            // than the last, data included, so the peer would have to send
            // the data again. Its window is as old as its ACK.
            flow.seen_win = flow.peer_win;
            return (seg.len > 0 || seg.fin).then_some(Stale {
                ack: flow.peer_ack,
                window: flow.peer_win,
            });
        }
        flow.seen_win = seg.window;
        flow.peer_win = seg.window;
        if ack > flow.peer_ack {
            // Beyond what we saw smoltcp send: frames we missed (the flow
            // was made mid-stream or given up); the peer knows better.
            flow.snd_max = flow.snd_max.max(ack);
            flow.peer_ack = ack;
            flow.armed_at = now;
            flow.backoff = 0;
            if let Some((seq, sent)) = flow.sample
                && ack >= seq
            {
                flow.sample_rtt(now - sent);
                flow.sample = None;
            }
            if flow.hole.is_some_and(|h| ack > h) {
                flow.hole = None;
            }
        }
        let lost = seg
            .sack_edge
            .is_some_and(|edge| past(edge, flow.peer_ack) > DUP_THRESH * flow.mss);
        if lost && flow.hole != Some(flow.peer_ack) && flow.outstanding() > 0 && flow.peer_win > 0 {
            flow.trigger(now);
            self.counts.fast_retransmits = self.counts.fast_retransmits.wrapping_add(1);
        }
        None
    }

    /// A new flow for `seg`, in a free entry or the least recently active one's.
    fn insert(&mut self, seg: &Segment, ack: TcpSeqNumber, now: Instant) -> &mut Flow {
        let flow = Flow {
            local: seg.dst,
            local_port: seg.dst_port,
            remote: seg.src,
            remote_port: seg.src_port,
            local_mac: seg.dst_mac,
            remote_mac: seg.src_mac,
            snd_max: ack,
            mss: 536,
            peer_ack: ack,
            peer_win: seg.window,
            rcv_nxt: None,
            seen_win: seg.window,
            armed_at: now,
            sample: None,
            srtt: None,
            hole: None,
            backoff: 0,
            inject: 0,
            inject_win: 0,
            recovered: false,
            active: now,
        };
        let i = match self.flows.push(flow) {
            Ok(()) => self.flows.len() - 1,
            Err(flow) => {
                // The table is full (TRACKED > 0): the stalest entry goes.
                let (i, _) = self
                    .flows
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, f)| f.active)
                    .unwrap_or((0, &flow));
                self.flows[i] = flow;
                i
            }
        };
        &mut self.flows[i]
    }

    /// Looks at a frame smoltcp sends.
    pub(crate) fn on_outgoing(&mut self, frame: &[u8], now: Instant) {
        if !self.enabled || self.flows.is_empty() {
            return;
        }
        // smoltcp's own frames: nothing damaged them yet.
        let Some(seg) = parse(self.medium, frame, false) else {
            return;
        };
        let Some(i) = self.find(seg.src_port, seg.dst, seg.dst_port) else {
            return;
        };
        if seg.rst {
            self.flows.swap_remove(i);
            return;
        }
        let flow = &mut self.flows[i];
        if seg.ack.is_some() {
            flow.rcv_nxt = seg.ack;
        }
        if seg.len == 0 && !seg.fin {
            return;
        }
        flow.active = now;
        flow.mss = flow.mss.max(seg.len);
        let end = seg.end();
        if end > flow.snd_max {
            if flow.outstanding() == 0 {
                flow.armed_at = now;
            }
            flow.snd_max = end;
            if flow.sample.is_none() && flow.hole.is_none() {
                flow.sample = Some((end, now));
            }
        }
    }

    /// Whether the connection from `remote` to `local_port` needed a fast retransmit.
    pub(crate) fn has_recovered(&self, local_port: u16, remote: IpEndpoint) -> bool {
        self.flows.iter().any(|f| {
            f.recovered
                && f.local_port == local_port
                && f.remote_port == remote.port
                && f.remote == remote.addr
        })
    }

    /// Starts the probes whose time has come.
    pub(crate) fn poll(&mut self, now: Instant) {
        if !self.enabled {
            return;
        }
        for flow in &mut self.flows {
            if flow.inject == 0 && flow.deadline().is_some_and(|at| at <= now) {
                flow.backoff = flow.backoff.saturating_add(1);
                flow.trigger(now);
                self.counts.probes = self.counts.probes.wrapping_add(1);
            }
        }
    }

    /// When [`Recovery::poll`] or a synthetic frame needs the stack next.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        if !self.enabled {
            return None;
        }
        self.flows
            .iter()
            .filter_map(|f| {
                if f.inject > 0 {
                    // Not before smoltcp's next ACK when it is not ready:
                    // that leaves in the same turn as the data it answers.
                    f.rcv_nxt.map(|_| Instant::ZERO)
                } else {
                    f.deadline()
                }
            })
            .min()
    }

    /// Whether a synthetic frame waits for smoltcp.
    pub(crate) fn has_frame(&self) -> bool {
        self.flows
            .iter()
            .any(|f| f.inject > 0 && f.rcv_nxt.is_some())
    }

    /// Writes the next synthetic frame into `buf`; returns its length.
    pub(crate) fn next_frame(&mut self, buf: &mut [u8]) -> Option<usize> {
        let medium = self.medium;
        let flow = self
            .flows
            .iter_mut()
            .find(|f| f.inject > 0 && f.rcv_nxt.is_some())?;
        let seq = flow.rcv_nxt?;
        flow.inject -= 1;
        flow.seen_win = flow.inject_win;
        write_ack(medium, flow, seq, buf)
    }
}

/// A pure ACK from the peer to smoltcp: the peer's ACK number, `inject_win`
/// as the window, sequence number `seq`, no options.
fn write_ack(medium: Medium, flow: &Flow, seq: TcpSeqNumber, buf: &mut [u8]) -> Option<usize> {
    let ip = IpRepr::new(flow.remote, flow.local, IpProtocol::Tcp, 20, 64);
    let ip_at = match medium {
        Medium::Ethernet => 14,
        #[allow(unreachable_patterns)]
        _ => 0,
    };
    let tcp_at = ip_at + ip.header_len();
    let len = tcp_at + 20;
    let buf = buf.get_mut(..len)?;
    buf.fill(0);
    if ip_at > 0 {
        let mut eth = EthernetFrame::new_unchecked(&mut buf[..ip_at]);
        eth.set_src_addr(flow.remote_mac);
        eth.set_dst_addr(flow.local_mac);
        eth.set_ethertype(match flow.remote {
            IpAddress::Ipv4(_) => EthernetProtocol::Ipv4,
            #[cfg(feature = "proto-ipv6")]
            IpAddress::Ipv6(_) => EthernetProtocol::Ipv6,
        });
    }
    ip.emit(&mut buf[ip_at..tcp_at], &ChecksumCapabilities::default());
    let mut tcp = TcpPacket::new_unchecked(&mut buf[tcp_at..]);
    tcp.set_src_port(flow.remote_port);
    tcp.set_dst_port(flow.local_port);
    tcp.set_seq_number(seq);
    tcp.set_ack_number(flow.peer_ack);
    tcp.set_header_len(20);
    tcp.clear_flags();
    tcp.set_ack(true);
    tcp.set_window_len(flow.inject_win);
    tcp.fill_checksum(&flow.remote, &flow.local);
    Some(len)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use smoltcp::wire::{
        EthernetRepr, Ipv4Address, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber as Seq,
    };

    use super::*;

    const OURS: Ipv4Address = Ipv4Address::new(192, 168, 69, 1);
    const PEER: Ipv4Address = Ipv4Address::new(192, 168, 69, 100);
    const OUR_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const PEER_MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
    const PORT: u16 = 7;
    const PEER_PORT: u16 = 40000;
    const MSS: usize = 1000;

    /// An Ethernet + IPv4 + TCP frame; `sack` blocks as (left, right).
    fn frame(
        outgoing: bool,
        seq: u32,
        ack: u32,
        window: u16,
        payload: &[u8],
        sack: &[(u32, u32)],
    ) -> Vec<u8> {
        let (src, dst, src_mac, dst_mac, src_port, dst_port) = if outgoing {
            (OURS, PEER, OUR_MAC, PEER_MAC, PORT, PEER_PORT)
        } else {
            (PEER, OURS, PEER_MAC, OUR_MAC, PEER_PORT, PORT)
        };
        let mut ranges = [None; 3];
        for (slot, range) in ranges.iter_mut().zip(sack) {
            *slot = Some(*range);
        }
        let tcp = TcpRepr {
            src_port,
            dst_port,
            control: TcpControl::None,
            seq_number: Seq(seq as i32),
            ack_number: Some(Seq(ack as i32)),
            window_len: window,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: ranges,
            timestamp: None,
            payload,
        };
        let ip = Ipv4Repr {
            src_addr: src,
            dst_addr: dst,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let eth = EthernetRepr {
            src_addr: src_mac,
            dst_addr: dst_mac,
            ethertype: EthernetProtocol::Ipv4,
        };
        let mut buf = std::vec![0u8; 14 + ip.buffer_len() + tcp.buffer_len()];
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
        let caps = ChecksumCapabilities::default();
        ip.emit(&mut Ipv4Packet::new_unchecked(&mut buf[14..34]), &caps);
        tcp.emit(
            &mut TcpPacket::new_unchecked(&mut buf[34..]),
            &IpAddress::Ipv4(src),
            &IpAddress::Ipv4(dst),
            &caps,
        );
        buf
    }

    fn pool(port: u16) -> bool {
        port == PORT
    }

    /// A tracked connection whose stack sent `segments` of `MSS` bytes from
    /// sequence number 1000, none acknowledged; the peer's data ends at 500.
    fn sending(segments: u32, now: Instant) -> Recovery {
        let mut recovery = Recovery::new(Medium::Ethernet, true);
        let handshake = frame(false, 500, 1000, 100, &[], &[]);
        assert!(recovery.on_incoming(&handshake, now, pool).is_none());
        let data = [0u8; MSS];
        for i in 0..segments {
            let seq = 1000 + i * MSS as u32;
            recovery.on_outgoing(&frame(true, seq, 500, 200, &data, &[]), now);
        }
        recovery
    }

    fn tcp_of(frame: &[u8]) -> TcpPacket<&[u8]> {
        TcpPacket::new_checked(&frame[34..]).unwrap()
    }

    #[test]
    fn reads_the_highest_sack_edge() {
        // NOP, NOP, SACK with two blocks.
        let mut options = std::vec![1, 1, 5, 18];
        for edge in [10u32, 20, 30, 40] {
            options.extend_from_slice(&edge.to_be_bytes());
        }
        assert_eq!(sack_edge(&options), Some(Seq(40)));
        assert_eq!(sack_edge(&[1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0]), None);
        // A length running past the end, or zero, stops the walk.
        assert_eq!(sack_edge(&[5, 40, 0, 0]), None);
        assert_eq!(sack_edge(&[5, 0]), None);
        assert_eq!(sack_edge(&[5]), None);
    }

    #[test]
    fn three_segments_sacked_above_the_ack_trigger_a_fast_retransmit() {
        let now = Instant::from_millis(10);
        let mut recovery = sending(8, now);
        // The first segment is lost; the next four arrived. The peer's ACK
        // comes with 100 bytes of its own.
        let ack = frame(false, 500, 1000, 100, &[7; 100], &[(2000, 6000)]);
        assert!(recovery.on_incoming(&ack, now, pool).is_none());
        assert_eq!(recovery.counts.fast_retransmits, 1);
        // Not before the stack has acknowledged them: only its ACK number
        // is sure to be in its window.
        assert!(!recovery.has_frame());
        assert_eq!(recovery.next_due(), None);
        recovery.on_outgoing(&frame(true, 9000, 600, 200, &[], &[]), now);
        assert!(recovery.has_frame());
        assert_eq!(recovery.next_due(), Some(Instant::ZERO));
        let mut buf = [0u8; FRAME_BYTES];
        let mut windows = Vec::new();
        while let Some(len) = recovery.next_frame(&mut buf) {
            let f = &buf[..len];
            let eth = EthernetFrame::new_checked(f).unwrap();
            assert_eq!((eth.src_addr(), eth.dst_addr()), (PEER_MAC, OUR_MAC));
            let tcp = tcp_of(f);
            assert!(tcp.verify_checksum(&IpAddress::Ipv4(PEER), &IpAddress::Ipv4(OURS)));
            assert_eq!(tcp.ack_number(), Seq(1000));
            assert_eq!(tcp.seq_number(), Seq(600), "the stack's own ACK number");
            assert!(tcp.ack() && !tcp.syn() && !tcp.fin() && tcp.payload().is_empty());
            windows.push(tcp.window_len());
        }
        assert_eq!(
            windows,
            [99, 99, 99, 99],
            "a window update, then three duplicates"
        );
        // The same hole does not trigger again on the next ACK.
        let again = frame(false, 600, 1000, 100, &[], &[(2000, 7000)]);
        assert!(recovery.on_incoming(&again, now, pool).is_none());
        assert_eq!(recovery.counts.fast_retransmits, 1);
        assert!(!recovery.has_frame());
    }

    #[test]
    fn a_segment_reordered_by_one_or_two_is_not_lost() {
        let now = Instant::from_millis(10);
        let mut recovery = sending(8, now);
        let ack = frame(false, 500, 1000, 100, &[], &[(2000, 4000)]);
        recovery.on_incoming(&ack, now, pool);
        assert_eq!(recovery.counts.fast_retransmits, 0);
    }

    #[test]
    fn a_stalled_ack_is_probed_with_a_doubling_timer_that_gives_up() {
        let start = Instant::from_millis(10);
        let mut recovery = sending(4, start);
        recovery.on_outgoing(&frame(true, 9000, 500, 200, &[], &[]), start);
        let mut at = start;
        let mut waits = Vec::new();
        while let Some(due) = recovery.next_due() {
            assert!(due > at, "a deadline in the future");
            waits.push((due - at).total_millis());
            at = due;
            recovery.poll(at);
            let mut buf = [0u8; FRAME_BYTES];
            while recovery.next_frame(&mut buf).is_some() {}
        }
        // No round trip measured yet: 5 ms, doubling, until past 1 s.
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640]);
        assert_eq!(recovery.counts.probes, 8);
        // ACK progress starts the timer afresh.
        let ack = frame(false, 500, 2000, 100, &[], &[]);
        recovery.on_incoming(&ack, at, pool);
        assert_eq!(recovery.next_due(), Some(at + Duration::from_millis(5)));
    }

    #[test]
    fn a_lone_segment_waits_for_a_delayed_ack_until_the_connection_lost_one() {
        let now = Instant::from_millis(10);
        let mut recovery = sending(1, now);
        assert_eq!(recovery.next_due(), Some(now + MIN_TIMEOUT + LONE_SEGMENT));
        recovery.poll(now + MIN_TIMEOUT + LONE_SEGMENT);
        assert_eq!(recovery.counts.probes, 1);
        let mut buf = [0u8; FRAME_BYTES];
        while recovery.next_frame(&mut buf).is_some() {}
        // Lost once: no allowance for a delayed ACK any more.
        let later = now + Duration::from_secs(1);
        recovery.on_incoming(&frame(false, 500, 2000, 100, &[], &[]), later, pool);
        recovery.on_outgoing(&frame(true, 2000, 500, 200, &[0; 10], &[]), later);
        assert_eq!(recovery.next_due(), Some(later + MIN_TIMEOUT));
    }

    #[test]
    fn data_behind_an_old_ack_gets_the_latest_ack_and_window() {
        let now = Instant::from_millis(10);
        let mut recovery = sending(4, now);
        let fresh = frame(false, 500, 3000, 100, &[], &[]);
        assert!(recovery.on_incoming(&fresh, now, pool).is_none());
        let late = frame(false, 500, 2000, 80, b"late data", &[]);
        let stale = recovery.on_incoming(&late, now, pool).expect("rewritten");
        let mut buf = [0u8; FRAME_BYTES];
        let len = stale.rewrite(Medium::Ethernet, &late, &mut buf).unwrap();
        let tcp = tcp_of(&buf[..len]);
        assert!(tcp.verify_checksum(&IpAddress::Ipv4(PEER), &IpAddress::Ipv4(OURS)));
        assert_eq!(tcp.ack_number(), Seq(3000));
        assert_eq!(tcp.window_len(), 100);
        assert_eq!(tcp.payload(), b"late data");
        // A pure ACK that old changes nothing: smoltcp ignores it anyway.
        let old_ack = frame(false, 509, 2000, 80, &[], &[]);
        assert!(recovery.on_incoming(&old_ack, now, pool).is_none());
    }

    #[test]
    fn other_ports_and_a_disabled_recovery_are_left_alone() {
        let now = Instant::from_millis(10);
        let mut recovery = sending(8, now);
        let ack = frame(false, 500, 1000, 100, &[], &[(2000, 6000)]);
        assert!(recovery.on_incoming(&ack, now, |_| false).is_none());
        assert_eq!(recovery.counts.fast_retransmits, 0);
        recovery.enabled = false;
        recovery.on_incoming(&ack, now, pool);
        assert_eq!(recovery.counts.fast_retransmits, 0);
        assert_eq!(recovery.next_due(), None);
    }
}
