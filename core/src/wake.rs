//! Wakers for multiplexed requests, with no heap and nothing to dangle.
//!
//! Each request slot of a multiplexed server owns a *slot id* from one
//! process-wide pool of atomic bits. A slot's [`Waker`] carries only its id
//! (an integer, never a pointer), so a waker kept by a backend or by user
//! code after its server is gone can do no harm: waking it sets a bit that
//! nobody reads, or, once the id is reused, causes one spurious poll.
//!
//! Per id the pool keeps three things: *ready* (woken since the last poll),
//! *cancel* (the server is ending the request: its I/O fails with
//! [`Error::Cut`](crate::Error::Cut)) and the bytes its I/O moved since the
//! server last looked (the idle policy's input). The request's I/O finds its
//! id through the waker of the `Context` it is polled with.

use core::sync::atomic::{AtomicU32, Ordering};
use core::task::{RawWaker, RawWakerVTable, Waker};

/// Slot ids in the process: with `std`, enough for tens of thousands of
/// connections; without, a firmware's few.
#[cfg(feature = "std")]
pub const SLOT_IDS: usize = 65_536;
/// Slot ids in the process: with `std`, enough for tens of thousands of
/// connections; without, a firmware's few.
#[cfg(not(feature = "std"))]
pub const SLOT_IDS: usize = 256;

const WORDS: usize = SLOT_IDS / 32;

/// Bits of ids in use, ready, cancelled; bytes moved per id.
struct Pool {
    used: [AtomicU32; WORDS],
    ready: [AtomicU32; WORDS],
    cancel: [AtomicU32; WORDS],
    moved: [AtomicU32; SLOT_IDS],
}

static POOL: Pool = Pool {
    used: [const { AtomicU32::new(0) }; WORDS],
    ready: [const { AtomicU32::new(0) }; WORDS],
    cancel: [const { AtomicU32::new(0) }; WORDS],
    moved: [const { AtomicU32::new(0) }; SLOT_IDS],
};

fn bit(id: usize) -> (usize, u32) {
    (id / 32, 1 << (id % 32))
}

/// One slot id, returned to the pool when dropped.
#[derive(Debug, PartialEq, Eq)]
pub struct SlotId(usize);

impl SlotId {
    /// Takes a free id, or `None` when the pool is exhausted.
    pub fn take() -> Option<Self> {
        for (word, used) in POOL.used.iter().enumerate() {
            let mut current = used.load(Ordering::Relaxed);
            while current != u32::MAX {
                let free = (!current).trailing_zeros();
                let claimed = current | (1 << free);
                match used.compare_exchange_weak(
                    current,
                    claimed,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        let id = SlotId(word * 32 + free as usize);
                        id.reset();
                        return Some(id);
                    }
                    Err(now) => current = now,
                }
            }
        }
        None
    }

    /// The id as a number.
    pub fn index(&self) -> usize {
        self.0
    }

    /// Clears ready, cancel and the byte count (a new request in the slot).
    pub fn reset(&self) {
        let (word, mask) = bit(self.0);
        POOL.ready[word].fetch_and(!mask, Ordering::AcqRel);
        POOL.cancel[word].fetch_and(!mask, Ordering::AcqRel);
        POOL.moved[self.0].store(0, Ordering::Relaxed);
    }

    /// A waker that marks this slot ready.
    pub fn waker(&self) -> Waker {
        waker_for(self.0)
    }

    /// Marks the slot ready (to be polled), as its waker does.
    pub fn wake(&self) {
        wake(self.0);
    }

    /// Whether the slot was woken and not yet taken (the mark stays).
    pub fn is_ready(&self) -> bool {
        let (word, mask) = bit(self.0);
        POOL.ready[word].load(Ordering::Acquire) & mask != 0
    }

    /// Whether the slot was woken since the last call; clears the mark.
    pub fn take_ready(&self) -> bool {
        let (word, mask) = bit(self.0);
        POOL.ready[word].fetch_and(!mask, Ordering::AcqRel) & mask != 0
    }

    /// Asks the slot's request to end: its pending and later I/O fail.
    pub fn cancel(&self) {
        let (word, mask) = bit(self.0);
        POOL.cancel[word].fetch_or(mask, Ordering::AcqRel);
        self.wake();
    }

    /// Bytes the slot's I/O moved since the last call; resets the count.
    pub fn take_moved(&self) -> usize {
        POOL.moved[self.0].swap(0, Ordering::AcqRel) as usize
    }
}

impl Drop for SlotId {
    fn drop(&mut self) {
        let (word, mask) = bit(self.0);
        POOL.used[word].fetch_and(!mask, Ordering::AcqRel);
    }
}

/// What the I/O of a request polled by a multiplexed server learns from
/// its `Context`'s waker: `None` for any other waker (a blocking strategy,
/// another executor).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SlotOf(usize);

impl SlotOf {
    /// The slot whose waker `waker` is, if it is one of ours.
    pub(crate) fn of(waker: &Waker) -> Option<Self> {
        core::ptr::eq(waker.vtable(), &VTABLE).then(|| SlotOf(waker.data() as usize))
    }

    /// Whether the server is ending this request.
    pub(crate) fn is_cancelled(self) -> bool {
        let (word, mask) = bit(self.0);
        POOL.cancel
            .get(word)
            .is_some_and(|w| w.load(Ordering::Acquire) & mask != 0)
    }

    /// Counts `n` bytes moved (the idle policy's input).
    pub(crate) fn moved(self, n: usize) {
        if let Some(counter) = POOL.moved.get(self.0) {
            counter.fetch_add(u32::try_from(n).unwrap_or(u32::MAX), Ordering::Relaxed);
        }
    }
}

fn wake(id: usize) {
    let (word, mask) = bit(id);
    if let Some(ready) = POOL.ready.get(word) {
        ready.fetch_or(mask, Ordering::AcqRel);
    }
}

// The vtable's functions never dereference `data`: it is a slot id, not a
// pointer. Safe `fn`s coerce to the `unsafe fn` pointers the vtable holds.
fn clone_raw(data: *const ()) -> RawWaker {
    RawWaker::new(data, &VTABLE)
}

fn wake_raw(data: *const ()) {
    wake(data as usize);
}

fn drop_raw(_data: *const ()) {}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone_raw, wake_raw, wake_raw, drop_raw);

#[allow(unsafe_code)]
fn waker_for(id: usize) -> Waker {
    let raw = RawWaker::new(id as *const (), &VTABLE);
    // SAFETY: `Waker::from_raw` needs the vtable's functions to uphold the
    // `RawWaker` contract for `data`. They never dereference `data` (an
    // integer id cast to a pointer), only index the static pool with it
    // (bounds-checked), so any `data` is valid for them, from any thread and
    // for any length of time; `clone_raw` returns the same id and vtable.
    unsafe { Waker::from_raw(raw) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waker_marks_its_slot_ready_once() {
        let id = SlotId::take().unwrap();
        assert!(!id.take_ready());
        let waker = id.waker();
        waker.wake_by_ref();
        let clone = waker.clone();
        clone.wake();
        assert!(id.take_ready());
        assert!(!id.take_ready(), "cleared");
    }

    #[test]
    fn io_finds_its_slot_through_the_waker() {
        let id = SlotId::take().unwrap();
        let waker = id.waker();
        let slot = SlotOf::of(&waker).expect("ours");
        assert!(!slot.is_cancelled());
        slot.moved(10);
        slot.moved(5);
        assert_eq!(id.take_moved(), 15);
        id.cancel();
        assert!(slot.is_cancelled());
        assert!(id.take_ready(), "a cancel wakes the slot");
        assert!(SlotOf::of(Waker::noop()).is_none());
    }

    #[test]
    fn ids_are_unique_and_go_back_to_the_pool() {
        let a = SlotId::take().unwrap();
        let b = SlotId::take().unwrap();
        assert_ne!(a.index(), b.index());
        drop(a);
        assert!(POOL.used[bit(b.index()).0].load(Ordering::Acquire) & bit(b.index()).1 != 0);
    }
}
