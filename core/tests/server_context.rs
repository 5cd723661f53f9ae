//! A handler reaches its server (Python's `self.server`) over the
//! in-memory transport: `req.server().server_address()` is the listener's
//! or socket's address, and `req.server().shutdown()` stops
//! `serve_forever` after the current pass, from a request served inline
//! (`Sequential`) or polled in a slot (`Multiplexed`), for streams and
//! datagrams; a stop asked while the server drains, after its loop ended,
//! is stale and does not end the next loop. The loop's poll interval is
//! 30 s: only the request can stop it within the test's bound.

mod support;
#[path = "support/where_handler.rs"]
mod where_handler;
use where_handler::{Where, WhereDatagram};

use core::pin::pin;
use std::sync::mpsc;
use std::thread;
use std::time::Duration as StdDuration;

use socketserver_core::time::{Clock, Duration};
use socketserver_core::{
    Async, AsyncStreamRequest, AsyncStreamRequestHandler, Connection, Datagrams, Error,
    Multiplexed, Sequential, Server, StrategyFor,
};
use support::{
    DATAGRAM_ADDR, Journal, LISTENER_ADDR, MockConn, MockDatagram, MockListener, MockWaiter, Pipe,
    RecordingHooks,
};

const POLL_INTERVAL: Duration = Duration::from_secs(30);
/// How long `serve_forever` may take to return after the handler asked.
const STOP_BOUND: StdDuration = StdDuration::from_secs(5);

fn hooks() -> RecordingHooks {
    RecordingHooks {
        journal: Journal::default(),
        refuse: false,
    }
}

/// Runs `serve` (which builds a server and runs its `serve_forever`) in a
/// thread; returns whether the loop returned within [`STOP_BOUND`]. A
/// loop that does not is stopped through `waiter`'s flag.
fn stops_in_time(waiter: &MockWaiter, serve: impl FnOnce() + Send + 'static) -> bool {
    let (returned, returns) = mpsc::channel();
    let serving = thread::spawn(move || {
        serve();
        let _ = returned.send(());
    });
    let in_time = returns.recv_timeout(STOP_BOUND).is_ok();
    if !in_time {
        waiter.flag.request();
    }
    serving.join().expect("serving thread");
    in_time
}

fn out(pipe: &std::sync::Arc<std::sync::Mutex<Pipe>>) -> String {
    String::from_utf8_lossy(&pipe.lock().unwrap().to_client).into_owned()
}

/// Serves a stream server with `strategy` until it stops.
fn serve_stream<P>(listener: MockListener, waiter: MockWaiter, strategy: P)
where
    P: StrategyFor<MockListener, RecordingHooks>,
{
    let mut server = Server::new(listener, waiter, strategy, hooks());
    assert_eq!(*server.server_address(), LISTENER_ADDR);
    server.serve_forever(POLL_INTERVAL).unwrap();
}

#[test]
fn sequential_handler_reads_the_address_and_its_stop_ends_the_loop_after_the_pass() {
    let listener = MockListener::default();
    let waiter = MockWaiter::default();
    let asking = listener.connect(b"WHERE\nSTOP\n", true);
    let waiting = listener.connect(b"WHERE\n", true);
    let (l, w) = (listener.clone(), waiter.clone());
    assert!(stops_in_time(&waiter, move || {
        serve_stream(l, w, Sequential::new(Async(Where)));
    }));
    assert_eq!(out(&asking), format!("{LISTENER_ADDR:?}\nBYE\n"));
    assert_eq!(out(&waiting), "", "a client after the stop is not taken");
    assert_eq!(listener.pending.lock().unwrap().len(), 1);
}

#[test]
fn multiplexed_handler_reads_the_address_and_stops_the_loop_on_its_first_poll() {
    let listener = MockListener::default();
    let waiter = MockWaiter::default();
    let asking = listener.connect(b"WHERE\nSTOP\n", true);
    let (l, w) = (listener.clone(), waiter.clone());
    assert!(stops_in_time(&waiter, move || {
        let mux = pin!(Multiplexed::<MockConn, _, _, 2>::new(Where));
        serve_stream(l, w, mux);
    }));
    assert_eq!(out(&asking), format!("{LISTENER_ADDR:?}\nBYE\n"));
}

#[test]
fn multiplexed_handler_stops_the_loop_from_a_later_poll() {
    let listener = MockListener::default();
    // Returns from each wait within 1 ms, as a waiter woken by the slot would.
    let waiter = MockWaiter {
        wake_early: true,
        ..MockWaiter::default()
    };
    let asking = listener.connect(b"WHERE\n", false);
    let other = listener.connect(b"WHERE\n", false);
    let (l, w) = (listener.clone(), waiter.clone());
    let client = asking.clone();
    let stopper = thread::spawn(move || {
        // Once both are served, the first asks to stop while the other waits.
        while out(&client).is_empty() {
            thread::sleep(StdDuration::from_millis(1));
        }
        Pipe::send(&client, b"STOP\n", false);
    });
    assert!(stops_in_time(&waiter, move || {
        let mux = pin!(Multiplexed::<MockConn, _, _, 2>::new(Where));
        serve_stream(l, w, mux);
    }));
    stopper.join().unwrap();
    assert_eq!(out(&asking), format!("{LISTENER_ADDR:?}\nBYE\n"));
    assert_eq!(out(&other), format!("{LISTENER_ADDR:?}\n"));
}

#[test]
fn datagram_handler_reads_the_address_and_its_stop_ends_the_loop_after_the_pass() {
    let socket = MockDatagram::default();
    let waiter = MockWaiter::default();
    socket.incoming.lock().unwrap().extend([
        (b"WHERE".to_vec(), 5),
        (b"STOP".to_vec(), 6),
        (b"WHERE".to_vec(), 7),
    ]);
    let (s, w) = (socket.clone(), waiter.clone());
    assert!(stops_in_time(&waiter, move || {
        let source = Datagrams::new(s, [0u8; 64], [0u8; 64]);
        let mut server = Server::new(source, w, Sequential::new(WhereDatagram), hooks());
        assert_eq!(*server.server_address(), DATAGRAM_ADDR);
        server.serve_forever(POLL_INTERVAL).unwrap();
    }));
    let sent = socket.sent.lock().unwrap().clone();
    assert_eq!(
        sent,
        [
            (format!("{DATAGRAM_ADDR:?}").into_bytes(), 5),
            (b"BYE".to_vec(), 6),
        ]
    );
    assert_eq!(
        socket.incoming.lock().unwrap().len(),
        1,
        "a datagram after the stop is not taken"
    );
}

/// Runs `server`'s loop until `client` got an answer, then stops it from
/// outside (the request stays in flight).
fn stop_from_outside_once_answered<P>(
    server: &mut Server<MockListener, MockWaiter, P, RecordingHooks>,
    waiter: &MockWaiter,
    client: &std::sync::Arc<std::sync::Mutex<Pipe>>,
) where
    P: StrategyFor<MockListener, RecordingHooks>,
{
    let (flag, answered) = (waiter.flag.clone(), client.clone());
    let stopper = thread::spawn(move || {
        while out(&answered).is_empty() {
            thread::sleep(StdDuration::from_millis(1));
        }
        flag.request();
    });
    server.serve_forever(POLL_INTERVAL).unwrap();
    stopper.join().unwrap();
}

/// A new loop of `server` serves until it is stopped 200 ms later: no stale
/// stop ends it at once.
fn assert_next_loop_serves_until_stopped<P>(
    server: &mut Server<MockListener, MockWaiter, P, RecordingHooks>,
    waiter: &MockWaiter,
) where
    P: StrategyFor<MockListener, RecordingHooks>,
{
    let flag = waiter.flag.clone();
    let stopper = thread::spawn(move || {
        thread::sleep(StdDuration::from_millis(200));
        flag.request();
    });
    let started = std::time::Instant::now();
    server.serve_forever(POLL_INTERVAL).unwrap();
    let served_for = started.elapsed();
    stopper.join().unwrap();
    assert!(
        served_for >= StdDuration::from_millis(200),
        "a stale stop ended the next loop after {served_for:?}"
    );
}

#[test]
fn a_stop_asked_after_the_loop_ended_is_stale_and_the_next_loop_serves() {
    let listener = MockListener::default();
    let waiter = MockWaiter {
        wake_early: true,
        ..MockWaiter::default()
    };
    let client = listener.connect(b"WHERE\n", false);
    let mux = pin!(Multiplexed::<MockConn, _, _, 2>::new(Where));
    let mut server = Server::new(listener.clone(), waiter.clone(), mux, hooks());

    // The first loop is stopped from outside while the request is in flight.
    stop_from_outside_once_answered(&mut server, &waiter, &client);

    // The request asks to stop while the server drains it: no loop runs.
    Pipe::send(&client, b"STOP\n", true);
    let deadline = server.waiter().now().saturating_add(Duration::from_secs(5));
    assert!(server.drain(deadline).unwrap());
    assert_eq!(out(&client), format!("{LISTENER_ADDR:?}\nBYE\n"));

    // The next loop serves until it is stopped, not at once.
    assert_next_loop_serves_until_stopped(&mut server, &waiter);
}

/// Echoes lines; when its connection fails (a cut), asks the server to stop.
#[derive(Clone)]
struct StopWhenCut;

impl<C: Connection> AsyncStreamRequestHandler<C> for StopWhenCut {
    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut line = [0u8; 64];
        loop {
            match req.read_line(&mut line).await {
                Ok(0) => return Ok(()),
                Ok(n) => req.write_all(&line[..n]).await?,
                Err(e) => {
                    req.server().shutdown();
                    return Err(e);
                }
            }
        }
    }
}

#[test]
fn a_stop_asked_by_a_request_cut_after_the_loop_is_stale_too() {
    let listener = MockListener::default();
    let waiter = MockWaiter {
        wake_early: true,
        ..MockWaiter::default()
    };
    let client = listener.connect(b"hi\n", false);
    let mux = pin!(Multiplexed::<MockConn, _, _, 2>::new(StopWhenCut));
    let mut server = Server::new(listener.clone(), waiter.clone(), mux, hooks());

    stop_from_outside_once_answered(&mut server, &waiter, &client);

    // Cut after the loop: the request's error path asks to stop.
    server.cut_in_flight();

    assert_next_loop_serves_until_stopped(&mut server, &waiter);
}
