//! Servers in one call: a port of a stack bound over caller-owned storage,
//! its waiter, and core's [`Server`] over both, ready to `serve_forever`.

use core::time::Duration;

use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{IpEndpoint, IpListenEndpoint};
use socketserver_core::time::Clock;
use socketserver_core::{
    Datagrams, DefaultHooks, RequestSource, Sequential, Server, ServerHooks, StrategyFor, Wait,
};

use crate::error::Error;
use crate::handle::NetRef;
use crate::tcp::StackTcpListener;
use crate::udp::StackUdpSocket;
use crate::wait::Waiter;

/// Core's [`Server`] over a TCP port of a stack: what [`tcp_server`] returns.
pub type TcpServer<'s, 'a, P, K = DefaultHooks> =
    Server<StackTcpListener<'s, 'a>, Waiter<'s, 'a>, P, K>;

/// Core's [`Server`] over a UDP port of a stack, with packet and reply
/// buffers `B`: what [`udp_server`] returns.
pub type UdpServer<'s, 'a, B, P, K = DefaultHooks> =
    Server<Datagrams<StackUdpSocket<'s, 'a>, B>, Waiter<'s, 'a>, P, K>;

/// Serves `handler` on TCP `port` of the stack behind `net` (a [`NetRef`],
/// or `&stack`), one connection at a time (core's `Sequential`), with a
/// pool of `sockets` (`&mut storage` of a [`TcpStorage`](crate::TcpStorage)):
/// std's `TCPServer::bind(address, handler)`. Port 0 takes a free port of
/// the dynamic range; `server.source().port()` says which.
///
/// The server stops when the stack's [`Stop`](crate::Stop) is asked for
/// ([`Stack::with_stop`](crate::Stack::with_stop)), or, without one, when
/// its own flag is requested (`server.shutdown_flag()`).
///
/// ```no_run
/// # use core::cell::RefCell;
/// # use core::time::Duration;
/// # use smoltcp::phy::Device;
/// # use socketserver_core::{Echo, time::Clock};
/// # use socketserver_smoltcp::{Error, Idle, Stack, TcpStorage, tcp_server};
/// # fn example<'a, D: Device, Clk: Clock, I: Idle>(
/// #     stack: &RefCell<Stack<'a, D, Clk, I>>,
/// #     pool: &'a mut TcpStorage<4, 2048, 2048>,
/// # ) -> Result<(), Error> {
/// let mut server = tcp_server(stack, 7, pool, Echo::<1024>)?;
/// server.serve_forever(Duration::from_millis(500))
/// # }
/// ```
pub fn tcp_server<'s, 'a, H>(
    net: impl Into<NetRef<'s, 'a>>,
    port: u16,
    sockets: impl IntoIterator<Item = tcp::Socket<'a>>,
    handler: H,
) -> Result<TcpServer<'s, 'a, Sequential<H>>, Error>
where
    'a: 's,
    Sequential<H>: StrategyFor<StackTcpListener<'s, 'a>, DefaultHooks>,
{
    tcp_server_with(net, port, sockets, Sequential::new(handler), DefaultHooks)
}

/// [`tcp_server`] with a strategy of your choice (a pinned `Multiplexed`
/// to serve several connections at once) and hooks.
pub fn tcp_server_with<'s, 'a, P, K>(
    net: impl Into<NetRef<'s, 'a>>,
    port: u16,
    sockets: impl IntoIterator<Item = tcp::Socket<'a>>,
    strategy: P,
    hooks: K,
) -> Result<TcpServer<'s, 'a, P, K>, Error>
where
    'a: 's,
    P: StrategyFor<StackTcpListener<'s, 'a>, K>,
    K: ServerHooks<IpEndpoint>,
{
    let net = net.into();
    let waiter = Waiter::new(net)?;
    let listener = StackTcpListener::bind(net, port, sockets)?;
    Ok(Server::new(listener, waiter, strategy, hooks))
}

/// Serves the datagram `handler` on UDP `local` (a port, or an address and
/// port) of the stack behind `net`, with `socket` (from a
/// [`UdpStorage`](crate::UdpStorage)) and the `packet` and `reply` buffers
/// (the packet buffer's length is Python's `max_packet_size`): std's
/// `UDPServer::bind(address, handler)`. Port 0 takes a free port of the
/// dynamic range. Stops as [`tcp_server`] does.
pub fn udp_server<'s, 'a, B, H>(
    net: impl Into<NetRef<'s, 'a>>,
    local: impl Into<IpListenEndpoint>,
    socket: udp::Socket<'a>,
    (packet, reply): (B, B),
    handler: H,
) -> Result<UdpServer<'s, 'a, B, Sequential<H>>, Error>
where
    'a: 's,
    B: AsMut<[u8]> + AsRef<[u8]> + core::fmt::Debug,
    Sequential<H>: StrategyFor<Datagrams<StackUdpSocket<'s, 'a>, B>, DefaultHooks>,
{
    udp_server_with(
        net,
        local,
        socket,
        (packet, reply),
        Sequential::new(handler),
        DefaultHooks,
    )
}

/// [`udp_server`] with a strategy and hooks of your choice.
pub fn udp_server_with<'s, 'a, B, P, K>(
    net: impl Into<NetRef<'s, 'a>>,
    local: impl Into<IpListenEndpoint>,
    socket: udp::Socket<'a>,
    (packet, reply): (B, B),
    strategy: P,
    hooks: K,
) -> Result<UdpServer<'s, 'a, B, P, K>, Error>
where
    'a: 's,
    B: AsMut<[u8]> + AsRef<[u8]> + core::fmt::Debug,
    P: StrategyFor<Datagrams<StackUdpSocket<'s, 'a>, B>, K>,
    K: ServerHooks<IpEndpoint>,
{
    let net = net.into();
    let waiter = Waiter::new(net)?;
    let socket = StackUdpSocket::bind(net, local, socket)?;
    let source = Datagrams::new(socket, packet, reply);
    Ok(Server::new(source, waiter, strategy, hooks))
}

/// `serve_forever`, then a graceful end: the requests still in flight when
/// it returns (a `Multiplexed` server's; `Sequential` finishes its one
/// inside `serve_forever`) are served, taking no new one, until they finish
/// or the grace period of the stack's [`Stop`](crate::Stop) is over, then
/// cut (RST). Without a grace period they finish in their own time (the
/// stack's idle timeout bounds it). Returns whether every request finished;
/// `server_close` comes after, as ever.
///
/// std's `serve_forever` after `ShutdownHandle::shutdown_within`.
pub fn serve_until_stopped<'s, 'a, S, P, K>(
    server: &mut Server<S, Waiter<'s, 'a>, P, K>,
    poll_interval: Duration,
) -> Result<bool, Error>
where
    S: RequestSource,
    Waiter<'s, 'a>: Wait<S::Socket, Error = Error>,
    P: StrategyFor<S, K>,
    K: ServerHooks<S::Addr>,
{
    server.serve_forever(poll_interval)?;
    let net = server.waiter().net();
    let deadline = match net.with(|net| net.stop_deadline())? {
        Some(deadline) => deadline,
        None => server.waiter().now().saturating_add(Duration::MAX),
    };
    let finished = server.drain(deadline)?;
    if !finished {
        server.cut_in_flight();
    }
    Ok(finished)
}
