//! Every connection a server has accepted and not yet closed, whatever
//! serves it (the loop itself, a thread, a forked child's parent copy, a
//! multiplexed slot), so that a shutdown's deadline can cut them all from
//! any thread and a client waiting at capacity can evict the connection
//! that has waited longest for its peer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::task::Waker;

use socketserver_core::Interest;

use crate::net::connection::{Interrupter, Shared};

/// The live connections of one server.
#[derive(Debug, Default, Clone)]
pub(crate) struct LiveConnections {
    by_id: Arc<Mutex<HashMap<u64, Interrupter>>>,
    /// Connections a multiplexed request waits on, and its waker: what the
    /// server's waiter polls, and wakes when ready.
    wakers: Arc<Mutex<HashMap<u64, (Interest, Waker)>>>,
    next_id: Arc<AtomicU64>,
}

/// A connection some request waits on: its socket, what for, the waker.
pub(crate) struct Waiting {
    pub(crate) shared: Arc<Shared>,
    pub(crate) interest: Interest,
    id: u64,
}

impl LiveConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Interrupter>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection until the returned guard drops.
    pub(crate) fn register(&self, interrupter: Interrupter) -> Registered {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, interrupter);
        Registered {
            live: self.clone(),
            id,
            pid: std::process::id(),
        }
    }

    fn register_waker(&self, id: u64, interest: Interest, waker: &Waker) {
        self.wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, (interest, waker.clone()));
    }

    /// The connections requests wait on now, for the waiter to poll.
    pub(crate) fn waiting(&self) -> Vec<Waiting> {
        let wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner);
        if wakers.is_empty() {
            return Vec::new();
        }
        let by_id = self.lock();
        wakers
            .iter()
            .filter_map(|(id, (interest, _))| {
                let shared = by_id.get(id)?.shared()?;
                Some(Waiting {
                    shared,
                    interest: *interest,
                    id: *id,
                })
            })
            .collect()
    }

    /// Wakes the request waiting on `waiting`, which became ready.
    pub(crate) fn wake(&self, waiting: &Waiting) {
        let woken = self
            .wakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&waiting.id);
        if let Some((_, waker)) = woken {
            waker.wake();
        }
    }

    /// Resets every live connection.
    pub(crate) fn cut_all(&self) {
        for interrupter in self.lock().values() {
            interrupter.interrupt();
        }
    }

    /// The connection that has waited longest for its peer, if at least
    /// `after`; one already cut (its thread is still ending) is not counted.
    pub(crate) fn longest_waiting(&self, after: Duration) -> Option<Interrupter> {
        self.lock()
            .values()
            .filter(|i| !i.is_cut())
            .map(|i| (i.waiting_for(), i))
            .filter(|(waited, _)| *waited >= after)
            .max_by_key(|(waited, _)| *waited)
            .map(|(_, i)| i.clone())
    }
}

/// Removes a connection from [`LiveConnections`] when it is dropped.
#[derive(Debug)]
pub(crate) struct Registered {
    live: LiveConnections,
    id: u64,
    /// The process that registered: a forked child's copy of the registry
    /// is private, and its lock may have been held by another thread of the
    /// parent at fork time (it would never be released in the child).
    pid: u32,
}

impl Registered {
    /// Has the server's waiter wake `waker` when the connection may be
    /// ready for `interest` (at once if it already is: the poll is
    /// level-triggered).
    pub(crate) fn register_waker(&self, interest: Interest, waker: &Waker) {
        self.live.register_waker(self.id, interest, waker);
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if std::process::id() == self.pid {
            self.live.lock().remove(&self.id);
            self.live
                .wakers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.id);
        }
    }
}
