//! What a stack does while it has nothing to do.

use core::time::Duration;

/// What a stack does while it has nothing to do: sleep on the device, wait
/// for an interrupt, or return at once and let the caller spin.
pub trait Idle {
    /// Sleeps until the device may have a frame, or `timeout` passes
    /// (`None`: until a frame). Returning early is always allowed.
    fn idle(&mut self, timeout: Option<Duration>);
}

/// Returns at once: the caller's loop spins. For firmware that polls from a
/// main loop and sleeps itself (`wfi`), or for tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spin;

impl Idle for Spin {
    fn idle(&mut self, _timeout: Option<Duration>) {}
}

impl<F: FnMut(Option<Duration>)> Idle for F {
    fn idle(&mut self, timeout: Option<Duration>) {
        self(timeout)
    }
}
