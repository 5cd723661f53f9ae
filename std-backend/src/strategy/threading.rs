//! `Threading`: one thread per request, Python's `ThreadingMixIn`, with a
//! bound on live threads.

use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use socketserver_core::time::{Duration, Instant};
use socketserver_core::{
    FromHandler, IdlePolicy, ServerContext, ServerHooks, Strategy, drop_request,
};

use crate::error::WorkerError;
use crate::strategy::detach::{Detach, Run};
use crate::strategy::live_count::LiveCount;
use crate::strategy::worker_server::StopMark;
use crate::strategy::{Attach, next_thread_name};
use crate::waiter::LoopWaker;

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
/// a refusal), unless the server's [`IdlePolicy`] lets a waiting client evict
/// the connection that has waited longest for its peer (by default one idle
/// for a second or more: it is reset and its handler sees an error). Every
/// connection in flight can be cut at once ([`Strategy::cut_in_flight`],
/// the end of a graceful shutdown). A handler panic is caught and reported to `handle_error` as
/// [`WorkerError::Panicked`]; the connection is still shut down and closed,
/// and the server goes on.
///
/// A handler's `req.server()` is the server's address and a shutdown that
/// marks the request and wakes the loop, which stops at once; the worker
/// does not wait for it.
///
/// # Panic messages
///
/// Rust runs the process's panic hook before the panic is caught, so with
/// the default hook a handler panic prints `thread 'Thread-N' panicked at
/// …` to stderr as well as `handle_error`'s report. This crate leaves the
/// hook alone: it is process-wide state that belongs to the application (a
/// library replacing it would also silence or reformat the application's
/// own panics). An application that wants only the report installs a hook
/// that skips handler threads:
///
/// ```
/// let default_hook = std::panic::take_hook();
/// std::panic::set_hook(Box::new(move |info| {
///     let handler_thread = std::thread::current()
///         .name()
///         .is_some_and(|name| name.starts_with("Thread-"));
///     if !handler_thread {
///         default_hook(info);
///     }
/// }));
/// ```
#[derive(Debug)]
pub struct Threading<H, const RBUF: usize = 1024, const WBUF: usize = 0> {
    handler: H,
    daemon_threads: bool,
    block_on_close: bool,
    max_threads: usize,
    stack_size: Option<usize>,
    live: LiveCount,
    threads: Vec<JoinHandle<()>>,
    waker: Option<LoopWaker>,
    evict_after: Option<Duration>,
    /// Set by a worker's `req.server().shutdown()`.
    stop: StopMark,
}

impl<H> Threading<H> {
    /// A strategy that clones `handler` for each request, with a 1 KiB read
    /// buffer and unbuffered writes (as core's `Sequential::new`).
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
            live: LiveCount::default(),
            threads: Vec::new(),
            waker: None,
            evict_after: IdlePolicy::default().evict_after_value(),
            stop: StopMark::default(),
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
        self.live.live()
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
        let guard = self.live.start(self.waker.clone());
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

    fn at_bound(&self) -> bool {
        self.live_threads() >= self.max_threads
    }

    /// Whether the loop can take a request now, as it decides whether to
    /// wait for a thread to end (see [`LiveCount::observe`]).
    fn below_bound(&self) -> bool {
        self.live.observe() < self.max_threads
    }

    /// The live connection a waiting client may evict (only with the
    /// server's waker attached, which knows the server's connections).
    fn eviction_candidate(&self) -> Option<crate::net::connection::Interrupter> {
        let connections = self.waker.as_ref()?.connections();
        connections.longest_waiting(self.evict_after?)
    }

    /// The latest a wait may last. At the thread bound the server socket
    /// is left out of the wait; with no waker attached (core's server used
    /// directly) nothing would end that wait when a thread finishes, and
    /// with eviction on a connection may become evictable, so the wait is
    /// cut to a short re-check, and `handle_request` with no timeout cannot
    /// hang.
    fn recheck_deadline(&self, watching: bool, now: Instant) -> Option<Instant> {
        let evicting = self.evict_after.is_some() && self.at_bound();
        if watching || (self.waker.is_some() && !evicting) || self.live_threads() == 0 {
            return None;
        }
        Some(now.saturating_add(FULL_RECHECK))
    }
}

impl<H, const RBUF: usize, const WBUF: usize> FromHandler<H> for Threading<H, RBUF, WBUF> {
    fn from_handler(handler: H) -> Self {
        Self::with_buffers(handler)
    }
}

impl<H, const RBUF: usize, const WBUF: usize> Attach for Threading<H, RBUF, WBUF> {
    fn attach(&mut self, waker: LoopWaker) {
        self.waker = Some(waker);
    }

    fn adopt_idle_policy(&mut self, policy: IdlePolicy) {
        self.evict_after = policy.evict_after_value();
    }
}

impl<R, K, H, const RBUF: usize, const WBUF: usize> Strategy<R, K> for Threading<H, RBUF, WBUF>
where
    R: Detach,
    R::Addr: Send + 'static,
    R::Detached: Run<H, K>,
    K: ServerHooks<R::Addr> + Clone + Send + 'static,
    H: Clone + Send + 'static,
{
    fn process_request(&mut self, hooks: &K, server: &dyn ServerContext<R::Addr>, request: R) {
        if self.at_bound() {
            // `can_accept` let this client in to evict an idle connection.
            if let Some(idle) = self.eviction_candidate() {
                idle.interrupt();
            }
        }
        // The request comes back to this thread if no thread can start.
        let slot = Arc::new(Mutex::new(Some(request.detach())));
        let theirs = Arc::clone(&slot);
        let (handler, worker_hooks) = (self.handler.clone(), hooks.clone());
        let worker_server = self
            .stop
            .worker(server.server_address().clone(), self.waker.clone());
        let spawned = self.spawn(move || {
            let request = theirs.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(request) = request {
                let mut rbuf = [0u8; RBUF];
                let mut wbuf = [0u8; WBUF];
                request.run(
                    &handler,
                    &worker_hooks,
                    &worker_server,
                    &mut rbuf,
                    &mut wbuf,
                );
            }
        });
        if let Err(e) = spawned {
            let request = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(request) = request {
                drop_request(hooks, request, &WorkerError::Spawn(e));
            }
        }
    }

    fn can_accept(&self) -> bool {
        self.below_bound() || self.eviction_candidate().is_some()
    }

    fn next_wake(&mut self, now: Instant, watching: bool) -> Option<Instant> {
        if !self.live.begin_wait(!watching) {
            // A thread ended since the loop looked: look again at once.
            return Some(now);
        }
        self.recheck_deadline(watching, now)
    }

    fn stop_requested(&mut self) -> bool {
        self.stop.take()
    }

    fn in_flight(&self) -> usize {
        self.live.observe()
    }

    fn cut_in_flight(&mut self, _hooks: &K) {
        if let Some(waker) = &self.waker {
            waker.connections().cut_all();
        }
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use socketserver_core::time::Clock;
    use socketserver_core::{
        DatagramRequest, DatagramRequestHandler, DatagramSocket, Datagrams, DefaultHooks,
        HandlerError, Packet, Received, Server, ShutdownFlag, Wait,
    };

    use super::*;

    /// A socket that never has a datagram and drops replies.
    #[derive(Debug, Clone)]
    struct NullSocket;

    impl embedded_io::ErrorType for NullSocket {
        type Error = io::Error;
    }

    impl DatagramSocket for NullSocket {
        type Addr = u8;
        fn recv_from(&mut self, _buf: &mut [u8]) -> io::Result<Option<Received<u8>>> {
            Ok(None)
        }
        fn send_to(&mut self, _buf: &[u8], _addr: &u8) -> io::Result<socketserver_core::Sent> {
            Ok(socketserver_core::Sent::Queued)
        }
        fn local_addr(&self) -> u8 {
            1
        }
    }

    /// Records the deadline of every wait and returns at once.
    struct Recorder {
        flag: ShutdownFlag,
        deadlines: Vec<Option<Instant>>,
    }

    const NOW: Instant = Instant::from_millis(1_000);

    impl Clock for Recorder {
        fn now(&self) -> Instant {
            NOW
        }
    }

    impl Wait<NullSocket> for Recorder {
        type Error = io::Error;
        fn wait(
            &mut self,
            _server: Option<&NullSocket>,
            deadline: Option<Instant>,
        ) -> io::Result<()> {
            self.deadlines.push(deadline);
            Ok(())
        }
        fn shutdown_flag(&self) -> &ShutdownFlag {
            &self.flag
        }
    }

    /// Blocks in `handle` until the test sends on (or drops) the channel.
    #[derive(Clone)]
    struct Gate(Arc<Mutex<mpsc::Receiver<()>>>);

    impl DatagramRequestHandler<u8> for Gate {
        fn handle(&mut self, _req: &mut DatagramRequest<'_, u8>) -> Result<(), HandlerError> {
            let _ = self.0.lock().unwrap_or_else(PoisonError::into_inner).recv();
            Ok(())
        }
    }

    type Tested = Server<Datagrams<NullSocket, [u8; 8]>, Recorder, Threading<Gate>, DefaultHooks>;

    /// The deadline the server's next wait gets, given the loop's own.
    fn wait_deadline(server: &mut Tested, deadline: Option<Instant>) -> Option<Instant> {
        server.wait_ready(deadline).unwrap();
        server.waiter_mut().deadlines.pop().unwrap()
    }

    #[test]
    fn datagram_wait_at_the_thread_bound_without_a_waker_rechecks_soon() {
        let (release, gate) = mpsc::channel();
        let strategy = Threading::new(Gate(Arc::new(Mutex::new(gate)))).max_threads(1);
        let recorder = Recorder {
            flag: ShutdownFlag::new(),
            deadlines: Vec::new(),
        };
        let source = Datagrams::new(NullSocket, [0u8; 8], [0u8; 8]);
        let mut server: Tested = Server::new(source, recorder, strategy, DefaultHooks);
        let recheck = Some(NOW.saturating_add(FULL_RECHECK));
        assert_eq!(wait_deadline(&mut server, None), None, "idle");

        let (mut socket, mut reply) = (NullSocket, [0u8; 8]);
        let packet = Packet {
            socket: &mut socket,
            data: b"x",
            truncated: false,
            client: 7,
            reply: &mut reply,
        };
        let (address, flag) = (1u8, ShutdownFlag::new());
        let context = socketserver_core::InlineServer::new(&address, &flag);
        server
            .strategy_mut()
            .process_request(&DefaultHooks, &context, packet);
        // handle_request with no timeout: the wait must not be unbounded.
        assert_eq!(wait_deadline(&mut server, None), recheck);
        // serve_forever's poll interval: cut to the re-check.
        let later = Some(NOW.saturating_add(Duration::from_secs(30)));
        assert_eq!(wait_deadline(&mut server, later), recheck);
        // A sooner deadline stays; a wait on the socket is left alone.
        let soon = Some(NOW.saturating_add(Duration::from_millis(1)));
        assert_eq!(wait_deadline(&mut server, soon), soon);
        assert_eq!(
            Strategy::<Packet<'_, NullSocket>, DefaultHooks>::next_wake(
                server.strategy_mut(),
                NOW,
                true
            ),
            None
        );

        release.send(()).unwrap();
        server.server_close();
        assert_eq!(server.strategy().live_threads(), 0);
    }
}
