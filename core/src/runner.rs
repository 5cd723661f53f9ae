//! The request runner: one request from `finish_request` to `close_request`,
//! in Python's order, for every strategy and every kind of request.
//!
//! This is the one place the per-request hooks are called (`verify_request`
//! and `process_request` are the server's, before a strategy sees the
//! request): `finish_request` in [`begin_request`], `handle_error` and
//! `shutdown_request` and `close_request` in private functions behind the
//! public ones. Strategies only decide where a request runs (inline, in a
//! thread, in a child, in a slot) and call these functions; a strategy that
//! cannot run a request (no thread, no fork, no slot) ends it with
//! [`drop_request`] or [`cut_request`].

use core::error::Error as StdError;

use crate::context::ServerContext;
use crate::error::Error;
use crate::handler::{DatagramRequestHandler, StreamRequestHandler};
use crate::hooks::{ServerHooks, report_dropped_reply};
use crate::incoming::{Accepted, Packet, Request};
use crate::request::{DatagramRequest, StreamRequest};
use crate::trace::{step, trace_warn};
use crate::transport::{Connection, DatagramSocket, Sent};

/// A handler's steps for one kind of request: `setup`, `handle`, `finish`
/// (which runs even when `handle` failed), and what ends the handler's part
/// (the flush of a stream's write buffer; the one reply of a datagram).
///
/// Implemented for every [`StreamRequestHandler`] over [`Accepted`] and
/// every [`DatagramRequestHandler`] over [`Packet`]; the handler value is
/// cloned for the request, as Python builds a handler per request.
pub trait Serve<R: Request> {
    /// Runs a clone of the handler over `request`, which `server` serves
    /// (what the handler reaches as `req.server()`). `rbuf` and `wbuf` are
    /// the stream request's read-ahead and write buffers (a datagram has none).
    fn serve(
        &self,
        request: &mut R,
        server: &dyn ServerContext<R::Addr>,
        rbuf: &mut [u8],
        wbuf: &mut [u8],
    ) -> Result<(), Error<R::Error>>;
}

impl<C, H> Serve<Accepted<C>> for H
where
    C: Connection,
    H: StreamRequestHandler<C>,
{
    fn serve(
        &self,
        request: &mut Accepted<C>,
        server: &dyn ServerContext<C::Addr>,
        rbuf: &mut [u8],
        wbuf: &mut [u8],
    ) -> Result<(), Error<C::Error>> {
        let mut handler = self.clone();
        step!("socketserver::handler", "__init__");
        let conn = &mut request.conn;
        // The handler's own timeout replaces the connection's idle timeout
        // (`None` keeps the backend's default, which the server's idle policy set).
        if let Some(timeout) = handler.timeout() {
            conn.set_timeout(Some(timeout))?;
        }
        if handler.disable_nagle_algorithm() {
            conn.set_nodelay(true)?;
        }
        let mut req = StreamRequest::new(conn, &request.client, server, rbuf, wbuf);
        step!("socketserver::handler", "setup");
        handler.setup(&mut req)?;
        step!("socketserver::handler", "handle");
        let handled = handler.handle(&mut req);
        step!("socketserver::handler", "finish");
        let finished = handler.finish(&mut req);
        // Python's finish() flushes wfile and swallows the error of a vanished peer.
        if let Err(e) = req.flush() {
            trace_warn!("socketserver::handler", "flush after finish failed", e);
        }
        finished.and(handled)
    }
}

/// The reply is sent when `setup` succeeded, even if `handle` failed, as
/// Python's `finish` sends it; exactly one datagram, never waiting.
impl<D, H> Serve<Packet<'_, D>> for H
where
    D: DatagramSocket,
    H: DatagramRequestHandler<D::Addr>,
{
    fn serve(
        &self,
        packet: &mut Packet<'_, D>,
        server: &dyn ServerContext<D::Addr>,
        _rbuf: &mut [u8],
        _wbuf: &mut [u8],
    ) -> Result<(), Error<D::Error>> {
        let mut handler = self.clone();
        step!("socketserver::handler", "__init__");
        let client = &packet.client;
        let mut req =
            DatagramRequest::new(packet.data, packet.truncated, client, server, packet.reply);
        step!("socketserver::handler", "setup");
        handler.setup(&mut req).map_err(Error::widen)?;
        step!("socketserver::handler", "handle");
        let handled = handler.handle(&mut req);
        step!("socketserver::handler", "finish");
        let finished = handler.finish(&mut req);
        let sent = match packet.socket.send_to(req.reply(), client) {
            Ok(Sent::Queued) => Ok(()),
            // Datagram semantics: counted and reported, not an error of the request.
            Ok(Sent::Dropped) => {
                report_dropped_reply(client);
                Ok(())
            }
            Ok(Sent::NoReturnAddress) => {
                step!("socketserver::server", "no_return_address", client);
                Ok(())
            }
            Err(e) => Err(Error::Io(e)),
        };
        finished.and(handled).map_err(Error::widen).and(sent)
    }
}

/// How a request's handler is run: Python lets an exception out of a
/// handler reach `handle_error`; a Rust panic is not an error value, so a
/// strategy whose workers must outlive one (threads, forked children)
/// catches it here, and the request still ends with its hooks.
pub trait PanicGuard {
    /// What a caught panic becomes, reported to `handle_error`.
    type Caught: StdError;

    /// Runs `work`; `Err` when it panicked and the panic was caught.
    fn guard<T>(&self, work: impl FnOnce() -> T) -> Result<T, Self::Caught>;
}

/// Runs the handler as it is: a panic unwinds through the server (core's
/// `Sequential`, firmware built with `panic = "abort"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unguarded;

impl PanicGuard for Unguarded {
    type Caught = core::convert::Infallible;

    fn guard<T>(&self, work: impl FnOnce() -> T) -> Result<T, Self::Caught> {
        Ok(work())
    }
}

/// Runs one request after `verify_request` and `process_request`: the
/// `finish_request` hook, the handler's steps under `guard` (the handler
/// reaches `server` as `req.server()`), `handle_error` on failure, then the
/// end (FIN, or a reset for a request that ran out of time or was cut).
/// Returns whether it succeeded, which a forked child turns into its exit
/// status.
pub fn run_request<R, H, K, G>(
    handler: &H,
    hooks: &K,
    server: &dyn ServerContext<R::Addr>,
    mut request: R,
    rbuf: &mut [u8],
    wbuf: &mut [u8],
    guard: &G,
) -> bool
where
    R: Request,
    H: Serve<R>,
    K: ServerHooks<R::Addr> + ?Sized,
    G: PanicGuard,
{
    begin_request(hooks, &request);
    match guard.guard(|| handler.serve(&mut request, server, rbuf, wbuf)) {
        Ok(result) => {
            complete_request(hooks, request, &result);
            result.is_ok()
        }
        Err(caught) => {
            drop_request(hooks, request, &caught);
            false
        }
    }
}

/// Python's `finish_request` hook, as a request starts (the polled
/// strategies run the handler's steps themselves, as a future).
pub fn begin_request<R, K>(hooks: &K, request: &R)
where
    R: Request,
    K: ServerHooks<R::Addr> + ?Sized,
{
    step!("socketserver::server", "finish_request", request);
    hooks.finish_request(request.client());
}

/// Ends a request whose handler returned `result`: failures reach
/// `handle_error` (unless the peer vanished), then a request that ran out of
/// time (an idle or slow peer, the handler's own timeout) or that the server
/// cut is reset; any other ends with all its bytes and a FIN, as in Python.
pub fn complete_request<R, K>(hooks: &K, request: R, result: &Result<(), Error<R::Error>>)
where
    R: Request,
    K: ServerHooks<R::Addr> + ?Sized,
{
    let forced = match result {
        Ok(()) => false,
        Err(e) => {
            report_request_error(hooks, &request, e);
            is_forced_end(e)
        }
    };
    end_request(
        hooks,
        request,
        if forced {
            Ending::Cut
        } else {
            Ending::Complete
        },
    );
}

/// Ends a request the strategy could not run (a thread that would not
/// start, a failed fork) or whose handler panicked: `error` reaches
/// `handle_error`, then the request ends as a finished one does (its client
/// reads EOF at once instead of waiting).
pub fn drop_request<R, K>(hooks: &K, request: R, error: &dyn StdError)
where
    R: Request,
    K: ServerHooks<R::Addr> + ?Sized,
{
    handle_error(hooks, &request, error);
    end_request(hooks, request, Ending::Complete);
}

/// Ends a request that `verify_request` refused: no handler, no error; the
/// client reads EOF.
pub fn refuse_request<R, K>(hooks: &K, request: R)
where
    R: Request,
    K: ServerHooks<R::Addr> + ?Sized,
{
    end_request(hooks, request, Ending::Complete);
}

/// Ends a request the server cuts by force (a deadline, an idle or slow
/// peer, an eviction, no slot): the hooks run as for any request, and the
/// connection is reset instead of half-closed, so the client sees an error
/// and not a clean end of stream.
pub fn cut_request<R, K>(hooks: &K, request: R)
where
    R: Request,
    K: ServerHooks<R::Addr> + ?Sized,
{
    end_request(hooks, request, Ending::Cut);
}

/// The parent's side of a request handed to a forked child, as Python's
/// `ForkingMixIn` does it: `close_request` only (a shutdown here would
/// half-close the child's connection too). Returns what the parent keeps.
pub fn hand_off_request<R, K>(hooks: &K, request: R) -> Option<R::Held>
where
    R: Request,
    K: ServerHooks<R::Addr> + ?Sized,
{
    end_request(hooks, request, Ending::HandedOff)
}

/// Reports a failed request: to `handle_error`, unless the peer vanished
/// (a reset, a broken pipe), which ends a request as EOF does and is only
/// traced at debug level, the same on every strategy and backend.
pub fn report_request_error<R, K>(hooks: &K, request: &R, error: &Error<R::Error>)
where
    R: Request,
    K: ServerHooks<R::Addr> + ?Sized,
{
    if R::peer_vanished(error) {
        step!("socketserver::server", "peer_vanished", request, error);
    } else {
        handle_error(hooks, request, error);
    }
}

/// Python's `handle_error`: the one place it is called.
fn handle_error<R, K>(hooks: &K, request: &R, error: &dyn StdError)
where
    R: Request,
    K: ServerHooks<R::Addr> + ?Sized,
{
    hooks.handle_error(request.client(), error);
}

/// How a request ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Its handler returned (or it never ran): FIN.
    Complete,
    /// The server ended it by force: reset.
    Cut,
    /// A forked child serves it: the parent only lets go of its copy.
    HandedOff,
}

/// Python's `shutdown_request` then `close_request`: the one place those
/// hooks are called.
fn end_request<R, K>(hooks: &K, mut request: R, ending: Ending) -> Option<R::Held>
where
    R: Request,
    K: ServerHooks<R::Addr> + ?Sized,
{
    if ending != Ending::HandedOff {
        hooks.shutdown_request(request.client());
        if ending == Ending::Complete {
            request.half_close();
        }
    }
    step!("socketserver::server", "close_request", request);
    hooks.close_request(request.client());
    match ending {
        Ending::Complete => request.close(),
        Ending::Cut => request.reset(),
        Ending::HandedOff => return request.into_held(),
    }
    None
}

/// Whether an error means the request did not complete in time or was cut.
fn is_forced_end<E: embedded_io::Error>(e: &Error<E>) -> bool {
    use embedded_io::Error as _;
    matches!(e, Error::TimedOut | Error::TooSlow | Error::Cut)
        || matches!(
            e.kind(),
            embedded_io::ErrorKind::TimedOut | embedded_io::ErrorKind::ConnectionAborted
        )
}
