//! `HeapMultiplexed`: core's `Multiplexed` with its slots on the heap, in
//! chunks added as connections arrive, up to a limit: one thread serves ten
//! thousand async requests, and a quiet server holds little memory.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use socketserver_core::time::{Instant, earliest};
use socketserver_core::{
    Accepted, AsyncStreamRequestHandler, Connection, IdlePolicy, Multiplexed, Served,
    ServerContext, ServerHooks, Strategy, cut_request,
};

use crate::strategy::Attach;

/// Slots per chunk: each chunk is one core `Multiplexed`, whose pass costs
/// one atomic load per 32 slots when nothing in it moved.
pub const CHUNK_SLOTS: usize = 32;

/// Connections a [`HeapMultiplexed`] serves at once unless told otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

type Chunk<C, H, F> = Multiplexed<C, H, F, CHUNK_SLOTS>;
/// A chunk where it stays: on the heap, pinned.
type Boxed<C, H, F> = Pin<Box<Chunk<C, H, F>>>;

/// Serves up to `max_connections` requests at once with an
/// [`AsyncStreamRequestHandler`], from the thread that runs the server loop:
/// core's [`Multiplexed`] (the same executor firmware runs), with its slots
/// allocated on the heap 32 at a time as clients arrive and freed when
/// unused, so it needs no pinning and no fixed size.
///
/// Readiness comes from the server's epoll ([`Waiter`](crate::Waiter)): a
/// pass polls only the requests whose connection moved, and its cost with
/// 10,000 idle connections is a few microseconds. Clients beyond the limit
/// wait in the listen backlog (or evict the longest idle request, see
/// [`IdlePolicy`]).
///
/// ```no_run
/// use std::time::Duration;
/// use socketserver_core::Upper;
/// use socketserver_std::{HeapMultiplexed, SocketStreamServer, TcpConnection};
///
/// # fn main() -> std::io::Result<()> {
/// let strategy = HeapMultiplexed::<TcpConnection, _, _>::new(Upper::<256>).max_connections(10_000);
/// let mut server = SocketStreamServer::new("127.0.0.1:0", strategy)?;
/// server.serve_forever(Duration::from_millis(500))
/// # }
/// ```
pub struct HeapMultiplexed<C: Connection, H, F> {
    handler: H,
    make: fn(H) -> Chunk<C, H, F>,
    chunks: Vec<Boxed<C, H, F>>,
    max_connections: usize,
    policy: IdlePolicy,
    /// The instant of the last pass: a chunk made between passes starts
    /// its requests' clocks from it, not from the clock's origin.
    now: Instant,
}

impl<C, H> HeapMultiplexed<C, H, ()>
where
    C: Connection,
    H: AsyncStreamRequestHandler<C>,
{
    /// A strategy that clones `handler` into each request, with a 1 KiB
    /// read-ahead buffer per request (Python's `rbufsize`), at most
    /// [`DEFAULT_MAX_CONNECTIONS`] at once and the default [`IdlePolicy`].
    #[allow(clippy::new_ret_no_self)]
    pub fn new(handler: H) -> HeapMultiplexed<C, H, impl Future<Output = Option<Served<C>>>> {
        Self::with_rbufsize::<1024>(handler)
    }

    /// As [`new`](Self::new), with an `RBUF`-byte read-ahead buffer per request.
    pub fn with_rbufsize<const RBUF: usize>(
        handler: H,
    ) -> HeapMultiplexed<C, H, impl Future<Output = Option<Served<C>>>> {
        HeapMultiplexed {
            handler,
            make: Multiplexed::<C, H, (), CHUNK_SLOTS>::with_rbufsize::<RBUF>,
            chunks: Vec::new(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            policy: IdlePolicy::default(),
            now: Instant::from_micros(0),
        }
    }
}

impl<C, H, F> HeapMultiplexed<C, H, F>
where
    C: Connection,
    H: AsyncStreamRequestHandler<C>,
    F: Future<Output = Option<Served<C>>>,
{
    /// Serves at most `max` requests at once (at least 1).
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Bounds idle and slow peers with `policy` (the server's
    /// [`Options::idle_policy`](crate::Options::idle_policy) replaces it when
    /// the server is built).
    pub fn with_idle_policy(mut self, policy: IdlePolicy) -> Self {
        self.set_idle_policy(policy);
        self
    }

    fn set_idle_policy(&mut self, policy: IdlePolicy) {
        self.policy = policy;
        for chunk in &mut self.chunks {
            chunk.as_mut().set_idle_policy(policy);
        }
    }

    /// Requests being served now.
    pub fn active(&self) -> usize {
        self.chunks.iter().map(|chunk| chunk.active()).sum()
    }

    /// Slots allocated now (a multiple of [`CHUNK_SLOTS`]).
    pub fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK_SLOTS
    }

    /// At the limit, each chunk may hold only what it holds, so that a new
    /// client evicts (in whichever chunk holds the longest idle request)
    /// rather than filling a free slot; below it, every slot is open.
    fn apply_limit(&mut self) {
        let at_limit = self.active() >= self.max_connections;
        for chunk in &mut self.chunks {
            let max = if at_limit {
                chunk.active()
            } else {
                CHUNK_SLOTS
            };
            chunk.as_mut().set_max_connections(max);
        }
    }

    /// The chunk a new request goes to: one with a free slot, else a new one.
    fn chunk_with_room(&mut self) -> &mut Boxed<C, H, F> {
        match self
            .chunks
            .iter()
            .position(|chunk| chunk.active() < CHUNK_SLOTS)
        {
            Some(index) => &mut self.chunks[index],
            None => {
                // Built on the stack, then moved into the box: 32 request
                // futures, each with its read-ahead buffer and the handler's
                // own (about 550 KiB with `Echo::<16384>`; keep `RBUF` and
                // handler buffers such that 32 of them fit the thread's stack).
                let chunk = (self.make)(self.handler.clone()).with_idle_policy(self.policy);
                let mut chunk = Box::pin(chunk);
                chunk.as_mut().set_now(self.now);
                self.chunks.push(chunk);
                let last = self.chunks.len() - 1;
                &mut self.chunks[last]
            }
        }
    }

    /// At capacity: the chunk holding the longest idle evictable request.
    fn eviction_chunk(&mut self) -> Option<&mut Boxed<C, H, F>> {
        self.chunks
            .iter_mut()
            .filter_map(|chunk| Some((chunk.eviction_idle()?, chunk)))
            .max_by_key(|(idle, _)| *idle)
            .map(|(_, chunk)| chunk)
    }
}

impl<C: Connection, H, F> fmt::Debug for HeapMultiplexed<C, H, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeapMultiplexed")
            .field("chunks", &self.chunks.len())
            .field("max_connections", &self.max_connections)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<C, K, H, F> Strategy<Accepted<C>, K> for HeapMultiplexed<C, H, F>
where
    C: Connection,
    K: ServerHooks<C::Addr>,
    H: AsyncStreamRequestHandler<C>,
    F: Future<Output = Option<Served<C>>>,
{
    fn process_request(
        &mut self,
        hooks: &K,
        server: &dyn ServerContext<C::Addr>,
        request: Accepted<C>,
    ) {
        self.apply_limit();
        let chunk = if self.active() < self.max_connections {
            Some(self.chunk_with_room())
        } else {
            // `can_accept` let it in to evict an idle request.
            self.eviction_chunk()
        };
        match chunk {
            Some(chunk) => {
                chunk.as_mut().process_request(hooks, server, request);
            }
            None => cut_request(hooks, request),
        }
    }

    fn can_accept(&self) -> bool {
        self.active() < self.max_connections
            || self
                .chunks
                .iter()
                .any(|chunk| chunk.eviction_idle().is_some())
    }

    fn next_wake(&mut self, _now: Instant, _watching: bool) -> Option<Instant> {
        self.chunks
            .iter()
            .fold(None, |soonest, chunk| earliest(soonest, chunk.next_poll()))
    }

    fn poll_requests(&mut self, hooks: &K, now: Instant) -> bool {
        self.now = now;
        self.apply_limit();
        let mut moved = false;
        for chunk in &mut self.chunks {
            moved |= Strategy::<Accepted<C>, K>::poll_requests(&mut chunk.as_mut(), hooks, now);
        }
        moved
    }

    fn stop_requested(&mut self) -> bool {
        // Every chunk is asked, so each forgets what it reported.
        self.chunks.iter_mut().fold(false, |asked, chunk| {
            Strategy::<Accepted<C>, K>::stop_requested(&mut chunk.as_mut()) | asked
        })
    }

    fn in_flight(&self) -> usize {
        self.chunks.iter().map(|chunk| chunk.in_flight()).sum()
    }

    fn cut_in_flight(&mut self, hooks: &K) {
        for chunk in &mut self.chunks {
            Strategy::<Accepted<C>, K>::cut_in_flight(&mut chunk.as_mut(), hooks);
        }
    }

    /// Frees the chunks a busy moment left empty, keeping one spare.
    fn service_actions(&mut self, hooks: &K) {
        let _ = hooks;
        let mut spare = false;
        self.chunks.retain(|chunk| {
            let empty = chunk.in_flight() == 0;
            let keep = !empty || !spare;
            spare |= empty;
            keep
        });
    }

    fn server_close(&mut self, hooks: &K) {
        for chunk in &mut self.chunks {
            Strategy::<Accepted<C>, K>::server_close(&mut chunk.as_mut(), hooks);
        }
    }
}

impl<C, H, F> Attach for HeapMultiplexed<C, H, F>
where
    C: Connection,
    H: AsyncStreamRequestHandler<C>,
    F: Future<Output = Option<Served<C>>>,
{
    fn nonblocking_connections(&self) -> bool {
        true
    }

    fn adopt_idle_policy(&mut self, policy: IdlePolicy) {
        self.set_idle_policy(policy);
    }
}
