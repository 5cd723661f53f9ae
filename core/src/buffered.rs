//! Buffered reading and writing with caller-owned storage, Python's `rfile`
//! and `wfile`, written once as async code over `embedded-io-async`: async
//! handlers await it, and blocking code drives it with
//! [`block_on`] over [`Blocking`] I/O ([`BufReader`], [`BufWriter`],
//! the blocking request).
//!
//! The storage is a slice the caller owns (an array on the stack, a
//! `static`, part of a heapless pool), so its capacity is the caller's
//! choice and nothing ever grows: a line longer than the maximum is
//! [`Error::LineTooLong`], not an allocation.

use embedded_io_async::{Read, Write};

use crate::block_on::block_on;
use crate::blocking_io::Blocking;
use crate::error::Error;

/// Read-side buffer state over borrowed storage. Separate from the reader so a
/// request can hold it next to a write buffer over the same connection.
#[derive(Debug)]
pub struct ReadBuffer<'b> {
    storage: &'b mut [u8],
    start: usize,
    end: usize,
}

impl<'b> ReadBuffer<'b> {
    /// A buffer over `storage`; an empty slice means unbuffered reads.
    pub fn new(storage: &'b mut [u8]) -> Self {
        Self {
            storage,
            start: 0,
            end: 0,
        }
    }

    /// Bytes read ahead from the transport and not yet returned.
    pub fn buffered(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    /// The buffer's capacity, Python's `rbufsize`.
    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Refills from `src` when empty. Returns the number of new bytes (0 = EOF).
    async fn fill<R: Read>(&mut self, src: &mut R) -> Result<usize, Error<R::Error>> {
        if self.start > 0 {
            self.storage.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = src.read(&mut self.storage[self.end..]).await?;
        self.end += n;
        Ok(n)
    }

    /// The buffered bytes, refilled from `src` first when there are none:
    /// empty only at EOF (or with no storage). `embedded-io-async`'s `fill_buf`.
    pub async fn fill_buf<R: Read>(&mut self, src: &mut R) -> Result<&[u8], Error<R::Error>> {
        if self.start == self.end && !self.storage.is_empty() {
            self.fill(src).await?;
        }
        Ok(&self.storage[self.start..self.end])
    }

    /// Marks `n` bytes of [`fill_buf`](Self::fill_buf)'s answer as read.
    pub fn consume_buffered(&mut self, n: usize) {
        self.consume(n);
    }

    /// Reads what is available (at least one byte unless EOF), like `read`.
    pub async fn read<R: Read>(
        &mut self,
        src: &mut R,
        out: &mut [u8],
    ) -> Result<usize, Error<R::Error>> {
        if out.is_empty() {
            return Ok(0);
        }
        if self.start == self.end {
            // A read larger than the buffer gains nothing from it.
            if out.len() >= self.storage.len() {
                return Ok(src.read(out).await?);
            }
            if self.fill(src).await? == 0 {
                return Ok(0);
            }
        }
        let n = (self.end - self.start).min(out.len());
        out[..n].copy_from_slice(&self.storage[self.start..self.start + n]);
        self.consume(n);
        Ok(n)
    }

    /// Fills `out` completely, or fails with [`Error::UnexpectedEof`].
    pub async fn read_exact<R: Read>(
        &mut self,
        src: &mut R,
        out: &mut [u8],
    ) -> Result<(), Error<R::Error>> {
        let mut done = 0;
        while done < out.len() {
            match self.read(src, &mut out[done..]).await? {
                0 => return Err(Error::UnexpectedEof),
                n => done += n,
            }
        }
        Ok(())
    }

    /// Reads one line, newline included, into `out`, Python's
    /// `readline(len(out))` with a hard limit. Returns its length: 0 at EOF,
    /// a line without a newline if the peer closed mid-line. A line that
    /// fills `out` without its newline fails with [`Error::LineTooLong`]
    /// (so does a last line of exactly `out.len()` bytes: a reader without
    /// read-ahead cannot see the EOF behind it without consuming a byte);
    /// the rest of the line stays unread, and the next call returns it (or
    /// [`discard_line`](Self::discard_line) skips it).
    pub async fn read_line<R: Read>(
        &mut self,
        src: &mut R,
        out: &mut [u8],
    ) -> Result<usize, Error<R::Error>> {
        let mut len = 0;
        loop {
            // Before reading: a byte read past a full `out` would be lost.
            if len == out.len() {
                return Err(Error::LineTooLong);
            }
            if self.start == self.end && !self.storage.is_empty() && self.fill(src).await? == 0 {
                return Ok(len);
            }
            if self.storage.is_empty() {
                // Unbuffered: a byte at a time, so nothing past the newline is consumed.
                let mut byte = [0u8; 1];
                if src.read(&mut byte).await? == 0 {
                    return Ok(len);
                }
                out[len] = byte[0];
                len += 1;
                if byte[0] == b'\n' {
                    return Ok(len);
                }
                continue;
            }
            let available = &self.storage[self.start..self.end];
            let room = out.len() - len;
            let (take, complete) = match available.iter().position(|&b| b == b'\n') {
                Some(i) if i < room => (i + 1, true),
                _ => (available.len().min(room), false),
            };
            out[len..len + take].copy_from_slice(&available[..take]);
            len += take;
            self.consume(take);
            if complete {
                return Ok(len);
            }
        }
    }

    /// Reads and drops everything up to and including the next newline (or
    /// to EOF): after [`Error::LineTooLong`], the rest of the overlong line.
    /// Returns how many bytes were dropped. Memory stays bounded whatever
    /// the line's length.
    pub async fn discard_line<R: Read>(&mut self, src: &mut R) -> Result<usize, Error<R::Error>> {
        let mut dropped = 0;
        let mut scratch = [0u8; 64];
        loop {
            // With no storage, a byte at a time through `read_line`'s own path.
            let n = match self.read_line(src, &mut scratch).await {
                Ok(n) => {
                    return Ok(dropped + n);
                }
                Err(Error::LineTooLong) => scratch.len(),
                Err(e) => return Err(e),
            };
            dropped += n;
        }
    }
}

/// Write-side buffer state over borrowed storage, Python's `wfile`.
///
/// An empty storage slice is Python's `wbufsize = 0`: every write goes to the
/// transport before it returns, so the peer has the bytes before `handle`
/// returns. Otherwise bytes wait until the buffer fills or [`flush`](Self::flush).
#[derive(Debug)]
pub struct WriteBuffer<'b> {
    storage: &'b mut [u8],
    len: usize,
}

impl<'b> WriteBuffer<'b> {
    /// A buffer over `storage`; an empty slice means unbuffered writes.
    pub fn new(storage: &'b mut [u8]) -> Self {
        Self { storage, len: 0 }
    }

    /// The buffer's capacity, Python's `wbufsize`.
    pub fn capacity(&self) -> usize {
        self.storage.len()
    }

    /// Bytes written but not yet sent.
    pub fn pending(&self) -> &[u8] {
        &self.storage[..self.len]
    }

    /// Writes all of `data` (Python's `sendall` through `wfile.write`).
    pub async fn write_all<W: Write>(
        &mut self,
        dst: &mut W,
        data: &[u8],
    ) -> Result<(), Error<W::Error>> {
        if self.len + data.len() > self.storage.len() {
            self.flush(dst).await?;
        }
        if data.len() >= self.storage.len() {
            return send_all(dst, data).await;
        }
        self.storage[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
        Ok(())
    }

    /// Sends every pending byte and flushes the transport.
    pub async fn flush<W: Write>(&mut self, dst: &mut W) -> Result<(), Error<W::Error>> {
        let pending = self.len;
        // Cleared first: a failed flush must not resend the same bytes forever.
        self.len = 0;
        send_all(dst, &self.storage[..pending]).await?;
        dst.flush().await?;
        Ok(())
    }
}

/// Writes every byte of `data`; a transport that takes none is [`Error::WriteZero`].
pub async fn send_all<W: Write>(dst: &mut W, mut data: &[u8]) -> Result<(), Error<W::Error>> {
    while !data.is_empty() {
        match dst.write(data).await? {
            0 => return Err(Error::WriteZero),
            n => data = &data[n..],
        }
    }
    Ok(())
}

/// A blocking buffered reader over any `embedded_io::Read`, with
/// caller-owned storage: [`ReadBuffer`] driven by [`block_on`].
///
/// ```
/// use socketserver_core::BufReader;
///
/// let mut storage = [0u8; 16];
/// let input: &[u8] = b"HELO there\nQUIT\n";
/// let mut reader = BufReader::new(input, &mut storage);
/// let mut line = [0u8; 32];
/// let n = reader.read_line(&mut line).unwrap();
/// assert_eq!(&line[..n], b"HELO there\n");
/// ```
#[derive(Debug)]
pub struct BufReader<'b, R> {
    inner: R,
    buf: ReadBuffer<'b>,
}

impl<'b, R: embedded_io::Read> BufReader<'b, R> {
    /// Wraps `inner`, reading ahead into `storage`.
    pub fn new(inner: R, storage: &'b mut [u8]) -> Self {
        Self {
            inner,
            buf: ReadBuffer::new(storage),
        }
    }

    /// See [`ReadBuffer::read_line`].
    pub fn read_line(&mut self, out: &mut [u8]) -> Result<usize, Error<R::Error>> {
        block_on(self.buf.read_line(&mut Blocking(&mut self.inner), out))
    }

    /// See [`ReadBuffer::discard_line`].
    pub fn discard_line(&mut self) -> Result<usize, Error<R::Error>> {
        block_on(self.buf.discard_line(&mut Blocking(&mut self.inner)))
    }

    /// See [`ReadBuffer::read_exact`].
    pub fn read_exact(&mut self, out: &mut [u8]) -> Result<(), Error<R::Error>> {
        block_on(self.buf.read_exact(&mut Blocking(&mut self.inner), out))
    }

    /// See [`ReadBuffer::read`].
    pub fn read(&mut self, out: &mut [u8]) -> Result<usize, Error<R::Error>> {
        block_on(self.buf.read(&mut Blocking(&mut self.inner), out))
    }

    /// The wrapped reader.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// The wrapped reader, mutably; reading from it skips the buffer.
    pub fn inner_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// Unwraps the reader; read-ahead bytes are dropped.
    pub fn into_inner(self) -> R {
        self.inner
    }
}

/// A blocking buffered writer over any `embedded_io::Write`, with
/// caller-owned storage: [`WriteBuffer`] driven by [`block_on`].
///
/// ```
/// use socketserver_core::BufWriter;
///
/// let mut storage = [0u8; 8];
/// let mut out = [0u8; 32];
/// let mut writer = BufWriter::new(&mut out[..], &mut storage);
/// writer.write_all(b"hello ").unwrap();
/// writer.write_all(b"world").unwrap();
/// writer.flush().unwrap();
/// ```
#[derive(Debug)]
pub struct BufWriter<'b, W> {
    inner: W,
    buf: WriteBuffer<'b>,
}

impl<'b, W: embedded_io::Write> BufWriter<'b, W> {
    /// Wraps `inner`, collecting writes in `storage` (empty: unbuffered).
    pub fn new(inner: W, storage: &'b mut [u8]) -> Self {
        Self {
            inner,
            buf: WriteBuffer::new(storage),
        }
    }

    /// See [`WriteBuffer::write_all`].
    pub fn write_all(&mut self, data: &[u8]) -> Result<(), Error<W::Error>> {
        block_on(self.buf.write_all(&mut Blocking(&mut self.inner), data))
    }

    /// See [`WriteBuffer::flush`].
    pub fn flush(&mut self) -> Result<(), Error<W::Error>> {
        block_on(self.buf.flush(&mut Blocking(&mut self.inner)))
    }

    /// The wrapped writer.
    pub fn inner(&self) -> &W {
        &self.inner
    }

    /// Flushes, then unwraps the writer.
    pub fn into_inner(mut self) -> Result<W, Error<W::Error>> {
        self.flush()?;
        Ok(self.inner)
    }
}
