//! An in-memory transport for the multiplexed strategy: connections are
//! byte queues the target fills, with a write window it can close (a peer
//! that stops reading) and a reset; the clock is virtual and the waiter
//! never blocks. Its blocking `read` and `write` panic: a multiplexed
//! request must only ever try.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::task::Waker;

use socketserver_core::embedded_io::{ErrorKind, ErrorType, Read, ReadReady, Write, WriteReady};
use socketserver_core::time::{Clock, Duration, Instant};
use socketserver_core::{
    Accepted, AsyncStreamRequest, AsyncStreamRequestHandler, Connection, Error, Interest, Listener,
    ServerHooks, ShutdownFlag, Wait,
};

use crate::MemError;

/// Both ends of one connection.
#[derive(Debug, Default)]
pub struct Pipe {
    /// Client to server bytes not yet read.
    pub to_server: VecDeque<u8>,
    /// The client half-closed.
    pub eof: bool,
    /// The client reset the connection: every call fails.
    pub reset: bool,
    /// Server to client bytes.
    pub to_client: Vec<u8>,
    /// Bytes the server may still write (`None`: any number).
    pub window: Option<usize>,
    /// The server half-closed (FIN).
    pub shut_write: bool,
    /// Times the server closed it.
    pub closed: u32,
    /// Times the server reset it.
    pub aborted: u32,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

impl Pipe {
    /// Whether the server is done with it.
    pub fn is_ended(&self) -> bool {
        self.closed + self.aborted > 0
    }

    fn readable(&self) -> bool {
        self.reset || self.eof || !self.to_server.is_empty()
    }

    fn writable(&self) -> bool {
        self.reset || self.window != Some(0)
    }

    /// Wakes whoever waits to read.
    pub fn wake_reader(&mut self) {
        if let Some(waker) = self.read_waker.take() {
            waker.wake();
        }
    }

    /// Wakes whoever waits to write.
    pub fn wake_writer(&mut self) {
        if let Some(waker) = self.write_waker.take() {
            waker.wake();
        }
    }
}

/// The server's end of a pipe.
#[derive(Debug, Clone)]
pub struct MuxConn {
    pub id: u32,
    pub pipe: Rc<RefCell<Pipe>>,
}

impl ErrorType for MuxConn {
    type Error = MemError;
}

impl Read for MuxConn {
    fn read(&mut self, _buf: &mut [u8]) -> Result<usize, MemError> {
        panic!("a multiplexed request made a blocking read");
    }
}

impl Write for MuxConn {
    fn write(&mut self, _buf: &[u8]) -> Result<usize, MemError> {
        panic!("a multiplexed request made a blocking write");
    }

    fn flush(&mut self) -> Result<(), MemError> {
        Ok(())
    }
}

impl ReadReady for MuxConn {
    fn read_ready(&mut self) -> Result<bool, MemError> {
        Ok(self.pipe.borrow().readable())
    }
}

impl WriteReady for MuxConn {
    fn write_ready(&mut self) -> Result<bool, MemError> {
        Ok(self.pipe.borrow().writable())
    }
}

impl Connection for MuxConn {
    type Addr = u32;

    fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, MemError> {
        let mut p = self.pipe.borrow_mut();
        assert!(!p.is_ended(), "a read after the end");
        if p.reset {
            return Err(MemError(ErrorKind::ConnectionReset));
        }
        if !p.to_server.is_empty() {
            let n = buf.len().min(p.to_server.len());
            for (b, byte) in buf.iter_mut().zip(p.to_server.drain(..n)) {
                *b = byte;
            }
            return Ok(Some(n));
        }
        Ok(p.eof.then_some(0))
    }

    fn try_write(&mut self, buf: &[u8]) -> Result<Option<usize>, MemError> {
        let mut p = self.pipe.borrow_mut();
        assert!(!p.is_ended(), "a write after the end");
        if p.reset {
            return Err(MemError(ErrorKind::ConnectionReset));
        }
        assert!(!p.shut_write, "a write after the half-close");
        let n = buf.len().min(p.window.unwrap_or(usize::MAX));
        if n == 0 && !buf.is_empty() {
            return Ok(None);
        }
        p.to_client.extend_from_slice(&buf[..n]);
        if let Some(window) = p.window.as_mut() {
            *window -= n;
        }
        Ok(Some(n))
    }

    fn register_waker(&mut self, interest: Interest, waker: &Waker) {
        let mut p = self.pipe.borrow_mut();
        if interest.is_read() {
            if p.readable() {
                waker.wake_by_ref();
            } else {
                p.read_waker = Some(waker.clone());
            }
        }
        if interest.is_write() {
            if p.writable() {
                waker.wake_by_ref();
            } else {
                p.write_waker = Some(waker.clone());
            }
        }
    }

    fn shutdown_write(&mut self) -> Result<(), MemError> {
        self.pipe.borrow_mut().shut_write = true;
        Ok(())
    }

    fn close(self) {
        self.pipe.borrow_mut().closed += 1;
    }

    fn abort(self) {
        self.pipe.borrow_mut().aborted += 1;
    }

    fn set_timeout(&mut self, _timeout: Option<Duration>) -> Result<(), MemError> {
        Ok(())
    }
}

/// Clients waiting to be accepted.
#[derive(Debug, Clone, Default)]
pub struct MuxListener {
    pub pending: Rc<RefCell<VecDeque<MuxConn>>>,
}

impl ErrorType for MuxListener {
    type Error = MemError;
}

impl Listener for MuxListener {
    type Conn = MuxConn;

    fn accept(&mut self) -> Result<Option<Accepted<MuxConn>>, MemError> {
        Ok(self.pending.borrow_mut().pop_front().map(|c| {
            let id = c.id;
            Accepted::new(c, id)
        }))
    }

    fn local_addr(&self) -> u32 {
        0
    }
}

/// A virtual clock and a wait that never blocks (the target calls `poll`).
#[derive(Debug, Default)]
pub struct MuxWaiter {
    pub micros: Rc<Cell<u64>>,
    pub flag: ShutdownFlag,
}

impl Clock for MuxWaiter {
    fn now(&self) -> Instant {
        Instant::from_micros(self.micros.get())
    }
}

impl Wait<MuxListener> for MuxWaiter {
    type Error = MemError;

    fn wait(
        &mut self,
        _server: Option<&MuxListener>,
        _deadline: Option<Instant>,
    ) -> Result<(), MemError> {
        Ok(())
    }

    fn shutdown_flag(&self) -> &ShutdownFlag {
        &self.flag
    }
}

/// What happened to one client, as hooks and handler saw it.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub process_request: u32,
    pub finish_request: u32,
    pub setup: u32,
    pub finish: u32,
    pub handle_error: u32,
    pub shutdown_request: u32,
    pub close_request: u32,
}

/// Per client id.
pub type Journal = Rc<RefCell<Vec<Counts>>>;

fn with(journal: &Journal, id: u32, f: impl FnOnce(&mut Counts)) {
    let mut j = journal.borrow_mut();
    let id = id as usize;
    if j.len() <= id {
        j.resize(id + 1, Counts::default());
    }
    f(&mut j[id]);
}

/// Hooks that count their calls per client.
#[derive(Debug, Clone, Default)]
pub struct CountingHooks(pub Journal);

impl ServerHooks<u32> for CountingHooks {
    fn process_request(&self, client: &u32) {
        with(&self.0, *client, |c| c.process_request += 1);
    }
    fn finish_request(&self, client: &u32) {
        with(&self.0, *client, |c| c.finish_request += 1);
    }
    fn handle_error(&self, client: &u32, _error: &dyn core::error::Error) {
        with(&self.0, *client, |c| c.handle_error += 1);
    }
    fn shutdown_request(&self, client: &u32) {
        with(&self.0, *client, |c| c.shutdown_request += 1);
    }
    fn close_request(&self, client: &u32) {
        with(&self.0, *client, |c| c.close_request += 1);
    }
}

/// A handler that counts its `setup` and `finish` per client.
#[derive(Debug, Clone)]
pub struct Counted<H> {
    pub inner: H,
    pub journal: Journal,
}

impl<H: AsyncStreamRequestHandler<MuxConn>> AsyncStreamRequestHandler<MuxConn> for Counted<H> {
    async fn setup(
        &mut self,
        req: &mut AsyncStreamRequest<'_, MuxConn>,
    ) -> Result<(), Error<MemError>> {
        with(&self.journal, *req.client_address(), |c| c.setup += 1);
        self.inner.setup(req).await
    }

    async fn handle(
        &mut self,
        req: &mut AsyncStreamRequest<'_, MuxConn>,
    ) -> Result<(), Error<MemError>> {
        self.inner.handle(req).await
    }

    async fn finish(
        &mut self,
        req: &mut AsyncStreamRequest<'_, MuxConn>,
    ) -> Result<(), Error<MemError>> {
        let result = self.inner.finish(req).await;
        with(&self.journal, *req.client_address(), |c| c.finish += 1);
        result
    }
}
