//! The std selector: epoll over the server socket, the connections
//! multiplexed requests wait on and a wake-up socket, so a shutdown request
//! or a finished worker wakes `serve_forever` at once, and one wait costs
//! the same with ten thousand idle connections as with one.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixDatagram as WakeSocket;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread::{self, ThreadId};

use socketserver_core::time::{Clock, Instant};
use socketserver_core::{ShutdownFlag, Wait};

use crate::net::address::Address;
use crate::net::datagram::SocketDatagram;
use crate::net::listener::SocketListener;
use crate::net::live::LiveConnections;
use crate::strategy::child_stop::StopSender;
use crate::sys::readiness::{Events, Readiness, SERVER_KEY, WAKE_KEY};

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

/// A grace period longer than any wait: "never cut" (a century).
const FAR: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);

/// What a server's loop, its shutdown handles and its workers share.
#[derive(Debug)]
pub(crate) struct Control {
    flag: ShutdownFlag,
    wake_tx: WakeSocket,
    stopped: Mutex<Option<ThreadId>>,
    stopped_changed: Condvar,
    /// The end of the grace period of a graceful stop, once one is asked.
    grace_deadline: Mutex<Option<std::time::Instant>>,
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
        let pid = if thread.is_some() {
            crate::sys::pid::current()
        } else {
            0
        };
        self.serving_pid.store(pid, Ordering::Release);
        *serving = thread;
        self.stopped_changed.notify_all();
    }

    /// The end of the grace period, if a graceful stop was asked for (once:
    /// a later loop starts with none).
    pub(crate) fn take_grace_deadline(&self) -> Option<std::time::Instant> {
        self.grace_deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// A graceful stop: the loop stops accepting at once; requests in
    /// flight get until `deadline` (the serving thread drains them after
    /// its loop returns); at the deadline, what is left is cut from here, so
    /// a request served inline ends too. Returns when the server has stopped
    /// serving, or at once when called from the serving thread.
    fn stop_by(&self, deadline: std::time::Instant) {
        if self.request_from_child().is_some() {
            return; // a forked child: the parent stops (its children are waited for)
        }
        if self.in_other_process() {
            return;
        }
        self.shorten_grace(deadline);
        self.flag.request();
        self.wake();
        let serving = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        if *serving == Some(thread::current().id()) {
            return; // the serving thread: its loop stops after this request
        }
        let timeout = deadline.saturating_duration_since(std::time::Instant::now());
        let (serving, _) = self
            .stopped_changed
            .wait_timeout_while(serving, timeout, |serving| serving.is_some())
            .unwrap_or_else(PoisonError::into_inner);
        if serving.is_none() {
            return;
        }
        // The grace is over and the server still serves: end what remains.
        // Asked again: a loop that began after the first request (which was
        // then stale and dropped) must stop too.
        self.connections.cut_all();
        self.flag.request();
        self.wake();
        let _stopped = self
            .stopped_changed
            .wait_while(serving, |serving| serving.is_some())
            .unwrap_or_else(PoisonError::into_inner);
    }

    /// The shutdown flag its handles request.
    pub(crate) fn flag(&self) -> &ShutdownFlag {
        &self.flag
    }

    /// Whether this is a forked copy of a process whose loop runs, not made
    /// by this server's `Forking` (that one forwards its requests): nothing
    /// here will ever stop, and the lock may have been held at the fork.
    fn in_other_process(&self) -> bool {
        let loop_pid = self.serving_pid.load(Ordering::Acquire);
        loop_pid != 0 && loop_pid != crate::sys::pid::current()
    }

    /// Sets the grace period's end, or shortens it (a later, longer stop
    /// does not extend it).
    fn shorten_grace(&self, deadline: std::time::Instant) {
        let mut ends = self
            .grace_deadline
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *ends = Some(ends.map_or(deadline, |d| d.min(deadline)));
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
        if self.in_other_process() {
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
pub struct LoopWaker {
    control: Arc<Control>,
}

impl LoopWaker {
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
/// A handler needs none to stop its own server: `req.server().shutdown()`
/// does it from any strategy ([`ServerContext`](socketserver_core::ServerContext)).
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

    /// A graceful stop: stops accepting at once, lets the requests in flight
    /// finish within `grace`, then cuts (resets) those still open, so each
    /// of their handlers sees an error and `finish` runs (threads: their
    /// connections are reset; children: SIGTERM, then SIGKILL; multiplexed
    /// slots: ended). Returns once the server has stopped serving:
    /// `serve_forever` returns after the requests finished or were cut.
    ///
    /// Python's `shutdown()` waits for the loop but not for the requests;
    /// this is the stop a service wants on SIGTERM. From the serving thread
    /// itself (a handler under `Sequential`) it cannot wait: it asks, and the loop
    /// stops after that request. A second call can only shorten the grace.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use socketserver_core::Echo;
    /// use socketserver_std::{ThreadingTCPServer, Threading};
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut server = ThreadingTCPServer::bind("127.0.0.1:0", Echo::<1024>)?;
    /// let stop = server.shutdown_handle();
    /// std::thread::spawn(move || {
    ///     std::thread::sleep(Duration::from_secs(60));
    ///     stop.shutdown_within(Duration::from_secs(10));
    /// });
    /// server.serve_forever(Duration::from_millis(500))?; // drains, then cuts
    /// server.server_close();
    /// # Ok(()) }
    /// ```
    pub fn shutdown_within(&self, grace: std::time::Duration) {
        let now = std::time::Instant::now();
        self.control
            .stop_by(now.checked_add(grace).unwrap_or(now + FAR));
    }

    /// As [`shutdown_within`](Self::shutdown_within), without waiting: for
    /// a signal-handling thread, which must stay free for a second signal
    /// (call [`cut_in_flight`](Self::cut_in_flight) then to end at once). A
    /// watchdog thread cuts at the deadline; if it cannot be started, the
    /// serving thread still cuts at the deadline after its loop returns
    /// (all strategies but a request served inline under `Sequential`).
    pub fn request_within(&self, grace: std::time::Duration) {
        // A forked child only forwards the request: no thread is started in
        // it (a child of a threaded parent must stay with simple calls).
        if self.control.request_from_child().is_some() {
            return;
        }
        let now = std::time::Instant::now();
        let deadline = now.checked_add(grace).unwrap_or(now + FAR);
        let control = Arc::clone(&self.control);
        let watchdog = thread::Builder::new()
            .name("socketserver-grace".into())
            .spawn(move || control.stop_by(deadline));
        if watchdog.is_err() {
            self.control.shorten_grace(deadline);
            self.request();
        }
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
    /// passed, even while the serving thread is inside a request (`Sequential`).
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
            grace_deadline: Mutex::new(None),
            connections: LiveConnections::new(Arc::clone(&readiness)),
            parent: OnceLock::new(),
            serving_pid: AtomicU32::new(0),
        });
        Ok(Self {
            control,
            wake_rx,
            readiness,
            events: Events::new(),
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
    pub fn waker(&self) -> LoopWaker {
        LoopWaker {
            control: Arc::clone(&self.control),
        }
    }

    pub(crate) fn control(&self) -> &Arc<Control> {
        &self.control
    }

    /// The shutdown flag its handles request.
    pub(crate) fn flag(&self) -> &ShutdownFlag {
        &self.control.flag
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

impl AsFd for Waiter {
    /// The epoll descriptor: readable while the server has something to do
    /// (a client at its socket, a request's connection ready, a wake-up).
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.readiness.as_fd()
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

    /// `false` while the server socket's oneshot event is armed and has not
    /// fired: nothing arrived since the last accept loop drained it.
    fn server_may_be_ready(&self) -> bool {
        !matches!(self.server, Some((_, true)))
    }
}
