//! How a server processes requests: Python's mix-ins as values.
//!
//! `Sequential` (here) serves each request inline; `Multiplexed<N>` (here) polls N
//! async requests from one thread; `Threading` and `Forking` live in
//! `socketserver-std`. A strategy owns the handler value it clones per
//! request, decides where each request runs, and runs it through the request
//! runner ([`run_request`](crate::run_request)); the server's loop asks it
//! the questions below and never lets it wait itself.

use crate::context::ServerContext;
use crate::hooks::ServerHooks;
use crate::incoming::Request;
use crate::time::{Duration, Instant};

/// A strategy made from a handler alone, with its defaults: what lets a
/// backend build a server from a handler, as Python's
/// `ThreadingTCPServer(address, Handler)` does, without naming the
/// strategy twice (`ThreadingTCPServer::bind(address, handler)` in std).
pub trait FromHandler<H> {
    /// The strategy serving `handler` with its default settings.
    fn from_handler(handler: H) -> Self;
}

/// A way to process requests of kind `R` ([`Accepted`](crate::Accepted)
/// connections or [`Packet`](crate::Packet)s), Python's `process_request`
/// override, with hooks `K`.
pub trait Strategy<R: Request, K: ServerHooks<R::Addr>> {
    /// Takes a verified request. `Sequential` serves it before returning; others
    /// hand it to a slot, a thread or a child. `server` is the server's
    /// context for a request served here, on the serving thread; a strategy
    /// that runs the request elsewhere gives it a context of its own with
    /// the same address, whose `shutdown` reaches the loop through
    /// [`stop_requested`](Self::stop_requested).
    fn process_request(&mut self, hooks: &K, server: &dyn ServerContext<R::Addr>, request: R);

    /// Whether another request can be taken now. `false` leaves new clients
    /// waiting in the backlog (back-pressure, never a refusal).
    fn can_accept(&self) -> bool {
        true
    }

    /// Called just before the loop sleeps: the latest instant it must look
    /// again, when nothing else wakes it (a slot's idle deadline, a re-check
    /// for a child that exits; `now` to look again at once). `watching`
    /// says whether the server socket is part of the wait (it is not while
    /// [`can_accept`](Self::can_accept) says no).
    fn next_wake(&mut self, now: Instant, watching: bool) -> Option<Instant> {
        let _ = (now, watching);
        None
    }

    /// Whether work the strategy ran away from the server's flag asked the
    /// server to stop since the last call (a handler's `req.server().shutdown()`
    /// in a slot, a worker thread or a forked child): the loop then requests
    /// its own shutdown. Asked after each wait, after requests are polled
    /// and after each request is taken.
    fn stop_requested(&mut self) -> bool {
        false
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
    /// ([`Connection::abort`](crate::Connection::abort)), so no client
    /// mistakes the cut for a complete transfer; handlers still running see
    /// an error, and `finish` runs.
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

    /// The `handle_request` timeout when the server sets none (Forking: 300 s).
    fn default_timeout(&self) -> Option<Duration> {
        None
    }
}
