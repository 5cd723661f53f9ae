//! Servers made in one call (`tcp_server`, `udp_server`), a stack borrowed
//! elsewhere while they run (a typed error, never a panic), and binds to
//! port 0 (a free port of the dynamic range, reported), on smoltcp's
//! `phy::Loopback` with virtual time.

use std::sync::Mutex;
use std::time::Duration;

use smoltcp::iface::SocketStorage;
use smoltcp::socket::tcp;
use socketserver_core::{
    Connection, Echo, EchoDatagram, Error as CoreError, ServerHooks, StreamRequest,
    StreamRequestHandler,
};
use socketserver_smoltcp::{
    Error, Net, StackTcpListener, StackUdpSocket, SynSlot, TcpConnection, TcpStorage, UdpStorage,
    tcp_server, tcp_server_with, udp_server,
};

mod support;

use support::*;

/// Sends `data` from a new client, turning the stack and the server
/// (`serve`: its `serve_ready`) until the echo came back (or 200 rounds
/// passed); returns what came back.
fn echoed(
    stack: &TestStack<'_>,
    time: &Time,
    mut serve: impl FnMut() -> bool,
    data: &[u8],
) -> Vec<u8> {
    let client = client(stack, 40001);
    let mut got = Vec::new();
    let mut sent = false;
    for _ in 0..200 {
        stack.borrow_mut().poll();
        let mut net = stack.borrow_mut();
        let socket = net.sockets_mut().get_mut::<tcp::Socket>(client);
        if !sent && socket.can_send() {
            socket.send_slice(data).unwrap();
            sent = true;
        }
        if socket.can_recv() {
            socket
                .recv(|bytes| {
                    got.extend_from_slice(bytes);
                    (bytes.len(), ())
                })
                .unwrap();
        }
        drop(net);
        if got.len() >= data.len() {
            break;
        }
        serve();
        time.advance(Duration::from_millis(1));
    }
    got
}

#[test]
fn tcp_server_serves_a_handler_in_one_call() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 2];
    let mut storage = TcpStorage::<2, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let mut server = tcp_server(&stack, PORT, &mut storage, Echo::<64>).unwrap();
    assert_eq!(server.source().port(), PORT);
    let got = echoed(&stack, &time, || server.serve_ready(), b"one call");
    assert_eq!(got, b"one call");
}

#[test]
fn a_borrow_held_while_the_server_waits_fails_the_wait_with_stack_busy() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 2];
    let mut storage = TcpStorage::<1, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let mut server = tcp_server(&stack, PORT, &mut storage, Echo::<64>).unwrap();
    let held = stack.borrow_mut();
    assert_eq!(
        server.serve_forever(Duration::from_millis(10)),
        Err(Error::StackBusy)
    );
    assert_eq!(
        socketserver_smoltcp::poll_and_serve(&stack, || server.serve_ready()),
        Err(Error::StackBusy)
    );
    drop(held);
    // Once the borrow is gone the same server serves.
    let got = echoed(&stack, &time, || server.serve_ready(), b"after");
    assert_eq!(got, b"after");
}

#[test]
fn a_borrow_held_across_a_connections_io_is_stack_busy_not_a_panic() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 2];
    let mut storage = TcpStorage::<1, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let mut listener = StackTcpListener::bind(&stack, PORT, &mut storage).unwrap();
    let (mut conn, _peer) = accepted(&stack, &mut listener, &time);
    let held = stack.borrow_mut();
    assert_eq!(
        embedded_io::Read::read(&mut conn, &mut [0; 8]),
        Err(Error::StackBusy)
    );
    assert_eq!(
        embedded_io::Write::write(&mut conn, b"x"),
        Err(Error::StackBusy)
    );
    assert_eq!(conn.set_nodelay(true), Err(Error::StackBusy));
    assert_eq!(conn.state(), Err(Error::StackBusy));
    assert!(matches!(
        socketserver_core::Listener::accept(&mut listener),
        Err(Error::StackBusy)
    ));
    drop(held);
    assert_eq!(conn.state(), Ok(tcp::State::Established));
}

/// A handler that borrows the stack itself while it reads: what user code
/// sharing the stack with the server might do by mistake.
#[derive(Clone)]
struct Borrower<'r, 'a>(&'r TestStack<'a>);

impl<'s, 'a> StreamRequestHandler<TcpConnection<'s, 'a>> for Borrower<'_, '_> {
    fn handle(
        &mut self,
        req: &mut StreamRequest<'_, TcpConnection<'s, 'a>>,
    ) -> Result<(), CoreError<Error>> {
        let _held = self.0.borrow_mut();
        req.read(&mut [0; 8]).map(drop)
    }
}

/// Hooks that keep what `handle_error` was told.
#[derive(Default)]
struct Errors(Mutex<Vec<String>>);

impl<A: core::fmt::Debug> ServerHooks<A> for Errors {
    fn handle_error(&self, _client: &A, error: &dyn core::error::Error) {
        self.0.lock().unwrap().push(error.to_string());
    }
}

#[test]
fn a_handler_holding_the_stack_sees_stack_busy_in_the_error_hook() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 2];
    let mut storage = TcpStorage::<1, 512, 512>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let strategy = socketserver_core::Sequential::new(Borrower(&stack));
    let mut server =
        tcp_server_with(&stack, PORT, &mut storage, strategy, Errors::default()).unwrap();
    let peer = client(&stack, 40001);
    for _ in 0..20 {
        stack.borrow_mut().poll();
        server.serve_ready();
        time.advance(Duration::from_millis(1));
        if !server.hooks().0.lock().unwrap().is_empty() {
            break;
        }
    }
    let errors = server.hooks().0.lock().unwrap().clone();
    assert_eq!(
        errors,
        ["transport error: stack borrowed elsewhere"],
        "the handler's read failed with the typed error, reported once"
    );
    let _ = peer;
}

#[test]
fn two_listeners_on_port_0_get_different_free_ports_both_reported() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 6];
    let mut backlog = [SynSlot::EMPTY; 2];
    let mut first = TcpStorage::<1, 256, 256>::new();
    let mut second = TcpStorage::<1, 256, 256>::new();
    let mut udp = UdpStorage::<2, 256>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let a = StackTcpListener::bind(&stack, 0, &mut first).unwrap();
    let b = tcp_server(&stack, 0, &mut second, Echo::<64>).unwrap();
    let c = StackUdpSocket::bind(&stack, 0, udp.socket()).unwrap();
    let ports = [
        a.local_endpoint().port,
        b.source().local_endpoint().port,
        c.local_endpoint().port,
    ];
    for port in ports {
        assert!(port >= 49152, "{port} is in the dynamic range");
    }
    assert_ne!(ports[0], ports[1]);
    assert_ne!(ports[1], ports[2]);
    assert_ne!(ports[0], ports[2]);
    assert_eq!(a.port(), ports[0]);
    // Python's server_address(): the chosen port, not 0.
    assert_eq!(b.server_address().port, ports[1]);
    // The chosen port is really served.
    let peer = client_to(&stack, ports[0], 40001);
    run(&stack, &time, 10, Duration::from_millis(1));
    assert_eq!(state(&stack, peer), tcp::State::Established);
    assert!(a.is_ready());
}

#[test]
fn a_port_0_bind_skips_ports_in_use() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 4];
    let mut backlog = [SynSlot::EMPTY; 2];
    let mut fixed = TcpStorage::<1, 256, 256>::new();
    let mut chosen = TcpStorage::<1, 256, 256>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    // The first port a search would take, bound explicitly first.
    let _taken = StackTcpListener::bind(&stack, 49152, &mut fixed).unwrap();
    let listener = StackTcpListener::bind(&stack, 0, &mut chosen).unwrap();
    assert_ne!(listener.port(), 49152);
    assert!(listener.port() > 49152);
}

#[test]
fn udp_server_binds_port_0_to_a_port_of_the_dynamic_range() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 2];
    let mut backlog = [SynSlot::EMPTY; 1];
    let mut storage = UdpStorage::<2, 256>::new();
    let stack = stack(&mut slots, &mut backlog, &time);
    let buffers = (vec![0u8; 256], vec![0u8; 256]);
    let mut server = udp_server(&stack, 0, storage.socket(), buffers, EchoDatagram).unwrap();
    let port = server.source_mut().socket_mut().local_endpoint().port;
    assert!(port >= 49152, "{port} is in the dynamic range");
    assert_eq!(
        server.server_address().port,
        port,
        "server_address() reports it"
    );
}
