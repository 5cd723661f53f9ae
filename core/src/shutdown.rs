//! The shutdown request: an atomic flag, safe from another thread or an interrupt.
//!
//! Python's `shutdown()` has two traps this flag removes:
//! - called before `serve_forever` has ever run, Python blocks forever. Here a
//!   request made before any loop has run is kept, and the first
//!   `serve_forever` returns at once (Python's start-up race, which code such
//!   as "spawn the server thread, then shut it down" relies on).
//! - called after `serve_forever` has returned, Python leaves the flag set and
//!   the *next* `serve_forever` returns at once. Here such a stale request is
//!   dropped: it arrives when no loop runs and one already has.
//!
//! Several loops may share one flag (a TCP and a UDP server stopped by one
//! interrupt): a request stops every loop running, and is consumed when the
//! last of them ends.

use core::sync::atomic::{AtomicU32, Ordering};

const REQUESTED: u32 = 0b01;
const EVER_RUN: u32 = 0b10;
const ONE_LOOP: u32 = 0b100;

/// Shared between server loops and whoever stops them. `const`-constructible,
/// so it can live in a `static` for an interrupt handler.
#[derive(Debug)]
pub struct ShutdownFlag {
    /// Bit 0: a stop is requested; bit 1: a loop has run; the rest: loops running.
    bits: AtomicU32,
}

impl Default for ShutdownFlag {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownFlag {
    /// A flag for servers that have never served.
    pub const fn new() -> Self {
        Self {
            bits: AtomicU32::new(0),
        }
    }

    fn running(bits: u32) -> u32 {
        bits / ONE_LOOP
    }

    /// Asks the running loops (or, before any loop has run, the first ones) to
    /// stop. Returns whether a loop will see the request; a stale request (no
    /// loop running, one has run before) is dropped and `false` is returned.
    pub fn request(&self) -> bool {
        let update = |bits: u32| {
            let stale = Self::running(bits) == 0 && bits & EVER_RUN != 0;
            (!stale).then_some(bits | REQUESTED)
        };
        self.bits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, update)
            .is_ok()
    }

    /// Whether a running loop has been asked to stop and has not yet stopped.
    /// A request made before any loop ran is pending, not yet "requested": it
    /// does not wake waits outside `serve_forever`.
    pub fn is_requested(&self) -> bool {
        let bits = self.bits.load(Ordering::Acquire);
        bits & REQUESTED != 0 && Self::running(bits) > 0
    }

    /// Whether a loop is running now.
    pub fn is_serving(&self) -> bool {
        Self::running(self.bits.load(Ordering::Acquire)) > 0
    }

    /// Whether a loop has run and none runs now.
    pub fn is_stopped(&self) -> bool {
        let bits = self.bits.load(Ordering::Acquire);
        bits & EVER_RUN != 0 && Self::running(bits) == 0
    }

    /// Registers a loop of one's own (not `serve_forever`, which does this
    /// itself) as running until the returned value is dropped, so that
    /// [`request`](Self::request) stops it and [`is_stopped`](Self::is_stopped)
    /// waits for it. `None` when a stop is already requested (before the
    /// first loop, or for the loops running now): the loop must not start.
    pub fn enter_loop(&self) -> Option<RunningLoop<'_>> {
        if self.begin() {
            Some(RunningLoop(self))
        } else {
            self.end();
            None
        }
    }

    /// Marks a loop as started; every `begin` needs its [`end`](Self::end).
    /// Returns `false` when a stop is already requested (before the first
    /// loop, or for the loops running now): the loop must then stop at once.
    pub(crate) fn begin(&self) -> bool {
        let previous = self.bits.fetch_add(ONE_LOOP, Ordering::AcqRel);
        self.bits.fetch_or(EVER_RUN, Ordering::AcqRel);
        previous & REQUESTED == 0
    }

    /// Marks a loop as stopped; the last loop to stop consumes the request.
    pub(crate) fn end(&self) {
        let update = |bits: u32| {
            if Self::running(bits) == 0 {
                return None; // an `end` without `begin`: nothing to undo
            }
            let bits = bits - ONE_LOOP;
            Some(if Self::running(bits) == 0 {
                bits & !REQUESTED
            } else {
                bits
            })
        };
        let _ = self
            .bits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, update);
    }
}

/// A loop registered on a [`ShutdownFlag`] ([`ShutdownFlag::enter_loop`]):
/// it counts as running until this is dropped, even when a panic unwinds
/// through the loop.
#[derive(Debug)]
pub struct RunningLoop<'a>(&'a ShutdownFlag);

impl Drop for RunningLoop<'_> {
    fn drop(&mut self) {
        self.0.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_before_first_loop_stops_that_loop() {
        let flag = ShutdownFlag::new();
        assert!(flag.request());
        assert!(!flag.is_requested(), "pending, not waking anything yet");
        assert!(!flag.begin());
        flag.end();
        assert!(flag.is_stopped());
        assert!(!flag.is_requested());
    }

    #[test]
    fn stale_request_is_dropped() {
        let flag = ShutdownFlag::new();
        assert!(flag.begin());
        assert!(flag.request());
        flag.end();
        assert!(!flag.request(), "a request after the loop stopped is stale");
        assert!(flag.begin(), "the next loop runs");
        assert!(!flag.is_requested());
        flag.end();
    }

    #[test]
    fn request_while_serving_is_seen() {
        let flag = ShutdownFlag::new();
        assert!(flag.begin());
        assert!(flag.is_serving());
        assert!(flag.request());
        assert!(flag.request(), "twice is harmless");
        assert!(flag.is_requested());
        flag.end();
        assert!(!flag.is_requested());
    }

    #[test]
    fn one_flag_stops_every_loop_sharing_it() {
        let flag = ShutdownFlag::new();
        assert!(flag.begin());
        assert!(flag.begin());
        assert!(flag.request());
        flag.end();
        assert!(
            flag.is_requested(),
            "the second loop must still see the request"
        );
        flag.end();
        assert!(!flag.is_requested());
        assert!(flag.is_stopped());
    }
}
