//! The OS transports: TCP, UDP, Unix stream and Unix datagram, under every strategy.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use socketserver::{Datagrams, DefaultHooks, Echo, EchoDatagram, Sequential, StrategyFor};
use socketserver_std::{
    Address, Attach, DEFAULT_MAX_CONNECTIONS, DatagramKind, Forking, HeapMultiplexed, Options,
    SocketConnection, SocketDatagram, SocketKind, SocketListener, SocketServer, StreamKind,
    Threading, ToAddress, UnixAddr,
};

use crate::args::{Args, Strategy, Transport, usage_error};
use crate::signals;

/// How often `service_actions` runs (Python's default `poll_interval`).
const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// Stack size of handler threads: the echo needs little, and 1,000 of them fit easily.
const THREAD_STACK: usize = 256 * 1024;
/// The echo's read size in each multiplexed request (each holds its own).
const SLOT_CHUNK: usize = 16384;
/// The echo's read size under the blocking strategies.
const CHUNK: usize = 16384;

/// Validates the address for the transport (usage errors exit 2) and serves.
pub fn run(args: &Args) -> ExitCode {
    let smoltcp_only = [
        ("--tap", args.tap.is_some()),
        ("--ip", args.ip.is_some()),
        ("--mac", args.mac.is_some()),
        ("--pcap", args.pcap.is_some()),
    ];
    if let Some((flag, _)) = smoltcp_only.iter().find(|(_, given)| *given) {
        usage_error(&format!(
            "{flag} configures the smoltcp interface: use it with smoltcp-tcp or smoltcp-udp"
        ));
    }
    let grace = args.grace();
    let max = args.max_connections(DEFAULT_MAX_CONNECTIONS);
    match args.transport {
        Transport::Tcp | Transport::Udp => {
            let text = args.addr.as_deref().unwrap_or("127.0.0.1:0");
            let addr: SocketAddr = match text.to_address() {
                Ok(addr) => addr,
                Err(e) => usage_error(&format!("--addr {text}: not HOST:PORT ({e})")),
            };
            if args.transport == Transport::Tcp {
                serve_stream(args.strategy, addr, text, grace, max)
            } else {
                serve_datagram(args.strategy, addr, text, grace)
            }
        }
        Transport::Unix | Transport::UnixDgram => {
            let Some(text) = args.addr.as_deref().filter(|p| !p.is_empty()) else {
                usage_error("--addr PATH is required for unix transports")
            };
            let path = PathBuf::from(text);
            let datagram = args.transport == Transport::UnixDgram;
            let addr = UnixAddr::new(&path);
            let code = if datagram {
                serve_datagram(args.strategy, addr, text, grace)
            } else {
                serve_stream(args.strategy, addr, text, grace, max)
            };
            // Remove our socket file after a clean stop (a runtime failure may
            // mean the path was never ours). A file someone put in its place
            // while we ran is not detected.
            if code == ExitCode::SUCCESS {
                let _ = std::fs::remove_file(&path);
            }
            code
        }
        Transport::SmoltcpTcp | Transport::SmoltcpUdp => unreachable_transport(),
    }
}

fn unreachable_transport() -> ExitCode {
    usage_error("this transport is not served by the OS backend")
}

/// A runtime failure: one line naming the address and the OS error, exit 1.
pub fn runtime_error(addr: &str, e: &io::Error) -> ExitCode {
    eprintln!("echo_server: {addr}: {e}");
    ExitCode::FAILURE
}

/// The server options: Python's defaults, and a stale Unix socket file (its
/// server gone) is replaced, never a live one.
fn options() -> Options {
    Options::default().remove_stale_unix_socket(true)
}

fn announce(address: &dyn std::fmt::Display) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {address}")?;
    out.flush()
}

fn shown<A: Address>(address: &A, given: &str) -> String {
    // IP servers show the real port; Unix servers the path as given.
    let debug = format!("{address:?}");
    if A::IS_INET { debug } else { given.to_owned() }
}

/// Each strategy is served from its own function, never inlined here, so
/// that one frame does not hold every strategy: a forking parent pays for its
/// resident memory on every fork (page tables copied, then torn down in the
/// child).
fn serve_stream<A: Address>(
    strategy: Strategy,
    addr: A,
    given: &str,
    grace: Duration,
    max: usize,
) -> ExitCode {
    match strategy {
        Strategy::Sync => stream_sync(addr, given, grace),
        Strategy::Threading => stream_threading(addr, given, grace),
        Strategy::Forking => stream_forking(addr, given, grace),
        Strategy::Multiplexed => stream_multiplexed(addr, given, grace, max),
    }
}

#[inline(never)]
fn stream_sync<A: Address>(addr: A, given: &str, grace: Duration) -> ExitCode {
    stream_with(Sequential::new(Echo::<CHUNK>), addr, given, grace)
}

#[inline(never)]
fn stream_threading<A: Address>(addr: A, given: &str, grace: Duration) -> ExitCode {
    let threading = Threading::new(Echo::<CHUNK>).stack_size(Some(THREAD_STACK));
    stream_with(threading, addr, given, grace)
}

#[inline(never)]
fn stream_forking<A: Address>(addr: A, given: &str, grace: Duration) -> ExitCode {
    stream_with(Forking::new(Echo::<CHUNK>), addr, given, grace)
}

/// Core's async `Echo`, the same value the other strategies serve, on up to
/// `max` slots (allocated as clients come) polled from this thread.
#[inline(never)]
fn stream_multiplexed<A: Address>(addr: A, given: &str, grace: Duration, max: usize) -> ExitCode {
    let multiplexed =
        HeapMultiplexed::<SocketConnection<A>, _, _>::new(Echo::<SLOT_CHUNK>).max_connections(max);
    stream_with(multiplexed, addr, given, grace)
}

/// Binds, announces, serves until a signal; `serve_forever` returns once
/// the requests in flight finished or were cut at the end of the grace
/// period (a graceful stop, see `signals`); closes (waiting for threads and
/// children), exits 0.
fn serve_with<T, P>(strategy: P, addr: T::Addr, given: &str, grace: Duration) -> ExitCode
where
    T: SocketKind,
    P: StrategyFor<T::Source, DefaultHooks> + Attach,
{
    let mut server =
        match SocketServer::<T, P>::with_options(addr, strategy, DefaultHooks, options()) {
            Ok(server) => server,
            Err(e) => return runtime_error(given, &e),
        };
    // Handlers first: a client may signal as soon as it reads the first line.
    if let Err(e) = signals::install(server.shutdown_handle(), grace) {
        return runtime_error(given, &e);
    }
    if announce(&shown(server.server_address(), given)).is_err() {
        return ExitCode::FAILURE;
    }
    if let Err(e) = server.serve_forever(POLL_INTERVAL) {
        return runtime_error(given, &e);
    }
    server.server_close();
    ExitCode::SUCCESS
}

fn stream_with<A, P>(strategy: P, addr: A, given: &str, grace: Duration) -> ExitCode
where
    A: Address,
    P: StrategyFor<SocketListener<A>, DefaultHooks> + Attach,
{
    serve_with::<StreamKind<A>, P>(strategy, addr, given, grace)
}

fn serve_datagram<A: Address>(
    strategy: Strategy,
    addr: A,
    given: &str,
    grace: Duration,
) -> ExitCode {
    match strategy {
        Strategy::Sync => datagram_with(Sequential::new(EchoDatagram), addr, given, grace),
        Strategy::Threading => datagram_with(
            Threading::new(EchoDatagram).stack_size(Some(THREAD_STACK)),
            addr,
            given,
            grace,
        ),
        Strategy::Forking => datagram_with(Forking::new(EchoDatagram), addr, given, grace),
        // A datagram request never waits on a peer: served inline, as `sync`.
        Strategy::Multiplexed => datagram_with(Sequential::new(EchoDatagram), addr, given, grace),
    }
}

fn datagram_with<A, P>(strategy: P, addr: A, given: &str, grace: Duration) -> ExitCode
where
    A: Address,
    P: StrategyFor<Datagrams<SocketDatagram<A>, Vec<u8>>, DefaultHooks> + Attach,
{
    serve_with::<DatagramKind<A>, P>(strategy, addr, given, grace)
}
