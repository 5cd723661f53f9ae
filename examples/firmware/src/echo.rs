//! The echo service (RFC 862, TCP and UDP port 7), built from the project's
//! own pieces: core's `NonBlockingEcho` under `Multiplexed` for TCP and
//! `EchoDatagram` under `Sync` for UDP, served through socketserver-smoltcp.
//! No protocol code lives here: only the types and the hooks.

use core::cell::Cell;
use core::error::Error;
use core::time::Duration;

use cortex_m_semihosting::hprintln;
use socketserver_core::{
    DatagramServer, EchoDatagram, Multiplexed, NonBlockingEcho, ServerHooks, ShutdownFlag,
    StreamServer, Sync,
};
use socketserver_smoltcp::smoltcp::wire::IpEndpoint;
use socketserver_smoltcp::{NetRef, TcpConnection, TcpListener, UdpSocket, Waiter};

pub const PORT: u16 = 7;
/// TCP connections served at once: one pool socket and one `Multiplexed`
/// slot each. Clients beyond it wait in the backend's SYN backlog.
pub const POOL: usize = 4;
/// Bytes each TCP request's handler holds between reading and writing back
/// (`NonBlockingEcho`'s ring). It lives in the slot, so `POOL + 1` of them
/// (the slots plus the prototype) sit in main's frame.
pub const RING: usize = 512;
/// A slot whose connection shows no readiness this long is ended, so a
/// vanished client cannot hold a slot forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

pub type Strategy<'s> = Multiplexed<TcpConnection<'s, 'static>, NonBlockingEcho<RING>, POOL>;
pub type TcpEcho<'s> =
    StreamServer<TcpListener<'s, 'static>, Waiter<'s, 'static>, Hooks, Strategy<'s>>;
pub type UdpEcho<'s> = DatagramServer<
    UdpSocket<'s, 'static>,
    Waiter<'s, 'static>,
    Hooks,
    Sync<EchoDatagram>,
    &'static mut [u8],
>;

/// The TCP echo server over a bound pool listener.
pub fn tcp_server<'s>(listener: TcpListener<'s, 'static>, flag: &'s ShutdownFlag) -> TcpEcho<'s> {
    let waiter = Waiter::new(listener.net(), flag);
    let strategy =
        Multiplexed::new(NonBlockingEcho::default()).with_idle_timeout(Some(IDLE_TIMEOUT));
    StreamServer::new(listener, waiter, strategy, Hooks::default())
}

/// The UDP echo server over a bound socket; `packet` and `reply` are its
/// buffers (the packet buffer's length is Python's `max_packet_size`).
pub fn udp_server<'s>(
    socket: UdpSocket<'s, 'static>,
    net: NetRef<'s, 'static>,
    flag: &'s ShutdownFlag,
    packet: &'static mut [u8],
    reply: &'static mut [u8],
) -> UdpEcho<'s> {
    let waiter = Waiter::new(net, flag);
    DatagramServer::new(
        socket,
        waiter,
        Sync::new(EchoDatagram),
        Hooks::default(),
        packet,
        reply,
    )
}

/// Server hooks that count requests and report failures over semihosting;
/// every other step keeps Python's default.
#[derive(Default)]
pub struct Hooks {
    requests: Cell<u32>,
}

impl Hooks {
    /// Requests taken so far (connections for TCP, datagrams for UDP).
    pub fn requests(&self) -> u32 {
        self.requests.get()
    }
}

impl ServerHooks<IpEndpoint> for Hooks {
    fn process_request(&self, _client: &IpEndpoint) {
        self.requests.set(self.requests.get().wrapping_add(1));
    }

    fn handle_error(&self, client: &IpEndpoint, error: &dyn Error) {
        hprintln!("firmware: request from {} failed: {}", client, error);
    }
}
