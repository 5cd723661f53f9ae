//! Echo handlers: the RFC 862 service, and the handlers the examples and the
//! cross-backend behaviour suite run everywhere.

use crate::error::{Error, HandlerError};
use crate::handler::{DatagramRequestHandler, NonBlockingHandler, Progress, StreamRequestHandler};
use crate::request::{DatagramRequest, StreamRequest};
use crate::transport::{Connection, Interest};

/// Echoes every byte as it arrives until the client's EOF.
///
/// `CHUNK` is the size of the stack buffer each read uses.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo<const CHUNK: usize = 1024>;

impl<C: Connection, const CHUNK: usize> StreamRequestHandler<C> for Echo<CHUNK> {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut chunk = [0u8; CHUNK];
        loop {
            let n = req.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            req.write_all(&chunk[..n])?;
            // Buffered or not, the peer must see each chunk without waiting for EOF.
            req.flush()?;
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

/// A non-blocking echo: reads into a `BUF`-byte ring when readable, writes it
/// back when writable, and is done after the client's EOF once all is sent.
#[derive(Debug, Clone)]
pub struct NonBlockingEcho<const BUF: usize = 1024> {
    pending: heapless::Deque<u8, BUF>,
    peer_closed: bool,
}

impl<const BUF: usize> Default for NonBlockingEcho<BUF> {
    fn default() -> Self {
        Self {
            pending: heapless::Deque::new(),
            peer_closed: false,
        }
    }
}

impl<C: Connection, const BUF: usize> NonBlockingHandler<C> for NonBlockingEcho<BUF> {
    fn poll(&mut self, conn: &mut C) -> Result<Progress, Error<C::Error>> {
        loop {
            let mut moved = false;
            if !self.pending.is_empty() && conn.write_ready()? {
                let (front, _) = self.pending.as_slices();
                let n = conn.write(front)?;
                if n == 0 {
                    return Err(Error::WriteZero);
                }
                for _ in 0..n {
                    self.pending.pop_front();
                }
                moved = true;
            }
            let room = BUF - self.pending.len();
            if !self.peer_closed && room > 0 && conn.read_ready()? {
                let mut chunk = [0u8; 256];
                let want = room.min(chunk.len());
                let n = conn.read(&mut chunk[..want])?;
                if n == 0 {
                    self.peer_closed = true;
                } else {
                    for &b in &chunk[..n] {
                        // Cannot fail: `want` never exceeds the free room.
                        let _ = self.pending.push_back(b);
                    }
                }
                moved = true;
            }
            if self.peer_closed && self.pending.is_empty() {
                return Ok(Progress::Done);
            }
            if !moved {
                return Ok(Progress::Continue);
            }
        }
    }

    fn interest(&self) -> Interest {
        match (
            self.pending.is_empty(),
            self.peer_closed || self.pending.len() == BUF,
        ) {
            (true, _) => Interest::Read,
            (false, true) => Interest::Write,
            (false, false) => Interest::ReadWrite,
        }
    }
}
