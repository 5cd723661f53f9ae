//! A graceful stop for the servers of one stack, asked for from anywhere:
//! another thread, a signal handler, an interrupt.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use core::time::Duration;

use socketserver_core::ShutdownFlag;
use socketserver_core::time::Instant;

/// No grace period was asked for: the requests in flight may take as long
/// as they need.
const NO_GRACE: u32 = u32::MAX;

/// Stops the servers of a stack that watches it
/// ([`Stack::with_stop`](crate::Stack::with_stop)): std's `ShutdownHandle`
/// for smoltcp. `Sync` and `const`-constructible, so it can be a `static`
/// shared with a signal handler or an interrupt; it holds no socket.
///
/// [`Stop::shutdown_within`] is the stop a service wants: accepting ends at
/// once, the requests in flight get `grace` to finish, and those still open
/// after it are cut (RST), so each of their handlers sees an error. Serve
/// with [`serve_until_stopped`](crate::serve_until_stopped) so that a
/// `Multiplexed` server's requests get their grace period too.
///
/// One `Stop` is for one stop: once asked for it stays asked, and after the
/// grace period the stack cuts every blocking read or write; make a new
/// stack (and `Stop`) to serve again.
#[derive(Debug)]
pub struct Stop {
    flag: ShutdownFlag,
    /// A stop was asked for. Unlike the flag's request, which the loops
    /// consume as they stop, it stays: the grace period counts from when a
    /// stack first saw it.
    asked: AtomicBool,
    cut: AtomicBool,
    /// The grace period in milliseconds, or [`NO_GRACE`].
    grace_ms: AtomicU32,
}

impl Default for Stop {
    fn default() -> Self {
        Self::new()
    }
}

impl Stop {
    /// A stop not asked for yet.
    pub const fn new() -> Self {
        Self {
            flag: ShutdownFlag::new(),
            asked: AtomicBool::new(false),
            cut: AtomicBool::new(false),
            grace_ms: AtomicU32::new(NO_GRACE),
        }
    }

    /// Python's `shutdown()`: the servers stop accepting, and the requests
    /// in flight finish in their own time. Never blocks.
    pub fn shutdown(&self) {
        self.ask();
    }

    /// A graceful stop: the servers stop accepting at once, the requests in
    /// flight get `grace` (from when the stack first sees the request, at
    /// its next poll) to finish, and those still open after it are cut.
    /// Never blocks. A second call can only shorten the grace.
    pub fn shutdown_within(&self, grace: Duration) {
        let ms = u32::try_from(grace.as_millis()).unwrap_or(NO_GRACE - 1);
        // The grace before the request: a stack that sees the request sees it.
        self.grace_ms
            .fetch_min(ms.min(NO_GRACE - 1), Ordering::Release);
        self.ask();
    }

    /// Cuts the requests in flight now (a second SIGTERM, say), whatever
    /// grace is left.
    pub fn cut_in_flight(&self) {
        self.cut.store(true, Ordering::Release);
        self.ask();
    }

    fn ask(&self) {
        self.asked.store(true, Ordering::Release);
        self.flag.request();
    }

    /// The shutdown flag the servers watch.
    pub fn flag(&self) -> &ShutdownFlag {
        &self.flag
    }

    /// Whether a stop was asked for (it stays asked).
    pub(crate) fn is_asked(&self) -> bool {
        self.asked.load(Ordering::Acquire)
    }

    /// When the requests in flight must end, for a stop first seen at
    /// `seen`: at once once cut, else when the grace period is over
    /// (`None`: no grace period, they take their time).
    pub(crate) fn deadline(&self, seen: Instant) -> Option<Instant> {
        if self.cut.load(Ordering::Acquire) {
            return Some(seen);
        }
        let ms = self.grace_ms.load(Ordering::Acquire);
        // In microseconds as u64: no u128 of `Duration` on the way (firmware flash).
        let micros = seen.as_micros().saturating_add(u64::from(ms) * 1000);
        (ms != NO_GRACE).then_some(Instant::from_micros(micros))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEEN: Instant = Instant::from_micros(1_000_000);

    #[test]
    fn a_stop_not_asked_for_has_no_deadline() {
        let stop = Stop::new();
        assert!(!stop.is_asked());
        assert_eq!(stop.deadline(SEEN), None);
    }

    #[test]
    fn shutdown_lets_requests_take_their_time() {
        let stop = Stop::new();
        stop.shutdown();
        assert!(stop.is_asked());
        assert_eq!(stop.deadline(SEEN), None);
    }

    #[test]
    fn a_second_grace_can_only_shorten_the_first() {
        let stop = Stop::new();
        stop.shutdown_within(Duration::from_millis(500));
        assert_eq!(stop.deadline(SEEN), Some(Instant::from_micros(1_500_000)));
        stop.shutdown_within(Duration::from_secs(10));
        assert_eq!(stop.deadline(SEEN), Some(Instant::from_micros(1_500_000)));
        stop.shutdown_within(Duration::from_millis(100));
        assert_eq!(stop.deadline(SEEN), Some(Instant::from_micros(1_100_000)));
    }

    #[test]
    fn a_cut_ends_the_grace_at_once() {
        let stop = Stop::new();
        stop.shutdown_within(Duration::from_secs(60));
        stop.cut_in_flight();
        assert_eq!(stop.deadline(SEEN), Some(SEEN));
    }

    #[test]
    fn a_grace_too_long_to_count_is_still_a_grace() {
        let stop = Stop::new();
        stop.shutdown_within(Duration::MAX);
        assert!(stop.deadline(SEEN).is_some_and(|at| at > SEEN));
    }
}
