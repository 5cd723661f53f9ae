//! The std selector: poll(2) over the server socket, the multiplexed
//! connections and a wake-up socket, so a shutdown request or a finished
//! worker wakes `serve_forever` at once.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram as WakeSocket;
use std::process;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::{self, ThreadId};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use socketserver_core::time::{Clock, Instant};
use socketserver_core::{Interest, NoConnection, ShutdownFlag, Wait};

use crate::net::address::Address;
use crate::net::connection::SocketConnection;
use crate::net::datagram::SocketDatagram;
use crate::net::listener::SocketListener;
use crate::net::live::LiveConnections;
use crate::strategy::child_stop::StopSender;
use crate::sys::poll;

/// A socket the [`Waiter`] can wait on.
pub trait Pollable {
    /// The descriptor to poll; `None` when closed (it is then skipped).
    fn poll_fd(&self) -> Option<BorrowedFd<'_>>;
}

impl<A> Pollable for SocketListener<A> {
    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        SocketListener::poll_fd(self)
    }
}

impl<A: Address> Pollable for SocketDatagram<A> {
    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        SocketDatagram::poll_fd(self)
    }
}

impl<A> Pollable for SocketConnection<A> {
    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(self.as_fd())
    }
}

impl Pollable for NoConnection {
    fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        match *self {}
    }
}

/// What a server's loop, its shutdown handles and its workers share.
#[derive(Debug)]
pub(crate) struct Control {
    flag: ShutdownFlag,
    wake_tx: WakeSocket,
    stopped: Mutex<Option<ThreadId>>,
    stopped_changed: Condvar,
    connections: LiveConnections,
    /// Empty in the server's process. Set by the `Forking` strategy in a
    /// forked child's private copy of this: where that child's stop
    /// requests go, since its copy of `flag` stops nothing.
    parent: OnceLock<StopSender>,
    /// The process whose thread runs `serve_forever`, 0 when none: a copy
    /// of this in any other process (forked while the loop ran) has no loop
    /// to wait for.
    serving_pid: AtomicU32,
}

impl Control {
    /// Wakes the waiter. A wake already pending is enough, so a full socket is fine.
    pub(crate) fn wake(&self) {
        let _ = self.wake_tx.send(&[1]);
    }

    /// Records the thread running `serve_forever` (`None` when it returns)
    /// and wakes whoever waits for the loop to stop.
    pub(crate) fn set_serving_thread(&self, thread: Option<ThreadId>) {
        let mut serving = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let pid = if thread.is_some() { process::id() } else { 0 };
        self.serving_pid.store(pid, Ordering::Release);
        *serving = thread;
        self.stopped_changed.notify_all();
    }

    /// In a forked child: passes a stop request to the parent's loop and
    /// wakes it, and returns whether the request is queued. `None` in the
    /// server's own process.
    fn request_from_child(&self) -> Option<bool> {
        let parent = self.parent.get()?;
        let queued = parent.send();
        // After the send: the parent's wait returns with the request there.
        self.wake();
        Some(queued)
    }

    /// Requests a stop and waits until no loop runs; in a forked child,
    /// passes the request to the parent and returns at once (the child is
    /// not the loop, and the parent waits for the child).
    pub(crate) fn shutdown(&self) {
        if self.request_from_child().is_some() {
            return;
        }
        if !self.flag.request() {
            return; // stale: no loop runs, one already did
        }
        self.wake();
        let loop_pid = self.serving_pid.load(Ordering::Acquire);
        if loop_pid != 0 && loop_pid != process::id() {
            // A forked copy of a process whose loop runs, not made by this
            // server's `Forking` (that one forwards above): nothing here
            // will ever stop, and the lock may have been held at the fork.
            return;
        }
        let serving = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        if *serving == Some(thread::current().id()) {
            // Called from the serving thread (a sync handler): waiting would
            // deadlock, as it does in Python. The loop stops after this request.
            return;
        }
        let _stopped = self
            .stopped_changed
            .wait_while(serving, |_| self.flag.is_serving())
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// Records the thread running `serve_forever` for as long as it lives, and
/// clears it when dropped, also when a handler panics through the loop, so a
/// `shutdown()` waiting for the loop to stop is woken either way.
pub(crate) struct Serving(Arc<Control>);

impl Serving {
    pub(crate) fn new(control: &Arc<Control>) -> Self {
        control.set_serving_thread(Some(thread::current().id()));
        Self(Arc::clone(control))
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.set_serving_thread(None);
    }
}

/// Wakes a server's wait from another thread (workers use it when they end,
/// so a server at its concurrency bound accepts again at once).
#[derive(Debug, Clone)]
pub struct Waker {
    control: Arc<Control>,
}

impl Waker {
    /// Interrupts the server's current or next wait.
    pub fn wake(&self) {
        self.control.wake();
    }

    /// The live connections of the server this waker belongs to.
    pub(crate) fn connections(&self) -> &LiveConnections {
        &self.control.connections
    }

    /// Called in a forked child, whose copy of the server's state is its
    /// own: from now on its shutdown handles send their requests to the
    /// parent through `parent`.
    pub(crate) fn enter_forked_child(&self, parent: StopSender) {
        let _ = self.control.parent.set(parent);
    }
}

/// Stops a running `serve_forever` from any thread, Python's `shutdown()`.
///
/// Cloneable and `Send`; it holds no socket. See [`ShutdownHandle::shutdown`].
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    control: Arc<Control>,
}

impl ShutdownHandle {
    /// Asks `serve_forever` to stop, wakes it at once, and blocks until it
    /// has returned. Returns at once when no loop runs: before the first
    /// loop (that loop then returns at once), after the loop has stopped (a
    /// stale request, dropped), or from the serving thread itself (where
    /// Python deadlocks; here the loop stops after the current request).
    ///
    /// In a child forked by [`Forking`](crate::Forking) (a handler's own
    /// call), the request goes to the parent's loop, which stops at once as
    /// if `shutdown()` were called there, and this returns without waiting:
    /// the parent's `server_close` waits for this child. In any other
    /// process forked while the loop ran, it returns at once and stops
    /// nothing: the child's copy of the server is not the loop.
    pub fn shutdown(&self) {
        self.control.shutdown();
    }

    /// Asks the loop to stop and wakes it, without waiting: for a signal
    /// handling thread that must not block. Returns whether a loop will see
    /// the request; in a child forked by [`Forking`](crate::Forking), whether
    /// it was passed to the parent's loop.
    pub fn request(&self) -> bool {
        if let Some(queued) = self.control.request_from_child() {
            return queued;
        }
        let seen = self.control.flag.request();
        self.control.wake();
        seen
    }

    /// Whether a `serve_forever` loop is running now.
    pub fn is_serving(&self) -> bool {
        self.control.flag.is_serving()
    }

    /// Resets every connection the server has accepted and not yet closed,
    /// from any thread: the end of a graceful shutdown whose deadline
    /// passed, even while the serving thread is inside a request (`Sync`).
    /// Each peer reads a reset, never a clean end of stream; each handler
    /// blocked on its connection wakes with an error and `finish` runs.
    /// A forked child's connection is reset through the parent's copy.
    pub fn cut_in_flight(&self) {
        self.control.connections.cut_all();
    }
}

/// core's [`Wait`] and [`Clock`] on std: poll(2) and `std::time::Instant`.
#[derive(Debug)]
pub struct Waiter {
    control: Arc<Control>,
    wake_rx: WakeSocket,
}

impl Waiter {
    /// A waiter with its own shutdown flag and wake-up socket pair.
    pub fn new() -> io::Result<Self> {
        let (wake_tx, wake_rx) = WakeSocket::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let control = Arc::new(Control {
            flag: ShutdownFlag::new(),
            wake_tx,
            stopped: Mutex::new(None),
            stopped_changed: Condvar::new(),
            connections: LiveConnections::default(),
            parent: OnceLock::new(),
            serving_pid: AtomicU32::new(0),
        });
        Ok(Self { control, wake_rx })
    }

    /// A handle that stops this waiter's server loop.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            control: Arc::clone(&self.control),
        }
    }

    /// A handle that wakes this waiter.
    pub fn waker(&self) -> Waker {
        Waker {
            control: Arc::clone(&self.control),
        }
    }

    pub(crate) fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// The live connections of the server this waiter serves.
    pub(crate) fn connections(&self) -> LiveConnections {
        self.control.connections.clone()
    }

    fn drain_wakes(&self) {
        let mut buf = [0u8; 64];
        while matches!(self.wake_rx.recv(&mut buf), Ok(n) if n > 0) {}
    }
}

impl Clock for Waiter {
    fn now(&self) -> Instant {
        crate::clock::now()
    }
}

fn flags_for(interest: Interest) -> PollFlags {
    let mut flags = PollFlags::empty();
    if interest.is_read() {
        flags |= poll::read_flags();
    }
    if interest.is_write() {
        flags |= poll::write_flags();
    }
    flags
}

impl<S: Pollable + ?Sized, C: Pollable> Wait<S, C> for Waiter {
    type Error = io::Error;

    fn wait<'c>(
        &mut self,
        server: Option<&S>,
        conns: impl Iterator<Item = (&'c C, Interest)>,
        deadline: Option<Instant>,
    ) -> io::Result<()>
    where
        C: 'c,
    {
        // Connections that multiplexed requests wait on (their wakers are
        // registered with the server), after the server's own descriptors.
        let waiting = self.control.connections.waiting();
        let mut fds = vec![PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN)];
        if let Some(fd) = server.and_then(Pollable::poll_fd) {
            fds.push(PollFd::new(fd, poll::read_flags()));
        }
        for (conn, interest) in conns {
            if let Some(fd) = conn.poll_fd() {
                fds.push(PollFd::new(fd, flags_for(interest)));
            }
        }
        let first_waiting = fds.len();
        for w in &waiting {
            fds.push(PollFd::new(w.shared.socket.as_fd(), flags_for(w.interest)));
        }
        // A request made before this wait left a byte in the wake socket, so
        // the flag need not be checked here: poll returns at once.
        let remaining = deadline.map(|d| d.saturating_duration_since(self.now()));
        match nix::poll::poll(&mut fds, poll::timeout_for(remaining)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        if fds[0].any().unwrap_or(false) {
            self.drain_wakes();
        }
        for (fd, w) in fds[first_waiting..].iter().zip(&waiting) {
            if fd.any().unwrap_or(false) {
                self.control.connections.wake(w);
            }
        }
        Ok(())
    }

    fn shutdown_flag(&self) -> &ShutdownFlag {
        &self.control.flag
    }
}
