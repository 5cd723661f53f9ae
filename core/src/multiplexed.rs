//! `Multiplexed<N>`: N non-blocking requests served from one thread, no heap.

use crate::error::Error;
use crate::handler::{NonBlockingHandler, Progress};
use crate::hooks::ServerHooks;
use crate::lifecycle::{close_stream_request, cut_stream_request, report_request_error};
use crate::liveness::{Activity, Expiry, IdlePolicy};
use crate::metered::{Metered, STEP_BUDGET};
use crate::strategy::{AddrOf, StreamStrategy};
use crate::time::{Duration, Instant};
use crate::trace::step;
use crate::transport::{Connection, Listener, Wait};

/// One occupied slot: a connection, its client, its handler, and what it moved.
#[derive(Debug)]
struct Slot<C: Connection, H> {
    conn: C,
    client: C::Addr,
    handler: H,
    activity: Activity,
}

/// Serves up to `N` requests at once with [`NonBlockingHandler`]s, from the
/// thread that runs the server loop.
///
/// What it promises, whatever the handlers and peers do:
/// - **Fairness.** Each pass steps every ready slot once, with a budget of
///   64 KiB: a handler sees no more readiness once its step has moved that
///   much, so no connection, however busy, delays another slot, a new
///   client or a shutdown by more than one pass.
/// - **Bounded idle and slow peers** ([`IdlePolicy`], on by default): a
///   request that moves nothing for the idle timeout (or, when the policy
///   sets one, less than the minimum rate) is ended; at capacity, a waiting
///   client evicts the longest-idle request once it has been idle for
///   `evict_after`. Ended requests are reset ([`Connection::abort`]), so the
///   peer sees an error.
/// - **No refusal.** A client beyond `N` that can evict nobody is not
///   accepted until a slot frees: it waits in the listener's backlog (or,
///   on smoltcp, in the SYN gate) and is served then.
#[derive(Debug)]
pub struct Multiplexed<C: Connection, H, const N: usize> {
    handler: H,
    slots: heapless::Vec<Slot<C, H>, N>,
    policy: IdlePolicy,
    /// The time of the latest pass, so a slot filled between passes starts its clock.
    last_pass: Instant,
}

impl<C, H, const N: usize> Multiplexed<C, H, N>
where
    C: Connection,
    H: for<'c> NonBlockingHandler<Metered<'c, C>>,
{
    /// A strategy that clones `handler` into each of its `N` slots, with the
    /// default [`IdlePolicy`].
    pub fn new(handler: H) -> Self {
        Self {
            handler,
            slots: heapless::Vec::new(),
            policy: IdlePolicy::default(),
            last_pass: Instant::from_micros(0),
        }
    }
}

impl<C: Connection, H, const N: usize> Multiplexed<C, H, N> {
    /// Bounds idle and slow peers with `policy`.
    pub fn with_idle_policy(mut self, policy: IdlePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets only the idle timeout of the policy (`None`: never).
    pub fn with_idle_timeout(self, idle_timeout: Option<Duration>) -> Self {
        let policy = self.policy.idle_timeout(idle_timeout);
        self.with_idle_policy(policy)
    }

    /// The policy in force.
    pub fn idle_policy(&self) -> &IdlePolicy {
        &self.policy
    }

    /// Replaces the policy for requests taken from now on and those in flight.
    pub fn set_idle_policy(&mut self, policy: IdlePolicy) {
        self.policy = policy;
    }

    /// Requests being served now.
    pub fn active(&self) -> usize {
        self.slots.len()
    }

    /// The earliest instant at which a slot expires, or (at capacity) becomes
    /// evictable: the serve loop must look again then.
    pub fn next_idle_deadline(&self) -> Option<Instant> {
        let full = self.slots.is_full();
        self.slots
            .iter()
            .flat_map(|s| {
                let evictable = full
                    .then(|| s.activity.evictable_at(&self.policy))
                    .flatten();
                [s.activity.deadline(&self.policy), evictable]
            })
            .flatten()
            .min()
    }

    /// The slot a waiting client may evict: the longest idle, if idle enough.
    fn eviction_candidate(&self, now: Instant) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.activity.is_evictable(now, &self.policy))
            .max_by_key(|(_, s)| s.activity.idle_for(now))
            .map(|(i, _)| i)
    }
}

impl<C, H, const N: usize> Multiplexed<C, H, N>
where
    C: Connection,
    H: for<'c> NonBlockingHandler<Metered<'c, C>>,
{
    /// Ends slot `index`: its handler's `finish`, `handle_error` on failure,
    /// then a FIN after a clean end or a reset after a forced one.
    fn end_slot<K: ServerHooks<C::Addr>>(
        &mut self,
        hooks: &K,
        index: usize,
        failure: Option<Error<C::Error>>,
    ) {
        let mut slot = self.slots.swap_remove(index);
        step!("socketserver::handler", "finish");
        let finished = slot
            .handler
            .finish(&mut Metered::new(&mut slot.conn, usize::MAX));
        let result = match (failure, finished) {
            (Some(e), _) | (None, Err(e)) => Err(e),
            (None, Ok(())) => Ok(()),
        };
        if let Err(e) = &result {
            report_request_error::<C, K>(hooks, &slot.client, e);
        }
        close_stream_request(hooks, slot.conn, &slot.client, &result);
    }

    /// Steps one slot if its connection is ready, within the step budget.
    fn step_slot(
        &mut self,
        index: usize,
        now: Instant,
    ) -> Result<Option<Progress>, Error<C::Error>> {
        let policy = self.policy;
        let slot = &mut self.slots[index];
        let interest = slot.handler.interest();
        let ready = (interest.is_read() && slot.conn.read_ready()?)
            || (interest.is_write() && slot.conn.write_ready()?);
        let progress = if ready {
            let mut step = Metered::new(&mut slot.conn, STEP_BUDGET);
            let progress = slot.handler.poll(&mut step);
            slot.activity.record(now, step.moved());
            Some(progress?)
        } else {
            None
        };
        if progress == Some(Progress::Done) {
            // Complete: it ends with a FIN, whatever its last window was.
            return Ok(progress);
        }
        match slot.activity.check(now, &policy) {
            Err(Expiry::Idle) => Err(Error::TimedOut),
            Err(Expiry::TooSlow) => Err(Error::TooSlow),
            Ok(()) => Ok(progress),
        }
    }
}

impl<L, K, H, const N: usize> StreamStrategy<L, K> for Multiplexed<L::Conn, H, N>
where
    L: Listener,
    K: ServerHooks<AddrOf<L>>,
    H: for<'c> NonBlockingHandler<Metered<'c, L::Conn>>,
{
    fn process_request(&mut self, hooks: &K, conn: L::Conn, client: AddrOf<L>) {
        if self.slots.is_full() {
            // `can_accept` said a slot may be evicted: make room.
            match self.eviction_candidate(self.last_pass) {
                Some(index) => self.end_slot(hooks, index, Some(Error::Cut)),
                None => {
                    // The server checks `can_accept` first, so this is
                    // unreachable in practice; a reset keeps it safe anyway.
                    cut_stream_request(hooks, conn, &client);
                    return;
                }
            }
        }
        step!("socketserver::server", "finish_request", conn, client);
        hooks.finish_request(&client);
        let mut handler = self.handler.clone();
        step!("socketserver::handler", "__init__");
        step!("socketserver::handler", "setup");
        if let Err(e) = handler.setup(&client) {
            report_request_error::<L::Conn, K>(hooks, &client, &e);
            close_stream_request(hooks, conn, &client, &Err(e));
            return;
        }
        // The server polls held requests just before it accepts, so the last
        // pass's time is the accept time.
        let slot = Slot {
            conn,
            client,
            handler,
            activity: Activity::new(self.last_pass),
        };
        if let Err(slot) = self.slots.push(slot) {
            // Unreachable: a slot was freed above when the vector was full.
            cut_stream_request(hooks, slot.conn, &slot.client);
        }
    }

    fn can_accept(&self) -> bool {
        !self.slots.is_full() || self.eviction_candidate(self.last_pass).is_some()
    }

    fn wait<W: Wait<L, L::Conn>>(
        &mut self,
        waiter: &mut W,
        listener: Option<&L>,
        deadline: Option<Instant>,
    ) -> Result<(), W::Error> {
        let deadline = match (deadline, self.next_idle_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let conns = self.slots.iter().map(|s| (&s.conn, s.handler.interest()));
        waiter.wait(listener, conns, deadline)
    }

    fn poll_requests(&mut self, hooks: &K, now: Instant) -> bool {
        self.last_pass = now;
        let mut moved = false;
        let mut index = 0;
        while index < self.slots.len() {
            match self.step_slot(index, now) {
                Ok(None) => index += 1,
                Ok(Some(Progress::Continue)) => {
                    moved = true;
                    index += 1;
                }
                // `end_slot` swap-removes: the same index now holds another
                // slot, which is stepped next in this same pass.
                Ok(Some(Progress::Done)) => {
                    moved = true;
                    self.end_slot(hooks, index, None);
                }
                Err(e) => {
                    moved = true;
                    self.end_slot(hooks, index, Some(e));
                }
            }
        }
        moved
    }

    fn in_flight(&self) -> usize {
        self.slots.len()
    }

    fn cut_in_flight(&mut self, hooks: &K) {
        while !self.slots.is_empty() {
            self.end_slot(hooks, 0, Some(Error::Cut));
        }
    }

    fn server_close(&mut self, hooks: &K) {
        // Requests still in flight when the server closes did not complete.
        StreamStrategy::<L, K>::cut_in_flight(self, hooks);
    }
}
