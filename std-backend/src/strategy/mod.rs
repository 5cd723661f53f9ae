//! Python's `ThreadingMixIn` and `ForkingMixIn` as core strategies, plus
//! what every std strategy shares: the waker hook, the panic guard, and
//! requests that outlive the server's borrow (a worker thread's).

pub(crate) mod child_stop;
pub(crate) mod detach;
pub(crate) mod forking;
pub(crate) mod heap_multiplexed;
mod live_count;
pub(crate) mod threading;
mod worker_server;

use std::os::fd::RawFd;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};

use socketserver_core::{Connection, IdlePolicy, Multiplexed, PanicGuard, Sequential};

use crate::error::WorkerError;
use crate::waiter::LoopWaker;

/// A strategy a std server can hand its [`LoopWaker`] to, so that work ending
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
    fn attach(&mut self, waker: LoopWaker) {
        let _ = waker;
    }

    /// Receives the descriptor of the server's listening socket (stream
    /// servers only: a datagram server's requests answer on its socket),
    /// for a strategy whose workers must not keep it open (`Forking`: a
    /// child closes its copy, so that once the server closes its own, new
    /// clients are refused even while children still serve).
    fn attach_listener(&mut self, fd: RawFd) {
        let _ = fd;
    }

    /// Receives the server's [`Options::idle_policy`](crate::Options::idle_policy)
    /// when the server is built, for the parts a strategy applies itself
    /// (`Multiplexed`: all of it; `Threading`: eviction at capacity).
    fn adopt_idle_policy(&mut self, policy: IdlePolicy) {
        let _ = policy;
    }
}

impl<H, const RBUF: usize, const WBUF: usize> Attach for Sequential<H, RBUF, WBUF> {}

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

/// The panic guard of requests run in worker threads and forked children:
/// a panic in the handler is caught and reported to `handle_error` as
/// [`WorkerError::Panicked`], so the request still ends with its hooks and
/// the worker goes on (a thread ends, a child exits with status 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanic;

impl PanicGuard for CatchPanic {
    type Caught = WorkerError;

    fn guard<T>(&self, work: impl FnOnce() -> T) -> Result<T, WorkerError> {
        panic::catch_unwind(AssertUnwindSafe(work))
            .map_err(|payload| WorkerError::from_panic(&*payload))
    }
}
