//! Driving the stack while something waits: poll, idle until smoltcp's
//! `poll_delay` or a deadline, poll again.

use core::time::Duration;

use socketserver_core::time::Instant;

use crate::stack::NetRef;

/// Longest single idle. Bounds how late a shutdown request made from another
/// thread is seen, since nothing can interrupt an idle from outside.
pub(crate) const MAX_IDLE: Duration = Duration::from_millis(20);

/// One round: poll; if nothing is due, idle until the stack or `deadline`
/// needs attention (at most [`MAX_IDLE`]); poll again.
pub(crate) fn drive(net: NetRef<'_, '_>, deadline: Option<Instant>) {
    let mut stack = net.borrow_mut();
    stack.poll();
    let mut timeout = stack.poll_delay().map_or(MAX_IDLE, |d| d.min(MAX_IDLE));
    if let Some(deadline) = deadline {
        timeout = timeout.min(deadline.saturating_duration_since(stack.now()));
    }
    if !timeout.is_zero() {
        stack.idle(Some(timeout));
    }
    stack.poll();
}
