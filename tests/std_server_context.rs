//! A handler reaches its server (Python's `self.server`) under every std
//! strategy, for streams and datagrams: `req.server().server_address()` is
//! the address the server is bound to (the real port, not the 0 asked
//! for), and `req.server().shutdown()` stops `serve_forever` within a bound
//! (its poll interval is a minute, so only the request can stop it) and
//! returns without waiting: on the serving thread (`Sequential`, the
//! multiplexed strategies), in a worker thread (`Threading`) and in a
//! forked child, whose request reaches the parent (`Forking`).

mod support;
#[path = "../core/tests/support/where_handler.rs"]
mod where_handler;
use where_handler::{Where, WhereDatagram};

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::os::unix::net::UnixStream;
use std::pin::pin;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use socketserver::{Async, DefaultHooks, Multiplexed, StrategyFor};
use socketserver_std::{
    ForkingTCPServer, ForkingUDPServer, HeapMultiplexed, ShutdownHandle, SocketKind, SocketServer,
    SocketStreamServer, TCPServer, TcpConnection, ThreadingTCPServer, ThreadingUDPServer,
    ThreadingUnixStreamServer, UDPServer, UnixAddr,
};

/// Long enough that only the handler's request can stop the loop in time.
const POLL_INTERVAL: Duration = Duration::from_secs(60);
/// How long `serve_forever` may take to return after the handler asked.
const STOP_BOUND: Duration = Duration::from_secs(2);

/// A server serving in its own thread.
struct Serving<A> {
    address: A,
    stopped: mpsc::Receiver<()>,
    /// Stops a server the test failed to stop, so a failure does not hang.
    stop: ShutdownHandle,
    thread: Option<JoinHandle<()>>,
}

impl<A> Serving<A> {
    /// Whether `serve_forever` returned within [`STOP_BOUND`] of now.
    fn stops_in_time(&self) -> bool {
        self.stopped.recv_timeout(STOP_BOUND).is_ok()
    }
}

impl<A> Drop for Serving<A> {
    fn drop(&mut self) {
        self.stop.request();
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread");
        }
    }
}

/// What a serving thread reports: the server's address and handle, and
/// when its `serve_forever` returned.
struct Report<A> {
    ready: mpsc::Sender<(A, ShutdownHandle)>,
    stopped: mpsc::Sender<()>,
}

/// Runs `body` in a new thread, which builds a server there (a pinned
/// strategy cannot move to it) and hands it to [`serve`].
fn spawn<A: Send + 'static>(body: impl FnOnce(Report<A>) + Send + 'static) -> Serving<A> {
    let (ready, ready_rx) = mpsc::channel();
    let (stopped, stopped_rx) = mpsc::channel();
    let thread = thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || body(Report { ready, stopped }))
        .expect("server thread");
    let (address, stop) = ready_rx.recv().expect("the server reports its address");
    Serving {
        address,
        stopped: stopped_rx,
        stop,
        thread: Some(thread),
    }
}

/// Reports the server, serves until it stops, reports that, closes it.
fn serve<T, P>(mut server: SocketServer<T, P>, report: Report<T::Addr>)
where
    T: SocketKind,
    P: StrategyFor<T::Source, DefaultHooks>,
{
    let address = server.server_address().clone();
    let ready = (address, server.shutdown_handle());
    report.ready.send(ready).expect("the test waits");
    server.serve_forever(POLL_INTERVAL).expect("serve_forever");
    let _ = report.stopped.send(());
    server.server_close();
}

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

fn ask(stream: &mut impl Write, reader: &mut impl BufRead, line: &str) -> String {
    stream.write_all(line.as_bytes()).unwrap();
    let mut answer = String::new();
    reader.read_line(&mut answer).expect("an answer");
    answer
}

/// The stream checks: a client reads the address, twice (the handler's
/// context is the same on each line), and leaves; a second client sees the
/// same server, then stops it, and `serve_forever` obeys in time.
fn check_tcp(serving: &Serving<SocketAddr>) {
    let addr = serving.address;
    assert_ne!(addr.port(), 0, "the bound port, not the 0 asked for");
    let expected = format!("{addr:?}\n");
    let (mut first, mut first_reader) = connect(addr);
    assert_eq!(ask(&mut first, &mut first_reader, "WHERE\n"), expected);
    assert_eq!(ask(&mut first, &mut first_reader, "AGAIN\n"), expected);
    // A FIN even though a forked child holds a copy of this descriptor
    // (the test is the server's process): that child then ends.
    first.shutdown(Shutdown::Write).unwrap();
    let (mut stream, mut reader) = connect(addr);
    assert_eq!(ask(&mut stream, &mut reader, "WHERE\n"), expected);
    let asked = Instant::now();
    assert_eq!(ask(&mut stream, &mut reader, "STOP\n"), "BYE\n");
    assert!(
        serving.stops_in_time(),
        "serve_forever still runs {:?} after the handler's shutdown",
        asked.elapsed()
    );
}

/// The datagram checks, as [`check_tcp`].
fn check_udp(serving: &Serving<SocketAddr>) {
    let addr = serving.address;
    assert_ne!(addr.port(), 0, "the bound port, not the 0 asked for");
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answer = [0u8; 128];
    for _ in 0..2 {
        client.send_to(b"WHERE", addr).unwrap();
        let (n, from) = client.recv_from(&mut answer).expect("an answer");
        assert_eq!(from, addr);
        assert_eq!(
            std::str::from_utf8(&answer[..n]).unwrap(),
            format!("{addr:?}")
        );
    }
    let asked = Instant::now();
    client.send_to(b"STOP", addr).unwrap();
    let (n, _) = client.recv_from(&mut answer).expect("BYE");
    assert_eq!(&answer[..n], b"BYE");
    assert!(
        serving.stops_in_time(),
        "serve_forever still runs {:?} after the handler's shutdown",
        asked.elapsed()
    );
}

#[test]
fn sequential_tcp_handler_reads_the_address_and_stops_its_own_loop() {
    let serving = spawn(|report| {
        serve(
            TCPServer::bind("127.0.0.1:0", Async(Where)).unwrap(),
            report,
        );
    });
    check_tcp(&serving);
}

#[test]
fn threading_tcp_handler_reads_the_address_and_stops_the_loop_from_its_thread() {
    let serving = spawn(|report| {
        serve(
            ThreadingTCPServer::bind("127.0.0.1:0", Async(Where)).unwrap(),
            report,
        );
    });
    check_tcp(&serving);
}

#[test]
fn forking_tcp_handler_reads_the_address_and_stops_the_parent_from_its_child() {
    let _fork = support::fork_lock();
    let children = support::children();
    let serving = spawn(|report| {
        serve(
            ForkingTCPServer::bind("127.0.0.1:0", Async(Where)).unwrap(),
            report,
        );
    });
    check_tcp(&serving);
    drop(serving);
    assert!(
        support::eventually(Duration::from_secs(5), || support::children() == children),
        "server_close reaped every child"
    );
}

#[test]
fn heap_multiplexed_handler_reads_the_address_and_stops_the_loop() {
    let serving = spawn(|report| {
        let strategy = HeapMultiplexed::<TcpConnection, _, _>::new(Where);
        serve(
            SocketStreamServer::new("127.0.0.1:0", strategy).unwrap(),
            report,
        );
    });
    check_tcp(&serving);
}

#[test]
fn pinned_multiplexed_handler_reads_the_address_and_stops_the_loop() {
    let serving = spawn(|report| {
        let mux = pin!(Multiplexed::<TcpConnection, _, _, 4>::new(Where));
        serve(SocketStreamServer::new("127.0.0.1:0", mux).unwrap(), report);
    });
    check_tcp(&serving);
}

#[test]
fn unix_stream_handler_reads_the_path_it_is_bound_to() {
    let path = support::temp_socket("server-context");
    let bound = path.clone();
    let serving = spawn(move |report| {
        serve(
            ThreadingUnixStreamServer::bind(&bound, Async(Where)).unwrap(),
            report,
        );
    });
    assert_eq!(serving.address, UnixAddr::new(&path));
    let stream = UnixStream::connect(&path).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    assert_eq!(
        ask(&mut stream, &mut reader, "WHERE\n"),
        format!("{:?}\n", UnixAddr::new(&path))
    );
    assert_eq!(ask(&mut stream, &mut reader, "STOP\n"), "BYE\n");
    assert!(serving.stops_in_time());
}

#[test]
fn sequential_udp_handler_reads_the_address_and_stops_its_own_loop() {
    let serving = spawn(|report| {
        serve(
            UDPServer::bind("127.0.0.1:0", WhereDatagram).unwrap(),
            report,
        );
    });
    check_udp(&serving);
}

#[test]
fn threading_udp_handler_reads_the_address_and_stops_the_loop_from_its_thread() {
    let serving = spawn(|report| {
        serve(
            ThreadingUDPServer::bind("127.0.0.1:0", WhereDatagram).unwrap(),
            report,
        );
    });
    check_udp(&serving);
}

#[test]
fn forking_udp_handler_reads_the_address_and_stops_the_parent_from_its_child() {
    let _fork = support::fork_lock();
    let children = support::children();
    let serving = spawn(|report| {
        serve(
            ForkingUDPServer::bind("127.0.0.1:0", WhereDatagram).unwrap(),
            report,
        );
    });
    check_udp(&serving);
    drop(serving);
    assert!(
        support::eventually(Duration::from_secs(5), || support::children() == children),
        "server_close reaped every child"
    );
}
