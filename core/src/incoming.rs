//! A request as the server takes it: one value that travels from the
//! server socket through the strategy to the request runner.
//!
//! Python passes `request` and `client_address` side by side; here they
//! travel together, so a strategy's `process_request` takes one argument
//! whether the server accepts connections or receives datagrams.

use core::fmt::Debug;

use crate::error::Error;
use crate::transport::{Connection, DatagramSocket};

/// A request the server took: an accepted connection ([`Accepted`]) or a
/// received datagram ([`Packet`]). It knows its client and how its
/// transport ends; the hooks around that end are the request runner's
/// (`crate::runner`), so they are called from one place for every kind.
pub trait Request: Debug + Sized {
    /// The client's address, Python's `client_address`.
    type Addr: Debug + Clone + Sync;
    /// The transport's error.
    type Error: embedded_io::Error;
    /// What a parent process keeps of a request it handed to a forked child
    /// (an accepted connection, to reset it if the child dies; nothing for a
    /// datagram, whose socket is the server's).
    type Held;

    /// The client's address.
    fn client(&self) -> &Self::Addr;

    /// Half-closes the sending side, so the client reads EOF even if someone
    /// else still holds the socket (Python's `shutdown_request`). Errors
    /// change nothing: Python ignores them too. The default does nothing:
    /// a request whose socket is the server's (a datagram) has none to end.
    fn half_close(&mut self) {}

    /// Releases the transport (Python's `close_request`); the default
    /// releases nothing (see [`half_close`](Self::half_close)).
    fn close(self) {}

    /// Ends the transport with a reset: the server cut the request. The
    /// default resets nothing (see [`half_close`](Self::half_close)).
    fn reset(self) {}

    /// The part a parent process keeps after handing the request to a child.
    fn into_held(self) -> Option<Self::Held>;

    /// Whether `error` means the peer vanished (a reset, a broken pipe),
    /// which ends a stream request as EOF does and is not reported to
    /// `handle_error`. A datagram has no peer to vanish.
    fn peer_vanished(error: &Error<Self::Error>) -> bool {
        let _ = error;
        false
    }
}

/// An accepted connection and its client's address: a stream request.
#[derive(Debug)]
pub struct Accepted<C: Connection> {
    /// The connection, Python's `request`.
    pub conn: C,
    /// The client's address, Python's `client_address`.
    pub client: C::Addr,
}

impl<C: Connection> Accepted<C> {
    /// A request for `conn`, from `client`.
    pub fn new(conn: C, client: C::Addr) -> Self {
        Self { conn, client }
    }
}

impl<C: Connection> Request for Accepted<C> {
    type Addr = C::Addr;
    type Error = C::Error;
    type Held = C;

    fn client(&self) -> &C::Addr {
        &self.client
    }

    fn half_close(&mut self) {
        // ENOTCONN after a reset changes nothing.
        let _ = self.conn.shutdown_write();
    }

    fn close(self) {
        self.conn.close();
    }

    fn reset(self) {
        self.conn.abort();
    }

    fn into_held(self) -> Option<C> {
        Some(self.conn)
    }

    fn peer_vanished(error: &Error<C::Error>) -> bool {
        use embedded_io::{Error as _, ErrorKind};
        matches!(
            error.kind(),
            ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::NotConnected
        )
    }
}

/// A received datagram: the socket to answer on, the bytes, whether they
/// were truncated to the server's `max_packet_size`, the sender, and the
/// buffer the handler writes its one reply into.
pub struct Packet<'a, D: DatagramSocket> {
    /// The server's socket (shared by every request: nothing closes it).
    pub socket: &'a mut D,
    /// The datagram's bytes (at most `max_packet_size`).
    pub data: &'a [u8],
    /// The datagram was longer than the packet buffer and its tail was dropped.
    pub truncated: bool,
    /// The sender, Python's `client_address`.
    pub client: D::Addr,
    /// Scratch space for the reply.
    pub reply: &'a mut [u8],
}

/// The bytes are left out: a trace shows their length, not a dump.
impl<D: DatagramSocket> Debug for Packet<'_, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packet")
            .field("len", &self.data.len())
            .field("truncated", &self.truncated)
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

/// A datagram leaves nothing for a parent to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NothingHeld {}

impl<D: DatagramSocket> Request for Packet<'_, D> {
    type Addr = D::Addr;
    type Error = D::Error;
    type Held = NothingHeld;

    fn client(&self) -> &D::Addr {
        &self.client
    }

    fn into_held(self) -> Option<NothingHeld> {
        None
    }
}

/// A stream request whose connection is already gone (its future was
/// dropped, which reset it): only its client is left for the hooks.
#[derive(Debug)]
pub(crate) struct Departed<A>(pub(crate) A);

impl<A: Debug + Clone + Sync> Request for Departed<A> {
    type Addr = A;
    type Error = embedded_io::ErrorKind;
    type Held = NothingHeld;

    fn client(&self) -> &A {
        &self.0
    }

    fn into_held(self) -> Option<NothingHeld> {
        None
    }
}
