//! epoll through the `polling` crate: the one place that registers
//! descriptors, so the `unsafe` of `Poller::add` lives here alone.
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

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use polling::{Event, Events, PollMode, Poller};

/// The key of the server socket's events.
pub(crate) const SERVER_KEY: usize = usize::MAX - 1;
/// The key of the wake-up socket's events.
pub(crate) const WAKE_KEY: usize = usize::MAX - 2;
/// Keys below this are connections' (`polling` keeps `usize::MAX`).
pub(crate) const CONNECTION_KEYS: usize = usize::MAX - 2;

/// Events one wait collects at most; more stay queued for the next.
const EVENTS_PER_WAIT: usize = 1024;

/// An epoll instance.
#[derive(Debug)]
pub(crate) struct Readiness {
    poller: Poller,
}

/// What one event says.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ready {
    pub(crate) key: usize,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
}

impl Readiness {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            poller: Poller::new()?,
        })
    }

    #[allow(unsafe_code)]
    fn add(&self, fd: BorrowedFd<'_>, event: Event, mode: PollMode) -> io::Result<()> {
        // SAFETY: `Poller::add` is unsafe because on some systems a
        // descriptor closed while registered leaves the poller in a bad state.
        // On Linux (epoll, the only poller this crate builds for) the kernel
        // drops the registration of a closed descriptor itself; we delete
        // registrations anyway before closing (`forget`), and `fd` is a live
        // borrowed descriptor for the duration of the call.
        unsafe { self.poller.add_with_mode(fd.as_raw_fd(), event, mode) }
    }

    /// Watches `fd` for read readiness (level-triggered) under `key`.
    pub(crate) fn watch_level(&self, fd: BorrowedFd<'_>, key: usize) -> io::Result<()> {
        self.add(fd, Event::readable(key), PollMode::Level)
    }

    /// Watches `fd` for every edge of read and write readiness under `key`.
    pub(crate) fn watch_edges(&self, fd: BorrowedFd<'_>, key: usize) -> io::Result<()> {
        self.add(fd, Event::all(key), PollMode::Edge)
    }

    /// Arms one read event of `fd` under `key`, registering it if needed.
    pub(crate) fn arm_once(&self, fd: BorrowedFd<'_>, key: usize) -> io::Result<()> {
        match self
            .poller
            .modify_with_mode(fd, Event::readable(key), PollMode::Oneshot)
        {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                self.add(fd, Event::readable(key), PollMode::Oneshot)
            }
            other => other,
        }
    }

    /// Stops watching `fd` (before it closes).
    pub(crate) fn forget(&self, fd: BorrowedFd<'_>) {
        // ENOENT (never registered) and EBADF cannot matter here.
        let _ = self.poller.delete(fd);
    }

    /// Waits until an event or `timeout`, and hands each event to `each`.
    pub(crate) fn wait(
        &self,
        events: &mut Events,
        timeout: Option<Duration>,
        mut each: impl FnMut(Ready),
    ) -> io::Result<()> {
        events.clear();
        match self.poller.wait(events, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for event in events.iter() {
            each(Ready {
                key: event.key,
                readable: event.readable,
                writable: event.writable,
            });
        }
        Ok(())
    }

    /// The epoll descriptor: readable while any event is pending, so an
    /// outside loop can watch this instance.
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.poller.as_fd()
    }

    /// An event buffer for [`Readiness::wait`].
    pub(crate) fn events() -> Events {
        Events::with_capacity(NonZeroUsize::MIN.saturating_add(EVENTS_PER_WAIT - 1))
    }
}
