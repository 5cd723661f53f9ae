//! A graceful stop on smoltcp (`Stop::shutdown_within`, `serve_until_stopped`):
//! the requests in flight finish within the grace period or are cut (RST),
//! under `Multiplexed` and `Sequential`, on smoltcp's `phy::Loopback` with
//! virtual time.

use std::cell::RefCell;
use std::pin::pin;
use std::time::Duration;

use smoltcp::iface::{SocketHandle, SocketStorage};
use smoltcp::socket::tcp;
use socketserver_core::time::{Clock, Instant};
use socketserver_core::{DefaultHooks, Echo, Multiplexed};
use socketserver_smoltcp::{
    Net, Stop, SynSlot, TcpStorage, serve_until_stopped, tcp_server, tcp_server_with,
};

mod support;

use support::*;

const POLL: Duration = Duration::from_millis(500);

/// Turns the stack and `serve` until `client` is connected and accepted.
fn connect_and_accept(
    stack: &TestStack<'_>,
    time: &Time,
    mut serve: impl FnMut() -> bool,
) -> SocketHandle {
    let peer = client(stack, 40001);
    let mut accepted = false;
    for _ in 0..20 {
        stack.borrow_mut().poll();
        accepted |= serve();
        time.advance(Duration::from_millis(1));
    }
    assert!(accepted, "the server took the connection");
    assert_eq!(state(stack, peer), tcp::State::Established);
    peer
}

/// What `client` received so far.
fn received(stack: &TestStack<'_>, client: SocketHandle) -> Vec<u8> {
    let mut got = Vec::new();
    let mut stack = stack.borrow_mut();
    let socket = stack.sockets_mut().get_mut::<tcp::Socket>(client);
    while socket.can_recv() {
        socket
            .recv(|bytes| {
                got.extend_from_slice(bytes);
                (bytes.len(), ())
            })
            .unwrap();
    }
    got
}

/// A multiplexed `Echo` server (two slots) on a loopback stack stopped by
/// `$stop`, and one client it has accepted: binds `$time`, `$stack`,
/// `$server` and `$peer` in the caller's scope (the storage they borrow
/// lives there too).
macro_rules! multiplexed_echo_with_client {
    ($stop:ident => $time:ident, $stack:ident, $server:ident, $peer:ident) => {
        let $time = Time::default();
        let mut slots = [SocketStorage::EMPTY; 4];
        let mut backlog = [SynSlot::EMPTY; 2];
        let mut storage = TcpStorage::<2, 512, 512>::new();
        let $stack = stack(&mut slots, &mut backlog, &$time);
        let $stack = RefCell::new($stack.into_inner().with_stop(&$stop));
        let mux = pin!(Multiplexed::<_, _, _, 2>::new(Echo::<64>));
        let mut $server = tcp_server_with(&$stack, PORT, &mut storage, mux, DefaultHooks).unwrap();
        let $peer = connect_and_accept(&$stack, &$time, || $server.serve_ready());
    };
}

#[test]
fn multiplexed_requests_still_open_after_the_grace_period_are_cut() {
    static STOP: Stop = Stop::new();
    // The client says nothing: its request waits to read, in flight.
    multiplexed_echo_with_client!(STOP => time, stack, server, peer);
    STOP.shutdown_within(Duration::from_millis(100));
    let asked = time.now();
    assert_eq!(serve_until_stopped(&mut server, POLL), Ok(false));
    let took = time.now().saturating_duration_since(asked);
    assert!(
        took >= Duration::from_millis(100) && took <= Duration::from_millis(130),
        "cut {took:?} after the stop, for a grace of 100 ms"
    );
    server.server_close();
    run(&stack, &time, 5, Duration::from_millis(1));
    assert_eq!(state(&stack, peer), tcp::State::Closed, "RST, not FIN");
}

#[test]
fn multiplexed_requests_that_finish_within_the_grace_period_end_cleanly() {
    static STOP: Stop = Stop::new();
    multiplexed_echo_with_client!(STOP => time, stack, server, peer);
    {
        // The request and the client's FIN leave after the stop is asked.
        let mut net = stack.borrow_mut();
        let socket = net.sockets_mut().get_mut::<tcp::Socket>(peer);
        socket.send_slice(b"last words").unwrap();
        socket.close();
    }
    STOP.shutdown_within(Duration::from_secs(5));
    let asked = time.now();
    assert_eq!(serve_until_stopped(&mut server, POLL), Ok(true));
    assert!(time.now().saturating_duration_since(asked) < Duration::from_secs(1));
    server.server_close();
    run(&stack, &time, 5, Duration::from_millis(1));
    assert_eq!(received(&stack, peer), b"last words");
    assert_ne!(state(&stack, peer), tcp::State::Closed, "a FIN, not an RST");
}

#[test]
fn a_sequential_request_blocked_past_the_grace_period_is_cut() {
    static STOP: Stop = Stop::new();
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 2];
    let mut storage = TcpStorage::<1, 512, 512>::new();
    let clock = time.clone();
    // The stop comes "from another thread" while the handler's read idles,
    // at 50 ms.
    let idle: Idler = Box::new(move |t: Option<Duration>| {
        clock.advance(t.unwrap_or(Duration::from_millis(20)));
        if clock.now() >= Instant::from_micros(50_000) {
            STOP.shutdown_within(Duration::from_millis(100));
        }
    });
    let stack = stack_with(&mut slots, &mut backlog, &time, idle);
    let stack = RefCell::new(stack.into_inner().with_stop(&STOP));
    let mut server = tcp_server(&stack, PORT, &mut storage, Echo::<64>).unwrap();
    let peer = client(&stack, 40001);
    // Accepts, then blocks in the handler's read until the cut.
    assert_eq!(serve_until_stopped(&mut server, POLL), Ok(true));
    let now = time.now();
    assert!(
        now >= Instant::from_micros(150_000) && now <= Instant::from_micros(200_000),
        "cut at {now:?}: 100 ms after the stop at 50 ms"
    );
    run(&stack, &time, 5, Duration::from_millis(1));
    assert_eq!(state(&stack, peer), tcp::State::Closed, "RST, not FIN");
}

#[test]
fn cut_in_flight_ends_the_grace_period_at_once() {
    static STOP: Stop = Stop::new();
    multiplexed_echo_with_client!(STOP => time, stack, server, peer);
    STOP.shutdown_within(Duration::from_secs(60));
    STOP.cut_in_flight();
    let asked = time.now();
    assert_eq!(serve_until_stopped(&mut server, POLL), Ok(false));
    assert!(time.now().saturating_duration_since(asked) < Duration::from_millis(30));
    server.server_close();
    run(&stack, &time, 5, Duration::from_millis(1));
    assert_eq!(state(&stack, peer), tcp::State::Closed, "RST");
}
