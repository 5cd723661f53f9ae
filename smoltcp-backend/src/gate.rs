//! The SYN backlog: a `Device` wrapper that holds back connection requests
//! for which no socket listens, instead of letting smoltcp refuse them.
//!
//! smoltcp answers a SYN that finds no listening socket with RST, so a burst
//! of clients larger than the socket pool would be refused. The gate looks at
//! each inbound frame: a SYN to a pool port with no free listener is copied
//! into a backlog slot (storage the user provides) and released as soon as a
//! socket listens again, never refused.
//!
//! The gate looks at a frame where the device holds it, inside the receive
//! token: a frame that passes is handed to smoltcp uncopied, whatever its
//! size (jumbo frames too), and a frame the gate keeps or drops reaches
//! smoltcp as an empty frame, which it ignores.
//!
//! Newest first: the latest request (a retransmission counts as new) is
//! released first, and when the backlog is full a new request takes the slot
//! of the oldest one. A held request loses value as it ages: a live client
//! retransmits within a second or two and so comes back to the front, while a
//! forged SYN never does. Oldest-first would make a real client wait behind
//! every forged or abandoned request that arrived before it; a flood of 2,000
//! forged SYNs ahead of it would lock it out for minutes.

use core::cell::RefCell;
use core::time::Duration;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::recovery::{FRAME_BYTES, Recovery};
use crate::syn::{SynKey, connection_request};

/// How long a held SYN is kept without a retransmission from its client:
/// longer than the largest gap between Linux's SYN retransmissions (64 s),
/// so a client still trying keeps its place, and one that gave up (or a
/// spoofed address) frees its slot.
pub const HELD_SYN_LIFETIME: Duration = Duration::from_secs(90);

/// Connections in SYN-RECEIVED the gate knows of, whose retransmitted SYNs
/// it drops (see [`Filter::admits`]).
pub(crate) const MAX_HALF_OPEN: usize = 16;

/// Longest SYN a backlog slot holds (Linux sends 74 bytes on Ethernet).
const SLOT_BYTES: usize = 128;

/// How many ports the gate watches: one per TCP pool port.
pub(crate) const MAX_PORTS: usize = 8;

/// One held connection request: storage for the stack's SYN backlog.
///
/// ```
/// use socketserver_smoltcp::SynSlot;
/// let mut backlog = [SynSlot::EMPTY; 64];
/// # let _ = &mut backlog;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct SynSlot {
    frame: [u8; SLOT_BYTES],
    len: u8,
    key: Option<SynKey>,
    arrival: u32,
    /// When the request (or its latest retransmission) arrived.
    seen: Instant,
}

impl SynSlot {
    /// A free slot.
    pub const EMPTY: Self = Self {
        frame: [0; SLOT_BYTES],
        len: 0,
        key: None,
        arrival: 0,
        seen: Instant::ZERO,
    };
}

/// The pool ports and how many of their sockets listen now.
#[derive(Debug, Default)]
pub(crate) struct Ports {
    pub(crate) listening: heapless::Vec<(u16, usize), MAX_PORTS>,
    pub(crate) half_open: heapless::Vec<SynKey, MAX_HALF_OPEN>,
    /// A SYN was handed to a listener since the pool last counted them:
    /// count again even if no socket's state changed (smoltcp may have
    /// dropped the SYN, and the listener still listens).
    pub(crate) stale: bool,
}

impl Ports {
    fn take_listener(&mut self, port: u16) -> Option<bool> {
        let entry = self.listening.iter_mut().find(|(p, _)| *p == port)?;
        if entry.1 == 0 {
            return Some(false);
        }
        entry.1 -= 1;
        self.stale = true;
        Some(true)
    }

    /// Whether `port` is served by a pool.
    fn is_pool_port(&self, port: u16) -> bool {
        self.listening.iter().any(|(p, _)| *p == port)
    }

    fn has_listener(&self, port: u16) -> bool {
        self.listening
            .iter()
            .find(|(p, _)| *p == port)
            .is_none_or(|(_, n)| *n > 0)
    }
}

/// Counters of what the gate did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct GateStats {
    /// SYNs held in the backlog because no socket listened.
    pub held: u32,
    /// Held SYNs handed to a listening socket later.
    pub released: u32,
    /// Held SYNs dropped for a newer one because the backlog was full, and
    /// SYNs too long for a slot (the peer retransmits).
    pub dropped: u32,
    /// Held SYNs dropped after [`HELD_SYN_LIFETIME`] without a retransmission.
    pub expired: u32,
    /// Fast retransmits of pool connections started because the peer's
    /// SACK blocks showed a lost segment (see
    /// [`TcpConfig::loss_recovery`](crate::TcpConfig::loss_recovery)).
    pub fast_retransmits: u32,
    /// Fast retransmits started because ACKs stopped progressing while data
    /// was outstanding (a lost retransmission, or a loss at the end of a burst).
    pub loss_probes: u32,
}

/// The held requests: the user's slots and how many of them are taken.
#[derive(Debug)]
struct Backlog<'a> {
    slots: &'a mut [SynSlot],
    arrivals: u32,
    /// Slots holding a request. The slots are scanned only when this is not
    /// zero: those scans ran for every frame and every pool socket on every
    /// poll, and a backlog is empty whenever the pool keeps up.
    held: usize,
}

impl Backlog<'_> {
    fn expire(&mut self, now: Instant, stats: &mut GateStats) {
        if self.held == 0 {
            return;
        }
        let lifetime = smoltcp::time::Duration::from_micros(
            u64::try_from(HELD_SYN_LIFETIME.as_micros()).unwrap_or(u64::MAX),
        );
        for slot in self.slots.iter_mut() {
            if slot.key.is_some() && now >= slot.seen + lifetime {
                slot.key = None;
                self.held -= 1;
                stats.expired = stats.expired.wrapping_add(1);
            }
        }
    }

    fn hold(&mut self, key: SynKey, frame: &[u8], now: Instant, stats: &mut GateStats) {
        let len = frame.len();
        if len > SLOT_BYTES {
            stats.dropped = stats.dropped.wrapping_add(1);
            return;
        }
        // A retransmission replaces its original and goes to the front: its
        // client is alive. A new request takes a free slot, or the oldest.
        let slot = match self.slots.iter().position(|s| s.key == Some(key)) {
            Some(i) => i,
            None => {
                stats.held = stats.held.wrapping_add(1);
                match self.slots.iter().position(|s| s.key.is_none()) {
                    Some(i) => {
                        self.held += 1;
                        i
                    }
                    None => {
                        stats.dropped = stats.dropped.wrapping_add(1);
                        // An empty backlog holds nothing.
                        let Some(oldest) = self.oldest() else {
                            return;
                        };
                        oldest
                    }
                }
            }
        };
        self.arrivals = self.arrivals.wrapping_add(1);
        let arrival = self.arrivals;
        let slot = &mut self.slots[slot];
        slot.arrival = arrival;
        slot.frame[..len].copy_from_slice(frame);
        // `len <= SLOT_BYTES = 128` was checked above.
        slot.len = len as u8;
        slot.key = Some(key);
        slot.seen = now;
    }

    /// How long ago (in arrivals) a slot was filled: 0 for the newest.
    /// Wrapping-safe, since `arrivals` only grows.
    fn age(&self, slot: &SynSlot) -> u32 {
        self.arrivals.wrapping_sub(slot.arrival)
    }

    /// The oldest held SYN, the one a new request displaces.
    fn oldest(&self) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.key.is_some())
            .max_by_key(|(_, s)| self.age(s))
            .map(|(i, _)| i)
    }

    fn has_releasable(&self, ports: &Ports) -> bool {
        self.held > 0
            && self
                .slots
                .iter()
                .any(|s| s.key.is_some_and(|k| ports.has_listener(k.dst_port)))
    }

    /// Takes the newest held SYN whose port has a listener now, and that
    /// listener.
    fn take_newest_releasable(&mut self, ports: &mut Ports) -> Option<&[u8]> {
        if self.held == 0 {
            return None;
        }
        let newest = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.key.is_some_and(|k| ports.has_listener(k.dst_port)))
            .min_by_key(|(_, s)| self.age(s))
            .map(|(i, _)| i)?;
        let slot = &mut self.slots[newest];
        let port = slot.key.take().map(|k| k.dst_port)?;
        ports.take_listener(port);
        self.held -= 1;
        Some(&slot.frame[..usize::from(slot.len)])
    }
}

/// A `Device` that holds back SYNs to pool ports with no listening socket,
/// and helps smoltcp recover lost segments of pool connections (see
/// `recovery`).
#[derive(Debug)]
pub(crate) struct Gate<'a, D> {
    pub(crate) inner: D,
    medium: Medium,
    backlog: Backlog<'a>,
    pub(crate) ports: Ports,
    stats: GateStats,
    /// Borrowed by the receive and transmit tokens at once; each borrows it
    /// mutably only while looking at a frame, never across smoltcp's code.
    pub(crate) recovery: RefCell<Recovery>,
    /// Where synthetic frames are written, and frames recovery rewrites.
    scratch: [u8; FRAME_BYTES],
}

impl<'a, D: Device> Gate<'a, D> {
    pub(crate) fn new(inner: D, backlog: &'a mut [SynSlot]) -> Self {
        let caps = inner.capabilities();
        let medium = caps.medium;
        let verify = caps.checksum.ipv4.rx() || caps.checksum.tcp.rx();
        Self {
            inner,
            medium,
            backlog: Backlog {
                slots: backlog,
                arrivals: 0,
                held: 0,
            },
            ports: Ports::default(),
            stats: GateStats::default(),
            recovery: RefCell::new(Recovery::new(medium, verify)),
            scratch: [0; FRAME_BYTES],
        }
    }

    /// What the gate did so far.
    pub(crate) fn stats(&self) -> GateStats {
        // Never borrowed here: the device's tokens are gone between polls.
        let counts = self
            .recovery
            .try_borrow()
            .map(|r| r.counts)
            .unwrap_or_default();
        GateStats {
            fast_retransmits: counts.fast_retransmits,
            loss_probes: counts.probes,
            ..self.stats
        }
    }

    /// Whether the connection from `remote` to `local_port` needed loss recovery.
    pub(crate) fn has_recovered(&self, local_port: u16, remote: smoltcp::wire::IpEndpoint) -> bool {
        self.recovery
            .try_borrow()
            .is_ok_and(|r| r.has_recovered(local_port, remote))
    }

    /// When loss recovery needs a poll next, if it does.
    pub(crate) fn recovery_due(&self) -> Option<Instant> {
        self.recovery.try_borrow().ok()?.next_due()
    }

    /// Whether a held SYN could be released now.
    pub(crate) fn has_releasable(&self) -> bool {
        self.backlog.has_releasable(&self.ports)
    }

    /// Requests held now.
    pub(crate) fn held(&self) -> usize {
        self.backlog.held
    }

    /// Whether connection requests for `port` wait in the backlog.
    pub(crate) fn holds_for(&self, port: u16) -> bool {
        self.backlog.held > 0
            && self
                .backlog
                .slots
                .iter()
                .any(|s| s.key.is_some_and(|k| k.dst_port == port))
    }
}

impl<'a, D: Device> Device for Gate<'a, D> {
    type RxToken<'t>
        = RxToken<'t, 'a, D::RxToken<'t>>
    where
        Self: 't;
    type TxToken<'t>
        = TxToken<'t, D::TxToken<'t>>
    where
        Self: 't;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let Self {
            inner,
            medium,
            backlog,
            ports,
            stats,
            recovery,
            scratch,
        } = self;
        backlog.expire(timestamp, stats);
        if backlog.has_releasable(ports) {
            let tx = inner.transmit(timestamp)?;
            let frame = backlog.take_newest_releasable(ports)?;
            stats.released = stats.released.wrapping_add(1);
            return Some((RxToken::Held(frame), TxToken::new(tx, recovery, timestamp)));
        }
        let recovery = &*recovery;
        if let Ok(mut r) = recovery.try_borrow_mut()
            && r.enabled
        {
            r.poll(timestamp);
            if r.has_frame() {
                let tx = inner.transmit(timestamp)?;
                let len = r.next_frame(scratch)?;
                return Some((
                    RxToken::Held(&scratch[..len]),
                    TxToken::new(tx, recovery, timestamp),
                ));
            }
        }
        let (rx, tx) = inner.receive(timestamp)?;
        let filter = Filter {
            medium: *medium,
            now: timestamp,
            backlog,
            ports,
            stats,
            recovery,
            scratch,
        };
        Some((
            RxToken::Device { rx, filter },
            TxToken::new(tx, recovery, timestamp),
        ))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        let tx = self.inner.transmit(timestamp)?;
        Some(TxToken::new(tx, &self.recovery, timestamp))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

/// What the gate decides about one frame from the device.
#[derive(Debug)]
pub(crate) struct Filter<'t, 'a> {
    medium: Medium,
    now: Instant,
    backlog: &'t mut Backlog<'a>,
    ports: &'t mut Ports,
    stats: &'t mut GateStats,
    recovery: &'t RefCell<Recovery>,
    scratch: &'t mut [u8; FRAME_BYTES],
}

impl Filter<'_, '_> {
    /// Lets loss recovery see a frame smoltcp is about to process; returns
    /// the length of the frame rewritten into `scratch` when smoltcp should
    /// see that one instead.
    fn watch(&mut self, frame: &[u8]) -> Option<usize> {
        let mut recovery = self.recovery.try_borrow_mut().ok()?;
        let ports = &*self.ports;
        let stale = recovery.on_incoming(frame, self.now, |port| ports.is_pool_port(port))?;
        stale.rewrite(self.medium, frame, self.scratch)
    }

    /// Whether smoltcp may see `frame`; a SYN for a port with no free
    /// listener is held instead.
    fn admits(&mut self, frame: &[u8]) -> bool {
        let Some(key) = connection_request(self.medium, frame) else {
            return true;
        };
        // A retransmitted SYN of a half-open connection is dropped: smoltcp
        // gives a segment to the first socket that accepts it, and a
        // listening socket accepts any SYN, so it could open a second
        // half-open connection with the same addresses, whose RST would kill
        // the first. The socket in SYN-RECEIVED resends its SYN-ACK on its
        // own timer.
        if self.ports.half_open.contains(&key) {
            return false;
        }
        if self.ports.take_listener(key.dst_port) == Some(false) {
            self.backlog.hold(key, frame, self.now, self.stats);
            return false;
        }
        true
    }
}

/// A received frame: the device's own token behind the gate's filter, or a
/// held SYN released from the backlog.
#[derive(Debug)]
pub(crate) enum RxToken<'t, 'a, R> {
    Device { rx: R, filter: Filter<'t, 'a> },
    Held(&'t [u8]),
}

impl<R: phy::RxToken> phy::RxToken for RxToken<'_, '_, R> {
    fn consume<T, F>(self, f: F) -> T
    where
        F: FnOnce(&[u8]) -> T,
    {
        match self {
            RxToken::Device { rx, mut filter } => rx.consume(|frame| {
                // smoltcp skips an empty frame (nothing to parse, no reply).
                if !filter.admits(frame) {
                    return f(&[]);
                }
                match filter.watch(frame) {
                    Some(len) => f(&filter.scratch[..len]),
                    None => f(frame),
                }
            }),
            RxToken::Held(frame) => f(frame),
        }
    }

    fn meta(&self) -> phy::PacketMeta {
        match self {
            RxToken::Device { rx, .. } => rx.meta(),
            RxToken::Held(_) => phy::PacketMeta::default(),
        }
    }
}

/// The device's transmit token, showing loss recovery each frame smoltcp sends.
#[derive(Debug)]
pub(crate) struct TxToken<'t, T> {
    inner: T,
    recovery: &'t RefCell<Recovery>,
    now: Instant,
}

impl<'t, T> TxToken<'t, T> {
    fn new(inner: T, recovery: &'t RefCell<Recovery>, now: Instant) -> Self {
        Self {
            inner,
            recovery,
            now,
        }
    }
}

impl<T: phy::TxToken> phy::TxToken for TxToken<'_, T> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let Self {
            inner,
            recovery,
            now,
        } = self;
        inner.consume(len, |frame| {
            let sent = f(frame);
            if let Ok(mut recovery) = recovery.try_borrow_mut() {
                recovery.on_outgoing(frame, now);
            }
            sent
        })
    }

    fn set_meta(&mut self, meta: phy::PacketMeta) {
        self.inner.set_meta(meta);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::collections::VecDeque;
    use std::vec::Vec;

    use smoltcp::phy::Loopback;

    use super::*;

    /// A device that hands out queued frames and may refuse to transmit.
    struct Mock {
        rx: VecDeque<Vec<u8>>,
        can_transmit: bool,
    }

    struct MockRx(Vec<u8>);
    struct MockTx;

    impl phy::RxToken for MockRx {
        fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
            f(&self.0)
        }
    }

    impl phy::TxToken for MockTx {
        fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
            f(&mut std::vec![0; len])
        }
    }

    impl Device for Mock {
        type RxToken<'t> = MockRx;
        type TxToken<'t> = MockTx;

        fn receive(&mut self, _: Instant) -> Option<(MockRx, MockTx)> {
            let frame = self.rx.pop_front()?;
            Some((MockRx(frame), MockTx))
        }

        fn transmit(&mut self, _: Instant) -> Option<MockTx> {
            self.can_transmit.then_some(MockTx)
        }

        fn capabilities(&self) -> DeviceCapabilities {
            let mut caps = DeviceCapabilities::default();
            caps.medium = Medium::Ethernet;
            caps.max_transmission_unit = 9000;
            caps
        }
    }

    /// Ethernet + IPv4 + TCP SYN from 192.168.69.100:`src` to port 7.
    fn syn(src: u16) -> Vec<u8> {
        let mut f = std::vec![0u8; 54];
        f[12] = 0x08;
        f[14] = 0x45;
        f[16..18].copy_from_slice(&40u16.to_be_bytes());
        f[22] = 64;
        f[23] = 6;
        f[26..30].copy_from_slice(&[192, 168, 69, 100]);
        f[30..34].copy_from_slice(&[192, 168, 69, 1]);
        f[34..36].copy_from_slice(&src.to_be_bytes());
        f[36..38].copy_from_slice(&7u16.to_be_bytes());
        f[46] = 0x50;
        f[47] = 0x02;
        f
    }

    fn gate<'a>(backlog: &'a mut [SynSlot], frames: &[Vec<u8>]) -> Gate<'a, Mock> {
        let mock = Mock {
            rx: frames.iter().cloned().collect(),
            can_transmit: true,
        };
        let mut gate = Gate::new(mock, backlog);
        // Port 7 is a pool port with no socket listening.
        gate.ports.listening.push((7, 0)).unwrap();
        gate
    }

    /// The next frame smoltcp would see, skipping the empty frames that
    /// stand for frames the gate kept or dropped, as smoltcp skips them.
    fn received(gate: &mut Gate<'_, Mock>, at: Instant) -> Option<Vec<u8>> {
        loop {
            let (rx, _) = gate.receive(at)?;
            let frame = phy::RxToken::consume(rx, |f| f.to_vec());
            if !frame.is_empty() {
                return Some(frame);
            }
        }
    }

    #[test]
    fn the_mtu_is_the_device_s() {
        let mut backlog = [SynSlot::EMPTY; 1];
        let device = Loopback::new(Medium::Ethernet);
        let mtu = device.capabilities().max_transmission_unit;
        let gate = Gate::new(device, &mut backlog);
        assert_eq!(gate.capabilities().max_transmission_unit, mtu);
    }

    #[test]
    fn a_jumbo_frame_passes_whole() {
        let mut backlog = [SynSlot::EMPTY; 1];
        let mut frame = syn(40000);
        frame[47] = 0x10; // a plain ACK
        frame.resize(9014, 0xa5);
        let mut gate = gate(&mut backlog, core::slice::from_ref(&frame));
        assert_eq!(received(&mut gate, Instant::ZERO), Some(frame));
    }

    #[test]
    fn a_syn_with_no_listener_is_held_and_expires() {
        let mut backlog = [SynSlot::EMPTY; 2];
        let mut gate = gate(&mut backlog, &[syn(40000)]);
        assert!(received(&mut gate, Instant::ZERO).is_none());
        assert_eq!(gate.held(), 1);
        assert!(gate.holds_for(7));
        let late = Instant::from_secs(HELD_SYN_LIFETIME.as_secs() as i64);
        assert!(received(&mut gate, late).is_none());
        assert_eq!(gate.held(), 0);
        assert_eq!(gate.stats().expired, 1);
    }

    #[test]
    fn a_retransmission_keeps_a_held_syn_alive() {
        let mut backlog = [SynSlot::EMPTY; 2];
        let mut gate = gate(&mut backlog, &[syn(40000)]);
        assert!(received(&mut gate, Instant::ZERO).is_none());
        gate.inner.rx.push_back(syn(40000));
        assert!(received(&mut gate, Instant::from_secs(60)).is_none());
        assert!(received(&mut gate, Instant::from_secs(120)).is_none());
        assert_eq!(gate.held(), 1, "60 s since the retransmission");
    }

    #[test]
    fn the_newest_request_goes_first_and_displaces_the_oldest_when_full() {
        let mut backlog = [SynSlot::EMPTY; 2];
        let mut gate = gate(&mut backlog, &[syn(1), syn(2), syn(3)]);
        assert!(received(&mut gate, Instant::ZERO).is_none());
        assert_eq!(gate.held(), 2);
        assert_eq!(gate.stats().dropped, 1, "syn(1) gave its slot to syn(3)");
        // A retransmission of syn(2) puts it ahead of syn(3).
        gate.inner.rx.push_back(syn(2));
        assert!(received(&mut gate, Instant::ZERO).is_none());
        gate.ports.listening[0].1 = 1;
        assert_eq!(received(&mut gate, Instant::ZERO), Some(syn(2)));
        gate.ports.listening[0].1 = 1;
        assert_eq!(received(&mut gate, Instant::ZERO), Some(syn(3)));
        assert_eq!(gate.held(), 0);
    }

    #[test]
    fn a_retransmitted_syn_of_a_half_open_connection_is_dropped() {
        let mut backlog = [SynSlot::EMPTY; 2];
        let mut gate = gate(&mut backlog, &[syn(40000)]);
        // A socket listens: it must not take the retransmission.
        gate.ports.listening[0].1 = 1;
        let key = connection_request(Medium::Ethernet, &syn(40000)).unwrap();
        gate.ports.half_open.push(key).unwrap();
        assert_eq!(received(&mut gate, Instant::ZERO), None);
        assert_eq!(gate.held(), 0);
    }
}
