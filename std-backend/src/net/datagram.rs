//! A datagram socket: UDP or Unix datagram.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use embedded_io::ErrorType;
use socket2::Socket;
use socketserver_core::{DatagramSocket, Received, Sent};

use crate::net::address::Address;
use crate::net::reply_guard::ReplyGuard;
use crate::net::{describe, retry};
use crate::sys::{outq, recv};

/// A datagram socket, Python's `UDPServer.socket`: [`UdpDatagramSocket`] or
/// [`UnixDatagramSocket`]. Cloning shares the socket (no new descriptor), as
/// Python's worker threads share the server socket.
pub struct SocketDatagram<A> {
    socket: Option<Arc<Socket>>,
    /// What `server_address` reports (recorded at bind; shared by clones).
    address: Arc<A>,
    /// Unix datagram sockets only: see [`ReplyGuard`].
    guard: Option<Arc<Guarded<A>>>,
    family: PhantomData<fn() -> A>,
}

/// The reply guard of a Unix datagram socket and the send buffer it guards.
#[derive(Debug)]
struct Guarded<A> {
    guard: Mutex<ReplyGuard<A>>,
    capacity: usize,
}

/// A UDP socket (IPv4 or IPv6).
pub type UdpDatagramSocket = SocketDatagram<std::net::SocketAddr>;

/// A Unix datagram socket.
pub type UnixDatagramSocket = SocketDatagram<crate::net::address::UnixAddr>;

impl<A> Clone for SocketDatagram<A> {
    fn clone(&self) -> Self {
        Self {
            socket: self.socket.clone(),
            address: Arc::clone(&self.address),
            guard: self.guard.clone(),
            family: PhantomData,
        }
    }
}

impl<A: Address> SocketDatagram<A> {
    /// Wraps a socket bound to `address` and makes it non-blocking.
    pub(crate) fn new(socket: Socket, address: A) -> io::Result<Self> {
        socket.set_nonblocking(true)?;
        let guard = if A::IS_INET {
            None
        } else {
            Some(Arc::new(Guarded {
                guard: Mutex::new(ReplyGuard::default()),
                capacity: socket.send_buffer_size()?,
            }))
        };
        Ok(Self {
            socket: Some(Arc::new(socket)),
            address: Arc::new(address),
            guard,
            family: PhantomData,
        })
    }

    /// The socket; `None` once closed.
    pub fn socket(&self) -> Option<&Socket> {
        self.socket.as_deref()
    }

    /// Drops this handle's share of the socket.
    pub(crate) fn close(&mut self) {
        self.socket = None;
    }

    fn open(&self) -> io::Result<&Socket> {
        self.socket
            .as_deref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotConnected, "socket closed"))
    }

    pub(crate) fn poll_fd(&self) -> Option<BorrowedFd<'_>> {
        self.socket.as_deref().map(AsFd::as_fd)
    }
}

impl<A> fmt::Debug for SocketDatagram<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe::describe(self.socket.as_deref(), f)
    }
}

impl<A> ErrorType for SocketDatagram<A> {
    type Error = io::Error;
}

impl<A: Address> DatagramSocket for SocketDatagram<A> {
    type Addr = A;

    fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<Option<Received<A>>> {
        let socket = self.open()?;
        match retry(|| recv::recv_datagram(socket, buf, libc::MSG_DONTWAIT)) {
            Ok(datagram) => Ok(Some(Received {
                len: datagram.len,
                addr: A::from_sockaddr(&datagram.sender),
                truncated: datagram.truncated,
            })),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sends without blocking. A Unix datagram peer whose receive queue is
    /// full refuses with `EAGAIN`, and so does a full send buffer: the reply
    /// is dropped ([`Sent::Dropped`]) rather than stalling every other
    /// client behind one peer that does not read. On Unix datagram sockets a
    /// peer that holds half the send buffer unread gets no more replies
    /// until it reads, so the others keep the rest. A sender with no address (an
    /// unbound Unix socket) cannot be answered: [`Sent::NoReturnAddress`].
    fn send_to(&mut self, buf: &[u8], addr: &A) -> io::Result<Sent> {
        let socket = self.open()?;
        let Ok(to) = addr.to_sockaddr() else {
            return Ok(Sent::NoReturnAddress);
        };
        let guard = self.guard.as_deref();
        let before = match guard {
            Some(g) => {
                let state = lock(&g.guard);
                if state.is_quarantined(addr) {
                    return Ok(Sent::Dropped);
                }
                if state.is_filling(g.capacity) {
                    Some(outq::queued_bytes(socket.as_fd())?)
                } else {
                    Some(state.last_queued())
                }
            }
            None => None,
        };
        match retry(|| socket.send_to(buf, &to)) {
            Ok(_) => {
                if let (Some(g), Some(before)) = (guard, before) {
                    let after = outq::queued_bytes(socket.as_fd())?;
                    lock(&g.guard).sent(addr, buf.len(), before, after, g.capacity);
                }
                Ok(Sent::Queued)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Sent::Dropped),
            Err(e) => Err(e),
        }
    }

    fn local_addr(&self) -> A {
        A::clone(&self.address)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
