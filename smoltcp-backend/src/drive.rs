//! Driving the stack while something waits: poll, check whether the waiter
//! can go on, and only then idle until smoltcp's `poll_delay` or a deadline,
//! and poll again.

use core::time::Duration;

use socketserver_core::time::Instant;

use crate::stack::NetRef;

/// Longest single idle. Bounds how late a shutdown request made from another
/// thread is seen, since nothing can interrupt an idle from outside.
pub(crate) const MAX_IDLE: Duration = Duration::from_millis(20);

/// One round: poll; unless `ready` says the waiter can go on, idle until the
/// stack or `deadline` needs attention (at most [`MAX_IDLE`]); poll again.
///
/// `ready` is asked after the first poll, with the stack not borrowed: that
/// poll may itself bring what the waiter waits for (a frame that arrived
/// since the last look), and the idle only ends at the next frame. Idling
/// then leaves a reader whose request already sits in its buffer asleep
/// until its peer, waiting for the reply, sends nothing, for up to
/// [`MAX_IDLE`].
pub(crate) fn drive(net: NetRef<'_, '_>, deadline: Option<Instant>, ready: impl FnOnce() -> bool) {
    net.borrow_mut().poll();
    if ready() {
        return;
    }
    let mut stack = net.borrow_mut();
    let mut timeout = stack.poll_delay().map_or(MAX_IDLE, |d| d.min(MAX_IDLE));
    if let Some(deadline) = deadline {
        timeout = timeout.min(deadline.saturating_duration_since(stack.now()));
    }
    if !timeout.is_zero() {
        stack.idle(Some(timeout));
    }
    stack.poll();
}
