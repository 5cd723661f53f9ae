//! Python's lifecycle on real sockets: verify_request refusal, handle_request
//! timeouts, shutdown latency, handle_error, concurrency, bind failures.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::embedded_io::{Error as _, ErrorKind};
use socketserver::{
    Connection, DatagramRequest, DatagramRequestHandler, Echo, Error, Handled, HandlerError,
    Sequential, ServerHooks, StreamRequest, StreamRequestHandler,
};
use socketserver_std::{
    Forking, ForkingTCPServer, Options, TCPServer, Threading, ThreadingTCPServer,
    ThreadingUnixStreamServer, UDPServer,
};
use support::behaviour;

/// Counts hook calls and records handle_error reports.
#[derive(Debug, Clone, Default)]
struct Counting {
    refuse: bool,
    shutdown_requests: Arc<AtomicUsize>,
    timeouts: Arc<AtomicUsize>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl<A: std::fmt::Debug> ServerHooks<A> for Counting {
    fn verify_request(&self, _client: &A) -> bool {
        !self.refuse
    }
    fn shutdown_request(&self, _client: &A) {
        self.shutdown_requests.fetch_add(1, Ordering::SeqCst);
    }
    fn handle_timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::SeqCst);
    }
    fn handle_error(&self, client: &A, error: &dyn std::error::Error) {
        self.errors
            .lock()
            .unwrap()
            .push(format!("{client:?}: {error}"));
    }
}

/// Counts handlers built.
#[derive(Clone, Default)]
struct Built(Arc<AtomicUsize>);

impl<C: Connection> StreamRequestHandler<C> for Built {
    fn handle(&mut self, _req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn verify_request_refusal_gives_eof_builds_no_handler_shuts_down_once() {
    let hooks = Counting {
        refuse: true,
        ..Counting::default()
    };
    let built = Built::default();
    let mut server =
        TCPServer::with_hooks("127.0.0.1:0", Sequential::new(built.clone()), hooks.clone())
            .unwrap();
    let mut client = TcpStream::connect(server.server_address()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(server.handle_request().unwrap(), Handled::Request);
    let mut buf = Vec::new();
    client.read_to_end(&mut buf).unwrap();
    assert!(buf.is_empty(), "the refused client reads EOF");
    assert_eq!(built.0.load(Ordering::SeqCst), 0, "no handler built");
    assert_eq!(hooks.shutdown_requests.load(Ordering::SeqCst), 1);
}

#[test]
fn handle_request_timeout_calls_handle_timeout() {
    let hooks = Counting::default();
    let options = Options::default().timeout(Some(Duration::from_millis(200)));
    let mut server = TCPServer::with_options(
        "127.0.0.1:0",
        Sequential::new(Echo::<64>),
        hooks.clone(),
        options,
    )
    .unwrap();
    let start = Instant::now();
    assert_eq!(server.handle_request().unwrap(), Handled::TimedOut);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_millis(600),
        "{took:?}"
    );
    assert_eq!(hooks.timeouts.load(Ordering::SeqCst), 1);
}

#[test]
fn forking_timeout_defaults_to_300_seconds() {
    assert_eq!(socketserver_std::FORKING_TIMEOUT, Duration::from_secs(300));
}

#[test]
fn shutdown_from_another_thread_returns_within_100ms() {
    let mut server = ThreadingTCPServer::new("127.0.0.1:0", Threading::new(Echo::<64>)).unwrap();
    let stop = server.shutdown_handle();
    // A long poll interval: only the wake-up can make shutdown fast.
    let serving = thread::spawn(move || server.serve_forever(Duration::from_secs(30)));
    assert!(support::eventually(Duration::from_secs(5), || stop.is_serving()));
    thread::sleep(Duration::from_millis(50));
    let start = Instant::now();
    stop.shutdown();
    let latency = start.elapsed();
    serving.join().unwrap().unwrap();
    eprintln!("shutdown latency: {latency:?}");
    assert!(
        latency < Duration::from_millis(100),
        "shutdown took {latency:?}"
    );
}

#[test]
fn shutdown_before_serving_stops_the_first_loop_and_stale_shutdown_is_dropped() {
    let mut server = TCPServer::new("127.0.0.1:0", Sequential::new(Echo::<64>)).unwrap();
    server.shutdown(); // no loop runs: returns at once
    server.serve_forever(Duration::from_secs(30)).unwrap(); // returns at once
    server.shutdown(); // stale: dropped
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever(Duration::from_secs(30)));
    assert!(support::eventually(Duration::from_secs(5), || stop.is_serving()));
    stop.shutdown();
    serving.join().unwrap().unwrap();
}

/// Signals that it runs, waits for the gate, then panics.
#[derive(Clone)]
struct PanicsWhenReleased {
    entered: std::sync::mpsc::SyncSender<()>,
    gate: Arc<Mutex<std::sync::mpsc::Receiver<()>>>,
}

impl<C: Connection> StreamRequestHandler<C> for PanicsWhenReleased {
    fn handle(&mut self, _req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let _ = self.entered.send(());
        let _ = self.gate.lock().unwrap().recv();
        panic!("released");
    }
}

#[test]
fn a_panic_through_a_sync_loop_never_leaves_shutdown_waiting() {
    use std::sync::mpsc;
    let (entered_tx, entered) = mpsc::sync_channel(1);
    let (release, gate) = mpsc::channel();
    let handler = PanicsWhenReleased {
        entered: entered_tx,
        gate: Arc::new(Mutex::new(gate)),
    };
    let mut server = TCPServer::new("127.0.0.1:0", Sequential::new(handler)).unwrap();
    let addr = *server.server_address();
    let stop = server.shutdown_handle();
    // Sequential does not catch panics: like Python's BaseException, the panic
    // leaves serve_forever.
    let serving = thread::spawn(move || server.serve_forever(Duration::from_secs(30)));
    let _client = TcpStream::connect(addr).unwrap();
    entered.recv_timeout(Duration::from_secs(5)).unwrap();
    // A shutdown() already waiting for the loop when the panic ends it.
    let (done_tx, done) = mpsc::channel();
    let waiting_stop = stop.clone();
    thread::spawn(move || {
        waiting_stop.shutdown();
        let _ = done_tx.send(());
    });
    // Let it start waiting (the loop is busy in the handler).
    thread::sleep(Duration::from_millis(50));
    release.send(()).unwrap();
    assert!(serving.join().is_err(), "the panic leaves serve_forever");
    assert!(
        done.recv_timeout(Duration::from_secs(5)).is_ok(),
        "the waiting shutdown() was never woken"
    );
    assert!(!stop.is_serving());
    // A later shutdown() is stale: it returns at once.
    let (late_tx, late) = mpsc::channel();
    thread::spawn(move || {
        stop.shutdown();
        let _ = late_tx.send(());
    });
    assert!(
        late.recv_timeout(Duration::from_secs(5)).is_ok(),
        "a shutdown() after the panic hung"
    );
}

/// A handler that fails or panics on request.
#[derive(Clone)]
struct Failing {
    panic: bool,
}

impl<C: Connection> StreamRequestHandler<C> for Failing {
    fn handle(&mut self, _req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        if self.panic {
            panic!("boom");
        }
        Err(Error::Handler("boom"))
    }
}

#[test]
fn handler_errors_and_panics_reach_handle_error_and_the_server_goes_on() {
    for panic in [false, true] {
        let hooks = Counting::default();
        let mut server = ThreadingTCPServer::with_hooks(
            "127.0.0.1:0",
            Threading::new(Failing { panic }),
            hooks.clone(),
        )
        .unwrap();
        let addr = *server.server_address();
        for _ in 0..2 {
            let mut c = TcpStream::connect(addr).unwrap();
            server.handle_request().unwrap();
            let mut buf = Vec::new();
            c.read_to_end(&mut buf).unwrap();
        }
        server.server_close();
        let errors = hooks.errors.lock().unwrap().clone();
        assert_eq!(errors.len(), 2, "{errors:?}");
        let want = if panic {
            "panicked: boom"
        } else {
            "handler failed: boom"
        };
        assert!(
            errors
                .iter()
                .all(|e| e.starts_with("127.0.0.1:") && e.contains(want)),
            "{errors:?}"
        );
        assert_eq!(hooks.shutdown_requests.load(Ordering::SeqCst), 2);
    }
}

#[test]
fn default_handle_error_writes_pythons_report() {
    // With the `log` feature (on for tests) the report goes through `log`.
    struct Capture(Mutex<Vec<String>>);
    impl log::Log for Capture {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, record: &log::Record<'_>) {
            if record.level() == log::Level::Error {
                self.0.lock().unwrap().push(record.args().to_string());
            }
        }
        fn flush(&self) {}
    }
    static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));
    log::set_logger(&CAPTURE).unwrap();
    log::set_max_level(log::LevelFilter::Error);
    let mut server =
        TCPServer::new("127.0.0.1:0", Sequential::new(Failing { panic: false })).unwrap();
    let c = TcpStream::connect(server.server_address()).unwrap();
    let port = c.local_addr().unwrap().port();
    server.handle_request().unwrap();
    let reports = CAPTURE.0.lock().unwrap().clone();
    let dashes = "-".repeat(40);
    let want = format!(
        "{dashes}\nException occurred during processing of request from 127.0.0.1:{port}\nhandler failed: boom\n{dashes}"
    );
    assert!(reports.contains(&want), "{reports:?}");
}

/// Sleeps, then echoes: makes serial and concurrent service measurable.
#[derive(Clone)]
struct Slow;

impl<C: Connection> StreamRequestHandler<C> for Slow {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        thread::sleep(Duration::from_millis(200));
        Echo::<64>.handle(req)
    }
}

#[test]
fn sixteen_clients_overlap_with_threading_and_serialize_with_sync() {
    let mut threaded = ThreadingTCPServer::new("127.0.0.1:0", Threading::new(Slow)).unwrap();
    let addr = *threaded.server_address();
    let stop = threaded.shutdown_handle();
    let serving = thread::spawn(move || threaded.serve_forever(Duration::from_millis(500)));
    let t = behaviour::concurrent_round_trips(&behaviour::tcp(addr), 16, b"hello").unwrap();
    stop.shutdown();
    serving.join().unwrap().unwrap();
    eprintln!("threading, 16 clients x 200 ms: {:?}", t.elapsed);
    assert!(
        t.elapsed < Duration::from_millis(1200),
        "threading overlapped: {:?}",
        t.elapsed
    );

    let mut sync = TCPServer::new("127.0.0.1:0", Sequential::new(Slow)).unwrap();
    let addr = *sync.server_address();
    let stop = sync.shutdown_handle();
    let serving = thread::spawn(move || sync.serve_forever(Duration::from_millis(500)));
    let t = behaviour::concurrent_round_trips(&behaviour::tcp(addr), 8, b"hello").unwrap();
    stop.shutdown();
    serving.join().unwrap().unwrap();
    eprintln!("sync, 8 clients x 200 ms: {:?}", t.elapsed);
    assert!(
        t.elapsed >= Duration::from_millis(1500),
        "sync serialized: {:?}",
        t.elapsed
    );
}

#[test]
fn forking_clients_overlap() {
    let _fork = support::fork_lock();
    let mut server = ForkingTCPServer::new("127.0.0.1:0", Forking::new(Slow)).unwrap();
    let addr = *server.server_address();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || {
        server.serve_forever(Duration::from_millis(500)).unwrap();
        server.server_close();
    });
    // One client at a time is sent (no open client ends for children to
    // inherit), but the 200 ms handlers of all 8 run at once.
    let start = Instant::now();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"x").unwrap();
            c.shutdown(Shutdown::Write).unwrap();
            c
        })
        .collect();
    for mut c in clients {
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).unwrap();
        assert_eq!(buf, b"x");
    }
    let took = start.elapsed();
    stop.shutdown();
    serving.join().unwrap();
    eprintln!("forking, 8 clients x 200 ms: {took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
}

#[test]
fn bind_failure_returns_the_os_error() {
    // The descriptor side of this is checked in std_leaks.rs, which runs alone.
    let taken = TCPServer::new("127.0.0.1:0", Sequential::new(Echo::<64>)).unwrap();
    let err = TCPServer::new(*taken.server_address(), Sequential::new(Echo::<64>)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
}

#[test]
fn server_address_reports_the_real_port_and_reuse_address_is_off_by_default() {
    let server = TCPServer::new("127.0.0.1:0", Sequential::new(Echo::<64>)).unwrap();
    assert_ne!(server.server_address().port(), 0);
    assert!(!server.socket().unwrap().reuse_address().unwrap());
    let options = Options::default()
        .allow_reuse_address(true)
        .allow_reuse_port(true);
    let server = TCPServer::with_options(
        "127.0.0.1:0",
        Sequential::new(Echo::<64>),
        socketserver::DefaultHooks,
        options,
    )
    .unwrap();
    assert!(server.socket().unwrap().reuse_address().unwrap());
    assert!(server.socket().unwrap().reuse_port().unwrap());
}

#[test]
fn unbound_server_binds_later() {
    let mut unbound = TCPServer::unbound(
        "127.0.0.1:0",
        Sequential::new(Echo::<64>),
        socketserver::DefaultHooks,
        Options::default(),
    )
    .unwrap();
    assert_eq!(unbound.server_address().port(), 0);
    unbound.socket().set_reuse_address(true).unwrap();
    unbound.server_bind().unwrap();
    let mut server = unbound.server_activate().unwrap();
    assert_ne!(server.server_address().port(), 0);
    assert!(server.fileno() >= 0);
    server.server_close();
    assert_eq!(server.fileno(), -1);
}

/// Writes nothing: the reply is an empty datagram.
#[derive(Clone)]
struct Silent;

impl<A: std::fmt::Debug> DatagramRequestHandler<A> for Silent {
    fn handle(&mut self, _req: &mut DatagramRequest<'_, A>) -> Result<(), HandlerError> {
        Ok(())
    }
}

#[test]
fn datagram_handler_that_writes_nothing_sends_an_empty_reply() {
    let mut server = UDPServer::new("127.0.0.1:0", Sequential::new(Silent)).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .send_to(b"anything", server.server_address())
        .unwrap();
    server.handle_request().unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = client.recv_from(&mut buf).unwrap();
    assert_eq!((n, from), (0, *server.server_address()));
}

/// Python's `StreamRequestHandler.timeout`: reads a line with a 300 ms
/// per-connection timeout and echoes it; records the kind of a failed read.
#[derive(Clone, Default)]
struct LineWithTimeout(Arc<Mutex<Vec<ErrorKind>>>);

const HANDLER_TIMEOUT: Duration = Duration::from_millis(300);

impl<C: Connection> StreamRequestHandler<C> for LineWithTimeout {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut line = [0u8; 64];
        let n = req.read_line(&mut line).inspect_err(|e| {
            self.0.lock().unwrap().push(e.kind());
        })?;
        req.write_all(&line[..n])
    }

    fn timeout(&self) -> Option<Duration> {
        Some(HANDLER_TIMEOUT)
    }
}

/// The `handle_error` reports, as text (the hook sees a `dyn Error`).
#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<String>>>);

impl<A: std::fmt::Debug> ServerHooks<A> for Reports {
    fn handle_error(&self, _client: &A, error: &dyn std::error::Error) {
        self.0.lock().unwrap().push(error.to_string());
    }
}

/// A client that sends nothing: its handler's read fails with a TimedOut
/// error, which reaches `handle_error`, and the request is cut: a TCP client
/// reads a reset (never a clean EOF: the request did not complete), a Unix
/// one, whose transport has no reset, EOF; a client that sends a line in
/// time is then served. Returns how long the silent client waited.
fn silent_client_times_out(
    target: &dyn behaviour::StreamTarget,
    handler: &LineWithTimeout,
    reports: &Reports,
    serve: &mut dyn FnMut(),
    tcp: bool,
) -> Duration {
    let mut silent = target.connect().unwrap();
    let start = Instant::now();
    serve();
    let mut got = Vec::new();
    let read = silent.read_to_end(&mut got);
    let waited = start.elapsed();
    assert!(got.is_empty(), "{got:?}");
    if tcp {
        let err = read.expect_err("a reset after the timeout, not EOF");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    } else {
        read.expect("EOF after the timeout");
    }
    assert!(
        support::eventually(Duration::from_secs(5), || reports.0.lock().unwrap().len()
            == 1),
        "handle_error was not called"
    );
    assert_eq!(*handler.0.lock().unwrap(), [ErrorKind::TimedOut]);
    let report = reports.0.lock().unwrap()[0].clone();
    assert!(report.contains("timed out"), "{report}");

    let mut talker = target.connect().unwrap();
    talker.write_all(b"in time\n").unwrap();
    serve();
    let got = behaviour::read_to_eof(&mut *talker).expect("echo");
    assert_eq!(got, b"in time\n");
    assert_eq!(
        reports.0.lock().unwrap().len(),
        1,
        "no error for the second"
    );
    waited
}

#[test]
fn handler_timeout_fails_a_blocked_read_reaches_handle_error_and_the_server_goes_on() {
    // Sequential over TCP: handle_request returns once the read has timed out.
    let (handler, reports) = (LineWithTimeout::default(), Reports::default());
    let mut server = TCPServer::with_hooks(
        "127.0.0.1:0",
        Sequential::new(handler.clone()),
        reports.clone(),
    )
    .unwrap();
    let target = behaviour::tcp(*server.server_address());
    let waited = silent_client_times_out(
        &target,
        &handler,
        &reports,
        &mut || {
            assert_eq!(server.handle_request().unwrap(), Handled::Request);
        },
        true,
    );
    eprintln!("sync tcp: reset after {waited:?}");
    assert!(
        waited >= HANDLER_TIMEOUT && waited < HANDLER_TIMEOUT * 4,
        "{waited:?}"
    );

    // Threading over a Unix stream, under serve_forever.
    let (handler, reports) = (LineWithTimeout::default(), Reports::default());
    let path = support::temp_socket("handler-timeout");
    let mut server = ThreadingUnixStreamServer::with_hooks(
        &path,
        Threading::new(handler.clone()),
        reports.clone(),
    )
    .unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever(Duration::from_millis(500)));
    let waited = silent_client_times_out(
        &behaviour::unix(&path),
        &handler,
        &reports,
        &mut || {},
        false,
    );
    stop.shutdown();
    serving.join().unwrap().unwrap();
    let _ = std::fs::remove_file(&path);
    eprintln!("threading unix: EOF after {waited:?}");
    assert!(
        waited >= HANDLER_TIMEOUT && waited < HANDLER_TIMEOUT * 4,
        "{waited:?}"
    );
}

#[test]
fn a_stale_unix_socket_file_is_replaced_on_request_and_a_live_one_never() {
    use socketserver_std::{SocketStreamServer, UnixStreamServer};
    type Server = UnixStreamServer<Echo<64>>;
    let path = support::temp_socket("stale");
    // A server that is gone leaves its socket file behind.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    // Python's default: the bind fails.
    let err = Server::new(&path, Sequential::new(Echo::<64>)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);

    // Asked to: the stale file is replaced and the server serves.
    let replace = Options::default().remove_stale_unix_socket(true);
    let live: Server = SocketStreamServer::with_options(
        &path,
        Sequential::new(Echo::<64>),
        socketserver::DefaultHooks,
        replace.clone(),
    )
    .expect("a stale socket file is replaced");

    // A live server's path is never taken over, even when asked.
    let err = SocketStreamServer::<_, Sequential<Echo<64>>>::with_options(
        &path,
        Sequential::new(Echo::<64>),
        socketserver::DefaultHooks,
        replace,
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    assert!(
        std::os::unix::net::UnixStream::connect(&path).is_ok(),
        "still live"
    );
    drop(live);
    let _ = std::fs::remove_file(&path);
}
