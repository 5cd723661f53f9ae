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
//! round trip (at least 10 ms; 200 ms more when a single segment is
//! outstanding, which a delayed ACK may hold) triggers the same, with the
//! timer doubling until it passes 1 s, where smoltcp's own timeout rules.
//!
//! The synthetic ACKs only repeat what the peer said (its ACK number, its
//! window give or take one unit, a sequence number it has already used),
//! so smoltcp's state stays the peer's. Frames are parsed with
//! `smoltcp::wire`; nothing is allocated: a few flows are tracked in a
//! fixed table, the least recently active giving way.

use smoltcp::phy::{ChecksumCapabilities, Medium};
use smoltcp::time::{Duration, Instant};
#[cfg(feature = "proto-ipv6")]
use smoltcp::wire::Ipv6Packet;
use smoltcp::wire::{
    EthernetAddress, EthernetFrame, EthernetProtocol, IpAddress, IpEndpoint, IpProtocol, IpRepr,
    Ipv4Packet, TcpPacket, TcpSeqNumber,
};

/// Connections tracked at once; the least recently active gives way.
pub(crate) const TRACKED: usize = 8;

/// Segments SACKed above a hole before it counts as lost (RFC 6675's DupThresh).
const DUP_THRESH: usize = 3;

/// The shortest wait for ACK progress before a probe.
const MIN_TIMEOUT: Duration = Duration::from_millis(10);

/// Added to the wait when a single segment is outstanding: the peer may
/// hold its ACK that long (Linux delays up to 200 ms).
const LONE_SEGMENT: Duration = Duration::from_millis(200);

/// Probes stop once the wait would exceed this: smoltcp's own
/// retransmission timeout (at least 1 s) takes over.
const GIVE_UP: Duration = Duration::from_secs(1);

/// Synthetic frames per trigger: a window change that restarts smoltcp's
/// duplicate count, then three duplicates.
const INJECT: u8 = 4;

/// Largest synthetic frame: Ethernet, IPv6, a TCP header without options.
pub(crate) const FRAME_BYTES: usize = 14 + 40 + 20;

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

fn parse(medium: Medium, frame: &[u8]) -> Option<Segment> {
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
        if self.hole.is_none() && self.outstanding() <= self.mss {
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
        // window update and its duplicate count starts again.
        self.inject_win = if self.seen_win == self.peer_win {
            self.peer_win - 1
        } else {
            self.peer_win
        };
    }

    fn sample_rtt(&mut self, rtt: Duration) {
        self.srtt = Some(match self.srtt {
            Some(s) => (s * 7 + rtt) / 8,
            None => rtt,
        });
    }
}

/// Counters of what recovery did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Fast retransmits triggered by the peer's SACK blocks.
    pub(crate) fast_retransmits: u32,
    /// Fast retransmits triggered by the timer.
    pub(crate) probes: u32,
}

/// The tracked connections.
#[derive(Debug)]
pub(crate) struct Recovery {
    pub(crate) enabled: bool,
    medium: Medium,
    flows: heapless::Vec<Flow, TRACKED>,
    pub(crate) counts: Counts,
}

impl Recovery {
    pub(crate) fn new(medium: Medium) -> Self {
        Self {
            enabled: true,
            medium,
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
    /// says whether a local port is served by a pool.
    pub(crate) fn on_incoming(
        &mut self,
        frame: &[u8],
        now: Instant,
        pool_port: impl Fn(u16) -> bool,
    ) {
        if !self.enabled {
            return;
        }
        let Some(seg) = parse(self.medium, frame) else {
            return;
        };
        if !pool_port(seg.dst_port) {
            return;
        }
        let found = self.find(seg.dst_port, seg.src, seg.src_port);
        if seg.syn || seg.rst {
            // A new connection on the same addresses, or the end of this one.
            if let Some(i) = found {
                self.flows.swap_remove(i);
            }
            return;
        }
        let Some(ack) = seg.ack else {
            return;
        };
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
        let Some(seg) = parse(self.medium, frame) else {
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
    pub(crate) fn next_frame(&mut self, buf: &mut [u8; FRAME_BYTES]) -> Option<usize> {
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
fn write_ack(
    medium: Medium,
    flow: &Flow,
    seq: TcpSeqNumber,
    buf: &mut [u8; FRAME_BYTES],
) -> Option<usize> {
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
