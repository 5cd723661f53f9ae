//! In-memory transports the fuzz targets share.

pub mod mux;

use socketserver_core::Connection;
use socketserver_core::embedded_io::{
    self, ErrorKind, ErrorType, Read, ReadReady, Write, WriteReady,
};
use socketserver_core::time::Duration;

/// The error of the in-memory transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemError(pub ErrorKind);

impl core::fmt::Display for MemError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "in-memory transport: {:?}", self.0)
    }
}

impl core::error::Error for MemError {}

impl embedded_io::Error for MemError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

/// A blocking connection over a byte slice (then EOF), each read and write
/// moving at most the next of `chunks` bytes (cycled; 0 counts as 1).
#[derive(Debug)]
pub struct MemStream<'a> {
    data: &'a [u8],
    pos: usize,
    chunks: &'a [u8],
    next: usize,
    sent: Vec<u8>,
}

impl<'a> MemStream<'a> {
    /// A connection whose peer sends `data`, then EOF.
    pub fn new(data: &'a [u8], chunks: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            chunks,
            next: 0,
            sent: Vec::new(),
        }
    }

    /// Bytes handed to the reader so far.
    pub fn delivered(&self) -> usize {
        self.pos
    }

    /// Bytes written so far.
    pub fn sent(&self) -> &[u8] {
        &self.sent
    }

    fn chunk(&mut self) -> usize {
        let chunk = self.chunks.get(self.next).copied().unwrap_or(u8::MAX);
        self.next = (self.next + 1) % self.chunks.len().max(1);
        usize::from(chunk.max(1))
    }
}

impl ErrorType for MemStream<'_> {
    type Error = MemError;
}

impl Read for MemStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, MemError> {
        // Ok(0) is EOF: a reader asking for nothing could take it for one.
        assert!(!buf.is_empty(), "a read of no bytes");
        let n = buf.len().min(self.chunk()).min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl Write for MemStream<'_> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, MemError> {
        assert!(!buf.is_empty(), "a write of no bytes");
        let n = buf.len().min(self.chunk());
        self.sent.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), MemError> {
        Ok(())
    }
}

impl ReadReady for MemStream<'_> {
    fn read_ready(&mut self) -> Result<bool, MemError> {
        Ok(true)
    }
}

impl WriteReady for MemStream<'_> {
    fn write_ready(&mut self) -> Result<bool, MemError> {
        Ok(true)
    }
}

impl Connection for MemStream<'_> {
    type Addr = u16;

    fn shutdown_write(&mut self) -> Result<(), MemError> {
        Ok(())
    }

    fn close(self) {}

    fn set_timeout(&mut self, _timeout: Option<Duration>) -> Result<(), MemError> {
        Ok(())
    }
}

/// Compact input decoding: one byte per opcode or small argument, so that
/// short inputs hold long event sequences and seeds can be written by hand
/// (derived `Arbitrary` spends 4 bytes per enum variant and reads
/// lengths from the end of the input).
pub mod decode {
    use arbitrary::{Result, Unstructured};

    /// The next byte, 0 once the input is spent.
    pub fn byte(u: &mut Unstructured<'_>) -> Result<u8> {
        u.arbitrary()
    }

    /// The next two bytes, little-endian.
    pub fn word(u: &mut Unstructured<'_>) -> Result<u16> {
        Ok(u16::from_le_bytes([byte(u)?, byte(u)?]))
    }

    /// A length byte (at most `max`), then that many bytes (fewer at the end).
    pub fn bytes(u: &mut Unstructured<'_>, max: usize) -> Result<Vec<u8>> {
        let n = usize::from(byte(u)?) % (max + 1);
        Ok(u.bytes(n.min(u.len()))?.to_vec())
    }
}
