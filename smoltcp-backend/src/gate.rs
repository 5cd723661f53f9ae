//! The SYN backlog: a `Device` wrapper that holds back connection requests
//! for which no socket listens, instead of letting smoltcp refuse them.
//!
//! smoltcp answers a SYN that finds no listening socket with RST, so a burst
//! of clients larger than the socket pool would be refused. The gate looks at
//! each inbound frame: a SYN to a pool port with no free listener is copied
//! into a backlog slot (storage the user provides) and released, oldest
//! first, as soon as a socket listens again. When the backlog is full the
//! SYN is dropped and the peer retransmits it: slower, never refused.

use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::syn::{SynKey, connection_request};

/// Longest frame the gate passes through (an Ethernet frame of MTU 1500 plus
/// headers fits). Longer frames are dropped: give the device an MTU of at most 1500.
pub const MAX_FRAME: usize = 1536;

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
}

impl SynSlot {
    /// A free slot.
    pub const EMPTY: Self = Self {
        frame: [0; SLOT_BYTES],
        len: 0,
        key: None,
        arrival: 0,
    };
}

/// The pool ports and how many of their sockets listen now.
#[derive(Debug, Default)]
pub(crate) struct Ports {
    pub(crate) listening: heapless::Vec<(u16, usize), MAX_PORTS>,
}

impl Ports {
    fn take_listener(&mut self, port: u16) -> Option<bool> {
        let entry = self.listening.iter_mut().find(|(p, _)| *p == port)?;
        if entry.1 == 0 {
            return Some(false);
        }
        entry.1 -= 1;
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
pub struct GateStats {
    /// SYNs held in the backlog because no socket listened.
    pub held: u32,
    /// Held SYNs handed to a listening socket later.
    pub released: u32,
    /// SYNs dropped because the backlog was full (the peer retransmits).
    pub dropped: u32,
    /// Frames longer than [`MAX_FRAME`], dropped.
    pub oversized: u32,
}

/// A `Device` that holds back SYNs to pool ports with no listening socket.
#[derive(Debug)]
pub(crate) struct Gate<'a, D> {
    pub(crate) inner: D,
    medium: Medium,
    backlog: &'a mut [SynSlot],
    frame: [u8; MAX_FRAME],
    arrivals: u32,
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
            arrivals: 0,
            ports: Ports::default(),
            stats: GateStats::default(),
        }
    }

    /// Whether a held SYN could be released now.
    pub(crate) fn has_releasable(&self) -> bool {
        self.backlog
            .iter()
            .any(|s| s.key.is_some_and(|k| self.ports.has_listener(k.dst_port)))
    }

    /// Requests held now.
    pub(crate) fn held(&self) -> usize {
        self.backlog.iter().filter(|s| s.key.is_some()).count()
    }

    fn hold(&mut self, key: SynKey, len: usize) {
        if len > SLOT_BYTES {
            self.stats.dropped = self.stats.dropped.wrapping_add(1);
            return;
        }
        // A retransmission replaces its original and keeps its place in line.
        let slot = match self.backlog.iter().position(|s| s.key == Some(key)) {
            Some(i) => i,
            None => match self.backlog.iter().position(|s| s.key.is_none()) {
                Some(i) => {
                    self.stats.held = self.stats.held.wrapping_add(1);
                    self.arrivals = self.arrivals.wrapping_add(1);
                    self.backlog[i].arrival = self.arrivals;
                    i
                }
                None => {
                    self.stats.dropped = self.stats.dropped.wrapping_add(1);
                    return;
                }
            },
        };
        let slot = &mut self.backlog[slot];
        slot.frame[..len].copy_from_slice(&self.frame[..len]);
        // `len <= SLOT_BYTES = 128` was checked above.
        slot.len = len as u8;
        slot.key = Some(key);
    }

    /// The oldest held SYN whose port has a listener now.
    fn oldest_releasable(&mut self) -> Option<usize> {
        let ports = &self.ports;
        let oldest = self
            .backlog
            .iter()
            .enumerate()
            .filter(|(_, s)| s.key.is_some_and(|k| ports.has_listener(k.dst_port)))
            .min_by_key(|(_, s)| s.arrival.wrapping_sub(self.arrivals.wrapping_add(1)))
            .map(|(i, _)| i)?;
        let port = self.backlog[oldest].key.map(|k| k.dst_port)?;
        self.ports.take_listener(port);
        Some(oldest)
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
        if let Some(i) = self.oldest_releasable() {
            let tx = self.inner.transmit(timestamp)?;
            self.stats.released = self.stats.released.wrapping_add(1);
            let slot = &mut self.backlog[i];
            slot.key = None;
            let frame = &slot.frame[..usize::from(slot.len)];
            return Some((RxToken { frame }, tx));
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
            if let Some(key) = connection_request(self.medium, &self.frame[..len])
                && self.ports.take_listener(key.dst_port) == Some(false)
            {
                self.hold(key, len);
                continue;
            }
            let tx = self.inner.transmit(timestamp)?;
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
        self.inner.capabilities()
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
