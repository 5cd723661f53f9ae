//! Request handlers: the protocol half of a server, written once for every backend.

use crate::async_request::AsyncStreamRequest;
use crate::block_on::block_on;
use crate::error::{Error, HandlerError};
use crate::request::{DatagramRequest, StreamRequest};
use crate::time::Duration;
use crate::transport::Connection;

/// Python's `StreamRequestHandler`: `setup`, `handle`, `finish` over a
/// blocking stream.
///
/// The server clones the handler value for every request, as Python builds a
/// new handler instance from its class, so fields are per-request state and a
/// shared reference or `Arc` held in a field is state shared with the server
/// (Python's attributes on `self.server`). The server itself, its address and
/// its shutdown, is `req.server()` ([`ServerContext`](crate::ServerContext)).
/// `finish` runs even when `handle` fails; when `setup` fails neither runs.
/// Errors go to the server's `handle_error` hook and the server keeps serving.
///
/// Write handlers generic over the connection, and one handler runs on every
/// backend:
///
/// ```
/// use socketserver_core::{Connection, Error, StreamRequest, StreamRequestHandler};
///
/// /// Answers each line in upper case.
/// #[derive(Clone, Default)]
/// struct Upper;
///
/// impl<C: Connection> StreamRequestHandler<C> for Upper {
///     fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
///         let mut line = [0u8; 256];
///         loop {
///             let n = req.read_line(&mut line)?;
///             if n == 0 {
///                 return Ok(());
///             }
///             line[..n].make_ascii_uppercase();
///             req.write_all(&line[..n])?;
///         }
///     }
/// }
/// ```
pub trait StreamRequestHandler<C: Connection>: Clone {
    /// Prepares the request; a failure skips `handle` and `finish`.
    fn setup(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let _ = req;
        Ok(())
    }

    /// Serves the request.
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>>;

    /// Cleans up; runs even when `handle` failed. Its error replaces `handle`'s.
    fn finish(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let _ = req;
        Ok(())
    }

    /// Python's `timeout`: bounds each blocking read and write of this request.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Python's `disable_nagle_algorithm`: sets `TCP_NODELAY` before `setup`.
    fn disable_nagle_algorithm(&self) -> bool {
        false
    }
}

/// Python's `StreamRequestHandler` written as plain sequential async code:
/// `setup`, `handle`, `finish` as `async fn`s over an
/// [`AsyncStreamRequest`]. The compiler writes the state machine.
///
/// The same value runs everywhere: a blocking strategy (`Sequential`, and
/// `Threading` or `Forking` on std) serves it wrapped in [`Async`], which
/// makes it a [`StreamRequestHandler`] whose every await completes at once
/// on its blocking connection; the lifecycle, hooks and their order are the
/// same.
///
/// ```
/// use socketserver_core::{AsyncStreamRequest, AsyncStreamRequestHandler, Connection, Error};
///
/// /// Answers each line in upper case.
/// #[derive(Clone, Default)]
/// struct Upper;
///
/// impl<C: Connection> AsyncStreamRequestHandler<C> for Upper {
///     async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
///         let mut line = [0u8; 256];
///         loop {
///             let n = req.read_line(&mut line).await?;
///             if n == 0 {
///                 return Ok(());
///             }
///             line[..n].make_ascii_uppercase();
///             req.write_all(&line[..n]).await?;
///         }
///     }
/// }
/// ```
// The futures are driven where they are made (a blocking strategy's thread,
// the serving loop): nothing requires them to be `Send`.
#[allow(async_fn_in_trait)]
pub trait AsyncStreamRequestHandler<C: Connection>: Clone {
    /// Prepares the request; a failure skips `handle` and `finish`.
    async fn setup(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let _ = req;
        Ok(())
    }

    /// Serves the request.
    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>>;

    /// Cleans up; runs even when `handle` failed. Its error replaces `handle`'s.
    async fn finish(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let _ = req;
        Ok(())
    }

    /// Python's `timeout`: bounds each read and write of this request.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// Python's `disable_nagle_algorithm`: sets `TCP_NODELAY` before `setup`.
    fn disable_nagle_algorithm(&self) -> bool {
        false
    }
}

/// An async handler served by a blocking strategy: each step is driven to
/// completion with [`block_on`] over the request, so `Sequential`, `Threading`
/// and `Forking` serve it in core's lifecycle, unchanged.
///
/// ```
/// use socketserver_core::{Async, StreamRequestHandler, Upper};
///
/// fn blocking<C: socketserver_core::Connection>(_: impl StreamRequestHandler<C>) {}
/// # fn check<C: socketserver_core::Connection>() {
/// blocking::<C>(Async(Upper::<256>));
/// # }
/// ```
// A wrapper, not a blanket impl: a blanket `impl StreamRequestHandler for
// every AsyncStreamRequestHandler` would forbid users' own blocking handlers
// (coherence cannot rule out that a downstream crate makes them async too).
#[derive(Debug, Clone, Copy, Default)]
pub struct Async<H>(pub H);

impl<C: Connection, H: AsyncStreamRequestHandler<C>> StreamRequestHandler<C> for Async<H> {
    fn setup(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        block_on(self.0.setup(req.as_async()))
    }

    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        block_on(self.0.handle(req.as_async()))
    }

    fn finish(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        block_on(self.0.finish(req.as_async()))
    }

    fn timeout(&self) -> Option<Duration> {
        self.0.timeout()
    }

    fn disable_nagle_algorithm(&self) -> bool {
        self.0.disable_nagle_algorithm()
    }
}

/// Python's `DatagramRequestHandler`: the packet in, a reply written to a
/// buffer, sent to the client after `finish` as exactly one datagram.
///
/// ```
/// use socketserver_core::{DatagramRequest, DatagramRequestHandler, HandlerError};
///
/// #[derive(Clone, Default)]
/// struct Reverse;
///
/// impl<A: core::fmt::Debug> DatagramRequestHandler<A> for Reverse {
///     fn handle(&mut self, req: &mut DatagramRequest<'_, A>) -> Result<(), HandlerError> {
///         let mut reversed = [0u8; 64];
///         let n = req.packet().len().min(64);
///         for (i, b) in req.packet()[..n].iter().rev().enumerate() {
///             reversed[i] = *b;
///         }
///         req.write_all(&reversed[..n])
///     }
/// }
/// ```
pub trait DatagramRequestHandler<A: core::fmt::Debug>: Clone {
    /// Prepares the request; a failure skips `handle`, `finish` and the reply.
    fn setup(&mut self, req: &mut DatagramRequest<'_, A>) -> Result<(), HandlerError> {
        let _ = req;
        Ok(())
    }

    /// Serves the datagram.
    fn handle(&mut self, req: &mut DatagramRequest<'_, A>) -> Result<(), HandlerError>;

    /// Runs even when `handle` failed; the reply is sent after it.
    fn finish(&mut self, req: &mut DatagramRequest<'_, A>) -> Result<(), HandlerError> {
        let _ = req;
        Ok(())
    }
}
