//! Driving the stack while something waits: send, receive, check whether
//! the waiter can go on, and only then idle until smoltcp's `poll_delay` or
//! a deadline.

use core::time::Duration;

use socketserver_core::time::Instant;

use crate::stack::NetRef;

/// Longest single idle. Bounds how late a shutdown request made from another
/// thread is seen, since nothing can interrupt an idle from outside.
pub(crate) const MAX_IDLE: Duration = Duration::from_millis(20);

/// One round: send what sockets queued, receive; unless `ready` says the
/// waiter can go on, send again, idle until the stack or `deadline` needs
/// attention (at most [`MAX_IDLE`]) and receive.
///
/// `ready` is asked after each receive, with the stack not borrowed:
/// - a receive may bring what the waiter waits for (a frame that arrived
///   since the last look), and an idle only ends at the next frame. Idling
///   then leaves a reader whose request already sits in its buffer asleep
///   until its peer, waiting for the reply, sends nothing, for up to
///   [`MAX_IDLE`];
/// - when the waiter can go on, nothing is sent after the receive: the
///   reply it writes leaves at its next flush or wait, which sends first,
///   in one segment with the ACK of the request. Sending at once would put
///   a pure ACK on the wire first: one more frame per request, which over a
///   TAP device is one more system call and a pass of the peer's TCP stack.
///   The ACK waits only while the waiter works before its next I/O call.
pub(crate) fn drive(
    net: NetRef<'_, '_>,
    deadline: Option<Instant>,
    mut ready: impl FnMut() -> bool,
) {
    {
        let mut stack = net.borrow_mut();
        stack.flush();
        stack.poll_ingress();
    }
    if ready() {
        return;
    }
    {
        let mut stack = net.borrow_mut();
        // About to sleep: acknowledge what came in, send what is due.
        stack.flush();
        let mut timeout = stack.poll_delay().map_or(MAX_IDLE, |d| d.min(MAX_IDLE));
        if let Some(deadline) = deadline {
            timeout = timeout.min(deadline.saturating_duration_since(stack.now()));
        }
        if !timeout.is_zero() {
            stack.idle(Some(timeout));
        }
        stack.poll_ingress();
    }
    if !ready() {
        // The caller comes back, or may not for a while (a deadline passed):
        // what the frames just received call for (ACKs, SYN-ACKs) leaves now.
        net.borrow_mut().flush();
    }
}
