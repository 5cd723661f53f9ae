//! Fault injection over smoltcp's `phy::Loopback` (issue 13): the pool's
//! clients are smoltcp sockets on the same stack, and every frame crosses a
//! device that drops, corrupts, duplicates and reorders (smoltcp's
//! `FaultInjector` plus `tests/support/impaired.rs`). A 1 MiB echo must come
//! back intact under `Sequential` and `Multiplexed`, the server must serve a fresh
//! client afterwards, and loss recovery must have been at work. Time is
//! virtual (every idle advances it), so no root, no network, and waits of
//! seconds cost nothing; every loop is bounded in rounds.

#[path = "../../tests/support/impaired.rs"]
mod impaired;

use std::cell::Cell;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use impaired::{Faults, Shuffle, Tally};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketStorage};
use smoltcp::phy::{FaultInjector, Loopback, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{EthernetAddress, IpAddress, IpCidr, IpEndpoint};
use socketserver_core::time::{Clock, Instant};
use socketserver_core::{DefaultHooks, Echo, Multiplexed, Sequential, Server};
use socketserver_smoltcp::{Net, Stack, StackTcpListener, SynSlot, TcpStorage, Waiter};

const IP: IpAddress = IpAddress::v4(192, 168, 69, 1);
const PORT: u16 = 7;
const MIB: usize = 1 << 20;

/// Every frame crosses the loopback device once, so each fault is applied
/// once, on receipt; `FaultInjector` drops on both sides (2% each).
const LOOPBACK_FAULTS: Faults = Faults {
    drop: 2,
    corrupt: 1,
    max_size: 0,
    rx: Shuffle {
        dup: 5,
        reorder: 10,
    },
    tx: Shuffle { dup: 0, reorder: 0 },
    seed: 0x1055_0013,
};

/// Virtual time in microseconds, shared by the clock and the idle.
#[derive(Clone, Default)]
struct Time(Rc<Cell<u64>>);

impl Time {
    fn advance(&self, d: Duration) {
        self.0.set(self.0.get() + d.as_micros() as u64);
    }
}

impl Clock for Time {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.get())
    }
}

type Idler = Box<dyn FnMut(Option<Duration>)>;
type Link = FaultInjector<impaired::Impaired<Loopback>>;
type TestStack<'a> = std::cell::RefCell<Stack<'a, Link, Time, Idler>>;

fn stack<'a>(
    sockets: &'a mut [SocketStorage<'a>],
    backlog: &'a mut [SynSlot],
    time: &Time,
) -> (TestStack<'a>, Tally) {
    let (mut device, tally) = impaired::faults(Loopback::new(Medium::Ethernet), LOOPBACK_FAULTS);
    let config = Config::new(EthernetAddress([0x02, 0, 0, 0, 0, 1]).into());
    let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::ZERO);
    iface.update_ip_addrs(|a| a.push(IpCidr::new(IP, 24)).unwrap());
    let idle_time = time.clone();
    // Idling is time passing: blocking waits end at once in real time.
    let idle: Idler = Box::new(move |t: Option<Duration>| {
        idle_time.advance(
            t.unwrap_or(Duration::from_millis(20))
                .max(Duration::from_micros(100)),
        )
    });
    let stack = Stack::new(iface, device, sockets, backlog, time.clone(), idle);
    (std::cell::RefCell::new(stack), tally)
}

/// A pattern that a shifted, dropped or repeated byte cannot reproduce.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 12) as u8)
        .collect()
}

/// Polls the stack, letting virtual time pass as it asks (at most 20 ms a
/// round), until `done`; panics after `rounds`.
fn run_until(stack: &TestStack<'_>, time: &Time, rounds: usize, mut done: impl FnMut() -> bool) {
    for _ in 0..rounds {
        if done() {
            return;
        }
        let mut stack = stack.borrow_mut();
        stack.poll();
        let next = stack.poll_delay().unwrap_or(Duration::from_millis(20));
        time.advance(next.clamp(Duration::from_micros(100), Duration::from_millis(20)));
    }
    panic!("not done within {rounds} rounds");
}

fn state(stack: &TestStack<'_>, handle: SocketHandle) -> tcp::State {
    stack.borrow().sockets().get::<tcp::Socket>(handle).state()
}

/// A client socket with room for `data` each way, connected to the pool
/// (through the faults), with `data` queued and its FIN after it.
fn client(stack: &TestStack<'_>, time: &Time, local_port: u16, data: &[u8]) -> SocketHandle {
    let room = data.len().max(1024);
    let mut socket = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; room]),
        tcp::SocketBuffer::new(vec![0; room]),
    );
    socket.set_ack_delay(None);
    let handle = {
        let mut stack = stack.borrow_mut();
        let handle = stack.add_socket(socket).unwrap();
        let (iface, sockets) = stack.interface_and_sockets_mut();
        sockets
            .get_mut::<tcp::Socket>(handle)
            .connect(iface.context(), IpEndpoint::new(IP, PORT), local_port)
            .unwrap();
        handle
    };
    run_until(stack, time, 100_000, || {
        state(stack, handle) == tcp::State::Established
    });
    let mut stack = stack.borrow_mut();
    let socket = stack.sockets_mut().get_mut::<tcp::Socket>(handle);
    assert_eq!(socket.send_slice(data), Ok(data.len()), "queued whole");
    socket.close();
    handle
}

/// Everything the client received so far, and whether the server's FIN came.
fn received(stack: &TestStack<'_>, handle: SocketHandle, into: &mut Vec<u8>) -> bool {
    let mut stack = stack.borrow_mut();
    let socket = stack.sockets_mut().get_mut::<tcp::Socket>(handle);
    while socket.can_recv() {
        let _ = socket.recv(|bytes| {
            into.extend_from_slice(bytes);
            (bytes.len(), ())
        });
    }
    !socket.may_recv()
}

fn check_echo(what: &str, got: &[u8], sent: &[u8]) {
    assert_eq!(
        got.len(),
        sent.len(),
        "{what}: echoed {} of {} bytes",
        got.len(),
        sent.len()
    );
    if let Some(at) = got.iter().zip(sent).position(|(a, b)| a != b) {
        panic!("{what}: the echo differs at byte {at}");
    }
}

/// Virtual time a 1 MiB echo may take through [`LOOPBACK_FAULTS`]: 1.4 s
/// (sync) and 2.1 s (multiplexed) with loss recovery, 6.9 s and 5.1 s with
/// `TcpConfig::loss_recovery` off (the same seeds, so the same faults).
const VIRTUAL_LIMIT: Duration = Duration::from_secs(4);

/// Prints what the echo took and checks that the link shuffled frames and,
/// with loss recovery compiled in, that it worked.
fn report(what: &str, time: &Time, stack: &TestStack<'_>, tally: &Tally) {
    let gate = stack.borrow().gate_stats();
    let took = Duration::from_micros(time.now().as_micros());
    println!(
        "{what}: 1 MiB echoed intact in {:.1} s of virtual time; shuffled {:?}; gate {:?}",
        took.as_secs_f64(),
        tally.get(),
        gate
    );
    let shuffled = tally.get();
    assert!(
        shuffled.rx_duplicated > 0 && shuffled.rx_reordered > 0,
        "{what}: the link did not shuffle: {shuffled:?}"
    );
    if cfg!(feature = "loss-recovery") {
        assert!(
            took < VIRTUAL_LIMIT,
            "{what}: the echo took {took:?} of virtual time (limit {VIRTUAL_LIMIT:?})"
        );
        assert!(
            gate.fast_retransmits > 0,
            "{what}: no fast retransmit: {gate:?}"
        );
    } else {
        println!(
            "{what}: loss recovery compiled out (feature `loss-recovery`): integrity checked, not speed"
        );
    }
}

#[test]
fn sync_echoes_1mib_intact_through_faults_then_serves_a_fresh_client() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 6];
    let mut backlog = [SynSlot::EMPTY; 4];
    let mut pool = TcpStorage::<2, 65536, 65536>::new();
    let (stack, tally) = stack(&mut slots, &mut backlog, &time);
    let listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let mut server = Server::new(
        listener,
        Waiter::new(&stack).unwrap(),
        Sequential::new(Echo::<4096>),
        DefaultHooks,
    );
    let data = pattern(MIB);
    let first = client(&stack, &time, 40001, &data);
    // One request: the handler echoes until the client's FIN, driving the
    // stack (and so the client socket) while it waits.
    server.handle_request().unwrap();
    let mut got = Vec::new();
    run_until(&stack, &time, 100_000, || received(&stack, first, &mut got));
    check_echo("1 MiB", &got, &data);
    report("sync", &time, &stack, &tally);

    let line = b"a fresh client\n";
    let fresh = client(&stack, &time, 40002, line);
    server.handle_request().unwrap();
    let mut got = Vec::new();
    run_until(&stack, &time, 100_000, || received(&stack, fresh, &mut got));
    check_echo("the fresh client", &got, line);
}

#[test]
fn multiplexed_echoes_1mib_intact_through_faults_then_serves_a_fresh_client() {
    let time = Time::default();
    let mut slots = [SocketStorage::EMPTY; 6];
    let mut backlog = [SynSlot::EMPTY; 4];
    let mut pool = TcpStorage::<2, 65536, 65536>::new();
    let (stack, tally) = stack(&mut slots, &mut backlog, &time);
    let listener = StackTcpListener::bind(&stack, PORT, pool.sockets()).unwrap();
    let mux = pin!(Multiplexed::<_, _, _, 2>::new(Echo::<4096>));
    let mut server = Server::new(listener, Waiter::new(&stack).unwrap(), mux, DefaultHooks);
    // Serves until `client` got its echo and the server's FIN: one turn of
    // the firmware main loop per round, sleeping as long as `poll` allows.
    let mut serve = |client: SocketHandle, into: &mut Vec<u8>| {
        for _ in 0..2_000_000 {
            if received(&stack, client, into) {
                return;
            }
            let next = socketserver_smoltcp::poll_and_serve(&stack, || server.serve_ready())
                .expect("the stack is not borrowed elsewhere");
            time.advance(
                next.unwrap_or(Duration::from_millis(20))
                    .min(Duration::from_millis(20)),
            );
        }
        panic!("not echoed within the rounds allowed");
    };
    let data = pattern(MIB);
    let first = client(&stack, &time, 40001, &data);
    let mut got = Vec::new();
    serve(first, &mut got);
    check_echo("1 MiB", &got, &data);
    report("multiplexed", &time, &stack, &tally);

    let line = b"a fresh client\n";
    let fresh = client(&stack, &time, 40002, line);
    let mut got = Vec::new();
    serve(fresh, &mut got);
    check_echo("the fresh client", &got, line);
}
