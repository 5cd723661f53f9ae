//! `Multiplexed<N>`: N non-blocking requests served from one thread, no heap.

use crate::error::Error;
use crate::handler::{NonBlockingHandler, Progress};
use crate::hooks::ServerHooks;
use crate::lifecycle::end_stream_request;
use crate::strategy::{AddrOf, StreamStrategy};
use crate::time::{Duration, Instant};
use crate::trace::step;
use crate::transport::{Connection, Listener, Wait};

/// How long a multiplexed request may show no readiness before it is ended.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// One occupied slot: a connection, its client, its handler, and when it last moved.
#[derive(Debug)]
struct Slot<C: Connection, H> {
    conn: C,
    client: C::Addr,
    handler: H,
    idle_since: Instant,
}

/// Serves up to `N` requests at once with [`NonBlockingHandler`]s, from the
/// thread that runs the server loop. A client beyond `N` is not accepted
/// until a slot frees: it waits in the listener's backlog (or, on smoltcp, in
/// SYN retransmission) and is served then, never refused.
///
/// A request whose connection shows no readiness for `idle_timeout`
/// ([`DEFAULT_IDLE_TIMEOUT`] unless set) is ended with [`Error::TimedOut`],
/// so silent peers cannot hold every slot and stop the server accepting.
#[derive(Debug)]
pub struct Multiplexed<C: Connection, H, const N: usize> {
    handler: H,
    slots: heapless::Vec<Slot<C, H>, N>,
    idle_timeout: Option<Duration>,
    /// The time of the latest pass, so a slot filled between passes starts its idle clock.
    last_pass: Instant,
}

impl<C: Connection, H: NonBlockingHandler<C>, const N: usize> Multiplexed<C, H, N> {
    /// A strategy that clones `handler` into each of its `N` slots.
    pub const fn new(handler: H) -> Self {
        Self {
            handler,
            slots: heapless::Vec::new(),
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            last_pass: Instant::from_micros(0),
        }
    }

    /// Ends requests whose connection stays silent this long (`None`: never).
    pub fn with_idle_timeout(mut self, idle_timeout: Option<Duration>) -> Self {
        self.idle_timeout = idle_timeout;
        self
    }

    /// Requests being served now.
    pub fn active(&self) -> usize {
        self.slots.len()
    }

    /// The earliest instant at which a silent request times out.
    pub fn next_idle_deadline(&self) -> Option<Instant> {
        let timeout = self.idle_timeout?;
        self.slots
            .iter()
            .map(|s| s.idle_since.saturating_add(timeout))
            .min()
    }

    fn end_slot<K: ServerHooks<C::Addr>>(
        &mut self,
        hooks: &K,
        index: usize,
        failure: Option<Error<C::Error>>,
    ) {
        let mut slot = self.slots.swap_remove(index);
        step!("socketserver::handler", "finish");
        let finished = slot.handler.finish(&mut slot.conn);
        let failure = match finished {
            Err(e) => Some(e),
            Ok(()) => failure,
        };
        if let Some(e) = failure {
            hooks.handle_error(&slot.client, &e);
        }
        end_stream_request(hooks, slot.conn, &slot.client);
    }

    /// Steps one slot if its connection is ready; returns whether it moved.
    fn step_slot(
        &mut self,
        index: usize,
        now: Instant,
    ) -> Result<Option<Progress>, Error<C::Error>> {
        let slot = &mut self.slots[index];
        let interest = slot.handler.interest();
        let ready = (interest.is_read() && slot.conn.read_ready()?)
            || (interest.is_write() && slot.conn.write_ready()?);
        if !ready {
            let expired = self
                .idle_timeout
                .is_some_and(|t| now >= slot.idle_since.saturating_add(t));
            return if expired {
                Err(Error::TimedOut)
            } else {
                Ok(None)
            };
        }
        slot.idle_since = now;
        slot.handler.poll(&mut slot.conn).map(Some)
    }
}

impl<L, K, H, const N: usize> StreamStrategy<L, K> for Multiplexed<L::Conn, H, N>
where
    L: Listener,
    K: ServerHooks<AddrOf<L>>,
    H: NonBlockingHandler<L::Conn>,
{
    fn process_request(&mut self, hooks: &K, conn: L::Conn, client: AddrOf<L>) {
        step!("socketserver::server", "finish_request", conn, client);
        hooks.finish_request(&client);
        let mut handler = self.handler.clone();
        step!("socketserver::handler", "__init__");
        step!("socketserver::handler", "setup");
        if let Err(e) = handler.setup(&client) {
            hooks.handle_error(&client, &e);
            end_stream_request(hooks, conn, &client);
            return;
        }
        // The server polls held requests just before it accepts, so the last
        // pass's time is the accept time.
        let slot = Slot {
            conn,
            client,
            handler,
            idle_since: self.last_pass,
        };
        if let Err(slot) = self.slots.push(slot) {
            // The server checks `can_accept` first, so this is unreachable in
            // practice; ending the request keeps it safe anyway.
            end_stream_request(hooks, slot.conn, &slot.client);
        }
    }

    fn can_accept(&self) -> bool {
        !self.slots.is_full()
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
                // `end_slot` swap-removes: the same index now holds another slot.
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

    fn server_close(&mut self, hooks: &K) {
        while !self.slots.is_empty() {
            self.end_slot(hooks, 0, None);
        }
    }
}
