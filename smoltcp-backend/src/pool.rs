//! The TCP pools' bookkeeping: which socket serves which port, who holds it,
//! and the timers that bring every pool socket back to listening within a
//! bounded time, whatever its peer does.
//!
//! A pool socket is scarce (a firmware stack may have four), so nothing a
//! peer does or fails to do may keep one away for long:
//! - a handshake that never completes (a forged SYN, a vanished client) is
//!   dropped silently after `syn_timeout`;
//! - an RST that cannot leave (the peer's address never resolves) is given
//!   up after [`RST_GRACE`]; the socket listens again without it;
//! - an accepted connection that moves no byte for `idle_timeout` is aborted;
//! - at capacity, a waiting client takes the place of the longest-idle
//!   connection once it has been idle `evict_after` (see [`Pool::maintain`]);
//! - FIN-WAIT-2 ends after `fin_timeout`.

use core::time::Duration;

use smoltcp::iface::{SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::IpEndpoint;
use socketserver_core::time::Instant;

use crate::config::TcpConfig;
use crate::error::Error;
use crate::gate::Gate;
use crate::syn::SynKey;

/// How many TCP pool sockets one stack manages, over all its listeners.
pub const MAX_POOL_SOCKETS: usize = 64;

/// How long a released socket may sit in FIN-WAIT-2 while connection
/// requests for its port are held in the backlog: a client that never sends
/// its FIN must not keep waiting clients out for the whole `fin_timeout`.
pub const FIN_WAIT_UNDER_PRESSURE: Duration = Duration::from_secs(1);

/// How long a pool socket may stay half-open while connection requests for
/// its port are held in the backlog. A real handshake takes one round trip;
/// a forged SYN never completes, and each second it holds a socket is a
/// second a real client waits. Not 1 s: smoltcp rate-limits ARP for the whole
/// interface to one request a second, and forged peers keep that limit busy,
/// so a real client's SYN-ACK may wait a second for its address.
pub const SYN_RECEIVED_UNDER_PRESSURE: Duration = Duration::from_secs(2);

/// How long an aborted socket waits for its RST to leave before it listens
/// (or leaves the set) anyway. The RST goes out at the next poll when the
/// peer's hardware address is known; when it is not, smoltcp asks for it
/// again only after a second, and a peer that never answers would hold the
/// socket forever. A peer that missed the RST gets one from the listening
/// socket at its next segment.
pub const RST_GRACE: Duration = Duration::from_secs(1);

/// How long a connection with data may wait to be accepted before the
/// server counts as saturated, so that an idle accepted connection yields to
/// it (see [`TcpConfig::evict_after`]). Long enough for a server with a free
/// slot to accept it in its next turn.
pub const PENDING_PRESSURE: Duration = Duration::from_millis(100);

/// How long a released connection's FIN may wait for the acknowledgement
/// of the data before it, when the connection lost segments (see
/// [`TcpConfig::loss_recovery`]): smoltcp counts no duplicate ACK once its
/// FIN is out with the peer's already in (LAST-ACK), so a segment lost in
/// the last window would wait for its retransmission timeout (1 s or more).
/// Past this, the FIN goes and smoltcp's own timers take over.
pub(crate) const FIN_HELD_AT_MOST: Duration = Duration::from_secs(2);

/// Counters of what the pools did to keep their sockets available.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct PoolStats {
    /// Half-open connections dropped after `syn_timeout`.
    pub syn_timeouts: u32,
    /// RSTs given up because they could not leave within [`RST_GRACE`].
    pub rst_abandoned: u32,
    /// Connections aborted after `idle_timeout` without a byte moved.
    pub idle_aborts: u32,
    /// Idle connections aborted to make room for a waiting client.
    pub evictions: u32,
    /// FIN-WAIT-2 sockets aborted after `fin_timeout`.
    pub fin_wait_aborts: u32,
}

/// Where a pool socket is in its cycle, as far as the timers care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Listening,
    HalfOpen,
    Connected,
    FinWait2,
    /// FIN-WAIT-1, CLOSING, LAST-ACK: bounded by smoltcp's `timeout`; or
    /// released with its FIN held back until its data is acknowledged (see
    /// [`FIN_HELD_AT_MOST`]).
    Closing,
    /// Aborted: CLOSED with the RST not yet sent.
    Resetting,
    /// CLOSED or TIME-WAIT: free to listen again.
    Over,
}

impl Phase {
    fn of(socket: &tcp::Socket<'_>) -> Self {
        use tcp::State;
        match socket.state() {
            State::Listen => Phase::Listening,
            State::SynReceived | State::SynSent => Phase::HalfOpen,
            State::Established | State::CloseWait => Phase::Connected,
            State::FinWait2 => Phase::FinWait2,
            State::FinWait1 | State::Closing | State::LastAck => Phase::Closing,
            State::TimeWait => Phase::Over,
            State::Closed if socket.remote_endpoint().is_some() => Phase::Resetting,
            State::Closed => Phase::Over,
        }
    }
}

/// Names the sockets one [`StackTcpListener::bind`](crate::StackTcpListener::bind) added,
/// so that closing the listener (or a failed bind) removes exactly those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PoolId(pub(crate) u32);

/// One pool socket: the port it serves, whether a connection holds it, and
/// its timers.
#[derive(Debug, Clone, Copy)]
struct Entry {
    handle: SocketHandle,
    port: u16,
    /// The listener that added it.
    pool: PoolId,
    claimed: bool,
    /// Its listener is closed: it never listens again, and leaves the socket
    /// set once its connection (if any) is over.
    orphan: bool,
    phase: Phase,
    /// When `phase` began.
    since: Instant,
    /// When the connection last moved a byte (or was established, or accepted).
    active_at: Instant,
    /// Aborted without an RST to send (a half-open connection): over at once.
    quiet: bool,
    /// `phase` when [`Pool::refresh`] last re-armed and counted the sockets.
    counted: Phase,
    /// Released with its FIN held back until its data is acknowledged, or
    /// [`FIN_HELD_AT_MOST`] after `since` (the phase, `Closing`, began then).
    fin_held: bool,
}

impl Entry {
    /// Whether the socket is free to listen again (or to leave the set).
    fn is_over(&self, now: Instant) -> bool {
        match self.phase {
            Phase::Over => true,
            Phase::Resetting => self.quiet || now >= self.since.saturating_add(RST_GRACE),
            _ => false,
        }
    }

    /// An established connection not yet accepted, whose client has sent
    /// something (data or its FIN): it waits for the server, not the reverse.
    fn is_ready_pending(&self, socket: &tcp::Socket<'_>) -> bool {
        !self.claimed
            && !self.orphan
            && self.phase == Phase::Connected
            && (socket.recv_queue() > 0 || socket.state() == tcp::State::CloseWait)
    }

    /// Whether a waiting client may take this connection's place: an
    /// accepted connection, or one not accepted whose client has said
    /// nothing (it waits for the server no more than the server for it).
    fn is_evictable(&self, socket: &tcp::Socket<'_>) -> bool {
        !self.orphan
            && self.phase == Phase::Connected
            && (self.claimed
                || socket.recv_queue() == 0 && socket.state() == tcp::State::Established)
    }
}

/// The pool sockets of one stack, over all its listeners.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    entries: heapless::Vec<Entry, MAX_POOL_SOCKETS>,
    pub(crate) stats: PoolStats,
    /// A socket was added, released or orphaned since the last full
    /// [`Pool::refresh`]: the next one must re-arm and recount.
    dirty: bool,
    /// Entries with `fin_held`.
    held_fins: usize,
    /// When [`Pool::maintain`] last ran.
    maintained: Option<Instant>,
}

/// Which sockets are the pool's: `socket(handle)` for each.
fn tcp<'s, 'a>(sockets: &'s mut SocketSet<'a>, handle: SocketHandle) -> &'s mut tcp::Socket<'a> {
    sockets.get_mut::<tcp::Socket>(handle)
}

impl Pool {
    /// Whether a pool socket serves `port` (or still holds a connection on it).
    pub(crate) fn uses_port(&self, port: u16) -> bool {
        self.entries.iter().any(|entry| entry.port == port)
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries.is_full()
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Records a listening socket added to the set.
    pub(crate) fn add(&mut self, handle: SocketHandle, port: u16, pool: PoolId, now: Instant) {
        self.dirty = true;
        // The caller checked `is_full`; a full table only loses bookkeeping.
        let _ = self.entries.push(Entry {
            handle,
            port,
            pool,
            claimed: false,
            orphan: false,
            phase: Phase::Listening,
            since: now,
            active_at: now,
            quiet: false,
            counted: Phase::Listening,
            fin_held: false,
        });
    }

    /// Orphans `pool`'s sockets, aborting those no connection holds.
    pub(crate) fn close(&mut self, pool: PoolId, sockets: &mut SocketSet<'_>) {
        self.dirty = true;
        for entry in self.entries.iter_mut().filter(|e| e.pool == pool) {
            entry.orphan = true;
            if !entry.claimed {
                tcp(sockets, entry.handle).abort();
            }
        }
    }

    /// An established connection on `port` not yet accepted, if any: the
    /// one with data first (Linux's `TCP_DEFER_ACCEPT` idea: a client that
    /// has spoken is served before one that has not), then the earliest.
    fn pending(&self, port: u16, sockets: &SocketSet<'_>) -> Option<usize> {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.claimed && !e.orphan && e.port == port)
            // Released with its FIN held back: over for the server.
            .filter(|(_, e)| !e.fin_held)
            .filter(|(_, e)| {
                let state = sockets.get::<tcp::Socket>(e.handle).state();
                matches!(state, tcp::State::Established | tcp::State::CloseWait)
            })
            .min_by_key(|(_, e)| {
                let socket = sockets.get::<tcp::Socket>(e.handle);
                (!e.is_ready_pending(socket), e.since)
            })
            .map(|(i, _)| i)
    }

    pub(crate) fn has_pending(&self, port: u16, sockets: &SocketSet<'_>) -> bool {
        self.pending(port, sockets).is_some()
    }

    pub(crate) fn claim(
        &mut self,
        port: u16,
        sockets: &SocketSet<'_>,
        now: Instant,
    ) -> Option<(SocketHandle, IpEndpoint)> {
        let i = self.pending(port, sockets)?;
        let entry = &mut self.entries[i];
        let remote = sockets.get::<tcp::Socket>(entry.handle).remote_endpoint()?;
        entry.claimed = true;
        entry.active_at = now;
        Some((entry.handle, remote))
    }

    pub(crate) fn release(&mut self, handle: SocketHandle) {
        self.dirty = true;
        if let Some(entry) = self.entries.iter_mut().find(|e| e.handle == handle) {
            entry.claimed = false;
        }
    }

    /// Closes the connection on `handle` (FIN), or holds the FIN back while
    /// its data is unacknowledged on a connection that needed loss recovery
    /// (see [`FIN_HELD_AT_MOST`]), and gives the socket back.
    pub(crate) fn close_and_release(
        &mut self,
        handle: SocketHandle,
        sockets: &mut SocketSet<'_>,
        gate: &Gate<'_, impl smoltcp::phy::Device>,
        now: Instant,
    ) {
        let socket = tcp(sockets, handle);
        let hold = socket.send_queue() > 0
            && matches!(
                socket.state(),
                tcp::State::Established | tcp::State::CloseWait
            )
            && socket
                .local_endpoint()
                .zip(socket.remote_endpoint())
                .is_some_and(|(local, remote)| gate.has_recovered(local.port, remote));
        let entry = self.entries.iter_mut().find(|e| e.handle == handle);
        match entry {
            Some(entry) if hold => {
                if !entry.fin_held {
                    self.held_fins += 1;
                    entry.fin_held = true;
                }
                observe(entry, socket, now);
            }
            _ => socket.close(),
        }
        self.release(handle);
    }

    /// Sends the held FINs whose data is acknowledged, or whose time is up,
    /// or whose connection ended otherwise.
    pub(crate) fn release_fins(&mut self, sockets: &mut SocketSet<'_>, now: Instant) {
        if !cfg!(feature = "loss-recovery") || self.held_fins == 0 {
            return;
        }
        for entry in &mut self.entries {
            if !entry.fin_held {
                continue;
            }
            let socket = tcp(sockets, entry.handle);
            let expired = now >= entry.since.saturating_add(FIN_HELD_AT_MOST);
            if socket.send_queue() == 0 || expired || Phase::of(socket) != Phase::Connected {
                socket.close();
                entry.fin_held = false;
                self.held_fins -= 1;
                self.dirty = true;
                observe(entry, socket, now);
            }
        }
    }

    /// The connection on `handle` moved a byte.
    pub(crate) fn touch(&mut self, handle: SocketHandle, now: Instant) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.handle == handle) {
            entry.active_at = now;
        }
    }

    /// Follows each socket's state, re-arms free sockets, removes orphans
    /// whose connection is over, and tells the gate which ports listen and
    /// which connections are half-open. Runs before every frame, so it
    /// returns after one look at each socket unless something changed: a
    /// socket's phase, the pool, a listener handed a SYN, or an RST that may
    /// have waited out its grace.
    pub(crate) fn refresh(
        &mut self,
        sockets: &mut SocketSet<'_>,
        gate: &mut Gate<'_, impl smoltcp::phy::Device>,
        config: &TcpConfig,
        now: Instant,
    ) {
        let mut dirty = core::mem::take(&mut self.dirty) | core::mem::take(&mut gate.ports.stale);
        for entry in &mut self.entries {
            observe(entry, tcp(sockets, entry.handle), now);
            dirty |= entry.phase != entry.counted || entry.phase == Phase::Resetting;
        }
        if !dirty {
            return;
        }
        let held_fins = &mut self.held_fins;
        self.entries.retain_mut(|entry| {
            if !entry.orphan || entry.claimed || !entry.is_over(now) {
                return true;
            }
            if entry.fin_held {
                *held_fins -= 1;
            }
            // Removing drops a pending RST: RST_GRACE has passed.
            sockets.remove(entry.handle);
            false
        });
        gate.ports.listening.clear();
        gate.ports.half_open.clear();
        for entry in &mut self.entries {
            let socket = tcp(sockets, entry.handle);
            if !entry.orphan && !entry.claimed && entry.is_over(now) {
                // `listen` resets the socket, dropping an RST that could not leave.
                if entry.phase == Phase::Resetting && !entry.quiet {
                    self.stats.rst_abandoned = self.stats.rst_abandoned.wrapping_add(1);
                }
                if socket.listen(entry.port).is_ok() {
                    config.apply(socket);
                    entry.quiet = false;
                    observe(entry, socket, now);
                }
            }
            entry.counted = entry.phase;
            if entry.phase == Phase::HalfOpen
                && let Some(remote) = socket.remote_endpoint()
            {
                // A full table only means a retransmitted SYN may be held.
                let _ = gate.ports.half_open.push(SynKey::new(remote, entry.port));
            }
            if entry.orphan {
                // A closed listener's port refuses new connections (RST).
                continue;
            }
            let listening = usize::from(entry.phase == Phase::Listening);
            let ports = &mut gate.ports.listening;
            match ports.iter_mut().find(|(p, _)| *p == entry.port) {
                Some((_, n)) => *n += listening,
                // Ports beyond the gate's table pass ungated (as plain smoltcp).
                None => {
                    let _ = ports.push((entry.port, listening));
                }
            }
        }
    }

    /// Runs the timers (half-open, RST, idle, FIN-WAIT-2) and, while the
    /// servers still `accept`, lets waiting clients evict idle connections.
    /// Once per poll.
    pub(crate) fn maintain(
        &mut self,
        sockets: &mut SocketSet<'_>,
        gate: &Gate<'_, impl smoltcp::phy::Device>,
        config: &TcpConfig,
        accepting: bool,
        now: Instant,
    ) {
        for entry in &mut self.entries {
            let socket = tcp(sockets, entry.handle);
            observe(entry, socket, now);
            let pressure = gate.holds_for(entry.port);
            match entry.phase {
                Phase::HalfOpen if expired(entry.since, syn_limit(config, pressure), now) => {
                    // Nothing to tell a peer that never completed the
                    // handshake: no RST, the socket is free at once.
                    socket.abort();
                    entry.quiet = true;
                    self.stats.syn_timeouts = self.stats.syn_timeouts.wrapping_add(1);
                }
                Phase::FinWait2
                    if !entry.claimed && expired(entry.since, fin_limit(config, pressure), now) =>
                {
                    socket.abort();
                    self.stats.fin_wait_aborts = self.stats.fin_wait_aborts.wrapping_add(1);
                }
                Phase::Connected
                    if entry.claimed && expired(entry.active_at, config.idle_timeout, now) =>
                {
                    socket.abort();
                    self.stats.idle_aborts = self.stats.idle_aborts.wrapping_add(1);
                }
                _ => {}
            }
            observe(entry, socket, now);
        }
        if let Some(min_idle) = config.evict_after.filter(|_| accepting) {
            self.evict(sockets, gate, min_idle, now);
        }
        self.maintained = Some(now);
    }

    /// For each port whose clients wait, aborts the longest-idle connection
    /// idle at least `min_idle`, unless a socket is already on its way back.
    fn evict(
        &mut self,
        sockets: &mut SocketSet<'_>,
        gate: &Gate<'_, impl smoltcp::phy::Device>,
        min_idle: Duration,
        now: Instant,
    ) {
        for port in self.ports() {
            let on_port = |e: &&Entry| e.port == port && !e.orphan;
            // Clients held in the backlog need a socket; a connection that
            // waits to be accepted needs the server's attention, which only
            // ending an accepted connection gives.
            let need_socket = gate.holds_for(port);
            let need_slot = self.entries.iter().filter(on_port).any(|e| {
                e.is_ready_pending(sockets.get::<tcp::Socket>(e.handle))
                    && now >= e.since.saturating_add(PENDING_PRESSURE)
            });
            if !need_socket && !need_slot {
                continue;
            }
            // A socket that listens or is about to serves the waiting client;
            // evicting another would cut one connection too many.
            let freeing = self.entries.iter().filter(on_port).any(|e| {
                let socket = sockets.get::<tcp::Socket>(e.handle);
                let aborted = e.claimed && socket.state() == tcp::State::Closed;
                aborted
                    || (need_socket
                        && !e.claimed
                        && matches!(e.phase, Phase::Listening | Phase::Resetting | Phase::Over))
            });
            if freeing {
                continue;
            }
            let victim = self
                .entries
                .iter()
                .enumerate()
                .filter(|(_, e)| on_port(e))
                .filter(|(_, e)| need_socket || e.claimed)
                .filter(|(_, e)| e.is_evictable(sockets.get::<tcp::Socket>(e.handle)))
                .filter(|(_, e)| expired(e.active_at, Some(min_idle), now))
                .min_by_key(|(_, e)| e.active_at)
                .map(|(i, _)| i);
            if let Some(i) = victim {
                let entry = &mut self.entries[i];
                tcp(sockets, entry.handle).abort();
                observe(entry, sockets.get::<tcp::Socket>(entry.handle), now);
                self.stats.evictions = self.stats.evictions.wrapping_add(1);
            }
        }
    }

    /// The distinct ports of the pool (at most 8 are gated; more pass as one).
    fn ports(&self) -> heapless::Vec<u16, MAX_POOL_SOCKETS> {
        let mut ports = heapless::Vec::new();
        for entry in &self.entries {
            if !ports.contains(&entry.port) {
                // At most one per entry: never full.
                let _ = ports.push(entry.port);
            }
        }
        ports
    }

    /// When the next timer of [`Pool::maintain`] is due, if any.
    ///
    /// A timer that was already due when `maintain` last ran is left out:
    /// that pass acted on it, or had nothing to do (a connection waiting to
    /// be accepted with no idle one to evict, a server that no longer
    /// accepts), and only a change of state, which comes with a poll, can
    /// make it act. Counting it would keep the delay at zero: the stack's
    /// callers would poll in a busy loop for as long as it lasts.
    pub(crate) fn next_due(
        &self,
        gate: &Gate<'_, impl smoltcp::phy::Device>,
        config: &TcpConfig,
        now: Instant,
    ) -> Option<Duration> {
        const NONE: (Instant, Option<Duration>) = (Instant::from_micros(0), None);
        self.entries
            .iter()
            .flat_map(|e| {
                let pressure = gate.holds_for(e.port);
                // A connection on the port waits to be accepted: once it has
                // waited `PENDING_PRESSURE`, an idle accepted one may be
                // evicted for it (see `evict`).
                let waiting = || {
                    self.entries.iter().any(|w| {
                        w.port == e.port && !w.claimed && !w.orphan && w.phase == Phase::Connected
                    })
                };
                let timers = match e.phase {
                    Phase::HalfOpen => [(e.since, syn_limit(config, pressure)), NONE],
                    Phase::FinWait2 if !e.claimed => [(e.since, fin_limit(config, pressure)), NONE],
                    Phase::Resetting if !e.quiet => [(e.since, Some(RST_GRACE)), NONE],
                    Phase::Connected if pressure => [(e.active_at, config.evict_after), NONE],
                    Phase::Connected if e.claimed => [
                        (e.active_at, config.idle_timeout),
                        (e.active_at, config.evict_after.filter(|_| waiting())),
                    ],
                    Phase::Connected => [(e.since, Some(PENDING_PRESSURE)), NONE],
                    Phase::Closing if e.fin_held => [(e.since, Some(FIN_HELD_AT_MOST)), NONE],
                    _ => [NONE, NONE],
                };
                timers
                    .into_iter()
                    .filter_map(|(from, limit)| Some(from.saturating_add(limit?)))
            })
            .filter(|due| self.maintained.is_none_or(|seen| *due > seen))
            .map(|due| due.saturating_duration_since(now))
            .min()
    }

    /// Checks that `port` can take a pool socket.
    pub(crate) fn check_add(&self, port: u16) -> Result<(), Error> {
        if port == 0 {
            return Err(Error::Unaddressable);
        }
        if self.is_full() {
            return Err(Error::PoolFull);
        }
        Ok(())
    }
}

/// Notes a change of phase, and when a connection began (its first
/// activity). A handshake may complete between two looks (LISTEN straight to
/// ESTABLISHED), so any entry into `Connected` starts the idle clock afresh.
fn observe(entry: &mut Entry, socket: &tcp::Socket<'_>, now: Instant) {
    let phase = match Phase::of(socket) {
        // Closed by its handler, its FIN held back: closing, not serving.
        Phase::Connected if entry.fin_held => Phase::Closing,
        phase => phase,
    };
    if phase != entry.phase {
        if phase == Phase::Connected {
            entry.active_at = now;
        }
        entry.phase = phase;
        entry.since = now;
    }
}

fn expired(since: Instant, limit: Option<Duration>, now: Instant) -> bool {
    limit.is_some_and(|t| now >= since.saturating_add(t))
}

/// `limit`, cut to `cap` while clients wait in the backlog.
fn under_pressure(limit: Option<Duration>, pressure: bool, cap: Duration) -> Option<Duration> {
    if pressure {
        Some(limit.map_or(cap, |t| t.min(cap)))
    } else {
        limit
    }
}

fn syn_limit(config: &TcpConfig, pressure: bool) -> Option<Duration> {
    under_pressure(config.syn_timeout, pressure, SYN_RECEIVED_UNDER_PRESSURE)
}

fn fin_limit(config: &TcpConfig, pressure: bool) -> Option<Duration> {
    under_pressure(config.fin_timeout, pressure, FIN_WAIT_UNDER_PRESSURE)
}
