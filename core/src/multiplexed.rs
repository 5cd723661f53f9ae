//! `Multiplexed<N>`: N async requests served concurrently from the
//! serving thread, with no heap and no runtime.
//!
//! Each request is an `async` lifecycle (`setup`, `handle`, `finish`) kept
//! in one of N fixed slots, polled when its waker fired (its connection
//! became ready, or it yielded after its byte budget) or the server is
//! ending it. The futures never move once polled: the strategy is used
//! pinned (`core::pin::pin!`), and a slot's future is only ever replaced in
//! place.

use core::future::Future;
use core::marker::PhantomPinned;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::async_request::AsyncStreamRequest;
use crate::context::ServerContext;
use crate::error::Error;
use crate::handler::AsyncStreamRequestHandler;
use crate::hooks::ServerHooks;
use crate::incoming::{Accepted, Departed};
use crate::liveness::{Activity, IdlePolicy};
use crate::runner::{begin_request, complete_request, cut_request, report_request_error};
use crate::strategy::Strategy;
use crate::time::{Instant, earliest};
use crate::trace::{step, trace_warn};
use crate::transport::Connection;
use crate::wake::{SlotId, SlotIds};

/// Polls a cancelled request gets to run its `finish` before it is dropped
/// (dropping it resets its connection).
const CANCEL_POLLS: usize = 4;

/// What one request's future gives back: its connection, to end it.
#[derive(Debug)]
pub struct Served<C: Connection> {
    conn: C,
    result: Result<(), Error<C::Error>>,
}

/// The connection of a request in flight: reset if the request is dropped
/// before it completes (a cut), given back when it completes.
struct Owned<C: Connection>(Option<C>);

impl<C: Connection> Drop for Owned<C> {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            conn.abort();
        }
    }
}

/// `self.server` for a request in a slot: the future owns it (it cannot
/// borrow the server that holds the future), with a copy of the address;
/// a stop is marked on the slot's id, and the strategy passes it on after
/// the poll ([`Strategy::stop_requested`]).
#[derive(Debug)]
struct SlotServer<A> {
    address: A,
    id: SlotId,
}

impl<A: Sync> ServerContext<A> for SlotServer<A> {
    fn server_address(&self) -> &A {
        &self.address
    }

    fn shutdown(&self) {
        self.id.ask_stop();
    }
}

/// The handler's steps for one request, in Python's order, over a polled
/// request: `setup`; then `handle` and `finish` (which runs even when
/// `handle` failed); then the write buffer is flushed. Returns the
/// connection, or `None` in the impossible case that it was taken.
async fn serve<C, H, const RBUF: usize>(
    mut handler: H,
    conn: C,
    client: C::Addr,
    server: SlotServer<C::Addr>,
) -> Option<Served<C>>
where
    C: Connection,
    H: AsyncStreamRequestHandler<C>,
{
    let mut owned = Owned(Some(conn));
    let mut rbuf = [0u8; RBUF];
    let mut wbuf = [0u8; 0];
    let conn = owned.0.as_mut()?;
    if handler.disable_nagle_algorithm()
        && let Err(e) = conn.set_nodelay(true)
    {
        trace_warn!("socketserver::handler", "set_nodelay failed", e);
    }
    let mut req = AsyncStreamRequest::polled(conn, &client, &server, &mut rbuf, &mut wbuf);
    step!("socketserver::handler", "setup");
    let result = match handler.setup(&mut req).await {
        Err(e) => Err(e),
        Ok(()) => {
            step!("socketserver::handler", "handle");
            let handled = handler.handle(&mut req).await;
            step!("socketserver::handler", "finish");
            let finished = handler.finish(&mut req).await;
            if let Err(e) = req.flush().await {
                trace_warn!("socketserver::handler", "flush after finish failed", e);
            }
            finished.and(handled)
        }
    };
    let conn = owned.0.take()?;
    Some(Served { conn, result })
}

/// One request in flight: what the server knows of it besides its future.
#[derive(Debug)]
struct Meta<A> {
    client: A,
    activity: Activity,
    /// The handler's own `timeout`, in microseconds: the request times out
    /// when it moved nothing for that long (plain integers: firmware pays
    /// for `Duration` arithmetic in flash).
    timeout_us: Option<u64>,
    /// Cancelled by the server: polls left before it is dropped.
    cancel_polls: Option<usize>,
}

/// Why a request in flight must end now.
enum Ending {
    /// It outlived the server's idle policy: cut.
    Cut,
    /// Its handler's `timeout` passed: its I/O fails with `TimedOut`.
    TimedOut,
}

impl<A> Meta<A> {
    /// Whether it must end at `now` (the idle policy first).
    fn ending(&mut self, now: Instant, policy: &IdlePolicy) -> Option<Ending> {
        if self.activity.check(now, policy).is_err() {
            return Some(Ending::Cut);
        }
        let idle_us = now
            .as_micros()
            .saturating_sub(self.activity.last_moved().as_micros());
        self.timeout_us
            .is_some_and(|t| idle_us >= t)
            .then_some(Ending::TimedOut)
    }

    /// The next instant at which [`Meta::ending`] may say so, if nothing moves.
    fn deadline(&self, policy: &IdlePolicy) -> Option<Instant> {
        let last = self.activity.last_moved().as_micros();
        let timeout = self
            .timeout_us
            .map(|t| Instant::from_micros(last.saturating_add(t)));
        earliest(self.activity.deadline(policy), timeout)
    }
}

/// Everything but the futures: free to move and to borrow mutably.
///
/// A pass costs little with many idle requests: woken slots are found one
/// atomic load per 32 slots ([`SlotIds`]); the idle policy is checked for a
/// request when it is polled, and for all only when the earliest deadline
/// (`next_check`) or eviction time (`evict_check`) comes. A request's
/// deadlines only move later when it is not polled, so both are lower bounds.
#[derive(Debug)]
struct State<C: Connection, H, F, const N: usize> {
    handler: H,
    make: fn(H, C, C::Addr, SlotServer<C::Addr>) -> F,
    meta: [Option<Meta<C::Addr>>; N],
    /// The slots' ids, taken when the first request starts.
    ids: Option<SlotIds>,
    /// Slots in use, and those of them being cancelled.
    active: usize,
    /// Requests it may hold at once (at most `N`).
    limit: usize,
    cancelling: usize,
    /// A client accepted at capacity, waiting for the slot an eviction
    /// frees, with the server's address for its context.
    queued: Option<(Accepted<C>, C::Addr)>,
    /// A request's handler asked the server to stop since the loop last asked.
    stop: bool,
    policy: IdlePolicy,
    last_pass: Instant,
    /// No request can outlive the policy before this (`None`: none can).
    next_check: Option<Instant>,
    /// No request can become evictable before this (`None`: none can).
    evict_check: Option<Instant>,
    /// At capacity: the request an arriving client would evict.
    candidate: Option<usize>,
}

/// Serves up to `N` requests at once with an [`AsyncStreamRequestHandler`],
/// from the thread that runs the server loop: Python's handler shape,
/// written as plain sequential code, concurrent with no heap and no runtime.
///
/// Use it pinned, so its request futures never move:
///
/// ```
/// use core::pin::pin;
/// use socketserver_core::{Multiplexed, DefaultHooks, Listener, Server, Upper, Wait};
///
/// fn serve<L: Listener, W: Wait<L>>(listener: L, waiter: W) -> Result<(), W::Error> {
///     let mux = pin!(Multiplexed::<L::Conn, _, _, 4>::new(Upper::<256>));
///     let mut server = Server::new(listener, waiter, mux, DefaultHooks);
///     server.serve_forever(core::time::Duration::from_millis(500))
/// }
/// ```
///
/// What it promises: a poll of one request moves at most 64 KiB (it then
/// yields), so no connection delays the others or a new client by more than
/// one pass; idle requests are ended and, at capacity, the longest idle
/// evicted ([`IdlePolicy`]); a request the server ends sees [`Error::Cut`]
/// on its pending call (or [`Error::TimedOut`] when its handler's own
/// `timeout` passed with nothing moved), its `finish` runs, and its
/// connection is reset;
/// clients beyond `N` wait in the backlog; a handler's
/// `req.server().shutdown()` ends `serve_forever` after the pass that
/// polled it. A backend's connections must
/// register wakers ([`Connection::register_waker`]) for the server to sleep
/// while requests wait.
#[derive(Debug)]
pub struct Multiplexed<C: Connection, H, F, const N: usize> {
    state: State<C, H, F, N>,
    /// Structurally pinned: touched only through [`Self::project`].
    futures: [Option<F>; N],
    _pinned: PhantomPinned,
}

impl<C, H, const N: usize> Multiplexed<C, H, (), N>
where
    C: Connection,
    H: AsyncStreamRequestHandler<C>,
{
    /// A strategy that clones `handler` into each of its `N` slots, with
    /// a 1 KiB read-ahead buffer per request (Python's `rbufsize`) and the
    /// default [`IdlePolicy`]. Pin it before use.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(handler: H) -> Multiplexed<C, H, impl Future<Output = Option<Served<C>>>, N> {
        Self::with_rbufsize::<1024>(handler)
    }

    /// As [`new`](Self::new), with an `RBUF`-byte read-ahead buffer per
    /// request (it lives in the request's slot: firmware sizes it small; 0
    /// reads straight into the handler's buffers, a byte at a time for lines).
    pub fn with_rbufsize<const RBUF: usize>(
        handler: H,
    ) -> Multiplexed<C, H, impl Future<Output = Option<Served<C>>>, N> {
        Multiplexed {
            state: State {
                handler,
                make: serve::<C, H, RBUF>,
                meta: [const { None }; N],
                ids: None,
                active: 0,
                limit: N,
                cancelling: 0,
                queued: None,
                stop: false,
                policy: IdlePolicy::default(),
                last_pass: Instant::from_micros(0),
                next_check: None,
                evict_check: None,
                candidate: None,
            },
            futures: [const { None }; N],
            _pinned: PhantomPinned,
        }
    }
}

impl<C, H, F, const N: usize> Multiplexed<C, H, F, N>
where
    C: Connection,
    H: AsyncStreamRequestHandler<C>,
    F: Future<Output = Option<Served<C>>>,
{
    /// Bounds idle and slow peers with `policy`.
    pub fn with_idle_policy(mut self, policy: IdlePolicy) -> Self {
        self.state.policy = policy;
        self
    }

    /// Sets only the idle timeout of the policy (`None`: never).
    pub fn with_idle_timeout(self, idle_timeout: Option<core::time::Duration>) -> Self {
        let policy = self.state.policy.idle_timeout(idle_timeout);
        self.with_idle_policy(policy)
    }

    /// Replaces the idle policy (for requests in flight too).
    pub fn set_idle_policy(self: Pin<&mut Self>, policy: IdlePolicy) {
        let state = self.project().0;
        state.policy = policy;
        // Every request is checked against it at the next pass.
        state.next_check = Some(state.last_pass);
        state.evict_check = Some(state.last_pass);
    }

    /// Serves at most `max` requests at once (at most `N`, its slots);
    /// clients beyond wait in the backlog, or evict an idle request.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.state.limit = max.min(N);
        self
    }

    /// Changes the limit of [`max_connections`](Self::max_connections) while
    /// serving: lowering it below the requests in flight ends none of them,
    /// it only stops new ones (until evictions or ends bring it under).
    pub fn set_max_connections(self: Pin<&mut Self>, max: usize) {
        self.project().0.limit = max.min(N);
    }

    /// Tells a strategy that has not had a pass yet what time it is, so a
    /// request it takes before its first pass is timed from now (a caller
    /// that adds strategies while serving, as `HeapMultiplexed` does).
    pub fn set_now(self: Pin<&mut Self>, now: Instant) {
        let state = self.project().0;
        state.last_pass = state.last_pass.max(now);
    }

    /// Requests being served now.
    pub fn active(&self) -> usize {
        self.state.active
    }

    /// Requests taken and not finished: those being served, and a client
    /// waiting for the slot an eviction frees.
    pub fn in_flight(&self) -> usize {
        self.state.active + usize::from(self.state.queued.is_some())
    }

    /// When the server must next poll this strategy, whatever its sockets
    /// do: now (an instant already past) when a request is ready or being
    /// ended, else the earliest idle deadline or eviction time; `None`: only
    /// readiness can wake it.
    pub fn next_poll(&self) -> Option<Instant> {
        let state = &self.state;
        let ready = state.cancelling > 0
            || (state.queued.is_some() && !state.full())
            || state.ids.as_ref().is_some_and(SlotIds::any_ready);
        if ready {
            return Some(state.last_pass);
        }
        // As `refresh_candidate`: with a client already queued, nobody more
        // is evicted, so the eviction time does not call for a pass.
        let eviction = (state.full() && state.candidate.is_none() && state.queued.is_none())
            .then_some(state.evict_check)
            .flatten();
        earliest(state.next_check, eviction)
    }

    /// At capacity, how long the request an arriving client would evict has
    /// been idle (`None`: none would be evicted): lets a caller holding
    /// several strategies evict the longest idle of all.
    pub fn eviction_idle(&self) -> Option<core::time::Duration> {
        let state = &self.state;
        let meta = state.meta.get(state.candidate?)?.as_ref()?;
        Some(meta.activity.idle_for(state.last_pass))
    }

    /// The movable state, and the futures, pinned.
    #[allow(unsafe_code)]
    fn project(self: Pin<&mut Self>) -> (&mut State<C, H, F, N>, PinnedFutures<'_, F, N>) {
        // SAFETY: `futures` is structurally pinned, `state` is not:
        // - nothing moves a future out of `futures`: a slot is filled or
        //   emptied only with `Pin::set`, which drops the old value in place;
        // - the struct is `!Unpin` (`PhantomPinned`) and has no `Drop` impl,
        //   so it stays put while pinned and its futures are dropped in place;
        // - the two references are to disjoint fields.
        unsafe {
            let this = self.get_unchecked_mut();
            (&mut this.state, Pin::new_unchecked(&mut this.futures))
        }
    }
}

/// The request futures of a pinned strategy.
type PinnedFutures<'a, F, const N: usize> = Pin<&'a mut [Option<F>; N]>;

/// Slot `index` of the pinned futures.
#[allow(unsafe_code)]
fn slot<F, const N: usize>(futures: PinnedFutures<'_, F, N>, index: usize) -> Pin<&mut Option<F>> {
    // SAFETY: an element of a pinned array is pinned too: the elements are
    // never moved (see `Multiplexed::project`). Callers pass
    // `index < N` (loops over `0..N`, positions found in `meta`), so the
    // indexing cannot panic inside the closure.
    unsafe { futures.map_unchecked_mut(|all| &mut all[index]) }
}

impl<C, H, F, const N: usize> State<C, H, F, N>
where
    C: Connection,
    H: AsyncStreamRequestHandler<C>,
    F: Future<Output = Option<Served<C>>>,
{
    /// Whether it holds as many requests as it may.
    fn full(&self) -> bool {
        self.active >= self.limit
    }

    fn free_slot(&self) -> Option<usize> {
        if self.full() {
            return None;
        }
        self.meta.iter().position(Option::is_none)
    }

    fn slot_id(&self, index: usize) -> Option<SlotId> {
        self.ids.as_ref().map(|ids| ids.slot(index))
    }

    /// At capacity, finds the request a waiting client may evict (the
    /// longest idle, if idle enough), scanning only when one may have
    /// become evictable since the last look.
    fn refresh_candidate(&mut self, now: Instant) {
        if !self.full() || self.queued.is_some() {
            self.candidate = None;
            return;
        }
        let still = self
            .candidate
            .and_then(|i| self.meta[i].as_ref())
            .is_some_and(|m| {
                m.cancel_polls.is_none() && m.activity.is_evictable(now, &self.policy)
            });
        if still || self.evict_check.is_none_or(|t| now < t) {
            if !still {
                self.candidate = None;
            }
            return;
        }
        let mut best: Option<(usize, core::time::Duration)> = None;
        let mut next = None;
        for (i, m) in self.meta.iter().enumerate() {
            let Some(m) = m.as_ref().filter(|m| m.cancel_polls.is_none()) else {
                continue;
            };
            if m.activity.is_evictable(now, &self.policy) {
                let idle = m.activity.idle_for(now);
                if best.is_none_or(|(_, longest)| idle > longest) {
                    best = Some((i, idle));
                }
            }
            // The evictable ones too (their instant has passed): should the
            // candidate move before a client comes, the next pass looks again.
            next = earliest(next, m.activity.evictable_at(&self.policy));
        }
        self.candidate = best.map(|(i, _)| i);
        self.evict_check = next;
    }

    /// Checks every request against the idle policy, when the earliest
    /// deadline has come; cancels those that outlived it.
    fn sweep(&mut self, now: Instant) {
        if self.next_check.is_none_or(|t| now < t) {
            return;
        }
        let mut next = None;
        for index in 0..N {
            let Some(meta) = self.meta[index].as_mut() else {
                continue;
            };
            if meta.cancel_polls.is_some() {
                continue;
            }
            match meta.ending(now, &self.policy) {
                Some(ending) => self.end(index, ending),
                None => next = earliest(next, meta.deadline(&self.policy)),
            }
        }
        self.next_check = next;
    }

    /// Starts ending slot `index`: its pending call fails with `Cut`.
    fn cancel(&mut self, index: usize) {
        self.end(index, Ending::Cut);
    }

    /// Starts ending slot `index`: its pending call fails as `ending` says,
    /// its `finish` gets [`CANCEL_POLLS`] polls, then its connection is reset.
    fn end(&mut self, index: usize, ending: Ending) {
        let id = self.slot_id(index);
        if let (Some(meta), Some(id)) = (self.meta[index].as_mut(), id)
            && meta.cancel_polls.is_none()
        {
            meta.cancel_polls = Some(CANCEL_POLLS);
            self.cancelling += 1;
            if self.candidate == Some(index) {
                self.candidate = None;
            }
            match ending {
                Ending::Cut => id.cancel(),
                Ending::TimedOut => id.time_out(),
            }
        }
    }

    /// Empties slot `index` after its request ended.
    fn vacate(&mut self, index: usize) -> Option<Meta<C::Addr>> {
        let meta = self.meta[index].take()?;
        self.active -= 1;
        if meta.cancel_polls.is_some() {
            self.cancelling -= 1;
        }
        if self.candidate == Some(index) {
            self.candidate = None;
        }
        Some(meta)
    }

    /// Puts a new request in free slot `index`: `finish_request`, then its
    /// future, polled at once (its `setup` runs, its first read is tried).
    /// `address` is the server's, for the request's context.
    fn start<K: ServerHooks<C::Addr>>(
        &mut self,
        mut slot: Pin<&mut Option<F>>,
        index: usize,
        hooks: &K,
        request: Accepted<C>,
        address: C::Addr,
    ) {
        if self.ids.is_none() {
            self.ids = SlotIds::take(N);
        }
        let Some(id) = self.slot_id(index) else {
            // The process's slot ids are all taken: end this one now.
            cut_request(hooks, request);
            return;
        };
        begin_request(hooks, &request);
        let Accepted { conn, client } = request;
        step!("socketserver::handler", "__init__");
        slot.set(Some((self.make)(
            self.handler.clone(),
            conn,
            client.clone(),
            SlotServer { address, id },
        )));
        id.reset();
        let now = self.last_pass;
        let meta = Meta {
            client,
            activity: Activity::new(now),
            timeout_us: self
                .handler
                .timeout()
                .map(|t| u64::try_from(t.as_micros()).unwrap_or(u64::MAX)),
            cancel_polls: None,
        };
        self.next_check = earliest(self.next_check, meta.deadline(&self.policy));
        self.evict_check = earliest(self.evict_check, meta.activity.evictable_at(&self.policy));
        self.meta[index] = Some(meta);
        self.active += 1;
        self.poll_slot(slot, index, hooks, now);
    }

    /// Polls slot `index` (woken, or being cancelled), ends it if it
    /// completed or ignored its cancel too long, cancels it if it outlived
    /// the idle policy. Returns whether it moved.
    fn poll_slot<K: ServerHooks<C::Addr>>(
        &mut self,
        mut slot: Pin<&mut Option<F>>,
        index: usize,
        hooks: &K,
        now: Instant,
    ) -> bool {
        let Some(id) = self.slot_id(index) else {
            return false;
        };
        let Some(meta) = self.meta[index].as_mut() else {
            return false;
        };
        let Some(future) = slot.as_mut().as_pin_mut() else {
            return false;
        };
        let waker = id.waker();
        let polled = future.poll(&mut Context::from_waker(&waker));
        self.stop |= id.take_stop();
        let moved = id.take_moved();
        meta.activity.record(now, moved);
        match polled {
            Poll::Ready(served) => {
                slot.set(None);
                if let (Some(meta), Some(served)) = (self.vacate(index), served) {
                    let request = Accepted::new(served.conn, meta.client);
                    complete_request(hooks, request, &served.result);
                }
                true
            }
            Poll::Pending => {
                match meta.cancel_polls {
                    Some(left) if left <= 1 => {
                        // It ignores the cut: dropping it resets its connection.
                        slot.set(None);
                        if let Some(meta) = self.vacate(index) {
                            let departed = Departed(meta.client);
                            report_request_error(hooks, &departed, &Error::Cut);
                            cut_request(hooks, departed);
                        }
                    }
                    Some(left) => {
                        meta.cancel_polls = Some(left - 1);
                        id.wake();
                    }
                    None => match meta.ending(now, &self.policy) {
                        Some(ending) => self.end(index, ending),
                        None => {
                            let deadline = meta.deadline(&self.policy);
                            self.next_check = earliest(self.next_check, deadline);
                        }
                    },
                }
                moved > 0
            }
        }
    }

    /// One pass: idle checks when due, every woken slot polled, a queued
    /// client started in a freed slot, the eviction candidate refreshed.
    fn pass<K: ServerHooks<C::Addr>>(
        &mut self,
        mut futures: PinnedFutures<'_, F, N>,
        hooks: &K,
        now: Instant,
    ) -> bool {
        self.last_pass = now;
        self.sweep(now);
        let mut moved = false;
        if let Some(ready) = self.ids.as_ref().map(SlotIds::take_ready) {
            for index in ready {
                moved |= self.poll_slot(slot(futures.as_mut(), index), index, hooks, now);
            }
        }
        if self.queued.is_some()
            && let Some(index) = self.free_slot()
            && let Some((request, address)) = self.queued.take()
        {
            self.start(
                slot(futures.as_mut(), index),
                index,
                hooks,
                request,
                address,
            );
            moved = true;
        }
        self.refresh_candidate(now);
        moved
    }
}

impl<C, K, H, F, const N: usize> Strategy<Accepted<C>, K> for Pin<&mut Multiplexed<C, H, F, N>>
where
    C: Connection,
    K: ServerHooks<C::Addr>,
    H: AsyncStreamRequestHandler<C>,
    F: Future<Output = Option<Served<C>>>,
{
    fn process_request(
        &mut self,
        hooks: &K,
        server: &dyn ServerContext<C::Addr>,
        request: Accepted<C>,
    ) {
        let (state, futures) = self.as_mut().project();
        let address = server.server_address().clone();
        match state.free_slot() {
            Some(index) => state.start(slot(futures, index), index, hooks, request, address),
            None => {
                // `can_accept` let it in to evict an idle request: it waits
                // for the slot that request frees.
                if let Some(victim) = state.candidate {
                    state.cancel(victim);
                }
                match state.queued {
                    None => state.queued = Some((request, address)),
                    Some(_) => cut_request(hooks, request),
                }
            }
        }
    }

    fn can_accept(&self) -> bool {
        let state = &self.state;
        !state.full() || (state.queued.is_none() && state.candidate.is_some())
    }

    fn next_wake(&mut self, _now: Instant, _watching: bool) -> Option<Instant> {
        self.next_poll()
    }

    fn poll_requests(&mut self, hooks: &K, now: Instant) -> bool {
        let (state, futures) = self.as_mut().project();
        state.pass(futures, hooks, now)
    }

    fn stop_requested(&mut self) -> bool {
        core::mem::take(&mut self.as_mut().project().0.stop)
    }

    fn in_flight(&self) -> usize {
        Multiplexed::in_flight(self)
    }

    fn cut_in_flight(&mut self, hooks: &K) {
        let (state, _) = self.as_mut().project();
        for index in 0..N {
            state.cancel(index);
        }
        if let Some((request, _)) = state.queued.take() {
            cut_request(hooks, request);
        }
        // Each cancelled request gets its polls to run `finish`, then goes.
        for _ in 0..=CANCEL_POLLS {
            let now = self.state.last_pass;
            Strategy::<Accepted<C>, K>::poll_requests(self, hooks, now);
        }
    }

    fn server_close(&mut self, hooks: &K) {
        Strategy::<Accepted<C>, K>::cut_in_flight(self, hooks);
    }
}
