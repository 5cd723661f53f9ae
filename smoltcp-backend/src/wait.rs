//! Core's [`Wait`] over the stack, and the non-blocking `poll_and_serve` for main loops.

use core::cell::Cell;
use core::time::Duration;

use socketserver_core::time::{Clock, Instant};
use socketserver_core::{ShutdownFlag, Wait, wake_count};

use crate::drive::drive;
use crate::error::Error;
use crate::handle::NetRef;
use crate::tcp::StackTcpListener;
use crate::udp::StackUdpSocket;

/// A server socket a [`Waiter`] can wait on: the crate's
/// [`StackTcpListener`](crate::StackTcpListener) and
/// [`StackUdpSocket`](crate::StackUdpSocket). Sealed (public in a private
/// module).
pub trait ServerSocket {
    /// Whether a request waits to be taken.
    fn is_ready(&self) -> bool;
}

impl ServerSocket for StackTcpListener<'_, '_> {
    fn is_ready(&self) -> bool {
        self.is_ready()
    }
}

impl ServerSocket for StackUdpSocket<'_, '_> {
    fn is_ready(&self) -> bool {
        self.is_ready()
    }
}

/// Core's selector for this backend: waits by driving the stack (poll, then
/// idle until smoltcp's `poll_delay`, the deadline, or at most 20 ms so a
/// shutdown requested from another thread is seen promptly).
///
/// It watches the flag of the stack's [`Stop`](crate::Stop)
/// ([`Stack::with_stop`](crate::Stack::with_stop)), or, when the
/// stack has none, a flag of its own (the server's `shutdown_flag()`).
#[derive(Debug)]
pub struct Waiter<'s, 'a> {
    net: NetRef<'s, 'a>,
    flag: Option<&'a ShutdownFlag>,
    own: ShutdownFlag,
    /// The stack's time when last read: [`Clock::now`] cannot fail, so
    /// while the stack is borrowed elsewhere it answers with this.
    seen: Cell<Instant>,
}

impl<'s, 'a> Waiter<'s, 'a> {
    /// A waiter over `net` (a [`NetRef`], or `&stack`). Fails with
    /// [`Error::StackBusy`] while the stack is borrowed elsewhere: it
    /// could not tell which flag to watch.
    pub fn new(net: impl Into<NetRef<'s, 'a>>) -> Result<Self, Error> {
        let net = net.into();
        Ok(Self {
            net,
            flag: net.read(|stack| stack.shutdown_flag())?,
            own: ShutdownFlag::new(),
            // Read at each `now`; this only answers while the stack is busy.
            seen: Cell::new(Instant::from_micros(0)),
        })
    }

    /// The stack.
    pub fn net(&self) -> NetRef<'s, 'a> {
        self.net
    }
}

impl Clock for Waiter<'_, '_> {
    fn now(&self) -> Instant {
        if let Ok(now) = self.net.now() {
            self.seen.set(now);
        }
        self.seen.get()
    }
}

impl<'s, 'a, S: ServerSocket> Wait<S> for Waiter<'s, 'a> {
    type Error = Error;

    fn wait(&mut self, server: Option<&S>, deadline: Option<Instant>) -> Result<(), Error> {
        let flag = self.flag.unwrap_or(&self.own);
        if flag.is_requested() {
            return Ok(());
        }
        // A multiplexed request woken by a frame this drive received can
        // move now: idling until the next frame or timer would leave it
        // asleep (its waker fired inside the stack, not in `ready`).
        let woken = wake_count();
        drive(self.net, deadline, || {
            server.is_some_and(S::is_ready) || flag.is_requested() || wake_count() != woken
        })
    }

    fn shutdown_flag(&self) -> &ShutdownFlag {
        self.flag.unwrap_or(&self.own)
    }
}

/// One non-blocking turn for a firmware main loop: polls the stack, runs
/// `serve` (your servers' `serve_ready`, returning whether any of them
/// moved), polls again to send what they queued, and returns how long the
/// loop may sleep before the next turn (`None`: until a frame arrives).
///
/// Returns `Some(Duration::ZERO)` (call again at once) when a server moved or
/// the second poll changed a socket: bytes that reached a socket buffer raise
/// no interrupt, so sleeping then could leave them unserved. Fails with
/// [`Error::StackBusy`], serving nothing, while the stack is borrowed
/// elsewhere.
///
/// Unlike a blocking wait it never idles: the loop sleeps by itself (`wfi`),
/// so there is no "receive, check, idle, receive" round to share with
/// [`Waiter`].
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
pub fn poll_and_serve<'s, 'a>(
    net: impl Into<NetRef<'s, 'a>>,
    serve: impl FnOnce() -> bool,
) -> Result<Option<Duration>, Error>
where
    'a: 's,
{
    let net = net.into();
    net.poll()?;
    let moved = serve();
    net.with(|stack| {
        let changed = stack.poll();
        if moved || changed {
            return Some(Duration::ZERO);
        }
        stack.poll_delay()
    })
}
