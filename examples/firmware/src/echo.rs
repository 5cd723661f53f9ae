//! The services, built from the project's own pieces: core's async `Echo`
//! (RFC 862, TCP port 7) and line handler `Upper` (TCP port 8), each served
//! by `Multiplexed` on its own pool of four sockets, and `EchoDatagram`
//! under `Sync` for UDP port 7, through socketserver-smoltcp. No protocol
//! code lives here: only the types and the hooks.

use core::cell::Cell;
use core::error::Error;
use core::future::Future;
use core::pin::Pin;

use cortex_m_semihosting::hprintln;
use socketserver_core::{
    Multiplexed, DatagramServer, Echo, EchoDatagram, IdlePolicy, Served, ServerHooks,
    ShutdownFlag, StreamServer, Sync, Upper,
};
use socketserver_smoltcp::smoltcp::wire::IpEndpoint;
use socketserver_smoltcp::{NetRef, TcpConnection, TcpListener, UdpSocket, Waiter};

/// The echo's port (TCP and UDP), RFC 862.
pub const ECHO_PORT: u16 = 7;
/// The line handler's port.
pub const UPPER_PORT: u16 = 8;
/// TCP connections served at once per port: one pool socket and one slot
/// each. Clients beyond it wait in the backend's SYN backlog.
pub const POOL: usize = 4;
/// The echo's read size, on each slot's future.
pub const ECHO_CHUNK: usize = 512;
/// The longest line the line handler answers; a longer one is answered
/// with an error line and skipped.
pub const MAX_LINE: usize = 128;

type Conn<'s> = TcpConnection<'s, 'static>;

/// A TCP server whose strategy is `Multiplexed` pinned in `main`.
pub type TcpServer<'s, 'p, H, F> = StreamServer<
    TcpListener<'s, 'static>,
    Waiter<'s, 'static>,
    Hooks,
    Pin<&'p mut Multiplexed<Conn<'s>, H, F, POOL>>,
>;

pub type UdpEcho<'s> = DatagramServer<
    UdpSocket<'s, 'static>,
    Waiter<'s, 'static>,
    Hooks,
    Sync<EchoDatagram>,
    &'static mut [u8],
>;

/// The echo's slots, to pin in `main`.
pub fn echo_slots<'s>() -> Multiplexed<
    Conn<'s>,
    Echo<ECHO_CHUNK>,
    impl Future<Output = Option<Served<Conn<'s>>>>,
    POOL,
> {
    // The echo reads whole chunks: no read-ahead buffer needed.
    Multiplexed::with_rbufsize::<0>(Echo::<ECHO_CHUNK>).with_idle_policy(IdlePolicy::default())
}

/// The line handler's slots, to pin in `main`.
pub fn upper_slots<'s>() -> Multiplexed<
    Conn<'s>,
    Upper<MAX_LINE>,
    impl Future<Output = Option<Served<Conn<'s>>>>,
    POOL,
> {
    Multiplexed::with_rbufsize::<MAX_LINE>(Upper::<MAX_LINE>)
        .with_idle_policy(IdlePolicy::default())
}

/// A TCP server over a bound pool listener and pinned slots.
pub fn tcp_server<'s, 'p, H, F>(
    listener: TcpListener<'s, 'static>,
    slots: Pin<&'p mut Multiplexed<Conn<'s>, H, F, POOL>>,
    flag: &'s ShutdownFlag,
) -> TcpServer<'s, 'p, H, F>
where
    H: socketserver_core::AsyncStreamRequestHandler<Conn<'s>>,
    F: Future<Output = Option<Served<Conn<'s>>>>,
{
    let waiter = Waiter::new(listener.net(), flag);
    StreamServer::new(listener, waiter, slots, Hooks::default())
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
