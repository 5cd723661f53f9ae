//! The request lifecycle over the in-memory transport: Python's call order,
//! refusals, failures in each handler step, timeouts, datagrams.

mod support;

use socketserver_core::time::Duration;
use socketserver_core::{
    Connection, DatagramRequest, DatagramRequestHandler, Datagrams, Error, Handled, HandlerError,
    Sequential, Server, StreamRequest, StreamRequestHandler,
};
use support::{Journal, MockDatagram, MockListener, MockWaiter, RecordingHooks};

/// Which step of the handler fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailIn {
    Nothing,
    Setup,
    Handle,
    Finish,
}

/// Echoes one read, like the seed's handler, and journals each step.
#[derive(Debug, Clone)]
struct JournalingEcho {
    journal: Journal,
    fail: FailIn,
}

impl<C: Connection> StreamRequestHandler<C> for JournalingEcho {
    fn setup(&mut self, _req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        self.journal.push("setup");
        if self.fail == FailIn::Setup {
            Err(Error::Handler("setup failed"))
        } else {
            Ok(())
        }
    }
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        self.journal.push("handle");
        let mut buf = [0u8; 1024];
        let n = req.read(&mut buf)?;
        self.journal
            .push(format!("recv()->{:?}", String::from_utf8_lossy(&buf[..n])));
        req.write_all(&buf[..n])?;
        if self.fail == FailIn::Handle {
            Err(Error::Handler("handle failed"))
        } else {
            Ok(())
        }
    }
    fn finish(&mut self, _req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        self.journal.push("finish");
        if self.fail == FailIn::Finish {
            Err(Error::Handler("finish failed"))
        } else {
            Ok(())
        }
    }
}

fn server(
    fail: FailIn,
    refuse: bool,
) -> (
    Server<MockListener, MockWaiter, Sequential<JournalingEcho>, RecordingHooks>,
    MockListener,
    Journal,
) {
    let journal = Journal::default();
    let listener = MockListener::default();
    let hooks = RecordingHooks {
        journal: journal.clone(),
        refuse,
    };
    let handler = JournalingEcho {
        journal: journal.clone(),
        fail,
    };
    let mut server = Server::new(
        listener.clone(),
        MockWaiter::default(),
        Sequential::new(handler),
        hooks,
    );
    server.set_timeout(Some(Duration::from_secs(5)));
    (server, listener, journal)
}

#[test]
fn one_request_follows_the_seed_order() {
    let (mut server, listener, journal) = server(FailIn::Nothing, false);
    let pipe = listener.connect(b"Hello, world", true);
    assert_eq!(server.handle_request().unwrap(), Handled::Request);
    assert_eq!(
        journal.events(),
        [
            "server_activate",
            "verify_request",
            "process_request",
            "finish_request",
            "setup",
            "handle",
            "recv()->\"Hello, world\"",
            "finish",
            "shutdown_request",
            "close_request",
        ]
    );
    let pipe = pipe.lock().unwrap();
    assert_eq!(pipe.to_client, b"Hello, world");
    assert!(
        pipe.shut_write,
        "the client must read EOF: half-close before close"
    );
    assert!(pipe.closed);
}

#[test]
fn refused_request_builds_no_handler_and_is_shut_down_once() {
    let (mut server, listener, journal) = server(FailIn::Nothing, true);
    let pipe = listener.connect(b"Hello", true);
    assert_eq!(server.handle_request().unwrap(), Handled::Request);
    assert_eq!(
        journal.events(),
        [
            "server_activate",
            "verify_request",
            "shutdown_request",
            "close_request"
        ]
    );
    assert_eq!(journal.count("shutdown_request"), 1);
    let pipe = pipe.lock().unwrap();
    assert!(
        pipe.to_client.is_empty(),
        "a refused client gets no data, only EOF"
    );
    assert!(pipe.shut_write && pipe.closed);
}

#[test]
fn setup_failure_skips_handle_and_finish() {
    let (mut server, listener, journal) = server(FailIn::Setup, false);
    listener.connect(b"x", true);
    server.handle_request().unwrap();
    assert_eq!(
        journal.events()[4..],
        [
            "setup",
            "handle_error(handler failed: setup failed)",
            "shutdown_request",
            "close_request"
        ]
    );
}

#[test]
fn handle_failure_still_runs_finish_then_reports() {
    let (mut server, listener, journal) = server(FailIn::Handle, false);
    let pipe = listener.connect(b"abc", true);
    server.handle_request().unwrap();
    assert_eq!(
        journal.events()[4..],
        [
            "setup",
            "handle",
            "recv()->\"abc\"",
            "finish",
            "handle_error(handler failed: handle failed)",
            "shutdown_request",
            "close_request"
        ]
    );
    assert!(pipe.lock().unwrap().closed);
}

#[test]
fn finish_failure_replaces_handle_success() {
    let (mut server, listener, journal) = server(FailIn::Finish, false);
    listener.connect(b"abc", true);
    server.handle_request().unwrap();
    assert_eq!(
        journal.count("handle_error(handler failed: finish failed)"),
        1
    );
    assert_eq!(journal.count("shutdown_request"), 1);
}

#[test]
fn server_keeps_serving_after_failures_and_resets() {
    let (mut server, listener, journal) = server(FailIn::Handle, false);
    let reset = listener.connect(b"", false);
    reset.lock().unwrap().fail_reads =
        Some(socketserver_core::embedded_io::ErrorKind::ConnectionReset);
    let good = listener.connect(b"second", true);
    server.handle_request().unwrap();
    server.handle_request().unwrap();
    // A peer that vanished ends its request quietly (a debug trace, not a report).
    assert!(
        !journal
            .events()
            .iter()
            .any(|e| e.starts_with("handle_error(transport error"))
    );
    assert!(reset.lock().unwrap().closed);
    assert_eq!(good.lock().unwrap().to_client, b"second");
    assert_eq!(journal.count("close_request"), 2);
}

#[test]
fn handle_request_times_out_and_calls_handle_timeout() {
    let (mut server, _listener, journal) = server(FailIn::Nothing, false);
    let hooks = RecordingHooks {
        journal: journal.clone(),
        refuse: false,
    };
    let (listener, waiter, strategy, _) = {
        let s = server;
        s.into_parts()
    };
    server = Server::new(listener, waiter, strategy, hooks);
    server.set_timeout(Some(Duration::from_millis(50)));
    let started = std::time::Instant::now();
    assert_eq!(server.handle_request().unwrap(), Handled::TimedOut);
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(50),
        "returned early: {took:?}"
    );
    assert!(
        took < std::time::Duration::from_millis(1000),
        "returned late: {took:?}"
    );
    assert_eq!(journal.count("handle_timeout"), 1);
    assert_eq!(
        journal.count("service_actions"),
        0,
        "handle_request never calls service_actions"
    );
}

/// Replies `got:` and the packet; fails after writing when the packet is `err`.
#[derive(Debug, Clone)]
struct GotHandler;

impl<A: core::fmt::Debug> DatagramRequestHandler<A> for GotHandler {
    fn handle(&mut self, req: &mut DatagramRequest<'_, A>) -> Result<(), HandlerError> {
        req.write_all(b"got:")?;
        let packet = req.packet();
        req.write_all(packet)?;
        if packet == b"err" {
            Err(Error::Handler("bad packet"))
        } else {
            Ok(())
        }
    }
}

/// A `GotHandler` datagram server over a mock socket.
type GotServer =
    Server<Datagrams<MockDatagram, Vec<u8>>, MockWaiter, Sequential<GotHandler>, RecordingHooks>;

/// A `GotHandler` datagram server over a mock socket: 8-byte packets.
fn datagram_server() -> (GotServer, MockDatagram, Journal) {
    let journal = Journal::default();
    let socket = MockDatagram::default();
    let hooks = RecordingHooks {
        journal: journal.clone(),
        refuse: false,
    };
    let server = Server::new(
        Datagrams::new(socket.clone(), vec![0u8; 8], vec![0u8; 64]),
        MockWaiter::default(),
        Sequential::new(GotHandler),
        hooks,
    );
    (server, socket, journal)
}

#[test]
fn datagram_requests_get_one_reply_each_even_on_failure() {
    let (mut server, socket, journal) = datagram_server();
    server.set_timeout(Some(Duration::from_millis(20)));
    socket.incoming.lock().unwrap().extend([
        (b"hi".to_vec(), 1),
        (b"err".to_vec(), 2),
        (b"0123456789".to_vec(), 3),
    ]);
    for _ in 0..3 {
        assert_eq!(server.handle_request().unwrap(), Handled::Request);
    }
    assert_eq!(server.handle_request().unwrap(), Handled::TimedOut);
    let sent = socket.sent.lock().unwrap().clone();
    assert_eq!(
        sent,
        [
            (b"got:hi".to_vec(), 1),
            (b"got:err".to_vec(), 2),
            (b"got:01234567".to_vec(), 3)
        ],
        "one reply per datagram, the failed one included, the long one truncated to max_packet_size"
    );
    assert_eq!(journal.count("handle_error(handler failed: bad packet)"), 1);
}

#[test]
fn accept_errors_pause_accepting_instead_of_spinning() {
    let (mut server, listener, journal) = server(FailIn::Nothing, false);
    *listener.accept_errors.lock().unwrap() = 3;
    let pipe = listener.connect(b"after the errors", true);
    let started = std::time::Instant::now();
    let mut handled = 0;
    while handled < 1 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "never served"
        );
        if server.handle_request().unwrap() == Handled::Request {
            handled += 1;
        }
    }
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(150),
        "three 50 ms pauses, took {took:?}"
    );
    assert_eq!(pipe.lock().unwrap().to_client, b"after the errors");
    assert!(
        *server.waiter().waits.lock().unwrap() < 50,
        "waited in pauses, not in a spin"
    );
    assert_eq!(journal.count("handle_error"), 0);
}

#[test]
fn a_datagram_receive_error_ends_the_pass_without_pausing() {
    let (mut server, socket, journal) = datagram_server();
    *socket.recv_errors.lock().unwrap() = 3;
    socket
        .incoming
        .lock()
        .unwrap()
        .push_back((b"hi".to_vec(), 1));
    // Each pass meets one error and ends; the fourth takes the datagram. A
    // listener would pause 50 ms after each error (an EMFILE stays
    // readable); a datagram socket's error is consumed by reporting it.
    let started = std::time::Instant::now();
    let passes = (0..4).filter(|_| server.serve_ready()).count();
    assert_eq!(passes, 1, "only the last pass took a datagram");
    assert_eq!(*socket.sent.lock().unwrap(), [(b"got:hi".to_vec(), 1)]);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(50),
        "no pause: {:?}",
        started.elapsed()
    );
    assert_eq!(journal.count("handle_error"), 0);
}
