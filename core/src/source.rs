//! Where a server's requests come from: a listener that yields connections,
//! or a datagram socket (with its buffers) that yields packets. The server
//! is written once over this trait.

use core::fmt::Debug;

use embedded_io::ErrorType;

use crate::hooks::ServerHooks;
use crate::incoming::{Accepted, Packet, Request};
use crate::strategy::Strategy;
use crate::transport::{Connection, DatagramSocket, Listener};

/// The request a [`RequestSource`] yields while borrowed for `'a`: an
/// [`Accepted`] connection (which borrows nothing), or a [`Packet`] (which
/// borrows the source's socket and buffers).
///
/// `ImpliedBound` is never named: its default, `&'a Self`, tells the
/// compiler that `Self` outlives `'a`, so that a bound over every `'a`
/// ([`StrategyFor`]) holds for sources that borrow (a smoltcp stack), not
/// only for `'static` ones.
pub trait RequestOf<'a, ImpliedBound = &'a Self> {
    /// The request.
    type Request: Request;
}

/// A server socket that yields requests without blocking: a [`Listener`],
/// or [`Datagrams`].
pub trait RequestSource:
    for<'a> RequestOf<'a, Request: Request<Addr = Self::Addr>> + Debug
{
    /// The clients' address.
    type Addr: Debug + Clone + Sync;
    /// The socket a waiter watches for new requests.
    type Socket: ?Sized;
    /// Why taking a request failed (the server goes on).
    type Error: embedded_io::Error;
    /// Whether a failed take pauses taking for a moment. A listener's
    /// failure (EMFILE, ENOBUFS) leaves its socket readable, so taking at
    /// once would spin; a datagram socket's failure consumes the error it
    /// reported, so the next datagram is taken at once (only the pass ends).
    const PAUSE_AFTER_ERROR: bool;

    /// Takes one waiting request: `Ok(None)` when none is waiting.
    fn take(&mut self) -> Result<Option<<Self as RequestOf<'_>>::Request>, Self::Error>;

    /// The socket to watch.
    fn socket(&self) -> &Self::Socket;

    /// The address the socket is bound to: Python's `server_address`.
    fn local_addr(&self) -> Self::Addr;
}

impl<L: Listener> RequestOf<'_> for L {
    type Request = Accepted<L::Conn>;
}

impl<L: Listener> RequestSource for L {
    type Addr = <L::Conn as Connection>::Addr;
    type Socket = L;
    type Error = L::Error;
    const PAUSE_AFTER_ERROR: bool = true;

    fn take(&mut self) -> Result<Option<Accepted<L::Conn>>, L::Error> {
        self.accept()
    }

    fn socket(&self) -> &L {
        self
    }

    fn local_addr(&self) -> Self::Addr {
        Listener::local_addr(self)
    }
}

/// A datagram socket with its packet and reply buffers (`B`: an array, a
/// `&'static mut [u8]`, a `Vec`): the source of a datagram server.
///
/// The packet buffer's length is Python's `max_packet_size`: longer
/// datagrams are truncated to it.
#[derive(Debug)]
pub struct Datagrams<D, B> {
    socket: D,
    packet: B,
    reply: B,
}

impl<D, B> Datagrams<D, B>
where
    D: DatagramSocket,
    B: AsMut<[u8]> + AsRef<[u8]>,
{
    /// The requests received on `socket`, read into `packet`, answered from `reply`.
    pub fn new(socket: D, packet: B, reply: B) -> Self {
        Self {
            socket,
            packet,
            reply,
        }
    }

    /// Python's `max_packet_size`: the packet buffer's length.
    pub fn max_packet_size(&self) -> usize {
        self.packet.as_ref().len()
    }

    /// The socket, mutably.
    pub fn socket_mut(&mut self) -> &mut D {
        &mut self.socket
    }

    /// The socket, giving up the buffers.
    pub fn into_socket(self) -> D {
        self.socket
    }
}

impl<'a, D: DatagramSocket, B> RequestOf<'a> for Datagrams<D, B> {
    type Request = Packet<'a, D>;
}

impl<D, B> RequestSource for Datagrams<D, B>
where
    D: DatagramSocket,
    B: AsMut<[u8]> + AsRef<[u8]> + Debug,
{
    type Addr = D::Addr;
    type Socket = D;
    type Error = <D as ErrorType>::Error;
    const PAUSE_AFTER_ERROR: bool = false;

    fn take(&mut self) -> Result<Option<Packet<'_, D>>, Self::Error> {
        let packet = self.packet.as_mut();
        let Some(received) = self.socket.recv_from(packet)? else {
            return Ok(None);
        };
        Ok(Some(Packet {
            socket: &mut self.socket,
            data: &packet[..received.len.min(packet.len())],
            truncated: received.truncated,
            client: received.addr,
            reply: self.reply.as_mut(),
        }))
    }

    fn socket(&self) -> &D {
        &self.socket
    }

    fn local_addr(&self) -> D::Addr {
        self.socket.local_addr()
    }
}

/// A strategy that serves the requests of source `S` with hooks `K`, for
/// every borrow of the source: implemented for every `P` that is a
/// [`Strategy`] for them. Write this bound where a server is generic.
pub trait StrategyFor<S: RequestSource, K: ServerHooks<S::Addr>>:
    for<'a> Strategy<<S as RequestOf<'a>>::Request, K>
{
}

impl<S, K, P> StrategyFor<S, K> for P
where
    S: RequestSource,
    K: ServerHooks<S::Addr>,
    P: for<'a> Strategy<<S as RequestOf<'a>>::Request, K>,
{
}
