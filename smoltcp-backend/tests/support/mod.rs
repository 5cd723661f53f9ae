//! A stack on smoltcp's `phy::Loopback` with virtual time, and smoltcp
//! client sockets on it: what the loopback tests share.
//!
//! Use with `mod support;` and `use support::*;`.

#![allow(dead_code)] // each test crate uses a subset

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketStorage};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, IpEndpoint};
use socketserver_core::Listener;
use socketserver_core::time::{Clock, Instant};
use socketserver_smoltcp::{Net, Stack, StackTcpListener, SynSlot};

pub const IP: IpAddress = IpAddress::v4(192, 168, 69, 1);
pub const PORT: u16 = 7;

/// Virtual time in microseconds, shared by the clock and the idle.
#[derive(Clone, Default)]
pub struct Time(Rc<Cell<u64>>);

impl Time {
    pub fn advance(&self, d: Duration) {
        self.0.set(self.0.get() + d.as_micros() as u64);
    }
}

impl Clock for Time {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.get())
    }
}

pub type Idler = Box<dyn FnMut(Option<Duration>)>;
pub type TestStack<'a> = RefCell<Stack<'a, Loopback, Time, Idler>>;

pub fn stack<'a>(
    sockets: &'a mut [SocketStorage<'a>],
    backlog: &'a mut [SynSlot],
    time: &Time,
) -> TestStack<'a> {
    let idle_time = time.clone();
    // Idling is time passing: blocking waits end at once in real time.
    let idle: Idler = Box::new(move |t: Option<Duration>| {
        idle_time.advance(
            t.unwrap_or(Duration::from_millis(20))
                .max(Duration::from_micros(100)),
        )
    });
    stack_with(sockets, backlog, time, idle)
}

pub fn stack_with<'a>(
    sockets: &'a mut [SocketStorage<'a>],
    backlog: &'a mut [SynSlot],
    time: &Time,
    idle: Idler,
) -> TestStack<'a> {
    let mut device = Loopback::new(Medium::Ethernet);
    let config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 1]).into());
    let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::ZERO);
    iface.update_ip_addrs(|a| a.push(IpCidr::new(IP, 24)).unwrap());
    RefCell::new(Stack::new(
        iface,
        device,
        sockets,
        backlog,
        time.clone(),
        idle,
    ))
}

/// A client socket on the same stack, connecting to the pool port.
pub fn client(stack: &TestStack<'_>, local_port: u16) -> SocketHandle {
    client_to(stack, PORT, local_port)
}

/// A client socket on the same stack, connecting to `port`.
pub fn client_to(stack: &TestStack<'_>, port: u16, local_port: u16) -> SocketHandle {
    let socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 1024]),
        tcp::SocketBuffer::new(vec![0; 1024]),
    );
    let mut stack = stack.borrow_mut();
    let handle = stack.add_socket(socket).unwrap();
    let (iface, sockets) = stack.interface_and_sockets_mut();
    sockets
        .get_mut::<tcp::Socket>(handle)
        .connect(iface.context(), IpEndpoint::new(IP, port), local_port)
        .unwrap();
    handle
}

pub fn state(stack: &TestStack<'_>, handle: SocketHandle) -> tcp::State {
    stack.borrow().sockets().get::<tcp::Socket>(handle).state()
}

/// Polls, letting `step` of virtual time pass each round, `rounds` times.
pub fn run(stack: &TestStack<'_>, time: &Time, rounds: usize, step: Duration) {
    for _ in 0..rounds {
        stack.borrow_mut().poll();
        time.advance(step);
    }
}

pub fn socket_count(stack: &TestStack<'_>) -> usize {
    stack.borrow().sockets().iter().count()
}

/// Accepts one connection from a fresh client; returns it and the client.
pub fn accepted<'s, 'a>(
    stack: &'s TestStack<'a>,
    listener: &mut StackTcpListener<'s, 'a>,
    time: &Time,
) -> (socketserver_smoltcp::TcpConnection<'s, 'a>, SocketHandle) {
    let peer = client(stack, 40001);
    run(stack, time, 10, Duration::from_millis(1));
    let conn = listener.accept().unwrap().expect("a connection").conn;
    (conn, peer)
}
