//! One request from `finish_request` to `close_request`, in Python's order.
//!
//! Every strategy runs requests through these functions (inline, in a worker
//! thread, in a forked child), so the order of hooks is the same everywhere.

use crate::error::Error;
use crate::handler::{DatagramRequestHandler, StreamRequestHandler};
use crate::hooks::{ServerHooks, report_dropped_reply};
use crate::request::{DatagramRequest, StreamRequest};
use crate::trace::{step, trace_warn};
use crate::transport::{Connection, DatagramSocket, Sent};

/// Runs `finish_request`, then the handler's `setup`, `handle`, `finish`.
/// Returns the error that Python would raise out of the handler's constructor.
pub fn finish_stream_request<C, H, K>(
    handler: &H,
    hooks: &K,
    conn: &mut C,
    client: &C::Addr,
    rbuf: &mut [u8],
    wbuf: &mut [u8],
) -> Result<(), Error<C::Error>>
where
    C: Connection,
    H: StreamRequestHandler<C>,
    K: ServerHooks<C::Addr> + ?Sized,
{
    step!("socketserver::server", "finish_request", conn, client);
    hooks.finish_request(client);
    let mut handler = handler.clone();
    step!("socketserver::handler", "__init__");
    // The handler's own timeout replaces the connection's idle timeout
    // (`None` keeps the backend's default, which the server's idle policy set).
    if let Some(timeout) = handler.timeout() {
        conn.set_timeout(Some(timeout))?;
    }
    if handler.disable_nagle_algorithm() {
        conn.set_nodelay(true)?;
    }
    let mut req = StreamRequest::new(conn, client, rbuf, wbuf);
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

/// Python's `shutdown_request` then `close_request`: half-close so the client
/// reads EOF even if someone else still holds the socket, then close.
pub fn end_stream_request<C, K>(hooks: &K, mut conn: C, client: &C::Addr)
where
    C: Connection,
    K: ServerHooks<C::Addr> + ?Sized,
{
    hooks.shutdown_request(client);
    // An error here (ENOTCONN after a reset) changes nothing: Python ignores it too.
    let _ = conn.shutdown_write();
    step!("socketserver::server", "close_request", conn);
    hooks.close_request(client);
    conn.close();
}

/// Python's `shutdown_request` then `close_request` for a request the server
/// ends by force (a deadline, an idle or slow peer, an eviction): the hooks
/// run as for any request, and the connection is reset instead of
/// half-closed, so the client sees an error and not a clean end of stream.
pub fn cut_stream_request<C, K>(hooks: &K, conn: C, client: &C::Addr)
where
    C: Connection,
    K: ServerHooks<C::Addr> + ?Sized,
{
    hooks.shutdown_request(client);
    step!("socketserver::server", "close_request", conn);
    hooks.close_request(client);
    conn.abort();
}

/// Ends a request after its handler ran: a request that ran out of time (an
/// idle or slow peer, the handler's own timeout) or that the server cut is
/// reset; any other ends with all its bytes and a FIN, as in Python.
pub fn close_stream_request<C, K>(
    hooks: &K,
    conn: C,
    client: &C::Addr,
    result: &Result<(), Error<C::Error>>,
) where
    C: Connection,
    K: ServerHooks<C::Addr> + ?Sized,
{
    match result {
        Err(e) if is_forced_end(e) => cut_stream_request(hooks, conn, client),
        _ => end_stream_request(hooks, conn, client),
    }
}

/// Reports a failed request: to `handle_error`, unless the peer vanished
/// (a reset, a broken pipe), which ends a request as EOF does and is only
/// traced at debug level, the same on every strategy and backend.
pub fn report_request_error<C, K>(hooks: &K, client: &C::Addr, error: &Error<C::Error>)
where
    C: Connection,
    K: ServerHooks<C::Addr> + ?Sized,
{
    use embedded_io::{Error as _, ErrorKind};
    let vanished = matches!(
        error.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::NotConnected
    );
    if vanished {
        step!("socketserver::server", "peer_vanished", client, error);
    } else {
        hooks.handle_error(client, error);
    }
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

/// A whole stream request after `verify_request`: the handler, `handle_error`
/// on failure, then shutdown and close. Returns whether it succeeded, which a
/// forked child turns into its exit status.
pub fn run_stream_request<C, H, K>(
    handler: &H,
    hooks: &K,
    mut conn: C,
    client: &C::Addr,
    rbuf: &mut [u8],
    wbuf: &mut [u8],
) -> bool
where
    C: Connection,
    H: StreamRequestHandler<C>,
    K: ServerHooks<C::Addr> + ?Sized,
{
    let result = finish_stream_request(handler, hooks, &mut conn, client, rbuf, wbuf);
    if let Err(e) = &result {
        report_request_error::<C, K>(hooks, client, e);
    }
    close_stream_request(hooks, conn, client, &result);
    result.is_ok()
}

/// A whole datagram request after `verify_request`: the handler, then the one
/// reply datagram (sent when `setup` succeeded, even if `handle` failed, as
/// Python's `finish` sends it), `handle_error` on failure, then the
/// `shutdown_request` and `close_request` hooks (nothing is closed: the socket
/// is shared). Returns whether it succeeded.
pub fn run_datagram_request<D, H, K>(
    handler: &H,
    hooks: &K,
    socket: &mut D,
    packet: &[u8],
    truncated: bool,
    client: &D::Addr,
    reply: &mut [u8],
) -> bool
where
    D: DatagramSocket,
    H: DatagramRequestHandler<D::Addr>,
    K: ServerHooks<D::Addr> + ?Sized,
{
    step!(
        "socketserver::server",
        "finish_request",
        packet.len(),
        client
    );
    hooks.finish_request(client);
    let mut handler = handler.clone();
    step!("socketserver::handler", "__init__");
    let mut req = DatagramRequest::new(packet, truncated, client, reply);
    step!("socketserver::handler", "setup");
    let result: Result<(), Error<D::Error>> = match handler.setup(&mut req) {
        Err(e) => Err(Error::widen(e)),
        Ok(()) => {
            step!("socketserver::handler", "handle");
            let handled = handler.handle(&mut req);
            step!("socketserver::handler", "finish");
            let finished = handler.finish(&mut req);
            let sent = match socket.send_to(req.reply(), client) {
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
    };
    if let Err(e) = &result {
        hooks.handle_error(client, e);
    }
    hooks.shutdown_request(client);
    step!("socketserver::server", "close_request", client);
    hooks.close_request(client);
    result.is_ok()
}
