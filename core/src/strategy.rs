//! How a server processes requests: Python's mix-ins as values.
//!
//! `Sync` (here) serves each request inline; `Multiplexed<N>` (here) polls N
//! async requests from one thread; `Threading` and `Forking` live in
//! `socketserver-std`. A strategy owns the handler value it clones per request.

use crate::hooks::ServerHooks;
use crate::time::{Duration, Instant};
use crate::transport::{Connection, DatagramSocket, Listener, Wait};

/// Address of the connections a listener accepts.
pub type AddrOf<L> = <<L as Listener>::Conn as Connection>::Addr;

/// A way to process stream requests, Python's `process_request` override.
pub trait StreamStrategy<L: Listener, K: ServerHooks<AddrOf<L>>> {
    /// Takes a verified request. Sync serves it before returning; others hand
    /// it to a slot, a thread or a child.
    fn process_request(&mut self, hooks: &K, conn: L::Conn, client: AddrOf<L>);

    /// Whether another request can be taken now. `false` leaves new clients
    /// waiting in the backlog (back-pressure, never a refusal).
    fn can_accept(&self) -> bool {
        true
    }

    /// Sleeps until the listener (when given) or the strategy's own
    /// connections may be ready, or until `deadline`.
    fn wait<W: Wait<L>>(
        &mut self,
        waiter: &mut W,
        listener: Option<&L>,
        deadline: Option<Instant>,
    ) -> Result<(), W::Error> {
        waiter.wait(listener, deadline)
    }

    /// Advances requests the strategy holds (multiplexed slots); returns
    /// whether anything moved. Called on every pass before accepting.
    fn poll_requests(&mut self, hooks: &K, now: Instant) -> bool {
        let _ = (hooks, now);
        false
    }

    /// Requests taken and not yet finished (slots in use, live workers).
    fn in_flight(&self) -> usize {
        0
    }

    /// Ends every request in flight now, by force: the end of a graceful
    /// shutdown whose deadline passed. Each connection is reset
    /// ([`Connection::abort`]), so no client mistakes the cut for a complete
    /// transfer; handlers still running see an error, and `finish` runs.
    fn cut_in_flight(&mut self, hooks: &K) {
        let _ = hooks;
    }

    /// Runs on every `serve_forever` pass and on `handle_request` timeouts
    /// (Forking: reap children).
    fn service_actions(&mut self, hooks: &K) {
        let _ = hooks;
    }

    /// Waits for or ends in-flight requests as `block_on_close` says.
    fn server_close(&mut self, hooks: &K) {
        let _ = hooks;
    }

    /// The `handle_request` timeout when the hooks set none (Forking: 300 s).
    fn default_timeout(&self) -> Option<Duration> {
        None
    }
}

/// A way to process datagram requests.
pub trait DatagramStrategy<D: DatagramSocket, K: ServerHooks<D::Addr>> {
    /// Takes a verified datagram; `reply` is scratch space for the reply.
    fn process_request(
        &mut self,
        hooks: &K,
        socket: &mut D,
        packet: &[u8],
        truncated: bool,
        client: D::Addr,
        reply: &mut [u8],
    );

    /// Whether another request can be taken now.
    fn can_accept(&self) -> bool {
        true
    }

    /// Sleeps until the socket (when given) may be ready, or until
    /// `deadline`. A strategy at its capacity shortens the deadline so that it
    /// notices freed capacity.
    fn wait<W: Wait<D>>(
        &mut self,
        waiter: &mut W,
        socket: Option<&D>,
        deadline: Option<Instant>,
    ) -> Result<(), W::Error> {
        waiter.wait(socket, deadline)
    }

    /// Runs on every `serve_forever` pass and on `handle_request` timeouts.
    fn service_actions(&mut self, hooks: &K) {
        let _ = hooks;
    }

    /// Waits for or ends in-flight requests as `block_on_close` says.
    fn server_close(&mut self, hooks: &K) {
        let _ = hooks;
    }

    /// The `handle_request` timeout when the hooks set none.
    fn default_timeout(&self) -> Option<Duration> {
        None
    }
}
