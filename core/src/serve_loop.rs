//! `handle_request` and `serve_forever`, written once for stream and datagram servers.

use crate::shutdown::ShutdownFlag;
use crate::time::{Duration, Instant};

/// New requests one pass of `serve_forever` or `serve_ready` may take: a backlog of
/// thousands drains in a few passes, not one pass per client, while a pass
/// stays short enough for held requests and a shutdown not to wait.
pub(crate) const ACCEPT_BATCH: usize = 64;

/// What one `handle_request` call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Handled {
    /// A request was taken and processed (or handed to a worker).
    Request,
    /// The timeout passed first; `handle_timeout` ran.
    TimedOut,
}

/// The steps a server offers its loops.
pub(crate) trait Pass {
    type WaitError;
    fn flag(&self) -> &ShutdownFlag;
    fn now(&self) -> Instant;
    fn timeout(&self) -> Option<Duration>;
    /// Sleeps until something may be ready or `deadline`.
    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<(), Self::WaitError>;
    /// Advances held requests and takes at most `batch` new ones (fewer
    /// when none waits, the strategy is full, or a shutdown is requested).
    fn take_ready(&mut self, batch: usize) -> Taken;
    /// `service_actions`, of the hooks and of the strategy.
    fn service_actions(&mut self);
    /// `handle_timeout`, of the hooks and of the strategy.
    fn handle_timeout(&mut self);
}

/// Python's `handle_request`: one request, or `handle_timeout` after the timeout.
pub(crate) fn handle_request<P: Pass>(server: &mut P) -> Result<Handled, P::WaitError> {
    let deadline = server.timeout().map(|t| server.now().saturating_add(t));
    loop {
        server.wait_until(deadline)?;
        if server.take_ready(1).new_request {
            return Ok(Handled::Request);
        }
        // Early wake-ups (signals, readiness that another process took) loop
        // again with the time that is left, as Python's select loop does.
        if deadline.is_some_and(|d| server.now() >= d) {
            server.handle_timeout();
            return Ok(Handled::TimedOut);
        }
    }
}

/// Python's `serve_forever`: passes of wait, take, `service_actions`, until
/// shutdown is requested.
pub(crate) fn serve_forever<P: Pass>(
    server: &mut P,
    poll_interval: Duration,
) -> Result<(), P::WaitError> {
    // `end` runs even when a handler panics through the loop (`Sequential` does
    // not catch panics): otherwise the flag would report a loop running
    // forever, and a later `shutdown()` would wait for it forever, where
    // Python's `finally` clears its state.
    let running = Running(server);
    if running.0.flag().begin() {
        run_passes(&mut *running.0, poll_interval)
    } else {
        Ok(())
    }
}

/// Ends a loop's registration on the shutdown flag when dropped.
struct Running<'a, P: Pass>(&'a mut P);

impl<P: Pass> Drop for Running<'_, P> {
    fn drop(&mut self) {
        self.0.flag().end();
    }
}

fn run_passes<P: Pass>(server: &mut P, poll_interval: Duration) -> Result<(), P::WaitError> {
    while !server.flag().is_requested() {
        let deadline = server.now().saturating_add(poll_interval);
        // One pass is one wake-up for work or one poll interval, as one
        // `select()` in Python: a waiter that wakes early with nothing to do
        // waits again, so `service_actions` keeps Python's pace.
        loop {
            server.wait_until(Some(deadline))?;
            // bpo-35017: a request that arrives with the shutdown is not taken.
            if server.flag().is_requested() {
                return Ok(());
            }
            let taken = server.take_ready(ACCEPT_BATCH);
            if taken.new_request || taken.progressed || server.now() >= deadline {
                break;
            }
        }
        server.service_actions();
    }
    Ok(())
}

/// One pass that does not wait: for firmware main loops. Returns whether
/// anything moved, so a caller knows whether another pass may find more work.
pub(crate) fn serve_ready<P: Pass>(server: &mut P) -> bool {
    let taken = server.take_ready(ACCEPT_BATCH);
    server.service_actions();
    taken.new_request || taken.progressed
}

/// What one pass took.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Taken {
    /// A new request was accepted (or a datagram received).
    pub(crate) new_request: bool,
    /// A request held by the strategy moved.
    pub(crate) progressed: bool,
}
