//! Stream and datagram servers: Python's `TCPServer` / `UDPServer` lifecycle
//! over any backend.

use crate::hooks::ServerHooks;
use crate::lifecycle::end_stream_request;
use crate::serve_loop::{self, Handled, Pass, Taken};
use crate::shutdown::ShutdownFlag;
use crate::strategy::{AddrOf, DatagramStrategy, StreamStrategy};
use crate::time::{Duration, Instant, earliest};
use crate::trace::{step, trace_warn};
use crate::transport::{DatagramSocket, Listener, Wait};

/// How long accepting pauses after an accept error (EMFILE, ENOBUFS): long
/// enough not to spin on a listener that stays readable, short enough that
/// service resumes as soon as a descriptor frees up.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A stream server: a listener, a way to wait, hooks, and a strategy that
/// owns the handler.
///
/// Backends build it once their socket is bound and listening; the constructor
/// then calls the `server_activate` hook. See the crate docs for an example.
#[derive(Debug)]
pub struct StreamServer<L, W, K, P> {
    listener: L,
    waiter: W,
    hooks: K,
    strategy: P,
    accept_paused_until: Option<Instant>,
}

impl<L, W, K, P> StreamServer<L, W, K, P>
where
    L: Listener,
    W: Wait<L>,
    K: ServerHooks<AddrOf<L>>,
    P: StreamStrategy<L, K>,
{
    /// A server over a bound, listening `listener`.
    pub fn new(listener: L, waiter: W, strategy: P, hooks: K) -> Self {
        step!("socketserver::server", "__init__", listener);
        step!("socketserver::server", "server_activate");
        hooks.server_activate();
        Self {
            listener,
            waiter,
            hooks,
            strategy,
            accept_paused_until: None,
        }
    }

    /// Python's `handle_request`: waits (up to the timeout) for one request
    /// and processes it; after the timeout calls `handle_timeout`. Unlike
    /// Python it keeps waiting after a failed accept, until the timeout.
    pub fn handle_request(&mut self) -> Result<Handled, W::Error> {
        step!("socketserver::server", "handle_request");
        serve_loop::handle_request(self)
    }

    /// Python's `serve_forever`: serves until [`ShutdownFlag::request`],
    /// calling `service_actions` once per pass. A shutdown request wakes the
    /// wait at once; `poll_interval` only paces `service_actions`.
    pub fn serve_forever(&mut self, poll_interval: Duration) -> Result<(), W::Error> {
        step!("socketserver::server", "serve_forever", poll_interval);
        serve_loop::serve_forever(self, poll_interval)
    }

    /// One pass that never waits: advances held requests, takes the new
    /// requests waiting (at most 64), runs `service_actions`. Returns whether anything moved (a
    /// new request, or progress of a held one): while it returns `true`, call
    /// it again before sleeping. With `Multiplexed` it never blocks: call it
    /// from a firmware main loop.
    pub fn poll(&mut self) -> bool {
        serve_loop::poll(self)
    }

    /// Sleeps until the server socket (while it can take a request) or a
    /// request in flight may be ready, or until `deadline`, taking nothing:
    /// one `select()` of Python's loop, for a caller's own loop, which then
    /// calls [`poll`](Self::poll). With `deadline` now it only collects
    /// readiness (std: and arms the server socket's next event).
    pub fn wait_ready(&mut self, deadline: Option<Instant>) -> Result<(), W::Error> {
        Pass::wait_until(self, deadline)
    }

    /// Serves the requests already taken, accepting no new one, until none is
    /// left or `deadline` passes: the graceful part of a shutdown. Returns
    /// whether every request finished.
    pub fn drain(&mut self, deadline: Instant) -> Result<bool, W::Error> {
        loop {
            let now = self.waiter.now();
            self.strategy.poll_requests(&self.hooks, now);
            self.strategy.service_actions(&self.hooks);
            if self.strategy.in_flight() == 0 {
                return Ok(true);
            }
            if now >= deadline {
                return Ok(false);
            }
            self.strategy.wait(&mut self.waiter, None, Some(deadline))?;
        }
    }

    /// Ends every request still in flight by force, after a [`drain`](Self::drain)
    /// that returned `false`: each is reset, so no client reads a clean end
    /// of stream after a cut transfer. See [`StreamStrategy::cut_in_flight`].
    pub fn cut_in_flight(&mut self) {
        step!("socketserver::server", "cut_in_flight");
        self.strategy.cut_in_flight(&self.hooks);
    }

    /// Python's `server_close`: lets the strategy finish or end in-flight
    /// requests, then calls the hook. The backend closes the socket when the
    /// server is dropped or taken apart.
    pub fn server_close(&mut self) {
        step!("socketserver::server", "server_close");
        self.strategy.server_close(&self.hooks);
        self.hooks.server_close();
    }

    /// The shutdown flag this server's loop watches.
    pub fn shutdown_flag(&self) -> &ShutdownFlag {
        self.waiter.shutdown_flag()
    }

    /// The listening socket.
    pub fn listener(&self) -> &L {
        &self.listener
    }

    /// The listening socket, mutably.
    pub fn listener_mut(&mut self) -> &mut L {
        &mut self.listener
    }

    /// The waiter (the backend's selector and clock).
    pub fn waiter(&self) -> &W {
        &self.waiter
    }

    /// The waiter, mutably.
    pub fn waiter_mut(&mut self) -> &mut W {
        &mut self.waiter
    }

    /// The hooks.
    pub fn hooks(&self) -> &K {
        &self.hooks
    }

    /// The strategy (and through it the handler).
    pub fn strategy(&self) -> &P {
        &self.strategy
    }

    /// The strategy, mutably.
    pub fn strategy_mut(&mut self) -> &mut P {
        &mut self.strategy
    }

    /// Takes the server apart, for a backend that closes its pieces itself.
    pub fn into_parts(self) -> (L, W, P, K) {
        (self.listener, self.waiter, self.strategy, self.hooks)
    }

    fn accepting(&self, now: Instant) -> bool {
        self.strategy.can_accept() && self.accept_paused_until.is_none_or(|until| now >= until)
    }

    /// Accepts and processes at most one request; returns whether it took one.
    fn accept_one(&mut self, now: Instant) -> bool {
        if !self.accepting(now) {
            return false;
        }
        self.accept_paused_until = None;
        let (conn, client) = match self.listener.accept() {
            Ok(Some(accepted)) => accepted,
            Ok(None) => return false,
            Err(e) => {
                // Python ignores accept errors; pausing keeps a listener that
                // stays readable (EMFILE) from spinning the loop.
                trace_warn!("socketserver::server", "accept failed", e);
                self.accept_paused_until = Some(now.saturating_add(ACCEPT_ERROR_PAUSE));
                return false;
            }
        };
        step!("socketserver::server", "verify_request", conn, client);
        if !self.hooks.verify_request(&client) {
            end_stream_request(&self.hooks, conn, &client);
            return true;
        }
        step!("socketserver::server", "process_request", conn, client);
        self.hooks.process_request(&client);
        self.strategy.process_request(&self.hooks, conn, client);
        true
    }
}

impl<L, W, K, P> Pass for StreamServer<L, W, K, P>
where
    L: Listener,
    W: Wait<L>,
    K: ServerHooks<AddrOf<L>>,
    P: StreamStrategy<L, K>,
{
    type WaitError = W::Error;

    fn flag(&self) -> &ShutdownFlag {
        self.waiter.shutdown_flag()
    }

    fn now(&self) -> Instant {
        self.waiter.now()
    }

    fn timeout(&self) -> Option<Duration> {
        self.hooks
            .timeout()
            .or_else(|| self.strategy.default_timeout())
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<(), W::Error> {
        let now = self.waiter.now();
        let accepting = self.accepting(now);
        let deadline = match self.accept_paused_until {
            Some(until) if !accepting && until > now => earliest(deadline, Some(until)),
            _ => deadline,
        };
        let listener = accepting.then_some(&self.listener);
        self.strategy.wait(&mut self.waiter, listener, deadline)
    }

    fn take_ready(&mut self, batch: usize) -> Taken {
        let now = self.waiter.now();
        let progressed = self.strategy.poll_requests(&self.hooks, now);
        let mut new_request = false;
        // Nothing to accept since the last look: no `accept` call at all.
        let batch = if self.waiter.server_may_be_ready() {
            batch
        } else {
            0
        };
        for _ in 0..batch {
            if !self.accept_one(now) {
                break;
            }
            new_request = true;
            if self.waiter.shutdown_flag().is_requested() {
                break;
            }
        }
        Taken {
            new_request,
            progressed,
        }
    }

    fn service_actions(&mut self) {
        self.hooks.service_actions();
        self.strategy.service_actions(&self.hooks);
    }

    fn handle_timeout(&mut self) {
        step!("socketserver::server", "handle_timeout");
        self.hooks.handle_timeout();
        self.strategy.service_actions(&self.hooks);
    }
}

/// A datagram server: a socket, a way to wait, hooks, a strategy, and the
/// packet and reply buffers (`B`: an array, a `&'static mut [u8]`, a `Vec`).
///
/// The packet buffer's length is Python's `max_packet_size`: longer datagrams
/// are truncated to it.
#[derive(Debug)]
pub struct DatagramServer<D, W, K, P, B> {
    socket: D,
    waiter: W,
    hooks: K,
    strategy: P,
    packet: B,
    reply: B,
}

impl<D, W, K, P, B> DatagramServer<D, W, K, P, B>
where
    D: DatagramSocket,
    W: Wait<D>,
    K: ServerHooks<D::Addr>,
    P: DatagramStrategy<D, K>,
    B: AsMut<[u8]> + AsRef<[u8]>,
{
    /// A server over a bound `socket`; `packet` and `reply` are its buffers.
    pub fn new(socket: D, waiter: W, strategy: P, hooks: K, packet: B, reply: B) -> Self {
        step!("socketserver::server", "__init__", socket);
        step!("socketserver::server", "server_activate");
        hooks.server_activate();
        Self {
            socket,
            waiter,
            hooks,
            strategy,
            packet,
            reply,
        }
    }

    /// Python's `handle_request`.
    pub fn handle_request(&mut self) -> Result<Handled, W::Error> {
        step!("socketserver::server", "handle_request");
        serve_loop::handle_request(self)
    }

    /// Python's `serve_forever`; see [`StreamServer::serve_forever`].
    pub fn serve_forever(&mut self, poll_interval: Duration) -> Result<(), W::Error> {
        step!("socketserver::server", "serve_forever", poll_interval);
        serve_loop::serve_forever(self, poll_interval)
    }

    /// One pass that never waits; see [`StreamServer::poll`].
    pub fn poll(&mut self) -> bool {
        serve_loop::poll(self)
    }

    /// Sleeps until the server socket (while it can take a request) or a
    /// request in flight may be ready, or until `deadline`, taking nothing:
    /// one `select()` of Python's loop, for a caller's own loop, which then
    /// calls [`poll`](Self::poll). With `deadline` now it only collects
    /// readiness (std: and arms the server socket's next event).
    pub fn wait_ready(&mut self, deadline: Option<Instant>) -> Result<(), W::Error> {
        Pass::wait_until(self, deadline)
    }

    /// Python's `server_close`; see [`StreamServer::server_close`].
    pub fn server_close(&mut self) {
        step!("socketserver::server", "server_close");
        self.strategy.server_close(&self.hooks);
        self.hooks.server_close();
    }

    /// The shutdown flag this server's loop watches.
    pub fn shutdown_flag(&self) -> &ShutdownFlag {
        self.waiter.shutdown_flag()
    }

    /// Python's `max_packet_size`: the packet buffer's length.
    pub fn max_packet_size(&self) -> usize {
        self.packet.as_ref().len()
    }

    /// The socket.
    pub fn socket(&self) -> &D {
        &self.socket
    }

    /// The socket, mutably.
    pub fn socket_mut(&mut self) -> &mut D {
        &mut self.socket
    }

    /// The waiter.
    pub fn waiter(&self) -> &W {
        &self.waiter
    }

    /// The waiter, mutably.
    pub fn waiter_mut(&mut self) -> &mut W {
        &mut self.waiter
    }

    /// The hooks.
    pub fn hooks(&self) -> &K {
        &self.hooks
    }

    /// The strategy.
    pub fn strategy(&self) -> &P {
        &self.strategy
    }

    /// The strategy, mutably.
    pub fn strategy_mut(&mut self) -> &mut P {
        &mut self.strategy
    }

    /// Takes the server apart.
    pub fn into_parts(self) -> (D, W, P, K) {
        (self.socket, self.waiter, self.strategy, self.hooks)
    }

    /// Receives and processes at most one datagram; returns whether it took one.
    fn receive_one(&mut self) -> bool {
        if !self.strategy.can_accept() {
            return false;
        }
        let packet = self.packet.as_mut();
        let received = match self.socket.recv_from(packet) {
            Ok(Some(received)) => received,
            Ok(None) => return false,
            Err(e) => {
                trace_warn!("socketserver::server", "recv_from failed", e);
                return false;
            }
        };
        let data = &packet[..received.len];
        let client = received.addr;
        step!("socketserver::server", "verify_request", data.len(), client);
        if !self.hooks.verify_request(&client) {
            self.hooks.shutdown_request(&client);
            self.hooks.close_request(&client);
            return true;
        }
        step!(
            "socketserver::server",
            "process_request",
            data.len(),
            client
        );
        self.hooks.process_request(&client);
        let reply = self.reply.as_mut();
        self.strategy.process_request(
            &self.hooks,
            &mut self.socket,
            data,
            received.truncated,
            client,
            reply,
        );
        true
    }
}

impl<D, W, K, P, B> Pass for DatagramServer<D, W, K, P, B>
where
    D: DatagramSocket,
    W: Wait<D>,
    K: ServerHooks<D::Addr>,
    P: DatagramStrategy<D, K>,
    B: AsMut<[u8]> + AsRef<[u8]>,
{
    type WaitError = W::Error;

    fn flag(&self) -> &ShutdownFlag {
        self.waiter.shutdown_flag()
    }

    fn now(&self) -> Instant {
        self.waiter.now()
    }

    fn timeout(&self) -> Option<Duration> {
        self.hooks
            .timeout()
            .or_else(|| self.strategy.default_timeout())
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<(), W::Error> {
        let socket = self.strategy.can_accept().then_some(&self.socket);
        self.strategy.wait(&mut self.waiter, socket, deadline)
    }

    fn take_ready(&mut self, batch: usize) -> Taken {
        let mut new_request = false;
        let batch = if self.waiter.server_may_be_ready() {
            batch
        } else {
            0
        };
        for _ in 0..batch {
            if !self.receive_one() {
                break;
            }
            new_request = true;
            if self.waiter.shutdown_flag().is_requested() {
                break;
            }
        }
        Taken {
            new_request,
            progressed: false,
        }
    }

    fn service_actions(&mut self) {
        self.hooks.service_actions();
        self.strategy.service_actions(&self.hooks);
    }

    fn handle_timeout(&mut self) {
        step!("socketserver::server", "handle_timeout");
        self.hooks.handle_timeout();
        self.strategy.service_actions(&self.hooks);
    }
}
