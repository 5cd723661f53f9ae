//! A server at its concurrency bound (Forking's `max_children`, Threading's
//! `max_threads`) notices a freed worker promptly, on real sockets: the next
//! request is taken within a fraction of a second even with a 30 s
//! `poll_interval`, and `handle_request` with no timeout never hangs there.

mod support;

use std::fmt::Debug;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use support::behaviour;

use socketserver::{
    Connection, DatagramRequest, DatagramRequestHandler, Echo, Error, Handled, HandlerError,
    StreamRequest, StreamRequestHandler,
};
use socketserver_std::{
    Forking, ForkingTCPServer, ForkingUDPServer, Threading, ThreadingTCPServer, ThreadingUDPServer,
};

/// How long each request holds its worker.
const HOLD: Duration = Duration::from_millis(300);
/// Far longer than a prompt hand-over, far shorter than the poll interval.
const PROMPT: Duration = Duration::from_secs(3);
const POLL_INTERVAL: Duration = Duration::from_secs(30);

/// Holds the worker for [`HOLD`], then echoes. No allocation: it also runs
/// in forked children of this multi-threaded test process.
#[derive(Clone)]
struct SlowDatagramEcho;

impl<A: Debug> DatagramRequestHandler<A> for SlowDatagramEcho {
    fn handle(&mut self, req: &mut DatagramRequest<'_, A>) -> Result<(), HandlerError> {
        thread::sleep(HOLD);
        let mut copy = [0u8; 64];
        let n = req.packet().len().min(copy.len());
        copy[..n].copy_from_slice(&req.packet()[..n]);
        req.write_all(&copy[..n])
    }
}

/// Holds the worker for [`HOLD`], then echoes until EOF.
#[derive(Clone)]
struct SlowEcho;

impl<C: Connection> StreamRequestHandler<C> for SlowEcho {
    fn handle(&mut self, req: &mut StreamRequest<'_, C>) -> Result<(), Error<C::Error>> {
        thread::sleep(HOLD);
        Echo::<64>.handle(req)
    }
}

fn udp_client(server: SocketAddr) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(server).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Sends `a` then `b` at once; returns how long after sending `b` was answered.
fn second_datagram_latency(server: SocketAddr) -> Duration {
    let (first, second) = (udp_client(server), udp_client(server));
    let start = Instant::now();
    first.send(b"a").unwrap();
    second.send(b"b").unwrap();
    let mut buf = [0u8; 16];
    let n = second.recv(&mut buf).expect("reply to the second datagram");
    let took = start.elapsed();
    assert_eq!(&buf[..n], b"b");
    let n = first.recv(&mut buf).expect("reply to the first datagram");
    assert_eq!(&buf[..n], b"a");
    took
}

fn assert_prompt(what: &str, took: Duration) {
    eprintln!("{what}: {took:?}");
    assert!(
        took >= HOLD && took < PROMPT,
        "{what}: the second request waited {took:?}"
    );
}

/// Runs `f` in a thread; fails if it has not returned within `within`.
fn within<T: Send + 'static>(within: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(within)
        .expect("handle_request at capacity did not return")
}

#[test]
fn forking_udp_at_max_children_serves_the_next_datagram_promptly() {
    let _fork = support::fork_lock();
    let mut server = ForkingUDPServer::new(
        "127.0.0.1:0",
        Forking::new(SlowDatagramEcho).max_children(1),
    )
    .unwrap();
    let addr = *server.server_address();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever(POLL_INTERVAL));
    assert_prompt("forking udp, serve_forever", second_datagram_latency(addr));
    stop.shutdown();
    serving.join().unwrap().unwrap();
}

#[test]
fn forking_udp_handle_request_without_timeout_returns_at_max_children() {
    let _fork = support::fork_lock();
    let mut server = ForkingUDPServer::new(
        "127.0.0.1:0",
        Forking::new(SlowDatagramEcho).max_children(1).timeout(None),
    )
    .unwrap();
    let addr = *server.server_address();
    let client = thread::spawn(move || second_datagram_latency(addr));
    let handled = within(PROMPT * 2, move || {
        let first = server.handle_request().unwrap();
        let second = server.handle_request().unwrap();
        server.server_close();
        (first, second)
    });
    assert_eq!(handled, (Handled::Request, Handled::Request));
    assert_prompt("forking udp, handle_request", client.join().unwrap());
}

#[test]
fn threading_udp_at_max_threads_serves_the_next_datagram_promptly() {
    let mut server = ThreadingUDPServer::new(
        "127.0.0.1:0",
        Threading::new(SlowDatagramEcho).max_threads(1),
    )
    .unwrap();
    let addr = *server.server_address();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever(POLL_INTERVAL));
    assert_prompt(
        "threading udp, serve_forever",
        second_datagram_latency(addr),
    );
    stop.shutdown();
    serving.join().unwrap().unwrap();

    let mut server = ThreadingUDPServer::new(
        "127.0.0.1:0",
        Threading::new(SlowDatagramEcho).max_threads(1),
    )
    .unwrap();
    let addr = *server.server_address();
    let client = thread::spawn(move || second_datagram_latency(addr));
    let handled = within(PROMPT * 2, move || {
        let first = server.handle_request().unwrap();
        let second = server.handle_request().unwrap();
        server.server_close();
        (first, second)
    });
    assert_eq!(handled, (Handled::Request, Handled::Request));
    assert_prompt("threading udp, handle_request", client.join().unwrap());
}

/// Two clients connect at once and each sends a byte; returns how long the
/// second waited for its echo.
fn second_connection_latency(server: SocketAddr) -> Duration {
    let connect = || {
        let c = TcpStream::connect(server).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c
    };
    let (mut first, mut second) = (connect(), connect());
    let start = Instant::now();
    first.write_all(b"a").unwrap();
    second.write_all(b"b").unwrap();
    // The first request ends once its client closes.
    first.shutdown(std::net::Shutdown::Write).unwrap();
    second.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    second
        .read_to_end(&mut got)
        .expect("echo to the second client");
    let took = start.elapsed();
    assert_eq!(got, b"b");
    got.clear();
    first.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"a");
    took
}

#[test]
fn stream_servers_at_capacity_take_the_next_connection_promptly() {
    let _fork = support::fork_lock();
    let mut forking =
        ForkingTCPServer::new("127.0.0.1:0", Forking::new(SlowEcho).max_children(1)).unwrap();
    let addr = *forking.server_address();
    let stop = forking.shutdown_handle();
    let serving = thread::spawn(move || forking.serve_forever(POLL_INTERVAL));
    assert_prompt(
        "forking tcp, serve_forever",
        second_connection_latency(addr),
    );
    stop.shutdown();
    serving.join().unwrap().unwrap();

    let mut forking = ForkingTCPServer::new(
        "127.0.0.1:0",
        Forking::new(SlowEcho).max_children(1).timeout(None),
    )
    .unwrap();
    let addr = *forking.server_address();
    let client = thread::spawn(move || second_connection_latency(addr));
    let handled = within(PROMPT * 2, move || {
        let first = forking.handle_request().unwrap();
        let second = forking.handle_request().unwrap();
        forking.server_close();
        (first, second)
    });
    assert_eq!(handled, (Handled::Request, Handled::Request));
    assert_prompt("forking tcp, handle_request", client.join().unwrap());

    let mut threading =
        ThreadingTCPServer::new("127.0.0.1:0", Threading::new(SlowEcho).max_threads(1)).unwrap();
    let addr = *threading.server_address();
    let client = thread::spawn(move || second_connection_latency(addr));
    let handled = within(PROMPT * 2, move || {
        let first = threading.handle_request().unwrap();
        let second = threading.handle_request().unwrap();
        threading.server_close();
        (first, second)
    });
    assert_eq!(handled, (Handled::Request, Handled::Request));
    assert_prompt("threading tcp, handle_request", client.join().unwrap());
}

/// A Unix datagram client that sends without reading fills its receive
/// queue; replies to it then fail with EAGAIN while poll(2) keeps calling the
/// unconnected server socket writable. The reply must give up after its
/// patience (5 s) instead of retrying forever, so the server serves others
/// (and `shutdown` returns).
#[test]
fn a_unix_datagram_peer_that_never_reads_does_not_wedge_a_sync_server() {
    use socketserver::{EchoDatagram, Sequential};
    use socketserver_std::UnixDatagramServer;
    use std::os::unix::net::UnixDatagram;

    let path = support::temp_socket("dgram-flood");
    let mut server = UnixDatagramServer::new(&path, Sequential::new(EchoDatagram)).unwrap();
    let stop = server.shutdown_handle();
    let serving = thread::spawn(move || server.serve_forever(Duration::from_millis(500)));

    // Unconnected, so the kernel applies the receive-queue limit
    // (net.unix.max_dgram_qlen, 10 by default) to replies sent to it.
    let flooder_path = support::temp_socket("dgram-flooder");
    let flooder = UnixDatagram::bind(&flooder_path).unwrap();
    let qlen: usize = std::fs::read_to_string("/proc/sys/net/unix/max_dgram_qlen")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(10);
    // The queue holds qlen + 1: the last reply finds it full.
    for _ in 0..qlen + 2 {
        flooder.send_to(b"flood", &path).unwrap();
    }

    let start = Instant::now();
    let reply = behaviour::datagram_echo(&behaviour::unix_datagram(&path));
    let took = start.elapsed();
    stop.shutdown();
    serving.join().unwrap().unwrap();
    drop(flooder);
    let _ = std::fs::remove_file(&flooder_path);
    let _ = std::fs::remove_file(&path);
    eprintln!("served after a flooding peer in {took:?}");
    reply.expect("a well-behaved client is served");
    assert!(took < Duration::from_secs(8), "{took:?}");
}
