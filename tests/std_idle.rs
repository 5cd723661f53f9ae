//! Idle and slow peers have bounded power, by default (README,
//! "Guarantees"): a silent peer is ended at the idle timeout, a trickling one
//! at the minimum rate, and at capacity a new client evicts the connection
//! idle longest; every such end is a reset, never a clean EOF. Checked on
//! real TCP sockets under threading and multiplexed, and with a thousand
//! silent plus a thousand trickling connections.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::{DefaultHooks, Echo, IdlePolicy, MinRate, Multiplexed};
use socketserver_std::{Options, SocketStreamServer, TcpConnection, Threading, ThreadingTCPServer};

use support::running::{Running, serve_tcp, spawn_tcp_server};

fn threading(policy: IdlePolicy, max_threads: usize) -> (Running, SocketAddr) {
    spawn_tcp_server(1 << 20, move |ready| {
        let strategy = Threading::new(Echo::<1024>)
            .max_threads(max_threads)
            .stack_size(Some(64 * 1024));
        let options = Options::default().idle_policy(policy);
        let server: ThreadingTCPServer<Echo<1024>> =
            SocketStreamServer::with_options("127.0.0.1:0", strategy, Default::default(), options)
                .expect("bind");
        serve_tcp(server, &ready);
    })
}

/// Core's async `Echo` on `N` `Multiplexed` slots, pinned in the serving
/// thread (with a large stack: the slots live inline).
fn multiplexed<const N: usize>(policy: IdlePolicy) -> (Running, SocketAddr) {
    spawn_tcp_server(256 << 20, move |ready| {
        let slots = std::pin::pin!(Multiplexed::<TcpConnection, _, _, N>::new(Echo::<64>));
        let options = Options::default().idle_policy(policy);
        let server = SocketStreamServer::with_options("127.0.0.1:0", slots, DefaultHooks, options)
            .expect("bind");
        serve_tcp(server, &ready);
    })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Connect, send a line, read it back: how long a new client waits.
fn round_trip(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    let mut s = connect(addr);
    s.write_all(b"ping\n").unwrap();
    let mut reply = [0u8; 5];
    s.read_exact(&mut reply).expect("echo");
    assert_eq!(&reply, b"ping\n");
    start.elapsed()
}

/// Reads until the server ends the connection: `Ok` for a clean EOF, the
/// error kind otherwise.
fn how_it_ends(s: &mut TcpStream) -> Result<(), ErrorKind> {
    let mut buf = [0u8; 256];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.kind()),
        }
    }
}

/// Each policy below is the default with one bound shortened, so the tests
/// run in seconds.
fn short_idle() -> IdlePolicy {
    IdlePolicy::default().idle_timeout(Some(Duration::from_millis(300)))
}

fn short_window() -> IdlePolicy {
    IdlePolicy::default().min_rate(Some(MinRate {
        bytes: 64,
        per: Duration::from_millis(600),
    }))
}

#[test]
fn a_silent_peer_is_reset_at_the_idle_timeout() {
    let (_t, t_addr) = threading(short_idle(), 64);
    let (_m, m_addr) = multiplexed::<8>(short_idle());
    for (name, addr) in [("threading", t_addr), ("multiplexed", m_addr)] {
        let mut silent = connect(addr);
        let start = Instant::now();
        let end = how_it_ends(&mut silent);
        let waited = start.elapsed();
        eprintln!("{name}: silent peer ended after {waited:?}: {end:?}");
        assert_eq!(end, Err(ErrorKind::ConnectionReset), "{name}");
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
            "{name}: {waited:?}"
        );
        round_trip(addr);
    }
}

#[test]
fn a_trickling_peer_is_reset_at_the_minimum_rate() {
    let (_t, t_addr) = threading(short_window(), 64);
    let (_m, m_addr) = multiplexed::<8>(short_window());
    for (name, addr) in [("threading", t_addr), ("multiplexed", m_addr)] {
        let mut trickler = connect(addr);
        let mut reader = trickler.try_clone().unwrap();
        let start = Instant::now();
        let ending = thread::spawn(move || how_it_ends(&mut reader));
        // One byte every 50 ms: 12 bytes per 600 ms window, below 64, yet
        // never idle. Bounded: at most 10 s.
        while !ending.is_finished() && start.elapsed() < Duration::from_secs(10) {
            if trickler.write_all(b"x").is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let end = ending.join().unwrap();
        let waited = start.elapsed();
        eprintln!("{name}: trickler ended after {waited:?}: {end:?}");
        assert_eq!(end, Err(ErrorKind::ConnectionReset), "{name}");
        assert!(waited < Duration::from_secs(3), "{name}: {waited:?}");
    }
}

#[test]
fn at_capacity_a_new_client_evicts_the_longest_idle() {
    let (_t, t_addr) = threading(IdlePolicy::default(), 4);
    let (_m, m_addr) = multiplexed::<4>(IdlePolicy::default());
    for (name, addr) in [("threading", t_addr), ("multiplexed", m_addr)] {
        let mut idle: Vec<TcpStream> = (0..4).map(|_| connect(addr)).collect();
        // Each is taken: an echo proves its worker or slot serves it.
        for s in &mut idle {
            s.write_all(b"hi").unwrap();
            let mut two = [0u8; 2];
            s.read_exact(&mut two).unwrap();
        }
        let waited = round_trip(addr);
        eprintln!("{name}: a new client at capacity waited {waited:?}");
        assert!(waited < Duration::from_secs(2), "{name}: {waited:?}");
        // Exactly the evicted one was reset; the rest are still served.
        let mut reset = 0;
        for s in &mut idle {
            s.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            match s.read(&mut [0u8; 1]) {
                Err(e) if e.kind() == ErrorKind::ConnectionReset => reset += 1,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                other => panic!("{name}: {other:?}"),
            }
        }
        assert_eq!(reset, 1, "{name}");
    }
}

/// Raises the soft limit on open files to the hard limit (20,000 here).
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// 1,000 silent and 1,000 trickling connections (one byte every 3 s each),
/// then a new client: served within 2 s with the default policy.
fn thousands_then_a_new_client(name: &str, addr: SocketAddr) {
    let silent: Vec<TcpStream> = (0..1000).map(|_| connect(addr)).collect();
    let mut tricklers: Vec<TcpStream> = (0..1000).map(|_| connect(addr)).collect();
    for t in &tricklers {
        t.set_nonblocking(true).unwrap();
    }
    let start = Instant::now();
    // Trickle for 4 s (bounded): a third of them each second.
    let mut round = 0;
    while start.elapsed() < Duration::from_secs(4) {
        for t in tricklers.iter_mut().skip(round % 3).step_by(3) {
            let _ = t.write(b"x");
        }
        round += 1;
        thread::sleep(Duration::from_secs(1));
    }
    let waited = round_trip(addr);
    eprintln!("{name}: new client beside 1,000 silent and 1,000 trickling waited {waited:?}");
    assert!(waited < Duration::from_secs(2), "{name}: {waited:?}");
    drop(silent);
}

#[test]
fn a_thousand_silent_and_a_thousand_trickling_peers_delay_a_new_client_under_2_s() {
    raise_fd_limit();
    let (_t, addr) = threading(IdlePolicy::default(), 4096);
    thousands_then_a_new_client("threading", addr);
    drop(_t);
    // A multiplexed server needs the slots: a client queued behind 2,000
    // others in the backlog is reached only as fast as eviction frees slots.
    let (_m, addr) = multiplexed::<2100>(IdlePolicy::default());
    thousands_then_a_new_client("multiplexed (2,100 slots)", addr);
}
