//! Python's `ThreadingMixIn` and `ForkingMixIn` as core strategies, plus
//! what every std strategy shares: the waker hook and panic-safe requests.

pub(crate) mod child_stop;
pub(crate) mod forking;
pub(crate) mod heap_multiplexed;
mod live_count;
pub(crate) mod threading;

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use socketserver_core::{
    Connection, DatagramRequestHandler, DatagramSocket, IdlePolicy, Multiplexed, ServerHooks,
    StreamRequestHandler, Sync, close_stream_request, end_stream_request, finish_stream_request,
    report_request_error, run_datagram_request,
};

use crate::error::WorkerError;
use crate::waiter::Waker;

/// A strategy a std server can hand its [`Waker`] to, so that work ending
/// outside the serve loop (a worker thread) wakes the loop at once.
///
/// Implemented for every strategy of core and of this crate; a custom
/// strategy implements it with the default (no-op) method.
pub trait Attach {
    /// Whether accepted connections must be non-blocking (`Multiplexed`:
    /// its handlers read and write only what readiness allows).
    fn nonblocking_connections(&self) -> bool {
        false
    }

    /// Receives the server's waker when the server is built.
    fn attach(&mut self, waker: Waker) {
        let _ = waker;
    }

    /// Receives the server's [`Options::idle_policy`](crate::Options::idle_policy)
    /// when the server is built, for the parts a strategy applies itself
    /// (`Multiplexed`: all of it; `Threading`: eviction at capacity).
    fn adopt_idle_policy(&mut self, policy: IdlePolicy) {
        let _ = policy;
    }
}

impl<H, const RBUF: usize, const WBUF: usize> Attach for Sync<H, RBUF, WBUF> {}

impl<C, H, F, const N: usize> Attach for core::pin::Pin<&mut Multiplexed<C, H, F, N>>
where
    C: Connection,
    H: socketserver_core::AsyncStreamRequestHandler<C>,
    F: core::future::Future<Output = Option<socketserver_core::Served<C>>>,
{
    fn nonblocking_connections(&self) -> bool {
        true
    }

    fn adopt_idle_policy(&mut self, policy: IdlePolicy) {
        self.as_mut().set_idle_policy(policy);
    }
}

/// The next `Thread-N` name, numbered across the process like Python's
/// default thread names, so the examples print `Thread-2` for the first
/// worker when the serving thread took `Thread-1`.
pub fn next_thread_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    format!("Thread-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// One stream request in a worker: core's lifecycle, with a panic in the
/// handler caught and reported to `handle_error` like an error, so
/// `shutdown_request` and `close_request` still run. Returns success.
pub(crate) fn serve_stream<C, H, K>(
    handler: &H,
    hooks: &K,
    mut conn: C,
    client: &C::Addr,
    rbuf: &mut [u8],
    wbuf: &mut [u8],
) -> bool
where
    C: Connection,
    H: StreamRequestHandler<C>,
    K: ServerHooks<C::Addr>,
{
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        finish_stream_request(handler, hooks, &mut conn, client, rbuf, wbuf)
    }));
    match result {
        Ok(result) => {
            if let Err(e) = &result {
                report_request_error::<C, K>(hooks, client, e);
            }
            close_stream_request(hooks, conn, client, &result);
            result.is_ok()
        }
        Err(payload) => {
            hooks.handle_error(client, &WorkerError::from_panic(&*payload));
            end_stream_request(hooks, conn, client);
            false
        }
    }
}

/// One datagram request in a worker, a handler panic caught as in [`serve_stream`].
pub(crate) fn serve_datagram<D, H, K>(
    handler: &H,
    hooks: &K,
    socket: &mut D,
    packet: &[u8],
    truncated: bool,
    client: &D::Addr,
    reply: &mut [u8],
) -> bool
where
    D: DatagramSocket,
    H: DatagramRequestHandler<D::Addr>,
    K: ServerHooks<D::Addr>,
{
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        run_datagram_request(handler, hooks, socket, packet, truncated, client, reply)
    }));
    result.unwrap_or_else(|payload| {
        hooks.handle_error(client, &WorkerError::from_panic(&*payload));
        hooks.shutdown_request(client);
        hooks.close_request(client);
        false
    })
}
