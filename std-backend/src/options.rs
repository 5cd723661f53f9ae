//! Python's server class attributes, as one options value.

use std::time::Duration;

use socketserver_core::IdlePolicy;

/// Python's `max_packet_size`: longer datagrams are truncated to it.
pub const MAX_PACKET_SIZE: usize = 8192;

/// Python 3.15's `request_queue_size`: `SOMAXCONN` (the kernel clamps it to
/// `net.core.somaxconn`). Before 3.15 it was 5, which made eight simultaneous
/// connects wait a second for SYN retries.
pub const REQUEST_QUEUE_SIZE: i32 = libc::SOMAXCONN;

/// The knobs Python sets as class attributes, with Python's defaults.
///
/// Python's `bind_and_activate` is the choice of constructor here:
/// `with_options` binds and listens (`True`), `unbound` returns a server to
/// bind later with `server_bind` and `server_activate` (`False`).
///
/// ```
/// use socketserver_std::Options;
/// let options = Options::default().allow_reuse_address(true);
/// assert_eq!(options.max_packet_size, 8192);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// `SO_REUSEADDR` before bind. Default `false`.
    pub allow_reuse_address: bool,
    /// `SO_REUSEPORT` before bind, IP sockets only (Python 3.11+, gh-128916).
    /// Default `false`.
    pub allow_reuse_port: bool,
    /// The `listen` backlog. Default [`REQUEST_QUEUE_SIZE`].
    pub request_queue_size: i32,
    /// The `handle_request` timeout when the hooks give none; never used by
    /// `serve_forever`. Default `None` (forking strategies: 300 s).
    pub timeout: Option<Duration>,
    /// The datagram buffer size, Python's `max_packet_size`. Default 8192.
    pub max_packet_size: usize,
    /// Bounds on idle and slow peers of stream servers: an idle timeout, an
    /// optional minimum rate, eviction at capacity. Default
    /// [`IdlePolicy::default`] (60 s idle; evict a peer idle 1 s when a
    /// client waits at capacity; no minimum rate); [`IdlePolicy::unbounded`]
    /// is Python's behaviour. Blocking connections apply the idle timeout and
    /// the minimum rate themselves (a handler's own `timeout` replaces the
    /// idle timeout, not the minimum rate); the server hands the policy to
    /// its strategy (`Multiplexed`, `Threading`) for the rest.
    pub idle_policy: IdlePolicy,
    /// Unix servers: before binding, remove the socket file a server that is
    /// gone left behind, so a restart does not fail with "address in use".
    /// Only a socket file that refuses a connection is removed; a live
    /// server's path is never taken over (binding then fails with
    /// `AddrInUse`). Default `false`, as in Python.
    pub remove_stale_unix_socket: bool,
    /// Accepted connections are non-blocking: the server sets it for a
    /// strategy that asks ([`Attach::nonblocking_connections`](crate::Attach::nonblocking_connections)).
    pub(crate) nonblocking_connections: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            allow_reuse_address: false,
            allow_reuse_port: false,
            request_queue_size: REQUEST_QUEUE_SIZE,
            timeout: None,
            max_packet_size: MAX_PACKET_SIZE,
            idle_policy: IdlePolicy::default(),
            remove_stale_unix_socket: false,
            nonblocking_connections: false,
        }
    }
}

impl Options {
    /// Sets [`Options::allow_reuse_address`].
    pub fn allow_reuse_address(mut self, on: bool) -> Self {
        self.allow_reuse_address = on;
        self
    }

    /// Sets [`Options::allow_reuse_port`].
    pub fn allow_reuse_port(mut self, on: bool) -> Self {
        self.allow_reuse_port = on;
        self
    }

    /// Sets [`Options::request_queue_size`].
    pub fn request_queue_size(mut self, backlog: i32) -> Self {
        self.request_queue_size = backlog;
        self
    }

    /// Sets [`Options::timeout`].
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`Options::max_packet_size`].
    pub fn max_packet_size(mut self, size: usize) -> Self {
        self.max_packet_size = size;
        self
    }

    /// Sets [`Options::idle_policy`].
    pub fn idle_policy(mut self, policy: IdlePolicy) -> Self {
        self.idle_policy = policy;
        self
    }

    /// Sets [`Options::remove_stale_unix_socket`].
    pub fn remove_stale_unix_socket(mut self, on: bool) -> Self {
        self.remove_stale_unix_socket = on;
        self
    }
}
