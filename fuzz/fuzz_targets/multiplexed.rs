//! core's `Multiplexed<N>` strategy under a `Server`, with core's
//! async `Echo` and `Upper` handlers (wrapped to count `setup` and
//! `finish`), driven by arbitrary sequences of connect, data, half-close,
//! reset, stall (the client stops reading), drain and clock-advance events
//! over an in-memory transport, with arbitrary idle policies. Written
//! against the public API only.
//!
//! Checked, after every event: no panic; no request does blocking I/O or
//! touches its connection after the end; what each client received is a
//! prefix of what the handler's model answers to what it sent (no byte
//! lost, duplicated or reordered); at most N requests run. At the end,
//! after every client half-closed and reads again: every queued client was
//! served, every connection was closed or reset exactly once, one
//! `close_request` each, `finish` ran exactly once for every request that
//! started, every client that was not cut got its whole answer and a FIN,
//! every slot is free and every slot id is back in core's pool.
#![no_main]

use core::pin::pin;
use std::cell::RefCell;
use std::rc::Rc;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use socketserver_core::time::Duration;
use socketserver_core::{
    Accepted, AsyncStreamRequestHandler, Echo, IdlePolicy, LINE_TOO_LONG, MinRate, Multiplexed,
    Server, Strategy, Upper, slot_ids_in_use,
};
use socketserver_fuzz::decode::{byte, bytes, word};
use socketserver_fuzz::mux::{
    Counted, CountingHooks, Journal, MuxConn, MuxListener, MuxWaiter, Pipe,
};

/// `Upper`'s line maximum here: small, so overlong lines are common.
const MAX: usize = 12;

#[derive(Debug)]
enum Event {
    Connect,
    /// The client sends these bytes (one in 8 made a newline).
    Data {
        conn: u8,
        bytes: Vec<u8>,
    },
    /// The client sends a block at once: `len % 1024` bytes, or one time in
    /// 16 70,000 bytes (past the 64 KiB a poll may move).
    Bulk {
        conn: u8,
        len: u16,
    },
    HalfClose(u8),
    Reset(u8),
    /// The client stops reading: the server's writes block.
    Stall(u8),
    /// The client reads again, this many bytes (0: all it can).
    Drain {
        conn: u8,
        bytes: u16,
    },
    /// The clock moves on (see `ADVANCE`).
    Advance(u8),
    /// Passes of the server loop.
    Poll(u8),
}

const ADVANCE: [u64; 8] = [0, 1, 10, 400, 1_100, 3_000, 30_000, 61_000];

#[derive(Debug)]
struct Input {
    config: u8,
    idle: u8,
    events: Vec<Event>,
}

/// Input layout: the configuration and idle policy bytes, then events of
/// an opcode byte and arguments.
impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let config = byte(u)?;
        let idle = byte(u)?;
        let mut events = Vec::new();
        while !u.is_empty() {
            events.push(match byte(u)? % 9 {
                0 => Event::Connect,
                1 => Event::Data {
                    conn: byte(u)?,
                    bytes: bytes(u, 64)?,
                },
                2 => Event::Bulk {
                    conn: byte(u)?,
                    len: word(u)?,
                },
                3 => Event::HalfClose(byte(u)?),
                4 => Event::Reset(byte(u)?),
                5 => Event::Stall(byte(u)?),
                6 => Event::Drain {
                    conn: byte(u)?,
                    bytes: word(u)?,
                },
                7 => Event::Advance(byte(u)?),
                _ => Event::Poll(byte(u)?),
            });
        }
        Ok(Input {
            config,
            idle,
            events,
        })
    }
}

/// Upper's answer to `input` followed by EOF.
fn upper_model(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let window = &rest[..rest.len().min(MAX)];
        if let Some(i) = window.iter().position(|&b| b == b'\n') {
            out.extend(rest[..=i].iter().map(u8::to_ascii_uppercase));
            rest = &rest[i + 1..];
        } else if rest.len() < MAX {
            out.extend(rest.iter().map(u8::to_ascii_uppercase));
            rest = &[];
        } else {
            rest = &rest[MAX..];
            let skip = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            rest = &rest[skip..];
            out.extend_from_slice(LINE_TOO_LONG);
        }
    }
    out
}

/// One client: its pipe, everything it sent, and the model's answer to
/// it (computed again only when `sent` grew).
struct Client {
    pipe: Rc<RefCell<Pipe>>,
    sent: Vec<u8>,
    expected: Vec<u8>,
    expected_for: usize,
}

fn idle_policy(idle: u8) -> IdlePolicy {
    let timeout = [None, Some(100), Some(2_000), Some(60_000)][usize::from(idle & 3)];
    let evict = [None, Some(10), Some(1_000), Some(1_000)][usize::from((idle >> 2) & 3)];
    let rate = (idle >> 4) & 1 == 1;
    IdlePolicy::default()
        .idle_timeout(timeout.map(Duration::from_millis))
        .evict_after(evict.map(Duration::from_millis))
        .min_rate(rate.then_some(MinRate {
            bytes: 64,
            per: Duration::from_secs(1),
        }))
}

fn run<H, const N: usize, const RBUF: usize>(handler: H, upper: bool, input: &Input)
where
    H: AsyncStreamRequestHandler<MuxConn>,
{
    let model = |sent: &[u8]| {
        if upper {
            upper_model(sent)
        } else {
            sent.to_vec()
        }
    };
    let journal = Journal::default();
    let handler = Counted {
        inner: handler,
        journal: journal.clone(),
    };
    let mux = pin!(
        Multiplexed::<MuxConn, _, _, N>::with_rbufsize::<RBUF>(handler)
            .with_idle_policy(idle_policy(input.idle))
    );
    let listener = MuxListener::default();
    let waiter = MuxWaiter::default();
    let clock = waiter.micros.clone();
    let hooks = CountingHooks(journal.clone());
    let mut server = Server::new(listener.clone(), waiter, mux, hooks);
    let mut clients: Vec<Client> = Vec::new();

    let check = |clients: &mut [Client]| {
        for (id, c) in clients.iter_mut().enumerate() {
            let p = c.pipe.borrow();
            if c.expected_for != c.sent.len() {
                c.expected = model(&c.sent);
                c.expected_for = c.sent.len();
            }
            assert!(
                c.expected.starts_with(&p.to_client),
                "client {id}: answer is not a prefix of the model's"
            );
            assert!(p.closed + p.aborted <= 1, "client {id} ended twice");
        }
    };

    for event in &input.events {
        let pick = |conn: &u8| (!clients.is_empty()).then(|| usize::from(*conn) % clients.len());
        match event {
            Event::Connect => {
                if clients.len() < 64 {
                    let pipe = Rc::new(RefCell::new(Pipe::default()));
                    let id = clients.len() as u32;
                    listener.pending.borrow_mut().push_back(MuxConn {
                        id,
                        pipe: pipe.clone(),
                    });
                    clients.push(Client {
                        pipe,
                        sent: Vec::new(),
                        expected: Vec::new(),
                        expected_for: 0,
                    });
                }
            }
            Event::Data { conn, bytes } => {
                if let Some(i) = pick(conn) {
                    let c = &mut clients[i];
                    let mut p = c.pipe.borrow_mut();
                    if !p.eof && !p.reset {
                        let bytes = bytes.iter().map(|&b| if b % 8 == 3 { b'\n' } else { b });
                        for b in bytes {
                            p.to_server.push_back(b);
                            c.sent.push(b);
                        }
                        p.wake_reader();
                    }
                }
            }
            Event::Bulk { conn, len } => {
                if let Some(i) = pick(conn) {
                    let c = &mut clients[i];
                    let mut p = c.pipe.borrow_mut();
                    if !p.eof && !p.reset {
                        let n = match *len % 16 {
                            0 => 70_000,
                            _ => usize::from(*len % 1024),
                        };
                        let bulk = (0..n).map(|k| match k % 61 {
                            60 => b'\n',
                            k => b'a' + (k % 26) as u8,
                        });
                        c.sent.extend(bulk.clone());
                        p.to_server.extend(bulk);
                        p.wake_reader();
                    }
                }
            }
            Event::HalfClose(conn) => {
                if let Some(i) = pick(conn) {
                    let mut p = clients[i].pipe.borrow_mut();
                    p.eof = true;
                    p.wake_reader();
                }
            }
            Event::Reset(conn) => {
                if let Some(i) = pick(conn) {
                    let mut p = clients[i].pipe.borrow_mut();
                    p.reset = true;
                    p.wake_reader();
                    p.wake_writer();
                }
            }
            Event::Stall(conn) => {
                if let Some(i) = pick(conn) {
                    clients[i].pipe.borrow_mut().window = Some(0);
                }
            }
            Event::Drain { conn, bytes } => {
                if let Some(i) = pick(conn) {
                    let mut p = clients[i].pipe.borrow_mut();
                    p.window = match (p.window, *bytes) {
                        (_, 0) | (None, _) => None,
                        (Some(w), n) => Some(w + usize::from(n)),
                    };
                    p.wake_writer();
                }
            }
            Event::Advance(step) => {
                let ms = ADVANCE[usize::from(*step) % ADVANCE.len()];
                clock.set(clock.get() + ms * 1000);
                server.serve_ready();
            }
            Event::Poll(times) => {
                for _ in 0..=(*times % 8) {
                    server.serve_ready();
                }
            }
        }
        assert!(server.strategy().active() <= N);
        check(&mut clients);
    }

    // Every client half-closes and reads all: each must be served, in a
    // bounded number of passes, with no time passing (no idle cut).
    for c in &clients {
        let mut p = c.pipe.borrow_mut();
        p.eof = true;
        p.window = None;
        p.wake_reader();
        p.wake_writer();
    }
    let mut passes = 0;
    while !listener.pending.borrow().is_empty()
        || Strategy::<Accepted<MuxConn>, CountingHooks>::in_flight(server.strategy()) > 0
    {
        passes += 1;
        assert!(
            passes < 10_000,
            "requests left after every client half-closed"
        );
        server.serve_ready();
    }
    check(&mut clients);
    server.server_close();

    let counts = journal.borrow();
    for (id, c) in clients.iter().enumerate() {
        let p = c.pipe.borrow();
        let n = counts.get(id).cloned().unwrap_or_default();
        assert_eq!(p.closed + p.aborted, 1, "client {id}: closed or reset once");
        assert_eq!(n.process_request, 1, "client {id}: accepted once");
        assert_eq!(n.close_request, 1, "client {id}: one close_request");
        assert_eq!(n.shutdown_request, 1, "client {id}: one shutdown_request");
        assert!(n.finish_request <= 1, "client {id}: started at most once");
        assert_eq!(n.setup, n.finish_request, "client {id}: setup per start");
        assert_eq!(n.finish, n.setup, "client {id}: finish once per setup");
        assert!(n.handle_error <= 1, "client {id}: one error at most");
        if p.aborted == 0 && !p.reset {
            // Neither cut nor reset: the whole answer, then a FIN.
            assert_eq!(p.to_client, model(&c.sent), "client {id}: whole answer");
            assert!(p.shut_write, "client {id}: a clean end is a FIN");
        }
        if p.aborted == 0 && n.finish_request == 0 {
            panic!("client {id}: never served, yet not cut");
        }
    }
    drop(counts);
    drop(server);
    // The strategy (pinned in this frame) still holds its run of N slot ids
    // (taken with its first request): they go back to the pool when it is
    // dropped, which the caller checks.
    assert!(
        slot_ids_in_use() <= N,
        "at most a run of N ids while the strategy lives"
    );
}

fuzz_target!(|input: Input| {
    let upper = input.config & 1 == 1;
    match (upper, (input.config >> 1) % 6) {
        (false, 0) => run::<_, 1, 1024>(Echo::<7>, false, &input),
        (false, 1) => run::<_, 2, 1024>(Echo::<7>, false, &input),
        (false, 2) => run::<_, 3, 0>(Echo::<64>, false, &input),
        (false, 3) => run::<_, 2, 8>(Echo::<3>, false, &input),
        (false, 4) => run::<_, 4, 1024>(Echo::<1024>, false, &input),
        (false, _) => run::<_, 1, 0>(Echo::<2>, false, &input),
        (true, 0) => run::<_, 1, 1024>(Upper::<MAX>, true, &input),
        (true, 1) => run::<_, 2, 1024>(Upper::<MAX>, true, &input),
        (true, 2) => run::<_, 3, 0>(Upper::<MAX>, true, &input),
        (true, 3) => run::<_, 2, 8>(Upper::<MAX>, true, &input),
        (true, 4) => run::<_, 4, 5>(Upper::<MAX>, true, &input),
        (true, _) => run::<_, 1, 0>(Upper::<MAX>, true, &input),
    }
    // Every slot id of the process is free again once the strategy is gone.
    assert_eq!(slot_ids_in_use(), 0, "slot ids leaked");
});
