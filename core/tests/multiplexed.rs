//! Multiplexed<N>: N non-blocking requests at once, the rest wait, none lost.

mod support;

use socketserver_core::time::{Duration, Instant};
use socketserver_core::{Multiplexed, NonBlockingEcho, StreamServer};
use support::{Journal, MockConn, MockListener, MockWaiter, RecordingHooks};

#[test]
fn three_clients_on_two_slots_all_served_no_byte_lost() {
    let listener = MockListener::default();
    let journal = Journal::default();
    let hooks = RecordingHooks {
        journal: journal.clone(),
        ..RecordingHooks::default()
    };
    let strategy: Multiplexed<MockConn, NonBlockingEcho<64>, 2> =
        Multiplexed::new(NonBlockingEcho::default());
    let mut server = StreamServer::new(listener.clone(), MockWaiter::default(), strategy, hooks);

    // Two clients that stay open, a third that is complete at once.
    let a = listener.connect(b"aaaa", false);
    let b = listener.connect(b"bbbb", false);
    let big: Vec<u8> = (0..200u8).collect();
    let c = listener.connect(&big, true);

    for _ in 0..10 {
        server.poll();
    }
    assert_eq!(server.strategy().active(), 2, "two slots busy");
    assert_eq!(
        listener.pending.lock().unwrap().len(),
        1,
        "the third client waits, it is not dropped"
    );
    assert_eq!(a.lock().unwrap().to_client, b"aaaa");
    assert_eq!(b.lock().unwrap().to_client, b"bbbb");
    assert!(c.lock().unwrap().to_client.is_empty());

    // a finishes: its slot frees and the third client is served.
    a.lock().unwrap().client_eof = true;
    for _ in 0..20 {
        server.poll();
    }
    assert!(a.lock().unwrap().closed);
    assert_eq!(
        c.lock().unwrap().to_client,
        big,
        "200 bytes through a 64-byte ring, none lost"
    );
    assert!(c.lock().unwrap().shut_write && c.lock().unwrap().closed);
    assert_eq!(server.strategy().active(), 1);

    // server_close cuts the one still open, and says so.
    server.server_close();
    assert!(b.lock().unwrap().closed);
    assert_eq!(journal.count("close_request"), 3);
    let errors: Vec<String> = journal
        .events()
        .into_iter()
        .filter(|e| e.starts_with("handle_error"))
        .collect();
    assert_eq!(errors, ["handle_error(request cut by the server)"]);
}

#[test]
fn a_silent_client_is_ended_by_the_idle_timeout() {
    let listener = MockListener::default();
    let journal = Journal::default();
    let hooks = RecordingHooks {
        journal: journal.clone(),
        ..RecordingHooks::default()
    };
    let strategy: Multiplexed<MockConn, NonBlockingEcho<64>, 1> =
        Multiplexed::new(NonBlockingEcho::default())
            .with_idle_timeout(Some(Duration::from_millis(30)));
    let mut server = StreamServer::new(listener.clone(), MockWaiter::default(), strategy, hooks);
    let silent = listener.connect(b"", false);
    let next = listener.connect(b"next", true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !next.lock().unwrap().closed {
        assert!(
            std::time::Instant::now() < deadline,
            "the silent client held the only slot"
        );
        server.poll();
        let _: Option<Instant> = server.strategy().next_idle_deadline();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert!(silent.lock().unwrap().closed);
    assert_eq!(journal.count("handle_error(timed out)"), 1);
    assert_eq!(next.lock().unwrap().to_client, b"next");
}
