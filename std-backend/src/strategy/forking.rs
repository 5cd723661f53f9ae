//! `Forking`: one child process per request, Python's `ForkingMixIn`.

use std::os::fd::RawFd;
use std::panic::{self, AssertUnwindSafe};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use socketserver_core::time::{Duration, Instant};
use socketserver_core::{
    FromHandler, Serve, ServerContext, ServerHooks, Strategy, drop_request, hand_off_request,
    run_request,
};

use crate::error::WorkerError;
use crate::strategy::child_stop::StopChannel;
use crate::strategy::detach::{HandOff, ParentCopy};
use crate::strategy::worker_server::WorkerServer;
use crate::strategy::{Attach, CatchPanic};
use crate::sys::fork::{Forked, exit_child, fork};
use crate::waiter::LoopWaker;

/// Python's `max_children`.
pub const MAX_CHILDREN: usize = 40;

/// Python's `ForkingMixIn.timeout`: `handle_request` gives up after 300 s.
pub const FORKING_TIMEOUT: Duration = Duration::from_secs(300);

/// How often a server at `max_children` (or draining) checks for exited children.
const REAP_INTERVAL: Duration = Duration::from_millis(10);

/// How long children whose connections were cut may take to finish before
/// they are killed.
const CUT_PATIENCE: std::time::Duration = std::time::Duration::from_millis(200);

/// A child not yet reaped.
#[derive(Debug)]
struct Child {
    pid: Pid,
    /// The parent's copy of its connection (stream requests only).
    connection: Option<ParentCopy>,
}

/// Serves each request in a forked child, Python's `ForkingMixIn`.
///
/// The child runs the request through core's lifecycle (`handle_error` runs
/// in the child; a panic is caught and reported the same way), then ends
/// with `_exit(0)` on success or `_exit(1)` on failure: it never returns into
/// the server loop and runs none of the parent's destructors. The parent
/// closes its copy of the connection (the `close_request` hook), reaps
/// children without blocking on every `serve_forever` pass, stops accepting
/// at `max_children` (40) until one exits, and in `server_close` waits for
/// every child when `block_on_close` (true). The `handle_request` timeout
/// defaults to 300 s.
///
/// Beyond Python: the parent keeps its copy of each child's connection
/// until it reaps the child, so that [`Strategy::cut_in_flight`] (the
/// end of a graceful shutdown) resets every connection in flight (children
/// blocked on one wake with an error, and those still running after 200 ms
/// are killed), and the connection of a child killed by a signal is reset,
/// not closed: no peer reads a clean end of stream after a cut transfer.
///
/// A handler that stops the server from its child (`req.server().shutdown()`,
/// or the server's [`ShutdownHandle`](crate::ShutdownHandle), `shutdown()`
/// or `request()`) stops the parent's `serve_forever` at once, as a
/// `shutdown()` in the parent would: the child sends the request on a
/// socket pair this strategy creates before its first fork and wakes the
/// parent's wait; the child's call returns without waiting, and the
/// parent's `server_close` waits for the children still running as
/// `block_on_close` says.
///
/// Children start with the signal dispositions a freshly executed program
/// would have: SIGINT, SIGTERM, SIGHUP and SIGQUIT that the application
/// catches (a `signal-hook` handler, say) are back at their default action
/// (the child ends) and unblocked; those it ignores stay ignored; a caught
/// SIGPIPE is ignored, so a write to a vanished peer is an error, not a
/// death. So Ctrl-C to the process group, and
/// [`signal_children`](Self::signal_children)`(SIGTERM)`, end children at
/// once; the parent then resets their connections as for any child killed
/// by a signal. Signals are blocked across the fork, so none reaches a
/// child before its dispositions are reset (a `signal-hook` handler in the
/// child would have written to the parent's self-pipe).
///
/// Forking a multi-threaded process is allowed but the child may only rely on
/// what the handler itself sets up; keep handlers self-contained.
#[derive(Debug)]
pub struct Forking<H, const RBUF: usize = 1024, const WBUF: usize = 0> {
    handler: H,
    max_children: usize,
    block_on_close: bool,
    timeout: Option<Duration>,
    children: Vec<Child>,
    /// The server's, once attached: a child wakes its parent's loop with it.
    waker: Option<LoopWaker>,
    /// Created before the first fork: a child's stop request reaches the parent through it.
    stop: Option<StopChannel>,
    /// The stream server's listening socket, which a child closes.
    listener: Option<RawFd>,
}

impl<H> Forking<H> {
    /// A strategy that runs a clone of `handler` in a child per request, with
    /// a 1 KiB read buffer and unbuffered writes.
    pub fn new(handler: H) -> Self {
        Self::with_buffers(handler)
    }
}

impl<H, const RBUF: usize, const WBUF: usize> Forking<H, RBUF, WBUF> {
    /// A strategy with `RBUF`-byte read-ahead and a `WBUF`-byte write buffer.
    pub fn with_buffers(handler: H) -> Self {
        Self {
            handler,
            max_children: MAX_CHILDREN,
            block_on_close: true,
            timeout: Some(FORKING_TIMEOUT),
            children: Vec::new(),
            waker: None,
            stop: None,
            listener: None,
        }
    }

    /// Python's `max_children` (at least 1).
    pub fn max_children(mut self, max: usize) -> Self {
        self.max_children = max.max(1);
        self
    }

    /// Python's `block_on_close`.
    pub fn block_on_close(mut self, on: bool) -> Self {
        self.block_on_close = on;
        self
    }

    /// Python's `ForkingMixIn.timeout` (`None`: `handle_request` waits forever).
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Python's `active_children`: pids of children not yet reaped.
    pub fn active_children(&self) -> impl Iterator<Item = i32> + '_ {
        self.children.iter().map(|child| child.pid.as_raw())
    }

    /// The handler value cloned into each child.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// Python's `collect_children`: reaps exited children; with `blocking`,
    /// waits for every one. Never leaves a zombie it knows of.
    pub fn collect_children(&mut self, blocking: bool) {
        let flags = if blocking {
            None
        } else {
            Some(WaitPidFlag::WNOHANG)
        };
        let mut index = 0;
        while index < self.children.len() {
            let status = loop {
                match waitpid(self.children[index].pid, flags) {
                    Err(Errno::EINTR) => continue,
                    other => break other,
                }
            };
            let killed = match status {
                Ok(WaitStatus::StillAlive) => {
                    index += 1;
                    continue;
                }
                Ok(WaitStatus::Signaled(..)) => true,
                // ECHILD: reaped elsewhere (someone's waitpid(-1)); gone either way.
                Ok(_) | Err(_) => false,
            };
            let child = self.children.swap_remove(index);
            if let Some(connection) = child.connection {
                if killed {
                    connection.abort();
                } else {
                    connection.close();
                }
            }
        }
    }

    /// Resets the connection of every child, gives them [`CUT_PATIENCE`] to
    /// finish, then kills and reaps the rest.
    fn cut_children(&mut self) {
        for child in &mut self.children {
            if let Some(connection) = child.connection.take() {
                connection.abort();
            }
        }
        let deadline = std::time::Instant::now() + CUT_PATIENCE;
        self.collect_children(false);
        while !self.children.is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
            self.collect_children(false);
        }
        self.signal_children(Signal::SIGKILL);
        self.collect_children(true);
    }

    /// Sends `signal` to every child still running: the last resort of a
    /// graceful shutdown whose grace period has passed. SIGTERM and SIGINT
    /// end a child at once whatever handlers the application installed
    /// (see the type's docs); reap them with
    /// [`collect_children`](Self::collect_children).
    pub fn signal_children(&self, signal: Signal) {
        for child in &self.children {
            let _ = kill(child.pid, signal);
        }
    }

    /// The latest a wait may last. At `max_children` the server socket is
    /// left out of the wait and nothing signals a child's exit to it, so the
    /// wait is cut to a short re-check that reaps: a freed slot is noticed
    /// within `REAP_INTERVAL`, not after `poll_interval`, and
    /// `handle_request` with no timeout cannot hang.
    fn reap_deadline(&mut self, watching: bool, now: Instant) -> Option<Instant> {
        if watching || self.children.is_empty() {
            return None;
        }
        self.collect_children(false);
        if self.children.is_empty() {
            return Some(now);
        }
        Some(now.saturating_add(REAP_INTERVAL))
    }

    /// The context of a child's request (its `shutdown` goes to this
    /// process's loop); creates the stop channel before the first fork.
    fn child_server<A>(&mut self, address: A) -> std::io::Result<WorkerServer<A>> {
        let stop = match &self.stop {
            Some(stop) => stop,
            None => self.stop.insert(StopChannel::new()?),
        };
        Ok(WorkerServer::child(
            address,
            stop.sender(),
            self.waker.clone(),
        ))
    }

    /// Forks; in the child runs `work` with panics caught and exits with its
    /// status. Returns the child's pid in the parent.
    fn fork_request(&mut self, work: impl FnOnce() -> bool) -> std::io::Result<Pid> {
        match fork()? {
            Forked::Parent(pid) => {
                self.children.push(Child {
                    pid,
                    connection: None,
                });
                Ok(pid)
            }
            Forked::Child => {
                // The parent's copies of its other children's connections
                // are not this child's to hold: close them, so a socket
                // lives no longer than the child serving it.
                self.children.clear();
                // Nor the listening socket: once the parent closes its own,
                // new clients must be refused, not queued for a listener
                // that only children hold. The child never returns to the
                // `Socket` that owns this descriptor (it ends with `_exit`),
                // so nothing uses or closes it again.
                if let Some(fd) = self.listener {
                    let _ = nix::unistd::close(fd);
                }
                if let (Some(waker), Some(stop)) = (&self.waker, &self.stop) {
                    waker.enter_forked_child(stop.sender());
                }
                let ok = panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or(false);
                exit_child(if ok { 0 } else { 1 })
            }
        }
    }
}

impl<H, const RBUF: usize, const WBUF: usize> FromHandler<H> for Forking<H, RBUF, WBUF> {
    fn from_handler(handler: H) -> Self {
        Self::with_buffers(handler)
    }
}

impl<H, const RBUF: usize, const WBUF: usize> Attach for Forking<H, RBUF, WBUF> {
    fn attach(&mut self, waker: LoopWaker) {
        self.waker = Some(waker);
    }

    fn attach_listener(&mut self, fd: RawFd) {
        self.listener = Some(fd);
    }
}

impl<R, K, H, const RBUF: usize, const WBUF: usize> Strategy<R, K> for Forking<H, RBUF, WBUF>
where
    R: HandOff,
    K: ServerHooks<R::Addr>,
    H: Serve<R> + Clone,
{
    fn process_request(&mut self, hooks: &K, server: &dyn ServerContext<R::Addr>, request: R) {
        let handler = self.handler.clone();
        let child_server = match self.child_server(server.server_address().clone()) {
            Ok(child_server) => child_server,
            Err(e) => return drop_request(hooks, request, &WorkerError::Spawn(e)),
        };
        // The child takes the request out of this cell; the parent finds it still there.
        let mut request = Some(request);
        let forked = self.fork_request(|| {
            let mut rbuf = [0u8; RBUF];
            let mut wbuf = [0u8; WBUF];
            request.take().is_some_and(|request| {
                run_request(
                    &handler,
                    hooks,
                    &child_server,
                    request,
                    &mut rbuf,
                    &mut wbuf,
                    &CatchPanic,
                )
            })
        });
        let Some(request) = request else { return };
        match forked {
            // The parent's copy is kept until the child is reaped (see the type's docs).
            Ok(_) => {
                let copy = hand_off_request(hooks, request).and_then(R::parent_copy);
                if let Some(child) = self.children.last_mut() {
                    child.connection = copy;
                }
            }
            Err(e) => drop_request(hooks, request, &WorkerError::Spawn(e)),
        }
    }

    fn can_accept(&self) -> bool {
        self.children.len() < self.max_children
    }

    fn next_wake(&mut self, now: Instant, watching: bool) -> Option<Instant> {
        self.reap_deadline(watching, now)
    }

    /// A stop a child asked for becomes a request of the parent's own flag,
    /// so the loop stops before it takes more work.
    fn stop_requested(&mut self) -> bool {
        self.stop.as_ref().is_some_and(StopChannel::take_requests)
    }

    fn in_flight(&self) -> usize {
        self.children.len()
    }

    fn cut_in_flight(&mut self, _hooks: &K) {
        self.cut_children();
    }

    fn service_actions(&mut self, _hooks: &K) {
        self.collect_children(false);
    }

    fn server_close(&mut self, _hooks: &K) {
        self.collect_children(self.block_on_close);
    }

    fn default_timeout(&self) -> Option<Duration> {
        self.timeout
    }
}
