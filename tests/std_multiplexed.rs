//! Core's `Multiplexed` and std's `HeapMultiplexed` on real sockets: the
//! same async handler values (`Upper`, `Echo`) served concurrently from one
//! thread over TCP and Unix streams, woken by the std waiter's epoll (only
//! the connections whose requests wait), a client beyond the slots served
//! when one frees, eviction of the longest idle at the limit, heap slots
//! freed after a burst, and a shutdown that cuts the requests in flight
//! with a reset.

mod support;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::pin::pin;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use socketserver::{Echo, IdlePolicy, Multiplexed, Upper};
use socketserver_std::{
    CHUNK_SLOTS, HeapMultiplexed, Options, ShutdownHandle, SocketStreamServer, TcpConnection,
    UnixConnection,
};
use support::behaviour;
use support::running::{serve_tcp, spawn_tcp_server};

const POLL: Duration = Duration::from_millis(100);

/// Serves `Upper` on `N` slots over TCP in its own thread while `clients`
/// runs; then stops the server.
fn with_tcp_upper<const N: usize>(clients: impl FnOnce(SocketAddr)) {
    let (running, addr) = spawn_tcp_server(8 << 20, |ready| {
        let mux = pin!(Multiplexed::<TcpConnection, _, _, N>::new(Upper::<64>));
        serve_tcp(
            SocketStreamServer::new("127.0.0.1:0", mux).expect("bind"),
            &ready,
        );
    });
    clients(addr);
    drop(running);
}

fn answer_lines(s: &mut TcpStream, lines: &[&str]) -> Vec<String> {
    let mut reader = BufReader::new(s.try_clone().unwrap());
    lines
        .iter()
        .map(|line| {
            s.write_all(line.as_bytes()).unwrap();
            let mut answer = String::new();
            reader.read_line(&mut answer).expect("an answer");
            answer
        })
        .collect()
}

#[test]
fn eight_clients_at_once_on_eight_slots_each_answered_in_turn() {
    with_tcp_upper::<8>(|addr| {
        let mut clients: Vec<TcpStream> = (0..8)
            .map(|_| {
                let s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s
            })
            .collect();
        // Interleaved: every client's request is in flight at once.
        for round in 0..3 {
            for (i, c) in clients.iter_mut().enumerate() {
                let answers = answer_lines(c, &[&format!("client {i} round {round}\n")]);
                assert_eq!(answers, [format!("CLIENT {i} ROUND {round}\n")]);
            }
        }
        // An overlong line is answered with an error line; the request goes on.
        let long = format!("{}\n", "x".repeat(1000));
        let answers = answer_lines(&mut clients[0], &[&long, "after\n"]);
        assert_eq!(answers, ["ERROR line too long\n", "AFTER\n"]);
    });
}

#[test]
fn a_client_beyond_the_slots_waits_and_is_served_when_one_frees() {
    with_tcp_upper::<2>(|addr| {
        let mut a = TcpStream::connect(addr).unwrap();
        let mut b = TcpStream::connect(addr).unwrap();
        for s in [&a, &b] {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        assert_eq!(answer_lines(&mut a, &["a\n"]), ["A\n"]);
        assert_eq!(answer_lines(&mut b, &["b\n"]), ["B\n"]);
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        c.write_all(b"c\n").unwrap();
        let mut buf = [0u8; 2];
        let early = c.read(&mut buf);
        assert!(
            matches!(&early, Err(e) if e.kind() == ErrorKind::WouldBlock),
            "both slots busy and nobody idle long: c waits, {early:?}"
        );
        drop(a); // a's request ends: its slot frees
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.read_exact(&mut buf).expect("served once a slot freed");
        assert_eq!(&buf, b"C\n");
    });
}

#[test]
fn echo_over_unix_streams_with_a_large_transfer() {
    let path = support::temp_socket("async-mux");
    let socket_path = path.clone();
    thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<ShutdownHandle>();
        scope.spawn(move || {
            let mux = pin!(Multiplexed::<UnixConnection, _, _, 4>::new(Echo::<4096>));
            let mut server = SocketStreamServer::new(&socket_path, mux).expect("bind");
            tx.send(server.shutdown_handle()).unwrap();
            server.serve_forever(POLL).expect("serve");
            server.server_close();
        });
        let stop = rx.recv().unwrap();
        let target = behaviour::unix(&path);
        behaviour::echo_round_trip(&target).expect("round trip");
        behaviour::echo_large(&target, 4 << 20).expect("4 MiB echoed intact");
        stop.shutdown();
    });
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_shutdown_cuts_requests_in_flight_with_a_reset() {
    thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(ShutdownHandle, SocketAddr)>();
        let serving = scope.spawn(move || {
            let mux = pin!(Multiplexed::<TcpConnection, _, _, 4>::new(Upper::<64>));
            let mut server = SocketStreamServer::new("127.0.0.1:0", mux).expect("bind");
            tx.send((server.shutdown_handle(), *server.server_address()))
                .unwrap();
            server.serve_forever(POLL).expect("serve");
            let started = Instant::now();
            server.server_close();
            started.elapsed()
        });
        let (stop, addr) = rx.recv().unwrap();
        let mut open = TcpStream::connect(addr).unwrap();
        open.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        assert_eq!(answer_lines(&mut open, &["hi\n"]), ["HI\n"]);
        open.write_all(b"no newline yet").unwrap();
        stop.shutdown();
        let closing = serving.join().unwrap();
        let mut rest = Vec::new();
        let end = open.read_to_end(&mut rest);
        assert_eq!(
            end.map_err(|e| e.kind()),
            Err(ErrorKind::ConnectionReset),
            "a cut request, not a clean EOF"
        );
        assert!(
            closing < Duration::from_secs(1),
            "server_close took {closing:?}"
        );
    });
}

#[test]
fn a_client_that_never_reads_does_not_stall_the_others() {
    let (running, addr) = spawn_tcp_server(8 << 20, |ready| {
        let mux = pin!(Multiplexed::<TcpConnection, _, _, 4>::new(Echo::<4096>));
        serve_tcp(
            SocketStreamServer::new("127.0.0.1:0", mux).expect("bind"),
            &ready,
        );
    });
    // It sends 8 MiB and reads nothing: the echo back fills both socket
    // buffers and its request waits to write, for as long as it likes.
    let mut hog = TcpStream::connect(addr).unwrap();
    hog.set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let block = vec![0u8; 64 * 1024];
    let mut sent = 0usize;
    while sent < 8 << 20 {
        match hog.write(&block) {
            Ok(n) => sent += n,
            Err(_) => break, // its own send buffer is full: the server stopped reading it
        }
    }
    // Meanwhile another client is served at once, round after round.
    let mut other = TcpStream::connect(addr).unwrap();
    other
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let start = Instant::now();
    for i in 0..100u32 {
        other.write_all(&i.to_be_bytes()).unwrap();
        let mut back = [0u8; 4];
        other
            .read_exact(&mut back)
            .expect("echo beside a stalled peer");
        assert_eq!(back, i.to_be_bytes());
    }
    let took = start.elapsed();
    eprintln!("100 round trips beside a peer that never reads ({sent} B sent): {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    drop(hog);
    drop(running);
}

#[test]
fn heap_multiplexed_runs_the_behaviour_suite_over_tcp_and_unix() {
    let (running, addr) = spawn_tcp_server(8 << 20, |ready| {
        let mux = HeapMultiplexed::<TcpConnection, _, _>::new(Echo::<4096>);
        serve_tcp(
            SocketStreamServer::new("127.0.0.1:0", mux).expect("bind"),
            &ready,
        );
    });
    let target = behaviour::tcp(addr);
    behaviour::echo_round_trip(&target).expect("TCP round trip");
    behaviour::echo_large(&target, 4 << 20).expect("4 MiB echoed intact over TCP");
    drop(running);

    let path = support::temp_socket("heap-mux");
    let socket_path = path.clone();
    thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<ShutdownHandle>();
        scope.spawn(move || {
            let mux = HeapMultiplexed::<UnixConnection, _, _>::new(Echo::<4096>);
            let mut server = SocketStreamServer::new(&socket_path, mux).expect("bind");
            tx.send(server.shutdown_handle()).unwrap();
            server.serve_forever(POLL).expect("serve");
            server.server_close();
        });
        let stop = rx.recv().unwrap();
        let target = behaviour::unix(&path);
        behaviour::echo_round_trip(&target).expect("Unix round trip");
        behaviour::echo_large(&target, 4 << 20).expect("4 MiB echoed intact over Unix");
        stop.shutdown();
    });
    let _ = std::fs::remove_file(&path);
}

/// A burst of clients grows the heap slots chunk by chunk; once they leave,
/// every empty chunk but one spare is freed.
#[test]
fn heap_multiplexed_grows_for_a_burst_and_frees_its_slots_after() {
    let mux = HeapMultiplexed::<TcpConnection, _, _>::new(Upper::<64>);
    let mut server = SocketStreamServer::new("127.0.0.1:0", mux).expect("bind");
    let addr = *server.server_address();
    let burst = 2 * CHUNK_SLOTS + 6;
    let mut clients: Vec<TcpStream> = (0..burst)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    let served = support::eventually(Duration::from_secs(10), || {
        server.serve_ready();
        server.strategy().active() == burst
    });
    assert!(served, "{} of {burst} served", server.strategy().active());
    assert_eq!(server.strategy().capacity(), 3 * CHUNK_SLOTS);
    // Every one of them is answered.
    for (i, client) in clients.iter_mut().enumerate() {
        client.write_all(format!("c{i}\n").as_bytes()).unwrap();
    }
    for (i, client) in clients.iter_mut().enumerate() {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(client);
        let mut answer = String::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while answer.is_empty() && Instant::now() < deadline {
            server.serve_ready();
            reader.get_mut().set_nonblocking(true).unwrap();
            let _ = reader.read_line(&mut answer);
        }
        assert_eq!(answer, format!("C{i}\n"));
    }
    drop(clients);
    let freed = support::eventually(Duration::from_secs(10), || {
        server.serve_ready();
        server.strategy().active() == 0 && server.strategy().capacity() == CHUNK_SLOTS
    });
    assert!(
        freed,
        "after the burst: {} active, {} slots allocated",
        server.strategy().active(),
        server.strategy().capacity()
    );
    server.server_close();
}

/// At the connection limit, a new client evicts the request idle longest,
/// whichever chunk holds it, and is served; the others go on.
#[test]
fn heap_multiplexed_at_its_limit_evicts_the_longest_idle_for_a_new_client() {
    let limit = CHUNK_SLOTS + 8; // two chunks
    let (running, addr) = spawn_tcp_server(8 << 20, move |ready| {
        let mux = HeapMultiplexed::<TcpConnection, _, _>::new(Upper::<64>).max_connections(limit);
        let policy = IdlePolicy::default().evict_after(Some(Duration::from_millis(300)));
        let options = Options::default().idle_policy(policy);
        serve_tcp(
            SocketStreamServer::with_options(
                "127.0.0.1:0",
                mux,
                socketserver::DefaultHooks,
                options,
            )
            .expect("bind"),
            &ready,
        );
    });
    let mut clients: Vec<TcpStream> = (0..limit)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        })
        .collect();
    // Each talks once, the last of the second chunk first: it is the one
    // idle longest when the newcomer arrives.
    let oldest = limit - 1;
    assert_eq!(answer_lines(&mut clients[oldest], &["old\n"]), ["OLD\n"]);
    thread::sleep(Duration::from_millis(50));
    for (i, client) in clients.iter_mut().enumerate().take(oldest) {
        assert_eq!(
            answer_lines(client, &[&format!("c{i}\n")]),
            [format!("C{i}\n")]
        );
    }
    thread::sleep(Duration::from_millis(400));
    let mut newcomer = TcpStream::connect(addr).unwrap();
    newcomer
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let start = Instant::now();
    assert_eq!(answer_lines(&mut newcomer, &["new\n"]), ["NEW\n"]);
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(2), "served after {waited:?}");
    let mut rest = Vec::new();
    let evicted = clients[oldest].read_to_end(&mut rest);
    assert!(
        matches!(&evicted, Err(e) if e.kind() == ErrorKind::ConnectionReset),
        "the longest idle is cut with a reset: {evicted:?}"
    );
    assert_eq!(answer_lines(&mut clients[0], &["still\n"]), ["STILL\n"]);
    drop(running);
}

/// A chunk added while serving times its requests from now: once the
/// process has run longer than the idle timeout, the clients that land in
/// a new chunk are served, not cut at once as idle since the clock began.
#[test]
fn heap_multiplexed_times_requests_in_a_new_chunk_from_now() {
    let (running, addr) = spawn_tcp_server(8 << 20, |ready| {
        let mux = HeapMultiplexed::<TcpConnection, _, _>::new(Upper::<64>);
        let policy = IdlePolicy::default().idle_timeout(Some(Duration::from_millis(300)));
        let options = Options::default().idle_policy(policy);
        serve_tcp(
            SocketStreamServer::with_options(
                "127.0.0.1:0",
                mux,
                socketserver::DefaultHooks,
                options,
            )
            .expect("bind"),
            &ready,
        );
    });
    // The server's clock runs past the idle timeout before anyone comes.
    thread::sleep(Duration::from_millis(500));
    let mut clients: Vec<TcpStream> = (0..CHUNK_SLOTS + 2)
        .map(|_| {
            let s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        })
        .collect();
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(
            answer_lines(client, &[&format!("c{i}\n")]),
            [format!("C{i}\n")],
            "client {i}"
        );
    }
    drop(running);
}
