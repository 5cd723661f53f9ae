//! Wakers for multiplexed requests, with no heap and nothing to dangle.
//!
//! Each request slot of a multiplexed server owns a *slot id* from one
//! process-wide pool of atomic bits. A slot's [`Waker`] carries only its id
//! (an integer, never a pointer), so a waker kept by a backend or by user
//! code after its server is gone can do no harm: waking it sets a bit that
//! nobody reads, or, once the id is reused, causes one spurious poll.
//!
//! Per id the pool keeps: *used* (owned by a server, which holds a run of
//! consecutive ids for its slots), *ready* (woken since the last poll),
//! *cancel* (the server is ending the request: its I/O fails with
//! [`Error::Cut`](crate::Error::Cut)), *timed out* (its handler's own
//! `timeout` passed: the I/O fails with `TimedOut`), *stop* (its handler
//! asked the server to stop: `req.server().shutdown()`) and the bytes its I/O
//! moved since the server last looked (the idle policy's input). The
//! request's I/O finds its id through the waker of the `Context` it is
//! polled with.

use core::sync::atomic::{AtomicU32, Ordering};
use core::task::{RawWaker, RawWakerVTable, Waker};

/// Slot ids in the process: with `std`, enough for tens of thousands of
/// connections; without, a firmware's few (each costs 4.5 bytes of static
/// RAM). Unit tests, which run in parallel, get the large pool.
#[cfg(any(feature = "std", test))]
pub const SLOT_IDS: usize = 65_536;
/// Slot ids in the process: with `std`, enough for tens of thousands of
/// connections; without, a firmware's few (each costs 4.5 bytes of static
/// RAM).
#[cfg(not(any(feature = "std", test)))]
pub const SLOT_IDS: usize = 64;

const WORDS: usize = SLOT_IDS / 32;

/// Bits of ids in use, ready, cancelled, timed out, asking to stop; bytes
/// moved per id.
struct Pool {
    used: [AtomicU32; WORDS],
    ready: [AtomicU32; WORDS],
    cancel: [AtomicU32; WORDS],
    timed_out: [AtomicU32; WORDS],
    stop: [AtomicU32; WORDS],
    moved: [AtomicU32; SLOT_IDS],
}

static POOL: Pool = Pool {
    used: [const { AtomicU32::new(0) }; WORDS],
    ready: [const { AtomicU32::new(0) }; WORDS],
    cancel: [const { AtomicU32::new(0) }; WORDS],
    timed_out: [const { AtomicU32::new(0) }; WORDS],
    stop: [const { AtomicU32::new(0) }; WORDS],
    moved: [const { AtomicU32::new(0) }; SLOT_IDS],
};

fn bit(id: usize) -> (usize, u32) {
    (id / 32, 1 << (id % 32))
}

/// Slot ids in use now, across the process: each multiplexed server holds
/// one per slot while it lives, so a count that does not return to its
/// baseline after the servers are gone is a leak (a check for tests).
pub fn slot_ids_in_use() -> usize {
    POOL.used
        .iter()
        .map(|word| word.load(Ordering::Acquire).count_ones() as usize)
        .sum()
}

/// The bits of word `word` that ids `first..first + len` own.
fn run_mask(word: usize, first: usize, len: usize) -> u32 {
    let lo = first.max(word * 32);
    let hi = (first + len).min(word * 32 + 32);
    if lo >= hi {
        return 0;
    }
    let width = hi - lo;
    let ones = if width == 32 {
        u32::MAX
    } else {
        (1 << width) - 1
    };
    ones << (lo - word * 32)
}

/// Claims `mask` in word `word` if all its bits are free.
fn claim(word: usize, mask: u32) -> bool {
    POOL.used[word]
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            (used & mask == 0).then_some(used | mask)
        })
        .is_ok()
}

fn release(word: usize, mask: u32) {
    POOL.used[word].fetch_and(!mask, Ordering::AcqRel);
}

/// A run of consecutive slot ids, one per slot of a multiplexed server, owned
/// for the server's life and returned to the pool when dropped.
///
/// Consecutive ids make finding the woken slots cheap: one atomic load per 32
/// slots, and a slot's index is its id minus the first.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SlotIds {
    first: usize,
    len: usize,
}

impl SlotIds {
    /// Takes `len` consecutive free ids (`len` ≤ 32 within one word, longer
    /// runs from a word's start), or `None` when the pool has no such run.
    pub(crate) fn take(len: usize) -> Option<Self> {
        if len == 0 || len > SLOT_IDS {
            return None;
        }
        if len > 32 {
            return (0..WORDS)
                .take_while(|word| word * 32 + len <= SLOT_IDS)
                .find_map(|word| Self::claim_run(word * 32, len));
        }
        let ones = if len == 32 { u32::MAX } else { (1 << len) - 1 };
        for (word, used) in POOL.used.iter().enumerate() {
            let mut shift = 0;
            while shift + len <= 32 {
                if (used.load(Ordering::Acquire) >> shift) & ones == 0
                    && let Some(ids) = Self::claim_run(word * 32 + shift, len)
                {
                    return Some(ids);
                }
                shift += 1;
            }
        }
        None
    }

    /// Claims ids `first..first + len` word by word, undoing on a conflict.
    fn claim_run(first: usize, len: usize) -> Option<Self> {
        let words = first / 32..(first + len - 1) / 32 + 1;
        for word in words.clone() {
            if !claim(word, run_mask(word, first, len)) {
                for done in words.start..word {
                    release(done, run_mask(done, first, len));
                }
                return None;
            }
        }
        let ids = Self { first, len };
        for index in 0..len {
            ids.slot(index).reset();
        }
        Some(ids)
    }

    /// The id of slot `index` (`index < len`: callers pass positions of
    /// their own `N` slots; a larger one is a bug, caught in debug builds).
    pub(crate) fn slot(&self, index: usize) -> SlotId {
        debug_assert!(index < self.len, "slot {index} of a run of {}", self.len);
        SlotId(self.first + index.min(self.len - 1))
    }

    fn words(&self) -> core::ops::Range<usize> {
        self.first / 32..(self.first + self.len - 1) / 32 + 1
    }

    /// Whether any slot was woken and not yet taken.
    pub(crate) fn any_ready(&self) -> bool {
        self.words().any(|word| {
            POOL.ready[word].load(Ordering::Acquire) & run_mask(word, self.first, self.len) != 0
        })
    }

    /// The slots woken since the last call, clearing their marks: one load
    /// per 32 slots, one more per word that has woken slots.
    pub(crate) fn take_ready(&self) -> ReadySlots {
        ReadySlots {
            first: self.first,
            len: self.len,
            word: self.first / 32,
            bits: 0,
        }
    }
}

impl Drop for SlotIds {
    fn drop(&mut self) {
        for word in self.words() {
            release(word, run_mask(word, self.first, self.len));
        }
    }
}

/// The indices of woken slots, word by word (see [`SlotIds::take_ready`]).
#[derive(Debug)]
pub(crate) struct ReadySlots {
    first: usize,
    len: usize,
    word: usize,
    bits: u32,
}

impl Iterator for ReadySlots {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        let end = (self.first + self.len - 1) / 32 + 1;
        while self.bits == 0 {
            if self.word >= end {
                return None;
            }
            let mask = run_mask(self.word, self.first, self.len);
            let ready = &POOL.ready[self.word];
            if ready.load(Ordering::Acquire) & mask != 0 {
                self.bits = ready.fetch_and(!mask, Ordering::AcqRel) & mask;
            }
            self.word += 1;
        }
        let bit = self.bits.trailing_zeros() as usize;
        self.bits &= self.bits - 1;
        Some((self.word - 1) * 32 + bit - self.first)
    }
}

/// One slot's id: a copyable name for its bits in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotId(usize);

impl SlotId {
    /// Clears ready, cancel, timed out, stop and the byte count (a new
    /// request in the slot).
    pub(crate) fn reset(self) {
        let (word, mask) = bit(self.0);
        POOL.ready[word].fetch_and(!mask, Ordering::AcqRel);
        POOL.cancel[word].fetch_and(!mask, Ordering::AcqRel);
        POOL.timed_out[word].fetch_and(!mask, Ordering::AcqRel);
        POOL.stop[word].fetch_and(!mask, Ordering::AcqRel);
        POOL.moved[self.0].store(0, Ordering::Relaxed);
    }

    /// A waker that marks this slot ready.
    pub(crate) fn waker(self) -> Waker {
        waker_for(self.0)
    }

    /// Marks the slot ready (to be polled), as its waker does.
    pub(crate) fn wake(self) {
        wake(self.0);
    }

    /// Asks the slot's request to end: its pending and later I/O fail.
    pub(crate) fn cancel(self) {
        let (word, mask) = bit(self.0);
        POOL.cancel[word].fetch_or(mask, Ordering::AcqRel);
        self.wake();
    }

    /// Ends the slot's request because its handler's `timeout` passed: as
    /// [`cancel`](Self::cancel), but its I/O fails with `TimedOut`.
    pub(crate) fn time_out(self) {
        let (word, mask) = bit(self.0);
        POOL.timed_out[word].fetch_or(mask, Ordering::AcqRel);
        self.cancel();
    }

    /// Records that the slot's handler asked the server to stop; the server
    /// learns it after the poll ([`take_stop`](Self::take_stop)).
    pub(crate) fn ask_stop(self) {
        let (word, mask) = bit(self.0);
        POOL.stop[word].fetch_or(mask, Ordering::AcqRel);
    }

    /// Whether the slot's handler asked the server to stop since the last
    /// call; clears the mark.
    pub(crate) fn take_stop(self) -> bool {
        let (word, mask) = bit(self.0);
        POOL.stop[word].fetch_and(!mask, Ordering::AcqRel) & mask != 0
    }

    /// Bytes the slot's I/O moved since the last call; resets the count.
    pub(crate) fn take_moved(self) -> usize {
        POOL.moved[self.0].swap(0, Ordering::AcqRel) as usize
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

    /// Whether it is being ended because its handler's timeout passed.
    pub(crate) fn is_timed_out(self) -> bool {
        let (word, mask) = bit(self.0);
        POOL.timed_out
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

/// Wake-ups so far, process-wide (wrapping); see [`wake_count`].
static WAKES: AtomicU32 = AtomicU32::new(0);

fn wake(id: usize) {
    let (word, mask) = bit(id);
    if let Some(ready) = POOL.ready.get(word) {
        ready.fetch_or(mask, Ordering::AcqRel);
        WAKES.fetch_add(1, Ordering::Release);
    }
}

/// How many times multiplexed requests have been woken in this process
/// (wrapping). A waiter that drives its network stack itself (smoltcp)
/// compares it before and after a receive: a waker that fired means a
/// request can move, so the waiter must return rather than idle.
pub fn wake_count() -> u32 {
    WAKES.load(Ordering::Acquire)
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

    fn is_ready(id: SlotId) -> bool {
        let (word, mask) = bit(id.0);
        POOL.ready[word].load(Ordering::Acquire) & mask != 0
    }

    #[test]
    fn a_waker_marks_its_slot_ready_once() {
        let ids = SlotIds::take(3).unwrap();
        assert_eq!(ids.take_ready().count(), 0);
        let waker = ids.slot(1).waker();
        waker.wake_by_ref();
        let clone = waker.clone();
        clone.wake();
        assert!(ids.any_ready());
        assert!(ids.take_ready().eq([1]));
        assert!(!ids.any_ready(), "cleared");
        assert!(!is_ready(ids.slot(1)));
    }

    #[test]
    fn io_finds_its_slot_through_the_waker() {
        let ids = SlotIds::take(1).unwrap();
        let id = ids.slot(0);
        let waker = id.waker();
        let slot = SlotOf::of(&waker).expect("ours");
        assert!(!slot.is_cancelled());
        slot.moved(10);
        slot.moved(5);
        assert_eq!(id.take_moved(), 15);
        id.cancel();
        assert!(slot.is_cancelled());
        assert_eq!(ids.take_ready().count(), 1, "a cancel wakes the slot");
        assert!(!id.take_stop());
        id.ask_stop();
        assert!(id.take_stop());
        assert!(!id.take_stop(), "seen once");
        assert!(SlotOf::of(Waker::noop()).is_none());
    }

    #[test]
    fn runs_are_disjoint_consecutive_and_go_back_to_the_pool() {
        let small = SlotIds::take(5).unwrap();
        let long = SlotIds::take(70).unwrap();
        assert_eq!(long.first % 32, 0, "a long run starts a word");
        let (a, b) = (small.first..small.first + 5, long.first..long.first + 70);
        assert!(
            a.end <= b.start || b.end <= a.start,
            "{a:?} and {b:?} overlap"
        );
        for index in [0, 31, 32, 69] {
            long.slot(index).wake();
        }
        small.slot(4).wake();
        assert!(long.take_ready().eq([0, 31, 32, 69]));
        assert!(small.take_ready().eq([4]));
        let first = long.first;
        drop(long);
        assert_eq!(
            POOL.used[first / 32].load(Ordering::Acquire) & run_mask(first / 32, first, 70),
            0,
            "released"
        );
    }

    #[test]
    fn a_new_run_starts_with_no_stale_marks() {
        let ids = SlotIds::take(2).unwrap();
        ids.slot(0).wake();
        ids.slot(1).cancel();
        let first = ids.first;
        drop(ids);
        let again = SlotIds::take(2).unwrap();
        if again.first == first {
            assert!(!again.any_ready());
            assert!(!SlotOf(first + 1).is_cancelled());
        }
    }
}
