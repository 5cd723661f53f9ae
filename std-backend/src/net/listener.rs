//! A listening stream socket: TCP or Unix.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};

use embedded_io::ErrorType;
use socket2::Socket;
use socketserver_core::{Accepted, IdlePolicy, Listener};

use crate::net::address::Address;
use crate::net::connection::{SocketConnection, kernel_value};
use crate::net::live::LiveConnections;
use crate::net::{describe, retry};

/// A listening socket that accepts without blocking: [`TcpSocketListener`] or
/// [`UnixSocketListener`]. Accepted connections are blocking unless the server was
/// built for non-blocking handlers (`Multiplexed`).
pub struct SocketListener<A> {
    socket: Option<Socket>,
    /// What `server_address` reports (recorded at bind).
    address: A,
    nonblocking_connections: bool,
    idle_policy: IdlePolicy,
    inheritance: Inheritance,
    live: LiveConnections,
    family: PhantomData<fn() -> A>,
}

/// A listening TCP socket (IPv4 or IPv6).
pub type TcpSocketListener = SocketListener<std::net::SocketAddr>;

/// A listening Unix stream socket.
pub type UnixSocketListener = SocketListener<crate::net::address::UnixAddr>;

impl<A: Address> SocketListener<A> {
    /// Wraps a socket listening on `address` and makes it non-blocking;
    /// blocking connections it accepts apply `idle_policy`, and every
    /// connection is listed in `live` until dropped.
    pub(crate) fn new(
        socket: Socket,
        address: A,
        nonblocking_connections: bool,
        idle_policy: IdlePolicy,
        live: LiveConnections,
    ) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let idle = idle_policy.idle_timeout_value();
        let inheritance = if A::IS_INET && !nonblocking_connections && idle.is_some() {
            Inheritance::offer(&socket, kernel_value(idle))?
        } else {
            Inheritance::None
        };
        Ok(Self {
            socket: Some(socket),
            address,
            nonblocking_connections,
            idle_policy,
            inheritance,
            live,
            family: PhantomData,
        })
    }

    /// The socket; `None` once closed.
    pub fn socket(&self) -> Option<&Socket> {
        self.socket.as_ref()
    }

    /// Closes the socket now (Python's `server_close` closes it before
    /// waiting for workers, so new clients are refused at once).
    pub(crate) fn close(&mut self) {
        self.socket = None;
    }
}

impl<A> fmt::Debug for SocketListener<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe::describe(self.socket.as_ref(), f)
    }
}

impl<A> ErrorType for SocketListener<A> {
    type Error = io::Error;
}

impl<A: Address> Listener for SocketListener<A> {
    type Conn = SocketConnection<A>;

    fn accept(&mut self) -> io::Result<Option<Accepted<Self::Conn>>> {
        let Some(socket) = &self.socket else {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "listener closed",
            ));
        };
        // Linux's accept gives blocking sockets whatever the listener is:
        // accept4 sets the mode in the same call (two fcntl fewer each).
        let flags = if self.nonblocking_connections {
            libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK
        } else {
            libc::SOCK_CLOEXEC
        };
        match retry(|| socket.accept4(flags)) {
            Ok((conn, addr)) => {
                let client = A::from_sockaddr(&addr);
                let inherited = self.inheritance.holds(&conn)?;
                let conn = SocketConnection::new(
                    conn,
                    self.nonblocking_connections,
                    self.idle_policy,
                    inherited,
                    &self.live,
                )?;
                Ok(Some(Accepted::new(conn, client)))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn local_addr(&self) -> A {
        self.address.clone()
    }
}

/// Whether accepted sockets start with the idle timeout in their
/// `SO_RCVTIMEO` and `SO_SNDTIMEO`. Linux's TCP accept copies them from the
/// listener, which saves two `setsockopt` per connection; its Unix stream
/// accept does not. The first accepted socket is checked, so a kernel that
/// does not copy them costs one look and changes nothing else.
#[derive(Debug, Clone, Copy)]
enum Inheritance {
    /// Not offered: accepted sockets set their timeouts themselves.
    None,
    /// Set on the listener (as read back from it), not yet checked.
    Offered(Option<std::time::Duration>),
    /// Checked on the first accepted socket.
    Checked(bool),
}

impl Inheritance {
    fn offer(listener: &Socket, timeout: Option<std::time::Duration>) -> io::Result<Self> {
        listener.set_read_timeout(timeout)?;
        listener.set_write_timeout(timeout)?;
        Ok(Self::Offered(listener.read_timeout()?))
    }

    /// Whether `accepted` holds the listener's timeouts.
    fn holds(&mut self, accepted: &Socket) -> io::Result<bool> {
        match *self {
            Self::None => Ok(false),
            Self::Checked(holds) => Ok(holds),
            Self::Offered(expected) => {
                let holds =
                    accepted.read_timeout()? == expected && accepted.write_timeout()? == expected;
                *self = Self::Checked(holds);
                Ok(holds)
            }
        }
    }
}

impl<A> SocketListener<A> {
    pub(crate) fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        self.socket.as_ref().map(AsFd::as_fd)
    }
}
