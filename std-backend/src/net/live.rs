//! Every connection a server has accepted and not yet closed, whatever
//! serves it (the loop itself, a thread, a forked child's parent copy, a
//! multiplexed slot), so that a shutdown's deadline can cut them all from
//! any thread and a client waiting at capacity can evict the connection
//! that has waited longest for its peer.

use std::collections::HashMap;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use std::task::Waker;

use socketserver_core::Interest;

use crate::net::connection::Interrupter;
use crate::sys::readiness::{CONNECTION_KEYS, Readiness, Ready};

/// The live connections of one server.
#[derive(Debug, Clone)]
pub(crate) struct LiveConnections {
    by_id: Arc<Mutex<HashMap<u64, Interrupter>>>,
    /// What each multiplexed request waits for on its connection, and its
    /// waker: woken by the server's waiter when the connection's event comes.
    wakers: Arc<Mutex<HashMap<u64, (Interest, Waker)>>>,
    /// The server's epoll instance, where those connections are watched.
    readiness: Arc<Readiness>,
    next_id: Arc<AtomicU64>,
}

impl LiveConnections {
    /// No connections yet; those that wait are watched by `readiness`.
    pub(crate) fn new(readiness: Arc<Readiness>) -> Self {
        Self {
            by_id: Arc::default(),
            wakers: Arc::default(),
            readiness,
            next_id: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Interrupter>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_wakers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Interest, Waker)>> {
        self.wakers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection until the returned guard drops.
    pub(crate) fn register(&self, interrupter: Interrupter) -> Registered {
        // Ids are event keys too: wrapping into the waiter's own keys would
        // take 2^64 connections.
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) % CONNECTION_KEYS;
        self.lock().insert(id, interrupter);
        Registered {
            live: self.clone(),
            id,
            watched: false,
            pid: crate::sys::pid::current(),
        }
    }

    /// Wakes the request waiting on the connection an event is for, if the
    /// event is what it waits for (an error or hang-up reads as both).
    pub(crate) fn wake(&self, ready: Ready) {
        let id = ready.key;
        let mut wakers = self.lock_wakers();
        let wanted = wakers.get(&id).is_some_and(|(interest, _)| {
            (interest.is_read() && ready.readable) || (interest.is_write() && ready.writable)
        });
        if let Some((_, waker)) = wanted.then(|| wakers.remove(&id)).flatten() {
            drop(wakers);
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
    /// Watched by the server's epoll (since its request first waited).
    watched: bool,
    /// The process that registered: a forked child's copy of the registry
    /// is private, and its lock may have been held by another thread of the
    /// parent at fork time (it would never be released in the child).
    pid: u32,
}

impl Registered {
    /// Has the server's waiter wake `waker` when the connection `fd` becomes
    /// ready for `interest`: called after a call would block, so the next
    /// edge of readiness is what the request waits for.
    pub(crate) fn register_waker(&mut self, fd: BorrowedFd<'_>, interest: Interest, waker: &Waker) {
        self.live
            .lock_wakers()
            .insert(self.id, (interest, waker.clone()));
        if !self.watched {
            match self.live.readiness.watch_edges(fd, self.id) {
                Ok(()) => self.watched = true,
                // Not watched (the kernel's epoll limits): the request is
                // polled again at once and retries, rather than sleeping
                // with nothing to wake it.
                Err(_) => waker.wake_by_ref(),
            }
        }
    }

    /// Stops watching the connection: called while `fd` is still open.
    pub(crate) fn forget(&mut self, fd: BorrowedFd<'_>) {
        if self.watched && crate::sys::pid::current() == self.pid {
            self.live.readiness.forget(fd);
            self.watched = false;
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if crate::sys::pid::current() == self.pid {
            self.live.lock().remove(&self.id);
            self.live.lock_wakers().remove(&self.id);
        }
    }
}
