//! The live handler threads of a `Threading` strategy, and the one wake-up
//! a finished thread owes the serve loop: only while the loop waits for a
//! thread to end (at the thread bound, or draining), never while it waits
//! on the listening socket. A wake-up costs the loop a poll(2) return, two
//! reads of the wake socket and a retried accept: under short requests
//! that was a quarter of the server's system calls per connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::waiter::LoopWaker;

/// Counts live threads; cloned into each thread's [`LiveGuard`].
#[derive(Debug, Default)]
pub(crate) struct LiveCount {
    shared: Arc<Counts>,
    /// `ended` when the loop last looked at the count (see [`LiveCount::observe`]).
    seen_ended: AtomicUsize,
}

#[derive(Debug, Default)]
struct Counts {
    live: AtomicUsize,
    /// Threads that have ended, ever: tells the loop whether one ended
    /// between its look at the count and the start of its wait.
    ended: AtomicUsize,
    /// The loop waits for a thread to end: a finished thread wakes it.
    wanted: AtomicBool,
}

impl LiveCount {
    /// Threads running now.
    pub(crate) fn live(&self) -> usize {
        self.shared.live.load(Ordering::SeqCst)
    }

    /// Threads running now, as the loop sees them before deciding whether
    /// to wait for one (`can_accept`, `in_flight`).
    pub(crate) fn observe(&self) -> usize {
        // `ended` first: a thread counted here has already left `live`.
        let ended = self.shared.ended.load(Ordering::SeqCst);
        self.seen_ended.store(ended, Ordering::Relaxed);
        self.live()
    }

    /// Called as the loop starts a wait. `for_thread`: the wait is for a
    /// thread to end (the listening socket is left out). Returns `false`
    /// when a thread ended since [`observe`](Self::observe), so the loop
    /// must look again instead of waiting for a wake-up that already passed.
    pub(crate) fn begin_wait(&self, for_thread: bool) -> bool {
        // SeqCst on both sides: either this load sees the thread's `ended`,
        // or the thread's load of `wanted` sees this store and wakes the loop.
        self.shared.wanted.store(for_thread, Ordering::SeqCst);
        !for_thread
            || self.shared.ended.load(Ordering::SeqCst) == self.seen_ended.load(Ordering::Relaxed)
    }

    /// Counts a new thread; the guard, moved into it, uncounts it.
    pub(crate) fn start(&self, waker: Option<LoopWaker>) -> LiveGuard {
        self.shared.live.fetch_add(1, Ordering::SeqCst);
        LiveGuard {
            shared: Arc::clone(&self.shared),
            waker,
        }
    }
}

/// Uncounts a live thread when dropped, and wakes the loop if it waits for that.
#[derive(Debug)]
pub(crate) struct LiveGuard {
    shared: Arc<Counts>,
    waker: Option<LoopWaker>,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Ordering::SeqCst);
        self.shared.ended.fetch_add(1, Ordering::SeqCst);
        if self.shared.wanted.load(Ordering::SeqCst)
            && let Some(waker) = &self.waker
        {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_that_ends_before_the_wait_is_seen() {
        let count = LiveCount::default();
        let guard = count.start(None);
        assert_eq!(count.observe(), 1);
        drop(guard);
        assert!(!count.begin_wait(true), "ended after the look: look again");
        assert_eq!(count.observe(), 0);
        assert!(count.begin_wait(true));
        assert!(count.begin_wait(false));
    }
}
