//! `Threading`: one thread per request, Python's `ThreadingMixIn`, with a
//! bound on live threads.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use socketserver_core::time::{Duration, Instant};
use socketserver_core::{
    AddrOf, DatagramRequestHandler, DatagramSocket, DatagramStrategy, Listener, ServerHooks,
    StreamRequestHandler, StreamStrategy, Wait, end_stream_request,
};

use crate::error::WorkerError;
use crate::strategy::{Attach, next_thread_name, serve_datagram, serve_stream};
use crate::waiter::Waker;

/// Live handler threads allowed by default: enough for 1,000 concurrent
/// connections with room to spare; beyond it clients wait in the backlog.
pub const DEFAULT_MAX_THREADS: usize = 4096;

/// How often a server at its thread bound re-checks when no waker is attached.
const FULL_RECHECK: Duration = Duration::from_millis(20);

/// Serves each request in a new thread named `Thread-N`.
///
/// Python's knobs keep their defaults: `daemon_threads = false` (threads are
/// tracked and joined), `block_on_close = true` (`server_close` joins them).
/// Finished threads are dropped from the tracking list on every request, so
/// memory stays bounded (bpo-37193). Beyond Python: at most `max_threads`
/// handler threads live at once; at the bound the server stops accepting and
/// new clients wait in the backlog until a thread ends (back-pressure, never
/// a refusal). A handler panic is caught and reported to `handle_error` as
/// [`WorkerError::Panicked`].
#[derive(Debug)]
pub struct Threading<H, const RBUF: usize = 1024, const WBUF: usize = 0> {
    handler: H,
    daemon_threads: bool,
    block_on_close: bool,
    max_threads: usize,
    stack_size: Option<usize>,
    live: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
    waker: Option<Waker>,
}

impl<H> Threading<H> {
    /// A strategy that clones `handler` for each request, with a 1 KiB read
    /// buffer and unbuffered writes (as core's `Sync::new`).
    pub fn new(handler: H) -> Self {
        Self::with_buffers(handler)
    }
}

impl<H, const RBUF: usize, const WBUF: usize> Threading<H, RBUF, WBUF> {
    /// A strategy with `RBUF`-byte read-ahead and a `WBUF`-byte write buffer.
    pub fn with_buffers(handler: H) -> Self {
        Self {
            handler,
            daemon_threads: false,
            block_on_close: true,
            max_threads: DEFAULT_MAX_THREADS,
            stack_size: None,
            live: Arc::new(AtomicUsize::new(0)),
            threads: Vec::new(),
            waker: None,
        }
    }

    /// Python's `daemon_threads`: `true` leaves threads untracked, so
    /// `server_close` does not wait for them.
    pub fn daemon_threads(mut self, on: bool) -> Self {
        self.daemon_threads = on;
        self
    }

    /// Python's `block_on_close`: `false` makes `server_close` return
    /// without joining.
    pub fn block_on_close(mut self, on: bool) -> Self {
        self.block_on_close = on;
        self
    }

    /// The bound on live handler threads (at least 1).
    pub fn max_threads(mut self, max: usize) -> Self {
        self.max_threads = max.max(1);
        self
    }

    /// The stack size of handler threads (`None`: Rust's default, 2 MiB).
    pub fn stack_size(mut self, bytes: Option<usize>) -> Self {
        self.stack_size = bytes;
        self
    }

    /// Handler threads running now.
    pub fn live_threads(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Threads tracked for joining (finished ones are dropped as requests arrive).
    pub fn tracked_threads(&self) -> usize {
        self.threads.len()
    }

    /// The handler value cloned for each request.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler value, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    fn reap(&mut self) {
        self.threads.retain(|t| !t.is_finished());
    }

    fn join_all(&mut self) {
        for t in std::mem::take(&mut self.threads) {
            // A handler panic was caught inside the thread: join cannot fail
            // with one, and there is nothing to do if it did.
            let _ = t.join();
        }
    }

    fn spawn(&mut self, work: impl FnOnce() + Send + 'static) -> io::Result<()> {
        self.reap();
        self.live.fetch_add(1, Ordering::AcqRel);
        let guard = LiveGuard {
            live: Arc::clone(&self.live),
            waker: self.waker.clone(),
        };
        let mut builder = thread::Builder::new().name(next_thread_name());
        if let Some(bytes) = self.stack_size {
            builder = builder.stack_size(bytes);
        }
        // On failure the closure, and with it the guard, is dropped: the count is restored.
        let handle = builder.spawn(move || {
            let _guard = guard;
            work();
        })?;
        if self.block_on_close && !self.daemon_threads {
            self.threads.push(handle);
        }
        Ok(())
    }

    fn wait_deadline(
        &self,
        listener_given: bool,
        deadline: Option<Instant>,
        now: Instant,
    ) -> Option<Instant> {
        if listener_given || self.waker.is_some() || self.live_threads() == 0 {
            return deadline;
        }
        let recheck = now.saturating_add(FULL_RECHECK);
        Some(deadline.map_or(recheck, |d| d.min(recheck)))
    }
}

/// Counts a live thread and wakes the server when it ends.
struct LiveGuard {
    live: Arc<AtomicUsize>,
    waker: Option<Waker>,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
        if let Some(waker) = &self.waker {
            waker.wake();
        }
    }
}

impl<H, const RBUF: usize, const WBUF: usize> Attach for Threading<H, RBUF, WBUF> {
    fn attach(&mut self, waker: Waker) {
        self.waker = Some(waker);
    }
}

impl<L, K, H, const RBUF: usize, const WBUF: usize> StreamStrategy<L, K>
    for Threading<H, RBUF, WBUF>
where
    L: Listener,
    L::Conn: Send + 'static,
    AddrOf<L>: Send + 'static,
    K: ServerHooks<AddrOf<L>> + Clone + Send + 'static,
    H: StreamRequestHandler<L::Conn> + Send + 'static,
{
    fn process_request(&mut self, hooks: &K, conn: L::Conn, client: AddrOf<L>) {
        // The connection goes back to this thread if no thread can start.
        let slot = Arc::new(Mutex::new(Some(conn)));
        let theirs = Arc::clone(&slot);
        let (handler, worker_hooks, worker_client) =
            (self.handler.clone(), hooks.clone(), client.clone());
        let spawned = self.spawn(move || {
            let conn = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(conn) = conn {
                let mut rbuf = [0u8; RBUF];
                let mut wbuf = [0u8; WBUF];
                serve_stream(
                    &handler,
                    &worker_hooks,
                    conn,
                    &worker_client,
                    &mut rbuf,
                    &mut wbuf,
                );
            }
        });
        if let Err(e) = spawned {
            let conn = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            hooks.handle_error(&client, &WorkerError::Spawn(e));
            if let Some(conn) = conn {
                end_stream_request(hooks, conn, &client);
            }
        }
    }

    fn can_accept(&self) -> bool {
        self.live_threads() < self.max_threads
    }

    fn wait<W: Wait<L, L::Conn>>(
        &mut self,
        waiter: &mut W,
        listener: Option<&L>,
        deadline: Option<Instant>,
    ) -> Result<(), W::Error> {
        let deadline = self.wait_deadline(listener.is_some(), deadline, waiter.now());
        waiter.wait(listener, core::iter::empty(), deadline)
    }

    fn in_flight(&self) -> usize {
        self.live_threads()
    }

    fn service_actions(&mut self, _hooks: &K) {
        self.reap();
    }

    fn server_close(&mut self, _hooks: &K) {
        if self.block_on_close {
            self.join_all();
        }
    }
}

impl<D, K, H, const RBUF: usize, const WBUF: usize> DatagramStrategy<D, K>
    for Threading<H, RBUF, WBUF>
where
    D: DatagramSocket + Clone + Send + 'static,
    D::Addr: Send + 'static,
    K: ServerHooks<D::Addr> + Clone + Send + 'static,
    H: DatagramRequestHandler<D::Addr> + Send + 'static,
{
    fn process_request(
        &mut self,
        hooks: &K,
        socket: &mut D,
        packet: &[u8],
        truncated: bool,
        client: D::Addr,
        reply: &mut [u8],
    ) {
        let (handler, worker_hooks, worker_client) =
            (self.handler.clone(), hooks.clone(), client.clone());
        let mut socket = socket.clone();
        let packet = packet.to_vec();
        let reply_len = reply.len();
        let spawned = self.spawn(move || {
            let mut reply = vec![0u8; reply_len];
            serve_datagram(
                &handler,
                &worker_hooks,
                &mut socket,
                &packet,
                truncated,
                &worker_client,
                &mut reply,
            );
        });
        if let Err(e) = spawned {
            hooks.handle_error(&client, &WorkerError::Spawn(e));
            hooks.shutdown_request(&client);
            hooks.close_request(&client);
        }
    }

    fn can_accept(&self) -> bool {
        self.live_threads() < self.max_threads
    }

    fn service_actions(&mut self, _hooks: &K) {
        self.reap();
    }

    fn server_close(&mut self, _hooks: &K) {
        if self.block_on_close {
            self.join_all();
        }
    }
}
