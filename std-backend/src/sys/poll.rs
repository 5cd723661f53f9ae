//! Readiness of one descriptor, with EINTR retried.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// What counts as "ready to read": data, EOF, a hang-up or an error (the next
/// read reports it without blocking).
pub(crate) fn read_flags() -> PollFlags {
    PollFlags::POLLIN
}

/// What counts as "ready to write".
pub(crate) fn write_flags() -> PollFlags {
    PollFlags::POLLOUT
}

/// A poll(2) timeout for `remaining`, rounded up to whole milliseconds so a
/// short wait never turns into a busy loop; `None` waits forever.
pub(crate) fn timeout_for(remaining: Option<Duration>) -> PollTimeout {
    match remaining {
        None => PollTimeout::NONE,
        Some(d) => {
            let ms = d.as_micros().div_ceil(1000);
            PollTimeout::try_from(ms.min(i32::MAX as u128)).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// Waits until `fd` is ready for `events` (or has an error or hang-up), up
/// to `timeout` (`None`: forever). Returns whether it became ready.
pub(crate) fn wait_one(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    timeout: Option<Duration>,
) -> io::Result<bool> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let mut fds = [PollFd::new(fd, events)];
        match nix::poll::poll(&mut fds, timeout_for(remaining)) {
            Ok(0) => return Ok(false),
            Ok(_) => return Ok(true),
            Err(Errno::EINTR) => {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `fd` is ready for `events` right now.
pub(crate) fn is_ready(fd: BorrowedFd<'_>, events: PollFlags) -> io::Result<bool> {
    wait_one(fd, events, Some(Duration::ZERO))
}
