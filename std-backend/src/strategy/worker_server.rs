//! `self.server` for a request served away from the loop, in a worker
//! thread or a forked child: it owns a copy of the server's address, and
//! its `shutdown` reaches the loop through the strategy
//! ([`Strategy::stop_requested`](socketserver_core::Strategy::stop_requested)),
//! waking the loop's wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use socketserver_core::ServerContext;

use crate::strategy::child_stop::StopSender;
use crate::waiter::LoopWaker;

/// How a worker's stop request reaches its strategy.
#[derive(Debug)]
enum StopLine {
    /// A worker thread: a mark the strategy takes.
    Thread(Arc<AtomicBool>),
    /// A forked child: a byte on the socket pair to the parent.
    Child(StopSender),
}

/// The context of a request served by a worker thread or a forked child.
#[derive(Debug)]
pub(crate) struct WorkerServer<A> {
    address: A,
    stop: StopLine,
    /// The server's, when the strategy is attached to a std server: wakes
    /// its wait (from a child too: the wake-up descriptor is inherited).
    waker: Option<LoopWaker>,
}

impl<A> WorkerServer<A> {
    /// For a worker thread, whose stop sets `asked`.
    pub(crate) fn thread(address: A, asked: Arc<AtomicBool>, waker: Option<LoopWaker>) -> Self {
        Self {
            address,
            stop: StopLine::Thread(asked),
            waker,
        }
    }

    /// For a forked child, whose stop goes to the parent through `parent`.
    pub(crate) fn child(address: A, parent: StopSender, waker: Option<LoopWaker>) -> Self {
        Self {
            address,
            stop: StopLine::Child(parent),
            waker,
        }
    }
}

impl<A: Sync> ServerContext<A> for WorkerServer<A> {
    fn server_address(&self) -> &A {
        &self.address
    }

    /// Marks the request (no lock, no allocation: a forked child of a
    /// threaded parent may only make simple calls), then wakes the loop, so
    /// that its wait returns with the mark there.
    fn shutdown(&self) {
        match &self.stop {
            StopLine::Thread(asked) => asked.store(true, Ordering::Release),
            StopLine::Child(parent) => {
                parent.send();
            }
        }
        if let Some(waker) = &self.waker {
            waker.wake();
        }
    }
}

/// What a `Threading` strategy's workers mark when a handler asks to stop.
#[derive(Debug, Clone, Default)]
pub(crate) struct StopMark(Arc<AtomicBool>);

impl StopMark {
    /// The context for a worker thread of a server bound to `address`.
    pub(crate) fn worker<A>(&self, address: A, waker: Option<LoopWaker>) -> WorkerServer<A> {
        WorkerServer::thread(address, Arc::clone(&self.0), waker)
    }

    /// Whether a worker asked since the last call; clears the mark.
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}
