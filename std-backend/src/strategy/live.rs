//! The connections a threading server's workers are serving now, so the
//! serve loop can cut them (a shutdown's deadline) or evict the one that has
//! waited longest for its peer (a client waiting at capacity).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::net::address::Address;
use crate::net::connection::{Interrupter, SocketConnection};

/// A connection the server can end from another thread.
///
/// Implemented by [`SocketConnection`]; the threading strategy needs it to
/// keep its promises (cut at a deadline, evict at capacity).
pub trait Interruptible {
    /// A handle that resets the connection from any thread.
    fn interrupter(&self) -> Interrupter;
}

impl<A: Address> Interruptible for SocketConnection<A> {
    fn interrupter(&self) -> Interrupter {
        SocketConnection::interrupter(self)
    }
}

/// Live connections by worker.
#[derive(Debug, Default, Clone)]
pub(crate) struct LiveConnections {
    by_id: Arc<Mutex<HashMap<u64, Interrupter>>>,
}

impl LiveConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Interrupter>> {
        self.by_id.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection until the returned guard drops.
    pub(crate) fn register(&self, id: u64, interrupter: Interrupter) -> Registered {
        self.lock().insert(id, interrupter);
        Registered {
            live: self.clone(),
            id,
        }
    }

    /// Resets every live connection.
    pub(crate) fn cut_all(&self) {
        for interrupter in self.lock().values() {
            interrupter.interrupt();
        }
    }

    /// The connection that has waited longest for its peer, if at least `after`.
    pub(crate) fn longest_waiting(&self, after: Duration) -> Option<Interrupter> {
        self.lock()
            .values()
            .map(|i| (i.waiting_for(), i))
            .filter(|(waited, _)| *waited >= after)
            .max_by_key(|(waited, _)| *waited)
            .map(|(_, i)| i.clone())
    }
}

/// Removes a connection from [`LiveConnections`] when its worker ends.
pub(crate) struct Registered {
    live: LiveConnections,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.live.lock().remove(&self.id);
    }
}
