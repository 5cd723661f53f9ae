//! Bounds on what the default reports write, so a flood of failing
//! requests or of replies to a peer that does not read cannot fill a disk.
//!
//! Only with the `std` feature, where a clock exists without a backend; a
//! firmware's `defmt` log goes to a debug probe, not to a disk.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// At most `burst` reports in any `window`; the rest are counted.
#[derive(Debug)]
pub(crate) struct Limiter {
    burst: u32,
    window: Duration,
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    written: u32,
    suppressed: u64,
}

/// What the caller may write now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    /// Write the report; this many were left out since the last one written.
    Write { suppressed_before: u64 },
    /// Leave this report out (it is counted).
    Suppress,
}

impl Limiter {
    pub(crate) const fn new(burst: u32, window: Duration) -> Self {
        Self {
            burst,
            window,
            state: Mutex::new(Window {
                start: None,
                written: 0,
                suppressed: 0,
            }),
        }
    }

    /// Decides whether one more report may be written now.
    pub(crate) fn admit(&self) -> Admit {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if state
            .start
            .is_none_or(|start| now.duration_since(start) >= self.window)
        {
            state.start = Some(now);
            state.written = 0;
        }
        if state.written >= self.burst {
            state.suppressed += 1;
            return Admit::Suppress;
        }
        state.written += 1;
        Admit::Write {
            suppressed_before: core::mem::take(&mut state.suppressed),
        }
    }
}

/// `handle_error`'s default report: 10 a second.
pub(crate) static ERRORS: Limiter = Limiter::new(10, Duration::from_secs(1));

/// Dropped datagram replies: one report every 10 s, with the count.
pub(crate) static DROPPED_REPLIES: Limiter = Limiter::new(1, Duration::from_secs(10));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_count() {
        let limiter = Limiter::new(2, Duration::from_secs(3600));
        assert_eq!(
            limiter.admit(),
            Admit::Write {
                suppressed_before: 0
            }
        );
        assert_eq!(
            limiter.admit(),
            Admit::Write {
                suppressed_before: 0
            }
        );
        assert_eq!(limiter.admit(), Admit::Suppress);
        assert_eq!(limiter.admit(), Admit::Suppress);
    }

    #[test]
    fn a_new_window_writes_and_counts_what_was_left_out() {
        let limiter = Limiter::new(1, Duration::from_millis(20));
        assert_eq!(
            limiter.admit(),
            Admit::Write {
                suppressed_before: 0
            }
        );
        assert_eq!(limiter.admit(), Admit::Suppress);
        std::thread::sleep(Duration::from_millis(25));
        assert_eq!(
            limiter.admit(),
            Admit::Write {
                suppressed_before: 1
            }
        );
    }
}
