//! An echo server on a smoltcp stack over a TAP device, run in a thread of a
//! private network namespace, for the TAP tests and the TAP benchmark.
//!
//! Use with `#[path = "support/netns.rs"] mod netns;` and
//! `#[path = "support/smoltcp_server.rs"] mod smoltcp_server;`.

#![allow(dead_code)] // each test crate uses a subset

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use smoltcp::iface::{Interface, SocketStorage};
use smoltcp::phy::Device;
use smoltcp::wire::{IpAddress, IpCidr};
use socketserver_core::{DefaultHooks, Echo, EchoDatagram, Multiplexed};
use socketserver_smoltcp::{
    FdIdle, GateStats, Net, PoolStats, Stack, StdClock, Stop, SynSlot, TapConfig, TcpConfig,
    TcpStorage, UdpStorage, tcp_server, tcp_server_with, udp_server,
};

use super::netns;

#[path = "impaired.rs"]
pub mod impaired;

use impaired::{Counts, Faults};

/// The kernel side of the TAP link.
pub const KERNEL_CIDR: &str = "192.168.69.100/24";
/// The smoltcp side.
pub const STACK_IP: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);
/// The echo port.
pub const PORT: u16 = 7;

/// Which server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Core's `Sequential` with core's blocking `Echo`.
    Sync,
    /// Core's `Multiplexed<N>` with core's async `Echo`, N = the pool size.
    Multiplexed,
    /// Core's `Server` over `Datagrams` with `EchoDatagram`, `max_packet_size` 8192.
    Udp,
}

/// A server to run: strategy, pool size (4 or 8 for TCP), settings.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The strategy.
    pub strategy: Strategy,
    /// TCP pool sockets: 1, 4, 8 or 16.
    pub pool: usize,
    /// Settings of the pool sockets.
    pub tcp: TcpConfig,
    /// `Multiplexed` idle timeout.
    pub idle_timeout: Option<Duration>,
    /// SYN backlog slots.
    pub backlog: usize,
    /// Faults on the stack's link (its device): none by default.
    pub faults: Option<Faults>,
}

impl Spec {
    /// Defaults for `strategy` with `pool` sockets.
    pub fn new(strategy: Strategy, pool: usize) -> Self {
        Self {
            strategy,
            pool,
            tcp: TcpConfig::DEFAULT,
            idle_timeout: None,
            backlog: 64,
            faults: None,
        }
    }

    /// The same server behind `faults`.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = Some(faults);
        self
    }
}

/// What the server reports when it stops.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// The SYN gate's counters.
    pub gate: GateStats,
    /// The TCP pool's counters (default for UDP).
    pub pool: PoolStats,
    /// How long `serve_forever` took to return after the shutdown request.
    pub stop_latency: Duration,
    /// Frames duplicated and reordered, with [`Spec::faults`].
    pub shuffled: Counts,
}

/// Creates a namespace with a TAP device, runs the server of `spec` on it in
/// a thread, runs `client` with the server's address from another thread of
/// the namespace, then shuts the server down. Returns `None` (after printing
/// why) when TAP tests cannot run here.
pub fn with_server<R: Send + 'static>(
    test: &str,
    spec: Spec,
    client: impl FnOnce(SocketAddr) -> R + Send + 'static,
) -> Option<(R, Report)> {
    if !netns::require_tap_or_skip(test) {
        return None;
    }
    Some(netns::in_new_netns(move || {
        netns::add_tap("tap0", KERNEL_CIDR).unwrap_or_else(|e| panic!("{e}"));
        let stop = Arc::new(Stop::new());
        let (ready_tx, ready_rx) = mpsc::channel();
        let server_stop = Arc::clone(&stop);
        let server = thread::Builder::new()
            .name("smoltcp-server".into())
            .stack_size(64 << 20)
            .spawn(move || run(spec, &server_stop, ready_tx))
            .unwrap_or_else(|e| panic!("spawn server: {e}"));
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("server failed to start: {e}"),
            Err(e) => panic!("server did not start: {e}"),
        }
        let addr = SocketAddr::new(IpAddr::V4(STACK_IP), PORT);
        let result = panic::catch_unwind(AssertUnwindSafe(|| client(addr)));
        let requested = std::time::Instant::now();
        stop.shutdown();
        let report = server.join();
        let result = result.unwrap_or_else(|p| panic::resume_unwind(p));
        let mut report = report.unwrap_or_else(|p| panic::resume_unwind(p));
        report.stop_latency = requested.elapsed();
        (result, report)
    }))
}

type Parts<D> = (Interface, D, StdClock, FdIdle);

fn run(spec: Spec, stop: &Stop, ready: mpsc::Sender<Result<(), String>>) -> Report {
    let config = TapConfig::new("tap0", IpCidr::new(IpAddress::Ipv4(STACK_IP), 24));
    let (iface, device, clock, idle) = match config.open() {
        Ok(parts) => parts,
        Err(e) => {
            let _ = ready.send(Err(e.to_string()));
            panic!("open TAP: {e}");
        }
    };
    let (gate, pool, shuffled) = match spec.faults {
        None => {
            let (gate, pool) = serve((iface, device, clock, idle), spec, stop, &ready);
            (gate, pool, Counts::default())
        }
        Some(faults) => {
            let (device, tally) = impaired::faults(device, faults);
            let (gate, pool) = serve((iface, device, clock, idle), spec, stop, &ready);
            (gate, pool, tally.get())
        }
    };
    Report {
        gate,
        pool,
        stop_latency: Duration::ZERO,
        shuffled,
    }
}

fn serve<D: Device>(
    parts: Parts<D>,
    spec: Spec,
    stop: &Stop,
    ready: &mpsc::Sender<Result<(), String>>,
) -> (GateStats, PoolStats) {
    match (spec.strategy, spec.pool) {
        (Strategy::Udp, _) => serve_udp(parts, spec, stop, ready),
        (_, 1) => serve_tcp::<1, D>(parts, spec, stop, ready),
        (_, 4) => serve_tcp::<4, D>(parts, spec, stop, ready),
        (_, 8) => serve_tcp::<8, D>(parts, spec, stop, ready),
        (_, 16) => serve_tcp::<16, D>(parts, spec, stop, ready),
        (_, n) => panic!("unsupported pool size {n}"),
    }
}

fn serve_udp<D: Device>(
    (iface, device, clock, idle): Parts<D>,
    spec: Spec,
    stop: &Stop,
    ready: &mpsc::Sender<Result<(), String>>,
) -> (GateStats, PoolStats) {
    let mut storage = Box::new(UdpStorage::<16, 65536>::new());
    let mut sockets: Vec<SocketStorage<'_>> = (0..4).map(|_| SocketStorage::EMPTY).collect();
    let mut backlog = vec![SynSlot::EMPTY; spec.backlog];
    let stack = RefCell::new(
        Stack::new(iface, device, &mut sockets, &mut backlog, clock, idle).with_stop(stop),
    );
    let buffers = (vec![0u8; 8192], vec![0u8; 8192]);
    let mut server =
        udp_server(&stack, PORT, storage.socket(), buffers, EchoDatagram).expect("bind UDP");
    let _ = ready.send(Ok(()));
    server
        .serve_forever(Duration::from_millis(100))
        .expect("serve");
    server.server_close();
    drop(server);
    (stack.borrow().gate_stats(), PoolStats::default())
}

/// Buffers per direction of each pool socket: 64 KiB, desktop-class.
const BUF: usize = 65536;

fn serve_tcp<const N: usize, D: Device>(
    (iface, device, clock, idle): Parts<D>,
    spec: Spec,
    stop: &Stop,
    ready: &mpsc::Sender<Result<(), String>>,
) -> (GateStats, PoolStats) {
    let mut storage = Box::new(TcpStorage::<N, BUF, BUF>::new());
    let mut sockets: Vec<SocketStorage<'_>> = (0..N + 2).map(|_| SocketStorage::EMPTY).collect();
    let mut backlog = vec![SynSlot::EMPTY; spec.backlog];
    let stack = RefCell::new(
        Stack::new(iface, device, &mut sockets, &mut backlog, clock, idle)
            .with_tcp_config(spec.tcp)
            .with_stop(stop),
    );
    if spec.strategy == Strategy::Multiplexed {
        let strategy = std::pin::pin!(
            Multiplexed::<_, _, _, N>::new(Echo::<4096>).with_idle_timeout(spec.idle_timeout)
        );
        let mut server = tcp_server_with(&stack, PORT, &mut *storage, strategy, DefaultHooks)
            .expect("bind TCP pool");
        let _ = ready.send(Ok(()));
        server
            .serve_forever(Duration::from_millis(100))
            .expect("serve");
        server.server_close();
    } else {
        let mut server =
            tcp_server(&stack, PORT, &mut *storage, Echo::<4096>).expect("bind TCP pool");
        let _ = ready.send(Ok(()));
        server
            .serve_forever(Duration::from_millis(100))
            .expect("serve");
        server.server_close();
    }
    // Send the FINs and RSTs of what server_close ended.
    stack.borrow_mut().poll();
    let stack = stack.borrow();
    (stack.gate_stats(), stack.pool_stats())
}
