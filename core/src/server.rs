//! The server: Python's `BaseServer` lifecycle over any request source
//! (a listener, or a datagram socket) and any backend.

use crate::context::InlineServer;
use crate::hooks::ServerHooks;
use crate::incoming::Request;
use crate::runner::refuse_request;
use crate::serve_loop::{self, Handled, Pass, Taken};
use crate::shutdown::ShutdownFlag;
use crate::source::{RequestOf, RequestSource, StrategyFor};
use crate::strategy::Strategy;
use crate::time::{Duration, Instant, earliest};
use crate::trace::{step, trace_warn};
use crate::transport::Wait;

/// How long taking requests pauses after the source failed (EMFILE,
/// ENOBUFS on accept): long enough not to spin on a socket that stays
/// readable, short enough that service resumes as soon as a descriptor
/// frees up.
const TAKE_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// A server: a request source (a [`Listener`](crate::Listener), or
/// [`Datagrams`](crate::Datagrams)), a way to wait, a strategy that owns
/// the handler, and hooks.
///
/// Backends build it once their socket is bound (and listening); the
/// constructor then calls the `server_activate` hook. See the crate docs
/// for an example.
#[derive(Debug)]
pub struct Server<S: RequestSource, W, P, K> {
    source: S,
    address: S::Addr,
    waiter: W,
    strategy: P,
    hooks: K,
    timeout: Option<Duration>,
    take_paused_until: Option<Instant>,
}

impl<S, W, P, K> Server<S, W, P, K>
where
    S: RequestSource,
    W: Wait<S::Socket>,
    P: StrategyFor<S, K>,
    K: ServerHooks<S::Addr>,
{
    /// A server over a bound (and listening) `source`.
    pub fn new(source: S, waiter: W, strategy: P, hooks: K) -> Self {
        step!("socketserver::server", "__init__", source);
        step!("socketserver::server", "server_activate");
        hooks.server_activate();
        Self {
            address: source.local_addr(),
            source,
            waiter,
            strategy,
            hooks,
            timeout: None,
            take_paused_until: None,
        }
    }

    /// Python's `timeout` attribute: how long [`handle_request`](Self::handle_request)
    /// waits before `handle_timeout`; `None` (the default) leaves it to the
    /// strategy (Forking: 300 s), else waits forever.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// The `handle_request` timeout in effect: the server's, else the strategy's.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout.or_else(|| self.strategy.default_timeout())
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
        // A stop a request asked for since the last loop ended (a worker
        // that outlived it, a request cut after it) goes through the flag's
        // rules now, before this loop begins: stale after a loop has run.
        self.adopt_stop();
        serve_loop::serve_forever(self, poll_interval)
    }

    /// One pass that never waits: advances held requests, takes the new
    /// requests waiting (at most 64), runs `service_actions`. Returns
    /// whether anything moved (a new request, or progress of a held one):
    /// while it returns `true`, call it again before sleeping. With
    /// `Multiplexed` it never blocks: call it from a firmware main loop.
    pub fn serve_ready(&mut self) -> bool {
        serve_loop::serve_ready(self)
    }

    /// Sleeps until the server socket (while it can take a request) or a
    /// request in flight may be ready, or until `deadline`, taking nothing:
    /// one `select()` of Python's loop, for a caller's own loop, which then
    /// calls [`serve_ready`](Self::serve_ready). With `deadline` now it only collects
    /// readiness (std: and arms the server socket's next event).
    pub fn wait_ready(&mut self, deadline: Option<Instant>) -> Result<(), W::Error> {
        Pass::wait_until(self, deadline)
    }

    /// Serves the requests already taken, taking no new one, until none is
    /// left or `deadline` passes: the graceful part of a shutdown. Returns
    /// whether every request finished.
    pub fn drain(&mut self, deadline: Instant) -> Result<bool, W::Error> {
        loop {
            let now = self.waiter.now();
            self.strategy.poll_requests(&self.hooks, now);
            self.adopt_stop();
            self.strategy.service_actions(&self.hooks);
            if self.strategy.in_flight() == 0 {
                return Ok(true);
            }
            if now >= deadline {
                return Ok(false);
            }
            self.sleep(None, Some(deadline))?;
        }
    }

    /// Ends every request still in flight by force, after a [`drain`](Self::drain)
    /// that returned `false`: each is reset, so no client reads a clean end
    /// of stream after a cut transfer. See [`Strategy::cut_in_flight`].
    pub fn cut_in_flight(&mut self) {
        step!("socketserver::server", "cut_in_flight");
        self.strategy.cut_in_flight(&self.hooks);
        // A cut request's `finish` may have asked to stop.
        self.adopt_stop();
    }

    /// Python's `server_close`: lets the strategy finish or end in-flight
    /// requests, then calls the hook. The backend closes the socket when the
    /// server is dropped or taken apart.
    pub fn server_close(&mut self) {
        step!("socketserver::server", "server_close");
        self.strategy.server_close(&self.hooks);
        // A stop asked by a request that finished after the loop is stale,
        // and dropped as the flag drops it; it must not stop a later loop.
        self.adopt_stop();
        self.hooks.server_close();
    }

    /// Python's `server_address`: the address the source is bound to, as it
    /// was when the server was built (the real port when port 0 was asked
    /// for). Handlers reach it as `req.server().server_address()`.
    pub fn server_address(&self) -> &S::Addr {
        &self.address
    }

    /// The shutdown flag this server's loop watches.
    pub fn shutdown_flag(&self) -> &ShutdownFlag {
        self.waiter.shutdown_flag()
    }

    /// The request source (the listener, or the datagram socket and buffers).
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The request source, mutably.
    pub fn source_mut(&mut self) -> &mut S {
        &mut self.source
    }

    /// The waiter (the backend's selector and clock).
    pub fn waiter(&self) -> &W {
        &self.waiter
    }

    /// The waiter, mutably.
    pub fn waiter_mut(&mut self) -> &mut W {
        &mut self.waiter
    }

    /// The strategy (and through it the handler).
    pub fn strategy(&self) -> &P {
        &self.strategy
    }

    /// The strategy, mutably.
    pub fn strategy_mut(&mut self) -> &mut P {
        &mut self.strategy
    }

    /// The hooks.
    pub fn hooks(&self) -> &K {
        &self.hooks
    }

    /// Takes the server apart, for a backend that closes its pieces itself.
    pub fn into_parts(self) -> (S, W, P, K) {
        (self.source, self.waiter, self.strategy, self.hooks)
    }

    fn taking(&self, now: Instant) -> bool {
        self.strategy.can_accept() && self.take_paused_until.is_none_or(|until| now >= until)
    }

    /// Sleeps with the server socket (when `watching`) until `deadline` or
    /// the strategy's own next wake-up; then lets a stop the strategy
    /// reports reach the flag.
    fn sleep(&mut self, watching: Option<()>, deadline: Option<Instant>) -> Result<(), W::Error> {
        let now = self.waiter.now();
        let deadline = earliest(deadline, self.strategy.next_wake(now, watching.is_some()));
        let socket = watching.map(|()| self.source.socket());
        let waited = self.waiter.wait(socket, deadline);
        self.adopt_stop();
        waited
    }

    /// Turns a stop that a request served away from the flag asked for
    /// (`req.server().shutdown()` in a slot, a thread, a child) into a
    /// request of the loop's own flag, with the flag's rules (with no loop
    /// running, kept for a first loop, dropped after one has run).
    fn adopt_stop(&mut self) {
        if self.strategy.stop_requested() {
            self.waiter.shutdown_flag().request();
        }
    }

    /// Takes and processes at most one request; returns whether it took one.
    fn take_one(&mut self, now: Instant) -> bool {
        if !self.taking(now) {
            return false;
        }
        self.take_paused_until = None;
        let request = match self.source.take() {
            Ok(Some(request)) => request,
            Ok(None) => return false,
            Err(e) => {
                // Python ignores these errors; pausing keeps a listener that
                // stays readable (EMFILE) from spinning the loop.
                trace_warn!("socketserver::server", "taking a request failed", e);
                if S::PAUSE_AFTER_ERROR {
                    self.take_paused_until = Some(now.saturating_add(TAKE_ERROR_PAUSE));
                }
                return false;
            }
        };
        step!("socketserver::server", "verify_request", request);
        if !self.hooks.verify_request(request.client()) {
            refuse_request(&self.hooks, request);
            return true;
        }
        step!("socketserver::server", "process_request", request);
        self.hooks.process_request(request.client());
        let server = InlineServer::new(&self.address, self.waiter.shutdown_flag());
        <P as Strategy<<S as RequestOf<'_>>::Request, K>>::process_request(
            &mut self.strategy,
            &self.hooks,
            &server,
            request,
        );
        true
    }
}

impl<S, W, P, K> Pass for Server<S, W, P, K>
where
    S: RequestSource,
    W: Wait<S::Socket>,
    P: StrategyFor<S, K>,
    K: ServerHooks<S::Addr>,
{
    type WaitError = W::Error;

    fn flag(&self) -> &ShutdownFlag {
        self.waiter.shutdown_flag()
    }

    fn now(&self) -> Instant {
        self.waiter.now()
    }

    fn timeout(&self) -> Option<Duration> {
        Server::timeout(self)
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<(), W::Error> {
        let now = self.waiter.now();
        let taking = self.taking(now);
        let deadline = match self.take_paused_until {
            Some(until) if !taking && until > now => earliest(deadline, Some(until)),
            _ => deadline,
        };
        self.sleep(taking.then_some(()), deadline)
    }

    fn take_ready(&mut self, batch: usize) -> Taken {
        let now = self.waiter.now();
        let progressed = self.strategy.poll_requests(&self.hooks, now);
        self.adopt_stop();
        let mut new_request = false;
        // Nothing to take since the last look: no `accept` or `recv` at all;
        // nor after a request just polled asked to stop (bpo-35017).
        let batch =
            if self.waiter.server_may_be_ready() && !self.waiter.shutdown_flag().is_requested() {
                batch
            } else {
                0
            };
        for _ in 0..batch {
            if !self.take_one(now) {
                break;
            }
            new_request = true;
            self.adopt_stop();
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
