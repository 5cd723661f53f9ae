//! The smoltcp backend's SYN gate and pool, through its public API as
//! firmware uses it: a `Stack` over a device fed arbitrary frames (raw
//! bytes, and SYNs, ACKs with data, FINs and RSTs of model clients, some
//! with a byte flipped), on Ethernet (with ARP answered) or bare IP, with
//! two `StackTcpListener` pools, a small SYN backlog, a server that accepts,
//! reads, writes, closes and aborts, and a virtual clock.
//!
//! Checked: no panic; no heap allocation inside the stack (bounded memory:
//! every byte is storage given up front); the backlog never holds more than
//! its slots, and its counters add up (every held request is still held,
//! released, expired or displaced); no pool socket leaves the set while its
//! listener lives; and at the end, once the clients fall silent and time
//! passes, every pool socket listens again and the backlog is empty; once
//! the listeners close, every socket leaves the set.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use smoltcp::iface::{Config, Interface, SocketStorage};
use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::wire::{
    ArpOperation, ArpPacket, EthernetAddress, EthernetFrame, EthernetProtocol, HardwareAddress,
    IpAddress, IpCidr, IpProtocol, Ipv4Packet, TcpPacket,
};
use socketserver_core::time::{Clock, Instant};
use socketserver_core::{Accepted, Connection, Listener};
use socketserver_fuzz::decode::{byte, bytes};
use socketserver_smoltcp::{
    Net, NetRef, Stack, StackTcpListener, SynSlot, TcpConnection, TcpStorage,
};

/// Counts allocations while armed: the stack must make none.
struct Counting;

static ARMED: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` (library code) and checks it allocated nothing.
fn no_alloc<T>(f: impl FnOnce() -> T) -> T {
    ALLOCATIONS.store(0, Ordering::Relaxed);
    ARMED.store(true, Ordering::Relaxed);
    let out = f();
    ARMED.store(false, Ordering::Relaxed);
    assert_eq!(
        ALLOCATIONS.load(Ordering::Relaxed),
        0,
        "the stack allocated"
    );
    out
}

const MTU: usize = 600;
const TX_SLOTS: usize = 64;
const STACK_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const STACK_IP: [u8; 4] = [192, 168, 69, 1];
/// Listening ports: a pool of 3 and a pool of 1; the third has none.
const PORTS: [u16; 3] = [7, 8, 9];
const POOL_SOCKETS: usize = 4;
const BACKLOG: usize = 3;

/// Frames in, frames out; transmit storage is allocated up front.
struct FuzzDevice {
    medium: Medium,
    rx: VecDeque<Vec<u8>>,
    tx: Box<[[u8; MTU]; TX_SLOTS]>,
    tx_len: [usize; TX_SLOTS],
    tx_count: usize,
}

struct Rx(Vec<u8>);

struct Tx<'t> {
    buf: &'t mut [u8; MTU],
    len: &'t mut usize,
    count: &'t mut usize,
}

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        assert!(len <= MTU, "a frame over the MTU");
        *self.len = len;
        *self.count += 1;
        f(&mut self.buf[..len])
    }
}

impl FuzzDevice {
    fn tx_token(&mut self) -> Option<Tx<'_>> {
        let i = self.tx_count;
        if i >= TX_SLOTS {
            return None;
        }
        Some(Tx {
            buf: &mut self.tx[i],
            len: &mut self.tx_len[i],
            count: &mut self.tx_count,
        })
    }
}

impl Device for FuzzDevice {
    type RxToken<'t> = Rx;
    type TxToken<'t> = Tx<'t>;

    fn receive(&mut self, _: smoltcp::time::Instant) -> Option<(Rx, Tx<'_>)> {
        if self.rx.is_empty() || self.tx_count >= TX_SLOTS {
            return None;
        }
        let frame = self.rx.pop_front()?;
        Some((Rx(frame), self.tx_token()?))
    }

    fn transmit(&mut self, _: smoltcp::time::Instant) -> Option<Tx<'_>> {
        self.tx_token()
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = self.medium;
        caps.max_transmission_unit = MTU;
        // Frames need no valid checksum, so more of them reach the gate.
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }
}

#[derive(Clone, Default)]
struct Time(Rc<Cell<u64>>);

impl Clock for Time {
    fn now(&self) -> Instant {
        Instant::from_micros(self.0.get())
    }
}

fn never_idle(_: Option<Duration>) {
    panic!("a fuzz step blocked");
}

type FuzzStack<'a> = Stack<'a, FuzzDevice, Time, fn(Option<Duration>)>;

#[derive(Debug)]
enum Event {
    /// A connection request of client `client` to `PORTS[port % 3]`, with
    /// an MSS option or not, and `pad` bytes of data (past a backlog slot).
    Syn {
        client: u8,
        port: u8,
        mss: bool,
        pad: u8,
    },
    /// A SYN with one byte changed.
    Flipped {
        client: u8,
        at: u8,
        xor: u8,
    },
    /// The client's next segment: an ACK with `len` bytes of data.
    Ack {
        client: u8,
        len: u8,
    },
    Fin(u8),
    Rst(u8),
    /// Any bytes as a frame.
    Raw(Vec<u8>),
    Accept(u8),
    Read(u8),
    Write {
        conn: u8,
        len: u8,
    },
    HalfClose(u8),
    Close(u8),
    Abort(u8),
    /// The clock moves on (see `ADVANCE`), then the stack polls.
    Advance(u8),
    Poll,
}

const ADVANCE: [u64; 8] = [1, 10, 200, 600, 1_100, 2_500, 15_000, 95_000];

#[derive(Debug)]
struct Input {
    ip_medium: bool,
    events: Vec<Event>,
}

/// Input layout: the medium byte, then events of an opcode byte and
/// arguments.
impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let ip_medium = byte(u)? & 1 == 1;
        let mut events = Vec::new();
        while !u.is_empty() {
            events.push(match byte(u)? % 14 {
                0 => {
                    let (client, port, flags, pad) = (byte(u)?, byte(u)?, byte(u)?, byte(u)?);
                    Event::Syn {
                        client,
                        port,
                        mss: flags & 1 == 1,
                        pad,
                    }
                }
                1 => Event::Flipped {
                    client: byte(u)?,
                    at: byte(u)?,
                    xor: byte(u)?,
                },
                2 => Event::Ack {
                    client: byte(u)?,
                    len: byte(u)?,
                },
                3 => Event::Fin(byte(u)?),
                4 => Event::Rst(byte(u)?),
                5 => Event::Raw(bytes(u, 255)?),
                6 => Event::Accept(byte(u)?),
                7 => Event::Read(byte(u)?),
                8 => Event::Write {
                    conn: byte(u)?,
                    len: byte(u)?,
                },
                9 => Event::HalfClose(byte(u)?),
                10 => Event::Close(byte(u)?),
                11 => Event::Abort(byte(u)?),
                12 => Event::Advance(byte(u)?),
                _ => Event::Poll,
            });
        }
        Ok(Input { ip_medium, events })
    }
}

/// A model client: what it sent and what it heard.
#[derive(Debug, Clone, Copy, Default)]
struct Peer {
    /// Its next sequence number.
    snd_nxt: u32,
    /// The server's next sequence number, as last seen.
    rcv_nxt: u32,
    port: u16,
}

fn client_ip(c: usize) -> [u8; 4] {
    [192, 168, 69, 100 + (c / 2) as u8]
}

fn client_port(c: usize) -> u16 {
    40_000 + c as u16
}

fn client_mac(c: usize) -> [u8; 6] {
    [0x02, 0, 0, 0, 1, (c / 2) as u8]
}

const CLIENTS: usize = 8;

/// An IPv4 packet carrying one TCP segment (checksums left zero).
#[allow(clippy::too_many_arguments)]
fn segment(c: usize, port: u16, seq: u32, ack: u32, flags: u8, mss: bool, data: usize) -> Vec<u8> {
    let opts = if mss { 4 } else { 0 };
    let tcp_len = 20 + opts + data;
    let mut p = vec![0u8; 20 + tcp_len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&client_ip(c));
    p[16..20].copy_from_slice(&STACK_IP);
    let t = &mut p[20..];
    t[0..2].copy_from_slice(&client_port(c).to_be_bytes());
    t[2..4].copy_from_slice(&port.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = ((20 + opts) as u8 / 4) << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&4096u16.to_be_bytes());
    if mss {
        t[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
    }
    for (i, b) in t[20 + opts..].iter_mut().enumerate() {
        *b = b'a' + (i % 26) as u8;
    }
    p
}

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

fn ethernet(src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&STACK_MAC);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ARP reply telling the stack where `ip` is.
fn arp_reply(ip: [u8; 4], mac: [u8; 6]) -> Vec<u8> {
    let mut a = vec![0, 1, 0x08, 0x00, 6, 4, 0, 2];
    a.extend_from_slice(&mac);
    a.extend_from_slice(&ip);
    a.extend_from_slice(&STACK_MAC);
    a.extend_from_slice(&STACK_IP);
    ethernet(mac, 0x0806, &a)
}

struct Driver {
    medium: Medium,
    peers: [Peer; CLIENTS],
}

impl Driver {
    /// `packet` as the device delivers it.
    fn frame(&self, c: usize, packet: Vec<u8>) -> Vec<u8> {
        match self.medium {
            Medium::Ethernet => ethernet(client_mac(c), 0x0800, &packet),
            _ => packet,
        }
    }

    /// Reads what the stack sent: answers ARP for the model clients and
    /// follows the server's sequence numbers. Empties the transmit slots.
    fn drain_tx(&mut self, device: &mut FuzzDevice) {
        for i in 0..device.tx_count {
            let frame = &device.tx[i][..device.tx_len[i]];
            let ip = match self.medium {
                Medium::Ethernet => {
                    let Ok(eth) = EthernetFrame::new_checked(frame) else {
                        continue;
                    };
                    match eth.ethertype() {
                        EthernetProtocol::Ipv4 => eth.payload(),
                        EthernetProtocol::Arp => {
                            if let Some(reply) = self.answer_arp(eth.payload()) {
                                device.rx.push_back(reply);
                            }
                            continue;
                        }
                        _ => continue,
                    }
                }
                _ => frame,
            };
            let Ok(packet) = Ipv4Packet::new_checked(ip) else {
                continue;
            };
            if packet.next_header() != IpProtocol::Tcp {
                continue;
            }
            let dst = packet.dst_addr().octets();
            let Ok(seg) = TcpPacket::new_checked(packet.payload()) else {
                continue;
            };
            let Some(c) =
                (0..CLIENTS).find(|&c| client_ip(c) == dst && client_port(c) == seg.dst_port())
            else {
                continue;
            };
            let len = seg.payload().len() as u32 + u32::from(seg.syn()) + u32::from(seg.fin());
            self.peers[c].rcv_nxt = (seg.seq_number().0 as u32).wrapping_add(len);
        }
        device.tx_count = 0;
    }

    fn answer_arp(&self, arp: &[u8]) -> Option<Vec<u8>> {
        let packet = ArpPacket::new_checked(arp).ok()?;
        if packet.operation() != ArpOperation::Request {
            return None;
        }
        let target: [u8; 4] = packet.target_protocol_addr().try_into().ok()?;
        let c = (0..CLIENTS).find(|&c| client_ip(c) == target)?;
        Some(arp_reply(target, client_mac(c)))
    }

    fn syn(&mut self, c: usize, port: u16, mss: bool, pad: usize) -> Vec<u8> {
        let isn = (c as u32 + 1).wrapping_mul(0x0100_0000);
        self.peers[c] = Peer {
            snd_nxt: isn.wrapping_add(1),
            rcv_nxt: 0,
            port,
        };
        self.frame(c, segment(c, port, isn, 0, SYN, mss, pad))
    }

    fn next(&mut self, c: usize, flags: u8, len: usize) -> Vec<u8> {
        let p = self.peers[c];
        let consumed = len as u32 + u32::from(flags & FIN != 0);
        self.peers[c].snd_nxt = p.snd_nxt.wrapping_add(consumed);
        self.frame(
            c,
            segment(c, p.port, p.snd_nxt, p.rcv_nxt, flags, false, len),
        )
    }
}

/// Every pool socket of the stack, by state.
fn pool_states(stack: &RefCell<FuzzStack<'_>>) -> Vec<tcp::State> {
    let stack = stack.borrow();
    stack
        .sockets()
        .iter()
        .filter_map(|(_, s)| match s {
            smoltcp::socket::Socket::Tcp(t) => Some(t.state()),
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .collect()
}

/// The backlog's counters add up.
fn check_gate(stack: &RefCell<FuzzStack<'_>>) {
    let stack = stack.borrow();
    let held_now = stack.held_requests();
    let s = stack.gate_stats();
    assert!(held_now <= BACKLOG, "more held than the backlog's slots");
    // Each request held is still held, or was released, expired or
    // displaced by a newer one (counted among the dropped).
    let gone = i64::from(s.released) + i64::from(s.expired);
    let accounted = i64::from(s.held) - gone;
    assert!(
        held_now as i64 <= accounted,
        "held requests out of thin air: {s:?}"
    );
    assert!(
        held_now as i64 + i64::from(s.dropped) >= accounted,
        "held requests lost: {held_now} held, {s:?}"
    );
}

fn run(input: &Input) {
    let medium = if input.ip_medium {
        Medium::Ip
    } else {
        Medium::Ethernet
    };
    let time = Time::default();
    let mut device = FuzzDevice {
        medium,
        rx: VecDeque::new(),
        tx: Box::new([[0; MTU]; TX_SLOTS]),
        tx_len: [0; TX_SLOTS],
        tx_count: 0,
    };
    let hardware = match medium {
        Medium::Ethernet => HardwareAddress::Ethernet(EthernetAddress(STACK_MAC)),
        _ => HardwareAddress::Ip,
    };
    let mut config = Config::new(hardware);
    config.random_seed = 0x5eed;
    let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::ZERO);
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(192, 168, 69, 1), 24))
            .unwrap();
    });
    let mut slots = [SocketStorage::EMPTY; POOL_SOCKETS];
    let mut backlog = [SynSlot::EMPTY; BACKLOG];
    let mut three = TcpStorage::<3, 256, 256>::new();
    let mut one = TcpStorage::<1, 256, 256>::new();
    let idle: fn(Option<Duration>) = never_idle;
    let stack = RefCell::new(Stack::new(
        iface,
        device,
        &mut slots,
        &mut backlog,
        time.clone(),
        idle,
    ));
    let net: NetRef<'_, '_> = (&stack).into();
    let mut listeners = [
        StackTcpListener::bind(net, PORTS[0], three.sockets()).unwrap(),
        StackTcpListener::bind(net, PORTS[1], one.sockets()).unwrap(),
    ];
    let mut driver = Driver {
        medium,
        peers: [Peer::default(); CLIENTS],
    };
    let mut conns: Vec<Option<TcpConnection<'_, '_>>> = Vec::new();
    let poll = |driver: &mut Driver| {
        no_alloc(|| stack.borrow_mut().poll());
        driver.drain_tx(stack.borrow_mut().device_mut());
        check_gate(&stack);
        assert_eq!(
            pool_states(&stack).len(),
            POOL_SOCKETS,
            "a pool socket left"
        );
    };
    let deliver = |frame: Vec<u8>| stack.borrow_mut().device_mut().rx.push_back(frame);
    let mut buf = [0u8; 300];

    for event in &input.events {
        let conn = |k: &u8, conns: &mut Vec<Option<TcpConnection<'_, '_>>>| {
            let n = conns.len();
            (n > 0).then(|| usize::from(*k) % n)
        };
        match event {
            Event::Syn {
                client,
                port,
                mss,
                pad,
            } => {
                let c = usize::from(*client) % CLIENTS;
                let port = PORTS[usize::from(*port) % PORTS.len()];
                let frame = driver.syn(c, port, *mss, usize::from(*pad % 128));
                deliver(frame);
            }
            Event::Flipped { client, at, xor } => {
                let c = usize::from(*client) % CLIENTS;
                let mut frame = driver.syn(c, PORTS[c % 2], false, 0);
                let at = usize::from(*at) % frame.len();
                frame[at] ^= xor;
                deliver(frame);
            }
            Event::Ack { client, len } => {
                let c = usize::from(*client) % CLIENTS;
                let flags = if *len > 0 { ACK | PSH } else { ACK };
                let frame = driver.next(c, flags, usize::from(*len % 200));
                deliver(frame);
            }
            Event::Fin(client) => {
                let frame = driver.next(usize::from(*client) % CLIENTS, FIN | ACK, 0);
                deliver(frame);
            }
            Event::Rst(client) => {
                let frame = driver.next(usize::from(*client) % CLIENTS, RST, 0);
                deliver(frame);
            }
            Event::Raw(bytes) => deliver(bytes.clone()),
            Event::Accept(l) => {
                let listener = &mut listeners[usize::from(*l) % 2];
                if let Some(Accepted { conn: c, .. }) = no_alloc(|| listener.accept()).unwrap() {
                    conns.push(Some(c));
                }
            }
            Event::Read(k) => {
                if let Some(i) = conn(k, &mut conns)
                    && let Some(c) = conns[i].as_mut()
                {
                    let _ = no_alloc(|| c.try_read(&mut buf));
                }
            }
            Event::Write { conn: k, len } => {
                if let Some(i) = conn(k, &mut conns)
                    && let Some(c) = conns[i].as_mut()
                {
                    let len = usize::from(*len) + 1;
                    let _ = no_alloc(|| c.try_write(&buf[..len]));
                }
            }
            Event::HalfClose(k) => {
                if let Some(i) = conn(k, &mut conns)
                    && let Some(c) = conns[i].as_mut()
                {
                    let _ = no_alloc(|| c.shutdown_write());
                }
            }
            Event::Close(k) => {
                if let Some(i) = conn(k, &mut conns)
                    && let Some(c) = conns[i].take()
                {
                    no_alloc(|| c.close());
                }
            }
            Event::Abort(k) => {
                if let Some(i) = conn(k, &mut conns)
                    && let Some(c) = conns[i].take()
                {
                    no_alloc(|| Connection::abort(c));
                }
            }
            Event::Advance(step) => {
                let ms = ADVANCE[usize::from(*step) % ADVANCE.len()];
                time.0.set(time.0.get() + ms * 1000);
                poll(&mut driver);
            }
            Event::Poll => poll(&mut driver),
        }
    }

    // How far an input got, for a look at what the corpus reaches:
    // `SYN_GATE_DEBUG=1 cargo fuzz run syn_gate corpus/syn_gate -- -runs=0`.
    if std::env::var_os("SYN_GATE_DEBUG").is_some() {
        let s = stack.borrow();
        let (gate, pool) = (s.gate_stats(), s.pool_stats());
        eprintln!(
            "states {:?} gate {gate:?} pool {pool:?}",
            pool_states(&stack)
        );
    }
    // The server lets every connection go and the clients fall silent:
    // within bounded (virtual) time every pool socket listens again and the
    // backlog is empty.
    for c in conns.drain(..).flatten() {
        no_alloc(|| c.close());
    }
    let start = time.0.get();
    let mut zero_delays = 0;
    let settled = |stack: &RefCell<FuzzStack<'_>>| {
        stack.borrow().held_requests() == 0
            && pool_states(stack).iter().all(|s| *s == tcp::State::Listen)
    };
    loop {
        poll(&mut driver);
        if settled(&stack) {
            break;
        }
        let elapsed = time.0.get() - start;
        assert!(
            elapsed < 400_000_000,
            "pool sockets not back after 400 s: {:?}, {} held",
            pool_states(&stack),
            stack.borrow().held_requests()
        );
        let delay = no_alloc(|| stack.borrow_mut().poll_delay());
        // Zero is "poll again now": right while frames wait, a busy loop
        // when it lasts.
        zero_delays = if delay == Some(Duration::ZERO) {
            zero_delays + 1
        } else {
            0
        };
        assert!(zero_delays < 1000, "poll_delay stays zero: a busy loop");
        let delay = delay
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(1), Duration::from_secs(5));
        time.0.set(time.0.get() + delay.as_micros() as u64);
    }

    // Closing the listeners takes every socket out of the set.
    for l in listeners {
        no_alloc(|| l.close());
    }
    for _ in 0..4 {
        no_alloc(|| stack.borrow_mut().poll());
        driver.drain_tx(stack.borrow_mut().device_mut());
        time.0.set(time.0.get() + 1_100_000);
    }
    assert_eq!(stack.borrow().sockets().iter().count(), 0, "sockets left");
}

fuzz_target!(|input: Input| run(&input));
