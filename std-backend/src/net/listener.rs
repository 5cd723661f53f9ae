//! A listening stream socket: TCP or Unix.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};

use embedded_io::ErrorType;
use socket2::Socket;
use socketserver_core::{Accepted, IdlePolicy, Listener};

use crate::net::address::Address;
use crate::net::connection::SocketConnection;
use crate::net::live::LiveConnections;
use crate::net::{describe, retry};

/// A listening socket that accepts without blocking: [`TcpListener`] or
/// [`UnixListener`]. Accepted connections are blocking unless the server was
/// built for non-blocking handlers (`Multiplexed`).
pub struct SocketListener<A> {
    socket: Option<Socket>,
    nonblocking_connections: bool,
    idle_policy: IdlePolicy,
    live: LiveConnections,
    family: PhantomData<fn() -> A>,
}

/// A listening TCP socket (IPv4 or IPv6).
pub type TcpListener = SocketListener<std::net::SocketAddr>;

/// A listening Unix stream socket.
pub type UnixListener = SocketListener<crate::net::address::UnixAddr>;

impl<A: Address> SocketListener<A> {
    /// Wraps a bound, listening socket and makes it non-blocking; blocking
    /// connections it accepts apply `idle_policy`, and every connection is
    /// listed in `live` until dropped.
    pub(crate) fn new(
        socket: Socket,
        nonblocking_connections: bool,
        idle_policy: IdlePolicy,
        live: LiveConnections,
    ) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket: Some(socket),
            nonblocking_connections,
            idle_policy,
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
        match retry(|| socket.accept()) {
            Ok((conn, addr)) => {
                // Linux's accept gives blocking sockets whatever the listener is.
                if self.nonblocking_connections {
                    conn.set_nonblocking(true)?;
                }
                let client = A::from_sockaddr(&addr);
                let conn = SocketConnection::new(
                    conn,
                    self.nonblocking_connections,
                    self.idle_policy,
                    &self.live,
                )?;
                Ok(Some((conn, client)))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl<A> SocketListener<A> {
    pub(crate) fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        self.socket.as_ref().map(AsFd::as_fd)
    }
}
