//! The SYN backlog: a `Device` wrapper that holds back connection requests
//! for which no socket listens, instead of letting smoltcp refuse them.
//!
//! smoltcp answers a SYN that finds no listening socket with RST, so a burst
//! of clients larger than the socket pool would be refused. The gate looks at
//! each inbound frame: a SYN to a pool port with no free listener is copied
//! into a backlog slot (storage the user provides) and released as soon as a
//! socket listens again, never refused.
//!
//! Newest first: the latest request (a retransmission counts as new) is
//! released first, and when the backlog is full a new request takes the slot
//! of the oldest one. A held request loses value as it ages: a live client
//! retransmits within a second or two and so comes back to the front, while a
//! forged SYN never does. Oldest-first would make a real client wait behind
//! every forged or abandoned request that arrived before it; a flood of 2,000
//! forged SYNs ahead of it would lock it out for minutes.

use core::time::Duration;

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::syn::{SynKey, connection_request};

/// Longest frame the gate passes through (an Ethernet frame of MTU 1500 plus
/// headers fits). Longer frames are dropped, and the gate reports at most this
/// as the device's `max_transmission_unit` (which smoltcp counts with the
/// Ethernet header on Ethernet, as the whole IP packet on IP), so the stack
/// never advertises a segment size the gate would drop.
pub const MAX_FRAME: usize = 1536;

/// How long a held SYN is kept without a retransmission from its client:
/// longer than the largest gap between Linux's SYN retransmissions (64 s),
/// so a client still trying keeps its place, and one that gave up (or a
/// spoofed address) frees its slot.
pub const HELD_SYN_LIFETIME: Duration = Duration::from_secs(90);

/// When to retry a frame kept because the device had no transmit buffer.
pub(crate) const KEPT_FRAME_RETRY: Duration = Duration::from_millis(1);

/// Connections in SYN-RECEIVED the gate knows of, whose retransmitted SYNs
/// it drops (see [`Gate::receive`](Device::receive)).
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
    /// Frames longer than [`MAX_FRAME`], dropped.
    pub oversized: u32,
    /// Held SYNs dropped after [`HELD_SYN_LIFETIME`] without a retransmission.
    pub expired: u32,
}

/// A `Device` that holds back SYNs to pool ports with no listening socket.
#[derive(Debug)]
pub(crate) struct Gate<'a, D> {
    pub(crate) inner: D,
    medium: Medium,
    backlog: &'a mut [SynSlot],
    frame: [u8; MAX_FRAME],
    /// A frame in `frame` that passed the gate but could not be handed on
    /// because the device had no transmit buffer: it goes first next time.
    kept: Option<usize>,
    arrivals: u32,
    /// Slots holding a request. The backlog is scanned only when this is
    /// not zero: those scans ran for every frame and every pool socket on
    /// every poll, and a backlog is empty whenever the pool keeps up.
    held: usize,
    pub(crate) ports: Ports,
    pub(crate) stats: GateStats,
}

impl<'a, D: Device> Gate<'a, D> {
    pub(crate) fn new(inner: D, backlog: &'a mut [SynSlot]) -> Self {
        let medium = inner.capabilities().medium;
        Self {
            inner,
            medium,
            backlog,
            frame: [0; MAX_FRAME],
            kept: None,
            arrivals: 0,
            held: 0,
            ports: Ports::default(),
            stats: GateStats::default(),
        }
    }

    /// Whether a held SYN could be released now.
    pub(crate) fn has_releasable(&self) -> bool {
        self.held > 0
            && self
                .backlog
                .iter()
                .any(|s| s.key.is_some_and(|k| self.ports.has_listener(k.dst_port)))
    }

    /// Requests held now.
    pub(crate) fn held(&self) -> usize {
        self.held
    }

    /// Whether connection requests for `port` wait in the backlog.
    pub(crate) fn holds_for(&self, port: u16) -> bool {
        self.held > 0
            && self
                .backlog
                .iter()
                .any(|s| s.key.is_some_and(|k| k.dst_port == port))
    }

    /// Whether a received frame waits for the device to transmit again.
    pub(crate) fn has_kept_frame(&self) -> bool {
        self.kept.is_some()
    }

    fn expire(&mut self, now: Instant) {
        if self.held == 0 {
            return;
        }
        let lifetime = smoltcp::time::Duration::from_micros(
            u64::try_from(HELD_SYN_LIFETIME.as_micros()).unwrap_or(u64::MAX),
        );
        for slot in self.backlog.iter_mut() {
            if slot.key.is_some() && now >= slot.seen + lifetime {
                slot.key = None;
                self.held -= 1;
                self.stats.expired = self.stats.expired.wrapping_add(1);
            }
        }
    }

    fn hold(&mut self, key: SynKey, len: usize, now: Instant) {
        if len > SLOT_BYTES {
            self.stats.dropped = self.stats.dropped.wrapping_add(1);
            return;
        }
        // A retransmission replaces its original and goes to the front: its
        // client is alive. A new request takes a free slot, or the oldest.
        let slot = match self.backlog.iter().position(|s| s.key == Some(key)) {
            Some(i) => i,
            None => {
                self.stats.held = self.stats.held.wrapping_add(1);
                match self.backlog.iter().position(|s| s.key.is_none()) {
                    Some(i) => {
                        self.held += 1;
                        i
                    }
                    None => {
                        let Some(oldest) = self.oldest() else {
                            // An empty backlog holds nothing.
                            self.stats.dropped = self.stats.dropped.wrapping_add(1);
                            return;
                        };
                        self.stats.dropped = self.stats.dropped.wrapping_add(1);
                        oldest
                    }
                }
            }
        };
        self.arrivals = self.arrivals.wrapping_add(1);
        let slot = &mut self.backlog[slot];
        slot.arrival = self.arrivals;
        slot.frame[..len].copy_from_slice(&self.frame[..len]);
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
        self.backlog
            .iter()
            .enumerate()
            .filter(|(_, s)| s.key.is_some())
            .max_by_key(|(_, s)| self.age(s))
            .map(|(i, _)| i)
    }

    /// The newest held SYN whose port has a listener now.
    fn newest_releasable(&mut self) -> Option<usize> {
        if self.held == 0 {
            return None;
        }
        let ports = &self.ports;
        let newest = self
            .backlog
            .iter()
            .enumerate()
            .filter(|(_, s)| s.key.is_some_and(|k| ports.has_listener(k.dst_port)))
            .min_by_key(|(_, s)| self.age(s))
            .map(|(i, _)| i)?;
        let port = self.backlog[newest].key.map(|k| k.dst_port)?;
        self.ports.take_listener(port);
        Some(newest)
    }
}

/// How many inbound frames one `receive` call may swallow (held SYNs) before
/// it gives the stack a turn.
const MAX_SWALLOWED: usize = 64;

impl<D: Device> Device for Gate<'_, D> {
    type RxToken<'t>
        = RxToken<'t>
    where
        Self: 't;
    type TxToken<'t>
        = D::TxToken<'t>
    where
        Self: 't;

    fn receive(&mut self, timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        self.expire(timestamp);
        if let Some(i) = self.newest_releasable() {
            let tx = self.inner.transmit(timestamp)?;
            self.stats.released = self.stats.released.wrapping_add(1);
            let slot = &mut self.backlog[i];
            slot.key = None;
            self.held -= 1;
            let frame = &slot.frame[..usize::from(slot.len)];
            return Some((RxToken { frame }, tx));
        }
        if let Some(len) = self.kept {
            let tx = self.inner.transmit(timestamp)?;
            self.kept = None;
            return Some((
                RxToken {
                    frame: &self.frame[..len],
                },
                tx,
            ));
        }
        for _ in 0..MAX_SWALLOWED {
            // The inner device's transmit token is dropped here and a fresh one
            // taken once the frame is known to pass: returning a borrow from
            // one loop iteration only is what the borrow checker accepts.
            let len = {
                let (rx, _tx) = self.inner.receive(timestamp)?;
                let frame = &mut self.frame;
                phy::RxToken::consume(rx, |data| {
                    if let Some(dst) = frame.get_mut(..data.len()) {
                        dst.copy_from_slice(data);
                    }
                    data.len()
                })
            };
            if len > MAX_FRAME {
                self.stats.oversized = self.stats.oversized.wrapping_add(1);
                continue;
            }
            if let Some(key) = connection_request(self.medium, &self.frame[..len]) {
                // A retransmitted SYN of a half-open connection is dropped:
                // smoltcp gives a segment to the first socket that accepts
                // it, and a listening socket accepts any SYN, so it could
                // open a second half-open connection with the same
                // addresses, whose RST would kill the first. The socket in
                // SYN-RECEIVED resends its SYN-ACK on its own timer.
                if self.ports.half_open.contains(&key) {
                    continue;
                }
                if self.ports.take_listener(key.dst_port) == Some(false) {
                    self.hold(key, len, timestamp);
                    continue;
                }
            }
            let Some(tx) = self.inner.transmit(timestamp) else {
                self.kept = Some(len);
                return None;
            };
            return Some((
                RxToken {
                    frame: &self.frame[..len],
                },
                tx,
            ));
        }
        None
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Self::TxToken<'_>> {
        self.inner.transmit(timestamp)
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = self.inner.capabilities();
        caps.max_transmission_unit = caps.max_transmission_unit.min(MAX_FRAME);
        caps
    }
}

/// A received frame, copied out of the inner device or out of the backlog.
#[derive(Debug)]
pub(crate) struct RxToken<'t> {
    frame: &'t [u8],
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
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

    fn received(gate: &mut Gate<'_, Mock>, at: Instant) -> Option<Vec<u8>> {
        let (rx, _) = gate.receive(at)?;
        Some(phy::RxToken::consume(rx, |f| f.to_vec()))
    }

    #[test]
    fn mtu_is_capped_to_what_the_gate_passes() {
        let mut backlog = [SynSlot::EMPTY; 1];
        let gate = Gate::new(Loopback::new(Medium::Ethernet), &mut backlog);
        assert_eq!(gate.capabilities().max_transmission_unit, MAX_FRAME);
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
        assert_eq!(gate.stats.expired, 1);
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
        assert_eq!(gate.stats.dropped, 1, "syn(1) gave its slot to syn(3)");
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

    #[test]
    fn a_frame_is_kept_when_the_device_cannot_transmit() {
        let mut backlog = [SynSlot::EMPTY; 2];
        let mut frame = syn(40000);
        frame[47] = 0x10; // a plain ACK: passes the gate
        let mut gate = gate(&mut backlog, core::slice::from_ref(&frame));
        gate.inner.can_transmit = false;
        assert!(received(&mut gate, Instant::ZERO).is_none());
        assert!(gate.has_kept_frame());
        gate.inner.can_transmit = true;
        assert_eq!(received(&mut gate, Instant::ZERO), Some(frame));
        assert!(!gate.has_kept_frame());
    }
}
