//! serve_forever and shutdown: from another thread, before start, twice, stale.

mod support;

use std::sync::Arc;
use std::thread;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use socketserver_core::time::Duration;
use socketserver_core::{DefaultHooks, Echo, Sequential, Server, ShutdownFlag};
use support::{Journal, MockListener, MockWaiter, RecordingHooks};

type EchoServer = Server<MockListener, MockWaiter, Sequential<Echo>, RecordingHooks>;

fn echo_server() -> (EchoServer, MockListener, Arc<ShutdownFlag>, Journal) {
    let listener = MockListener::default();
    let waiter = MockWaiter::default();
    let flag = waiter.flag.clone();
    let journal = Journal::default();
    let hooks = RecordingHooks {
        journal: journal.clone(),
        ..RecordingHooks::default()
    };
    (
        Server::new(
            listener.clone(),
            waiter,
            Sequential::new(Echo::<1024>),
            hooks,
        ),
        listener,
        flag,
        journal,
    )
}

fn wait_until(what: impl Fn() -> bool) {
    let deadline = StdInstant::now() + StdDuration::from_secs(5);
    while !what() {
        assert!(StdInstant::now() < deadline, "condition not reached in 5 s");
        thread::sleep(StdDuration::from_millis(1));
    }
}

#[test]
fn shutdown_from_another_thread_stops_the_loop_at_once() {
    let (mut server, listener, flag, journal) = echo_server();
    let serving = thread::spawn(move || {
        // A long poll interval: shutdown must not wait for it.
        server.serve_forever(Duration::from_secs(30)).unwrap();
        server
    });
    wait_until(|| flag.is_serving());
    let pipe = listener.connect(b"ping", true);
    wait_until(|| pipe.lock().unwrap().closed);
    assert_eq!(pipe.lock().unwrap().to_client, b"ping");
    let asked = StdInstant::now();
    assert!(flag.request());
    let server = serving.join().unwrap();
    let latency = asked.elapsed();
    assert!(
        latency < StdDuration::from_millis(100),
        "shutdown took {latency:?}"
    );
    assert!(flag.is_stopped());
    assert!(
        journal.count("service_actions") >= 1,
        "service_actions runs once per pass"
    );
    drop(server);
}

#[test]
fn shutdown_before_the_first_loop_makes_it_return_at_once() {
    let (mut server, _listener, flag, _) = echo_server();
    assert!(
        flag.request(),
        "a request before the first loop is kept, and does not block"
    );
    let started = StdInstant::now();
    server.serve_forever(Duration::from_secs(30)).unwrap();
    assert!(started.elapsed() < StdDuration::from_millis(100));
}

#[test]
fn stale_shutdown_does_not_stop_the_next_loop() {
    let (mut server, listener, flag, _) = echo_server();
    let flag2 = flag.clone();
    let stopper = thread::spawn(move || {
        wait_until(|| flag2.is_serving());
        flag2.request();
    });
    server.serve_forever(Duration::from_millis(10)).unwrap();
    stopper.join().unwrap();
    // Twice, and after the loop stopped: both stale.
    assert!(!flag.request());
    assert!(!flag.request());
    // The next loop must serve, not return at once.
    let pipe = listener.connect(b"again", true);
    let flag3 = flag.clone();
    let pipe2 = pipe.clone();
    let stopper = thread::spawn(move || {
        wait_until(|| pipe2.lock().unwrap().closed);
        flag3.request();
    });
    server.serve_forever(Duration::from_millis(10)).unwrap();
    stopper.join().unwrap();
    assert_eq!(pipe.lock().unwrap().to_client, b"again");
}

#[test]
fn a_static_flag_works_as_from_an_interrupt() {
    static FLAG: ShutdownFlag = ShutdownFlag::new();
    assert!(!FLAG.is_serving());
    assert!(FLAG.request());
    assert!(
        !FLAG.is_requested(),
        "pending until a loop starts: waits elsewhere are not woken"
    );
    assert!(
        FLAG.enter_loop().is_none(),
        "the first loop sees the pending request and stops at once"
    );
    assert!(FLAG.is_stopped());
    let waiter = MockWaiter {
        flag: Arc::new(ShutdownFlag::new()),
        ..MockWaiter::default()
    };
    let mut server = Server::new(
        MockListener::default(),
        waiter,
        Sequential::new(Echo::<64>),
        DefaultHooks,
    );
    // A different flag: this server is unaffected by the static one.
    assert!(!server.shutdown_flag().is_requested());
    assert!(!server.serve_ready());
}

#[test]
fn early_wake_ups_do_not_speed_up_service_actions() {
    let (mut server, _listener, flag, journal) = echo_server();
    server.waiter_mut().wake_early = true;
    let stopper = thread::spawn(move || {
        wait_until(|| flag.is_serving());
        thread::sleep(StdDuration::from_millis(300));
        flag.request();
    });
    server.serve_forever(Duration::from_millis(50)).unwrap();
    stopper.join().unwrap();
    let passes = journal.count("service_actions");
    assert!(
        (3..=9).contains(&passes),
        "expected about 6 passes of 50 ms in 300 ms, got {passes}"
    );
    assert!(
        *server.waiter().waits.lock().unwrap() > 20,
        "the waiter did wake early"
    );
}

#[test]
fn two_loops_sharing_one_flag_both_stop() {
    let flag = Arc::new(ShutdownFlag::new());
    let mut handles = Vec::new();
    for _ in 0..2 {
        let waiter = MockWaiter {
            flag: flag.clone(),
            ..MockWaiter::default()
        };
        let mut server = Server::new(
            MockListener::default(),
            waiter,
            Sequential::new(Echo::<64>),
            DefaultHooks,
        );
        handles.push(thread::spawn(move || {
            server.serve_forever(Duration::from_millis(20)).unwrap()
        }));
    }
    wait_until(|| flag.is_serving());
    thread::sleep(StdDuration::from_millis(20));
    assert!(flag.request());
    for handle in handles {
        handle.join().unwrap();
    }
    assert!(flag.is_stopped());
}
