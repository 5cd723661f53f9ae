//! A `Device` wrapper that duplicates and reorders frames, for the fault
//! injection tests. smoltcp's `FaultInjector` drops, corrupts and limits the
//! size of frames but neither duplicates nor reorders them; stack the two
//! (`faults(device, ..)`) for a link that does all five.
//!
//! Each direction has its own settings. A frame held back for reordering
//! leaves right after the next frame of its direction, or at the device's
//! next receive (the stack's next poll) if none follows, so nothing is held
//! for longer than a poll cycle.
//!
//! Used by the TAP tests (`#[path = "support/impaired.rs"] mod impaired;`)
//! and by the smoltcp backend's loopback tests.

#![allow(dead_code)] // each test crate uses a subset

use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, FaultInjector};
use smoltcp::time::Instant;

/// What happens to the frames of one direction, in percent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Shuffle {
    /// Frames sent twice.
    pub dup: u8,
    /// Frames sent after the frame that follows them.
    pub reorder: u8,
}

/// Faults on both directions of a link: smoltcp's `FaultInjector` settings
/// (applied to frames either way) and the [`Shuffle`] of each direction.
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    /// Percent of frames dropped (each way).
    pub drop: u8,
    /// Percent of frames with one bit flipped (each way).
    pub corrupt: u8,
    /// Frames longer than this are dropped (0: no limit).
    pub max_size: usize,
    /// Frames the stack receives.
    pub rx: Shuffle,
    /// Frames the stack sends.
    pub tx: Shuffle,
    /// Seed of every pseudo-random choice.
    pub seed: u32,
}

impl Faults {
    /// 5% dropped, 1% corrupted, 5% duplicated and 10% reordered, each way.
    pub const LOSSY: Faults = Faults {
        drop: 5,
        corrupt: 1,
        max_size: 0,
        rx: Shuffle {
            dup: 5,
            reorder: 10,
        },
        tx: Shuffle {
            dup: 5,
            reorder: 10,
        },
        seed: 0x5eed_0013,
    };
}

/// `device` behind `faults`: the `FaultInjector` outside, [`Impaired`]
/// inside; and where to read how many frames were duplicated and reordered.
pub fn faults<D: Device>(device: D, faults: Faults) -> (FaultInjector<Impaired<D>>, Tally) {
    let impaired = Impaired::new(device, faults);
    let tally = impaired.tally();
    let mut injector = FaultInjector::new(impaired, faults.seed);
    injector.set_drop_chance(faults.drop);
    injector.set_corrupt_chance(faults.corrupt);
    injector.set_max_packet_size(faults.max_size);
    (injector, tally)
}

/// The counts of an [`Impaired`] device, readable while the stack owns it.
pub type Tally = Rc<Cell<Counts>>;

/// How many frames were duplicated and reordered, each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub rx_duplicated: u64,
    pub rx_reordered: u64,
    pub tx_duplicated: u64,
    pub tx_reordered: u64,
}

struct Rng(u32);

impl Rng {
    fn chance(&mut self, percent: u8) -> bool {
        // xorshift32
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0 % 100 < u32::from(percent)
    }
}

/// The sending side's state, borrowed by each transmit token.
struct Sending {
    rng: Rng,
    shuffle: Shuffle,
    held: Option<Vec<u8>>,
    tally: Tally,
}

/// A device that duplicates and reorders the frames of `D`.
pub struct Impaired<D> {
    inner: D,
    rng: Rng,
    rx: Shuffle,
    /// Frames to hand the stack before reading the device again.
    ready: VecDeque<Vec<u8>>,
    held: Option<Vec<u8>>,
    tally: Tally,
    tx: Sending,
}

fn count(tally: &Tally, what: impl FnOnce(&mut Counts)) {
    let mut counts = tally.get();
    what(&mut counts);
    tally.set(counts);
}

impl<D: Device> Impaired<D> {
    pub fn new(inner: D, faults: Faults) -> Self {
        let tally = Tally::default();
        Self {
            inner,
            rng: Rng(faults.seed | 1),
            rx: faults.rx,
            ready: VecDeque::new(),
            held: None,
            tally: Rc::clone(&tally),
            tx: Sending {
                rng: Rng(faults.seed.rotate_left(16) | 1),
                shuffle: faults.tx,
                held: None,
                tally,
            },
        }
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// Where the counts are kept.
    pub fn tally(&self) -> Tally {
        Rc::clone(&self.tally)
    }

    /// The next frame from the device, shuffled; `None` when it has none.
    fn next_frame(&mut self, timestamp: Instant) -> Option<Vec<u8>> {
        if let Some(frame) = self.ready.pop_front() {
            return Some(frame);
        }
        loop {
            let Some((rx, _)) = self.inner.receive(timestamp) else {
                // Nothing follows the held frame: it goes now.
                return self.held.take();
            };
            let frame = phy::RxToken::consume(rx, |bytes| bytes.to_vec());
            if self.rng.chance(self.rx.dup) {
                count(&self.tally, |c| c.rx_duplicated += 1);
                self.ready.push_back(frame.clone());
            }
            if self.held.is_none() && self.rng.chance(self.rx.reorder) {
                count(&self.tally, |c| c.rx_reordered += 1);
                self.held = Some(frame);
                continue;
            }
            if let Some(late) = self.held.take() {
                self.ready.push_back(late);
            }
            return Some(frame);
        }
    }
}

fn send<D: Device>(inner: &mut D, frame: &[u8], timestamp: Instant) {
    if let Some(token) = inner.transmit(timestamp) {
        phy::TxToken::consume(token, frame.len(), |buf| buf.copy_from_slice(frame));
    }
}

impl<D: Device> Device for Impaired<D> {
    type RxToken<'a>
        = Frame
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a, D>
    where
        Self: 'a;

    fn receive(&mut self, timestamp: Instant) -> Option<(Frame, Tx<'_, D>)> {
        // A sent frame held back leaves by the next poll at the latest.
        if let Some(late) = self.tx.held.take() {
            send(&mut self.inner, &late, timestamp);
        }
        let frame = self.next_frame(timestamp)?;
        let tx = Tx {
            inner: &mut self.inner,
            sending: &mut self.tx,
            timestamp,
        };
        Some((Frame(frame), tx))
    }

    fn transmit(&mut self, timestamp: Instant) -> Option<Tx<'_, D>> {
        Some(Tx {
            inner: &mut self.inner,
            sending: &mut self.tx,
            timestamp,
        })
    }

    /// The device's, except that checksums are computed and checked: the
    /// link corrupts frames (smoltcp's loopback device skips checksums).
    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = self.inner.capabilities();
        caps.checksum = ChecksumCapabilities::default();
        caps
    }
}

/// A received frame.
pub struct Frame(Vec<u8>);

impl phy::RxToken for Frame {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

/// A frame to send: written here first, then sent (or not, or twice, or
/// after the next one).
pub struct Tx<'a, D> {
    inner: &'a mut D,
    sending: &'a mut Sending,
    timestamp: Instant,
}

impl<D: Device> phy::TxToken for Tx<'_, D> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let result = f(&mut frame);
        let Self {
            inner,
            sending,
            timestamp,
        } = self;
        let twice = sending.rng.chance(sending.shuffle.dup);
        if twice {
            count(&sending.tally, |c| c.tx_duplicated += 1);
        }
        if sending.held.is_none() && sending.rng.chance(sending.shuffle.reorder) {
            count(&sending.tally, |c| c.tx_reordered += 1);
            if twice {
                send(inner, &frame, timestamp);
            }
            sending.held = Some(frame);
            return result;
        }
        send(inner, &frame, timestamp);
        if twice {
            send(inner, &frame, timestamp);
        }
        if let Some(late) = sending.held.take() {
            send(inner, &late, timestamp);
        }
        result
    }
}
