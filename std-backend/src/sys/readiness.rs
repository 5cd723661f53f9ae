//! epoll, through nix's safe wrapper: the one place that registers
//! descriptors with a server's epoll instance.
//!
//! Three kinds of registration, one per use:
//! - the server socket, *oneshot*: re-armed by each wait that wants it, so a
//!   server at capacity (which stops asking) is not woken by a backlog it
//!   cannot take, and a backlog left after a batch fires again at once;
//! - the wake-up socket, *level*: it fires until drained;
//! - connections of multiplexed requests, *edge*: registered once, on their
//!   first wait, and never re-armed; an edge wakes the request waiting on it.
//!   A request registers its waker only after its call would block, and any
//!   readiness after that is a new edge, so no wake-up is lost.
//!
//! A wait is one `epoll_wait` with a millisecond timeout (rounded up, so a
//! short deadline never spins): no timer descriptor to arm per wait.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};

use crate::sys::poll;

/// The key of the server socket's events.
pub(crate) const SERVER_KEY: u64 = u64::MAX - 1;
/// The key of the wake-up socket's events.
pub(crate) const WAKE_KEY: u64 = u64::MAX - 2;
/// Keys below this are connections'.
pub(crate) const CONNECTION_KEYS: u64 = u64::MAX - 2;

/// Events one wait collects at most; more stay queued for the next.
const EVENTS_PER_WAIT: usize = 1024;

/// An epoll instance, and the buffer its waits fill.
#[derive(Debug)]
pub(crate) struct Readiness {
    epoll: Epoll,
}

/// What one event says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    pub(crate) key: u64,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

/// What counts as readable: data, EOF, a hang-up or an error (the next call
/// reports it without blocking). Writable: room, or the same failures.
fn ready_of(event: &EpollEvent) -> Ready {
    let flags = event.events();
    let failed = flags.intersects(EpollFlags::EPOLLERR | EpollFlags::EPOLLHUP);
    Ready {
        key: event.data(),
        readable: failed || flags.intersects(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP),
        writable: failed || flags.contains(EpollFlags::EPOLLOUT),
    }
}

impl Readiness {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            epoll: Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?,
        })
    }

    /// Watches `fd` for read readiness (level-triggered) under `key`.
    pub(crate) fn watch_level(&self, fd: BorrowedFd<'_>, key: u64) -> io::Result<()> {
        let event = EpollEvent::new(EpollFlags::EPOLLIN, key);
        Ok(self.epoll.add(fd, event)?)
    }

    /// Watches `fd` for every edge of read and write readiness under `key`.
    pub(crate) fn watch_edges(&self, fd: BorrowedFd<'_>, key: u64) -> io::Result<()> {
        let flags = EpollFlags::EPOLLIN
            | EpollFlags::EPOLLOUT
            | EpollFlags::EPOLLRDHUP
            | EpollFlags::EPOLLET;
        Ok(self.epoll.add(fd, EpollEvent::new(flags, key))?)
    }

    /// Arms one read event of `fd` under `key`, registering it if needed.
    pub(crate) fn arm_once(&self, fd: BorrowedFd<'_>, key: u64) -> io::Result<()> {
        let mut event = EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLONESHOT, key);
        match self.epoll.modify(fd, &mut event) {
            Err(Errno::ENOENT) => Ok(self.epoll.add(fd, event)?),
            other => Ok(other?),
        }
    }

    /// Stops watching `fd` (before it closes).
    pub(crate) fn forget(&self, fd: BorrowedFd<'_>) {
        // ENOENT (never registered) cannot matter here.
        let _ = self.epoll.delete(fd);
    }

    /// Waits until an event or `timeout`, and hands each event to `each`.
    pub(crate) fn wait(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
        mut each: impl FnMut(Ready),
    ) -> io::Result<()> {
        let n = match self.epoll.wait(&mut events.0, poll::timeout_for(timeout)) {
            Ok(n) => n,
            Err(Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        for event in events.0.iter().take(n) {
            each(ready_of(event));
        }
        Ok(())
    }

    /// The epoll descriptor: readable while any event is pending, so an
    /// outside loop can watch this instance.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }
}

/// The buffer one wait fills.
#[derive(Debug)]
pub(crate) struct Events(Vec<EpollEvent>);

impl Events {
    pub(crate) fn new() -> Self {
        Self(vec![EpollEvent::empty(); EVENTS_PER_WAIT])
    }
}
