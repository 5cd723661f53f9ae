//! Core's [`Wait`] over the stack, and the non-blocking `poll_and_serve` for main loops.

use core::time::Duration;

use socketserver_core::time::{Clock, Instant};
use socketserver_core::{ShutdownFlag, Wait, wake_count};

use crate::drive::drive;
use crate::error::Error;
use crate::stack::NetRef;
use crate::tcp::StackTcpListener;
use crate::udp::StackUdpSocket;

/// Core's selector for this backend: waits by driving the stack (poll, then
/// idle until smoltcp's `poll_delay`, the deadline, or at most 20 ms so a
/// shutdown requested from another thread is seen promptly).
#[derive(Clone, Copy)]
pub struct Waiter<'s, 'a> {
    net: NetRef<'s, 'a>,
    flag: &'s ShutdownFlag,
}

impl core::fmt::Debug for Waiter<'_, '_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Waiter")
            .field("flag", self.flag)
            .finish_non_exhaustive()
    }
}

impl<'s, 'a> Waiter<'s, 'a> {
    /// A waiter over `net` that watches `flag`.
    pub fn new(net: NetRef<'s, 'a>, flag: &'s ShutdownFlag) -> Self {
        Self { net, flag }
    }

    /// The stack.
    pub fn net(&self) -> NetRef<'s, 'a> {
        self.net
    }

    fn wait_with(&mut self, mut ready: impl FnMut() -> bool, deadline: Option<Instant>) {
        if self.flag.is_requested() {
            return;
        }
        let flag = self.flag;
        // A multiplexed request woken by a frame this drive received can
        // move now: idling until the next frame or timer would leave it
        // asleep (its waker fired inside the stack, not in `ready`).
        let woken = wake_count();
        drive(self.net, deadline, || {
            ready() || flag.is_requested() || wake_count() != woken
        });
    }
}

impl Clock for Waiter<'_, '_> {
    fn now(&self) -> Instant {
        self.net.borrow().now()
    }
}

impl<'s, 'a> Wait<StackTcpListener<'s, 'a>> for Waiter<'s, 'a> {
    type Error = Error;

    fn wait(
        &mut self,
        server: Option<&StackTcpListener<'s, 'a>>,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        self.wait_with(|| server.is_some_and(StackTcpListener::is_ready), deadline);
        Ok(())
    }

    fn shutdown_flag(&self) -> &ShutdownFlag {
        self.flag
    }
}

impl<'s, 'a> Wait<StackUdpSocket<'s, 'a>> for Waiter<'s, 'a> {
    type Error = Error;

    fn wait(
        &mut self,
        server: Option<&StackUdpSocket<'s, 'a>>,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        self.wait_with(|| server.is_some_and(StackUdpSocket::is_ready), deadline);
        Ok(())
    }

    fn shutdown_flag(&self) -> &ShutdownFlag {
        self.flag
    }
}

/// One non-blocking turn for a firmware main loop: polls the stack, runs
/// `serve` (your servers' `serve_ready`, returning whether any of them moved), polls
/// again to send what they queued, and returns how long the loop may sleep
/// before the next turn (`None`: until a frame arrives).
///
/// Returns `Some(Duration::ZERO)` (call again at once) when a server moved or
/// the second poll changed a socket: bytes that reached a socket buffer raise
/// no interrupt, so sleeping then could leave them unserved.
///
/// ```no_run
/// # fn example(net: socketserver_smoltcp::NetRef<'_, '_>, mut serve: impl FnMut() -> bool) {
/// loop {
///     let next = socketserver_smoltcp::poll_and_serve(net, &mut serve);
///     // sleep (wfi, a timer) for at most `next`
/// #   let _ = next;
/// }
/// # }
/// ```
pub fn poll_and_serve(net: NetRef<'_, '_>, serve: impl FnOnce() -> bool) -> Option<Duration> {
    net.borrow_mut().poll();
    let moved = serve();
    let mut stack = net.borrow_mut();
    let changed = stack.poll();
    if moved || changed {
        return Some(Duration::ZERO);
    }
    stack.poll_delay()
}
