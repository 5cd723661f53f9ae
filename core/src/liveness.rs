//! How much power an idle or slow peer has: the idle timeout, the trickle
//! defence and eviction at capacity, as one policy with one tracker.
//!
//! A request holds something scarce (a slot, a thread, a child, a smoltcp
//! socket). A silent peer would hold it forever, and a peer that sends one
//! byte every few seconds defeats any idle timeout. [`IdlePolicy`] bounds
//! both by default, and [`Activity`] is the one piece of code that applies
//! it: each backend and strategy feeds it the bytes a request moves and asks
//! it whether the request has expired.

use crate::time::{Duration, Instant, earliest};

/// How long a request may move no byte before it is ended, by default.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A minimum rate to turn on with [`IdlePolicy::min_rate`]: fewer than 64
/// bytes moved in 60 s ends a request. It is not on by default: a healthy
/// client that sends a small heartbeat, or a short request after a quiet
/// minute, moves as little as a peer that trickles a byte every few seconds
/// to keep a slot. By default tricklers are bounded at capacity instead: a
/// trickler is idle between its bytes, so a waiting client evicts it.
pub const SUGGESTED_MIN_RATE: MinRate = MinRate {
    bytes: 64,
    per: Duration::from_secs(60),
};

/// How long a request must have been idle before a client waiting at
/// capacity may evict it, by default.
pub const DEFAULT_EVICT_AFTER: Duration = Duration::from_secs(1);

/// The least a request must move, in both directions together, in every
/// window of `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MinRate {
    /// Bytes read plus bytes written.
    pub bytes: u64,
    /// The window they must move in.
    pub per: Duration,
}

/// Bounds on idle and slow peers. Every strategy and backend applies it;
/// [`IdlePolicy::default`] bounds idle peers (a 60 s idle timeout, eviction
/// at capacity after 1 s idle) and leaves the minimum rate off
/// ([`SUGGESTED_MIN_RATE`] turns it on); [`IdlePolicy::unbounded`] is
/// Python's behaviour (no bound at all).
///
/// ```
/// use socketserver_core::IdlePolicy;
/// use socketserver_core::time::Duration;
///
/// let policy = IdlePolicy::default().idle_timeout(Some(Duration::from_secs(10)));
/// assert_eq!(policy.idle_timeout_value(), Some(Duration::from_secs(10)));
/// assert!(IdlePolicy::unbounded().idle_timeout_value().is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IdlePolicy {
    idle_timeout: Option<Duration>,
    min_rate: Option<MinRate>,
    evict_after: Option<Duration>,
}

impl Default for IdlePolicy {
    /// [`DEFAULT_IDLE_TIMEOUT`] and [`DEFAULT_EVICT_AFTER`]; no minimum rate.
    fn default() -> Self {
        Self {
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            min_rate: None,
            evict_after: Some(DEFAULT_EVICT_AFTER),
        }
    }
}

impl IdlePolicy {
    /// No idle timeout, no trickle defence, no eviction: Python's behaviour.
    pub const fn unbounded() -> Self {
        Self {
            idle_timeout: None,
            min_rate: None,
            evict_after: None,
        }
    }

    /// Ends a request that moves no byte for this long (`None`: never).
    pub const fn idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Ends a request that moves less than this (`None`: no trickle defence).
    pub const fn min_rate(mut self, rate: Option<MinRate>) -> Self {
        self.min_rate = rate;
        self
    }

    /// At capacity, a new client may evict the longest-idle request once it
    /// has been idle this long (`None`: never evict; new clients wait).
    pub const fn evict_after(mut self, after: Option<Duration>) -> Self {
        self.evict_after = after;
        self
    }

    /// The idle timeout.
    pub const fn idle_timeout_value(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The trickle defence.
    pub const fn min_rate_value(&self) -> Option<MinRate> {
        self.min_rate
    }

    /// The eviction threshold.
    pub const fn evict_after_value(&self) -> Option<Duration> {
        self.evict_after
    }
}

/// Why a request's liveness ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Expiry {
    /// No byte moved for the idle timeout.
    Idle,
    /// Fewer bytes than the minimum rate moved in a window.
    TooSlow,
}

/// What one request has moved, and when: the tracker behind [`IdlePolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    last_moved: Instant,
    window_start: Instant,
    moved_in_window: u64,
}

impl Activity {
    /// A request that starts at `now`.
    pub const fn new(now: Instant) -> Self {
        Self {
            last_moved: now,
            window_start: now,
            moved_in_window: 0,
        }
    }

    /// Counts `bytes` moved at `now` (zero bytes are not activity).
    pub fn record(&mut self, now: Instant, bytes: usize) {
        if bytes > 0 {
            self.last_moved = now;
            self.moved_in_window = self.moved_in_window.saturating_add(bytes as u64);
        }
    }

    /// When the request last moved a byte (or started).
    pub fn last_moved(&self) -> Instant {
        self.last_moved
    }

    /// How long the request has moved nothing.
    pub fn idle_for(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_moved)
    }

    /// Whether the request has outlived `policy` at `now`. A window that has
    /// ended is judged and a new one begins, so call this as time passes
    /// (after each transfer, and at the instant [`Activity::deadline`] gives).
    pub fn check(&mut self, now: Instant, policy: &IdlePolicy) -> Result<(), Expiry> {
        if policy.idle_timeout.is_some_and(|t| self.idle_for(now) >= t) {
            return Err(Expiry::Idle);
        }
        if let Some(rate) = policy.min_rate
            && now.saturating_duration_since(self.window_start) >= rate.per
        {
            if self.moved_in_window < rate.bytes {
                return Err(Expiry::TooSlow);
            }
            self.window_start = now;
            self.moved_in_window = 0;
        }
        Ok(())
    }

    /// The next instant at which [`Activity::check`] may fail if nothing moves.
    pub fn deadline(&self, policy: &IdlePolicy) -> Option<Instant> {
        let idle = policy
            .idle_timeout
            .map(|t| self.last_moved.saturating_add(t));
        let window = policy
            .min_rate
            .map(|r| self.window_start.saturating_add(r.per));
        earliest(idle, window)
    }

    /// When a client waiting at capacity may evict this request, if it stays idle.
    pub fn evictable_at(&self, policy: &IdlePolicy) -> Option<Instant> {
        policy
            .evict_after
            .map(|after| self.last_moved.saturating_add(after))
    }

    /// Whether a client waiting at capacity may evict this request at `now`.
    pub fn is_evictable(&self, now: Instant, policy: &IdlePolicy) -> bool {
        policy
            .evict_after
            .is_some_and(|after| self.idle_for(now) >= after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    #[test]
    fn silence_expires_at_the_idle_timeout() {
        let policy = IdlePolicy::default().min_rate(None);
        let mut a = Activity::new(at(0));
        assert_eq!(a.check(at(59), &policy), Ok(()));
        a.record(at(59), 1);
        assert_eq!(a.check(at(118), &policy), Ok(()));
        assert_eq!(a.check(at(119), &policy), Err(Expiry::Idle));
    }

    #[test]
    fn a_trickle_expires_at_the_end_of_a_slow_window() {
        let policy = IdlePolicy::default().min_rate(Some(SUGGESTED_MIN_RATE));
        let mut a = Activity::new(at(0));
        // One byte every 3 s never trips the idle timeout...
        for s in (3..60).step_by(3) {
            a.record(at(s), 1);
            assert_eq!(a.check(at(s), &policy), Ok(()));
        }
        // ...but 19 bytes in a 60 s window is below 64.
        assert_eq!(a.check(at(60), &policy), Err(Expiry::TooSlow));
    }

    #[test]
    fn a_fast_window_starts_a_new_one() {
        let policy = IdlePolicy::default().min_rate(Some(SUGGESTED_MIN_RATE));
        let mut a = Activity::new(at(0));
        a.record(at(10), 1000);
        assert_eq!(a.check(at(60), &policy), Ok(()));
        assert_eq!(a.deadline(&policy), Some(at(70)), "idle 10 s + 60 s");
        a.record(at(61), 100);
        assert_eq!(a.check(at(120), &policy), Ok(()));
        assert_eq!(a.deadline(&policy), Some(at(121)), "idle since 61 s");
        assert_eq!(a.check(at(121), &policy), Err(Expiry::Idle));
    }

    #[test]
    fn eviction_needs_idleness() {
        let policy = IdlePolicy::default();
        let mut a = Activity::new(at(0));
        assert!(!a.is_evictable(Instant::from_millis(999), &policy));
        assert!(a.is_evictable(at(1), &policy));
        a.record(at(5), 1);
        assert!(!a.is_evictable(at(5), &policy));
        assert!(!a.is_evictable(at(5), &IdlePolicy::unbounded()));
    }
}
