//! What `echo_server` promises under hostile or unlucky peers (README,
//! "Guarantees"), checked on the built binary: streaming clients cannot
//! starve a multiplexed server or stretch its grace period, a cut transfer
//! always ends in a reset (never a short clean EOF), a Unix datagram peer
//! that never reads stalls nobody, and a flood of resets writes a bounded
//! report.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use socket2::SockRef;
use support::echo_process::Server;

/// How a streaming client's connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    /// Stopped by the test while the server still served.
    Stopped,
    /// The server reset the connection (or a write failed because it did).
    Reset,
    /// A clean EOF: the server closed it as if the transfer were complete.
    CleanEof,
    /// Anything else (a timeout), with its kind.
    Other(ErrorKind),
}

/// A client that streams both ways at once, as fast as the server allows:
/// one thread writes 16 KiB blocks, another reads the echo, until `stop` or
/// the connection ends; at most `limit`. The load that starved a multiplexed
/// server. (How it ends is not reported: with two threads, whichever system
/// call comes first takes the reset, and the other may then read EOF.)
fn duplex_streamer(addr: SocketAddr, stop: Arc<AtomicBool>, limit: Duration) -> JoinHandle<()> {
    thread::spawn(move || {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut writer = s.try_clone().unwrap();
        let writing = Arc::clone(&stop);
        let started = Instant::now();
        let write_side = thread::spawn(move || {
            let block = vec![0x5a; 16 * 1024];
            while !writing.load(Ordering::Relaxed) && started.elapsed() < limit {
                if writer.write_all(&block).is_err() {
                    return;
                }
            }
        });
        let mut reader = s;
        let mut back = vec![0; 64 * 1024];
        while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
            if !matches!(reader.read(&mut back), Ok(n) if n > 0) {
                break;
            }
        }
        // Unblock the writer whatever happened, then wait for it.
        let _ = reader.shutdown(std::net::Shutdown::Both);
        let _ = write_side.join();
    })
}

/// A client that writes a 16 KiB block and reads its echo back, over and
/// over, from one thread, until `stop` or the connection ends; at most
/// `limit`. One thread sees how the connection ended, unambiguously.
fn lockstep_streamer(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    limit: Duration,
) -> JoinHandle<Ending> {
    thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let block = vec![0x5a; 16 * 1024];
        let mut back = vec![0; block.len()];
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
            if let Err(e) = s.write_all(&block) {
                return ending_of(&e);
            }
            let mut got = 0;
            while got < back.len() {
                match s.read(&mut back[got..]) {
                    Ok(0) => return Ending::CleanEof,
                    Ok(n) => got += n,
                    Err(e) => return ending_of(&e),
                }
            }
        }
        Ending::Stopped
    })
}

fn ending_of(e: &std::io::Error) -> Ending {
    match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted => {
            Ending::Reset
        }
        kind => Ending::Other(kind),
    }
}

/// Connect, send a line, read it back: the time a new client waits.
fn round_trip(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"ping\n").unwrap();
    let mut reply = [0u8; 5];
    s.read_exact(&mut reply).expect("echo");
    assert_eq!(&reply, b"ping\n");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn streaming_clients_delay_no_new_client_and_no_grace_period() {
    // Timed to 100 ms: not beside this binary's other loads.
    let _alone = support::fork_lock();
    for streamers in [2, 4] {
        let server = Server::start(&["--strategy", "multiplexed", "--grace", "1"]);
        let addr = server.ip();
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..streamers)
            .map(|_| duplex_streamer(addr, Arc::clone(&stop), Duration::from_secs(20)))
            .collect();
        thread::sleep(Duration::from_millis(300));
        let waits: Vec<Duration> = (0..7).map(|_| round_trip(addr)).collect();
        eprintln!("{streamers} streamers: new-client round trips {waits:?}");
        assert!(
            median(waits.clone()) < Duration::from_millis(50),
            "{streamers} streamers delayed new clients: {waits:?}"
        );

        let signalled = Instant::now();
        server.signal(Signal::SIGTERM);
        let (status, stderr, _) = server.wait(Duration::from_secs(10));
        let exit = signalled.elapsed();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        eprintln!("{streamers} streamers: exit {exit:?} after SIGTERM");
        assert_eq!(status.code(), Some(0), "{stderr}");
        assert!(
            exit < Duration::from_millis(1100),
            "grace 1 s took {exit:?}"
        );
    }
}

#[test]
fn the_grace_deadline_resets_every_cut_connection() {
    let _fork = support::fork_lock();
    for strategy in ["threading", "forking", "multiplexed"] {
        let server = Server::start(&["--strategy", strategy, "--grace", "1"]);
        let addr = server.ip();
        let stop = Arc::new(AtomicBool::new(false));
        let clients: Vec<_> = (0..6)
            .map(|_| lockstep_streamer(addr, Arc::clone(&stop), Duration::from_secs(20)))
            .collect();
        thread::sleep(Duration::from_millis(300));
        server.signal(Signal::SIGTERM);
        let (status, stderr, exit) = server.wait(Duration::from_secs(10));
        stop.store(true, Ordering::Relaxed);
        let endings: Vec<Ending> = clients.into_iter().map(|c| c.join().unwrap()).collect();
        eprintln!("{strategy}: exit {exit:?}, endings {endings:?}");
        assert_eq!(status.code(), Some(0), "{strategy}: {stderr}");
        assert!(
            !endings.contains(&Ending::CleanEof),
            "{strategy}: a cut transfer ended in a clean EOF: {endings:?}"
        );
        assert!(
            endings.iter().all(|e| *e == Ending::Reset),
            "{strategy}: {endings:?}"
        );
    }
}

#[test]
fn a_unix_datagram_peer_that_never_reads_stalls_nobody() {
    let path = support::temp_socket("hostile-dgram");
    let path_text = path.to_str().expect("utf-8 path").to_owned();
    let server = Server::start(&["--transport", "unix-dgram", "--addr", &path_text]);

    // A bound peer that sends and never reads: its queue fills up.
    let hog_path = support::temp_socket("hostile-dgram-hog");
    let hog = UnixDatagram::bind(&hog_path).unwrap();
    hog.connect(&path).unwrap();
    hog.set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let payload = vec![7u8; 4096];
    let mut queued = 0;
    for _ in 0..300 {
        // The server's own queue may be full for a moment: not the point here.
        if hog.send(&payload).is_ok() {
            queued += 1;
        }
    }
    assert!(queued > 100, "the hog sent {queued}");

    // Another client is served at full rate meanwhile.
    let me_path = support::temp_socket("hostile-dgram-me");
    let me = UnixDatagram::bind(&me_path).unwrap();
    me.connect(&path).unwrap();
    me.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..200u32 {
        let sent = Instant::now();
        me.send(&i.to_be_bytes()).unwrap();
        let mut buf = [0u8; 16];
        let n = me
            .recv(&mut buf)
            .expect("a reply while the hog's queue is full");
        assert_eq!(&buf[..n], &i.to_be_bytes());
        slowest = slowest.max(sent.elapsed());
        // Keep the hog's queue full all along.
        let _ = hog.send(&payload);
    }
    let total = start.elapsed();
    eprintln!("200 round trips beside a full peer: {total:?}, slowest {slowest:?}");
    assert!(total < Duration::from_secs(2), "{total:?}");
    assert!(slowest < Duration::from_millis(500), "{slowest:?}");

    server.signal(Signal::SIGTERM);
    let (status, stderr, _) = server.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{stderr}");
    let lines = stderr.lines().count();
    eprintln!("stderr after hundreds of dropped replies: {lines} lines\n{stderr}");
    assert!(
        (1..=3).contains(&lines),
        "drops are reported, once per interval: {stderr}"
    );
    for p in [&path, &hog_path, &me_path] {
        let _ = std::fs::remove_file(p);
    }
}

/// Connects, sends a byte, and resets (SO_LINGER 0), `n` times.
fn reset_flood(addr: SocketAddr, n: usize) {
    for _ in 0..n {
        let Ok(mut s) = TcpStream::connect(addr) else {
            continue;
        };
        let _ = s.write_all(b"x");
        let _ = SockRef::from(&s).set_linger(Some(Duration::ZERO));
        drop(s);
    }
}

#[test]
fn a_flood_of_resets_writes_a_bounded_report() {
    let _alone = support::fork_lock();
    for strategy in ["multiplexed", "threading"] {
        let server = Server::start(&["--strategy", strategy]);
        let addr = server.ip();
        let flooders: Vec<_> = (0..2)
            .map(|_| thread::spawn(move || reset_flood(addr, 2_500)))
            .collect();
        for f in flooders {
            f.join().unwrap();
        }
        // Still serving.
        round_trip(addr);
        server.signal(Signal::SIGTERM);
        let (status, stderr, _) = server.wait(Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{stderr}");
        let lines = stderr.lines().count();
        eprintln!("{strategy}: 5,000 resets wrote {lines} stderr lines");
        assert!(lines <= 20, "{strategy}: {lines} lines:\n{stderr}");
    }
}
