//! What an async handler sees of one stream request.

use embedded_io::ErrorType;

use crate::buffered::{ReadBuffer, WriteBuffer};
use crate::context::{ServerContext, ServerRef};
use crate::error::Error;
use crate::request_io::{Mode, RequestIo, flatten};
use crate::transport::Connection;

/// One stream request for an async handler: the connection with Python's
/// `rfile` and `wfile` folded into one value, the client's address, and
/// the server ([`server`](Self::server), Python's `self.server`).
///
/// The same shape as the blocking [`StreamRequest`](crate::StreamRequest),
/// with `async` methods, and the `embedded-io-async` traits (`Read`,
/// `BufRead`, `Write`), so generic parsers and formatters work on it. Reads
/// go through a read-ahead buffer (`rbufsize`), writes through a write
/// buffer (`wbufsize`, 0 by default: each write reaches the peer before it
/// returns); both are storage the server lends, so nothing here allocates.
///
/// Under a blocking strategy (Python's threads and children, and `Sequential`)
/// each await completes at once, in the transport; the request is driven
/// with [`block_on`](crate::block_on). Under a multiplexed server a call
/// that would block yields until the connection is ready, a poll moves at
/// most 64 KiB, and a request the server ends sees [`Error::Cut`].
#[derive(Debug)]
pub struct AsyncStreamRequest<'r, C: Connection> {
    io: RequestIo<'r, C>,
    client_address: &'r C::Addr,
    server: ServerRef<'r, C::Addr>,
    rfile: ReadBuffer<'r>,
    wfile: WriteBuffer<'r>,
}

impl<'r, C: Connection> AsyncStreamRequest<'r, C> {
    /// A request over a blocking `connection` from `client_address`, served
    /// by `server`, with the given buffer storage.
    pub fn new(
        connection: &'r mut C,
        client_address: &'r C::Addr,
        server: &'r dyn ServerContext<C::Addr>,
        rbuf: &'r mut [u8],
        wbuf: &'r mut [u8],
    ) -> Self {
        Self::with_mode(
            Mode::Blocking,
            connection,
            client_address,
            server,
            rbuf,
            wbuf,
        )
    }

    /// A request whose calls yield instead of blocking: a multiplexed
    /// server's.
    pub(crate) fn polled(
        connection: &'r mut C,
        client_address: &'r C::Addr,
        server: &'r dyn ServerContext<C::Addr>,
        rbuf: &'r mut [u8],
        wbuf: &'r mut [u8],
    ) -> Self {
        Self::with_mode(Mode::Polled, connection, client_address, server, rbuf, wbuf)
    }

    fn with_mode(
        mode: Mode,
        connection: &'r mut C,
        client_address: &'r C::Addr,
        server: &'r dyn ServerContext<C::Addr>,
        rbuf: &'r mut [u8],
        wbuf: &'r mut [u8],
    ) -> Self {
        Self {
            io: RequestIo::new(connection, mode),
            client_address,
            server: ServerRef(server),
            rfile: ReadBuffer::new(rbuf),
            wfile: WriteBuffer::new(wbuf),
        }
    }

    /// The client's address, Python's `client_address`.
    pub fn client_address(&self) -> &C::Addr {
        self.client_address
    }

    /// The server serving this request, Python's `self.server`: its
    /// address and a shutdown that never waits (see [`ServerContext`]).
    pub fn server(&self) -> &'r dyn ServerContext<C::Addr> {
        self.server.0
    }

    /// The raw connection, Python's `request` / `connection`. Reading from it
    /// directly skips bytes already read ahead into the buffer.
    pub fn connection(&mut self) -> &mut C {
        self.io.conn
    }

    /// Reads what is available, at least one byte unless EOF (`Ok(0)`);
    /// Python's `request.recv(len(out))`.
    pub async fn read(&mut self, out: &mut [u8]) -> Result<usize, Error<C::Error>> {
        self.rfile.read(&mut self.io, out).await.map_err(flatten)
    }

    /// Fills `out`, or fails with [`Error::UnexpectedEof`].
    pub async fn read_exact(&mut self, out: &mut [u8]) -> Result<(), Error<C::Error>> {
        self.rfile
            .read_exact(&mut self.io, out)
            .await
            .map_err(flatten)
    }

    /// Reads one line, newline included, of at most `out.len()` bytes:
    /// Python's `rfile.readline(limit)` with a hard maximum. Returns 0 at EOF.
    /// A longer line fails with [`Error::LineTooLong`] after its first
    /// `out.len()` bytes were copied into `out`; the rest of that line is
    /// still unread: [`discard_line`](Self::discard_line) skips it.
    pub async fn read_line(&mut self, out: &mut [u8]) -> Result<usize, Error<C::Error>> {
        self.rfile
            .read_line(&mut self.io, out)
            .await
            .map_err(flatten)
    }

    /// Skips the rest of the current line, newline included, however long
    /// (memory stays bounded). Returns how many bytes were skipped.
    pub async fn discard_line(&mut self) -> Result<usize, Error<C::Error>> {
        self.rfile.discard_line(&mut self.io).await.map_err(flatten)
    }

    /// Writes all of `data`: Python's `wfile.write` (which `sendall`s).
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), Error<C::Error>> {
        self.wfile
            .write_all(&mut self.io, data)
            .await
            .map_err(flatten)
    }

    /// Sends buffered writes now. The server flushes after `finish` anyway.
    pub async fn flush(&mut self) -> Result<(), Error<C::Error>> {
        self.wfile.flush(&mut self.io).await.map_err(flatten)
    }

    /// Python's `rbufsize`: the read-ahead capacity.
    pub fn rbufsize(&self) -> usize {
        self.rfile.capacity()
    }

    /// Python's `wbufsize`: the write buffer capacity (0: unbuffered).
    pub fn wbufsize(&self) -> usize {
        self.wfile.capacity()
    }
}

impl<C: Connection> ErrorType for AsyncStreamRequest<'_, C> {
    type Error = Error<C::Error>;
}

impl<C: Connection> embedded_io_async::Read for AsyncStreamRequest<'_, C> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        AsyncStreamRequest::read(self, buf).await
    }
}

impl<C: Connection> embedded_io_async::BufRead for AsyncStreamRequest<'_, C> {
    async fn fill_buf(&mut self) -> Result<&[u8], Self::Error> {
        self.rfile.fill_buf(&mut self.io).await.map_err(flatten)
    }

    fn consume(&mut self, amt: usize) {
        self.rfile.consume_buffered(amt);
    }
}

impl<C: Connection> embedded_io_async::Write for AsyncStreamRequest<'_, C> {
    /// Takes all of `buf` (through the write buffer), so never a short write.
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.write_all(buf).await?;
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        AsyncStreamRequest::flush(self).await
    }
}
