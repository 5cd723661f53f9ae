//! Driving the stack while something waits: send, receive, check whether
//! the waiter can go on, and only then idle until smoltcp's `poll_delay` or
//! a deadline.

use core::time::Duration;

use socketserver_core::time::Instant;

use crate::error::Error;
use crate::handle::NetRef;

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
///
/// Fails with [`Error::StackBusy`] while the stack is borrowed elsewhere.
pub(crate) fn drive(
    net: NetRef<'_, '_>,
    deadline: Option<Instant>,
    mut ready: impl FnMut() -> bool,
) -> Result<(), Error> {
    net.with(|stack| {
        stack.flush();
        stack.poll_ingress();
    })?;
    if ready() {
        return Ok(());
    }
    net.with(|stack| {
        // About to sleep: acknowledge what came in, send what is due.
        stack.flush();
        let until_deadline = deadline.map(|d| d.saturating_duration_since(stack.now()));
        let timeout = shorter(shorter(stack.poll_delay(), Some(MAX_IDLE)), until_deadline);
        if let Some(timeout) = timeout.filter(|t| !t.is_zero()) {
            stack.idle(Some(timeout));
        }
        stack.poll_ingress();
    })?;
    if !ready() {
        // The caller comes back, or may not for a while (a deadline passed):
        // what the frames just received call for (ACKs, SYN-ACKs) leaves now.
        net.with(|stack| stack.flush())?;
    }
    Ok(())
}

/// The shorter of two optional durations (`None`: no limit).
pub(crate) fn shorter(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
