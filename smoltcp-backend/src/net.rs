//! The stack as this crate's listeners, connections and waiters use it: the
//! public [`Net`] trait (polling, for a firmware main loop) and the sealed
//! [`Sockets`], the socket and pool operations only this crate calls.

use core::time::Duration;

use smoltcp::iface::SocketHandle;
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::IpEndpoint;
use socketserver_core::ShutdownFlag;
use socketserver_core::time::Instant;

use crate::config::TcpConfig;
use crate::error::Error;
use crate::pool::PoolId;

/// The stack as listeners, connections and waiters use it, behind a
/// [`NetRef`](crate::NetRef) so their types need not name the device, clock
/// or idle strategy. Implemented by [`Stack`](crate::Stack); you rarely call
/// it directly except [`Net::poll`] and [`Net::poll_delay`] in a firmware
/// main loop.
pub trait Net<'a> {
    /// The current time of the stack's clock.
    fn now(&self) -> Instant;

    /// Processes inbound frames (a bounded number) and sends what sockets
    /// queued. Never blocks. Returns whether a socket may have changed.
    fn poll(&mut self) -> bool;

    /// The receiving half of [`Net::poll`]: runs the timers and processes
    /// inbound frames (a bounded number), sending nothing a socket queued.
    /// Never blocks. Returns whether a socket may have changed.
    ///
    /// Used by blocking waits so that the reply a handler writes next leaves
    /// in one segment with the ACK of the request it answers, instead of
    /// after a separate pure ACK; follow it with [`Net::flush`] (or a poll)
    /// before anything that may take long.
    fn poll_ingress(&mut self) -> bool {
        self.poll()
    }

    /// Sends what sockets queued without reading the device: the half of
    /// [`Net::poll`] that pushes a reply or a FIN onto the wire. Never
    /// blocks. Returns whether a socket may have changed.
    fn flush(&mut self) -> bool {
        self.poll()
    }

    /// How long until [`Net::poll`] needs to run again at the latest
    /// (`None`: not until a frame arrives), smoltcp's `poll_delay`.
    fn poll_delay(&mut self) -> Option<Duration>;

    /// Idles until a frame may have arrived or `timeout` passes.
    fn idle(&mut self, timeout: Option<Duration>);

    /// The settings of pool sockets.
    fn tcp_config(&self) -> TcpConfig;

    /// Whether blocking operations must give up now: the grace period of
    /// the stack's [`Stop`](crate::Stop) is over
    /// ([`Stack::with_stop`](crate::Stack::with_stop)).
    fn is_cancelled(&self) -> bool;
}

/// The sealed half of the stack: what listeners, connections and sockets of
/// this crate do to the socket set and the pools. Public in a private
/// module, so no other crate can name, call or implement it.
pub trait Sockets<'a> {
    /// The TCP socket behind a handle this stack gave out.
    fn tcp(&mut self, handle: SocketHandle) -> &mut tcp::Socket<'a>;

    /// The UDP socket behind a handle this stack gave out.
    fn udp(&mut self, handle: SocketHandle) -> &mut udp::Socket<'a>;

    /// Adds a UDP socket, checking capacity.
    fn add_udp(&mut self, socket: udp::Socket<'a>) -> Result<SocketHandle, Error>;

    /// Removes a socket this stack gave out (a UDP socket being closed).
    fn remove_socket(&mut self, handle: SocketHandle);

    /// A port of the dynamic range (49152 to 65535) that no socket of the
    /// stack uses, for a bind to port 0.
    fn free_port(&mut self) -> Result<u16, Error>;

    /// The shutdown flag of the stack's [`Stop`](crate::Stop), if any
    /// ([`Stack::with_stop`](crate::Stack::with_stop)).
    fn shutdown_flag(&self) -> Option<&'a ShutdownFlag>;

    /// When the requests in flight must end after the stack's
    /// [`Stop`](crate::Stop) was asked for (`None`: not asked, or without a
    /// grace period); the grace counts from the first poll, or call, that
    /// saw it asked.
    fn stop_deadline(&mut self) -> Option<Instant>;

    /// A new name for the pool sockets of one listener.
    fn open_pool(&mut self) -> PoolId;

    /// Adds a pool socket of `pool` that listens on `port` and is re-armed
    /// after each connection.
    fn add_pool_socket(
        &mut self,
        socket: tcp::Socket<'a>,
        port: u16,
        pool: PoolId,
    ) -> Result<(), Error>;

    /// Closes `pool`: its unclaimed sockets are aborted (RST to a connection
    /// not yet accepted) and leave the socket set as soon as smoltcp has sent
    /// that RST; claimed ones leave it when their connection is over.
    fn close_pool(&mut self, pool: PoolId);

    /// Whether an established connection on `port` waits to be accepted.
    fn has_pending(&mut self, port: u16) -> bool;

    /// Hands out an established connection on `port`.
    fn claim(&mut self, port: u16) -> Option<(SocketHandle, IpEndpoint)>;

    /// Closes the connection on a pool socket (FIN; nothing more once it
    /// is aborted) and gives the socket back; it listens again once fully
    /// closed.
    fn release(&mut self, handle: SocketHandle);

    /// Notes that the connection on a claimed pool socket moved a byte, so
    /// it is not idle (see [`TcpConfig::idle_timeout`] and
    /// [`TcpConfig::evict_after`]).
    fn touch(&mut self, handle: SocketHandle);
}

/// The whole stack as a [`NetRef`](crate::NetRef) holds it: [`Net`] and
/// [`Sockets`], for every type that is both ([`Stack`](crate::Stack)).
pub trait Shared<'a>: Net<'a> + Sockets<'a> {}

impl<'a, T: Net<'a> + Sockets<'a> + ?Sized> Shared<'a> for T {}
