//! Monotonic time, in a form every backend can supply.

pub use core::time::Duration;

/// A point on a monotonic clock, in microseconds since an arbitrary origin.
///
/// It mirrors `std::time::Instant` but is plain data, so a firmware timer or
/// smoltcp's `Instant` converts to it without a heap or an OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant {
    micros: u64,
}

impl Instant {
    /// The instant `micros` microseconds after the clock's origin.
    pub const fn from_micros(micros: u64) -> Self {
        Self { micros }
    }

    /// The instant `millis` milliseconds after the clock's origin.
    pub const fn from_millis(millis: u64) -> Self {
        Self {
            micros: millis.saturating_mul(1000),
        }
    }

    /// Microseconds since the clock's origin.
    pub const fn as_micros(self) -> u64 {
        self.micros
    }

    /// This instant moved `d` later, saturating at the end of time.
    pub fn saturating_add(self, d: Duration) -> Self {
        let add = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        Self {
            micros: self.micros.saturating_add(add),
        }
    }

    /// How long after `earlier` this instant is; zero if it is not later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.micros.saturating_sub(earlier.micros))
    }
}

/// The earlier of two optional instants (`None`: never).
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A monotonic clock, Python's `time.monotonic`.
pub trait Clock {
    /// The current instant. Must never go backwards.
    fn now(&self) -> Instant;
}
