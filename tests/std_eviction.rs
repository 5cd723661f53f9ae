//! The edges of the idle policy under `Threading`, found in review: an
//! eviction frees exactly the slot it evicts (the thread bound holds under a
//! burst), a peer that is reading slowly is not taken for an idle one, and
//! the minimum rate never throws away bytes a read returned.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::time::Duration as CoreDuration;
use socketserver::{Connection, Echo, Error, IdlePolicy, StreamRequest, StreamRequestHandler};
use socketserver_std::{Options, SocketStreamServer, Threading, ThreadingTCPServer};
use support::running::{serve_tcp, spawn_tcp_server};

/// A client with a 10 s read timeout.
fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[test]
fn an_eviction_burst_keeps_the_thread_bound() {
    let (running, addr) = spawn_tcp_server(1 << 20, move |ready| {
        let strategy = Threading::new(Echo::<1024>)
            .max_threads(2)
            .stack_size(Some(256 * 1024));
        let options = Options::default().idle_policy(IdlePolicy::default());
        let server: ThreadingTCPServer<Echo<1024>> =
            SocketStreamServer::with_options("127.0.0.1:0", strategy, Default::default(), options)
                .expect("bind");
        serve_tcp(server, &ready);
    });
    let mut idle: Vec<TcpStream> = (0..2).map(|_| connect(addr)).collect();
    for s in &mut idle {
        s.write_all(b"hi").unwrap();
        let mut two = [0u8; 2];
        s.read_exact(&mut two).unwrap();
    }
    thread::sleep(Duration::from_millis(1500));
    let start = Instant::now();
    let mut burst: Vec<TcpStream> = (0..30).map(|_| connect(addr)).collect();
    for s in &mut burst {
        s.write_all(b"ping").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    }
    thread::sleep(Duration::from_millis(300));
    let mut served = 0;
    for s in &mut burst {
        let mut four = [0u8; 4];
        match s.read_exact(&mut four) {
            Ok(()) => served += 1,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => eprintln!("burst client: {e}"),
        }
    }
    let mut resets = 0;
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        if matches!(s.read(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::ConnectionReset) {
            resets += 1;
        }
    }
    eprintln!(
        "within {:?}: {served} of 30 new clients served at once with max_threads 2; {resets} idle reset",
        start.elapsed()
    );
    // Clients first: closing the server waits for their handlers.
    drop(burst);
    drop(idle);
    drop(running);
    assert!(served <= 2, "{served} served at once with max_threads(2)");
}

/// Echoes one line, with a generous timeout of its own.
#[derive(Clone)]
struct Patient;

impl<C: Connection> StreamRequestHandler<C> for Patient {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut line = [0u8; 64];
        let n = req.read_line(&mut line)?;
        req.write_all(&line[..n])?;
        Ok(())
    }
    fn timeout(&self) -> Option<CoreDuration> {
        Some(CoreDuration::from_secs(10))
    }
}

#[test]
fn a_slow_window_keeps_the_bytes_read_and_lets_the_handler_answer() {
    let (running, addr) = spawn_tcp_server(1 << 20, move |ready| {
        // The default policy scaled down 100x: 600 ms idle, 64 B per 600 ms.
        let policy = IdlePolicy::default()
            .idle_timeout(Some(Duration::from_millis(600)))
            .min_rate(Some(socketserver::MinRate {
                bytes: 64,
                per: Duration::from_millis(600),
            }));
        let strategy = Threading::new(Patient);
        let options = Options::default().idle_policy(policy);
        let server: ThreadingTCPServer<Patient> =
            SocketStreamServer::with_options("127.0.0.1:0", strategy, Default::default(), options)
                .expect("bind");
        serve_tcp(server, &ready);
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // Within the handler's 10 s, beyond the policy's 600 ms.
    thread::sleep(Duration::from_millis(1500));
    c.write_all(b"hello\n").unwrap();
    let mut buf = [0u8; 6];
    let res = c.read_exact(&mut buf);
    eprintln!("reply: {res:?}");
    drop(c);
    drop(running);
    // The peer moved 6 bytes in a 600 ms window (below 64): too slow, but
    // the bytes it sent still reach the handler, which answers them.
    res.expect("the handler answers what it read");
}

/// Bytes the slow reader takes, at about 1 MB/s.
const BIG: usize = 4 << 20;

/// Sends `BIG` bytes when asked with `g`, else echoes one byte.
#[derive(Clone)]
struct Big;

impl<C: Connection> StreamRequestHandler<C> for Big {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut one = [0u8; 1];
        req.read_exact(&mut one)?;
        if one[0] == b'g' {
            let data = vec![7u8; BIG];
            req.write_all(&data)?;
        } else {
            req.write_all(&one)?;
        }
        Ok(())
    }
}

#[test]
fn a_peer_reading_slowly_is_not_evicted() {
    let (running, addr) = spawn_tcp_server(1 << 20, move |ready| {
        let strategy = Threading::new(Big).max_threads(1);
        let options = Options::default().idle_policy(IdlePolicy::default());
        let server: ThreadingTCPServer<Big> =
            SocketStreamServer::with_options("127.0.0.1:0", strategy, Default::default(), options)
                .expect("bind");
        serve_tcp(server, &ready);
    });
    let mut big = TcpStream::connect(addr).unwrap();
    big.write_all(b"g").unwrap();
    let reader = thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0usize;
        let start = Instant::now();
        loop {
            match big.read(&mut buf) {
                Ok(0) => return (got, Ok(()), start.elapsed()),
                Ok(n) => got += n,
                Err(e) => return (got, Err(e.kind()), start.elapsed()),
            }
            // About 1 MB/s: far above any minimum rate.
            thread::sleep(Duration::from_millis(60));
        }
    });
    thread::sleep(Duration::from_millis(2500));
    let mut other = TcpStream::connect(addr).unwrap();
    other
        .set_read_timeout(Some(Duration::from_millis(800)))
        .unwrap();
    other.write_all(b"p").unwrap();
    let mut one = [0u8; 1];
    let other_res = other.read_exact(&mut one);
    let (got, end, took) = reader.join().unwrap();
    eprintln!(
        "big reader: {got} of {BIG} bytes, end {end:?} after {took:?}; other client: {other_res:?}"
    );
    drop(other);
    drop(running);
    assert_eq!(end, Ok(()), "a connection moving ~1 MB/s was cut");
    assert_eq!(got, BIG);
    // The newcomer was served once the handler had handed its last bytes to
    // the kernel, or still waits: either way it evicted no one.
    if let Err(e) = &other_res {
        assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e}");
    }
}
