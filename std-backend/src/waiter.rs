//! The std selector: epoll over the server socket, the connections
//! multiplexed requests wait on and a wake-up socket, so a shutdown request
//! or a finished worker wakes `serve_forever` at once, and one wait costs
//! the same with ten thousand idle connections as with one.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixDatagram as WakeSocket;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::{self, ThreadId};

use polling::Events;
use socketserver_core::time::{Clock, Instant};
use socketserver_core::{ShutdownFlag, Wait};

use crate::net::address::Address;
use crate::net::datagram::SocketDatagram;
use crate::net::listener::SocketListener;
use crate::net::live::LiveConnections;
use crate::sys::readiness::{Readiness, SERVER_KEY, WAKE_KEY};

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

/// What a server's loop, its shutdown handles and its workers share.
#[derive(Debug)]
pub(crate) struct Control {
    flag: ShutdownFlag,
    wake_tx: WakeSocket,
    stopped: Mutex<Option<ThreadId>>,
    stopped_changed: Condvar,
    connections: LiveConnections,
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
        *serving = thread;
        self.stopped_changed.notify_all();
    }

    /// Requests a stop and waits until no loop runs.
    pub(crate) fn shutdown(&self) {
        if !self.flag.request() {
            return; // stale: no loop runs, one already did
        }
        self.wake();
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
    pub fn shutdown(&self) {
        self.control.shutdown();
    }

    /// Asks the loop to stop and wakes it, without waiting: for a signal
    /// handling thread that must not block.
    pub fn request(&self) -> bool {
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

/// core's [`Wait`] and [`Clock`] on std: epoll and `std::time::Instant`.
#[derive(Debug)]
pub struct Waiter {
    control: Arc<Control>,
    wake_rx: WakeSocket,
    readiness: Arc<Readiness>,
    events: Events,
    /// The server socket's descriptor number, and whether its oneshot read
    /// event is armed (not yet delivered).
    server: Option<(RawFd, bool)>,
}

impl Waiter {
    /// A waiter with its own epoll instance, shutdown flag and wake-up
    /// socket pair.
    pub fn new() -> io::Result<Self> {
        let (wake_tx, wake_rx) = WakeSocket::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let readiness = Arc::new(Readiness::new()?);
        readiness.watch_level(wake_rx.as_fd(), WAKE_KEY)?;
        let control = Arc::new(Control {
            flag: ShutdownFlag::new(),
            wake_tx,
            stopped: Mutex::new(None),
            stopped_changed: Condvar::new(),
            connections: LiveConnections::new(Arc::clone(&readiness)),
        });
        Ok(Self {
            control,
            wake_rx,
            readiness,
            events: Readiness::events(),
            server: None,
        })
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

    /// Arms the server socket's next read event, unless it is armed.
    fn arm_server(&mut self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let raw = fd.as_raw_fd();
        if self.server != Some((raw, true)) {
            self.readiness.arm_once(fd, SERVER_KEY)?;
            self.server = Some((raw, true));
        }
        Ok(())
    }
}

impl Waiter {
    /// Wakes the requests whose connections became ready, without
    /// blocking: for a caller's own loop that calls `poll`, not `wait`.
    pub(crate) fn gather_ready(&mut self) -> io::Result<()> {
        self.gather(Some(std::time::Duration::ZERO))
    }

    /// Waits for events until `timeout`, and acts on each: a connection's
    /// wakes its request, the wake socket's is drained, the server socket's
    /// disarms it (it is re-armed by the next wait that wants it).
    fn gather(&mut self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        let mut woken = false;
        let mut server_fired = false;
        let connections = &self.control.connections;
        self.readiness
            .wait(&mut self.events, timeout, |ready| match ready.key {
                WAKE_KEY => woken = true,
                SERVER_KEY => server_fired = true,
                _ => connections.wake(ready),
            })?;
        if woken {
            self.drain_wakes();
        }
        if server_fired && let Some((raw, _)) = self.server {
            self.server = Some((raw, false));
        }
        Ok(())
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.readiness.forget(self.wake_rx.as_fd());
    }
}

impl Clock for Waiter {
    fn now(&self) -> Instant {
        crate::clock::now()
    }
}

impl<S: Pollable + ?Sized> Wait<S> for Waiter {
    type Error = io::Error;

    fn wait(&mut self, server: Option<&S>, deadline: Option<Instant>) -> io::Result<()> {
        if let Some(fd) = server.and_then(Pollable::poll_fd) {
            self.arm_server(fd)?;
        }
        // A request made before this wait left a byte in the wake socket, so
        // the flag need not be checked here: the wait returns at once.
        let timeout = deadline.map(|d| d.saturating_duration_since(self.now()));
        self.gather(timeout)
    }

    fn shutdown_flag(&self) -> &ShutdownFlag {
        &self.control.flag
    }
}
