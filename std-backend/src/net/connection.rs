//! An accepted stream connection: TCP or Unix.

use std::fmt;
use std::io::{self, Read as _};
use std::marker::PhantomData;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::{Arc, Weak};

use embedded_io::{ErrorType, Read, ReadReady, Write, WriteReady};
use socket2::Socket;
use socketserver_core::Connection;
use socketserver_core::time::Duration;

use crate::net::address::Address;
use crate::net::{describe, retry, timed_out};
use crate::sys::poll;

/// One accepted stream connection, Python's `request` for `TCPServer` and
/// `UnixStreamServer`: [`TcpConnection`] or [`UnixConnection`].
///
/// In blocking mode (the default for threading, forking and sync servers)
/// reads and writes block in the kernel, bounded by `set_timeout` through
/// `SO_RCVTIMEO` / `SO_SNDTIMEO`. In non-blocking mode (multiplexed servers)
/// a read or write that readiness allowed never blocks, and one made without
/// readiness waits in poll(2), so the `embedded_io` contract (block until at
/// least one byte) holds in both modes and `WouldBlock` never reaches a handler.
pub struct SocketConnection<A> {
    socket: Arc<Socket>,
    nonblocking: bool,
    timeout: Option<Duration>,
    family: PhantomData<fn() -> A>,
}

/// An accepted TCP connection (IPv4 or IPv6).
pub type TcpConnection = SocketConnection<std::net::SocketAddr>;

/// An accepted Unix stream connection.
pub type UnixConnection = SocketConnection<crate::net::address::UnixAddr>;

impl<A: Address> SocketConnection<A> {
    /// Wraps an accepted socket; `nonblocking` says which mode it is in.
    pub(crate) fn new(socket: Socket, nonblocking: bool) -> Self {
        Self {
            socket: Arc::new(socket),
            nonblocking,
            timeout: None,
            family: PhantomData,
        }
    }

    /// The socket, for options this type does not wrap.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<A> {
        Ok(A::from_sockaddr(&self.socket.peer_addr()?))
    }

    /// Whether reads and writes wait in poll(2) rather than in the kernel.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking
    }

    /// A handle that can end this connection from another thread (a
    /// graceful shutdown's last resort): see [`Interrupter`].
    pub fn interrupter(&self) -> Interrupter {
        Interrupter {
            socket: Arc::downgrade(&self.socket),
        }
    }

    fn io<T>(&self, readable: bool, mut op: impl FnMut(&Socket) -> io::Result<T>) -> io::Result<T> {
        loop {
            match retry(|| op(&self.socket)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Blocking mode: only SO_RCVTIMEO/SO_SNDTIMEO expiring gets here.
                    if !self.nonblocking {
                        return Err(timed_out());
                    }
                    let events = if readable {
                        poll::read_flags()
                    } else {
                        poll::write_flags()
                    };
                    let timeout = self.timeout;
                    if !poll::wait_one(self.socket.as_fd(), events, timeout)? {
                        return Err(timed_out());
                    }
                }
                other => return other,
            }
        }
    }
}

/// Ends a connection from another thread: `shutdown(SHUT_RDWR)`, so the
/// handler blocked on it sees EOF or an error and returns. It holds no
/// reference that keeps the connection open.
#[derive(Debug, Clone)]
pub struct Interrupter {
    socket: Weak<Socket>,
}

impl Interrupter {
    /// Shuts the connection down if it is still open.
    pub fn interrupt(&self) {
        if let Some(socket) = self.socket.upgrade() {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

impl<A> fmt::Debug for SocketConnection<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe::describe(Some(&self.socket), f)
    }
}

impl<A> ErrorType for SocketConnection<A> {
    type Error = io::Error;
}

impl<A: Address> Read for SocketConnection<A> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.io(true, |mut s| s.read(buf))
    }
}

impl<A: Address> Write for SocketConnection<A> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        // MSG_NOSIGNAL: a vanished peer is an EPIPE error, never a SIGPIPE.
        self.io(false, |s| s.send_with_flags(buf, libc::MSG_NOSIGNAL))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<A: Address> ReadReady for SocketConnection<A> {
    fn read_ready(&mut self) -> io::Result<bool> {
        poll::is_ready(self.socket.as_fd(), poll::read_flags())
    }
}

impl<A: Address> WriteReady for SocketConnection<A> {
    fn write_ready(&mut self) -> io::Result<bool> {
        poll::is_ready(self.socket.as_fd(), poll::write_flags())
    }
}

impl<A: Address> Connection for SocketConnection<A> {
    type Addr = A;

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.socket.shutdown(Shutdown::Write)
    }

    fn close(self) {}

    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.timeout = timeout;
        if self.nonblocking {
            return Ok(());
        }
        // A zero SO_RCVTIMEO means "no timeout" to the kernel: use the smallest real one.
        let timeout = timeout.map(|t| t.max(Duration::from_micros(1)));
        self.socket.set_read_timeout(timeout)?;
        self.socket.set_write_timeout(timeout)
    }

    fn set_nodelay(&mut self, nodelay: bool) -> io::Result<()> {
        if A::IS_INET {
            self.socket.set_tcp_nodelay(nodelay)
        } else {
            Ok(())
        }
    }
}

impl<A> AsFd for SocketConnection<A> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl<A> AsRawFd for SocketConnection<A> {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}
