//! Nothing leaks after 10,000 connections of every kind: for each stream
//! strategy (sync, threading, forking, multiplexed) and 10,000 datagrams for
//! every datagram strategy (sync, threading, forking), with clients that finish, reset mid-request,
//! half-close, or connect and leave at once, the process's descriptors,
//! threads and children are back to their baseline after `server_close`,
//! and every multiplexed slot id is back in core's pool. One test function,
//! so no other test thread disturbs the counts.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::{Echo, EchoDatagram, Sequential, slot_ids_in_use};
use socketserver_std::{
    Forking, HeapMultiplexed, SocketDatagramServer, SocketStreamServer, TcpConnection, Threading,
};

const CONNECTIONS: usize = 10_000;
const CLIENT_THREADS: usize = 4;

fn baseline() -> (usize, usize, usize) {
    (support::open_fds(), support::threads(), support::children())
}

/// One client of kind `i % 10`: 0 resets mid-request, 1 half-closes and
/// reads the rest, 2 connects and leaves at once, the others do a round trip.
fn one_client(addr: SocketAddr, i: usize) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        panic!("connect #{i}");
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    match i % 10 {
        0 => {
            s.write_all(b"about to vanish").unwrap();
            // SO_LINGER 0: the close is a reset.
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        1 => {
            s.write_all(b"half").unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back).unwrap();
            assert_eq!(back, b"half", "#{i}");
        }
        2 => {}
        _ => {
            let message = format!("client {i}");
            s.write_all(message.as_bytes()).unwrap();
            let mut back = vec![0u8; message.len()];
            s.read_exact(&mut back).unwrap();
            assert_eq!(back, message.as_bytes(), "#{i}");
        }
    }
    // An explicit end, not only a close: the forking server's children are
    // forked from this test process and inherit copies of these client
    // sockets, so a close alone would not end the connection while a
    // child lives (the same holds in Python for a process that forks while
    // it holds client sockets).
    let _ = s.shutdown(std::net::Shutdown::Both);
}

fn many_clients(addr: SocketAddr) {
    let per_thread = CONNECTIONS / CLIENT_THREADS;
    let threads: Vec<_> = (0..CLIENT_THREADS)
        .map(|t| {
            thread::spawn(move || {
                for i in t * per_thread..(t + 1) * per_thread {
                    one_client(addr, i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
}

macro_rules! stream_case {
    ($name:expr, $strategy:expr) => {{
        let base = baseline();
        let started = Instant::now();
        let mut server = SocketStreamServer::new("127.0.0.1:0", $strategy).expect("bind");
        let stop = server.shutdown_handle();
        let addr = *server.server_address();
        let serving = thread::spawn(move || {
            server.serve_forever(Duration::from_millis(100)).unwrap();
            server.server_close();
        });
        many_clients(addr);
        stop.shutdown();
        serving.join().unwrap();
        drop(stop); // a handle keeps the server's wake-up and epoll descriptors
        let settled = support::eventually(Duration::from_secs(10), || baseline() == base);
        println!(
            "{}: {CONNECTIONS} connections in {:?}",
            $name,
            started.elapsed()
        );
        assert!(
            settled,
            "{}: {:?} after, {base:?} before",
            $name,
            baseline()
        );
        assert_eq!(slot_ids_in_use(), 0, "{}: slot ids", $name);
    }};
}

macro_rules! datagram_case {
    ($name:expr, $strategy:expr) => {{
        let base = baseline();
        let mut server =
            SocketDatagramServer::<SocketAddr, _>::new("127.0.0.1:0", $strategy).expect("bind");
        let stop = server.shutdown_handle();
        let addr = *server.server_address();
        let serving = thread::spawn(move || {
            server.serve_forever(Duration::from_millis(100)).unwrap();
            server.server_close();
        });
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut answered = 0;
        for i in 0..CONNECTIONS {
            let message = (i as u32).to_be_bytes();
            client.send_to(&message, addr).unwrap();
            let mut back = [0u8; 8];
            // A reply lost or late under load is a datagram's right (a late
            // one is skipped when it comes); a wrong one is not.
            while let Ok(n) = client.recv(&mut back) {
                let echoed = <[u8; 4]>::try_from(&back[..n]).map(u32::from_be_bytes);
                assert!(
                    matches!(echoed, Ok(e) if e as usize <= i),
                    "{}: datagram {i}: a reply that was never sent: {:?}",
                    $name,
                    &back[..n]
                );
                if back[..n] == message {
                    answered += 1;
                    break;
                }
            }
        }
        drop(client);
        stop.shutdown();
        serving.join().unwrap();
        drop(stop);
        assert!(
            answered >= CONNECTIONS * 99 / 100,
            "{}: {answered} of {CONNECTIONS} answered",
            $name
        );
        assert!(
            support::eventually(Duration::from_secs(10), || baseline() == base),
            "{}: {:?} after, {base:?} before",
            $name,
            baseline()
        );
    }};
}

#[test]
fn nothing_leaks_after_ten_thousand_connections_of_every_kind() {
    let _fork = support::fork_lock();
    stream_case!("sync", Sequential::new(Echo::<1024>));
    stream_case!("threading", Threading::new(Echo::<1024>));
    stream_case!("forking", Forking::new(Echo::<1024>));
    stream_case!(
        "multiplexed",
        HeapMultiplexed::<TcpConnection, _, _>::new(Echo::<1024>)
    );
    datagram_case!("udp sync", Sequential::new(EchoDatagram));
    datagram_case!("udp threading", Threading::new(EchoDatagram));
    datagram_case!("udp forking", Forking::new(EchoDatagram));
}
