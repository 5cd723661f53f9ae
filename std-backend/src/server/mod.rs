//! Python's server classes over std sockets.

pub(crate) mod kind;
pub(crate) mod socket_server;

use std::io;

use socket2::{Socket, Type};

use crate::net::address::Address;
use crate::net::stale;
use crate::options::Options;

/// Creates the server's socket (close-on-exec, as socket2 does on Linux).
pub(crate) fn new_socket<A: Address>(address: &A, ty: Type) -> io::Result<Socket> {
    Socket::new(address.domain(), ty, None)
}

/// Python's `server_bind`: reuse options, bind, then the real address.
pub(crate) fn bind<A: Address>(socket: &Socket, address: &A, options: &Options) -> io::Result<A> {
    if options.allow_reuse_address {
        socket.set_reuse_address(true)?;
    }
    // gh-128916: SO_REUSEPORT only for IP; Linux 6.12.9+ rejects it on AF_UNIX.
    if options.allow_reuse_port && A::IS_INET {
        socket.set_reuse_port(true)?;
    }
    let sockaddr = address.to_sockaddr()?;
    if options.remove_stale_unix_socket
        && let Some(path) = sockaddr.as_pathname()
    {
        stale::remove_stale_socket(path, socket.r#type()?)?;
    }
    socket.bind(&sockaddr)?;
    A::bound(socket, address)
}
