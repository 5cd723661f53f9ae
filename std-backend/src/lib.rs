//! The std backend of socketserver: Python's `TCPServer`, `UDPServer`,
//! `UnixStreamServer` and `UnixDatagramServer` on OS sockets, with the
//! `Threading` and `Forking` strategies (Python's mix-ins) next to core's
//! `Sequential` and `Multiplexed`.
//!
//! The lifecycle (hooks, `handle_request`, `serve_forever`, shutdown) is
//! core's; this crate supplies sockets over `socket2`, a poll(2) waiter whose
//! shutdown handle wakes the loop at once, and the strategies that need
//! threads or processes.
//!
//! ```no_run
//! use std::time::Duration;
//! use socketserver_core::{Echo, Sequential};
//! use socketserver_std::{TCPServer, ThreadingTCPServer, Threading};
//!
//! # fn main() -> std::io::Result<()> {
//! let mut server = ThreadingTCPServer::bind("127.0.0.1:0", Echo::<1024>)?;
//! println!("listening on {}", server.server_address());
//! let stop = server.shutdown_handle();
//! let serving = std::thread::spawn(move || server.serve_forever(Duration::from_millis(500)));
//! // ... later, from any thread:
//! stop.shutdown();
//! serving.join().expect("server thread")?;
//! # let _ = TCPServer::bind("127.0.0.1:0", Echo::<1024>)?;
//! # Ok(()) }
//! ```
//!
//! What this crate is *not*: an async runtime. Its waiter is an epoll
//! reactor for one server's sockets, and the multiplexed strategies run
//! core's executor on the serving thread: [`HeapMultiplexed`] grows its slots
//! on the heap (10,000 connections by default), core's pinned `Multiplexed`
//! keeps a fixed number.
//!
//! Where it differs from Python: the shutdown handle wakes the loop at once
//! (Python waits up to `poll_interval`); a stale `shutdown()` is dropped
//! rather than stopping the next loop; `bind_and_activate=False` is the
//! `unbound` constructor; the threading strategy bounds live threads
//! (back-pressure); Unix addresses of unbound peers print `''` for stream and
//! datagram alike.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

mod clock;
mod error;
mod group;
mod net;
mod options;
mod server;
mod strategy;
mod sys;
mod waiter;

use std::net::SocketAddr;

use socketserver_core::{DefaultHooks, Sequential};

pub use error::WorkerError;
pub use group::{GroupMember, ServerGroup};
pub use net::address::{Address, ToAddress, UnixAddr};
pub use net::connection::{Interrupter, SocketConnection, TcpConnection, UnixConnection};
pub use net::datagram::{SocketDatagram, UdpDatagramSocket, UnixDatagramSocket};
pub use net::listener::{SocketListener, TcpSocketListener, UnixSocketListener};
pub use options::{MAX_PACKET_SIZE, Options, REQUEST_QUEUE_SIZE};
pub use server::kind::{DatagramKind, SocketKind, StreamKind};
pub use server::socket_server::{CoreServer, SocketServer, UnboundServer};
pub use strategy::detach::{Detach, DetachedPacket, HandOff, ParentCopy, Run};
pub use strategy::forking::{FORKING_TIMEOUT, Forking, MAX_CHILDREN};
pub use strategy::heap_multiplexed::{CHUNK_SLOTS, DEFAULT_MAX_CONNECTIONS, HeapMultiplexed};
pub use strategy::threading::{DEFAULT_MAX_THREADS, Threading};
pub use strategy::{Attach, CatchPanic, next_thread_name};
pub use waiter::{LoopWaker, Pollable, ShutdownHandle, Waiter};

/// Re-exported for `Forking::signal_children`.
pub use nix::sys::signal::Signal;

/// A stream server over addresses `A` (`SocketAddr`: TCP; [`UnixAddr`]: Unix).
pub type SocketStreamServer<A, P, K = DefaultHooks> = SocketServer<StreamKind<A>, P, K>;
/// A datagram server over addresses `A` (`SocketAddr`: UDP; [`UnixAddr`]: Unix).
pub type SocketDatagramServer<A, P, K = DefaultHooks> = SocketServer<DatagramKind<A>, P, K>;

/// Python's `TCPServer`: one request at a time.
pub type TCPServer<H, K = DefaultHooks> = SocketStreamServer<SocketAddr, Sequential<H>, K>;
/// Python's `ThreadingTCPServer`.
pub type ThreadingTCPServer<H, K = DefaultHooks> = SocketStreamServer<SocketAddr, Threading<H>, K>;
/// Python's `ForkingTCPServer`.
pub type ForkingTCPServer<H, K = DefaultHooks> = SocketStreamServer<SocketAddr, Forking<H>, K>;

/// Python's `UDPServer`.
pub type UDPServer<H, K = DefaultHooks> = SocketDatagramServer<SocketAddr, Sequential<H>, K>;
/// Python's `ThreadingUDPServer`.
pub type ThreadingUDPServer<H, K = DefaultHooks> =
    SocketDatagramServer<SocketAddr, Threading<H>, K>;
/// Python's `ForkingUDPServer`.
pub type ForkingUDPServer<H, K = DefaultHooks> = SocketDatagramServer<SocketAddr, Forking<H>, K>;

/// Python's `UnixStreamServer`.
pub type UnixStreamServer<H, K = DefaultHooks> = SocketStreamServer<UnixAddr, Sequential<H>, K>;
/// Python's `ThreadingUnixStreamServer`.
pub type ThreadingUnixStreamServer<H, K = DefaultHooks> =
    SocketStreamServer<UnixAddr, Threading<H>, K>;
/// Python's `ForkingUnixStreamServer` (3.12+).
pub type ForkingUnixStreamServer<H, K = DefaultHooks> = SocketStreamServer<UnixAddr, Forking<H>, K>;

/// Python's `UnixDatagramServer`.
pub type UnixDatagramServer<H, K = DefaultHooks> = SocketDatagramServer<UnixAddr, Sequential<H>, K>;
/// Python's `ThreadingUnixDatagramServer`.
pub type ThreadingUnixDatagramServer<H, K = DefaultHooks> =
    SocketDatagramServer<UnixAddr, Threading<H>, K>;
/// Python's `ForkingUnixDatagramServer` (3.12+).
pub type ForkingUnixDatagramServer<H, K = DefaultHooks> =
    SocketDatagramServer<UnixAddr, Forking<H>, K>;
