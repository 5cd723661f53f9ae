//! `Sync`: each request served inline, one at a time, Python's plain server.

use crate::handler::{DatagramRequestHandler, StreamRequestHandler};
use crate::hooks::ServerHooks;
use crate::lifecycle::{run_datagram_request, run_stream_request};
use crate::strategy::{AddrOf, DatagramStrategy, StreamStrategy};
use crate::transport::{DatagramSocket, Listener};

/// Serves each request to completion before taking the next.
///
/// `RBUF` and `WBUF` size the request's read-ahead and write buffers, which
/// live on the stack while a request runs (Python's `rbufsize` and
/// `wbufsize`; `WBUF = 0` is Python's unbuffered default).
#[derive(Debug, Clone)]
pub struct Sync<H, const RBUF: usize = 1024, const WBUF: usize = 0> {
    handler: H,
}

impl<H> Sync<H> {
    /// A strategy that clones `handler` for each request, with a 1 KiB read
    /// buffer and unbuffered writes.
    pub const fn new(handler: H) -> Self {
        Self { handler }
    }
}

impl<H, const RBUF: usize, const WBUF: usize> Sync<H, RBUF, WBUF> {
    /// A strategy with `RBUF`-byte read-ahead and a `WBUF`-byte write buffer:
    /// `Sync::<_, 4096, 1024>::with_buffers(handler)`.
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

impl<L, K, H, const RBUF: usize, const WBUF: usize> StreamStrategy<L, K> for Sync<H, RBUF, WBUF>
where
    L: Listener,
    K: ServerHooks<AddrOf<L>>,
    H: StreamRequestHandler<L::Conn>,
{
    fn process_request(&mut self, hooks: &K, conn: L::Conn, client: AddrOf<L>) {
        let mut rbuf = [0u8; RBUF];
        let mut wbuf = [0u8; WBUF];
        run_stream_request(&self.handler, hooks, conn, &client, &mut rbuf, &mut wbuf);
    }
}

impl<D, K, H, const RBUF: usize, const WBUF: usize> DatagramStrategy<D, K> for Sync<H, RBUF, WBUF>
where
    D: DatagramSocket,
    K: ServerHooks<D::Addr>,
    H: DatagramRequestHandler<D::Addr>,
{
    fn process_request(
        &mut self,
        hooks: &K,
        socket: &mut D,
        packet: &[u8],
        truncated: bool,
        client: D::Addr,
        reply: &mut [u8],
    ) {
        run_datagram_request(
            &self.handler,
            hooks,
            socket,
            packet,
            truncated,
            &client,
            reply,
        );
    }
}
