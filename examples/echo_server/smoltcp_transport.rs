//! The smoltcp transports (`smoltcp-tcp`, `smoltcp-udp`): the same echo
//! handlers on the userspace stack, attached to an existing TAP device.
//!
//! Run it inside a network namespace that holds the TAP device, with the
//! kernel side addressed, e.g.:
//!
//! ```text
//! ip netns add echo && ip netns exec echo sh -c '
//!   ip tuntap add dev tap0 mode tap && ip addr add 192.168.69.100/24 dev tap0 &&
//!   ip link set tap0 up && ip link set lo up &&
//!   echo_server --transport smoltcp-tcp --tap tap0 --ip 192.168.69.1/24 --strategy multiplexed'
//! ```
//!
//! `--pcap PATH` captures every frame of the stack's interface to a pcap file.

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::pin::pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use smoltcp::iface::SocketStorage;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr};
use socketserver_core::{DefaultHooks, Echo, EchoDatagram, IdlePolicy, Multiplexed, RequestSource};
use socketserver_smoltcp::{
    DEFAULT_MAC, Net, Stack, Stop, SynSlot, TapConfig, TcpStorage, UdpStorage, serve_until_stopped,
    tcp_server, tcp_server_with, udp_server,
};

use crate::args::{Args, Strategy, Transport, usage_error};

/// Connections `multiplexed` serves at once (and pool sockets it listens with).
const MULTIPLEXED_SLOTS: usize = 16;
/// Pool sockets under `sync`: one is served, the others complete handshakes meanwhile.
const SYNC_POOL: usize = 4;
/// Connection requests held while every pool socket is busy.
const BACKLOG: usize = 128;
/// Per-direction buffer of each pool socket: desktop-class throughput over TAP.
const TCP_BUF: usize = 65536;
/// Python's `max_packet_size`.
const MAX_PACKET: usize = 8192;

/// What the flags say, validated.
struct Plan {
    tap: String,
    cidr: IpCidr,
    mac: EthernetAddress,
    /// 0: the stack picks a free port of the dynamic range.
    port: u16,
    shown: SocketAddr,
}

fn plan(args: &Args) -> Plan {
    if matches!(args.strategy, Strategy::Threading | Strategy::Forking) {
        usage_error(
            "--strategy threading and forking need OS sockets: use sync or multiplexed with smoltcp transports",
        );
    }
    if args.max_connections(MULTIPLEXED_SLOTS) > MULTIPLEXED_SLOTS {
        usage_error(&format!(
            "--max-connections: smoltcp-tcp serves at most its pool of {MULTIPLEXED_SLOTS}"
        ));
    }
    let Some(tap) = args.tap.clone() else {
        usage_error("smoltcp transports need --tap NAME");
    };
    let Some(ip) = args.ip.as_deref() else {
        usage_error("smoltcp transports need --ip A.B.C.D/NN");
    };
    let (addr, prefix) = parse_cidr(ip).unwrap_or_else(|| {
        usage_error(&format!(
            "--ip {ip}: not an IPv4 address with a prefix, A.B.C.D/NN"
        ))
    });
    let mac = match args.mac.as_deref() {
        None => DEFAULT_MAC,
        Some(text) => match parse_mac(text) {
            Some(mac) if mac.is_unicast() => mac,
            _ => usage_error(&format!(
                "--mac {text}: not a unicast MAC address like 02:00:00:00:00:01"
            )),
        },
    };
    let port = match args.addr.as_deref() {
        None => 7,
        Some(text) => {
            let given: SocketAddrV4 = text
                .parse()
                .unwrap_or_else(|_| usage_error(&format!("--addr {text}: not IPv4:PORT")));
            if *given.ip() != addr && !given.ip().is_unspecified() {
                usage_error(&format!(
                    "--addr {text}: the stack's address is {addr} (--ip)"
                ));
            }
            given.port()
        }
    };
    Plan {
        tap,
        cidr: IpCidr::new(IpAddress::Ipv4(addr), prefix),
        mac,
        port,
        shown: SocketAddr::V4(SocketAddrV4::new(addr, port)),
    }
}

fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, prefix) = text.split_once('/')?;
    let prefix: u8 = prefix.parse().ok()?;
    (prefix <= 32).then_some(())?;
    Some((addr.parse().ok()?, prefix))
}

fn parse_mac(text: &str) -> Option<EthernetAddress> {
    let mut bytes = [0u8; 6];
    let mut parts = text.split([':', '-']);
    for byte in &mut bytes {
        let part = parts.next()?;
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(EthernetAddress(bytes))
}

/// Serves the echo over smoltcp on a TAP device.
pub fn run(args: &Args) -> ExitCode {
    let grace = args.grace();
    let plan = plan(args);
    // Opening a TAP device by a name that does not exist would create a new,
    // unconfigured one: a typo must fail instead.
    if let Err(e) = nix::net::if_::if_nametoindex(plan.tap.as_str()) {
        eprintln!(
            "echo_server: {}: cannot open: no such device in this network namespace ({e})",
            plan.tap
        );
        return ExitCode::FAILURE;
    }
    let mut config = TapConfig::new(&plan.tap, plan.cidr);
    config.mac = plan.mac;
    config.pcap = args.pcap.clone();
    let (iface, device, clock, idle) = match config.open() {
        Ok(parts) => parts,
        // The error names what failed: the TAP device or the pcap file.
        Err(e) => {
            eprintln!("echo_server: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = Arc::new(Stop::new());
    if let Err(e) = install_signals(Arc::clone(&stop), grace) {
        eprintln!("echo_server: cannot install signal handlers: {e}");
        return ExitCode::FAILURE;
    }
    // Storage first: the stack borrows it.
    let mut sockets: Vec<SocketStorage<'_>> = (0..MULTIPLEXED_SLOTS + 4)
        .map(|_| SocketStorage::EMPTY)
        .collect();
    let mut backlog = vec![SynSlot::EMPTY; BACKLOG];
    let mut tcp = Box::new(TcpStorage::<MULTIPLEXED_SLOTS, TCP_BUF, TCP_BUF>::new());
    let mut udp = Box::new(UdpStorage::<32, 65536>::new());
    let stack = RefCell::new(
        Stack::new(iface, device, &mut sockets, &mut backlog, clock, idle).with_stop(&stop),
    );
    let poll = Duration::from_millis(500);
    let served = match (args.transport, args.strategy) {
        // A datagram request never waits on a peer: `multiplexed` serves it
        // inline, as `sync`.
        (Transport::SmoltcpUdp, _) => {
            let buffers = (vec![0; MAX_PACKET], vec![0; MAX_PACKET]);
            let mut server =
                match udp_server(&stack, plan.port, udp.socket(), buffers, EchoDatagram) {
                    Ok(server) => server,
                    Err(e) => return bind_failed(&plan, e),
                };
            let port = server.source().socket().local_endpoint().port;
            announce(&plan, port).and_then(|()| {
                serve_until_stopped(&mut server, poll).map_err(io::Error::other)?;
                server.server_close();
                Ok(())
            })
        }
        (_, Strategy::Multiplexed) => {
            // At most `max` connections: the listener's pool holds that many.
            let max = args.max_connections(MULTIPLEXED_SLOTS);
            // Core's async `Echo`, the value every other strategy serves,
            // on pinned slots woken by the sockets' wakers. The stack's own
            // idle timeout and eviction (`TcpConfig`) bound idle peers.
            let strategy = pin!(
                Multiplexed::<_, _, _, MULTIPLEXED_SLOTS>::new(Echo::<4096>)
                    .with_idle_policy(IdlePolicy::unbounded())
            );
            let sockets = tcp.sockets().take(max);
            let mut server =
                match tcp_server_with(&stack, plan.port, sockets, strategy, DefaultHooks) {
                    Ok(server) => server,
                    Err(e) => return bind_failed(&plan, e),
                };
            // After the signal, the requests in flight get the grace period,
            // then what is still open is cut (RST), not closed as if its
            // reply were complete.
            announce(&plan, server.source().port()).and_then(|()| {
                serve_until_stopped(&mut server, poll).map_err(io::Error::other)?;
                server.server_close();
                Ok(())
            })
        }
        _ => {
            let sockets = tcp.sockets().take(SYNC_POOL);
            let mut server = match tcp_server(&stack, plan.port, sockets, Echo::<4096>) {
                Ok(server) => server,
                Err(e) => return bind_failed(&plan, e),
            };
            // The request in flight when the signal came finishes inside
            // serve_forever; the stop cuts it when the grace period is over.
            announce(&plan, server.source().port()).and_then(|()| {
                serve_until_stopped(&mut server, poll).map_err(io::Error::other)?;
                server.server_close();
                Ok(())
            })
        }
    };
    // Let the FINs and RSTs of closed connections leave before the TAP closes.
    stack.borrow_mut().poll();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo_server: {}: {e}", plan.shown);
            ExitCode::FAILURE
        }
    }
}

fn bind_failed(plan: &Plan, e: socketserver_smoltcp::Error) -> ExitCode {
    eprintln!("echo_server: {}: {e}", plan.shown);
    ExitCode::FAILURE
}

/// Says where the server listens: `port` is the one bound (the stack's
/// choice for `--addr IP:0`).
fn announce(plan: &Plan, port: u16) -> io::Result<()> {
    let mut shown = plan.shown;
    shown.set_port(port);
    let mut out = io::stdout().lock();
    writeln!(out, "listening on {shown}")?;
    out.flush()
}

/// On the first SIGINT or SIGTERM: a graceful stop (accepting stops at
/// once, the requests in flight get `grace`); on a second, cut them now.
fn install_signals(stop: Arc<Stop>, grace: Duration) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals.forever();
            if signals.next().is_some() {
                stop.shutdown_within(grace);
            }
            if signals.next().is_some() {
                stop.cut_in_flight();
            }
        })?;
    Ok(())
}
