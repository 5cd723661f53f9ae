//! The shared network stack: the user's interface, device and socket storage,
//! a clock, a way to idle, and how one poll drives them and the TCP pools.

use core::time::Duration;

use smoltcp::iface::{
    Interface, PollIngressSingleResult, PollResult, SocketHandle, SocketSet, SocketStorage,
};
use smoltcp::phy::Device;
use smoltcp::socket::AnySocket;
use socketserver_core::time::{Clock, Instant};

use crate::config::{TcpConfig, from_smol};
use crate::drive::shorter;
use crate::error::Error;
use crate::gate::{Gate, GateStats, SynSlot};
use crate::idle::Idle;
use crate::net::Net;
use crate::pool::{Pool, PoolId, PoolStats};
use crate::stop::Stop;

mod sockets;

/// Inbound frames one [`Net::poll`] processes before it returns, so a flood
/// cannot starve a firmware main loop; the rest wait for the next call.
const MAX_INGRESS: usize = 128;

/// Egress rounds per poll (each is bounded work in smoltcp).
const MAX_EGRESS: usize = 32;

/// The user's smoltcp interface, device and socket storage, with a clock and
/// an [`Idle`] strategy. Put it in a `RefCell` and hand out
/// [`NetRef`](crate::NetRef)s to it (`&stack` converts): listeners,
/// connections, UDP sockets and waiters all borrow it briefly.
///
/// The device is wrapped in a SYN gate (see [`GateStats`]): connection
/// requests to a pool port with no listening socket are held in `backlog`
/// (or, when it is full, dropped so the peer retransmits) instead of being
/// refused with RST.
pub struct Stack<'a, D: Device, Clk: Clock, I: Idle> {
    iface: Interface,
    device: Gate<'a, D>,
    sockets: SocketSet<'a>,
    capacity: usize,
    clock: Clk,
    idle: I,
    pool: Pool,
    config: TcpConfig,
    more_ingress: bool,
    stop: Option<&'a Stop>,
    /// When a poll first saw the stop asked for: the grace period of a
    /// [`Stop::shutdown_within`] counts from here.
    stop_seen: Option<Instant>,
    /// When the requests in flight must end ([`Stop::deadline`]), as the
    /// last poll saw it.
    cut_at: Option<Instant>,
    next_pool: PoolId,
    /// Where the next search for a free dynamic port starts (below the
    /// range: at its start).
    next_port: u16,
}

impl<D: Device, Clk: Clock, I: Idle> core::fmt::Debug for Stack<'_, D, Clk, I> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Stack")
            .field("addrs", &self.iface.ip_addrs())
            .field("sockets", &self.sockets.iter().count())
            .field("capacity", &self.capacity)
            .field("pool", &self.pool.len())
            .field("pool_stats", &self.pool.stats)
            .field("gate", &self.device.stats())
            .finish_non_exhaustive()
    }
}

impl<'a, D: Device, Clk: Clock, I: Idle> Stack<'a, D, Clk, I> {
    /// A stack over `iface` (configured by you for `device`), with `sockets`
    /// as the socket set's storage and `backlog` as the SYN backlog's.
    pub fn new(
        iface: Interface,
        device: D,
        sockets: &'a mut [SocketStorage<'a>],
        backlog: &'a mut [SynSlot],
        clock: Clk,
        idle: I,
    ) -> Self {
        let capacity = sockets.len();
        Self {
            iface,
            device: Gate::new(device, backlog),
            sockets: SocketSet::new(sockets),
            capacity,
            clock,
            idle,
            pool: Pool::default(),
            config: TcpConfig::DEFAULT,
            more_ingress: false,
            stop: None,
            stop_seen: None,
            cut_at: None,
            next_pool: PoolId(0),
            next_port: 0,
        }
    }

    /// Replaces the settings applied to pool sockets each time they are armed.
    pub fn with_tcp_config(mut self, config: TcpConfig) -> Self {
        self.config = config;
        self.device.recovery.get_mut().enabled = config.loss_recovery;
        self
    }

    /// Watches `stop`, a stop asked for from anywhere (another thread, a
    /// signal handler, an interrupt):
    /// - its flag is the shutdown flag of the servers on this stack
    ///   ([`Waiter`](crate::Waiter)): once it is requested, and while the
    ///   loop is stopped (draining), no client will be accepted, so waiting
    ///   clients stop evicting idle connections ([`TcpConfig::evict_after`])
    ///   and the requests in flight keep their whole grace period;
    /// - once the grace of [`Stop::shutdown_within`] is over, or
    ///   [`Stop::cut_in_flight`] was called, every blocking read or write
    ///   fails with [`Error::TimedOut`] at its next wake-up and its
    ///   connection is reset: that ends the grace period under `Sequential`.
    pub fn with_stop(mut self, stop: &'a Stop) -> Self {
        self.stop = Some(stop);
        self
    }

    /// The interface.
    pub fn interface(&self) -> &Interface {
        &self.iface
    }

    /// The interface, mutably (addresses, routes).
    pub fn interface_mut(&mut self) -> &mut Interface {
        &mut self.iface
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device.inner
    }

    /// The device, mutably.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device.inner
    }

    /// The socket set, for sockets of your own next to the server's. Add
    /// them with [`Stack::add_socket`], which checks capacity.
    pub fn sockets(&self) -> &SocketSet<'a> {
        &self.sockets
    }

    /// The socket set, mutably.
    pub fn sockets_mut(&mut self) -> &mut SocketSet<'a> {
        &mut self.sockets
    }

    /// The interface and the socket set at once, for what needs both (a
    /// client socket's `connect` takes the interface's context).
    pub fn interface_and_sockets_mut(&mut self) -> (&mut Interface, &mut SocketSet<'a>) {
        (&mut self.iface, &mut self.sockets)
    }

    /// Adds a socket, or fails with [`Error::SocketSetFull`] where smoltcp
    /// would panic.
    pub fn add_socket<T: AnySocket<'a>>(&mut self, socket: T) -> Result<SocketHandle, Error> {
        if self.sockets.iter().count() >= self.capacity {
            return Err(Error::SocketSetFull);
        }
        Ok(self.sockets.add(socket))
    }

    /// What the SYN gate did so far.
    pub fn gate_stats(&self) -> GateStats {
        self.device.stats()
    }

    /// Connection requests held in the backlog now.
    pub fn held_requests(&self) -> usize {
        self.device.held()
    }

    /// What the pools did so far to keep their sockets available.
    pub fn pool_stats(&self) -> PoolStats {
        self.pool.stats
    }

    fn smol_now(&self) -> smoltcp::time::Instant {
        to_smol_instant(self.clock.now())
    }

    /// Notes when the stack first saw its [`Stop`] asked for, which starts
    /// the grace period, and when the requests in flight must end.
    fn note_stop(&mut self, now: Instant) {
        let Some(stop) = self.stop.filter(|stop| stop.is_asked()) else {
            return;
        };
        let seen = *self.stop_seen.get_or_insert(now);
        self.cut_at = stop.deadline(seen);
    }

    fn refresh(&mut self, now: Instant) {
        self.pool
            .refresh(&mut self.sockets, &mut self.device, &self.config, now);
    }
}

impl<'a, D: Device, Clk: Clock, I: Idle> Net<'a> for Stack<'a, D, Clk, I> {
    fn now(&self) -> Instant {
        self.clock.now()
    }

    fn poll(&mut self) -> bool {
        let received = self.poll_ingress();
        let sent = self.flush();
        received || sent
    }

    fn poll_ingress(&mut self) -> bool {
        // One reading of the clock for the whole pass: it is a system call's
        // worth of work on some hosts, and the pass takes microseconds.
        let clock_now = self.clock.now();
        let now = to_smol_instant(clock_now);
        self.iface.poll_maintenance(now);
        // Requested (the loop is stopping) or stopped (draining after it):
        // either way nobody will be accepted, so nobody may evict.
        let accepting = !self.stop.is_some_and(|stop| {
            let flag = stop.flag();
            flag.is_requested() || flag.is_stopped()
        });
        self.note_stop(clock_now);
        self.pool.maintain(
            &mut self.sockets,
            &self.device,
            &self.config,
            accepting,
            clock_now,
        );
        let mut changed = false;
        self.more_ingress = true;
        self.refresh(clock_now);
        for _ in 0..MAX_INGRESS {
            // Between frames only a SYN handed to a listener changes what
            // the gate must know (one listener fewer, one more half-open
            // connection whose retransmitted SYN it must drop); sockets
            // that listen again are counted after the batch, and a SYN
            // held meanwhile is released at the next poll.
            if self.device.ports.stale {
                self.refresh(clock_now);
            }
            match self
                .iface
                .poll_ingress_single(now, &mut self.device, &mut self.sockets)
            {
                PollIngressSingleResult::None => {
                    self.more_ingress = false;
                    break;
                }
                PollIngressSingleResult::PacketProcessed => {}
                PollIngressSingleResult::SocketStateChanged => changed = true,
            }
        }
        self.pool.release_fins(&mut self.sockets, clock_now);
        self.refresh(clock_now);
        changed
    }

    /// No ingress: on a TAP device a look for frames is a `read` system
    /// call, and frames that arrived stay queued for the next poll (and
    /// wake the next idle at once).
    fn flush(&mut self) -> bool {
        let clock_now = self.clock.now();
        let now = to_smol_instant(clock_now);
        let mut changed = false;
        for _ in 0..MAX_EGRESS {
            match self
                .iface
                .poll_egress(now, &mut self.device, &mut self.sockets)
            {
                PollResult::None => break,
                PollResult::SocketStateChanged => changed = true,
            }
        }
        // Sockets whose RST just went out may leave the set or listen again.
        self.refresh(clock_now);
        changed
    }

    fn poll_delay(&mut self) -> Option<Duration> {
        if self.more_ingress || self.device.has_releasable() {
            return Some(Duration::ZERO);
        }
        let now = self.clock.now();
        // A pool timer that is due needs a poll even if smoltcp does not.
        let fin_due = self.pool.next_due(&self.device, &self.config, now);
        let smol_now = self.smol_now();
        let smol = self
            .iface
            .poll_delay(smol_now, &self.sockets)
            .map(from_smol);
        let recovery = self
            .device
            .recovery_due()
            .map(|at| from_smol(at.max(smol_now) - smol_now));
        // The end of a grace period cuts what is left: a blocking wait
        // must wake for it (once: past it, it is no timer).
        let cut = self
            .cut_at
            .filter(|&at| at > now)
            .map(|at| at.saturating_duration_since(now));
        shorter(shorter(smol, fin_due), shorter(recovery, cut))
    }

    fn idle(&mut self, timeout: Option<Duration>) {
        self.idle.idle(timeout);
    }

    fn tcp_config(&self) -> TcpConfig {
        self.config
    }

    fn is_cancelled(&self) -> bool {
        self.cut_at.is_some_and(|at| self.clock.now() >= at)
    }
}

fn to_smol_instant(now: Instant) -> smoltcp::time::Instant {
    smoltcp::time::Instant::from_micros(i64::try_from(now.as_micros()).unwrap_or(i64::MAX))
}
