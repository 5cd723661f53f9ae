//! What a backend supplies: sockets, readiness and a way to wait.
//!
//! The lifecycle code in this crate never touches an OS or a network stack; it
//! talks to these traits. `socketserver-std` implements them over `socket2`,
//! `socketserver-smoltcp` over a smoltcp interface, and tests over memory.

use core::fmt::Debug;

use embedded_io::{ErrorType, Read, ReadReady, Write, WriteReady};

use crate::incoming::Accepted;
use crate::shutdown::ShutdownFlag;
use crate::time::{Clock, Duration, Instant};

/// One accepted stream connection, Python's `request` for stream servers.
///
/// Reads and writes block (as `embedded_io` specifies) unless the readiness
/// traits said they would not; a non-blocking handler checks `read_ready` and
/// `write_ready` first. `read` returning `Ok(0)` means the peer sent EOF.
pub trait Connection: Read + Write + ReadReady + WriteReady + Debug {
    /// The peer's address, Python's `client_address`.
    type Addr: Debug + Clone + Sync;

    /// Half-closes the sending side (`shutdown(SHUT_WR)`), so the peer reads EOF.
    fn shutdown_write(&mut self) -> Result<(), Self::Error>;

    /// Closes the connection and releases what it holds (an fd, a smoltcp
    /// socket). The default drops it: a backend whose connection releases
    /// everything in `Drop` (both of ours) need not write it; an in-memory
    /// transport may, to observe the close.
    fn close(self)
    where
        Self: Sized,
    {
        drop(self);
    }

    /// Ends the connection so that the peer sees a reset, not a clean end
    /// of stream: the server's forced end of a request (a shutdown deadline,
    /// an idle or slow peer, an eviction), so that a client cannot mistake a
    /// cut transfer for a complete one. Bytes not yet sent are discarded. It
    /// must work even when another thread or process holds a copy of the
    /// connection. A transport with no reset (a Unix stream socket) closes,
    /// and its peer reads EOF; the default closes.
    fn abort(self)
    where
        Self: Sized,
    {
        self.close();
    }

    /// Bounds every later blocking read and write; `None` waits forever.
    /// A read that times out fails with an error of kind `TimedOut`.
    fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Self::Error>;

    /// Reads what has arrived without waiting: `Ok(None)` when a read would
    /// block, `Ok(Some(0))` at EOF. The default asks [`ReadReady`] first; a
    /// backend overrides it with one non-blocking call.
    fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Self::Error> {
        if self.read_ready()? {
            self.read(buf).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Writes what fits without waiting: `Ok(None)` when a write would block.
    fn try_write(&mut self, buf: &[u8]) -> Result<Option<usize>, Self::Error> {
        if self.write_ready()? {
            self.write(buf).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Arranges for `waker` to be woken once the connection may be ready
    /// for `interest`, after a `try_read` or `try_write` found it was not;
    /// at once if it already is (data that arrived in between must not be
    /// missed). The backend's waiter (its reactor) does the waking. The
    /// default wakes at once: correct, but a multiplexed server then polls
    /// such a connection on every pass.
    fn register_waker(&mut self, interest: Interest, waker: &core::task::Waker) {
        let _ = interest;
        waker.wake_by_ref();
    }

    /// Disables Nagle's algorithm (`TCP_NODELAY`) where the transport has it.
    fn set_nodelay(&mut self, nodelay: bool) -> Result<(), Self::Error> {
        let _ = nodelay;
        Ok(())
    }
}

/// A listening stream socket that accepts without blocking.
pub trait Listener: ErrorType + Debug {
    /// The connections it accepts.
    type Conn: Connection;

    /// Takes one pending connection and its client's address, Python's
    /// `get_request()`: `Ok(None)` when none is waiting.
    fn accept(&mut self) -> Result<Option<Accepted<Self::Conn>>, Self::Error>;

    /// The address it listens on, as the server reports it (Python's
    /// `server_address`): the real port when port 0 was asked for. A
    /// backend records it when it binds.
    fn local_addr(&self) -> <Self::Conn as Connection>::Addr;
}

/// What a received datagram was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received<A> {
    /// Bytes stored in the caller's buffer.
    pub len: usize,
    /// The sender; on Unix datagram sockets `None`-like values mean "unbound".
    pub addr: A,
    /// The datagram was longer than the buffer and its tail was dropped.
    pub truncated: bool,
}

/// A datagram socket, Python's `UDPServer.socket`.
pub trait DatagramSocket: ErrorType + Debug {
    /// A sender's address.
    type Addr: Debug + Clone + Sync;

    /// Takes one waiting datagram without blocking: `Ok(None)` when none is waiting.
    /// A datagram longer than `buf` is truncated, as Python's `recvfrom` does.
    fn recv_from(&mut self, buf: &mut [u8]) -> Result<Option<Received<Self::Addr>>, Self::Error>;

    /// The address it is bound to, as the server reports it (Python's
    /// `server_address`): the real port when port 0 was asked for. A
    /// backend records it when it binds.
    fn local_addr(&self) -> Self::Addr;

    /// Sends one datagram to `addr` without blocking: a datagram the socket
    /// cannot queue now (the peer's or the device's queue is full) is
    /// dropped, as a network may drop it, and [`Sent::Dropped`] says so. A
    /// server never waits on one slow peer while others are waiting.
    fn send_to(&mut self, buf: &[u8], addr: &Self::Addr) -> Result<Sent, Self::Error>;
}

/// What became of a datagram given to [`DatagramSocket::send_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Sent {
    /// Queued for sending.
    Queued,
    /// Not queued: there was no room, and waiting would block the server.
    Dropped,
    /// Not sent: the sender has no address to answer (an unbound Unix
    /// datagram socket), as Python's `sendto` to `''` fails.
    NoReturnAddress,
}

/// What a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Interest {
    /// Data to read, EOF, or a connection to accept.
    Read,
    /// Room to write.
    Write,
    /// Either.
    ReadWrite,
}

impl Interest {
    /// Whether reading readiness is wanted.
    pub const fn is_read(self) -> bool {
        matches!(self, Interest::Read | Interest::ReadWrite)
    }

    /// Whether writing readiness is wanted.
    pub const fn is_write(self) -> bool {
        matches!(self, Interest::Write | Interest::ReadWrite)
    }
}

/// A way to sleep until a socket may be ready, a deadline passes, or shutdown
/// is requested: Python's selector.
///
/// `S` is the server socket (a [`Listener`] or a [`DatagramSocket`]). The
/// connections of requests in flight are not passed: a request that waits
/// registers a waker with its connection ([`Connection::register_waker`]),
/// and the waiter wakes it when the backend sees the connection ready.
pub trait Wait<S: ?Sized>: Clock {
    /// Why waiting failed; it ends `serve_forever`.
    type Error: embedded_io::Error;

    /// Blocks until `server` (if given) may be ready, a connection a request
    /// waits on is ready (its waker fired), `deadline` passes, or
    /// [`Wait::shutdown_flag`] is requested. Returning early is allowed:
    /// callers re-check everything.
    fn wait(&mut self, server: Option<&S>, deadline: Option<Instant>) -> Result<(), Self::Error>;

    /// The flag whose request must interrupt [`Wait::wait`].
    fn shutdown_flag(&self) -> &ShutdownFlag;

    /// Whether the server socket may have a request waiting. `false` only
    /// when the waiter knows it has not become ready since it was last
    /// drained (an epoll event armed and not delivered): the loop then skips
    /// an `accept` or `recv` that could only say "would block".
    fn server_may_be_ready(&self) -> bool {
        true
    }
}
