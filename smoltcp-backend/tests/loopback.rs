//! Pool, close and timeout behaviour on smoltcp's `phy::Loopback`: the
//! clients are smoltcp sockets on the same stack, time is virtual (every idle
//! advances it), so these need no root and no real network.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use embedded_io::{Error as _, ErrorKind, Read};
use smoltcp::iface::{SocketHandle, SocketStorage};
use smoltcp::socket::{tcp, udp};
use smoltcp::wire::{IpAddress, IpEndpoint};
use socketserver_core::time::{Clock, Instant};
use socketserver_core::{
    Connection, DatagramSocket, DefaultHooks, Echo, Listener, Sent, Sequential, Server,
};
use socketserver_smoltcp::{
    Error, FIN_WAIT_UNDER_PRESSURE, Net, STUCK_SEND_QUEUE, StackTcpListener, StackUdpSocket, Stop,
    SynSlot, TcpConfig, TcpStorage, UdpStorage, Waiter,
};

mod support;

use support::*;

#[test]
fn closing_a_listener_resets_waiting_clients_and_frees_its_sockets() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 8];
    let mut backlog = [SynSlot::EMPTY; 4];
    let mut pool = TcpStorage::<2, 512, 512>::new();
    let mut pool2 = TcpStorage::<2, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let early = client(&stack, 40001);
    run(&stack, &time, 10, Duration::from_millis(1));
    assert_eq!(state(&stack, early), tcp::State::Established);
    assert!(listener.is_ready());
    assert_eq!(socket_count(&stack), 3);

    drop(listener);
    run(&stack, &time, 10, Duration::from_millis(1));
    assert_eq!(
        state(&stack, early),
        tcp::State::Closed,
        "the unaccepted connection is reset"
    );
    assert_eq!(socket_count(&stack), 1, "the pool sockets left the set");

    let late = client(&stack, 40002);
    run(&stack, &time, 10, Duration::from_millis(1));
    assert_eq!(state(&stack, late), tcp::State::Closed, "refused, not hung");

    // Binding the port again makes a pool of the same size.
    let listener = StackTcpListener::bind(&stack, PORT, pool2.sockets()).unwrap();
    assert_eq!(socket_count(&stack), 4);
    listener.close();
    run(&stack, &time, 2, Duration::from_millis(1));
    assert_eq!(socket_count(&stack), 2);
}

#[test]
fn an_accepted_connection_outlives_its_closed_listener_then_leaves() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 8];
    let mut backlog = [SynSlot::EMPTY; 4];
    let mut pool = TcpStorage::<1, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let mut listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let peer = client(&stack, 40001);
    run(&stack, &time, 10, Duration::from_millis(1));
    let conn = listener.accept().unwrap().expect("a connection").conn;
    drop(listener);
    run(&stack, &time, 5, Duration::from_millis(1));
    assert_eq!(state(&stack, peer), tcp::State::Established, "still served");
    assert_eq!(socket_count(&stack), 2);
    drop(conn);
    stack
        .borrow_mut()
        .sockets_mut()
        .get_mut::<tcp::Socket>(peer)
        .close();
    run(&stack, &time, 20, Duration::from_millis(1));
    assert_eq!(
        socket_count(&stack),
        1,
        "the socket left with its connection"
    );
}

#[test]
fn a_failed_bind_adds_nothing() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 3];
    let mut backlog = [SynSlot::EMPTY; 4];
    let mut big = TcpStorage::<4, 256, 256>::new();
    let mut fits = TcpStorage::<3, 256, 256>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let err = StackTcpListener::bind(&stack, PORT, big.sockets()).unwrap_err();
    assert_eq!(err, Error::SocketSetFull);
    assert_eq!(socket_count(&stack), 0, "rolled back");
    let listener = StackTcpListener::bind(&stack, PORT, fits.sockets()).unwrap();
    assert_eq!(socket_count(&stack), 3);
    drop(listener);
}

#[test]
fn a_handler_timeout_ends_with_fin_not_rst() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 4];
    let mut pool = TcpStorage::<1, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let mut listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let (mut conn, peer) = accepted(&stack, &mut listener, &time);
    conn.set_timeout(Some(Duration::from_millis(50))).unwrap();
    let err = conn.read(&mut [0; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    drop(conn);
    run(&stack, &time, 10, Duration::from_millis(1));
    assert_eq!(
        state(&stack, peer),
        tcp::State::CloseWait,
        "the client reads EOF (FIN), as after Python's handle_error"
    );
}

#[test]
fn a_cut_wait_still_resets() {
    static STOP: Stop = Stop::new();
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 4];
    let mut pool = TcpStorage::<1, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let stack = RefCell::new(stack.into_inner().with_stop(&STOP));
    let mut listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let (mut conn, peer) = accepted(&stack, &mut listener, &time);
    STOP.cut_in_flight();
    let err = conn.read(&mut [0; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    drop(conn);
    run(&stack, &time, 10, Duration::from_millis(1));
    assert_eq!(state(&stack, peer), tcp::State::Closed, "RST");
}

#[test]
fn fin_wait_2_is_cut_short_while_clients_wait() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 4];
    let mut pool = TcpStorage::<1, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let mut listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let (conn, _lingering) = accepted(&stack, &mut listener, &time);
    drop(conn); // FIN; the client never closes its side
    run(&stack, &time, 10, Duration::from_millis(1));
    let waiting = client(&stack, 40002);
    run(&stack, &time, 10, Duration::from_millis(1));
    assert_eq!(state(&stack, waiting), tcp::State::SynSent, "held");
    assert_eq!(stack.borrow().held_requests(), 1);
    run(&stack, &time, 20, FIN_WAIT_UNDER_PRESSURE / 10);
    assert_eq!(
        state(&stack, waiting),
        tcp::State::Established,
        "served well before the 10 s fin_timeout"
    );
    assert!(time.now() < Instant::from_micros(5_000_000));
}

#[test]
fn fin_wait_2_keeps_fin_timeout_without_waiting_clients() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 4];
    let mut pool = TcpStorage::<1, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let mut listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let (conn, lingering) = accepted(&stack, &mut listener, &time);
    drop(conn);
    run(&stack, &time, 30, Duration::from_millis(100));
    assert_eq!(state(&stack, lingering), tcp::State::CloseWait);
    let pool_socket = stack
        .borrow()
        .sockets()
        .iter()
        .filter_map(|(_, s)| match s {
            smoltcp::socket::Socket::Tcp(t) if t.local_endpoint().is_some() => Some(t.state()),
            _ => None,
        })
        .find(|s| *s == tcp::State::FinWait2);
    assert!(pool_socket.is_some(), "still in FIN-WAIT-2 after 3 s");
    assert_eq!(
        TcpConfig::DEFAULT.fin_timeout,
        Some(Duration::from_secs(10))
    );
}

#[test]
fn udp_send_never_blocks_and_a_stuck_queue_is_dropped() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 4];
    let mut server_storage = UdpStorage::<2, 64>::new();
    let mut peer_storage = UdpStorage::<4, 256>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let mut server = StackUdpSocket::bind(&stack, PORT, server_storage.socket()).unwrap();
    let mut peer = StackUdpSocket::bind(&stack, 9000, peer_storage.socket()).unwrap();
    // Nobody answers neighbor discovery for .50: its replies stay queued.
    let nowhere = IpEndpoint::new(IpAddress::v4(192, 168, 69, 50), 9);
    server.send_to(b"one", &nowhere).unwrap();
    server.send_to(b"two", &nowhere).unwrap();
    let before = time.now();
    let full = server.send_to(b"three", &nowhere).unwrap();
    assert_eq!(full, Sent::Dropped, "a full queue drops, it does not wait");
    assert!(
        time.now().saturating_duration_since(before) < Duration::from_millis(10),
        "no blocking wait"
    );

    time.advance(STUCK_SEND_QUEUE);
    let to_peer = IpEndpoint::new(IP, 9000);
    server.send_to(b"hello", &to_peer).unwrap();
    assert_eq!(server.dropped_bytes(), 6, "\"one\" and \"two\"");
    // smoltcp keeps the socket silent for 1 s after a failed discovery.
    run(&stack, &time, 30, Duration::from_millis(100));
    let mut buf = [0; 16];
    let got = peer.recv_from(&mut buf).unwrap().expect("delivered");
    assert_eq!(&buf[..got.len], b"hello");
    assert_eq!(got.addr.port, PORT);
}

#[test]
fn closing_a_udp_socket_frees_its_port() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 1];
    let mut backlog = [SynSlot::EMPTY; 1];
    let mut first = UdpStorage::<2, 64>::new();
    let mut second = UdpStorage::<2, 64>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let socket = StackUdpSocket::bind(&stack, PORT, first.socket()).unwrap();
    socket.close();
    assert_eq!(socket_count(&stack), 0);
    let again = StackUdpSocket::bind(&stack, PORT, second.socket()).unwrap();
    assert_eq!(socket_count(&stack), 1);
    drop(again);
    assert_eq!(socket_count(&stack), 0);
    let _ = udp::PacketMetadata::EMPTY;
}

#[test]
fn poll_asks_for_another_turn_when_a_server_moved() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 1];
    let mut backlog = [SynSlot::EMPTY; 1];
    let stack = stack(&mut slots, &mut backlog, &time);
    assert_eq!(
        socketserver_smoltcp::poll_and_serve(&stack, || true),
        Ok(Some(Duration::ZERO))
    );
    assert_ne!(
        socketserver_smoltcp::poll_and_serve(&stack, || false),
        Ok(Some(Duration::ZERO))
    );
}

#[test]
fn a_shutdown_during_serve_forever_stops_it_within_20_ms() {
    static STOP: Stop = Stop::new();
    let time = Time::default();
    let asked_at = Rc::new(Cell::new(None));
    let mut slots = [SocketStorage::EMPTY; 2];
    let mut backlog = [SynSlot::EMPTY; 1];
    let mut pool = TcpStorage::<1, 256, 256>::new();
    let (clock, asked) = (time.clone(), asked_at.clone());
    // The request comes "from another thread" while the loop idles, at 300 ms.
    let idle: Idler = Box::new(move |t: Option<Duration>| {
        clock.advance(t.unwrap_or(Duration::from_millis(20)));
        if asked.get().is_none() && clock.now() >= Instant::from_micros(300_000) {
            STOP.shutdown();
            assert!(STOP.flag().is_requested(), "the running loop sees it");
            asked.set(Some(clock.now()));
        }
    });
    let stack = stack_with(&mut slots, &mut backlog, &time, idle);
    let stack = RefCell::new(stack.into_inner().with_stop(&STOP));
    let listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let mut server = Server::new(
        listener,
        Waiter::new(&stack).unwrap(),
        Sequential::new(Echo::<64>),
        DefaultHooks,
    );
    server.serve_forever(Duration::from_millis(500)).unwrap();
    let asked = asked_at.get().expect("requested");
    let latency = time.now().saturating_duration_since(asked);
    assert!(
        latency <= Duration::from_millis(20),
        "stopped {latency:?} after the request"
    );
    assert!(STOP.flag().is_stopped());
}

/// Sends `data` from a client socket and polls until `want` bytes came back.
fn client_round_trip(
    stack: &TestStack<'_>,
    time: &Time,
    server: &mut impl FnMut() -> bool,
    handle: SocketHandle,
    data: &[u8],
    want: usize,
) -> Vec<u8> {
    stack
        .borrow_mut()
        .sockets_mut()
        .get_mut::<tcp::Socket>(handle)
        .send_slice(data)
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..200 {
        stack.borrow_mut().poll();
        server();
        let mut stack = stack.borrow_mut();
        let socket = stack.sockets_mut().get_mut::<tcp::Socket>(handle);
        if socket.can_recv() {
            socket
                .recv(|bytes| {
                    got.extend_from_slice(bytes);
                    (bytes.len(), ())
                })
                .unwrap();
        }
        drop(stack);
        if got.len() >= want {
            break;
        }
        time.advance(Duration::from_millis(1));
    }
    got
}

#[test]
fn async_handlers_served_concurrently_woken_by_the_sockets() {
    use core::pin::pin;
    use socketserver_core::{Multiplexed, Upper};
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 6];
    let mut backlog = [SynSlot::EMPTY; 2];
    let mut pool = TcpStorage::<2, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let mux = pin!(Multiplexed::<_, _, _, 2>::new(Upper::<64>));
    let mut server = Server::new(listener, Waiter::new(&stack).unwrap(), mux, DefaultHooks);
    let a = client(&stack, 40001);
    let b = client(&stack, 40002);
    run(&stack, &time, 10, Duration::from_millis(1));
    assert_eq!(state(&stack, a), tcp::State::Established);
    assert_eq!(state(&stack, b), tcp::State::Established);
    let mut serve = || server.serve_ready();
    // Interleaved: both requests are in flight at once, each woken by its socket.
    for round in 0..3 {
        for (name, handle) in [("a", a), ("b", b)] {
            let line = format!("{name} {round}\n");
            let got = client_round_trip(
                &stack,
                &time,
                &mut serve,
                handle,
                line.as_bytes(),
                line.len(),
            );
            assert_eq!(String::from_utf8_lossy(&got), line.to_uppercase());
        }
    }
    let long = format!("{}\n", "x".repeat(100));
    let got = client_round_trip(&stack, &time, &mut serve, a, long.as_bytes(), 20);
    assert_eq!(got, b"ERROR line too long\n");
}

#[test]
fn a_connection_nobody_accepts_does_not_make_the_stack_spin() {
    // Found by the `syn_gate` fuzz target: once a connection had waited
    // PENDING_PRESSURE to be accepted, `poll_delay` said zero for as long
    // as it waited (45 s here, until smoltcp's timeout), with no idle
    // connection to evict for it: a busy loop for every waiter.
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 3];
    let mut backlog = [SynSlot::EMPTY; 2];
    let mut pool = TcpStorage::<2, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let peer = client(&stack, 40001);
    run(&stack, &time, 10, Duration::from_millis(1));
    assert_eq!(state(&stack, peer), tcp::State::Established);
    stack
        .borrow_mut()
        .sockets_mut()
        .get_mut::<tcp::Socket>(peer)
        .send_slice(b"hello")
        .unwrap();
    run(&stack, &time, 300, Duration::from_millis(1));
    assert!(listener.is_ready(), "waiting to be accepted");
    stack.borrow_mut().poll();
    let delay = stack.borrow_mut().poll_delay();
    assert!(
        delay.is_none_or(|d| d >= Duration::from_millis(100)),
        "the stack asks to be polled again in {delay:?}"
    );
    drop(listener);
}

/// A handler reaches its server on smoltcp as on std: the address the
#[path = "../../core/tests/support/where_handler.rs"]
mod where_handler;

/// listener is bound to, and a shutdown that reaches the server's flag.
mod server_context {
    use core::pin::pin;

    use socketserver_core::Multiplexed;

    use super::*;

    use super::where_handler::Where;

    #[test]
    fn a_handler_reads_its_servers_address_and_its_stop_reaches_the_flag() {
        let time = Time::default();
        let mut slots = [SocketStorage::EMPTY; 6];
        let mut backlog = [SynSlot::EMPTY; 2];
        let mut pool = TcpStorage::<1, 512, 512>::new();
        let mut udp_storage = UdpStorage::<2, 64>::new();
        let stack = stack(&mut slots, &mut backlog, &time);
        let every_address = IpEndpoint::new(IpAddress::v4(0, 0, 0, 0), PORT);
        let udp = StackUdpSocket::bind(&stack, IpEndpoint::new(IP, 9), udp_storage.socket());
        assert_eq!(udp.unwrap().local_addr(), IpEndpoint::new(IP, 9));

        let listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
        let mux = pin!(Multiplexed::<_, _, _, 1>::new(Where));
        let mut server = Server::new(listener, Waiter::new(&stack).unwrap(), mux, DefaultHooks);
        assert_eq!(*server.server_address(), every_address);
        let a = client(&stack, 40001);
        run(&stack, &time, 10, Duration::from_millis(1));
        let mut serve = || server.serve_ready();
        let expected = format!("{every_address:?}\n");
        let got = client_round_trip(&stack, &time, &mut serve, a, b"WHERE\n", expected.len());
        assert_eq!(String::from_utf8_lossy(&got), expected);
        let got = client_round_trip(&stack, &time, &mut serve, a, b"STOP\n", 4);
        assert_eq!(got, b"BYE\n");
        assert!(
            server.shutdown_flag().enter_loop().is_none(),
            "the stop is pending: the first loop returns at once"
        );
    }
}
