//! A graceful stop in the library (`ShutdownHandle::shutdown_within`):
//! under threading, forking, multiplexed and sync, with a fast client, a
//! slow one that finishes within the grace and an idle one that never does:
//! the loop stops accepting at once, the fast and slow clients are served to
//! the end, the idle one is reset at the deadline, `finish` runs for every
//! request, and nothing is left behind.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use socketserver::{
    Async, AsyncStreamRequest, AsyncStreamRequestHandler, Connection, Error, Sequential, Upper,
};
use socketserver_std::{Forking, HeapMultiplexed, SocketStreamServer, TcpConnection, Threading};
use support::running::{Ready, serve_tcp, spawn_tcp_server};

const GRACE: Duration = Duration::from_millis(800);

/// `Upper`, whose `finish` appends a byte to a file: counted across
/// threads and forked children alike.
#[derive(Clone)]
struct Marked(PathBuf);

impl<C: Connection> AsyncStreamRequestHandler<C> for Marked {
    async fn handle(&mut self, req: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        Upper::<64>.handle(req).await
    }

    async fn finish(&mut self, _: &mut AsyncStreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.0)
            .map_err(|_| Error::msg(format_args!("cannot mark finish")))?;
        file.write_all(b"f")
            .map_err(|_| Error::msg(format_args!("cannot mark finish")))
    }
}

fn finishes(marks: &Path) -> usize {
    std::fs::read(marks).map_or(0, |m| m.len())
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Serves with the strategy `build` makes from the handler, runs the three
/// clients (or only the idle one: `one_at_a_time`), stops with a grace.
fn graceful_stop(
    name: &str,
    one_at_a_time: bool,
    build: impl FnOnce(Marked, Ready) + Send + 'static,
) {
    let marks = std::env::temp_dir().join(format!(
        "socketserver-graceful-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&marks);
    let handler = Marked(marks.clone());
    let before = (support::threads(), support::children());
    let (mut running, addr) = spawn_tcp_server(8 << 20, move |ready| build(handler, ready));

    let mut idle = connect(addr);
    let mut expected_finishes = 1;
    let mut slow_client = None;
    if !one_at_a_time {
        // Fast: served and gone before the stop.
        let mut fast = connect(addr);
        fast.write_all(b"fast\n").unwrap();
        let mut answer = [0u8; 5];
        fast.read_exact(&mut answer).unwrap();
        assert_eq!(&answer, b"FAST\n", "{name}");
        drop(fast);
        // Slow: its line trickles in during the grace, then it leaves.
        let mut slow = connect(addr);
        slow.write_all(b"sl").unwrap();
        slow_client = Some(thread::spawn(move || {
            thread::sleep(GRACE / 4);
            slow.write_all(b"ow\n").unwrap();
            slow.shutdown(std::net::Shutdown::Write).unwrap();
            let mut all = Vec::new();
            slow.read_to_end(&mut all).map(|_| all)
        }));
        expected_finishes = 3;
    }
    // The idle client's request has started before the stop.
    thread::sleep(Duration::from_millis(100));

    let stop = running.stop.clone();
    let started = Instant::now();
    stop.shutdown_within(GRACE);
    let took = started.elapsed();
    assert!(
        took >= GRACE - Duration::from_millis(50) && took < GRACE + Duration::from_millis(700),
        "{name}: the stop took {took:?} with a grace of {GRACE:?}"
    );
    // No new client is taken after the stop.
    let late = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
    if let Ok(mut late) = late {
        late.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let _ = late.write_all(b"late\n");
        let mut buf = [0u8; 5];
        assert!(
            !matches!(late.read(&mut buf), Ok(5)),
            "{name}: a client after the stop was served"
        );
    }

    if let Some(slow) = slow_client {
        let all = slow.join().unwrap().expect("the slow client's reply");
        assert_eq!(all, b"SLOW\n", "{name}: the slow client served to its end");
    }
    let mut rest = Vec::new();
    let cut = idle.read_to_end(&mut rest);
    assert_eq!(
        cut.map_err(|e| e.kind()),
        Err(ErrorKind::ConnectionReset),
        "{name}: the idle client is reset at the deadline, not closed cleanly"
    );
    drop(running.thread.take().map(|t| t.join()));
    assert!(
        support::eventually(Duration::from_secs(5), || finishes(&marks)
            == expected_finishes),
        "{name}: finish ran {} times, not {expected_finishes}",
        finishes(&marks)
    );
    assert!(
        support::eventually(Duration::from_secs(5), || (
            support::threads(),
            support::children()
        ) == before),
        "{name}: threads and children {:?}, before {before:?}",
        (support::threads(), support::children())
    );
    let _ = std::fs::remove_file(&marks);
}

#[test]
fn a_graceful_stop_serves_what_is_in_flight_and_cuts_what_stays_at_the_deadline() {
    let _fork = support::fork_lock();
    graceful_stop("threading", false, |h, ready| {
        serve_tcp(
            SocketStreamServer::new("127.0.0.1:0", Threading::new(Async(h))).expect("bind"),
            &ready,
        );
    });
    graceful_stop("forking", false, |h, ready| {
        serve_tcp(
            SocketStreamServer::new("127.0.0.1:0", Forking::new(Async(h))).expect("bind"),
            &ready,
        );
    });
    graceful_stop("multiplexed", false, |h, ready| {
        let mux = HeapMultiplexed::<TcpConnection, _, _>::new(h);
        serve_tcp(
            SocketStreamServer::new("127.0.0.1:0", mux).expect("bind"),
            &ready,
        );
    });
    // One request at a time, served inline: the deadline's cut comes from
    // the thread that asked for the stop.
    graceful_stop("sync", true, |h, ready| {
        serve_tcp(
            SocketStreamServer::new("127.0.0.1:0", Sequential::new(Async(h))).expect("bind"),
            &ready,
        );
    });
}
