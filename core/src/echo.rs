//! Echo handlers: the RFC 862 service, and the handlers the examples and the
//! cross-backend behaviour suite run everywhere.

use crate::async_request::AsyncStreamRequest;
use crate::error::{Error, HandlerError};
use crate::handler::{
    Async, AsyncStreamRequestHandler, DatagramRequestHandler, StreamRequestHandler,
};
use crate::request::{DatagramRequest, StreamRequest};
use crate::transport::Connection;

/// Echoes every byte as it arrives until the client's EOF.
///
/// Written once, as async code; it is also a blocking
/// [`StreamRequestHandler`] (through [`Async`]), so every strategy serves
/// it as it is. `CHUNK` is the size of the buffer each read uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo<const CHUNK: usize = 1024>;

impl<C: Connection, const CHUNK: usize> AsyncStreamRequestHandler<C> for Echo<CHUNK> {
    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut chunk = [0u8; CHUNK];
        loop {
            let n = req.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            req.write_all(&chunk[..n]).await?;
            // Buffered or not, the peer must see each chunk without waiting for EOF.
            req.flush().await?;
        }
    }
}

/// The line handler: answers each line in upper case, until the client's
/// EOF. A line longer than `MAX` bytes is answered with one error line
/// (`ERROR line too long`) and skipped, and the connection goes on.
/// Written once, as async code; also a blocking [`StreamRequestHandler`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Upper<const MAX: usize = 256>;

/// What [`Upper`] answers to a line longer than its maximum.
pub const LINE_TOO_LONG: &[u8] = b"ERROR line too long\n";

impl<C: Connection, const MAX: usize> AsyncStreamRequestHandler<C> for Upper<MAX> {
    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut line = [0u8; MAX];
        loop {
            match req.read_line(&mut line).await {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    line[..n].make_ascii_uppercase();
                    req.write_all(&line[..n]).await?;
                }
                Err(Error::LineTooLong) => {
                    req.discard_line().await?;
                    req.write_all(LINE_TOO_LONG).await?;
                }
                Err(e) => return Err(e),
            }
            req.flush().await?;
        }
    }
}

/// Replies to each datagram with the same bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct EchoDatagram;

impl<A: core::fmt::Debug> DatagramRequestHandler<A> for EchoDatagram {
    fn handle(&mut self, req: &mut DatagramRequest<'_, A>) -> Result<(), HandlerError> {
        let packet = req.packet();
        req.write_all(packet)
    }
}

/// The ready-made async handlers are blocking ones too, so every strategy
/// serves them without a wrapper: each forwards to [`Async`].
macro_rules! blocking_through_async {
    ($handler:ident, $n:ident) => {
        impl<C: Connection, const $n: usize> StreamRequestHandler<C> for $handler<$n> {
            fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
                Async(*self).handle(req)
            }
        }
    };
}

blocking_through_async!(Echo, CHUNK);
blocking_through_async!(Upper, MAX);
