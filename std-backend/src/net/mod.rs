//! Sockets over socket2 implementing core's transport traits.

pub(crate) mod address;
pub(crate) mod connection;
pub(crate) mod datagram;
pub(crate) mod describe;
pub(crate) mod listener;
pub(crate) mod live;
pub(crate) mod reply_guard;
pub(crate) mod stale;

use std::io;

/// Runs `op` again while it fails with EINTR (socket2 does not retry).
pub(crate) fn retry<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// The error a timed-out read or write reports: kind `TimedOut`, as core's
/// `Connection::set_timeout` promises (Python raises `TimeoutError`).
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}
