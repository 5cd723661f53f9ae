//! What differs between a stream server and a datagram server on std
//! sockets, said once: the socket type, what `server_activate` builds, and
//! the order of `server_close`. Everything else is one server.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;

use socket2::{Socket, Type};
use socketserver_core::{Datagrams, RequestSource};

use crate::net::address::Address;
use crate::net::datagram::SocketDatagram;
use crate::net::listener::SocketListener;
use crate::options::Options;
use crate::waiter::{Pollable, Waiter};

/// A kind of std server: [`StreamKind`] (Python's `TCPServer`,
/// `UnixStreamServer`) or [`DatagramKind`] (`UDPServer`,
/// `UnixDatagramServer`), over addresses `Addr`.
pub trait SocketKind: Debug {
    /// The address family: `SocketAddr` or [`UnixAddr`](crate::UnixAddr).
    type Addr: Address;
    /// Where the server's requests come from.
    type Source: RequestSource<Addr = Self::Addr, Socket = Self::Watched, Error = io::Error> + Debug;
    /// The socket the server's waiter watches.
    type Watched: Pollable;

    /// The socket type (`SOCK_STREAM` or `SOCK_DGRAM`).
    const TYPE: Type;

    /// Whether requests answer on the server's own socket (datagrams): then
    /// `server_close` lets them finish before the socket closes; a
    /// listening socket closes first, so that new clients are refused at once.
    const SHARED_SOCKET: bool;

    /// Python's `server_activate` for a socket bound to `address`: `listen`
    /// for streams; the source the server takes requests from.
    fn activate(
        socket: Socket,
        address: Self::Addr,
        options: &Options,
        waiter: &Waiter,
    ) -> io::Result<Self::Source>;

    /// The server's socket, `None` once closed.
    fn socket(source: &Self::Source) -> Option<&Socket>;

    /// Closes the server's socket (its share of it, for datagrams).
    fn close(source: &mut Self::Source);
}

/// Stream servers: a listening socket that yields connections.
#[derive(Debug)]
pub struct StreamKind<A>(PhantomData<A>);

impl<A: Address> SocketKind for StreamKind<A> {
    type Addr = A;
    type Source = SocketListener<A>;
    type Watched = SocketListener<A>;

    const TYPE: Type = Type::STREAM;
    const SHARED_SOCKET: bool = false;

    fn activate(
        socket: Socket,
        address: A,
        options: &Options,
        waiter: &Waiter,
    ) -> io::Result<Self::Source> {
        socket.listen(options.request_queue_size)?;
        SocketListener::new(
            socket,
            address,
            options.nonblocking_connections,
            options.idle_policy,
            waiter.connections(),
        )
    }

    fn socket(source: &Self::Source) -> Option<&Socket> {
        source.socket()
    }

    fn close(source: &mut Self::Source) {
        source.close();
    }
}

/// Datagram servers: a socket that yields packets, read into a buffer of
/// `max_packet_size` bytes.
#[derive(Debug)]
pub struct DatagramKind<A>(PhantomData<A>);

impl<A: Address> SocketKind for DatagramKind<A> {
    type Addr = A;
    type Source = Datagrams<SocketDatagram<A>, Vec<u8>>;
    type Watched = SocketDatagram<A>;

    const TYPE: Type = Type::DGRAM;
    const SHARED_SOCKET: bool = true;

    fn activate(
        socket: Socket,
        address: A,
        options: &Options,
        _waiter: &Waiter,
    ) -> io::Result<Self::Source> {
        let socket = SocketDatagram::new(socket, address)?;
        let size = options.max_packet_size;
        Ok(Datagrams::new(socket, vec![0; size], vec![0; size]))
    }

    fn socket(source: &Self::Source) -> Option<&Socket> {
        RequestSource::socket(source).socket()
    }

    fn close(source: &mut Self::Source) {
        source.socket_mut().close();
    }
}
