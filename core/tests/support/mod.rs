//! An in-memory transport for testing core's state machines: connections are
//! byte queues, the listener is a queue of connections, the waiter sleeps in
//! short steps. Test-only code.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use socketserver_core::embedded_io::{
    self, ErrorKind, ErrorType, Read, ReadReady, Write, WriteReady,
};
use socketserver_core::time::{Clock, Duration, Instant};
use socketserver_core::{
    Accepted, Connection, DatagramSocket, Interest, Listener, Received, ServerHooks, ShutdownFlag,
    Wait,
};

/// The error of the in-memory transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MockError(pub ErrorKind);

impl core::fmt::Display for MockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "mock error: {:?}", self.0)
    }
}
impl core::error::Error for MockError {}
impl embedded_io::Error for MockError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

/// One side of an in-memory stream, shared by the test (the "client") and the server.
#[derive(Debug, Default)]
pub struct Pipe {
    /// Client to server bytes not yet read.
    pub to_server: VecDeque<u8>,
    /// The client sent EOF.
    pub client_eof: bool,
    /// Server to client bytes.
    pub to_client: Vec<u8>,
    /// The server half-closed.
    pub shut_write: bool,
    /// The server closed.
    pub closed: bool,
    /// Fail every read with this kind (a reset).
    pub fail_reads: Option<ErrorKind>,
    /// The waker a multiplexed server registered to learn of new bytes.
    pub waker: Option<core::task::Waker>,
    /// Non-blocking reads the server tried.
    pub reads_tried: usize,
}

impl Pipe {
    /// The client sends `data` (and EOF if `eof`), waking the server.
    pub fn send(pipe: &Arc<Mutex<Pipe>>, data: &[u8], eof: bool) {
        let mut p = pipe.lock().unwrap();
        p.to_server.extend(data.iter().copied());
        p.client_eof |= eof;
        if let Some(waker) = p.waker.take() {
            waker.wake();
        }
    }
}

/// The server's end of a pipe.
#[derive(Debug, Clone)]
pub struct MockConn {
    pub id: u32,
    pub pipe: Arc<Mutex<Pipe>>,
}

impl MockConn {
    fn pipe(&self) -> MutexGuard<'_, Pipe> {
        self.pipe.lock().unwrap()
    }
}

impl ErrorType for MockConn {
    type Error = MockError;
}

impl Read for MockConn {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, MockError> {
        let deadline = StdInstant::now() + StdDuration::from_secs(5);
        loop {
            {
                let mut p = self.pipe();
                if let Some(kind) = p.fail_reads {
                    return Err(MockError(kind));
                }
                if !p.to_server.is_empty() {
                    let n = buf.len().min(p.to_server.len());
                    for b in buf.iter_mut().take(n) {
                        *b = p.to_server.pop_front().unwrap();
                    }
                    return Ok(n);
                }
                if p.client_eof {
                    return Ok(0);
                }
            }
            if StdInstant::now() > deadline {
                return Err(MockError(ErrorKind::TimedOut));
            }
            std::thread::sleep(StdDuration::from_millis(1));
        }
    }
}

impl Write for MockConn {
    fn write(&mut self, buf: &[u8]) -> Result<usize, MockError> {
        let mut p = self.pipe();
        if p.shut_write || p.closed {
            return Err(MockError(ErrorKind::BrokenPipe));
        }
        p.to_client.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), MockError> {
        Ok(())
    }
}

impl ReadReady for MockConn {
    fn read_ready(&mut self) -> Result<bool, MockError> {
        let p = self.pipe();
        Ok(!p.to_server.is_empty() || p.client_eof || p.fail_reads.is_some())
    }
}

impl WriteReady for MockConn {
    fn write_ready(&mut self) -> Result<bool, MockError> {
        Ok(true)
    }
}

impl Connection for MockConn {
    type Addr = (&'static str, u16);
    fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, MockError> {
        let mut p = self.pipe();
        p.reads_tried += 1;
        if let Some(kind) = p.fail_reads {
            return Err(MockError(kind));
        }
        if !p.to_server.is_empty() {
            let n = buf.len().min(p.to_server.len());
            for b in buf.iter_mut().take(n) {
                *b = p.to_server.pop_front().unwrap();
            }
            return Ok(Some(n));
        }
        Ok(p.client_eof.then_some(0))
    }
    fn register_waker(&mut self, interest: Interest, waker: &core::task::Waker) {
        let mut p = self.pipe();
        let ready = !interest.is_read() || !p.to_server.is_empty() || p.client_eof;
        if ready {
            waker.wake_by_ref();
        } else {
            p.waker = Some(waker.clone());
        }
    }
    fn shutdown_write(&mut self) -> Result<(), MockError> {
        self.pipe().shut_write = true;
        Ok(())
    }
    fn close(self) {
        self.pipe().closed = true;
    }
    fn set_timeout(&mut self, _timeout: Option<Duration>) -> Result<(), MockError> {
        Ok(())
    }
}

/// The address every mock listener reports it listens on.
pub const LISTENER_ADDR: (&str, u16) = ("127.0.0.1", 8000);

/// The address every mock datagram socket reports it is bound to.
pub const DATAGRAM_ADDR: u16 = 9000;

/// A queue of connections waiting to be accepted.
#[derive(Debug, Clone, Default)]
pub struct MockListener {
    pub pending: Arc<Mutex<VecDeque<Accepted<MockConn>>>>,
    /// Accepts that fail (EMFILE-like) before the queue is served again.
    pub accept_errors: Arc<Mutex<u32>>,
    next_id: Arc<Mutex<u32>>,
}

impl MockListener {
    /// Queues a client that sends `input` (then EOF if `eof`); returns its pipe.
    pub fn connect(&self, input: &[u8], eof: bool) -> Arc<Mutex<Pipe>> {
        let pipe = Arc::new(Mutex::new(Pipe {
            to_server: input.iter().copied().collect(),
            client_eof: eof,
            ..Pipe::default()
        }));
        let mut id = self.next_id.lock().unwrap();
        *id += 1;
        let port = 40000 + *id as u16;
        self.pending.lock().unwrap().push_back(Accepted::new(
            MockConn {
                id: *id,
                pipe: pipe.clone(),
            },
            ("127.0.0.1", port),
        ));
        pipe
    }
}

impl ErrorType for MockListener {
    type Error = MockError;
}

impl Listener for MockListener {
    type Conn = MockConn;
    fn accept(&mut self) -> Result<Option<Accepted<MockConn>>, MockError> {
        let mut errors = self.accept_errors.lock().unwrap();
        if *errors > 0 {
            *errors -= 1;
            return Err(MockError(ErrorKind::OutOfMemory));
        }
        drop(errors);
        Ok(self.pending.lock().unwrap().pop_front())
    }
    fn local_addr(&self) -> (&'static str, u16) {
        LISTENER_ADDR
    }
}

/// Datagrams with their peer's port.
pub type Datagrams = Arc<Mutex<VecDeque<(Vec<u8>, u16)>>>;

/// A reply and the port it went to.
pub type Sent = (Vec<u8>, u16);

/// A datagram socket fed by the test.
#[derive(Debug, Clone, Default)]
pub struct MockDatagram {
    pub incoming: Datagrams,
    pub sent: Arc<Mutex<Vec<Sent>>>,
    /// Receives that fail before the queue is served again.
    pub recv_errors: Arc<Mutex<u32>>,
}

impl ErrorType for MockDatagram {
    type Error = MockError;
}

impl DatagramSocket for MockDatagram {
    type Addr = u16;
    fn recv_from(&mut self, buf: &mut [u8]) -> Result<Option<Received<u16>>, MockError> {
        let mut errors = self.recv_errors.lock().unwrap();
        if *errors > 0 {
            *errors -= 1;
            return Err(MockError(ErrorKind::Other));
        }
        drop(errors);
        let Some((data, addr)) = self.incoming.lock().unwrap().pop_front() else {
            return Ok(None);
        };
        let len = data.len().min(buf.len());
        buf[..len].copy_from_slice(&data[..len]);
        Ok(Some(Received {
            len,
            addr,
            truncated: data.len() > len,
        }))
    }
    fn send_to(&mut self, buf: &[u8], addr: &u16) -> Result<socketserver_core::Sent, MockError> {
        self.sent.lock().unwrap().push((buf.to_vec(), *addr));
        Ok(socketserver_core::Sent::Queued)
    }
    fn local_addr(&self) -> u16 {
        DATAGRAM_ADDR
    }
}

/// Sleeps in 1 ms steps until something is ready, the deadline passes or
/// shutdown is requested.
#[derive(Debug, Clone)]
pub struct MockWaiter {
    pub origin: StdInstant,
    pub flag: Arc<ShutdownFlag>,
    pub waits: Arc<Mutex<u32>>,
    /// Return after at most 1 ms, as a waiter allowed to wake early may.
    pub wake_early: bool,
}

impl Default for MockWaiter {
    fn default() -> Self {
        Self {
            origin: StdInstant::now(),
            flag: Arc::new(ShutdownFlag::new()),
            waits: Arc::default(),
            wake_early: false,
        }
    }
}

impl Clock for MockWaiter {
    fn now(&self) -> Instant {
        Instant::from_micros(self.origin.elapsed().as_micros() as u64)
    }
}

/// Something whose readiness the mock waiter can test.
pub trait MockReady {
    fn is_ready(&self) -> bool;
}
impl MockReady for MockListener {
    fn is_ready(&self) -> bool {
        !self.pending.lock().unwrap().is_empty()
    }
}
impl MockReady for MockDatagram {
    fn is_ready(&self) -> bool {
        !self.incoming.lock().unwrap().is_empty()
    }
}

impl<S: MockReady> Wait<S> for MockWaiter {
    type Error = MockError;
    fn wait(&mut self, server: Option<&S>, deadline: Option<Instant>) -> Result<(), MockError> {
        *self.waits.lock().unwrap() += 1;
        loop {
            if self.flag.is_requested() || server.is_some_and(|s| s.is_ready()) {
                return Ok(());
            }
            if deadline.is_some_and(|d| self.now() >= d) {
                return Ok(());
            }
            std::thread::sleep(StdDuration::from_millis(1));
            if self.wake_early {
                return Ok(());
            }
        }
    }
    fn shutdown_flag(&self) -> &ShutdownFlag {
        &self.flag
    }
}

/// A shared, ordered record of hook and handler calls.
#[derive(Debug, Clone, Default)]
pub struct Journal(pub Arc<Mutex<Vec<String>>>);

impl Journal {
    pub fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }
    pub fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
    pub fn count(&self, event: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.as_str() == event)
            .count()
    }
}

/// Hooks that write every call to a journal; `refuse` makes verify_request say no.
#[derive(Debug, Clone, Default)]
pub struct RecordingHooks {
    pub journal: Journal,
    pub refuse: bool,
}

impl<A: core::fmt::Debug> ServerHooks<A> for RecordingHooks {
    fn server_activate(&self) {
        self.journal.push("server_activate");
    }
    fn verify_request(&self, _client: &A) -> bool {
        self.journal.push("verify_request");
        !self.refuse
    }
    fn process_request(&self, _client: &A) {
        self.journal.push("process_request");
    }
    fn finish_request(&self, _client: &A) {
        self.journal.push("finish_request");
    }
    fn handle_error(&self, _client: &A, error: &dyn core::error::Error) {
        self.journal.push(format!("handle_error({error})"));
    }
    fn shutdown_request(&self, _client: &A) {
        self.journal.push("shutdown_request");
    }
    fn close_request(&self, _client: &A) {
        self.journal.push("close_request");
    }
    fn handle_timeout(&self) {
        self.journal.push("handle_timeout");
    }
    fn service_actions(&self) {
        self.journal.push("service_actions");
    }
    fn server_close(&self) {
        self.journal.push("server_close");
    }
}
