//! `Multiplexed<N>` over the in-memory transport: N async requests
//! from one thread, a client beyond N served when a slot frees with no byte
//! lost, polls only for slots that were woken, a request done on its first
//! poll, `finish` after a failure, a cut that runs `finish` and resets, and
//! a busy connection that cannot hold the thread.

mod support;

use core::pin::pin;
use std::sync::{Arc, Mutex};

use socketserver_core::time::Duration;
use socketserver_core::{
    AsyncStreamRequest, AsyncStreamRequestHandler, Connection, Echo, Error, Multiplexed, Server,
    Upper,
};
use support::{Journal, MockConn, MockListener, MockWaiter, Pipe, RecordingHooks};

fn hooks(journal: &Journal) -> RecordingHooks {
    RecordingHooks {
        journal: journal.clone(),
        refuse: false,
    }
}

/// A server over a fresh in-memory listener with `mux` as its strategy,
/// journaling into `journal`.
fn serve<S: socketserver_core::StrategyFor<MockListener, RecordingHooks>>(
    mux: S,
    journal: &Journal,
) -> (
    Server<MockListener, MockWaiter, S, RecordingHooks>,
    MockListener,
) {
    let listener = MockListener::default();
    let mut server = Server::new(listener.clone(), MockWaiter::default(), mux, hooks(journal));
    server.set_timeout(Some(Duration::from_secs(5)));
    (server, listener)
}

fn out(pipe: &Arc<Mutex<Pipe>>) -> String {
    String::from_utf8_lossy(&pipe.lock().unwrap().to_client).into_owned()
}

#[test]
fn three_clients_on_two_slots_all_served_in_turn_no_byte_lost() {
    let journal = Journal::default();
    let mux = pin!(Multiplexed::<MockConn, _, _, 2>::new(Echo::<64>));
    let (mut server, listener) = serve(mux, &journal);
    let a = listener.connect(b"aaaa", false);
    let b = listener.connect(b"bbbb", false);
    let big: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let c = listener.connect(&big, true);
    for _ in 0..10 {
        server.serve_ready();
    }
    assert_eq!(server.strategy().active(), 2, "two slots busy");
    assert_eq!(listener.pending.lock().unwrap().len(), 1, "the third waits");
    assert_eq!(out(&a), "aaaa");
    assert_eq!(out(&b), "bbbb");

    // a sends more, then EOF: its slot frees and the third is served.
    Pipe::send(&a, b"AA", true);
    for _ in 0..20 {
        server.serve_ready();
    }
    assert_eq!(out(&a), "aaaaAA");
    assert!(a.lock().unwrap().closed && a.lock().unwrap().shut_write);
    assert_eq!(
        c.lock().unwrap().to_client,
        big,
        "5000 bytes through 64-byte reads"
    );
    assert!(c.lock().unwrap().closed);
    assert_eq!(journal.count("handle_error"), 0);
}

#[test]
fn only_woken_slots_are_polled() {
    let journal = Journal::default();
    let mux = pin!(Multiplexed::<MockConn, _, _, 4>::new(Upper::<64>));
    let (mut server, listener) = serve(mux, &journal);
    let quiet = listener.connect(b"", false);
    let talker = listener.connect(b"", false);
    for _ in 0..3 {
        server.serve_ready();
    }
    let quiet_tries = quiet.lock().unwrap().reads_tried;
    for i in 0..50 {
        Pipe::send(&talker, format!("line {i}\n").as_bytes(), false);
        server.serve_ready();
    }
    assert_eq!(
        quiet.lock().unwrap().reads_tried,
        quiet_tries,
        "a slot nobody woke is not polled"
    );
    assert!(out(&talker).starts_with("LINE 0\nLINE 1\n"));
    assert!(out(&talker).ends_with("LINE 49\n"));
}

/// Done at once: `setup` fails, or the handler has nothing to do.
#[derive(Clone)]
struct Journaled {
    journal: Journal,
    fail: bool,
    timeout: Option<Duration>,
}

impl<C: Connection> AsyncStreamRequestHandler<C> for Journaled {
    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        self.journal.push("handle");
        let mut line = [0u8; 32];
        let n = req.read_line(&mut line).await?;
        req.write_all(&line[..n]).await?;
        if self.fail {
            return Err(Error::msg(format_args!("failed after {n} bytes")));
        }
        Ok(())
    }

    async fn finish(
        &mut self,
        _req: &mut AsyncStreamRequest<'_, C>,
    ) -> Result<(), Error<C::Error>> {
        self.journal.push("finish");
        Ok(())
    }

    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
}

#[test]
fn a_request_done_on_its_first_poll_and_a_failure_that_still_runs_finish() {
    for fail in [false, true] {
        let journal = Journal::default();
        let handler = Journaled {
            journal: journal.clone(),
            fail,
            timeout: None,
        };
        let mux = pin!(Multiplexed::<MockConn, _, _, 2>::new(handler));
        let (mut server, listener) = serve(mux, &journal);
        let pipe = listener.connect(b"ready\n", true);
        server.serve_ready();
        assert_eq!(
            out(&pipe),
            "ready\n",
            "served within the pass it was accepted"
        );
        assert_eq!(server.strategy().active(), 0);
        assert_eq!(journal.count("finish"), 1);
        assert_eq!(
            journal.count("handle_error(handler failed: failed after 6 bytes)"),
            usize::from(fail)
        );
        assert!(pipe.lock().unwrap().closed);
    }
}

#[test]
fn server_close_cuts_requests_in_flight_and_their_finish_runs() {
    let journal = Journal::default();
    let handler = Journaled {
        journal: journal.clone(),
        fail: false,
        timeout: None,
    };
    let mux = pin!(Multiplexed::<MockConn, _, _, 2>::new(handler));
    let (mut server, listener) = serve(mux, &journal);
    let waiting = listener.connect(b"no newline yet", false);
    for _ in 0..3 {
        server.serve_ready();
    }
    assert_eq!(server.strategy().active(), 1);
    server.server_close();
    assert_eq!(server.strategy().active(), 0);
    assert_eq!(journal.count("finish"), 1, "finish ran for the cut request");
    assert_eq!(journal.count("handle_error(request cut by the server)"), 1);
    assert!(waiting.lock().unwrap().closed);
    assert!(
        !waiting.lock().unwrap().shut_write,
        "a cut is not a half-close (FIN)"
    );
}

#[test]
fn a_busy_connection_cannot_hold_the_serving_thread() {
    let journal = Journal::default();
    let mux = pin!(Multiplexed::<MockConn, _, _, 2>::new(Echo::<4096>));
    let (mut server, listener) = serve(mux, &journal);
    // 4 MiB already waiting: a handler that loops "while there is data"
    // would echo all of it in one poll.
    let flood = listener.connect(&vec![b'x'; 4 << 20], false);
    let other = listener.connect(b"hi", false);
    server.serve_ready();
    let echoed = flood.lock().unwrap().to_client.len();
    assert!(echoed <= 128 * 1024, "one pass echoed {echoed} bytes");
    assert_eq!(out(&other), "hi", "served in the same pass");
    for _ in 0..200 {
        server.serve_ready();
    }
    assert_eq!(
        flood.lock().unwrap().to_client.len(),
        4 << 20,
        "all of it, in turns"
    );
}

#[test]
fn a_silent_client_is_cut_at_the_idle_timeout_and_the_next_one_served() {
    let journal = Journal::default();
    let mux = pin!(
        Multiplexed::<MockConn, _, _, 1>::new(Upper::<64>)
            .with_idle_timeout(Some(Duration::from_millis(30)))
    );
    let (mut server, listener) = serve(mux, &journal);
    let silent = listener.connect(b"", false);
    let next = listener.connect(b"next\n", true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !next.lock().unwrap().closed {
        assert!(
            std::time::Instant::now() < deadline,
            "the silent client held the only slot"
        );
        server.serve_ready();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let silent = silent.lock().unwrap();
    assert!(
        silent.closed && !silent.shut_write,
        "cut (reset), not half-closed"
    );
    assert_eq!(journal.count("handle_error(request cut by the server)"), 1);
    assert_eq!(out(&next), "NEXT\n");
}

#[test]
fn a_handlers_own_timeout_ends_its_silent_request_with_timed_out() {
    let journal = Journal::default();
    let handler = Journaled {
        journal: journal.clone(),
        fail: false,
        timeout: Some(Duration::from_millis(30)),
    };
    // The server's own idle policy is far longer: the handler's timeout acts.
    let mux = pin!(Multiplexed::<MockConn, _, _, 2>::new(handler));
    let (mut server, listener) = serve(mux, &journal);
    let silent = listener.connect(b"", false);
    let talker = listener.connect(b"hello\n", true);
    let started = std::time::Instant::now();
    while !silent.lock().unwrap().closed {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "the handler's timeout never ended the silent request"
        );
        server.serve_ready();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(30));
    assert_eq!(out(&talker), "hello\n", "the other request was served");
    assert_eq!(journal.count("finish"), 2, "finish ran for both");
    assert_eq!(journal.count("handle_error(timed out)"), 1);
    assert!(!silent.lock().unwrap().shut_write, "reset, not half-closed");
}

/// At capacity, the request an arriving client would evict may move before
/// one comes: another idle request is then the one evicted.
#[test]
fn when_the_eviction_candidate_moves_another_idle_request_is_evicted() {
    let journal = Journal::default();
    let policy =
        socketserver_core::IdlePolicy::default().evict_after(Some(Duration::from_millis(30)));
    let mux = pin!(Multiplexed::<MockConn, _, _, 2>::new(Upper::<64>).with_idle_policy(policy));
    let (mut server, listener) = serve(mux, &journal);
    let a = listener.connect(b"", false);
    let b = listener.connect(b"", false);
    server.serve_ready();
    assert_eq!(server.strategy().active(), 2);
    // Both idle past `evict_after`: one of them is the candidate.
    std::thread::sleep(std::time::Duration::from_millis(60));
    server.serve_ready();
    // Both talk, so neither is evictable; then only `b` falls idle again.
    Pipe::send(&a, b"a\n", false);
    Pipe::send(&b, b"b\n", false);
    server.serve_ready();
    std::thread::sleep(std::time::Duration::from_millis(60));
    Pipe::send(&a, b"again\n", false);
    server.serve_ready();
    server.serve_ready();
    let c = listener.connect(b"c\n", true);
    let started = std::time::Instant::now();
    while out(&c) != "C\n" {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "the newcomer was never let in: {} active",
            server.strategy().active()
        );
        server.serve_ready();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(b.lock().unwrap().closed, "the idle one was evicted");
    assert!(!a.lock().unwrap().closed, "the busy one stays");
}
