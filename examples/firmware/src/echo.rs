//! The services, built from the project's own pieces: core's async `Echo`
//! (RFC 862, TCP port 7) and line handler `Upper` (TCP port 8), each served
//! by `Multiplexed` on its own pool of four sockets, and `EchoDatagram`
//! under `Sequential` for UDP port 7, through socketserver-smoltcp. No protocol
//! code lives here: only the types and the hooks.

use core::cell::Cell;
use core::future::Future;
use core::time::Duration;

use cortex_m_semihosting::hprintln;
use socketserver_core::{
    AsyncStreamRequest, AsyncStreamRequestHandler, Connection, Echo, Error, Multiplexed, Served,
    ServerHooks, Upper,
};
use socketserver_smoltcp::TcpConnection;
use socketserver_smoltcp::smoltcp::wire::IpEndpoint;

/// The echo's port (TCP and UDP), RFC 862.
pub const ECHO_PORT: u16 = 7;
/// The line handler's port.
pub const UPPER_PORT: u16 = 8;
/// TCP connections served at once per port: one pool socket and one slot
/// each. Clients beyond it wait in the backend's SYN backlog.
pub const POOL: usize = 4;
/// The echo's read size, on each slot's future: 256 makes the echo's future
/// as large as the line handler's (`MAX_LINE`), which sets the slot size.
pub const ECHO_CHUNK: usize = 256;
/// The longest line the line handler answers; a longer one is answered
/// with an error line and skipped.
pub const MAX_LINE: usize = 128;

type Conn<'s> = TcpConnection<'s, 'static>;

/// What a slot serves: core's `Echo` or its line handler `Upper`, chosen
/// per port. One handler type for both ports makes both `Multiplexed` the
/// same type, so the executor's code is in the image once, not once per
/// handler: 2.4 KiB less flash. Each slot's future is then the larger of the
/// two (the echo's chunk is sized to match the line handler's line).
#[derive(Debug, Clone, Copy)]
pub enum Service {
    /// RFC 862 echo, `ECHO_CHUNK` bytes per read.
    Echo,
    /// Each line answered in upper case, lines up to `MAX_LINE` bytes.
    Upper,
}

impl<C: Connection> AsyncStreamRequestHandler<C> for Service {
    async fn setup(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        match self {
            Service::Echo => Echo::<ECHO_CHUNK>.setup(req).await,
            Service::Upper => Upper::<MAX_LINE>.setup(req).await,
        }
    }

    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        match self {
            Service::Echo => Echo::<ECHO_CHUNK>.handle(req).await,
            Service::Upper => Upper::<MAX_LINE>.handle(req).await,
        }
    }

    async fn finish(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        match self {
            Service::Echo => Echo::<ECHO_CHUNK>.finish(req).await,
            Service::Upper => Upper::<MAX_LINE>.finish(req).await,
        }
    }

    fn timeout(&self) -> Option<Duration> {
        match self {
            Service::Echo => AsyncStreamRequestHandler::<C>::timeout(&Echo::<ECHO_CHUNK>),
            Service::Upper => AsyncStreamRequestHandler::<C>::timeout(&Upper::<MAX_LINE>),
        }
    }

    fn disable_nagle_algorithm(&self) -> bool {
        match self {
            Service::Echo => {
                AsyncStreamRequestHandler::<C>::disable_nagle_algorithm(&Echo::<ECHO_CHUNK>)
            }
            Service::Upper => {
                AsyncStreamRequestHandler::<C>::disable_nagle_algorithm(&Upper::<MAX_LINE>)
            }
        }
    }
}

/// The slots of one service, to pin in `main`. The read-ahead buffer is the
/// line handler's (`MAX_LINE`); the echo's reads are at least that long, so
/// they bypass it.
pub fn slots<'s>(
    service: Service,
) -> Multiplexed<Conn<'s>, Service, impl Future<Output = Option<Served<Conn<'s>>>>, POOL> {
    // With the default idle policy (60 s idle timeout, eviction at capacity).
    Multiplexed::with_rbufsize::<MAX_LINE>(service)
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

    /// Names the client, not the error. Printing `error` would keep, through
    /// its `dyn Error` vtable, the `Display` and `Debug` code and strings of
    /// every error type a request can fail with: 7.4 KiB of flash, of which
    /// 4.8 KiB is core's derived `Debug` (its string escaping pulls in
    /// Unicode tables).
    fn handle_error(&self, client: &IpEndpoint, _error: &dyn core::error::Error) {
        hprintln!("firmware: request from {} failed", client);
    }
}
