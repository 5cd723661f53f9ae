//! The shutdown request: an atomic flag, safe from another thread or an interrupt.
//!
//! Python's `shutdown()` has two traps this flag removes:
//! - called before `serve_forever` has ever run, Python blocks forever. Here a
//!   request made before the first loop is kept, and that first
//!   `serve_forever` returns at once (Python's start-up race, which code such
//!   as "spawn the server thread, then shut it down" relies on).
//! - called after `serve_forever` has returned, Python leaves the flag set and
//!   the *next* `serve_forever` returns at once. Here such a stale request is
//!   dropped: it arrives when no loop runs and one already has.

use core::sync::atomic::{AtomicU8, Ordering};

const NEVER_RUN: u8 = 0;
const SERVING: u8 = 1;
const STOPPED: u8 = 2;
const STATE_MASK: u8 = 0b11;
const REQUESTED: u8 = 0b100;

/// Shared between a server loop and whoever stops it. `const`-constructible, so
/// it can live in a `static` for an interrupt handler.
#[derive(Debug)]
pub struct ShutdownFlag {
    bits: AtomicU8,
}

impl Default for ShutdownFlag {
    fn default() -> Self {
        Self::new()
    }
}

impl ShutdownFlag {
    /// A flag for a server that has never served.
    pub const fn new() -> Self {
        Self {
            bits: AtomicU8::new(NEVER_RUN),
        }
    }

    /// Asks the running loop (or, before the first loop, the first one) to stop.
    /// Returns whether a loop will see the request; a stale request (no loop
    /// running, one has run before) is dropped and `false` is returned.
    pub fn request(&self) -> bool {
        let mut current = self.bits.load(Ordering::Acquire);
        loop {
            if current & STATE_MASK == STOPPED {
                return false;
            }
            match self.bits.compare_exchange_weak(
                current,
                current | REQUESTED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(seen) => current = seen,
            }
        }
    }

    /// Whether a stop has been requested and not yet honoured.
    pub fn is_requested(&self) -> bool {
        self.bits.load(Ordering::Acquire) & REQUESTED != 0
    }

    /// Whether a loop is running now.
    pub fn is_serving(&self) -> bool {
        self.bits.load(Ordering::Acquire) & STATE_MASK == SERVING
    }

    /// Whether a loop has run and stopped, and none runs now.
    pub fn is_stopped(&self) -> bool {
        self.bits.load(Ordering::Acquire) & STATE_MASK == STOPPED
    }

    /// Marks a loop as started. Returns `false` when a request made before the
    /// first loop is pending: the loop must then stop at once.
    pub fn begin(&self) -> bool {
        let previous = self.bits.swap(SERVING, Ordering::AcqRel);
        if previous & REQUESTED != 0 {
            self.bits.store(STOPPED, Ordering::Release);
            return false;
        }
        true
    }

    /// Marks the loop as stopped and consumes any request.
    pub fn end(&self) {
        self.bits.store(STOPPED, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_before_first_loop_stops_that_loop() {
        let flag = ShutdownFlag::new();
        assert!(flag.request());
        assert!(!flag.begin());
        assert!(flag.is_stopped());
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
}
