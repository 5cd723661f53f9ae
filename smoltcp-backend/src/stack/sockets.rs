//! The socket and pool operations of a stack ([`Sockets`], the sealed half
//! of [`Net`](crate::Net)): what listeners, connections and UDP sockets ask
//! of the socket set and the pools' bookkeeping.

use core::ops::RangeInclusive;

use smoltcp::iface::SocketHandle;
use smoltcp::phy::Device;
use smoltcp::socket::{Socket, tcp, udp};
use smoltcp::wire::IpEndpoint;
use socketserver_core::ShutdownFlag;
use socketserver_core::time::{Clock, Instant};

use super::Stack;
use crate::error::Error;
use crate::idle::Idle;
use crate::net::Sockets;
use crate::pool::PoolId;
use crate::stop::Stop;

/// The dynamic (ephemeral) ports of RFC 6335, where a bind to port 0 takes
/// its port.
pub(crate) const DYNAMIC_PORTS: RangeInclusive<u16> = 49152..=65535;

impl<'a, D: Device, Clk: Clock, I: Idle> Sockets<'a> for Stack<'a, D, Clk, I> {
    fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'a> {
        self.sockets.get_mut::<tcp::Socket>(handle)
    }

    fn udp(&mut self, handle: SocketHandle) -> &mut udp::Socket<'a> {
        self.sockets.get_mut::<udp::Socket>(handle)
    }

    fn add_udp(&mut self, socket: udp::Socket<'a>) -> Result<SocketHandle, Error> {
        self.add_socket(socket)
    }

    fn remove_socket(&mut self, handle: SocketHandle) {
        self.sockets.remove(handle);
    }

    fn free_port(&mut self) -> Result<u16, Error> {
        let in_use = |port: u16| {
            self.sockets.iter().any(|(_, socket)| match socket {
                Socket::Tcp(s) => {
                    s.listen_endpoint().port == port
                        || s.local_endpoint().is_some_and(|e| e.port == port)
                }
                Socket::Udp(s) => s.endpoint().port == port,
                #[allow(unreachable_patterns)]
                _ => false,
            }) || self.pool.uses_port(port)
        };
        // From where the last search ended, so a port just closed is not
        // handed out again at once (its peers may still send to it).
        let first = *DYNAMIC_PORTS.start();
        let mut port = self.next_port.max(first);
        for _ in DYNAMIC_PORTS {
            if !in_use(port) {
                // Past the end (0), the next search starts at the range's start.
                self.next_port = port.wrapping_add(1);
                return Ok(port);
            }
            port = port.checked_add(1).unwrap_or(first);
        }
        Err(Error::AddrInUse)
    }

    fn shutdown_flag(&self) -> Option<&'a ShutdownFlag> {
        self.stop.map(Stop::flag)
    }

    fn stop_deadline(&mut self) -> Option<Instant> {
        self.note_stop(self.clock.now());
        self.cut_at
    }

    fn open_pool(&mut self) -> PoolId {
        let id = self.next_pool;
        self.next_pool = PoolId(id.0.wrapping_add(1));
        id
    }

    fn add_pool_socket(
        &mut self,
        mut socket: tcp::Socket<'a>,
        port: u16,
        pool: PoolId,
    ) -> Result<(), Error> {
        self.pool.check_add(port)?;
        socket.listen(port).map_err(|_| Error::InvalidState)?;
        self.config.apply(&mut socket);
        let handle = self.add_socket(socket)?;
        let now = self.clock.now();
        self.pool.add(handle, port, pool, now);
        Ok(())
    }

    fn has_pending(&mut self, port: u16) -> bool {
        self.pool.has_pending(port, &self.sockets)
    }

    fn claim(&mut self, port: u16) -> Option<(SocketHandle, IpEndpoint)> {
        let now = self.clock.now();
        self.pool.claim(port, &self.sockets, now)
    }

    fn release(&mut self, handle: SocketHandle) {
        let now = self.clock.now();
        self.pool
            .close_and_release(handle, &mut self.sockets, &self.device, now);
    }

    fn touch(&mut self, handle: SocketHandle) {
        let now = self.clock.now();
        self.pool.touch(handle, now);
    }

    fn close_pool(&mut self, pool: PoolId) {
        self.pool.close(pool, &mut self.sockets);
        self.refresh(self.clock.now());
    }
}
