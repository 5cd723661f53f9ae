//! The smoltcp backend of socketserver: the same request handlers on a
//! userspace TCP/IP stack, with no heap, from firmware to a TAP device.
//!
//! You bring smoltcp's pieces (an `Interface`, a `Device`, socket storage);
//! this crate turns them into core's transports:
//!
//! - [`Stack`]: your interface, device and storage plus a clock and an
//!   [`Idle`]; put it in a `RefCell` and pass `&stack`, which converts to a
//!   [`NetRef`], the `Copy` handle everything else holds. A stack borrowed
//!   by your code while a server uses it is an error
//!   ([`Error::StackBusy`]), never a panic.
//! - [`tcp_server`] and [`udp_server`]: core's `Server` for a port in one
//!   call, as std's `TCPServer::bind(address, handler)`; port 0 takes a
//!   free port of the dynamic range. [`tcp_server_with`] and
//!   [`udp_server_with`] take a strategy (`Multiplexed`) and hooks.
//! - [`StackTcpListener`]: a port served by a pool of sockets (smoltcp has no
//!   backlog, so the pool's size is the number of simultaneous connections);
//!   each socket is re-armed after its connection closes. Clients beyond the
//!   pool wait: their SYNs are held in a backlog of [`SynSlot`]s and replayed
//!   when a socket listens again, instead of being refused with RST.
//! - Hostile peers cannot take the pool: every pool socket comes back within
//!   a bounded time (half-open handshakes, unsendable RSTs, idle and
//!   FIN-WAIT-2 connections all time out), and at capacity a waiting client
//!   takes the place of the longest-idle connection ([`TcpConfig`]).
//! - [`TcpConnection`]: core's `Connection` (embedded-io `Read`, `Write`,
//!   `ReadReady`, `WriteReady`); blocking calls drive the stack while they
//!   wait, so the blocking `StreamRequestHandler` runs under core's `Sequential`.
//! - [`StackUdpSocket`]: core's `DatagramSocket`; sending never blocks.
//! - [`Waiter`]: core's `Wait`, for `serve_forever`; [`poll_and_serve`]: one
//!   non-blocking turn for a firmware main loop, telling when to call again.
//! - [`Stop`]: a graceful stop asked for from any thread, signal handler or
//!   interrupt ([`Stop::shutdown_within`], std's `shutdown_within`): with
//!   [`serve_until_stopped`] the requests in flight get the grace period,
//!   then are cut (RST).
//! - [`TcpConfig`]: ACK delay, Nagle, keep-alive, timeouts, with documented defaults.
//! - With `std`: `TapConfig` opens a TAP device (with optional pcap capture),
//!   `StdClock`, `FdIdle` (sleeps on the TAP descriptor).
//!
//! Serving core's `Echo` on port 7 with a pool of 4 sockets, on any device.
//! `sleep` is how the stack idles between frames: on a TAP device (`std`)
//! [`FdIdle`](crate#features), in firmware a `wfi` until the next timer
//! tick or frame. ([`Spin`] returns at once: under `serve_forever` it burns
//! a core, so keep it for loops that sleep by themselves.)
//!
//! ```no_run
//! use core::cell::RefCell;
//! use core::time::Duration;
//! use smoltcp::iface::{Interface, SocketStorage};
//! use smoltcp::phy::Device;
//! use socketserver_core::Echo;
//! use socketserver_core::time::Clock;
//! use socketserver_smoltcp::{Error, Stack, SynSlot, TcpStorage, tcp_server};
//!
//! fn serve<D: Device, Clk: Clock>(
//!     iface: Interface,
//!     device: D,
//!     clock: Clk,
//!     sleep: impl FnMut(Option<Duration>),
//! ) -> Result<(), Error> {
//!     // Storage: the socket set, the SYN backlog, the pool's buffers.
//!     let mut sockets = [SocketStorage::EMPTY; 8];
//!     let mut backlog = [SynSlot::EMPTY; 16];
//!     let mut pool = TcpStorage::<4, 2048, 2048>::new();
//!     let stack = RefCell::new(Stack::new(iface, device, &mut sockets, &mut backlog, clock, sleep));
//!     let mut server = tcp_server(&stack, 7, &mut pool, Echo::<1024>)?;
//!     server.serve_forever(Duration::from_millis(500))
//! }
//! ```
//!
//! To serve several clients at once, use core's `Multiplexed` (pinned,
//! `core::pin::pin!`) with an async handler: its requests are woken by the
//! sockets' wakers. In a firmware main loop call [`poll_and_serve`] with the servers'
//! `serve_ready` instead of `serve_forever`; it never blocks and returns how long
//! the loop may sleep.
//!
//! What this crate is *not*: a socket API for applications (use smoltcp
//! directly), or a driver: the `Device` is yours. It never allocates; every
//! buffer is storage you provide ([`TcpStorage`], [`UdpStorage`], socket and
//! backlog arrays), and a full socket set is an error, not smoltcp's panic.
//!
//! Limits: one stack manages at most [`MAX_POOL_SOCKETS`] pool sockets on at
//! most 8 ports (frames of any size pass: the MTU is the device's); a
//! blocking wait idles at most 20 ms at a time, which bounds how late a
//! shutdown requested from another thread is noticed.
//!
//! # Features
//!
//! - `std`: TAP device, pcap, `StdClock`, `FdIdle` (sleeps on the TAP
//!   descriptor), IPv4 fragmentation for datagrams up to 8 KiB; turns on
//!   `proto-ipv6`, `medium-ip` and `loss-recovery`.
//! - `proto-ipv6`: IPv6 besides IPv4 (off by default: it costs firmware
//!   flash and RAM).
//! - `loss-recovery` (on with `std`): resend lost segments within a round
//!   trip, read from the peer's SACK blocks, where smoltcp alone waits at
//!   least 1 s for each ([`TcpConfig::loss_recovery`] turns it off at run
//!   time). Off by default without `std`: it costs firmware about 5 KB of
//!   flash and 0.6 KB of RAM; turn it on for a lossy link (Wi-Fi).
//! - `medium-ip`: devices that carry bare IP packets (TUN), besides Ethernet.
//! - `log` or `defmt`: core's lifecycle trace and smoltcp's own.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

#[cfg(feature = "std")]
extern crate std;

mod config;
mod drive;
mod error;
mod gate;
mod handle;
mod idle;
mod net;
mod pool;
#[cfg(feature = "loss-recovery")]
mod recovery;
#[cfg(not(feature = "loss-recovery"))]
#[path = "recovery_off.rs"]
mod recovery;
mod recovery_counts;
mod server;
mod stack;
mod stop;
mod syn;
#[cfg(feature = "std")]
mod tap;
mod tcp;
mod udp;
mod wait;

pub use config::TcpConfig;
pub use error::Error;
pub use gate::{GateStats, HELD_SYN_LIFETIME, SynSlot};
pub use handle::NetRef;
pub use idle::{Idle, Spin};
pub use net::Net;
pub use pool::{
    FIN_WAIT_UNDER_PRESSURE, MAX_POOL_SOCKETS, PENDING_PRESSURE, PoolStats, RST_GRACE,
    SYN_RECEIVED_UNDER_PRESSURE,
};
pub use server::{
    TcpServer, UdpServer, serve_until_stopped, tcp_server, tcp_server_with, udp_server,
    udp_server_with,
};
pub use smoltcp;
pub use stack::Stack;
pub use stop::Stop;
#[cfg(feature = "std")]
pub use tap::{Capture, DEFAULT_MAC, FdIdle, StdClock, TapConfig, TapDevice, TapStack};
pub use tcp::{StackTcpListener, TcpConnection, TcpSockets, TcpStorage};
pub use udp::{STUCK_SEND_QUEUE, StackUdpSocket, UdpBytes, UdpMeta, UdpStorage};
pub use wait::{Waiter, poll_and_serve};
