//! core's datagram path (core's `Server` over `Datagrams`, `Sequential`, the datagram request
//! lifecycle and `DatagramRequest`) over an in-memory `DatagramSocket`,
//! with arbitrary packets, packet and reply buffer sizes (so truncation and
//! full replies), refusals, receive errors and send outcomes (queued,
//! dropped, no return address, failed).
//!
//! Checked against a model handler whose behaviour the packet's first byte
//! chooses: no panic; the handler sees the packet cut to `max_packet_size`
//! with the right truncation flag; exactly one reply per request whose
//! `setup` succeeded, with exactly the bytes the model wrote (a write
//! beyond the reply buffer adds nothing and fails); `handle_error` once for
//! each failed request and never otherwise; `shutdown_request` and
//! `close_request` for every packet, refused or not; every `Sent::Dropped`
//! counted and not an error; every packet served, in order.
#![no_main]

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use socketserver_core::embedded_io::{ErrorKind, ErrorType};
use socketserver_core::time::{Clock, Instant};
use socketserver_core::{
    DatagramRequest, DatagramRequestHandler, DatagramSocket, Datagrams, Error, HandlerError,
    Received, Sent, Sequential, Server, ServerHooks, ShutdownFlag, Wait,
};
use socketserver_fuzz::MemError;
use socketserver_fuzz::decode::{byte, bytes};

#[derive(Debug)]
enum Event {
    /// A datagram from port `from`; `send` picks what becomes of its reply.
    Packet {
        from: u8,
        send: u8,
        bytes: Vec<u8>,
    },
    /// The next receive fails.
    RecvError,
    Poll,
}

#[derive(Debug)]
struct Input {
    max_packet: u8,
    reply_capacity: u8,
    events: Vec<Event>,
}

/// Input layout: two sizes, then events of an opcode byte and arguments.
impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let max_packet = byte(u)?;
        let reply_capacity = byte(u)?;
        let mut events = Vec::new();
        while !u.is_empty() {
            events.push(match byte(u)? % 3 {
                0 => Event::Packet {
                    from: byte(u)?,
                    send: byte(u)?,
                    bytes: bytes(u, 128)?,
                },
                1 => Event::RecvError,
                _ => Event::Poll,
            });
        }
        Ok(Input {
            max_packet,
            reply_capacity,
            events,
        })
    }
}

/// What the server did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Verify(u16),
    Sent(u16, Vec<u8>, Sent),
    SendFailed(u16, Vec<u8>),
    HandleError(u16),
    Shutdown(u16),
    Close(u16),
}

type Log = Rc<RefCell<Vec<Step>>>;

#[derive(Debug, Default)]
struct Queue {
    packets: VecDeque<(Vec<u8>, u16, u8)>,
    recv_errors: usize,
    /// The send outcome of the packet being served.
    outcome: u8,
}

/// A datagram socket fed by the target.
#[derive(Debug, Clone)]
struct Socket {
    queue: Rc<RefCell<Queue>>,
    log: Log,
}

impl ErrorType for Socket {
    type Error = MemError;
}

impl DatagramSocket for Socket {
    type Addr = u16;

    fn recv_from(&mut self, buf: &mut [u8]) -> Result<Option<Received<u16>>, MemError> {
        let mut q = self.queue.borrow_mut();
        if q.recv_errors > 0 {
            q.recv_errors -= 1;
            return Err(MemError(ErrorKind::Interrupted));
        }
        let Some((data, addr, outcome)) = q.packets.pop_front() else {
            return Ok(None);
        };
        q.outcome = outcome;
        let len = data.len().min(buf.len());
        buf[..len].copy_from_slice(&data[..len]);
        Ok(Some(Received {
            len,
            addr,
            truncated: data.len() > len,
        }))
    }

    fn local_addr(&self) -> u16 {
        0
    }

    fn send_to(&mut self, buf: &[u8], addr: &u16) -> Result<Sent, MemError> {
        let outcome = match self.queue.borrow().outcome % 4 {
            0 => Ok(Sent::Queued),
            1 => Ok(Sent::Dropped),
            2 => Ok(Sent::NoReturnAddress),
            _ => Err(MemError(ErrorKind::OutOfMemory)),
        };
        self.log.borrow_mut().push(match outcome {
            Ok(sent) => Step::Sent(*addr, buf.to_vec(), sent),
            Err(_) => Step::SendFailed(*addr, buf.to_vec()),
        });
        outcome
    }
}

/// A clock that stands still and a wait that never blocks.
#[derive(Debug, Default)]
struct Waiter(ShutdownFlag);

impl Clock for Waiter {
    fn now(&self) -> Instant {
        Instant::from_micros(0)
    }
}

impl Wait<Socket> for Waiter {
    type Error = MemError;
    fn wait(
        &mut self,
        _server: Option<&Socket>,
        _deadline: Option<Instant>,
    ) -> Result<(), MemError> {
        Ok(())
    }
    fn shutdown_flag(&self) -> &ShutdownFlag {
        &self.0
    }
}

#[derive(Debug, Clone)]
struct Hooks(Log);

impl ServerHooks<u16> for Hooks {
    fn verify_request(&self, client: &u16) -> bool {
        self.0.borrow_mut().push(Step::Verify(*client));
        !client.is_multiple_of(13)
    }
    fn handle_error(&self, client: &u16, _error: &dyn core::error::Error) {
        self.0.borrow_mut().push(Step::HandleError(*client));
    }
    fn shutdown_request(&self, client: &u16) {
        self.0.borrow_mut().push(Step::Shutdown(*client));
    }
    fn close_request(&self, client: &u16) {
        self.0.borrow_mut().push(Step::Close(*client));
    }
}

/// What the packet's first byte asks of the handler.
struct Plan {
    setup_fails: bool,
    copies: usize,
    /// `finish` replaces the reply by one byte.
    finish_rewrites: bool,
    finish_fails: bool,
}

impl Plan {
    fn of(packet: &[u8]) -> Self {
        let b = packet.first().copied().unwrap_or(1);
        Self {
            setup_fails: b % 7 == 0,
            copies: usize::from(b % 4),
            finish_rewrites: b % 5 == 0,
            finish_fails: b % 11 == 0,
        }
    }
}

/// The handler the model describes; it checks what it is given.
#[derive(Debug, Clone)]
struct Model {
    max_packet: usize,
    expected: Rc<RefCell<VecDeque<Vec<u8>>>>,
}

impl DatagramRequestHandler<u16> for Model {
    fn setup(&mut self, req: &mut DatagramRequest<'_, u16>) -> Result<(), HandlerError> {
        let full = self.expected.borrow_mut().pop_front().expect("a packet");
        let cut = &full[..full.len().min(self.max_packet)];
        assert_eq!(req.packet(), cut, "the packet, cut to max_packet_size");
        assert_eq!(req.is_truncated(), full.len() > self.max_packet);
        assert!(req.reply().is_empty(), "a fresh reply");
        if Plan::of(req.packet()).setup_fails {
            return Err(Error::Handler("setup"));
        }
        Ok(())
    }

    fn handle(&mut self, req: &mut DatagramRequest<'_, u16>) -> Result<(), HandlerError> {
        let packet = req.packet();
        for _ in 0..Plan::of(packet).copies {
            req.write_all(packet)?;
        }
        Ok(())
    }

    fn finish(&mut self, req: &mut DatagramRequest<'_, u16>) -> Result<(), HandlerError> {
        let plan = Plan::of(req.packet());
        if plan.finish_rewrites {
            req.clear_reply();
            req.write_all(b"F")?;
        }
        if plan.finish_fails {
            return Err(Error::Handler("finish"));
        }
        Ok(())
    }
}

/// The steps the server must take for one received packet.
fn expect(steps: &mut Vec<Step>, data: &[u8], from: u16, send: u8, cap: usize) {
    steps.push(Step::Verify(from));
    if from.is_multiple_of(13) {
        steps.push(Step::Shutdown(from));
        steps.push(Step::Close(from));
        return;
    }
    let plan = Plan::of(data);
    let mut failed = plan.setup_fails;
    if !plan.setup_fails {
        let mut reply = Vec::new();
        for _ in 0..plan.copies {
            if reply.len() + data.len() > cap {
                failed = true;
                break;
            }
            reply.extend_from_slice(data);
        }
        if plan.finish_rewrites {
            reply.clear();
            if cap == 0 {
                failed = true;
            } else {
                reply.push(b'F');
            }
        }
        failed |= plan.finish_fails;
        steps.push(match send % 4 {
            0 => Step::Sent(from, reply, Sent::Queued),
            1 => Step::Sent(from, reply, Sent::Dropped),
            2 => Step::Sent(from, reply, Sent::NoReturnAddress),
            _ => {
                failed = true;
                Step::SendFailed(from, reply)
            }
        });
    }
    if failed {
        steps.push(Step::HandleError(from));
    }
    steps.push(Step::Shutdown(from));
    steps.push(Step::Close(from));
}

fuzz_target!(|input: Input| {
    let max_packet = usize::from(input.max_packet % 65);
    let cap = usize::from(input.reply_capacity % 129);
    let log = Log::default();
    let queue = Rc::new(RefCell::new(Queue::default()));
    let expected_packets = Rc::new(RefCell::new(VecDeque::new()));
    let socket = Socket {
        queue: queue.clone(),
        log: log.clone(),
    };
    let handler = Model {
        max_packet,
        expected: expected_packets.clone(),
    };
    let mut server = Server::new(
        Datagrams::new(socket, vec![0u8; max_packet], vec![0u8; cap]),
        Waiter::default(),
        Sequential::new(handler),
        Hooks(log.clone()),
    );
    assert_eq!(server.source().max_packet_size(), max_packet);
    let mut steps = Vec::new();
    let mut dropped = 0;
    for event in &input.events {
        match event {
            Event::Packet { from, send, bytes } => {
                let from = u16::from(*from);
                let cut = &bytes[..bytes.len().min(max_packet)];
                expect(&mut steps, cut, from, *send, cap);
                if !from.is_multiple_of(13) {
                    expected_packets.borrow_mut().push_back(bytes.clone());
                    dropped += usize::from(send % 4 == 1 && !Plan::of(cut).setup_fails);
                }
                queue
                    .borrow_mut()
                    .packets
                    .push_back((bytes.clone(), from, *send));
            }
            Event::RecvError => queue.borrow_mut().recv_errors += 1,
            Event::Poll => {
                server.serve_ready();
            }
        }
    }
    // Every packet is served: a receive error only ends one pass.
    let mut passes = 0;
    while !queue.borrow().packets.is_empty() {
        passes += 1;
        assert!(passes <= input.events.len() + 1, "packets left unserved");
        server.serve_ready();
    }
    server.server_close();
    assert!(expected_packets.borrow().is_empty(), "a packet not handled");
    let log = log.borrow();
    assert_eq!(*log, steps, "the server's steps, in order");
    let counted = log
        .iter()
        .filter(|s| matches!(s, Step::Sent(_, _, Sent::Dropped)))
        .count();
    assert_eq!(counted, dropped, "every dropped reply counted");
});
