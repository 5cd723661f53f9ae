//! Stream servers: Python's `TCPServer` and `UnixStreamServer`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

use socket2::{Socket, Type};
use socketserver_core::time::Clock;
use socketserver_core::{DefaultHooks, Handled, ServerHooks, StreamServer, StreamStrategy};

use crate::hooks::Hooks;
use crate::net::address::{Address, ToAddress};
use crate::net::listener::SocketListener;
use crate::options::Options;
use crate::server::{bind, new_socket};
use crate::strategy::Attach;
use crate::waiter::{Serving, ShutdownHandle, Waiter};

/// A stream server on std sockets: core's `StreamServer` with a socket
/// bound and listening, Python's `TCPServer` (`A = SocketAddr`) and
/// `UnixStreamServer` (`A = UnixAddr`). Use the aliases (`TCPServer`,
/// `ThreadingTCPServer`, …) rather than this name.
///
/// Dropping the server runs `server_close` if it has not run, as Python's
/// `with` block does.
pub struct SocketStreamServer<A, P, K = DefaultHooks>
where
    A: Address,
    K: ServerHooks<A>,
    P: StreamStrategy<SocketListener<A>, Hooks<K>>,
{
    core: StreamServer<SocketListener<A>, Waiter, Hooks<K>, P>,
    address: A,
    options: Options,
    closed: bool,
}

/// A stream server whose socket exists but is not bound yet: Python's
/// `bind_and_activate=False`. Set socket options through
/// [`socket`](Self::socket), then [`server_bind`](Self::server_bind) and
/// [`server_activate`](Self::server_activate). Dropping it closes the socket.
#[derive(Debug)]
pub struct UnboundStreamServer<A, P, K> {
    socket: Socket,
    address: A,
    strategy: P,
    hooks: K,
    options: Options,
}

impl<A, P, K> UnboundStreamServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: StreamStrategy<SocketListener<A>, Hooks<K>> + Attach,
{
    /// The socket, for options to set before binding (Python's `server.socket`).
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// The address as given until bound; the real one after.
    pub fn server_address(&self) -> &A {
        &self.address
    }

    /// Python's `server_bind`: reuse options, then bind.
    pub fn server_bind(&mut self) -> io::Result<()> {
        self.address = bind(&self.socket, &self.address, &self.options)?;
        Ok(())
    }

    /// Python's `server_activate`: listens, and returns the server. On an
    /// error the socket is closed.
    pub fn server_activate(self) -> io::Result<SocketStreamServer<A, P, K>> {
        self.socket.listen(self.options.request_queue_size)?;
        let waiter = Waiter::new()?;
        let listener = SocketListener::new(
            self.socket,
            self.options.nonblocking_connections,
            self.options.idle_policy,
            waiter.connections(),
        )?;
        let mut strategy = self.strategy;
        strategy.attach(waiter.waker());
        strategy.adopt_idle_policy(self.options.idle_policy);
        let hooks = Hooks::new(self.hooks, self.options.timeout);
        Ok(SocketStreamServer {
            core: StreamServer::new(listener, waiter, strategy, hooks),
            address: self.address,
            options: self.options,
            closed: false,
        })
    }
}

impl<A, P> SocketStreamServer<A, P, DefaultHooks>
where
    A: Address,
    P: StreamStrategy<SocketListener<A>, Hooks<DefaultHooks>> + Attach,
{
    /// Binds `address`, listens, and returns the server, Python's
    /// `TCPServer(address, Handler)`. Port 0 lets the kernel choose.
    pub fn new(address: impl ToAddress<A>, strategy: P) -> io::Result<Self> {
        Self::with_options(address, strategy, DefaultHooks, Options::default())
    }
}

impl<A, P, K> SocketStreamServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: StreamStrategy<SocketListener<A>, Hooks<K>> + Attach,
{
    /// Binds and listens with the given hooks.
    pub fn with_hooks(address: impl ToAddress<A>, strategy: P, hooks: K) -> io::Result<Self> {
        Self::with_options(address, strategy, hooks, Options::default())
    }

    /// Binds and listens with hooks and Python's knobs. A failure closes
    /// the socket before the error returns (bpo-22435: no descriptor leaks).
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
        mut options: Options,
    ) -> io::Result<UnboundStreamServer<A, P, K>> {
        let address = address.to_address()?;
        options.nonblocking_connections |= strategy.nonblocking_connections();
        let socket = new_socket(&address, Type::STREAM)?;
        Ok(UnboundStreamServer {
            socket,
            address,
            strategy,
            hooks,
            options,
        })
    }

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
    /// timeout (hooks', then [`Options::timeout`], then the strategy's).
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

    /// Serves requests already taken, accepting none, for at most `grace`:
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

    /// Python's `server_close`: closes the listening socket first (new
    /// clients are refused at once), then lets the strategy finish
    /// (`block_on_close`: join threads, wait for children), then the hook.
    /// Runs once; later calls and the drop do nothing.
    pub fn server_close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.core.listener_mut().close();
        self.core.server_close();
    }

    /// Python's `server_address`: the bound address (the real port when
    /// port 0 was asked for), or the path for Unix servers.
    pub fn server_address(&self) -> &A {
        &self.address
    }

    /// Python's `fileno()`: the listening descriptor, -1 once closed.
    pub fn fileno(&self) -> RawFd {
        self.socket().map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Python's `server.socket`; `None` once closed.
    pub fn socket(&self) -> Option<&Socket> {
        self.core.listener().socket()
    }

    /// The options the server was built with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The user's hooks.
    pub fn hooks(&self) -> &K {
        self.core.hooks().inner()
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
    pub fn core(&mut self) -> &mut StreamServer<SocketListener<A>, Waiter, Hooks<K>, P> {
        &mut self.core
    }
}

impl<A, P, K> AsRawFd for SocketStreamServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: StreamStrategy<SocketListener<A>, Hooks<K>>,
{
    fn as_raw_fd(&self) -> RawFd {
        self.core.listener().socket().map_or(-1, AsRawFd::as_raw_fd)
    }
}

/// The server's epoll descriptor (not the socket: that is
/// [`fileno`](SocketStreamServer::fileno), Python's): readable while the server has
/// something to do, for a loop serving several servers, which then calls
/// [`poll`](SocketStreamServer::poll).
impl<A, P, K> AsFd for SocketStreamServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: StreamStrategy<SocketListener<A>, Hooks<K>>,
{
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.core.waiter().as_fd()
    }
}

impl<A, P, K> std::fmt::Debug for SocketStreamServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: StreamStrategy<SocketListener<A>, Hooks<K>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketStreamServer")
            .field("server_address", &self.address)
            .field("listener", self.core.listener())
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<A, P, K> Drop for SocketStreamServer<A, P, K>
where
    A: Address,
    K: ServerHooks<A>,
    P: StreamStrategy<SocketListener<A>, Hooks<K>>,
{
    fn drop(&mut self) {
        if !self.closed {
            self.closed = true;
            self.core.listener_mut().close();
            self.core.server_close();
        }
    }
}
