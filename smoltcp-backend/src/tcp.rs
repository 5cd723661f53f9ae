//! TCP: a listener backed by a pool of sockets, and the connections it hands out.

use core::time::Duration;

use embedded_io::{ErrorType, Read, ReadReady, Write, WriteReady};
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint, Ipv4Address};
use socketserver_core::time::Instant;
use socketserver_core::{Accepted, Connection, Interest, Listener};

use crate::drive::drive;
use crate::error::Error;
use crate::handle::NetRef;
use crate::pool::PoolId;

/// Buffer storage for a pool of `N` TCP sockets with `RX`/`TX`-byte buffers.
///
/// Put it where it lives long enough (a `static` cell in firmware, a local
/// in `main`); large pools belong outside a thread's stack.
///
/// ```
/// use socketserver_smoltcp::TcpStorage;
/// let mut storage = TcpStorage::<4, 2048, 2048>::new();
/// assert_eq!(storage.sockets().count(), 4);
/// ```
#[derive(Debug)]
pub struct TcpStorage<const N: usize, const RX: usize, const TX: usize> {
    rx: [[u8; RX]; N],
    tx: [[u8; TX]; N],
}

impl<const N: usize, const RX: usize, const TX: usize> Default for TcpStorage<N, RX, TX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const RX: usize, const TX: usize> TcpStorage<N, RX, TX> {
    /// Zeroed storage, usable in a `static`.
    pub const fn new() -> Self {
        Self {
            rx: [[0; RX]; N],
            tx: [[0; TX]; N],
        }
    }

    /// `N` sockets over this storage, for [`StackTcpListener::bind`]
    /// (which also takes `&mut storage` itself: all `N`).
    pub fn sockets(&mut self) -> impl Iterator<Item = tcp::Socket<'_>> {
        self.into_iter()
    }
}

impl<'a, const N: usize, const RX: usize, const TX: usize> IntoIterator
    for &'a mut TcpStorage<N, RX, TX>
{
    type Item = tcp::Socket<'a>;
    type IntoIter = TcpSockets<'a, RX, TX>;

    fn into_iter(self) -> Self::IntoIter {
        TcpSockets {
            buffers: self.rx.iter_mut().zip(self.tx.iter_mut()),
        }
    }
}

/// The sockets over a [`TcpStorage`], one per `RX`/`TX` buffer pair.
#[derive(Debug)]
pub struct TcpSockets<'a, const RX: usize, const TX: usize> {
    buffers:
        core::iter::Zip<core::slice::IterMut<'a, [u8; RX]>, core::slice::IterMut<'a, [u8; TX]>>,
}

impl<'a, const RX: usize, const TX: usize> Iterator for TcpSockets<'a, RX, TX> {
    type Item = tcp::Socket<'a>;

    fn next(&mut self) -> Option<tcp::Socket<'a>> {
        let (rx, tx) = self.buffers.next()?;
        Some(tcp::Socket::new(
            tcp::SocketBuffer::new(&mut rx[..]),
            tcp::SocketBuffer::new(&mut tx[..]),
        ))
    }
}

/// A listening TCP port served by a pool of smoltcp sockets: core's [`Listener`].
///
/// smoltcp has no backlog, so each pool socket listens on the port and holds
/// one connection; after the connection closes the stack re-arms it. The
/// pool's size is the number of sockets given to [`StackTcpListener::bind`].
///
/// Closing or dropping it closes the port: sockets that hold no accepted
/// connection are aborted (a connection not yet accepted gets RST) and leave
/// the socket set; accepted connections go on until they close, and their
/// sockets then leave the set instead of listening again. New clients are
/// refused with RST, and the port may be bound again.
#[derive(Debug)]
pub struct StackTcpListener<'s, 'a> {
    net: NetRef<'s, 'a>,
    port: u16,
    pool: PoolId,
}

impl<'s, 'a> StackTcpListener<'s, 'a> {
    /// Adds `sockets` (`&mut storage` of a [`TcpStorage`], or some of its
    /// [`TcpStorage::sockets`]) to the stack of `net` (a [`NetRef`], or
    /// `&stack`), all listening on `port`. Port 0 takes a free port of the
    /// dynamic range, 49152 to 65535 ([`StackTcpListener::local_endpoint`]
    /// says which), as a kernel does. All or nothing: when one socket cannot
    /// be added ([`Error::SocketSetFull`], [`Error::PoolFull`]), those added
    /// before it are removed again.
    pub fn bind(
        net: impl Into<NetRef<'s, 'a>>,
        port: u16,
        sockets: impl IntoIterator<Item = tcp::Socket<'a>>,
    ) -> Result<Self, Error> {
        let net = net.into();
        let (port, pool) = net.with(|stack| {
            let port = match port {
                0 => stack.free_port()?,
                port => port,
            };
            let pool = stack.open_pool();
            for socket in sockets {
                if let Err(e) = stack.add_pool_socket(socket, port, pool) {
                    stack.close_pool(pool);
                    return Err(e);
                }
            }
            Ok((port, pool))
        })??;
        Ok(Self { net, port, pool })
    }

    /// Closes the port (see the type's docs); dropping the listener does the same.
    pub fn close(self) {
        // Drop closes the pool.
        drop(self);
    }

    /// The port (the one chosen, after a bind to port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The local endpoint: the port on every address of the stack, as
    /// std's `TcpListener::local_addr` (the chosen port after a bind to
    /// port 0).
    pub fn local_endpoint(&self) -> IpListenEndpoint {
        IpListenEndpoint::from(self.port)
    }

    /// The stack this listener uses.
    pub fn net(&self) -> NetRef<'s, 'a> {
        self.net
    }

    /// Whether [`Listener::accept`] would return a connection now (`false`
    /// while the stack is borrowed elsewhere).
    pub fn is_ready(&self) -> bool {
        self.net
            .with(|net| net.has_pending(self.port))
            .unwrap_or(false)
    }
}

impl Drop for StackTcpListener<'_, '_> {
    fn drop(&mut self) {
        let pool = self.pool;
        // Borrowed across the drop only by a caller that holds the stack
        // while dropping the listener: then the sockets stay, rather than a
        // panic.
        let _ = self.net.with(|net| {
            net.close_pool(pool);
            // Sends the RSTs; the sockets leave the set once they are out.
            net.poll();
        });
    }
}

impl ErrorType for StackTcpListener<'_, '_> {
    type Error = Error;
}

impl<'s, 'a> Listener for StackTcpListener<'s, 'a> {
    type Conn = TcpConnection<'s, 'a>;

    fn accept(&mut self) -> Result<Option<Accepted<Self::Conn>>, Error> {
        let claimed = self.net.with(|net| net.claim(self.port))?;
        Ok(claimed.map(|(handle, peer)| {
            let conn = TcpConnection {
                net: self.net,
                handle,
                timeout: None,
                failed: false,
                released: false,
                fin_wanted: false,
            };
            Accepted::new(conn, peer)
        }))
    }

    /// The port on every address of the interface: `0.0.0.0:port`, as
    /// Python reports a server bound to `('', port)`.
    fn local_addr(&self) -> IpEndpoint {
        server_endpoint(self.port.into())
    }
}

/// What a server bound to `local` reports as its address: an unbound
/// address (every address of the interface) as `0.0.0.0`.
pub(crate) fn server_endpoint(local: IpListenEndpoint) -> IpEndpoint {
    let addr = local
        .addr
        .unwrap_or(IpAddress::Ipv4(Ipv4Address::UNSPECIFIED));
    IpEndpoint::new(addr, local.port)
}

/// One accepted connection on a pool socket: core's [`Connection`].
///
/// Reads and writes block by driving the stack (polling it and idling until
/// smoltcp's `poll_delay`) until they can proceed or the deadline passes; the
/// deadline is the shorter of [`Connection::set_timeout`] and the stack's
/// [`TcpConfig::idle_timeout`](crate::TcpConfig::idle_timeout).
///
/// Dropping or closing it closes gracefully (FIN after every byte written),
/// as Python's `shutdown_request` does. A connection the server cuts is
/// aborted (RST) instead, so the peer sees an error, never a clean but
/// short end: after the peer reset it, after a timeout (the stack's
/// `idle_timeout`; and the handler's own [`Connection::set_timeout`], whose
/// `TimedOut` error makes core's lifecycle abort the connection), an
/// eviction ([`TcpConfig::evict_after`](crate::TcpConfig::evict_after)),
/// and once the grace period of the stack's [`Stop`](crate::Stop) is over
/// ([`Stack::with_stop`](crate::Stack::with_stop)). Either way the socket
/// goes back to its pool.
#[derive(Debug)]
pub struct TcpConnection<'s, 'a> {
    net: NetRef<'s, 'a>,
    handle: SocketHandle,
    timeout: Option<Duration>,
    failed: bool,
    released: bool,
    /// `shutdown_write` left the FIN to the next call or to the release
    /// (see [`Connection::shutdown_write`]).
    fin_wanted: bool,
}

impl TcpConnection<'_, '_> {
    /// Whether the connection is ready for `interest`, without polling the stack.
    pub fn is_ready(&self, interest: Interest) -> Result<bool, Error> {
        self.with_socket(|socket| {
            (interest.is_read() && read_ready(socket))
                || (interest.is_write() && write_ready(socket))
        })
    }

    /// The peer's address, if still connected.
    pub fn peer_addr(&self) -> Result<Option<IpEndpoint>, Error> {
        self.with_socket(|socket| socket.remote_endpoint())
    }

    /// The smoltcp state of the socket.
    pub fn state(&self) -> Result<tcp::State, Error> {
        self.with_socket(|socket| socket.state())
    }

    /// Runs `f` on the socket, with the stack borrowed for the call.
    fn with_socket<R>(&self, f: impl FnOnce(&mut tcp::Socket<'_>) -> R) -> Result<R, Error> {
        self.net.with(|net| f(net.tcp(self.handle)))
    }

    /// Aborts the connection with RST and gives the socket back.
    pub fn abort(mut self) {
        self.failed = true;
    }

    /// When a blocking call gives up, and whether that is the stack's idle
    /// timeout (a cut here: RST) rather than the handler's own (an error
    /// that core's lifecycle turns into a reset).
    fn deadline(&self) -> Result<Option<(Instant, bool)>, Error> {
        let (idle, now) = self
            .net
            .read(|net| (net.tcp_config().idle_timeout, net.now()))?;
        let (limit, forced) = match (self.timeout, idle) {
            (Some(own), Some(idle)) if idle < own => (idle, true),
            (Some(own), _) => (own, false),
            (None, Some(idle)) => (idle, true),
            (None, None) => return Ok(None),
        };
        Ok(Some((now.saturating_add(limit), forced)))
    }

    /// Sends the FIN `shutdown_write` left for later (idempotent: smoltcp
    /// ignores `close` once closing). With the stack borrowed elsewhere it
    /// waits for the next call, or the release.
    fn send_wanted_fin(&self) {
        if self.fin_wanted {
            let _ = self.with_socket(|socket| socket.close());
        }
    }

    fn fail(&mut self, e: Error) -> Error {
        self.failed = true;
        e
    }

    /// The blocking half of `read` and `write`: tries `attempt` on the
    /// socket, and while it has no outcome drives the stack until the socket
    /// may have changed or the deadline (taken at the first miss) passes.
    fn block_on<T>(
        &mut self,
        interest: Interest,
        mut attempt: impl FnMut(&mut tcp::Socket<'_>) -> Option<Result<T, Error>>,
    ) -> Result<T, Error> {
        self.send_wanted_fin();
        let mut deadline = None;
        loop {
            // The stack borrowed elsewhere fails the call, not the
            // connection: the handler decides (core's lifecycle resets it).
            let outcome = self.net.with(|net| {
                let outcome = attempt(net.tcp(self.handle));
                if let Some(Ok(_)) = outcome {
                    net.touch(self.handle);
                }
                outcome
            })?;
            match outcome {
                Some(Ok(value)) => return Ok(value),
                Some(Err(e)) => return Err(self.fail(e)),
                None => {}
            }
            let until = match deadline {
                Some(until) => until,
                None => *deadline.insert(self.deadline()?),
            };
            self.wait(until, interest)?;
        }
    }

    /// Waits (driving the stack) unless `deadline` has passed or the stack
    /// is cancelled. A cancel or the stack's idle timeout marks the
    /// connection failed (RST) here; the handler's own timeout fails the call
    /// with `TimedOut`, and core's lifecycle then aborts it (RST) too.
    fn wait(&mut self, deadline: Option<(Instant, bool)>, interest: Interest) -> Result<(), Error> {
        let (cancelled, expired) = self.net.read(|net| {
            (
                net.is_cancelled(),
                deadline.is_some_and(|(d, _)| net.now() >= d),
            )
        })?;
        if cancelled {
            return Err(self.fail(Error::TimedOut));
        }
        if expired {
            let forced = deadline.is_some_and(|(_, forced)| forced);
            return Err(if forced {
                self.fail(Error::TimedOut)
            } else {
                Error::TimedOut
            });
        }
        drive(self.net, deadline.map(|(d, _)| d), || {
            self.is_ready(interest).unwrap_or(true)
        })
    }
}

fn read_ready(socket: &tcp::Socket<'_>) -> bool {
    socket.can_recv() || !socket.may_recv()
}

/// `!may_send` makes a dead connection "ready" so the write reports the error.
fn write_ready(socket: &tcp::Socket<'_>) -> bool {
    socket.can_send() || !socket.may_send()
}

fn closed_error(socket: &tcp::Socket<'_>) -> Error {
    match socket.state() {
        tcp::State::Closed | tcp::State::TimeWait => Error::ConnectionReset,
        _ => Error::NotConnected,
    }
}

impl ErrorType for TcpConnection<'_, '_> {
    type Error = Error;
}

impl Read for TcpConnection<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.block_on(Interest::Read, |socket| match socket.recv_slice(buf) {
            Ok(0) => None,
            Ok(n) => Some(Ok(n)),
            Err(tcp::RecvError::Finished) => Some(Ok(0)),
            Err(tcp::RecvError::InvalidState) => Some(Err(Error::ConnectionReset)),
        })
    }
}

impl ReadReady for TcpConnection<'_, '_> {
    fn read_ready(&mut self) -> Result<bool, Error> {
        self.is_ready(Interest::Read)
    }
}

impl Write for TcpConnection<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.block_on(Interest::Write, |socket| match socket.send_slice(buf) {
            Ok(0) => None,
            Ok(n) => Some(Ok(n)),
            Err(tcp::SendError::InvalidState) => Some(Err(closed_error(socket))),
        })
    }

    /// Pushes queued bytes onto the wire without waiting for their ACK, as
    /// flushing a kernel socket does. With nothing queued it sends nothing:
    /// a handler's final flush would otherwise put the ACK of the peer's FIN
    /// on the wire alone, just before the FIN that closing sends with it.
    fn flush(&mut self) -> Result<(), Error> {
        self.send_wanted_fin();
        self.net.with(|net| {
            if net.tcp(self.handle).send_queue() > 0 {
                net.flush();
            }
        })
    }
}

impl WriteReady for TcpConnection<'_, '_> {
    fn write_ready(&mut self) -> Result<bool, Error> {
        self.is_ready(Interest::Write)
    }
}

impl Connection for TcpConnection<'_, '_> {
    type Addr = IpEndpoint;

    /// smoltcp's `close` is a half-close: FIN, and receiving goes on. With
    /// bytes still unacknowledged the FIN leaves at the next call on this
    /// connection, or when it is closed, where the stack may hold it until
    /// those bytes are acknowledged
    /// ([`TcpConfig::loss_recovery`](crate::TcpConfig::loss_recovery)).
    fn shutdown_write(&mut self) -> Result<(), Error> {
        let held = self.with_socket(|socket| {
            let held = cfg!(feature = "loss-recovery") && socket.send_queue() > 0;
            if !held {
                socket.close();
            }
            held
        })?;
        self.fin_wanted |= held;
        Ok(())
    }

    /// RST instead of FIN: see [`TcpConnection::abort`].
    fn abort(self) {
        TcpConnection::abort(self);
    }

    /// Registers `waker` with the socket (smoltcp's socket wakers), so that
    /// the stack's poll wakes it when data, room or a state change arrives;
    /// at once if the socket is already ready. A waker left behind when the
    /// socket returns to the pool is harmless: core's wakers are slot ids,
    /// so a stale one costs at most one spurious poll.
    fn register_waker(&mut self, interest: Interest, waker: &core::task::Waker) {
        self.send_wanted_fin();
        let ready = self.with_socket(|socket| {
            if interest.is_read() {
                socket.register_recv_waker(waker);
            }
            if interest.is_write() {
                socket.register_send_waker(waker);
            }
            (interest.is_read() && read_ready(socket)) || (interest.is_write() && socket.can_send())
        });
        // Borrowed elsewhere (`Err`): have the request polled again.
        if ready.unwrap_or(true) {
            waker.wake_by_ref();
        }
    }

    fn set_timeout(&mut self, timeout: Option<Duration>) -> Result<(), Error> {
        self.timeout = timeout;
        Ok(())
    }

    fn set_nodelay(&mut self, nodelay: bool) -> Result<(), Error> {
        self.with_socket(|socket| socket.set_nagle_enabled(!nodelay))
    }
}

impl Drop for TcpConnection<'_, '_> {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        // A connection may be dropped while the stack is borrowed only if
        // the user holds a borrow across it; then the socket stays claimed
        // rather than panicking.
        let (handle, failed) = (self.handle, self.failed);
        let _ = self.net.with(|net| {
            // After the stop's grace, whatever is still open is being cut.
            if failed || net.is_cancelled() {
                net.tcp(handle).abort();
            }
            // Closes (FIN) what is still open.
            net.release(handle);
            // The FIN or RST goes out now; frames that came in wait for the
            // server's next poll, which its next wait makes at once.
            net.flush();
        });
    }
}
