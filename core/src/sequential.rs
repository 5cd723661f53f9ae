//! `Sequential`: each request served inline, one at a time, Python's plain server.

use crate::context::ServerContext;
use crate::hooks::ServerHooks;
use crate::incoming::Request;
use crate::runner::{Serve, Unguarded, run_request};
use crate::strategy::{FromHandler, Strategy};

/// Serves each request to completion before taking the next.
///
/// `RBUF` and `WBUF` size the request's read-ahead and write buffers, which
/// live on the stack while a request runs (Python's `rbufsize` and
/// `wbufsize`; `WBUF = 0` is Python's unbuffered default).
#[derive(Debug, Clone)]
pub struct Sequential<H, const RBUF: usize = 1024, const WBUF: usize = 0> {
    handler: H,
}

impl<H> Sequential<H> {
    /// A strategy that clones `handler` for each request, with a 1 KiB read
    /// buffer and unbuffered writes.
    pub const fn new(handler: H) -> Self {
        Self { handler }
    }
}

impl<H, const RBUF: usize, const WBUF: usize> Sequential<H, RBUF, WBUF> {
    /// A strategy with `RBUF`-byte read-ahead and a `WBUF`-byte write buffer:
    /// `Sequential::<_, 4096, 1024>::with_buffers(handler)`.
    pub const fn with_buffers(handler: H) -> Self {
        Self { handler }
    }

    /// The handler value cloned for each request.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler value, mutably: changing it changes later requests, as
    /// reassigning Python's `RequestHandlerClass` does.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
}

impl<H, const RBUF: usize, const WBUF: usize> FromHandler<H> for Sequential<H, RBUF, WBUF> {
    fn from_handler(handler: H) -> Self {
        Self::with_buffers(handler)
    }
}

impl<R, K, H, const RBUF: usize, const WBUF: usize> Strategy<R, K> for Sequential<H, RBUF, WBUF>
where
    R: Request,
    K: ServerHooks<R::Addr>,
    H: Serve<R>,
{
    fn process_request(&mut self, hooks: &K, server: &dyn ServerContext<R::Addr>, request: R) {
        let mut rbuf = [0u8; RBUF];
        let mut wbuf = [0u8; WBUF];
        run_request(
            &self.handler,
            hooks,
            server,
            request,
            &mut rbuf,
            &mut wbuf,
            &Unguarded,
        );
    }
}
