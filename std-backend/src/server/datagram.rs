//! Datagram servers: Python's `UDPServer` and `UnixDatagramServer`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use socket2::{Socket, Type};
use socketserver_core::time::Clock;
use socketserver_core::{DatagramServer, DatagramStrategy, DefaultHooks, Handled, ServerHooks};

use crate::hooks::Hooks;
use crate::net::address::{Address, ToAddress};
use crate::net::datagram::SocketDatagram;
use crate::options::Options;
use crate::server::{bind, new_socket};
use crate::strategy::Attach;
use crate::waiter::{Serving, ShutdownHandle, Waiter};

type Core<A, P, K> = DatagramServer<SocketDatagram<A>, Waiter, Hooks<K>, P, Vec<u8>>;

/// A datagram server on std sockets: core's `DatagramServer` with a bound
/// socket, Python's `UDPServer` (`A = SocketAddr`) and `UnixDatagramServer`
/// (`A = UnixAddr`). Use the aliases (`UDPServer`, `ThreadingUDPServer`, …).
///
/// Datagrams longer than `max_packet_size` (8192) are truncated, as Python's
/// `recvfrom` does. Dropping the server runs `server_close` if it has not run.
pub struct SocketDatagramServer<A, P, K = DefaultHooks>
where
    A: Address,
    K: ServerHooks<A>,
    P: DatagramStrategy<SocketDatagram<A>, Hooks<K>>,
{
    core: Core<A, P, K>,
    address: A,
    options: Options,
    closed: bool,
}

/// A datagram server not bound yet (`bind_and_activate=False`).
#[derive(Debug)]
pub struct UnboundDatagramServer<A, P, K> {
    socket: Socket,
    address: A,
    strategy: P,
    hooks: K,
    options: Options,
}

impl<A, P, K> UnboundDatagramServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: DatagramStrategy<SocketDatagram<A>, Hooks<K>> + Attach,
{
    /// The socket, for options to set before binding.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The address as given until bound; the real one after.
    pub fn server_address(&self) -> &A {
        &self.address
    }

    /// Python's `server_bind`.
    pub fn server_bind(&mut self) -> io::Result<()> {
        self.address = bind(&self.socket, &self.address, &self.options)?;
        Ok(())
    }

    /// Python's `server_activate` (no `listen` for datagrams): returns the server.
    pub fn server_activate(self) -> io::Result<SocketDatagramServer<A, P, K>> {
        let socket = SocketDatagram::new(self.socket)?;
        let waiter = Waiter::new()?;
        let mut strategy = self.strategy;
        strategy.attach(waiter.waker());
        let hooks = Hooks::new(self.hooks, self.options.timeout);
        let size = self.options.max_packet_size;
        Ok(SocketDatagramServer {
            core: DatagramServer::new(
                socket,
                waiter,
                strategy,
                hooks,
                vec![0; size],
                vec![0; size],
            ),
            address: self.address,
            options: self.options,
            closed: false,
        })
    }
}

impl<A, P> SocketDatagramServer<A, P, DefaultHooks>
where
    A: Address,
    P: DatagramStrategy<SocketDatagram<A>, Hooks<DefaultHooks>> + Attach,
{
    /// Binds `address` and returns the server, Python's `UDPServer(address, Handler)`.
    pub fn new(address: impl ToAddress<A>, strategy: P) -> io::Result<Self> {
        Self::with_options(address, strategy, DefaultHooks, Options::default())
    }
}

impl<A, P, K> SocketDatagramServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: DatagramStrategy<SocketDatagram<A>, Hooks<K>> + Attach,
{
    /// Binds with the given hooks.
    pub fn with_hooks(address: impl ToAddress<A>, strategy: P, hooks: K) -> io::Result<Self> {
        Self::with_options(address, strategy, hooks, Options::default())
    }

    /// Binds with hooks and Python's knobs; a failure closes the socket.
    pub fn with_options(
        address: impl ToAddress<A>,
        strategy: P,
        hooks: K,
        options: Options,
    ) -> io::Result<Self> {
        let mut unbound = Self::unbound(address, strategy, hooks, options)?;
        unbound.server_bind()?;
        unbound.server_activate()
    }

    /// Creates the socket without binding it (`bind_and_activate=False`).
    pub fn unbound(
        address: impl ToAddress<A>,
        strategy: P,
        hooks: K,
        options: Options,
    ) -> io::Result<UnboundDatagramServer<A, P, K>> {
        let address = address.to_address()?;
        let socket = new_socket(&address, Type::DGRAM)?;
        Ok(UnboundDatagramServer {
            socket,
            address,
            strategy,
            hooks,
            options,
        })
    }

    /// Python's `serve_forever`; see `SocketStreamServer::serve_forever`.
    ///
    /// A graceful stop ([`ShutdownHandle::shutdown_within`]) stops it as
    /// `shutdown` does: a datagram request never waits on a peer, so there is
    /// nothing to drain; `server_close` waits for workers still running.
    pub fn serve_forever(&mut self, poll_interval: Duration) -> io::Result<()> {
        let _serving = Serving::new(self.core.waiter().control());
        let served = self.core.serve_forever(poll_interval);
        // Used up: a later loop starts with no grace period pending.
        self.core.waiter().control().take_grace_deadline();
        served
    }

    /// Python's `handle_request`.
    pub fn handle_request(&mut self) -> io::Result<Handled> {
        self.core.handle_request()
    }

    /// One pass that does not wait, for a caller's own loop (see
    /// [`ServerGroup`](crate::ServerGroup)): collects what is ready, then
    /// advances the requests in flight and takes the new ones waiting.
    /// Returns whether anything moved: while it does, call it again before
    /// sleeping; then sleep until [`as_fd`](AsFd::as_fd) is readable.
    pub fn poll(&mut self) -> bool {
        // A zero wait: gathers readiness and arms the socket's next event,
        // so the descriptor of `as_fd` wakes the caller's loop. An epoll
        // error (it has none to give in practice) shows at the next wait.
        let now = self.core.waiter().now();
        let _ = self.core.wait_ready(Some(now));
        self.core.poll()
    }

    /// A cloneable handle that stops `serve_forever` from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.core.waiter().shutdown_handle()
    }

    /// Python's `shutdown()`.
    pub fn shutdown(&self) {
        self.shutdown_handle().shutdown();
    }

    /// Python's `server_close`: the strategy finishes (`block_on_close`),
    /// the hook runs, and the server's share of the socket is closed.
    pub fn server_close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.core.server_close();
        self.core.socket_mut().close();
    }

    /// Python's `server_address`.
    pub fn server_address(&self) -> &A {
        &self.address
    }

    /// Python's `max_packet_size`.
    pub fn max_packet_size(&self) -> usize {
        self.options.max_packet_size
    }

    /// Python's `fileno()`: -1 once closed.
    pub fn fileno(&self) -> RawFd {
        self.socket().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Python's `server.socket`; `None` once closed.
    pub fn socket(&self) -> Option<&Socket> {
        self.core.socket().socket()
    }

    /// The options the server was built with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The user's hooks.
    pub fn hooks(&self) -> &K {
        self.core.hooks().inner()
    }

    /// The strategy.
    pub fn strategy(&self) -> &P {
        self.core.strategy()
    }

    /// The strategy, mutably.
    pub fn strategy_mut(&mut self) -> &mut P {
        self.core.strategy_mut()
    }

    /// core's server.
    pub fn core(&mut self) -> &mut Core<A, P, K> {
        &mut self.core
    }
}

impl<A, P, K> AsRawFd for SocketDatagramServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: DatagramStrategy<SocketDatagram<A>, Hooks<K>>,
{
    fn as_raw_fd(&self) -> RawFd {
        self.core.socket().socket().map_or(-1, AsRawFd::as_raw_fd)
    }
}

/// The server's epoll descriptor (not the socket: that is
/// [`fileno`](SocketDatagramServer::fileno), Python's): readable while the server has
/// something to do, for a loop serving several servers, which then calls
/// [`poll`](SocketDatagramServer::poll).
impl<A, P, K> AsFd for SocketDatagramServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: DatagramStrategy<SocketDatagram<A>, Hooks<K>>,
{
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.core.waiter().as_fd()
    }
}

impl<A, P, K> std::fmt::Debug for SocketDatagramServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: DatagramStrategy<SocketDatagram<A>, Hooks<K>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketDatagramServer")
            .field("server_address", &self.address)
            .field("socket", self.core.socket())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<A, P, K> Drop for SocketDatagramServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: DatagramStrategy<SocketDatagram<A>, Hooks<K>>,
{
    fn drop(&mut self) {
        if !self.closed {
            self.closed = true;
            self.core.server_close();
            self.core.socket_mut().close();
        }
    }
}
