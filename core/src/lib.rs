//! The `no_std`, heap-free core of socketserver: Python's `socketserver`
//! lifecycles, written once for every backend.
//!
//! A *request handler* owns the protocol ([`AsyncStreamRequestHandler`],
//! written as plain sequential async code, and Python's blocking
//! [`StreamRequestHandler`] and [`DatagramRequestHandler`]); a *server*
//! ([`Server`], over a listener or [`Datagrams`]) owns the socket and the request loop
//! (`handle_request`, `serve_forever`, shutdown) and calls Python's hooks
//! ([`ServerHooks`]) in Python's order; a *strategy* ([`Sequential`],
//! [`Multiplexed`], and `Threading` / `Forking` in `socketserver-std`)
//! replaces Python's mix-ins. Backends supply sockets through the traits in
//! [`transport`]: `socketserver-std` over the OS, `socketserver-smoltcp` over a
//! userspace TCP/IP stack.
//!
//! A handler, written once:
//!
//! ```
//! use socketserver_core::{Connection, Error, StreamRequest, StreamRequestHandler};
//!
//! #[derive(Clone, Default)]
//! struct Echo;
//!
//! impl<C: Connection> StreamRequestHandler<C> for Echo {
//!     fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
//!         let mut buf = [0u8; 512];
//!         loop {
//!             match req.read(&mut buf)? {
//!                 0 => return Ok(()),
//!                 n => req.write_all(&buf[..n])?,
//!             }
//!         }
//!     }
//! }
//! ```
//!
//! and served by any backend's listener, here a generic one:
//!
//! ```
//! use socketserver_core::{DefaultHooks, Listener, Server, Sequential, Wait, Echo};
//! use socketserver_core::time::Duration;
//!
//! fn serve<L: Listener, W: Wait<L>>(listener: L, waiter: W) -> Result<(), W::Error> {
//!     let mut server = Server::new(listener, waiter, Sequential::<Echo>::new(Echo), DefaultHooks);
//!     server.serve_forever(Duration::from_millis(500))
//! }
//! ```
//!
//! What this crate is *not*: it opens no socket and knows no OS. It never
//! allocates: buffers are arrays or slices the caller sizes, and a line longer
//! than its buffer is an error, not growth.
//!
//! Features: `log` or `defmt` (one of them) log every lifecycle step at debug
//! level, so Python's call trace appears with no user code; `std` makes the
//! default `handle_error` write Python's report to stderr.
#![no_std]
// Two exceptions, each with a `// SAFETY:` comment and tests: the waker of
// `wake.rs`, and the pinned request slots of `multiplexed.rs`.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(missing_debug_implementations)]

#[cfg(feature = "std")]
extern crate std;

mod trace;
mod wake;

mod async_request;
mod block_on;
mod blocking_io;
mod buffered;
mod context;
mod echo;
mod error;
mod handler;
mod hooks;
mod incoming;
mod liveness;
mod message;
mod multiplexed;
#[cfg(feature = "std")]
mod report_limit;
mod request;
mod request_io;
mod runner;
mod sequential;
mod serve_loop;
mod server;
mod shutdown;
mod source;
mod strategy;
pub mod time;
pub mod transport;

pub use async_request::AsyncStreamRequest;
pub use block_on::block_on;
pub use blocking_io::Blocking;
pub use buffered::{BufReader, BufWriter, ReadBuffer, WriteBuffer, send_all};
pub use context::{InlineServer, ServerContext};
pub use echo::{Echo, EchoDatagram, LINE_TOO_LONG, Upper};
pub use embedded_io;
pub use embedded_io_async;
pub use error::{Error, HandlerError};
pub use handler::{Async, AsyncStreamRequestHandler, DatagramRequestHandler, StreamRequestHandler};
pub use hooks::{DefaultHooks, ServerHooks, report_dropped_reply, report_error};
pub use incoming::{Accepted, NothingHeld, Packet, Request};
pub use liveness::{
    Activity, DEFAULT_EVICT_AFTER, DEFAULT_IDLE_TIMEOUT, Expiry, IdlePolicy, MinRate,
    SUGGESTED_MIN_RATE,
};
pub use message::{MESSAGE_CAPACITY, Message};
pub use multiplexed::{Multiplexed, Served};
pub use request::{DatagramRequest, StreamRequest};
pub use request_io::STEP_BUDGET;
pub use runner::{
    PanicGuard, Serve, Unguarded, begin_request, complete_request, cut_request, drop_request,
    hand_off_request, refuse_request, report_request_error, run_request,
};
pub use sequential::Sequential;
pub use serve_loop::Handled;
pub use server::Server;
pub use shutdown::{RunningLoop, ShutdownFlag};
pub use source::{Datagrams, RequestOf, RequestSource, StrategyFor};
pub use strategy::{FromHandler, Strategy};
pub use transport::{Connection, DatagramSocket, Interest, Listener, Received, Sent, Wait};
pub use wake::{SLOT_IDS, slot_ids_in_use, wake_count};
