//! The std server: core's `Server` with a bound socket, Python's
//! `TCPServer`, `UDPServer`, `UnixStreamServer` and `UnixDatagramServer`
//! (one type; the [`SocketKind`] says which).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use socket2::Socket;
use socketserver_core::time::Clock;
use socketserver_core::{DefaultHooks, FromHandler, Handled, Server, ServerHooks, StrategyFor};

use crate::net::address::ToAddress;
use crate::options::Options;
use crate::server::kind::SocketKind;
use crate::server::{bind, new_socket};
use crate::strategy::Attach;
use crate::waiter::{Serving, ShutdownHandle, Waiter};

/// core's server as a std server holds it.
pub type CoreServer<T, P, K> = Server<<T as SocketKind>::Source, Waiter, P, K>;

/// A server on std sockets: core's [`Server`] with its socket bound (and
/// listening), Python's server classes. Use the aliases (`TCPServer`,
/// `ThreadingUDPServer`, `ForkingUnixStreamServer`, …) rather than this name.
///
/// Dropping the server runs `server_close` if it has not run, as Python's
/// `with` block does.
pub struct SocketServer<T, P, K = DefaultHooks>
where
    T: SocketKind,
    K: ServerHooks<T::Addr>,
    P: StrategyFor<T::Source, K>,
{
    core: CoreServer<T, P, K>,
    options: Options,
    closed: bool,
}

/// A server whose socket exists but is not bound yet: Python's
/// `bind_and_activate=False`. Set socket options through
/// [`socket`](Self::socket), then [`server_bind`](Self::server_bind) and
/// [`server_activate`](Self::server_activate). Dropping it closes the socket.
#[derive(Debug)]
pub struct UnboundServer<T: SocketKind, P, K> {
    socket: Socket,
    address: T::Addr,
    strategy: P,
    hooks: K,
    options: Options,
}

impl<T, P, K> UnboundServer<T, P, K>
where
    T: SocketKind,
    K: ServerHooks<T::Addr>,
    P: StrategyFor<T::Source, K> + Attach,
{
    /// The socket, for options to set before binding (Python's `server.socket`).
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The address as given until bound; the real one after.
    pub fn server_address(&self) -> &T::Addr {
        &self.address
    }

    /// Python's `server_bind`: reuse options, then bind.
    pub fn server_bind(&mut self) -> io::Result<()> {
        self.address = bind(&self.socket, &self.address, &self.options)?;
        Ok(())
    }

    /// Python's `server_activate`: listens (streams), and returns the
    /// server. On an error the socket is closed.
    pub fn server_activate(self) -> io::Result<SocketServer<T, P, K>> {
        let waiter = Waiter::new()?;
        let source = T::activate(self.socket, self.address, &self.options, &waiter)?;
        let mut strategy = self.strategy;
        strategy.attach(waiter.waker());
        if !T::SHARED_SOCKET
            && let Some(socket) = T::socket(&source)
        {
            strategy.attach_listener(socket.as_raw_fd());
        }
        strategy.adopt_idle_policy(self.options.idle_policy);
        let mut core = Server::new(source, waiter, strategy, self.hooks);
        core.set_timeout(self.options.timeout);
        Ok(SocketServer {
            core,
            options: self.options,
            closed: false,
        })
    }
}

impl<T, P> SocketServer<T, P, DefaultHooks>
where
    T: SocketKind,
    DefaultHooks: ServerHooks<T::Addr>,
    P: StrategyFor<T::Source, DefaultHooks> + Attach,
{
    /// Binds `address` (and listens), and returns the server serving
    /// `handler` with the strategy's defaults: Python's
    /// `ThreadingTCPServer(address, Handler)`. Port 0 lets the kernel choose.
    ///
    /// ```no_run
    /// use socketserver_core::Echo;
    /// use socketserver_std::ThreadingTCPServer;
    ///
    /// # fn main() -> std::io::Result<()> {
    /// let mut server = ThreadingTCPServer::bind("127.0.0.1:0", Echo::<1024>)?;
    /// # Ok(()) }
    /// ```
    pub fn bind<H>(address: impl ToAddress<T::Addr>, handler: H) -> io::Result<Self>
    where
        P: FromHandler<H>,
    {
        Self::new(address, P::from_handler(handler))
    }

    /// Binds `address` (and listens), and returns the server with a
    /// strategy built by hand (`Threading::new(handler).max_threads(64)`,
    /// `HeapMultiplexed`). Port 0 lets the kernel choose.
    pub fn new(address: impl ToAddress<T::Addr>, strategy: P) -> io::Result<Self> {
        Self::with_options(address, strategy, DefaultHooks, Options::default())
    }
}

impl<T, P, K> SocketServer<T, P, K>
where
    T: SocketKind,
    K: ServerHooks<T::Addr>,
    P: StrategyFor<T::Source, K> + Attach,
{
    /// Binds (and listens) with the given hooks.
    pub fn with_hooks(address: impl ToAddress<T::Addr>, strategy: P, hooks: K) -> io::Result<Self> {
        Self::with_options(address, strategy, hooks, Options::default())
    }

    /// Binds (and listens) with hooks and Python's knobs. A failure closes
    /// the socket before the error returns (bpo-22435: no descriptor leaks).
    pub fn with_options(
        address: impl ToAddress<T::Addr>,
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
        address: impl ToAddress<T::Addr>,
        strategy: P,
        hooks: K,
        mut options: Options,
    ) -> io::Result<UnboundServer<T, P, K>> {
        let address = address.to_address()?;
        options.nonblocking_connections |= strategy.nonblocking_connections();
        let socket = new_socket(&address, T::TYPE)?;
        Ok(UnboundServer {
            socket,
            address,
            strategy,
            hooks,
            options,
        })
    }
}

impl<T, P, K> SocketServer<T, P, K>
where
    T: SocketKind,
    K: ServerHooks<T::Addr>,
    P: StrategyFor<T::Source, K>,
{
    /// Python's `serve_forever`: serves until a [`ShutdownHandle`] stops it.
    /// A stop wakes the wait at once; `poll_interval` only paces
    /// `service_actions` (Python's default is 0.5 s).
    ///
    /// After a graceful stop ([`ShutdownHandle::shutdown_within`]) it
    /// returns only once the requests in flight finished or, at the end of
    /// the grace period, were cut.
    pub fn serve_forever(&mut self, poll_interval: Duration) -> io::Result<()> {
        let _serving = Serving::new(self.core.waiter().control());
        // A deadline left by a stop that came after an earlier loop ended.
        self.core.waiter().control().take_grace_deadline();
        self.core.serve_forever(poll_interval)?;
        if let Some(deadline) = self.core.waiter().control().take_grace_deadline() {
            let grace = deadline.saturating_duration_since(std::time::Instant::now());
            if !self.drain(grace)? {
                self.cut_in_flight();
            }
        }
        Ok(())
    }

    /// Python's `handle_request`: one request, or `handle_timeout` after the
    /// timeout ([`Options::timeout`], else the strategy's).
    pub fn handle_request(&mut self) -> io::Result<Handled> {
        self.core.handle_request()
    }

    /// One pass that does not wait, for a caller's own loop (see
    /// [`ServerGroup`](crate::ServerGroup)): collects what is ready, then
    /// advances the requests in flight and takes the new ones waiting.
    /// Returns whether anything moved: while it does, call it again before
    /// sleeping; then sleep until [`as_fd`](AsFd::as_fd) is readable.
    pub fn serve_ready(&mut self) -> bool {
        // A zero wait: gathers readiness and arms the socket's next event,
        // so the descriptor of `as_fd` wakes the caller's loop. An epoll
        // error (it has none to give in practice) shows at the next wait.
        let now = self.core.waiter().now();
        let _ = self.core.wait_ready(Some(now));
        self.core.serve_ready()
    }

    /// Serves requests already taken, taking none, for at most `grace`:
    /// the graceful half of a shutdown. Returns whether all finished.
    pub fn drain(&mut self, grace: Duration) -> io::Result<bool> {
        let deadline = self.core.waiter().now().saturating_add(grace);
        self.core.drain(deadline)
    }

    /// Ends every request still in flight by force, after a [`drain`](Self::drain)
    /// that returned `false`: each connection is reset, so no client reads a
    /// clean end of stream after a cut transfer; handlers blocked on one
    /// wake with an error and `finish` runs (threads), children get 200 ms
    /// and are then killed (forking), slots are ended (multiplexed).
    pub fn cut_in_flight(&mut self) {
        self.core.cut_in_flight();
        self.shutdown_handle().cut_in_flight();
    }

    /// A cloneable handle that stops `serve_forever` from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.core.waiter().shutdown_handle()
    }

    /// Python's `shutdown()`: see [`ShutdownHandle::shutdown`].
    pub fn shutdown(&self) {
        self.shutdown_handle().shutdown();
    }

    /// Python's `server_close`: a listening socket closes first (new clients
    /// are refused at once), then the strategy finishes (`block_on_close`:
    /// join threads, wait for children), then the hook; a datagram socket,
    /// which requests answer on, closes last. Runs once; later calls and
    /// the drop do nothing.
    pub fn server_close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if !T::SHARED_SOCKET {
            T::close(self.core.source_mut());
        }
        self.core.server_close();
        if T::SHARED_SOCKET {
            T::close(self.core.source_mut());
        }
    }

    /// Python's `server_address`: the bound address (the real port when
    /// port 0 was asked for), or the path for Unix servers. Handlers reach
    /// it as `req.server().server_address()`.
    pub fn server_address(&self) -> &T::Addr {
        self.core.server_address()
    }

    /// Python's `max_packet_size` (datagram servers read at most this many
    /// bytes of a datagram).
    pub fn max_packet_size(&self) -> usize {
        self.options.max_packet_size
    }

    /// Python's `fileno()`: the server socket's descriptor, -1 once closed.
    pub fn fileno(&self) -> RawFd {
        self.socket().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Python's `server.socket`; `None` once closed.
    pub fn socket(&self) -> Option<&Socket> {
        T::socket(self.core.source())
    }

    /// The options the server was built with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The hooks.
    pub fn hooks(&self) -> &K {
        self.core.hooks()
    }

    /// The strategy (and through it the handler).
    pub fn strategy(&self) -> &P {
        self.core.strategy()
    }

    /// The strategy, mutably.
    pub fn strategy_mut(&mut self) -> &mut P {
        self.core.strategy_mut()
    }

    /// core's server, for what this type does not forward.
    pub fn core(&mut self) -> &mut CoreServer<T, P, K> {
        &mut self.core
    }
}

impl<T, P, K> AsRawFd for SocketServer<T, P, K>
where
    T: SocketKind,
    K: ServerHooks<T::Addr>,
    P: StrategyFor<T::Source, K>,
{
    fn as_raw_fd(&self) -> RawFd {
        self.fileno()
    }
}

/// The server's epoll descriptor (not the socket: that is
/// [`fileno`](SocketServer::fileno), Python's): readable while the server
/// has something to do, for a loop serving several servers, which then
/// calls [`serve_ready`](SocketServer::serve_ready).
impl<T, P, K> AsFd for SocketServer<T, P, K>
where
    T: SocketKind,
    K: ServerHooks<T::Addr>,
    P: StrategyFor<T::Source, K>,
{
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.core.waiter().as_fd()
    }
}

impl<T, P, K> std::fmt::Debug for SocketServer<T, P, K>
where
    T: SocketKind,
    K: ServerHooks<T::Addr>,
    P: StrategyFor<T::Source, K>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketServer")
            .field("server_address", self.server_address())
            .field("source", self.core.source())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<T, P, K> Drop for SocketServer<T, P, K>
where
    T: SocketKind,
    K: ServerHooks<T::Addr>,
    P: StrategyFor<T::Source, K>,
{
    fn drop(&mut self) {
        self.server_close();
    }
}
