//! What a handler sees of one request.

use core::fmt::Debug;

use crate::async_request::AsyncStreamRequest;
use crate::block_on::block_on;
use crate::context::{ServerContext, ServerRef};
use crate::error::{Error, HandlerError};
use crate::transport::Connection;

/// One stream request: the connection with Python's `rfile` and `wfile`
/// folded into one value, the client's address, and the server
/// ([`server`](Self::server), Python's `self.server`).
///
/// Reads go through a read-ahead buffer (`rbufsize`) and writes through a
/// write buffer (`wbufsize`, 0 by default: each write reaches the peer before
/// it returns). Both buffers are storage the server lends, sized by the server's
/// configuration, so nothing here allocates.
///
/// It is the blocking face of [`AsyncStreamRequest`]: one implementation of
/// the buffering, driven here with [`block_on`] (every await completes at
/// once over a blocking connection).
#[derive(Debug)]
pub struct StreamRequest<'r, C: Connection> {
    inner: AsyncStreamRequest<'r, C>,
}

impl<'r, C: Connection> StreamRequest<'r, C> {
    /// A request over `connection` from `client_address`, served by
    /// `server`, with the given buffer storage.
    pub fn new(
        connection: &'r mut C,
        client_address: &'r C::Addr,
        server: &'r dyn ServerContext<C::Addr>,
        rbuf: &'r mut [u8],
        wbuf: &'r mut [u8],
    ) -> Self {
        Self {
            inner: AsyncStreamRequest::new(connection, client_address, server, rbuf, wbuf),
        }
    }

    /// The same request for async code: what an async handler's methods
    /// receive when a blocking strategy serves it.
    pub fn as_async(&mut self) -> &mut AsyncStreamRequest<'r, C> {
        &mut self.inner
    }

    /// The client's address, Python's `client_address`.
    pub fn client_address(&self) -> &C::Addr {
        self.inner.client_address()
    }

    /// The server serving this request, Python's `self.server`: its
    /// address and a shutdown that never waits (see [`ServerContext`]).
    pub fn server(&self) -> &'r dyn ServerContext<C::Addr> {
        self.inner.server()
    }

    /// The raw connection, Python's `request` / `connection`. Reading from it
    /// directly skips bytes already read ahead into the buffer.
    pub fn connection(&mut self) -> &mut C {
        self.inner.connection()
    }

    /// Reads what is available, at least one byte unless EOF (`Ok(0)`);
    /// Python's `request.recv(len(out))`.
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, Error<C::Error>> {
        block_on(self.inner.read(out))
    }

    /// Fills `out`, or fails with [`Error::UnexpectedEof`].
    pub fn read_exact(&mut self, out: &mut [u8]) -> Result<(), Error<C::Error>> {
        block_on(self.inner.read_exact(out))
    }

    /// Reads one line, newline included, of at most `out.len()` bytes:
    /// Python's `rfile.readline(limit)` with a hard maximum. Returns 0 at EOF.
    /// A longer line fails with [`Error::LineTooLong`] after its first
    /// `out.len()` bytes were copied into `out`; the rest of that line is still
    /// unread: [`discard_line`](Self::discard_line) skips it.
    pub fn read_line(&mut self, out: &mut [u8]) -> Result<usize, Error<C::Error>> {
        block_on(self.inner.read_line(out))
    }

    /// Skips the rest of the current line, newline included, however long.
    /// Returns how many bytes were skipped.
    pub fn discard_line(&mut self) -> Result<usize, Error<C::Error>> {
        block_on(self.inner.discard_line())
    }

    /// Writes all of `data`: Python's `wfile.write` (which `sendall`s).
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), Error<C::Error>> {
        block_on(self.inner.write_all(data))
    }

    /// Sends buffered writes now. The server flushes after `finish` anyway.
    pub fn flush(&mut self) -> Result<(), Error<C::Error>> {
        block_on(self.inner.flush())
    }

    /// Python's `rbufsize`: the read-ahead capacity.
    pub fn rbufsize(&self) -> usize {
        self.inner.rbufsize()
    }

    /// Python's `wbufsize`: the write buffer capacity (0: unbuffered).
    pub fn wbufsize(&self) -> usize {
        self.inner.wbufsize()
    }
}

/// One datagram request, Python's `DatagramRequestHandler` view: the packet
/// in, a reply buffer out, and the server ([`server`](Self::server),
/// Python's `self.server`). Exactly one reply datagram is sent after `finish`,
/// empty if nothing was written, as Python does.
#[derive(Debug)]
pub struct DatagramRequest<'r, A: Debug> {
    packet: &'r [u8],
    truncated: bool,
    client_address: &'r A,
    server: ServerRef<'r, A>,
    reply: &'r mut [u8],
    reply_len: usize,
}

impl<'r, A: Debug> DatagramRequest<'r, A> {
    /// A request for `packet` from `client_address`, served by `server`,
    /// replying into `reply`.
    pub fn new(
        packet: &'r [u8],
        truncated: bool,
        client_address: &'r A,
        server: &'r dyn ServerContext<A>,
        reply: &'r mut [u8],
    ) -> Self {
        Self {
            packet,
            truncated,
            client_address,
            server: ServerRef(server),
            reply,
            reply_len: 0,
        }
    }

    /// The datagram, at most `max_packet_size` bytes (Python's `packet`/`rfile`).
    pub fn packet(&self) -> &'r [u8] {
        self.packet
    }

    /// Whether the datagram was longer than `max_packet_size` and cut short.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The sender's address, Python's `client_address`.
    pub fn client_address(&self) -> &'r A {
        self.client_address
    }

    /// The server serving this request, Python's `self.server`: its
    /// address and a shutdown that never waits (see [`ServerContext`]).
    pub fn server(&self) -> &'r dyn ServerContext<A> {
        self.server.0
    }

    /// Appends to the reply (Python's `wfile.write`); writes merge into one
    /// datagram. Beyond the reply buffer's capacity: [`Error::BufferFull`],
    /// and nothing of `data` is added.
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), HandlerError> {
        let end = self.reply_len + data.len();
        let slot = self
            .reply
            .get_mut(self.reply_len..end)
            .ok_or(Error::BufferFull)?;
        slot.copy_from_slice(data);
        self.reply_len = end;
        Ok(())
    }

    /// The reply written so far.
    pub fn reply(&self) -> &[u8] {
        &self.reply[..self.reply_len]
    }

    /// Drops what was written to the reply.
    pub fn clear_reply(&mut self) {
        self.reply_len = 0;
    }
}
