//! An accepted stream connection: TCP or Unix.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use embedded_io::{ErrorType, Read, ReadReady, Write, WriteReady};
use nix::sys::socket::{MsgFlags, recv};
use socket2::Socket;
use socketserver_core::time::{Duration, Instant};
use socketserver_core::{Activity, Connection, IdlePolicy, Interest};

use crate::clock;
use crate::net::address::Address;
use crate::net::live::{LiveConnections, Registered};
use crate::net::{describe, retry, timed_out};
use crate::sys::{outq, poll, reset};

/// One accepted stream connection, Python's `request` for `TCPServer` and
/// `UnixStreamServer`: [`TcpConnection`] or [`UnixConnection`].
///
/// In blocking mode (the default for threading, forking and sync servers)
/// reads and writes block in the kernel, bounded by `set_timeout` through
/// `SO_RCVTIMEO` / `SO_SNDTIMEO`. Those are set only when a call would
/// block (it is first tried with `MSG_DONTWAIT`), and never when the
/// accepted socket inherited them from the listener (TCP on Linux): a
/// request that never waits costs no `setsockopt`. In non-blocking mode (multiplexed servers)
/// a read or write that readiness allowed never blocks, and one made without
/// readiness waits in poll(2), so the `embedded_io` contract (block until at
/// least one byte) holds in both modes and `WouldBlock` never reaches a handler.
pub struct SocketConnection<A> {
    shared: Arc<Shared>,
    nonblocking: bool,
    timeout: Option<Duration>,
    /// What `SO_RCVTIMEO` and `SO_SNDTIMEO` hold now (`None`: no timeout).
    kernel_timeouts: KernelTimeouts,
    policy: IdlePolicy,
    /// What the peer moved, on a clock that runs only while this connection
    /// waits for the peer (see `io`).
    activity: Activity,
    waited: Instant,
    /// A window fell below the minimum rate after a call in this direction
    /// (`true`: reading): the next call in the same direction fails.
    too_slow: Option<bool>,
    /// Listed among the server's live connections until dropped.
    live: Registered,
    family: PhantomData<fn() -> A>,
}

/// What the connection shares with its [`Interrupter`]s.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) socket: Socket,
    /// The server cut this connection: later errors say so.
    cut: AtomicBool,
    /// When the current wait for the peer began (process clock, µs); 0 when
    /// not waiting. A client waiting at capacity evicts the longest waiter.
    waiting_since: AtomicU64,
    /// The current wait is a send: the peer is slow to take bytes, which
    /// only the send queue's length shows.
    waiting_to_send: AtomicBool,
    /// The send queue's length at the last look, plus one (0: not looked).
    send_queue_seen: AtomicU64,
    /// When the send queue's length last changed (process clock, µs).
    send_queue_moved_at: AtomicU64,
}

/// An accepted TCP connection (IPv4 or IPv6).
pub type TcpConnection = SocketConnection<std::net::SocketAddr>;

/// An accepted Unix stream connection.
pub type UnixConnection = SocketConnection<crate::net::address::UnixAddr>;

impl<A: Address> SocketConnection<A> {
    /// Wraps an accepted socket; `nonblocking` says which mode it is in. A
    /// blocking connection applies `policy` itself (its idle timeout as the
    /// read and write timeout); a non-blocking one leaves it to the strategy.
    /// `inherited`: the idle timeout already holds in the socket's
    /// `SO_RCVTIMEO` and `SO_SNDTIMEO` (copied from the listener by accept).
    /// It is listed in `live` until dropped.
    pub(crate) fn new(
        socket: Socket,
        nonblocking: bool,
        policy: IdlePolicy,
        inherited: bool,
        live: &LiveConnections,
    ) -> io::Result<Self> {
        let policy = if nonblocking {
            IdlePolicy::unbounded()
        } else {
            policy
        };
        let shared = Arc::new(Shared {
            socket,
            cut: AtomicBool::new(false),
            waiting_since: AtomicU64::new(0),
            waiting_to_send: AtomicBool::new(false),
            send_queue_seen: AtomicU64::new(0),
            send_queue_moved_at: AtomicU64::new(0),
        });
        let registered = live.register(Interrupter {
            shared: Arc::downgrade(&shared),
        });
        let timeout = policy.idle_timeout_value();
        let kernel = if inherited {
            kernel_value(timeout)
        } else {
            None
        };
        Ok(Self {
            shared,
            nonblocking,
            timeout,
            kernel_timeouts: KernelTimeouts {
                read: kernel,
                write: kernel,
            },
            policy,
            activity: Activity::new(Instant::from_micros(0)),
            waited: Instant::from_micros(0),
            too_slow: None,
            live: registered,
            family: PhantomData,
        })
    }

    /// The socket, for options this type does not wrap.
    pub fn socket(&self) -> &Socket {
        &self.shared.socket
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<A> {
        Ok(A::from_sockaddr(&self.shared.socket.peer_addr()?))
    }

    /// Whether reads and writes wait in poll(2) rather than in the kernel.
    pub fn is_nonblocking(&self) -> bool {
        self.nonblocking
    }

    /// A handle that can end this connection from another thread (a
    /// graceful shutdown's last resort, an eviction): see [`Interrupter`].
    pub fn interrupter(&self) -> Interrupter {
        Interrupter {
            shared: Arc::downgrade(&self.shared),
        }
    }

    /// Runs one read or write. Blocking mode also applies the idle policy on
    /// a clock that advances only while the call waits for the peer: time
    /// the handler spends on its own work is not the peer's slowness. A
    /// window below the minimum rate fails the *next* call in the same
    /// direction: the bytes this one moved still reach the handler, and it
    /// may still answer what it read.
    fn io<T>(
        &mut self,
        readable: bool,
        moved: impl Fn(&T) -> usize,
        mut op: impl FnMut(&Socket, MsgFlags) -> io::Result<T>,
    ) -> io::Result<T> {
        if self.nonblocking {
            return self.io_nonblocking(readable, op);
        }
        if self.too_slow == Some(readable) {
            return Err(too_slow());
        }
        let started = clock::now();
        self.shared
            .waiting_to_send
            .store(!readable, Ordering::Relaxed);
        self.shared
            .waiting_since
            .store(started.as_micros().max(1), Ordering::Relaxed);
        let result = self.blocking(readable, &mut op);
        self.shared.waiting_since.store(0, Ordering::Relaxed);
        let result = match result {
            // Only SO_RCVTIMEO/SO_SNDTIMEO expiring gets here.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(timed_out()),
            other => other,
        };
        let result = self.after_cut(result)?;
        let waited = clock::now().saturating_duration_since(started);
        self.waited = self.waited.saturating_add(waited);
        self.activity.record(self.waited, moved(&result));
        if self.activity.check(self.waited, &self.policy).is_err() {
            self.too_slow = Some(readable);
        }
        Ok(result)
    }

    /// One blocking call bounded by the timeout. Until the kernel holds
    /// the timeout for this direction, the call is first made without
    /// waiting; only one that would block sets it (once) and waits.
    fn blocking<T>(
        &mut self,
        readable: bool,
        op: &mut impl FnMut(&Socket, MsgFlags) -> io::Result<T>,
    ) -> io::Result<T> {
        let wanted = kernel_value(self.timeout);
        let held = if readable {
            &mut self.kernel_timeouts.read
        } else {
            &mut self.kernel_timeouts.write
        };
        let socket = &self.shared.socket;
        if *held != wanted {
            match retry(|| op(socket, MsgFlags::MSG_DONTWAIT)) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                other => return other,
            }
            if readable {
                socket.set_read_timeout(wanted)?;
            } else {
                socket.set_write_timeout(wanted)?;
            }
            *held = wanted;
        }
        retry(|| op(socket, MsgFlags::empty()))
    }

    fn io_nonblocking<T>(
        &self,
        readable: bool,
        mut op: impl FnMut(&Socket, MsgFlags) -> io::Result<T>,
    ) -> io::Result<T> {
        loop {
            match retry(|| op(&self.shared.socket, MsgFlags::empty())) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let events = if readable {
                        poll::read_flags()
                    } else {
                        poll::write_flags()
                    };
                    if !poll::wait_one(self.shared.socket.as_fd(), events, self.timeout)? {
                        return Err(timed_out());
                    }
                }
                other => return self.after_cut(other),
            }
        }
    }

    /// An error on a connection the server cut says so.
    fn after_cut<T>(&self, result: io::Result<T>) -> io::Result<T> {
        match result {
            Err(_) if self.shared.cut.load(Ordering::Acquire) => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "request cut by the server",
            )),
            other => other,
        }
    }
}

/// The values of `SO_RCVTIMEO` and `SO_SNDTIMEO` on a blocking connection.
#[derive(Debug, Clone, Copy)]
struct KernelTimeouts {
    read: Option<Duration>,
    write: Option<Duration>,
}

/// The kernel timeout that enforces `timeout`: a zero `SO_RCVTIMEO` means
/// "no timeout" to the kernel, so zero becomes the smallest real one.
pub(crate) fn kernel_value(timeout: Option<Duration>) -> Option<Duration> {
    timeout.map(|t| t.max(Duration::from_micros(1)))
}

/// Ends a connection from another thread: resets it, so the handler blocked
/// on it wakes with an error and the peer reads `ECONNRESET`, never a clean
/// end of stream. It holds no reference that keeps the connection open.
#[derive(Debug, Clone)]
pub struct Interrupter {
    shared: Weak<Shared>,
}

impl Interrupter {
    /// Resets the connection if it is still open (a Unix stream socket, which
    /// has no reset, is shut down both ways: its peer reads EOF).
    pub fn interrupt(&self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.cut.store(true, Ordering::Release);
            reset(&shared.socket);
        }
    }

    /// Whether the connection was already cut (or is closed).
    pub fn is_cut(&self) -> bool {
        self.shared
            .upgrade()
            .is_none_or(|shared| shared.cut.load(Ordering::Acquire))
    }

    /// How long the connection has been waiting for its peer without the
    /// peer moving a byte; zero when it is not waiting (or is closed). A
    /// read waits only while nothing arrives; a send can wait while the peer
    /// reads (the kernel wakes a blocked sender only when a third of a large
    /// send buffer is free), so for a send the time counts from the last
    /// change of the send queue's length, which this call looks at.
    pub fn waiting_for(&self) -> std::time::Duration {
        let Some(shared) = self.shared.upgrade() else {
            return std::time::Duration::ZERO;
        };
        let since = match shared.waiting_since.load(Ordering::Relaxed) {
            0 => return std::time::Duration::ZERO,
            since => Instant::from_micros(since),
        };
        let now = clock::now();
        if !shared.waiting_to_send.load(Ordering::Relaxed) {
            return now.saturating_duration_since(since);
        }
        let Ok(queued) = outq::queued_bytes(shared.socket.as_fd()) else {
            return std::time::Duration::ZERO;
        };
        let seen = (queued as u64).saturating_add(1);
        if shared.send_queue_seen.swap(seen, Ordering::Relaxed) != seen {
            shared
                .send_queue_moved_at
                .store(now.as_micros(), Ordering::Relaxed);
            return std::time::Duration::ZERO;
        }
        let moved = Instant::from_micros(shared.send_queue_moved_at.load(Ordering::Relaxed));
        now.saturating_duration_since(since.max(moved))
    }
}

/// Resets `socket` for every holder: SO_LINGER 0 (a later close sends RST,
/// not FIN) and, on TCP, a disconnect that sends the RST now.
fn reset(socket: &Socket) {
    let _ = socket.set_linger(Some(std::time::Duration::ZERO));
    if reset::disconnect(socket.as_fd()).is_err() {
        // Not TCP (a Unix stream socket): wake the handler at least.
        let _ = socket.shutdown(Shutdown::Both);
    }
}

/// The error of a peer below the minimum rate: kind `TimedOut`, like the
/// idle timeout, since both mean the peer kept the request waiting.
fn too_slow() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "peer moved less than the minimum rate",
    )
}

impl<A> fmt::Debug for SocketConnection<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        describe::describe(Some(&self.shared.socket), f)
    }
}

impl<A> ErrorType for SocketConnection<A> {
    type Error = io::Error;
}

impl<A: Address> Read for SocketConnection<A> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.io(
            true,
            |n| *n,
            |s, flags| Ok(recv(s.as_raw_fd(), buf, flags)?),
        )
    }
}

/// The most one blocking send takes: a send returns after each chunk, so
/// the connection's "waiting for the peer since" clock restarts at least
/// that often while bytes flow, and a slow but reading peer is not taken
/// for an idle one (one that takes less than this in a second can be).
const SEND_CHUNK: usize = 64 * 1024;

impl<A: Address> Write for SocketConnection<A> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let buf = &buf[..buf.len().min(SEND_CHUNK)];
        // MSG_NOSIGNAL: a vanished peer is an EPIPE error, never a SIGPIPE.
        self.io(
            false,
            |n| *n,
            |s, flags| s.send_with_flags(buf, (flags | MsgFlags::MSG_NOSIGNAL).bits()),
        )
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<A: Address> ReadReady for SocketConnection<A> {
    fn read_ready(&mut self) -> io::Result<bool> {
        poll::is_ready(self.shared.socket.as_fd(), poll::read_flags())
    }
}

impl<A: Address> WriteReady for SocketConnection<A> {
    fn write_ready(&mut self) -> io::Result<bool> {
        poll::is_ready(self.shared.socket.as_fd(), poll::write_flags())
    }
}

impl<A: Address> Connection for SocketConnection<A> {
    type Addr = A;

    /// One `recv` with `MSG_DONTWAIT`, whatever the socket's mode.
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let fd = self.shared.socket.as_raw_fd();
        let received = retry(|| {
            nix::sys::socket::recv(fd, buf, nix::sys::socket::MsgFlags::MSG_DONTWAIT)
                .map_err(io::Error::from)
        });
        match self.after_cut(received) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One `send` with `MSG_DONTWAIT` (and `MSG_NOSIGNAL`).
    fn try_write(&mut self, buf: &[u8]) -> io::Result<Option<usize>> {
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let sent = retry(|| self.shared.socket.send_with_flags(buf, flags));
        match self.after_cut(sent) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The server's waiter polls the connection and wakes `waker` when it
    /// may be ready.
    fn register_waker(&mut self, interest: Interest, waker: &std::task::Waker) {
        self.live
            .register_waker(self.shared.socket.as_fd(), interest, waker);
    }

    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shared.socket.shutdown(Shutdown::Write)
    }

    fn abort(self) {
        self.shared.cut.store(true, Ordering::Release);
        reset(&self.shared.socket);
    }

    /// Takes effect on the next read or write (see the type's docs).
    fn set_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.timeout = timeout;
        Ok(())
    }

    fn set_nodelay(&mut self, nodelay: bool) -> io::Result<()> {
        if A::IS_INET {
            self.shared.socket.set_tcp_nodelay(nodelay)
        } else {
            Ok(())
        }
    }
}

impl<A> Drop for SocketConnection<A> {
    fn drop(&mut self) {
        // Before the socket closes (with the last `Arc<Shared>`): an epoll
        // registration is removed while its descriptor is still open.
        self.live.forget(self.shared.socket.as_fd());
    }
}

impl<A> AsFd for SocketConnection<A> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.shared.socket.as_fd()
    }
}

impl<A> AsRawFd for SocketConnection<A> {
    fn as_raw_fd(&self) -> RawFd {
        self.shared.socket.as_raw_fd()
    }
}
